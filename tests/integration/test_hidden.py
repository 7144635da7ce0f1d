"""What a member may not see stays unseen (docs/security.md, issue 13 items 5, 8, 9):
deleting keeps the ACL (trash, restore, feed replay), no answer or feed event names a
hidden path, and a hidden path answers exactly as a missing one, on the API and WebDAV."""
import base64
import http.client
import json

import harness
from harness import HubTest, q
from test_feed import Stream

PW = "member password 1"


class HiddenTest(HubTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for path in ("/pub", "/priv/deep"):
            cls.call(cls.token, "POST", "/folders", {"path": path, "parents": True})
        for path in ("/pub/p.txt", "/priv/s.txt", "/priv/deep/d.txt"):
            cls.call(cls.token, "PUT", "/upload?path=" + q(path), raw=b"secret " + path.encode())
        st, inv, _, _ = cls.call(cls.token, "POST", "/invites", {"role": "member"})
        st, body, payload, _ = cls.hub.request(
            "POST", "/api/v1/invites/accept",
            {"token": inv["token"], "email": "bob@example.test", "password": PW})
        assert st == 200, payload
        cls.bob, cls.bob_id = body["token"], body["user"]["id"]
        st, _, payload, _ = cls.call(cls.token, "PUT", "/acl",
                                     {"path": "/priv", "user_id": cls.bob_id, "perm": "none"})
        assert st == 200, payload

    @classmethod
    def call(cls, token, method, rel, body=None, **kw):
        return cls.hub.request(method, "/api/v1/workspaces/%d%s" % (cls.ws, rel), body,
                               token=token, **kw)

    def as_bob(self, method, rel, body=None, **kw):
        return self.call(self.bob, method, rel, body, **kw)

    def replay(self, token, until_seq):
        """Every event from since=0 to until_seq, as the token's holder gets them."""
        s = Stream(self.hub, self.ws, token, since=0)
        events = []
        try:
            while True:
                ev = s.next_event(timeout=5)
                events.append(ev)
                if ev["seq"] >= until_seq:
                    return events
        except (TimeoutError, OSError):
            return events
        finally:
            s.conn.close()

    def last_seq(self):
        st, body, _, _ = self.hub.request("GET", "/api/v1/workspaces", token=self.token)
        return [w for w in body["workspaces"] if w["id"] == self.ws][0]["last_seq"]

    def names_in(self, events):
        return json.dumps([e["payload"] for e in events])

    # ---- item 5: deleting a folder keeps its ACL ----

    def test_a_deleted_hidden_folder_stays_hidden_in_trash_and_feed(self):
        self.call(self.token, "POST", "/folders", {"path": "/gone/sub", "parents": True})
        self.call(self.token, "PUT", "/upload?path=" + q("/gone/sub/g.txt"), raw=b"pin 123456")
        st, _, payload, _ = self.call(self.token, "PUT", "/acl",
                                      {"path": "/gone", "user_id": self.bob_id, "perm": "none"})
        self.assertEqual(st, 200, payload)
        st, _, payload, _ = self.call(self.token, "DELETE", "/files?path=" + q("/gone"))
        self.assertEqual(st, 200, payload)
        st, trash, _, _ = self.call(self.token, "GET", "/trash")
        gone = [e for e in trash["entries"] if e["path"] == "/gone/sub/g.txt"]
        self.assertEqual(len(gone), 1)
        st, trash, _, _ = self.as_bob("GET", "/trash")
        self.assertEqual(st, 200)
        self.assertNotIn("/gone/sub/g.txt", [e["path"] for e in trash["entries"]])
        # restoring it answers as for a file that is not in the trash
        self.assertError(self.as_bob("POST", "/trash/restore", {"id": gone[0]["id"]}), 404,
                         "not_found")
        self.assertError(self.as_bob("POST", "/trash/restore", {"id": 999999}), 404,
                         "not_found")
        # as a page cursor it answers as one that is not in the trash either
        hidden = self.as_bob("GET", "/trash?before=%d" % gone[0]["id"])
        self.assertError(hidden, 400, "invalid_request")
        self.assertEqual(hidden[1], self.as_bob("GET", "/trash?before=999999")[1])
        st, mine, _, _ = self.call(self.token, "GET", "/trash?before=%d" % gone[0]["id"])
        self.assertEqual(st, 200, mine)
        self.assertError(self.as_bob("GET", "/content?path=" + q("/gone/sub/g.txt")), 404)
        # a replay from the start shows none of /gone's events
        events = self.replay(self.bob, self.last_seq())
        self.assertTrue(events)
        self.assertNotIn("/gone", self.names_in(events))
        self.assertNotIn("/priv", self.names_in(events))
        # the owner restores it: its folders come back with their entries
        st, body, payload, _ = self.call(self.token, "POST", "/trash/restore",
                                         {"id": gone[0]["id"]})
        self.assertEqual(st, 200, payload)
        self.assertError(self.as_bob("GET", "/content?path=" + q("/gone/sub/g.txt")), 404)
        self.assertError(self.as_bob("GET", "/list?path=" + q("/gone")), 404)

    def test_a_member_still_restores_what_they_could_write(self):
        self.call(self.token, "POST", "/folders", {"path": "/mine", "parents": True})
        st, _, payload, _ = self.as_bob("PUT", "/upload?path=" + q("/mine/m.txt"), raw=b"m")
        self.assertEqual(st, 201, payload)
        self.call(self.token, "DELETE", "/files?path=" + q("/mine"))
        st, trash, _, _ = self.as_bob("GET", "/trash")
        mine = [e for e in trash["entries"] if e["path"] == "/mine/m.txt"]
        self.assertEqual(len(mine), 1)
        st, body, payload, _ = self.as_bob("POST", "/trash/restore", {"id": mine[0]["id"]})
        self.assertEqual(st, 200, payload)
        st, _, _, _ = self.as_bob("GET", "/content?path=" + q("/mine/m.txt"))
        self.assertEqual(st, 200)

    # ---- item 8: no answer or event names what the caller may not see ----

    def test_host_policies_and_pins_of_hidden_folders_are_left_out(self):
        st, inv, payload, _ = self.call(self.token, "POST", "/hosts/invites", {})
        self.assertEqual(st, 201, payload)
        st, joined, payload, _ = self.hub.request(
            "POST", "/api/v1/hosts/join", {"token": inv["token"], "label": "box"})
        self.assertEqual(st, 200, payload)
        host, host_tok = joined["host"]["id"], joined["token"]
        for folder in ("/priv/deep", "/pub"):
            st, _, payload, _ = self.call(self.token, "PUT", "/hosts/%d/policies" % host,
                                          {"folder": folder, "mode": "pinned"})
            self.assertEqual(st, 200, payload)
        st, _, payload, _ = self.call(host_tok, "POST", "/hosts/self/heartbeat",
                                      {"pinned": ["/", "/priv/deep", "/pub"]})
        self.assertEqual(st, 200, payload)
        st, body, _, _ = self.as_bob("GET", "/hosts/%d/policies" % host)
        self.assertEqual(st, 200)
        self.assertEqual([p["folder"] for p in body["policies"]], ["/pub"])
        st, body, _, _ = self.as_bob("GET", "/hosts")
        self.assertEqual([h["pinned"] for h in body["hosts"] if h["id"] == host],
                         [["/", "/pub"]])
        st, body, _, _ = self.call(self.token, "GET", "/hosts/%d/policies" % host)
        self.assertEqual(len(body["policies"]), 2)
        events = self.replay(self.bob, self.last_seq())
        self.assertIn("host.policy", [e["kind"] for e in events])
        self.assertNotIn("/priv", self.names_in(events))

    def test_a_move_out_of_a_hidden_folder_does_not_name_it(self):
        self.call(self.token, "PUT", "/upload?path=" + q("/priv/moving.txt"), raw=b"mv")
        st, _, payload, _ = self.call(self.token, "POST", "/move",
                                      {"from": "/priv/moving.txt", "to": "/pub/moved.txt"})
        self.assertEqual(st, 200, payload)
        events = self.replay(self.bob, self.last_seq())
        moved = [e for e in events if e["kind"] == "file.moved"]
        self.assertEqual([e["payload"].get("to") for e in moved], ["/pub/moved.txt"])
        self.assertNotIn("/priv", self.names_in(events))
        # the owner sees both ends
        events = self.replay(self.token, self.last_seq())
        self.assertIn({"from": "/priv/moving.txt", "to": "/pub/moved.txt"},
                      [{k: e["payload"].get(k) for k in ("from", "to")} for e in events
                       if e["kind"] == "file.moved"])

    def test_usage_counts_only_what_the_member_may_read(self):
        st, mine, _, _ = self.as_bob("GET", "/usage")
        self.assertEqual(st, 200)
        st, listing, _, _ = self.as_bob("GET", "/tree")
        readable = [f for f in listing["files"]]
        self.assertEqual(mine["files"], len(readable))
        self.assertEqual(mine["logical_bytes"] >= sum(f["size"] for f in readable), True)
        st, full, _, _ = self.call(self.token, "GET", "/usage")
        self.assertGreater(full["files"], mine["files"])
        st, hist, _, _ = self.as_bob("GET", "/usage/history?days=2")
        self.assertEqual(st, 200)
        self.assertEqual(hist["points"][-1]["logical_bytes"], mine["logical_bytes"])
        st, full_hist, _, _ = self.call(self.token, "GET", "/usage/history?days=2")
        self.assertGreater(full_hist["points"][-1]["logical_bytes"], mine["logical_bytes"])
        st, reps, _, _ = self.as_bob("GET", "/replicas")
        st, all_reps, _, _ = self.call(self.token, "GET", "/replicas")
        self.assertGreater(all_reps["chunks"], reps["chunks"])

    def test_a_share_link_shows_paths_below_it_and_no_hashes_or_emails(self):
        self.call(self.token, "POST", "/folders", {"path": "/pub/shared/in", "parents": True})
        self.call(self.token, "PUT", "/upload?path=" + q("/pub/shared/f.txt"), raw=b"f")
        st, share, payload, _ = self.call(self.token, "POST", "/shares",
                                          {"path": "/pub/shared", "scope": "write"})
        self.assertEqual(st, 201, payload)
        tok = share["url"].rsplit("/", 1)[1]
        st, body, payload, _ = self.hub.request("GET", "/s/%s?format=json" % tok,
                                                port=self.hub.content_port)
        self.assertEqual(st, 200, payload)
        self.assertEqual(sorted(e["path"] for e in body["entries"]), ["/f.txt", "/in"])
        for secret in ("/pub", "hash", "@", "modified_by", '"id"'):
            self.assertNotIn(secret, payload.decode())
        st, body, payload, _ = self.hub.request("GET", "/s/%s" % tok, port=self.hub.content_port,
                                                headers={"Accept": "text/html"})
        self.assertNotIn("/pub", payload.decode())
        st, body, payload, _ = self.hub.request("PUT", "/s/%s/upload?path=%%2Fnew.txt" % tok,
                                                raw=b"new", port=self.hub.content_port)
        self.assertEqual(st, 201, payload)
        self.assertEqual(body["path"], "/new.txt")
        for secret in ("/pub", "hash", '"id"'):
            self.assertNotIn(secret, payload.decode())

    # ---- item 9: a hidden path answers exactly as a missing one ----

    def api_cases(self, hidden):
        """(method, rel, body) for many routes, naming paths under hidden."""
        h = hidden
        return [
            ("GET", "/list?path=" + q(h), None),
            ("GET", "/list?path=" + q(h + "/s.txt"), None),
            ("GET", "/info?path=" + q(h), None),
            ("GET", "/info?path=" + q(h + "/s.txt"), None),
            ("GET", "/versions?path=" + q(h + "/s.txt"), None),
            ("GET", "/content?path=" + q(h + "/s.txt"), None),
            ("GET", "/content?path=" + q(h + "/s.txt") + "&version=1", None),
            ("GET", "/manifest?path=" + q(h + "/s.txt"), None),
            ("GET", "/acl?path=" + q(h), None),
            ("GET", "/acl?path=" + q(h + "/deep"), None),
            ("PUT", "/acl", {"path": h, "user_id": self.bob_id, "perm": "read"}),
            ("DELETE", "/acl?path=%s&user=%d" % (q(h), self.bob_id), None),
            ("POST", "/folders", {"path": h + "/new"}),
            ("POST", "/folders", {"path": h + "/deep"}),
            ("POST", "/folders", {"path": h + "/s.txt/x"}),
            ("POST", "/folders", {"path": h + "/x/y", "parents": True}),
            ("PUT", "/upload?path=" + q(h + "/n.txt"), b"x"),
            ("PUT", "/upload?path=" + q(h + "/s.txt"), b"x"),
            ("PUT", "/upload?path=" + q(h + "/deep"), b"x"),
            ("PUT", "/upload?path=" + q(h + "/s.txt/x"), b"x"),
            ("POST", "/move", {"from": h + "/s.txt", "to": "/pub/m.txt"}),
            ("POST", "/move", {"from": h, "to": "/pub/m"}),
            ("POST", "/move", {"from": "/pub/p.txt", "to": h + "/p.txt"}),
            ("POST", "/move", {"from": "/pub/p.txt", "to": h + "/s.txt"}),
            ("POST", "/move", {"from": "/pub/p.txt", "to": h + "/deep"}),
            ("DELETE", "/files?path=" + q(h), None),
            ("DELETE", "/files?path=" + q(h + "/s.txt"), None),
            ("POST", "/urls", {"path": h + "/s.txt"}),
            ("POST", "/shares", {"path": h}),
            ("POST", "/shares", {"path": h + "/s.txt"}),
            ("POST", "/versions/restore", {"path": h + "/s.txt", "version": 1}),
            ("PUT", "/hosts/1/policies", {"folder": h + "/deep", "mode": "pinned"}),
        ]

    def answer(self, res):
        st, body, payload, _ = res
        if not (isinstance(body, dict) and "error" in body):
            return st, None, None
        return st, body["error"]["code"], body["error"]["message"]

    def test_the_api_answers_a_hidden_path_as_a_missing_one(self):
        self.compare_api("/priv", "/priv/zz")

    def compare_api(self, hidden, missing):
        hidden_top, missing_top = hidden, missing
        for (m, rel, body), (_, rel2, body2) in zip(self.api_cases(hidden),
                                                   self.api_cases(missing)):
            with self.subTest(method=m, rel=rel, body=body):
                kw = {"raw": body} if isinstance(body, bytes) else {}
                kw2 = {"raw": body2} if isinstance(body2, bytes) else {}
                hidden = self.answer(self.as_bob(m, rel, None if kw else body, **kw))
                missing = self.answer(self.as_bob(m, rel2, None if kw2 else body2, **kw2))
                if missing[2]:  # the message too, but for the path it names
                    missing = missing[:2] + (missing[2].replace(missing_top, hidden_top),)
                self.assertEqual(hidden, missing)
        # nothing happened in /priv
        st, body, _, _ = self.call(self.token, "GET", "/list?path=%2Fpriv")
        self.assertEqual(sorted(e["name"] for e in body["entries"]), ["deep", "s.txt"])

    def dav(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.hub.content_port, timeout=60)
        h = {"Authorization": "Basic " + base64.b64encode(
            b"bob@example.test:" + PW.encode()).decode()}
        h.update(headers or {})
        conn.request(method, "/dav/%d%s" % (self.ws, path), body=body, headers=h)
        resp = conn.getresponse()
        resp.read()
        conn.close()
        return resp.status

    def dav_cases(self, h, top):
        dest = lambda p: {"Destination": "http://127.0.0.1:%d/dav/%d%s" % (
            self.hub.content_port, self.ws, p)}
        prop = (b'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z">'
                b'<D:set><D:prop><Z:a>1</Z:a></D:prop></D:set></D:propertyupdate>')
        return [
            ("GET", h + "/s.txt", None, {}),
            ("HEAD", h + "/s.txt", None, {}),
            ("PROPFIND", h, None, {"Depth": "1"}),
            ("PROPFIND", h + "/s.txt", None, {"Depth": "0"}),
            ("PROPPATCH", h + "/s.txt", prop, {}),
            ("PROPPATCH", h, prop, {}),
            ("PUT", h + "/n.txt", b"x", {}),
            ("PUT", h + "/s.txt", b"x", {}),
            ("PUT", h + "/deep", b"x", {}),
            ("PUT", h + "/x/y.txt", b"x", {}),
            ("PUT", h + "/s.txt/x", b"x", {}),
            ("MKCOL", h + "/new", None, {}),
            ("MKCOL", h + "/deep", None, {}),
            ("MKCOL", h + "/x/y", None, {}),
            ("MKCOL", h + "/s.txt", None, {}),
            ("MKCOL", h, None, {}) if top else ("MKCOL", h + "/n2", None, {}),
            ("DELETE", h + "/s.txt", None, {}),
            ("DELETE", h, None, {}),
            ("LOCK", h + "/s.txt", None, {}),
            ("LOCK", h + "/x/n.txt", b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:">'
             b'<D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>'
             b'</D:lockinfo>', {}),
            ("UNLOCK", h + "/s.txt", None, {"Lock-Token": "<urn:uuid:x>"}),
            ("COPY", h + "/s.txt", None, dest("/pub/c.txt")),
            ("MOVE", h + "/s.txt", None, dest("/pub/c.txt")),
            ("COPY", "/pub/p.txt", None, dest(h + "/c.txt")),
            ("COPY", "/pub/p.txt", None, dest(h + "/x/c.txt")),
            ("COPY", "/pub/p.txt", None, dest(h + "/s.txt")),
            ("COPY", "/pub/p.txt", None, dest(h + "/deep")),
            ("MOVE", "/pub/p.txt", None, dest(h + "/c.txt")),
            ("MOVE", "/pub/p.txt", None, dest(h + "/x/c.txt")),
            ("COPY", "/pub", None, dest(h + "/pubcopy")),
        ]

    def test_webdav_answers_a_hidden_path_as_a_missing_one(self):
        # inside a hidden folder, what exists answers as what does not
        self.compare_dav("/priv", "/priv/zz", top=False)

    def compare_dav(self, hidden, missing, top=True):
        for (m, path, body, hd), (_, path2, body2, hd2) in zip(
                self.dav_cases(hidden, top), self.dav_cases(missing, top)):
            with self.subTest(method=m, path=path, headers=hd):
                self.assertEqual(self.dav(m, path, body, hd), self.dav(m, path2, body2, hd2))
        st, body, _, _ = self.call(self.token, "GET", "/list?path=%2Fpriv")
        self.assertEqual(sorted(e["name"] for e in body["entries"]), ["deep", "s.txt"])
        st, _, _, _ = self.call(self.token, "GET", "/info?path=%2Fpub%2Fp.txt")
        self.assertEqual(st, 200)



class HiddenByDefaultTest(HiddenTest):
    """The same where the workspace's default is none: a folder that does not
    exist and one the member may not see answer alike, wherever they are."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        st, _, payload, _ = cls.call(cls.token, "PATCH", "", {"default_access": "none"})
        assert st == 200, payload
        st, _, payload, _ = cls.call(cls.token, "PUT", "/acl",
                                     {"path": "/pub", "user_id": cls.bob_id, "perm": "write"})
        assert st == 200, payload

    def test_the_api_answers_a_hidden_path_as_a_missing_one(self):
        self.compare_api("/priv", "/nope")

    def test_webdav_answers_a_hidden_path_as_a_missing_one(self):
        self.compare_dav("/priv", "/nope")


# Only the comparisons run twice.
for _name in list(vars(HiddenTest)):
    if _name.startswith("test_") and "answers" not in _name:
        setattr(HiddenByDefaultTest, _name, None)


if __name__ == "__main__":
    harness.main()
