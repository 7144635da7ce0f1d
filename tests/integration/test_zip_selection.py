"""GET zip?path=P&path=Q… (issue 16, the dashboard's bulk download): the
selected files and folders as one ZIP, only what the caller may read, and a
clear refusal, before any byte, for a bad or hidden path.

- files and folders together: a file as its name, a folder as name/…
- one folder names the archive after it
- a path hidden by the ACL reads exactly like a missing one (404), and a file
  hidden inside a selected folder is left out
- no path, an invalid path, or too many paths: 400, nothing sent
"""
import io
import zipfile

from harness import HubTest, q

PW = "member password 1"


class ZipSelectionTest(HubTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for path in ("/docs/sub", "/docs/secret", "/other"):
            cls.call(cls.token, "POST", "/folders", {"path": path, "parents": True})
        cls.files = {"/a.txt": b"alpha\n", "/b.bin": bytes(range(256)) * 40,
                     "/docs/d.txt": b"doc\n", "/docs/sub/e.txt": b"deep\n",
                     "/docs/secret/s.txt": b"salaries\n", "/other/o.txt": b"other\n"}
        for path, data in cls.files.items():
            st, _, payload, _ = cls.call(cls.token, "PUT", "/upload?path=" + q(path), raw=data)
            assert st in (200, 201), payload
        st, inv, _, _ = cls.call(cls.token, "POST", "/invites", {"role": "member"})
        st, body, payload, _ = cls.hub.request(
            "POST", "/api/v1/invites/accept",
            {"token": inv["token"], "email": "m@example.test", "password": PW})
        assert st == 200, payload
        cls.member = body["token"]
        for path in ("/docs/secret", "/other"):
            st, _, payload, _ = cls.call(cls.token, "PUT", "/acl",
                                         {"path": path, "user_id": body["user"]["id"],
                                          "perm": "none"})
            assert st == 200, payload

    @classmethod
    def call(cls, token, method, rel, body=None, **kw):
        return cls.hub.request(method, "/api/v1/workspaces/%d%s" % (cls.ws, rel), body,
                               token=token, **kw)

    def zip(self, *paths, token=None):
        rel = "/zip?" + "&".join("path=" + q(p) for p in paths)
        return self.call(token or self.token, "GET", rel)

    def test_files_and_folders_go_into_one_archive(self):
        st, _, payload, resp = self.zip("/a.txt", "/b.bin", "/docs")
        self.assertEqual(st, 200, payload[:300])
        self.assertEqual(resp.getheader("Content-Type"), "application/zip")
        self.assertIn("roost.zip", resp.getheader("Content-Disposition"))
        z = zipfile.ZipFile(io.BytesIO(payload))
        self.assertEqual(sorted(z.namelist()), ["a.txt", "b.bin", "docs/d.txt",
                                                "docs/secret/s.txt", "docs/sub/e.txt"])
        self.assertEqual(z.read("b.bin"), self.files["/b.bin"])
        self.assertEqual(z.read("docs/sub/e.txt"), b"deep\n")
        self.assertIsNone(z.testzip())

    def test_one_folder_names_the_archive(self):
        st, _, payload, resp = self.zip("/docs/sub")
        self.assertEqual(st, 200, payload[:300])
        self.assertIn("filename*=UTF-8''sub.zip", resp.getheader("Content-Disposition"))
        self.assertEqual(zipfile.ZipFile(io.BytesIO(payload)).namelist(), ["sub/e.txt"])

    def test_a_member_gets_only_what_they_may_read(self):
        st, _, payload, _ = self.zip("/docs", "/a.txt", token=self.member)
        self.assertEqual(st, 200, payload[:300])
        names = zipfile.ZipFile(io.BytesIO(payload)).namelist()
        self.assertEqual(sorted(names), ["a.txt", "docs/d.txt", "docs/sub/e.txt"])

    def test_a_hidden_path_reads_like_a_missing_one(self):
        hidden = self.zip("/a.txt", "/other", token=self.member)
        missing = self.zip("/a.txt", "/nothere", token=self.member)
        self.assertError(hidden, 404, "not_found")
        self.assertError(missing, 404, "not_found")
        self.assertEqual(hidden[1]["error"]["message"].replace("/other", "P"),
                         missing[1]["error"]["message"].replace("/nothere", "P"))
        self.assertError(self.zip("/other/o.txt", token=self.member), 404, "not_found")

    def test_bad_requests_are_refused_before_any_byte(self):
        self.assertError(self.call(self.token, "GET", "/zip"), 400, "missing_argument")
        self.assertError(self.zip("/a.txt", "/x/../../y\x01"), 400, "invalid_path")
        self.assertError(self.zip(*["/a.txt"] * 201), 400, "too_many_paths")

    def test_without_a_login_nothing_is_sent(self):
        st, _, _, _ = self.hub.request(
            "GET", "/api/v1/workspaces/%d/zip?path=%%2Fa.txt" % self.ws)
        self.assertEqual(st, 401)


if __name__ == "__main__":
    import unittest
    unittest.main()
