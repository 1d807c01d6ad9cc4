// SPDX-License-Identifier: GPL-2.0

//! The zpool drivers' in-kernel stress test, shared by `stress_zbud_rs.ko`
//! and `stress_z3fold_rs.ko`: one kernel thread per online CPU, all on one
//! pool, each running `malloc`, `map`, write, `unmap`, `map`, check, `free`
//! for a fixed number of rounds, with every object's bytes checked on every
//! map. The suite `tests/zpool-stress` runs it on a 4-vCPU guest.
//!
//! # The workload
//!
//! The threads share an array of [`SLOTS`] object slots. A round picks a
//! slot at random and takes it if no other thread has it (a compare and
//! swap on its `busy` flag; a slot taken by another thread is skipped):
//!
//! * an empty slot gets a new object of 1 to `max_size` bytes: `malloc`,
//!   then `map` (write only), the object's contents written, `unmap`, and
//!   `map` (read only), checked, `unmap`;
//! * a full slot's object is mapped and checked (one time in 32 the thread
//!   sleeps with the object mapped and checks it again), unmapped, then
//!   freed (one time in two), rewritten with its next generation (one in
//!   four: written and checked as a new object) or left.
//!
//! The contents of an object are a function of its handle, a generation
//! and the offset, and its first 16 bytes (if it has them) are the handle
//! and the generation themselves, so a check sees an object that was
//! overwritten by another, moved wrongly, or freed and reused: a *mismatch*.
//! Any thread frees any object, so objects are freed by other threads than
//! the one that allocated them (counted: the case fails if none was).
//!
//! Every [`CHECK_EVERY`] rounds a thread calls
//! [`LockedPool::verify`]: the core's invariants, and `total_pages` (the
//! counter zswap reads without the lock) against the core's own count,
//! under the pool's lock while the other threads run.
//!
//! After the threads are done, every object left is checked and freed, and
//! the pool must be empty: no object, no page, no table page.
//!
//! # Results
//!
//! KTAP, four cases: the threads ran (one per online CPU, at least two,
//! every round; some frees of other threads' objects), no mismatch and no
//! failed `malloc` or `map`, every checkpoint passed, the pool empty at the
//! end. The diagnostics give the number of threads (`threads: N`, which
//! `tests/zpool-stress` compares with the guest's CPUs) and the counts.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use kernel::alloc::flags::GFP_KERNEL;
use kernel::ffi::c_uint;
use kernel::prelude::*;
use kernel::str::CStr;

use crate::debugfs::Dir;
use crate::ktap::Ktap;
use crate::kthread::{pause, usleep, Thread};
use crate::rng::Rng;
use crate::zpool::{Gfp, MapMode, ZpoolAllocator};
use crate::zpool_pool::{Core, LockedPool};

extern "C" {
    fn rkm_online_cpus() -> c_uint;
    fn rkm_nth_online_cpu(n: c_uint) -> c_uint;
}

/// Object slots the threads share.
pub(crate) const SLOTS: usize = 1024;

/// Rounds of a thread between two [`LockedPool::verify`].
pub(crate) const CHECK_EVERY: u32 = 1000;

/// Mismatches and failed checkpoints reported in full; the rest are only
/// counted.
const REPORTS: u64 = 5;

/// The flags of the stress allocations and of the pool.
const GFP: Gfp = Gfp(kernel::bindings::GFP_KERNEL | kernel::bindings::__GFP_NOWARN);

/// The byte at `offset` of the object of `handle` in its `generation`: the
/// handle and the generation (little-endian) in the first 16 bytes, a
/// function of the three after them.
fn content(handle: u64, generation: u64, offset: usize) -> u8 {
    let word = if offset < 8 {
        handle
    } else if offset < 16 {
        generation
    } else {
        let x = (handle ^ generation.rotate_left(40))
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add((offset as u64).wrapping_mul(0x0100_0000_01b3));
        x ^ (x >> 29)
    };
    (word >> (8 * (offset % 8))) as u8
}

