// SPDX-License-Identifier: GPL-2.0

//! The backing superblock: what `bcache-rs format-backing` will write at the
//! start of a backing device, so that the device proves its identity after
//! a reboot (the design in `Documentation/bcache_rs-persistence.rst`). The
//! codec only: neither the tool nor the module writes it yet.
//!
//! Little-endian, at byte [`SB_OFFSET`] of the backing device (sectors 0-7
//! are left alone, as on a cache device), [`SB_SIZE`] bytes (offsets in
//! [`bsb_field`]):
//!
//! | offset | size | field | meaning |
//! | --- | --- | --- | --- |
//! | 0 | 16 | magic | [`BACKING_MAGIC`] |
//! | 16 | 4 | csum | crc32c of the block with this field read as zero |
//! | 20 | 4 | version | [`BACKING_VERSION`] |
//! | 24 | 8 | sb_sector | [`SB_SECTOR`] |
//! | 32 | 8 | feature_compat | features an older reader may ignore |
//! | 40 | 8 | feature_ro_compat | features an older reader may only read |
//! | 48 | 8 | feature_incompat | features an older reader must refuse |
//! | 56 | 16 | uuid | the device's UUID, not nil |
//! | 72 | 32 | label | NUL-padded bytes, informational |
//! | 104 | 8 | data_offset | first sector of the data that `/dev/bcache_rsN` exposes |
//! | 112 | 8 | seq | write sequence (0 at format) |
//! | 120 | 8 | created | format time, seconds since the Unix epoch |
//! | 128 | 16 | cache_set | UUID of the cache set it is attached to, nil if none |
//! | 144 | 4 | state | [`DevState`]: clean, or dirty (writeback) |
//! | 148 | 4 | reserved | written as zero, not checked |
//! | 152 | 8 | device_sectors | the device's size at format time |
//! | 160 | 3936 | reserved | written as zero, not checked |
//!
//! The data offset is at least [`MIN_DATA_OFFSET`] sectors (past the
//! superblock), a multiple of [`REGION_ALIGN_SECTORS`] (4 KiB), and leaves
//! data on the device. A cache device's superblock, found where a backing
//! one is expected, is refused as such.

use super::{
    crc_with_hole, errno, get_bytes, get_u32, get_u64, put_bytes, DevState, Uuid, LABEL_SIZE,
    MAGIC, REGION_ALIGN_SECTORS, SB_SECTOR, SB_SIZE,
};
use core::fmt;

/// The magic of a backing superblock (the cache's, with `BDV` for `CSB`).
pub const BACKING_MAGIC: [u8; 16] = *b"BCACHE_RS\x00BDV\r\n\x1a";
/// The backing superblock version this build writes and reads.
pub const BACKING_VERSION: u32 = 1;
/// The incompat features of a backing superblock this build knows (none).
pub const BACKING_INCOMPAT_KNOWN: u64 = 0;
/// The smallest data offset: 8 KiB, past the superblock.
pub const MIN_DATA_OFFSET: u64 = 16;
/// The default data offset of `format-backing` (8 KiB).
pub const DEFAULT_DATA_OFFSET: u64 = 16;

/// The byte offsets of the backing superblock's fields.
pub mod bsb_field {
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
    pub const UUID: usize = 56;
    /// `[u8; 32]`
    pub const LABEL: usize = 72;
    /// `u64`
    pub const DATA_OFFSET: usize = 104;
    /// `u64`
    pub const SEQ: usize = 112;
    /// `u64`
    pub const CREATED: usize = 120;
    /// `[u8; 16]`
    pub const CACHE_SET: usize = 128;
    /// `u32`
    pub const STATE: usize = 144;
    /// `u32`, zero.
    pub const RESERVED0: usize = 148;
    /// `u64`
    pub const DEVICE_SECTORS: usize = 152;
}

/// A backing device's superblock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackingSb {
    /// The format version, [`BACKING_VERSION`].
    pub version: u32,
    /// Compat feature bits.
    pub compat: u64,
    /// Ro_compat feature bits.
    pub ro_compat: u64,
    /// Incompat feature bits.
    pub incompat: u64,
    /// The device's UUID.
    pub uuid: Uuid,
    /// The label, NUL-padded.
    pub label: [u8; LABEL_SIZE],
    /// The first sector of the data.
    pub data_offset: u64,
    /// The write sequence number.
    pub seq: u64,
    /// The format time.
    pub created: u64,
    /// The cache set it is attached to (nil: none).
    pub cache_set: Uuid,
    /// Clean, or dirty (the cache holds data it does not).
    pub state: DevState,
    /// The device's size in sectors at format time.
    pub device_sectors: u64,
}

