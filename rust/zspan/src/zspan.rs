// SPDX-License-Identifier: GPL-2.0

//! zspan: compressed objects in size classes on spans of up to 6 pages,
//! objects crossing page boundaries, metadata off the object pages, handles
//! that survive compaction.
//!
//! A [`Pool`] stores objects of 1 to [`MAX_SIZE`] bytes (a page) in pages it
//! gets from a [`PageSource`], and names each object by an opaque [`Handle`]
//! that it checks on every use. Like `rust/zbud` and `rust/z3fold`, the file
//! uses only `core` and the code the allocators share (`rust/zalloc`,
//! included next to it as `crate::zalloc`), so the same source is built
//! into kernel modules and into the host crate that runs its tests.
//!
//! zbud and z3fold never let an object cross a page boundary, so an object
//! over half a page has a page of its own. zsmalloc reaches its density
//! with size classes whose objects straddle the pages of a *zspage*. zspan
//! does the same, with three differences: spans chosen for the fewest
//! pages that fill well (at most 6; zsmalloc goes to 8), no header in the
//! objects (zsmalloc keeps the handle in the first word of each object),
//! and handles checked like zbud's.
//!
//! # Size classes and spans
//!
//! Sizes go by steps of [`FINE_DELTA`] = 8 bytes from [`MIN_SIZE`] = 16 up
//! to [`FINE_LIMIT`] = 256 bytes, and of [`CLASS_DELTA`] = 16 bytes above
//! (an object loses half a step to rounding on average: for a small one,
//! 8 bytes would be a large part of it). For each step, the span
//! is the fewest pages, 1 to [`MAX_SPAN_PAGES`] = 6, whose objects store
//! at least 31/32 of the most bytes per byte a span can: a span costs its
//! pages, its record (128 bytes) and its objects' metadata (counted as 16
//! bytes each: an 8-byte record and a 4-byte entry of a reverse map).
//! Fewer pages, because a class's last span is part empty (half of it, on
//! average): with a hundred classes in use, large spans' slack costs more
//! than their better fill gains. Objects of 2592 bytes, for instance, go 3
//! to a span of 2 pages (95 % of the pages used), where a page each would
//! use 63 %. Neighbouring steps whose spans have the same pages and objects
//! are one class, of the larger size ([`NCLASSES`] = 99 classes, computed
//! at compile time, [`CLASSES`]). A span holds at most
//! [`MAX_SPAN_OBJECTS`] = 256 objects (a page of 16-byte objects).
//!
//! Object `i` of a span is at byte `i * size` of the span's pages taken in
//! order, so it may start in one page and end in the next: such an object
//! is mapped as two pieces ([`Mapping::pieces`]), which the caller copies
//! to and from a buffer. The pages are order-0 pages, not contiguous.
//!
//! # Spans and lists
//!
//! A span's record in the *span table* (zalloc's `RadixTable`, 128-byte
//! records, 32 a page) has its pages, a bitmap of its live objects, its
//! count of live objects, its *reverse map* (the object slot at each live
//! index, for compaction: in the record for a span of at most
//! 9 objects, else a block cut from pages of the pool's,
//! `maps.rs`) and its links on a list of its class. Whether an
//! object is mapped is in its own record only, so that an unmap changes
//! one record.
//! The table knows the span's first page as its slot's page; the pool gets
//! the others from the same page source. Each class has lists of spans by
//! fullness ([`Group`]): at most a quarter free, at most half free, more
//! than half free, and the spans being emptied by compaction; a full span
//! is marked full and linked on none (nothing looks for one, and under
//! churn spans fill and stop being full all the time: unlinked, that costs
//! no neighbour's links).
//! [`Pool::alloc`] takes the first span of the fullest non-full list (the
//! object goes to its first free index), else a new span; after each change
//! a span goes to the list its fullness calls for, and a span without live
//! objects goes back to the page source at once, but for the pages the pool
//! keeps for its next new span (its *spare*: at most the pages of the
//! widest span it has opened, none once it has no span; [`Stats::spare_pages`]):
//! under churn compaction frees spans as often as allocations open them.
//! Nothing is stored in the object pages but the objects.
//!
//! # Handles
//!
//! A handle names a record of the *object table* (a second `RadixTable`,
//! 8-byte records, 511 a leaf page), which says where the object is: its
//! span's slot and its index there, and whether it is mapped (the span's
//! reverse map names the record back). A handle is a `u64`:
//!
//! ```text
//!  63        48 47          30 29                 3 2       0
//! | pool tag   | generation   | object slot        | shard   |
//! |  16 bits   |   18 bits    |   27 bits          | 3 bits  |
//! ```
//!
//! checked as zbud's are: another pool's tag is [`HandleError::Foreign`],
//! a number that is no slot, or another shard's, [`HandleError::Malformed`],
//! a free slot or another generation [`HandleError::Stale`]. Compaction
//! moves an object by copying it and rewriting its record; its handle stays
//! valid.
//!
//! # Shards
//!
//! A driver that wants a lock per group of classes splits its pool into
//! [`SHARDS`] = 8 pools ([`Pool::new_shard`]), each with its own tables,
//! classes and lock, and every handle says its shard ([`shard_of_handle`];
//! a pool rejects another shard's handle as malformed). Class `c` goes to
//! shard `c % 8`, so neighbouring classes have different locks, but only
//! in a pool of [`SHARD_FROM_PAGES`] = 4096 pages or more; a smaller pool
//! puts every class in shard 0 ([`shard_of_size`]). Each shard in use has
//! tables of its own, at least 6 pages (a root, an interior node and a leaf
//! in each), and a part-full page of span maps for each kind of block its
//! classes use: 42 pages or more for the seven shards besides shard 0, at
//! most 1 % of a pool that shards, where in a pool of a few hundred pages
//! of small objects they would cost several percent of its density. A
//! class is then in at most two shards (0, and its own), so its spans'
//! slack is at most twice its own. A lone pool is shard 0. (A driver may
//! shard a smaller pool by passing another threshold, or by saying it is
//! *contended*, as zspan_rs does once its CPUs meet on the pool's lock:
//! a contended pool uses as many shards as it has [`SHARD_PAGES`] = 512
//! pages for, a power of two from 2 to 8 ([`shards_in_use`]), and below
//! the line the stores of CPU `k` go to shard `k % n`, whatever their
//! class, so that CPUs storing at once take different locks, and a CPU's
//! objects, which it mostly frees and maps itself, are in its own shard.
//! A class is then in at most `n` shards, as many as there are CPUs
//! storing it, each with its own part-full span; from the line on, class
//! `c` is in shard `c % 8`.)
//!
//! # Mapping
//!
//! [`Pool::map`] marks the object mapped and returns where it is: one
//! piece, or two for an object that crosses a page boundary. A mapped
//! object is never moved, and a span with a mapped object is never freed,
//! until [`Pool::unmap`]. A handle mapped twice without an unmap, unmapped
//! while not mapped, or freed while mapped is rejected
//! ([`HandleError::Mapped`], [`HandleError::NotMapped`]).
//!
//! # Lockless maps
//!
//! A pool given a [`Shared`] ([`Pool::share`]: it lives beside the
//! owner's lock, as long as the pool) also maps without the lock:
//! [`Pool::map_lockless`] *pins* the object and [`Pool::unmap_lockless`]
//! unpins it, with one atomic exchange each on the pin of the object's
//! slot ([`PINS`] = 32 a pool, slot modulo 32; a map whose pin holds
//! another handle, or that finds the object mapped under the lock or
//! busy, returns `None` and the caller maps under the lock). Between the
//! two, the map reads the object's record and its span's head from the
//! tables the pool publishes there, under RCU (their records are
//! `LOCKLESS`: each node a table drops is freed after a grace period, and
//! what the reader reads, the object record's first word and the span
//! record's head, the owner stores atomically). The owner, before it moves
//! or frees an object, stores its record marked *busy*, issues a full
//! fence and loads the object's pin; the map stores its pin (a SeqCst
//! exchange) and then loads the record (SeqCst). Of these two stores and
//! two loads (the store-buffering pattern), at least one load sees the
//! other side's store: either the owner sees the pin and leaves the
//! object where it is (a free is then [`HandleError::Mapped`], a move goes
//! to the next object), or the map sees the busy mark (or the record as
//! the owner left it: moved, or free) and lets go of its pin. A pinned
//! object is therefore never moved, nor freed, nor its span; its unpin
//! (release) orders the caller's last access to its bytes before a move's
//! copy (the owner's load of the pin is an acquire). `map` under the lock
//! refuses a handle pinned already. A handle mapped without the lock is
//! unmapped without it; a pin is the handle's, so a bad `unmap` cannot
//! unpin another object.
//!
//! # Compaction
//!
//! A class is compacted when its spans have a whole span's worth of free
//! objects, two in a class of [`WIDE_CLASS_SPANS`] spans or more (one
//! span's worth moved twice as many objects on a zswap-like trace, for
//! 0.3 % fewer pages), and 1/16 of its spans' worth if that is more in a
//! class of at most [`FEW_OBJECTS`] objects a span: its emptiest span (of
//! the first 4 of the emptiest list that has one; a span at most a quarter
//! free only once the class has twice that room, for until then frees
//! drain a fuller span at no cost) is marked *evacuating* (it takes no new object), and
//! its unmapped objects, found through its map, move one by one into the
//! fullest non-full span of the class (copying the bytes, rewriting the
//! record and relinking it; the handle stays valid). A span that empties
//! goes back to the page source; one left with only mapped (or pinned)
//! objects stops evacuating. The work is bounded by a budget: a unit per
//! record looked at, [`MOVE_COST`] per object moved. [`Pool::after_free`], which a driver
//! calls after each free, compacts the freed object's class with a budget
//! of [`COMPACT_BUDGET`] (4 objects moved); [`Pool::compact`] goes through
//! every class with a budget of the caller's.

use core::cell::Cell;
use core::fmt;
use core::mem::MaybeUninit;
use core::ptr::{addr_of_mut, NonNull};
use core::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

#[path = "check.rs"]
mod check;
#[path = "classes.rs"]
mod classes;
#[path = "maps.rs"]
mod maps;
#[path = "records.rs"]
mod records;

