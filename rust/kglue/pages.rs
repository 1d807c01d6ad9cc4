// SPDX-License-Identifier: GPL-2.0

//! Pages for the zpool allocators: direct-mapped pages from the page
//! allocator, got without sleeping. Wraps `pages.c.inc`, which the module's
//! C file includes.
//!
//! A pool gets the pages a `malloc` needs before it takes its lock. Its
//! first try gets none ([`PageFlags::none`]: the core's page allocations
//! fail at once, with no C call); a core that needs pages fails, says how
//! many it wants, and the caller gets them (outside the lock) and tries
//! again, the [`Staged`] pages lent to the core through this CPU's stash
//! for the one call it makes under the lock (`zpool_pool.rs`).

use super::zalloc::PageSource;
use super::zpool::Gfp;
use core::mem::MaybeUninit;
use core::ptr::NonNull;
use core::sync::atomic::{compiler_fence, Ordering};

use kernel::ffi::c_ulong;

extern "C" {
    fn rkm_get_page_nosleep(gfp: u32) -> c_ulong;
    fn rkm_put_page(page: c_ulong);
    fn rkm_free_page_rcu(page: c_ulong);
    fn rkm_rcu_barrier();
    fn rkm_rcu_read_lock();
    fn rkm_rcu_read_unlock();
    fn rkm_stash_begin(pages: *const c_ulong, n: u32);
    fn rkm_stash_end(pages: *mut c_ulong, n: *mut u32) -> u32;
}

/// Pages a stash holds (`RKM_STASH_PAGES`).
const STASH_PAGES: usize = 16;

/// The page allocator, with the caller's GFP flags less direct reclaim,
/// highmem and movable (`pages.c.inc`).
#[derive(Clone, Copy)]
pub(crate) struct KernelPages;

/// What [`KernelPages`] allocates with: the caller's GFP flags, or no page
/// at all.
#[derive(Clone, Copy)]
pub(crate) struct PageFlags {
    gfp: Gfp,
    /// Every allocation fails ([`PageFlags::none`]).
    none: bool,
}

impl PageFlags {
    /// Pages with `gfp`: from this CPU's stash while a [`Staged`] lends
    /// one, else from the page allocator.
    pub(crate) fn new(gfp: Gfp) -> Self {
        PageFlags { gfp, none: false }
    }

    /// No page: each allocation fails at once. A pool's `malloc` tries the
    /// core so first, under its lock, before it has staged any page: the
    /// same as an empty stash, without lending one (two C calls). A page
    /// the core gives back meanwhile (it got none in this call) goes to the
    /// page allocator, which may be called under a spinlock to free.
    pub(crate) fn none(gfp: Gfp) -> Self {
        PageFlags { gfp, none: true }
    }
}

// SAFETY: `__get_free_page` returns the direct-map address of an order-0
// page (PAGE_SIZE bytes, PAGE_SIZE-aligned, ours until `free_pages`), and
// highmem is masked off so that the address exists.
unsafe impl PageSource for KernelPages {
    type Flags = PageFlags;

    fn alloc_page(&self, flags: PageFlags) -> Option<NonNull<u8>> {
        if flags.none {
            return None;
        }
        // SAFETY: any GFP flags are accepted; the wrapper masks off those
        // that could sleep or give a page without a direct-map address.
        let addr = unsafe { rkm_get_page_nosleep(flags.gfp.0) };
        NonNull::new(addr as *mut u8)
    }

    unsafe fn free_page(&self, page: NonNull<u8>) {
        // SAFETY: by the caller's contract `page` came from `alloc_page`
        // (an order-0 page of `__get_free_page`, or of a stash, which got
        // it the same way) and is not used again; `rkm_put_page` gives it
        // back to this CPU's active stash or frees it.
        unsafe { rkm_put_page(page.as_ptr() as c_ulong) };
    }

    unsafe fn free_page_deferred(&self, page: NonNull<u8>) {
        // SAFETY: as in `free_page`; the page is freed after an RCU grace
        // period (`call_rcu` on its `rcu_head`), so readers in read-side
        // critical sections ([`RcuRead`]) that reached it may finish. The
        // pool waits for these frees before it goes ([`rcu_barrier`]).
        unsafe { rkm_free_page_rcu(page.as_ptr() as c_ulong) };
    }
}

/// An RCU read-side critical section, from [`RcuRead::new`] to the drop:
/// the pages a lockless reader may reach (freed with
/// [`PageSource::free_page_deferred`]) stay allocated meanwhile. It does
/// not sleep, nor may its holder.
pub(crate) struct RcuRead(core::marker::PhantomData<*mut ()>);

/// Whether `rcu_read_lock` and `rcu_read_unlock` are compiler barriers and
/// nothing else in this kernel, as in a `PREEMPT_NONE` build without
/// lockdep: RCU is not preemptible (its `__rcu_read_lock` is
/// `preempt_disable`), there is no preempt count (`preempt_disable` is
/// `barrier()`), and no lock map is acquired (`rcu_lock_acquire` is
/// empty). The section is then the code between two barriers that does
/// not sleep, as it is for C, whose inline functions reduce to that, and
/// an [`RcuRead`] costs no call: two calls on every lockless `map`, which
/// a zswap profile showed (2026-12-07). Every other build calls the C
/// functions.
const RCU_READ_IS_BARRIER: bool = !cfg!(any(
    CONFIG_PREEMPT_RCU,
    CONFIG_PREEMPT_COUNT,
    CONFIG_DEBUG_LOCK_ALLOC
));

