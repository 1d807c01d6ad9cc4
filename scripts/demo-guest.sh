#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# What `make demo` runs inside the test guest: a narrated tour of what the
# project's modules plug into: zswap on zbud_rs and on z3fold_rs
# (RKM_DEMO_ZPOOL, from make demo ZPOOL=..., picks one), then the SSD cache:
# the NVMe image formatted by bcache-rs, the HDD attached in place as
# /dev/bcache_rs0, ext4 on it, and hits climbing on a second read.

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
for m in $RKM_MODULES; do
	case "$m" in
	test_* | bench_*) show "$m: a test/benchmark module (make check and bench/ load it)" ;;
	*) show "$m: $(modinfo -F description "$m" 2>/dev/null)" ;;
	esac
done

# The Rust zpool drivers to show (make demo ZPOOL=...; both by default).
ZPOOLS=${RKM_DEMO_ZPOOL:-zbud_rs z3fold_rs}
for d in $ZPOOLS; do
	if ! echo " $RKM_MODULES " | grep -q " $d "; then
		say "zswap on $d: not built, skipped"
		continue
	fi
	case $d in
	zbud_rs) what="stored two to a page"; files="objects pages pages_one_buddy pages_two_buddies reject_too_big bad_handles" ;;
	*) what="stored up to three to a page, compacted in place, lone objects migrated"; files="objects pages headless_pages pages_one_object pages_two_objects pages_three_objects compactions compactions_deferred migrations forwarded bad_handles" ;;
	esac
	say "zswap on $d: compressed swap pages $what by Rust"
	grep -q "^$RKM_SWAP " /proc/swaps || { mkswap "$RKM_SWAP" >/dev/null && swapon "$RKM_SWAP"; }
	echo Y >/sys/module/zswap/parameters/shrinker_enabled
	echo "$d" >/sys/module/zswap/parameters/zpool
	show "echo $d > zpool  ->  zpool is now '$(cat /sys/module/zswap/parameters/zpool)'; the module was loaded by its alias:"
	show "  $(grep "^$d " /proc/modules | cut -d' ' -f1-3) (name, size, users: zswap's pool pins it)"
	show "running 96 MiB of text/binary/random/patterned pages in a 48 MiB memory cgroup..."
	grep -qw memory /sys/fs/cgroup/cgroup.subtree_control || echo +memory >/sys/fs/cgroup/cgroup.subtree_control
	cg=/sys/fs/cgroup/demo-$d
	mkdir -p $cg && echo 48M >$cg/memory.max
	sh -c "echo \$\$ >$cg/cgroup.procs && exec rkm-memstress --size-mib 96 --passes 2" >/tmp/ms.log 2>&1 &
	pid=$!
	sleep 20
	pool=$(ls /sys/kernel/debug/$d | head -n 1)
	show "mid-run, zswap holds $(cat /sys/kernel/debug/zswap/stored_pages) pages in $(($(cat /sys/kernel/debug/zswap/pool_total_size) / 4096)) pool pages"
	show "$d pool '$pool':"
	show "  $(for f in $files; do printf '%s=%s ' $f $(cat /sys/kernel/debug/$d/$pool/$f); done)"
	wait $pid && ok=yes || ok=no
	show "the workload read every page back: $(tail -n 1 /tmp/ms.log)"
	show "memory.stat: $(grep -E '^zswp(out|in) ' $cg/memory.stat | tr '\n' ' ')"
	echo zsmalloc >/sys/module/zswap/parameters/zpool
	swapoff "$RKM_SWAP"
	rmdir $cg 2>/dev/null
	sleep 2
	if rmmod "$d"; then
		show "switched zswap back to zsmalloc, drained the swap: $d unloads cleanly"
	else
		show "$d did not unload"
	fi
	[ "$ok" = yes ] || exit 1
done

