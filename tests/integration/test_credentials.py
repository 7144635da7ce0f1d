"""User credentials under abuse (issue 13, items 15 and 16): what an app password
may reach, sessions and the password change, and the throttling of password
checks (login, WebDAV Basic, share-link passwords, invite accept) with a bound on
concurrent argon2id runs. The throttle is on by default: these hubs run without
any --login-throttle option."""
import base64
import concurrent.futures
import http.client
import os
import subprocess
import time

import harness
from harness import HubTest, q

NEW_PW = "a brand new password"


def basic(email, password):
    return "Basic " + base64.b64encode(("%s:%s" % (email, password)).encode()).decode()


class CredentialTest(HubTest):
    def app_password(self, name="mount", token=None):
        st, body, payload, _ = self.hub.request("POST", "/api/v1/tokens", {"name": name},
                                                token=token or self.token)
        self.assertEqual(st, 201, payload)
        return body

    def dav(self, method, auth, path="/"):
        conn = http.client.HTTPConnection("127.0.0.1", self.hub.content_port, timeout=60)
        conn.request(method, "/dav/default" + path, headers={"Authorization": auth, "Depth": "0"})
        resp = conn.getresponse()
        resp.read()
        conn.close()
        return resp.status, resp


class AppPasswordTest(CredentialTest):
    def test_an_app_password_cannot_mint_or_administer_credentials(self):
        app = self.app_password()["token"]
        ws = "/api/v1/workspaces/%d" % self.ws
        for method, url, body in (
                ("POST", "/api/v1/tokens", {"name": "child"}),
                ("GET", "/api/v1/tokens", None),
                ("DELETE", "/api/v1/tokens/1", None),
                ("GET", "/api/v1/sessions", None),
                ("POST", "/api/v1/password", {"old": harness.PASSWORD, "new": NEW_PW}),
                ("POST", "/api/v1/workspaces", {"name": "by-app"}),
                ("PATCH", ws, {}),
                ("POST", ws + "/invites", {"role": "owner"}),
                ("GET", ws + "/members", None),
                ("PUT", ws + "/members/1", {"role": "member"}),
                ("PUT", ws + "/acl", {"path": "/", "email": harness.EMAIL, "perm": "read"}),
                ("POST", ws + "/shares", {"path": "/"}),
                ("POST", ws + "/urls", {"path": "/a.txt"}),
                ("POST", ws + "/hosts/invites", {}),
                ("GET", ws + "/audit", None)):
            with self.subTest(method=method, url=url):
                self.assertError(self.hub.request(method, url, body, token=app), 403,
                                 "app_password_not_allowed")
        # nothing was minted: the user still has exactly one app password
        st, body, _, _ = self.hub.request("GET", "/api/v1/tokens", token=self.token)
        self.assertEqual([t["name"] for t in body["tokens"]], ["mount"])

    def test_an_app_password_still_reaches_files(self):
        app = self.app_password("files")["token"]
        st, _, payload, _ = self.hub.request(
            "PUT", "/api/v1/workspaces/%d/upload?path=%s" % (self.ws, q("/a.txt")),
            token=app, raw=b"hello")
        self.assertEqual(st, 201, payload)
        st, _, payload, _ = self.api("GET", "/content?path=%s" % q("/a.txt"), token=app)
        self.assertEqual((st, payload), (200, b"hello"))
        self.assertEqual(self.api("GET", "/list?path=/", token=app)[0], 200)
        self.assertEqual(self.hub.request("GET", "/api/v1/workspaces", token=app)[0], 200)
        self.assertEqual(self.dav("PROPFIND", basic(harness.EMAIL, app))[0], 207)


