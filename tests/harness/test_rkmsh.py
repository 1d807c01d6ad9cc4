# SPDX-License-Identifier: GPL-2.0
"""Unit tests of tests/lib/rkm.sh's merging of test modules' KTAP
(rkm_module_results, rkm_ktap_merge) and of rkm_wait_for, run by busybox sh
as in the guest, with modprobe and the kernel log stubbed."""

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../../scripts"))
import ktap  # noqa: E402

RKM_SH = os.path.join(HERE, "../lib/rkm.sh")
SHELL = shutil.which("busybox") and [shutil.which("busybox"), "sh"] or ["sh"]


class RkmShTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="rkmsh-")
        for d in ("lib", "kselftest", "suite"):
            os.makedirs(os.path.join(self.dir, d))
        shutil.copy(RKM_SH, os.path.join(self.dir, "lib"))
        open(os.path.join(self.dir, "kselftest/ktap_helpers.sh"), "w").close()

    def tearDown(self):
        shutil.rmtree(self.dir)

    def run_sh(self, body, modules=None):
        """Run body after sourcing rkm.sh; modules maps a module name to the
        KTAP lines it prints (None: modprobe fails without output)."""
        stubs = []
        for name, lines in (modules or {}).items():
            ktap_file = os.path.join(self.dir, f"{name}.ktap")
            with open(ktap_file, "w") as f:
                f.write("".join(line + "\n" for line in (lines or [])))
            stubs.append(f"{name}) cat {ktap_file} >\"$2\"; "
                         f"return {1 if lines is None else 0} ;;")
        script = os.path.join(self.dir, "suite/t.sh")
        with open(script, "w") as f:
            f.write(textwrap.dedent("""\
                . "$(dirname "$0")/../lib/rkm.sh"
                rkm_module_load() {
                    case "$1" in
                    %s
                    *) : >"$2"; return 1 ;;
                    esac
                }
                rmmod() { [ "$1" != stuck ]; }
                """) % "\n".join(stubs) + body + "\n")
        return subprocess.run(SHELL + [script], capture_output=True, text=True, timeout=30)

    def merge(self, modules):
        calls = " ".join(f"rkm_module_results {m};" for m in modules)
        return self.run_sh(f"{{ {calls} }} | rkm_ktap_merge", modules)

    def test_merge_plans_the_sum(self):
        r = self.merge({"a": ["KTAP version 1", "1..2", "ok 1 x", "ok 2 y"],
                        "b": ["KTAP version 1", "1..1", "ok 1 z", "# Totals: pass:1"]})
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("1..3", r.stdout.splitlines())
        res = ktap.parse(r.stdout)
        self.assertEqual((res.passed, res.failed, res.problems), (3, 0, []))

    def test_module_that_stops_early_fails(self):
        r = self.merge({"a": ["KTAP version 1", "1..5", "ok 1 x", "ok 2 y"],
                        "b": ["KTAP version 1", "1..1", "ok 1 z"]})
        self.assertNotEqual(r.returncode, 0)
        res = ktap.parse(r.stdout)
        self.assertEqual(res.passed, 3)
        self.assertGreaterEqual(res.failed, 1)
        self.assertIn("planned 6 tests, 3 reported", res.problems[0])

    def test_module_without_output_fails(self):
        r = self.merge({"a": ["KTAP version 1", "1..1", "ok 1 x"], "b": None})
        self.assertNotEqual(r.returncode, 0)
        res = ktap.parse(r.stdout)
        self.assertEqual((res.passed, res.failed, res.problems), (1, 2, []))
        self.assertIn("b: printed no KTAP plan", r.stdout)
        self.assertIn("b: modprobe failed", r.stdout)

    def test_module_without_plan_fails(self):
        r = self.merge({"a": ["KTAP version 1", "ok 1 x", "ok 2 y"]})
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("a: printed no KTAP plan", r.stdout)
        self.assertGreaterEqual(ktap.parse(r.stdout).failed, 1)

    def test_failed_unload_fails(self):
        r = self.merge({"stuck": ["KTAP version 1", "1..1", "ok 1 x"]})
        self.assertNotEqual(r.returncode, 0)
        res = ktap.parse(r.stdout)
        self.assertEqual((res.passed, res.failed, res.problems), (1, 1, []))

    def test_failed_case_fails(self):
        r = self.merge({"a": ["KTAP version 1", "1..2", "ok 1 x", "not ok 2 y # bad"]})
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(ktap.parse(r.stdout).failed, 1)

    def test_edges_style_renaming_keeps_the_plan(self):
        # tests/zpool/edges.sh prefixes each result with the driver's name.
        r = self.run_sh("rkm_module_results a | sed -E 's/^((not )?ok [0-9]+ )/\\1drv: /' "
                        "| rkm_ktap_merge",
                        {"a": ["KTAP version 1", "1..2", "ok 1 x", "ok 2 y"]})
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("ok 2 drv: y", r.stdout)

    def test_wait_for(self):
        flag = os.path.join(self.dir, "flag")
        r = self.run_sh(f"(sleep 0.3; touch {flag}) & rkm_wait_for 5 'the flag' test -e {flag}")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = self.run_sh("rkm_wait_for 0.3 'nothing' false")
        self.assertEqual(r.returncode, 1)
        self.assertIn("# timed out after 0.3 s waiting for nothing", r.stdout)


if __name__ == "__main__":
    unittest.main()
