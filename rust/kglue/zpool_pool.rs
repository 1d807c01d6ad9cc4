// SPDX-License-Identifier: GPL-2.0

//! A kernel-agnostic allocator core (`rust/zbud`, `rust/z3fold`,
//! `rust/zspan`) as zswap sees it: the core under a spinlock (one per
//! shard), its statistics in debugfs, bad handles and leaks reported.
//! Written once for every Rust zpool driver.
//!
//! A driver implements [`Core`] for its core pool (a few lines of
//! delegation and the names of its statistics) and uses
//! [`LockedPool<ItsCore>`] as its [`ZpoolAllocator`]. Its test module builds
//! the same type and calls the same methods, as the trampolines do.
//!
//! # Shards
//!
//! A pool is [`Core::SHARDS`] cores, each under a spinlock of its own: one
//! for zbud and z3fold, eight for zspan, whose classes are spread over them
//! once the pool is large (class `c` in shard `c % 8`), so that stores
//! of different classes do not contend, as zsmalloc's per-class locks, or
//! *contended* (then, in zspan below the size that shards by class, a
//! CPU's stores in a shard of their own). A CPU that finds a shard's lock
//! held as it comes to take it counts a meeting
//! ([`LockedPool::contention`], debugfs `lock_contention`: a hint the
//! holder sets and clears with plain stores, no atomic read-modify-write
//! on the hot path); from
//! [`CONTENDED`] meetings on, the pool is contended for good.
//! `malloc` goes to the shard the core names for its size, the pool's
//! pages, whether it is contended and, if it is, the CPU
//! ([`Core::shard_for_size`]); `free`, `map` and `unmap` to the shard
//! the handle names ([`Core::shard_of_handle`]), whose core checks the
//! whole handle (another shard's is malformed there). No code but
//! [`LockedPool::verify`] holds two shards' locks; it takes them in order,
//! each shard's lock with a lockdep class of its own.
//!
//! # Locking
//!
//! A shard's spinlock guards its core: `malloc`, `free`, `map` and
//! `unmap` take it for a few list operations (and, in z3fold, for moving a
//! page's objects; in zspan, for at most 4 objects moved after a free) and
//! never sleep under it. `malloc` gets the pages it needs before it takes
//! the lock ([`Staged`]): it tries the core with none
//! ([`PageFlags::none`]), and when it is short of pages asks the core how
//! many pages the allocation takes
//! ([`Core::pages_wanted`]: a span's at once in zspan), drops the lock, gets
//! them and tries again, so that the page allocator is never called under
//! the lock (the pages of one malloc: at most a span and two table leaves).
//! `map` returns the object's direct-map address and drops the lock.
//! The core guarantees that a mapped object stays where it is, and that the
//! page holding it is neither freed nor compacted, until its `unmap`: the
//! caller may use the address without the lock and may sleep
//! (`sleep_mapped`).
//!
//! A core may map an object in two pieces (zspan's objects that cross a
//! page boundary, [`Mapped::Split`]): `map` then copies them, after the
//! lock is dropped (the object is pinned), into this CPU's buffer
//! (`map_area.rs`, preemption off until the unmap) and returns the buffer;
//! `unmap` copies the buffer back and releases the CPU before it takes the
//! lock (the object is still pinned), and the core unpins it then: no copy
//! runs under the lock. Such a core's [`Core::SLEEP_MAPPED`] is false, and
//! so is its driver's `sleep_mapped`.
//!
//! # Counters
//!
//! zpool's `total_pages` (zswap reads it on every store, without a lock)
//! is the one counter published by the hot path: after `malloc`, `free`
//! and `unmap` (an unmap may end a deferred compaction that frees a page:
//! z3fold; a core whose unmap cannot says so, [`Core::UNMAP_KEEPS_PAGES`],
//! and its unmap publishes nothing), under the shard's lock, a change of
//! the shard's pages is added to it (one atomic add, only when they
//! changed); `map`, which no core lets take or free a page, publishes
//! nothing. The core's other counters
//! are debugfs files computed when they are read ([`Computed`]: each
//! shard's lock taken in turn, the shards' statistics added), so the hot
//! path never writes them.
//!
//! # Checking
//!
//! [`LockedPool::verify`] checks, under the locks of all shards, each
//! core's invariants ([`Core::check`]) and that zpool's `total_pages` is
//! the cores' own count: the test modules call it while their workloads
//! run. A pool destroyed while not empty is counted in [`LEAKS`] (the
//! drivers show it in debugfs), so that tests can check the report's
//! numbers.

use core::ffi::c_void;
use core::fmt;
use core::marker::PhantomPinned;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use kernel::alloc::flags::GFP_KERNEL;
use kernel::c_str;
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::lock::{Backend, Guard, Lock};
use kernel::sync::LockClassKey;

use crate::debugfs::{Computed, Dir, RootSlot};
use crate::map_area;
use crate::pages::{rcu_barrier, PageFlags, RcuRead, Staged};
use crate::zalloc::{AllocError, Leak};
use crate::zpool::{Gfp, MapMode, ZpoolAllocator};

extern "C" {
    fn rkm_warn(msg: *const kernel::ffi::c_char);
    fn rkm_this_cpu() -> kernel::ffi::c_uint;
}

/// The CPU the caller runs on (`raw_smp_processor_id`, `pages.c.inc`): a
/// hint, since the caller may move to another CPU as soon as it is read.
fn this_cpu() -> usize {
    // SAFETY: no precondition: any context may read its CPU's number.
    unsafe { rkm_this_cpu() as usize }
}

/// The most statistics a core shows in debugfs.
pub(crate) const MAX_COUNTERS: usize = 16;

/// The pieces of an object a core maps in two (the end of a page, then the
/// start of another): address and length of each.
pub(crate) type Pieces = [(NonNull<u8>, usize); 2];

/// Where a core's mapped object is.
pub(crate) enum Mapped {
    /// Its bytes, in one place.
    Direct(NonNull<u8>),
    /// In two pieces: the glue maps a per-CPU copy. (zbud's and z3fold's
    /// modules never make one.)
    #[allow(dead_code)]
    Split(Pieces),
}

/// Copies between the pieces of an object and `buf`, to `buf` if `to_buf`.
///
/// # Safety
///
/// The pieces are a mapped object's (pinned by the core until its unmap,
/// or the pool's lock is held), and `buf` is valid for their total length
/// and overlaps neither.
unsafe fn copy_pieces(pieces: &Pieces, buf: NonNull<u8>, to_buf: bool) {
    let mut at = 0usize;
    for &(piece, len) in pieces {
        // SAFETY: the caller's contract; `at + len` is at most the pieces'
        // total length.
        unsafe {
            let b = buf.as_ptr().add(at);
            if to_buf {
                core::ptr::copy_nonoverlapping(piece.as_ptr(), b, len);
            } else {
                core::ptr::copy_nonoverlapping(b, piece.as_ptr(), len);
            }
        }
        at = at.wrapping_add(len);
    }
}

