#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Harness self-test: a suite whose settings ask for 1 vCPU and 1 GiB runs in
# a boot of its own, with RKM_CPUS set to what was booted. This one passes.
. "$(dirname "$0")/../lib/rkm.sh"
ktap_print_header
ktap_set_plan 2
rkm_check "RKM_CPUS is 1" test "$RKM_CPUS" = 1
rkm_check "1 CPU online" test "$(nproc)" -eq 1
ktap_finished
