// SPDX-License-Identifier: GPL-2.0

//! The journal and checkpoint blocks of format version 2 (the persistent
//! index of `Documentation/bcache_rs-persistence.rst`): their codec, the
//! replay plan of the journal ring, and the ring's writer state. No I/O:
//! the module (bios) and the host tests (a simulated disk that tears
//! writes) do it.
//!
//! # Blocks
//!
//! A metadata block is [`JBLOCK_SIZE`] bytes, little-endian: a
//! [`JBLOCK_HEADER_SIZE`]-byte header (offsets in [`jblock_field`]), then
//! `used` bytes of records, then zeros.
//!
//! | offset | size | field | meaning |
//! | --- | --- | --- | --- |
//! | 0 | 8 | magic | [`JBLOCK_MAGIC`] |
//! | 8 | 4 | csum | crc32c of the block with this field read as zero |
//! | 12 | 2 | version | [`JBLOCK_VERSION`] |
//! | 14 | 2 | kind | [`BlockKind`]: a journal or a checkpoint block |
//! | 16 | 8 | seq | a journal block's sequence number; a checkpoint block's is that of the journal block whose first record is its `CHECKPOINT` |
//! | 24 | 8 | tail | a journal block: the first block replay needs (see below); a checkpoint block: its index in the checkpoint |
//! | 32 | 8 | set_tag | the first 8 bytes of the cache set's UUID: a block of another cache is foreign |
//! | 40 | 4 | used | bytes of records after the header |
//! | 44 | 2 | nrecords | records in the block |
//! | 46 | 2 | reserved | zero |
//!
//! A block is applied whole or not at all: [`decode_block`] checks the
//! magic, the crc, the version, the kind, the cache, and every record
//! before it returns the block's header; any failure rejects the whole
//! block. A torn write (part new, part old bytes) fails the crc; crc32c
//! catches every error of up to 3 bits in a block this size, and all but
//! one in 2^32 of any other.
//!
//! # Records
//!
//! A record starts with `kind: u8, len: u8` (its size in 8-byte units) and
//! two zero bytes; its fields follow at fixed offsets ([`Record`]):
//!
//! | kind | record | size | fields (offset: type) |
//! | --- | --- | --- | --- |
//! | 1 | `EXTENT` | 40 | 4: dev u32, 8: sector u64, 16: sectors u32, 20: offset u32 (sectors into the bucket), 24: bucket u64, 32: gen u32, 36: csum u32 (crc32c of the data) |
//! | 2 | `INVALIDATE` | 24 | 4: dev u32, 8: sector u64, 16: sectors u32, 20: zero |
//! | 3 | `BUCKET` | 16 | 4: gen u32, 8: bucket u64 |
//! | 4 | `DIRTY` | 16 | 4: dev u32, 8: region u64 |
//! | 5 | `CLEAN` | 8 | 4: dev u32 |
//! | 6 | `CHECKPOINT` | 32 | 4: blocks u32, 8: start u64 (its first block's index in the journal region), 16: records u64, 24: csum u32 (crc32c of its blocks' csums, in order), 28: zero |
//! | 7 | `DEVICE` | 24 | 4: dev u32, 8: uuid [u8; 16] (not nil) |
//! | 8 | `CACHED` | 24 | 4: bucket u32, 8: sector u64, 16: sectors u16 (not 0), 18: offset u16, 20: dev u16, 22: zero; a checkpoint's extent of its bucket's generation there |
//! | 9 | `SUMS` | 16 + 4 `count`, rounded up to 8 (24 to 72) | 4: bucket u32, 8: block u32 (cache blocks from the bucket's start), 12: count u32 (1 to [`SUMS_MAX`]), 16: `count` crc32c u32, one per cache block from `block` on, then zeros to the record's end |
//!
//! `SUMS` records carry the data checksums of the cached blocks (feature
//! `data_csum`): the records right after an extent's (`CACHED` or
//! `EXTENT`) hold the crc32c of each of its cache blocks, in order; an
//! extent not followed by all its sums is not restored. `SUMS` is the one
//! record whose size depends on its fields (`len` says it).
//!
//! `DIRTY` is the write-intent map: region `region` of device `dev` (its
//! sectors from `region << DIRTY_REGION_SHIFT`, 8 MiB: [`DIRTY_REGION_SECTORS`])
//! may have been written since the checkpoint at the tail: replay drops
//! the extents there. `region` [`ALL_REGIONS`] marks the whole device (it
//! was written uncached); `dev` [`ALL_DEVS`] every device (the cache
//! restores nothing: what the first version wrote at each registration,
//! and what a session writes when its ring is full or its cache failed).
//! `dev` is a device's number in the checkpoint at the tail. `CLEAN` of
//! [`ALL_DEVS`] (in the block of a checkpoint) ends what a `DIRTY` of
//! every device said.
//!
//! # The ring and replay
//!
//! The journal region holds `nblocks` blocks; the block of sequence number
//! `seq` (from 1) is written at index `seq % nblocks`. Every journal block
//! carries the *tail*: the sequence number of the first block that replay
//! needs, the block that holds the last completed `CHECKPOINT` (1 before
//! any checkpoint). The writer ([`JournalRing`]) keeps `seq - tail <
//! nblocks`, so that it never overwrites a block replay needs, and moves
//! the tail only in the block that holds the new `CHECKPOINT` record.
//!
//! Replay ([`plan_replay`]) takes the valid block with the highest sequence
//! number, reads the tail from it, and replays from the tail forward until
//! the first block that is missing, invalid or of another sequence number:
//! the writer acknowledges a block's records only once it and every block
//! before it are on disk, so the blocks after such a gap hold nothing
//! acknowledged, and are not applied even if they are valid. If the tail's
//! block is missing, the journal is damaged and replay refuses
//! ([`JournalError::MissingTail`]), but for block 1 of a new journal,
//! which may be lost while later blocks were written (nothing is then
//! acknowledged). After a replay the writer continues past every block
//! seen, with a checkpoint ([`JournalRing`]).

