"""Randomized convergence at CI size (issue 19, docs/reliability.md "Randomized
convergence"): convergence.py's runner, the seeds ROOST_CONVERGENCE_SEEDS (default 1,1878814919) of
ROOST_CONVERGENCE_ROUNDS rounds (default 6): three hosts and the CLI apply random
concurrent operations while hosts, the hub and host A's network fail; at quiescence
the trees are equal and the model's, nothing acknowledged is lost, conflict copies only
where edits raced. Each seed is printed; ROOST_SEED=N replays one. `make torture` runs
the full size. Also here: what the runner found, as plain regression tests."""
import hashlib
import os
import shutil
import tempfile
import time
import unittest

import convergence
import harness
from harness import Host, Hub, wait_for
from faultproxy import DOWN, FaultProxy
from invariants import Checker, local_tree


class ReplacedOnARunningHostTest(unittest.TestCase):
    """A folder replaced by a file of the same name, and back, on a running host. The
    watcher saw only the new one; the hub refused it for ever ("a file or folder is in
    the way") and the hosts never agreed (found by seed 1 of the runner)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="roost-it-")
        cls.hub = Hub(cls.tmp)
        cls.hub.start()
        cls.addClassCleanup(cls.hub.stop)
        cls.token = cls.hub.login()
        cls.ws = cls.hub.workspace(cls.token)
        cls.hub.login_cli()
        cls.A, cls.B = Host(cls.hub, cls.tmp, "A"), Host(cls.hub, cls.tmp, "B")
        for h in (cls.A, cls.B):
            h.join()
            h.start()
            cls.addClassCleanup(h.stop)
        cls.checker = Checker(cls.hub, cls.token, cls.ws, (cls.A, cls.B))

    @classmethod
    def tearDownClass(cls):
        if not os.environ.get("ROOST_KEEP_TMP"):
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def place(self, rel, data):
        staged = os.path.join(self.tmp, "staged")
        with open(staged, "wb") as f:
            f.write(data)
        os.makedirs(os.path.dirname(self.A.path(rel)), exist_ok=True)
        os.rename(staged, self.A.path(rel))

    def converged(self, expect):
        """The hub and both hosts hold just expect under its top folder."""
        top = "/" + next(iter(expect)).split("/")[1] + "/"

        def under(tree):
            return {p: d for p, d in tree.items() if p.startswith(top)}

        def same():
            hub = convergence.hub_tree(self.checker)
            if hub is None:
                return False
            hub = under(hub)
            return (set(hub) == expect and under(local_tree(self.A.dir)) == hub
                    and under(local_tree(self.B.dir)) == hub)
        wait_for(same, 60, lambda: "the tree %s on the hub and both hosts (hub %s)" % (
            sorted(expect), sorted(under(self.checker.hub_tree()))), [self.A, self.B])

    def test_a_folder_replaced_by_a_file_goes_up(self):
        self.place("/fr/s/inner.txt", b"in the folder")
        self.converged({"/fr/s/inner.txt"})
        shutil.rmtree(self.A.path("/fr/s"))
        self.place("/fr/s", b"a file now")
        self.converged({"/fr/s"})

    def test_a_file_replaced_by_a_folder_goes_up(self):
        self.place("/rf/s", b"a file")
        self.converged({"/rf/s"})
        os.remove(self.A.path("/rf/s"))
        self.place("/rf/s/inner.txt", b"in the folder now")
        self.converged({"/rf/s/inner.txt"})

    def test_a_folder_swapped_for_a_file_at_once_is_no_conflict(self):
        """A file made a folder and, at once, the folder made a file again: the
        echo of the folder's file once put the new file aside as a conflict copy
        and brought the deleted file back (seeds 1582760241 and 72890129), and on
        PostgreSQL still one run in three after that fix: the agent's "is the folder
        still there?" (GET info) was refused to a host's credential, and a refusal
        reads as "yes"."""
        self.place("/sw/s", b"a file")
        self.converged({"/sw/s"})
        os.remove(self.A.path("/sw/s"))
        self.place("/sw/s/inner.txt", os.urandom(1300 * 1024))
        time.sleep(0.1)  # the user's pace in those seeds (the scenario, not a wait)
        shutil.rmtree(self.A.path("/sw/s"))
        self.place("/sw/s", b"a file again")
        self.converged({"/sw/s"})
        with open(self.A.path("/sw/s"), "rb") as f:
            self.assertEqual(f.read(), b"a file again")

    def new_version_moved_while_b_away(self, path, mv_from, mv_to, now_at):
        """path's new version put, then mv_from moved to mv_to, while B is away:
        B started, it must hold the new version at now_at."""
        old, new = os.urandom(1300 * 1024), os.urandom(1400 * 1024)
        self.place(path, old)
        self.converged({path})
        self.B.stop()
        src = os.path.join(self.tmp, "v2")
        with open(src, "wb") as f:
            f.write(new)
        self.hub.cli("put", src, path)
        self.hub.cli("mv", mv_from, mv_to)
        self.B.start()
        self.converged({now_at})
        with open(self.B.path(now_at), "rb") as f:
            self.assertEqual(f.read(), new)

    def test_a_version_whose_folder_moved_before_a_host_fetches_it_is_fetched(self):
        """The same with the folder above the file moved: a folder's move names no
        versions, so B carried the old one to the new path for good (found by
        reading, docs/reliability.md)."""
        self.new_version_moved_while_b_away("/fm/d/deep/f.bin", "/fm/d", "/fm/e",
                                            "/fm/e/deep/f.bin")

    def test_a_version_renamed_before_a_host_fetches_it_is_fetched(self):
        """A new version, then at once a case-only rename, while B is away: B's
        manifest request for the version found its path gone, and the move then
        carried the old version to the new name for good (seed 1582760241)."""
        self.new_version_moved_while_b_away("/rn/f41.txt", "/rn/f41.txt", "/rn/F41.txt",
                                            "/rn/F41.txt")

class LostMoveAnswerTest(unittest.TestCase):
    """Host A moves a file into a folder and loses the hub's answer (the hub made
    the move): the move's echo found the file at its new path already, kept it
    aside as a conflict copy, and the agent then deleted the new path on the hub
    (seed 1105897962, round 20: a stalled, reset link)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="roost-it-")
        cls.hub = Hub(cls.tmp)
        cls.hub.start()
        cls.addClassCleanup(cls.hub.stop)
        cls.token = cls.hub.login()
        cls.ws = cls.hub.workspace(cls.token)
        cls.hub.login_cli()
        cls.proxy = FaultProxy(cls.hub.api_port, seed=1)
        cls.addClassCleanup(cls.proxy.stop)
        cls.A, cls.B = Host(cls.hub, cls.tmp, "A"), Host(cls.hub, cls.tmp, "B")
        for h in (cls.A, cls.B):
            h.join()
        convergence.route_via(cls.A, cls.proxy)
        for h in (cls.A, cls.B):
            h.start()
            cls.addClassCleanup(h.stop)
        cls.checker = Checker(cls.hub, cls.token, cls.ws, (cls.A, cls.B))

    @classmethod
    def tearDownClass(cls):
        if not os.environ.get("ROOST_KEEP_TMP"):
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def tree_is(self, expect):
        """The hub and both hosts hold just expect ({path: sha256}) under /lm/."""
        def under(tree):
            return {p: d for p, d in (tree or {}).items() if p.startswith("/lm/")}

        def same():
            hub = under(convergence.hub_tree(self.checker))
            return hub == expect and all(under(local_tree(h.dir)) == expect
                                         for h in (self.A, self.B))
        wait_for(same, 60, lambda: "the tree %s on the hub and both hosts (hub %s)" % (
            sorted(expect), sorted(under(self.checker.hub_tree()))), [self.A, self.B])

    def test_a_move_whose_answer_was_lost_is_kept(self):
        data = os.urandom(1133)
        os.makedirs(self.A.path("/lm/s"))
        with open(self.A.path("/lm/f.txt"), "wb") as f:
            f.write(data)
        digest = hashlib.sha256(data).hexdigest()
        self.tree_is({"/lm/f.txt": digest})
        # A's next connection that opens with the move gets no answer while held.
        self.proxy.hold_down = b"/move"
        self.proxy.reset_live()
        os.rename(self.A.path("/lm/f.txt"), self.A.path("/lm/s/g.txt"))
        # The hub made the move and B applied it: the echo is on A's feed too.
        wait_for(lambda: os.path.exists(self.B.path("/lm/s/g.txt")), 30,
                 "B to apply the move", [self.A, self.B])
        before = self.proxy.bytes[DOWN]
        wait_for(lambda: self.proxy.bytes[DOWN] > before, 10, "A's feed to read on",
                 [self.A])
        self.proxy.reset_live()  # the answer is lost
        self.proxy.hold_down = None
        self.tree_is({"/lm/s/g.txt": digest})


class ConvergenceTest(unittest.TestCase):
    def test_random_concurrent_operations_under_faults_converge(self):
        rounds = int(os.environ.get("ROOST_CONVERGENCE_ROUNDS", "6"))
        # Fixed seeds in CI (the same operations and faults every run; ROOST_SEED=N runs
        # another): random seeds still find bugs not fixed yet (docs/reliability.md,
        # "Left"), which is `make torture`'s job, not CI's. Seed 1878814919 met the
        # folder-to-file swap race on PostgreSQL (round 1) until GET info was a host route.
        seeds = ([int(os.environ["ROOST_SEED"])] if os.environ.get("ROOST_SEED") else
                 [int(x) for x in os.environ.get("ROOST_CONVERGENCE_SEEDS",
                                                 "1,1878814919").split(",")])
        for seed in seeds:
            r = convergence.run_one(seed, rounds, log=lambda s: None)
            print("\n" + r.summary())
            self.assertEqual(r.stats["rounds"], rounds)
            self.assertGreater(r.stats["ops"], rounds, "each round ran operations")
            self.assertGreater(len(r.acked), 0, "some content was acknowledged")


if __name__ == "__main__":
    harness.main()
