#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Formatted backing devices (bcache-rs format-backing): registered by their
# path alone (the superblock names them), /dev/bcache_rs0 is the data area
# after the data offset, byte for byte, and the superblock is never
# written through it; they are trusted by default (warm after an
# unregister); a damaged backing superblock or a UUID that is not its own
# is refused with a precise errno and line; wipe makes the device an
# in-place one again.

. "$(dirname "$0")/bcache_lib.sh"

bc_reset >/dev/null 2>&1
ktap_print_header
ktap_set_plan 6

D0=/sys/block/bcache_rs0/bcache_rs
UUIDB=22222222-3333-4444-8555-666666666666

read_rs() {
	dd if=/dev/bcache_rs0 of="$1" bs=32k iflag=direct count=64 2>/dev/null
}

# The first 2 MiB of the data area, read raw from the HDD (data offset
# 8 KiB: 16 sectors).
read_raw() {
	dd if="$RKM_HDD" of="$1" bs=512 iflag=direct skip=16 count=4096 2>/dev/null
}

formatted() {
	bcache-rs format-backing "$RKM_HDD" --uuid $UUIDB --force >/dev/null &&
		bc_load && bc_format --size 16M --bucket-size 64k &&
		bcache-rs register "$RKM_SSD" >/dev/null && bcache-rs register "$RKM_HDD" >/dev/null || return 1
	[ "$(cat $D0/uuid)" = $UUIDB ] || { echo "uuid $(cat $D0/uuid)"; return 1; }
	[ "$(cat $D0/data_offset)" = 16 ] || { echo "data_offset $(cat $D0/data_offset)"; return 1; }
	[ "$(cat $D0/trusted)" = 1 ] || { echo "a formatted device is not trusted"; return 1; }
	want=$(($(blockdev --getsz "$RKM_HDD") - 16))
	[ "$(blockdev --getsz /dev/bcache_rs0)" = $want ] ||
		{ echo "bcache_rs0 has $(blockdev --getsz /dev/bcache_rs0) sectors, want $want"; return 1; }
	bc_write $D0/sequential_cutoff 0
}
rkm_check "a formatted device registers by its path: its UUID, data offset, size" formatted

offset() {
	rkm-blkverify fill --dev /dev/bcache_rs0 --offset 0 --size 2M --seed 5 >/dev/null || return 1
	read_rs /tmp/rs.img && read_rs /tmp/rs.img && read_raw /tmp/raw.img || return 1
	cmp /tmp/rs.img /tmp/raw.img || { echo "bcache_rs0's first 2 MiB are not the HDD's after 8 KiB"; return 1; }
	[ "$(bc_stat 0 hits)" -gt 0 ] || { echo "no hits"; return 1; }
	bcache-rs show "$RKM_HDD" | grep -q "bcache_rs backing device" ||
		{ bcache-rs show "$RKM_HDD"; echo "the backing superblock is gone"; return 1; }
}
rkm_check "writes land after the data offset; the superblock stays" offset

warm() {
	bcache-rs unregister "$RKM_HDD" >/dev/null && bc_wait "bcache_rs0 is still there" test ! -e /sys/block/bcache_rs0 &&
		bcache-rs unregister >/dev/null && bc_wait "the cache is still registered" test ! -e "$BC/cache" || return 1
	bcache-rs register "$RKM_SSD" >/dev/null && bcache-rs register "$RKM_HDD" >/dev/null || return 1
	[ "$(cat $BC/cache/restored_extents)" -gt 0 ] || { echo "nothing restored"; return 1; }
	b0=$(bc_stat 0 bytes_from_backing)
	read_rs /tmp/rs2.img || return 1
	[ "$(bc_stat 0 bytes_from_backing)" = "$b0" ] || { echo "reads went to the HDD"; return 1; }
	cmp /tmp/rs2.img /tmp/raw.img || { echo "the cache served other bytes"; return 1; }
}
rkm_check "a formatted device is trusted: warm after an unregister" warm

refusals() {
	bc_stop 0 || return 1
	bc_expect_err "$BC/register_dev" "$UUID0 $RKM_HDD" "Invalid argument" || return 1
	# One byte of the backing superblock's label: its crc fails.
	printf 'X' | dd of="$RKM_HDD" bs=1 seek=$((4096 + 80)) conv=notrunc,fsync 2>/dev/null || return 1
	bc_expect_err "$BC/register_dev" "$RKM_HDD" "Bad message" || return 1
	dmesg | tail -n 3 | grep -q 'backing superblock crc32c mismatch' ||
		{ dmesg | tail -n 3; echo "no line naming the crc"; return 1; }
}
rkm_check "a UUID not its own is EINVAL; a damaged backing superblock EBADMSG" refusals

wiped() {
	bcache-rs wipe "$RKM_HDD" >/dev/null || return 1
	bc_expect_err "$BC/register_dev" "$RKM_HDD" "Invalid argument" || return 1
	bc_write "$BC/register_dev" "$UUID0 $RKM_HDD" || return 1
	# Number 0 keeps the formatted device's extents (it may come back):
	# the new one is bcache_rs1, in place.
	[ ! -e /sys/block/bcache_rs0 ] && [ "$(bc_stat 1 uuid)" = $UUID0 ] &&
		[ "$(bc_stat 1 data_offset)" = 0 ] || { ls /sys/block; return 1; }
}
rkm_check "wiped, it is an in-place device again (a path alone is EINVAL)" wiped

rkm_check "teardown" bc_reset
ktap_finished
