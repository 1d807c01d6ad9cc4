// SPDX-License-Identifier: GPL-2.0

//! UUIDs and the lines written to the module's sysfs files.
//!
//! A UUID is written in the canonical 8-4-4-4-12 form of 32 hex digits
//! (either case) and shown in lowercase. [`Uuid::parse`] takes exactly the 36
//! characters: callers trim. The sysfs parsers, [`parse_register_dev`] and
//! [`parse_path_line`], trim leading and trailing ASCII whitespace (so
//! `echo`'s newline is fine), separate fields by spaces or tabs, and take
//! one path without spaces.

use super::errno;
use core::fmt;

/// The length of a UUID in canonical form.
pub const UUID_STR_LEN: usize = 36;
/// The longest path plus its NUL, as the kernel's `PATH_MAX`.
pub const PATH_MAX: usize = 4096;

/// The positions of the hyphens in the canonical form.
const HYPHENS: [usize; 4] = [8, 13, 18, 23];

/// A 16-byte UUID, in the byte order of its canonical text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uuid(pub [u8; 16]);

/// Why a UUID did not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UuidError {
    /// No characters.
    Empty,
    /// Not 36 characters.
    BadLength {
        /// The length found.
        len: usize,
    },
    /// No hyphen at one of the positions 8, 13, 18, 23.
    MissingHyphen {
        /// The position.
        pos: usize,
    },
    /// A character that is not a hex digit where one belongs.
    BadHexDigit {
        /// The position.
        pos: usize,
        /// The byte found.
        byte: u8,
    },
}

impl UuidError {
    /// The negative errno: `-EINVAL`.
    pub fn to_errno(self) -> i32 {
        -errno::EINVAL
    }
}

impl fmt::Display for UuidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            UuidError::Empty => f.write_str("empty UUID"),
            UuidError::BadLength { len } => write!(
                f,
                "UUID of {len} characters, expected {UUID_STR_LEN} (8-4-4-4-12 hex digits)"
            ),
            UuidError::MissingHyphen { pos } => {
                write!(
                    f,
                    "UUID has no '-' at position {pos} (8-4-4-4-12 hex digits)"
                )
            }
            UuidError::BadHexDigit { pos, byte } => {
                write!(
                    f,
                    "UUID has {} at position {pos}, not a hex digit",
                    Byte(byte)
                )
            }
        }
    }
}

/// A byte for messages: printable ASCII quoted, others in hex.
struct Byte(u8);

impl fmt::Display for Byte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_ascii_graphic() {
            write!(f, "'{}'", char::from(self.0))
        } else {
            write!(f, "byte {:#04x}", self.0)
        }
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

impl Uuid {
    /// The nil UUID, all zeros: never names a device or a cache.
    pub const NIL: Uuid = Uuid([0; 16]);

    /// Parses the canonical form, `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`,
    /// hex digits in either case, no surrounding whitespace.
    pub fn parse(text: &[u8]) -> Result<Uuid, UuidError> {
        if text.is_empty() {
            return Err(UuidError::Empty);
        }
        if text.len() != UUID_STR_LEN {
            return Err(UuidError::BadLength { len: text.len() });
        }
        let mut out = [0u8; 16];
        let mut nibble = 0usize;
        for (pos, &byte) in text.iter().enumerate() {
            if HYPHENS.contains(&pos) {
                if byte != b'-' {
                    return Err(UuidError::MissingHyphen { pos });
                }
                continue;
            }
            let value = hex_value(byte).ok_or(UuidError::BadHexDigit { pos, byte })?;
            if let Some(slot) = out.get_mut(nibble / 2) {
                *slot = (*slot << 4) | value;
            }
            nibble += 1;
        }
        Ok(Uuid(out))
    }

    /// Whether this is the nil UUID.
    pub fn is_nil(&self) -> bool {
        self.0 == [0; 16]
    }

    /// A random (version 4, RFC 4122 variant) UUID from 16 random bytes.
    pub fn v4_from_random(mut bytes: [u8; 16]) -> Uuid {
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        Uuid(bytes)
    }

    /// The canonical lowercase form.
    pub fn to_ascii(self) -> [u8; UUID_STR_LEN] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'-'; UUID_STR_LEN];
        let mut positions = (0..UUID_STR_LEN).filter(|p| !HYPHENS.contains(p));
        for byte in self.0 {
            for nibble in [byte >> 4, byte & 0xf] {
                if let Some(slot) = positions.next().and_then(|p| out.get_mut(p)) {
                    *slot = DIGITS[usize::from(nibble)];
                }
            }
        }
        out
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.to_ascii() {
            write!(f, "{}", char::from(c))?;
        }
        Ok(())
    }
}

