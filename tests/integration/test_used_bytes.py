"""A workspace's used bytes (the quota's measure, GET usage's logical_bytes) is a
running total the database keeps (migration 19's triggers), not a sum of every
version per request: after every way versions and files change it equals the
sum computed from the database itself, and a database from before it is filled
on upgrade."""
import hashlib
import json
import subprocess

import harness
from harness import Host, HubTest, q, wait_for


def sha(b):
    return hashlib.sha256(b).hexdigest()


def commit(path, data):
    return {"path": path, "size": len(data), "hash": sha(data),
            "chunks": [{"hash": sha(data), "size": len(data)}]}


SUM_SQL = ("SELECT COALESCE(SUM(v.size), 0) FROM file_versions v JOIN files f ON "
           "f.id = v.file_id WHERE f.workspace_id = ? AND f.deleted_at IS NULL")


class UsedBytesTest(HubTest):
    def setUp(self):
        self.step = 0

    def summed(self, ws=None):
        return self.hub.sql(SUM_SQL, (ws or self.ws,))[0][0]

    def kept(self, ws=None):
        return self.hub.sql("SELECT used_bytes FROM workspace_counters WHERE workspace_id = ?",
                            (ws or self.ws,))[0][0]

    def used(self):
        st, body, payload, _ = self.api("GET", "/usage")
        self.assertEqual(st, 200, payload)
        return body["logical_bytes"]

    def check(self, what, expect=None):
        """The hub's figure equals the database's own sum (and, when given, what
        the test expects it to be by now)."""
        summed = self.summed()
        self.assertEqual(self.used(), summed, what)
        self.assertEqual(self.kept(), summed, what)
        if expect is not None:
            self.assertEqual(summed, expect, what)
        for (ws,) in self.hub.sql("SELECT id FROM workspaces"):
            self.assertEqual(self.kept(ws), self.summed(ws), "%s: workspace %d" % (what, ws))
        return summed

    def put(self, path, data):
        st, _, payload, _ = self.api("PUT", "/upload?path=" + q(path), raw=data)
        self.assertEqual(st, 201, payload)

    def admin(self, *args):
        p = subprocess.run([harness.ROOST, "admin", *args, "--data", self.hub.data,
                            *self.hub.db_args()], env=self.hub.env(), capture_output=True,
                           timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        return p.stdout.decode()

    def settings(self, **body):
        st, _, payload, _ = self.api("PATCH", "", body)
        self.assertEqual(st, 200, payload)

    def trash_id(self, path):
        st, trash, payload, _ = self.api("GET", "/trash")
        self.assertEqual(st, 200, payload)
        return [e for e in trash["entries"] if e["path"] == path][0]["id"]

    def test_every_path_keeps_the_total_exact(self):
        base = self.check("at the start")
        self.put("/a.bin", b"a" * 1000)
        base = self.check("put", base + 1000)
        self.put("/a.bin", b"A" * 1500)
        base = self.check("a new version", base + 1500)
        self.put("/dir/sub/b.bin", b"b" * 700)
        self.put("/dir/c.bin", b"c" * 300)
        base = self.check("puts in a folder", base + 1000)

        self.assertEqual(self.api("DELETE", "/files?path=" + q("/a.bin"))[0], 200)
        base = self.check("trash a file", base - 2500)
        self.assertEqual(self.api("DELETE", "/files?path=" + q("/dir"))[0], 200)
        base = self.check("trash a folder", base - 1000)
        st, _, payload, _ = self.api("POST", "/trash/restore", {"id": self.trash_id("/a.bin")})
        self.assertEqual(st, 200, payload)
        base = self.check("restore a file", base + 2500)
        st, _, payload, _ = self.api("POST", "/trash/restore",
                                     {"id": self.trash_id("/dir/sub/b.bin")})
        self.assertEqual(st, 200, payload)
        base = self.check("restore a file of a trashed folder", base + 700)

        # trash empty of one entry, then of all: trashed bytes never counted
        st, body, payload, _ = self.api("POST", "/trash/empty",
                                        {"id": self.trash_id("/dir/c.bin")})
        self.assertEqual((st, body.get("purged")), (200, 1), payload)
        base = self.check("trash empty of one entry", base)
        self.put("/gone.bin", b"g" * 400)
        self.assertEqual(self.api("DELETE", "/files?path=" + q("/gone.bin"))[0], 200)
        st, body, payload, _ = self.api("POST", "/trash/empty", {})
        self.assertEqual(st, 200, payload)
        self.assertGreaterEqual(body["purged"], 1)
        base = self.check("trash empty", base)
        self.assertEqual(self.hub.sql("SELECT COUNT(*) FROM files WHERE workspace_id = ? AND "
                                      "deleted_at IS NOT NULL AND purged_at IS NULL",
                                      (self.ws,))[0][0], 0)

        # permanent delete of a live file and of a live folder
        self.put("/perm.bin", b"p" * 600)
        base = self.check("put before a permanent delete", base + 600)
        st, _, payload, _ = self.api("DELETE", "/files?path=" + q("/perm.bin") + "&permanent=1")
        self.assertEqual(st, 200, payload)
        base = self.check("permanent delete of a file", base - 600)
        self.put("/pdir/x.bin", b"x" * 250)
        base = self.check("put in a folder", base + 250)
        st, _, payload, _ = self.api("DELETE", "/files?path=" + q("/pdir") + "&permanent=1")
        self.assertEqual(st, 200, payload)
        base = self.check("permanent delete of a folder", base - 250)

        # versions pruned by keep_versions, then by keep_days
        for i in range(1, 5):
            self.put("/keep.txt", b"%d" % i * (100 * i))
        base = self.check("four versions", base + 100 + 200 + 300 + 400)
        self.settings(keep_versions=2)
        try:
            res = json.loads(self.admin("gc", "--json"))
            self.assertEqual(res["versions_expired"], 2, res)
        finally:
            self.settings(keep_versions=0)
        base = self.check("versions pruned by keep_versions", base - 300)
        self.put("/keep.txt", b"5" * 50)
        base = self.check("a fifth version", base + 50)
        old = self.hub.sql("SELECT MIN(v.created_at) FROM file_versions v JOIN files f ON "
                           "f.id = v.file_id WHERE f.workspace_id = ?", (self.ws,))[0][0]
        self.hub.sql("UPDATE file_versions SET created_at = ? WHERE file_id = (SELECT id FROM "
                     "files WHERE name = 'keep.txt' AND deleted_at IS NULL) AND number < 5",
                     (old - 30 * 86400000,))
        self.settings(keep_days=1)
        try:
            res = json.loads(self.admin("gc", "--json"))
            self.assertGreaterEqual(res["versions_expired"], 2, res)
        finally:
            self.settings(keep_days=0)
        base = self.check("versions pruned by keep_days", base - 300 - 400)

        # the batch commit
        datas = [b"one" * 111, b"two" * 222, b"three" * 33]
        for d in datas:
            st, _, payload, _ = self.api("PUT", "/chunks/" + sha(d), raw=d)
            self.assertIn(st, (200, 201), payload)
        st, body, payload, _ = self.api("POST", "/versions/batch", {"versions": [
            commit("/batch/%d.bin" % i, d) for i, d in enumerate(datas)]})
        self.assertEqual(st, 200, payload)
        self.assertEqual([r["status"] for r in body["results"]], [201] * 3, body)
        base = self.check("batch commit", base + sum(map(len, datas)))

        # a host's commit
        self.hub.login_cli()
        laptop = Host(self.hub, self.tmp, "laptop")
        laptop.join()
        laptop.start()
        try:
            with open(laptop.path("/from-host.txt"), "wb") as f:
                f.write(b"h" * 1234)
            wait_for(lambda: self.api("GET", "/versions?path=" + q("/from-host.txt"))[0] == 200,
                     60, "the host's commit", [laptop])
        finally:
            laptop.stop()
        base = self.check("host commit", base + 1234)

        # a deleted workspace's files purged by GC: its total goes with them
        st, made, payload, _ = self.hub.request("POST", "/api/v1/workspaces",
                                                {"name": "doomed"}, token=self.token)
        self.assertIn(st, (200, 201), payload)
        other = made.get("id") or made["workspace"]["id"]
        st, _, payload, _ = self.hub.request("PUT", "/api/v1/workspaces/%d/upload?path=%s" % (
            other, q("/d.bin")), token=self.token, raw=b"d" * 900)
        self.assertEqual(st, 201, payload)
        self.assertEqual(self.kept(other), 900)
        st, _, payload, _ = self.hub.request("DELETE", "/api/v1/workspaces/%d" % other,
                                             {"confirm": "doomed"}, token=self.token)
        self.assertEqual(st, 200, payload)
        self.admin("gc", "--json")
        self.assertEqual(self.kept(other), self.summed(other))
        self.check("workspace deleted and purged", base)

        # the quota reads the kept total: a commit just over it is refused
        self.settings(quota_bytes=base + 100)
        try:
            self.assertError(self.api("PUT", "/upload?path=" + q("/over.bin"), raw=b"o" * 101),
                             507, "quota_exceeded")
            self.check("a refused commit", base)
            self.put("/fits.bin", b"f" * 100)
            self.check("a commit that fits", base + 100)
        finally:
            self.settings(quota_bytes=0)

    def test_commits_racing_gc_and_the_trash_keep_it_exact(self):
        """Writers committing new versions while GC prunes them (keep_versions=1) and
        another client trashes and restores: every request succeeds (no deadlock
        between GC, which takes no workspace lock of its own, and the commits) and
        the total is exact afterwards."""
        import threading
        errors = []

        def writer(n):
            for i in range(15):
                st, _, payload, _ = self.api("PUT", "/upload?path=" + q("/race/%d.bin" % n),
                                             raw=b"%d" % n * (100 + 37 * (i % 2)))  # chunks shared with the versions GC drops
                if st != 201:
                    errors.append((st, payload))

        def trasher():
            for i in range(8):
                self.put("/race/t.bin", b"t" * (10 + i))
                if self.api("DELETE", "/files?path=" + q("/race/t.bin"))[0] != 200:
                    errors.append("trash")
                    continue
                st, _, payload, _ = self.api("POST", "/trash/restore",
                                             {"id": self.trash_id("/race/t.bin")})
                if st != 200:
                    errors.append((st, payload))

        self.settings(keep_versions=1)
        try:
            threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
            threads.append(threading.Thread(target=trasher))
            for t in threads:
                t.start()
            expired = 0
            try:
                while any(t.is_alive() for t in threads):
                    expired += json.loads(self.admin("gc", "--json"))["versions_expired"]
            finally:  # no writer outlives the test, even a failed one
                for t in threads:
                    t.join()
            expired += json.loads(self.admin("gc", "--json"))["versions_expired"]
        finally:
            self.settings(keep_versions=0)
        self.assertEqual(errors, [])
        self.assertGreater(expired, 0)
        self.check("after the race")

    def test_the_migration_fills_the_total_of_an_older_database(self):
        self.put("/m1.bin", b"m" * 3000)
        self.put("/m1.bin", b"n" * 2000)
        self.put("/m2.bin", b"o" * 500)
        self.assertEqual(self.api("DELETE", "/files?path=" + q("/m2.bin"))[0], 200)
        want = self.summed()
        self.assertGreaterEqual(want, 5000)
        st, listed, payload, _ = self.api("GET", "/list?path=%2F")
        self.assertEqual(st, 200, payload)
        self.assertIn("m1.bin", [e["name"] for e in listed["entries"]])
        # Take the database back to before migration 19 (and the later ones: 20
        # moved the counters to a table of their own, 21 put the current
        # version's figures on the file's row), then start the hub again.
        self.hub.stop()
        if self.hub.backend == "postgres":
            self.hub.sql("DROP FUNCTION roost_used_version() CASCADE")
            self.hub.sql("DROP FUNCTION roost_used_file() CASCADE")
            self.hub.sql("DROP FUNCTION roost_workspace_counters() CASCADE")
        else:
            for t in ("used_version_ins", "used_version_del", "used_version_upd",
                      "used_file_upd", "used_file_del", "workspace_counters_ins"):
                self.hub.sql("DROP TRIGGER " + t)
        self.hub.sql("ALTER TABLE workspaces ADD COLUMN last_seq BIGINT NOT NULL DEFAULT 0")
        self.hub.sql("UPDATE workspaces SET last_seq = (SELECT last_seq FROM "
                     "workspace_counters WHERE workspace_id = workspaces.id)")
        self.hub.sql("DROP TABLE workspace_counters")
        for col in ("version_number", "version_hash", "version_at", "version_by"):  # 21
            self.hub.sql("ALTER TABLE files DROP COLUMN " + col)
        self.hub.sql("DROP INDEX chunk_replicas_holder")  # 22
        self.hub.sql("DELETE FROM schema_migrations WHERE version >= 19")
        self.hub.start()
        self.assertEqual(self.kept(), want)
        self.assertEqual(self.used(), want)
        # the listing reads the file's row now: the migration filled it
        st, body, payload, _ = self.api("GET", "/list?path=%2F")
        self.assertEqual(st, 200, payload)
        self.assertEqual(body["entries"], listed["entries"])
        self.put("/m3.bin", b"p" * 10)
        self.assertEqual(self.used(), want + 10)
        self.assertEqual(self.summed(), want + 10)


if __name__ == "__main__":
    harness.main()
