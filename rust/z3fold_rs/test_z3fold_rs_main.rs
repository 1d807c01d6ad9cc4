// SPDX-License-Identifier: GPL-2.0

//! test_z3fold_rs: the z3fold_rs pool driven directly, inside the kernel:
//! the test-only entry point for what zswap never does on purpose (bad
//! handles, destroying a pool that is not empty), for the zpool edge cases,
//! and for compaction against mapping: a page is compacted only when none
//! of its objects is mapped, on one CPU or across two.
//!
//! It builds the very `pool.rs` of `z3fold_rs.ko` and calls its
//! [`ZpoolAllocator`] methods, as the trampolines do. Loading it runs the
//! cases and prints KTAP in the kernel log (`rust/kglue/ktap.rs`); `init`
//! fails if a case failed. `tests/zpool/edges.sh` loads it. The bad-handle,
//! migration and leak cases WARN on purpose, each inside an expected-WARN
//! window around the one call that WARNs (`zpool_test::expect_warn`); the
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
// The cores' public API is the host crates'; a module uses part of it.
#[allow(unreachable_pub, dead_code)]
#[path = "../z3fold/src/z3fold.rs"]
mod z3fold;
#[allow(unreachable_pub, dead_code)]
#[path = "../zalloc/src/zalloc.rs"]
mod zalloc;
// The trait only: this module registers no driver.
#[path = "../kglue/zpool.rs"]
mod zpool;
#[path = "../kglue/zpool_pool.rs"]
mod zpool_pool;
#[path = "../kglue/zpool_test.rs"]
mod zpool_test;

use ktap::Ktap;
use pool::Z3foldPool;
use zpool::{MapMode, ZpoolAllocator};
use zpool_test::{check, fill, GFP};

module! {
    type: TestZ3foldRs,
    name: "test_z3fold_rs",
    author: "rust-kmods",
    description: "In-kernel tests of the z3fold_rs pool: edges, compaction against mapping, bad handles, allocation failures, leaks",
    license: "GPL",
}

const PAGE_SIZE: usize = 4096;

/// A new pool, as zswap would create it.
fn new_pool(name: &'static kernel::str::CStr) -> Result<Pin<KBox<Z3foldPool>>, &'static str> {
    Z3foldPool::create(name, GFP).map_err(|_| "create failed")
}

/// Three objects a page, headless pages, exact page count, a round trip.
fn round_trip(t: &mut Ktap) -> Result<(), &'static str> {
    let pool = new_pool(c_str!("test-round-trip"))?;
    // Nine objects of 20 chunks fit three pages; the two largest are
    // headless (a page each).
    let sizes = [
        1200usize, 1250, 1270, 1230, 1210, 1280, 1190, 1240, 1260, 4096, 4033,
    ];
    let mut handles = [0u64; 11];
    zpool_test::store_all(&pool, &sizes, &mut handles)?;
    let s = pool.stats();
    t.diag(format_args!(
        "11 objects in {} pages ({} headless, {} with three objects) and {} table pages",
        s.pages, s.headless_pages, s.pages_three, s.table_pages
    ));
    if s.pages != 5 || s.headless_pages != 2 || s.pages_three != 3 {
        return Err("not three objects a page and one a headless page");
    }
    if pool.total_pages() != s.pages + s.table_pages {
        return Err("total_pages is not the pages and the table pages");
    }
    pool.verify()?;
    zpool_test::free_all(&pool, &handles)
}

/// z3fold's edges: 0 and highmem are EINVAL, above a page is ENOSPC, a
/// whole page is stored (headless).
fn edges(_t: &mut Ktap) -> Result<(), &'static str> {
    let pool = new_pool(c_str!("test-edges"))?;
    zpool_test::invalid_requests(&pool)?;
    if pool.malloc(PAGE_SIZE + 1, GFP) != Err(ENOSPC) {
        return Err("an object larger than a page is not ENOSPC");
    }
    let h = pool
        .malloc(PAGE_SIZE, GFP)
        .map_err(|_| "a whole page failed")?;
    fill(&pool, h, PAGE_SIZE, 7)?;
    check(&pool, h, PAGE_SIZE, 7)?;
    pool.free(h);
    let s = pool.stats();
    if s.rejected_too_big != 1 || s.rejected_invalid != 1 || s.pages != 0 {
        return Err("the reject counters or the page count are wrong");
    }
    Ok(())
}

