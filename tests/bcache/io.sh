#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# bcache_rs's data path on the HDD (backing) and the NVMe SSD (cache):
# fio with crc32c verification through /dev/bcache_rs0 (random writes then
# verified reads, mixed random read/write on both CPUs), reads that hit,
# the disk's I/O statistics (/sys/block/bcache_rs0/stat, queue/iostats),
# sequential bypass, cache modes switched under verified I/O, ext4 with fsck,
# and the whole backing device holding what the cache returns (and left
# untouched by stop).

. "$(dirname "$0")/bcache_lib.sh"

bc_reset >/dev/null 2>&1
ktap_print_header
ktap_set_plan 11

rkm_check "format the SSD, register it and the HDD as bcache_rs0" bc_up

FIO="fio --output-format=terse --terse-version=3 --minimal --filename=/dev/bcache_rs0 --direct=1 --ioengine=psync --size=32M"

write_verify() {
	$FIO --name=w --rw=randwrite --bs=4k --verify=crc32c --verify_backlog=0 --do_verify=0 \
		--randseed=1 >/dev/null || { echo "fio write failed"; return 1; }
	$FIO --name=w --rw=randwrite --bs=4k --verify=crc32c --verify_only=1 --randseed=1 \
		>/dev/null || { echo "fio verify failed"; return 1; }
	hits=$(bc_stat 0 hits)
	[ "$hits" -gt 0 ] || { echo "no hits after writethrough: $hits"; return 1; }
	bc_note "hits $hits misses $(bc_stat 0 misses) fills $(bc_stat 0 fills)"
}
rkm_check "fio: random writes, then every block verified (crc32c), reads hit" write_verify

# disk_stat FIELD: a field of /sys/block/bcache_rs0/stat (1 reads, 3 sectors
# read, 5 writes, 7 sectors written, 9 in flight).
disk_stat() {
	awk -v f="$1" '{ print $f }' /sys/block/bcache_rs0/stat
}

iostats() {
	q=/sys/block/bcache_rs0/queue/iostats
	[ "$(cat $q)" = 1 ] || { echo "queue/iostats is $(cat $q), not 1"; return 1; }
	r0=$(disk_stat 1) rs0=$(disk_stat 3) w0=$(disk_stat 5) ws0=$(disk_stat 7)
	# 64 writes and 64 reads of 64 KiB, direct: one bio each.
	dd if=/dev/zero of=/dev/bcache_rs0 bs=64k count=64 seek=6144 oflag=direct 2>/dev/null ||
		return 1
	dd if=/dev/bcache_rs0 of=/dev/null bs=64k count=64 skip=6144 iflag=direct 2>/dev/null ||
		return 1
	r1=$(disk_stat 1) rs1=$(disk_stat 3) w1=$(disk_stat 5) ws1=$(disk_stat 7)
	bc_note "stat: reads $r0 -> $r1 ($rs0 -> $rs1 sectors), writes $w0 -> $w1 ($ws0 -> $ws1 sectors)"
	# A read cut at cached-extent boundaries counts once a piece.
	[ $((w1 - w0)) -eq 64 ] && [ $((ws1 - ws0)) -eq 8192 ] &&
		[ $((r1 - r0)) -ge 64 ] && [ $((rs1 - rs0)) -eq 8192 ] ||
		{ echo "expected 64 writes and 64+ reads of 8192 sectors each way"; return 1; }
	[ "$(disk_stat 9)" = 0 ] || { echo "$(disk_stat 9) I/Os in flight on an idle disk"; return 1; }
	bc_write $q 0 || return 1
	dd if=/dev/bcache_rs0 of=/dev/null bs=64k count=16 skip=6144 iflag=direct 2>/dev/null
	r2=$(disk_stat 1)
	bc_write $q 1 || return 1
	[ "$r2" = "$r1" ] || { echo "reads counted with queue/iostats 0: $r1 -> $r2"; return 1; }
}
rkm_check "the disk's I/O statistics count its reads and writes (iostat), unless queue/iostats is 0" iostats

