"""I/O errors injected into a running hub and host (issue 19, "I/O errors").

The shim tests/faults/iofault.c (BUILD/iofault.so, beside roost) is preloaded
into the hub or the host agent alone (never the CLI or the test) and
fails write, pwrite, fsync, fdatasync, rename or open(O_CREAT) with EIO or
ENOSPC on the files whose path holds a substring: /objects/ (the hub's chunk
store) or roost.db (its SQLite database and WAL). The test switches the fault
on and off through the shim's control file while the process runs.

For every call and errno, with the fault on:
- a put gets a clear error (507 out_of_space for ENOSPC, a 5xx JSON error
  for EIO; the CLI a message and a non-zero exit);
- nothing is acknowledged: no version row, nothing listed, no chunk object
  and no temp file left of it;
and with the fault off, the same hub (no restart) takes the same put, and
every file put before reads back with its SHA-256, every chunk a version
names is in the store, and SQLite's integrity_check is "ok".

On PostgreSQL the database is another process: there the store's faults
run, and the database's are SQLite's alone.

A host whose folder writes fail reports the error in its status and log
and converges once the fault ends, without a restart.
"""
import errno
import hashlib
import json
import os
import random
import re

import harness
from harness import Host, HubTest, q, wait_for

KiB = 1 << 10
FAULT_SO = os.path.join(os.path.dirname(os.path.abspath(harness.ROOST)), "iofault.so")


def shim_env(ctl, log):
    if not os.path.exists(FAULT_SO):
        raise AssertionError("%s is missing: build the iofault target" % FAULT_SO)
    return {"LD_PRELOAD": FAULT_SO, "ROOST_FAULT_CTL": ctl, "ROOST_FAULT_LOG": log,
            "ASAN_OPTIONS": harness.asan_options_preloaded()}


def set_fault(ctl, spec):
    """Replace the control file (a new inode: the shim reads it again)."""
    with open(ctl + ".new", "w") as f:
        f.write(spec)
    os.replace(ctl + ".new", ctl)


def sha(data):
    return hashlib.sha256(data).hexdigest()


class FaultCase:
    """Shared helpers: the fault's control and log files in self.tmp."""

    @property
    def ctl(self):
        return os.path.join(self.tmp, "fault.ctl")

    @property
    def fault_log(self):
        return os.path.join(self.tmp, "fault.log")

    def fault(self, spec):
        set_fault(self.ctl, spec)
        self.addCleanup(set_fault, self.ctl, "off")

    def fired(self):
        """The faults injected so far, one line each."""
        try:
            with open(self.fault_log) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []


