// SPDX-License-Identifier: GPL-2.0

//! Times zspan's operations on the host, on a zswap-like trace: a pool
//! grows to `N` objects of the benchmark's sizes, then churns (each step
//! frees a random object and stores a new one, mapping each once to write
//! it and once to read it back), then shrinks to nothing, as swap-ins free
//! entries. Prints nanoseconds per operation and the pool's pages, moves
//! and fill (`cargo run --release -p rkm-zspan --example ops [N]`); under
//! `perf record` it shows where the CPU goes. `NOCOPY=1` leaves out the
//! copies of object bytes (the pool's own work only, for callgrind);
//! `NOCOMPACT=1` skips the compaction after frees; `SMALL=1` stores small
//! objects (60 to 150 bytes); `FIFO=1` frees in about the order of the
//! stores (the oldest of the first 64 live objects at random, as zswap's
//! pages come back in about the order they went out); `SHARE=1` shares the
//! pool ([`Pool::share`]) and maps without the lock, as zspan_rs does.

// Host-only: the report's ratios are floating point.
#![allow(clippy::float_arithmetic)]

use std::alloc::{alloc, Layout};
use std::cell::RefCell;
use std::ptr::NonNull;
use std::sync::OnceLock;
use std::time::Instant;

use rkm_zalloc::{PageSource, PAGE_SIZE};
use rkm_zspan::{Handle, Mapping, Pool, Shared};

/// Pages from the host's allocator, recycled through a free list (as the
/// kernel's per-CPU page lists do): the page allocator's cost is not
/// zspan's.
#[derive(Clone, Copy)]
struct HostPages;

thread_local! {
    static FREE_PAGES: RefCell<Vec<NonNull<u8>>> = const { RefCell::new(Vec::new()) };
}

// SAFETY: `alloc` with a page's size and alignment gives a page-sized,
// page-aligned block, ours until `dealloc` with the same layout; a page on
// the free list is one that `free_page` got back, used by nobody.
unsafe impl PageSource for HostPages {
    type Flags = ();

    fn alloc_page(&self, _flags: ()) -> Option<NonNull<u8>> {
        if let Some(page) = FREE_PAGES.with(|f| f.borrow_mut().pop()) {
            return Some(page);
        }
        // SAFETY: the layout has a non-zero size.
        NonNull::new(unsafe { alloc(layout()) })
    }

    unsafe fn free_page(&self, page: NonNull<u8>) {
        FREE_PAGES.with(|f| f.borrow_mut().push(page));
    }
}

fn layout() -> Layout {
    Layout::from_size_align(PAGE_SIZE, PAGE_SIZE).unwrap_or(Layout::new::<u8>())
}

/// xorshift64*.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A size like the benchmark's mixed workload under lzo (text about 2.6
/// KiB, binary 2.9 KiB, patterned pages under 400 bytes); with `SMALL=1`,
/// like `make bench-zspan`'s *small* (60 to 150 bytes).
fn size(rng: &mut Rng) -> usize {
    if small() {
        return 60 + rng.below(91) as usize;
    }
    match rng.below(100) {
        0..=40 => 2200 + rng.below(900) as usize,
        41..=70 => 2500 + rng.below(900) as usize,
        _ => 40 + rng.below(360) as usize,
    }
}

/// Maps the object of `h`: without the lock if the pool shares `shared`.
fn map(pool: &mut Pool<HostPages>, shared: Option<&Shared>, h: Handle) -> Option<Mapping> {
    if let Some(shared) = shared {
        // SAFETY: `shared` is the pool's, which lives on; one thread, so
        // no node the pool drops is read after it is freed.
        if let Some(m) = unsafe { Pool::<HostPages>::map_lockless(shared, h) } {
            return Some(m);
        }
    }
    pool.map(h).ok()
}

/// Ends a [`map`].
fn unmap(pool: &mut Pool<HostPages>, shared: Option<&Shared>, h: Handle) {
    if !shared.is_some_and(|s| Pool::<HostPages>::unmap_lockless(s, h)) {
        let _ = pool.unmap(h);
    }
}

/// Stores an object: alloc, map, write, unmap.
fn store(
    pool: &mut Pool<HostPages>,
    shared: Option<&Shared>,
    rng: &mut Rng,
    buf: &[u8],
) -> Option<Handle> {
    let n = size(rng);
    let h = pool.alloc(n, ()).ok()?;
    let m = map(pool, shared, h)?;
    if !nocopy() {
        // SAFETY: the object is mapped, `len()` bytes at least `n`; `buf`
        // is a page.
        unsafe { m.copy_from(buf.as_ptr()) };
    }
    unmap(pool, shared, h);
    Some(h)
}

