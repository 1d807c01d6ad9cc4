// SPDX-License-Identifier: GPL-2.0

//! An in-memory B+tree for kernel modules, in the spirit of `lib/btree.c`.
//!
//! [`BTree`] maps keys `K: Copy + Ord` to small values `V: Copy`. It is an
//! index: the block cache maps `(device, sector)` keys to extents with it.
//! The file uses only `core`, so the same source is built into kernel modules
//! and into the host crate that runs its tests and benchmarks.
//!
//! # Node layout
//!
//! Every node is one allocation of `NODE_BYTES` bytes (a const parameter,
//! [`DEFAULT_NODE_BYTES`] by default), aligned to [`NODE_ALIGN`] (a cache
//! line). Leaf and inner nodes share the size, so a reserved node can become
//! either. Keys and values are kept in separate arrays so that a search scans
//! contiguous keys:
//!
//! ```text
//! leaf:  | len: u16 | kind: u8 | prev | next | keys: [K; S] | vals: [V; S]     |
//! inner: | len: u16 | kind: u8 | keys: [K; S'] | children: [*node; S' + 1]     |
//! ```
//!
//! `len` counts entries (leaf) or keys (inner; it has `len + 1` children).
//! Only the first `len` slots are initialised. Values live only in leaves.
//! Leaves are linked both ways (`prev`/`next`) in key order, so iteration in
//! either direction walks the leaf chain without going back to the root.
//! An inner key `keys[i]` separates `children[i]` (all keys `< keys[i]`) from
//! `children[i + 1]` (all keys `>= keys[i]`).
//!
//! Each node has one slot more than its capacity (`LEAF_CAPACITY` entries,
//! `INNER_CAPACITY` keys): an insert always fits physically, and the node is
//! then brought back to capacity by moving one entry to a sibling or by a
//! split. This keeps the split and rotation code free of "insert while
//! splitting" cases.
//!
//! With 512-byte nodes a `u64 -> u64` leaf holds 29 entries and an inner node
//! 30 keys; a `u128` key gives 19 and 19.
//!
//! # Fill bounds
//!
//! Every non-root node holds at least half its capacity (rounded down):
//! `LEAF_CAPACITY / 2` entries or `INNER_CAPACITY / 2` keys. A root leaf holds
//! at least one entry, a root inner node at least one key. So a non-root
//! inner node has at least `INNER_CAPACITY / 2 + 1 >= 3` children, which
//! bounds the height (see [`MAX_HEIGHT`]).
//!
//! # Insert: rotation before split
//!
//! When an insert makes a node overflow, one entry (leaf) or child (inner
//! node) moves to an adjacent sibling with room, and the separator in the
//! parent is updated. Only when both siblings are full does the node split in
//! the middle, adding one node; the parent receives the separator and may
//! overflow in turn. A split of the root adds a new root.
//!
//! Rotation first is what makes the tree compact: random inserts leave nodes
//! about 80% full instead of the ~69% of plain 50/50 splits, and ascending
//! (or descending) runs fill every node but the last two completely, because
//! the entries that overflow the last node move into its half-full left
//! neighbour until that one is full.
//!
//! # Remove: borrow or merge
//!
//! A node that falls below the minimum takes one entry over from a sibling
//! above the minimum or, if both are at the minimum, merges with one (the two
//! fit in one node) and frees the emptied node; the parent loses a key and is
//! checked the same way, up to the root. A root inner node left without keys
//! is replaced by its only child. Removal never allocates.
//!
//! # Allocation and reservation
//!
//! Nodes come from a [`NodeAlloc`] that the tree owns (a zero-sized type for
//! `kmalloc`, a reference to a cache, ...). Storing it, instead of passing it
//! to each call, means a node can never be freed to the wrong allocator and
//! lets the tree implement [`Drop`]. Only inserting (and [`BTree::merge`],
//! which inserts) allocates. An insert first finds out how many nodes the
//! insert needs (0 unless a split happens; at most `height() + 1`) and gets all
//! of them before it changes anything, so on [`Error::NoMemory`] the tree is
//! unchanged.
//!
//! To insert where allocation must not fail (under a spinlock, say), fill a
//! [`Reservation`] before taking the lock, with [`Reservation::fill`] or
//! [`BTree::reserve_for_insert`] (`height() + 1` nodes), and call
//! [`BTree::insert_reserved`] under the lock. A reservation owns its
//! allocator and frees its unused nodes when released or dropped.
//!
//! # Locking contract
//!
//! The tree is a plain data structure without interior mutability: lookups
//! and iteration take `&self`, every change takes `&mut self`, so a
//! reader-writer lock (or any lock) around it is all the synchronisation it
//! needs. It is `Send` and `Sync` when its keys, values and allocator are. It
//! never sleeps and calls nothing but its allocator, so every operation may
//! run in atomic context provided the allocator does not sleep there (use
//! `GFP_ATOMIC` or a reservation). Operations that may allocate:
//! [`BTree::insert`], [`BTree::merge`] and [`BTree::reserve_for_insert`];
//! [`BTree::insert_reserved`] allocates only if the reservation holds fewer
//! nodes than the insert needs. Operations that free: [`BTree::remove`],
//! [`BTree::merge`] (on the tree it empties), [`BTree::clear`],
//! [`BTree::drain`] and dropping the tree.
//!
//! # Complexity
//!
//! With `n` entries and fan-out `f`, the height is `O(log_f n)`. Lookup,
//! predecessor and successor searches, insert and remove take
//! `O(log_f n)` node visits with `O(f)` work per node; a cursor step is
//! `O(1)`. Stack use is bounded: no recursion deeper than the height
//! (`check_invariants` and freeing), and an insert keeps a path and a node
//! stack of [`MAX_HEIGHT`] entries (under 600 bytes on 64-bit).

use core::alloc::Layout;
use core::fmt;
use core::marker::PhantomData;
use core::mem::{align_of, size_of};
use core::ops::Bound;
use core::ptr::{self, NonNull};

/// Default size of a node in bytes, chosen by measurement on x86-64 (see the
/// crate's `bench` example): with a million `u64 -> u64` entries, 512-byte
/// nodes look up and scan faster than 128- and 256-byte ones and are the only
/// ones of the three under 24 bytes per entry after random inserts; 1024-byte
/// nodes are barely faster, insert more slowly and need the `kmalloc-1k`
/// cache.
pub const DEFAULT_NODE_BYTES: usize = 512;

/// Alignment of every node (a cache line).
pub const NODE_ALIGN: usize = 64;

/// Maximum height of a tree.
///
/// An insert that would grow the tree beyond it fails with
/// [`Error::NoMemory`]. That cannot happen in practice: a non-root inner node
/// has at least 3 children (16 for `u64` keys in 512-byte nodes), so a tree
/// of height 32 has more than `2 * 3^30` (about `4 * 10^14`) leaves.
pub const MAX_HEIGHT: usize = 32;

/// Smallest leaf capacity (entries) a geometry may have.
const MIN_LEAF_CAP: usize = 3;
/// Smallest inner-node capacity (keys) a geometry may have; see [`MAX_HEIGHT`].
const MIN_INNER_CAP: usize = 5;
/// Largest supported node size: `len` is a `u16`.
const MAX_NODE_BYTES: usize = 1 << 16;

/// A memory source for tree nodes.
///
/// All nodes of a tree have the same layout: `NODE_BYTES` bytes aligned to
/// [`NODE_ALIGN`]. In a kernel module this is `kmalloc`/`kfree` (with
/// `GFP_KERNEL` or `GFP_ATOMIC`) or a `kmem_cache` for the node size. A type
/// that can name several pools (a reference to a pool, say) must free a node
/// into whichever pool it came from, or else exist once per pool.
///
/// # Safety
///
/// Implementors must guarantee that:
/// * a pointer returned by [`NodeAlloc::alloc`] is valid for reads and writes
///   of `layout.size()` bytes and aligned to `layout.align()` until it is
///   passed to [`NodeAlloc::free`];
/// * memory allocated by one value of the implementing type may be freed by
///   any other value of the same type: nodes move between the trees and
///   reservations that share an allocator type (see [`BTree::merge`] and
///   [`BTree::insert_reserved`]).
pub unsafe trait NodeAlloc {
    /// Allocates memory for `layout`, or returns `None` if there is none.
    fn alloc(&self, layout: Layout) -> Option<NonNull<u8>>;

    /// Frees memory returned by [`NodeAlloc::alloc`].
    ///
    /// # Safety
    ///
    /// `ptr` came from `alloc` of an allocator of this type with the same
    /// `layout`, has not been freed, and is not used afterwards.
    unsafe fn free(&self, ptr: NonNull<u8>, layout: Layout);
}

// SAFETY: Every call is forwarded to `A`, which upholds the contract; values
// of `&A` are interchangeable because values of `A` are.
unsafe impl<A: NodeAlloc + ?Sized> NodeAlloc for &A {
    fn alloc(&self, layout: Layout) -> Option<NonNull<u8>> {
        (**self).alloc(layout)
    }

    unsafe fn free(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: The caller's guarantees are those `A::free` requires.
        unsafe { (**self).free(ptr, layout) }
    }
}

/// Errors of tree operations. A failed operation leaves the tree unchanged
/// (except [`BTree::merge`], which keeps what it moved).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The allocator had no memory for a node (`-ENOMEM`).
    NoMemory,
    /// The key is already in the tree (`-EEXIST`).
    Duplicate,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::NoMemory => "out of memory for a B+tree node",
            Error::Duplicate => "key already present",
        })
    }
}

