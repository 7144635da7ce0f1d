"""A hub behind a load balancer (docs/scale-out.md): with --trusted-proxy, the
client a proxy forwards for (X-Forwarded-For) is the one the password
throttle and the audit see; from anyone else the header is ignored; and a
relayed request is never "this machine" for the operators' endpoints; and
/readyz tells a balancer's health check whether the hub can serve."""
import os
import tempfile

import harness
from harness import Hub, HubTest, main

SPOOF = {"X-Forwarded-For": "203.0.113.9"}


def dashboard_login_cookie(hub, headers):
    """The Set-Cookie of a dashboard sign-in (the dashboard port)."""
    h = {"X-Roost-CSRF": "1"}
    h.update(headers)
    st, _, _, resp = hub.request("POST", "/api/v1/login",
                                 {"email": harness.EMAIL, "password": harness.PASSWORD},
                                 headers=h, port=hub.dash_port)
    assert st == 200, st
    return resp.getheader("Set-Cookie") or ""


class UntrustedProxyTest(HubTest):
    """A hub with no --trusted-proxy: X-Forwarded-For means nothing to it."""

    def failed_login(self, email, headers=None):
        return self.hub.request("POST", "/api/v1/login",
                                {"email": email, "password": "wrong password!"},
                                headers=headers)

    def test_a_forwarded_for_header_does_not_change_the_audited_address(self):
        st, _, _, _ = self.failed_login("nobody-untrusted@example.test", SPOOF)
        self.assertEqual(st, 401)
        rows = self.hub.sql("SELECT client_addr FROM audit_log WHERE action = 'login.failed' "
                            "AND target = 'nobody-untrusted@example.test'")
        self.assertEqual([r[0] for r in rows], ["127.0.0.1"])

    def test_a_forwarded_https_does_not_make_the_session_cookie_secure(self):
        cookie = dashboard_login_cookie(self.hub, {"X-Forwarded-Proto": "https"})
        self.assertIn("HttpOnly", cookie)
        self.assertNotIn("Secure", cookie)

    def test_metrics_answer_loopback_but_not_a_request_a_proxy_relayed(self):
        st, _, _, _ = self.hub.request("GET", "/metrics")
        self.assertEqual(st, 200)
        st, body, _, _ = self.hub.request("GET", "/metrics", headers=SPOOF)
        self.assertEqual(st, 403)
        self.assertEqual(body["error"]["code"], "ops_only")
        st, _, _, _ = self.hub.request("GET", "/metrics",
                                       headers={"Forwarded": "for=203.0.113.9"})
        self.assertEqual(st, 403)


class ReadinessTest(HubTest):
    def test_readyz_is_ready_while_the_database_and_the_store_answer(self):
        st, body, _, _ = self.hub.request("GET", "/readyz")
        self.assertEqual((st, body), (200, {"status": "ready"}))

    def test_readyz_names_a_store_that_is_gone_and_recovers_with_it(self):
        # The hub checks at most once a second (a flood of checks must not
        # become a flood of store requests): each change shows within that.
        objects = os.path.join(self.hub.data, "objects")
        os.rename(objects, objects + ".away")
        seen = []
        try:
            harness.wait_for(lambda: seen.append(self.hub.request("GET", "/readyz")[:2])
                             or seen[-1][0] != 200, 10, "/readyz to say not ready")
            st2, _, _, _ = self.hub.request("GET", "/healthz")
        finally:
            os.rename(objects + ".away", objects)
        self.assertEqual(seen[-1], (503, {"status": "not_ready", "down": ["store"]}))
        self.assertEqual(st2, 200)  # alive, only not ready
        harness.wait_for(lambda: self.hub.request("GET", "/readyz")[0] == 200, 10,
                         "/readyz to say ready again")