/// A page whose objects are mapped is not compacted: freeing a neighbour
/// defers the compaction, the mapped object stays where it is, and the
/// unmap compacts the page. The handles still name their objects.
fn compaction_waits_for_unmap(t: &mut Ktap) -> Result<(), &'static str> {
    let pool = new_pool(c_str!("test-compaction"))?;
    let size = 1000;
    // (handle, address, seed of its contents)
    let mut objs = [(0u64, 0usize, 0u64); 3];
    for (i, o) in objs.iter_mut().enumerate() {
        let h = pool.malloc(size, GFP).map_err(|_| "malloc failed")?;
        let seed = 100 + i as u64;
        fill(&pool, h, size, seed)?;
        let p = pool.map(h, MapMode::ReadOnly);
        pool.unmap(h);
        *o = (h, p as usize, seed);
    }
    if pool.stats().pages != 1 {
        return Err("three objects of 1000 bytes are not in one page");
    }
    // Free the lowest object: the others must move down to close the gap.
    // Three elements: a compare-and-swap network, not core's sort (whose
    // generic code objtool flags in a module).
    for (a, b) in [(0, 1), (1, 2), (0, 1)] {
        if objs[a].1 > objs[b].1 {
            objs.swap(a, b);
        }
    }
    let [(low, _, _), (mid, mid_addr, mid_seed), (high, _, high_seed)] = objs;
    let before = pool.stats();
    let p = pool.map(mid, MapMode::ReadWrite);
    if p as usize != mid_addr {
        return Err("a mapped object is not where it was");
    }
    pool.free(low);
    let deferred = pool.stats();
    if deferred.compactions_deferred <= before.compactions_deferred
        || deferred.compactions != before.compactions
    {
        return Err("a page with a mapped object was compacted, or not deferred");
    }
    // The mapping still holds the object, at the same place.
    if pool.map(mid, MapMode::ReadOnly) as usize != mid_addr {
        return Err("the mapped object moved");
    }
    pool.unmap(mid);
    pool.unmap(mid);
    let after = pool.stats();
    t.diag(format_args!(
        "compactions {} -> {}, deferred {} -> {}",
        before.compactions,
        after.compactions,
        before.compactions_deferred,
        after.compactions_deferred
    ));
    if after.compactions <= deferred.compactions {
        return Err("the last unmap did not compact the page");
    }
    check(&pool, mid, size, mid_seed)?;
    check(&pool, high, size, high_seed)?;
    pool.free(mid);
    pool.free(high);
    if pool.stats().pages != 0 {
        return Err("pages left after freeing every object");
    }
    Ok(())
}

/// A free that leaves a page with one object moves the object to another
/// page with room and frees the page; the handle follows (through the
/// forwarder) for map, check and free.
fn lone_object_migrates(t: &mut Ktap) -> Result<(), &'static str> {
    let pool = new_pool(c_str!("test-migration"))?;
    // 16 + 16 chunks in page A (first and last); 47 chunks do not fit
    // beside them and take page B, 17 chunks free.
    let a1 = pool.malloc(1000, GFP).map_err(|_| "malloc failed")?;
    let a2 = pool.malloc(1000, GFP).map_err(|_| "malloc failed")?;
    let b = pool.malloc(3000, GFP).map_err(|_| "malloc failed")?;
    fill(&pool, a2, 1000, 21)?;
    fill(&pool, b, 3000, 22)?;
    let before = pool.stats();
    let a2_addr = pool.map(a2, MapMode::ReadOnly) as usize;
    pool.unmap(a2);
    pool.free(a1);
    let after = pool.stats();
    t.diag(format_args!(
        "pages {} -> {}, migrations {} -> {}, forwarded {}",
        before.pages, after.pages, before.migrations, after.migrations, after.forwarded
    ));
    if before.pages != 2 || after.pages != 1 || after.migrations != before.migrations + 1 {
        return Err("the lone object did not migrate, or its page was kept");
    }
    let moved = pool.map(a2, MapMode::ReadOnly) as usize;
    pool.unmap(a2);
    if moved / PAGE_SIZE == a2_addr / PAGE_SIZE || after.forwarded != 1 {
        return Err("the migrated object is still in its old page");
    }
    check(&pool, a2, 1000, 21)?;
    check(&pool, b, 3000, 22)?;
    pool.free(a2);
    // A second free: the pool's first bad handle, which WARNs.
    zpool_test::expect_warn(|| pool.free(a2));
    if pool.stats().forwarded != 0 || pool.stats().bad_handles != before.bad_handles + 1 {
        return Err("the forwarded object's free was not final");
    }
    pool.free(b);
    if pool.stats().pages != 0 {
        return Err("pages left after freeing every object");
    }
    pool.verify()
}

