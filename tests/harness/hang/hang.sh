#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Harness self-test: a module's init blocks in D state (fault_hang) and the
# console falls silent. The run must fail on the harness's inactivity
# watchdog, with the blocked-task dump (task:modprobe ... state:D) in its
# report.
. "$(dirname "$0")/../lib/rkm.sh"
ktap_print_header
ktap_set_plan 1
rkm_msg "loading fault_hang, which never returns"
modprobe fault_hang
ktap_test_fail "not reached: modprobe fault_hang returned"
ktap_finished
