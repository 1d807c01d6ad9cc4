// SPDX-License-Identifier: GPL-2.0

//! What the zpool drivers' test modules share: object patterns, the cases
//! every driver runs (invalid requests, bad handles, the leak report, page
//! allocation failures inside `malloc`), the concurrency case that maps
//! objects on one CPU while the other CPU frees and allocates around them
//! (for z3fold_rs: forcing compactions of pages whose objects are mapped),
//! and the expected-WARN windows around the calls that WARN on purpose.
//!
//! The cases drive a [`LockedPool`] through [`ZpoolAllocator`], as zswap's
//! trampolines do. The module's C file includes `zpool_test.c.inc`.
//!
//! # Expected WARNs
//!
//! A pool WARNs (from `rkm_warn` in `warn.c.inc`) at its first bad handle
//! and when it is destroyed while not empty. The cases that provoke those
//! make the one call that must WARN inside [`expect_warn`], which prints
//! `rkm-expect: begin warn=1 at=<rkm_warn in this module>` before it and
//! `rkm-expect: end` after it: the harness excuses exactly one WARN from
//! there between the two lines, and nothing else (`scripts/kreport.py`).
//!
//! # Allocation failures
//!
//! [`alloc_failures`] makes the page allocations inside one `malloc` fail
//! in turn through the task's fail-nth (the kernel's fault injection, as
//! `/proc/self/fail-nth` sets it), so it needs `fail_page_alloc` to
//! consider order-0 pages: `tests/zpool/edges.sh` sets its `min-order` to
//! 0 before loading the module.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use kernel::alloc::flags::GFP_KERNEL;
use kernel::ffi::c_uint;
use kernel::prelude::*;

use crate::debugfs::Dir;
use crate::ktap::Ktap;
use crate::kthread::{pause, usleep, Thread};
use crate::rng::Rng;
use crate::zpool::{Gfp, MapMode, ZpoolAllocator};
use crate::zpool_pool::{Core, LockedPool, LEAKS};

extern "C" {
    fn rkm_fail_nth_set(n: c_uint) -> bool;
    fn rkm_fail_nth_get() -> c_uint;
}

/// This module's name, as the kernel prints it after a symbol
/// (`rkm_warn+0x1c/0x30 [test_zbud_rs]`): the prefix of its log lines.
fn module_name() -> &'static str {
    let prefix = crate::__LOG_PREFIX;
    let name = prefix.strip_suffix(b"\0").unwrap_or(prefix);
    core::str::from_utf8(name).unwrap_or("?")
}

/// Runs `f`, which must WARN exactly once, from this module's `rkm_warn`,
/// inside an expected-WARN window (see *Expected WARNs*): `f` should be the
/// one call that WARNs.
pub(crate) fn expect_warn<R>(f: impl FnOnce() -> R) -> R {
    pr_info!(
        "rkm-expect: begin warn=1 at=rkm_warn\\+0x[0-9a-f]+/0x[0-9a-f]+ \\[{}\\]\n",
        module_name()
    );
    let r = f();
    pr_info!("rkm-expect: end\n");
    r
}

/// One case of a test module: its KTAP description and its body, which
/// returns why it failed.
pub(crate) type Case = (&'static str, fn(&mut Ktap) -> Result<(), &'static str>);

/// Runs a zpool driver's test module: `cases` in order, as one KTAP plan,
/// with the pools' debugfs directories under `root`. Returns the directory
/// (for the module to keep until it is unloaded) if every case passed, and
/// `EINVAL` (the load fails) otherwise.
pub(crate) fn run_cases(root: &'static CStr, cases: &[Case]) -> Result<Dir> {
    let root = Dir::new(root, None);
    // SAFETY: every pool of the cases is dropped before `run_cases`
    // returns, and the slot is cleared before `root` can be dropped.
    unsafe { crate::zpool_pool::DEBUGFS_ROOT.set(&root) };
    let mut t = Ktap::new(u32::try_from(cases.len()).unwrap_or(u32::MAX));
    for (desc, case) in cases {
        let r = case(&mut t);
        t.result(desc, r);
    }
    crate::zpool_pool::DEBUGFS_ROOT.clear();
    if t.finish() {
        Ok(root)
    } else {
        Err(EINVAL)
    }
}

