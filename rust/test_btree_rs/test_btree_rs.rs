// SPDX-License-Identifier: GPL-2.0

//! test_btree_rs: the B+tree of `rust/btree`, tested inside the kernel.
//!
//! In the spirit of the kernel's `lib/test_*.c` modules: loading the module
//! runs every case and prints the results as KTAP in the kernel log (each
//! line prefixed `test_btree_rs: `); `init` fails with `-EINVAL` if a case
//! failed, so `modprobe` reports it too. `tests/btree/btree.sh` is the
//! kselftest wrapper that loads it and re-prints the KTAP.
//!
//! The cases:
//! - a long randomized differential test against the kernel's red-black tree
//!   ([`kernel::rbtree::RBTree`]), with `u64` and 128-bit keys: insert,
//!   duplicate insert, remove, lookup, predecessor, successor and range
//!   iteration in both directions, with the tree's invariant checker every
//!   few hundred operations;
//! - allocation failure injected at random, after which the tree must be
//!   valid and unchanged;
//! - inserts under a spinlock from a reservation filled before taking it,
//!   while the tree's own allocator refuses to allocate (with
//!   `CONFIG_DEBUG_ATOMIC_SLEEP` any sleeping allocation would be reported);
//! - merge and drain;
//! - every node allocated was freed.

use core::cell::Cell;
use core::sync::atomic::{AtomicUsize, Ordering};
use kernel::alloc::flags::GFP_KERNEL;
use kernel::new_spinlock;
use kernel::prelude::*;
use kernel::rbtree::RBTree;

#[allow(unreachable_pub, dead_code)]
#[path = "../btree/src/btree.rs"]
mod btree;
#[path = "../kglue/ktap.rs"]
mod ktap;
#[path = "../kglue/node_alloc.rs"]
mod node_alloc;
#[path = "../kglue/rng.rs"]
mod rng;

use btree::{BTree, Error, NodeAlloc, Reservation};
use ktap::Ktap;
use node_alloc::KmallocNodes;
use rng::Rng;

module! {
    type: TestBtree,
    name: "test_btree_rs",
    author: "rust-kmods",
    description: "In-kernel test of the Rust B+tree against the kernel's rbtree",
    license: "GPL",
}

/// Node allocations and frees by [`TestNodes`], for the leak check.
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static FREES: AtomicUsize = AtomicUsize::new(0);

/// `kmalloc` nodes that count, and fail on request.
///
/// `fail_in`: 0 never fails; `n > 0` fails the `n`-th allocation from now
/// (and every one after it while `sticky`).
struct TestNodes {
    fail_in: Cell<u32>,
    sticky: bool,
}

impl TestNodes {
    fn new() -> Self {
        Self {
            fail_in: Cell::new(0),
            sticky: false,
        }
    }

    /// Refuses every allocation: a tree whose inserts must come from a
    /// reservation.
    fn refusing() -> Self {
        Self {
            fail_in: Cell::new(1),
            sticky: true,
        }
    }
}

// SAFETY: every node comes from `KmallocNodes`, whose memory any other value
// of this type (they all free to `KmallocNodes`) may free.
unsafe impl NodeAlloc for TestNodes {
    fn alloc(&self, layout: core::alloc::Layout) -> Option<core::ptr::NonNull<u8>> {
        match self.fail_in.get() {
            0 => {}
            1 => {
                if !self.sticky {
                    self.fail_in.set(0);
                }
                return None;
            }
            n => self.fail_in.set(n - 1),
        }
        let p = KmallocNodes(GFP_KERNEL).alloc(layout)?;
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        Some(p)
    }

    unsafe fn free(&self, ptr: core::ptr::NonNull<u8>, layout: core::alloc::Layout) {
        FREES.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above, that is from `KmallocNodes`,
        // with `layout`, and the caller does not use it again.
        unsafe { KmallocNodes(GFP_KERNEL).free(ptr, layout) };
    }
}

const SEED: u64 = 0x5eed_b7ee_0000_0001;

/// A key type of the tree and the rbtree, made from a random number.
trait TestKey: Copy + Ord + core::fmt::Debug {
    fn from_random(r: u64) -> Self;
}

impl TestKey for u64 {
    fn from_random(r: u64) -> Self {
        r
    }
}

impl TestKey for u128 {
    /// A (device, sector) key: the device in the high half.
    fn from_random(r: u64) -> Self {
        (u128::from(r % 3) << 64) | u128::from(r / 3)
    }
}

/// A cursor at the greatest entry `<= key` of the rbtree, which has no such
/// search of its own.
fn rb_cursor_le<'a, K: TestKey>(
    rb: &'a mut RBTree<K, u64>,
    key: &K,
) -> Option<kernel::rbtree::Cursor<'a, K, u64>> {
    if rb.cursor_lower_bound(key).is_none() {
        return rb.cursor_back();
    }
    let c = rb.cursor_lower_bound(key)?;
    if c.current().0 == key {
        Some(c)
    } else {
        c.move_prev()
    }
}

