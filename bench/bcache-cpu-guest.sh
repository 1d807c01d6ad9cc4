#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# In the perf guest (bench/bcache.sh, a second boot): the hit path by CPU
# cost alone. The SSD is replaced by RAM-backed null_blk devices, so that
# QEMU's NVMe emulation (a doorbell write costs about 22 us under TCG, and
# the guest idles most of the time waiting for it) is out of the way and
# the guest's two vCPUs are the bottleneck: IOPS then measure what each
# stacked driver costs a hit.
#
# Targets, each on its own null_blk device of 1 GiB:
#   nullb            the raw device (nullb0)
#   linear           dm-linear over nullb0: a remap per bio, the floor of
#                    any bio-based driver
#   bcache           the C bcache, cache nullb1, backing HDD partition 2
#   bcache_rs        bcache_rs, cache nullb2, backing HDD partition 3
#   bcache_rs:nostat bcache_rs with its disk's queue/iostats set to 0
# Job "hit-cpu": 4 KiB uniform random reads over 64 MiB (every read a hit,
# after one pass of 64 KiB reads through each cache), fio libaio O_DIRECT,
# two jobs of iodepth 16 (both vCPUs), BENCH_CPU_ROUNDS rounds (default 8)
# of BENCH_CPU_SECS seconds (default 5) a target, in reverse order every
# other round. Printed: each target's rounds, and the ratios paired by
# round (median and range).

. /etc/rkm.env
ROUNDS=${BENCH_CPU_ROUNDS:-8}
SECS=${BENCH_CPU_SECS:-5}
UUID=11111111-2222-4333-8444-555555555555
RES=/tmp/bench-bcache-cpu
: >$RES

part() {
	case $1 in
	*[0-9]) echo "${1}p$2" ;;
	*) echo "$1$2" ;;
	esac
}

setup() {
	printf 'o\nn\np\n1\n2048\n+256M\nn\np\n2\n\n+256M\nn\np\n3\n\n+256M\nw\n' |
		fdisk "$RKM_HDD" >/dev/null 2>&1
	i=0
	while [ ! -b "$(part "$RKM_HDD" 3)" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	HDD_C=$(part "$RKM_HDD" 2) HDD_RS=$(part "$RKM_HDD" 3)
	[ -b "$HDD_RS" ] || { echo "bench: cannot partition $RKM_HDD"; return 1; }
	modprobe null_blk nr_devices=3 gb=1 memory_backed=1 || return 1
	# The raw device's reads hit written sectors, as the caches' do.
	fio --name=fill --filename=/dev/nullb0 --rw=write --bs=1M --size=64M --direct=1 \
		>/dev/null || return 1
	modprobe dm-mod || return 1
	sz=$(blockdev --getsz /dev/nullb0) || return 1
	dmsetup create rkm-linear --noudevsync --table "0 $sz linear /dev/nullb0 0" || return 1
	LINEAR=/dev/$(dmsetup info -c --noheadings -o blkdevname rkm-linear) || return 1
	modprobe bcache || return 1
	make-bcache --wipe-bcache -C /dev/nullb1 -B "$HDD_C" >/dev/null || return 1
	echo /dev/nullb1 >/sys/fs/bcache/register 2>/dev/null
	echo "$HDD_C" >/sys/fs/bcache/register 2>/dev/null
	i=0
	while [ ! -b /dev/bcache0 ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
	[ -b /dev/bcache0 ] || { echo "bench: no /dev/bcache0"; return 1; }
	echo writethrough >/sys/block/bcache0/bcache/cache_mode || return 1
	echo $((4 << 20)) >/sys/block/bcache0/bcache/sequential_cutoff || return 1
	modprobe bcache_rs || return 1
	bcache-rs format-cache /dev/nullb2 --force >/dev/null || return 1
	echo /dev/nullb2 >/sys/kernel/bcache_rs/register_cache || return 1
	echo "$UUID $HDD_RS" >/sys/kernel/bcache_rs/register_dev || return 1
}

STAT=/sys/block/bcache_rs0/queue/iostats

# target TARGET: sets $dev (and bcache_rs's iostats).
target() {
	case $1 in
	nullb) dev=/dev/nullb0 ;;
	linear) dev=$LINEAR ;;
	bcache) dev=/dev/bcache0 ;;
	bcache_rs) echo 1 >$STAT; dev=/dev/bcache_rs0 ;;
	bcache_rs:nostat) echo 0 >$STAT; dev=/dev/bcache_rs0 ;;
	esac
}

