"""Sign-in with an OpenID Connect provider (issue 17; docs/access.md "Single
sign-on"), against a provider the test runs (mockoidc.py) whose ID tokens the
test shapes. A browser is played with plain HTTP and a cookie jar.

- A verified email of a known user signs in: the usual dashboard session.
- Refused, with no session and no account made: an ID token signed with a key
  the provider does not publish (forged), an expired one, one for another
  client (aud), one for another sign-in (nonce), an unverified email, a
  replayed callback, a callback in another browser, an unknown email.
- A workspace that admits a domain (oidc_domains, oidc_default_role) makes the
  account and its membership on first sign-in.
- roost login --sso completes through the loopback redirect; its one-use code
  needs the CLI's verifier and works once.
"""
import http.client
import json
import os
import re
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

import harness
from harness import EMAIL, Hub, HubTest
from mockoidc import Provider


class Browser:
    """Cookies per host (not per port, as browsers keep them) and redirects
    followed by hand, so a test sees each hop."""

    def __init__(self):
        self.cookies = {}

    def get(self, url, headers=None):
        u = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        h = dict(headers or {})
        jar = "; ".join("%s=%s" % kv for kv in self.cookies.items())
        if jar:
            h["Cookie"] = jar
        conn.request("GET", u.path + ("?" + u.query if u.query else ""), headers=h)
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        for v in resp.headers.get_all("Set-Cookie") or []:
            name, _, rest = v.partition("=")
            value = rest.split(";")[0]
            if "Max-Age=0" in v or not value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return resp.status, resp.getheader("Location"), body

    def follow(self, url, stop=lambda url: False, hops=8):
        """GET url and its redirects until stop(url) or a non-redirect: the last
        (status, location, body) and the URL that answered it."""
        for _ in range(hops):
            if stop(url):
                return None, None, None, url
            st, loc, body = self.get(url)
            if st not in (301, 302, 303, 307) or not loc:
                return st, loc, body, url
            url = urllib.parse.urljoin(url, loc)
        raise AssertionError("too many redirects")


