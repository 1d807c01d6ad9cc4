// SPDX-License-Identifier: GPL-2.0

//! Signatures of what a device may already hold, found before formatting
//! so that nothing is overwritten unasked, and wiped (their magic bytes
//! zeroed, as `wipefs` does) when it is, so that no tool or udev rule
//! takes the cache for its old content.

use crate::device::Device;
use rkm_bcache_format::{BACKING_MAGIC, C_BCACHE_MAGIC, C_BCACHE_MAGIC_OFFSET, MAGIC, SB_OFFSET};
use std::io;

/// A signature found on the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// What it belongs to.
    pub kind: &'static str,
    /// The byte offset of its magic.
    pub offset: u64,
    /// The magic's length.
    pub len: usize,
}

/// What holds a 0x55AA boot signature of its own: no DOS partition table
/// is reported with these.
const BOOT_SECTOR_FILESYSTEMS: [&str; 3] = ["vfat", "ntfs", "exfat"];
const DOS: &str = "DOS partition table";
const GPT: &str = "GPT partition table";

/// The signatures at fixed offsets from the start: kind, offset, magic.
const SIGNATURES: &[(&str, u64, &[u8])] = &[
    ("bcache_rs cache", SB_OFFSET, &MAGIC),
    ("bcache_rs backing device", SB_OFFSET, &BACKING_MAGIC),
    (
        "bcache",
        SB_OFFSET + C_BCACHE_MAGIC_OFFSET as u64,
        &C_BCACHE_MAGIC,
    ),
    ("LUKS", 0, b"LUKS\xba\xbe"),
    ("xfs", 0, b"XFSB"),
    ("btrfs", 65600, b"_BHRfS_M"),
    ("ext2/3/4", 1080, &[0x53, 0xef]),
    ("swap", 4086, b"SWAPSPACE2"),
    ("swap", 4086, b"SWAP-SPACE"),
    ("iso9660", 32769, b"CD001"),
    ("vfat", 54, b"FAT12   "),
    ("vfat", 54, b"FAT16   "),
    ("vfat", 82, b"FAT32   "),
    ("ntfs", 3, b"NTFS    "),
    ("exfat", 3, b"EXFAT   "),
    (GPT, 512, b"EFI PART"),
    (DOS, 510, &[0x55, 0xaa]),
];

/// How much of the start of the device the signatures need.
const HEAD: usize = 68 << 10;

/// The signatures on `dev`, in table order; the backup GPT header at the
/// end of the device counts as a GPT.
pub fn detect(dev: &Device) -> io::Result<Vec<Found>> {
    let head = dev.read_at(0, HEAD)?;
    let mut found: Vec<Found> = SIGNATURES
        .iter()
        .filter(|(_, off, magic)| {
            let off = *off as usize;
            head.get(off..off + magic.len()) == Some(*magic)
        })
        .map(|&(kind, offset, magic)| Found {
            kind,
            offset,
            len: magic.len(),
        })
        .collect();
    if found
        .iter()
        .any(|f| BOOT_SECTOR_FILESYSTEMS.contains(&f.kind))
    {
        found.retain(|f| f.kind != DOS);
    }
    for sector in [512, 4096] {
        if let Some(offset) = dev.size.checked_sub(sector).filter(|&o| o >= HEAD as u64) {
            if dev.read_at(offset, 8)? == b"EFI PART" {
                found.push(Found {
                    kind: GPT,
                    offset,
                    len: 8,
                });
            }
        }
    }
    Ok(found)
}

/// The distinct kinds of `found`, for messages: "an ext2/3/4 signature",
/// "LUKS and GPT partition table signatures".
pub fn describe(found: &[Found]) -> String {
    let mut kinds: Vec<&str> = Vec::new();
    for f in found {
        if !kinds.contains(&f.kind) {
            kinds.push(f.kind);
        }
    }
    match kinds.as_slice() {
        [one] => {
            let article = if one.starts_with(['a', 'e', 'i', 'o', 'u', 'x', 'n']) {
                "an"
            } else {
                "a"
            };
            format!("{article} {one} signature")
        }
        [init @ .., last] => format!("{} and {last} signatures", init.join(", ")),
        [] => "no signature".to_string(),
    }
}

/// Zeroes the magic of each signature in `found`.
pub fn wipe(dev: &Device, found: &[Found]) -> io::Result<()> {
    for f in found {
        dev.write_at(f.offset, &vec![0u8; f.len])?;
    }
    Ok(())
}
