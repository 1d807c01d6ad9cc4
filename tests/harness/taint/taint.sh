#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Harness self-test: the kernel is tainted (U, 64: as by a module or a
# driver that taints without a report) and nothing is printed. The run must
# fail on the taint flags at its end.
. "$(dirname "$0")/../lib/rkm.sh"
ktap_print_header
ktap_set_plan 1
rkm_check "taint the kernel U, silently" sh -c 'echo 64 >/proc/sys/kernel/tainted'
ktap_finished
