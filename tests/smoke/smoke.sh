#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# smoke: checks the test kernel and the guest that every other suite relies
# on: Rust, zswap, cgroup v2 with memcg, the C modules we compare against, the
# three disks with the right rotational flags, and that every module of the
# project loads and unloads cleanly.

. "$(dirname "$0")/../lib/rkm.sh"

C_PEERS="zbud z3fold bcache dm-cache"
# Test and benchmark modules run their work when loaded; their own suites
# (and bench/) load them.
set --
for m in $RKM_MODULES; do
	case "$m" in test_* | bench_*) ;; *) set -- "$@" "$m" ;; esac
done
nmods=$#

ktap_print_header
ktap_set_plan $((12 + (nmods > 0 ? nmods : 1)))

# As many CPUs online as the host booted vCPUs ($RKM_CPUS, the suite's
# cpus= setting), not a fixed number.
cpus_online() {
	case "$RKM_CPUS" in
	'' | *[!0-9]*) echo "RKM_CPUS is '$RKM_CPUS', not a number"; return 1 ;;
	esac
	[ "$(nproc)" -eq "$RKM_CPUS" ] || { echo "$(nproc) CPUs online, $RKM_CPUS booted"; return 1; }
}
rkm_check "the guest has the ${RKM_CPUS:-?} CPUs it was booted with" cpus_online

# Rust symbols are mangled with the v0 scheme (_R...): a kernel built with
# CONFIG_RUST has some in kallsyms.
rkm_check "the kernel has Rust support (Rust symbols in kallsyms)" \
	grep -qE ' _R[A-Za-z0-9_]+$' /proc/kallsyms

rkm_check "zswap is built in, with its enabled and zpool parameters" \
	test -r /sys/module/zswap/parameters/enabled -a -w /sys/module/zswap/parameters/zpool

rkm_check "zswap's zpool parameter takes zsmalloc" \
	sh -c 'echo zsmalloc >/sys/module/zswap/parameters/zpool &&
		test "$(cat /sys/module/zswap/parameters/zpool)" = zsmalloc'

rkm_check "cgroup v2 offers the memory controller" \
	grep -qw memory /sys/fs/cgroup/cgroup.controllers

rkm_check "debugfs is mounted" grep -q ' /sys/kernel/debug debugfs ' /proc/mounts

peers_load() {
	for m in $C_PEERS; do
		modprobe "$m" || { echo "modprobe $m failed"; return 1; }
	done
	for m in $C_PEERS; do
		modprobe -r "$m" || { echo "modprobe -r $m failed"; return 1; }
	done
}
rkm_check "the C peers ($C_PEERS) load and unload" peers_load

rotational() {
	dev=$1 want=$2
	[ -n "$dev" ] || { echo "the disk was not found by its serial number"; return 1; }
	[ -b "$dev" ] || { echo "$dev is not a block device"; return 1; }
	got=$(cat "/sys/block/${dev#/dev/}/queue/rotational")
	[ "$got" = "$want" ] || { echo "$dev: rotational is $got, not $want"; return 1; }
}
rkm_check "the HDD is a rotational disk (${RKM_HDD:-missing})" rotational "$RKM_HDD" 1
nvme_ssd() {
	case "$RKM_SSD" in
	/dev/nvme*) rotational "$RKM_SSD" 0 ;;
	*) echo "the SSD is not an NVMe disk: '$RKM_SSD'"; return 1 ;;
	esac
}
rkm_check "the SSD is a non-rotational NVMe disk (${RKM_SSD:-missing})" nvme_ssd
rkm_check "the swap disk is present (${RKM_SWAP:-missing})" test -b "${RKM_SWAP:-/nonexistent}"

# The disks' discard as the harness promises (protocols §3): the HDD
# discards, and a discarded range reads back zeros; the swap disk offers
# neither discard nor write-zeroes.
nonzero_bytes() {
	head -c 1048576 "$1" | tr -d '\000' | wc -c
}
hdd_discard() {
	q=/sys/block/${RKM_HDD#/dev/}/queue
	[ "$(cat $q/discard_max_bytes)" -gt 0 ] || { echo "discard_max_bytes is 0"; return 1; }
	tr '\000' '\377' </dev/zero | head -c 1048576 >"$RKM_HDD" && sync || return 1
	echo 3 >/proc/sys/vm/drop_caches
	n=$(nonzero_bytes "$RKM_HDD")
	[ "$n" -eq 1048576 ] || { echo "wrote 1 MiB of 0xff, read back $n non-zero bytes"; return 1; }
	blkdiscard -o 0 -l 1048576 "$RKM_HDD" || return 1
	echo 3 >/proc/sys/vm/drop_caches
	n=$(nonzero_bytes "$RKM_HDD")
	[ "$n" -eq 0 ] || { echo "$n non-zero bytes in the discarded MiB"; return 1; }
}
rkm_check "the HDD discards, and a discarded range reads back zeros" hdd_discard
swap_no_discard() {
	q=/sys/block/${RKM_SWAP#/dev/}/queue
	for f in discard_max_bytes write_zeroes_max_bytes; do
		[ "$(cat $q/$f)" = 0 ] || { echo "$f is $(cat $q/$f), not 0"; return 1; }
	done
}
rkm_check "the swap disk has neither discard nor write-zeroes" swap_no_discard

load_unload() {
	m=$1
	modprobe "$m" || { echo "modprobe $m failed"; return 1; }
	grep -q "^$m " /proc/modules || { echo "$m is not in /proc/modules after modprobe"; return 1; }
	rmmod "$m" || { echo "rmmod $m failed"; return 1; }
	! grep -q "^$m " /proc/modules || { echo "$m is still loaded after rmmod"; return 1; }
}
[ "$nmods" -gt 0 ] || rkm_skip "every module of the project loads and unloads" "no module yet but test and benchmark modules"
for m in "$@"; do
	rkm_dmesg_mark "smoke: load and unload $m"
	rkm_check "module $m loads and unloads cleanly" load_unload "$m"
done

ktap_finished
