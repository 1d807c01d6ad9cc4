#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Switching zswap's backend under load: DRIVER -> zsmalloc -> DRIVER -> the
# other Rust driver(s) -> DRIVER -> C zbud -> DRIVER while a verified
# workload runs. No byte may be lost; after
# swapoff the old pools drain and are destroyed, nothing is left in the
# driver's pools, and the module unloads.

. "$(dirname "$0")/zpool_lib.sh"
zpool_require_drivers

ktap_print_header
ktap_set_plan $((NDRIVERS * 4))
zswap_on || ktap_exit_fail_msg "could not turn swap and zswap on"

for d in $ZPOOL_DRIVERS; do
	CG=/sys/fs/cgroup/zpool-switch-$d
	zswap_use "$d"
	log=/tmp/switch-$d.log
	memcg_run 64M rkm-memstress --size-mib 96 --threads 2 --seconds 60 >"$log" 2>&1 &
	pid=$!
	switched=ok
	others=
	for o in $ZPOOL_DRIVERS; do
		[ "$o" = "$d" ] || others="$others $o $d"
	done
	for next in zsmalloc "$d" $others zbud "$d"; do
		sleep 8
		zswap_use "$next" || switched="zswap refused $next"
		rkm_msg "$d: zpool is now $(cat $ZSWAP/zpool)"
	done
	wait "$pid"
	rc=$?
	sed 's/^/# /' "$log"
	rkm_check "$d: every switch was taken" test "$switched" = ok
	rkm_check "$d: no byte lost across the switches (exit $rc)" test "$rc" -eq 0
	rmdir "$CG" 2>/dev/null
	zswap_use zsmalloc
	swap_drain
	# zswap destroys emptied pools from a workqueue after an RCU grace period.
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		[ -z "$(ls /sys/kernel/debug/$d 2>/dev/null)" ] && break
		sleep 1
	done
	rkm_check "$d: its pools were destroyed after swapoff" \
		sh -c "[ -z \"\$(ls /sys/kernel/debug/$d 2>/dev/null)\" ] || { ls /sys/kernel/debug/$d; exit 1; }"
	rkm_check "$d: the module unloads" rmmod "$d"
	zswap_on
done

ktap_finished
