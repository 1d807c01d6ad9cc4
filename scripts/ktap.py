# SPDX-License-Identifier: GPL-2.0
"""A strict parser for the KTAP that the kselftest runner prints.

run_kselftest.sh prints one TAP document per collection (suite):

    TAP version 13
    1..2
    # timeout set to 45
    # selftests: smoke: smoke.sh
    # TAP version 13          <- the test's own KTAP, prefixed with "# "
    # 1..3
    # ok 1 rust is enabled
    # not ok 2 zswap is present
    # ok 3 ssd # SKIP no nvme
    # # Totals: pass:1 fail:1 xfail:0 xpass:0 skip:1 error:0
    not ok 1 selftests: smoke: smoke.sh # exit=1

The counts are of leaf cases: a test program that prints subtests counts as
its subtests, one that does not counts as itself. A program whose own result
is "not ok" while none of its subtests failed (it crashed, timed out, or
exited non-zero after its last case) adds one failure. A skip is never a
pass.

Strictness (Documentation/building-and-testing.rst, "KTAP"): at every level,
results without a plan, a "1..0" plan without "# SKIP", more results than
planned, fewer results than planned, a second plan, and test numbers that
are duplicated or out of order are problems, and each adds a failure. A test
program that ran (not skipped) and printed no plan is one too.
"""

import re
from dataclasses import dataclass, field

RESULT = re.compile(r"^(ok|not ok)\s+(\d+)\s*(.*?)\s*(?:#\s*(.*))?$")
PLAN = re.compile(r"^1\.\.(\d+)\s*(?:#\s*(.*))?$")
PROGRAM = re.compile(r"^selftests: (\S+): (\S+)$")


@dataclass
class Case:
    name: str
    status: str  # "pass", "fail" or "skip"
    directive: str = ""


@dataclass
class Program:
    """One test program of the runner's document: "selftests: SUITE: NAME"."""

    suite: str
    name: str
    status: str  # "pass", "fail" or "skip" (the program's own result)
    directive: str = ""
    skipped_whole: bool = False  # exit 4, or a "1..0 # SKIP" plan
    failed: int = 0  # failed leaf cases (and problems) under it


@dataclass
class Result:
    cases: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    programs: list = field(default_factory=list)

    @property
    def passed(self):
        return sum(c.status == "pass" for c in self.cases)

    @property
    def failed(self):
        return sum(c.status == "fail" for c in self.cases)

    @property
    def skipped(self):
        return sum(c.status == "skip" for c in self.cases)


def _status(ok, directive):
    word = (directive or "").split(" ", 1)[0].upper()
    if word in ("SKIP", "TODO"):
        return "skip" if ok else "fail"
    if word == "XFAIL":
        return "pass"
    return "pass" if ok else "fail"


class _Level:
    """The results and plan of one KTAP level, checked as they come."""

    def __init__(self, out, prefix, label=""):
        self.out = out
        self.prefix = prefix
        self.label = label
        self.plan = None
        self.plan_skip = False
        self.seen = 0
        self.failed = 0

    @property
    def where(self):
        return self.prefix.rstrip(": ") or self.label or "run"

    def problem(self, what):
        self.out.problems.append(f"{self.where}: {what}")
        self.out.cases.append(Case(f"{self.prefix}(KTAP: {what})", "fail"))
        self.failed += 1

    def on_plan(self, count, directive):
        if self.plan is not None:
            self.problem(f"a second plan 1..{count} (the first was 1..{self.plan})")
            return
        self.plan = count
        skip = (directive or "").upper().startswith("SKIP")
        if count == 0:
            if skip:
                self.plan_skip = True
                self.out.cases.append(Case(self.where, "skip", directive.strip()))
            else:
                self.problem("plan 1..0 without # SKIP")
        if self.seen > count:
            self.problem(f"planned {count} tests after {self.seen} results")

    def on_result(self, number):
        self.seen += 1
        if number != self.seen:
            kind = "duplicate" if number < self.seen else "out-of-order"
            self.problem(f"{kind} test number {number} (expected {self.seen})")
        if self.plan is not None and self.seen == self.plan + 1:
            self.problem(f"more results than the {self.plan} planned")

    def finish(self, expect_plan):
        if self.plan is None:
            if self.seen:
                self.problem(f"{self.seen} result(s) without a plan")
            elif expect_plan:
                self.problem("no KTAP plan (the program printed no 1..N)")
        elif self.seen < self.plan:
            self.problem(f"planned {self.plan} tests, {self.seen} reported "
                         "(a test died or the guest stopped)")


def _parse_level(lines, prefix, out, expect_plan, top=False):
    """Parse one level of KTAP (results and plans) from lines; recurse into
    the "# "-prefixed blocks that precede each result. Returns the number of
    failed leaf cases (and problems) found."""
    label = ""
    if top:
        # The runner's document of one suite is named by its programs' lines.
        suites = [m.group(1) for line in lines
                  if (m := re.match(r"^# selftests: (\S+): ", line))]
        label = f"suite {suites[0]}" if suites else ""
    level = _Level(out, prefix, label)
    pending = []  # the nested lines before the next result
    failed = 0
    for line in lines:
        if line.startswith("# ") or line == "#":
            pending.append(line[2:])
            continue
        if line.startswith("Bail out!"):
            out.problems.append(f"{level.where}: bail out: {line[9:].strip()}")
            out.cases.append(Case(f"{prefix}(bail out: {line[9:].strip()})", "fail"))
            failed += 1
            continue
        m = PLAN.match(line)
        if m:
            level.on_plan(int(m.group(1)), m.group(2) or "")
            continue
        m = RESULT.match(line)
        if not m:
            continue
        level.on_result(int(m.group(2)))
        ok = m.group(1) == "ok"
        desc = m.group(3)
        directive = (m.group(4) or "").strip()
        name = f"{prefix}{desc}"
        status = _status(ok, directive)
        program = PROGRAM.match(desc) if top else None
        before = len(out.cases)
        # A program the runner ran must print a plan unless it was skipped.
        sub_failed = _parse_level(pending, name + ": ", out,
                                  expect_plan=bool(program) and status != "skip")
        pending = []
        new = out.cases[before:]
        if not new:
            case = Case(name, status, directive)
            out.cases.append(case)
            failed += case.status == "fail"
            sub_failed = case.status == "fail"
        else:
            failed += sub_failed
            if not ok and sub_failed and directive:
                # Say why the program ended (TIMEOUT, exit=N) on its last failure.
                last = [c for c in new if c.status == "fail"][-1]
                last.directive = "; ".join(d for d in (last.directive, directive) if d)
            if not ok and sub_failed == 0:
                why = directive or "it failed after its last case"
                out.cases.append(Case(f"{name} (the program itself)", "fail", why))
                failed += 1
                sub_failed = 1
        if program:
            planned_skip = [c for c in new if c.name == name and c.status == "skip"]
            whole = status == "skip" or (bool(planned_skip)
                                         and all(c.status == "skip" for c in new))
            # The reason of a whole skip is the program's own "1..0 # SKIP why".
            why = planned_skip[0].directive if planned_skip else directive
            out.programs.append(Program(program.group(1), program.group(2), status, why,
                                        whole, sub_failed))
    level.finish(expect_plan)
    return failed + level.failed


def parse(text):
    """Parse the whole KTAP output of a run: one or more TAP documents."""
    out = Result()
    docs = []
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        if re.match(r"^(TAP|KTAP) version \d+", line):
            docs.append([])
            continue
        if docs:
            docs[-1].append(line)
    for doc in docs:
        _parse_level(doc, "", out, expect_plan=True, top=True)
    return out