/// What the glue needs of an allocator core.
///
/// Every method that takes `self` is called with its shard's spinlock held,
/// so none may sleep.
pub(crate) trait Core: Send + Sized + 'static {
    /// Why a handle was rejected.
    type HandleError: fmt::Display;
    /// A snapshot of the core's counters.
    type Stats;
    /// The debugfs files of the counters, in the order of
    /// [`Core::counters`].
    const COUNTERS: &'static [&'static CStr];
    /// Whether a caller may sleep while an object is mapped: false for a
    /// core that maps objects in pieces (through a per-CPU buffer). It must
    /// be the driver's `sleep_mapped` (`RKM_ZPOOL_SLEEP_MAPPED` in its C
    /// file). A core that never maps in pieces leaves it true, and its
    /// unmap skips the look for a buffer.
    const SLEEP_MAPPED: bool = true;

    /// Whether [`Core::unmap`] never changes the core's pages (z3fold's
    /// may: a page freed while mapped is settled at its unmap). The glue's
    /// unmap then publishes nothing, as its map.
    const UNMAP_KEEPS_PAGES: bool = false;

    /// Whether [`Core::map_lockless`] finds objects: the glue's `map` and
    /// `unmap` then try it first, without the shard's lock (in an RCU
    /// read-side section), its `malloc` and `free` publish the core's view
    /// ([`Core::publish`]), and the pool waits for the core's deferred
    /// page frees (`rcu_barrier`) when it is dropped.
    const LOCKLESS_MAP: bool = false;

    /// The shards a pool is split into, each a core of its own under a
    /// lock of its own (at most [`MAX_SHARDS`]): 1, or more for a core
    /// whose handles say their shard ([`Core::shard_of_handle`]).
    const SHARDS: usize = 1;

    /// An empty pool.
    fn new() -> Self;
    /// Writes an empty pool, shard `shard` of its pool, at `slot` (a core
    /// larger than a few hundred bytes writes it in place, off the stack).
    ///
    /// # Safety
    ///
    /// `slot` is valid for writes of `Self` and aligned; what it held is
    /// overwritten, not dropped.
    unsafe fn init_at(slot: *mut Self, _shard: usize) {
        // SAFETY: the caller's.
        unsafe { slot.write(Self::new()) }
    }
    /// The shard that allocates `size` bytes in a pool of `pool_pages`
    /// pages (zpool's `total_pages`, read without a lock), `contended` if
    /// its CPUs have met on its locks ([`CONTENDED`] times), for a caller
    /// on CPU `cpu` (a hint: the caller may have moved since; 0 in a pool
    /// that is not contended, whose glue does not ask), below
    /// [`Core::SHARDS`] (the glue takes any other number for the first
    /// shard).
    fn shard_for_size(_size: usize, _pool_pages: u64, _contended: bool, _cpu: usize) -> usize {
        0
    }
    /// The shard that `handle` says it is of (as above: that shard's core
    /// checks the handle, and rejects another shard's).
    fn shard_of_handle(_handle: u64) -> usize {
        0
    }
    /// `total` and a shard's statistics together, for a core of more than
    /// one shard (the glue asks a core of one shard for none).
    fn add_stats(total: Self::Stats, _shard: &Self::Stats) -> Self::Stats {
        total
    }
    /// Allocates `size` bytes: a handle, or why not, without counting the
    /// rejection (the pool is then unchanged).
    fn alloc_uncounted(&mut self, size: usize, flags: PageFlags) -> Result<u64, AllocError>;
    /// Counts a rejected allocation in the core's statistics.
    fn count_rejection(&mut self, error: AllocError);
    /// The pages an allocation of `size` bytes would take from the page
    /// allocator now, for a `malloc` that gets them before it tries again
    /// (outside the lock). At least one more page is got anyway: a core
    /// that does not know says 1.
    fn pages_wanted(&self, _size: usize) -> usize {
        1
    }
    /// Frees the object of `handle`.
    fn free(&mut self, handle: u64) -> Result<(), Self::HandleError>;
    /// Maps the object of `handle` until [`Core::unmap`].
    fn map(&mut self, handle: u64) -> Result<Mapped, Self::HandleError>;
    /// What the core shares with its lockless maps, beside the shard's
    /// lock ([`Core::map_lockless`]).
    type View: Send + Sync;
    /// A view of nothing yet.
    fn new_view() -> Self::View;
    /// Gives the core its shard's view, once, just after the shard is
    /// built (a core whose lockless maps pin objects keeps where it is).
    ///
    /// # Safety
    ///
    /// `view` outlives the core and stays at its address.
    unsafe fn attach(&mut self, _view: &Self::View) {}
    /// Publishes to `view` what [`Core::map_lockless`] reads (a core that
    /// is not [`Core::LOCKLESS_MAP`] publishes nothing): the glue calls it
    /// under the lock after each `malloc` and `free`.
    fn publish(&mut self, _view: &Self::View) {}
    /// The object of `handle`, found without the shard's lock in what the
    /// core published to `view`, and held for the caller until
    /// [`Core::unmap_lockless`] (a core that moves objects pins it):
    /// `None` if the core did not find it so (a bad handle, or a change
    /// meanwhile: the glue then maps under the lock, which decides).
    ///
    /// # Safety
    ///
    /// `view` is where this shard's core published ([`Core::publish`]),
    /// the core is not reset nor dropped during the call, and the caller
    /// holds an RCU read-side section ([`RcuRead`]) across it: the pages
    /// the core frees with `free_page_deferred` stay until it ends.
    unsafe fn map_lockless(_view: &Self::View, _handle: u64) -> Option<Mapped> {
        None
    }
    /// Whether [`Core::unmap_lockless`] reads what the core frees after a
    /// grace period (the default's, a lockless map again, does): the glue
    /// then calls it in an RCU read-side section. A core whose unmap reads
    /// only its view (zspan's: one exchange of a pin) says false, and its
    /// `unmap` enters no section.
    const UNMAP_LOCKLESS_READS: bool = true;
    /// Ends a [`Core::map_lockless`] without the shard's lock: whether it
    /// did (if not, the object was mapped under the lock, and the glue
    /// unmaps it there). By default, for a core that never moves an object
    /// and whose unmap only checks the handle, a lockless map again.
    ///
    /// # Safety
    ///
    /// As [`Core::map_lockless`], but the RCU read-side section is needed
    /// only if [`Core::UNMAP_LOCKLESS_READS`].
    #[inline]
    unsafe fn unmap_lockless(view: &Self::View, handle: u64) -> bool {
        // SAFETY: The caller's.
        unsafe { Self::map_lockless(view, handle) }.is_some()
    }
    /// Ends a [`Core::map`] (the glue copied its buffer back to an object
    /// mapped in two pieces before: the object is pinned until now).
    fn unmap(&mut self, handle: u64) -> Result<(), Self::HandleError>;
    /// Frees every page if the pool is empty; reports the objects left
    /// otherwise (their pages are left alone).
    fn reset(&mut self) -> Result<(), Leak>;
    /// Checks the core's invariants from scratch (walks the whole pool:
    /// for tests); returns what is wrong first.
    fn check(&self) -> Result<(), &'static str>;
    /// The counters.
    fn stats(&self) -> Self::Stats;
    /// The values of [`Core::COUNTERS`], in order, from `stats`.
    fn counters(stats: &Self::Stats) -> [u64; MAX_COUNTERS];
    /// Every page the pool holds, from `stats`.
    fn total_pages(stats: &Self::Stats) -> u64;
    /// Every page the pool holds now (what `malloc` and `free` publish).
    fn total_pages_now(&self) -> u64 {
        Self::total_pages(&self.stats())
    }
}

