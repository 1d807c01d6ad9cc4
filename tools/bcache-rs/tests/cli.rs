// SPDX-License-Identifier: GPL-2.0

//! Runs the `bcache-rs` binary on image files.

use rkm_bcache_format::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const MIB: u64 = 1 << 20;
const UUID: &str = "1b4e28ba-2fa1-41d2-883f-0016d3cca427";

/// A fresh image file of `size` bytes filled with `fill`, named after the
/// test.
fn image(name: &str, size: u64, fill: u8) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bcache-rs-{name}.img"));
    fs::write(&path, vec![fill; size as usize]).expect("write image");
    path
}

/// Runs bcache-rs with standard input from /dev/null (not a terminal).
fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bcache-rs"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run bcache-rs")
}

fn run_on(args: &[&str], path: &Path) -> Output {
    let mut all = args.to_vec();
    all.push(path.to_str().unwrap());
    run(&all)
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("UTF-8")
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("UTF-8")
}

/// Asserts exit code `code` and a one-line `bcache-rs: ` error containing
/// `text` (usage errors add the synopsis).
fn assert_fails(out: &Output, code: i32, text: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    let first = err.lines().next().unwrap_or("");
    assert!(first.starts_with("bcache-rs: "), "{err}");
    assert!(first.contains(text), "expected {text:?} in {first:?}");
    if code == 2 {
        assert!(err.contains("Usage: bcache-rs"), "{err}");
    } else {
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    assert!(out.stdout.is_empty(), "{}", stdout(out));
}

fn superblock_of(path: &Path) -> Result<Superblock, SbError> {
    let bytes = fs::read(path).unwrap();
    Superblock::decode(&bytes[SB_OFFSET as usize..])
}

#[test]
fn format_then_show() {
    let path = image("roundtrip", 64 * MIB, 0xcd);
    let out = run_on(
        &[
            "format-cache",
            "--bucket-size",
            "64k",
            "--uuid",
            UUID,
            "--label=test cache",
        ],
        &path,
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(text.starts_with("formatted "), "{text}");
    for line in [
        format!("set uuid:    {UUID}"),
        "label:       \"test cache\"".to_string(),
        "block size:  4 KiB (8 sectors)".to_string(),
        "bucket size: 64 KiB (128 sectors)".to_string(),
        "buckets:     1024 (19 metadata, 1005 data = 64320 KiB)".to_string(),
        "data start:  bucket 19, sector 2432, byte 1245184".to_string(),
        "checksums:   crc32c of every cached block, verified on every hit".to_string(),
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
    }
    let rows = ["device table", "priorities", "journal", "data"];
    for row in rows {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(row)),
            "{row}"
        );
    }

    let sb = superblock_of(&path).expect("valid superblock");
    assert_eq!(sb.set_uuid.to_string(), UUID);
    assert_eq!(sb.label_bytes(), b"test cache");
    assert_eq!(sb.layout, Layout::plan(64 * MIB, 4096, 64 << 10).unwrap());
    assert!(sb.created > 1_600_000_000);

    // Sectors 0-7 untouched, the metadata zeroed, the data left alone.
    let bytes = fs::read(&path).unwrap();
    let data = sb.layout.data_start_sector() as usize * 512;
    assert!(bytes[..4096].iter().all(|&b| b == 0xcd));
    assert!(bytes[8192..data].iter().all(|&b| b == 0));
    assert!(bytes[data..].iter().all(|&b| b == 0xcd));

    let show = run_on(&["show"], &path);
    assert_eq!(show.status.code(), Some(0), "{}", stderr(&show));
    let shown = stdout(&show);
    assert!(
        shown
            .lines()
            .next()
            .unwrap()
            .ends_with(": bcache_rs cache, file of 64 MiB"),
        "{shown}"
    );
    // show explains the same fields and layout as format-cache printed.
    let (_, format_report) = text.split_once('\n').unwrap();
    let (_, show_report) = shown.split_once('\n').unwrap();
    let (show_report, journal) = show_report.split_at(format_report.len().min(show_report.len()));
    assert_eq!(format_report, show_report);
    // ... then what the journal says: a new cache has had no session.
    assert_eq!(
        journal,
        "journal:        ring of 36 blocks, two checkpoint areas of 126 blocks\n\
         journal state:  empty (nothing journaled yet: no checkpoint, nothing to restore)\n"
    );
}