/// The `u64` at `offset` (0 or 8) of the mapped object at `p`, little-endian,
/// from the bytes it has (0 beyond them): the handle or the generation its
/// contents claim.
///
/// # Safety
///
/// `p` maps an object of at least `size` bytes.
unsafe fn claimed(p: *const u8, size: usize, offset: usize) -> u64 {
    (0..8)
        .filter(|i| offset + i < size)
        // SAFETY: by the caller's contract, `offset + i < size`.
        .map(|i| u64::from(unsafe { p.add(offset + i).read() }) << (8 * i))
        .fold(0, |word, byte| word | byte)
}

/// One object slot; see [`zpool_test`](crate::zpool_test)'s concurrency
/// case for the ownership rule: the thread that set `busy` alone uses the
/// other fields and the object.
struct Slot {
    busy: AtomicBool,
    /// The object's handle, 0 for an empty slot.
    handle: AtomicU64,
    size: AtomicU64,
    generation: AtomicU64,
    /// The thread that allocated the object.
    owner: AtomicU32,
}

/// What the threads count.
#[derive(Default)]
struct Counts {
    rounds: AtomicU64,
    mallocs: AtomicU64,
    frees: AtomicU64,
    /// Frees of an object another thread allocated.
    foreign_frees: AtomicU64,
    rewrites: AtomicU64,
    maps: AtomicU64,
    /// Maps held across a sleep.
    naps: AtomicU64,
    /// Checks that found other bytes than the object's.
    mismatches: AtomicU64,
    /// Failed `malloc`s, and `map`s of a live handle that returned NULL.
    failures: AtomicU64,
    checkpoints: AtomicU64,
    bad_checkpoints: AtomicU64,
}

/// The state the threads share.
struct Shared<'a, C: Core> {
    pool: &'a LockedPool<C>,
    slots: KVec<Slot>,
    rounds: u32,
    max_size: u64,
    counts: Counts,
    /// Threads that ran to their end.
    finished: AtomicU32,
}

/// A thread's share: the shared state and its number.
struct Worker<'a, C: Core> {
    shared: &'a Shared<'a, C>,
    index: u32,
}

