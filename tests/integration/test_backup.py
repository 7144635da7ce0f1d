"""Backups (issue 17): `roost admin backup` while the hub serves, `roost admin
restore` into a fresh hub (docs/operations.md, "Backups"). On SQLite and,
as test_backup_pg, on PostgreSQL (pg_dump/pg_restore).

- A backup taken while uploads run restores into a hub that serves every file
  committed before the snapshot, each verified by its SHA-256.
- A chunk damaged in the backup makes restore fail naming it; nothing is
  built. A backup without its manifest (unfinished) is refused, and so is a
  target directory that is not empty.
- GC run while the backup copies deletes nothing the backup needs; once the
  backup is done, GC collects it.
- A second backup into the same directory copies only the new chunks.
"""
import hashlib
import json
import os
import re
import subprocess
import threading
import time

import harness
from harness import Hub, HubTest


def sha(data):
    return hashlib.sha256(data).hexdigest()


class BackupTest(HubTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hub.login_cli()
        cls.n = 0

    # ---- helpers ----

    def fresh(self, name):
        BackupTest.n += 1
        return os.path.join(self.tmp, "%s-%d" % (name, BackupTest.n))

    def put(self, remote, data):
        src = self.fresh("src")
        with open(src, "wb") as f:
            f.write(data)
        p = self.roost("put", src, remote)
        self.assertEqual(p.returncode, 0, p.err)

    def backup(self, dest, **env):
        p = subprocess.run([harness.ROOST, "admin", "backup", "--data", self.hub.data,
                            *self.hub.db_args(), "--to", dest], env=self.hub.env(**env),
                           capture_output=True, text=True, timeout=600)
        p.out, p.err = p.stdout, p.stderr
        return p

    def manifest(self, dest):
        with open(os.path.join(dest, "manifest.json")) as f:
            return json.load(f)

    def new_db(self):
        """--db URL of a new, empty PostgreSQL database, or nothing on SQLite."""
        if self.hub.backend != "postgres":
            return []
        BackupTest.n += 1
        name = "restored_%d_%d" % (os.getpid(), BackupTest.n)
        return ["--db", self.hub.pg.create_database(name)]

    def restore(self, dest, data, db_args):
        return self.roost("admin", "restore", "--from", dest, "--data", data, *db_args)

    def serve(self, data, db_args):
        """A hub on the restored data dir (started; stopped at the test's end),
        logged in with its own CLI config."""
        root = os.path.dirname(data)
        h = Hub.__new__(Hub)
        h.__dict__.update(root=root, data=data, cfg=os.path.join(root, "cfg-" +
                                                                   os.path.basename(data)),
                          api_port=harness.free_port(), content_port=harness.free_port(),
                          dash_port=harness.free_port(), proc=None, log=None, serve_args=[], serve_env={},
                          store_tmpfs=None, hosts=[], backend=self.hub.backend,
                          db_url=db_args[1] if db_args else None,
                          db_name=db_args[1].rsplit("/", 1)[1] if db_args else None,
                          pg=getattr(self.hub, "pg", None))
        h.start()
        self.addCleanup(h.stop)
        h.login_cli()
        return h

    def download(self, hub, remote):
        out = self.fresh("dl")
        p = hub.cli("get", remote, out, check=False)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        with open(out, "rb") as f:
            return f.read()

    def restored_hub(self, dest):
        data, db = self.fresh("restored"), self.new_db()
        p = self.restore(dest, data, db)
        self.assertEqual(p.returncode, 0, p.err)
        self.assertIn("every one verified", p.out)
        h = self.serve(data, db)
        # The backup's own GC fence does not come back with it.
        self.assertEqual(h.sql("SELECT COUNT(*) FROM gc_fences"), [(0,)])
        return h

    # ---- tests ----

    def test_backup_during_uploads_restores_every_committed_file(self):
        committed = {}  # remote path -> (sha256, when the put returned, ms)
        errors = []
        stop = threading.Event()

        def uploads():
            i = 0
            while not stop.is_set():
                i += 1
                data = os.urandom(20000 + (i * 7919) % 400000)
                src = self.fresh("live")
                with open(src, "wb") as f:
                    f.write(data)
                p = self.hub.cli("put", src, "/live/%d.bin" % i, check=False)
                if p.returncode != 0:
                    errors.append(p.stderr.decode())
                    return
                committed["/live/%d.bin" % i] = (sha(data), time.time() * 1000)

        t = threading.Thread(target=uploads)
        t.start()
        try:
            harness.wait_for(lambda: len(committed) >= 5, what="the first uploads")
            dest = self.fresh("bk")
            p = self.backup(dest, ROOST_BACKUP_TEST_DELAY_MS="20")
            done_ms = time.time() * 1000
            harness.wait_for(lambda: any(w > done_ms for _, w in committed.values()),
                             what="an upload after the backup")
        finally:
            stop.set()
            t.join()
        self.assertEqual(errors, [], "an upload failed while the backup ran")
        self.assertEqual(p.returncode, 0, p.err)
        self.assertIn("snapshot taken", p.err)
        snap = self.manifest(dest)["created_at"]
        before = {r: h for r, (h, w) in committed.items() if w < snap}
        after = {r for r, (_, w) in committed.items() if w > done_ms}
        self.assertGreaterEqual(len(before), 5)
        self.assertTrue(after, "no upload ran after the backup")
        restored = self.restored_hub(dest)
        for remote, digest in sorted(before.items()):
            self.assertEqual(sha(self.download(restored, remote)), digest, remote)
        # Whatever else it holds is whole too; what came after the backup is not there.
        listing = json.loads(restored.cli("ls", "/live", "--json").stdout)
        names = {"/live/" + e["name"] for e in listing}
        self.assertLessEqual(set(before), names)
        self.assertFalse(names & after, "a file uploaded after the backup was restored")
        for remote in names - set(before):
            self.assertEqual(sha(self.download(restored, remote)), committed[remote][0])

    def test_damaged_chunk_fails_restore_naming_it(self):
        self.put("/damaged/a.bin", os.urandom(900000))
        dest = self.fresh("bk")
        self.assertEqual(self.backup(dest).returncode, 0)
        victim = self.manifest(dest)["chunks"][0]["hash"]
        path = os.path.join(dest, "objects", victim[:2], victim)
        with open(path, "r+b") as f:
            f.seek(100)
            b = f.read(1)
            f.seek(100)
            f.write(bytes([b[0] ^ 1]))
        data = self.fresh("restored")
        p = self.restore(dest, data, self.new_db())
        self.assertEqual(p.returncode, 1, p.err)
        self.assertIn("chunk %s is damaged in the backup" % victim, p.err)
        self.assertIn("nothing was restored", p.err)
        self.assertFalse(os.path.exists(data))
        self.assertEqual([e for e in os.listdir(self.tmp) if ".restoring-" in e], [])

    def test_damaged_metadata_fails_restore(self):
        dest = self.fresh("bk")
        self.assertEqual(self.backup(dest).returncode, 0)
        meta = os.path.join(dest, self.manifest(dest)["metadata"]["file"])
        with open(meta, "ab") as f:
            f.write(b"\0")
        data = self.fresh("restored")
        p = self.restore(dest, data, self.new_db())
        self.assertEqual(p.returncode, 1, p.err)
        self.assertIn("is damaged: its SHA-256 is not the manifest's", p.err)
        self.assertFalse(os.path.exists(data))

    def test_restore_refuses_an_unfinished_backup_and_a_used_directory(self):
        dest = self.fresh("bk")
        self.assertEqual(self.backup(dest).returncode, 0)
        used = self.fresh("used")
        os.makedirs(used)
        with open(os.path.join(used, "keep.txt"), "w") as f:
            f.write("mine")
        p = self.restore(dest, used, self.new_db())
        self.assertEqual(p.returncode, 1)
        self.assertIn("is not empty", p.err)
        self.assertEqual(os.listdir(used), ["keep.txt"])
        os.unlink(os.path.join(dest, "manifest.json"))
        data = self.fresh("restored")
        p = self.restore(dest, data, self.new_db())
        self.assertEqual(p.returncode, 1)
        self.assertIn("holds no complete backup", p.err)
        self.assertFalse(os.path.exists(data))
        p = self.roost("admin", "backup", "--data", self.hub.data)
        self.assertEqual(p.returncode, 2)
        self.assertIn("usage: roost admin backup", p.err)

    def test_backup_refuses_the_hubs_own_directory(self):
        before = sorted(os.listdir(self.hub.data))
        for into in (self.hub.data, os.path.join(self.hub.data, "objects")):
            p = self.backup(into)
            self.assertEqual(p.returncode, 1, p.err)
            self.assertIn("is a hub's data directory", p.err)
        self.assertEqual(sorted(os.listdir(self.hub.data)), before)

    def test_restore_of_a_postgres_backup_needs_an_empty_database(self):
        if self.hub.backend != "postgres":
            self.skipTest("PostgreSQL only")
        dest = self.fresh("bk")
        self.assertEqual(self.backup(dest).returncode, 0)
        data = self.fresh("restored")
        p = self.restore(dest, data, [])
        self.assertEqual(p.returncode, 2)
        self.assertIn("give --db URL of an empty database", p.err)
        p = self.restore(dest, data, self.hub.db_args())  # the live hub's: not empty
        self.assertEqual(p.returncode, 1)
        self.assertIn("is not empty", p.err)
        self.assertFalse(os.path.exists(data))

    def test_gc_during_backup_keeps_what_the_backup_needs(self):
        data = os.urandom(1500000)
        self.put("/gc/doomed.bin", data)
        doomed = [r[0] for r in self.hub.sql(
            "SELECT vc.chunk_hash FROM version_chunks vc JOIN files f ON "
            "f.current_version_id = vc.version_id WHERE f.name = 'doomed.bin'")]
        self.assertTrue(doomed)
        dest = self.fresh("bk")
        # A slow copy (about 10 s in all): the backup is still copying when GC runs.
        total = len(self.hub.sql("SELECT hash FROM chunks"))
        delay = max(50, 10000 // total)
        proc = subprocess.Popen(
            [harness.ROOST, "admin", "backup", "--data", self.hub.data, *self.hub.db_args(),
             "--to", dest], env=self.hub.env(ROOST_BACKUP_TEST_DELAY_MS=str(delay)),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            for _ in range(50):  # the line that says the snapshot is taken, or its end
                line = proc.stderr.readline()
                if not line or "snapshot taken" in line:
                    break
            self.assertIn("snapshot taken", line)
            # Deleted, purged from the trash and past retention: GC would take it now.
            st, _, payload, _ = self.api("DELETE", "/files?path=%2Fgc%2Fdoomed.bin")
            self.assertEqual(st, 200, payload)
            self.hub.sql("UPDATE files SET deleted_at = ? WHERE name = 'doomed.bin'",
                         (int(time.time() * 1000) - 400 * 86400000,))
            gc = self.roost("admin", "gc", "--data", self.hub.data, *self.hub.db_args(),
                            "--retention", "0", "--json")
            self.assertEqual(gc.returncode, 0, gc.err)
            res = json.loads(gc.out)
            self.assertEqual(res["files_purged"], 1)
            self.assertEqual(res["chunks_deleted"], 0)
            self.assertGreaterEqual(res["backup_fenced"], len(doomed))
            self.assertIsNone(proc.poll(), "the backup finished before GC ran: too fast")
            for h in doomed:
                self.assertTrue(os.path.exists(os.path.join(self.hub.data, "objects", h[:2], h)))
            out, err = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertEqual(proc.returncode, 0, err)
        self.assertEqual(self.manifest(dest)["absent"], [])
        # The fence is gone with the backup: GC collects now.
        gc = self.roost("admin", "gc", "--data", self.hub.data, *self.hub.db_args(),
                        "--retention", "0", "--json")
        self.assertGreaterEqual(json.loads(gc.out)["chunks_deleted"], len(doomed))
        # And the backup still holds the file GC took from the hub.
        restored = self.restored_hub(dest)
        self.assertEqual(sha(self.download(restored, "/gc/doomed.bin")), sha(data))

    def test_second_backup_copies_only_new_chunks(self):
        self.put("/incr/one.bin", os.urandom(700000))
        dest = self.fresh("bk")
        first = self.backup(dest)
        self.assertEqual(first.returncode, 0, first.err)
        m1 = self.manifest(dest)
        self.put("/incr/two.bin", os.urandom(2500000))
        new = [r[0] for r in self.hub.sql(
            "SELECT vc.chunk_hash FROM version_chunks vc JOIN files f ON "
            "f.current_version_id = vc.version_id WHERE f.name = 'two.bin'")]
        second = self.backup(dest)
        self.assertEqual(second.returncode, 0, second.err)
        m2 = self.manifest(dest)
        copied = int(re.search(r"\((\d+) copied", second.out).group(1))
        there = int(re.search(r"(\d+) already there", second.out).group(1))
        self.assertEqual(copied, len(set(new)), second.out)
        self.assertEqual(there, len(m1["chunks"]), second.out)
        self.assertEqual(len(m2["chunks"]), len(m1["chunks"]) + len(set(new)))
        # One metadata file: the previous backup's went with its manifest.
        metas = [e for e in os.listdir(dest) if e.startswith("metadata-")]
        self.assertEqual(metas, [m2["metadata"]["file"]])
        self.assertEqual(oct(os.stat(os.path.join(dest, metas[0])).st_mode & 0o777), "0o600")


if __name__ == "__main__":
    import unittest
    unittest.main()