#[test]
fn defaults_for_a_file() {
    let path = image("defaults", 256 * MIB, 0);
    let out = run_on(&["format-cache"], &path);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let sb = superblock_of(&path).unwrap();
    assert_eq!(sb.layout.block_bytes(), 4096);
    assert_eq!(sb.layout.bucket_bytes(), 256 << 10);
    assert_eq!(sb.set_uuid.0[6] >> 4, 4, "a random v4 UUID");
    // Blocks smaller than 4 KiB are fine for a file.
    let out = run_on(
        &[
            "format-cache",
            "--force",
            "--block-size",
            "512",
            "--bucket-size=1M",
        ],
        &path,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let sb = superblock_of(&path).unwrap();
    assert_eq!(
        (sb.layout.block_sectors, sb.layout.bucket_sectors),
        (1, 2048)
    );
}

#[test]
fn too_small_is_refused() {
    let path = image("small", MIB, 0);
    let out = run_on(&["format-cache", "--bucket-size", "64k"], &path);
    assert_fails(
        &out,
        1,
        "device too small: 1 MiB, a cache of this geometry needs at least 2240 KiB",
    );
    assert!(
        fs::read(&path).unwrap().iter().all(|&b| b == 0),
        "nothing written"
    );
    let empty = image("empty", 0, 0);
    assert_fails(
        &run_on(&["format-cache"], &empty),
        1,
        "device too small: 0 B",
    );
}

#[test]
fn existing_signatures_need_force() {
    let path = image("ext4", 64 * MIB, 0);
    let mut bytes = fs::read(&path).unwrap();
    bytes[1080..1082].copy_from_slice(&[0x53, 0xef]);
    bytes[510..512].copy_from_slice(&[0x55, 0xaa]);
    fs::write(&path, &bytes).unwrap();
    let out = run_on(&["format-cache"], &path);
    assert_fails(
        &out,
        1,
        "has ext2/3/4 and DOS partition table signatures; use --force to overwrite it",
    );
    assert_eq!(fs::read(&path).unwrap(), bytes, "nothing written");

    let out = run_on(&["format-cache", "--force", "--uuid", UUID], &path);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("wiped ext2/3/4 signature (2 bytes at byte 1080)"),
        "{text}"
    );
    assert!(
        text.contains("wiped DOS partition table signature (2 bytes at byte 510)"),
        "{text}"
    );
    let after = fs::read(&path).unwrap();
    assert_eq!(&after[1080..1082], &[0, 0]);
    assert!(superblock_of(&path).is_ok());

    // An existing cache is a signature too.
    let out = run_on(&["format-cache"], &path);
    assert_fails(&out, 1, "has a bcache_rs cache signature; use --force");
    assert_eq!(
        superblock_of(&path).unwrap().set_uuid.to_string(),
        UUID,
        "kept"
    );
}

#[test]
fn other_signatures_are_found() {
    let cases: &[(&str, usize, &[u8])] = &[
        ("xfs", 0, b"XFSB"),
        ("LUKS", 0, b"LUKS\xba\xbe"),
        ("btrfs", 65600, b"_BHRfS_M"),
        ("swap", 4086, b"SWAPSPACE2"),
        ("iso9660", 32769, b"CD001"),
        ("vfat", 82, b"FAT32   "),
        ("GPT partition table", 512, b"EFI PART"),
        ("bcache", 4096 + 24, &C_BCACHE_MAGIC),
    ];
    for (i, (kind, offset, magic)) in cases.iter().enumerate() {
        let path = image(&format!("sig{i}"), 8 * MIB, 0);
        let mut bytes = fs::read(&path).unwrap();
        bytes[*offset..offset + magic.len()].copy_from_slice(magic);
        if *kind == "vfat" {
            bytes[510..512].copy_from_slice(&[0x55, 0xaa]);
        }
        fs::write(&path, &bytes).unwrap();
        let out = run_on(&["format-cache"], &path);
        assert_fails(&out, 1, &format!(" {kind} signature; use --force"));
        let out = run_on(&["format-cache", "--force"], &path);
        assert_eq!(out.status.code(), Some(0), "{kind}: {}", stderr(&out));
        assert!(
            stdout(&out).contains(&format!("wiped {kind} signature")),
            "{kind}"
        );
        let after = fs::read(&path).unwrap();
        if *offset >= 8192 || *offset < 4096 {
            assert!(
                after[*offset..offset + magic.len()].iter().all(|&b| b == 0),
                "{kind}"
            );
        }
    }
}

