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
#[path = "../kglue/pages.rs"]
mod pages;
#[path = "pool.rs"]
mod pool;
// The core's public API is the host crate's; a module uses part of it.
#[allow(unreachable_pub, dead_code)]
#[path = "../zbud/src/zbud.rs"]
mod zbud;
// The trait only: this module registers no driver.
#[path = "../kglue/zpool.rs"]
mod zpool;

use ktap::Ktap;
use pool::ZbudPool;
use zpool::{Gfp, MapMode, ZpoolAllocator};

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
const GFP: Gfp = Gfp(kernel::bindings::GFP_KERNEL);

/// A new pool, as zswap would create it.
fn new_pool(name: &'static kernel::str::CStr) -> Result<Pin<KBox<ZbudPool>>, &'static str> {
    ZbudPool::create(name, GFP).map_err(|_| "create failed")
}

/// Fills object `h` of `size` bytes with a pattern derived from `seed`.
fn fill(pool: &ZbudPool, h: u64, size: usize, seed: u8) -> Result<(), &'static str> {
    let p = pool.map(h, MapMode::WriteOnly);
    if p.is_null() {
        return Err("map of a live handle returned NULL");
    }
    for i in 0..size {
        // SAFETY: `p` maps a live object of `size` bytes until it is freed.
        unsafe { p.add(i).write((i as u8).wrapping_mul(31) ^ seed) };
    }
    pool.unmap(h);
    Ok(())
}

/// Checks the pattern of [`fill`].
fn check(pool: &ZbudPool, h: u64, size: usize, seed: u8) -> Result<(), &'static str> {
    let p = pool.map(h, MapMode::ReadOnly);
    if p.is_null() {
        return Err("map of a live handle returned NULL");
    }
    for i in 0..size {
        // SAFETY: as in `fill`.
        if unsafe { p.add(i).read() } != (i as u8).wrapping_mul(31) ^ seed {
            pool.unmap(h);
            return Err("an object's bytes changed");
        }
    }
    pool.unmap(h);
    Ok(())
}

/// Two objects per page, placement, exact page count, a round trip.
fn round_trip(t: &mut Ktap) -> Result<(), &'static str> {
    let pool = new_pool(c_str!("test-round-trip"))?;
    let sizes = [100usize, 1000, 1500, 2000, 64, MAX_SIZE, 1, 3000];
    let mut handles = [0u64; 8];
    for (i, (&size, h)) in sizes.iter().zip(handles.iter_mut()).enumerate() {
        *h = pool.malloc(size, GFP).map_err(|_| "malloc failed")?;
        fill(&pool, *h, size, i as u8)?;
    }
    for (i, (&size, &h)) in sizes.iter().zip(handles.iter()).enumerate() {
        check(&pool, h, size, i as u8)?;
    }
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
    for &h in handles.iter() {
        pool.free(h);
    }
    let s = pool.stats();
    if s.pages != 0 || s.objects != 0 || pool.total_pages() != s.table_pages {
        return Err("the pool is not empty after freeing everything");
    }
    Ok(())
}

/// zbud's edges: 0 and highmem are EINVAL, too big is ENOSPC.
fn edges(_t: &mut Ktap) -> Result<(), &'static str> {
    let pool = new_pool(c_str!("test-edges"))?;
    if pool.malloc(0, GFP) != Err(EINVAL) {
        return Err("size 0 is not EINVAL");
    }
    let highmem = Gfp(kernel::bindings::GFP_KERNEL | kernel::bindings::__GFP_HIGHMEM);
    if pool.malloc(100, highmem) != Err(EINVAL) {
        return Err("__GFP_HIGHMEM is not EINVAL");
    }
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
    let mut handles = [0u64; 32];
    for (i, h) in handles.iter_mut().enumerate() {
        *h = pool
            .malloc(200 + i * 50, GFP)
            .map_err(|_| "malloc failed")?;
        fill(&pool, *h, 200 + i * 50, i as u8)?;
    }
    let foreign = other.malloc(100, GFP).map_err(|_| "malloc failed")?;
    let pages = pool.stats().pages;
    // A freed handle, freed again and mapped (double free, use after free).
    let victim = handles[5];
    pool.free(victim);
    pool.free(victim);
    let stale_map = pool.map(victim, MapMode::ReadOnly);
    // Another pool's handle, and values that were never handles.
    pool.free(foreign);
    let foreign_map = pool.map(foreign, MapMode::ReadWrite);
    for bogus in [0u64, 1, u64::MAX, 0xdead_beef, handles[0] ^ (1 << 40)] {
        pool.free(bogus);
    }
    if !stale_map.is_null() || !foreign_map.is_null() {
        return Err("map of a bad handle returned an address");
    }
    let bad = pool.stats().bad_handles;
    t.diag(format_args!("{} bad handles rejected", bad));
    if bad != 9 {
        return Err("not every bad handle was counted");
    }
    for (i, &h) in handles.iter().enumerate() {
        if i != 5 {
            check(&pool, h, 200 + i * 50, i as u8)?;
        }
    }
    if pool.stats().objects != 31 || pool.stats().pages > pages {
        return Err("the pool changed");
    }
    for (i, &h) in handles.iter().enumerate() {
        if i != 5 {
            pool.free(h);
        }
    }
    other.free(foreign);
    if pool.stats().pages != 0 || other.stats().pages != 0 {
        return Err("pages left after freeing every object");
    }
    Ok(())
}

/// Destroying a pool that still holds an object reports it (and leaves the
/// page alone: one page of the test guest is leaked on purpose).
fn leak_reported(t: &mut Ktap) -> Result<(), &'static str> {
    let pool = new_pool(c_str!("test-leak"))?;
    let _ = pool.malloc(100, GFP).map_err(|_| "malloc failed")?;
    drop(pool);
    t.diag(format_args!("destroyed a pool holding one object"));
    Ok(())
}

struct TestZbudRs {
    _debugfs: debugfs::Dir,
}

impl kernel::Module for TestZbudRs {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let root = debugfs::Dir::new(c_str!("test_zbud_rs"), None);
        // SAFETY: every pool of the tests is dropped before `init` returns,
        // and `drop` is not needed to clear the slot before then.
        unsafe { pool::DEBUGFS_ROOT.set(&root) };
        let mut t = Ktap::new(4);
        let r = round_trip(&mut t);
        t.result(
            "malloc, map and free: two objects a page, exact page count",
            r,
        );
        let r = edges(&mut t);
        t.result("size 0 and highmem are EINVAL, too big is ENOSPC", r);
        let r = bad_handles(&mut t);
        t.result("bad handles are rejected and the pool stays intact", r);
        let r = leak_reported(&mut t);
        t.result("destroying a pool that is not empty is reported", r);
        pool::DEBUGFS_ROOT.clear();
        if t.finish() {
            Ok(TestZbudRs { _debugfs: root })
        } else {
            Err(EINVAL)
        }
    }
}
