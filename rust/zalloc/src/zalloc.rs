// SPDX-License-Identifier: GPL-2.0

//! zalloc: what the project's zpool allocators (`rust/zbud`, `rust/z3fold`)
//! share, kernel-agnostic and `no_std`.
//!
//! * [`PAGE_SIZE`] and the [`PageSource`] the pools take their pages from;
//! * chunks, the unit of allocation of both ([`CHUNK_SIZE`],
//!   [`size_to_chunks`], [`object_chunks`]);
//! * pool tags ([`new_pool_tag`]), which tell one pool's handles from
//!   another's;
//! * [`Handle`], a checked object name packing a pool tag, a generation, a
//!   slot number and an object index into a `u64`, its field widths set by
//!   const parameters;
//! * [`RadixTable`], the *slot table*: a radix tree of pages from the page
//!   source mapping slot numbers to records of the pool's pages, of the
//!   allocator's choosing (zbud: a page pointer; z3fold: a page
//!   descriptor), with a free list of slots per leaf and a generation
//!   counter kept in each free slot, that gives its leaves back as they
//!   empty; it owns the page source;
//! * the errors and reports both pools give: [`AllocError`], [`Leak`], and
//!   the [`Rejections`] counter.
//!
//! Like the allocators, this file uses only `core`: kernel modules include
//! it with `#[path = "../zalloc/src/zalloc.rs"] mod zalloc;` at their crate
//! root, next to the allocator, which refers to it as `crate::zalloc`.
//!
//! # Handles and the slot table
//!
//! A pool gives each of its pages a *slot*, a number that indexes the slot
//! table, and names an object by a [`Handle`]:
//!
//! ```text
//!  63        48 47 ...       ... 0
//! | pool tag   | spare | generation | slot | object index |
//! |  16 bits   |  (0)  |     G      |  S   |      I       |
//! ```
//!
//! The pool tag is the pool's (see [`new_pool_tag`]); the slot is below
//! [`RadixTable::SLOTS`] = 2^S; the generation is the slot's counter when the
//! object was allocated (incremented modulo 2^G by every allocation in the
//! slot, and kept by a free slot for its next page); the spare bits are 0.
//! Checking a handle costs a comparison of the tag, a walk of the table's
//! three levels and a comparison of the generation: O(1), and only the
//! pool's own memory is read, whatever the handle's value.
//!
//! The table's nodes are pages from the pool's page source: two levels of
//! interior nodes of 512 pointers, then leaves of `PAGE_SIZE / size_of::<R>()`
//! records, the first of which is the leaf's header (its free list and
//! count of free slots), so a leaf has one slot fewer than records.
//!
//! A new page takes a free slot of the *first* leaf that has one (last
//! freed first within the leaf), found through a bit in each link that says
//! whether the child has a free slot, looking from the first place that
//! may have one (every leaf before it is full: a take reads O(1) links
//! until that leaf fills); if no leaf has one, the table grows by
//! a leaf (and, rarely, an interior node) in the first place without one,
//! with the flags of the allocation that needs it; a failed growth leaves
//! the table unchanged. A leaf whose slots are all free goes back to the
//! page source at once, and so does an interior node without links: the
//! table is as large as the pages it holds need, not as their peak (taking
//! the first leaf with room packs the pages into the first leaves, so that
//! the last ones empty as the pool shrinks). A new leaf's slots start at a
//! generation that differs from one leaf to the next, so that a handle of a
//! slot of a freed leaf is not taken for one of its new occupant's. A slot
//! without a leaf, freed with it or never handed out, has no record.
//! [`RadixTable::clear`] frees the whole table.

use core::fmt;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU16, Ordering};

#[path = "handle.rs"]
mod handle;
#[path = "table.rs"]
mod table;

// The API; a module that includes this file may not use all of it.
#[allow(unused_imports)]
pub use handle::{Handle, HandleFields};
#[allow(unused_imports)]
pub use table::{
    capacity, first_listed, slot_bits, HasBody, LocklessView, RadixTable, Record, NO_SLOT,
};

/// Size of a page (x86-64).
pub const PAGE_SIZE: usize = 4096;

/// A page is divided into `2^NCHUNKS_ORDER` chunks.
pub const NCHUNKS_ORDER: u32 = 6;

/// Size of a chunk, the unit of allocation.
pub const CHUNK_SIZE: usize = PAGE_SIZE >> NCHUNKS_ORDER;

/// Number of chunks an object of `size` bytes takes.
pub const fn size_to_chunks(size: usize) -> usize {
    size.div_ceil(CHUNK_SIZE)
}

/// The chunks of an object of `size` bytes in a pool whose objects are at
/// most `max` bytes: [`AllocError::Invalid`] for size 0,
/// [`AllocError::TooBig`] above `max`.
pub fn object_chunks(size: usize, max: usize) -> Result<usize, AllocError> {
    match size {
        0 => Err(AllocError::Invalid),
        size if size > max => Err(AllocError::TooBig),
        size => Ok(size_to_chunks(size)),
    }
}

