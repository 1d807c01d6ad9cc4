// SPDX-License-Identifier: GPL-2.0

//! bench_zspan_rs: zspan_rs's CPU per operation against zsmalloc's, inside
//! the kernel, on one trace.
//!
//! `make bench-zswap` measures the whole of zswap, where the allocator is a
//! fraction of a percent of the time: its per-store CPU figures come from a
//! few hundred perf samples. This module times the allocators alone, with
//! thousands of times the signal: the zspan_rs pool through the same
//! [`ZpoolAllocator`] calls the driver's zpool callbacks make, and
//! zsmalloc through its exported API (`zs_malloc`, `zs_map_object`,
//! `zs_unmap_object`, `zs_free`: what `zs_zpool_*` call), with zswap's
//! allocation flags, one thread, the same sizes in the same order.
//!
//! Per workload (a range of object sizes) and backend, a run fills the
//! pool with `live` objects (each stored as zswap does: malloc, map for
//! writing, a stamp at each end of the object, unmap), then does [`STEPS`]
//! steps of zswap's life cycle (free a random object, store a new one in
//! its place, load another: map for reading, check its stamps, unmap),
//! then frees everything. Only the allocator's calls and the stamps are in
//! the loop: the compression and the copy of the object's bytes, which
//! zswap does whatever the allocator, are not (an object that crosses a
//! page boundary is still copied through a per-CPU buffer by either
//! allocator: that is the allocator's own work). The backends alternate
//! over [`ROUNDS`] rounds (which goes first alternates too); the table
//! gives the medians and the median of the per-round ratios, and the
//! pool pages each held after the steps (the same objects in both).
//! Loading the module runs it and prints the table; `bench/zspan.sh`
//! loads it on the perf kernel. The module then stays loaded until
//! `rmmod`.

use core::ffi::c_void;
use core::ptr::NonNull;
use kernel::alloc::flags::GFP_KERNEL;
use kernel::c_str;
use kernel::ffi::{c_char, c_ulong};
use kernel::prelude::*;
use kernel::time::Ktime;

// The pool's glue; the benchmark uses part of it (no debugfs root, no
// read-write maps).
#[allow(dead_code)]
#[path = "../kglue/debugfs.rs"]
mod debugfs;
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
#[path = "../zalloc/src/zalloc.rs"]
mod zalloc;
// The trait only: this module registers no driver.
#[allow(dead_code)]
#[path = "../kglue/zpool.rs"]
mod zpool;
#[path = "../kglue/zpool_pool.rs"]
mod zpool_pool;
#[allow(unreachable_pub, dead_code)]
#[path = "../zspan/src/zspan.rs"]
mod zspan;

use pool::ZspanPool;
use rng::Rng;
use zpool::{Gfp, MapMode, ZpoolAllocator};

module! {
    type: BenchZspanRs,
    name: "bench_zspan_rs",
    author: "rust-kmods",
    description: "Benchmark of the zspan_rs pool's CPU per operation against zsmalloc's",
    license: "GPL",
}

extern "C" {
    fn rkm_zswap_gfp() -> u32;
    fn rkm_zs_create(name: *const c_char) -> *mut c_void;
    fn rkm_zs_destroy(pool: *mut c_void);
    fn rkm_zs_malloc(pool: *mut c_void, size: usize) -> c_ulong;
    fn rkm_zs_free(pool: *mut c_void, handle: c_ulong);
    fn rkm_zs_map(pool: *mut c_void, handle: c_ulong, write: bool) -> *mut c_void;
    fn rkm_zs_unmap(pool: *mut c_void, handle: c_ulong);
    fn rkm_zs_total_pages(pool: *mut c_void) -> c_ulong;
}

/// Steps of the life cycle per run, after the fill.
const STEPS: usize = 100_000;
/// Rounds: each backend runs once a round.
const ROUNDS: usize = 5;
/// The trace's seed (each round's runs see the same sizes and choices).
const SEED: u64 = 0x25a4_0bec_0000_0001;

/// A range of object sizes and the objects kept live.
struct Workload {
    name: &'static str,
    min: usize,
    max: usize,
    live: usize,
}

