#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
#
# /init of the test guest (scripts/vm-run.py builds the initramfs around it).
# Mounts what tests need, finds the disks by their serial numbers, runs the
# kselftest suites in the order of $RKM_SUITES (or a script), writes the KTAP
# to ttyS1 and the dmesg to ttyS2, prints the kernel's taint flags and the
# end marker and reboots, which QEMU (-no-reboot) turns into its exit.

/bin/busybox --install -s /bin
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
# devtmpfs has no /dev/std* links (udev makes them); the kselftest runner
# writes to /dev/stdout.
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t debugfs debugfs /sys/kernel/debug
mount -t cgroup2 cgroup2 /sys/fs/cgroup
echo /sbin/modprobe >/proc/sys/kernel/modprobe 2>/dev/null
ln -sf /bin/modprobe /sbin/modprobe
hostname rkm-guest

. /etc/rkm.env

# The disks, by the serial numbers the harness gave them.
for dev in /sys/block/*; do
	name=${dev##*/}
	serial=$(cat "$dev/serial" "$dev/device/serial" 2>/dev/null | head -n 1 | tr -d ' ')
	case "$serial" in
	rkm-hdd) RKM_HDD=/dev/$name ;;
	rkm-ssd) RKM_SSD=/dev/$name ;;
	rkm-swap) RKM_SWAP=/dev/$name ;;
	esac
done
# A suite of several boots of the same disks (boots= in its settings) is
# told which boot this is (rkm.phase= on the kernel command line).
RKM_PHASE=$(sed -n 's/.*rkm\.phase=\([0-9]*\).*/\1/p' /proc/cmdline)
RKM_PHASE=${RKM_PHASE:-1}
# A boot that ends in a power cut (powercut= in the suite's settings).
RKM_POWERCUT=0
grep -qw 'rkm\.powercut=1' /proc/cmdline && RKM_POWERCUT=1
export RKM_HDD RKM_SSD RKM_SWAP RKM_MODULES RKM_FLAVOUR RKM_CPUS RKM_PHASE RKM_POWERCUT
# The host compares the CPUs online with the vCPUs it booted ($RKM_CPUS).
echo "rkm: guest up: kernel $(uname -r), $(nproc) CPUs, HDD=${RKM_HDD:-none} SSD=${RKM_SSD:-none} swap=${RKM_SWAP:-none}"

status=0
if [ "$RKM_MODE" = script ]; then
	cd /root
	sh /root/script.sh </dev/null
	status=$?
else
	cd /kselftest
	# One suite at a time, in the host's order ($RKM_SUITES; the runner
	# alone would sort them). The KTAP goes to the console and, alone, to
	# ttyS1 for the host's parser. If the suite named by $RKM_FAIL_FAST
	# (smoke) does not pass, the others are not run: the host reports them.
	for suite in $RKM_SUITES; do
		./run_kselftest.sh -c "$suite" </dev/null 2>&1 | tee /dev/ttyS1 /tmp/rkm-suite.ktap
		if [ "$suite" = "$RKM_FAIL_FAST" ] &&
			{ ! grep -q '^ok ' /tmp/rkm-suite.ktap || grep -qE '^not ok |^ok .*# SKIP' /tmp/rkm-suite.ktap; }; then
			echo "rkm: $suite did not pass: the other suites of this run are not run"
			status=1
			break
		fi
	done
fi

sync
dmesg >/dev/ttyS2
# The taint flags at the end of the run (scripts/kreport.py judges them).
echo "RKM-TAINTED $(cat /proc/sys/kernel/tainted)"
echo "RKM-GUEST-DONE status=$status"
# A power-cut boot: the workload a test left (rkm_powercut_workload) runs
# now, after the results are out; it prints RKM-POWERCUT-ARMED and the host
# kills QEMU at an instant drawn from its seed. If it ends first, the
# guest reboots and the host fails the boot (no cut).
if [ "$RKM_POWERCUT" = 1 ]; then
	if [ -f /run/rkm-powercut ]; then
		echo "rkm: the results are out; the power-cut workload runs until the host cuts the power"
		sh /run/rkm-powercut </dev/null 2>&1
		echo "rkm: the power-cut workload ended (status $?) before the cut"
	else
		echo "rkm: no test left a power-cut workload (/run/rkm-powercut)"
	fi
fi
reboot -f
# Not reached; a guest that gets here hangs and the host's timeout says so.
sleep 1000000
