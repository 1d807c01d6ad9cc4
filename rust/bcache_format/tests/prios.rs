// SPDX-License-Identifier: GPL-2.0

//! The priorities region's blocks: they round trip, and a block of another
//! cache, checkpoint or place, or with any bit flipped, does not check.

use rkm_bcache_format::*;

const TAG: u64 = 0x0123_4567_89ab_cdef;

fn block(count: usize) -> PrioBlock {
    let mut b = [0u8; PRIO_BLOCK_SIZE as usize];
    encode_prio_block(&mut b, TAG, 77, 3, count, &mut |i| {
        ((i % 9) as u8, 0x1_0000 + i as u32)
    });
    b
}

#[test]
fn a_block_round_trips() {
    for count in [
        0,
        1,
        500,
        PRIOS_PER_BLOCK as usize,
        PRIOS_PER_BLOCK as usize + 5,
    ] {
        let b = block(count);
        assert!(check_prio_block(&b, TAG, 77, 3));
        for i in 0..PRIOS_PER_BLOCK as usize {
            let want = if i < count {
                ((i % 9) as u16, i as u8)
            } else {
                (0, 0)
            };
            assert_eq!(prio_entry(&b, i), Some(want), "entry {i} of {count}");
        }
        assert_eq!(prio_entry(&b, PRIOS_PER_BLOCK as usize), None);
    }
}

#[test]
fn a_foreign_or_damaged_block_does_not_check() {
    let b = block(700);
    assert!(!check_prio_block(&b, TAG ^ 1, 77, 3), "another cache");
    assert!(!check_prio_block(&b, TAG, 78, 3), "another checkpoint");
    assert!(!check_prio_block(&b, TAG, 77, 4), "another place");
    assert!(
        !check_prio_block(&[0; PRIO_BLOCK_SIZE as usize], TAG, 0, 0),
        "zeroes"
    );
    for bit in (0..PRIO_BLOCK_SIZE as usize * 8).step_by(61) {
        let mut d = b;
        d[bit / 8] ^= 1 << (bit % 8);
        assert!(!check_prio_block(&d, TAG, 77, 3), "bit {bit}");
    }
    // Flags set: the entry is refused.
    let mut d = b;
    d[PRIO_HEADER_SIZE as usize + 3] = 1;
    assert_eq!(prio_entry(&d, 0), None);
}
