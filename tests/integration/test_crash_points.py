"""Crash points at CI size (issue 19, docs/reliability.md "Crashes"): torture.py's
runner with ROOST_CRASH_POINTS kill points (default 12: every operation once or
twice, to keep `make test` within its time on CI's two cores, plain and under
ASan; `make torture` runs the full size). SIGKILL of the hub, a host or
the CLI at seeded random moments during put (big and small), batch commit, sync
both ways, rename storms, GC, scrub and replication; after each, a restart and
every invariant of invariants.py. The seed is printed; ROOST_SEED=N replays it.

Two more storage configurations, a few kill points each (ROOST_CRASH_POINTS_HOSTS,
default 6; ROOST_CRASH_POINTS_S3, default 4): a `hosts`-storage workspace (bytes on
the hosts, the hub a cache of 0 bytes, min_replicas 2), and the hub's store in an
S3 bucket (s3rver) with kills during puts and GC."""
import os
import unittest

import harness
import torture


# A put (which goes to a host), sync both ways, replication with the cache's
# eviction, GC: every operation once at the default 6 points.
HOSTS_OPS = "put_big,put_small,sync_a_to_b,sync_b_to_a,replicate,gc"


class CrashPointsTest(unittest.TestCase):
    def test_nothing_acknowledged_is_lost_at_any_kill_point(self):
        points = int(os.environ.get("ROOST_CRASH_POINTS", "12"))
        t, seconds = torture.run(points, log=lambda s: None)
        print("\n" + t.summary(seconds))
        self.assertEqual(sum(t.kills.values()), points)
        self.assertEqual(t.checks, points + 1)  # one per kill point, one at the end
        ops = {op for op, _ in t.kills}
        self.assertEqual(ops, set(t.ops), "every operation got a kill point")
        self.assertGreater(t.ledger.count(), 0, "some version was acknowledged")

    def test_hosts_storage_loses_nothing_at_any_kill_point(self):
        points = int(os.environ.get("ROOST_CRASH_POINTS_HOSTS", "6"))
        t, seconds = torture.run(points, log=lambda s: None, storage="hosts", ops=HOSTS_OPS)
        print("\n" + t.summary(seconds))
        self.assertEqual(t.checks, points + 1)
        self.assertEqual({op for op, _ in t.kills}, set(HOSTS_OPS.split(",")))
        self.assertEqual(t.ops["put_big"][1], ["cli", "hub", "host A", "host B"])
        self.assertGreater(t.ledger.count(), 0, "some version was acknowledged")
        self.assertGreater(t.checker.host_reads, 0, "no file was read back from a host")

    def test_an_s3_store_loses_nothing_when_the_hub_dies_mid_put_or_gc(self):
        points = int(os.environ.get("ROOST_CRASH_POINTS_S3", "4"))
        store, harness.STORE = harness.STORE, "s3"  # the hubs made from now on
        try:
            t, seconds = torture.run(points, log=lambda s: None,
                                     ops="put_big,put_small,batch_commit,gc", targets=["hub"])
        finally:
            harness.STORE = store
        print("\n" + t.summary(seconds))
        self.assertEqual(t.checks, points + 1)
        self.assertIsNotNone(t.hub.s3, "the hub's store was not the bucket")
        self.assertEqual({c for _, c in t.kills}, {"hub"})
        self.assertGreater(t.checker.objects_hashed, 0, "no bucket object was checked")
        self.assertGreater(t.ledger.count(), 0, "some version was acknowledged")


if __name__ == "__main__":
    harness.main()
