// SPDX-License-Identifier: GPL-2.0

//! The spans' reverse maps: which object slot is at each index of a span,
//! for compaction (which moves a span's objects) and the invariant
//! checker. An object's record says where the object is; its span's map
//! says which record names each of its live indices (the span's bitmap
//! says which are live).
//!
//! A span's map is a *block* of 4 bytes an object of its class, rounded up
//! to one of [`KINDS`] entries ([`MapBlock`]), cut from pages of the
//! pool's by kind ([`Maps`], a small slab): a page holds blocks of one
//! kind after a small header ([`PageHead`]), chains its free blocks
//! through their first entry and counts its used ones; it is on its kind's
//! list while it has a free block, and goes back to the pool (which keeps
//! it as a spare page or gives it to the source) when its last block does.
//! The pages count in the pool's table pages. Kinds rather than classes:
//! a pool with objects of many sizes keeps a page with free blocks for
//! each kind it uses (16 at most), not for each class (one for each of the
//! mixed benchmark's classes cost more pages than the smaller object
//! records saved). Nobody reads a map without the lock: a block is freed
//! at once.

use core::mem::size_of;
use core::ptr::NonNull;

use super::classes::{CLASSES, MAX_SPAN_OBJECTS};
use crate::zalloc::PAGE_SIZE;

/// The entries of a block of each kind: powers of two and one and a half
/// times them, so that a map wastes at most a third of its block.
pub(super) const KINDS: [u16; 16] = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256];

const _: () = assert!(KINDS[KINDS.len() - 1] as usize == MAX_SPAN_OBJECTS);

/// The kind of the blocks of class `class`: the smallest that has an entry
/// for each of its objects.
fn kind_of(class: usize) -> Option<usize> {
    let objects = CLASSES.get(class)?.objects;
    KINDS.iter().position(|&k| k >= objects)
}

/// A span's reverse map: a block of [`Maps`] of `u32` object slots, one
/// for each object of the span's class (and a few more, to its kind's).
///
/// # Invariants
///
/// `0` points to the first of as many aligned `u32` as the entries of the
/// kind of the class it was made for ([`Maps::alloc`]), at least its
/// objects, in a page of the [`Maps`] that made it, until it is given back
/// ([`Maps::free`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct MapBlock(NonNull<u32>);

impl MapBlock {
    /// Records that the object at `index` of the span is the one in `slot`.
    ///
    /// # Safety
    ///
    /// The block has not been given back ([`Maps::free`]), nothing else
    /// reads or writes it meanwhile, and `index` is below the objects of
    /// its class.
    pub(super) unsafe fn set(self, index: u32, slot: u32) {
        // SAFETY: The caller's, and the type invariant: entry `index` is
        // in the block, aligned.
        unsafe { self.0.as_ptr().add(index as usize).write(slot) }
    }

    /// The object slot recorded at `index` ([`MapBlock::set`]).
    ///
    /// # Safety
    ///
    /// As [`MapBlock::set`].
    pub(super) unsafe fn get(self, index: u32) -> u32 {
        // SAFETY: As in `set`.
        unsafe { self.0.as_ptr().add(index as usize).read() }
    }

    /// The page the block is in (the pages are aligned).
    fn page(self) -> NonNull<u8> {
        let page = self.0.cast::<u8>();
        let offset = page.as_ptr() as usize % PAGE_SIZE;
        // SAFETY: The block is in a page (type invariant), `offset` bytes
        // from its start: the result points to the page, not null.
        unsafe { NonNull::new_unchecked(page.as_ptr().sub(offset)) }
    }
}

// SAFETY: A block is memory of the pool's pages, which may move to another
// thread with the pool.
unsafe impl Send for MapBlock {}

