#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# In the perf guest (bench/bcache.sh's restart boot): what a warm restart
# is worth and what it costs, bcache_rs against the C bcache (which keeps
# its cache across registrations too), each on its own half of the two
# disks (partitions 1: the C bcache, 2: bcache_rs).
#
# For each cache: one pass of 4 KiB random reads over BENCH_EXTENTS blocks
# (default 65536: as many 4 KiB extents, every read a miss that fills), then
# a quarter as many 4 KiB uniform random reads over them (the hit ratio
# "before"); then the devices stopped and the cache unregistered (timed:
# bcache_rs writes its checkpoint), the cache and the device registered
# again (timed: the index restored), and the same reads (the hit ratio of
# the first reads "after": the part of the index that survived). bcache_rs
# once more without trust=1 (its extents dropped): the cold registration
# that the warm one saves. Times from /proc/uptime (10 ms). Ratios:
# bcache_rs's time / the C bcache's.
#
# Then what the write-intent map costs the writes of the restored
# bcache_rs (a device whose extents the checkpoint holds): one 4 KiB
# O_DIRECT write at the start of each 8 MiB region of the device (each the
# first write of its region: it waits for a durable journal block), timed;
# the same writes again (the regions recorded: nothing waits); and the
# same after a cold registration (no checkpoint extents: no map at all,
# today's volatile cache). Each pass a fio job of its own (one process:
# the difference is the journal's).

. /etc/rkm.env
N=${BENCH_EXTENTS:-65536}
UUID=11111111-2222-4333-8444-555555555555
RS=/sys/block/bcache_rs0/bcache_rs
C=/sys/block/bcache0/bcache

now() {
	cut -d' ' -f1 /proc/uptime
}

# elapsed T0 T1: seconds between two uptimes.
elapsed() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'
}

part() {
	case $1 in
	*[0-9]) echo "${1}p$2" ;;
	*) echo "$1$2" ;;
	esac
}

# halves DISK MIB: two primary partitions of MIB MiB each.
halves() {
	s=$(($2 * 2048))
	printf 'o\nn\np\n1\n2048\n+%dM\nn\np\n2\n%d\n+%dM\nw\n' "$2" $((2048 + s)) "$2" |
		fdisk "$1" >/dev/null 2>&1
	i=0
	while [ ! -b "$(part "$1" 2)" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	[ -b "$(part "$1" 2)" ] || { echo "bench: cannot partition $1"; return 1; }
}

wait_for() {
	i=0
	while ! "$@" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	"$@"
}

# counters DEV: hits misses (the C bcache folds its counters into
# stats_total every 5 s: wait for that).
counters() {
	case $1 in
	/dev/bcache0)
		sleep 6
		echo "$(cat $C/stats_total/cache_hits) $(cat $C/stats_total/cache_misses)" ;;
	*) echo "$(cat $RS/hits) $(cat $RS/misses)" ;;
	esac
}

fill() {
	fio --name=fill --filename="$1" --rw=randread --bs=4k --size=$((N * 4))k --direct=1 \
		--ioengine=libaio --iodepth=16 --randseed=1 >/dev/null
}

# reads DEV: the hit ratio of N/4 uniform random 4 KiB reads.
reads() {
	set -- "$1" $(counters "$1")
	fio --name=reads --filename="$1" --rw=randread --bs=4k --size=$((N * 4))k --direct=1 \
		--ioengine=libaio --iodepth=16 --randseed=2 --number_ios=$((N / 4)) >/dev/null
	set -- "$1" "$2" "$3" $(counters "$1")
	# "-": the counters did not move (the C bcache folds them in late).
	awk -v h=$(($4 - $2)) -v m=$(($5 - $3)) 'BEGIN { if (h + m) printf "%.3f", h / (h + m); else printf "-" }'
}

# region_writes: one 4 KiB direct write at the start of each 8 MiB region
# of bcache_rs's 1 GiB partition (REGIONS of them, in one fio job, queue
# depth 1); prints the job's seconds.
REGIONS=128
region_writes() {
	t0=$(now)
	fio --name=regions --filename=/dev/bcache_rs0 --rw=write --bs=4k --zonemode=strided \
		--zonesize=4k --zonerange=8m --size=$((REGIONS * 8))m --io_size=$((REGIONS * 4))k \
		--direct=1 --ioengine=psync >/dev/null || return 1
	elapsed "$t0" "$(now)"
}

rs_up() {
	bcache-rs register "$RS_SSD" >/dev/null &&
		bcache-rs register --uuid $UUID ${1:+--trust} "$RS_HDD" >/dev/null &&
		echo 0 >$RS/sequential_cutoff
}

