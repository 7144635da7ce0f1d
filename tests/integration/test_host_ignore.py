"""A host's .roostignore (docs/host.md): gitignore patterns at the folder's root
that the start-up scan, the watcher and uploads all skip.

- Names match at any depth, a leading '/' anchors, a trailing '/' is for
  folders, '**' spans folders, '!' re-includes; .roostignore itself is synced.
- A file created while the agent runs is skipped as well.
- A pattern added later leaves what it matches on the hub: a local delete or
  edit of such a file is not sent.
- A pattern removed brings its files in.
"""
import hashlib
import os
import time

import harness
from harness import Host, HubTest, q, wait_for

IGNORE = """# build output and scratch files
*.tmp
/build/
logs/**
!logs/keep.txt
cache/
"""


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


class HostIgnoreTest(HubTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hub.login_cli()
        cls.A = Host(cls.hub, cls.tmp, "A")
        cls.A.join()
        files = {
            ".roostignore": IGNORE.encode(),
            "a.txt": b"kept", "notes.txt": b"notes v1", "x.tmp": b"scratch",
            "sub/y.tmp": b"scratch", "build/out.o": b"obj", "sub/build/z.txt": b"not anchored",
            "logs/a.log": b"log", "logs/deep/b.log": b"log", "logs/keep.txt": b"kept log",
            "cache/c.bin": b"cache", "sub/cache/d.bin": b"cache",
        }
        for rel, data in files.items():
            write(cls.A.path(rel), data)
        write(cls.A.path("cachefile/cache"), b"a file named cache")
        cls.A.start()

    def on_hub(self, path):
        st, body, _, _ = self.api("GET", "/info?path=" + q(path))
        return body if st == 200 else None

    def wait_on_hub(self, path, what=None):
        return wait_for(lambda: self.on_hub(path), 60, what or path + " on the hub", [self.A])

    def settle(self):
        """Write a marker and wait until the hub has it: what the host saw before
        it has been dealt with."""
        marker = "/marker-%d.txt" % time.monotonic_ns()
        write(self.A.path(marker), b"m")
        self.wait_on_hub(marker)

    def test_a_the_start_up_scan_skips_what_the_patterns_name(self):
        for path in ("/a.txt", "/notes.txt", "/sub/build/z.txt", "/logs/keep.txt",
                     "/.roostignore", "/cachefile/cache"):
            self.wait_on_hub(path)
        self.settle()
        for path in ("/x.tmp", "/sub/y.tmp", "/build", "/build/out.o", "/logs/a.log",
                     "/logs/deep/b.log", "/cache", "/cache/c.bin", "/sub/cache/d.bin"):
            self.assertIsNone(self.on_hub(path), path + " was synced")

    def test_b_the_watcher_skips_new_ignored_files(self):
        write(self.A.path("new.tmp"), b"scratch")
        write(self.A.path("build/more.o"), b"obj")
        write(self.A.path("new.txt"), b"new")
        self.wait_on_hub("/new.txt")
        self.settle()
        self.assertIsNone(self.on_hub("/new.tmp"))
        self.assertIsNone(self.on_hub("/build/more.o"))

    def test_c_a_pattern_added_later_leaves_the_file_on_the_hub(self):
        before = self.wait_on_hub("/notes.txt")
        with open(self.A.path(".roostignore"), "a") as f:
            f.write("notes.txt\n")
        want = hashlib.sha256((IGNORE + "notes.txt\n").encode()).hexdigest()
        wait_for(lambda: (self.on_hub("/.roostignore") or {}).get("hash") == want, 60,
                 "the new .roostignore on the hub", [self.A])
        time.sleep(1.2)  # the agent's other threads look at the file once a second
        write(self.A.path("notes.txt"), b"notes v2, local only")
        self.settle()
        os.unlink(self.A.path("notes.txt"))
        self.settle()
        after = self.on_hub("/notes.txt")
        self.assertIsNotNone(after, "the ignored file was deleted on the hub")
        self.assertEqual(after["hash"], before["hash"])

    def test_d_removing_a_pattern_brings_its_files_in(self):
        with open(self.A.path(".roostignore"), "w") as f:
            f.write(IGNORE.replace("*.tmp\n", ""))
        self.wait_on_hub("/x.tmp", "x.tmp on the hub once *.tmp is gone")
        self.wait_on_hub("/sub/y.tmp")
        self.assertIsNone(self.on_hub("/build/out.o"))


if __name__ == "__main__":
    harness.main()
