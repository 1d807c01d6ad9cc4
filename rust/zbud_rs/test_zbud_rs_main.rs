// SPDX-License-Identifier: GPL-2.0

//! test_zbud_rs: the zbud_rs pool driven directly, inside the kernel: the
//! test-only entry point for what zswap never does on purpose (bad handles,
//! destroying a pool that is not empty) and for the zpool edge cases.
//!
//! It builds the very `pool.rs` of `zbud_rs.ko` and calls its
//! [`ZpoolAllocator`] methods, as the trampolines do. Loading it runs the
//! cases and prints KTAP in the kernel log (`rust/kglue/ktap.rs`); `init`
//! fails if a case failed. `tests/zpool/edges.sh` loads it between
//! `rkm_expect_begin`/`rkm_expect_end`: the bad-handle and leak cases WARN
//! on purpose.

use kernel::c_str;
use kernel::prelude::*;

#[path = "../kglue/debugfs.rs"]
mod debugfs;
#[path = "../kglue/ktap.rs"]
mod ktap;
#[path = "../kglue/kthread.rs"]
mod kthread;
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
use zpool::ZpoolAllocator;
use zpool_test::GFP;

module! {
    type: TestZbudRs,
    name: "test_zbud_rs",
    author: "rust-kmods",
    description: "In-kernel tests of the zbud_rs pool: edges, bad handles, leaks",
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
    let sizes = [100usize, 1000, 1500, 2000, 64, MAX_SIZE, 1, 3000];
    let mut handles = [0u64; 8];
    zpool_test::store_all(&pool, &sizes, &mut handles)?;
    let pages = pool.stats().pages;
    t.diag(format_args!(
        "8 objects in {} pages (and {} table pages)",
        pages,
        pool.stats().table_pages
    ));
    // At most two objects a page, and never more pages than objects.
    if !(4..=8).contains(&pages) {
        return Err("total_pages is not between objects / 2 and objects");
    }
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

/// Destroying a pool that still holds an object reports it.
fn leak_reported(t: &mut Ktap) -> Result<(), &'static str> {
    zpool_test::leak_reported(t, new_pool(c_str!("test-leak"))?)
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
    Ok(())
}

struct TestZbudRs {
    _debugfs: debugfs::Dir,
}

impl kernel::Module for TestZbudRs {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let cases: [zpool_test::Case; 5] = [
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
            (
                "destroying a pool that is not empty is reported",
                leak_reported,
            ),
        ];
        let root = zpool_test::run_cases(c_str!("test_zbud_rs"), &cases)?;
        Ok(TestZbudRs { _debugfs: root })
    }
}
