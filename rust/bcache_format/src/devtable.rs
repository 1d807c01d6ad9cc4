// SPDX-License-Identifier: GPL-2.0

//! The device table: one entry per backing device attached to the cache,
//! reserved by this version (the formatter zeroes it) for persistence.
//!
//! The table has [`DEV_TABLE_ENTRIES`] slots of [`DEV_ENTRY_SIZE`] bytes; a
//! slot's index is the device's number in the cache's index (8 bits, as in
//! the bcache RFC). An all-zero slot is free. An entry, little-endian
//! (offsets in [`dev_field`]):
//!
//! | offset | size | field | meaning |
//! | --- | --- | --- | --- |
//! | 0 | 16 | uuid | the UUID given to `register_dev`, not nil |
//! | 16 | 8 | sectors | backing device size when attached |
//! | 24 | 8 | data_offset | first sector of the data on the backing device: 0, in place |
//! | 32 | 8 | flags | none defined yet; not checked |
//! | 40 | 4 | cache_mode | [`CacheMode`] |
//! | 44 | 4 | state | [`DevState`] |
//! | 48 | 32 | label | NUL-padded bytes, informational |
//! | 80 | 8 | created | attach time, seconds since the Unix epoch |
//! | 88 | 36 | reserved | written as zero, not checked |
//! | 124 | 4 | csum | crc32c of bytes 0..124 |
//!
//! Each entry has its own crc, so that one entry is rewritten without
//! reading its neighbours.

use super::{crc32c, errno, get_bytes, get_u32, get_u64, put_bytes, Uuid, LABEL_SIZE};
use core::fmt;

/// The size of a device-table entry.
pub const DEV_ENTRY_SIZE: usize = 128;
/// The slots of the device table.
pub const DEV_TABLE_ENTRIES: usize = 256;
/// The size of the device table.
pub const DEV_TABLE_BYTES: u64 = (DEV_ENTRY_SIZE * DEV_TABLE_ENTRIES) as u64;

/// The byte offsets of the entry fields.
pub mod dev_field {
    /// `[u8; 16]`
    pub const UUID: usize = 0;
    /// `u64`
    pub const SECTORS: usize = 16;
    /// `u64`
    pub const DATA_OFFSET: usize = 24;
    /// `u64`
    pub const FLAGS: usize = 32;
    /// `u32`
    pub const CACHE_MODE: usize = 40;
    /// `u32`
    pub const STATE: usize = 44;
    /// `[u8; 32]`
    pub const LABEL: usize = 48;
    /// `u64`
    pub const CREATED: usize = 80;
    /// The first reserved byte.
    pub const RESERVED: usize = 88;
    /// `u32`
    pub const CSUM: usize = 124;
}

/// How the cache treats a backing device's writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheMode {
    /// Writes go to the backing device and the cache (the default).
    Writethrough = 0,
    /// Writes complete in the cache and are written back later.
    Writeback = 1,
    /// Writes go to the backing device only.
    Writearound = 2,
    /// The device is attached but not cached.
    None = 3,
}

impl CacheMode {
    /// The mode of an on-disk value.
    pub fn from_u32(value: u32) -> Option<CacheMode> {
        [
            CacheMode::Writethrough,
            CacheMode::Writeback,
            CacheMode::Writearound,
            CacheMode::None,
        ]
        .into_iter()
        .find(|m| *m as u32 == value)
    }
}

/// Whether the cache holds data the backing device does not have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DevState {
    /// The backing device is up to date.
    Clean = 0,
    /// The cache holds dirty data for the device (writeback).
    Dirty = 1,
}

impl DevState {
    /// The state of an on-disk value.
    pub fn from_u32(value: u32) -> Option<DevState> {
        [DevState::Clean, DevState::Dirty]
            .into_iter()
            .find(|s| *s as u32 == value)
    }
}

/// A device-table entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DevEntry {
    /// The device's UUID.
    pub uuid: Uuid,
    /// The backing device size in sectors.
    pub sectors: u64,
    /// The first data sector on the backing device (0: in place).
    pub data_offset: u64,
    /// Flags.
    pub flags: u64,
    /// The cache mode.
    pub cache_mode: CacheMode,
    /// The state.
    pub state: DevState,
    /// The label, NUL-padded.
    pub label: [u8; LABEL_SIZE],
    /// The attach time in seconds since the Unix epoch.
    pub created: u64,
}