# hits of the cache behind TARGET, or 0.
hits() {
	case $1 in
	bcache) cat /sys/block/bcache0/bcache/stats_total/cache_hits ;;
	bcache_rs*) cat /sys/block/bcache_rs0/bcache_rs/hits ;;
	*) echo 0 ;;
	esac
}

setup || { echo "bench: cannot set up the hit-cpu targets"; exit 1; }
for d in /dev/bcache0 /dev/bcache_rs0; do
	fio --name=warm --filename=$d --rw=randread --bs=64k --size=64M --direct=1 \
		--ioengine=libaio --iodepth=16 >/dev/null || { echo "bench: cannot warm $d"; exit 1; }
done
TARGETS="nullb linear bcache bcache_rs bcache_rs:nostat"
r=1
while [ $r -le "$ROUNDS" ]; do
	order=$TARGETS
	[ $((r % 2)) = 0 ] && order=$(echo $TARGETS | tr ' ' '\n' | sed -n '1!G;h;$p')
	for t in $order; do
		target $t
		h0=$(hits $t)
		iops=$(fio --minimal --name=hit-cpu --filename="$dev" --ioengine=libaio --iodepth=16 \
			--direct=1 --numjobs=2 --group_reporting --randseed=42 --time_based \
			--runtime="$SECS" --ramp_time=1 --rw=randread --bs=4k --size=64M 2>/dev/null |
			cut -d';' -f8)
		h1=$(hits $t)
		echo "$t $r ${iops:-0} $((h1 - h0))" >>$RES
		echo "bench: hit-cpu $t round $r: ${iops:-0} IOPS"
	done
	r=$((r + 1))
done
echo 1 >$STAT
dmsetup remove --noudevsync rkm-linear
echo 1 >/sys/block/bcache0/bcache/stop
echo 1 >/sys/block/bcache_rs0/bcache_rs/stop

echo
echo "bench: hit-cpu, the hit path by CPU cost: RAM-backed null_blk caches, no device emulation; one boot (perf kernel), $ROUNDS rounds of $SECS s, 2 jobs x iodepth 16"
awk '
	{ v[$1, $2] = $3; n[$1]++; rounds[$1] = rounds[$1] " " $3; if ($1 ~ /bcache/ && $4 == 0) nohit[$1] = 1 }
	END {
		nt = split(order, t, " ")
		for (i = 1; i <= nt; i++)
			printf "hit-cpu rounds (IOPS): %-16s%s%s\n", t[i], rounds[t[i]], (t[i] in nohit) ? "  (a round counted no hits!)" : ""
		np = split("bcache_rs/nullb bcache_rs/linear bcache_rs/bcache bcache_rs:nostat/bcache bcache_rs/bcache_rs:nostat bcache/nullb linear/nullb", pairs, " ")
		for (q = 1; q <= np; q++) {
			split(pairs[q], ab, "/"); m = 0
			for (r = 1; r <= 1000; r++) if (((ab[1], r) in v) && ((ab[2], r) in v) && v[ab[2], r] > 0) pr[m++] = v[ab[1], r] / v[ab[2], r]
			if (m == 0) continue
			for (i = 0; i < m; i++) for (x = i + 1; x < m; x++) if (pr[x] < pr[i]) { y = pr[i]; pr[i] = pr[x]; pr[x] = y }
			med = (m % 2) ? pr[int(m / 2)] : (pr[m / 2 - 1] + pr[m / 2]) / 2
			printf "hit-cpu, paired by round: %-28s median %.2f (%.2f to %.2f over %d rounds)\n", pairs[q], med, pr[0], pr[m - 1], m
		}
	}' order="nullb linear bcache bcache_rs bcache_rs:nostat" $RES
