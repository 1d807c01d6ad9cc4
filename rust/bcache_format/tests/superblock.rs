// SPDX-License-Identifier: GPL-2.0

//! Superblock encoding: round trips, and every corruption rejected with its
//! precise reason.

mod common;

use common::*;
use proptest::prelude::*;
use rkm_bcache_format::*;

/// The base image: 64 MiB, 4 KiB blocks, 64 KiB buckets (1024 buckets).
/// A 64 MiB cache of 64 KiB buckets and 4 KiB blocks, with the journal of
/// 8 buckets that the formatter placed before data checksums (a reader
/// takes any valid placement; the formatter's own is tested in layout.rs).
fn base() -> [u8; SB_SIZE] {
    let mut sb = superblock(64 * MIB, 4 * KIB, 64 * KIB);
    sb.layout.journal = Region {
        start: 128,
        sectors: 1024,
    };
    sb.layout.first_bucket = 9;
    let mut b = [0u8; SB_SIZE];
    sb.encode(&mut b);
    b
}

/// Applies `edit` to the base image, recomputes the crc and decodes.
fn decode_edited(edit: impl FnOnce(&mut [u8; SB_SIZE])) -> Result<Superblock, SbError> {
    let mut b = base();
    edit(&mut b);
    reseal(&mut b);
    Superblock::decode(&b)
}

fn one_line(e: &SbError) -> String {
    let msg = e.to_string();
    assert!(!msg.is_empty() && !msg.contains('\n'), "{msg}");
    msg
}

#[test]
fn layout_of_the_base_image() {
    let sb = Superblock::decode(&base()).expect("valid");
    let l = sb.layout;
    assert_eq!(l.device_sectors, 131072);
    assert_eq!((l.block_sectors, l.bucket_sectors), (8, 128));
    assert_eq!(
        (l.nbuckets, l.first_bucket, l.data_buckets()),
        (1024, 9, 1015)
    );
    assert_eq!(l.dev_table, reg(16, 64));
    assert_eq!(l.prios, reg(80, 16));
    assert_eq!(l.journal, reg(128, 1024));
    assert_eq!(l.data_start_sector(), 1152);
    assert_eq!(l.bucket_sector(9), Some(1152));
    assert_eq!(l.bucket_sector(1024), None);
    assert_eq!(sb.version, VERSION);
    assert!(sb.persistent());
    assert_eq!(sb.set_uuid, UUID);
    assert_eq!(sb.label_bytes(), b"");
    assert_eq!(sb.check_device(64 * MIB), Ok(()));
    assert_eq!(sb.check_writable(), Ok(()));
}

#[test]
fn fixed_field_bytes() {
    let b = base();
    assert_eq!(&b[..16], &MAGIC);
    assert_eq!(
        &b[16..20],
        &crc32c_of_block_with_zero_csum(&b).to_le_bytes()
    );
    assert_eq!(&b[20..24], &2u32.to_le_bytes());
    assert_eq!(
        read_u64(&b, 48),
        FEATURE_INCOMPAT_PERSISTENT_INDEX | FEATURE_INCOMPAT_DATA_CSUM
    );
    assert_eq!(read_u64(&b, 24), 8);
    assert_eq!(&b[56..72], &UUID.0);
    assert_eq!(read_u64(&b, 128), 131072);
    assert_eq!(&b[136..144], &[8, 0, 0, 0, 128, 0, 0, 0]);
    assert_eq!(read_u64(&b, 144), 1024);
    assert_eq!(read_u64(&b, 152), 9);
    assert_eq!([read_u64(&b, 160), read_u64(&b, 168)], [16, 64]);
    assert_eq!([read_u64(&b, 176), read_u64(&b, 184)], [80, 16]);
    assert_eq!([read_u64(&b, 192), read_u64(&b, 200)], [128, 1024]);
    assert!(b[sb_field::RESERVED..].iter().all(|&x| x == 0));
}

fn crc32c_of_block_with_zero_csum(b: &[u8; SB_SIZE]) -> u32 {
    let mut copy = *b;
    copy[16..20].fill(0);
    crc32c(&copy)
}

