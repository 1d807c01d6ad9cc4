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
#   large         text=50,binary=50: objects of 2 to 3 KiB, where an
#                 allocator of one object a page loses most
#   small         pattern=100: objects of a few hundred bytes
# Mean object sizes under lzo (zspan_rs's class bytes per object at the
# peak of a 24 MiB run, 2026-12-04): mixed 1972, compressible 1858, large
# 2760, small 157 bytes; the bench prints them for each run of zspan_rs.
# Sampled every second: zswap's stored_pages and pool_total_size.
# Density = the sum of stored pages over the samples / the sum of pool
# pages over the same samples (a time-weighted mean over the run and its
# rounds: one sample's ratio moves with the shrinker's writeback); the
# "peak" columns show the sample with the most stored pages. "no-meta" is
# the same density over the pages that hold objects only: the Rust drivers'
# table pages left out, as the C allocators leave out their slab metadata.
# "all-meta" is the density over all the memory a backend holds for the
# pool: its pool pages plus the C allocators' slab metadata, read from
# /sys/kernel/slab (z3fold's z3fold_handle cache, zsmalloc's zs_handle-* and
# zspage-* caches; the perf kernel has SLUB_DEBUG compiled in, off, and the
# bench boots with slab_nomerge so that those caches hold nothing else; the
# Rust drivers' table pages are already in their pool pages). "/peer"
# compares each with the C peer's.
#
# Every backend runs ROUNDS times (default 5) per workload, the order
# reversed each round so that no backend always runs first or last; a
# backend's elapsed time is its fastest round ("time/zbud" compares fastest
# rounds), and its time against its C peer ("time/peer") the median of the
# ratios paired by round (the host's load moves every backend's time by
# tens of percent between rounds). Under the table, per Rust driver: that
# median with its 95% confidence interval (sign test), the ratio of the
# total times, and the rounds it was faster in. A round's time runs from
# the workload's start until it has exited and its memory is freed.

# The host's BENCH_* settings arrive as RKM_BENCH_* (bench/zswap.sh).
[ -r /etc/rkm.env ] && . /etc/rkm.env
BACKENDS=${RKM_BENCH_BACKENDS:-zbud z3fold zsmalloc zbud_rs z3fold_rs zspan_rs}
ROUNDS=${RKM_BENCH_ROUNDS:-5}
# zspan_rs's shard_from_pages, if set (Documentation/zspan.rst, "Shards").
ZSPAN_SHARD_FROM=${RKM_BENCH_ZSPAN_SHARD_FROM:-}
WORKLOADS=${RKM_BENCH_WORKLOADS:-"mixed:text=35,binary=25,pattern=20,random=15,zero=5 compressible:text=70,pattern=30 large:text=50,binary=50 small:pattern=100"}
Z=/sys/module/zswap/parameters
D=/sys/kernel/debug/zswap

command -v perf >/dev/null || { echo "bench: no perf in the guest (bench/zswap.sh passes it)"; exit 1; }
mkswap "$RKM_SWAP" >/dev/null && swapon "$RKM_SWAP" || exit 1
echo Y >$Z/shrinker_enabled
echo Y >$Z/enabled
echo +memory >/sys/fs/cgroup/cgroup.subtree_control

# Milliseconds since boot (busybox date has no %N).
now_ms() {
	awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime
}

# The pages of the slab caches that hold backend $1's metadata outside its
# pool pages (0 for zbud and the Rust drivers). A cache that is merged with
# another (a symlink in /sys/kernel/slab) or whose slab count cannot be read
# would make the count wrong, so it stops the bench instead.
slab_pages() {
	case $1 in
	z3fold) caches="z3fold_handle" ;;
	zsmalloc) caches="zs_handle-* zspage-*" ;;
	*) echo 0; return 0 ;;
	esac
	n=0 found=0
	for c in $caches; do
		for d in /sys/kernel/slab/$c; do
			[ -e "$d" ] || continue
			if [ -L "$d" ] || [ ! -r "$d/slabs" ]; then
				echo "bench: cannot count $1's slab metadata in $d (merged cache, or no SLUB_DEBUG)" >&2
				return 1
			fi
			found=1
			n=$((n + ($(cut -d ' ' -f 1 "$d/slabs") << $(cat "$d/order"))))
		done
	done
	if [ $found -eq 0 ]; then
		echo "bench: no slab cache of $1 ($caches) in /sys/kernel/slab" >&2
		return 1
	fi
	echo $n
}