# c_up: the C bcache registered, no sequential cutoff, and no bypass of a
# congested SSD (its default threshold, 2 ms, is under TCG's latencies).
c_up() {
	# The cache device of a set just unregistered is released a moment
	# later (EBUSY until then).
	i=0
	until echo "$C_SSD" >/sys/fs/bcache/register 2>/dev/null || [ $i -ge 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	echo "$C_HDD" >/sys/fs/bcache/register 2>/dev/null
	wait_for test -b /dev/bcache0 && echo 0 >$C/sequential_cutoff || return 1
	cset=$(readlink -f $C/cache)
	echo 0 >"$cset/congested_read_threshold_us" && echo 0 >"$cset/congested_write_threshold_us"
}

c_down() {
	cset=$(basename "$(readlink -f $C/cache)")
	echo 1 >$C/stop && wait_for test ! -b /dev/bcache0 &&
		echo 1 >"/sys/fs/bcache/$cset/unregister" && wait_for test ! -e "/sys/fs/bcache/$cset"
}

halves "$RKM_HDD" 1024 && halves "$RKM_SSD" 512 || exit 1
C_HDD=$(part "$RKM_HDD" 1) C_SSD=$(part "$RKM_SSD" 1)
RS_HDD=$(part "$RKM_HDD" 2) RS_SSD=$(part "$RKM_SSD" 2)
modprobe bcache && modprobe bcache_rs || exit 1
make-bcache --wipe-bcache -C "$C_SSD" -B "$C_HDD" >/dev/null || exit 1
c_up || { echo "bench: no /dev/bcache0"; exit 1; }
echo writethrough >$C/cache_mode
bcache-rs format-cache "$RS_SSD" --force >/dev/null && rs_up trust || exit 1

RES=/tmp/restart
: >$RES
for t in bcache bcache_rs; do
	if [ $t = bcache ]; then dev=/dev/bcache0; else dev=/dev/bcache_rs0; fi
	fill $dev || exit 1
	before=$(reads $dev)
	if [ $t = bcache ]; then
		ext=-
		t0=$(now) && c_down && t1=$(now) && c_up && t2=$(now) || exit 1
		restored=-
	else
		ext=$(cat /sys/kernel/bcache_rs/cache/index_entries)
		t0=$(now)
		bcache-rs unregister "$RS_HDD" >/dev/null && wait_for test ! -e /dev/bcache_rs0 &&
			bcache-rs unregister >/dev/null || exit 1
		t1=$(now)
		rs_up trust || exit 1
		t2=$(now)
		restored=$(cat /sys/kernel/bcache_rs/cache/restored_extents)
	fi
	after=$(reads $dev)
	echo "$t $ext $(elapsed "$t0" "$t1") $(elapsed "$t1" "$t2") $restored $before $after" >>$RES
	if [ $t = bcache_rs ]; then
		w1=$(region_writes) && w2=$(region_writes) || exit 1
		recs=$(bcache-rs show "$RS_SSD" | sed -n 's/.* for what \([0-9]*\) write-intent records.*/\1/p')
	fi
done
# bcache_rs registered cold (no trust=1): what the warm registration saves.
bcache-rs unregister "$RS_HDD" >/dev/null && wait_for test ! -e /dev/bcache_rs0 &&
	bcache-rs unregister >/dev/null && rs_up || exit 1
echo "bcache_rs-cold - - - - - $(reads /dev/bcache_rs0)" >>$RES
w3=$(region_writes) || exit 1

# Both torn down before the guest reboots: one run of this script saw an
# oops in a bioset rescuer while the C bcache's reboot notifier stopped
# bcache0 (bcache_rs idle), not seen in three others.
bcache-rs unregister "$RS_HDD" >/dev/null && wait_for test ! -e /dev/bcache_rs0 && bcache-rs unregister >/dev/null
c_down

echo "bench: restart, $N extents of 4 KiB; hit ratios of $((N / 4)) uniform random 4 KiB reads:"
awk '
{ t[NR] = $1; ext[NR] = $2; down[NR] = $3; up[NR] = $4; rest[NR] = $5; b[NR] = $6; a[NR] = $7 }
END {
	printf "| %-14s | %8s | %10s | %12s | %8s | %10s | %10s\n", "cache", "extents", "stop+unreg s", "register s", "restored", "hits before", "hits after"
	printf "|----------------|----------|--------------|--------------|----------|------------|-----------\n"
	for (i = 1; i <= NR; i++)
		printf "| %-14s | %8s | %12s | %12s | %8s | %10s | %10s\n", t[i], ext[i], down[i], up[i], rest[i], b[i], a[i]
	if (NR >= 2 && up[1] > 0)
		printf "registration: bcache_rs / C bcache = %.2f; bcache_rs %.2f s per million extents restored\n", up[2] / up[1], (rest[2] > 0) ? up[2] / rest[2] * 1e6 : 0
	if (NR >= 2 && down[1] > 0)
		printf "stop + unregister (bcache_rs: its checkpoint): bcache_rs / C bcache = %.2f\n", down[2] / down[1]
}' $RES
echo "bench: write-intent: $REGIONS writes of 4 KiB, one at the start of each 8 MiB region of the device:"
awk -v n="$REGIONS" -v w1="$w1" -v w2="$w2" -v w3="$w3" -v r="$recs" 'BEGIN {
	printf "| %-44s | %8s | %11s\n", "bcache_rs", "seconds", "ms a write"
	printf "|----------------------------------------------|----------|------------\n"
	printf "| %-44s | %8s | %11.2f\n", "restored, first writes (" r " records)", w1, w1 / n * 1000
	printf "| %-44s | %8s | %11.2f\n", "restored, the regions recorded", w2, w2 / n * 1000
	printf "| %-44s | %8s | %11.2f\n", "cold registration (no map)", w3, w3 / n * 1000
	if (w2 > 0) printf "first writes / recorded: %.2f; recorded / no map: %.2f\n", w1 / w2, (w3 > 0) ? w2 / w3 : 0
}'
