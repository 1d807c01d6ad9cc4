#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The last lines of `make check`: the counts of every stage, and the total."""

import json
import os
import sys

results = sys.argv[1]
order = ["host.json", "harness.json", "vm-debug.json"]
names = {"host.json": "host tests", "harness.json": "harness self-test",
         "vm-debug.json": "QEMU suites (debug kernel)"}
total = {"passed": 0, "failed": 0, "skipped": 0}
files = sorted(os.listdir(results), key=lambda f: (order.index(f) if f in order else 99, f))
print("\n==> summary")
for name in files:
    if not name.endswith(".json"):
        continue
    with open(os.path.join(results, name)) as f:
        r = json.load(f)
    for k in total:
        total[k] += r.get(k, 0)
    print(f"  {names.get(name, name):30} {r['passed']:4} passed {r['failed']:4} failed "
          f"{r.get('skipped', 0):4} skipped")
line = f"{total['passed']} passed, {total['failed']} failed"
if total["skipped"]:
    line += f", {total['skipped']} skipped"
print(f"check: {line}")
sys.exit(1 if total["failed"] else 0)
