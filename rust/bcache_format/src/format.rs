// SPDX-License-Identifier: GPL-2.0

//! The on-disk format of a bcache_rs cache device, after the 2010 bcache RFC.
//!
//! This file is the single definition of the format: the `bcache-rs` tool
//! (userspace) and the `bcache_rs` kernel module both include it. It uses only
//! `core`, allocates nothing and has no panic path on any input: every value
//! read from disk goes through `.get()` and checked arithmetic.
//!
//! # Device layout
//!
//! All positions are in 512-byte sectors from the start of the cache device.
//! The device is divided into *buckets* of `bucket_sectors`, numbered from
//! sector 0; bucket `i` covers sectors `i * bucket_sectors ..
//! (i + 1) * bucket_sectors`. The buckets below `first_bucket` hold metadata,
//! the buckets `first_bucket .. nbuckets` hold cached data.
//!
//! ```text
//! sector 0        8            16          dev_table   prios     journal        first_bucket * B
//!        | untouched | superblock | ......... | ......... | ........ | .. journal .. | data buckets ...
//! ```
//!
//! * Sectors 0-7 (4 KiB) are never written: they are left to a partition
//!   table or boot code, as bcache does.
//! * The superblock is one 4096-byte block at byte [`SB_OFFSET`] (sector 8).
//! * The **device table** ([`RegionKind::DevTable`]) holds
//!   [`DEV_TABLE_ENTRIES`] entries of [`DEV_ENTRY_SIZE`] bytes, one per backing
//!   device registered with `register_dev` (see [`DevEntry`]). The slot index
//!   is the device's number in the cache's index.
//! * The **priorities** region ([`RegionKind::Prios`]) holds a priority and a
//!   generation per bucket (every bucket of the device, so that the entry of
//!   bucket `i` is at a fixed place), in [`PRIO_BLOCK_SIZE`]-byte blocks of
//!   [`PRIOS_PER_BLOCK`] entries after a [`PRIO_HEADER_SIZE`]-byte header
//!   (`csum: u32` crc32c of the rest of the block, `index: u32`, `seq: u64`);
//!   an entry is `prio: u16, gen: u8, flags: u8` (version 2 writes it with
//!   each checkpoint: `prios.rs`).
//! * The **journal** ([`RegionKind::Journal`]) is a whole number of buckets
//!   and starts on a bucket boundary; data buckets start right after it.
//!
//! The device table, priorities and journal are reserved by version 1:
//! the formatter places and sizes them and zeroes them, the module checks
//! them. Version 2 ([`FEATURE_INCOMPAT_PERSISTENT_INDEX`]) writes the
//! journal region: a ring of journal blocks and two checkpoint areas
//! ([`JournalLayout`]) and, with each checkpoint, the priorities region;
//! the device table stays reserved (a checkpoint holds the devices and the
//! bucket generations as records). A reader checks the
//! regions against the superblock only, so a later formatter may place them
//! differently (see [`Layout::check`]).
//!
//! # The superblock
//!
//! Little-endian, at byte [`SB_OFFSET`], [`SB_SIZE`] bytes (offsets in
//! [`sb_field`]):
//!
//! | offset | size | field | meaning |
//! | --- | --- | --- | --- |
//! | 0 | 16 | magic | [`MAGIC`] |
//! | 16 | 4 | csum | crc32c of the 4096-byte block with this field read as zero |
//! | 20 | 4 | version | [`VERSION`] |
//! | 24 | 8 | sb_sector | sector of this copy: [`SB_SECTOR`] |
//! | 32 | 8 | feature_compat | features an older reader may ignore |
//! | 40 | 8 | feature_ro_compat | features an older reader may only read |
//! | 48 | 8 | feature_incompat | features an older reader must refuse |
//! | 56 | 16 | set_uuid | cache-set UUID |
//! | 72 | 32 | label | NUL-padded bytes, informational |
//! | 104 | 8 | flags | state flags (none defined yet; not checked) |
//! | 112 | 8 | seq | superblock write sequence (0 at format) |
//! | 120 | 8 | created | format time, seconds since the Unix epoch |
//! | 128 | 8 | device_sectors | device size at format time |
//! | 136 | 4 | block_sectors | block size |
//! | 140 | 4 | bucket_sectors | bucket size |
//! | 144 | 8 | nbuckets | buckets on the device, from sector 0 |
//! | 152 | 8 | first_bucket | first data bucket |
//! | 160 | 16 | dev_table | region: start sector, sectors |
//! | 176 | 16 | prios | region: start sector, sectors |
//! | 192 | 16 | journal | region: start sector, sectors |
//! | 208 | 3888 | reserved | written as zero, not checked |
//!
//! The magic, csum and version are the fixed header that every version of
//! the format keeps: a reader checks the magic, then the crc, then the
//! version, so a newer superblock is reported as a newer version and a
//! damaged one as a crc error. The crc is crc32c (Castagnoli, [`crc32c`]) over
//! all [`SB_SIZE`] bytes with the csum field taken as four zero bytes.
//!
//! The reserved bytes are not checked, so that a compat feature may use them;
//! an incompat feature bit makes older readers refuse the cache (writeback
//! will set one: a cache with dirty data must not be ignored), an unknown
//! ro_compat bit makes [`Superblock::check_writable`] fail. No feature bit is
//! defined by version 1.
//!
//! # Geometry
//!
//! Block and bucket sizes are powers of two, in sectors on disk and bytes in
//! [`Layout::plan`]: a block is [`MIN_BLOCK_BYTES`] (512 B) to
//! [`MAX_BLOCK_BYTES`] (4 KiB: the block layer takes no larger logical
//! blocks), a bucket [`MIN_BUCKET_BYTES`] (4 KiB) to
//! [`MAX_BUCKET_BYTES`] (16 MiB), and a bucket holds at least one block. The
//! superblock is read in one 4096-byte transfer, so the device's logical
//! block size must be at most 4096 bytes.
//!
//! A cache must have at least [`min_data_buckets`] data buckets: at least
//! [`MIN_DATA_BUCKETS`] (32) buckets and at least [`MIN_DATA_BYTES`] (1 MiB)
//! of data, below which it could not hold a useful working set. A 64 MiB
//! device with 64 KiB buckets has 1024 buckets, 9 of them metadata.
//!
//! # Errors
//!
//! Every check names its reason ([`SbError`], [`UuidError`], [`LineError`],
//! [`DevEntryError`]): `Display` gives one line for `pr_err`, `to_errno()`
//! a negative Linux errno (the asm-generic values in [`errno`]):
//!
//! | errno | errors | why |
//! | --- | --- | --- |
//! | `EIO` | a short read (`ShortBuffer`) | the caller could not read the block |
//! | `EINVAL` | not formatted, foreign or bad magic, bad geometry or layout, device too small, bad UUID or line | the device or the argument is not a valid cache: bcache's own choice |
//! | `EBADMSG` | crc mismatch | the kernel's `EFSBADCRC`: the block is damaged |
//! | `EOPNOTSUPP` | unsupported version, unknown incompat features | a format this build does not implement |
//! | `EROFS` | unknown ro_compat features | the cache could only be used read-only |
//! | `ENAMETOOLONG` | a path of `PATH_MAX` bytes or more | as for any path |

