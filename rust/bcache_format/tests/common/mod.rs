// SPDX-License-Identifier: GPL-2.0

//! Helpers shared by the superblock and layout tests.

#![allow(dead_code)]

use rkm_bcache_format::*;

pub const KIB: u64 = 1 << 10;
pub const MIB: u64 = 1 << 20;

/// A UUID for tests.
pub const UUID: Uuid = Uuid([
    0x1b, 0x4e, 0x28, 0xba, 0x2f, 0xa1, 0x41, 0xd2, 0x88, 0x3f, 0x00, 0x16, 0xd3, 0xcc, 0xa4, 0x27,
]);

/// A region of `sectors` from `start`.
pub fn reg(start: u64, sectors: u64) -> Region {
    Region { start, sectors }
}

/// The superblock of a `device`-byte cache with the given sizes.
pub fn superblock(device: u64, block: u64, bucket: u64) -> Superblock {
    let layout = Layout::plan(device, block, bucket).expect("valid geometry");
    Superblock::new(layout, UUID)
}

/// The encoded superblock of a `device`-byte cache with the given sizes.
pub fn encoded(device: u64, block: u64, bucket: u64) -> [u8; SB_SIZE] {
    let mut block_buf = [0u8; SB_SIZE];
    superblock(device, block, bucket).encode(&mut block_buf);
    block_buf
}

/// Recomputes the crc of an encoded superblock after an edit.
pub fn reseal(b: &mut [u8; SB_SIZE]) {
    b[sb_field::CSUM..sb_field::CSUM + 4].fill(0);
    let csum = crc32c(b);
    b[sb_field::CSUM..sb_field::CSUM + 4].copy_from_slice(&csum.to_le_bytes());
}

pub fn read_u64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

pub fn write_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

pub fn write_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}
