// SPDX-License-Identifier: GPL-2.0

//! libFuzzer target: decodes the input into tree operations and runs them
//! against `BTreeMap` with the shared differential runner (the same decoder
//! as `tests/fuzz_like.rs`). Run with
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run ops` from `rust/btree`.

#![no_main]

#[path = "../../tests/common/mod.rs"]
mod common;

use arbitrary::{Arbitrary, Unstructured};
use common::{run_ops, Op};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(space) = u8::arbitrary(&mut u) else {
        return;
    };
    let mut ops = Vec::new();
    while let Ok(op) = Op::arbitrary(&mut u) {
        if u.is_empty() {
            break;
        }
        ops.push(op);
    }
    let space = 16 + u64::from(space) * 16;
    run_ops::<u64, 128>(&ops, space, data.len() as u64);
    run_ops::<u128, 256>(&ops, space, data.len() as u64);
});
