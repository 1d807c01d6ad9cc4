# SPDX-License-Identifier: GPL-2.0
#
# What the bcache suite's scripts share: the sysfs paths, writing a line to a
# sysfs file and checking the errno it fails with, and setting the cache up.

. "$(dirname "$0")/../lib/rkm.sh"

BC=/sys/kernel/bcache_rs

# bc_note MESSAGE: a KTAP diagnostic printed even when the check passes
# (rkm_check shows its command's output only on failure).
exec 3>&1
bc_note() {
	echo "# $*" >&3
}
UUID0=11111111-2222-4333-8444-555555555555
UUID1=66666666-7777-4888-9999-aaaaaaaaaaaa

# bc_write FILE LINE: write LINE to FILE in one write(2); prints the error
# message (dd's, with the strerror) and fails if the write fails.
bc_write() {
	out=$(printf '%s\n' "$2" | dd of="$1" bs=4096 2>&1) || { echo "$out"; return 1; }
}

# bc_expect_err FILE LINE TEXT: the write must fail with strerror TEXT (and
# the kernel log must get a bcache_rs line for it).
bc_expect_err() {
	mark="bc-expect $$ $RANDOM"
	echo "$mark" >/dev/kmsg
	if out=$(bc_write "$1" "$2"); then
		echo "writing '$2' to $1 succeeded"
		return 1
	fi
	case "$out" in
	*"$3"*) ;;
	*) echo "writing '$2' to $1: got '$out', want '$3'"; return 1 ;;
	esac
	dmesg | sed -n "/$mark/,\$p" | grep -q 'bcache_rs: ' ||
		{ echo "no bcache_rs line in the kernel log for '$2'"; return 1; }
}

bc_format() {
	bcache-rs format-cache "$RKM_SSD" --force "$@" >/dev/null
}

bc_load() {
	grep -q '^bcache_rs ' /proc/modules || modprobe bcache_rs
}

# bc_stat N FILE: a statistics file of bcache_rs<N>.
bc_stat() {
	cat "/sys/block/bcache_rs$1/bcache_rs/$2"
}

# bc_slaves N: the devices under bcache_rs<N> (sysfs slaves, as lsblk shows
# them), sorted, on one line.
bc_slaves() {
	ls /sys/block/bcache_rs"$1"/slaves | sort | tr '\n' ' '
}

# bc_holders DEV: the disks holding block device DEV, on one line.
bc_holders() {
	ls /sys/class/block/"$(basename "$1")"/holders | sort | tr '\n' ' '
}

# bc_wait WHAT CMD...: wait up to 30 s (a debug kernel under TCG is slow)
# for CMD to succeed (rkm_wait_for).
bc_wait() {
	_bc_what=$1
	shift
	rkm_wait_for 30 "$_bc_what" "$@"
}

# bc_stop N: stop bcache_rs<N> and wait until its disk is gone. The stop is
# asynchronous: the disk goes first, then the device's extents are dropped
# and it is detached from the cache (see bc_attached).
bc_stop() {
	bc_write "/sys/block/bcache_rs$1/bcache_rs/stop" 1 || return 1
	bc_wait "bcache_rs$1 is still there" test ! -e "/sys/block/bcache_rs$1"
}

# bc_attached N: wait until the cache counts N attached devices.
bc_attached() {
	bc_wait "attached: $(cat $BC/cache/attached), want $1" \
		grep -qx "$1" "$BC/cache/attached"
}

bc_unregister() {
	bc_write "$BC/cache/unregister" 1 || return 1
	bc_wait "the cache is still registered" test ! -e "$BC/cache"
}

# bc_down: bcache_rs0 stopped and the cache unregistered (its checkpoint
# written) by bcache-rs unregister, both gone when it returns.
bc_down() {
	bcache-rs unregister "$RKM_HDD" >/dev/null &&
		bc_wait "bcache_rs0 is still there" test ! -e /sys/block/bcache_rs0 &&
		bcache-rs unregister >/dev/null && bc_wait "the cache is still registered" test ! -e "$BC/cache"
}

# bc_up: format the SSD, register it and the HDD as bcache_rs0.
bc_up() {
	bc_load && bc_format && bc_write "$BC/register_cache" "$RKM_SSD" &&
		bc_write "$BC/register_dev" "$UUID0 $RKM_HDD" && test -b /dev/bcache_rs0
}

# bc_reset: whatever an earlier script left registered is stopped, the cache
# unregistered and the module unloaded, so that each script starts clean.
bc_reset() {
	grep -q '^bcache_rs ' /proc/modules || return 0
	for d in /sys/block/bcache_rs*; do
		[ -e "$d" ] && bc_stop "${d#/sys/block/bcache_rs}"
	done
	[ -e "$BC/cache" ] && bc_unregister
	rmmod bcache_rs
}

# bc_udev_up: systemd-udevd (udevadm under that name) running our udev rule
# (udev/69-bcache-rs.rules.in, a TEST_FILE) alone, with bcache-rs's path
# put in; bc_udev_down stops it.
bc_udev_up() {
	_bcrs=$(command -v bcache-rs)
	mkdir -p /run/udev/rules.d /run/rkm-udev
	sed "s|@SBINDIR@|${_bcrs%/*}|g" "$(dirname "$0")/69-bcache-rs.rules.in" \
		>/run/udev/rules.d/69-bcache-rs.rules || return 1
	ln -sf "$(command -v udevadm)" /run/rkm-udev/systemd-udevd
	/run/rkm-udev/systemd-udevd --daemon --resolve-names=never >/dev/null 2>&1 || return 1
	bc_wait "udevd is not up" udevadm control --ping
}

bc_udev_down() {
	udevadm control --exit 2>/dev/null
}

bc_udev_settle() {
	udevadm settle --timeout=60 || { echo "udevadm settle timed out"; return 1; }
}

# bc_mark: a mark in the kernel log, from which bc_registered_once counts.
bc_mark() {
	bc_log_mark="bc-mark $$ $RANDOM"
	echo "$bc_log_mark" >/dev/kmsg
}

# bc_registered_once WHAT UUID HDD SSD [N]: the cache on SSD and bcache_rs0
# (backing device UUID on HDD) are registered and attached, and since
# bc_mark (in the same case: rkm_check runs each in a subshell) the kernel
# log has N registration lines of each (1 by default) and no error line of
# bcache_rs.
bc_registered_once() {
	[ -b /dev/bcache_rs0 ] && [ "$(cat /sys/block/bcache_rs0/bcache_rs/backing_dev 2>/dev/null)" = "${3##*/}" ] ||
		{ echo "$1: ${3##*/} is not registered as bcache_rs0"; return 1; }
	[ "$(cat $BC/cache/device 2>/dev/null)" = "${4##*/}" ] || { echo "$1: the cache is not registered"; return 1; }
	bc_attached 1 || return 1
	_log=$(dmesg | sed -n "/$bc_log_mark/,\$p")
	_n_dev=$(echo "$_log" | grep -c "bcache_rs0: $2")
	_n_cache=$(echo "$_log" | grep -c "bcache_rs: cache .* on ${4##*/}:")
	[ "$_n_dev" = "${5:-1}" ] && [ "$_n_cache" = "${5:-1}" ] || {
		echo "$1: registered $_n_dev and $_n_cache times, want ${5:-1} each"
		echo "$_log" | grep bcache_rs
		return 1
	}
	if echo "$_log" | grep -E 'bcache_rs: (register_|bcache_rs0: .*(error|refused))'; then
		echo "$1: the kernel log has errors of bcache_rs"
		return 1
	fi
}
