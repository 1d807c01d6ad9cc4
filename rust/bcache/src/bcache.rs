// SPDX-License-Identifier: GPL-2.0

//! The kernel-agnostic core of the bcache_rs SSD cache: which sectors of
//! which backing device are cached where on the SSD, which buckets hold
//! them, and which cache fills raced with writes.
//!
//! The file uses only `core` and the project's B+tree (`crate::btree`), so
//! the module and the host tests build the same source. It does no I/O: the
//! module asks it where a read can be served from, where a fill or a
//! writethrough copy goes, and whether its result may enter the index, and
//! it answers under the cache's lock.
//!
//! # Index keys and extents
//!
//! The index is a B+tree from `(device, first sector)`, packed in a `u64`
//! (`device << 48 | sector`: devices have fewer than [`MAX_DEV_SECTORS`]
//! sectors), to an [`Extent`]: `len` sectors at `offset`
//! sectors into SSD bucket `bucket`, valid while the bucket's generation is
//! still `gen`. Extents of one device never overlap (every operation keeps
//! that), so the extent that holds a sector is the one with the greatest key
//! at or before it, and a read walks the tree once per piece.
//!
//! # Bucket life cycle and eviction
//!
//! The SSD's data area is cut in buckets (the superblock's bucket size).
//! A bucket is *free*, *open* (fills and writethrough copies are appended to
//! it, one at a time, at its write pointer) or holds *data*. Free buckets
//! wait in a FIFO, data buckets in another, in the order they were closed.
//! When the open bucket has no room for an allocation, it joins the back of
//! the data queue and the first free bucket opens. When none is free,
//! [`Buckets::refill`] runs the eviction hand, a CLOCK over the data queue:
//! from its front, a bucket with live sectors and a priority left loses one
//! point and goes to the back (a second chance), a bucket with none left or
//! with no live sectors is invalidated: its generation is bumped and it
//! joins the free queue. A bucket opens with [`OPEN_PRIO`] (one second
//! chance); each hit gives it a point, up to [`PRIO_MAX`]. So data read
//! once is evicted in the order it was written, on the hand's second pass,
//! and data in use stays as long as it is hit once a pass: the policy is
//! recency-aware, every bucket is reused in turn, and one call visits at
//! most [`REFILL_STEPS`] buckets (and each once), whatever the cache's size.
//! Pinned buckets (I/O in flight to or from them) are passed over.
//!
//! In a persistent cache ([`Buckets::set_persistent`]) an invalidated
//! bucket that the checkpoint on the SSD may still hold current extents in
//! ([`BucketMeta::ckpt`], set by [`Restore`]) does not join the free queue
//! at once: it waits in a pending queue until its `BUCKET` record (its new
//! generation) is durable ([`Buckets::take_invalidated`],
//! [`Buckets::durable`]), so that no new data is written over extents that
//! a replay after a crash would call current. Other buckets are reused at
//! once (nothing on the SSD names them). At most [`MAX_PENDING`] buckets
//! wait; refills stop there.
//!
//! Extents that point to an invalidated bucket carry the old generation: they
//! are *stale*, never served, dropped when a lookup meets them, and removed in
//! batches by [`Index::gc_step`] so the index does not grow without bound.
//! Generations are `u32`: a stale extent would need four billion
//! invalidations of its bucket to look valid again, and the background pass
//! removes it long before.
//!
//! The index has a memory limit ([`Index::set_max_bytes`]): at the limit an
//! insert is refused and asks the buckets for one eviction more at the next
//! allocation, whose stale extents the background pass then frees. An
//! extent that continues its predecessor on the device and in the same
//! bucket (a sequential fill) is merged into it instead of taking an entry.
//!
//! # Collisions
//!
//! A read miss is filled into the cache after the backing device returned the
//! data; a write (or discard) may change those sectors meanwhile. The
//! [`Inflight`] table tracks every fill and every write between its start and
//! its completion:
//! - a write starts by marking every in-flight fill or write it overlaps
//!   *collided*, then invalidates the cached extents it overlaps (in batches,
//!   all before it is sent to the backing device);
//! - a fill that starts while an overlapping write is in flight is not made;
//! - a collided fill (or writethrough copy) is not inserted (it is counted).
//!
//! So an extent enters the index only if no write to its sectors started
//! between the moment its data was read (or written) and its insertion:
//! the cache never serves stale data. When the table is full, fills are not
//! made and writes are counted as *untracked*; while one is in flight every
//! fill collides.
//!
//! # Restore (persistence)
//!
//! [`Restore`] rebuilds a cache from what the SSD keeps (the design in
//! `Documentation/bcache_rs-persistence.rst`): the buckets' generations and
//! priorities, a checkpoint's extents ([`Index::current_from`] writes them,
//! in bounded steps), then the journal's records in order
//! ([`Restore::extent`], [`Restore::invalidate`], [`Restore::bucket`]).
//! Values read from disk are checked (a bucket the cache does not have, an
//! extent past its bucket, overlapping current extents: [`RestoreError`]);
//! extents of an older generation are skipped. The host model test checks
//! that a checkpoint plus the records since gives every sector in the
//! place the live cache has it. The module does not persist anything yet.
//!
//! # Locking contract and the work of one call
//!
//! [`Cache`] is a plain data structure: the module keeps it under one
//! spinlock (irq-safe, because completions insert) and calls it with the
//! lock held. Nothing here sleeps or allocates except the B+tree's node
//! allocator (the module gives it `GFP_ATOMIC`); an insert that finds no
//! memory only loses a cache fill. Every call does bounded work, whatever
//! the size of the cache or of the range: a B+tree operation is O(log n),
//! and a call makes at most
//! - [`REFILL_STEPS`] bucket visits and [`REFILL_BATCH`] invalidations
//!   (an allocation);
//! - [`STALE_BUDGET`] stale-extent removals (a lookup, an insert);
//! - [`INVALIDATE_BATCH`] extent removals or trims (a write's
//!   invalidation: [`Cache::begin_write`] then [`Cache::invalidate_more`]);
//! - `4 * `[`GC_BATCH`] visits and [`GC_BATCH`] removals ([`Index::gc_step`]);
//! - the caller's budget of removals ([`Index::remove_dev`]);
//! - [`INFLIGHT_SLOTS`] slot comparisons (the in-flight table).
//!
//! Bucket pins are not here: the module keeps them in atomics (a hit's
//! completion unpins without the lock) and passes a `pinned` predicate; pins
//! are taken under the lock, so a bucket chosen for refill is never pinned by
//! a lookup that raced with it.

use crate::btree::{BTree, NodeAlloc};
use core::ops::DerefMut;

/// A backing device's number in the index (its `bcache_rs<N>` minor).
pub type DevId = u16;

/// A device indexed here has fewer sectors than this (128 PiB): a key keeps
/// the sector in its low 48 bits, under the [`DevId`]. The caller refuses
/// larger devices; a sector past it would be taken modulo it, within its
/// own device (never another device's key).
pub const MAX_DEV_SECTORS: u64 = 1 << 48;

/// Priority a bucket starts with when it is opened: one second chance.
pub const OPEN_PRIO: u8 = 1;
/// Highest priority: a bucket hit this often survives this many passes of
/// the eviction hand without a further hit.
pub const PRIO_MAX: u8 = 3;
/// Buckets [`Buckets::refill`] frees at most in one call.
pub const REFILL_BATCH: usize = 8;
/// Buckets [`Buckets::refill`] visits at most in one call.
pub const REFILL_STEPS: usize = 64;
/// Fills and writes tracked at once (all devices of a cache together).
pub const INFLIGHT_SLOTS: usize = 128;
/// Stale extents [`Index::gc_step`] removes at most in one call.
pub const GC_BATCH: usize = 32;
/// Stale extents one lookup or insert removes at most.
pub const STALE_BUDGET: usize = 16;
/// Invalidated buckets a persistent cache lets wait for the journal at
/// most: refills stop there until [`Buckets::durable`].
pub const MAX_PENDING: usize = 4 * REFILL_BATCH;
/// Extents one [`Index::invalidate`] call removes or trims at most.
pub const INVALIDATE_BATCH: usize = 64;

/// A cached run of sectors on the SSD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    /// The bucket that holds it.
    pub bucket: u32,
    /// Its first sector, counted from the bucket's start.
    pub offset: u32,
    /// Its length in sectors (never 0).
    pub len: u32,
    /// The bucket's generation when the data was written.
    pub gen: u32,
}