/// The flags of every test allocation.
pub(crate) const GFP: Gfp = Gfp(kernel::bindings::GFP_KERNEL);

/// The byte at offset `i` of an object filled with `seed`.
fn pattern(i: usize, seed: u64) -> u8 {
    ((i as u64).wrapping_mul(31) ^ seed ^ (seed >> 8)) as u8
}

/// Fills object `h` of `size` bytes with the pattern of `seed`.
pub(crate) fn fill<C: Core>(
    pool: &LockedPool<C>,
    h: u64,
    size: usize,
    seed: u64,
) -> Result<(), &'static str> {
    let p = pool.map(h, MapMode::WriteOnly);
    if p.is_null() {
        return Err("map of a live handle returned NULL");
    }
    for i in 0..size {
        // SAFETY: `p` maps a live object of `size` bytes until `unmap`.
        unsafe { p.add(i).write(pattern(i, seed)) };
    }
    pool.unmap(h);
    Ok(())
}

/// Checks the pattern of [`fill`] in a mapped object.
///
/// # Safety
///
/// `p` maps an object of at least `size` bytes.
unsafe fn matches(p: *const u8, size: usize, seed: u64) -> bool {
    // SAFETY: by the caller's contract.
    (0..size).all(|i| unsafe { p.add(i).read() } == pattern(i, seed))
}

/// Checks the pattern of [`fill`].
pub(crate) fn check<C: Core>(
    pool: &LockedPool<C>,
    h: u64,
    size: usize,
    seed: u64,
) -> Result<(), &'static str> {
    let p = pool.map(h, MapMode::ReadOnly);
    if p.is_null() {
        return Err("map of a live handle returned NULL");
    }
    // SAFETY: `p` maps a live object of `size` bytes until `unmap`.
    let ok = unsafe { matches(p, size, seed) };
    pool.unmap(h);
    if ok {
        Ok(())
    } else {
        Err("an object's bytes changed")
    }
}

/// Allocates an object of each of `sizes` into `handles`, fills each with
/// the pattern of its index, then checks them all.
pub(crate) fn store_all<C: Core>(
    pool: &LockedPool<C>,
    sizes: &[usize],
    handles: &mut [u64],
) -> Result<(), &'static str> {
    for (i, (&size, h)) in sizes.iter().zip(handles.iter_mut()).enumerate() {
        *h = pool.malloc(size, GFP).map_err(|_| "malloc failed")?;
        fill(pool, *h, size, i as u64)?;
    }
    for (i, (&size, &h)) in sizes.iter().zip(handles.iter()).enumerate() {
        check(pool, h, size, i as u64)?;
    }
    Ok(())
}

/// Frees `handles`, the pool's last objects: the pool must then hold no
/// object and no page, its slot table's included (the table gives its
/// leaves back as they empty, and its interior nodes with the last one).
pub(crate) fn free_all<C: Core>(pool: &LockedPool<C>, handles: &[u64]) -> Result<(), &'static str> {
    for &h in handles {
        pool.free(h);
    }
    if counter(pool, "pages") != 0 || counter(pool, "objects") != 0 {
        return Err("the pool is not empty after freeing everything");
    }
    if pool.total_pages() != 0 || counter(pool, "table_pages") != 0 {
        return Err("the slot table kept pages after the pool's last page went");
    }
    Ok(())
}

/// The edges every driver shares: size 0 and `__GFP_HIGHMEM` are `EINVAL`.
pub(crate) fn invalid_requests<C: Core>(pool: &LockedPool<C>) -> Result<(), &'static str> {
    if pool.malloc(0, GFP) != Err(EINVAL) {
        return Err("size 0 is not EINVAL");
    }
    let highmem = Gfp(kernel::bindings::GFP_KERNEL | kernel::bindings::__GFP_HIGHMEM);
    if pool.malloc(100, highmem) != Err(EINVAL) {
        return Err("__GFP_HIGHMEM is not EINVAL");
    }
    Ok(())
}

/// The value of the debugfs counter `name` of `pool` (0 if its core has
/// none).
pub(crate) fn counter<C: Core>(pool: &LockedPool<C>, name: &str) -> u64 {
    let values = C::counters(&pool.stats());
    C::COUNTERS
        .iter()
        .position(|c| c.as_bytes() == name.as_bytes())
        .and_then(|i| values.get(i).copied())
        .unwrap_or(0)
}

