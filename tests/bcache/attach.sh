#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# attach and detach (bcache-rs attach/detach, the disk's attach and detach
# files): a detached device goes on uncached and loses its cached data
# (written while detached, it would be stale: the test writes a new version
# then, and attached again the disk reads it, not the old one); a cache
# registered later leaves a detached device alone until attach; attach
# without a cache is ENODEV, with a line.

. "$(dirname "$0")/bcache_lib.sh"

bc_reset >/dev/null 2>&1
ktap_print_header
ktap_set_plan 4

UUIDB=66666666-7777-4888-8999-aaaaaaaaaaaa
D0=/sys/block/bcache_rs0/bcache_rs
RANGE="--offset 0 --size 2M"

read32k() {
	dd if=/dev/bcache_rs0 of=/dev/null bs=32k iflag=direct count=64 2>/dev/null
}

detached() {
	bcache-rs format-backing "$RKM_HDD" --uuid $UUIDB --force >/dev/null && bc_load &&
		bc_format --size 16M --bucket-size 64k && bcache-rs register "$RKM_SSD" >/dev/null &&
		bcache-rs register "$RKM_HDD" >/dev/null && bc_write $D0/sequential_cutoff 0 || return 1
	rkm-blkverify fill --dev /dev/bcache_rs0 $RANGE --version 1 >/dev/null && read32k && read32k || return 1
	[ "$(cat $BC/cache/index_entries)" -gt 0 ] || { echo "nothing cached"; return 1; }
	bcache-rs detach "$RKM_HDD" >/dev/null || return 1
	[ "$(cat $D0/state)" = "no cache" ] || { echo "state '$(cat $D0/state)' after detach"; return 1; }
	[ "$(cat $BC/cache/attached)" = 0 ] || { echo "attached $(cat $BC/cache/attached) after detach"; return 1; }
	bc_wait "the detached device's extents are still indexed" grep -qx 0 $BC/cache/index_entries
	h0=$(bc_stat 0 hits)
	read32k && [ "$(bc_stat 0 hits)" = "$h0" ] || { echo "a detached device's reads hit"; return 1; }
	# Detached again: success, nothing changes.
	bcache-rs detach /dev/bcache_rs0 >/dev/null
}
rkm_check "detach: uncached, its cached data dropped (detached again: success)" detached

attached() {
	rkm-blkverify fill --dev /dev/bcache_rs0 $RANGE --version 2 >/dev/null || return 1
	bcache-rs attach "$RKM_HDD" >/dev/null || return 1
	[ "$(cat $D0/state)" = cached ] && [ "$(cat $BC/cache/attached)" = 1 ] ||
		{ echo "state '$(cat $D0/state)', attached $(cat $BC/cache/attached)"; return 1; }
	read32k && read32k || return 1
	[ "$(bc_stat 0 hits)" -gt 0 ] || { echo "no hits once attached"; return 1; }
	rkm-blkverify verify --dev /dev/bcache_rs0 $RANGE --version 2 --io-size 32k >/tmp/v.log 2>&1 ||
		{ cat /tmp/v.log; return 1; }
}
rkm_check "attach: cached again, and the data written while detached is what it reads" attached

held_off() {
	bcache-rs detach "$RKM_HDD" >/dev/null && bcache-rs unregister >/dev/null &&
		bc_wait "the cache is still registered" test ! -e "$BC/cache" || return 1
	bc_expect_err $D0/attach 1 "No such device" || return 1
	bcache-rs register "$RKM_SSD" >/dev/null || return 1
	[ "$(cat $D0/state)" = "no cache" ] && [ "$(cat $BC/cache/attached)" = 0 ] ||
		{ echo "the cache registered later attached the detached device"; return 1; }
}
rkm_check "a detached device stays detached when a cache registers; attach without one is ENODEV" held_off

again() {
	bcache-rs attach /dev/bcache_rs0 >/dev/null && bc_attached 1 || return 1
	bc_expect_err $D0/detach 2 "Invalid argument" || return 1
	bc_reset
}
rkm_check "attach after the cache came; a bad write to detach is EINVAL" again

bcache-rs wipe "$RKM_HDD" >/dev/null 2>&1
ktap_finished
