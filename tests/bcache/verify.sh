#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Data checks that see stale data: rkm-blkverify (tools/blkverify) writes
# blocks over and over while they are cached and reads them back between
# the writes, on both CPUs at once, the same blocks read and written from
# both CPUs (fills racing writes), over a hot set three times the size of a
# small cache (constant eviction), with flushes, FUA writes, write-zeroes
# and discards, and checks every read against the versions that were
# acknowledged: never older than the last write completed before the read
# began. In every cache mode, with mode switches under I/O, across a cache
# attached under I/O, and against a reader whose buffer another thread
# scribbles on (the cache must hold the disk's bytes, not the buffer's).

. "$(dirname "$0")/bcache_lib.sh"

bc_reset >/dev/null 2>&1
ktap_print_header
ktap_set_plan 9

D0=/sys/block/bcache_rs0/bcache_rs
# The hot set: 48 MiB at 64 MiB on the HDD; the cache holds 16 MiB.
HOT="--offset 64M --size 48M"
BV="rkm-blkverify"

# race LOG ARGS...: rkm-blkverify race on bcache_rs0's hot set; its summary
# line is a diagnostic, its errors the case's output.
race() {
	log=$1
	shift
	$BV race --dev /dev/bcache_rs0 $HOT "$@" >"$log" 2>&1
	rc=$?
	bc_note "$(grep -E '^blkverify: race ' "$log" | tail -n 1)"
	[ "$rc" = 0 ] || { tail -n 20 "$log"; echo "rkm-blkverify race exited $rc"; return 1; }
}

setup() {
	bc_load && bc_format --size 16M --bucket-size 64k &&
		bc_write "$BC/register_cache" "$RKM_SSD" &&
		bc_write "$BC/register_dev" "$UUID0 $RKM_HDD" || return 1
	bc_write $D0/sequential_cutoff 0
}
rkm_check "a 16 MiB cache in front of the HDD as bcache_rs0" setup

# mode_race MODE: 20 s of overwrites, reads, zeroouts and discards in MODE.
mode_race() {
	bc_write $D0/cache_mode "$1" || return 1
	i0=$(cat $BC/cache/invalidated) h0=$(bc_stat 0 hits)
	race /tmp/race-$1.log --seconds 20 --threads 2 --init --read-pct 50 \
		--zero-pct 4 --discard-pct 4 --discard-zeroes --max-blocks 8 \
		--fsync-every 64 --dsync-pct 10 --seed 101 || return 1
	i1=$(cat $BC/cache/invalidated) h1=$(bc_stat 0 hits)
	bc_note "$1: hits $h0 -> $h1, buckets invalidated $i0 -> $i1"
	if [ "$1" != none ]; then
		[ "$h1" -gt "$h0" ] || { echo "no read hit in $1"; return 1; }
		[ "$i1" -gt "$i0" ] || { echo "no eviction in $1"; return 1; }
	else
		[ "$h1" = "$h0" ] || { echo "reads hit in mode none: $h0 -> $h1"; return 1; }
	fi
}
for m in writethrough writearound none; do
	rkm_check "$m: overwritten blocks read back between writes from both CPUs, never stale" \
		mode_race $m
done

# documented: a writearound write is not cached (a read of it misses and
# fills), a writethrough write is (it hits), none neither fills nor hits.
documented() {
	f0=$(bc_stat 0 fills)
	bc_write $D0/cache_mode writearound || return 1
	dd if=/dev/urandom of=/dev/bcache_rs0 bs=64k count=1 seek=4096 oflag=direct 2>/dev/null || return 1
	h0=$(bc_stat 0 hits)
	dd if=/dev/bcache_rs0 of=/dev/null bs=64k count=1 skip=4096 iflag=direct 2>/dev/null || return 1
	h1=$(bc_stat 0 hits) f1=$(bc_stat 0 fills)
	[ "$h1" = "$h0" ] && [ "$f1" -gt "$f0" ] ||
		{ echo "writearound: the write was cached (hits $h0 -> $h1, fills $f0 -> $f1)"; return 1; }
	bc_write $D0/cache_mode writethrough || return 1
	dd if=/dev/urandom of=/dev/bcache_rs0 bs=64k count=1 seek=4098 oflag=direct 2>/dev/null || return 1
	h0=$(bc_stat 0 hits)
	dd if=/dev/bcache_rs0 of=/dev/null bs=64k count=1 skip=4098 iflag=direct 2>/dev/null || return 1
	h1=$(bc_stat 0 hits)
	[ "$h1" -gt "$h0" ] || { echo "writethrough: the write was not cached"; return 1; }
	bc_write $D0/cache_mode none || return 1
	f0=$(bc_stat 0 fills) h0=$(bc_stat 0 hits)
	dd if=/dev/bcache_rs0 of=/dev/null bs=64k count=4 skip=4100 iflag=direct 2>/dev/null || return 1
	dd if=/dev/bcache_rs0 of=/dev/null bs=64k count=1 skip=4098 iflag=direct 2>/dev/null || return 1
	f1=$(bc_stat 0 fills) h1=$(bc_stat 0 hits)
	[ "$f1" = "$f0" ] && [ "$h1" = "$h0" ] ||
		{ echo "none: fills $f0 -> $f1, hits $h0 -> $h1"; return 1; }
	bc_write $D0/cache_mode writethrough
}
rkm_check "writearound does not cache writes, writethrough does, none neither fills nor hits" documented

