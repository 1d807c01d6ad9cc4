// SPDX-License-Identifier: GPL-2.0

//! UUID parsing and formatting, and the sysfs line parsers.

use proptest::prelude::*;
use rkm_bcache_format::*;

const TEXT: &str = "1b4e28ba-2fa1-41d2-883f-0016d3cca427";
const BYTES: [u8; 16] = [
    0x1b, 0x4e, 0x28, 0xba, 0x2f, 0xa1, 0x41, 0xd2, 0x88, 0x3f, 0x00, 0x16, 0xd3, 0xcc, 0xa4, 0x27,
];

#[test]
fn parses_canonical_form() {
    assert_eq!(Uuid::parse(TEXT.as_bytes()), Ok(Uuid(BYTES)));
    let upper = TEXT.to_uppercase();
    assert_eq!(Uuid::parse(upper.as_bytes()), Ok(Uuid(BYTES)));
    assert_eq!(Uuid(BYTES).to_string(), TEXT);
    assert_eq!(&Uuid(BYTES).to_ascii()[..], TEXT.as_bytes());
    assert_eq!(
        Uuid::NIL.to_string(),
        "00000000-0000-0000-0000-000000000000"
    );
    assert!(Uuid::NIL.is_nil());
    assert!(!Uuid(BYTES).is_nil());
}

#[test]
fn rejects_malformed_uuids() {
    let cases: &[(&[u8], UuidError)] = &[
        (b"", UuidError::Empty),
        (b"1b4e28ba", UuidError::BadLength { len: 8 }),
        (
            b"1b4e28ba2fa141d2883f0016d3cca427",
            UuidError::BadLength { len: 32 },
        ),
        (
            b" 1b4e28ba-2fa1-41d2-883f-0016d3cca427",
            UuidError::BadLength { len: 37 },
        ),
        (
            b"1b4e28ba-2fa1-41d2-883f-0016d3cca4270",
            UuidError::BadLength { len: 37 },
        ),
        (
            b"1b4e28ba2-fa1-41d2-883f-0016d3cca427",
            UuidError::MissingHyphen { pos: 8 },
        ),
        (
            b"1b4e28ba-2fa141d2--883f-0016d3cca427",
            UuidError::MissingHyphen { pos: 13 },
        ),
        (
            b"1b4e28ba-2fa1-41d2-883f00016d3cca427",
            UuidError::MissingHyphen { pos: 23 },
        ),
        (
            b"1b4e2ga8-2fa1-41d2-883f-0016d3cca427",
            UuidError::BadHexDigit { pos: 5, byte: b'g' },
        ),
        (
            b"1b4e28ba-2fa1-41d2-883f-0016d3cca42 ",
            UuidError::BadHexDigit {
                pos: 35,
                byte: b' ',
            },
        ),
        (
            b"1b4e28ba-2fa1-41d2-883f-0016d3cca4\xc3\xa9",
            UuidError::BadHexDigit {
                pos: 34,
                byte: 0xc3,
            },
        ),
        (
            b"-b4e28ba-2fa1-41d2-883f-0016d3cca427",
            UuidError::BadHexDigit { pos: 0, byte: b'-' },
        ),
    ];
    for (text, err) in cases {
        assert_eq!(
            Uuid::parse(text),
            Err(*err),
            "{:?}",
            String::from_utf8_lossy(text)
        );
        assert_eq!(err.to_errno(), -22);
        let msg = err.to_string();
        assert!(!msg.is_empty() && !msg.contains('\n'), "{msg}");
    }
    assert_eq!(
        UuidError::BadHexDigit { pos: 5, byte: b'g' }.to_string(),
        "UUID has 'g' at position 5, not a hex digit"
    );
    assert_eq!(
        UuidError::BadHexDigit { pos: 5, byte: 0 }.to_string(),
        "UUID has byte 0x00 at position 5, not a hex digit"
    );
}

#[test]
fn v4_sets_version_and_variant() {
    let u = Uuid::v4_from_random([0xff; 16]);
    assert_eq!(u.to_string(), "ffffffff-ffff-4fff-bfff-ffffffffffff");
    let u = Uuid::v4_from_random([0; 16]);
    assert_eq!(u.to_string(), "00000000-0000-4000-8000-000000000000");
    assert!(!u.is_nil());
}

proptest! {
    #[test]
    fn display_parse_round_trip(bytes in any::<[u8; 16]>(), upper in any::<bool>()) {
        let text = Uuid(bytes).to_string();
        prop_assert_eq!(text.len(), UUID_STR_LEN);
        prop_assert_eq!(text.to_lowercase(), text.clone());
        let text = if upper { text.to_uppercase() } else { text };
        prop_assert_eq!(Uuid::parse(text.as_bytes()), Ok(Uuid(bytes)));
    }

    #[test]
    fn parsers_never_panic(line in proptest::collection::vec(any::<u8>(), 0..80)) {
        let _ = Uuid::parse(&line);
        let _ = parse_register_dev(&line);
        let _ = parse_path_line(&line);
    }
}

