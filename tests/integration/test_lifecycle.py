"""Deleting for good (issue 17, lifecycle): who may, what stops, and that the
next GC frees the chunks (counted in the hub's store) while nothing else is
harmed.

- roost rm --permanent and roost trash empty [PATH]: owners and admins only;
  trash empty asks first, and without a terminal does nothing unless --yes.
- roost workspace delete NAME: the owner, after typing the name (or
  --confirm NAME); its sessions' access, share links, invites and signed URLs
  stop, its host is told "workspace deleted" and stops, keeping its files.
- roost admin remove-user EMAIL: their sessions, tokens, share links, invites
  and memberships stop; their files and the versions naming them stay.
"""
import http.client
import json
import os
import pty
import subprocess
import urllib.parse

import harness
from harness import HubTest, Host, q, wait_for

PW = "member password 1"


def objects(hub):
    """Every chunk object in the hub's store."""
    found = set()
    for d, _, files in os.walk(os.path.join(hub.data, "objects")):
        found.update(f for f in files if len(f) == 64)
    return found


def fetch(url):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.request("GET", u.path)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, body


class LifecycleTest(HubTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hub.login_cli()
        cls.n = 0

    # ---- helpers ----

    def data(self, size=200_000):
        """Bytes no other test uploads (so their chunks are theirs alone)."""
        return os.urandom(size)

    def put(self, path, data, ws=None, token=None):
        st, body, payload, _ = self.hub.request(
            "PUT", "/api/v1/workspaces/%d/upload?path=%s" % (ws or self.ws, q(path)),
            token=token or self.token, raw=data)
        self.assertEqual(st, 201, payload)
        return body

    def chunks(self, path, ws=None):
        parent, name = path.rsplit("/", 1)
        rows = self.hub.sql(
            "SELECT vc.chunk_hash FROM version_chunks vc JOIN file_versions v ON v.id = "
            "vc.version_id JOIN files f ON f.id = v.file_id JOIN folders d ON d.id = "
            "f.folder_id WHERE d.path = ? AND f.name = ? AND f.workspace_id = ?",
            (parent or "/", name, ws or self.ws))
        return {r[0] for r in rows}

    def gc(self):
        p = subprocess.run([harness.ROOST, "admin", "gc", "--retention", "0", "--data",
                            self.hub.data, *self.hub.db_args()], env=self.hub.env(),
                           capture_output=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr.decode())

    def exists(self, path, ws=None):
        st, _, _, _ = self.hub.request(
            "GET", "/api/v1/workspaces/%d/info?path=%s" % (ws or self.ws, q(path)),
            token=self.token)
        return st == 200

    def trash_paths(self):
        st, body, payload, _ = self.api("GET", "/trash?limit=1000")
        self.assertEqual(st, 200, payload)
        return [e["path"] for e in body["entries"]]

    def member(self, role="member"):
        """A new member of the default workspace: (email, session token)."""
        LifecycleTest.n += 1
        email = "m%d-%s@example.test" % (self.n, role)
        st, inv, payload, _ = self.api("POST", "/invites", {"role": role})
        self.assertEqual(st, 201, payload)
        st, body, payload, _ = self.hub.request(
            "POST", "/api/v1/invites/accept",
            {"token": inv["token"], "email": email, "password": PW})
        self.assertEqual(st, 200, payload)
        return email, body["token"]

    def on_terminal(self, *args, answer):
        """Run roost with a terminal as stdin that answers `answer`."""
        master, slave = pty.openpty()
        try:
            os.write(master, answer.encode() + b"\n")
            p = subprocess.run([harness.ROOST, *args], env=self.hub.env(), stdin=slave,
                               capture_output=True, timeout=120)
        finally:
            os.close(slave)
            os.close(master)
        p.out, p.err = p.stdout.decode(), p.stderr.decode()
        return p

    # ---- rm --permanent ----

    def test_rm_permanent_deletes_a_file_for_good_and_gc_frees_its_chunks(self):
        gone, kept = self.data(), self.data()
        self.put("/perm/gone.bin", gone)
        self.put("/perm/kept.bin", kept)
        mine, others = self.chunks("/perm/gone.bin"), self.chunks("/perm/kept.bin")
        self.assertTrue(mine <= objects(self.hub))
        p = self.roost("rm", "--permanent", "/perm/gone.bin")
        self.assertEqual(p.returncode, 0, p.err)
        self.assertEqual(p.out, "deleted /perm/gone.bin for good (1 file, not in the trash; "
                                "the next GC frees the space)\n")
        self.assertFalse(self.exists("/perm/gone.bin"))
        self.assertNotIn("/perm/gone.bin", self.trash_paths(), "it went to the trash")
        self.gc()
        left = objects(self.hub)
        self.assertFalse(mine & left, "GC left the chunks of a file deleted for good")
        self.assertTrue(others <= left, "GC took another file's chunks")
        st, _, payload, _ = self.api("GET", "/content?path=" + q("/perm/kept.bin"))
        self.assertEqual((st, payload), (200, kept))

    def test_rm_permanent_of_a_folder_takes_everything_in_it(self):
        self.put("/permdir/a.bin", self.data())
        self.put("/permdir/sub/b.bin", self.data())
        p = self.roost("rm", "--permanent", "/permdir")
        self.assertNotEqual(p.returncode, 0, "a full folder needs -r")
        self.assertIn("roost rm -r --permanent /permdir", p.err)
        self.assertTrue(self.exists("/permdir/sub/b.bin"))
        p = self.roost("rm", "-r", "--permanent", "/permdir")
        self.assertEqual(p.returncode, 0, p.err)
        self.assertIn("(2 files,", p.out)
        trash = self.trash_paths()
        self.assertNotIn("/permdir/a.bin", trash)
        self.assertNotIn("/permdir/sub/b.bin", trash)

    def test_a_member_may_not_delete_for_good(self):
        data = self.data()
        self.put("/memberperm/x.bin", data)
        _, tok = self.member("member")
        self.assertError(self.api("DELETE", "/files?permanent=1&path=" + q("/memberperm/x.bin"),
                                  token=tok), 403, "forbidden")
        self.assertTrue(self.exists("/memberperm/x.bin"))
        # ... nor empty the trash
        st, _, _, _ = self.api("DELETE", "/files?path=" + q("/memberperm/x.bin"))
        self.assertEqual(st, 200)
        self.assertError(self.api("POST", "/trash/empty", {}, token=tok), 403, "forbidden")
        self.assertIn("/memberperm/x.bin", self.trash_paths())
        # an admin may
        _, admin = self.member("admin")
        st, body, payload, _ = self.api("POST", "/trash/empty", {"path": "/memberperm"},
                                        token=admin)
        self.assertEqual((st, body), (200, {"purged": 1}), payload)

    # ---- trash empty ----

    def test_trash_empty_without_a_terminal_needs_yes_and_deletes_nothing(self):
        self.put("/asked/a.bin", self.data())
        self.assertEqual(self.roost("rm", "/asked/a.bin").returncode, 0)
        p = self.roost("trash", "empty", stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--yes", p.err)
        self.assertEqual(p.out, "")
        self.assertIn("/asked/a.bin", self.trash_paths())

    def test_trash_empty_asks_on_a_terminal(self):
        self.put("/tty/a.bin", self.data())
        self.assertEqual(self.roost("rm", "/tty/a.bin").returncode, 0)
        p = self.on_terminal("trash", "empty", "/tty", answer="n")
        self.assertEqual(p.returncode, 1, p.err)
        self.assertIn("cannot be undone", p.err)
        self.assertIn("nothing deleted", p.err)
        self.assertIn("/tty/a.bin", self.trash_paths())
        p = self.on_terminal("trash", "empty", "/tty", answer="y")
        self.assertEqual(p.returncode, 0, p.err)
        self.assertIn("deleted 1 file for good", p.out)
        self.assertNotIn("/tty/a.bin", self.trash_paths())

    def test_trash_empty_path_purges_only_what_was_there(self):
        drop, keep = self.data(), self.data()
        self.put("/drop/b.bin", drop)
        self.put("/keep/a.bin", keep)
        dropped, kept = self.chunks("/drop/b.bin"), self.chunks("/keep/a.bin")
        for path in ("/drop/b.bin", "/keep/a.bin"):
            self.assertEqual(self.roost("rm", path).returncode, 0)
        p = self.roost("trash", "empty", "/drop", "--yes")
        self.assertEqual(p.returncode, 0, p.err)
        self.assertEqual(p.out, "deleted 1 file for good from the trash of workspace default; "
                                "the next GC frees their space\n")
        trash = self.trash_paths()
        self.assertNotIn("/drop/b.bin", trash)
        self.assertIn("/keep/a.bin", trash)
        self.gc()
        left = objects(self.hub)
        self.assertFalse(dropped & left)
        self.assertTrue(kept <= left, "GC took a file still in the trash")
        p = self.roost("trash", "restore", "/keep/a.bin")
        self.assertEqual(p.returncode, 0, p.err)
        st, _, payload, _ = self.api("GET", "/content?path=" + q("/keep/a.bin"))
        self.assertEqual((st, payload), (200, keep))
        p = self.roost("trash", "empty", "/drop", "--yes")
        self.assertIn("nothing to delete", p.out)

    # ---- workspace delete ----

    def test_deleting_a_workspace_stops_everything_of_it_and_gc_frees_it(self):
        p = self.roost("workspaces", "create", "doomed")
        self.assertEqual(p.returncode, 0, p.err)
        ws = next(w["id"] for w in json.loads(self.roost("workspaces", "--json").out)
                  if w["name"] == "doomed")
        data = self.data()
        self.put("/d/a.bin", data, ws=ws)
        mine = self.chunks("/d/a.bin", ws=ws)
        base = "/api/v1/workspaces/%d" % ws
        st, share, payload, _ = self.hub.request("POST", base + "/shares", {"path": "/d"},
                                                 token=self.token)
        self.assertEqual(st, 201, payload)
        st, url, payload, _ = self.hub.request("POST", base + "/urls", {"path": "/d/a.bin"},
                                               token=self.token)
        self.assertEqual(st, 201, payload)
        st, inv, payload, _ = self.hub.request("POST", base + "/invites", {},
                                               token=self.token)
        self.assertEqual(st, 201, payload)
        self.assertEqual(fetch(url["url"])[0], 200)
        # a host of it, running
        host = Host(self.hub, self.tmp, "doomed-host")
        invite = json.loads(self.roost("host", "invite", "--json", "-w", "doomed").out)
        os.makedirs(host.dir, exist_ok=True)
        self.hub.cli("host", "join", invite["url"], "--dir", host.dir, "--label", host.label)
        host.start()
        wait_for(lambda: os.path.exists(host.path("/d/a.bin")), what="the host's copy",
                 hosts=[host])
        # an admin of it may not delete it; the owner must name it
        _, admin_tok = self.member("admin")  # (of the default workspace: not of doomed)
        self.assertError(self.hub.request("DELETE", base, {"confirm": "doomed"},
                                          token=admin_tok), 404, "not_found")
        self.assertError(self.hub.request("DELETE", base, {"confirm": "Doomed"},
                                          token=self.token), 400, "confirm_mismatch")
        p = self.roost("workspace", "delete", "doomed", stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--confirm", p.err)
        p = self.roost("workspace", "delete", "doomed", "--confirm", "dooomed")
        self.assertEqual(p.returncode, 2)
        self.assertIn("nothing deleted", p.err)
        p = self.on_terminal("workspace", "delete", "doomed", answer="doomed?")
        self.assertEqual(p.returncode, 1)
        self.assertIn("Type its name", p.err)
        self.assertTrue(self.exists("/d/a.bin", ws=ws), "a refusal deleted something")
        # typed right: gone
        p = self.on_terminal("workspace", "delete", "doomed", answer="doomed")
        self.assertEqual(p.returncode, 0, p.err)
        self.assertEqual(p.out, "deleted workspace doomed; the next GC frees its space\n")
        self.assertError(self.hub.request("GET", base, token=self.token), 404, "not_found")
        names = [w["name"] for w in json.loads(self.roost("workspaces", "--json").out)]
        self.assertNotIn("doomed", names)
        self.assertIn(fetch(share["url"])[0], (404, 410))
        self.assertEqual(fetch(url["url"])[0], 403, "a signed URL outlived its workspace")
        st, _, _, _ = self.hub.request("POST", "/api/v1/invites/accept",
                                       {"token": inv["token"], "email": "late@example.test",
                                        "password": PW})
        self.assertEqual(st, 404)
        # the host is told and stops; its files stay
        wait_for(lambda: not host.running(), timeout=30, what="the host to stop",
                 hosts=[host])
        self.assertEqual(host.proc.returncode, 1)
        with open(host.log_path) as f:
            self.assertIn("workspace deleted", f.read())
        with open(host.path("/d/a.bin"), "rb") as f:
            self.assertEqual(f.read(), data)
        # GC frees its chunks; the default workspace is untouched
        keep = self.data()
        self.put("/still/here.bin", keep)
        self.gc()
        self.assertFalse(mine & objects(self.hub), "GC left a deleted workspace's chunks")
        st, _, payload, _ = self.api("GET", "/content?path=" + q("/still/here.bin"))
        self.assertEqual((st, payload), (200, keep))
        self.assertEqual(self.hub.sql("SELECT COUNT(*) FROM workspace_chunks WHERE "
                                      "workspace_id = ?", (ws,))[0][0], 0)

    def test_only_an_owner_deletes_a_workspace(self):
        _, admin_tok = self.member("admin")
        self.assertError(self.hub.request("DELETE", "/api/v1/workspaces/%d" % self.ws,
                                          {"confirm": "default"}, token=admin_tok),
                         403, "forbidden")
        self.assertTrue(self.exists("/"))

    # ---- remove-user ----

    def admin(self, *args):
        p = subprocess.run([harness.ROOST, "admin", *args, "--data", self.hub.data,
                            *self.hub.db_args()], env=self.hub.env(), capture_output=True,
                           timeout=120)
        p.out, p.err = p.stdout.decode(), p.stderr.decode()
        return p

    def test_removing_a_user_stops_their_access_and_keeps_their_files(self):
        email, tok = self.member("admin")
        data = self.data(5000)
        self.put("/bobs/file.bin", data, token=tok)
        st, share, payload, _ = self.api("POST", "/shares", {"path": "/bobs"}, token=tok)
        self.assertEqual(st, 201, payload)
        st, url, payload, _ = self.api("POST", "/urls", {"path": "/bobs/file.bin"}, token=tok)
        self.assertEqual(st, 201, payload)
        st, inv, payload, _ = self.api("POST", "/invites", {}, token=tok)
        self.assertEqual(st, 201, payload)
        st, app, payload, _ = self.hub.request("POST", "/api/v1/tokens", {"name": "dav"},
                                               token=tok)
        self.assertEqual(st, 201, payload)
        # the owner's own link stays
        st, own_share, payload, _ = self.api("POST", "/shares", {"path": "/bobs"})
        self.assertEqual(st, 201, payload)
        p = self.admin("remove-user", "nobody@example.test")
        self.assertEqual(p.returncode, 1)
        self.assertIn("no user nobody@example.test", p.err)
        p = self.admin("remove-user", email)
        self.assertEqual(p.returncode, 0, p.err)
        self.assertIn("removed %s" % email, p.out)
        self.assertError(self.api("GET", "/list?path=/", token=tok), 401, "unauthorized")
        self.assertError(self.api("GET", "/list?path=/", token=app["token"]), 401,
                         "unauthorized")
        st, _, _, _ = self.hub.request("POST", "/api/v1/login", {"email": email, "password": PW})
        self.assertEqual(st, 401)
        self.assertIn(fetch(share["url"])[0], (404, 410))
        self.assertEqual(fetch(own_share["url"])[0], 200, "another's share link stopped")
        self.assertEqual(fetch(url["url"])[0], 403)
        st, _, _, _ = self.hub.request("POST", "/api/v1/invites/accept",
                                       {"token": inv["token"], "email": "x@example.test",
                                        "password": PW})
        self.assertEqual(st, 404, "an invite they made still works")
        st, members, _, _ = self.api("GET", "/members")
        self.assertNotIn(email, [m["email"] for m in members["members"]])
        # their file and the version naming them stay
        st, _, payload, _ = self.api("GET", "/content?path=" + q("/bobs/file.bin"))
        self.assertEqual((st, payload), (200, data))
        st, vers, payload, _ = self.api("GET", "/versions?path=" + q("/bobs/file.bin"))
        self.assertEqual(st, 200, payload)
        self.assertIn(email, json.dumps(vers))
        # removed twice: no such user
        self.assertEqual(self.admin("remove-user", email).returncode, 1)

    def test_the_only_owner_of_a_workspace_is_not_removed(self):
        email, tok = self.member("member")
        st, _, payload, _ = self.hub.request("POST", "/api/v1/workspaces", {"name": "solo"},
                                             token=tok)
        self.assertEqual(st, 201, payload)
        p = self.admin("remove-user", email)
        self.assertEqual(p.returncode, 3)
        self.assertIn("only owner of workspace solo", p.err)
        st, _, payload, _ = self.api("GET", "/list?path=/", token=tok)
        self.assertEqual(st, 200, "a refused removal changed something")
        self.hub.login(email, PW)

    def test_a_removed_user_may_be_invited_again_as_a_new_account(self):
        email, tok = self.member("member")
        self.assertEqual(self.admin("remove-user", email).returncode, 0)
        st, inv, payload, _ = self.api("POST", "/invites", {"role": "member"})
        st, body, payload, _ = self.hub.request(
            "POST", "/api/v1/invites/accept",
            {"token": inv["token"], "email": email, "password": "a new password"})
        self.assertEqual(st, 200, payload)
        self.hub.login(email, "a new password")
        st, _, _, _ = self.hub.request("POST", "/api/v1/login", {"email": email, "password": PW})
        self.assertEqual(st, 401, "the old password came back")


if __name__ == "__main__":
    harness.main()
