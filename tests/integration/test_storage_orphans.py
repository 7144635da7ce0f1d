"""Issue 15's last host-side gaps:

- Host-to-host traffic uses a holder's relay URL when its direct one does not
  answer: host A advertises a URL nothing listens on (--advertise-url) and is
  reachable only through its relay, in a 'hosts' workspace whose hub keeps no
  bytes. Host B still gets A's many small files many to a request (the batch
  route, through the relay), and a copy the replicate job assigns B, from A.
- Nothing unreferenced outlives GC on a host, however long it was offline: a
  host stopped while a file is deleted, purged and its chunk collected (past
  the wait for hosts to drop it) drops its assigned copy when it returns, and
  keeps the pinned copy of a live file's chunk.
"""
import hashlib
import json
import os
import re
import subprocess
import time

import harness
from harness import Host, HubTest, Relay, free_port, q, wait_for

DAY_MS = 86400 * 1000


def sha(b):
    return hashlib.sha256(b).hexdigest()


def now_ms():
    return int(time.time() * 1000)


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp-write"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


class Base(HubTest):
    """Helpers shared by both classes."""

    def admin(self, *args):
        p = subprocess.run([harness.ROOST, "admin", *args, "--json", "--data", self.hub.data,
                            *self.hub.db_args()], env=self.hub.env(), capture_output=True,
                           timeout=300)
        self.assertIn(p.returncode, (0, 1), p.stderr.decode())
        return json.loads(p.stdout)

    @classmethod
    def settings(cls, **kw):
        st, _, payload, _ = cls.hub.request("PATCH", "/api/v1/workspaces/%d" % cls.ws, kw,
                                            token=cls.token)
        assert st == 200, payload

    @classmethod
    def set_hosts_mode(cls, hosts, **kw):
        """'hosts' storage, once every host has learnt it (a host commits by the
        mode it knows)."""
        def learnt(h):
            with open(h.log_path, "rb") as f:
                return f.read().decode(errors="replace").count("keeps its bytes on hosts")
        seen = {h.label: learnt(h) for h in hosts}
        cls.settings(storage="hosts", **kw)
        for h in hosts:
            wait_for(lambda: learnt(h) > seen[h.label], 30,
                     "host %s to learn storage 'hosts'" % h.label, hosts)

    def host_id(self, host):
        return self.hub.sql("SELECT id FROM hosts WHERE label = ?", (host.label,))[0][0]

    def holders(self, chunk):
        return dict(self.hub.sql("SELECT holder, state FROM chunk_replicas WHERE chunk_hash = ?",
                                 (chunk,)))

    def chunks_of(self, path):
        st, m, _, _ = self.api("GET", "/manifest?path=" + q(path))
        self.assertEqual(st, 200, m)
        return [c["hash"] for c in m["chunks"]]

    def hash_of(self, path):
        st, body, _, _ = self.api("GET", "/info?path=" + q(path))
        return body.get("hash") if st == 200 else None

    def commit_on(self, host, path, data, hosts):
        write(host.path(path), data)
        wait_for(lambda: self.hash_of(path) == sha(data), 60, path + " on the hub", hosts)
        return self.chunks_of(path)

    def cache_path(self, host, chunk):
        return os.path.join(host.dir, ".roost", "cache", "objects", chunk[:2], chunk)

    def in_cache(self, host, chunk):
        return os.path.exists(self.cache_path(host, chunk))

    def hub_lacks(self, chunk):
        return "hub" not in self.holders(chunk) and not os.path.exists(
            self.hub.object_path(chunk))

    def wait_held(self, host, chunks, what, hosts):
        holder = "host:%d" % self.host_id(host)
        wait_for(lambda: all(self.holders(c).get(holder) == "ok" for c in chunks), 60, what,
                 hosts)


