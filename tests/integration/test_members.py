"""Workspaces, members, roles and invites: who may do what."""
import json
import os
import subprocess
import time

import harness
from harness import HubTest, q

PW = "member password 1"


class MembersTest(HubTest):
    def invite(self, token=None, **body):
        return self.api("POST", "/invites", body, token=token or self.token)

    def accept(self, tok, email, password=PW):
        return self.hub.request("POST", "/api/v1/invites/accept",
                                {"token": tok, "email": email, "password": password})

    def join(self, email, role="member"):
        st, inv, payload, _ = self.invite(role=role)
        self.assertEqual(st, 201, payload)
        st, body, payload, _ = self.accept(inv["token"], email)
        self.assertEqual(st, 200, payload)
        return body["token"], body["user"]["id"]

    def members(self):
        st, body, _, _ = self.api("GET", "/members")
        self.assertEqual(st, 200)
        return {m["email"]: m for m in body["members"]}

    def test_an_invited_user_joins_and_works_in_the_workspace(self):
        st, inv, payload, _ = self.invite()
        self.assertEqual(st, 201, payload)
        self.assertTrue(inv["url"].endswith("/invite/" + inv["token"]))
        self.assertEqual(inv["role"], "member")
        st, body, payload, _ = self.accept(inv["token"], "new@example.test")
        self.assertEqual(st, 200, payload)
        tok = body["token"]
        st, ws, _, _ = self.hub.request("GET", "/api/v1/workspaces", token=tok)
        self.assertEqual([(w["id"], w["role"]) for w in ws["workspaces"]], [(self.ws, "member")])
        st, body, _, _ = self.api("POST", "/folders", {"path": "/by-member"}, token=tok)
        self.assertEqual(st, 201, body)
        self.assertEqual(self.members()["new@example.test"]["role"], "member")
        # the new account logs in with its password too
        self.hub.login("new@example.test", PW)

    def test_an_invite_works_once_and_not_after_revocation_or_expiry(self):
        st, inv, _, _ = self.invite()
        self.assertEqual(self.accept(inv["token"], "once@example.test")[0], 200)
        self.assertError(self.accept(inv["token"], "twice@example.test"), 404, "invite_not_found")
        st, inv2, _, _ = self.invite()
        st, _, _, _ = self.api("DELETE", "/invites/%d" % inv2["id"])
        self.assertEqual(st, 200)
        self.assertError(self.accept(inv2["token"], "revoked@example.test"), 404,
                         "invite_not_found")
        st, inv3, _, _ = self.invite(expires_in=1)
        time.sleep(1.2)
        self.assertError(self.accept(inv3["token"], "late@example.test"), 404, "invite_not_found")
        self.assertNotIn("twice@example.test", self.members())
        self.assertNotIn("late@example.test", self.members())
        self.assertError(self.accept("rst_forged", "x@example.test"), 404, "invite_not_found")

    def test_an_existing_account_must_give_its_password_to_join(self):
        self.join("existing@example.test")
        st, body, _, _ = self.hub.request("POST", "/api/v1/workspaces", {"name": "second"},
                                          token=self.token)
        self.assertEqual(st, 201, body)
        ws2 = body["id"]
        st, inv, _, _ = self.hub.request("POST", "/api/v1/workspaces/%d/invites" % ws2, {},
                                         token=self.token)
        self.assertEqual(st, 201)
        self.assertError(self.accept(inv["token"], "existing@example.test", "wrong password"),
                         401, "invalid_credentials")
        st, body, payload, _ = self.accept(inv["token"], "existing@example.test")
        self.assertEqual(st, 200, payload)
        self.assertEqual(body["workspace"]["id"], ws2)

    def test_members_cannot_manage_members_invites_or_read_the_audit_log(self):
        tok, uid = self.join("plain@example.test")
        self.assertError(self.invite(token=tok), 403, "forbidden")
        self.assertError(self.api("GET", "/invites", token=tok), 403, "forbidden")
        self.assertError(self.api("PUT", "/members/%d" % uid, {"role": "admin"}, token=tok),
                         403, "forbidden")
        self.assertError(self.api("GET", "/audit", token=tok), 403, "forbidden")
        self.assertEqual(self.members()["plain@example.test"]["role"], "member")

    def test_admins_invite_members_but_only_owners_make_owners(self):
        tok, uid = self.join("admin@example.test", role="admin")
        st, inv, _, _ = self.invite(token=tok, role="member")
        self.assertEqual(st, 201)
        self.assertError(self.invite(token=tok, role="owner"), 403, "forbidden")
        _, other = self.join("promote@example.test")
        self.assertError(self.api("PUT", "/members/%d" % other, {"role": "owner"}, token=tok),
                         403, "forbidden")
        st, body, _, _ = self.api("PUT", "/members/%d" % other, {"role": "admin"}, token=tok)
        self.assertEqual((st, body["role"]), (200, "admin"))

    def test_the_last_owner_cannot_leave_or_be_demoted(self):
        st, me, _, _ = self.hub.request("GET", "/api/v1/me", token=self.token)
        self.assertError(self.api("PUT", "/members/%d" % me["id"], {"role": "admin"}), 409,
                         "last_owner")
        self.assertError(self.api("DELETE", "/members/%d" % me["id"]), 409, "last_owner")
        self.assertEqual(self.members()[harness.EMAIL]["role"], "owner")

    def test_a_member_may_leave_and_then_sees_nothing(self):
        tok, uid = self.join("leaver@example.test")
        st, _, _, _ = self.api("DELETE", "/members/%d" % uid, token=tok)
        self.assertEqual(st, 200)
        self.assertError(self.api("GET", "/list?path=%2F", token=tok), 404, "not_found")

    def test_read_only_default_access_stops_member_writes_but_not_reads(self):
        tok, uid = self.join("reader@example.test")
        self.assertEqual(self.api("PATCH", "", {"default_access": "read"})[0], 200)
        try:
            self.assertError(self.api("POST", "/folders", {"path": "/nope"}, token=tok), 403,
                             "forbidden")
            self.assertError(self.api("PUT", "/upload?path=" + q("/nope.txt"), raw=b"x",
                                      token=tok), 403, "forbidden")
            self.assertEqual(self.api("GET", "/list?path=%2F", token=tok)[0], 200)
            # owners still write
            self.assertEqual(self.api("POST", "/folders", {"path": "/owner-ok"})[0], 201)
        finally:
            self.api("PATCH", "", {"default_access": "write"})

    def test_bad_invite_and_role_requests_are_refused(self):
        for body in ({"role": "king"}, {"expires_in": 0}, {"expires_in": "1d"},
                     {"single_use": "yes"}):
            self.assertError(self.invite(**body), 400, "invalid_request")
        self.assertError(self.api("PUT", "/members/1", {"role": "boss"}), 400, "invalid_role")
        self.assertError(self.api("PUT", "/members/999999", {"role": "admin"}), 404, "not_found")
        self.assertError(self.api("DELETE", "/invites/999999"), 404, "not_found")
        self.assertError(self.hub.request("POST", "/api/v1/workspaces", {"name": "a/b"},
                                          token=self.token), 400, "invalid_name")
        self.assertError(self.accept("x", "not-an-email", PW), 400, "invalid_request")

    def test_a_created_workspace_belongs_to_its_creator(self):
        st, body, _, _ = self.hub.request("POST", "/api/v1/workspaces", {"name": "team"},
                                          token=self.token)
        self.assertEqual((st, body["role"]), (201, "owner"))
        st, lst, _, _ = self.hub.request("GET", "/api/v1/workspaces/%d/list?path=%%2F" % body["id"],
                                         token=self.token)
        self.assertEqual((st, lst["entries"]), (200, []))
        tok, _ = self.join("outsider@example.test")
        st, _, _, _ = self.hub.request("GET", "/api/v1/workspaces/%d/list?path=%%2F" % body["id"],
                                       token=tok)
        self.assertEqual(st, 404)

    def test_invite_join_members_and_workspaces_from_the_cli(self):
        self.hub.login_cli()
        out = self.hub.cli("invite", "--role", "admin", "--expires", "1h").stdout.decode()
        url = out.split()[0]
        self.assertIn("/invite/", url)
        other = dict(self.hub.env(), XDG_CONFIG_HOME=os.path.join(self.tmp, "cfg-other"),
                     ROOST_PASSWORD=PW)
        p = subprocess.run([harness.ROOST, "join", url, "--email", "cli@example.test"],
                           env=other, capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        members = json.loads(self.hub.cli("members", "--json").stdout)
        self.assertIn(("cli@example.test", "admin"), [(m["email"], m["role"]) for m in members])
        # the joined user is logged in and can work
        p = subprocess.run([harness.ROOST, "mkdir", "/from-cli-member"], env=other,
                           capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = subprocess.run([harness.ROOST, "join", url, "--email", "again@example.test"],
                           env=other, capture_output=True)
        self.assertNotEqual(p.returncode, 0)
        self.hub.cli("workspaces", "create", "cli-team")
        names = [w["name"] for w in json.loads(self.hub.cli("workspaces", "--json").stdout)]
        self.assertIn("cli-team", names)
        p = self.hub.cli("ls", "--workspace", "cli-team")
        self.assertEqual(p.stdout, b"")


if __name__ == "__main__":
    harness.main()
