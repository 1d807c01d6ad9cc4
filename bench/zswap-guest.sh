#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# In the perf guest (bench/zswap.sh): the same zswap workloads under each
# backend in turn, each from a fresh pool, and one table per workload.
#
# Workloads: rkm-memstress, 160 MiB, 2 threads, 2 verifying passes, fixed
# seed, in a memory cgroup of 96 MiB; zswap with lzo and its shrinker on.
#   mixed         the default mix: text, binary, random, patterned and zero
#                 pages (text=35,binary=25,pattern=20,random=15,zero=5)
#   compressible  text=70,pattern=30: small objects, where three objects a
#                 page (z3fold) can pay off over two (zbud)
# Sampled every second: zswap's stored_pages and pool_total_size.
# Density = the sum of stored pages over the samples / the sum of pool
# pages over the same samples (a time-weighted mean over the run and its
# rounds: one sample's ratio moves with the shrinker's writeback); the
# "peak" columns show the sample with the most stored pages. "no-meta" is
# the same density over the pages that hold objects only: the Rust drivers'
# table pages left out, as the C allocators leave out their slab metadata;
# "/peer" compares it with the C peer's.
#
# Every backend runs ROUNDS times (default 2) per workload, the order
# reversed each round so that no backend always runs first or last; a
# backend's elapsed time is its fastest round.

BACKENDS=${BENCH_BACKENDS:-zbud z3fold zsmalloc zbud_rs z3fold_rs}
ROUNDS=${BENCH_ROUNDS:-2}
WORKLOADS=${BENCH_WORKLOADS:-"mixed:text=35,binary=25,pattern=20,random=15,zero=5 compressible:text=70,pattern=30"}
Z=/sys/module/zswap/parameters
D=/sys/kernel/debug/zswap

mkswap "$RKM_SWAP" >/dev/null && swapon "$RKM_SWAP" || exit 1
echo Y >$Z/shrinker_enabled
echo Y >$Z/enabled
echo +memory >/sys/fs/cgroup/cgroup.subtree_control

# Milliseconds since boot (busybox date has no %N).
now_ms() {
	awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime
}

