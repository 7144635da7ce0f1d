"""Background jobs across hosts (docs/jobs.md) with the 'hosts' storage mode as
it is: a host's commit in a 'hosts' workspace names its chunks (a pointer
commit) and the hub's store never sees them.

- A single-holder file past replica_grace_s is pulled into the hub (proven).
- The hub's cache (filled by `roost put` while no host is online) is evicted
  least recently used first, and never below min_replicas verified host copies.
- GC makes hosts drop the copies of collected chunks.
- 'hub' -> 'hosts' -> 'hub' loses nothing, not even what was written in between.
- A host copy corrupted on disk is reported once, by whichever reader finds
  it, stops counting and is fetched back.

Host A pins everything, host B only /p: elsewhere B holds only the copies the
replicate job assigns it. Every test leaves both hosts running (setUp starts
any that is not)."""
import hashlib
import json
import os
import subprocess
import time

import harness
from harness import Host, HubTest, q, wait_for

DAY_MS = 86400 * 1000


def sha(b):
    return hashlib.sha256(b).hexdigest()


def file_sha(path):
    with open(path, "rb") as f:
        return sha(f.read())


def now_ms():
    return int(time.time() * 1000)


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

    def setUp(self):
        """Both hosts running and online, whatever an earlier test left."""
        for h in (self.A, self.B):
            if not h.running():
                h.start()
        for h in (self.A, self.B):
            self.wait_online(h)

    # ---- helpers ----
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

    def storage(self):
        st, body, _, _ = self.hub.request("GET", "/api/v1/workspaces/%d" % self.ws,
                                          token=self.token)
        self.assertEqual(st, 200, body)
        return body["storage"]

    @staticmethod
    def mode_lines(host, mode):
        with open(host.log_path, "rb") as f:
            return f.read().decode(errors="replace").count(
                "keeps its bytes on " + ("hosts" if mode == "hosts" else "the hub"))

    def set_storage(self, mode):
        """Switch the workspace's storage and wait until every running host
        has learnt it from the feed (a host commits by the mode it knows)."""
        if self.storage() == mode:
            return
        hosts = [h for h in (self.A, self.B) if h.running()]
        seen = {h.label: self.mode_lines(h, mode) for h in hosts}
        self.settings(storage=mode)
        for h in hosts:
            wait_for(lambda: self.mode_lines(h, mode) > seen[h.label], 30,
                     "host %s to learn storage %r" % (h.label, mode), [h])

    def host_id(self, host):
        return self.hub.sql("SELECT id FROM hosts WHERE label = ?", (host.label,))[0][0]

    def holder(self, host):
        return "host:%d" % self.host_id(host)

    def host_status(self, host):
        st, body, _, _ = self.api("GET", "/hosts")
        return next(h["status"] for h in body["hosts"] if h["label"] == host.label)

    def wait_online(self, host, online=True):
        wait_for(lambda: (self.host_status(host) == "online") == online, 30,
                 "host %s %s" % (host.label, "online" if online else "offline"), [host])

    def write(self, host, path, data):
        """Write path on host and wait for its commit; the version's chunks."""
        os.makedirs(os.path.dirname(host.path(path)), exist_ok=True)
        with open(host.path(path), "wb") as f:
            f.write(data)
        wait_for(lambda: self.hash_of(path) == sha(data), 30, path + " on the hub", [host])
        return self.chunks_of(path)

    def put(self, path, data):
        """`roost put` through the CLI; the version's chunks."""
        local = os.path.join(self.tmp, "put-" + os.path.basename(path))
        with open(local, "wb") as f:
            f.write(data)
        self.hub.cli("put", local, path)
        self.assertEqual(self.hash_of(path), sha(data))
        return self.chunks_of(path)

    def hash_of(self, path):
        st, body, _, _ = self.api("GET", "/info?path=" + q(path))
        return body.get("hash") if st == 200 else None

    def chunks_of(self, path):
        """The chunk hashes of path's current version, in order."""
        return [r[0] for r in self.hub.sql(
            "SELECT vc.chunk_hash FROM version_chunks vc JOIN files f ON "
            "f.current_version_id = vc.version_id WHERE f.workspace_id = ? AND f.name = ? "
            "AND f.deleted_at IS NULL ORDER BY vc.idx", (self.ws, path.rsplit("/", 1)[1]))]

    def holders(self, chunk):
        return dict(self.hub.sql("SELECT holder, state FROM chunk_replicas WHERE chunk_hash = ?",
                                 (chunk,)))

    def host_copies(self, chunk):
        """Verified host copies of chunk: rows 'ok' of non-revoked hosts."""
        return self.hub.sql(
            "SELECT COUNT(*) FROM chunk_replicas cr JOIN hosts h ON h.id = cr.host_id WHERE "
            "cr.chunk_hash = ? AND cr.state = 'ok' AND h.revoked_at IS NULL", (chunk,))[0][0]

    def hub_updated(self, chunk):
        rows = self.hub.sql("SELECT updated_at FROM chunk_replicas WHERE chunk_hash = ? AND "
                            "holder = 'hub' AND state = 'ok'", (chunk,))
        return rows[0][0] if rows else None

    def proven(self, chunk):
        return self.hub.sql("SELECT proven FROM workspace_chunks WHERE workspace_id = ? AND "
                            "chunk_hash = ?", (self.ws, chunk))[0][0]

    def hub_object(self, chunk):
        return self.hub.object_path(chunk)

    def assert_hub_holds(self, chunk):
        self.assertEqual(self.holders(chunk).get("hub"), "ok", chunk)
        self.assertEqual(file_sha(self.hub_object(chunk)), chunk)

    def assert_hub_lacks(self, chunk):
        self.assertNotIn("hub", self.holders(chunk), chunk)
        self.assertFalse(os.path.exists(self.hub_object(chunk)), chunk)

    def assert_pointer_commit(self, chunks):
        """A host's commit in 'hosts' mode: the hub never saw the bytes."""
        for c in chunks:
            self.assert_hub_lacks(c)
            self.assertEqual(self.proven(c), 0, c)

    def cache_bytes(self):
        """Bytes of the workspace's chunks in the hub's store (all 'hosts' cache here)."""
        return int(self.hub.sql(
            "SELECT COALESCE(SUM(c.size), 0) FROM workspace_chunks g JOIN chunks c ON c.hash = "
            "g.chunk_hash JOIN chunk_replicas cr ON cr.chunk_hash = c.hash AND cr.holder = "
            "'hub' AND cr.state = 'ok' WHERE g.workspace_id = ?", (self.ws,))[0][0])

    def cache_path(self, host, chunk):
        return os.path.join(host.dir, ".roost", "cache", "objects", chunk[:2], chunk)

    def in_cache(self, host, chunk):
        return os.path.exists(self.cache_path(host, chunk))

    def wait_held(self, host, chunks, what):
        hid = self.holder(host)
        wait_for(lambda: all(self.holders(c).get(hid) == "ok" for c in chunks), 60,
                 what, [self.A, self.B])

    def replicate_until(self, done, what, timeout=60, check=None):
        """Run `roost admin replicate` until done() (the eviction fence is
        5 s of time: polled, not slept); check(result) after every run. The
        results, in order."""
        results = []

        def run():
            results.append(self.admin("replicate"))
            if check:
                check(results[-1])
            return done()
        wait_for(run, timeout, what, [self.A, self.B], interval=0.5)
        return results

    def get(self, path, data):
        """`roost get --json` (the source picker): verified bytes; the report."""
        out = os.path.join(self.tmp, "get-" + os.path.basename(path))
        if os.path.exists(out):  # a fresh download each time, from wherever it comes
            os.unlink(out)
        p = self.hub.cli("get", path, out, "--json")
        self.assertEqual(file_sha(out), sha(data))
        return json.loads(p.stdout)

    @staticmethod
    def bytes_via(report, via):
        return sum(s["bytes"] for s in report["sources"] if s["via"] == via)

    def read_back(self, path, data):
        st, _, payload, _ = self.api("GET", "/content?path=" + q(path))
        self.assertEqual((st, sha(payload)), (200, sha(data)))

    # ---- tests ----
    def test_1_single_holder_past_grace_is_pulled_into_the_hub(self):
        """A file written on A (a pointer commit; B does not pin /g) has one
        copy; once replica_grace_s has passed, replicate pulls it from A into
        the hub, verified, and proves the grant; B is asked for a second
        host copy, which it fetches from A or the hub."""
        self.settings(replica_grace_s=1, min_replicas=2, hub_cache_bytes=1 << 30)
        self.set_storage("hosts")
        data = os.urandom(3 << 20)  # a few chunks: the pointer commit of a chunked file
        chunks = self.write(self.A, "/g/one.bin", data)
        self.assertGreater(len(chunks), 1)
        self.assert_pointer_commit(chunks)
        aid, bid = self.holder(self.A), self.holder(self.B)
        for c in chunks:
            self.assertEqual(self.holders(c), {aid: "ok"})
        created = self.hub.sql("SELECT MAX(created_at) FROM file_versions WHERE hash = ?",
                               (sha(data),))[0][0]
        # Replicating before the grace ends would give B its copy first (no
        # pull needed): wait for the grace itself.
        wait_for(lambda: now_ms() > created + 1000 + 50, 10, "the grace period to pass")
        res = self.admin("replicate")
        self.assertEqual(res["chunks_copied"], len(set(chunks)), res)
        self.assertEqual(res.get("chunks_unavailable", 0), 0, res)
        for c in chunks:
            self.assert_hub_holds(c)
            self.assertEqual(self.proven(c), 1, c)
        pulled = self.hub.sql("SELECT COUNT(*) FROM audit_log WHERE action = 'chunk.replicated' "
                              "AND target IN (%s)" % ",".join("?" * len(chunks)),
                              tuple(chunks))[0][0]
        self.assertEqual(pulled, len(set(chunks)))
        # ... and B was asked for a second host copy.
        self.wait_held(self.B, chunks, "B's assigned copies")
        for c in chunks:
            self.assertEqual(file_sha(self.cache_path(self.B, c)), c)
        self.read_back("/g/one.bin", data)

    def drain_cache(self):
        """Evict what earlier tests left in the hub's cache."""
        self.settings(hub_cache_bytes=0)
        if self.cache_bytes():
            self.replicate_until(lambda: self.cache_bytes() == 0, "the hub's cache emptied")

    def evict_audits(self):
        return self.hub.sql("SELECT COUNT(*) FROM audit_log WHERE action = 'cache.evict'")[0][0]

    def test_2_eviction_is_lru_and_never_below_min_replicas(self):
        """The cache is filled as a user would: `roost put` while no host is
        online sends the chunks to the hub. z, x, y are put in that order (the
        LRU clock); the hosts then sync them — A all three, B only x and y
        (/p), and B goes offline before z could be assigned to it. Over the
        cap by one chunk, the least recently used of x and y goes (z, used
        least of all unless a host's sync read it since, has one host copy);
        with cap 0, the other goes and z stays; once B holds an assigned copy
        of z, z goes too."""
        self.settings(replica_grace_s=3600, min_replicas=2)
        self.set_storage("hosts")
        self.drain_cache()
        self.settings(hub_cache_bytes=1 << 30)
        for h in (self.A, self.B):
            h.stop()
            self.wait_online(h, False)
        z, x, y = os.urandom(170000), os.urandom(150000), os.urandom(160000)
        [cz] = self.put("/q/z.bin", z)  # under the minimum chunk: one chunk
        [cx] = self.put("/p/x.bin", x)
        [cy] = self.put("/p/y.bin", y)
        for c in (cz, cx, cy):
            self.assert_hub_holds(c)
            self.assertEqual(self.proven(c), 1)  # the hub got the bytes
            self.assertEqual(self.host_copies(c), 0)
        self.assertLess(self.hub_updated(cz), self.hub_updated(cx))
        self.assertLess(self.hub_updated(cx), self.hub_updated(cy))
        self.assertEqual(self.cache_bytes(), len(x) + len(y) + len(z))

        # The hosts come back and sync; then B goes offline (its copies still
        # count: it was seen within replica_grace_s).
        self.A.start()
        self.B.start()
        self.wait_held(self.A, (cx, cy, cz), "A's copies")
        self.wait_held(self.B, (cx, cy), "B's copies")
        self.B.stop()
        self.wait_online(self.B, False)
        self.assertNotIn(self.holder(self.B), self.holders(cz))

        def z_kept(res):
            self.assert_hub_holds(cz)

        # The LRU order now: the hosts' syncs may have been served from the
        # cache, which counts as use. The least recently used of x and y goes.
        old, new = sorted(((cx, x), (cy, y)),
                          key=lambda cd: (self.hub_updated(cd[0]), cd[0]))
        audits = self.evict_audits()
        self.settings(hub_cache_bytes=self.cache_bytes() - len(old[1]))
        runs = self.replicate_until(lambda: "hub" not in self.holders(old[0]),
                                    "the least recently used evicted", check=z_kept)
        self.assertEqual(sum(r.get("chunks_evicted", 0) for r in runs), 1, runs)
        self.assert_hub_lacks(old[0])
        self.assert_hub_holds(new[0])
        self.assertEqual(self.evict_audits(), audits + 1)

        self.settings(hub_cache_bytes=0)
        runs = self.replicate_until(lambda: "hub" not in self.holders(new[0]),
                                    "the other evicted", check=z_kept)
        self.assert_hub_lacks(new[0])
        self.assertEqual(runs[-1].get("cache_bytes_over"), len(z), runs[-1])
        self.assertEqual(self.host_copies(cz), 1)

        # B returns: it is assigned a copy of z, fetches it and reports it;
        # only then may the hub's copy go.
        self.B.start()
        self.wait_online(self.B)

        def never_below(res):
            if "hub" not in self.holders(cz):
                self.assertGreaterEqual(self.host_copies(cz), 2, res)
        self.replicate_until(lambda: "hub" not in self.holders(cz), "z evicted",
                             check=never_below)
        self.assert_hub_lacks(cz)
        self.assertEqual(self.holders(cz).get(self.holder(self.B)), "ok")
        self.assertEqual(file_sha(self.cache_path(self.B, cz)), cz)
        self.assertEqual(self.cache_bytes(), 0)
        # Nothing lost: the bytes live on the hosts, and a reader gets them there.
        for path, data in (("/p/x.bin", x), ("/p/y.bin", y), ("/q/z.bin", z)):
            self.assertEqual(file_sha(self.A.path(path)), sha(data))
            report = self.get(path, data)
            self.assertEqual(self.bytes_via(report, "hub"), 0, report)
        for path, data in (("/p/x.bin", x), ("/p/y.bin", y)):
            self.assertEqual(file_sha(self.B.path(path)), sha(data))

    def test_3_gc_makes_hosts_drop_collected_chunks(self):
        """A file written on A (pointer commit) gets an assigned copy on B,
        fetched from A (the hub has none); deleted and purged, GC has B drop
        its copy and then collects the chunk."""
        self.settings(replica_grace_s=3600, min_replicas=2, hub_cache_bytes=1 << 30)
        self.set_storage("hosts")
        data = os.urandom(180000)
        [chunk] = self.write(self.A, "/c/gone.bin", data)  # B does not pin /c
        self.assert_pointer_commit([chunk])
        res = self.admin("replicate")
        self.assertGreaterEqual(res.get("copies_assigned", 0), 1, res)
        self.wait_held(self.B, [chunk], "B's copy")
        self.assertEqual(file_sha(self.cache_path(self.B, chunk)), chunk)
        self.assert_hub_lacks(chunk)  # so B had it from A
        st, _, payload, _ = self.api("DELETE", "/files?path=" + q("/c/gone.bin"))
        self.assertEqual(st, 200, payload)
        wait_for(lambda: not os.path.exists(self.A.path("/c/gone.bin")), 30,
                 "A to delete its file", [self.A])
        self.hub.sql("UPDATE files SET deleted_at = ? WHERE name = 'gone.bin'",
                     (now_ms() - 40 * DAY_MS,))  # past trash_days
        res = self.admin("gc", "--retention", "0")
        self.assertGreaterEqual(res.get("host_copies_dropping", 0), 1, res)
        wait_for(lambda: not self.in_cache(self.B, chunk), 30, "B's copy dropped", [self.B])

        def collected():
            self.admin("gc", "--retention", "0")
            return not self.hub.sql("SELECT 1 FROM chunks WHERE hash = ?", (chunk,))
        wait_for(collected, 30, "the chunk collected", [self.A, self.B], interval=0.5)
        self.assertEqual(self.holders(chunk), {})
        self.assertFalse(self.in_cache(self.B, chunk))
        self.assertFalse(os.path.exists(self.hub_object(chunk)))

    def test_3b_a_late_have_report_does_not_undo_gcs_release(self):
        """A host's report that it holds a copy, sent before it heard that GC
        released it (or after a fetch for an answer from before), leaves the copy
        released: the host is still told to drop it, never made to keep it."""
        self.set_storage("hub")
        for h in (self.A, self.B):  # no other holder of the chunk (setUp restarts them)
            h.stop()
        [chunk] = self.put("/late/report.bin", os.urandom(50000))
        st, inv, payload, _ = self.api("POST", "/hosts/invites", {})
        self.assertEqual(st, 201, payload)
        st, joined, payload, _ = self.hub.request(
            "POST", "/api/v1/hosts/join", {"token": inv["token"], "label": "late"})
        self.assertEqual(st, 200, payload)
        tok = joined["token"]
        # the tests after this one count every host of the workspace
        self.addCleanup(self.api, "DELETE", "/hosts/%d" % joined["host"]["id"])

        def host_call(method, rel, body=None):
            st, out, payload, _ = self.hub.request(
                method, "/api/v1/workspaces/%d%s" % (self.ws, rel), body, token=tok)
            self.assertEqual(st, 200, payload)
            return out

        holder = "host:%d" % joined["host"]["id"]
        self.assertEqual(host_call("POST", "/hosts/self/replicas", {"have": [chunk]})["recorded"],
                         1)
        self.assertEqual(self.holders(chunk).get(holder), "ok")
        st, _, payload, _ = self.api("DELETE", "/files?path=" + q("/late/report.bin"))
        self.assertEqual(st, 200, payload)
        self.hub.sql("UPDATE files SET deleted_at = ? WHERE name = 'report.bin'",
                     (now_ms() - 40 * DAY_MS,))  # past trash_days
        self.admin("gc", "--retention", "0")
        self.assertEqual(self.holders(chunk).get(holder), "released")
        drop = host_call("POST", "/hosts/self/heartbeat", {})["replicate"]["drop"]
        self.assertIn(chunk, drop)
        # the stale report: recorded as nothing, and the answer still says drop
        self.assertEqual(host_call("POST", "/hosts/self/replicas", {"have": [chunk]})["recorded"],
                         0)
        self.assertEqual(self.holders(chunk).get(holder), "released")
        self.assertIn(chunk, host_call("POST", "/hosts/self/heartbeat", {})["replicate"]["drop"])
        host_call("POST", "/hosts/self/replicas", {"dropped": [chunk]})
        self.assertNotIn(holder, self.holders(chunk))
        self.admin("gc", "--retention", "0")  # now nothing holds it: collected
        self.assertFalse(self.hub.sql("SELECT 1 FROM chunks WHERE hash = ?", (chunk,)))

    def test_4_hub_hosts_hub_loses_nothing(self):
        """Files written in 'hub' mode (uploaded) and in 'hosts' mode (pointer
        commits); the hosts-mode cache evicted to nothing; back in 'hub' mode
        the first replicate run pulls every chunk, verified and proven."""
        self.settings(replica_grace_s=3600, min_replicas=2, hub_cache_bytes=1 << 30)
        self.set_storage("hub")
        files = {"/p/m%d.bin" % i: os.urandom(120000 + i) for i in range(3)}
        chunks = {}
        for path, data in files.items():
            chunks[path] = self.write(self.A, path, data)
            for c in chunks[path]:
                self.assert_hub_holds(c)
        self.wait_held(self.B, sum(chunks.values(), []), "B's copies")
        self.set_storage("hosts")
        self.settings(hub_cache_bytes=0)
        late = os.urandom(3 << 20)
        chunks["/p/late.bin"] = self.write(self.A, "/p/late.bin", late)
        files["/p/late.bin"] = late
        self.assert_pointer_commit(chunks["/p/late.bin"])
        self.wait_held(self.B, chunks["/p/late.bin"], "B's copies of late.bin")
        every = sorted(set(sum(chunks.values(), [])))
        self.replicate_until(lambda: self.cache_bytes() == 0, "the cache emptied")
        for c in every:
            self.assert_hub_lacks(c)
            self.assertGreaterEqual(self.host_copies(c), 2, c)
        # What the hub lacks now: this test's chunks and those earlier tests
        # left on hosts only (every version is restorable in 'hub' mode).
        lacking = self.hub.sql(
            "SELECT COUNT(DISTINCT vc.chunk_hash) FROM version_chunks vc WHERE NOT EXISTS "
            "(SELECT 1 FROM chunk_replicas cr WHERE cr.chunk_hash = vc.chunk_hash AND "
            "cr.holder = 'hub' AND cr.state = 'ok')")[0][0]
        self.assertGreaterEqual(lacking, len(every))
        self.set_storage("hub")
        res = self.admin("replicate")
        self.assertEqual(res["chunks_copied"], lacking, res)
        self.assertEqual(res.get("chunks_unavailable", 0), 0, res)
        missing = self.hub.sql(
            "SELECT DISTINCT vc.chunk_hash FROM version_chunks vc WHERE NOT EXISTS (SELECT 1 "
            "FROM chunk_replicas cr WHERE cr.chunk_hash = vc.chunk_hash AND cr.holder = 'hub' "
            "AND cr.state = 'ok')")
        self.assertEqual(missing, [])
        for c in every:
            self.assert_hub_holds(c)
            self.assertEqual(self.proven(c), 1, c)
        for path, data in files.items():
            self.read_back(path, data)

    def scrub_reports(self, host):
        return self.hub.sql("SELECT COUNT(*) FROM audit_log WHERE action = 'host.scrub' AND "
                            "target = ?", (self.holder(host),))[0][0]

    def corrupt_reports(self, chunk):
        return [json.loads(d) for (d,) in self.hub.sql(
            "SELECT detail FROM audit_log WHERE action = 'chunk.corrupt' AND target = ?",
            ("chunk:" + chunk,))]

    def test_5_a_corrupt_host_copy_is_reported_once_and_fetched_back(self):
        """Whoever on B reads its damaged copy first (its scrub, its replica
        thread, a peer's fetch from its content server) sets it aside and the
        hub hears it once; B's copy was assigned, so B fetches a good one back
        — from A: the hub never had the bytes (a pointer commit). Each host
        scrubs once for the hub's request, though it comes twice (the feed and
        the heartbeat)."""
        self.settings(replica_grace_s=3600, min_replicas=2, hub_cache_bytes=1 << 30)
        self.set_storage("hosts")
        data = os.urandom(190000)
        [chunk] = self.write(self.A, "/s/bad.bin", data)
        self.assert_pointer_commit([chunk])
        self.admin("replicate")
        bid, aid = self.holder(self.B), self.holder(self.A)
        self.wait_held(self.B, [chunk], "B's copy")
        obj = self.cache_path(self.B, chunk)
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
            return file_sha(obj) == chunk
        wait_for(fetched_back, 60, "B's copy fetched back", [self.A, self.B])
        self.assertEqual(self.holders(chunk).get(aid), "ok")
        self.assert_hub_lacks(chunk)  # B's good copy came from A
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
