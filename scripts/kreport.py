# SPDX-License-Identifier: GPL-2.0
"""Kernel reports in a guest's logs: what fails a run (scripts/vm-run.py).

Only lines the kernel printed are judged: the text after a printk time stamp
("[   12.345678] "), wherever the stamp stands in a console line (a kernel
line can land in the middle of a test's output line on the serial console:
"ok 3 foo[   12.345678] WARNING: ..."). A test's own output cannot trip a
report pattern.

Expected reports (Documentation/building-and-testing.rst, "Expected
reports"): a test that must make the kernel WARN brackets the one call that
warns with kernel lines

    rkm-expect: begin warn=<N> at=<REGEX>
    rkm-expect: end

Inside the window a "WARNING: CPU: c PID: p at <location>" header whose
location matches REGEX (re.search) is excused and counted, together with the
one "Call Trace:" of its report (up to its "---[ end trace ... ]---" line);
at "end" the count must be exactly N. Everything else in a window is judged
as outside it. A fault-injection test may open

    rkm-expect: begin alloc-fail max=<N>

which excuses up to N allocation-failure reports ("page allocation failure",
"SLUB: Unable to allocate memory") and OOM-killer reports ("invoked
oom-killer" and its "Out of memory: Killed process" line), each with its one
"Call Trace:". A benchmark that runs a C allocator with a known leak (C
z3fold's handle cache, bench/zswap-guest.sh) may open

    rkm-expect: begin slab-leak cache=<NAME>

which excuses SLUB's report that cache NAME still had objects when it was
destroyed: each "BUG NAME (...): Objects remaining" line, and, once one was
seen in the window, the WARNs SLUB and kmem_cache_destroy() print for it
(at __kmem_cache_shutdown or kmem_cache_destroy, each with its one "Call
Trace:"), and the kernel's B (bad page) taint that SLUB sets. A window that
is never closed, a begin inside an open window, an end outside one and a
malformed marker all fail the run.
"""

import os
import re
from dataclasses import dataclass, field

# Kernel reports that fail a run, matched (re.search) against the text of a
# kernel line. The first that matches names the kind.
SPLAT_PATTERNS = [
    (r"BUG: ", "BUG"),
    (r"kernel BUG at", "BUG"),
    # SLUB debugging: "BUG kmalloc-64 (Not tainted): Redzone overwritten",
    # and the "FIX kmalloc-64: Restoring ..." lines of the same report.
    (r"BUG \S+ \(", "SLUB"),
    (r"^FIX \S+: ", "SLUB"),
    # 6.12's stable updates print what was overwritten on a line of its own
    # before the header: "[Right Redzone overwritten] 0x...-0x... @offset=".
    (r"(Redzone|Poison|Padding) overwritten", "SLUB"),
    (r"Oops: ", "oops"),
    (r"general protection fault", "oops"),
    (r"stack segment: ", "oops"),
    (r"WARNING: ", "WARNING"),
    (r"refcount_t: ", "refcount"),
    (r"KASAN: ", "KASAN"),
    (r"KFENCE: ", "KFENCE"),
    (r"UBSAN: ", "UBSAN"),
    (r"INFO: task .* blocked for more than", "hung task"),
    (r"INFO: (possible|inconsistent|trying to register|lockdep)", "lockdep"),
    (r"DEBUG_LOCKS_WARN_ON", "lockdep"),
    (r"rcu: .*(self-)?detected stall", "RCU stall"),
    (r"watchdog: .*lockup", "lockup"),
    (r"(?i)hard lockup", "lockup"),
    (r"Kernel panic", "panic"),
    (r"Kernel [Oo]ffset: ", "panic"),
    (r"list_(add|del) corruption", "list corruption"),
    (r"page allocation failure", "allocation failure"),
    (r"SLUB: Unable to allocate memory", "allocation failure"),
    (r"invoked oom-killer", "OOM"),
    (r"(Memory cgroup out of memory|Out of memory): Killed process", "OOM kill"),
    (r"kmemleak: \d+ new suspected memory leaks", "kmemleak"),
    # A module of ours that counts its objects and finds some alive when
    # it unloads (a reference leaked: its device stays held).
    (r"rkm-leak: ", "leak"),
    (r"Call Trace:", "stack trace"),
]
_COMPILED = [(re.compile(p), k) for p, k in SPLAT_PATTERNS]

# The printk time stamp: "[    1.234567]" (six decimals) anywhere in a line;
# at the start of a line any number of decimals.
STAMP = re.compile(r"\[\s*\d+\.\d{6}\]|^\s*\[\s*\d+\.\d+\]")
# Compatibility: a whole line that is a kernel line; group 1 is its text.
KERNEL_LINE = re.compile(r"^\s*\[\s*\d+\.\d+\]\s?(.*)$")

