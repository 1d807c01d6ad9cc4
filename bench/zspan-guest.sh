#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# In the perf guest: run bench_zspan_rs and print its table. The host's
# BENCH_ZSPAN_SHARD_FROM arrives as RKM_BENCH_ZSPAN_SHARD_FROM
# (bench/zspan.sh): the pool's shard_from_pages. With BENCH_ZSPAN_PROFILE=1
# (RKM_BENCH_ZSPAN_PROFILE) the module runs under perf record, and the
# functions its samples were in follow the table (profile()).
[ -r /etc/rkm.env ] && . /etc/rkm.env
echo "rkm-bench: loading bench_zspan_rs" >/dev/kmsg
params=${RKM_BENCH_ZSPAN_SHARD_FROM:+shard_from_pages=$RKM_BENCH_ZSPAN_SHARD_FROM}
if [ "${RKM_BENCH_ZSPAN_PROFILE:-0}" = 1 ]; then
	# shellcheck disable=SC2086
	perf record -a -e cpu-clock -c 100000 -o /tmp/perf.data -q -- \
		modprobe bench_zspan_rs $params >/tmp/perf-record.log 2>&1 ||
		{ echo "bench: modprobe under perf record failed:"; tail -n 5 /tmp/perf-record.log; exit 1; }
else
	# shellcheck disable=SC2086
	modprobe bench_zspan_rs $params || exit 1
fi
dmesg | sed -n '/rkm-bench: loading bench_zspan_rs/,$p' | sed -n 's/^\[[^]]*\] bench_zspan_rs: //p'
echo "(zspan_rs's shard_from_pages: $(cat /sys/module/bench_zspan_rs/parameters/shard_from_pages))"

# The functions the samples were in (idle left out), the 40 most frequent,
# with their share. The module is loaded by the profiled command, so perf
# has no map of it: its samples ([unknown]) are named here from
# /proc/kallsyms while it is still loaded (the module symbol at or below
# the sample's address). Both allocators' runs, one and two threads, and
# zbud_rs's row are in the one profile: zsmalloc's functions are the
# kernel's (zs_*, obj_*, the slab's for its handles), ours are M:name.
profile() {
	grep '\[bench_zspan_rs\]' /proc/kallsyms | awk '{ print $1, "A", $3 }' >/tmp/syms
	perf script -i /tmp/perf.data -F ip,sym 2>/dev/null | awk 'NF { print $1, "B", $2 }' >/tmp/ips
	echo "where the CPU went (perf, every sample of the run but idle; M: the module's functions)"
	sort /tmp/syms /tmp/ips | awk '
		$2 == "A" { cur = $3; next }
		{
			s = $3
			if (s == "[unknown]") s = (cur == "") ? s : "M:" cur
			if (s ~ /halt|idle/) next
			n[s]++; total++
		}
		END { for (s in n) printf "%6.2f%% %s\n", 100 * n[s] / total, s }' | sort -rn | head -n 40
}
[ "${RKM_BENCH_ZSPAN_PROFILE:-0}" = 1 ] && profile
rmmod bench_zspan_rs
