#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# bcache_rs under constant eviction: an 8 MiB cache (the first 8 MiB of the
# NVMe image, 64 KiB buckets) in front of two backing devices, with verified
# fio workloads on both at once (both CPUs, many bios in flight) over far
# more data than the cache holds. No stale read, ever: fio verifies every
# block; the buckets are invalidated over and over, and the background pass
# removes the stale extents.

. "$(dirname "$0")/bcache_lib.sh"

bc_reset >/dev/null 2>&1
ktap_print_header
ktap_set_plan 5

setup() {
	bc_load && bc_format --size 8M --bucket-size 64k &&
		bc_write "$BC/register_cache" "$RKM_SSD" &&
		bc_write "$BC/register_dev" "$UUID0 $RKM_HDD" &&
		bc_write "$BC/register_dev" "$UUID1 $RKM_SWAP" || return 1
	buckets=$(cat $BC/cache/buckets_total)
	bc_note "a cache of $buckets buckets of $(cat $BC/cache/bucket_size) bytes"
	[ "$buckets" -le 128 ] || { echo "$buckets buckets: not a small cache"; return 1; }
	# Random I/O only: no bypass.
	bc_write /sys/block/bcache_rs0/bcache_rs/sequential_cutoff 0 &&
		bc_write /sys/block/bcache_rs1/bcache_rs/sequential_cutoff 0
}
rkm_check "an 8 MiB cache with two backing devices" setup

# fio DEV SEED: write 24 MiB at random, then read it back and verify it
# twice over (the reads miss, fill and evict), with 16 bios in flight.
fio_verify() {
	fio --output-format=terse --terse-version=3 --minimal --filename="$1" \
		--name=evict --ioengine=libaio --iodepth=16 --direct=1 --size=24M \
		--rw=randwrite --bs=8k --verify=crc32c --verify_backlog=0 \
		--randseed="$2" >/dev/null 2>"/tmp/fio-$2.err" || { cat "/tmp/fio-$2.err"; return 1; }
	for pass in 1 2; do
		fio --output-format=terse --terse-version=3 --minimal --filename="$1" \
			--name=evict --ioengine=libaio --iodepth=16 --direct=1 --size=24M \
			--rw=randwrite --bs=8k --verify=crc32c --verify_only=1 \
			--randseed="$2" >/dev/null 2>"/tmp/fio-$2.err" || { cat "/tmp/fio-$2.err"; return 1; }
	done
}

both() {
	fio_verify /dev/bcache_rs0 11 >/tmp/a.log 2>&1 &
	a=$!
	fio_verify /dev/bcache_rs1 12 >/tmp/b.log 2>&1 &
	b=$!
	wait $a || { cat /tmp/a.log; return 1; }
	wait $b || { cat /tmp/b.log; return 1; }
}
rkm_check "verified fio on both devices at once, 3x the cache's size each" both

evicted() {
	inv=$(cat $BC/cache/invalidated)
	bc_note "invalidated $inv buckets; hits $(bc_stat 0 hits)+$(bc_stat 1 hits)," \
		"fills $(bc_stat 0 fills)+$(bc_stat 1 fills)," \
		"collisions $(bc_stat 0 miss_collisions)+$(bc_stat 1 miss_collisions)"
	[ "$inv" -gt 50 ] || { echo "only $inv buckets invalidated"; return 1; }
	[ "$(bc_stat 0 hits)" -gt 0 ] && [ "$(bc_stat 1 hits)" -gt 0 ] ||
		{ echo "no hits on one of the devices"; return 1; }
}
rkm_check "buckets were invalidated over and over, and both devices hit" evicted

bounded() {
	# The background pass runs after invalidations; give it a moment.
	sleep 1
	entries=$(cat $BC/cache/index_entries)
	stale=$(cat $BC/cache/stale_dropped)
	bc_note "index: $entries extents ($(cat $BC/cache/index_memory) bytes), $stale stale removed"
	# Each 64 KiB bucket holds at most eight 8 KiB extents.
	max=$(($(cat $BC/cache/buckets_total) * 8))
	[ "$entries" -le "$max" ] || { echo "$entries extents for at most $max live ones"; return 1; }
	[ "$stale" -gt 0 ] || { echo "no stale extent was removed"; return 1; }
}
rkm_check "stale extents are removed: the index stays within the cache's size" bounded

down() {
	bc_stop 0 && bc_stop 1 && bc_unregister && rmmod bcache_rs
}
rkm_check "stop, unregister and unload" down

ktap_finished
