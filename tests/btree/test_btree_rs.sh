#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Loads test_btree_rs.ko, which tests the Rust B+tree against the kernel's
# rbtree inside the kernel and prints KTAP in the kernel log, and re-prints
# that KTAP (see rust/test_btree_rs/test_btree_rs.rs for the cases).

. "$(dirname "$0")/../lib/rkm.sh"
rkm_module_ktap test_btree_rs
