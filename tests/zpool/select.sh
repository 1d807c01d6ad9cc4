#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# zswap selects each Rust zpool driver by name at run time; an unknown name is
# refused; a driver whose pool zswap holds cannot be unloaded.

. "$(dirname "$0")/zpool_lib.sh"
zpool_require_drivers

ktap_print_header
ktap_set_plan $((1 + NDRIVERS * 4))

zswap_on || ktap_exit_fail_msg "could not turn swap and zswap on"

unknown_refused() {
	before=$(cat $ZSWAP/zpool)
	if echo no-such-pool >$ZSWAP/zpool 2>/dev/null; then
		echo "writing no-such-pool succeeded"
		return 1
	fi
	[ "$(cat $ZSWAP/zpool)" = "$before" ] || { echo "zpool changed to $(cat $ZSWAP/zpool)"; return 1; }
}
rkm_check "an unknown zpool name is refused and zswap keeps its pool" unknown_refused

# rmmod of a module in use fails with EWOULDBLOCK (delete_module's answer
# for a module whose refcount is not 0; busybox prints its strerror,
# "Resource temporarily unavailable") and leaves it loaded. Any other
# failure (ENOENT, EBUSY...) is a failure of the case.
rmmod_refused() {
	if out=$(rmmod "$1" 2>&1); then
		echo "rmmod $1 succeeded while zswap holds its pool"
		return 1
	fi
	echo "rmmod $1: $out"
	case "$out" in
	*"Resource temporarily unavailable"*) ;;
	*) echo "rmmod $1 failed, but not with EWOULDBLOCK"; return 1 ;;
	esac
	grep -q "^$1 " /proc/modules || { echo "$1 is gone"; return 1; }
}

for d in $ZPOOL_DRIVERS; do
	rkm_check "$d: zswap selects it by name (the module loads by its alias)" zswap_use "$d"
	rkm_check "$d: its module is loaded and pinned by zswap's pool" \
		sh -c "awk '\$1 == \"$d\" && \$3 >= 1 { found = 1 } END { exit !found }' /proc/modules"
	rkm_check "$d: rmmod while zswap holds its pool fails with EWOULDBLOCK" rmmod_refused "$d"
	rkm_check "$d: switching back to zsmalloc" zswap_use zsmalloc
done

ktap_finished