#[test]
fn every_field_round_trips() {
    let mut sb = superblock(64 * MIB, 4 * KIB, 64 * KIB);
    sb.compat = 0x8000_0000_0000_0001;
    sb.ro_compat = 0;
    sb.flags = u64::MAX;
    sb.seq = 0x0102_0304_0506_0708;
    sb.created = 1_700_000_000;
    sb.label = make_label(b"ssd cache \xe2\x9c\x93").unwrap();
    let mut b = [0xa5u8; SB_SIZE];
    sb.encode(&mut b);
    assert_eq!(Superblock::decode(&b), Ok(sb));
    assert_eq!(sb.label_bytes(), b"ssd cache \xe2\x9c\x93");
    // Longer buffers are fine: only the first block counts.
    let mut long = vec![0xffu8; 2 * SB_SIZE];
    long[..SB_SIZE].copy_from_slice(&b);
    assert_eq!(Superblock::decode(&long), Ok(sb));
}

#[test]
fn labels() {
    assert_eq!(make_label(b""), Some([0; LABEL_SIZE]));
    assert!(make_label(&[b'x'; LABEL_SIZE]).is_some());
    assert_eq!(make_label(&[b'x'; LABEL_SIZE + 1]), None);
    assert_eq!(make_label(b"a\0b"), None);
    let mut sb = superblock(64 * MIB, 4 * KIB, 64 * KIB);
    sb.label = [b'x'; LABEL_SIZE];
    assert_eq!(sb.label_bytes(), &[b'x'; LABEL_SIZE]);
}

#[test]
fn truncated_buffers() {
    let b = base();
    for len in (0..SB_SIZE).step_by(97).chain([SB_SIZE - 1]) {
        let err = Superblock::decode(&b[..len]).unwrap_err();
        assert_eq!(err, SbError::ShortBuffer { len });
        assert_eq!(err.to_errno(), -5);
        one_line(&err);
    }
}

#[test]
fn blank_and_foreign_blocks() {
    assert_eq!(
        Superblock::decode(&[0u8; SB_SIZE]),
        Err(SbError::NotFormatted)
    );
    assert_eq!(
        Superblock::decode(&[0xffu8; SB_SIZE]),
        Err(SbError::NotFormatted)
    );
    // Another magic, however valid the rest.
    assert_eq!(
        decode_edited(|b| b[..16].fill(0)),
        Err(SbError::NotFormatted)
    );
    let mut c = [0u8; SB_SIZE];
    c[C_BCACHE_MAGIC_OFFSET..C_BCACHE_MAGIC_OFFSET + 16].copy_from_slice(&C_BCACHE_MAGIC);
    assert_eq!(Superblock::decode(&c), Err(SbError::ForeignBcache));
    assert_eq!(SbError::NotFormatted.to_errno(), -22);
    assert_eq!(SbError::ForeignBcache.to_errno(), -22);
    assert_eq!(
        SbError::NotFormatted.to_string(),
        "not formatted: no bcache_rs superblock at byte 4096"
    );
}

#[test]
fn damaged_magic() {
    for byte in 0..16 {
        let mut b = base();
        b[byte] ^= 0x40;
        let mut found = MAGIC;
        found[byte] ^= 0x40;
        assert_eq!(Superblock::decode(&b), Err(SbError::BadMagic { found }));
    }
    // Four bytes wrong is still damage; five is another format.
    let mut b = base();
    b[..4].fill(0xee);
    assert!(matches!(
        Superblock::decode(&b),
        Err(SbError::BadMagic { .. })
    ));
    b[4] = 0xee;
    assert_eq!(Superblock::decode(&b), Err(SbError::NotFormatted));
    let e = SbError::BadMagic { found: [0xab; 16] };
    assert_eq!(e.to_errno(), -22);
    assert_eq!(
        one_line(&e),
        "damaged superblock: bad magic abababababababababababababababab"
    );
}

#[test]
fn every_bit_flip_is_rejected() {
    let b = base();
    for bit in 0..SB_SIZE * 8 {
        let mut c = b;
        c[bit / 8] ^= 1 << (bit % 8);
        let err = Superblock::decode(&c).unwrap_err();
        if bit < 128 {
            assert!(
                matches!(err, SbError::BadMagic { .. }),
                "bit {bit}: {err:?}"
            );
        } else {
            assert!(matches!(err, SbError::BadCrc { .. }), "bit {bit}: {err:?}");
        }
    }
}

#[test]
fn bad_crc_names_both_values() {
    let mut b = base();
    let good = u32::from_le_bytes(b[16..20].try_into().unwrap());
    b[16..20].copy_from_slice(&0xdead_beefu32.to_le_bytes());
    let err = Superblock::decode(&b).unwrap_err();
    assert_eq!(
        err,
        SbError::BadCrc {
            stored: 0xdead_beef,
            computed: good
        }
    );
    assert_eq!(err.to_errno(), -74);
    assert_eq!(
        one_line(&err),
        format!("superblock crc32c mismatch: stored 0xdeadbeef, computed {good:#010x}")
    );
}

