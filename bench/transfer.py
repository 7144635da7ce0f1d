#!/usr/bin/env python3
"""Benchmark roost put/get against this machine's limits and restic, in one run.

For one random file (default 1 GiB) on loopback:
  - the machine's limit: the slower of `openssl dgst -sha256` (hashing) and
    `dd bs=4M conv=fsync` (durable write); roost put and get as a ratio of it;
  - `restic backup` of the same file, and roost put as a ratio of it;
  - dedup after a 1-byte insert in the middle: bytes roost uploads next to the
    bytes restic adds for the same two versions;
  - peak RSS of roost put, roost get and the hub while moving a larger file
    (default 4 GiB);
  - roost get of the file from a host (its content server on loopback) against
    from the hub, in the same run (--get-sources-only: only this);
  - the S3 store (--s3-only: only this): roost put and get through a hub started
    with `--store s3://...` against `rclone copy` to and from the same S3 server in
    the same run, on s3rver (tests/integration/s3server.py) and on Ceph's radosgw
    (bench/radosgw.sh; a row says why when it does not start), and the hub's peak
    RSS moving a larger file (--s3-big-mib, default --big-mib) through the store.
Prints a Markdown table. Usage: bench/transfer.py ROOST_BIN [--mib N] [--big-mib N]
  [--get-sources-only | --s3-only | --no-s3] [--s3-servers s3rver,radosgw] [--s3-big-mib N]
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

MiB = 1 << 20


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, **kw)


def quiesce():
    """Let the disk settle (it is mounted with discard) between measurements."""
    subprocess.run(["sync"])
    time.sleep(2)


def timed(cmd, **kw):
    quiesce()
    t = time.monotonic()
    sh(cmd, **kw)
    return time.monotonic() - t


def random_file(path, size, insert_at=None):
    """Write size random bytes; with insert_at, also write a copy with one byte
    inserted at that offset (path + '.v2'). Returns nothing; constant memory."""
    seed = os.urandom(32)
    f = open(path, "wb")
    g = open(path + ".v2", "wb") if insert_at is not None else None
    written, counter = 0, 0
    while written < size:
        # fast, reproducible-enough random stream: SHAKE over a counter
        block = hashlib.shake_256(seed + counter.to_bytes(8, "little")).digest(
            min(MiB, size - written))
        counter += 1
        f.write(block)
        if g:
            if written <= insert_at < written + len(block):
                k = insert_at - written
                g.write(block[:k] + b"\x42" + block[k:])
            else:
                g.write(block)
        written += len(block)
    f.close()
    if g:
        g.close()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(4 * MiB), b""):
            h.update(b)
    return h.hexdigest()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Hub:
    def __init__(self, roost, root, serve_args=(), env=None):
        self.roost, self.root = roost, root
        self.data = os.path.join(root, "hub")
        self.env = dict(env or os.environ, XDG_CONFIG_HOME=os.path.join(root, "cfg"),
                        ROOST_PASSWORD="bench password 1")
        self.port = free_port()
        sh([roost, "init", "--data", self.data, "--email", "bench@example.test"], env=self.env)
        self.log = open(os.path.join(root, "hub.log"), "wb")
        self.proc = subprocess.Popen(
            [roost, "serve", "--data", self.data, "--api-port", str(self.port),
             "--content-port", str(free_port()), "--dashboard-port", str(free_port()),
             *serve_args],
            stdout=self.log, stderr=self.log, env=self.env)
        for _ in range(200):
            if self.proc.poll() is not None:
                self.log.flush()
                with open(os.path.join(root, "hub.log"), errors="replace") as f:
                    raise RuntimeError("roost serve exited (%d): %s" % (
                        self.proc.returncode, f.read()[-2000:]))
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        sh([roost, "login", "--hub", "http://127.0.0.1:%d" % self.port, "--email",
            "bench@example.test"], env=self.env)

    def cli(self, *args):
        return sh([self.roost, *args], env=self.env)

    def timed(self, *args):
        return timed([self.roost, *args], env=self.env)

    def metric(self, name):
        import urllib.request
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.port).read()
        for line in text.decode().splitlines():
            if line.startswith(name + " "):
                return int(line.split()[1])
        raise KeyError(name)

    def peak_rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            return int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1))

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)
        self.log.close()


def peak_rss_of(cmd, env):
    """Run cmd under /usr/bin/time -v; its peak RSS in KiB."""
    quiesce()
    p = subprocess.run(["/usr/bin/time", "-v", *cmd], env=env, capture_output=True, check=True)
    return int(re.search(rb"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))


def restic_backup(repo, path, env):
    quiesce()
    t = time.monotonic()
    p = sh(["restic", "-r", repo, "backup", "--json", path], env=env)
    secs = time.monotonic() - t
    summary = [json.loads(l) for l in p.stdout.decode().splitlines()
               if l.startswith("{") and '"summary"' in l][-1]
    return secs, summary["data_added"]


def get_from_host_vs_hub(roost, work, src, size):
    """roost get of src from a host holding it, then from the hub with the host
    stopped: (seconds from the host, seconds from the hub)."""
    hub = Hub(roost, os.path.join(work, "roost-sources"))
    host_dir = os.path.join(work, "host-A")
    proc = None
    try:
        hub.cli("put", "-q", src, "/data.bin")
        invite = json.loads(hub.cli("host", "invite", "--json").stdout)["url"]
        os.makedirs(host_dir)
        hub.cli("host", "join", invite, "--dir", host_dir, "--label", "A")
        log = open(os.path.join(work, "host-A.log"), "wb")
        proc = subprocess.Popen([roost, "host", "run", "--dir", host_dir, "--listen",
                                 "127.0.0.1:%d" % free_port(), "--heartbeat", "1"],
                                stdout=log, stderr=log, env=hub.env)
        deadline = time.monotonic() + 600
        while True:  # the host fetched the file and reported every chunk
            man = manifest(hub, "/data.bin")
            if man["chunks"] and all(c["hosts"] for c in man["chunks"]):
                break
            assert time.monotonic() < deadline, "the host did not report the file"
            time.sleep(0.5)
        out = os.path.join(work, "get.out")
        rep = json.loads(hub.cli("get", "--json", "/data.bin", out).stdout)
        assert [s["via"] for s in rep["sources"]] == ["host"], rep
        os.unlink(out)
        t_host = hub.timed("get", "-q", "/data.bin", out)
        assert sha256_file(out) == sha256_file(src)
        os.unlink(out)
        proc.terminate()
        proc.wait(30)
        proc = None
        rep = json.loads(hub.cli("get", "--json", "/data.bin", out).stdout)
        assert [s["via"] for s in rep["sources"]] == ["hub"], rep
        os.unlink(out)
        t_hub = hub.timed("get", "-q", "/data.bin", out)
        os.unlink(out)
        return t_host, t_hub
    finally:
        if proc:
            proc.kill()
            proc.wait()
        hub.stop()
        shutil.rmtree(os.path.join(work, "roost-sources"), ignore_errors=True)
        shutil.rmtree(host_dir, ignore_errors=True)


def manifest(hub, path):
    import urllib.parse
    import urllib.request
    with open(os.path.join(hub.env["XDG_CONFIG_HOME"], "roost", "config.json")) as f:
        tok = json.load(f)["token"]
    base = "http://127.0.0.1:%d/api/v1" % hub.port
    req = urllib.request.Request(base + "/workspaces", headers={"Authorization": "Bearer " + tok})
    ws = json.load(urllib.request.urlopen(req))["workspaces"][0]["id"]
    req = urllib.request.Request("%s/workspaces/%d/manifest?path=%s" % (
        base, ws, urllib.parse.quote(path, safe="")), headers={"Authorization": "Bearer " + tok})
    return json.load(urllib.request.urlopen(req))


HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)


def s3_env(base=None):
    """The environment for an S3 client on loopback: without AWS_CA_BUNDLE (set on
    some machines; rclone refuses to start with it on a plain-HTTP endpoint)."""
    env = dict(base or os.environ)
    env.pop("AWS_CA_BUNDLE", None)
    return env


def s3rver(work):
    """The test suite's s3rver (tests/integration/s3server.py): .endpoint,
    .access_key, .secret_key, .bucket, .store_url(prefix), .stop()."""
    sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
    try:
        from s3server import S3Server
    finally:
        sys.path.pop(0)
    return S3Server(verify=False)  # s3rver itself: its SigV4-checking proxy would be measured


class Radosgw:
    """A one-node Ceph cluster with radosgw (bench/radosgw.sh) in work/ceph."""

    def __init__(self, work):
        self.dir = os.path.join(work, "ceph")
        p = subprocess.run([os.path.join(HERE, "radosgw.sh"), "start", self.dir],
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(p.stderr.strip())
        kv = dict(l.split("=", 1) for l in p.stdout.splitlines() if "=" in l)
        self.endpoint = kv["RGW_ENDPOINT"]
        self.access_key, self.secret_key = kv["RGW_ACCESS_KEY"], kv["RGW_SECRET_KEY"]
        self.bucket = "bench"

    def store_url(self, prefix):
        return "s3://%s/%s?endpoint=%s&region=us-east-1&addressing=path" % (
            self.bucket, prefix, self.endpoint)

    def stop(self):
        subprocess.run([os.path.join(HERE, "radosgw.sh"), "stop", self.dir])


def rclone_env(server):
    return s3_env(dict(
        os.environ, RCLONE_CONFIG_BENCH_TYPE="s3", RCLONE_CONFIG_BENCH_PROVIDER="Other",
        RCLONE_CONFIG_BENCH_ENDPOINT=server.endpoint, RCLONE_CONFIG_BENCH_REGION="us-east-1",
        RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=server.access_key,
        RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=server.secret_key,
        RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE="true", RCLONE_CONFIG=os.devnull))


def s3_rows(roost, work, name, server, src, size, big_mib):
    """roost put/get through a hub on server's store against rclone copy to and
    from the same server; the hub's peak RSS. Rows for the table."""
    mbps = lambda secs: size / secs / 1e6
    renv = rclone_env(server)
    sh(["rclone", "mkdir", "bench:" + server.bucket], env=renv)  # s3rver's exists already
    remote = "bench:%s/rclone" % server.bucket
    t_rput = timed(["rclone", "copy", src, remote], env=renv)
    out = os.path.join(work, "rclone-out")
    t_rget = timed(["rclone", "copy", remote + "/" + os.path.basename(src), out], env=renv)
    assert sha256_file(os.path.join(out, os.path.basename(src))) == sha256_file(src)
    shutil.rmtree(out)
    sh(["rclone", "purge", remote], env=renv)

    henv = s3_env(dict(os.environ, AWS_ACCESS_KEY_ID=server.access_key,
                       AWS_SECRET_ACCESS_KEY=server.secret_key))
    root = os.path.join(work, "roost-s3")
    hub = None
    log = getattr(getattr(server, "_log", None), "name", None)
    count = lambda: open(log, "rb").read().count(b"ms ") if log else 0
    try:
        hub = Hub(roost, root, ["--store", server.store_url("roost")], henv)
        before = count()
        t_put = hub.timed("put", "-q", src, "/data.bin")
        requests = count() - before
        out = os.path.join(work, "get.out")
        t_get = hub.timed("get", "-q", "/data.bin", out)
        assert sha256_file(out) == sha256_file(src), "get returned different bytes"
        os.unlink(out)
        rss_1g = hub.peak_rss_kib()
        objects = os.path.join(hub.data, "objects")
        local = sum(len(f) for _, _, f in os.walk(objects)) if os.path.isdir(objects) else 0
        assert local == 0, "the hub kept %d chunk files in %s" % (local, objects)
        rows = [
            ("%s: rclone copy up" % name, "%.2f s, %.0f MB/s" % (t_rput, mbps(t_rput)), ""),
            ("%s: roost put (--store s3://)" % name, "%.2f s, %.0f MB/s" % (t_put, mbps(t_put)),
             "%.2fx rclone" % (t_rput / t_put) + ("; %d S3 requests" % requests if log else "")),
            ("%s: rclone copy down" % name, "%.2f s, %.0f MB/s" % (t_rget, mbps(t_rget)), ""),
            ("%s: roost get" % name, "%.2f s, %.0f MB/s" % (t_get, mbps(t_get)),
             "%.2fx rclone" % (t_rget / t_get)),
            ("%s: hub peak RSS, put and get of %d MiB" % (name, size // MiB),
             "%.1f MiB" % (rss_1g / 1024), "goal: <= 64 MiB"),
        ]
        if big_mib:
            big = os.path.join(work, "big.bin")
            random_file(big, big_mib * MiB)
            t_bput = hub.timed("put", "-q", big, "/big.bin")
            os.unlink(big)
            t_bget = hub.timed("get", "-q", "/big.bin", big)
            os.unlink(big)
            rows.append(("%s: hub peak RSS, put and get of %d MiB" % (name, big_mib),
                         "%.1f MiB" % (hub.peak_rss_kib() / 1024),
                         "goal: <= 64 MiB; put %.0f MB/s, get %.0f MB/s" % (
                             big_mib * MiB / t_bput / 1e6, big_mib * MiB / t_bget / 1e6)))
        return rows
    finally:
        if hub:
            hub.stop()
        shutil.rmtree(root, ignore_errors=True)


FAILED = []


def s3_section(roost, work, src, size, big_mib, servers):
    """Rows for each S3 server in servers (s3rver, radosgw); one that does not
    start gets a row saying why, the rest still run."""
    if big_mib:  # the big file, a copy in the server and one got back
        free = shutil.disk_usage(work).free
        if free < 3 * big_mib * MiB + 4 * size:
            print("transfer.py: %.1f GiB free, too little for %d MiB through S3; "
                  "skipping the big file" % (free / (1 << 30), big_mib), file=sys.stderr)
            big_mib = 0
    rows = []
    for name in servers:
        try:
            server = s3rver(work) if name == "s3rver" else Radosgw(work)
        except (RuntimeError, AssertionError, OSError) as e:
            print("transfer.py: %s did not start:\n%s" % (name, e), file=sys.stderr)
            rows.append((name, "did not start", str(e).splitlines()[-1][:120] if str(e) else ""))
            continue
        try:
            rows += s3_rows(roost, work, name, server, src, size, big_mib)
        except (RuntimeError, AssertionError, subprocess.CalledProcessError) as e:
            # the other server's rows and the rest of the table still count
            if isinstance(e, subprocess.CalledProcessError):
                err = (e.stderr or b"").decode(errors="replace").strip()
                line = (err.splitlines() or [str(e)])[-1]
            else:
                err = line = (str(e).splitlines() or [repr(e)])[0]
            print("transfer.py: %s failed: %s\n%s" % (name, e, err), file=sys.stderr)
            rows.append((name, "FAILED", line[:160].replace("|", "/")))
            FAILED.append(name)
        finally:
            server.stop()
            shutil.rmtree(getattr(server, "dir", ""), ignore_errors=True)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("roost")
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--big-mib", type=int, default=4096)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--get-sources-only", action="store_true",
                    help="only roost get from a host against from the hub")
    ap.add_argument("--s3-only", action="store_true",
                    help="only the S3 store against rclone copy")
    ap.add_argument("--no-s3", action="store_true", help="leave the S3 store out")
    ap.add_argument("--s3-servers", default="s3rver,radosgw",
                    help="comma-separated: s3rver, radosgw")
    ap.add_argument("--s3-big-mib", type=int, default=None,
                    help="the hub's RSS moving this many MiB through S3 (default --big-mib)")
    a = ap.parse_args()
    roost = os.path.abspath(a.roost)
    work = tempfile.mkdtemp(prefix="roost-bench-", dir=a.workdir)
    size = a.mib * MiB
    rows = []
    try:
        src = os.path.join(work, "data.bin")
        random_file(src, size, insert_at=size // 2)
        mbps = lambda secs: size / secs / 1e6

        if a.s3_only:
            os.unlink(src + ".v2")
            rows += s3_section(roost, work, src, size,
                               a.big_mib if a.s3_big_mib is None else a.s3_big_mib,
                               [s for s in a.s3_servers.split(",") if s])
            return print_rows(a, rows)

        t_host, t_hub = get_from_host_vs_hub(roost, work, src, size)
        rows += [
            ("roost get from a host (content server, loopback)", "%.2f s, %.0f MB/s" % (
                t_host, mbps(t_host)), "%.2fx the hub's time" % (t_host / t_hub)),
            ("roost get from the hub (no host online)", "%.2f s, %.0f MB/s" % (
                t_hub, mbps(t_hub)), ""),
        ]
        if a.get_sources_only:
            return print_rows(a, rows)

        t_sha = timed(["openssl", "dgst", "-sha256", src])
        t_dd = timed(["dd", "if=" + src, "of=" + os.path.join(work, "dd.out"), "bs=4M",
                      "conv=fsync"])
        os.unlink(os.path.join(work, "dd.out"))
        limit = min(mbps(t_sha), mbps(t_dd))

        renv = dict(os.environ, RESTIC_PASSWORD="bench")
        repo = os.path.join(work, "restic")
        sh(["restic", "init", "-r", repo], env=renv)
        t_restic, _ = restic_backup(repo, src, renv)

        hub = Hub(roost, os.path.join(work, "roost"))
        t_put = hub.timed("put", "-q", src, "/data.bin")
        out = os.path.join(work, "get.out")
        t_get = hub.timed("get", "-q", "/data.bin", out)
        assert sha256_file(out) == sha256_file(src), "get returned different bytes"
        os.unlink(out)

        # dedup after a 1-byte insert in the middle
        before = hub.metric("roost_chunk_bytes_received_total")
        hub.cli("put", "-q", src + ".v2", "/data.bin")
        roost_added = hub.metric("roost_chunk_bytes_received_total") - before
        _, restic_added = restic_backup(repo, src + ".v2", renv)
        hub.stop()
        shutil.rmtree(repo)
        shutil.rmtree(os.path.join(work, "roost"))
        os.unlink(src + ".v2")

        rows += [
            ("openssl dgst -sha256", "%.0f MB/s" % mbps(t_sha), ""),
            ("dd bs=4M conv=fsync", "%.0f MB/s" % mbps(t_dd), ""),
            ("machine limit (slower of the two)", "%.0f MB/s" % limit, "goal: put, get >= 0.7x"),
            ("restic backup", "%.0f MB/s" % mbps(t_restic), "goal: put >= 1.5x"),
            ("roost put", "%.0f MB/s" % mbps(t_put),
             "%.2fx limit, %.2fx restic" % (mbps(t_put) / limit, mbps(t_put) / mbps(t_restic))),
            ("roost get", "%.0f MB/s" % mbps(t_get), "%.2fx limit" % (mbps(t_get) / limit)),
            ("1-byte insert: roost uploads", "%.2f MB" % (roost_added / 1e6),
             "restic adds %.2f MB (%.2fx)" % (restic_added / 1e6,
                                              roost_added / max(restic_added, 1))),
        ]

        # peak memory while moving a big file
        if a.big_mib:
            big = os.path.join(work, "big.bin")
            random_file(big, a.big_mib * MiB)
            hub = Hub(roost, os.path.join(work, "roost-big"))
            rss_put = peak_rss_of([roost, "put", "-q", big, "/big.bin"], hub.env)
            os.unlink(big)
            rss_get = peak_rss_of([roost, "get", "-q", "/big.bin", big], hub.env)
            rss_hub = hub.peak_rss_kib()
            hub.stop()
            for name, kib in (("put", rss_put), ("get", rss_get), ("hub", rss_hub)):
                rows.append(("peak RSS, %s of %d MiB" % (name, a.big_mib), "%.1f MiB" % (kib / 1024),
                             "goal: <= 64 MiB"))
        if not a.no_s3:
            rows += s3_section(roost, work, src, size,
                               a.big_mib if a.s3_big_mib is None else a.s3_big_mib,
                               [s for s in a.s3_servers.split(",") if s])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_rows(a, rows)


def print_rows(a, rows):
    print("| %d MiB random file, loopback | figure | ratio |" % a.mib)
    print("|---|---|---|")
    for r in rows:
        print("| %s | %s | %s |" % r)


if __name__ == "__main__":
    main()
    sys.exit(1 if FAILED else 0)
