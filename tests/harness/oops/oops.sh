#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Harness self-test: a module oopses; the case still says ok. The run must
# fail because of the oops in the kernel log.
. "$(dirname "$0")/../lib/rkm.sh"
ktap_print_header
ktap_set_plan 1
modprobe fault_oops
ktap_test_pass "modprobe fault_oops returned (the oops killed it)"
ktap_finished
