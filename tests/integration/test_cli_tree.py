"""Whole trees with the CLI (issue 16): `roost put DIR REMOTE` and
`roost get -r REMOTE DIR`, like `rclone copy` — the real binary, its exit codes
and the words it prints.

- put of a folder sends every regular file, nested folders (and empty ones)
  included; get -r brings back every byte into a fresh folder.
- A rerun of put makes no new version; a changed file makes exactly one.
- A rerun of get -r rewrites nothing; a locally changed file is kept unless
  --force, which replaces it.
- A symbolic link in the source, and a name the workspace refuses, are skipped
  with a note.
- get -r of a file or of a missing path is a clear error that writes nothing.
- Names from the hub never write outside DIR, nor through a symbolic link in it.
"""
import hashlib
import json
import os
import shutil

import harness
from harness import HubTest, q


def tree_bytes(root):
    """{relative path: bytes} of every regular file under root."""
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as fh:
                    out[os.path.relpath(p, root)] = fh.read()
    return out


class CliTreeTest(HubTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hub.login_cli()
        cls.src = os.path.join(cls.tmp, "photos")
        os.makedirs(os.path.join(cls.src, "2024", "summer", "beach"))
        os.makedirs(os.path.join(cls.src, "empty-folder"))
        cls.files = {
            "readme.txt": b"holiday pictures\n",
            "empty.txt": b"",
            "big.bin": os.urandom(5 << 20),
            "2024/summer/beach/sand.txt": b"sand " * 100,
        }
        for i in range(40):
            cls.files["2024/small/n%02d.txt" % i] = ("note %d\n" % i).encode() * (i + 1)
        for rel, data in cls.files.items():
            p = os.path.join(cls.src, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                f.write(data)
        os.symlink("/etc/passwd", os.path.join(cls.src, "link-to-passwd"))
        with open(os.path.join(cls.src, "bad\x01name.txt"), "wb") as f:
            f.write(b"a control character in the name")
        p = cls.hub.cli("put", cls.src, "/photos", check=False)
        cls.first_put = p

    # ---- helpers ----

    def versions(self, path):
        st, body, _, _ = self.api("GET", "/versions?path=" + q(path))
        self.assertEqual(st, 200, body)
        return len(body["versions"])

    def all_versions(self):
        return {rel: self.versions("/photos/" + rel) for rel in self.files}

    def fresh_dir(self, name):
        d = os.path.join(self.tmp, name)
        shutil.rmtree(d, ignore_errors=True)
        return d

    # ---- put ----

    def test_put_of_a_folder_sends_every_file_and_skips_the_link(self):
        p = self.first_put
        err = p.stderr.decode()
        self.assertEqual(p.returncode, 0, err)
        self.assertIn("skipped %s/link-to-passwd: a symbolic link" % self.src, err)
        self.assertIn("%d files" % len(self.files), p.stdout.decode())
        self.assertIn("skipped %s/bad\x01name.txt: a name the workspace refuses" % self.src,
                      err)
        self.assertIn("2 skipped", p.stdout.decode())
        st, body, _, _ = self.api("GET", "/info?path=" + q("/photos/link-to-passwd"))
        self.assertEqual(st, 404, "the link was uploaded")
        st, body, _, _ = self.api("GET", "/info?path=" + q("/photos/empty-folder"))
        self.assertEqual(st, 200, "the empty folder was not made")
        self.assertEqual(body["type"], "folder")
        for rel, data in self.files.items():
            st, body, _, _ = self.api("GET", "/info?path=" + q("/photos/" + rel))
            self.assertEqual(st, 200, rel)
            self.assertEqual(body["hash"], hashlib.sha256(data).hexdigest(), rel)

    def test_get_r_brings_back_every_byte(self):
        dest = self.fresh_dir("back")
        p = self.roost("get", "-r", "/photos", dest)
        self.assertEqual(p.returncode, 0, p.err)
        self.assertEqual(tree_bytes(dest), self.files)
        self.assertTrue(os.path.isdir(os.path.join(dest, "empty-folder")))
        self.assertIn("%d written" % len(self.files), p.out)

    def test_put_again_makes_no_new_version_then_one_for_a_changed_file(self):
        before = self.all_versions()
        p = self.roost("put", self.src, "/photos", "--json")
        self.assertEqual(p.returncode, 0, p.err)
        report = json.loads(p.out)
        self.assertEqual(report["uploaded"], 0, report)
        self.assertEqual(report["unchanged"], len(self.files), report)
        self.assertEqual(report["sent_bytes"], 0, report)
        self.assertEqual(report["failed"], [])
        self.assertEqual(sorted(s["reason"] for s in report["skipped"]),
                         ["a name the workspace refuses", "a symbolic link"])
        self.assertEqual(self.all_versions(), before, "a rerun made new versions")

        changed = "2024/small/n07.txt"
        path = os.path.join(self.src, changed)
        with open(path, "wb") as f:
            f.write(b"edited\n")
        try:
            p = self.roost("put", self.src, "/photos", "--json")
            self.assertEqual(p.returncode, 0, p.err)
            self.assertEqual(json.loads(p.out)["uploaded"], 1)
            after = self.all_versions()
            self.assertEqual(after[changed], before[changed] + 1)
            del after[changed], before[changed]
            self.assertEqual(after, before, "an unchanged file got a version")
            st, body, _, _ = self.api("GET", "/info?path=" + q("/photos/" + changed))
            self.assertEqual(body["hash"], hashlib.sha256(b"edited\n").hexdigest())
        finally:
            with open(path, "wb") as f:
                f.write(self.files[changed])
            self.roost("put", self.src, "/photos", "-q")

    def test_put_q_prints_nothing(self):
        p = self.roost("put", self.src, "/photos", "-q")
        self.assertEqual(p.returncode, 0, p.err)
        self.assertEqual(p.out, "")
        self.assertEqual(p.err, "")

    def test_put_lists_a_file_that_failed_and_sends_the_rest(self):
        src = self.fresh_dir("clash-src")
        os.makedirs(src)
        for name in ("a.txt", "b.txt", "c.txt"):
            with open(os.path.join(src, name), "wb") as f:
                f.write(name.encode())
        self.roost("mkdir", "-p", "/clash/b.txt")  # a folder where a file goes
        p = self.roost("put", src, "/clash")
        self.assertEqual(p.returncode, 1, p.err)
        self.assertIn("1 file failed:\n  %s/b.txt\n" % src, p.err)
        self.assertIn("2 uploaded", p.out)
        for name in ("a.txt", "c.txt"):
            st, body, _, _ = self.api("GET", "/info?path=" + q("/clash/" + name))
            self.assertEqual((st, body.get("type")), (200, "file"), name)
        st, body, _, _ = self.api("GET", "/info?path=" + q("/clash/b.txt"))
        self.assertEqual(body["type"], "folder", "the folder in the way was replaced")

    # ---- get -r ----

    def test_get_r_again_rewrites_nothing_and_keeps_a_changed_file_unless_force(self):
        dest = self.fresh_dir("again")
        self.assertEqual(self.roost("get", "-r", "/photos", dest).returncode, 0)
        stamps = {}
        for rel in self.files:
            p = os.path.join(dest, rel)
            os.utime(p, (1_000_000_000, 1_000_000_000))
            stamps[rel] = os.stat(p).st_ino
        p = self.roost("get", "-r", "/photos", dest, "--json")
        self.assertEqual(p.returncode, 0, p.err)
        report = json.loads(p.out)
        self.assertEqual((report["written"], report["unchanged"]), (0, len(self.files)))
        for rel in self.files:
            st = os.stat(os.path.join(dest, rel))
            self.assertEqual(st.st_mtime, 1_000_000_000, rel + " was rewritten")
            self.assertEqual(st.st_ino, stamps[rel], rel + " was replaced")

        mine = os.path.join(dest, "readme.txt")
        with open(mine, "wb") as f:
            f.write(b"my own notes\n")
        p = self.roost("get", "-r", "/photos", dest)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("--force", p.err)
        self.assertIn("/photos/readme.txt", p.err)
        with open(mine, "rb") as f:
            self.assertEqual(f.read(), b"my own notes\n", "the local change was lost")

        p = self.roost("get", "-r", "/photos", dest, "--force")
        self.assertEqual(p.returncode, 0, p.err)
        self.assertIn("1 written", p.out)
        self.assertEqual(tree_bytes(dest), self.files)

    def test_get_r_resumes_fetching_only_what_is_missing(self):
        dest = self.fresh_dir("resume")
        self.assertEqual(self.roost("get", "-r", "/photos", dest, "-q").returncode, 0)
        os.remove(os.path.join(dest, "big.bin"))
        os.remove(os.path.join(dest, "2024/small/n03.txt"))
        p = self.roost("get", "-r", "/photos", dest, "--json")
        self.assertEqual(p.returncode, 0, p.err)
        report = json.loads(p.out)
        self.assertEqual(report["written"], 2, report)
        self.assertEqual(tree_bytes(dest), self.files)

    def test_get_r_of_a_file_or_a_missing_path_is_an_error(self):
        dest = self.fresh_dir("nothing")
        p = self.roost("get", "-r", "/photos/readme.txt", dest)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("/photos/readme.txt is a file", p.err)
        self.assertIn("without -r", p.err)
        self.assertFalse(os.path.exists(dest), "get -r of a file made the folder")
        p = self.roost("get", "-r", "/no-such-folder", dest)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("/no-such-folder", p.err)
        self.assertFalse(os.path.exists(dest))
        p = self.roost("get", "-r", "/photos")
        self.assertEqual(p.returncode, 2)
        self.assertIn("usage: roost get -r REMOTE DIR", p.err)

    def test_get_r_does_not_write_through_a_symlink_in_dir(self):
        dest = self.fresh_dir("linked")
        outside = self.fresh_dir("outside")
        os.makedirs(dest)
        os.makedirs(outside)
        os.symlink(outside, os.path.join(dest, "2024"))
        p = self.roost("get", "-r", "/photos", dest)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("symbolic link", p.err)
        self.assertEqual(os.listdir(outside), [], "get -r wrote through a link")
        with open(os.path.join(dest, "readme.txt"), "rb") as f:
            self.assertEqual(f.read(), self.files["readme.txt"])

    def test_get_r_force_replaces_a_link_at_a_file_name_and_writes_nothing_through_it(self):
        dest = self.fresh_dir("linkname")
        outside = self.fresh_dir("outside2")
        os.makedirs(outside)
        self.assertEqual(self.roost("get", "-r", "/photos", dest, "-q").returncode, 0)
        link = os.path.join(dest, "readme.txt")
        os.remove(link)
        os.symlink(outside, link)
        p = self.roost("get", "-r", "/photos", dest)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("symbolic link", p.err)
        self.assertTrue(os.path.islink(link), "the link went without --force")
        p = self.roost("get", "-r", "/photos", dest, "--force")
        self.assertEqual(p.returncode, 0, p.err)
        self.assertEqual(os.listdir(outside), [], "get -r wrote through a link")
        self.assertFalse(os.path.islink(link))
        self.assertEqual(tree_bytes(dest), self.files)


if __name__ == "__main__":
    harness.main()