MARKER = re.compile(r"rkm-expect: (begin|end)\b\s*(.*?)\s*$")
WINDOW_WARN = re.compile(r"^warn=(\d+) at=(.+)$")
WINDOW_ALLOC = re.compile(r"^alloc-fail max=(\d+)$")
WINDOW_SLAB = re.compile(r"^slab-leak cache=([\w-]+)$")
# The WARNs of a slab cache destroyed with objects left (mm/slub.c).
SLAB_LEAK_WARN = re.compile(r"^\S+ (__kmem_cache_shutdown|kmem_cache_destroy)\+")
WARN_HEADER = re.compile(r"WARNING: CPU: \d+ PID: \d+ at (.*)$")
END_TRACE = re.compile(r"---\[ end trace [0-9a-f]+ \]---")
SYSRQ_DUMP = re.compile(r"^sysrq: (Show Blocked State|Show backtrace of all active CPUs|Show State)")
ALLOC_KINDS = ("allocation failure", "OOM")

# /proc/sys/kernel/tainted: the bits a run may end with.
TAINT_OK = (1 << 12) | (1 << 13)  # O (out-of-tree module), E (unsigned module)
TAINT_WARN = 1 << 9  # W
TAINT_BAD_PAGE = 1 << 5  # B: SLUB sets it with each report
TAINT_FLAGS = "PFSRMBUDAWCIOELKXTN"  # bit i is TAINT_FLAGS[i], as in the kernel


@dataclass
class Finding:
    kind: str
    path: str
    lineno: int  # 1-based line of the log file
    context: list  # the log lines around it
    message: str = ""
    key: str = ""  # the kernel line with its stamp: the same in another log of the run

    def __iter__(self):
        # (kind, path, lineno, context), as find_splats' callers unpack it.
        return iter((self.kind, self.path, self.lineno, self.context))


@dataclass
class Scan:
    """What one log holds: the reports that fail the run, and the WARNs."""

    findings: list = field(default_factory=list)
    warns: int = 0  # "WARNING: CPU: ..." headers seen
    warns_excused: int = 0  # of them, excused by a window
    slab_leaks: int = 0  # SLUB "Objects remaining" reports a slab-leak window excused
    starts_at_boot: bool = False  # the log has the kernel's "Linux version" line


def classify(body):
    """The kind of report a kernel line starts or belongs to, or None."""
    for pattern, kind in _COMPILED:
        if pattern.search(body):
            return kind
    return None


def stamped_lines(lines):
    """(index, stamp, text) of every kernel line in lines: the text after
    each printk time stamp, up to the next stamp or the end of the console
    line."""
    for i, line in enumerate(lines):
        stamps = list(STAMP.finditer(line))
        for j, m in enumerate(stamps):
            end = stamps[j + 1].start() if j + 1 < len(stamps) else len(line)
            body = line[m.end():end]
            yield i, m.group(0).strip(), body[1:] if body.startswith(" ") else body


def kernel_lines(lines):
    """(index, text) of every kernel line in lines (stamped_lines)."""
    for i, _, body in stamped_lines(lines):
        yield i, body


class _Window:
    def __init__(self, kind, lineno, limit, regex=None, spec="", key=""):
        self.kind = kind  # "warn", "alloc-fail" or "slab-leak"
        self.key = key
        self.lineno = lineno
        self.limit = limit  # warn: the exact count; alloc-fail: the most
        self.regex = regex
        self.spec = spec
        self.count = 0


