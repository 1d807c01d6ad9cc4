// SPDX-License-Identifier: GPL-2.0

//! Test support: host allocators and a differential runner that applies an
//! operation sequence to a [`BTree`] and to `std`'s `BTreeMap` and compares
//! them after every step. Shared by the unit, property and fuzz-style tests.

#![allow(dead_code)]

use std::alloc::{alloc, dealloc, Layout};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ptr::NonNull;

use arbitrary::{Arbitrary, Unstructured};
use rkm_btree::{BTree, Error, NodeAlloc, Reservation};

/// The global allocator, as a zero-sized node allocator.
#[derive(Clone, Copy, Default)]
pub struct StdAlloc;

// SAFETY: Forwards to the global allocator, which returns memory valid for
// `layout` until `dealloc`; all values of this ZST are interchangeable.
unsafe impl NodeAlloc for StdAlloc {
    fn alloc(&self, layout: Layout) -> Option<NonNull<u8>> {
        // SAFETY: Node layouts are never zero-sized.
        NonNull::new(unsafe { alloc(layout) })
    }

    unsafe fn free(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with `layout` (caller).
        unsafe { dealloc(ptr.as_ptr(), layout) }
    }
}

/// A counting allocator with failure injection.
///
/// Fails allocations when `fail_all` is set, when the `fail_nth` countdown
/// reaches zero, or at random with probability `fail_rate / 256`.
#[derive(Default)]
pub struct TestAlloc {
    pub allocs: Cell<usize>,
    pub frees: Cell<usize>,
    pub failures: Cell<usize>,
    pub live_bytes: Cell<usize>,
    pub fail_all: Cell<bool>,
    pub fail_nth: Cell<Option<usize>>,
    pub fail_rate: Cell<u8>,
    pub rng: Cell<u64>,
}

impl TestAlloc {
    pub fn new() -> Self {
        Self {
            rng: Cell::new(0x9e37_79b9_7f4a_7c15),
            ..Self::default()
        }
    }

    pub fn with_seed(seed: u64) -> Self {
        let a = Self::new();
        a.rng.set(seed | 1);
        a
    }

    fn should_fail(&self) -> bool {
        if self.fail_all.get() {
            return true;
        }
        if let Some(n) = self.fail_nth.get() {
            if n == 0 {
                self.fail_nth.set(None);
                return true;
            }
            self.fail_nth.set(Some(n - 1));
        }
        let rate = self.fail_rate.get();
        if rate == 0 {
            return false;
        }
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.set(x);
        (x & 0xff) < u64::from(rate)
    }

    pub fn live(&self) -> usize {
        self.allocs.get() - self.frees.get()
    }

    /// Panics if any node is still allocated.
    pub fn assert_no_leaks(&self) {
        assert_eq!(
            self.allocs.get(),
            self.frees.get(),
            "leaked {} nodes",
            self.live()
        );
        assert_eq!(self.live_bytes.get(), 0);
    }

    /// Runs `f` with allocation failures off.
    pub fn reliably<R>(&self, f: impl FnOnce() -> R) -> R {
        let saved = (
            self.fail_all.get(),
            self.fail_nth.get(),
            self.fail_rate.get(),
        );
        self.fail_all.set(false);
        self.fail_nth.set(None);
        self.fail_rate.set(0);
        let r = f();
        self.fail_all.set(saved.0);
        self.fail_nth.set(saved.1);
        self.fail_rate.set(saved.2);
        r
    }
}

// SAFETY: Forwards to `StdAlloc`; all values share the global heap, so memory
// from one may be freed by another.
unsafe impl NodeAlloc for TestAlloc {
    fn alloc(&self, layout: Layout) -> Option<NonNull<u8>> {
        if self.should_fail() {
            self.failures.set(self.failures.get() + 1);
            return None;
        }
        let p = StdAlloc.alloc(layout)?;
        // Poison fresh nodes so reads of uninitialised slots show up.
        // SAFETY: `p` is valid for `layout.size()` bytes.
        unsafe { std::ptr::write_bytes(p.as_ptr(), 0xa5, layout.size()) };
        self.allocs.set(self.allocs.get() + 1);
        self.live_bytes.set(self.live_bytes.get() + layout.size());
        Some(p)
    }

    unsafe fn free(&self, ptr: NonNull<u8>, layout: Layout) {
        self.frees.set(self.frees.get() + 1);
        self.live_bytes.set(self.live_bytes.get() - layout.size());
        // SAFETY: `ptr` came from `StdAlloc::alloc` with `layout` (caller).
        unsafe { StdAlloc.free(ptr, layout) }
    }
}

/// Keys the differential tests run with.
pub trait TestKey: Copy + Ord + Debug {
    fn from_u64(x: u64) -> Self;
}

impl TestKey for u64 {
    fn from_u64(x: u64) -> Self {
        x
    }
}

impl TestKey for u128 {
    /// Uses both halves, so comparisons depend on the high bits too.
    fn from_u64(x: u64) -> Self {
        (u128::from(x % 7) << 64) | u128::from(x)
    }
}

