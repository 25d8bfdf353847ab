#!/usr/bin/python3
"""tools/check-commands finds commands in sources, exec logs and wrappers, and fails naming the
command and its missing package; the real tree passes with the real package list."""
import os
import subprocess
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHECK = os.path.join(ROOT, "tools", "check-commands")


def check(*args):
    return subprocess.run([CHECK, *args], capture_output=True, text=True)


class CheckCommandsTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.log = os.path.join(self.dir.name, "exec.log")

    def tearDown(self):
        self.dir.cleanup()

    def write_log(self, *argvs):
        with open(self.log, "w") as log:
            for argv in argvs:
                log.write("\t".join(argv) + "\n")

    def test_a_command_nobody_installed_is_named(self):
        self.write_log(["dnsproxy-no-such-command", "-x"])
        result = check("--no-static", "--packages", "coreutils", "--exec-log", self.log)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("dnsproxy-no-such-command is not installed", result.stderr)

    def test_a_command_from_an_unlisted_package_is_named_with_the_package(self):
        self.write_log(["taskset", "-c", "0", "ping", "-c", "1", "192.0.2.1"])
        result = check("--no-static", "--packages", "coreutils", "--exec-log", self.log)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("ping (/usr/bin/ping) comes from package iputils-ping", result.stderr)
        self.assertNotIn("taskset", result.stderr)  # util-linux is Essential

    def test_listed_packages_and_their_dependencies_pass(self):
        self.write_log(["taskset", "-c", "0", "ping", "-c", "1", "192.0.2.1"], ["sleep", "1"])
        result = check("--no-static", "--packages", "iputils-ping", "--exec-log", self.log)
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_argv_lists_in_the_sources_are_found(self):
        source_dir = os.path.join(self.dir.name, "test")
        os.makedirs(source_dir)
        with open(os.path.join(source_dir, "ping_test.cpp"), "w") as source:
            source.write('auto out = ns.run(\n    {"ping", "-c", "1", "192.0.2.1"});\n'
                         'const char* names[] = {"rx", "tx"};\n')
        result = check("--root", self.dir.name, "--packages", "coreutils")
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("used at test/ping_test.cpp:2", result.stderr)
        self.assertNotIn("rx", result.stderr.replace("iputils-ping", ""))

    def test_the_project_passes_with_the_packages_tools_run_installs(self):
        packages = subprocess.run([os.path.join(ROOT, "tools", "run"), "packages"],
                                  capture_output=True, text=True, check=True).stdout.split()
        self.assertIn("iputils-ping", packages)
        result = check("--root", ROOT, "--packages", " ".join(packages))
        self.assertEqual(result.returncode, 0, result.stderr)


if __name__ == "__main__":
    unittest.main()