/// The driver's debugfs directory (`zbud_rs/`, `z3fold_rs/`), set while
/// the module is loaded.
///
/// Pools create their directory under it. A pool pins the module, so the
/// directory outlives every pool.
pub(crate) static DEBUGFS_ROOT: RootSlot = RootSlot::new();

/// What the pools of this module destroyed while not empty left allocated,
/// since it was loaded (the sums of their [`Leak`] reports).
pub(crate) struct LeakCounts {
    /// Pools destroyed while not empty.
    pub(crate) pools: AtomicU64,
    /// Pages they left allocated.
    pub(crate) pages: AtomicU64,
    /// Objects that were still live in them.
    pub(crate) objects: AtomicU64,
}

impl LeakCounts {
    /// Counts the report of `leak`.
    fn add(&self, leak: &Leak) {
        self.pools.fetch_add(1, Ordering::Relaxed);
        self.pages.fetch_add(leak.pages, Ordering::Relaxed);
        self.objects.fetch_add(leak.objects, Ordering::Relaxed);
    }

    /// A snapshot: (pools, pages, objects).
    // Only the test modules read it whole; the drivers show it in debugfs.
    #[allow(dead_code)]
    pub(crate) fn get(&self) -> (u64, u64, u64) {
        (
            self.pools.load(Ordering::Relaxed),
            self.pages.load(Ordering::Relaxed),
            self.objects.load(Ordering::Relaxed),
        )
    }
}

/// The leaks of this module's pools (`leaked_*` in the driver's debugfs
/// directory).
pub(crate) static LEAKS: LeakCounts = LeakCounts {
    pools: AtomicU64::new(0),
    pages: AtomicU64::new(0),
    objects: AtomicU64::new(0),
};

/// A pool's counters, as debugfs shows them (`<driver>/<pool>/`).
struct Counters {
    /// The [`LockedPool<C>`] that owns these counters, set once it is
    /// pinned; null before. The computed files read its shards through it.
    pool: AtomicPtr<c_void>,
    /// The core's counters, in the order of [`Core::COUNTERS`], computed on
    /// read (see [`counter_get`]).
    files: [Computed; MAX_COUNTERS],
    /// Allocations refused because they asked for highmem.
    highmem: AtomicU64,
}

/// The contention count from which a pool is contended: its core may then
/// spread its allocations over its shards whatever its size
/// ([`Core::shard_for_size`]). A few meetings may be chance; this many
/// are a pool that CPUs use at once.
pub(crate) const CONTENDED: u64 = 64;

/// The value of counter `index` of the pool whose [`Counters`] are at
/// `owner`: each shard's lock taken in turn, the shards' statistics added.
/// 0 before the pool is pinned.
///
/// # Safety
///
/// `owner` is the [`Counters`] of a live [`LockedPool<C>`] (the files that
/// call this are removed before it is dropped), and no lock of that pool is
/// held by the caller.
unsafe extern "C" fn counter_get<C: Core>(owner: *const c_void, index: u32) -> u64 {
    // SAFETY: the caller's contract.
    let counters = unsafe { &*owner.cast::<Counters>() };
    let pool = counters
        .pool
        .load(Ordering::Acquire)
        .cast::<LockedPool<C>>();
    if pool.is_null() {
        return 0;
    }
    // SAFETY: set by `create` to the pinned pool that owns `counters`,
    // which is live (the caller's contract).
    let stats = unsafe { &*pool }.stats();
    C::counters(&stats)
        .get(index as usize)
        .copied()
        .unwrap_or(0)
}

impl Counters {
    /// The counters of a pool of `C`, in a box (the files point into it).
    fn new<C: Core>() -> Result<KBox<Self>> {
        let mut counters = KBox::new(
            Counters {
                pool: AtomicPtr::new(core::ptr::null_mut()),
                files: core::array::from_fn(|i| {
                    // SAFETY: a placeholder, replaced below before any
                    // file is made of it.
                    unsafe { Computed::new(counter_get::<C>, core::ptr::null(), i as u32) }
                }),
                highmem: AtomicU64::new(0),
            },
            GFP_KERNEL,
        )?;
        let owner = (&*counters as *const Counters).cast::<c_void>();
        for (i, file) in counters.files.iter_mut().enumerate() {
            // SAFETY: `owner` is these counters, in a box that the pool
            // keeps until its debugfs directory (and so the files) is
            // removed; `counter_get` takes the pool's shards' locks, which
            // nobody reading debugfs holds.
            *file = unsafe { Computed::new(counter_get::<C>, owner, i as u32) };
        }
        Ok(counters)
    }

    /// The files of `dir`.
    ///
    /// # Safety
    ///
    /// `self` must stay in place until `dir` is dropped, and be the
    /// counters of a pool of `C`.
    unsafe fn show_in<C: Core>(&self, dir: &Dir) {
        for (name, file) in C::COUNTERS.iter().zip(self.files.iter()) {
            // SAFETY: the caller keeps `self`, hence `file`, in place until
            // `dir` is dropped; the pool it reads outlives `dir` too.
            unsafe { dir.add_computed(name, file) };
        }
        // SAFETY: as above.
        unsafe { dir.add_u64(c_str!("reject_highmem"), &self.highmem) };
    }
}