/// Why a device-table entry is not valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DevEntryError {
    /// The buffer holds fewer than [`DEV_ENTRY_SIZE`] bytes.
    ShortBuffer {
        /// Its length.
        len: usize,
    },
    /// The crc32c does not match.
    BadCrc {
        /// The crc in the entry.
        stored: u32,
        /// The crc of the entry.
        computed: u32,
    },
    /// A used entry with the nil UUID.
    NilUuid,
    /// An unknown cache mode.
    BadCacheMode {
        /// The value found.
        found: u32,
    },
    /// An unknown state.
    BadState {
        /// The value found.
        found: u32,
    },
}

impl DevEntryError {
    /// The negative errno: `-EIO` for a short buffer, `-EBADMSG` for a crc
    /// mismatch, else `-EINVAL`.
    pub fn to_errno(self) -> i32 {
        -match self {
            DevEntryError::ShortBuffer { .. } => errno::EIO,
            DevEntryError::BadCrc { .. } => errno::EBADMSG,
            _ => errno::EINVAL,
        }
    }
}

impl fmt::Display for DevEntryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DevEntryError::ShortBuffer { len } => {
                write!(f, "short device-table entry: {len} bytes of {DEV_ENTRY_SIZE}")
            }
            DevEntryError::BadCrc { stored, computed } => write!(
                f,
                "device-table entry crc32c mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            DevEntryError::NilUuid => f.write_str("device-table entry with the nil UUID"),
            DevEntryError::BadCacheMode { found } => {
                write!(f, "device-table entry with unknown cache mode {found}")
            }
            DevEntryError::BadState { found } => {
                write!(f, "device-table entry with unknown state {found}")
            }
        }
    }
}

impl DevEntry {
    /// A clean, writethrough, in-place entry for a device of `sectors`.
    pub fn new(uuid: Uuid, sectors: u64) -> DevEntry {
        DevEntry {
            uuid,
            sectors,
            data_offset: 0,
            flags: 0,
            cache_mode: CacheMode::Writethrough,
            state: DevState::Clean,
            label: [0; LABEL_SIZE],
            created: 0,
        }
    }

    /// Writes the entry, crc included; the reserved bytes are zeroed.
    pub fn encode(&self, out: &mut [u8; DEV_ENTRY_SIZE]) {
        use dev_field as o;
        out.fill(0);
        put_bytes(out, o::UUID, &self.uuid.0);
        put_bytes(out, o::SECTORS, &self.sectors.to_le_bytes());
        put_bytes(out, o::DATA_OFFSET, &self.data_offset.to_le_bytes());
        put_bytes(out, o::FLAGS, &self.flags.to_le_bytes());
        put_bytes(out, o::CACHE_MODE, &(self.cache_mode as u32).to_le_bytes());
        put_bytes(out, o::STATE, &(self.state as u32).to_le_bytes());
        put_bytes(out, o::LABEL, &self.label);
        put_bytes(out, o::CREATED, &self.created.to_le_bytes());
        let csum = crc32c(out.get(..o::CSUM).unwrap_or(&[]));
        put_bytes(out, o::CSUM, &csum.to_le_bytes());
    }

    /// Reads an entry from the first [`DEV_ENTRY_SIZE`] bytes of `buf`:
    /// `None` for a free (all-zero) slot.
    pub fn decode(buf: &[u8]) -> Result<Option<DevEntry>, DevEntryError> {
        use dev_field as o;
        let b = buf
            .get(..DEV_ENTRY_SIZE)
            .ok_or(DevEntryError::ShortBuffer { len: buf.len() })?;
        if b.iter().all(|&x| x == 0) {
            return Ok(None);
        }
        let stored = get_u32(b, o::CSUM);
        let computed = crc32c(b.get(..o::CSUM).unwrap_or(&[]));
        if stored != computed {
            return Err(DevEntryError::BadCrc { stored, computed });
        }
        let uuid = Uuid(get_bytes(b, o::UUID));
        if uuid.is_nil() {
            return Err(DevEntryError::NilUuid);
        }
        let mode = get_u32(b, o::CACHE_MODE);
        let cache_mode =
            CacheMode::from_u32(mode).ok_or(DevEntryError::BadCacheMode { found: mode })?;
        let state = get_u32(b, o::STATE);
        let state = DevState::from_u32(state).ok_or(DevEntryError::BadState { found: state })?;
        Ok(Some(DevEntry {
            uuid,
            sectors: get_u64(b, o::SECTORS),
            data_offset: get_u64(b, o::DATA_OFFSET),
            flags: get_u64(b, o::FLAGS),
            cache_mode,
            state,
            label: get_bytes(b, o::LABEL),
            created: get_u64(b, o::CREATED),
        }))
    }
}
