# SPDX-License-Identifier: GPL-2.0
"""Unit tests of scripts/kreport.py: which kernel log lines fail a run."""

import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../scripts"))
import kreport  # noqa: E402


def kinds(text):
    with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as f:
        f.write(text)
    try:
        return [(k, line) for k, _, line, _ in kreport.find_splats([f.name])]
    finally:
        os.unlink(f.name)


class KreportTest(unittest.TestCase):
    def test_clean_log(self):
        self.assertEqual(kinds("[    1.000000] virtio_blk virtio1: [vda] 4194304 512-byte\n"), [])

    def test_reports_are_found(self):
        for line, kind in [
            ("WARNING: CPU: 0 PID: 1 at mm/x.c:1 f+0x1/0x2", "WARNING"),
            ("BUG: KASAN: slab-use-after-free in f+0x1/0x2", "BUG"),
            ("kernel BUG at rust/helpers/bug.c:7!", "BUG"),
            ("Oops: invalid opcode: 0000 [#1] SMP KASAN", "oops"),
            ("INFO: task kworker/0:1:20 blocked for more than 60 seconds.", "hung task"),
            ("WARNING: possible circular locking dependency detected", "WARNING"),
            ("watchdog: BUG: soft lockup - CPU#0 stuck for 130s!", "BUG"),
            ("list_del corruption. prev->next should be ffff", "list corruption"),
        ]:
            self.assertEqual(kinds(f"[   12.345678] {line}\n"), [(kind, 1)], line)

    def test_test_output_is_not_a_report(self):
        # Lines without the printk time stamp are the tests' own.
        self.assertEqual(kinds("# WARNING: this test prints the word BUG: fine\n"), [])

    def test_expected_warn_is_excused(self):
        log = ("[ 1.0] rkm-expect: begin zbud_rs: bad handle\n"
               "[ 1.1] zbud_rs: bad handle 0x1234 in free\n"
               "[ 1.2] WARNING: CPU: 0 PID: 5 at rust/zbud_rs/x.rs:1 f\n"
               "[ 1.3] Call Trace:\n"
               "[ 1.4] rkm-expect: end\n")
        self.assertEqual(kinds(log), [])

    def test_expectation_must_match(self):
        log = ("[ 1.0] rkm-expect: begin zbud_rs: bad handle\n"
               "[ 1.2] WARNING: CPU: 0 PID: 5 at mm/other.c:1 f\n"
               "[ 1.4] rkm-expect: end\n")
        self.assertEqual(kinds(log), [("WARNING", 2)])

    def test_only_warns_are_excused(self):
        log = ("[ 1.0] rkm-expect: begin zbud_rs\n"
               "[ 1.1] zbud_rs: bad handle\n"
               "[ 1.2] WARNING: possible circular locking dependency detected\n"
               "[ 1.3] BUG: KASAN: use-after-free in f\n"
               "[ 1.4] rkm-expect: end\n")
        self.assertEqual(kinds(log), [("WARNING", 3), ("BUG", 4)])

    def test_unclosed_window_excuses_nothing(self):
        log = ("[ 1.0] rkm-expect: begin zbud_rs\n"
               "[ 1.1] zbud_rs: bad handle\n"
               "[ 1.2] WARNING: CPU: 0 PID: 5 at rust/x.rs:1 f\n")
        self.assertEqual(kinds(log), [("WARNING", 3)])


if __name__ == "__main__":
    unittest.main()
