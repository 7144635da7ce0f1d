"""Share pages as a visitor's browser sees them: the folder and file pages on
the content port (status, type, names escaped, sizes and dates, previews served
with the content headers), the password form and the download that follows,
and the upload form of a write link."""
import http.client
import json
import os
import re
import subprocess
import tempfile
import struct
import urllib.parse
import zlib

import harness
from harness import HubTest, q, main

EVIL = "<img src=x onerror=alert(1)>.txt"


def tiny_png():
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    raw = b"\x00\xff\x00\x00"  # one red pixel
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class SharePagesTest(HubTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for path, data in (("/pub/a.txt", b"alpha"), ("/pub/sub/deep/b.txt", b"bravo"),
                           ("/pub/" + EVIL, b"evil"), ("/pub/pic.png", tiny_png()),
                           ("/pub/page.html", b"<!DOCTYPE html><html><head><title>t</title></head>"
                            b"<body><script>alert(1)</script></body></html>\n"),
                           ("/pub/blob.bin", bytes(range(256)) * 4),
                           ("/drop/keep.txt", b"keep")):
            st, _, payload, _ = cls.hub.request(
                "PUT", "/api/v1/workspaces/%d/upload?path=%s" % (cls.ws, q(path)),
                token=cls.token, raw=data)
            assert st == 201, payload

    def share(self, **body):
        st, resp, payload, _ = self.api("POST", "/shares", body)
        self.assertEqual(st, 201, payload)
        return resp

    def get(self, url, rel="", headers=None, method="GET", body=None):
        u = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        conn.request(method, u.path + rel, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, data, resp

    def post_form(self, url, fields, headers=None):
        h = {"Content-Type": "application/x-www-form-urlencoded"}
        h.update(headers or {})
        return self.get(url, "", h, "POST", urllib.parse.urlencode(fields))

    def test_a_folder_page_lists_names_sizes_and_dates_and_escapes_names(self):
        link = self.share(path="/pub")
        st, page, resp = self.get(link["url"], "", {"Accept": "text/html"})
        self.assertEqual(st, 200)
        self.assertTrue(resp.getheader("Content-Type").startswith("text/html"))
        self.assertEqual(resp.getheader("X-Content-Type-Options"), "nosniff")
        csp = resp.getheader("Content-Security-Policy")
        self.assertIn("default-src 'none'", csp)
        self.assertNotIn("unsafe-inline", csp)
        text = page.decode()
        self.assertIn("&lt;img src=x onerror=alert(1)&gt;.txt", text)
        self.assertNotIn("<img src=x", text)
        self.assertIn(">a.txt</a>", text)
        self.assertIn("5 B", text)  # "alpha"
        self.assertRegex(text, r"<time datetime=\d{4}-\d\d-\d\dT")
        self.assertIn("Download all as ZIP", text)
        self.assertIn("?path=/sub'", text)  # the sub-folder opens as a page
        self.assertNotIn("type=file", text)  # a read link has no upload form

    def test_nested_folders_are_pages_with_a_path_back(self):
        link = self.share(path="/pub")
        st, page, _ = self.get(link["url"], "?path=" + q("/sub/deep"))
        self.assertEqual(st, 200)
        text = page.decode()
        self.assertIn(">b.txt</a>", text)
        self.assertIn("?path=/sub'>sub</a>", text)  # the crumbs lead back up
        self.assertIn("<a href='%s'>pub</a>" % urllib.parse.urlsplit(link["url"]).path, text)
        self.assertIn("/zip?path=/sub/deep", text)
        st, page, _ = self.get(link["url"], "?path=" + q("/nope"))
        self.assertEqual(st, 404)
        self.assertIn(b"Nothing is shared there", page)

    def test_a_file_page_previews_an_image_served_inline_with_content_headers(self):
        link = self.share(path="/pub/pic.png")
        st, page, _ = self.get(link["url"])
        self.assertEqual(st, 200)
        self.assertIn(b"<img class=preview src='", page)
        self.assertIn(b"/file?inline=1", page)
        st, data, resp = self.get(link["url"], "/file?inline=1")
        self.assertEqual((st, data[:4]), (200, b"\x89PNG"))
        self.assertEqual(resp.getheader("Content-Type"), "image/png")
        self.assertIsNone(resp.getheader("Content-Disposition"))
        self.assertEqual(resp.getheader("Content-Security-Policy"), "sandbox")
        self.assertEqual(resp.getheader("X-Content-Type-Options"), "nosniff")
        # the download button stays an attachment
        st, data, resp = self.get(link["url"], "/file")
        self.assertTrue(resp.getheader("Content-Disposition").startswith("attachment"))

    def test_html_is_shown_only_as_text_under_a_sandbox(self):
        link = self.share(path="/pub/page.html")
        st, page, _ = self.get(link["url"])
        self.assertEqual(st, 200)
        self.assertIn(b"<dd>text/plain</dd>", page)  # the hub never types a file as HTML
        st, data, resp = self.get(link["url"], "/file?inline=1")
        self.assertEqual(st, 200)
        self.assertTrue(resp.getheader("Content-Type").startswith("text/plain"))
        self.assertEqual(resp.getheader("Content-Security-Policy"), "sandbox")
        self.assertEqual(resp.getheader("X-Content-Type-Options"), "nosniff")

    def test_other_types_get_no_preview_and_stay_attachments(self):
        link = self.share(path="/pub/blob.bin")
        st, page, _ = self.get(link["url"])
        self.assertEqual(st, 200)
        self.assertNotIn(b"inline=1", page)
        self.assertIn(b"No preview", page)
        st, data, resp = self.get(link["url"], "/file?inline=1")
        self.assertEqual(st, 200)
        self.assertTrue(resp.getheader("Content-Disposition").startswith("attachment"))

    def test_a_text_file_is_previewed_in_a_sandboxed_frame(self):
        link = self.share(path="/pub/a.txt")
        st, page, _ = self.get(link["url"])
        self.assertIn(b"<iframe class=preview sandbox src='", page)
        st, data, resp = self.get(link["url"], "/file?inline=1")
        self.assertEqual((st, data), (200, b"alpha"))
        self.assertTrue(resp.getheader("Content-Type").startswith("text/plain"))

    def test_a_password_link_shows_a_form_and_its_cookie_carries_the_password(self):
        link = self.share(path="/pub/a.txt", password="open sesame")
        st, page, resp = self.get(link["url"])
        self.assertEqual(st, 401)
        self.assertTrue(resp.getheader("Content-Type").startswith("text/html"))
        self.assertIn(b"<form class=lock method=post", page)
        self.assertIn(b"name=password type=password", page)
        self.assertNotIn(b"alpha", page)
        # a wrong password: the form again, said plainly, no cookie
        st, page, resp = self.post_form(link["url"], {"password": "wrong one", "path": "/"})
        self.assertEqual(st, 401)
        self.assertIn(b"Wrong password.", page)
        self.assertIsNone(resp.getheader("Set-Cookie"))
        # the right one: back to the page with a cookie for this link only
        st, _, resp = self.post_form(link["url"], {"password": "open sesame", "path": "/"})
        self.assertEqual(st, 303)
        loc, cookie = resp.getheader("Location"), resp.getheader("Set-Cookie")
        path = urllib.parse.urlsplit(link["url"]).path
        self.assertEqual(loc, path)
        self.assertNotIn("sesame", loc + cookie)
        self.assertIn("HttpOnly", cookie)
        self.assertIn("SameSite=Strict", cookie)
        self.assertIn("Path=%s;" % path, cookie)
        jar = {"Cookie": cookie.split(";")[0]}
        st, page, _ = self.get(link["url"], "", jar)
        self.assertEqual(st, 200)
        self.assertIn(b"Download", page)
        st, data, _ = self.get(link["url"], "/file", jar)
        self.assertEqual((st, data), (200, b"alpha"))
        # the cookie opens no other link, and a forged one nothing
        other = self.share(path="/pub/sub/deep/b.txt", password="other pass")
        self.assertEqual(self.get(other["url"], "/file", jar)[0], 401)
        self.assertEqual(self.get(link["url"], "/file", {"Cookie": "roost_share=x.y"})[0], 401)

    def test_wrong_passwords_at_the_form_are_throttled(self):
        link = self.share(path="/pub/a.txt", password="right pass")
        statuses = []
        for _ in range(9):
            st, page, resp = self.post_form(link["url"], {"password": "guess"})
            statuses.append(st)
            if st == 429:
                self.assertIn(b"Too many wrong passwords", page)
                self.assertTrue(resp.getheader("Retry-After"))
                break
        self.assertEqual(statuses[0], 401)
        self.assertEqual(statuses[-1], 429, statuses)

    def test_the_upload_form_posts_files_into_the_shown_folder(self):
        link = self.share(path="/drop", scope="write", password="drop here")
        st, _, resp = self.post_form(link["url"], {"password": "drop here"})
        self.assertEqual(st, 303)
        jar = {"Cookie": resp.getheader("Set-Cookie").split(";")[0]}
        st, page, _ = self.get(link["url"], "", jar)
        self.assertEqual(st, 200)
        text = page.decode()
        self.assertIn("<form id=up", text)
        self.assertIn("type=file name=files", text)
        action = re.search(r"data-action='([^']*)'", text).group(1)
        self.assertTrue(action.endswith("/upload?path="))
        # what the form's script sends: PUT action + the folder and name
        st, data, _ = self.get(link["url"], action[len(urllib.parse.urlsplit(link["url"]).path):]
                               + q("/new.txt"), jar, "PUT", b"fresh bytes")
        self.assertEqual(st, 201, data)
        st, info, _, _ = self.api("GET", "/info?path=" + q("/drop/new.txt"))
        self.assertEqual((st, info["size"]), (200, 11))
        # without the cookie (or the password) nothing goes in
        st, _, _ = self.get(link["url"], "/upload?path=" + q("/sneaky.txt"), None, "PUT", b"x")
        self.assertEqual(st, 401)
        self.assertEqual(self.api("GET", "/info?path=" + q("/drop/sneaky.txt"))[0], 404)

    def test_a_dead_link_is_a_page_not_json(self):
        link = self.share(path="/pub/a.txt")
        self.assertEqual(self.api("DELETE", "/shares/%d" % link["id"])[0], 200)
        st, page, resp = self.get(link["url"])
        self.assertEqual(st, 404)
        self.assertTrue(resp.getheader("Content-Type").startswith("text/html"))
        self.assertIn(b"This link does not work", page)
        st, _, _ = self.post_form(link["url"], {"password": "x"})
        self.assertEqual(st, 404)


class InvitePagesTest(HubTest):
    """Invite URLs are the dashboard's pages; the CLI finds the API from them."""

    def other_env(self, name):
        return dict(self.hub.env(), XDG_CONFIG_HOME=os.path.join(self.tmp, name),
                    ROOST_PASSWORD="guest password 1")

    def test_roost_invite_prints_the_dashboards_url_and_roost_join_accepts_it(self):
        self.hub.login_cli()
        out = self.hub.cli("invite").stdout.decode()
        url = out.split()[0]
        self.assertTrue(url.startswith("http://127.0.0.1:%d/invite/" % self.hub.dash_port), out)
        self.assertIn("opens a join page in a browser", out)
        token = url.rsplit("/", 1)[1]
        # what the join page (and the CLI) learn about it, without a login
        st, info, payload, _ = self.hub.request("GET", "/api/v1/invites/" + token,
                                                port=self.hub.dash_port)
        self.assertEqual(st, 200, payload)
        self.assertEqual((info["kind"], info["role"], info["workspace"]["name"]),
                         ("member", "member", "default"))
        self.assertEqual(info["api"], "http://127.0.0.1:%d" % self.hub.api_port)
        self.assertNotIn("id", info["workspace"])
        p = subprocess.run([harness.ROOST, "join", url, "--email", "guest@example.test"],
                           env=self.other_env("cfg-guest"), capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"joined workspace default as member", p.stdout)
        # the saved login is the API's, and it works
        p = subprocess.run([harness.ROOST, "ls", "/"], env=self.other_env("cfg-guest"),
                           capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        # a used invite tells so, on the page's route and to the CLI
        st, body, _, _ = self.hub.request("GET", "/api/v1/invites/" + token)
        self.assertEqual((st, body["error"]["code"]), (404, "invite_not_found"))
        p = subprocess.run([harness.ROOST, "join", url, "--email", "late@example.test"],
                           env=self.other_env("cfg-late"), capture_output=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"expired, was used or was revoked", p.stderr)

    def test_a_new_account_from_the_join_page_keeps_its_name(self):
        st, inv, _, _ = self.api("POST", "/invites", {"role": "member"})
        st, body, payload, _ = self.hub.request(
            "POST", "/api/v1/invites/accept",
            {"token": inv["token"], "email": "named@example.test", "password": "pw pw pw pw",
             "name": "Nora Named"})
        self.assertEqual(st, 200, payload)
        rows = self.hub.sql("SELECT name FROM users WHERE email = ?", ("named@example.test",))
        self.assertEqual(rows[0][0], "Nora Named")

    def test_host_invites_open_a_page_and_the_wrong_kind_is_refused_by_name(self):
        self.hub.login_cli()
        out = self.hub.cli("host", "invite").stdout.decode()
        url = out.split()[0]
        self.assertTrue(url.startswith("http://127.0.0.1:%d/host-invite/" % self.hub.dash_port))
        st, info, _, _ = self.hub.request("GET", "/api/v1/invites/" + url.rsplit("/", 1)[1])
        self.assertEqual((st, info["kind"]), (200, "host"))
        # a member invite handed to roost host join: refused, nothing joined
        st, inv, _, _ = self.api("POST", "/invites", {"role": "member"})
        wrong = "http://127.0.0.1:%d/host-invite/%s" % (self.hub.dash_port, inv["token"])
        d = os.path.join(self.tmp, "not-a-host")
        p = subprocess.run([harness.ROOST, "host", "join", wrong, "--dir", d, "--label", "x"],
                           env=self.hub.env(), capture_output=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"this is a member invite; use roost join URL --email EMAIL", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(d, ".roost", "host.json")))
        st, info, _, _ = self.hub.request("GET", "/api/v1/invites/" + inv["token"])
        self.assertEqual(st, 200)  # still unused


# A one-page PDF: the bytes matter only to the browser tests (tests/browser/pdf.test.mjs).
PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
       b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
       b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 300]>>endobj\n"
       b"trailer<</Root 1 0 R>>\n%%EOF\n")