#[path = "backing.rs"]
mod backing;
#[path = "crc32c.rs"]
mod crc32c;
#[path = "devtable.rs"]
mod devtable;
#[path = "journal.rs"]
mod journal;
#[path = "prios.rs"]
mod prios;
#[path = "uuid.rs"]
mod uuid;

// Neither the module nor the tool writes a backing superblock yet.
#[allow(unused_imports)]
pub use backing::*;
pub use crc32c::{crc32c, crc32c_extend};
pub use devtable::*;
// The module does not write the journal yet (format version 2).
#[allow(unused_imports)]
pub use journal::*;
pub use prios::*;
pub use uuid::*;

use core::fmt;

/// Negative errno values returned by the `to_errno()` methods (asm-generic,
/// as on x86 and arm64), as positive constants.
pub mod errno {
    /// I/O error.
    pub const EIO: i32 = 5;
    /// Invalid argument.
    pub const EINVAL: i32 = 22;
    /// Read-only file system.
    pub const EROFS: i32 = 30;
    /// File name too long.
    pub const ENAMETOOLONG: i32 = 36;
    /// Bad message: the kernel's `EFSBADCRC`.
    pub const EBADMSG: i32 = 74;
    /// Operation not supported.
    pub const EOPNOTSUPP: i32 = 95;
}

/// The size of a sector, the unit of every position on disk.
pub const SECTOR_SIZE: u64 = 512;
/// The sector of the superblock.
pub const SB_SECTOR: u64 = 8;
/// The byte offset of the superblock on the device.
pub const SB_OFFSET: u64 = SB_SECTOR * SECTOR_SIZE;
/// The size of the superblock block.
pub const SB_SIZE: usize = 4096;
/// The first sector after the superblock: no region may start below it.
pub const SB_END_SECTOR: u64 = SB_SECTOR + SB_SIZE as u64 / SECTOR_SIZE;
/// The magic at the start of the superblock (distinct from bcache's; the
/// CR LF and ^Z catch text-mode mangling, as PNG's).
pub const MAGIC: [u8; 16] = *b"BCACHE_RS\x00CSB\r\n\x1a";
/// The magic of a C bcache superblock, at [`C_BCACHE_MAGIC_OFFSET`] in the
/// same block (`bcache_magic` of `drivers/md/bcache/super.c`).
pub const C_BCACHE_MAGIC: [u8; 16] = [
    0xc6, 0x85, 0x73, 0xf6, 0x4e, 0x1a, 0x45, 0xca, 0x82, 0x65, 0xf5, 0x7f, 0x48, 0xba, 0x6d, 0x81,
];
/// The offset of [`C_BCACHE_MAGIC`] in the block at [`SB_OFFSET`].
pub const C_BCACHE_MAGIC_OFFSET: usize = 24;
/// The superblock version this build writes and reads.
pub const VERSION: u32 = 2;
/// The first format version, read too: the same layout with no persistent
/// index (its journal region unused), upgraded to [`VERSION`] by the module
/// when it registers the cache.
pub const VERSION_1: u32 = 1;
/// The compat features this build knows (none).
pub const FEATURE_COMPAT_KNOWN: u64 = 0;
/// The ro_compat features this build knows (none).
pub const FEATURE_RO_COMPAT_KNOWN: u64 = 0;
/// The incompat features this build knows (none).
pub const FEATURE_INCOMPAT_KNOWN: u64 =
    FEATURE_INCOMPAT_PERSISTENT_INDEX | FEATURE_INCOMPAT_DATA_CSUM;
/// Incompat feature of version 2: the index is kept in the journal region
/// (a version-1 module would ignore it, and serve stale data after a
/// write it did not journal).
pub const FEATURE_INCOMPAT_PERSISTENT_INDEX: u64 = 1;
/// Incompat feature: every cached block has a crc32c, verified on every
/// hit, and a checkpoint keeps them (`SUMS` records after each extent). A
/// module without it would restore extents it cannot verify, and would
/// refuse the `SUMS` records as unknown.
pub const FEATURE_INCOMPAT_DATA_CSUM: u64 = 2;
/// The incompat features of a cache this build writes.
pub const FEATURE_INCOMPAT_CURRENT: u64 =
    FEATURE_INCOMPAT_PERSISTENT_INDEX | FEATURE_INCOMPAT_DATA_CSUM;
/// The size of the label field.
pub const LABEL_SIZE: usize = 32;

/// The smallest block size.
pub const MIN_BLOCK_BYTES: u64 = 512;
/// The largest block size.
/// The block layer of Linux 6.12 takes logical blocks of at most a page.
pub const MAX_BLOCK_BYTES: u64 = 4 << 10;
/// The smallest bucket size (a page).
pub const MIN_BUCKET_BYTES: u64 = 4 << 10;
/// The largest bucket size.
pub const MAX_BUCKET_BYTES: u64 = 16 << 20;
/// A cache has at least this many data buckets.
pub const MIN_DATA_BUCKETS: u64 = 32;
/// A cache has at least this many bytes of data buckets.
pub const MIN_DATA_BYTES: u64 = 1 << 20;
/// The journal takes one bucket per this many buckets of the device...
pub const JOURNAL_DIVISOR: u64 = 128;
/// ...but at least this many...
pub const MIN_JOURNAL_BUCKETS: u64 = 2;
/// ...and at most this many, or more if a checkpoint of a full cache needs
/// more ([`checkpoint_bytes`]).
pub const MAX_JOURNAL_BUCKETS: u64 = 256;