// The API; a module that includes this file may not use all of it.
#[allow(unused_imports)]
pub use classes::{
    class_of, Geometry, CLASSES, CLASS_DELTA, FINE_DELTA, FINE_LIMIT, MAX_SIZE, MAX_SPAN_OBJECTS,
    MAX_SPAN_PAGES, MIN_SIZE, NCLASSES,
};
pub use records::Handle;

/// The shards a pool may be split into; see *Shards* in the
/// [module documentation](self).
pub const SHARDS: usize = 1 << records::SHARD_BITS;

/// The pages from which a pool shards its classes: see *Shards* in the
/// [module documentation](self).
pub const SHARD_FROM_PAGES: u64 = 4096;

/// The pages a contended pool holds for each shard it uses: see *Shards*
/// in the [module documentation](self).
pub const SHARD_PAGES: u64 = SHARD_FROM_PAGES / SHARDS as u64;

/// The shards a pool of `pool_pages` pages uses for new objects: all
/// [`SHARDS`] from `from_pages` pages on ([`SHARD_FROM_PAGES`], or 0 in a
/// test that wants every shard at once); below, one, or if it is
/// `contended` the largest power of two, at least 2, whose shards have
/// [`SHARD_PAGES`] pages each.
pub fn shards_in_use(pool_pages: u64, from_pages: u64, contended: bool) -> usize {
    if pool_pages >= from_pages {
        SHARDS
    } else if contended {
        let mut shards = 2;
        while shards < SHARDS && (2 * shards as u64).saturating_mul(SHARD_PAGES) <= pool_pages {
            shards *= 2;
        }
        shards
    } else {
        1
    }
}

/// The shard, of a pool split into [`SHARDS`] shards that holds
/// `pool_pages` pages in all, shards from `from_pages` and is `contended`
/// or not, that stores a new object of `size` bytes for CPU `cpu`: `class
/// % 8` in a pool that uses all of them ([`shards_in_use`]); below that, in
/// a contended pool, the CPU's modulo the shards it uses, and 0 in one
/// that is not; 0 for a size no class takes (which any shard rejects).
/// `cpu` is a hint (the caller may run on another CPU by the time it
/// stores): any value names a shard in use.
pub fn shard_of_size(
    size: usize,
    pool_pages: u64,
    from_pages: u64,
    contended: bool,
    cpu: usize,
) -> usize {
    let Some(class) = class_of(size) else {
        return 0;
    };
    let shards = shards_in_use(pool_pages, from_pages, contended);
    // `shards_in_use` is a power of two, at least 1.
    let mask = shards.wrapping_sub(1);
    if shards == SHARDS {
        class & mask
    } else {
        cpu & mask
    }
}

/// The shard that `handle` says it is of, below [`SHARDS`] whatever the
/// value (that shard's pool checks the rest).
pub fn shard_of_handle(handle: Handle) -> usize {
    handle.fields().index as usize
}

use crate::zalloc::{
    AllocError, Leak, LocklessView, PageSource, RadixTable, Record, Rejections, NO_SLOT, PAGE_SIZE,
};
use maps::{MapBlock, Maps};
use records::{inline_map, next_generation, Object, Span, SpanBody, SpanHead};

/// The lists of a class, by fullness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Group {
    /// No free object: a span marked so is linked on no list (its class's
    /// head for it stays [`NO_SLOT`]); nothing looks for a full span, and
    /// a span that fills or stops being full then costs no neighbour's
    /// links.
    Full = 0,
    /// At most a quarter of the objects free.
    AlmostFull = 1,
    /// At most half free.
    HalfFull = 2,
    /// More than half free.
    AlmostEmpty = 3,
    /// Being emptied by compaction: takes no new object.
    Evacuating = 4,
}

/// Number of lists a class has.
const GROUPS: usize = 5;

/// [`Span::list`] of a span on no list.
const UNLISTED: u8 = u8::MAX;

impl Group {
    /// The list for a span of `objects` objects, `live` of them live.
    fn of(live: u16, objects: u16) -> Group {
        let free = objects.saturating_sub(live);
        if free == 0 {
            Group::Full
        } else if free <= objects / 4 {
            Group::AlmostFull
        } else if free <= objects / 2 {
            Group::HalfFull
        } else {
            Group::AlmostEmpty
        }
    }
}

/// Why [`Pool::free`], [`Pool::map`] or [`Pool::unmap`] rejected a handle.
/// The pool is unchanged (but for [`Stats::bad_handles`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandleError {
    /// The handle carries another pool's tag: it belongs to another pool, or
    /// is not a handle at all.
    Foreign,
    /// The handle names no slot (the place of a leaf's header), or has
    /// bits set that no handle has.
    Malformed,
    /// The handle's object was freed (a double free or a use after free),
    /// or its slot has no leaf (freed with it, or never handed out).
    Stale,
    /// `map` of an object already mapped, or `free` of a mapped one.
    Mapped,
    /// `unmap` of an object that is not mapped.
    NotMapped,
}

impl fmt::Display for HandleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HandleError::Foreign => "zspan: handle of another pool",
            HandleError::Malformed => "zspan: malformed handle",
            HandleError::Stale => "zspan: handle of a freed object",
            HandleError::Mapped => "zspan: object is mapped",
            HandleError::NotMapped => "zspan: object is not mapped",
        })
    }
}

/// Where a mapped object is: the class's size in bytes (at least the
/// object's), in one piece or in two (the end of a page and the start of
/// the next).
///
/// # Invariants
///
/// `count` is 1 or 2; `pieces[..count]` are the object's pieces, in order,
/// each inside one page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    pieces: [(NonNull<u8>, usize); 2],
    count: u8,
}

impl Mapping {
    /// The pieces: one or two (address, length).
    pub fn pieces(&self) -> &[(NonNull<u8>, usize)] {
        let count = usize::from(self.count).min(2);
        self.pieces.get(..count).unwrap_or(&[])
    }

    /// Whether the object is in one piece: [`Mapping::first`] is all of it.
    pub fn is_direct(&self) -> bool {
        self.count == 1
    }

    /// The address of the object's first byte.
    pub fn first(&self) -> NonNull<u8> {
        self.pieces[0].0
    }

    /// The length of the object's bytes (the class's size).
    pub fn len(&self) -> usize {
        self.pieces().iter().map(|p| p.1).sum()
    }

    /// Whether the object has no bytes (never for a mapping of the pool).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies the object's bytes to `dst`, [`Mapping::len`] bytes.
    ///
    /// # Safety
    ///
    /// `dst` is valid for writes of [`Mapping::len`] bytes and overlaps no
    /// piece; the object is still mapped (or the pool otherwise unchanged).
    pub unsafe fn copy_to(&self, dst: *mut u8) {
        let mut at = 0usize;
        for &(src, len) in self.pieces() {
            // SAFETY: The piece is the object's (mapped, so in place) and
            // `dst` has room for all pieces (the caller's contract).
            unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), dst.add(at), len) };
            at = at.wrapping_add(len);
        }
    }

    /// Copies [`Mapping::len`] bytes from `src` to the object.
    ///
    /// # Safety
    ///
    /// `src` is valid for reads of [`Mapping::len`] bytes and overlaps no
    /// piece; the object is still mapped (or the pool otherwise unchanged).
    pub unsafe fn copy_from(&self, src: *const u8) {
        let mut at = 0usize;
        for &(dst, len) in self.pieces() {
            // SAFETY: As in `copy_to`, the other way.
            unsafe { core::ptr::copy_nonoverlapping(src.add(at), dst.as_ptr(), len) };
            at = at.wrapping_add(len);
        }
    }
}

/// A snapshot of a pool's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Pages holding objects: the spans' pages ([`Pool::total_pages`]).
    pub pages: u64,
    /// Pages of the two tables (objects' and spans' records).
    pub table_pages: u64,
    /// Pages of freed spans kept for the next new span (at most
    /// [`MAX_SPAN_PAGES`]; none in a pool without spans).
    pub spare_pages: u64,
    /// Live objects.
    pub objects: u64,
    /// Spans.
    pub spans: u64,
    /// Objects mapped now: under the lock, and pinned by lockless maps
    /// ([`Pool::map_lockless`]; a snapshot of the pins).
    pub mapped: u64,
    /// Bytes of the live objects' classes (what the pages hold, rounded up
    /// to each class's size).
    pub class_bytes: u64,
    /// Objects moved by compaction.
    pub moved: u64,
    /// Spans compaction emptied (and freed).
    pub spans_compacted: u64,
    /// Allocations rejected with [`AllocError::Invalid`].
    pub rejected_invalid: u64,
    /// Allocations rejected with [`AllocError::TooBig`].
    pub rejected_too_big: u64,
    /// Allocations rejected with [`AllocError::NoMemory`].
    pub rejected_no_memory: u64,
    /// Handles rejected by [`Pool::free`], [`Pool::map`] or [`Pool::unmap`].
    pub bad_handles: u64,
}

impl Stats {
    /// The counters of two pools together (the shards of one pool).
    pub fn plus(&self, other: &Stats) -> Stats {
        Stats {
            pages: self.pages.wrapping_add(other.pages),
            table_pages: self.table_pages.wrapping_add(other.table_pages),
            spare_pages: self.spare_pages.wrapping_add(other.spare_pages),
            objects: self.objects.wrapping_add(other.objects),
            spans: self.spans.wrapping_add(other.spans),
            mapped: self.mapped.wrapping_add(other.mapped),
            class_bytes: self.class_bytes.wrapping_add(other.class_bytes),
            moved: self.moved.wrapping_add(other.moved),
            spans_compacted: self.spans_compacted.wrapping_add(other.spans_compacted),
            rejected_invalid: self.rejected_invalid.wrapping_add(other.rejected_invalid),
            rejected_too_big: self.rejected_too_big.wrapping_add(other.rejected_too_big),
            rejected_no_memory: self
                .rejected_no_memory
                .wrapping_add(other.rejected_no_memory),
            bad_handles: self.bad_handles.wrapping_add(other.bad_handles),
        }
    }
}

/// What one [`Pool::compact`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Compaction {
    /// Object records scanned.
    pub scanned: usize,
    /// Objects moved.
    pub moved: usize,
    /// Spans emptied and freed.
    pub freed_spans: usize,
}

