#!/usr/bin/env python3
"""The relay's memory and CPU with many hosts attached (docs/relay.md), in one run.

On loopback: a hub, `roost relay --self-signed` with its request limits off
(--limit ip.rps=0 ip.inflight=0 host.rps=0 host.inflight=0), and N hosts (default
100), each with its own folder and content port and attached with `--relay`
(one control + 16 data TLS connections each). Once the hub lists every host online
with a tunnel_url, the relay's RSS (VmRSS, VmHWM from /proc/PID/status), CPU time
(utime + stime from /proc/PID/stat) and TLS connections (established sockets of the
relay on its tunnel and public ports) are read:
  (a) with the hosts attached and idle (over --idle-s seconds, long enough to see
      the relay retire idle data connections after 30 s and the hosts dial anew);
  (b) during --load-s seconds of wrk (-t2 -c50) paced to about --rps requests/s,
      spread over all N hosts' /h/SLUG/healthz (a Lua script rotates the paths);
  (c) --settle-s seconds after that load;
  (d) the same, flat out (wrk unpaced), then (e) after it; skipped with --no-max.
Prints a Markdown table.

The hosts reach the hub through nginx (a plain HTTP reverse proxy, epoll): the hub's
libmicrohttpd uses select() and refuses every connection whose descriptor is 1024 or
more ("New connection socket descriptor (1024) is not less than FD_SETSIZE"), and each
host keeps ~19 connections to the hub open (one curl handle per tunnel thread, each
fetching its own relay token at start), so ~50 hosts fill the hub. --hub-direct
skips nginx (and shows that failure with 100 hosts).

Usage: bench/relay_mem.py ROOST_BIN [--hosts N] [--rps R] [--load-s S] [--no-max]
                          [--hub-direct]
"""
import argparse
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import benchlib

PASSWORD = "bench password 1"
EMAIL = "bench@example.test"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    """In the child: SIGTERM when this script dies, even by SIGKILL."""
    _libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port(taken):
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in taken:
            taken.add(port)
            return port


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False