/// Loads an object and frees it: map, read, unmap, free.
fn load(pool: &mut Pool<HostPages>, shared: Option<&Shared>, h: Handle, buf: &mut [u8]) {
    if let Some(m) = map(pool, shared, h) {
        if !nocopy() {
            // SAFETY: as in `store`.
            unsafe { m.copy_to(buf.as_mut_ptr()) };
        }
        unmap(pool, shared, h);
    }
    let _ = pool.free(h);
    if !nocompact() {
        pool.after_free();
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let shared = Shared::new();
    let mut pool = Pool::new(HostPages);
    let shared = std::env::var_os("SHARE").map(|_| {
        // SAFETY: `shared` outlives the pool (declared before it).
        unsafe { pool.share(&shared) };
        &shared
    });
    let mut rng = Rng(0x5eed);
    let mut buf = vec![0x5au8; PAGE_SIZE];
    let mut live = Vec::with_capacity(n);
    let t = Instant::now();
    for _ in 0..n {
        if let Some(h) = store(&mut pool, shared, &mut rng, &buf) {
            live.push(h);
        }
    }
    let grow = t.elapsed();
    let peak = pool.stats();
    let t = Instant::now();
    let churn = 4 * n;
    let (mut churn_stored, mut churn_pages) = (0u64, 0u64);
    for step in 0..churn {
        let h = take(&mut live, &mut rng);
        load(&mut pool, shared, h, &mut buf);
        if let Some(h) = store(&mut pool, shared, &mut rng, &buf) {
            live.push(h);
        }
        if step % 100 == 0 {
            let s = pool.stats();
            churn_stored += s.objects;
            churn_pages += s.pages + s.table_pages;
        }
    }
    let churned = t.elapsed();
    let after_churn = pool.stats();
    let t = Instant::now();
    let mut stored = 0u64;
    let mut pages = 0u64;
    while !live.is_empty() {
        let h = take(&mut live, &mut rng);
        load(&mut pool, shared, h, &mut buf);
        if live.len() % 100 == 0 {
            let s = pool.stats();
            stored += s.objects;
            pages += s.pages + s.table_pages;
        }
    }
    let shrink = t.elapsed();
    let end = pool.stats();
    let per = |d: std::time::Duration, ops: usize| d.as_nanos() as f64 / ops.max(1) as f64;
    println!(
        "grow: {n} stores, {:.0} ns each; peak {} objects in {} pages + {} table pages ({:.2} objects a page)",
        per(grow, n),
        peak.objects,
        peak.pages,
        peak.table_pages,
        peak.objects as f64 / (peak.pages + peak.table_pages).max(1) as f64
    );
    println!(
        "churn: {churn} loads and stores, {:.0} ns a pair; {} objects in {} pages ({:.2} a page, {:.2} on average)",
        per(churned, churn),
        after_churn.objects,
        after_churn.pages + after_churn.table_pages,
        after_churn.objects as f64 / (after_churn.pages + after_churn.table_pages).max(1) as f64,
        churn_stored as f64 / churn_pages.max(1) as f64
    );
    println!(
        "shrink: {n} loads, {:.0} ns each; {:.2} objects a page on average while shrinking",
        per(shrink, n),
        stored as f64 / pages.max(1) as f64
    );
    println!(
        "moved {} objects, {} spans emptied by compaction; {} pages left",
        end.moved, end.spans_compacted, end.pages
    );
}

/// Takes the next object to load out of `live` (in store order): one at
/// random, or with `FIFO=1` one of the 64 oldest.
fn take(live: &mut Vec<Handle>, rng: &mut Rng) -> Handle {
    if fifo() {
        live.remove(rng.below(live.len().min(64) as u64) as usize)
    } else {
        live.swap_remove(rng.below(live.len() as u64) as usize)
    }
}

/// Whether `NOCOPY` is set: the trace then maps objects without copying
/// their bytes, and counts the pool's own work only.
fn nocopy() -> bool {
    static NOCOPY: OnceLock<bool> = OnceLock::new();
    env_flag(&NOCOPY, "NOCOPY")
}

/// Whether `NOCOMPACT` is set: frees are then not followed by compaction.
/// Read once (an environment lookup per free would cost more than the
/// free).
fn nocompact() -> bool {
    static NOCOMPACT: OnceLock<bool> = OnceLock::new();
    env_flag(&NOCOMPACT, "NOCOMPACT")
}

/// Whether `SMALL` is set: objects of 60 to 150 bytes. Read once.
fn small() -> bool {
    static SMALL: OnceLock<bool> = OnceLock::new();
    env_flag(&SMALL, "SMALL")
}

/// Whether `FIFO` is set: loads in about the order of the stores. Read
/// once.
fn fifo() -> bool {
    static FIFO: OnceLock<bool> = OnceLock::new();
    env_flag(&FIFO, "FIFO")
}

/// Whether the environment has `name`, looked up once into `cell`.
fn env_flag(cell: &OnceLock<bool>, name: &str) -> bool {
    *cell.get_or_init(|| std::env::var_os(name).is_some())
}