/// Untyped pointer to a node.
type RawNode = NonNull<u8>;

/// Byte offset of the `len: u16` field of every node.
const LEN_OFF: usize = 0;
/// Byte offset of the `kind: u8` field of every node.
const KIND_OFF: usize = 2;
/// Byte offset of a leaf's `prev` link.
const PREV_OFF: usize = size_of::<RawNode>();
/// Byte offset of a leaf's `next` link.
const NEXT_OFF: usize = 2 * size_of::<RawNode>();
/// Size of the leaf header (`len`, `kind`, `prev`, `next`).
const LEAF_HEADER: usize = 3 * size_of::<RawNode>();
/// Size of the inner-node header (`len`, `kind`).
const INNER_HEADER: usize = KIND_OFF + 1;
/// `kind` of a leaf.
const KIND_LEAF: u8 = 1;
/// `kind` of an inner node.
const KIND_INNER: u8 = 2;

/// Rounds `x` up to a multiple of `align`, a power of two.
const fn align_up(x: usize, align: usize) -> usize {
    (x + align - 1) & !(align - 1)
}

/// Largest `n` such that `n` keys of `key_size` bytes at `key_off`, followed
/// by `n + extra` elements of `tail_size` bytes aligned to `tail_align`, fit
/// in `bytes`.
const fn slots_that_fit(
    key_off: usize,
    key_size: usize,
    tail_align: usize,
    tail_size: usize,
    extra: usize,
    bytes: usize,
) -> usize {
    let per_slot = if key_size + tail_size == 0 {
        1
    } else {
        key_size + tail_size
    };
    let mut n = bytes.saturating_sub(key_off) / per_slot;
    if n > u16::MAX as usize - 1 {
        n = u16::MAX as usize - 1;
    }
    while n > 0 && align_up(key_off + n * key_size, tail_align) + (n + extra) * tail_size > bytes {
        n -= 1;
    }
    n
}

/// The layout shared by all nodes of `N` bytes.
struct NodeLayout<const N: usize>;

impl<const N: usize> NodeLayout<N> {
    /// Compile-time check of the node size.
    const CHECK: () = assert!(
        N & (NODE_ALIGN - 1) == 0 && N >= 2 * NODE_ALIGN && N <= MAX_NODE_BYTES,
        "NODE_BYTES must be a multiple of NODE_ALIGN between 128 and 65536"
    );

    /// `N` bytes aligned to [`NODE_ALIGN`].
    const LAYOUT: Layout = {
        let () = Self::CHECK;
        // SAFETY: `NODE_ALIGN` is a power of two and `CHECK` bounds `N`, so
        // `N` rounded up to the alignment does not overflow `isize`.
        unsafe { Layout::from_size_align_unchecked(N, NODE_ALIGN) }
    };
}

/// An array of `cap` elements of type `T` at byte offset `off` in a node.
///
/// # Invariants
///
/// For the geometry that defines it, `off` is aligned for `T` and the whole
/// array lies inside the node (checked by [`Geo::CHECK`] and the layout
/// computation).
struct Slots<T> {
    off: usize,
    cap: usize,
    _elem: PhantomData<T>,
}

impl<T> Slots<T> {
    const fn new(off: usize, cap: usize) -> Self {
        Self {
            off,
            cap,
            _elem: PhantomData,
        }
    }

    /// Pointer to element `i`.
    ///
    /// # Safety
    ///
    /// `node` points to a live node of the geometry that defines `self`, and
    /// `i <= self.cap`.
    unsafe fn at(&self, node: RawNode, i: usize) -> *mut T {
        debug_assert!(i <= self.cap);
        // SAFETY: By the type invariant the array lies inside the node and
        // the caller keeps `i` within the array or one past its end.
        unsafe { node.as_ptr().add(self.off).cast::<T>().add(i) }
    }

    /// Reads element `i`.
    ///
    /// # Safety
    ///
    /// As for [`Slots::at`], with `i < self.cap` and element `i` initialised.
    unsafe fn read(&self, node: RawNode, i: usize) -> T
    where
        T: Copy,
    {
        // SAFETY: The pointer is in bounds and aligned (caller, type
        // invariant) and the element is initialised (caller).
        unsafe { ptr::read(self.at(node, i)) }
    }

    /// Writes element `i`.
    ///
    /// # Safety
    ///
    /// As for [`Slots::at`], with `i < self.cap`, and no reference to the
    /// element exists.
    unsafe fn write(&self, node: RawNode, i: usize, value: T) {
        // SAFETY: The pointer is in bounds and aligned, and nothing else
        // accesses the element (caller).
        unsafe { ptr::write(self.at(node, i), value) }
    }

    /// Copies `count` elements from `src[si..]` to `dst[di..]`; the ranges
    /// may overlap.
    ///
    /// # Safety
    ///
    /// `src` and `dst` are live nodes of the geometry, `si + count` and
    /// `di + count` are at most `self.cap`, the source elements are
    /// initialised and no reference to either range exists.
    unsafe fn copy(&self, src: RawNode, si: usize, dst: RawNode, di: usize, count: usize) {
        debug_assert!(si + count <= self.cap && di + count <= self.cap);
        // SAFETY: Both ranges are in bounds and aligned (caller, type
        // invariant); `ptr::copy` allows overlap.
        unsafe { ptr::copy(self.at(src, si), self.at(dst, di), count) }
    }

    /// The first `len` elements as a slice.
    ///
    /// # Safety
    ///
    /// `node` is a live node of the geometry, `len <= self.cap`, the first
    /// `len` elements are initialised and not written during `'a`.
    unsafe fn slice<'a>(&self, node: RawNode, len: usize) -> &'a [T] {
        // SAFETY: In bounds, aligned, initialised and not mutated while the
        // slice lives (caller).
        unsafe { core::slice::from_raw_parts(self.at(node, 0), len) }
    }
}

/// Node geometry for keys `K`, values `V` and `N`-byte nodes.
struct Geo<K, V, const N: usize>(PhantomData<(K, V)>);

impl<K, V, const N: usize> Geo<K, V, N> {
    const LEN: Slots<u16> = Slots::new(LEN_OFF, 1);
    const KIND: Slots<u8> = Slots::new(KIND_OFF, 1);
    const PREV: Slots<Option<RawNode>> = Slots::new(PREV_OFF, 1);
    const NEXT: Slots<Option<RawNode>> = Slots::new(NEXT_OFF, 1);

    const LEAF_KEYS_OFF: usize = align_up(LEAF_HEADER, align_of::<K>());
    /// Physical leaf slots: the capacity plus one overflow slot.
    const LEAF_SLOTS: usize = slots_that_fit(
        Self::LEAF_KEYS_OFF,
        size_of::<K>(),
        align_of::<V>(),
        size_of::<V>(),
        0,
        N,
    );
    const LEAF_CAP: usize = Self::LEAF_SLOTS.saturating_sub(1);
    const LEAF_KEYS: Slots<K> = Slots::new(Self::LEAF_KEYS_OFF, Self::LEAF_SLOTS);
    const LEAF_VALS: Slots<V> = Slots::new(
        align_up(
            Self::LEAF_KEYS_OFF + Self::LEAF_SLOTS * size_of::<K>(),
            align_of::<V>(),
        ),
        Self::LEAF_SLOTS,
    );

    const INNER_KEYS_OFF: usize = align_up(INNER_HEADER, align_of::<K>());
    /// Physical inner key slots: the capacity plus one overflow slot.
    const INNER_SLOTS: usize = slots_that_fit(
        Self::INNER_KEYS_OFF,
        size_of::<K>(),
        align_of::<RawNode>(),
        size_of::<RawNode>(),
        1,
        N,
    );
    const INNER_CAP: usize = Self::INNER_SLOTS.saturating_sub(1);
    const INNER_KEYS: Slots<K> = Slots::new(Self::INNER_KEYS_OFF, Self::INNER_SLOTS);
    const INNER_CHILDREN: Slots<RawNode> = Slots::new(
        align_up(
            Self::INNER_KEYS_OFF + Self::INNER_SLOTS * size_of::<K>(),
            align_of::<RawNode>(),
        ),
        Self::INNER_SLOTS + 1,
    );

    /// Compile-time check of the geometry.
    const CHECK: () = {
        let () = NodeLayout::<N>::CHECK;
        assert!(
            align_of::<K>() <= NODE_ALIGN && align_of::<V>() <= NODE_ALIGN,
            "key and value alignment must not exceed NODE_ALIGN"
        );
        assert!(
            Self::LEAF_CAP >= MIN_LEAF_CAP && Self::INNER_CAP >= MIN_INNER_CAP,
            "NODE_BYTES too small for this key and value type"
        );
    };
}

/// A node allocation that belongs to no tree.
///
/// # Invariants
///
/// Points to memory of `NodeLayout::<N>::LAYOUT` for the `N` of its owner,
/// allocated by a value of its owner's allocator type and owned exclusively.
struct FreeNode(RawNode);

impl FreeNode {
    /// Allocates a node.
    fn alloc<A: NodeAlloc, const N: usize>(alloc: &A) -> Option<Self> {
        alloc.alloc(NodeLayout::<N>::LAYOUT).map(FreeNode)
    }

