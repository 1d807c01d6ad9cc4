#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The udev rule (udev/69-bcache-rs.rules.in) registers disks plugged into a
# running guest. Boot 1 formats the HDD as a backing device and the SSD as
# a cache. Boots 2 and 3 start without them (hotplug= in settings) and
# systemd-udevd with our rule alone; the test plugs them with QEMU's
# device_add (rkm_hotplug), the backing device first in boot 2, the cache
# first in boot 3: the rule loads the module and registers each, once, and
# the device is attached to the cache.

. "$(dirname "$0")/bcache_lib.sh"

UUIDB=55555555-6666-4777-8888-999999999999
ktap_print_header

if [ "$RKM_PHASE" = 1 ]; then
	ktap_set_plan 1
	format() {
		bcache-rs format-backing "$RKM_HDD" --uuid $UUIDB --force >/dev/null &&
			bc_format --size 16M --bucket-size 64k
	}
	rkm_check "boot 1: the HDD formatted as a backing device, the SSD as a cache" format
	ktap_finished
	exit
fi

ktap_set_plan 2
if [ "$RKM_PHASE" = 2 ]; then
	first=hdd second=ssd
else
	first=ssd second=hdd
fi
up() {
	[ -z "$RKM_HDD" ] && [ -z "$RKM_SSD" ] || { echo "the disks are there at boot: HDD=$RKM_HDD SSD=$RKM_SSD"; return 1; }
	! grep -q '^bcache_rs ' /proc/modules || { echo "the module is loaded already"; return 1; }
	bc_udev_up
}
rkm_check "boot $RKM_PHASE: no HDD, no SSD; udevd with the rule" up
plugged() {
	bc_mark
	for d in $first $second; do
		dev=$(rkm_hotplug $d) || return 1
		bc_udev_settle || return 1
		case $d in
		hdd) RKM_HDD=$dev ;;
		ssd) RKM_SSD=$dev ;;
		esac
		if [ $d = $first ]; then
			grep -q '^bcache_rs ' /proc/modules || { echo "the rule did not load the module"; return 1; }
			if [ $d = hdd ]; then
				[ -b /dev/bcache_rs0 ] || { echo "the plugged backing device is not registered"; return 1; }
			else
				[ -e "$BC/cache" ] || { echo "the plugged cache is not registered"; return 1; }
			fi
		fi
	done
	bc_registered_once "plugged $first, then $second" $UUIDB "$RKM_HDD" "$RKM_SSD"
}
rkm_check "boot $RKM_PHASE: plugged $first, then $second: each registered once, attached" plugged
bc_udev_down
bc_reset >/dev/null 2>&1
ktap_finished
