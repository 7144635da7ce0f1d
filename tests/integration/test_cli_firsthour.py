"""The CLI as a new user meets it in the first hour (issue 16): the real `roost`
binary, its exit codes and the words it prints; every refusal leaves the
workspace and the local disk as they were.

- rm of a folder with files in it asks for -r; rm -r moves it to the trash.
- get keeps a different local file unless --force, and does not rewrite one
  that already has the content.
- --version N that does not exist is an error naming the path and N.
- policy set on a folder that does not exist is an error and makes nothing.
- Counts read as English ("1 chunk", "1 file"); join names the workspace.
"""
import hashlib
import json
import os
import subprocess

import harness
from harness import HubTest, Host, q


class CliFirstHourTest(HubTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hub.login_cli()
        cls.local = os.path.join(cls.tmp, "local")
        os.makedirs(cls.local)

    # ---- helpers ----

    def put(self, remote, data):
        src = os.path.join(self.tmp, "src-" + hashlib.sha256(remote.encode()).hexdigest()[:8])
        with open(src, "wb") as f:
            f.write(data)
        p = self.roost("put", src, remote)
        self.assertEqual(p.returncode, 0, p.err)
        return p

    def exists(self, path):
        st, _, _, _ = self.api("GET", "/info?path=" + q(path))
        return st == 200

    def write_local(self, name, data):
        path = os.path.join(self.local, name)
        with open(path, "wb") as f:
            f.write(data)
        os.utime(path, (1_000_000_000, 1_000_000_000))  # a stamp a rewrite would change
        return path

    def assertUntouched(self, path, data):
        with open(path, "rb") as f:
            self.assertEqual(f.read(), data, "the local file was changed")
        self.assertEqual(os.stat(path).st_mtime, 1_000_000_000, "the local file was rewritten")

    # ---- rm ----

    def test_rm_of_a_folder_with_files_asks_for_r_and_deletes_nothing(self):
        self.put("/full/a.txt", b"a")
        p = self.roost("rm", "/full")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("-r", p.err)
        self.assertIn("/full", p.err)
        self.assertEqual(p.out, "")
        self.assertTrue(self.exists("/full"), "the folder went")
        self.assertTrue(self.exists("/full/a.txt"), "the file in it went")

    def test_rm_r_moves_a_folder_with_files_to_the_trash(self):
        self.put("/tree/sub/b.txt", b"b")
        p = self.roost("rm", "-r", "/tree")
        self.assertEqual(p.returncode, 0, p.err)
        self.assertEqual(p.out, "deleted /tree\n")
        self.assertFalse(self.exists("/tree"))
        self.assertFalse(self.exists("/tree/sub/b.txt"))
        st, body, payload, _ = self.api("GET", "/trash")
        self.assertEqual(st, 200, payload[:300])
        self.assertIn("/tree", json.dumps(body), "a deleted folder is in the trash")

    def test_rm_of_an_empty_folder_and_of_a_file_need_no_r(self):
        self.assertEqual(self.roost("mkdir", "/empty").returncode, 0)
        p = self.roost("rm", "/empty")
        self.assertEqual((p.returncode, p.out), (0, "deleted /empty\n"), p.err)
        self.assertFalse(self.exists("/empty"))
        self.put("/lone.txt", b"lone")
        p = self.roost("rm", "/lone.txt")
        self.assertEqual((p.returncode, p.out), (0, "deleted /lone.txt\n"), p.err)
        self.assertFalse(self.exists("/lone.txt"))

    def test_rm_of_a_missing_path_fails(self):
        p = self.roost("rm", "/never-there")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("no such path: /never-there", p.err)

    # ---- get over an existing file ----

    def test_get_keeps_a_different_local_file_without_force(self):
        self.put("/doc.txt", b"the hub's words\n")
        dest = self.write_local("doc.txt", b"my own words\n")
        p = self.roost("get", "/doc.txt", dest)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("--force", p.err)
        self.assertIn(dest, p.err)
        self.assertUntouched(dest, b"my own words\n")
        self.assertEqual([n for n in os.listdir(self.local) if n.startswith(".")], [],
                         "a temporary file was left behind")

    def test_get_into_a_folder_keeps_a_different_file_of_that_name(self):
        self.put("/into.txt", b"remote\n")
        dest = self.write_local("into.txt", b"local\n")
        p = self.roost("get", "/into.txt", self.local)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("--force", p.err)
        self.assertUntouched(dest, b"local\n")

    def test_get_keeps_a_symbolic_link_in_the_way_without_force(self):
        self.put("/linked.txt", b"remote\n")
        target = self.write_local("link-target.txt", b"pointed at\n")
        link = os.path.join(self.local, "linked.txt")
        os.symlink(target, link)
        p = self.roost("get", "/linked.txt", link)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("--force", p.err)
        self.assertEqual(os.readlink(link), target)
        self.assertUntouched(target, b"pointed at\n")

    def test_get_force_replaces_a_different_local_file(self):
        self.put("/forced.txt", b"new content\n")
        dest = self.write_local("forced.txt", b"old content\n")
        p = self.roost("get", "--force", "/forced.txt", dest)
        self.assertEqual(p.returncode, 0, p.err)
        with open(dest, "rb") as f:
            self.assertEqual(f.read(), b"new content\n")
        self.assertIn("sha256 verified", p.out)

    def test_get_of_content_already_there_writes_nothing(self):
        data = b"same on both sides\n"
        self.put("/same.txt", data)
        dest = self.write_local("same.txt", data)
        ino = os.stat(dest).st_ino
        p = self.roost("get", "/same.txt", dest)
        self.assertEqual(p.returncode, 0, p.err)
        self.assertIn("nothing written", p.out)
        self.assertUntouched(dest, data)
        self.assertEqual(os.stat(dest).st_ino, ino)
        p = self.roost("get", "/same.txt", dest, "--json")
        self.assertEqual(p.returncode, 0, p.err)
        rep = json.loads(p.out)
        self.assertEqual((rep["written"], rep["sha256"]),
                         (False, hashlib.sha256(data).hexdigest()))

    def test_get_of_a_new_local_name_and_to_stdout_work_as_before(self):
        self.put("/fresh.txt", b"fresh\n")
        dest = os.path.join(self.local, "fresh-copy.txt")
        p = self.roost("get", "/fresh.txt", dest)
        self.assertEqual(p.returncode, 0, p.err)
        with open(dest, "rb") as f:
            self.assertEqual(f.read(), b"fresh\n")
        p = self.hub.cli("get", "/fresh.txt", "-", check=False)
        self.assertEqual((p.returncode, p.stdout), (0, b"fresh\n"), p.stderr)

    # ---- --version N that does not exist ----

    def test_get_of_a_missing_version_says_the_path_has_no_such_version(self):
        self.put("/v.txt", b"one")
        self.put("/v.txt", b"two")
        dest = os.path.join(self.local, "v.txt")
        p = self.roost("get", "/v.txt", dest, "--version", "7")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("/v.txt has no version 7", p.err)
        self.assertFalse(os.path.exists(dest))
        p = self.roost("get", "/v.txt", dest, "--version", "1")
        self.assertEqual(p.returncode, 0, p.err)
        with open(dest, "rb") as f:
            self.assertEqual(f.read(), b"one")

    def test_url_of_a_missing_version_says_the_path_has_no_such_version(self):
        self.put("/u.txt", b"only one")
        p = self.roost("url", "/u.txt", "--version", "3")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("/u.txt has no version 3", p.err)
        self.assertEqual(p.out, "")
        p = self.roost("url", "/u.txt", "--version", "1")
        self.assertEqual(p.returncode, 0, p.err)
        self.assertIn("://", p.out)

    # ---- policy set ----

    def host(self):
        if not getattr(type(self), "box", None):
            box = Host(self.hub, self.tmp, "box")  # joined, never started
            box.join()
            type(self).box = box
        return type(self).box

    def policies(self):
        p = self.roost("policy", "ls", self.host().label, "--json")
        self.assertEqual(p.returncode, 0, p.err)
        return [(x["folder"], x["mode"]) for x in json.loads(p.out)["policies"]]

    def test_policy_set_on_a_missing_folder_fails_and_makes_nothing(self):
        before = self.policies()
        p = self.roost("policy", "set", self.host().label, "/no-such-folder", "pinned")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("no such folder: /no-such-folder", p.err)
        self.assertFalse(self.exists("/no-such-folder"), "the folder was made")
        self.assertEqual(self.policies(), before)
        st, body, payload, _ = self.api("GET", "/hosts")
        hid = [h["id"] for h in body["hosts"] if h["label"] == "box"][0]
        self.assertError(self.api("PUT", "/hosts/%d/policies" % hid,
                                  {"folder": "/no-such-folder", "mode": "exclude"}),
                         404, "not_found")

    def test_policy_set_on_a_file_fails_and_on_a_folder_works(self):
        self.put("/pol/file.txt", b"f")
        p = self.roost("policy", "set", self.host().label, "/pol/file.txt", "pinned")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("is a file", p.err)
        p = self.roost("policy", "set", self.host().label, "/pol", "exclude")
        self.assertEqual((p.returncode, p.out), (0, "/pol on box: exclude\n"), p.err)
        self.assertIn(("/pol", "exclude"), self.policies())

    # ---- wording ----

    def test_counts_of_one_read_in_the_singular(self):
        self.assertEqual(self.roost("workspaces", "create", "solo").returncode, 0)
        src = os.path.join(self.tmp, "one.txt")
        with open(src, "wb") as f:
            f.write(b"just one small file\n")
        p = self.roost("put", src, "/one.txt", "--workspace", "solo")
        self.assertEqual(p.returncode, 0, p.err)
        self.assertIn(" in 1 chunk, 1 uploaded", p.out)
        self.assertNotIn("1 chunks", p.out)
        p = self.roost("usage", "--workspace", "solo")
        self.assertEqual(p.returncode, 0, p.err)
        self.assertIn("workspace solo: 1 file, 1 version\n", p.out)
        self.assertIn(" in 1 chunk ", p.out)
        p = self.roost("get", "/one.txt", "-", "-v", "--workspace", "solo")
        self.assertEqual(p.returncode, 0, p.err)
        self.assertRegex(p.err, r"in 1 chunk\n")

    def test_join_names_the_workspace(self):
        self.assertEqual(self.roost("workspaces", "create", "team-x").returncode, 0)
        p = self.roost("invite", "--workspace", "team-x")
        self.assertEqual(p.returncode, 0, p.err)
        url = p.out.split()[0]
        other = dict(self.hub.env(), XDG_CONFIG_HOME=os.path.join(self.tmp, "cfg-joiner"))
        p = subprocess.run([harness.ROOST, "join", url, "--email", "joiner@example.test"],
                           env=other, capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.startswith("joined workspace team-x as member;"), p.stdout)


if __name__ == "__main__":
    harness.main()