/// A source of pages for a pool: its object pages and its slot table.
///
/// In the kernel this is `page_address(alloc_page(gfp))` and
/// `__free_page(virt_to_page(page))`; `Flags` is `gfp_t`, passed through
/// from the pool's `alloc`. The source must not return highmem pages (zbud
/// and z3fold reject `__GFP_HIGHMEM` with `-EINVAL`): the pools hand out
/// direct-map addresses.
///
/// # Safety
///
/// Implementors must guarantee that a page returned by
/// [`PageSource::alloc_page`] is [`PAGE_SIZE`] bytes, aligned to
/// [`PAGE_SIZE`], valid for reads and writes and used by nobody else until
/// it is passed to [`PageSource::free_page`].
pub unsafe trait PageSource {
    /// Per-allocation flags (`gfp_t` in the kernel).
    type Flags: Copy;

    /// Allocates a page, or returns `None` if there is none. The page's
    /// contents are undefined.
    fn alloc_page(&self, flags: Self::Flags) -> Option<NonNull<u8>>;

    /// Frees a page.
    ///
    /// # Safety
    ///
    /// `page` came from [`PageSource::alloc_page`] of this source, has not
    /// been freed, and is not used afterwards.
    unsafe fn free_page(&self, page: NonNull<u8>);

    /// Frees a page once every reader that may still read it without the
    /// pool's lock is done: a node that a slot table of
    /// [`Record::LOCKLESS`](crate::zalloc::Record::LOCKLESS) records
    /// dropped, which such a reader may have reached before (in the
    /// kernel, after an RCU grace period: the readers are in RCU read-side
    /// critical sections). At once by default, for a source whose pools
    /// have no such readers.
    ///
    /// # Safety
    ///
    /// As [`PageSource::free_page`]; the page may still be read, by those
    /// readers only, until it is freed.
    unsafe fn free_page_deferred(&self, page: NonNull<u8>) {
        // SAFETY: the caller's.
        unsafe { self.free_page(page) }
    }
}

// SAFETY: Every call is forwarded to `S`, which upholds the contract, and a
// page goes back to the same `S` it came from.
unsafe impl<S: PageSource + ?Sized> PageSource for &S {
    type Flags = S::Flags;

    fn alloc_page(&self, flags: Self::Flags) -> Option<NonNull<u8>> {
        (**self).alloc_page(flags)
    }

    unsafe fn free_page(&self, page: NonNull<u8>) {
        // SAFETY: The caller's guarantees are those `S::free_page` requires.
        unsafe { (**self).free_page(page) }
    }

    unsafe fn free_page_deferred(&self, page: NonNull<u8>) {
        // SAFETY: As above, for `S::free_page_deferred`.
        unsafe { (**self).free_page_deferred(page) }
    }
}

/// Source of pool tags; 0 is skipped so that no handle is 0.
static NEXT_TAG: AtomicU16 = AtomicU16::new(1);

/// A new pool tag, never 0. Tags are handed out in turn (to every pool of
/// every allocator that includes this file), so they repeat after 65535
/// pools or resets.
pub fn new_pool_tag() -> u16 {
    loop {
        let tag = NEXT_TAG.fetch_add(1, Ordering::Relaxed);
        if tag != 0 {
            return tag;
        }
    }
}

/// Errors of a pool's `alloc`. The pool is unchanged after any of them (but
/// for its [`Rejections`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllocError {
    /// The size is 0 (`-EINVAL`).
    Invalid,
    /// The size is above the largest the allocator stores (`-ENOSPC`).
    TooBig,
    /// The page source had no page (for an object page or the slot table),
    /// or the pool has as many pages as its slot table has slots
    /// (`-ENOMEM`).
    NoMemory,
}

impl AllocError {
    /// The negative errno zbud and z3fold return for this error.
    pub const fn to_errno(self) -> i32 {
        match self {
            AllocError::Invalid => -22,
            AllocError::TooBig => -28,
            AllocError::NoMemory => -12,
        }
    }
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AllocError::Invalid => "invalid allocation size 0",
            AllocError::TooBig => "allocation larger than a page of the pool holds",
            AllocError::NoMemory => "out of memory for a page",
        })
    }
}

/// Counts of allocations rejected, by [`AllocError`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rejections {
    /// [`AllocError::Invalid`].
    pub invalid: u64,
    /// [`AllocError::TooBig`].
    pub too_big: u64,
    /// [`AllocError::NoMemory`].
    pub no_memory: u64,
}

impl Rejections {
    /// Counts the error of `result`, if any, and returns it.
    ///
    /// The counters wrap (after centuries) rather than add panic paths.
    pub fn count<T>(&mut self, result: Result<T, AllocError>) -> Result<T, AllocError> {
        if let Err(err) = &result {
            let counter = match err {
                AllocError::Invalid => &mut self.invalid,
                AllocError::TooBig => &mut self.too_big,
                AllocError::NoMemory => &mut self.no_memory,
            };
            *counter = counter.wrapping_add(1);
        }
        result
    }
}

/// What a pool's `destroy` or `reset` left allocated because objects were
/// still live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leak {
    /// Pages left allocated (never freed).
    pub pages: u64,
    /// Objects that were still live in them.
    pub objects: u64,
}

impl Leak {
    /// `Err` with the leak of `pages` pages and `objects` objects, `Ok` if
    /// both are 0.
    pub fn check(pages: u64, objects: u64) -> Result<(), Leak> {
        if pages == 0 && objects == 0 {
            Ok(())
        } else {
            Err(Leak { pages, objects })
        }
    }
}

impl fmt::Display for Leak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pool destroyed with {} live objects, leaking {} pages",
            self.objects, self.pages
        )
    }
}
