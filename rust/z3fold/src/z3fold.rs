// SPDX-License-Identifier: GPL-2.0

//! z3fold: up to three compressed objects per page, after `mm/z3fold.c`
//! (Linux 6.12, deprecated there for races between compaction and
//! map/free), for zswap's `zpool` interface.
//!
//! A [`Pool`] stores objects of 1 to [`MAX_ALLOC_SIZE`] (a page) bytes in
//! pages it gets from a [`PageSource`], up to three objects per page, and
//! names each object by an opaque [`Handle`] that it checks on every use.
//! The file uses only `core` and the code it shares with zbud
//! (`rust/zalloc`, included next to it as `crate::zalloc`: the page source,
//! handles, the slot table), so the same source is built into kernel
//! modules and into the host crate that runs its tests.
//!
//! # Page layout
//!
//! A z3fold page is one [`PAGE_SIZE`] page of [`NCHUNKS`] = 64 chunks of
//! [`CHUNK_SIZE`] = 64 bytes, all of them for objects: unlike `mm/z3fold.c`,
//! which keeps a header in the first chunk, the pool keeps what it knows of
//! a page in a *descriptor* outside the page (see below). An object of
//! `size` bytes takes [`size_to_chunks`]`(size)` = `ceil(size / 64)`
//! contiguous chunks. A page holds up to [`OBJECTS_PER_PAGE`] = 3 objects
//! of up to 63 chunks ([`MAX_SHARED_SIZE`] = 4032 bytes) each; an object of
//! 64 chunks (4033 to 4096 bytes) fills a page alone, a *headless* page in
//! z3fold's terms, which here is only a page whose object has 64 chunks:
//! no special case. A page in its usual, compacted shape:
//!
//! ```text
//! chunk 0                                                              64
//! | first | middle |            ...free chunks...             |  last   |
//! ```
//!
//! "First", "middle" and "last" only name places: which of the three is
//! used depends on the order of allocations and frees (see *Placement*).
//! The pool never reads or writes an object's bytes but to move the objects
//! of a page nobody has mapped (see *Compaction*).
//!
//! # Page descriptors
//!
//! Each page has a *slot*, a number that indexes the pool's slot table
//! (zalloc's `RadixTable`: a radix tree of three levels of pages from the
//! pool's page source; the leaves hold 127 records after their header, and
//! go back to the page source as soon as their slots are all free; a new
//! page takes a slot of the first leaf with room). A slot's record is its
//! page's descriptor, 32 bytes:
//!
//! ```text
//!  0        8      12     16        18               24       27       30      32
//! | page   | prev | next | counter | generations[3] | starts | chunks | state |
//! ```
//!
//! * `page`: the page's address (null for a free slot or a forwarder, see
//!   *Migration*);
//! * `prev`, `next`: the page's neighbours on its unbuddied list, by slot
//!   (for a free slot, `next` is the next free slot);
//! * `counter`: the slot's generation counter, the last generation handed
//!   out in the slot (kept by a free slot for its next page);
//! * per object (index 0, 1, 2): the generation its handle carries, its
//!   first chunk and its size in chunks (0: no object);
//! * `state`: each object's *map count* (4 bits: up to [`MAX_MAPS`]) and
//!   *foreign* flag (see *Migration*), and the *deferred* flag (the page's
//!   free chunks are in pieces and its compaction waits for its last
//!   mapping to end, see *Compaction*).
//!
//! Descriptors outside the pages make all 64 chunks available to objects
//! (`mm/z3fold.c` gives up the first chunk of every page that is not
//! headless), for one table page per 127 pages (0.8%) plus two; and no
//! object that overruns its chunks can corrupt what the pool knows.
//!
//! # Handles
//!
//! `mm/z3fold.c`'s handles point into the page (or into a per-page slot
//! array) and freeing a bad one corrupts the pool. Here a handle is a
//! `u64`, checked before use in O(1) without touching memory the pool does
//! not own:
//!
//! ```text
//!  63       48 47     43 42          27 26         2 1       0
//! | pool tag  | spare   | generation   | slot       | index   |
//! |  16 bits  | 5 bits 0|   16 bits    |  25 bits   | 0, 1, 2 |
//! ```
//!
//! * The *pool tag* is different for each pool (a global counter that skips
//!   0, so no handle is 0). A handle with another tag is
//!   [`HandleError::Foreign`]: another pool's, or garbage.
//! * The *slot* names the page's descriptor, the *index* one of its three
//!   objects. A number that is no slot (the place of a leaf's header),
//!   index 3 or spare bits that are not 0 are [`HandleError::Malformed`].
//! * The *generation* is the value of the slot's counter when the object was
//!   allocated: every allocation in the slot increments the counter (modulo
//!   2^16) and records it as the object's generation (a new leaf's slots
//!   start at a generation that changes from leaf to leaf). A handle whose
//!   slot is free or has no leaf, whose object is free, or whose generation
//!   differs from the object's is [`HandleError::Stale`].
//!
//! A handle names the object through the descriptor, which records where
//! the object *currently* starts: when compaction moves an object it
//! changes only the descriptor, and the handle stays valid.
//!
//! # Placement
//!
//! A page with fewer than three objects and some free chunks is on the
//! *unbuddied* list for the largest number of free chunks it has in one
//! region (1 to 63; one list per count). The lists are doubly linked
//! through the descriptors by slot number; a page is put at the head of its
//! list. [`Pool::alloc`] of `n` chunks takes the first page of the first
//! non-empty list from `n` upward (the fullest page that fits, most recently
//! listed first); if there is none, it gets a new page (its first object
//! takes index 0 and chunk 0). In the page, the object takes a free index
//! and the smallest free region that holds it (the first of equals): at the
//! region's start, or right-justified at the end of the page if the region
//! reaches the end but not the start. So a page fills first, last, then
//! middle, and its free chunks stay between its objects, where the chunks
//! of a freed neighbour join them.
//!
//! # Compaction
//!
//! When [`Pool::free`] leaves a page's free chunks in more than one region
//! (the first of three objects freed, say), the pool compacts the page at
//! once, in place: it moves objects within the page (`memmove`) so that the
//! free chunks are one region again, choosing, among the layouts with the
//! objects before the free region packed from chunk 0 and those after it
//! packed against the end of the page (in their order), the one that moves
//! the fewest chunks (the free region between objects if that moves no
//! more). It updates the objects' starts in the descriptor and puts the
//! page on the list for its new free region. [`Stats::compactions`] counts
//! the objects moved. A page whose objects are all freed goes back to the
//! page source at once. There is no background work: no workqueue, no
//! per-CPU lists, nothing to race with.
//!
//! # Migration
//!
//! A page left with one object wastes most of itself, and in-place
//! compaction cannot help. When a free (or the unmap that ends a deferred
//! page's last mapping) leaves a page with a single object, none of the
//! page's objects is mapped, the object is not a whole page and not
//! foreign (below), the pool moves the object to the page an allocation of
//! its size would take (the fullest listed page that holds it: see
//! *Placement*), copies its bytes there, frees the emptied page and turns
//! its slot into a *forwarder*: a record without page that keeps the
//! object's generation and names the slot and index where the object now
//! lives, where it is marked *foreign*. The object's handle still names
//! the old slot, so it stays valid: [`Pool::map`], [`Pool::unmap`] and
//! [`Pool::free`] of it go through the forwarder (one more table lookup),
//! and its free also frees the forwarder's slot. [`Stats::migrations`]
//! counts the moves, [`Stats::forwarded`] the live foreign objects.
//!
//! A foreign object never moves to another page again (it may still move
//! within its page), so a handle is at most one forwarder away from its
//! object, and a page with a foreign object gives none of its objects
//! away. A native handle that names a foreign object's slot and index is
//! [`HandleError::Stale`]. This is `mm/z3fold.c`'s `compact_single_buddy`
//! with the same one-move rule, done synchronously under the pool's lock,
//! and it is why a handle names a slot rather than a page address.
//!
//! # Locking contract
//!
//! The pool has no lock of its own: every operation takes `&mut self`, and
//! [`Pool`] is `Send` but not `Sync`, so the kernel glue keeps it under one
//! spinlock. Nothing sleeps or calls out except into the page source, so
//! every operation may run in atomic context if the page source does not
//! sleep there: pass non-sleeping flags to [`Pool::alloc`] under a spinlock.
//! Only [`Pool::alloc`] allocates; [`Pool::free`], [`Pool::unmap`],
//! [`Pool::reset`], [`Pool::destroy`] and dropping the pool free pages.
//!
//! [`Pool::map`] increments the object's map count and returns its address;
//! the caller may drop the lock and use the object (and sleep) until it
//! calls [`Pool::unmap`], which decrements the count. The pool enforces:
//!
//! 1. A page with a mapped object is never compacted: when a free leaves
//!    its free chunks in pieces, the page is flagged *deferred* (counted in
//!    [`Stats::compactions_deferred`]) and the [`Pool::unmap`] that ends the
//!    page's last mapping compacts it.
//! 2. A mapped object cannot be freed ([`HandleError::Busy`], nothing
//!    changes), so a page with a mapped object is never freed.
//! 3. An allocation into a page with mapped objects writes only the
//!    descriptor, never the page, and moves nothing (no allocation does).
//!    A migration into such a page writes only its free chunks.
//! 4. The pool reads and writes objects' bytes only to move the objects of
//!    a page none of whose objects is mapped, under `&mut self`, within the
//!    page or into free chunks of another page.
//!
//! So a mapped object's address stays valid and its bytes are the caller's
//! alone until the unmap, whatever else happens in the pool meanwhile. An
//! object's address must not be used after its unmap: the next free in its
//! page may move it.
//!
//! # Errors
//!
//! A failed call changes nothing but the counters of [`Stats`]:
//!
//! * [`Pool::alloc`]: size 0 is [`AllocError::Invalid`] (`-EINVAL`), a size
//!   above [`MAX_ALLOC_SIZE`] is [`AllocError::TooBig`] (`-ENOSPC`), a page
//!   (object page or table page) the source cannot provide is
//!   [`AllocError::NoMemory`] (`-ENOMEM`), as in z3fold. z3fold also
//!   rejects `__GFP_HIGHMEM` with `-EINVAL`; flags are opaque here, so that
//!   check is the glue's (the page source's pages must be mapped: see
//!   [`PageSource`]).
//! * [`Pool::free`], [`Pool::map`] and [`Pool::unmap`]: a [`HandleError`]
//!   for a handle that does not name a live object of the pool
//!   (`Foreign`, `Malformed`, `Stale`), for the free of a mapped object or
//!   a map beyond [`MAX_MAPS`] (`Busy`), and for the unmap of an object
//!   that is not mapped (`NotMapped`). Each is counted in
//!   [`Stats::bad_handles`].
//!
//! Nothing panics.
//!
//! # Teardown
//!
//! [`Pool::destroy`] frees the slot table and, as the pool holds no empty
//! pages, is done if the pool is empty. If objects are still live (mapped
//! or not) it frees none of their pages, which callers may still use, and
//! returns their count in a [`Leak`] for the glue to report.
//! [`Pool::reset`] does the same through `&mut` and leaves the pool usable
//! under a new tag; dropping the pool does it without the report.
//!
//! # Limits
//!
//! A pool holds at most [`MAX_PAGES`] = 127 * 2^18 pages (127 GiB); beyond that
//! an allocation needing a new page fails with [`AllocError::NoMemory`]. An
//! object can be mapped [`MAX_MAPS`] = 15 times at once. A stale handle is
//! accepted only if its slot has since seen a multiple of 2^16 allocations
//! and the same index is allocated again at exactly that count. Tags repeat
//! after 65535 pools (or resets), so a handle of a pool created that many
//! pools earlier can pass the tag check (the other checks still apply). A
//! handle that passes all checks names a live object of the pool, so a
//! misused one can at worst free, map or unmap another live object: it can
//! never corrupt the pool.

