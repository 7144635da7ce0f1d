"""roost host pause|resume (docs/host.md): a paused agent sends nothing to the
hub and applies nothing from it, but keeps its heartbeats and its content
server; the pause is in the folder's state and survives a restart; resume
syncs what changed meanwhile on both sides."""
import hashlib
import json
import os
import time

import harness
from harness import Host, HubTest, q, wait_for


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


class HostPauseTest(HubTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hub.login_cli()
        cls.A = Host(cls.hub, cls.tmp, "A")
        cls.A.join()
        cls.A.start()

    def on_hub(self, path):
        st, body, _, _ = self.api("GET", "/info?path=" + q(path))
        return body if st == 200 else None

    def host_cmd(self, *args):
        p = self.roost("host", *args, "--dir", self.A.dir)
        return p

    def last_seen(self):
        st, body, _, _ = self.api("GET", "/hosts")
        self.assertEqual(st, 200)
        return body["hosts"][0]

    def test_pause_stops_syncing_both_ways_and_resume_catches_up(self):
        write(self.A.path("before.txt"), b"before")
        wait_for(lambda: self.on_hub("/before.txt"), 60, "before.txt on the hub", [self.A])

        p = self.host_cmd("pause")
        self.assertEqual(p.returncode, 0, p.err)
        self.assertIn("paused", p.out)
        wait_for(lambda: self.A.status().get("state") == "paused", 30,
                 "the agent to say it is paused", [self.A])
        p = self.host_cmd("status")
        self.assertIn("paused: nothing is sent or applied", p.out)

        # a local file stays local; a remote one stays remote
        write(self.A.path("local.txt"), b"made while paused")
        src = os.path.join(self.tmp, "remote.txt")
        write(src, b"put while paused")
        self.assertEqual(self.roost("put", src, "/remote.txt").returncode, 0)
        seen = self.A.status()["updated_at"]
        # heartbeats and the content server go on
        wait_for(lambda: self.A.status()["updated_at"] > seen, 30, "a heartbeat", [self.A])
        time.sleep(3)
        self.assertIsNone(self.on_hub("/local.txt"), "a paused host uploaded")
        self.assertFalse(os.path.exists(self.A.path("remote.txt")), "a paused host applied")
        self.assertEqual(self.last_seen()["status"], "online")
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.A.port, timeout=10)
        conn.request("GET", "/healthz")
        self.assertEqual(conn.getresponse().status, 200)
        conn.close()

        # the pause outlives the agent
        self.A.restart()
        self.assertTrue(self.A.status()["paused"])
        time.sleep(3)
        self.assertIsNone(self.on_hub("/local.txt"), "a restarted paused host uploaded")
        self.assertFalse(os.path.exists(self.A.path("remote.txt")))

        p = self.host_cmd("resume")
        self.assertEqual(p.returncode, 0, p.err)
        self.assertIn("resumed", p.out)
        wait_for(lambda: self.on_hub("/local.txt"), 60, "local.txt on the hub", [self.A])
        wait_for(lambda: os.path.exists(self.A.path("remote.txt")), 60,
                 "remote.txt in the folder", [self.A])
        with open(self.A.path("remote.txt"), "rb") as f:
            self.assertEqual(f.read(), b"put while paused")
        self.assertFalse(self.A.status()["paused"])

    def test_pause_twice_and_bad_folders(self):
        self.assertEqual(self.host_cmd("pause").returncode, 0)
        p = self.host_cmd("pause")
        self.assertEqual(p.returncode, 0)
        self.assertIn("already", p.out)
        self.assertEqual(self.host_cmd("resume").returncode, 0)
        p = self.roost("host", "pause", "--dir", self.tmp)
        self.assertEqual(p.returncode, 1)
        self.assertIn("is not a joined host folder", p.err)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, ".roost", "paused")))
        p = self.roost("host", "resume")
        self.assertEqual(p.returncode, 2)
        self.assertIn("usage: roost host resume --dir DIR", p.err)


MiB = 1 << 20


class HostBandwidthTest(HubTest):
    """--max-up and --max-down: one budget for all of the agent's transfers."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hub.login_cli()
        cls.A = Host(cls.hub, cls.tmp, "A")
        cls.A.extra_args = ["--max-up", "1MiB/s", "--max-down", "1MiB/s"]
        cls.A.join()
        cls.A.start()

    def on_hub(self, path):
        st, body, _, _ = self.api("GET", "/info?path=" + q(path))
        return body if st == 200 else None

    def test_uploads_together_keep_to_the_limit(self):
        started = time.time()
        for name in ("up1.bin", "up2.bin"):  # 4 MiB in all, at once
            write(self.A.path(name), os.urandom(2 * MiB))
        for name in ("/up1.bin", "/up2.bin"):
            wait_for(lambda: self.on_hub(name), 120, name + " on the hub", [self.A])
        took = time.time() - started
        # 4 MiB at 1 MiB/s, less a quarter second's burst
        self.assertGreater(took, 3.5)

    def test_downloads_keep_to_the_limit(self):
        data = os.urandom(4 * MiB)
        # Through the hub's API: `roost put` may send chunks to the host itself.
        started = time.time()  # the host may start as soon as the commit
        st, _, payload, _ = self.api("PUT", "/upload?path=" + q("/down.bin"), raw=data)
        self.assertEqual(st, 201, payload)
        local = self.A.path("down.bin")

        def whole():
            if not os.path.exists(local):
                return False
            with open(local, "rb") as f:
                return hashlib.sha256(f.read()).digest() == hashlib.sha256(data).digest()
        wait_for(whole, 120, "down.bin in the folder", [self.A])
        took = time.time() - started
        self.assertGreater(took, 3.5)

    def test_a_bad_rate_is_refused(self):
        p = self.roost("host", "run", "--dir", self.A.dir, "--max-up", "fast")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--max-up takes bytes per second", p.err)


if __name__ == "__main__":
    harness.main()