#[test]
fn bad_arguments_are_usage_errors() {
    let path = image("usage", 16 * MIB, 0);
    let p = path.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&[], "missing command"),
        (&["frobnicate"], "unrecognized subcommand 'frobnicate'"),
        (&["format-cache"], "required arguments were not provided"),
        (&["format-cache", p, p], "unexpected argument"),
        (
            &["format-cache", p, "--bucket-size", "3k"],
            "bad bucket size 3 KiB: must be a power of two from 4 KiB to 16 MiB",
        ),
        (
            &["format-cache", p, "--bucket-size", "32M"],
            "bad bucket size 32 MiB",
        ),
        (
            &["format-cache", p, "--bucket-size", "2k"],
            "bad bucket size 2 KiB",
        ),
        (
            &["format-cache", p, "--bucket-size", "1q"],
            "bad SIZE \"1q\"",
        ),
        (
            &["format-cache", p, "--bucket-size", "99999999999999999999"],
            "bad SIZE",
        ),
        (
            &["format-cache", p, "--bucket-size", "17179869184G"],
            "bad SIZE",
        ),
        (
            &["format-cache", p, "--bucket-size"],
            "a value is required for '--bucket-size <SIZE>'",
        ),
        (
            &["format-cache", p, "--block-size", "1000"],
            "bad block size 1000 B: must be a power of two from 512 B to 4 KiB",
        ),
        (
            &["format-cache", p, "--block-size", "128k"],
            "bad block size 128 KiB",
        ),
        (
            &["format-cache", p, "--block-size", "8k"],
            "bad block size 8 KiB: must be a power of two from 512 B to 4 KiB",
        ),
        (
            &["format-cache", p, "--block-size=4k", "--bucket-size=2k"],
            "bad bucket size 2 KiB",
        ),
        (
            &["format-cache", p, "--uuid", "xyz"],
            "UUID of 3 characters",
        ),
        (
            &[
                "format-cache",
                p,
                "--uuid",
                "00000000-0000-0000-0000-000000000000",
            ],
            "nil UUID",
        ),
        (
            &[
                "format-cache",
                p,
                "--label",
                "0123456789abcdef0123456789abcdefX",
            ],
            "at most 32 bytes",
        ),
        (
            &["format-cache", p, "--frob"],
            "unexpected argument '--frob'",
        ),
        (
            &["format-cache", p, "--force=yes"],
            "unexpected value 'yes' for '--force'",
        ),
        (
            &["format-cache", p, "--uuid", UUID, "--uuid", UUID],
            "cannot be used multiple times",
        ),
        (&["show"], "required arguments were not provided"),
        (&["show", p, "--force"], "unexpected argument '--force'"),
        (&["uuid", "x"], "unexpected argument 'x'"),
    ];
    for (args, text) in cases {
        assert_fails(&run(args), 2, text);
    }
    assert!(
        fs::read(&path).unwrap().iter().all(|&b| b == 0),
        "nothing written"
    );
}

