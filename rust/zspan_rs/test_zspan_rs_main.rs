// SPDX-License-Identifier: GPL-2.0

//! test_zspan_rs: the zspan_rs pool driven directly, inside the kernel: the
//! test-only entry point for what zswap never does on purpose (bad handles,
//! destroying a pool that is not empty) and for the zpool edge cases, with
//! objects that cross page boundaries (mapped through the per-CPU buffer)
//! and compaction under concurrent maps.
//!
//! It builds the very `pool.rs` of `zspan_rs.ko` and calls its
//! [`ZpoolAllocator`] methods, as the trampolines do. Loading it runs the
//! cases and prints KTAP in the kernel log (`rust/kglue/ktap.rs`); `init`
//! fails if a case failed. `tests/zpool/edges.sh` loads it. The bad-handle
//! and leak cases WARN on purpose, each inside an expected-WARN window
//! around the one call that WARNs (`zpool_test::expect_warn`); the
//! allocation-failure case needs `fail_page_alloc` with `min-order` 0,
//! which `edges.sh` sets.

use kernel::c_str;
use kernel::prelude::*;
use kernel::time::Ktime;

#[path = "../kglue/debugfs.rs"]
mod debugfs;
#[path = "../kglue/ktap.rs"]
mod ktap;
#[path = "../kglue/kthread.rs"]
mod kthread;
#[path = "../kglue/map_area.rs"]
mod map_area;
#[path = "../kglue/pages.rs"]
mod pages;
#[path = "pool.rs"]
mod pool;
#[path = "../kglue/rng.rs"]
mod rng;
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
// The core's public API is the host crate's; a module uses part of it.
#[allow(unreachable_pub, dead_code)]
#[path = "../zspan/src/zspan.rs"]
mod zspan;

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use ktap::Ktap;
use pool::ZspanPool;
use zpool::{MapMode, ZpoolAllocator};
use zpool_test::GFP;

module! {
    type: TestZspanRs,
    name: "test_zspan_rs",
    author: "rust-kmods",
    description: "In-kernel tests of the zspan_rs pool: split objects, edges, bad handles, allocation failures, leaks",
    license: "GPL",
}

const PAGE_SIZE: usize = 4096;

/// A new pool, as zswap would create it.
fn new_pool(name: &'static kernel::str::CStr) -> Result<Pin<KBox<ZspanPool>>, &'static str> {
    ZspanPool::create(name, GFP).map_err(|_| "create failed")
}

/// A full span of 2592-byte objects (most of them across a page boundary)
/// and objects of other classes: exact page count, a round trip through
/// the per-CPU buffer in both directions.
fn round_trip(t: &mut Ktap) -> Result<(), &'static str> {
    let pool = new_pool(c_str!("test-round-trip"))?;
    let class = zspan::class_of(2592).ok_or("no class for 2592")?;
    let g = zspan::CLASSES.get(class).ok_or("no class")?;
    let n = usize::from(g.objects);
    let mut sizes = KVec::new();
    let mut handles = KVec::new();
    for i in 0..n {
        sizes
            .push(2592 - i % 3, GFP_KERNEL_)
            .map_err(|_| "no memory")?;
        handles.push(0u64, GFP_KERNEL_).map_err(|_| "no memory")?;
    }
    zpool_test::store_all(&pool, &sizes, &mut handles)?;
    let s = pool.stats();
    t.diag(format_args!(
        "{} objects of about 2592 bytes in {} pages ({} span), {} table pages",
        n, s.pages, s.spans, s.table_pages
    ));
    if s.pages != u64::from(g.pages) || s.spans != 1 {
        return Err("a full span's objects are not in its pages");
    }
    pool.verify()?;
    zpool_test::free_all(&pool, &handles)
}

/// `GFP_KERNEL` for the test's own vectors.
const GFP_KERNEL_: kernel::alloc::Flags = kernel::alloc::flags::GFP_KERNEL;

