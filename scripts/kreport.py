# SPDX-License-Identifier: GPL-2.0
"""Kernel reports in a guest's logs: what fails a run (scripts/vm-run.py)."""

import os
import re

# Kernel reports that fail a run. They are matched only on lines printed by
# the kernel (after the printk time stamp), so a test's own output cannot
# trip them.
SPLAT_PATTERNS = [
    (r"BUG: ", "BUG"),
    (r"kernel BUG at", "BUG"),
    (r"Oops: ", "oops"),
    (r"general protection fault", "oops"),
    (r"WARNING: ", "WARNING"),
    (r"KASAN: ", "KASAN"),
    (r"UBSAN: ", "UBSAN"),
    (r"INFO: task .* blocked for more than", "hung task"),
    (r"INFO: (possible|inconsistent|trying to register|lockdep)", "lockdep"),
    (r"DEBUG_LOCKS_WARN_ON", "lockdep"),
    (r"rcu: .*(self-)?detected stall", "RCU stall"),
    (r"watchdog: .*lockup", "lockup"),
    (r"Kernel panic", "panic"),
    (r"list_(add|del) corruption", "list corruption"),
    (r"Call Trace:", "stack trace"),
]
KERNEL_LINE = re.compile(r"^\s*\[\s*\d+\.\d+\]\s?(.*)$")


EXPECT_BEGIN = re.compile(r"rkm-expect: begin (.+)$")
EXPECT_END = re.compile(r"rkm-expect: end")
# What an expected-report window may excuse: a WARN()'s own lines. Lockdep,
# KASAN, BUG and the rest are never excused.
EXCUSABLE = re.compile(r"^(WARNING: CPU: \d+ PID: \d+ at |Call Trace:)")


def find_splats(paths):
    """Report lines in the logs, less those a test said to expect.

    A test that provokes a WARN on purpose (a bad handle, say) brackets it
    with "rkm-expect: begin REGEX" and "rkm-expect: end" in the kernel log;
    inside such a window a WARN's "WARNING: CPU: ..." and "Call Trace:"
    lines are excused, and only if a kernel line in the window matches REGEX
    (the WARN's message). Every other report still fails the run.
    """
    found = []
    for path in paths:
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = [line.rstrip("\r\n") for line in f]
        bodies = [(i, m.group(1)) for i, line in enumerate(lines)
                  if (m := KERNEL_LINE.match(line))]
        excused = set()
        window = None
        for i, body in bodies:
            b = EXPECT_BEGIN.search(body)
            if b:
                window = (re.compile(b.group(1)), [], False)
                continue
            if window is None:
                continue
            if EXPECT_END.search(body):
                if window[2]:
                    excused.update(window[1])
                window = None
                continue
            if EXCUSABLE.match(body):
                window[1].append(i)
            elif window[0].search(body):
                window = (window[0], window[1], True)
        for i, body in bodies:
            if i in excused:
                continue
            for pattern, kind in SPLAT_PATTERNS:
                if re.search(pattern, body):
                    found.append((kind, path, i + 1, lines[max(0, i - 2):i + 25]))
                    break
    return found
