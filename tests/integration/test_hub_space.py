"""A hub whose disk is full, and a workspace's quota, as a user meets them (issue 16).

The hub's chunk store is a real, small filesystem: a tmpfs mounted over
DATA/objects in a user+mount namespace of the hub's own (harness.Hub.store_tmpfs:
`unshare -rm`, no privileges needed; if that is impossible the hub does not start
and every test fails). The tests fill it from outside through /proc/PID/root.

- `roost put` to a full hub exits non-zero with "the hub is out of space (507 …)",
  the hub logs it once per episode with the store's path and its free bytes,
  nothing is listed and nothing half-written is left; after space is freed the
  same put works.
- A put cut off by a full disk leaves only whole chunks its uploader holds (the
  next put reuses them; GC collects them after the upload lease), none in tmp.
- The streaming uploads (PUT upload, a share link's upload, WebDAV PUT) answer
  507 out_of_space and keep none of the body's chunks.
- Nothing stored before the disk filled is harmed (it reads back whole,
  every chunk a version names is there, SQLite's integrity_check passes), a
  file of chunks the hub holds still goes, and puts resume without a restart.
- A quota is checked on the probe, which carries the file's size: a put over it
  fails before a chunk is sent.
"""
import base64
import errno
import hashlib
import json
import os
import re
import urllib.parse
import http.client

from harness import HubTest, q

MiB = 1 << 20


