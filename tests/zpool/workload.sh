#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# A verified memory-pressure workload through zswap on each Rust zpool
# driver: rkm-memstress fills 128 MiB with text, binary, random, patterned
# and zero pages in a 64 MiB memory cgroup, on both vCPUs, and checks every
# byte on each pass. The pages must reach zswap (zswpout, stored_pages, the
# driver's own object count), come back (zswpin) and match.

. "$(dirname "$0")/zpool_lib.sh"
zpool_require_drivers

ktap_print_header
ktap_set_plan $((NDRIVERS * 5))
zswap_on || ktap_exit_fail_msg "could not turn swap and zswap on"

for d in $ZPOOL_DRIVERS; do
	CG=/sys/fs/cgroup/zpool-workload-$d
	zswap_use "$d" || { rkm_msg "zswap did not take $d"; }
	log=/tmp/memstress-$d.log
	memcg_run 64M rkm-memstress --size-mib 128 --threads 2 --passes 2 >"$log" 2>&1 &
	pid=$!
	# The largest number of pages zswap and the driver held during the run.
	max_stored=0 max_objects=0
	while kill -0 "$pid" 2>/dev/null; do
		s=$(zswap_stat stored_pages)
		[ "$s" -gt "$max_stored" ] && max_stored=$s
		o=$(cat /sys/kernel/debug/$d/*/objects 2>/dev/null | awk '{ n += $1 } END { print n + 0 }')
		[ "$o" -gt "$max_objects" ] && max_objects=$o
		sleep 1
	done
	wait "$pid"
	rc=$?
	sed 's/^/# /' "$log"
	rkm_check "$d: every byte of the workload came back intact (exit $rc)" test "$rc" -eq 0
	out=$(memcg_stat zswpout) in=$(memcg_stat zswpin)
	rkm_msg "$d: zswpout $out, zswpin $in, max stored_pages $max_stored, max $d objects $max_objects"
	rkm_check "$d: pages went out to zswap (zswpout > 0)" test "${out:-0}" -gt 0
	rkm_check "$d: pages came back from zswap (zswpin > 0)" test "${in:-0}" -gt 0
	rkm_check "$d: zswap stored pages (stored_pages grew)" test "$max_stored" -gt 0
	rkm_check "$d: the driver held them (its objects counter grew)" test "$max_objects" -gt 0
	rmdir "$CG" 2>/dev/null
done

ktap_finished
