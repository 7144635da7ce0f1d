"""`make demo` puts `roost` on the PATH (scripts/put-on-path): a link in a bin
folder to the built binary, never over a file that is not its own, and the
command to type when it cannot write there."""
import os
import shutil
import subprocess
import tempfile
import unittest

import harness

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts",
                      "put-on-path")


def run(*args):
    if len(args) == 2:  # never the machine's own completions folder
        args = (*args, os.path.join(os.path.dirname(args[1]), "completions"))
    return subprocess.run(["sh", SCRIPT, *args], capture_output=True, text=True, timeout=60)


class PutOnPathTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="roost-path-")
        self.bin = os.path.join(self.tmp, "bin")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_a_link_that_runs_the_built_binary(self):
        p = run(harness.ROOST, self.bin)
        self.assertEqual(p.returncode, 0, p.stderr)
        link = os.path.join(self.bin, "roost")
        self.assertEqual(os.readlink(link), os.path.realpath(harness.ROOST))
        self.assertIn(link, p.stdout)
        v = subprocess.run([link, "help"], capture_output=True, text=True, timeout=60)
        self.assertEqual(v.returncode, 0, v.stderr)
        self.assertIn("roost", v.stdout + v.stderr)
        # again: the same link, no error
        self.assertEqual(run(harness.ROOST, self.bin).returncode, 0)
        self.assertEqual(os.readlink(link), os.path.realpath(harness.ROOST))

    def test_bash_completes_roost_commands_from_the_linked_script(self):
        comp = os.path.join(self.tmp, "completions")
        p = run(harness.ROOST, self.bin, comp)
        self.assertEqual(p.returncode, 0, p.stderr)
        link = os.path.join(comp, "roost")
        self.assertEqual(os.path.realpath(link), os.path.realpath(
            os.path.join(os.path.dirname(SCRIPT), "roost-completion.bash")))
        self.assertIn("completes roost commands", p.stdout)
        # what bash does on <TAB> after "roost tr": the words offered
        b = subprocess.run(["bash", "-c", 'source "$1"; COMP_WORDS=(roost tr); COMP_CWORD=1; '
                            '"$(complete -p roost | sed -E "s/.*-F ([^ ]+).*/\\1/")"; '
                            'echo "${COMPREPLY[@]}"', "x", link],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(b.returncode, 0, b.stderr)
        self.assertEqual(b.stdout.split(), ["trash"])

    def test_someone_elses_roost_is_left_alone(self):
        os.makedirs(self.bin)
        mine = os.path.join(self.bin, "roost")
        with open(mine, "w") as f:
            f.write("#!/bin/sh\necho theirs\n")
        p = run(harness.ROOST, self.bin)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("not ours", p.stdout)
        self.assertIn("export PATH=", p.stdout)
        with open(mine) as f:
            self.assertIn("theirs", f.read())

    def test_an_unwritable_folder_gets_the_command_to_type(self):
        # a folder that cannot be made, even by root: its parent is a file
        open(os.path.join(self.tmp, "file"), "w").close()
        where = os.path.join(self.tmp, "file", "bin")
        p = run(harness.ROOST, where)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("cannot write", p.stdout)
        self.assertIn("export PATH=\"%s:" % os.path.dirname(os.path.realpath(harness.ROOST)),
                      p.stdout)

    def test_no_binary_is_an_error(self):
        p = run(os.path.join(self.tmp, "nothing"), self.bin)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("not a built binary", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.bin, "roost")))


if __name__ == "__main__":
    unittest.main(verbosity=2)
