// SPDX-License-Identifier: GPL-2.0

//! bench_btree_rs: the B+tree of `rust/btree` measured against the kernel's
//! red-black tree ([`kernel::rbtree::RBTree`]) inside the kernel.
//!
//! Loading the module runs the benchmark and prints a table in the kernel
//! log; `bench/btree.sh` loads it on the perf kernel and collects the table.
//! On 1M random `u64 -> u64` entries it times insert, lookup of present keys,
//! lookup of absent keys, range scans of 100 entries from random keys and
//! removal of every entry, and reports the memory per entry of the B+tree
//! after random and after sequential insertion.

use kernel::alloc::flags::GFP_KERNEL;
use kernel::prelude::*;
use kernel::rbtree::RBTree;
use kernel::time::Ktime;

#[allow(unreachable_pub, dead_code)]
#[path = "../btree/src/btree.rs"]
mod btree;
#[path = "../kglue/node_alloc.rs"]
mod node_alloc;
#[allow(dead_code)]
#[path = "../kglue/rng.rs"]
mod rng;

use btree::BTree;
use node_alloc::KmallocNodes;
use rng::Rng;

module! {
    type: BenchBtree,
    name: "bench_btree_rs",
    author: "rust-kmods",
    description: "Benchmark of the Rust B+tree against the kernel's rbtree",
    license: "GPL",
}

const ENTRIES: u64 = 1_000_000;
const SCANS: u64 = 10_000;
const SCAN_LEN: usize = 100;
/// The slab object a kernel rbtree entry of `u64 -> u64` takes: an
/// `RBTreeNode` (`rb_node` of 24 bytes + key + value = 40 bytes) is served
/// from `kmalloc-64`.
const RBTREE_BYTES_PER_ENTRY: u64 = 64;

/// A random key; keys are even, so odd keys are certain misses.
fn key(rng: &mut Rng) -> u64 {
    rng.next() & !1
}

const SEED: u64 = 0xb7ee_5eed_0000_0003;

fn now() -> i64 {
    Ktime::ktime_get().to_ns()
}

/// Nanoseconds per operation since `start`.
fn per_op(start: i64, ops: u64) -> u64 {
    (now().saturating_sub(start).max(0) as u64) / ops.max(1)
}

/// One row: the two times and rbtree/btree as a ratio with two decimals.
fn row(name: &str, ours: u64, theirs: u64) {
    let ratio = theirs.saturating_mul(100) / ours.max(1);
    pr_info!(
        "| {:<23} | {:>8} | {:>9} | {:>8}.{:02}x |\n",
        name,
        ours,
        theirs,
        ratio / 100,
        ratio % 100
    );
}

/// Bytes per entry as a number with one decimal.
fn per_entry_tenths(bytes: usize, entries: usize) -> (usize, usize) {
    let tenths = bytes.saturating_mul(10) / entries.max(1);
    (tenths / 10, tenths % 10)
}

fn run() -> Result {
    let mut ours = BTree::<u64, u64, KmallocNodes>::new(KmallocNodes(GFP_KERNEL));
    let mut theirs = RBTree::<u64, u64>::new();

    let mut rng = Rng::new(SEED);
    let t = now();
    for _ in 0..ENTRIES {
        let k = key(&mut rng);
        // A repeated random key is simply not inserted twice.
        let _ = ours.insert(k, k);
    }
    let ins_ours = per_op(t, ENTRIES);
    let mut rng = Rng::new(SEED);
    let t = now();
    for _ in 0..ENTRIES {
        let k = key(&mut rng);
        theirs.try_create_and_insert(k, k, GFP_KERNEL)?;
    }
    let ins_theirs = per_op(t, ENTRIES);
    let (bytes_int, bytes_frac) = per_entry_tenths(ours.memory_bytes(), ours.len());

    // Lookups of present keys, in insertion order; absent keys are odd.
    let mut hits = 0u64;
    let mut rng = Rng::new(SEED);
    let t = now();
    for _ in 0..ENTRIES {
        hits += u64::from(ours.get(&key(&mut rng)).is_some());
    }
    let hit_ours = per_op(t, ENTRIES);
    let mut rng = Rng::new(SEED);
    let t = now();
    for _ in 0..ENTRIES {
        hits += u64::from(theirs.get(&key(&mut rng)).is_some());
    }
    let hit_theirs = per_op(t, ENTRIES);
    let mut rng = Rng::new(SEED ^ 0xdead);
    let t = now();
    for _ in 0..ENTRIES {
        hits += u64::from(ours.get(&(key(&mut rng) | 1)).is_some());
    }
    let miss_ours = per_op(t, ENTRIES);
    let mut rng = Rng::new(SEED ^ 0xdead);
    let t = now();
    for _ in 0..ENTRIES {
        hits += u64::from(theirs.get(&(key(&mut rng) | 1)).is_some());
    }
    let miss_theirs = per_op(t, ENTRIES);

    // Range scans: SCAN_LEN entries forward from a random key.
    let mut sum = 0u64;
    let mut rng = Rng::new(SEED ^ 0x5ca1);
    let t = now();
    for _ in 0..SCANS {
        for (k, _) in ours.iter_from(&rng.next()).take(SCAN_LEN) {
            sum = sum.wrapping_add(k);
        }
    }
    let scan_ours = per_op(t, SCANS);
    let mut rng = Rng::new(SEED ^ 0x5ca1);
    let t = now();
    for _ in 0..SCANS {
        let mut cursor = theirs.cursor_lower_bound(&rng.next());
        for _ in 0..SCAN_LEN {
            let Some(c) = cursor else { break };
            sum = sum.wrapping_add(*c.current().0);
            cursor = c.move_next();
        }
    }
    let scan_theirs = per_op(t, SCANS);

    let mut rng = Rng::new(SEED);
    let t = now();
    for _ in 0..ENTRIES {
        ours.remove(&key(&mut rng));
    }
    let rm_ours = per_op(t, ENTRIES);
    let mut rng = Rng::new(SEED);
    let t = now();
    for _ in 0..ENTRIES {
        theirs.remove(&key(&mut rng));
    }
    let rm_theirs = per_op(t, ENTRIES);

    // Memory after sequential insertion.
    for k in 0..ENTRIES {
        ours.insert(k, k).map_err(|_| ENOMEM)?;
    }
    let (seq_int, seq_frac) = per_entry_tenths(ours.memory_bytes(), ours.len());
    ours.clear();

    pr_info!(
        "in-kernel B+tree vs rbtree: {} random u64 -> u64 entries, {}-byte nodes\n",
        ENTRIES,
        btree::DEFAULT_NODE_BYTES
    );
    pr_info!("| operation               | btree ns | rbtree ns | rbtree/btree |\n");
    pr_info!("|-------------------------|----------|-----------|--------------|\n");
    row("insert", ins_ours, ins_theirs);
    row("lookup (hit)", hit_ours, hit_theirs);
    row("lookup (miss)", miss_ours, miss_theirs);
    row("range scan, 100 entries", scan_ours, scan_theirs);
    row("remove", rm_ours, rm_theirs);
    pr_info!(
        "memory: btree {}.{} B/entry after random insertion, {}.{} after sequential; rbtree {} (kmalloc-64)\n",
        bytes_int,
        bytes_frac,
        seq_int,
        seq_frac,
        RBTREE_BYTES_PER_ENTRY
    );
    // Keeps the lookups and scans from being optimised away.
    pr_info!("checksum {:x}\n", hits ^ sum);
    Ok(())
}

struct BenchBtree;

impl kernel::Module for BenchBtree {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        run()?;
        Ok(BenchBtree)
    }
}
