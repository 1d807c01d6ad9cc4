// SPDX-License-Identifier: GPL-2.0

//! zbud's handles and slot table, made of the shared
//! [`Handle`](crate::zalloc::Handle) and
//! [`RadixTable`]; see *Handles* in the
//! [parent module](super).

use core::mem::size_of;
use core::ptr::NonNull;
use core::sync::atomic::{fence, AtomicPtr, AtomicU64, Ordering};

use super::HandleError;
use crate::zalloc::{self, slot_bits, PageSource, RadixTable, Record};

/// Bits of a handle's generation.
const GENERATION_BITS: u32 = 21;
/// Bits of a slot number: 26, with 256 entries per leaf.
pub(super) const SLOT_BITS: u32 = slot_bits(size_of::<Entry>());

/// Number of slots: 255 a leaf.
pub(super) const CAPACITY: usize = zalloc::capacity(size_of::<Entry>());

/// The name of an object in a [`Pool`](super::Pool): zpool's `unsigned long`
/// handle. Any value may be passed back to the pool, which checks it.
///
/// Bit 0 is the buddy (0 first, 1 last), then 26 bits of slot, 21 of
/// generation and 16 of pool tag.
pub type Handle = zalloc::Handle<1, SLOT_BITS, GENERATION_BITS>;

// The fields fill the handle: no spare bits to check.
const _: () = assert!(1 + SLOT_BITS + GENERATION_BITS + u16::BITS == u64::BITS);
// A free slot's entry packs a slot number and a generation into a pointer.
const _: () = assert!(usize::BITS >= 1 + u32::BITS + GENERATION_BITS);

/// The generation that follows `generation` in a slot.
pub(super) const fn next_generation(generation: u32) -> u32 {
    Handle::next_generation(generation)
}

/// A page's buddies, as a slot's entry keeps them: the first's generation
/// if it is allocated, the last's generation and size in chunks if it is.
pub(super) type Buddies = (Option<u32>, Option<(u32, u32)>);

/// Where the last buddy's generation is in an entry's `meta`.
const LAST_GENERATION_SHIFT: u32 = GENERATION_BITS;
/// Where the last buddy's size in chunks is (6 bits; 0: no last buddy).
const LAST_CHUNKS_SHIFT: u32 = 2 * GENERATION_BITS;
/// The bit that says the first buddy is allocated.
const FIRST_ALLOCATED: u64 = 1 << (LAST_CHUNKS_SHIFT + 6);
/// The bits of the buddies' state.
const STATE_MASK: u64 = (FIRST_ALLOCATED << 1) - 1;
/// Set while the entry's page word changes.
const BUSY: u64 = FIRST_ALLOCATED << 1;
/// Where the count of page changes is: the rest of the word.
const SEQ_SHIFT: u32 = LAST_CHUNKS_SHIFT + 8;
/// The mask of a buddy's generation (and of its handle's).
const GENERATION_MASK: u64 = Handle::GENERATION_MASK as u64;

const _: () = assert!(super::NCHUNKS < 1 << 6 && SEQ_SHIFT < u64::BITS);

/// A leaf entry of the slot table, 16 bytes: the slot's page and the state
/// of its buddies, which the page header has too, for [`Pool::map`]'s
/// readers without the pool's lock (`Pool::map_lockless`).
///
/// `page` is an occupied slot's page address, which is even (pages are
/// aligned), or, for a free slot, bit 0 set, the next free slot in bits
/// 1..33 and the slot's generation above; the latter carries no
/// provenance. Never null in a leaf.
///
/// `meta` holds, in [`STATE_MASK`], each allocated buddy's generation,
/// the last buddy's size in chunks (0 if it is free) and whether the first
/// is allocated (0 for a free slot); above, [`BUSY`] and a count of the
/// changes of `page` (wrapping, 14 bits).
///
/// # Invariants
///
/// In a leaf, the table's owner, under its lock, writes an entry only
/// through [`Entry::store`], with atomic stores: a change of `meta`'s
/// state alone is one release store; a change of `page` sets [`BUSY`]
/// first, then stores `page`, then `meta` with the next count and
/// without [`BUSY`] (a seqlock of one entry). So a reader that loads
/// `meta` without [`BUSY`], then `page`, then `meta` again with the same
/// count and without [`BUSY`] ([`Entry::load_lockless`]) has a page and a
/// state that were the entry's together (unless `page` changed a multiple
/// of 2^14 times in between).
///
/// [`Pool::map`]: super::Pool::map
#[derive(Clone, Copy)]
#[repr(C, align(16))]
pub(super) struct Entry {
    page: *mut u8,
    meta: u64,
}

// SAFETY: An entry names a page of the pool, which may move to another
// thread with the pool, or is integers.
unsafe impl Send for Entry {}

impl Entry {
    /// The entry with `first`'s generation (if the first buddy is
    /// allocated) and `last`'s generation and chunks (if the last is).
    pub(super) fn with_buddies(self, first: Option<u32>, last: Option<(u32, u32)>) -> Self {
        let mut state = 0;
        if let Some(generation) = first {
            state |= FIRST_ALLOCATED | (u64::from(generation) & GENERATION_MASK);
        }
        if let Some((generation, chunks)) = last {
            state |= (u64::from(generation) & GENERATION_MASK) << LAST_GENERATION_SHIFT
                | (u64::from(chunks) & 0x3f) << LAST_CHUNKS_SHIFT;
        }
        Self {
            page: self.page,
            meta: self.meta & !STATE_MASK | state,
        }
    }

    /// The buddies' state: `(first, last)` as [`Entry::with_buddies`]
    /// takes them.
    pub(super) fn buddies(&self) -> Buddies {
        buddies(self.meta)
    }