#[test]
fn show_names_the_reason() {
    let path = image("show", 64 * MIB, 0);
    assert_fails(
        &run_on(&["show"], &path),
        1,
        "not formatted: no bcache_rs superblock at byte 4096",
    );
    let out = run_on(&["format-cache", "--bucket-size", "128k"], &path);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let good = fs::read(&path).unwrap();
    let sb = 4096;

    let mut bytes = good.clone();
    bytes[sb + 100] ^= 0x10;
    fs::write(&path, &bytes).unwrap();
    assert_fails(
        &run_on(&["show"], &path),
        1,
        "superblock crc32c mismatch: stored 0x",
    );

    let mut bytes = good.clone();
    bytes[sb + 3] ^= 0x01;
    fs::write(&path, &bytes).unwrap();
    assert_fails(
        &run_on(&["show"], &path),
        1,
        "damaged superblock: bad magic",
    );

    let mut bytes = good.clone();
    bytes[sb + sb_field::VERSION] = 3;
    bytes[sb + 16..sb + 20].fill(0);
    let csum = crc32c(&bytes[sb..sb + 4096]);
    bytes[sb + 16..sb + 20].copy_from_slice(&csum.to_le_bytes());
    fs::write(&path, &bytes).unwrap();
    assert_fails(
        &run_on(&["show"], &path),
        1,
        "unsupported superblock version 3 (this build reads versions 1 and 2)",
    );

    // The device shrank below the cache.
    fs::write(&path, &good[..(32 * MIB) as usize]).unwrap();
    let out = run_on(&["show"], &path);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out)
        .contains("device too small: 32 MiB, a cache of this geometry needs at least 64 MiB"));

    // Shorter than the superblock.
    fs::write(&path, &good[..6000]).unwrap();
    assert_fails(
        &run_on(&["show"], &path),
        1,
        "short superblock read: 1904 bytes of 4096",
    );

    // Something else.
    let mut bytes = vec![0u8; (8 * MIB) as usize];
    bytes[1080..1082].copy_from_slice(&[0x53, 0xef]);
    fs::write(&path, &bytes).unwrap();
    assert_fails(
        &run_on(&["show"], &path),
        1,
        "not formatted: no bcache_rs superblock at byte 4096 (it has an ext2/3/4 signature)",
    );
    assert_fails(
        &run(&["show", "/nonexistent"]),
        1,
        "cannot open /nonexistent",
    );
    assert_fails(
        &run(&["show", "/dev/null"]),
        1,
        "/dev/null is not a block device or a regular file",
    );
}

#[test]
fn uuid_command() {
    let a = run(&["uuid"]);
    let b = run(&["uuid"]);
    assert_eq!(a.status.code(), Some(0));
    let (a, b) = (stdout(&a), stdout(&b));
    let u = Uuid::parse(a.trim_end().as_bytes()).expect("a UUID");
    assert_eq!(a, format!("{u}\n"));
    assert_eq!(u.0[6] >> 4, 4);
    assert_eq!(u.0[8] >> 6, 2);
    assert_ne!(a, b);
}

#[test]
fn help() {
    for args in [&["help"][..], &["--help"]] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(0));
        let text = stdout(&out);
        assert!(text.contains("Usage: bcache-rs <COMMAND>"), "{text}");
        for command in ["format-cache", "format-backing", "show", "uuid"] {
            assert!(text.contains(command), "{command}: {text}");
        }
        assert!(text.contains("Exit status: 0 success, 1 error"), "{text}");
    }
    let out = run(&["format-cache", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("--bucket-size <SIZE>"));
    let out = run(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).starts_with("bcache-rs "));
}

