// SPDX-License-Identifier: GPL-2.0

//! The persistent index (format version 2): what a cache's journal region
//! says at registration, the cache it restores, and the checkpoint of a
//! cache at a clean unregister. No I/O: the module reads and writes the
//! blocks (bios), the host tests a simulated region.
//!
//! # What this version writes
//!
//! A session (a registration to its unregister) writes, in the journal
//! ring:
//!
//! - the **write-intent map**: before the first write (or discard) into a
//!   region of 8 MiB of a device whose extents the checkpoint at the tail
//!   holds goes to the backing device, a block with its `DIRTY dev region`
//!   (the device's number in that checkpoint), durable; `DIRTY dev
//!   ALL_REGIONS` before such a device is written uncached (detached, or
//!   not attached); `DIRTY` of every device ([`ALL_DEVS`]) when the ring
//!   is full or the cache failed;
//! - `BUCKET` records: a bucket the checkpoint may hold current extents in
//!   ([`crate::bcache::BucketMeta::ckpt`]) is invalidated, and reused only
//!   once its record (its new generation) is durable;
//! - at a clean unregister, a checkpoint of the index into the checkpoint
//!   area not in use, then a journal block whose records are its
//!   `CHECKPOINT` and `CLEAN` of every device, which moves the tail.
//!
//! Replay ([`scan`], [`restore`]) restores the checkpoint named by the
//! tail of the journal and applies the records after it: a `DIRTY` drops
//! the extents of its region (or device), a `BUCKET` makes its bucket's
//! older extents stale. So after a crash at any instant no extent is
//! restored over a region written since the checkpoint, nor over a bucket
//! written with new data since: the cache never serves data older than an
//! acknowledged write, and keeps the rest. A `DIRTY` of every device after
//! the last `CLEAN` of every device restores nothing ([`Scan::dirty`]).
//! Fills since the checkpoint are not journaled: a crash loses them (the
//! cache is only colder).
//!
//! A checkpoint's records: `DEVICE` of each backing device whose extents it
//! keeps, `BUCKET` of each bucket whose generation is not 0, then `CACHED`
//! (24 bytes, of its bucket's generation; `EXTENT` for one whose fields do
//! not fit) of each current extent of those devices, in index order, each
//! followed by the `SUMS` records of its blocks' data checksums
//! ([`extent_sums`]); [`restore`] drops an extent whose sums do not all
//! follow it (a checkpoint of a version without data checksums, or one
//! whose area was full). A device's
//! number in the records is the cache's; [`restore`] maps each to the
//! number the registration gives it (or drops its extents).
//!
//! Journal records of other kinds (`EXTENT`, `INVALIDATE`, `DEVICE` after
//! the checkpoint: a later version's finer journal) are applied in order
//! after the checkpoint.

use crate::bcache::{BucketMeta, Cache, DevId, Extent, Restore, RestoreError, MAX_DEV_SECTORS};
use crate::btree::NodeAlloc;
use crate::format::{
    check_checkpoint_block, checkpoint_csum, crc32c_extend, decode_block, plan_replay, records,
    BlockKind, CheckpointWriter, EmitBlock, JournalError, JournalLayout, JournalRing, Record,
    ReplayPlan, Uuid, ALL_DEVS, ALL_REGIONS, DIRTY_REGION_SECTORS, DIRTY_REGION_SHIFT, JBLOCK_SIZE,
    SUMS_MAX,
};
use crate::sums::SumTable;
use core::fmt;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Most device numbers a checkpoint may name (the module's minors).
pub const MAX_DEVICES: usize = 256;

/// The checkpoint a journal names: the first record of its tail block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointRef {
    /// The journal block whose first record names it.
    pub seq: u64,
    /// Its first block in the journal region.
    pub start: u64,
    /// Its blocks.
    pub blocks: u32,
    /// Its records.
    pub records: u64,
    /// [`checkpoint_csum`] of its blocks.
    pub csum: u32,
}

/// What the journal ring says, before anything is restored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scan {
    /// The blocks to replay (`None`: an empty journal).
    pub plan: Option<ReplayPlan>,
    /// The checkpoint at the tail, if any.
    pub checkpoint: Option<CheckpointRef>,
    /// A `DIRTY` of every device follows the last `CLEAN` of every device
    /// (a session of the first version, or one whose ring filled or whose
    /// cache failed, ended without its checkpoint): the index must start
    /// empty.
    pub dirty: bool,
    /// `DIRTY` records of one device after the checkpoint: regions (or
    /// whole devices) whose extents replay drops.
    pub regions: u64,
    /// Other records after the checkpoint to apply (`BUCKET` and later
    /// kinds; not `CLEAN`).
    pub records: u64,
}

