"""The host's sync planner (src/host/plan.c, docs/reliability.md "The sync planner")
seen end to end: races that the planner resolves, run through real hosts.

- A folder made on one host while another makes a file of the same path: the folder
  stays (with what is in it) and the file is kept beside it as a conflict copy; both
  hosts and the hub end with the same tree and every byte written.
- The other order: a host comes back with a folder where the workspace got a file
  meanwhile; the workspace's file is moved aside (a conflict copy) and the folder goes
  up with what is in it.
- A version that holds the very bytes a host's edit started from (the same content
  committed again) is not a conflict: the edit goes up on it, with no conflict copy.
"""
import os
import threading

import harness
from test_host import HostTest, local_files, sha, write


def tree(root):
    """Sorted (workspace path, sha256) of every file under root, .roost aside."""
    return local_files(root, "/")


class PlannerRaceTest(HostTest):
    def hub_tree(self):
        st, body, _, _ = self.api("GET", "/tree")
        self.assertEqual(st, 200, body)
        return sorted((f["path"], f["hash"]) for f in body["files"])

    def views(self):
        return tree(self.A.dir), tree(self.B.dir), self.hub_tree()

    def test_a_folder_and_a_file_made_at_once_on_one_path_both_survive(self):
        inner, flat = b"inside the folder A made\n", b"the file B made\n"
        barrier = threading.Barrier(2)

        def on_a():
            barrier.wait()
            write(self.A.path("/race/fx/n.txt"), inner)

        def on_b():
            barrier.wait()
            write(self.B.path("/race/fx"), flat)
        threads = [threading.Thread(target=f) for f in (on_a, on_b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        def settled():
            a, b, hub = self.views()
            digests = {h for _, h in a}
            return a == b == hub and {sha(inner), sha(flat)} <= digests
        self.wait(settled, lambda: "A, B and the hub to agree and keep both; "
                  "A %s, B %s, hub %s" % self.views(), timeout=60)

    def test_a_folder_made_offline_where_the_workspace_got_a_file_both_survive(self):
        inner, flat = b"made while A was stopped\n", b"B's file of that name\n"
        self.A.stop()
        try:
            write(self.A.path("/late/fy/n.txt"), inner)
            write(self.B.path("/late/fy"), flat)
            self.wait(lambda: (self.hub_info("/late/fy") or {}).get("hash") == sha(flat),
                      "B's file to reach the hub")
        finally:
            self.A.start()

        def settled():
            a, b, hub = self.views()
            digests = {h for _, h in a}
            return a == b == hub and {sha(inner), sha(flat)} <= digests
        self.wait(settled, lambda: "A, B and the hub to agree and keep both; "
                  "A %s, B %s, hub %s" % self.views(), timeout=60)
        a = dict(tree(self.A.dir))
        self.assertEqual(a.get("/late/fy/n.txt"), sha(inner), "the folder here stays")
        copies = [p for p in a if p.startswith("/late/fy (conflict from ")]
        self.assertEqual([a[p] for p in copies], [sha(flat)], a)

    def test_the_same_bytes_committed_again_do_not_make_an_edit_a_conflict(self):
        rel = "/same/doc.txt"
        agreed, edit = b"the agreed text\n", b"A's edit, made while stopped\n"
        write(self.A.path(rel), agreed)
        self.wait(lambda: (self.hub_info(rel) or {}).get("hash") == sha(agreed),
                  "the agreed text to reach the hub")
        self.wait(lambda: dict(tree(self.B.dir)).get(rel) == sha(agreed),
                  "the agreed text to reach B")
        self.A.stop()
        try:
            write(self.A.path(rel), edit)
            src = os.path.join(self.tmp, "agreed-again.txt")
            write(src, agreed)
            self.hub.cli("put", src, rel)
            st, body, _, _ = self.api("GET", "/versions?path=" + harness.q(rel))
            self.assertEqual([v["hash"] for v in body["versions"]][:2],
                             [sha(agreed), sha(agreed)], "the put made a second version")
        finally:
            self.A.start()

        def settled():
            a, b, hub = self.views()
            return a == b == hub and dict(hub).get(rel) == sha(edit)
        self.wait(settled, lambda: "A's edit to be current everywhere; "
                  "A %s, B %s, hub %s" % self.views(), timeout=60)
        copies = [p for p, _ in self.hub_tree() if p.startswith("/same/doc (conflict")]
        self.assertEqual(copies, [], "a conflict copy of an edit that raced nothing")

    def test_the_same_rename_made_on_a_host_and_by_the_cli_makes_no_conflict(self):
        # (Found by the convergence runner, seed 1878814919: the host set its own
        # renamed file aside as a conflict copy of itself and left the path empty.)
        data = b"renamed twice, the same way\n"
        write(self.A.path("/twice/f4.txt"), data)
        self.wait(lambda: dict(tree(self.B.dir)).get("/twice/f4.txt") == sha(data),
                  "f4.txt on the hub and B")
        self.roost("host", "pause", "--dir", self.A.dir)
        self.wait(lambda: self.A.status().get("state") == "paused", "A to pause")
        os.rename(self.A.path("/twice/f4.txt"), self.A.path("/twice/F4.txt"))
        self.assertEqual(self.roost("mv", "/twice/f4.txt", "/twice/F4.txt").returncode, 0)
        self.roost("host", "resume", "--dir", self.A.dir)

        def twice():
            return tuple([f for f in v if f[0].startswith("/twice/")] for v in self.views())

        def settled():
            a, b, hub = twice()
            return a == b == hub == [("/twice/F4.txt", sha(data))]
        self.wait(settled, lambda: "one F4.txt everywhere; A %s, B %s, hub %s" % twice(),
                  timeout=60)


if __name__ == "__main__":
    harness.main()