/// The workloads: the average object of `make bench-zswap`'s *mixed* (2 KiB),
/// *large* (2 to 4 KiB: most objects cross a page boundary) and *small*
/// (about 100 bytes) workloads.
const WORKLOADS: [Workload; 3] = [
    Workload {
        name: "mixed",
        min: 100,
        max: 4000,
        live: 8192,
    },
    Workload {
        name: "large",
        min: 2048,
        max: 3800,
        live: 8192,
    },
    Workload {
        name: "small",
        min: 60,
        max: 150,
        live: 16384,
    },
];

/// What the benchmark drives: zswap's calls into its allocator.
trait Backend {
    const NAME: &'static str;
    /// A handle for `size` bytes, `None` if the allocator refused.
    fn malloc(&self, size: usize) -> Option<u64>;
    /// The object's address until [`Backend::unmap`]; null if refused.
    fn map(&self, handle: u64, write: bool) -> *mut u8;
    fn unmap(&self, handle: u64);
    fn free(&self, handle: u64);
    fn pages(&self) -> u64;
}

/// A zsmalloc pool.
///
/// # Invariants
///
/// `0` is a live `struct zs_pool`, which this value alone destroys.
struct Zsmalloc(NonNull<c_void>);

impl Zsmalloc {
    fn new() -> Result<Self, &'static str> {
        // SAFETY: the name is a NUL-terminated string that zsmalloc copies.
        let pool = unsafe { rkm_zs_create(c_str!("bench_zspan_rs").as_char_ptr()) };
        NonNull::new(pool)
            .map(Zsmalloc)
            .ok_or("zs_create_pool failed")
    }
}

impl Drop for Zsmalloc {
    fn drop(&mut self) {
        // SAFETY: the pool is live and nothing uses it after this (the
        // type invariant).
        unsafe { rkm_zs_destroy(self.0.as_ptr()) }
    }
}

impl Backend for Zsmalloc {
    const NAME: &'static str = "zsmalloc";

    fn malloc(&self, size: usize) -> Option<u64> {
        // SAFETY: the pool is live (the type invariant); any size is
        // checked by zs_malloc.
        let handle = unsafe { rkm_zs_malloc(self.0.as_ptr(), size) };
        (handle != 0).then_some(handle as u64)
    }

    fn map(&self, handle: u64, write: bool) -> *mut u8 {
        // SAFETY: the pool is live; the benchmark passes only handles this
        // pool gave and did not free, and unmaps each before the next map.
        unsafe { rkm_zs_map(self.0.as_ptr(), handle as c_ulong, write).cast() }
    }

    fn unmap(&self, handle: u64) {
        // SAFETY: as for `map`: `handle` is mapped.
        unsafe { rkm_zs_unmap(self.0.as_ptr(), handle as c_ulong) }
    }

    fn free(&self, handle: u64) {
        // SAFETY: as for `map`: `handle` is live and not mapped.
        unsafe { rkm_zs_free(self.0.as_ptr(), handle as c_ulong) }
    }

    fn pages(&self) -> u64 {
        // SAFETY: the pool is live.
        unsafe { rkm_zs_total_pages(self.0.as_ptr()) as u64 }
    }
}

/// A zspan_rs pool, driven as the driver's zpool callbacks drive it.
struct Zspan(Pin<KBox<ZspanPool>>, Gfp);

impl Zspan {
    fn new() -> Result<Self, &'static str> {
        // SAFETY: a constant of the C side.
        let gfp = Gfp(unsafe { rkm_zswap_gfp() });
        ZspanPool::create(c_str!("bench_zspan_rs"), gfp)
            .map(|pool| Zspan(pool, gfp))
            .map_err(|_| "zspan_rs pool create failed")
    }
}

impl Backend for Zspan {
    const NAME: &'static str = "zspan_rs";

    fn malloc(&self, size: usize) -> Option<u64> {
        self.0.malloc(size, self.1).ok()
    }

    fn map(&self, handle: u64, write: bool) -> *mut u8 {
        let mode = if write {
            MapMode::WriteOnly
        } else {
            MapMode::ReadOnly
        };
        self.0.map(handle, mode)
    }

    fn unmap(&self, handle: u64) {
        self.0.unmap(handle)
    }

    fn free(&self, handle: u64) {
        self.0.free(handle)
    }

