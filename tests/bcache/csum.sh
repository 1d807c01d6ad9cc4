#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Data checksums (feature data_csum): every hit is checked against the
# crc32c of its blocks. Cached data overwritten on the SSD behind the
# cache's back (while it is registered, and while it is not) is never
# served: each hit of it is read again from the HDD, counted in
# csum_errors (the cache's and the device's), said in one line of the
# kernel log, and its extent dropped (the next read fills it again, and
# hits). Both ways a hit is verified are covered: in its completion
# (64 KiB buckets: hits of at most 64 KiB) and in process context (1 MiB
# buckets, 256 KiB reads). Every read is verified (rkm-blkverify, and the
# bytes compared with the HDD's).

. "$(dirname "$0")/bcache_lib.sh"

bc_reset >/dev/null 2>&1
ktap_print_header
ktap_set_plan 6

D0=/sys/block/bcache_rs0/bcache_rs
BV=rkm-blkverify
# 8 MiB at 16 MiB on the HDD: fits the 48 MiB cache.
RANGE="--offset 16M --size 8M"
CACHE_BYTES=$((48 << 20))

up() {
	bc_load &&
		bcache-rs register "$RKM_SSD" >/dev/null &&
		bcache-rs register --uuid $UUID0 --trust "$RKM_HDD" >/dev/null &&
		bc_write $D0/sequential_cutoff 0
}

# read_range BS [FILE]: the range read through the cache in direct reads
# of BS bytes.
read_range() {
	dd if=/dev/bcache_rs0 of="${2:-/dev/null}" bs="$1" iflag=direct \
		skip=$(((16 << 20) / $1)) count=$(((8 << 20) / $1)) 2>/dev/null
}

# check_range BS: the range holds version 1 (rkm-blkverify), and read in
# BS direct reads it is the HDD's, byte for byte. Prints the hits of those
# reads.
check_range() {
	$BV verify --dev /dev/bcache_rs0 $RANGE --seed 11 --version 1 --io-size "$1" >/tmp/c.log 2>&1 ||
		{ cat /tmp/c.log >&2; return 1; }
	h0=$(bc_stat 0 hits)
	read_range "$1" /tmp/cached.img || return 1
	h1=$(bc_stat 0 hits)
	dd if="$RKM_HDD" of=/tmp/hdd.img bs=1M iflag=direct skip=16 count=8 2>/dev/null &&
		cmp /tmp/cached.img /tmp/hdd.img >&2 ||
		{ echo "the cache served other bytes than the HDD's" >&2; return 1; }
	echo $((h1 - h0))
}

# data_start: the first sector of the data buckets (right after the
# journal region, bcache-rs show).
data_start() {
	bcache-rs show "$RKM_SSD" | awk '$1 == "journal" && $2 ~ /^[0-9]+$/ { print $2 + $3 }'
}

# scribble: overwrite the cache's data buckets on the SSD (not its
# metadata) with other bytes, behind the cache's back.
scribble() {
	s=$(data_start)
	[ -n "$s" ] || { bcache-rs show "$RKM_SSD"; echo "no journal region in bcache-rs show"; return 1; }
	# The data buckets start on a bucket boundary (64 KiB or more).
	[ $((s % 128)) = 0 ] || { echo "data start $s is not on a 64 KiB boundary"; return 1; }
	tr '\000' '\245' </dev/zero | head -c $((CACHE_BYTES - s * 512)) >/tmp/junk.img &&
		dd if=/tmp/junk.img of="$RKM_SSD" bs=64k seek=$((s / 128)) oflag=direct 2>/dev/null
	rm -f /tmp/junk.img
}

mark() {
	m="bc-csum $$ $RANDOM"
	echo "$m" >/dev/kmsg
	echo "$m"
}

csum_lines() {
	dmesg | sed -n "/$1/,\$p" | grep -c 'does not match its checksum'
}

