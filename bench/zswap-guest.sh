#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# In the perf guest (bench/zswap.sh): the same zswap workload under each
# backend in turn, each from a fresh pool, and one table.
#
# Workload: rkm-memstress, 160 MiB of text/binary/random/patterned/zero
# pages, 2 threads, 2 verifying passes, fixed seed, in a memory cgroup of
# 96 MiB; zswap with lzo and its shrinker on. Sampled every second: zswap's
# stored_pages and pool_total_size; the row shows the sample with the most
# stored pages. Density = stored pages / pool pages at that sample.

BACKENDS=${BENCH_BACKENDS:-zbud z3fold zsmalloc zbud_rs}
Z=/sys/module/zswap/parameters
D=/sys/kernel/debug/zswap

mkswap "$RKM_SWAP" >/dev/null && swapon "$RKM_SWAP" || exit 1
echo Y >$Z/shrinker_enabled
echo Y >$Z/enabled
echo +memory >/sys/fs/cgroup/cgroup.subtree_control

results=/tmp/bench-results
: >$results
for b in $BACKENDS; do
	# A fresh pool: drain everything, then select the backend.
	swapoff "$RKM_SWAP" && swapon "$RKM_SWAP"
	echo zsmalloc >$Z/zpool
	echo "$b" >$Z/zpool || { echo "bench: zswap refused $b"; exit 1; }
	sleep 2
	cg=/sys/fs/cgroup/bench-$b
	mkdir -p $cg
	echo 96M >$cg/memory.max
	rej0=$(($(cat $D/reject_compress_poor) + $(cat $D/reject_alloc_fail) + $(cat $D/reject_reclaim_fail) + $(cat $D/reject_compress_fail)))
	start=$(date +%s%N 2>/dev/null || echo 0)
	sh -c "echo \$\$ > $cg/cgroup.procs && exec rkm-memstress --size-mib 160 --threads 2 --passes 2 --seed 0x5eed" >/tmp/ms-$b.log 2>&1 &
	pid=$!
	best_stored=0 best_pool=0
	while kill -0 $pid 2>/dev/null; do
		s=$(cat $D/stored_pages) p=$(($(cat $D/pool_total_size) / 4096))
		if [ "$s" -gt "$best_stored" ]; then best_stored=$s best_pool=$p; fi
		sleep 1
	done
	wait $pid
	rc=$?
	end=$(date +%s%N 2>/dev/null || echo 0)
	rej=$(($(cat $D/reject_compress_poor) + $(cat $D/reject_alloc_fail) + $(cat $D/reject_reclaim_fail) + $(cat $D/reject_compress_fail) - rej0))
	ms=$(((end - start) / 1000000))
	out=$(awk '$1 == "zswpout" { print $2 }' $cg/memory.stat)
	echo "$b $best_stored $best_pool $rej $ms $rc $out" >>$results
	tail -n 1 /tmp/ms-$b.log
	rmdir $cg 2>/dev/null
done

awk 'NR == 1 || $1 == "zbud" { if ($1 == "zbud") { bs = $2; bp = $3; bt = $5 } }
	{ row[NR] = $0 }
	END {
		print "bench: zswap backends, same workload, one boot (perf kernel)"
		printf "| %-9s | %12s | %10s | %7s | %8s | %10s | %12s | %9s | %s\n", "backend", "stored pages", "pool pages", "density", "rejects", "elapsed ms", "density/zbud", "time/zbud", "verified"
		printf "|-----------|--------------|------------|---------|----------|------------|--------------|-----------|---------\n"
		for (i = 1; i <= NR; i++) {
			split(row[i], f, " ")
			d = (f[3] > 0) ? f[2] / f[3] : 0
			bd = (bp > 0) ? bs / bp : 0
			printf "| %-9s | %12d | %10d | %7.2f | %8d | %10d | %12.2f | %9.2f | %s\n", f[1], f[2], f[3], d, f[4], f[5], (bd > 0 ? d / bd : 0), (bt > 0 ? f[5] / bt : 0), (f[6] == 0 ? "ok" : "FAILED")
		}
	}' $results