/// Where a new extent goes: `bucket`, from `offset` sectors into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// The bucket.
    pub bucket: u32,
    /// First sector in the bucket.
    pub offset: u32,
    /// Length in sectors.
    pub len: u32,
    /// The bucket's generation.
    pub gen: u32,
}

impl Region {
    fn extent(&self) -> Extent {
        Extent {
            bucket: self.bucket,
            offset: self.offset,
            len: self.len,
            gen: self.gen,
        }
    }
}

// A `u64` key rather than a `u128`: half the key bytes, a third more
// entries a node, and a lookup about 40% faster (host, 1024 extents).
fn key(dev: DevId, sector: u64) -> u64 {
    (u64::from(dev) << 48) | (sector & (MAX_DEV_SECTORS - 1))
}

fn key_dev(key: u64) -> DevId {
    // The top 16 bits of a key are a `DevId`: the cast keeps exactly them.
    (key >> 48) as DevId
}

fn key_sector(key: u64) -> u64 {
    // The low 48 bits of a key are the sector.
    key & (MAX_DEV_SECTORS - 1)
}

/// What state a bucket is in (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BucketState {
    /// Holds nothing; in the free queue, to be opened.
    Free,
    /// New extents are appended to it.
    Open,
    /// Holds extents (maybe none still live); in the data queue.
    Data,
    /// Invalidated, waiting for its new generation to be durable before
    /// it is written again (a persistent cache only); in the pending queue.
    Invalidated,
}

/// No bucket: the end of a queue.
const NIL: u32 = u32::MAX;

/// What the cache knows of one bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BucketMeta {
    /// Bumped when the bucket is invalidated.
    pub gen: u32,
    /// Sectors of current extents in it.
    pub live: u32,
    /// Eviction priority: the passes of the eviction hand it survives.
    pub prio: u8,
    /// Its state.
    pub state: BucketState,
    /// The checkpoint on the SSD may hold current extents in it: a
    /// persistent cache reuses it only once a `BUCKET` record of a newer
    /// generation is durable (cleared when it is invalidated).
    pub ckpt: bool,
    /// The next bucket of the queue it is in ([`NIL`] at the end).
    next: u32,
}

impl BucketMeta {
    /// A free bucket of generation 0.
    pub const FREE: BucketMeta = BucketMeta {
        gen: 0,
        live: 0,
        prio: 0,
        state: BucketState::Free,
        ckpt: false,
        next: NIL,
    };
}

/// Counters of the bucket allocator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BucketStats {
    /// Buckets invalidated to refill the free queue.
    pub invalidated: u64,
    /// Refill calls.
    pub refills: u64,
    /// Allocations that found no bucket (every candidate pinned).
    pub alloc_failures: u64,
    /// Buckets evicted because the index reached its memory limit.
    pub index_evictions: u64,
}

/// A FIFO of buckets linked through [`BucketMeta::next`].
///
/// # Invariants
///
/// `head` .. `tail` links `len` distinct buckets, `tail`'s `next` is
/// [`NIL`]; both ends are [`NIL`] when `len` is 0.
#[derive(Clone, Copy, Debug)]
struct Queue {
    head: u32,
    tail: u32,
    len: u32,
}

impl Queue {
    // INVARIANT: empty.
    const EMPTY: Queue = Queue {
        head: NIL,
        tail: NIL,
        len: 0,
    };

    fn push_back(&mut self, meta: &mut [BucketMeta], b: u32) {
        if let Some(m) = meta.get_mut(b as usize) {
            m.next = NIL;
        } else {
            return;
        }
        match meta.get_mut(self.tail as usize) {
            Some(t) => t.next = b,
            None => self.head = b,
        }
        self.tail = b;
        self.len += 1;
    }

    fn pop_front(&mut self, meta: &mut [BucketMeta]) -> Option<u32> {
        let b = self.head;
        let m = meta.get_mut(b as usize)?;
        self.head = m.next;
        m.next = NIL;
        if self.head == NIL {
            self.tail = NIL;
        }
        self.len -= 1;
        Some(b)
    }
}

/// The buckets of a cache and the open bucket's write pointer.
///
/// Free buckets wait in a FIFO (`free`), data buckets in another (`data`),
/// in the order they were closed. Eviction is a CLOCK over the data queue
/// (second chance, with up to [`PRIO_MAX`] chances): [`Buckets::refill`]
/// takes buckets from its front; a bucket with live sectors and a priority
/// left loses one point and goes to the back, the others are invalidated.
/// A hit gives its bucket a point. So a bucket filled once and never read
/// again is evicted on the hand's second pass, in the order it was filled,
/// and a bucket in use survives as long as it is hit once per pass: every
/// bucket is evicted and reused in turn, whatever the cache's size, and the
/// work of one call is bounded by [`REFILL_STEPS`].
///
/// # Invariants
///
/// - every bucket is in exactly one place: the free queue (state `Free`),
///   `open` (state `Open`), the data queue (state `Data`) or the pending
///   queue (state `Invalidated`, a persistent cache only), whose first
///   `taken` buckets' records were taken, `untaken` being the next;
/// - `open_used` is at most `bucket_sectors`;
/// - a bucket's `live` is the sum of the lengths of the current extents
///   (same generation) in it, and `in_use` counts the buckets whose `live`
///   is not 0.
pub struct Buckets<S> {
    meta: S,
    bucket_sectors: u32,
    open: Option<u32>,
    open_used: u32,
    free: Queue,
    data: Queue,
    /// Invalidated buckets whose `BUCKET` record is not durable yet, in
    /// the order of their records (a persistent cache only).
    pending: Queue,
    /// The first bucket of `pending` whose record was not taken yet
    /// ([`Buckets::take_invalidated`]), [`NIL`] if none; `taken` records
    /// were taken and are not durable yet.
    untaken: u32,
    taken: u32,
    /// Whether invalidated buckets wait for their record to be durable.
    persistent: bool,
    in_use: u32,
    /// Buckets to evict at the next allocation (the index is full).
    evict_pending: u32,
    stats: BucketStats,
}

impl<S: DerefMut<Target = [BucketMeta]>> Buckets<S> {
    /// Buckets over `meta` (one entry per bucket, all reset to free) of
    /// `bucket_sectors` sectors each.
    ///
    /// Returns `None` if there are no buckets, `u32::MAX` or more, or the
    /// bucket size is 0.
    pub fn new(mut meta: S, bucket_sectors: u32) -> Option<Self> {
        let n = u32::try_from(meta.len()).ok().filter(|&n| n < NIL)?;
        if n == 0 || bucket_sectors == 0 {
            return None;
        }
        meta.fill(BucketMeta::FREE);
        let mut free = Queue::EMPTY;
        for b in 0..n {
            free.push_back(&mut meta, b);
        }
        // INVARIANT: every bucket is free and in the free queue; nothing is
        // live.
        Some(Self {
            meta,
            bucket_sectors,
            open: None,
            open_used: 0,
            free,
            data: Queue::EMPTY,
            pending: Queue::EMPTY,
            untaken: NIL,
            taken: 0,
            persistent: false,
            in_use: 0,
            evict_pending: 0,
            stats: BucketStats::default(),
        })
    }

    /// Makes invalidated buckets of the checkpoint ([`BucketMeta::ckpt`])
    /// wait for their new generation to be durable before they are reused
    /// (see [`Buckets::take_invalidated`]): a persistent cache must not
    /// write new data into a bucket while the SSD may still say that the
    /// bucket's old extents are current. Set it
    /// before the cache is used: buckets already pending when it is turned
    /// off wait for [`Buckets::durable`] still.
    pub fn set_persistent(&mut self, on: bool) {
        self.persistent = on;
    }

    /// Buckets waiting for their new generation to be durable.
    pub fn pending(&self) -> u32 {
        self.pending.len
    }

    /// Whether invalidated buckets wait for a record not yet taken by
    /// [`Buckets::take_invalidated`] (the journal has work).
    pub fn records_waiting(&self) -> bool {
        self.untaken != NIL
    }