/// The bad-handle case of every driver: double free, stale, foreign and
/// random handles are rejected and counted, and every live object of `pool`
/// is still intact. `more` makes the driver's own bad calls on two live
/// objects it is given (they stay allocated) and returns how many it made.
pub(crate) fn bad_handles<C: Core>(
    t: &mut Ktap,
    pool: &LockedPool<C>,
    other: &LockedPool<C>,
    more: fn(&LockedPool<C>, u64, u64) -> Result<u64, &'static str>,
) -> Result<(), &'static str> {
    let mut handles = [0u64; 32];
    for (i, h) in handles.iter_mut().enumerate() {
        *h = pool
            .malloc(200 + i * 50, GFP)
            .map_err(|_| "malloc failed")?;
        fill(pool, *h, 200 + i * 50, i as u64)?;
    }
    let foreign = other.malloc(100, GFP).map_err(|_| "malloc failed")?;
    let pages = counter(pool, "pages");
    // A freed handle, freed again and mapped (double free, use after free).
    // The first bad handle of a pool WARNs, the others are only counted.
    let victim = handles[5];
    pool.free(victim);
    expect_warn(|| pool.free(victim));
    let stale_map = pool.map(victim, MapMode::ReadOnly);
    // Another pool's handle, and values that were never handles.
    pool.free(foreign);
    let foreign_map = pool.map(foreign, MapMode::ReadWrite);
    for bogus in [0u64, 1, u64::MAX, 0xdead_beef, handles[0] ^ (1 << 40)] {
        pool.free(bogus);
    }
    let extra = more(pool, handles[7], handles[8])?;
    if !stale_map.is_null() || !foreign_map.is_null() {
        return Err("map of a bad handle returned an address");
    }
    let bad = counter(pool, "bad_handles");
    t.diag(format_args!("{} bad handles rejected", bad));
    if bad != 9 + extra {
        return Err("not every bad handle was counted");
    }
    for (i, &h) in handles.iter().enumerate() {
        if i != 5 {
            check(pool, h, 200 + i * 50, i as u64)?;
        }
    }
    if counter(pool, "objects") != 31 || counter(pool, "pages") > pages {
        return Err("the pool changed");
    }
    pool.verify()?;
    for (i, &h) in handles.iter().enumerate() {
        if i != 5 {
            pool.free(h);
        }
    }
    other.free(foreign);
    if counter(pool, "pages") != 0 || counter(other, "pages") != 0 {
        return Err("pages left after freeing every object");
    }
    Ok(())
}

/// Destroying a pool that still holds objects reports it, with the
/// numbers: three objects of 3000, 3000 and 500 bytes in `expected_pages`
/// pages (two in zbud_rs and z3fold_rs: 3000 and 500 bytes share a page,
/// the other 3000 takes one; in zspan_rs the spans of two classes), left
/// allocated on purpose (those pages of the test guest leak). The report is read back from [`LEAKS`],
/// which the report's `pr_err` line also comes from.
pub(crate) fn leak_reported<C: Core>(
    t: &mut Ktap,
    pool: Pin<KBox<LockedPool<C>>>,
    expected_pages: u64,
) -> Result<(), &'static str> {
    let mut stored = Ok(());
    for size in [3000, 3000, 500] {
        if pool.malloc(size, GFP).is_err() {
            stored = Err("malloc failed");
        }
    }
    let (pages, objects) = (counter(&pool, "pages"), counter(&pool, "objects"));
    let verified = pool.verify();
    // The pool goes inside the window even if the case fails already.
    let before = LEAKS.get();
    expect_warn(|| drop(pool));
    let after = LEAKS.get();
    stored?;
    verified?;
    if (pages, objects) != (expected_pages, 3) {
        return Err("three objects of 3000, 3000 and 500 bytes are not in the pages expected");
    }
    let reported = (
        after.0.wrapping_sub(before.0),
        after.1.wrapping_sub(before.1),
        after.2.wrapping_sub(before.2),
    );
    t.diag(format_args!(
        "destroyed a pool holding {} objects in {} pages: {} report of {} objects, {} pages",
        objects, pages, reported.0, reported.2, reported.1
    ));
    if reported.0 != 1 {
        return Err("destroying a pool that is not empty was not reported once");
    }
    if (reported.1, reported.2) != (pages, objects) {
        return Err("the report does not give the pool's pages and objects");
    }
    Ok(())
}

