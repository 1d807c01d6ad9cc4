#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The persistent index (format version 2): a cache unregistered cleanly
# (or with the module unloaded) and registered again is warm, and serves
# the data it had; a device registered without trust=1 keeps nothing, and
# so a device written while it was not registered serves nothing stale;
# after a session that did not end with its checkpoint (a crash, made here
# by putting back the journal region as it was while the cache was
# registered) the index is restored but for the regions written in the
# session (the write-intent map); a damaged checkpoint is refused with a
# precise line and the index starts empty. Every read is verified
# (rkm-blkverify, and cmp with the HDD).

. "$(dirname "$0")/bcache_lib.sh"

bc_reset >/dev/null 2>&1
ktap_print_header
ktap_set_plan 11

D0=/sys/block/bcache_rs0/bcache_rs
BV=rkm-blkverify
# 8 MiB at 16 MiB on the HDD: fits the 16 MiB cache.
RANGE="--offset 16M --size 8M"

# up [TRUST]: the cache and bcache_rs0, sequential reads cached; with
# TRUST by bcache-rs register (twice: the second finds them registered),
# else by the sysfs files.
up() {
	bc_load || return 1
	if [ -n "$1" ]; then
		for i in 1 2; do
			bcache-rs register "$RKM_SSD" >/dev/null &&
				bcache-rs register --uuid $UUID0 --trust "$RKM_HDD" >/dev/null || return 1
		done
	else
		bc_write "$BC/register_cache" "$RKM_SSD" &&
			bc_write "$BC/register_dev" "$UUID0 $RKM_HDD" || return 1
	fi
	bc_write $D0/sequential_cutoff 0
}

# verify VERSION: the range holds VERSION (rkm-blkverify: its reads are of
# 1 MiB, which the cache serves from the HDD); then the range read in
# 32 KiB direct reads (those the cache serves) is the HDD's, byte for byte.
# Prints the hits of those reads.
verify() {
	$BV verify --dev /dev/bcache_rs0 $RANGE --seed 7 --version "$1" >/tmp/p.log 2>&1 ||
		{ cat /tmp/p.log >&2; return 1; }
	h0=$(bc_stat 0 hits)
	warm_up /tmp/cached.img || return 1
	h1=$(bc_stat 0 hits)
	dd if="$RKM_HDD" of=/tmp/hdd.img bs=32k iflag=direct skip=512 count=256 2>/dev/null &&
		cmp /tmp/cached.img /tmp/hdd.img >&2 || { echo "the cache served other bytes than the HDD's" >&2; return 1; }
	echo $((h1 - h0))
}

# warm_up [FILE]: read the range in 32 KiB direct reads (misses fill the
# cache, a bucket is 64 KiB) into FILE.
warm_up() {
	dd if=/dev/bcache_rs0 of="${1:-/dev/null}" bs=32k iflag=direct skip=512 count=256 2>/dev/null
}

# mark: a line in the kernel log; prints it (for since).
mark() {
	m="bc-persist $$ $RANDOM"
	echo "$m" >/dev/kmsg
	echo "$m"
}

# since MARK: the kernel log from MARK on.
since() {
	dmesg | sed -n "/$1/,\$p"
}

# journal_region: the journal's start sector and sectors (bcache-rs show).
journal_region() {
	bcache-rs show "$RKM_SSD" | awk '$1 == "journal" && $2 ~ /^[0-9]+$/ { print $2, $3 }'
}

fill_cached() {
	bc_format --size 16M --bucket-size 64k && up trust &&
		$BV fill --dev /dev/bcache_rs0 $RANGE --seed 7 --version 1 >/dev/null || return 1
	warm_up || return 1
	hits=$(verify 1) || return 1
	[ "$hits" -gt 0 ] || { echo "no hits after the fill"; return 1; }
	# Nothing to record before a checkpoint: the journal is untouched.
	bcache-rs show "$RKM_SSD" | grep -q 'journal state:  empty' ||
		{ bcache-rs show "$RKM_SSD"; echo "the journal is not empty"; return 1; }
}
rkm_check "a trusted device read through the cache: reads hit, nothing journaled yet" fill_cached

clean_unregister() {
	m=$(mark)
	bc_down || return 1
	since "$m" | grep -q 'checkpoint of [0-9]* records written' ||
		{ dmesg | tail -n 5; echo "no checkpoint line"; return 1; }
	bcache-rs show "$RKM_SSD" | grep -q 'journal state:  clean' ||
		{ bcache-rs show "$RKM_SSD"; echo "the journal does not say clean"; return 1; }
	bcache-rs show "$RKM_SSD" | grep -q 'priorities:     [1-9][0-9]* buckets with a priority' ||
		{ bcache-rs show "$RKM_SSD"; echo "no priorities kept with the checkpoint"; return 1; }
}
rkm_check "unregister writes a checkpoint and the priorities; bcache-rs show says clean" clean_unregister

