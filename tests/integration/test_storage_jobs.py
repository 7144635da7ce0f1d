"""Background jobs across hosts (docs/jobs.md) in 'hosts' storage mode: a
single-holder chunk past replica_grace_s is pulled into the hub; the hub's
cache is evicted LRU-first and never below min_replicas host copies; GC makes
hosts drop the copies of collected chunks; 'hub' -> 'hosts' -> 'hub' loses
nothing; a host copy corrupted on disk is reported once, by whichever reader
finds it, stops counting and is fetched back.

Data is uploaded through the hub (host A's commits) and the workspace then
switched to 'hosts'; eviction removes the hub's copies, or the test removes
one to stand for a pointer commit the hub never held."""
import hashlib
import json
import os
import subprocess
import time

import harness
from harness import Host, HubTest, q, wait_for

DAY_MS = 86400 * 1000
FENCE_S = 5.5  # evict.c's EVICT_FENCE_MS, and a little


def sha(b):
    return hashlib.sha256(b).hexdigest()


class StorageJobsTest(HubTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hub.login_cli()
        cls.A = Host(cls.hub, cls.tmp, "A")
        cls.B = Host(cls.hub, cls.tmp, "B")
        cls.A.join()
        cls.B.join(folders=["/p"])  # B pins /p; other chunks only as assigned copies
        cls.A.start()
        cls.B.start()

    @classmethod
    def tearDownClass(cls):
        try:
            for host in (cls.A, cls.B):
                if host.proc:
                    host.stop()
        finally:
            super().tearDownClass()

    def admin(self, *args):
        p = subprocess.run([harness.ROOST, "admin", *args, "--json", "--data", self.hub.data,
                            *self.hub.db_args()], env=self.hub.env(), capture_output=True,
                           timeout=300)
        self.assertIn(p.returncode, (0, 1), p.stderr.decode())
        return json.loads(p.stdout)

    def settings(self, **kw):
        st, _, payload, _ = self.hub.request("PATCH", "/api/v1/workspaces/%d" % self.ws, kw,
                                             token=self.token)
        self.assertEqual(st, 200, payload)

    def write(self, host, path, data):
        os.makedirs(os.path.dirname(host.path(path)), exist_ok=True)
        with open(host.path(path), "wb") as f:
            f.write(data)
        wait_for(lambda: self.hash_of(path) == sha(data), 30, path + " on the hub", [host])
        return sha(data)  # one chunk (under the minimum chunk size): named by the file hash

    def hash_of(self, path):
        st, body, _, _ = self.api("GET", "/info?path=" + q(path))
        return body.get("hash") if st == 200 else None

    def holders(self, chunk):
        return dict(self.hub.sql("SELECT holder, state FROM chunk_replicas WHERE chunk_hash = ?",
                                 (chunk,)))

    def hub_object(self, chunk):
        return os.path.join(self.hub.data, "objects", chunk[:2], chunk)

    def forget_hub_copy(self, chunk):
        """As after a pointer commit: the hub's store never held it."""
        self.hub.sql("DELETE FROM chunk_replicas WHERE chunk_hash = ? AND holder = 'hub'",
                     (chunk,))
        os.unlink(self.hub_object(chunk))

    def in_cache(self, host, chunk):
        return os.path.exists(os.path.join(host.dir, ".roost", "cache", "objects", chunk[:2],
                                           chunk))

    def read_back(self, path, data):
        st, _, payload, _ = self.api("GET", "/content?path=" + q(path))
        self.assertEqual((st, sha(payload)), (200, sha(data)))

    def test_1_single_holder_past_grace_is_pulled_into_the_hub(self):
        self.settings(storage="hosts", replica_grace_s=1, min_replicas=2,
                      hub_cache_bytes=1 << 30)
        data = os.urandom(200000)
        chunk = self.write(self.A, "/g/one.bin", data)  # B does not pin /g
        self.forget_hub_copy(chunk)
        self.hub.sql("UPDATE workspace_chunks SET proven = 0 WHERE chunk_hash = ?", (chunk,))
        self.hub.sql("UPDATE file_versions SET created_at = created_at - 5000 WHERE hash = ?",
                     (chunk,))
        res = self.admin("replicate")
        self.assertGreaterEqual(res["chunks_copied"], 1, res)
        self.assertEqual(self.holders(chunk).get("hub"), "ok")
        self.assertTrue(os.path.exists(self.hub_object(chunk)))
        self.assertEqual(self.hub.sql("SELECT proven FROM workspace_chunks WHERE chunk_hash = ?",
                                      (chunk,)), [(1,)])
        # ... and B was asked for a second host copy, fetched from A or the hub.
        wait_for(lambda: self.holders(chunk).get("host:%d" % self.b_id()) == "ok", 30,
                 "B's assigned copy", [self.B])

    def b_id(self):
        return self.hub.sql("SELECT id FROM hosts WHERE label = 'B'")[0][0]

    def test_2_eviction_is_lru_and_never_below_min_replicas(self):
        self.settings(storage="hosts", replica_grace_s=3600, min_replicas=2,
                      hub_cache_bytes=1 << 30)
        x, y = os.urandom(150000), os.urandom(160000)
        cx = self.write(self.A, "/p/x.bin", x)
        cy = self.write(self.A, "/p/y.bin", y)
        bid = "host:%d" % self.b_id()
        for c in (cx, cy):
            wait_for(lambda: self.holders(c).get(bid) == "ok", 30, "B holds it", [self.B])
        self.B.stop()
        z = os.urandom(170000)
        cz = self.write(self.A, "/p/z.bin", z)  # only A holds z
        now = int(time.time() * 1000)
        self.hub.sql("UPDATE chunk_replicas SET updated_at = ? WHERE holder = 'hub'",
                     (now - 10000,))
        for c, age in ((cx, 100000), (cy, 50000), (cz, 200000)):
            self.hub.sql("UPDATE chunk_replicas SET updated_at = ? WHERE chunk_hash = ? AND "
                         "holder = 'hub'", (now - age, c))
        self.hub.sql("UPDATE workspace_chunks SET touched_at = ?", (now - 60000,))
        cached = self.hub.sql("SELECT SUM(c.size) FROM chunk_replicas cr JOIN chunks c ON "
                              "c.hash = cr.chunk_hash WHERE cr.holder = 'hub' AND "
                              "cr.state = 'ok'")[0][0]
        self.settings(hub_cache_bytes=int(cached) - len(x))
        res = self.admin("replicate")
        # x (older than y) went; z (oldest, one host copy) stays whatever the cap.
        self.assertEqual(res.get("chunks_evicted"), 1, res)
        self.assertNotIn("hub", self.holders(cx))
        self.assertFalse(os.path.exists(self.hub_object(cx)))
        self.assertEqual(self.holders(cy).get("hub"), "ok")
        self.assertEqual(self.holders(cz).get("hub"), "ok")
        self.settings(hub_cache_bytes=0)
        res = self.admin("replicate")
        self.assertGreaterEqual(res.get("chunks_evicted"), 1, res)  # y; z still cannot go
        self.assertNotIn("hub", self.holders(cy))
        self.assertEqual(self.holders(cz).get("hub"), "ok")
        self.assertTrue(os.path.exists(self.hub_object(cz)))
        self.B.start()
        wait_for(lambda: self.holders(cz).get(bid) == "ok", 30, "B holds z", [self.B])
        time.sleep(FENCE_S)
        res = self.admin("replicate")
        self.assertEqual(self.holders(cz).get("hub"), None, res)
        # The bytes live on both hosts (the hub serving them from hosts is
        # hubserve's part, tested in its own file).
        for path, data in (("/p/x.bin", x), ("/p/y.bin", y), ("/p/z.bin", z)):
            for host in (self.A, self.B):
                with open(host.path(path), "rb") as f:
                    self.assertEqual(sha(f.read()), sha(data))

    def test_3_gc_makes_hosts_drop_collected_chunks(self):
        self.settings(storage="hosts", replica_grace_s=3600, min_replicas=2,
                      hub_cache_bytes=1 << 30)
        data = os.urandom(180000)
        chunk = self.write(self.A, "/c/gone.bin", data)  # B does not pin /c
        self.forget_hub_copy(chunk)  # B must fetch its copy from A
        self.admin("replicate")
        bid = "host:%d" % self.b_id()
        wait_for(lambda: self.holders(chunk).get(bid) == "ok", 30, "B's copy", [self.B])
        self.assertTrue(self.in_cache(self.B, chunk))
        st, _, payload, _ = self.api("DELETE", "/files?path=" + q("/c/gone.bin"))
        self.assertEqual(st, 200, payload)
        self.hub.sql("UPDATE files SET deleted_at = ? WHERE name = 'gone.bin'",
                     (int(time.time() * 1000) - 40 * DAY_MS,))
        res = self.admin("gc", "--retention", "0")
        self.assertGreaterEqual(res.get("host_copies_dropping", 0), 1, res)
        wait_for(lambda: not self.in_cache(self.B, chunk), 30, "B's copy dropped", [self.B])

        def collected():
            self.admin("gc", "--retention", "0")
            return not self.hub.sql("SELECT 1 FROM chunks WHERE hash = ?", (chunk,))
        wait_for(collected, 30, "the chunk collected", interval=0.5)
        self.assertEqual(self.holders(chunk), {})

    def test_4_hub_hosts_hub_loses_nothing(self):
        self.settings(storage="hub", replica_grace_s=3600, min_replicas=2,
                      hub_cache_bytes=1 << 30)
        files = {"/p/m%d.bin" % i: os.urandom(120000 + i) for i in range(3)}
        for path, data in files.items():
            self.write(self.A, path, data)
        bid = "host:%d" % self.b_id()
        for data in files.values():
            wait_for(lambda: self.holders(sha(data)).get(bid) == "ok", 30, "B's copy",
                     [self.B])
        self.settings(storage="hosts", hub_cache_bytes=0)
        time.sleep(FENCE_S)
        self.admin("replicate")
        for data in files.values():
            self.assertNotIn("hub", self.holders(sha(data)))
        self.settings(storage="hub")
        res = self.admin("replicate")
        self.assertGreaterEqual(res["chunks_copied"], 3, res)
        missing = self.hub.sql(
            "SELECT DISTINCT vc.chunk_hash FROM version_chunks vc WHERE NOT EXISTS (SELECT 1 "
            "FROM chunk_replicas cr WHERE cr.chunk_hash = vc.chunk_hash AND cr.holder = 'hub' "
            "AND cr.state = 'ok')")
        self.assertEqual(missing, [])
        for path, data in files.items():
            self.assertTrue(os.path.exists(self.hub_object(sha(data))))
            self.read_back(path, data)

    def scrub_reports(self, host):
        hid = self.hub.sql("SELECT id FROM hosts WHERE label = ?", (host.label,))[0][0]
        return self.hub.sql("SELECT COUNT(*) FROM audit_log WHERE action = 'host.scrub' AND "
                            "target = ?", ("host:%d" % hid,))[0][0]

    def corrupt_reports(self, chunk):
        return [json.loads(d) for (d,) in self.hub.sql(
            "SELECT detail FROM audit_log WHERE action = 'chunk.corrupt' AND target = ?",
            ("chunk:" + chunk,))]

    def test_5_a_corrupt_host_copy_is_reported_once_and_fetched_back(self):
        """Whoever on B reads its damaged copy first (its scrub, its replica
        thread, a peer's fetch from its content server) sets it aside and the
        hub hears it once; B's copy was assigned, so B fetches a good one back.
        Each host scrubs once for the hub's request, though it comes twice (the
        feed and the heartbeat)."""
        self.settings(storage="hosts", replica_grace_s=3600, min_replicas=2,
                      hub_cache_bytes=1 << 30)
        data = os.urandom(190000)
        chunk = self.write(self.A, "/s/bad.bin", data)
        self.admin("replicate")
        bid = "host:%d" % self.b_id()
        aid = "host:%d" % self.hub.sql("SELECT id FROM hosts WHERE label = 'A'")[0][0]
        wait_for(lambda: self.holders(chunk).get(bid) == "ok", 30, "B's copy", [self.B])
        obj = os.path.join(self.B.dir, ".roost", "cache", "objects", chunk[:2], chunk)
        with open(obj, "r+b") as f:
            f.write(b"\0" * 64)
        before = {h.label: self.scrub_reports(h) for h in (self.A, self.B)}
        first = self.admin("scrub")
        self.assertGreaterEqual(first["hosts_asked"], 2, first)
        wait_for(lambda: self.corrupt_reports(chunk), 60, "B's corrupt copy reported", [self.B])
        self.assertEqual(self.corrupt_reports(chunk),
                         [{"holder": bid, "found": "corrupt", "repaired": False}])
        quarantine = os.path.join(self.B.dir, ".roost", "cache", "objects", "quarantine")
        self.assertEqual([n.split(".")[0] for n in os.listdir(quarantine)], [chunk])

        def fetched_back():
            if self.holders(chunk).get(bid) != "ok" or not os.path.exists(obj):
                return False
            with open(obj, "rb") as f:
                return sha(f.read()) == chunk
        wait_for(fetched_back, 60, "B's copy fetched back", [self.A, self.B])
        self.assertEqual(self.holders(chunk).get(aid), "ok")
        wait_for(lambda: all(self.scrub_reports(h) > before[h.label] for h in (self.A, self.B)),
                 60, "hosts' scrub reports", [self.A, self.B])
        # Both hosts' heartbeats have carried the request since (twice: a
        # second scrub it started would have reported by the next beat).
        asked = self.hub.sql("SELECT finished_at FROM jobs WHERE name = 'scrub'")[0][0]
        for _ in range(2):
            seen = self.hub.sql("SELECT MIN(last_seen) FROM hosts WHERE revoked_at IS NULL")[0][0]
            wait_for(lambda: self.hub.sql("SELECT MIN(last_seen) FROM hosts WHERE revoked_at "
                                          "IS NULL")[0][0] > max(seen, asked), 30,
                     "a heartbeat from each host", [self.A, self.B])
        for h in (self.A, self.B):
            self.assertEqual(self.scrub_reports(h), before[h.label] + 1, h.label)
        second = self.admin("scrub")
        self.assertGreaterEqual(second["host_copies_verified"], 1, second)
        self.assertEqual(len(self.corrupt_reports(chunk)), 1)


if __name__ == "__main__":
    harness.main()
