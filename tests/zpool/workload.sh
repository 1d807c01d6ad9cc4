#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# A verified memory-pressure workload through zswap on each Rust zpool
# driver, with the driver's page allocations failing for a while: from an
# empty zswap, rkm-memstress fills 48 MiB with text, binary, random,
# patterned and zero pages in a 24 MiB memory cgroup, on both vCPUs, and
# checks every byte on each pass. The pages must reach zswap (zswpout,
# stored_pages, the driver's own object count), come back (zswpin) and
# match.
#
# Counters against zswap's: every SNAP_EVERY stores (the cgroup's zswpout,
# so that the number of checks does not depend on the machine's speed) the
# workload is stopped (SIGSTOP) for a quiet snapshot of the pools' debugfs
# counters and zswap's, on which zpool_relations must hold exactly: in
# each pool, total_pages is its pages plus its table pages, and its pages
# and objects are those of its pages by number of objects; over the pools,
# the objects are zswap's stored_pages and the pages its pool_total_size.
#
# Allocation failures: the workload's tasks are marked make-it-fail. After
# FAULTS_AFTER stores, fail_page_alloc is armed for the allocations whose
# call stack goes through the driver's module (its object pages and its
# slot table's pages; zpool_fault_setup) until zswap rejected REJECTS
# stores, then disarmed, the workload paused at both ends so that the
# counters read there are those of whole stores. zswap's reject_alloc_fail
# and the driver's reject_no_memory must grow by the same number (each
# rejection is the driver's ENOMEM), a quiet snapshot with the faults armed
# must pass, and STORES stores must go through afterwards. Nothing may be
# lost or corrupted (memstress checks every byte).
#
# At the end, swapoff empties the pool, still zswap's: its counters must
# all be 0; then zswap leaves it and it must be destroyed without a leak
# report (the driver's leaked_pools and leaked_objects stay 0).
#
# (The in-kernel side of the failures, each page allocation inside one
# malloc failing in turn with ENOMEM and the pool unchanged, is edges.sh's.)

. "$(dirname "$0")/zpool_lib.sh"
zpool_require_drivers

# Stores between two quiet snapshots, and the snapshots a run must take
# with pages in zswap.
SNAP_EVERY=2000
SNAP_MIN=3
# When the faults start, how many rejected stores they last, and how many
# stores must go through after them.
FAULTS_AFTER=2000
REJECTS=300
STORES=1000

ktap_print_header
ktap_set_plan $((NDRIVERS * 13))
zswap_on || ktap_exit_fail_msg "could not turn swap and zswap on"

no_pools() {
	[ -z "$(zpool_pools "$1")" ]
}

# snapshot D: a quiet check, counted in snaps, busy (with pages in zswap)
# and bad, and noted in the kernel log (which also shows the harness that
# the long run is alive).
snapshot() {
	zpool_quiet_check "/tmp/snapshot-$1" >"/tmp/snapshot-$1.log" 2>&1
	case $? in
	0)
		snaps=$((snaps + 1))
		stored=$(awk '$1 ~ /stored_pages$/ { print $2 }' "/tmp/snapshot-$1")
		[ "${stored:-0}" -gt 0 ] && busy=$((busy + 1))
		rkm_dmesg_mark "$1: quiet snapshot $snaps ok, stored_pages ${stored:-0}"
		return 0
		;;
	1)
		bad=$((bad + 1))
		cat "/tmp/snapshot-$1.log" >>"/tmp/snapshots-$1.log"
		rkm_dmesg_mark "$1: quiet snapshot wrong: $(grep -m 1 -v 'quiet snapshot' "/tmp/snapshot-$1.log")"
		return 1
		;;
	esac
}