    /// A checkpoint of the current extents was just written: every bucket
    /// that may hold one ([`BucketState::Data`] or open) is marked
    /// [`BucketMeta::ckpt`].
    pub fn checkpointed(&mut self) {
        for m in self.meta.iter_mut() {
            if matches!(m.state, BucketState::Data | BucketState::Open) {
                m.ckpt = true;
            }
        }
    }

    /// Gives the `BUCKET` records (bucket, new generation) of the buckets
    /// invalidated since the last call, in order, as many as `out` holds;
    /// returns how many. The caller journals them and calls
    /// [`Buckets::durable`] once they are on disk.
    pub fn take_invalidated(&mut self, out: &mut [(u32, u32)]) -> usize {
        let mut n = 0;
        for slot in out.iter_mut() {
            let b = self.untaken;
            let Some(m) = self.meta.get(b as usize) else {
                break;
            };
            *slot = (b, m.gen);
            self.untaken = m.next;
            n += 1;
        }
        self.taken += n as u32;
        n
    }

    /// The first `n` records taken are durable: their buckets become free
    /// (in order). Returns how many were freed (at most the records taken
    /// and not yet durable).
    pub fn durable(&mut self, n: u32) -> u32 {
        let n = n.min(self.taken);
        for _ in 0..n {
            let Some(b) = self.pending.pop_front(&mut self.meta) else {
                break;
            };
            if let Some(m) = self.meta.get_mut(b as usize) {
                m.state = BucketState::Free;
            }
            self.free.push_back(&mut self.meta, b);
        }
        self.taken -= n;
        n
    }

    /// Sectors per bucket.
    pub fn bucket_sectors(&self) -> u32 {
        self.bucket_sectors
    }

    /// Number of buckets.
    pub fn count(&self) -> usize {
        self.meta.len()
    }

    /// Free buckets.
    pub fn free(&self) -> u32 {
        self.free.len
    }

    /// Buckets that hold at least one live sector.
    pub fn in_use(&self) -> u32 {
        self.in_use
    }

    /// The allocator's counters.
    pub fn stats(&self) -> BucketStats {
        self.stats
    }

    /// One bucket's state, if it exists.
    pub fn meta(&self, bucket: u32) -> Option<BucketMeta> {
        self.meta.get(bucket as usize).copied()
    }

    /// The least and the most generations (invalidations) of the buckets
    /// `from .. from + count`, or `None` past the last bucket: how evenly
    /// eviction reuses them (read in batches, a lock hold each).
    pub fn gen_range(&self, from: usize, count: usize) -> Option<(u32, u32)> {
        let end = from.saturating_add(count).min(self.meta.len());
        let slice = self.meta.get(from..end)?;
        let min = slice.iter().map(|m| m.gen).min()?;
        let max = slice.iter().map(|m| m.gen).max()?;
        Some((min, max))
    }

    /// Whether `e` still names data (its bucket was not invalidated since).
    pub fn is_current(&self, e: &Extent) -> bool {
        match self.meta.get(e.bucket as usize) {
            Some(m) => m.gen == e.gen && m.state != BucketState::Free,
            None => false,
        }
    }

    fn add_live(&mut self, e: &Extent) {
        if let Some(m) = self.meta.get_mut(e.bucket as usize) {
            if m.live == 0 && e.len > 0 {
                self.in_use += 1;
            }
            m.live = m.live.saturating_add(e.len);
        }
    }

    /// `e` (current or not) loses `sectors` sectors.
    fn drop_live(&mut self, e: &Extent, sectors: u32) {
        if !self.is_current(e) {
            return;
        }
        if let Some(m) = self.meta.get_mut(e.bucket as usize) {
            let was = m.live;
            m.live = m.live.saturating_sub(sectors);
            if was > 0 && m.live == 0 {
                self.in_use -= 1;
            }
        }
    }

    /// A hit in `bucket`: one more pass of the hand it survives.
    pub fn hit(&mut self, bucket: u32) {
        if let Some(m) = self.meta.get_mut(bucket as usize) {
            m.prio = m.prio.saturating_add(1).min(PRIO_MAX);
        }
    }

    /// `sectors` sectors for a new extent, at the open bucket's write pointer.
    ///
    /// Opens a new bucket (refilling the free queue if needed) when the open
    /// one has no room. Returns `None` if `sectors` is 0 or more than a
    /// bucket, or if no bucket could be freed (all pinned).
    pub fn alloc(&mut self, sectors: u32, pinned: &dyn Fn(u32) -> bool) -> Option<Region> {
        if sectors == 0 || sectors > self.bucket_sectors {
            return None;
        }
        if self.evict_pending > 0 {
            self.evict_pending -= 1;
            if self.refill_up_to(1, pinned) > 0 {
                self.stats.index_evictions += 1;
            }
        }
        let room = self.bucket_sectors - self.open_used;
        let bucket = match self.open {
            Some(b) if room >= sectors => b,
            _ => {
                self.close_open();
                let Some(b) = self.open_free(pinned) else {
                    self.stats.alloc_failures += 1;
                    return None;
                };
                b
            }
        };
        let gen = self.meta.get(bucket as usize)?.gen;
        let offset = self.open_used;
        self.open_used += sectors;
        Some(Region {
            bucket,
            offset,
            len: sectors,
            gen,
        })
    }

    fn close_open(&mut self) {
        if let Some(b) = self.open.take() {
            if let Some(m) = self.meta.get_mut(b as usize) {
                m.state = BucketState::Data;
            }
            self.data.push_back(&mut self.meta, b);
        }
        self.open_used = 0;
    }

    fn open_free(&mut self, pinned: &dyn Fn(u32) -> bool) -> Option<u32> {
        if self.free.len == 0 && self.refill(pinned) == 0 {
            return None;
        }
        let b = self.free.pop_front(&mut self.meta)?;
        let m = self.meta.get_mut(b as usize)?;
        m.state = BucketState::Open;
        m.prio = OPEN_PRIO;
        m.live = 0;
        self.open = Some(b);
        self.open_used = 0;
        Some(b)
    }

    /// Asks the next allocation to evict one bucket more than it needs (the
    /// index reached its memory limit: the evicted bucket's extents become
    /// stale and the background pass frees their memory).
    pub fn request_eviction(&mut self) {
        self.evict_pending = self
            .evict_pending
            .saturating_add(1)
            .min(REFILL_BATCH as u32);
    }

    /// Invalidates up to [`REFILL_BATCH`] data buckets, visiting at most
    /// [`REFILL_STEPS`] and each at most once (see [`Buckets`]); pinned
    /// buckets are passed over.
    /// Returns how many were freed: 0 only if every bucket visited was
    /// pinned.
    pub fn refill(&mut self, pinned: &dyn Fn(u32) -> bool) -> usize {
        self.refill_up_to(REFILL_BATCH, pinned)
    }

    fn refill_up_to(&mut self, want: usize, pinned: &dyn Fn(u32) -> bool) -> usize {
        // A persistent cache waiting on the journal invalidates no more
        // than a few batches ahead of it.
        let want = if self.persistent {
            want.min(MAX_PENDING.saturating_sub(self.pending.len as usize))
        } else {
            want
        };
        if want == 0 {
            return 0;
        }
        self.stats.refills += 1;
        let mut found = 0usize;
        // The coldest bucket that got a second chance in this call: evicted
        // if no other victim turns up, so that a call frees a bucket unless
        // every bucket it visited is pinned.
        let mut held: Option<(u32, u8)> = None;
        // One pass of the hand at most: a bucket loses at most one point a
        // call, however small the cache.
        let steps = REFILL_STEPS.min(self.data.len as usize);
        for _ in 0..steps {
            if found == want {
                break;
            }
            let Some(b) = self.data.pop_front(&mut self.meta) else {
                break;
            };
            if pinned(b) {
                self.data.push_back(&mut self.meta, b);
                continue;
            }
            let Some(m) = self.meta.get_mut(b as usize) else {
                continue;
            };
            if m.live == 0 || m.prio == 0 {
                self.invalidate(b);
                found += 1;
                continue;
            }
            m.prio -= 1;
            let prio = m.prio;
            match held {
                Some((_, p)) if p <= prio => self.data.push_back(&mut self.meta, b),
                _ => {
                    if let Some((h, _)) = held.replace((b, prio)) {
                        self.data.push_back(&mut self.meta, h);
                    }
                }
            }
        }
        if let Some((h, _)) = held {
            if found == 0 {
                self.invalidate(h);
                found = 1;
            } else {
                self.data.push_back(&mut self.meta, h);
            }
        }
        found
    }

