# SPDX-License-Identifier: GPL-2.0
#
# Shell helpers for the project's kselftest scripts, on top of the kernel's
# ktap_helpers.sh. A test sources it with
#   . "$(dirname "$0")/../lib/rkm.sh"
# The guest's /init exports:
#   RKM_HDD RKM_SSD RKM_SWAP   the disks (/dev/...), found by serial number
#   RKM_MODULES                the project's module names, space-separated
#   RKM_FLAVOUR                debug or perf

. "$(dirname "$0")/../kselftest/ktap_helpers.sh"

# rkm_skip DESCRIPTION REASON: a skip, with its reason in the directive.
rkm_skip() {
	echo "ok $KTAP_TESTNO $1 # SKIP $2"
	KTAP_TESTNO=$((KTAP_TESTNO + 1))
	KTAP_CNT_SKIP=$((KTAP_CNT_SKIP + 1))
}

# rkm_check DESCRIPTION COMMAND...: pass if COMMAND succeeds; on failure,
# print its output as KTAP diagnostics.
rkm_check() {
	desc=$1
	shift
	if out=$("$@" 2>&1); then
		ktap_test_pass "$desc"
	else
		[ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/# /'
		ktap_test_fail "$desc"
	fi
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
# and print its result and diagnostic lines without header or plan; a load
# or unload that failed adds a "not ok". For programs that merge the results
# of several modules (rkm_ktap_merge).
rkm_module_results() {
	f=/tmp/rkm-ktap.$$
	rkm_module_load "$1" "$f"
	rc=$?
	grep -E '^(not )?ok |^#' "$f"
	if [ "$rc" -ne 0 ]; then
		echo "not ok 0 $1: modprobe failed (exit $rc)"
	else
		rmmod "$1" || echo "not ok 0 $1: rmmod failed"
	fi
	rm -f "$f"
}

# rkm_ktap_merge: KTAP from result lines on stdin (any numbering), numbered
# afresh, with header, plan and totals; exits non-zero if one failed.
rkm_ktap_merge() {
	awk 'BEGIN { print "TAP version 13" }
		/^(not )?ok / {
			ok = ($1 == "ok"); sub(/^(not )?ok [0-9]+ /, "")
			n++; line[n] = (ok ? "ok " : "not ok ") n " " $0
			if (!ok) failed++; else if ($0 ~ /# SKIP/) skipped++; else passed++
			next }
		{ n_diag[n + 1] = n_diag[n + 1] $0 "\n" }
		END {
			print "1.." n
			for (i = 1; i <= n; i++) { printf "%s", n_diag[i]; print line[i] }
			printf "%s", n_diag[n + 1]
			printf "# Totals: pass:%d fail:%d xfail:0 xpass:0 skip:%d error:0\n", passed, failed, skipped
			exit failed > 0 }'
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

# rkm_expect_begin REGEX / rkm_expect_end: around an action that WARNs on
# purpose (a bad handle handed to a pool, say). The harness excuses a WARN's
# "WARNING: CPU: ..." and "Call Trace:" lines between the two markers if a
# kernel line between them matches REGEX; any other report still fails the
# run (scripts/kreport.py).
rkm_expect_begin() {
	echo "rkm-expect: begin $1" >/dev/kmsg
}
rkm_expect_end() {
	echo "rkm-expect: end" >/dev/kmsg
}
