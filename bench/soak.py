#!/usr/bin/env python3
"""Soak test (issue 19): mixed load on one hub for a long time; nothing may grow
without bound and no request may fail.

On loopback: a hub (SQLite, its own GC/scrub schedule off), `roost relay
--self-signed`, and two host agents (A, B) attached to the relay. Workers, each in
its own thread, at once and for --minutes:
  - host editors A and B: each rewrites (and now and then deletes) files of its own
    folder (/edit-A, /edit-B) in its synced folder; checked: the hub has the new
    bytes (host_edit) and the other host's folder has them (host_fanout);
  - CLI: `roost put` of random files (1 KiB to 2 MiB) into /cli, `roost get` back
    (--host-ca: hosts first, directly or through the relay, then the hub), `roost rm`
    now and then; checked: exit 0 and the same SHA-256;
  - links: a share link's download (GET /s/TOKEN/file on the hub's content port) and
    a signed link's download through the relay (POST urls, GET https://RELAY/h/SLUG/
    c/TOKEN, from host A or B in turn) of /stable files; checked: 200, the bytes;
  - WebDAV with an app password: PUT, GET (the bytes), PROPFIND Depth 1 (207);
  - admin: every --admin-every seconds the trash emptied (POST trash/empty), `roost
    admin gc --retention 2m` and then `roost admin scrub`; checked: 200, exit 0. The
    workspace keeps 2 versions of a file (keep_versions), so with the trash emptied
    and GC freeing what no version holds, what is stored stays about steady: scrub's
    duration follows what is stored, and grew with it when every version was kept.
Every request's outcome is recorded; a failure is counted with its error.

Every --sample seconds (60) for the hub, the relay and each host: RSS (VmRSS),
open descriptors (/proc/PID/fd), threads, and per kind of request the count,
failures and latency p50/p99 of that interval: a row of OUT/soak.csv (written as it
goes). At the end: the hosts must converge to the hub's tree and the invariants of
tests/integration/invariants.py hold (chunks, no torn objects, no temp files left,
no spurious conflict copies); then OUT/soak.png (python3-matplotlib) and a verdict
(OUT/verdict.txt): each process's RSS, descriptors and threads, and each kind's
p50, fitted with a least-squares line over the second half of the run (the first
half is warm-up: caches, allocator arenas), must not grow faster than its
threshold (THRESHOLDS below: per hour, the larger of an absolute figure and a
share of the series' median), and no request may have failed. Exit 0 on a pass.

Usage: bench/soak.py ROOST_BIN [--minutes 60] [--out DIR] [--sample 60]
       [--admin-every 180] [--keep]
The seed is printed; ROOST_SEED=N replays the same choices (not the same timing).
"""
import argparse
import base64
import csv
import hashlib
import http.client
import json
import os
import random
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
MiB = 1 << 20
# python3-matplotlib is Debian's (scripts/install-deps): a python3 of its own on
# PATH (pyenv, a venv) does not see it, /usr/bin/python3 does. Checked before the
# run, not after an hour of it.
try:
    import matplotlib  # noqa: F401
except ImportError:
    if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") and \
            subprocess.run(["/usr/bin/python3", "-c", "import matplotlib"],
                           capture_output=True).returncode == 0:
        os.execv("/usr/bin/python3", ["/usr/bin/python3", *sys.argv])
    sys.exit("soak: python3-matplotlib is not installed: run `make deps`")

# A series grows without bound when its slope over the second half, per hour, is
# above the larger of (absolute, share of its median): (absolute, share).
THRESHOLDS = {
    "rss_kib": (16 * 1024, 0.25),  # 16 MiB/h, or a quarter of the RSS per hour
    "fds": (10, 0.25),
    "threads": (4, 0.25),
    "p50_ms": (50, 1.0),  # latency: doubling within an hour (and >= 50 ms)
}
PROCS = ("hub", "relay", "hostA", "hostB")
KINDS = ("host_edit", "host_fanout", "host_delete", "cli_put", "cli_get", "cli_rm",
         "share_get", "relay_get", "dav_put", "dav_get", "dav_propfind", "admin_gc",
         "admin_trash", "admin_scrub")


def sha(data):
    return hashlib.sha256(data).hexdigest()


