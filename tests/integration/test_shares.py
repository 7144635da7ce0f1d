"""Share links: a file or folder for anyone with the link, read or write, with
optional expiry and password; revoking works at once; never more than the
creator may do."""
import http.client
import io
import json
import zipfile
import time
import urllib.parse

import harness
from harness import HubTest, q

PW = "member password 1"


class ShareTest(HubTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for path, data in (("/team/a.txt", b"alpha"), ("/team/sub/b.txt", b"bravo"),
                           ("/team/<b>x.txt", b"tag"), ("/secret/s.txt", b"secret")):
            st, _, payload, _ = cls.hub.request(
                "PUT", "/api/v1/workspaces/%d/upload?path=%s" % (cls.ws, q(path)),
                token=cls.token, raw=data)
            assert st == 201, payload

    def share(self, token=None, **body):
        st, resp, payload, _ = self.api("POST", "/shares", body, token=token or self.token)
        self.assertEqual(st, 201, payload)
        return resp

    def get(self, url, rel="", headers=None, method="GET", body=None):
        u = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        conn.request(method, u.path + rel, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, data, resp

    def listing(self, link, sub=""):
        st, data, _ = self.get(link["url"], "?format=json" + ("&path=" + q(sub) if sub else ""))
        self.assertEqual(st, 200, data)
        return json.loads(data)

    def test_a_shared_file_downloads_without_a_login(self):
        link = self.share(path="/team/a.txt")
        self.assertEqual(urllib.parse.urlsplit(link["url"]).port, self.hub.content_port)
        info = self.listing(link)
        self.assertEqual((info["type"], info["name"], info["size"]), ("file", "a.txt", 5))
        st, data, resp = self.get(link["url"], "/file")
        self.assertEqual((st, data), (200, b"alpha"))
        self.assertIn("attachment", resp.getheader("Content-Disposition"))
        st, data, _ = self.get(link["url"], "/file?path=" + q("/other.txt"))
        self.assertEqual(st, 404)

    def test_a_shared_folder_lists_and_serves_only_what_is_inside(self):
        link = self.share(path="/team")
        top = self.listing(link)
        self.assertEqual([e["name"] for e in top["entries"]], ["sub", "<b>x.txt", "a.txt"])
        self.assertEqual([e["name"] for e in self.listing(link, "/sub")["entries"]], ["b.txt"])
        st, data, _ = self.get(link["url"], "/file?path=" + q("/sub/b.txt"))
        self.assertEqual((st, data), (200, b"bravo"))
        for escape in ("/../secret/s.txt", "..", "/secret/s.txt", "sub/../../secret/s.txt"):
            st, data, _ = self.get(link["url"], "/file?path=" + q(escape))
            self.assertIn(st, (400, 404), escape)
            self.assertNotEqual(data, b"secret")

    def test_a_shared_folder_downloads_as_a_zip(self):
        link = self.share(path="/team")
        st, data, resp = self.get(link["url"], "/zip")
        self.assertEqual(st, 200)
        self.assertEqual(resp.getheader("Content-Type"), "application/zip")
        self.assertEqual(int(resp.getheader("Content-Length")), len(data))
        z = zipfile.ZipFile(io.BytesIO(data))
        self.assertIsNone(z.testzip())  # every CRC checks out
        files = {i.filename: z.read(i) for i in z.infolist()}
        self.assertEqual(files["a.txt"], b"alpha")
        self.assertEqual(files["sub/b.txt"], b"bravo")
        self.assertEqual(files["<b>x.txt"], b"tag")
        self.assertNotIn("secret/s.txt", files)
        st, data, _ = self.get(link["url"], "/zip?path=" + q("/sub"))
        self.assertEqual(sorted(zipfile.ZipFile(io.BytesIO(data)).namelist()), ["b.txt"])
        # a bigger, multi-chunk file survives the trip
        big = bytes(range(256)) * 40000
        self.api("PUT", "/upload?path=" + q("/zipbig/big.bin"), raw=big)
        st, data, _ = self.get(self.share(path="/zipbig")["url"], "/zip")
        self.assertEqual(zipfile.ZipFile(io.BytesIO(data)).read("big.bin"), big)
        # a member's files they may not read stay out of the archive
        file_link = self.share(path="/team/a.txt")
        self.assertEqual(self.get(file_link["url"], "/zip")[0], 404)

    def test_the_page_escapes_names(self):
        link = self.share(path="/team")
        st, html, resp = self.get(link["url"])
        self.assertEqual(st, 200)
        self.assertTrue(resp.getheader("Content-Type").startswith("text/html"))
        self.assertIn(b"&lt;b&gt;x.txt", html)
        self.assertNotIn(b"<b>x.txt", html)
        self.assertIn("default-src 'none'", resp.getheader("Content-Security-Policy"))

    def test_a_write_link_takes_uploads_and_a_read_link_does_not(self):
        rw = self.share(path="/team", scope="write")
        st, data, _ = self.get(rw["url"], "/upload?path=" + q("/sub/dropped.txt"), method="PUT",
                               body=b"dropped!")
        self.assertEqual(st, 201, data)
        st, info, _, _ = self.api("GET", "/info?path=" + q("/team/sub/dropped.txt"))
        self.assertEqual((st, info["size"]), (200, 8))
        st, page, _ = self.get(rw["url"])
        self.assertIn(b"type=file", page)
        ro = self.share(path="/team")
        st, data, _ = self.get(ro["url"], "/upload?path=" + q("/nope.txt"), method="PUT",
                               body=b"x")
        self.assertEqual(st, 403)
        self.assertEqual(self.api("GET", "/info?path=" + q("/team/nope.txt"))[0], 404)
        self.assertError(self.api("POST", "/shares", {"path": "/team/a.txt", "scope": "write"}),
                         400, "invalid_request")

    def test_a_password_protects_the_link(self):
        link = self.share(path="/team/a.txt", password="open sesame")
        plain = self.share(path="/team/a.txt")
        listed = {s["id"]: s for s in self.api("GET", "/shares")[1]["shares"]}
        self.assertIs(listed[link["id"]]["password"], True)  # on both back ends
        self.assertIs(listed[plain["id"]]["password"], False)
        st, data, _ = self.get(link["url"], "/file")
        self.assertEqual(st, 401)
        self.assertEqual(json.loads(data)["error"]["code"], "password_required")
        self.assertEqual(self.get(link["url"], "/file",
                                  {"X-Share-Password": "wrong"})[0], 401)
        st, data, _ = self.get(link["url"], "/file", {"X-Share-Password": "open sesame"})
        self.assertEqual((st, data), (200, b"alpha"))
        st, data, _ = self.get(link["url"], "/file?password=" + q("open sesame"))
        self.assertEqual(st, 200)

    def test_revoked_and_expired_links_stop_at_once(self):
        link = self.share(path="/team/a.txt")
        self.assertEqual(self.get(link["url"], "/file")[0], 200)
        self.assertEqual(self.api("DELETE", "/shares/%d" % link["id"])[0], 200)
        self.assertEqual(self.get(link["url"], "/file")[0], 404)
        short = self.share(path="/team/a.txt", expires_in=1)
        time.sleep(1.2)
        self.assertEqual(self.get(short["url"], "/file")[0], 404)
        listed = [s["id"] for s in self.api("GET", "/shares")[1]["shares"]]
        self.assertNotIn(link["id"], listed)
        self.assertNotIn(short["id"], listed)

    def test_a_link_never_grants_more_than_its_creator_has(self):
        st, inv, _, _ = self.api("POST", "/invites", {})
        st, m, _, _ = self.hub.request("POST", "/api/v1/invites/accept",
                                       {"token": inv["token"], "email": "sharer@example.test",
                                        "password": PW})
        link = self.share(token=m["token"], path="/team")
        self.assertEqual(self.get(link["url"], "?format=json")[0], 200)
        # the creator loses access to /team: the link stops too
        self.api("PUT", "/acl", {"path": "/team", "user_id": m["user"]["id"], "perm": "none"})
        self.assertEqual(self.get(link["url"], "?format=json")[0], 404)
        self.api("DELETE", "/acl?path=%2Fteam&user=" + str(m["user"]["id"]))
        self.assertEqual(self.get(link["url"], "?format=json")[0], 200)
        # a member sees their own links only; others cannot revoke them
        st, inv, _, _ = self.api("POST", "/invites", {})
        st, other, _, _ = self.hub.request("POST", "/api/v1/invites/accept",
                                           {"token": inv["token"], "email": "other@example.test",
                                            "password": PW})
        self.assertEqual(self.api("GET", "/shares", token=other["token"])[1]["shares"], [])
        self.assertError(self.api("DELETE", "/shares/%d" % link["id"], token=other["token"]),
                         403, "forbidden")

    def test_share_shares_and_unshare_from_the_cli(self):
        self.hub.login_cli()
        out = self.hub.cli("share", "/team/a.txt", "--expires", "1h").stdout.decode()
        url = out.split()[0]
        self.assertEqual(self.get(url, "/file")[1], b"alpha")
        listed = json.loads(self.hub.cli("shares", "--json").stdout)
        mine = [s for s in listed if s["path"] == "/team/a.txt"]
        self.assertTrue(mine)
        self.hub.cli("unshare", str(mine[-1]["id"]))
        self.assertEqual(self.get(url, "/file")[0], 404)


if __name__ == "__main__":
    harness.main()