    /// Returns the node to `alloc`.
    fn free<A: NodeAlloc, const N: usize>(self, alloc: &A) {
        // SAFETY: By the type invariant the memory came from an allocator of
        // type `A` with this layout and nobody else uses it.
        unsafe { alloc.free(self.0, NodeLayout::<N>::LAYOUT) }
    }
}

/// A handle to a leaf.
///
/// # Invariants
///
/// Points to a live leaf of geometry `Geo<K, V, N>` that belongs to a tree:
/// `len <= LEAF_SLOTS`, keys and values `0..len` initialised, `prev`/`next`
/// pointing to live leaves of the same tree. The tree is borrowed (shared for
/// reads, exclusively for writes) while the handle is used, and the handle is
/// not used after the node is freed.
struct Leaf<K, V, const N: usize> {
    raw: RawNode,
    _kv: PhantomData<(K, V)>,
}

/// A handle to an inner node.
///
/// # Invariants
///
/// As for [`Leaf`], for an inner node: `len <= INNER_SLOTS`, keys `0..len`
/// and children `0..=len` initialised, children pointing to live nodes of the
/// same tree, one level further down.
struct Inner<K, V, const N: usize> {
    raw: RawNode,
    _kv: PhantomData<(K, V)>,
}

impl<K, V, const N: usize> Clone for Leaf<K, V, N> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V, const N: usize> Copy for Leaf<K, V, N> {}
impl<K, V, const N: usize> Clone for Inner<K, V, N> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V, const N: usize> Copy for Inner<K, V, N> {}

/// A handle to a node of either kind.
enum NodeRef<K, V, const N: usize> {
    Leaf(Leaf<K, V, N>),
    Inner(Inner<K, V, N>),
}

impl<K, V, const N: usize> Clone for NodeRef<K, V, N> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V, const N: usize> Copy for NodeRef<K, V, N> {}

/// Which sibling of a node.
#[derive(Clone, Copy)]
enum Side {
    Left,
    Right,
}

impl<K, V, const N: usize> NodeRef<K, V, N> {
    /// Types a node by its `kind` field.
    ///
    /// # Safety
    ///
    /// `raw` points to a live, formatted node of a tree with geometry
    /// `Geo<K, V, N>`, and the handle invariants hold for the returned handle.
    unsafe fn from_raw(raw: RawNode) -> Self {
        // SAFETY: The node is live and formatted (caller), so `kind` is
        // initialised.
        let kind = unsafe { Geo::<K, V, N>::KIND.read(raw, 0) };
        let _kv = PhantomData;
        if kind == KIND_LEAF {
            Self::Leaf(Leaf { raw, _kv })
        } else {
            debug_assert_eq!(kind, KIND_INNER);
            Self::Inner(Inner { raw, _kv })
        }
    }

    fn raw(self) -> RawNode {
        match self {
            Self::Leaf(leaf) => leaf.raw,
            Self::Inner(inner) => inner.raw,
        }
    }

    /// Entries (leaf) or keys (inner node).
    fn len(self) -> usize {
        // SAFETY: Handle invariant: a live node with an initialised header.
        usize::from(unsafe { Geo::<K, V, N>::LEN.read(self.raw(), 0) })
    }

    /// The capacity of a node of this kind.
    fn cap(self) -> usize {
        match self {
            Self::Leaf(_) => Geo::<K, V, N>::LEAF_CAP,
            Self::Inner(_) => Geo::<K, V, N>::INNER_CAP,
        }
    }

    /// The fewest entries or keys a non-root node of this kind holds.
    fn min(self) -> usize {
        self.cap() / 2
    }

    /// Gives the node up.
    ///
    /// # Safety
    ///
    /// The node has been unlinked from its tree (parent and leaf chain), its
    /// children (if any) are no longer reachable through it, and no handle to
    /// it is used afterwards.
    unsafe fn into_free(self) -> FreeNode {
        // By the handle invariant the node was allocated with the tree's
        // allocator type and layout; the caller gives up all other access.
        FreeNode(self.raw())
    }
}

/// Writes the common header of a fresh node.
fn format_header<K, V, const N: usize>(node: &FreeNode, kind: u8) {
    // SAFETY: A `FreeNode` is an exclusively owned node allocation, which
    // holds the header fields.
    unsafe {
        Geo::<K, V, N>::LEN.write(node.0, 0, 0);
        Geo::<K, V, N>::KIND.write(node.0, 0, kind);
    }
}

/// Index of the first key `> key` (`strict`) or `>= key` in `keys`.
fn key_bound<K: Ord>(keys: &[K], key: &K, strict: bool) -> usize {
    if strict {
        keys.partition_point(|k| k <= key)
    } else {
        keys.partition_point(|k| k < key)
    }
}

impl<K, V, const N: usize> Leaf<K, V, N> {
    fn len(self) -> usize {
        NodeRef::Leaf(self).len()
    }

    fn set_len(self, len: usize) {
        debug_assert!(len <= Geo::<K, V, N>::LEAF_SLOTS);
        // SAFETY: Handle invariant: live node, exclusively borrowed tree for
        // writes. `len` fits in `u16` because `LEAF_SLOTS` does.
        unsafe { Geo::<K, V, N>::LEN.write(self.raw, 0, len as u16) }
    }

    /// Reads a `prev`/`next` link.
    fn link(self, which: &Slots<Option<RawNode>>) -> Option<Self> {
        // SAFETY: Handle invariant: the links of a live leaf are initialised
        // and point to live leaves of the same tree.
        unsafe { which.read(self.raw, 0) }.map(|raw| Leaf {
            raw,
            _kv: PhantomData,
        })
    }

    fn set_link(self, which: &Slots<Option<RawNode>>, to: Option<Self>) {
        // SAFETY: Handle invariant: live leaf, exclusively borrowed tree.
        unsafe { which.write(self.raw, 0, to.map(|leaf| leaf.raw)) }
    }

    fn prev(self) -> Option<Self> {
        self.link(&Geo::<K, V, N>::PREV)
    }

    fn next(self) -> Option<Self> {
        self.link(&Geo::<K, V, N>::NEXT)
    }
}

impl<K: Copy + Ord, V: Copy, const N: usize> Leaf<K, V, N> {
    /// Makes `node` an empty, unlinked leaf.
    fn format(node: FreeNode) -> Self {
        format_header::<K, V, N>(&node, KIND_LEAF);
        let leaf = Leaf {
            raw: node.0,
            _kv: PhantomData,
        };
        leaf.set_link(&Geo::<K, V, N>::PREV, None);
        leaf.set_link(&Geo::<K, V, N>::NEXT, None);
        leaf
    }

    fn key(self, i: usize) -> Option<K> {
        // SAFETY: `i < len`: an initialised slot of a live leaf.
        (i < self.len()).then(|| unsafe { Geo::<K, V, N>::LEAF_KEYS.read(self.raw, i) })
    }

    fn entry(self, i: usize) -> Option<(K, V)> {
        let key = self.key(i)?;
        // SAFETY: `key(i)` succeeded, so `i < len`: an initialised slot.
        Some((key, unsafe { Geo::<K, V, N>::LEAF_VALS.read(self.raw, i) }))
    }

    /// Replaces the value of entry `i`, returning the old one.
    fn replace_val(self, i: usize, value: V) -> Option<V> {
        let (_, old) = self.entry(i)?;
        // SAFETY: `i < len` and the tree is exclusively borrowed.
        unsafe { Geo::<K, V, N>::LEAF_VALS.write(self.raw, i, value) };
        Some(old)
    }

    /// A mutable reference to the value of entry `i`.
    ///
    /// # Safety
    ///
    /// The tree is exclusively borrowed for `'a`.
    unsafe fn val_mut<'a>(self, i: usize) -> Option<&'a mut V> {
        // SAFETY: `i < len`: an initialised, aligned slot of a live leaf that
        // nothing else accesses during `'a` (caller).
        (i < self.len()).then(|| unsafe { &mut *Geo::<K, V, N>::LEAF_VALS.at(self.raw, i) })
    }

    /// Index of the first key `> key` (`strict`) or `>= key`.
    fn bound(self, key: &K, strict: bool) -> usize {
        // SAFETY: The first `len` keys of a live leaf are initialised and the
        // slice does not outlive this call.
        let keys = unsafe { Geo::<K, V, N>::LEAF_KEYS.slice(self.raw, self.len()) };
        key_bound(keys, key, strict)
    }

    /// `Ok(index)` of `key`, or `Err(index)` where it would be inserted.
    fn search(self, key: &K) -> Result<usize, usize> {
        let i = self.bound(key, false);
        match self.key(i) {
            Some(k) if k == *key => Ok(i),
            _ => Err(i),
        }
    }

    /// Inserts an entry at `i`; fails if `i > len` or the leaf is physically
    /// full.
    fn insert(self, i: usize, key: K, value: V) -> bool {
        let len = self.len();
        if i > len || len >= Geo::<K, V, N>::LEAF_SLOTS {
            return false;
        }
        // SAFETY: `i <= len < LEAF_SLOTS`: the moved range `i..len` and its
        // destination `i + 1..len + 1` are in bounds, the source initialised;
        // the tree is exclusively borrowed.
        unsafe {
            Geo::<K, V, N>::LEAF_KEYS.copy(self.raw, i, self.raw, i + 1, len - i);
            Geo::<K, V, N>::LEAF_VALS.copy(self.raw, i, self.raw, i + 1, len - i);
            Geo::<K, V, N>::LEAF_KEYS.write(self.raw, i, key);
            Geo::<K, V, N>::LEAF_VALS.write(self.raw, i, value);
        }
        self.set_len(len + 1);
        true
    }