/// The object table.
type ObjectTable<P> = RadixTable<Object, P>;
/// The span table.
type SpanTable<P> = RadixTable<Span, P>;

/// A class's spans: the heads of its lists, and counts.
#[derive(Clone, Copy)]
struct Class {
    /// The first span of each [`Group`]'s list, [`NO_SLOT`] if empty.
    heads: [u32; GROUPS],
    /// Spans of the class.
    spans: u32,
    /// Free objects of the class's spans (their objects less the live).
    room: u32,
    /// The room from which the class is compacted ([`trigger`]), set when
    /// its spans change, so that the check after each free
    /// ([`Class::compaction_due`]) is one comparison.
    trigger: u32,
    /// Frees the class has had at or past its trigger since its room was
    /// last below it, or since its last victim was chosen
    /// ([`Pool::after_free`]).
    waited: u32,
}

impl Class {
    const EMPTY: Class = Class {
        heads: [NO_SLOT; GROUPS],
        spans: 0,
        room: 0,
        trigger: u32::MAX,
        waited: 0,
    };

    /// Counts a span of `objects` objects, all free, in (`true`) or out
    /// of the class.
    fn count_span(&mut self, objects: u32, added: bool) {
        if added {
            self.spans = self.spans.wrapping_add(1);
            self.room = self.room.wrapping_add(objects);
        } else {
            self.spans = self.spans.wrapping_sub(1);
            self.room = self.room.wrapping_sub(objects);
        }
        self.trigger = trigger(self.spans, objects);
    }

    /// Whether the class has an evacuating span, or the room to choose
    /// one ([`Pool::evacuate`]): two loads and no call, for the check
    /// after each free ([`Pool::after_free`]).
    #[inline]
    fn compaction_due(&self) -> bool {
        self.heads[Group::Evacuating as usize] != NO_SLOT || self.room >= self.trigger
    }
}

/// Pages of freed spans that a pool keeps for its next new span: at most
/// the pages of the widest span it has opened ([`MAX_SPAN_PAGES`] at
/// most; one in a pool of small objects, whose spans are a page each),
/// none in a pool without spans. Under churn, compaction frees a
/// span as often as allocations open one; a kept page saves the page
/// allocator's free and allocation, and a driver that gets its pages
/// outside its lock the second try they take. The pages count in the
/// pool's ([`Stats::spare_pages`]).
///
/// # Invariants
///
/// `pages[..len]` are pages of the pool's source that hold nothing and
/// that nothing else refers to; the rest are `None`; `len <= widest <=`
/// [`MAX_SPAN_PAGES`], and `widest` is at least the pages of each of the
/// pool's spans (0 without spans).
struct Spare {
    pages: [Option<NonNull<u8>>; MAX_SPAN_PAGES],
    len: u8,
    /// The pages of the widest span opened since the pool last had no
    /// span: how many the spare keeps.
    widest: u8,
}

// SAFETY: The spare pages are the pool's alone (type invariant); they may
// move to another thread with the pool.
unsafe impl Send for Spare {}

impl Spare {
    const EMPTY: Spare = Spare {
        pages: [None; MAX_SPAN_PAGES],
        len: 0,
        widest: 0,
    };

    /// The pages kept.
    fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Takes a page, if any.
    fn take(&mut self) -> Option<NonNull<u8>> {
        let last = self.len().checked_sub(1)?;
        let page = self.pages.get_mut(last)?.take()?;
        self.len = last as u8;
        Some(page)
    }

    /// Keeps `page`, or gives it back if the spare is full.
    fn put(&mut self, page: NonNull<u8>) -> Result<(), NonNull<u8>> {
        let len = self.len();
        match self.pages.get_mut(len) {
            Some(at) => {
                *at = Some(page);
                self.len = self.len.wrapping_add(1);
                Ok(())
            }
            None => Err(page),
        }
    }
}

/// A pool of objects in size classes on spans; see the
/// [module documentation](self).
///
/// # Invariants
///
/// * Every occupied slot of `spans` is a span of class `class <
///   NCLASSES`: `npages` = its class's pages, `pages[..npages]` pages from
///   the source (the first the slot's page), the rest null; `live` objects,
///   `0 < live <= objects`, the bits of `used`; on the list of its class
///   its fullness calls for (`Group::of`), or on `Group::Evacuating`
///   if `evacuating` is set; a span of [`Group::Full`] is marked so and
///   linked on no list.
/// * Every live record of `objects` names a span and an index whose bit is
///   set, and no two name the same; each span's map (in its record for a
///   class of at most `records::INLINE_OBJECTS` objects, else its `map`, a
///   block of `maps` of its class's kind) names at each live index the
///   slot of the record that names it.
/// * The counters are the sums of the above (`mapped`: the live records
///   marked mapped).
pub struct Pool<P: PageSource + Clone> {
    objects: ObjectTable<P>,
    spans: SpanTable<P>,
    classes: [Class; NCLASSES],
    /// The spans' reverse maps.
    maps: Maps,
    spare: Spare,
    pages: u64,
    live: u64,
    span_count: u64,
    mapped: u64,
    moved: u64,
    spans_compacted: u64,
    rejected: Rejections,
    bad_handles: u64,
    /// The class of the last object freed, for [`Pool::after_free`].
    freed_class: usize,
    /// The shard this pool is, below [`SHARDS`]: its handles say it.
    shard: u32,
    /// Where lockless maps pin objects ([`Pool::share`]), if they may.
    shared: Option<SharedRef>,
}

/// The pins of a lockless map ([`Shared`]): how many a shard has. A map
/// whose pin is taken by another object maps under the lock.
pub const PINS: usize = 32;

/// What a pool shares with readers that do not take its lock: where its
/// tables are (their roots and tags, which the pool publishes) and the
/// *pins* of the objects mapped without the lock ([`Pool::map_lockless`]).
/// It lives beside the lock (outside what the lock guards), as long as the
/// pool.
pub struct Shared {
    objects: LocklessView,
    spans: LocklessView,
    /// Pin `i` holds the handle of an object mapped without the lock whose
    /// slot is `i` modulo [`PINS`], 0 if none.
    pins: [AtomicU64; PINS],
    /// The shard of the pool that shares it ([`Pool::share`]).
    shard: AtomicU32,
}

impl Shared {
    /// Nothing published, no pin.
    pub const fn new() -> Self {
        Shared {
            objects: LocklessView::new(),
            spans: LocklessView::new(),
            pins: [const { AtomicU64::new(0) }; PINS],
            shard: AtomicU32::new(0),
        }
    }

    /// The pin of the object in slot `slot`.
    fn pin(&self, slot: u32) -> &AtomicU64 {
        &self.pins[slot as usize % PINS]
    }

    /// How many objects are mapped without the lock now (a snapshot).
    pub fn pinned(&self) -> u64 {
        self.pins
            .iter()
            .filter(|p| p.load(Ordering::Relaxed) != 0)
            .count() as u64
    }
}

impl Default for Shared {
    fn default() -> Self {
        Self::new()
    }
}

/// A pool's pointer to its [`Shared`].
///
/// # Invariants
///
/// It points to the `Shared` given to [`Pool::share`], which outlives the
/// pool at its address.
struct SharedRef(NonNull<Shared>);

// SAFETY: A `Shared` is atomics only (`Sync`), so a pointer to it may go to
// another thread, as `&Shared` may.
unsafe impl Send for SharedRef {}

/// The spans' worth of free objects a class of `spans` spans keeps before
/// it is compacted: one, or two from [`WIDE_CLASS_SPANS`] spans on. Two
/// halve the moves (each a copy of up to a page) under churn, for 0.3 % of
/// the pages on a zswap-like trace; in a class of few spans the second
/// span's slack is a larger share (the *small* benchmark, 17 spans a
/// class, lost 8 % of its density with two).
fn slack_spans(spans: u32) -> u32 {
    if spans >= WIDE_CLASS_SPANS {
        2
    } else {
        1
    }
}

/// [`Class::trigger`] of a class of `spans` spans of `objects` objects:
/// `u32::MAX`, which its room (0) is below, for a class without spans.
/// A class of at most [`FEW_OBJECTS`] objects a span (objects of at least
/// a sixteenth of their span, each move a copy of up to a page) keeps at
/// least 1/16 of its spans' worth: on `make bench-zspan`'s *mixed*, 6 %
/// fewer instructions a step for 0.8 % more pages.
fn trigger(spans: u32, objects: u32) -> u32 {
    if spans == 0 {
        u32::MAX
    } else if objects <= FEW_OBJECTS {
        slack_spans(spans).max(spans / 16).wrapping_mul(objects)
    } else {
        slack_spans(spans).wrapping_mul(objects)
    }
}

/// The objects a span of a class holds at most for the class to keep 1/16
/// of its spans' worth of room ([`trigger`]).
pub const FEW_OBJECTS: u32 = 16;

/// The spans from which a class keeps two spans' worth of room (at most
/// 1/32 of its capacity).
pub const WIDE_CLASS_SPANS: u32 = 64;

/// The spans of a list [`Pool::evacuate`] looks at for the emptiest: its
/// first 4. More find a slightly emptier span (16 moved 1 % fewer objects
/// on the host's zswap-like trace, for the same pages) at a radix walk a
/// span, on every choice.
const EVACUATE_SCAN: usize = 4;

/// Units of compaction work a moved object costs (a record looked at costs
/// one): a copy of up to a page against a look at a 16-byte record.
pub const MOVE_COST: usize = 16;

/// The budget of [`Pool::after_free`]'s compaction: at most 4 objects
/// moved, or 64 records looked at, per free.
pub const COMPACT_BUDGET: usize = 4 * MOVE_COST;

impl<P: PageSource + Clone> Pool<P> {
    /// An empty pool that takes its pages from `source`. Allocates nothing.
    pub fn new(source: P) -> Self {
        Self::new_shard(source, 0)
    }

    /// An empty pool that is shard `shard` (taken modulo [`SHARDS`]) of a
    /// pool split into shards. Allocates nothing.
    pub fn new_shard(source: P, shard: usize) -> Self {
        let mut pool = MaybeUninit::<Self>::uninit();
        // SAFETY: `pool` is valid for writes of a pool, aligned;
        // `init_shard_at` writes every field, so it is initialized.
        unsafe {
            Self::init_shard_at(pool.as_mut_ptr(), source, shard);
            pool.assume_init()
        }
    }

