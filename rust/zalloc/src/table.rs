// SPDX-License-Identifier: GPL-2.0

//! The slot table; see *Handles and the slot table* in the
//! [parent module](super).

use core::marker::PhantomData;
use core::mem::{align_of, size_of};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, AtomicU16, Ordering};

use super::{new_pool_tag, AllocError, PageSource, PAGE_SIZE};

/// "No slot": the end of a list. Never a slot number (slots are below
/// `2^31`).
pub const NO_SLOT: u32 = u32::MAX;

/// An entry of an interior node: a child node, or null, with [`FREE_BIT`]
/// in its address's low bits, which are otherwise 0 (a node is a page).
type Link = *mut u8;

/// The bit of a [`Link`] that says the child has a free slot: in a link to
/// a leaf, the leaf has one; in a link to an interior node, one of its
/// links has this bit.
const FREE_BIT: usize = 1;

/// log2 of the links per interior node (one page).
const LINK_SHIFT: u32 = (PAGE_SIZE / size_of::<Link>()).trailing_zeros();
/// Links per interior node.
const LINKS: usize = 1 << LINK_SHIFT;
/// Levels of the table: interior nodes at `0..LEAF`, leaves at `LEAF`.
const LEVELS: usize = 3;
/// The level of the leaves.
const LEAF: usize = LEVELS - 1;

/// The step between the first generations of two leaves made in turn (odd,
/// so that they go through all `2^32` values; the golden ratio, so that
/// their low bits, which are all a pool keeps, differ too).
const LEAF_GENERATION_STEP: u32 = 0x9e37_79b9;

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

/// The number of slots of a table whose records are `record_size` bytes (a
/// power of two): the most pages a pool using it holds. A leaf has one
/// slot fewer than records (its header takes record 0's place).
pub const fn capacity(record_size: usize) -> usize {
    let leaf_slots = match PAGE_SIZE.checked_div(record_size) {
        Some(records) => records.saturating_sub(1),
        None => 0,
    };
    leaf_slots << (LINK_SHIFT * LEAF as u32)
}

/// A record of a slot-table leaf: what a pool keeps of a page in its slot,
/// or, for a free slot, the link of the free list and the slot's generation
/// counter.
///
/// Its size must be a power of two, at least 8 bytes (the leaf's header
/// takes the place of its record 0) and at most half a page (checked when
/// the table is built), so that a leaf page holds a whole number of aligned
/// records. It is `Send` (a table moves to another thread with its
/// records).
pub trait Record: Copy + Send {
    /// Whether the table may be read without its owner's lock, by
    /// [`RadixTable::lockless_record`]: the table then gives the nodes it
    /// drops (a leaf whose slots are all free, an interior node without
    /// links, the root) back through [`PageSource::free_page_deferred`]
    /// once no reader can reach them (the link to them cleared; for a
    /// published root, the view's root stored anew by
    /// [`RadixTable::publish`]), after the readers that may still walk
    /// them (an RCU grace period in the kernel), and writes each record
    /// through [`Record::store`]
    /// (which must then make every change with atomic stores that a
    /// reader can check: see `rust/zbud`'s entries). The readers of a
    /// [`HasBody`] record read only outside its body (a body is changed
    /// in place, with plain writes).
    const LOCKLESS: bool = false;

    /// Writes `value` over the record at `at`, for the table (under its
    /// owner's lock: the only writer). Plain by default; a
    /// [`Record::LOCKLESS`] record makes its stores atomic.
    ///
    /// # Safety
    ///
    /// `at` points to an initialized record of a live leaf, aligned, that
    /// nobody else writes meanwhile.
    unsafe fn store(at: NonNull<Self>, value: Self) {
        // SAFETY: the caller's.
        unsafe { at.as_ptr().write(value) }
    }

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

/// A [`Record`] with a part that neither [`Record::page`] nor
/// [`Record::vacancy`] of an occupied slot's record depends on, its *body*,
/// which [`RadixTable::page_and_body_mut`] lends in place: a large record (a span's
/// 128 bytes) is then changed where it is rather than copied out and back
/// as [`RadixTable::update`] does, and a caller may change several of its
/// fields with one walk of the table.
///
/// # Safety
///
/// [`HasBody::body_of`] returns a pointer to a part of the record at `at`
/// (a field), and no change through it of an occupied slot's record (one
/// whose [`Record::vacancy`] is `None`) changes what that record's
/// [`Record::page`] or [`Record::vacancy`] return.
pub unsafe trait HasBody: Record {
    /// The part of the record the table never looks at.
    type Body;