    /// Removes and returns entry `i`.
    fn remove(self, i: usize) -> Option<(K, V)> {
        let entry = self.entry(i)?;
        let len = self.len();
        // SAFETY: `i < len`: `i + 1..len` is initialised and in bounds; the
        // tree is exclusively borrowed.
        unsafe {
            Geo::<K, V, N>::LEAF_KEYS.copy(self.raw, i + 1, self.raw, i, len - i - 1);
            Geo::<K, V, N>::LEAF_VALS.copy(self.raw, i + 1, self.raw, i, len - i - 1);
        }
        self.set_len(len - 1);
        Some(entry)
    }

    /// Moves entries `at..` to the end of `dst`, a different leaf.
    fn move_tail(self, at: usize, dst: Self) -> bool {
        let (len, dst_len) = (self.len(), dst.len());
        if at > len || self.raw == dst.raw || dst_len + (len - at) > Geo::<K, V, N>::LEAF_SLOTS {
            return false;
        }
        let count = len - at;
        // SAFETY: Distinct live leaves; the source range `at..len` is
        // initialised, the destination `dst_len..dst_len + count` in bounds;
        // the tree is exclusively borrowed.
        unsafe {
            Geo::<K, V, N>::LEAF_KEYS.copy(self.raw, at, dst.raw, dst_len, count);
            Geo::<K, V, N>::LEAF_VALS.copy(self.raw, at, dst.raw, dst_len, count);
        }
        self.set_len(at);
        dst.set_len(dst_len + count);
        true
    }

    /// Moves entries `at..` to a new leaf linked after this one.
    fn split_off(self, at: usize, node: FreeNode) -> Result<Self, FreeNode> {
        if at == 0 || at >= self.len() {
            return Err(node);
        }
        let right = Self::format(node);
        let moved = self.move_tail(at, right);
        debug_assert!(moved);
        let next = self.next();
        right.set_link(&Geo::<K, V, N>::NEXT, next);
        right.set_link(&Geo::<K, V, N>::PREV, Some(self));
        if let Some(next) = next {
            next.set_link(&Geo::<K, V, N>::PREV, Some(right));
        }
        self.set_link(&Geo::<K, V, N>::NEXT, Some(right));
        Ok(right)
    }

    /// Moves all entries of `right`, the next leaf, into this one and unlinks
    /// `right` from the leaf chain.
    fn absorb(self, right: Self) -> bool {
        if !right.move_tail(0, self) {
            return false;
        }
        let next = right.next();
        self.set_link(&Geo::<K, V, N>::NEXT, next);
        if let Some(next) = next {
            next.set_link(&Geo::<K, V, N>::PREV, Some(self));
        }
        true
    }
}

impl<K, V, const N: usize> Inner<K, V, N> {
    fn len(self) -> usize {
        NodeRef::Inner(self).len()
    }

    fn set_len(self, len: usize) {
        debug_assert!(len <= Geo::<K, V, N>::INNER_SLOTS);
        // SAFETY: Handle invariant: live node, exclusively borrowed tree for
        // writes. `len` fits in `u16` because `INNER_SLOTS` does.
        unsafe { Geo::<K, V, N>::LEN.write(self.raw, 0, len as u16) }
    }

    fn child_raw(self, i: usize) -> Option<RawNode> {
        // SAFETY: `i <= len`: an initialised child slot of a live node.
        (i <= self.len()).then(|| unsafe { Geo::<K, V, N>::INNER_CHILDREN.read(self.raw, i) })
    }

    fn child(self, i: usize) -> Option<NodeRef<K, V, N>> {
        // SAFETY: Handle invariant: children are live, formatted nodes of the
        // same tree, which stays borrowed as this handle's is.
        self.child_raw(i)
            .map(|raw| unsafe { NodeRef::from_raw(raw) })
    }
}

impl<K: Copy + Ord, V, const N: usize> Inner<K, V, N> {
    /// Makes `node` an inner node with no keys and the single child `child0`.
    fn format(node: FreeNode, child0: RawNode) -> Self {
        format_header::<K, V, N>(&node, KIND_INNER);
        // SAFETY: `node` is exclusively owned; child slot 0 is in bounds.
        unsafe { Geo::<K, V, N>::INNER_CHILDREN.write(node.0, 0, child0) };
        Inner {
            raw: node.0,
            _kv: PhantomData,
        }
    }

    fn key(self, i: usize) -> Option<K> {
        // SAFETY: `i < len`: an initialised key slot of a live node.
        (i < self.len()).then(|| unsafe { Geo::<K, V, N>::INNER_KEYS.read(self.raw, i) })
    }

    fn set_key(self, i: usize, key: K) -> bool {
        if i >= self.len() {
            return false;
        }
        // SAFETY: `i < len`, the tree is exclusively borrowed.
        unsafe { Geo::<K, V, N>::INNER_KEYS.write(self.raw, i, key) };
        true
    }

    /// Index of the child whose subtree holds `key`.
    fn child_index(self, key: &K) -> usize {
        // SAFETY: The first `len` keys of a live node are initialised and the
        // slice does not outlive this call.
        let keys = unsafe { Geo::<K, V, N>::INNER_KEYS.slice(self.raw, self.len()) };
        key_bound(keys, key, true)
    }

    /// Inserts `key` at `i` and `child` right of it, at `i + 1`.
    fn insert(self, i: usize, key: K, child: RawNode) -> bool {
        let len = self.len();
        if i > len || len >= Geo::<K, V, N>::INNER_SLOTS {
            return false;
        }
        // SAFETY: `i <= len < INNER_SLOTS`: keys `i..len` move to
        // `i + 1..len + 1` and children `i + 1..len + 1` to `i + 2..len + 2`,
        // all in bounds, the sources initialised; exclusive borrow.
        unsafe {
            Geo::<K, V, N>::INNER_KEYS.copy(self.raw, i, self.raw, i + 1, len - i);
            Geo::<K, V, N>::INNER_CHILDREN.copy(self.raw, i + 1, self.raw, i + 2, len - i);
            Geo::<K, V, N>::INNER_KEYS.write(self.raw, i, key);
            Geo::<K, V, N>::INNER_CHILDREN.write(self.raw, i + 1, child);
        }
        self.set_len(len + 1);
        true
    }

    /// Inserts `key` and `child` in front of all keys and children.
    fn insert_front(self, key: K, child: RawNode) -> bool {
        let len = self.len();
        if len >= Geo::<K, V, N>::INNER_SLOTS {
            return false;
        }
        // SAFETY: `len < INNER_SLOTS`: keys `0..len` move to `1..len + 1` and
        // children `0..len + 1` to `1..len + 2`, in bounds; exclusive borrow.
        unsafe {
            Geo::<K, V, N>::INNER_KEYS.copy(self.raw, 0, self.raw, 1, len);
            Geo::<K, V, N>::INNER_CHILDREN.copy(self.raw, 0, self.raw, 1, len + 1);
            Geo::<K, V, N>::INNER_KEYS.write(self.raw, 0, key);
            Geo::<K, V, N>::INNER_CHILDREN.write(self.raw, 0, child);
        }
        self.set_len(len + 1);
        true
    }

    /// Removes key `i` and the child right of it, `i + 1`.
    fn remove(self, i: usize) -> Option<(K, RawNode)> {
        let key = self.key(i)?;
        let child = self.child_raw(i + 1)?;
        let len = self.len();
        // SAFETY: `i < len`: keys `i + 1..len` and children `i + 2..len + 1`
        // are initialised and move down by one; exclusive borrow.
        unsafe {
            Geo::<K, V, N>::INNER_KEYS.copy(self.raw, i + 1, self.raw, i, len - i - 1);
            Geo::<K, V, N>::INNER_CHILDREN.copy(self.raw, i + 2, self.raw, i + 1, len - i - 1);
        }
        self.set_len(len - 1);
        Some((key, child))
    }

    /// Removes the first key and the first child.
    fn remove_front(self) -> Option<(K, RawNode)> {
        let key = self.key(0)?;
        let child = self.child_raw(0)?;
        let len = self.len();
        // SAFETY: `len >= 1`: keys `1..len` and children `1..len + 1` are
        // initialised and move down by one; exclusive borrow.
        unsafe {
            Geo::<K, V, N>::INNER_KEYS.copy(self.raw, 1, self.raw, 0, len - 1);
            Geo::<K, V, N>::INNER_CHILDREN.copy(self.raw, 1, self.raw, 0, len);
        }
        self.set_len(len - 1);
        Some((key, child))
    }

    /// Keeps keys `..at`, moves keys `at + 1..` and the children right of
    /// them to a new node and returns key `at`, the separator, with it.
    fn split_off(self, at: usize, node: FreeNode) -> Result<(K, Self), FreeNode> {
        let (Some(sep), Some(child0)) = (self.key(at), self.child_raw(at + 1)) else {
            return Err(node);
        };
        let len = self.len();
        let count = len - at - 1;
        let right = Self::format(node, child0);
        // SAFETY: Distinct live nodes; keys `at + 1..len` and children
        // `at + 2..len + 1` are initialised and go to keys `0..count` and
        // children `1..count + 1` of the new node; exclusive borrow.
        unsafe {
            Geo::<K, V, N>::INNER_KEYS.copy(self.raw, at + 1, right.raw, 0, count);
            Geo::<K, V, N>::INNER_CHILDREN.copy(self.raw, at + 2, right.raw, 1, count);
        }
        right.set_len(count);
        self.set_len(at);
        Ok((sep, right))
    }

