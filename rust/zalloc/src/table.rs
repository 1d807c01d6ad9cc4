// SPDX-License-Identifier: GPL-2.0

//! The slot table; see *Handles and the slot table* in the
//! [parent module](super).

use core::marker::PhantomData;
use core::mem::size_of;
use core::ptr::NonNull;

use super::{new_pool_tag, AllocError, PageSource, PAGE_SIZE};

/// "No slot": the end of a list. Never a slot number (slots are below
/// `2^31`).
pub const NO_SLOT: u32 = u32::MAX;

/// An entry of an interior node: a child node, or null.
type Link = *mut u8;

/// log2 of the links per interior node (one page).
const LINK_SHIFT: u32 = (PAGE_SIZE / size_of::<Link>()).trailing_zeros();
/// Links per interior node.
const LINKS: usize = 1 << LINK_SHIFT;
/// Levels of the table: interior nodes at `0..LEAF`, leaves at `LEAF`.
const LEVELS: usize = 3;
/// The level of the leaves.
const LEAF: usize = LEVELS - 1;

/// Bits of a slot number in a table whose records are `record_size` bytes
/// (a power of two): `log2(PAGE_SIZE / record_size)` for the leaves, 9 for
/// each interior level.
pub const fn slot_bits(record_size: usize) -> u32 {
    let leaf_shift = match PAGE_SIZE.checked_div(record_size) {
        Some(records) => records.trailing_zeros(),
        None => 0,
    };
    LINK_SHIFT * LEAF as u32 + leaf_shift
}

/// A record of a slot-table leaf: what a pool keeps of a page in its slot,
/// or, for a free slot, the link of the free list and the slot's generation
/// counter.
///
/// Its size must be a power of two no larger than [`PAGE_SIZE`] (checked
/// when the table is built), so that a leaf page holds a whole number of
/// aligned records. It is `Send` (a table moves to another thread with its
/// records).
pub trait Record: Copy + Send {
    /// The record of a slot that has just taken `page`, the slot's
    /// generation counter being `generation`.
    fn occupied(page: NonNull<u8>, generation: u32) -> Self;

    /// The record of a free slot whose successor on the free list is `next`
    /// ([`NO_SLOT`] at the end) and whose generation counter is
    /// `generation`.
    fn vacant(next: u32, generation: u32) -> Self;

    /// The page of an occupied slot's record (made by [`Record::occupied`]
    /// and changed since in place), `None` for a free slot's and for a
    /// *pageless* occupied slot's (see [`RadixTable::release_page`]).
    fn page(&self) -> Option<NonNull<u8>>;

    /// `Some((next, generation))` for a free slot's record (made by
    /// [`Record::vacant`]), `None` for an occupied slot's.
    fn vacancy(&self) -> Option<(u32, u32)>;
}

/// A radix tree of three levels of pages from the page source `P`,
/// mapping slot numbers to records `R` of pages from `P`; see the
/// [module documentation](super).
///
/// The table owns the source, and gets from it and returns to it both its
/// own pages (its nodes) and the pages in its slots, so they cannot go to
/// another source. Dropping the table frees nothing: [`Self::clear`] frees
/// its nodes, [`Self::remove_page`] a slot's page.
///
/// The table also has the pool tag of the handles that name its slots
/// ([`Self::tag`]), renewed when it is cleared.
///
/// # Invariants
///
/// * `root` and every non-null link of an interior node (levels `0..LEAF`)
///   is a page from `source`, used only as a node of the next level: an
///   interior node of `LINKS` links, or a leaf of [`Self::RECORDS`]
///   records. `node_pages` counts these nodes.
/// * Slots `0..high_water` have their leaf, and their records are
///   initialized: an occupied slot's or a free slot's (see [`Record`]).
///   Links of slots at or above `high_water` are null.
///   `high_water <= Self::SLOTS`.
/// * `free_head` is the first free slot ([`NO_SLOT`] if none); each free
///   slot's record names the next one, and every free slot is on that list,
///   once.
/// * The page of each occupied slot's record came from `source` and has
///   not been freed.
/// * `tag` is not 0.
pub struct RadixTable<R: Record, P: PageSource> {
    source: P,
    tag: u16,
    root: Option<NonNull<u8>>,
    high_water: u32,
    free_head: u32,
    node_pages: u64,
    _records: PhantomData<R>,
}

