#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Each Rust zpool driver's pool under one kernel thread per online CPU, all
# on one pool: stress_<driver>.ko (rust/kglue/zpool_stress.rs) runs malloc,
# map, write, unmap, map, check and free on every CPU with every object's
# bytes (its handle, a generation) checked on every map, frees objects other
# threads allocated, checks the pool's invariants and total_pages under
# its lock while the threads run, and must leave the pool empty. Its four
# KTAP cases per driver are merged here; the first fails unless there were
# at least two CPUs and one thread ran on each. The suite's settings ask
# for a 4-vCPU guest; the module says how many threads it used.

. "$(dirname "$0")/zpool_lib.sh"
zpool_require_drivers

{
	rkm_msg "guest CPUs: $(nproc) online${RKM_CPUS:+, $RKM_CPUS booted}"
	for d in $ZPOOL_DRIVERS; do
		rkm_module_results "stress_$d" | sed -E "s/^((not )?ok [0-9]+ )/\\1$d: /"
	done
} | rkm_ktap_merge
