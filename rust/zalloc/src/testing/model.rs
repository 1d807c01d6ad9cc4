// SPDX-License-Identifier: GPL-2.0

//! Pieces of the allocators' model tests: the operations and their
//! strategies, the proptest configuration, the churn run, the checks of
//! allocation results and of bad handles, and the final teardown. Each
//! allocator's `tests/model.rs` keeps the model of its placement and
//! counters.

use core::ops::Range;
use std::vec::Vec;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

use super::{Counts, Gfp, TestPages, TestPool, GFP};
use crate::{AllocError, Rejections};

/// An operation on the pool under test.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    /// An allocation.
    Alloc(usize),
    /// An allocation while the page source fails.
    AllocFailing(usize),
    /// An allocation while the page source fails after `n` pages.
    AllocFailAfter(usize, u64),
    /// Free of a live object (by index, modulo their number).
    Free(usize),
    /// Map of a live object.
    Map(usize),
    /// Unmap of a live object.
    Unmap(usize),
    /// Free, map or unmap (0, 1, 2) of a freed object's handle.
    UseFreed(usize, u8),
    /// Free, map and unmap of a handle of another pool.
    Foreign(usize),
    /// Free of any value.
    Random(u64),
    /// Free of any value with the tag of the pool's handles.
    RandomSameTag(u64),
}

/// Object sizes: mostly in `common`, some up to `max` and some of `edges`.
pub fn sizes(
    common: Range<usize>,
    max: usize,
    edges: Vec<usize>,
) -> impl Strategy<Value = usize> + Clone {
    prop_oneof![
        8 => common,
        2 => 1..=max,
        1 => prop::sample::select(edges),
    ]
}

/// Operations, allocations of objects of `size`.
pub fn ops(size: impl Strategy<Value = usize> + Clone) -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => size.clone().prop_map(Op::Alloc),
        2 => size.clone().prop_map(Op::AllocFailing),
        1 => (size, 0..4u64).prop_map(|(size, n)| Op::AllocFailAfter(size, n)),
        8 => any::<usize>().prop_map(Op::Free),
        4 => any::<usize>().prop_map(Op::Map),
        4 => any::<usize>().prop_map(Op::Unmap),
        1 => (any::<usize>(), 0..3u8).prop_map(|(i, how)| Op::UseFreed(i, how)),
        1 => any::<usize>().prop_map(Op::Foreign),
        1 => any::<u64>().prop_map(Op::Random),
        1 => any::<u64>().prop_map(Op::RandomSameTag),
    ]
}

/// The property tests' configuration: `PROPTEST_CASES` cases (96 by
/// default).
pub fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(96),
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    }
}

/// Builds up a large pool with 1500 allocations of `size`, then churns it
/// with 3000 operations: the shape zswap gives it. `rounds` times.
pub fn churn<S>(size: S, rounds: usize, run: impl Fn(Vec<Op>))
where
    S: Strategy<Value = usize> + Clone,
{
    let mut runner = TestRunner::new(Config::default());
    let grow = prop::collection::vec(size.clone().prop_map(Op::Alloc), 1500);
    let churn = prop::collection::vec(ops(size), 3000);
    for _ in 0..rounds {
        let mut ops = grow.new_tree(&mut runner).unwrap().current();
        ops.extend(churn.new_tree(&mut runner).unwrap().current());
        run(ops);
    }
}

/// The counters the model expects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Expected {
    /// Rejected allocations.
    pub rejected: Rejections,
    /// Rejected handles.
    pub bad_handles: u64,
}

/// How the page source behaves during an allocation of the model: fails
/// after `Some(n)` pages, or never.
pub fn failing(op: Op) -> Option<u64> {
    match op {
        Op::AllocFailing(_) => Some(0),
        Op::AllocFailAfter(_, n) => Some(n),
        _ => None,
    }
}