/// The greatest entry `<= key` of the rbtree.
fn rb_le<K: TestKey>(rb: &mut RBTree<K, u64>, key: &K) -> Option<(K, u64)> {
    rb_cursor_le(rb, key).map(|c| {
        let (k, v) = c.current();
        (*k, *v)
    })
}

/// The least entry `>= key` of the rbtree.
fn rb_ge<K: TestKey>(rb: &mut RBTree<K, u64>, key: &K) -> Option<(K, u64)> {
    rb.cursor_lower_bound(key).map(|c| {
        let (k, v) = c.current();
        (*k, *v)
    })
}

/// Checks that up to `n` entries from `key` match, forward and backward.
fn ranges_match<K: TestKey>(
    tree: &BTree<K, u64, TestNodes>,
    rb: &mut RBTree<K, u64>,
    key: &K,
    n: usize,
) -> bool {
    let mut ours = tree.iter_from(key);
    let mut cursor = rb.cursor_lower_bound(key);
    for _ in 0..n {
        let theirs = cursor.as_ref().map(|c| {
            let (k, v) = c.current();
            (*k, *v)
        });
        if ours.next() != theirs {
            return false;
        }
        cursor = match cursor {
            Some(c) => c.move_next(),
            None => break,
        };
    }
    let mut ours = tree.iter_back_from(key);
    let mut cursor = rb_cursor_le(rb, key);
    for _ in 0..n {
        let theirs = cursor.as_ref().map(|c| {
            let (k, v) = c.current();
            (*k, *v)
        });
        if ours.next() != theirs {
            return false;
        }
        cursor = match cursor {
            Some(c) => c.move_prev(),
            None => break,
        };
    }
    true
}

/// Runs `ops` random operations on a tree and an rbtree side by side.
fn differential<K: TestKey>(ops: u32, keyspace: u64, t: &mut Ktap) -> Result<(), &'static str> {
    let mut rng = Rng::new(SEED ^ keyspace);
    let mut tree = BTree::<K, u64, TestNodes>::new(TestNodes::new());
    let mut rb = RBTree::<K, u64>::new();
    let mut max_height = 0;
    for i in 0..ops {
        let key = K::from_random(rng.below(keyspace));
        let value = rng.next();
        match rng.below(100) {
            0..=44 => {
                let dup = rb.get(&key).is_some();
                match tree.insert(key, value) {
                    Ok(()) if !dup => {
                        rb.try_create_and_insert(key, value, GFP_KERNEL)
                            .map_err(|_| "rbtree: no memory")?;
                    }
                    Err(Error::Duplicate) if dup => {}
                    Ok(()) => return Err("insert of a duplicate key succeeded"),
                    Err(Error::Duplicate) => return Err("insert of a new key said duplicate"),
                    Err(Error::NoMemory) => return Err("insert: no memory"),
                }
            }
            45..=74 => {
                if tree.remove(&key) != rb.remove(&key) {
                    return Err("remove returned another value than the rbtree");
                }
            }
            75..=84 => {
                if tree.get(&key) != rb.get(&key).copied() {
                    return Err("lookup differs from the rbtree");
                }
            }
            85..=91 => {
                if tree.get_le(&key) != rb_le(&mut rb, &key) {
                    return Err("predecessor (<=) differs from the rbtree");
                }
            }
            92..=97 => {
                if tree.get_ge(&key) != rb_ge(&mut rb, &key) {
                    return Err("successor (>=) differs from the rbtree");
                }
            }
            _ => {
                if !ranges_match(&tree, &mut rb, &key, 8) {
                    return Err("range iteration differs from the rbtree");
                }
            }
        }
        max_height = max_height.max(tree.height());
        if i % 512 == 0 {
            tree.check_invariants()?;
            if tree.len() != rb.iter().count() {
                return Err("len differs from the rbtree");
            }
        }
    }
    tree.check_invariants()?;
    let same = tree.iter().eq(rb.iter().map(|(k, v)| (*k, *v)));
    t.diag(format_args!(
        "{} ops, {} entries, height {} (max {}), {} nodes",
        ops,
        tree.len(),
        tree.height(),
        max_height,
        tree.node_count()
    ));
    if same {
        Ok(())
    } else {
        Err("the final contents differ from the rbtree")
    }
}