#[test]
fn size_uses_a_prefix_of_the_device() {
    let path = image("prefix", 64 * MIB, 0);
    let out = run_on(
        &["format-cache", "--size", "16M", "--bucket-size", "64k"],
        &path,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let sb = superblock_of(&path).unwrap();
    assert_eq!(sb.layout.device_sectors, 16 * MIB / 512);
    assert_eq!(sb.layout.nbuckets, 16 * MIB / (64 << 10));
    // The rest of the device is not touched.
    let bytes = fs::read(&path).unwrap();
    assert!(bytes[16 * MIB as usize..].iter().all(|&b| b == 0));
    assert_fails(
        &run_on(&["format-cache", "--size", "65M"], &path),
        1,
        "--size 65 MiB is larger than the device (64 MiB)",
    );
    assert_fails(
        &run_on(&["format-cache", "--size", "lots"], &path),
        2,
        "bad SIZE",
    );
}

fn backing_of(path: &Path) -> Result<BackingSb, BackingError> {
    let bytes = fs::read(path).unwrap();
    BackingSb::decode(&bytes[SB_OFFSET as usize..])
}

#[test]
fn format_backing_then_show() {
    let path = image("backing", 16 * MIB, 0xab);
    let out = run_on(
        &[
            "format-backing",
            "--uuid",
            UUID,
            "--label",
            "slow disk",
            "--data-offset",
            "64k",
        ],
        &path,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("formatted "), "{text}");
    assert!(text.contains("as a bcache_rs backing device"), "{text}");
    for line in [
        format!("uuid:        {UUID}"),
        "label:       \"slow disk\"".to_string(),
        "cache set:   none".to_string(),
        "state:       clean".to_string(),
        "data offset: 64 KiB (128 sectors)".to_string(),
        "data size:   16320 KiB (32640 sectors)".to_string(),
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
    }
    let sb = backing_of(&path).expect("a valid backing superblock");
    assert_eq!(sb.uuid.to_string(), UUID);
    assert_eq!((sb.data_offset, sb.device_sectors), (128, 32768));
    assert!(sb.created > 1_600_000_000);
    // Sectors 0-7 untouched, up to the data offset zeroed (but for the
    // superblock), the data left alone.
    let bytes = fs::read(&path).unwrap();
    assert!(bytes[..4096].iter().all(|&b| b == 0xab));
    assert!(bytes[8192..65536].iter().all(|&b| b == 0));
    assert!(bytes[65536..].iter().all(|&b| b == 0xab));

    let show = run_on(&["show"], &path);
    assert_eq!(show.status.code(), Some(0), "{}", stderr(&show));
    let shown = stdout(&show);
    assert!(
        shown
            .lines()
            .next()
            .unwrap()
            .ends_with(": bcache_rs backing device, file of 16 MiB"),
        "{shown}"
    );
    let (_, format_report) = text.split_once('\n').unwrap();
    let (_, show_report) = shown.split_once('\n').unwrap();
    assert_eq!(format_report, show_report);

    // A backing device is a signature: format-cache asks first.
    assert_fails(
        &run_on(&["format-cache"], &path),
        1,
        "has a bcache_rs backing device signature; use --force",
    );
    // A damaged one is reported as such by show.
    let mut bytes = fs::read(&path).unwrap();
    bytes[4096 + 200] ^= 4;
    fs::write(&path, &bytes).unwrap();
    assert_fails(
        &run_on(&["show"], &path),
        1,
        "backing superblock crc32c mismatch",
    );
}

#[test]
fn format_backing_refusals() {
    let path = image("backing-bad", 16 * MIB, 0);
    for (args, text) in [
        (
            &["format-backing", "--data-offset", "6k"][..],
            "--data-offset 6 KiB: must be a multiple of 4 KiB from 8 KiB",
        ),
        (
            &["format-backing", "--data-offset", "4k"],
            "must be a multiple of 4 KiB from 8 KiB",
        ),
        (
            &[
                "format-backing",
                "--uuid",
                "00000000-0000-0000-0000-000000000000",
            ],
            "nil UUID",
        ),
    ] {
        assert_fails(&run_on(args, &path), 2, text);
    }
    assert_fails(
        &run_on(&["format-backing", "--data-offset", "16M"], &path),
        1,
        "device too small: 16 MiB, the data offset is 16 MiB",
    );
    assert!(
        fs::read(&path).unwrap().iter().all(|&b| b == 0),
        "nothing written"
    );
    // A cache is not overwritten without --force.
    let out = run_on(&["format-cache"], &path);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_fails(
        &run_on(&["format-backing"], &path),
        1,
        "has a bcache_rs cache signature; use --force",
    );
    let out = run_on(&["format-backing", "--force"], &path);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(backing_of(&path).is_ok());
    assert!(superblock_of(&path).is_err());
}