type Edit = Box<dyn Fn(&mut [u8; SB_SIZE])>;

fn set64(off: usize, v: u64) -> Edit {
    Box::new(move |b| write_u64(b, off, v))
}

fn set32(off: usize, v: u32) -> Edit {
    Box::new(move |b| write_u32(b, off, v))
}

/// Each semantic corruption of the base image, with the crc recomputed,
/// gives its own error.
#[test]
fn every_field_corruption_has_its_reason() {
    use sb_field as o;
    use RegionKind::*;
    let (dt, pr, jo) = (o::DEV_TABLE, o::PRIOS, o::JOURNAL);
    let cases: Vec<(&str, Edit, SbError)> = vec![
        (
            "version 3",
            set32(o::VERSION, 3),
            SbError::UnsupportedVersion { found: 3 },
        ),
        (
            "version 0",
            set32(o::VERSION, 0),
            SbError::UnsupportedVersion { found: 0 },
        ),
        (
            "incompat",
            set64(o::INCOMPAT, 1 << 5),
            SbError::UnknownIncompatFeatures { bits: 1 << 5 },
        ),
        (
            "sb sector",
            set64(o::SB_SECTOR, 0),
            SbError::WrongSbSector { found: 0 },
        ),
        (
            "nil uuid",
            Box::new(|b| b[o::SET_UUID..o::SET_UUID + 16].fill(0)),
            SbError::NilSetUuid,
        ),
        (
            "block 0",
            set32(o::BLOCK_SECTORS, 0),
            SbError::BadBlockSize { bytes: 0 },
        ),
        (
            "block 3 sectors",
            set32(o::BLOCK_SECTORS, 3),
            SbError::BadBlockSize { bytes: 1536 },
        ),
        (
            "block 128 KiB",
            set32(o::BLOCK_SECTORS, 256),
            SbError::BadBlockSize { bytes: 128 * KIB },
        ),
        (
            "block u32::MAX",
            set32(o::BLOCK_SECTORS, u32::MAX),
            SbError::BadBlockSize {
                bytes: u64::from(u32::MAX) * 512,
            },
        ),
        (
            "bucket 0",
            set32(o::BUCKET_SECTORS, 0),
            SbError::BadBucketSize { bytes: 0 },
        ),
        (
            "bucket 2 KiB",
            set32(o::BUCKET_SECTORS, 4),
            SbError::BadBucketSize { bytes: 2 * KIB },
        ),
        (
            "bucket 32 MiB",
            set32(o::BUCKET_SECTORS, 65536),
            SbError::BadBucketSize { bytes: 32 * MIB },
        ),
        (
            "bucket 96 sectors",
            set32(o::BUCKET_SECTORS, 96),
            SbError::BadBucketSize { bytes: 48 * KIB },
        ),
        (
            "nbuckets + 1",
            set64(o::NBUCKETS, 1025),
            SbError::BucketsBeyondDevice {
                nbuckets: 1025,
                bucket_sectors: 128,
                device_sectors: 131072,
            },
        ),
        (
            "nbuckets overflow",
            set64(o::NBUCKETS, u64::MAX / 64),
            SbError::BucketsBeyondDevice {
                nbuckets: u64::MAX / 64,
                bucket_sectors: 128,
                device_sectors: 131072,
            },
        ),
        (
            "device shrunk",
            set64(o::DEVICE_SECTORS, 131071),
            SbError::BucketsBeyondDevice {
                nbuckets: 1024,
                bucket_sectors: 128,
                device_sectors: 131071,
            },
        ),
        (
            "few data buckets",
            set64(o::NBUCKETS, 40),
            SbError::TooFewBuckets {
                data_buckets: 31,
                min: 32,
            },
        ),
        (
            "first bucket = nbuckets",
            set64(o::FIRST_BUCKET, 1024),
            SbError::TooFewBuckets {
                data_buckets: 0,
                min: 32,
            },
        ),
        (
            "first bucket max",
            set64(o::FIRST_BUCKET, u64::MAX),
            SbError::TooFewBuckets {
                data_buckets: 0,
                min: 32,
            },
        ),
        (
            "first bucket - 1",
            set64(o::FIRST_BUCKET, 8),
            SbError::RegionOutOfBounds {
                region: Journal,
                start: 128,
                sectors: 1024,
                limit: 1024,
            },
        ),
        (
            "first bucket 0",
            set64(o::FIRST_BUCKET, 0),
            SbError::RegionOutOfBounds {
                region: DevTable,
                start: 16,
                sectors: 64,
                limit: 0,
            },
        ),
        (
            "dev table misaligned",
            set64(dt, 17),
            SbError::MisalignedRegion {
                region: DevTable,
                start: 17,
                sectors: 64,
                align: 8,
            },
        ),
        (
            "dev table length misaligned",
            set64(dt + 8, 65),
            SbError::MisalignedRegion {
                region: DevTable,
                start: 16,
                sectors: 65,
                align: 8,
            },
        ),
        (
            "dev table on the superblock",
            set64(dt, 8),
            SbError::RegionOutOfBounds {
                region: DevTable,
                start: 8,
                sectors: 64,
                limit: 1152,
            },
        ),
        (
            "dev table at 0",
            set64(dt, 0),
            SbError::RegionOutOfBounds {
                region: DevTable,
                start: 0,
                sectors: 64,
                limit: 1152,
            },
        ),
        (
            "dev table overflows",
            set64(dt, u64::MAX - 7),
            SbError::RegionOutOfBounds {
                region: DevTable,
                start: u64::MAX - 7,
                sectors: 64,
                limit: 1152,
            },
        ),
        (
            "dev table in the data",
            set64(dt, 1152),
            SbError::RegionOutOfBounds {
                region: DevTable,
                start: 1152,
                sectors: 64,
                limit: 1152,
            },
        ),
        (
            "dev table small",
            set64(dt + 8, 56),
            SbError::RegionTooSmall {
                region: DevTable,
                sectors: 56,
                needed: 64,
            },
        ),
        (
            "prios empty",
            set64(pr + 8, 0),
            SbError::RegionTooSmall {
                region: Prios,
                sectors: 0,
                needed: 16,
            },
        ),
        (
            "prios small",
            set64(pr + 8, 8),
            SbError::RegionTooSmall {
                region: Prios,
                sectors: 8,
                needed: 16,
            },
        ),
        (
            "prios misaligned",
            set64(pr, 84),
            SbError::MisalignedRegion {
                region: Prios,
                start: 84,
                sectors: 16,
                align: 8,
            },
        ),
        (
            "prios on the dev table",
            set64(pr, 72),
            SbError::LayoutOverlap {
                a: DevTable,
                b: Prios,
            },
        ),
        (
            "prios on the journal",
            set64(pr, 128),
            SbError::LayoutOverlap {
                a: Prios,
                b: Journal,
            },
        ),
        (
            "dev table on the journal",
            set64(dt, 1088),
            SbError::LayoutOverlap {
                a: DevTable,
                b: Journal,
            },
        ),
        (
            "journal on the prios",
            set64(jo, 0),
            SbError::RegionOutOfBounds {
                region: Journal,
                start: 0,
                sectors: 1024,
                limit: 1152,
            },
        ),
        (
            "journal misaligned",
            set64(jo, 136),
            SbError::MisalignedRegion {
                region: Journal,
                start: 136,
                sectors: 1024,
                align: 128,
            },
        ),
        (
            "journal one bucket",
            set64(jo + 8, 128),
            SbError::RegionTooSmall {
                region: Journal,
                sectors: 128,
                needed: 256,
            },
        ),
        (
            "journal into the data",
            set64(jo + 8, 1152),
            SbError::RegionOutOfBounds {
                region: Journal,
                start: 128,
                sectors: 1152,
                limit: 1152,
            },
        ),
    ];
    for (name, edit, want) in cases {
        let got = decode_edited(|b| edit(b));
        assert_eq!(got, Err(want), "{name}");
        let unsupported = matches!(
            want,
            SbError::UnsupportedVersion { .. } | SbError::UnknownIncompatFeatures { .. }
        );
        assert_eq!(
            want.to_errno(),
            if unsupported { -95 } else { -22 },
            "{name}"
        );
        one_line(&want);
    }
}