# A fresh pool of backend $1: drain everything, select the backend, and
# make its memory cgroup ($cg).
#
# The C z3fold leaks handle slots: when zswap destroys a z3fold pool (here,
# once the swap is drained and another backend selected) SLUB reports the
# slots still allocated in its z3fold_handle cache, with a WARN. That is the
# C module's bug, counted at the end (c_leaks); the window (slab-leak,
# scripts/kreport.py) excuses that cache's SLUB report and the WARNs that
# come with it only. Any other report still fails the run.
fresh_pool() {
	echo "rkm-expect: begin slab-leak cache=z3fold_handle" >/dev/kmsg
	swapoff "$RKM_SWAP" && swapon "$RKM_SWAP"
	echo zsmalloc >$Z/zpool
	echo "$1" >$Z/zpool || { echo "bench: zswap refused $1"; exit 1; }
	if [ "$1" = zspan_rs ] && [ -n "$ZSPAN_SHARD_FROM" ]; then
		echo "$ZSPAN_SHARD_FROM" >/sys/module/zspan_rs/parameters/shard_from_pages ||
			{ echo "bench: zspan_rs took no shard_from_pages=$ZSPAN_SHARD_FROM"; exit 1; }
	fi
	sleep 2
	echo "rkm-expect: end" >/dev/kmsg
	cg=/sys/fs/cgroup/bench-$1
	mkdir -p $cg
	echo 96M >$cg/memory.max
}

# The mean size of zspan_rs's objects (their classes' sizes, a multiple of
# 16 bytes at or above the compressed size): what a workload's objects are.
mean_class() {
	awk 'FILENAME ~ /class_bytes$/ { b += $1 } FILENAME ~ /objects$/ { o += $1 }
		END { if (o > 0) printf "%d objects of %d bytes on average\n", o, b / o; else print "no objects" }' \
		/sys/kernel/debug/zspan_rs/*/class_bytes /sys/kernel/debug/zspan_rs/*/objects 2>/dev/null
}

# What zspan_rs's compaction did in the pool (over the run so far).
moved() {
	awk 'FILENAME ~ /moved$/ { m += $1 } FILENAME ~ /spans_compacted$/ { s += $1 }
		END { printf "compaction moved %d objects and emptied %d spans\n", m, s }' \
		/sys/kernel/debug/zspan_rs/*/moved /sys/kernel/debug/zspan_rs/*/spans_compacted 2>/dev/null
}

# The pages zswap stored for the cgroup $cg so far.
zswpout() {
	awk '$1 == "zswpout" { print $2 }' $cg/memory.stat
}

# The command line of the workload ($mix) in the cgroup $cg, for sh -c.
# The shell writes the workload's end (ms since boot) to /tmp/end-ms once
# rkm-memstress has exited, its memory (and so its zswap entries) freed:
# the sampling loop below only notices the end at its next second.
workload() {
	echo "echo \$\$ > $cg/cgroup.procs && { rkm-memstress --size-mib 160 --threads 2 --passes 2 --seed 0x5eed --mix $mix; rc=\$?; awk '{ printf \"%d\\n\", \$1 * 1000 }' /proc/uptime > /tmp/end-ms; exit \$rc; }"
}

# When the last workload ended: the time it wrote, else (it did not get
# that far) now.
workload_end_ms() {
	cat /tmp/end-ms 2>/dev/null || now_ms
}