class RelayedHolderTest(Base):
    """A is reachable only through its relay; B pins /small and /p only."""
    N = 200

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hub.login_cli()
        cls.relay = Relay(cls.hub, cls.tmp)
        cls.relay.start()
        cls.addClassCleanup(cls.relay.stop)
        cls.A = Host(cls.hub, cls.tmp, "A", relay=cls.relay)
        cls.A.extra_args = ["--advertise-url", "http://127.0.0.1:%d" % free_port()]
        cls.B = Host(cls.hub, cls.tmp, "B", relay=cls.relay)
        cls.hosts = [cls.A, cls.B]
        cls.A.join()
        cls.B.join(folders=["/small", "/p"])
        for h in cls.hosts:
            h.start()

        def relayed():
            st, body, _, _ = cls.hub.request("GET", "/api/v1/workspaces/%d/hosts" % cls.ws,
                                             token=cls.token)
            return st == 200 and all(h.get("tunnel_url") for h in body["hosts"])
        wait_for(relayed, 60, "both hosts' relay URLs", cls.hosts)
        cls.set_hosts_mode(cls.hosts, hub_cache_bytes=0)

    def batched(self):
        """Small files B placed through the batch route, by its log."""
        with open(self.B.log_path, errors="replace") as f:
            return sum(int(n) for n in re.findall(
                r"synced (\d+) small files from the workspace in one batch", f.read()))

    def test_1_small_files_come_in_batches_through_the_relay(self):
        files = {"/small/d%d/f%03d.txt" % (k % 4, k): os.urandom(1024 + (k * 53) % 3072)
                 for k in range(self.N)}
        before = self.B.status()["chunks"]
        for rel, data in files.items():
            write(self.A.path(rel), data)

        def arrived():
            for rel, data in files.items():
                try:
                    with open(self.B.path(rel), "rb") as f:
                        if f.read() != data:
                            return False
                except OSError:
                    return False
            return True
        wait_for(arrived, 180, "A's small files on B", self.hosts, 0.2)
        some = list(files)[7]
        self.assertTrue(self.hub_lacks(self.chunks_of(some)[0]))  # only A held them
        after = self.B.status()["chunks"]
        peer = after["from_peer"] - before["from_peer"]
        hub = after["from_hub"] - before["from_hub"]
        self.assertGreaterEqual(peer, self.N, after)
        self.assertEqual(hub, 0, after)
        # many to a request: the batch route, at A's relay URL (its direct one is dead)
        self.assertGreaterEqual(self.batched(), self.N // 2, self.B.log_tail(40))

    def test_2_a_replica_assignment_is_fetched_through_the_relay(self):
        self.settings(min_replicas=2, replica_grace_s=3600)
        data = os.urandom(300000)
        chunks = self.commit_on(self.A, "/c/copy.bin", data, self.hosts)  # B does not pin /c
        for c in chunks:
            self.assertTrue(self.hub_lacks(c), c)
        before = self.B.status()["chunks"]
        res = self.admin("replicate")
        self.assertGreaterEqual(res.get("copies_assigned", 0), 1, res)
        self.wait_held(self.B, chunks, "B's assigned copy, fetched from A", self.hosts)
        for c in chunks:
            with open(self.cache_path(self.B, c), "rb") as f:
                self.assertEqual(sha(f.read()), c)
            self.assertTrue(self.hub_lacks(c), c)
        after = self.B.status()["chunks"]
        self.assertGreaterEqual(after["from_peer"] - before["from_peer"], len(chunks), after)
        self.assertEqual(after["from_hub"], before["from_hub"], after)


class OfflineHostGCTest(Base):
    """A pins everything, B only /p: under /c, B holds only the copies the
    replicate job assigns it (pinned in its cache)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hub.login_cli()
        cls.A = Host(cls.hub, cls.tmp, "A")
        cls.B = Host(cls.hub, cls.tmp, "B")
        cls.hosts = [cls.A, cls.B]
        cls.A.join()
        cls.B.join(folders=["/p"])
        for h in cls.hosts:
            h.start()
        cls.set_hosts_mode(cls.hosts, min_replicas=2, replica_grace_s=3600,
                           hub_cache_bytes=1 << 30)

    def pinned_on(self, host, chunk):
        import sqlite3
        db = sqlite3.connect(os.path.join(host.dir, ".roost", "index.db"), timeout=30)
        try:
            return db.execute("SELECT 1 FROM cache_pins WHERE hash = ?", (chunk,)).fetchone() \
                is not None
        finally:
            db.close()

    def test_a_host_offline_through_gc_drops_the_collected_copy_and_keeps_the_live_one(self):
        [gone] = self.commit_on(self.A, "/c/gone.bin", os.urandom(150000), self.hosts)
        [live] = self.commit_on(self.A, "/c/live.bin", os.urandom(160000), self.hosts)
        res = self.admin("replicate")
        self.assertGreaterEqual(res.get("copies_assigned", 0), 2, res)
        self.wait_held(self.B, [gone, live], "B's assigned copies", self.hosts)
        for c in (gone, live):
            self.assertTrue(self.in_cache(self.B, c) and self.pinned_on(self.B, c), c)
            self.assertTrue(self.hub_lacks(c), c)  # a live chunk the hub's store lacks
        self.B.stop()
        st, _, payload, _ = self.api("DELETE", "/files?path=" + q("/c/gone.bin"))
        self.assertEqual(st, 200, payload)
        wait_for(lambda: not os.path.exists(self.A.path("/c/gone.bin")), 30,
                 "A to delete its file", [self.A])
        self.hub.sql("UPDATE files SET deleted_at = ? WHERE name = 'gone.bin'",
                     (now_ms() - 40 * DAY_MS,))  # past trash_days
        res = self.admin("gc", "--retention", "0")
        self.assertGreaterEqual(res.get("files_purged", 0), 1, res)
        self.assertEqual(self.holders(gone).get("host:%d" % self.host_id(self.B)), "released")

        def collected():
            # B never comes back within GC's wait for hosts to drop: past it
            self.hub.sql("UPDATE chunk_replicas SET updated_at = ? WHERE chunk_hash = ?",
                         (now_ms() - 2 * DAY_MS, gone))
            self.admin("gc", "--retention", "0")
            return not self.hub.sql("SELECT 1 FROM chunks WHERE hash = ?", (gone,))
        wait_for(collected, 60, "the chunk collected", [self.A], interval=0.5)
        self.assertEqual(self.holders(gone), {})
        self.assertTrue(self.in_cache(self.B, gone))  # B is offline: still there
        self.B.start()
        wait_for(lambda: not self.in_cache(self.B, gone) and not self.pinned_on(self.B, gone),
                 60, "B to drop the chunk GC collected while it was offline", [self.B])
        # the same sweep kept the live file's copy, pinned, and the hub still counts it
        with open(self.cache_path(self.B, live), "rb") as f:
            self.assertEqual(sha(f.read()), live)
        self.assertTrue(self.pinned_on(self.B, live))
        self.assertEqual(self.holders(live).get("host:%d" % self.host_id(self.B)), "ok")
        self.assertTrue(self.hub_lacks(live))


if __name__ == "__main__":
    harness.main()