    /// Writes an empty pool that takes its pages from `source` at `slot`,
    /// field by field: a pool is 3 KiB (its 99 classes' lists, 28 bytes
    /// each), which [`Pool::new`] returns by value, and a kernel caller
    /// that builds it in place keeps it off its stack. [`Pool::new`] is built on it, so
    /// that the host tests (under Miri too) see every field written.
    ///
    /// # Safety
    ///
    /// `slot` is valid for writes of a pool and aligned; what it held is
    /// overwritten, not dropped.
    pub unsafe fn init_at(slot: *mut Self, source: P) {
        // SAFETY: the caller's.
        unsafe { Self::init_shard_at(slot, source, 0) }
    }

    /// [`Pool::init_at`] for shard `shard` (taken modulo [`SHARDS`]), as
    /// [`Pool::new_shard`].
    ///
    /// # Safety
    ///
    /// As [`Pool::init_at`].
    pub unsafe fn init_shard_at(slot: *mut Self, source: P, shard: usize) {
        // SAFETY: The caller's: each field's place is inside `*slot`, valid
        // for writes and aligned, and each is written once, in full.
        unsafe {
            addr_of_mut!((*slot).objects).write(RadixTable::new(source.clone()));
            addr_of_mut!((*slot).spans).write(RadixTable::new(source));
            let classes = addr_of_mut!((*slot).classes).cast::<Class>();
            for i in 0..NCLASSES {
                classes.add(i).write(Class::EMPTY);
            }
            Maps::init_at(addr_of_mut!((*slot).maps));
            for counter in [
                addr_of_mut!((*slot).pages),
                addr_of_mut!((*slot).live),
                addr_of_mut!((*slot).span_count),
                addr_of_mut!((*slot).mapped),
                addr_of_mut!((*slot).moved),
                addr_of_mut!((*slot).spans_compacted),
                addr_of_mut!((*slot).bad_handles),
            ] {
                counter.write(0);
            }
            addr_of_mut!((*slot).spare).write(Spare::EMPTY);
            addr_of_mut!((*slot).rejected).write(Rejections::default());
            addr_of_mut!((*slot).freed_class).write(0);
            // The modulo makes the cast lossless.
            addr_of_mut!((*slot).shard).write((shard % SHARDS) as u32);
            addr_of_mut!((*slot).shared).write(None);
        }
    }

