#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""check-modules.py TOP MODDIR: every module the top-level Kbuild lists was
built. The top-level Kbuild names directories (obj-m += rust/zbud_rs/); each
directory's Kbuild names its modules (obj-m += zbud_rs.o test_zbud_rs.o).
Prints what is missing and exits 1 if anything is, so that `make check`
cannot stay green with a suite skipped because its module is not there."""

import os
import re
import sys

OBJ_M = re.compile(r"^\s*obj-(?:m|y|\$\([A-Z0-9_]+\))\s*[:+]?=\s*(.*)$")


def obj_m(path):
    """The names on the obj-m lines of a Kbuild file (a trailing backslash
    continues a line)."""
    with open(path) as f:
        text = f.read().replace("\\\n", " ")
    names = []
    for line in text.splitlines():
        m = OBJ_M.match(line.split("#", 1)[0])
        if m:
            names += m.group(1).split()
    return names


def expected(top, rel="."):
    kbuild = os.path.join(top, rel, "Kbuild")
    if not os.path.exists(kbuild):
        kbuild = os.path.join(top, rel, "Makefile")
    mods = []
    for name in obj_m(kbuild):
        path = os.path.normpath(os.path.join(rel, name))
        if name.endswith("/"):
            mods += expected(top, path)
        elif name.endswith(".o"):
            mods.append(path[:-2] + ".ko")
        else:
            raise SystemExit(f"check-modules: {kbuild}: cannot read obj-m entry {name!r}")
    return mods


def main():
    top, moddir = sys.argv[1], sys.argv[2]
    want = expected(top)
    missing = [m for m in want if not os.path.exists(os.path.join(moddir, m))]
    if not want:
        print("check-modules: the top-level Kbuild lists no module")
        return 1
    for m in missing:
        print(f"check-modules: {m} is listed in Kbuild but was not built (in {moddir})")
    print(f"check-modules: {len(want) - len(missing)} of the {len(want)} modules the Kbuild "
          "files list were built")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
