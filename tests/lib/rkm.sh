# SPDX-License-Identifier: GPL-2.0
#
# Shell helpers for the project's kselftest scripts, on top of the kernel's
# ktap_helpers.sh. A test sources it with
#   . "$(dirname "$0")/../lib/rkm.sh"
# The guest's /init exports:
#   RKM_HDD RKM_SSD RKM_SWAP   the disks (/dev/...), found by serial number
#   RKM_MODULES                the project's module names, space-separated
#   RKM_FLAVOUR                debug or perf
#   RKM_PHASE                  which boot of a suite of several (boots=), from 1
#   RKM_POWERCUT               1 in a boot that ends in a power cut (powercut=)

. "$(dirname "$0")/../kselftest/ktap_helpers.sh"

# rkm_skip DESCRIPTION REASON: a skip, with its reason in the directive.
rkm_skip() {
	echo "ok $KTAP_TESTNO $1 # SKIP $2"
	KTAP_TESTNO=$((KTAP_TESTNO + 1))
	KTAP_CNT_SKIP=$((KTAP_CNT_SKIP + 1))
}

# rkm_check DESCRIPTION COMMAND...: pass if COMMAND succeeds; on failure,
# print its output as KTAP diagnostics. The case's time follows its result
# ("# time N.N s", from /proc/uptime), so that a suite's time can be
# attributed to its cases.
rkm_check() {
	desc=$1
	shift
	rkm_t0=$(cut -d ' ' -f 1 /proc/uptime)
	if out=$("$@" 2>&1); then
		ktap_test_pass "$desc"
	else
		[ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/# /'
		ktap_test_fail "$desc"
	fi
	awk -v t0="$rkm_t0" '{ printf "# time %.1f s\n", $1 - t0; exit }' /proc/uptime
}

# rkm_powercut_workload FILE: in a boot that ends in a power cut
# ($RKM_POWERCUT = 1: powercut= in the suite's settings), the shell script
# FILE runs after the suites, as the last thing of the boot (the guest's
# /init starts it, its output goes to the console). It prints
# RKM-POWERCUT-ARMED when the host may cut the power, RKM-POWERCUT-FAILED:
# WHAT if its own checks fail, and must not end before the cut (a loop).
rkm_powercut_workload() {
	[ "$RKM_POWERCUT" = 1 ] || { echo "not a boot that ends in a power cut"; return 1; }
	cp "$1" /run/rkm-powercut
}

# rkm_hotplug NAME: in a boot that started without disk NAME (hdd or ssd:
# hotplug= in the suite's settings), ask the host to plug it (QEMU's
# device_add) and wait up to 60 s for it; prints its /dev path.
rkm_hotplug() {
	echo "RKM-HOTPLUG: $1" >/dev/console
	n=0
	while [ $n -lt 600 ]; do
		for d in /sys/block/*; do
			s=$(cat "$d/serial" "$d/device/serial" 2>/dev/null | head -n 1 | tr -d ' ')
			if [ "$s" = "rkm-$1" ] && [ -b "/dev/${d##*/}" ]; then
				echo "/dev/${d##*/}"
				return 0
			fi
		done
		n=$((n + 1))
		sleep 0.1
	done
	echo "disk $1 did not appear within 60 s of its device_add" >&2
	return 1
}

# rkm_msg MESSAGE: a KTAP diagnostic line ("# MESSAGE").
rkm_msg() {
	echo "# $*"
}

# rkm_dmesg_mark: a line in the kernel log, to tell which test caused a report.
rkm_dmesg_mark() {
	echo "rkm-test: $*" >/dev/kmsg
}

# rkm_module_load MODULE FILE: load a test module that prints KTAP in the
# kernel log (rust/kglue/ktap.rs) and write its KTAP, without the module's
# prefix, to FILE; returns modprobe's status. Of several KTAP documents it
# keeps the last (busybox's modprobe retries a failed init_module with
# finit_module, so a failing init runs twice).
rkm_module_load() {
	mod=$1
	mark="rkm-test: loading $mod $$"
	echo "$mark" >/dev/kmsg
	modprobe "$mod"
	rc=$?
	dmesg | sed -n "/$mark/,\$p" | sed -n "s/^\[[^]]*\] $mod: //p" |
		awk '/^KTAP version/ { n = 0 } { buf[n++] = $0 } END { for (i = 0; i < n; i++) print buf[i] }' >"$2"
	return "$rc"
}