class OidcTest(HubTest):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="roost-it-")
        cls.provider = Provider().start()
        cls.addClassCleanup(cls.provider.stop)
        cls.hub = Hub(cls.tmp)
        cls.stopped = False
        cls.addClassCleanup(cls.stop_processes)
        secret = os.path.join(cls.tmp, "oidc-secret")
        with open(secret, "w") as f:
            f.write(Provider.SECRET + "\n")
        os.chmod(secret, 0o600)
        cls.hub.serve_args = [
            "--oidc-issuer", cls.provider.issuer, "--oidc-client-id", Provider.CLIENT_ID,
            "--oidc-client-secret-file", secret, "--oidc-name", "Example ID",
            "--oidc-redirect-uri",
            "http://127.0.0.1:%d/api/v1/oidc/callback" % cls.hub.dash_port]
        cls.hub.start()
        cls.token = cls.hub.login()
        cls.ws = cls.hub.workspace(cls.token)

    def setUp(self):
        self.provider.email = EMAIL
        self.provider.next = {}

    # ---- helpers ----

    @property
    def dash(self):
        return "http://127.0.0.1:%d" % self.hub.dash_port

    def sign_in(self, browser=None, then=None, **nxt):
        """A browser's whole sign-in: start, the provider, the hub's callback.
        then(browser, callback_url) runs between the provider and the callback.
        Returns (status, location, body, browser) of the callback."""
        b = browser or Browser()
        self.provider.next = nxt
        st, loc, _ = b.get(self.dash + "/api/v1/oidc/start")
        self.assertEqual(st, 302)
        self.assertTrue(loc.startswith(self.provider.issuer + "/authorize?"), loc)
        st, cb, _ = b.get(loc)
        self.assertEqual(st, 302, "the provider refused the hub's request")
        self.assertTrue(cb.startswith(self.dash + "/api/v1/oidc/callback?"), cb)
        if then:
            then(b, cb)
        st, loc, body = b.get(cb)
        return st, loc, body, b, cb

    def me(self, b):
        st, _, body = b.get(self.dash + "/api/v1/me")
        return st, json.loads(body) if body else None

    def assertRefused(self, result, status, code, words):
        st, loc, body, b, _ = result
        self.assertEqual(st, status, body[:300])
        err = json.loads(body)["error"]
        self.assertEqual(err["code"], code, err)
        self.assertIn(words, err["message"])
        self.assertNotIn("roost_session", b.cookies)
        self.assertEqual(self.me(b)[0], 401)

    def sessions(self):
        return self.hub.sql("SELECT COUNT(*) FROM tokens WHERE kind = 'session'")[0][0]

    def users(self):
        return self.hub.sql("SELECT COUNT(*) FROM users")[0][0]

    # ---- the provider, announced ----

    def test_hub_says_sso_is_on_and_its_name(self):
        st, body, _, _ = self.hub.request("GET", "/api/v1/oidc")
        self.assertEqual(st, 200)
        self.assertEqual(body["enabled"], True)
        self.assertEqual(body["name"], "Example ID")
        self.assertEqual(body["start_url"], self.dash + "/api/v1/oidc/start")

    def test_start_asks_for_code_with_pkce_state_and_nonce(self):
        st, loc, _ = Browser().get(self.dash + "/api/v1/oidc/start")
        self.assertEqual(st, 302)
        qs = urllib.parse.parse_qs(urllib.parse.urlsplit(loc).query)
        self.assertEqual(qs["response_type"], ["code"])
        self.assertEqual(qs["code_challenge_method"], ["S256"])
        self.assertEqual(len(qs["code_challenge"][0]), 43)
        self.assertGreaterEqual(len(qs["state"][0]), 40)
        self.assertGreaterEqual(len(qs["nonce"][0]), 40)
        self.assertEqual(qs["client_id"], [Provider.CLIENT_ID])

    # ---- signing in ----

    def test_verified_email_of_a_user_signs_in_to_the_dashboard(self):
        before = self.sessions()
        st, loc, body, b, _ = self.sign_in()
        self.assertEqual(st, 302, body[:300])
        self.assertEqual(loc, "/")
        self.assertIn("roost_session", b.cookies)
        self.assertNotIn("roost_oidc", b.cookies)
        st, me = self.me(b)
        self.assertEqual(st, 200)
        self.assertEqual(me["email"], EMAIL)
        self.assertEqual(self.sessions(), before + 1)

    def test_email_matches_whatever_its_case(self):
        self.provider.email = EMAIL.upper()
        st, _, body, b, _ = self.sign_in()
        self.assertEqual(st, 302, body[:300])
        self.assertEqual(self.me(b)[1]["email"], EMAIL)

    # ---- refused ID tokens ----

    def test_forged_id_token_is_refused(self):
        before = self.sessions()
        r = self.sign_in(sign_with=self.provider.other_key)
        self.assertRefused(r, 401, "oidc_token", "signature")
        self.assertEqual(self.sessions(), before)

    def test_token_signed_with_an_unknown_key_is_refused_after_a_jwks_refetch(self):
        jwks_before = self.provider.jwks_requests
        r = self.sign_in(sign_with=self.provider.other_key, kid="rotated")
        self.assertRefused(r, 401, "oidc_token", "does not publish")
        self.assertLessEqual(self.provider.jwks_requests - jwks_before, 1)

    def test_es256_id_token_signs_in(self):
        st, _, body, b, _ = self.sign_in(alg="ES256")
        self.assertEqual(st, 302, body[:300])
        self.assertEqual(self.me(b)[1]["email"], EMAIL)

    def test_forged_es256_id_token_is_refused(self):
        self.assertRefused(self.sign_in(alg="ES256", sign_with=self.provider.other_ec_key),
                           401, "oidc_token", "signature")

    def test_unsigned_and_hmac_id_tokens_are_refused(self):
        self.assertRefused(self.sign_in(alg="none"), 401, "oidc_token", "algorithm")
        self.assertRefused(self.sign_in(alg="HS256"), 401, "oidc_token", "algorithm")

    def test_expired_id_token_is_refused(self):
        now = int(time.time())
        self.assertRefused(self.sign_in(claims={"exp": now - 600, "iat": now - 900}), 401,
                           "oidc_token", "expired")

    def test_id_token_for_another_client_is_refused(self):
        self.assertRefused(self.sign_in(claims={"aud": "someone-else"}), 401, "oidc_token",
                           "another client")

    def test_id_token_from_another_issuer_is_refused(self):
        self.assertRefused(self.sign_in(claims={"iss": "https://evil.example"}), 401,
                           "oidc_token", "iss")

    def test_id_token_with_a_wrong_nonce_is_refused(self):
        self.assertRefused(self.sign_in(claims={"nonce": "not-the-one"}), 401, "oidc_token",
                           "nonce")

    def test_unverified_email_is_refused(self):
        self.assertRefused(self.sign_in(claims={"email_verified": False}), 401, "oidc_token",
                           "not verified")
        self.assertRefused(self.sign_in(drop=["email_verified"]), 401, "oidc_token",
                           "not verified")

    def test_replayed_callback_is_refused(self):
        st, _, body, b, cb = self.sign_in()
        self.assertEqual(st, 302, body[:300])
        before = self.sessions()
        again = Browser()
        again.cookies = {k: v for k, v in b.cookies.items() if k != "roost_session"}
        st, _, body = again.get(cb)
        self.assertEqual(st, 400)
        self.assertEqual(json.loads(body)["error"]["code"], "oidc_state")
        self.assertEqual(self.sessions(), before)

    def test_callback_in_another_browser_is_refused(self):
        tokens_before = self.provider.token_requests

        def elsewhere(b, cb):
            b.cookies.clear()  # the victim's browser never started this sign-in
        r = self.sign_in(then=elsewhere)
        self.assertRefused(r, 400, "oidc_state", "another browser")
        # refused before the code was spent
        self.assertEqual(self.provider.token_requests, tokens_before)

    def test_a_browser_refused_goes_back_to_the_login_page_with_a_code_only(self):
        self.provider.email = "stranger@elsewhere.test"
        b = Browser()
        st, loc, _ = b.get(self.dash + "/api/v1/oidc/start")
        st, cb, _ = b.get(loc)
        st, loc, body = b.get(cb, headers={"Accept": "text/html,application/xhtml+xml"})
        self.assertEqual(st, 302, body[:300])
        self.assertEqual(loc, "/login?sso_error=oidc_no_account")
        self.assertNotIn("roost_session", b.cookies)
        self.assertNotIn("roost_oidc", b.cookies)

    def test_callback_with_an_unknown_state_is_refused(self):
        b = Browser()
        st, _, body = b.get(self.dash + "/api/v1/oidc/callback?code=abc&state=made-up")
        self.assertEqual(st, 400)
        self.assertEqual(json.loads(body)["error"]["code"], "oidc_state")

    def test_provider_error_is_reported(self):
        b = Browser()
        st, loc, _ = b.get(self.dash + "/api/v1/oidc/start")
        state = urllib.parse.parse_qs(urllib.parse.urlsplit(loc).query)["state"][0]
        st, _, body = b.get(self.dash + "/api/v1/oidc/callback?error=access_denied&state=" +
                            state)
        self.assertEqual(st, 400)
        err = json.loads(body)["error"]
        self.assertEqual(err["code"], "oidc_denied")
        self.assertIn("access_denied", err["message"])

    # ---- who may come in ----

    def test_unknown_email_is_refused_and_no_account_is_made(self):
        self.provider.email = "stranger@elsewhere.test"
        users = self.users()
        self.assertRefused(self.sign_in(), 403, "oidc_no_account", "stranger@elsewhere.test")
        self.assertEqual(self.users(), users)

    def test_workspace_admitting_a_domain_makes_the_account_and_membership(self):
        st, _, _, _ = self.api("PATCH", "", {"oidc_domains": "newco.test"})
        self.assertEqual(st, 400)
        st, _, _, _ = self.api("PATCH", "", {"oidc_domains": ["not a domain"]})
        self.assertEqual(st, 400)
        st, _, _, _ = self.api("PATCH", "", {"oidc_default_role": "owner"})
        self.assertEqual(st, 400)
        st, ws, _, _ = self.api("GET", "")
        self.assertEqual(ws["oidc_domains"], [])
        st, body, _, _ = self.api("PATCH", "", {"oidc_domains": ["NewCo.test"],
                                                "oidc_default_role": "member"})
        self.assertEqual(st, 200, body)
        st, ws, _, _ = self.api("GET", "")
        self.assertEqual(ws["oidc_domains"], ["newco.test"])
        self.assertEqual(ws["oidc_default_role"], "member")
        try:
            self.provider.email = "stranger@other.test"
            self.assertRefused(self.sign_in(), 403, "oidc_no_account", "no workspace")
            self.provider.email = "ada@newco.test"
            st, _, body, b, _ = self.sign_in()
            self.assertEqual(st, 302, body[:300])
            self.assertEqual(self.me(b)[1]["email"], "ada@newco.test")
            rows = self.hub.sql(
                "SELECT m.role, u.name FROM memberships m JOIN users u ON u.id = m.user_id "
                "WHERE u.email = ? AND m.workspace_id = ?", ("ada@newco.test", self.ws))
            self.assertEqual(rows, [("member", "Ada")])
            # the account has no password: a password login never matches it
            st, body, _, _ = self.hub.request("POST", "/api/v1/login",
                                              {"email": "ada@newco.test", "password": ""})
            self.assertEqual(st, 401, body)
            # a second sign-in finds the account; nothing is made twice
            users = self.users()
            st, _, body, _, _ = self.sign_in()
            self.assertEqual(st, 302, body[:300])
            self.assertEqual(self.users(), users)
        finally:
            self.api("PATCH", "", {"oidc_domains": []})

    # ---- roost login --sso ----

    def test_login_sso_completes_through_the_loopback(self):
        cfg = tempfile.mkdtemp(dir=self.tmp)
        env = self.hub.env(XDG_CONFIG_HOME=cfg, ROOST_NO_BROWSER="1")
        p = subprocess.Popen([harness.ROOST, "login", "--sso", "--hub", self.hub.url],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            url = None
            for line in p.stdout:
                m = re.search(r"(http://\S+/api/v1/oidc/start\?\S+)", line)
                if m:
                    url = m.group(1)
                    break
            self.assertIsNotNone(url, "roost login --sso printed no URL")
            st, _, body, last = Browser().follow(url)
            self.assertEqual(st, 200, body)
            self.assertTrue(last.startswith("http://127.0.0.1:"), last)
            self.assertIn(b"Signed in", body)
            out, err = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertEqual(p.returncode, 0, err)
        self.assertIn("logged in to %s as %s" % (self.hub.url, EMAIL), out)
        with open(os.path.join(cfg, "roost", "config.json")) as f:
            tok = json.load(f)["token"]
        st, me, _, _ = self.hub.request("GET", "/api/v1/me", token=tok)
        self.assertEqual((st, me["email"]), (200, EMAIL))

    def cli_flow(self, verifier_for_challenge):
        """A CLI's flow played by hand up to the loopback redirect: its code."""
        import base64
        import hashlib
        chal = base64.urlsafe_b64encode(
            hashlib.sha256(verifier_for_challenge.encode()).digest()).rstrip(b"=").decode()
        url = (self.dash + "/api/v1/oidc/start?cli_port=45678&cli_state=" + "s" * 32 +
               "&cli_challenge=" + chal)
        st, _, _, last = Browser().follow(
            url, stop=lambda u: u.startswith("http://127.0.0.1:45678/"))
        u = urllib.parse.urlsplit(last)
        self.assertEqual(u.path, "/callback")
        qs = urllib.parse.parse_qs(u.query)
        self.assertEqual(qs["state"], ["s" * 32])
        return qs["code"][0]

    def test_cli_code_needs_the_verifier_and_works_once(self):
        verifier = "v" * 43
        code = self.cli_flow(verifier)
        st, body, _, _ = self.hub.request("POST", "/api/v1/oidc/exchange",
                                          {"code": code, "verifier": verifier})
        self.assertEqual(st, 200, body)
        self.assertEqual(body["user"]["email"], EMAIL)
        st, body, _, _ = self.hub.request("POST", "/api/v1/oidc/exchange",
                                          {"code": code, "verifier": verifier})
        self.assertError((st, body, b"", None), 400, "oidc_code")
        code = self.cli_flow(verifier)
        st, body, _, _ = self.hub.request("POST", "/api/v1/oidc/exchange",
                                          {"code": code, "verifier": "w" * 43})
        self.assertError((st, body, b"", None), 400, "oidc_code")

    def test_start_refuses_a_cli_redirect_it_cannot_trust(self):
        for bad in ("cli_port=80&cli_state=" + "s" * 32 + "&cli_challenge=" + "c" * 43,
                    "cli_port=45678&cli_state=short&cli_challenge=" + "c" * 43,
                    "cli_port=45678&cli_state=" + "s" * 32 + "%2F%2Fevil&cli_challenge=" +
                    "c" * 43,
                    "cli_port=45678&cli_state=" + "s" * 32):
            st, _, body = Browser().get(self.dash + "/api/v1/oidc/start?" + bad)
            self.assertEqual(st, 400, bad)
            self.assertEqual(json.loads(body)["error"]["code"], "invalid_request")

    def test_start_refuses_past_ten_thousand_sign_ins_under_way(self):
        self.hub.sql(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000) "
            "INSERT INTO oidc_flows(state_hash, nonce, verifier, browser_hash, created_at) "
            "SELECT 'filler' || x, 'n', 'v', 'b', ? FROM c", (int(time.time() * 1000),))
        try:
            st, _, body = Browser().get(self.dash + "/api/v1/oidc/start")
            self.assertEqual(st, 503)
            self.assertEqual(json.loads(body)["error"]["code"], "busy")
        finally:
            self.hub.sql("DELETE FROM oidc_flows WHERE state_hash LIKE 'filler%'")
        st, _, _ = Browser().get(self.dash + "/api/v1/oidc/start")
        self.assertEqual(st, 302)

    # ---- configuration ----

    def test_serve_refuses_an_incomplete_oidc_configuration(self):
        p = self.roost("serve", "--data", self.hub.data, *self.hub.db_args(), "--api-port",
                       str(harness.free_port()), "--oidc-issuer", self.provider.issuer,
                       "--oidc-client-id", "x", timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn("--oidc-client-secret-file", p.err)
        missing = os.path.join(self.tmp, "no-such-secret")
        p = self.roost("serve", "--data", self.hub.data, *self.hub.db_args(), "--api-port",
                       str(harness.free_port()), "--oidc-issuer", self.provider.issuer,
                       "--oidc-client-id", "x", "--oidc-client-secret-file", missing,
                       timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn(missing, p.err)


class NoOidcTest(HubTest):

    def test_login_sso_says_the_hub_has_no_sso(self):
        st, body, _, _ = self.hub.request("GET", "/api/v1/oidc")
        self.assertEqual((st, body), (200, {"enabled": False}))
        p = self.roost("login", "--sso", "--hub", self.hub.url, timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn("has no single sign-on", p.err)
        st, body, _, _ = self.hub.request("GET", "/api/v1/oidc/start")
        self.assertError((st, body, b"", None), 404, "oidc_off")


if __name__ == "__main__":
    harness.main()
