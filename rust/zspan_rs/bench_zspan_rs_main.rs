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
//! A third row, zbud_rs's (two objects a page: for scale, not a peer),
//! times the glue's lockless `map` and `unmap` path
//! (`Core::LOCKLESS_MAP`) on the same trace, its sizes capped at zbud's
//! largest object (3968 bytes).
//! Loading the module runs it and prints the table; `bench/zspan.sh`
//! loads it on the perf kernel. The module then stays loaded until
//! `rmmod`.

use core::cell::Cell;
use core::ffi::c_void;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
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
// Threads and a sleep; not the busy-waits.
#[allow(dead_code)]
#[path = "../kglue/kthread.rs"]
mod kthread;
#[path = "../kglue/map_area.rs"]
mod map_area;
#[path = "../kglue/pages.rs"]
mod pages;
// The drivers' `Core` impls; not their pool aliases (`Driver` names the
// cores).
#[allow(dead_code)]
#[path = "pool.rs"]
mod pool;
#[path = "../kglue/rng.rs"]
mod rng;
// The cores' public API is the host crates'; a module uses part of it.
#[allow(unreachable_pub, dead_code)]
#[path = "../zalloc/src/zalloc.rs"]
mod zalloc;
// The trait only: this module registers no driver.
#[allow(unreachable_pub, dead_code)]
#[path = "../zbud/src/zbud.rs"]
mod zbud;
#[allow(dead_code)]
#[path = "../zbud_rs/pool.rs"]
mod zbud_pool;
#[allow(dead_code)]
#[path = "../kglue/zpool.rs"]
mod zpool;
#[path = "../kglue/zpool_pool.rs"]
mod zpool_pool;
#[allow(unreachable_pub, dead_code)]
#[path = "../zspan/src/zspan.rs"]
mod zspan;

use pages::KernelPages;
use rng::Rng;
use zpool::{Gfp, MapMode, ZpoolAllocator};
use zpool_pool::{Core, LockedPool};

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
/// Threads of the concurrent runs, on CPUs 0 and 1 (the bench guest's).
const THREADS: usize = 2;
/// The trace's seed (each round's runs see the same sizes and choices).
const SEED: u64 = 0x25a4_0bec_0000_0001;

/// A range of object sizes and the objects kept live.
#[derive(Clone, Copy)]
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
    /// Objects moved by compaction so far (none for zsmalloc, which
    /// compacts only when asked: zswap's shrinker).
    fn moved(&self) -> u64 {
        0
    }
    /// The steps begin (`true`) or end (`false`): for [`Timed`].
    fn steps(&self, _on: bool) {}
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

// SAFETY: zsmalloc's calls may come from any CPU at once (zswap's do);
// the pool pointer itself is never changed.
unsafe impl Sync for Zsmalloc {}

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

/// A core the benchmark drives through the glue, as its driver's zpool
/// callbacks do: its row's name, and what its compaction moved.
trait Driven: Core {
    const NAME: &'static str;
    fn moved(_stats: &Self::Stats) -> u64 {
        0
    }
}

impl Driven for zspan::Pool<KernelPages> {
    const NAME: &'static str = "zspan_rs";
    fn moved(stats: &Self::Stats) -> u64 {
        stats.moved
    }
}

impl Driven for zbud::Pool<KernelPages> {
    const NAME: &'static str = "zbud_rs";
}

/// A pool of one of this project's drivers, with zswap's flags.
struct Driver<C: Core>(Pin<KBox<LockedPool<C>>>, Gfp);

/// zspan_rs's pool.
type Zspan = Driver<zspan::Pool<KernelPages>>;
/// zbud_rs's pool (two objects a page: for scale).
type Zbud = Driver<zbud::Pool<KernelPages>>;

/// The largest object of zbud (a page less its header chunk and a chunk).
const ZBUD_MAX_SIZE: usize = 4096 - 128;