    /// The body of the record at `at`, projected without a reference to
    /// the whole record: a [`Record::LOCKLESS`] reader may be reading the
    /// rest of it meanwhile.
    ///
    /// # Safety
    ///
    /// `at` points to a record, aligned.
    unsafe fn body_of(at: NonNull<Self>) -> NonNull<Self::Body>;
}

/// The header of a leaf, in the place of its record 0 (which is no slot).
#[repr(C)]
#[derive(Clone, Copy)]
struct LeafHeader {
    /// The leaf's first free slot ([`NO_SLOT`] if none); the others follow
    /// through [`Record::vacancy`].
    free_head: u32,
    /// The number of free slots of the leaf.
    free: u32,
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
/// * `root` and every non-null link of an interior node (levels `0..LEAF`),
///   its [`FREE_BIT`] cleared, is a page from `source`, used only as a node
///   of the next level: an interior node of `LINKS` links, or a leaf.
///   `node_pages` counts these nodes. Every interior node has a non-null
///   link.
/// * `retired`, if any, is the root a [`Record::LOCKLESS`] table dropped
///   with its last slot while a [`LocklessView`] named it (`published`), a
///   page from `source` whose links are all null: [`Self::publish`] gives
///   it back (deferred) once the view no longer names it, [`Self::grow`]
///   makes it the root again, [`Self::clear`] frees it. The table has no
///   `root` while it has one, and `node_pages` counts it.
/// * `published` is false if no view names `root` (or `retired`): set by
///   [`Self::publish`], cleared when the table makes a new root.
/// * A leaf is a [`LeafHeader`] in the place of record 0, then records
///   `1..RECORDS`, initialized: an occupied slot's or a free slot's (see
///   [`Record`]). The slot of record `i` of the leaf at `(r, m)` (root link
///   `r`, link `m` of that interior node) is `r << (LINK_SHIFT +
///   LEAF_SHIFT) | m << LEAF_SHIFT | i`.
/// * A leaf's header counts its free slots in `free`, fewer than
///   `RECORDS - 1` (a leaf has an occupied slot), and `free_head` is the
///   first of them ([`NO_SLOT`] if none); each free slot's record names the
///   next one, in the same leaf, and every free slot of the leaf is on
///   that list, once.
/// * A link to a leaf has [`FREE_BIT`] exactly when the leaf has a free
///   slot; a link to an interior node has it when one of its links has it
///   (and may keep it a while after none has: [`Self::take_slot`] clears
///   it when it finds none).
///   `free_slots` is the number of free slots of all leaves.
/// * No leaf at a place (`r << LINK_SHIFT | m`) below `free_from` has a
///   free slot: [`Self::take_slot`] looks from there.
/// * The page of each occupied slot's record came from `source` and has
///   not been freed.
/// * `tag` is not 0.
pub struct RadixTable<R: Record, P: PageSource> {
    source: P,
    tag: u16,
    root: Option<NonNull<u8>>,
    retired: Option<NonNull<u8>>,
    published: bool,
    node_pages: u64,
    free_slots: u64,
    free_from: usize,
    next_generation: u32,
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

/// The node a link names, without its [`FREE_BIT`]; `None` for a null link.
fn child(link: Link) -> Option<NonNull<u8>> {
    // `wrapping_sub` keeps the pointer's provenance (the link is the node's
    // address plus the bit).
    NonNull::new(link.wrapping_sub(link as usize & FREE_BIT))
}

/// Whether a link has [`FREE_BIT`].
fn has_free(link: Link) -> bool {
    link as usize & FREE_BIT != 0
}

/// The link to `node` with [`FREE_BIT`] if `free`.
fn link_to(node: NonNull<u8>, free: bool) -> Link {
    node.as_ptr().wrapping_add(usize::from(free) * FREE_BIT)
}

/// Pointer to link `i` of the interior node `node`.
///
/// # Safety
///
/// `node` is an interior node of a table (a page of `LINKS` links) and
/// `i < LINKS`.
unsafe fn link_ptr(node: NonNull<u8>, i: usize) -> *mut Link {
    // SAFETY: The caller's: link `i` is inside the page.
    unsafe { node.cast::<Link>().as_ptr().add(i) }
}

/// Link `i` of the interior node `node`, null for `i >= LINKS`.
///
/// # Safety
///
/// `node` is an interior node of a table, which nobody writes meanwhile.
unsafe fn read_link(node: NonNull<u8>, i: usize) -> Link {
    if i >= LINKS {
        return core::ptr::null_mut();
    }
    // SAFETY: The caller's, and `i < LINKS`; the node is a page, aligned for
    // links.
    unsafe { link_ptr(node, i).read() }
}

/// Sets link `i` of the interior node `node` to `link` (nothing for
/// `i >= LINKS`), with a release store: a lockless reader
/// ([`RadixTable::lockless_record`]) that loads the link sees the node it
/// names initialized. (A plain move on x86 and arm64, as a plain write.)
///
/// # Safety
///
/// `node` is an interior node of a table that the caller borrows mutably.
unsafe fn write_link(node: NonNull<u8>, i: usize, link: Link) {
    if i < LINKS {
        // SAFETY: The caller's, and `i < LINKS`: the link is inside the
        // node and aligned, and `AtomicPtr<u8>` has the size and alignment
        // of a `*mut u8`. Links are written only here, by the table's
        // owner (and zeroed before a node is linked); others only load
        // them.
        unsafe { AtomicPtr::from_ptr(link_ptr(node, i)) }.store(link, Ordering::Release);
    }
}

/// Link `i` of the interior node `node`, loaded with acquire ordering (the
/// node it names is seen initialized), null for `i >= LINKS`.
///
/// # Safety
///
/// `node` is an interior node of a live table, which may be written
/// meanwhile (only by [`write_link`]).
unsafe fn load_link(node: NonNull<u8>, i: usize) -> Link {
    if i >= LINKS {
        return core::ptr::null_mut();
    }
    // SAFETY: The caller's, and `i < LINKS`; as in `write_link`.
    unsafe { AtomicPtr::from_ptr(link_ptr(node, i)) }.load(Ordering::Acquire)
}

/// The index of the first link of the interior node `node` that `pred`
/// holds for.
///
/// # Safety
///
/// As for [`read_link`].
unsafe fn find_link(node: NonNull<u8>, pred: impl Fn(Link) -> bool) -> Option<usize> {
    // SAFETY: The caller's.
    unsafe { find_link_from(node, 0, pred) }
}

/// The index of the first link from `from` on of the interior node `node`
/// that `pred` holds for.
///
/// # Safety
///
/// As for [`read_link`].
unsafe fn find_link_from(
    node: NonNull<u8>,
    from: usize,
    pred: impl Fn(Link) -> bool,
) -> Option<usize> {
    // SAFETY: The caller's.
    (from..LINKS).find(|&i| pred(unsafe { read_link(node, i) }))
}

/// Link `i` of the interior node `node` and the node it names; `None` for a
/// null link, an error for a null link with [`FREE_BIT`].
///
/// # Safety
///
/// As for [`read_link`].
unsafe fn checked_link(
    node: NonNull<u8>,
    i: usize,
) -> Result<Option<(Link, NonNull<u8>)>, &'static str> {
    // SAFETY: The caller's.
    let link = unsafe { read_link(node, i) };
    match child(link) {
        Some(node) => Ok(Some((link, node))),
        None if has_free(link) => Err("a null link has the free bit"),
        None => Ok(None),
    }
}

/// Where readers without the lock of a table's owner find the table: its
/// root and its tag, published by [`RadixTable::publish`] (each a single
/// atomic word) and read by [`RadixTable::lockless_record`]. It lives
/// next to the lock, outside what the lock guards, as long as the table.
pub struct LocklessView {
    root: AtomicPtr<u8>,
    tag: AtomicU16,
}

impl LocklessView {
    /// A view of no table: a reader finds no record.
    pub const fn new() -> Self {
        Self {
            root: AtomicPtr::new(core::ptr::null_mut()),
            tag: AtomicU16::new(0),
        }
    }

