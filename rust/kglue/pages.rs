// SPDX-License-Identifier: GPL-2.0

//! Pages for the zpool allocators: direct-mapped pages from the page
//! allocator, got without sleeping. Wraps `pages.c.inc`, which the module's
//! C file includes.
//!
//! A pool gets the pages a `malloc` needs before it takes its lock: the
//! [`Staged`] pages are lent to the core for the one call it makes under
//! the lock, in the [`PageFlags`] it allocates with; a core that needs more
//! fails with a shortfall, says how many pages it wants, and the caller
//! gets them (outside the lock) and tries again (`zpool_pool.rs`).

use super::zalloc::PageSource;
use super::zpool::Gfp;
use core::cell::Cell;
use core::ptr::NonNull;

use kernel::ffi::c_ulong;

extern "C" {
    fn rkm_get_page_nosleep(gfp: u32) -> c_ulong;
    fn rkm_put_page(page: c_ulong);
    fn rkm_free_page_rcu(page: c_ulong);
    fn rkm_rcu_barrier();
    fn rkm_rcu_read_lock();
    fn rkm_rcu_read_unlock();
}

/// The most pages a [`Staged`] holds: more than a malloc of any core
/// wants (a zspan span, 6 pages, and a leaf and two interior nodes for
/// each of its two tables).
const STASH_PAGES: usize = 16;

/// The page allocator, with the caller's GFP flags less direct reclaim,
/// highmem and movable (`pages.c.inc`).
#[derive(Clone, Copy)]
pub(crate) struct KernelPages;

/// What [`KernelPages`] allocates with: the caller's GFP flags, and in a
/// pool's `malloc` the pages it got before it took its lock (a [`Staged`]
/// lent to the core: [`Staged::lend`]).
///
/// # Invariants
///
/// `stash`, if set, points to the stash of a [`Staged`] whose `lend` is
/// running on this task, which uses the flags only during that call.
#[derive(Clone, Copy)]
pub(crate) struct PageFlags {
    gfp: Gfp,
    stash: Option<NonNull<Stash>>,
}

impl From<Gfp> for PageFlags {
    /// Flags that get pages from the page allocator (no stash).
    fn from(gfp: Gfp) -> Self {
        PageFlags { gfp, stash: None }
    }
}

// SAFETY: `__get_free_page` returns the direct-map address of an order-0
// page (PAGE_SIZE bytes, PAGE_SIZE-aligned, ours until `free_pages`), and
// highmem is masked off so that the address exists; a stash's pages were got
// the same way, and each is handed out once.
unsafe impl PageSource for KernelPages {
    type Flags = PageFlags;

    fn alloc_page(&self, flags: PageFlags) -> Option<NonNull<u8>> {
        if let Some(stash) = flags.stash {
            // SAFETY: the stash of a `Staged` whose `lend` is running on
            // this task (the type invariant), so alive and not in use
            // elsewhere: `lend` only holds it through `Cell`s.
            return unsafe { stash.as_ref() }.take();
        }
        // SAFETY: any GFP flags are accepted; the wrapper masks off those
        // that could sleep or give a page without a direct-map address.
        let addr = unsafe { rkm_get_page_nosleep(flags.gfp.0) };
        NonNull::new(addr as *mut u8)
    }

