# SPDX-License-Identifier: GPL-2.0
"""Unit tests of scripts/ktap.py, the harness's KTAP parser (host-side)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../scripts"))
import ktap  # noqa: E402


def doc(*lines):
    return "\n".join(lines) + "\n"


class KtapTest(unittest.TestCase):
    def counts(self, text):
        r = ktap.parse(text)
        return (r.passed, r.failed, r.skipped)

    def test_leaf_cases_are_counted(self):
        text = doc("TAP version 13", "1..1", "# selftests: s: a.sh", "# TAP version 13",
                   "# 1..3", "# ok 1 one", "# not ok 2 two", "# ok 3 three # SKIP no disk",
                   "# # Totals: pass:1 fail:1 xfail:0 xpass:0 skip:1 error:0",
                   "not ok 1 selftests: s: a.sh # exit=1")
        self.assertEqual(self.counts(text), (1, 1, 1))
        names = [c.name for c in ktap.parse(text).cases]
        self.assertIn("selftests: s: a.sh: two", names)

    def test_program_without_subtests_counts_as_one(self):
        text = doc("TAP version 13", "1..2", "ok 1 selftests: s: a", "not ok 2 selftests: s: b")
        self.assertEqual(self.counts(text), (1, 1, 0))

    def test_timeout_after_passing_cases_is_a_failure(self):
        text = doc("TAP version 13", "1..1", "# TAP version 13", "# 1..2", "# ok 1 one",
                   "#", "not ok 1 selftests: s: a.sh # TIMEOUT 45 seconds")
        r = ktap.parse(text)
        # One case passed; the second never reported, because of the timeout.
        self.assertEqual((r.passed, r.failed), (1, 1))
        self.assertTrue(r.problems)
        self.assertIn("TIMEOUT", [c for c in r.cases if c.status == "fail"][0].directive)

    def test_skipped_program_is_a_skip_not_a_pass(self):
        text = doc("TAP version 13", "1..1", "ok 1 selftests: s: a.sh # SKIP")
        self.assertEqual(self.counts(text), (0, 0, 1))

    def test_missing_results_fail(self):
        text = doc("TAP version 13", "1..3", "ok 1 selftests: s: a")
        r = ktap.parse(text)
        self.assertEqual((r.passed, r.failed), (1, 1))
        self.assertIn("planned 3", r.problems[0])

    def test_several_documents(self):
        text = doc("TAP version 13", "1..1", "ok 1 a", "TAP version 13", "1..1", "ok 1 b")
        self.assertEqual(self.counts(text), (2, 0, 0))

    def test_nothing_is_nothing(self):
        self.assertEqual(self.counts(""), (0, 0, 0))

    def test_bail_out_fails(self):
        text = doc("TAP version 13", "1..1", "# TAP version 13", "# 1..2", "# ok 1 one",
                   "# Bail out! no zswap", "not ok 1 selftests: s: a.sh # exit=1")
        r = ktap.parse(text)
        self.assertGreaterEqual(r.failed, 1)
        self.assertTrue(any("bail out" in p for p in r.problems))

    def test_carriage_returns_from_serial(self):
        text = "TAP version 13\r\n1..1\r\nok 1 a\r\n"
        self.assertEqual(self.counts(text), (1, 0, 0))


if __name__ == "__main__":
    unittest.main()
