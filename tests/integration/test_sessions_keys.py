"""Signing keys rotated on a schedule and login sessions with a lifetime and an
idle timeout (roost serve --rotate-keys-every, --session-lifetime,
--session-idle; docs/operations.md).

- While the hub serves, the signing key is replaced once it is that old;
  URLs signed by a retired key still download, new ones name the new key.
- A session unused for longer than the idle timeout is refused with a 401
  that says so; one in use stays valid; app passwords have no idle timeout.
- A session older than its lifetime is refused, however busy.
- Bad values are refused before the hub starts.
"""
import base64
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.parse

import harness
from harness import Hub, q, wait_for


def kid_of(token):
    claims = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["kid"]


class ServedHub(unittest.TestCase):
    serve_args = ()

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="roost-it-")
        cls.hub = Hub(cls.tmp)
        cls.hub.serve_args = list(cls.serve_args)
        cls.addClassCleanup(shutil.rmtree, cls.tmp, ignore_errors=True)
        cls.addClassCleanup(cls.hub.stop)
        cls.hub.start()
        cls.token = cls.hub.login()
        cls.ws = cls.hub.workspace(cls.token)

    def api(self, method, rel, body=None, token=None, **kw):
        return self.hub.request(method, "/api/v1/workspaces/%d%s" % (self.ws, rel), body,
                                token=token or self.token, **kw)

    def me(self, token):
        return self.hub.request("GET", "/api/v1/me", token=token)


class KeyRotationTest(ServedHub):
    serve_args = ("--rotate-keys-every", "2s")

    def fetch(self, url):
        u = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        conn.request("GET", u.path)
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        return resp.status, body

    def keys(self):
        st, body, _, _ = self.hub.request("GET", "/api/v1/keys")
        self.assertEqual(st, 200)
        return [k["kid"] for k in body["keys"]]

    def rotations(self):
        return self.hub.sql("SELECT COUNT(*) FROM audit_log WHERE action = 'keys.rotate'")[0][0]

    def test_keys_rotate_while_serving_and_old_urls_still_verify(self):
        data = b"rotated " * 500
        st, _, payload, _ = self.api("PUT", "/upload?path=" + q("/r.txt"), raw=data)
        self.assertEqual(st, 201, payload)
        st, old, payload, _ = self.api("POST", "/urls", {"path": "/r.txt"})
        self.assertEqual(st, 201, payload)
        old_kid = kid_of(old["token"])
        # the key is replaced on schedule, more than once, without a restart
        start = self.rotations()
        wait_for(lambda: self.rotations() >= start + 2, 30, "two rotations")
        active = self.hub.sql("SELECT kid FROM signing_keys WHERE retired_at IS NULL")
        self.assertEqual(len(active), 1)
        self.assertNotEqual(active[0][0], old_kid)
        # the retired key is still published and still verifies what it signed
        self.assertIn(old_kid, self.keys())
        self.assertEqual(self.fetch(old["url"]), (200, data))
        st, new, _, _ = self.api("POST", "/urls", {"path": "/r.txt"})
        self.assertEqual(st, 201)
        self.assertNotEqual(kid_of(new["token"]), old_kid)
        self.assertEqual(self.fetch(new["url"]), (200, data))
        with open(os.path.join(self.hub.root, "hub.log")) as f:
            self.assertIn("signing with a new one", f.read())

    def test_without_the_option_keys_do_not_rotate(self):
        hub = Hub(os.path.join(self.tmp, "plain"))
        hub.start()
        try:
            time.sleep(3)
            self.assertEqual(hub.sql("SELECT COUNT(*) FROM signing_keys")[0][0], 1)
        finally:
            hub.stop()


class SessionIdleTest(ServedHub):
    serve_args = ("--session-idle", "4s")

    def test_a_session_in_use_stays_valid(self):
        token = self.hub.login()
        end = time.time() + 7
        while time.time() < end:
            st, body, _, _ = self.me(token)
            self.assertEqual(st, 200, body)
            time.sleep(0.5)

    def test_an_idle_session_is_refused_with_a_clear_401(self):
        token = self.hub.login()
        self.assertEqual(self.me(token)[0], 200)
        time.sleep(5)
        st, body, _, _ = self.me(token)
        self.assertEqual(st, 401)
        self.assertEqual(body["error"]["code"], "session_expired")
        self.assertIn("not used for 4s", body["error"]["message"])
        self.assertIn("log in again", body["error"]["message"])
        # and it stays refused: using it does not bring it back
        self.assertEqual(self.me(token)[0], 401)

    def test_the_cli_says_so(self):
        self.hub.login_cli()
        p = self.hub.cli("ls", check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        time.sleep(5)
        p = self.hub.cli("ls", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("log in again", p.stderr.decode())

    def test_app_passwords_have_no_idle_timeout(self):
        st, made, payload, _ = self.hub.request("POST", "/api/v1/tokens", {"name": "idle"},
                                                token=self.hub.login())
        self.assertEqual(st, 201, payload)
        time.sleep(5)
        self.assertEqual(self.me(made["token"])[0], 200)


class SessionLifetimeTest(ServedHub):
    serve_args = ("--session-idle", "0")

    def test_a_shorter_lifetime_ends_sessions_already_handed_out(self):
        token = self.hub.login()  # under the default lifetime: 90 days
        made = time.time()
        self.hub.stop()
        self.hub.serve_args = ["--session-lifetime", "4s", "--session-idle", "0"]
        self.hub.start()
        try:
            while time.time() < made + 3:  # busy, and young enough
                self.assertEqual(self.me(token)[0], 200)
                time.sleep(0.5)
            time.sleep(max(0, made + 4.5 - time.time()))
            st, body, _, _ = self.me(token)
            self.assertEqual(st, 401)
            self.assertEqual(body["error"]["code"], "session_expired")
            self.assertIn("older than 4s", body["error"]["message"])
            # a new login says when it ends
            st, body, _, _ = self.hub.request(
                "POST", "/api/v1/login", {"email": harness.EMAIL, "password": harness.PASSWORD})
            self.assertEqual(st, 200)
            self.assertLessEqual(body["expires_at"], time.time() * 1000 + 4000)
        finally:
            self.hub.stop()
            self.hub.serve_args = list(self.serve_args)
            self.hub.start()


class BadValuesTest(unittest.TestCase):
    def test_bad_durations_are_refused(self):
        for args in (("--session-idle", "soon"), ("--session-lifetime", "0"),
                     ("--rotate-keys-every", "-1d")):
            p = subprocess.run([harness.ROOST, "serve", "--data", "/nonexistent", *args],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn(args[0] + " takes a duration", p.stderr)


if __name__ == "__main__":
    harness.main()
