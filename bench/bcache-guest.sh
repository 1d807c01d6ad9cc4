#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# In the perf guest (bench/bcache.sh): the same fio jobs on the raw HDD
# (throttled by QEMU to HDD-like IOPS), the raw NVMe SSD, the C bcache
# (make-bcache -C SSD -B HDD, writethrough, sequential_cutoff 4 MiB) and
# bcache_rs (bcache-rs format-cache, writethrough, sequential_cutoff 4 MiB),
# and one table. For the hit job alone, dm-linear over the SSD ("linear") is
# the floor of any bio-based driver stacked on the SSD: a remap per bio.
#
# Every target is up at once, each on its own third of the two disks
# (partitions 1: raw HDD and raw SSD, and dm-linear over the SSD's; 2: the C
# bcache; 3: bcache_rs), so that the hit and zipf-hot jobs can alternate
# between them in short rounds: this host's noise between two runs of one
# job (up to 30%) is larger than the differences measured, and it moves
# slowly.
#
# Jobs (fio, libaio, O_DIRECT, iodepth 16, BENCH_SECS seconds each after 2 s
# of ramp):
#   hit         4 KiB uniform random reads over 64 MiB, after one pass of
#               64 KiB random reads over it: every read is a hit (the hit
#               path against the raw SSD); not on the HDD; BENCH_ROUNDS
#               rounds (default 5) of BENCH_HIT_SECS (default 10) seconds a
#               target, in reverse order every other round; the table shows
#               each target's median round
#   zipf-hot    4 KiB random reads, zipf(1.2) over a 256 MiB hot set, after
#               one pass of 64 KiB random reads over it and a warm-up of
#               the same job on each cache (BENCH_WARM seconds): hits but
#               for what the cache evicted, the misses at the HDD's pace; in
#               rounds as the hit job (without dm-linear; the HDD once)
#   rand-read   4 KiB uniform random reads over 1 GiB (mostly misses)
#   seq-read    1 MiB sequential reads over 256 MiB (bypassed by both
#               caches past their 4 MiB sequential cutoff)
#   rand-write  4 KiB uniform random writes over 1 GiB
# In the hit and zipf-hot rounds fio runs on vCPU 0 (--cpus_allowed=0), so
# NVMe completions (per-CPU queues) land there too: unpinned, fio moved
# between the vCPUs in some rounds and not in others, splitting the
# completion interrupts between them, and those rounds ran up to 1.8x
# slower for the raw SSD, dm-linear and bcache_rs alike (a guest experiment
# counting the NVMe interrupts of each vCPU per round).
# Columns: IOPS, completion latency p50 and p99 (microseconds), the hit
# ratio the cache counted during the job, IOPS against the raw SSD and
# against the C bcache.
#
# With RKM_BENCH_MODE=cpu (bench/bcache.sh's second boot), the jobs
# "hit-cpu" and "write-cpu": the hit and writethrough write paths by CPU
# cost (writes also wait for the HDD image,
# unthrottled). The caches sit on RAM-backed null_blk devices instead of
# the NVMe SSD, so that QEMU's NVMe emulation (a doorbell write costs about 22 us under
# TCG, and the guest idles most of the hit job waiting for it) is out of
# the way and the two vCPUs are the bottleneck. Targets: the raw null_blk
# device ("ssd"), dm-linear over it, the C bcache, bcache_rs, and
# bcache_rs with its disk's queue/iostats at 0 ("rs-nostat"); hit-cpu is
# 4 KiB uniform random reads of 64 MiB after one pass of 64 KiB reads
# through each cache, write-cpu 4 KiB random writes over 64 MiB,
# fill-cpu 4 KiB random reads of 16 MiB never read before (each a miss that
# fills); two fio jobs of iodepth 16, BENCH_CPU_ROUNDS rounds (default 8)
# of BENCH_CPU_SECS seconds (default 5), half as many for writes and fills
# (a fill round reads its 16 MiB once). Then bcache_rs is loaded
# again with data_csum=0 ("rs-nocsum": no data checksums) and the two
# jobs run again ("-nocsum") with the raw device and the C bcache
# (BENCH_NOCSUM=0 skips this): what the checksums cost, against the same
# anchors.