/// The header of a page of blocks, at its start.
#[derive(Clone, Copy)]
#[repr(C)]
struct PageHead {
    /// The next page of its kind's list (of pages with a free block).
    next: Option<NonNull<u8>>,
    /// The previous page of that list.
    prev: Option<NonNull<u8>>,
    /// The first free block below `fresh` ([`NONE`] if none); each free
    /// block's first entry holds the next.
    free: u32,
    /// Blocks handed out, not given back.
    used: u16,
    /// Blocks ever handed out: from `fresh` on, all are free (and not
    /// chained, so that a new page costs no loop).
    fresh: u16,
    /// The kind of the page's blocks.
    kind: u8,
    _pad: [u8; 7],
}

/// [`PageHead::free`] of a page with no chained free block.
const NONE: u32 = u32::MAX;
/// Bytes before a page's first block.
const HEAD_BYTES: usize = size_of::<PageHead>();

const _: () = assert!(HEAD_BYTES == 32 && HEAD_BYTES % 8 == 0);

/// Bytes of a block of kind `kind` (`None` for no kind).
fn block_bytes(kind: usize) -> Option<usize> {
    KINDS.get(kind).map(|&k| usize::from(k) * size_of::<u32>())
}

/// Blocks of a page of kind `kind`.
fn blocks_per_page(kind: usize) -> usize {
    block_bytes(kind).map_or(0, |b| (PAGE_SIZE - HEAD_BYTES) / b)
}

// A page holds a block of the largest (up to 256 objects: 1 KiB), and
// counts its blocks in a `u16`.
const _: () = assert!((PAGE_SIZE - HEAD_BYTES) / 4 <= u16::MAX as usize);

/// The pool's pages of map blocks, by kind; see the
/// [module documentation](self).
///
/// # Invariants
///
/// * `partial[k]` is the first of a list, linked both ways through the
///   pages' headers, of the pages of kind `k`'s blocks that have a free
///   block; every page a block of which is out (its `used > 0`) or that
///   is listed was given by [`Maps::add_page`], and is in none of the
///   pool's spans, its spare or its tables.
/// * In each page, `used` blocks are out, the blocks below `fresh` not
///   out are the chain from `free`, `used <= fresh <=` the kind's blocks
///   a page; a page with no block out is not kept.
/// * `pages` is the pages kept, `blocks` the blocks out.
pub(super) struct Maps {
    partial: [Option<NonNull<u8>>; KINDS.len()],
    pages: u64,
    blocks: u64,
}

// SAFETY: The pages are the pool's alone (type invariant); they may move
// to another thread with the pool.
unsafe impl Send for Maps {}

impl Maps {
    /// Writes an empty `Maps` at `slot`, in place (the array is too large
    /// for a kernel stack temporary).
    ///
    /// # Safety
    ///
    /// `slot` is valid for writes and aligned.
    pub(super) unsafe fn init_at(slot: *mut Maps) {
        // SAFETY: The caller's: each field's place is inside `*slot`.
        unsafe {
            let partial = core::ptr::addr_of_mut!((*slot).partial).cast::<Option<NonNull<u8>>>();
            for i in 0..KINDS.len() {
                partial.add(i).write(None);
            }
            core::ptr::addr_of_mut!((*slot).pages).write(0);
            core::ptr::addr_of_mut!((*slot).blocks).write(0);
        }
    }

    /// Pages kept.
    pub(super) fn pages(&self) -> u64 {
        self.pages
    }

    /// Whether class `class` has a free block: [`Maps::alloc`] then takes
    /// no page.
    pub(super) fn has_room(&self, class: usize) -> bool {
        kind_of(class).is_some_and(|k| self.partial.get(k).is_some_and(Option::is_some))
    }

