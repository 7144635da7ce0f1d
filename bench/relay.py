#!/usr/bin/env python3
"""Benchmark the relay (docs/relay.md) against a direct download and nginx, in one run.

On loopback: a hub, one host (--listen, --relay) and `roost relay --self-signed`
with its request limits off (--limit ip.rps=0 ip.inflight=0 host.rps=0
host.inflight=0); a random file (default 1 GiB) in the host's folder. The file is
downloaded with curl three ways (best of 3 each):
  - direct from the host's content server (http://127.0.0.1:LISTEN/c/TOKEN);
  - through the relay (https://127.0.0.1:PUBLIC/h/SLUG/c/TOKEN);
  - through nginx as a TLS reverse proxy (the relay's certificate, proxy_pass to the
    same content server over a keepalive upstream).
Goal (issue 5): relay >= 0.8x direct. If wrk is installed, small requests
(`wrk -t2 -c50 -d5s --latency` on /healthz) through the relay and through nginx.
Prints a Markdown table. Usage: bench/relay.py ROOST_BIN [--size-mib N] [--quick]
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

import benchlib
from benchlib import free_port, wait_port

MiB = 1 << 20
PASSWORD = "bench password 1"
EMAIL = "bench@example.test"


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = pred()
        except OSError:
            got = None
        if got:
            return got
        time.sleep(0.1)
    raise RuntimeError("timed out after %d s waiting for %s" % (timeout, what))


def random_file(path, size):
    seed = os.urandom(32)
    with open(path + ".tmp", "wb") as f:
        written, counter = 0, 0
        while written < size:
            block = hashlib.shake_256(seed + counter.to_bytes(8, "little")).digest(
                min(MiB, size - written))
            counter += 1
            f.write(block)
            written += len(block)
    os.rename(path + ".tmp", path)  # appears whole in the host's folder


class Procs:
    """Every process started here, stopped in reverse order."""

    def __init__(self, root):
        self.root, self.procs = root, []

    def start(self, name, args, env=None):
        log = open(os.path.join(self.root, name + ".log"), "ab")
        try:
            p = subprocess.Popen(args, stdout=log, stderr=log, env=env)
        finally:
            log.close()
        self.procs.append((name, p))
        return p

    def log_tail(self, name, n=2000):
        try:
            with open(os.path.join(self.root, name + ".log"), "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return "(no log)"

    def stop_all(self):
        for name, p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            if p.returncode not in (0, None, -signal.SIGTERM):
                print("warning: %s exited with %r:\n%s" % (name, p.returncode,
                                                           self.log_tail(name)),
                      file=sys.stderr)
        self.procs = []


NGINX_CONF = """
worker_processes 1;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log warn;
daemon off;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    client_body_temp_path %(dir)s/client_body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
    upstream host { server 127.0.0.1:%(listen)d; keepalive 32; }
    server {
        listen 127.0.0.1:%(port)d ssl;
        ssl_certificate %(cert)s;
        ssl_certificate_key %(key)s;
        location / {
            proxy_pass http://host;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # no spooling to temp files (a worker running as nobody cannot write
            # into a 0700 temp dir); nginx streams through its memory buffers
            proxy_max_temp_file_size 0;
        }
    }
}
"""


def curl(url, cacert=None):
    """(bytes, seconds, http code) of one download with curl."""
    args = ["curl", "-s", "-o", "/dev/null", "-w", "%{size_download} %{time_total} %{http_code}"]
    if cacert:
        args += ["--cacert", cacert]
    p = subprocess.run(args + [url], capture_output=True)
    out = p.stdout.decode().split()
    if p.returncode != 0:
        raise RuntimeError("curl exited %d after %s bytes (HTTP %s) from %s" % (
            p.returncode, out[0], out[2], url.split("/c/")[0]))
    return int(out[0]), float(out[1]), out[2]


def best_of(n, size, url_for, cacert=None):
    """Best MB/s of n downloads of size bytes; url_for() gives a URL with a fresh token."""
    best = 0.0
    for _ in range(n):
        got, secs, code = curl(url_for(), cacert)
        if code != "200" or got != size:
            raise RuntimeError("download %s: HTTP %s, %d of %d bytes" % (
                url_for.__name__, code, got, size))
        best = max(best, got / secs / 1e6)
    return best


def wrk(url):
    """(requests/s, p99 latency string) from wrk --latency."""
    out = subprocess.run(["wrk", "-t2", "-c50", "-d5s", "--latency", url],
                         capture_output=True, check=True).stdout.decode()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1)
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    note = []
    if errs:
        note.append("%s non-2xx" % errs.group(1))
    if sock:
        note.append("socket errors: " + sock.group(1))
    return rps, p99, ", ".join(note)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("roost")
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--quick", action="store_true", help="128 MiB")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workdir", default=None)
    a = ap.parse_args()
    if a.quick:
        a.size_mib = 128
    roost = os.path.abspath(a.roost)
    size = a.size_mib * MiB
    work = tempfile.mkdtemp(prefix="roost-bench-relay-", dir=a.workdir)
    procs = Procs(work)
    env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(work, "cfg"), ROOST_PASSWORD=PASSWORD)
    rows = []
    try:
        def cli(*args):
            return subprocess.run([roost, *args], env=env, capture_output=True, check=True)

        # hub
        api_port = free_port()
        hub_url = "http://127.0.0.1:%d" % api_port
        cli("init", "--data", os.path.join(work, "hub"), "--email", EMAIL)
        hub = procs.start("hub", [roost, "serve", "--data", os.path.join(work, "hub"),
                                  "--api-port", str(api_port),
                                  "--content-port", str(free_port()),
                                  "--dashboard-port", str(free_port()),
                                  "--rate-limit", "0"], env)
        wait_port(api_port, hub, "hub")
        cli("login", "--hub", hub_url, "--email", EMAIL)

        def api(method, path, body=None, token=None):
            return benchlib.request(api_port, method, path, body, token)

        st, body = api("POST", "/api/v1/login", {"email": EMAIL, "password": PASSWORD})
        token = body["token"]
        ws = api("GET", "/api/v1/workspaces", token=token)[1]["workspaces"][0]["id"]
        wsp = "/api/v1/workspaces/%d" % ws

        # relay
        relay_data = os.path.join(work, "relay")
        public_port, tunnel_port = free_port(), free_port()
        relay = procs.start("relay", [roost, "relay", "--data", relay_data, "--hub", hub_url,
                                      "--self-signed",
                                      # no request limits: the default 32 at once per
                                      # client IP answers 429 to wrk's 50 connections,
                                      # and 500/s per host caps a keep-alive relay
                                      "--limit", "ip.rps=0", "--limit", "ip.inflight=0",
                                      "--limit", "host.rps=0", "--limit", "host.inflight=0",
                                      "--public", "127.0.0.1:%d" % public_port,
                                      "--tunnel", "127.0.0.1:%d" % tunnel_port], env)
        wait_port(public_port, relay, "relay")
        ca = os.path.join(relay_data, "ca.pem")

        # host
        host_dir = os.path.join(work, "host")
        os.makedirs(host_dir)
        invite = json.loads(cli("host", "invite", "--json").stdout)
        cli("host", "join", invite["url"], "--dir", host_dir, "--label", "bench")
        listen = free_port()
        host = procs.start("host", [roost, "host", "run", "--dir", host_dir,
                                    "--listen", "127.0.0.1:%d" % listen, "--heartbeat", "1",
                                    "--relay", "127.0.0.1:%d" % tunnel_port,
                                    "--relay-ca", ca], env)
        wait_port(listen, host, "host")

        t0 = time.monotonic()
        random_file(os.path.join(host_dir, "big.bin"), size)
        path = "/big.bin"
        wait_for(lambda: api("GET", wsp + "/info?path=" + urllib.parse.quote(path, safe=""),
                             token=token)[0] == 200, 600, "big.bin on the hub")
        t_index = time.monotonic() - t0

        def tunnel_url():
            st, body = api("GET", wsp + "/hosts", token=token)
            return body["hosts"][0].get("tunnel_url") if st == 200 and body["hosts"] else None
        base = wait_for(tunnel_url, 60, "the host's tunnel_url")
        prefix = "https://127.0.0.1:%d/" % public_port
        if not base.startswith(prefix):
            raise RuntimeError("unexpected tunnel_url %r" % base)
        relay_base = base.rstrip("/")  # https://127.0.0.1:PUBLIC/h/SLUG

        def read_token():
            st, body = api("POST", wsp + "/urls", {"path": path}, token=token)
            if st != 201:
                raise RuntimeError("POST urls: %r %r" % (st, body))
            return body["token"]

        # nginx in front of the same content server, with the relay's certificate
        ngx_dir = os.path.join(work, "nginx")
        os.makedirs(ngx_dir)
        ngx_port = free_port()
        conf = os.path.join(ngx_dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF % {"dir": ngx_dir, "listen": listen, "port": ngx_port,
                                  "cert": os.path.join(relay_data, "relay.pem"),
                                  "key": os.path.join(relay_data, "relay.key")})
        nginx = procs.start("nginx", ["nginx", "-c", conf, "-p", ngx_dir])
        wait_port(ngx_port, nginx, "nginx")

        def direct():
            return "http://127.0.0.1:%d/c/%s" % (listen, read_token())

        def via_relay():
            return "%s/c/%s" % (relay_base, read_token())

        def via_nginx():
            return "https://127.0.0.1:%d/c/%s" % (ngx_port, read_token())

        mb_direct = best_of(a.runs, size, direct)
        mb_relay = best_of(a.runs, size, via_relay, ca)
        mb_nginx = best_of(a.runs, size, via_nginx, ca)
        rows += [
            ("direct: host content server (HTTP)", "%.0f MB/s" % mb_direct, ""),
            ("through roost relay (HTTPS)", "%.0f MB/s" % mb_relay,
             "%.2fx direct (goal >= 0.8x); %.2fx nginx" % (mb_relay / mb_direct,
                                                          mb_relay / mb_nginx)),
            ("through nginx TLS proxy_pass", "%.0f MB/s" % mb_nginx,
             "%.2fx direct" % (mb_nginx / mb_direct)),
        ]

        if shutil.which("wrk"):
            r_rps, r_p99, r_note = wrk("%s/healthz" % relay_base)
            n_rps, n_p99, n_note = wrk("https://127.0.0.1:%d/healthz" % ngx_port)
            rows += [
                ("/healthz, wrk -t2 -c50 -d5s, through relay", "%.0f req/s, p99 %s" % (
                    r_rps, r_p99), "%.2fx nginx%s" % (r_rps / n_rps,
                                                      "; " + r_note if r_note else "")),
                ("/healthz, wrk -t2 -c50 -d5s, through nginx", "%.0f req/s, p99 %s" % (
                    n_rps, n_p99), n_note),
            ]
        else:
            rows.append(("small requests", "wrk not installed", ""))
    finally:
        procs.stop_all()
        if os.environ.get("ROOST_KEEP_TMP"):
            print("kept", work, file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)

    print("| %d MiB random file, loopback, curl best of %d | figure | ratio |" % (
        a.size_mib, a.runs))
    print("|---|---|---|")
    for r in rows:
        print("| %s | %s | %s |" % r)
    print("\n(host indexed the file and the hub had it %.1f s after it was written)" % t_index)


if __name__ == "__main__":
    main()