use super::{crc32c, crc_with_hole, errno, get_bytes, get_u32, get_u64, put_bytes, Uuid};
use core::fmt;

/// The size of a journal or checkpoint block.
pub const JBLOCK_SIZE: usize = 4096;
/// The size of a block's header.
pub const JBLOCK_HEADER_SIZE: usize = 48;
/// The room for records in a block.
pub const JBLOCK_PAYLOAD: usize = JBLOCK_SIZE - JBLOCK_HEADER_SIZE;
/// The magic at the start of every journal and checkpoint block.
pub const JBLOCK_MAGIC: [u8; 8] = *b"BCRSJNL\x1a";
/// The version of the block format this build writes and reads.
pub const JBLOCK_VERSION: u16 = 1;

/// The byte offsets of a block's header fields.
pub mod jblock_field {
    /// `[u8; 8]`
    pub const MAGIC: usize = 0;
    /// `u32`
    pub const CSUM: usize = 8;
    /// `u16`
    pub const VERSION: usize = 12;
    /// `u16`
    pub const KIND: usize = 14;
    /// `u64`
    pub const SEQ: usize = 16;
    /// `u64`
    pub const TAIL: usize = 24;
    /// `u64`
    pub const SET_TAG: usize = 32;
    /// `u32`
    pub const USED: usize = 40;
    /// `u16`
    pub const NRECORDS: usize = 44;
}

/// What a block is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockKind {
    /// A block of the journal ring.
    Journal = 1,
    /// A block of a checkpoint (a snapshot of the index).
    Checkpoint = 2,
}

impl BlockKind {
    fn from_u16(v: u16) -> Option<BlockKind> {
        [BlockKind::Journal, BlockKind::Checkpoint]
            .into_iter()
            .find(|k| *k as u16 == v)
    }
}

/// Fewest 4 KiB blocks a journal region needs to hold a persistent index:
/// a smaller one leaves the cache volatile.
pub const MIN_JOURNAL_REGION_BLOCKS: u64 = 8;
/// Most blocks of the journal ring.
pub const MAX_RING_BLOCKS: u64 = 1024;

/// How format version 2 uses the journal region, in [`JBLOCK_SIZE`] blocks
/// from its start: the ring of journal blocks (an eighth of the region,
/// from 4 to [`MAX_RING_BLOCKS`] blocks), then two checkpoint areas of
/// equal size, used in turn: a checkpoint is written into the area the
/// live one is not in, so that the live one is whole until the journal
/// block that names the new one is on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JournalLayout {
    /// Blocks of the ring (blocks `0..ring_blocks`).
    pub ring_blocks: u64,
    /// Blocks of each checkpoint area.
    pub area_blocks: u64,
}

impl JournalLayout {
    /// The layout of a journal region of `sectors`; `None` if it holds
    /// fewer than [`MIN_JOURNAL_REGION_BLOCKS`].
    pub fn new(sectors: u64) -> Option<JournalLayout> {
        let total = sectors / (JBLOCK_SIZE as u64 / 512);
        if total < MIN_JOURNAL_REGION_BLOCKS {
            return None;
        }
        let ring_blocks = (total / 8).clamp(4, MAX_RING_BLOCKS);
        Some(JournalLayout {
            ring_blocks,
            area_blocks: (total - ring_blocks) / 2,
        })
    }

    /// The first block of checkpoint area `area` (0 or 1).
    pub fn area_start(&self, area: u8) -> u64 {
        self.ring_blocks + u64::from(area.min(1)) * self.area_blocks
    }

    /// The area that starts at block `start`, if one does.
    pub fn area_at(&self, start: u64) -> Option<u8> {
        (0..2).find(|&a| self.area_start(a) == start)
    }
}

/// `dev` of a `DIRTY` or `CLEAN` record for every device.
pub const ALL_DEVS: u32 = u32::MAX;
/// `region` of a `DIRTY` record for the whole device.
pub const ALL_REGIONS: u64 = u64::MAX;
/// log2 of [`DIRTY_REGION_SECTORS`].
pub const DIRTY_REGION_SHIFT: u32 = 14;
/// Sectors of a region of the write-intent map (`DIRTY`): 8 MiB.
pub const DIRTY_REGION_SECTORS: u64 = 1 << DIRTY_REGION_SHIFT;

/// The tag of a cache set in its blocks: the first 8 bytes of its UUID.
pub fn set_tag(uuid: &Uuid) -> u64 {
    u64::from_le_bytes(get_bytes(&uuid.0, 0))
}