    /// A block of class `class`, `None` if its pages have none free (the
    /// caller then gives one, [`Maps::add_page`]).
    pub(super) fn alloc(&mut self, class: usize) -> Option<MapBlock> {
        let kind = kind_of(class)?;
        let page = (*self.partial.get(kind)?)?;
        let bytes = block_bytes(kind)?;
        let per_page = blocks_per_page(kind);
        let head = page.cast::<PageHead>().as_ptr();
        // SAFETY: A listed page is one of ours, with its header at its
        // start (type invariant); we hold `&mut self`.
        let mut h = unsafe { head.read() };
        let index = if h.free != NONE {
            h.free
        } else if usize::from(h.fresh) < per_page {
            h.fresh = h.fresh.wrapping_add(1);
            u32::from(h.fresh).wrapping_sub(1)
        } else {
            // Not with the invariants: a listed page has a free block.
            return None;
        };
        let offset = HEAD_BYTES + index as usize * bytes;
        if offset + bytes > PAGE_SIZE {
            return None;
        }
        // SAFETY: `offset` is inside the page, 4-aligned (the header and
        // the blocks are multiples of 4 bytes).
        let block = unsafe { NonNull::new_unchecked(page.as_ptr().add(offset).cast::<u32>()) };
        if h.free == index {
            // SAFETY: A chained free block's first entry holds the next.
            h.free = unsafe { block.as_ptr().read() };
        }
        h.used = h.used.wrapping_add(1);
        let full = usize::from(h.used) == per_page;
        // SAFETY: As above.
        unsafe { head.write(h) };
        if full {
            self.unlist(page, kind);
        }
        self.blocks = self.blocks.wrapping_add(1);
        Some(MapBlock(block))
    }

    /// Takes `page` for blocks of class `class`'s kind: the first of its
    /// list.
    ///
    /// # Safety
    ///
    /// `page` is a page of the pool's source, aligned, that holds nothing
    /// and that nothing else refers to, until [`Maps::free`] gives it
    /// back.
    pub(super) unsafe fn add_page(&mut self, page: NonNull<u8>, class: usize) {
        // Every class has a kind (the last has an entry for each of the
        // most objects a span has).
        let kind = kind_of(class).unwrap_or(KINDS.len() - 1);
        let h = PageHead {
            next: None,
            prev: None,
            free: NONE,
            used: 0,
            fresh: 0,
            kind: kind as u8,
            _pad: [0; 7],
        };
        // SAFETY: The caller's: the page is ours, aligned for the header.
        unsafe { page.cast::<PageHead>().as_ptr().write(h) };
        self.pages = self.pages.wrapping_add(1);
        self.list(page, kind);
    }

    /// Gives back `block`, of class `class`; returns its page if that was
    /// its last block out (the caller frees it or keeps it as a spare).
    ///
    /// # Safety
    ///
    /// `block` came from [`Maps::alloc`] of this `Maps` for class `class`,
    /// and is not used afterwards.
    pub(super) unsafe fn free(&mut self, block: MapBlock, class: usize) -> Option<NonNull<u8>> {
        let page = block.page();
        let kind = kind_of(class)?;
        let bytes = block_bytes(kind)?;
        let head = page.cast::<PageHead>().as_ptr();
        // SAFETY: The caller's: the block's page is one of ours (type
        // invariant), with its header at its start.
        let mut h = unsafe { head.read() };
        let index = (block.0.as_ptr() as usize % PAGE_SIZE).wrapping_sub(HEAD_BYTES) / bytes;
        let was_full = usize::from(h.used) == blocks_per_page(kind);
        h.used = h.used.wrapping_sub(1);
        self.blocks = self.blocks.wrapping_sub(1);
        if h.used == 0 {
            if !was_full {
                self.unlist(page, kind);
            }
            self.pages = self.pages.wrapping_sub(1);
            return Some(page);
        }
        // SAFETY: The block is ours again: its first entry chains it.
        unsafe { block.0.as_ptr().write(h.free) };
        h.free = index as u32;
        // SAFETY: As above.
        unsafe { head.write(h) };
        if was_full {
            self.list(page, kind);
        }
        None
    }

    /// Puts `page` (of kind `kind`, on no list) first on its kind's list.
    fn list(&mut self, page: NonNull<u8>, kind: usize) {
        let Some(first) = self.partial.get_mut(kind) else {
            return;
        };
        let old = first.replace(page);
        // SAFETY: Both are our pages (type invariant), headers at their
        // starts; we hold `&mut self`.
        unsafe {
            let head = page.cast::<PageHead>().as_ptr();
            (*head).next = old;
            (*head).prev = None;
            if let Some(old) = old {
                (*old.cast::<PageHead>().as_ptr()).prev = Some(page);
            }
        }
    }