/// zspan's edges: 0 and highmem are EINVAL, above a page is ENOSPC, a
/// page is stored.
fn edges(_t: &mut Ktap) -> Result<(), &'static str> {
    let pool = new_pool(c_str!("test-edges"))?;
    zpool_test::invalid_requests(&pool)?;
    if pool.malloc(PAGE_SIZE + 1, GFP) != Err(ENOSPC) {
        return Err("an object larger than a page is not ENOSPC");
    }
    let h = pool.malloc(PAGE_SIZE, GFP).map_err(|_| "a page failed")?;
    zpool_test::fill(&pool, h, PAGE_SIZE, 7)?;
    zpool_test::check(&pool, h, PAGE_SIZE, 7)?;
    pool.free(h);
    let s = pool.stats();
    if s.rejected_too_big != 1 || s.pages != 0 {
        return Err("the reject counters or the page count are wrong");
    }
    Ok(())
}

/// Double free, stale, foreign and random handles: rejected, counted, and
/// every live object still intact; freeing a mapped object and unmapping
/// one that is not mapped are refused.
fn bad_handles(t: &mut Ktap) -> Result<(), &'static str> {
    let pool = new_pool(c_str!("test-bad-handles"))?;
    let other = new_pool(c_str!("test-other"))?;
    zpool_test::bad_handles(t, &pool, &other, |pool, busy, idle| {
        if pool.map(busy, MapMode::ReadOnly).is_null() {
            return Err("map of a live handle returned NULL");
        }
        pool.free(busy);
        pool.unmap(busy);
        pool.unmap(idle);
        Ok(2)
    })
}

/// Destroying a pool that still holds objects reports it, with the counts:
/// the two objects of 3000 bytes share a span, the one of 500 has its own.
fn leak_reported(t: &mut Ktap) -> Result<(), &'static str> {
    let pages = |size| {
        zspan::class_of(size)
            .and_then(|c| zspan::CLASSES.get(c))
            .map_or(0, |g| u64::from(g.pages))
    };
    zpool_test::leak_reported(t, new_pool(c_str!("test-leak"))?, pages(3000) + pages(500))
}

/// A failed page allocation inside malloc (a leaf of the object table and
/// every page of a new span) is ENOMEM and leaves the pool as it was: 511
/// times as many page-sized objects as a span holds fill a leaf of the
/// object table (511 slots of 8 bytes) and 511 spans, so the next malloc
/// needs a leaf and a whole span (and no leaf of the span table, whose
/// 17th leaf of 31 slots has room; the span keeps its map in its record).
fn alloc_failures(t: &mut Ktap) -> Result<(), &'static str> {
    let pool = new_pool(c_str!("test-alloc-failures"))?;
    let g = zspan::class_of(PAGE_SIZE)
        .and_then(|c| zspan::CLASSES.get(c))
        .ok_or("no class for a page")?;
    let count = 511 * usize::from(g.objects);
    let expected = 1 + u32::from(g.pages);
    t.diag(format_args!(
        "{} objects of {} bytes, spans of {} pages",
        count, g.size, g.pages
    ));
    zpool_test::alloc_failures(t, &pool, PAGE_SIZE, count, expected)
}

/// Objects mapped and checked on CPU 1 (holding the mapping without
/// sleeping), while CPU 0 frees and allocates their neighbours, every free
/// counting towards a compaction, and compacts the whole pool every 64
/// rounds (a class compacts after its frees only once it has waited a
/// span's worth of them past its trigger, which 48 objects seldom make it
/// do): compaction must have moved objects while the maps ran.
fn concurrency(t: &mut Ktap) -> Result<(), &'static str> {
    let pool = new_pool(c_str!("test-concurrency"))?;
    let compact = |round: u32| {
        if round % 64 == 0 {
            pool.with_each_core(|core| {
                core.compact(zspan::COMPACT_BUDGET);
            });
        }
    };
    let c = zpool_test::concurrent_map_churn_with(&pool, 20_000, &compact)?;
    let s = pool.stats();
    t.diag(format_args!(
        "{} frees and allocations on CPU 0, {} maps on CPU 1, {} objects moved by compaction",
        c.churns, c.maps, s.moved
    ));
    if c.maps == 0 || s.objects != 0 || s.pages != 0 {
        return Err("no map ran, or the pool is not empty at the end");
    }
    if s.moved == 0 {
        return Err("compaction moved no object while the other CPU mapped");
    }
    pool.verify()
}

