#!/usr/bin/env python3
"""Benchmark the hub's control plane in one run:
  - feed latency: time from a commit's HTTP response to its event at a subscriber,
    p50 and p99 over N commits, on SQLite and on PostgreSQL;
  - metadata throughput with wrk: listing a folder of 10,000 files and file-info
    requests per second, next to nginx serving a static JSON file of the same size;
  - 1,000 idle feed subscribers: the hub's RSS and CPU while they wait.
Usage: bench/hub.py ROOST_BIN [--commits 1000] [--files 10000] [--subscribers 1000]
"""
import argparse
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
import pgcluster  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Hub:
    def __init__(self, roost, root, db_url=None):
        self.roost, self.root = roost, root
        self.data = os.path.join(root, "hub")
        self.env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(root, "cfg"),
                        ROOST_PASSWORD="bench password 1")
        self.port = free_port()
        db = ["--db", db_url] if db_url else []
        subprocess.run([roost, "init", "--data", self.data, "--email", "b@example.test", *db],
                       env=self.env, check=True, capture_output=True)
        self.log = open(os.path.join(root, "hub.log"), "wb")
        self.proc = subprocess.Popen(
            [roost, "serve", "--data", self.data, *db, "--api-port", str(self.port),
             "--content-port", str(free_port()), "--dashboard-port", str(free_port()),
             "--rate-limit", "0", "--max-conns-per-ip", "0"], stdout=self.log, stderr=self.log, env=self.env)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        st, body = self.call("POST", "/api/v1/login",
                             {"email": "b@example.test", "password": "bench password 1"})
        self.token = body["token"]
        st, body = self.call("GET", "/api/v1/workspaces")
        self.ws = body["workspaces"][0]["id"]

    def call(self, method, path, body=None, raw=None):
        h = {"Authorization": "Bearer " + getattr(self, "token", "")}
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        try:
            self.conn.request(method, path, body=data, headers=h)
            resp = self.conn.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            # The hub closes a keep-alive connection left idle past its head
            # timeout (15 s; the wrk runs take longer): a GET tries again.
            if method != "GET":
                raise
            self.conn.close()
            self.conn.request(method, path, body=data, headers=h)
            resp = self.conn.getresponse()
        payload = resp.read()
        return resp.status, (json.loads(payload) if payload[:1] == b"{" else payload)

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))

    def cpu_ticks(self):
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    def stop(self):
        self.conn.close()
        self.proc.terminate()
        self.proc.wait(60)
        self.log.close()


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def feed_latency(hub, commits):
    """ms from each mkdir's response to its event at a subscriber."""
    arrivals = {}
    ready = threading.Event()

    def listen():
        c = http.client.HTTPConnection("127.0.0.1", hub.port, timeout=60)
        c.request("GET", "/api/v1/workspaces/%d/events" % hub.ws,
                  headers={"Authorization": "Bearer " + hub.token})
        r = c.getresponse()
        ready.set()
        while len(arrivals) < commits:
            line = r.fp.readline()
            if not line:
                break
            if line.startswith(b"data: "):
                path = json.loads(line[6:])["payload"].get("path")
                arrivals[path] = time.monotonic()
        c.close()

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    ready.wait(10)
    time.sleep(0.2)
    done = {}
    for i in range(commits):
        path = "/feed-%d" % i
        st, _ = hub.call("POST", "/api/v1/workspaces/%d/folders" % hub.ws, {"path": path})
        done[path] = time.monotonic()
    t.join(30)
    # An event can beat the commit's own response to the client: count that as 0.
    lat = [max(0.0, (arrivals[p] - done[p]) * 1000) for p in done if p in arrivals]
    return len(lat), pct(lat, 50), pct(lat, 99)