impl Scan {
    /// The writer's ring after this scan.
    pub fn ring(&self, layout: &JournalLayout) -> Option<JournalRing> {
        JournalRing::new(layout.ring_blocks, self.plan)
    }

    /// The checkpoint area the next checkpoint goes to: the one the live
    /// checkpoint is not in.
    pub fn next_area(&self, layout: &JournalLayout) -> u8 {
        match self.checkpoint.and_then(|c| layout.area_at(c.start)) {
            Some(0) => 1,
            _ => 0,
        }
    }
}

/// The ring of a journal that cannot be replayed, restarted after the
/// newest block seen: its next block is its own tail, so replay never
/// goes back before it.
pub fn restart_ring(layout: &JournalLayout, newest: u64) -> Option<JournalRing> {
    let next = newest.checked_add(1)?;
    JournalRing::new(
        layout.ring_blocks,
        Some(ReplayPlan {
            tail: next,
            end: next,
            newest,
        }),
    )
}

/// Why the persistent index could not be restored. The module then starts
/// the cache empty (nothing stale can be served) and says why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// The journal or a checkpoint block is damaged.
    Journal(JournalError),
    /// The tail's `CHECKPOINT` names blocks that are not a checkpoint area.
    BadCheckpointPlace {
        /// Its first block.
        start: u64,
        /// Its blocks.
        blocks: u32,
    },
    /// The checkpoint's blocks do not hold what its record says.
    CheckpointMismatch,
    /// A block could not be read.
    Read {
        /// Its index in the journal region.
        block: u64,
        /// The negative errno.
        errno: i32,
    },
    /// A record cannot be this cache's (its bucket or device does not
    /// exist, or it overlaps another extent).
    BadRecord(RestoreError),
}

impl LoadError {
    /// The newest journal block seen, when the error names it.
    pub fn newest(&self) -> Option<u64> {
        match self {
            LoadError::Journal(JournalError::MissingTail { newest, .. }) => Some(*newest),
            _ => None,
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LoadError::Journal(e) => write!(f, "{e}"),
            LoadError::BadCheckpointPlace { start, blocks } => write!(
                f,
                "checkpoint damaged: {blocks} blocks from block {start} are not a checkpoint area"
            ),
            LoadError::CheckpointMismatch => {
                f.write_str("checkpoint damaged: its blocks do not match its record")
            }
            LoadError::Read { block, errno } => {
                write!(
                    f,
                    "cannot read block {block} of the journal (error {errno})"
                )
            }
            LoadError::BadRecord(RestoreError::NoMemory) => {
                f.write_str("no memory for the restored index")
            }
            LoadError::BadRecord(RestoreError::Overlap) => {
                f.write_str("journal damaged: two records give the same sectors")
            }
            LoadError::BadRecord(RestoreError::Invalid) => f.write_str(
                "journal damaged: a record names a bucket or range this cache does not have",
            ),
        }
    }
}

/// The valid journal block at `index` of the ring (read in `ring`).
fn ring_block(ring: &[u8], index: u64, tag: u64) -> Option<&[u8]> {
    let at = usize::try_from(index).ok()?.checked_mul(JBLOCK_SIZE)?;
    ring.get(at..at.checked_add(JBLOCK_SIZE)?)
        .filter(|b| decode_block(b, tag).is_ok_and(|h| h.kind == BlockKind::Journal))
}

