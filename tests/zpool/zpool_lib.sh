# SPDX-License-Identifier: GPL-2.0
#
# What the zpool suite's programs share. Every case runs for every Rust zpool
# driver of the build ($ZPOOL_DRIVERS, from $RKM_MODULES): the cases are
# written once and parametrised by the driver's name.

. "$(dirname "$0")/../lib/rkm.sh"

ZSWAP=/sys/module/zswap/parameters
ZDEBUG=/sys/kernel/debug/zswap
CG=/sys/fs/cgroup/zpool-test

ZPOOL_DRIVERS=
for m in $RKM_MODULES; do
	case "$m" in zbud_rs | z3fold_rs | zspan_rs) ZPOOL_DRIVERS="$ZPOOL_DRIVERS $m" ;; esac
done
set -- $ZPOOL_DRIVERS
NDRIVERS=$#

# No driver built: the whole program is a skip (kselftest's exit code 4).
zpool_require_drivers() {
	if [ "$NDRIVERS" -eq 0 ]; then
		ktap_print_header
		ktap_skip_all "no Rust zpool driver built"
		exit "$KSFT_SKIP"
	fi
}

# Swap on the swap disk, zswap on (lzo, the default pool limit) with its
# shrinker: a memory cgroup is charged for its zswap pages, and without
# writeback to the swap disk a cgroup full of compressed pages can only OOM.
zswap_on() {
	if ! grep -q "^$RKM_SWAP " /proc/swaps; then
		mkswap "$RKM_SWAP" >/dev/null || return 1
		swapon "$RKM_SWAP" || return 1
	fi
	echo Y >$ZSWAP/shrinker_enabled
	echo Y >$ZSWAP/enabled
}

# zswap_use DRIVER: select DRIVER as zswap's pool; true if zswap took it.
zswap_use() {
	echo "$1" >$ZSWAP/zpool 2>/dev/null && [ "$(cat $ZSWAP/zpool)" = "$1" ]
}

# A memory cgroup of LIMIT bytes; memcg_run LIMIT CMD... runs CMD in it.
memcg_run() {
	limit=$1
	shift
	grep -qw memory /sys/fs/cgroup/cgroup.subtree_control ||
		echo +memory >/sys/fs/cgroup/cgroup.subtree_control
	mkdir -p "$CG"
	echo "$limit" >"$CG/memory.max"
	sh -c 'echo $$ >'"$CG"'/cgroup.procs && exec "$@"' sh "$@"
}

# memcg_stat NAME: a counter of the test cgroup's memory.stat.
memcg_stat() {
	awk -v k="$1" '$1 == k { print $2 }' "$CG/memory.stat"
}

# zswap_stat NAME: a zswap debugfs counter.
zswap_stat() {
	cat "$ZDEBUG/$1"
}

# Swap everything back in and turn swap off: zswap's pools drain.
swap_drain() {
	swapoff "$RKM_SWAP"
}

# The cgroup's processes (the workload memcg_run started).
memcg_pids() {
	cat "$CG/cgroup.procs" 2>/dev/null
}

# memcg_run_failing LIMIT CMD...: memcg_run, with the command's task marked
# make-it-fail (its threads inherit it): the fault injection armed by
# zpool_fault_setup fails its allocations that go through the driver.
memcg_run_failing() {
	limit=$1
	shift
	memcg_run "$limit" sh -c 'echo 1 >/proc/self/make-it-fail && exec "$@"' sh "$@"
}

# zpool_wait_for TIMEOUT DESC CMD...: wait, polling every 0.1 s, until CMD
# succeeds; false (with a diagnostic naming DESC) after TIMEOUT seconds. A
# test waits on the condition it needs, never for a fixed time, so a slow
# and a fast machine give the same verdict; the time-out only bounds a
# hang. (The harness's tests/lib/rkm.sh gets rkm_wait_for, the same.)
zpool_wait_for() {
	local timeout=$1 desc=$2 deadline
	shift 2
	deadline=$(awk -v t="$timeout" '{ print $1 + t; exit }' /proc/uptime)
	while ! "$@" >/dev/null 2>&1; do
		if awk -v d="$deadline" '{ exit !($1 > d) }' /proc/uptime; then
			echo "# timed out after ${timeout}s waiting for: $desc"
			return 1
		fi
		sleep 0.1
	done
}

