#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Harness self-test: the fault-injection helpers of tests/lib/rkm.sh work on
# the test kernel. fault_alloc allocates when a parameter is written; armed
# for it, failslab and fail_page_alloc fail exactly the allocations of a
# task marked with rkm_make_it_fail (or the N-th one with rkm_fail_nth, and
# only that one), sleeping (GFP_KERNEL) allocations included, and nothing
# once off. This one passes.
. "$(dirname "$0")/../lib/rkm.sh"
P=/sys/module/fault_alloc/parameters
GO=/tmp/faults-go

ktap_print_header
ktap_set_plan 14

# enomem CMD...: CMD fails, with ENOMEM.
enomem() {
	if out=$("$@" 2>&1); then
		echo "succeeded: $out"
		return 1
	fi
	case "$out" in *"Cannot allocate memory"*) return 0 ;; esac
	echo "failed, but not with ENOMEM: $out"
	return 1
}
# marked PARAM VALUE: write VALUE to PARAM in a task marked with
# rkm_make_it_fail before it writes.
marked() {
	rm -f "$GO" && mkfifo "$GO" || return 1
	sh -c 'read x <"$1"; echo "$3" >"$2"' sh "$GO" "$P/$1" "$2" &
	pid=$!
	rkm_make_it_fail "$pid"
	echo go >"$GO"
	wait "$pid"
}
write() {
	sh -c 'echo "$2" >"$1"' sh "$P/$1" "$2"
}

rkm_check "fault_alloc loads" modprobe fault_alloc
rkm_check "kmalloc, nothing armed" write kmalloc 64
rkm_check "rkm_fault_setup failslab fault_alloc" rkm_fault_setup failslab fault_alloc
rkm_check "failslab: a task not marked still allocates" write kmalloc 64
rkm_check "failslab: a marked task's GFP_KERNEL kmalloc fails with ENOMEM" enomem marked kmalloc 64
# fail-nth counts per task: the program must do the write itself (a forked
# task starts with fail-nth 0). Ten times each, since what else the task
# allocates must not count.
nth() {
	n=$1 want=$2
	shift 2
	i=0
	while [ "$i" -lt 10 ]; do
		if [ "$want" = fail ]; then enomem rkm_fail_nth "$n" "$@" || return 1
		else rkm_fail_nth "$n" "$@" || return 1; fi
		i=$((i + 1))
	done
}
rkm_check "failslab: fail-nth 1 fails the module's first kmalloc (10 of 10)" \
	nth 1 fail sh -c "echo 64 >$P/kmalloc"
rkm_check "failslab: fail-nth 2 lets its only kmalloc through (10 of 10)" \
	nth 2 pass sh -c "echo 64 >$P/kmalloc"
rkm_check "failslab: fail-nth 2 fails the second of two kmallocs (10 of 10)" \
	nth 2 pass sh -c "echo 64 >$P/kmalloc && ! echo 64 >$P/kmalloc"
fnth() {
	echo 64 >"$P/kmalloc"
}
rkm_check "failslab: fail-nth 1 applies to a shell function's own writes (10 of 10)" \
	nth 1 fail fnth
rkm_fault_off failslab
rkm_check "failslab off: a marked task allocates" marked kmalloc 64
rkm_check "rkm_fault_setup fail_page_alloc fault_alloc" rkm_fault_setup fail_page_alloc fault_alloc
rkm_check "fail_page_alloc: a marked task's order-0 alloc_pages fails with ENOMEM" enomem marked pages 0
rkm_fault_off fail_page_alloc
rkm_check "fail_page_alloc off: a marked task allocates" marked pages 0
rkm_check "fault_alloc unloads" rmmod fault_alloc
ktap_finished
