#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Switching zswap's backend under load: DRIVER -> zsmalloc -> DRIVER -> the
# other Rust driver(s) -> DRIVER -> C zbud -> DRIVER while a verified
# workload runs. No byte may be lost; after swapoff the old pools drain and
# are destroyed, nothing is left in the driver's pools (no pool was
# destroyed while not empty), and the module unloads.
#
# Each switch waits until the pool in use has taken STORES_PER_POOL stores
# of the workload (the cgroup's zswpout since the switch before), so that
# every pool holds pages when zswap leaves it, whatever the machine's speed;
# the workload is a number of passes, not a time, for the same reason (64
# MiB in a 40 MiB cgroup: its fill and its verifying pass make more stores
# than the 9000 the switches of three Rust drivers need; the pass reads
# every page back from whichever pool holds it).

. "$(dirname "$0")/zpool_lib.sh"
zpool_require_drivers

STORES_PER_POOL=1000

ktap_print_header
ktap_set_plan $((NDRIVERS * 5))
zswap_on || ktap_exit_fail_msg "could not turn swap and zswap on"

# stores_or_done TARGET PID: the cgroup's zswpout reached TARGET, or the
# workload PID has ended (the caller tells which).
stores_or_done() {
	[ "$(memcg_stat zswpout)" -ge "$1" ] 2>/dev/null || ! kill -0 "$2" 2>/dev/null
}

# Whether no pool of driver $1 is left in debugfs.
no_pools() {
	[ -z "$(zpool_pools "$1")" ]
}

for d in $ZPOOL_DRIVERS; do
	CG=/sys/fs/cgroup/zpool-switch-$d
	switched=ok
	zswap_use "$d" || switched="zswap refused $d"
	log=/tmp/switch-$d.log
	memcg_run 40M rkm-memstress --size-mib 64 --threads 2 --passes 1 >"$log" 2>&1 &
	pid=$!
	others=
	for o in $ZPOOL_DRIVERS; do
		[ "$o" = "$d" ] || others="$others $o $d"
	done
	base=0
	for next in zsmalloc "$d" $others zbud "$d" end; do
		cur=$(cat $ZSWAP/zpool)
		target=$((base + STORES_PER_POOL))
		zpool_wait_for 900 "$STORES_PER_POOL stores into $cur" stores_or_done "$target" "$pid"
		base=$(memcg_stat zswpout)
		if [ "${base:-0}" -lt "$target" ]; then
			[ "$switched" = ok ] && switched="the workload ended before $cur took $STORES_PER_POOL stores"
			break
		fi
		[ "$next" = end ] && break
		zswap_use "$next" || { [ "$switched" = ok ] && switched="zswap refused $next"; }
		rkm_msg "$d: $cur took its stores (zswpout $base), zpool is now $(cat $ZSWAP/zpool)"
		rkm_dmesg_mark "$d: $cur took its stores (zswpout $base), zpool is now $(cat $ZSWAP/zpool)"
	done
	wait "$pid"
	rc=$?
	sed 's/^/# /' "$log"
	rkm_msg "$d: the workload made $(memcg_stat zswpout) zswap stores in all"
	rkm_check "$d: every switch was taken, each pool after its stores ($switched)" test "$switched" = ok
	rkm_check "$d: no byte lost across the switches (exit $rc)" test "$rc" -eq 0
	rmdir "$CG" 2>/dev/null
	zswap_use zsmalloc
	swap_drain
	# zswap destroys emptied pools from a workqueue after an RCU grace period.
	zpool_wait_for 120 "the $d pools to be destroyed" no_pools "$d"
	rkm_check "$d: its pools were destroyed after swapoff" \
		sh -c "[ -z \"\$(ls -d /sys/kernel/debug/$d/*/ 2>/dev/null)\" ] || { ls /sys/kernel/debug/$d; exit 1; }"
	leaked=$(cat /sys/kernel/debug/$d/leaked_pools /sys/kernel/debug/$d/leaked_objects 2>/dev/null | tr '\n' ' ')
	rkm_check "$d: no pool was destroyed while not empty (leaked pools, objects: $leaked)" \
		test "$leaked" = "0 0 "
	rkm_check "$d: the module unloads" rmmod "$d"
	zswap_on
done

ktap_finished