# zpool_sum DRIVER FILE: the sum of FILE over DRIVER's pools in debugfs.
zpool_sum() {
	cat /sys/kernel/debug/"$1"/*/"$2" 2>/dev/null | awk '{ n += $1 } END { print n + 0 }'
}

# zpool_pools DRIVER: DRIVER's pool directories in debugfs (none: empty).
zpool_pools() {
	local p
	for p in /sys/kernel/debug/"$1"/*/; do
		[ -d "$p" ] && echo "$p"
	done
}

# The counters of every Rust driver's pools and zswap's, one "FILE VALUE"
# line each, read by one process.
zpool_counters() {
	local files= d p
	for d in $ZPOOL_DRIVERS; do
		for p in $(zpool_pools "$d"); do
			files="$files $p*"
		done
	done
	# shellcheck disable=SC2086
	awk '{ print FILENAME, $1 }' $files "$ZDEBUG/stored_pages" "$ZDEBUG/pool_total_size"
}

# zpool_relations SNAPSHOT: the relations between the counters of a
# snapshot (zpool_counters) of a quiet moment, when no zswap store, load or
# free is under way: in each pool, total_pages is pages plus table pages
# (plus spare pages)
# and the pages and objects are those of its pages by number of objects;
# over the pools, the objects are zswap's stored pages (one object a stored
# page) and the pages are zswap's pool_total_size (C pools empty). Prints
# each relation that does not hold; false if one does not.
zpool_relations() {
	awk '
		{ n = split($1, p, "/"); file = p[n] }
		p[n - 1] == "zswap" { zswap[file] = $2; next }
		{ pool = p[n - 2] "/" p[n - 1]; v[pool, file] = $2; pools[pool] = p[n - 2] }
		function bad(what) { print "# " what; wrong = 1 }
		END {
			for (pool in pools) {
				pages = v[pool, "pages"]; objects = v[pool, "objects"]
				# (spare_pages: the pages of freed spans zspan_rs keeps for its
				# next span; 0 where a driver has no such file.)
				spare = v[pool, "spare_pages"] + 0
				if (v[pool, "total_pages"] != pages + v[pool, "table_pages"] + spare)
					bad(pool ": total_pages " v[pool, "total_pages"] " != pages " pages " + table_pages " v[pool, "table_pages"] " + spare_pages " spare)
				if (pools[pool] == "zbud_rs") {
					one = v[pool, "pages_one_buddy"]; two = v[pool, "pages_two_buddies"]
					if (pages != one + two || objects != one + 2 * two)
						bad(pool ": pages " pages ", objects " objects " but " one " pages of one buddy and " two " of two")
				} else if (pools[pool] == "z3fold_rs") {
					h = v[pool, "headless_pages"]; one = v[pool, "pages_one_object"]
					two = v[pool, "pages_two_objects"]; three = v[pool, "pages_three_objects"]
					if (pages != h + one + two + three || objects != h + one + 2 * two + 3 * three)
						bad(pool ": pages " pages ", objects " objects " but " h " headless pages, " one " of one object, " two " of two, " three " of three")
				} else if (pools[pool] == "zspan_rs") {
					spans = v[pool, "spans"]; bytes = v[pool, "class_bytes"]
					if (v[pool, "mapped"] != 0)
						bad(pool ": " v[pool, "mapped"] " objects mapped at a quiet moment")
					if (bytes > pages * 4096 || objects < spans || (objects > 0) != (pages > 0))
						bad(pool ": pages " pages ", spans " spans ", objects " objects " of " bytes " bytes")
				}
				all_objects += objects; all_pages += v[pool, "total_pages"]
			}
			if (all_objects != zswap["stored_pages"])
				bad("the pools hold " all_objects " objects, zswap stored_pages is " zswap["stored_pages"])
			if (all_pages * 4096 != zswap["pool_total_size"])
				bad("the pools hold " all_pages " pages, zswap pool_total_size is " zswap["pool_total_size"] " bytes")
			print "# quiet snapshot: " all_objects " objects in " all_pages " pages, zswap stored_pages " zswap["stored_pages"]
			exit wrong
		}' "$1"
}