/// Allocates `size` bytes in `pool` as `op` says (with failures of `src`),
/// checks the result given the largest object and whether the object `fits`
/// in a page the pool has, counts a rejection in `expected`, and returns
/// the handle.
pub fn alloc<'a, P: TestPool<'a>>(
    pool: &mut P,
    src: &TestPages,
    op: Op,
    size: usize,
    fits: bool,
    expected: &mut Expected,
) -> Option<P::Handle> {
    let failing = failing(op);
    let before = pool.counts();
    src.fail_after.set(failing);
    let result = pool.alloc(size, GFP);
    src.fail_after.set(None);
    let err = match result {
        Ok(handle) => {
            assert!(size != 0 && size <= P::MAX_SIZE);
            assert!(failing != Some(0) || fits, "allocated a page while failing");
            assert_ne!(P::to_raw(handle), 0);
            assert_eq!(pool.counts().pages, before.pages + u64::from(!fits));
            return Some(handle);
        }
        Err(AllocError::Invalid) => {
            assert_eq!(size, 0);
            AllocError::Invalid
        }
        Err(AllocError::TooBig) => {
            assert!(size > P::MAX_SIZE);
            AllocError::TooBig
        }
        Err(AllocError::NoMemory) => {
            assert!(failing.is_some() && !fits, "unexpected NoMemory");
            AllocError::NoMemory
        }
    };
    let _ = expected.rejected.count::<()>(Err(err));
    // The pool is unchanged but for the count of rejections.
    let mut rejected = before.rejected;
    let _ = rejected.count::<()>(Err(err));
    assert_eq!(pool.counts(), Counts { rejected, ..before });
    None
}

/// Runs `op` if it uses a bad handle (`UseFreed`, `Foreign`, `Random`,
/// `RandomSameTag`) and checks the pool's answer: `freed` are handles of
/// freed objects, `foreign` of another pool, `live` is a live handle (for
/// its tag) and `is_live` tells live handles. Counts the rejections in
/// `expected`; returns whether `op` was one of those.
pub fn bad_handle<'a, P: TestPool<'a>>(
    pool: &mut P,
    op: Op,
    freed: &[P::Handle],
    foreign: &[P::Handle],
    live: Option<P::Handle>,
    is_live: impl Fn(P::Handle) -> bool,
    expected: &mut Expected,
) -> bool {
    let tag = |raw: u64| raw >> 48;
    match op {
        Op::UseFreed(i, how) => {
            let Some(&handle) = freed.get(i % freed.len().max(1)) else {
                return true;
            };
            // Only a generation wrap could make it live again.
            assert!(!is_live(handle));
            let result = match how {
                0 => pool.free(handle),
                1 => pool.map(handle).map(drop),
                _ => pool.unmap(handle),
            };
            assert_eq!(result, Err(P::STALE));
            expected.bad_handles += 1;
        }
        Op::Foreign(i) => {
            let handle = foreign[i % foreign.len()];
            assert_eq!(pool.map(handle).map(drop), Err(P::FOREIGN));
            assert_eq!(pool.free(handle), Err(P::FOREIGN));
            assert_eq!(pool.unmap(handle), Err(P::FOREIGN));
            expected.bad_handles += 3;
        }
        Op::Random(raw) | Op::RandomSameTag(raw) => {
            let live_raw = live.map(P::to_raw);
            let raw = match (op, live_raw) {
                (Op::RandomSameTag(_), Some(live)) => live & (0xffff << 48) | raw & ((1 << 48) - 1),
                _ => raw,
            };
            let handle = P::from_raw(raw);
            if !is_live(handle) {
                let result = pool.free(handle);
                assert!(result.is_err(), "{raw:#x} freed");
                if live_raw.is_some_and(|live| tag(live) == tag(raw)) {
                    assert_ne!(result, Err(P::FOREIGN));
                }
                expected.bad_handles += 1;
            }
        }
        _ => return false,
    }
    true
}

/// Another pool on `src`, with 8 objects: the handles of `Foreign`.
pub fn foreign<'a, P: TestPool<'a>>(src: &'a TestPages) -> (P, Vec<P::Handle>) {
    let mut other = P::new(src);
    let handles = (1..=8)
        .map(|i| other.alloc(i * 450, Gfp(0)).unwrap())
        .collect();
    (other, handles)
}

/// Frees the `live` objects of `pool` (none of them mapped) and the
/// `foreign` ones of `other`, and checks that both pools return all their
/// pages to their sources.
pub fn finish<'a, P: TestPool<'a>>(
    mut pool: P,
    src: &TestPages,
    live: impl IntoIterator<Item = P::Handle>,
    (mut other, foreign): (P, Vec<P::Handle>),
    other_src: &TestPages,
) {
    for handle in live {
        pool.free(handle).unwrap();
    }
    assert!(pool.is_empty());
    assert_eq!(pool.counts().pages, 0);
    pool.check().unwrap();
    assert_eq!(pool.destroy(), Ok(()));
    assert_eq!(src.live(), 0);
    for handle in foreign {
        other.free(handle).unwrap();
    }
    assert_eq!(other.destroy(), Ok(()));
    assert_eq!(other_src.live(), 0);
}