/// The flags of the allocations that fail on purpose: no allocation
/// failure report (the fault injection prints none either, with it).
const GFP_NOWARN: Gfp = Gfp(kernel::bindings::GFP_KERNEL | kernel::bindings::__GFP_NOWARN);

/// Runs `f` with the task's fail-nth set to `n`: the `n`-th fault-injection
/// point the task reaches fails. Returns `f`'s result and whether the fault
/// was injected (`None` without fault injection in the kernel).
fn with_fail_nth<R>(n: u32, f: impl FnOnce() -> R) -> (R, Option<bool>) {
    // SAFETY: sets a field of the calling task, which only it uses.
    let armed = unsafe { rkm_fail_nth_set(n) };
    let r = f();
    // SAFETY: as above.
    let left = unsafe { rkm_fail_nth_get() };
    // SAFETY: as above: nothing else of the task fails.
    unsafe { rkm_fail_nth_set(0) };
    (r, armed.then_some(left == 0))
}

/// A failed page allocation inside `malloc` returns `ENOMEM` and leaves the
/// pool as it was. `count` objects of `size` bytes fill the pool so that
/// the next `malloc` needs `expected` page allocations (511 objects of a
/// page each fill the first leaf of z3fold's slot table, 255 zbud's: the
/// next needs an object page and a leaf); each of those
/// allocations is made to fail in turn (fail-nth 1, 2, ...) until a
/// `malloc` reaches no injected fault and succeeds. Every failure must be
/// `ENOMEM` with the pool unchanged (its invariants, counters and objects),
/// and exactly `expected` must fail.
pub(crate) fn alloc_failures<C: Core>(
    t: &mut Ktap,
    pool: &LockedPool<C>,
    size: usize,
    count: usize,
    expected: u32,
) -> Result<(), &'static str> {
    let mut handles = KVec::with_capacity(count + 1, GFP_KERNEL).map_err(|_| "no memory")?;
    for i in 0..count {
        let h = pool.malloc(size, GFP).map_err(|_| "malloc failed")?;
        fill(pool, h, size, i as u64)?;
        handles.push(h, GFP_KERNEL).map_err(|_| "no memory")?;
    }
    let before = C::counters(&pool.stats());
    let rejected = |pool: &LockedPool<C>| counter(pool, "reject_no_memory");
    let rejected_before = rejected(pool);
    let mut injected = 0u64;
    for n in 1..=expected.saturating_add(4) {
        let (r, hit) = with_fail_nth(n, || pool.malloc(size, GFP_NOWARN));
        match (hit, r) {
            (None, _) => return Err("the kernel has no fault injection"),
            (Some(false), Ok(h)) => {
                fill(pool, h, size, count as u64)?;
                handles.push(h, GFP_KERNEL).map_err(|_| "no memory")?;
                break;
            }
            (Some(false), Err(_)) => return Err("malloc failed with no fault injected"),
            (Some(true), Ok(_)) => {
                return Err("malloc succeeded although a page allocation failed")
            }
            (Some(true), Err(e)) if e != ENOMEM => {
                return Err("a failed page allocation did not give ENOMEM")
            }
            (Some(true), Err(_)) => {}
        }
        injected += 1;
        pool.verify()?;
        let mut now = C::counters(&pool.stats());
        // All but the count of ENOMEM rejections is as it was.
        if rejected(pool) != rejected_before + injected {
            return Err("a failed allocation was not counted in reject_no_memory");
        }
        if let Some(i) = C::COUNTERS
            .iter()
            .position(|c| c.as_bytes() == b"reject_no_memory")
        {
            if let Some(v) = now.get_mut(i) {
                *v = before.get(i).copied().unwrap_or(0);
            }
        }
        if now != before {
            return Err("a failed allocation changed the pool");
        }
    }
    t.diag(format_args!(
        "{} page allocations of one malloc failed in turn (fail-nth), each ENOMEM with the pool unchanged",
        injected
    ));
    if injected == 0 {
        return Err("no page allocation failed: fail_page_alloc's min-order must be 0");
    }
    if injected != u64::from(expected) {
        return Err("not the expected number of page allocations in the malloc that needs them");
    }
    for (i, &h) in handles.iter().enumerate() {
        check(pool, h, size, i as u64)?;
    }
    pool.verify()?;
    free_all(pool, &handles)
}
/// Objects of the concurrency case.
const SLOTS: usize = 48;

