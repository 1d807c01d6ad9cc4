// SPDX-License-Identifier: GPL-2.0

//! Handles: a pool tag, a generation, a slot and an object index packed into
//! a `u64`; see *Handles and the slot table* in the [parent module](super).

/// Bits above the handle's other fields: the pool tag.
const TAG_SHIFT: u32 = u64::BITS - u16::BITS;

/// A mask of the low `bits` bits.
const fn mask(bits: u32) -> u64 {
    if bits >= u64::BITS {
        u64::MAX
    } else {
        (1 << bits) - 1
    }
}

/// The name of an object in a pool: zpool's `unsigned long` handle. Any
/// value may be passed back to the pool, which checks it.
///
/// From the low bits up: an object index of `INDEX_BITS` bits, a slot of
/// `SLOT_BITS`, a generation of `GENERATION_BITS`, spare bits (0) and, in
/// the top 16 bits, the pool tag. Each allocator fixes the widths with a
/// type alias, which makes its handles a type of their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Handle<const INDEX_BITS: u32, const SLOT_BITS: u32, const GENERATION_BITS: u32>(u64);

/// The fields of a [`Handle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandleFields {
    /// The pool tag.
    pub tag: u16,
    /// The generation of the object's slot when it was allocated.
    pub generation: u32,
    /// The slot of the object's page.
    pub slot: u32,
    /// The object's index in its page.
    pub index: u32,
    /// The bits between the generation and the tag, 0 in every handle a
    /// pool makes.
    pub spare: u64,
}

impl<const INDEX_BITS: u32, const SLOT_BITS: u32, const GENERATION_BITS: u32>
    Handle<INDEX_BITS, SLOT_BITS, GENERATION_BITS>
{
    const SLOT_SHIFT: u32 = INDEX_BITS;
    const GENERATION_SHIFT: u32 = INDEX_BITS + SLOT_BITS;
    const SPARE_SHIFT: u32 = Self::GENERATION_SHIFT + GENERATION_BITS;
    const SPARE_MASK: u64 = mask(TAG_SHIFT - Self::SPARE_SHIFT);

    /// The mask of a generation: generations count modulo
    /// `2^GENERATION_BITS`.
    pub const GENERATION_MASK: u32 = mask(GENERATION_BITS) as u32;

    /// The fields fit below the tag, and slots and generations in a `u32`
    /// (slots below `2^31`, so that none is [`NO_SLOT`](super::NO_SLOT)).
    const FITS: () = assert!(
        INDEX_BITS <= 8
            && SLOT_BITS <= 31
            && GENERATION_BITS <= 32
            && Self::SPARE_SHIFT <= TAG_SHIFT
    );

    /// The handle whose value is `raw`.
    pub const fn from_raw(raw: u64) -> Self {
        Self(raw)
    }

    /// The value of the handle, never 0 for a handle a pool returned.
    pub const fn to_raw(self) -> u64 {
        self.0
    }

    /// The handle with these fields, each truncated to its width (the
    /// spare bits are 0).
    pub fn new(tag: u16, generation: u32, slot: u32, index: u32) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::FITS;
        Self(
            u64::from(tag) << TAG_SHIFT
                | (u64::from(generation) & mask(GENERATION_BITS)) << Self::GENERATION_SHIFT
                | (u64::from(slot) & mask(SLOT_BITS)) << Self::SLOT_SHIFT
                | u64::from(index) & mask(INDEX_BITS),
        )
    }

    /// The fields of the handle.
    pub fn fields(self) -> HandleFields {
        #[allow(clippy::let_unit_value)]
        let () = Self::FITS;
        // The masks make the truncating casts lossless.
        HandleFields {
            tag: (self.0 >> TAG_SHIFT) as u16,
            generation: ((self.0 >> Self::GENERATION_SHIFT) & mask(GENERATION_BITS)) as u32,
            slot: ((self.0 >> Self::SLOT_SHIFT) & mask(SLOT_BITS)) as u32,
            index: (self.0 & mask(INDEX_BITS)) as u32,
            spare: (self.0 >> Self::SPARE_SHIFT) & Self::SPARE_MASK,
        }
    }

    /// The generation that follows `generation` in a slot.
    pub const fn next_generation(generation: u32) -> u32 {
        generation.wrapping_add(1) & Self::GENERATION_MASK
    }
}