warm() {
	m=$(mark)
	up trust || return 1
	since "$m" | grep -q 'restored [0-9]* extents .*; priorities of [1-9][0-9]* buckets)' ||
		{ dmesg | tail -n 5; echo "no priorities restored"; return 1; }
	restored=$(cat $BC/cache/restored_extents)
	bc_note "restored $restored extents"
	[ "$restored" -gt 0 ] || { echo "nothing restored"; return 1; }
	bcache-rs status --json | grep -q "\"restored_extents\": $restored," ||
		{ bcache-rs status --json; echo "bcache-rs status --json does not say so"; return 1; }
	bcache-rs status | grep -q "^bcache_rs0: $UUID0 on .*, trusted," ||
		{ bcache-rs status; echo "bcache-rs status does not show a trusted bcache_rs0"; return 1; }
	b0=$(bc_stat 0 bytes_from_backing)
	warm_up || return 1
	b1=$(bc_stat 0 bytes_from_backing)
	bc_note "first reads after registration: $((b1 - b0)) bytes from the HDD"
	[ "$b1" = "$b0" ] || { echo "$((b1 - b0)) bytes read from the HDD: not all cached"; return 1; }
	hits=$(verify 1) || return 1
	[ "$hits" -gt 0 ] || { echo "no hit after re-registration"; return 1; }
}
rkm_check "registered again: the extents are restored, the first reads hit, data verified" warm

unload() {
	m=$(mark)
	rmmod bcache_rs || return 1
	since "$m" | grep -q 'checkpoint of [0-9]* records written' ||
		{ echo "no checkpoint at module unload"; return 1; }
	up trust || return 1
	[ "$(cat $BC/cache/restored_extents)" -gt 0 ] || { echo "nothing restored"; return 1; }
	hits=$(verify 1) || return 1
	[ "$hits" -gt 0 ] || { echo "no hit after the module reload"; return 1; }
}
rkm_check "module unload writes the checkpoint too: warm after a reload" unload

early_write() {
	bc_down || return 1
	# A trusted device registered before the cache is written uncached.
	bc_load && bcache-rs register --uuid $UUID0 --trust "$RKM_HDD" >/dev/null &&
		$BV fill --dev /dev/bcache_rs0 $RANGE --seed 7 --version 5 >/dev/null || return 1
	bcache-rs register "$RKM_SSD" >/dev/null && bc_write $D0/sequential_cutoff 0 || return 1
	[ "$(cat $BC/cache/restored_extents)" = 0 ] ||
		{ echo "$(cat $BC/cache/restored_extents) extents restored of a device written before the cache"; return 1; }
	# Durably: a crash from now on restores none of them either.
	bcache-rs show "$RKM_SSD" | grep -q 'journal state:  open.* what 1 write-intent records' ||
		{ bcache-rs show "$RKM_SSD"; echo "the journal does not mark the device written"; return 1; }
	hits=$(verify 5) || return 1
	[ "$hits" = 0 ] || { echo "$hits hits of a device written before the cache"; return 1; }
}
rkm_check "a device written before the cache was registered keeps nothing, durably" early_write

untrusted() {
	bc_down || return 1
	# Written while it was not registered.
	$BV fill --dev "$RKM_HDD" $RANGE --seed 7 --version 2 >/dev/null || return 1
	up || return 1
	[ "$(cat $D0/trusted)" = 0 ] || { echo "trusted is not 0"; return 1; }
	hits=$(verify 2) || return 1
	[ "$hits" = 0 ] || { echo "$hits hits on an untrusted device's first reads"; return 1; }
}
rkm_check "without trust=1 nothing is kept: a device written meanwhile reads its new data" untrusted

untrusted_dropped() {
	# The untrusted session's extents were not checkpointed either.
	warm_up || return 1
	bc_down && up trust || return 1
	[ "$(cat $BC/cache/restored_extents)" = 0 ] ||
		{ echo "$(cat $BC/cache/restored_extents) extents of an untrusted device restored"; return 1; }
	hits=$(verify 2) || return 1
	[ "$hits" = 0 ] || { echo "$hits hits"; return 1; }
}
rkm_check "an untrusted device's extents are not in the checkpoint" untrusted_dropped

# cached_reads OFF_MB SIZE_MB: reads the range in 32 KiB direct reads
# through the cache and compares them with the HDD's bytes; prints the hits.
cached_reads() {
	h0=$(bc_stat 0 hits)
	dd if=/dev/bcache_rs0 of=/tmp/c.img bs=32k iflag=direct skip=$(($1 * 32)) count=$(($2 * 32)) 2>/dev/null &&
		dd if="$RKM_HDD" of=/tmp/h.img bs=32k iflag=direct skip=$(($1 * 32)) count=$(($2 * 32)) 2>/dev/null ||
		return 1
	cmp /tmp/c.img /tmp/h.img >&2 || { echo "the cache served other bytes than the HDD's at ${1}M" >&2; return 1; }
	echo $(($(bc_stat 0 hits) - h0))
}