# rkm_module_results MODULE: load and unload a test module (rkm_module_load)
# and print its plan, result and diagnostic lines without header, for
# programs that merge the results of several modules (rkm_ktap_merge, which
# plans the sum of the plans). A module that printed no plan, a load or an
# unload that failed each add a plan of 1 and a "not ok", so a module that
# stops early, or never starts, fails the merged program.
rkm_module_results() {
	f=/tmp/rkm-ktap.$$
	rkm_module_load "$1" "$f"
	rc=$?
	if grep -qE '^1\.\.[0-9]+' "$f"; then
		grep -E '^1\.\.[0-9]+|^(not )?ok |^#' "$f"
	else
		grep -E '^(not )?ok |^#' "$f"
		printf '1..1\nnot ok 0 %s: printed no KTAP plan\n' "$1"
	fi
	if [ "$rc" -ne 0 ]; then
		printf '1..1\nnot ok 0 %s: modprobe failed (exit %d)\n' "$1" "$rc"
	elif ! rmmod "$1"; then
		printf '1..1\nnot ok 0 %s: rmmod failed\n' "$1"
	fi
	rm -f "$f"
}

# rkm_ktap_merge: KTAP from plan and result lines on stdin (any numbering,
# as rkm_module_results prints them), numbered afresh, with header, totals
# and as plan the SUM of the plans read: a module that printed fewer results
# than it planned leaves the merged program short of its plan, which fails
# it. Exits non-zero if a result failed or the count differs from the plan.
rkm_ktap_merge() {
	awk 'BEGIN { print "TAP version 13" }
		/^1\.\.[0-9]+/ { split($1, p, "\\.\\."); planned += p[2]; next }
		/^(not )?ok / {
			ok = ($1 == "ok"); sub(/^(not )?ok [0-9]+ /, "")
			n++; line[n] = (ok ? "ok " : "not ok ") n " " $0
			if (!ok) failed++; else if ($0 ~ /# SKIP/) skipped++; else passed++
			next }
		{ n_diag[n + 1] = n_diag[n + 1] $0 "\n" }
		END {
			print "1.." planned
			for (i = 1; i <= n; i++) { printf "%s", n_diag[i]; print line[i] }
			printf "%s", n_diag[n + 1]
			if (n != planned)
				printf "# the merged modules planned %d tests and printed %d results\n", planned, n
			printf "# Totals: pass:%d fail:%d xfail:0 xpass:0 skip:%d error:0\n", passed, failed, skipped
			exit (failed > 0 || n != planned) }'
}

# rkm_module_ktap MODULE: load a test module (rkm_module_load), print its
# KTAP as this program's, unload it. Returns non-zero if loading failed or no
# KTAP came out.
rkm_module_ktap() {
	f=/tmp/rkm-ktap.$$
	rkm_module_load "$1" "$f"
	rc=$?
	if [ ! -s "$f" ]; then
		ktap_print_header
		ktap_set_plan 1
		ktap_test_fail "$1 printed no KTAP (modprobe exit $rc)"
		return 1
	fi
	sed 's/^KTAP version 1$/TAP version 13/' "$f"
	rm -f "$f"
	[ "$rc" -eq 0 ] || { echo "# modprobe $1 failed with exit $rc"; return 1; }
	rmmod "$1" || { echo "# rmmod $1 failed"; return 1; }
}

# rkm_expect_begin N REGEX / rkm_expect_end: around the one action that
# must WARN N times at a location REGEX matches (a Python regex searched in
# what follows " at " in "WARNING: CPU: c PID: p at <location>"), for the
# cases a test module cannot bracket itself (protocols: the module prints the
# same markers with pr_info around the call). The harness excuses exactly
# those WARNs and their one "Call Trace:" each; any other report in the
# window, or another count, fails the run (scripts/kreport.py).
# rkm_expect_begin alloc-fail MAX opens a window that excuses up to MAX
# page-allocation-failure and OOM-killer reports (fault injection).
rkm_expect_begin() {
	case "$1" in
	alloc-fail) echo "rkm-expect: begin alloc-fail max=$2" >/dev/kmsg ;;
	*)
		case "$1" in
		'' | *[!0-9]*) echo "rkm_expect_begin: want N REGEX or alloc-fail MAX, not '$*'" >&2 ;;
		esac
		# A malformed marker still goes to the log, which fails the run.
		echo "rkm-expect: begin warn=$1 at=$2" >/dev/kmsg ;;
	esac
}
rkm_expect_end() {
	echo "rkm-expect: end" >/dev/kmsg
}

# rkm_wait_for TIMEOUT_S DESC CMD...: poll CMD every 0.1 s until it succeeds
# (returns 0) or TIMEOUT_S seconds have passed (prints "# timed out after
# TIMEOUT_S s waiting for DESC", returns 1). Instead of a sleep before a
# check: a slow machine waits longer, a fast one not at all, and both give
# the same verdict.
rkm_wait_for() {
	_rkm_t=$1 _rkm_desc=$2
	shift 2
	_rkm_end=$(awk -v t="$_rkm_t" '{ printf "%d", ($1 + t) * 10 }' /proc/uptime)
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		[ "$(awk '{ printf "%d", $1 * 10 }' /proc/uptime)" -lt "$_rkm_end" ] || break
		sleep 0.1
	done
	echo "# timed out after ${_rkm_t} s waiting for $_rkm_desc"
	return 1
}

