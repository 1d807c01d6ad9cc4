#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Harness self-test: one case passes, one fails. The run must fail.
. "$(dirname "$0")/../lib/rkm.sh"
ktap_print_header
ktap_set_plan 2
ktap_test_pass "a case that passes"
ktap_test_fail "a case that fails on purpose"
ktap_finished
