"""Chunk hashes are not capabilities (issue 13, items 6, 7 and 11): a member may
probe, commit or read a chunk by hash only if it uploaded the chunk itself or may
read a version that uses it; logical bytes count against the max file size; the
quota holds at restore, and refused uploads leave no chunks behind."""
import hashlib
import os

from harness import HubTest, q

PW = "member password 1"


def sha(data):
    return hashlib.sha256(data).hexdigest()


def commit(path, chunks, **extra):
    body = {"path": path, "size": sum(len(c) for c in chunks),
            "hash": sha(b"".join(chunks)),
            "chunks": [{"hash": sha(c), "size": len(c)} for c in chunks]}
    body.update(extra)
    return body


class PossessionTest(HubTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.call(cls.token, "POST", "/folders", {"path": "/priv", "parents": True})
        cls.users = {}
        for name, role in (("mallory", "member"), ("alice", "member"), ("admin", "admin")):
            st, inv, _, _ = cls.call(cls.token, "POST", "/invites", {"role": role})
            st, body, payload, _ = cls.hub.request(
                "POST", "/api/v1/invites/accept",
                {"token": inv["token"], "email": name + "@example.test", "password": PW})
            assert st == 200, payload
            cls.users[name] = body["token"]
        st, me, _, _ = cls.hub.request("GET", "/api/v1/me", token=cls.users["mallory"])
        st, _, payload, _ = cls.call(cls.token, "PUT", "/acl",
                                     {"path": "/priv", "user_id": me["user"]["id"] if "user" in me
                                      else me["id"], "perm": "none"})
        assert st == 200, payload

    @classmethod
    def call(cls, token, method, rel, body=None, **kw):
        return cls.hub.request(method, "/api/v1/workspaces/%d%s" % (cls.ws, rel), body,
                               token=token, **kw)

    def as_(self, user, method, rel, body=None, **kw):
        return self.call(self.users[user] if user != "owner" else self.token, method, rel, body,
                         **kw)

    def missing(self, user, hashes):
        st, body, payload, _ = self.as_(user, "POST", "/chunks/missing", {"hashes": hashes})
        self.assertEqual(st, 200, payload)
        return body["missing"]

    def objects(self, data):
        h = sha(data)
        return os.path.exists(os.path.join(self.hub.data, "objects", h[:2], h))

    def setUp(self):
        """A hidden file of its own for each test (mallory may not see /priv)."""
        self.SECRET = ("the PIN for %s is 424242\n" % self.id()).encode()
        st, _, payload, _ = self.as_("owner", "PUT", "/upload?path=" + q(
            "/priv/%s.txt" % self._testMethodName), raw=self.SECRET)
        self.assertEqual(st, 201, payload)

    def test_the_probe_does_not_tell_whether_a_hidden_chunk_exists(self):
        h = sha(self.SECRET)
        wrong = sha(b"the PIN is 000000\n")
        # the same answer for the real PIN and a wrong guess: nothing to brute-force
        self.assertEqual(self.missing("mallory", [h, wrong]), [h, wrong])
        self.assertEqual(self.missing("owner", [h, wrong]), [wrong])

    def test_a_commit_naming_a_hidden_chunk_needs_its_bytes(self):
        h = sha(self.SECRET)
        st, body, payload, _ = self.as_("mallory", "POST", "/versions",
                                        commit("/stolen.txt", [self.SECRET]))
        self.assertEqual(st, 409, payload)
        self.assertEqual(body["error"]["code"], "missing_chunks")
        self.assertEqual(body["error"]["missing"], [h])
        self.assertEqual(self.as_("mallory", "GET", "/info?path=" + q("/stolen.txt"))[0], 404)
        # the batch path is held to the same rule
        st, body, payload, _ = self.as_("mallory", "POST", "/versions/batch",
                                        {"versions": [commit("/stolen2.txt", [self.SECRET])]})
        self.assertEqual(st, 200, payload)
        self.assertEqual(body["results"][0]["status"], 409, body)
        # with the bytes sent, it commits; the store still holds them once
        self.assertEqual(self.as_("mallory", "PUT", "/chunks/" + h, raw=self.SECRET)[0], 201)
        self.assertEqual(self.missing("mallory", [h]), [])
        self.assertEqual(self.as_("mallory", "POST", "/versions",
                                  commit("/mine.txt", [self.SECRET]))[0], 201)
        self.assertTrue(self.objects(self.SECRET))

    def test_a_chunk_is_read_by_hash_only_by_who_may_read_it_or_sent_it(self):
        h = sha(self.SECRET)
        self.assertEqual(self.as_("mallory", "GET", "/chunks/" + h)[0], 404)
        self.assertEqual(self.as_("alice", "GET", "/chunks/" + h)[0], 200)
        # a member's upload that no version uses yet is hers alone, even to an admin
        pending = b"alice's draft, not committed\n"
        self.assertEqual(self.as_("alice", "PUT", "/chunks/" + sha(pending), raw=pending)[0], 201)
        self.assertEqual(self.as_("alice", "GET", "/chunks/" + sha(pending))[0], 200)
        self.assertEqual(self.as_("admin", "GET", "/chunks/" + sha(pending))[0], 404)
        self.assertEqual(self.missing("admin", [sha(pending)]), [sha(pending)])
        st, body, _, _ = self.as_("mallory", "POST", "/versions",
                                  commit("/draft.txt", [pending]))
        self.assertEqual((st, body["error"]["code"]), (409, "missing_chunks"))

    def test_a_visible_file_dedups_without_resending(self):
        data = b"shared team notes\n"
        self.assertEqual(self.as_("owner", "PUT", "/upload?path=" + q("/notes.txt"),
                                  raw=data)[0], 201)
        self.assertEqual(self.missing("alice", [sha(data)]), [])
        self.assertEqual(self.as_("alice", "POST", "/versions",
                                  commit("/notes-copy.txt", [data]))[0], 201)
        st, _, payload, _ = self.as_("alice", "GET", "/content?path=" + q("/notes-copy.txt"))
        self.assertEqual((st, payload), (200, data))


class LogicalBytesTest(HubTest):
    def settings(self, **body):
        st, _, payload, _ = self.api("PATCH", "", body)
        self.assertEqual(st, 200, payload)

    def test_one_chunk_listed_many_times_counts_its_logical_bytes(self):
        chunk = os.urandom(1 << 20)
        self.assertEqual(self.api("PUT", "/chunks/" + sha(chunk), raw=chunk)[0], 201)
        # 70 GiB of file from 1 MiB sent: over the default max file size
        body = commit("/huge.bin", [chunk])
        body["chunks"] = body["chunks"] * (70 * 1024)
        body["size"] = 70 << 30
        self.assertError(self.api("POST", "/versions", body), 413, "file_too_large")
        self.assertEqual(self.api("GET", "/info?path=" + q("/huge.bin"))[0], 404)
        # and the quota counts the logical bytes too (the refusal freed the chunk)
        self.assertEqual(self.api("PUT", "/chunks/" + sha(chunk), raw=chunk)[0], 201)
        self.settings(quota_bytes=(3 << 20) + self.api("GET", "/usage")[1]["logical_bytes"])
        try:
            body["chunks"] = body["chunks"][:4]
            body["size"] = 4 << 20
            self.assertError(self.api("POST", "/versions", body), 507, "quota_exceeded")
        finally:
            self.settings(quota_bytes=0)


class QuotaTest(HubTest):
    def settings(self, **body):
        st, _, payload, _ = self.api("PATCH", "", body)
        self.assertEqual(st, 200, payload)

    def used(self):
        return self.api("GET", "/usage")[1]["logical_bytes"]

    def objects(self, data):
        h = sha(data)
        return os.path.exists(os.path.join(self.hub.data, "objects", h[:2], h))

    def test_restoring_from_the_trash_respects_the_quota(self):
        self.assertEqual(self.api("PUT", "/upload?path=" + q("/t1.bin"), raw=b"a" * 4000)[0],
                         201)
        st, info, _, _ = self.api("GET", "/info?path=" + q("/t1.bin"))
        self.assertEqual(self.api("DELETE", "/files?path=" + q("/t1.bin"))[0], 200)
        self.settings(quota_bytes=self.used() + 5000)
        try:
            self.assertEqual(self.api("PUT", "/upload?path=" + q("/t2.bin"),
                                      raw=b"b" * 3000)[0], 201)
            self.assertError(self.api("POST", "/trash/restore", {"id": info["id"]}), 507,
                             "quota_exceeded")
            self.assertEqual(self.api("GET", "/info?path=" + q("/t1.bin"))[0], 404)
        finally:
            self.settings(quota_bytes=0)
        self.assertEqual(self.api("POST", "/trash/restore", {"id": info["id"]})[0], 200)

    def test_an_upload_refused_for_quota_leaves_no_chunks(self):
        self.settings(quota_bytes=self.used() + 5000)
        try:
            data = os.urandom(8000)
            self.assertError(self.api("PUT", "/upload?path=" + q("/big.bin"), raw=data), 507)
            self.assertFalse(self.objects(data))
            # a share link's upload (anonymous) is held to the same
            self.assertEqual(self.api("POST", "/folders", {"path": "/drop"})[0], 201)
            st, link, payload, _ = self.api("POST", "/shares",
                                            {"path": "/drop", "scope": "write"})
            self.assertEqual(st, 201, payload)
            tok = link["token"]
            st, _, payload, _ = self.hub.request("PUT", "/s/%s/upload?path=%s" % (tok, q("/x")),
                                                 raw=data)
            self.assertEqual(st, 507, payload)
            self.assertFalse(self.objects(data))
        finally:
            self.settings(quota_bytes=0)

    def test_pending_uploads_are_bounded_by_the_quota(self):
        self.settings(quota_bytes=self.used() + 10000)
        try:
            a, b, c = os.urandom(4000), os.urandom(4000), os.urandom(4000)
            for d in (a, b):
                self.assertEqual(self.api("PUT", "/chunks/" + sha(d), raw=d)[0], 201)
            # uploaded and not committed counts: 12000 bytes would not fit
            self.assertError(self.api("PUT", "/chunks/" + sha(c), raw=c), 507, "quota_exceeded")
            self.assertFalse(self.objects(c))
            # committed counts too, until the file goes
            self.assertEqual(self.api("POST", "/versions", commit("/ab.bin", [a, b]))[0], 201)
            self.assertError(self.api("PUT", "/chunks/" + sha(c), raw=c), 507, "quota_exceeded")
            self.assertEqual(self.api("DELETE", "/files?path=" + q("/ab.bin"))[0], 200)
            self.assertEqual(self.api("PUT", "/chunks/" + sha(c), raw=c)[0], 201)
            self.assertEqual(self.api("POST", "/versions", commit("/c.bin", [c]))[0], 201)
        finally:
            self.settings(quota_bytes=0)

if __name__ == "__main__":
    import harness
    harness.main()