#[test]
fn blocks_larger_than_a_page_on_disk() {
    // A superblock with 16 KiB blocks (which earlier formatters wrote): the
    // kernel could never use it, so it is refused whatever its buckets.
    let mut b = encoded(16 * MIB, 4 * KIB, 8 * KIB);
    write_u32(&mut b, sb_field::BLOCK_SECTORS, 32);
    reseal(&mut b);
    let err = Superblock::decode(&b).unwrap_err();
    assert_eq!(err, SbError::BadBlockSize { bytes: 16 * KIB });
    assert_eq!(
        one_line(&err),
        "bad block size 16 KiB: must be a power of two from 512 B to 4 KiB"
    );
    // The bucket-smaller-than-block message stays for any other reader.
    assert_eq!(
        one_line(&SbError::BucketSmallerThanBlock {
            block_bytes: 4 * KIB,
            bucket_bytes: 2 * KIB
        }),
        "bucket size 2 KiB is smaller than block size 4 KiB"
    );
}

/// What a reader must accept: fields it does not check, compat features,
/// and another formatter's placement.
#[test]
fn tolerated_changes() {
    use sb_field as o;
    let cases: Vec<(&str, Edit)> = vec![
        ("compat", set64(o::COMPAT, u64::MAX)),
        ("flags", set64(o::FLAGS, 3)),
        ("seq", set64(o::SEQ, 99)),
        ("created", set64(o::CREATED, 1)),
        ("label", Box::new(|b| b[o::LABEL..o::LABEL + 32].fill(0xff))),
        ("reserved", Box::new(|b| b[o::RESERVED..].fill(0x5a))),
        ("larger device", set64(o::DEVICE_SECTORS, 1 << 40)),
        ("gap before data", set64(o::FIRST_BUCKET, 10)),
        ("larger prios", set64(o::PRIOS + 8, 48)),
        (
            "regions in another order",
            Box::new(|b| {
                write_u64(b, o::PRIOS, 16);
                write_u64(b, o::DEV_TABLE, 32);
            }),
        ),
    ];
    for (name, edit) in cases {
        let sb = decode_edited(|b| edit(b));
        assert!(sb.is_ok(), "{name}: {sb:?}");
    }
}