impl<C: Driven> Driver<C> {
    fn new() -> Result<Self, &'static str> {
        // SAFETY: a constant of the C side.
        let gfp = Gfp(unsafe { rkm_zswap_gfp() });
        LockedPool::<C>::create(c_str!("bench_zspan_rs"), gfp)
            .map(|pool| Driver(pool, gfp))
            .map_err(|_| "pool create failed")
    }
}

impl<C: Driven> Backend for Driver<C> {
    const NAME: &'static str = C::NAME;

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

    fn moved(&self) -> u64 {
        C::moved(&self.0.stats())
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

/// The calls [`Timed`] times apart: `free`, `malloc`, `map` for writing
/// and its `unmap`, `map` for reading and its `unmap`.
const OPS: [&str; 6] = ["free", "malloc", "map(w)", "unmap(w)", "map(r)", "unmap(r)"];

/// A backend whose calls during the steps are timed one by one: ns per
/// call of each of [`OPS`], with the cost of reading the clock taken off.
/// A run of its own, after the rounds (the clock's reads would add to the
/// steps' times). Under `BENCH_ZSPAN_ICOUNT=1`, where a nanosecond is an
/// instruction, this is where a step's instructions go.
struct Timed<'a, B> {
    b: &'a B,
    on: Cell<bool>,
    /// The last map was for writing: which `unmap` its unmap is.
    wrote: Cell<bool>,
    ns: [Cell<u64>; OPS.len()],
    calls: [Cell<u64>; OPS.len()],
    /// ns of two reads of the clock back to back.
    clock: i64,
}

impl<'a, B: Backend> Timed<'a, B> {
    fn new(b: &'a B) -> Self {
        const READS: i64 = 1000;
        let t = now();
        for _ in 0..READS {
            core::hint::black_box(now());
        }
        let clock = now().saturating_sub(t) / READS;
        Timed {
            b,
            on: Cell::new(false),
            wrote: Cell::new(false),
            ns: [const { Cell::new(0) }; OPS.len()],
            calls: [const { Cell::new(0) }; OPS.len()],
            clock,
        }
    }

    /// Calls `f`, timed as `op` during the steps.
    fn time<R>(&self, op: usize, f: impl FnOnce() -> R) -> R {
        if !self.on.get() {
            return f();
        }
        let t = now();
        let r = f();
        let ns = now().saturating_sub(t).saturating_sub(self.clock).max(0) as u64;
        if let (Some(n), Some(c)) = (self.ns.get(op), self.calls.get(op)) {
            n.set(n.get().wrapping_add(ns));
            c.set(c.get().wrapping_add(1));
        }
        r
    }

    /// ns per call of each of [`OPS`].
    fn per_call(&self) -> [u64; OPS.len()] {
        let mut out = [0; OPS.len()];
        for ((o, n), c) in out.iter_mut().zip(&self.ns).zip(&self.calls) {
            *o = n.get() / c.get().max(1);
        }
        out
    }
}

impl<B: Backend> Backend for Timed<'_, B> {
    const NAME: &'static str = B::NAME;

    fn malloc(&self, size: usize) -> Option<u64> {
        self.time(1, || self.b.malloc(size))
    }

    fn map(&self, handle: u64, write: bool) -> *mut u8 {
        self.wrote.set(write);
        self.time(if write { 2 } else { 4 }, || self.b.map(handle, write))
    }

    fn unmap(&self, handle: u64) {
        let op = if self.wrote.get() { 3 } else { 5 };
        self.time(op, || self.b.unmap(handle))
    }

    fn free(&self, handle: u64) {
        self.time(0, || self.b.free(handle))
    }

    fn pages(&self) -> u64 {
        self.b.pages()
    }

    fn moved(&self) -> u64 {
        self.b.moved()
    }

    fn steps(&self, on: bool) {
        self.on.set(on);
    }
}