# Fault injection (CONFIG_FAULT_INJECTION_DEBUG_FS, stack-trace filter).
# rkm_fault_setup KIND MODULE: KIND is failslab or fail_page_alloc. Arms KIND
# so that every allocation fails whose call stack goes through MODULE's core
# (base .. base+size of /proc/modules) in a task with make-it-fail set
# (rkm_make_it_fail) or a fail-nth (rkm_fail_nth), silently (verbose=0), and
# no other. Allocations that may sleep are included (ignore-gfp-wait=N; the
# kernel's default ignores them, for failslab too). The other KIND, if it is
# not armed, is quieted (rkm_fault_off). Returns 1 if MODULE is not loaded or
# KIND does not exist.
rkm_fault_setup() {
	[ -d "/sys/kernel/debug/$1" ] || { echo "# rkm_fault_setup: no /sys/kernel/debug/$1"; return 1; }
	for _rkm_k in failslab fail_page_alloc; do
		[ "$_rkm_k" = "$1" ] || [ "$(cat /sys/kernel/debug/$_rkm_k/probability)" != 0 ] ||
			rkm_fault_off "$_rkm_k"
	done
	_rkm_d=/sys/kernel/debug/$1
	set -- $(awk -v m="$2" '$1 == m { print $2, $6 }' /proc/modules)
	[ $# -eq 2 ] || { echo "# rkm_fault_setup: module not loaded"; return 1; }
	_rkm_start=$(($2))
	_rkm_end=$(($2 + $1))
	# /proc/modules hides the address (0) from whoever may not see it.
	[ "$_rkm_start" -ne 0 ] || { echo "# rkm_fault_setup: no address in /proc/modules"; return 1; }
	echo 0 >"$_rkm_d/probability"
	printf '%#x\n' "$_rkm_start" >"$_rkm_d/require-start" &&
		printf '%#x\n' "$_rkm_end" >"$_rkm_d/require-end" &&
		echo 1 >"$_rkm_d/interval" &&
		echo -1 >"$_rkm_d/times" &&
		echo 0 >"$_rkm_d/space" &&
		echo 0 >"$_rkm_d/verbose" &&
		echo Y >"$_rkm_d/task-filter" &&
		echo N >"$_rkm_d/ignore-gfp-wait" || return 1
	if [ -e "$_rkm_d/min-order" ]; then
		echo N >"$_rkm_d/ignore-gfp-highmem" && echo 0 >"$_rkm_d/min-order" || return 1
	fi
	echo 100 >"$_rkm_d/probability"
}

# rkm_fault_off KIND: probability 0, and a stack filter that matches no
# stack (require-start = require-end = 0), so that KIND does not count
# toward a fail-nth either. (The kernel's default filter matches every
# stack: fail_page_alloc would then count, and fail, SLUB's higher-order
# slab allocations, which do not reclaim, and eat a fail-nth meant for the
# armed kind.) The rest back to the kernel's defaults.
rkm_fault_off() {
	_rkm_d=/sys/kernel/debug/$1
	echo 0 >"$_rkm_d/probability"
	echo N >"$_rkm_d/task-filter"
	echo 0 >"$_rkm_d/require-start"
	echo 0 >"$_rkm_d/require-end"
	echo 1 >"$_rkm_d/times"
	echo Y >"$_rkm_d/ignore-gfp-wait"
	if [ -e "$_rkm_d/min-order" ]; then
		echo Y >"$_rkm_d/ignore-gfp-highmem"
		echo 1 >"$_rkm_d/min-order"
	fi
}

# rkm_fail_nth N CMD...: run CMD in a subshell whose /proc/self/fail-nth is
# N: the N-th allocation the armed filters see in that task fails. Returns
# CMD's status. A program CMD is exec'd, so it is that task; a shell function
# runs in the subshell itself, and the programs it starts do not count (a
# forked task starts with fail-nth 0).
rkm_fail_nth() {
	_rkm_n=$1
	shift
	_rkm_cmd=$(command -v "$1")
	(
		echo "$_rkm_n" >/proc/self/fail-nth || exit 1
		case "$_rkm_cmd" in
		/*) exec "$@" ;;
		*) "$@" ;;
		esac
	)
}

# rkm_make_it_fail PID: let the armed fault injection fail allocations of PID
# (and of the children it forks from now on).
rkm_make_it_fail() {
	echo 1 >"/proc/$1/make-it-fail"
}