// SAFETY: The table owns its nodes exclusively; what else it holds (the
// records, `Send`, and the source) may move to another thread.
unsafe impl<R: Record, P: PageSource + Send> Send for RadixTable<R, P> {}

/// The first slot of the first non-empty list from `from` up, among the
/// lists of slots whose first slots are `heads` ([`NO_SLOT`] for an empty
/// list): the pools' choice of a page with at least `from` free chunks.
pub fn first_listed(heads: &[u32], from: usize) -> Option<u32> {
    let heads = heads.get(from..)?;
    heads.iter().copied().find(|&slot| slot != NO_SLOT)
}

impl<R: Record, P: PageSource> RadixTable<R, P> {
    /// log2 of the records per leaf.
    const LEAF_SHIFT: u32 = (PAGE_SIZE / size_of::<R>()).trailing_zeros();

    /// Records per leaf page.
    pub const RECORDS: usize = 1 << Self::LEAF_SHIFT;

    /// Bits of a slot number.
    pub const SLOT_BITS: u32 = slot_bits(size_of::<R>());

    /// Number of slots: the most pages a pool using the table can hold.
    pub const SLOTS: usize = 1 << Self::SLOT_BITS;

    /// Records tile a page, aligned (a record's alignment never exceeds its
    /// size).
    const RECORDS_TILE_A_PAGE: () =
        assert!(size_of::<R>().is_power_of_two() && Self::RECORDS * size_of::<R>() == PAGE_SIZE);

