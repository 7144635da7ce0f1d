"""Accounts (issue 17, docs/accounts.md): password change and reset links, a
TOTP second factor with recovery codes, a workspace that requires it, and
display names — through the real `roost` binary and the HTTP API.

- A password change ends the user's other sessions and keeps the current one.
- A reset link (roost admin reset-password, or an owner's API call) works once,
  not after it expires, not forged; using it ends every session of the user.
- TOTP: enrolment is confirmed by a first code; login then needs a code, which
  works once (no replay), from one step either side of now; recovery codes
  work once; wrong codes are throttled; disable needs a code or the password.
- require_2fa: a member without 2FA gets 403 "2fa_required" on workspace
  routes, not on enrolment.
- WebDAV: an app password made after 2FA works; the account password is
  refused with a message that says why.
- Display names appear in members, versions and the audit log.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import struct
import subprocess
import time

import harness
from harness import HubTest, q

PW = "member password 1"


def totp(secret, step=None, offset=0):
    """RFC 6238 code (SHA-1, 30 s, 6 digits) of base32 secret at step (now) + offset."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    step = (int(time.time()) // 30 if step is None else step) + offset
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % 1000000)


def basic(email, password):
    return "Basic " + base64.b64encode(("%s:%s" % (email, password)).encode()).decode()


