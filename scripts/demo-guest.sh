#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# What `make demo` runs inside the test guest: a narrated tour of what the
# project's modules plug into. Later work extends it (zswap on zbud_rs, the
# SSD cache on /dev/bcache_rs0).

step=0
say() { step=$((step + 1)); printf '\ndemo: --- %d. %s\n' "$step" "$*"; }
show() { printf 'demo:     %s\n' "$*"; }

say "The test kernel"
show "$(uname -sr) on $(nproc) vCPUs, flavour '$RKM_FLAVOUR'"
if grep -qE ' _R[A-Za-z0-9_]+$' /proc/kallsyms; then
	show "Rust support: yes ($(grep -cE ' _R[A-Za-z0-9_]+$' /proc/kallsyms) Rust functions in the kernel)"
else
	show "Rust support: NO (no Rust symbols in kallsyms)"
fi

say "The disks the harness attached (found by serial number)"
for role in HDD SSD swap; do
	case $role in HDD) dev=$RKM_HDD ;; SSD) dev=$RKM_SSD ;; swap) dev=$RKM_SWAP ;; esac
	name=${dev#/dev/}
	sectors=$(cat "/sys/block/$name/size")
	rot=$(cat "/sys/block/$name/queue/rotational")
	kind=$([ "$rot" = 1 ] && echo rotational || echo non-rotational)
	show "$(printf '%-5s %-14s %6d MiB  %s' "$role" "$dev" $((sectors / 2048)) "$kind")"
done

say "zswap and its selectable pool backends (/sys/module/zswap/parameters/zpool)"
echo Y >/sys/module/zswap/parameters/enabled
show "zswap enabled: $(cat /sys/module/zswap/parameters/enabled), compressor: $(cat /sys/module/zswap/parameters/compressor), pool: $(cat /sys/module/zswap/parameters/zpool)"
aliases=$(sed -n 's/^alias zpool-\([^ ]*\) .*/\1/p' /lib/modules/$(uname -r)/modules.alias | sort -u | tr '\n' ' ')
show "backends loadable by name: zsmalloc (built in) ${aliases}"
for backend in zbud z3fold zsmalloc; do
	if echo "$backend" >/sys/module/zswap/parameters/zpool 2>/dev/null; then
		show "echo $backend > zpool  ->  zpool is now '$(cat /sys/module/zswap/parameters/zpool)' (a new pool; the old one drains)"
	else
		show "echo $backend > zpool  ->  refused"
	fi
done
if echo no-such-pool >/sys/module/zswap/parameters/zpool 2>/dev/null; then
	show "echo no-such-pool > zpool  ->  accepted (unexpected)"
else
	show "echo no-such-pool > zpool  ->  refused, zpool stays '$(cat /sys/module/zswap/parameters/zpool)'"
fi

say "The project's modules"
if [ -z "$RKM_MODULES" ]; then
	show "none built yet: the zpool drivers and the SSD cache come in later work"
fi
for m in $RKM_MODULES; do
	if modprobe "$m"; then
		show "modprobe $m: loaded ($(grep "^$m " /proc/modules | cut -d' ' -f2) bytes)"
		rmmod "$m" && show "rmmod $m: unloaded"
	else
		show "modprobe $m: FAILED"
		exit 1
	fi
done

say "Done: the guest powers off, and the host checks the kernel log for reports"
