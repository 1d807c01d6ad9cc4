// SPDX-License-Identifier: GPL-2.0

//! Page descriptors and the geometry of a page's objects: free regions,
//! placement and compaction targets; see *Page descriptors*, *Placement* and
//! *Compaction* in the [parent module](super).

use core::mem::size_of;
use core::ptr::NonNull;

use super::{NCHUNKS, OBJECTS_PER_PAGE};
use crate::zalloc::{Record, NO_SLOT};

/// Bits of an object's map count in [`Descriptor::state`].
const MAP_BITS: u32 = 4;
/// The mask of a map count (shifted to the object's bits).
const MAP_MASK: u16 = (1 << MAP_BITS) - 1;
/// The most times one object can be mapped at once.
pub(super) const MAX_MAPS: u32 = MAP_MASK as u32;
/// The map counts of all objects.
const ALL_MAPS: u16 = (1 << (MAP_BITS * OBJECTS_PER_PAGE as u32)) - 1;
/// [`Descriptor::state`] bit of object 0 (then 1, 2): the object is
/// *foreign*, moved here from another page whose slot now forwards its
/// handle here (see *Migration* in the [parent module](super)).
const FOREIGN: u16 = 1 << (MAP_BITS * OBJECTS_PER_PAGE as u32);
/// The foreign bits of all objects.
const ALL_FOREIGN: u16 = ((1 << OBJECTS_PER_PAGE) - 1) * FOREIGN;
/// [`Descriptor::state`] bit: the page's free chunks are in pieces and
/// compaction waits for the page's last mapping to end.
const DEFERRED: u16 = 1 << 15;

// The map counts and the flags fill `state`.
const _: () = assert!(ALL_MAPS | ALL_FOREIGN | DEFERRED == u16::MAX);
const _: () = assert!(ALL_MAPS & ALL_FOREIGN == 0 && ALL_FOREIGN & DEFERRED == 0);
const _: () = assert!(NCHUNKS <= u8::MAX as usize);
// 128 descriptors per leaf page of the slot table.
const _: () = assert!(size_of::<Descriptor>() == 32);

/// An object of a page: its index in the descriptor and its chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Extent {
    pub(super) index: usize,
    pub(super) start: usize,
    pub(super) chunks: usize,
}

impl Extent {
    /// The chunk after the object.
    pub(super) fn end(&self) -> usize {
        self.start.saturating_add(self.chunks)
    }
}

/// A page's objects, in address order.
pub(super) struct Extents {
    items: [Extent; OBJECTS_PER_PAGE],
    len: usize,
}

impl Extents {
    pub(super) fn as_slice(&self) -> &[Extent] {
        self.items.get(..self.len).unwrap_or(&[])
    }
}

/// A run of free chunks of a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Region {
    pub(super) start: usize,
    pub(super) chunks: usize,
}

/// A page's free regions, in address order (at most one more than its
/// objects).
pub(super) struct Regions {
    items: [Region; OBJECTS_PER_PAGE + 1],
    len: usize,
}

impl Regions {
    pub(super) fn as_slice(&self) -> &[Region] {
        self.items.get(..self.len).unwrap_or(&[])
    }
}