    /// Appends `sep` and all keys and children of `right`.
    fn append(self, sep: K, right: Self) -> bool {
        let (len, right_len) = (self.len(), right.len());
        if self.raw == right.raw || len + 1 + right_len > Geo::<K, V, N>::INNER_SLOTS {
            return false;
        }
        // SAFETY: Distinct live nodes; keys `0..right_len` and children
        // `0..right_len + 1` of `right` are initialised and go to keys
        // `len + 1..` and children `len + 1..` of `self`, in bounds by the
        // check above; exclusive borrow.
        unsafe {
            Geo::<K, V, N>::INNER_KEYS.write(self.raw, len, sep);
            Geo::<K, V, N>::INNER_KEYS.copy(right.raw, 0, self.raw, len + 1, right_len);
            Geo::<K, V, N>::INNER_CHILDREN.copy(right.raw, 0, self.raw, len + 1, right_len + 1);
        }
        self.set_len(len + 1 + right_len);
        true
    }
}

/// A fixed-capacity stack of free nodes.
///
/// # Invariants
///
/// `nodes[..len]` are `Some` and hold [`FreeNode`]s of the owner's layout and
/// allocator type; `nodes[len..]` are `None`.
struct NodeStack {
    nodes: [Option<RawNode>; MAX_HEIGHT],
    len: usize,
}

impl NodeStack {
    const fn new() -> Self {
        Self {
            nodes: [None; MAX_HEIGHT],
            len: 0,
        }
    }

    fn pop(&mut self) -> Option<FreeNode> {
        let i = self.len.checked_sub(1)?;
        let raw = self.nodes.get_mut(i)?.take()?;
        self.len = i;
        Some(FreeNode(raw))
    }

    /// Allocates nodes until the stack holds `count` of them (or is full).
    fn fill<A: NodeAlloc, const N: usize>(&mut self, alloc: &A, count: usize) -> Result<(), Error> {
        while self.len < count {
            let Some(slot) = self.nodes.get_mut(self.len) else {
                break;
            };
            *slot = Some(FreeNode::alloc::<A, N>(alloc).ok_or(Error::NoMemory)?.0);
            self.len += 1;
        }
        Ok(())
    }

    /// Frees all nodes.
    fn release<A: NodeAlloc, const N: usize>(&mut self, alloc: &A) {
        while let Some(node) = self.pop() {
            node.free::<A, N>(alloc);
        }
    }
}

/// Nodes allocated ahead of an insert, for inserting where allocation must not
/// fail (see [`BTree::insert_reserved`]).
///
/// It owns its allocator, of the same type as the tree's, and frees the
/// nodes it still holds when dropped or [released](Reservation::release).
///
/// # Invariants
///
/// The nodes of `nodes` were allocated by a value of type `A` with the layout
/// of `NODE_BYTES`-byte nodes.
pub struct Reservation<A: NodeAlloc, const NODE_BYTES: usize = DEFAULT_NODE_BYTES> {
    nodes: NodeStack,
    alloc: A,
}

impl<A: NodeAlloc, const NODE_BYTES: usize> Reservation<A, NODE_BYTES> {
    /// Most nodes a reservation holds: enough for one insert into any tree.
    pub const CAPACITY: usize = MAX_HEIGHT;

    /// Creates an empty reservation that allocates from `alloc`.
    pub const fn new(alloc: A) -> Self {
        Self {
            nodes: NodeStack::new(),
            alloc,
        }
    }

    /// Allocates nodes until the reservation holds `count` (at most
    /// [`Self::CAPACITY`]). On failure the nodes allocated so far are kept.
    pub fn fill(&mut self, count: usize) -> Result<(), Error> {
        self.nodes.fill::<A, NODE_BYTES>(&self.alloc, count)
    }

    /// Number of nodes held.
    pub fn len(&self) -> usize {
        self.nodes.len
    }

    /// Whether the reservation holds no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.len == 0
    }

    /// Frees all nodes held.
    pub fn release(&mut self) {
        self.nodes.release::<A, NODE_BYTES>(&self.alloc);
    }
}

impl<A: NodeAlloc, const NODE_BYTES: usize> Drop for Reservation<A, NODE_BYTES> {
    fn drop(&mut self) {
        self.release();
    }
}

// SAFETY: A reservation owns untyped memory and an `A`; sending it to another
// thread is sound when sending `A` is.
unsafe impl<A: NodeAlloc + Send, const NODE_BYTES: usize> Send for Reservation<A, NODE_BYTES> {}

/// The inner nodes on the way from the root to a leaf, with the index of the
/// child taken in each.
///
/// # Invariants
///
/// `nodes[..depth]` are `Some`: `nodes[0]` is the root and `nodes[d + 1]` is
/// child `index[d]` of `nodes[d]`.
struct Path<K, V, const N: usize> {
    nodes: [Option<Inner<K, V, N>>; MAX_HEIGHT],
    index: [u16; MAX_HEIGHT],
    depth: usize,
}

impl<K, V, const N: usize> Path<K, V, N> {
    fn new() -> Self {
        Self {
            nodes: [None; MAX_HEIGHT],
            index: [0; MAX_HEIGHT],
            depth: 0,
        }
    }

    fn push(&mut self, node: Inner<K, V, N>, index: usize) {
        if let (Some(n), Some(i)) = (
            self.nodes.get_mut(self.depth),
            self.index.get_mut(self.depth),
        ) {
            *n = Some(node);
            // A child index is at most `INNER_SLOTS`, which fits in `u16`.
            *i = index as u16;
            self.depth += 1;
        }
    }

    /// The parent of the node at `depth`, and the node's index in it.
    fn parent(&self, depth: usize) -> Option<(Inner<K, V, N>, usize)> {
        let d = depth.checked_sub(1)?;
        Some(((*self.nodes.get(d)?)?, usize::from(*self.index.get(d)?)))
    }
}

/// A B+tree mapping `K` to `V`, with `NODE_BYTES`-byte nodes from `A`.
///
/// See the [module documentation](self) for the design.
///
/// # Invariants
///
/// * `root` is `None` iff `height == 0` iff `len == 0`; otherwise the nodes
///   reachable from `root` form a B+tree of `height` levels, all leaves at
///   depth `height - 1`, leaves linked in key order, keys strictly increasing,
///   bounded by the separators above them, and meeting the fill bounds of the
///   module documentation.
/// * `len` is the number of entries, `nodes` the number of nodes.
/// * Every node was allocated by a value of type `A` with the node layout and
///   is owned by this tree alone.
pub struct BTree<K, V, A: NodeAlloc, const NODE_BYTES: usize = DEFAULT_NODE_BYTES> {
    root: Option<RawNode>,
    height: usize,
    len: usize,
    nodes: usize,
    alloc: A,
    _kv: PhantomData<(K, V)>,
}

// SAFETY: The tree owns its nodes and the keys and values in them; sending the
// tree moves all of them, which is sound when `K`, `V` and `A` are `Send`.
unsafe impl<K: Send, V: Send, A: NodeAlloc + Send, const NODE_BYTES: usize> Send
    for BTree<K, V, A, NODE_BYTES>
{
}

// SAFETY: No method taking `&self` writes to a node or to the allocator, so
// shared references may be used from several threads when `K`, `V` and `A`
// may be shared.
unsafe impl<K: Sync, V: Sync, A: NodeAlloc + Sync, const NODE_BYTES: usize> Sync
    for BTree<K, V, A, NODE_BYTES>
{
}

impl<K, V, A: NodeAlloc, const NODE_BYTES: usize> BTree<K, V, A, NODE_BYTES> {
    /// The root node.
    fn root(&self) -> Option<NodeRef<K, V, NODE_BYTES>> {
        // SAFETY: Type invariant: the root is a live, formatted node of this
        // tree, which stays borrowed as long as the handle is used.
        self.root.map(|raw| unsafe { NodeRef::from_raw(raw) })
    }

    /// Frees the subtree under `node`, calling `visit` on each leaf first, in
    /// key order. Recursion is bounded by the height.
    ///
    /// The subtree must have been detached from the tree.
    fn free_subtree(
        &self,
        node: NodeRef<K, V, NODE_BYTES>,
        visit: &mut impl FnMut(Leaf<K, V, NODE_BYTES>),
    ) {
        match node {
            NodeRef::Leaf(leaf) => visit(leaf),
            NodeRef::Inner(inner) => {
                for i in 0..=inner.len() {
                    if let Some(child) = inner.child(i) {
                        self.free_subtree(child, visit);
                    }
                }
            }
        }
        // SAFETY: The subtree is detached (caller) and the node's children
        // were freed above; nothing uses `node` afterwards.
        unsafe { node.into_free() }.free::<A, NODE_BYTES>(&self.alloc);
    }

    /// Detaches all nodes, leaving an empty tree, and frees them, calling
    /// `visit` on each leaf in key order.
    fn free_all(&mut self, mut visit: impl FnMut(Leaf<K, V, NODE_BYTES>)) {
        let root = self.root();
        self.root = None;
        self.height = 0;
        self.len = 0;
        self.nodes = 0;
        if let Some(root) = root {
            self.free_subtree(root, &mut visit);
        }
    }
}