. /etc/rkm.env
TARGETS=${BENCH_TARGETS:-hdd ssd linear bcache bcache_rs}
SECS=${BENCH_SECS:-20}
WARM=${BENCH_WARM:-30}
UUID=11111111-2222-4333-8444-555555555555
RES=/tmp/bench-bcache
: >$RES

# hits misses of the cache in front of $dev, or "- -".
counters() {
	case $1 in
	bcache)
		s=/sys/block/bcache0/bcache/stats_total
		echo "$(cat $s/cache_hits) $(cat $s/cache_misses)" ;;
	bcache_rs | rs-nostat | rs-nocsum)
		s=/sys/block/bcache_rs0/bcache_rs
		echo "$(cat $s/hits) $(cat $s/misses)" ;;
	*) echo "- -" ;;
	esac
}

# part DISK N: partition N of DISK.
part() {
	case $1 in
	*[0-9]) echo "${1}p$2" ;;
	*) echo "$1$2" ;;
	esac
}

# thirds DISK MIB: three primary partitions of MIB MiB each, 1 MiB aligned.
thirds() {
	s=$(($2 * 2048))
	printf 'o\nn\np\n1\n2048\n+%dM\nn\np\n2\n%d\n+%dM\nn\np\n3\n%d\n+%dM\nw\n' \
		"$2" $((2048 + s)) "$2" $((2048 + 2 * s)) "$2" | fdisk "$1" >/dev/null 2>&1
	i=0
	while [ ! -b "$(part "$1" 3)" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	[ -b "$(part "$1" 3)" ] || { echo "bench: cannot partition $1"; return 1; }
}

# targets_up RAW C_SSD C_HDD RS_SSD RS_HDD FILL: dm-linear over RAW (its
# first FILL written, so that reads of it hit written sectors, as the
# caches' do), the C bcache on C_SSD and C_HDD, bcache_rs on RS_SSD and
# RS_HDD; both caches writethrough with a 4 MiB sequential cutoff.
targets_up() {
	fio --name=fill --filename="$1" --rw=write --bs=1M --size="$6" --direct=1 \
		>/dev/null || return 1
	modprobe dm-mod || return 1
	sz=$(blockdev --getsz "$1") || return 1
	dmsetup create rkm-linear --noudevsync --table "0 $sz linear $1 0" || return 1
	LINEAR=/dev/$(dmsetup info -c --noheadings -o blkdevname rkm-linear) || return 1
	modprobe bcache || return 1
	make-bcache --wipe-bcache -C "$2" -B "$3" >/dev/null || return 1
	echo "$2" >/sys/fs/bcache/register 2>/dev/null
	echo "$3" >/sys/fs/bcache/register 2>/dev/null
	i=0
	while [ ! -b /dev/bcache0 ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
	[ -b /dev/bcache0 ] || { echo "bench: no /dev/bcache0"; return 1; }
	echo writethrough >/sys/block/bcache0/bcache/cache_mode || return 1
	# In bytes: the C bcache's sequential_cutoff takes no "4M" (it is its
	# default anyway).
	echo $((4 << 20)) >/sys/block/bcache0/bcache/sequential_cutoff || return 1
	modprobe bcache_rs || return 1
	bcache-rs format-cache "$4" --force >/dev/null || return 1
	echo "$4" >/sys/kernel/bcache_rs/register_cache || return 1
	echo "$UUID $5" >/sys/kernel/bcache_rs/register_dev || return 1
}

setup() {
	thirds "$RKM_HDD" 2048 && thirds "$RKM_SSD" 1024 || return 1
	HDD_RAW=$(part "$RKM_HDD" 1) HDD_C=$(part "$RKM_HDD" 2) HDD_RS=$(part "$RKM_HDD" 3)
	SSD_RAW=$(part "$RKM_SSD" 1) SSD_C=$(part "$RKM_SSD" 2) SSD_RS=$(part "$RKM_SSD" 3)
	targets_up "$SSD_RAW" "$SSD_C" "$HDD_C" "$SSD_RS" "$HDD_RS" 384M
}

# The cpu boot's targets: null_blk devices of 1 GiB (RAM-backed) in place
# of the SSD's thirds; the backing devices stay the HDD's thirds
# (unthrottled). (With null_blk backing devices too, the C bcache's
# allocator thread oopsed at registration: a call through a NULL pointer.)
setup_cpu() {
	thirds "$RKM_HDD" 512 || return 1
	HDD_C=$(part "$RKM_HDD" 2) HDD_RS=$(part "$RKM_HDD" 3)
	modprobe null_blk nr_devices=3 gb=1 memory_backed=1 || return 1
	SSD_RAW=/dev/nullb0
	targets_up /dev/nullb0 /dev/nullb1 "$HDD_C" /dev/nullb2 "$HDD_RS" 64M
}

# rs_reload CSUM: bcache_rs alone torn down and set up again on the same
# devices, the module loaded with data_csum=CSUM; the 64 MiB read once.
rs_reload() {
	echo 1 >/sys/block/bcache_rs0/bcache_rs/stop
	sleep 1
	echo 1 >/sys/kernel/bcache_rs/cache/unregister
	sleep 1
	rmmod bcache_rs || return 1
	modprobe bcache_rs data_csum="$1" || return 1
	bcache-rs format-cache /dev/nullb2 --force >/dev/null || return 1
	echo /dev/nullb2 >/sys/kernel/bcache_rs/register_cache || return 1
	echo "$UUID $HDD_RS" >/sys/kernel/bcache_rs/register_dev || return 1
	grep -qx "$1" /sys/kernel/bcache_rs/cache/data_csum || return 1
}

# target TARGET: sets $dev to the target's device.
target() {
	case $1 in
	hdd) dev=$HDD_RAW ;;
	ssd) dev=$SSD_RAW ;;
	linear) dev=$LINEAR ;;
	bcache) dev=/dev/bcache0 ;;
	bcache_rs | rs-nocsum) echo 1 >$STAT; dev=/dev/bcache_rs0 ;;
	rs-nostat) echo 0 >$STAT; dev=/dev/bcache_rs0 ;;
	esac
}
STAT=/sys/block/bcache_rs0/queue/iostats