/// Reads what the journal ring says: `ring` holds the ring's blocks
/// (`layout.ring_blocks` of them, read in one sequential pass).
///
/// # Errors
///
/// [`LoadError::Journal`] if the ring cannot be replayed (its tail block is
/// missing).
pub fn scan(layout: &JournalLayout, tag: u64, ring: &[u8]) -> Result<Scan, LoadError> {
    let n = layout.ring_blocks;
    let plan = plan_replay(n, |i| {
        let at = usize::try_from(i).ok()?.checked_mul(JBLOCK_SIZE)?;
        let b = ring.get(at..at.checked_add(JBLOCK_SIZE)?)?;
        decode_block(b, tag).ok()
    })
    .map_err(LoadError::Journal)?;
    let mut out = Scan {
        plan,
        checkpoint: None,
        dirty: false,
        regions: 0,
        records: 0,
    };
    let Some(plan) = plan else {
        return Ok(out);
    };
    for seq in plan.tail..plan.end {
        // `checked_rem`: no division panic path (objtool of 6.12 does not
        // know `panic_const_rem_by_zero` as noreturn).
        let Some(b) = seq.checked_rem(n).and_then(|i| ring_block(ring, i, tag)) else {
            break;
        };
        let Ok(h) = decode_block(b, tag) else {
            break;
        };
        for (i, r) in records(b, &h).enumerate() {
            match r {
                Record::Checkpoint {
                    blocks,
                    start,
                    records,
                    csum,
                } if seq == plan.tail && i == 0 => {
                    out.checkpoint = Some(CheckpointRef {
                        seq,
                        start,
                        blocks,
                        records,
                        csum,
                    });
                }
                Record::Checkpoint { .. } => {}
                Record::Dirty { dev: ALL_DEVS, .. } => out.dirty = true,
                Record::Dirty { .. } => out.regions += 1,
                Record::Clean { dev: ALL_DEVS } => out.dirty = false,
                // A device's `CLEAN` does not clear a whole-cache `DIRTY`.
                Record::Clean { .. } => {}
                _ => out.records += 1,
            }
        }
    }
    Ok(out)
}

/// Reads block `block` of the journal region into the buffer; the error is
/// a negative errno.
pub type ReadBlock<'r> = dyn FnMut(u64, &mut [u8; JBLOCK_SIZE]) -> Result<(), i32> + 'r;

/// The journal region as [`scan`] read it.
pub struct RegionView<'a> {
    /// Its layout.
    pub layout: &'a JournalLayout,
    /// The cache's tag ([`crate::format::set_tag`]).
    pub tag: u64,
    /// The ring's blocks.
    pub ring: &'a [u8],
}

/// What [`restore`] restored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// Current extents in the index (after the records that followed the
    /// checkpoint).
    pub extents: u64,
    /// Extents skipped: stale, or of a device the registration dropped.
    pub skipped: u64,
    /// Extents dropped because the checksums of their blocks did not all
    /// follow them.
    pub unsummed: u64,
}

/// Maps the devices of the records to the registration's.
struct DevMap<'a> {
    map: [Option<DevId>; MAX_DEVICES],
    decide: &'a mut dyn FnMut(u32, Uuid) -> Option<DevId>,
}

impl DevMap<'_> {
    fn get(&self, dev: u32) -> Option<DevId> {
        self.map.get(usize::try_from(dev).ok()?).copied().flatten()
    }

    fn device(&mut self, dev: u32, uuid: Uuid) {
        let Some(slot) = usize::try_from(dev).ok().and_then(|d| self.map.get_mut(d)) else {
            return;
        };
        *slot = (self.decide)(dev, uuid);
    }
}