use core::fmt;
use core::mem::{self, size_of};
use core::ptr::{self, NonNull};

#[path = "check.rs"]
mod check;
#[path = "descriptor.rs"]
mod descriptor;

use crate::zalloc::{
    self, first_listed, object_chunks, slot_bits, RadixTable, Record, Rejections, NO_SLOT,
};
// The API; a module that includes this file may not use all of it.
#[allow(unused_imports)]
pub use crate::zalloc::{
    size_to_chunks, AllocError, Leak, PageSource, CHUNK_SIZE, NCHUNKS_ORDER, PAGE_SIZE,
};
use descriptor::{Descriptor, Extent};

/// Chunks of a page, all available to objects.
pub const NCHUNKS: usize = PAGE_SIZE / CHUNK_SIZE;

/// The most objects a page holds.
pub const OBJECTS_PER_PAGE: usize = 3;

/// Largest object that shares its page (63 chunks); larger ones take a
/// whole (headless) page.
pub const MAX_SHARED_SIZE: usize = (NCHUNKS - 1) * CHUNK_SIZE;

/// Largest object size: a page.
pub const MAX_ALLOC_SIZE: usize = PAGE_SIZE;

/// The most times one object can be mapped at once.
pub const MAX_MAPS: u32 = descriptor::MAX_MAPS;