# progress: the operation count rkm-blkverify writes while it runs.
progress() {
	awk '{ print $2 }' /tmp/race-progress 2>/dev/null || echo 0
}
# switches: modes switched under a running race, each switch taken while
# I/O runs (the race's operation count grows across it).
switches() {
	rm -f /tmp/race-progress
	$BV race --dev /dev/bcache_rs0 $HOT --seconds 40 --threads 2 --read-pct 50 --init \
		--zero-pct 2 --max-blocks 8 --seed 202 --progress /tmp/race-progress \
		>/tmp/race-switch.log 2>&1 &
	pid=$!
	rkm_wait_for 60 "the race started" sh -c '[ "$(awk "{print \$2}" /tmp/race-progress 2>/dev/null || echo 0)" -gt 100 ]' ||
		{ kill $pid; return 1; }
	n=0
	for m in writearound none writethrough none writearound writethrough; do
		p0=$(progress)
		bc_write $D0/cache_mode $m || { kill $pid; return 1; }
		rkm_wait_for 30 "no I/O after switching to $m" \
			sh -c "[ \"\$(awk '{print \$2}' /tmp/race-progress)\" -gt $((p0 + 200)) ]" ||
			{ kill $pid; return 1; }
		n=$((n + 1))
	done
	wait $pid
	rc=$?
	bc_note "$n switches under I/O; $(grep -E '^blkverify: race ' /tmp/race-switch.log | tail -n 1)"
	[ "$rc" = 0 ] || { tail -n 20 /tmp/race-switch.log; return 1; }
}
rkm_check "cache_mode switched six times under a verifying race, I/O running at each switch" switches

# scribble: reads of uncached blocks whose buffer another thread keeps
# writing into; then every block read back clean must be the disk's.
scribble() {
	bc_write $D0/cache_mode none || return 1
	$BV fill --dev /dev/bcache_rs0 --offset 1G --size 16M --seed 303 >/dev/null || return 1
	bc_write $D0/cache_mode writethrough || return 1
	f0=$(bc_stat 0 fills)
	$BV scribble --dev /dev/bcache_rs0 --offset 1G --size 16M --seed 303 >/tmp/scribble.log 2>&1
	rc=$?
	f1=$(bc_stat 0 fills)
	bc_note "$(tail -n 1 /tmp/scribble.log); fills $f0 -> $f1"
	[ "$rc" = 0 ] || { cat /tmp/scribble.log; return 1; }
	[ "$f1" -gt "$f0" ] || { echo "the scribbled reads filled nothing"; return 1; }
}
rkm_check "misses read into a buffer another thread writes to fill the cache with the disk's bytes" scribble

# attach: a race runs on bcache_rs0 while the cache is registered and
# attached to it; the reads stay right across the attach and then hit.
attach_live() {
	bc_stop 0 && bc_unregister && bc_format --size 16M --bucket-size 64k || return 1
	bc_write "$BC/register_dev" "$UUID0 $RKM_HDD" && bc_write $D0/sequential_cutoff 0 || return 1
	rm -f /tmp/race-progress
	$BV race --dev /dev/bcache_rs0 --offset 64M --size 8M --seconds 25 --threads 2 --init \
		--read-pct 60 --max-blocks 4 --seed 404 --progress /tmp/race-progress \
		>/tmp/race-attach.log 2>&1 &
	pid=$!
	rkm_wait_for 60 "the race started" sh -c '[ "$(awk "{print \$2}" /tmp/race-progress 2>/dev/null || echo 0)" -gt 100 ]' ||
		{ kill $pid; return 1; }
	bc_write "$BC/register_cache" "$RKM_SSD" || { kill $pid; return 1; }
	state=$(bc_stat 0 state)
	wait $pid
	rc=$?
	bc_note "state after the attach: $state; hits $(bc_stat 0 hits); $(grep -E '^blkverify: race ' /tmp/race-attach.log | tail -n 1)"
	[ "$rc" = 0 ] || { tail -n 20 /tmp/race-attach.log; return 1; }
	[ "$state" = cached ] || { echo "not attached: $state"; return 1; }
	[ "$(bc_stat 0 hits)" -gt 0 ] || { echo "no hit after the attach"; return 1; }
}
rkm_check "a cache attached under a verifying race: no stale read, then hits" attach_live

# after: the state the last race left, checked on the HDD itself once the
# device is stopped, over the whole hot set.
after() {
	race /tmp/race-final.log --seconds 10 --threads 2 --init --read-pct 40 --seed 505 \
		--state /tmp/race.state || return 1
	bc_stop 0 && bc_unregister || return 1
	$BV verify --dev "$RKM_HDD" $HOT --state /tmp/race.state >/tmp/verify.log 2>&1 ||
		{ cat /tmp/verify.log; return 1; }
	bc_note "$(tail -n 1 /tmp/verify.log)"
	rmmod bcache_rs
}
rkm_check "after stop, the HDD holds exactly the blocks the last race acknowledged" after

ktap_finished