/// Applies record `r`; returns the extent it put in the index, if any.
fn apply<A: NodeAlloc, S: DerefMut<Target = [BucketMeta]>>(
    r: &Record,
    to: &mut Restore<A, S>,
    devs: &mut DevMap<'_>,
    out: &mut Restored,
) -> Result<Option<(DevId, u64, Extent)>, LoadError> {
    match *r {
        Record::Device { dev, uuid } => devs.device(dev, uuid),
        Record::Bucket { bucket, gen } => {
            let b =
                u32::try_from(bucket).map_err(|_| LoadError::BadRecord(RestoreError::Invalid))?;
            to.bucket(b, gen).map_err(LoadError::BadRecord)?;
        }
        Record::Extent {
            dev,
            sector,
            sectors,
            offset,
            bucket,
            gen,
            ..
        } => {
            let bucket =
                u32::try_from(bucket).map_err(|_| LoadError::BadRecord(RestoreError::Invalid))?;
            let Some(id) = devs.get(dev) else {
                // Not restored, but current for a registration that keeps
                // the device: its bucket is not reused without a record.
                to.mark(bucket);
                out.skipped += 1;
                return Ok(None);
            };
            let e = Extent {
                bucket,
                offset,
                len: sectors,
                gen,
            };
            if to.extent(id, sector, e).map_err(LoadError::BadRecord)? {
                out.extents += 1;
                return Ok(Some((id, sector, e)));
            }
            out.skipped += 1;
        }
        Record::Cached {
            dev,
            sector,
            sectors,
            offset,
            bucket,
        } => {
            let bucket =
                u32::try_from(bucket).map_err(|_| LoadError::BadRecord(RestoreError::Invalid))?;
            let gen = to
                .gen(bucket)
                .ok_or(LoadError::BadRecord(RestoreError::Invalid))?;
            let extent = Record::Extent {
                dev,
                sector,
                sectors,
                offset,
                bucket: u64::from(bucket),
                gen,
                csum: 0,
            };
            return apply(&extent, to, devs, out);
        }
        Record::Invalidate {
            dev,
            sector,
            sectors,
        } => {
            if let Some(id) = devs.get(dev) {
                to.invalidate(id, sector, u64::from(sectors))
                    .map_err(LoadError::BadRecord)?;
            }
        }
        Record::Dirty { dev, region } => {
            // `ALL_DEVS` is `Scan::dirty`: nothing is restored then.
            if let Some(id) = devs.get(dev) {
                let (sector, len) = match region {
                    ALL_REGIONS => (0, MAX_DEV_SECTORS),
                    r => {
                        let sector = r
                            .checked_mul(DIRTY_REGION_SECTORS)
                            .filter(|&s| s < MAX_DEV_SECTORS)
                            .ok_or(LoadError::BadRecord(RestoreError::Invalid))?;
                        (sector, DIRTY_REGION_SECTORS.min(MAX_DEV_SECTORS - sector))
                    }
                };
                to.invalidate(id, sector, len)
                    .map_err(LoadError::BadRecord)?;
            }
        }
        Record::Clean { .. } | Record::Checkpoint { .. } | Record::Sums { .. } => {}
    }
    Ok(None)
}

/// The restored extent whose checksums are being read.
struct Pending {
    dev: DevId,
    sector: u64,
    len: u32,
    bucket: u32,
    /// The next block expected, and the end of the extent's blocks.
    next: u32,
    end: u32,
}

/// Reads the checksums that follow each restored extent into the table,
/// and drops the extents whose checksums do not all follow.
struct SumReader<'a, T> {
    table: &'a SumTable<T>,
    pending: Option<Pending>,
}

impl<T: Deref<Target = [AtomicU32]>> SumReader<'_, T> {
    /// Record `r` was applied, and put `inserted` in the index.
    fn record<A: NodeAlloc, S: DerefMut<Target = [BucketMeta]>>(
        &mut self,
        r: &Record,
        inserted: Option<(DevId, u64, Extent)>,
        to: &mut Restore<A, S>,
        out: &mut Restored,
    ) -> Result<(), LoadError> {
        if let (
            Record::Sums {
                bucket,
                block,
                count,
                crcs,
            },
            Some(p),
        ) = (r, self.pending.as_mut())
        {
            let n = usize::from(*count).min(SUMS_MAX);
            let fits = *block < p.end && u32::from(*count) <= p.end - *block;
            if *bucket == p.bucket && *block == p.next && fits {
                if !self.table.set(*bucket, *block, &crcs[..n]) {
                    return Err(LoadError::BadRecord(RestoreError::Invalid));
                }
                p.next += u32::from(*count);
                if p.next == p.end {
                    self.pending = None;
                }
                return Ok(());
            }
        }
        self.finish(to, out)?;
        if let Some((dev, sector, e)) = inserted {
            let t = self.table;
            let (Some(first), Some(n)) = (t.block_of(e.offset), t.block_of(e.len)) else {
                // Not whole blocks: no checksum can cover it.
                return Err(LoadError::BadRecord(RestoreError::Invalid));
            };
            self.pending = Some(Pending {
                dev,
                sector,
                len: e.len,
                bucket: e.bucket,
                next: first,
                end: first.saturating_add(n),
            });
        }
        Ok(())
    }

    /// Drops the pending extent if its checksums did not all follow it.
    fn finish<A: NodeAlloc, S: DerefMut<Target = [BucketMeta]>>(
        &mut self,
        to: &mut Restore<A, S>,
        out: &mut Restored,
    ) -> Result<(), LoadError> {
        if let Some(p) = self.pending.take() {
            to.invalidate(p.dev, p.sector, u64::from(p.len))
                .map_err(LoadError::BadRecord)?;
            out.extents -= 1;
            out.unsummed += 1;
        }
        Ok(())
    }
}