def wait_port(port, proc, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited (%r)" % (what, proc.returncode))
        if port_open(port):
            return
        time.sleep(0.05)
    raise RuntimeError("%s did not start" % what)


class Procs:
    """Every process started here (from the main thread only: PDEATHSIG follows the
    thread that forked). stop_all() signals them all at once, then waits."""

    def __init__(self, root):
        self.root, self.procs = root, []

    def start(self, name, args, env=None):
        log = open(os.path.join(self.root, name + ".log"), "ab")
        try:
            p = subprocess.Popen(args, stdout=log, stderr=log, env=env,
                                 stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        finally:
            log.close()
        self.procs.append((name, p))
        return p

    def log_tail(self, name, n=1500):
        try:
            with open(os.path.join(self.root, name + ".log"), "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return "(no log)"

    def stop(self, group, timeout=30):
        """SIGTERM every process of group, wait for all, SIGKILL what is left."""
        for _, p in group:
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout
        for name, p in group:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print("warning: %s (pid %d) ignored SIGTERM; killing it" % (name, p.pid),
                      file=sys.stderr)
                p.kill()
                p.wait()
            if p.returncode not in (0, -signal.SIGTERM, -signal.SIGKILL):
                print("warning: %s exited with %r:\n%s" % (name, p.returncode,
                                                           self.log_tail(name)),
                      file=sys.stderr)

    def stop_all(self):
        # hosts first (all at once), then the relay, then the hub
        hosts = [x for x in self.procs if x[0].startswith("host")]
        others = [x for x in self.procs if not x[0].startswith("host")]
        self.stop(hosts)
        for x in reversed(others):
            self.stop([x])
        self.procs = []


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "Threads", "RssAnon", "RssFile"):
                out[k] = int(v.split()[0])  # kB, or a count
    return out


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def rss_kb(pid):
    with open("/proc/%d/statm" % pid) as f:
        return int(f.read().split()[1]) * PAGE // 1024


def relay_sockets(pid, tunnel_port, public_port):
    """Inodes of the relay's established TCP sockets on its tunnel and public ports."""
    mine = set()
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            link = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            mine.add(link[8:-1])
    tunnel, public = set(), set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    local, state, inode = cols[1], cols[3], cols[9]
                    if state != "01" or inode not in mine:  # 01: ESTABLISHED
                        continue
                    port = int(local.rsplit(":", 1)[1], 16)
                    if port == tunnel_port:
                        tunnel.add(inode)
                    elif port == public_port:
                        public.add(inode)
        except OSError:
            pass
    return tunnel, public


class Sampler(threading.Thread):
    """The relay's VmRSS every 0.25 s, its connections every second: the peaks."""

    def __init__(self, pid, ports):
        super().__init__(daemon=True)
        self.pid, self.ports, self.stop_ev = pid, ports, threading.Event()
        self.peak = self.tun_max = self.pub_max = 0

    def run(self):
        n = 0
        while not self.stop_ev.is_set():
            try:
                self.peak = max(self.peak, rss_kb(self.pid))
                if n % 4 == 0:
                    tun, pub = relay_sockets(self.pid, *self.ports)
                    self.tun_max = max(self.tun_max, len(tun))
                    self.pub_max = max(self.pub_max, len(pub))
            except OSError:
                return
            n += 1
            self.stop_ev.wait(0.25)

    def finish(self):
        self.stop_ev.set()
        self.join()
        return self.peak


HUB_PROXY_CONF = """
%(user)s
worker_processes 1;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log warn;
daemon off;
events { worker_connections 16384; }
http {
    access_log off;
    client_body_temp_path %(dir)s/client_body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
    client_max_body_size 0;
    upstream hub { server 127.0.0.1:%(hub)d; keepalive 16; }
    server {
        listen 127.0.0.1:%(port)d;
        location / {
            proxy_pass http://hub;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_buffering off;            # the feed streams
            proxy_request_buffering off;
            proxy_read_timeout 1h;
        }
    }
}
"""

LUA = """
local paths = {%(paths)s}
local i = 0
local pause = %(delay)d
function init(args)
  -- each thread (own Lua state; id set by setup) starts at another host
  i = (id or 0) * %(step)d
end
function setup(thread)
  nthreads = (nthreads or 0) + 1
  thread:set("id", nthreads - 1)
end
function request()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
%(delay_fn)s
"""


def run_wrk(work, base, paths, conns, threads, secs, rps):
    """wrk over all paths; rps 0 is flat out. (dict of figures, raw output)."""
    delay = 0
    if rps:
        # each connection sends one request every `delay` ms, plus its latency;
        # aimed 10% high so that stalls leave the mean at about rps
        delay = max(1, int(conns * 1000 / rps / 1.1))
    script = os.path.join(work, "rotate.lua")
    with open(script, "w") as f:
        f.write(LUA % {"paths": ", ".join('"%s"' % p for p in paths), "delay": delay,
                       "step": max(1, len(paths) // threads),
                       "delay_fn": "function delay() return pause end" if rps else ""})
    p = subprocess.run(["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % secs,
                        "--timeout", "10s", "--latency", "-s", script, base],
                       capture_output=True, timeout=secs + 60)
    out = p.stdout.decode()
    if p.returncode != 0:
        raise RuntimeError("wrk exited %d: %s %s" % (p.returncode, out, p.stderr.decode()))
    got = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
           "requests": int(re.search(r"(\d+) requests in", out).group(1))}
    for pct in ("50", "99"):
        got["p" + pct] = re.search(r"^\s*%s%%\s+(\S+)" % pct, out, re.M).group(1)
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    got["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: (.*)", out)
    got["sockerr"] = m.group(1).strip() if m else ""
    return got, out


def mib(kb):
    return "%.1f MiB" % (kb / 1024)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("roost")
    ap.add_argument("--hosts", type=int, default=100)
    ap.add_argument("--rps", type=int, default=1000, help="paced load, requests/s")
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--load-s", type=int, default=20)
    ap.add_argument("--idle-s", type=int, default=35)
    ap.add_argument("--settle-s", type=int, default=10)
    ap.add_argument("--batch", type=int, default=10, help="hosts started at once")
    ap.add_argument("--no-max", action="store_true", help="skip the flat-out load")
    ap.add_argument("--hub-direct", action="store_true",
                    help="hosts talk to the hub itself, not through nginx")
    ap.add_argument("--workdir", default=None)
    a = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("relay_mem.py needs wrk (apt-get install wrk)")
    roost = os.path.abspath(a.roost)
    work = tempfile.mkdtemp(prefix="roost-bench-relaymem-", dir=a.workdir)
    procs = Procs(work)
    taken = set()
    env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(work, "cfg"), ROOST_PASSWORD=PASSWORD)

    def on_signal(signum, frame):
        raise SystemExit("stopped by signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    rows, notes = [], []
    try:
        def cli(*args):
            p = subprocess.run([roost, *args], env=env, capture_output=True)
            if p.returncode != 0:
                raise RuntimeError("roost %s: exit %d: %s" % (
                    " ".join(args[:2]), p.returncode, p.stderr.decode(errors="replace")))
            return p

        # hub
        api_port = free_port(taken)
        hub_url = "http://127.0.0.1:%d" % api_port
        cli("init", "--data", os.path.join(work, "hub"), "--email", EMAIL)
        hub = procs.start("hub", [roost, "serve", "--data", os.path.join(work, "hub"),
                                  "--api-port", str(api_port),
                                  "--content-port", str(free_port(taken)),
                                  "--dashboard-port", str(free_port(taken)),
                                  "--rate-limit", "0"], env)
        wait_port(api_port, hub, "hub")
        # the hosts' hub URL is the one their invite names: the CLI's
        front_url = hub_url
        if not a.hub_direct:
            ngx_dir = os.path.join(work, "nginx")
            os.makedirs(ngx_dir)
            ngx_port = free_port(taken)
            conf = os.path.join(ngx_dir, "nginx.conf")
            with open(conf, "w") as f:
                f.write(HUB_PROXY_CONF % {
                    "dir": ngx_dir, "hub": api_port, "port": ngx_port,
                    # as root, workers are "nobody" and cannot enter the 0700 temp dir
                    "user": "user root;" if os.geteuid() == 0 else ""})
            ngx = procs.start("nginx", ["nginx", "-c", conf, "-p", ngx_dir])
            wait_port(ngx_port, ngx, "nginx")
            front_url = "http://127.0.0.1:%d" % ngx_port
        cli("login", "--hub", front_url, "--email", EMAIL)

        def api(method, path, body=None, token=None):
            return benchlib.request(api_port, method, path, body, token)

        token = api("POST", "/api/v1/login", {"email": EMAIL, "password": PASSWORD})[1]["token"]
        ws = api("GET", "/api/v1/workspaces", token=token)[1]["workspaces"][0]["id"]
        wsp = "/api/v1/workspaces/%d" % ws

        # relay
        relay_data = os.path.join(work, "relay")
        public_port, tunnel_port = free_port(taken), free_port(taken)
        relay = procs.start("relay", [roost, "relay", "--data", relay_data, "--hub", hub_url,
                                      "--self-signed",
                                      "--limit", "ip.rps=0", "--limit", "ip.inflight=0",
                                      "--limit", "host.rps=0", "--limit", "host.inflight=0",
                                      "--public", "127.0.0.1:%d" % public_port,
                                      "--tunnel", "127.0.0.1:%d" % tunnel_port], env)
        wait_port(public_port, relay, "relay")
        wait_port(tunnel_port, relay, "relay")
        ca = os.path.join(relay_data, "ca.pem")
        rpid = relay.pid
        st0 = proc_status(rpid)

        # hosts: join them all, then start them in batches
        t0 = time.monotonic()
        dirs = []
        for i in range(a.hosts):
            d = os.path.join(work, "h%03d" % i)
            os.makedirs(d)
            invite = json.loads(cli("host", "invite", "--json").stdout)
            cli("host", "join", invite["url"], "--dir", d, "--label", "h%03d" % i)
            dirs.append(d)
        t_join = time.monotonic() - t0

        def start_host(i):
            listen = free_port(taken)
            p = procs.start("host%03d" % i, [
                roost, "host", "run", "--dir", dirs[i], "--listen", "127.0.0.1:%d" % listen,
                "--relay", "127.0.0.1:%d" % tunnel_port, "--relay-ca", ca], env)
            return p, listen

        t0 = time.monotonic()
        for b in range(0, a.hosts, a.batch):
            batch = {i: start_host(i) for i in range(b, min(a.hosts, b + a.batch))}
            deadline = time.monotonic() + 30
            while batch:
                for i, (p, listen) in list(batch.items()):
                    if port_open(listen):
                        del batch[i]
                    elif p.poll() is not None:  # e.g. lost its port: once more
                        print("host%03d exited (%r); starting it again:\n%s" % (
                            i, p.returncode, procs.log_tail("host%03d" % i, 400)),
                            file=sys.stderr)
                        batch[i] = start_host(i)
                if time.monotonic() > deadline:
                    raise RuntimeError("hosts %s did not start" % sorted(batch))
                time.sleep(0.05)

        def all_attached():
            st, body = api("GET", wsp + "/hosts", token=token)
            if st != 200:
                return None
            hs = [h for h in body["hosts"]
                  if h.get("status") == "online" and h.get("tunnel_url")]
            return hs if len(hs) >= a.hosts else None

        deadline = time.monotonic() + 180
        while not (hosts := all_attached()):
            if time.monotonic() > deadline:
                st, body = api("GET", wsp + "/hosts", token=token)
                n = sum(1 for h in body["hosts"] if h.get("tunnel_url"))
                raise RuntimeError("only %d of %d hosts have a tunnel_url" % (n, a.hosts))
            dead = [n for n, p in procs.procs if p.poll() is not None]
            if dead:
                raise RuntimeError("exited: %s" % ", ".join(dead))
            time.sleep(0.5)
        t_attach = time.monotonic() - t0
        prefix = "https://127.0.0.1:%d/" % public_port
        paths = sorted("/" + h["tunnel_url"][len(prefix):].rstrip("/") + "/healthz"
                       for h in hosts)
        if len(set(paths)) != a.hosts or not all(p.startswith("/h/") for p in paths):
            raise RuntimeError("unexpected tunnel URLs: %r" % paths[:3])
        # every data connection attached: N x 17 on the tunnel port
        want = a.hosts * 17
        deadline = time.monotonic() + 60
        while len(relay_sockets(rpid, tunnel_port, public_port)[0]) < want:
            if time.monotonic() > deadline:
                notes.append("only %d of %d tunnel connections after 60 s" % (
                    len(relay_sockets(rpid, tunnel_port, public_port)[0]), want))
                break
            time.sleep(0.5)
        hosts_rss = sum(rss_kb(p.pid) for n, p in procs.procs if n.startswith("host"))

        def phase(label, secs, load=None):
            """Read the relay over secs seconds (or while load() runs)."""
            tun0, pub0 = relay_sockets(rpid, tunnel_port, public_port)
            c0, w0 = cpu_seconds(rpid), time.monotonic()
            sampler = Sampler(rpid, (tunnel_port, public_port))
            sampler.start()
            got = load() if load else time.sleep(secs)
            peak = sampler.finish()
            cpu, wall = cpu_seconds(rpid) - c0, time.monotonic() - w0
            st = proc_status(rpid)
            tun1, pub1 = relay_sockets(rpid, tunnel_port, public_port)
            return {"label": label, "rss": st["VmRSS"], "hwm": st["VmHWM"], "peak": peak,
                    "threads": st["Threads"], "cpu": cpu, "wall": wall,
                    "tun": len(tun1), "tun_new": len(tun1 - tun0), "pub": len(pub1),
                    "tun_max": sampler.tun_max, "pub_max": sampler.pub_max, "wrk": got}

        time.sleep(2)
        results = [phase("(a) %d hosts attached, idle (%d s)" % (a.hosts, a.idle_s), a.idle_s)]
        loads = [("(b) paced load, ~%d req/s (%d s)" % (a.rps, a.load_s), a.rps)]
        if not a.no_max:
            loads.append(("(d) flat-out load (%d s)" % a.load_s, 0))
        for n, (label, rps) in enumerate(loads):
            r = phase(label, a.load_s, lambda rps=rps: run_wrk(
                work, prefix.rstrip("/"), paths, a.conns, 2, a.load_s, rps)[0])
            results.append(r)
            results.append(phase("(%s) %d s after that load" % ("ce"[n], a.settle_s),
                                 a.settle_s))
        dead = [n for n, p in procs.procs if p.poll() is not None]
        if dead:
            notes.append("exited during the run: " + ", ".join(dead))
    finally:
        procs.stop_all()
        if os.environ.get("ROOST_KEEP_TMP"):
            print("kept", work, file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)

    print("Relay with %d hosts attached, loopback, wrk -t2 -c%d over all %d hosts' "
          "/h/SLUG/healthz (a Lua script rotates the paths).\n" % (a.hosts, a.conns, a.hosts))
    print("| phase | relay VmRSS (peak sampled) | VmHWM | relay CPU | TLS conns at end: "
          "tunnel (new in phase) / public; peak tunnel / public | load |")
    print("|---|---|---|---|---|---|")
    for r in results:
        w = r["wrk"]
        load = ""
        if w:
            load = "%.0f req/s, p50 %s, p99 %s" % (w["rps"], w["p50"], w["p99"])
            if w["non2xx"]:
                load += ", %d non-2xx" % w["non2xx"]
            if w["sockerr"]:
                load += ", socket errors: " + w["sockerr"]
            if w["requests"]:
                load += "; %.0f us CPU per request" % (r["cpu"] * 1e6 / w["requests"])
        print("| %s | %s (%s) | %s | %.2f s in %.0f s = %.0f%% of a core | %d (%d) / %d; "
              "%d / %d | %s |" % (
                  r["label"], mib(r["rss"]), mib(r["peak"]), mib(r["hwm"]), r["cpu"],
                  r["wall"], 100 * r["cpu"] / r["wall"], r["tun"], r["tun_new"], r["pub"],
                  r["tun_max"], r["pub_max"], load))
    idle = results[0]
    print("\nrelay at start (no hosts): VmRSS %s, VmHWM %s; with %d hosts idle: +%s, %.1f KiB "
          "per tunnel connection; threads: %d" % (
              mib(st0["VmRSS"]), mib(st0["VmHWM"]), a.hosts, mib(idle["rss"] - st0["VmRSS"]),
              (idle["rss"] - st0["VmRSS"]) / max(1, idle["tun"]), idle["threads"]))
    print("%d hosts: joined in %.1f s, started and all attached in %.1f s; the hosts' RSS "
          "together %s; hosts reach the hub %s" % (
              a.hosts, t_join, t_attach, mib(hosts_rss),
              "directly" if a.hub_direct else "through nginx"))
    for n in notes:
        print("note:", n)


if __name__ == "__main__":
    main()