    /// Allocates an object of `size` bytes, `1..=MAX_SIZE`, with `flags`
    /// for the pages it needs (a span's, the tables'); returns its handle.
    ///
    /// # Errors
    ///
    /// [`AllocError::Invalid`] for 0, [`AllocError::TooBig`] above
    /// [`MAX_SIZE`], [`AllocError::NoMemory`] when a page is missing; the
    /// pool is unchanged (but for [`Stats`]' rejection counts).
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
        let result = self.alloc_unpublished(size, flags);
        self.publish();
        result
    }

    /// [`Pool::alloc_uncounted`] without [`Pool::publish`].
    fn alloc_unpublished(&mut self, size: usize, flags: P::Flags) -> Result<Handle, AllocError> {
        let class = match class_of(size) {
            Some(class) => class,
            None if size == 0 => return Err(AllocError::Invalid),
            None => return Err(AllocError::TooBig),
        };
        // `opened`: the spare's pages before a span opened for the object.
        let (span, opened) = match self.pick(class) {
            Some(span) => (span, None),
            None => {
                let spare = self.spare.len();
                (self.new_span(class, flags)?, Some(spare))
            }
        };
        // The object's record is made knowing its slot, which the span's
        // map then names: one walk of the object table.
        let Pool {
            objects,
            spans,
            classes,
            ..
        } = self;
        let mut taken = None;
        let inserted = objects.insert_record(flags, |slot, generation| {
            match take_index_in(spans, classes, span, slot) {
                Some(index) => {
                    taken = Some(index);
                    Object::live(span, index, generation, false)
                }
                // Refused: the slot stays free.
                None => Object::vacant(NO_SLOT, generation),
            }
        });
        let (slot, generation) = match (inserted, taken) {
            (Ok((slot, generation)), Some(_)) => (slot, generation),
            (result, _) => {
                // No slot (the table could not grow), or, not with the
                // invariants, no free index in a listed span that is not
                // full: a span opened for the object goes back.
                // Its pages go back where they came from: the pool is as
                // it was, its spare included.
                if let Some(spare) = opened {
                    self.free_span(span, spare);
                }
                return Err(result.err().unwrap_or(AllocError::NoMemory));
            }
        };
        self.live = self.live.wrapping_add(1);
        Ok(Handle::new(
            self.objects.tag(),
            generation,
            slot,
            self.shard,
        ))
    }

    /// The pages [`Pool::alloc`] of `size` bytes would take from the page
    /// source now: a new span's, if its class has no room, and what either
    /// table takes to grow when it has no free slot. A caller that gets its
    /// pages before it takes its lock (the kernel glue) gets this many, so
    /// that one more try succeeds.
    pub fn pages_wanted(&self, size: usize) -> usize {
        let Some(class) = class_of(size) else {
            return 0;
        };
        let span = match self.pick(class) {
            Some(_) => 0,
            None => {
                let (pages, objects) = CLASSES.get(class).map_or((0, 0), |g| (g.pages, g.objects));
                let pages = usize::from(pages)
                    + usize::from(!inline_map(objects) && !self.maps.has_room(class));
                pages.saturating_sub(self.spare.len()) + self.spans.pages_to_insert()
            }
        };
        self.objects.pages_to_insert() + span
    }

    /// Frees the object of `handle`.
    ///
    /// # Errors
    ///
    /// A [`HandleError`] for a handle that is not live in this pool or
    /// whose object is mapped; the pool is unchanged.
    pub fn free(&mut self, handle: Handle) -> Result<(), HandleError> {
        let result = self.free_unpublished(handle);
        self.publish();
        result
    }

    /// [`Pool::free`] without [`Pool::publish`].
    fn free_unpublished(&mut self, handle: Handle) -> Result<(), HandleError> {
        let (slot, generation) = match self.checked(handle) {
            Ok(found) => found,
            Err(why) => {
                self.bad_handles = self.bad_handles.wrapping_add(1);
                return Err(why);
            }
        };
        // The check and the vacating of the record: one walk of the table;
        // in a pool that shares, the record is marked BUSY first, and the
        // object stays if a lockless map pins it (*Lockless maps*).
        let why = Cell::new(HandleError::Stale);
        let check = |r: &Object| {
            if !r.is_live_at(generation) {
                return false;
            }
            if r.mapped() {
                why.set(HandleError::Mapped);
                return false;
            }
            true
        };
        let vacated = match self.shared.as_ref().map(|r| r.0) {
            None => self
                .objects
                .vacate_if(slot, |r| check(r).then(|| next_generation(r.generation()))),
            Some(shared) => self.objects.vacate_if_marked(
                slot,
                |r| check(r).then(|| r.with_busy(true)),
                |r| {
                    // The handle passed `checked` and names the record's
                    // generation: it is the one a pin would hold.
                    // SAFETY: `SharedRef`'s invariant: the `Shared`
                    // outlives the pool.
                    if pin_held(unsafe { shared.as_ref() }, slot, handle.to_raw()) {
                        why.set(HandleError::Mapped);
                        return None;
                    }
                    Some(next_generation(r.generation()))
                },
            ),
        };
        let Some(record) = vacated else {
            self.bad_handles = self.bad_handles.wrapping_add(1);
            return Err(why.get());
        };
        if let Some((class, _)) = self.put_index(record.span(), record.index()) {
            self.freed_class = class;
        }
        Ok(())
    }

    /// Maps the object of `handle` until [`Pool::unmap`]: where its bytes
    /// are. The object is not moved, nor its span freed, until then.
    ///
    /// # Errors
    ///
    /// A [`HandleError`] for a handle that is not live in this pool, or
    /// whose object is mapped already; the pool is unchanged.
    pub fn map(&mut self, handle: Handle) -> Result<Mapping, HandleError> {
        self.set_mapped::<true>(handle, true)
            .and_then(|m| m.ok_or(HandleError::Stale))
    }

    /// Ends a [`Pool::map`]; returns where the object is, for a caller that
    /// copies a buffer back (before it lets go of the pool: the object may
    /// move once unmapped).
    ///
    /// # Errors
    ///
    /// A [`HandleError`] for a handle that is not live in this pool, or
    /// whose object is not mapped; the pool is unchanged.
    pub fn unmap(&mut self, handle: Handle) -> Result<Mapping, HandleError> {
        self.set_mapped::<true>(handle, false)
            .and_then(|m| m.ok_or(HandleError::Stale))
    }

    /// [`Pool::unmap`] for a caller that needs no mapping back (the
    /// kernel glue copies a buffer back from the pieces it mapped): the
    /// same checks and changes, without locating the object. Never
    /// changes the pool's pages.
    ///
    /// # Errors
    ///
    /// As [`Pool::unmap`].
    pub fn release(&mut self, handle: Handle) -> Result<(), HandleError> {
        self.set_mapped::<false>(handle, false).map(drop)
    }

    /// Lets objects of the pool be mapped without its lock, through
    /// `shared` ([`Pool::map_lockless`]); publishes the pool's tables
    /// there. From now on the pool looks for pins before it moves or
    /// frees an object (*Lockless maps*).
    ///
    /// # Safety
    ///
    /// `shared` outlives the pool and stays at its address, and no other
    /// pool shares it.
    pub unsafe fn share(&mut self, shared: &Shared) {
        shared.shard.store(self.shard, Ordering::Relaxed);
        self.shared = Some(SharedRef(NonNull::from(shared)));
        self.publish();
    }

    /// Publishes where the tables are to the pool's [`Shared`], if it
    /// shares one: [`Pool::alloc`], [`Pool::free`], [`Pool::compact`],
    /// [`Pool::after_free`] and [`Pool::reset`], which may make or drop a
    /// table's root, call it before they return.
    #[inline]
    fn publish(&mut self) {
        // A table makes its root for its first record and drops it with
        // its last: after a call that leaves more than one object and more
        // than one span, neither root has changed (and the tags change
        // only in `reset`, which leaves none). `check` checks this. That
        // test is inlined into every call; the stores are not.
        if self.live > 1 && self.span_count > 1 {
            return;
        }
        self.publish_roots();
    }

    /// [`Pool::publish`] once a root may have changed: out of line, so
    /// that the calls that change none do not pay for it.
    #[inline(never)]
    fn publish_roots(&mut self) {
        if let Some(SharedRef(shared)) = self.shared.as_ref() {
            // SAFETY: The `Shared` outlives the pool at its address
            // (`SharedRef`'s invariant); it is atomics only, so shared.
            let shared = unsafe { shared.as_ref() };
            self.objects.publish(&shared.objects);
            self.spans.publish(&shared.spans);
        }
    }

    /// [`Pool::map`] without the pool's lock, in the pool that shares
    /// `shared` ([`Pool::share`]): pins the object of `handle` and returns
    /// where it is, until [`Pool::unmap_lockless`]; a pinned object is
    /// neither moved nor freed (*Lockless maps*). `None`, with no pin
    /// taken, if the handle is not a live object's there, if the object is
    /// mapped, if its pin is another object's, or if the pool's owner is
    /// moving or freeing it: the caller then maps under the lock
    /// ([`Pool::map`]), which decides (and counts a bad handle).
    ///
    /// # Safety
    ///
    /// `shared` is shared by a pool ([`Pool::share`]), which is not reset,
    /// destroyed or dropped during the call; and the caller is, across the
    /// call, a reader that the page source's
    /// [`PageSource::free_page_deferred`] waits for (in the kernel, in an
    /// RCU read-side critical section), so that the table nodes it walks,
    /// even ones dropped meanwhile, stay allocated.
    pub unsafe fn map_lockless(shared: &Shared, handle: Handle) -> Option<Mapping> {
        let f = handle.fields();
        if f.tag != shared.objects.tag()
            || f.spare != 0
            || f.index != shared.shard.load(Ordering::Relaxed)
            || !ObjectTable::<P>::is_slot(f.slot)
        {
            return None;
        }
        let pin = shared.pin(f.slot);
        // SeqCst, then the record's word (SeqCst): see `pin_held`.
        pin.compare_exchange(0, handle.to_raw(), Ordering::SeqCst, Ordering::Relaxed)
            .ok()?;
        // SAFETY: The caller's.
        let found = unsafe { Self::find_pinned(shared, f.slot, f.generation) };
        if found.is_none() {
            pin.store(0, Ordering::Release);
        }
        found
    }

    /// Where the object of `generation` in `slot` is, which the caller has
    /// pinned, found without the lock; `None` if it is no live object's
    /// slot, or if the object is mapped or BUSY.
    ///
    /// # Safety
    ///
    /// As [`Pool::map_lockless`].
    unsafe fn find_pinned(shared: &Shared, slot: u32, generation: u32) -> Option<Mapping> {
        // SAFETY: The caller's: the tables published in `shared` are live,
        // and the nodes they drop (their records are `LOCKLESS`) are freed
        // only after this reader is done.
        let at = unsafe { ObjectTable::<P>::lockless_record(&shared.objects, slot) }?;
        // SAFETY: As above: `at` is a record of a leaf that stays allocated
        // during the call.
        let word = unsafe { Object::load_word(at) };
        if !word.is_mappable_at(generation) {
            return None;
        }
        // The object is pinned and was neither BUSY nor mapped after the
        // pin: it stays where the word says, in a live span, until unpinned.
        // SAFETY: As above, for the span table.
        let at = unsafe { SpanTable::<P>::lockless_record(&shared.spans, word.span()) }?;
        // SAFETY: As above, for the head's fields that the location needs.
        let class = unsafe { SpanHead::load_class(at) }?;
        let geometry = CLASSES.get(usize::from(class))?;
        // SAFETY: As above.
        locate_with(geometry, word.index(), |i| unsafe {
            SpanHead::load_page(at, i)
        })
    }

    /// Ends a [`Pool::map_lockless`] of `handle`: unpins its object (after
    /// the caller's last use of its bytes: release). Returns whether
    /// `handle` held a pin in `shared`; if not, the object was mapped under
    /// the lock (or not at all) and the caller unmaps it there
    /// ([`Pool::unmap`]).
    pub fn unmap_lockless(shared: &Shared, handle: Handle) -> bool {
        let raw = handle.to_raw();
        raw != 0
            && shared
                .pin(handle.fields().slot)
                .compare_exchange(raw, 0, Ordering::Release, Ordering::Relaxed)
                .is_ok()
    }

    /// Number of pages holding objects, not counting the tables
    /// ([`Stats::table_pages`]).
    pub fn total_pages(&self) -> u64 {
        self.pages
    }

    /// Every page the pool holds: its spans', its spare and its tables'
    /// ([`Stats::pages`] plus [`Stats::spare_pages`] plus
    /// [`Stats::table_pages`]), without building the whole [`Stats`]:
    /// what a driver publishes after each change.
    pub fn all_pages(&self) -> u64 {
        self.pages
            .wrapping_add(self.spare.len() as u64)
            .wrapping_add(self.objects.node_pages())
            .wrapping_add(self.spans.node_pages())
            .wrapping_add(self.maps.pages())
    }

    /// The shard this pool is ([`Pool::new_shard`]; 0 for a lone pool).
    pub fn shard(&self) -> usize {
        self.shard as usize
    }

    /// Whether the pool holds no objects.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Bytes of the live objects' classes, from the classes' counts: a
    /// walk of [`NCLASSES`] classes when the counters are read, not a
    /// count kept by every `alloc`, `free` and move.
    fn class_bytes(&self) -> u64 {
        self.classes
            .iter()
            .zip(CLASSES.iter())
            .map(|(c, g)| {
                let capacity = u64::from(c.spans) * u64::from(g.objects);
                capacity.saturating_sub(u64::from(c.room)) * u64::from(g.size)
            })
            .sum()
    }

    /// The pool's counters.
    pub fn stats(&self) -> Stats {
        Stats {
            pages: self.pages,
            table_pages: self
                .objects
                .node_pages()
                .wrapping_add(self.spans.node_pages())
                .wrapping_add(self.maps.pages()),
            spare_pages: self.spare.len() as u64,
            objects: self.live,
            spans: self.span_count,
            mapped: self
                .mapped
                .wrapping_add(self.shared().map_or(0, Shared::pinned)),
            class_bytes: self.class_bytes(),
            moved: self.moved,
            spans_compacted: self.spans_compacted,
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

    /// Empties the pool. If objects are still live, their spans' pages are
    /// left allocated (callers may still use them) and the returned
    /// [`Leak`] says how many; everything else, the tables and the spare
    /// pages included, is freed.
    ///
    /// The pool can be used again, under a new tag: handles from before are
    /// [`HandleError::Foreign`]. The event counters of [`Stats`] are kept.
    pub fn reset(&mut self) -> Result<(), Leak> {
        self.release_maps();
        self.release_spare();
        self.objects.clear();
        self.spans.clear();
        // In place: the array is 2.7 KiB, too much for a kernel stack temporary.
        self.classes.iter_mut().for_each(|c| *c = Class::EMPTY);
        self.span_count = 0;
        self.mapped = 0;
        self.publish();
        Leak::check(
            core::mem::take(&mut self.pages),
            core::mem::take(&mut self.live),
        )
    }

    /// Compacts, doing at most `budget` units of work: marks, in each class
    /// whose spans have a span's worth of free objects (more in a wide
    /// class: [`trigger`]), its emptiest span as evacuating (it takes no
    /// new object), then scans the evacuating spans' objects through their
    /// maps (a unit for each record looked at) and moves each unmapped
    /// object into the fullest non-full span of its class ([`MOVE_COST`] units each: a copy of up
    /// to a page), until the budget is spent. A span that empties goes
    /// back to the page source; one left with mapped objects only stops
    /// evacuating. With a budget of 0 it only marks.
    pub fn compact(&mut self, budget: usize) -> Compaction {
        let mut done = Compaction::default();
        let mut spent = 0usize;
        for class in 0..NCLASSES {
            self.evacuate(class);
            spent = spent.saturating_add(self.compact_class(
                class,
                budget.saturating_sub(spent),
                &mut done,
            ));
        }
        self.publish();
        done
    }

    /// What a driver calls after each free, under its lock: compacts the
    /// class of the object freed last, if its spans have a span's worth of
    /// free objects (more in a wide class: [`trigger`]) and have kept it
    /// over a span's worth of frees since (see `compact_after_free`), with
    /// a budget of [`COMPACT_BUDGET`] (at most 4 objects moved). Returns
    /// what it did, `None` if the class needed nothing (or waits). A
    /// class is compacted only as frees make room in it, and
    /// an emptied span's objects are moved over at most a span's worth of
    /// frees: the work a free costs is bounded, and amortized over the
    /// frees that made the room.
    #[inline]
    pub fn after_free(&mut self) -> Option<Compaction> {
        // Most frees leave their class below its trigger: the check is
        // inlined into the caller, the compaction is not.
        let c = self.classes.get_mut(self.freed_class)?;
        if !c.compaction_due() {
            c.waited = 0;
            return None;
        }
        self.compact_after_free()
    }

    /// [`Pool::after_free`] once its class may need compaction: out of
    /// line, so that the frees that need none do not pay for its frame.
    ///
    /// A class past its trigger chooses a victim only after a span's
    /// worth of frees more (without its room going below the trigger
    /// meanwhile): when objects are freed in about the order they were
    /// stored (zswap's pages coming back in the order they went out), the
    /// oldest span empties by itself within that many frees, and moving
    /// its last objects, which are next to go, would be wasted.
    #[inline(never)]
    fn compact_after_free(&mut self) -> Option<Compaction> {
        let class = self.freed_class;
        let c = self.classes.get_mut(class)?;
        if c.heads[Group::Evacuating as usize] == NO_SLOT {
            let objects = CLASSES.get(class).map_or(0, |g| u32::from(g.objects));
            if c.waited < objects {
                c.waited = c.waited.wrapping_add(1);
                return None;
            }
            c.waited = 0;
        }
        if !self.evacuate(class) {
            return None;
        }
        let mut done = Compaction::default();
        self.compact_class(class, COMPACT_BUDGET, &mut done);
        self.publish();
        Some(done)
    }

    // ---- internals ----

    /// The slot and generation of `handle`, if it is one of this pool's
    /// and names a slot.
    fn checked(&self, handle: Handle) -> Result<(u32, u32), HandleError> {
        let f = handle.fields();
        if f.tag != self.objects.tag() {
            return Err(HandleError::Foreign);
        }
        if f.spare != 0 || f.index != self.shard || !ObjectTable::<P>::is_slot(f.slot) {
            return Err(HandleError::Malformed);
        }
        Ok((f.slot, f.generation))
    }

    /// The record of the live object in `slot`, if there is one.
    fn live_object(&self, slot: u32) -> Option<Object> {
        if !ObjectTable::<P>::is_slot(slot) {
            return None;
        }
        self.objects.get(slot).copied().filter(|r| r.is_live())
    }

    /// The span in `slot`, if it is one.
    fn span(&self, slot: u32) -> Option<&Span> {
        if !SpanTable::<P>::is_slot(slot) {
            return None;
        }
        self.spans.get(slot).filter(|s| s.page().is_some())
    }

    /// The body of the span in `slot`, in place, and its first page, if
    /// it is a span.
    fn span_mut(&mut self, slot: u32) -> Option<(NonNull<u8>, &mut SpanBody)> {
        span_in(&mut self.spans, slot)
    }

    /// Where the live object of `record` is.
    fn locate(&self, record: Object) -> Option<Mapping> {
        let span = self.span(record.span())?;
        let geometry = CLASSES.get(usize::from(span.class))?;
        locate(span.head(), geometry, record.index())
    }

    /// Sets (`map`) or clears (`unmap`) the mapped bit of the object of
    /// `handle`: one walk of the object table, and one of the span table
    /// if `LOCATE`, to return where the object is (`None` without). A bad
    /// handle, or one already in that state, is counted and rejected, the
    /// pool unchanged.
    fn set_mapped<const LOCATE: bool>(
        &mut self,
        handle: Handle,
        mapped: bool,
    ) -> Result<Option<Mapping>, HandleError> {
        let result = self.checked(handle).and_then(|(slot, generation)| {
            let mut why = HandleError::Stale;
            let old = self.objects.replace_if(slot, |r| {
                if !r.is_live_at(generation) {
                    return None;
                }
                if r.mapped() == mapped {
                    why = if mapped {
                        HandleError::Mapped
                    } else {
                        HandleError::NotMapped
                    };
                    return None;
                }
                Some(r.with_mapped(mapped))
            });
            let old = old.ok_or(why)?;
            // Mapped without the lock already? The store, a full fence,
            // then the pin's load (`pin_held`): of this load and a lockless
            // map's load of the record after its pin, one sees the other's
            // store. If the pin is held, the object stays unmapped here.
            if mapped
                && self
                    .shared()
                    .is_some_and(|s| pin_held(s, slot, handle.to_raw()))
            {
                self.objects
                    .replace_if(slot, |r| Some(r.with_mapped(false)));
                return Err(HandleError::Mapped);
            }
            if !LOCATE {
                return Ok(None);
            }
            match self.locate(old) {
                Some(m) => Ok(Some(m)),
                None => {
                    // Not with the invariants: the record is put back.
                    self.objects.replace_if(slot, |_| Some(old));
                    Err(HandleError::Stale)
                }
            }
        });
        match result {
            Ok(_) if mapped => self.mapped = self.mapped.wrapping_add(1),
            Ok(_) => self.mapped = self.mapped.wrapping_sub(1),
            Err(_) => self.bad_handles = self.bad_handles.wrapping_add(1),
        }
        result
    }

    /// The pool's [`Shared`], if it shares one ([`Pool::share`]).
    fn shared(&self) -> Option<&Shared> {
        // SAFETY: The `Shared` outlives the pool at its address
        // (`SharedRef`'s invariant); it is atomics only, so shared.
        self.shared.as_ref().map(|r| unsafe { r.0.as_ref() })
    }

    /// Marks the live object of `slot` BUSY (in a pool that shares) and
    /// returns whether a lockless map pins it, leaving it unmarked if so.
    fn pinned(&mut self, slot: u32) -> bool {
        if self.shared.is_none() {
            return false;
        }
        let Some(marked) = self
            .objects
            .replace_if(slot, |r| r.is_live().then(|| r.with_busy(true)))
        else {
            return false;
        };
        let handle = Handle::new(self.objects.tag(), marked.generation(), slot, self.shard);
        let pinned = self
            .shared()
            .is_some_and(|shared| pin_held(shared, slot, handle.to_raw()));
        if pinned {
            self.unbusy(slot);
        }
        pinned
    }

    /// Clears the BUSY mark of the live object of `slot`.
    fn unbusy(&mut self, slot: u32) {
        self.objects
            .replace_if(slot, |r| r.busy().then(|| r.with_busy(false)));
    }

    /// Moves objects out of the evacuating span of `class` (choosing one if
    /// there is room, [`Pool::evacuate`]) until `budget` units are spent;
    /// counts what it did in `done` and returns the units spent.
    fn compact_class(&mut self, class: usize, budget: usize, done: &mut Compaction) -> usize {
        let mut spent = 0usize;
        'victims: while spent < budget && self.evacuate(class) {
            let Some(from) = self
                .classes
                .get(class)
                .map(|c| c.heads[Group::Evacuating as usize])
            else {
                break;
            };
            // The span's objects, by index (through its map), each moved
            // unless mapped or pinned, in one scan. A copy of its body says
            // which are live: a move frees only the index it moved (an
            // evacuating span takes no object), so the copy stays right
            // for the indices after it until the span empties.
            let Some(body) = self.span(from).map(|s| **s) else {
                break;
            };
            let objects = CLASSES.get(class).map_or(0, |g| g.objects);
            let mut index = body.next_used(0, objects);
            while let Some(i) = index {
                if spent >= budget {
                    break 'victims;
                }
                // SAFETY: `i` is live in the span, below its class's
                // objects; its block, if any, is out (the pool's
                // invariant), and stays while the span does.
                let Some(slot) = (unsafe { body.slot_at(i) }) else {
                    break 'victims;
                };
                let Some(record) = self.live_object(slot) else {
                    break 'victims;
                };
                done.scanned = done.scanned.wrapping_add(1);
                spent = spent.wrapping_add(1);
                if !record.mapped() {
                    match self.move_object(slot, record) {
                        Move::Moved(freed) => {
                            done.moved = done.moved.wrapping_add(1);
                            spent = spent.wrapping_add(MOVE_COST);
                            if freed {
                                // The span is gone (its block with it): the
                                // next victim, if the room calls for one.
                                done.freed_spans = done.freed_spans.wrapping_add(1);
                                continue 'victims;
                            }
                        }
                        Move::Pinned => {}
                        Move::Stopped => return spent,
                    }
                }
                index = body.next_used(i.wrapping_add(1), objects);
            }
            // Scanned to the end and not emptied: only mapped or pinned
            // objects left, and the span stops evacuating.
            self.stop_evacuating(from);
            break;
        }
        spent
    }

    /// The evacuating span in `slot` takes objects again, on the list its
    /// fullness calls for.
    fn stop_evacuating(&mut self, slot: u32) {
        if let Some((_, s)) = self.span_mut(slot) {
            s.evacuating = 0;
        }
        self.relist(slot);
    }

    /// The first span of the fullest non-full list of `class`.
    fn pick(&self, class: usize) -> Option<u32> {
        let heads = &self.classes.get(class)?.heads;
        [Group::AlmostFull, Group::HalfFull, Group::AlmostEmpty]
            .iter()
            .map(|&g| heads[g as usize])
            .find(|&slot| slot != NO_SLOT)
    }

    /// A new, empty span of `class`, on its class's list.
    fn new_span(&mut self, class: usize, flags: P::Flags) -> Result<u32, AllocError> {
        let geometry = *CLASSES.get(class).ok_or(AllocError::Invalid)?;
        let npages = usize::from(geometry.pages).clamp(1, MAX_SPAN_PAGES);
        // The spare pages first (a freed span's: no call to the source,
        // and no page for the caller to get outside its lock), then the
        // source's. On a failure as many go back to the spare as came
        // from it (`keep` is what it had), the rest to the source. The
        // span's map first: a block of its class's, or a page for them.
        let spare_before = self.spare.len();
        let map = if inline_map(geometry.objects) {
            None
        } else {
            Some(self.map_block(class, flags)?)
        };
        let mut pages = [None; MAX_SPAN_PAGES];
        for i in 0..npages {
            let page = match self.spare.take() {
                Some(page) => Some(page),
                None => self.spans.source().alloc_page(flags),
            };
            match (page, pages.get_mut(i)) {
                (Some(page), Some(at)) => *at = Some(page),
                (page, _) => {
                    // SAFETY: These pages came from the spare or the source
                    // just above, hold nothing, and nothing refers to them.
                    unsafe {
                        if let Some(page) = page {
                            self.retire_page(page, spare_before);
                        }
                        self.retire_pages(&pages, spare_before);
                    }
                    if let Some(map) = map {
                        self.free_map(map, class, spare_before);
                    }
                    return Err(AllocError::NoMemory);
                }
            }
        }
        let inserted = match pages[0] {
            Some(first) => self.spans.insert_given_page(first, flags).ok(),
            None => None,
        };
        let Some((slot, _)) = inserted else {
            // The table could not grow: every page goes back where it
            // came from.
            // SAFETY: As above: the table did not take the first page.
            unsafe { self.retire_pages(&pages, spare_before) };
            if let Some(map) = map {
                self.free_map(map, class, spare_before);
            }
            return Err(AllocError::NoMemory);
        };
        // The head, stored whole (lockless readers read it).
        let more = pages.get(1..npages).unwrap_or(&[]);
        self.spans
            .replace_if(slot, |s| Some(s.with_pages(more, class as u8, map)));
        self.pages = self.pages.wrapping_add(u64::from(geometry.pages));
        self.span_count = self.span_count.wrapping_add(1);
        self.spare.widest = self.spare.widest.max(geometry.pages);
        if let Some(c) = self.classes.get_mut(class) {
            c.count_span(u32::from(geometry.objects), true);
        }
        self.relink(slot, Group::AlmostEmpty as u8);
        Ok(slot)
    }

    /// A map block of class `class` ([`Maps::alloc`]), on a page of the
    /// spare's or the source's if its pages have none free.
    fn map_block(&mut self, class: usize, flags: P::Flags) -> Result<MapBlock, AllocError> {
        if let Some(block) = self.maps.alloc(class) {
            return Ok(block);
        }
        let page = match self.spare.take() {
            Some(page) => page,
            None => self
                .spans
                .source()
                .alloc_page(flags)
                .ok_or(AllocError::NoMemory)?,
        };
        // SAFETY: The page came from the spare or the source just above:
        // it holds nothing, and nothing else refers to it.
        unsafe { self.maps.add_page(page, class) };
        self.maps.alloc(class).ok_or(AllocError::NoMemory)
    }

    /// Gives back `map`, a block of class `class`, and its page, if that
    /// empties, as [`Pool::retire_page`] with `keep`.
    fn free_map(&mut self, map: MapBlock, class: usize, keep: usize) {
        // SAFETY: The block came from `map_block` for `class` and is the
        // caller's to give back.
        if let Some(page) = unsafe { self.maps.free(map, class) } {
            // SAFETY: `Maps` gives back a page of ours that no block of it
            // is in any more.
            unsafe { self.retire_page(page, keep) };
        }
    }

    /// Gives `page` to the spare if it has fewer than `keep` pages (at
    /// most [`MAX_SPAN_PAGES`]), else back to the source.
    ///
    /// # Safety
    ///
    /// `page` came from the pool's source, is in none of its spans, its
    /// spare or its tables, and holds nothing anybody uses any more.
    unsafe fn retire_page(&mut self, page: NonNull<u8>, keep: usize) {
        if self.spare.len() < keep {
            if let Err(page) = self.spare.put(page) {
                // SAFETY: The caller's: the page is the source's, and
                // nothing refers to it.
                unsafe { self.spans.source().free_page(page) };
            }
        } else {
            // SAFETY: As above.
            unsafe { self.spans.source().free_page(page) };
        }
    }

    /// [`Pool::retire_page`] of each page of `pages`.
    ///
    /// # Safety
    ///
    /// As [`Pool::retire_page`], for each page, and no page twice.
    unsafe fn retire_pages(&mut self, pages: &[Option<NonNull<u8>>], keep: usize) {
        for page in pages.iter().flatten() {
            // SAFETY: The caller's.
            unsafe { self.retire_page(*page, keep) };
        }
    }

    /// Takes the first free index of the listed span in `slot` for the
    /// object in slot `object` ([`take_index_in`]) and counts it in the
    /// pool. Returns the index.
    fn take_index(&mut self, slot: u32, object: u32) -> Option<u32> {
        let index = take_index_in(&mut self.spans, &mut self.classes, slot, object)?;
        self.live = self.live.wrapping_add(1);
        Some(index)
    }

    /// Frees `index` of the span in `slot` (its map's entry is left as it
    /// is: nobody reads a free index's); frees the span if it empties, else
    /// moves it to the list it now belongs on. Returns the span's class
    /// and whether the span was freed.
    fn put_index(&mut self, slot: u32, index: u32) -> Option<(usize, bool)> {
        let (_, span) = span_in(&mut self.spans, slot)?;
        let class = usize::from(span.class);
        span.set_used(index, false);
        span.live = span.live.wrapping_sub(1);
        let live = span.live;
        let moved = if live != 0 {
            relist_body(&mut self.classes, slot, span)
        } else {
            Moved::NONE
        };
        self.live = self.live.wrapping_sub(1);
        if let Some(c) = self.classes.get_mut(class) {
            c.room = c.room.wrapping_add(1);
        }
        if live == 0 {
            // Its pages are kept as the spare, up to the pages of the
            // widest span the pool has opened, for the class whose
            // allocation next needs a span.
            self.free_span(slot, usize::from(self.spare.widest));
            Some((class, true))
        } else {
            self.fix_neighbours(slot, moved);
            Some((class, false))
        }
    }

    /// Frees the empty span in `slot`: its slot, and its pages, to the
    /// spare while it has fewer than `keep` ([`Pool::retire_page`]), the
    /// rest to the source; a pool left without spans keeps no spare page.
    fn free_span(&mut self, slot: u32, keep: usize) {
        let Some(span) = self.span(slot).copied() else {
            return;
        };
        self.unlink(slot);
        let Some(first) = self.spans.take_page(slot, next_generation(span.generation)) else {
            return;
        };
        self.pages = self.pages.wrapping_sub(u64::from(span.head().npages()));
        self.span_count = self.span_count.wrapping_sub(1);
        let objects = CLASSES
            .get(usize::from(span.class))
            .map_or(0, |g| g.objects);
        if let Some(c) = self.classes.get_mut(usize::from(span.class)) {
            c.count_span(u32::from(objects), false);
        }
        // A pool without spans keeps no spare page: it holds nothing.
        let keep = if self.span_count == 0 { 0 } else { keep };
        // SAFETY: The span's pages came from this source (type invariant);
        // the table has let go of the first, and the span, gone, held no
        // object any more.
        unsafe { self.retire_page(first, keep) };
        for page in span.head().more() {
            if let Some(page) = NonNull::new(*page) {
                // SAFETY: As above.
                unsafe { self.retire_page(page, keep) };
            }
        }
        if let Some(map) = span.map {
            self.free_map(map, usize::from(span.class), keep);
        }
        if self.span_count == 0 {
            self.release_spare();
        }
    }

    /// Gives back every span's map, and the maps' pages to the source: for
    /// [`Pool::reset`], which then forgets the spans (their pages, if they
    /// still have objects, are left allocated). A walk of the span table.
    fn release_maps(&mut self) {
        for slot in 0..self.spans.slot_limit() {
            let Some((_, span)) = span_in(&mut self.spans, slot) else {
                continue;
            };
            // Taken out of the record: given back once; its page, if it
            // empties, to the source (the spare keeps none: `keep` 0).
            if let (Some(map), class) = (span.map.take(), usize::from(span.class)) {
                self.free_map(map, class, 0);
            }
        }
    }

    /// Gives the spare's pages back to the source and forgets its widest
    /// span: for a pool left without spans.
    fn release_spare(&mut self) {
        while let Some(page) = self.spare.take() {
            // SAFETY: A spare page came from this source and holds nothing
            // (type invariant).
            unsafe { self.spans.source().free_page(page) };
        }
        self.spare.widest = 0;
    }

    /// Moves the span in `slot` to the list its fullness calls for (an
    /// evacuating span stays where it is).
    fn relist(&mut self, slot: u32) {
        let Some((_, s)) = span_in(&mut self.spans, slot) else {
            return;
        };
        let moved = relist_body(&mut self.classes, slot, s);
        self.fix_neighbours(slot, moved);
    }

    /// Moves the span in `slot` first on list `group` of its class, off the
    /// list it is on (if any, and not `group`).
    fn relink(&mut self, slot: u32, group: u8) {
        let Some((_, s)) = span_in(&mut self.spans, slot) else {
            return;
        };
        let moved = relink_body(&mut self.classes, slot, s, group);
        self.fix_neighbours(slot, moved);
    }

    /// Mends the links of the spans next to the span in `slot` on the lists
    /// it left and joined ([`fix_neighbours_in`]).
    fn fix_neighbours(&mut self, slot: u32, moved: Moved) {
        fix_neighbours_in(&mut self.spans, slot, moved);
    }

    /// Takes the span in `slot` off its list, if it is on one.
    fn unlink(&mut self, slot: u32) {
        let Some((_, s)) = self.span_mut(slot) else {
            return;
        };
        if s.list == UNLISTED {
            return;
        }
        let (prev, next, class, list) = (s.prev, s.next, s.class, s.list);
        s.list = UNLISTED;
        s.prev = NO_SLOT;
        s.next = NO_SLOT;
        if list == Group::Full as u8 {
            // Linked on no list.
            return;
        }
        if prev != NO_SLOT {
            if let Some((_, s)) = self.span_mut(prev) {
                s.next = next;
            }
        } else if let Some(head) = self
            .classes
            .get_mut(usize::from(class))
            .and_then(|c| c.heads.get_mut(usize::from(list)))
        {
            *head = next;
        }
        if let Some((_, s)) = self.span_mut(next) {
            s.prev = prev;
        }
    }

    /// If `class` has no evacuating span and its spans have a span's worth
    /// of free objects (more in a wide class: [`trigger`]), marks its emptiest span as
    /// evacuating (a span whose objects are all mapped stops again when
    /// compaction finds them so); a span at most a quarter free
    /// ([`Group::AlmostFull`]) only once the class has twice that room.
    /// Returns whether the class has an evacuating span.
    fn evacuate(&mut self, class: usize) -> bool {
        let Some(c) = self.classes.get(class) else {
            return false;
        };
        if !c.compaction_due() {
            return false;
        }
        if c.heads[Group::Evacuating as usize] != NO_SLOT {
            return true;
        }
        let heads = c.heads;
        // A span at most a quarter free is a victim only past twice the
        // room: until then, frees drain the emptier spans at no cost.
        let lists: &[Group] = if c.room >= c.trigger.saturating_mul(2) {
            &[Group::AlmostEmpty, Group::HalfFull, Group::AlmostFull]
        } else {
            &[Group::AlmostEmpty, Group::HalfFull]
        };
        // The emptiest of the first spans of the emptiest list, looking at
        // a bounded number of spans.
        let mut best: Option<(u32, u16)> = None;
        for &group in lists {
            let mut slot = heads[group as usize];
            let mut seen = 0;
            while slot != NO_SLOT && seen < EVACUATE_SCAN {
                let Some(span) = self.span(slot) else {
                    break;
                };
                if best.map_or(true, |(_, live)| span.live < live) {
                    best = Some((slot, span.live));
                }
                slot = span.next;
                seen += 1;
            }
            if best.is_some() {
                break;
            }
        }
        let Some((slot, _)) = best else {
            return false;
        };
        if let Some((_, s)) = self.span_mut(slot) {
            s.evacuating = 1;
        }
        self.relink(slot, Group::Evacuating as u8);
        true
    }

    /// Moves the unmapped live object in `slot` (its record `record`), of an
    /// evacuating span, into the fullest non-full span of its class.
    /// Returns whether its old span was freed, or `None` if the class has
    /// no room (the span then stops evacuating).
    fn move_object(&mut self, slot: u32, record: Object) -> Move {
        let from = record.span();
        let Some(class) = self.span(from).map(|s| usize::from(s.class)) else {
            return Move::Stopped;
        };
        let Some(to) = self.pick(class) else {
            // No room: the span stops evacuating.
            self.stop_evacuating(from);
            return Move::Stopped;
        };
        let Some(source) = self.locate(record) else {
            return Move::Stopped;
        };
        if self.pinned(slot) {
            return Move::Pinned;
        }
        // BUSY from here (in a pool that shares): a lockless map of the
        // object maps under the lock, after the move.
        let Some(index) = self.take_index(to, slot) else {
            self.unbusy(slot);
            return Move::Stopped;
        };
        let Some(destination) = self.locate(Object::live(to, index, 0, false)) else {
            self.put_index(to, index);
            self.unbusy(slot);
            return Move::Stopped;
        };
        copy(&source, &destination);
        // At its new place (which the new span's map names); no longer
        // BUSY.
        self.objects
            .replace_if(slot, |r| r.is_live().then(|| r.moved_to(to, index)));
        self.moved = self.moved.wrapping_add(1);
        let Some((_, freed)) = self.put_index(from, record.index()) else {
            return Move::Stopped;
        };
        if freed {
            self.spans_compacted = self.spans_compacted.wrapping_add(1);
        }
        Move::Moved(freed)
    }
}