/// The extents a checkpoint has room for at most: about what the index
/// holds at its default memory limit (64 MiB of nodes).
pub const CHECKPOINT_EXTENTS: u64 = 2 << 20;

/// The bytes of records a checkpoint of a full cache of `nbuckets` buckets
/// of `bucket_bytes`, with blocks of `block_bytes`, needs: the data
/// checksums of every block (`SUMS` records: 72 bytes per 14 blocks, 1 %
/// of the data with blocks of 512 bytes, 0.13 % with blocks of 4 KiB), a
/// `CACHED` record (24 bytes) per 4 KiB of data (a cache full of
/// page-sized extents) up to [`CHECKPOINT_EXTENTS`], and a `BUCKET` record
/// (16 bytes) per bucket, in blocks of [`JBLOCK_PAYLOAD`] bytes of
/// records.
pub fn checkpoint_bytes(nbuckets: u64, bucket_bytes: u64, block_bytes: u64) -> u64 {
    let data = nbuckets.saturating_mul(bucket_bytes);
    let sums = (data / block_bytes.max(1)).div_ceil(14).saturating_mul(72);
    let extents = (data / 4096).min(CHECKPOINT_EXTENTS).saturating_mul(24);
    let records = sums
        .saturating_add(extents)
        .saturating_add(nbuckets.saturating_mul(16));
    records
        .div_ceil(JBLOCK_PAYLOAD as u64)
        .saturating_mul(JBLOCK_SIZE as u64)
}
/// The bucket size [`Layout::default_bucket_bytes`] starts from.
pub const DEFAULT_BUCKET_BYTES: u64 = 512 << 10;
/// [`Layout::default_bucket_bytes`] halves the bucket size until the device
/// has this many buckets.
pub const DEFAULT_MIN_BUCKETS: u64 = 1024;
/// Metadata regions are aligned to at least this many sectors (4 KiB).
pub const REGION_ALIGN_SECTORS: u64 = 8;

/// The size of a block of the priorities region.
pub const PRIO_BLOCK_SIZE: u64 = 4096;
/// The header of a priorities block.
pub const PRIO_HEADER_SIZE: u64 = 16;
/// The size of one bucket's priority entry.
pub const PRIO_ENTRY_SIZE: u64 = 4;
/// Priority entries per priorities block.
pub const PRIOS_PER_BLOCK: u64 = (PRIO_BLOCK_SIZE - PRIO_HEADER_SIZE) / PRIO_ENTRY_SIZE;

/// The byte offsets of the superblock fields in the block.
pub mod sb_field {
    /// `[u8; 16]`
    pub const MAGIC: usize = 0;
    /// `u32`
    pub const CSUM: usize = 16;
    /// `u32`
    pub const VERSION: usize = 20;
    /// `u64`
    pub const SB_SECTOR: usize = 24;
    /// `u64`
    pub const COMPAT: usize = 32;
    /// `u64`
    pub const RO_COMPAT: usize = 40;
    /// `u64`
    pub const INCOMPAT: usize = 48;
    /// `[u8; 16]`
    pub const SET_UUID: usize = 56;
    /// `[u8; 32]`
    pub const LABEL: usize = 72;
    /// `u64`
    pub const FLAGS: usize = 104;
    /// `u64`
    pub const SEQ: usize = 112;
    /// `u64`
    pub const CREATED: usize = 120;
    /// `u64`
    pub const DEVICE_SECTORS: usize = 128;
    /// `u32`
    pub const BLOCK_SECTORS: usize = 136;
    /// `u32`
    pub const BUCKET_SECTORS: usize = 140;
    /// `u64`
    pub const NBUCKETS: usize = 144;
    /// `u64`
    pub const FIRST_BUCKET: usize = 152;
    /// Region: `start: u64, sectors: u64`.
    pub const DEV_TABLE: usize = 160;
    /// Region: `start: u64, sectors: u64`.
    pub const PRIOS: usize = 176;
    /// Region: `start: u64, sectors: u64`.
    pub const JOURNAL: usize = 192;
    /// The first reserved byte.
    pub const RESERVED: usize = 208;
}

/// Reads `N` bytes at `off`, zeros if `b` is too short (callers check the
/// length first).
pub(crate) fn get_bytes<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(src) = off.checked_add(N).and_then(|end| b.get(off..end)) {
        for (d, s) in out.iter_mut().zip(src) {
            *d = *s;
        }
    }
    out
}

/// Writes `src` at `off` (nothing past the end of `b`).
pub(crate) fn put_bytes(b: &mut [u8], off: usize, src: &[u8]) {
    if let Some(dst) = b.get_mut(off..) {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = *s;
        }
    }
}

pub(crate) fn get_u32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(get_bytes(b, off))
}

pub(crate) fn get_u64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(get_bytes(b, off))
}

/// The crc32c of `b` with the four bytes at `csum_off` taken as zero.
pub(crate) fn crc_with_hole(b: &[u8], csum_off: usize) -> u32 {
    let (head, rest) = b.split_at(csum_off.min(b.len()));
    let tail = rest.get(4..).unwrap_or(&[]);
    crc32c_extend(crc32c_extend(crc32c(head), &[0; 4]), tail)
}

/// A size in bytes, shown exactly, in the largest binary unit that divides
/// it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
        let mut v = self.0;
        let mut unit = "B";
        for u in UNITS.iter().skip(1) {
            if v == 0 || v % 1024 != 0 {
                break;
            }
            v /= 1024;
            unit = u;
        }
        write!(f, "{v} {unit}")
    }
}

/// The metadata regions of a cache device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionKind {
    /// The device table (backing devices and their UUIDs).
    DevTable,
    /// Bucket priorities and generations.
    Prios,
    /// The journal.
    Journal,
}

