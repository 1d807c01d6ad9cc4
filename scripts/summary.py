#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The last lines of `make check`: each stage's time, each QEMU suite's and
test program's time, the counts of every stage, and the total, as
"check: N passed, N failed, N skipped" (skips always shown)."""

import json
import os
import sys

results = sys.argv[1]
order = ["host.json", "harness.json", "vm-debug.json"]
names = {"host.json": "host tests", "harness.json": "harness self-test",
         "vm-debug.json": "QEMU suites (debug kernel)"}
total = {"passed": 0, "failed": 0, "skipped": 0}
files = sorted((f for f in os.listdir(results) if f.endswith(".json")),
               key=lambda f: (order.index(f) if f in order else 99, f))
loaded = {}
for name in files:
    with open(os.path.join(results, name)) as f:
        loaded[name] = json.load(f)

print("\n==> summary")
not_run = []
stages = os.path.join(results, "stages.txt")
if os.path.exists(stages):
    print("  time per stage:")
    whole = 0
    with open(stages) as f:
        for line in f:
            stage, seconds, rc = line.split()
            if rc == "not-run":
                print(f"    {stage:20}     -   NOT RUN (an earlier stage failed)")
                not_run.append(stage)
                continue
            whole += int(seconds)
            print(f"    {stage:20} {int(seconds) // 60:3d}m{int(seconds) % 60:02d}s"
                  + ("" if rc == "0" else f"  FAILED (exit {rc})"))
    print(f"    {'total':20} {whole // 60:3d}m{whole % 60:02d}s")

for name, r in loaded.items():
    if not r.get("programs"):
        continue
    print(f"  time per suite and test program ({names.get(name, name)}):")
    for boot in r.get("boots", []):
        print(f"    boot {boot['name']}: {boot['seconds']}s of a budget of {boot['budget']}s "
              f"({boot.get('to_boot')}s to boot, longest console silence "
              f"{boot['longest_silence']}s)")
        for suite in boot["suites"]:
            progs = [p for p in r["programs"] if p["suite"] == suite]
            secs = sum(max(p["seconds"], 0) for p in progs)
            print(f"      {suite:16} {secs:5d}s")
            for p in progs:
                t = f"{p['seconds']:5d}s" if p["seconds"] >= 0 else "    ?s"
                flag = "" if p["status"] == "pass" else f"  ({p['status']})"
                print(f"        {p['program']:28} {t}{flag}")

print("  counts:")
for name, r in loaded.items():
    for k in total:
        total[k] += r.get(k, 0)
    print(f"    {names.get(name, name):30} {r['passed']:4} passed {r['failed']:4} failed "
          f"{r.get('skipped', 0):4} skipped")
    for case in r.get("failed_cases", []):
        print(f"      FAILED case: {case}")
    for failure in r.get("failures", []):
        print(f"      FAIL: {failure}")
line = f"check: {total['passed']} passed, {total['failed']} failed, {total['skipped']} skipped"
if not_run:
    line += f"; not run: {' '.join(not_run)}"
print(line)
sys.exit(1 if total["failed"] or not_run or any(r.get("failures") for r in loaded.values())
         else 0)