    fn pages(&self) -> u64 {
        self.0.total_pages()
    }
}

fn now() -> i64 {
    Ktime::ktime_get().to_ns()
}

/// Nanoseconds per operation since `start`.
fn per_op(start: i64, ops: usize) -> u64 {
    (now().saturating_sub(start).max(0) as u64) / (ops.max(1) as u64)
}

/// The stamp of an object of `size` bytes in place `i`.
fn stamp(i: usize, size: usize) -> u32 {
    (i as u32).wrapping_mul(0x9e37_79b9) ^ (size as u32)
}

/// Stores an object of `size` bytes as zswap does (malloc, map for
/// writing, unmap), with a stamp at each end.
fn store<B: Backend>(b: &B, i: usize, size: usize) -> Result<u64, &'static str> {
    let handle = b.malloc(size).ok_or("malloc failed")?;
    let p = b.map(handle, true);
    if p.is_null() {
        return Err("map for writing failed");
    }
    let s = stamp(i, size);
    // SAFETY: the object is mapped, `size` (at least 60) bytes at `p`.
    unsafe {
        p.cast::<u32>().write_unaligned(s);
        p.add(size - 4).cast::<u32>().write_unaligned(s);
    }
    b.unmap(handle);
    Ok(handle)
}

/// Loads the object in place `i` (map for reading, check, unmap).
fn load<B: Backend>(b: &B, handle: u64, i: usize, size: usize) -> Result<(), &'static str> {
    let p = b.map(handle, false);
    if p.is_null() {
        return Err("map for reading failed");
    }
    let s = stamp(i, size);
    // SAFETY: the object is mapped, `size` bytes at `p`.
    let ok = unsafe {
        p.cast::<u32>().read_unaligned() == s && p.add(size - 4).cast::<u32>().read_unaligned() == s
    };
    b.unmap(handle);
    if ok {
        Ok(())
    } else {
        Err("an object's bytes changed")
    }
}

/// One run's times (ns per object or per step) and pages.
#[derive(Clone, Copy, Default)]
struct Run {
    fill: u64,
    step: u64,
    drain: u64,
    pages: u64,
}

/// A size of workload `w`.
fn size_of(rng: &mut Rng, w: &Workload) -> usize {
    w.min + rng.below((w.max - w.min + 1) as u64) as usize
}

/// One run of workload `w` on `b`, a new pool; `handles` and `sizes`
/// (empty, with room for `w.live`) end with the objects still live if it
/// fails.
fn run<B: Backend>(
    b: &B,
    w: &Workload,
    handles: &mut KVec<u64>,
    sizes: &mut KVec<usize>,
) -> Result<Run, &'static str> {
    let mut rng = Rng::new(SEED);
    let mut r = Run::default();
    let t = now();
    for i in 0..w.live {
        let size = size_of(&mut rng, w);
        let handle = store(b, i, size)?;
        handles.push(handle, GFP_KERNEL).map_err(|_| "no memory")?;
        sizes.push(size, GFP_KERNEL).map_err(|_| "no memory")?;
    }
    r.fill = per_op(t, w.live);
    let t = now();
    for _ in 0..STEPS {
        let i = rng.below(w.live as u64) as usize;
        let size = size_of(&mut rng, w);
        let (h, s) = handles.get_mut(i).zip(sizes.get_mut(i)).ok_or("index")?;
        b.free(*h);
        *h = 0;
        *h = store(b, i, size)?;
        *s = size;
        let j = rng.below(w.live as u64) as usize;
        let (&h, &s) = handles.get(j).zip(sizes.get(j)).ok_or("index")?;
        load(b, h, j, s)?;
    }
    r.step = per_op(t, STEPS);
    r.pages = b.pages();
    let t = now();
    for h in handles.iter_mut() {
        b.free(*h);
        *h = 0;
    }
    r.drain = per_op(t, w.live);
    Ok(r)
}

/// A run of `B` on a pool of its own, created and destroyed around it.
fn run_new<B: Backend>(
    make: fn() -> Result<B, &'static str>,
    w: &Workload,
) -> Result<Run, &'static str> {
    let mut handles = KVec::with_capacity(w.live, GFP_KERNEL).map_err(|_| "no memory")?;
    let mut sizes = KVec::with_capacity(w.live, GFP_KERNEL).map_err(|_| "no memory")?;
    let b = make()?;
    let r = run(&b, w, &mut handles, &mut sizes);
    if r.is_err() {
        // Not to destroy the pool with objects in it: free what is live.
        for &h in handles.iter().filter(|&&h| h != 0) {
            b.free(h);
        }
    }
    r
}