crash() {
	# Two regions of the write-intent map (8 MiB each) cached and
	# checkpointed: 4 MiB at 12 MiB (region 1) and at 16 MiB (region 2).
	$BV fill --dev /dev/bcache_rs0 --offset 12M --size 8M --seed 7 --version 3 >/dev/null &&
		cached_reads 12 8 >/dev/null && bc_down && up trust || return 1
	before=$(cat $BC/cache/restored_extents)
	[ "$before" -gt 0 ] || { echo "nothing restored"; return 1; }
	# A session that writes region 2 only, read through the cache; then
	# the journal region as a crash leaves it (copied while registered).
	$BV fill --dev /dev/bcache_rs0 --offset 16M --size 4M --seed 7 --version 4 >/dev/null &&
		cached_reads 12 8 >/dev/null || return 1
	set -- $(journal_region)
	[ -n "$2" ] || { echo "no journal region in bcache-rs show"; return 1; }
	dd if="$RKM_SSD" of=/tmp/journal.img bs=512 skip="$1" count="$2" 2>/dev/null || return 1
	bcache-rs show "$RKM_SSD" | grep -q 'journal state:  open.* what 1 write-intent records' ||
		{ bcache-rs show "$RKM_SSD"; echo "the journal does not say one region was written"; return 1; }
	bc_down || return 1
	dd if=/tmp/journal.img of="$RKM_SSD" bs=512 seek="$1" count="$2" conv=notrunc,fsync 2>/dev/null ||
		return 1
	m=$(mark)
	up trust || return 1
	since "$m" | grep -q 'restored [0-9]* extents .* 1 write-intent and' ||
		{ dmesg | tail -n 5; echo "no line about the region written"; return 1; }
	after=$(cat $BC/cache/restored_extents)
	bc_note "restored $before extents after a clean close, $after after the crash"
	[ "$after" -gt 0 ] && [ "$after" -lt "$before" ] ||
		{ echo "$after extents restored after the crash, $before before"; return 1; }
	# Region 1 hits its version 3; region 2 reads the version 4 written
	# in the crashed session, from the HDD (its extents were dropped).
	$BV verify --dev /dev/bcache_rs0 --offset 12M --size 4M --seed 7 --version 3 >/tmp/p.log 2>&1 &&
		$BV verify --dev /dev/bcache_rs0 --offset 16M --size 4M --seed 7 --version 4 >/tmp/p.log 2>&1 ||
		{ cat /tmp/p.log; return 1; }
	hits=$(cached_reads 16 4) || return 1
	[ "$hits" = 0 ] || { echo "$hits hits in the region written before the crash"; return 1; }
	hits=$(cached_reads 12 4) || return 1
	[ "$hits" -gt 0 ] || { echo "no hit in the region not written"; return 1; }
	# The range the next cases read back at version 2.
	$BV fill --dev /dev/bcache_rs0 $RANGE --seed 7 --version 2 >/dev/null
}
rkm_check "after a crash the index is restored but for the regions written since the checkpoint" crash

damaged() {
	warm_up && bc_down || return 1
	set -- $(journal_region)
	start=$1
	block=$(bcache-rs show "$RKM_SSD" | sed -n 's/^checkpoint: .* from region block \([0-9]*\) .*/\1/p')
	[ -n "$block" ] || { bcache-rs show "$RKM_SSD"; echo "no checkpoint in bcache-rs show"; return 1; }
	# One byte of the checkpoint's first record.
	printf '\377' | dd of="$RKM_SSD" bs=1 seek=$(((start + block * 8) * 512 + 60)) conv=notrunc,fsync 2>/dev/null ||
		return 1
	bcache-rs show "$RKM_SSD" | grep -q 'journal state:  clean' || return 1
	m=$(mark)
	up trust || return 1
	since "$m" | grep -q 'checkpoint damaged.*the index starts empty' ||
		{ dmesg | tail -n 5; echo "no line about the damaged checkpoint"; return 1; }
	hits=$(verify 2) || return 1
	[ "$hits" = 0 ] || { echo "$hits hits from a damaged checkpoint"; return 1; }
}
rkm_check "a damaged checkpoint is refused with a precise line; the index starts empty" damaged

recovered() {
	# The cache goes on: warm again after a clean unregister.
	warm_up && bc_down && up trust || return 1
	[ "$(cat $BC/cache/restored_extents)" -gt 0 ] || { echo "nothing restored"; return 1; }
	hits=$(verify 2) || return 1
	[ "$hits" -gt 0 ] || { echo "no hit"; return 1; }
	bc_reset
}
rkm_check "after the damage, a clean unregister makes it warm again" recovered

wiped() {
	bcache-rs wipe "$RKM_SSD" >/dev/null || return 1
	bc_load && bc_expect_err "$BC/register_cache" "$RKM_SSD" "Invalid argument" || return 1
	bcache-rs wipe "$RKM_SSD" >/dev/null 2>&1 && { echo "a second wipe succeeded"; return 1; }
	rmmod bcache_rs
}
rkm_check "bcache-rs wipe: the cache is no longer one (register_cache EINVAL)" wiped
ktap_finished
