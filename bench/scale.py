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
import multiprocessing
import os
import random
import re
import shutil
import socket
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
    """One subscriber reading every event on a plain socket; notes when the bytes of
    each probe's event arrived (the time of the recv that brought them), so Python's
    line splitting and JSON parsing of the batch's events are not counted."""

    PROBE = re.compile(rb'"path":"(/probe-\d+)"')

    def __init__(self, port, ws, token):
        self.arrivals, self.events = {}, 0
        self.ready, self.stop = threading.Event(), False
        self.sock = socket.create_connection(("127.0.0.1", port), 600)
        self.sock.sendall(("GET /api/v1/workspaces/%d/events HTTP/1.1\r\nHost: x\r\n"
                           "Authorization: Bearer %s\r\n\r\n" % (ws, token)).encode())
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()
        self.ready.wait(10)

    def run(self):
        tail = b""
        self.ready.set()
        while not self.stop:
            try:
                data = self.sock.recv(1 << 20)
            except OSError:
                break
            now = time.monotonic()
            if not data:
                break
            self.events += data.count(b"\ndata: ")
            for m in self.PROBE.finditer(tail + data):
                self.arrivals.setdefault(m.group(1).decode(), now)
            tail = data[-64:]
        self.sock.close()


class Prober:
    """A mkdir every interval seconds on a connection of its own, while the load runs;
    notes when each one's response had arrived."""

    def __init__(self, port, ws, token, interval=0.05):
        self.port, self.ws, self.token = port, ws, token
        self.interval, self.sent, self.stop = interval, {}, False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        h = {"Authorization": "Bearer " + self.token, "Content-Type": "application/json"}
        i = 0
        while not self.stop:
            path = "/probe-%d" % i
            conn.request("POST", "/api/v1/workspaces/%d/folders" % self.ws,
                         body=json.dumps({"path": path}), headers=h)
            resp = conn.getresponse()
            resp.read()
            if resp.status == 201:
                self.sent[path] = time.monotonic()
            i += 1
            time.sleep(self.interval)
        conn.close()


def probe_main(port, ws, token, pipe):
    """The feed's subscriber and the prober, in a process of their own: in the
    bench's process they waited for Python's lock (the GIL) behind the batches'
    JSON, which counted the bench's own delays as feed latency."""
    feed = Feed(port, ws, token)
    prober = Prober(port, ws, token)
    pipe.send("ready")
    pipe.recv()
    prober.stop = True
    prober.t.join(30)
    time.sleep(1)
    feed.stop = True
    pipe.send((prober.sent, feed.arrivals, feed.events))


class Probes:
    """probe_main in a child process (fork): start() then finish() -> (sent, arrivals)."""

    def __init__(self, hub):
        ctx = multiprocessing.get_context("fork")
        self.pipe, child = ctx.Pipe()
        self.proc = ctx.Process(target=probe_main, args=(hub.port, hub.ws, hub.token, child),
                                daemon=True)
        self.proc.start()
        assert self.pipe.poll(30) and self.pipe.recv() == "ready"

    def finish(self):
        self.pipe.send("stop")
        assert self.pipe.poll(60)
        sent, arrivals, _ = self.pipe.recv()
        self.proc.join(10)
        return sent, arrivals


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


class RawClient:
    """One keep-alive connection on a plain socket: a request's time to the answer's
    first byte and to its last, read with recv_into into one buffer and nothing parsed
    in between but the head, so the figures are the hub's answer (and loopback), not
    Python's HTTP or JSON parsing. (http.client's reading and json.loads of a 3 MB
    listing cost this process more CPU than the hub spends making it.)"""

    def __init__(self, hub):
        self.hub = hub
        self.sock = socket.create_connection(("127.0.0.1", hub.port), 120)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray(1 << 23)

    def get(self, path):
        """(status, body bytes, ms to first byte, ms to last byte)."""
        req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n" %
               (path, self.hub.token)).encode()
        view, n, first, head_end, need = memoryview(self.buf), 0, None, -1, None
        t = time.perf_counter()
        self.sock.sendall(req)
        while need is None or n < need:
            if n == len(self.buf):
                self.buf.extend(bytes(len(self.buf)))
                view = memoryview(self.buf)
            k = self.sock.recv_into(view[n:])
            if first is None:
                first = time.perf_counter()
            if not k:
                raise ConnectionError("the hub closed the connection")
            n += k
            if head_end < 0:
                head_end = self.buf.find(b"\r\n\r\n", 0, n)
                if head_end >= 0:
                    head = bytes(self.buf[:head_end]).decode("latin-1")
                    m = re.search(r"(?im)^content-length:\s*(\d+)", head)
                    assert m, "no Content-Length: " + head
                    need = head_end + 4 + int(m.group(1))
        last = time.perf_counter()
        status = int(head.split(" ", 2)[1])
        body = bytes(self.buf[head_end + 4:need])
        return status, body, (first - t) * 1000, (last - t) * 1000

    def close(self):
        self.sock.close()


def timed(hub, path, n, check=None):
    """(p50, p99 of the last byte, p99 of the first byte, hub CPU ms a request) of n
    GETs on one keep-alive connection, from the request to the answer's last byte.
    check() sees each body, parsed after its time was taken."""
    c = RawClient(hub)
    last, first = [], []
    c.get(path(0) if callable(path) else path)  # the connection's thread exists now
    cpu0, wait0 = hub.cpu_ticks(), run_delay_ns(hub)
    for i in range(n):
        p = path(i) if callable(path) else path
        status, payload, t1, t2 = c.get(p)
        first.append(t1)
        last.append(t2)
        assert status == 200, (status, p, payload[:200])
        if check:
            check(json.loads(payload))
    cpu_ms = (hub.cpu_ticks() - cpu0) * 1000.0 / os.sysconf("SC_CLK_TCK") / n
    wait_ms = waited_ns(wait0, run_delay_ns(hub)) / 1e6 / n
    c.close()
    return pct(last, 50), pct(last, 99), pct(first, 99), cpu_ms, wait_ms