/// One shard of a pool: a core (boxed, built in place by
/// [`Core::init_at`]: zspan's is 2.5 KiB) and the total pages it has added
/// to zpool's `total_pages` ([`LockedPool::publish_total_pages`]).
///
/// # Invariants
///
/// Under the shard's lock, `published` is what the shard added to the
/// pool's `total_pages`: between calls, its core's
/// [`Core::total_pages_now`].
struct Shard<C> {
    core: KBox<C>,
    published: u64,
}

/// The kernel's `spinlock_t`, as `kernel::sync::SpinLock` uses it, with a
/// lock and an unlock that the compiler may inline into the shard's
/// operations.
///
/// `SpinLock`'s backend is compiled into the `kernel` crate, so each lock
/// and each unlock of a shard cost two calls before the kernel's own
/// (`SpinLockBackend::lock`, then the C helper `rust_helper_spin_lock`,
/// then `_raw_spin_lock`): six locks a zswap store and load, about 2 % of
/// the zspan benchmark's samples. This backend calls the kernel's
/// out-of-line `_raw_spin_lock` and `_raw_spin_unlock` directly where the
/// kernel has them (the spinlock is the same `spinlock_t`, initialized by
/// the same `__spin_lock_init`, with the same lockdep class and checks),
/// and the C helpers where it inlines them instead (the unlock is out of
/// line only with `UNINLINE_SPIN_UNLOCK`, which `DEBUG_SPINLOCK` and a
/// preemptible kernel select: the debug kernel, not the perf kernel; a
/// `PREEMPT_RT` spinlock is a sleeping lock, which only the helpers know).
struct ShardLockBackend;

// SAFETY: the kernel's spinlock ensures mutual exclusion: `lock` and
// `unlock` are `spin_lock` and `spin_unlock`, called directly or through
// the helpers, on a `spinlock_t` that `init` initialized as `SpinLock`'s
// backend does; `relock` is the default, which locks.
unsafe impl Backend for ShardLockBackend {
    type State = kernel::bindings::spinlock_t;
    type GuardState = ();

    unsafe fn init(
        ptr: *mut Self::State,
        name: *const kernel::ffi::c_char,
        key: *mut kernel::bindings::lock_class_key,
    ) {
        // SAFETY: the caller's: `ptr` is valid for writes, `name` and
        // `key` for reads for ever.
        unsafe { kernel::bindings::__spin_lock_init(ptr, name, key) }
    }

    #[inline]
    unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
        // SAFETY: the caller's: `ptr` is an initialized spinlock. Without
        // `PREEMPT_RT`, a `spinlock_t` is a union whose first member is its
        // `raw_spinlock_t` (`spinlock_check` returns its address), and
        // `spin_lock` is `_raw_spin_lock` on it, out of line unless
        // `INLINE_SPIN_LOCK`.
        unsafe {
            #[cfg(not(any(CONFIG_INLINE_SPIN_LOCK, CONFIG_PREEMPT_RT)))]
            kernel::bindings::_raw_spin_lock(ptr.cast());
            #[cfg(any(CONFIG_INLINE_SPIN_LOCK, CONFIG_PREEMPT_RT))]
            kernel::bindings::spin_lock(ptr);
        }
    }

    #[inline]
    unsafe fn unlock(ptr: *mut Self::State, _guard_state: &Self::GuardState) {
        // SAFETY: the caller's: it holds the spinlock at `ptr`. As in
        // `lock`: `spin_unlock` is `_raw_spin_unlock` on its first member,
        // out of line with `UNINLINE_SPIN_UNLOCK`; where it is inline as
        // a release store to the lock's byte ([`UNLOCK_BY_STORE`]), it is
        // made here.
        unsafe {
            #[cfg(all(CONFIG_UNINLINE_SPIN_UNLOCK, not(CONFIG_PREEMPT_RT)))]
            kernel::bindings::_raw_spin_unlock(ptr.cast());
            #[cfg(not(all(CONFIG_UNINLINE_SPIN_UNLOCK, not(CONFIG_PREEMPT_RT))))]
            if UNLOCK_BY_STORE {
                unlock_by_store(ptr);
            } else {
                kernel::bindings::spin_unlock(ptr);
            }
        }
    }
}

/// Whether `spin_unlock` is, in this kernel, inline as a release store of
/// 0 to the lock's `locked` byte and nothing else, as in the perf kernel:
/// x86 (total store order, little-endian: the byte is the lock word's
/// first) with queued spinlocks, the unlock inline, no paravirt spinlocks
/// (whose unlock may kick a halted waiter), no lockdep (`spin_release`),
/// no spinlock debugging, no preempt count (`preempt_enable` is then a
/// compiler barrier), no KCSAN and no `MMIOWB`
/// (`asm-generic/qspinlock.h`'s `queued_spin_unlock`,
/// `do_raw_spin_unlock` and `__raw_spin_unlock` in 6.12). There
/// [`unlock_by_store`] makes it, and the C helper `rust_helper_spin_unlock`
/// costs no call on every locked zpool call (1 to 3 % of zspan_rs's zswap
/// profile samples, 2026-12-07); elsewhere the helper, or
/// `_raw_spin_unlock`, does. The debug kernel, which the tests run, takes
/// the C path; the perf kernel, which the benchmarks run, this one.
const UNLOCK_BY_STORE: bool = cfg!(all(
    target_arch = "x86_64",
    CONFIG_QUEUED_SPINLOCKS,
    not(any(
        CONFIG_UNINLINE_SPIN_UNLOCK,
        CONFIG_PREEMPT_RT,
        CONFIG_PARAVIRT_SPINLOCKS,
        CONFIG_DEBUG_SPINLOCK,
        CONFIG_LOCKDEP,
        CONFIG_PREEMPT_COUNT,
        CONFIG_MMIOWB,
        CONFIG_KCSAN
    ))
));

// Where the store is the unlock, a `spinlock_t` is its `raw_spinlock_t`,
// which is its `qspinlock`: 4 bytes, nothing but the lock word.
const _: () =
    assert!(!UNLOCK_BY_STORE || core::mem::size_of::<kernel::bindings::spinlock_t>() == 4);

