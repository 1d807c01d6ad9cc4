// SPDX-License-Identifier: GPL-2.0

//! The records of the pool's two tables: a span's ([`Span`], in the span
//! table) and an object's ([`Object`], in the object table, which the
//! handles name); see *Handles* and *Spans* in the [parent module](super).

use core::mem::size_of;
use core::ptr::{addr_of_mut, NonNull};
use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicU8, Ordering};

use super::classes::{MAX_SPAN_OBJECTS, MAX_SPAN_PAGES};
use super::maps::MapBlock;
use crate::zalloc::{self, slot_bits, HasBody, Record, NO_SLOT};

/// Bits of an object slot: 27, with 512 records per leaf.
pub(super) const OBJECT_SLOT_BITS: u32 = slot_bits(size_of::<Object>());
/// Bits of a handle's shard (see *Shards* in the [parent module](super)).
pub(super) const SHARD_BITS: u32 = 3;
/// Bits of a handle's generation: the rest of the handle, 18.
pub(super) const GENERATION_BITS: u32 = u64::BITS - u16::BITS - OBJECT_SLOT_BITS - SHARD_BITS;
/// Bits of a span slot: 23, with 32 records per leaf.
pub(super) const SPAN_SLOT_BITS: u32 = slot_bits(size_of::<Span>());
/// Bits of an object's index in its span.
const INDEX_BITS: u32 = MAX_SPAN_OBJECTS.trailing_zeros();

/// The name of an object in a [`Pool`](super::Pool): zpool's `unsigned long`
/// handle. Any value may be passed back to the pool, which checks it.
///
/// 3 bits of shard, 27 of object slot, 18 of generation and 16 of pool
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

/// A record of the object table, one atomic word: where a live object is
/// (its span's slot and its index there), whether it is mapped, and its
/// slot's generation; or, for a free slot, the next free slot and the
/// generation. Which object is at each index of a span, the span's
/// reverse map says ([`super::maps`]).
///
/// `word` has the state and the generation in its low half ([`FREE`] set
/// in a free slot's record, [`LIVE`] in a live object's, so that no record
/// is 0; [`BUSY`] while the pool's owner decides whether to move or free a
/// pinned object, see *Lockless maps* in the [parent module](super)) and
/// the *place* in its high half: the index in its low [`INDEX_BITS`], the
/// span slot above and *mapped* in bit 31; a free record's high half is
/// the next free slot. Readers without the lock ([`Object::load_word`])
/// read the word, so the owner stores it atomically ([`Record::store`],
/// [`crate::zalloc::RadixTable::replace_if`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub(super) struct Object {
    word: u64,
}

const FREE: u32 = 1;
const LIVE: u32 = 2;
/// Set in a live object's word while the owner, holding the lock, looks
/// for a pin of it before it moves or frees it.
const BUSY: u32 = 1 << 31;
const GENERATION_SHIFT: u32 = 2;
const MAPPED: u32 = 1 << 31;
const SPAN_SHIFT: u32 = INDEX_BITS;
const PLACE_SHIFT: u32 = u32::BITS;

// The generation fits between the two state bits and BUSY; the index, the
// span slot and the mapped bit fill the place.
const _: () = assert!(GENERATION_SHIFT + GENERATION_BITS < u32::BITS);
const _: () = assert!(INDEX_BITS + SPAN_SLOT_BITS < u32::BITS);

const fn mask(bits: u32) -> u32 {
    (1 << bits) - 1
}

/// The place of object `index` of the span in `span`, not mapped.
fn place(span: u32, index: u32) -> u32 {
    (index & mask(INDEX_BITS)) | (span & mask(SPAN_SLOT_BITS)) << SPAN_SHIFT
}

/// A live object's word, as read without the lock ([`Object::load_word`]):
/// what a lockless map checks and where it finds the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Word(u64);

impl Word {
    fn head(self) -> u32 {
        self.0 as u32
    }

    fn place(self) -> u32 {
        (self.0 >> PLACE_SHIFT) as u32
    }

