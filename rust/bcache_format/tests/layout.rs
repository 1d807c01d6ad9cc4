// SPDX-License-Identifier: GPL-2.0

//! Layout planning: geometry checks, placement, the least device size and
//! the default bucket size.

mod common;

use common::*;
use proptest::prelude::*;
use rkm_bcache_format::*;

#[test]
fn small_test_images_are_valid() {
    // The module's tests use a 64 MiB image with small buckets.
    for (bucket, nbuckets, first) in [
        (64 * KIB, 1024, 19),
        (128 * KIB, 512, 10),
        (16 * KIB, 4096, 82),
    ] {
        let l = Layout::plan(64 * MIB, 4 * KIB, bucket).unwrap();
        let j = JournalLayout::new(l.journal.sectors).unwrap();
        assert!(
            j.area_blocks * JBLOCK_SIZE as u64 >= checkpoint_bytes(l.nbuckets, bucket, 4 * KIB)
        );
        assert_eq!((l.nbuckets, l.first_bucket), (nbuckets, first), "{bucket}");
        assert_eq!(l.check(), Ok(()));
        assert_eq!(l.device_sectors, 131072);
    }
}

#[test]
fn placement_of_a_large_device() {
    let l = Layout::plan(1 << 40, 4 * KIB, 512 * KIB).unwrap();
    assert_eq!(l.nbuckets, 2 << 20);
    assert_eq!(l.dev_table, reg(16, 64));
    // 2 Mi buckets / 1020 per block = 2057 blocks of 8 sectors.
    assert_eq!(l.prios, reg(80, 2057 * 8));
    // 6461 journal buckets (3.2 GiB, 0.3 % of the device: two
    // checkpoints of 1.35 GiB of data checksums and 2 Mi extents) from
    // bucket 17.
    assert_eq!(l.journal, reg(17 * 1024, 6461 * 1024));
    assert_eq!(l.first_bucket, 17 + 6461);
    assert_eq!(l.check(), Ok(()));
}

#[test]
fn blocks_larger_than_a_page_are_refused() {
    // The largest block (a page, what the kernel's block layer takes)
    // still aligns the regions; larger ones are refused.
    let l = Layout::plan(64 * MIB, 4 * KIB, 64 * KIB).unwrap();
    assert_eq!(l.dev_table.start % 8, 0);
    assert_eq!(l.prios.start % 8, 0);
    assert_eq!(l.check(), Ok(()));
    assert_eq!(
        Layout::plan(64 * MIB, 64 * KIB, 64 * KIB),
        Err(SbError::BadBlockSize { bytes: 64 * KIB })
    );
}

#[test]
fn bad_sizes() {
    let cases = [
        (0, 64 * KIB, SbError::BadBlockSize { bytes: 0 }),
        (256, 64 * KIB, SbError::BadBlockSize { bytes: 256 }),
        (1000, 64 * KIB, SbError::BadBlockSize { bytes: 1000 }),
        (3 * KIB, 64 * KIB, SbError::BadBlockSize { bytes: 3 * KIB }),
        (128 * KIB, MIB, SbError::BadBlockSize { bytes: 128 * KIB }),
        (4 * KIB, 2 * KIB, SbError::BadBucketSize { bytes: 2 * KIB }),
        (
            4 * KIB,
            48 * KIB,
            SbError::BadBucketSize { bytes: 48 * KIB },
        ),
        (
            4 * KIB,
            32 * MIB,
            SbError::BadBucketSize { bytes: 32 * MIB },
        ),
        (
            4 * KIB,
            u64::MAX,
            SbError::BadBucketSize { bytes: u64::MAX },
        ),
        (8 * KIB, 64 * KIB, SbError::BadBlockSize { bytes: 8 * KIB }),
        (16 * KIB, 8 * KIB, SbError::BadBlockSize { bytes: 16 * KIB }),
    ];
    for (block, bucket, err) in cases {
        assert_eq!(Layout::plan(64 * MIB, block, bucket), Err(err));
        assert_eq!(Layout::min_device_bytes(block, bucket), Err(err));
        assert_eq!(check_geometry(block, bucket), Err(err));
    }
    assert_eq!(check_geometry(512, 4 * KIB), Ok((1, 8)));
    assert_eq!(check_geometry(4 * KIB, 16 * MIB), Ok((8, 32768)));
}

