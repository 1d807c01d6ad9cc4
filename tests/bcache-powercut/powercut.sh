#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# bcache_rs through power cuts (the issue's "power cut at random points").
# Boot 1 formats a backing device and a cache, writes version 1 of the hot
# set (8 MiB) and starts the acknowledgement log on the swap disk. Each
# boot that ends in a cut ($RKM_POWERCUT) leaves cut-workload.sh to run
# after its results: verified overwrites, checkpoints and registrations
# until the host kills QEMU at an instant drawn from the seed it prints.
# Each boot after a cut registers the cache and the device again (the
# journal found clean, open or torn, as the cut left it) and reads every
# block of the hot set through /dev/bcache_rs0, twice (the second time
# from what the first read cached): every block must hold its last
# acknowledged version or the one in flight at the cut, never an older
# one. A cold set (4 MiB in another region of the write-intent map,
# written once in boot 1 and only read since) shows what a crash keeps:
# after a cut that left the journal open, its restored extents hit, and
# hold its data. The last boot also closes cleanly and checks the warm
# cache.

. "$(dirname "$0")/bcache_lib.sh"

D0=/sys/block/bcache_rs0/bcache_rs
HOT="--offset 16M --size 8M"
COLD="--offset 32M --size 4M --seed 9"
UUIDB=33333333-4444-4555-8666-777777777777

ktap_print_header

up() {
	bc_load && bcache-rs register "$RKM_SSD" >/dev/null && bcache-rs register "$RKM_HDD" >/dev/null &&
		bc_write $D0/sequential_cutoff 0
}

leave_workload() {
	rkm_powercut_workload "$(dirname "$0")/cut-workload.sh"
}

# verify WHAT: every block of the hot set, read through bcache_rs0 in 4 KiB
# reads (each one piece: a hit, or a miss that fills), against the ack
# log; notes what it found.
verify() {
	rkm-blkverify verify --dev /dev/bcache_rs0 $HOT --io-size 4k --ack-log "$RKM_SWAP" >/tmp/v.log 2>&1 ||
		{ cat /tmp/v.log; return 1; }
	bc_note "$1: $(grep '^blkverify: verify ' /tmp/v.log | sed 's/^blkverify: verify //')"
}

# cold_reads: reads the cold set through bcache_rs0 in 32 KiB direct reads
# (misses fill the cache); prints their hits.
cold_reads() {
	h0=$(bc_stat 0 hits)
	dd if=/dev/bcache_rs0 of=/dev/null bs=32k iflag=direct skip=1024 count=128 2>/dev/null || return 1
	echo $(($(bc_stat 0 hits) - h0))
}

if [ "$RKM_PHASE" = 1 ]; then
	ktap_set_plan 2
	start() {
		bcache-rs format-backing "$RKM_HDD" --uuid $UUIDB --force >/dev/null &&
			bc_load && bc_format --size 32M --bucket-size 64k && up || return 1
		rkm-blkverify race --dev /dev/bcache_rs0 $HOT --init --seconds 1 --threads 2 \
			--ack-log "$RKM_SWAP" >/tmp/race.log 2>&1 || { cat /tmp/race.log; return 1; }
		rkm-blkverify fill --dev /dev/bcache_rs0 $COLD --version 1 >/tmp/cold.log 2>&1 ||
			{ cat /tmp/cold.log; return 1; }
		cold_reads >/dev/null
	}
	rkm_check "boot 1: a formatted HDD and a cache; the hot set at version 1, the ack log started" start
	rkm_check "boot 1: the workload left for the power cut" leave_workload
	ktap_finished
	exit
fi

last=$([ "$RKM_POWERCUT" = 1 ] && echo 0 || echo 1)
ktap_set_plan $((4 + last))
registered() {
	state=$(bcache-rs show "$RKM_SSD" | sed -n 's/^journal state: *\([a-z]*\).*/\1/p')
	up || return 1
	bc_note "the cut left the journal ${state:-?}; the registration restored $(cat $BC/cache/restored_extents) extents"
}
rkm_check "boot $RKM_PHASE: registered again after the power cut" registered
twice() {
	verify "first reads" && verify "again, from what they cached" || return 1
	[ "$(bc_stat 0 hits)" -gt 0 ] || { echo "the second reads hit nothing"; return 1; }
}
rkm_check "boot $RKM_PHASE: no block older than its last acknowledged write" twice
cold() {
	hits=$(cold_reads) || return 1
	rkm-blkverify verify --dev /dev/bcache_rs0 $COLD --version 1 >/tmp/cold.log 2>&1 ||
		{ cat /tmp/cold.log; return 1; }
	bc_note "the cold set's first reads: $hits hits of 128"
	# An open journal drops the regions written since its checkpoint (the
	# hot set's), not the cold set's.
	if [ "$state" = open ] && [ "$(cat $BC/cache/restored_extents)" -gt 0 ] && [ "$hits" = 0 ]; then
		echo "extents restored from an open journal, and none of the cold set hit"
		return 1
	fi
}
rkm_check "boot $RKM_PHASE: the cold set holds its data; after an open journal its extents hit" cold
if [ $last = 0 ]; then
	rkm_check "boot $RKM_PHASE: the workload left for the power cut" leave_workload
else
	workload() {
		rkm-blkverify race --dev /dev/bcache_rs0 $HOT --seconds 3 --threads 2 --dsync-pct 50 \
			--ack-log "$RKM_SWAP" >/tmp/race.log 2>&1 || { cat /tmp/race.log; return 1; }
	}
	rkm_check "boot $RKM_PHASE: the workload runs on from the ack log" workload
	warm() {
		bcache-rs unregister "$RKM_HDD" >/dev/null && bc_wait "bcache_rs0 is still there" test ! -e /sys/block/bcache_rs0 &&
			bcache-rs unregister >/dev/null && bc_wait "the cache is still registered" test ! -e "$BC/cache" || return 1
		bcache-rs show "$RKM_SSD" | grep -q 'journal state:  clean' || { echo "no clean checkpoint"; return 1; }
		up || return 1
		[ "$(cat $BC/cache/restored_extents)" -gt 0 ] || { echo "nothing restored"; return 1; }
		h0=$(bc_stat 0 hits)
		verify "after a clean close" || return 1
		[ "$(bc_stat 0 hits)" -gt "$h0" ] || { echo "the restored extents did not hit"; return 1; }
		bc_reset
	}
	rkm_check "boot $RKM_PHASE: a clean close keeps the cache warm, the data current" warm
fi
ktap_finished