/// A pool that grows past [`zspan::SHARD_FROM_PAGES`] spreads its classes
/// over its shards: objects of 2 to 4 KiB (classes of every shard) stored
/// until the pool holds 512 pages more, every one in shard 0 until then,
/// every shard taking some after; then all checked, the pool verified
/// (every shard's lock held), and all freed.
fn shards(t: &mut Ktap) -> Result<(), &'static str> {
    if pool::shard_from_pages() != zspan::SHARD_FROM_PAGES {
        return Err("the default of shard_from_pages is not zspan's SHARD_FROM_PAGES");
    }
    let pool = new_pool(c_str!("test-shards"))?;
    let target = zspan::SHARD_FROM_PAGES + 512;
    let mut sizes = KVec::new();
    let mut handles = KVec::new();
    let mut per_shard = [0u64; zspan::SHARDS];
    let mut sharded_at = None;
    while pool.total_pages() < target {
        let i = handles.len();
        if i > 4 * target as usize {
            return Err("the pool does not grow");
        }
        let size = 2048 + (i * 97) % 2048;
        let pages = pool.total_pages();
        let h = pool.malloc(size, GFP).map_err(|_| "malloc failed")?;
        zpool_test::fill(&pool, h, size, i as u64)?;
        let shard = zspan::shard_of_handle(zspan::Handle::from_raw(h));
        if shard != 0 && sharded_at.is_none() {
            sharded_at = Some(pages);
        }
        if let Some(n) = per_shard.get_mut(shard) {
            *n += 1;
        }
        sizes.push(size, GFP_KERNEL_).map_err(|_| "no memory")?;
        handles.push(h, GFP_KERNEL_).map_err(|_| "no memory")?;
    }
    for (i, (&size, &h)) in sizes.iter().zip(handles.iter()).enumerate() {
        zpool_test::check(&pool, h, size, i as u64)?;
    }
    pool.verify()?;
    t.diag(format_args!(
        "{} objects in {} pages; the first in a shard of its class's at {:?} pages; objects per shard: {:?}",
        handles.len(),
        pool.total_pages(),
        sharded_at,
        per_shard
    ));
    // A malloc adds at most a span and two table leaves (8 pages).
    match sharded_at {
        Some(pages) if (zspan::SHARD_FROM_PAGES..zspan::SHARD_FROM_PAGES + 8).contains(&pages) => {}
        _ => return Err("the first object out of shard 0 came before the pool had its pages, long after, or never"),
    }
    if per_shard.contains(&0) {
        return Err("a shard took no object");
    }
    zpool_test::free_all(&pool, &handles)?;
    pool.verify()
}

/// How long [`contended`]'s threads may run before the pool has counted
/// [`zpool_pool::CONTENDED`] meetings (they usually take well under a
/// second).
const MEETING_NS: i64 = 30_000_000_000;

/// What the two threads of [`contended`] share.
struct Meeting<'a> {
    pool: &'a ZspanPool,
    /// Set by the allocating thread when it is done; the checker stops.
    stop: AtomicBool,
    /// Threads that have returned.
    finished: AtomicU32,
    /// `verify` calls, and whether one failed.
    verifies: AtomicU64,
    /// The allocating thread's malloc and free pairs.
    steps: AtomicU64,
    failed: AtomicBool,
}

