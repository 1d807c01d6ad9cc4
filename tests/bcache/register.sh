#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# bcache_rs's interface: registering a cache and backing devices through
# sysfs, every bad input (with its errno and a kernel log line, and nothing
# registered), a backing device registered before the cache, two backing
# devices on one cache, the settings files, rmmod and stop while a disk is
# open, and register/unregister cycles.

. "$(dirname "$0")/bcache_lib.sh"

ktap_print_header
ktap_set_plan 24

loads() {
	bc_load && test -w "$BC/register_cache" -a -w "$BC/register_dev"
}
rkm_check "bcache_rs loads and offers register_cache and register_dev" loads

rkm_check "register_cache: a path that does not exist is ENOENT" \
	bc_expect_err "$BC/register_cache" /dev/nonexistent "No such file or directory"
rkm_check "register_cache: a character device is ENOTBLK" \
	bc_expect_err "$BC/register_cache" /dev/null "Block device required"
rkm_check "register_cache: a relative path is EINVAL" \
	bc_expect_err "$BC/register_cache" "dev/$RKM_SSD" "Invalid argument"

# An unformatted SSD, then a formatted one with its superblock corrupted.
unformatted() {
	dd if=/dev/zero of="$RKM_SSD" bs=4096 count=4 oflag=direct 2>/dev/null ||
		{ echo "zeroing the superblock failed"; return 1; }
	bc_expect_err "$BC/register_cache" "$RKM_SSD" "Invalid argument"
}
rkm_check "register_cache: an unformatted device is EINVAL" unformatted
corrupt() {
	bc_format || return 1
	# One byte of the label (superblock offset 72) changes: the crc fails.
	printf 'X' | dd of="$RKM_SSD" bs=1 seek=$((4096 + 72)) conv=notrunc 2>/dev/null ||
		{ echo "corrupting the superblock failed"; return 1; }
	bc_expect_err "$BC/register_cache" "$RKM_SSD" "Bad message"
}
rkm_check "register_cache: a superblock with a bad crc is EBADMSG" corrupt
rkm_check "nothing was registered by the bad writes" test ! -e "$BC/cache"

# A backing device before any cache: it comes up uncached and is attached
# when the cache is registered.
before() {
	bc_write "$BC/register_dev" "$UUID0 $RKM_HDD" || return 1
	test -b /dev/bcache_rs0 || { echo "no /dev/bcache_rs0"; return 1; }
	state=$(bc_stat 0 state)
	[ "$state" = "no cache" ] || { echo "state is '$state'"; return 1; }
	hdd=$(basename "$RKM_HDD")
	[ "$(bc_slaves 0)" = "$hdd " ] || { echo "slaves of bcache_rs0: '$(bc_slaves 0)'"; return 1; }
	[ "$(bc_holders "$RKM_HDD")" = "bcache_rs0 " ] ||
		{ echo "holders of $hdd: '$(bc_holders "$RKM_HDD")'"; return 1; }
}
rkm_check "register_dev before a cache: bcache_rs0 comes up uncached" before
attach() {
	bc_format && bc_write "$BC/register_cache" "$RKM_SSD" || return 1
	state=$(bc_stat 0 state)
	[ "$state" = cached ] || { echo "state is '$state'"; return 1; }
	[ "$(cat $BC/cache/attached)" = 1 ] || { echo "attached: $(cat $BC/cache/attached)"; return 1; }
	want=$(printf '%s\n' "$(basename "$RKM_HDD")" "$(basename "$RKM_SSD")" | sort | tr '\n' ' ')
	[ "$(bc_slaves 0)" = "$want" ] || { echo "slaves of bcache_rs0: '$(bc_slaves 0)'"; return 1; }
	[ "$(bc_holders "$RKM_SSD")" = "bcache_rs0 " ] ||
		{ echo "holders of the SSD: '$(bc_holders "$RKM_SSD")'"; return 1; }
}
rkm_check "register_cache attaches the waiting device (the SSD linked under it)" attach

sizes() {
	want=$(blockdev --getsize64 "$RKM_HDD")
	got=$(blockdev --getsize64 /dev/bcache_rs0)
	[ "$want" = "$got" ] || { echo "bcache_rs0 has $got bytes, the HDD $want"; return 1; }
	buckets=$(cat $BC/cache/buckets_total)
	free=$(cat $BC/cache/buckets_free)
	[ "$buckets" -gt 0 ] && [ "$free" = "$buckets" ] || { echo "buckets $buckets, free $free"; return 1; }
}
rkm_check "bcache_rs0 has the HDD's size; the cache's buckets are all free" sizes

rkm_check "register_cache: a second cache is EBUSY" \
	bc_expect_err "$BC/register_cache" "$RKM_SSD" "Device or resource busy"
rkm_check "register_dev: a malformed UUID is EINVAL" \
	bc_expect_err "$BC/register_dev" "1234-xyz $RKM_SWAP" "Invalid argument"
rkm_check "register_dev: a line without a path is EINVAL" \
	bc_expect_err "$BC/register_dev" "$UUID1" "Invalid argument"
rkm_check "register_dev: a UUID already registered is EEXIST" \
	bc_expect_err "$BC/register_dev" "$UUID0 $RKM_SWAP" "File exists"
