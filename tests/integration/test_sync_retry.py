"""A host whose download of a remote file fails (no source has the bytes at that
moment) tries again by itself, with backoff, until it gets them: no restart and
no later change to the file needed (the hosts converge without a manual step).

Set-up: storage 'hosts' with no hub cache, so the only holder of a file's bytes is
the host that wrote it. B is stopped while A writes a small file (one chunk, fetched
in a batch) and a big one (a manifest of several chunks); then A stops and B starts:
every source is away, so both downloads fail. A starts again and B must get both.
The same when B is killed between the failed downloads and their retry: the feed has
moved past the files' events, and B's next start must still fetch them.
"""
import hashlib
import os

import harness
from harness import HubTest, q, wait_for


def sha(b):
    return hashlib.sha256(b).hexdigest()


class RetryTest(HubTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hub.login_cli()
        cls.A = harness.Host(cls.hub, cls.tmp, "A")
        cls.B = harness.Host(cls.hub, cls.tmp, "B")
        cls.hosts = [cls.A, cls.B]
        for h in cls.hosts:
            h.join()
            h.start()
        st, _, payload, _ = cls.hub.request("PATCH", "/api/v1/workspaces/%d" % cls.ws,
                                            {"storage": "hosts", "hub_cache_bytes": 0},
                                            token=cls.token)
        assert st == 200, payload
        for h in cls.hosts:
            wait_for(lambda: cls.log(h).count("keeps its bytes on hosts"), 30,
                     "host %s to learn storage 'hosts'" % h.label, [h])

    @classmethod
    def tearDownClass(cls):
        for h in getattr(cls, "hosts", []):
            h.stop()
        super().tearDownClass()

    @staticmethod
    def log(h):
        with open(h.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def listed(self, path, data):
        st, info, _, _ = self.hub.request(
            "GET", "/api/v1/workspaces/%d/manifest?path=%s" % (self.ws, q(path)),
            token=self.token)
        return st == 200 and info.get("hash") == sha(data)

    def on_b(self, path, data):
        with open(self.B.path(path), "rb") as f:
            return sha(f.read()) == sha(data)

    def fail_downloads_on_b(self, folder, files):
        """A writes files (B stopped) and stops; B starts and tries each: no
        source has the bytes."""
        self.B.stop()
        os.makedirs(self.A.path(folder), exist_ok=True)
        for rel, data in files.items():
            with open(self.A.path(rel) + ".part", "wb") as f:
                f.write(data)
            os.rename(self.A.path(rel) + ".part", self.A.path(rel))
        for rel, data in files.items():
            wait_for(lambda: self.listed(rel, data), 60, "%s committed by A" % rel, [self.A])
        self.A.stop()
        before = len(self.log(self.B))
        self.B.start()
        for rel in files:
            wait_for(lambda: "download %s failed" % rel in self.log(self.B)[before:], 60,
                     "B's failed download of %s" % rel, [self.B])

    def test_failed_downloads_are_tried_again_until_a_source_is_back(self):
        files = {"/r/small.txt": os.urandom(3000), "/r/big.bin": os.urandom(6 << 20)}
        self.fail_downloads_on_b("/r", files)
        self.assertFalse(any(os.path.exists(self.B.path(rel)) for rel in files))
        pid = self.B.proc.pid
        self.A.start()
        for rel, data in files.items():
            wait_for(lambda: self.on_b(rel, data), 120, "%s on B once A is back" % rel,
                     self.hosts)
        self.assertEqual(self.B.proc.pid, pid)  # by itself, not by a restart
        leftovers = [n for n in os.listdir(self.B.path("/r")) if n not in ("small.txt", "big.bin")]
        self.assertEqual(leftovers, [])

    def test_a_failed_download_outlives_a_kill_before_its_retry(self):
        files = {"/k/small.txt": os.urandom(2000), "/k/big.bin": os.urandom(5 << 20)}
        self.fail_downloads_on_b("/k", files)
        self.B.kill()  # before the retry: only the index remembers the failure
        self.A.start()
        self.B.start()
        for rel, data in files.items():
            wait_for(lambda: os.path.exists(self.B.path(rel)) and self.on_b(rel, data), 120,
                     "%s on B after its restart" % rel, self.hosts)

if __name__ == "__main__":
    harness.main()