/// A record of the journal or of a checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    /// An extent entered the index: `sectors` of device `dev` from `sector`
    /// are cached at `offset` sectors into `bucket`, whose generation was
    /// `gen`, and `csum` is the crc32c of the cached data.
    Extent {
        /// The backing device's number.
        dev: u32,
        /// The first sector on the backing device.
        sector: u64,
        /// The length in sectors (not 0).
        sectors: u32,
        /// The sector offset into the bucket.
        offset: u32,
        /// The bucket.
        bucket: u64,
        /// The bucket's generation when the data was written.
        gen: u32,
        /// The crc32c of the cached data.
        csum: u32,
    },
    /// `sectors` of device `dev` from `sector` were written or discarded:
    /// the cached extents over them are gone.
    Invalidate {
        /// The backing device's number.
        dev: u32,
        /// The first sector.
        sector: u64,
        /// The length in sectors (not 0).
        sectors: u32,
    },
    /// `bucket` was invalidated: its generation is now `gen`, and it may
    /// be written again once this record is on disk.
    Bucket {
        /// The bucket.
        bucket: u64,
        /// Its new generation.
        gen: u32,
    },
    /// Region `region` of device `dev` may be written (the write-intent
    /// map): after a crash, replay drops its extents.
    Dirty {
        /// The backing device's number.
        dev: u32,
        /// The region's number.
        region: u64,
    },
    /// Device `dev` was detached cleanly: none of its regions is dirty.
    Clean {
        /// The backing device's number.
        dev: u32,
    },
    /// A checkpoint's current extent, in 24 bytes: as `Extent`, of the
    /// generation its bucket has in the checkpoint (its `BUCKET` record,
    /// or 0), without a data checksum; the fields in 16 bits (`dev`,
    /// `sectors`, `offset`) must fit them (else the writer uses `Extent`).
    Cached {
        /// The backing device's number (below 65536).
        dev: u32,
        /// The first sector on the backing device.
        sector: u64,
        /// The length in sectors (1 to 65535).
        sectors: u32,
        /// The sector offset into the bucket (below 65536).
        offset: u32,
        /// The bucket (below 2^32).
        bucket: u64,
    },
    /// The data checksums of `count` cache blocks of `bucket`, from its
    /// `block`-th: `crcs[..count]` (the rest zero), the crc32c of each
    /// block's bytes ([`crate::crc32c`]'s convention).
    Sums {
        /// The bucket.
        bucket: u32,
        /// The first block, counted in cache blocks from the bucket's start.
        block: u32,
        /// How many of `crcs` are used (1 to [`SUMS_MAX`]).
        count: u8,
        /// The checksums.
        crcs: [u32; SUMS_MAX],
    },
    /// Device number `dev` of the records is the backing device `uuid` (a
    /// checkpoint's first records: its extents' devices).
    Device {
        /// The backing device's number in the records.
        dev: u32,
        /// Its UUID.
        uuid: Uuid,
    },
    /// A checkpoint was completed: `blocks` checkpoint blocks from block
    /// `start` of the journal region, holding `records` records, whose
    /// csums' crc32c is `csum`.
    Checkpoint {
        /// Its blocks.
        blocks: u32,
        /// The sector of its first block.
        start: u64,
        /// The records it holds.
        records: u64,
        /// The crc32c of its blocks' csum fields, in order.
        csum: u32,
    },
}

mod kind {
    pub(super) const EXTENT: u8 = 1;
    pub(super) const INVALIDATE: u8 = 2;
    pub(super) const BUCKET: u8 = 3;
    pub(super) const DIRTY: u8 = 4;
    pub(super) const CLEAN: u8 = 5;
    pub(super) const CHECKPOINT: u8 = 6;
    pub(super) const DEVICE: u8 = 7;
    pub(super) const CACHED: u8 = 8;
    pub(super) const SUMS: u8 = 9;
}

/// Most checksums a `SUMS` record holds.
pub const SUMS_MAX: usize = 14;

/// The size of a `SUMS` record of `count` checksums.
const fn sums_size(count: usize) -> usize {
    (16 + 4 * count).div_ceil(8) * 8
}

/// The size of a record of kind `kind`, `None` for an unknown kind.
fn record_size(kind: u8) -> Option<usize> {
    Some(match kind {
        kind::EXTENT => 40,
        kind::INVALIDATE => 24,
        kind::BUCKET | kind::DIRTY => 16,
        kind::DEVICE | kind::CACHED => 24,
        kind::CLEAN => 8,
        kind::CHECKPOINT => 32,
        // Its own `len`: see `Record::decode`.
        kind::SUMS => sums_size(SUMS_MAX),
        _ => return None,
    })
}

impl Record {
    fn kind(&self) -> u8 {
        match self {
            Record::Extent { .. } => kind::EXTENT,
            Record::Invalidate { .. } => kind::INVALIDATE,
            Record::Bucket { .. } => kind::BUCKET,
            Record::Dirty { .. } => kind::DIRTY,
            Record::Clean { .. } => kind::CLEAN,
            Record::Checkpoint { .. } => kind::CHECKPOINT,
            Record::Device { .. } => kind::DEVICE,
            Record::Cached { .. } => kind::CACHED,
            Record::Sums { .. } => kind::SUMS,
        }
    }

    /// The record's size in bytes.
    pub fn size(&self) -> usize {
        match *self {
            Record::Sums { count, .. } => sums_size(usize::from(count).min(SUMS_MAX)),
            _ => record_size(self.kind()).unwrap_or(0),
        }
    }

    /// Whether [`Record::encode`] can write the record: every record but a
    /// `Cached` one whose fields do not fit its 16- and 32-bit fields.
    pub fn encodable(&self) -> bool {
        match *self {
            Record::Cached {
                dev,
                sectors,
                offset,
                bucket,
                ..
            } => {
                dev <= 0xffff
                    && (1..=0xffff).contains(&sectors)
                    && offset <= 0xffff
                    && bucket <= u64::from(u32::MAX)
            }
            Record::Sums { count, .. } => (1..=SUMS_MAX).contains(&usize::from(count)),
            _ => true,
        }
    }