class AccountsTest(HubTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.n = 0

    # ---- helpers ----

    def new_user(self, name=None, role="member"):
        """A new member of the workspace: (email, token, user id)."""
        AccountsTest.n += 1
        email = "user%d@example.test" % AccountsTest.n
        st, inv, payload, _ = self.api("POST", "/invites", {"role": role})
        self.assertEqual(st, 201, payload)
        body = {"token": inv["token"], "email": email, "password": PW}
        if name:
            body["name"] = name
        st, out, payload, _ = self.hub.request("POST", "/api/v1/invites/accept", body)
        self.assertEqual(st, 200, payload)
        return email, out["token"], out["user"]["id"]

    def login_step1(self, email, password=PW):
        return self.hub.request("POST", "/api/v1/login", {"email": email, "password": password})

    def login_totp(self, challenge, code):
        return self.hub.request("POST", "/api/v1/login/totp",
                                {"challenge": challenge, "code": code})

    def enrol(self, token):
        """Turn 2FA on for token's user: (secret, recovery codes). The code used is
        the previous step's, so that the current one is still unspent."""
        st, setup, payload, _ = self.hub.request("POST", "/api/v1/2fa/setup", token=token)
        self.assertEqual(st, 200, payload)
        self.assertTrue(setup["uri"].startswith("otpauth://totp/roost:"), setup)
        self.assertIn("secret=" + setup["secret"], setup["uri"])
        st, on, payload, _ = self.hub.request("POST", "/api/v1/2fa/enable",
                                              {"code": totp(setup["secret"], offset=-1)},
                                              token=token)
        self.assertEqual(st, 200, payload)
        self.assertEqual(len(on["recovery_codes"]), 10)
        self.assertEqual(len(set(on["recovery_codes"])), 10)
        return setup["secret"], on["recovery_codes"]

    def as_user(self, email, *args, password=PW):
        """roost as email (its own saved login, $ROOST_PASSWORD=password)."""
        cfg = os.path.join(self.tmp, "cfg-" + email)
        p = subprocess.run([harness.ROOST, *args], capture_output=True,
                           env=self.hub.env(XDG_CONFIG_HOME=cfg, ROOST_PASSWORD=password))
        p.out, p.err = p.stdout.decode(), p.stderr.decode()
        return p

    def me(self, token):
        return self.hub.request("GET", "/api/v1/me", token=token)

    # ---- password change ----

    def test_a_password_change_ends_other_sessions_and_keeps_this_one(self):
        email, tok, _ = self.new_user()
        other = self.hub.login(email, PW)
        st, body, payload, _ = self.hub.request("POST", "/api/v1/password",
                                                {"old": PW, "new": "a new password 2"},
                                                token=tok)
        self.assertEqual(st, 200, payload)
        self.assertGreaterEqual(body["revoked"], 1)
        self.assertEqual(self.me(tok)[0], 200, "the current session ended")
        self.assertEqual(self.me(other)[0], 401, "another session survived")
        self.assertEqual(self.login_step1(email)[0], 401, "the old password still works")
        self.hub.login(email, "a new password 2")

    def test_a_password_change_needs_the_current_password(self):
        email, tok, _ = self.new_user()
        self.assertError(self.hub.request("POST", "/api/v1/password",
                                          {"old": "not it at all", "new": "another one 3"},
                                          token=tok), 403, "invalid_credentials")
        self.hub.login(email, PW)

    # ---- reset links ----

    def admin_reset(self, email, *extra):
        return self.roost("admin", "reset-password", email, "--data", self.hub.data,
                          *self.hub.db_args(), "--dashboard-port", str(self.hub.dash_port),
                          *extra)

    def test_an_operator_reset_link_works_once_and_ends_every_session(self):
        email, tok, _ = self.new_user()
        p = self.admin_reset(email)
        self.assertEqual(p.returncode, 0, p.err)
        m = re.fullmatch(r"http://127\.0\.0\.1:%d/reset/(rst_[A-Za-z0-9_-]+)\n" %
                         self.hub.dash_port, p.out)
        self.assertIsNotNone(m, p.out)
        self.assertIn("one-use", p.err)
        link = m.group(1)
        # stored hashed, as every token
        self.assertEqual(self.hub.sql("SELECT COUNT(*) FROM account_links WHERE token_hash = ?",
                                      (link,))[0][0], 0)
        st, peek, payload, _ = self.hub.request("GET", "/api/v1/password/reset/" + link)
        self.assertEqual(st, 200, payload)
        self.assertEqual(peek["email"], email)
        self.assertError(self.hub.request("POST", "/api/v1/password/reset",
                                          {"token": link, "password": "short"}),
                         400, "weak_password")
        st, body, payload, _ = self.hub.request("POST", "/api/v1/password/reset",
                                                {"token": link, "password": "reset password 4"})
        self.assertEqual(st, 200, payload)
        self.assertEqual(body["email"], email)
        self.assertEqual(self.me(tok)[0], 401, "a session outlived the reset")
        self.hub.login(email, "reset password 4")
        # a second use
        self.assertError(self.hub.request("POST", "/api/v1/password/reset",
                                          {"token": link, "password": "again password 5"}),
                         410, "reset_used")
        self.hub.login(email, "reset password 4")

    def test_an_expired_or_forged_reset_link_is_refused_and_changes_nothing(self):
        email, tok, uid = self.new_user()
        p = self.admin_reset(email, "--expires", "1m")
        self.assertEqual(p.returncode, 0, p.err)
        link = p.out.strip().rsplit("/", 1)[1]
        self.hub.sql("UPDATE account_links SET expires_at = 1 WHERE user_id = ?", (uid,))
        self.assertError(self.hub.request("POST", "/api/v1/password/reset",
                                          {"token": link, "password": "late password 6"}),
                         410, "reset_expired")
        self.assertError(self.hub.request("POST", "/api/v1/password/reset",
                                          {"token": "rst_" + "A" * 43,
                                           "password": "forged password 7"}),
                         404, "reset_invalid")
        self.assertError(self.hub.request("GET", "/api/v1/password/reset/rst_nope"),
                         404, "reset_invalid")
        self.assertEqual(self.me(tok)[0], 200, "a refused reset ended a session")
        self.hub.login(email, PW)

    def test_reset_password_command_refuses_an_unknown_email_and_bad_expiry(self):
        p = self.admin_reset("nobody@example.test")
        self.assertEqual(p.returncode, 1)
        self.assertIn("no account with the email nobody@example.test", p.err)
        self.assertEqual(p.out, "")
        p = self.admin_reset(harness.EMAIL, "--expires", "soon")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--expires", p.err)

    def test_an_owner_issues_a_reset_link_a_member_cannot(self):
        email, tok, uid = self.new_user()
        _, mtok, muid = self.new_user()
        self.assertError(self.api("POST", "/members/%d/reset-link" % uid, {}, token=mtok),
                         403, "forbidden")
        st, body, payload, _ = self.api("POST", "/members/%d/reset-link" % uid,
                                        {"expires_in": 3600})
        self.assertEqual(st, 201, payload)
        self.assertIn("/reset/rst_", body["url"])
        self.assertEqual(body["email"], email)
        link = body["url"].rsplit("/", 1)[1]
        # a newer link replaces it
        st, body2, _, _ = self.api("POST", "/members/%d/reset-link" % uid, {})
        self.assertEqual(st, 201)
        self.assertError(self.hub.request("GET", "/api/v1/password/reset/" + link), 410,
                         "reset_used")
        # an admin cannot reset an owner
        atok = self.new_user(role="admin")[1]
        owner_id = self.hub.sql("SELECT id FROM users WHERE email = ?", (harness.EMAIL,))[0][0]
        self.assertError(self.api("POST", "/members/%d/reset-link" % owner_id, {}, token=atok),
                         403, "forbidden")
        self.assertError(self.api("POST", "/members/99999/reset-link", {}), 404, "not_found")

    # ---- TOTP ----

    def test_totp_login_needs_a_code_that_works_once(self):
        email, tok, _ = self.new_user()
        secret, _ = self.enrol(tok)
        st, first, payload, _ = self.login_step1(email)
        self.assertEqual(st, 200, payload)
        self.assertTrue(first["totp_required"])
        self.assertNotIn("token", first)
        code = totp(secret)
        st, sess, payload, _ = self.login_totp(first["challenge"], code)
        self.assertEqual(st, 200, payload)
        self.assertEqual(self.me(sess["token"])[0], 200)
        # the same code again, with a new challenge: refused (no replay)
        st, first2, _, _ = self.login_step1(email)
        self.assertError(self.login_totp(first2["challenge"], code), 401, "invalid_code")
        # the used challenge is over
        self.assertError(self.login_totp(first["challenge"], totp(secret, offset=1)), 401,
                         "challenge_invalid")
        # a wrong password never reaches the code step
        self.assertError(self.login_step1(email, "wrong password"), 401, "invalid_credentials")

    def test_a_code_from_one_step_ahead_is_accepted_two_steps_back_is_not(self):
        email, tok, _ = self.new_user()
        secret, _ = self.enrol(tok)
        st, first, _, _ = self.login_step1(email)
        self.assertError(self.login_totp(first["challenge"], totp(secret, offset=-3)), 401,
                         "invalid_code")
        st, sess, payload, _ = self.login_totp(first["challenge"], totp(secret, offset=1))
        self.assertEqual(st, 200, payload)

    def test_a_recovery_code_works_once(self):
        email, tok, _ = self.new_user()
        secret, codes = self.enrol(tok)
        self.assertEqual(self.hub.sql(
            "SELECT COUNT(*) FROM recovery_codes WHERE code_hash = ?", (codes[0],))[0][0], 0,
            "a recovery code is stored in the clear")
        st, first, _, _ = self.login_step1(email)
        st, sess, payload, _ = self.login_totp(first["challenge"], codes[0].upper())
        self.assertEqual(st, 200, payload)
        st, first, _, _ = self.login_step1(email)
        self.assertError(self.login_totp(first["challenge"], codes[0]), 401, "invalid_code")
        st, status, _, _ = self.hub.request("GET", "/api/v1/2fa", token=sess["token"])
        self.assertEqual(status["recovery_codes_left"], 9)
        self.assertTrue(status["enabled"])

    def test_wrong_codes_are_throttled(self):
        email, tok, _ = self.new_user()
        secret, _ = self.enrol(tok)
        st, first, _, _ = self.login_step1(email)
        wrong = "%06d" % ((int(totp(secret)) + 500000) % 1000000)
        statuses = [self.login_totp(first["challenge"], wrong)[0] for _ in range(7)]
        self.assertIn(429, statuses, statuses)
        self.assertEqual(statuses[0], 401)
        st, _, _, resp = self.login_totp(first["challenge"], totp(secret))
        self.assertEqual(st, 429, "a right code went through while throttled")
        self.assertIsNotNone(resp.getheader("Retry-After"))

    def test_enrolment_needs_a_right_first_code_and_disable_a_code_or_password(self):
        email, tok, _ = self.new_user()
        st, setup, _, _ = self.hub.request("POST", "/api/v1/2fa/setup", token=tok)
        self.assertEqual(st, 200)
        self.assertError(self.hub.request("POST", "/api/v1/2fa/enable", {"code": "000000"
                         if totp(setup["secret"]) != "000000" else "111111"}, token=tok),
                         401, "invalid_code")
        self.assertNotIn("totp_required", self.login_step1(email)[1], "a wrong code enabled it")
        # the CLI confirms it
        p = self.as_user(email, "login", "--hub", self.hub.url, "--email", email)
        self.assertEqual(p.returncode, 0, p.err)
        p = self.as_user(email, "2fa", "enable", "--code", totp(setup["secret"], offset=-1))
        self.assertEqual(p.returncode, 0, p.err)
        self.assertIn("two-factor authentication is on", p.out)
        self.assertEqual(len(re.findall(r"^  [a-z2-7]{5}-[a-z2-7]{5}$", p.out, re.M)), 10, p.out)
        p = self.as_user(email, "2fa", "status")
        self.assertIn("on (10 recovery codes left)", p.out)
        # disable: a wrong password is refused and changes nothing
        p = self.as_user(email, "2fa", "disable", password="wrong password")
        self.assertEqual(p.returncode, 1)
        self.assertIn("password is wrong", p.err)
        self.assertTrue(self.login_step1(email)[1]["totp_required"])
        p = self.as_user(email, "2fa", "disable")
        self.assertEqual(p.returncode, 0, p.err)
        self.assertIn("off", p.out)
        self.assertIn("token", self.login_step1(email)[1])

    def test_cli_login_with_code(self):
        email, tok, _ = self.new_user()
        secret, _ = self.enrol(tok)
        p = self.as_user(email, "login", "--hub", self.hub.url, "--email", email, "--code", "12")
        self.assertEqual(p.returncode, 1)
        self.assertIn("wrong code", p.err)
        self.assertNotIn("logged in", p.out)
        p = self.as_user(email, "login", "--hub", self.hub.url, "--email", email,
                         "--code", totp(secret))
        self.assertEqual(p.returncode, 0, p.err)
        self.assertIn("logged in", p.out)
        p = self.as_user(email, "account")
        self.assertIn("two-factor authentication: on", p.out)

    def test_enabling_2fa_ends_sessions_and_app_passwords_made_before(self):
        email, tok, _ = self.new_user()
        other = self.hub.login(email, PW)
        st, app, _, _ = self.hub.request("POST", "/api/v1/tokens", {"name": "old"}, token=tok)
        self.assertEqual(st, 201)
        self.enrol(tok)
        self.assertEqual(self.me(other)[0], 401)
        self.assertEqual(self.me(app["token"])[0], 401)
        self.assertEqual(self.me(tok)[0], 200)

    def test_webdav_takes_an_app_password_after_2fa_not_the_account_password(self):
        email, tok, _ = self.new_user()
        dav = "/dav/%s/" % "default"
        st, _, _, _ = self.hub.request("PROPFIND", dav, headers={
            "Authorization": basic(email, PW), "Depth": "0"}, port=self.hub.content_port)
        self.assertEqual(st, 207, "the account password opens WebDAV without 2FA")
        self.enrol(tok)
        st, _, payload, _ = self.hub.request("PROPFIND", dav, headers={
            "Authorization": basic(email, PW), "Depth": "0"}, port=self.hub.content_port)
        self.assertEqual(st, 401)
        self.assertIn(b"two-factor", payload)
        self.assertIn(b"app password", payload)
        st, app, _, _ = self.hub.request("POST", "/api/v1/tokens", {"name": "mount"}, token=tok)
        self.assertEqual(st, 201)
        st, _, payload, _ = self.hub.request("PROPFIND", dav, headers={
            "Authorization": basic(email, app["token"]), "Depth": "0"},
            port=self.hub.content_port)
        self.assertEqual(st, 207, payload[:300])

    def test_joining_with_an_existing_2fa_account_needs_its_code(self):
        email, tok, _ = self.new_user()
        secret, _ = self.enrol(tok)
        st, body, _, _ = self.hub.request("POST", "/api/v1/workspaces", {"name": "other-%s" %
                                          email}, token=self.token)
        st, inv, _, _ = self.hub.request("POST", "/api/v1/workspaces/%d/invites" % body["id"],
                                         {}, token=self.token)
        self.assertError(self.hub.request("POST", "/api/v1/invites/accept", {
            "token": inv["token"], "email": email, "password": PW}), 401, "totp_required")
        st, out, payload, _ = self.hub.request("POST", "/api/v1/invites/accept", {
            "token": inv["token"], "email": email, "password": PW, "code": totp(secret)})
        self.assertEqual(st, 200, payload)

    # ---- require_2fa ----

    def test_require_2fa_sends_members_without_it_to_enrol(self):
        st, body, _, _ = self.hub.request("POST", "/api/v1/workspaces", {"name": "strict"},
                                          token=self.token)
        ws = body["id"]
        # the owner must have 2FA to require it
        self.assertError(self.hub.request("PUT", "/api/v1/workspaces/%d/security" % ws,
                                          {"require_2fa": True}, token=self.token),
                         409, "enrol_first")
        st, inv, _, _ = self.hub.request("POST", "/api/v1/workspaces/%d/invites" % ws, {},
                                         token=self.token)
        AccountsTest.n += 1
        member = "strict%d@example.test" % AccountsTest.n
        st, joined, _, _ = self.hub.request("POST", "/api/v1/invites/accept", {
            "token": inv["token"], "email": member, "password": PW})
        mtok = joined["token"]
        st, inv, _, _ = self.hub.request("POST", "/api/v1/workspaces/%d/invites" % ws,
                                         {"role": "owner"}, token=self.token)
        AccountsTest.n += 1
        owner = "strictowner%d@example.test" % AccountsTest.n
        st, joined, _, _ = self.hub.request("POST", "/api/v1/invites/accept", {
            "token": inv["token"], "email": owner, "password": PW})
        otok = joined["token"]
        self.enrol(otok)
        # a member cannot set it
        self.assertError(self.hub.request("PUT", "/api/v1/workspaces/%d/security" % ws,
                                          {"require_2fa": True}, token=mtok), 403, "forbidden")
        st, body, payload, _ = self.hub.request("PUT", "/api/v1/workspaces/%d/security" % ws,
                                                {"require_2fa": True}, token=otok)
        self.assertEqual(st, 200, payload)
        self.assertError(self.hub.request("GET", "/api/v1/workspaces/%d/list?path=/" % ws,
                                          token=mtok), 403, "2fa_required")
        st, _, _, _ = self.hub.request("GET", "/api/v1/workspaces/%d/list?path=/" % ws,
                                       token=otok)
        self.assertEqual(st, 200)
        # enrolment stays open; after it the workspace does too (a session made after 2FA)
        secret, _ = self.enrol(mtok)
        st, _, payload, _ = self.hub.request("GET", "/api/v1/workspaces/%d/list?path=/" % ws,
                                             token=mtok)
        self.assertEqual(st, 200, payload)

    # ---- display names ----

    def test_display_names_in_members_versions_and_audit(self):
        email, tok, uid = self.new_user(name="Ann Lee")
        st, me, _, _ = self.me(tok)
        self.assertEqual(me["name"], "Ann Lee")
        self.assertEqual(me["email"], email)
        st, _, _, _ = self.api("PUT", "/upload?path=%s" % q("/ann.txt"), token=tok,
                               raw=b"by ann", headers={"Content-Type":
                                                        "application/octet-stream"})
        self.assertIn(st, (200, 201))
        st, vs, _, _ = self.api("GET", "/versions?path=%s" % q("/ann.txt"))
        self.assertEqual(vs["versions"][0]["by"], email)
        self.assertEqual(vs["versions"][0]["by_name"], "Ann Lee")
        self.hub.login_cli()
        p = self.roost("members")
        self.assertIn("Ann Lee <%s>" % email, p.out)
        p = self.roost("versions", "/ann.txt")
        self.assertIn("Ann Lee <%s>" % email, p.out)
        # renaming through the CLI
        self.assertEqual(self.as_user(email, "login", "--hub", self.hub.url, "--email",
                                      email).returncode, 0)
        p = self.as_user(email, "account", "set-name", "Ann B. Lee")
        self.assertEqual(p.returncode, 0, p.err)
        self.assertIn("Ann B. Lee", p.out)
        self.assertError(self.hub.request("PATCH", "/api/v1/me", {"name": "x\u0007"}, token=tok),
                         400, "invalid_name")
        self.assertError(self.hub.request("PATCH", "/api/v1/me", {"name": "<b>"}, token=tok),
                         400, "invalid_name")
        st, audit, _, _ = self.api("GET", "/audit?action=member.join")
        row = [e for e in audit["entries"] if e["by"] == email][0]
        self.assertEqual(row["by_name"], "Ann B. Lee")
        p = self.roost("audit", "--action", "member.join")
        self.assertIn("Ann B. Lee <%s>" % email, p.out)
        # ... and in ACL entries and the share links she made
        self.roost("mkdir", "/annsfolder")
        st, _, payload, _ = self.api("PUT", "/acl", {"path": "/annsfolder", "email": email,
                                                     "perm": "write"})
        self.assertEqual(st, 200, payload)
        st, acl, _, _ = self.api("GET", "/acl?path=%s" % q("/annsfolder"))
        self.assertEqual([(e["email"], e["name"]) for e in acl["entries"]],
                         [(email, "Ann B. Lee")])
        self.assertIn("Ann B. Lee <%s>" % email, self.roost("acl", "/annsfolder").out)
        st, link, payload, _ = self.api("POST", "/shares", {"path": "/annsfolder"}, token=tok)
        self.assertEqual(st, 201, payload)
        st, shares, _, _ = self.api("GET", "/shares")
        mine = [x for x in shares["shares"] if x["id"] == link["id"]][0]
        self.assertEqual((mine["created_by"], mine["created_by_name"]), (email, "Ann B. Lee"))
        self.assertIn("by Ann B. Lee <%s>" % email, self.roost("shares").out)


if __name__ == "__main__":
    harness.main()
