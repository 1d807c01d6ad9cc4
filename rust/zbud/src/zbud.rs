// SPDX-License-Identifier: GPL-2.0

//! zbud: at most two compressed objects per page, after `mm/zbud.c` (Linux
//! 6.12), for zswap's `zpool` interface.
//!
//! A [`Pool`] stores objects of 1 to [`MAX_ALLOC_SIZE`] bytes in pages it
//! gets from a [`PageSource`], at most two objects per page, and names each
//! object by an opaque [`Handle`] that it checks on every use. The file uses
//! only `core` and the code it shares with z3fold (`rust/zalloc`, included
//! next to it as `crate::zalloc`: the page source, handles, the slot table),
//! so the same source is built into kernel modules and into the host crate
//! that runs its tests.
//!
//! zbud trades density for simplicity: two objects per page, never more,
//! never moved. Since each object takes at most one page, the pool never uses
//! more pages than the objects would uncompressed (its slot table aside).
//!
//! # Page layout
//!
//! A zbud page is one [`PAGE_SIZE`] page divided into `2^NCHUNKS_ORDER` = 64
//! chunks of [`CHUNK_SIZE`] = 64 bytes. The first chunk holds the page header;
//! the other [`NCHUNKS`] = 63 chunks hold at most two objects, the *buddies*:
//!
//! ```text
//! 0        64                                    4096 - 64 * last        4096
//! | header | first buddy ->   ...free chunks...   <- last buddy            |
//! ```
//!
//! The first buddy starts right after the header and the last buddy ends at
//! the end of the page, so the chunks freed with either buddy join the free
//! chunks between them: a page with one buddy always offers one contiguous
//! free region. An object of `size` bytes takes
//! [`size_to_chunks`]`(size)` = `ceil(size / 64)` chunks. As in zbud, an
//! object may take at most 62 chunks ([`MAX_ALLOC_SIZE`] = 3968 bytes), so a
//! page with one buddy always has a free chunk.
//!
//! The header records the size in chunks of each buddy (0 for a free buddy),
//! the generation of each buddy's handle and the page's links on its
//! unbuddied list. Objects never overlap the header, and the pool never
//! touches an object's bytes.
//!
//! # Lists
//!
//! A page with one buddy is on the *unbuddied* list for its number of free
//! chunks (`63 - chunks`; one list per count, as `zbud_pool.unbuddied`). A
//! list is doubly linked through the page headers by slot number (see
//! *Handles*), so it does not depend on page addresses. A page with two
//! buddies is on no list: zbud keeps such pages on a `buddied` list that
//! nothing reads, here they are only counted.
//!
//! [`Pool::alloc`] of `n` chunks takes the first page of the first non-empty
//! unbuddied list from `n` upward (the fullest page that fits, most recently
//! listed first, as zbud does) and fills whichever buddy is free. If there is
//! none, it gets a new page and fills its first buddy. After an allocation or
//! a free the page goes to the list its free chunk count calls for; a page
//! whose buddies are both free goes back to the page source at once.
//!
//! # Handles
//!
//! zbud's handles are the objects' addresses, and freeing a bad one corrupts
//! the pool. Here a handle is checked before use, in O(1), without touching
//! memory the pool does not own. Every page has a *slot*, a number that is
//! its index in the pool's slot table. A handle is a `u64`:
//!
//! ```text
//!  63        48 47          27 26            1   0
//! | pool tag   | generation   | slot          | buddy |
//! |  16 bits   |   21 bits    |   26 bits     | 0 = first, 1 = last
//! ```
//!
//! * The *pool tag* is different for each pool (a global counter that
//!   skips 0, so no handle is 0). A handle with another tag is
//!   [`HandleError::Foreign`]: another pool's, or garbage.
//! * The *slot table* (zalloc's `RadixTable`) is a radix tree of three
//!   levels whose nodes are pages from the pool's page source, each holding
//!   512 links (interior nodes) or 256 entries of 16 bytes (leaves). A leaf
//!   entry holds a slot's page and a copy of its buddies' generations and
//!   the last buddy's size (for [`Pool::map_lockless`]) or, for a free
//!   slot, the next free slot of the leaf and the slot's generation; entry
//!   0 of each leaf is its header (its free list and free count), never a
//!   slot, and a handle naming it is [`HandleError::Malformed`]. A new page
//!   takes a free slot of the first leaf that has one; the table grows, one
//!   leaf (and, every 2^17 slots, one interior node) at a time, with the
//!   flags of the allocation that needs the slot, and gives a leaf back as
//!   soon as its slots are all free, through the page source's deferred
//!   free (after the readers without the lock that may still walk it: an
//!   RCU grace period in the kernel). It takes one page per 255 zbud
//!   pages (of the pool's current pages, packed into the first leaves)
//!   plus two. It also owns the page source and has the pool tag, renewed
//!   on reset.
//! * The *generation* is a per-slot counter incremented (modulo 2^21) by each
//!   allocation in the slot; each buddy's header records the value its handle
//!   carries, and a free slot keeps the counter for its next page (a new
//!   leaf's slots start at a generation that changes from leaf to leaf). A
//!   handle whose slot is free or has no leaf, whose buddy is free, or whose
//!   generation differs from the buddy's is [`HandleError::Stale`].
//!
//! Limits: a pool holds at most [`MAX_PAGES`] = 255 * 2^18 pages (255 GiB);
//! beyond that an allocation needing a new page fails with
//! [`AllocError::NoMemory`]. A stale handle is accepted only if its slot has
//! since seen a multiple of 2^21 allocations and the same buddy is allocated
//! again at exactly that count. Tags repeat after 65535 pools (or resets),
//! so a handle of a pool created that many pools earlier can pass the tag
//! check (the other checks still apply). A handle that passes all checks names a live object
//! of the pool, so a misused one can at worst free or map another live
//! object: it can never corrupt the pool.
//!
//! # Errors
//!
//! A failed call changes nothing but the counters of [`Stats`]:
//!
//! * [`Pool::alloc`]: size 0 is [`AllocError::Invalid`] (`-EINVAL`), a size
//!   above [`MAX_ALLOC_SIZE`] is [`AllocError::TooBig`] (`-ENOSPC`), a page
//!   (data or table) the source cannot provide is [`AllocError::NoMemory`]
//!   (`-ENOMEM`), as in zbud. zbud also rejects `__GFP_HIGHMEM` with
//!   `-EINVAL`; flags are opaque here, so that check is the page source's
//!   (its pages must be mapped: see [`PageSource`]).
//! * [`Pool::free`], [`Pool::map`] and [`Pool::unmap`]: a [`HandleError`]
//!   for a handle that does not name a live object of the pool.
//!
//! Nothing panics.
//!
//! # Locking contract
//!
//! The pool has no lock of its own: changes take `&mut self`, and [`Pool`] is
//! `Send` but not `Sync`, so the kernel glue keeps it under a spinlock, as
//! zbud does. Nothing sleeps or calls out except into the page source, so
//! every operation may run in atomic context if the page source does not
//! sleep there: pass non-sleeping flags to [`Pool::alloc`] under a spinlock
//! (zswap's are `__GFP_NORETRY | __GFP_NOWARN | __GFP_KSWAPD_RECLAIM`). Only
//! [`Pool::alloc`] allocates; [`Pool::free`], [`Pool::reset`],
//! [`Pool::destroy`] and dropping the pool free pages.
//!
//! The address [`Pool::map`] returns stays valid, and the object stays where
//! it is, until the object is freed: the caller may drop the lock and use it
//! ([`Pool::unmap`] only checks the handle: zbud's `unmap` is a no-op). The
//! pool writes only page headers, which no object overlaps, so such use does
//! not race with other pool operations.
//!
//! # Maps without the lock
//!
//! zbud's `map` takes no lock: its handle is the address. Here
//! [`Pool::map_lockless`] checks a handle without the lock, as
//! [`Pool::map`] does under it, from the slot table alone, which the glue
//! publishes next to its lock ([`Pool::publish`]: the root, written once,
//! and the tag):
//!
//! * the nodes the table drops (a leaf whose slots are all free, an
//!   interior node without links, the root) are freed through
//!   [`PageSource::free_page_deferred`], after the readers that may have
//!   reached them (in the kernel: `call_rcu`, the reader in
//!   `rcu_read_lock`), so the walk from the root to the slot's entry reads
//!   allocated nodes whatever the pool does meanwhile (an unlinked leaf's
//!   entries are all free slots'); links are stored with release and
//!   loaded with acquire ordering, so a new leaf is seen initialized;
//! * the slot's entry carries what the check needs besides the page: each
//!   allocated buddy's generation and the last buddy's size (copied there
//!   from the header with every header write, under the lock, in the same
//!   walk). The page itself is never read: a stale handle's page may be
//!   freed meanwhile;
//! * the entry's two words change with atomic stores as a one-entry
//!   seqlock (see `handles::Entry`): the reader gets a page and buddies
//!   that were the entry's together, or nothing.
//!
//! So the checks are the same as under the lock, with the same limits
//! (and one more: a reader preempted in its few loads while its slot
//! changes page a multiple of 2^14 times could pair a page with another
//! page's buddies; for a live handle the page cannot change). A handle it does
//! not find the glue maps under the lock, which decides and counts a bad
//! one. The table is read concurrently with its owner's changes only
//! through atomics: `make miri` runs readers against a writer.
//!
//! # Teardown
//!
//! [`Pool::destroy`] frees the slot table and, as the pool holds no empty
//! pages, is done if the pool is empty. If objects are still live it frees
//! none of their pages, which callers may still use, and returns their count
//! in a [`Leak`] for the glue to report. [`Pool::reset`] does the same
//! through `&mut` (for glue whose `Drop` reports leaks) and leaves the pool
//! usable under a new tag; dropping the pool does it without the report.
//!
//! # Checking
//!
//! [`Pool::check`] (in `check.rs`) verifies the invariants above from
//! scratch: the slot table, every page header, the unbuddied lists and the
//! counters. The tests call it after every step; the kernel test modules
//! call it under the pool's lock while their workloads run.