    /// Writes the record at the start of `out`; returns its size, or `None`
    /// (nothing written) if `out` is too short or the record is not
    /// [`Record::encodable`].
    pub fn encode(&self, out: &mut [u8]) -> Option<usize> {
        if !self.encodable() {
            return None;
        }
        let size = self.size();
        let b = out.get_mut(..size)?;
        b.fill(0);
        put_bytes(b, 0, &[self.kind(), (size / 8) as u8]);
        match *self {
            Record::Extent {
                dev,
                sector,
                sectors,
                offset,
                bucket,
                gen,
                csum,
            } => {
                put_bytes(b, 4, &dev.to_le_bytes());
                put_bytes(b, 8, &sector.to_le_bytes());
                put_bytes(b, 16, &sectors.to_le_bytes());
                put_bytes(b, 20, &offset.to_le_bytes());
                put_bytes(b, 24, &bucket.to_le_bytes());
                put_bytes(b, 32, &gen.to_le_bytes());
                put_bytes(b, 36, &csum.to_le_bytes());
            }
            Record::Invalidate {
                dev,
                sector,
                sectors,
            } => {
                put_bytes(b, 4, &dev.to_le_bytes());
                put_bytes(b, 8, &sector.to_le_bytes());
                put_bytes(b, 16, &sectors.to_le_bytes());
            }
            Record::Bucket { bucket, gen } => {
                put_bytes(b, 4, &gen.to_le_bytes());
                put_bytes(b, 8, &bucket.to_le_bytes());
            }
            Record::Dirty { dev, region } => {
                put_bytes(b, 4, &dev.to_le_bytes());
                put_bytes(b, 8, &region.to_le_bytes());
            }
            Record::Clean { dev } => put_bytes(b, 4, &dev.to_le_bytes()),
            Record::Device { dev, uuid } => {
                put_bytes(b, 4, &dev.to_le_bytes());
                put_bytes(b, 8, &uuid.0);
            }
            Record::Cached {
                dev,
                sector,
                sectors,
                offset,
                bucket,
            } => {
                // Each fits its field (checked above).
                put_bytes(b, 4, &(bucket as u32).to_le_bytes());
                put_bytes(b, 8, &sector.to_le_bytes());
                put_bytes(b, 16, &(sectors as u16).to_le_bytes());
                put_bytes(b, 18, &(offset as u16).to_le_bytes());
                put_bytes(b, 20, &(dev as u16).to_le_bytes());
            }
            Record::Sums {
                bucket,
                block,
                count,
                crcs,
            } => {
                put_bytes(b, 4, &bucket.to_le_bytes());
                put_bytes(b, 8, &block.to_le_bytes());
                put_bytes(b, 12, &u32::from(count).to_le_bytes());
                for (i, c) in crcs.iter().take(usize::from(count)).enumerate() {
                    put_bytes(b, 16 + 4 * i, &c.to_le_bytes());
                }
            }
            Record::Checkpoint {
                blocks,
                start,
                records,
                csum,
            } => {
                put_bytes(b, 4, &blocks.to_le_bytes());
                put_bytes(b, 8, &start.to_le_bytes());
                put_bytes(b, 16, &records.to_le_bytes());
                put_bytes(b, 24, &csum.to_le_bytes());
            }
        }
        Some(size)
    }

    /// Reads the record at the start of `b`; returns it and its size, or
    /// why it is not one.
    pub fn decode(b: &[u8]) -> Result<(Record, usize), RecordError> {
        let head: [u8; 4] = get_bytes(b, 0);
        let mut size = record_size(head[0]).ok_or(RecordError::UnknownKind { kind: head[0] })?;
        if head[0] == kind::SUMS {
            // Checked against its count below.
            size = usize::from(head[1]) * 8;
        }
        if usize::from(head[1]) * 8 != size || size == 0 || head[2] != 0 || head[3] != 0 {
            return Err(RecordError::BadHeader { kind: head[0] });
        }
        let b = b
            .get(..size)
            .ok_or(RecordError::Truncated { kind: head[0] })?;
        let u32_at = |off| get_u32(b, off);
        let u64_at = |off| get_u64(b, off);
        let record = match head[0] {
            kind::EXTENT => Record::Extent {
                dev: u32_at(4),
                sector: u64_at(8),
                sectors: u32_at(16),
                offset: u32_at(20),
                bucket: u64_at(24),
                gen: u32_at(32),
                csum: u32_at(36),
            },
            kind::INVALIDATE => Record::Invalidate {
                dev: u32_at(4),
                sector: u64_at(8),
                sectors: u32_at(16),
            },
            kind::BUCKET => Record::Bucket {
                gen: u32_at(4),
                bucket: u64_at(8),
            },
            kind::DIRTY => Record::Dirty {
                dev: u32_at(4),
                region: u64_at(8),
            },
            kind::CLEAN => Record::Clean { dev: u32_at(4) },
            kind::DEVICE => Record::Device {
                dev: u32_at(4),
                uuid: Uuid(get_bytes(b, 8)),
            },
            kind::CACHED => Record::Cached {
                dev: u32::from(u16::from_le_bytes(get_bytes(b, 20))),
                sector: u64_at(8),
                sectors: u32::from(u16::from_le_bytes(get_bytes(b, 16))),
                offset: u32::from(u16::from_le_bytes(get_bytes(b, 18))),
                bucket: u64::from(u32_at(4)),
            },
            kind::SUMS => {
                let count = u32_at(12);
                let n = usize::try_from(count).unwrap_or(usize::MAX);
                if !(1..=SUMS_MAX).contains(&n) || sums_size(n) != size {
                    return Err(RecordError::BadField { kind: head[0] });
                }
                let mut crcs = [0u32; SUMS_MAX];
                for (i, c) in crcs.iter_mut().take(n).enumerate() {
                    *c = u32_at(16 + 4 * i);
                }
                // The padding after the last checksum must be zero.
                if b.get(16 + 4 * n..)
                    .is_some_and(|pad| pad.iter().any(|&x| x != 0))
                {
                    return Err(RecordError::BadField { kind: head[0] });
                }
                Record::Sums {
                    bucket: u32_at(4),
                    block: u32_at(8),
                    // 1 to SUMS_MAX, checked above.
                    count: n as u8,
                    crcs,
                }
            }
            _ => Record::Checkpoint {
                blocks: u32_at(4),
                start: u64_at(8),
                records: u64_at(16),
                csum: u32_at(24),
            },
        };
        let zero_tail = match record {
            Record::Invalidate { .. } => u32_at(20) == 0,
            Record::Cached { .. } => get_bytes::<2>(b, 22) == [0; 2],
            Record::Checkpoint { .. } => u32_at(28) == 0,
            _ => true,
        };
        let lengths = match record {
            Record::Extent { sectors, .. }
            | Record::Invalidate { sectors, .. }
            | Record::Cached { sectors, .. } => sectors != 0,
            Record::Device { uuid, .. } => !uuid.is_nil(),
            _ => true,
        };
        if !zero_tail || !lengths {
            return Err(RecordError::BadField { kind: head[0] });
        }
        Ok((record, size))
    }
}

