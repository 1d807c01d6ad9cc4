// SPDX-License-Identifier: GPL-2.0

//! The priorities region (format version 2): each bucket's eviction
//! priority, written with each checkpoint, so that a restored cache
//! evicts what was cold before it was unregistered, not what comes first.
//! No I/O: the module reads and writes the blocks.
//!
//! # Blocks
//!
//! The region holds [`PRIOS_PER_BLOCK`] entries per
//! [`PRIO_BLOCK_SIZE`]-byte block, bucket `i` in block `i /
//! PRIOS_PER_BLOCK`, after a [`PRIO_HEADER_SIZE`]-byte header,
//! little-endian:
//!
//! | offset | size | field | meaning |
//! | --- | --- | --- | --- |
//! | 0 | 4 | csum | crc32c of the cache set's tag (8 bytes) then of the block from byte 4 |
//! | 4 | 4 | index | the block's index in the region |
//! | 8 | 8 | seq | the sequence number of the journal block whose `CHECKPOINT` the priorities go with |
//!
//! An entry is `prio: u16, gen: u8, flags: u8`: the bucket's priority, the
//! low byte of its generation in that checkpoint, and zero. Entries past
//! the last bucket are zero.
//!
//! The priorities are a hint: a block that does not check (torn, of
//! another cache, of another checkpoint: written before the checkpoint's
//! journal block, which a crash then did not write) gives its buckets
//! priority 0, as a cache without them has. Nothing else depends on them.

use super::{crc32c_extend, get_bytes, get_u32, get_u64, put_bytes};
use super::{PRIOS_PER_BLOCK, PRIO_BLOCK_SIZE, PRIO_ENTRY_SIZE, PRIO_HEADER_SIZE};

/// A block of the priorities region.
pub type PrioBlock = [u8; PRIO_BLOCK_SIZE as usize];

/// The crc of a priorities block: of the set's tag, then of the block
/// from its `index` field on.
fn prio_csum(b: &PrioBlock, tag: u64) -> u32 {
    crc32c_extend(
        crc32c_extend(0, &tag.to_le_bytes()),
        b.get(4..).unwrap_or(&[]),
    )
}

/// Fills `b` as block `index` of the priorities of the checkpoint of
/// journal block `seq` in the cache of tag `tag`: entry `i` is
/// `entries(i)`, (priority, generation), for `count` entries (at most
/// [`PRIOS_PER_BLOCK`]).
pub fn encode_prio_block(
    b: &mut PrioBlock,
    tag: u64,
    seq: u64,
    index: u32,
    count: usize,
    entries: &mut dyn FnMut(usize) -> (u8, u32),
) {
    b.fill(0);
    put_bytes(b, 4, &index.to_le_bytes());
    put_bytes(b, 8, &seq.to_le_bytes());
    let n = count.min(PRIOS_PER_BLOCK as usize);
    for i in 0..n {
        let (prio, gen) = entries(i);
        let at = PRIO_HEADER_SIZE as usize + i * PRIO_ENTRY_SIZE as usize;
        put_bytes(b, at, &u16::from(prio).to_le_bytes());
        // The low byte of the generation: a check, not the generation.
        put_bytes(b, at + 2, &[gen as u8]);
    }
    let csum = prio_csum(b, tag);
    put_bytes(b, 0, &csum.to_le_bytes());
}

/// Whether `b` is block `index` of the priorities of the checkpoint of
/// journal block `seq` in the cache of tag `tag`.
pub fn check_prio_block(b: &PrioBlock, tag: u64, seq: u64, index: u32) -> bool {
    get_u32(b, 0) == prio_csum(b, tag) && get_u32(b, 4) == index && get_u64(b, 8) == seq
}

/// Entry `i` of a block that checked: (priority, low byte of the
/// generation); `None` past the block, or for a bad entry (flags set).
pub fn prio_entry(b: &PrioBlock, i: usize) -> Option<(u16, u8)> {
    if i >= PRIOS_PER_BLOCK as usize {
        return None;
    }
    let at = PRIO_HEADER_SIZE as usize + i * PRIO_ENTRY_SIZE as usize;
    let e: [u8; 4] = get_bytes(b, at);
    (e[3] == 0).then(|| (u16::from_le_bytes([e[0], e[1]]), e[2]))
}