#[test]
fn too_small_devices() {
    let min = Layout::min_device_bytes(4 * KIB, 64 * KIB).unwrap();
    // 32 data buckets (1 MiB needs 16) after 3 metadata buckets: a bucket
    // for the superblock, device table and priorities, 2 for the journal.
    assert_eq!(min, 35 * 64 * KIB);
    assert!(Layout::plan(min, 4 * KIB, 64 * KIB).is_ok());
    for have in [0, 1, 4096, min - 64 * KIB, min - 1] {
        assert_eq!(
            Layout::plan(have, 4 * KIB, 64 * KIB),
            Err(SbError::DeviceTooSmall { needed: min, have })
        );
    }
    // 4 KiB buckets: 1 MiB of data takes 256 buckets.
    assert_eq!(min_data_buckets(8), 256);
    assert_eq!(
        Layout::min_device_bytes(4 * KIB, 4 * KIB),
        Ok((256 + 24) * 4 * KIB)
    );
    assert_eq!(min_data_buckets(32768), MIN_DATA_BUCKETS);
    assert_eq!(
        SbError::DeviceTooSmall {
            needed: min,
            have: MIB
        }
        .to_string(),
        "device too small: 1 MiB, a cache of this geometry needs at least 2240 KiB"
    );
}

#[test]
fn default_bucket_sizes() {
    let cases = [
        (1 << 40, 4 * KIB, 512 * KIB),
        (512 * MIB, 4 * KIB, 512 * KIB),
        (256 * MIB, 4 * KIB, 256 * KIB),
        (64 * MIB, 4 * KIB, 64 * KIB),
        (64 * MIB, 512, 64 * KIB),
        (2 * MIB, 4 * KIB, 4 * KIB),
        (0, 512, 4 * KIB),
        (64 * MIB, 64 * KIB, 64 * KIB),
        (4 * MIB, 64 * KIB, 64 * KIB),
    ];
    for (device, block, bucket) in cases {
        assert_eq!(
            Layout::default_bucket_bytes(device, block),
            bucket,
            "{device} {block}"
        );
    }
}

#[test]
fn size_display() {
    let cases = [
        (0, "0 B"),
        (512, "512 B"),
        (1536, "1536 B"),
        (4096, "4 KiB"),
        (3 * MIB, "3 MiB"),
        (MIB + KIB, "1025 KiB"),
        (1 << 40, "1 TiB"),
        (1 << 50, "1024 TiB"),
    ];
    for (bytes, text) in cases {
        assert_eq!(Size(bytes).to_string(), text);
    }
}

proptest! {
    /// Every plan is valid, in order, and uses the least size it claims.
    #[test]
    fn plans_are_valid(bl in 9u32..=12, bu in 12u32..=24, extra in 0u64..(1 << 42), near in any::<bool>()) {
        let (block, bucket) = (1u64 << bl, 1u64 << bu.max(bl));
        let min = Layout::min_device_bytes(block, bucket).unwrap();
        prop_assert_eq!(
            Layout::plan(min - 1, block, bucket),
            Err(SbError::DeviceTooSmall { needed: min, have: min - 1 })
        );
        let device = min + if near { extra % (bucket * 1000) } else { extra };
        let l = Layout::plan(device, block, bucket).unwrap();
        prop_assert_eq!(l.check(), Ok(()));
        prop_assert_eq!(l.nbuckets, device / bucket);
        prop_assert!(l.data_buckets() >= min_data_buckets(l.bucket_sectors));
        prop_assert!(l.dev_table.start >= SB_END_SECTOR);
        prop_assert!(l.dev_table.end() <= Some(l.prios.start));
        prop_assert!(l.prios.end() <= Some(l.journal.start));
        prop_assert_eq!(l.journal.end(), Some(l.data_start_sector()));
        prop_assert!(l.prios.sectors * SECTOR_SIZE / PRIO_BLOCK_SIZE * PRIOS_PER_BLOCK >= l.nbuckets);
        let journal_buckets = l.journal.sectors / u64::from(l.bucket_sectors);
        prop_assert!(journal_buckets >= (l.nbuckets / 128).clamp(2, 256));
        // A checkpoint of a full cache fits each area.
        let j = JournalLayout::new(l.journal.sectors).unwrap();
        prop_assert!(j.area_blocks * JBLOCK_SIZE as u64 >= checkpoint_bytes(l.nbuckets, bucket, block));
        // Sizes above the least one all work (no dip where the metadata grows).
        for k in 1..4 {
            prop_assert!(Layout::plan(min + k * bucket, block, bucket).is_ok());
        }
    }
}