use core::cell::Cell;
use core::fmt;
use core::mem::{self, size_of};
use core::ptr::NonNull;

#[path = "check.rs"]
mod check;
#[path = "handles.rs"]
mod handles;

use crate::zalloc::{first_listed, object_chunks, LocklessView, Record, Rejections, NO_SLOT};
// The API; a module that includes this file may not use all of it.
#[allow(unused_imports)]
pub use crate::zalloc::{
    size_to_chunks, AllocError, Leak, PageSource, CHUNK_SIZE, NCHUNKS_ORDER, PAGE_SIZE,
};
pub use handles::Handle;
use handles::SlotTable;

/// Size of the page header: the first chunk.
pub const ZHDR_SIZE_ALIGNED: usize = CHUNK_SIZE;

/// Chunks available to objects in a page, and the number of unbuddied lists.
pub const NCHUNKS: usize = (PAGE_SIZE - ZHDR_SIZE_ALIGNED) / CHUNK_SIZE;

/// Largest object size: a page with one object keeps at least one chunk free.
pub const MAX_ALLOC_SIZE: usize = PAGE_SIZE - ZHDR_SIZE_ALIGNED - CHUNK_SIZE;

/// The most pages a pool holds: the number of slots of its slot table.
pub const MAX_PAGES: usize = handles::CAPACITY;

