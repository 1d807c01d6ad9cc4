#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make bench-btree: the B+tree measured in one run, printed as ratios.
#   1. host: rkm-btree against std::collections::BTreeMap, 1M random u64
#      keys (cargo run --release --example bench);
#   2. kernel: bench_btree_rs against kernel::rbtree::RBTree on the perf
#      kernel under QEMU, plus the B+tree's memory per entry.
# See Documentation/btree.rst for the method and the measured tables.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

echo "== 1. host: rkm-btree vs std BTreeMap"
cargo run --quiet --release -p rkm-btree --example bench

echo
echo "== 2. kernel (perf flavour, QEMU TCG): bench_btree_rs vs kernel::rbtree"
make -s --no-print-directory modules FLAVOUR=perf
kdir=$(make -s --no-print-directory print-kdir FLAVOUR=perf)
# shellcheck disable=SC2046
"$top/scripts/vm-run.py" --kdir "$kdir" --flavour perf --mem 2G \
	--script "$top/bench/btree-guest.sh" --log-dir "$top/build/logs/bench-btree" \
	--modules $(make -s --no-print-directory print-modules FLAVOUR=perf)