/// The slot table: slots to the descriptors of pages from its source.
type SlotTable<P> = RadixTable<Descriptor, P>;

/// Bits of a slot number: 25, with 128 descriptors per leaf.
const SLOT_BITS: u32 = slot_bits(size_of::<Descriptor>());

/// The most pages a pool holds: the number of slots of its slot table, 127
/// a leaf.
pub const MAX_PAGES: usize = zalloc::capacity(size_of::<Descriptor>());

/// The name of an object in a [`Pool`]: zpool's `unsigned long` handle. Any
/// value may be passed back to the pool, which checks it.
///
/// Bits 0 and 1 are the object's index in its page, then 25 bits of slot,
/// 16 of generation, 5 spare bits (0) and 16 of pool tag.
pub type Handle = zalloc::Handle<2, SLOT_BITS, 16>;

const _: () = assert!(OBJECTS_PER_PAGE <= 1 << 2);
const _: () = assert!(Handle::GENERATION_MASK == u16::MAX as u32);

/// Why [`Pool::free`], [`Pool::map`] or [`Pool::unmap`] rejected a handle.
/// The pool is unchanged (but for [`Stats::bad_handles`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandleError {
    /// The handle carries another pool's tag: it belongs to another pool, or
    /// is not a handle at all.
    Foreign,
    /// The handle names no slot (the place of a leaf's header), or an
    /// object index no page has, or has spare bits set.
    Malformed,
    /// The handle's object was freed (a double free or a use after free),
    /// or its slot has no leaf (freed with it, or never handed out).
    Stale,
    /// A free of an object that is mapped, or a map of an object mapped
    /// [`MAX_MAPS`] times.
    Busy,
    /// An unmap of an object that is not mapped.
    NotMapped,
}

