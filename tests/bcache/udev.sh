#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Registration by udev (udev/69-bcache-rs.rules.in): systemd-udevd runs in
# the guest with our rule alone, and the disks' "add" uevents (written to
# their uevent files: the event the kernel sends when a disk appears) make
# it load the module and register a formatted backing device and a
# formatted cache, backing device first, cache first, and both at once;
# each is registered once, and the same events again change nothing (no
# registration, no error, no loop). tests/bcache-hotplug plugs the disks
# themselves (QEMU's device_add).

. "$(dirname "$0")/bcache_lib.sh"

bc_reset >/dev/null 2>&1
ktap_print_header
ktap_set_plan 4

UUIDB=44444444-5555-4666-8777-888888888888
HDD=${RKM_HDD##*/}
SSD=${RKM_SSD##*/}

# event ACTION DISK...: the uevent of each disk, then wait for udev.
event() {
	act=$1
	shift
	for d in "$@"; do echo "$act" >"/sys/block/$d/uevent" || return 1; done
	bc_udev_settle
}

registered() {
	bc_registered_once "$1" $UUIDB "$RKM_HDD" "$RKM_SSD" "$2"
}

down() {
	bcache-rs unregister /dev/bcache_rs0 >/dev/null && bc_wait "bcache_rs0 is still there" test ! -e /sys/block/bcache_rs0 &&
		bcache-rs unregister >/dev/null && bc_wait "the cache is still registered" test ! -e "$BC/cache"
}

backing_first() {
	bcache-rs format-backing "$RKM_HDD" --uuid $UUIDB --force >/dev/null &&
		bc_format --size 16M --bucket-size 64k && bc_udev_up || return 1
	bc_mark
	event add "$HDD" || return 1
	grep -q '^bcache_rs ' /proc/modules || { echo "the rule did not load the module"; return 1; }
	[ -b /dev/bcache_rs0 ] || { echo "the backing device is not registered"; return 1; }
	[ ! -e "$BC/cache" ] || { echo "a cache is registered already"; return 1; }
	event add "$SSD" && registered "backing device, then cache"
}
rkm_check "the rule registers a backing device, then its cache (module loaded by the rule)" backing_first

again() {
	bc_mark
	event change "$HDD" "$SSD" && event add "$SSD" "$HDD" && registered "the same events again" 0
}
rkm_check "the same events again register nothing and fail nothing" again

cache_first() {
	down && bc_mark && event add "$SSD" || return 1
	[ -e "$BC/cache" ] || { echo "the cache is not registered"; return 1; }
	[ ! -e /dev/bcache_rs0 ] || { echo "the HDD is registered already"; return 1; }
	event add "$HDD" && registered "cache, then backing device"
}
rkm_check "the rule registers a cache, then a backing device" cache_first

at_once() {
	down && bc_mark || return 1
	echo add >"/sys/block/$HDD/uevent" && echo add >"/sys/block/$SSD/uevent" &&
		echo add >"/sys/block/$HDD/uevent" && event add "$SSD" && registered "both at once, twice"
}
rkm_check "both at once (and each twice): each registered once" at_once

bc_udev_down
bc_reset >/dev/null 2>&1
bcache-rs wipe "$RKM_HDD" >/dev/null 2>&1
ktap_finished
