#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# What zswap cannot provoke, through each driver's test module
# (test_<driver>.ko), which drives the driver's own pool code: size 0 and
# highmem are EINVAL, too big is ENOSPC, the page count is exact, bad handles
# (double free, stale, foreign, random) are rejected with one report and the
# pool stays intact, a failed page allocation inside malloc (the object page,
# the slot table's leaf) is ENOMEM and changes nothing, and destroying a pool
# that still holds objects is reported with their number and their pages.
#
# The reports WARN on purpose: the test module opens an expected-WARN window
# around each call that must WARN ("rkm-expect: begin warn=1 at=rkm_warn..."
# and "rkm-expect: end" in the kernel log); any other report fails the run.
# The allocation failures come from the task's fail-nth (the kernel's fault
# injection): fail_page_alloc must consider order-0 pages (min-order 0), and
# stays disarmed otherwise (probability 0, no filter).

. "$(dirname "$0")/zpool_lib.sh"
zpool_require_drivers

zpool_fault_off fail_page_alloc
echo 0 >/sys/kernel/debug/fail_page_alloc/min-order

for d in $ZPOOL_DRIVERS; do
	rkm_module_results "test_$d" | sed -E "s/^((not )?ok [0-9]+ )/\\1$d: /"
done | rkm_ktap_merge
status=$?
zpool_fault_off fail_page_alloc
exit "$status"