/// `spin_unlock` as the kernel inlines it where [`UNLOCK_BY_STORE`]: a
/// release store of 0 to the lock's `locked` byte.
///
/// # Safety
///
/// [`UNLOCK_BY_STORE`] holds, and the caller holds the spinlock at `ptr`,
/// which `__spin_lock_init` initialized.
#[cfg(not(all(CONFIG_UNINLINE_SPIN_UNLOCK, not(CONFIG_PREEMPT_RT))))]
#[inline]
unsafe fn unlock_by_store(ptr: *mut kernel::bindings::spinlock_t) {
    // SAFETY: the caller's: `ptr` is an initialized spinlock, whose first
    // member is its `raw_spinlock_t`; the byte is aligned (a `u8`) and
    // written atomically by every CPU that takes or releases the lock.
    // The release store orders the critical section's accesses before it,
    // as `smp_store_release` does.
    unsafe {
        let raw = ptr.cast::<kernel::bindings::raw_spinlock_t>();
        let locked =
            core::ptr::addr_of_mut!((*raw).raw_lock.__bindgen_anon_1.__bindgen_anon_1.locked);
        core::sync::atomic::AtomicU8::from_ptr(locked).store(0, Ordering::Release);
    }
}

/// A shard under its spinlock, and a hint of whether a CPU holds it.
///
/// `held` is set by the holder just after it takes `lock` and cleared just
/// before it lets go ([`Held`]); a CPU about to take the lock that finds it
/// set has met another CPU on it, and counts that
/// (`LockedPool::contention`). It guards nothing: a hint read without the
/// lock, with relaxed loads and stores (plain moves on x86); the count is
/// an atomic add made only by a CPU that met another (and waits for the
/// lock anyway), so an uncontended lock costs no atomic more.
#[pin_data]
struct Inner<C: Core> {
    #[pin]
    lock: Lock<Shard<C>, ShardLockBackend>,
    held: AtomicBool,
    /// What the core published for its lockless maps
    /// ([`Core::LOCKLESS_MAP`]), written under `lock`, read without.
    view: C::View,
}

/// A shard's lock, held: the guard, and the hint to clear before it is let
/// go (`Drop` runs before the fields are dropped, so the hint is cleared
/// while the lock is still held).
struct Held<'a, C> {
    guard: Guard<'a, Shard<C>, ShardLockBackend>,
    hint: &'a AtomicBool,
}

impl<C> core::ops::Deref for Held<'_, C> {
    type Target = Shard<C>;

    fn deref(&self) -> &Shard<C> {
        &self.guard
    }
}

impl<C> core::ops::DerefMut for Held<'_, C> {
    fn deref_mut(&mut self) -> &mut Shard<C> {
        &mut self.guard
    }
}

impl<C> Drop for Held<'_, C> {
    fn drop(&mut self) {
        self.hint.store(false, Ordering::Relaxed);
    }
}

impl<C: Core> Inner<C> {
    /// Takes the lock; counts in `contention` if another CPU held it.
    fn acquire<'a>(&'a self, contention: &AtomicU64) -> Held<'a, C> {
        if self.held.load(Ordering::Relaxed) {
            contention.fetch_add(1, Ordering::Relaxed);
        }
        let guard = self.lock.lock();
        self.held.store(true, Ordering::Relaxed);
        Held {
            guard,
            hint: &self.held,
        }
    }
}

/// The most shards a core may have ([`Core::SHARDS`]).
pub(crate) const MAX_SHARDS: usize = 8;

/// A lockdep class for each shard's lock, in order, so that
/// [`LockedPool::verify`] may hold them all (shard 0's first); no other
/// code holds two.
fn shard_keys() -> [&'static LockClassKey; MAX_SHARDS] {
    [
        kernel::static_lock_class!(),
        kernel::static_lock_class!(),
        kernel::static_lock_class!(),
        kernel::static_lock_class!(),
        kernel::static_lock_class!(),
        kernel::static_lock_class!(),
        kernel::static_lock_class!(),
        kernel::static_lock_class!(),
    ]
}

/// Shard `shard` of a pool of `C`, its core built in place in a box, under
/// a spinlock of lockdep class `key`.
fn new_shard<C: Core>(shard: usize, key: &'static LockClassKey) -> Result<Pin<KBox<Inner<C>>>> {
    let mut core = KBox::<C>::new_uninit(GFP_KERNEL)?;
    // SAFETY: the box is valid for writes of a `C`, aligned; `init_at`
    // initializes it.
    let core = unsafe {
        C::init_at(core.as_mut_ptr(), shard);
        core.assume_init()
    };
    let shard = Shard { core, published: 0 };
    let inner = KBox::pin_init(
        pin_init!(Inner {
            lock <- Lock::new(shard, c_str!("zpool_pool::shard"), key),
            held: AtomicBool::new(false),
            view: C::new_view(),
        }),
        GFP_KERNEL,
    )?;
    {
        let mut shard = inner.lock.lock();
        // SAFETY: `inner` is pinned, so `view` stays at its address, and
        // it is dropped after `lock`, which holds the core (the fields'
        // order).
        unsafe { shard.core.attach(&inner.view) };
    }
    Ok(inner)
}

/// A pool of zswap's: the core `C`'s shards, each under its own spinlock.
///
/// # Invariants
///
/// `counters` is boxed, so its address is stable, and `debugfs` (whose
/// files point into it, through `counters.pool` to the pool, and to the
/// pool's `total_pages` and `contention`, which the pinned pool keeps in
/// place) is declared first, so it is dropped first. `counters.pool` is null or the
/// pool, which is pinned. `first` is shard 0, `rest[i]` shard `i` for
/// `0 < i < C::SHARDS` (`rest[0]` and the entries past them `None`):
/// `C::SHARDS` shards in all, at most [`MAX_SHARDS`]. zpool's
/// `total_pages` is the sum of the shards' `published`.
#[pin_data(PinnedDrop)]
pub(crate) struct LockedPool<C: Core> {
    debugfs: Dir,
    counters: KBox<Counters>,
    /// The shards' [`Core::total_pages`], added, for zpool's `total_pages`,
    /// which reads it without a lock; and the times a CPU found a shard's
    /// lock held by another as it came to take it ([`Inner`]: from
    /// [`CONTENDED`] on, the pool is *contended*). In the pool, not in
    /// `counters`: every zpool call reads or writes one of them, and a
    /// second allocation would be a second cache line (and page) a call.
    total_pages: AtomicU64,
    contention: AtomicU64,
    first: Pin<KBox<Inner<C>>>,
    /// A fixed array, not a vector: finding a shard (each call of
    /// zpool's does) is a bounds check and a load, no length to read.
    rest: [Option<Pin<KBox<Inner<C>>>>; MAX_SHARDS],
    /// Set once the first bad handle was reported with a WARN.
    warned: AtomicBool,
    /// `counters.pool` points at the pool: it must not move.
    #[pin]
    _pin: PhantomPinned,
}