/// Why bytes are not a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// An unknown record kind.
    UnknownKind {
        /// The kind found.
        kind: u8,
    },
    /// A size or reserved byte that does not match the kind.
    BadHeader {
        /// The kind.
        kind: u8,
    },
    /// The record runs past the block's records.
    Truncated {
        /// The kind.
        kind: u8,
    },
    /// A zero length or a reserved field that is not zero.
    BadField {
        /// The kind.
        kind: u8,
    },
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RecordError::UnknownKind { kind } => write!(f, "unknown record kind {kind}"),
            RecordError::BadHeader { kind } => write!(f, "record of kind {kind} with a bad header"),
            RecordError::Truncated { kind } => {
                write!(f, "record of kind {kind} runs past the block's records")
            }
            RecordError::BadField { kind } => {
                write!(
                    f,
                    "record of kind {kind} with a zero length or reserved bits set"
                )
            }
        }
    }
}

/// The header of a valid block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockHeader {
    /// What the block is.
    pub kind: BlockKind,
    /// Its sequence number.
    pub seq: u64,
    /// A journal block's tail; a checkpoint block's index.
    pub tail: u64,
    /// Bytes of records.
    pub used: u32,
    /// Number of records.
    pub nrecords: u16,
    /// Its crc32c (the csum field).
    pub csum: u32,
}

/// Why a block is not a valid block of this cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JournalError {
    /// The buffer holds fewer than [`JBLOCK_SIZE`] bytes.
    ShortBuffer {
        /// Its length.
        len: usize,
    },
    /// No block magic: never written, or not a block.
    BadMagic,
    /// The crc32c does not match: a torn or damaged write.
    BadCrc {
        /// The crc in the block.
        stored: u32,
        /// The crc of the block.
        computed: u32,
    },
    /// A block format this build does not know.
    UnsupportedVersion {
        /// The version found.
        found: u16,
    },
    /// An unknown block kind.
    BadKind {
        /// The kind found.
        found: u16,
    },
    /// A block of another cache set.
    Foreign {
        /// The tag found.
        found: u64,
    },
    /// `used` or `nrecords` does not describe the records.
    BadLength,
    /// A record is not valid.
    BadRecord {
        /// Its byte offset in the block.
        offset: usize,
        /// What is wrong with it.
        error: RecordError,
    },
    /// The newest journal block names a tail whose block is missing or
    /// invalid: the journal cannot be replayed.
    MissingTail {
        /// The tail.
        tail: u64,
        /// The newest block's sequence number.
        newest: u64,
    },
    /// A checkpoint block is missing, invalid, or not the one its record
    /// describes.
    BadCheckpoint {
        /// The index of the checkpoint block.
        index: u64,
    },
}

impl JournalError {
    /// The negative errno: `-EIO` for a short buffer, `-EBADMSG` for a crc
    /// mismatch or a damaged journal, `-EOPNOTSUPP` for an unknown version,
    /// else `-EINVAL`.
    pub fn to_errno(self) -> i32 {
        -match self {
            JournalError::ShortBuffer { .. } => errno::EIO,
            JournalError::BadCrc { .. }
            | JournalError::MissingTail { .. }
            | JournalError::BadCheckpoint { .. } => errno::EBADMSG,
            JournalError::UnsupportedVersion { .. } => errno::EOPNOTSUPP,
            _ => errno::EINVAL,
        }
    }
}

impl fmt::Display for JournalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            JournalError::ShortBuffer { len } => {
                write!(f, "short journal block: {len} bytes of {JBLOCK_SIZE}")
            }
            JournalError::BadMagic => f.write_str("no journal block magic"),
            JournalError::BadCrc { stored, computed } => write!(
                f,
                "journal block crc32c mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            JournalError::UnsupportedVersion { found } => write!(
                f,
                "journal block version {found}, this build reads version {JBLOCK_VERSION}"
            ),
            JournalError::BadKind { found } => write!(f, "journal block of unknown kind {found}"),
            JournalError::Foreign { found } => {
                write!(f, "journal block of another cache set (tag {found:#018x})")
            }
            JournalError::BadLength => {
                f.write_str("journal block whose record count or length is wrong")
            }
            JournalError::BadRecord { offset, error } => {
                write!(f, "journal block with a bad record at byte {offset}: {error}")
            }
            JournalError::MissingTail { tail, newest } => write!(
                f,
                "journal damaged: block {tail}, the tail named by block {newest}, is missing or invalid"
            ),
            JournalError::BadCheckpoint { index } => {
                write!(f, "checkpoint damaged: its block {index} is missing or invalid")
            }
        }
    }
}