impl HandleError {
    /// What the error means, for reports.
    pub const fn message(self) -> &'static str {
        match self {
            HandleError::Foreign => "z3fold: handle of another pool",
            HandleError::Malformed => "z3fold: malformed handle",
            HandleError::Stale => "z3fold: handle of a freed object",
            HandleError::Busy => "z3fold: object is mapped",
            HandleError::NotMapped => "z3fold: unmap of an object that is not mapped",
        }
    }
}

impl fmt::Display for HandleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// A snapshot of a pool's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Pages holding objects, headless ones included.
    pub pages: u64,
    /// Pages of the slot table.
    pub table_pages: u64,
    /// Live objects.
    pub objects: u64,
    /// Pages holding one object of a whole page.
    pub headless_pages: u64,
    /// Pages holding one object, not headless.
    pub pages_one: u64,
    /// Pages holding two objects.
    pub pages_two: u64,
    /// Pages holding three objects.
    pub pages_three: u64,
    /// Objects moved by compaction.
    pub compactions: u64,
    /// Frees that left a page in need of compaction while one of its
    /// objects was mapped, so that its last unmap compacts it.
    pub compactions_deferred: u64,
    /// Lone objects moved to another page, whose page was freed (see
    /// *Migration*).
    pub migrations: u64,
    /// Live objects reached through a forwarder (foreign objects).
    pub forwarded: u64,
    /// Allocations rejected with [`AllocError::Invalid`].
    pub rejected_invalid: u64,
    /// Allocations rejected with [`AllocError::TooBig`].
    pub rejected_too_big: u64,
    /// Allocations rejected with [`AllocError::NoMemory`].
    pub rejected_no_memory: u64,
    /// Handles rejected by [`Pool::free`], [`Pool::map`] or
    /// [`Pool::unmap`], whatever the [`HandleError`].
    pub bad_handles: u64,
}

/// A z3fold pool: objects of up to a page, three per page.
///
/// See the [module documentation](self) for the design.
///
/// # Invariants
///
/// Between calls:
/// * each occupied slot of `table` holds the `Descriptor` of a page that
///   came from the table's page source and belongs to the pool alone (but
///   for the objects' bytes, which belong to their users while mapped, see
///   *Locking contract*);
/// * `classes[c]` is the number of such pages of class `c` (0: headless, 1
///   to 3: objects), `objects` the number of live objects;
/// * `unbuddied[n]` is the first slot of the list of the pages whose
///   `Descriptor::list` is `Some(n)`, or `NO_SLOT`; every such page is on
///   that list, and no other page is on a list;
/// * a page none of whose objects is mapped has its free chunks in one
///   region;
/// * every handle the pool returned whose object is live carries the tag of
///   its slot table.
///
/// The counters use wrapping arithmetic only so that the kernel's overflow
/// checks add no panic paths: by the invariants they stay within
/// [`MAX_PAGES`] (objects: three times that), and the event counters would
/// take centuries to wrap.
pub struct Pool<P: PageSource> {
    table: SlotTable<P>,
    unbuddied: [u32; NCHUNKS],
    classes: [u64; OBJECTS_PER_PAGE + 1],
    objects: u64,
    compactions: u64,
    compactions_deferred: u64,
    migrations: u64,
    forwarded: u64,
    rejected: Rejections,
    bad_handles: u64,
}

