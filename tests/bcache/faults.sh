#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# bcache_rs when the SSD dies: the NVMe controller is removed from the PCI
# bus under a verified workload. Hits fail on the SSD and are retried on the
# backing device (counted), the cache is detached after its error limit, and
# the disk carries on uncached without one failed or wrong read. Then the
# device is stopped, the cache unregistered, the module unloaded, and the
# NVMe controller brought back by a PCI rescan for the suites that follow.

. "$(dirname "$0")/bcache_lib.sh"

bc_reset >/dev/null 2>&1
ktap_print_header
ktap_set_plan 5

FIO="fio --output-format=terse --terse-version=3 --minimal --filename=/dev/bcache_rs0 --name=f --ioengine=libaio --iodepth=8 --direct=1 --size=32M --bs=4k --randseed=5"

cached() {
	bc_up || return 1
	$FIO --rw=randwrite --verify=crc32c --do_verify=0 >/dev/null || { echo "fio write failed"; return 1; }
	$FIO --rw=randwrite --verify=crc32c --verify_only=1 >/dev/null || { echo "fio verify failed"; return 1; }
	[ "$(bc_stat 0 hits)" -gt 0 ] || { echo "no hits"; return 1; }
}
rkm_check "32 MiB written through bcache_rs0 and verified from the cache" cached

ctrl=$(basename "$(readlink -f /sys/block/${RKM_SSD#/dev/}/device)")
pci=$(readlink -f /sys/class/nvme/$ctrl/device)
dies() {
	[ -e "$pci/remove" ] || { echo "no PCI device for $RKM_SSD ($ctrl: $pci)"; return 1; }
	rkm_dmesg_mark "faults: removing the NVMe controller $pci"
	echo 1 >"$pci/remove"
	$FIO --rw=randwrite --verify=crc32c --verify_only=1 >/dev/null 2>/tmp/fio.err ||
		{ cat /tmp/fio.err; echo "a read failed or was wrong after the SSD died"; return 1; }
	retries=$(bc_stat 0 ssd_read_retries)
	bc_note "SSD read errors retried on the HDD: $retries; cache io_errors: $(cat $BC/cache/io_errors)"
	[ "$retries" -gt 0 ] || { echo "no read was retried"; return 1; }
}
rkm_check "the SSD dies: every read is still right (retried on the HDD)" dies

detached() {
	[ "$(cat $BC/cache/state)" = failed ] || { echo "cache state: $(cat $BC/cache/state)"; return 1; }
	[ "$(bc_stat 0 state)" = "cache failed" ] || { echo "device state: $(bc_stat 0 state)"; return 1; }
	r0=$(bc_stat 0 ssd_read_retries)
	$FIO --rw=randrw --verify=crc32c --offset=64M >/dev/null 2>/tmp/fio.err || { cat /tmp/fio.err; return 1; }
	r1=$(bc_stat 0 ssd_read_retries)
	[ "$r0" = "$r1" ] || { echo "the detached cache was still read: retries $r0 -> $r1"; return 1; }
}
rkm_check "past the error limit the cache is detached and I/O goes on uncached" detached

down() {
	bc_stop 0 && bc_unregister && rmmod bcache_rs
}
rkm_check "stop, unregister and unload with the SSD gone" down

back() {
	echo 1 >/sys/bus/pci/rescan
	i=0
	while [ ! -b "$RKM_SSD" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	[ -b "$RKM_SSD" ] || { echo "$RKM_SSD did not come back"; return 1; }
	serial=$(tr -d ' ' <"/sys/block/${RKM_SSD#/dev/}/device/serial")
	[ "$serial" = rkm-ssd ] || { echo "$RKM_SSD has serial '$serial'"; return 1; }
}
rkm_check "a PCI rescan brings the NVMe SSD back as $RKM_SSD" back

ktap_finished