impl RegionKind {
    /// Every region, in disk order as the formatter places them.
    pub const ALL: [RegionKind; 3] = [RegionKind::DevTable, RegionKind::Prios, RegionKind::Journal];

    /// The region's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            RegionKind::DevTable => "device table",
            RegionKind::Prios => "priorities",
            RegionKind::Journal => "journal",
        }
    }
}

impl fmt::Display for RegionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A run of sectors on the cache device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Region {
    /// The first sector.
    pub start: u64,
    /// The length in sectors.
    pub sectors: u64,
}

impl Region {
    /// The sector after the region, `None` on overflow.
    pub fn end(&self) -> Option<u64> {
        self.start.checked_add(self.sectors)
    }

    /// Whether the two regions share a sector (regions that overflow are
    /// taken to reach the end of the device).
    pub fn overlaps(&self, other: &Region) -> bool {
        let a_end = self.end().unwrap_or(u64::MAX);
        let b_end = other.end().unwrap_or(u64::MAX);
        self.sectors != 0 && other.sectors != 0 && self.start < b_end && other.start < a_end
    }
}

/// Why a superblock, or a planned layout, is not valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SbError {
    /// The buffer holds fewer than [`SB_SIZE`] bytes.
    ShortBuffer {
        /// Its length.
        len: usize,
    },
    /// No bcache_rs superblock: the block is blank or holds something else.
    NotFormatted,
    /// The block holds a C bcache superblock.
    ForeignBcache,
    /// The block holds a bcache_rs backing superblock: the device is a
    /// backing device, not a cache.
    BackingDevice,
    /// The magic is close to [`MAGIC`] but damaged (12 to 15 bytes right).
    BadMagic {
        /// The magic found.
        found: [u8; 16],
    },
    /// The crc32c does not match.
    BadCrc {
        /// The crc in the superblock.
        stored: u32,
        /// The crc of the block.
        computed: u32,
    },
    /// A version other than [`VERSION`].
    UnsupportedVersion {
        /// The version found.
        found: u32,
    },
    /// Incompat feature bits this build does not know.
    UnknownIncompatFeatures {
        /// The unknown bits.
        bits: u64,
    },
    /// Ro_compat feature bits this build does not know (from
    /// [`Superblock::check_writable`] only).
    UnknownRoCompatFeatures {
        /// The unknown bits.
        bits: u64,
    },
    /// The superblock records another sector than [`SB_SECTOR`].
    WrongSbSector {
        /// The sector recorded.
        found: u64,
    },
    /// The cache-set UUID is all zeros.
    NilSetUuid,
    /// The block size is not a power of two in range.
    BadBlockSize {
        /// The block size in bytes.
        bytes: u64,
    },
    /// The bucket size is not a power of two in range.
    BadBucketSize {
        /// The bucket size in bytes.
        bytes: u64,
    },
    /// A bucket is smaller than a block.
    BucketSmallerThanBlock {
        /// The block size in bytes.
        block_bytes: u64,
        /// The bucket size in bytes.
        bucket_bytes: u64,
    },
    /// The buckets reach past the device size recorded at format time.
    BucketsBeyondDevice {
        /// The number of buckets.
        nbuckets: u64,
        /// The bucket size in sectors.
        bucket_sectors: u32,
        /// The recorded device size in sectors.
        device_sectors: u64,
    },
    /// Fewer data buckets than [`min_data_buckets`].
    TooFewBuckets {
        /// The data buckets (`nbuckets - first_bucket`, 0 if negative).
        data_buckets: u64,
        /// The minimum for this bucket size.
        min: u64,
    },
    /// A region does not start or end on its alignment.
    MisalignedRegion {
        /// The region.
        region: RegionKind,
        /// Its start sector.
        start: u64,
        /// Its length in sectors.
        sectors: u64,
        /// The alignment it needs, in sectors.
        align: u64,
    },
    /// A region is not inside the metadata area, sectors
    /// [`SB_END_SECTOR`]`..first_bucket * bucket_sectors`.
    RegionOutOfBounds {
        /// The region.
        region: RegionKind,
        /// Its start sector.
        start: u64,
        /// Its length in sectors.
        sectors: u64,
        /// The end of the metadata area.
        limit: u64,
    },
    /// A region is smaller than this geometry needs.
    RegionTooSmall {
        /// The region.
        region: RegionKind,
        /// Its length in sectors.
        sectors: u64,
        /// The length it needs.
        needed: u64,
    },
    /// Two regions overlap.
    LayoutOverlap {
        /// The first region.
        a: RegionKind,
        /// The second region.
        b: RegionKind,
    },
    /// The device is smaller than the cache needs.
    DeviceTooSmall {
        /// The bytes needed.
        needed: u64,
        /// The device's bytes.
        have: u64,
    },
}

/// The errors of [`Layout::plan`]: a subset of [`SbError`] (bad sizes and
/// [`SbError::DeviceTooSmall`]).
pub type LayoutError = SbError;

impl SbError {
    /// The negative errno for this error (see the module documentation).
    pub fn to_errno(self) -> i32 {
        -match self {
            SbError::ShortBuffer { .. } => errno::EIO,
            SbError::BadCrc { .. } => errno::EBADMSG,
            SbError::UnsupportedVersion { .. } | SbError::UnknownIncompatFeatures { .. } => {
                errno::EOPNOTSUPP
            }
            SbError::UnknownRoCompatFeatures { .. } => errno::EROFS,
            SbError::NotFormatted
            | SbError::ForeignBcache
            | SbError::BackingDevice
            | SbError::BadMagic { .. }
            | SbError::WrongSbSector { .. }
            | SbError::NilSetUuid
            | SbError::BadBlockSize { .. }
            | SbError::BadBucketSize { .. }
            | SbError::BucketSmallerThanBlock { .. }
            | SbError::BucketsBeyondDevice { .. }
            | SbError::TooFewBuckets { .. }
            | SbError::MisalignedRegion { .. }
            | SbError::RegionOutOfBounds { .. }
            | SbError::RegionTooSmall { .. }
            | SbError::LayoutOverlap { .. }
            | SbError::DeviceTooSmall { .. } => errno::EINVAL,
        }
    }
}