/// One run of `B` on a new pool, its calls timed one by one ([`Timed`]):
/// prints ns per call of each of [`OPS`].
fn run_timed<B: Backend>(
    make: fn() -> Result<B, &'static str>,
    w: &Workload,
) -> Result<(), &'static str> {
    let b = make()?;
    let timed = Timed::new(&b);
    run_alone(&timed, w, w.live, SEED)?;
    let ns = timed.per_call();
    let [free, malloc, map_w, unmap_w, map_r, unmap_r] = ns;
    pr_info!(
        "{}: {} ns a call during the steps: {} {}, {} {}, {} {}, {} {}, {} {}, {} {} (sum {})\n",
        w.name,
        B::NAME,
        OPS[0],
        free,
        OPS[1],
        malloc,
        OPS[2],
        map_w,
        OPS[3],
        unmap_w,
        OPS[4],
        map_r,
        OPS[5],
        unmap_r,
        ns.iter().sum::<u64>()
    );
    Ok(())
}

/// One run's times (ns per object or per step) and pages.
#[derive(Clone, Copy, Default)]
struct Run {
    fill: u64,
    step: u64,
    drain: u64,
    pages: u64,
    /// Objects compaction moved during the steps, per 1000 steps.
    moved: u64,
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
    live: usize,
    seed: u64,
    handles: &mut KVec<u64>,
    sizes: &mut KVec<usize>,
) -> Result<Run, &'static str> {
    let mut rng = Rng::new(seed);
    let mut r = Run::default();
    let t = now();
    for i in 0..live {
        let size = size_of(&mut rng, w);
        let handle = store(b, i, size)?;
        handles.push(handle, GFP_KERNEL).map_err(|_| "no memory")?;
        sizes.push(size, GFP_KERNEL).map_err(|_| "no memory")?;
    }
    r.fill = per_op(t, live);
    let moved = b.moved();
    b.steps(true);
    let t = now();
    for _ in 0..STEPS {
        let i = rng.below(live as u64) as usize;
        let size = size_of(&mut rng, w);
        let (h, s) = handles.get_mut(i).zip(sizes.get_mut(i)).ok_or("index")?;
        b.free(*h);
        *h = 0;
        *h = store(b, i, size)?;
        *s = size;
        let j = rng.below(live as u64) as usize;
        let (&h, &s) = handles.get(j).zip(sizes.get(j)).ok_or("index")?;
        load(b, h, j, s)?;
    }
    r.step = per_op(t, STEPS);
    b.steps(false);
    r.pages = b.pages();
    r.moved = b.moved().wrapping_sub(moved).saturating_mul(1000) / STEPS as u64;
    let t = now();
    for h in handles.iter_mut() {
        b.free(*h);
        *h = 0;
    }
    r.drain = per_op(t, live);
    Ok(r)
}

/// [`run`] with vectors of its own: `live` objects from `seed`; frees what
/// is live if it fails (the pool is not destroyed with objects in it).
fn run_alone<B: Backend>(b: &B, w: &Workload, live: usize, seed: u64) -> Result<Run, &'static str> {
    let mut handles = KVec::with_capacity(live, GFP_KERNEL).map_err(|_| "no memory")?;
    let mut sizes = KVec::with_capacity(live, GFP_KERNEL).map_err(|_| "no memory")?;
    let r = run(b, w, live, seed, &mut handles, &mut sizes);
    if r.is_err() {
        for &h in handles.iter().filter(|&&h| h != 0) {
            b.free(h);
        }
    }
    r
}

/// A run of `B` on a pool of its own, created and destroyed around it.
fn run_new<B: Backend>(
    make: fn() -> Result<B, &'static str>,
    w: &Workload,
) -> Result<Run, &'static str> {
    let b = make()?;
    run_alone(&b, w, w.live, SEED)
}

/// What each of the threads of [`run_threads`] shares: the pool and the
/// workload, and where it leaves its time per step (0 if it failed).
struct Shared<'a, B> {
    b: &'a B,
    w: &'a Workload,
    step: [AtomicU64; THREADS],
    /// Threads that have returned: joined only then, since a thread
    /// stopped before it first ran would never run.
    finished: AtomicU32,
}