/// Inserts with allocation failures injected at random points.
fn alloc_failures(t: &mut Ktap) -> Result<(), &'static str> {
    let mut rng = Rng::new(SEED ^ 0xfa11);
    let mut tree = BTree::<u64, u64, TestNodes>::new(TestNodes::new());
    let mut failures = 0u32;
    for _ in 0..20_000 {
        let key = rng.below(1 << 20);
        tree.allocator().fail_in.set(rng.below(4) as u32);
        let before = tree.len();
        let had = tree.get(&key);
        match tree.insert(key, key) {
            Ok(()) => {}
            Err(Error::Duplicate) if had.is_some() => {}
            Err(Error::Duplicate) => return Err("a new key said duplicate"),
            Err(Error::NoMemory) => {
                failures += 1;
                if tree.len() != before || tree.get(&key).is_some() {
                    return Err("a failed insert changed the tree");
                }
                tree.check_invariants()?;
            }
        }
        tree.allocator().fail_in.set(0);
        if rng.below(4) == 0 {
            tree.remove(&rng.below(1 << 20));
        }
    }
    tree.check_invariants()?;
    t.diag(format_args!(
        "{} failed inserts left the tree unchanged; {} entries",
        failures,
        tree.len()
    ));
    if failures == 0 {
        return Err("no allocation failure was injected");
    }
    Ok(())
}

/// Inserts under a spinlock, from reservations filled before locking; the
/// tree's own allocator refuses everything.
fn reserved_under_spinlock(t: &mut Ktap) -> Result<(), &'static str> {
    let lock = KBox::pin_init(
        new_spinlock!(BTree::<u64, u64, TestNodes>::new(TestNodes::refusing())),
        GFP_KERNEL,
    )
    .map_err(|_| "no memory for the lock")?;
    let mut rng = Rng::new(SEED ^ 0x5b1d);
    let mut res = Reservation::<TestNodes>::new(TestNodes::new());
    let mut inserted = 0u32;
    for _ in 0..20_000 {
        let key = rng.next();
        // Refill outside the lock, for the height the tree may have then.
        let want = lock.lock().height() + 1;
        if res.len() < want {
            res.fill(want).map_err(|_| "reservation: no memory")?;
        }
        let mut tree = lock.lock();
        match tree.insert_reserved(key, key, &mut res) {
            Ok(()) => inserted += 1,
            Err(Error::Duplicate) => {}
            Err(Error::NoMemory) => return Err("insert_reserved allocated under the lock"),
        }
    }
    res.release();
    let tree = lock.lock();
    tree.check_invariants()?;
    t.diag(format_args!(
        "{} inserts under a spinlock, height {}",
        inserted,
        tree.height()
    ));
    if tree.len() != inserted as usize {
        return Err("entries lost");
    }
    Ok(())
}

/// Merges two trees and drains the result.
fn merge_and_drain(t: &mut Ktap) -> Result<(), &'static str> {
    let mut a = BTree::<u64, u64, TestNodes>::new(TestNodes::new());
    let mut b = BTree::<u64, u64, TestNodes>::new(TestNodes::new());
    for i in 0..5_000u64 {
        a.insert(i * 2, i).map_err(|_| "insert")?;
        b.insert(i * 2 + 1, i).map_err(|_| "insert")?;
    }
    a.merge(&mut b).map_err(|_| "merge failed")?;
    a.check_invariants()?;
    b.check_invariants()?;
    if a.len() != 10_000 || !b.is_empty() {
        return Err("merge did not move every entry");
    }
    if !a.iter().map(|(k, _)| k).eq(0..10_000u64) {
        return Err("the merged tree is not the union");
    }
    let mut visited = 0u64;
    let mut sum = 0u64;
    a.drain(|k, _| {
        visited += 1;
        sum = sum.wrapping_add(k);
    });
    t.diag(format_args!("merged 2 x 5000 entries, drained {}", visited));
    if visited != 10_000 || sum != 9_999 * 10_000 / 2 || !a.is_empty() || a.node_count() != 0 {
        return Err("drain did not visit every entry once and free every node");
    }
    Ok(())
}

struct TestBtree;

impl kernel::Module for TestBtree {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let mut t = Ktap::new(6);
        let r = differential::<u64>(100_000, 20_000, &mut t);
        t.result("random ops against the kernel rbtree, u64 keys", r);
        let r = differential::<u128>(40_000, 60_000, &mut t);
        t.result(
            "random ops against the kernel rbtree, (device, sector) keys",
            r,
        );
        let r = alloc_failures(&mut t);
        t.result("allocation failures leave the tree valid and unchanged", r);
        let r = reserved_under_spinlock(&mut t);
        t.result("reserved inserts under a spinlock never allocate", r);
        let r = merge_and_drain(&mut t);
        t.result("merge and drain", r);
        let (allocs, frees) = (
            ALLOCS.load(Ordering::Relaxed),
            FREES.load(Ordering::Relaxed),
        );
        t.diag(format_args!("{} nodes allocated, {} freed", allocs, frees));
        let r = if allocs == frees {
            Ok(())
        } else {
            Err("nodes leaked")
        };
        t.result("every node allocated was freed", r);
        if t.finish() {
            Ok(TestBtree)
        } else {
            Err(EINVAL)
        }
    }
}