/// A 128-bit key in the shape the block cache uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DevSector {
    pub dev: u32,
    pub sector: u64,
}

impl TestKey for DevSector {
    fn from_u64(x: u64) -> Self {
        Self {
            dev: (x % 3) as u32,
            sector: x / 3,
        }
    }
}

/// One step of a differential test. Keys are reduced modulo the key space.
#[derive(Clone, Debug, Arbitrary)]
pub enum Op {
    Insert(u16, u32),
    InsertReserved(u16, u32),
    InsertRun(u16, u8),
    Remove(u16),
    RemoveRun(u16, u8),
    Get(u16),
    Update(u16, u32),
    GetMut(u16, u32),
    Le(u16),
    Lt(u16),
    Ge(u16),
    Gt(u16),
    IterFrom(u16, u8),
    IterBackFrom(u16, u8),
    FirstLast,
    Merge(Vec<(u16, u32)>),
    Drain,
    /// Failure probability for later allocations, in 1/1024.
    SetFailRate(u8),
    /// Fail the allocation after `n` more.
    FailNth(u8),
}

/// Applies `ops` to a tree and to a `BTreeMap`, checking that they agree and
/// that the tree's invariants hold after every step, and that no node leaks.
pub fn run_ops<K: TestKey, const N: usize>(ops: &[Op], key_space: u64, seed: u64) {
    let alloc = TestAlloc::with_seed(seed);
    {
        let mut tree: BTree<K, u32, &TestAlloc, N> = BTree::new(&alloc);
        let mut model: BTreeMap<K, u32> = BTreeMap::new();
        let key = |k: u16| K::from_u64(u64::from(k) % key_space);
        for op in ops {
            apply(&mut tree, &mut model, &alloc, op, &key);
            tree.check_invariants()
                .unwrap_or_else(|e| panic!("after {op:?}: {e}"));
            assert_eq!(tree.len(), model.len(), "after {op:?}");
            assert!(
                tree.iter().eq(model.iter().map(|(k, v)| (*k, *v))),
                "after {op:?}"
            );
            assert_eq!(tree.memory_bytes(), alloc.live_bytes.get());
        }
        alloc.reliably(|| tree.clear());
        assert!(tree.is_empty());
    }
    alloc.assert_no_leaks();
}

fn apply<'a, K: TestKey, const N: usize>(
    tree: &mut BTree<K, u32, &'a TestAlloc, N>,
    model: &mut BTreeMap<K, u32>,
    alloc: &'a TestAlloc,
    op: &Op,
    key: &impl Fn(u16) -> K,
) {
    match *op {
        Op::Insert(k, v) => insert_checked(tree, model, key(k), v),
        Op::InsertReserved(k, v) => {
            let k = key(k);
            let mut res = Reservation::new(alloc);
            if tree.reserve_for_insert(&mut res).is_ok() {
                // A full reservation makes the insert independent of the
                // allocator.
                let saved = alloc.fail_all.replace(true);
                let r = tree.insert_reserved(k, v, &mut res);
                alloc.fail_all.set(saved);
                expect_insert(model, k, v, r);
            } else {
                insert_checked(tree, model, k, v);
            }
            res.release();
            assert!(res.is_empty());
        }
        Op::InsertRun(start, n) => {
            for i in 0..u16::from(n) {
                insert_checked(tree, model, key(start.wrapping_add(i)), u32::from(i));
            }
        }
        Op::Remove(k) => {
            let k = key(k);
            assert_eq!(tree.remove(&k), model.remove(&k));
        }
        Op::RemoveRun(start, n) => {
            for i in 0..u16::from(n) {
                let k = key(start.wrapping_add(i));
                assert_eq!(tree.remove(&k), model.remove(&k));
            }
        }
        Op::Get(k) => {
            let k = key(k);
            assert_eq!(tree.get(&k), model.get(&k).copied());
            assert_eq!(tree.contains_key(&k), model.contains_key(&k));
        }
        Op::Update(k, v) => {
            let k = key(k);
            let expect = model.get_mut(&k).map(|old| std::mem::replace(old, v));
            assert_eq!(tree.update(&k, v), expect);
        }
        Op::GetMut(k, v) => {
            let k = key(k);
            match (tree.get_mut(&k), model.get_mut(&k)) {
                (Some(a), Some(b)) => {
                    *a = a.wrapping_add(v);
                    *b = b.wrapping_add(v);
                }
                (None, None) => {}
                (a, b) => panic!("get_mut mismatch: {a:?} vs {b:?}"),
            }
        }
        Op::Le(k) => {
            let k = key(k);
            let m = model.range(..=k).next_back().map(|(k, v)| (*k, *v));
            assert_eq!(tree.get_le(&k), m);
        }
        Op::Lt(k) => {
            let k = key(k);
            let m = model.range(..k).next_back().map(|(k, v)| (*k, *v));
            assert_eq!(tree.get_lt(&k), m);
        }
        Op::Ge(k) => {
            let k = key(k);
            let m = model.range(k..).next().map(|(k, v)| (*k, *v));
            assert_eq!(tree.get_ge(&k), m);
        }
        Op::Gt(k) => {
            let k = key(k);
            let m = model
                .range((std::ops::Bound::Excluded(k), std::ops::Bound::Unbounded))
                .next()
                .map(|(k, v)| (*k, *v));
            assert_eq!(tree.get_gt(&k), m);
        }
        Op::IterFrom(k, n) => {
            let k = key(k);
            let n = usize::from(n);
            let m = model.range(k..).take(n).map(|(k, v)| (*k, *v));
            assert!(tree.iter_from(&k).take(n).eq(m));
        }
        Op::IterBackFrom(k, n) => {
            let k = key(k);
            let n = usize::from(n);
            let m = model.range(..=k).rev().take(n).map(|(k, v)| (*k, *v));
            assert!(tree.iter_back_from(&k).take(n).eq(m));
        }
        Op::FirstLast => {
            let first = model.iter().next().map(|(k, v)| (*k, *v));
            let last = model.iter().next_back().map(|(k, v)| (*k, *v));
            assert_eq!(tree.first(), first);
            assert_eq!(tree.last(), last);
            assert!(tree
                .iter_back()
                .eq(model.iter().rev().map(|(k, v)| (*k, *v))));
        }
        Op::Merge(ref entries) => merge_checked(tree, model, alloc, entries, key),
        Op::Drain => {
            let mut drained = Vec::new();
            tree.drain(|k, v| drained.push((k, v)));
            assert!(drained.into_iter().eq(model.iter().map(|(k, v)| (*k, *v))));
            model.clear();
        }
        Op::SetFailRate(rate) => alloc.fail_rate.set(rate / 4),
        Op::FailNth(n) => alloc.fail_nth.set(Some(usize::from(n))),
    }
}

