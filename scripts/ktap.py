# SPDX-License-Identifier: GPL-2.0
"""A parser for the KTAP that the kselftest runner prints.

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
exited non-zero after its last case) adds one failure, and so does a program
or a document that ran fewer cases than it planned. A skip is never a pass.
"""

import re
from dataclasses import dataclass, field

RESULT = re.compile(r"^(ok|not ok)\s+(\d+)\s*(.*?)\s*(?:#\s*(.*))?$")
PLAN = re.compile(r"^1\.\.(\d+)")


@dataclass
class Case:
    name: str
    status: str  # "pass", "fail" or "skip"
    directive: str = ""


@dataclass
class Result:
    cases: list = field(default_factory=list)
    problems: list = field(default_factory=list)

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


def _parse_level(lines, prefix, out):
    """Parse one level of KTAP (results and plans) from lines; recurse into
    the "# "-prefixed blocks that precede each result. Returns the number of
    failed leaf cases found."""
    plan = None
    seen = 0
    pending = []  # the nested lines before the next result
    failed = 0
    for line in lines:
        if line.startswith("# ") or line == "#":
            pending.append(line[2:])
            continue
        if line.startswith("Bail out!"):
            out.problems.append(f"{prefix or 'run'}: bail out: {line[9:].strip()}")
            failed += 1
            continue
        m = PLAN.match(line)
        if m:
            plan = int(m.group(1))
            if "# SKIP" in line.upper():
                out.cases.append(Case(prefix.rstrip(": ") or "run", "skip",
                                      line.split("#", 1)[1].strip()))
            continue
        m = RESULT.match(line)
        if not m:
            continue
        seen += 1
        ok = m.group(1) == "ok"
        desc = m.group(3)
        directive = (m.group(4) or "").strip()
        name = f"{prefix}{desc}"
        before = len(out.cases)
        sub_failed = _parse_level(pending, name + ": ", out)
        pending = []
        if len(out.cases) == before:
            case = Case(name, _status(ok, directive), directive)
            out.cases.append(case)
            failed += case.status == "fail"
        else:
            failed += sub_failed
            if not ok and sub_failed and directive:
                # Say why the program ended (TIMEOUT, exit=N) on its last failure.
                last = [c for c in out.cases[before:] if c.status == "fail"][-1]
                last.directive = "; ".join(d for d in (last.directive, directive) if d)
            if not ok and sub_failed == 0:
                why = directive or "it failed after its last case"
                out.cases.append(Case(f"{name} (the program itself)", "fail", why))
                failed += 1
    if plan is not None and seen < plan and not (plan == 0):
        out.problems.append(f"{prefix.rstrip(': ') or 'run'}: planned {plan} tests, "
                            f"{seen} reported (a test died or the guest stopped)")
        out.cases.append(Case(f"{prefix}(missing {plan - seen} of {plan})", "fail"))
        failed += 1
    return failed


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
        _parse_level(doc, "", out)
    return out
