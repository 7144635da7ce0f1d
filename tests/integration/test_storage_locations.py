"""Where a file's bytes are (docs/api.md, "Locations"): GET locations answers, per
file, the hub's cache and each host's copy against min_replicas; GET
under-replicated lists the files below it. A member learns nothing of a file
they may not read."""
import os
import time

from harness import Host, HubTest, main, q, wait_for

MiB = 1 << 20
PW = "bob password 123"


class LocationsTest(HubTest):
    """A hub with two running hosts, A and B, that hold every folder; /priv is
    hidden from the member bob."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hosts = []
        try:
            cls.hub.login_cli()
            for label in ("A", "B"):
                h = Host(cls.hub, cls.tmp, label)
                cls.hosts.append(h)
                h.join()
                h.start()
            cls.A, cls.B = cls.hosts
            for path in ("/pub", "/priv"):
                cls.call(cls.token, "POST", "/folders", {"path": path, "parents": True})
            st, inv, _, _ = cls.call(cls.token, "POST", "/invites", {"role": "member"})
            st, body, payload, _ = cls.hub.request(
                "POST", "/api/v1/invites/accept",
                {"token": inv["token"], "email": "bob@example.test", "password": PW})
            assert st == 200, payload
            cls.bob, bob_id = body["token"], body["user"]["id"]
            st, _, payload, _ = cls.call(cls.token, "PUT", "/acl",
                                         {"path": "/priv", "user_id": bob_id, "perm": "none"})
            assert st == 200, payload
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for h in cls.hosts:
            h.stop()
        super().tearDownClass()

    @classmethod
    def call(cls, token, method, rel, body=None, **kw):
        return cls.hub.request(method, "/api/v1/workspaces/%d%s" % (cls.ws, rel), body,
                               token=token, **kw)

    def put(self, path, data):
        st, body, payload, _ = self.api("PUT", "/upload?path=" + q(path), raw=data)
        self.assertIn(st, (200, 201), payload)
        return body

    def locations(self, path, token=None, version=None):
        rel = "/locations?path=" + q(path) + ("&version=%d" % version if version else "")
        st, body, payload, _ = self.api("GET", rel, token=token or self.token)
        self.assertEqual(st, 200, payload)
        return body

    def host_entry(self, loc, host):
        return next((h for h in loc["hosts"] if h["label"] == host.label), None)

    def wait_current(self, path, hosts):
        """Until every one of hosts holds the current version of path."""
        def current():
            loc = self.locations(path)
            return all((self.host_entry(loc, h) or {}).get("current") for h in hosts) and loc
        return wait_for(current, 30, lambda: "%s current on %s: %s" % (
            path, [h.label for h in hosts], self.locations(path)), self.hosts)

    def settings(self, **kw):
        st, _, payload, _ = self.api("PATCH", "", kw)
        self.assertEqual(st, 200, payload)

    def under(self, token=None, **args):
        rel = "/under-replicated" + ("?" + "&".join(
            "%s=%s" % (k, q(str(v))) for k, v in args.items()) if args else "")
        st, body, payload, _ = self.api("GET", rel, token=token or self.token)
        self.assertEqual(st, 200, payload)
        return body

    # ---- locations ----

    def test_a_synced_file_is_on_the_hub_and_current_on_both_hosts(self):
        data = os.urandom(3 * MiB)
        self.put("/pub/three.bin", data)
        self.wait_current("/pub/three.bin", self.hosts)
        # A host may still drop and report chunks for a moment (its cache
        # settling after a restart in another test): wait for the counts too.
        loc = wait_for(lambda: (lambda l: l["copies"] == 3 and l)(
            self.locations("/pub/three.bin")), 30,
            lambda: "3 copies: %s" % self.locations("/pub/three.bin"), self.hosts)
        self.assertEqual((loc["path"], loc["version"], loc["size"]), ("/pub/three.bin", 1, len(data)))
        self.assertGreaterEqual(loc["chunks"], 1)
        self.assertEqual(loc["storage"], "hub")
        self.assertEqual(loc["min_replicas"], 2)
        self.assertEqual(loc["hub"], {"chunks_held": loc["chunks"], "bytes_held": len(data),
                                      "counted": True})  # 'hub' mode: the hub's copy counts
        for h in self.hosts:
            e = self.host_entry(loc, h)
            self.assertEqual(e["chunks_held"], loc["chunks"])
            self.assertTrue(e["online"] and e["counted"] and e["current"])
            self.assertEqual(e["state"], "current")
            self.assertFalse(e["has_older"])
            self.assertEqual(e["url"], h.url)
            self.assertIsInstance(e["last_seen"], int)
        self.assertEqual(loc["copies"], 3)  # the hub's and both hosts'
        self.assertFalse(loc["below_min"])

    def test_a_host_that_missed_the_new_version_holds_a_stale_copy(self):
        first = os.urandom(2 * MiB)
        self.put("/pub/edit.bin", first)
        self.wait_current("/pub/edit.bin", self.hosts)
        self.B.stop()
        try:
            self.put("/pub/edit.bin", os.urandom(2 * MiB))
            loc = self.wait_current("/pub/edit.bin", [self.A])
            b = self.host_entry(loc, self.B)
            self.assertEqual((b["current"], b["has_older"], b["state"]), (False, True, "stale"))
            self.assertEqual(b["chunks_held"], 0)
            self.assertEqual(loc["version"], 2)
            # the hub's and A's (a replica report in flight can dip it for a moment)
            wait_for(lambda: self.locations("/pub/edit.bin")["copies"] == 2, 30,
                     "2 copies of version 2", [self.A])
            old = self.locations("/pub/edit.bin", version=1)
            self.assertEqual(old["version"], 1)
            self.assertTrue(self.host_entry(old, self.B)["current"])
        finally:
            self.B.start()
        self.wait_current("/pub/edit.bin", self.hosts)

    def test_a_host_going_offline_is_shown_offline_and_stops_counting_after_the_grace(self):
        self.put("/pub/off.bin", os.urandom(MiB))
        self.wait_current("/pub/off.bin", self.hosts)
        self.B.stop()
        try:
            loc = wait_for(lambda: (lambda l: not self.host_entry(l, self.B)["online"] and l)(
                self.locations("/pub/off.bin")), 30, "B shown offline")
            # Within replica_grace_s an offline host's copies still count, as
            # the replicate job counts them.
            self.assertTrue(self.host_entry(loc, self.B)["counted"])
            self.assertEqual(loc["copies"], 3)
            self.settings(replica_grace_s=1)
            # (A heartbeat B sent as it stopped may land after its last one and
            # show it online for three intervals more: wait for both.)
            loc = wait_for(lambda: (lambda l, b: l["copies"] == 2 and not b["online"] and not
                                    b["counted"] and l)(
                *(lambda l: (l, self.host_entry(l, self.B)))(self.locations("/pub/off.bin"))), 30,
                lambda: "B offline, its copy no longer counted: %s" % self.locations(
                    "/pub/off.bin"))
            b = self.host_entry(loc, self.B)
            self.assertEqual((b["counted"], b["online"]), (False, False), loc)
            self.assertTrue(b["current"])  # it still holds the bytes
            self.settings(min_replicas=3)
            self.assertTrue(self.locations("/pub/off.bin")["below_min"])
            self.assertIn("/pub/off.bin", [f["path"] for f in self.under(limit=1000)["files"]])
        finally:
            self.settings(replica_grace_s=3600, min_replicas=2)
            self.B.start()
        loc = wait_for(lambda: (lambda l: self.host_entry(l, self.B)["online"] and l)(
            self.locations("/pub/off.bin")), 30, "B back online")
        self.assertEqual(loc["copies"], 3)
        self.assertFalse(loc["below_min"])

    def test_an_empty_file_has_no_chunks_and_is_never_below_min(self):
        self.put("/pub/empty.txt", b"")
        loc = self.locations("/pub/empty.txt")
        self.assertEqual((loc["chunks"], loc["copies"], loc["below_min"]), (0, None, False))
        self.assertEqual(loc["hub"], {"chunks_held": 0, "bytes_held": 0, "counted": True})

    def test_bad_requests_are_refused(self):
        self.assertError(self.api("GET", "/locations"), 400)
        self.assertError(self.api("GET", "/locations?path=%2Fpub%2Fx&version=0"), 400,
                         "invalid_request")
        self.assertError(self.api("GET", "/under-replicated?limit=0"), 400, "invalid_request")
        self.assertError(self.api("GET", "/under-replicated?limit=1001"), 400, "invalid_request")
        self.assertError(self.api("GET", "/locations?path=%2Fnope"), 404, "not_found")

    # ---- what a member may not read ----

    def test_a_hidden_file_is_answered_as_a_missing_one(self):
        self.put("/priv/secret.txt", b"secret bytes")
        self.locations("/priv/secret.txt")  # the owner sees it
        hidden = self.api("GET", "/locations?path=" + q("/priv/secret.txt"), token=self.bob)
        missing = self.api("GET", "/locations?path=" + q("/priv/nothere.txt"), token=self.bob)
        self.assertEqual((hidden[0], missing[0]), (404, 404))
        self.assertEqual(hidden[1]["error"]["code"], missing[1]["error"]["code"])
        self.assertEqual(hidden[1]["error"]["message"].replace("secret", "nothere"),
                         missing[1]["error"]["message"])
        self.put("/pub/bob.txt", b"bob may read this")
        self.assertEqual(self.locations("/pub/bob.txt", token=self.bob)["path"], "/pub/bob.txt")

    def test_the_under_replicated_list_leaves_out_what_a_member_may_not_read(self):
        self.put("/priv/u.txt", b"private")
        self.put("/pub/u.txt", b"public")
        self.settings(min_replicas=10)  # every file is below it
        try:
            mine = self.under(limit=1000)
            bobs = self.under(token=self.bob, limit=1000)
        finally:
            self.settings(min_replicas=2)
        paths = [f["path"] for f in mine["files"]]
        self.assertIn("/priv/u.txt", paths)
        self.assertIn("/pub/u.txt", paths)
        self.assertEqual(mine["total"], len(paths))
        bob_paths = [f["path"] for f in bobs["files"]]
        self.assertIn("/pub/u.txt", bob_paths)
        self.assertFalse([p for p in bob_paths if p.startswith("/priv/")], bob_paths)
        self.assertEqual(bobs["total"], len(bob_paths))
        self.assertEqual(bobs["min_replicas"], 10)

    def test_the_under_replicated_list_pages_by_path(self):
        for i in range(5):
            self.put("/pub/page/f%d.txt" % i, b"page %d" % i)
        self.settings(min_replicas=10)
        try:
            whole = self.under(limit=1000)
            got, after = [], None
            while True:
                page = self.under(limit=2, **({"after": after} if after else {}))
                self.assertLessEqual(len(page["files"]), 2)
                self.assertEqual(page["total"], whole["total"])
                got += page["files"]
                after = page["next"]
                if not after:
                    break
        finally:
            self.settings(min_replicas=2)
        # The pages put together are the whole list. Not the copy counts: a host may
        # finish fetching a file between the whole list and a page.
        def files(fs):
            return [(f["path"], f["version"], f["size"]) for f in fs]
        self.assertEqual(files(got), files(whole["files"]))
        self.assertEqual([f["path"] for f in got], sorted(f["path"] for f in got))
        for f in got:
            self.assertLess(f["copies"], 10)
        # With min_replicas 2, once hosts hold them, no file is below it.
        wait_for(lambda: self.under()["files"] == [], 30,
                 lambda: "no file below min_replicas 2: %s" % self.under(), self.hosts)

    def test_a_file_whose_chunks_the_hub_lost_is_below_min_until_hosts_hold_it(self):
        """The hub's copies gone (a hosts-mode cache eviction, say): only hosts count."""
        self.put("/pub/lost.bin", os.urandom(MiB))
        self.wait_current("/pub/lost.bin", self.hosts)
        vid = self.hub.sql(
            "SELECT f.current_version_id FROM files f JOIN folders d ON d.id = f.folder_id "
            "WHERE d.path = '/pub' AND f.name = 'lost.bin' AND f.deleted_at IS NULL")[0][0]
        self.hub.sql("UPDATE chunk_replicas SET state = 'released' WHERE holder = 'hub' AND "
                     "chunk_hash IN (SELECT chunk_hash FROM version_chunks WHERE version_id = ?)",
                     (vid,))
        try:
            loc = self.locations("/pub/lost.bin")
            self.assertEqual(loc["hub"]["chunks_held"], 0)
            self.assertEqual(loc["copies"], 2)
            self.settings(min_replicas=3)
            files = self.under(limit=1000)["files"]
            self.assertIn({"path": "/pub/lost.bin", "version": 1, "size": MiB, "copies": 2},
                          files)
        finally:
            self.settings(min_replicas=2)
            self.hub.sql("UPDATE chunk_replicas SET state = 'ok' WHERE holder = 'hub' AND "
                         "chunk_hash IN (SELECT chunk_hash FROM version_chunks WHERE "
                         "version_id = ?)", (vid,))