/// Where [`Pool::lookup`] found a handle's live object.
#[derive(Clone, Copy)]
struct Found {
    /// The slot of the object's page, its index there and a copy of the
    /// page's descriptor.
    slot: u32,
    index: usize,
    descriptor: Descriptor,
    /// The forwarder's slot and generation counter if the object is
    /// foreign (its handle names the forwarder).
    forwarder: Option<(u32, u32)>,
}

impl<P: PageSource> Pool<P> {
    /// Creates an empty pool that takes its pages from `source`. Allocates
    /// nothing.
    pub fn new(source: P) -> Self {
        Self {
            table: SlotTable::new(source),
            unbuddied: [NO_SLOT; NCHUNKS],
            classes: [0; OBJECTS_PER_PAGE + 1],
            objects: 0,
            compactions: 0,
            compactions_deferred: 0,
            migrations: 0,
            forwarded: 0,
            rejected: Rejections::default(),
            bad_handles: 0,
        }
    }

    /// Allocates an object of `size` bytes and returns its handle.
    ///
    /// Pages needed (a new page, and table pages for its slot) come from
    /// the page source with `flags`. The object's contents are undefined.
    pub fn alloc(&mut self, size: usize, flags: P::Flags) -> Result<Handle, AllocError> {
        let result = self.alloc_uncounted(size, flags);
        self.rejected.count(result)
    }

    /// Counts a rejected allocation in [`Stats`], as [`Pool::alloc`] does.
    pub fn count_rejection(&mut self, error: AllocError) {
        let _ = self.rejected.count::<()>(Err(error));
    }

    /// [`Pool::alloc`] without counting a rejection in [`Stats`]: for a
    /// caller that retries after getting pages (the kernel glue, which
    /// gets them outside its lock) and counts the outcome with
    /// [`Pool::count_rejection`].
    ///
    /// # Errors
    ///
    /// As [`Pool::alloc`]; the pool is unchanged.
    pub fn alloc_uncounted(&mut self, size: usize, flags: P::Flags) -> Result<Handle, AllocError> {
        let chunks = object_chunks(size, MAX_ALLOC_SIZE)?;
        let (slot, mut descriptor, index, start) = match self.take_unbuddied(chunks) {
            Some(found) => found,
            None => {
                let (slot, descriptor) = self.add_page(flags)?;
                (slot, descriptor, 0, 0)
            }
        };
        let generation = descriptor.add(index, start, chunks);
        self.objects = self.objects.wrapping_add(1);
        self.relist(slot, descriptor);
        // `index < OBJECTS_PER_PAGE`: lossless.
        Ok(Handle::new(
            self.table.tag(),
            generation,
            slot,
            index as u32,
        ))
    }

    /// Frees the object of `handle`, and its page if the page is left empty;
    /// compacts the page if need be and no object of it is mapped. The
    /// object's address must not be used afterwards.
    ///
    /// A mapped object is not freed: [`HandleError::Busy`].
    pub fn free(&mut self, handle: Handle) -> Result<(), HandleError> {
        let Found {
            slot,
            index,
            mut descriptor,
            forwarder,
        } = self.resolve(handle)?;
        if descriptor.maps(index) != 0 {
            return Err(self.reject(HandleError::Busy));
        }
        self.unlist(slot, &descriptor);
        descriptor.remove(index);
        self.objects = self.objects.wrapping_sub(1);
        if let Some((forwarder, counter)) = forwarder {
            self.table.vacate(forwarder, counter);
            self.forwarded = self.forwarded.wrapping_sub(1);
        }
        if descriptor.is_empty() {
            // The page holds no object, so nothing uses it.
            self.table.remove_page(slot, u32::from(descriptor.counter));
            return Ok(());
        }
        if !descriptor.is_contiguous() && descriptor.is_mapped() {
            self.compactions_deferred = self.compactions_deferred.wrapping_add(1);
        }
        self.settle(slot, descriptor);
        Ok(())
    }

