// SPDX-License-Identifier: GPL-2.0

//! Fuzz-style differential test: random byte strings decoded into operation
//! sequences and run against `BTreeMap` by `common::run_input`, the same
//! function the libFuzzer target (`fuzz/fuzz_targets/ops.rs`) calls.
//! `FUZZ_LIKE_ITERS` sets the number of inputs.

mod common;

use common::run_input;
use rand::{rngs::SmallRng, Rng, SeedableRng};

#[test]
fn random_inputs() {
    let iters = std::env::var("FUZZ_LIKE_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let mut rng = SmallRng::seed_from_u64(0x5eed);
    for _ in 0..iters {
        let len = rng.gen_range(0..8192);
        let data: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        run_input(&data);
    }
}