def scan_lines(lines, path="<log>"):
    """Judge the kernel lines of one log (a list of its lines)."""
    scan = Scan()
    window = None
    report = None  # the excused report under way: [kind, call trace excused?]

    key = ""

    def find(kind, i, message=""):
        scan.findings.append(Finding(kind, path, i + 1, lines[max(0, i - 2):i + 25], message,
                                     key))

    sysrq = False  # after the harness's own sysrq dump request
    for i, stamp, body in stamped_lines(lines):
        # The same kernel line in the console log and the dmesg.
        key = f"{stamp} {body}"
        if body.startswith("Linux version "):
            scan.starts_at_boot = True
        if SYSRQ_DUMP.search(body):
            sysrq = True
            continue
        m = MARKER.search(body)
        if m:
            report = None
            what, spec = m.group(1), m.group(2)
            if what == "end":
                if spec:
                    find("expect", i, f"malformed window marker: {body!r}")
                elif window is None:
                    find("expect", i, "rkm-expect: end without a begin")
                else:
                    if window.kind == "warn" and window.count != window.limit:
                        find("expect", i, f"expected {window.limit} WARN(s) at "
                             f"{window.regex.pattern}, saw {window.count} (window opened "
                             f"at line {window.lineno})")
                    window = None
                continue
            if window is not None:
                find("expect", i, f"rkm-expect: begin inside the window opened at line "
                     f"{window.lineno}")
                window = None
            w = WINDOW_WARN.match(spec)
            a = WINDOW_ALLOC.match(spec)
            sl = WINDOW_SLAB.match(spec)
            try:
                if w and int(w.group(1)) >= 1:
                    window = _Window("warn", i + 1, int(w.group(1)), re.compile(w.group(2)), spec,
                                     key)
                elif a:
                    window = _Window("alloc-fail", i + 1, int(a.group(1)), spec=spec, key=key)
                elif sl:
                    leak = re.compile(rf"BUG {re.escape(sl.group(1))} \(.*\): Objects remaining")
                    window = _Window("slab-leak", i + 1, 0, leak, spec=spec, key=key)
                else:
                    find("expect", i, f"malformed window marker: {body!r} (want "
                         "'begin warn=N at=REGEX' with N >= 1, 'begin alloc-fail max=N' or "
                         "'begin slab-leak cache=NAME')")
            except re.error as e:
                find("expect", i, f"malformed window marker: bad regex: {e}: {body!r}")
            continue

        kind = classify(body)
        if sysrq and kind == "stack trace":
            # The stacks of the watchdog's blocked-task and CPU dumps (sysrq
            # w and l, scripts/vm-run.py): that run has failed already.
            continue
        if kind == "WARNING" and WARN_HEADER.search(body):
            scan.warns += 1
        if report is not None:
            if report[0] == "warn" and END_TRACE.search(body):
                report = None
                continue
            if kind is None:
                continue
            if kind == "stack trace" and not report[1]:
                report[1] = True
                continue
            if report[0] == "OOM" and kind == "OOM kill":
                continue
            if report[0] != "warn":
                # An allocation report has no end line: the next report ends it.
                report = None
        if kind is None:
            continue
        if window is not None and window.kind == "warn" and kind == "WARNING":
            h = WARN_HEADER.search(body)
            if h and window.regex.search(h.group(1)):
                window.count += 1
                scan.warns_excused += 1
                report = ["warn", False]
                continue
        if window is not None and window.kind == "slab-leak":
            if kind == "SLUB" and window.regex.search(body):
                window.count += 1
                scan.slab_leaks += 1
                report = None
                continue
            h = WARN_HEADER.search(body) if kind == "WARNING" else None
            if h and window.count > 0 and SLAB_LEAK_WARN.search(h.group(1)):
                scan.warns_excused += 1
                report = ["warn", False]
                continue
        if window is not None and window.kind == "alloc-fail" and kind in ALLOC_KINDS:
            window.count += 1
            if window.count <= window.limit:
                report = [kind, False]
                continue
            find(kind, i, f"more than the {window.limit} allocation failure(s) the window "
                 f"opened at line {window.lineno} allows")
            continue
        find(kind, i)
    if window is not None:
        i = window.lineno - 1
        key = window.key
        find("expect", i, f"the window 'rkm-expect: begin {window.spec}' opened at line "
             f"{window.lineno} is never closed")
    return scan


def scan_file(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return scan_lines([line.rstrip("\r\n") for line in f], path)


def find_splats(paths):
    """Report lines in the logs that exist among paths, less those a window
    excuses, plus the windows' own failures; a kernel line found in an
    earlier log of paths (the console, then the dmesg) counts once."""
    return merge_findings([scan_file(p) for p in paths if os.path.exists(p)])


def merge_findings(scans):
    """The findings of several scans of one run's logs, each kernel line
    once (as find_splats)."""
    found = []
    seen = set()
    for scan in scans:
        for f in scan.findings:
            k = (f.kind, f.key, f.message.split(" (window opened")[0])
            if k not in seen:
                found.append(f)
                seen.add(k)
    return found


def taint_names(value):
    return "".join(TAINT_FLAGS[b] if b < len(TAINT_FLAGS) else f"<bit {b}>"
                   for b in range(value.bit_length()) if value >> b & 1)


def taint_problems(value, warns, warns_excused, slab_leaks=0):
    """Why a run that ends with /proc/sys/kernel/tainted == value fails, given
    the WARNs its log shows (none if it may pass). O and E are expected; W
    only when the log shows WARNs and every one was excused by a window (a W
    without a WARN in the log is a report the log lost); B only when a
    slab-leak window excused a SLUB report (slab_leaks)."""
    problems = []
    bad = value & ~(TAINT_OK | TAINT_WARN | (TAINT_BAD_PAGE if slab_leaks else 0))
    if bad:
        problems.append(f"the kernel is tainted {taint_names(bad)} ({value}; "
                        "Documentation/admin-guide/tainted-kernels.rst)")
    if value & TAINT_WARN:
        if warns == 0:
            problems.append(f"the kernel is tainted W ({value}) but the log shows no WARN: "
                            "a report was lost")
        elif warns_excused < warns:
            problems.append(f"the kernel is tainted W ({value}): {warns - warns_excused} of "
                            f"{warns} WARN(s) were not expected")
    return problems