    unsafe fn free_page(&self, page: NonNull<u8>) {
        // SAFETY: by the caller's contract `page` came from `alloc_page`
        // (an order-0 page of `__get_free_page`, or of a stash, which got
        // it the same way) and is not used again.
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

impl RcuRead {
    /// Enters the critical section (`rcu_read_lock`).
    pub(crate) fn new() -> Self {
        // SAFETY: no precondition; the drop leaves the section on this
        // task (the guard is not `Send`).
        unsafe { rkm_rcu_read_lock() };
        RcuRead(core::marker::PhantomData)
    }
}

impl Drop for RcuRead {
    fn drop(&mut self) {
        // SAFETY: this task entered the section in `new`.
        unsafe { rkm_rcu_read_unlock() };
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

/// The pages of a [`Staged`] while it lends them, which the core takes
/// through [`PageFlags`] (with `&self`: hence the cells), and the pages it
/// asked for beyond them.
///
/// # Invariants
///
/// `pages[..count]` are order-0 pages from `__get_free_page`, owned by the
/// stash; `count <= STASH_PAGES`.
struct Stash {
    pages: [Cell<c_ulong>; STASH_PAGES],
    count: Cell<usize>,
    shortfall: Cell<u32>,
}

impl Stash {
    /// A page of the stash, now the caller's; `None`, counting a
    /// shortfall, once they are gone.
    fn take(&self) -> Option<NonNull<u8>> {
        let Some(n) = self.count.get().checked_sub(1) else {
            self.shortfall.set(self.shortfall.get().saturating_add(1));
            return None;
        };
        self.count.set(n);
        let page = self.pages.get(n)?.get();
        NonNull::new(page as *mut u8)
    }
}

/// Pages got for a pool's `malloc` outside its lock (see the module
/// documentation), in a stash that [`Staged::lend`] lends to the core.
pub(crate) struct Staged {
    stash: Stash,
    /// The pages the last [`Staged::lend`] asked for: those it took and
    /// its shortfall (it may have freed those it took: a core that fails
    /// gives back what it took, to the page allocator).
    demand: usize,
}

impl Staged {
    /// No pages.
    pub(crate) fn new() -> Self {
        Staged {
            stash: Stash {
                pages: [const { Cell::new(0) }; STASH_PAGES],
                count: Cell::new(0),
                shortfall: Cell::new(0),
            },
            demand: 0,
        }
    }

    /// Gets one more page with `gfp` (less direct reclaim, highmem and
    /// movable, as [`KernelPages`]); false if the page allocator has none,
    /// or if this holds as many as it can.
    pub(crate) fn get_one(&mut self, gfp: Gfp) -> bool {
        let count = self.stash.count.get();
        let Some(slot) = self.stash.pages.get(count) else {
            return false;
        };
        // SAFETY: any GFP flags are accepted.
        let page = unsafe { rkm_get_page_nosleep(gfp.0) };
        if page == 0 {
            return false;
        }
        slot.set(page);
        self.stash.count.set(count + 1);
        true
    }

    /// Gets pages with `gfp` until this holds `wanted`, at least as many
    /// as the last [`Staged::lend`] asked for and one more than now, at
    /// most [`STASH_PAGES`]. A lend that fell short took every page it was
    /// lent and asked for more, so each try of a malloc is lent more pages
    /// than the one before, and a malloc ends. False if the page
    /// allocator failed (the caller's allocation fails: `ENOMEM`, as with
    /// one page at a time) or this holds as many as it can already.
    pub(crate) fn top_up(&mut self, wanted: usize, gfp: Gfp) -> bool {
        let count = self.stash.count.get();
        if count >= STASH_PAGES {
            return false;
        }
        let target = wanted.max(self.demand).max(count + 1).min(STASH_PAGES);
        while self.stash.count.get() < target {
            if !self.get_one(gfp) {
                return false;
            }
        }
        true
    }

    /// Runs `f` with flags of `gfp` that lend it these pages: [`KernelPages`]
    /// takes them, and fails (counting the shortfall) once they are gone,
    /// without calling the page allocator. Keeps the pages `f` left;
    /// returns `f`'s result and the shortfall. (Pages the core frees
    /// during the call go back to the page allocator.)
    ///
    /// # Safety
    ///
    /// `f` uses the flags only until it returns (it keeps no copy of them).
    pub(crate) unsafe fn lend<R>(&mut self, gfp: Gfp, f: impl FnOnce(PageFlags) -> R) -> (R, u32) {
        self.stash.shortfall.set(0);
        // `PageFlags`' invariant: the stash is this `Staged`'s, whose
        // `lend` this is, and `f` uses the flags only during the call (the
        // caller's contract); `&mut self` keeps any other use of the stash
        // out meanwhile.
        let flags = PageFlags {
            gfp,
            stash: Some(NonNull::from(&self.stash)),
        };
        let before = self.stash.count.get();
        let r = f(flags);
        let shortfall = self.stash.shortfall.get();
        self.demand = before
            .saturating_sub(self.stash.count.get())
            .saturating_add(shortfall as usize);
        (r, shortfall)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let count = self.stash.count.get();
        for page in self.stash.pages.iter().take(count) {
            // SAFETY: the page is the stash's (its invariant), unused, and
            // the stash is dropped after this.
            unsafe { rkm_put_page(page.get()) };
        }
    }
}