/// Why a block is not a valid backing superblock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackingError {
    /// Fewer than [`SB_SIZE`] bytes.
    ShortBuffer {
        /// Its length.
        len: usize,
    },
    /// No backing magic: the device was not formatted with
    /// `format-backing`.
    NotFormatted,
    /// A cache device's superblock: the device is a cache, not a backing
    /// device.
    IsCache,
    /// The crc32c does not match.
    BadCrc {
        /// The crc in the block.
        stored: u32,
        /// The crc of the block.
        computed: u32,
    },
    /// A version this build does not read.
    UnsupportedVersion {
        /// The version found.
        found: u32,
    },
    /// Incompat features this build does not know.
    UnknownIncompatFeatures {
        /// The unknown bits.
        bits: u64,
    },
    /// The superblock says it is elsewhere.
    WrongSbSector {
        /// The sector recorded.
        found: u64,
    },
    /// The nil UUID.
    NilUuid,
    /// A data offset inside the superblock, not 4 KiB-aligned, or past the
    /// device.
    BadDataOffset {
        /// The offset found, in sectors.
        found: u64,
    },
    /// An unknown state.
    BadState {
        /// The value found.
        found: u32,
    },
    /// The device is smaller than its data offset plus a sector.
    DeviceTooSmall {
        /// Sectors needed.
        needed: u64,
        /// Sectors the device has.
        have: u64,
    },
}

impl BackingError {
    /// The negative errno: `-EIO` for a short buffer, `-EBADMSG` for a crc
    /// mismatch, `-EOPNOTSUPP` for an unsupported version or features,
    /// else `-EINVAL`.
    pub fn to_errno(self) -> i32 {
        -match self {
            BackingError::ShortBuffer { .. } => errno::EIO,
            BackingError::BadCrc { .. } => errno::EBADMSG,
            BackingError::UnsupportedVersion { .. }
            | BackingError::UnknownIncompatFeatures { .. } => errno::EOPNOTSUPP,
            _ => errno::EINVAL,
        }
    }
}

impl fmt::Display for BackingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BackingError::ShortBuffer { len } => {
                write!(f, "short backing superblock: {len} bytes of {SB_SIZE}")
            }
            BackingError::NotFormatted => {
                f.write_str("not a bcache_rs backing device (no backing superblock)")
            }
            BackingError::IsCache => f.write_str("a bcache_rs cache device, not a backing device"),
            BackingError::BadCrc { stored, computed } => write!(
                f,
                "backing superblock crc32c mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            BackingError::UnsupportedVersion { found } => write!(
                f,
                "backing superblock version {found}, this build reads version {BACKING_VERSION}"
            ),
            BackingError::UnknownIncompatFeatures { bits } => {
                write!(f, "backing superblock with unknown incompat features {bits:#x}")
            }
            BackingError::WrongSbSector { found } => write!(
                f,
                "backing superblock records sector {found}, it is at sector {SB_SECTOR}"
            ),
            BackingError::NilUuid => f.write_str("backing superblock with the nil UUID"),
            BackingError::BadDataOffset { found } => write!(
                f,
                "backing superblock data offset {found} sectors: not a multiple of {REGION_ALIGN_SECTORS} from {MIN_DATA_OFFSET}, or past the device"
            ),
            BackingError::BadState { found } => {
                write!(f, "backing superblock with unknown state {found}")
            }
            BackingError::DeviceTooSmall { needed, have } => write!(
                f,
                "backing device of {have} sectors, its superblock needs {needed}"
            ),
        }
    }
}

impl BackingSb {
    /// A clean, unattached version [`BACKING_VERSION`] superblock for a
    /// device of `device_sectors`, data at `data_offset`; `seq` and
    /// `created` 0, no label.
    pub fn new(uuid: Uuid, data_offset: u64, device_sectors: u64) -> BackingSb {
        BackingSb {
            version: BACKING_VERSION,
            compat: 0,
            ro_compat: 0,
            incompat: 0,
            uuid,
            label: [0; LABEL_SIZE],
            data_offset,
            seq: 0,
            created: 0,
            cache_set: Uuid([0; 16]),
            state: DevState::Clean,
            device_sectors,
        }
    }