    /// Maps the object of `handle`: returns its address, valid for reads
    /// and writes of the size it was allocated with until the matching
    /// [`Pool::unmap`]. The object stays where it is, and is not freed,
    /// until then; the caller may drop the pool's lock meanwhile.
    ///
    /// Maps nest: each needs its unmap.
    pub fn map(&mut self, handle: Handle) -> Result<NonNull<u8>, HandleError> {
        let Found {
            slot,
            index,
            mut descriptor,
            ..
        } = self.resolve(handle)?;
        let maps = descriptor.maps(index);
        let Some(page) = descriptor.page.filter(|_| maps < MAX_MAPS) else {
            return Err(self.reject(HandleError::Busy));
        };
        descriptor.set_maps(index, maps + 1);
        let offset = descriptor.start(index).min(NCHUNKS - 1) * CHUNK_SIZE;
        self.store(slot, descriptor);
        // SAFETY: `offset < PAGE_SIZE`, so the result is inside the page,
        // hence not null.
        Ok(unsafe { NonNull::new_unchecked(page.as_ptr().add(offset)) })
    }

    /// Ends a [`Pool::map`] of the object of `handle`. The address it
    /// returned must not be used afterwards (unless another map of the
    /// object is still in force). If this ends the last mapping of the
    /// page and the page's compaction was deferred, compacts it (and may
    /// migrate its object, see *Migration*).
    pub fn unmap(&mut self, handle: Handle) -> Result<(), HandleError> {
        let Found {
            slot,
            index,
            mut descriptor,
            ..
        } = self.resolve(handle)?;
        let maps = descriptor.maps(index);
        if maps == 0 {
            return Err(self.reject(HandleError::NotMapped));
        }
        descriptor.set_maps(index, maps - 1);
        if descriptor.is_mapped() || !descriptor.is_deferred() {
            self.store(slot, descriptor);
            return Ok(());
        }
        self.unlist(slot, &descriptor);
        self.settle(slot, descriptor);
        Ok(())
    }

    /// Number of pages the pool holds: its object pages (headless ones
    /// included) and the pages of its slot table.
    pub fn total_pages(&self) -> u64 {
        self.pages().wrapping_add(self.table.node_pages())
    }

    /// Whether the pool holds no objects.
    pub fn is_empty(&self) -> bool {
        self.objects == 0
    }

    /// The pool's counters.
    pub fn stats(&self) -> Stats {
        let [headless_pages, pages_one, pages_two, pages_three] = self.classes;
        Stats {
            pages: self.pages(),
            table_pages: self.table.node_pages(),
            objects: self.objects,
            headless_pages,
            pages_one,
            pages_two,
            pages_three,
            compactions: self.compactions,
            compactions_deferred: self.compactions_deferred,
            migrations: self.migrations,
            forwarded: self.forwarded,
            rejected_invalid: self.rejected.invalid,
            rejected_too_big: self.rejected.too_big,
            rejected_no_memory: self.rejected.no_memory,
            bad_handles: self.bad_handles,
        }
    }

    /// Destroys the pool: [`Pool::reset`] without the reuse.
    pub fn destroy(mut self) -> Result<(), Leak> {
        self.reset()
    }

    /// Empties the pool. If objects are still live (mapped or not), their
    /// pages are left allocated (callers may still use them) and the
    /// returned [`Leak`] says how many; everything else, the slot table
    /// included, is freed.
    ///
    /// The pool can be used again, under a new tag: handles from before are
    /// [`HandleError::Foreign`]. The event counters of [`Stats`] are kept.
    pub fn reset(&mut self) -> Result<(), Leak> {
        let pages = self.pages();
        // A new tag if the pool had slots, hence handles.
        self.table.clear();
        self.unbuddied = [NO_SLOT; NCHUNKS];
        self.classes = [0; OBJECTS_PER_PAGE + 1];
        self.forwarded = 0;
        Leak::check(pages, mem::take(&mut self.objects))
    }

    /// Pages holding objects.
    fn pages(&self) -> u64 {
        self.classes
            .iter()
            .fold(0, |sum, &pages| sum.wrapping_add(pages))
    }

    /// Takes the first page off the first non-empty unbuddied list for at
    /// least `chunks` free chunks in one region, and says where an object
    /// of `chunks` chunks goes in it (see [`Descriptor::fit`]).
    fn take_unbuddied(&mut self, chunks: usize) -> Option<(u32, Descriptor, usize, usize)> {
        let slot = first_listed(&self.unbuddied, chunks)?;
        let descriptor = self.descriptor(slot)?;
        let (index, start) = descriptor.fit(chunks)?;
        self.unlist(slot, &descriptor);
        Some((slot, descriptor, index, start))
    }

