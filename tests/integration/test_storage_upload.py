"""Uploads to hosts (issue 15): in a workspace whose storage is 'hosts', a client
that is not a host sends a file's chunks to an online host that pins the folder,
with an upload token the hub signs (upload-targets), and the host reports them
(hosts/self/uploads); with no host online the chunks go to the hub's cache.
docs/host.md "Uploads to a host", docs/security.md "Upload tokens"."""
import base64
import glob
import hashlib
import http.client
import json
import os
import time

from harness import Host, HubTest, main, wait_for

PW = "member password 1"
CHUNK_MAX = 4 << 20  # the workspace's chunk_max by default


def sha(data):
    return hashlib.sha256(data).hexdigest()


def tamper(token, **changes):
    """The token with its claims changed and the old signature kept."""
    claims, sig = token.split(".")
    c = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    c.update(changes)
    raw = base64.urlsafe_b64encode(json.dumps(c).encode()).decode().rstrip("=")
    return raw + "." + sig


class HostUploadTest(HubTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hosts = []
        try:
            cls.hub.login_cli()
            st, _, payload, _ = cls.call(cls.token, "PATCH", "", {"storage": "hosts"})
            assert st == 200, payload
            cls.users = {}
            for name in ("writer", "reader", "leaver", "other"):
                st, inv, _, _ = cls.call(cls.token, "POST", "/invites", {"role": "member"})
                st, body, payload, _ = cls.hub.request(
                    "POST", "/api/v1/invites/accept",
                    {"token": inv["token"], "email": name + "@example.test", "password": PW})
                assert st == 200, payload
                cls.users[name] = (body["token"], body["user"]["id"])
            for user, path, perm in (("reader", "/", "read"), ("writer", "/hidden", "none"),
                                     ("leaver", "/docs", "write")):
                cls.call(cls.token, "POST", "/folders", {"path": path, "parents": True})
                st, _, payload, _ = cls.call(cls.token, "PUT", "/acl", {
                    "path": path, "perm": perm, "user_id": cls.users[user][1]})
                assert st == 200, payload
            cls.A = Host(cls.hub, cls.tmp, "A")
            cls.B = Host(cls.hub, cls.tmp, "B")  # joined, never started: offline
            cls.hosts += [cls.A, cls.B]
            cls.A.join()
            cls.B.join()
            cls.A.start()
            cls.A.id = cls.host_json(cls.A)["host_id"]
            cls.B.id = cls.host_json(cls.B)["host_id"]
            st, _, payload, _ = cls.call(cls.token, "POST", "/folders", {"path": "/cold"})
            assert st in (200, 201), payload
            st, _, payload, _ = cls.call(cls.token, "PUT", "/hosts/%d/policies" % cls.A.id,
                                         {"folder": "/cold", "mode": "exclude"})
            assert st == 200, payload
            cls.wait_online(cls.A)
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

    @staticmethod
    def host_json(host):
        with open(os.path.join(host.dir, ".roost", "host.json")) as f:
            return json.load(f)

    @classmethod
    def host_status(cls, host):
        st, body, _, _ = cls.call(cls.token, "GET", "/hosts")
        for h in body["hosts"]:
            if h["id"] == host.id:
                return h["status"]
        return None

    @classmethod
    def wait_online(cls, host, online=True):
        wait_for(lambda: (cls.host_status(host) == "online") == online, 30,
                 "host %s %s" % (host.label, "online" if online else "offline"), [host])

    def tok(self, user):
        return self.token if user == "owner" else self.users[user][0]

    def targets(self, user, path):
        st, body, payload, _ = self.call(self.tok(user), "POST", "/upload-targets",
                                         {"path": path})
        self.assertEqual(st, 200, payload[:300])
        return body

    def upload_token(self, user="writer", path="/docs/f.bin"):
        body = self.targets(user, path)
        direct = [t for t in body["targets"] if t["via"] == "host" and t["host_id"] == self.A.id]
        self.assertTrue(direct, body)
        return direct[0]["token"]

    def put_chunk(self, host, data, token, hash_=None, headers=None):
        h = {"Authorization": "Bearer " + token} if token else {}
        h.update(headers or {})
        return self.hub.request("PUT", "/chunks/" + (hash_ or sha(data)), raw=data, headers=h,
                                port=host.port)

    def in_cache(self, host, data):
        h = sha(data)
        return os.path.exists(os.path.join(host.dir, ".roost", "cache", "objects", h[:2], h))

    def in_hub_store(self, data):
        h = sha(data)
        return os.path.exists(os.path.join(self.hub.data, "objects", h[:2], h))

    def hub_store_bytes(self):
        return sum(os.path.getsize(p) for p in
                   glob.glob(os.path.join(self.hub.data, "objects", "??", "*")))

    def rows(self, data):
        h = sha(data)
        return {
            "uploads": self.hub.sql("SELECT uploader, size FROM chunk_uploads WHERE "
                                    "workspace_id = ? AND chunk_hash = ?", (self.ws, h)),
            "grant": self.hub.sql("SELECT proven FROM workspace_chunks WHERE workspace_id = ? "
                                  "AND chunk_hash = ?", (self.ws, h)),
            "replicas": self.hub.sql("SELECT holder, state FROM chunk_replicas WHERE "
                                     "chunk_hash = ?", (h,)),
        }

    def missing(self, user, hashes):
        st, body, payload, _ = self.call(self.tok(user), "POST", "/uploads/missing",
                                         {"hashes": hashes})
        self.assertEqual(st, 200, payload[:300])
        return body["missing"]

    def report(self, host_token, token, chunks, **extra):
        body = {"token": token, "chunks": chunks}
        body.update(extra)
        return self.call(host_token, "POST", "/hosts/self/uploads", body)

    # ---- upload-targets ----

    def test_upload_targets_name_the_online_host_that_pins_the_folder(self):
        before = int(time.time() * 1000)
        body = self.targets("writer", "/docs/a.bin")
        self.assertEqual((body["storage"], body["hub"], body["chunk_max"]),
                         ("hosts", True, CHUNK_MAX))
        self.assertEqual([(t["via"], t["host_id"], t["url"]) for t in body["targets"]],
                         [("host", self.A.id, self.A.url)], "B is offline: not offered")
        t = body["targets"][0]
        self.assertEqual(t["label"], "A")
        self.assertTrue(before < t["expires_at"] <= before + 31 * 60 * 1000, t)
        # A excludes /cold: no host keeps it, so only the hub
        self.assertEqual(self.targets("writer", "/cold/a.bin")["targets"], [])

    def test_upload_targets_need_write_access_to_the_path(self):
        self.assertError(self.call(self.tok("reader"), "POST", "/upload-targets",
                                   {"path": "/docs/a.bin"}), 403)
        self.assertError(self.call(self.tok("writer"), "POST", "/upload-targets",
                                   {"path": "/hidden/a.bin"}), 404, "not_found")
        self.assertError(self.call(self.tok("writer"), "POST", "/upload-targets",
                                   {"path": "/.roost/x"}), 403, "reserved_name")
        tok = self.host_json(self.A)["token"]
        self.assertError(self.call(tok, "POST", "/upload-targets", {"path": "/docs/a.bin"}),
                         403, "host_credential_not_allowed")

    def test_a_hub_workspace_has_no_host_targets(self):
        self.call(self.token, "PATCH", "", {"storage": "hub"})
        try:
            body = self.targets("writer", "/docs/a.bin")
            self.assertEqual((body["storage"], body["targets"], body["hub"]), ("hub", [], True))
        finally:
            self.call(self.token, "PATCH", "", {"storage": "hosts"})

    # ---- the host's PUT /chunks/HASH and the hub's rows ----

    def test_a_chunk_is_verified_pinned_and_recorded_as_the_uploaders(self):
        data = os.urandom(300000)
        st, body, payload, _ = self.put_chunk(self.A, data, self.upload_token())
        self.assertEqual(st, 201, payload[:300])
        self.assertEqual((body["hash"], body["size"]), (sha(data), len(data)))
        self.assertTrue(self.in_cache(self.A, data))
        self.assertFalse(self.in_hub_store(data), "the bytes went to the host, not the hub")
        rows = self.rows(data)
        self.assertEqual(rows["uploads"], [("u:%d" % self.users["writer"][1], len(data))])
        self.assertEqual(rows["grant"], [(0,)], "the hub has only the host's word: unproven")
        self.assertEqual(rows["replicas"], [("host:%d" % self.A.id, "ok")])
        # resumable: the uploader need not send it again; anyone else must
        self.assertEqual(self.missing("writer", [sha(data)]), [])
        self.assertEqual(self.missing("other", [sha(data)]), [sha(data)])
        # pinned in the host's cache until the file is in its folder
        import sqlite3
        con = sqlite3.connect(os.path.join(self.A.dir, ".roost", "index.db"), timeout=20)
        try:
            pins = con.execute("SELECT COUNT(*) FROM cache_pins WHERE hash = ?",
                               (sha(data),)).fetchone()[0]
        finally:
            con.close()
        self.assertEqual(pins, 1)

    def test_bytes_that_do_not_match_the_hash_are_refused_and_not_kept(self):
        data, other = os.urandom(5000), os.urandom(5000)
        self.assertError(self.put_chunk(self.A, other, self.upload_token(), hash_=sha(data)),
                         422, "hash_mismatch")
        self.assertFalse(self.in_cache(self.A, data))
        self.assertFalse(self.in_cache(self.A, other))
        self.assertEqual(self.rows(data), {"uploads": [], "grant": [], "replicas": []})
        self.assertError(self.put_chunk(self.A, b"", self.upload_token(), hash_=sha(b"")),
                         400, "empty_chunk")
        self.assertError(self.put_chunk(self.A, data, self.upload_token(), hash_="../x"),
                         400, "invalid_hash")

    def test_a_chunk_over_chunk_max_is_refused(self):
        data = os.urandom(CHUNK_MAX + 1)
        # refused on its Content-Length, before the body
        conn = http.client.HTTPConnection("127.0.0.1", self.A.port, timeout=60)
        conn.putrequest("PUT", "/chunks/" + sha(data))
        conn.putheader("Authorization", "Bearer " + self.upload_token())
        conn.putheader("Content-Length", str(len(data)))
        conn.endheaders()
        resp = conn.getresponse()
        self.assertEqual(resp.status, 413, resp.read()[:300])
        conn.close()
        # without a Content-Length, counted as it comes
        conn = http.client.HTTPConnection("127.0.0.1", self.A.port, timeout=60)
        conn.putrequest("PUT", "/chunks/" + sha(data))
        conn.putheader("Authorization", "Bearer " + self.upload_token())
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for i in range(0, len(data), 1 << 20):
            part = data[i:i + (1 << 20)]
            conn.send(b"%x\r\n%s\r\n" % (len(part), part))
        conn.send(b"0\r\n\r\n")
        resp = conn.getresponse()
        self.assertEqual(resp.status, 413, resp.read()[:300])
        conn.close()
        self.assertFalse(self.in_cache(self.A, data))
        self.assertEqual(self.rows(data)["uploads"], [])

    # ---- what an upload token does not do ----

    def test_an_upload_token_reads_nothing(self):
        data = os.urandom(4000)
        tok = self.upload_token()
        self.assertEqual(self.put_chunk(self.A, data, tok)[0], 201)
        for path, headers in (("/chunks/" + sha(data), {"Authorization": "Bearer " + tok}),
                              ("/c/" + tok, {})):
            with self.subTest(path=path[:20]):
                st, _, payload, _ = self.hub.request("GET", path, headers=headers,
                                                     port=self.A.port)
                self.assertEqual(st, 403, payload[:300])
                self.assertNotIn(data, payload)
        self.assertError(self.hub.request("GET", "/c/" + tok, port=self.hub.content_port), 403)
        # nor is it a credential on the hub
        st, _, _, _ = self.call(tok, "GET", "/tree")
        self.assertEqual(st, 401)
        # nor a write URL on the host or the hub
        self.assertIn(self.hub.request("PUT", "/u/" + tok, raw=b"x", port=self.A.port)[0],
                      (401, 403))
        self.assertEqual(self.hub.request("PUT", "/u/" + tok, raw=b"x",
                                          port=self.hub.content_port)[0], 403)

    def test_a_forged_or_foreign_token_is_refused(self):
        data = os.urandom(4000)
        tok = self.upload_token()
        for bad in (tamper(tok, path="/hidden/x"), tamper(tok, user=self.users["other"][1]),
                    tamper(tok, max=1 << 40), "x.y", ""):
            with self.subTest(token=bad[:16]):
                st, _, payload, _ = self.put_chunk(self.A, data, bad)
                self.assertEqual(st, 401, payload[:300])
        self.assertFalse(self.in_cache(self.A, data))
        # a chunk token (scope chunks) does not upload
        st, body, payload, _ = self.call(self.token, "POST", "/tokens",
                                         {"scope": "chunks", "expires_in": 60})
        self.assertEqual(st, 201, payload[:300])
        self.assertError(self.put_chunk(self.A, data, body["token"]), 403, "wrong_scope")
        self.assertFalse(self.in_cache(self.A, data))

    def test_a_hosts_report_is_checked_against_the_token(self):
        data = os.urandom(4000)
        ref = [{"hash": sha(data), "size": len(data)}]
        tok = self.upload_token()  # for host A
        b_tok, a_tok = self.host_json(self.B)["token"], self.host_json(self.A)["token"]
        # B cannot use A's token; a user cannot report; the user comes from the token
        self.assertError(self.report(b_tok, tok, ref), 403, "invalid_token")
        self.assertIn(self.report(self.tok("writer"), tok, ref)[0], (401, 403))
        self.assertError(self.report(a_tok, tamper(tok, user=self.users["other"][1]), ref),
                         403, "invalid_token")
        # a size over the token's chunk_max, a bad hash, too many chunks
        self.assertError(self.report(a_tok, tok, [{"hash": sha(data), "size": CHUNK_MAX + 1}]),
                         400)
        self.assertError(self.report(a_tok, tok, [{"hash": "ab", "size": 1}]), 400)
        self.assertError(self.report(a_tok, tok, ref * 257), 400)
        self.assertEqual(self.rows(data), {"uploads": [], "grant": [], "replicas": []})
        # a body's "user" is ignored: possession is the token's user's only
        st, body, payload, _ = self.report(a_tok, tok, ref, user=self.users["other"][1])
        self.assertEqual(st, 200, payload[:300])
        self.assertEqual(self.rows(data)["uploads"], [("u:%d" % self.users["writer"][1],
                                                       len(data))])
        self.assertEqual(self.missing("other", [sha(data)]), [sha(data)])

    def test_a_token_stops_working_when_its_user_loses_write_access(self):
        data = os.urandom(4000)
        tok = self.upload_token("leaver", "/docs/leaver.bin")
        st, _, payload, _ = self.call(self.token, "PUT", "/acl", {
            "path": "/docs", "perm": "read", "user_id": self.users["leaver"][1]})
        self.assertEqual(st, 200, payload[:300])
        self.assertError(self.put_chunk(self.A, data, tok), 403)
        self.assertFalse(self.in_cache(self.A, data), "refused by the hub: not kept")
        st, _, payload, _ = self.call(self.token, "DELETE",
                                      "/members/%d" % self.users["leaver"][1])
        self.assertIn(st, (200, 204), payload[:300])
        self.assertError(self.put_chunk(self.A, data, tok), 403, "uploader_not_member")
        self.assertFalse(self.in_cache(self.A, data))
        self.assertEqual(self.rows(data)["uploads"], [])

    # ---- roost put ----

    def test_roost_put_sends_the_bytes_to_the_host_and_reads_back(self):
        """Needs the hub's commit to take host-held chunks (a15-modes: without it
        the commit sends the chunks to the hub after all) and a reader path that
        fetches from hosts (a15-picker / a15-hubserve) for the final get."""
        data = os.urandom(20 << 20)
        local = os.path.join(self.tmp, "big.bin")
        with open(local, "wb") as f:
            f.write(data)
        before = self.hub_store_bytes()
        p = self.hub.cli("put", local, "/docs/big.bin")
        self.assertIn(b"20.0 MiB of it to hosts", p.stdout)
        self.assertLess(self.hub_store_bytes() - before, 1 << 20,
                        "the hub's store grew: the bytes did not stay on the host")
        # the host syncs the file into its folder from its cache
        def synced():
            with open(self.A.path("/docs/big.bin"), "rb") as f:
                return sha(f.read()) == sha(data)
        wait_for(synced, 60, "big.bin on A", [self.A])
        # and a reader gets it (from the host: the hub does not hold it)
        out = os.path.join(self.tmp, "big.out")
        self.hub.cli("get", "/docs/big.bin", out)
        with open(out, "rb") as f:
            self.assertEqual(sha(f.read()), sha(data))

    def test_with_no_host_online_roost_put_goes_to_the_hub(self):
        self.A.stop()
        try:
            self.wait_online(self.A, False)
            self.assertEqual(self.targets("owner", "/docs/off.bin")["targets"], [])
            data = os.urandom(3 << 20)
            local = os.path.join(self.tmp, "off.bin")
            with open(local, "wb") as f:
                f.write(data)
            before = self.hub_store_bytes()
            self.hub.cli("put", local, "/docs/off.bin")
            self.assertGreaterEqual(self.hub_store_bytes() - before, len(data))
            out = os.path.join(self.tmp, "off.out")
            self.hub.cli("get", "/docs/off.bin", out)
            with open(out, "rb") as f:
                self.assertEqual(f.read(), data)
        finally:
            self.A.start()
            self.wait_online(self.A)


if __name__ == "__main__":
    main()