impl<K, V, A: NodeAlloc, const NODE_BYTES: usize> Drop for BTree<K, V, A, NODE_BYTES> {
    /// Frees all nodes. Dropping never allocates or sleeps beyond what
    /// [`NodeAlloc::free`] does.
    fn drop(&mut self) {
        self.free_all(|_| {});
    }
}

impl<K: Copy + Ord, V: Copy, A: NodeAlloc, const NODE_BYTES: usize> BTree<K, V, A, NODE_BYTES> {
    /// Entries a leaf holds at most.
    pub const LEAF_CAPACITY: usize = Geo::<K, V, NODE_BYTES>::LEAF_CAP;
    /// Keys an inner node holds at most (it has one child more).
    pub const INNER_CAPACITY: usize = Geo::<K, V, NODE_BYTES>::INNER_CAP;

    /// Creates an empty tree that allocates nodes from `alloc`. Does not
    /// allocate.
    pub const fn new(alloc: A) -> Self {
        let () = Geo::<K, V, NODE_BYTES>::CHECK;
        Self {
            root: None,
            height: 0,
            len: 0,
            nodes: 0,
            alloc,
            _kv: PhantomData,
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the tree has no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of levels: 0 when empty, 1 when the root is a leaf.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Number of nodes allocated.
    pub fn node_count(&self) -> usize {
        self.nodes
    }

    /// Bytes of node memory allocated.
    pub fn memory_bytes(&self) -> usize {
        self.nodes * NODE_BYTES
    }

    /// The allocator.
    pub fn allocator(&self) -> &A {
        &self.alloc
    }

    /// Walks from the root to a leaf, taking in each inner node the child
    /// that `choose` returns.
    fn descend(
        &self,
        mut choose: impl FnMut(Inner<K, V, NODE_BYTES>) -> usize,
    ) -> Option<Leaf<K, V, NODE_BYTES>> {
        let mut node = self.root()?;
        loop {
            match node {
                NodeRef::Leaf(leaf) => return Some(leaf),
                NodeRef::Inner(inner) => node = inner.child(choose(inner))?,
            }
        }
    }

    /// The leaf whose key range holds `key`.
    fn find_leaf(&self, key: &K) -> Option<Leaf<K, V, NODE_BYTES>> {
        self.descend(|inner| inner.child_index(key))
    }

    /// The leaf whose key range holds `key`, with the path to it.
    fn find_path(&self, key: &K) -> Option<(Path<K, V, NODE_BYTES>, Leaf<K, V, NODE_BYTES>)> {
        let mut path = Path::new();
        let leaf = self.descend(|inner| {
            let i = inner.child_index(key);
            path.push(inner, i);
            i
        })?;
        Some((path, leaf))
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &K) -> bool {
        self.get(key).is_some()
    }

    /// The value stored under `key`.
    pub fn get(&self, key: &K) -> Option<V> {
        let leaf = self.find_leaf(key)?;
        let i = leaf.search(key).ok()?;
        leaf.entry(i).map(|(_, v)| v)
    }

    /// A mutable reference to the value stored under `key`.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let leaf = self.find_leaf(key)?;
        let i = leaf.search(key).ok()?;
        // SAFETY: The tree is exclusively borrowed for the lifetime of the
        // returned reference.
        unsafe { leaf.val_mut(i) }
    }

    /// Replaces the value stored under `key`, returning the old value, or
    /// returns `None` (and changes nothing) if `key` is absent.
    pub fn update(&mut self, key: &K, value: V) -> Option<V> {
        let leaf = self.find_leaf(key)?;
        let i = leaf.search(key).ok()?;
        leaf.replace_val(i, value)
    }

    /// The entry with the smallest key.
    pub fn first(&self) -> Option<(K, V)> {
        self.lower_bound(Bound::Unbounded).get()
    }

    /// The entry with the largest key.
    pub fn last(&self) -> Option<(K, V)> {
        self.upper_bound(Bound::Unbounded).get()
    }

    /// The entry with the greatest key `<= key` (predecessor search: "the
    /// extent covering sector `key`").
    pub fn get_le(&self, key: &K) -> Option<(K, V)> {
        self.upper_bound(Bound::Included(key)).get()
    }

    /// The entry with the greatest key `< key`.
    pub fn get_lt(&self, key: &K) -> Option<(K, V)> {
        self.upper_bound(Bound::Excluded(key)).get()
    }

    /// The entry with the least key `>= key`.
    pub fn get_ge(&self, key: &K) -> Option<(K, V)> {
        self.lower_bound(Bound::Included(key)).get()
    }

    /// The entry with the least key `> key`.
    pub fn get_gt(&self, key: &K) -> Option<(K, V)> {
        self.lower_bound(Bound::Excluded(key)).get()
    }

    /// A cursor at the first entry whose key is above `bound` (`>= k` for
    /// `Included(k)`, `> k` for `Excluded(k)`, the first entry for
    /// `Unbounded`).
    pub fn lower_bound(&self, bound: Bound<&K>) -> Cursor<'_, K, V, NODE_BYTES> {
        let (leaf, i) = match bound {
            Bound::Unbounded => (self.descend(|_| 0), 0),
            Bound::Included(key) | Bound::Excluded(key) => {
                let leaf = self.find_leaf(key);
                let strict = matches!(bound, Bound::Excluded(_));
                (leaf, leaf.map_or(0, |leaf| leaf.bound(key, strict)))
            }
        };
        Cursor::forward(leaf, i)
    }

