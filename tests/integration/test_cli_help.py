"""--help on every command (issue 17): for each command `roost help` lists,
`roost CMD --help` prints its usage on stdout and exits 0 without doing
anything; an unknown option names the option, prints the command's usage
and exits 2. No hub is needed: none of this may reach one."""
import os
import re
import subprocess
import tempfile
import unittest

import harness


def run(*args, cwd=None):
    env = dict(os.environ)
    env.pop("ROOST_PASSWORD", None)
    env["XDG_CONFIG_HOME"] = os.path.join(cwd or tempfile.gettempdir(), "no-config")
    p = subprocess.run([harness.ROOST, *args], capture_output=True, env=env, cwd=cwd,
                       stdin=subprocess.DEVNULL, timeout=60)
    p.out, p.err = p.stdout.decode(), p.stderr.decode()
    return p


def listed_commands():
    """Every "roost CMD" (and "roost CMD SUB" where roost help lists subcommands
    on lines of their own: admin, host) in roost help's text."""
    text = run("help").out
    cmds = []
    for line in text.splitlines():
        m = re.match(r"  roost ([a-z0-9-]+)(?: ([a-z-]+))?", line)
        if not m:
            continue
        cmd = m.group(1)
        if cmd in ("admin", "host") and m.group(2):
            cmd += " " + m.group(2)
        if cmd not in cmds:
            cmds.append(cmd)
    return cmds


class CliHelpTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="roost-help-")
        cls.cmds = listed_commands()

    def test_roost_help_lists_the_commands(self):
        for cmd in ("init", "serve", "demo", "relay", "admin gc", "admin reset-password", "login",
                    "put", "get", "passwd", "2fa", "account", "host run", "hosts", "policy",
                    "shares"):
            self.assertIn(cmd, self.cmds)

    def test_help_on_every_command_prints_its_usage_and_exits_0(self):
        for cmd in self.cmds:
            with self.subTest(cmd=cmd):
                p = run(*cmd.split(), "--help", cwd=self.tmp)
                self.assertEqual(p.returncode, 0, p.err)
                self.assertTrue(p.out.startswith("usage:\n"), p.out)
                self.assertIn("roost " + cmd, p.out)
                self.assertEqual(p.err, "")
        # nothing was done: no demo data, no hub made, nothing saved
        self.assertEqual(sorted(os.listdir(self.tmp)), [])

    def test_an_unknown_option_is_named_with_the_usage_and_exits_2(self):
        for cmd in self.cmds:
            with self.subTest(cmd=cmd):
                p = run(*cmd.split(), "--no-such-option", cwd=self.tmp)
                self.assertEqual(p.returncode, 2, p.err)
                self.assertIn("--no-such-option", p.err)
                self.assertIn("usage:", p.err)
                self.assertIn("roost " + cmd.split()[0], p.err)
                self.assertEqual(p.out, "")
        self.assertEqual(sorted(os.listdir(self.tmp)), [])

    def test_h_is_help_and_roost_help_cmd_shows_one_command(self):
        p = run("serve", "-h")
        self.assertEqual(p.returncode, 0)
        self.assertIn("roost serve --data DIR", p.out)
        p = run("help", "admin", "gc")
        self.assertEqual(p.returncode, 0)
        self.assertIn("roost admin gc", p.out)
        self.assertNotIn("roost admin scrub", p.out)
        p = run("help", "nonsense")
        self.assertEqual(p.returncode, 2)
        self.assertIn("no command 'nonsense'", p.err)
        p = run("admin", "nonsense")
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown subcommand nonsense", p.err)
        self.assertIn("roost admin gc", p.err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
