#!/usr/bin/python3
"""The systemd unit (tools/systemd/dnsproxyd.service.in, configured for this tree's binary):
systemd-analyze verify accepts it without a word, and it keeps the deployment promises of
docs/deployment.md (notify + watchdog, least privilege, hardening)."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

UNIT = sys.argv.pop(1) if len(sys.argv) > 1 else ""


def verify(path):
    return subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True)


def settings(path):
    values = {}
    for line in open(path):
        line = line.strip()
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, value = line.split("=", 1)
            values.setdefault(key, []).append(value)
    return values


class SystemdUnitTest(unittest.TestCase):
    def test_systemd_analyze_verify_accepts_it_silently(self):
        result = verify(UNIT)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout + result.stderr, "")

    def test_the_check_sees_a_mistake(self):
        with tempfile.TemporaryDirectory() as directory:
            broken = os.path.join(directory, "dnsproxyd.service")
            shutil.copy(UNIT, broken)
            with open(broken, "a") as unit:
                unit.write("[Service]\nWatchdogSecs=5s\n")
            self.assertIn("WatchdogSecs", verify(broken).stderr)

    def test_notify_watchdog_and_restart(self):
        unit = settings(UNIT)
        self.assertEqual(unit["Type"], ["notify"])
        self.assertTrue(unit["WatchdogSec"][0].endswith("s"))
        self.assertEqual(unit["Restart"], ["on-failure"])
        self.assertIn("--config", unit["ExecStart"][0])

    def test_least_privilege_and_hardening(self):
        unit = settings(UNIT)
        caps = {"CAP_BPF", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_SYS_ADMIN"}
        self.assertEqual(set(unit["CapabilityBoundingSet"][0].split()), caps)
        self.assertEqual(set(unit["AmbientCapabilities"][0].split()), caps)
        self.assertEqual(unit["NoNewPrivileges"], ["yes"])
        self.assertEqual(unit["ProtectSystem"], ["strict"])
        families = set(unit["RestrictAddressFamilies"][0].split())
        self.assertTrue({"AF_XDP", "AF_UNIX", "AF_NETLINK"} <= families)
        self.assertIn("LimitMEMLOCK", unit)
        self.assertIn("CPUAffinity", unit)


if __name__ == "__main__":
    unittest.main()