rkm_check "register_dev: a device already registered is EEXIST" \
	bc_expect_err "$BC/register_dev" "$UUID1 $RKM_HDD" "File exists"
rkm_check "register_dev: the cache device is EEXIST" \
	bc_expect_err "$BC/register_dev" "$UUID1 $RKM_SSD" "File exists"
held() {
	mkswap "$RKM_SWAP" >/dev/null && swapon "$RKM_SWAP" || { echo "swapon failed"; return 1; }
	bc_expect_err "$BC/register_dev" "$UUID1 $RKM_SWAP" "Device or resource busy"
	rc=$?
	swapoff "$RKM_SWAP"
	return $rc
}
rkm_check "register_dev: a device in use by another holder (swap) is EBUSY" held

two() {
	bc_write "$BC/register_dev" "$UUID1 $RKM_SWAP" || return 1
	test -b /dev/bcache_rs1 || { echo "no /dev/bcache_rs1"; return 1; }
	[ "$(cat $BC/cache/attached)" = 2 ] || { echo "attached: $(cat $BC/cache/attached)"; return 1; }
	[ "$(bc_stat 1 uuid)" = "$UUID1" ] || { echo "uuid: $(bc_stat 1 uuid)"; return 1; }
	want=$(printf '%s\n' "$(basename "$RKM_SWAP")" "$(basename "$RKM_SSD")" | sort | tr '\n' ' ')
	[ "$(bc_slaves 1)" = "$want" ] || { echo "slaves of bcache_rs1: '$(bc_slaves 1)'"; return 1; }
	[ "$(bc_holders "$RKM_SSD")" = "bcache_rs0 bcache_rs1 " ] ||
		{ echo "holders of the SSD: '$(bc_holders "$RKM_SSD")'"; return 1; }
}
rkm_check "a second backing device on the same cache is bcache_rs1" two
rkm_check "unregister: a cache with attached devices is EBUSY" \
	bc_expect_err "$BC/cache/unregister" 1 "Device or resource busy"

settings() {
	d=/sys/block/bcache_rs0/bcache_rs
	[ "$(cat $d/cache_mode)" = "[writethrough] writearound none" ] || { echo "mode: $(cat $d/cache_mode)"; return 1; }
	[ "$(cat $d/sequential_cutoff)" = 4194304 ] || { echo "cutoff: $(cat $d/sequential_cutoff)"; return 1; }
	bc_expect_err $d/cache_mode writeback "Invalid argument" || return 1
	bc_expect_err $d/sequential_cutoff 12abc "Invalid argument" || return 1
	bc_write $d/cache_mode writearound && bc_write $d/sequential_cutoff 1M || return 1
	[ "$(cat $d/cache_mode)" = "writethrough [writearound] none" ] || { echo "mode: $(cat $d/cache_mode)"; return 1; }
	[ "$(cat $d/sequential_cutoff)" = 1048576 ] || { echo "cutoff: $(cat $d/sequential_cutoff)"; return 1; }
	bc_write $d/cache_mode writethrough && bc_write $d/sequential_cutoff 4M
}
rkm_check "cache_mode and sequential_cutoff: defaults, bad values EINVAL, changes" settings

busy() {
	exec 4</dev/bcache_rs0
	out=$(rmmod bcache_rs 2>&1) && { exec 4<&-; echo "rmmod succeeded with bcache_rs0 open"; return 1; }
	bc_expect_err /sys/block/bcache_rs0/bcache_rs/stop 1 "Device or resource busy" || { exec 4<&-; return 1; }
	exec 4<&-
	grep -q '^bcache_rs ' /proc/modules || { echo "bcache_rs was unloaded"; return 1; }
}
rkm_check "rmmod and stop while bcache_rs0 is open are refused (EBUSY)" busy

down() {
	bc_stop 1 && bc_stop 0 && bc_attached 0 || return 1
	for d in "$RKM_HDD" "$RKM_SWAP" "$RKM_SSD"; do
		[ -z "$(bc_holders "$d")" ] || { echo "holders of $d: '$(bc_holders "$d")'"; return 1; }
	done
	bc_unregister
}
rkm_check "stop both devices (unlinked from the HDD and SSD), then unregister the cache" down

cycles() {
	for i in 1 2 3; do
		bc_write "$BC/register_cache" "$RKM_SSD" || return 1
		bc_write "$BC/register_dev" "$UUID0 $RKM_HDD" || return 1
		dd if=/dev/bcache_rs0 of=/dev/null bs=64k count=16 2>/dev/null || { echo "read failed"; return 1; }
		bc_stop 0 && bc_unregister || return 1
	done
}
rkm_check "three register/read/stop/unregister cycles" cycles

unload() {
	bc_write "$BC/register_cache" "$RKM_SSD" && bc_write "$BC/register_dev" "$UUID0 $RKM_HDD" || return 1
	rmmod bcache_rs || { echo "rmmod failed"; return 1; }
	test ! -e /dev/bcache_rs0 || { echo "/dev/bcache_rs0 is still there"; return 1; }
}
rkm_check "rmmod with a registered cache and device tears both down" unload

ktap_finished