impl fmt::Display for SbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SbError::ShortBuffer { len } => {
                write!(f, "short superblock read: {len} bytes of {SB_SIZE}")
            }
            SbError::NotFormatted => write!(
                f,
                "not formatted: no bcache_rs superblock at byte {SB_OFFSET}"
            ),
            SbError::ForeignBcache => write!(
                f,
                "a C bcache superblock at byte {SB_OFFSET}, not a bcache_rs one"
            ),
            SbError::BackingDevice => write!(
                f,
                "a bcache_rs backing device's superblock at byte {SB_OFFSET}, not a cache's"
            ),
            SbError::BadMagic { found } => {
                f.write_str("damaged superblock: bad magic ")?;
                for b in found {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
            SbError::BadCrc { stored, computed } => write!(
                f,
                "superblock crc32c mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            SbError::UnsupportedVersion { found } => write!(
                f,
                "unsupported superblock version {found} (this build reads versions {VERSION_1} and {VERSION})"
            ),
            SbError::UnknownIncompatFeatures { bits } => {
                write!(f, "unknown incompatible features {bits:#x}")
            }
            SbError::UnknownRoCompatFeatures { bits } => write!(
                f,
                "unknown read-only compatible features {bits:#x}: the cache cannot be written"
            ),
            SbError::WrongSbSector { found } => write!(
                f,
                "superblock records sector {found} as its place, not {SB_SECTOR}"
            ),
            SbError::NilSetUuid => f.write_str("the cache-set UUID is all zeros"),
            SbError::BadBlockSize { bytes } => write!(
                f,
                "bad block size {}: must be a power of two from {} to {}",
                Size(bytes),
                Size(MIN_BLOCK_BYTES),
                Size(MAX_BLOCK_BYTES)
            ),
            SbError::BadBucketSize { bytes } => write!(
                f,
                "bad bucket size {}: must be a power of two from {} to {}",
                Size(bytes),
                Size(MIN_BUCKET_BYTES),
                Size(MAX_BUCKET_BYTES)
            ),
            SbError::BucketSmallerThanBlock {
                block_bytes,
                bucket_bytes,
            } => write!(
                f,
                "bucket size {} is smaller than block size {}",
                Size(bucket_bytes),
                Size(block_bytes)
            ),
            SbError::BucketsBeyondDevice {
                nbuckets,
                bucket_sectors,
                device_sectors,
            } => write!(
                f,
                "{nbuckets} buckets of {bucket_sectors} sectors do not fit the device's {device_sectors} sectors"
            ),
            SbError::TooFewBuckets { data_buckets, min } => {
                write!(f, "{data_buckets} data buckets, a cache needs at least {min}")
            }
            SbError::MisalignedRegion {
                region,
                start,
                sectors,
                align,
            } => write!(
                f,
                "{region} region (sector {start}, {sectors} sectors) is not aligned to {align} sectors"
            ),
            SbError::RegionOutOfBounds {
                region,
                start,
                sectors,
                limit,
            } => write!(
                f,
                "{region} region (sector {start}, {sectors} sectors) is outside the metadata area, sectors {SB_END_SECTOR}..{limit}"
            ),
            SbError::RegionTooSmall {
                region,
                sectors,
                needed,
            } => write!(
                f,
                "{region} region has {sectors} sectors, needs {needed}"
            ),
            SbError::LayoutOverlap { a, b } => write!(f, "{a} and {b} regions overlap"),
            SbError::DeviceTooSmall { needed, have } => write!(
                f,
                "device too small: {}, a cache of this geometry needs at least {}",
                Size(have),
                Size(needed)
            ),
        }
    }
}

/// Checks a block and a bucket size in bytes; returns them in sectors.
pub fn check_geometry(block_bytes: u64, bucket_bytes: u64) -> Result<(u32, u32), SbError> {
    if !block_bytes.is_power_of_two() || !(MIN_BLOCK_BYTES..=MAX_BLOCK_BYTES).contains(&block_bytes)
    {
        return Err(SbError::BadBlockSize { bytes: block_bytes });
    }
    if !bucket_bytes.is_power_of_two()
        || !(MIN_BUCKET_BYTES..=MAX_BUCKET_BYTES).contains(&bucket_bytes)
    {
        return Err(SbError::BadBucketSize {
            bytes: bucket_bytes,
        });
    }
    if bucket_bytes < block_bytes {
        return Err(SbError::BucketSmallerThanBlock {
            block_bytes,
            bucket_bytes,
        });
    }
    // Both are at most 16 MiB here, so the sector counts fit in u32.
    let to_sectors = |bytes: u64| u32::try_from(bytes / SECTOR_SIZE).unwrap_or(u32::MAX);
    Ok((to_sectors(block_bytes), to_sectors(bucket_bytes)))
}

/// The least number of data buckets of a cache with buckets of
/// `bucket_sectors`: [`MIN_DATA_BUCKETS`], and enough for [`MIN_DATA_BYTES`].
pub fn min_data_buckets(bucket_sectors: u32) -> u64 {
    let per_bucket = u64::from(bucket_sectors.max(1)) * SECTOR_SIZE;
    MIN_DATA_BUCKETS.max(MIN_DATA_BYTES.div_ceil(per_bucket))
}

/// The sectors of the priorities region for `nbuckets` buckets (before
/// alignment).
pub fn prio_sectors(nbuckets: u64) -> u64 {
    nbuckets
        .div_ceil(PRIOS_PER_BLOCK)
        .saturating_mul(PRIO_BLOCK_SIZE / SECTOR_SIZE)
}

/// The sectors of the device table.
pub const DEV_TABLE_SECTORS: u64 = DEV_TABLE_BYTES / SECTOR_SIZE;

/// `v` rounded up to a multiple of `align` (a power of two), saturating.
fn align_up(v: u64, align: u64) -> u64 {
    v.checked_next_multiple_of(align.max(1)).unwrap_or(u64::MAX)
}

