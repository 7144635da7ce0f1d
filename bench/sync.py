#!/usr/bin/env python3
"""Benchmark host-to-host sync: roost (a hub and two hosts, docs/host.md) next to
Syncthing (two instances, ../shared/PEERS.md), on one machine over 127.0.0.1, in one run:
  - latency: a new 1 KiB file written on A until B has the same bytes, p50 and p99;
    Syncthing with fsWatcherDelayS=1 and with its default of 10 s;
  - big: a new 256 MiB random file A -> B, until B has it with the right sha256;
  - rename: a folder holding 1 GiB (4 x 256 MiB) is renamed on A: time until B shows
    the new name with every file, bytes moved between the peers, B's disk writes;
  - small: a folder of 100,000 small files (1-4 KiB random bytes, 1,000 per
    directory) moved into A: time until B holds every file;
  - startup: A's agent restarted over those unchanged files (after the full sync;
    runs "small" first): time until its start-up scan is done and it is idle, and
    its peak RSS.
  - hub writes (roost only, with "big" or "rename"): bytes the hub process wrote to
    disk (/proc/PID/io write_bytes) and its objects directory grew by, per GiB synced.
--storage hosts PATCHes the workspace to {"storage": "hosts", "hub_cache_bytes": 0}
first (issue 15: hosts hold the bytes; the hub only tracks them).
Prints a Markdown table; the ratio is roost / Syncthing (below 1: roost is faster).
Usage: bench/sync.py ROOST_BIN [--quick] [--only latency|big|rename|small|startup]...
       [--sides roost,syncthing] [--samples 30] [--slow-samples 5] [--small-files N]
       [--storage hub|hosts]
"""
import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import xml.etree.ElementTree as ET

