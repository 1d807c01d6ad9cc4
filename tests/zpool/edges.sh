#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# What zswap cannot provoke, through each driver's test module
# (test_<driver>.ko), which drives the driver's own pool code: size 0 and
# highmem are EINVAL, too big is ENOSPC, the page count is exact, bad handles
# (double free, stale, foreign, random) are rejected with one report and the
# pool stays intact, and destroying a pool that still holds an object is
# reported. Those reports WARN on purpose: they are expected, any other
# report fails the run.

. "$(dirname "$0")/zpool_lib.sh"
zpool_require_drivers

for d in $ZPOOL_DRIVERS; do
	rkm_expect_begin "$d: (bad handle|pool destroyed while not empty)"
	rkm_module_results "test_$d" | sed -E "s/^((not )?ok [0-9]+ )/\\1$d: /"
	rkm_expect_end
done | rkm_ktap_merge