/// Where the data of a cache device lives: the geometry and the regions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The device size at format time, in sectors.
    pub device_sectors: u64,
    /// The block size in sectors.
    pub block_sectors: u32,
    /// The bucket size in sectors.
    pub bucket_sectors: u32,
    /// The buckets of the device, counted from sector 0.
    pub nbuckets: u64,
    /// The first data bucket; the buckets below hold metadata.
    pub first_bucket: u64,
    /// The device table.
    pub dev_table: Region,
    /// Bucket priorities and generations.
    pub prios: Region,
    /// The journal.
    pub journal: Region,
}

impl Layout {
    /// The layout of a device of `device_bytes` with the given block and
    /// bucket sizes (in bytes): the device table after the superblock, the
    /// priorities after it (both aligned to a block and to 4 KiB), then the
    /// journal from the next bucket boundary: `nbuckets / 128` buckets, at
    /// least 2 and at most 256. The data buckets follow. Fails if the sizes
    /// are invalid ([`check_geometry`]) or if fewer than
    /// [`min_data_buckets`] data buckets would remain
    /// ([`SbError::DeviceTooSmall`], with the least size that works).
    pub fn plan(
        device_bytes: u64,
        block_bytes: u64,
        bucket_bytes: u64,
    ) -> Result<Layout, LayoutError> {
        let (block_sectors, bucket_sectors) = check_geometry(block_bytes, bucket_bytes)?;
        let nbuckets = device_bytes / bucket_bytes;
        let layout = Self::for_buckets(nbuckets, block_sectors, bucket_sectors);
        if layout.data_buckets() < min_data_buckets(bucket_sectors) {
            return Err(SbError::DeviceTooSmall {
                needed: Self::min_device_bytes(block_bytes, bucket_bytes)?,
                have: device_bytes,
            });
        }
        Ok(Layout {
            device_sectors: device_bytes / SECTOR_SIZE,
            ..layout
        })
    }

    /// The least device size for which [`Layout::plan`] succeeds with these
    /// sizes.
    pub fn min_device_bytes(block_bytes: u64, bucket_bytes: u64) -> Result<u64, LayoutError> {
        let (block_sectors, bucket_sectors) = check_geometry(block_bytes, bucket_bytes)?;
        let min = min_data_buckets(bucket_sectors);
        // The metadata grows by at most a bucket per 128 buckets, so this
        // fixed point iteration settles in a few rounds.
        let mut n = min;
        for _ in 0..64 {
            let next = min
                .saturating_add(Self::for_buckets(n, block_sectors, bucket_sectors).first_bucket);
            if next == n {
                break;
            }
            n = next;
        }
        Ok(n.saturating_mul(bucket_bytes))
    }

    /// The default bucket size for a device: [`DEFAULT_BUCKET_BYTES`],
    /// halved while the device has fewer than [`DEFAULT_MIN_BUCKETS`]
    /// buckets, down to the block size or [`MIN_BUCKET_BYTES`].
    pub fn default_bucket_bytes(device_bytes: u64, block_bytes: u64) -> u64 {
        let floor = block_bytes.max(MIN_BUCKET_BYTES);
        let mut bucket = DEFAULT_BUCKET_BYTES.max(floor);
        while bucket / 2 >= floor && device_bytes / bucket < DEFAULT_MIN_BUCKETS {
            bucket /= 2;
        }
        bucket
    }

    /// The regions of a device of `nbuckets` buckets (valid sizes), without
    /// the minimum check; `device_sectors` is the buckets' extent.
    fn for_buckets(nbuckets: u64, block_sectors: u32, bucket_sectors: u32) -> Layout {
        let align = u64::from(block_sectors).max(REGION_ALIGN_SECTORS);
        let bucket = u64::from(bucket_sectors);
        let dev_table = Region {
            start: align_up(SB_END_SECTOR, align),
            sectors: align_up(DEV_TABLE_SECTORS, align),
        };
        let prios = Region {
            start: align_up(dev_table.start.saturating_add(dev_table.sectors), align),
            sectors: align_up(prio_sectors(nbuckets), align),
        };
        // Two checkpoint areas of a full cache's checkpoint, and the ring
        // (an eighth of the region: see `JournalLayout`), and a block of
        // slack for the rounding of each.
        let block_bytes = u64::from(block_sectors) * SECTOR_SIZE;
        let area = checkpoint_bytes(nbuckets, bucket * SECTOR_SIZE, block_bytes);
        let region = area
            .saturating_mul(2)
            .saturating_mul(8)
            .div_ceil(7)
            .saturating_add(3 * JBLOCK_SIZE as u64);
        let journal_buckets = (nbuckets / JOURNAL_DIVISOR)
            .clamp(MIN_JOURNAL_BUCKETS, MAX_JOURNAL_BUCKETS)
            .max(region.div_ceil(bucket.saturating_mul(SECTOR_SIZE).max(1)));
        let journal = Region {
            start: align_up(prios.start.saturating_add(prios.sectors), bucket),
            sectors: journal_buckets.saturating_mul(bucket),
        };
        Layout {
            device_sectors: nbuckets.saturating_mul(bucket),
            block_sectors,
            bucket_sectors,
            nbuckets,
            first_bucket: journal.start.saturating_add(journal.sectors) / bucket,
            dev_table,
            prios,
            journal,
        }
    }

    /// The region of `kind`.
    pub fn region(&self, kind: RegionKind) -> Region {
        match kind {
            RegionKind::DevTable => self.dev_table,
            RegionKind::Prios => self.prios,
            RegionKind::Journal => self.journal,
        }
    }

    /// The block size in bytes.
    pub fn block_bytes(&self) -> u64 {
        u64::from(self.block_sectors) * SECTOR_SIZE
    }

    /// The bucket size in bytes.
    pub fn bucket_bytes(&self) -> u64 {
        u64::from(self.bucket_sectors) * SECTOR_SIZE
    }

    /// The number of data buckets (0 if `first_bucket` is past the end).
    pub fn data_buckets(&self) -> u64 {
        self.nbuckets.saturating_sub(self.first_bucket)
    }

