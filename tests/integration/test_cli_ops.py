"""CLI operations of issue 16 as a user meets them: the real `roost` binary, its
exit codes and the words it prints.

- roost trash lists deleted files (the last deleted first, a page or --all,
  --json); roost trash restore PATH brings a file, or a folder's files, back,
  and refuses clearly (nothing changed) when the path is not in the trash or
  is taken now. GET trash pages in the order it lists.
- roost hosts shows each host's direct URL and its public (relay) URL.
- roost url says, on stderr, when the link it prints is served through a
  host's relay over https (whose certificate may need its CA), and for a link
  served by a host directly, the host's public link through its relay.
- roost host get --dir DIR PATH - streams the file to a pipe, byte for byte.
- scripts/roost-completion.bash completes subcommands and options.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import harness
from harness import HubTest, Host, Relay, q, wait_for

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


class CliTest(HubTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hub.login_cli()

    def put(self, remote, data):
        src = os.path.join(self.tmp, "src-" + hashlib.sha256(remote.encode()).hexdigest()[:8])
        with open(src, "wb") as f:
            f.write(data)
        p = self.roost("put", "-q", src, remote)
        self.assertEqual(p.returncode, 0, p.err)

    def rm(self, *args):
        p = self.roost("rm", *args)
        self.assertEqual(p.returncode, 0, p.err)
        time.sleep(0.005)  # deletions a few ms apart list in a known order

    def exists(self, path):
        st, _, _, _ = self.api("GET", "/info?path=" + q(path))
        return st == 200

    def content(self, path):
        p = self.hub.cli("get", path, "-", check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def trash_paths(self):
        st, body, _, _ = self.api("GET", "/trash?limit=1000")
        self.assertEqual(st, 200, body)
        return [e["path"] for e in body["entries"]]


class TrashTest(CliTest):

    def test_trash_lists_deleted_files_the_last_deleted_first(self):
        self.put("/list/a.txt", b"aaaa")
        self.put("/list/b.txt", b"bb")
        self.put("/list/b.txt", b"bbb")  # a second version
        self.rm("/list/a.txt")
        self.rm("/list/b.txt")
        p = self.roost("trash")
        self.assertEqual(p.returncode, 0, p.err)
        lines = p.out.splitlines()
        a = [l for l in lines if l.endswith("/list/a.txt  (1 version, restorable until "
                                            + l[-17:-1] + ")")]
        b = [l for l in lines if "/list/b.txt  (2 versions," in l]
        self.assertEqual(len(a), 1, p.out)
        self.assertEqual(len(b), 1, p.out)
        self.assertLess(lines.index(b[0]), lines.index(a[0]), "b was deleted last: first")
        self.assertRegex(a[0], r"^4 B\s+deleted \d{4}-\d\d-\d\d \d\d:\d\d  /list/a.txt")
        self.assertEqual(p.err, "")

    def test_trash_json_is_the_entries(self):
        self.put("/js/x.txt", b"x")
        self.rm("/js/x.txt")
        p = self.roost("trash", "--json")
        self.assertEqual(p.returncode, 0, p.err)
        entries = json.loads(p.out)
        x = [e for e in entries if e["path"] == "/js/x.txt"]
        self.assertEqual(len(x), 1, entries)
        self.assertEqual(x[0]["size"], 1)
        self.assertEqual(x[0]["versions"], 1)
        self.assertGreater(x[0]["expires_at"], x[0]["deleted_at"])

    def test_trash_limit_shows_a_page_and_says_more_follow(self):
        for n in range(3):
            self.put("/pg/%d.txt" % n, b"p")
        for n in range(3):
            self.rm("/pg/%d.txt" % n)
        p = self.roost("trash", "--limit", "2")
        self.assertEqual(p.returncode, 0, p.err)
        self.assertEqual(len(p.out.splitlines()), 2, p.out)
        self.assertIn("/pg/2.txt", p.out)
        self.assertIn("more in the trash: roost trash --all", p.err)
        p = self.roost("trash", "--all")
        self.assertEqual(p.returncode, 0, p.err)
        for n in range(3):
            self.assertIn("/pg/%d.txt" % n, p.out)
        self.assertEqual(p.err, "")

    def test_trash_pages_follow_the_order_of_deletion_not_of_ids(self):
        # older (lower id) deleted last: lists first; the next page must still
        # hold younger, deleted before it.
        self.put("/ord/older.txt", b"o")
        self.put("/ord/younger.txt", b"y")
        self.rm("/ord/younger.txt")
        self.rm("/ord/older.txt")
        st, first, _, _ = self.api("GET", "/trash?limit=1")
        self.assertEqual(st, 200, first)
        self.assertEqual([e["path"] for e in first["entries"]], ["/ord/older.txt"])
        self.assertTrue(first["more"])
        seen = []
        before = first["entries"][0]["id"]
        while True:
            st, page, _, _ = self.api("GET", "/trash?limit=1&before=%d" % before)
            self.assertEqual(st, 200, page)
            seen += [e["path"] for e in page["entries"]]
            if not page["more"]:
                break
            before = page["entries"][-1]["id"]
        self.assertIn("/ord/younger.txt", seen, "the second page skipped an entry")
        self.assertNotIn("/ord/older.txt", seen, "an entry came twice")

    def test_trash_of_an_empty_workspace_says_so(self):
        self.assertEqual(self.roost("workspaces", "create", "bare").returncode, 0)
        p = self.roost("trash", "--workspace", "bare")
        self.assertEqual(p.returncode, 0, p.err)
        self.assertEqual(p.out, "the trash of workspace bare is empty\n")

    def test_trash_refuses_a_bad_limit(self):
        for bad in (["--limit", "0"], ["--limit", "x"], ["--limit", "5000"],
                    ["--limit", "2", "--all"], ["extra"]):
            p = self.roost("trash", *bad)
            self.assertEqual(p.returncode, 2, (bad, p.out, p.err))
            self.assertEqual(p.out, "")
            self.assertTrue(p.err.startswith("roost trash: --limit") or
                            p.err.startswith("usage: roost trash"), p.err)

    def test_restore_brings_a_file_back_with_its_content(self):
        self.put("/rs/f.txt", b"first")
        self.put("/rs/f.txt", b"second")
        self.rm("/rs/f.txt")
        self.assertFalse(self.exists("/rs/f.txt"))
        p = self.roost("trash", "restore", "/rs/f.txt")
        self.assertEqual(p.returncode, 0, p.err)
        self.assertEqual(p.out, "restored /rs/f.txt (version 2)\n")
        self.assertEqual(self.content("/rs/f.txt"), b"second")
        self.assertNotIn("/rs/f.txt", self.trash_paths())

    def test_restore_takes_the_last_deletion_of_a_path(self):
        self.put("/twice/t.txt", b"one")
        self.rm("/twice/t.txt")
        self.put("/twice/t.txt", b"two")
        self.rm("/twice/t.txt")
        p = self.roost("trash", "restore", "twice/t.txt")  # relative: from the root
        self.assertEqual(p.returncode, 0, p.err)
        self.assertEqual(self.content("/twice/t.txt"), b"two")
        self.assertEqual(self.trash_paths().count("/twice/t.txt"), 1, "the older one stays")

    def test_restore_of_a_folder_brings_back_what_rm_r_took(self):
        self.put("/tree/a.txt", b"a")
        self.put("/tree/sub/b.txt", b"b")
        self.rm("-r", "/tree")
        self.assertFalse(self.exists("/tree"))
        p = self.roost("trash", "restore", "/tree")
        self.assertEqual(p.returncode, 0, p.err)
        self.assertEqual(sorted(p.out.splitlines()),
                         ["restored /tree/a.txt (version 1)",
                          "restored /tree/sub/b.txt (version 1)"])
        self.assertEqual(self.content("/tree/sub/b.txt"), b"b")
        self.assertEqual(self.content("/tree/a.txt"), b"a")

    def test_restore_of_a_path_not_in_the_trash_is_an_error(self):
        self.put("/live.txt", b"live")
        before = self.trash_paths()
        for path in ("/never/there.txt", "/live.txt"):
            p = self.roost("trash", "restore", path)
            self.assertEqual(p.returncode, 1, p.out)
            self.assertEqual(p.out, "")
            self.assertEqual(p.err, "roost trash restore: %s is not in the trash of workspace "
                             "default (see roost trash)\n" % path)
        self.assertEqual(self.trash_paths(), before)
        self.assertEqual(self.content("/live.txt"), b"live")

    def test_restore_onto_a_path_taken_since_refuses_and_changes_nothing(self):
        self.put("/taken.txt", b"old")
        self.rm("/taken.txt")
        self.put("/taken.txt", b"new")
        p = self.roost("trash", "restore", "/taken.txt")
        self.assertEqual(p.returncode, 1, p.out)
        self.assertEqual(p.out, "")
        self.assertIn("/taken.txt is taken now; move that away first, then restore", p.err)
        self.assertEqual(self.content("/taken.txt"), b"new")
        self.assertIn("/taken.txt", self.trash_paths(), "the deleted one left the trash")
        # moved away, it restores
        self.assertEqual(self.roost("mv", "/taken.txt", "/taken-new.txt").returncode, 0)
        p = self.roost("trash", "restore", "/taken.txt")
        self.assertEqual(p.returncode, 0, p.err)
        self.assertEqual(self.content("/taken.txt"), b"old")

    def test_restore_refuses_a_bad_path_and_usage(self):
        p = self.roost("trash", "restore", "/a/../../b")
        self.assertEqual(p.returncode, 2)
        self.assertTrue(p.err.startswith("roost trash restore: /a/../../b: "), p.err)
        p = self.roost("trash", "restore")
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.err, "usage: roost trash restore PATH\n")

    def test_help_lists_trash(self):
        p = self.roost("help")
        self.assertIn("roost trash [--limit N | --all] [--json]", p.out)
        self.assertIn("roost trash restore PATH", p.out)

    def test_url_served_by_the_hub_prints_no_ca_hint(self):
        self.put("/plain.txt", b"plain")
        p = self.roost("url", "/plain.txt")
        self.assertEqual(p.returncode, 0, p.err)
        self.assertRegex(p.out, r"^http://127\.0\.0\.1:\d+/c/\S+\n$")
        self.assertEqual(p.err, "")


class RelayCliTest(CliTest):
    """A relay (self-signed), host A with a direct URL and the relay, attached to
    the workspace; A pins /a only, so other files it reads on demand."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.relay = Relay(cls.hub, cls.tmp)
        cls.relay.start()
        cls.A = Host(cls.hub, cls.tmp, "A", relay=cls.relay)
        cls.A.join(folders=["/a"])
        cls.A.start()

    @classmethod
    def tearDownClass(cls):
        try:
            for h in cls.hub.hosts:
                if h.running():
                    h.stop()
            cls.relay.stop()
        finally:
            super().tearDownClass()

    def hosts_json(self):
        p = self.roost("hosts", "--json")
        self.assertEqual(p.returncode, 0, p.err)
        return json.loads(p.out)["hosts"]

    def public_url(self, label):
        for h in self.hosts_json():
            if h["label"] == label and h.get("tunnel_url"):
                return h["tunnel_url"]
        return None

    def test_hosts_shows_the_direct_and_the_public_url(self):
        pub = wait_for(lambda: self.public_url("A"), 30, "A's public URL", [self.A])
        self.assertTrue(pub.startswith("https://127.0.0.1:%d/h/" % self.relay.public_port), pub)
        p = self.roost("hosts")
        self.assertEqual(p.returncode, 0, p.err)
        line = [l for l in p.out.splitlines() if re.match(r"^\d+\s+A\s", l)]
        self.assertEqual(len(line), 1, p.out)
        self.assertIn("  direct %s  public %s" % (self.A.url, pub), line[0])

    def test_hosts_without_a_relay_shows_a_dash(self):
        wait_for(lambda: self.public_url("A"), 30, "A's public URL", [self.A])
        B = Host(self.hub, self.tmp, "B")  # no relay
        B.join(folders=["/b"])
        B.start()
        try:
            wait_for(lambda: any(h["label"] == "B" and h["status"] == "online"
                                 for h in self.hosts_json()), 30, "B online", [B])
            p = self.roost("hosts")
            line = [l for l in p.out.splitlines() if re.match(r"^\d+\s+B\s", l)]
            self.assertEqual(len(line), 1, p.out)
            self.assertTrue(line[0].endswith("  direct %s  public -" % B.url), line[0])
            b = [h for h in self.hosts_json() if h["label"] == "B"][0]
            self.assertIsNone(b["tunnel_url"])
        finally:
            B.stop()

    def test_host_get_streams_a_file_to_a_pipe(self):
        # on demand for A: fetched chunk by chunk from the hub, in order into the pipe
        data = os.urandom(5 * 1024 * 1024 + 123)
        self.put("/od/big.bin", data)
        wait_for(lambda: self.roost("host", "status", "--dir", self.A.dir,
                                    "--json").returncode == 0, 30, "A status")
        sh = "%s host get --dir %s /od/big.bin - | cat > %s" % (
            harness.ROOST, self.A.dir, os.path.join(self.tmp, "piped.bin"))
        p = subprocess.run(["bash", "-o", "pipefail", "-c", sh], env=self.hub.env(),
                           capture_output=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(os.path.join(self.tmp, "piped.bin"), "rb") as f:
            got = f.read()
        self.assertEqual(len(got), len(data))
        self.assertEqual(hashlib.sha256(got).hexdigest(), hashlib.sha256(data).hexdigest())
        self.assertFalse(os.path.exists(self.A.path("/od/big.bin")), "written to the folder")
        # a pinned file (A's local copy) through a pipe too
        local = b"pinned bytes\n" * 1000
        self.put("/a/local.txt", local)
        def on_a():
            with open(self.A.path("/a/local.txt"), "rb") as f:
                return f.read() == local
        wait_for(on_a, 60, "/a/local.txt on A", [self.A])
        p = subprocess.run([harness.ROOST, "host", "get", "--dir", self.A.dir, "/a/local.txt",
                            "-"], env=self.hub.env(), capture_output=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, local)

    def test_host_get_of_a_missing_file_to_a_pipe_fails_clearly(self):
        p = subprocess.run([harness.ROOST, "host", "get", "--dir", self.A.dir, "/no/such.bin",
                            "-"], env=self.hub.env(), capture_output=True, timeout=120)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, b"")
        self.assertIn(b"/no/such.bin: no such file in the workspace", p.stderr)

    def test_url_served_by_a_host_shows_its_relay_link_and_the_ca_it_needs(self):
        wait_for(lambda: self.public_url("A"), 30, "A's public URL", [self.A])
        data = b"pinned on A, public through the relay\n" * 100
        self.put("/a/doc.txt", data)

        def from_a():
            st, body, _, _ = self.api("POST", "/urls", {"path": "/a/doc.txt"})
            return st == 201 and body.get("via") == "host"
        wait_for(from_a, 60, "A holding /a/doc.txt", [self.A])
        p = self.roost("url", "/a/doc.txt")
        self.assertEqual(p.returncode, 0, p.err)
        self.assertRegex(p.out, r"^%s/c/\S+\n$" % re.escape(self.A.url), "stdout: the link alone")
        m = re.fullmatch(r"\(public link, through the host's relay: (https://\S+)\n"
                         r" if the relay's certificate is self-signed, pass its CA: "
                         r"curl --cacert CA\.pem\)\n", p.err)
        self.assertTrue(m, p.err)
        relay_link = m.group(1)
        self.assertTrue(relay_link.startswith(self.public_url("A")), relay_link)
        # both true: without the CA curl refuses the relay's certificate, with it
        # the link downloads the file
        c = subprocess.run(["curl", "-sS", relay_link], capture_output=True, timeout=60)
        self.assertNotEqual(c.returncode, 0, "a self-signed relay was trusted without its CA")
        c = subprocess.run(["curl", "-sS", "--fail", "--cacert", self.relay.ca, relay_link],
                           capture_output=True, timeout=60)
        self.assertEqual(c.returncode, 0, c.stderr)
        self.assertEqual(c.stdout, data)
        for flag in ("--json", "-q"):  # scripts get no hint
            p = self.roost("url", "/a/doc.txt", flag)
            self.assertEqual(p.returncode, 0, p.err)
            self.assertEqual(p.err, "")

    def test_upload_url_through_a_relay_says_it_may_need_a_ca(self):
        # A keeps /a pinned: a write URL for it goes through A's relay
        wait_for(lambda: self.public_url("A"), 30, "A's public URL", [self.A])

        def via_relay():
            st, body, _, _ = self.api("POST", "/urls", {"path": "/a/up.txt",
                                                        "scope": "write"})
            return st == 201 and body.get("via") == "relay"
        wait_for(via_relay, 60, "a relay upload URL", [self.A])
        p = self.roost("url", "/a/up.txt", "--write")
        self.assertEqual(p.returncode, 0, p.err)
        self.assertTrue(p.out.startswith(self.public_url("A")), p.out)
        self.assertEqual(p.err, "(this link is served through the host's relay; if the "
                         "relay's certificate is self-signed, pass its CA: curl --cacert "
                         "CA.pem)\n")


