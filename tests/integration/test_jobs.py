"""Background jobs (docs/jobs.md): GC frees exactly what nothing references once
its window has passed and never races an upload; version retention, the trash
and restores; scrub finds bytes flipped on disk, quarantines and repairs them;
a job killed mid-way resumes where it stopped; one runner at a time."""
import hashlib
import json
import os
import signal
import subprocess
import time

import harness
from harness import HubTest, q, wait_for

DAY_MS = 86400 * 1000


def sha(b):
    return hashlib.sha256(b).hexdigest()


class JobsTest(HubTest):
    def admin(self, *args, check=None):
        """roost admin ARGS against this hub's data; (exit code, stdout, stderr)."""
        p = subprocess.run([harness.ROOST, "admin", *args, "--data", self.hub.data,
                            *self.hub.db_args()], env=self.hub.env(), capture_output=True,
                           timeout=300)
        if check is not None:
            self.assertEqual(p.returncode, check, p.stderr.decode())
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def gc(self, *args):
        code, out, err = self.admin("gc", *args, "--json", check=0)
        return json.loads(out)

    def put(self, path, data):
        st, body, payload, _ = self.api("PUT", "/upload?path=" + q(path), raw=data)
        self.assertEqual(st, 201, payload)
        return body

    def get(self, path):
        st, _, payload, _ = self.api("GET", "/content?path=" + q(path))
        return st, payload

    def chunks_of(self, path):
        parent, name = path.rsplit("/", 1)
        rows = self.hub.sql(
            "SELECT vc.chunk_hash FROM version_chunks vc JOIN files f ON f.current_version_id "
            "= vc.version_id JOIN folders d ON d.id = f.folder_id WHERE d.path = ? AND "
            "f.name = ? AND f.deleted_at IS NULL ORDER BY vc.idx", (parent or "/", name))
        return [r[0] for r in rows]

    def object(self, h):
        return self.hub.object_path(h)

    def settings(self, **kw):
        st, body, payload, _ = self.hub.request("PATCH", "/api/v1/workspaces/%d" % self.ws, kw,
                                                token=self.token)
        self.assertEqual(st, 200, payload)

    def delete(self, path, days_ago=0):
        st, _, payload, _ = self.api("DELETE", "/files?path=" + q(path))
        self.assertEqual(st, 200, payload)
        if days_ago:
            self.hub.sql("UPDATE files SET deleted_at = ? WHERE deleted_at IS NOT NULL AND "
                         "name = ?", (int(time.time() * 1000) - days_ago * DAY_MS,
                                      path.rsplit("/", 1)[1]))

    def test_gc_frees_exactly_the_unreferenced_chunks_after_the_window(self):
        only_a, only_b, shared = os.urandom(300000), os.urandom(300000), os.urandom(300000)
        self.put("/gc/a.bin", only_a)
        self.put("/gc/b.bin", only_b)
        self.put("/gc/s1.bin", shared)
        self.put("/gc/s2.bin", shared)  # the same chunk twice
        a_chunks = self.chunks_of("/gc/a.bin")
        s_chunks = self.chunks_of("/gc/s1.bin")
        self.assertEqual(s_chunks, self.chunks_of("/gc/s2.bin"))
        self.settings(trash_days=1)
        self.delete("/gc/a.bin", days_ago=2)
        self.delete("/gc/s1.bin", days_ago=2)
        # In the trash for two days with a one-day trash: purged. The chunks are
        # unreferenced from now on, and kept for the retention window (7 days).
        res = self.gc()
        self.assertEqual(res["files_purged"], 2)
        self.assertEqual(res["chunks_deleted"], 0)
        for h in a_chunks + s_chunks:
            self.assertTrue(os.path.exists(self.object(h)))
        st, trash, _, _ = self.api("GET", "/trash")
        self.assertNotIn("/gc/a.bin", [e["path"] for e in trash["entries"]])
        # Past the window (--retention 0): a's chunks go, the shared one stays.
        res = self.gc("--retention", "0")
        self.assertEqual(res["chunks_deleted"], len(a_chunks))
        self.assertGreaterEqual(res["bytes_freed"], len(only_a))
        for h in a_chunks:
            self.assertFalse(os.path.exists(self.object(h)), h)
            self.assertEqual(self.hub.sql("SELECT COUNT(*) FROM chunks WHERE hash = ?", (h,)),
                             [(0,)])
        for h in s_chunks:
            self.assertTrue(os.path.exists(self.object(h)))
        self.assertEqual(self.get("/gc/s2.bin"), (200, shared))
        self.assertEqual(self.get("/gc/b.bin"), (200, only_b))
        # A run with nothing to do does nothing.
        self.assertEqual(self.gc("--retention", "0")["chunks_deleted"], 0)

    def test_the_upload_gc_race_loses_nothing(self):
        data = os.urandom(200000)
        h = sha(data)
        # Chunks sent, not yet committed; GC runs in between.
        st, _, payload, _ = self.api("PUT", "/chunks/" + h, raw=data)
        self.assertIn(st, (200, 201), payload)
        self.gc("--retention", "0")
        self.assertTrue(os.path.exists(self.object(h)), "GC took a chunk an upload holds")
        st, body, payload, _ = self.api("POST", "/versions", {
            "path": "/race/ok.bin", "size": len(data), "hash": h,
            "chunks": [{"hash": h, "size": len(data)}]})
        self.assertEqual(st, 201, payload)
        self.assertEqual(self.get("/race/ok.bin"), (200, data))
        # An upload abandoned past the lease is collected; a late commit of it
        # is told the chunk is missing, and nothing half-made appears.
        late = os.urandom(150000)
        lh = sha(late)
        self.api("PUT", "/chunks/" + lh, raw=late)
        self.hub.sql("UPDATE workspace_chunks SET touched_at = ? WHERE chunk_hash = ?",
                     (int(time.time() * 1000) - 2 * 3600 * 1000, lh))
        self.assertGreaterEqual(self.gc("--retention", "0")["chunks_deleted"], 1)
        self.assertFalse(os.path.exists(self.object(lh)))
        self.assertError(self.api("POST", "/versions", {
            "path": "/race/late.bin", "size": len(late), "hash": lh,
            "chunks": [{"hash": lh, "size": len(late)}]}), 409, "missing_chunks")
        self.assertEqual(self.get("/race/late.bin")[0], 404)
        # Sent again, it commits.
        self.api("PUT", "/chunks/" + lh, raw=late)
        st, _, payload, _ = self.api("POST", "/versions", {
            "path": "/race/late.bin", "size": len(late), "hash": lh,
            "chunks": [{"hash": lh, "size": len(late)}]})
        self.assertEqual(st, 201, payload)

    def test_version_retention_and_restore(self):
        versions = [("version %d " % i).encode() * 1000 for i in range(1, 5)]
        for v in versions:
            self.put("/keep/doc.txt", v)
        self.settings(keep_versions=2)
        res = self.gc()
        self.assertEqual(res["versions_expired"], 2)
        st, body, _, _ = self.api("GET", "/versions?path=" + q("/keep/doc.txt"))
        self.assertEqual([v["version"] for v in body["versions"]], [4, 3])
        # An old version that is kept comes back as the newest.
        st, body, payload, _ = self.api("POST", "/versions/restore",
                                        {"path": "/keep/doc.txt", "version": 3})
        self.assertEqual(st, 201, payload)
        self.assertEqual(body["version"], 5)
        self.assertEqual(self.get("/keep/doc.txt"), (200, versions[2]))
        self.assertError(self.api("POST", "/versions/restore",
                                  {"path": "/keep/doc.txt", "version": 1}), 404,
                         "no_such_version")
        self.assertError(self.api("POST", "/versions/restore", {"path": "/keep/doc.txt"}),
                         400, "invalid_request")
        for bad in ({"keep_versions": -1}, {"trash_days": 0}, {"min_replicas": 99},
                    {"gc_retention_s": "7d"}):
            self.assertError(self.hub.request("PATCH", "/api/v1/workspaces/%d" % self.ws, bad,
                                              token=self.token), 400, "invalid_request")
        self.settings(keep_versions=0)

    def test_the_trash_restores_until_it_is_purged(self):
        data = os.urandom(50000)
        self.put("/bin/deep/x.bin", data)
        st, _, _, _ = self.api("DELETE", "/files?path=" + q("/bin"))  # the whole folder
        self.assertEqual(self.get("/bin/deep/x.bin")[0], 404)
        st, trash, _, _ = self.api("GET", "/trash")
        entry = [e for e in trash["entries"] if e["path"] == "/bin/deep/x.bin"][0]
        self.assertGreater(entry["expires_at"], entry["deleted_at"])
        st, body, payload, _ = self.api("POST", "/trash/restore", {"id": entry["id"]})
        self.assertEqual(st, 200, payload)
        self.assertEqual(self.get("/bin/deep/x.bin"), (200, data))  # folders made again
        self.assertError(self.api("POST", "/trash/restore", {"id": entry["id"]}), 404,
                         "not_found")
        # Restoring onto a name that is taken now is refused, and changes nothing.
        self.delete("/bin/deep/x.bin")
        self.put("/bin/deep/x.bin", b"newer")
        st, trash, _, _ = self.api("GET", "/trash")
        old = [e for e in trash["entries"] if e["path"] == "/bin/deep/x.bin"][0]
        self.assertError(self.api("POST", "/trash/restore", {"id": old["id"]}), 409, "exists")
        self.assertEqual(self.get("/bin/deep/x.bin"), (200, b"newer"))
        self.assertError(self.api("POST", "/trash/restore", {"id": "x"}), 400,
                         "invalid_request")
        st, audit, _, _ = self.api("GET", "/audit?action=file.restore")
        self.assertTrue(audit["entries"])

    def test_scrub_finds_flipped_bytes(self):
        data = os.urandom(400000)
        self.put("/scrub/x.bin", data)
        h = self.chunks_of("/scrub/x.bin")[0]
        code, out, err = self.admin("scrub", check=0)
        self.assertIn("0 corrupt", out)
        with open(self.object(h), "r+b") as f:
            f.seek(1000)
            b = f.read(1)
            f.seek(1000)
            f.write(bytes([b[0] ^ 0xff]))
        code, out, err = self.admin("scrub")
        self.assertEqual(code, 1, out + err)  # found damage: says so and fails
        self.assertIn("1 corrupt", out)
        self.assertIn("damaged", err)
        self.assertFalse(os.path.exists(self.object(h)))  # quarantined
        self.assertTrue(self.hub.quarantined())
        st, _ = self.get("/scrub/x.bin")
        self.assertEqual(st, 503)  # no healthy copy anywhere: never wrong bytes
        st, audit, _, _ = self.api("GET", "/audit?action=chunk.corrupt")
        self.assertEqual(audit["entries"][0]["target"], "chunk:" + h)
        st, body, _, _ = self.api("GET", "/replicas")
        self.assertGreaterEqual(body["under_replicated"], 1)
        # Uploading the same bytes again heals it.
        self.put("/scrub/again.bin", data)
        self.assertEqual(self.get("/scrub/x.bin"), (200, data))

    def test_zz_a_killed_job_resumes_and_one_runner_at_a_time(self):
        for i in range(8):
            self.put("/slow/%d.bin" % i, os.urandom(1 << 20))
        args = [harness.ROOST, "admin", "scrub", "--data", self.hub.data, *self.hub.db_args(),
                "--job-rate", "2M"]
        p = subprocess.Popen(args, env=self.hub.env(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)

        def running():
            code, out, _ = self.admin("jobs", "--json")
            scrub = [j for j in json.loads(out)["jobs"] if j["name"] == "scrub"][0]
            return scrub["state"] == "running" and \
                scrub.get("progress", {}).get("chunks_checked", 0) > 0 and scrub
        wait_for(running, 30, "scrub under way")
        p.send_signal(signal.SIGKILL)
        p.wait()
        # Its lease has not lapsed yet: a second runner stays out.
        code, out, err = self.admin("scrub")
        self.assertEqual(code, 3, err)
        self.assertIn("another runner", err)
        time.sleep(11)
        code, out, err = self.admin("scrub", "--json")
        self.assertEqual(code, 0, err)
        res = json.loads(out)
        self.assertTrue(res["resumed"])
        total = self.hub.sql("SELECT COUNT(*) FROM chunk_replicas WHERE holder = 'hub'")[0][0]
        self.assertEqual(res["chunks_checked"], total)
        code, out, _ = self.admin("jobs", "--json")
        scrub = [j for j in json.loads(out)["jobs"] if j["name"] == "scrub"][0]
        self.assertEqual(scrub["state"], "idle")
        self.assertTrue(scrub["result"]["resumed"])
        st, body, _, _ = self.api("GET", "/jobs")
        self.assertEqual(st, 200)
        st, _, metrics, _ = self.hub.request("GET", "/metrics")
        self.assertRegex(metrics.decode(), r'roost_job_runs_total\{job="scrub"\} [1-9]')
        self.assertIn('roost_job_last_result{job="scrub",field="chunks_checked"} %d' % total,
                      metrics.decode())
        self.assertIn('roost_chunk_copies_corrupt{holder="hub"}', metrics.decode())
        self.assertEqual(sorted(j["name"] for j in body["jobs"]), ["gc", "replicate", "scrub"])


class HostJobsTest(HubTest):
    """With a host: lost files come back instead of being deleted everywhere, and
    scrub repairs the hub from the host and the host from the hub."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hub.login_cli()
        cls.A = harness.Host(cls.hub, cls.tmp, "A")
        cls.A.join()
        cls.A.start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.A.stop()
        finally:
            super().tearDownClass()

    admin = JobsTest.admin
    chunks_of = JobsTest.chunks_of
    object = JobsTest.object

    def info(self, path):
        st, body, _, _ = self.api("GET", "/info?path=" + q(path))
        return body if st == 200 else None

    def write(self, rel, data):
        os.makedirs(os.path.dirname(self.A.path(rel)), exist_ok=True)
        with open(self.A.path(rel), "wb") as f:
            f.write(data)
        wait_for(lambda: (self.info(rel) or {}).get("hash") == sha(data), 30,
                 rel + " on the hub", [self.A])

    def read(self, rel):
        try:
            with open(self.A.path(rel), "rb") as f:
                return f.read()
        except OSError:
            return None

    def test_files_lost_while_stopped_come_back(self):
        a, b = os.urandom(5000), os.urandom(7000)
        self.write("/lost/a.txt", a)
        self.write("/lost/sub/b.txt", b)
        versions = (self.info("/lost/a.txt")["version"], self.info("/lost/sub/b.txt")["version"])
        self.A.stop()
        os.unlink(self.A.path("/lost/a.txt"))
        import shutil
        shutil.rmtree(self.A.path("/lost/sub"))
        self.A.start()
        wait_for(lambda: self.read("/lost/a.txt") == a and self.read("/lost/sub/b.txt") == b,
                 30, "the lost files fetched again", [self.A])
        self.assertEqual((self.info("/lost/a.txt")["version"],
                          self.info("/lost/sub/b.txt")["version"]), versions)
        st, trash, _, _ = self.api("GET", "/trash")
        self.assertEqual([e for e in trash["entries"] if e["path"].startswith("/lost/")], [])
        # Its index lost too (a disk restored from a backup): nothing changes anywhere.
        self.A.stop()
        for name in os.listdir(os.path.join(self.A.dir, ".roost")):
            if name.startswith("index.db"):
                os.unlink(os.path.join(self.A.dir, ".roost", name))
        self.A.start()
        time.sleep(3)
        self.assertEqual(self.read("/lost/a.txt"), a)
        self.assertEqual((self.info("/lost/a.txt")["version"],
                          self.info("/lost/sub/b.txt")["version"]), versions)
        # A delete while the host runs is a delete.
        os.unlink(self.A.path("/lost/a.txt"))
        wait_for(lambda: self.info("/lost/a.txt") is None, 30, "the delete synced", [self.A])

    def test_scrub_repairs_the_hub_from_the_host_and_the_host_from_the_hub(self):
        data = os.urandom(600000)
        self.write("/sc/x.bin", data)
        wait_for(lambda: self.hub.sql(
            "SELECT COUNT(*) FROM chunk_replicas WHERE holder LIKE 'host:%' AND state = 'ok'")[0][0]
            > 0, 30, "A's copy known to the hub", [self.A])
        h = self.chunks_of("/sc/x.bin")[0]
        # 1: the hub's copy goes bad; scrub fetches it back from A.
        with open(self.object(h), "r+b") as f:
            f.seek(10)
            f.write(b"\x00\x01\x02")
        code, out, err = self.admin("scrub")
        self.assertEqual(code, 1, out + err)
        self.assertIn("1 corrupt", out)
        self.assertIn("1 repaired", out)
        st, _, payload, _ = self.api("GET", "/content?path=" + q("/sc/x.bin"))
        self.assertEqual((st, sha(payload)), (200, sha(data)))
        # 2: A's copy goes bad (same size and times); the scrub the hub asks for
        # finds it, keeps a copy aside and fetches the file back from the hub.
        path = self.A.path("/sc/x.bin")
        before = os.stat(path)
        with open(path, "r+b") as f:
            f.seek(1000)
            f.write(b"\xde\xad\xbe\xef")
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        code, out, err = self.admin("scrub")
        self.assertEqual(code, 0, out + err)
        wait_for(lambda: self.read("/sc/x.bin") == data, 60, "A's copy repaired", [self.A])
        self.assertTrue(os.listdir(os.path.join(self.A.dir, ".roost", "quarantine")))
        def reported():
            st, audit, _, _ = self.api("GET", "/audit?action=file.corrupt")
            return [e for e in audit["entries"] if e["target"] == "/sc/x.bin"]
        wait_for(reported, 30, "the host's report", [self.A])
        self.assertEqual(self.info("/sc/x.bin")["hash"], sha(data))  # no new version


class ReplicationTest(HubTest):
    """A host gone past its grace period: the chunks it held get another copy on
    a host that has room; when it returns, that extra copy is released."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hub.login_cli()
        cls.A = harness.Host(cls.hub, cls.tmp, "A")
        cls.A.join()
        cls.A.start()
        cls.B = harness.Host(cls.hub, cls.tmp, "B")
        cls.B.join(folders=["/elsewhere"])  # keeps nothing of /r by itself
        cls.B.start()

    @classmethod
    def tearDownClass(cls):
        try:
            for host in (cls.A, cls.B):
                if host.proc:
                    host.stop()
        finally:
            super().tearDownClass()

    admin = JobsTest.admin
    info = HostJobsTest.info

    def replicas(self):
        return self.api("GET", "/replicas")[1]

    def b_copies(self):
        return self.hub.sql("SELECT state FROM chunk_replicas WHERE holder LIKE 'host:%' AND "
                            "assigned = 1")

    def test_copies_follow_hosts_going_and_coming_back(self):
        data = os.urandom(300000)
        os.makedirs(self.A.path("/r"), exist_ok=True)
        with open(self.A.path("/r/x.bin"), "wb") as f:
            f.write(data)
        wait_for(lambda: (self.info("/r/x.bin") or {}).get("hash") == sha(data), 30,
                 "x.bin on the hub", [self.A])
        wait_for(lambda: self.replicas()["chunks"] >= 1 and
                 self.replicas()["under_replicated"] == 0, 30, "two copies", [self.A])
        st, _, payload, _ = self.hub.request("PATCH", "/api/v1/workspaces/%d" % self.ws,
                                             {"replica_grace_s": 1}, token=self.token)
        self.assertEqual(st, 200, payload)
        self.A.stop()
        wait_for(lambda: self.replicas()["under_replicated"] >= 1, 30, "A's copies gone")
        time.sleep(1.5)  # past the grace period
        code, out, err = self.admin("replicate", check=0)
        self.assertRegex(out, r"[1-9]\d* copies asked of hosts")
        wait_for(lambda: self.replicas()["under_replicated"] == 0, 30, "B holding a copy",
                 [self.B])
        self.assertEqual(self.b_copies(), [("ok",)])
        st, _, payload, _ = self.api("GET", "/content?path=" + q("/r/x.bin"))
        self.assertEqual((st, sha(payload)), (200, sha(data)))
        st, audit, _, _ = self.api("GET", "/audit?action=replicas.rebalance")
        self.assertTrue(audit["entries"])
        # A is back: B's extra copy is released, and B lets go of it.
        self.A.start()
        wait_for(lambda: any(h["status"] == "online" for h in self.api("GET", "/hosts")[1]["hosts"]
                             if h["label"] == "A"), 30, "A online", [self.A])
        code, out, err = self.admin("replicate", check=0)
        self.assertRegex(out, r"[1-9]\d* released")
        wait_for(lambda: self.b_copies() == [], 60, "B's copy dropped", [self.B])
        self.assertEqual(self.replicas()["under_replicated"], 0)
        # Deleted, purged and collected at the hub: gone from B's cache too.
        chunk = sha(data)  # one chunk: named by the file's hash

        def in_b_cache():
            return any(chunk in files for _, _, files in os.walk(os.path.join(self.B.dir,
                                                                              ".roost")))
        self.assertTrue(in_b_cache())
        st, _, payload, _ = self.api("DELETE", "/files?path=" + q("/r/x.bin"))
        self.assertEqual(st, 200, payload)
        self.hub.sql("UPDATE files SET deleted_at = ? WHERE name = 'x.bin'",
                     (int(time.time() * 1000) - 40 * DAY_MS,))
        # A deletes its file and reports its copy dropped (else GC waits for it).
        wait_for(lambda: not self.hub.sql("SELECT 1 FROM chunk_replicas WHERE chunk_hash = ? "
                                          "AND holder <> 'hub'", (chunk,)), 30,
                 "hosts' copies dropped", [self.A, self.B])
        code, out, err = self.admin("gc", "--retention", "0", "--json", check=0)
        self.assertGreaterEqual(json.loads(out)["chunks_deleted"], 1)
        wait_for(lambda: not in_b_cache(), 30, "B's cached copy dropped", [self.B])


if __name__ == "__main__":
    harness.main()