    /// Whether this is the word of the live object of generation
    /// `generation`, neither mapped under the lock nor [`BUSY`]: one a
    /// lockless map may take.
    pub(super) fn is_mappable_at(self, generation: u32) -> bool {
        self.head() & (FREE | LIVE | BUSY) == LIVE
            && (self.head() >> GENERATION_SHIFT) & mask(GENERATION_BITS) == generation
            && self.place() & MAPPED == 0
    }

    /// The span slot of a live object.
    pub(super) fn span(self) -> u32 {
        (self.place() >> SPAN_SHIFT) & mask(SPAN_SLOT_BITS)
    }

    /// The index in its span of a live object.
    pub(super) fn index(self) -> u32 {
        self.place() & mask(INDEX_BITS)
    }
}

impl Object {
    fn from_parts(head: u32, place: u32) -> Self {
        Object {
            word: u64::from(head) | u64::from(place) << PLACE_SHIFT,
        }
    }

    fn head(&self) -> u32 {
        self.word as u32
    }

    fn place(&self) -> u32 {
        (self.word >> PLACE_SHIFT) as u32
    }

    /// A live object's record.
    pub(super) fn live(span: u32, index: u32, generation: u32, mapped: bool) -> Self {
        Object::from_parts(
            LIVE | (generation & mask(GENERATION_BITS)) << GENERATION_SHIFT,
            place(span, index),
        )
        .with_mapped(mapped)
    }

    /// The record with the mapped bit set (`true`) or cleared.
    pub(super) fn with_mapped(self, mapped: bool) -> Self {
        let place = if mapped {
            self.place() | MAPPED
        } else {
            self.place() & !MAPPED
        };
        Object::from_parts(self.head(), place)
    }

    /// The record with [`BUSY`] set (`true`) or cleared.
    pub(super) fn with_busy(self, busy: bool) -> Self {
        let word = if busy {
            self.word | u64::from(BUSY)
        } else {
            self.word & !u64::from(BUSY)
        };
        Object { word }
    }

    /// The record of the object moved to index `index` of the span in
    /// `span`, neither mapped nor [`BUSY`].
    pub(super) fn moved_to(self, span: u32, index: u32) -> Self {
        Object::from_parts(self.head() & !BUSY, place(span, index))
    }

    /// The span slot of a live object.
    pub(super) fn span(self) -> u32 {
        Word(self.word).span()
    }

    /// The index in its span of a live object.
    pub(super) fn index(self) -> u32 {
        Word(self.word).index()
    }

    /// The generation of the slot.
    pub(super) fn generation(self) -> u32 {
        (self.head() >> GENERATION_SHIFT) & mask(GENERATION_BITS)
    }

    /// Whether a live object is mapped (under the lock: a lockless map
    /// pins it instead).
    pub(super) fn mapped(self) -> bool {
        self.place() & MAPPED != 0
    }

    /// Whether a live object is [`BUSY`] (never, but while the owner holds
    /// the lock in [`super::Pool`]'s `unpinned`).
    pub(super) fn busy(self) -> bool {
        self.head() & BUSY != 0
    }

    /// Whether this is a live object's record.
    pub(super) fn is_live(self) -> bool {
        self.head() & (FREE | LIVE) == LIVE
    }

    /// Whether this is the record of the live object of generation
    /// `generation`.
    pub(super) fn is_live_at(&self, generation: u32) -> bool {
        self.head() & (FREE | LIVE) == LIVE && self.generation() == generation
    }

    /// The word of the record at `at`, loaded without the lock (SeqCst:
    /// after the pin a lockless map takes, see *Lockless maps* in the
    /// [parent module](super); at least acquire: the span the word names
    /// was made before the owner stored it).
    ///
    /// # Safety
    ///
    /// `at` points to a record of a leaf of an object table that stays
    /// allocated during the call, aligned.
    pub(super) unsafe fn load_word(at: NonNull<Object>) -> Word {
        // SAFETY: The caller's: `word` is an aligned `u64` in an allocated
        // record; its writers store it atomically (`store`), and plain
        // reads of it by the owner do not race with atomic loads.
        let word = unsafe { AtomicU64::from_ptr(addr_of_mut!((*at.as_ptr()).word)) };
        Word(word.load(Ordering::SeqCst))
    }
}

