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
ktap_set_plan 7

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
	# The verified passes read in the order they wrote, a loop three times
	# the cache: a recency-aware cache (rightly) misses all of it. Reads
	# with a hot set then hit.
	for n in 0 1; do
		fio --output-format=terse --minimal --filename=/dev/bcache_rs$n --name=z \
			--ioengine=libaio --iodepth=16 --direct=1 --size=24M --rw=randread --bs=8k \
			--random_distribution=zipf:1.2 --number_ios=3000 --randseed=$((20 + n)) \
			>/dev/null || return 1
	done
	bc_note "invalidated $inv buckets; hits $(bc_stat 0 hits)+$(bc_stat 1 hits)," \
		"fills $(bc_stat 0 fills)+$(bc_stat 1 fills)," \
		"collisions $(bc_stat 0 miss_collisions)+$(bc_stat 1 miss_collisions)"
	[ "$inv" -gt 50 ] || { echo "only $inv buckets invalidated"; return 1; }
	[ "$(bc_stat 0 hits)" -gt 0 ] && [ "$(bc_stat 1 hits)" -gt 0 ] ||
		{ echo "no hits on one of the devices"; return 1; }
}
rkm_check "buckets were invalidated over and over, and hot reads hit on both devices" evicted

bounded() {
	# Each 64 KiB bucket holds at most eight 8 KiB extents; the background
	# pass (queued by the invalidations) removes the stale ones.
	max=$(($(cat $BC/cache/buckets_total) * 8))
	rkm_wait_for 30 "$(cat $BC/cache/index_entries) extents for at most $max live ones" \
		sh -c "[ \$(cat $BC/cache/index_entries) -le $max ]" || return 1
	stale=$(cat $BC/cache/stale_dropped)
	bc_note "index: $(cat $BC/cache/index_entries) extents ($(cat $BC/cache/index_memory) bytes), $stale stale removed"
	[ "$stale" -gt 0 ] || { echo "no stale extent was removed"; return 1; }
}
rkm_check "stale extents are removed: the index stays within the cache's size" bounded

down() {
	bc_stop 0 && bc_stop 1 && bc_unregister && rmmod bcache_rs
}
rkm_check "stop, unregister and unload" down

# seqread DEV OFFSET_MIB SIZE_MIB: a sequential read in 16 KiB requests.
seqread() {
	fio --output-format=terse --minimal --filename="$1" --name=s --ioengine=libaio \
		--iodepth=8 --direct=1 --rw=read --bs=16k --offset="$2"M --size="$3"M >/dev/null
}

# recency: a cache of thousands of buckets full of older data, part of it
# hot, then one pass over as much new data as the cache holds: the most
# recently filled quarter of the pass is still cached. Then a long churn:
# every bucket is reused (the spread of reuse is reported).
recency() {
	bc_load && bc_format --size 36M --bucket-size 16k &&
		bc_write "$BC/register_cache" "$RKM_SSD" &&
		bc_write "$BC/register_dev" "$UUID0 $RKM_HDD" &&
		bc_write /sys/block/bcache_rs0/bcache_rs/sequential_cutoff 0 || return 1
	n=$(cat $BC/cache/buckets_total)
	mib=$((n * 16 / 1024))
	[ "$n" -ge 2048 ] || { echo "$n buckets: not thousands"; return 1; }
	seqread /dev/bcache_rs0 0 "$mib" || return 1
	# Some of the old data is hot.
	fio --output-format=terse --minimal --filename=/dev/bcache_rs0 --name=h --ioengine=libaio \
		--iodepth=8 --direct=1 --rw=randread --bs=16k --size="$mib"M --number_ios=2000 \
		--randseed=9 >/dev/null || return 1
	seqread /dev/bcache_rs0 512 "$mib" || return 1
	h0=$(bc_stat 0 hits) m0=$(bc_stat 0 misses)
	q=$((mib / 4))
	seqread /dev/bcache_rs0 $((512 + mib - q)) "$q" || return 1
	h1=$(bc_stat 0 hits) m1=$(bc_stat 0 misses)
	want=$((q * 64))
	bc_note "$n buckets; re-reading the pass's last $q MiB: $((h1 - h0)) hits, $((m1 - m0)) misses (want $want hits)"
	[ $((h1 - h0)) = "$want" ] && [ "$m1" = "$m0" ] ||
		{ echo "the most recent quarter of the pass was evicted"; return 1; }
	# Churn: random reads over eight times the cache, twice as many as it
	# has buckets.
	fio --output-format=terse --minimal --filename=/dev/bcache_rs0 --name=c --ioengine=libaio \
		--iodepth=8 --direct=1 --rw=randread --bs=16k --offset=1G --size=$((mib * 8))M \
		--number_ios=$((n * 2)) --randseed=10 >/dev/null || return 1
	reuse=$(cat $BC/cache/bucket_reuse)
	bc_note "after $((n * 2)) random fills: each bucket invalidated between ${reuse% *} and ${reuse#* } times ($(cat $BC/cache/invalidated) in all)"
	[ "${reuse% *}" -ge 1 ] || { echo "a bucket was never reused: $reuse"; return 1; }
}
rkm_check "recency: a pass of the cache's size keeps its last quarter; churn reuses every bucket" recency

# index_limit: the index's memory stays within index_memory_max under
# scattered 4 KiB fills; reads stay right.
index_limit() {
	m=$(cat $BC/cache/index_memory_max)
	[ "$m" = $((64 << 20)) ] || { echo "default index_memory_max $m"; return 1; }
	bc_expect_err "$BC/cache/index_memory_max" 1k "Invalid argument" || return 1
	bc_write "$BC/cache/index_memory_max" 16k || return 1
	rkm-blkverify fill --dev /dev/bcache_rs0 --offset 1G --size 128M --seed 11 >/dev/null || return 1
	fio --output-format=terse --minimal --filename=/dev/bcache_rs0 --name=i --ioengine=libaio \
		--iodepth=8 --direct=1 --rw=randread --bs=4k --offset=1G --size=128M \
		--number_ios=6000 --randseed=12 >/dev/null || return 1
	mem=$(cat $BC/cache/index_memory) ev=$(cat $BC/cache/index_evictions)
	bc_note "index: $(cat $BC/cache/index_entries) extents in $mem bytes (limit 16384), $ev buckets evicted for memory"
	[ "$mem" -le $((16384 + 8 * 512)) ] || { echo "index memory $mem over the limit"; return 1; }
	[ "$ev" -gt 0 ] || { echo "nothing was evicted for memory"; return 1; }
	rkm-blkverify verify --dev /dev/bcache_rs0 --offset 1G --size 128M --seed 11 --version 1 \
		>/tmp/v.log 2>&1 || { cat /tmp/v.log; return 1; }
	bc_stop 0 && bc_unregister && rmmod bcache_rs
}
rkm_check "index_memory_max bounds the index: it evicts, and reads stay right" index_limit

ktap_finished