impl Meeting<'_> {
    /// CPU 1: verifies the pool (every shard's lock held for a walk of the
    /// whole pool) until told to stop.
    fn checker(&self) -> i32 {
        while !self.stop.load(Ordering::Acquire) {
            if self.pool.verify().is_err() {
                self.failed.store(true, Ordering::Relaxed);
            }
            self.verifies.fetch_add(1, Ordering::Relaxed);
        }
        self.finished.fetch_add(1, Ordering::Release);
        0
    }

    /// CPU 0: allocates and frees small objects until the pool counts
    /// itself contended (or [`MEETING_NS`] have passed), then stops the
    /// checker. The bound is time, not steps: under QEMU's TCG the
    /// checker's vCPU may not run at all for a while.
    fn allocator(&self) -> i32 {
        let end = Ktime::ktime_get().to_ns().saturating_add(MEETING_NS);
        let mut i = 0usize;
        while self.pool.contention() < zpool_pool::CONTENDED && Ktime::ktime_get().to_ns() < end {
            match self.pool.malloc(64 + i % 512, GFP) {
                Ok(h) => self.pool.free(h),
                Err(_) => self.failed.store(true, Ordering::Relaxed),
            }
            i = i.wrapping_add(1);
        }
        self.steps.store(i as u64, Ordering::Relaxed);
        self.stop.store(true, Ordering::Release);
        self.finished.fetch_add(1, Ordering::Release);
        0
    }
}

/// One malloc of `size` bytes in `pool` by a thread bound to a CPU
/// ([`malloc_on`]).
struct OnCpu<'a> {
    pool: &'a ZspanPool,
    size: usize,
    /// The handle, if the malloc succeeded.
    handle: AtomicU64,
    stored: AtomicBool,
    done: AtomicBool,
}

impl OnCpu<'_> {
    fn malloc(&self) -> i32 {
        if let Ok(h) = self.pool.malloc(self.size, GFP) {
            self.handle.store(h, Ordering::Relaxed);
            self.stored.store(true, Ordering::Relaxed);
        }
        self.done.store(true, Ordering::Release);
        0
    }
}

/// The handle of a malloc of `size` bytes in `pool` made on CPU `cpu`.
fn malloc_on(pool: &ZspanPool, size: usize, cpu: u32) -> Result<u64, &'static str> {
    let m = OnCpu {
        pool,
        size,
        handle: AtomicU64::new(0),
        stored: AtomicBool::new(false),
        done: AtomicBool::new(false),
    };
    // SAFETY: `m` outlives the thread: it is joined below (or dropped,
    // which stops it, on the way out).
    let thread = unsafe { kthread::Thread::start(cpu, OnCpu::malloc, &m) }
        .map_err(|_| "could not start a thread on a CPU")?;
    let end = Ktime::ktime_get().to_ns().saturating_add(MEETING_NS);
    while !m.done.load(Ordering::Acquire) && Ktime::ktime_get().to_ns() < end {
        kthread::usleep(1000);
    }
    if thread.join() != 0 || !m.done.load(Ordering::Acquire) {
        return Err("a thread bound to a CPU did not run");
    }
    if !m.stored.load(Ordering::Relaxed) {
        return Err("a malloc on a CPU of its own failed");
    }
    Ok(m.handle.load(Ordering::Relaxed))
}

/// A size whose class is in a shard other than 0 in a pool that uses any
/// number of shards but one (class `c` in shard `c % n`, `n` a power of
/// two: an odd class), and its shard in a pool that uses all 8.
fn sharding_size() -> Option<(usize, usize)> {
    (100..PAGE_SIZE).step_by(16).find_map(|size| {
        let class = zspan::class_of(size)?;
        (class % 2 == 1).then_some((size, class % zspan::SHARDS))
    })
}

