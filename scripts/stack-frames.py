#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""stack-frames.py LIMIT MODULE.ko...: the stack frame of every function of
the modules (objdump: the prologue's `sub $N, %rsp`), against LIMIT bytes.
Prints the largest frames and every frame over the limit, and exits 1 if
there is one: the kernel checks C frames (CONFIG_FRAME_WARN) but not
Rust's, and a Rust value moved by value through a few frames (a struct
holding an inline table) can overrun a 16 KiB stack, silently without
VMAP_STACK. x86-64 only."""

import re
import subprocess
import sys

FUNC = re.compile(r"^[0-9a-f]+ <(.*)>:$")
SUB = re.compile(r"\bsub\s+\$0x([0-9a-f]+),%rsp")


def frames(ko):
    """(bytes, function) of each function's largest `sub $N, %rsp`."""
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", ko],
                         capture_output=True, text=True, check=True).stdout
    best = {}
    fn = None
    for line in out.splitlines():
        m = FUNC.match(line)
        if m:
            fn = m.group(1)
            continue
        m = SUB.search(line)
        if m and fn is not None:
            best[fn] = max(best.get(fn, 0), int(m.group(1), 16))
    return sorted(((v, f) for f, v in best.items()), reverse=True)


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    limit = int(sys.argv[1])
    bad = 0
    for ko in sys.argv[2:]:
        fr = frames(ko)
        name = ko.rsplit("/", 1)[-1]
        top = ", ".join(f"{v} ({f[:60]})" for v, f in fr[:2]) or "none over 0"
        print(f"stack frames: {name}: largest {top}")
        for v, f in fr:
            if v > limit:
                print(f"stack frames: {name}: {f}: {v} bytes, over {limit}")
                bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