/// The `SUMS` records of the extent record `r` (`CACHED` or `EXTENT`; none
/// for another record), from the checksums in `sums`, given to `push` in
/// order while it returns `Ok(true)`. Returns whether all were taken.
pub fn extent_sums<T: Deref<Target = [AtomicU32]>, E>(
    r: &Record,
    sums: &SumTable<T>,
    push: &mut dyn FnMut(&Record) -> Result<bool, E>,
) -> Result<bool, E> {
    let (bucket, offset, sectors) = match *r {
        Record::Cached {
            bucket,
            offset,
            sectors,
            ..
        }
        | Record::Extent {
            bucket,
            offset,
            sectors,
            ..
        } => (bucket, offset, sectors),
        _ => return Ok(true),
    };
    let (Ok(bucket), Some(first)) = (u32::try_from(bucket), sums.block_of(offset)) else {
        // Not a place the table has: the extent restores without its
        // checksums, that is, not at all.
        return Ok(true);
    };
    let Some(slots) = sums.slots(bucket, offset, u64::from(sectors)) else {
        return Ok(true);
    };
    let mut block = first;
    for chunk in slots.chunks(SUMS_MAX) {
        let mut crcs = [0u32; SUMS_MAX];
        for (c, s) in crcs.iter_mut().zip(chunk) {
            *c = s.load(Ordering::Relaxed);
        }
        let rec = Record::Sums {
            bucket,
            block,
            // At most SUMS_MAX.
            count: chunk.len() as u8,
            crcs,
        };
        if !push(&rec)? {
            return Ok(false);
        }
        // At most SUMS_MAX, and the table's blocks of one bucket fit a u32.
        block += chunk.len() as u32;
    }
    Ok(true)
}

/// Restores into `to` the checkpoint and the journal records that `scan`
/// found (not dirty) in `region`, and into `sums` the checksums of the
/// restored extents' blocks (an extent without all of them is dropped:
/// [`Restored::unsummed`]); `read` reads
/// block `block` of the journal region into its buffer (the checkpoint's,
/// in order); `decide` gives the registration's number of each device a
/// `DEVICE` record names (`None`: its extents are dropped); `buf` is a
/// block's room (off the stack: the module's is 4 KiB of heap).
///
/// # Errors
///
/// [`LoadError`] for a damaged checkpoint or a record that cannot be this
/// cache's (`to` is then partly restored: start empty instead).
pub fn restore<A: NodeAlloc, S: DerefMut<Target = [BucketMeta]>, T: Deref<Target = [AtomicU32]>>(
    scan: &Scan,
    region: &RegionView<'_>,
    read: &mut ReadBlock<'_>,
    buf: &mut [u8; JBLOCK_SIZE],
    to: &mut Restore<A, S>,
    sums: &SumTable<T>,
    decide: &mut dyn FnMut(u32, Uuid) -> Option<DevId>,
) -> Result<Restored, LoadError> {
    let (layout, tag, ring) = (region.layout, region.tag, region.ring);
    let mut out = Restored::default();
    let mut reader = SumReader {
        table: sums,
        pending: None,
    };
    let mut devs = DevMap {
        map: [None; MAX_DEVICES],
        decide,
    };
    let Some(plan) = scan.plan else {
        return Ok(out);
    };
    if let Some(c) = scan.checkpoint {
        let area = layout.area_at(c.start);
        if area.is_none() || u64::from(c.blocks) > layout.area_blocks {
            return Err(LoadError::BadCheckpointPlace {
                start: c.start,
                blocks: c.blocks,
            });
        }
        let (mut crc, mut count) = (checkpoint_csum(core::iter::empty()), 0u64);
        for i in 0..u64::from(c.blocks) {
            let block = c.start + i;
            read(block, buf).map_err(|errno| LoadError::Read { block, errno })?;
            let h = decode_block(&buf[..], tag)
                .map_err(|_| LoadError::Journal(JournalError::BadCheckpoint { index: i }))?;
            check_checkpoint_block(&h, c.seq, i).map_err(LoadError::Journal)?;
            crc = crc32c_extend(crc, &h.csum.to_le_bytes());
            for r in records(&buf[..], &h) {
                count += 1;
                let inserted = apply(&r, to, &mut devs, &mut out)?;
                reader.record(&r, inserted, to, &mut out)?;
            }
        }
        if crc != c.csum || count != c.records {
            return Err(LoadError::CheckpointMismatch);
        }
    }
    let n = layout.ring_blocks;
    for seq in plan.tail..plan.end {
        // `checked_rem`: no division panic path (objtool of 6.12 does not
        // know `panic_const_rem_by_zero` as noreturn).
        let Some(b) = seq.checked_rem(n).and_then(|i| ring_block(ring, i, tag)) else {
            break;
        };
        let Ok(h) = decode_block(b, tag) else {
            break;
        };
        for r in records(b, &h) {
            let inserted = apply(&r, to, &mut devs, &mut out)?;
            reader.record(&r, inserted, to, &mut out)?;
        }
    }
    reader.finish(to, &mut out)?;
    // The records after the checkpoint dropped or made stale some of the
    // extents it restored.
    out.extents = to.current();
    Ok(out)
}