    /// The first sector of bucket `bucket`, `None` past the last bucket.
    pub fn bucket_sector(&self, bucket: u64) -> Option<u64> {
        if bucket >= self.nbuckets {
            return None;
        }
        bucket.checked_mul(u64::from(self.bucket_sectors))
    }

    /// The first sector of the data buckets.
    pub fn data_start_sector(&self) -> u64 {
        self.first_bucket
            .saturating_mul(u64::from(self.bucket_sectors))
    }

    /// Checks a layout read from disk: the geometry, the buckets against the
    /// recorded device size, the number of data buckets, and each region:
    /// aligned to a block (the journal to a bucket), inside the metadata
    /// area, large enough, and not overlapping another. The formatter's
    /// placement is not required.
    pub fn check(&self) -> Result<(), SbError> {
        let block = u64::from(self.block_sectors);
        let bucket = u64::from(self.bucket_sectors);
        check_geometry(
            block.saturating_mul(SECTOR_SIZE),
            bucket.saturating_mul(SECTOR_SIZE),
        )?;
        let beyond = SbError::BucketsBeyondDevice {
            nbuckets: self.nbuckets,
            bucket_sectors: self.bucket_sectors,
            device_sectors: self.device_sectors,
        };
        match self.nbuckets.checked_mul(bucket) {
            Some(end) if end <= self.device_sectors => {}
            _ => return Err(beyond),
        }
        let min = min_data_buckets(self.bucket_sectors);
        if self.data_buckets() < min {
            return Err(SbError::TooFewBuckets {
                data_buckets: self.data_buckets(),
                min,
            });
        }
        // first_bucket < nbuckets, so this does not overflow.
        let limit = self.data_start_sector();
        for kind in RegionKind::ALL {
            let r = self.region(kind);
            let (align, needed) = match kind {
                RegionKind::DevTable => (block, DEV_TABLE_SECTORS),
                RegionKind::Prios => (block, prio_sectors(self.nbuckets)),
                RegionKind::Journal => (bucket, MIN_JOURNAL_BUCKETS * bucket),
            };
            if r.start.checked_rem(align) != Some(0) || r.sectors.checked_rem(align) != Some(0) {
                return Err(SbError::MisalignedRegion {
                    region: kind,
                    start: r.start,
                    sectors: r.sectors,
                    align,
                });
            }
            match r.end() {
                Some(end) if r.start >= SB_END_SECTOR && end <= limit => {}
                _ => {
                    return Err(SbError::RegionOutOfBounds {
                        region: kind,
                        start: r.start,
                        sectors: r.sectors,
                        limit,
                    })
                }
            }
            if r.sectors < needed {
                return Err(SbError::RegionTooSmall {
                    region: kind,
                    sectors: r.sectors,
                    needed,
                });
            }
        }
        for (i, a) in RegionKind::ALL.iter().enumerate() {
            for b in RegionKind::ALL.iter().skip(i + 1) {
                if self.region(*a).overlaps(&self.region(*b)) {
                    return Err(SbError::LayoutOverlap { a: *a, b: *b });
                }
            }
        }
        Ok(())
    }
}

/// Makes a label field from `text`: `None` if it is longer than
/// [`LABEL_SIZE`] or holds a NUL.
pub fn make_label(text: &[u8]) -> Option<[u8; LABEL_SIZE]> {
    if text.len() > LABEL_SIZE || text.contains(&0) {
        return None;
    }
    let mut label = [0u8; LABEL_SIZE];
    put_bytes(&mut label, 0, text);
    Some(label)
}

/// The superblock of a cache device (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Superblock {
    /// The format version, [`VERSION`].
    pub version: u32,
    /// Compat feature bits.
    pub compat: u64,
    /// Ro_compat feature bits.
    pub ro_compat: u64,
    /// Incompat feature bits.
    pub incompat: u64,
    /// The cache-set UUID.
    pub set_uuid: Uuid,
    /// The label, NUL-padded.
    pub label: [u8; LABEL_SIZE],
    /// State flags.
    pub flags: u64,
    /// The superblock write sequence number.
    pub seq: u64,
    /// The format time in seconds since the Unix epoch.
    pub created: u64,
    /// The geometry and regions.
    pub layout: Layout,
}

impl Superblock {
    /// A version [`VERSION`] superblock with the persistent index and
    /// data checksums ([`FEATURE_INCOMPAT_CURRENT`]), no other feature, no
    /// label, `seq` and `created` 0.
    pub fn new(layout: Layout, set_uuid: Uuid) -> Superblock {
        Superblock {
            version: VERSION,
            compat: 0,
            ro_compat: 0,
            incompat: FEATURE_INCOMPAT_CURRENT,
            set_uuid,
            label: [0; LABEL_SIZE],
            flags: 0,
            seq: 0,
            created: 0,
            layout,
        }
    }

    /// Whether the cache keeps its index (format version 2).
    pub fn persistent(&self) -> bool {
        self.version >= VERSION && self.incompat & FEATURE_INCOMPAT_PERSISTENT_INDEX != 0
    }

    /// Whether the cache's blocks carry data checksums.
    pub fn data_csums(&self) -> bool {
        self.incompat & FEATURE_INCOMPAT_DATA_CSUM != 0
    }

    /// Whether the superblock has every feature this build writes
    /// ([`VERSION`], [`FEATURE_INCOMPAT_CURRENT`]).
    pub fn current(&self) -> bool {
        self.persistent() && self.data_csums()
    }

    /// The superblock of an older cache upgraded to [`VERSION`] and
    /// [`FEATURE_INCOMPAT_CURRENT`]: the persistent index and data
    /// checksums on, the next `seq`. (Version 1 keeps nothing in its
    /// journal region, which an empty journal then starts from; the extents
    /// of a checkpoint without checksums are not restored.)
    pub fn upgraded(&self) -> Superblock {
        Superblock {
            version: VERSION,
            incompat: self.incompat | FEATURE_INCOMPAT_CURRENT,
            seq: self.seq.wrapping_add(1),
            ..*self
        }
    }

    /// The label up to its first NUL.
    pub fn label_bytes(&self) -> &[u8] {
        let len = self
            .label
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(LABEL_SIZE);
        self.label.get(..len).unwrap_or(&[])
    }

