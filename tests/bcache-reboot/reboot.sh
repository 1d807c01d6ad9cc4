#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# bcache_rs across a reboot. Boot 1 ($RKM_PHASE 1): a trusted device read
# through a new cache, then the guest reboots with both registered (and the
# disk's data written through it): the module's reboot notifier drains the
# disks, fails their later I/O and writes the checkpoint. Boot 2, on the
# same disk images: bcache-rs show says the journal is clean, the
# registration restores the extents, the first reads are all hits, and
# they return the HDD's bytes, the version written in boot 1.

. "$(dirname "$0")/bcache_lib.sh"

D0=/sys/block/bcache_rs0/bcache_rs
BV=rkm-blkverify
RANGE="--offset 16M --size 8M"

ktap_print_header

# read32k FILE: the range in 32 KiB direct reads (those the cache serves).
read32k() {
	dd if=/dev/bcache_rs0 of="$1" bs=32k iflag=direct skip=512 count=256 2>/dev/null
}

up() {
	bc_load && bc_write "$BC/register_cache" "$RKM_SSD" &&
		bc_write "$BC/register_dev" "$UUID0 $RKM_HDD trust=1" &&
		bc_write $D0/sequential_cutoff 0
}

if [ "$RKM_PHASE" = 1 ]; then
	ktap_set_plan 1
	warm() {
		bc_format --size 16M --bucket-size 64k && up &&
			$BV fill --dev /dev/bcache_rs0 $RANGE --seed 9 --version 3 >/dev/null &&
			read32k /dev/null && read32k /dev/null || return 1
		[ "$(bc_stat 0 hits)" -gt 0 ] || { echo "no hits"; return 1; }
		[ "$(cat $BC/cache/index_entries)" -gt 0 ] || { echo "nothing cached"; return 1; }
	}
	rkm_check "boot 1: a warm cache, left registered for the reboot" warm
else
	ktap_set_plan 3
	clean() {
		bcache-rs show "$RKM_SSD" | grep -q 'journal state:  clean' ||
			{ bcache-rs show "$RKM_SSD" | tail -n 6; echo "the reboot left no checkpoint"; return 1; }
	}
	rkm_check "boot 2: the reboot notifier wrote the checkpoint (bcache-rs show: clean)" clean
	warm() {
		up || return 1
		restored=$(cat $BC/cache/restored_extents)
		bc_note "restored $restored extents"
		[ "$restored" -gt 0 ] || { echo "nothing restored"; return 1; }
		# (The disk's partition scan read its first block already.)
		b0=$(bc_stat 0 bytes_from_backing) m0=$(bc_stat 0 misses) h0=$(bc_stat 0 hits)
		read32k /tmp/cached.img || return 1
		b=$(($(bc_stat 0 bytes_from_backing) - b0)) m=$(($(bc_stat 0 misses) - m0))
		h=$(($(bc_stat 0 hits) - h0))
		bc_note "first reads after the reboot: $h hits, $m misses, $b bytes from the HDD"
		[ "$h" -gt 0 ] && [ "$m" = 0 ] && [ "$b" = 0 ] || { echo "not all hits"; return 1; }
	}
	rkm_check "boot 2: registered again, the extents are restored and the first reads all hit" warm
	data() {
		dd if="$RKM_HDD" of=/tmp/hdd.img bs=32k iflag=direct skip=512 count=256 2>/dev/null &&
			cmp /tmp/cached.img /tmp/hdd.img || { echo "the cache served other bytes than the HDD's"; return 1; }
		$BV verify --dev /dev/bcache_rs0 $RANGE --seed 9 --version 3 >/tmp/v.log 2>&1 ||
			{ cat /tmp/v.log; return 1; }
		bc_reset
	}
	rkm_check "boot 2: the data is boot 1's (version 3, byte for byte the HDD's)" data
fi
ktap_finished