/// What [`Pool::move_object`] did.
enum Move {
    /// Moved the object; `true` if its span emptied and was freed.
    Moved(bool),
    /// Left the object, which a lockless map pins.
    Pinned,
    /// Moved nothing, and compaction of the class stops for now.
    Stopped,
}

impl<P: PageSource + Clone> Drop for Pool<P> {
    /// Like [`Pool::destroy`], without the report: live objects' pages are
    /// leaked silently.
    fn drop(&mut self) {
        let _ = self.reset();
    }
}

/// Whether a lockless map pins the live object of `slot` of the pool that
/// shares `shared`, whose handle is `handle` and whose record the owner
/// has just stored BUSY (*Lockless maps*): the owner then leaves the
/// object where it is.
#[inline]
fn pin_held(shared: &Shared, slot: u32, handle: u64) -> bool {
    // The store of the BUSY record, this fence, the load of the pin; a
    // lockless map's pin (a SeqCst exchange) then its load of the record
    // (SeqCst): one of the two loads sees the other's store. Acquire: a
    // pin released meanwhile (`unmap_lockless`) was the last use of the
    // object's bytes, which a move then copies.
    fence(Ordering::SeqCst);
    shared.pin(slot).load(Ordering::Acquire) == handle
}

/// The body of the span in `slot` of `spans`, in place, and its first
/// page, if it is a span: a function of the table alone, so that a caller
/// may change the pool's other fields while it holds the body.
fn span_in<P: PageSource>(
    spans: &mut SpanTable<P>,
    slot: u32,
) -> Option<(NonNull<u8>, &mut SpanBody)> {
    match spans.page_and_body_mut(slot)? {
        (Some(first), body) => Some((first, body)),
        (None, _) => None,
    }
}

