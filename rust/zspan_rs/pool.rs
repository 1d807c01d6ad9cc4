// SPDX-License-Identifier: GPL-2.0

//! zspan_rs's pool: the kernel-agnostic [`zspan::Pool`](crate::zspan::Pool)
//! behind the shared zpool glue (`rust/kglue/zpool_pool.rs`: a spinlock per
//! shard, debugfs, reports, and the per-CPU buffer for objects mapped in
//! two pieces). A pool is [`zspan::SHARDS`] = 8 zspan pools, each with its
//! own lock: from 4096 pages on (`shard_from_pages`), class `c` is in
//! shard `c % 8`; before, all are in shard 0 until its CPUs have met on its
//! locks (the glue's *contended*), and then the stores of CPU `k` go to
//! shard `k % n`, with `n` = 2 or 4 shards as the pool has 512 pages for
//! each (`zspan::shards_in_use`), whatever their class. Each handle names
//! its shard (see *Shards* in `rust/zspan/src/zspan.rs`).
//!
//! Shared by `zspan_rs.ko` (the zpool driver), `test_zspan_rs.ko` and
//! `stress_zspan_rs.ko`. An object that crosses a page boundary is mapped
//! through this CPU's buffer, so nothing may sleep while it is mapped
//! ([`Core::SLEEP_MAPPED`] is false, as the driver's `sleep_mapped`). Every
//! free is followed by a bounded compaction of the freed object's class,
//! when its spans have a span's worth of room (`Pool::after_free`: at most
//! 4 objects moved or 64 records looked at, under the lock). `map` and
//! `unmap` take no lock: a map pins its object through the shard's
//! [`Shared`] (the glue's view), which the pool looks at before it moves or
//! frees an object (*Lockless maps* in `rust/zspan/src/zspan.rs`).

use core::sync::atomic::{AtomicU64, Ordering};
use kernel::c_str;
use kernel::prelude::*;
use kernel::str::CStr;

use crate::pages::{KernelPages, PageFlags};
use crate::zalloc::AllocError;
use crate::zpool_pool::{Core, LockedPool, Mapped, Pieces, MAX_COUNTERS};
use crate::zspan::{self, Handle, HandleError, Mapping, Pool, Shared, Stats};

extern "C" {
    /// The module's `shard_from_pages` parameter (`shard_param.c.inc`):
    /// the pages from which its pools shard their classes. sysfs may write
    /// it at any time.
    static mut rkm_shard_from_pages: kernel::ffi::c_ulong;
}

/// The module's `shard_from_pages` parameter, as an atomic.
///
/// Rust touches it only through this atomic; the kernel's parameter code
/// stores it with a plain store of an aligned word, which is single-copy
/// atomic on the architectures the module is built for (C code that reads
/// a parameter under such writes uses `READ_ONCE`, as this does).
fn shard_from() -> &'static AtomicU64 {
    // SAFETY: the parameter is a `c_ulong`, the size and alignment of a
    // `u64` here (the assertion below), and lives as long as the module;
    // every access from Rust goes through this `AtomicU64`, and the C
    // side's stores are word stores (above).
    unsafe { &*core::ptr::addr_of_mut!(rkm_shard_from_pages).cast::<AtomicU64>() }
}

const _: () = assert!(
    core::mem::size_of::<kernel::ffi::c_ulong>() == core::mem::size_of::<AtomicU64>()
        && core::mem::align_of::<kernel::ffi::c_ulong>() == core::mem::align_of::<AtomicU64>()
);

/// The pages from which this module's pools shard their classes now.
pub(crate) fn shard_from_pages() -> u64 {
    shard_from().load(Ordering::Relaxed)
}

/// Sets the module's `shard_from_pages`: the stress module shards from the
/// first page, so that its threads' objects (its pool stays small) are
/// spread over all the shards' locks.
// The stress module's only.
#[allow(dead_code)]
pub(crate) fn set_shard_from_pages(pages: u64) {
    shard_from().store(pages, Ordering::Relaxed);
}

/// A zspan pool of zswap's.
pub(crate) type ZspanPool = LockedPool<Pool<KernelPages>>;

/// The pieces of a split mapping.
fn pieces(m: &Mapping) -> Pieces {
    let p = m.pieces();
    let first = p.first().copied().unwrap_or((m.first(), 0));
    let second = p.get(1).copied().unwrap_or((first.0, 0));
    [first, second]
}

/// What the glue maps for `m`: its address, or its pieces.
fn mapped(m: &Mapping) -> Mapped {
    if m.is_direct() {
        Mapped::Direct(m.first())
    } else {
        Mapped::Split(pieces(m))
    }
}