/// What the pool keeps of a page, in its slot-table record: 32 bytes, so a
/// table leaf holds 128.
///
/// A free slot's record has no page and no object; its `next` is the next
/// free slot and its `counter` the slot's generation counter (see
/// [`Record`]). A *forwarder* (the slot of a page whose only object
/// migrated to another page) has no page and one object: see
/// [`Descriptor::forwarder`].
///
/// # Invariants
///
/// For a page of a [`Pool`](super::Pool), between calls:
/// * `page` is the page, from the pool's source;
/// * object `i` is live if `chunks[i] != 0`; then it takes chunks
///   `starts[i]..starts[i] + chunks[i]` of the page, at most [`NCHUNKS`];
///   if it is *native*, the handle the pool returned for it names this
///   slot and carries the generation `generations[i]`; if it is *foreign*
///   ([`FOREIGN`] set), its handle names a forwarder in another slot whose
///   number's low 16 bits are `generations[i]`. At least one object is live
///   and no two overlap. A free object has `starts[i] == 0`, a map count of
///   0 and is not foreign;
/// * `counter` is the generation last handed out in the slot;
/// * `state` holds each object's map count ([`MAP_BITS`] bits each, at most
///   [`MAX_MAPS`]), its [`FOREIGN`] bit, and [`DEFERRED`], set exactly when
///   the page's free chunks are not one region, which happens only while
///   an object of the page is mapped;
/// * `prev` and `next` are the slots of the neighbouring pages on the
///   page's unbuddied list ([`NO_SLOT`] at either end), both [`NO_SLOT`] if
///   the page is on no list.
///
/// For a forwarder: `page` is `None`, `counter` the slot's generation
/// counter, exactly one object `i` has `chunks[i] != 0`, with the
/// generation of its handle in `generations[i]`, and `prev` and `next` are
/// the slot and the index of the object where it lives now, a foreign
/// object of that page; `starts` and `state` are 0.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(super) struct Descriptor {
    pub(super) page: Option<NonNull<u8>>,
    pub(super) prev: u32,
    pub(super) next: u32,
    pub(super) counter: u16,
    pub(super) generations: [u16; OBJECTS_PER_PAGE],
    pub(super) starts: [u8; OBJECTS_PER_PAGE],
    pub(super) chunks: [u8; OBJECTS_PER_PAGE],
    state: u16,
}

// SAFETY: A descriptor names a page of the pool, which may move to another
// thread with the pool.
unsafe impl Send for Descriptor {}

impl Record for Descriptor {
    fn occupied(page: NonNull<u8>, generation: u32) -> Self {
        Self {
            page: Some(page),
            ..Self::vacant(NO_SLOT, generation)
        }
    }

    fn vacant(next: u32, generation: u32) -> Self {
        Self {
            page: None,
            prev: NO_SLOT,
            next,
            // The pool's generations are 16 bits.
            counter: generation as u16,
            generations: [0; OBJECTS_PER_PAGE],
            starts: [0; OBJECTS_PER_PAGE],
            chunks: [0; OBJECTS_PER_PAGE],
            state: 0,
        }
    }

    fn page(&self) -> Option<NonNull<u8>> {
        self.page
    }

    fn vacancy(&self) -> Option<(u32, u32)> {
        match self.page {
            None if self.is_empty() => Some((self.next, u32::from(self.counter))),
            _ => None,
        }
    }
}

impl Descriptor {
    /// The forwarder record of the slot of `from`, a page whose only object,
    /// `index`, now lives as object `to_index` of the page in `to_slot`.
    pub(super) fn forwarder(
        from: &Descriptor,
        index: usize,
        to_slot: u32,
        to_index: usize,
    ) -> Self {
        let mut forwarder = Self::vacant(NO_SLOT, u32::from(from.counter));
        if let (Some(g), Some(c), Some(&generation), Some(&chunks)) = (
            forwarder.generations.get_mut(index),
            forwarder.chunks.get_mut(index),
            from.generations.get(index),
            from.chunks.get(index),
        ) {
            *g = generation;
            *c = chunks;
        }
        forwarder.prev = to_slot;
        // `to_index < OBJECTS_PER_PAGE`: lossless.
        forwarder.next = to_index as u32;
        forwarder
    }

    /// For a forwarder, where its object lives: the slot and the object
    /// index; `None` for a page's descriptor or a free slot's record.
    pub(super) fn forwarded(&self) -> Option<(u32, usize)> {
        match self.page {
            None if !self.is_empty() => Some((self.prev, self.next as usize)),
            _ => None,
        }
    }

    /// Whether object `index` is foreign.
    pub(super) fn is_foreign(&self, index: usize) -> bool {
        index < OBJECTS_PER_PAGE && self.state & (FOREIGN << index) != 0
    }

    /// Whether the page has a foreign object.
    pub(super) fn has_foreign(&self) -> bool {
        self.state & ALL_FOREIGN != 0
    }

