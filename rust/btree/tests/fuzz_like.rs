// SPDX-License-Identifier: GPL-2.0

//! Fuzz-style differential test: random byte strings decoded by `arbitrary`
//! into operation sequences (the same decoder as `fuzz/fuzz_targets/ops.rs`)
//! and run against `BTreeMap`. `FUZZ_LIKE_ITERS` sets the number of inputs.

mod common;

use arbitrary::{Arbitrary, Unstructured};
use common::{run_ops, Op};
use rand::{rngs::SmallRng, Rng, SeedableRng};

/// Decodes one fuzz input: a key-space byte, then operations.
pub fn run_input(data: &[u8]) {
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
}

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