second_read() {
	# Sequential reads: without the cutoff, so that they are cached.
	bc_write /sys/block/bcache_rs0/bcache_rs/sequential_cutoff 0 || return 1
	echo 3 >/proc/sys/vm/drop_caches
	$FIO --name=r1 --rw=read --bs=64k --offset=64M --size=16M >/dev/null || return 1
	h1=$(bc_stat 0 hits)
	$FIO --name=r2 --rw=read --bs=64k --offset=64M --size=16M >/dev/null || return 1
	h2=$(bc_stat 0 hits)
	fills=$(bc_stat 0 fills)
	bc_note "hits $h1 -> $h2, fills $fills, from cache $(bc_stat 0 bytes_from_cache) B"
	[ "$fills" -gt 0 ] && [ $((h2 - h1)) -ge 256 ] ||
		{ echo "the second read of 16 MiB did not hit: hits $h1 -> $h2, fills $fills"; return 1; }
	bc_write /sys/block/bcache_rs0/bcache_rs/sequential_cutoff 4M
}
rkm_check "a second read of uncached data is served from the cache" second_read

clear_stats() {
	d=/sys/block/bcache_rs0/bcache_rs
	[ "$(cat $d/hits)" -gt 0 ] || { echo "no hits to clear"; return 1; }
	bc_expect_err $d/clear_stats 2 "Invalid argument" || return 1
	[ "$(cat $d/hits)" -gt 0 ] || { echo "a refused clear_stats cleared hits"; return 1; }
	bc_write $d/clear_stats 1 || return 1
	for f in hits misses fills hit_ratio bytes_from_cache bytes_from_backing bytes_written; do
		[ "$(cat $d/$f)" = 0 ] || { echo "$f is $(cat $d/$f) after clear_stats"; return 1; }
	done
	dd if=/dev/bcache_rs0 of=/dev/null bs=64k count=16 skip=1024 iflag=direct 2>/dev/null || return 1
	[ "$(cat $d/hits)" -gt 0 ] || { echo "no hits counted after clear_stats"; return 1; }
}
rkm_check "clear_stats sets the statistics back to 0 (other values EINVAL), and they count on" clear_stats

mixed() {
	$FIO --name=m --rw=randrw --rwmixread=60 --bs=4k --verify=crc32c --numjobs=2 \
		--size=16M --offset_increment=16M --offset=128M --randseed=7 >/dev/null ||
		{ echo "fio randrw with verify failed"; return 1; }
}
rkm_check "fio: mixed random read/write with verify on both CPUs" mixed

bypass() {
	b0=$(bc_stat 0 bypass_misses)
	dd if=/dev/bcache_rs0 of=/dev/null bs=1M skip=512 count=16 iflag=direct 2>/dev/null || return 1
	b1=$(bc_stat 0 bypass_misses)
	bc_note "bypass misses $b0 -> $b1"
	[ "$b1" -gt "$b0" ] || { echo "a 16 MiB sequential read was not bypassed"; return 1; }
}
rkm_check "a sequential read past sequential_cutoff bypasses the cache" bypass

# writes_done: the disk's completed writes (its stat's fifth field).
writes_done() {
	disk_stat 5
}
switch_modes() {
	$FIO --name=s --rw=randwrite --bs=4k --verify=crc32c --size=8M --offset=256M \
		--randseed=3 >/dev/null 2>&1 &
	pid=$!
	for m in writearound none writethrough writearound writethrough; do
		w0=$(writes_done)
		bc_write /sys/block/bcache_rs0/bcache_rs/cache_mode $m || { kill $pid; return 1; }
		# The next switch only once writes went on in this mode.
		rkm_wait_for 60 "no write completed in mode $m" \
			sh -c "[ \$(awk '{ print \$5 }' /sys/block/bcache_rs0/stat) -gt $((w0 + 50)) ]" ||
			{ kill $pid; return 1; }
	done
	wait $pid || { echo "fio with verify failed while the mode changed"; return 1; }
}
rkm_check "cache_mode switched under verified I/O, writes completing in each mode" switch_modes

