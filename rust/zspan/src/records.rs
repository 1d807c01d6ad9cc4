// SPDX-License-Identifier: GPL-2.0

//! The records of the pool's two tables: a span's ([`Span`], in the span
//! table) and an object's ([`Object`], in the object table, which the
//! handles name); see *Handles* and *Spans* in the [parent module](super).

use core::mem::size_of;
use core::ptr::NonNull;

use super::classes::{MAX_SPAN_OBJECTS, MAX_SPAN_PAGES};
use crate::zalloc::{self, slot_bits, HasBody, Record, NO_SLOT};

/// Bits of an object slot: 26, with 256 records per leaf.
pub(super) const OBJECT_SLOT_BITS: u32 = slot_bits(size_of::<Object>());
/// Bits of a handle's shard (see *Shards* in the [parent module](super)).
pub(super) const SHARD_BITS: u32 = 3;
/// Bits of a handle's generation: the rest of the handle, 19.
pub(super) const GENERATION_BITS: u32 = u64::BITS - u16::BITS - OBJECT_SLOT_BITS - SHARD_BITS;
/// Bits of a span slot: 23, with 32 records per leaf.
pub(super) const SPAN_SLOT_BITS: u32 = slot_bits(size_of::<Span>());
/// Bits of an object's index in its span.
const INDEX_BITS: u32 = MAX_SPAN_OBJECTS.trailing_zeros();

/// The name of an object in a [`Pool`](super::Pool): zpool's `unsigned long`
/// handle. Any value may be passed back to the pool, which checks it.
///
/// 3 bits of shard, 26 of object slot, 19 of generation and 16 of pool
/// tag: the handle names the object's record, which says where the object
/// is, so that compaction moves an object by rewriting its record. (The
/// shard is zalloc's handle's index field, which zspan has no other use
/// for.)
pub type Handle = zalloc::Handle<SHARD_BITS, OBJECT_SLOT_BITS, GENERATION_BITS>;

// The fields fill the handle: no spare bits to check.
const _: () = assert!(SHARD_BITS + OBJECT_SLOT_BITS + GENERATION_BITS + u16::BITS == u64::BITS);
const _: () = assert!(MAX_SPAN_OBJECTS.is_power_of_two());

/// The generation that follows `generation` in a slot.
pub(super) const fn next_generation(generation: u32) -> u32 {
    Handle::next_generation(generation)
}

/// A record of the object table: where a live object is (its span's slot
/// and its index there), whether it is mapped, its slot's generation, and
/// its links on its span's list of objects (the span's reverse map); or,
/// for a free slot, the next free slot and the generation.
///
/// `head` has [`FREE`] set in a free slot's record, [`LIVE`] in a live
/// object's (so that no record is 0), and the generation above them. The
/// rest is the record's [`ObjectBody`], which the table lends in place
/// ([`HasBody`]): the pool checks a handle and changes its object with one
/// walk of the table. A free record keeps the next free slot in its body's
/// `next`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub(super) struct Object {
    head: u32,
    body: ObjectBody,
}

/// What an [`Object`] record has besides its state and generation: where
/// the object is, whether it is mapped, and its links.
///
/// `place` has the index in its low [`INDEX_BITS`], the span slot above
/// and *mapped* in bit 31. `prev` and `next` are the previous and next
/// objects of the span's list ([`NO_SLOT`] at the ends).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub(super) struct ObjectBody {
    place: u32,
    /// The previous object on its span's list, [`NO_SLOT`] for the first.
    pub(super) prev: u32,
    /// The next object on its span's list, [`NO_SLOT`] for the last (a free
    /// record's: the next free slot).
    pub(super) next: u32,
}

const FREE: u32 = 1;
const LIVE: u32 = 2;
const GENERATION_SHIFT: u32 = 2;
const MAPPED: u32 = 1 << 31;
const SPAN_SHIFT: u32 = INDEX_BITS;

// The generation fits above the two state bits; the index, the span slot
// and the mapped bit fill `place`.
const _: () = assert!(GENERATION_SHIFT + GENERATION_BITS <= u32::BITS);
const _: () = assert!(INDEX_BITS + SPAN_SLOT_BITS < u32::BITS);

const fn mask(bits: u32) -> u32 {
    (1 << bits) - 1
}

impl ObjectBody {
    /// The place of object `index` of the span in `span`, not mapped.
    fn place(span: u32, index: u32) -> u32 {
        (index & mask(INDEX_BITS)) | (span & mask(SPAN_SLOT_BITS)) << SPAN_SHIFT
    }

    /// The span slot of the object.
    pub(super) fn span(&self) -> u32 {
        (self.place >> SPAN_SHIFT) & mask(SPAN_SLOT_BITS)
    }