    /// A cursor at the last entry whose key is below `bound` (`<= k` for
    /// `Included(k)`, `< k` for `Excluded(k)`, the last entry for
    /// `Unbounded`).
    pub fn upper_bound(&self, bound: Bound<&K>) -> Cursor<'_, K, V, NODE_BYTES> {
        let (leaf, end) = match bound {
            Bound::Unbounded => {
                let leaf = self.descend(|inner| inner.len());
                (leaf, leaf.map_or(0, |leaf| leaf.len()))
            }
            Bound::Included(key) | Bound::Excluded(key) => {
                let leaf = self.find_leaf(key);
                let strict = matches!(bound, Bound::Included(_));
                (leaf, leaf.map_or(0, |leaf| leaf.bound(key, strict)))
            }
        };
        Cursor::backward(leaf, end)
    }

    /// Iterates over all entries in ascending key order.
    pub fn iter(&self) -> Iter<'_, K, V, NODE_BYTES> {
        Iter {
            cursor: self.lower_bound(Bound::Unbounded),
        }
    }

    /// Iterates in ascending order over the entries with keys `>= key`.
    pub fn iter_from(&self, key: &K) -> Iter<'_, K, V, NODE_BYTES> {
        Iter {
            cursor: self.lower_bound(Bound::Included(key)),
        }
    }

    /// Iterates over all entries in descending key order.
    pub fn iter_back(&self) -> IterBack<'_, K, V, NODE_BYTES> {
        IterBack {
            cursor: self.upper_bound(Bound::Unbounded),
        }
    }

    /// Iterates in descending order over the entries with keys `<= key`.
    pub fn iter_back_from(&self, key: &K) -> IterBack<'_, K, V, NODE_BYTES> {
        IterBack {
            cursor: self.upper_bound(Bound::Included(key)),
        }
    }

    /// Inserts `key` with `value`.
    ///
    /// Allocates at most `height() + 1` nodes (none unless a node splits).
    ///
    /// # Errors
    ///
    /// [`Error::Duplicate`] if `key` is present, [`Error::NoMemory`] if a
    /// node could not be allocated. The tree is unchanged on error.
    pub fn insert(&mut self, key: K, value: V) -> Result<(), Error> {
        let mut spare = NodeStack::new();
        let result = self.insert_from(key, value, &mut spare);
        // Only an allocation failure leaves nodes behind.
        spare.release::<A, NODE_BYTES>(&self.alloc);
        result
    }

    /// Fills `res` with the nodes an insert into this tree may need:
    /// `height() + 1`.
    ///
    /// # Errors
    ///
    /// [`Error::NoMemory`]; the nodes allocated so far stay in `res`.
    pub fn reserve_for_insert(&self, res: &mut Reservation<A, NODE_BYTES>) -> Result<(), Error> {
        res.fill(self.height + 1)
    }

    /// Inserts `key` with `value`, taking new nodes from `res`.
    ///
    /// Never fails for lack of memory if `res` holds `height() + 1` nodes,
    /// as [`BTree::reserve_for_insert`] leaves it; if it holds fewer than the
    /// insert needs, the rest is allocated from the tree's allocator.
    ///
    /// # Errors
    ///
    /// As for [`BTree::insert`].
    pub fn insert_reserved(
        &mut self,
        key: K,
        value: V,
        res: &mut Reservation<A, NODE_BYTES>,
    ) -> Result<(), Error> {
        self.insert_from(key, value, &mut res.nodes)
    }

    /// Inserts, taking new nodes from `spare` and allocating into it first
    /// what it lacks.
    fn insert_from(&mut self, key: K, value: V, spare: &mut NodeStack) -> Result<(), Error> {
        if self.root.is_none() {
            spare.fill::<A, NODE_BYTES>(&self.alloc, 1)?;
            let leaf = Leaf::<K, V, NODE_BYTES>::format(spare.pop().ok_or(Error::NoMemory)?);
            let inserted = leaf.insert(0, key, value);
            debug_assert!(inserted);
            self.root = Some(leaf.raw);
            self.height = 1;
            self.nodes = 1;
            self.len = 1;
            return Ok(());
        }
        let (path, leaf) = self.find_path(&key).ok_or(Error::NoMemory)?;
        let pos = match leaf.search(&key) {
            Ok(_) => return Err(Error::Duplicate),
            Err(pos) => pos,
        };
        let needed = self.nodes_needed(&path, leaf).ok_or(Error::NoMemory)?;
        spare.fill::<A, NODE_BYTES>(&self.alloc, needed)?;
        // Cannot fail: the leaf has at most `LEAF_CAP` entries and one more
        // slot.
        if !leaf.insert(pos, key, value) {
            return Err(Error::NoMemory);
        }
        self.len += 1;
        self.fix_overflow(&path, NodeRef::Leaf(leaf), spare);
        Ok(())
    }

    /// A sibling of child `index` of `parent` that has room for one more
    /// entry or key. `Side::Left` implies `index > 0`.
    fn sibling_with_room(&self, parent: Inner<K, V, NODE_BYTES>, index: usize) -> Option<Side> {
        let has_room = |i: usize| parent.child(i).is_some_and(|c| c.len() < c.cap());
        if index > 0 && has_room(index - 1) {
            Some(Side::Left)
        } else if index < parent.len() && has_room(index + 1) {
            Some(Side::Right)
        } else {
            None
        }
    }

    /// How many nodes an insert into `leaf` (not yet done) allocates, found
    /// by the same decisions [`BTree::fix_overflow`] takes; `None` if the tree
    /// would grow beyond [`MAX_HEIGHT`].
    fn nodes_needed(
        &self,
        path: &Path<K, V, NODE_BYTES>,
        leaf: Leaf<K, V, NODE_BYTES>,
    ) -> Option<usize> {
        let mut node = NodeRef::Leaf(leaf);
        let mut depth = path.depth;
        let mut needed = 0;
        while node.len() >= node.cap() {
            let Some((parent, index)) = path.parent(depth) else {
                // The root splits: a sibling and a new root.
                return (self.height < MAX_HEIGHT).then_some(needed + 2);
            };
            if self.sibling_with_room(parent, index).is_some() {
                break;
            }
            needed += 1;
            node = NodeRef::Inner(parent);
            depth -= 1;
        }
        Some(needed)
    }

    /// Brings `node`, at the end of `path`, back within capacity after an
    /// insert, by moving an entry to a sibling or splitting, up to the root.
    /// Takes new nodes from `spare`, which holds enough by
    /// [`BTree::nodes_needed`].
    fn fix_overflow(
        &mut self,
        path: &Path<K, V, NODE_BYTES>,
        mut node: NodeRef<K, V, NODE_BYTES>,
        spare: &mut NodeStack,
    ) {
        let mut depth = path.depth;
        while node.len() > node.cap() {
            let Some((parent, index)) = path.parent(depth) else {
                self.split_root(node, spare);
                return;
            };
            match self.sibling_with_room(parent, index) {
                Some(Side::Left) => return self.move_left(parent, index - 1),
                Some(Side::Right) => return self.move_right(parent, index),
                None => {}
            }
            let Some((sep, right)) = self.split(node, spare) else {
                return;
            };
            let inserted = parent.insert(index, sep, right);
            debug_assert!(inserted);
            node = NodeRef::Inner(parent);
            depth -= 1;
        }
    }

    /// Splits the overfull `node` in the middle into itself and a new right
    /// sibling, taken from `spare`. Returns the separator and the sibling.
    fn split(
        &mut self,
        node: NodeRef<K, V, NODE_BYTES>,
        spare: &mut NodeStack,
    ) -> Option<(K, RawNode)> {
        let fresh = spare.pop();
        debug_assert!(fresh.is_some(), "node reservation miscounted");
        let fresh = fresh?;
        let len = node.len();
        let split = match node {
            NodeRef::Leaf(leaf) => leaf
                .split_off(len / 2, fresh)
                .map(|right| (right.key(0), right.raw)),
            NodeRef::Inner(inner) => inner
                .split_off(len.saturating_sub(1) / 2, fresh)
                .map(|(sep, right)| (Some(sep), right.raw)),
        };
        match split {
            Ok((Some(sep), right)) => {
                self.nodes += 1;
                Some((sep, right))
            }
            Ok((None, _)) => None,
            Err(fresh) => {
                fresh.free::<A, NODE_BYTES>(&self.alloc);
                None
            }
        }
    }

    /// Splits the overfull root and puts a new root above the two halves.
    fn split_root(&mut self, node: NodeRef<K, V, NODE_BYTES>, spare: &mut NodeStack) {
        let Some(fresh_root) = spare.pop() else {
            debug_assert!(false, "node reservation miscounted");
            return;
        };
        let Some((sep, right)) = self.split(node, spare) else {
            fresh_root.free::<A, NODE_BYTES>(&self.alloc);
            return;
        };
        let root = Inner::<K, V, NODE_BYTES>::format(fresh_root, node.raw());
        let inserted = root.insert(0, sep, right);
        debug_assert!(inserted);
        self.root = Some(root.raw);
        self.height += 1;
        self.nodes += 1;
    }

    /// Moves the first entry (leaf) or child (inner node) of child `i + 1` of
    /// `parent` to the end of child `i`, updating the separator.
    fn move_left(&mut self, parent: Inner<K, V, NODE_BYTES>, i: usize) {
        match (parent.child(i), parent.child(i + 1), parent.key(i)) {
            (Some(NodeRef::Leaf(left)), Some(NodeRef::Leaf(right)), _) => {
                if let Some((key, value)) = right.remove(0) {
                    left.insert(left.len(), key, value);
                }
                if let Some(first) = right.key(0) {
                    parent.set_key(i, first);
                }
            }
            (Some(NodeRef::Inner(left)), Some(NodeRef::Inner(right)), Some(sep)) => {
                if let Some((key, child)) = right.remove_front() {
                    left.insert(left.len(), sep, child);
                    parent.set_key(i, key);
                }
            }
            _ => debug_assert!(false, "siblings of different kinds"),
        }
    }

    /// Moves the last entry (leaf) or child (inner node) of child `i` of
    /// `parent` to the front of child `i + 1`, updating the separator.
    fn move_right(&mut self, parent: Inner<K, V, NODE_BYTES>, i: usize) {
        match (parent.child(i), parent.child(i + 1), parent.key(i)) {
            (Some(NodeRef::Leaf(left)), Some(NodeRef::Leaf(right)), _) => {
                if let Some((key, value)) =
                    left.len().checked_sub(1).and_then(|last| left.remove(last))
                {
                    right.insert(0, key, value);
                    parent.set_key(i, key);
                }
            }
            (Some(NodeRef::Inner(left)), Some(NodeRef::Inner(right)), Some(sep)) => {
                if let Some((key, child)) =
                    left.len().checked_sub(1).and_then(|last| left.remove(last))
                {
                    right.insert_front(sep, child);
                    parent.set_key(i, key);
                }
            }
            _ => debug_assert!(false, "siblings of different kinds"),
        }
    }

    /// Merges child `i + 1` of `parent` into child `i` and frees it.
    fn merge_children(&mut self, parent: Inner<K, V, NODE_BYTES>, i: usize) {
        let (Some(left), Some(right), Some(sep)) =
            (parent.child(i), parent.child(i + 1), parent.key(i))
        else {
            return;
        };
        let merged = match (left, right) {
            (NodeRef::Leaf(l), NodeRef::Leaf(r)) => l.absorb(r),
            (NodeRef::Inner(l), NodeRef::Inner(r)) => l.append(sep, r),
            _ => false,
        };
        if merged && parent.remove(i).is_some() {
            // SAFETY: `right` is out of the leaf chain (`absorb`) and out of
            // its parent, and its children now belong to `left`.
            unsafe { right.into_free() }.free::<A, NODE_BYTES>(&self.alloc);
            self.nodes -= 1;
        }
    }

    /// Removes `key`, returning its value. Never allocates.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let (path, leaf) = self.find_path(key)?;
        let (_, value) = leaf.remove(leaf.search(key).ok()?)?;
        self.len -= 1;
        self.fix_underflow(&path, NodeRef::Leaf(leaf));
        Some(value)
    }

    /// Restores the fill bounds after `node`, at the end of `path`, lost an
    /// entry or key: if it fell below the minimum, takes an entry over from a
    /// sibling above the minimum or else merges with a sibling, which removes
    /// a key from the parent, and goes on with the parent.
    fn fix_underflow(
        &mut self,
        path: &Path<K, V, NODE_BYTES>,
        mut node: NodeRef<K, V, NODE_BYTES>,
    ) {
        let mut depth = path.depth;
        loop {
            let Some((parent, index)) = path.parent(depth) else {
                return self.shrink_root(node);
            };
            if node.len() >= node.min() {
                return;
            }
            let above_min = |i: usize| parent.child(i).is_some_and(|c| c.len() > c.min());
            if index > 0 && above_min(index - 1) {
                return self.move_right(parent, index - 1);
            }
            if index < parent.len() && above_min(index + 1) {
                return self.move_left(parent, index);
            }
            // Both siblings are at the minimum: merging fits in one node.
            self.merge_children(parent, index.saturating_sub(1));
            node = NodeRef::Inner(parent);
            depth -= 1;
        }
    }

    /// Frees an empty root leaf, or replaces a root without keys by its only
    /// child.
    fn shrink_root(&mut self, root: NodeRef<K, V, NODE_BYTES>) {
        if root.len() > 0 {
            return;
        }
        let new_root = match root {
            NodeRef::Leaf(_) => None,
            NodeRef::Inner(inner) => inner.child_raw(0),
        };
        self.root = new_root;
        self.height -= 1;
        self.nodes -= 1;
        // SAFETY: The old root is no longer reachable from the tree and its
        // only child (if any) is the new root.
        unsafe { root.into_free() }.free::<A, NODE_BYTES>(&self.alloc);
    }

    /// Removes all entries and frees all nodes.
    pub fn clear(&mut self) {
        self.free_all(|_| {});
    }

    /// Removes all entries, passing each to `f` in ascending key order, and
    /// frees all nodes (`lib/btree`'s "grim visitor").
    pub fn drain(&mut self, mut f: impl FnMut(K, V)) {
        self.free_all(|leaf| {
            for i in 0..leaf.len() {
                if let Some((k, v)) = leaf.entry(i) {
                    f(k, v);
                }
            }
        });
    }

    /// Moves all entries of `other` into `self`.
    ///
    /// An entry whose key is already in `self` stays in `other` (and `self`
    /// keeps its own value). If `self` is empty, the trees exchange their
    /// nodes without copying.
    ///
    /// # Errors
    ///
    /// [`Error::NoMemory`] if a node could not be allocated: the entries moved
    /// so far are in `self`, the others still in `other`; both trees are
    /// valid and no entry is lost.
    pub fn merge(&mut self, other: &mut Self) -> Result<(), Error> {
        if self.is_empty() {
            core::mem::swap(&mut self.root, &mut other.root);
            core::mem::swap(&mut self.height, &mut other.height);
            core::mem::swap(&mut self.len, &mut other.len);
            core::mem::swap(&mut self.nodes, &mut other.nodes);
            return Ok(());
        }
        let mut next = other.first();
        while let Some((key, value)) = next {
            match self.insert(key, value) {
                Ok(()) => {
                    other.remove(&key);
                }
                Err(Error::Duplicate) => {}
                Err(err) => return Err(err),
            }
            next = other.get_gt(&key);
        }
        Ok(())
    }

    /// Checks all structural invariants (see the module documentation).
    ///
    /// # Errors
    ///
    /// A description of the first violation found.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        let Some(root) = self.root() else {
            return if self.height == 0 && self.len == 0 && self.nodes == 0 {
                Ok(())
            } else {
                Err("empty tree with non-zero counters")
            };
        };
        if self.height == 0 || self.height > MAX_HEIGHT {
            return Err("height out of range");
        }
        if root.len() == 0 {
            return Err("empty root");
        }
        let mut walk = CheckWalk {
            last_leaf: None,
            entries: 0,
            nodes: 0,
        };
        self.check_node(root, 0, None, None, &mut walk)?;
        if walk.last_leaf.and_then(|leaf| leaf.next()).is_some() {
            return Err("last leaf has a next link");
        }
        if walk.entries != self.len {
            return Err("len does not match the entries");
        }
        if walk.nodes != self.nodes {
            return Err("node count does not match the nodes");
        }
        Ok(())
    }

    /// Checks the subtree under `node` at `depth`, whose keys must lie in
    /// `[lo, hi)`. Recursion is bounded by the height.
    fn check_node(
        &self,
        node: NodeRef<K, V, NODE_BYTES>,
        depth: usize,
        lo: Option<K>,
        hi: Option<K>,
        walk: &mut CheckWalk<K, V, NODE_BYTES>,
    ) -> Result<(), &'static str> {
        walk.nodes += 1;
        let len = node.len();
        if len > node.cap() {
            return Err("node over capacity");
        }
        let key = |i: usize| match node {
            NodeRef::Leaf(leaf) => leaf.key(i),
            NodeRef::Inner(inner) => inner.key(i),
        };
        let mut prev = lo;
        for i in 0..len {
            let k = key(i).ok_or("missing key")?;
            match prev {
                Some(p) if i == 0 && k < p => return Err("key below the separator bound"),
                Some(p) if i > 0 && k <= p => return Err("keys not strictly increasing"),
                _ => {}
            }
            if hi.is_some_and(|h| k >= h) {
                return Err("key not below the separator bound");
            }
            prev = Some(k);
        }
        match node {
            NodeRef::Leaf(leaf) => {
                if depth + 1 != self.height {
                    return Err("leaf not at the bottom level");
                }
                if leaf.prev().map(|l| l.raw) != walk.last_leaf.map(|l| l.raw) {
                    return Err("leaf prev link broken");
                }
                if let Some(last) = walk.last_leaf {
                    if last.next().map(|l| l.raw) != Some(leaf.raw) {
                        return Err("leaf next link broken");
                    }
                }
                walk.last_leaf = Some(leaf);
                walk.entries += len;
            }
            NodeRef::Inner(inner) => {
                if depth + 1 >= self.height {
                    return Err("inner node at the bottom level");
                }
                if len == 0 {
                    return Err("inner node without keys");
                }
                for i in 0..=len {
                    let child = inner.child(i).ok_or("missing child")?;
                    if child.len() < child.min() {
                        return Err("non-root node below the minimum fill");
                    }
                    let child_lo = if i == 0 { lo } else { inner.key(i - 1) };
                    let child_hi = if i == len { hi } else { inner.key(i) };
                    self.check_node(child, depth + 1, child_lo, child_hi, walk)?;
                }
            }
        }
        Ok(())
    }
}