# flushes: a flush of bcache_rs0 reaches the HDD (its stat's flush count).
flushes() {
	hdd=/sys/block/${RKM_HDD#/dev/}/stat
	[ "$(cat /sys/block/bcache_rs0/queue/write_cache)" = "write back" ] ||
		{ echo "bcache_rs0 offers no flush: $(cat /sys/block/bcache_rs0/queue/write_cache)"; return 1; }
	[ "$(cat /sys/block/bcache_rs0/queue/fua)" = 1 ] || { echo "bcache_rs0 offers no FUA"; return 1; }
	f0=$(awk '{ print $16 }' $hdd)
	dd if=/dev/zero of=/dev/bcache_rs0 bs=4k count=4 seek=70000 conv=fsync 2>/dev/null || return 1
	f1=$(awk '{ print $16 }' $hdd)
	bc_note "the HDD's flushes: $f0 -> $f1"
	[ "$f1" -gt "$f0" ] || { echo "an fsync of bcache_rs0 did not flush the HDD"; return 1; }
}
rkm_check "a flush of bcache_rs0 reaches the HDD; the disk offers FUA" flushes

ext4() {
	mkfs.ext4 -q -F /dev/bcache_rs0 || return 1
	mkdir -p /mnt/bc && mount -t ext4 /dev/bcache_rs0 /mnt/bc || return 1
	i=0
	while [ $i -lt 24 ]; do
		mkdir -p /mnt/bc/d$((i % 4))
		dd if=/dev/urandom of=/mnt/bc/d$((i % 4))/f$i bs=64k count=$((1 + i % 7)) 2>/dev/null || return 1
		i=$((i + 1))
	done
	(cd /mnt/bc && find . -type f | sort | xargs md5sum) >/tmp/sums || return 1
	umount /mnt/bc && mount -t ext4 /dev/bcache_rs0 /mnt/bc || return 1
	echo 3 >/proc/sys/vm/drop_caches
	h0=$(bc_stat 0 hits)
	(cd /mnt/bc && md5sum -c /tmp/sums >/dev/null) || { echo "files differ after remount"; return 1; }
	h1=$(bc_stat 0 hits)
	umount /mnt/bc || return 1
	bc_note "reading the files back: hits $h0 -> $h1"
	[ "$h1" -gt "$h0" ] || { echo "reading the files back did not hit"; return 1; }
	e2fsck -f -n /dev/bcache_rs0 >/tmp/fsck.log 2>&1 || { cat /tmp/fsck.log; return 1; }
}
rkm_check "ext4 on bcache_rs0: files read back (hits), fsck clean" ext4

# backing: the whole device read through the cache (hits where cached) and
# the HDD read directly, at once (rkm-blkverify compare: a thread each,
# O_DIRECT), must hold the same bytes; stop and unregister must then write
# nothing to the HDD (its stat's completed writes and sectors written
# unchanged), so the HDD after stop holds what bcache_rs0 returned; and
# fsck on the HDD itself is clean.
backing() {
	hdd=/sys/block/${RKM_HDD#/dev/}/stat
	size=$(($(cat /sys/block/${RKM_HDD#/dev/}/size) * 512))
	[ "$(($(cat /sys/block/bcache_rs0/size) * 512))" = "$size" ] ||
		{ echo "bcache_rs0 and the HDD differ in size"; return 1; }
	rkm-blkverify compare --dev /dev/bcache_rs0 --against "$RKM_HDD" --size "$size" >/tmp/compare.log 2>&1 ||
		{ cat /tmp/compare.log; echo "the HDD differs from what bcache_rs0 returned"; return 1; }
	bc_note "$(tail -n 1 /tmp/compare.log)"
	w0=$(awk '{ print $5, $7 }' $hdd)
	bc_stop 0 && bc_unregister || return 1
	w1=$(awk '{ print $5, $7 }' $hdd)
	[ "$w0" = "$w1" ] || { echo "stop wrote to the HDD (writes, sectors: $w0 -> $w1)"; return 1; }
	e2fsck -f -n "$RKM_HDD" >/tmp/fsck.log 2>&1 || { cat /tmp/fsck.log; return 1; }
	rmmod bcache_rs
}
rkm_check "the whole HDD holds what bcache_rs0 returns, stop writes nothing to it, fsck is clean" backing

ktap_finished