/// Double free, stale, foreign and random handles, freeing a mapped object
/// and unmapping an object that is not mapped: rejected, counted, and every
/// live object still intact.
fn bad_handles(t: &mut Ktap) -> Result<(), &'static str> {
    let pool = new_pool(c_str!("test-bad-handles"))?;
    let other = new_pool(c_str!("test-other"))?;
    zpool_test::bad_handles(t, &pool, &other, |pool, busy, idle| {
        // Freeing a mapped object is refused (it stays mapped and
        // allocated); unmapping what is not mapped is refused.
        if pool.map(busy, MapMode::ReadOnly).is_null() {
            return Err("map of a live handle returned NULL");
        }
        pool.free(busy);
        pool.unmap(busy);
        pool.unmap(idle);
        Ok(2)
    })
}

/// Objects mapped and checked on CPU 1, sometimes sleeping mapped, while
/// CPU 0 frees and allocates their neighbours: many compactions, many
/// deferred because of a mapping on the other CPU, no byte changed.
fn concurrent_compaction(t: &mut Ktap) -> Result<(), &'static str> {
    let pool = new_pool(c_str!("test-concurrency"))?;
    let c = zpool_test::concurrent_map_churn(&pool, 20_000)?;
    let s = pool.stats();
    t.diag(format_args!(
        "{} frees and allocations on CPU 0, {} maps on CPU 1: {} compactions, {} deferred by a mapping, {} migrations",
        c.churns, c.maps, s.compactions, s.compactions_deferred, s.migrations
    ));
    if c.maps == 0 || s.objects != 0 || s.pages != 0 {
        return Err("no map ran, or the pool is not empty at the end");
    }
    if s.compactions < 100 || s.compactions_deferred == 0 {
        return Err("too few compactions, or none met a mapped page");
    }
    pool.verify()
}

/// Destroying a pool that still holds objects reports it, with the counts.
fn leak_reported(t: &mut Ktap) -> Result<(), &'static str> {
    zpool_test::leak_reported(t, new_pool(c_str!("test-leak"))?, 2)
}

/// A failed page allocation inside malloc (the object page, then the slot
/// table's new leaf) is ENOMEM and leaves the pool as it was: 127 headless
/// objects fill the first leaf's 127 slots, one a page.
fn alloc_failures(t: &mut Ktap) -> Result<(), &'static str> {
    let pool = new_pool(c_str!("test-alloc-failures"))?;
    zpool_test::alloc_failures(t, &pool, PAGE_SIZE, 127, 2)
}

struct TestZ3foldRs {
    _debugfs: debugfs::Dir,
}

impl kernel::Module for TestZ3foldRs {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let cases: [zpool_test::Case; 8] = [
            (
                "malloc, map and free: three objects a page, headless pages, exact page count",
                round_trip,
            ),
            (
                "size 0 and highmem are EINVAL, above a page is ENOSPC",
                edges,
            ),
            (
                "a page with a mapped object is compacted only after the unmap",
                compaction_waits_for_unmap,
            ),
            (
                "a lone object migrates to another page and its handle follows",
                lone_object_migrates,
            ),
            (
                "bad handles are rejected and the pool stays intact",
                bad_handles,
            ),
            (
                "compactions while objects are mapped on the other CPU",
                concurrent_compaction,
            ),
            (
                "a failed page allocation in malloc is ENOMEM and changes nothing",
                alloc_failures,
            ),
            (
                "destroying a pool that is not empty is reported, with its counts",
                leak_reported,
            ),
        ];
        let root = zpool_test::run_cases(c_str!("test_z3fold_rs"), &cases)?;
        Ok(TestZ3foldRs { _debugfs: root })
    }
}