# Whether every thread of the processes PIDS... is stopped (state T).
zpool_stopped() {
	local pid s state
	for pid in "$@"; do
		for s in /proc/"$pid"/task/*/stat; do
			[ -e "$s" ] || continue
			state=$(awk '{ sub(/.*\) /, ""); print $1 }' "$s")
			[ "$state" = T ] || return 1
		done
	done
}

# zpool_pause: stops the workload (the test cgroup's processes) and waits
# until its threads are stopped: none is in the middle of a zswap store or
# load. Status 2 if there was no workload to stop (it had ended), 1 (the
# workload let go on) if it did not stop.
zpool_pause() {
	local pids
	pids=$(memcg_pids)
	# shellcheck disable=SC2086
	[ -n "$pids" ] && kill -STOP $pids 2>/dev/null || return 2
	# shellcheck disable=SC2086
	zpool_wait_for 60 "the workload to stop" zpool_stopped $pids && return 0
	zpool_resume
	return 1
}

# zpool_resume: lets the workload stopped by zpool_pause go on.
zpool_resume() {
	local pids
	pids=$(memcg_pids)
	# shellcheck disable=SC2086
	[ -z "$pids" ] || kill -CONT $pids 2>/dev/null
}

# zpool_quiet_check OUT: pauses the workload (zpool_pause), waits until
# zswap's and the pools' counters stay the same over 0.3 s, checks
# zpool_relations on them, and lets the workload go on. The snapshot goes to
# OUT. Status 1 if a relation does not hold or the counters never settled,
# 2 if there was no workload to stop (it had ended).
zpool_quiet_check() {
	local out=$1 settled paused
	zpool_pause
	paused=$?
	[ "$paused" -eq 0 ] || return "$paused"
	settled=1
	zpool_counters >"$out"
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		sleep 0.3
		mv "$out" "$out.before"
		zpool_counters >"$out"
		cmp -s "$out" "$out.before" && { settled=0; break; }
	done
	zpool_resume
	if [ "$settled" -ne 0 ]; then
		echo "# the counters kept changing with the workload stopped:"
		diff "$out.before" "$out" | sed 's/^/# /'
		return 1
	fi
	zpool_relations "$out"
}

# zpool_module_range MODULE: the first and one past the last address of
# MODULE's core (its base and size in /proc/modules: "name size refs deps
# state base"), in hex; nothing if it is not loaded. 64-bit shell
# arithmetic (awk's floats would round the addresses).
zpool_module_range() {
	set -- $(awk -v m="$1" '$1 == m { print $6, $2 }' /proc/modules)
	[ $# -eq 2 ] || return 1
	printf '0x%x 0x%x\n' "$(($1))" "$(($1 + $2))"
}

# zpool_fault_setup KIND MODULE: arm the fault injection KIND (failslab or
# fail_page_alloc) for the allocations whose call stack goes through
# MODULE's code, in tasks marked make-it-fail (see memcg_run_failing); every
# such allocation fails, silently, until zpool_fault_off KIND. The same as
# the harness's rkm_fault_setup (protocols: fault injection helpers).
zpool_fault_setup() {
	local dir=/sys/kernel/debug/$1 range
	range=$(zpool_module_range "$2") || { echo "# module $2 is not loaded"; return 1; }
	echo 0 >"$dir/probability"
	echo "${range% *}" >"$dir/require-start"
	echo "${range#* }" >"$dir/require-end"
	echo 0 >"$dir/reject-start"
	echo 0 >"$dir/reject-end"
	echo Y >"$dir/task-filter"
	echo 1 >"$dir/interval"
	echo -1 >"$dir/times"
	echo 0 >"$dir/verbose"
	echo 0 >"$dir/space"
	if [ "$1" = fail_page_alloc ]; then
		echo N >"$dir/ignore-gfp-wait"
		echo N >"$dir/ignore-gfp-highmem"
		echo 0 >"$dir/min-order"
	fi
	echo 100 >"$dir/probability"
}

# zpool_fault_off KIND: disarm KIND and clear its filters (back to the
# kernel's defaults: every task, every call stack, order 1 and up).
zpool_fault_off() {
	local dir=/sys/kernel/debug/$1
	echo 0 >"$dir/probability"
	echo N >"$dir/task-filter"
	echo 0 >"$dir/require-start"
	echo 0xffffffffffffffff >"$dir/require-end"
	echo 0 >"$dir/reject-start"
	echo 0 >"$dir/reject-end"
	echo 1 >"$dir/times"
	echo 2 >"$dir/verbose"
	if [ "$1" = fail_page_alloc ]; then
		echo Y >"$dir/ignore-gfp-wait"
		echo Y >"$dir/ignore-gfp-highmem"
		echo 1 >"$dir/min-order"
	fi
}
