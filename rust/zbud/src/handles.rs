// SPDX-License-Identifier: GPL-2.0

//! Handles and the slot table that checks them; see *Handles* in the
//! [parent module](super).

use core::mem::size_of;
use core::ptr::NonNull;

use super::{Buddy, HandleError, PageSource, MAX_PAGES, PAGE_SIZE};

/// An entry of a slot-table node: a child node in interior nodes, a slot in
/// leaves (see [`Slot`]). Null if unused.
type Entry = *mut u8;

/// log2 of the entries per table node (one page).
const FANOUT_SHIFT: u32 = (PAGE_SIZE / size_of::<Entry>()).trailing_zeros();
/// Entries per table node.
const FANOUT: usize = 1 << FANOUT_SHIFT;
/// Levels of the slot table, leaves included.
const LEVELS: usize = 3;
/// Bits of a slot number.
pub(super) const SLOT_BITS: u32 = FANOUT_SHIFT * LEVELS as u32;

/// "No slot": the end of a list.
pub(super) const NO_SLOT: u32 = u32::MAX;

/// Handle layout: the buddy in bit 0, then the slot, the generation and the
/// pool tag in the top bits.
const SLOT_SHIFT: u32 = 1;
const GENERATION_SHIFT: u32 = SLOT_SHIFT + SLOT_BITS;
const GENERATION_BITS: u32 = 20;
const GENERATION_MASK: u32 = (1 << GENERATION_BITS) - 1;
const TAG_SHIFT: u32 = GENERATION_SHIFT + GENERATION_BITS;

const _: () = assert!(TAG_SHIFT + u16::BITS == u64::BITS);
const _: () = assert!((MAX_PAGES as u64) < NO_SLOT as u64);
// A free slot's entry packs a slot number and a generation into a pointer.
const _: () = assert!(usize::BITS >= 1 + u32::BITS + GENERATION_BITS);

/// The generation that follows `generation` in a slot.
pub(super) const fn next_generation(generation: u32) -> u32 {
    generation.wrapping_add(1) & GENERATION_MASK
}

/// The name of an object in a [`Pool`](super::Pool): zpool's `unsigned long`
/// handle. Any value may be passed back to the pool, which checks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Handle(u64);

/// The fields of a [`Handle`].
pub(super) struct HandleFields {
    pub(super) tag: u16,
    pub(super) generation: u32,
    pub(super) slot: u32,
    pub(super) buddy: Buddy,
}

impl Handle {
    /// The handle whose value is `raw`.
    pub const fn from_raw(raw: u64) -> Self {
        Self(raw)
    }

    /// The value of the handle, never 0 for a handle the pool returned.
    pub const fn to_raw(self) -> u64 {
        self.0
    }

    pub(super) fn new(tag: u16, generation: u32, slot: u32, buddy: Buddy) -> Self {
        Self(
            u64::from(tag) << TAG_SHIFT
                | u64::from(generation & GENERATION_MASK) << GENERATION_SHIFT
                | u64::from(slot) << SLOT_SHIFT
                | buddy.index() as u64,
        )
    }

    pub(super) fn fields(self) -> HandleFields {
        // The masks make the truncating casts lossless.
        HandleFields {
            tag: (self.0 >> TAG_SHIFT) as u16,
            generation: (self.0 >> GENERATION_SHIFT) as u32 & GENERATION_MASK,
            slot: ((self.0 >> SLOT_SHIFT) & (MAX_PAGES as u64 - 1)) as u32,
            buddy: if self.0 & 1 == 0 {
                Buddy::First
            } else {
                Buddy::Last
            },
        }
    }
}

/// A slot, as its leaf entry encodes it.
///
/// An occupied slot's entry is its page's address, which is even (pages are
/// aligned). A free slot's entry has bit 0 set, the next free slot in bits
/// 1..33 and the slot's generation above; it carries no provenance.
enum Slot {
    Page(NonNull<u8>),
    Free { next: u32, generation: u32 },
}

impl Slot {
    fn free_entry(next: u32, generation: u32) -> Entry {
        // An integer, not an address: the low bit tells it from a page
        // pointer (pages are aligned). A cast, not `without_provenance_mut`,
        // which is newer than the kernel's minimum Rust (1.78).
        (1 | (next as usize) << 1 | ((generation & GENERATION_MASK) as usize) << (1 + u32::BITS))
            as Entry
    }