class Recorder:
    """Every request's outcome: latencies of the current interval per kind, and the
    failures with their errors."""

    def __init__(self):
        self.lock = threading.Lock()
        self.lat = {k: [] for k in KINDS}
        self.fails = {k: 0 for k in KINDS}
        self.totals = {k: 0 for k in KINDS}
        self.fail_total = {k: 0 for k in KINDS}
        self.errors = []  # (elapsed s, kind, error)
        self.t0 = time.monotonic()

    def ok(self, kind, secs):
        with self.lock:
            self.lat.setdefault(kind, []).append(secs)
            self.totals[kind] = self.totals.get(kind, 0) + 1

    def fail(self, kind, err):
        with self.lock:
            self.fails[kind] = self.fails.get(kind, 0) + 1
            self.fail_total[kind] = self.fail_total.get(kind, 0) + 1
            self.totals[kind] = self.totals.get(kind, 0) + 1
            self.errors.append((time.monotonic() - self.t0, kind, str(err)[:2000]))
        print("soak: FAILED %s: %s" % (kind, str(err)[:500]), file=sys.stderr, flush=True)

    def take(self):
        """(latencies, failures) per kind since the last take."""
        with self.lock:
            lat, fails = self.lat, self.fails
            self.lat = {k: [] for k in KINDS}
            self.fails = {k: 0 for k in KINDS}
        return lat, fails

    def run(self, kind, fn, *args, since=None):
        """fn(*args) timed (from since, a time.monotonic(), if given); an exception
        is a failure of kind. Its result (True for None), or None if it failed."""
        t = time.monotonic() if since is None else since
        try:
            out = fn(*args)
        except Exception as e:  # noqa: BLE001 — every failure is counted and reported
            self.fail(kind, "%s: %s" % (type(e).__name__, e))
            return None
        self.ok(kind, time.monotonic() - t)
        return out if out is not None else True


def pct(xs, p):
    if not xs:
        return ""
    xs = sorted(xs)
    return round(1000 * xs[min(len(xs) - 1, int(p / 100.0 * len(xs)))], 1)


def tree_bytes(top):
    """The bytes of the files under top (0 when it is gone)."""
    total = 0
    for d, _, names in os.walk(top):
        for n in names:
            try:
                total += os.lstat(os.path.join(d, n)).st_size
            except OSError:
                pass
    return total


def proc_stats(pid):
    """(RSS KiB, open descriptors, threads) of a running process, or Nones."""
    try:
        rss = threads = None
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("Threads:"):
                    threads = int(line.split()[1])
        return rss, len(os.listdir("/proc/%d/fd" % pid)), threads
    except OSError:
        return None, None, None