/// State carried through [`BTree::check_invariants`].
struct CheckWalk<K, V, const N: usize> {
    last_leaf: Option<Leaf<K, V, N>>,
    entries: usize,
    nodes: usize,
}

/// A position at an entry of a tree, or past either end.
///
/// Returned by [`BTree::lower_bound`] and [`BTree::upper_bound`]; it borrows
/// the tree, which cannot change while the cursor lives. Once moved past
/// either end it stays there.
///
/// # Invariants
///
/// `pos` is `None` or `(leaf, i)` with `i < leaf.len()`, and `leaf` meets the
/// `Leaf` handle invariants for the borrowed tree.
pub struct Cursor<'a, K, V, const NODE_BYTES: usize = DEFAULT_NODE_BYTES> {
    pos: Option<(Leaf<K, V, NODE_BYTES>, usize)>,
    _tree: PhantomData<&'a ()>,
}

impl<K, V, const N: usize> Clone for Cursor<'_, K, V, N> {
    fn clone(&self) -> Self {
        Self {
            pos: self.pos,
            _tree: PhantomData,
        }
    }
}

impl<'a, K: Copy + Ord, V: Copy, const N: usize> Cursor<'a, K, V, N> {
    /// At entry `i` of `leaf` or, if `i` is past its end, at the first entry
    /// of the next leaf.
    fn forward(leaf: Option<Leaf<K, V, N>>, i: usize) -> Self {
        let pos = leaf.and_then(|leaf| {
            if i < leaf.len() {
                Some((leaf, i))
            } else {
                leaf.next()
                    .filter(|next| next.len() > 0)
                    .map(|next| (next, 0))
            }
        });
        Self {
            pos,
            _tree: PhantomData,
        }
    }

    /// At the entry before index `end` of `leaf` or, if `end` is 0, at the
    /// last entry of the previous leaf.
    fn backward(leaf: Option<Leaf<K, V, N>>, end: usize) -> Self {
        let pos = leaf.and_then(|leaf| match end.min(leaf.len()).checked_sub(1) {
            Some(i) => Some((leaf, i)),
            None => leaf
                .prev()
                .and_then(|prev| Some((prev, prev.len().checked_sub(1)?))),
        });
        Self {
            pos,
            _tree: PhantomData,
        }
    }

    /// The entry at the cursor, or `None` past either end.
    pub fn get(&self) -> Option<(K, V)> {
        let (leaf, i) = self.pos?;
        leaf.entry(i)
    }

    /// Moves to the next entry in key order.
    pub fn move_next(&mut self) {
        if let Some((leaf, i)) = self.pos {
            *self = Self::forward(Some(leaf), i + 1);
        }
    }

    /// Moves to the previous entry in key order.
    pub fn move_prev(&mut self) {
        if let Some((leaf, i)) = self.pos {
            *self = Self::backward(Some(leaf), i);
        }
    }
}

/// Ascending iterator over `(key, value)` pairs, from [`BTree::iter`] or
/// [`BTree::iter_from`].
pub struct Iter<'a, K, V, const NODE_BYTES: usize = DEFAULT_NODE_BYTES> {
    cursor: Cursor<'a, K, V, NODE_BYTES>,
}

impl<K: Copy + Ord, V: Copy, const N: usize> Iterator for Iter<'_, K, V, N> {
    type Item = (K, V);

    fn next(&mut self) -> Option<(K, V)> {
        let entry = self.cursor.get()?;
        self.cursor.move_next();
        Some(entry)
    }
}

/// Descending iterator over `(key, value)` pairs, from [`BTree::iter_back`]
/// or [`BTree::iter_back_from`].
pub struct IterBack<'a, K, V, const NODE_BYTES: usize = DEFAULT_NODE_BYTES> {
    cursor: Cursor<'a, K, V, NODE_BYTES>,
}

impl<K: Copy + Ord, V: Copy, const N: usize> Iterator for IterBack<'_, K, V, N> {
    type Item = (K, V);

    fn next(&mut self) -> Option<(K, V)> {
        let entry = self.cursor.get()?;
        self.cursor.move_prev();
        Some(entry)
    }
}