teardown() {
	dmsetup remove --noudevsync rkm-linear
	echo 1 >/sys/block/bcache0/bcache/stop
	for s in /sys/fs/bcache/*-*-*; do [ -d "$s" ] && echo 1 >"$s/unregister"; done
	echo 1 >/sys/block/bcache_rs0/bcache_rs/stop
	sleep 1
	echo 1 >/sys/kernel/bcache_rs/cache/unregister
	sleep 1
	rmmod bcache_rs
}

# run TARGET JOB SECONDS fio-args...: one job; appends a result line.
run() {
	t=$1 job=$2 secs=$3
	shift 3
	c0=$(counters "$t")
	out=$(fio --output-format=terse --terse-version=3 --minimal --name="$job" \
		--filename="$dev" --ioengine=libaio --iodepth=16 --direct=1 \
		--randseed=42 "$@" 2>/dev/null)
	c1=$(counters "$t")
	echo "$out" | awk -F';' -v t="$t" -v job="$job" -v c0="$c0" -v c1="$c1" '
		{
			# Read and write IOPS are fields 8 and 49; the completion
			# latency percentiles are "P%=usec" fields, read side first.
			iops = $8 + $49
			n = 0
			for (i = 1; i <= NF; i++) if ($i ~ /^50\.000000%=/ || $i ~ /^99\.000000%=/) {
				split($i, kv, "="); v[n++] = kv[2]
			}
			# Reads: the first pair; writes: the second.
			w = ($49 > $8) ? 2 : 0
			split(c0, a, " "); split(c1, b, " ")
			ratio = "-"
			if (a[1] != "-") {
				h = b[1] - a[1]; m = b[2] - a[2]
				# The C bcache folds its counters in lazily: none may
				# have moved during a short job.
				ratio = (h + m > 0) ? sprintf("%.2f", h / (h + m)) : "-"
			}
			printf "%s %s %d %d %d %s\n", t, job, iops, v[w], v[w + 1], ratio
		}' >>$RES
	echo "bench: $t $job: $(tail -n 1 $RES | cut -d' ' -f3-)"
}

# rounds JOB SECONDS "TARGETS" fio-args...: BENCH_ROUNDS rounds of JOB on
# each target, in reverse order every other round (result lines "JOB#N").
rounds() {
	rjob=$1 rsecs=$2 rts=$3
	shift 3
	rr=1
	while [ "$rr" -le "$ROUNDS" ]; do
		rorder=$rts
		[ $((rr % 2)) = 0 ] && rorder=$(echo $rts | tr ' ' '\n' | sed -n '1!G;h;$p')
		for rt in $rorder; do
			target "$rt"
			run "$rt" "$rjob#$rr" "$rsecs" --time_based --runtime="$rsecs" --ramp_time=2 "$@"
		done
		rr=$((rr + 1))
	done
}

# warm JOB "TARGETS" fio-args...: runs JOB once on each cache among
# TARGETS, keeping no result.
warm() {
	wjob=$1 wts=$2
	shift 2
	for wt in $wts; do
		case $wt in
		bcache | bcache_rs | rs-nocsum)
			target "$wt"
			run "$wt" "$wjob" 0 "$@" >/dev/null
			sed -i '$d' $RES ;;
		esac
	done
}

if [ "${RKM_BENCH_MODE:-}" = cpu ]; then
	setup_cpu || { echo "bench: cannot set up the hit-cpu targets"; exit 1; }
	ROUNDS=${RKM_BENCH_CPU_ROUNDS:-8}
	CPU_SECS=${BENCH_CPU_SECS:-5}
	TARGETS="ssd linear bcache bcache_rs rs-nostat"
	CPU="--numjobs=2 --group_reporting"
	# shellcheck disable=SC2086
	cpu_jobs() {
		warm hit-warm "$1" --rw=randread --bs=64k --size=64M
		rounds "hit-cpu$2" "$CPU_SECS" "$1" --rw=randread --bs=4k --size=64M $CPU
		# Half the rounds for writes.
		hit_rounds=$ROUNDS
		ROUNDS=$(((ROUNDS + 1) / 2))
		# Writes: writethrough (the caches copy what they write), 4 KiB
		# random over 64 MiB past the hit set (null_blk keeps every page
		# written: the guest's memory bounds the sizes).
		rounds "write-cpu$2" "$CPU_SECS" "$1" --rw=randwrite --bs=4k \
			--offset=128M --size=64M $CPU
		# Fills: reads of blocks never read before, each a miss that
		# fills (and computes its checksums): a new 16 MiB of the
		# backing devices each round (two jobs of 8 MiB, every block
		# read once: not time-based, no ramp), from $3 MiB on.
		fr=1
		while [ "$fr" -le "$ROUNDS" ]; do
			for ft in $1; do
				# rs-nostat is bcache_rs's disk: it would hit what
				# bcache_rs just filled.
				[ "$ft" = rs-nostat ] && continue
				target "$ft"
				run "$ft" "fill-cpu$2#$fr" 0 --rw=randread --bs=4k \
					--offset=$(($3 + fr * 16))M --size=8M --offset_increment=8M $CPU
			done
			fr=$((fr + 1))
		done
		ROUNDS=$hit_rounds
	}
	# The fills of the second pass read past the first's.
	cpu_jobs "$TARGETS" "" 192
	# The same jobs with bcache_rs's data checksums off (data_csum=0),
	# the raw device and the C bcache again as the anchors of the ratios.
	if [ "${RKM_BENCH_NOCSUM:-1}" = 1 ]; then
		rs_reload 0 || { echo "bench: cannot reload bcache_rs with data_csum=0"; exit 1; }
		cpu_jobs "ssd bcache rs-nocsum" "-nocsum" $((208 + (ROUNDS + 1) / 2 * 16))
	fi
	teardown
	echo
	echo "bench: the hit and write paths by CPU cost: the caches on RAM-backed null_blk (\"ssd\": the raw null_blk device), the backing devices on the unthrottled HDD image; one boot (perf kernel), ${ROUNDS} rounds of ${CPU_SECS} s a job, 2 fio jobs of iodepth 16; the jobs \"-nocsum\" after bcache_rs was loaded again with data_csum=0"
else
	setup || { echo "bench: cannot set up the targets"; exit 1; }
	ROUNDS=${BENCH_ROUNDS:-5}
	HIT_SECS=${BENCH_HIT_SECS:-10}
	HIT_TARGETS= ZIPF_TARGETS=
	for t in $TARGETS; do
		[ "$t" = hdd ] || HIT_TARGETS="$HIT_TARGETS $t"
		case $t in hdd | linear) ;; *) ZIPF_TARGETS="$ZIPF_TARGETS $t" ;; esac
	done
	# One pass of 64 KiB random reads caches all of the 64 MiB.
	warm hit-warm "$HIT_TARGETS" --rw=randread --bs=64k --size=64M
	rounds hit "$HIT_SECS" "$HIT_TARGETS" --rw=randread --bs=4k --size=64M --cpus_allowed=0

	ZIPF="--rw=randread --bs=4k --offset=128M --size=256M --random_distribution=zipf:1.2"
	# One pass of 64 KiB random reads over the hot set (4096 misses, about
	# 20 s at the HDD's 200 IOPS), then the job itself: without the pass a
	# 30 s warm-up left both caches filling through every round (2500 IOPS
	# in the first, 10700 in the last), so the rounds measured the warm-up.
	warm zipf-fill "$ZIPF_TARGETS" --rw=randread --bs=64k --offset=128M --size=256M
	# shellcheck disable=SC2086
	warm zipf-warm "$ZIPF_TARGETS" --time_based --runtime="$WARM" $ZIPF
	# shellcheck disable=SC2086
	rounds zipf-hot "$HIT_SECS" "$ZIPF_TARGETS" $ZIPF --cpus_allowed=0

	for t in $TARGETS; do
		[ "$t" = linear ] && continue
		target "$t"
		echo "bench: $t on $dev"
		T="--time_based --runtime=$SECS --ramp_time=2"
		# shellcheck disable=SC2086
		[ "$t" = hdd ] && run "$t" zipf-hot "$SECS" $T $ZIPF
		run "$t" rand-read "$SECS" $T --rw=randread --bs=4k --size=1G
		run "$t" seq-read "$SECS" $T --rw=read --bs=1M --offset=512M --size=256M
		run "$t" rand-write "$SECS" $T --rw=randwrite --bs=4k --size=1G
	done
	teardown

	echo
	echo "bench: bcache_rs against the raw devices and the C bcache, one boot (perf kernel), HDD throttled to ${RKM_BENCH_HDD_IOPS:-?} IOPS, ${SECS} s a job, the hit and zipf-hot jobs ${ROUNDS} rounds of ${HIT_SECS} s"
fi
awk '
	# Rounds of a job ("JOB#N"): kept per job and target, folded below.
	$2 ~ /#/ { split($2, jn, "#"); J = jn[1]; k = J SUBSEP $1
	  n = nr[k]++; rline[k, n] = $0; riops[k, n] = $3; rounds[k] = rounds[k] " " $3
	  if (!(J in seen)) { seen[J] = 1; jobs[nj++] = J }
	  if (!($1 in tseen)) { tseen[$1] = 1; targets[nt++] = $1 }
	  next }
	{ key = $1 " " $2; iops[key] = $3; p50[key] = $4; p99[key] = $5; hit[key] = $6
	  if (!($2 in seen)) { seen[$2] = 1; jobs[nj++] = $2 }
	  if (!($1 in tseen)) { tseen[$1] = 1; targets[nt++] = $1 } }
	END {
		# The targets in the order of $TARGETS.
		nt = 0; n = split(order, o, " ")
		for (i = 1; i <= n; i++) if (o[i] in tseen) targets[nt++] = o[i]
		# The median round of each job and target (sorted by IOPS, the
		# middle one) stands for it in the table.
		for (k in nr) {
			split(k, jt, SUBSEP); m = nr[k]
			for (i = 0; i < m; i++) idx[i] = i
			for (i = 0; i < m; i++) for (j = i + 1; j < m; j++)
				if (riops[k, idx[j]] < riops[k, idx[i]]) { x = idx[i]; idx[i] = idx[j]; idx[j] = x }
			split(rline[k, idx[int((m - 1) / 2)]], f, " ")
			key = jt[2] " " jt[1]; iops[key] = f[3]; p50[key] = f[4]; p99[key] = f[5]; hit[key] = f[6]
		}
		printf "| %-10s | %-9s | %8s | %9s | %9s | %5s | %8s | %9s\n", "job", "target", "IOPS", "p50 us", "p99 us", "hits", "/raw SSD", "/C bcache"
		printf "|------------|-----------|----------|-----------|-----------|-------|----------|----------\n"
		for (j = 0; j < nj; j++) for (k = 0; k < nt; k++) {
			key = targets[k] " " jobs[j]
			if (!(key in iops)) continue
			s = "ssd " jobs[j]; c = "bcache " jobs[j]
			rs = (s in iops && iops[s] > 0) ? sprintf("%.2f", iops[key] / iops[s]) : "-"
			rc = (c in iops && iops[c] > 0) ? sprintf("%.2f", iops[key] / iops[c]) : "-"
			printf "| %-10s | %-9s | %8d | %9d | %9d | %5s | %8s | %9s\n", jobs[j], targets[k], iops[key], p50[key], p99[key], hit[key], rs, rc
		}
		np = split("bcache_rs/ssd bcache_rs/bcache bcache_rs/linear bcache/ssd linear/ssd rs-nostat/bcache bcache_rs/rs-nostat rs-nocsum/ssd rs-nocsum/bcache", pairs, " ")
		for (j = 0; j < nj; j++) {
			J = jobs[j]
			for (k = 0; k < nt; k++) if ((J SUBSEP targets[k]) in rounds)
				printf "%s rounds (IOPS): %-9s%s\n", J, targets[k], rounds[J, targets[k]]
			# Ratios within each round (the targets ran minutes apart
			# at most), their median and range: "a/b".
			for (q = 1; q <= np; q++) {
				split(pairs[q], ab, "/"); a = J SUBSEP ab[1]; b = J SUBSEP ab[2]
				if (!(a in nr) || !(b in nr)) continue
				m = (nr[a] < nr[b]) ? nr[a] : nr[b]
				for (i = 0; i < m; i++) pr[i] = (riops[b, i] > 0) ? riops[a, i] / riops[b, i] : 0
				for (i = 0; i < m; i++) for (x = i + 1; x < m; x++)
					if (pr[x] < pr[i]) { y = pr[i]; pr[i] = pr[x]; pr[x] = y }
				printf "%s, paired by round: %-17s median %.2f (%.2f to %.2f over %d rounds)\n", J, pairs[q], pr[int((m - 1) / 2)], pr[0], pr[m - 1], m
			}
		}
		l = "linear hit"
		if (l in iops && iops[l] > 0) for (k = 0; k < nt; k++) {
			key = targets[k] " hit"
			if (targets[k] ~ /bcache/ && key in iops)
				printf "hit path: %s / dm-linear = %.2f\n", targets[k], iops[key] / iops[l]
		}
	}' order="$TARGETS rs-nocsum" $RES
