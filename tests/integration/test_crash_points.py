"""Crash points at CI size (issue 19, docs/reliability.md "Crashes"): torture.py's
runner with ROOST_CRASH_POINTS kill points (default 24: every operation about
three times; `make torture` runs the full size). SIGKILL of the hub, a host or
the CLI at seeded random moments during put (big and small), batch commit, sync
both ways, rename storms, GC, scrub and replication; after each, a restart and
every invariant of invariants.py. The seed is printed; ROOST_SEED=N replays it."""
import os
import unittest

import harness
import torture


class CrashPointsTest(unittest.TestCase):
    def test_nothing_acknowledged_is_lost_at_any_kill_point(self):
        points = int(os.environ.get("ROOST_CRASH_POINTS", "24"))
        t, seconds = torture.run(points, log=lambda s: None)
        print("\n" + t.summary(seconds))
        self.assertEqual(sum(t.kills.values()), points)
        self.assertEqual(t.checks, points + 1)  # one per kill point, one at the end
        ops = {op for op, _ in t.kills}
        self.assertEqual(ops, set(t.ops), "every operation got a kill point")
        self.assertGreater(t.ledger.count(), 0, "some version was acknowledged")


if __name__ == "__main__":
    harness.main()
