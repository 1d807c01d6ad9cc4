#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# bcache_rs's lifetimes under races that a careful review found: teardown
# while the background pass runs, `stop` against a concurrent open,
# concurrent `stop` writes, and a disk's geometry against the order of
# registration. Each case provokes its race many times; the kernel's KASAN
# and lockdep watch the rest.

. "$(dirname "$0")/bcache_lib.sh"

bc_reset >/dev/null 2>&1
ktap_print_header
ktap_set_plan 5

# teardown: heavy evicting I/O (64 KiB fills of an 8 MiB cache), killed,
# then stop, unregister and rmmod at once while the background pass queued
# by the last invalidations may still run.
teardown() {
	for i in 1 2 3 4; do
		bc_load && bc_format --size 8M --bucket-size 64k &&
			bc_write "$BC/register_cache" "$RKM_SSD" &&
			bc_write "$BC/register_dev" "$UUID0 $RKM_HDD" || return 1
		bc_write /sys/block/bcache_rs0/bcache_rs/sequential_cutoff 0 || return 1
		fio --output-format=terse --minimal --filename=/dev/bcache_rs0 --name=t \
			--ioengine=libaio --iodepth=16 --direct=1 --size=512M --rw=randrw \
			--bs=64k --time_based --runtime=8 --numjobs=2 >/tmp/races-fio.log 2>&1 &
		pid=$!
		# Until the cache evicts over and over.
		rkm_wait_for 60 "round $i: no eviction" sh -c "[ \$(cat $BC/cache/invalidated) -gt 200 ]" ||
			{ killall -9 fio; return 1; }
		inv=$(cat $BC/cache/invalidated)
		# fio's jobs are processes of their own: kill them all.
		killall -9 fio 2>/dev/null
		wait $pid 2>/dev/null
		rkm_wait_for 30 "fio is still running" sh -c '! pidof fio >/dev/null' || return 1
		bc_note "round $i: $inv buckets invalidated, $(cat $BC/cache/index_entries) extents"
		[ "$inv" -gt 0 ] || { cat /tmp/races-fio.log; echo "round $i: no eviction"; return 1; }
		bc_stop 0 && bc_unregister && rmmod bcache_rs || return 1
	done
}
rkm_check "stop, unregister and rmmod right after heavy evicting I/O, four times" teardown

# stop_vs_mount: `stop` and a mount race; never may both succeed (the disk
# would be deleted under the mounted filesystem).
stop_vs_mount() {
	bc_reset >/dev/null 2>&1
	bc_up && mkfs.ext4 -q -F /dev/bcache_rs0 || return 1
	mkdir -p /mnt/race
	both=0 stops=0 mounts=0
	for i in $(seq 1 30); do
		(bc_write /sys/block/bcache_rs0/bcache_rs/stop 1 >/dev/null 2>&1) &
		spid=$!
		mount -t ext4 /dev/bcache_rs0 /mnt/race 2>/dev/null && m=1 || m=0
		wait $spid && s=1 || s=0
		[ $s = 1 ] && [ $m = 1 ] && both=$((both + 1))
		stops=$((stops + s)) mounts=$((mounts + m))
		if [ $m = 1 ]; then
			umount /mnt/race || return 1
		fi
		if [ $s = 1 ]; then
			bc_wait "bcache_rs0 is still there" test ! -e /sys/block/bcache_rs0 || return 1
			bc_write "$BC/register_dev" "$UUID0 $RKM_HDD" || return 1
		fi
	done
	bc_note "30 races: stop won $stops, mount won $mounts, both $both"
	[ "$both" = 0 ] || { echo "$both times stop and mount both succeeded"; return 1; }
}
rkm_check "stop and a concurrent mount never both succeed" stop_vs_mount

# double_stop: two `stop` writes at once, then a new device: `unregister`
# must still refuse while it is attached.
double_stop() {
	bc_reset >/dev/null 2>&1
	bc_up || return 1
	for i in $(seq 1 15); do
		(bc_write /sys/block/bcache_rs0/bcache_rs/stop 1 >/dev/null 2>&1) &
		(bc_write /sys/block/bcache_rs0/bcache_rs/stop 1 >/dev/null 2>&1) &
		wait
		bc_wait "bcache_rs0 is still there" test ! -e /sys/block/bcache_rs0 || return 1
		bc_attached 0 || return 1
		bc_write "$BC/register_dev" "$UUID0 $RKM_HDD" || return 1
		bc_attached 1 || return 1
		if bc_write "$BC/cache/unregister" 1 2>/dev/null; then
			echo "round $i: unregister accepted with bcache_rs0 attached"
			return 1
		fi
	done
	bc_stop 0 && bc_unregister
}
rkm_check "two concurrent stops leave unregister refusing a later device" double_stop

# geometry: the disk's logical block size is the backing device's whatever
# the order of registration; a cache of larger blocks is not attached.
lbs_of() {
	cat /sys/block/bcache_rs0/queue/logical_block_size
}
geometry() {
	want=$(cat "/sys/block/${RKM_HDD#/dev/}/queue/logical_block_size")
	[ "$want" -lt 4096 ] || { echo "the HDD has $want-byte blocks: nothing to test"; return 1; }
	bc_reset >/dev/null 2>&1
	bc_load && bc_format --block-size 4k || return 1
	# The device first, then the cache.
	bc_write "$BC/register_dev" "$UUID0 $RKM_HDD" || return 1
	a=$(lbs_of)
	bc_write "$BC/register_cache" "$RKM_SSD" || return 1
	sa=$(bc_stat 0 state)
	bc_stop 0 || return 1
	# The cache first, then the device.
	bc_write "$BC/register_dev" "$UUID0 $RKM_HDD" || return 1
	b=$(lbs_of)
	sb=$(bc_stat 0 state)
	bc_stop 0 && bc_unregister || return 1
	bc_note "logical block size: device first $a ($sa), cache first $b ($sb); the HDD's $want"
	[ "$a" = "$want" ] && [ "$b" = "$want" ] ||
		{ echo "the disk's block size depends on the order: $a, $b (HDD $want)"; return 1; }
	[ "$sa" = "no cache" ] && [ "$sb" = "no cache" ] ||
		{ echo "a cache of 4 KiB blocks was attached to a disk of $want-byte blocks"; return 1; }
}
rkm_check "the disk's block size is the backing device's in either order" geometry

# discard: the disk offers discard exactly as far as its backing device
# does (the swap disk has none).
discard_limits() {
	bc_reset >/dev/null 2>&1
	bc_load && bc_format && bc_write "$BC/register_cache" "$RKM_SSD" &&
		bc_write "$BC/register_dev" "$UUID0 $RKM_HDD" &&
		bc_write "$BC/register_dev" "$UUID1 $RKM_SWAP" || return 1
	for n in 0 1; do
		dev=$(bc_stat $n backing_dev)
		want=$(cat /sys/block/$dev/queue/discard_max_bytes)
		got=$(cat /sys/block/bcache_rs$n/queue/discard_max_bytes)
		bc_note "bcache_rs$n: discard_max_bytes $got, its backing $dev $want"
		[ "$got" = "$want" ] || { echo "bcache_rs$n offers $got bytes of discard, $dev $want"; return 1; }
	done
	bc_stop 1 && bc_stop 0 && bc_unregister && rmmod bcache_rs
}
rkm_check "discard limits are the backing device's" discard_limits

ktap_finished