for w in $WORKLOADS; do
wname=${w%%:*} mix=${w#*:}
results=/tmp/bench-results-$wname
: >$results
order=$BACKENDS
reversed=$(echo $BACKENDS | awk '{ for (i = NF; i > 0; i--) printf "%s ", $i }')
round=0
while [ $round -lt $ROUNDS ]; do
round=$((round + 1))
for b in $order; do
	# A fresh pool: drain everything, then select the backend.
	swapoff "$RKM_SWAP" && swapon "$RKM_SWAP"
	echo zsmalloc >$Z/zpool
	echo "$b" >$Z/zpool || { echo "bench: zswap refused $b"; exit 1; }
	sleep 2
	cg=/sys/fs/cgroup/bench-$b
	mkdir -p $cg
	echo 96M >$cg/memory.max
	rej0=$(($(cat $D/reject_compress_poor) + $(cat $D/reject_alloc_fail) + $(cat $D/reject_reclaim_fail) + $(cat $D/reject_compress_fail)))
	start=$(now_ms)
	sh -c "echo \$\$ > $cg/cgroup.procs && exec rkm-memstress --size-mib 160 --threads 2 --passes 2 --seed 0x5eed --mix $mix" >/tmp/ms-$wname-$b.log 2>&1 &
	pid=$!
	best_stored=0 best_pool=0 sum_stored=0 sum_pool=0 sum_meta=0
	while kill -0 $pid 2>/dev/null; do
		s=$(cat $D/stored_pages) p=$(($(cat $D/pool_total_size) / 4096))
		# The Rust drivers count their handle tables in their pool
		# pages; the C ones keep their metadata (z3fold's handle slots,
		# zsmalloc's zspage and handle caches) in slabs zswap does not
		# see. Their table pages, for the column that leaves them out.
		m=0
		for t in /sys/kernel/debug/$b/*/table_pages; do
			[ -r "$t" ] && m=$((m + $(cat "$t")))
		done
		if [ "$s" -gt "$best_stored" ]; then best_stored=$s best_pool=$p; fi
		if [ "$p" -gt 0 ]; then sum_stored=$((sum_stored + s)) sum_pool=$((sum_pool + p)) sum_meta=$((sum_meta + m)); fi
		sleep 1
	done
	wait $pid
	rc=$?
	end=$(now_ms)
	rej=$(($(cat $D/reject_compress_poor) + $(cat $D/reject_alloc_fail) + $(cat $D/reject_reclaim_fail) + $(cat $D/reject_compress_fail) - rej0))
	ms=$((end - start))
	out=$(awk '$1 == "zswpout" { print $2 }' $cg/memory.stat)
	echo "$b $best_stored $best_pool $rej $ms $rc $out $sum_stored $sum_pool $sum_meta" >>$results
	echo "$wname, round $round, $b: $(tail -n 1 /tmp/ms-$wname-$b.log)"
	rmdir $cg 2>/dev/null
done
[ "$order" = "$BACKENDS" ] && order=$reversed || order=$BACKENDS
done

# Per backend, the fastest round (a failed verification is never hidden:
# any failed round marks the backend FAILED).
awk '{ if (!($1 in t) || $5 < t[$1]) { t[$1] = $5; row[$1] = $0 }
	if ($6 != 0) bad[$1] = 1
	S[$1] += $8; P[$1] += $9; M[$1] += $10 }
	END { for (b in row) print row[b], S[b], P[b], M[b], (b in bad) }' $results >$results.best
awk -v order="$BACKENDS" '
	function density(row, f) { split(row, f, " "); return (f[12] > 0) ? f[11] / f[12] : 0 }
	function objdensity(row, f) { split(row, f, " "); return (f[12] > f[13]) ? f[11] / (f[12] - f[13]) : 0 }
	function elapsed(row, f) { split(row, f, " "); return f[5] }
	{ r[$1] = $0 }
	END {
		print "bench: zswap backends, workload '"$wname"' (--mix '"$mix"'), one boot (perf kernel), '"$ROUNDS"' rounds"
		print "(peer: the C allocator a Rust one replaces; zbud for the C ones and zsmalloc)"
		printf "| %-9s | %12s | %10s | %7s | %8s | %10s | %12s | %9s | %12s | %9s | %8s | %8s | %s\n", "backend", "peak stored", "peak pool", "density", "rejects", "elapsed ms", "density/zbud", "time/zbud", "density/peer", "time/peer", "no-meta", "/peer", "verified"
		printf "|-----------|--------------|------------|---------|----------|------------|--------------|-----------|--------------|-----------|----------|----------|---------\n"
		n = split(order, names, " ")
		for (i = 1; i <= n; i++) {
			b = names[i]
			if (!(b in r)) continue
			split(r[b], f, " ")
			peer = b; sub(/_rs$/, "", peer)
			if (peer == b || !(peer in r)) peer = "zbud"
			d = density(r[b]); pd = density(r[peer]); zd = density(r["zbud"])
			od = objdensity(r[b]); opd = objdensity(r[peer])
			t = f[5]; pt = elapsed(r[peer]); zt = elapsed(r["zbud"])
			printf "| %-9s | %12d | %10d | %7.2f | %8d | %10d | %12.2f | %9.2f | %12.2f | %9.2f | %8.3f | %8.3f | %s\n", b, f[2], f[3], d, f[4], t, (zd > 0 ? d / zd : 0), (zt > 0 ? t / zt : 0), (pd > 0 ? d / pd : 0), (pt > 0 ? t / pt : 0), od, (opd > 0 ? od / opd : 0), (f[14] == 0 ? "ok" : "FAILED")
		}
		if (("z3fold_rs" in r) && ("zsmalloc" in r) && density(r["zsmalloc"]) > 0)
			printf "gap to zsmalloc: z3fold_rs stores %.2f of the pages per pool page that zsmalloc does\n", density(r["z3fold_rs"]) / density(r["zsmalloc"])
	}' $results.best
done