class UnderReplicatedScaleTest(HubTest):
    """10,000 files, every one below min_replicas: one page answers quickly."""

    N = 10000

    def test_ten_thousand_files_answer_in_one_query(self):
        ws = self.ws
        self.api("POST", "/folders", {"path": "/many", "parents": True})
        fid = self.hub.sql("SELECT id FROM folders WHERE workspace_id = ? AND path = '/many'",
                           (ws,))[0][0]
        now = int(time.time() * 1000)
        gen = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d) "
               % self.N)
        hexof = ("substr('0000000000000000000000000000000000000000000000000000000000000000' || "
                 "CAST(i AS TEXT), -64, 64)" if self.hub.backend == "sqlite"
                 else "lpad(CAST(i AS TEXT), 64, '0')")  # a distinct fake hash per i
        self.hub.sql(gen + "INSERT INTO chunks(hash, size, refcount, created_at) SELECT %s, "
                     "100, 1, %d FROM n" % (hexof, now))
        self.hub.sql(gen + "INSERT INTO files(workspace_id, folder_id, name, size, created_at, "
                     "updated_at) SELECT %d, %d, 'f' || CAST(i AS TEXT), 100, %d, %d FROM n"
                     % (ws, fid, now, now))
        self.hub.sql("INSERT INTO file_versions(file_id, number, hash, size, created_at) "
                     "SELECT id, 1, 'x', 100, %d FROM files WHERE folder_id = %d" % (now, fid))
        self.hub.sql("UPDATE files SET current_version_id = (SELECT v.id FROM file_versions v "
                     "WHERE v.file_id = files.id) WHERE folder_id = %d" % fid)
        self.hub.sql(gen +
                     "INSERT INTO version_chunks(version_id, idx, chunk_hash, chunk_offset, size) "
                     "SELECT v.id, 0, %s, 0, 100 FROM n JOIN files f ON f.name = 'f' || "
                     "CAST(i AS TEXT) AND f.folder_id = %d JOIN file_versions v ON v.file_id = "
                     "f.id" % (hexof, fid))
        self.hub.sql("INSERT INTO workspace_chunks(workspace_id, chunk_hash, touched_at) SELECT "
                     "%d, chunk_hash, %d FROM version_chunks vc JOIN file_versions v ON v.id = "
                     "vc.version_id JOIN files f ON f.id = v.file_id WHERE f.folder_id = %d"
                     % (ws, now, fid))
        t0 = time.monotonic()
        st, body, payload, _ = self.api("GET", "/under-replicated?limit=100")
        took = time.monotonic() - t0
        self.assertEqual(st, 200, payload[:300])
        self.assertEqual(body["total"], self.N)
        self.assertEqual(len(body["files"]), 100)
        self.assertEqual(body["files"][0]["copies"], 0)
        t0 = time.monotonic()
        st, loc, payload, _ = self.api("GET", "/locations?path=" + q("/many/f77"))
        took_one = time.monotonic() - t0
        self.assertEqual(st, 200, payload[:300])
        self.assertEqual((loc["copies"], loc["below_min"]), (0, True))
        print("\nunder-replicated over %d files: %.3f s; locations of one: %.3f s (%s)"
              % (self.N, took, took_one, self.hub.backend))
        self.assertLess(took, 5.0)


if __name__ == "__main__":
    main()
