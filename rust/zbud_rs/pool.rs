// SPDX-License-Identifier: GPL-2.0

//! A zbud pool as zswap sees it: the kernel-agnostic [`zbud::Pool`] under a
//! spinlock, with its statistics in debugfs and bad handles reported.
//!
//! Shared by `zbud_rs.ko` (the zpool driver) and `test_zbud_rs.ko` (which
//! drives a pool directly, as the test-only entry point for bad handles).
//!
//! # Locking
//!
//! One spinlock per pool guards the bookkeeping: `malloc`, `free` and `map`
//! take it for a few list operations and never sleep under it (pages come
//! from [`KernelPages`], which masks direct reclaim off). `map` returns the
//! object's direct-map address and drops the lock: zbud never moves an
//! object, so the address stays valid until the object is freed, and
//! zswap's `sleep_mapped` use is safe. `unmap` has nothing to do.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use kernel::alloc::flags::GFP_KERNEL;
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::SpinLock;
use kernel::{c_str, new_spinlock};

use crate::debugfs::Dir;
use crate::pages::KernelPages;
use crate::zbud::{self, AllocError, Handle};
use crate::zpool::{Gfp, MapMode, ZpoolAllocator};

extern "C" {
    fn rkm_warn(msg: *const kernel::ffi::c_char);
}

/// The module's debugfs directory (`zbud_rs/`), set while it is loaded.
///
/// Pools create their directory under it. A pool pins the module, so the
/// directory outlives every pool.
pub(crate) static DEBUGFS_ROOT: crate::debugfs::RootSlot = crate::debugfs::RootSlot::new();

/// A pool's counters, as debugfs shows them (`zbud_rs/<pool>/`).
struct Counters {
    pages: AtomicU64,
    table_pages: AtomicU64,
    objects: AtomicU64,
    unbuddied_pages: AtomicU64,
    buddied_pages: AtomicU64,
    rejected_invalid: AtomicU64,
    rejected_too_big: AtomicU64,
    rejected_no_memory: AtomicU64,
    bad_handles: AtomicU64,
}

impl Counters {
    const fn new() -> Self {
        Self {
            pages: AtomicU64::new(0),
            table_pages: AtomicU64::new(0),
            objects: AtomicU64::new(0),
            unbuddied_pages: AtomicU64::new(0),
            buddied_pages: AtomicU64::new(0),
            rejected_invalid: AtomicU64::new(0),
            rejected_too_big: AtomicU64::new(0),
            rejected_no_memory: AtomicU64::new(0),
            bad_handles: AtomicU64::new(0),
        }
    }

    /// Publishes a snapshot of the pool's statistics.
    fn publish(&self, s: &zbud::Stats) {
        self.pages.store(s.pages, Ordering::Relaxed);
        self.table_pages.store(s.table_pages, Ordering::Relaxed);
        self.objects.store(s.objects, Ordering::Relaxed);
        self.unbuddied_pages
            .store(s.unbuddied_pages, Ordering::Relaxed);
        self.buddied_pages.store(s.buddied_pages, Ordering::Relaxed);
        self.rejected_too_big
            .store(s.rejected_too_big, Ordering::Relaxed);
        self.rejected_no_memory
            .store(s.rejected_no_memory, Ordering::Relaxed);
        self.bad_handles.store(s.bad_handles, Ordering::Relaxed);
    }

    /// The files of `dir`.
    ///
    /// # Safety
    ///
    /// `self` must stay in place until `dir` is dropped.
    unsafe fn show_in(&self, dir: &Dir) {
        let files: [(&CStr, &AtomicU64); 9] = [
            (c_str!("pages"), &self.pages),
            (c_str!("table_pages"), &self.table_pages),
            (c_str!("objects"), &self.objects),
            (c_str!("pages_one_buddy"), &self.unbuddied_pages),
            (c_str!("pages_two_buddies"), &self.buddied_pages),
            (c_str!("reject_invalid"), &self.rejected_invalid),
            (c_str!("reject_too_big"), &self.rejected_too_big),
            (c_str!("reject_no_memory"), &self.rejected_no_memory),
            (c_str!("bad_handles"), &self.bad_handles),
        ];
        for (name, value) in files {
            // SAFETY: the caller keeps `self`, hence `value`, in place until
            // `dir` is dropped.
            unsafe { dir.add_u64(name, value) };
        }
    }
}

