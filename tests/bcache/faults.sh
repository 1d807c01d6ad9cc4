#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# bcache_rs when devices fail. The SSD and the HDD are put behind
# device-mapper (dm-linear, switched to dm-flakey at run time) so that reads
# or writes of either can be failed on demand:
#   - SSD read errors below the error limit are retried on the HDD (the
#     reader sees right data, the cache stays, the counters say so); the
#     limit-th error fails the cache and the device goes on uncached, with no
#     failed I/O; a failed cache can be unregistered with its devices
#     attached (they go on uncached), and recent errors decay;
#   - failed fill writes never enter the index;
#   - a failed write to the HDD reaches the writer, and the cache does not
#     keep the data that did not reach the disk;
#   - a verifying race runs on while the SSD fails reads and writes;
#   - the NVMe controller removed from the PCI bus under a verified
#     workload, and the backing HDD removed under I/O: I/O fails cleanly,
#     `stop` works, and both come back by a PCI rescan for what follows.

. "$(dirname "$0")/bcache_lib.sh"

bc_reset >/dev/null 2>&1
ktap_print_header
ktap_set_plan 10

D0=/sys/block/bcache_rs0/bcache_rs
BV=rkm-blkverify

# dm_table NAME DEV [FLAKEY_FEATURE]: a dm device NAME over DEV, linear, or
# failing every read (error_reads) or write (error_writes) for an hour.
dm_table() {
	sz=$(blockdev --getsz "$2")
	if [ -n "$3" ]; then
		echo "0 $sz flakey $2 0 0 3600 1 $3"
	else
		echo "0 $sz linear $2 0"
	fi
}
dm_set() {
	dmsetup reload --noudevsync "$1" --table "$(dm_table "$@")" &&
		dmsetup resume --noudevsync "$1"
}
dm_dev() {
	echo "/dev/$(dmsetup info -c --noheadings -o blkdevname "$1")"
}

# cache_blocks FIRST N: a 4 KiB direct read of each block (misses fill).
cache_blocks() {
	b=$1
	while [ "$b" -lt $(($1 + $2)) ]; do
		dd if=/dev/bcache_rs0 of=/dev/null bs=4k count=1 skip=$b iflag=direct 2>/dev/null ||
			{ echo "reading block $b failed"; return 1; }
		b=$((b + 1))
	done
}

# read_blocks FIRST N: the N blocks from FIRST read and checked.
read_blocks() {
	$BV verify --dev /dev/bcache_rs0 --offset $(($1 * 4096)) --size $(($2 * 4096)) \
		--seed 1 --version 1 >/tmp/v.log 2>&1 || { cat /tmp/v.log; return 1; }
}