/// The record that gives up the write-intent map: every device may be
/// written from now on without a record (a full ring, a failed cache); a
/// crash then restores nothing. (The first version wrote it when a session
/// opened.)
pub const ALL_DIRTY: Record = Record::Dirty {
    dev: ALL_DEVS,
    region: ALL_REGIONS,
};

/// The record that closes a session after its checkpoint.
pub const SESSION_CLEAN: Record = Record::Clean { dev: ALL_DEVS };

/// Where a checkpoint pass over a cache is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cursor {
    /// `DEVICE` records, from this device number.
    Devices(usize),
    /// `BUCKET` records, from this bucket.
    Buckets(u32),
    /// `EXTENT` records, from this index key.
    Extents(u64),
    /// Every record was given.
    Done,
}

/// The record of current extent `e` of `dev` at `sector` in a checkpoint:
/// `CACHED` (24 bytes, of its bucket's generation) if its fields fit, else
/// `EXTENT`.
fn extent_record(dev: DevId, sector: u64, e: &Extent) -> Record {
    let cached = Record::Cached {
        dev: u32::from(dev),
        sector,
        sectors: e.len,
        offset: e.offset,
        bucket: u64::from(e.bucket),
    };
    if cached.encodable() {
        return cached;
    }
    Record::Extent {
        dev: u32::from(dev),
        sector,
        sectors: e.len,
        offset: e.offset,
        bucket: u64::from(e.bucket),
        gen: e.gen,
        csum: 0,
    }
}

/// The next records of a checkpoint of `cache` into `out`, visiting at most
/// `out.len()` devices, buckets or index entries (a bounded step under the
/// cache's lock: it may write fewer records, none, before the end). The
/// caller may drop its lock between calls, but nothing may change the
/// cache meanwhile but the removal of stale extents (the background pass):
/// no I/O, so no bucket is invalidated (the checkpoint's `BUCKET` records,
/// taken first, are the generations of the extents after them).
/// `owners[d]` is the UUID of device `d` if its extents are kept. Returns
/// how many records were written and where to go on from
/// ([`Cursor::Done`] at the end).
pub fn checkpoint_step<A: NodeAlloc, S: DerefMut<Target = [BucketMeta]>>(
    cache: &Cache<A, S>,
    owners: &[Option<Uuid>],
    cursor: Cursor,
    out: &mut [Record],
) -> (usize, Cursor) {
    let mut n = 0;
    let mut visits = 0;
    let mut cursor = cursor;
    while visits < out.len() {
        visits += 1;
        cursor = match cursor {
            Cursor::Devices(d) => match owners.get(d) {
                Some(o) => {
                    if let (Some(uuid), Some(slot)) = (o, out.get_mut(n)) {
                        *slot = Record::Device {
                            dev: d as u32,
                            uuid: *uuid,
                        };
                        n += 1;
                    }
                    Cursor::Devices(d + 1)
                }
                None => Cursor::Buckets(0),
            },
            Cursor::Buckets(b) => match cache.buckets.meta(b) {
                Some(m) => {
                    if m.gen != 0 {
                        if let Some(slot) = out.get_mut(n) {
                            *slot = Record::Bucket {
                                bucket: u64::from(b),
                                gen: m.gen,
                            };
                            n += 1;
                        }
                    }
                    Cursor::Buckets(b + 1)
                }
                None => Cursor::Extents(0),
            },
            Cursor::Extents(k) => {
                // Each entry visited may be a record: room for all.
                let room = out.len() - n;
                let next = cache
                    .index
                    .current_from(k, room, &cache.buckets, |dev, sector, e| {
                        let owned = owners.get(usize::from(dev)).is_some_and(|o| o.is_some());
                        if let (true, Some(slot)) = (owned, out.get_mut(n)) {
                            *slot = extent_record(dev, sector, &e);
                            n += 1;
                        }
                    });
                return (n, next.map_or(Cursor::Done, Cursor::Extents));
            }
            Cursor::Done => return (n, Cursor::Done),
        };
    }
    (n, cursor)
}