/// Takes the first free index of the listed span in `slot` of `spans` for
/// the object in slot `object`, which the span's map then names; counts it
/// live in the span and its class (`classes`) and moves the span to the
/// list it now belongs on. A function of the span table and the classes
/// alone, so that [`Pool::alloc`] calls it while the object table makes the
/// object's record. The pool's own counters are the caller's.
fn take_index_in<P: PageSource>(
    spans: &mut SpanTable<P>,
    classes: &mut [Class; NCLASSES],
    slot: u32,
    object: u32,
) -> Option<u32> {
    let (_, span) = span_in(spans, slot)?;
    let class = usize::from(span.class);
    let geometry = CLASSES.get(class)?;
    let index = span.first_free(geometry.objects)?;
    // SAFETY: `index` is below the class's objects; the span's block, if
    // any, is out (the pool's invariant).
    unsafe { span.set_slot_at(index, object) };
    span.set_used(index, true);
    span.live = span.live.wrapping_add(1);
    let moved = relist_body(classes, slot, span);
    if let Some(c) = classes.get_mut(class) {
        c.room = c.room.wrapping_sub(1);
    }
    fix_neighbours_in(spans, slot, moved);
    Some(index)
}

/// Mends the links of the spans of `spans` next to the span in `slot` on
/// the lists it left and joined ([`relink_body`]).
fn fix_neighbours_in<P: PageSource>(spans: &mut SpanTable<P>, slot: u32, moved: Moved) {
    if moved.prev != NO_SLOT {
        if let Some((_, s)) = span_in(spans, moved.prev) {
            s.next = moved.next;
        }
    }
    if moved.next != NO_SLOT {
        if let Some((_, s)) = span_in(spans, moved.next) {
            s.prev = moved.prev;
        }
    }
    if moved.new_next != NO_SLOT {
        if let Some((_, s)) = span_in(spans, moved.new_next) {
            s.prev = slot;
        }
    }
}

