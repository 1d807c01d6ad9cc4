#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make bench-zspan: zspan_rs's CPU per operation against zsmalloc's, the
# allocators alone (bench_zspan_rs, rust/zspan_rs/bench_zspan_rs_main.rs),
# on the perf kernel under QEMU: one thread, zswap's calls (malloc, map,
# unmap, free) on three size ranges, the backends alternating over five
# rounds. Prints the table with ratios. See Documentation/zspan.rst.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
make -s --no-print-directory modules FLAVOUR=perf
kdir=$(make -s --no-print-directory print-kdir FLAVOUR=perf)
# BENCH_ZSPAN_SHARD_FROM sets the pool's shard_from_pages (as in
# bench/zswap.sh; 0: every class on its shard's lock from the first page).
env=()
[ -n "${BENCH_ZSPAN_SHARD_FROM:-}" ] && env+=(--env "RKM_BENCH_ZSPAN_SHARD_FROM=$BENCH_ZSPAN_SHARD_FROM")
# BENCH_ZSPAN_PROFILE=1: the run under perf record, and where its CPU went
# after the table (bench/zspan-guest.sh).
tools=()
if [ "${BENCH_ZSPAN_PROFILE:-0}" = 1 ]; then
	env+=(--env RKM_BENCH_ZSPAN_PROFILE=1)
	tools+=(--guest-tools /usr/bin/perf)
fi
# BENCH_ZSPAN_ICOUNT=1: the guest's clock counts its instructions
# (vm-run.py --icount), so that ns per step are instructions per step,
# the same in every boot whatever else the host runs. The two-thread
# figures then time the vCPUs taking turns on one host thread, not
# contention.
qemu=()
[ "${BENCH_ZSPAN_ICOUNT:-0}" = 1 ] && qemu+=(--icount)
# shellcheck disable=SC2046
"$top/scripts/vm-run.py" --kdir "$kdir" --flavour perf --mem 2G "${qemu[@]}" "${env[@]}" "${tools[@]}" \
	--script "$top/bench/zspan-guest.sh" --log-dir "$top/build/logs/bench-zspan" \
	--modules $(make -s --no-print-directory print-modules FLAVOUR=perf)