impl Record for Object {
    const LOCKLESS: bool = true;

    #[inline]
    unsafe fn store(at: NonNull<Self>, value: Self) {
        // The word is stored atomically, for readers without the lock
        // (release: the span a live object's place names was made before).
        // SAFETY: The caller's: `at` points to a record in a live leaf,
        // aligned, which nobody else writes.
        let word = unsafe { AtomicU64::from_ptr(addr_of_mut!((*at.as_ptr()).word)) };
        word.store(value.word, Ordering::Release);
    }

    fn occupied(_page: NonNull<u8>, generation: u32) -> Self {
        // The object table holds no pages (`insert_record` only); a record
        // made this way names nothing.
        Object::live(NO_SLOT, 0, generation, false)
    }

    fn vacant(next: u32, generation: u32) -> Self {
        Object::from_parts(
            FREE | (generation & mask(GENERATION_BITS)) << GENERATION_SHIFT,
            next,
        )
    }

    fn page(&self) -> Option<NonNull<u8>> {
        None
    }

    fn vacancy(&self) -> Option<(u32, u32)> {
        (self.head() & FREE != 0).then_some((self.place(), self.generation()))
    }
}

/// Words of a span's bitmap of live objects.
pub(super) const BITMAP_WORDS: usize = MAX_SPAN_OBJECTS / u64::BITS as usize;

/// The most objects of a class whose spans keep their map in their record
/// (in the bitmap's words past the first, two entries a word, and in
/// [`SpanBody`]'s `extra`) rather than in a block of
/// [`super::maps::Maps`]: the classes of objects of about 1.7 KiB and more.
pub(super) const INLINE_OBJECTS: u16 = 2 * (BITMAP_WORDS as u16 - 1) + EXTRA as u16;
/// Map entries in [`SpanBody`]'s `extra`.
const EXTRA: usize = 3;

const _: () = assert!((INLINE_OBJECTS as u32) < u64::BITS);

/// Whether the spans of a class of `objects` objects keep their map in
/// their record.
pub(super) fn inline_map(objects: u16) -> bool {
    objects <= INLINE_OBJECTS
}

/// The words of the bitmap of a span of a class of `objects` objects: the
/// first only if the span keeps its map in the others.
fn bitmap_words(objects: u16) -> usize {
    if inline_map(objects) {
        1
    } else {
        BITMAP_WORDS
    }
}

/// Where entry `index` of a map kept in a span's record is.
enum InlineEntry {
    /// Word `.0` of the bitmap, the half at bit `.1`.
    Word(usize, u32),
    /// `extra[.0]`.
    Extra(usize),
}

impl InlineEntry {
    fn of(index: u32) -> Self {
        let i = index as usize;
        match i.checked_sub(2 * (BITMAP_WORDS - 1)) {
            None => InlineEntry::Word(1 + i / 2, 32 * (i % 2) as u32),
            Some(j) => InlineEntry::Extra(j),
        }
    }
}

/// A record of the span table: a span's pages, class and state, its
/// [`SpanHead`], which readers without the lock read ([`SpanHead::load`])
/// and the owner stores atomically ([`Record::store`]); and its
/// [`SpanBody`], which the table lends in place ([`HasBody`]) and nobody
/// reads without the lock; or a free slot's. Reads of the body's fields go
/// through `Deref`; changes through
/// [`crate::zalloc::RadixTable::page_and_body_mut`] only, which cannot
/// reach the head.
#[derive(Clone, Copy)]
#[repr(C)]
pub(super) struct Span {
    head: SpanHead,
    body: SpanBody,
}

/// Where a span's objects are: its pages, and its class and state.
#[derive(Clone, Copy)]
#[repr(C)]
pub(super) struct SpanHead {
    /// The span's first page; null in a free slot's record.
    first: *mut u8,
    /// [`SPAN_FREE`] for a free slot's record, [`SPAN_LIVE`] for a span's.
    state: u8,
    /// The span's class (a copy of the body's, for lockless readers).
    class: u8,
    /// Pages of the span.
    npages: u8,
    _pad: [u8; 5],
    /// The span's pages after the first: `more[..npages - 1]` non-null, the
    /// others null.
    more: [*mut u8; MAX_SPAN_PAGES - 1],
}