/// Why [`Pool::free`], [`Pool::map`] or [`Pool::unmap`] rejected a handle.
/// The pool is unchanged (but for [`Stats::bad_handles`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandleError {
    /// The handle carries another pool's tag: it belongs to another pool, or
    /// is not a handle at all.
    Foreign,
    /// The handle names no slot (the place of a leaf's header).
    Malformed,
    /// The handle's object was freed (a double free or a use after free),
    /// or its slot has no leaf (freed with it, or never handed out).
    Stale,
}

impl fmt::Display for HandleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HandleError::Foreign => "zbud: handle of another pool",
            HandleError::Malformed => "zbud: malformed handle",
            HandleError::Stale => "zbud: handle of a freed object",
        })
    }
}

/// A snapshot of a pool's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Pages holding objects ([`Pool::total_pages`]).
    pub pages: u64,
    /// Pages of the slot table.
    pub table_pages: u64,
    /// Live objects.
    pub objects: u64,
    /// Pages holding one object (on an unbuddied list).
    pub unbuddied_pages: u64,
    /// Pages holding two objects.
    pub buddied_pages: u64,
    /// Allocations rejected with [`AllocError::Invalid`].
    pub rejected_invalid: u64,
    /// Allocations rejected with [`AllocError::TooBig`].
    pub rejected_too_big: u64,
    /// Allocations rejected with [`AllocError::NoMemory`].
    pub rejected_no_memory: u64,
    /// Handles rejected by [`Pool::free`], [`Pool::map`] or [`Pool::unmap`].
    pub bad_handles: u64,
}

