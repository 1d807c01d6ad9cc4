#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The workload of bcache-powercut's boots that end in a power cut (the
# guest's /init runs it after the results are out: rkm_powercut_workload).
# It arms the cut, then cycles until the host kills QEMU through the states
# a crash can find the cache in:
#   - the cold set read through /dev/bcache_rs0 (cached, or hits);
#   - race: verified reads and writes of the hot set through
#     /dev/bcache_rs0 (half of the writes O_DSYNC), each write recorded in
#     the ack log on the swap disk once acknowledged; reads fill the cache;
#   - the disk stopped and the cache unregistered: the checkpoint written;
#   - a second at rest, unregistered (a machine switched off cleanly);
#   - registered again: the checkpoint read, a session opened.
# A failure of its own checks prints RKM-POWERCUT-FAILED (the host fails
# the boot) and waits for the cut.

HOT="--offset 16M --size 8M"
BC=/sys/kernel/bcache_rs

fail() {
	echo "RKM-POWERCUT-FAILED: $*"
	while :; do sleep 1; done
}

# gone PATH: wait up to 60 s for PATH to disappear.
gone() {
	n=0
	while [ -e "$1" ]; do
		n=$((n + 1))
		[ $n -le 600 ] || fail "$1 is still there after 60 s"
		sleep 0.1
	done
}

echo "RKM-POWERCUT-ARMED"
cycle=0
while :; do
	cycle=$((cycle + 1))
	dd if=/dev/bcache_rs0 of=/dev/null bs=32k iflag=direct skip=1024 count=128 2>/dev/null ||
		fail "cannot read the cold set"
	echo "rkm: cut-workload: cycle $cycle: race"
	rkm-blkverify race --dev /dev/bcache_rs0 $HOT --seconds 2 --threads 2 --read-pct 50 \
		--dsync-pct 50 --ack-log "$RKM_SWAP" >/tmp/race.log 2>&1
	rc=$?
	[ $rc = 0 ] || { sed 's/^/rkm: race: /' /tmp/race.log; fail "race exited $rc in cycle $cycle"; }
	grep '^blkverify: race ' /tmp/race.log | sed 's/^/rkm: /'
	echo "rkm: cut-workload: cycle $cycle: stop, unregister (the checkpoint)"
	bcache-rs unregister "$RKM_HDD" >/dev/null || fail "cannot stop bcache_rs0"
	gone /sys/block/bcache_rs0
	bcache-rs unregister >/dev/null || fail "cannot unregister the cache"
	gone $BC/cache
	echo "rkm: cut-workload: cycle $cycle: at rest"
	sleep 1
	echo "rkm: cut-workload: cycle $cycle: register"
	bcache-rs register "$RKM_SSD" >/dev/null || fail "cannot register the cache"
	bcache-rs register "$RKM_HDD" >/dev/null || fail "cannot register the HDD"
	echo 0 >/sys/block/bcache_rs0/bcache_rs/sequential_cutoff
	echo "rkm: cut-workload: cycle $cycle: restored $(cat $BC/cache/restored_extents) extents"
done
