#!/usr/bin/env python3
"""Grow one workspace to a million files and measure the metadata side (issue 18):
  - commits per second while growing (files a second through POST versions/batch,
    1,000 a request, one figure per tenth of the run);
  - a page of a 10,000-entry folder (GET list?limit=10000): p50/p99;
  - search by name (GET search?q=, a selective part of a name): p50/p99;
  - feed latency under that load: a subscriber times each probe commit (a mkdir
    every 50 ms while the batches run) from its response to its event;
  - stat by path (GET info) and a version history (GET versions): p99;
  - the hub's RSS (now and its peak) and the database's size per file.
The files are in FOLDERS folders, filled one after another as `roost put` of a tree
does; /big holds 10,000 of them. Each file is one small chunk from a pool of 256,
so every version has its version_chunks row as a real file would.
Runs on SQLite and on PostgreSQL (a throwaway cluster, tests/integration/pgcluster.py).

Usage: bench/scale.py ROOST_BIN [--files 1000000] [--folders N] [--backend sqlite|postgres|both]
"""
import argparse
import hashlib
import http.client
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
import pgcluster  # noqa: E402
from hub import Hub, pct  # noqa: E402

BATCH = 1000
POOL = 256
BIG = 10000


def quote(p):
    return urllib.parse.quote(p, safe="")


def big_size(files, big=None):
    """Files in /big: 10,000 (or --big), at most a tenth of a run (half with --big)."""
    return min(big, files // 2) if big else min(BIG, max(1, files // 10))


def layout(files, folders, big):
    """(folder, name) of every file, in commit order: /big's first, then the rest
    spread evenly over folders-1 folders."""
    for i in range(big):
        yield "/big", "f%07d.dat" % i
    rest, n = files - big, max(1, folders - 1)
    per, extra = divmod(rest, n)
    k = big
    for d in range(n):
        for _ in range(per + (1 if d < extra else 0)):
            yield "/d%05d" % d, "f%07d.dat" % k
            k += 1


class Feed:
    """One subscriber reading every event; records when each probe's event came."""

    def __init__(self, hub):
        self.hub, self.arrivals, self.events = hub, {}, 0
        self.ready, self.stop = threading.Event(), False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()
        self.ready.wait(10)

    def run(self):
        c = http.client.HTTPConnection("127.0.0.1", self.hub.port, timeout=600)
        c.request("GET", "/api/v1/workspaces/%d/events" % self.hub.ws,
                  headers={"Authorization": "Bearer " + self.hub.token})
        r = c.getresponse()
        self.ready.set()
        while not self.stop:
            line = r.fp.readline()
            if not line:
                break
            if line.startswith(b"data: "):
                self.events += 1
                if b'"/probe-' in line:
                    path = json.loads(line[6:])["payload"].get("path")
                    self.arrivals[path] = time.monotonic()
        c.close()


class Prober:
    """A mkdir every interval seconds on a connection of its own, while the load runs."""

    def __init__(self, hub, interval=0.05):
        self.hub, self.interval, self.sent, self.stop = hub, interval, {}, False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.hub.port, timeout=120)
        h = {"Authorization": "Bearer " + self.hub.token, "Content-Type": "application/json"}
        i = 0
        while not self.stop:
            path = "/probe-%d" % i
            conn.request("POST", "/api/v1/workspaces/%d/folders" % self.hub.ws,
                         body=json.dumps({"path": path}), headers=h)
            resp = conn.getresponse()
            resp.read()
            if resp.status == 201:
                self.sent[path] = time.monotonic()
            i += 1
            time.sleep(self.interval)
        conn.close()


def chunk_pool(hub):
    base = "/api/v1/workspaces/%d" % hub.ws
    pool = []
    for i in range(POOL):
        data = b"scale bench chunk %d\n" % i
        h = hashlib.sha256(data).hexdigest()
        st, body = hub.call("PUT", base + "/chunks/" + h, raw=data)
        assert st in (200, 201), (st, body)
        pool.append((h, len(data)))
    return pool