/// A zbud pool of zswap's.
///
/// # Invariants
///
/// `counters` is boxed, so its address is stable, and `debugfs` (whose files
/// point into it) is declared first, so it is dropped first.
#[pin_data(PinnedDrop)]
pub(crate) struct ZbudPool {
    debugfs: Dir,
    counters: KBox<Counters>,
    #[pin]
    inner: SpinLock<zbud::Pool<KernelPages>>,
    /// Set once the first bad handle was reported with a WARN.
    warned: AtomicBool,
}

impl ZbudPool {
    /// Reports a handle that is not live in this pool: one `pr_err` and one
    /// WARN for the first, a count for every one (debugfs `bad_handles`).
    fn bad_handle(&self, op: &str, handle: u64, why: zbud::HandleError) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            pr_err!(
                "bad handle {:#x} in {}: {}; the pool is left as it was\n",
                handle,
                op,
                why
            );
            // SAFETY: the message is a NUL-terminated string; `rkm_warn`
            // only WARNs.
            unsafe { rkm_warn(c_str!("zbud_rs: bad handle").as_char_ptr()) };
        }
    }

    /// The pool's statistics.
    // Only test_zbud_rs, which builds this file too, reads them whole.
    #[allow(dead_code)]
    pub(crate) fn stats(&self) -> zbud::Stats {
        self.inner.lock().stats()
    }
}

impl ZpoolAllocator for ZbudPool {
    fn create(name: &CStr, _gfp: Gfp) -> Result<Pin<KBox<Self>>> {
        let counters = KBox::new(Counters::new(), GFP_KERNEL)?;
        let debugfs = Dir::new_in(name, &DEBUGFS_ROOT);
        // SAFETY: `counters` is boxed and moves into the pool next to
        // `debugfs`, which is dropped first (the type invariant).
        unsafe { counters.show_in(&debugfs) };
        KBox::pin_init(
            try_pin_init!(ZbudPool {
                debugfs,
                counters,
                inner <- new_spinlock!(zbud::Pool::new(KernelPages), "zbud_rs::pool"),
                warned: AtomicBool::new(false),
            }),
            GFP_KERNEL,
        )
    }

    fn malloc(&self, size: usize, gfp: Gfp) -> Result<u64> {
        if gfp.highmem() {
            // zbud hands out direct-map addresses: no highmem page.
            self.counters
                .rejected_invalid
                .fetch_add(1, Ordering::Relaxed);
            return Err(EINVAL);
        }
        let mut pool = self.inner.lock();
        let result = pool.alloc(size, gfp);
        self.counters.publish(&pool.stats());
        drop(pool);
        match result {
            Ok(handle) => Ok(handle.to_raw()),
            Err(AllocError::Invalid) => {
                self.counters
                    .rejected_invalid
                    .fetch_add(1, Ordering::Relaxed);
                Err(EINVAL)
            }
            Err(AllocError::TooBig) => Err(ENOSPC),
            Err(AllocError::NoMemory) => Err(ENOMEM),
        }
    }

    fn free(&self, handle: u64) {
        let mut pool = self.inner.lock();
        let result = pool.free(Handle::from_raw(handle));
        self.counters.publish(&pool.stats());
        drop(pool);
        if let Err(why) = result {
            self.bad_handle("free", handle, why);
        }
    }

    fn map(&self, handle: u64, _mode: MapMode) -> *mut u8 {
        let pool = self.inner.lock();
        let result = pool.map(Handle::from_raw(handle));
        if result.is_err() {
            self.counters.publish(&pool.stats());
        }
        drop(pool);
        match result {
            Ok(addr) => addr.as_ptr(),
            Err(why) => {
                self.bad_handle("map", handle, why);
                core::ptr::null_mut()
            }
        }
    }

    fn unmap(&self, _handle: u64) {}

    /// Every page the pool holds: the object pages and the pages of its
    /// handle table (one per 512 object pages at the pool's peak, plus two).
    fn total_pages(&self) -> u64 {
        self.counters.pages.load(Ordering::Relaxed)
            + self.counters.table_pages.load(Ordering::Relaxed)
    }
}

#[pinned_drop]
impl PinnedDrop for ZbudPool {
    fn drop(self: Pin<&mut Self>) {
        if let Err(leak) = self.inner.lock().reset() {
            pr_err!(
                "{}: objects are still allocated; their pages are left alone\n",
                leak
            );
            // SAFETY: the message is a NUL-terminated string; `rkm_warn`
            // only WARNs.
            unsafe { rkm_warn(c_str!("zbud_rs: pool destroyed while not empty").as_char_ptr()) };
        }
    }
}