for d in $ZPOOL_DRIVERS; do
	CG=/sys/fs/cgroup/zpool-workload-$d
	swap_drain
	zswap_on
	rkm_check "$d: zswap selects it, from an empty zswap" \
		sh -c "echo $d >$ZSWAP/zpool && [ \"\$(cat $ZSWAP/zpool)\" = $d ] &&
			[ \"\$(cat $ZDEBUG/stored_pages)\" -eq 0 ]"
	log=/tmp/memstress-$d.log
	memcg_run_failing 24M rkm-memstress --size-mib 48 --threads 2 --passes 2 >"$log" 2>&1 &
	pid=$!
	# The largest number of pages zswap and the driver held during the run.
	max_stored=0 max_objects=0
	snaps=0 busy=0 bad=0 next_snap=$SNAP_EVERY
	: >"/tmp/snapshots-$d.log"
	# Faults: 0 before, 1 armed, 2 after.
	faults=0 armed=1 armed_snap=1 rej0=0 rej1=0 nomem0=0 nomem1=0 out1=0
	while kill -0 "$pid" 2>/dev/null; do
		s=$(zswap_stat stored_pages)
		[ "$s" -gt "$max_stored" ] && max_stored=$s
		o=$(zpool_sum "$d" objects)
		[ "$o" -gt "$max_objects" ] && max_objects=$o
		stores=$(memcg_stat zswpout)
		stores=${stores:-0}
		if [ "$faults" -eq 0 ] && [ "$stores" -ge "$FAULTS_AFTER" ] && zpool_pause; then
			rej0=$(zswap_stat reject_alloc_fail) nomem0=$(zpool_sum "$d" reject_no_memory)
			zpool_fault_setup fail_page_alloc "$d"
			armed=$?
			faults=1
			rkm_dmesg_mark "$d: page allocations through $d fail from now on (status $armed)"
			zpool_resume
		elif [ "$faults" -eq 1 ] && [ "$(zswap_stat reject_alloc_fail)" -ge $((rej0 + REJECTS)) ]; then
			snapshot "$d"
			armed_snap=$?
			if zpool_pause; then
				zpool_fault_off fail_page_alloc
				rej1=$(zswap_stat reject_alloc_fail) nomem1=$(zpool_sum "$d" reject_no_memory)
				out1=$(memcg_stat zswpout)
				faults=2
				rkm_dmesg_mark "$d: page allocations no longer fail ($((rej1 - rej0)) stores rejected)"
				zpool_resume
			fi
		elif [ "$stores" -ge "$next_snap" ]; then
			next_snap=$((stores + SNAP_EVERY))
			snapshot "$d"
		fi
		sleep 1
	done
	wait "$pid"
	rc=$?
	if [ "$faults" -eq 1 ]; then
		zpool_fault_off fail_page_alloc
		rej1=$(zswap_stat reject_alloc_fail) nomem1=$(zpool_sum "$d" reject_no_memory)
		out1=$(memcg_stat zswpout)
	fi
	sed 's/^/# /' "$log"
	rkm_check "$d: every byte of the workload came back intact (exit $rc)" test "$rc" -eq 0
	out=$(memcg_stat zswpout) in=$(memcg_stat zswpin)
	rkm_msg "$d: zswpout $out, zswpin $in, max stored_pages $max_stored, max $d objects $max_objects"
	rkm_check "$d: pages went out to zswap (zswpout > 0)" test "${out:-0}" -gt 0
	rkm_check "$d: pages came back from zswap (zswpin > 0)" test "${in:-0}" -gt 0
	rkm_check "$d: zswap stored pages (stored_pages grew)" test "$max_stored" -gt 0
	rkm_check "$d: the driver held them (its objects counter grew)" test "$max_objects" -gt 0
	rkm_msg "$d: $snaps quiet snapshots ($busy with pages in zswap), $bad wrong"
	rkm_check "$d: its counters matched zswap's at every quiet snapshot (at least $SNAP_MIN with pages)" \
		sh -c "cat /tmp/snapshots-$d.log; [ $bad -eq 0 ] && [ $busy -ge $SNAP_MIN ]"

	rkm_msg "$d: faults from $FAULTS_AFTER stores: reject_alloc_fail +$((rej1 - rej0)), $d reject_no_memory +$((nomem1 - nomem0)), then $(($(memcg_stat zswpout) - out1)) stores"
	rkm_check "$d: fault injection armed on its page allocations, then disarmed after the rejections" \
		test "$faults" -eq 2 -a "$armed" -eq 0
	rkm_check "$d: zswap rejected $REJECTS stores or more while they failed, and the pool's counters matched zswap's" \
		test $((rej1 - rej0)) -ge "$REJECTS" -a "$armed_snap" -eq 0
	rkm_check "$d: every rejection was the driver's ENOMEM (its reject_no_memory grew as much)" \
		test $((nomem1 - nomem0)) -eq $((rej1 - rej0))
	rkm_check "$d: $STORES stores or more went through after the faults" \
		test $(($(memcg_stat zswpout) - out1)) -ge "$STORES"
	rmdir "$CG" 2>/dev/null

	# swapoff with the pool still zswap's: it empties, and stays until
	# zswap leaves it.
	swap_drain
	counts=$(for f in objects pages table_pages total_pages; do zpool_sum "$d" $f; done | tr '\n' ' ')
	rkm_check "$d: its counters went back to 0 after swapoff (objects, pages, table pages, total: $counts)" \
		test "$counts" = "0 0 0 0 "
	zswap_use zsmalloc
	zpool_wait_for 120 "the $d pools to be destroyed" no_pools "$d"
	leaked=$(cat /sys/kernel/debug/$d/leaked_pools /sys/kernel/debug/$d/leaked_objects 2>/dev/null | tr '\n' ' ')
	rkm_check "$d: its pools were destroyed without a leak report (leaked pools, objects: $leaked)" \
		sh -c "[ -z \"\$(ls -d /sys/kernel/debug/$d/*/ 2>/dev/null)\" ] && [ '$leaked' = '0 0 ' ]"
	zswap_on
done

ktap_finished
