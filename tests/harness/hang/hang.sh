#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Harness self-test: the guest never finishes. The run must fail on the
# harness's own timeout, not pass and not wait forever.
. "$(dirname "$0")/../lib/rkm.sh"
ktap_print_header
ktap_set_plan 1
rkm_msg "sleeping forever"
sleep 1000000
ktap_test_pass "not reached"
ktap_finished