def slope_per_hour(xs, ys):
    """Least-squares slope of ys over xs (seconds), per hour."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    if den == 0:
        return 0.0
    return 3600 * sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den


class Soak:
    def __init__(self, a, rng):
        self.a, self.rng = a, rng
        self.rec = Recorder()
        self.stop = threading.Event()
        self.rows = []  # the samples so far (an interrupted run keeps them)
        self.rng_lock = threading.Lock()

    def rand(self, fn, *args):
        with self.rng_lock:
            return fn(*args)

    def blob(self, lo, hi):
        """Random bytes of a random size in [lo, hi] (seeded: a replay writes alike)."""
        with self.rng_lock:
            n = self.rng.randint(lo, hi)
            return self.rng.randbytes(n)

    # ---- setup ----
    def setup(self):
        import harness
        self.h = harness
        self.work = tempfile.mkdtemp(prefix="roost-soak-")
        hub = self.hub = harness.Hub(self.work)
        # the soak runs GC and scrub itself, with the admin commands
        hub.serve_args = ["--gc-every", "0", "--scrub-every", "0"]
        hub.start()
        hub.login_cli()
        self.token = hub.login()
        self.ws = hub.workspace(self.token)
        # what is stored stays about steady: 2 versions a file, the trash emptied
        st, _, payload, _ = self.api("PATCH", "", {"keep_versions": 2})
        assert st == 200, payload
        self.relay = harness.Relay(hub, self.work)
        self.relay.start()
        self.hosts = {}
        for label in ("A", "B"):
            h = harness.Host(hub, self.work, label, relay=self.relay)
            h.join()
            h.start()
            self.hosts[label] = h
        st, body, payload, _ = hub.request("POST", "/api/v1/tokens", {"name": "soak"},
                                           token=self.token)
        assert st == 201, payload
        self.dav_auth = "Basic " + base64.b64encode(
            ("%s:%s" % (harness.EMAIL, body["token"])).encode()).decode()
        # /stable: files the link downloads read, written on host A, on both hosts
        self.stable = {}
        os.makedirs(self.hosts["A"].path("/stable"))
        for i in range(6):
            data = self.blob(4096, 2 * MiB)
            path = "/stable/s%d.bin" % i
            self.write_local(self.hosts["A"], path, data)
            self.stable[path] = sha(data)
        for path, digest in self.stable.items():
            self.wait_hub(path, digest, 120)
            self.wait_local(self.hosts["B"], path, digest, 120)
        st, body, payload, _ = self.api("POST", "/shares", {"path": "/stable"})
        assert st == 201, payload
        self.share_path = urllib.parse.urlsplit(body["url"]).path
        self.relay_base = {}
        for label in ("A", "B"):
            self.relay_base[label] = harness.wait_for(
                lambda: self.tunnel_url(label), 60, "host %s's tunnel_url" % label)
        self.relay_ctx = ssl.create_default_context(cafile=self.relay.ca)
        st, _, payload = self.dav("MKCOL", "/dav/")
        assert st == 201, (st, payload[:300])
        self.procs = {"hub": hub.proc, "relay": self.relay.proc,
                      "hostA": self.hosts["A"].proc, "hostB": self.hosts["B"].proc}

    def api(self, method, rel, body=None):
        return self.hub.request(method, "/api/v1/workspaces/%d%s" % (self.ws, rel), body,
                                token=self.token)

    def empty_trash(self):
        st, _, payload, _ = self.api("POST", "/trash/empty", {})
        if st != 200:
            raise RuntimeError("trash/empty: %d %s" % (st, payload[:200]))

    def tunnel_url(self, label):
        st, body, _, _ = self.api("GET", "/hosts")
        for h in body["hosts"] if st == 200 else []:
            if h.get("label") == label and h.get("tunnel_url"):
                return h["tunnel_url"].rstrip("/")
        return None

    def hub_hash(self, path):
        st, body, payload, _ = self.api("GET", "/info?path=" + self.h.q(path))
        if st == 404:
            return None
        if st != 200:
            raise RuntimeError("GET info %s: %d %r" % (path, st, payload[:200]))
        return body.get("hash")

    def wait_hub(self, path, digest, timeout):
        """Until the hub's current version of path has digest (None: path gone)."""
        deadline = time.monotonic() + timeout
        while self.hub_hash(path) != digest:
            if time.monotonic() > deadline:
                raise RuntimeError("the hub's %s is not %s after %d s (it is %s)" % (
                    path, (digest or "gone")[:12], timeout, (self.hub_hash(path) or "gone")[:12]))
            time.sleep(0.1)

    def wait_local(self, host, path, digest, timeout):
        """Until host's folder has path with digest (None: path gone)."""
        deadline = time.monotonic() + timeout

        def local():
            try:
                with open(host.path(path), "rb") as f:
                    return sha(f.read())
            except FileNotFoundError:
                return None
        while local() != digest:
            if time.monotonic() > deadline:
                raise RuntimeError("host %s's %s is not %s after %d s" % (
                    host.label, path, (digest or "gone")[:12], timeout))
            time.sleep(0.1)

    @staticmethod
    def write_local(host, path, data):
        """As an editor saves: a temp file beside, then rename (appears whole)."""
        p = host.path(path)
        tmp = os.path.join(os.path.dirname(p), ".~" + os.path.basename(p))
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, p)

    def dav(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.hub.content_port, timeout=120)
        try:
            h = dict(headers or {}, Authorization=self.dav_auth)
            conn.request(method, "/dav/default" + path, body=body, headers=h)
            r = conn.getresponse()
            return r.status, r.getheaders(), r.read()
        finally:
            conn.close()

    # ---- workers: each loops until stop, a pause between operations ----
    def pause(self):
        self.stop.wait(self.rand(self.rng.uniform, 0.5 * self.a.pause, 1.5 * self.a.pause))

    def editor(self, label):
        me, other = self.hosts[label], self.hosts["B" if label == "A" else "A"]
        folder = "/edit-%s" % label
        os.makedirs(me.path(folder), exist_ok=True)
        while not self.stop.is_set():
            path = "%s/f%d.txt" % (folder, self.rand(self.rng.randrange, 12))
            if self.rand(self.rng.random) < 0.1 and os.path.exists(me.path(path)):
                def delete():
                    os.remove(me.path(path))
                    self.wait_hub(path, None, 120)
                    self.wait_local(other, path, None, 120)
                self.rec.run("host_delete", delete)
            else:
                data = self.blob(1, 256 << 10)
                digest = sha(data)
                t = time.monotonic()
                self.write_local(me, path, data)
                if self.rec.run("host_edit", self.wait_hub, path, digest, 120, since=t):
                    # from the save, not from the hub's commit
                    self.rec.run("host_fanout", self.wait_local, other, path, digest, 120,
                                 since=t)
            self.pause()

    def roost(self, *args, timeout=300):
        p = self.hub.cli(*args, check=False, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError("roost %s exited %d: %s" % (
                " ".join(args), p.returncode, p.stderr.decode(errors="replace")[-1000:]))
        return p

    def cli(self):
        tmp = os.path.join(self.work, "cli")
        os.makedirs(tmp)
        live = set()
        while not self.stop.is_set():
            slot = self.rand(self.rng.randrange, 20)
            remote = "/cli/f%02d.bin" % slot
            if slot in live and self.rand(self.rng.random) < 0.1:
                if self.rec.run("cli_rm", self.roost, "rm", remote):
                    live.discard(slot)
                self.pause()
                continue
            data = self.blob(1024, 2 * MiB)
            src = os.path.join(tmp, "up.bin")
            with open(src, "wb") as f:
                f.write(data)
            if self.rec.run("cli_put", self.roost, "put", src, remote):
                live.add(slot)
                dst = os.path.join(tmp, "down.bin")

                def get():
                    self.roost("get", remote, dst, "--force", "--host-ca", self.relay.ca)
                    with open(dst, "rb") as f:
                        got = sha(f.read())
                    os.remove(dst)
                    if got != sha(data):
                        raise RuntimeError("roost get %s: sha256 %s, put %s" % (
                            remote, got[:12], sha(data)[:12]))
                self.rec.run("cli_get", get)
            self.pause()

    def links(self):
        turn = 0
        while not self.stop.is_set():
            path = self.rand(self.rng.choice, sorted(self.stable))
            digest = self.stable[path]

            def share_get():
                conn = http.client.HTTPConnection("127.0.0.1", self.hub.content_port,
                                                  timeout=120)
                try:
                    conn.request("GET", "%s/file?path=%s" % (
                        self.share_path, self.h.q("/" + os.path.basename(path))))
                    r = conn.getresponse()
                    body = r.read()
                finally:
                    conn.close()
                if r.status != 200 or sha(body) != digest:
                    raise RuntimeError("share %s: HTTP %d, %d bytes, sha256 %s" % (
                        path, r.status, len(body), sha(body)[:12]))
            self.rec.run("share_get", share_get)
            label = "AB"[turn % 2]
            turn += 1

            def relay_get():
                st, body, payload, _ = self.api("POST", "/urls", {"path": path})
                if st != 201:
                    raise RuntimeError("POST urls: %d %r" % (st, payload[:200]))
                base = urllib.parse.urlsplit(self.relay_base[label])
                conn = http.client.HTTPSConnection(base.hostname, base.port, timeout=120,
                                                   context=self.relay_ctx)
                try:
                    conn.request("GET", "%s/c/%s" % (base.path, body["token"]))
                    r = conn.getresponse()
                    data = r.read()
                finally:
                    conn.close()
                if r.status != 200 or sha(data) != digest:
                    raise RuntimeError("relay (host %s) %s: HTTP %d, %d bytes: %r" % (
                        label, path, r.status, len(data), data[:200]))
            self.rec.run("relay_get", relay_get)
            self.pause()

    def webdav(self):
        while not self.stop.is_set():
            path = "/dav/f%d.bin" % self.rand(self.rng.randrange, 10)
            data = self.blob(1, MiB)

            def put():
                st, _, body = self.dav("PUT", path, data)
                if st not in (201, 204):
                    raise RuntimeError("PUT %s: %d %r" % (path, st, body[:200]))

            def get():
                st, _, body = self.dav("GET", path)
                if st != 200 or sha(body) != sha(data):
                    raise RuntimeError("GET %s: %d, %d bytes of %d" % (
                        path, st, len(body), len(data)))

            def propfind():
                st, _, body = self.dav("PROPFIND", "/dav/", headers={"Depth": "1"})
                if st != 207 or path.encode() not in body:
                    raise RuntimeError("PROPFIND /dav/: %d, %s missing: %r" % (
                        st, path, body[:200]))
            if self.rec.run("dav_put", put):
                self.rec.run("dav_get", get)
                self.rec.run("dav_propfind", propfind)
            self.pause()

    def admin(self):
        while not self.stop.wait(self.a.admin_every):
            data = ["--data", self.hub.data]
            self.rec.run("admin_trash", self.empty_trash)
            self.rec.run("admin_gc", self.roost, "admin", "gc", *data, "--retention", "2m")
            self.rec.run("admin_scrub", self.roost, "admin", "scrub", *data,
                         "--host-ca", self.relay.ca)

    # ---- sampling ----
    def sample(self, writer, f):
        elapsed = time.monotonic() - self.rec.t0
        row = {"minute": round(elapsed / 60, 2), "elapsed_s": round(elapsed),
               "load1": round(os.getloadavg()[0], 2),
               # what the hub stores (chunk objects): scrub's and GC's work follows it
               "store_mib": round(tree_bytes(os.path.join(self.hub.data, "objects")) / MiB, 1)}
        for name, p in self.procs.items():
            if p.poll() is not None:
                self.rec.fail("process", "%s exited with %r" % (name, p.returncode))
            rss, fds, threads = proc_stats(p.pid)
            row.update({name + "_rss_kib": rss, name + "_fds": fds,
                        name + "_threads": threads})
        lat, fails = self.rec.take()
        for k in KINDS:
            got, bad = lat.get(k, []), fails.get(k, 0)
            row.update({k + "_n": len(got) + bad, k + "_fail": bad,
                        k + "_p50_ms": pct(got, 50), k + "_p99_ms": pct(got, 99)})
        writer.writerow(row)
        f.flush()
        print("soak: %5.1f min  stored %.0f MiB  RSS MiB %s  fds %s  threads %s  ops %d  "
              "failed %d" % (
            elapsed / 60, row["store_mib"],
            " ".join("%s=%.1f" % (n, (row[n + "_rss_kib"] or 0) / 1024) for n in self.procs),
            " ".join(str(row[n + "_fds"]) for n in self.procs),
            " ".join(str(row[n + "_threads"]) for n in self.procs),
            sum(row[k + "_n"] for k in KINDS), sum(fails.values())), flush=True)
        return row

    def final_checks(self):
        """Once the load stops: the invariants every fault test checks."""
        import invariants
        checker = invariants.Checker(self.hub, self.token, self.ws, self.hosts.values())
        for name, fn in (("converged", lambda: checker.check_converged(timeout=300)),
                         ("chunks", checker.check_chunks),
                         ("objects_whole", checker.check_objects_whole),
                         ("no_temp_left", checker.check_no_temp_left),
                         ("no_spurious_conflicts", checker.check_no_spurious_conflicts)):
            self.rec.run("final_" + name, fn)

    def run(self):
        columns = ["minute", "elapsed_s", "load1", "store_mib"]
        for n in PROCS:
            columns += [n + "_rss_kib", n + "_fds", n + "_threads"]
        for k in KINDS:
            columns += [k + "_n", k + "_fail", k + "_p50_ms", k + "_p99_ms"]
        rows = self.rows
        csv_path = os.path.join(self.a.out, "soak.csv")
        with open(csv_path, "w", newline="") as f:
            w = csv.DictWriter(f, columns)
            w.writeheader()
            self.rec.t0 = time.monotonic()
            rows.append(self.sample(w, f))
            workers = [threading.Thread(target=self.guard, args=(fn, *args), daemon=True)
                       for fn, *args in ((self.editor, "A"), (self.editor, "B"),
                                         (self.cli,), (self.links,), (self.webdav,),
                                         (self.admin,))]
            for t in workers:
                t.start()
            end = self.rec.t0 + 60 * self.a.minutes
            next_at = self.rec.t0 + self.a.sample
            while True:  # a sample each interval, and one at the end
                time.sleep(max(0, min(next_at, end) - time.monotonic()))
                rows.append(self.sample(w, f))
                if time.monotonic() >= end - 1:
                    break
                next_at += self.a.sample
            self.stop.set()
            for t in workers:
                t.join(600)
        self.final_checks()
        return rows

    def guard(self, fn, *args):
        """A worker that dies is a failure, not a silent stop of its load."""
        try:
            fn(*args)
        except Exception:  # noqa: BLE001
            self.rec.fail("worker", "%s%r died: %s" % (fn.__name__, args,
                                                       traceback.format_exc()[-1500:]))

    def teardown(self):
        self.stop.set()  # (an interrupted run: the workers first)
        for h in getattr(self, "hosts", {}).values():
            self.rec.run("stop_host_" + h.label, h.stop)
        if getattr(self, "relay", None):
            self.rec.run("stop_relay", self.relay.stop)
        if getattr(self, "hub", None):
            self.rec.run("stop_hub", self.hub.stop)

    def problems(self):
        """The warn and error lines of the processes' logs (they are kept in OUT)."""
        out = []
        for name in sorted(os.listdir(self.work)):
            if name.endswith(".log"):
                with open(os.path.join(self.work, name), errors="replace") as f:
                    lines = [ln.rstrip() for ln in f if " warn " in ln or " error " in ln
                             or "WARN" in ln or "ERROR" in ln]
                out.append((name, lines))
        return out


def verdict(rows, rec, minutes):
    """(passed, text): slopes over the second half, failures."""
    lines, ok = [], True
    half = [r for r in rows if r["elapsed_s"] >= rows[-1]["elapsed_s"] / 2]
    lines.append("Soak of %g min, %d samples; growth judged on the second half (%d samples, "
                 "from minute %.1f): least-squares slope per hour against its threshold "
                 "max(absolute, share of the median) per hour." % (
                     minutes, len(rows), len(half), half[0]["minute"]))
    if len(half) < 3:
        lines.append("FAIL: too few samples to fit a slope (run longer)")
        ok = False

    def judge(label, key, unit, scale=1.0):
        nonlocal ok
        pts = [(r["elapsed_s"], float(r[key])) for r in half if r.get(key) not in (None, "")]
        if len(pts) < 3:
            return
        ys = sorted(y for _, y in pts)
        median = ys[len(ys) // 2]
        absolute, share = THRESHOLDS[key.split("_", 1)[1] if not key.endswith("p50_ms")
                                     else "p50_ms"]
        limit = max(absolute, share * median)
        s = slope_per_hour([x for x, _ in pts], [y for _, y in pts])
        good = s <= limit
        ok &= good
        lines.append("  %-4s %-22s median %9.1f %-4s slope %+9.1f %s/h  limit %8.1f  %s" % (
            "ok" if good else "GROW", label, median / scale, unit, s / scale, unit,
            limit / scale, "" if good else "<-- grows"))
    for n in PROCS:
        judge(n + " RSS", n + "_rss_kib", "MiB", 1024.0)
        judge(n + " descriptors", n + "_fds", "")
        judge(n + " threads", n + "_threads", "")
    for k in KINDS:
        judge(k + " p50", k + "_p50_ms", "ms")
    total = sum(rec.totals.values())
    failed = sum(rec.fail_total.values())
    lines.append("Requests: %d, failed: %d" % (total, failed))
    for k in sorted(rec.totals):
        if rec.totals[k]:
            lines.append("  %-24s %6d  failed %d" % (k, rec.totals[k], rec.fail_total.get(k, 0)))
    if failed:
        ok = False
        lines.append("Failures (elapsed s, kind, error):")
        for t, k, e in rec.errors[:50]:
            lines.append("  %7.1f %s %s" % (t, k, e.replace("\n", " | ")))
    lines.append("VERDICT: %s" % ("PASS: nothing grows without bound, no request failed"
                                  if ok else "FAIL"))
    return ok, "\n".join(lines)


def plot(rows, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(2, 2, figsize=(13, 8.5))
    x = [r["minute"] for r in rows]

    def series(key, scale=1.0):
        return [float(r[key]) / scale if r.get(key) not in (None, "") else float("nan")
                for r in rows]
    for n in PROCS:
        ax[0][0].plot(x, series(n + "_rss_kib", 1024.0), marker=".", label=n)
        ax[0][1].plot(x, series(n + "_fds"), marker=".", label=n)
        ax[1][0].plot(x, series(n + "_threads"), marker=".", label=n)
    for k in KINDS:
        if k.startswith("admin"):
            continue
        if any(r.get(k + "_p50_ms") not in (None, "") for r in rows):
            line, = ax[1][1].plot(x, series(k + "_p50_ms"), marker=".", label=k + " p50")
            ax[1][1].plot(x, series(k + "_p99_ms"), linestyle=":", color=line.get_color())
    for a, t in ((ax[0][0], "RSS (MiB)"), (ax[0][1], "open descriptors"),
                 (ax[1][0], "threads"), (ax[1][1], "latency (ms): p50 solid, p99 dotted")):
        a.set_title(t)
        a.set_xlabel("minute")
        a.grid(True, alpha=0.3)
        a.set_ylim(bottom=0)
    ax[1][1].set_yscale("log")
    ax[1][1].set_ylim(1, None)
    ax[0][0].legend(fontsize=8)
    ax[1][1].legend(fontsize=7, ncol=2)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("roost")
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--out", default=None, help="results (default: soak-out-DATE)")
    ap.add_argument("--sample", type=float, default=60, help="seconds between samples")
    ap.add_argument("--admin-every", type=float, default=180,
                    help="seconds between `roost admin gc` + `roost admin scrub` runs")
    ap.add_argument("--pause", type=float, default=0.5,
                    help="mean seconds each worker waits between operations")
    ap.add_argument("--keep", action="store_true", help="keep the hub's and hosts' dirs")
    a = ap.parse_args()
    if a.minutes <= 0 or a.sample <= 0:
        ap.error("--minutes and --sample must be positive")
    a.roost = os.path.abspath(a.roost)
    if not os.access(a.roost, os.X_OK):
        ap.error("%s is not an executable" % a.roost)
    a.out = os.path.abspath(a.out or time.strftime("soak-out-%Y%m%d-%H%M%S"))
    os.makedirs(a.out, exist_ok=True)
    os.environ["ROOST_BIN"] = a.roost
    os.environ.pop("ROOST_TEST_DB", None)  # the soak's hub is SQLite
    os.environ.pop("ROOST_TEST_STORE", None)
    sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
    seed = int(os.environ.get("ROOST_SEED") or random.SystemRandom().randrange(1 << 31))
    load = os.getloadavg()
    print("soak: seed %d (ROOST_SEED=%d replays); %g min; results in %s; load %.2f %.2f %.2f "
          "on %d CPUs" % (seed, seed, a.minutes, a.out, *load, os.cpu_count()), flush=True)
    s = Soak(a, random.Random(seed))
    try:
        s.setup()
        s.run()
    except KeyboardInterrupt:
        s.rec.fail("interrupted", "stopped by SIGINT after %d samples" % len(s.rows))
    except Exception:  # noqa: BLE001
        s.rec.fail("setup_or_run", traceback.format_exc()[-3000:])
    finally:
        s.teardown()
        if getattr(s, "work", None):
            with open(os.path.join(a.out, "problems.txt"), "w") as f:
                for name, lines in s.problems():
                    f.write("== %s: %d warn/error lines\n" % (name, len(lines)))
                    f.write("\n".join(lines[-200:]) + ("\n" if lines else ""))
            if a.keep:
                print("soak: kept", s.work)
            else:
                shutil.rmtree(s.work, ignore_errors=True)
    rows = s.rows
    load_end = os.getloadavg()
    ok, text = verdict(rows, s.rec, a.minutes) if len(rows) > 1 else (
        False, "FAIL: no samples\n" + "\n".join("  %s %s" % e[1:] for e in s.rec.errors))
    text = "seed %d; load average at start %.2f %.2f %.2f, at end %.2f %.2f %.2f (%d CPUs)\n" % (
        seed, *load, *load_end, os.cpu_count()) + text
    with open(os.path.join(a.out, "verdict.txt"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump({"seed": seed, "minutes": a.minutes, "pass": ok, "totals": s.rec.totals,
                   "failed": s.rec.fail_total, "errors": s.rec.errors[:200]}, f, indent=1)
    if len(rows) > 1:
        plot(rows, os.path.join(a.out, "soak.png"),
             "roost soak: %g min, hub (SQLite) + relay + 2 hosts, mixed load (seed %d)" % (
                 a.minutes, seed))
    print(text)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
