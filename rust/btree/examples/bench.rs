// SPDX-License-Identifier: GPL-2.0

//! Host benchmark: `cargo run --release --example bench [-- N]`.
//!
//! N (default 1,000,000) random `u64 -> u64` entries: insert, lookup hit,
//! lookup miss, range scans (1000 scans of 100 entries from random starts)
//! and remove, for this tree with 128-, 256-, 512- and 1024-byte nodes and for
//! `std::collections::BTreeMap`, as ns/op and the ratio to `BTreeMap`. Then
//! memory: node bytes per entry after random and after ascending inserts
//! (for `BTreeMap`, heap bytes measured by a counting global allocator).
//! Each timing is the best of `ROUNDS` runs.

// A host program: its ratios are floating point, which the kernel's lints
// (the workspace's, for the crate) forbid in the tree's own code.
#![allow(clippy::float_arithmetic)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use rkm_btree::{BTree, NodeAlloc};

/// Counts live heap bytes, to measure `BTreeMap`'s memory.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: Forwards to `System` and only adds counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: Forwarded caller contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: Forwarded caller contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Node allocator on the global heap.
#[derive(Clone, Copy)]
struct Heap;

// SAFETY: Forwards to the global allocator; all values are interchangeable.
unsafe impl NodeAlloc for Heap {
    fn alloc(&self, layout: Layout) -> Option<NonNull<u8>> {
        // SAFETY: Node layouts are not zero-sized.
        NonNull::new(unsafe { std::alloc::alloc(layout) })
    }

    unsafe fn free(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with `layout` (caller).
        unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) }
    }
}

const ROUNDS: usize = 3;
const SCANS: usize = 1000;
const SCAN_LEN: usize = 100;

/// SplitMix64: a fast, reproducible key stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Inputs shared by all contenders: present keys (even), absent keys (odd),
/// a shuffled lookup order and scan starts.
struct Input {
    keys: Vec<u64>,
    hits: Vec<u64>,
    misses: Vec<u64>,
    starts: Vec<u64>,
}

impl Input {
    fn new(n: usize) -> Self {
        let mut rng = Rng(42);
        let keys: Vec<u64> = (0..n).map(|_| rng.next() & !1).collect();
        let mut hits = keys.clone();
        for i in (1..hits.len()).rev() {
            hits.swap(i, (rng.next() % (i as u64 + 1)) as usize);
        }
        let misses = (0..n).map(|_| rng.next() | 1).collect();
        let starts = (0..SCANS).map(|_| rng.next()).collect();
        Self {
            keys,
            hits,
            misses,
            starts,
        }
    }
}

/// What each contender implements.
trait Map {
    fn name(&self) -> String;
    fn insert(&mut self, k: u64, v: u64);
    fn get(&self, k: &u64) -> Option<u64>;
    fn scan(&self, from: &u64, n: usize) -> u64;
    fn remove(&mut self, k: &u64) -> Option<u64>;
    fn bytes(&self) -> usize;
}

struct Ours<const N: usize>(BTree<u64, u64, Heap, N>);

impl<const N: usize> Map for Ours<N> {
    fn name(&self) -> String {
        format!("rkm-btree {N} B")
    }
    fn insert(&mut self, k: u64, v: u64) {
        let _ = self.0.insert(k, v);
    }
    fn get(&self, k: &u64) -> Option<u64> {
        self.0.get(k)
    }
    fn scan(&self, from: &u64, n: usize) -> u64 {
        self.0.iter_from(from).take(n).map(|(k, v)| k ^ v).sum()
    }
    fn remove(&mut self, k: &u64) -> Option<u64> {
        self.0.remove(k)
    }
    fn bytes(&self) -> usize {
        self.0.memory_bytes()
    }
}

struct Std(BTreeMap<u64, u64>, usize);

