// SPDX-License-Identifier: GPL-2.0

//! The data checksum table (`sums`): its geometry, and which ranges it has
//! slots for (whole blocks inside one bucket only).

use rkm_bcache::sums::{table_len, SumTable};
use std::sync::atomic::{AtomicU32, Ordering};

fn table(buckets: usize, block: u32, bucket: u32) -> SumTable<Vec<AtomicU32>> {
    let n = table_len(buckets, block, bucket).unwrap();
    SumTable::new((0..n).map(|_| AtomicU32::new(0)).collect(), block, bucket).unwrap()
}

#[test]
fn geometry() {
    assert_eq!(table_len(10, 8, 128), Some(160));
    assert_eq!(table_len(10, 1, 128), Some(1280));
    // Blocks that are not a power of two, or do not divide the bucket.
    assert_eq!(table_len(10, 3, 128), None);
    assert_eq!(table_len(10, 0, 128), None);
    assert_eq!(table_len(10, 256, 128), None);
    assert_eq!(table_len(usize::MAX, 1, 128), None);
    assert!(SumTable::new(Vec::<AtomicU32>::new(), 3, 128).is_none());
    let t = table(4, 8, 128);
    assert_eq!((t.block_sectors(), t.block_bytes()), (8, 4096));
    assert_eq!(t.memory_bytes(), 64 * 4);
}

#[test]
fn slots_are_whole_blocks_of_one_bucket() {
    let t = table(4, 8, 128);
    assert_eq!(t.slots(0, 0, 128).map(<[_]>::len), Some(16));
    assert_eq!(t.slots(3, 120, 8).map(<[_]>::len), Some(1));
    // Not on a block boundary, not whole blocks, past the bucket or the
    // table, empty ranges of whole blocks are fine.
    assert!(t.slots(0, 4, 8).is_none());
    assert!(t.slots(0, 0, 12).is_none());
    assert!(t.slots(0, 120, 16).is_none());
    assert!(t.slots(4, 0, 8).is_none());
    assert!(t.slots(u32::MAX, 0, 8).is_none());
    assert!(t.slots(0, 0, u64::MAX).is_none());
    assert_eq!(t.slots(1, 8, 0).map(<[_]>::len), Some(0));
}

#[test]
fn set_and_match() {
    let t = table(4, 8, 128);
    assert!(t.set(2, 3, &[7, 8, 9]));
    assert!(t.matches(2, 24, 24, &[7, 8, 9]));
    assert!(t.matches(2, 32, 8, &[8]));
    assert!(!t.matches(2, 24, 24, &[7, 8, 10]));
    assert!(!t.matches(2, 24, 16, &[7, 8, 9]));
    // Past the bucket: nothing set.
    assert!(!t.set(2, 15, &[1, 2]));
    assert_eq!(t.slots(2, 120, 8).unwrap()[0].load(Ordering::Relaxed), 0);
    assert!(!t.set(4, 0, &[1]));
}
