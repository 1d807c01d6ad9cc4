// SPDX-License-Identifier: GPL-2.0

//! test_zbud_rs: the zbud_rs pool driven directly, inside the kernel: the
//! test-only entry point for what zswap never does on purpose (bad handles,
//! destroying a pool that is not empty) and for the zpool edge cases.
//!
//! It builds the very `pool.rs` of `zbud_rs.ko` and calls its
//! [`ZpoolAllocator`] methods, as the trampolines do. Loading it runs the
//! cases and prints KTAP in the kernel log (`rust/kglue/ktap.rs`); `init`
//! fails if a case failed. `tests/zpool/edges.sh` loads it. The bad-handle
//! and leak cases WARN on purpose, each inside an expected-WARN window
//! around the one call that WARNs (`zpool_test::expect_warn`); the
//! allocation-failure case needs `fail_page_alloc` with `min-order` 0,
//! which `edges.sh` sets.

use kernel::c_str;
use kernel::prelude::*;

#[path = "../kglue/debugfs.rs"]
mod debugfs;
#[path = "../kglue/ktap.rs"]
mod ktap;
#[path = "../kglue/kthread.rs"]
mod kthread;
// The pool glue's per-CPU buffers: this core never maps an object in
// two pieces, so the module allocates none.
#[allow(dead_code)]
#[path = "../kglue/map_area.rs"]
mod map_area;
#[path = "../kglue/pages.rs"]
mod pages;
#[path = "pool.rs"]
mod pool;
#[path = "../kglue/rng.rs"]
mod rng;
// The core's public API is the host crate's; a module uses part of it.
#[allow(unreachable_pub, dead_code)]
#[path = "../zbud/src/zbud.rs"]
mod zbud;
// The trait only: this module registers no driver.
#[allow(unreachable_pub, dead_code)]
#[path = "../zalloc/src/zalloc.rs"]
mod zalloc;
#[path = "../kglue/zpool.rs"]
mod zpool;
#[path = "../kglue/zpool_pool.rs"]
mod zpool_pool;
#[path = "../kglue/zpool_test.rs"]
mod zpool_test;

use ktap::Ktap;
use pool::ZbudPool;
use zpool::{MapMode, ZpoolAllocator};
use zpool_test::GFP;

module! {
    type: TestZbudRs,
    name: "test_zbud_rs",
    author: "rust-kmods",
    description: "In-kernel tests of the zbud_rs pool: edges, bad handles, allocation failures, leaks",
    license: "GPL",
}

const PAGE_SIZE: usize = 4096;
/// The largest object: a page less the header chunk and one chunk.
const MAX_SIZE: usize = PAGE_SIZE - 64 - 64;

/// A new pool, as zswap would create it.
fn new_pool(name: &'static kernel::str::CStr) -> Result<Pin<KBox<ZbudPool>>, &'static str> {
    ZbudPool::create(name, GFP).map_err(|_| "create failed")
}

/// Two objects per page, placement, exact page count, a round trip.
fn round_trip(t: &mut Ktap) -> Result<(), &'static str> {
    let pool = new_pool(c_str!("test-round-trip"))?;
    // In chunks: 2, 16, 24, 32, 1, 62, 1, 47. Each object that does not
    // find a page with one buddy and room takes a new page, and the next
    // fills that page: 2 + 16, 24 + 32, 1 + 62 and 1 + 47, four full pages.
    let sizes = [100usize, 1000, 1500, 2000, 64, MAX_SIZE, 1, 3000];
    let mut handles = [0u64; 8];
    zpool_test::store_all(&pool, &sizes, &mut handles)?;
    let s = pool.stats();
    t.diag(format_args!(
        "8 objects in {} pages ({} with two buddies) and {} table pages",
        s.pages, s.buddied_pages, s.table_pages
    ));
    if s.pages != 4 || s.buddied_pages != 4 {
        return Err("8 objects are not in 4 pages of two buddies");
    }
    // The slot table: its root, one interior node and one leaf.
    if s.table_pages != 3 || pool.total_pages() != 7 {
        return Err("total_pages is not the 4 pages and the 3 table pages");
    }
    pool.verify()?;
    zpool_test::free_all(&pool, &handles)
}

/// zbud's edges: 0 and highmem are EINVAL, too big is ENOSPC.
fn edges(_t: &mut Ktap) -> Result<(), &'static str> {
    let pool = new_pool(c_str!("test-edges"))?;
    zpool_test::invalid_requests(&pool)?;
    if pool.malloc(MAX_SIZE + 1, GFP) != Err(ENOSPC) {
        return Err("an object larger than fits is not ENOSPC");
    }
    if pool.malloc(PAGE_SIZE, GFP) != Err(ENOSPC) {
        return Err("a whole page is not ENOSPC");
    }
    let h = pool
        .malloc(MAX_SIZE, GFP)
        .map_err(|_| "the largest object failed")?;
    pool.free(h);
    let s = pool.stats();
    if s.rejected_too_big != 2 || s.pages != 0 {
        return Err("the reject counters or the page count are wrong");
    }
    Ok(())
}

