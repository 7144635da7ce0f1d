"""A host writes a file it fetches only if its disk keeps a reserve after
(issue 13, item 7): a file's size is what the workspace says, and one small
chunk listed many times is a huge file. A file without room waits, is
reported ("no space") in the status file and the heartbeat, and is written
once there is room."""
import hashlib
import os

from harness import Host, HubTest, q, wait_for

MiB = 1 << 20


class HostSpaceTest(HubTest):
    def test_a_file_too_big_for_the_disk_waits_and_is_reported(self):
        self.hub.login_cli()
        h = Host(self.hub, self.tmp, "S")
        h.join()
        os.makedirs(h.dir, exist_ok=True)
        vfs = os.statvfs(h.dir)
        # a reserve of all the free space: nothing big fits
        h.extra_args = ["--reserve", str(vfs.f_bavail * vfs.f_frsize)]
        h.start()
        try:
            chunk = os.urandom(MiB)
            sha = hashlib.sha256(chunk).hexdigest()
            st, _, payload, _ = self.api("PUT", "/chunks/" + sha, raw=chunk)
            self.assertEqual(st, 201, payload)
            n = 256  # 256 MiB of file from 1 MiB sent
            whole = hashlib.sha256()
            for _ in range(n):
                whole.update(chunk)
            st, _, payload, _ = self.api("POST", "/versions", {
                "path": "/big.bin", "size": n * MiB, "hash": whole.hexdigest(),
                "chunks": [{"hash": sha, "size": MiB}] * n})
            self.assertEqual(st, 201, payload)
            wait_for(lambda: h.status().get("no_space", {}).get("files") == 1,
                     what="the host to report no space for big.bin", hosts=[h])
            self.assertIn("/big.bin", h.status()["no_space_paths"])
            self.assertFalse(os.path.exists(h.path("/big.bin")))

            def hub_sees():
                st, body, _, _ = self.api("GET", "/hosts")
                return st == 200 and any((x.get("no_space") or {}).get("files") == 1
                                         for x in body["hosts"])
            wait_for(hub_sees, what="the heartbeat to carry no_space", hosts=[h])
            with open(h.log_path, "rb") as f:
                self.assertIn(b"no space for /big.bin", f.read())
            # with room, the file is written
            h.stop()
            h.extra_args = ["--reserve", "1M"]
            h.start()
            wait_for(lambda: os.path.exists(h.path("/big.bin")) and
                     os.path.getsize(h.path("/big.bin")) == n * MiB,
                     timeout=120, what="big.bin on the host", hosts=[h])
            wait_for(lambda: h.status().get("no_space", {}).get("files") == 0,
                     what="the report to clear", hosts=[h])
        finally:
            h.stop()


if __name__ == "__main__":
    import harness
    harness.main()