/// A page's two buddies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Buddy {
    /// Left-justified, right after the header.
    First,
    /// Right-justified, at the end of the page.
    Last,
}

impl Buddy {
    /// Index of the buddy in [`Header`]'s arrays.
    const fn index(self) -> usize {
        match self {
            Buddy::First => 0,
            Buddy::Last => 1,
        }
    }
}

/// The header of a zbud page, in its first chunk.
///
/// # Invariants
///
/// In a page of a [`Pool`], between calls:
/// * `chunks[b]` is 0 if buddy `b` is free and the size of its object in
///   chunks otherwise; at least one buddy is allocated, and
///   `chunks[0] + chunks[1] <= NCHUNKS`;
/// * `generations[b]` is the generation in the handle of allocated buddy `b`;
/// * `counter` is the generation last handed out in the page's slot;
/// * `prev` and `next` are the slots of the neighbouring pages on the page's
///   unbuddied list ([`NO_SLOT`] at either end), or both [`NO_SLOT`] for a
///   page with two buddies.
#[repr(C)]
#[derive(Clone, Copy)]
struct Header {
    prev: u32,
    next: u32,
    chunks: [u32; 2],
    generations: [u32; 2],
    counter: u32,
}

const _: () = assert!(size_of::<Header>() <= ZHDR_SIZE_ALIGNED);

impl Header {
    /// The header of a page without objects, in a slot whose generation
    /// counter is `counter`.
    const fn empty(counter: u32) -> Self {
        Self {
            prev: NO_SLOT,
            next: NO_SLOT,
            chunks: [0; 2],
            generations: [0; 2],
            counter,
        }
    }

    fn is_allocated(&self, buddy: Buddy) -> bool {
        self.chunks[buddy.index()] != 0
    }

    /// The buddies as the page's slot entry keeps them (see
    /// `handles::Entry`): the first's generation if it is allocated, the
    /// last's generation and chunks if it is.
    fn buddies(&self) -> handles::Buddies {
        let [first, last] = [Buddy::First, Buddy::Last].map(|b| {
            self.is_allocated(b)
                .then_some((self.generations[b.index()], self.chunks[b.index()]))
        });
        (first.map(|(generation, _)| generation), last)
    }

    fn is_full(&self) -> bool {
        self.is_allocated(Buddy::First) && self.is_allocated(Buddy::Last)
    }

    fn is_empty(&self) -> bool {
        !self.is_allocated(Buddy::First) && !self.is_allocated(Buddy::Last)
    }

    /// Free chunks: the index of the page's unbuddied list.
    fn free_chunks(&self) -> usize {
        let used = self.chunks[0].saturating_add(self.chunks[1]);
        NCHUNKS.saturating_sub(used as usize)
    }

    /// Offset of `buddy`'s object in the page. Always inside the page, even
    /// if an object overran into the header and corrupted it.
    fn object_offset(&self, buddy: Buddy) -> usize {
        match buddy {
            Buddy::First => ZHDR_SIZE_ALIGNED,
            Buddy::Last => {
                let chunks = (self.chunks[Buddy::Last.index()] as usize).min(NCHUNKS);
                PAGE_SIZE - chunks * CHUNK_SIZE
            }
        }
    }
}

/// A live object, as found from its handle.
struct Object {
    slot: u32,
    buddy: Buddy,
    page: NonNull<u8>,
    header: Header,
}

/// A zbud pool: objects of up to [`MAX_ALLOC_SIZE`] bytes, two per page.
///
/// See the [module documentation](self) for the design.
///
/// # Invariants
///
/// Between calls:
/// * each page in an occupied slot of `slots` came from the table's page
///   source, belongs to the pool alone (but for the objects' bytes, which
///   belong to their users), and holds a valid `Header` in its first chunk;
/// * `pages` is the number of such pages and `buddied_pages` the number of
///   them with two buddies; `objects` is the number of allocated buddies;
/// * `unbuddied[n]` is the first slot of the list of the pages with one buddy
///   and `n` free chunks, or `NO_SLOT`; every page with one buddy is on
///   the list for its free chunk count;
/// * every handle the pool returned whose object is live carries the tag of
///   its slot table.
///
/// The counters use wrapping arithmetic only so that the kernel's overflow
/// checks add no panic paths: by the invariants they stay within
/// [`MAX_PAGES`] (objects: twice that), and the event counters would take
/// centuries to wrap.
pub struct Pool<P: PageSource> {
    slots: SlotTable<P>,
    unbuddied: [u32; NCHUNKS],
    pages: u64,
    buddied_pages: u64,
    objects: u64,
    rejected: Rejections,
    bad_handles: Cell<u64>,
}