    /// Decodes an entry of a slot below the high-water mark, which is never
    /// null.
    fn decode(entry: Entry) -> Option<Self> {
        let bits = entry as usize;
        if bits & 1 != 0 {
            Some(Slot::Free {
                next: (bits >> 1) as u32,
                generation: (bits >> (1 + u32::BITS)) as u32 & GENERATION_MASK,
            })
        } else {
            NonNull::new(entry).map(Slot::Page)
        }
    }
}

/// The index of `slot`'s entry in its node at `level` (0 is the root).
fn index(slot: u32, level: usize) -> usize {
    let shift = (LEVELS - 1 - level) as u32 * FANOUT_SHIFT;
    (slot as usize >> shift) & (FANOUT - 1)
}

/// A radix tree of [`LEVELS`] levels mapping slots to pages.
///
/// # Invariants
///
/// * `root` and every non-null entry of an interior node (levels
///   `0..LEVELS - 1`) is a page from the pool's source, used only as a node
///   of the next level; `node_pages` counts these nodes.
/// * Slots `0..high_water` have their leaf, and their entries are
///   [`Slot`]s: an occupied slot's page, or a free slot. All other leaf
///   entries are null. `high_water <= MAX_PAGES`.
/// * `free_head` is the first free slot ([`NO_SLOT`] if none); each free
///   slot's entry names the next one, and every free slot is on that list.
pub(super) struct SlotTable {
    root: Option<NonNull<Entry>>,
    high_water: u32,
    free_head: u32,
    node_pages: u64,
}

impl SlotTable {
    pub(super) const fn new() -> Self {
        Self {
            root: None,
            high_water: 0,
            free_head: NO_SLOT,
            node_pages: 0,
        }
    }

    /// Number of pages of the table.
    pub(super) fn node_pages(&self) -> u64 {
        self.node_pages
    }

    /// The page in `slot`: [`HandleError::Malformed`] for a slot the table
    /// never handed out, [`HandleError::Stale`] for a free slot.
    pub(super) fn page(&self, slot: u32) -> Result<NonNull<u8>, HandleError> {
        match self.read(slot) {
            None => Err(HandleError::Malformed),
            Some(Slot::Free { .. }) => Err(HandleError::Stale),
            Some(Slot::Page(page)) => Ok(page),
        }
    }

    /// Puts `page` into a free slot (the last freed, else a new one for which
    /// the table grows with pages from `source`) and returns the slot and its
    /// generation counter. Returns `None`, the table unchanged, if `source`
    /// has no page or the table is full.
    pub(super) fn insert<P: PageSource>(
        &mut self,
        page: NonNull<u8>,
        source: &P,
        flags: P::Flags,
    ) -> Option<(u32, u32)> {
        let (slot, generation) = if self.free_head == NO_SLOT {
            (self.grow(source, flags)?, 0)
        } else {
            let slot = self.free_head;
            let Slot::Free { next, generation } = self.read(slot)? else {
                return None;
            };
            self.free_head = next;
            (slot, generation)
        };
        self.write(slot, page.as_ptr());
        Some((slot, generation))
    }

    /// Frees `slot`, which keeps the generation counter `generation`, and
    /// returns the page it held (`None` if it held none).
    pub(super) fn remove(&mut self, slot: u32, generation: u32) -> Option<NonNull<u8>> {
        let page = self.page(slot).ok()?;
        self.write(slot, Slot::free_entry(self.free_head, generation));
        self.free_head = slot;
        Some(page)
    }

    /// Frees all pages of the table (not the pages in its slots) and empties
    /// it.
    pub(super) fn clear<P: PageSource>(&mut self, source: &P) {
        if let Some(root) = self.root {
            free_subtree(source, root, 0);
        }
        *self = Self::new();
    }

    /// The slot in `slot`, if below the high-water mark.
    fn read(&self, slot: u32) -> Option<Slot> {
        let entry = self.entry(slot)?;
        // SAFETY: `entry` points to an entry of a live leaf (see `entry`).
        Slot::decode(unsafe { entry.as_ptr().read() })
    }

