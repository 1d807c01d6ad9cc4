// SPDX-License-Identifier: GPL-2.0

//! Data checksums (feature `data_csum`): a crc32c of every cache block of
//! the SSD's data buckets, kept in RAM in a flat table indexed by the
//! block's place on the SSD (bucket, block in bucket), verified on every
//! hit, written to each checkpoint (`SUMS` records after each extent's).
//!
//! # Why per block, and by place
//!
//! An extent is a run of sectors of any length, and the data path cuts it:
//! a hit reads any part of one, a write trims one at its ends. A checksum
//! per extent could verify neither a partial hit nor a trimmed extent
//! without reading the rest. Every extent boundary, every hit and every
//! fill is aligned to the cache's block size (a device attaches only if its
//! logical block size is at least the cache's, and every bio is aligned to
//! it), so a checksum per cache block verifies any piece, and a trim
//! changes no checksum. A block's checksum is written when data is written
//! to the block (a fill or a writethrough copy, from pages of ours, before
//! the extent enters the index) and read when a hit of that block
//! completes: the block's bucket is pinned from before the write until the
//! extent is in the index, and from the hit's lookup to its completion, so
//! the two never meet, and no other extent points to the block in between
//! (a bucket is reused only after it was invalidated, and a pinned one
//! never is).
//!
//! # Memory
//!
//! Four bytes per cache block: 8 MiB per GiB of SSD with 512-byte blocks,
//! 1 MiB with 4 KiB blocks.

use core::ops::Deref;
use core::sync::atomic::{AtomicU32, Ordering};

/// The checksums of a cache's data blocks.
///
/// # Invariants
///
/// `block_sectors` is a power of two that divides `bucket_sectors`;
/// `bucket_blocks` is `bucket_sectors / block_sectors`; the table has
/// `bucket_blocks` slots per data bucket.
pub struct SumTable<S> {
    table: S,
    block_sectors: u32,
    bucket_blocks: u32,
}

/// Slots of a table of `buckets` buckets of `bucket_sectors`, with blocks
/// of `block_sectors`; `None` if the geometry is not a table's.
pub fn table_len(buckets: usize, block_sectors: u32, bucket_sectors: u32) -> Option<usize> {
    if !block_sectors.is_power_of_two() || bucket_sectors % block_sectors != 0 {
        return None;
    }
    buckets.checked_mul(usize::try_from(bucket_sectors / block_sectors).ok()?)
}

impl<S: Deref<Target = [AtomicU32]>> SumTable<S> {
    /// The table `table` for blocks of `block_sectors` in buckets of
    /// `bucket_sectors`; `None` if the geometry is not a table's (see
    /// [`table_len`]: `table` may be longer than needed).
    pub fn new(table: S, block_sectors: u32, bucket_sectors: u32) -> Option<Self> {
        table_len(0, block_sectors, bucket_sectors)?;
        // INVARIANT: checked just now.
        Some(Self {
            table,
            block_sectors,
            bucket_blocks: bucket_sectors / block_sectors,
        })
    }

    /// The block size in sectors.
    pub fn block_sectors(&self) -> u32 {
        self.block_sectors
    }

    /// The block size in bytes.
    pub fn block_bytes(&self) -> u32 {
        self.block_sectors * 512
    }

    /// Bytes of the table.
    pub fn memory_bytes(&self) -> usize {
        core::mem::size_of_val(&*self.table)
    }

    /// The block of `bucket` that sector `offset` of it starts, if `offset`
    /// is a block boundary.
    pub fn block_of(&self, offset: u32) -> Option<u32> {
        (offset % self.block_sectors == 0).then_some(offset / self.block_sectors)
    }

    /// The slots of the blocks of `len` sectors at `offset` sectors into
    /// `bucket`: `None` unless the range is whole blocks inside the bucket
    /// and the table has them.
    pub fn slots(&self, bucket: u32, offset: u32, len: u64) -> Option<&[AtomicU32]> {
        let len = u32::try_from(len).ok()?;
        let first = self.block_of(offset)?;
        let n = self.block_of(len)?;
        let end = first.checked_add(n).filter(|&e| e <= self.bucket_blocks)?;
        let base = u64::from(bucket) * u64::from(self.bucket_blocks);
        let from = usize::try_from(base + u64::from(first)).ok()?;
        let to = usize::try_from(base + u64::from(end)).ok()?;
        self.table.get(from..to)
    }

    /// Sets the checksums of `crcs.len()` blocks of `bucket` from its
    /// `block`-th; `false` (nothing set) if the table has no such blocks.
    pub fn set(&self, bucket: u32, block: u32, crcs: &[u32]) -> bool {
        let len = u64::try_from(crcs.len()).unwrap_or(u64::MAX);
        let sectors = len.saturating_mul(u64::from(self.block_sectors));
        let Some(offset) = block.checked_mul(self.block_sectors) else {
            return false;
        };
        match self.slots(bucket, offset, sectors) {
            Some(slots) => {
                for (s, &c) in slots.iter().zip(crcs) {
                    s.store(c, Ordering::Relaxed);
                }
                true
            }
            None => false,
        }
    }

    /// Whether `crcs` are the checksums of the blocks of `len` sectors at
    /// `offset` into `bucket` (`false` if the table has no such blocks).
    pub fn matches(&self, bucket: u32, offset: u32, len: u64, crcs: &[u32]) -> bool {
        self.slots(bucket, offset, len).is_some_and(|slots| {
            slots.len() == crcs.len()
                && slots
                    .iter()
                    .zip(crcs)
                    .all(|(s, &c)| s.load(Ordering::Relaxed) == c)
        })
    }
}
