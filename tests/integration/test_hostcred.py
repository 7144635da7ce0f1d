"""Credentials of hosts and signed URLs (issue 13, items 13, 14, 18, 19).

- A host's credential calls the host routes of its own workspace and nothing else
  (403 host_credential_not_allowed); `roost host rm` revokes it for good.
- A signed URL names its issuer and works only while the issuer may still do what it
  grants, on the hub and on hosts; a write URL's version names the uploader.
- Reserved names (/.roost) are refused at the hub on every write path.
- /metrics and the relays' revocation list answer loopback clients, or with
  ROOST_OPS_TOKEN set on the hub, that bearer token only.
"""
import base64
import json
import os
import time

import harness
from harness import Host, Hub, HubTest, q, wait_for

PW = "member password 1"


class HostCredTest(HubTest):
    """One hub, one running host A, and members writer / reader / leaver."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hosts = []
        try:
            cls.hub.login_cli()
            cls.A = Host(cls.hub, cls.tmp, "A")
            cls.hosts.append(cls.A)
            cls.A.join()
            cls.A.start()
            cls.users = {}
            for name in ("writer", "reader", "leaver", "plain"):
                st, inv, _, _ = cls.call(cls.token, "POST", "/invites", {"role": "member"})
                st, body, payload, _ = cls.hub.request(
                    "POST", "/api/v1/invites/accept",
                    {"token": inv["token"], "email": name + "@example.test", "password": PW})
                assert st == 200, payload
                cls.users[name] = (body["token"], body["user"]["id"])
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

    def host_token(self, host):
        with open(os.path.join(host.dir, ".roost", "host.json")) as f:
            return json.load(f)["token"]

    def put(self, path, data, token=None):
        st, _, payload, _ = self.call(token or self.token, "PUT", "/upload?path=" + q(path),
                                      raw=data)
        self.assertEqual(st, 201, payload[:300])

    def acl(self, user, path, perm):
        st, _, payload, _ = self.api("PUT", "/acl", {"path": path, "perm": perm,
                                                     "user_id": self.users[user][1]})
        self.assertEqual(st, 200, payload[:300])

    def url(self, user, path, **body):
        body["path"] = path
        st, resp, payload, _ = self.call(self.users[user][0], "POST", "/urls", body)
        self.assertEqual(st, 201, payload[:300])
        return resp["token"]

    def on_host(self, host, method, path, raw=None):
        return self.hub.request(method, path, raw=raw, port=host.port)

    def on_content_port(self, path):
        return self.hub.request("GET", path, port=self.hub.content_port)

    def wait_local(self, host, rel, data):
        p = host.path(rel)

        def there():
            try:
                with open(p, "rb") as f:
                    return f.read() == data
            except OSError:
                return False
        wait_for(there, 30, "%s on host %s" % (rel, host.label), [host])

    # ---- 13: a host's credential ----

    def test_a_host_credential_reaches_only_its_workspaces_host_routes(self):
        tok = self.host_token(self.A)
        for method, path, body in (
                ("POST", "/api/v1/workspaces", {"name": "by-a-host"}),
                ("GET", "/api/v1/tokens", None),
                ("POST", "/api/v1/tokens", {"name": "from-a-host"}),
                ("DELETE", "/api/v1/tokens/1", None),
                ("GET", "/api/v1/me", None),
                ("POST", "/api/v1/workspaces/%d/invites" % self.ws, {"role": "owner"}),
                ("GET", "/api/v1/workspaces/%d/members" % self.ws, None),
                ("PUT", "/api/v1/workspaces/%d/acl" % self.ws,
                 {"path": "/", "perm": "none", "user_id": self.users["plain"][1]}),
                ("POST", "/api/v1/workspaces/%d/hosts/invites" % self.ws, {}),
                ("POST", "/api/v1/workspaces/%d/shares" % self.ws, {"path": "/"}),
                ("POST", "/api/v1/workspaces/%d/urls" % self.ws, {"path": "/x"}),
                ("DELETE", "/api/v1/workspaces/%d/hosts/1" % self.ws, None),
                ("GET", "/api/v1/workspaces/%d/audit" % self.ws, None)):
            with self.subTest(method=method, path=path):
                self.assertError(self.hub.request(method, path, body, token=tok), 403,
                                 "host_credential_not_allowed")
        # ...and each read its agent makes answers it: GET info was not marked R_HOST, so
        # the agent's "is that folder still there?" always heard 403 (a race's conflict copy).
        self.put("/hostcred-dir/x.txt", b"x")
        for path, want in (("/tree", None), ("/info?path=/hostcred-dir", "folder"),
                           ("/info?path=/hostcred-dir/x.txt", "file"),
                           ("/manifest?path=/hostcred-dir/x.txt", None)):
            with self.subTest(path=path):
                st, body, payload, _ = self.hub.request(
                    "GET", "/api/v1/workspaces/%d%s" % (self.ws, path), token=tok)
                self.assertEqual(st, 200, payload[:300])
                if want:
                    self.assertEqual(body["type"], want)
        self.assertError(self.hub.request(
            "GET", "/api/v1/workspaces/%d/info?path=/hostcred-none" % self.ws, token=tok), 404)
        st, body, payload, _ = self.hub.request("GET", "/api/v1/workspaces", token=self.token)
        st, other, _, _ = self.hub.request("POST", "/api/v1/workspaces", {"name": "other"},
                                           token=self.token)
        self.assertEqual(st, 201, other)
        st, body, payload, _ = self.hub.request("GET", "/api/v1/workspaces", token=tok)
        self.assertEqual(st, 200, payload[:300])
        self.assertEqual([w["id"] for w in body["workspaces"]], [self.ws])
        self.assertError(self.hub.request("GET", "/api/v1/workspaces/%d/tree" % other["id"],
                                          token=tok), 404)
        st, _, payload, _ = self.hub.request("GET", "/api/v1/workspaces/%d/tree" % self.ws,
                                             token=tok)
        self.assertEqual(st, 200, payload[:300])

    def test_only_owners_and_admins_remove_a_host(self):
        self.assertError(self.call(self.users["plain"][0], "DELETE", "/hosts/%d" % self.A_id()),
                         403)
        self.assertError(self.call(self.token, "DELETE", "/hosts/999999"), 404)

    def A_id(self):
        with open(os.path.join(self.A.dir, ".roost", "host.json")) as f:
            return json.load(f)["host_id"]

    def test_host_rm_revokes_the_credential_retires_the_slug_and_counts_copies_gone(self):
        C = Host(self.hub, self.tmp, "C")
        C.join()
        self.hosts.append(C)
        C.start()
        self.put("/rm/one.bin", os.urandom(5000))
        tok = self.host_token(C)
        with open(os.path.join(C.dir, ".roost", "host.json")) as f:
            cid = json.load(f)["host_id"]
        wait_for(lambda: self.hub.sql(
            "SELECT COUNT(*) FROM chunk_replicas WHERE host_id = ?", (cid,))[0][0] > 0,
            30, "C to report its copies", [C])
        st, rt, payload, _ = self.hub.request(
            "POST", "/api/v1/workspaces/%d/hosts/self/relay-token" % self.ws, {}, token=tok)
        self.assertEqual(st, 201, payload[:300])
        copies = self.hub.sql("SELECT COUNT(*) FROM chunk_replicas WHERE host_id = ?",
                              (cid,))[0][0]
        before = int(time.time() * 1000)
        out = json.loads(self.hub.cli("host", "rm", "C", "--json").stdout)
        self.assertEqual(out["host_id"], cid)
        self.assertGreaterEqual(out["copies_gone"], copies)
        self.assertEqual(out["retired_slug"], rt["slug"])
        self.assertError(self.hub.request(
            "GET", "/api/v1/workspaces/%d/tree" % self.ws, token=tok), 401)
        self.assertEqual(self.hub.sql(
            "SELECT COUNT(*) FROM chunk_replicas WHERE host_id = ?", (cid,))[0][0], 0)
        st, rev, _, _ = self.hub.request("GET", "/api/v1/relay/revocations")
        self.assertIn(rt["slug"], [r["slug"] for r in rev["revocations"]])
        due = self.hub.sql("SELECT next_run_at FROM jobs WHERE name = 'replicate'")[0][0]
        self.assertLessEqual(due, int(time.time() * 1000))
        self.assertGreaterEqual(due, before)
        st, hosts, _, _ = self.api("GET", "/hosts")
        self.assertNotIn(cid, [h["id"] for h in hosts["hosts"]])
        st, audit, payload, _ = self.api("GET", "/audit")
        self.assertEqual(st, 200, payload[:300])
        rows = audit.get("entries") or audit.get("audit") or audit.get("events") or []
        self.assertIn("host.remove", [e.get("action") for e in rows], payload[:600])
        C.stop(sig=9)

    # ---- 14: a write URL through a host ----

    def test_a_write_url_on_a_host_is_the_uploaders_and_stops_with_their_access(self):
        self.put("/w/seed.txt", b"seed")
        self.acl("writer", "/w", "write")
        tok = self.url("writer", "/w/up.txt", scope="write")
        st, body, payload, _ = self.on_host(self.A, "PUT", "/u/" + tok, raw=b"by the writer")
        self.assertEqual(st, 201, payload[:300])
        wait_for(lambda: self.api("GET", "/versions?path=" + q("/w/up.txt"))[0] == 200,
                 30, "the upload to reach the hub", [self.A])
        st, vers, _, _ = self.api("GET", "/versions?path=" + q("/w/up.txt"))
        self.assertEqual(vers["versions"][0]["created_by"], "writer@example.test")
        self.acl("writer", "/w", "read")
        self.assertError(self.on_host(self.A, "PUT", "/u/" + tok, raw=b"after losing write"),
                         403)
        self.assertError(self.hub.request("PUT", "/u/" + tok, raw=b"x",
                                          port=self.hub.content_port), 403)
        time.sleep(0.5)
        with open(self.A.path("/w/up.txt"), "rb") as f:
            self.assertEqual(f.read(), b"by the writer")

    # ---- 18: a read URL ----

    def test_a_read_url_stops_when_its_issuer_loses_read_on_the_hub_and_on_hosts(self):
        self.put("/r/f.txt", b"readable")
        self.wait_local(self.A, "/r/f.txt", b"readable")
        tok = self.url("reader", "/r/f.txt")
        wait_for(lambda: self.on_host(self.A, "GET", "/c/" + tok)[0] == 200, 30,
                 "host A to serve the read URL", [self.A])
        st, _, payload, _ = self.on_content_port("/c/" + tok)
        self.assertEqual((st, payload), (200, b"readable"))
        self.acl("reader", "/r", "none")
        self.assertIn(self.on_content_port("/c/" + tok)[0], (403, 404))
        self.assertIn(self.on_host(self.A, "GET", "/c/" + tok)[0], (403, 404))

    def test_a_read_url_stops_when_its_issuer_leaves_the_workspace(self):
        self.put("/l/f.txt", b"leaving")
        self.wait_local(self.A, "/l/f.txt", b"leaving")
        tok = self.url("leaver", "/l/f.txt")
        self.assertEqual(self.on_content_port("/c/" + tok)[0], 200)
        st, _, payload, _ = self.api("DELETE", "/members/%d" % self.users["leaver"][1])
        self.assertEqual(st, 200, payload[:300])
        self.assertError(self.on_content_port("/c/" + tok), 403, "issuer_not_member")
        self.assertError(self.on_host(self.A, "GET", "/c/" + tok), 403, "issuer_not_member")

    # ---- 19: reserved names ----

    def test_reserved_names_are_refused_on_every_write_path(self):
        self.put("/res/a.txt", b"a")
        st, _, _, _ = self.api("POST", "/urls", {"path": "/.roost/host.json", "scope": "write"})
        self.assertEqual(st, 403)
        h = "0" * 64
        cases = (
            ("POST", "/urls", {"path": "/.roost/x", "scope": "write"}),
            ("POST", "/versions", {"path": "/.roost/host.json", "size": 0, "hash":
                                   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                                   "chunks": []}),
            ("POST", "/folders", {"path": "/.roost"}),
            ("POST", "/folders", {"path": "/.roost/tmp", "parents": True}),
            ("POST", "/move", {"from": "/res/a.txt", "to": "/.roost/a.txt"}),
            ("POST", "/move", {"from": "/res", "to": "/.roost"}),
        )
        for method, rel, body in cases:
            with self.subTest(rel=rel, body=body):
                self.assertError(self.api(method, rel, body), 403, "reserved_name")
        self.assertError(self.api("PUT", "/upload?path=" + q("/.roost/up"), raw=b"x"), 403,
                         "reserved_name")
        st, body, payload, _ = self.api("POST", "/versions/batch", {"versions": [
            {"path": "/.roost/b", "size": 0, "chunks": [], "hash":
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}]})
        self.assertEqual(st, 200, payload[:300])
        self.assertEqual(body["results"][0]["status"], 403)
        st, _, payload, _ = self.api("PUT", "/hosts/%d/policies" % self.A_id(),
                                     {"folder": "/.roost", "mode": "pinned"})
        self.assertEqual(st, 403, payload[:300])
        app = json.loads(self.hub.cli("token", "create", "--name", "dav", "--json").stdout)
        auth = "Basic " + base64.b64encode(
            ("%s:%s" % (harness.EMAIL, app["token"])).encode()).decode()
        for method, path in (("PUT", "/dav/default/.roost/d"), ("MKCOL", "/dav/default/.roost")):
            st, _, _, _ = self.hub.request(method, path, raw=b"dav", headers={
                "Authorization": auth}, port=self.hub.content_port)
            self.assertEqual(st, 403, "%s %s" % (method, path))
        st, _, _, _ = self.hub.request("MOVE", "/dav/default/res/a.txt", headers={
            "Authorization": auth, "Destination": "/dav/default/.roost/a.txt"},
            port=self.hub.content_port)
        self.assertEqual(st, 403)
        st, tree, _, _ = self.api("GET", "/tree")
        self.assertFalse([p for p in tree["folders"] if p.startswith("/.roost")], tree)
        self.assertFalse([f for f in tree["files"] if f["path"].startswith("/.roost")], tree)


class OpsEndpointsTest(HubTest):
    """With ROOST_OPS_TOKEN set, /metrics and the revocations want it."""

    @classmethod
    def setUpClass(cls):
        os.environ["ROOST_OPS_TOKEN"] = "ops-secret-for-tests"
        try:
            super().setUpClass()
        finally:
            del os.environ["ROOST_OPS_TOKEN"]

    def test_metrics_and_revocations_need_the_ops_token(self):
        for path in ("/metrics", "/api/v1/relay/revocations"):
            with self.subTest(path=path):
                self.assertError(self.hub.request("GET", path), 403, "ops_only")
                self.assertError(self.hub.request("GET", path, token=self.token), 403,
                                 "ops_only")
                st, _, payload, _ = self.hub.request("GET", path, token="ops-secret-for-tests")
                self.assertEqual(st, 200, payload[:300])


class LoopbackOnlyTest(HubTest):
    """Without a token, only loopback clients: reached here by a non-loopback address."""

    @classmethod
    def setUpClass(cls):
        import socket
        cls.addr = None
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.connect(("192.0.2.1", 9))  # no packet is sent
                cls.addr = s.getsockname()[0]
        except OSError:
            pass
        super().setUpClass()

    def test_metrics_answer_loopback_clients_only(self):
        if not self.addr or self.addr.startswith("127."):
            self.skipTest("this machine has no non-loopback address")
        self.hub.stop()
        self.hub.serve_args = ["--listen", "0.0.0.0"]
        self.hub.start()
        import http.client
        for path in ("/metrics", "/api/v1/relay/revocations"):
            conn = http.client.HTTPConnection(self.addr, self.hub.api_port, timeout=30)
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
            self.assertEqual(resp.status, 403, body[:200])
            self.assertEqual(self.hub.request("GET", path)[0], 200)


if __name__ == "__main__":
    harness.main()
