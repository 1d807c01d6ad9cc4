// SPDX-License-Identifier: GPL-2.0

//! zspan_rs's pool: the kernel-agnostic [`zspan::Pool`](crate::zspan::Pool)
//! behind the shared zpool glue (`rust/kglue/zpool_pool.rs`: one spinlock,
//! debugfs, reports, and the per-CPU buffer for objects mapped in two
//! pieces).
//!
//! Shared by `zspan_rs.ko` (the zpool driver), `test_zspan_rs.ko` and
//! `stress_zspan_rs.ko`. An object that crosses a page boundary is mapped
//! through this CPU's buffer, so nothing may sleep while it is mapped
//! ([`Core::SLEEP_MAPPED`] is false, as the driver's `sleep_mapped`). Every
//! free is followed by a bounded compaction of the freed object's class,
//! when its spans have a span's worth of room (`Pool::after_free`: at most
//! 4 objects moved or 64 records looked at, under the lock).

use kernel::c_str;
use kernel::prelude::*;
use kernel::str::CStr;

use crate::pages::KernelPages;
use crate::zalloc::AllocError;
use crate::zpool::Gfp;
use crate::zpool_pool::{Core, LockedPool, Mapped, Pieces, MAX_COUNTERS};
use crate::zspan::{Handle, HandleError, Mapping, Pool, Stats};

/// A zspan pool of zswap's.
pub(crate) type ZspanPool = LockedPool<Pool<KernelPages>>;

/// The pieces of a split mapping.
fn pieces(m: &Mapping) -> Pieces {
    let p = m.pieces();
    let first = p.first().copied().unwrap_or((m.first(), 0));
    let second = p.get(1).copied().unwrap_or((first.0, 0));
    [first, second]
}

impl Core for Pool<KernelPages> {
    type HandleError = HandleError;
    type Stats = Stats;
    const COUNTERS: &'static [&'static CStr] = &[
        c_str!("pages"),
        c_str!("table_pages"),
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

    fn new() -> Self {
        Pool::new(KernelPages)
    }

    unsafe fn init_at(slot: *mut Self) {
        // SAFETY: the caller's.
        unsafe { Pool::init_at(slot, KernelPages) }
    }

    fn alloc_uncounted(&mut self, size: usize, gfp: Gfp) -> Result<u64, AllocError> {
        Pool::alloc_uncounted(self, size, gfp).map(|handle| handle.to_raw())
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
        let m = Pool::map(self, Handle::from_raw(handle))?;
        Ok(if m.is_direct() {
            Mapped::Direct(m.first())
        } else {
            Mapped::Split(pieces(&m))
        })
    }

    fn unmap(&mut self, handle: u64) -> Result<(), HandleError> {
        Pool::unmap(self, Handle::from_raw(handle)).map(|_| ())
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

    /// The spans' pages and the pages of the two tables.
    fn total_pages(s: &Stats) -> u64 {
        s.pages + s.table_pages
    }
}
