"""The access matrix of docs/access.md: for each role and ACL case, each endpoint
answers allowed, 403 or 404 as specified, and nothing else changes."""
import harness
from harness import HubTest, q
from test_feed import Stream

PW = "member password 1"


class AccessTest(HubTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for path in ("/pub", "/priv", "/team/sub"):
            cls.call(cls.token, "POST", "/folders", {"path": path, "parents": True})
        for path in ("/pub/p.txt", "/priv/s.txt", "/team/t.txt", "/team/sub/u.txt"):
            cls.call(cls.token, "PUT", "/upload?path=" + q(path), raw=path.encode())
        cls.users = {}
        for name, role in (("admin", "admin"), ("plain", "member"), ("reader", "member"),
                           ("hidden", "member"), ("manager", "member"), ("narrow", "member")):
            st, inv, _, _ = cls.call(cls.token, "POST", "/invites", {"role": role})
            st, body, payload, _ = cls.hub.request(
                "POST", "/api/v1/invites/accept",
                {"token": inv["token"], "email": name + "@example.test", "password": PW})
            assert st == 200, payload
            cls.users[name] = (body["token"], body["user"]["id"])
        # reader: read-only in /team; hidden: cannot see /priv; manager: manages /team;
        # narrow: may write /team but not /team/sub
        for user, path, perm in (("reader", "/team", "read"), ("hidden", "/priv", "none"),
                                 ("manager", "/team", "manage"), ("narrow", "/team/sub", "read")):
            st, _, payload, _ = cls.call(cls.token, "PUT", "/acl",
                                         {"path": path, "user_id": cls.users[user][1],
                                          "perm": perm})
            assert st == 200, payload

    @classmethod
    def call(cls, token, method, rel, body=None, **kw):
        return cls.hub.request(method, "/api/v1/workspaces/%d%s" % (cls.ws, rel), body,
                               token=token, **kw)

    def tok(self, user):
        return self.token if user == "owner" else self.users[user][0]

    def check(self, cases):
        for user, method, rel, body, want in cases:
            with self.subTest(user=user, method=method, rel=rel):
                kw = {"raw": body} if isinstance(body, bytes) else {}
                st, resp, payload, _ = self.call(self.tok(user), method, rel,
                                                 None if isinstance(body, bytes) else body, **kw)
                self.assertEqual(st, want, payload[:200])
                if want >= 400:
                    self.assertIn("error", resp)

    def names(self, user, path):
        st, body, _, _ = self.call(self.tok(user), "GET", "/list?path=" + q(path))
        self.assertEqual(st, 200)
        return sorted(e["name"] for e in body["entries"])

    def test_reads(self):
        self.check([
            ("plain", "GET", "/content?path=" + q("/priv/s.txt"), None, 200),
            ("hidden", "GET", "/content?path=" + q("/priv/s.txt"), None, 404),
            ("hidden", "GET", "/info?path=" + q("/priv/s.txt"), None, 404),
            ("hidden", "GET", "/versions?path=" + q("/priv/s.txt"), None, 404),
            ("hidden", "GET", "/list?path=" + q("/priv"), None, 404),
            ("hidden", "GET", "/info?path=" + q("/priv"), None, 404),
            ("hidden", "GET", "/content?path=" + q("/pub/p.txt"), None, 200),
            ("reader", "GET", "/content?path=" + q("/team/t.txt"), None, 200),
            ("admin", "GET", "/content?path=" + q("/priv/s.txt"), None, 200),
        ])
        self.assertEqual(self.names("hidden", "/"), ["pub", "team"])
        self.assertEqual(self.names("plain", "/"), ["priv", "pub", "team"])

    def test_writes(self):
        self.check([
            ("plain", "POST", "/folders", {"path": "/pub/by-plain"}, 201),
            ("reader", "POST", "/folders", {"path": "/team/by-reader"}, 403),
            ("reader", "PUT", "/upload?path=" + q("/team/r.txt"), b"x", 403),
            ("reader", "POST", "/move", {"from": "/team/t.txt", "to": "/pub/t.txt"}, 403),
            ("reader", "DELETE", "/files?path=" + q("/team/t.txt"), None, 403),
            ("reader", "POST", "/folders", {"path": "/pub/by-reader"}, 201),
            ("hidden", "POST", "/folders", {"path": "/priv/by-hidden"}, 404),
            ("hidden", "PUT", "/upload?path=" + q("/priv/h.txt"), b"x", 404),
            ("hidden", "DELETE", "/files?path=" + q("/priv"), None, 404),
            ("hidden", "POST", "/move", {"from": "/priv/s.txt", "to": "/pub/s.txt"}, 404),
            ("hidden", "POST", "/move", {"from": "/pub/p.txt", "to": "/priv/p.txt"}, 404),
            # a folder holding something the member may not change cannot go as a whole
            ("narrow", "DELETE", "/files?path=" + q("/team"), None, 403),
            ("narrow", "POST", "/move", {"from": "/team", "to": "/team2"}, 403),
            ("narrow", "POST", "/folders", {"path": "/team/by-narrow"}, 201),
            ("admin", "PUT", "/upload?path=" + q("/priv/a.txt"), b"x", 201),
        ])
        # nothing refused happened
        st, _, _, _ = self.call(self.token, "GET", "/info?path=" + q("/team/t.txt"))
        self.assertEqual(st, 200)
        st, _, _, _ = self.call(self.token, "GET", "/info?path=" + q("/priv/h.txt"))
        self.assertEqual(st, 404)

    def test_managing_access(self):
        plain = self.users["plain"][1]
        self.check([
            ("manager", "PUT", "/acl", {"path": "/team", "user_id": plain, "perm": "read"}, 200),
            ("manager", "PUT", "/acl", {"path": "/pub", "user_id": plain, "perm": "read"}, 403),
            ("reader", "PUT", "/acl", {"path": "/team", "user_id": plain, "perm": "write"}, 403),
            ("hidden", "PUT", "/acl", {"path": "/priv", "user_id": plain, "perm": "none"}, 404),
            ("manager", "DELETE", "/acl?path=%2Fteam&user=" + str(plain), None, 200),
            ("plain", "GET", "/audit", None, 403),
            ("plain", "GET", "/invites", None, 403),
            ("plain", "PATCH", "", {"default_access": "read"}, 403),
            ("admin", "GET", "/audit", None, 200),
            ("owner", "PUT", "/acl", {"path": "/pub", "user_id": 999999, "perm": "read"}, 404),
            ("owner", "PUT", "/acl", {"path": "/pub", "user_id": plain, "perm": "all"}, 400),
        ])
        st, body, _, _ = self.call(self.tok("reader"), "GET", "/acl?path=%2Fteam")
        self.assertEqual((st, body["effective"], body["entries"]), (200, "read", []))
        st, body, _, _ = self.call(self.tok("manager"), "GET", "/acl?path=%2Fteam")
        self.assertEqual(body["effective"], "manage")
        self.assertIn("reader@example.test", [e["email"] for e in body["entries"]])

    def test_chunks_follow_file_access(self):
        st, info, _, _ = self.call(self.token, "GET", "/info?path=" + q("/priv/s.txt"))
        import hashlib
        h = hashlib.sha256(b"/priv/s.txt").hexdigest()
        self.check([
            ("hidden", "GET", "/chunks/" + h, None, 404),
            ("plain", "GET", "/chunks/" + h, None, 200),
        ])

    def test_default_access_none_shows_only_granted_paths(self):
        st, _, _, _ = self.call(self.token, "PATCH", "", {"default_access": "none"})
        self.assertEqual(st, 200)
        try:
            self.check([
                ("plain", "GET", "/list?path=%2F", None, 404),
                ("plain", "GET", "/content?path=" + q("/pub/p.txt"), None, 404),
                ("plain", "POST", "/chunks/missing", {"hashes": []}, 403),
                ("reader", "GET", "/content?path=" + q("/team/t.txt"), None, 200),
                ("reader", "GET", "/content?path=" + q("/pub/p.txt"), None, 404),
            ])
            self.assertEqual(self.names("reader", "/"), ["team"])
        finally:
            self.call(self.token, "PATCH", "", {"default_access": "write"})

    def test_the_feed_shows_only_what_the_member_may_see(self):
        st, wss, _, _ = self.hub.request("GET", "/api/v1/workspaces", token=self.token)
        start = [w for w in wss["workspaces"] if w["id"] == self.ws][0]["last_seq"]
        s = Stream(self.hub, self.ws, self.users["hidden"][0], since=start)
        try:
            self.call(self.token, "PUT", "/upload?path=" + q("/priv/secret2.txt"), raw=b"s")
            self.call(self.token, "PUT", "/upload?path=" + q("/pub/open2.txt"), raw=b"o")
            ev = s.next_event()
        finally:
            s.close()
        self.assertEqual(ev["payload"]["path"], "/pub/open2.txt")
        self.assertEqual(ev["seq"], start + 2)

    def test_acl_from_the_cli(self):
        self.hub.login_cli()
        self.hub.cli("acl", "set", "/pub", "plain@example.test", "read")
        out = self.hub.cli("acl", "/pub").stdout.decode()
        self.assertIn("read    plain@example.test", out)
        self.check([("plain", "POST", "/folders", {"path": "/pub/cli-denied"}, 403)])
        self.hub.cli("acl", "rm", "/pub", "plain@example.test")
        self.check([("plain", "POST", "/folders", {"path": "/pub/cli-allowed"}, 201)])
        p = self.hub.cli("acl", "set", "/pub", "plain@example.test", "everything", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"perm must be", p.stderr)

    def test_non_members_see_no_workspace(self):
        st, body, _, _ = self.hub.request("POST", "/api/v1/workspaces", {"name": "other"},
                                          token=self.users["plain"][0])
        other = body["id"]
        for rel in ("/list?path=%2F", "/members", "/events", "/acl?path=%2F", "/usage"):
            st, _, _, _ = self.hub.request("GET", "/api/v1/workspaces/%d%s" % (other, rel),
                                           token=self.users["hidden"][0])
            self.assertEqual(st, 404, rel)


if __name__ == "__main__":
    harness.main()