#[test]
fn register_dev_lines() {
    let uuid = Uuid(BYTES);
    let ok: &[&[u8]] = &[
        b"1b4e28ba-2fa1-41d2-883f-0016d3cca427 /dev/sdb\n",
        b"1b4e28ba-2fa1-41d2-883f-0016d3cca427 /dev/sdb",
        b"  1B4E28BA-2FA1-41D2-883F-0016D3CCA427\t\t/dev/sdb \n",
        b"1b4e28ba-2fa1-41d2-883f-0016d3cca427 /dev/sdb\r\n",
    ];
    for line in ok {
        assert_eq!(
            parse_register_dev(line),
            Ok(DevLine {
                uuid: Some(uuid),
                path: &b"/dev/sdb"[..],
                trust: None
            }),
            "{line:?}"
        );
    }
    let trusted: &[(&[u8], Option<bool>)] = &[
        (
            b"1b4e28ba-2fa1-41d2-883f-0016d3cca427 /dev/sdb trust=1\n",
            Some(true),
        ),
        (
            b"1b4e28ba-2fa1-41d2-883f-0016d3cca427 /dev/sdb trust=0",
            Some(false),
        ),
        (
            b"1b4e28ba-2fa1-41d2-883f-0016d3cca427 /dev/sdb trust=0 trust=1",
            Some(true),
        ),
    ];
    for (line, trust) in trusted {
        assert_eq!(parse_register_dev(line).map(|l| l.trust), Ok(*trust));
    }
    // A path alone: a formatted backing device, named by its superblock.
    assert_eq!(
        parse_register_dev(b"/dev/sdb trust=0\n"),
        Ok(DevLine {
            uuid: None,
            path: &b"/dev/sdb"[..],
            trust: Some(false)
        })
    );
    let long = [
        b"1b4e28ba-2fa1-41d2-883f-0016d3cca427 /".as_slice(),
        &[b'a'; 4095],
    ]
    .concat();
    let max = [
        b"1b4e28ba-2fa1-41d2-883f-0016d3cca427 /".as_slice(),
        &[b'a'; 4094],
    ]
    .concat();
    assert_eq!(parse_register_dev(&max).map(|l| l.path.len()), Ok(4095));
    let bad: &[(&[u8], LineError)] = &[
        (b"", LineError::Empty),
        (b" \n", LineError::Empty),
        (b"\n\n", LineError::Empty),
        (
            b"1b4e28ba-2fa1-41d2-883f-0016d3cca427\n",
            LineError::MissingPath,
        ),
        (
            b"1b4e28ba-2fa1-41d2-883f-0016d3cca427 \n",
            LineError::MissingPath,
        ),
        (
            b"dev/sdb\n",
            LineError::BadUuid(UuidError::BadLength { len: 7 }),
        ),
        (
            b"1b4e28ba-2fa1-41d2-883f-0016d3cca42x /dev/sdb",
            LineError::BadUuid(UuidError::BadHexDigit {
                pos: 35,
                byte: b'x',
            }),
        ),
        (
            b"00000000-0000-0000-0000-000000000000 /dev/sdb",
            LineError::NilUuid,
        ),
        (
            b"1b4e28ba-2fa1-41d2-883f-0016d3cca427 /dev/sdb /dev/sdc",
            LineError::TrailingJunk { pos: 46 },
        ),
        (
            b"1b4e28ba-2fa1-41d2-883f-0016d3cca427 /dev/sdb\nx",
            LineError::TrailingJunk { pos: 46 },
        ),
        (
            b"1b4e28ba-2fa1-41d2-883f-0016d3cca427 /dev/sdb trust=2",
            LineError::TrailingJunk { pos: 46 },
        ),
        (
            b"1b4e28ba-2fa1-41d2-883f-0016d3cca427 dev/sdb",
            LineError::PathNotAbsolute,
        ),
        (
            b"1b4e28ba-2fa1-41d2-883f-0016d3cca427 /dev/s\0db",
            LineError::EmbeddedNul { pos: 43 },
        ),
        (b"\0", LineError::EmbeddedNul { pos: 0 }),
        (&long, LineError::PathTooLong { len: 4096 }),
    ];
    for (line, err) in bad {
        assert_eq!(
            parse_register_dev(line),
            Err(*err),
            "{:?}",
            String::from_utf8_lossy(line)
        );
        let msg = err.to_string();
        assert!(!msg.is_empty() && !msg.contains('\n'), "{msg}");
        let errno = if matches!(err, LineError::PathTooLong { .. }) {
            -36
        } else {
            -22
        };
        assert_eq!(err.to_errno(), errno);
    }
    assert_eq!(
        LineError::BadUuid(UuidError::BadLength { len: 8 }).to_string(),
        "bad UUID: UUID of 8 characters, expected 36 (8-4-4-4-12 hex digits)"
    );
}

#[test]
fn path_lines() {
    for line in [
        &b"/dev/vdb\n"[..],
        b"/dev/vdb",
        b" /dev/vdb \n",
        b"\t/dev/vdb\r\n",
    ] {
        assert_eq!(parse_path_line(line), Ok(&b"/dev/vdb"[..]), "{line:?}");
    }
    let long = [b"/".as_slice(), &[b'a'; 4095]].concat();
    let bad: &[(&[u8], LineError)] = &[
        (b"", LineError::Empty),
        (b"\n", LineError::Empty),
        (b"vdb\n", LineError::PathNotAbsolute),
        (b"/dev/vdb /dev/vdc\n", LineError::TrailingJunk { pos: 9 }),
        (b"/dev/vdb\0", LineError::EmbeddedNul { pos: 8 }),
        (&long, LineError::PathTooLong { len: 4096 }),
    ];
    for (line, err) in bad {
        assert_eq!(
            parse_path_line(line),
            Err(*err),
            "{:?}",
            String::from_utf8_lossy(line)
        );
    }
}
