#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# In the perf guest: run bench_zspan_rs and print its table. The host's
# BENCH_ZSPAN_SHARD_FROM arrives as RKM_BENCH_ZSPAN_SHARD_FROM
# (bench/zspan.sh): the pool's shard_from_pages.
[ -r /etc/rkm.env ] && . /etc/rkm.env
echo "rkm-bench: loading bench_zspan_rs" >/dev/kmsg
modprobe bench_zspan_rs ${RKM_BENCH_ZSPAN_SHARD_FROM:+shard_from_pages=$RKM_BENCH_ZSPAN_SHARD_FROM} || exit 1
dmesg | sed -n '/rkm-bench: loading bench_zspan_rs/,$p' | sed -n 's/^\[[^]]*\] bench_zspan_rs: //p'
echo "(zspan_rs's shard_from_pages: $(cat /sys/module/bench_zspan_rs/parameters/shard_from_pages))"
rmmod bench_zspan_rs