class SessionTest(CredentialTest):
    def sessions(self, token):
        st, body, payload, _ = self.hub.request("GET", "/api/v1/sessions", token=token)
        self.assertEqual(st, 200, payload)
        return body["sessions"]

    def test_a_user_lists_and_revokes_sessions(self):
        other = self.hub.login()
        mine = self.sessions(self.token)
        current = [s for s in mine if s["current"]]
        self.assertEqual(len(current), 1)
        others = [s["id"] for s in mine if not s["current"]]
        self.assertGreaterEqual(len(others), 1)
        # the other session sees itself as current
        other_id = [s["id"] for s in self.sessions(other) if s["current"]][0]
        self.assertIn(other_id, others)
        st, body, _, _ = self.hub.request("DELETE", "/api/v1/sessions/%d" % other_id,
                                          token=self.token)
        self.assertEqual(st, 200, body)
        self.assertError(self.hub.request("GET", "/api/v1/me", token=other), 401, "unauthorized")
        self.assertNotIn(other_id, [s["id"] for s in self.sessions(self.token)])
        # app passwords are not sessions; nobody else's session can be ended
        app = self.app_password("not-a-session")
        self.assertError(self.hub.request("DELETE", "/api/v1/sessions/%d" % app["id"],
                                          token=self.token), 404, "not_found")

    def test_the_cli_lists_and_revokes_sessions(self):
        self.hub.login_cli()
        other = self.hub.login()
        other_id = [s["id"] for s in self.sessions(other) if s["current"]][0]
        out = self.hub.cli("sessions").stdout.decode()
        self.assertIn("(this one)", out)
        self.assertIn(str(other_id), out)
        self.hub.cli("sessions", "revoke", str(other_id))
        self.assertEqual(self.hub.request("GET", "/api/v1/me", token=other)[0], 401)

    def test_z_a_password_change_ends_every_other_credential(self):
        other = self.hub.login()
        app = self.app_password("old-mount")["token"]
        # the account password over WebDAV, remembered by the hub for a while
        old_basic = basic(harness.EMAIL, harness.PASSWORD)
        self.assertEqual(self.dav("PROPFIND", old_basic)[0], 207)
        self.assertError(self.hub.request("POST", "/api/v1/password",
                                          {"old": "not my password", "new": NEW_PW},
                                          token=self.token), 403, "invalid_credentials")
        self.assertError(self.hub.request("POST", "/api/v1/password",
                                          {"old": harness.PASSWORD, "new": "short"},
                                          token=self.token), 400, "weak_password")
        st, body, payload, _ = self.hub.request(
            "POST", "/api/v1/password", {"old": harness.PASSWORD, "new": NEW_PW},
            token=self.token)
        self.assertEqual(st, 200, payload)
        self.assertGreaterEqual(body["revoked"], 2)
        self.assertEqual(self.hub.request("GET", "/api/v1/me", token=self.token)[0], 200)
        self.assertEqual(self.hub.request("GET", "/api/v1/me", token=other)[0], 401)
        self.assertEqual(self.hub.request("GET", "/api/v1/me", token=app)[0], 401)
        self.assertEqual(self.dav("PROPFIND", old_basic)[0], 401)
        self.assertEqual(self.dav("PROPFIND", basic(harness.EMAIL, NEW_PW))[0], 207)
        st, _, _, _ = self.hub.request("POST", "/api/v1/login",
                                       {"email": harness.EMAIL, "password": harness.PASSWORD})
        self.assertEqual(st, 401)
        fresh = self.hub.login(password=NEW_PW)
        # and back, with the CLI (old from $ROOST_PASSWORD, new from $ROOST_NEW_PASSWORD)
        p = subprocess.run([harness.ROOST, "login", "--hub", self.hub.url, "--email",
                            harness.EMAIL], env=self.hub.env(ROOST_PASSWORD=NEW_PW),
                           capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = subprocess.run([harness.ROOST, "passwd"], capture_output=True,
                           env=self.hub.env(ROOST_PASSWORD=NEW_PW,
                                            ROOST_NEW_PASSWORD=harness.PASSWORD))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"password changed", p.stdout)
        self.assertEqual(self.hub.request("GET", "/api/v1/me", token=fresh)[0], 401)
        self.__class__.token = self.hub.login()
        actions = [r[0] for r in self.hub.sql(
            "SELECT action FROM audit_log WHERE action LIKE 'password.%'")]
        self.assertIn("password.change", actions)


# ---- throttling: one hub per surface, so their failures do not add up ----

class ThrottleTest(CredentialTest):
    def assertThrottled(self, status, resp):
        self.assertEqual(status, 429)
        self.assertGreaterEqual(int(resp.getheader("Retry-After")), 1)
        return int(resp.getheader("Retry-After"))

    def until_throttled(self, attempt, limit=12):
        """Call attempt() (-> status, response) until it answers 429; the statuses
        before, and the Retry-After."""
        statuses = []
        for _ in range(limit):
            st, resp = attempt()
            if st == 429:
                return statuses, self.assertThrottled(st, resp)
            statuses.append(st)
        self.fail("never throttled: %r" % statuses)


def login_attempt(hub, email, password):
    st, _, _, resp = hub.request("POST", "/api/v1/login", {"email": email, "password": password})
    return st, resp