    /// Invalidates data bucket `b` (taken out of the data queue): its
    /// extents become stale, and it joins the free queue.
    fn invalidate(&mut self, b: u32) {
        let Some(m) = self.meta.get_mut(b as usize) else {
            return;
        };
        if m.live > 0 {
            self.in_use -= 1;
        }
        m.gen = m.gen.wrapping_add(1);
        m.prio = 0;
        m.live = 0;
        if self.persistent && m.ckpt {
            m.ckpt = false;
            m.state = BucketState::Invalidated;
            self.pending.push_back(&mut self.meta, b);
            if self.untaken == NIL {
                self.untaken = b;
            }
        } else {
            m.state = BucketState::Free;
            self.free.push_back(&mut self.meta, b);
        }
        self.stats.invalidated += 1;
    }

    /// Checks the invariants (tests): each queue holds exactly the buckets
    /// of its state, the open bucket is the only one open, `in_use` counts
    /// the buckets with live sectors.
    pub fn check(&self) -> Result<(), &'static str> {
        let n = self.meta.len();
        for (q, state) in [
            (&self.free, BucketState::Free),
            (&self.data, BucketState::Data),
            (&self.pending, BucketState::Invalidated),
        ] {
            let mut b = q.head;
            let mut steps = 0u32;
            let mut last = NIL;
            while b != NIL {
                let m = self
                    .meta
                    .get(b as usize)
                    .ok_or("a queue links a bucket out of range")?;
                if m.state != state {
                    return Err("a queue holds a bucket of another state");
                }
                steps += 1;
                if steps as usize > n {
                    return Err("a queue loops");
                }
                last = b;
                b = m.next;
            }
            if steps != q.len || last != q.tail {
                return Err("a queue's length or tail is wrong");
            }
            let count = self.meta.iter().filter(|m| m.state == state).count();
            if count != q.len as usize {
                return Err("a bucket of a queue's state is not in it");
            }
        }
        let open = self
            .meta
            .iter()
            .filter(|m| m.state == BucketState::Open)
            .count();
        let want = usize::from(self.open.is_some());
        if open != want
            || self.open.is_some_and(|b| {
                self.meta.get(b as usize).map(|m| m.state) != Some(BucketState::Open)
            })
        {
            return Err("the open bucket is not the one bucket open");
        }
        if self.open_used > self.bucket_sectors {
            return Err("the open bucket is overfull");
        }
        // `untaken` is the `taken`-th bucket of the pending queue.
        let mut b = self.pending.head;
        for _ in 0..self.taken {
            b = self.meta.get(b as usize).map_or(NIL, |m| m.next);
        }
        if b != self.untaken || self.taken > self.pending.len {
            return Err("the records taken are not the first pending buckets");
        }
        if self.meta.iter().filter(|m| m.live > 0).count() != self.in_use as usize {
            return Err("in_use does not count the buckets with live sectors");
        }
        Ok(())
    }
}

/// The first piece of a read: cached or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece {
    /// `len` sectors are on the SSD at `offset` sectors into `bucket`.
    Hit {
        /// The bucket.
        bucket: u32,
        /// First sector in the bucket.
        offset: u32,
        /// Sectors.
        len: u64,
    },
    /// `len` sectors are not cached.
    Miss {
        /// Sectors.
        len: u64,
    },
}

/// Why an extent did not enter the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertError {
    /// A current extent already covers some of its sectors (another fill of
    /// the same sectors got there first).
    Overlap,
    /// Its bucket was invalidated since it was allocated.
    Stale,
    /// No memory for a tree node.
    NoMemory,
    /// It is empty or runs past the end of the sector space.
    Invalid,
    /// The index is at its memory limit ([`Index::set_max_bytes`]).
    IndexFull,
    /// More than [`STALE_BUDGET`] stale extents are in the way (they will
    /// be removed by the background pass).
    Fragmented,
}

/// How far an [`Index::invalidate`] call got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Invalidation {
    /// Current sectors dropped by this call.
    pub dropped: u64,
    /// Where to continue (with another call, from this sector to the same
    /// end), or `None` when the range holds nothing cached any more.
    pub next: Option<u64>,
}

/// The extent index: a B+tree from `(device, sector)` to [`Extent`].
///
/// # Invariants
///
/// Extents of one device do not overlap, and none is empty. The tree's
/// memory exceeds `max_bytes` by at most the nodes of one insert (its
/// height's worth of splits).
pub struct Index<A: NodeAlloc> {
    tree: BTree<u64, Extent, A>,
    stale_dropped: u64,
    max_bytes: usize,
    invalidate_batch: usize,
}

impl<A: NodeAlloc> Index<A> {
    /// An empty index whose nodes come from `alloc`, without a memory limit.
    pub const fn new(alloc: A) -> Self {
        // INVARIANT: empty, so no overlap and no memory.
        Self {
            tree: BTree::new(alloc),
            stale_dropped: 0,
            max_bytes: usize::MAX,
            invalidate_batch: INVALIDATE_BATCH,
        }
    }

    /// Extents in the index (current and stale).
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// Bytes of tree nodes.
    pub fn memory_bytes(&self) -> usize {
        self.tree.memory_bytes()
    }

    /// The memory limit: an insert that would need more nodes while the tree
    /// has `max_bytes` or more is refused with [`InsertError::IndexFull`].
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Sets the memory limit (see [`Index::max_bytes`]). Lowering it below
    /// the memory in use frees nothing at once: inserts are refused and each
    /// refusal asks the buckets for an eviction, whose stale extents the
    /// background pass then removes.
    pub fn set_max_bytes(&mut self, max: usize) {
        self.max_bytes = max;
    }

    /// Sets how many extents one [`Index::invalidate`] call removes at most
    /// (at least 1; [`INVALIDATE_BATCH`] by default): tests use small
    /// batches to interleave other operations with a long invalidation.
    pub fn set_invalidate_batch(&mut self, n: usize) {
        self.invalidate_batch = n.clamp(1, INVALIDATE_BATCH);
    }

    /// Stale extents removed so far (by lookups, invalidations and the
    /// background pass).
    pub fn stale_dropped(&self) -> u64 {
        self.stale_dropped
    }

    /// The extent that holds `sector` of `dev`, if any.
    fn containing(&self, dev: DevId, sector: u64) -> Option<(u64, Extent)> {
        let (k, e) = self.tree.get_le(&key(dev, sector))?;
        let start = key_sector(k);
        if key_dev(k) == dev && start + u64::from(e.len) > sector {
            Some((start, e))
        } else {
            None
        }
    }

    /// The first extent of `dev` that starts after `sector` and before `end`.
    fn next_in(&self, dev: DevId, sector: u64, end: u64) -> Option<(u64, Extent)> {
        let (k, e) = self.tree.get_gt(&key(dev, sector))?;
        let start = key_sector(k);
        if key_dev(k) == dev && start < end {
            Some((start, e))
        } else {
            None
        }
    }

    fn remove_stale(&mut self, dev: DevId, start: u64) {
        self.tree.remove(&key(dev, start));
        self.stale_dropped += 1;
    }

    /// The first piece of the `len` sectors of `dev` at `sector` (`len` > 0):
    /// where they are cached, or how many are not. Stale extents met on the
    /// way are removed, at most [`STALE_BUDGET`] of them: past that, the
    /// piece is a miss that ends where the lookup stopped (stale extents
    /// hold nothing current, so the answer stays true, only shorter).
    pub fn lookup<S: DerefMut<Target = [BucketMeta]>>(
        &mut self,
        dev: DevId,
        sector: u64,
        len: u64,
        buckets: &Buckets<S>,
    ) -> Piece {
        let end = sector.saturating_add(len);
        let mut budget = STALE_BUDGET;
        loop {
            if let Some((start, e)) = self.containing(dev, sector) {
                let e_end = start + u64::from(e.len);
                if !buckets.is_current(&e) {
                    if budget == 0 {
                        return Piece::Miss {
                            len: e_end.min(end) - sector,
                        };
                    }
                    budget -= 1;
                    self.remove_stale(dev, start);
                    continue;
                }
                let skip = sector - start;
                let avail = u64::from(e.len) - skip;
                return Piece::Hit {
                    bucket: e.bucket,
                    // `skip < e.len`, a `u32`.
                    offset: e.offset + skip as u32,
                    len: avail.min(len),
                };
            }
            if let Some((start, e)) = self.next_in(dev, sector, end) {
                if !buckets.is_current(&e) {
                    if budget == 0 {
                        return Piece::Miss {
                            len: start - sector,
                        };
                    }
                    budget -= 1;
                    self.remove_stale(dev, start);
                    continue;
                }
                return Piece::Miss {
                    len: start - sector,
                };
            }
            return Piece::Miss { len };
        }
    }