    /// The tag published (0, which no table has, before any).
    pub fn tag(&self) -> u16 {
        self.tag.load(Ordering::Relaxed)
    }
}

impl Default for LocklessView {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: Record, P: PageSource> RadixTable<R, P> {
    /// log2 of the records per leaf.
    const LEAF_SHIFT: u32 = (PAGE_SIZE / size_of::<R>()).trailing_zeros();

    /// Records per leaf page, the header's place included: a leaf has
    /// `RECORDS - 1` slots.
    pub const RECORDS: usize = 1 << Self::LEAF_SHIFT;

    /// Bits of a slot number.
    pub const SLOT_BITS: u32 = slot_bits(size_of::<R>());

    /// Slot numbers are below `SLOTS` (those of a leaf's record 0 are
    /// none).
    pub const SLOTS: usize = 1 << Self::SLOT_BITS;

    /// The number of slots: the most pages a pool using the table can hold.
    pub const CAPACITY: usize = capacity(size_of::<R>());

    /// Records tile a page, aligned (a record's alignment never exceeds its
    /// size), there are at least two a leaf, and the header fits in the
    /// place of one, aligned.
    const LEAF_LAYOUT: () = assert!(
        size_of::<R>().is_power_of_two()
            && Self::RECORDS * size_of::<R>() == PAGE_SIZE
            && Self::RECORDS >= 2
            && size_of::<LeafHeader>() <= size_of::<R>()
            && align_of::<LeafHeader>() <= PAGE_SIZE
    );