class HubSpaceTest(HubTest):
    store_tmpfs = 32 * MiB

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hub.login_cli()
        out = cls.hub.cli("token", "create", "--name", "space-tests", "--json").stdout
        cls.app = json.loads(out)["token"]
        cls.n = 0

    # ---- helpers ----

    def store(self):
        return self.hub.store_dir()

    def objects(self):
        """The hashes of the objects in the hub's store."""
        found = set()
        root = self.store()
        for d in os.listdir(root):
            if re.fullmatch(r"[0-9a-f]{2}", d):
                found.update(n for n in os.listdir(os.path.join(root, d))
                             if re.fullmatch(r"[0-9a-f]{64}", n))
        return found

    def tmp_files(self):
        return os.listdir(os.path.join(self.store(), "tmp"))

    def fill(self, leave=0):
        """Fill the store's filesystem until about leave bytes are free."""
        path = os.path.join(self.store(), "filler")
        self.addCleanup(self.free_space)
        block = b"\0" * (64 << 10)
        # unbuffered: a buffered file keeps the tail of a partial write and
        # its close() fails with ENOSPC flushing it
        with open(path, "ab", buffering=0) as f:
            while True:
                st = os.statvfs(self.store())
                if st.f_bavail * st.f_frsize <= leave:
                    break
                try:
                    f.write(block)
                except OSError as e:
                    self.assertIn(e.errno, (errno.ENOSPC, errno.EDQUOT))
                    break

    def free_space(self):
        path = os.path.join(self.store(), "filler")
        if os.path.exists(path):
            os.unlink(path)

    def local_file(self, size):
        self.__class__.n += 1
        path = os.path.join(self.tmp, "src-%d.bin" % self.n)
        data = os.urandom(size)
        with open(path, "wb") as f:
            f.write(data)
        return path, data

    def hub_log(self, since=0):
        """The hub's log from byte offset since."""
        with open(os.path.join(self.tmp, "hub.log"), "rb") as f:
            return f.read()[since:].decode(errors="replace")

    def log_size(self):
        return os.path.getsize(os.path.join(self.tmp, "hub.log"))

    def info(self, path):
        return self.api("GET", "/info?path=" + q(path))

    def assertOutOfSpace(self, st, body):
        self.assertEqual(st, 507, body)
        self.assertEqual(body["error"]["code"], "out_of_space", body)
        self.assertTrue(body["error"]["message"].startswith("the hub is out of space"), body)

    # ---- a full disk ----

    def test_put_to_a_full_hub_reads_out_of_space_and_works_once_space_is_freed(self):
        before = self.objects()
        since = self.log_size()
        self.fill()
        src, data = self.local_file(3 * MiB)
        p = self.roost("put", src, "/full/a.bin")
        self.assertNotEqual(p.returncode, 0, p.out)
        self.assertIn("the hub is out of space (507 out_of_space)", p.err)
        self.assertNotIn("refused it", p.err)
        again = self.roost("put", src, "/full/a.bin")  # the same episode: logged once
        self.assertIn("the hub is out of space (507", again.err)
        self.assertEqual(self.info("/full/a.bin")[0], 404)
        ls = self.roost("ls", "/")
        self.assertNotIn("full", ls.out)
        self.assertEqual(self.objects(), before, "a refused put stored chunks")
        self.assertEqual(self.tmp_files(), [], "half-written chunks were left in tmp")
        log = self.hub_log(since)
        lines = [l for l in log.splitlines() if "out of space: " in l and "failed" in l]
        self.assertEqual(len(lines), 1, log[-3000:])
        self.assertIn(os.path.join(self.hub.data, "objects"), lines[0])
        self.assertRegex(lines[0], r"has \d+ bytes free")
        self.free_space()
        p = self.roost("put", src, "/full/a.bin")
        self.assertEqual(p.returncode, 0, p.err)
        out = os.path.join(self.tmp, "got-a.bin")
        self.assertEqual(self.roost("get", "/full/a.bin", out).returncode, 0)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), data)
        self.assertIn("out of space: over", self.hub_log(since))

    def test_a_put_cut_off_by_a_full_disk_leaves_only_chunks_its_uploader_holds(self):
        before = self.objects()
        self.fill(leave=MiB + MiB // 2)
        src, data = self.local_file(8 * MiB)
        p = self.roost("put", src, "/cut/b.bin")
        self.assertNotEqual(p.returncode, 0, p.out)
        self.assertIn("the hub is out of space (507 out_of_space)", p.err)
        self.assertEqual(self.info("/cut/b.bin")[0], 404)
        self.assertEqual(self.tmp_files(), [], "half-written chunks were left in tmp")
        stored = self.objects() - before
        # Whole chunks that went up before the disk filled are the uploader's
        # pending uploads (GC collects them after the upload lease), never
        # objects nothing in the database names.
        held = {r[0] for r in self.hub.sql(
            "SELECT chunk_hash FROM chunk_uploads WHERE workspace_id = ?", (self.ws,))}
        self.assertEqual(stored - held, set(), "objects nothing refers to")
        self.free_space()
        p = self.roost("put", src, "/cut/b.bin")
        self.assertEqual(p.returncode, 0, p.err)
        m = re.search(r"in (\d+) chunks?, (\d+) uploaded", p.out)
        self.assertIsNotNone(m, p.out)
        self.assertEqual(int(m.group(2)), int(m.group(1)) - len(stored),
                         "the second put sent again what the first had stored")
        st, info, _, _ = self.info("/cut/b.bin")
        self.assertEqual((st, info["hash"]), (200, hashlib.sha256(data).hexdigest()))

    def test_streaming_uploads_to_a_full_hub_answer_507_and_keep_nothing(self):
        st, link, payload, _ = self.api("POST", "/shares", {"path": "/", "scope": "write"})
        self.assertEqual(st, 201, payload)
        before = self.objects()
        self.fill(leave=MiB + MiB // 2)
        body = os.urandom(6 * MiB)
        # PUT upload: the hub chunks the body
        st, resp, payload, _ = self.api("PUT", "/upload?path=" + q("/stream/c.bin"), raw=body)
        self.assertOutOfSpace(st, resp)
        # a share link's upload
        u = urllib.parse.urlsplit(link["url"])
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        conn.request("PUT", u.path + "/upload?path=" + q("/stream/d.bin"), body=body)
        r = conn.getresponse()
        self.assertOutOfSpace(r.status, json.loads(r.read()))
        conn.close()
        # WebDAV PUT
        conn = http.client.HTTPConnection("127.0.0.1", self.hub.content_port, timeout=60)
        auth = base64.b64encode(("owner@example.test:" + self.app).encode()).decode()
        conn.request("PUT", "/dav/default/e.bin", body=body,
                     headers={"Authorization": "Basic " + auth})
        r = conn.getresponse()
        r.read()
        conn.close()
        self.assertEqual(r.status, 507)
        for path in ("/stream/c.bin", "/stream/d.bin", "/e.bin"):
            self.assertEqual(self.info(path)[0], 404, path)
        self.assertEqual(self.objects(), before, "a refused upload kept chunks")
        self.assertEqual(self.tmp_files(), [])

    def test_a_full_store_harms_nothing_stored_and_resumes_without_a_restart(self):
        """Issue 19: what was stored before the disk filled stays whole and
        listed, the database stays consistent, a file made of chunks the hub
        already holds still goes, and puts resume once space returns."""
        kept = {}
        for i, size in enumerate((100 << 10, 2 * MiB, 5 * MiB)):
            src, data = self.local_file(size)
            p = self.roost("put", src, "/kept/%d.bin" % i)
            self.assertEqual(p.returncode, 0, p.err)
            kept["/kept/%d.bin" % i] = (src, data)
        before = self.objects()
        pid = self.hub.proc.pid
        self.fill()
        # a new file and a new version of a kept one: refused, nothing changes
        new_src, new_data = self.local_file(2 * MiB)
        p = self.roost("put", new_src, "/kept/new.bin")
        self.assertNotEqual(p.returncode, 0, p.out)
        self.assertIn("the hub is out of space (507 out_of_space)", p.err)
        p = self.roost("put", new_src, "/kept/1.bin")
        self.assertNotEqual(p.returncode, 0, p.out)
        st, info, _, _ = self.info("/kept/1.bin")
        self.assertEqual((st, info["hash"], info["version"]),
                         (200, hashlib.sha256(kept["/kept/1.bin"][1]).hexdigest(), 1), info)
        # the same bytes under another name need no new chunk: they go
        p = self.roost("put", kept["/kept/2.bin"][0], "/kept/copy.bin")
        self.assertEqual(p.returncode, 0, p.err)
        kept["/kept/copy.bin"] = kept["/kept/2.bin"]
        self.assertEqual(self.objects(), before)
        self.assertEqual(self.tmp_files(), [])
        self.assertConsistent(kept)
        # space returns: the same hub (no restart) takes the puts
        self.free_space()
        for path in ("/kept/new.bin", "/kept/1.bin"):
            p = self.roost("put", new_src, path)
            self.assertEqual(p.returncode, 0, p.err)
            kept[path] = (new_src, new_data)
        self.assertEqual(self.hub.proc.pid, pid, "the hub restarted")
        self.assertConsistent(kept)

    def assertConsistent(self, files):
        """Every file reads back whole; every chunk a version names is stored;
        SQLite's integrity check passes."""
        for path, (_, data) in files.items():
            out = os.path.join(self.tmp, "got.bin")
            p = self.roost("get", path, out)
            self.assertEqual(p.returncode, 0, (path, p.err))
            with open(out, "rb") as f:
                self.assertEqual(hashlib.sha256(f.read()).digest(),
                                 hashlib.sha256(data).digest(), path)
            os.unlink(out)
        named = {r[0] for r in self.hub.sql("SELECT DISTINCT chunk_hash FROM version_chunks")}
        self.assertEqual(named - self.objects(), set(), "chunks a version names are missing")
        if self.hub.backend == "sqlite":
            self.assertEqual(self.hub.sql("PRAGMA integrity_check"), [("ok",)])
            self.assertEqual(self.hub.sql("PRAGMA foreign_key_check"), [])

    # ---- the quota, before the bytes ----

    def used(self):
        return self.hub.sql(
            "SELECT COALESCE(SUM(v.size), 0) FROM file_versions v JOIN files f ON "
            "f.id = v.file_id WHERE f.workspace_id = ? AND f.deleted_at IS NULL",
            (self.ws,))[0][0]

    def set_limits(self, **body):
        st, _, payload, _ = self.hub.request("PATCH", "/api/v1/workspaces/%d" % self.ws,
                                             body, token=self.token)
        self.assertEqual(st, 200, payload)

    def test_a_put_over_the_quota_fails_before_a_chunk_is_sent(self):
        self.set_limits(quota_bytes=self.used() + 4 * MiB)
        self.addCleanup(self.set_limits, quota_bytes=0)
        src, _ = self.local_file(24 * MiB)
        before = self.objects()
        chunks = self.hub.metric("roost_chunks_received_total")
        bytes_in = self.hub.metric("roost_bytes_in_total")
        p = self.roost("put", src, "/quota/big.bin")
        self.assertNotEqual(p.returncode, 0, p.out)
        self.assertIn("the workspace is over its quota (507 quota_exceeded)", p.err)
        self.assertEqual(self.hub.metric("roost_chunks_received_total"), chunks)
        self.assertLess(self.hub.metric("roost_bytes_in_total") - bytes_in, 64 << 10,
                        "the file's bytes went up before the refusal")
        self.assertEqual(self.objects(), before)
        self.assertEqual(self.info("/quota/big.bin")[0], 404)
        # a file that fits still goes
        small, _ = self.local_file(MiB)
        p = self.roost("put", small, "/quota/small.bin")
        self.assertEqual(p.returncode, 0, p.err)

    def test_the_probe_checks_size_against_the_quota_and_the_max_file_size(self):
        self.set_limits(quota_bytes=self.used() + MiB, max_file_bytes=8 * MiB)
        self.addCleanup(self.set_limits, quota_bytes=0, max_file_bytes=0)
        st, body, _, _ = self.api("POST", "/chunks/missing", {"hashes": [], "size": 2 * MiB})
        self.assertEqual((st, body["error"]["code"]), (507, "quota_exceeded"))
        st, body, _, _ = self.api("POST", "/chunks/missing", {"hashes": [], "size": 9 * MiB})
        self.assertEqual((st, body["error"]["code"]), (413, "file_too_large"))
        st, body, _, _ = self.api("POST", "/chunks/missing", {"hashes": [], "size": -1})
        self.assertEqual((st, body["error"]["code"]), (400, "invalid_request"))
        st, body, _, _ = self.api("POST", "/chunks/missing", {"hashes": [], "size": MiB // 2})
        self.assertEqual((st, body), (200, {"missing": []}))
        st, body, _, _ = self.api("POST", "/chunks/missing", {"hashes": []})
        self.assertEqual(st, 200, body)


if __name__ == "__main__":
    import unittest
    unittest.main()