    /// Writes the block, crc included; the reserved bytes are zeroed.
    /// Nothing is checked: [`BackingSb::decode`] the result to check it.
    pub fn encode(&self, out: &mut [u8; SB_SIZE]) {
        use bsb_field as o;
        out.fill(0);
        put_bytes(out, o::MAGIC, &BACKING_MAGIC);
        put_bytes(out, o::VERSION, &self.version.to_le_bytes());
        for (off, v) in [
            (o::SB_SECTOR, SB_SECTOR),
            (o::COMPAT, self.compat),
            (o::RO_COMPAT, self.ro_compat),
            (o::INCOMPAT, self.incompat),
            (o::DATA_OFFSET, self.data_offset),
            (o::SEQ, self.seq),
            (o::CREATED, self.created),
            (o::DEVICE_SECTORS, self.device_sectors),
        ] {
            put_bytes(out, off, &v.to_le_bytes());
        }
        put_bytes(out, o::UUID, &self.uuid.0);
        put_bytes(out, o::LABEL, &self.label);
        put_bytes(out, o::CACHE_SET, &self.cache_set.0);
        put_bytes(out, o::STATE, &(self.state as u32).to_le_bytes());
        let csum = crc_with_hole(out, o::CSUM);
        put_bytes(out, o::CSUM, &csum.to_le_bytes());
    }

    /// Reads and checks a backing superblock from `buf`, the [`SB_SIZE`]
    /// bytes at byte 4096 of the device. Checks, in order: the length, the
    /// magic (a cache's is told apart), the crc, the version, the incompat
    /// features, the recorded sector, the UUID, the state, the data offset
    /// against the recorded size. [`BackingSb::check_device`] checks the
    /// device's current size.
    pub fn decode(buf: &[u8]) -> Result<BackingSb, BackingError> {
        use bsb_field as o;
        let b = buf
            .get(..SB_SIZE)
            .ok_or(BackingError::ShortBuffer { len: buf.len() })?;
        let magic: [u8; 16] = get_bytes(b, o::MAGIC);
        if magic != BACKING_MAGIC {
            return Err(if magic == MAGIC {
                BackingError::IsCache
            } else {
                BackingError::NotFormatted
            });
        }
        let stored = get_u32(b, o::CSUM);
        let computed = crc_with_hole(b, o::CSUM);
        if stored != computed {
            return Err(BackingError::BadCrc { stored, computed });
        }
        let version = get_u32(b, o::VERSION);
        if version != BACKING_VERSION {
            return Err(BackingError::UnsupportedVersion { found: version });
        }
        let incompat = get_u64(b, o::INCOMPAT);
        if incompat & !BACKING_INCOMPAT_KNOWN != 0 {
            return Err(BackingError::UnknownIncompatFeatures {
                bits: incompat & !BACKING_INCOMPAT_KNOWN,
            });
        }
        let sector = get_u64(b, o::SB_SECTOR);
        if sector != SB_SECTOR {
            return Err(BackingError::WrongSbSector { found: sector });
        }
        let uuid = Uuid(get_bytes(b, o::UUID));
        if uuid.is_nil() {
            return Err(BackingError::NilUuid);
        }
        let state = get_u32(b, o::STATE);
        let state = DevState::from_u32(state).ok_or(BackingError::BadState { found: state })?;
        let data_offset = get_u64(b, o::DATA_OFFSET);
        let device_sectors = get_u64(b, o::DEVICE_SECTORS);
        if data_offset < MIN_DATA_OFFSET
            || data_offset % REGION_ALIGN_SECTORS != 0
            || data_offset >= device_sectors
        {
            return Err(BackingError::BadDataOffset { found: data_offset });
        }
        Ok(BackingSb {
            version,
            compat: get_u64(b, o::COMPAT),
            ro_compat: get_u64(b, o::RO_COMPAT),
            incompat,
            uuid,
            label: get_bytes(b, o::LABEL),
            data_offset,
            seq: get_u64(b, o::SEQ),
            created: get_u64(b, o::CREATED),
            cache_set: Uuid(get_bytes(b, o::CACHE_SET)),
            state,
            device_sectors,
        })
    }

    /// Checks that a device of `sectors` still holds the data offset and a
    /// sector of data (it may have grown).
    pub fn check_device(&self, sectors: u64) -> Result<(), BackingError> {
        let needed = self.data_offset.saturating_add(1);
        if sectors < needed {
            return Err(BackingError::DeviceTooSmall {
                needed,
                have: sectors,
            });
        }
        Ok(())
    }

    /// The sectors of data `/dev/bcache_rsN` exposes on a device of
    /// `sectors`.
    pub fn data_sectors(&self, sectors: u64) -> u64 {
        sectors.saturating_sub(self.data_offset)
    }
}