    /// An empty table that takes its pages from `source`, with a new tag.
    /// Allocates nothing.
    pub fn new(source: P) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::LEAF_LAYOUT;
        Self {
            source,
            tag: new_pool_tag(),
            root: None,
            retired: None,
            published: false,
            node_pages: 0,
            free_slots: 0,
            free_from: 0,
            next_generation: 0,
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

    /// Publishes the table's root and tag to `view` for readers without
    /// the owner's lock, if they changed (a table of records that are not
    /// [`Record::LOCKLESS`] publishes none: its readers find nothing). The
    /// owner calls it after each change that may make or drop the root
    /// ([`Self::insert_page`], [`Self::insert_record`],
    /// [`Self::remove_page`], [`Self::vacate`], [`Self::clear`]); a
    /// reader that loaded a dropped root still walks live nodes until the
    /// deferred free ([`Record::LOCKLESS`]).
    ///
    /// A root the table dropped is given back here, after the store that
    /// unpublishes it, not when it is dropped: until then `view` names it,
    /// and a reader that loads it then may begin after a deferred free
    /// began, which would not wait for it (RCU waits only for the readers
    /// already in their critical sections). Leaves and interior nodes are
    /// unlinked before their deferred free, so no reader can reach them
    /// after it began.
    pub fn publish(&mut self, view: &LocklessView) {
        let root = match (R::LOCKLESS, self.root) {
            (true, Some(root)) => root.as_ptr(),
            _ => core::ptr::null_mut(),
        };
        if view.root.load(Ordering::Relaxed) != root {
            // Release: a reader that loads the root sees its links (and
            // the nodes they name: `write_link`) initialized.
            view.root.store(root, Ordering::Release);
        }
        if view.tag.load(Ordering::Relaxed) != self.tag {
            view.tag.store(self.tag, Ordering::Relaxed);
        }
        self.published = !root.is_null();
        if let Some(retired) = self.retired.take() {
            self.node_pages = self.node_pages.wrapping_sub(1);
            // SAFETY: the page came from the source, the table is done
            // with it (type invariant), and no view names it now: `view`
            // was stored the live root (not `retired`: `grow` takes it
            // back before it makes it the root) or null above; readers
            // that loaded it before may walk it until the deferred free.
            unsafe { self.source.free_page_deferred(retired) };
        }
    }

    /// Whether `view` holds what [`Self::publish`] would publish there now
    /// (for checks).
    pub fn is_published(&self, view: &LocklessView) -> bool {
        let root = match (R::LOCKLESS, self.root) {
            (true, Some(root)) => root.as_ptr(),
            _ => core::ptr::null_mut(),
        };
        view.root.load(Ordering::Relaxed) == root && view.tag.load(Ordering::Relaxed) == self.tag
    }

    /// The record of `slot` in the table published in `view`, found
    /// without the owner's lock: `None` for a number that is no slot, a
    /// slot without leaf, or a view of no table. Each link is loaded with
    /// acquire ordering; the record is the [`Record::LOCKLESS`] type's to
    /// read (its writer, under the lock, may be changing it meanwhile).
    ///
    /// # Safety
    ///
    /// `view` is where a table of `R` (of this type) was published; that
    /// table is neither cleared nor dropped during the call, nor while the
    /// returned pointer is used; and the caller is, from before this call
    /// until it is done with the record, a reader that the table's
    /// source's [`PageSource::free_page_deferred`] waits for (in an RCU
    /// read-side critical section, in the kernel), so that every node it
    /// reaches, even one the table dropped meanwhile, stays allocated.
    pub unsafe fn lockless_record(view: &LocklessView, slot: u32) -> Option<NonNull<R>> {
        if !R::LOCKLESS || slot as usize >= Self::SLOTS {
            return None;
        }
        let root = NonNull::new(view.root.load(Ordering::Acquire))?;
        let (r, m, _) = Self::path(slot);
        // SAFETY: the caller's: `root` is (or was, until a drop whose
        // deferred free waits for this reader) the root of a live table of
        // `R`, so its page is allocated; `load_link` takes any index.
        let mid = child(unsafe { load_link(root, r) })?;
        // SAFETY: As above: a link of the root names an interior node of
        // the table, allocated until the same deferred free at least.
        let leaf = child(unsafe { load_link(mid, m) })?;
        Self::record_in(leaf, slot)
    }

    /// Number of pages of the table.
    pub fn node_pages(&self) -> u64 {
        self.node_pages
    }

    /// Number of free slots in the table's leaves.
    pub fn free_slots(&self) -> u64 {
        self.free_slots
    }

    /// One past the last slot of the table's last leaf (0 if it has none):
    /// the slots that have a record are below. Walks the interior nodes:
    /// for tests.
    pub fn slot_limit(&self) -> u32 {
        let Some(root) = self.root else {
            return 0;
        };
        // SAFETY: `root` and the nodes its links name are interior nodes of
        // this table (type invariant), which `&self` keeps unchanged.
        let last = unsafe {
            (0..LINKS).rev().find_map(|r| {
                let mid = child(read_link(root, r))?;
                let m = (0..LINKS).rev().find(|&m| !read_link(mid, m).is_null())?;
                Some(r << LINK_SHIFT | m)
            })
        };
        last.map_or(0, |leaf| ((leaf + 1) << Self::LEAF_SHIFT) as u32)
    }

    /// Whether `slot` is a slot number: below [`Self::SLOTS`] and not a
    /// leaf's record 0. A slot without a leaf has no record: either no page
    /// was ever put in it, or it was freed with all of its leaf's.
    pub fn is_slot(slot: u32) -> bool {
        (slot as usize) < Self::SLOTS && Self::path(slot).2 != 0
    }

    /// The record of `slot`, occupied or free; `None` for a slot without
    /// leaf, or for a number that is no slot (see [`Self::is_slot`]).
    pub fn get(&self, slot: u32) -> Option<&R> {
        let record = self.record(slot)?;
        // SAFETY: `record` points to the initialized record of a slot in a
        // live leaf, aligned (see `record`); the table, borrowed for the
        // reference's lifetime, alone accesses it.
        Some(unsafe { &*record.as_ptr() })
    }

    /// Applies `change` to the record of the occupied `slot` and returns
    /// whether it did: not if the slot is free or has no leaf, nor if
    /// `change` would change the record's page (the record is then left as
    /// it was). Slots are taken and freed with [`Self::insert_page`] and
    /// [`Self::remove_page`] only.
    pub fn update(&mut self, slot: u32, change: impl FnOnce(&mut R)) -> bool {
        let Some(record) = self.record(slot) else {
            return false;
        };
        // SAFETY: `record` points to the initialized record of a slot in a
        // live leaf, aligned (see `record`); the table, borrowed mutably,
        // alone accesses it.
        let old = unsafe { record.as_ptr().read() };
        let mut new = old;
        change(&mut new);
        if old.page().is_none() || new.page() != old.page() {
            return false;
        }
        // SAFETY: As above.
        unsafe { R::store(record, new) };
        true
    }

    /// The page of the occupied `slot`'s record ([`Record::page`]) and its
    /// body, in place, from one walk of the table; `None` if the slot is
    /// free or has no leaf. The table cannot change while the body is
    /// lent, nor can the record's page or vacancy through it ([`HasBody`]'s
    /// contract).
    pub fn page_and_body_mut(&mut self, slot: u32) -> Option<(Option<NonNull<u8>>, &mut R::Body)>
    where
        R: HasBody,
    {
        let at = self.record(slot)?;
        // SAFETY: `at` points to the initialized record of a slot in a live
        // leaf, aligned (see `record`); the table, borrowed mutably, alone
        // writes it (lockless readers only read).
        let record = unsafe { &*at.as_ptr() };
        if record.vacancy().is_some() {
            return None;
        }
        let page = record.page();
        // SAFETY: As above, for the body alone, lent for the borrow of the
        // table: the caller can change the body only, which leaves an
        // occupied record's page and vacancy as they were (`HasBody`), so
        // the table's invariants hold; no lockless reader reads a body
        // (`Record::LOCKLESS`).
        Some((page, unsafe { &mut *R::body_of(at).as_ptr() }))
    }

    /// The body of the occupied `slot`'s record, in place, if `accept`
    /// holds for the record (a pool's check of a handle's generation, for
    /// instance): a check and a change from one walk of the table. `None`
    /// if the slot is free, has no leaf, or `accept` refuses it. As for
    /// [`Self::page_and_body_mut`], the table cannot change while the body
    /// is lent.
    pub fn body_mut_if(
        &mut self,
        slot: u32,
        accept: impl FnOnce(&R) -> bool,
    ) -> Option<&mut R::Body>
    where
        R: HasBody,
    {
        let at = self.record(slot)?;
        // SAFETY: As in `page_and_body_mut`.
        let record = unsafe { &*at.as_ptr() };
        if record.vacancy().is_some() || !accept(record) {
            return None;
        }
        // SAFETY: As in `page_and_body_mut`.
        Some(unsafe { &mut *R::body_of(at).as_ptr() })
    }

    /// Replaces the record of the occupied `slot` by what `change` makes of
    /// it (through [`Record::store`]) and returns the record it replaced;
    /// `None`, the record unchanged, if the slot is free or has no leaf, if
    /// `change` returns `None`, or if the new record would have another
    /// page or be a free slot's. For a record whose fields lockless readers
    /// read ([`Record::LOCKLESS`]), which a body lent in place would not
    /// change atomically.
    pub fn replace_if(&mut self, slot: u32, change: impl FnOnce(&R) -> Option<R>) -> Option<R> {
        let at = self.record(slot)?;
        // SAFETY: `at` points to the initialized record of a slot in a live
        // leaf, aligned (see `record`); the table, borrowed mutably, alone
        // writes it.
        let old = unsafe { at.as_ptr().read() };
        if old.vacancy().is_some() {
            return None;
        }
        let new = change(&old)?;
        if new.vacancy().is_some() || new.page() != old.page() {
            return None;
        }
        // SAFETY: As above.
        unsafe { R::store(at, new) };
        Some(old)
    }

    /// Gets a page from the source and puts it in a free slot of the first
    /// leaf that has one, else in a new leaf in the first place without one
    /// (for which the table grows), both with `flags`; the slot's record is
    /// [`Record::occupied`] with the generation counter the free slot kept.
    /// Returns the slot, the generation and the page, or
    /// [`AllocError::NoMemory`], the table unchanged, if the source has not
    /// enough pages or all [`Self::CAPACITY`] slots are taken.
    pub fn insert_page(&mut self, flags: P::Flags) -> Result<(u32, u32, NonNull<u8>), AllocError> {
        let page = self.source.alloc_page(flags).ok_or(AllocError::NoMemory)?;
        match self.insert_given_page(page, flags) {
            Ok((slot, generation)) => Ok((slot, generation, page)),
            Err(page) => {
                // SAFETY: `page` came from `alloc_page` above and nothing
                // refers to it.
                unsafe { self.source.free_page(page) };
                Err(AllocError::NoMemory)
            }
        }
    }

    /// [`Self::insert_page`] of `page`, a page of the table's source that
    /// the caller holds (one it kept rather than freed): puts it in a free
    /// slot, growing the table with `flags` if it has none. Returns the
    /// slot and the generation, or the page back, the table unchanged, if
    /// the table cannot grow.
    pub fn insert_given_page(
        &mut self,
        page: NonNull<u8>,
        flags: P::Flags,
    ) -> Result<(u32, u32), NonNull<u8>> {
        if self.free_slots == 0 && self.grow(flags).is_none() {
            return Err(page);
        }
        let Some((slot, generation, record)) = self.take_slot() else {
            // Not with the invariants: there is a free slot.
            return Err(page);
        };
        // SAFETY: `record` points to the slot's record in its live leaf,
        // aligned; the table, borrowed mutably, alone accesses it.
        unsafe { R::store(record, R::occupied(page, generation)) };
        Ok((slot, generation))
    }

    /// Puts `make(slot, generation)`, a pageless record (see
    /// [`Self::release_page`]), in a free slot as [`Self::insert_page`]
    /// would, with the generation counter the free slot kept: for a table
    /// whose slots name something other than pages (an allocator's object
    /// records). `make` is told the slot, so that a caller may link the
    /// record to others before it is stored (one walk of the table). Returns
    /// the slot and the generation, or [`AllocError::NoMemory`], the table
    /// unchanged, if it cannot grow (`make` is then not called) or if the
    /// record made has a page or is a free slot's (a caller's refusal).
    /// [`Self::vacate`] frees the slot.
    pub fn insert_record(
        &mut self,
        flags: P::Flags,
        make: impl FnOnce(u32, u32) -> R,
    ) -> Result<(u32, u32), AllocError> {
        if self.free_slots == 0 && self.grow(flags).is_none() {
            return Err(AllocError::NoMemory);
        }
        let (slot, generation, at) = self.take_slot().ok_or(AllocError::NoMemory)?;
        let record = make(slot, generation);
        if record.page().is_some() || record.vacancy().is_some() {
            // Back on the free list, with the generation it had.
            self.put_slot(slot, generation);
            return Err(AllocError::NoMemory);
        }
        // SAFETY: `at` points to the slot's record in its live leaf,
        // aligned; the table, borrowed mutably, alone accesses it.
        unsafe { R::store(at, record) };
        Ok((slot, generation))
    }

    /// Applies `change` to the record of the pageless occupied `slot` and
    /// returns whether it did: not if the slot is free, has a page or has
    /// no leaf, nor if `change` would give it a page or make it a free
    /// slot's record (the record is then left as it was).
    pub fn update_pageless(&mut self, slot: u32, change: impl FnOnce(&mut R)) -> bool {
        let Some(record) = self.record(slot) else {
            return false;
        };
        // SAFETY: `record` points to the initialized record of a slot in a
        // live leaf, aligned (see `record`); the table, borrowed mutably,
        // alone accesses it.
        let old = unsafe { record.as_ptr().read() };
        if old.page().is_some() || old.vacancy().is_some() {
            return false;
        }
        let mut new = old;
        change(&mut new);
        if new.page().is_some() || new.vacancy().is_some() {
            return false;
        }
        // SAFETY: As above.
        unsafe { R::store(record, new) };
        true
    }

    /// Frees the occupied `slot`, which keeps the generation counter
    /// `generation`, and its page; returns whether it did (not if the slot
    /// is free or has no leaf). The slot's leaf goes if it has no other
    /// occupied slot.
    ///
    /// The page must hold nothing anybody uses any more.
    pub fn remove_page(&mut self, slot: u32, generation: u32) -> bool {
        let Some(page) = self.take_page(slot, generation) else {
            return false;
        };
        // SAFETY: The page came from `source` and was not freed (type
        // invariant); the table no longer refers to it, and the caller uses
        // it no more.
        unsafe { self.source.free_page(page) };
        true
    }

    /// [`Self::remove_page`] that gives the page to the caller instead of
    /// freeing it (`None`, the table unchanged, if the slot is free or has
    /// no leaf): the page is the caller's from then on, to free to the
    /// table's source or to put in a slot again
    /// ([`Self::insert_given_page`]).
    pub fn take_page(&mut self, slot: u32, generation: u32) -> Option<NonNull<u8>> {
        let page = self.get(slot).and_then(Record::page)?;
        self.put_slot(slot, generation);
        Some(page)
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
    /// did (not if the slot is free, has a page or has no leaf). The slot's
    /// leaf goes as in [`Self::remove_page`].
    pub fn vacate(&mut self, slot: u32, generation: u32) -> bool {
        self.vacate_if(slot, |_| Some(generation)).is_some()
    }

    /// Frees the pageless occupied `slot` if `keep`, shown its record,
    /// gives the generation counter the slot is to keep: a check of the
    /// record and a [`Self::vacate`] in one walk of the table. Returns the
    /// record the slot had, or `None`, the table unchanged, if the slot is
    /// free, has a page or has no leaf, or `keep` refused it.
    pub fn vacate_if(&mut self, slot: u32, keep: impl FnOnce(&R) -> Option<u32>) -> Option<R> {
        let (mid, leaf) = self.nodes(slot)?;
        let at = Self::record_in(leaf, slot)?;
        // SAFETY: `at` points to the initialized record of a slot in a live
        // leaf, aligned; the table, borrowed mutably, alone writes it.
        let record = unsafe { at.as_ptr().read() };
        if record.page().is_some() || record.vacancy().is_some() {
            return None;
        }
        let generation = keep(&record)?;
        self.put_slot_in(mid, leaf, slot, generation);
        Some(record)
    }

    /// [`Self::vacate_if`] in two steps, for a record that readers without
    /// the lock read ([`Record::LOCKLESS`]): `mark`, shown the record,
    /// gives a changed record (the same page, occupied), which is stored
    /// ([`Record::store`]) before `keep` is shown it. If `keep` gives the
    /// generation counter, the slot is freed and the marked record
    /// returned; if it refuses, the record is stored back as it was. One
    /// walk of the table. `None`, the table unchanged, if the slot is
    /// free, has a page or has no leaf, or `mark` or `keep` refused it.
    pub fn vacate_if_marked(
        &mut self,
        slot: u32,
        mark: impl FnOnce(&R) -> Option<R>,
        keep: impl FnOnce(&R) -> Option<u32>,
    ) -> Option<R> {
        let (mid, leaf) = self.nodes(slot)?;
        let at = Self::record_in(leaf, slot)?;
        // SAFETY: As in `vacate_if`.
        let record = unsafe { at.as_ptr().read() };
        if record.page().is_some() || record.vacancy().is_some() {
            return None;
        }
        let marked = mark(&record)?;
        if marked.page().is_some() || marked.vacancy().is_some() {
            return None;
        }
        // SAFETY: As in `vacate_if`.
        unsafe { R::store(at, marked) };
        match keep(&marked) {
            Some(generation) => {
                self.put_slot_in(mid, leaf, slot, generation);
                Some(marked)
            }
            None => {
                // SAFETY: As in `vacate_if`.
                unsafe { R::store(at, record) };
                None
            }
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
        if let Some(retired) = self.retired.take() {
            // SAFETY: a page from the source that the table holds and
            // nothing else uses (type invariant): as for the nodes above,
            // the caller clears a table nobody walks.
            unsafe { self.source.free_page(retired) };
        }
        self.published = false;
        self.free_slots = 0;
        self.free_from = 0;
        self.node_pages = 0;
    }

    /// Checks the table's invariants from scratch (the nodes, the leaves'
    /// free lists and counts, the free bits of the links, the counters) and
    /// returns the number of free slots, or what is wrong first. Walks the
    /// whole table: for tests.
    pub fn check(&self) -> Result<u64, &'static str> {
        if self.root.is_some() && self.retired.is_some() {
            return Err("a table has a root and a retired root");
        }
        let Some(root) = self.root else {
            let held = u64::from(self.retired.is_some());
            return match (self.node_pages, self.free_slots) {
                (n, 0) if n == held => Ok(0),
                _ => Err("an empty table counts pages or free slots"),
            };
        };
        let (mut nodes, mut free_slots) = (1u64, 0u64);
        for r in 0..LINKS {
            // SAFETY: `root` is an interior node of this table, which `&self`
            // keeps unchanged; so are the interior nodes its links name.
            let Some((link, mid)) = (unsafe { checked_link(root, r) })? else {
                continue;
            };
            nodes = nodes.wrapping_add(1);
            let (mut mid_free, mut mid_leaves) = (false, 0u32);
            for m in 0..LINKS {
                // SAFETY: As above.
                let Some((link, leaf)) = (unsafe { checked_link(mid, m) })? else {
                    continue;
                };
                nodes = nodes.wrapping_add(1);
                let first = (r << LINK_SHIFT | m) << Self::LEAF_SHIFT;
                let free = self.check_leaf(leaf, first)?;
                if has_free(link) != (free > 0) {
                    return Err("a leaf's free bit is wrong");
                }
                if free > 0 && (r << LINK_SHIFT | m) < self.free_from {
                    return Err("a leaf below the first free place has a free slot");
                }
                mid_free |= free > 0;
                mid_leaves = mid_leaves.wrapping_add(1);
                free_slots = free_slots.wrapping_add(u64::from(free));
            }
            if mid_leaves == 0 {
                return Err("an interior node has no link");
            }
            if mid_free && !has_free(link) {
                return Err("an interior node's free bit is wrong");
            }
        }
        if nodes == 1 {
            return Err("the root has no link");
        }
        if nodes != self.node_pages {
            return Err("the node count does not match the nodes");
        }
        if free_slots != self.free_slots {
            return Err("the free slot count does not match the leaves");
        }
        Ok(free_slots)
    }

    /// Checks the leaf `leaf`, whose first slot number (its header's) is
    /// `first`, and returns its number of free slots.
    fn check_leaf(&self, leaf: NonNull<u8>, first: usize) -> Result<u32, &'static str> {
        // SAFETY: A leaf starts with its header, aligned (type invariant).
        let header = unsafe { leaf.cast::<LeafHeader>().as_ptr().read() };
        let mut vacant = 0u32;
        for i in 1..Self::RECORDS {
            // SAFETY: Records `1..RECORDS` of a leaf are initialized (type
            // invariant) and inside the page.
            let record = unsafe { leaf.cast::<R>().as_ptr().add(i).read() };
            if record.vacancy().is_some() {
                vacant = vacant.wrapping_add(1);
            }
        }
        if vacant != header.free || header.free as usize >= Self::RECORDS - 1 {
            return Err("a leaf's free count is wrong, or the leaf has no occupied slot");
        }
        let (mut slot, mut listed) = (header.free_head, 0u32);
        while slot != NO_SLOT {
            let index = (slot as usize).wrapping_sub(first);
            if index == 0 || index >= Self::RECORDS {
                return Err("a leaf's free list leaves the leaf");
            }
            // SAFETY: As above, `0 < index < RECORDS`.
            let record = unsafe { leaf.cast::<R>().as_ptr().add(index).read() };
            let (next, _) = record
                .vacancy()
                .ok_or("a free list names an occupied slot")?;
            listed = listed.wrapping_add(1);
            if listed > vacant {
                return Err("a free list has a cycle or misses a free slot");
            }
            slot = next;
        }
        if listed != vacant {
            return Err("a free slot is not on its leaf's free list");
        }
        Ok(vacant)
    }

    /// The indices of `slot`'s links in the root and in its interior node,
    /// and of its record in its leaf.
    fn path(slot: u32) -> (usize, usize, usize) {
        let slot = slot as usize;
        (
            (slot >> (Self::LEAF_SHIFT + LINK_SHIFT)) & (LINKS - 1),
            (slot >> Self::LEAF_SHIFT) & (LINKS - 1),
            slot & (Self::RECORDS - 1),
        )
    }

    /// The interior node and the leaf of `slot`, if it has a leaf.
    fn nodes(&self, slot: u32) -> Option<(NonNull<u8>, NonNull<u8>)> {
        if slot as usize >= Self::SLOTS {
            return None;
        }
        let (r, m, _) = Self::path(slot);
        // SAFETY: The root and the nodes its links name are interior nodes
        // of this table (type invariant), which `&self` keeps unchanged.
        let mid = child(unsafe { read_link(self.root?, r) })?;
        // SAFETY: As above.
        let leaf = child(unsafe { read_link(mid, m) })?;
        Some((mid, leaf))
    }

    /// Writes the record of `slot`, if it has one.
    fn set(&mut self, slot: u32, value: R) {
        if let Some(record) = self.record(slot) {
            // SAFETY: `record` points into a live leaf, aligned (see
            // `record`); the table, borrowed mutably, alone accesses it.
            unsafe { R::store(record, value) };
        }
    }

    /// Pointer to the record of `slot` in its leaf, if it has a leaf and is
    /// not a leaf's record 0. The record is aligned: the leaf is a page,
    /// and records tile it.
    fn record(&self, slot: u32) -> Option<NonNull<R>> {
        let (_, leaf) = self.nodes(slot)?;
        Self::record_in(leaf, slot)
    }

    /// Pointer to the record of `slot` in `leaf`, its leaf (the caller
    /// walked to it), if `slot` is not a leaf's record 0.
    fn record_in(leaf: NonNull<u8>, slot: u32) -> Option<NonNull<R>> {
        let (_, _, index) = Self::path(slot);
        if index == 0 {
            return None;
        }
        // SAFETY: A leaf is a page of `RECORDS` records' room and
        // `index < RECORDS`, so the record is inside the page, hence not
        // null.
        Some(unsafe { NonNull::new_unchecked(leaf.cast::<R>().as_ptr().add(index)) })
    }

    /// The header of `leaf`, a leaf of this table.
    fn header(leaf: NonNull<u8>) -> *mut LeafHeader {
        leaf.cast::<LeafHeader>().as_ptr()
    }

    /// Takes the first free slot of the first leaf that has one, and returns
    /// it with the generation its record kept and where its record is;
    /// `None`, the table unchanged, if there is none. Looks from
    /// `free_from`: O(1) links read while the first leaf with a free slot
    /// stays the same, O([`LINKS`]) when it fills (once in `RECORDS - 1`
    /// takes at most).
    fn take_slot(&mut self) -> Option<(u32, u32, NonNull<R>)> {
        let root = self.root?;
        let (from_r, from_m) = (self.free_from >> LINK_SHIFT, self.free_from & (LINKS - 1));
        // SAFETY: `root` and the nodes its links name are interior nodes of
        // this table (type invariant), which `&mut self` lets us change.
        unsafe {
            let mut r = find_link_from(root, from_r, has_free)?;
            let mut from = if r == from_r { from_m } else { 0 };
            let (mid, m) = loop {
                let mid = child(read_link(root, r))?;
                if let Some(m) = find_link_from(mid, from, has_free) {
                    break (mid, m);
                }
                // No leaf of `mid` has a free slot: its free bit, left set
                // when its last such leaf filled, goes now.
                write_link(root, r, link_to(mid, false));
                r = find_link_from(root, r.wrapping_add(1), has_free)?;
                from = 0;
            };
            let leaf = child(read_link(mid, m))?;
            self.free_from = r << LINK_SHIFT | m;
            let header = Self::header(leaf);
            let mut h = header.read();
            let slot = h.free_head;
            // The leaf's own free slot: its record is in this leaf.
            let record = Self::record_in(leaf, slot)?;
            let (next, generation) = record.as_ptr().read().vacancy()?;
            h.free_head = next;
            h.free = h.free.wrapping_sub(1);
            header.write(h);
            self.free_slots = self.free_slots.wrapping_sub(1);
            if h.free == 0 {
                // The root's link to `mid` keeps its free bit: the next
                // take looks further, and clears it if `mid` has no free
                // slot left (scanning `mid` here would cost O(LINKS) each
                // time a leaf fills).
                write_link(mid, m, link_to(leaf, false));
                self.free_from = (r << LINK_SHIFT | m).wrapping_add(1);
            }
            Some((slot, generation, record))
        }
    }

    /// Puts the occupied `slot` on its leaf's free list with the generation
    /// `generation`, and frees the leaf if it has no occupied slot left, and
    /// the interior nodes that lose their last link.
    fn put_slot(&mut self, slot: u32, generation: u32) {
        if let Some((mid, leaf)) = self.nodes(slot) {
            self.put_slot_in(mid, leaf, slot, generation);
        }
    }

    /// [`Self::put_slot`] of a slot whose interior node and leaf the caller
    /// found ([`Self::nodes`]).
    fn put_slot_in(&mut self, mid: NonNull<u8>, leaf: NonNull<u8>, slot: u32, generation: u32) {
        let (Some(root), Some(record)) = (self.root, Self::record_in(leaf, slot)) else {
            return;
        };
        let (r, m, _) = Self::path(slot);
        let header = Self::header(leaf);
        // SAFETY: `leaf` is a leaf of this table: it starts with its header
        // (type invariant).
        let mut h = unsafe { header.read() };
        // SAFETY: `record` points to the slot's record in its live leaf,
        // aligned; the table, borrowed mutably, alone accesses it.
        unsafe { R::store(record, R::vacant(h.free_head, generation)) };
        h.free_head = slot;
        h.free = h.free.wrapping_add(1);
        self.free_slots = self.free_slots.wrapping_add(1);
        if h.free as usize == Self::RECORDS - 1 {
            self.free_slots = self.free_slots.wrapping_sub(u64::from(h.free));
            self.free_leaf(root, r, mid, m, leaf);
            return;
        }
        // SAFETY: As above; `root` and `mid` are interior nodes of this
        // table, which `&mut self` lets us change.
        unsafe {
            header.write(h);
            if h.free == 1 {
                write_link(mid, m, link_to(leaf, true));
                write_link(root, r, link_to(mid, true));
                self.free_from = self.free_from.min(r << LINK_SHIFT | m);
            }
        }
    }

    /// Frees `leaf`, link `m` of `mid`, link `r` of the root `root`, then
    /// `mid` and `root` if they have no link left, and mends the free bits.
    fn free_leaf(
        &mut self,
        root: NonNull<u8>,
        r: usize,
        mid: NonNull<u8>,
        m: usize,
        leaf: NonNull<u8>,
    ) {
        // SAFETY: `root` and `mid` are interior nodes of this table, which
        // `&mut self` lets us change; `leaf`, unlinked, is the table's no
        // more, and the records in it name no page.
        unsafe {
            write_link(mid, m, core::ptr::null_mut());
            self.drop_node(leaf);
            if find_link(mid, |l| !l.is_null()).is_some() {
                let free = find_link(mid, has_free).is_some();
                write_link(root, r, link_to(mid, free));
                return;
            }
            write_link(root, r, core::ptr::null_mut());
            self.drop_node(mid);
            if find_link(root, |l| !l.is_null()).is_none() {
                self.root = None;
                if R::LOCKLESS && self.published {
                    // A view names it: held until `publish` (or a new
                    // root). None is held while there is a root (`grow`
                    // takes it first), so none is overwritten.
                    self.retired = Some(root);
                } else {
                    self.drop_node(root);
                }
            }
        }
    }

    /// Gives back `node`, unlinked from the table: at once, or, for a
    /// table that readers walk without the lock ([`Record::LOCKLESS`]),
    /// once they are done with it ([`PageSource::free_page_deferred`]).
    ///
    /// # Safety
    ///
    /// `node` is a node of this table that no link or root names any more.
    unsafe fn drop_node(&mut self, node: NonNull<u8>) {
        self.node_pages = self.node_pages.wrapping_sub(1);
        if R::LOCKLESS {
            // SAFETY: the caller's: the node came from the source and the
            // table is done with it; readers may still walk it until the
            // deferred free.
            unsafe { self.source.free_page_deferred(node) };
        } else {
            // SAFETY: As above, and nobody walks the table but its owner.
            unsafe { self.source.free_page(node) };
        }
    }

    /// Where [`Self::grow`] puts a new leaf: the first null link of the
    /// first interior node that has one, else the first null link of the
    /// root (under a new interior node); and how many pages it takes (the
    /// leaf and the interior nodes its path lacks). `None` if the table is
    /// full.
    fn growth(&self) -> Option<(usize, usize, Option<NonNull<u8>>, usize)> {
        let (r, m, mid) = match self.root {
            None => (0, 0, None),
            // SAFETY: `root` and the nodes its links name are interior nodes
            // of this table, which `&self` keeps unchanged.
            Some(root) => unsafe {
                (0..LINKS).find_map(|r| match child(read_link(root, r)) {
                    None => Some((r, 0, None)),
                    Some(mid) => find_link(mid, |l| l.is_null()).map(|m| (r, m, Some(mid))),
                })?
            },
        };
        let missing = match (self.root, mid) {
            // A retired root is the root again.
            (None, _) => LEVELS - usize::from(self.retired.is_some()),
            (Some(_), None) => LEVELS - 1,
            (Some(_), Some(_)) => 1,
        };
        Some((r, m, mid, missing))
    }

    /// The pages of its own the table takes from the source to insert a
    /// record now ([`Self::insert_record`]; [`Self::insert_page`] takes
    /// the slot's page too): none while a slot is free, else a leaf and the
    /// interior nodes above it that are missing (0 if the table is full).
    /// For a caller that gets pages before it takes a lock.
    pub fn pages_to_insert(&self) -> usize {
        if self.free_slots > 0 {
            return 0;
        }
        self.growth().map_or(0, |(_, _, _, missing)| missing)
    }

    /// Adds a leaf in the first place without one, and the interior nodes
    /// its path lacks, all with `flags`: its slots free, their generations
    /// the table's next. Returns `None`, the table unchanged, if `source`
    /// has not enough pages or the table is full.
    fn grow(&mut self, flags: P::Flags) -> Option<()> {
        let (r, m, mid, missing) = self.growth()?;
        // Get the pages before changing anything.
        let mut fresh = [None; LEVELS];
        for page in fresh.iter_mut().take(missing) {
            *page = self.source.alloc_page(flags);
            if page.is_none() {
                break;
            }
        }
        let [Some(leaf), ..] = fresh else {
            return None;
        };
        if fresh.iter().take(missing).any(Option::is_none) {
            for page in fresh.into_iter().flatten() {
                // SAFETY: `page` came from `alloc_page` above and nothing
                // refers to it.
                unsafe { self.source.free_page(page) };
            }
            return None;
        }
        let first = ((r << LINK_SHIFT | m) << Self::LEAF_SHIFT) as u32;
        let generation = self.next_generation;
        self.next_generation = generation.wrapping_add(LEAF_GENERATION_STEP);
        // SAFETY: A page from the source is `PAGE_SIZE` bytes, aligned,
        // writable and ours: room for the header and `RECORDS - 1` records
        // after it, aligned (`LEAF_LAYOUT`).
        unsafe {
            let records = leaf.cast::<R>().as_ptr();
            for i in 1..Self::RECORDS {
                let next = match i + 1 {
                    n if n < Self::RECORDS => first | n as u32,
                    _ => NO_SLOT,
                };
                records.add(i).write(R::vacant(next, generation));
            }
            Self::header(leaf).write(LeafHeader {
                free_head: first | 1,
                free: (Self::RECORDS - 1) as u32,
            });
        }
        // Link the new nodes in, bottom-up: the leaf into its interior node
        // (the new one, fresh[1], or the existing `mid`), that into the root
        // (the new one, fresh[2], or the existing).
        let new_node = |page: NonNull<u8>| {
            // SAFETY: A page from the source is `PAGE_SIZE` bytes, aligned,
            // writable and ours: room for `LINKS` links, which are null when
            // all-zero.
            unsafe { page.cast::<Link>().as_ptr().write_bytes(0, LINKS) };
            page
        };
        let mid = match mid {
            Some(mid) => mid,
            None => new_node(fresh[1]?),
        };
        let root = match self.root {
            Some(root) => root,
            // A retired root's links are all null (it went without one);
            // `node_pages` counts it still, and the view names it.
            None => match self.retired.take() {
                Some(retired) => retired,
                None => {
                    self.published = false;
                    new_node(fresh[2]?)
                }
            },
        };
        // SAFETY: `mid` and `root` are interior nodes, of this table or
        // new, which `&mut self` lets us change.
        unsafe {
            write_link(mid, m, link_to(leaf, true));
            write_link(root, r, link_to(mid, true));
        }
        self.root = Some(root);
        self.free_from = self.free_from.min(r << LINK_SHIFT | m);
        self.node_pages = self.node_pages.wrapping_add(missing as u64);
        self.free_slots = self.free_slots.wrapping_add((Self::RECORDS - 1) as u64);
        Some(())
    }
}

/// Frees `node`, at `level`, and the nodes below it.
fn free_subtree<P: PageSource>(source: &P, node: NonNull<u8>, level: usize) {
    if level < LEAF {
        for i in 0..LINKS {
            // SAFETY: `node` is an interior node: a page of `LINKS` links.
            if let Some(child) = child(unsafe { read_link(node, i) }) {
                free_subtree(source, child, level + 1);
            }
        }
    }
    // SAFETY: Table nodes come from `source`, and the caller drops the table
    // this node belongs to.
    unsafe { source.free_page(node) };
}
