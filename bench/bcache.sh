#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make bench-bcache: fio jobs on the raw HDD (throttled to HDD-like IOPS),
# the raw SSD, the C bcache and bcache_rs, in one boot of the perf kernel,
# with the same images; see bench/bcache-guest.sh for the jobs and the
# table. BENCH_HDD_IOPS (default 200) sets the HDD's IOPS. The disks are
# cut in three (one third per target), hence their sizes. A second boot
# runs the hit-cpu job (bench/bcache-guest.sh with RKM_BENCH_MODE=cpu): the
# hit path on RAM-backed null_blk caches, by CPU cost alone. A third boot
# measures the warm restart (bench/bcache-restart-guest.sh): bcache_rs and
# the C bcache unregistered and registered again. BENCH_ONLY=io,
# BENCH_ONLY=cpu or BENCH_ONLY=restart runs the first two boots, the
# second or the third alone.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
iops=${BENCH_HDD_IOPS:-200}
make -s --no-print-directory modules tools FLAVOUR=perf
kdir=$(make -s --no-print-directory print-kdir FLAVOUR=perf)
only=${BENCH_ONLY:-}
if [ -z "$only" ] || [ "$only" = io ]; then
	# shellcheck disable=SC2046
	"$top/scripts/vm-run.py" --kdir "$kdir" --flavour perf --mem 2G --timeout 2400 \
		--hdd-size 6200M --ssd-size 3100M \
		--hdd-iops "$iops" --env RKM_BENCH_HDD_IOPS="$iops" \
		--script "$top/bench/bcache-guest.sh" \
		--guest-tools "$top/target/release/bcache-rs" /usr/bin/fio /usr/sbin/make-bcache /usr/sbin/wipefs /usr/sbin/dmsetup \
		--log-dir "$top/build/logs/bench-bcache" \
		--modules $(make -s --no-print-directory print-modules FLAVOUR=perf)
fi
if [ -z "$only" ] || [ "$only" = io ] || [ "$only" = cpu ]; then
	# shellcheck disable=SC2046
	"$top/scripts/vm-run.py" --kdir "$kdir" --flavour perf --mem 3G --timeout 2400 \
		--hdd-size 1600M --ssd-size 256M \
		--script "$top/bench/bcache-guest.sh" --env RKM_BENCH_MODE=cpu \
		--env RKM_BENCH_NOCSUM="${BENCH_NOCSUM:-1}" --env RKM_BENCH_CPU_ROUNDS="${BENCH_CPU_ROUNDS:-8}" \
		--guest-tools "$top/target/release/bcache-rs" /usr/bin/fio /usr/sbin/make-bcache /usr/sbin/wipefs /usr/sbin/dmsetup \
		--log-dir "$top/build/logs/bench-bcache-cpu" \
		--modules $(make -s --no-print-directory print-modules FLAVOUR=perf)
fi
if [ -z "$only" ] || [ "$only" = restart ]; then
	# The warm restart: bcache_rs and the C bcache unregistered and
	# registered again (bench/bcache-restart-guest.sh), unthrottled disks.
	# shellcheck disable=SC2046
	"$top/scripts/vm-run.py" --kdir "$kdir" --flavour perf --mem 2G --timeout 1800 \
		--hdd-size 2100M --ssd-size 1100M \
		--script "$top/bench/bcache-restart-guest.sh" \
		--guest-tools "$top/target/release/bcache-rs" /usr/bin/fio /usr/sbin/make-bcache \
		--log-dir "$top/build/logs/bench-bcache-restart" \
		--modules $(make -s --no-print-directory print-modules FLAVOUR=perf)
fi