/// One object of the concurrency case.
///
/// A thread owns the slot while `busy` is set (taken with a compare and
/// swap, given back with a release store): only the owner reads or changes
/// the other fields or the object. So an object is never freed while the
/// other thread has it mapped, as zswap guarantees; its neighbours in the
/// page are.
struct Slot {
    busy: AtomicBool,
    handle: AtomicU64,
    size: AtomicU64,
    seed: AtomicU64,
}

/// The state the two threads of the concurrency case share.
struct Shared<'a, C: Core> {
    pool: &'a LockedPool<C>,
    slots: KVec<Slot>,
    /// Operations of the churning thread.
    rounds: u32,
    /// Set by the churning thread when it is done: the mapper stops.
    done: AtomicBool,
    /// Threads that ran to their end.
    finished: AtomicU32,
    maps: AtomicU64,
    churns: AtomicU64,
    corrupt: AtomicU64,
    failed: AtomicU64,
    /// Called by the churning thread after each of its rounds, with the
    /// round's number.
    after_round: &'a (dyn Fn(u32) + Sync),
}

impl<C: Core> Shared<'_, C> {
    /// Runs `f` on slot `i` if no other thread owns it.
    fn with_slot(&self, i: usize, f: impl FnOnce(&Slot)) {
        let Some(slot) = self.slots.get(i) else {
            return;
        };
        if slot
            .busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            f(slot);
            slot.busy.store(false, Ordering::Release);
        }
    }

    /// The churning thread: frees and allocates objects of random sizes
    /// (`sizes`), filling each and checking each before it is freed.
    fn churn(&self) -> i32 {
        let mut rng = Rng::new(0x5eed_0001);
        let sizes = [64u64, 200, 700, 1000, 1300, 1800, 2500, 3400];
        for round in 0..self.rounds {
            let i = rng.below(SLOTS as u64) as usize;
            self.with_slot(i, |slot| {
                let h = slot.handle.load(Ordering::Relaxed);
                let size = slot.size.load(Ordering::Relaxed) as usize;
                let seed = slot.seed.load(Ordering::Relaxed);
                if h != 0 {
                    if check(self.pool, h, size, seed).is_err() {
                        self.corrupt.fetch_add(1, Ordering::Relaxed);
                    }
                    self.pool.free(h);
                    slot.handle.store(0, Ordering::Relaxed);
                } else {
                    let size = sizes[(rng.next() % sizes.len() as u64) as usize] as usize
                        - rng.below(60) as usize;
                    let seed = rng.next();
                    match self.pool.malloc(size, GFP) {
                        Ok(h) => {
                            if fill(self.pool, h, size, seed).is_err() {
                                self.failed.fetch_add(1, Ordering::Relaxed);
                            }
                            slot.handle.store(h, Ordering::Relaxed);
                            slot.size.store(size as u64, Ordering::Relaxed);
                            slot.seed.store(seed, Ordering::Relaxed);
                        }
                        Err(_) => {
                            self.failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
            self.churns.fetch_add(1, Ordering::Relaxed);
            (self.after_round)(round);
            if round % 256 == 0 {
                usleep(10);
            }
        }
        self.done.store(true, Ordering::Release);
        self.finished.fetch_add(1, Ordering::Release);
        0
    }

    /// The mapping thread: maps objects, and checks them while they are
    /// mapped, sometimes sleeping with the mapping held.
    fn mapper(&self) -> i32 {
        let mut rng = Rng::new(0x5eed_0002);
        while !self.done.load(Ordering::Acquire) {
            let i = rng.below(SLOTS as u64) as usize;
            let nap = rng.below(8) == 0;
            self.with_slot(i, |slot| {
                let h = slot.handle.load(Ordering::Relaxed);
                if h == 0 {
                    return;
                }
                let size = slot.size.load(Ordering::Relaxed) as usize;
                let seed = slot.seed.load(Ordering::Relaxed);
                let p = self.pool.map(h, MapMode::ReadOnly);
                if p.is_null() {
                    self.failed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                // SAFETY: `p` maps the slot's live object of `size` bytes
                // until `unmap`.
                let before = unsafe { matches(p, size, seed) };
                if nap {
                    // Hold the mapping while the other CPU churns (without
                    // sleeping if the pool maps through a per-CPU buffer).
                    pause(20, C::SLEEP_MAPPED);
                }
                // SAFETY: as above.
                let after = unsafe { matches(p, size, seed) };
                self.pool.unmap(h);
                if !(before && after) {
                    self.corrupt.fetch_add(1, Ordering::Relaxed);
                }
                self.maps.fetch_add(1, Ordering::Relaxed);
            });
        }
        self.finished.fetch_add(1, Ordering::Release);
        0
    }
}

/// What the concurrency case did.
pub(crate) struct Concurrency {
    pub(crate) churns: u64,
    pub(crate) maps: u64,
}

/// Maps and checks objects on CPU 1 while CPU 0 frees and allocates
/// `rounds` times among them; then frees everything. Fails if an object's
/// bytes ever changed (while mapped, or between uses), if a live handle was
/// refused, or if the pool is not empty at the end.
// zspan_rs's test calls `concurrent_map_churn_with` only.
#[allow(dead_code)]
pub(crate) fn concurrent_map_churn<C: Core>(
    pool: &LockedPool<C>,
    rounds: u32,
) -> Result<Concurrency, &'static str> {
    concurrent_map_churn_with(pool, rounds, &|_| {})
}

/// [`concurrent_map_churn`], the churning thread calling `after_round`
/// after each round with its number (to compact the pool now and then,
/// for instance, while the other CPU maps).
// zbud_rs's and z3fold_rs's tests call `concurrent_map_churn` only.
#[allow(dead_code)]
pub(crate) fn concurrent_map_churn_with<C: Core>(
    pool: &LockedPool<C>,
    rounds: u32,
    after_round: &(dyn Fn(u32) + Sync),
) -> Result<Concurrency, &'static str> {
    let mut slots = KVec::with_capacity(SLOTS, GFP_KERNEL).map_err(|_| "no memory")?;
    for _ in 0..SLOTS {
        slots
            .push(
                Slot {
                    busy: AtomicBool::new(false),
                    handle: AtomicU64::new(0),
                    size: AtomicU64::new(0),
                    seed: AtomicU64::new(0),
                },
                GFP_KERNEL,
            )
            .map_err(|_| "no memory")?;
    }
    let shared = Shared {
        pool,
        slots,
        rounds,
        done: AtomicBool::new(false),
        finished: AtomicU32::new(0),
        maps: AtomicU64::new(0),
        churns: AtomicU64::new(0),
        corrupt: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        after_round,
    };
    {
        // SAFETY: `shared` outlives both threads: they are joined (or
        // dropped, which stops them) at the end of this block.
        let churner = unsafe { Thread::start(0, Shared::churn, &shared) }
            .map_err(|_| "could not start the thread on CPU 0")?;
        // SAFETY: as above.
        let mapper = match unsafe { Thread::start(1, Shared::mapper, &shared) } {
            Ok(t) => t,
            Err(_) => {
                // Let the churner run to its end, then stop it.
                while shared.finished.load(Ordering::Acquire) < 1 {
                    usleep(1000);
                }
                return Err("could not start the thread on CPU 1");
            }
        };
        // Both threads end on their own (the mapper when the churner is
        // done): wait for that, so that stopping them cannot cut one short.
        while shared.finished.load(Ordering::Acquire) < 2 {
            usleep(1000);
        }
        if churner.join() != 0 || mapper.join() != 0 {
            return Err("a thread did not run");
        }
    }
    for slot in shared.slots.iter() {
        let h = slot.handle.load(Ordering::Relaxed);
        if h != 0 {
            let size = slot.size.load(Ordering::Relaxed) as usize;
            let seed = slot.seed.load(Ordering::Relaxed);
            if check(pool, h, size, seed).is_err() {
                shared.corrupt.fetch_add(1, Ordering::Relaxed);
            }
            pool.free(h);
        }
    }
    if shared.corrupt.load(Ordering::Relaxed) != 0 {
        return Err("an object's bytes changed under concurrent churn");
    }
    if shared.failed.load(Ordering::Relaxed) != 0 {
        return Err("a malloc or a map of a live handle failed");
    }
    Ok(Concurrency {
        churns: shared.churns.load(Ordering::Relaxed),
        maps: shared.maps.load(Ordering::Relaxed),
    })
}