impl RcuRead {
    /// Enters the critical section (`rcu_read_lock`).
    #[inline]
    pub(crate) fn new() -> Self {
        if RCU_READ_IS_BARRIER {
            compiler_fence(Ordering::SeqCst);
        } else {
            // SAFETY: no precondition; the drop leaves the section on this
            // task (the guard is not `Send`).
            unsafe { rkm_rcu_read_lock() };
        }
        RcuRead(core::marker::PhantomData)
    }
}

impl Drop for RcuRead {
    #[inline]
    fn drop(&mut self) {
        if RCU_READ_IS_BARRIER {
            compiler_fence(Ordering::SeqCst);
        } else {
            // SAFETY: this task entered the section in `new`.
            unsafe { rkm_rcu_read_unlock() };
        }
    }
}

/// Waits for every page this module freed with
/// [`PageSource::free_page_deferred`] to be freed (`rcu_barrier`): a pool
/// that may have freed some calls it before it goes, so that no callback
/// runs after the module is unloaded. Sleeps.
pub(crate) fn rcu_barrier() {
    // SAFETY: no precondition but a context that may sleep (the caller's:
    // a pool is destroyed in one).
    unsafe { rkm_rcu_barrier() };
}

/// Pages got for a pool's `malloc` outside its lock (see the module
/// documentation).
///
/// # Invariants
///
/// `pages[..count]` are initialized, order-0 pages from `__get_free_page`,
/// owned by this value (freed when it is dropped); `count <= STASH_PAGES`.
/// The rest of `pages` is not read. (Left uninitialized: every `malloc`
/// makes one, and zeroing the array was a `memset` call a `malloc`.)
pub(crate) struct Staged {
    pages: [MaybeUninit<c_ulong>; STASH_PAGES],
    count: usize,
}

impl Staged {
    /// No pages.
    pub(crate) fn new() -> Self {
        Staged {
            pages: [const { MaybeUninit::uninit() }; STASH_PAGES],
            count: 0,
        }
    }

    /// Whether this holds no page (a `malloc`'s first try: it then lends
    /// the core no stash, [`PageFlags::none`]).
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Gets one more page with `gfp` (less direct reclaim, highmem and
    /// movable, as [`KernelPages`]); false if the page allocator has none,
    /// or if this holds as many as a stash does.
    pub(crate) fn get_one(&mut self, gfp: Gfp) -> bool {
        let held = self.count;
        let Some(slot) = self.pages.get_mut(held) else {
            return false;
        };
        // SAFETY: any GFP flags are accepted. No stash is active on this
        // CPU: one is only while a pool's lock is held (`lend`), with
        // preemption off, and this task holds none.
        let page = unsafe { rkm_get_page_nosleep(gfp.0) };
        if page == 0 {
            return false;
        }
        slot.write(page);
        // `held < STASH_PAGES` (the `get_mut` above): no overflow, and the
        // compiler sees it (`count` itself is reloaded after the C call).
        self.count = held + 1;
        true
    }

    /// Gets pages with `gfp` until this holds `wanted`, at least one more
    /// and at most a stash's worth; false if the page allocator failed
    /// (the caller's allocation fails: `ENOMEM`, as with one page at a
    /// time) or this holds a stash's worth already.
    pub(crate) fn top_up(&mut self, wanted: usize, gfp: Gfp) -> bool {
        if self.count >= STASH_PAGES {
            return false;
        }
        let target = wanted.max(self.count + 1).min(STASH_PAGES);
        while self.count < target {
            if !self.get_one(gfp) {
                return false;
            }
        }
        true
    }

    /// Runs `f` with these pages in this CPU's stash: [`KernelPages`] takes
    /// them, and fails (counting the shortfall) once they are gone. Takes
    /// back the pages `f` left; returns `f`'s result and the shortfall.
    ///
    /// # Safety
    ///
    /// Preemption is off for the whole call (the pool's spinlock is held),
    /// and `f` does not lend another stash.
    pub(crate) unsafe fn lend<R>(&mut self, f: impl FnOnce() -> R) -> (R, u32) {
        // SAFETY: the stash copies `count <= STASH_PAGES` pages, the
        // initialized ones (`MaybeUninit<c_ulong>` has `c_ulong`'s layout);
        // this CPU's stash stays ours (preemption is off) until
        // `rkm_stash_end`.
        unsafe { rkm_stash_begin(self.pages.as_ptr().cast(), self.count as u32) };
        // The pages belong to the stash (and to the core) until it ends.
        self.count = 0;
        let r = f();
        let mut n = 0u32;
        // SAFETY: `pages` has room for `STASH_PAGES`, as many as a stash
        // holds, and the stash writes the first `n` (initializing them);
        // the pages returned are the stash's, now ours.
        let shortfall = unsafe { rkm_stash_end(self.pages.as_mut_ptr().cast(), &mut n) };
        self.count = (n as usize).min(STASH_PAGES);
        (r, shortfall)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        for page in self.pages.iter().take(self.count) {
            // SAFETY: the first `count` are initialized, and each is a page
            // of ours (the type invariant), unused; no stash is active on
            // this CPU here unless a pool's lock is held, and then the stash
            // takes it back, which is as good.
            unsafe { rkm_put_page(page.assume_init()) };
        }
    }
}