/// Builds a block in a caller's buffer: records appended with
/// [`BlockBuilder::push`], then [`BlockBuilder::seal`].
pub struct BlockBuilder<'a> {
    buf: &'a mut [u8; JBLOCK_SIZE],
    used: usize,
    nrecords: u16,
}

impl<'a> BlockBuilder<'a> {
    /// An empty block in `buf` (zeroed).
    pub fn new(buf: &'a mut [u8; JBLOCK_SIZE]) -> Self {
        buf.fill(0);
        BlockBuilder {
            buf,
            used: 0,
            nrecords: 0,
        }
    }

    /// Appends `record`; `false` (nothing appended) if the block is full.
    pub fn push(&mut self, record: &Record) -> bool {
        if self.nrecords == u16::MAX {
            return false;
        }
        let at = JBLOCK_HEADER_SIZE + self.used;
        let Some(size) = self.buf.get_mut(at..).and_then(|b| record.encode(b)) else {
            return false;
        };
        self.used += size;
        self.nrecords += 1;
        true
    }

    /// Whether the block has no record.
    pub fn is_empty(&self) -> bool {
        self.nrecords == 0
    }

    /// Bytes of records so far.
    pub fn used(&self) -> usize {
        self.used
    }

    /// Writes the header (`kind`, `seq`, `tail`, the cache's `set_tag`) and
    /// the crc; returns the block's crc.
    pub fn seal(self, kind: BlockKind, seq: u64, tail: u64, set_tag: u64) -> u32 {
        use jblock_field as o;
        let b = &mut self.buf[..];
        put_bytes(b, o::MAGIC, &JBLOCK_MAGIC);
        put_bytes(b, o::VERSION, &JBLOCK_VERSION.to_le_bytes());
        put_bytes(b, o::KIND, &(kind as u16).to_le_bytes());
        put_bytes(b, o::SEQ, &seq.to_le_bytes());
        put_bytes(b, o::TAIL, &tail.to_le_bytes());
        put_bytes(b, o::SET_TAG, &set_tag.to_le_bytes());
        put_bytes(b, o::USED, &(self.used as u32).to_le_bytes());
        put_bytes(b, o::NRECORDS, &self.nrecords.to_le_bytes());
        put_bytes(b, o::CSUM, &[0; 4]);
        let csum = crc_with_hole(b, o::CSUM);
        put_bytes(b, o::CSUM, &csum.to_le_bytes());
        csum
    }
}

/// Checks the block in `buf` (magic, crc, version, kind, cache, every
/// record) and returns its header; the block is then safe to read with
/// [`records`].
pub fn decode_block(buf: &[u8], set_tag: u64) -> Result<BlockHeader, JournalError> {
    use jblock_field as o;
    let b = buf
        .get(..JBLOCK_SIZE)
        .ok_or(JournalError::ShortBuffer { len: buf.len() })?;
    if get_bytes::<8>(b, o::MAGIC) != JBLOCK_MAGIC {
        return Err(JournalError::BadMagic);
    }
    let stored = get_u32(b, o::CSUM);
    let computed = crc_with_hole(b, o::CSUM);
    if stored != computed {
        return Err(JournalError::BadCrc { stored, computed });
    }
    let version = u16::from_le_bytes(get_bytes(b, o::VERSION));
    if version != JBLOCK_VERSION {
        return Err(JournalError::UnsupportedVersion { found: version });
    }
    let kind = u16::from_le_bytes(get_bytes(b, o::KIND));
    let kind = BlockKind::from_u16(kind).ok_or(JournalError::BadKind { found: kind })?;
    let tag = get_u64(b, o::SET_TAG);
    if tag != set_tag {
        return Err(JournalError::Foreign { found: tag });
    }
    let used = get_u32(b, o::USED);
    let nrecords = u16::from_le_bytes(get_bytes(b, o::NRECORDS));
    let records_end = JBLOCK_HEADER_SIZE
        .checked_add(used as usize)
        .filter(|&end| end <= JBLOCK_SIZE)
        .ok_or(JournalError::BadLength)?;
    if get_bytes::<2>(b, o::NRECORDS + 2) != [0; 2]
        || b.get(records_end..)
            .is_some_and(|t| t.iter().any(|&x| x != 0))
    {
        return Err(JournalError::BadLength);
    }
    let area = b.get(JBLOCK_HEADER_SIZE..records_end).unwrap_or(&[]);
    let (mut at, mut n) = (0usize, 0u32);
    while at < area.len() {
        let (_, size) = Record::decode(area.get(at..).unwrap_or(&[])).map_err(|error| {
            JournalError::BadRecord {
                offset: JBLOCK_HEADER_SIZE + at,
                error,
            }
        })?;
        at += size;
        n += 1;
    }
    if n != u32::from(nrecords) {
        return Err(JournalError::BadLength);
    }
    Ok(BlockHeader {
        kind,
        seq: get_u64(b, o::SEQ),
        tail: get_u64(b, o::TAIL),
        used,
        nrecords,
        csum: stored,
    })
}

/// The records of a block that [`decode_block`] accepted, in order.
pub fn records<'a>(buf: &'a [u8], header: &BlockHeader) -> Records<'a> {
    let end = JBLOCK_HEADER_SIZE.saturating_add(header.used as usize);
    Records {
        area: buf.get(JBLOCK_HEADER_SIZE..end).unwrap_or(&[]),
    }
}

/// The iterator of [`records`]: stops at the end or at the first bytes that
/// are not a record (none, in a block [`decode_block`] accepted).
pub struct Records<'a> {
    area: &'a [u8],
}

