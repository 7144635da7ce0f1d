"""roost workspace show / set KEY VALUE (issue 17): every setting PATCH takes
is shown and settable from the CLI with units (10GiB, 7d); the hub validates,
and a refused value changes nothing. Chunk sizes are settable (powers of two,
min < avg < max) and the next upload, by the CLI or a host (from the
workspace.updated event), cuts chunks by them."""
import json
import os

import harness
from harness import HubTest, Host, q, wait_for

GiB = 1 << 30


class WorkspaceSettingsTest(HubTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hub.login_cli()

    def settings(self):
        st, body, payload, _ = self.api("GET", "")
        self.assertEqual(st, 200, payload)
        return body

    def set(self, key, value):
        return self.roost("workspace", "set", key, value)

    def chunk_sizes(self, path):
        parent, name = path.rsplit("/", 1)
        rows = self.hub.sql(
            "SELECT vc.size FROM version_chunks vc JOIN files f ON f.current_version_id = "
            "vc.version_id JOIN folders d ON d.id = f.folder_id WHERE d.path = ? AND f.name = ? "
            "AND f.deleted_at IS NULL ORDER BY vc.idx", (parent or "/", name))
        return [r[0] for r in rows]

    def test_show_prints_every_setting(self):
        p = self.roost("workspace", "show")
        self.assertEqual(p.returncode, 0, p.err)
        self.assertTrue(p.out.startswith("workspace default (id %d), your role: owner\n" % self.ws),
                        p.out)
        for key in ("name", "default_access", "storage", "quota_bytes", "max_file_bytes",
                    "keep_versions", "keep_days", "trash_days", "gc_retention_s",
                    "min_replicas", "replica_grace_s", "hub_cache_bytes", "chunk_min",
                    "chunk_avg", "chunk_max", "oidc_domains", "oidc_default_role"):
            self.assertIn("\n  %s " % key, p.out)
        self.assertIn("1.0 MiB (1048576 bytes)", p.out)  # chunk_avg's default
        self.assertIn("7d (604800 s)", p.out)  # gc_retention_s's default
        p = self.roost("workspace", "show", "--json")
        self.assertEqual(json.loads(p.out), self.settings())

    def test_set_takes_every_key_with_units(self):
        before = self.settings()
        cases = [
            ("quota_bytes", "10GiB", 10 * GiB),
            ("max_file_bytes", "512M", 512 << 20),
            ("keep_versions", "5", 5),
            ("keep_days", "30d", 30),
            ("trash_days", "14", 14),
            ("gc_retention_s", "2d", 2 * 86400),
            ("min_replicas", "3", 3),
            ("replica_grace_s", "1h", 3600),
            ("hub_cache_bytes", "2G", 2 * GiB),
            ("default_access", "read", "read"),
            ("storage", "hosts", "hosts"),
            ("oidc_domains", "example.org,example.net", ["example.org", "example.net"]),
            ("oidc_default_role", "admin", "admin"),
        ]
        try:
            for key, text, want in cases:
                p = self.set(key, text)
                self.assertEqual(p.returncode, 0, p.err)
                self.assertTrue(p.out.startswith("workspace default: %s is now " % key), p.out)
                self.assertEqual(self.settings()[key], want, key)
            p = self.set("quota_bytes", "none")
            self.assertEqual(p.out, "workspace default: quota_bytes is now 0 (no quota)\n")
            self.assertEqual(self.settings()["quota_bytes"], 0)
            p = self.set("name", "renamed")
            self.assertEqual(p.returncode, 0, p.err)
            self.assertEqual(self.settings()["name"], "renamed")
            p = self.roost("workspace", "set", "name", "default", "-w", "renamed")
            self.assertEqual(p.returncode, 0, p.err)
        finally:
            body = {k: before[k] for k, _, _ in cases}
            st, _, payload, _ = self.api("PATCH", "", body)
            self.assertEqual(st, 200, payload)
        self.assertEqual(self.settings(), before)

    def test_bad_values_are_refused_and_change_nothing(self):
        before = self.settings()
        # the CLI cannot read them: nothing is sent
        for key, value in (("quota_bytes", "ten"), ("keep_days", "3h"), ("gc_retention_s", "7y"),
                           ("min_replicas", "three"), ("chunk_avg", "1.5")):
            p = self.set(key, value)
            self.assertEqual(p.returncode, 2, (key, value, p.err))
            self.assertIn(key, p.err)
            self.assertIn(value, p.err)
        p = self.set("colour", "blue")
        self.assertEqual(p.returncode, 2)
        self.assertIn("no setting 'colour'", p.err)
        self.assertIn("chunk_max", p.err)
        # the hub refuses them: its message, exit 1
        for key, value, words in (("trash_days", "0", "trash_days takes a whole number in 1.."),
                                  ("min_replicas", "11", "min_replicas"),
                                  ("default_access", "manage", "default_access"),
                                  ("storage", "cloud", "storage"),
                                  ("chunk_avg", "3000", "powers of two"),
                                  ("chunk_min", "4M", "chunk_min < chunk_avg < chunk_max"),
                                  ("chunk_max", "128M", "powers of two"),
                                  ("chunk_min", "32", "powers of two")):
            p = self.set(key, value)
            self.assertEqual(p.returncode, 1, (key, value, p.out))
            self.assertIn(words, p.err)
            self.assertEqual(p.out, "")
        self.assertEqual(self.settings(), before)

    def test_a_member_may_not_change_settings(self):
        st, inv, _, _ = self.api("POST", "/invites", {"role": "member"})
        st, body, payload, _ = self.hub.request(
            "POST", "/api/v1/invites/accept",
            {"token": inv["token"], "email": "plain@example.test", "password": "member pw 1"})
        self.assertEqual(st, 200, payload)
        before = self.settings()
        self.assertError(self.api("PATCH", "", {"chunk_avg": 65536}, token=body["token"]), 403,
                         "forbidden")
        self.assertEqual(self.settings(), before)

    def test_new_chunk_sizes_cut_the_next_put_and_a_hosts_next_commit(self):
        host = Host(self.hub, self.tmp, "chunky")
        host.join()
        host.start()
        data = os.urandom(1 << 20)
        src = os.path.join(self.tmp, "big.bin")
        with open(src, "wb") as f:
            f.write(data)
        try:
            for key, value in (("chunk_min", "16K"), ("chunk_avg", "64K"),
                               ("chunk_max", "256K")):
                p = self.set(key, value)
                self.assertEqual(p.returncode, 0, p.err)
                self.assertIn("new uploads use it", p.out)
            s = self.settings()
            self.assertEqual((s["chunk_min"], s["chunk_avg"], s["chunk_max"]),
                             (16384, 65536, 262144))
            p = self.roost("put", src, "/cut/by-cli.bin")
            self.assertEqual(p.returncode, 0, p.err)
            sizes = self.chunk_sizes("/cut/by-cli.bin")
            self.assertEqual(sum(sizes), len(data))
            self.assertGreaterEqual(len(sizes), 4)
            self.assertTrue(all(n <= 262144 for n in sizes), sizes)
            wait_for(lambda: "chunk sizes are now 16384 / 65536 / 262144" in host.log_tail(200),
                     what="the host to take the new sizes", hosts=[host])
            with open(host.path("/cut/by-host.bin"), "wb") as f:
                f.write(data)
            wait_for(lambda: sum(self.chunk_sizes("/cut/by-host.bin")) == len(data),
                     timeout=60, what="the host's commit", hosts=[host])
            sizes = self.chunk_sizes("/cut/by-host.bin")
            self.assertGreaterEqual(len(sizes), 4)
            self.assertTrue(all(n <= 262144 for n in sizes), sizes)
        finally:
            host.stop()
            st, _, payload, _ = self.api("PATCH", "", {"chunk_min": 262144,
                                                       "chunk_avg": 1048576,
                                                       "chunk_max": 4194304})
            self.assertEqual(st, 200, payload)


if __name__ == "__main__":
    harness.main()