    /// Gets a page from the source and puts it in a slot, with an empty
    /// descriptor; the page is on no list and counted in no class, and must
    /// be [relisted](Self::relist) with an object.
    fn add_page(&mut self, flags: P::Flags) -> Result<(u32, Descriptor), AllocError> {
        let (slot, counter, page) = self.table.insert_page(flags)?;
        Ok((slot, Descriptor::occupied(page, counter)))
    }

    /// Takes the page in `slot`, whose descriptor is `descriptor`, off its
    /// list and out of its class before its objects change.
    fn unlist(&mut self, slot: u32, descriptor: &Descriptor) {
        if let Some(class) = self.classes.get_mut(descriptor.class()) {
            *class = class.wrapping_sub(1);
        }
        let Some(list) = descriptor.list() else {
            return;
        };
        let (prev, next) = (descriptor.prev, descriptor.next);
        if prev == NO_SLOT {
            if let Some(head) = self.unbuddied.get_mut(list) {
                if *head == slot {
                    *head = next;
                }
            }
        } else {
            self.table.update(prev, |d| d.next = next);
        }
        self.table.update(next, |d| d.prev = prev);
    }

    /// Counts the page in `slot`, which has objects, in its class, puts it
    /// at the head of its list if it belongs on one, sets its deferred flag
    /// if its free chunks are in pieces, and stores its descriptor.
    fn relist(&mut self, slot: u32, mut descriptor: Descriptor) {
        descriptor.set_deferred(!descriptor.is_contiguous());
        descriptor.prev = NO_SLOT;
        descriptor.next = NO_SLOT;
        if let Some(class) = self.classes.get_mut(descriptor.class()) {
            *class = class.wrapping_add(1);
        }
        if let Some(head) = descriptor
            .list()
            .and_then(|list| self.unbuddied.get_mut(list))
        {
            descriptor.next = mem::replace(head, slot);
            self.table.update(descriptor.next, |d| d.prev = slot);
        }
        self.store(slot, descriptor);
    }

    /// After a free or the end of a page's last mapping: compacts the page
    /// in `slot` (unlisted, with objects) if its free chunks are in pieces
    /// and none of its objects is mapped, migrates its object if it is left
    /// with one it can give away (see *Migration*), and otherwise
    /// [relists](Self::relist) it.
    fn settle(&mut self, slot: u32, mut descriptor: Descriptor) {
        if descriptor.is_mapped() {
            self.relist(slot, descriptor);
            return;
        }
        if !descriptor.is_contiguous() {
            self.compact(&mut descriptor);
        }
        if let Err(descriptor) = self.migrate(slot, descriptor) {
            self.relist(slot, descriptor);
        }
    }

    /// Moves the only object of the page in `slot` (unlisted, nothing of it
    /// mapped, compacted) to the fullest listed page that holds it, frees
    /// the page and leaves a forwarder in `slot`. Gives the descriptor back
    /// if the object cannot move: it is foreign (it moves once at most), a
    /// whole page, or no other page holds it.
    fn migrate(&mut self, slot: u32, descriptor: Descriptor) -> Result<(), Descriptor> {
        let extents = descriptor.extents();
        let (Some(page), &[extent]) = (descriptor.page, extents.as_slice()) else {
            return Err(descriptor);
        };
        if descriptor.has_foreign() || descriptor.is_mapped() || extent.chunks >= NCHUNKS {
            return Err(descriptor);
        }
        let Some((to_slot, mut to, to_index, to_start)) = self.take_unbuddied(extent.chunks) else {
            return Err(descriptor);
        };
        let Some(to_page) = to.page else {
            self.relist(to_slot, to);
            return Err(descriptor);
        };
        // The destination is free chunks of the other page (`fit` found
        // them), which nobody uses.
        if !self.move_object(page, &extent, to_page, to_start) {
            self.relist(to_slot, to);
            return Err(descriptor);
        }
        to.add_foreign(to_index, to_start, extent.chunks, slot);
        self.relist(to_slot, to);
        let forwarder = Descriptor::forwarder(&descriptor, extent.index, to_slot, to_index);
        self.table.release_page(slot, forwarder);
        self.migrations = self.migrations.wrapping_add(1);
        self.forwarded = self.forwarded.wrapping_add(1);
        Ok(())
    }