impl Iterator for Records<'_> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        if self.area.is_empty() {
            return None;
        }
        match Record::decode(self.area) {
            Ok((record, size)) => {
                self.area = self.area.get(size..).unwrap_or(&[]);
                Some(record)
            }
            Err(_) => {
                self.area = &[];
                None
            }
        }
    }
}

/// The journal blocks replay applies: sequence numbers `tail..end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayPlan {
    /// The first block: the one with the last completed checkpoint, or 1.
    pub tail: u64,
    /// One past the last block to apply: the first missing, invalid or
    /// out-of-sequence one.
    pub end: u64,
    /// The newest valid block seen (it may be past `end`: after a gap,
    /// nothing was acknowledged).
    pub newest: u64,
}

/// Plans the replay of a ring of `nblocks` journal blocks, given the
/// header of the valid journal block at each index (`None` for an index
/// whose block is missing or invalid): `Ok(None)` for an empty journal
/// (no valid block), else which blocks to apply. Reads each index at most
/// twice.
pub fn plan_replay(
    nblocks: u64,
    header_at: impl Fn(u64) -> Option<BlockHeader>,
) -> Result<Option<ReplayPlan>, JournalError> {
    let in_place = |index: u64, h: &BlockHeader| {
        h.kind == BlockKind::Journal && nblocks != 0 && h.seq % nblocks == index
    };
    let mut newest: Option<BlockHeader> = None;
    for index in 0..nblocks {
        if let Some(h) = header_at(index).filter(|h| in_place(index, h)) {
            if newest.map_or(true, |n| h.seq > n.seq) {
                newest = Some(h);
            }
        }
    }
    let Some(newest) = newest else {
        return Ok(None);
    };
    let tail = newest.tail;
    let missing = JournalError::MissingTail {
        tail,
        newest: newest.seq,
    };
    if tail == 0 || tail > newest.seq || newest.seq - tail >= nblocks {
        return Err(missing);
    }
    let mut seq = tail;
    while seq <= newest.seq {
        let index = seq % nblocks;
        match header_at(index) {
            Some(h) if in_place(index, &h) && h.seq == seq => seq += 1,
            _ => break,
        }
    }
    // Block 1 of a new journal may be missing while later ones were
    // written (none acknowledged); any other tail was on disk before a
    // block named it.
    if seq == tail && tail != 1 {
        return Err(missing);
    }
    Ok(Some(ReplayPlan {
        tail,
        end: seq,
        newest: newest.seq,
    }))
}

/// The writer's state of the journal ring: which block to write next, and
/// which blocks it may overwrite. The caller writes the blocks, one at a
/// time or several at once, and acknowledges a block's records only once
/// [`JournalRing::durable`] has passed it.
///
/// The last block of room is kept for a checkpoint ([`JournalRing::take`]
/// leaves it, [`JournalRing::take_checkpoint`] may use it), so that a
/// checkpoint can always be written, after a crash too.
///
/// After a replay that stopped at a gap the ring is *recovering*: the blocks after a gap may hold
/// valid but unacknowledged records, which a block written after the gap
/// would make look like its successors; so the first block written is the
/// next after every block seen, and holds a checkpoint of the replayed
/// index ([`JournalRing::take`] refuses until [`JournalRing::checkpointed`]).
///
/// # Invariants
///
/// `1 <= tail <= durable <= next`, `next - tail <= nblocks`: the blocks
/// `tail..next` are those replay may need, and none of them is
/// overwritten.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JournalRing {
    nblocks: u64,
    tail: u64,
    durable: u64,
    next: u64,
    recovering: bool,
}

impl JournalRing {
    /// The ring of `nblocks` blocks (at least 2) after the replay `plan`
    /// (`None` for an empty journal); `None` if the plan does not fit the
    /// ring.
    pub fn new(nblocks: u64, plan: Option<ReplayPlan>) -> Option<Self> {
        if nblocks < 2 {
            return None;
        }
        let Some(plan) = plan else {
            return Some(JournalRing {
                nblocks,
                tail: 1,
                durable: 1,
                next: 1,
                recovering: false,
            });
        };
        let next = plan.newest.checked_add(1)?;
        if plan.tail == 0 || plan.tail > plan.end || next.checked_sub(plan.tail)? > nblocks {
            return None;
        }
        // INVARIANT: `tail <= end <= newest + 1 = next`, and `next - tail
        // <= nblocks` (checked).
        Some(JournalRing {
            nblocks,
            tail: plan.tail,
            durable: next,
            next,
            recovering: plan.end <= plan.newest,
        })
    }

    /// The tail: the first block replay needs.
    pub fn tail(&self) -> u64 {
        self.tail
    }

    /// Every block before this one is on disk.
    pub fn durable(&self) -> u64 {
        self.durable
    }

    /// The sequence number of the next block.
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// Whether the next block must be a checkpoint's (after a replay).
    pub fn recovering(&self) -> bool {
        self.recovering
    }

    /// Blocks that may still be written before the tail must move.
    pub fn room(&self) -> u64 {
        self.nblocks.saturating_sub(self.next - self.tail)
    }

    /// Takes the next block for records: its sequence number and its index
    /// in the ring; `None` if only the checkpoint's block is left, or while
    /// recovering.
    pub fn take(&mut self) -> Option<(u64, u64)> {
        if self.room() < 2 || self.recovering {
            return None;
        }
        Some(self.advance())
    }

    /// Takes the next block for a `CHECKPOINT` record (its first record);
    /// `None` if the ring has no room at all.
    pub fn take_checkpoint(&mut self) -> Option<(u64, u64)> {
        if self.room() == 0 {
            return None;
        }
        Some(self.advance())
    }