    /// The object's index in its span.
    pub(super) fn index(&self) -> u32 {
        self.place & mask(INDEX_BITS)
    }

    /// Whether the object is mapped.
    pub(super) fn mapped(&self) -> bool {
        self.place & MAPPED != 0
    }

    /// Sets or clears the mapped bit.
    pub(super) fn set_mapped(&mut self, mapped: bool) {
        if mapped {
            self.place |= MAPPED;
        } else {
            self.place &= !MAPPED;
        }
    }

    /// Moves the object to index `index` of the span in `span`, not
    /// mapped.
    pub(super) fn set_place(&mut self, span: u32, index: u32) {
        self.place = Self::place(span, index);
    }
}

impl Object {
    /// A live object's record, on no list.
    pub(super) fn live(span: u32, index: u32, generation: u32, mapped: bool) -> Self {
        let mut body = ObjectBody {
            place: ObjectBody::place(span, index),
            prev: NO_SLOT,
            next: NO_SLOT,
        };
        body.set_mapped(mapped);
        Object {
            head: LIVE | (generation & mask(GENERATION_BITS)) << GENERATION_SHIFT,
            body,
        }
    }

    /// The record with `next` after it on its span's list of objects.
    pub(super) fn followed_by(mut self, next: u32) -> Self {
        self.body.next = next;
        self
    }

    /// The span slot of a live object.
    pub(super) fn span(self) -> u32 {
        self.body.span()
    }

    /// The index in its span of a live object.
    pub(super) fn index(self) -> u32 {
        self.body.index()
    }

    /// The generation of the slot.
    pub(super) fn generation(self) -> u32 {
        (self.head >> GENERATION_SHIFT) & mask(GENERATION_BITS)
    }

    /// Whether a live object is mapped.
    pub(super) fn mapped(self) -> bool {
        self.body.mapped()
    }

    /// Whether this is a live object's record.
    pub(super) fn is_live(self) -> bool {
        self.head & (FREE | LIVE) == LIVE
    }

    /// Whether this is the record of the live object of generation
    /// `generation`.
    pub(super) fn is_live_at(&self, generation: u32) -> bool {
        self.head & (FREE | LIVE) == LIVE && self.generation() == generation
    }

    /// The previous object on its span's list, [`NO_SLOT`] for the first.
    pub(super) fn prev(self) -> u32 {
        self.body.prev
    }

    /// The next object on its span's list, [`NO_SLOT`] for the last.
    pub(super) fn next(self) -> u32 {
        self.body.next
    }
}

impl Record for Object {
    fn occupied(_page: NonNull<u8>, generation: u32) -> Self {
        // The object table holds no pages (`insert_record` only); a record
        // made this way names nothing.
        Object::live(NO_SLOT, 0, generation, false)
    }

    fn vacant(next: u32, generation: u32) -> Self {
        Object {
            head: FREE | (generation & mask(GENERATION_BITS)) << GENERATION_SHIFT,
            body: ObjectBody {
                place: 0,
                prev: NO_SLOT,
                next,
            },
        }
    }

    fn page(&self) -> Option<NonNull<u8>> {
        None
    }

    fn vacancy(&self) -> Option<(u32, u32)> {
        (self.head & FREE != 0).then_some((self.body.next, self.generation()))
    }
}

// SAFETY: `page` is always `None`, and `vacancy` of a record reads `head`
// to tell a free slot's (the body only for a free slot's next): no change
// to the body of an occupied record changes what either returns.
unsafe impl HasBody for Object {
    type Body = ObjectBody;

    fn body_mut(&mut self) -> &mut ObjectBody {
        &mut self.body
    }
}

/// Words of a span's bitmap of live objects.
pub(super) const BITMAP_WORDS: usize = MAX_SPAN_OBJECTS / u64::BITS as usize;

/// A record of the span table: a span's first page (the slot's page, which
/// the table knows) and its [`SpanBody`], which the table lends in place
/// ([`HasBody`]); or a free slot's. Reads of the body's fields go through
/// `Deref`; changes through [`crate::zalloc::RadixTable::page_and_body_mut`] only,
/// which cannot reach `first` or `state`.
#[derive(Clone, Copy)]
#[repr(C)]
pub(super) struct Span {
    /// The span's first page; null in a free slot's record.
    first: *mut u8,
    /// [`SPAN_FREE`] for a free slot's record, [`SPAN_LIVE`] for a span's.
    state: u8,
    _pad: [u8; 7],
    body: SpanBody,
}