MiB = 1 << 20
TESTS = ("latency", "big", "rename", "small", "startup")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def wait_until(pred, timeout, what, interval=0.05):
    """pred()'s first true value. An OSError counts as "not yet": a file still missing
    on B, a server not listening yet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = pred()
            if r:
                return r
        except OSError:
            pass
        time.sleep(interval)
    raise TimeoutError("timed out after %d s waiting for %s" % (timeout, what))


def quiesce():
    """Let the disk settle (it is mounted with discard) between measurements."""
    subprocess.run(["sync"])
    time.sleep(2)


def random_file(path, size):
    """size random bytes (SHAKE over a counter: fast, constant memory); their sha256."""
    seed, h = os.urandom(32), hashlib.sha256()
    with open(path, "wb") as f:
        for i in range((size + MiB - 1) // MiB):
            block = hashlib.shake_256(seed + i.to_bytes(8, "little")).digest(
                min(MiB, size - i * MiB))
            h.update(block)
            f.write(block)
    return h.hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(4 * MiB), b""):
            h.update(b)
    return h.hexdigest()


# ---- processes: each one we start is tracked and stopped with its descendants ----
PROCS = []


def spawn(cmd, log, env=None):
    p = subprocess.Popen(cmd, stdout=log, stderr=log, env=env, start_new_session=True)
    PROCS.append(p)
    return p


def tree(pid):
    """pid and its descendants (Syncthing's child runs in a process group of its own)."""
    kids = {}
    for d in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/stat" % d) as f:
                kids.setdefault(int(f.read().rsplit(")", 1)[1].split()[1]), []).append(int(d))
        except OSError:
            pass
    out, todo = [], [pid]
    while todo:
        out.append(todo.pop())
        todo += kids.get(out[-1], [])
    return out


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop(p, timeout=60):
    """SIGTERM to p and its descendants; SIGKILL to any still there after timeout."""
    pids = tree(p.pid)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in filter(alive, pids):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        try:
            wait_until(lambda: p.poll() is not None and not any(map(alive, pids)),
                       timeout, "pid %d to exit" % p.pid)
            break
        except TimeoutError:
            pass
    p.wait()
    PROCS.remove(p)


def proc_field(pid, name, file="status"):
    """A number from /proc/PID/status (VmHWM: KiB) or /proc/PID/io (write_bytes)."""
    with open("/proc/%d/%s" % (pid, file)) as f:
        return next((int(ln.split()[1]) for ln in f if ln.startswith(name + ":")), 0)


def disk_writes(p):
    return sum(proc_field(q, "write_bytes", "io") for q in tree(p.pid))


# ---- roost: a hub and two hosts, per docs/host.md ----
class Roost:
    name = "roost"

    def __init__(self, roost, root, storage="hub"):
        self.roost, self.hub_dir = roost, os.path.join(root, "hub")
        self.env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(root, "cfg"),
                        ROOST_PASSWORD="bench password 1")
        self.port, hub = free_port(), os.path.join(root, "hub")
        self.log = open(os.path.join(root, "roost.log"), "ab")
        self.cli("init", "--data", hub, "--email", "b@example.test")
        self.hub = spawn([roost, "serve", "--data", hub, "--api-port", str(self.port),
                          "--content-port", str(free_port()), "--dashboard-port",
                          str(free_port()), "--rate-limit", "0"], self.log, self.env)
        wait_until(lambda: self.metric("roost_requests_total") >= 0, 20, "the hub")
        self.cli("login", "--hub", "http://127.0.0.1:%d" % self.port, "--email", "b@example.test")
        if storage != "hub":
            self.set_storage(storage)
        self.a, self.b = os.path.join(root, "A"), os.path.join(root, "B")
        self.procs = {}
        for d, label in ((self.a, "A"), (self.b, "B")):
            os.makedirs(d)
            url = json.loads(self.cli("host", "invite", "--json").stdout)["url"]
            self.cli("host", "join", url, "--dir", d, "--label", label)
            self.start_host(d)
        for d in (self.a, self.b):
            wait_until(lambda: self.idle(d), 60, "host %s to start" % d, 0.2)

    def api(self, method, path, body=None, token=None):
        req = urllib.request.Request(
            "http://127.0.0.1:%d/api/v1%s" % (self.port, path), method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers=dict({"Content-Type": "application/json"},
                         **({"Authorization": "Bearer " + token} if token else {})))
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read() or b"null")

    def set_storage(self, storage):
        """The workspace's storage mode; in 'hosts' mode the hub keeps no cache."""
        tok = self.api("POST", "/login", {"email": "b@example.test",
                                          "password": self.env["ROOST_PASSWORD"]})["token"]
        ws = self.api("GET", "/workspaces", token=tok)["workspaces"][0]["id"]
        body = {"storage": storage}
        if storage == "hosts":
            body["hub_cache_bytes"] = 0
        self.api("PATCH", "/workspaces/%d" % ws, body, token=tok)
        got = self.api("GET", "/workspaces/%d" % ws, token=tok)
        assert got.get("storage") == storage, got

    def hub_writes(self):
        """(bytes the hub process wrote to disk, bytes in its objects directory)."""
        objs = 0
        for d, _, files in os.walk(os.path.join(self.hub_dir, "objects")):
            for f in files:
                try:
                    objs += os.lstat(os.path.join(d, f)).st_size
                except OSError:
                    pass
        return proc_field(self.hub.pid, "write_bytes", "io"), objs

    def cli(self, *args):
        p = subprocess.run([self.roost, *args], env=self.env, capture_output=True, timeout=600)
        if p.returncode != 0:
            raise RuntimeError("roost %s: exit %d: %s" % (" ".join(args[:2]), p.returncode,
                                                          p.stderr.decode()[:200].strip()))
        return p

    def metric(self, name):
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.port).read()
        return next(int(ln.split()[1]) for ln in text.decode().splitlines()
                    if ln.startswith(name + " "))

    def start_host(self, d):
        self.procs[d] = spawn([self.roost, "host", "run", "--dir", d, "--listen",
                               "127.0.0.1:%d" % free_port(), "--heartbeat", "1"],
                              self.log, self.env)
        return self.procs[d]

    def idle(self, d):
        """`roost host status --json` of this very agent (its pid) says state "idle"
        (start-up scan and sync done) with an empty queue."""
        p = self.procs[d]
        if p.poll() is not None:
            raise RuntimeError("roost host run --dir %s exited with %d" % (d, p.returncode))
        try:
            st = json.loads(self.cli("host", "status", "--dir", d, "--json").stdout)
        except (RuntimeError, ValueError):
            return False
        return (st.get("running") is True and st.get("pid") == p.pid
                and st.get("state") == "idle" and st.get("queue") == 0)

    def wire_bytes(self):
        """Content bytes the hub took in or served. Chunks fetched host to host do not
        pass the hub: B's disk writes are the cross-check."""
        return (self.metric("roost_chunk_bytes_received_total")
                + self.metric("roost_bytes_served_total"))

    def b_disk_writes(self):
        return disk_writes(self.procs[self.b])

    def b_fetched(self):
        """Chunks B's agent fetched from another host or the hub (its status.json)."""
        c = json.loads(self.cli("host", "status", "--dir", self.b, "--json").stdout)["chunks"]
        return c["from_peer"] + c["from_hub"]

    def restart_a(self):
        """Seconds from `roost host run` until A is idle again, and its peak RSS (KiB)."""
        stop(self.procs[self.a])
        quiesce()
        t0 = time.monotonic()
        p = self.start_host(self.a)
        wait_until(lambda: self.idle(self.a), 1800, "A's start-up scan", 0.05)
        return time.monotonic() - t0, proc_field(p.pid, "VmHWM")


