#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The harness's own tests: each scenario under tests/harness/ misbehaves in one
# way, and scripts/vm-run.py must fail the run with the right message.
#   fail  a test case fails                -> "N passed, M failed", M > 0
#   warn  a module WARNs, tests say ok     -> a WARNING report fails the run
#   oops  a module oopses, tests say ok    -> a BUG/oops report fails the run
#   hang  the guest never finishes         -> the run's timeout fails it
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

passed=0 failed=0 n=0
echo "TAP version 13"
echo "1..4"
scenario() {
	local name=$1 timeout=$2 expect=$3
	n=$((n + 1))
	local out=$logs/$name.out
	local start=$SECONDS
	"$top/scripts/vm-run.py" --kdir "$kdir" --flavour "$flavour" --quiet \
		--suites-root "$top/tests/harness" --fixtures "${fixtures[@]}" \
		--log-dir "$logs/$name" --timeout "$timeout" -- "$name" >"$out" 2>&1
	local rc=$?
	local last
	last=$(tail -n 1 "$out")
	local why=""
	[ "$rc" -ne 0 ] || why="the run exited 0"
	echo "$last" | grep -qE '^[0-9]+ passed, [1-9][0-9]* failed' ||
		why="${why:+$why; }its last line is '$last'"
	grep -qE "$expect" "$out" || why="${why:+$why; }no line matches '$expect'"
	# The scenario's test must have started: a failure for any other reason
	# (a guest that never booted) does not count.
	grep -q "selftests: $name: $name.sh" "$logs/$name/console.log" 2>/dev/null ||
		why="${why:+$why; }the scenario's test never started"
	if [ -z "$why" ]; then
		echo "ok $n harness fails a run: $name ($((SECONDS - start))s)"
		passed=$((passed + 1))
	else
		sed 's/^/# /' "$out"
		echo "not ok $n harness fails a run: $name: $why"
		failed=$((failed + 1))
	fi
}
scenario fail 300 'vm: FAILED: .*a case that fails on purpose'
scenario warn 300 'kernel report \(WARNING\)'
scenario oops 300 'kernel report \((BUG|oops)\)'
scenario hang 60 'the guest hung: no power-off within 60s'
printf '{"passed": %d, "failed": %d, "skipped": 0}\n' "$passed" "$failed" >"$results"
echo "harness-selftest: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
