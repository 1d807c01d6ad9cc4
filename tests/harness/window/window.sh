#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Harness self-test: expected-WARN windows that do not match what happens.
# The WARN of fault_warn in a window that expects 2 of them (a count), then
# in one that expects a WARN at another location. Every case says ok; the
# run must fail on both windows.
. "$(dirname "$0")/../lib/rkm.sh"
ktap_print_header
ktap_set_plan 2
warn_once() {
	modprobe fault_warn && rmmod fault_warn
}
rkm_expect_begin 2 'fault_warn_now\+0x[0-9a-f]+/0x[0-9a-f]+ \[fault_warn\]'
rkm_check "fault_warn WARNs once in a window that expects 2" warn_once
rkm_expect_end
rkm_expect_begin 1 'rkm_warn\+0x[0-9a-f]+/0x[0-9a-f]+ \[zbud_rs\]'
rkm_check "fault_warn WARNs in a window that expects zbud_rs's WARN" warn_once
rkm_expect_end
ktap_finished