# ---- Syncthing: two instances, set up as ../shared/PEERS.md says ----
class Syncthing:
    name = "Syncthing"
    FOLDERS = {"fast": 1, "slow": 10}  # folder id: fsWatcherDelayS

    def __init__(self, root):
        self.root, self.inst = root, {}
        self.log = open(os.path.join(root, "syncthing.log"), "ab")
        for n in "AB":
            home = os.path.join(root, "home" + n)
            subprocess.run(["syncthing", "generate", "--home=" + home, "--no-default-folder",
                            "--skip-port-probing"], check=True, capture_output=True)
            dev = subprocess.run(["syncthing", "serve", "--home=" + home, "--device-id"],
                                 check=True, capture_output=True).stdout.decode().strip()
            self.inst[n] = dict(home=home, id=dev, gui=free_port(), port=free_port(),
                                key="bench-key-" + n)
            self.configure(self.inst[n])
            self.start(n)
        for n, peer in (("A", "B"), ("B", "A")):
            p = self.inst[peer]
            self.rest(n, "PUT", "/rest/config/devices/" + p["id"], {
                "deviceID": p["id"], "name": peer,
                "addresses": ["tcp://127.0.0.1:%d" % p["port"]]})
            for fid, delay in self.FOLDERS.items():
                os.makedirs(self.dir(n, fid))
                self.rest(n, "PUT", "/rest/config/folders/" + fid, {
                    "id": fid, "label": fid, "path": self.dir(n, fid), "type": "sendreceive",
                    "devices": [{"deviceID": self.inst[x]["id"]} for x in "AB"],
                    "fsWatcherEnabled": True, "fsWatcherDelayS": delay,
                    "rescanIntervalS": 3600})
        self.a, self.b = self.dir("A", "fast"), self.dir("B", "fast")
        wait_until(lambda: all(
            self.rest(n, "GET", "/rest/system/connections")["connections"]
            .get(self.inst[p]["id"], {}).get("connected") for n, p in (("A", "B"), ("B", "A"))),
            60, "the Syncthing peers to connect", 0.2)
        wait_until(lambda: all(self.idle(n, f) for n in "AB" for f in self.FOLDERS),
                   120, "Syncthing to be idle", 0.2)

    def dir(self, n, fid):
        return os.path.join(self.root, "%s-%s" % (n, fid))

    def configure(self, i):
        """GUI/REST and sync on loopback ports of our own; nothing that leaves the machine."""
        path = os.path.join(i["home"], "config.xml")
        cfg = ET.parse(path)
        cfg.find("gui/address").text = "127.0.0.1:%d" % i["gui"]
        cfg.find("gui/apikey").text = i["key"]
        for k, v in (("listenAddress", "tcp://127.0.0.1:%d" % i["port"]),
                     ("globalAnnounceEnabled", "false"), ("localAnnounceEnabled", "false"),
                     ("relaysEnabled", "false"), ("natEnabled", "false"),
                     ("startBrowser", "false"), ("crashReportingEnabled", "false"),
                     ("urAccepted", "-1"), ("autoUpgradeIntervalH", "0")):
            cfg.find("options/" + k).text = v
        cfg.write(path)

    def start(self, n):
        i = self.inst[n]
        i["proc"] = spawn(["syncthing", "serve", "--home=" + i["home"], "--no-browser",
                           "--no-restart", "--no-upgrade"], self.log,
                          dict(os.environ, STNOUPGRADE="1"))
        wait_until(lambda: self.rest(n, "GET", "/rest/system/ping"), 60,
                   "Syncthing %s's REST API" % n, 0.02)
        return i["proc"]

    def rest(self, n, method, path, body=None):
        i = self.inst[n]
        req = urllib.request.Request(
            "http://127.0.0.1:%d%s" % (i["gui"], path), method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"X-API-Key": i["key"], "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            data = r.read()
        return json.loads(data) if data[:1] in (b"{", b"[") else data

    def idle(self, n, fid):
        st = self.rest(n, "GET", "/rest/db/status?folder=" + fid)
        return st["state"] == "idle" and st["needTotalItems"] == 0

    def wire_bytes(self):
        t = self.rest("B", "GET", "/rest/system/connections")["total"]
        return t["inBytesTotal"] + t["outBytesTotal"]

    def b_disk_writes(self):
        return disk_writes(self.inst["B"]["proc"])

    def restart_a(self):
        """Seconds from `syncthing serve` until A's folder has been scanned again (its
        lastScan changed) and is idle, and the peak RSS (KiB) of its largest process."""
        last_scan = lambda: self.rest("A", "GET", "/rest/stats/folder")["fast"]["lastScan"]
        before = last_scan()
        stop(self.inst["A"]["proc"])
        quiesce()
        t0 = time.monotonic()
        p = self.start("A")
        wait_until(lambda: last_scan() != before and self.idle("A", "fast"), 1800,
                   "A's start-up scan", 0.05)
        secs = time.monotonic() - t0
        return secs, max(proc_field(q, "VmHWM") for q in tree(p.pid))


# ---- the measurements; each takes a side with synced folders side.a and side.b ----
def latency(a, b, n, tag, period=1.0):
    """Seconds from writing a new 1 KiB file in a until b holds the same bytes. A random
    pause of up to period before each write samples every phase of a watcher's timer
    (Syncthing reports changes on a tick of fsWatcherDelayS)."""
    out = []
    for k in range(n):
        name, data = "lat-%s-%03d.txt" % (tag, k), os.urandom(1024)
        time.sleep(random.uniform(0.05, period))
        t0 = time.monotonic()
        with open(os.path.join(a, name), "wb") as f:
            f.write(data)

        def arrived():
            with open(os.path.join(b, name), "rb") as f:
                return f.read() == data
        wait_until(arrived, 120, "%s on B" % name, 0.005)
        out.append(time.monotonic() - t0)
    return out


def wait_tree(b, dst, names, t0, timeout, gone=None):
    """Seconds from t0 until b/dst holds every file with the right bytes (and b/gone
    is no more). The time is taken when the sizes match; the hashes, checked next,
    count only if no file changed (stat) while they were computed."""
    paths = [os.path.join(b, dst, nm) if nm else os.path.join(b, dst) for nm in names]
    sizes, shas = zip(*names.values())
    snapshot = lambda: [(st.st_size, st.st_ino, st.st_mtime_ns) for st in map(os.stat, paths)]

    def done():  # os.stat raises while a file is missing: not yet
        t, snap = time.monotonic(), snapshot()
        if tuple(x[0] for x in snap) != sizes or (gone and os.path.exists(os.path.join(b, gone))):
            return False
        return tuple(map(sha256_file, paths)) == shas and snapshot() == snap and t
    return wait_until(done, timeout, "%s on B" % dst, 0.005) - t0


def sync_files(side, stage, names, dst, timeout=900):
    """Hard-link staged files into A in one step: one file as A/dst, several in a new
    folder A/dst (built in stage, then moved in). names: {name: (size, sha256)}.
    Seconds until B holds every file."""
    tmp = os.path.join(stage, "link-" + dst)
    if len(names) > 1:
        os.makedirs(tmp)
        for nm in names:
            os.link(os.path.join(stage, nm), os.path.join(tmp, nm))
    else:
        os.link(os.path.join(stage, next(iter(names))), tmp)
        names = {"": next(iter(names.values()))}  # the file is dst itself
    quiesce()
    t0 = time.monotonic()
    os.rename(tmp, os.path.join(side.a, dst))
    return wait_tree(side.b, dst, names, t0, timeout)


def run_side(side, a, stage, staged, res):
    """The selected measurements on one side, into res[metric]."""
    latency(side.a, side.b, 1, "warmup")  # proves the pair is connected, and warms it up
    if "latency" in a.only:
        lat = latency(side.a, side.b, a.samples, "d1")
        res["lat50"], res["lat99"] = pct(lat, 50), pct(lat, 99)
        if isinstance(side, Syncthing):
            lat = latency(side.dir("A", "slow"), side.dir("B", "slow"), a.slow_samples, "d10",
                          Syncthing.FOLDERS["slow"])
            res["lat50_10"], res["lat99_10"] = pct(lat, 50), pct(lat, 99)
    roost = isinstance(side, Roost)
    if roost and ("big" in a.only or "rename" in a.only):
        res["synced_bytes"], w0 = 0, side.hub_writes()
    if "big" in a.only:
        res["big"] = sync_files(side, stage, {"one.bin": staged["one.bin"]}, "one.bin")
        if roost:
            res["synced_bytes"] += staged["one.bin"][0]
    if "rename" in a.only:
        parts = {nm: v for nm, v in staged.items() if nm.startswith("part")}
        res["first"] = sync_files(side, stage, parts, "folder")
        if roost:
            res["synced_bytes"] += sum(v[0] for v in parts.values())
    if roost and ("big" in a.only or "rename" in a.only):
        time.sleep(1)  # the hub's writes of the last commit
        w1, gib = side.hub_writes(), res["synced_bytes"] / (1 << 30)
        res["hub_io_gib"] = (w1[0] - w0[0]) / gib
        res["hub_objs_gib"] = (w1[1] - w0[1]) / gib
    if "rename" in a.only:
        time.sleep(3)  # let both sides settle before reading the counters
        w0, d0 = side.wire_bytes(), side.b_disk_writes()
        f0 = side.b_fetched() if isinstance(side, Roost) else 0
        quiesce()
        t0 = time.monotonic()
        os.rename(os.path.join(side.a, "folder"), os.path.join(side.a, "renamed"))
        res["rename"] = wait_tree(side.b, "renamed", parts, t0, 900, gone="folder")
        time.sleep(3)
        res["rename_wire"] = side.wire_bytes() - w0
        res["rename_disk"] = side.b_disk_writes() - d0
        if isinstance(side, Roost):
            res["rename_fetched"] = side.b_fetched() - f0
    if "small" in a.only or "startup" in a.only:
        tmp = os.path.join(stage, "small-" + side.name)
        rnd = random.Random(15)
        for k in range(a.small_files):  # distinct small files, 1,000 per directory
            d = os.path.join(tmp, "d%03d" % (k // 1000))
            if k % 1000 == 0:
                os.makedirs(d)
            with open(os.path.join(d, "f%03d" % (k % 1000)), "wb") as f:
                f.write(os.urandom(rnd.randint(1024, 4096)))
        quiesce()
        todo = {os.path.join(side.b, "small", "d%03d" % (k // 1000)): min(1000, a.small_files - k)
                for k in range(0, a.small_files, 1000)}  # directory: files it must hold
        todo0 = list(todo)

        def all_there():  # cheap: lists only the directories not yet complete
            for d, n in list(todo.items()):  # (temporary files start with a dot)
                if sum(not f.startswith(".") for f in os.listdir(d)) < n:
                    return False
                del todo[d]
            return True
        t0 = time.monotonic()
        os.rename(tmp, os.path.join(side.a, "small"))
        wait_until(all_there, 3600, "%d small files on B" % a.small_files, 0.05)
        res["small_sync"] = time.monotonic() - t0
        for d in sorted(todo0):  # then every byte, outside the timing
            for nm in os.listdir(d):
                if not nm.startswith("."):
                    with open(os.path.join(d, nm), "rb") as f, \
                            open(os.path.join(side.a, "small", os.path.basename(d), nm), "rb") as g:
                        if f.read() != g.read():
                            raise RuntimeError("%s/%s differs on B" % (d, nm))
        if roost:
            res["small_fetched"] = side.b_fetched()
    if "startup" in a.only:
        time.sleep(3)
        res["startup"], res["startup_rss"] = side.restart_a()


def report(r, s, a, big, part):
    """One row per figure: roost, Syncthing, and roost / Syncthing."""
    ms, secs = (lambda v: "%.0f ms" % (v * 1000)), (lambda v: "%.2f s" % v)
    mb = lambda v: "%.1f MB" % (v / 1e6) if v >= 1e6 else "%.1f kB" % (v / 1e3)
    mib = lambda v: "%.1f MiB" % (v / 1024)
    d1, d10 = "Syncthing delay 1 s", "Syncthing default delay 10 s, %d samples" % a.slow_samples
    rows = [  # label, roost's key, Syncthing's key, format
        ("new 1 KiB file A->B, p50 (%d samples, %s)" % (a.samples, d1), "lat50", "lat50", ms),
        ("new 1 KiB file A->B, p99 (%s)" % d1, "lat99", "lat99", ms),
        ("new 1 KiB file A->B, p50 (%s)" % d10, "lat50", "lat50_10", ms),
        ("new 1 KiB file A->B, p99 (%s)" % d10, "lat99", "lat99_10", ms),
        ("new %d MiB random file A->B" % (big // MiB), "big", "big", secs),
        ("new folder of 4 x %d MiB A->B" % (part // MiB), "first", "first", secs),
        ("rename that folder: until B shows it", "rename", "rename", secs),
        ("rename: bytes between peers (roost: via the hub)", "rename_wire", "rename_wire", mb),
        ("rename: chunks B fetched from A or the hub", "rename_fetched", "-", str),
        ("rename: bytes B's agent wrote to disk", "rename_disk", "rename_disk", mb),
        ("hub: bytes its process wrote per GiB synced A->B", "hub_io_gib", "-", mb),
        ("hub: growth of its objects directory per GiB synced", "hub_objs_gib", "-", mb),
        ("first sync of %d small files (1-4 KiB)" % a.small_files, "small_sync", "small_sync",
         secs),
        ("small files: chunks B fetched (from_peer + from_hub)", "small_fetched", "-", str),
        ("restart over them: until scanned and idle", "startup", "startup", secs),
        ("restart: peak RSS of A's agent", "startup_rss", "startup_rss", mib)]
    print("storage mode: %s; load average at the end: %s" % (
        a.storage, " ".join(open("/proc/loadavg").read().split()[:3])))
    print("| sync, one machine, 127.0.0.1 | roost | Syncthing | roost / Syncthing |")
    print("|---|---|---|---|")
    for label, rk, sk, fmt in rows:
        rv, sv = r.get(rk), s.get(sk)
        if rv is not None or sv is not None:
            show = lambda v: "-" if v is None else fmt(v)
            ratio = "" if rv is None or not sv else \
                ("%.2fx" if rv >= 0.1 * sv else "%.2gx") % (rv / sv)  # 0.0042x, not 0.00x
            print("| %s | %s | %s | %s |" % (label, show(rv), show(sv), ratio))
    for name, res in (("roost", r), ("Syncthing", s)):
        if "error" in res:
            print("\n%s failed: %s" % (name, res["error"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("roost")
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument("--only", choices=TESTS, action="append", help="repeatable")
    ap.add_argument("--sides", default="roost,syncthing")
    ap.add_argument("--samples", type=int)
    ap.add_argument("--slow-samples", type=int)
    ap.add_argument("--small-files", type=int)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--storage", choices=("hub", "hosts"), default="hub",
                    help="roost's workspace storage mode")
    a = ap.parse_args()
    if not set(a.sides.lower().split(",")) <= {"roost", "syncthing"}:
        ap.error("--sides: roost, syncthing or both")
    q = a.quick
    a.only = a.only or TESTS
    a.samples = a.samples or (5 if q else 30)
    a.slow_samples = a.slow_samples or (2 if q else 5)
    a.small_files = a.small_files or (2000 if q else 100000)
    big, part = (32 if q else 256) * MiB, (16 if q else 256) * MiB
    roost = os.path.abspath(a.roost)
    # a SIGTERM (a stopped `make bench`) unwinds through the finally blocks below
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = tempfile.mkdtemp(prefix="roost-syncbench-", dir=a.workdir)
    results = {"roost": {}, "syncthing": {}}
    try:
        stage = os.path.join(work, "stage")  # files made once, hard-linked into each A
        os.makedirs(stage)
        staged = {}
        if "big" in a.only:
            staged["one.bin"] = (big, random_file(os.path.join(stage, "one.bin"), big))
        if "rename" in a.only:
            for k in range(4):
                nm = "part%d.bin" % k
                staged[nm] = (part, random_file(os.path.join(stage, nm), part))
        for name in a.sides.lower().split(","):
            root = os.path.join(work, name)
            os.makedirs(root)
            try:
                side = Syncthing(root) if name == "syncthing" else Roost(roost, root, a.storage)
                run_side(side, a, stage, staged, results[name])
            except Exception as e:  # report it, and still measure the other side
                log = os.path.join(root, name + ".log")  # it goes with root below
                tail = open(log, errors="replace").readlines()[-15:] if os.path.exists(log) else []
                results[name]["error"] = "%s: %s\nlast lines of its log:\n%s" % (
                    type(e).__name__, str(e).strip()[:300], "".join(tail))
            finally:
                for p in reversed(PROCS[:]):  # roost: the hosts, then the hub
                    stop(p)
                shutil.rmtree(root, ignore_errors=True)
    finally:
        for p in reversed(PROCS[:]):
            stop(p, 10)
        shutil.rmtree(work, ignore_errors=True)
    report(results["roost"], results["syncthing"], a, big, part)


if __name__ == "__main__":
    main()
