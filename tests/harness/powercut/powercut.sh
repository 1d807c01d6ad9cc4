#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Harness self-test: a suite of three boots of the same disks whose first
# two end in a power cut (powercut= in settings). Boot 1 marks the swap
# disk and leaves a workload that arms the cut and runs on: the host kills
# QEMU, and the boot passes. Boot 2's workload reports a failure and ends
# without arming: the boot fails twice over (the failure, no cut). Boot 3,
# which ends normally, finds boot 1's mark on the disk.
. "$(dirname "$0")/../lib/rkm.sh"
ktap_print_header
ktap_set_plan 1
MARK=rkm-harness-powercut-mark
case "$RKM_PHASE" in
1)
	mark() {
		[ "$RKM_POWERCUT" = 1 ] || { echo "RKM_POWERCUT is '$RKM_POWERCUT'"; return 1; }
		echo $MARK | dd of="$RKM_SWAP" bs=4096 conv=sync,fsync 2>/dev/null || return 1
		printf 'echo RKM-POWERCUT-ARMED\nwhile :; do sleep 1; done\n' >/tmp/w.sh
		rkm_powercut_workload /tmp/w.sh
	}
	rkm_check "boot 1: the disk marked, a workload left for the power cut" mark
	;;
2)
	printf 'echo "RKM-POWERCUT-FAILED: a check of the workload fails on purpose"\n' >/tmp/w.sh
	rkm_check "boot 2: a workload that fails and never arms its cut" rkm_powercut_workload /tmp/w.sh
	;;
*)
	found() {
		[ "$RKM_POWERCUT" = 0 ] || { echo "the last boot is cut too"; return 1; }
		rkm_powercut_workload /tmp/none >/dev/null 2>&1 && { echo "a workload was accepted"; return 1; }
		head -c ${#MARK} "$RKM_SWAP" | grep -qx $MARK || { echo "boot 1's mark is gone"; return 1; }
	}
	rkm_check "boot 3 (no cut): boot 1's mark is on the disk" found
	;;
esac
ktap_finished
