// SPDX-License-Identifier: GPL-2.0

//! libFuzzer target: decodes the input into tree operations and runs them
//! against `BTreeMap` with the shared decoder and differential runner
//! (`tests/common`, as `tests/fuzz_like.rs`). Run with
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run ops` from `rust/btree`.

#![no_main]

#[path = "../../tests/common/mod.rs"]
mod common;

use common::run_input;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| run_input(data));