/// A mapped object is pinned, not locked: `map` and `unmap` of a live
/// object take no lock. Made while this test holds the lock of the
/// object's shard (a lock taken would deadlock, and lockdep say so), they
/// find the object's bytes (in its page, or, across a page boundary,
/// through the per-CPU buffer), for objects of several classes, in the
/// object table's second leaf too.
fn lockless_map(t: &mut Ktap) -> Result<(), &'static str> {
    let pool = new_pool(c_str!("test-lockless-map"))?;
    let sizes = [100usize, 1500, 2592, PAGE_SIZE - 200];
    let mut handles = KVec::new();
    for i in 0..300usize {
        let size = sizes[i % sizes.len()];
        let h = pool.malloc(size, GFP).map_err(|_| "malloc failed")?;
        let at = pool.map(h, MapMode::WriteOnly);
        if at.is_null() {
            return Err("map of a new object returned NULL");
        }
        // SAFETY: the object is mapped, `size` bytes at `at`.
        unsafe { core::ptr::write_bytes(at, i as u8, size) };
        pool.unmap(h);
        handles
            .push((h, size, i as u8), GFP_KERNEL)
            .map_err(|_| "no memory")?;
    }
    let mut checked = 0u32;
    for &(h, size, stamp) in handles.iter() {
        let addr = pool.map(h, MapMode::ReadOnly);
        pool.unmap(h);
        let (under, ends) = pool.while_locked(h, || {
            let a = pool.map(h, MapMode::ReadWrite);
            let ends = if a.is_null() {
                (0, 0)
            } else {
                // SAFETY: the object is mapped, `size` bytes at `a`.
                unsafe { (a.read(), a.add(size - 1).read()) }
            };
            pool.unmap(h);
            (a, ends)
        });
        if addr.is_null() || under.is_null() || ends != (stamp, stamp) {
            return Err("a map under the shard's lock failed or found other bytes");
        }
        checked += 1;
    }
    t.diag(format_args!(
        "{} objects mapped and unmapped while their shard's lock was held",
        checked
    ));
    let s = pool.stats();
    if s.bad_handles != 0 || s.mapped != 0 {
        return Err("a live handle was counted bad, or an object is left mapped");
    }
    pool.verify()?;
    let handles: KVec<u64> = {
        let mut v = KVec::new();
        for &(h, _, _) in handles.iter() {
            v.push(h, GFP_KERNEL).map_err(|_| "no memory")?;
        }
        v
    };
    zpool_test::free_all(&pool, &handles)
}

