#!/usr/bin/env python3
"""Benchmark idle feed subscribers on one hub (issue 18, docs/benchmarks.md):
  - the hub's RSS and thread count before and after N subscribers connect (and per
    subscriber);
  - the hub's CPU seconds over a stretch of idle time (heartbeats included);
  - the latency of an event to every subscriber: from just before the commit's request
    until each subscriber has read the event, p50 and p99 over all subscribers and
    events, and the time until the last subscriber per event.
All subscribers are raw sockets in this one process (tests/integration/feedpool.py), so
the latency includes this process reading N sockets (one Python thread).
Usage: bench/feed_idle.py ROOST_BIN [--subscribers 10000] [--idle 30] [--events 20]
       [--heartbeat 15] [--db sqlite|postgres]
"""
import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
from feedpool import Pool, proc_status, raise_nofile  # noqa: E402

PASSWORD = "bench password 1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


class Hub:
    def __init__(self, roost, root, heartbeat, db_url=None):
        self.data = os.path.join(root, "hub")
        env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(root, "cfg"),
                   ROOST_PASSWORD=PASSWORD)
        db = ["--db", db_url] if db_url else []
        subprocess.run([roost, "init", "--data", self.data, "--email", "b@example.test", *db],
                       env=env, check=True, capture_output=True)
        self.port = free_port()
        self.log = open(os.path.join(root, "hub.log"), "wb")
        self.proc = subprocess.Popen(
            [roost, "serve", "--data", self.data, *db, "--api-port", str(self.port),
             "--content-port", str(free_port()), "--dashboard-port", str(free_port()),
             "--rate-limit", "0", "--max-conns-per-ip", "0", "--heartbeat", str(heartbeat)],
            stdout=self.log, stderr=self.log, env=env)
        for _ in range(400):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        self.token = None
        st, body = self.call("POST", "/api/v1/login",
                             {"email": "b@example.test", "password": PASSWORD})
        self.token = body["token"]
        st, body = self.call("GET", "/api/v1/workspaces")
        self.ws = body["workspaces"][0]["id"]

    def call(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        h = {"Authorization": "Bearer " + self.token} if self.token else {}
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        payload = resp.read()
        conn.close()
        return resp.status, (json.loads(payload) if payload[:1] == b"{" else payload)

    def mkdir(self, path):
        st, body = self.call("POST", "/api/v1/workspaces/%d/folders" % self.ws,
                             {"path": path, "parents": True})
        assert st in (200, 201), (st, body)

    def last_seq(self):
        st, body = self.call("GET", "/api/v1/workspaces")
        return [w for w in body["workspaces"] if w["id"] == self.ws][0]["last_seq"]

    def rss_mib(self):
        return proc_status(self.proc.pid, "VmRSS") / 1024

    def threads(self):
        return proc_status(self.proc.pid, "Threads")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(60)


def run(args, roost, db_url):
    root = tempfile.mkdtemp(prefix="roost-feedidle-")
    hub = Hub(roost, root, args.heartbeat, db_url)
    try:
        hub.mkdir("/warm-up")
        time.sleep(1)
        rss0, threads0 = hub.rss_mib(), hub.threads()
        t = time.monotonic()
        pool = Pool(hub.port, hub.ws, hub.token, args.subscribers)
        pool.wait(lambda: all(s.status for s in pool.subs), 300, "every response head")
        opened = time.monotonic() - t
        refused = sum(1 for s in pool.subs if s.status != 200)
        pool.pump(2)
        rss1, threads1 = hub.rss_mib(), hub.threads()

        cpu0, t0 = cpu_seconds(hub.proc.pid), time.monotonic()
        pool.pump(args.idle)
        cpu_idle = cpu_seconds(hub.proc.pid) - cpu0
        idle_s = time.monotonic() - t0
        beats = sum(s.heartbeats for s in pool.subs)

        live = [s for s in pool.subs if s.status == 200 and not s.closed]
        lat, first, last = [], [], []
        cpu0 = cpu_seconds(hub.proc.pid)
        for i in range(args.events):
            seq = hub.last_seq() + 1
            t0 = time.monotonic()
            hub.mkdir("/event-%d" % i)
            pool.wait(lambda: all(seq in s.arrived for s in live), 120, "event %d" % seq)
            got = [s.arrived[seq] - t0 for s in live]
            lat.extend(got)
            first.append(min(got))
            last.append(max(got))
        cpu_events = cpu_seconds(hub.proc.pid) - cpu0
        rss2 = hub.rss_mib()
        pool.close()
        t = time.monotonic()
        while time.monotonic() - t < 60:
            st, text = hub.call("GET", "/metrics")
            line = [l for l in text.decode().splitlines()
                    if l.startswith("roost_feed_subscribers ")]
            if line and line[0].split()[1] == "0":
                break
            time.sleep(0.1)
        let_go = time.monotonic() - t
        ms = lambda v: "%.1f ms" % (v * 1000)  # noqa: E731
        print("| | %s, %d subscribers |" % ("PostgreSQL" if db_url else "SQLite",
                                            args.subscribers))
        print("|---|---|")
        print("| opened (one client, sequentially) | %.1f s, %d refused |" % (opened, refused))
        print("| hub threads | %d before, %d with them |" % (threads0, threads1))
        print("| hub RSS | %.1f MiB before, %.1f MiB with them (+%.1f MiB, %.1f KiB each);"
              " %.1f MiB after the events |" % (rss0, rss1, rss1 - rss0,
                                                (rss1 - rss0) * 1024 / args.subscribers,
                                                rss2))
        print("| hub CPU over %.0f s idle | %.2f s (%.1f%% of a core; %d heartbeats sent) |"
              % (idle_s, cpu_idle, 100 * cpu_idle / idle_s, beats))
        print("| event to every subscriber (%d events) | p50 %s, p99 %s |"
              % (args.events, ms(pct(lat, 50)), ms(pct(lat, 99))))
        print("| until the first / the last subscriber has it | p50 %s / %s, p99 %s / %s |"
              % (ms(pct(first, 50)), ms(pct(last, 50)), ms(pct(first, 99)), ms(pct(last, 99))))
        print("| hub CPU per event (commit and fan-out) | %s |" % ms(cpu_events / args.events))
        print("| all let go after they hang up | %.1f s |" % let_go)
    finally:
        hub.stop()
        shutil.rmtree(root, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("roost")
    ap.add_argument("--subscribers", type=int, default=10000)
    ap.add_argument("--idle", type=float, default=30)
    ap.add_argument("--events", type=int, default=20)
    ap.add_argument("--heartbeat", type=int, default=15)
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    args = ap.parse_args()
    raise_nofile(args.subscribers + 256)
    db_url = None
    if args.db == "postgres":
        import pgcluster
        pg = pgcluster.cluster()
        db_url = pg.create_database("roost_feedidle_%d" % os.getpid())
    run(args, os.path.abspath(args.roost), db_url)


if __name__ == "__main__":
    main()