#[test]
fn ro_compat_features_forbid_writing() {
    let sb = decode_edited(|b| write_u64(b, sb_field::RO_COMPAT, 1 << 3)).expect("readable");
    let err = sb.check_writable().unwrap_err();
    assert_eq!(err, SbError::UnknownRoCompatFeatures { bits: 8 });
    assert_eq!(err.to_errno(), -30);
    one_line(&err);
}

#[test]
fn device_size_checks() {
    let sb = Superblock::decode(&base()).unwrap();
    assert_eq!(sb.check_device(64 * MIB), Ok(()));
    assert_eq!(sb.check_device(1 << 40), Ok(()));
    let err = sb.check_device(64 * MIB - 1).unwrap_err();
    assert_eq!(
        err,
        SbError::DeviceTooSmall {
            needed: 64 * MIB,
            have: 64 * MIB - 1
        }
    );
    assert_eq!(err.to_errno(), -22);
    assert_eq!(
        one_line(&err),
        "device too small: 67108863 B, a cache of this geometry needs at least 64 MiB"
    );
}

#[test]
fn messages_are_one_line_and_name_the_values() {
    let cases = [
        (
            SbError::ShortBuffer { len: 512 },
            "short superblock read: 512 bytes of 4096",
        ),
        (
            SbError::UnsupportedVersion { found: 7 },
            "unsupported superblock version 7 (this build reads versions 1 and 2)",
        ),
        (
            SbError::UnknownIncompatFeatures { bits: 0x30 },
            "unknown incompatible features 0x30",
        ),
        (
            SbError::BadBlockSize { bytes: 1536 },
            "bad block size 1536 B: must be a power of two from 512 B to 4 KiB",
        ),
        (
            SbError::BadBucketSize { bytes: 32 * MIB },
            "bad bucket size 32 MiB: must be a power of two from 4 KiB to 16 MiB",
        ),
        (
            SbError::TooFewBuckets {
                data_buckets: 3,
                min: 32,
            },
            "3 data buckets, a cache needs at least 32",
        ),
        (
            SbError::LayoutOverlap {
                a: RegionKind::DevTable,
                b: RegionKind::Prios,
            },
            "device table and priorities regions overlap",
        ),
        (
            SbError::RegionOutOfBounds {
                region: RegionKind::Journal,
                start: 0,
                sectors: 8,
                limit: 64,
            },
            "journal region (sector 0, 8 sectors) is outside the metadata area, sectors 16..64",
        ),
    ];
    for (err, text) in cases {
        assert_eq!(one_line(&err), text);
    }
}