    /// Sets the entry of `slot`, if below the high-water mark.
    fn write(&mut self, slot: u32, value: Entry) {
        if let Some(entry) = self.entry(slot) {
            // SAFETY: `entry` points to an entry of a live leaf (see
            // `entry`), which only the table, borrowed mutably, accesses.
            unsafe { entry.as_ptr().write(value) };
        }
    }

    /// Pointer to the leaf entry of `slot`, if below the high-water mark.
    fn entry(&self, slot: u32) -> Option<NonNull<Entry>> {
        if slot >= self.high_water {
            return None;
        }
        match self.deepest_node(slot)? {
            (level, leaf) if level == LEVELS - 1 => {
                // SAFETY: A leaf is a page of `FANOUT` entries (type
                // invariant) and `index` is below `FANOUT`, so the entry is
                // inside the page, hence not null.
                Some(unsafe { NonNull::new_unchecked(leaf.as_ptr().add(index(slot, level))) })
            }
            _ => None,
        }
    }

    /// The deepest existing node on the path from the root to `slot`'s leaf,
    /// and its level (`LEVELS - 1` if the leaf exists); `None` without root.
    fn deepest_node(&self, slot: u32) -> Option<(usize, NonNull<Entry>)> {
        let mut node = self.root?;
        for level in 0..LEVELS - 1 {
            // SAFETY: `node` is an interior node: a page of `FANOUT` entries
            // (type invariant), and `index` is below `FANOUT`.
            let child = unsafe { node.as_ptr().add(index(slot, level)).read() };
            match NonNull::new(child.cast::<Entry>()) {
                Some(child) => node = child,
                None => return Some((level, node)),
            }
        }
        Some((LEVELS - 1, node))
    }

    /// Hands out the slot at the high-water mark, first adding the nodes its
    /// path lacks. Returns `None`, the table unchanged, if `source` has not
    /// enough pages or the table is full.
    fn grow<P: PageSource>(&mut self, source: &P, flags: P::Flags) -> Option<u32> {
        let slot = self.high_water;
        if slot as usize >= MAX_PAGES {
            return None;
        }
        // Nodes are added top-down, so the missing ones are those below the
        // deepest existing node. Get them all before changing anything.
        let missing = match self.deepest_node(slot) {
            None => LEVELS,
            Some((level, _)) => LEVELS - 1 - level,
        };
        let mut fresh = [None; LEVELS];
        for page in fresh.iter_mut().take(missing) {
            *page = source.alloc_page(flags);
            if page.is_none() {
                break;
            }
        }
        if fresh.iter().take(missing).any(Option::is_none) {
            for page in fresh.into_iter().flatten() {
                // SAFETY: `page` came from `alloc_page` above and nothing
                // refers to it.
                unsafe { source.free_page(page) };
            }
            return None;
        }
        for page in fresh.into_iter().flatten() {
            let node = page.cast::<Entry>();
            // SAFETY: A page from the source is `PAGE_SIZE` bytes, aligned,
            // writable and ours: room for `FANOUT` entries. All-zero entries
            // are null.
            unsafe { node.as_ptr().write_bytes(0, FANOUT) };
            match self.deepest_node(slot) {
                None => self.root = Some(node),
                // SAFETY: `parent` is an interior node (the leaf does not
                // exist yet) and `index` is below `FANOUT`.
                Some((level, parent)) => unsafe {
                    parent
                        .as_ptr()
                        .add(index(slot, level))
                        .write(node.as_ptr().cast());
                },
            }
            self.node_pages = self.node_pages.wrapping_add(1);
        }
        self.high_water = slot + 1;
        Some(slot)
    }
}

/// Frees `node`, at `level`, and the nodes below it.
fn free_subtree<P: PageSource>(source: &P, node: NonNull<Entry>, level: usize) {
    if level < LEVELS - 1 {
        for i in 0..FANOUT {
            // SAFETY: `node` is an interior node: a page of `FANOUT` entries.
            let child = unsafe { node.as_ptr().add(i).read() };
            if let Some(child) = NonNull::new(child.cast::<Entry>()) {
                free_subtree(source, child, level + 1);
            }
        }
    }
    // SAFETY: Table nodes come from `source`, and the caller drops the table
    // this node belongs to.
    unsafe { source.free_page(node.cast()) };
}