/// WARNs once with `msg` (the module's name is prepended).
fn warn(msg: &CStr) {
    // SAFETY: the message is a NUL-terminated string; `rkm_warn` only
    // WARNs.
    unsafe { rkm_warn(msg.as_char_ptr()) };
}

impl<C: Core> LockedPool<C> {
    /// Reports a handle that is not live in this pool: one `pr_err` and one
    /// WARN for the first, a count for every one (the core's).
    fn bad_handle(&self, op: &str, handle: u64, why: C::HandleError) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            pr_err!(
                "bad handle {:#x} in {}: {}; the pool is left as it was\n",
                handle,
                op,
                why
            );
            warn(c_str!("bad handle"));
        }
    }

    /// Shard `i`: the first for a number that is no shard's (whose core
    /// then rejects the handle that gave it).
    #[inline]
    fn shard(&self, i: usize) -> &Inner<C> {
        // Shard 0 first: a pool of one shard (or a small one, all of
        // whose calls go to shard 0) pays one test.
        if i != 0 {
            if let Some(Some(shard)) = self.rest.get(i) {
                return shard;
            }
        }
        &self.first
    }

    /// Shard `i`, if the pool has it.
    fn get_shard(&self, i: usize) -> Option<&Inner<C>> {
        if i == 0 {
            return Some(&self.first);
        }
        self.rest.get(i)?.as_deref()
    }

    /// The shards, in order.
    fn shards(&self) -> impl Iterator<Item = &Inner<C>> {
        Iterator::chain(
            core::iter::once(&*self.first),
            self.rest.iter().flatten().map(|shard| &**shard),
        )
    }

    /// Publishes a change of `shard`'s total pages, if there is one: adds
    /// the difference to zpool's `total_pages` (one atomic add, only when
    /// the shard's pages changed).
    fn publish_total_pages(&self, shard: &mut Shard<C>) {
        let pages = shard.core.total_pages_now();
        if pages != shard.published {
            self.total_pages
                .fetch_add(pages.wrapping_sub(shard.published), Ordering::Relaxed);
            shard.published = pages;
        }
    }

    /// Shard `i`'s lock ([`LockedPool::shard`]), taken.
    fn acquire(&self, i: usize) -> Held<'_, C> {
        self.shard(i).acquire(&self.contention)
    }

    /// How many times a CPU found a shard's lock held by another as it
    /// came to take it (a hint: see [`Inner`]).
    // The test modules read it; the drivers show it in debugfs.
    #[allow(dead_code)]
    pub(crate) fn contention(&self) -> u64 {
        self.contention.load(Ordering::Relaxed)
    }

    /// Runs `f` on the core of shard `i`, under its lock, and publishes a
    /// change of its total pages.
    fn locked<R>(&self, i: usize, f: impl FnOnce(&mut C) -> R) -> R {
        let mut shard = self.acquire(i);
        let r = f(&mut shard.core);
        self.publish_total_pages(&mut shard);
        r
    }

    /// The rest of a `map` of the object of `handle` in shard `i`, mapped
    /// (and so pinned) in two pieces: this CPU's buffer, with the object's
    /// bytes unless `mode` is write-only.
    fn map_split(&self, i: usize, handle: u64, mode: MapMode, pieces: &Pieces) -> *mut u8 {
        // SAFETY: no lock of the pool is held, and zpool unmaps on this CPU
        // before it sleeps (the core's `SLEEP_MAPPED` is false, and so is
        // the driver's `sleep_mapped`).
        match unsafe { map_area::get(mode, handle, pieces) } {
            Some(buf) => {
                if mode != MapMode::WriteOnly {
                    // SAFETY: the object is mapped, so pinned; the buffer is
                    // a page, the object at most one.
                    unsafe { copy_pieces(pieces, buf, true) };
                }
                buf.as_ptr()
            }
            None => {
                // The module has no buffers: undo the map.
                let _ = self.unmap_held(i, handle);
                pr_err!("no per-CPU buffer to map an object in two pieces\n");
                core::ptr::null_mut()
            }
        }
    }

    /// Ends the map of `handle` in shard `i`: without the lock if it was
    /// mapped so, else under it.
    #[inline]
    fn unmap_held(&self, i: usize, handle: u64) -> Result<(), C::HandleError> {
        if C::LOCKLESS_MAP {
            let _rcu = C::UNMAP_LOCKLESS_READS.then(RcuRead::new);
            // SAFETY: as in `map`; the section is held if the core's unmap
            // reads what it frees after a grace period.
            if unsafe { C::unmap_lockless(&self.shard(i).view, handle) } {
                return Ok(());
            }
        }
        if C::UNMAP_KEEPS_PAGES {
            self.quiet(i, |core| core.unmap(handle))
        } else {
            self.locked(i, |core| core.unmap(handle))
        }
    }

    /// Runs `f` on the core of shard `i`, under its lock, publishing
    /// nothing: for `map`, which changes no page count in any core, and
    /// the `unmap` of a core whose unmap does not either
    /// ([`Core::UNMAP_KEEPS_PAGES`]).
    fn quiet<R>(&self, i: usize, f: impl FnOnce(&mut C) -> R) -> R {
        f(&mut self.acquire(i).core)
    }

    /// Runs `f` while holding the lock of the shard of `handle`: for the
    /// test that a lockless core's `map` and `unmap` take no lock (they
    /// would deadlock here, and lockdep say so).
    #[allow(dead_code)]
    pub(crate) fn while_locked<R>(&self, handle: u64, f: impl FnOnce() -> R) -> R {
        let _held = self.acquire(C::shard_of_handle(handle));
        f()
    }

    /// Runs `f` on the core of each shard in turn, under its lock, and
    /// publishes a change of its total pages: for tests that act on the
    /// core directly (a zspan test compacts while another CPU maps).
    #[allow(dead_code)]
    pub(crate) fn with_each_core(&self, f: impl Fn(&mut C)) {
        for i in 0..MAX_SHARDS {
            if self.get_shard(i).is_some() {
                self.locked(i, &f);
            }
        }
    }

    /// The cores' statistics, added (each shard's lock taken in turn).
    pub(crate) fn stats(&self) -> C::Stats {
        let contention = &self.contention;
        let first = self.first.acquire(contention).core.stats();
        self.shards().skip(1).fold(first, |total, shard| {
            C::add_stats(total, &shard.acquire(contention).core.stats())
        })
    }

    /// Checks, under the locks of all shards (taken in order, held
    /// together), each core's invariants ([`Core::check`]), that each shard
    /// published its core's pages, and that zpool's `total_pages` is their
    /// sum: every call that changes a shard's pages publishes the change
    /// under its lock, so this holds whatever runs on other CPUs. Returns
    /// what is wrong first. Walks the whole pool: for tests.
    #[allow(dead_code)]
    pub(crate) fn verify(&self) -> Result<(), &'static str> {
        self.verify_from(0, 0)
    }

    /// [`LockedPool::verify`] from shard `i` on, the shards before it
    /// locked, having published `sum` pages. Recurses once a shard (at most
    /// [`MAX_SHARDS`] deep), each frame holding its shard's lock.
    fn verify_from(&self, i: usize, sum: u64) -> Result<(), &'static str> {
        let Some(inner) = self.get_shard(i) else {
            if self.total_pages.load(Ordering::Relaxed) != sum {
                return Err("total_pages differs from the sum of the shards' pages");
            }
            return Ok(());
        };
        let shard = inner.acquire(&self.contention);
        shard.core.check()?;
        if shard.published != C::total_pages(&shard.core.stats()) {
            return Err("a shard's published pages differ from its pages");
        }
        self.verify_from(i.wrapping_add(1), sum.wrapping_add(shard.published))
    }
}