/// Inserts into both; on `NoMemory` the tree must be unchanged.
fn insert_checked<K: TestKey, const N: usize>(
    tree: &mut BTree<K, u32, &TestAlloc, N>,
    model: &mut BTreeMap<K, u32>,
    k: K,
    v: u32,
) {
    let nodes = tree.node_count();
    let r = tree.insert(k, v);
    if r.is_err() {
        assert_eq!(tree.node_count(), nodes, "failed insert changed the tree");
    }
    expect_insert(model, k, v, r);
}

fn expect_insert<K: TestKey>(model: &mut BTreeMap<K, u32>, k: K, v: u32, r: Result<(), Error>) {
    match r {
        Ok(()) => assert!(
            model.insert(k, v).is_none(),
            "insert of a present key {k:?} succeeded"
        ),
        Err(Error::Duplicate) => assert!(model.contains_key(&k), "spurious Duplicate for {k:?}"),
        Err(Error::NoMemory) => {}
    }
}

/// Merges a tree built from `entries` into `tree` and checks that no entry
/// was lost or duplicated, with or without allocation failure.
fn merge_checked<'a, K: TestKey, const N: usize>(
    tree: &mut BTree<K, u32, &'a TestAlloc, N>,
    model: &mut BTreeMap<K, u32>,
    alloc: &'a TestAlloc,
    entries: &[(u16, u32)],
    key: &impl Fn(u16) -> K,
) {
    let mut other: BTree<K, u32, &TestAlloc, N> = BTree::new(alloc);
    let mut other_model = BTreeMap::new();
    alloc.reliably(|| {
        for &(k, v) in entries {
            let k = key(k);
            if other.insert(k, v).is_ok() {
                other_model.insert(k, v);
            }
        }
    });
    let result = tree.merge(&mut other);
    tree.check_invariants().unwrap();
    other.check_invariants().unwrap();
    let in_tree: BTreeMap<K, u32> = tree.iter().collect();
    let in_other: BTreeMap<K, u32> = other.iter().collect();
    for (k, v) in model.iter() {
        assert_eq!(in_tree.get(k), Some(v), "merge changed or lost {k:?}");
    }
    for (k, v) in &other_model {
        if model.contains_key(k) {
            assert_eq!(in_other.get(k), Some(v), "duplicate {k:?} left other");
        } else {
            let moved = in_tree.get(k) == Some(v);
            let stayed = in_other.get(k) == Some(v);
            assert!(moved != stayed, "{k:?} lost or duplicated by merge");
            if result.is_ok() {
                assert!(moved, "{k:?} not moved by a successful merge");
            }
        }
    }
    assert_eq!(
        in_tree.len() + in_other.len(),
        model.len() + other_model.len()
    );
    *model = in_tree;
    alloc.reliably(|| other.clear());
}

/// Decodes one fuzz input (a key-space byte, then operations) and runs it
/// with [`run_ops`] for `u64` keys in 128-byte nodes and `u128` keys in
/// 256-byte nodes: the libFuzzer target and `tests/fuzz_like.rs` share it.
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