setup() {
	modprobe dm-mod && modprobe dm-flakey || return 1
	for n in rkm-ssd:"$RKM_SSD" rkm-hdd:"$RKM_HDD"; do
		dmsetup create --noudevsync "${n%%:*}" --table "$(dm_table "${n%%:*}" "${n#*:}")" ||
			return 1
	done
	SSD=$(dm_dev rkm-ssd) HDD=$(dm_dev rkm-hdd)
	bc_load && bcache-rs format-cache "$SSD" --force --size 64M --bucket-size 64k >/dev/null &&
		bc_write "$BC/register_cache" "$SSD" &&
		bc_write "$BC/register_dev" "$UUID0 $HDD" || return 1
	bc_write "$BC/cache/io_error_halflife" 0 && bc_write $D0/sequential_cutoff 0 || return 1
	# 64 blocks of 4 KiB, then read one by one: each cached.
	$BV fill --dev /dev/bcache_rs0 --offset 0 --size 256k --seed 1 >/dev/null &&
		cache_blocks 0 64
}
rkm_check "SSD and HDD behind device-mapper, 64 blocks cached" setup
SSD=$(dm_dev rkm-ssd 2>/dev/null) HDD=$(dm_dev rkm-hdd 2>/dev/null)

below_limit() {
	h0=$(bc_stat 0 hits)
	dm_set rkm-ssd "$RKM_SSD" error_reads || return 1
	# Seven cached blocks read one by one: seven failed hits, retried.
	for b in 0 1 2 3 4 5 6; do
		read_blocks $b 1 || return 1
	done
	dm_set rkm-ssd "$RKM_SSD" || return 1
	e=$(cat $BC/cache/io_errors) r=$(bc_stat 0 ssd_read_retries)
	bc_note "7 failed hits: io_errors $e, retries $r, hits $h0 -> $(bc_stat 0 hits), state $(cat $BC/cache/state)"
	[ "$e" = 7 ] && [ "$r" = 7 ] || { echo "io_errors $e, ssd_read_retries $r: want 7 and 7"; return 1; }
	[ "$(cat $BC/cache/state)" = active ] || { echo "the cache failed below its limit"; return 1; }
	# The failed extents were dropped; the others still hit.
	h1=$(bc_stat 0 hits)
	read_blocks 10 4 || return 1
	[ "$(bc_stat 0 hits)" -gt "$h1" ] || { echo "cached blocks no longer hit"; return 1; }
}
rkm_check "SSD read errors below the limit: right data from the HDD, cache active, counted" below_limit

at_limit() {
	[ "$(cat $BC/cache/io_error_limit)" = 8 ] || { echo "io_error_limit: $(cat $BC/cache/io_error_limit)"; return 1; }
	dm_set rkm-ssd "$RKM_SSD" error_reads || return 1
	read_blocks 20 1 || return 1
	st=$(cat $BC/cache/state) ds=$(bc_stat 0 state)
	r0=$(bc_stat 0 ssd_read_retries)
	# Uncached from now on: every read right, none retried.
	read_blocks 21 20 || return 1
	r1=$(bc_stat 0 ssd_read_retries)
	dm_set rkm-ssd "$RKM_SSD" || return 1
	bc_note "8th error: cache $st, device $ds, retries $r0 -> $r1"
	[ "$st" = failed ] && [ "$ds" = "cache failed" ] || { echo "after the 8th error: cache $st, device $ds"; return 1; }
	[ "$r0" = "$r1" ] || { echo "the failed cache was still read"; return 1; }
}
rkm_check "the 8th error fails the cache; the device goes on uncached, no I/O fails" at_limit

unregister_failed() {
	bc_write "$BC/cache/unregister" 1 || return 1
	test ! -e "$BC/cache" || { echo "the cache directory is still there"; return 1; }
	[ "$(bc_stat 0 state)" = "no cache" ] || { echo "device state $(bc_stat 0 state)"; return 1; }
	read_blocks 0 64 || return 1
	# A new cache attaches to the running device.
	bcache-rs format-cache "$SSD" --force --size 64M --bucket-size 64k >/dev/null &&
		bc_write "$BC/register_cache" "$SSD" || return 1
	[ "$(bc_stat 0 state)" = cached ] || { echo "device state $(bc_stat 0 state)"; return 1; }
	bc_write "$BC/cache/io_error_halflife" 0
}
rkm_check "a failed cache is unregistered with its device attached, and a new one attaches" unregister_failed

decay() {
	bc_write "$BC/cache/io_error_halflife" 16 || return 1
	$BV fill --dev /dev/bcache_rs0 --offset 1M --size 512k --seed 2 >/dev/null &&
		cache_blocks 256 128 || return 1
	for round in 1 2; do
		dm_set rkm-ssd "$RKM_SSD" error_reads || return 1
		for b in 0 1 2 3 4 5; do
			$BV verify --dev /dev/bcache_rs0 --offset $((1048576 + (round * 8 + b) * 4096)) \
				--size 4k --seed 2 --version 1 >/dev/null || return 1
		done
		dm_set rkm-ssd "$RKM_SSD" || return 1
		# 64 hits of 4 KiB: the recent errors are halved four times.
		cache_blocks 320 64 || return 1
		rc=$(cat $BC/cache/io_errors_recent)
		bc_note "round $round: recent errors $rc, total $(cat $BC/cache/io_errors), state $(cat $BC/cache/state)"
	done
	[ "$(cat $BC/cache/io_errors)" -ge 12 ] && [ "$(cat $BC/cache/state)" = active ] ||
		{ echo "12 errors spread over time failed the cache"; return 1; }
}
rkm_check "recent errors decay: 12 errors spread over 140 SSD I/Os leave the cache active" decay

fill_errors() {
	bc_write "$BC/cache/io_error_limit" 1000 || return 1
	$BV fill --dev "$HDD" --offset 8M --size 256k --seed 3 >/dev/null || return 1
	f0=$(bc_stat 0 fills) e0=$(cat $BC/cache/io_errors)
	dm_set rkm-ssd "$RKM_SSD" error_writes || return 1
	cache_blocks 2048 64 || return 1
	dm_set rkm-ssd "$RKM_SSD" || return 1
	f1=$(bc_stat 0 fills) e1=$(cat $BC/cache/io_errors) h0=$(bc_stat 0 hits)
	# Read again: misses (nothing entered the index), right data.
	cache_blocks 2048 64 || return 1
	h1=$(bc_stat 0 hits)
	$BV verify --dev /dev/bcache_rs0 --offset 8M --size 256k --seed 3 --version 1 >/dev/null || return 1
	bc_note "fills $f0 -> $f1, io_errors $e0 -> $e1, hits $h0 -> $h1 on the re-read"
	[ "$f1" = "$f0" ] && [ "$e1" -gt "$e0" ] || { echo "failed fill writes were counted as fills"; return 1; }
	[ "$h1" = "$h0" ] || { echo "failed fills were served: hits $h0 -> $h1"; return 1; }
}
rkm_check "fill writes that fail on the SSD never enter the index" fill_errors

backing_errors() {
	$BV fill --dev /dev/bcache_rs0 --offset 12M --size 64k --seed 4 >/dev/null || return 1
	dm_set rkm-hdd "$RKM_HDD" error_writes || return 1
	out=$($BV fill --dev /dev/bcache_rs0 --offset 12M --size 64k --seed 4 --version 2 2>&1)
	rc=$?
	dm_set rkm-hdd "$RKM_HDD" || return 1
	bc_note "a write to the failing HDD: exit $rc: $(echo "$out" | tail -n 1)"
	[ "$rc" != 0 ] || { echo "the writer did not see the HDD's error"; return 1; }
	# What failed on the disk is not served from the cache: version 1.
	$BV verify --dev /dev/bcache_rs0 --offset 12M --size 64k --seed 4 --version 1 >/tmp/v.log 2>&1 ||
		{ cat /tmp/v.log; echo "the cache served data the HDD refused"; return 1; }
}
rkm_check "a write the HDD fails reaches the writer, and its data is not cached" backing_errors

# ops_past N: the race's operation count is above N.
ops_past() {
	[ "$(awk '{ print $2 }' /tmp/race-progress 2>/dev/null || echo 0)" -gt "$1" ]
}
flaky_race() {
	rm -f /tmp/race-progress
	$BV race --dev /dev/bcache_rs0 --offset 16M --size 16M --seconds 40 --threads 2 \
		--read-pct 60 --max-blocks 8 --seed 5 --init --progress /tmp/race-progress \
		>/tmp/race-flaky.log 2>&1 &
	pid=$!
	ops=0
	for f in error_reads error_writes error_reads; do
		# Each phase lasts 300 operations of the race.
		ops=$((ops + 300))
		rkm_wait_for 60 "the race stalled" ops_past $ops || { kill $pid; return 1; }
		dm_set rkm-ssd "$RKM_SSD" $f || { kill $pid; return 1; }
		ops=$((ops + 300))
		rkm_wait_for 60 "the race stalled with the SSD failing ($f)" ops_past $ops ||
			{ kill $pid; return 1; }
		dm_set rkm-ssd "$RKM_SSD" || { kill $pid; return 1; }
	done
	wait $pid
	rc=$?
	bc_note "$(grep -E '^blkverify: race ' /tmp/race-flaky.log | tail -n 1); io_errors $(cat $BC/cache/io_errors)"
	[ "$rc" = 0 ] || { tail -n 20 /tmp/race-flaky.log; return 1; }
	bc_stop 0 && bc_unregister || return 1
	dmsetup remove --noudevsync rkm-ssd && dmsetup remove --noudevsync rkm-hdd
}
rkm_check "a verifying race runs on, never stale, while the SSD fails reads and writes" flaky_race

# The NVMe controller removed from the PCI bus under a verified workload.
FIO="fio --output-format=terse --terse-version=3 --minimal --filename=/dev/bcache_rs0 --name=f --ioengine=libaio --iodepth=8 --direct=1 --size=32M --bs=4k --randseed=5"
ctrl=$(basename "$(readlink -f /sys/block/${RKM_SSD#/dev/}/device)")
pci=$(readlink -f /sys/class/nvme/$ctrl/device)
ssd_dies() {
	bc_up || return 1
	$FIO --rw=randwrite --verify=crc32c --do_verify=0 >/dev/null || { echo "fio write failed"; return 1; }
	[ -e "$pci/remove" ] || { echo "no PCI device for $RKM_SSD ($ctrl: $pci)"; return 1; }
	rkm_dmesg_mark "faults: removing the NVMe controller $pci"
	echo 1 >"$pci/remove"
	$FIO --rw=randwrite --verify=crc32c --verify_only=1 >/dev/null 2>/tmp/fio.err ||
		{ cat /tmp/fio.err; echo "a read failed or was wrong after the SSD died"; return 1; }
	r=$(bc_stat 0 ssd_read_retries)
	bc_note "SSD gone: reads retried on the HDD $r, cache $(cat $BC/cache/state)"
	[ "$r" -gt 0 ] && [ "$(cat $BC/cache/state)" = failed ] || { echo "retries $r, state $(cat $BC/cache/state)"; return 1; }
	bc_stop 0 && bc_unregister || return 1
	echo 1 >/sys/bus/pci/rescan
	rkm_wait_for 10 "$RKM_SSD did not come back" test -b "$RKM_SSD" || return 1
	serial=$(tr -d ' ' <"/sys/block/${RKM_SSD#/dev/}/device/serial")
	[ "$serial" = rkm-ssd ] || { echo "$RKM_SSD has serial '$serial'"; return 1; }
}
rkm_check "the NVMe SSD dies under verified I/O: every read right; it comes back by rescan" ssd_dies

# The backing HDD removed from the PCI bus under I/O.
hdd_pci=$(readlink -f /sys/block/${RKM_HDD#/dev/}/device/..)
hdd_dies() {
	bc_up || return 1
	fio --output-format=terse --minimal --filename=/dev/bcache_rs0 --name=h --ioengine=libaio \
		--iodepth=8 --direct=1 --size=64M --bs=4k --rw=randrw --time_based --runtime=20 \
		>/tmp/fio-hdd.log 2>&1 &
	pid=$!
	rkm_wait_for 60 "no I/O reached bcache_rs0" \
		sh -c "[ \$(awk '{ print \$1 + \$5 }' /sys/block/bcache_rs0/stat) -gt 500 ]" ||
		{ kill $pid; return 1; }
	[ -e "$hdd_pci/remove" ] || { kill $pid; echo "no PCI device for $RKM_HDD ($hdd_pci)"; return 1; }
	rkm_dmesg_mark "faults: removing the HDD $hdd_pci"
	echo 1 >"$hdd_pci/remove"
	wait $pid
	rc=$?
	bc_note "fio on the removed HDD exited $rc"
	[ "$rc" != 0 ] || { echo "I/O to a removed backing device did not fail"; return 1; }
	dd if=/dev/bcache_rs0 of=/dev/null bs=4k count=1 skip=99999 iflag=direct 2>/dev/null &&
		{ echo "a read of the removed HDD succeeded"; return 1; }
	bc_stop 0 && bc_unregister && rmmod bcache_rs || return 1
	echo 1 >/sys/bus/pci/rescan
	rkm_wait_for 10 "$RKM_HDD did not come back" test -b "$RKM_HDD" || return 1
	serial=$(tr -d ' ' <"/sys/block/${RKM_HDD#/dev/}/serial")
	[ "$serial" = rkm-hdd ] || { echo "$RKM_HDD has serial '$serial'"; return 1; }
}
rkm_check "the backing HDD removed under I/O: I/O fails, stop works; it comes back by rescan" hdd_dies

ktap_finished
