#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# In the perf guest: run bench_btree_rs and print its table.
echo "rkm-bench: loading bench_btree_rs" >/dev/kmsg
modprobe bench_btree_rs || exit 1
dmesg | sed -n '/rkm-bench: loading bench_btree_rs/,$p' | sed -n 's/^\[[^]]*\] bench_btree_rs: //p'
rmmod bench_btree_rs