class CompletionTest(unittest.TestCase):
    """scripts/roost-completion.bash in a non-interactive bash."""

    SCRIPT = os.path.join(REPO, "scripts", "roost-completion.bash")

    def complete(self, *words):
        """COMPREPLY for the command line words, the last one being completed."""
        quoted = " ".join("'%s'" % w for w in words)
        sh = ('source "%s" && COMP_WORDS=(%s) && COMP_CWORD=%d && _roost && '
              'printf "%%s\\n" "${COMPREPLY[@]}"' % (self.SCRIPT, quoted, len(words) - 1))
        p = subprocess.run(["bash", "-c", sh], capture_output=True, text=True, timeout=30,
                           cwd=tempfile.gettempdir())
        self.assertEqual(p.returncode, 0, p.stderr)
        return [l for l in p.stdout.splitlines() if l]

    def test_sourcing_registers_the_completion(self):
        p = subprocess.run(["bash", "-c", 'source "%s" && complete -p roost' % self.SCRIPT],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), "complete -o default -F _roost roost")

    def test_completes_subcommands(self):
        self.assertEqual(self.complete("roost", "pu"), ["put"])
        self.assertEqual(sorted(self.complete("roost", "tr")), ["trash"])
        self.assertEqual(self.complete("roost", "trash", "re"), ["restore"])
        self.assertIn("get", self.complete("roost", "host", ""))

    def test_completes_options_of_the_command(self):
        self.assertEqual(sorted(self.complete("roost", "get", "--f")), ["--force"])
        self.assertEqual(sorted(self.complete("roost", "host", "run", "--relay")),
                         ["--relay", "--relay-ca"])
        self.assertIn("--all", self.complete("roost", "trash", "--"))

    def test_every_command_in_help_is_completed(self):
        help_text = subprocess.run([harness.ROOST, "help"], capture_output=True,
                                   text=True).stdout
        cmds = set(re.findall(r"^\s+roost ([a-z]+)", help_text, re.M))
        self.assertGreater(len(cmds), 20)
        offered = set(self.complete("roost", ""))
        self.assertEqual(cmds - offered, set(), "commands roost help lists but bash misses")


if __name__ == "__main__":
    harness.main()