/// A small pool whose CPUs meet on its lock shards, whatever its size:
/// alone, a malloc of a class of shard `s != 0` goes to shard 0 and the
/// pool counts no contention; then CPU 1 verifies the pool in a loop
/// (holding the shards' locks) while CPU 0 allocates, until the pool has
/// counted [`zpool_pool::CONTENDED`] meetings; the same malloc then goes
/// to the shard of the CPU that makes it among the shards the pool's size
/// pays for ([`zspan::shards_in_use`]: 2 for this pool of about 1000
/// pages): shard 0 from CPU 0, shard 1 from CPU 1.
fn contended(t: &mut Ktap) -> Result<(), &'static str> {
    let pool = new_pool(c_str!("test-contended"))?;
    let (size, shard) = sharding_size().ok_or("no class outside shard 0")?;
    let mut sizes = KVec::new();
    let mut handles = KVec::new();
    for i in 0..2000usize {
        sizes
            .push(100 + (i * 37) % 3000, GFP_KERNEL_)
            .map_err(|_| "no memory")?;
        handles.push(0u64, GFP_KERNEL_).map_err(|_| "no memory")?;
    }
    zpool_test::store_all(&pool, &sizes, &mut handles)?;
    let before = pool.malloc(size, GFP).map_err(|_| "malloc failed")?;
    let before_shard = zspan::shard_of_handle(zspan::Handle::from_raw(before));
    pool.free(before);
    if before_shard != 0 || pool.contention() != 0 {
        return Err("a small pool used alone shards, or counts contention");
    }
    let meeting = Meeting {
        pool: &pool,
        stop: AtomicBool::new(false),
        finished: AtomicU32::new(0),
        verifies: AtomicU64::new(0),
        steps: AtomicU64::new(0),
        failed: AtomicBool::new(false),
    };
    {
        // SAFETY: `meeting` outlives both threads: they end on their own
        // and are joined at the end of this block (or dropped, which stops
        // them, on the way out).
        let a = unsafe { kthread::Thread::start(0, Meeting::allocator, &meeting) }
            .map_err(|_| "could not start the thread on CPU 0")?;
        // SAFETY: as above.
        let c = match unsafe { kthread::Thread::start(1, Meeting::checker, &meeting) } {
            Ok(c) => c,
            Err(_) => {
                while meeting.finished.load(Ordering::Acquire) < 1 {
                    kthread::usleep(1000);
                }
                return Err("could not start the thread on CPU 1");
            }
        };
        while meeting.finished.load(Ordering::Acquire) < 2 {
            kthread::usleep(1000);
        }
        if a.join() != 0 || c.join() != 0 {
            return Err("a thread did not run");
        }
    }
    let pages = pool.total_pages();
    let from = pool::shard_from_pages();
    // The same malloc on CPU 0 and on CPU 1, each in a thread bound there.
    let mut after = [0usize; 2];
    let mut expected = [0usize; 2];
    for (cpu, (got, want)) in after.iter_mut().zip(expected.iter_mut()).enumerate() {
        let h = malloc_on(&pool, size, cpu as u32)?;
        *got = zspan::shard_of_handle(zspan::Handle::from_raw(h));
        *want = zspan::shard_of_size(size, pages, from, true, cpu);
        pool.free(h);
    }
    t.diag(format_args!(
        "{} meetings on a lock counted over {} verifies and {} mallocs; a {}-byte object: shard {} alone, {} from CPU 0 and {} from CPU 1 after, in {} pages ({} shards in use; its class's shard of 8: {})",
        pool.contention(),
        meeting.verifies.load(Ordering::Relaxed),
        meeting.steps.load(Ordering::Relaxed),
        size,
        before_shard,
        after[0],
        after[1],
        pages,
        zspan::shards_in_use(pages, from, true),
        shard
    ));
    if meeting.failed.load(Ordering::Relaxed) {
        return Err("a verify or a malloc failed while the CPUs met");
    }
    if pool.contention() < zpool_pool::CONTENDED {
        return Err("the pool did not count the CPUs meeting on its lock");
    }
    if after != expected || after != [0, 1] {
        return Err("a contended pool did not put each CPU's stores in a shard of its own");
    }
    zpool_test::free_all(&pool, &handles)?;
    pool.verify()
}

struct TestZspanRs {
    _debugfs: debugfs::Dir,
    _areas: map_area::MapAreas,
}

impl kernel::Module for TestZspanRs {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let areas = map_area::MapAreas::new()?;
        let cases: [zpool_test::Case; 9] = [
            (
                "malloc, map and free: a full span of objects across pages, exact page count",
                round_trip,
            ),
            (
                "size 0 and highmem are EINVAL, above a page is ENOSPC",
                edges,
            ),
            (
                "bad handles are rejected and the pool stays intact",
                bad_handles,
            ),
            (
                "objects mapped on one CPU stay intact while the other churns and compacts",
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
            (
                "a pool past 4096 pages spreads its classes over its shards' locks",
                shards,
            ),
            (
                "a small pool whose CPUs meet on its lock spreads its classes too",
                contended,
            ),
        ];
        let root = zpool_test::run_cases(c_str!("test_zspan_rs"), &cases)?;
        Ok(TestZspanRs {
            _debugfs: root,
            _areas: areas,
        })
    }
}