impl Core for Pool<KernelPages> {
    type HandleError = HandleError;
    type Stats = Stats;
    const COUNTERS: &'static [&'static CStr] = &[
        c_str!("pages"),
        c_str!("table_pages"),
        c_str!("spare_pages"),
        c_str!("objects"),
        c_str!("spans"),
        c_str!("mapped"),
        c_str!("class_bytes"),
        c_str!("moved"),
        c_str!("spans_compacted"),
        c_str!("reject_invalid"),
        c_str!("reject_too_big"),
        c_str!("reject_no_memory"),
        c_str!("bad_handles"),
    ];
    const SLEEP_MAPPED: bool = false;
    const UNMAP_KEEPS_PAGES: bool = true;
    const LOCKLESS_MAP: bool = true;
    // Its unmap exchanges a pin of the view: it reads no table.
    const UNMAP_LOCKLESS_READS: bool = false;
    const SHARDS: usize = zspan::SHARDS;
    type View = Shared;

    fn new_view() -> Shared {
        Shared::new()
    }

    unsafe fn attach(&mut self, view: &Shared) {
        // SAFETY: the caller's: `view` outlives the pool at its address;
        // the glue gives each shard's core its own.
        unsafe { Pool::share(self, view) }
    }

    // No `publish`: the pool publishes to the view it shares (`attach`)
    // itself, before each call that may change its tables returns.

    #[inline]
    unsafe fn map_lockless(view: &Shared, handle: u64) -> Option<Mapped> {
        // SAFETY: the caller's: `view` is the one this shard's pool shares,
        // the pool is not reset meanwhile, and the caller is in an RCU
        // read-side section, which the tables' deferred frees
        // (`KernelPages`) wait for.
        unsafe { Pool::<KernelPages>::map_lockless(view, Handle::from_raw(handle)) }
            .map(|m| mapped(&m))
    }

    #[inline]
    unsafe fn unmap_lockless(view: &Shared, handle: u64) -> bool {
        Pool::<KernelPages>::unmap_lockless(view, Handle::from_raw(handle))
    }

    fn new() -> Self {
        Pool::new(KernelPages)
    }

    unsafe fn init_at(slot: *mut Self, shard: usize) {
        // SAFETY: the caller's.
        unsafe { Pool::init_shard_at(slot, KernelPages, shard) }
    }

    fn shard_for_size(size: usize, pool_pages: u64, contended: bool, cpu: usize) -> usize {
        // A contended pool shards whatever its size: its CPUs meet on the
        // one lock of a small pool. It uses as many shards as its size
        // pays the tables of (`zspan::shards_in_use`), one a CPU below
        // the line.
        zspan::shard_of_size(size, pool_pages, shard_from_pages(), contended, cpu)
    }

    fn shard_of_handle(handle: u64) -> usize {
        zspan::shard_of_handle(Handle::from_raw(handle))
    }

    fn add_stats(total: Stats, shard: &Stats) -> Stats {
        total.plus(shard)
    }

    fn alloc_uncounted(&mut self, size: usize, flags: PageFlags) -> Result<u64, AllocError> {
        Pool::alloc_uncounted(self, size, flags).map(|handle| handle.to_raw())
    }

    fn count_rejection(&mut self, error: AllocError) {
        Pool::count_rejection(self, error)
    }

    fn pages_wanted(&self, size: usize) -> usize {
        Pool::pages_wanted(self, size)
    }

    fn free(&mut self, handle: u64) -> Result<(), HandleError> {
        Pool::free(self, Handle::from_raw(handle))?;
        self.after_free();
        Ok(())
    }

    fn map(&mut self, handle: u64) -> Result<Mapped, HandleError> {
        Pool::map(self, Handle::from_raw(handle)).map(|m| mapped(&m))
    }

    fn unmap(&mut self, handle: u64) -> Result<(), HandleError> {
        Pool::release(self, Handle::from_raw(handle))
    }

    fn reset(&mut self) -> Result<(), crate::zalloc::Leak> {
        Pool::reset(self)
    }

    fn check(&self) -> Result<(), &'static str> {
        Pool::check(self)
    }

    fn stats(&self) -> Stats {
        Pool::stats(self)
    }

    fn counters(s: &Stats) -> [u64; MAX_COUNTERS] {
        let mut out = [0; MAX_COUNTERS];
        let values = [
            s.pages,
            s.table_pages,
            s.spare_pages,
            s.objects,
            s.spans,
            s.mapped,
            s.class_bytes,
            s.moved,
            s.spans_compacted,
            s.rejected_invalid,
            s.rejected_too_big,
            s.rejected_no_memory,
            s.bad_handles,
        ];
        out.iter_mut().zip(values).for_each(|(o, v)| *o = v);
        out
    }

    /// The spans' pages, the spare pages and the pages of the two tables.
    fn total_pages(s: &Stats) -> u64 {
        s.pages + s.spare_pages + s.table_pages
    }

    fn total_pages_now(&self) -> u64 {
        Pool::all_pages(self)
    }
}