impl Map for Std {
    fn name(&self) -> String {
        "std BTreeMap".into()
    }
    fn insert(&mut self, k: u64, v: u64) {
        self.0.insert(k, v);
    }
    fn get(&self, k: &u64) -> Option<u64> {
        self.0.get(k).copied()
    }
    fn scan(&self, from: &u64, n: usize) -> u64 {
        self.0.range(from..).take(n).map(|(k, v)| k ^ v).sum()
    }
    fn remove(&mut self, k: &u64) -> Option<u64> {
        self.0.remove(k)
    }
    fn bytes(&self) -> usize {
        LIVE.load(Ordering::Relaxed) - self.1
    }
}

/// ns per op: insert, hit, miss, scan (per scan), remove; bytes per entry
/// after random and ascending inserts.
struct Result {
    name: String,
    ns: [f64; 5],
    random_bpe: f64,
    seq_bpe: f64,
}

fn time(ops: usize, f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_nanos() as f64 / ops as f64
}

fn run<M: Map>(make: impl Fn() -> M, input: &Input) -> Result {
    let n = input.keys.len();
    let mut best = [f64::MAX; 5];
    let mut random_bpe = 0.0;
    let mut name = String::new();
    for _ in 0..ROUNDS {
        let mut m = make();
        name = m.name();
        let ns = [
            time(n, || {
                for &k in &input.keys {
                    m.insert(k, k);
                }
            }),
            time(n, || {
                for k in &input.hits {
                    black_box(m.get(black_box(k)));
                }
            }),
            time(n, || {
                for k in &input.misses {
                    black_box(m.get(black_box(k)));
                }
            }),
            time(SCANS, || {
                for k in &input.starts {
                    black_box(m.scan(black_box(k), SCAN_LEN));
                }
            }),
            {
                random_bpe = m.bytes() as f64 / n as f64;
                time(n, || {
                    for k in &input.hits {
                        black_box(m.remove(k));
                    }
                })
            },
        ];
        for (b, x) in best.iter_mut().zip(ns) {
            *b = b.min(x);
        }
    }
    let mut m = make();
    for k in 0..n as u64 {
        m.insert(k, k);
    }
    let seq_bpe = m.bytes() as f64 / n as f64;
    Result {
        name,
        ns: best,
        random_bpe,
        seq_bpe,
    }
}

fn main() {
    let n = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let input = Input::new(n);
    let std = run(
        || Std(BTreeMap::new(), LIVE.load(Ordering::Relaxed)),
        &input,
    );
    let results = [
        run(|| Ours::<128>(BTree::new(Heap)), &input),
        run(|| Ours::<256>(BTree::new(Heap)), &input),
        run(|| Ours::<512>(BTree::new(Heap)), &input),
        run(|| Ours::<1024>(BTree::new(Heap)), &input),
    ];
    println!("{n} random u64 -> u64 entries; ns/op (ratio to std BTreeMap), best of {ROUNDS}; scan = {SCAN_LEN} entries from a random key, ns per scan");
    println!();
    println!(
        "| {:<16} | {:>15} | {:>15} | {:>15} | {:>15} | {:>15} | {:>10} | {:>10} |",
        "",
        "insert",
        "lookup hit",
        "lookup miss",
        "range scan",
        "remove",
        "B/entry rnd",
        "B/entry seq"
    );
    println!(
        "|{:-<18}|{:->17}|{:->17}|{:->17}|{:->17}|{:->17}|{:->13}|{:->13}|",
        "", "", "", "", "", "", "", ""
    );
    for r in results.iter().chain([&std]) {
        let cells: Vec<String> =
            r.ns.iter()
                .zip(std.ns)
                .map(|(x, s)| format!("{x:7.1} ({:4.2})", x / s))
                .collect();
        println!(
            "| {:<16} | {:>15} | {:>15} | {:>15} | {:>15} | {:>15} | {:>11.1} | {:>11.1} |",
            r.name, cells[0], cells[1], cells[2], cells[3], cells[4], r.random_bpe, r.seq_bpe
        );
    }
}
