#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Harness self-test: more than the kernel's log buffer (log_buf_len) goes
# into the log (debug-level lines, which the console does not print), so
# the dmesg at the end no longer starts at the boot. The run must fail: a
# report could have been lost with the start of the log.
. "$(dirname "$0")/../lib/rkm.sh"
ktap_print_header
ktap_set_plan 1
# The buffer's size, as the kernel said at boot ("printk: log_buf_len: N
# bytes"; without the line it is the configured 128 KiB).
size=$(dmesg | sed -n 's/.*printk: log_buf_len: \([0-9]*\) bytes.*/\1/p' | head -n 1)
lines=$(( ${size:-131072} / 900 + 2000 ))
fill() {
	line=$(head -c 900 /dev/zero | tr '\000' x)
	exec 3>/dev/kmsg
	i=0
	while [ "$i" -lt "$lines" ]; do
		echo "<7>rkm-wrap: $i $line" >&3 || return 1
		i=$((i + 1))
	done
	exec 3>&-
}
rkm_check "$lines lines of 900 bytes (debug level) into a log buffer of ${size:-131072} bytes" fill
ktap_finished