    /// The two words of the entry at `at`, as atomics.
    ///
    /// # Safety
    ///
    /// `at` points to an entry of a live leaf, aligned, that stays live
    /// while the references are used.
    unsafe fn words<'a>(at: NonNull<Self>) -> (&'a AtomicPtr<u8>, &'a AtomicU64) {
        let at = at.as_ptr();
        // SAFETY: the caller's: both fields are inside the entry, aligned
        // (`repr(C)`, 8-byte fields), and the atomics have the size and
        // alignment of `*mut u8` and `u64`.
        unsafe {
            (
                AtomicPtr::from_ptr(core::ptr::addr_of_mut!((*at).page)),
                AtomicU64::from_ptr(core::ptr::addr_of_mut!((*at).meta)),
            )
        }
    }

    /// The page and the buddies' state of the entry at `at`, read without
    /// the lock: `None` if it is a free slot's, or if the owner changed
    /// its page meanwhile (the caller then takes the lock); a change of
    /// the state alone does not matter (the state read was the entry's,
    /// with the page read). See the type's invariants.
    ///
    /// # Safety
    ///
    /// `at` points to an entry of a live leaf of a lockless table, aligned,
    /// that stays live during the call.
    pub(super) unsafe fn load_lockless(at: NonNull<Self>) -> Option<(NonNull<u8>, Buddies)> {
        // SAFETY: the caller's.
        let (page, meta) = unsafe { Self::words(at) };
        let before = meta.load(Ordering::Acquire);
        if before & BUSY != 0 {
            return None;
        }
        let address = page.load(Ordering::Relaxed);
        // The load of `page` before the second of `meta`: if it saw a page
        // stored after `BUSY` was set, the second load sees `BUSY` or a
        // later count (the owner's release fence, before its store of
        // `page`, pairs with this one).
        fence(Ordering::Acquire);
        // The same count and not busy: `page` did not change between the
        // two loads, so it was the page of `before`'s state (which may
        // have changed since: it was the entry's state, with this page).
        if (meta.load(Ordering::Relaxed) ^ before) & !STATE_MASK != 0 || address as usize & 1 != 0 {
            return None;
        }
        Some((NonNull::new(address)?, buddies(before)))
    }
}

/// The buddies' state in an entry's `meta`.
fn buddies(meta: u64) -> Buddies {
    let first = (meta & FIRST_ALLOCATED != 0).then_some((meta & GENERATION_MASK) as u32);
    let chunks = (meta >> LAST_CHUNKS_SHIFT & 0x3f) as u32;
    let last = (chunks != 0).then_some((
        (meta >> LAST_GENERATION_SHIFT & GENERATION_MASK) as u32,
        chunks,
    ));
    (first, last)
}

impl Record for Entry {
    const LOCKLESS: bool = true;

    unsafe fn store(at: NonNull<Self>, value: Self) {
        // SAFETY: the caller's: `at` is initialized and only the caller
        // writes it (others only load it).
        let old = unsafe { at.as_ptr().read() };
        // SAFETY: the caller's.
        let (page, meta) = unsafe { Self::words(at) };
        let state = value.meta & STATE_MASK;
        if old.page != value.page {
            let seq = (old.meta >> SEQ_SHIFT).wrapping_add(1) << SEQ_SHIFT;
            meta.store(old.meta | BUSY, Ordering::Relaxed);
            fence(Ordering::Release);
            page.store(value.page, Ordering::Relaxed);
            meta.store(seq | state, Ordering::Release);
        } else if old.meta & STATE_MASK != state {
            meta.store(old.meta & !STATE_MASK | state, Ordering::Release);
        }
    }

    fn occupied(page: NonNull<u8>, _generation: u32) -> Self {
        // The generation counter is in the page's header; no buddy yet.
        Entry {
            page: page.as_ptr(),
            meta: 0,
        }
    }

    fn vacant(next: u32, generation: u32) -> Self {
        // An integer, not an address: the low bit tells it from a page
        // pointer. A cast, not `without_provenance_mut`, which is newer than
        // the kernel's minimum Rust (1.78).
        let bits = 1
            | (next as usize) << 1
            | ((generation & Handle::GENERATION_MASK) as usize) << (1 + u32::BITS);
        Entry {
            page: bits as *mut u8,
            meta: 0,
        }
    }

    fn page(&self) -> Option<NonNull<u8>> {
        match self.vacancy() {
            Some(_) => None,
            None => NonNull::new(self.page),
        }
    }

    fn vacancy(&self) -> Option<(u32, u32)> {
        let bits = self.page as usize;
        if bits & 1 == 0 {
            return None;
        }
        let generation = (bits >> (1 + u32::BITS)) as u32 & Handle::GENERATION_MASK;
        Some(((bits >> 1) as u32, generation))
    }
}

/// The slot table: slots to zbud pages, which come from its page source.
pub(super) type SlotTable<P> = RadixTable<Entry, P>;

/// The page in `slot` of `table`: [`HandleError::Malformed`] for a number
/// that is no slot, [`HandleError::Stale`] for a free slot or one without a
/// leaf (freed with its leaf, or never handed out: the table cannot tell).
pub(super) fn page<P: PageSource>(
    table: &SlotTable<P>,
    slot: u32,
) -> Result<NonNull<u8>, HandleError> {
    if !SlotTable::<P>::is_slot(slot) {
        return Err(HandleError::Malformed);
    }
    let entry = table.get(slot).ok_or(HandleError::Stale)?;
    entry.page().ok_or(HandleError::Stale)
}