    /// The number of pieces (the runs of sectors cached in one extent, or
    /// not cached) that a read of `len` sectors of `dev` at `sector` falls
    /// into, counted up to `max + 1`.
    pub fn pieces<S: DerefMut<Target = [BucketMeta]>>(
        &mut self,
        dev: DevId,
        sector: u64,
        len: u64,
        max: usize,
        buckets: &Buckets<S>,
    ) -> usize {
        let end = sector.saturating_add(len);
        let mut s = sector;
        let mut n = 0;
        while s < end && n <= max {
            let l = match self.lookup(dev, s, end - s, buckets) {
                Piece::Hit { len, .. } | Piece::Miss { len } => len,
            };
            n += 1;
            s = s.saturating_add(l.max(1));
        }
        n
    }

    /// Removes the cached sectors of `dev` in `[sector, sector + len)`,
    /// trimming the extents that straddle its ends, at most
    /// [`INVALIDATE_BATCH`] extents a call (see
    /// [`Index::set_invalidate_batch`]): [`Invalidation::next`] says where
    /// to go on. Never fails: if a straddling extent's tail cannot be
    /// re-inserted (no memory), the tail is dropped too.
    pub fn invalidate<S: DerefMut<Target = [BucketMeta]>>(
        &mut self,
        dev: DevId,
        sector: u64,
        len: u64,
        buckets: &mut Buckets<S>,
    ) -> Invalidation {
        let end = sector.saturating_add(len);
        let mut dropped = 0u64;
        // An extent that starts before `sector` and reaches into the range.
        if let Some((start, e)) = self
            .containing(dev, sector)
            .filter(|&(start, _)| start < sector)
        {
            if !buckets.is_current(&e) {
                self.remove_stale(dev, start);
            } else {
                // `sector - start < e.len`, a `u32`.
                let keep = (sector - start) as u32;
                if let Some(v) = self.tree.get_mut(&key(dev, start)) {
                    v.len = keep;
                }
                if start + u64::from(e.len) > end {
                    // The range is inside the extent: keep its tail too.
                    // `end - start < e.len`, a `u32`.
                    let skip = (end - start) as u32;
                    let tail = Extent {
                        offset: e.offset + skip,
                        len: e.len - skip,
                        ..e
                    };
                    let cut = if self.tree.insert(key(dev, end), tail).is_ok() {
                        skip - keep
                    } else {
                        e.len - keep
                    };
                    buckets.drop_live(&e, cut);
                    return Invalidation {
                        dropped: u64::from(cut),
                        next: None,
                    };
                }
                let cut = e.len - keep;
                buckets.drop_live(&e, cut);
                dropped += u64::from(cut);
            }
        }
        // Extents that start inside the range.
        for _ in 0..self.invalidate_batch {
            let Some((start, e)) = self
                .tree
                .get_ge(&key(dev, sector))
                .filter(|&(k, _)| key_dev(k) == dev && key_sector(k) < end)
                .map(|(k, e)| (key_sector(k), e))
            else {
                return Invalidation {
                    dropped,
                    next: None,
                };
            };
            self.tree.remove(&key(dev, start));
            let current = buckets.is_current(&e);
            let kend = start + u64::from(e.len);
            if kend > end {
                // `end - start < e.len`, a `u32`.
                let skip = (end - start) as u32;
                let tail = Extent {
                    offset: e.offset + skip,
                    len: e.len - skip,
                    ..e
                };
                let cut = if current && self.tree.insert(key(dev, end), tail).is_ok() {
                    skip
                } else {
                    e.len
                };
                buckets.drop_live(&e, cut);
                if current {
                    dropped += u64::from(cut);
                }
                return Invalidation {
                    dropped,
                    next: None,
                };
            }
            buckets.drop_live(&e, e.len);
            if current {
                dropped += u64::from(e.len);
            } else {
                self.stale_dropped += 1;
            }
        }
        // The batch is spent: nothing before `sector`'s next extent is
        // cached any more, so the next call starts there.
        let next = self
            .tree
            .get_ge(&key(dev, sector))
            .filter(|&(k, _)| key_dev(k) == dev && key_sector(k) < end)
            .map(|(k, _)| key_sector(k));
        Invalidation { dropped, next }
    }

    /// Inserts the extent `region` for the sectors of `dev` starting at
    /// `sector`, unless a current extent overlaps them, the region's bucket
    /// was invalidated, or the index is at its memory limit. Stale extents
    /// in the way are removed (at most [`STALE_BUDGET`]). An extent that
    /// continues the one before it, on the device and in the same bucket,
    /// is merged into it (no new entry).
    pub fn insert<S: DerefMut<Target = [BucketMeta]>>(
        &mut self,
        dev: DevId,
        sector: u64,
        region: &Region,
        buckets: &mut Buckets<S>,
    ) -> Result<(), InsertError> {
        let e = region.extent();
        if e.len == 0 {
            return Err(InsertError::Invalid);
        }
        let end = sector
            .checked_add(u64::from(e.len))
            .filter(|&end| end <= MAX_DEV_SECTORS)
            .ok_or(InsertError::Invalid)?;
        if !buckets.is_current(&e) {
            return Err(InsertError::Stale);
        }
        let mut budget = STALE_BUDGET;
        loop {
            let hit = self
                .containing(dev, sector)
                .or_else(|| self.next_in(dev, sector, end));
            match hit {
                Some(_) if budget == 0 => return Err(InsertError::Fragmented),
                Some((start, old)) if !buckets.is_current(&old) => {
                    budget -= 1;
                    self.remove_stale(dev, start);
                }
                Some(_) => return Err(InsertError::Overlap),
                None => break,
            }
        }
        // Merge with the extent that ends where this one starts, if it is
        // the same bucket's data right before this region.
        if let Some((k, prev)) = self.tree.get_lt(&key(dev, sector)) {
            let adjacent = key_dev(k) == dev
                && key_sector(k) + u64::from(prev.len) == sector
                && prev.bucket == e.bucket
                && prev.gen == e.gen
                && prev.offset.checked_add(prev.len) == Some(e.offset);
            let merged = prev.len.checked_add(e.len).filter(|_| adjacent);
            if let Some(len) = merged.filter(|_| buckets.is_current(&prev)) {
                if let Some(v) = self.tree.get_mut(&k) {
                    v.len = len;
                    buckets.add_live(&e);
                    return Ok(());
                }
            }
        }
        if self.tree.memory_bytes() >= self.max_bytes {
            return Err(InsertError::IndexFull);
        }
        self.tree
            .insert(key(dev, sector), e)
            .map_err(|_| InsertError::NoMemory)?;
        buckets.add_live(&e);
        Ok(())
    }

    /// Removes up to `budget` extents of `dev` (when the device goes away).
    /// Returns whether none is left.
    pub fn remove_dev<S: DerefMut<Target = [BucketMeta]>>(
        &mut self,
        dev: DevId,
        budget: usize,
        buckets: &mut Buckets<S>,
    ) -> bool {
        for _ in 0..budget {
            let Some((k, e)) = self
                .tree
                .get_ge(&key(dev, 0))
                .filter(|&(k, _)| key_dev(k) == dev)
            else {
                return true;
            };
            self.tree.remove(&k);
            buckets.drop_live(&e, e.len);
        }
        self.tree
            .get_ge(&key(dev, 0))
            .filter(|&(k, _)| key_dev(k) == dev)
            .is_none()
    }

