#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The harness's own tests: each scenario under tests/harness/ misbehaves in one
# way, and scripts/vm-run.py must fail the run and name the failure (two of
# them pass, and must). All the scenarios run in one vm-run.py call, in two
# boots (the last three ask for their own guest, cpus=1 mem=1G, which shows
# one boot per settings group) that run at the same time (--jobs 2: the
# second boot mostly waits for the hang watchdog; 130 s one after the other,
# measured on 2026-12-04):
#   fail     a test case fails                   -> "FAILED: ... a case that fails on purpose"
#   warn     a module WARNs, tests say ok        -> a WARNING report during warn
#   oops     a module oopses, tests say ok       -> a BUG/oops report during oops
#   slub     SLUB red zone overwritten inside an expected-WARN window whose
#            WARN happens                         -> a SLUB report during slub
#   window   a WARN in a window that expects 2, then one at another location
#                                                 -> "expected 2 ... saw 1", "expected 1 ... saw 0"
#   noplan   results without a plan              -> a KTAP problem
#   skip     a whole program skipped, suite not optional -> "skipped as a whole"
#   optskip  the same in an optional=1 suite     -> a skip, and no failure
#   taint    the kernel tainted U, silently      -> "the kernel is tainted U"
#   wrap     the log overflows log_buf_len       -> "does not start at the boot"
#   cpus     (own boot, 1 vCPU) RKM_CPUS is 1    -> passes, in the boot 1cpu-1G
#   faults   (same boot) rkm.sh's fault-injection helpers fail exactly the
#            allocations they should                -> passes
#   hang     a module's init blocks in D state   -> the inactivity watchdog, with
#                                                   "task:modprobe ... state:D" in the report
#   powercut (three boots of the same disks, powercut=) boot 1 is cut after
#            its workload arms it, and passes; boot 2's workload reports a
#            failure and never arms        -> "workload failed", "no power cut";
#            boot 3 finds boot 1's mark on the disk, and passes
# The clean path (a run that passes) is what `make vmtest` shows.
#
# usage: selftest.sh KDIR FLAVOUR RESULTS.json FIXTURE.ko...
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
kdir=$1 flavour=$2 results=$3
shift 3
fixtures=("$@")
logs=$top/build/logs/harness
mkdir -p "$logs" "$(dirname "$results")"
out=$logs/vm-run.out

# wrap comes before oops: an oops raises the console's log level for good,
# and wrap's debug-level lines would then go over the console too.
scenarios=(fail warn wrap oops slub window noplan skip optskip taint cpus faults hang powercut)
start=$SECONDS
echo "harness-selftest: running ${scenarios[*]} (logs in $logs)"
"$top/scripts/vm-run.py" --kdir "$kdir" --flavour "$flavour" --quiet --jobs 2 \
	--suites-root "$top/tests/harness" --fixtures "${fixtures[@]}" \
	--log-dir "$logs" -- "${scenarios[@]}" >"$out" 2>&1
rc=$?
elapsed=$((SECONDS - start))

passed=0 failed=0 n=0
echo "TAP version 13"
echo "1..$((${#scenarios[@]} + 1))"
verdict() {
	local desc=$1 why=$2
	n=$((n + 1))
	if [ -z "$why" ]; then
		echo "ok $n $desc"
		passed=$((passed + 1))
	else
		echo "not ok $n $desc: $why"
		failed=$((failed + 1))
	fi
}

last=$(tail -n 1 "$out")
why=""
[ "$rc" -ne 0 ] || why="vm-run.py exited 0"
echo "$last" | grep -qE '^[0-9]+ passed, [1-9][0-9]* failed' || why="${why:+$why; }its last line is '$last'"
verdict "the run fails (${elapsed}s)" "$why"

# scenario NAME REGEX...: the scenario's test started, and every REGEX
# matches a line of vm-run.py's output ($extra: what else went wrong).
extra=""
scenario() {
	local name=$1 why=$extra
	extra=""
	shift
	grep -qs "selftests: $name: $name.sh" "$logs"/*/console.log ||
		why="the scenario's test never started"
	for re in "$@"; do
		grep -qE -- "$re" "$out" || why="${why:+$why; }no line matches '$re'"
	done
	verdict "harness names the failure: $name" "$why"
}
# absent REGEX: no line of vm-run.py's output matches.
absent() {
	! grep -qE -- "$1" "$out"
}

scenario fail 'vm: FAILED: .*a case that fails on purpose' \
	'^vm: FAILED case: \[[^]]*\] selftests: fail: fail.sh: .*a case that fails on purpose'
scenario warn '^  WARNING during warn: warn.sh .*fault_warn'
scenario oops '^  (BUG|oops) during oops: oops.sh '
scenario slub '^  SLUB during slub: slub.sh .*BUG kmalloc-64 \('
scenario window 'expected 2 WARN\(s\) at fault_warn_now.*, saw 1' \
	'expected 1 WARN\(s\) at rkm_warn.*, saw 0' '^  WARNING during window: window.sh '
scenario noplan 'KTAP problem: selftests: noplan: noplan.sh: 2 result\(s\) without a plan'
scenario skip 'skip: skip.sh was skipped as a whole \(SKIP a required suite skipped as a whole\)'
absent 'optskip: optskip.sh was skipped as a whole' || extra="the optional suite's skip failed the run"
tail -n 1 "$out" | grep -qE ', [1-9][0-9]* skipped$' ||
	extra="${extra:+$extra; }the last line counts no skip"
scenario optskip
scenario taint 'the kernel is tainted [A-Z]*U[A-Z]* '
scenario wrap 'does not start at the boot'
scenario cpus '^  \[1cpu-1G\] ' '    [0-9]+s  cpus: cpus.sh \(pass\)'
absent 'FAILED: selftests: faults: ' || extra="a case of faults.sh failed"
scenario faults '    [0-9]+s  faults: faults.sh \(pass\)'
scenario hang '\[1cpu-1G\] the guest printed nothing for 30s \(in hang: hang.sh\)' \
	'task:modprobe +state:D' 'init_module\+0x[0-9a-f]+/0x[0-9a-f]+ \[fault_hang\]'
absent 'FAIL: \[2cpu-2G-powercut(-boot3)?\] ' || extra="a boot of powercut that must pass failed"
scenario powercut '\[2cpu-2G-powercut\] power cut: QEMU killed [0-9.]+s after the guest armed it' \
	'FAIL: \[2cpu-2G-powercut-boot2\] the power-cut workload failed: a check of the workload fails on purpose' \
	'FAIL: \[2cpu-2G-powercut-boot2\] no power cut: the guest never armed it' \
	'power-cut seed [0-9]+ .*: 2 cuts' '^  \[2cpu-2G-powercut\] .*power cut [0-9.]+s after arming'

if [ "$failed" -ne 0 ]; then
	echo "# vm-run.py's output ($out):"
	sed 's/^/# /' "$out"
fi
printf '{"passed": %d, "failed": %d, "skipped": 0, "seconds": %d}\n' "$passed" "$failed" "$elapsed" >"$results"
echo "harness-selftest: $passed passed, $failed failed in ${elapsed}s"
[ "$failed" -eq 0 ]