/// Why a sysfs line did not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineError {
    /// Nothing but whitespace.
    Empty,
    /// A NUL byte.
    EmbeddedNul {
        /// Its position in the line.
        pos: usize,
    },
    /// The UUID field is not a UUID.
    BadUuid(UuidError),
    /// The UUID is the nil UUID.
    NilUuid,
    /// A UUID but no path after it.
    MissingPath,
    /// More after the path.
    TrailingJunk {
        /// The position of the extra field.
        pos: usize,
    },
    /// The path does not start with `/`.
    PathNotAbsolute,
    /// The path has [`PATH_MAX`] bytes or more.
    PathTooLong {
        /// Its length.
        len: usize,
    },
}

impl LineError {
    /// The negative errno: `-ENAMETOOLONG` for a long path, else `-EINVAL`.
    pub fn to_errno(self) -> i32 {
        match self {
            LineError::PathTooLong { .. } => -errno::ENAMETOOLONG,
            _ => -errno::EINVAL,
        }
    }
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LineError::Empty => f.write_str("empty line"),
            LineError::EmbeddedNul { pos } => write!(f, "NUL byte at position {pos}"),
            LineError::BadUuid(e) => write!(f, "bad UUID: {e}"),
            LineError::NilUuid => f.write_str("the nil UUID cannot name a device"),
            LineError::MissingPath => f.write_str("missing device path after the UUID"),
            LineError::TrailingJunk { pos } => {
                write!(
                    f,
                    "unexpected text at position {pos} after the device path (options: trust=0, trust=1)"
                )
            }
            LineError::PathNotAbsolute => f.write_str("device path is not absolute"),
            LineError::PathTooLong { len } => {
                write!(
                    f,
                    "device path of {len} bytes, at most {} allowed",
                    PATH_MAX - 1
                )
            }
        }
    }
}

fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')
}

/// The next whitespace-separated field of `line` at or after `from`: its
/// start and end.
fn next_field(line: &[u8], from: usize) -> Option<(usize, usize)> {
    let rest = line.get(from..)?;
    let start = from + rest.iter().position(|&b| !is_space(b))?;
    let len = line
        .get(start..)
        .and_then(|s| s.iter().position(|&b| is_space(b)))
        .unwrap_or(line.len() - start);
    Some((start, start + len))
}

/// Checks `line` for NUL bytes and emptiness; returns the start and end of
/// its first field.
fn first_field(line: &[u8]) -> Result<(usize, usize), LineError> {
    if let Some(pos) = line.iter().position(|&b| b == 0) {
        return Err(LineError::EmbeddedNul { pos });
    }
    next_field(line, 0).ok_or(LineError::Empty)
}

/// Checks the path field at `(start, end)` of `line` and that nothing
/// follows it.
fn path_field(line: &[u8], (start, end): (usize, usize)) -> Result<&[u8], LineError> {
    if let Some((pos, _)) = next_field(line, end) {
        return Err(LineError::TrailingJunk { pos });
    }
    check_path(line.get(start..end).unwrap_or(&[]))
}

fn check_path(path: &[u8]) -> Result<&[u8], LineError> {
    if path.first() != Some(&b'/') {
        return Err(LineError::PathNotAbsolute);
    }
    if path.len() >= PATH_MAX {
        return Err(LineError::PathTooLong { len: path.len() });
    }
    Ok(path)
}

/// A parsed `register_dev` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DevLine<'a> {
    /// The device's UUID (not nil); `None` in a line of a path alone (a
    /// device formatted by `bcache-rs format-backing`, whose superblock
    /// names it).
    pub uuid: Option<Uuid>,
    /// Its absolute path.
    pub path: &'a [u8],
    /// `trust=1`: the device is trusted not to be written while it is not
    /// registered, so the cache keeps its extents across unregisters;
    /// `trust=0`: it is not; `None`: neither given (the default depends on
    /// the device).
    pub trust: Option<bool>,
}

/// Parses a `register_dev` line, `"[<uuid>] <path> [trust=0|1]\n"`.
pub fn parse_register_dev(line: &[u8]) -> Result<DevLine<'_>, LineError> {
    let (start, end) = first_field(line)?;
    let field = line.get(start..end).unwrap_or(&[]);
    let (uuid, (ps, pe)) = if field.first() == Some(&b'/') {
        (None, (start, end))
    } else {
        let uuid = Uuid::parse(field).map_err(LineError::BadUuid)?;
        if uuid.is_nil() {
            return Err(LineError::NilUuid);
        }
        (
            Some(uuid),
            next_field(line, end).ok_or(LineError::MissingPath)?,
        )
    };
    let mut trust = None;
    let mut at = pe;
    while let Some((s, e)) = next_field(line, at) {
        match line.get(s..e) {
            Some(b"trust=1") => trust = Some(true),
            Some(b"trust=0") => trust = Some(false),
            _ => return Err(LineError::TrailingJunk { pos: s }),
        }
        at = e;
    }
    let path = check_path(line.get(ps..pe).unwrap_or(&[]))?;
    Ok(DevLine { uuid, path, trust })
}

/// Parses a line of one absolute path, as written to `register_cache`.
pub fn parse_path_line(line: &[u8]) -> Result<&[u8], LineError> {
    path_field(line, first_field(line)?)
}