def grow(hub, files, folders, big, out):
    base = "/api/v1/workspaces/%d" % hub.ws
    pool = chunk_pool(hub)
    step = max(BATCH, files // 10)
    done, mark, t_mark = 0, step, time.monotonic()
    t0 = t_mark
    batch = []

    def flush():
        nonlocal batch
        st, body = hub.call("POST", base + "/versions/batch", {"versions": batch})
        assert st == 200, (st, body)
        bad = [r for r in body["results"] if r["status"] != 201]
        assert not bad, bad[:3]
        batch = []

    for k, (folder, name) in enumerate(layout(files, folders, big)):
        h, size = pool[k % POOL]
        batch.append({"path": folder + "/" + name, "size": size, "hash": h,
                      "chunks": [{"hash": h, "size": size}]})
        if len(batch) == BATCH:
            flush()
            done += BATCH
            if done >= mark:
                now = time.monotonic()
                rate = step / (now - t_mark)
                out.append((done, rate, hub.rss_kib()))
                print("  %9d files  %7.0f files/s  hub RSS %.1f MiB" % (
                    done, rate, hub.rss_kib() / 1024), flush=True)
                mark, t_mark = mark + step, now
    if batch:
        done += len(batch)
        flush()
    return done, time.monotonic() - t0


def timed(hub, path, n, check=None):
    """p50 and p99 ms of n GETs on one keep-alive connection: from the request to
    the answer's last byte (parsing the JSON is the client's time, not counted)."""
    conn = http.client.HTTPConnection("127.0.0.1", hub.port, timeout=120)
    h = {"Authorization": "Bearer " + hub.token}
    ms = []
    for i in range(n):
        p = path(i) if callable(path) else path
        t = time.perf_counter()
        conn.request("GET", p, headers=h)
        resp = conn.getresponse()
        payload = resp.read()
        ms.append((time.perf_counter() - t) * 1000)
        assert resp.status == 200, (resp.status, p, payload[:200])
        if check:
            check(json.loads(payload))
    conn.close()
    return pct(ms, 50), pct(ms, 99)


def db_bytes(hub, backend, pg, dbname):
    if backend == "postgres":
        return int(pg.query("SELECT pg_database_size('%s')" % dbname)[0][0])
    return sum(os.path.getsize(os.path.join(hub.data, f)) for f in os.listdir(hub.data)
               if f.startswith("roost.db"))


def peak_rss_kib(hub):
    with open("/proc/%d/status" % hub.proc.pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def run(roost, backend, a, work):
    pg = dbname = url = None
    if backend == "postgres":
        pg = pgcluster.cluster()
        dbname = "scale_%d" % os.getpid()
        url = pg.create_database(dbname)
    hub = Hub(roost, os.path.join(work, backend), url)
    r = {"backend": backend}
    try:
        base = "/api/v1/workspaces/%d" % hub.ws
        feed = Feed(hub)
        prober = Prober(hub)
        t0 = time.monotonic()
        steps = []
        print("%s: growing to %d files in %d folders" % (backend, a.files, a.folders), flush=True)
        big = big_size(a.files, a.big)
        r["files"], r["grow_s"] = grow(hub, a.files, a.folders, big, steps)
        prober.stop = True
        prober.t.join(30)
        time.sleep(1)
        lat = [max(0.0, (feed.arrivals[p] - t) * 1000) for p, t in prober.sent.items()
               if p in feed.arrivals]
        r["feed"] = (len(prober.sent), len(lat), pct(lat, 50), pct(lat, 99)) if lat else None
        feed.stop = True
        r["rates"] = steps
        r["big"] = big
        rnd = random.Random(18)

        def whole_page(body):
            assert len(body["entries"]) == big and body["next_cursor"] is None, (
                len(body["entries"]), body.get("next_cursor"))
        r["list"] = timed(hub, base + "/list?path=%2Fbig&limit=10000", a.samples, whole_page)
        r["list_default"] = timed(hub, base + "/list?path=%2Fbig", a.samples)
        n = r["files"]

        def one_hit(body):
            assert len(body["results"]) >= 1, body
        # a selective part of a name: "0123456" of f0123456.dat
        r["search"] = timed(hub, lambda i: base + "/search?q=%07d" % rnd.randrange(n),
                            a.samples, one_hit)
        r["search_folder"] = timed(hub, lambda i: base + "/search?q=d%05d" %
                                   rnd.randrange(max(1, a.folders - 1)), a.samples, one_hit)
        paths = list(layout(a.files, a.folders, big))

        def a_path(i):
            d, f = paths[rnd.randrange(len(paths))]
            return d + "/" + f
        r["info"] = timed(hub, lambda i: base + "/info?path=" + quote(a_path(i)), a.samples)
        r["versions"] = timed(hub, lambda i: base + "/versions?path=" + quote(a_path(i)),
                              a.samples)
        r["trash"] = timed(hub, base + "/trash", a.samples)
        r["rss_mib"] = hub.rss_kib() / 1024
        r["peak_rss_mib"] = peak_rss_kib(hub) / 1024
        r["db_bytes"] = db_bytes(hub, backend, pg, dbname)
        r["total_s"] = time.monotonic() - t0
    finally:
        hub.stop()
    return r


def report(r):
    f = r["files"]
    print("\n== %s: %d files (grown in %.0f s, measured in %.0f s in all)" % (
        r["backend"], f, r["grow_s"], r["total_s"]))
    for done, rate, rss in r["rates"]:
        print("  commits while growing, at %9d files: %7.0f files/s (hub RSS %.1f MiB)" % (
            done, rate, rss / 1024))
    print("  list a %d-entry folder in one page (limit=10000): p50 %.1f ms, p99 %.1f ms "
          "(goal p99 <= 20 ms at 10,000)" % ((r["big"],) + r["list"]))
    print("  list its first default page (1,000):          p50 %.1f ms, p99 %.1f ms" %
          r["list_default"])
    print("  search by name (a file's digits):             p50 %.1f ms, p99 %.1f ms "
          "(goal p99 <= 50 ms)" % r["search"])
    print("  search by name (a folder's):                  p50 %.1f ms, p99 %.1f ms" %
          r["search_folder"])
    if r["feed"]:
        print("  feed latency under load (%d probes, %d seen): p50 %.2f ms, p99 %.2f ms "
              "(goal p99 < 20 ms)" % r["feed"])
    print("  stat by path (info):                          p50 %.1f ms, p99 %.1f ms" % r["info"])
    print("  versions of a file:                           p50 %.1f ms, p99 %.1f ms" %
          r["versions"])
    print("  trash page (empty trash):                     p50 %.1f ms, p99 %.1f ms" % r["trash"])
    print("  hub RSS %.1f MiB (peak %.1f MiB); database %.1f MiB = %.0f bytes a file" % (
        r["rss_mib"], r["peak_rss_mib"], r["db_bytes"] / 2**20, r["db_bytes"] / f))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("roost")
    ap.add_argument("--files", type=int, default=1000000)
    ap.add_argument("--folders", type=int, default=None,
                    help="folders (default files/100: 10,000 at a million)")
    ap.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    ap.add_argument("--big", type=int, default=None,
                    help="files in /big (default 10,000, at most a tenth of --files; "
                    "with this, at most half)")
    ap.add_argument("--samples", type=int, default=200, help="requests per latency figure")
    ap.add_argument("--json", help="also write the figures to this file")
    a = ap.parse_args()
    if a.files < 10:
        ap.error("--files: at least 10")
    a.folders = a.folders or max(2, a.files // 100)
    roost = os.path.abspath(a.roost)
    work = tempfile.mkdtemp(prefix="roost-scalebench-")
    results = []
    try:
        for backend in ("sqlite", "postgres") if a.backend == "both" else (a.backend,):
            r = run(roost, backend, a, work)
            report(r)
            results.append(r)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