    /// Moves the objects of the page of `descriptor`, none of which is
    /// mapped, to the layout of [`Descriptor::compacted`] and records their
    /// new starts.
    fn compact(&mut self, descriptor: &mut Descriptor) {
        let Some(page) = descriptor.page.filter(|_| !descriptor.is_mapped()) else {
            return;
        };
        let starts = descriptor.compacted();
        let extents = descriptor.extents();
        let target = |extent: &Extent| {
            starts
                .get(extent.index)
                .copied()
                .map_or(extent.start, usize::from)
        };
        // Objects moving left go first, in address order, then those moving
        // right, in reverse order: none overwrites one that has yet to
        // move (see `Descriptor::compacted`).
        let left = extents.as_slice().iter().filter(|e| target(e) < e.start);
        let right = extents.as_slice().iter().rev();
        for extent in left.chain(right.filter(|e| target(e) > e.start)) {
            if self.move_object(page, extent, page, target(extent)) {
                self.compactions = self.compactions.wrapping_add(1);
            }
        }
        descriptor.starts = starts;
    }

    /// Copies the object `extent` of `page` to chunk `to` of `to_page` (the
    /// same page for compaction, another for migration); returns whether it
    /// did (it does not if either range would leave its page).
    ///
    /// No object of `page` may be mapped, and the destination chunks must be
    /// the object's own or free.
    fn move_object(
        &mut self,
        page: NonNull<u8>,
        extent: &Extent,
        to_page: NonNull<u8>,
        to: usize,
    ) -> bool {
        if extent.end() > NCHUNKS || to.saturating_add(extent.chunks) > NCHUNKS {
            return false;
        }
        // SAFETY: Both ranges are inside their pages (checked above), which
        // belong to the pool (type invariant). No object of the source page
        // is mapped and the destination chunks are the object's own or free,
        // so nobody else uses these bytes (see *Locking contract*), and the
        // pool is borrowed mutably. `copy` allows overlap (compaction).
        unsafe {
            ptr::copy(
                page.as_ptr().add(extent.start * CHUNK_SIZE),
                to_page.as_ptr().add(to * CHUNK_SIZE),
                extent.chunks * CHUNK_SIZE,
            );
        }
        true
    }

    /// Finds the live object of `handle`. Counts a bad handle.
    fn resolve(&mut self, handle: Handle) -> Result<Found, HandleError> {
        self.lookup(handle).map_err(|err| self.reject(err))
    }

    /// Counts a rejected handle.
    fn reject(&mut self, err: HandleError) -> HandleError {
        self.bad_handles = self.bad_handles.wrapping_add(1);
        err
    }

    fn lookup(&self, handle: Handle) -> Result<Found, HandleError> {
        let fields = handle.fields();
        if fields.tag != self.table.tag() {
            return Err(HandleError::Foreign);
        }
        let index = fields.index as usize;
        if fields.spare != 0 || index >= OBJECTS_PER_PAGE || !SlotTable::<P>::is_slot(fields.slot) {
            return Err(HandleError::Malformed);
        }
        // A slot without a leaf was freed with it (or never handed out).
        let record = *self.table.get(fields.slot).ok_or(HandleError::Stale)?;
        let named = record.is_live(index) && record.generation(index) == Some(fields.generation);
        if !named {
            return Err(HandleError::Stale);
        }
        if record.page.is_some() {
            if record.is_foreign(index) {
                return Err(HandleError::Stale);
            }
            return Ok(Found {
                slot: fields.slot,
                index,
                descriptor: record,
                forwarder: None,
            });
        }
        // A forwarder: its object is foreign in another page.
        let (slot, index) = record.forwarded().ok_or(HandleError::Stale)?;
        let descriptor = self.descriptor(slot).ok_or(HandleError::Stale)?;
        if !descriptor.is_live(index) || !descriptor.is_foreign(index) {
            return Err(HandleError::Stale);
        }
        Ok(Found {
            slot,
            index,
            descriptor,
            forwarder: Some((fields.slot, u32::from(record.counter))),
        })
    }

    /// A copy of the descriptor of the page in `slot`.
    fn descriptor(&self, slot: u32) -> Option<Descriptor> {
        self.table
            .get(slot)
            .copied()
            .filter(|descriptor| descriptor.page.is_some())
    }

    /// Writes the descriptor of the page in `slot`.
    fn store(&mut self, slot: u32, descriptor: Descriptor) {
        self.table.update(slot, |d| *d = descriptor);
    }
}

impl<P: PageSource> Drop for Pool<P> {
    /// Like [`Pool::destroy`], without the report: live objects' pages are
    /// leaked silently.
    fn drop(&mut self) {
        let _ = self.reset();
    }
}