    /// One step of the background pass: removes the stale extents among up
    /// to `4 * GC_BATCH` extents from key `cursor` on (at most
    /// [`GC_BATCH`]). Returns the key to continue from, or `None` at the
    /// end of the index, and the number removed.
    pub fn gc_step<S: DerefMut<Target = [BucketMeta]>>(
        &mut self,
        cursor: u64,
        buckets: &Buckets<S>,
    ) -> (Option<u64>, usize) {
        let mut stale = [0u64; GC_BATCH];
        let mut n = 0;
        let mut next = None;
        for (visited, (k, e)) in self.tree.iter_from(&cursor).enumerate() {
            if visited == 4 * GC_BATCH || n == GC_BATCH {
                next = Some(k);
                break;
            }
            if !buckets.is_current(&e) {
                stale[n] = k;
                n += 1;
            }
        }
        for k in stale.iter().take(n) {
            self.tree.remove(k);
        }
        self.stale_dropped += n as u64;
        (next, n)
    }

    /// Checks the index's invariants (tests).
    pub fn check(&self) -> Result<(), &'static str> {
        self.tree.check_invariants()?;
        let mut prev: Option<(DevId, u64)> = None;
        for (k, e) in self.tree.iter() {
            if e.len == 0 {
                return Err("empty extent");
            }
            let (dev, start) = (key_dev(k), key_sector(k));
            if let Some((pdev, pend)) = prev {
                if pdev == dev && pend > start {
                    return Err("overlapping extents");
                }
            }
            prev = Some((dev, start + u64::from(e.len)));
        }
        Ok(())
    }

    /// Every extent in key order (tests).
    pub fn for_each(&self, mut f: impl FnMut(DevId, u64, Extent)) {
        for (k, e) in self.tree.iter() {
            f(key_dev(k), key_sector(k), e);
        }
    }
}

#[derive(Clone, Copy)]
struct Slot {
    used: bool,
    write: bool,
    collided: bool,
    dev: DevId,
    start: u64,
    end: u64,
}

const EMPTY_SLOT: Slot = Slot {
    used: false,
    write: false,
    collided: false,
    dev: 0,
    start: 0,
    end: 0,
};

/// A tracked fill or write: its slot in the [`Inflight`] table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket(u16);

/// How a write is tracked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteTicket {
    /// In a slot; its cache copy may be inserted unless it collides.
    Tracked(Ticket),
    /// The table was full: no cache copy, and fills collide until it ends.
    Untracked,
}

/// Fills and writes in flight, for collision detection (see the module
/// documentation).
///
/// # Invariants
///
/// `untracked` counts the writes begun with [`WriteTicket::Untracked`] and
/// not ended.
pub struct Inflight {
    slots: [Slot; INFLIGHT_SLOTS],
    untracked: u32,
}

impl Default for Inflight {
    fn default() -> Self {
        Self::new()
    }
}

impl Inflight {
    /// An empty table.
    pub const fn new() -> Self {
        Self {
            slots: [EMPTY_SLOT; INFLIGHT_SLOTS],
            untracked: 0,
        }
    }

    fn overlaps(s: &Slot, dev: DevId, start: u64, end: u64) -> bool {
        s.used && s.dev == dev && s.start < end && start < s.end
    }

    fn take_slot(
        &mut self,
        write: bool,
        dev: DevId,
        start: u64,
        end: u64,
        collided: bool,
    ) -> Option<Ticket> {
        let (i, s) = self.slots.iter_mut().enumerate().find(|(_, s)| !s.used)?;
        *s = Slot {
            used: true,
            write,
            collided,
            dev,
            start,
            end,
        };
        // INFLIGHT_SLOTS fits in a u16.
        Some(Ticket(i as u16))
    }

    /// A fill of `len` sectors of `dev` at `sector` wants to start: `None`
    /// if an overlapping write is in flight, an untracked write is, or the
    /// table is full.
    pub fn begin_fill(&mut self, dev: DevId, sector: u64, len: u64) -> Option<Ticket> {
        let end = sector.saturating_add(len);
        if self.untracked > 0
            || self
                .slots
                .iter()
                .any(|s| s.write && Self::overlaps(s, dev, sector, end))
        {
            return None;
        }
        self.take_slot(false, dev, sector, end, false)
    }

    /// A write of `len` sectors of `dev` at `sector` starts: every
    /// overlapping fill and write in flight collides, and so does this one
    /// if an overlapping write is in flight.
    pub fn begin_write(&mut self, dev: DevId, sector: u64, len: u64) -> WriteTicket {
        let end = sector.saturating_add(len);
        let mut collided = false;
        for s in self.slots.iter_mut() {
            if Self::overlaps(s, dev, sector, end) {
                s.collided = true;
                collided |= s.write;
            }
        }
        match self.take_slot(true, dev, sector, end, collided) {
            Some(t) => WriteTicket::Tracked(t),
            None => {
                for s in self.slots.iter_mut() {
                    s.collided = true;
                }
                self.untracked += 1;
                WriteTicket::Untracked
            }
        }
    }

    /// A fill or tracked write ends: frees its slot and returns whether it
    /// collided.
    pub fn end(&mut self, t: Ticket) -> bool {
        match self.slots.get_mut(usize::from(t.0)) {
            Some(s) if s.used => {
                s.used = false;
                s.collided
            }
            _ => true,
        }
    }

    /// A write ends.
    pub fn end_write(&mut self, t: WriteTicket) -> bool {
        match t {
            WriteTicket::Tracked(t) => self.end(t),
            WriteTicket::Untracked => {
                self.untracked = self.untracked.saturating_sub(1);
                true
            }
        }
    }

    /// Entries in use (tests and statistics).
    pub fn in_use(&self) -> usize {
        self.slots.iter().filter(|s| s.used).count() + self.untracked as usize
    }
}

/// The sequential-stream length after an I/O of `len` sectors at `sector`,
/// when the previous I/O ended at `last_end` and the stream was `run`
/// sectors long: the stream continues only if this I/O starts where the last
/// one ended.
pub fn sequential_run(last_end: u64, run: u64, sector: u64, len: u64) -> u64 {
    if sector == last_end {
        run.saturating_add(len)
    } else {
        len
    }
}

/// What the data path keeps under the cache's lock: the index, the buckets
/// and the in-flight table.
pub struct Cache<A: NodeAlloc, S> {
    /// The extent index.
    pub index: Index<A>,
    /// The buckets.
    pub buckets: Buckets<S>,
    /// Fills and writes in flight.
    pub inflight: Inflight,
}

/// A read's next piece, as the data path acts on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadPlan {
    /// Read `len` sectors from the SSD at `offset` sectors into `bucket`
    /// (the caller pins the bucket under the lock).
    Hit {
        /// The bucket.
        bucket: u32,
        /// First sector in the bucket.
        offset: u32,
        /// Sectors.
        len: u64,
    },
    /// Read `len` sectors from the backing device, then write them to
    /// `region` on the SSD and finish the fill with `ticket`.
    Fill {
        /// Sectors.
        len: u64,
        /// Where the copy goes (the caller pins its bucket).
        region: Region,
        /// The fill's in-flight slot.
        ticket: Ticket,
    },
    /// Read `len` sectors from the backing device, no fill: `collided`
    /// says whether a write in flight was the reason.
    Miss {
        /// Sectors.
        len: u64,
        /// A write to these sectors is in flight.
        collided: bool,
    },
}

/// A write as the data path acts on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WritePlan {
    /// Its collision ticket.
    pub ticket: WriteTicket,
    /// Where its cache copy goes (writethrough), if anywhere.
    pub region: Option<Region>,
}

/// How a fill or a writethrough copy ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FillOutcome {
    /// In the index.
    Inserted,
    /// A write to its sectors started meanwhile: dropped.
    Collided,
    /// Not inserted for another reason (I/O error, overlap, stale, memory).
    Dropped(Option<InsertError>),
}

impl<A: NodeAlloc, S: DerefMut<Target = [BucketMeta]>> Cache<A, S> {
    /// A cache over `buckets` with an empty index on `alloc`.
    pub fn new(alloc: A, buckets: Buckets<S>) -> Self {
        Self {
            index: Index::new(alloc),
            buckets,
            inflight: Inflight::new(),
        }
    }