/// Double free, stale, foreign and random handles: rejected, counted, and
/// every live object still intact.
fn bad_handles(t: &mut Ktap) -> Result<(), &'static str> {
    let pool = new_pool(c_str!("test-bad-handles"))?;
    let other = new_pool(c_str!("test-other"))?;
    zpool_test::bad_handles(t, &pool, &other, |_, _, _| Ok(0))
}

/// Destroying a pool that still holds objects reports it, with the counts.
fn leak_reported(t: &mut Ktap) -> Result<(), &'static str> {
    zpool_test::leak_reported(t, new_pool(c_str!("test-leak"))?, 2)
}

/// A failed page allocation inside malloc (the object page, then the slot
/// table's new leaf) is ENOMEM and leaves the pool as it was: 255 objects
/// of the largest size fill the first leaf's 255 slots, one a page.
fn alloc_failures(t: &mut Ktap) -> Result<(), &'static str> {
    let pool = new_pool(c_str!("test-alloc-failures"))?;
    zpool_test::alloc_failures(t, &pool, MAX_SIZE, 255, 2)
}

/// Objects mapped and checked on CPU 1, sometimes sleeping mapped, while
/// CPU 0 frees and allocates their neighbours.
fn concurrency(t: &mut Ktap) -> Result<(), &'static str> {
    let pool = new_pool(c_str!("test-concurrency"))?;
    let c = zpool_test::concurrent_map_churn(&pool, 20_000)?;
    let s = pool.stats();
    t.diag(format_args!(
        "{} frees and allocations on CPU 0, {} maps on CPU 1",
        c.churns, c.maps
    ));
    if c.maps == 0 || s.objects != 0 || s.pages != 0 {
        return Err("no map ran, or the pool is not empty at the end");
    }
    pool.verify()
}

/// zbud never moves an object: `map` and `unmap` of a live object take no
/// lock. Made while this test holds the pool's lock (a lock taken would
/// deadlock, and lockdep say so), they give the address `map` gives
/// otherwise, for each buddy of a page and after the table grew a leaf.
fn lockless_map(t: &mut Ktap) -> Result<(), &'static str> {
    let pool = new_pool(c_str!("test-lockless-map"))?;
    let mut handles = KVec::new();
    // 300 pages of one object, then a second buddy in the first: the
    // second leaf of the table, and a page's last buddy.
    for i in 0..301 {
        let size = if i < 300 { MAX_SIZE - 1000 } else { 900 };
        let h = pool.malloc(size, GFP).map_err(|_| "malloc failed")?;
        handles.push(h, GFP_KERNEL).map_err(|_| "no memory")?;
    }
    let mut checked = 0u32;
    for &h in handles.iter() {
        let addr = pool.map(h, MapMode::ReadWrite);
        pool.unmap(h);
        let under = pool.while_locked(h, || {
            let a = pool.map(h, MapMode::ReadOnly);
            pool.unmap(h);
            a
        });
        if addr.is_null() || under != addr {
            return Err("a map under the pool's lock gave another address");
        }
        checked += 1;
    }
    t.diag(format_args!(
        "{} objects mapped and unmapped while the pool's lock was held",
        checked
    ));
    if pool.stats().bad_handles != 0 {
        return Err("a live handle was counted bad");
    }
    pool.verify()?;
    zpool_test::free_all(&pool, &handles)
}

struct TestZbudRs {
    _debugfs: debugfs::Dir,
}

impl kernel::Module for TestZbudRs {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let cases: [zpool_test::Case; 7] = [
            (
                "malloc, map and free: two objects a page, exact page count",
                round_trip,
            ),
            ("size 0 and highmem are EINVAL, too big is ENOSPC", edges),
            (
                "bad handles are rejected and the pool stays intact",
                bad_handles,
            ),
            (
                "objects mapped on one CPU stay intact while the other churns",
                concurrency,
            ),
            ("map and unmap of a live object take no lock", lockless_map),
            (
                "a failed page allocation in malloc is ENOMEM and changes nothing",
                alloc_failures,
            ),
            (
                "destroying a pool that is not empty is reported, with its counts",
                leak_reported,
            ),
        ];
        let root = zpool_test::run_cases(c_str!("test_zbud_rs"), &cases)?;
        Ok(TestZbudRs { _debugfs: root })
    }
}
