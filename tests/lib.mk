# SPDX-License-Identifier: GPL-2.0
#
# What a suite's Makefile includes, in the manner of the kernel's
# tools/testing/selftests/lib.mk. A suite sets
#   TEST_PROGS   the executable scripts that print KTAP (run in this order)
#   TEST_FILES   other files the scripts need (optional)
#   GUEST_TOOLS  host programs the guest needs, copied with their libraries
#                (optional; busybox and coreutils' timeout are always there)
# and has a `settings` file (timeout=SECONDS, per test program).
#
# scripts/vm-run.py calls: install INSTALL_PATH=DIR, print-tests and
# print-guest-tools.

.PHONY: all install print-tests print-guest-tools

all:

install:
	@mkdir -p $(INSTALL_PATH)
	@cp -p $(TEST_PROGS) $(TEST_FILES) $(wildcard settings) $(INSTALL_PATH)/

print-tests:
	@echo $(TEST_PROGS)

print-guest-tools:
	@echo $(GUEST_TOOLS)
