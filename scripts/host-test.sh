#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Host-side tests: the harness's unit tests (Python unittest) and the cargo
# workspace of kernel-agnostic crates (cargo test). Counts go to
# RESULTS_DIR/host.json for the summary of `make check`.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
results=${1:-$top/build/results}
mkdir -p "$results"
passed=0 failed=0 skipped=0 rc=0

echo "host-test: the harness's own unit tests (KTAP parser, kernel report scanner)"
out=$(cd "$top" && python3 -m unittest -v tests/harness/test_*.py 2>&1)
echo "$out" | grep -E ' \.\.\. ' | sed 's/^/  /'
p=$(echo "$out" | grep -cE ' \.\.\. ok$')
f=$(echo "$out" | grep -cE ' \.\.\. (FAIL|ERROR)$')
passed=$((passed + p)) failed=$((failed + f))
echo "$out" | tail -n 1 | grep -q '^OK' || rc=1

crates=$("$top/scripts/host-crates.sh")
if [ -n "$crates" ]; then
	echo "host-test: cargo test (crates: $(echo $crates))"
	log=$results/cargo-test.log
	# Optimised (opt-level 2), with the debug assertions and overflow
	# checks the test profile inherits from dev: the model tests and
	# property tests run in seconds instead of minutes.
	(cd "$top" && CARGO_PROFILE_TEST_OPT_LEVEL=2 cargo test --workspace 2>&1) | tee "$log" | grep -E '^(test result|running|error|failures:|---- )' | sed 's/^/  /'
	[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
	read -r p f s < <(awk '/^test result:/ { for (i = 1; i <= NF; i++) {
		if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i;
		if ($(i+1) ~ /^ignored/) s += $i } } END { print p+0, f+0, s+0 }' "$log")
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
else
	echo "host-test: the cargo workspace has no crates yet"
fi
[ "$failed" -eq 0 ] || rc=1
printf '{"passed": %d, "failed": %d, "skipped": %d}\n' "$passed" "$failed" "$skipped" >"$results/host.json"
echo "host-test: $passed passed, $failed failed, $skipped skipped"
exit "$rc"