/// What a [`Span`] record has besides its head.
#[derive(Clone, Copy)]
#[repr(C)]
pub(super) struct SpanBody {
    /// Bit `i` is set when object `i` is live; in a span whose class has
    /// at most [`INLINE_OBJECTS`], the first word only, and the rest hold
    /// the first entries of its map, two a word (the lower in the low
    /// half).
    used: [u64; BITMAP_WORDS],
    /// The span's reverse map, the object slot at each live index, if it is
    /// not in the record (`None` in a free slot's record).
    pub(super) map: Option<MapBlock>,
    /// The slot's generation counter.
    pub(super) generation: u32,
    /// The next span on its list (a free slot's: the next free slot).
    pub(super) next: u32,
    /// The previous span on its list.
    pub(super) prev: u32,
    /// The last entries of the map of a span that keeps it in its record.
    extra: [u32; EXTRA],
    /// Live objects.
    pub(super) live: u16,
    /// The span's class.
    pub(super) class: u8,
    /// The list the span is on (see [`super::Group`]), or
    /// [`super::UNLISTED`].
    pub(super) list: u8,
    /// Set while compaction empties the span: it takes no new object.
    pub(super) evacuating: u8,
    _pad: [u8; 3],
}

/// [`SpanHead::state`] of a free slot's record.
const SPAN_FREE: u8 = 0;
/// [`SpanHead::state`] of a span's record.
const SPAN_LIVE: u8 = 1;

const _: () = assert!(size_of::<Span>() == 128);
const _: () = assert!(size_of::<Object>() == 8);

// SAFETY: A span's record names pages of the pool, which may move to
// another thread with the pool.
unsafe impl Send for Span {}

impl core::ops::Deref for Span {
    type Target = SpanBody;

    fn deref(&self) -> &SpanBody {
        &self.body
    }
}

// SAFETY: `body_of` projects to the `body` field; `page` reads the head
// only, and `vacancy` reads the body only for a free slot's record (whose
// head's `state` is `SPAN_FREE`): no change to the body of an occupied
// record changes what either returns.
unsafe impl HasBody for Span {
    type Body = SpanBody;

    unsafe fn body_of(at: NonNull<Self>) -> NonNull<SpanBody> {
        // SAFETY: The caller's: `at` points to a record; the projection
        // reads nothing, and a field of a non-null record is not null.
        unsafe { NonNull::new_unchecked(addr_of_mut!((*at.as_ptr()).body)) }
    }
}

impl Span {
    fn empty(state: u8, generation: u32, next: u32) -> Self {
        Span {
            head: SpanHead {
                first: core::ptr::null_mut(),
                state,
                class: 0,
                npages: 0,
                _pad: [0; 5],
                more: [core::ptr::null_mut(); MAX_SPAN_PAGES - 1],
            },
            body: SpanBody {
                used: [0; BITMAP_WORDS],
                map: None,
                generation,
                next,
                prev: NO_SLOT,
                live: 0,
                class: 0,
                list: super::UNLISTED,
                evacuating: 0,
                extra: [0; EXTRA],
                _pad: [0; 3],
            },
        }
    }

    /// The span's head: its pages and class.
    pub(super) fn head(&self) -> &SpanHead {
        &self.head
    }

    /// The record of the live span whose first page is this one's, with
    /// `pages` after it, of class `class` and with the reverse map `map`
    /// (`None` for one in the record).
    pub(super) fn with_pages(
        mut self,
        more: &[Option<NonNull<u8>>],
        class: u8,
        map: Option<MapBlock>,
    ) -> Self {
        let mut npages = 1u8;
        for (dst, src) in self.head.more.iter_mut().zip(more) {
            *dst = src.map_or(core::ptr::null_mut(), NonNull::as_ptr);
            npages = npages.wrapping_add(u8::from(src.is_some()));
        }
        self.head.npages = npages;
        self.head.class = class;
        self.body.class = class;
        self.body.map = map;
        self
    }
}

