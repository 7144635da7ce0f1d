"""Uploaded bytes never run as a page on a roost origin (issue 13 item 10): every
route that serves a user's file sends "Content-Security-Policy: sandbox" and
"nosniff", and makes anything but a passive type (images but SVG, audio, video,
plain text) an attachment."""
import base64
import http.client
import io
import urllib.parse
import zipfile

import harness
from harness import HubTest, q

HTML = b"<html><script>fetch('/api/v1/me')</script></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")


class ActiveContentTest(HubTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hub.request("POST", "/api/v1/workspaces/%d/folders" % cls.ws,
                        {"path": "/web"}, token=cls.token)
        for name, data, ctype in (("x.html", HTML, "text/html"),
                                  ("x.svg", SVG, "image/svg+xml"),
                                  ("x.xml", SVG, "application/xml"),
                                  ("pic.png", PNG, "image/png")):
            st, _, payload, _ = cls.hub.request(
                "PUT", "/api/v1/workspaces/%d/upload?path=%s" % (cls.ws, q("/web/" + name)),
                raw=data, token=cls.token, headers={"Content-Type": ctype})
            assert st == 201, payload

    def get(self, url_path, port, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", url_path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        return resp.status, body, resp

    def assertSafe(self, resp, inline_ok=False, where=""):
        self.assertEqual(resp.getheader("Content-Security-Policy"), "sandbox", where)
        self.assertEqual(resp.getheader("X-Content-Type-Options"), "nosniff", where)
        cd = resp.getheader("Content-Disposition") or ""
        if inline_ok:
            self.assertFalse(cd.startswith("attachment"), where)
        else:
            self.assertTrue(cd.startswith("attachment"), "%s: %r" % (where, cd))

    def routes(self, name):
        """(where, status, body, resp) of name served by every route."""
        path = "/web/" + name
        auth = {"Authorization": "Bearer " + self.token}
        out = []
        st, body, resp = self.get("/api/v1/workspaces/%d/content?path=%s" % (self.ws, q(path)),
                                  self.hub.api_port, auth)
        out.append(("api content", st, body, resp))
        st, made, payload, _ = self.api("POST", "/urls", {"path": path})
        self.assertEqual(st, 201, payload)
        u = urllib.parse.urlsplit(made["url"])
        out.append(("signed url",) + self.get(u.path, u.port))
        st, share, payload, _ = self.api("POST", "/shares", {"path": path})
        tok = share["url"].rsplit("/", 1)[1]
        out.append(("share file",) + self.get("/s/%s/file" % tok, self.hub.content_port))
        basic = {"Authorization": "Basic " + base64.b64encode(
            (harness.EMAIL + ":" + harness.PASSWORD).encode()).decode()}
        out.append(("webdav",) + self.get("/dav/%d%s" % (self.ws, path), self.hub.content_port,
                                          basic))
        return out

    def test_html_svg_and_xml_are_sandboxed_attachments_on_every_route(self):
        for name, data in (("x.html", HTML), ("x.svg", SVG), ("x.xml", SVG)):
            for where, st, body, resp in self.routes(name):
                with self.subTest(name=name, route=where):
                    self.assertEqual((st, body), (200, data))
                    self.assertSafe(resp, where=where)

    def test_an_image_shows_inline_but_sandboxed(self):
        for where, st, body, resp in self.routes("pic.png"):
            if where == "webdav":
                with self.subTest(route=where):
                    self.assertEqual((st, body), (200, PNG))
                    self.assertSafe(resp, inline_ok=True, where=where)

    def test_a_zip_of_a_folder_is_a_sandboxed_attachment(self):
        st, share, payload, _ = self.api("POST", "/shares", {"path": "/web"})
        tok = share["url"].rsplit("/", 1)[1]
        st, body, resp = self.get("/s/%s/zip" % tok, self.hub.content_port)
        self.assertEqual(st, 200)
        self.assertIn("x.html", zipfile.ZipFile(io.BytesIO(body)).namelist())
        self.assertSafe(resp, where="zip")


if __name__ == "__main__":
    harness.main()
