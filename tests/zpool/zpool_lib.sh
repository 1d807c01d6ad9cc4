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
	case "$m" in zbud_rs | z3fold_rs) ZPOOL_DRIVERS="$ZPOOL_DRIVERS $m" ;; esac
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
