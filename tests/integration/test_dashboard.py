"""The dashboard port (docs/dashboard.md): static assets with a strict CSP and no
path traversal, the API under /api/v1 with HttpOnly cookie sessions and a CSRF
header, and the two endpoints the dashboard added: search and usage/history."""
import http.client
import os
import shutil
import tempfile

import harness
from harness import HubTest, q

INDEX = b"<!doctype html><title>roost test app</title><div id=app></div>"
SECRET = b"outside the web dir"


class DashboardTest(HubTest):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="roost-it-")
        cls.web = os.path.join(cls.tmp, "web")
        os.makedirs(os.path.join(cls.web, "assets"))
        with open(os.path.join(cls.web, "index.html"), "wb") as f:
            f.write(INDEX)
        with open(os.path.join(cls.web, "app.js"), "wb") as f:
            f.write(b"console.log('app')")
        with open(os.path.join(cls.web, "assets", "style.css"), "wb") as f:
            f.write(b"body{}")
        with open(os.path.join(cls.tmp, "secret.txt"), "wb") as f:
            f.write(SECRET)
        os.symlink(os.path.join(cls.tmp, "secret.txt"), os.path.join(cls.web, "link.txt"))
        os.symlink(cls.tmp, os.path.join(cls.web, "up"))
        cls.hub = harness.Hub(cls.tmp)
        cls.hub.serve_args = ["--web-dir", cls.web]
        cls.hub.start()
        cls.token = cls.hub.login()
        cls.ws = cls.hub.workspace(cls.token)

    # ---- helpers ----
    def dash(self, method, path, body=None, cookie=None, csrf=True, headers=None):
        h = dict(headers or {})
        if cookie:
            h["Cookie"] = "roost_session=" + cookie
        if csrf:
            h["X-Roost-CSRF"] = "1"
        return self.hub.request(method, path, body, headers=h, port=self.hub.dash_port)

    def raw_get(self, path):
        """GET with the path sent exactly as given (no client normalization)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.hub.dash_port, timeout=30)
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.endheaders()
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, data, resp

    def dash_login(self, email=harness.EMAIL, password=harness.PASSWORD):
        st, body, payload, resp = self.dash("POST", "/api/v1/login",
                                            {"email": email, "password": password})
        self.assertEqual(st, 200, payload)
        cookie = resp.getheader("Set-Cookie")
        self.assertTrue(cookie.startswith("roost_session=rst_"), cookie)
        return cookie.split(";")[0].split("=", 1)[1], body, cookie

    def put(self, path, data, token=None):
        st, _, payload, _ = self.api("PUT", "/upload?path=" + q(path), raw=data,
                                     token=token or self.token)
        self.assertEqual(st, 201, payload)

    def member(self, email):
        """A new member of the workspace; returns (bearer token, user id)."""
        st, inv, payload, _ = self.api("POST", "/invites", {"role": "member"})
        self.assertEqual(st, 201, payload)
        st, body, payload, _ = self.hub.request(
            "POST", "/api/v1/invites/accept",
            {"token": inv["token"], "email": email, "password": "member password 1"})
        self.assertEqual(st, 200, payload)
        return body["token"], body["user"]["id"]

    # ---- static assets ----
    def test_index_is_served_with_a_strict_csp(self):
        st, data, resp = self.raw_get("/")
        self.assertEqual(st, 200)
        self.assertEqual(data, INDEX)
        self.assertEqual(resp.getheader("Content-Type"), "text/html; charset=utf-8")
        csp = resp.getheader("Content-Security-Policy")
        self.assertIn("script-src 'self'", csp)
        self.assertIn("frame-ancestors 'none'", csp)
        self.assertNotIn("unsafe-inline", csp)
        self.assertEqual(resp.getheader("X-Frame-Options"), "DENY")
        self.assertEqual(resp.getheader("X-Content-Type-Options"), "nosniff")

    def test_assets_get_their_content_type(self):
        st, data, resp = self.raw_get("/app.js")
        self.assertEqual((st, data), (200, b"console.log('app')"))
        self.assertEqual(resp.getheader("Content-Type"), "text/javascript; charset=utf-8")
        st, _, resp = self.raw_get("/assets/style.css")
        self.assertEqual(st, 200)
        self.assertEqual(resp.getheader("Content-Type"), "text/css; charset=utf-8")

    def test_app_routes_fall_back_to_index_but_missing_assets_are_404(self):
        for path in ("/w/1/files/a/b", "/invite/rst_abc", "/login", "/assets"):
            st, data, _ = self.raw_get(path)
            self.assertEqual((st, data), (200, INDEX), path)
        st, data, resp = self.raw_get("/missing.js")
        self.assertEqual(st, 404)
        self.assertNotEqual(data, INDEX)

    def test_no_path_leaves_the_web_dir(self):
        for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/assets/../../secret.txt",
                     "/..%2fsecret.txt", "/link.txt", "/up/secret.txt", "/up/web/index.html",
                     "//secret.txt", "/assets/%2e%2e/%2e%2e/secret.txt", "/./index.html",
                     "/a\\..\\secret.txt", "/%00/secret.txt"):
            st, data, _ = self.raw_get(path)
            self.assertNotIn(SECRET, data, path)
            # "%00" ends the decoded path at "/": the app's page, nothing else
            self.assertTrue(st in (400, 404) or data == INDEX, (path, st, data[:80]))

    def test_only_get_and_head_reach_the_assets(self):
        st, _, _ = self.raw_get("/app.js")
        self.assertEqual(st, 200)
        st, _, payload, _ = self.dash("HEAD", "/app.js")
        self.assertEqual(st, 200)
        st, _, payload, _ = self.dash("POST", "/app.js", {"x": 1})
        self.assertEqual(st, 405)

    def test_missing_assets_give_a_clear_page(self):
        moved = self.web + ".away"
        os.rename(self.web, moved)
        try:
            st, data, _ = self.raw_get("/")
        finally:
            os.rename(moved, self.web)
        self.assertEqual(st, 503)
        self.assertIn(b"not found", data)
        self.assertIn(b"--web-dir", data)

    # ---- the API on the dashboard port ----
    def test_login_sets_an_httponly_strict_cookie_and_keeps_the_token_from_script(self):
        tok, body, cookie = self.dash_login()
        self.assertNotIn("token", body)
        self.assertEqual(body["user"]["email"], harness.EMAIL)
        for attr in ("HttpOnly", "SameSite=Strict", "Path=/api/v1/", "Max-Age="):
            self.assertIn(attr, cookie)
        st, me, _, resp = self.dash("GET", "/api/v1/me", cookie=tok)
        self.assertEqual((st, me["email"]), (200, harness.EMAIL))
        self.assertIn("sandbox", resp.getheader("Content-Security-Policy"))

    def test_the_cookie_is_not_accepted_on_the_api_port(self):
        tok, _, _ = self.dash_login()
        st, _, _, _ = self.hub.request("GET", "/api/v1/me",
                                       headers={"Cookie": "roost_session=" + tok})
        self.assertEqual(st, 401)
        st, _, _, _ = self.hub.request("GET", "/api/v1/me", token=tok)
        self.assertEqual(st, 200)  # the same session, as a bearer token

    def test_unsafe_methods_need_the_csrf_header(self):
        tok, _, _ = self.dash_login()
        path = "/api/v1/workspaces/%d/folders" % self.ws
        self.assertError(self.dash("POST", path, {"path": "/csrf"}, cookie=tok, csrf=False),
                         403, "csrf")
        self.assertError(self.api("GET", "/info?path=%2Fcsrf"), 404)
        self.assertError(self.dash("POST", "/api/v1/login", {"email": harness.EMAIL,
                                   "password": harness.PASSWORD}, csrf=False), 403, "csrf")
        st, _, payload, _ = self.dash("POST", path, {"path": "/csrf"}, cookie=tok)
        self.assertEqual(st, 201, payload)
        st, _, _, _ = self.dash("GET", "/api/v1/workspaces", cookie=tok, csrf=False)
        self.assertEqual(st, 200)

    def test_bearer_tokens_work_on_the_dashboard_port_too(self):
        st, body, _, _ = self.hub.request("GET", "/api/v1/workspaces", token=self.token,
                                          port=self.hub.dash_port)
        self.assertEqual(st, 200)
        self.assertEqual(body["workspaces"][0]["id"], self.ws)

    def test_logout_revokes_the_session_and_clears_the_cookie(self):
        tok, _, _ = self.dash_login()
        st, _, _, resp = self.dash("POST", "/api/v1/logout", cookie=tok)
        self.assertEqual(st, 200)
        self.assertIn("Max-Age=0", resp.getheader("Set-Cookie"))
        self.assertError(self.dash("GET", "/api/v1/me", cookie=tok), 401, "unauthorized")

    def test_files_on_the_dashboard_origin_are_sandboxed_downloads(self):
        self.put("/page.html", b"<script>alert(1)</script>")
        tok, _, _ = self.dash_login()
        st, _, data, resp = self.dash(
            "GET", "/api/v1/workspaces/%d/content?path=%%2Fpage.html" % self.ws, cookie=tok)
        self.assertEqual((st, data), (200, b"<script>alert(1)</script>"))
        self.assertTrue(resp.getheader("Content-Disposition").startswith("attachment"))
        self.assertIn("sandbox", resp.getheader("Content-Security-Policy"))
        # The API port sandboxes user content too (docs/security.md).
        st, _, _, resp = self.api("GET", "/content?path=%2Fpage.html")
        self.assertEqual(st, 200)
        self.assertEqual(resp.getheader("Content-Security-Policy"), "sandbox")

    def test_an_invite_accepted_on_the_dashboard_logs_in_by_cookie(self):
        st, inv, _, _ = self.api("POST", "/invites", {"role": "member"})
        # Made with the API (the CLI), the link opens the dashboard's join page too.
        self.assertTrue(inv["url"].startswith("http://127.0.0.1:%d/invite/" % self.hub.dash_port))
        st, inv2, _, _ = self.hub.request("POST", "/api/v1/workspaces/%d/invites" % self.ws,
                                          {"role": "member"}, token=self.token,
                                          port=self.hub.dash_port,
                                          headers={"X-Roost-CSRF": "1"})
        self.assertEqual(st, 201)
        # Made from the dashboard, the link opens the dashboard's join page.
        self.assertTrue(inv2["url"].startswith("http://127.0.0.1:%d/invite/rst_" % self.hub.dash_port))
        st, body, payload, resp = self.dash(
            "POST", "/api/v1/invites/accept",
            {"token": inv2["token"], "email": "dash-join@example.test", "password": "pw pw pw pw"})
        self.assertEqual(st, 200, payload)
        self.assertNotIn("token", body)
        tok = resp.getheader("Set-Cookie").split(";")[0].split("=", 1)[1]
        st, me, _, _ = self.dash("GET", "/api/v1/me", cookie=tok)
        self.assertEqual(me["email"], "dash-join@example.test")

    # ---- GET search ----
    def test_search_finds_files_and_folders_by_name_ignoring_case(self):
        self.put("/srch/Report-2024.PDF", b"r1")
        self.put("/srch/deep/report-notes.txt", b"r2")
        self.api("POST", "/folders", {"path": "/srch/Reports", "parents": True})
        self.put("/srch/other.txt", b"o")
        st, body, payload, _ = self.api("GET", "/search?q=REPORT")
        self.assertEqual(st, 200, payload)
        self.assertEqual([(r["type"], r["path"]) for r in body["results"]],
                         [("folder", "/srch/Reports"), ("file", "/srch/Report-2024.PDF"),
                          ("file", "/srch/deep/report-notes.txt")])
        f = body["results"][1]
        self.assertEqual((f["size"], f["version"], f["modified_by"]), (2, 1, harness.EMAIL))
        self.assertFalse(body["truncated"])

    def test_search_takes_wildcards_literally(self):
        self.put("/lit/100%_done.txt", b"x")
        self.put("/lit/100x_done.txt", b"y")
        st, body, _, _ = self.api("GET", "/search?q=" + q("0%_"))
        self.assertEqual([r["path"] for r in body["results"]], ["/lit/100%_done.txt"])
        st, body, _, _ = self.api("GET", "/search?q=" + q("_"))
        self.assertIn("/lit/100x_done.txt", [r["path"] for r in body["results"]])

    def test_search_leaves_out_what_the_caller_may_not_read(self):
        self.put("/hid/needle-secret.txt", b"s")
        self.put("/open/needle-open.txt", b"o")
        tok, uid = self.member("searcher@example.test")
        st, _, payload, _ = self.api("PUT", "/acl", {"path": "/hid", "user_id": uid,
                                                     "perm": "none"})
        self.assertEqual(st, 200, payload)
        st, body, _, _ = self.api("GET", "/search?q=needle", token=tok)
        self.assertEqual(st, 200)
        self.assertEqual([r["path"] for r in body["results"]], ["/open/needle-open.txt"])
        st, body, _, _ = self.api("GET", "/search?q=hid", token=tok)
        self.assertEqual(body["results"], [])
        st, body, _, _ = self.api("GET", "/search?q=needle")
        self.assertEqual(len(body["results"]), 2)

    def test_search_limit_truncates(self):
        for i in range(5):
            self.put("/many/lim-%d.txt" % i, b"%d" % i)
        st, body, _, _ = self.api("GET", "/search?q=lim-&limit=3")
        self.assertEqual(len(body["results"]), 3)
        self.assertTrue(body["truncated"])

    def test_search_validates_its_arguments(self):
        self.assertError(self.api("GET", "/search"), 400, "invalid_request")
        self.assertError(self.api("GET", "/search?q="), 400, "invalid_request")
        self.assertError(self.api("GET", "/search?q=" + "a" * 256), 400, "invalid_request")
        self.assertError(self.api("GET", "/search?q=a&limit=0"), 400, "invalid_request")
        self.assertError(self.api("GET", "/search?q=a&limit=1001"), 400, "invalid_request")

    # ---- GET usage/history ----
    def test_history_ends_at_usage_and_counts_dedup(self):
        data = os.urandom(300 * 1024)
        self.put("/hist/a.bin", data)
        self.put("/hist/b.bin", data)  # the same bytes: nothing new stored
        st, hist, payload, _ = self.api("GET", "/usage/history?days=2")
        self.assertEqual(st, 200, payload)
        st, usage, _, _ = self.api("GET", "/usage")
        last = hist["points"][-1]
        self.assertEqual(hist["step"], 3600 * 1000)
        self.assertEqual(len(hist["points"]), 48)
        self.assertEqual(last["logical_bytes"], usage["logical_bytes"])
        self.assertEqual(last["stored_bytes"], usage["stored_bytes"])
        ats = [p["at"] for p in hist["points"]]
        self.assertEqual(ats, sorted(ats))
        self.assertEqual(hist["from"], ats[0])
        self.assertGreaterEqual(last["uploaded_bytes"], 2 * len(data))
        self.assertGreaterEqual(last["uploaded_bytes"] - last["new_stored_bytes"], len(data))

    def test_history_counts_deleted_files_out_of_logical_bytes(self):
        st, before, _, _ = self.api("GET", "/usage/history?days=1")
        self.put("/hist2/gone.txt", b"12345")
        self.api("DELETE", "/files?path=" + q("/hist2/gone.txt"))
        st, after, _, _ = self.api("GET", "/usage/history?days=1")
        self.assertEqual(after["points"][-1]["logical_bytes"],
                         before["points"][-1]["logical_bytes"])
        self.assertEqual(after["points"][-1]["uploaded_bytes"],
                         before["points"][-1]["uploaded_bytes"] + 5)

    def test_history_counts_bytes_received_and_sent(self):
        def totals():
            st, hist, _, _ = self.api("GET", "/usage/history?days=1")
            return (sum(p["received_bytes"] for p in hist["points"]),
                    sum(p["sent_bytes"] for p in hist["points"]))
        before = totals()
        data = os.urandom(200 * 1024)
        self.put("/traffic/x.bin", data)
        for _ in range(2):
            st, _, payload, _ = self.api("GET", "/content?path=" + q("/traffic/x.bin"))
            self.assertEqual(payload, data)
        # The hub adds up its counts every few seconds.
        harness.wait_for(lambda: totals()[0] - before[0] >= len(data) and
                         totals()[1] - before[1] >= 2 * len(data), 20,
                         "the transfer counted")

    def test_history_daily_by_default_and_validated(self):
        st, body, _, _ = self.api("GET", "/usage/history")
        self.assertEqual((st, body["step"], len(body["points"])), (200, 86400000, 30))
        self.assertError(self.api("GET", "/usage/history?days=0"), 400, "invalid_request")
        self.assertError(self.api("GET", "/usage/history?days=365&step=60000"), 400,
                         "invalid_request")
        self.assertError(self.api("GET", "/usage/history?step=1000"), 400, "invalid_request")


if __name__ == "__main__":
    harness.main()