    /// Writes the superblock block, crc included. The reserved bytes are
    /// zeroed. Nothing is checked: [`Superblock::decode`] the result to
    /// check it.
    pub fn encode(&self, out: &mut [u8; SB_SIZE]) {
        use sb_field as o;
        let l = &self.layout;
        out.fill(0);
        put_bytes(out, o::MAGIC, &MAGIC);
        put_bytes(out, o::VERSION, &self.version.to_le_bytes());
        put_bytes(out, o::SB_SECTOR, &SB_SECTOR.to_le_bytes());
        let u64s = [
            (o::COMPAT, self.compat),
            (o::RO_COMPAT, self.ro_compat),
            (o::INCOMPAT, self.incompat),
            (o::FLAGS, self.flags),
            (o::SEQ, self.seq),
            (o::CREATED, self.created),
            (o::DEVICE_SECTORS, l.device_sectors),
            (o::NBUCKETS, l.nbuckets),
            (o::FIRST_BUCKET, l.first_bucket),
            (o::DEV_TABLE, l.dev_table.start),
            (o::DEV_TABLE + 8, l.dev_table.sectors),
            (o::PRIOS, l.prios.start),
            (o::PRIOS + 8, l.prios.sectors),
            (o::JOURNAL, l.journal.start),
            (o::JOURNAL + 8, l.journal.sectors),
        ];
        for (off, v) in u64s {
            put_bytes(out, off, &v.to_le_bytes());
        }
        put_bytes(out, o::SET_UUID, &self.set_uuid.0);
        put_bytes(out, o::LABEL, &self.label);
        put_bytes(out, o::BLOCK_SECTORS, &l.block_sectors.to_le_bytes());
        put_bytes(out, o::BUCKET_SECTORS, &l.bucket_sectors.to_le_bytes());
        let csum = crc_with_hole(out, o::CSUM);
        put_bytes(out, o::CSUM, &csum.to_le_bytes());
    }

    /// Reads and checks the superblock from `buf`, the [`SB_SIZE`] bytes at
    /// [`SB_OFFSET`] (more are ignored). Checks, in order: the length, the
    /// magic, the crc, the version, the incompat features, the recorded
    /// sector, the UUID and the layout ([`Layout::check`]). Use
    /// [`Superblock::check_device`] with the device's current size and
    /// [`Superblock::check_writable`] before writing.
    pub fn decode(buf: &[u8]) -> Result<Superblock, SbError> {
        use sb_field as o;
        let b = buf
            .get(..SB_SIZE)
            .ok_or(SbError::ShortBuffer { len: buf.len() })?;
        let magic: [u8; 16] = get_bytes(b, o::MAGIC);
        if magic == BACKING_MAGIC {
            return Err(SbError::BackingDevice);
        }
        if magic != MAGIC {
            let right = magic
                .iter()
                .zip(MAGIC.iter())
                .filter(|(a, b)| a == b)
                .count();
            if right >= 12 {
                return Err(SbError::BadMagic { found: magic });
            }
            if get_bytes::<16>(b, C_BCACHE_MAGIC_OFFSET) == C_BCACHE_MAGIC {
                return Err(SbError::ForeignBcache);
            }
            return Err(SbError::NotFormatted);
        }
        let stored = get_u32(b, o::CSUM);
        let computed = crc_with_hole(b, o::CSUM);
        if stored != computed {
            return Err(SbError::BadCrc { stored, computed });
        }
        let version = get_u32(b, o::VERSION);
        if version != VERSION && version != VERSION_1 {
            return Err(SbError::UnsupportedVersion { found: version });
        }
        let incompat = get_u64(b, o::INCOMPAT);
        if incompat & !FEATURE_INCOMPAT_KNOWN != 0 {
            return Err(SbError::UnknownIncompatFeatures {
                bits: incompat & !FEATURE_INCOMPAT_KNOWN,
            });
        }
        let sector = get_u64(b, o::SB_SECTOR);
        if sector != SB_SECTOR {
            return Err(SbError::WrongSbSector { found: sector });
        }
        let set_uuid = Uuid(get_bytes(b, o::SET_UUID));
        if set_uuid.is_nil() {
            return Err(SbError::NilSetUuid);
        }
        let region = |off: usize| Region {
            start: get_u64(b, off),
            sectors: get_u64(b, off + 8),
        };
        let layout = Layout {
            device_sectors: get_u64(b, o::DEVICE_SECTORS),
            block_sectors: get_u32(b, o::BLOCK_SECTORS),
            bucket_sectors: get_u32(b, o::BUCKET_SECTORS),
            nbuckets: get_u64(b, o::NBUCKETS),
            first_bucket: get_u64(b, o::FIRST_BUCKET),
            dev_table: region(o::DEV_TABLE),
            prios: region(o::PRIOS),
            journal: region(o::JOURNAL),
        };
        layout.check()?;
        Ok(Superblock {
            version,
            compat: get_u64(b, o::COMPAT),
            ro_compat: get_u64(b, o::RO_COMPAT),
            incompat,
            set_uuid,
            label: get_bytes(b, o::LABEL),
            flags: get_u64(b, o::FLAGS),
            seq: get_u64(b, o::SEQ),
            created: get_u64(b, o::CREATED),
            layout,
        })
    }

    /// Checks that a device of `device_bytes` holds every bucket
    /// ([`SbError::DeviceTooSmall`] if it shrank or is another device). A
    /// larger device is fine: the rest is unused.
    pub fn check_device(&self, device_bytes: u64) -> Result<(), SbError> {
        let needed = self
            .layout
            .nbuckets
            .saturating_mul(self.layout.bucket_bytes());
        if device_bytes < needed {
            return Err(SbError::DeviceTooSmall {
                needed,
                have: device_bytes,
            });
        }
        Ok(())
    }

    /// Checks that this build may write the cache: no unknown ro_compat
    /// features.
    pub fn check_writable(&self) -> Result<(), SbError> {
        let bits = self.ro_compat & !FEATURE_RO_COMPAT_KNOWN;
        if bits != 0 {
            return Err(SbError::UnknownRoCompatFeatures { bits });
        }
        Ok(())
    }
}