    /// The first piece of a read of `len` sectors of `dev` at `sector`, or
    /// `None` if the read would be cut in more than `max_pieces` pieces
    /// (then it should go to the backing device whole). A read that is one
    /// hit costs one lookup; otherwise the pieces are counted before the
    /// piece is planned, so that a refused read leaves no fill behind. As
    /// [`Cache::read`] otherwise.
    pub fn read_first(
        &mut self,
        dev: DevId,
        sector: u64,
        len: u64,
        fill: bool,
        max_pieces: usize,
        pinned: &dyn Fn(u32) -> bool,
    ) -> Option<ReadPlan> {
        let piece = self.index.lookup(dev, sector, len, &self.buckets);
        let whole = matches!(piece, Piece::Hit { len: l, .. } if l >= len);
        // Counting drops only stale extents, which `lookup` already
        // stepped over: `piece` stays valid.
        if !whole
            && self
                .index
                .pieces(dev, sector, len, max_pieces, &self.buckets)
                > max_pieces
        {
            return None;
        }
        Some(self.plan(dev, sector, piece, fill, pinned))
    }

    /// The next piece of a read of `len` sectors of `dev` at `sector`.
    ///
    /// `fill` says whether a miss may be filled (not for bypassed I/O), and
    /// `block` is the allocation unit in sectors: a fill is rounded to it
    /// (reads are block-aligned). A hit raises its bucket's priority.
    pub fn read(
        &mut self,
        dev: DevId,
        sector: u64,
        len: u64,
        fill: bool,
        pinned: &dyn Fn(u32) -> bool,
    ) -> ReadPlan {
        let piece = self.index.lookup(dev, sector, len, &self.buckets);
        self.plan(dev, sector, piece, fill, pinned)
    }

    /// What to do with `piece`, the first piece of a read of `dev` at
    /// `sector`: see [`Cache::read`].
    fn plan(
        &mut self,
        dev: DevId,
        sector: u64,
        piece: Piece,
        fill: bool,
        pinned: &dyn Fn(u32) -> bool,
    ) -> ReadPlan {
        match piece {
            Piece::Hit {
                bucket,
                offset,
                len,
            } => {
                self.buckets.hit(bucket);
                ReadPlan::Hit {
                    bucket,
                    offset,
                    len,
                }
            }
            Piece::Miss { len } => {
                if !fill {
                    return ReadPlan::Miss {
                        len,
                        collided: false,
                    };
                }
                let Ok(sectors) = u32::try_from(len) else {
                    return ReadPlan::Miss {
                        len,
                        collided: false,
                    };
                };
                if sectors > self.buckets.bucket_sectors() {
                    return ReadPlan::Miss {
                        len,
                        collided: false,
                    };
                }
                let Some(ticket) = self.inflight.begin_fill(dev, sector, len) else {
                    return ReadPlan::Miss {
                        len,
                        collided: true,
                    };
                };
                match self.buckets.alloc(sectors, pinned) {
                    Some(region) => ReadPlan::Fill {
                        len,
                        region,
                        ticket,
                    },
                    None => {
                        self.inflight.end(ticket);
                        ReadPlan::Miss {
                            len,
                            collided: false,
                        }
                    }
                }
            }
        }
    }

    /// A fill's SSD write ended (`ok`: it and the backing read succeeded):
    /// inserts its extent unless it collided.
    pub fn finish_fill(
        &mut self,
        dev: DevId,
        sector: u64,
        region: &Region,
        ticket: Ticket,
        ok: bool,
    ) -> FillOutcome {
        let collided = self.inflight.end(ticket);
        self.finish(dev, sector, region, collided, ok)
    }

    fn finish(
        &mut self,
        dev: DevId,
        sector: u64,
        region: &Region,
        collided: bool,
        ok: bool,
    ) -> FillOutcome {
        if collided {
            return FillOutcome::Collided;
        }
        if !ok {
            return FillOutcome::Dropped(None);
        }
        match self.index.insert(dev, sector, region, &mut self.buckets) {
            Ok(()) => FillOutcome::Inserted,
            Err(e) => {
                if e == InsertError::IndexFull {
                    self.buckets.request_eviction();
                }
                FillOutcome::Dropped(Some(e))
            }
        }
    }

    /// A write (or discard) of `len` sectors of `dev` at `sector` starts:
    /// marks collisions, with `copy` (writethrough of a data write)
    /// allocates room for a cache copy, and invalidates the first
    /// [`INVALIDATE_BATCH`] extents of the range. If more are left, the
    /// second value says where to go on with [`Cache::invalidate_more`]
    /// (under a new hold of the lock: the write is in the in-flight table
    /// from here on, so no fill of its sectors can be inserted meanwhile);
    /// the write must not be sent to the backing device before the range
    /// is done.
    pub fn begin_write(
        &mut self,
        dev: DevId,
        sector: u64,
        len: u64,
        copy: bool,
        pinned: &dyn Fn(u32) -> bool,
    ) -> (WritePlan, Option<u64>) {
        let ticket = self.inflight.begin_write(dev, sector, len);
        let region = match (copy, ticket, u32::try_from(len)) {
            (true, WriteTicket::Tracked(_), Ok(sectors)) => self.buckets.alloc(sectors, pinned),
            _ => None,
        };
        let more = self
            .index
            .invalidate(dev, sector, len, &mut self.buckets)
            .next;
        (WritePlan { ticket, region }, more)
    }

    /// Goes on invalidating a write's range (see [`Cache::begin_write`]):
    /// from `from` up to `end`. Returns where to go on, or `None` when done.
    pub fn invalidate_more(&mut self, dev: DevId, from: u64, end: u64) -> Option<u64> {
        let len = end.checked_sub(from)?;
        self.index
            .invalidate(dev, from, len, &mut self.buckets)
            .next
    }

    /// A write ended (`ok`: the backing write and the cache copy, if any,
    /// succeeded): inserts the copy unless it collided. Returns `None`
    /// without a copy.
    pub fn finish_write(
        &mut self,
        dev: DevId,
        sector: u64,
        plan: &WritePlan,
        ok: bool,
    ) -> Option<FillOutcome> {
        let collided = self.inflight.end_write(plan.ticket);
        let region = plan.region.as_ref()?;
        Some(self.finish(dev, sector, region, collided, ok))
    }
}

impl<A: NodeAlloc> Index<A> {
    /// Calls `f` on the current extents (stale ones skipped) from key
    /// `cursor` on, visiting at most `max` entries, stale ones included (so
    /// a step under the cache's lock is bounded however many are stale): a
    /// checkpoint's pass over the index. Returns the key to go on from, or
    /// `None` at the end.
    pub fn current_from<S: DerefMut<Target = [BucketMeta]>>(
        &self,
        cursor: u64,
        max: usize,
        buckets: &Buckets<S>,
        mut f: impl FnMut(DevId, u64, Extent),
    ) -> Option<u64> {
        for (seen, (k, e)) in self.tree.iter_from(&cursor).enumerate() {
            if seen == max {
                return Some(k);
            }
            if buckets.is_current(&e) {
                f(key_dev(k), key_sector(k), e);
            }
        }
        None
    }
}

/// Why [`Restore::extent`] refused an extent read back from the SSD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreError {
    /// Its bucket does not exist, or it does not fit in it, or it is
    /// empty, or it runs past the sector space.
    Invalid,
    /// It overlaps an extent restored before: the records are not those of
    /// one index.
    Overlap,
    /// No memory for a tree node.
    NoMemory,
}

/// Rebuilds a [`Cache`] from what persistence kept: each bucket's
/// generation and priority, then the extents (a checkpoint's, then the
/// journal's), then [`Restore::finish`].
///
/// An extent whose generation is not its bucket's is stale and skipped
/// (counted); every bucket that holds a current extent goes to the data
/// queue, in bucket order (the eviction hand's order is not kept), the
/// others to the free queue; no bucket is open (the one that was open
/// keeps its unwritten sectors unused until it is evicted).
///
/// # Invariants
///
/// `meta` has one entry per bucket, fewer than `u32::MAX`; every bucket is
/// `Free` or `Data`, and a current extent (of its bucket's generation, in
/// a `Data` bucket) is in a `Data` bucket whose `live` counts the current
/// extents' sectors in it; the index's extents do not overlap.
pub struct Restore<A: NodeAlloc, S> {
    index: Index<A>,
    meta: S,
    bucket_sectors: u32,
    skipped: u64,
}