    /// The write of block `seq`, the last taken, failed: it is taken again
    /// next (the block after it must not follow a block that may be
    /// missing: replay would stop there). Ignored for another block.
    pub fn untake(&mut self, seq: u64) {
        if seq >= self.durable && seq.checked_add(1) == Some(self.next) {
            self.next = seq;
        }
    }

    fn advance(&mut self) -> (u64, u64) {
        let seq = self.next;
        self.next += 1;
        (seq, seq % self.nblocks)
    }

    /// The block `seq` is on disk, and so is every block before it that
    /// was taken; the caller tells blocks in order.
    pub fn written(&mut self, seq: u64) {
        if seq >= self.durable && seq < self.next {
            self.durable = seq + 1;
        }
    }

    /// The block `seq`, whose first record is a `CHECKPOINT`, is on disk:
    /// it becomes the tail, the blocks before it may be overwritten, and
    /// recovery is over. Ignored unless `seq` is durable and not before
    /// the tail.
    pub fn checkpointed(&mut self, seq: u64) {
        if seq >= self.tail && seq < self.durable {
            self.tail = seq;
            self.recovering = false;
        }
    }
}

/// Checks that `header`, of a block that [`decode_block`] accepted, is
/// block `index` of the checkpoint whose `CHECKPOINT` record is the first
/// of journal block `seq`.
pub fn check_checkpoint_block(
    header: &BlockHeader,
    seq: u64,
    index: u64,
) -> Result<(), JournalError> {
    if header.kind == BlockKind::Checkpoint && header.seq == seq && header.tail == index {
        Ok(())
    } else {
        Err(JournalError::BadCheckpoint { index })
    }
}

/// The crc32c that a `CHECKPOINT` record keeps of its blocks: of their
/// csum fields, in order, as little-endian bytes.
pub fn checkpoint_csum(csums: impl Iterator<Item = u32>) -> u32 {
    let mut crc = crc32c(&[]);
    for c in csums {
        crc = super::crc32c_extend(crc, &c.to_le_bytes());
    }
    crc
}

/// Where a [`CheckpointWriter`] sends each sealed block: its index in the
/// journal region, its bytes.
pub type EmitBlock<'e, E> = dyn FnMut(u64, &[u8; JBLOCK_SIZE]) -> Result<(), E> + 'e;

/// Writes a checkpoint: records in, sealed checkpoint blocks out (to the
/// caller's `emit`, with their block index in the journal region), then
/// the `CHECKPOINT` record that names them, for the journal block
/// `seq` whose first record it must be.
///
/// # Invariants
///
/// `buf` holds `nrecords` records in `used` bytes after the header;
/// `blocks` blocks were emitted, `blocks < capacity` while records may be
/// added; `crc` is [`checkpoint_csum`] of the emitted blocks' csums.
pub struct CheckpointWriter<'a> {
    buf: &'a mut [u8; JBLOCK_SIZE],
    used: usize,
    nrecords: u16,
    seq: u64,
    tag: u64,
    start: u64,
    capacity: u64,
    blocks: u64,
    records: u64,
    crc: u32,
}

impl<'a> CheckpointWriter<'a> {
    /// A checkpoint of at most `capacity` blocks from block `start` of the
    /// journal region, for journal block `seq` of cache `tag`, built in
    /// `buf`.
    pub fn new(
        buf: &'a mut [u8; JBLOCK_SIZE],
        seq: u64,
        tag: u64,
        start: u64,
        capacity: u64,
    ) -> CheckpointWriter<'a> {
        CheckpointWriter {
            buf,
            used: 0,
            nrecords: 0,
            seq,
            tag,
            start,
            capacity,
            blocks: 0,
            records: 0,
            crc: checkpoint_csum(core::iter::empty()),
        }
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Seals the current block and emits it.
    fn flush<E>(&mut self, emit: &mut EmitBlock<'_, E>) -> Result<(), E> {
        // Bytes past the records are zero in a valid block.
        if let Some(rest) = self.buf.get_mut(JBLOCK_HEADER_SIZE + self.used..) {
            rest.fill(0);
        }
        let b = BlockBuilder {
            buf: &mut *self.buf,
            used: self.used,
            nrecords: self.nrecords,
        };
        let csum = b.seal(BlockKind::Checkpoint, self.seq, self.blocks, self.tag);
        emit(self.start + self.blocks, self.buf)?;
        self.crc = super::crc32c_extend(self.crc, &csum.to_le_bytes());
        self.blocks += 1;
        self.used = 0;
        self.nrecords = 0;
        Ok(())
    }

    /// Appends `record`, emitting the block it fills; `Ok(false)` (nothing
    /// added) once the checkpoint is at its capacity.
    pub fn push<E>(&mut self, record: &Record, emit: &mut EmitBlock<'_, E>) -> Result<bool, E> {
        if self.blocks >= self.capacity {
            return Ok(false);
        }
        let full = self.nrecords == u16::MAX || self.used + record.size() > JBLOCK_PAYLOAD;
        if full {
            self.flush(emit)?;
            if self.blocks >= self.capacity {
                return Ok(false);
            }
        }
        let at = JBLOCK_HEADER_SIZE + self.used;
        match self.buf.get_mut(at..).and_then(|b| record.encode(b)) {
            Some(size) => {
                self.used += size;
                self.nrecords += 1;
                self.records += 1;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Emits the last block and returns the `CHECKPOINT` record.
    pub fn finish<E>(mut self, emit: &mut EmitBlock<'_, E>) -> Result<Record, E> {
        if self.nrecords > 0 {
            self.flush(emit)?;
        }
        Ok(Record::Checkpoint {
            // At most `capacity` blocks, which the region's size bounds.
            blocks: u32::try_from(self.blocks).unwrap_or(u32::MAX),
            start: self.start,
            records: self.records,
            csum: self.crc,
        })
    }
}
