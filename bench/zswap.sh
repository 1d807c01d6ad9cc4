#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make bench-zswap: four zswap workloads (mixed, compressible, large and
# small objects, see bench/zswap-guest.sh) under the C zbud, the C z3fold,
# zsmalloc, zbud_rs, z3fold_rs and zspan_rs, in turn, in one boot of the
# perf kernel (BENCH_ROUNDS=2 make bench-zswap for a shorter run); per
# workload a table of peak stored and pool pages, density, rejects and
# elapsed time, with ratios against C zbud and against each Rust driver's
# C peer, and a perf profile of each driver's CPU time. See
# Documentation/zbud_rs.rst for the method.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
make -s --no-print-directory modules tools FLAVOUR=perf
kdir=$(make -s --no-print-directory print-kdir FLAVOUR=perf)
# BENCH_ROUNDS, BENCH_WORKLOADS, BENCH_BACKENDS, BENCH_PROFILE_RUNS and
# BENCH_ZSPAN_SHARD_FROM (zspan_rs's shard_from_pages)
# (bench/zswap-guest.sh) go to the guest as RKM_BENCH_*.
env=()
for v in BENCH_ROUNDS BENCH_WORKLOADS BENCH_BACKENDS BENCH_PROFILE_RUNS BENCH_ZSPAN_SHARD_FROM; do
	[ -n "${!v:-}" ] && env+=(--env "RKM_$v=${!v}")
done
# shellcheck disable=SC2046
"$top/scripts/vm-run.py" --kdir "$kdir" --flavour perf --mem 2G --timeout 9000 --append slab_nomerge --append log_buf_len=8M \
	"${env[@]}" \
	--script "$top/bench/zswap-guest.sh" --guest-tools "$top/target/release/rkm-memstress" /usr/bin/perf \
	--log-dir "$top/build/logs/bench-zswap" \
	--modules $(make -s --no-print-directory print-modules FLAVOUR=perf)