/// The spans whose links follow a span that changed lists: its old
/// neighbours and the first span of its new list ([`NO_SLOT`] for none).
#[derive(Clone, Copy)]
struct Moved {
    prev: u32,
    next: u32,
    new_next: u32,
}

impl Moved {
    const NONE: Moved = Moved {
        prev: NO_SLOT,
        next: NO_SLOT,
        new_next: NO_SLOT,
    };
}

/// [`relink_body`] to the list the fullness of the span in `slot` (its body
/// `s`) calls for; an evacuating span stays where it is.
/// Inlined: most takes and frees leave the span on its list, which costs a
/// look at its counts and no call.
#[inline]
fn relist_body(classes: &mut [Class; NCLASSES], slot: u32, s: &mut SpanBody) -> Moved {
    if s.evacuating != 0 {
        return Moved::NONE;
    }
    let objects = CLASSES.get(usize::from(s.class)).map_or(0, |g| g.objects);
    let group = Group::of(s.live, objects) as u8;
    if group == s.list {
        return Moved::NONE;
    }
    relink_body(classes, slot, s, group)
}

/// Puts the span in `slot`, whose body is `s`, first on list `group` of its
/// class, off the list it is on (if any, and not `group`): the class's
/// heads and the span's own links. Returns the spans whose links follow
/// ([`Pool::fix_neighbours`]).
fn relink_body(classes: &mut [Class; NCLASSES], slot: u32, s: &mut SpanBody, group: u8) -> Moved {
    let list = s.list;
    if list == group {
        return Moved::NONE;
    }
    let Some(heads) = classes.get_mut(usize::from(s.class)).map(|c| &mut c.heads) else {
        return Moved::NONE;
    };
    // A full span is linked on no list ([`Group::Full`]).
    let new_next = if group == Group::Full as u8 {
        NO_SLOT
    } else {
        let Some(h) = heads.get_mut(usize::from(group)) else {
            return Moved::NONE;
        };
        core::mem::replace(h, slot)
    };
    let linked = list != UNLISTED && list != Group::Full as u8;
    let (prev, next) = if linked {
        (s.prev, s.next)
    } else {
        (NO_SLOT, NO_SLOT)
    };
    if linked && prev == NO_SLOT {
        if let Some(head) = heads.get_mut(usize::from(list)) {
            *head = next;
        }
    }
    s.list = group;
    s.prev = NO_SLOT;
    s.next = new_next;
    Moved {
        prev,
        next,
        new_next,
    }
}

/// Where object `index` of the span whose first page is `first` and whose
/// body is `span` (of class `geometry`) is.
fn locate(span: &SpanHead, geometry: &Geometry, index: u32) -> Option<Mapping> {
    locate_with(geometry, index, |i| span.page_at(i))
}

/// Where object `index` of a span of class `geometry` is, whose page `i`
/// is `page_at(i)` (`None` past its pages).
#[inline]
fn locate_with(
    geometry: &Geometry,
    index: u32,
    page_at: impl Fn(usize) -> Option<NonNull<u8>>,
) -> Option<Mapping> {
    if index >= u32::from(geometry.objects) {
        return None;
    }
    let size = usize::from(geometry.size);
    let offset = (index as usize).checked_mul(size)?;
    let (page, within) = (offset / PAGE_SIZE, offset % PAGE_SIZE);
    let here = page_at(page)?;
    // SAFETY: `within < PAGE_SIZE`: inside the page, hence not null.
    let start = unsafe { NonNull::new_unchecked(here.as_ptr().add(within)) };
    let head = PAGE_SIZE - within;
    if size <= head {
        return Some(Mapping {
            pieces: [(start, size), (start, 0)],
            count: 1,
        });
    }
    let next = page_at(page.checked_add(1)?)?;
    Some(Mapping {
        pieces: [(start, head), (next, size - head)],
        count: 2,
    })
}

/// Copies an object from `source` to `destination`, two mappings of the
/// same length in different places.
fn copy(source: &Mapping, destination: &Mapping) {
    let mut src = source.pieces().iter().copied();
    let mut dst = destination.pieces().iter().copied();
    let (mut s, mut d) = (src.next(), dst.next());
    while let (Some((sp, sl)), Some((dp, dl))) = (s, d) {
        let n = sl.min(dl);
        // SAFETY: Both pieces are inside pages of live spans of the pool,
        // `n` bytes each, and belong to two different objects (the source
        // and the destination index), so they do not overlap.
        unsafe { core::ptr::copy_nonoverlapping(sp.as_ptr(), dp.as_ptr(), n) };
        // SAFETY: `n <= sl` and `n <= dl`: still inside (or one past) the
        // pieces' pages.
        let (sp2, dp2) = unsafe { (sp.as_ptr().add(n), dp.as_ptr().add(n)) };
        s = if n < sl {
            NonNull::new(sp2).map(|p| (p, sl - n))
        } else {
            src.next()
        };
        d = if n < dl {
            NonNull::new(dp2).map(|p| (p, dl - n))
        } else {
            dst.next()
        };
    }
}