/// Writes a whole checkpoint of `cache` and the checksums in `sums` (no
/// lock: the host's, and a model of the module's loop) with `w`; returns
/// whether every record fit.
pub fn write_checkpoint<
    A: NodeAlloc,
    S: DerefMut<Target = [BucketMeta]>,
    T: Deref<Target = [AtomicU32]>,
    E,
>(
    cache: &Cache<A, S>,
    sums: &SumTable<T>,
    owners: &[Option<Uuid>],
    w: &mut CheckpointWriter<'_>,
    emit: &mut EmitBlock<'_, E>,
) -> Result<bool, E> {
    let mut batch = [SESSION_CLEAN; 32];
    let mut cursor = Cursor::Devices(0);
    loop {
        let (n, next) = checkpoint_step(cache, owners, cursor, &mut batch);
        for r in batch.iter().take(n) {
            if !w.push(r, emit)? || !extent_sums(r, sums, &mut |s| w.push(s, emit))? {
                return Ok(false);
            }
        }
        if next == Cursor::Done {
            return Ok(true);
        }
        cursor = next;
    }
}

/// The region of the write-intent map that sector `sector` is in.
pub fn dirty_region(sector: u64) -> u64 {
    sector >> DIRTY_REGION_SHIFT
}

/// The regions of the write-intent map that a write or discard of
/// `sectors` (not 0) from `sector` touches, first and last.
pub fn dirty_regions(sector: u64, sectors: u64) -> (u64, u64) {
    let last = sector.saturating_add(sectors.max(1) - 1);
    (dirty_region(sector), dirty_region(last))
}

/// One device's regions of the write-intent map recorded (durably) since
/// the checkpoint at the tail: one bit a region, set once its `DIRTY` is
/// on disk; lock-free to test (the write path) and to set (the journal).
///
/// # Invariants
///
/// `words` holds a bit for each of the device's `regions`.
pub struct IntentMap<W> {
    words: W,
    regions: u64,
}

impl<W: Deref<Target = [AtomicU64]>> IntentMap<W> {
    /// The words a map of a device of `sectors` sectors needs.
    pub fn words_for(sectors: u64) -> u64 {
        dirty_region(sectors.saturating_add(DIRTY_REGION_SECTORS - 1)).div_ceil(64)
    }

    /// A map over `words` (all zero: nothing recorded) of a device of
    /// `sectors` sectors; `None` if `words` is too short.
    pub fn new(words: W, sectors: u64) -> Option<Self> {
        let regions = dirty_region(sectors.saturating_add(DIRTY_REGION_SECTORS - 1));
        if (words.len() as u64) < regions.div_ceil(64) {
            return None;
        }
        // INVARIANT: a bit for each region.
        Some(Self { words, regions })
    }

    fn bit(&self, region: u64) -> Option<(&AtomicU64, u64)> {
        if region >= self.regions {
            return None;
        }
        let w = self.words.get(usize::try_from(region / 64).ok()?)?;
        Some((w, 1u64 << (region % 64)))
    }

    /// Whether `region` is recorded (a region past the device's end is:
    /// no write reaches it).
    pub fn recorded(&self, region: u64) -> bool {
        // Acquire: pairs with `set`'s release, after the record was durable.
        self.bit(region)
            .map_or(true, |(w, m)| w.load(Ordering::Acquire) & m != 0)
    }

    /// Whether every region a write of `sectors` from `sector` touches is
    /// recorded.
    pub fn covers(&self, sector: u64, sectors: u64) -> bool {
        let (first, last) = dirty_regions(sector, sectors);
        (first..=last).all(|r| self.recorded(r))
    }

    /// `region`'s `DIRTY` is durable.
    pub fn set(&self, region: u64) {
        if let Some((w, m)) = self.bit(region) {
            w.fetch_or(m, Ordering::Release);
        }
    }

    /// Every region's (a `DIRTY` of the whole device) is durable.
    pub fn set_all(&self) {
        for w in self.words.iter() {
            w.store(u64::MAX, Ordering::Release);
        }
    }
}