impl<P: PageSource> Pool<P> {
    /// Creates an empty pool that takes its pages from `source`. Allocates
    /// nothing.
    pub fn new(source: P) -> Self {
        Self {
            slots: SlotTable::new(source),
            unbuddied: [NO_SLOT; NCHUNKS],
            pages: 0,
            buddied_pages: 0,
            objects: 0,
            rejected: Rejections::default(),
            bad_handles: Cell::new(0),
        }
    }

    /// Allocates an object of `size` bytes and returns its handle.
    ///
    /// Pages needed (a new zbud page, and table pages for its slot) come from
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
        let (slot, mut header) = match self.take_unbuddied(chunks) {
            Some(found) => found,
            None => self.add_page(flags)?,
        };
        let buddy = if header.is_allocated(Buddy::First) {
            Buddy::Last
        } else {
            Buddy::First
        };
        header.counter = handles::next_generation(header.counter);
        // `chunks <= NCHUNKS`: lossless.
        header.chunks[buddy.index()] = chunks as u32;
        header.generations[buddy.index()] = header.counter;
        self.objects = self.objects.wrapping_add(1);
        self.place(slot, header);
        Ok(Handle::new(
            self.slots.tag(),
            header.counter,
            slot,
            buddy.index() as u32,
        ))
    }

    /// Frees the object of `handle`, and its page if the page is left empty.
    /// The object's address must not be used afterwards.
    pub fn free(&mut self, handle: Handle) -> Result<(), HandleError> {
        let Object {
            slot,
            buddy,
            mut header,
            ..
        } = self.resolve(handle)?;
        self.detach(&header);
        header.chunks[buddy.index()] = 0;
        self.objects = self.objects.wrapping_sub(1);
        if header.is_empty() {
            self.remove_page(slot, header.counter);
        } else {
            self.place(slot, header);
        }
        Ok(())
    }

    /// The address of the object of `handle`, valid for reads and writes of
    /// the size it was allocated with until it is freed.
    pub fn map(&self, handle: Handle) -> Result<NonNull<u8>, HandleError> {
        let object = self.resolve(handle)?;
        let offset = object.header.object_offset(object.buddy);
        // SAFETY: `offset < PAGE_SIZE`, so the result is inside the page, hence
        // not null.
        Ok(unsafe { NonNull::new_unchecked(object.page.as_ptr().add(offset)) })
    }

    /// Publishes to `view` where readers without the pool's lock find its
    /// slot table ([`Pool::map_lockless`]). The owner calls it after each
    /// [`Pool::alloc`] and [`Pool::free`] (which may make or drop the
    /// table's root) and [`Pool::reset`].
    pub fn publish(&mut self, view: &LocklessView) {
        self.slots.publish(view);
    }

    /// [`Pool::map`] without the pool's lock: the object's address if
    /// `handle` names a live object of the pool whose slot table is
    /// published in `view`; `None` if it does not, or if its slot's page
    /// was changing meanwhile. The caller then calls [`Pool::map`] under
    /// the lock, which rejects (and counts) a bad handle.
    ///
    /// It reads only the slot table and from it only the slot's entry,
    /// which holds the buddies' generations and sizes (the page header's,
    /// copied there under the lock): never a page, which a concurrent free
    /// of the other buddy of a stale handle's page may free. The checks are those of
    /// [`Pool::map`], from one consistent reading of the entry (see
    /// `handles::Entry`).
    ///
    /// # Safety
    ///
    /// `view` is where this pool published its table ([`Pool::publish`]);
    /// the pool is not reset, destroyed or dropped during the call; and the
    /// caller is, across the call, a reader that the page source's
    /// [`PageSource::free_page_deferred`] waits for (in the kernel, in an
    /// RCU read-side critical section), so that the table nodes it walks,
    /// even one dropped meanwhile, stay allocated.
    pub unsafe fn map_lockless(view: &LocklessView, handle: Handle) -> Option<NonNull<u8>> {
        let fields = handle.fields();
        if fields.tag != view.tag() || !SlotTable::<P>::is_slot(fields.slot) {
            return None;
        }
        // SAFETY: the caller's: the table published in `view` is live, and
        // the nodes it drops (its entries are `LOCKLESS`) are freed only
        // after this reader is done.
        let at = unsafe { SlotTable::<P>::lockless_record(view, fields.slot) }?;
        // SAFETY: As above: `at` is an entry of a leaf that stays
        // allocated during the call.
        let (page, (first, last)) = unsafe { handles::Entry::load_lockless(at) }?;
        let offset = match (fields.index, first, last) {
            (0, Some(generation), _) if generation == fields.generation => ZHDR_SIZE_ALIGNED,
            (1, _, Some((generation, chunks))) if generation == fields.generation => {
                PAGE_SIZE - (chunks as usize).min(NCHUNKS) * CHUNK_SIZE
            }
            _ => return None,
        };
        // SAFETY: `offset < PAGE_SIZE`, so the result is inside the page,
        // hence not null.
        Some(unsafe { NonNull::new_unchecked(page.as_ptr().add(offset)) })
    }

    /// Ends a [`Pool::map`]. zbud never moves an object, so this only checks
    /// the handle (zbud's `unmap` is a no-op); it is there for glue shared
    /// with allocators whose `unmap` matters.
    pub fn unmap(&self, handle: Handle) -> Result<(), HandleError> {
        self.resolve(handle).map(drop)
    }

    /// Number of pages holding objects (zbud's `pages_nr`), not counting the
    /// slot table ([`Stats::table_pages`]).
    pub fn total_pages(&self) -> u64 {
        self.pages
    }

    /// Whether the pool holds no objects.
    pub fn is_empty(&self) -> bool {
        self.objects == 0
    }

    /// The pool's counters.
    pub fn stats(&self) -> Stats {
        Stats {
            pages: self.pages,
            table_pages: self.slots.node_pages(),
            objects: self.objects,
            unbuddied_pages: self.pages.wrapping_sub(self.buddied_pages),
            buddied_pages: self.buddied_pages,
            rejected_invalid: self.rejected.invalid,
            rejected_too_big: self.rejected.too_big,
            rejected_no_memory: self.rejected.no_memory,
            bad_handles: self.bad_handles.get(),
        }
    }

    /// Destroys the pool: [`Pool::reset`] without the reuse.
    pub fn destroy(mut self) -> Result<(), Leak> {
        self.reset()
    }

    /// Empties the pool. If objects are still live, their pages are left
    /// allocated (callers may still use them) and the returned [`Leak`] says
    /// how many; everything else, the slot table included, is freed.
    ///
    /// The pool can be used again, under a new tag: handles from before are
    /// [`HandleError::Foreign`]. The event counters of [`Stats`] are kept.
    pub fn reset(&mut self) -> Result<(), Leak> {
        // A new tag if the pool had slots, hence handles.
        self.slots.clear();
        self.unbuddied = [NO_SLOT; NCHUNKS];
        self.buddied_pages = 0;
        Leak::check(mem::take(&mut self.pages), mem::take(&mut self.objects))
    }

    /// Takes the first page off the first non-empty unbuddied list for at
    /// least `chunks` free chunks.
    fn take_unbuddied(&mut self, chunks: usize) -> Option<(u32, Header)> {
        let slot = first_listed(&self.unbuddied, chunks)?;
        let (_, header) = self.page(slot).ok()?;
        self.detach(&header);
        Some((slot, header))
    }

    /// Gets a page from the source and puts it in a slot, with an empty
    /// header; the page is on no list and must be [placed](Self::place).
    fn add_page(&mut self, flags: P::Flags) -> Result<(u32, Header), AllocError> {
        let (slot, counter, _) = self.slots.insert_page(flags)?;
        self.pages = self.pages.wrapping_add(1);
        let header = Header::empty(counter);
        self.write_header(slot, header);
        Ok((slot, header))
    }

    /// Frees the (empty) page in `slot` and frees the slot, which keeps the
    /// generation `counter`.
    fn remove_page(&mut self, slot: u32, counter: u32) {
        // The page holds no object, so nothing uses it.
        if self.slots.remove_page(slot, counter) {
            self.pages = self.pages.wrapping_sub(1);
        }
    }

    /// Takes the page whose header is `header` off its list (or
    /// out of the buddied count) before its buddies change.
    fn detach(&mut self, header: &Header) {
        if header.is_full() {
            self.buddied_pages = self.buddied_pages.wrapping_sub(1);
            return;
        }
        let (prev, next) = (header.prev, header.next);
        if prev == NO_SLOT {
            if let Some(head) = self.unbuddied.get_mut(header.free_chunks()) {
                *head = next;
            }
        } else {
            self.update_header(prev, |h| h.next = next);
        }
        if next != NO_SLOT {
            self.update_header(next, |h| h.prev = prev);
        }
    }

    /// Puts the page in `slot`, which has at least one buddy, at the head of
    /// the unbuddied list for its free chunks, or counts it as buddied, and
    /// writes its header.
    fn place(&mut self, slot: u32, mut header: Header) {
        header.prev = NO_SLOT;
        header.next = NO_SLOT;
        if header.is_full() {
            self.buddied_pages = self.buddied_pages.wrapping_add(1);
        } else if let Some(head) = self.unbuddied.get_mut(header.free_chunks()) {
            header.next = mem::replace(head, slot);
            if header.next != NO_SLOT {
                self.update_header(header.next, |h| h.prev = slot);
            }
        }
        self.write_header(slot, header);
    }

    /// Finds the live object of `handle`, counting a bad handle.
    fn resolve(&self, handle: Handle) -> Result<Object, HandleError> {
        let result = self.lookup(handle);
        if result.is_err() {
            self.bad_handles.set(self.bad_handles.get().wrapping_add(1));
        }
        result
    }

    fn lookup(&self, handle: Handle) -> Result<Object, HandleError> {
        let fields = handle.fields();
        if fields.tag != self.slots.tag() {
            return Err(HandleError::Foreign);
        }
        let (page, header) = self.page(fields.slot)?;
        let buddy = if fields.index == 0 {
            Buddy::First
        } else {
            Buddy::Last
        };
        if !header.is_allocated(buddy) || header.generations[buddy.index()] != fields.generation {
            return Err(HandleError::Stale);
        }
        Ok(Object {
            slot: fields.slot,
            buddy,
            page,
            header,
        })
    }

    /// The page in `slot` and a copy of its header.
    fn page(&self, slot: u32) -> Result<(NonNull<u8>, Header), HandleError> {
        let page = handles::page(&self.slots, slot)?;
        // SAFETY: By the type invariant the page is live, belongs to the pool
        // and starts with a valid `Header`, aligned because the page is; no
        // object overlaps it and only the pool, which is borrowed, writes it.
        let header = unsafe { page.cast::<Header>().as_ptr().read() };
        Ok((page, header))
    }

    /// Writes the header of the page in `slot`, and the buddies' state
    /// into the slot's entry (one walk of the table), for
    /// [`Pool::map_lockless`].
    fn write_header(&mut self, slot: u32, header: Header) {
        let (first, last) = header.buddies();
        let mut page = None;
        self.slots.update(slot, |entry| {
            page = entry.page();
            *entry = entry.with_buddies(first, last);
        });
        if let Some(page) = page {
            // SAFETY: By the type invariant the page is live and belongs to
            // the pool; its first chunk is the header, aligned because the
            // page is, and no object overlaps it. The pool is borrowed
            // mutably, so nothing else writes it, and lockless readers
            // read only the slot table.
            unsafe { page.cast::<Header>().as_ptr().write(header) };
        }
    }

    /// Applies `change` to the header of the page in `slot`.
    fn update_header(&mut self, slot: u32, change: impl FnOnce(&mut Header)) {
        if let Ok((_, mut header)) = self.page(slot) {
            change(&mut header);
            self.write_header(slot, header);
        }
    }
}

impl<P: PageSource> Drop for Pool<P> {
    /// Like [`Pool::destroy`], without the report: live objects' pages are
    /// leaked silently.
    fn drop(&mut self) {
        let _ = self.reset();
    }
}