/// Sorts the few values of `v` (an insertion sort: `core`'s sorts bring
/// panicking paths that objtool flags in a module).
fn sort(v: &mut [u64]) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 && v.get(j - 1) > v.get(j) {
            v.swap(j - 1, j);
            j -= 1;
        }
    }
}

/// The median of `v` (sorted in place).
fn median(v: &mut [u64]) -> u64 {
    sort(v);
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// `a / b` as hundredths.
fn ratio(a: u64, b: u64) -> u64 {
    a.saturating_mul(100) / b.max(1)
}

fn bench(w: &Workload) -> Result<(), &'static str> {
    let mut zs = [Run::default(); ROUNDS];
    let mut ours = [Run::default(); ROUNDS];
    for round in 0..ROUNDS {
        let (a, b) = (zs.get_mut(round), ours.get_mut(round));
        let (Some(a), Some(b)) = (a, b) else { break };
        if round % 2 == 0 {
            *a = run_new(Zsmalloc::new, w)?;
            *b = run_new(Zspan::new, w)?;
        } else {
            *b = run_new(Zspan::new, w)?;
            *a = run_new(Zsmalloc::new, w)?;
        }
    }
    let field = |runs: &[Run; ROUNDS], f: fn(&Run) -> u64| {
        let mut v = [0u64; ROUNDS];
        for (o, r) in v.iter_mut().zip(runs.iter()) {
            *o = f(r);
        }
        median(&mut v)
    };
    let mut paired = [0u64; ROUNDS];
    for ((p, a), b) in paired.iter_mut().zip(zs.iter()).zip(ours.iter()) {
        *p = ratio(b.step, a.step);
    }
    let step_ratio = median(&mut paired);
    let row = |name: &str, runs: &[Run; ROUNDS]| {
        pr_info!(
            "| {:<8} | {:<8} | {:>9} | {:>8} | {:>8} | {:>6} |\n",
            w.name,
            name,
            field(runs, |r| r.step),
            field(runs, |r| r.fill),
            field(runs, |r| r.drain),
            field(runs, |r| r.pages)
        );
    };
    row(Zsmalloc::NAME, &zs);
    row(Zspan::NAME, &ours);
    let (zs_pages, our_pages) = (field(&zs, |r| r.pages), field(&ours, |r| r.pages));
    let density = ratio(zs_pages, our_pages);
    let step_range = {
        let mut v = paired;
        sort(&mut v);
        (
            v.first().copied().unwrap_or(0),
            v.last().copied().unwrap_or(0),
        )
    };
    pr_info!(
        "{}: zspan_rs/zsmalloc ns per step {}.{:02} (median of {} rounds' ratios, {}.{:02} to {}.{:02}); density (zsmalloc pages / zspan_rs pages) {}.{:02}\n",
        w.name,
        step_ratio / 100,
        step_ratio % 100,
        ROUNDS,
        step_range.0 / 100,
        step_range.0 % 100,
        step_range.1 / 100,
        step_range.1 % 100,
        density / 100,
        density % 100
    );
    Ok(())
}

struct BenchZspanRs {
    _areas: map_area::MapAreas,
}

impl kernel::Module for BenchZspanRs {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let areas = map_area::MapAreas::new()?;
        pr_info!(
            "zspan_rs against zsmalloc, one thread: ns per step (free, store, load), per object filled and drained; pool pages after the steps; medians of {} rounds of {} steps\n",
            ROUNDS,
            STEPS
        );
        pr_info!("| workload | backend  |   ns/step | ns/fill | ns/drain |  pages |\n");
        pr_info!("|----------|----------|-----------|----------|----------|--------|\n");
        for w in &WORKLOADS {
            if let Err(e) = bench(w) {
                pr_err!("{}: {}\n", w.name, e);
                return Err(EINVAL);
            }
        }
        Ok(BenchZspanRs { _areas: areas })
    }
}
