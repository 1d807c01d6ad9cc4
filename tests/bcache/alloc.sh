#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# bcache_rs when memory runs out, by fault injection confined to the
# module's own code (failslab and fail_page_alloc with a stack-trace filter
# on the module's range, in the one task that is tested):
#   - `register_cache` and `register_dev` with their n-th allocation failed,
#     for every n until one succeeds: each failure is an errno, leaves
#     nothing registered and nothing held (no directory, no disk, no claim
#     on the devices), and a later registration works;
#   - verified I/O whose allocations fail one time in ten: fills and
#     writethrough copies that get no pages are skipped (counted), bios
#     complete, no read is wrong, nothing hangs.

. "$(dirname "$0")/bcache_lib.sh"

bc_reset >/dev/null 2>&1
ktap_print_header
ktap_set_plan 4

DBG=/sys/kernel/debug

# arm KIND: failures of KIND (failslab, fail_page_alloc) only for tasks
# with make-it-fail or fail-nth, and only in bcache_rs's code.
arm() {
	set -- "$1" $(awk '$1 == "bcache_rs" { print $6, $2 }' /proc/modules)
	[ -n "$2" ] || { echo "bcache_rs is not loaded"; return 1; }
	d=$DBG/$1
	echo 0 >$d/probability && echo 1 >$d/interval && echo -1 >$d/times &&
		echo 0 >$d/verbose && echo Y >$d/task-filter && echo N >$d/ignore-gfp-wait &&
		echo "$2" >$d/require-start && printf '0x%x\n' $(($2 + $3)) >$d/require-end || return 1
	if [ "$1" = fail_page_alloc ]; then
		echo N >$d/ignore-gfp-highmem && echo 0 >$d/min-order
	fi
}
disarm() {
	rkm_fault_off failslab
	rkm_fault_off fail_page_alloc
}

# nth_register FILE LINE CLEAN: write LINE to FILE with the n-th allocation
# failed, n = 1, 2, ... until the write succeeds; after each failure CLEAN
# (a command) must hold. Prints how many allocations were failed.
nth_register() {
	n=1
	while [ $n -le 300 ]; do
		# The shell's own write (echo is a builtin): the same task.
		out=$(sh -c "echo $n >/proc/self/fail-nth && echo '$2' >'$1'" 2>&1)
		if [ $? = 0 ]; then
			echo $((n - 1))
			return 0
		fi
		case "$out" in
		*"Cannot allocate memory"*) ;;
		*) echo "failure $n: '$out' (not ENOMEM)" >&2 ;;
		esac
		"$3" || { echo "after failure $n: $($3 2>&1)"; return 1; }
		n=$((n + 1))
	done
	echo "still failing after $n allocations"
	return 1
}

no_cache() {
	test ! -e "$BC/cache" && [ -z "$(bc_holders "$RKM_SSD")" ] &&
		! grep -q "cache" /sys/kernel/bcache_rs/*/set_uuid 2>/dev/null
}
no_dev() {
	test ! -e /sys/block/bcache_rs0 && [ -z "$(bc_holders "$RKM_HDD")" ] &&
		[ "$(cat $BC/cache/attached)" = 0 ]
}

reg_cache() {
	bc_load && bc_format --size 64M --bucket-size 64k && arm failslab && arm fail_page_alloc ||
		return 1
	rkm_expect_begin alloc-fail 300
	n=$(nth_register "$BC/register_cache" "$RKM_SSD" no_cache) || { echo "$n"; disarm; rkm_expect_end; return 1; }
	disarm
	rkm_expect_end
	bc_note "register_cache: $n allocations failed in turn, each refused cleanly"
	# How many allocations the filter sees varies: the stack walk finds
	# the module's C frames, its Rust frames not always.
	[ "$n" -ge 1 ] || { echo "no allocation was failed: is the filter on the module?"; return 1; }
	test -d "$BC/cache"
}
rkm_check "register_cache with each allocation failed in turn: an errno, nothing half-registered" reg_cache

reg_dev() {
	arm failslab && arm fail_page_alloc || return 1
	rkm_expect_begin alloc-fail 300
	n=$(nth_register "$BC/register_dev" "$UUID0 $RKM_HDD" no_dev) || { echo "$n"; disarm; rkm_expect_end; return 1; }
	disarm
	rkm_expect_end
	bc_note "register_dev: $n allocations failed in turn, each refused cleanly"
	[ "$n" -ge 1 ] || { echo "no allocation was failed"; return 1; }
	[ "$(bc_stat 0 state)" = cached ] || { echo "state $(bc_stat 0 state)"; return 1; }
}
rkm_check "register_dev (and its attach) with each allocation failed in turn: clean refusals" reg_dev

io() {
	bc_write /sys/block/bcache_rs0/bcache_rs/sequential_cutoff 0 || return 1
	arm failslab && arm fail_page_alloc || return 1
	echo 10 >$DBG/failslab/probability && echo 10 >$DBG/fail_page_alloc/probability || return 1
	a0=$(bc_stat 0 alloc_failures)
	# The page allocator's failure reports are rate-limited (10 per 5 s).
	rkm_expect_begin alloc-fail 200
	sh -c 'echo 1 >/proc/self/make-it-fail && exec rkm-blkverify race --dev /dev/bcache_rs0 \
		--offset 0 --size 96M --seconds 25 --threads 2 --init --read-pct 60 \
		--max-blocks 16 --seed 7' >/tmp/race-alloc.log 2>&1
	rc=$?
	disarm
	rkm_expect_end
	a1=$(bc_stat 0 alloc_failures)
	bc_note "$(grep -E '^blkverify: race ' /tmp/race-alloc.log | tail -n 1); skipped for lack of memory: $a0 -> $a1"
	[ "$rc" = 0 ] || { tail -n 20 /tmp/race-alloc.log; return 1; }
	[ "$a1" -gt "$a0" ] || { echo "no allocation failed (alloc_failures $a1)"; return 1; }
}
rkm_check "verified I/O with one allocation in ten failed: nothing wrong, nothing hangs" io

down() {
	disarm
	bc_stop 0 && bc_unregister && rmmod bcache_rs
}
rkm_check "stop, unregister and unload after the allocation failures" down

ktap_finished