impl<C: Core> Shared<'_, C> {
    /// Counts one more of `counter`.
    fn bump(counter: &AtomicU64) -> u64 {
        counter.fetch_add(1, Ordering::Relaxed)
    }

    /// Writes the contents of `handle`'s object of `size` bytes for
    /// `generation`, through a write-only map for a new object, a
    /// read-write one for a rewrite (which first checks the object still
    /// holds the `previous` generation), then checks them through a
    /// read-only one.
    fn write(&self, handle: u64, size: usize, generation: u64, previous: Option<u64>) {
        let mode = match previous {
            Some(_) => MapMode::ReadWrite,
            None => MapMode::WriteOnly,
        };
        let p = self.pool.map(handle, mode);
        if p.is_null() {
            Self::bump(&self.counts.failures);
            return;
        }
        Self::bump(&self.counts.maps);
        if let Some(previous) = previous {
            // SAFETY: `p` maps the live object of `size` bytes of a slot
            // this thread owns, until the unmap.
            if let Some((offset, found)) = unsafe { self.mismatch(p, handle, size, previous) } {
                self.report(p, handle, size, previous, offset, found);
            }
        }
        for i in 0..size {
            // SAFETY: as above.
            unsafe { p.add(i).write(content(handle, generation, i)) };
        }
        self.pool.unmap(handle);
        self.check(handle, size, generation, false);
    }

    /// Counts a mismatch at `offset` (the byte was `found`) in the mapped
    /// object at `p`, and reports the first few.
    fn report(
        &self,
        p: *const u8,
        handle: u64,
        size: usize,
        generation: u64,
        offset: usize,
        found: u8,
    ) {
        if Self::bump(&self.counts.mismatches) >= REPORTS {
            return;
        }
        // What the object's first bytes say it is, if it has them.
        // SAFETY: the callers pass a mapped object of `size` bytes.
        let (h, g) = unsafe { (claimed(p, size, 0), claimed(p, size, 8)) };
        pr_err!(
            "# mismatch: object {:#x} generation {} ({} bytes): byte {} is {:#04x}, not {:#04x}; it starts as object {:#x} generation {}\n",
            handle,
            generation,
            size,
            offset,
            found,
            content(handle, generation, offset),
            h,
            g
        );
    }

    /// Maps `handle`'s object of `size` bytes and checks that it holds
    /// `generation`'s contents (again after a sleep if `nap`).
    fn check(&self, handle: u64, size: usize, generation: u64, nap: bool) {
        let p = self.pool.map(handle, MapMode::ReadOnly);
        if p.is_null() {
            Self::bump(&self.counts.failures);
            return;
        }
        Self::bump(&self.counts.maps);
        // SAFETY: `p` maps the live object of `size` bytes of a slot this
        // thread owns, until the unmap.
        let mut bad = unsafe { self.mismatch(p, handle, size, generation) };
        if nap && bad.is_none() {
            Self::bump(&self.counts.naps);
            // Mapped while the other threads churn (without sleeping if
            // the pool maps through a per-CPU buffer).
            pause(20, C::SLEEP_MAPPED);
            // SAFETY: as above.
            bad = unsafe { self.mismatch(p, handle, size, generation) };
        }
        if let Some((offset, found)) = bad {
            self.report(p, handle, size, generation, offset, found);
        }
        self.pool.unmap(handle);
    }

    /// The first byte of the mapped object at `p` that is not
    /// `generation`'s, with its value.
    ///
    /// # Safety
    ///
    /// `p` maps an object of at least `size` bytes.
    unsafe fn mismatch(
        &self,
        p: *const u8,
        handle: u64,
        size: usize,
        generation: u64,
    ) -> Option<(usize, u8)> {
        (0..size).find_map(|i| {
            // SAFETY: by the caller's contract, `i < size`.
            let b = unsafe { p.add(i).read() };
            (b != content(handle, generation, i)).then_some((i, b))
        })
    }

    /// [`LockedPool::verify`], counted.
    fn checkpoint(&self, who: u32, round: u32) {
        Self::bump(&self.counts.checkpoints);
        if let Err(why) = self.pool.verify() {
            if Self::bump(&self.counts.bad_checkpoints) < REPORTS {
                pr_err!(
                    "# checkpoint of thread {} at round {}: {}\n",
                    who,
                    round,
                    why
                );
            }
        }
    }

    /// One round on slot `slot`, owned by thread `who`.
    fn round(&self, who: u32, slot: &Slot, rng: &mut Rng) {
        let handle = slot.handle.load(Ordering::Relaxed);
        let size = slot.size.load(Ordering::Relaxed) as usize;
        let generation = slot.generation.load(Ordering::Relaxed);
        if handle == 0 {
            let size = rng.below(self.max_size) as usize + 1;
            let Ok(handle) = self.pool.malloc(size, GFP) else {
                Self::bump(&self.counts.failures);
                return;
            };
            Self::bump(&self.counts.mallocs);
            self.write(handle, size, 1, None);
            slot.handle.store(handle, Ordering::Relaxed);
            slot.size.store(size as u64, Ordering::Relaxed);
            slot.generation.store(1, Ordering::Relaxed);
            slot.owner.store(who, Ordering::Relaxed);
            return;
        }
        self.check(handle, size, generation, rng.below(32) == 0);
        match rng.below(4) {
            0 | 1 => {
                self.pool.free(handle);
                Self::bump(&self.counts.frees);
                if slot.owner.load(Ordering::Relaxed) != who {
                    Self::bump(&self.counts.foreign_frees);
                }
                slot.handle.store(0, Ordering::Relaxed);
            }
            2 => {
                Self::bump(&self.counts.rewrites);
                self.write(handle, size, generation.wrapping_add(1), Some(generation));
                slot.generation
                    .store(generation.wrapping_add(1), Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

impl<C: Core> Worker<'_, C> {
    /// A thread's body: its rounds, then the sign that it is done.
    fn run(&self) -> i32 {
        let shared = self.shared;
        let mut rng = Rng::new(0x5eed_0100 + u64::from(self.index));
        for round in 1..=shared.rounds {
            let i = rng.below(SLOTS as u64) as usize;
            if let Some(slot) = shared.slots.get(i) {
                if slot
                    .busy
                    .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    shared.round(self.index, slot, &mut rng);
                    slot.busy.store(false, Ordering::Release);
                }
            }
            Shared::<C>::bump(&shared.counts.rounds);
            if round % CHECK_EVERY == 0 {
                shared.checkpoint(self.index, round);
            }
        }
        shared.finished.fetch_add(1, Ordering::Release);
        0
    }
}

/// The results of a run, for the KTAP cases.
struct Outcome {
    threads: u32,
    started: u32,
    joined: bool,
}

/// Starts one thread per online CPU on `shared`, waits for all of them to
/// run to their end and joins them.
fn run_threads<C: Core>(shared: &Shared<'_, C>, cpus: u32) -> Result<Outcome, &'static str> {
    let mut workers = KVec::with_capacity(cpus as usize, GFP_KERNEL).map_err(|_| "no memory")?;
    for index in 0..cpus {
        workers
            .push(Worker { shared, index }, GFP_KERNEL)
            .map_err(|_| "no memory")?;
    }
    let mut threads = KVec::with_capacity(cpus as usize, GFP_KERNEL).map_err(|_| "no memory")?;
    for worker in workers.iter() {
        // SAFETY: the CPU is an online CPU's number (or nr_cpu_ids, which
        // fails the thread's creation).
        let cpu = unsafe { rkm_nth_online_cpu(worker.index) };
        // SAFETY: `workers` and `shared` outlive the threads: they are
        // joined or dropped (which stops them) before this returns.
        match unsafe { Thread::start(cpu, Worker::run, worker) } {
            Ok(thread) => {
                if threads.push(thread, GFP_KERNEL).is_err() {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    let started = threads.len() as u32;
    // Every started thread ends on its own: wait for that, so that
    // stopping them cannot cut one short (or keep one from running).
    while shared.finished.load(Ordering::Acquire) < started {
        usleep(10_000);
    }
    let mut joined = true;
    for thread in threads {
        joined &= thread.join() == 0;
    }
    Ok(Outcome {
        threads: cpus,
        started,
        joined,
    })
}

/// A driver's pool, created as zswap would (`ZpoolAllocator::create`).
pub(crate) type NewPool<C> = fn(&'static CStr, Gfp) -> Result<Pin<KBox<LockedPool<C>>>>;

/// Runs the stress test on a pool called `pool_name` made by `new_pool`,
/// with objects of 1 to `max_size` bytes and `rounds` rounds a thread, and
/// prints its KTAP; the pool's debugfs directory is under `root`. Returns
/// the directory (for the module to keep until it is unloaded) if every
/// case passed, `EINVAL` (the load fails) otherwise.
pub(crate) fn run<C: Core>(
    root: &'static CStr,
    new_pool: NewPool<C>,
    pool_name: &'static CStr,
    max_size: usize,
    rounds: u32,
) -> Result<Dir> {
    let root = Dir::new(root, None);
    // SAFETY: the pool is dropped before `run` returns, and the slot is
    // cleared before `root` can be dropped.
    unsafe { crate::zpool_pool::DEBUGFS_ROOT.set(&root) };
    let mut t = Ktap::new(4);
    let r = stress(&mut t, new_pool, pool_name, max_size, rounds);
    crate::zpool_pool::DEBUGFS_ROOT.clear();
    let passed = t.finish();
    match r {
        Ok(()) if passed => Ok(root),
        _ => Err(EINVAL),
    }
}

/// The body of [`run`]: prints the four results.
fn stress<C: Core>(
    t: &mut Ktap,
    new_pool: NewPool<C>,
    pool_name: &'static CStr,
    max_size: usize,
    rounds: u32,
) -> Result<(), &'static str> {
    let pool = new_pool(pool_name, GFP).map_err(|_| {
        t.result("the threads ran", Err("could not create the pool"));
        "could not create the pool"
    })?;
    let mut slots = KVec::with_capacity(SLOTS, GFP_KERNEL).map_err(|_| "no memory")?;
    for _ in 0..SLOTS {
        slots
            .push(
                Slot {
                    busy: AtomicBool::new(false),
                    handle: AtomicU64::new(0),
                    size: AtomicU64::new(0),
                    generation: AtomicU64::new(0),
                    owner: AtomicU32::new(0),
                },
                GFP_KERNEL,
            )
            .map_err(|_| "no memory")?;
    }
    let shared = Shared {
        pool: &pool,
        slots,
        rounds,
        max_size: max_size as u64,
        counts: Counts::default(),
        finished: AtomicU32::new(0),
    };
    // SAFETY: reads the online CPU count.
    let cpus = unsafe { rkm_online_cpus() };
    let outcome = run_threads(&shared, cpus)?;
    let c = &shared.counts;
    let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    t.diag(format_args!(
        "threads: {} (online CPUs: {}), {} rounds each, {} slots, objects of 1 to {} bytes",
        outcome.started, outcome.threads, rounds, SLOTS, max_size
    ));
    t.diag(format_args!(
        "{} rounds: {} mallocs, {} frees ({} of another thread's object), {} rewrites, {} maps ({} held across a sleep)",
        get(&c.rounds),
        get(&c.mallocs),
        get(&c.frees),
        get(&c.foreign_frees),
        get(&c.rewrites),
        get(&c.maps),
        get(&c.naps)
    ));
    let all_rounds = u64::from(outcome.threads) * u64::from(rounds);
    let ran = if outcome.threads < 2 {
        Err("fewer than two CPUs online: no concurrency to test")
    } else if outcome.started != outcome.threads || !outcome.joined {
        Err("a thread could not be started or did not run")
    } else if get(&c.rounds) != all_rounds {
        Err("the threads did not run every round")
    } else if get(&c.foreign_frees) == 0 {
        Err("no object was freed by another thread than the one that allocated it")
    } else {
        Ok(())
    };
    t.result(
        "one thread per online CPU ran every round on one pool, freeing each other's objects",
        ran,
    );

    // The objects left: checked, then freed.
    for slot in shared.slots.iter() {
        let handle = slot.handle.load(Ordering::Relaxed);
        if handle != 0 {
            let size = slot.size.load(Ordering::Relaxed) as usize;
            shared.check(handle, size, slot.generation.load(Ordering::Relaxed), false);
            pool.free(handle);
        }
    }
    t.diag(format_args!(
        "{} mismatches, {} failed mallocs or maps",
        get(&c.mismatches),
        get(&c.failures)
    ));
    let intact = if get(&c.mismatches) != 0 {
        Err("an object's bytes were not its own")
    } else if get(&c.failures) != 0 {
        Err("a malloc, or a map of a live handle, failed")
    } else if get(&c.maps) == 0 {
        Err("nothing was mapped")
    } else {
        Ok(())
    };
    t.result(
        "every map saw the handle and generation its object was written with",
        intact,
    );

    shared.checkpoint(u32::MAX, 0);
    t.diag(format_args!(
        "{} checkpoints, {} failed",
        get(&c.checkpoints),
        get(&c.bad_checkpoints)
    ));
    let checked = if get(&c.bad_checkpoints) != 0 {
        Err("the pool's invariants or its total_pages were wrong at a checkpoint")
    } else if get(&c.checkpoints) < all_rounds / u64::from(CHECK_EVERY) {
        Err("a thread missed its checkpoints")
    } else {
        Ok(())
    };
    t.result(
        "the pool's invariants and total_pages held at every checkpoint",
        checked,
    );

    let s = C::counters(&pool.stats());
    let named = |name: &str| {
        C::COUNTERS
            .iter()
            .position(|c| c.as_bytes() == name.as_bytes())
            .and_then(|i| s.get(i).copied())
    };
    let empty = match (named("objects"), named("pages"), named("table_pages")) {
        (Some(0), Some(0), Some(0)) if pool.total_pages() == 0 => Ok(()),
        _ => Err("objects, pages or table pages left after freeing everything"),
    };
    t.result(
        "the pool is empty at the end: no object, page or table page",
        empty,
    );
    Ok(())
}