class LoginThrottleTest(ThrottleTest):
    def test_wrong_logins_get_growing_delays_then_the_owner_gets_in(self):
        before, retry = self.until_throttled(
            lambda: login_attempt(self.hub, harness.EMAIL, "guess"))
        self.assertEqual(before, [401] * 6)  # five free, the sixth sets the first delay
        # while the account waits, even the right password waits: no oracle
        st, resp = login_attempt(self.hub, harness.EMAIL, harness.PASSWORD)
        self.assertThrottled(st, resp)
        time.sleep(retry + 0.1)
        self.assertEqual(login_attempt(self.hub, harness.EMAIL, "guess")[0], 401)
        st, resp = login_attempt(self.hub, harness.EMAIL, "guess")
        self.assertGreaterEqual(self.assertThrottled(st, resp), 2)  # the delay doubled
        time.sleep(int(resp.getheader("Retry-After")) + 0.1)
        self.hub.login()  # the owner gets in, which ends the delays
        self.assertEqual(login_attempt(self.hub, harness.EMAIL, "guess")[0], 401)
        rows = self.hub.sql("SELECT COUNT(*) FROM audit_log WHERE action = 'login.failed'")
        self.assertGreaterEqual(rows[0][0], 8)


class ClientThrottleTest(ThrottleTest):
    def test_one_client_spraying_many_accounts_is_throttled(self):
        n = [0]

        def spray():
            n[0] += 1
            return login_attempt(self.hub, "user%d@example.test" % n[0], "guess")

        before, _ = self.until_throttled(spray, limit=40)
        self.assertEqual(len(before), 21)  # 4x an account's free attempts, then delays


class DavThrottleTest(ThrottleTest):
    def test_webdav_basic_guesses_are_throttled(self):
        _, retry = self.until_throttled(
            lambda: self.dav("PROPFIND", basic(harness.EMAIL, "guess")))
        time.sleep(retry + 0.1)
        self.assertEqual(self.dav("PROPFIND", basic(harness.EMAIL, harness.PASSWORD))[0], 207)


class ShareThrottleTest(ThrottleTest):
    def test_share_password_guesses_are_throttled_and_audited(self):
        st, _, payload, _ = self.hub.request(
            "PUT", "/api/v1/workspaces/%d/upload?path=%s" % (self.ws, q("/s.txt")),
            token=self.token, raw=b"secret")
        self.assertEqual(st, 201, payload)
        st, share, payload, _ = self.api("POST", "/shares", {"path": "/s.txt",
                                                             "password": "link pass"})
        self.assertEqual(st, 201, payload)
        path = "/s/%s/file" % share["token"]

        def guess(pw="guess"):
            st, _, _, resp = self.hub.request("GET", path, headers={"X-Share-Password": pw},
                                              port=self.hub.content_port)
            return st, resp

        before, retry = self.until_throttled(guess)
        self.assertEqual(set(before), {401})
        time.sleep(retry + 0.1)
        self.assertEqual(guess("link pass")[0], 200)
        rows = self.hub.sql("SELECT COUNT(*) FROM audit_log WHERE action = "
                            "'share.password_failed' AND workspace_id = ?", (self.ws,))
        self.assertGreaterEqual(rows[0][0], 5)


class InviteThrottleTest(ThrottleTest):
    def test_invite_accept_guesses_at_an_account_password_are_throttled(self):
        st, inv, payload, _ = self.api("POST", "/invites", {})
        self.assertEqual(st, 201, payload)

        def accept():
            st, _, _, resp = self.hub.request(
                "POST", "/api/v1/invites/accept",
                {"token": inv["token"], "email": harness.EMAIL, "password": "guess"})
            return st, resp

        before, _ = self.until_throttled(accept)
        self.assertEqual(set(before), {401})
        # the same account's login waits too: one count per account
        st, resp = login_attempt(self.hub, harness.EMAIL, harness.PASSWORD)
        self.assertThrottled(st, resp)


class ArgonBoundTest(ThrottleTest):
    def rss_kib(self, field):
        with open("/proc/%d/status" % self.hub.proc.pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise KeyError(field)

    def test_concurrent_logins_do_not_each_take_19_mib(self):
        base = self.rss_kib("VmHWM")
        n = 16  # under the client's free attempts: the guard lets every one through

        def one(i):
            return login_attempt(self.hub, "nobody%d@example.test" % i, "guess")[0]

        with concurrent.futures.ThreadPoolExecutor(n) as ex:
            statuses = list(ex.map(one, range(n)))
        self.assertTrue(set(statuses) <= {401, 503}, statuses)
        self.assertIn(401, statuses)
        grown_mib = (self.rss_kib("VmHWM") - base) / 1024
        # at most four argon2id runs (19 MiB each) at once, not sixteen (304 MiB)
        self.assertLess(grown_mib, 150, "peak RSS grew by %.0f MiB" % grown_mib)


if __name__ == "__main__":
    import unittest
    unittest.main()
