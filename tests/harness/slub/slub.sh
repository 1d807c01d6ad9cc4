#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Harness self-test: SLUB corruption inside an expected-WARN window (the
# WARN it expects happens, once). The old windows hid it; the run must fail
# on the SLUB report ("BUG kmalloc-64 (...)").
. "$(dirname "$0")/../lib/rkm.sh"
ktap_print_header
ktap_set_plan 1
rkm_expect_begin 1 'fault_warn_now\+0x[0-9a-f]+/0x[0-9a-f]+ \[fault_warn\]'
modprobe fault_warn && modprobe fault_slub
rc=$?
rkm_expect_end
rmmod fault_slub fault_warn
[ "$rc" -eq 0 ] && ktap_test_pass "fault_warn and fault_slub load (the expected WARN, and a corruption)" ||
	ktap_test_fail "modprobe failed"
ktap_finished