if echo " $RKM_MODULES " | grep -q " bcache_rs "; then
	BC=/sys/kernel/bcache_rs
	S=/sys/block/bcache_rs0/bcache_rs
	stats() { show "  hits=$(cat $S/hits) misses=$(cat $S/misses) fills=$(cat $S/fills) hit_ratio=$(cat $S/hit_ratio)% from_cache=$(($(cat $S/bytes_from_cache) >> 20)) MiB from_backing=$(($(cat $S/bytes_from_backing) >> 20)) MiB"; }
	say "bcache_rs: the SSD formatted as a cache (bcache-rs format-cache $RKM_SSD)"
	bcache-rs format-cache "$RKM_SSD" --force | sed 's/^/demo:     /' | head -n 8
	modprobe bcache_rs
	echo "$RKM_SSD" >$BC/register_cache
	show "echo $RKM_SSD > $BC/register_cache  ->  buckets: $(cat $BC/cache/buckets_total) of $(($(cat $BC/cache/bucket_size) >> 10)) KiB, state $(cat $BC/cache/state)"
	uuid=$(bcache-rs uuid)
	echo "$uuid $RKM_HDD" >$BC/register_dev
	show "echo \"$uuid $RKM_HDD\" > $BC/register_dev"
	show "  ->  /dev/bcache_rs0: $(($(cat /sys/block/bcache_rs0/size) / 2048)) MiB (the HDD's size, its data in place), mode: $(cat $S/cache_mode)"
	show "  ->  stacked on (its slaves, as lsblk shows them): $(ls /sys/block/bcache_rs0/slaves | tr '\n' ' ')"
	say "bcache_rs: ext4 on /dev/bcache_rs0, a tree of files, read twice"
	mkfs.ext4 -q -F /dev/bcache_rs0 && mkdir -p /mnt/bc && mount -t ext4 /dev/bcache_rs0 /mnt/bc
	i=0
	while [ $i -lt 32 ]; do
		mkdir -p /mnt/bc/dir$((i % 4)) && dd if=/dev/urandom of=/mnt/bc/dir$((i % 4))/file$i bs=64k count=4 2>/dev/null
		i=$((i + 1))
	done
	(cd /mnt/bc && find . -type f | sort | xargs md5sum) >/tmp/sums
	umount /mnt/bc
	# Writes were copied to the cache (writethrough); start from a cold
	# cache to show reads filling it.
	echo 1 >$S/stop
	echo 1 >$BC/cache/unregister
	echo "$RKM_SSD" >$BC/register_cache && echo "$uuid $RKM_HDD trust=1" >$BC/register_dev
	show "wrote 32 files (8 MiB), then re-registered for a cold cache (the first session's device was not trusted: nothing kept), now with trust=1; the statistics:"
	stats
	mount -t ext4 /dev/bcache_rs0 /mnt/bc
	(cd /mnt/bc && md5sum -c /tmp/sums >/dev/null) && r1=ok || r1=FAILED
	show "first read of every file (checksums $r1): misses, filled into the cache"
	stats
	umount /mnt/bc && echo 3 >/proc/sys/vm/drop_caches && mount -t ext4 /dev/bcache_rs0 /mnt/bc
	(cd /mnt/bc && md5sum -c /tmp/sums >/dev/null) && r2=ok || r2=FAILED
	show "second read after dropping the page cache (checksums $r2): served from the SSD"
	stats
	show "  the disk's own I/O statistics (iostat): $(awk '{ print $1 " reads, " $3 " sectors read" }' /sys/block/bcache_rs0/stat)"
	umount /mnt/bc
	e2fsck -f -n /dev/bcache_rs0 >/dev/null 2>&1 && show "e2fsck -f -n /dev/bcache_rs0: clean" || show "e2fsck: ERRORS"
	say "bcache_rs: a warm restart (the index kept in the SSD's journal)"
	echo 1 >$S/stop
	bcache-rs unregister >/dev/null
	bcache-rs register "$RKM_SSD" >/dev/null && bcache-rs register --uuid "$uuid" --trust "$RKM_HDD" >/dev/null
	show "stopped, unregistered (a checkpoint written), registered again with --trust: $(cat $BC/cache/restored_extents) extents restored"
	mount -t ext4 /dev/bcache_rs0 /mnt/bc
	(cd /mnt/bc && md5sum -c /tmp/sums >/dev/null) && r3=ok || r3=FAILED
	show "first read after the restart (checksums $r3): served from the SSD"
	stats
	umount /mnt/bc
	bcache-rs status | sed 's/^/demo:     /'
	echo 1 >$S/stop
	echo 1 >$BC/cache/unregister
	e2fsck -f -n "$RKM_HDD" >/dev/null 2>&1 && show "stopped: the HDD itself holds the filesystem, e2fsck clean" || show "the HDD: e2fsck ERRORS"
	rmmod bcache_rs && show "bcache_rs unloads cleanly"
	[ "$r1" = ok ] && [ "$r2" = ok ] && [ "$r3" = ok ] || exit 1
fi

say "Done: the guest powers off, and the host checks the kernel log for reports"