    /// Makes object `index` a live foreign object at `start`, `chunks`
    /// long, unmapped, reached through the forwarder in slot `from`.
    pub(super) fn add_foreign(&mut self, index: usize, start: usize, chunks: usize, from: u32) {
        if let (Some(generation), Some(s), Some(c)) = (
            self.generations.get_mut(index),
            self.starts.get_mut(index),
            self.chunks.get_mut(index),
        ) {
            // The low 16 bits of the forwarder's slot, for `check`.
            *generation = from as u16;
            // Both at most `NCHUNKS`: lossless.
            *s = start as u8;
            *c = chunks as u8;
            self.state |= FOREIGN << index;
        }
        self.set_maps(index, 0);
    }

    /// Whether object `index` is live.
    pub(super) fn is_live(&self, index: usize) -> bool {
        self.chunks.get(index).is_some_and(|&chunks| chunks != 0)
    }

    /// The generation of object `index`'s handle.
    pub(super) fn generation(&self, index: usize) -> Option<u32> {
        self.generations.get(index).copied().map(u32::from)
    }

    /// The first chunk of object `index`.
    pub(super) fn start(&self, index: usize) -> usize {
        self.starts.get(index).copied().map_or(0, usize::from)
    }

    /// Number of live objects.
    pub(super) fn count(&self) -> usize {
        self.chunks.iter().filter(|&&chunks| chunks != 0).count()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.count() == 0
    }

    /// Whether the page holds one object of a whole page.
    pub(super) fn is_headless(&self) -> bool {
        self.chunks
            .iter()
            .any(|&chunks| usize::from(chunks) == NCHUNKS)
    }

    /// The page's class for the pool's page counts: 0 headless, else its
    /// number of objects.
    pub(super) fn class(&self) -> usize {
        if self.is_headless() {
            0
        } else {
            self.count()
        }
    }

    /// How many times object `index` is mapped.
    pub(super) fn maps(&self, index: usize) -> u32 {
        if index < OBJECTS_PER_PAGE {
            u32::from((self.state >> (index as u32 * MAP_BITS)) & MAP_MASK)
        } else {
            0
        }
    }

    /// Sets the map count of object `index` (at most [`MAX_MAPS`]).
    pub(super) fn set_maps(&mut self, index: usize, maps: u32) {
        if index < OBJECTS_PER_PAGE {
            let shift = index as u32 * MAP_BITS;
            let maps = maps.min(MAX_MAPS) as u16;
            self.state = (self.state & !(MAP_MASK << shift)) | maps << shift;
        }
    }

    /// Whether an object of the page is mapped.
    pub(super) fn is_mapped(&self) -> bool {
        self.state & ALL_MAPS != 0
    }

    /// Whether compaction of the page is deferred.
    pub(super) fn is_deferred(&self) -> bool {
        self.state & DEFERRED != 0
    }

    /// Sets or clears [`DEFERRED`].
    pub(super) fn set_deferred(&mut self, deferred: bool) {
        if deferred {
            self.state |= DEFERRED;
        } else {
            self.state &= !DEFERRED;
        }
    }

    /// Makes object `index` live at `start`, `chunks` long, unmapped, with
    /// the slot's next generation, which it returns.
    pub(super) fn add(&mut self, index: usize, start: usize, chunks: usize) -> u32 {
        self.counter = self.counter.wrapping_add(1);
        if let (Some(generation), Some(s), Some(c)) = (
            self.generations.get_mut(index),
            self.starts.get_mut(index),
            self.chunks.get_mut(index),
        ) {
            *generation = self.counter;
            // Both at most `NCHUNKS`: lossless.
            *s = start as u8;
            *c = chunks as u8;
        }
        self.set_maps(index, 0);
        u32::from(self.counter)
    }

    /// Frees object `index`.
    pub(super) fn remove(&mut self, index: usize) {
        if let (Some(s), Some(c)) = (self.starts.get_mut(index), self.chunks.get_mut(index)) {
            *s = 0;
            *c = 0;
            self.state &= !(FOREIGN << index);
        }
        self.set_maps(index, 0);
    }