class PublicUrlTest(HubTest):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="roost-puburl-")
        cls.hub = Hub(cls.tmp)
        secret = os.path.join(cls.tmp, "oidc-secret")
        with open(secret, "w") as f:
            f.write("s3cret\n")
        os.chmod(secret, 0o600)
        cls.hub.serve_args = ["--public-url", "https://files.example.test/",
                              "--oidc-issuer", "https://id.example.test",
                              "--oidc-client-id", "roost", "--oidc-client-secret-file", secret]
        cls.stopped = False
        cls.addClassCleanup(cls.stop_processes)
        cls.hub.start()
        cls.token = cls.hub.login()
        cls.ws = cls.hub.workspace(cls.token)

    def test_the_oidc_redirect_uri_defaults_to_the_public_url(self):
        with open(os.path.join(self.tmp, "hub.log"), errors="replace") as f:
            log = f.read()
        self.assertIn("redirect URI https://files.example.test/api/v1/oidc/callback", log)

    def test_links_start_with_the_public_url(self):
        st, body, _, _ = self.api("POST", "/invites", {})
        self.assertEqual(st, 201, body)
        self.assertTrue(body["url"].startswith("https://files.example.test/invite/"), body)
        st, peek, _, _ = self.hub.request("GET", "/api/v1/invites/" + body["token"])
        self.assertEqual((st, peek["api"]), (200, "https://files.example.test"))
        st, _, _, _ = self.api("PUT", "/upload?path=" + "%2Fp.txt", raw=b"public",
                               headers={"Content-Type": "application/octet-stream"})
        self.assertIn(st, (200, 201))
        st, body, _, _ = self.api("POST", "/urls", {"path": "/p.txt"})
        self.assertEqual(st, 201, body)
        self.assertTrue(body["url"].startswith("https://files.example.test/c/"), body)

    def test_a_public_url_with_a_path_or_another_scheme_is_refused(self):
        for bad in ("https://files.example.com/roost", "ftp://files.example.com",
                    "files.example.com", "https://a b"):
            p = self.roost("serve", "--data", self.hub.data, *self.hub.db_args(),
                           "--public-url", bad, timeout=60)
            self.assertEqual(p.returncode, 2, bad)
            self.assertIn("--public-url takes the origin", p.err)


class TrustedProxyTest(HubTest):
    """The hub trusts 127.0.0.1 as its balancer (the test is the balancer)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="roost-proxy-")
        cls.hub = Hub(cls.tmp)
        cls.hub.serve_args = ["--trusted-proxy", "10.9.9.9, 127.0.0.1",
                              "--login-throttle", "1"]
        cls.stopped = False
        cls.addClassCleanup(cls.stop_processes)
        cls.hub.start()
        cls.token = cls.hub.login()
        cls.ws = cls.hub.workspace(cls.token)

    def failed_login(self, email, client):
        # nginx's $proxy_add_x_forwarded_for: what the client sent, then its address
        return self.hub.request("POST", "/api/v1/login",
                                {"email": email, "password": "wrong password!"},
                                headers={"X-Forwarded-For": "198.18.0.1, " + client})

    def test_a_sign_in_over_the_proxys_https_gets_a_secure_cookie(self):
        self.assertIn("; Secure", dashboard_login_cookie(self.hub, {"X-Forwarded-Proto": "https"}))
        self.assertNotIn("Secure", dashboard_login_cookie(self.hub, {"X-Forwarded-Proto": "http"}))

    def test_the_audit_names_the_client_the_proxy_forwards_for(self):
        st, _, _, _ = self.failed_login("audit-me@example.test", "192.0.2.44")
        self.assertEqual(st, 401)
        rows = self.hub.sql("SELECT client_addr FROM audit_log WHERE action = 'login.failed' "
                            "AND target = 'audit-me@example.test'")
        self.assertEqual([r[0] for r in rows], ["192.0.2.44"])

    def test_the_password_throttle_counts_each_forwarded_client_apart(self):
        # --login-throttle 1: a client address gets 4 free failures (4x), then waits.
        codes = [self.failed_login("guess%d@example.test" % i, "192.0.2.77")[0]
                 for i in range(6)]
        self.assertEqual(codes[:4], [401] * 4)
        self.assertEqual(codes[-1], 429)
        # Another client behind the same proxy is not held up by that one.
        st, _, _, _ = self.failed_login("other@example.test", "192.0.2.78")
        self.assertEqual(st, 401)

    def test_a_bad_trusted_proxy_list_is_refused_before_serving(self):
        other = Hub(os.path.join(self.tmp, "bad"))
        p = other.cli("serve", "--data", other.data, *other.db_args(), "--trusted-proxy",
                      "10.0.0.1,nginx.internal", "--api-port", str(other.api_port),
                      "--content-port", str(other.content_port), "--dashboard-port",
                      str(other.dash_port), check=False, timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"--trusted-proxy takes IP addresses", p.stderr)
        self.assertIn(b"nginx.internal", p.stderr)


if __name__ == "__main__":
    main()
