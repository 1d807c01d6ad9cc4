# SPDX-License-Identifier: GPL-2.0
"""Unit tests of scripts/ktap.py, the harness's KTAP parser (host-side)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../scripts"))
import ktap  # noqa: E402


def doc(*lines):
    return "\n".join(lines) + "\n"


def program(suite, name, inner, result="ok 1", top_plan="1..1"):
    """A runner document with one program whose own KTAP is inner."""
    return doc("TAP version 13", top_plan, "# timeout set to 45",
               f"# selftests: {suite}: {name}", *[f"# {line}" for line in inner],
               f"{result} selftests: {suite}: {name}")


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
        r = ktap.parse(text)
        self.assertIn("selftests: s: a.sh: two", [c.name for c in r.cases])
        self.assertEqual(r.problems, [])
        self.assertEqual([(p.suite, p.name, p.status, p.failed) for p in r.programs],
                         [("s", "a.sh", "fail", 1)])

    def test_clean_program(self):
        r = ktap.parse(program("s", "a.sh", ["TAP version 13", "1..2", "ok 1 one", "ok 2 two"]))
        self.assertEqual((r.passed, r.failed, r.problems), (2, 0, []))

    def test_program_without_subtests_and_plan_fails(self):
        # A program the runner ran must print its plan.
        text = doc("TAP version 13", "1..2", "ok 1 selftests: s: a", "not ok 2 selftests: s: b")
        r = ktap.parse(text)
        self.assertEqual((r.passed, r.failed), (0, 2))
        self.assertIn("selftests: s: a: no KTAP plan (the program printed no 1..N)", r.problems)

    def test_other_documents_may_have_leaf_results(self):
        self.assertEqual(self.counts(doc("TAP version 13", "1..2", "ok 1 a", "not ok 2 b")),
                         (1, 1, 0))

    def test_missing_plan_fails(self):
        r = ktap.parse(program("s", "a.sh", ["TAP version 13", "ok 1 one", "ok 2 two"]))
        self.assertEqual((r.passed, r.failed), (2, 1))
        self.assertIn("selftests: s: a.sh: 2 result(s) without a plan", r.problems)

    def test_empty_plan_without_skip_fails(self):
        r = ktap.parse(program("s", "a.sh", ["TAP version 13", "1..0"]))
        self.assertEqual(r.failed, 1)
        self.assertIn("plan 1..0 without # SKIP", r.problems[0])

    def test_skipped_program_is_a_skip_not_a_pass(self):
        text = doc("TAP version 13", "1..1", "ok 1 selftests: s: a.sh # SKIP")
        r = ktap.parse(text)
        self.assertEqual(self.counts(text), (0, 0, 1))
        self.assertTrue(r.programs[0].skipped_whole)

    def test_empty_plan_with_skip_is_a_whole_skip(self):
        r = ktap.parse(program("s", "a.sh", ["TAP version 13", "1..0 # SKIP no driver built"],
                               result="ok 1"))
        self.assertEqual((r.passed, r.failed, r.skipped), (0, 0, 1))
        self.assertTrue(r.programs[0].skipped_whole)
        self.assertEqual(r.cases[0].directive, "SKIP no driver built")
        self.assertEqual(r.programs[0].directive, "SKIP no driver built")

    def test_skipped_cases_are_not_a_whole_skip(self):
        r = ktap.parse(program("s", "a.sh", ["TAP version 13", "1..2", "ok 1 x # SKIP a",
                                             "ok 2 y # SKIP b"]))
        self.assertEqual((r.passed, r.failed, r.skipped), (0, 0, 2))
        self.assertFalse(r.programs[0].skipped_whole)

    def test_more_results_than_planned_fail(self):
        r = ktap.parse(program("s", "a.sh", ["TAP version 13", "1..1", "ok 1 one", "ok 2 two"]))
        self.assertEqual(r.failed, 1)
        self.assertIn("selftests: s: a.sh: more results than the 1 planned", r.problems)
        # At the runner's level too.
        r = ktap.parse(doc("TAP version 13", "1..1", "ok 1 a", "ok 2 b"))
        self.assertIn("run: more results than the 1 planned", r.problems)

    def test_duplicate_numbers_fail(self):
        r = ktap.parse(program("s", "a.sh", ["TAP version 13", "1..2", "ok 1 one", "ok 1 two"]))
        self.assertIn("selftests: s: a.sh: duplicate test number 1 (expected 2)", r.problems)
        self.assertEqual(r.failed, 1)

    def test_out_of_order_numbers_fail(self):
        r = ktap.parse(program("s", "a.sh", ["TAP version 13", "1..3", "ok 1 one", "ok 3 three",
                                             "ok 2 two"]))
        self.assertIn("selftests: s: a.sh: out-of-order test number 3 (expected 2)", r.problems)
        self.assertIn("selftests: s: a.sh: duplicate test number 2 (expected 3)", r.problems)

    def test_second_plan_fails(self):
        r = ktap.parse(program("s", "a.sh", ["TAP version 13", "1..1", "ok 1 one", "1..2",
                                             "ok 2 two"]))
        self.assertTrue(any("a second plan" in p for p in r.problems))

    def test_plan_at_the_end_is_fine(self):
        r = ktap.parse(program("s", "a.sh", ["TAP version 13", "ok 1 one", "ok 2 two", "1..2"]))
        self.assertEqual((r.passed, r.failed, r.problems), (2, 0, []))

    def test_fewer_results_than_planned_fail(self):
        r = ktap.parse(program("s", "a.sh", ["TAP version 13", "1..3", "ok 1 one"]))
        self.assertEqual((r.passed, r.failed), (1, 1))
        self.assertIn("planned 3 tests, 1 reported", r.problems[0])

    def test_timeout_after_passing_cases_is_a_failure(self):
        text = doc("TAP version 13", "1..1", "# TAP version 13", "# 1..2", "# ok 1 one",
                   "#", "not ok 1 selftests: s: a.sh # TIMEOUT 45 seconds")
        r = ktap.parse(text)
        # One case passed; the second never reported, because of the timeout.
        self.assertEqual((r.passed, r.failed), (1, 1))
        self.assertTrue(r.problems)
        self.assertIn("TIMEOUT", [c for c in r.cases if c.status == "fail"][0].directive)

    def test_missing_program_results_fail(self):
        text = doc("TAP version 13", "1..3", "# selftests: s: a", "ok 1 selftests: s: a # SKIP")
        r = ktap.parse(text)
        self.assertEqual((r.skipped, r.failed), (1, 1))
        self.assertIn("suite s: planned 3", r.problems[0])

    def test_several_documents(self):
        text = (program("s", "a", ["TAP version 13", "1..1", "ok 1 x"])
                + program("t", "b", ["TAP version 13", "1..1", "ok 1 y"]))
        self.assertEqual(self.counts(text), (2, 0, 0))
        self.assertEqual([p.suite for p in ktap.parse(text).programs], ["s", "t"])

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