    /// Takes `page` (of kind `kind`) off its kind's list.
    fn unlist(&mut self, page: NonNull<u8>, kind: usize) {
        // SAFETY: As in `list`.
        unsafe {
            let head = page.cast::<PageHead>().as_ptr();
            let (prev, next) = ((*head).prev, (*head).next);
            match prev {
                Some(prev) => (*prev.cast::<PageHead>().as_ptr()).next = next,
                None => {
                    if let Some(first) = self.partial.get_mut(kind) {
                        *first = next;
                    }
                }
            }
            if let Some(next) = next {
                (*next.cast::<PageHead>().as_ptr()).prev = prev;
            }
            (*head).next = None;
            (*head).prev = None;
        }
    }

    /// Checks the lists of pages with a free block: linked both ways, of
    /// their kind, counts in range, chains of free blocks as long as the
    /// blocks not out below `fresh`; and that `blocks` blocks (the spans'
    /// with a map out of their record) are out. Returns what is wrong
    /// first. For tests.
    pub(super) fn check(&self, blocks: u64) -> Result<(), &'static str> {
        if self.blocks != blocks {
            return Err("the map blocks out are not the spans'");
        }
        for (kind, &first) in self.partial.iter().enumerate() {
            let per_page = blocks_per_page(kind);
            let (mut page, mut prev, mut n) = (first, None, 0u64);
            while let Some(p) = page {
                // SAFETY: A listed page is ours, header at its start.
                let h = unsafe { p.cast::<PageHead>().as_ptr().read() };
                n += 1;
                if n > self.pages {
                    return Err("a list of map pages has a cycle");
                }
                if usize::from(h.kind) != kind || h.prev != prev {
                    return Err("a map page is on another kind's list, or linked wrong");
                }
                if h.used == 0
                    || usize::from(h.used) >= per_page
                    || h.used > h.fresh
                    || usize::from(h.fresh) > per_page
                {
                    return Err("a listed map page's counts are wrong");
                }
                Self::check_chain(p, &h, kind)?;
                prev = page;
                page = h.next;
            }
        }
        Ok(())
    }

    /// Checks that the chain of free blocks of `page` (header `h`) has the
    /// blocks below `fresh` that are not out, each once.
    fn check_chain(page: NonNull<u8>, h: &PageHead, kind: usize) -> Result<(), &'static str> {
        let bytes = block_bytes(kind).ok_or("a map page of no kind")?;
        let want = h.fresh - h.used;
        let (mut index, mut n) = (h.free, 0u16);
        while index != NONE {
            if index >= u32::from(h.fresh) || n >= want {
                return Err("a map page's chain of free blocks is wrong");
            }
            n += 1;
            // SAFETY: `index` is below `fresh`: a block of the page.
            index = unsafe {
                page.as_ptr()
                    .add(HEAD_BYTES + index as usize * bytes)
                    .cast::<u32>()
                    .read()
            };
        }
        if n != want {
            return Err("a map page's chain of free blocks misses a block");
        }
        Ok(())
    }

    /// Checks that `block`, of a span of class `class`, is out: in a page
    /// of that class's kind, at a block's place below `fresh`.
    pub(super) fn check_block(block: MapBlock, class: usize) -> Result<(), &'static str> {
        let page = block.page();
        let kind = kind_of(class).ok_or("a span's class has no kind of map")?;
        let bytes = block_bytes(kind).ok_or("a span's map of no kind")?;
        // SAFETY: A span's block is out (the pool's invariant): its page
        // is ours, header at its start.
        let h = unsafe { page.cast::<PageHead>().as_ptr().read() };
        let offset = (block.0.as_ptr() as usize % PAGE_SIZE)
            .checked_sub(HEAD_BYTES)
            .ok_or("a span's map is in a page's header")?;
        if usize::from(h.kind) != kind
            || offset % bytes != 0
            || offset / bytes >= usize::from(h.fresh)
        {
            return Err("a span's map is not a block of its class's kind");
        }
        Ok(())
    }
}
