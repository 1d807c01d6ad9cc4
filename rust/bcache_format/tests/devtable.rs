// SPDX-License-Identifier: GPL-2.0

//! Device-table entries: round trips and rejects.

use proptest::prelude::*;
use rkm_bcache_format::*;

const UUID: Uuid = Uuid([7; 16]);

fn encoded(e: &DevEntry) -> [u8; DEV_ENTRY_SIZE] {
    let mut b = [0u8; DEV_ENTRY_SIZE];
    e.encode(&mut b);
    b
}

fn reseal(b: &mut [u8; DEV_ENTRY_SIZE]) {
    let csum = crc32c(&b[..dev_field::CSUM]);
    b[dev_field::CSUM..].copy_from_slice(&csum.to_le_bytes());
}

#[test]
fn sizes() {
    assert_eq!(DEV_TABLE_BYTES, 32768);
    assert_eq!(DEV_TABLE_SECTORS, 64);
    assert_eq!(DEV_TABLE_ENTRIES, 256);
}

#[test]
fn free_slot_and_layout() {
    assert_eq!(DevEntry::decode(&[0u8; DEV_ENTRY_SIZE]), Ok(None));
    let e = DevEntry::new(UUID, 1 << 21);
    let b = encoded(&e);
    assert_eq!(&b[..16], &[7; 16]);
    assert_eq!(&b[16..24], &(1u64 << 21).to_le_bytes());
    assert!(
        b[24..124].iter().all(|&x| x == 0),
        "in place, writethrough, clean"
    );
    assert_eq!(&b[124..], &crc32c(&b[..124]).to_le_bytes());
    assert_eq!(DevEntry::decode(&b), Ok(Some(e)));
}

#[test]
fn rejects() {
    let b = encoded(&DevEntry::new(UUID, 100));
    assert_eq!(
        DevEntry::decode(&b[..127]),
        Err(DevEntryError::ShortBuffer { len: 127 })
    );
    for bit in 0..DEV_ENTRY_SIZE * 8 {
        let mut c = b;
        c[bit / 8] ^= 1 << (bit % 8);
        assert!(
            matches!(DevEntry::decode(&c), Err(DevEntryError::BadCrc { .. })),
            "bit {bit}"
        );
    }
    let edited = |edit: &dyn Fn(&mut [u8; DEV_ENTRY_SIZE])| {
        let mut c = b;
        edit(&mut c);
        reseal(&mut c);
        DevEntry::decode(&c)
    };
    assert_eq!(edited(&|c| c[..16].fill(0)), Err(DevEntryError::NilUuid));
    assert_eq!(
        edited(&|c| c[40] = 4),
        Err(DevEntryError::BadCacheMode { found: 4 })
    );
    assert_eq!(
        edited(&|c| c[47] = 1),
        Err(DevEntryError::BadState { found: 1 << 24 })
    );
    let errnos = [
        (DevEntryError::ShortBuffer { len: 0 }, -5),
        (
            DevEntryError::BadCrc {
                stored: 1,
                computed: 2,
            },
            -74,
        ),
        (DevEntryError::NilUuid, -22),
        (DevEntryError::BadCacheMode { found: 9 }, -22),
        (DevEntryError::BadState { found: 9 }, -22),
    ];
    for (e, errno) in errnos {
        assert_eq!(e.to_errno(), errno);
        assert!(!e.to_string().contains('\n'));
    }
}

fn mode() -> impl Strategy<Value = CacheMode> {
    prop_oneof![
        Just(CacheMode::Writethrough),
        Just(CacheMode::Writeback),
        Just(CacheMode::Writearound),
        Just(CacheMode::None),
    ]
}

proptest! {
    #[test]
    fn round_trip(
        uuid in any::<[u8; 16]>().prop_filter("not nil", |u| *u != [0; 16]),
        (sectors, data_offset, flags, created) in any::<(u64, u64, u64, u64)>(),
        cache_mode in mode(),
        dirty in any::<bool>(),
        label in any::<[u8; LABEL_SIZE]>(),
    ) {
        let e = DevEntry {
            uuid: Uuid(uuid),
            sectors,
            data_offset,
            flags,
            cache_mode,
            state: if dirty { DevState::Dirty } else { DevState::Clean },
            label,
            created,
        };
        prop_assert_eq!(DevEntry::decode(&encoded(&e)), Ok(Some(e)));
    }
}
