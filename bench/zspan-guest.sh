#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# In the perf guest: run bench_zspan_rs and print its table.
echo "rkm-bench: loading bench_zspan_rs" >/dev/kmsg
modprobe bench_zspan_rs || exit 1
dmesg | sed -n '/rkm-bench: loading bench_zspan_rs/,$p' | sed -n 's/^\[[^]]*\] bench_zspan_rs: //p'
rmmod bench_zspan_rs