    /// An empty table that takes its pages from `source`, with a new tag.
    /// Allocates nothing.
    pub fn new(source: P) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::RECORDS_TILE_A_PAGE;
        Self {
            source,
            tag: new_pool_tag(),
            root: None,
            high_water: 0,
            free_head: NO_SLOT,
            node_pages: 0,
            _records: PhantomData,
        }
    }

    /// The page source.
    pub fn source(&self) -> &P {
        &self.source
    }

    /// The pool tag of the handles of the table's slots (never 0).
    pub fn tag(&self) -> u16 {
        self.tag
    }

    /// Number of pages of the table.
    pub fn node_pages(&self) -> u64 {
        self.node_pages
    }

    /// The number of slots handed out so far: slots `0..high_water()` have
    /// a record.
    pub fn high_water(&self) -> u32 {
        self.high_water
    }

    /// The first free slot, [`NO_SLOT`] if none; the others follow through
    /// [`Record::vacancy`].
    pub fn free_head(&self) -> u32 {
        self.free_head
    }

    /// The record of `slot`, occupied or free; `None` for a slot the table
    /// never handed out.
    pub fn get(&self, slot: u32) -> Option<&R> {
        let record = self.record(slot)?;
        // SAFETY: `record` points to the initialized record of a slot below
        // the high-water mark in a live leaf, aligned (see `record`); the
        // table, borrowed for the reference's lifetime, alone accesses it.
        Some(unsafe { &*record.as_ptr() })
    }

    /// Applies `change` to the record of the occupied `slot` and returns
    /// whether it did: not if the slot is free or was never handed out, nor
    /// if `change` would change the record's page (the record is then left
    /// as it was). Slots are taken and freed with [`Self::insert_page`] and
    /// [`Self::remove_page`] only.
    pub fn update(&mut self, slot: u32, change: impl FnOnce(&mut R)) -> bool {
        let Some(record) = self.record(slot) else {
            return false;
        };
        // SAFETY: `record` points to the initialized record of a slot below
        // the high-water mark in a live leaf, aligned (see `record`); the
        // table, borrowed mutably, alone accesses it.
        let old = unsafe { record.as_ptr().read() };
        let mut new = old;
        change(&mut new);
        if old.page().is_none() || new.page() != old.page() {
            return false;
        }
        // SAFETY: As above.
        unsafe { record.as_ptr().write(new) };
        true
    }

    /// Gets a page from the source and puts it in a free slot (the last
    /// freed, else a new one for which the table grows), both with `flags`;
    /// the slot's record is [`Record::occupied`] with the generation
    /// counter the free slot kept (0 for a new slot). Returns the slot, the
    /// generation and the page, or [`AllocError::NoMemory`], the table
    /// unchanged, if the source has not enough pages or all
    /// [`Self::SLOTS`] slots are taken.
    pub fn insert_page(&mut self, flags: P::Flags) -> Result<(u32, u32, NonNull<u8>), AllocError> {
        let page = self.source.alloc_page(flags).ok_or(AllocError::NoMemory)?;
        let taken = if self.free_head == NO_SLOT {
            self.grow(flags).map(|slot| (slot, 0))
        } else {
            let slot = self.free_head;
            let vacancy = self.get(slot).and_then(Record::vacancy);
            vacancy.map(|(next, generation)| {
                self.free_head = next;
                (slot, generation)
            })
        };
        let Some((slot, generation)) = taken else {
            // SAFETY: `page` came from `alloc_page` above and nothing refers
            // to it.
            unsafe { self.source.free_page(page) };
            return Err(AllocError::NoMemory);
        };
        self.set(slot, R::occupied(page, generation));
        Ok((slot, generation, page))
    }

    /// Frees the occupied `slot`, which keeps the generation counter
    /// `generation`, and its page; returns whether it did (not if the slot
    /// is free or was never handed out).
    ///
    /// The page must hold nothing anybody uses any more.
    pub fn remove_page(&mut self, slot: u32, generation: u32) -> bool {
        let Some(page) = self.get(slot).and_then(Record::page) else {
            return false;
        };
        self.set(slot, R::vacant(self.free_head, generation));
        self.free_head = slot;
        // SAFETY: The page came from `source` and was not freed (type
        // invariant); the table no longer refers to it, and the caller uses
        // it no more.
        unsafe { self.source.free_page(page) };
        true
    }

    /// Frees the page of the occupied `slot`, which stays occupied with
    /// `record`, a record without page that is not a free slot's (a
    /// *pageless* slot, for whatever the pool keeps there instead); returns
    /// whether it did (not if the slot has no page or `record` is not
    /// pageless). [`Self::update`] does not change a pageless slot;
    /// [`Self::vacate`] frees it.
    ///
    /// The page must hold nothing anybody uses any more.
    pub fn release_page(&mut self, slot: u32, record: R) -> bool {
        let Some(page) = self.get(slot).and_then(Record::page) else {
            return false;
        };
        if record.page().is_some() || record.vacancy().is_some() {
            return false;
        }
        self.set(slot, record);
        // SAFETY: As in `remove_page`.
        unsafe { self.source.free_page(page) };
        true
    }

    /// Frees the pageless occupied `slot` (see [`Self::release_page`]),
    /// which keeps the generation counter `generation`; returns whether it
    /// did (not if the slot is free, has a page or was never handed out).
    pub fn vacate(&mut self, slot: u32, generation: u32) -> bool {
        match self.get(slot) {
            Some(record) if record.page().is_none() && record.vacancy().is_none() => {
                self.set(slot, R::vacant(self.free_head, generation));
                self.free_head = slot;
                true
            }
            _ => false,
        }
    }

    /// Frees all pages of the table (not the pages in its slots, which are
    /// left to whoever uses them) and empties it. If it had slots, it takes
    /// a new tag: handles of its old slots are another pool's now.
    pub fn clear(&mut self) {
        if let Some(root) = self.root.take() {
            free_subtree(&self.source, root, 0);
            self.tag = new_pool_tag();
        }
        self.high_water = 0;
        self.free_head = NO_SLOT;
        self.node_pages = 0;
    }

    /// The index of `slot`'s entry in its node at `level`.
    fn index(slot: u32, level: usize) -> usize {
        let slot = slot as usize;
        if level >= LEAF {
            slot & (Self::RECORDS - 1)
        } else {
            let shift = Self::LEAF_SHIFT + (LEAF - 1 - level) as u32 * LINK_SHIFT;
            (slot >> shift) & (LINKS - 1)
        }
    }

    /// Writes the record of `slot`, if below the high-water mark.
    fn set(&mut self, slot: u32, value: R) {
        if let Some(record) = self.record(slot) {
            // SAFETY: `record` points into a live leaf, aligned (see
            // `record`); the table, borrowed mutably, alone accesses it. A
            // write: the record may not be initialized yet (a new slot).
            unsafe { record.as_ptr().write(value) };
        }
    }

    /// Pointer to the record of `slot` in its leaf, if below the
    /// high-water mark. The record is aligned: the leaf is a page, and
    /// records tile it.
    fn record(&self, slot: u32) -> Option<NonNull<R>> {
        if slot >= self.high_water {
            return None;
        }
        match self.deepest_node(slot)? {
            (LEAF, leaf) => {
                // SAFETY: A leaf is a page of `RECORDS` records (type
                // invariant) and `index` is below `RECORDS`, so the record
                // is inside the page, hence not null.
                Some(unsafe {
                    NonNull::new_unchecked(leaf.cast::<R>().as_ptr().add(Self::index(slot, LEAF)))
                })
            }
            _ => None,
        }
    }

    /// The deepest existing node on the path from the root to `slot`'s leaf,
    /// and its level ([`LEAF`] if the leaf exists); `None` without root.
    fn deepest_node(&self, slot: u32) -> Option<(usize, NonNull<u8>)> {
        let mut node = self.root?;
        for level in 0..LEAF {
            // SAFETY: `node` is an interior node: a page of `LINKS` links
            // (type invariant), and `index` is below `LINKS`.
            let child = unsafe {
                node.cast::<Link>()
                    .as_ptr()
                    .add(Self::index(slot, level))
                    .read()
            };
            match NonNull::new(child) {
                Some(child) => node = child,
                None => return Some((level, node)),
            }
        }
        Some((LEAF, node))
    }

    /// Hands out the slot at the high-water mark, first adding the nodes its
    /// path lacks. Returns `None`, the table unchanged, if `source` has not
    /// enough pages or the table is full. The slot's record is not
    /// initialized: the caller [sets](Self::set) it.
    fn grow(&mut self, flags: P::Flags) -> Option<u32> {
        let slot = self.high_water;
        if slot as usize >= Self::SLOTS {
            return None;
        }
        // Nodes are added top-down, so the missing ones are those below the
        // deepest existing node. Get them all before changing anything.
        let missing = match self.deepest_node(slot) {
            None => LEVELS,
            Some((level, _)) => LEAF - level,
        };
        let mut fresh = [None; LEVELS];
        for page in fresh.iter_mut().take(missing) {
            *page = self.source.alloc_page(flags);
            if page.is_none() {
                break;
            }
        }
        if fresh.iter().take(missing).any(Option::is_none) {
            for page in fresh.into_iter().flatten() {
                // SAFETY: `page` came from `alloc_page` above and nothing
                // refers to it.
                unsafe { self.source.free_page(page) };
            }
            return None;
        }
        for node in fresh.into_iter().flatten() {
            let parent = self.deepest_node(slot);
            let level = parent.map_or(0, |(level, _)| level + 1);
            if level < LEAF {
                // SAFETY: A page from the source is `PAGE_SIZE` bytes,
                // aligned, writable and ours: room for `LINKS` links, which
                // are null when all-zero.
                unsafe { node.cast::<Link>().as_ptr().write_bytes(0, LINKS) };
            }
            match parent {
                None => self.root = Some(node),
                // SAFETY: `parent` is an interior node (the leaf does not
                // exist yet), a page of `LINKS` links, and `index` is below
                // `LINKS`.
                Some((level, parent)) => unsafe {
                    parent
                        .cast::<Link>()
                        .as_ptr()
                        .add(Self::index(slot, level))
                        .write(node.as_ptr());
                },
            }
            self.node_pages = self.node_pages.wrapping_add(1);
        }
        self.high_water = slot + 1;
        Some(slot)
    }
}

/// Frees `node`, at `level`, and the nodes below it.
fn free_subtree<P: PageSource>(source: &P, node: NonNull<u8>, level: usize) {
    if level < LEAF {
        for i in 0..LINKS {
            // SAFETY: `node` is an interior node: a page of `LINKS` links.
            let child = unsafe { node.cast::<Link>().as_ptr().add(i).read() };
            if let Some(child) = NonNull::new(child) {
                free_subtree(source, child, level + 1);
            }
        }
    }
    // SAFETY: Table nodes come from `source`, and the caller drops the table
    // this node belongs to.
    unsafe { source.free_page(node) };
}