class HubIoFaultTest(FaultCase, HubTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hub.stop()
        set_fault(os.path.join(cls.tmp, "fault.ctl"), "off")
        cls.hub.serve_env = shim_env(os.path.join(cls.tmp, "fault.ctl"),
                                     os.path.join(cls.tmp, "fault.log"))
        cls.hub.start()
        cls.hub.login_cli()
        cls.n = 0
        cls.stored = {}  # path -> sha256 of every acknowledged put

    # ---- helpers ----

    def local_file(self, size=300 * KiB):
        self.__class__.n += 1
        path = os.path.join(self.tmp, "src-%d.bin" % self.n)
        data = os.urandom(size)
        with open(path, "wb") as f:
            f.write(data)
        return path, data

    def put_ok(self, src, data, path):
        p = self.roost("put", src, path)
        self.assertEqual(p.returncode, 0, p.err)
        self.stored[path] = sha(data)

    def objects(self):
        return {self.hub.object_hash(p) for p in self.hub.object_paths()}

    def tmp_files(self):
        return os.listdir(os.path.join(self.hub.store_dir(), "tmp"))

    def versions_of(self, digest):
        return self.hub.sql("SELECT count(*) FROM file_versions WHERE hash = ?", (digest,))[0][0]

    def assertRefused(self, st, body, err, full_known=True):
        """A fault's answer: a JSON error, 507 out_of_space for ENOSPC, a 5xx for
        EIO. (SQLite reports an fsync's ENOSPC as a disk I/O error, errno lost:
        there full_known is False and a 5xx is the answer.)"""
        self.assertIsInstance(body, dict, (st, body))
        if err == "ENOSPC" and full_known:
            self.assertEqual((st, body["error"]["code"]), (507, "out_of_space"), body)
        else:
            self.assertGreaterEqual(st, 500, body)
            self.assertLess(st, 600, body)
            self.assertNotEqual(body["error"]["code"], "out_of_space", body)

    def assertIntact(self, paths=None):
        """Everything acknowledged (or the paths given) reads back whole; the
        store and database agree."""
        for path, digest in self.stored.items():
            if paths is not None and path not in paths:
                continue
            out = os.path.join(self.tmp, "got.bin")
            p = self.roost("get", path, out)
            self.assertEqual(p.returncode, 0, (path, p.err))
            with open(out, "rb") as f:
                self.assertEqual(sha(f.read()), digest, path)
            os.unlink(out)
        named = {r[0] for r in self.hub.sql("SELECT DISTINCT chunk_hash FROM version_chunks")}
        self.assertEqual(named - self.objects(), set(), "chunks a version names are missing")
        self.assertEqual(self.tmp_files(), [], "half-written chunks were left in tmp")
        if self.hub.backend == "sqlite":
            self.assertEqual(self.hub.sql("PRAGMA integrity_check"), [("ok",)])

    # ---- the chunk store ----

    def check_store_fault(self, call, err):
        self.put_ok(*self.local_file(), "/store/before-%s-%s.bin" % (call, err))
        path = "/store/%s-%s.bin" % (call, err)
        src, data = self.local_file()
        before = self.objects()
        fired = len(self.fired())
        self.fault("calls=%s errno=%s path=/objects/" % (call, err))
        # the CLI: a message, a non-zero exit
        p = self.roost("put", src, path)
        self.assertNotEqual(p.returncode, 0, p.out)
        if err == "ENOSPC":
            self.assertIn("the hub is out of space (507 out_of_space)", p.err)
        else:
            self.assertRegex(p.err, r"\([a-z_]+, HTTP 5\d\d\)", p.err)
        self.assertGreater(len(self.fired()), fired, "the fault never fired")
        # the API: a JSON error for the chunk itself
        chunk = os.urandom(64 * KiB)
        st, body, payload, _ = self.api("PUT", "/chunks/" + sha(chunk), raw=chunk)
        self.assertRefused(st, body, err)
        # nothing acknowledged, nothing half-written
        self.assertEqual(self.api("GET", "/info?path=" + q(path))[0], 404)
        self.assertEqual(self.versions_of(sha(data)), 0)
        self.assertNotIn(sha(chunk), self.objects())
        self.assertEqual(self.objects() - before, set(), "objects stored under the fault")
        self.assertEqual(self.tmp_files(), [])
        # the fault ends: the same hub takes the put
        set_fault(self.ctl, "off")
        self.put_ok(src, data, path)
        self.assertIntact()

    def test_store_write_eio(self):
        self.check_store_fault("write", "EIO")

    def test_store_write_enospc(self):
        self.check_store_fault("write", "ENOSPC")

    def test_store_fsync_eio(self):
        self.check_store_fault("fsync", "EIO")

    def test_store_fsync_enospc(self):
        self.check_store_fault("fsync", "ENOSPC")

    def test_store_rename_eio(self):
        self.check_store_fault("rename", "EIO")

    def test_store_rename_enospc(self):
        self.check_store_fault("rename", "ENOSPC")

    def test_store_create_eio(self):
        self.check_store_fault("creat", "EIO")

    def test_store_create_enospc(self):
        self.check_store_fault("creat", "ENOSPC")

    def test_store_fault_on_one_call_then_the_retry_succeeds(self):
        """A single failed fsync: the put fails or its retry stores it; either
        way what is acknowledged is whole."""
        path = "/store/once.bin"
        src, data = self.local_file(2 << 20)
        fired = len(self.fired())
        self.fault("calls=fsync errno=EIO after=2 times=1 path=/objects/")
        p = self.roost("put", src, path)
        self.assertEqual(len(self.fired()), fired + 1, "the fault fired but once")
        if p.returncode == 0:
            self.stored[path] = sha(data)
        else:
            self.assertEqual(self.versions_of(sha(data)), 0)
            set_fault(self.ctl, "off")
            self.put_ok(src, data, path)
        self.assertIntact()

    def test_seeded_faults_at_the_nth_call_never_lose_an_acknowledged_put(self):
        """Rounds of one fault at a random Nth call (store or database, any
        call, EIO or ENOSPC, once or for good) during a put: a put that
        succeeds is listed and reads back; one that fails left nothing; after
        each round, with the fault off, everything verifies.
        ROOST_SEED=N replays; ROOST_IOFAULT_ROUNDS sets the count."""
        seed = int(os.environ.get("ROOST_SEED") or random.randrange(1 << 32))
        rounds = int(os.environ.get("ROOST_IOFAULT_ROUNDS") or 12)
        print("\nseed %d (ROOST_SEED=%d replays), %d rounds" % (seed, seed, rounds))
        rng = random.Random(seed)
        targets = [("/objects/", ["write", "fsync", "rename", "creat"])]
        if self.hub.backend == "sqlite":
            targets.append(("roost.db", ["pwrite", "fsync,fdatasync"]))
        for i in range(rounds):
            where, calls = rng.choice(targets)
            spec = "calls=%s errno=%s after=%d times=%d path=%s" % (
                rng.choice(calls), rng.choice(["EIO", "ENOSPC"]), rng.randint(1, 30),
                rng.choice([1, 1, 3, 0]), where)
            path = "/seeded/%d.bin" % i
            data = bytes(rng.getrandbits(8) for _ in range(rng.choice([1, 64, 700]) * KiB))
            src = os.path.join(self.tmp, "seeded.bin")
            with open(src, "wb") as f:
                f.write(data)
            with self.subTest(seed=seed, round=i, fault=spec):
                set_fault(self.ctl, spec)
                p = self.roost("put", src, path)
                set_fault(self.ctl, "off")
                if p.returncode == 0:
                    self.stored[path] = sha(data)
                else:
                    self.assertRegex(p.err, r"\([a-z_]+, HTTP 5\d\d\)|out of space", p.err)
                    if self.versions_of(sha(data)) == 0:
                        self.assertEqual(self.api("GET", "/info?path=" + q(path))[0], 404)
                self.assertIntact([path])
        self.assertIntact()

    # ---- the database (SQLite: the hub's own file) ----

    def check_db_fault(self, call, err):
        self.put_ok(*self.local_file(), "/db/before-%s-%s.bin" % (call, err))
        path = "/db/%s-%s.bin" % (call, err)
        src, data = self.local_file()
        # the chunk goes up with the fault off; the commit meets it
        chunk_hash = sha(data)
        st, body, payload, _ = self.api("PUT", "/chunks/" + chunk_hash, raw=data)
        self.assertEqual(st, 201, payload)
        fired = len(self.fired())
        self.fault("calls=%s errno=%s path=roost.db" % (call, err))
        st, body, payload, _ = self.api("POST", "/versions", {
            "path": path, "size": len(data), "hash": chunk_hash,
            "chunks": [{"hash": chunk_hash, "size": len(data)}]})
        self.assertNotEqual(st, 201, "a commit was acknowledged under a database fault")
        self.assertGreater(len(self.fired()), fired, "the fault never fired")
        full_known = "pwrite" in call
        self.assertRefused(st, body, err, full_known)
        # the CLI
        p = self.roost("put", src, path)
        self.assertNotEqual(p.returncode, 0, p.out)
        if err == "ENOSPC" and full_known:
            self.assertIn("the hub is out of space (507 out_of_space)", p.err)
        else:
            self.assertRegex(p.err, r"\([a-z_]+, HTTP 5\d\d\)", p.err)
        set_fault(self.ctl, "off")
        # nothing acknowledged is in the database
        self.assertEqual(self.versions_of(chunk_hash), 0)
        self.assertEqual(self.api("GET", "/info?path=" + q(path))[0], 404)
        # the same hub takes it now
        self.put_ok(src, data, path)
        self.assertIntact()

    # PostgreSQL's files are its server's: these are SQLite's alone.
    if harness.BACKEND == "sqlite":
        def test_db_pwrite_eio(self):
            self.check_db_fault("pwrite", "EIO")

        def test_db_pwrite_enospc(self):
            self.check_db_fault("pwrite", "ENOSPC")

        def test_db_fsync_eio(self):
            self.check_db_fault("fsync,fdatasync", "EIO")

        def test_db_fsync_enospc(self):
            self.check_db_fault("fsync,fdatasync", "ENOSPC")


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


class HostIoFaultTest(FaultCase, HubTest):
    def check_host_fault(self, err):
        self.hub.login_cli()
        h = Host(self.hub, self.tmp, "F" + err)
        h.join()
        set_fault(self.ctl, "off")
        h.extra_env = shim_env(self.ctl, self.fault_log)
        h.start()
        first = os.urandom(200 * KiB)
        src = os.path.join(self.tmp, "first.bin")
        with open(src, "wb") as f:
            f.write(first)
        self.assertEqual(self.roost("put", src, "/%s/first.bin" % err).returncode, 0)
        wait_for(lambda: read(h.path("/%s/first.bin" % err)) == first,
                 timeout=60, what="first.bin on the host", hosts=[h])
        # every write into the folder (its temp files too) fails
        self.fault("calls=write,pwrite,fsync,rename,creat errno=%s path=%s/" % (err, h.dir))
        data = os.urandom(300 * KiB)
        src = os.path.join(self.tmp, "second.bin")
        with open(src, "wb") as f:
            f.write(data)
        second = "/%s/second.bin" % err
        self.assertEqual(self.roost("put", src, second).returncode, 0)

        def failures():
            with open(h.log_path, "rb") as f:
                log = f.read().decode(errors="replace")
            return len(re.findall(r"error download %s failed: \S" % re.escape(second), log))
        # reported, and tried again while the fault lasts
        wait_for(lambda: failures() >= 2, timeout=60,
                 what="the host to report the error and retry", hosts=[h])
        self.assertTrue(self.fired(), "the fault never fired")
        # ... and says so to the hub: a count and the error, never the path
        # (its status file is in the folder too, so it cannot be written now)

        def on_hub():
            st, body, _, _ = self.api("GET", "/hosts")
            self.assertEqual(st, 200)
            mine = [x for x in body["hosts"] if x["label"] == h.label][0]
            return mine.get("io_errors", {})
        wait_for(lambda: on_hub().get("files", 0) >= 1, timeout=30,
                 what="the hub to show the host's write errors", hosts=[h])
        self.assertIn(os.strerror(getattr(errno, err)), on_hub()["last_error"])
        self.assertNotIn("last_path", on_hub())
        self.assertNotIn("second.bin", json.dumps(on_hub()))
        # only the download's own fsync fails: the status file says which
        self.fault("calls=fsync errno=%s path=%s/.roost/tmp/" % (err, h.dir))
        wait_for(lambda: h.status().get("io_errors", {}).get("last_path") == second,
                 timeout=30, what="the host's status to name the failed file", hosts=[h])
        io = h.status()["io_errors"]
        self.assertEqual(io["files"], 1)
        self.assertIn(os.strerror(getattr(errno, err)), io["last_error"])
        self.assertIn("write errors: 1 file not written, the last %s" % second,
                      self.roost("host", "status", "--dir", h.dir).out)
        self.assertIsNone(read(h.path(second)), "a half-written file is visible")
        self.assertEqual(read(h.path("/%s/first.bin" % err)), first)
        # the fault ends: the host converges without a restart
        set_fault(self.ctl, "off")
        wait_for(lambda: read(h.path(second)) == data, timeout=120,
                 what="second.bin on the host after the fault", hosts=[h])
        self.assertEqual(read(h.path("/%s/first.bin" % err)), first)
        self.assertTrue(h.running())
        wait_for(lambda: h.status()["io_errors"]["files"] == 0, timeout=30,
                 what="the host's status to clear the error", hosts=[h])
        wait_for(lambda: on_hub().get("files") == 0, timeout=30,
                 what="the hub to see the error cleared", hosts=[h])
        h.stop()

    def test_a_host_whose_folder_writes_fail_with_eio_reports_and_converges(self):
        self.check_host_fault("EIO")

    def test_a_host_whose_folder_writes_fail_with_enospc_reports_and_converges(self):
        self.check_host_fault("ENOSPC")


if __name__ == "__main__":
    harness.main()