# cached BUCKET BS: a fresh cache of BUCKET buckets; the range written
# through it (writethrough copies), then read in BS reads: hits, verified,
# no checksum error.
cached() {
	bc_reset >/dev/null 2>&1
	bc_format --size $CACHE_BYTES --bucket-size "$1" && up || return 1
	bcache-rs show "$RKM_SSD" | grep -q '^checksums: *crc32c' &&
		bcache-rs show "$RKM_SSD" | grep -q 'incompat 0x3 (persistent_index, data_csum)' ||
		{ bcache-rs show "$RKM_SSD"; echo "bcache-rs show does not say the cache has data checksums"; return 1; }
	$BV fill --dev /dev/bcache_rs0 $RANGE --seed 11 --version 1 >/dev/null || return 1
	read_range "$2" || return 1
	hits=$(check_range "$2") || return 1
	bc_note "$hits hits of $2"
	[ "$hits" -gt 0 ] || { echo "no hits"; return 1; }
	[ "$(cat $BC/cache/csum_errors)" = 0 ] && [ "$(bc_stat 0 csum_errors)" = 0 ] ||
		{ echo "checksum errors on good data"; return 1; }
	[ "$(cat $BC/cache/sums_memory)" -gt 0 ] || { echo "no sums_memory"; return 1; }
}

# scribbled BS: the cached data is overwritten on the SSD while the cache
# is registered: the reads are the HDD's, each bad hit counted, one line
# said; the range read again hits good data.
scribbled() {
	m=$(mark)
	scribble || return 1
	check_range "$1" >/dev/null || return 1
	errs=$(cat $BC/cache/csum_errors)
	bc_note "csum_errors $errs, the device's $(bc_stat 0 csum_errors), ssd_read_retries $(bc_stat 0 ssd_read_retries)"
	[ "$errs" -gt 0 ] || { echo "no checksum error counted"; return 1; }
	[ "$(bc_stat 0 csum_errors)" = "$errs" ] || { echo "the device counts other errors than the cache"; return 1; }
	[ "$(csum_lines "$m")" = 1 ] ||
		{ dmesg | sed -n "/$m/,\$p" | grep bcache_rs; echo "want exactly one checksum line"; return 1; }
	# Dropped and read again from the HDD, which filled them again: hits
	# of good data, no new error.
	hits=$(check_range "$1") || return 1
	[ "$hits" -gt 0 ] || { echo "no hits after the refill"; return 1; }
	[ "$(cat $BC/cache/csum_errors)" = "$errs" ] || { echo "new checksum errors after the refill"; return 1; }
}

rkm_check "64 KiB buckets: written through, read in 32 KiB reads: hits, verified, no checksum error" \
	cached 64k 32768
rkm_check "cached data overwritten on the SSD while registered: served from the HDD, counted, said once" \
	scribbled 32768

restored_scribbled() {
	bc_down && bc_load || return 1
	scribble || return 1
	m=$(mark)
	up || return 1
	restored=$(cat $BC/cache/restored_extents)
	bc_note "restored $restored extents"
	[ "$restored" -gt 0 ] || { echo "nothing restored"; return 1; }
	check_range 32768 >/dev/null || return 1
	[ "$(cat $BC/cache/csum_errors)" -gt 0 ] || { echo "no checksum error counted"; return 1; }
	[ "$(csum_lines "$m")" = 1 ] || { echo "want exactly one checksum line"; return 1; }
}
rkm_check "overwritten while unregistered: the restored extents' data is caught by its checksums" \
	restored_scribbled

restored_good() {
	# Refilled by the last check: a clean close and a registration
	# restore it with its checksums, and it hits without an error.
	read_range 32768 && bc_down && up || return 1
	[ "$(cat $BC/cache/restored_extents)" -gt 0 ] || { echo "nothing restored"; return 1; }
	hits=$(check_range 32768) || return 1
	[ "$hits" -gt 0 ] || { echo "no hits"; return 1; }
	[ "$(cat $BC/cache/csum_errors)" = 0 ] || { echo "checksum errors on restored good data"; return 1; }
	bc_reset
}
rkm_check "restored good data hits with its restored checksums" restored_good

rkm_check "1 MiB buckets: read in 256 KiB reads (verified in process context): hits, no error" \
	cached 1M 262144
rkm_check "1 MiB buckets: overwritten on the SSD: served from the HDD, counted, said once" \
	scribbled 262144

ktap_finished
