// SPDX-License-Identifier: GPL-2.0

//! crc32c: the standard check value and incremental use.

use proptest::prelude::*;
use rkm_bcache_format::{crc32c, crc32c_extend};

#[test]
fn check_value() {
    assert_eq!(crc32c(b"123456789"), 0xe306_9283);
}

#[test]
fn known_values() {
    assert_eq!(crc32c(b""), 0);
    // RFC 3720 (iSCSI) B.4: 32 bytes of zeros and of ones.
    assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
    assert_eq!(crc32c(&[0xffu8; 32]), 0x62a8_ab43);
    let ascending: Vec<u8> = (0..32).collect();
    assert_eq!(crc32c(&ascending), 0x46dd_794e);
}

proptest! {
    #[test]
    fn extend_is_concatenation(a in proptest::collection::vec(any::<u8>(), 0..300),
                               b in proptest::collection::vec(any::<u8>(), 0..300)) {
        let whole: Vec<u8> = a.iter().chain(&b).copied().collect();
        prop_assert_eq!(crc32c_extend(crc32c(&a), &b), crc32c(&whole));
    }
}