# The driver's CPU time on the workload, by a system-wide perf profile
# (cpu-clock, one sample each PERIOD_US = 250 us of a CPU, kernel call
# chains) of PROFILE_RUNS more runs per backend (default 3; the order
# reversed each run, as the rounds'): the samples with any function of
# the driver on their call chain, each sample once ("children": page
# allocation, copies and locks the driver calls included). A module's
# functions are those of its [module]. A C driver built into the kernel
# has its functions named instead (builtin_funcs): since 2026-12-07 the
# perf kernel builds zsmalloc as a module and z3fold in
# (kernel/perf.fragment). zsmalloc built in was counted by its allocator
# entry points (ZS_FUNCS), not its zpool ones, because zs_zpool_map,
# zs_zpool_unmap and zs_zpool_free are tail calls (a jmp to zs_map_object,
# zs_unmap_object, zs_free in the perf kernel) and so are never on a call
# chain; counting them (as this bench did before 2026-12-05) left
# zsmalloc's map, unmap and free out of its CPU. z3fold built in is
# counted by every function of mm/z3fold.c that the build keeps out of
# line (Z3FOLD_FUNCS). Prints, per backend, the runs' time, their
# stores, the driver's CPU ms and its us per store (all summed over the runs), each run's us
# per store, and the Rust drivers' ratio to their C peer's (zspan_rs's:
# zsmalloc's) with the range of the ratios paired by run; then, per
# backend, the functions its samples were in over the runs (leaf_summary).
# One profiled run holds a hundred to a few hundred of a driver's samples,
# and its us per store moved by some 30 % between runs (2026-12-07):
# hence several.
ZS_FUNCS='zs_malloc|zs_zpool_malloc|zs_free|zs_map_object|zs_unmap_object|zs_compact|zs_shrinker_scan|zs_shrinker_count|async_free_zspage|zs_zpool_total_pages'
Z3FOLD_FUNCS='[a-z_]*z3fold[a-z_]*|compact_page_work|do_compact_page|compact_single_buddy|free_handle|free_pages_work|alloc_slots|add_to_unbuddied|get_free_buddy|encode_handle|__encode_handle|mchunk_memmove|handle_to_buddy|slots_to_pool|zhdr_to_pool|buddy_single'

# The functions of C driver $1 if it is built into the kernel (no
# /sys/module/$1/refcnt, which only a loaded module has), as an awk
# regex; nothing for a module, whose functions are its [module]'s.
builtin_funcs() {
	[ -e /sys/module/"$1"/refcnt ] && return
	case "$1" in
	zsmalloc) echo "^($ZS_FUNCS)\$" ;;
	z3fold) echo "^($Z3FOLD_FUNCS)\$" ;;
	esac
}

PERIOD_US=250
PROFILE_RUNS=${RKM_BENCH_PROFILE_RUNS:-3}

profile() {
	: >/tmp/prof-$wname
	porder=$BACKENDS
	run=0
	while [ $run -lt "$PROFILE_RUNS" ]; do
		run=$((run + 1))
		for b in $porder; do
			[ $run -eq 1 ] && : >/tmp/leafraw-$wname-$b
			fresh_pool $b
			rm -f /tmp/end-ms
			start=$(now_ms)
			perf record -a -g -e cpu-clock -c $((PERIOD_US * 1000)) -o /tmp/perf.data -q -- sh -c "$(workload)" >/tmp/prof-ms-$wname-$b.log 2>&1 ||
				{ echo "bench: the profiled run $run of $b failed:"; tail -n 5 /tmp/prof-ms-$wname-$b.log; exit 1; }
			ms=$(($(workload_end_ms) - start))
			out=$(zswpout)
			rmdir $cg 2>/dev/null
			leaf_counts $b >>/tmp/leafraw-$wname-$b
			read total driver </tmp/leaf-counts
			rm -f /tmp/perf.data
			if [ "$driver" -eq 0 ] || [ "$total" -eq 0 ]; then
				echo "bench: the profile of $b has no sample in [$b] (of $total): no symbols?"
				exit 1
			fi
			echo "$b $ms $out $total $driver $run" >>/tmp/prof-$wname
		done
		[ "$porder" = "$BACKENDS" ] && porder=$reversed || porder=$BACKENDS
	done
	awk -v w="$wname" -v p=$PERIOD_US -v runs="$PROFILE_RUNS" '
		function peer_of(b,   q) { q = b; sub(/_rs$/, "", q); if (b == "zspan_rs") q = "zsmalloc"; return q }
		function per(cpu, stores) { return (stores > 0) ? cpu * 1000 / stores : 0 }
		{
			b = $1
			if (!(b in st)) n[++k] = b
			c = $5 * p / 1000
			cpu[b] += c; st[b] += $3; ms[b] += $2
			rper[b, $6] = per(c, $3)
		}
		END {
			print "driver CPU, workload " w " (perf, " runs " profiled runs each, summed; samples with the driver on the call chain)"
			printf "| %-9s | %10s | %9s | %14s | %14s | %-6s | %-22s | %s\n", "backend", "elapsed ms", "stores", "driver CPU ms", "us per store", "/peer", "us per store, each run", "/peer, paired by run"
			printf "|-----------|------------|-----------|----------------|----------------|--------|------------------------|---------------------\n"
			for (i = 1; i <= k; i++) {
				b = n[i]; peer = peer_of(b)
				u = per(cpu[b], st[b])
				pu = (peer != b && (peer in st)) ? per(cpu[peer], st[peer]) : 0
				runs_line = ""; lo = 0; hi = 0
				for (r = 1; r <= runs; r++) {
					if (!((b, r) in rper)) continue
					runs_line = runs_line sprintf("%s%.2f", (runs_line == "") ? "" : " ", rper[b, r])
					if (pu > 0 && ((peer, r) in rper) && rper[peer, r] > 0) {
						q = rper[b, r] / rper[peer, r]
						if (lo == 0 || q < lo) lo = q
						if (q > hi) hi = q
					}
				}
				printf "| %-9s | %10d | %9d | %14.0f | %14.2f | %-6s | %-22s | %s\n", b, ms[b], st[b], cpu[b], u, (pu > 0) ? sprintf("%.2f", u / pu) : "-", runs_line, (lo > 0) ? sprintf("%.2f to %.2f", lo, hi) : "-"
			}
		}' /tmp/prof-$wname
	echo "where the driver CPU goes, workload $wname (the same profiles: the function each of the driver's samples was in, its share of them)"
	for b in $BACKENDS; do
		leaf_summary $b </tmp/leafraw-$wname-$b
	done
}