impl<A: NodeAlloc, S: DerefMut<Target = [BucketMeta]>> Restore<A, S> {
    /// A restore over `meta` (one entry per bucket), buckets of
    /// `bucket_sectors`, each bucket's generation and priority (at most
    /// [`PRIO_MAX`]) given by `state`; `None` as for [`Buckets::new`].
    pub fn new(
        alloc: A,
        mut meta: S,
        bucket_sectors: u32,
        state: impl Fn(u32) -> (u32, u8),
    ) -> Option<Self> {
        let n = u32::try_from(meta.len()).ok().filter(|&n| n < NIL)?;
        if n == 0 || bucket_sectors == 0 {
            return None;
        }
        for (b, m) in (0..n).zip(meta.iter_mut()) {
            let (gen, prio) = state(b);
            *m = BucketMeta {
                gen,
                prio: prio.min(PRIO_MAX),
                ..BucketMeta::FREE
            };
        }
        // INVARIANT: every bucket free, no extent.
        Some(Self {
            index: Index::new(alloc),
            meta,
            bucket_sectors,
            skipped: 0,
        })
    }

    /// Restores the extent `e` of sectors of `dev` from `sector`. Returns
    /// whether it entered the index (`false`: stale, skipped).
    ///
    /// # Errors
    ///
    /// [`RestoreError`] for an extent that cannot be one of this cache's
    /// (the restore is then unchanged).
    pub fn extent(&mut self, dev: DevId, sector: u64, e: Extent) -> Result<bool, RestoreError> {
        let fits = e
            .offset
            .checked_add(e.len)
            .is_some_and(|end| end <= self.bucket_sectors);
        let end = sector
            .checked_add(u64::from(e.len))
            .filter(|&end| end <= MAX_DEV_SECTORS);
        let (Some(m), true, Some(end)) = (self.meta.get(e.bucket as usize), fits, end) else {
            return Err(RestoreError::Invalid);
        };
        if e.len == 0 {
            return Err(RestoreError::Invalid);
        }
        if m.gen != e.gen {
            self.skipped += 1;
            return Ok(false);
        }
        // Extents in the way are an error unless a later `BUCKET` record
        // made them stale (then they go).
        loop {
            let hit = self
                .index
                .containing(dev, sector)
                .or_else(|| self.index.next_in(dev, sector, end));
            match hit {
                Some((start, old)) if !self.is_current(&old) => {
                    self.index.tree.remove(&key(dev, start));
                }
                Some(_) => return Err(RestoreError::Overlap),
                None => break,
            }
        }
        self.index
            .tree
            .insert(key(dev, sector), e)
            .map_err(|_| RestoreError::NoMemory)?;
        if let Some(m) = self.meta.get_mut(e.bucket as usize) {
            // INVARIANT: a bucket with a restored extent is `Data`.
            m.state = BucketState::Data;
            m.live = m.live.saturating_add(e.len);
            m.ckpt = true;
        }
        Ok(true)
    }

    /// A checkpoint's extent in `bucket` was not restored (its device was
    /// dropped) but may be current for a later registration: the bucket is
    /// reused only after a durable `BUCKET` record ([`BucketMeta::ckpt`]).
    pub fn mark(&mut self, bucket: u32) {
        if let Some(m) = self.meta.get_mut(bucket as usize) {
            m.ckpt = true;
        }
    }

    /// The generation bucket `bucket` has in the restore so far.
    pub fn gen(&self, bucket: u32) -> Option<u32> {
        self.meta.get(bucket as usize).map(|m| m.gen)
    }

    /// Stale extents skipped so far.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The current extents in the index so far (one pass over it).
    pub fn current(&self) -> u64 {
        let mut n = 0;
        self.index
            .for_each(|_, _, e| n += u64::from(self.is_current(&e)));
        n
    }

    /// Whether `e` is a current extent of the restore: its bucket holds
    /// data of its generation.
    fn is_current(&self, e: &Extent) -> bool {
        self.meta
            .get(e.bucket as usize)
            .is_some_and(|m| m.gen == e.gen && m.state == BucketState::Data)
    }

    /// `e`, in the index, loses `sectors` sectors.
    fn drop_live(&mut self, e: &Extent, sectors: u32) {
        if self.is_current(e) {
            if let Some(m) = self.meta.get_mut(e.bucket as usize) {
                m.live = m.live.saturating_sub(sectors);
            }
        }
    }

    /// Replays an `INVALIDATE` record: `len` sectors of `dev` from
    /// `sector` were written, and no extent holds them any more (extents
    /// that straddle an end are trimmed, one over the whole range split).
    ///
    /// # Errors
    ///
    /// [`RestoreError::Invalid`] for an empty range or one past the sector
    /// space, [`RestoreError::NoMemory`] if a split found no node (the
    /// restore has then dropped the extent whole, which holds no stale
    /// data).
    pub fn invalidate(&mut self, dev: DevId, sector: u64, len: u64) -> Result<(), RestoreError> {
        let end = sector
            .checked_add(len)
            .filter(|&end| len > 0 && end <= MAX_DEV_SECTORS)
            .ok_or(RestoreError::Invalid)?;
        while let Some((start, e)) = self
            .index
            .containing(dev, sector)
            .or_else(|| self.index.next_in(dev, sector, end))
        {
            let e_end = start + u64::from(e.len);
            // Each cast is of a part of `e`'s length, which is a `u32`.
            let head = sector.saturating_sub(start) as u32;
            let tail = e_end.saturating_sub(end) as u32;
            self.index.tree.remove(&key(dev, start));
            self.drop_live(&e, e.len - head - tail);
            let mut result = Ok(());
            if head > 0 {
                let kept = Extent { len: head, ..e };
                if self.index.tree.insert(key(dev, start), kept).is_err() {
                    self.drop_live(&e, head);
                    result = Err(RestoreError::NoMemory);
                }
            }
            if tail > 0 {
                let kept = Extent {
                    offset: e.offset + (e.len - tail),
                    len: tail,
                    ..e
                };
                if self.index.tree.insert(key(dev, end), kept).is_err() {
                    self.drop_live(&e, tail);
                    result = Err(RestoreError::NoMemory);
                }
            }
            result?;
            if head > 0 && tail > 0 {
                break;
            }
        }
        Ok(())
    }

    /// Replays a `BUCKET` record: `bucket` was invalidated, its generation
    /// is now `gen` and it holds nothing (its extents are stale).
    ///
    /// # Errors
    ///
    /// [`RestoreError::Invalid`] for a bucket the cache does not have.
    pub fn bucket(&mut self, bucket: u32, gen: u32) -> Result<(), RestoreError> {
        let m = self
            .meta
            .get_mut(bucket as usize)
            .ok_or(RestoreError::Invalid)?;
        // INVARIANT: no current extent is in a free bucket.
        m.gen = gen;
        m.live = 0;
        m.state = BucketState::Free;
        // The extents before the record are stale on the SSD too.
        m.ckpt = false;
        Ok(())
    }

    /// The cache: the buckets with data in the data queue, the others
    /// free, and an empty in-flight table; a bucket with no restored
    /// extent but [`Restore::mark`]ed is invalidated (its generation
    /// bumped, waiting for its record like any invalidated bucket of the
    /// checkpoint).
    pub fn finish(self) -> Cache<A, S> {
        let Restore {
            index,
            mut meta,
            bucket_sectors,
            ..
        } = self;
        let (mut free, mut data, mut pending, mut in_use) =
            (Queue::EMPTY, Queue::EMPTY, Queue::EMPTY, 0u32);
        for b in 0..meta.len() as u32 {
            let Some(m) = meta.get_mut(b as usize) else {
                break;
            };
            if m.state == BucketState::Data {
                in_use += u32::from(m.live > 0);
                data.push_back(&mut meta, b);
            } else if m.ckpt {
                m.ckpt = false;
                m.gen = m.gen.wrapping_add(1);
                m.state = BucketState::Invalidated;
                pending.push_back(&mut meta, b);
            } else {
                free.push_back(&mut meta, b);
            }
        }
        // INVARIANT: every bucket is in the queue of its state, none open;
        // `live` counts the extents restored in each, `in_use` the buckets
        // with live sectors.
        let buckets = Buckets {
            meta,
            bucket_sectors,
            open: None,
            open_used: 0,
            free,
            data,
            untaken: pending.head,
            pending,
            taken: 0,
            persistent: false,
            in_use,
            evict_pending: 0,
            stats: BucketStats::default(),
        };
        Cache {
            index,
            buckets,
            inflight: Inflight::new(),
        }
    }
}