impl<C: Core> ZpoolAllocator for LockedPool<C> {
    fn create(name: &CStr, _gfp: Gfp) -> Result<Pin<KBox<Self>>> {
        let counters = Counters::new::<C>()?;
        let debugfs = Dir::new_in(name, &DEBUGFS_ROOT);
        // SAFETY: `counters` is boxed, the counters of a pool of `C`, and
        // moves into the pool next to `debugfs`, which is dropped first
        // (the type invariant).
        unsafe { counters.show_in::<C>(&debugfs) };
        let keys = shard_keys();
        let shards = C::SHARDS.clamp(1, MAX_SHARDS);
        let first = new_shard::<C>(0, keys[0])?;
        let mut rest: [Option<Pin<KBox<Inner<C>>>>; MAX_SHARDS] = [const { None }; MAX_SHARDS];
        for ((i, &key), slot) in keys
            .iter()
            .enumerate()
            .zip(rest.iter_mut())
            .take(shards)
            .skip(1)
        {
            *slot = Some(new_shard::<C>(i, key)?);
        }
        let pool = KBox::pin_init(
            try_pin_init!(LockedPool {
                debugfs,
                counters,
                total_pages: AtomicU64::new(0),
                contention: AtomicU64::new(0),
                first,
                rest,
                warned: AtomicBool::new(false),
                _pin: PhantomPinned,
            }),
            GFP_KERNEL,
        )?;
        // The computed files read the shards from now on: the pool is
        // pinned and outlives the files (the type invariant).
        let this = (&*pool as *const Self).cast_mut().cast::<c_void>();
        pool.counters.pool.store(this, Ordering::Release);
        // SAFETY: the pool is pinned, so the counters stay in place, and
        // its `debugfs` (and so the files) goes first when it is dropped
        // (the type invariant).
        unsafe {
            pool.debugfs
                .add_u64(c_str!("total_pages"), &pool.total_pages);
            pool.debugfs
                .add_u64(c_str!("lock_contention"), &pool.contention);
        }
        Ok(pool)
    }

    fn malloc(&self, size: usize, gfp: Gfp) -> Result<u64> {
        if gfp.highmem() {
            // The pools hand out direct-map addresses: no highmem page
            // (zbud and z3fold refuse it with -EINVAL).
            self.counters.highmem.fetch_add(1, Ordering::Relaxed);
            return Err(EINVAL);
        }
        let contended = self.contention.load(Ordering::Relaxed) >= CONTENDED;
        // Only a contended pool of several shards asks which CPU this is
        // (a call to C): zbud's and z3fold's one shard needs no answer.
        let cpu = if C::SHARDS > 1 && contended {
            this_cpu()
        } else {
            0
        };
        let i = C::shard_for_size(
            size,
            self.total_pages.load(Ordering::Relaxed),
            contended,
            cpu,
        );
        let mut staged = Staged::new();
        loop {
            let (result, retry, wanted) = {
                let mut shard = self.acquire(i);
                let core = &mut shard.core;
                // The first try has no page to lend (a later one has at
                // least one: `top_up`): the core gets none
                // (`PageFlags::none`, no stash lent), and one that is out
                // of memory may be short of pages (`pages_wanted` says how
                // many). A later try lends the staged pages through this
                // CPU's stash, which counts what the core asked for beyond
                // them.
                let (result, short) = if staged.is_empty() {
                    let r = core.alloc_uncounted(size, PageFlags::none(gfp));
                    (r, true)
                } else {
                    // SAFETY: the spinlock is held, so preemption is off,
                    // for the whole call, and the core lends no stash.
                    let (r, shortfall) =
                        unsafe { staged.lend(|| core.alloc_uncounted(size, PageFlags::new(gfp))) };
                    (r, shortfall > 0)
                };
                if C::LOCKLESS_MAP && result.is_ok() {
                    core.publish(&self.shard(i).view);
                }
                let retry = matches!(result, Err(AllocError::NoMemory)) && short;
                let wanted = if retry { core.pages_wanted(size) } else { 0 };
                if let (Err(e), false) = (result, retry) {
                    core.count_rejection(e);
                }
                self.publish_total_pages(&mut shard);
                (result, retry, wanted)
            };
            match result {
                Ok(handle) => return Ok(handle),
                Err(e) if !retry => return Err(Error::from_errno(e.to_errno())),
                // The pages the core wants, outside the lock (a span's
                // pages at once, not one a try): each try takes at least
                // one more, and `top_up` stops at a stash's worth.
                Err(_) if staged.top_up(wanted, gfp) => {}
                Err(e) => {
                    self.locked(i, |core| core.count_rejection(e));
                    return Err(ENOMEM);
                }
            }
        }
    }

    fn free(&self, handle: u64) {
        let i = C::shard_of_handle(handle);
        let view = &self.shard(i).view;
        let freed = self.locked(i, |core| {
            let r = core.free(handle);
            if C::LOCKLESS_MAP {
                // The free may have dropped the table's root.
                core.publish(view);
            }
            r
        });
        if let Err(why) = freed {
            self.bad_handle("free", handle, why);
        }
    }