impl SpanHead {
    /// The span's class.
    pub(super) fn class(&self) -> u8 {
        self.class
    }

    /// Pages of the span.
    pub(super) fn npages(&self) -> u8 {
        self.npages
    }

    /// The span's first page, `None` in a free slot's record.
    pub(super) fn first(&self) -> Option<NonNull<u8>> {
        match self.state {
            SPAN_LIVE => NonNull::new(self.first),
            _ => None,
        }
    }

    /// Page `i` of the span, `None` past its pages (or in a free slot's
    /// record).
    pub(super) fn page_at(&self, i: usize) -> Option<NonNull<u8>> {
        match i.checked_sub(1) {
            None => self.first(),
            Some(i) if i + 1 < usize::from(self.npages) => NonNull::new(*self.more.get(i)?),
            Some(_) => None,
        }
    }

    /// The slots of the pages after the first, all of them.
    pub(super) fn more_slots(&self) -> &[*mut u8; MAX_SPAN_PAGES - 1] {
        &self.more
    }

    /// The pages after the first, as many as the span has.
    pub(super) fn more(&self) -> &[*mut u8] {
        let n = usize::from(self.npages).saturating_sub(1);
        self.more.get(..n).unwrap_or(&[])
    }

    /// The class of the live span whose record is at `at`, loaded without
    /// the lock (`None` for a free slot's record); the span is live, so its
    /// head does not change meanwhile (the caller pinned one of its
    /// objects).
    ///
    /// # Safety
    ///
    /// `at` points to a record of a leaf of a span table that stays
    /// allocated during the call, aligned.
    pub(super) unsafe fn load_class(at: NonNull<Span>) -> Option<u8> {
        let at = at.as_ptr();
        // SAFETY: The caller's: the fields are aligned in an allocated
        // record; their writer stores them atomically (`Span::store`), and
        // the owner's plain reads do not race with atomic loads.
        let (state, class) = unsafe {
            (
                AtomicU8::from_ptr(addr_of_mut!((*at).head.state)).load(Ordering::Relaxed),
                AtomicU8::from_ptr(addr_of_mut!((*at).head.class)).load(Ordering::Relaxed),
            )
        };
        (state == SPAN_LIVE).then_some(class)
    }

    /// Page `i` of the span whose record is at `at`, loaded without the
    /// lock as [`SpanHead::load_class`]; `None` past its pages.
    ///
    /// # Safety
    ///
    /// As [`SpanHead::load_class`].
    pub(super) unsafe fn load_page(at: NonNull<Span>, i: usize) -> Option<NonNull<u8>> {
        let at = at.as_ptr();
        // SAFETY: As in `load_class`; `more` has `MAX_SPAN_PAGES - 1`
        // pointers, and `i - 1` is below that.
        unsafe {
            let npages =
                AtomicU8::from_ptr(addr_of_mut!((*at).head.npages)).load(Ordering::Relaxed);
            if i >= usize::from(npages) || i >= MAX_SPAN_PAGES {
                return None;
            }
            let page = match i.checked_sub(1) {
                None => addr_of_mut!((*at).head.first),
                Some(j) => addr_of_mut!((*at).head.more).cast::<*mut u8>().add(j),
            };
            NonNull::new(AtomicPtr::from_ptr(page).load(Ordering::Relaxed))
        }
    }
}

impl SpanBody {
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

    /// The first live object at `from` or after, below `objects` (its
    /// class's), if any.
    pub(super) fn next_used(&self, from: u32, objects: u16) -> Option<u32> {
        let words = bitmap_words(objects);
        let mut word = from as usize / 64;
        let mut bits = self.used.get(..words)?.get(word)? & (u64::MAX << (from % 64));
        loop {
            if bits != 0 {
                let index = word as u32 * 64 + bits.trailing_zeros();
                return (index < u32::from(objects)).then_some(index);
            }
            word += 1;
            bits = *self.used.get(..words)?.get(word)?;
        }
    }