/// What a [`Span`] record has besides its first page and state.
#[derive(Clone, Copy)]
#[repr(C)]
pub(super) struct SpanBody {
    /// The span's pages after the first: `more[..npages - 1]` non-null, the
    /// others null.
    pub(super) more: [*mut u8; MAX_SPAN_PAGES - 1],
    /// Bit `i` is set when object `i` is live.
    pub(super) used: [u64; BITMAP_WORDS],
    /// The slot's generation counter.
    pub(super) generation: u32,
    /// The next span on its list (a free slot's: the next free slot).
    pub(super) next: u32,
    /// The previous span on its list.
    pub(super) prev: u32,
    /// The first object slot of the span's list of its live objects
    /// ([`NO_SLOT`] if it has none).
    pub(super) head: u32,
    /// Live objects.
    pub(super) live: u16,
    /// The span's class.
    pub(super) class: u8,
    /// The list the span is on (see [`super::Group`]), or
    /// [`super::UNLISTED`].
    pub(super) list: u8,
    /// Pages of the span.
    pub(super) npages: u8,
    /// Set while compaction empties the span: it takes no new object.
    pub(super) evacuating: u8,
    _pad: [u8; 18],
}

/// [`Span::state`] of a free slot's record.
const SPAN_FREE: u8 = 0;
/// [`Span::state`] of a span's record.
const SPAN_LIVE: u8 = 1;

const _: () = assert!(size_of::<Span>() == 128);
const _: () = assert!(size_of::<Object>() == 16);

// SAFETY: A span's record names pages of the pool, which may move to
// another thread with the pool.
unsafe impl Send for Span {}

impl core::ops::Deref for Span {
    type Target = SpanBody;

    fn deref(&self) -> &SpanBody {
        &self.body
    }
}

// SAFETY: `page` reads `first` and `state` only, and `vacancy` reads the
// body only for a free slot's record (`state` is `SPAN_FREE`); neither
// field is in the body, so no change to the body of an occupied record
// changes what either returns.
unsafe impl HasBody for Span {
    type Body = SpanBody;

    fn body_mut(&mut self) -> &mut SpanBody {
        &mut self.body
    }
}

impl Span {
    fn empty(state: u8, generation: u32, next: u32) -> Self {
        Span {
            first: core::ptr::null_mut(),
            state,
            _pad: [0; 7],
            body: SpanBody {
                more: [core::ptr::null_mut(); MAX_SPAN_PAGES - 1],
                used: [0; BITMAP_WORDS],
                generation,
                next,
                prev: NO_SLOT,
                head: NO_SLOT,
                live: 0,
                class: 0,
                list: super::UNLISTED,
                npages: 0,
                evacuating: 0,
                _pad: [0; 18],
            },
        }
    }

    /// Page `i` of the span, `None` past its pages.
    pub(super) fn page_at(&self, i: usize) -> Option<NonNull<u8>> {
        self.body.page_at(NonNull::new(self.first)?, i)
    }
}

impl SpanBody {
    /// Page `i` of the span whose first page is `first`, `None` past its
    /// pages.
    pub(super) fn page_at(&self, first: NonNull<u8>, i: usize) -> Option<NonNull<u8>> {
        match i.checked_sub(1) {
            None => Some(first),
            Some(i) if i + 1 < usize::from(self.npages) => NonNull::new(*self.more.get(i)?),
            Some(_) => None,
        }
    }

    /// Whether object `index` is live.
    pub(super) fn is_used(&self, index: u32) -> bool {
        let (word, bit) = (index as usize / 64, index % 64);
        self.used.get(word).is_some_and(|w| w & (1 << bit) != 0)
    }

    /// Marks object `index` live (`true`) or free.
    pub(super) fn set_used(&mut self, index: u32, live: bool) {
        let (word, bit) = (index as usize / 64, index % 64);
        if let Some(w) = self.used.get_mut(word) {
            if live {
                *w |= 1 << bit;
            } else {
                *w &= !(1 << bit);
            }
        }
    }

    /// The first free object below `objects`, if any.
    pub(super) fn first_free(&self, objects: u32) -> Option<u32> {
        for (i, w) in self.used.iter().enumerate() {
            if *w != u64::MAX {
                let index = i as u32 * 64 + w.trailing_ones();
                return (index < objects).then_some(index);
            }
        }
        None
    }
}

impl Record for Span {
    fn occupied(page: NonNull<u8>, generation: u32) -> Self {
        let mut span = Span::empty(SPAN_LIVE, generation, NO_SLOT);
        span.first = page.as_ptr();
        span.body.npages = 1;
        span
    }

    fn vacant(next: u32, generation: u32) -> Self {
        Span::empty(SPAN_FREE, generation, next)
    }

    fn page(&self) -> Option<NonNull<u8>> {
        match self.state {
            SPAN_LIVE => NonNull::new(self.first),
            _ => None,
        }
    }

    fn vacancy(&self) -> Option<(u32, u32)> {
        (self.state == SPAN_FREE).then_some((self.body.next, self.body.generation))
    }
}
