#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Harness self-test: a module WARNs, every case says ok. The run must fail
# because of the WARNING in the kernel log.
. "$(dirname "$0")/../lib/rkm.sh"
ktap_print_header
ktap_set_plan 1
rkm_check "fault_warn loads and unloads (and WARNs)" sh -c 'modprobe fault_warn && rmmod fault_warn'
ktap_finished