# The counts of backend $1's samples in /tmp/perf.data, one per line:
# "leaf F N" for the N samples with the driver on their call chain whose
# leaf (the function the sample was in) is F; "call C N" for those under
# the zpool call C (the outermost driver function on the chain: zsmalloc's
# allocator entry points, the others' zpool functions). Writes the
# profile's samples and the driver's to /tmp/leaf-counts, which profile()
# reads.
leaf_counts() {
	perf script -i /tmp/perf.data --no-demangle -F ip,sym,dso 2>/dev/null | awk -v b="$1" -v fx="$(builtin_funcs "$1")" '
		# The zpool call a driver function serves ("" if none of them).
		function entry(f) {
			if (f ~ /(^zs_malloc|^z3fold_alloc|_zpool_malloc)$/) return "malloc"
			if (f ~ /(^zs_free|^z3fold_free|_zpool_free)$/) return "free"
			if (f ~ /(^zs_map_object|^z3fold_map|_zpool_map)$/) return "map"
			if (f ~ /(^zs_unmap_object|^z3fold_unmap|_zpool_unmap)$/) return "unmap"
			if (f ~ /_total_pages$/) return "total_pages"
			if (f ~ /^(zs_compact|zs_shrinker_scan|zs_shrinker_count|async_free_zspage|compact_page_work|do_compact_page)$/) return "compaction"
			return ""
		}
		function flush() {
			if (leaf != "") samples++
			if (inside && leaf != "") { n[leaf]++; all++; by[(call == "") ? "other" : call]++ }
			inside = 0; leaf = ""; call = ""
		}
		NF == 0 { flush(); next }
		{
			if (leaf == "") leaf = $2
			# The module of a frame: "([zspan_rs])" or its .ko path.
			d = $NF; gsub(/[][()]/, "", d); sub(/.*\//, "", d); sub(/\.ko$/, "", d)
			if (d == b || (fx != "" && $2 ~ fx)) {
				inside = 1
				# The outermost (callers come after callees).
				if (entry($2) != "") call = entry($2)
			}
		}
		END {
			flush()
			print samples + 0, all + 0 >"/tmp/leaf-counts"
			for (s in n) print "leaf", s, n[s]
			for (c in by) print "call", c, by[c]
		}'
}

# From leaf_counts' lines on stdin (backend $1's runs): the functions its
# samples were in, the ten most frequent, with their share of those
# samples, on one line; and on a second, its samples split by zpool call.
leaf_summary() {
	awk -v b="$1" '
		# The last two names of a Rust (v0) symbol: "Core::alloc_uncounted".
		function short(s,   i, c, num, id, a, z, nn, k) {
			if (substr(s, 1, 2) != "_R") return s
			# A generic function ("_RINv...E"): its own path is the
			# crate and one name a leading "N", before the arguments
			# (which end in names too: "pages::KernelPages").
			if (substr(s, 1, 4) == "_RIN") {
				i = 4; nn = 0
				while (substr(s, i, 1) == "N") { nn++; i += 2 }
				if (substr(s, i, 1) == "C") {
					i++
					k = -1
					while (k < nn && i <= length(s)) {
						if (substr(s, i, 1) == "s") { while (i <= length(s) && substr(s, i, 1) != "_") i++; i++ }
						num = 0
						while (substr(s, i, 1) ~ /[0-9]/) { num = num * 10 + substr(s, i, 1); i++ }
						if (num == 0) break
						if (substr(s, i, 1) == "_") i++
						id = substr(s, i, num); i += num; k++
						if (k > 0) { a = z; z = id }
					}
					if (k == nn && z != "") return (a == "") ? z : a "::" z
					a = ""; z = ""
				}
			}
			i = 3; a = ""; z = ""
			while (i <= length(s)) {
				c = substr(s, i, 1)
				if (c == "B" || (c == "C" && substr(s, i + 1, 1) == "s")) {
					while (i <= length(s) && substr(s, i, 1) != "_") i++
					i++
				} else if (c ~ /[0-9]/) {
					num = 0
					while (substr(s, i, 1) ~ /[0-9]/) { num = num * 10 + substr(s, i, 1); i++ }
					if (substr(s, i, 1) == "_") i++
					id = substr(s, i, num); i += num
					if (id ~ /^[A-Za-z_][A-Za-z0-9_]*$/) { a = z; z = id }
				} else i++
			}
			return (a == "") ? z : a "::" z
		}
		$1 == "leaf" { n[$2] += $3; all += $3 }
		$1 == "call" { by[$2] += $3 }
		END {
			line = sprintf("| %-9s | %5d samples |", b, all)
			for (k = 0; k < 10; k++) {
				best = ""; top = 0
				for (s in n) if (n[s] > top) { top = n[s]; best = s }
				if (best == "") break
				name = short(best); if (length(name) > 40) name = substr(name, 1, 40)
				line = line sprintf(" %s %.0f%%", name, 100 * top / all)
				delete n[best]
			}
			print line
			line = sprintf("| %-9s | by zpool call:", b)
			split("malloc map unmap free total_pages compaction other", calls, " ")
			for (k = 1; k <= 7; k++)
				if (by[calls[k]] > 0) line = line sprintf(" %s %.0f%%", calls[k], 100 * by[calls[k]] / all)
			print line
		}'
}

# The objects each slab cache still held when it was destroyed (SLUB's
# "Objects remaining" reports, one "Slab ... used=N" line per slab).
c_leaks() {
	dmesg | awk '
		/ BUG [^ ]+ / { c = ""; if (/Objects remaining/) for (i = 1; i <= NF; i++) if ($i == "BUG") c = $(i + 1) }
		c != "" && /Slab 0x.* used=[0-9]+/ { match($0, /used=[0-9]+/); n[c] += substr($0, RSTART + 5, RLENGTH - 5) }
		END {
			for (c in n) printf "bench: %s held %d objects when its cache was destroyed (leaked by its allocator; SLUB lists them in dmesg)\n", c, n[c]
		}'
}

[ -n "$ZSPAN_SHARD_FROM" ] && echo "bench: zspan_rs's shard_from_pages is $ZSPAN_SHARD_FROM (default 4096)"
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
	fresh_pool $b
	rej0=$(($(cat $D/reject_compress_poor) + $(cat $D/reject_alloc_fail) + $(cat $D/reject_reclaim_fail) + $(cat $D/reject_compress_fail)))
	rm -f /tmp/end-ms
	start=$(now_ms)
	sh -c "$(workload)" >/tmp/ms-$wname-$b.log 2>&1 &
	pid=$!
	best_stored=0 best_pool=0 sum_stored=0 sum_pool=0 sum_meta=0 sum_slab=0 peak_mean="no samples"
	while kill -0 $pid 2>/dev/null; do
		s=$(cat $D/stored_pages) p=$(($(cat $D/pool_total_size) / 4096))
		# The Rust drivers count their handle tables in their pool
		# pages; the C ones keep their metadata (z3fold's handle slots,
		# zsmalloc's zspage and handle caches) in slabs zswap does not
		# see. Their table pages, for the column that leaves them out,
		# and the C ones' slab pages, for the column that adds them.
		m=0
		for t in /sys/kernel/debug/$b/*/table_pages; do
			[ -r "$t" ] && m=$((m + $(cat "$t")))
		done
		sl=$(slab_pages $b) || exit 1
		if [ "$s" -gt "$best_stored" ]; then
			best_stored=$s best_pool=$p
			[ "$b" = zspan_rs ] && peak_mean=$(mean_class)
		fi
		if [ "$p" -gt 0 ]; then sum_stored=$((sum_stored + s)) sum_pool=$((sum_pool + p)) sum_meta=$((sum_meta + m)) sum_slab=$((sum_slab + sl)); fi
		sleep 1
	done
	wait $pid
	rc=$?
	end=$(workload_end_ms)
	rej=$(($(cat $D/reject_compress_poor) + $(cat $D/reject_alloc_fail) + $(cat $D/reject_reclaim_fail) + $(cat $D/reject_compress_fail) - rej0))
	ms=$((end - start))
	out=$(zswpout)
	echo "$b $best_stored $best_pool $rej $ms $rc $out $sum_stored $sum_pool $sum_meta $sum_slab $round" >>$results
	echo "$wname, round $round, $b: $(tail -n 1 /tmp/ms-$wname-$b.log)"
	[ "$b" = zspan_rs ] && echo "$wname, round $round: zspan_rs's objects at its peak: $peak_mean; $(moved) for $out stores"
	rmdir $cg 2>/dev/null
done
[ "$order" = "$BACKENDS" ] && order=$reversed || order=$BACKENDS
done

# Per backend: the fastest round's row, the samples' sums over all rounds,
# each round's time, and whether any round failed (a failed verification is
# never hidden: it marks the backend FAILED). Fields of $results: 1 backend,
# 2 peak stored, 3 pool at that peak, 4 rejects, 5 ms, 6 exit status,
# 7 zswpout, 8-11 sums of stored, pool, table and slab pages, 12 round.
awk -v order="$BACKENDS" -v rounds="$ROUNDS" '
	function median(v, n,   i, j, t) {
		for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
		return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
	}
	function ratio(a, b) { return (b > 0) ? a / b : 0 }
	# The median of the ratios of b to peer by round. Sets lo and hi (the
	# range of the ratios), np (their number), clo and chi (the 95%
	# confidence interval of the median, from the sign test: the j-th
	# smallest and largest ratio for the largest j with
	# P(Binomial(np, 1/2) < j) <= 0.025; 0 with fewer than 6 rounds), tot
	# (the ratio of the total times) and wins (rounds b took less time).
	function paired(b, peer,   r, q, k, m, sb, sp, i, j, term, cdf) {
		k = 0; sb = 0; sp = 0; wins = 0
		for (r = 1; r <= rounds; r++)
			if (((b, r) in ms) && ratio(ms[b, r], ms[peer, r]) > 0) {
				q[++k] = ms[b, r] / ms[peer, r]
				sb += ms[b, r]; sp += ms[peer, r]
				if (q[k] < 1) wins++
				if (k == 1 || q[k] < lo) lo = q[k]
				if (k == 1 || q[k] > hi) hi = q[k]
			}
		np = k; tot = ratio(sb, sp)
		m = (k > 0) ? median(q, k) : 0
		# median() sorted q. term: P(Binomial(k, 1/2) = i).
		term = 1
		for (i = 0; i < k; i++) term /= 2
		j = 0; cdf = 0
		for (i = 0; i < k; i++) {
			cdf += term
			if (cdf > 0.025) break
			j = i + 1
			term = term * (k - i) / (i + 1)
		}
		clo = (j > 0) ? q[j] : 0; chi = (j > 0) ? q[k + 1 - j] : 0
		return m
	}
	{
		b = $1
		if (!(b in t) || $5 < t[b]) { t[b] = $5; peak[b] = $2; ppool[b] = $3; rej[b] = $4 }
		if ($6 != 0) bad[b] = 1
		S[b] += $8; P[b] += $9; M[b] += $10; SL[b] += $11
		ms[b, $12] = $5
	}
	END {
		print "bench: zswap backends, workload '"$wname"' (--mix '"$mix"'), one boot (perf kernel), " rounds " rounds"
		print "(peer: the C allocator a Rust one replaces, zsmalloc for zspan_rs; zbud for the C ones and zsmalloc; time/peer: the median of the ratios paired by round)"
		printf "| %-9s | %12s | %10s | %7s | %8s | %10s | %12s | %9s | %12s | %9s | %8s | %8s | %8s | %8s | %s\n", "backend", "peak stored", "peak pool", "density", "rejects", "elapsed ms", "density/zbud", "time/zbud", "density/peer", "time/peer", "no-meta", "/peer", "all-meta", "/peer", "verified"
		printf "|-----------|--------------|------------|---------|----------|------------|--------------|-----------|--------------|-----------|----------|----------|----------|----------|---------\n"
		n = split(order, names, " ")
		for (i = 1; i <= n; i++) {
			b = names[i]
			if (!(b in t)) continue
			peer = b; sub(/_rs$/, "", peer); if (b == "zspan_rs") peer = "zsmalloc"
			if (peer == b || !(peer in t)) peer = "zbud"
			d[b] = ratio(S[b], P[b]); od[b] = ratio(S[b], P[b] - M[b]); ad[b] = ratio(S[b], P[b] + SL[b])
			tp[b] = paired(b, peer)
			printf "| %-9s | %12d | %10d | %7.2f | %8d | %10d | %12.2f | %9.2f | %12.2f | %9.2f | %8.3f | %8.3f | %8.3f | %8.3f | %s\n", b, peak[b], ppool[b], d[b], rej[b], t[b], ratio(d[b], ratio(S["zbud"], P["zbud"])), ratio(t[b], t["zbud"]), ratio(d[b], ratio(S[peer], P[peer])), tp[b], od[b], ratio(od[b], ratio(S[peer], P[peer] - M[peer])), ad[b], ratio(ad[b], ratio(S[peer], P[peer] + SL[peer])), ((b in bad) ? "FAILED" : "ok")
		}
		for (i = 1; i <= n; i++) {
			b = names[i]
			if (!(b in t)) continue
			line = sprintf("elapsed rounds (ms): %-9s", b)
			for (r = 1; r <= rounds; r++) line = line sprintf(" %6s", ((b, r) in ms) ? ms[b, r] : "-")
			print line
		}
		for (i = 1; i <= n; i++) {
			b = names[i]; peer = b; sub(/_rs$/, "", peer); if (b == "zspan_rs") peer = "zsmalloc"
			if (peer == b || !(b in t) || !(peer in t)) continue
			m = paired(b, peer)
			ci = (clo > 0) ? sprintf("95%% CI %.2f to %.2f, ", clo, chi) : ""
			printf "time, paired by round: %s/%s median %.2f (%srange %.2f to %.2f over %d rounds); total %.3f; %s faster in %d of %d rounds\n", b, peer, m, ci, lo, hi, np, tot, b, wins, np
		}
		if (("zspan_rs" in t) && ("zsmalloc" in t) && d["zsmalloc"] > 0)
			printf "zspan_rs against zsmalloc: %.3f of the pages per pool page (%.3f counting the metadata of both); against zbud: time %.2f (fastest rounds)\n", d["zspan_rs"] / d["zsmalloc"], ratio(ad["zspan_rs"], ad["zsmalloc"]), ratio(t["zspan_rs"], t["zbud"])
		if (("z3fold_rs" in t) && ("zsmalloc" in t) && d["zsmalloc"] > 0)
			printf "gap to zsmalloc: z3fold_rs stores %.2f of the pages per pool page that zsmalloc does, and %.2f counting the metadata of both\n", d["z3fold_rs"] / d["zsmalloc"], ratio(ad["z3fold_rs"], ad["zsmalloc"])
	}' $results
profile
done
c_leaks