class SharePdfAssetsTest(HubTest):
    """A shared PDF's page loads pdf.js from the dashboard's build, which the
    content port serves at /s/_assets/ under fixed names only."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="roost-it-")
        cls.web = os.path.join(cls.tmp, "web")
        os.makedirs(cls.web)
        for name, data in (("pdf-preview.js", b"window.roostPdf={}"),
                           ("pdf.worker.min.mjs", b"self.onmessage=null"),
                           ("app.js", b"console.log('app')"), ("index.html", b"<!doctype html>")):
            with open(os.path.join(cls.web, name), "wb") as f:
                f.write(data)
        with open(os.path.join(cls.tmp, "secret.txt"), "wb") as f:
            f.write(b"not for visitors")
        cls.hub = harness.Hub(cls.tmp)
        cls.stopped = False
        cls.addClassCleanup(cls.stop_processes)
        cls.hub.serve_args = ["--web-dir", cls.web]
        cls.hub.start()
        cls.token = cls.hub.login()
        cls.ws = cls.hub.workspace(cls.token)
        for path, data in (("/docs/paper.pdf", PDF), ("/docs/a.txt", b"alpha")):
            st, _, payload, _ = cls.hub.request(
                "PUT", "/api/v1/workspaces/%d/upload?path=%s" % (cls.ws, q(path)),
                token=cls.token, raw=data)
            assert st == 201, payload

    def raw_get(self, path):
        """GET on the content port with the path sent exactly as given."""
        conn = http.client.HTTPConnection("127.0.0.1", self.hub.content_port, timeout=30)
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.endheaders()
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, data, resp

    def share_url(self, path):
        st, resp, payload, _ = self.api("POST", "/shares", {"path": path})
        self.assertEqual(st, 201, payload)
        return urllib.parse.urlsplit(resp["url"]).path

    def test_the_asset_route_serves_its_two_files_as_scripts(self):
        for name, data in (("pdf-preview.js", b"window.roostPdf={}"),
                           ("pdf.worker.min.mjs", b"self.onmessage=null")):
            st, body, resp = self.raw_get("/s/_assets/" + name)
            self.assertEqual(st, 200, name)
            self.assertEqual(body, data)
            self.assertEqual(resp.getheader("Content-Type"), "text/javascript; charset=utf-8")
            self.assertEqual(resp.getheader("X-Content-Type-Options"), "nosniff")
            self.assertEqual(resp.getheader("Content-Security-Policy"),
                             "default-src 'none'; frame-ancestors 'none'")

    def test_the_asset_route_serves_nothing_else_of_the_build_or_the_disk(self):
        for path in ("/s/_assets/app.js", "/s/_assets/index.html", "/s/_assets/",
                     "/s/_assets/..%2fsecret.txt", "/s/_assets/../secret.txt",
                     "/s/_assets/%2e%2e/secret.txt", "/s/_assets/pdf-preview.js/",
                     "/s/_assets/PDF-PREVIEW.JS", "/s/_assets/pdf-preview.js.map",
                     "/s/_assets/./pdf-preview.js", "/s/_assets//etc/passwd"):
            st, body, _ = self.raw_get(path)
            self.assertEqual(st, 404, path)
            self.assertNotIn(b"not for visitors", body)
            self.assertNotIn(b"console.log", body)
        st, _, _ = self.raw_get("/s/_assets/pdf-preview.js")
        self.assertEqual(st, 200)  # the route itself works

    def test_a_shared_pdf_page_loads_pdfjs_with_its_nonce_and_allows_its_worker(self):
        st, page, resp = self.raw_get(self.share_url("/docs/paper.pdf"))
        self.assertEqual(st, 200)
        text = page.decode()
        csp = resp.getheader("Content-Security-Policy")
        nonce = re.search(r"script-src 'nonce-([0-9a-f]+)'", csp).group(1)
        self.assertIn("<script nonce=%s src='/s/_assets/pdf-preview.js'></script>" % nonce, text)
        self.assertIn("worker-src 'self'", csp)
        self.assertRegex(text, r"<canvas class=preview hidden data-pdf-src='/s/[^/']+/file\?inline=1'")
        self.assertIn("Download</a>", text)
        # the PDF itself is still only an attachment under a sandbox
        src = re.search(r"data-pdf-src='([^']+)'", text).group(1)
        st, body, resp = self.raw_get(src)
        self.assertEqual(st, 200)
        self.assertEqual(body, PDF)
        self.assertTrue(resp.getheader("Content-Disposition").startswith("attachment"))
        self.assertEqual(resp.getheader("Content-Security-Policy"), "sandbox")

    def test_other_pages_start_no_worker_and_load_no_pdfjs(self):
        st, page, resp = self.raw_get(self.share_url("/docs/a.txt"))
        self.assertEqual(st, 200)
        self.assertNotIn("worker-src", resp.getheader("Content-Security-Policy"))
        self.assertNotIn(b"pdf-preview.js", page)

    def test_without_the_dashboard_build_a_pdf_page_keeps_the_download(self):
        moved = os.path.join(self.tmp, "pdf-preview.js")
        os.rename(os.path.join(self.web, "pdf-preview.js"), moved)
        try:
            st, page, resp = self.raw_get(self.share_url("/docs/paper.pdf"))
            st2, _, _ = self.raw_get("/s/_assets/pdf-preview.js")
        finally:
            os.rename(moved, os.path.join(self.web, "pdf-preview.js"))
        self.assertEqual(st, 200)
        self.assertEqual(st2, 404)
        text = page.decode()
        self.assertNotIn("<script", text)
        self.assertNotIn("<canvas", text)
        self.assertNotIn("worker-src", resp.getheader("Content-Security-Policy"))
        self.assertIn("No preview of PDFs on this server", text)
        self.assertIn("Download</a>", text)


if __name__ == "__main__":
    main()
