// SPDX-License-Identifier: GPL-2.0

//! zbud's handles and slot table, made of the shared
//! [`Handle`](crate::zalloc::Handle) and
//! [`RadixTable`]; see *Handles* in the
//! [parent module](super).

use core::mem::size_of;
use core::ptr::NonNull;

use super::HandleError;
use crate::zalloc::{self, slot_bits, PageSource, RadixTable, Record};

/// Bits of a handle's generation.
const GENERATION_BITS: u32 = 20;
/// Bits of a slot number: 27, with 512 entries per leaf.
pub(super) const SLOT_BITS: u32 = slot_bits(size_of::<Entry>());

/// Number of slots: 511 a leaf.
pub(super) const CAPACITY: usize = zalloc::capacity(size_of::<Entry>());

/// The name of an object in a [`Pool`](super::Pool): zpool's `unsigned long`
/// handle. Any value may be passed back to the pool, which checks it.
///
/// Bit 0 is the buddy (0 first, 1 last), then 27 bits of slot, 20 of
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

/// A leaf entry of the slot table: an occupied slot's page address, which
/// is even (pages are aligned), or, for a free slot, bit 0 set, the next
/// free slot in bits 1..33 and the slot's generation above; the latter
/// carries no provenance. Never null in a leaf.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub(super) struct Entry(*mut u8);

// SAFETY: An entry names a page of the pool, which may move to another
// thread with the pool, or is an integer.
unsafe impl Send for Entry {}

impl Record for Entry {
    fn occupied(page: NonNull<u8>, _generation: u32) -> Self {
        // The generation counter is in the page's header.
        Entry(page.as_ptr())
    }

    fn vacant(next: u32, generation: u32) -> Self {
        // An integer, not an address: the low bit tells it from a page
        // pointer. A cast, not `without_provenance_mut`, which is newer than
        // the kernel's minimum Rust (1.78).
        let bits = 1
            | (next as usize) << 1
            | ((generation & Handle::GENERATION_MASK) as usize) << (1 + u32::BITS);
        Entry(bits as *mut u8)
    }

    fn page(&self) -> Option<NonNull<u8>> {
        match self.vacancy() {
            Some(_) => None,
            None => NonNull::new(self.0),
        }
    }

    fn vacancy(&self) -> Option<(u32, u32)> {
        let bits = self.0 as usize;
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
