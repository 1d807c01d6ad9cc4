// SPDX-License-Identifier: GPL-2.0

//! Property tests: long random operation sequences against
//! `std::collections::BTreeMap`, with allocation failures injected at random
//! points, for `u64`, `u128` and `(dev, sector)` keys and several node sizes.
//! `check_invariants` runs after every step (see `common::run_ops`).

mod common;

use common::{run_ops, DevSector, Op};
use proptest::prelude::*;

fn op() -> impl Strategy<Value = Op> {
    let k = any::<u16>();
    let v = any::<u32>();
    prop_oneof![
        16 => (k, v).prop_map(|(k, v)| Op::Insert(k, v)),
        3 => (k, v).prop_map(|(k, v)| Op::InsertReserved(k, v)),
        3 => (k, 1u8..120).prop_map(|(k, n)| Op::InsertRun(k, n)),
        8 => k.prop_map(Op::Remove),
        2 => (k, 1u8..80).prop_map(|(k, n)| Op::RemoveRun(k, n)),
        3 => k.prop_map(Op::Get),
        2 => (k, v).prop_map(|(k, v)| Op::Update(k, v)),
        1 => (k, v).prop_map(|(k, v)| Op::GetMut(k, v)),
        2 => k.prop_map(Op::Le),
        2 => k.prop_map(Op::Lt),
        2 => k.prop_map(Op::Ge),
        2 => k.prop_map(Op::Gt),
        2 => (k, any::<u8>()).prop_map(|(k, n)| Op::IterFrom(k, n)),
        2 => (k, any::<u8>()).prop_map(|(k, n)| Op::IterBackFrom(k, n)),
        1 => prop_oneof![9 => Just(Op::FirstLast), 1 => Just(Op::Drain)],
        1 => prop::collection::vec((k, v), 0..120).prop_map(Op::Merge),
        1 => prop_oneof![Just(0u8), Just(0u8), any::<u8>()].prop_map(Op::SetFailRate),
        1 => any::<u8>().prop_map(Op::FailNth),
    ]
}

fn ops(max: usize) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 1..max)
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(48);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn u64_small_nodes(ops in ops(1500), space in 64u64..3000, seed in any::<u64>()) {
        run_ops::<u64, 128>(&ops, space, seed);
    }

    #[test]
    fn u64_default_nodes(ops in ops(1500), space in 64u64..6000, seed in any::<u64>()) {
        run_ops::<u64, { rkm_btree::DEFAULT_NODE_BYTES }>(&ops, space, seed);
    }

    #[test]
    fn u128_256_nodes(ops in ops(1500), space in 64u64..3000, seed in any::<u64>()) {
        run_ops::<u128, 256>(&ops, space, seed);
    }

    #[test]
    fn u128_default_nodes(ops in ops(1500), space in 64u64..6000, seed in any::<u64>()) {
        run_ops::<u128, { rkm_btree::DEFAULT_NODE_BYTES }>(&ops, space, seed);
    }

    #[test]
    fn dev_sector_256_nodes(ops in ops(1500), space in 64u64..3000, seed in any::<u64>()) {
        run_ops::<DevSector, 256>(&ops, space, seed);
    }
}
