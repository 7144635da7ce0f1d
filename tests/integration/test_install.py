"""make install and the systemd units (issue 17, docs/operations.md).

- `make install DESTDIR=STAGE PREFIX=/usr` puts the binary, the completion, the
  docs, the units, the sysusers entry and the option files where they belong,
  and every path a unit names is one that was installed.
- The units are sandboxed (a dedicated user, ProtectSystem=strict, …) and
  `systemd-analyze verify` finds nothing wrong with them (verify only: nothing
  is started).
- A second install keeps option files an administrator has edited.
- The installed binary serves the dashboard from PREFIX/share/roost/web.
"""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import harness
from harness import Hub

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.dirname(os.path.abspath(harness.ROOST))
UNITS = ("roost-hub.service", "roost-relay.service", "roost-host@.service")
SANDBOX = ("User=roost", "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
           "CapabilityBoundingSet=", "SystemCallFilter=@system-service",
           "Restart=on-failure")


class InstallTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="roost-it-")
        cls.stage = os.path.join(cls.tmp, "stage")
        cls.install_log = cls.make_install()

    @classmethod
    def tearDownClass(cls):
        if not os.environ.get("ROOST_KEEP_TMP"):
            shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def make_install(cls):
        p = subprocess.run(["make", "-s", "-C", SRC, "install", "BUILD=" + BUILD,
                            "DESTDIR=" + cls.stage, "PREFIX=/usr", "JOBS=1"],
                           capture_output=True, text=True, timeout=900)
        if p.returncode != 0:
            raise AssertionError("make install failed: " + p.stdout[-2000:] + p.stderr[-2000:])
        return p.stdout

    def staged(self, path):
        return os.path.join(self.stage, path.lstrip("/"))

    def unit(self, name):
        with open(self.staged("/usr/lib/systemd/system/" + name)) as f:
            return f.read()

    def test_every_file_is_installed_where_it_belongs(self):
        for path in ("/usr/bin/roost", "/usr/share/bash-completion/completions/roost",
                     "/usr/share/doc/roost/operations.md", "/usr/share/doc/roost/README.md",
                     "/usr/lib/sysusers.d/roost.conf", "/etc/roost/hub.env",
                     "/etc/roost/relay.env", "/etc/roost/host.env",
                     *("/usr/lib/systemd/system/" + u for u in UNITS)):
            self.assertTrue(os.path.isfile(self.staged(path)), path + " was not installed")
        self.assertTrue(os.access(self.staged("/usr/bin/roost"), os.X_OK))
        p = subprocess.run([self.staged("/usr/bin/roost"), "help"], capture_output=True,
                           text=True)
        self.assertIn("roost serve", p.stdout)

    def test_every_path_a_unit_names_was_installed(self):
        for name in UNITS:
            text = self.unit(name)
            self.assertNotRegex(text, r"@[A-Z]+@", name + " has a placeholder left")
            exe = re.search(r"^ExecStart=(\S+)", text, re.M).group(1)
            self.assertEqual(exe, "/usr/bin/roost")
            for env in re.findall(r"^EnvironmentFile=(-?)(\S+)", text, re.M):
                if env[0] != "-" or "%i" not in env[1]:
                    self.assertTrue(os.path.isfile(self.staged(env[1])),
                                    "%s names %s, not installed" % (name, env[1]))
            for doc in re.findall(r"file://(\S+)", text):
                self.assertTrue(os.path.isfile(self.staged(doc)), doc)

    def test_units_are_sandboxed_and_run_as_the_sysusers_user(self):
        with open(self.staged("/usr/lib/sysusers.d/roost.conf")) as f:
            self.assertRegex(f.read(), r"(?m)^u roost ")
        for name in UNITS:
            lines = self.unit(name).splitlines()
            for want in SANDBOX:
                self.assertIn(want, lines, "%s lacks %s" % (name, want))
        self.assertIn("ReadWritePaths=/var/lib/roost", self.unit("roost-hub.service"))
        self.assertIn("ProtectHome=yes", self.unit("roost-hub.service"))
        self.assertIn("ReadWritePaths=/%I", self.unit("roost-host@.service"))
        # serve's options come from the environment file
        with open(self.staged("/etc/roost/hub.env")) as f:
            env = f.read()
        self.assertRegex(env, r"(?m)^ROOST_DATA=/var/lib/roost$")
        self.assertIn("$ROOST_SERVE_OPTS", self.unit("roost-hub.service"))

    def test_systemd_analyze_verify_passes(self):
        self.assertTrue(shutil.which("systemd-analyze"),
                        "systemd-analyze is not installed (./scripts/install-deps adds it)")
        root = os.path.join(self.tmp, "verify-root")
        shutil.copytree(self.stage, root)
        # verify resolves the units' dependencies (multi-user.target, …) in the root
        sysdir = os.path.join(root, "usr/lib/systemd/system")
        for d in ("/lib/systemd/system", "/usr/lib/systemd/system"):
            if os.path.isdir(d):
                for f in os.listdir(d):
                    if f.endswith((".target", ".slice")) and not os.path.exists(
                            os.path.join(sysdir, f)):
                        shutil.copy(os.path.join(d, f), sysdir)
        os.symlink("roost-host@.service", os.path.join(sysdir,
                                                       "roost-host@srv-roost-team.service"))
        units = [os.path.join(sysdir, u) for u in
                 ("roost-hub.service", "roost-relay.service",
                  "roost-host@srv-roost-team.service")]
        p = subprocess.run(["systemd-analyze", "verify", "--root=" + root, *units],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr.strip(), "", "systemd-analyze verify complained")
        # and it does complain about what it should: a unit whose binary is missing
        os.unlink(os.path.join(root, "usr/bin/roost"))
        p = subprocess.run(["systemd-analyze", "verify", "--root=" + root, units[0]],
                           capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("/usr/bin/roost", p.stderr)

    def test_a_second_install_keeps_edited_option_files(self):
        path = self.staged("/etc/roost/hub.env")
        with open(path, "a") as f:
            f.write("# edited by the administrator\n")
        out = self.make_install()
        with open(path) as f:
            self.assertIn("# edited by the administrator", f.read())
        self.assertIn("Kept: ", out)

    def test_the_installed_binary_serves_the_installed_dashboard(self):
        web = self.staged("/usr/share/roost/web")
        index = os.path.join(web, "index.html")
        if os.path.isfile(os.path.join(BUILD, "web", "index.html")):
            self.assertTrue(os.path.isfile(index), "the built dashboard was not installed")
            with open(index, "rb") as f:
                want = f.read()
        else:  # a build without the dashboard (-DROOST_WEB=OFF) installs none: stand one in
            os.makedirs(web, exist_ok=True)
            want = b"<!doctype html><title>installed dashboard</title>\n"
            with open(index, "wb") as f:
                f.write(want)
        hub = Hub(os.path.join(self.tmp, "hub"))
        saved, harness.ROOST = harness.ROOST, self.staged("/usr/bin/roost")
        try:
            hub.start()
            st, _, payload, _ = hub.request("GET", "/", port=hub.dash_port)
            self.assertEqual(st, 200)
            self.assertEqual(payload, want)
        finally:
            harness.ROOST = saved
            hub.stop()
        with open(os.path.join(hub.root, "hub.log")) as f:
            self.assertIn("assets %s/usr/bin/../share/roost/web" % self.stage, f.read())


if __name__ == "__main__":
    harness.main()