/// Sizes a valid cache may have: block 2^9..=2^12, bucket 2^12..=2^24, and
/// a device from the least size for them up to 2^44 bytes more.
fn geometry() -> impl Strategy<Value = (u64, u64, u64)> {
    (9u32..=12, 12u32..=24, 0u64..(1 << 44), any::<bool>()).prop_map(|(bl, bu, extra, small)| {
        let (block, bucket) = (1u64 << bl, 1u64 << bu.max(bl));
        let min = Layout::min_device_bytes(block, bucket).unwrap();
        // Half the cases near the least size, where rounding matters.
        let extra = if small { extra % (bucket * 300) } else { extra };
        (min + extra, block, bucket)
    })
}

proptest! {
    #[test]
    fn round_trip(
        (device, block, bucket) in geometry(),
        uuid in any::<[u8; 16]>().prop_filter("not nil", |u| *u != [0; 16]),
        label in proptest::collection::vec(1u8..=255, 0..=LABEL_SIZE),
        (compat, flags, seq, created) in any::<(u64, u64, u64, u64)>(),
    ) {
        let mut sb = Superblock::new(Layout::plan(device, block, bucket).unwrap(), Uuid(uuid));
        sb.label = make_label(&label).unwrap();
        (sb.compat, sb.flags, sb.seq, sb.created) = (compat, flags, seq, created);
        let mut b = [0u8; SB_SIZE];
        sb.encode(&mut b);
        prop_assert_eq!(Superblock::decode(&b), Ok(sb));
        prop_assert_eq!(sb.check_device(device), Ok(()));
        prop_assert_eq!(sb.label_bytes(), &label[..]);
    }

    #[test]
    fn decode_never_panics(mut bytes in proptest::collection::vec(any::<u8>(), SB_SIZE..=SB_SIZE),
                           fields in proptest::collection::vec((0usize..26, any::<u64>()), 0..6)) {
        // With the magic and a valid crc, so that the checks after them run.
        bytes[..16].copy_from_slice(&MAGIC);
        let mut b: [u8; SB_SIZE] = bytes.try_into().unwrap();
        write_u32(&mut b, sb_field::VERSION, VERSION);
        write_u64(&mut b, sb_field::INCOMPAT, 0);
        write_u64(&mut b, sb_field::SB_SECTOR, SB_SECTOR);
        for (slot, v) in fields {
            write_u64(&mut b, 24 + slot * 8, v);
        }
        reseal(&mut b);
        if let Err(e) = Superblock::decode(&b) {
            one_line(&e);
        }
    }
}

#[test]
fn block_sizes_above_the_block_layers_are_refused() {
    // Linux 6.12 takes logical blocks of at most a page (4 KiB): a cache of
    // 8 KiB blocks could never be attached.
    assert!(check_geometry(4096, 65536).is_ok());
    for bytes in [8192, 16384, 65536] {
        assert_eq!(
            check_geometry(bytes, 1 << 20),
            Err(SbError::BadBlockSize { bytes }),
            "{bytes}"
        );
    }
}

/// A version-1 superblock still reads (no persistent index), and its
/// upgrade is a valid version-2 superblock of the same cache.
#[test]
fn version_1_reads_and_upgrades() {
    let mut sb = Superblock::decode(&base()).unwrap();
    sb.version = VERSION_1;
    sb.incompat = 0;
    let mut b = [0u8; SB_SIZE];
    sb.encode(&mut b);
    let v1 = Superblock::decode(&b).expect("version 1 reads");
    assert!(!v1.persistent());
    assert!(!v1.current());
    let v2 = v1.upgraded();
    assert!(v2.persistent());
    assert!(v2.data_csums());
    assert!(v2.current());
    assert_eq!((v2.version, v2.seq), (VERSION, v1.seq + 1));
    v2.encode(&mut b);
    assert_eq!(Superblock::decode(&b), Ok(v2));
    assert_eq!(v2.layout, v1.layout);
    assert_eq!(v2.set_uuid, v1.set_uuid);
}

/// A version-2 cache without data checksums reads, and its upgrade turns
/// them on and keeps the rest.
#[test]
fn a_cache_without_data_checksums_upgrades() {
    let mut sb = Superblock::decode(&base()).unwrap();
    sb.incompat = FEATURE_INCOMPAT_PERSISTENT_INDEX;
    let mut b = [0u8; SB_SIZE];
    sb.encode(&mut b);
    let old = Superblock::decode(&b).expect("reads");
    assert!(old.persistent() && !old.data_csums() && !old.current());
    let up = old.upgraded();
    assert_eq!(up.incompat, FEATURE_INCOMPAT_CURRENT);
    assert_eq!((up.version, up.seq), (VERSION, old.seq + 1));
    assert_eq!(up.layout, old.layout);
}