    /// Whether a bit at or past `objects` (its class's) is set.
    pub(super) fn used_past(&self, objects: u16) -> bool {
        let words = bitmap_words(objects);
        (u32::from(objects)..words as u32 * 64).any(|i| self.is_used(i))
    }

    /// The object slot the map of the span names at `index`.
    ///
    /// # Safety
    ///
    /// `index` is below the objects of the span's class, and its block, if
    /// its map is not in the record, has not been given back.
    pub(super) unsafe fn slot_at(&self, index: u32) -> Option<u32> {
        match self.map {
            // SAFETY: The caller's.
            Some(block) => Some(unsafe { block.get(index) }),
            None => match InlineEntry::of(index) {
                InlineEntry::Word(w, shift) => Some((*self.used.get(w)? >> shift) as u32),
                InlineEntry::Extra(j) => self.extra.get(j).copied(),
            },
        }
    }

    /// Names the object in `slot` at `index` in the span's map.
    ///
    /// # Safety
    ///
    /// As [`SpanBody::slot_at`].
    pub(super) unsafe fn set_slot_at(&mut self, index: u32, slot: u32) {
        match self.map {
            // SAFETY: The caller's.
            Some(block) => unsafe { block.set(index, slot) },
            None => match InlineEntry::of(index) {
                InlineEntry::Word(w, shift) => {
                    if let Some(w) = self.used.get_mut(w) {
                        *w = *w & !(u64::from(u32::MAX) << shift) | u64::from(slot) << shift;
                    }
                }
                InlineEntry::Extra(j) => {
                    if let Some(e) = self.extra.get_mut(j) {
                        *e = slot;
                    }
                }
            },
        }
    }

    /// The first free object below `objects` (its class's), if any.
    pub(super) fn first_free(&self, objects: u16) -> Option<u32> {
        let words = bitmap_words(objects);
        let objects = u32::from(objects);
        for (i, w) in self.used.iter().take(words).enumerate() {
            if *w != u64::MAX {
                let index = i as u32 * 64 + w.trailing_ones();
                return (index < objects).then_some(index);
            }
        }
        None
    }
}

impl Record for Span {
    const LOCKLESS: bool = true;

    unsafe fn store(at: NonNull<Self>, value: Self) {
        let at = at.as_ptr();
        // The head's fields are stored atomically, for readers without the
        // lock (`SpanHead::load_class`, `SpanHead::load_page`); nobody reads
        // the body but the owner.
        // SAFETY: The caller's: `at` points to a record in a live leaf,
        // aligned, which nobody else writes.
        unsafe {
            let head = &value.head;
            AtomicPtr::from_ptr(addr_of_mut!((*at).head.first))
                .store(head.first, Ordering::Relaxed);
            AtomicU8::from_ptr(addr_of_mut!((*at).head.state)).store(head.state, Ordering::Relaxed);
            AtomicU8::from_ptr(addr_of_mut!((*at).head.class)).store(head.class, Ordering::Relaxed);
            AtomicU8::from_ptr(addr_of_mut!((*at).head.npages))
                .store(head.npages, Ordering::Relaxed);
            for (i, page) in head.more.iter().enumerate() {
                let at = addr_of_mut!((*at).head.more).cast::<*mut u8>().add(i);
                AtomicPtr::from_ptr(at).store(*page, Ordering::Relaxed);
            }
            addr_of_mut!((*at).body).write(value.body);
        }
    }

    fn occupied(page: NonNull<u8>, generation: u32) -> Self {
        let mut span = Span::empty(SPAN_LIVE, generation, NO_SLOT);
        span.head.first = page.as_ptr();
        span.head.npages = 1;
        span
    }

    fn vacant(next: u32, generation: u32) -> Self {
        Span::empty(SPAN_FREE, generation, next)
    }

    fn page(&self) -> Option<NonNull<u8>> {
        self.head.first()
    }

    fn vacancy(&self) -> Option<(u32, u32)> {
        (self.head.state == SPAN_FREE).then_some((self.body.next, self.body.generation))
    }
}
