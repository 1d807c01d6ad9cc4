#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make bench-zswap: two zswap workloads (a mixed one and a compressible
# one, see bench/zswap-guest.sh) under the C zbud, the C z3fold, zsmalloc,
# zbud_rs and z3fold_rs, in turn, in one boot of the perf kernel; per
# workload a table of peak stored and pool pages, density, rejects and
# elapsed time, with ratios against C zbud and against each Rust driver's
# C peer, and a perf profile of each driver's CPU time. See
# Documentation/zbud_rs.rst for the method.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
make -s --no-print-directory modules tools FLAVOUR=perf
kdir=$(make -s --no-print-directory print-kdir FLAVOUR=perf)
# shellcheck disable=SC2046
"$top/scripts/vm-run.py" --kdir "$kdir" --flavour perf --mem 2G --timeout 3600 --append slab_nomerge --append log_buf_len=8M \
	--script "$top/bench/zswap-guest.sh" --guest-tools "$top/target/release/rkm-memstress" /usr/bin/perf \
	--log-dir "$top/build/logs/bench-zswap" \
	--modules $(make -s --no-print-directory print-modules FLAVOUR=perf)
