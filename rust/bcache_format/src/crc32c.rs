// SPDX-License-Identifier: GPL-2.0

//! crc32c (Castagnoli), table-driven in software: the checksum of the
//! superblock and of the device-table entries. The same function as the
//! kernel's `crc32c()` seeded with `!0` and inverted at the end, and as
//! iSCSI's and ext4's: the check value of `"123456789"` is `0xe3069283`.

/// The reflected Castagnoli polynomial.
const POLY: u32 = 0x82f6_3b78;

/// The byte-at-a-time table, built at compile time.
static TABLE: [u32; 256] = make_table();

const fn make_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

/// The crc32c of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c_extend(0, data)
}

/// The crc32c of `a` followed by `data`, given `crc = crc32c(a)`:
/// `crc32c_extend(crc32c(a), b) == crc32c(a ++ b)`.
pub fn crc32c_extend(crc: u32, data: &[u8]) -> u32 {
    let mut state = !crc;
    for &byte in data {
        let index = usize::from((state as u8) ^ byte);
        state = (state >> 8) ^ TABLE[index];
    }
    !state
}
