// SPDX-License-Identifier: GPL-2.0

//! Backing superblocks: round trips, and every damage refused with its
//! reason.

use proptest::prelude::*;
use rkm_bcache_format::*;

const UUID: Uuid = Uuid([9; 16]);

fn encoded(sb: &BackingSb) -> [u8; SB_SIZE] {
    let mut b = [0u8; SB_SIZE];
    sb.encode(&mut b);
    b
}

/// `sb` encoded, changed by `f`, its crc made right again.
fn resealed(sb: &BackingSb, f: impl Fn(&mut [u8; SB_SIZE])) -> Result<BackingSb, BackingError> {
    let mut b = encoded(sb);
    f(&mut b);
    b[16..20].fill(0);
    let crc = crc32c(&b);
    b[16..20].copy_from_slice(&crc.to_le_bytes());
    BackingSb::decode(&b)
}

#[test]
fn layout_and_round_trip() {
    let mut sb = BackingSb::new(UUID, DEFAULT_DATA_OFFSET, 1 << 21);
    let b = encoded(&sb);
    assert_eq!(&b[..16], b"BCACHE_RS\x00BDV\r\n\x1a");
    assert_eq!(&b[56..72], &[9; 16]);
    assert_eq!(&b[104..112], &16u64.to_le_bytes());
    assert!(b[160..].iter().all(|&x| x == 0));
    assert_eq!(BackingSb::decode(&b), Ok(sb));
    sb.cache_set = Uuid([3; 16]);
    sb.state = DevState::Dirty;
    sb.seq = 7;
    sb.label = make_label(b"slow disk").unwrap();
    assert_eq!(BackingSb::decode(&encoded(&sb)), Ok(sb));
    assert_eq!(sb.data_sectors(1 << 21), (1 << 21) - 16);
    assert_eq!(sb.check_device(1 << 21), Ok(()));
    assert_eq!(
        sb.check_device(16),
        Err(BackingError::DeviceTooSmall {
            needed: 17,
            have: 16
        })
    );
}

#[test]
fn damage_is_refused_with_its_reason() {
    let sb = BackingSb::new(UUID, 64, 1 << 20);
    let b = encoded(&sb);
    assert_eq!(
        BackingSb::decode(&b[..100]),
        Err(BackingError::ShortBuffer { len: 100 })
    );
    assert_eq!(
        BackingSb::decode(&[0u8; SB_SIZE]),
        Err(BackingError::NotFormatted)
    );
    // A cache's superblock where a backing one is expected.
    let mut cache = [0u8; SB_SIZE];
    cache[..16].copy_from_slice(&MAGIC);
    assert_eq!(BackingSb::decode(&cache), Err(BackingError::IsCache));
    // And a backing superblock where a cache's is expected.
    assert_eq!(Superblock::decode(&b), Err(SbError::BackingDevice));
    assert_eq!(SbError::BackingDevice.to_errno(), -22);
    let mut torn = b;
    torn[200] ^= 1;
    assert!(matches!(
        BackingSb::decode(&torn),
        Err(BackingError::BadCrc { .. })
    ));
    let put64 = |off: usize, v: u64| {
        move |b: &mut [u8; SB_SIZE]| b[off..off + 8].copy_from_slice(&v.to_le_bytes())
    };
    assert_eq!(
        resealed(&sb, |b| b[20] = 2),
        Err(BackingError::UnsupportedVersion { found: 2 })
    );
    assert_eq!(
        resealed(&sb, put64(48, 4)),
        Err(BackingError::UnknownIncompatFeatures { bits: 4 })
    );
    assert_eq!(
        resealed(&sb, put64(24, 0)),
        Err(BackingError::WrongSbSector { found: 0 })
    );
    assert_eq!(
        resealed(&sb, |b| b[56..72].fill(0)),
        Err(BackingError::NilUuid)
    );
    assert_eq!(
        resealed(&sb, |b| b[144] = 5),
        Err(BackingError::BadState { found: 5 })
    );
    for off in [0u64, 8, 12, 65, 1 << 20] {
        assert_eq!(
            resealed(&sb, put64(104, off)),
            Err(BackingError::BadDataOffset { found: off })
        );
    }
    // Compat and ro_compat bits and the reserved bytes are not checked.
    assert!(resealed(&sb, put64(32, 1)).is_ok());
    assert!(resealed(&sb, |b| b[3000] = 1).is_ok());
    assert_eq!(
        BackingError::BadCrc {
            stored: 0,
            computed: 1
        }
        .to_errno(),
        -74
    );
    assert_eq!(
        BackingError::UnsupportedVersion { found: 2 }.to_errno(),
        -95
    );
    assert_eq!(BackingError::NilUuid.to_errno(), -22);
}

#[test]
fn every_bit_flip_is_caught() {
    let sb = BackingSb::new(UUID, 16, 1 << 20);
    let mut b = encoded(&sb);
    for bit in 0..SB_SIZE * 8 {
        b[bit / 8] ^= 1 << (bit % 8);
        assert!(BackingSb::decode(&b).is_err(), "bit {bit} not caught");
        b[bit / 8] ^= 1 << (bit % 8);
    }
}

proptest! {
    #[test]
    fn valid_fields_round_trip(
        uuid in any::<[u8; 16]>().prop_filter("not nil", |u| *u != [0; 16]),
        set in any::<[u8; 16]>(),
        offset in (2u64..1 << 20).prop_map(|o| o * 8),
        extra in 1u64..1 << 30,
        seq in any::<u64>(),
        dirty in any::<bool>(),
    ) {
        let mut sb = BackingSb::new(Uuid(uuid), offset, offset + extra);
        sb.cache_set = Uuid(set);
        sb.seq = seq;
        sb.state = if dirty { DevState::Dirty } else { DevState::Clean };
        prop_assert_eq!(BackingSb::decode(&encoded(&sb)), Ok(sb));
    }

    #[test]
    fn any_bytes_decode_or_are_refused(bytes in prop::collection::vec(any::<u8>(), 0..SB_SIZE + 8)) {
        let _ = BackingSb::decode(&bytes);
    }
}