/// Thread `i` of [`run_threads`]: its share of the objects, its own trace.
fn thread<B: Backend + Sync, const I: usize>(s: &Shared<'_, B>) -> i32 {
    let seed = SEED ^ (I as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let r = match run_alone(s.b, s.w, s.w.live / THREADS, seed) {
        Ok(r) => {
            if let Some(slot) = s.step.get(I) {
                slot.store(r.step.max(1), Ordering::Relaxed);
            }
            0
        }
        Err(e) => {
            pr_err!("{}: thread {}: {}\n", s.w.name, I, e);
            -1
        }
    };
    s.finished.fetch_add(1, Ordering::Release);
    r
}

/// [`THREADS`] threads, one per CPU, each with its share of the objects
/// and a trace of its own, on one pool of `B`: the slower thread's ns per
/// step (what contention for the pool's locks costs shows as the excess
/// over one thread's).
fn run_threads<B: Backend + Sync>(
    make: fn() -> Result<B, &'static str>,
    w: &Workload,
) -> Result<u64, &'static str> {
    let b = make()?;
    let shared = Shared {
        b: &b,
        w,
        step: [const { AtomicU64::new(0) }; THREADS],
        finished: AtomicU32::new(0),
    };
    let f: [fn(&Shared<'_, B>) -> i32; THREADS] = [thread::<B, 0>, thread::<B, 1>];
    let mut started = KVec::with_capacity(THREADS, GFP_KERNEL).map_err(|_| "no memory")?;
    for (cpu, f) in f.into_iter().enumerate() {
        // SAFETY: `shared` outlives the threads: each is joined below (or
        // dropped, which stops it, with `started`, before `shared`).
        let t = unsafe { kthread::Thread::start(cpu as u32, f, &shared) }
            .map_err(|_| "cannot start a thread")?;
        started.push(t, GFP_KERNEL).map_err(|_| "no memory")?;
    }
    // Both threads end on their own: wait for that before joining.
    while shared.finished.load(Ordering::Acquire) < THREADS as u32 {
        kthread::usleep(1000);
    }
    let mut failed = false;
    for t in started {
        failed |= t.join() != 0;
    }
    let slowest = shared.step.iter().map(|s| s.load(Ordering::Relaxed)).max();
    match slowest {
        Some(step) if !failed && step != 0 => Ok(step),
        _ => Err("a thread failed"),
    }
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

/// A ratio in hundredths, shown as `1.23`.
struct Hundredths(u64);

impl core::fmt::Display for Hundredths {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

/// The median of the ratios `ours[i] / theirs[i]` (hundredths), and their
/// range.
fn paired(ours: &[u64; ROUNDS], theirs: &[u64; ROUNDS]) -> (u64, u64, u64) {
    let mut v = [0u64; ROUNDS];
    for ((p, &a), &b) in v.iter_mut().zip(ours.iter()).zip(theirs.iter()) {
        *p = ratio(a, b);
    }
    let m = median(&mut v);
    (
        m,
        v.first().copied().unwrap_or(0),
        v.last().copied().unwrap_or(0),
    )
}

fn bench(w: &Workload) -> Result<(), &'static str> {
    let mut zs = [Run::default(); ROUNDS];
    let mut ours = [Run::default(); ROUNDS];
    let mut zs_threads = [0u64; ROUNDS];
    let mut our_threads = [0u64; ROUNDS];
    let mut zbud = [Run::default(); ROUNDS];
    let mut zbud_threads = [0u64; ROUNDS];
    // zbud takes objects of up to 3968 bytes.
    let capped = Workload {
        max: w.max.min(ZBUD_MAX_SIZE),
        ..*w
    };
    for round in 0..ROUNDS {
        if let (Some(z), Some(tz)) = (zbud.get_mut(round), zbud_threads.get_mut(round)) {
            *z = run_new(Zbud::new, &capped)?;
            *tz = run_threads(Zbud::new, &capped)?;
        }
        let (Some(a), Some(b), Some(ta), Some(tb)) = (
            zs.get_mut(round),
            ours.get_mut(round),
            zs_threads.get_mut(round),
            our_threads.get_mut(round),
        ) else {
            break;
        };
        if round % 2 == 0 {
            *a = run_new(Zsmalloc::new, w)?;
            *b = run_new(Zspan::new, w)?;
            *ta = run_threads(Zsmalloc::new, w)?;
            *tb = run_threads(Zspan::new, w)?;
        } else {
            *tb = run_threads(Zspan::new, w)?;
            *ta = run_threads(Zsmalloc::new, w)?;
            *b = run_new(Zspan::new, w)?;
            *a = run_new(Zsmalloc::new, w)?;
        }
    }
    let field = |runs: &[Run; ROUNDS], f: fn(&Run) -> u64| {
        let mut v = [0u64; ROUNDS];
        for (o, r) in v.iter_mut().zip(runs.iter()) {
            *o = f(r);
        }
        v
    };
    let med = |runs: &[Run; ROUNDS], f: fn(&Run) -> u64| median(&mut field(runs, f));
    let row = |name: &str, runs: &[Run; ROUNDS], threads: &[u64; ROUNDS]| {
        pr_info!(
            "| {:<8} | {:<8} | {:>7} | {:>7} | {:>8} | {:>6} | {:>10} | {:>9} |\n",
            w.name,
            name,
            med(runs, |r| r.step),
            med(runs, |r| r.fill),
            med(runs, |r| r.drain),
            med(runs, |r| r.pages),
            med(runs, |r| r.moved),
            median(&mut threads.clone())
        );
    };
    row(Zsmalloc::NAME, &zs, &zs_threads);
    row(Zspan::NAME, &ours, &our_threads);
    row(Zbud::NAME, &zbud, &zbud_threads);
    let density = ratio(med(&zs, |r| r.pages), med(&ours, |r| r.pages));
    let (one, one_min, one_max) = paired(&field(&ours, |r| r.step), &field(&zs, |r| r.step));
    let (two, two_min, two_max) = paired(&our_threads, &zs_threads);
    pr_info!(
        "{}: zspan_rs/zsmalloc ns per step {} (median of {} rounds' ratios, {} to {}), {} threads {} ({} to {}); density (zsmalloc pages / zspan_rs pages) {}\n",
        w.name,
        Hundredths(one),
        ROUNDS,
        Hundredths(one_min),
        Hundredths(one_max),
        THREADS,
        Hundredths(two),
        Hundredths(two_min),
        Hundredths(two_max),
        Hundredths(density)
    );
    run_timed(Zsmalloc::new, w)?;
    run_timed(Zspan::new, w)?;
    Ok(())
}

struct BenchZspanRs {
    _areas: map_area::MapAreas,
}

impl kernel::Module for BenchZspanRs {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let areas = map_area::MapAreas::new()?;
        pr_info!(
            "zspan_rs against zsmalloc: ns per step (free, store, load), per object filled and drained, one thread; pool pages after the steps; objects compaction moved per 1000 steps; ns per step of the slower of {} threads on one pool, each with half the objects; medians of {} rounds of {} steps\n",
            THREADS,
            ROUNDS,
            STEPS
        );
        pr_info!("| workload | backend  | ns/step | ns/fill | ns/drain |  pages | moved/1000 | 2 threads |\n");
        pr_info!("|----------|----------|---------|---------|----------|--------|------------|-----------|\n");
        for w in &WORKLOADS {
            if let Err(e) = bench(w) {
                pr_err!("{}: {}\n", w.name, e);
                return Err(EINVAL);
            }
        }
        Ok(BenchZspanRs { _areas: areas })
    }
}