def wrk(url, headers, seconds=5):
    args = ["wrk", "-t2", "-c16", "-d%ds" % seconds, "--latency"]
    for h in headers:
        args += ["-H", h]
    out = subprocess.run(args + [url], capture_output=True, check=True).stdout.decode()
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def nginx_static(root, body):
    """nginx serving body as a static file; returns (url, proc)."""
    os.makedirs(os.path.join(root, "www"), exist_ok=True)
    with open(os.path.join(root, "www", "list.json"), "wb") as f:
        f.write(body)
    port = free_port()
    conf = os.path.join(root, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""worker_processes 2; daemon off; pid %s/nginx.pid; error_log %s/error.log;
events { worker_connections 1024; }
http { access_log off; sendfile on; default_type application/json;
  client_body_temp_path %s; proxy_temp_path %s; fastcgi_temp_path %s; uwsgi_temp_path %s;
  scgi_temp_path %s;
  server { listen 127.0.0.1:%d; root %s/www; } }
""" % (root, root, root, root, root, root, root, port, root))
    proc = subprocess.Popen(["nginx", "-c", conf, "-p", root], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.1).close()
            break
        except OSError:
            time.sleep(0.05)
    return "http://127.0.0.1:%d/list.json" % port, proc


def idle_subscribers(hub, n):
    socks = []
    rss0 = hub.rss_kib()
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", hub.port))
        s.sendall(("GET /api/v1/workspaces/%d/events HTTP/1.1\r\nHost: x\r\n"
                   "Authorization: Bearer %s\r\n\r\n" % (hub.ws, hub.token)).encode())
        socks.append(s)
    time.sleep(3)
    st, body = hub.call("GET", "/metrics")
    subs = int(re.search(rb"roost_feed_subscribers (\d+)", body).group(1))
    rss1 = hub.rss_kib()
    t0 = hub.cpu_ticks()
    time.sleep(10)
    cpu = (hub.cpu_ticks() - t0) / os.sysconf("SC_CLK_TCK") / 10 * 100
    for s in socks:
        s.close()
    return subs, rss0, rss1, cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("roost")
    ap.add_argument("--commits", type=int, default=1000)
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--subscribers", type=int, default=1000)
    a = ap.parse_args()
    roost = os.path.abspath(a.roost)
    work = tempfile.mkdtemp(prefix="roost-hubbench-")
    os.chmod(work, 0o755)  # nginx's workers read their files from here
    rows = []
    try:
        for backend in ("sqlite", "postgres"):
            url = None
            if backend == "postgres":
                pg = pgcluster.cluster()
                url = pg.create_database("bench_feed")
            hub = Hub(roost, os.path.join(work, backend), url)
            n, p50, p99 = feed_latency(hub, a.commits)
            rows.append(("feed latency, %s (%d commits)" % (backend, n),
                         "p50 %.2f ms, p99 %.2f ms" % (p50, p99), "goal: p99 < 20 ms"))
            hub.stop()

        hub = Hub(roost, os.path.join(work, "meta"))
        base = "/api/v1/workspaces/%d" % hub.ws
        hub.call("POST", base + "/folders", {"path": "/big"})
        for i in range(a.files):
            hub.call("PUT", base + "/upload?path=" + urllib.parse.quote("/big/f%05d.txt" % i),
                     raw=b"x")
        st, listing = hub.call("GET", base + "/list?limit=10000&path=%2Fbig")
        body = json.dumps(listing).encode()
        auth = "Authorization: Bearer " + hub.token
        hub_url = "http://127.0.0.1:%d" % hub.port
        list_rps = wrk(hub_url + base + "/list?limit=10000&path=%2Fbig", [auth])
        info_rps = wrk(hub_url + base + "/info?path=%2Fbig%2Ff00042.txt", [auth])
        ng_url, ng = nginx_static(os.path.join(work, "nginx"), body)
        ng_list = wrk(ng_url, [])
        info_body = json.dumps(hub.call("GET", base + "/info?path=%2Fbig%2Ff00042.txt")[1]).encode()
        with open(os.path.join(work, "nginx", "www", "info.json"), "wb") as f:
            f.write(info_body)
        ng_info = wrk(ng_url.replace("list.json", "info.json"), [])
        ng.terminate()
        ng.wait()
        rows.append(("list a folder of %d files (%.1f MB JSON)" % (a.files, len(body) / 1e6),
                     "roost %.0f req/s, nginx %.0f req/s" % (list_rps, ng_list),
                     "%.2fx nginx" % (list_rps / ng_list)))
        rows.append(("file info (%d B JSON)" % len(info_body),
                     "roost %.0f req/s, nginx %.0f req/s" % (info_rps, ng_info),
                     "%.2fx nginx" % (info_rps / ng_info)))
        subs, rss0, rss1, cpu = idle_subscribers(hub, a.subscribers)
        rows.append(("%d idle feed subscribers" % subs,
                     "hub RSS %.1f -> %.1f MiB" % (rss0 / 1024, rss1 / 1024),
                     "CPU %.1f%% of a core while idle" % cpu))
        hub.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("| hub benchmark | figure | ratio / goal |")
    print("|---|---|---|")
    for r in rows:
        print("| %s | %s | %s |" % r)


if __name__ == "__main__":
    main()