def run_delay_ns(hub):
    """{thread: nanoseconds it has spent runnable but waiting for a CPU}
    (/proc/PID/task/TID/schedstat, its second field): on a loaded machine most of
    a request's time past its CPU time."""
    out = {}
    d = "/proc/%d/task" % hub.proc.pid
    for tid in os.listdir(d):
        try:
            with open(os.path.join(d, tid, "schedstat")) as f:
                out[tid] = int(f.read().split()[1])
        except OSError:
            pass
    return out


def waited_ns(before, after):
    """The wait since before, of the threads alive at the end (new ones from 0)."""
    return sum(v - before.get(tid, 0) for tid, v in after.items())


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


def print_pg_stats(pg, dbname, files):
    """The statements PostgreSQL spent most time on while the workspace grew."""
    rows = pg.query("SELECT calls, total_exec_time, rows, query FROM pg_stat_statements "
                    "ORDER BY total_exec_time DESC LIMIT 25", dbname)
    total = sum(float(r[1]) for r in pg.query(
        "SELECT calls, total_exec_time FROM pg_stat_statements", dbname))
    print("  PostgreSQL's execution time while growing: %.0f ms in all, %.3f ms a file"
          % (total, total / files))
    for calls, ms, nrows, query in rows:
        print("  %9d calls %9.0f ms %6.3f ms/file %9d rows  %s" % (
            int(calls), float(ms), float(ms) / files, int(nrows),
            " ".join(query.split())[:150]))


def run(roost, backend, a, work):
    pg = dbname = url = None
    if backend == "postgres":
        if a.pg_stats:
            os.environ.setdefault("PGCLUSTER_OPTS", "-c shared_preload_libraries=pg_stat_statements")
        pg = pgcluster.cluster()
        dbname = "scale_%d" % os.getpid()
        url = pg.create_database(dbname)
        if a.pg_stats:
            pg.query("CREATE EXTENSION pg_stat_statements", dbname)
    hub = Hub(roost, os.path.join(work, backend), url)
    r = {"backend": backend}
    try:
        base = "/api/v1/workspaces/%d" % hub.ws
        probes = Probes(hub)
        t0 = time.monotonic()
        steps = []
        print("%s: growing to %d files in %d folders" % (backend, a.files, a.folders), flush=True)
        big = big_size(a.files, a.big)
        r["files"], r["grow_s"] = grow(hub, a.files, a.folders, big, steps)
        sent, arrivals = probes.finish()
        if a.pg_stats and pg:
            print_pg_stats(pg, dbname, r["files"])
        lat = [max(0.0, (arrivals[p] - t) * 1000) for p, t in sent.items() if p in arrivals]
        r["feed"] = (len(sent), len(lat), pct(lat, 50), pct(lat, 99)) if lat else None
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
        # GET usage reads every version of the workspace (its stored bytes are the
        # distinct chunks): a few samples, to show what that costs at this size
        r["usage"] = timed(hub, base + "/usage", 5)
        r["rss_mib"] = hub.rss_kib() / 1024
        r["peak_rss_mib"] = peak_rss_kib(hub) / 1024
        r["db_bytes"] = db_bytes(hub, backend, pg, dbname)
        r["total_s"] = time.monotonic() - t0
        r["load"] = "%.1f %.1f %.1f" % os.getloadavg()
    finally:
        hub.stop()
    return r


def report(r):
    f = r["files"]
    print("\n== %s: %d files (grown in %.0f s, measured in %.0f s in all; load average "
          "%s at the end)" % (r["backend"], f, r["grow_s"], r["total_s"], r["load"]))
    for done, rate, rss in r["rates"]:
        print("  commits while growing, at %9d files: %7.0f files/s (hub RSS %.1f MiB)" % (
            done, rate, rss / 1024))
    print("  (to the last byte: p50, p99; to the first byte: p99; the hub's CPU a request and\n"
          "   the time its threads waited for a CPU a request, mean)")

    def line(what, k, goal=""):
        print("  %-42s p50 %5.1f ms, p99 %5.1f ms; first byte p99 %5.1f ms; CPU %5.2f ms, "
              "waited %5.2f ms%s"
              % ((what,) + tuple(r[k]) + (goal,)))
    line("list a %d-entry folder (limit=10000):" % r["big"], "list",
         " (goal p99 <= 20 ms)")
    line("list its first default page (1,000):", "list_default")
    line("search by name (a file's digits):", "search", " (goal p99 <= 50 ms)")
    line("search by name (a folder's):", "search_folder")
    line("stat by path (info):", "info")
    line("versions of a file:", "versions")
    line("trash page (empty trash):", "trash")
    line("usage (5 samples; reads every version):", "usage")
    if r["feed"]:
        print("  feed latency under load (%d probes, %d seen): p50 %.2f ms, p99 %.2f ms "
              "(goal p99 < 20 ms)" % r["feed"])
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
    ap.add_argument("--pg-stats", action="store_true",
                    help="PostgreSQL: print the statements it spent most time on "
                    "(pg_stat_statements)")
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