    /// The live objects, in address order.
    pub(super) fn extents(&self) -> Extents {
        let mut extents = Extents {
            items: [Extent {
                index: 0,
                start: 0,
                chunks: 0,
            }; OBJECTS_PER_PAGE],
            len: 0,
        };
        for (index, (&start, &chunks)) in self.starts.iter().zip(&self.chunks).enumerate() {
            if chunks == 0 {
                continue;
            }
            let new = Extent {
                index,
                start: usize::from(start),
                chunks: usize::from(chunks),
            };
            // Insertion sort by start.
            let mut at = extents.len;
            while at > 0
                && extents
                    .items
                    .get(at - 1)
                    .is_some_and(|e| e.start > new.start)
            {
                extents.items.swap(at - 1, at);
                at -= 1;
            }
            if let Some(slot) = extents.items.get_mut(at) {
                *slot = new;
                extents.len += 1;
            }
        }
        extents
    }

    /// The free regions of the page, in address order.
    pub(super) fn free_regions(&self) -> Regions {
        let mut regions = Regions {
            items: [Region {
                start: 0,
                chunks: 0,
            }; OBJECTS_PER_PAGE + 1],
            len: 0,
        };
        let mut push = |start: usize, end: usize| {
            if end > start {
                if let Some(region) = regions.items.get_mut(regions.len) {
                    *region = Region {
                        start,
                        chunks: end - start,
                    };
                    regions.len += 1;
                }
            }
        };
        let mut at = 0;
        for extent in self.extents().as_slice() {
            push(at, extent.start);
            at = at.max(extent.end());
        }
        push(at, NCHUNKS);
        regions
    }

    /// The largest number of free chunks in one region.
    pub(super) fn largest_free(&self) -> usize {
        let regions = self.free_regions();
        regions
            .as_slice()
            .iter()
            .map(|region| region.chunks)
            .max()
            .unwrap_or(0)
    }

    /// Whether the page's free chunks, if any, are one region.
    pub(super) fn is_contiguous(&self) -> bool {
        self.free_regions().len <= 1
    }

    /// The unbuddied list of the page: its largest free region, if it has
    /// room for another object; `None` if it belongs on no list.
    pub(super) fn list(&self) -> Option<usize> {
        if self.count() >= OBJECTS_PER_PAGE {
            return None;
        }
        Some(self.largest_free()).filter(|&chunks| chunks > 0)
    }

    /// Where a new object of `chunks` chunks goes: a free object index and
    /// the first chunk, in the smallest free region that holds it (the
    /// first of equals), at the region's start, or right-justified at the
    /// end of the page if the region reaches the end but not the start.
    /// `None` if no region holds it or the page has three objects.
    pub(super) fn fit(&self, chunks: usize) -> Option<(usize, usize)> {
        let index = self.chunks.iter().position(|&c| c == 0)?;
        let regions = self.free_regions();
        let region = regions
            .as_slice()
            .iter()
            .filter(|region| region.chunks >= chunks)
            .min_by_key(|region| region.chunks)?;
        let start = if region.start != 0 && region.start + region.chunks == NCHUNKS {
            NCHUNKS - chunks
        } else {
            region.start
        };
        Some((index, start))
    }

    /// The starts of the objects after compaction: the layout, among those
    /// with the free chunks in one region (the objects before it packed
    /// from chunk 0, those after it packed against the end of the page, in
    /// their order), that moves the fewest chunks; of equals, the first
    /// with the free region between two objects, else after them, else
    /// before them.
    pub(super) fn compacted(&self) -> [u8; OBJECTS_PER_PAGE] {
        let extents = self.extents();
        let extents = extents.as_slice();
        let count = extents.len();
        let mut best = (usize::MAX, self.starts);
        for gap in (1..count).chain([count, 0]) {
            let (left, right) = (
                extents.get(..gap).unwrap_or(&[]),
                extents.get(gap..).unwrap_or(&[]),
            );
            let mut starts = self.starts;
            let mut moved = 0;
            let mut place = |extent: &Extent, start: usize| {
                if start != extent.start {
                    moved += extent.chunks;
                }
                if let Some(s) = starts.get_mut(extent.index) {
                    // At most `NCHUNKS`: lossless.
                    *s = start as u8;
                }
            };
            let mut at = 0;
            for extent in left {
                place(extent, at);
                at += extent.chunks;
            }
            let mut at = NCHUNKS;
            for extent in right.iter().rev() {
                at = at.saturating_sub(extent.chunks);
                place(extent, at);
            }
            if moved < best.0 {
                best = (moved, starts);
            }
        }
        best.1
    }
}