    fn map(&self, handle: u64, mode: MapMode) -> *mut u8 {
        let i = C::shard_of_handle(handle);
        if C::LOCKLESS_MAP {
            let found = {
                let _rcu = RcuRead::new();
                // SAFETY: the shard's core publishes its view there under
                // the lock; it is reset only when the pool is dropped, which
                // zpool does not do while it maps (nor could: `self` is
                // borrowed); the nodes it drops are freed after the grace
                // period this read-side section holds back.
                unsafe { C::map_lockless(&self.shard(i).view, handle) }
            };
            match found {
                Some(Mapped::Direct(addr)) => return addr.as_ptr(),
                Some(Mapped::Split(pieces)) => return self.map_split(i, handle, mode, &pieces),
                None => {}
            }
        }
        match self.quiet(i, |core| core.map(handle)) {
            Ok(Mapped::Direct(addr)) => addr.as_ptr(),
            Ok(Mapped::Split(pieces)) => self.map_split(i, handle, mode, &pieces),
            Err(why) => {
                self.bad_handle("map", handle, why);
                core::ptr::null_mut()
            }
        }
    }

    fn unmap(&self, handle: u64) {
        // An object this task mapped in two pieces: its bytes go back from
        // this CPU's buffer first, outside the pool's lock (the core pins a
        // mapped object: neither moved nor freed until its unmap, below).
        // (A core that never splits an object skips the look.)
        let held = if C::SLEEP_MAPPED {
            None
        } else {
            map_area::held_for(handle)
        };
        if let Some((buf, writable, pieces)) = held {
            if writable {
                // SAFETY: the object is mapped, so pinned; the buffer holds
                // its bytes, the caller's changes included.
                unsafe { copy_pieces(&pieces, buf, false) };
            }
            // SAFETY: this task holds the buffer on this CPU (`held_for`)
            // and uses it no more.
            unsafe { map_area::put() };
        }
        let i = C::shard_of_handle(handle);
        if let Err(why) = self.unmap_held(i, handle) {
            self.bad_handle("unmap", handle, why);
        }
    }

    /// Every page the pool holds: the object pages and the pages of its
    /// handle table.
    fn total_pages(&self) -> u64 {
        self.total_pages.load(Ordering::Relaxed)
    }
}

#[pinned_drop]
impl<C: Core> PinnedDrop for LockedPool<C> {
    fn drop(self: Pin<&mut Self>) {
        // The shards' leaks, added: one report for the pool.
        let (mut pages, mut objects) = (0u64, 0u64);
        for shard in self.shards() {
            if let Err(leak) = shard.acquire(&self.contention).core.reset() {
                pages = pages.wrapping_add(leak.pages);
                objects = objects.wrapping_add(leak.objects);
            }
        }
        if let Err(leak) = Leak::check(pages, objects) {
            pr_err!("{}; their pages are left alone\n", leak);
            LEAKS.add(&leak);
            warn(c_str!("pool destroyed while not empty"));
        }
        if C::LOCKLESS_MAP {
            // The table nodes it freed after a grace period: freed before
            // the pool (and maybe the module) goes.
            rcu_barrier();
        }
    }
}

/// Implements [`Core`] for the pool of the core module `$core` (`zbud`,
/// `z3fold`) on [`KernelPages`](crate::pages::KernelPages), whose API is
/// the same: `Pool::{new, alloc, free, map, unmap, reset, check, stats}`,
/// `Handle`, `HandleError`, `Stats` with `pages` and `table_pages`, and
/// `AllocError::to_errno`. The debugfs files are the `Stats` fields listed,
/// each under the name given.
// zspan_rs implements `Core` by hand.
#[allow(unused_macros)]
macro_rules! impl_core {
    (
        $core:ident,
        $(lockless_map: $lockless:literal,)?
        counters: { $($name:literal => $field:ident),* $(,)? }
    ) => {
        impl $crate::zpool_pool::Core for $crate::$core::Pool<$crate::pages::KernelPages> {
            type HandleError = $crate::$core::HandleError;
            type Stats = $crate::$core::Stats;
            const COUNTERS: &'static [&'static kernel::str::CStr] =
                &[$(kernel::c_str!($name)),*];
            type View = $crate::zalloc::LocklessView;

            fn new_view() -> Self::View {
                $crate::zalloc::LocklessView::new()
            }
            $(
                const LOCKLESS_MAP: bool = $lockless;

                fn publish(&mut self, view: &$crate::zalloc::LocklessView) {
                    Self::publish(self, view)
                }

                #[inline]
                unsafe fn map_lockless(
                    view: &$crate::zalloc::LocklessView,
                    handle: u64,
                ) -> Option<$crate::zpool_pool::Mapped> {
                    // SAFETY: the caller's: `view` is where this pool
                    // published its table, the pool is not reset meanwhile,
                    // and the caller is in an RCU read-side section, which
                    // the table's deferred frees (`KernelPages`) wait for.
                    unsafe { Self::map_lockless(view, $crate::$core::Handle::from_raw(handle)) }
                        .map($crate::zpool_pool::Mapped::Direct)
                }
            )?

            fn new() -> Self {
                Self::new($crate::pages::KernelPages)
            }

            fn alloc_uncounted(
                &mut self,
                size: usize,
                flags: $crate::pages::PageFlags,
            ) -> Result<u64, $crate::zalloc::AllocError> {
                Self::alloc_uncounted(self, size, flags).map(|handle| handle.to_raw())
            }

            fn count_rejection(&mut self, error: $crate::zalloc::AllocError) {
                Self::count_rejection(self, error)
            }

            fn free(&mut self, handle: u64) -> Result<(), Self::HandleError> {
                Self::free(self, $crate::$core::Handle::from_raw(handle))
            }

            fn map(&mut self, handle: u64) -> Result<$crate::zpool_pool::Mapped, Self::HandleError> {
                Self::map(self, $crate::$core::Handle::from_raw(handle))
                    .map($crate::zpool_pool::Mapped::Direct)
            }

            fn unmap(&mut self, handle: u64) -> Result<(), Self::HandleError> {
                Self::unmap(self, $crate::$core::Handle::from_raw(handle))
            }

            fn reset(&mut self) -> Result<(), $crate::zalloc::Leak> {
                Self::reset(self)
            }

            fn check(&self) -> Result<(), &'static str> {
                Self::check(self)
            }

            fn stats(&self) -> Self::Stats {
                Self::stats(self)
            }

            fn counters(s: &Self::Stats) -> [u64; $crate::zpool_pool::MAX_COUNTERS] {
                let mut out = [0; $crate::zpool_pool::MAX_COUNTERS];
                out.iter_mut().zip([$(s.$field),*]).for_each(|(o, v)| *o = v);
                out
            }

            /// The object pages and the pages of the handle table.
            fn total_pages(s: &Self::Stats) -> u64 {
                s.pages + s.table_pages
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use impl_core;
