// SPDX-License-Identifier: GPL-2.0

//! `bcache-rs`: formats and shows bcache_rs cache devices, the userspace
//! side of the `bcache_rs` SSD block cache (the 2010 bcache RFC's
//! `make-bcache`).
//!
//! The on-disk format is defined once, in `rust/bcache_format` (crate
//! `rkm-bcache-format`), which the kernel module includes as well.
//!
//! * `format-cache DEVICE` plans the layout for the device's size, refuses
//!   a device too small for a useful cache, looks for existing signatures
//!   (filesystems, swap, LUKS, partition tables, bcache) and asks before
//!   overwriting them (or refuses without a terminal, unless `--force`),
//!   zeroes the superblock and the reserved metadata regions, wipes the
//!   old signatures' magic, writes the superblock last, syncs, reads it back
//!   and prints the layout.
//! * `show DEVICE` reads the superblock and explains it, or prints the
//!   precise reason it is not valid.
//! * `uuid` prints a random UUID, to name a backing device in
//!   `echo "<uuid> /dev/sdX" > register_dev`.
//!
//! Exit status: 0 success, 1 error (message on standard error prefixed
//! `bcache-rs: `), 2 usage error.

mod device;
mod report;
mod signatures;

use device::Device;
use rkm_bcache_format::{
    check_geometry, make_label, Layout, SbError, Size, Superblock, Uuid, LABEL_SIZE,
    MAX_BUCKET_BYTES, MIN_BLOCK_BYTES, SB_OFFSET, SB_SIZE, SECTOR_SIZE,
};
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

const SYNOPSIS: &str = "\
usage: bcache-rs format-cache DEVICE [--bucket-size SIZE] [--block-size SIZE]
                              [--size SIZE] [--uuid UUID] [--label LABEL]
                              [--force]
       bcache-rs show DEVICE
       bcache-rs uuid
       bcache-rs help";

const HELP: &str = "\
format-cache  write a bcache_rs cache superblock on DEVICE (a block device
              or an image file) and print the layout
  --block-size SIZE   smallest I/O of the cache, 512 B to 4 KiB
                      (default: the device's logical block size; 4 KiB for
                      a file)
  --bucket-size SIZE  unit of allocation and eviction, 4 KiB to 16 MiB
                      (default: 512 KiB, halved down to 4 KiB or the block
                      size while the device has fewer than 1024 buckets)
  --uuid UUID         cache-set UUID (default: random)
  --label LABEL       up to 32 bytes, informational
  --size SIZE         use only the first SIZE bytes of DEVICE (default:
                      all of it)
  --force             overwrite existing signatures without asking
show          read, check and explain the superblock of DEVICE
uuid          print a random UUID, e.g. for register_dev

SIZE is a power of two in bytes, with an optional suffix k, M or G
(KiB, MiB, GiB): 512, 4k, 64K, 1M.
Exit status: 0 success, 1 error, 2 usage error.";

/// The block size for a file, or a block device whose logical block size
/// is unknown.
const DEFAULT_BLOCK_BYTES: u64 = 4096;

/// Why the program stops.
enum Failure {
    /// A bad command line: exit 2.
    Usage(String),
    /// Anything else: exit 1.
    Error(String),
}

type Outcome<T = ()> = Result<T, Failure>;

fn usage<T>(msg: impl Into<String>) -> Outcome<T> {
    Err(Failure::Usage(msg.into()))
}

fn error<T>(msg: impl Into<String>) -> Outcome<T> {
    Err(Failure::Error(msg.into()))
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("bcache-rs: {msg}");
            eprintln!("{SYNOPSIS}");
            ExitCode::from(2)
        }
        Err(Failure::Error(msg)) => {
            eprintln!("bcache-rs: {msg}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &[OsString]) -> Outcome {
    let Some((command, rest)) = args.split_first() else {
        return usage("missing command");
    };
    match command.to_str() {
        Some("format-cache") => format_cache(&FormatArgs::parse(rest)?),
        Some("show") => show(Path::new(one_device(&Options::parse(rest, &[])?)?)),
        Some("uuid") => {
            Options::parse(rest, &[])?.no_positional()?;
            println!("{}", random_uuid()?);
            Ok(())
        }
        Some("help" | "--help" | "-h") => {
            println!("{SYNOPSIS}\n\n{HELP}");
            Ok(())
        }
        _ => usage(format!("unknown command {:?}", command.to_string_lossy())),
    }
}

/// A command's options (`--name value`, `--name=value`, or a flag) and
/// positional arguments (everything after `--` is positional).
struct Options<'a> {
    values: Vec<(&'static str, &'a OsStr)>,
    flags: Vec<&'static str>,
    positional: Vec<&'a OsStr>,
}

impl<'a> Options<'a> {
    /// `spec` lists the options: name and whether it takes a value.
    fn parse(args: &'a [OsString], spec: &[(&'static str, bool)]) -> Outcome<Options<'a>> {
        let mut o = Options {
            values: Vec::new(),
            flags: Vec::new(),
            positional: Vec::new(),
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let text = arg.to_str().unwrap_or("");
            if text == "--" {
                o.positional.extend(it.map(OsString::as_os_str));
                break;
            }
            if !text.starts_with('-') || text == "-" {
                o.positional.push(arg);
                continue;
            }
            let (name, inline) = match text.split_once('=') {
                Some((name, value)) => (name, Some(OsStr::new(value))),
                None => (text, None),
            };
            let Some(&(name, takes_value)) = spec.iter().find(|(n, _)| *n == name) else {
                return usage(format!("unknown option {text}"));
            };
            if takes_value {
                let value = match inline {
                    Some(v) => v,
                    None => match it.next() {
                        Some(v) => v.as_os_str(),
                        None => return usage(format!("{name} needs a value")),
                    },
                };
                if o.values.iter().any(|(n, _)| *n == name) {
                    return usage(format!("{name} given twice"));
                }
                o.values.push((name, value));
            } else if inline.is_some() {
                return usage(format!("{name} takes no value"));
            } else {
                o.flags.push(name);
            }
        }
        Ok(o)
    }

    fn value(&self, name: &str) -> Option<&'a OsStr> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    fn text(&self, name: &str) -> Outcome<Option<&'a str>> {
        match self.value(name) {
            None => Ok(None),
            Some(v) => match v.to_str() {
                Some(t) => Ok(Some(t)),
                None => usage(format!("{name}: not valid UTF-8")),
            },
        }
    }

    fn no_positional(&self) -> Outcome {
        match self.positional.first() {
            None => Ok(()),
            Some(extra) => usage(format!("unexpected argument {:?}", extra.to_string_lossy())),
        }
    }
}

/// The single DEVICE argument.
fn one_device<'a>(o: &Options<'a>) -> Outcome<&'a OsStr> {
    match o.positional.as_slice() {
        [device] => Ok(device),
        [] => usage("missing DEVICE"),
        [_, extra, ..] => usage(format!("unexpected argument {:?}", extra.to_string_lossy())),
    }
}

/// Parses a SIZE: digits and an optional binary suffix.
fn parse_size(text: &str) -> Option<u64> {
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(digits);
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        _ => return None,
    };
    number.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// The arguments of `format-cache`.
struct FormatArgs<'a> {
    device: &'a OsStr,
    block: Option<u64>,
    bucket: Option<u64>,
    size: Option<u64>,
    uuid: Option<Uuid>,
    label: [u8; LABEL_SIZE],
    force: bool,
}

impl<'a> FormatArgs<'a> {
    fn parse(args: &'a [OsString]) -> Outcome<FormatArgs<'a>> {
        let spec = [
            ("--bucket-size", true),
            ("--block-size", true),
            ("--size", true),
            ("--uuid", true),
            ("--label", true),
            ("--force", false),
        ];
        let o = Options::parse(args, &spec)?;
        let size = |name: &str| -> Outcome<Option<u64>> {
            match o.text(name)? {
                None => Ok(None),
                Some(t) => match parse_size(t) {
                    Some(v) => Ok(Some(v)),
                    None => usage(format!("{name}: bad SIZE {t:?} (e.g. 512, 4k, 64K, 1M)")),
                },
            }
        };
        let (block, bucket) = (size("--block-size")?, size("--bucket-size")?);
        let cache_size = match o.text("--size")? {
            None => None,
            Some(t) => match parse_size(t) {
                Some(v) => Some(v),
                None => return usage(format!("--size: bad SIZE {t:?} (bytes, e.g. 16M, 1G)")),
            },
        };
        // The sizes alone, before the device is opened.
        let checked = check_geometry(
            block.unwrap_or(MIN_BLOCK_BYTES),
            bucket.unwrap_or(MAX_BUCKET_BYTES.max(block.unwrap_or(0))),
        );
        if let Err(e) = checked {
            return usage(e.to_string());
        }
        let uuid = match o.text("--uuid")? {
            None => None,
            Some(t) => match Uuid::parse(t.trim().as_bytes()) {
                Ok(u) if u.is_nil() => return usage("--uuid: the nil UUID cannot name a cache"),
                Ok(u) => Some(u),
                Err(e) => return usage(format!("--uuid: {e}")),
            },
        };
        let label = match o.value("--label") {
            None => [0; LABEL_SIZE],
            Some(t) => match make_label(t.as_encoded_bytes()) {
                Some(l) => l,
                None => return usage(format!("--label: at most {LABEL_SIZE} bytes, no NUL")),
            },
        };
        Ok(FormatArgs {
            device: one_device(&o)?,
            block,
            bucket,
            size: cache_size,
            uuid,
            label,
            force: o.flags.contains(&"--force"),
        })
    }
}

fn random_uuid() -> Outcome<Uuid> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .or_else(|e| error(format!("cannot read /dev/urandom: {e}")))?;
    Ok(Uuid::v4_from_random(bytes))
}

/// Maps an I/O error to a failure naming the device and the step.
fn io_failure<'a>(name: &'a str, what: &'a str) -> impl FnOnce(std::io::Error) -> Failure + 'a {
    move |e| Failure::Error(format!("{name}: {what}: {e}"))
}

fn format_cache(args: &FormatArgs<'_>) -> Outcome {
    let path = Path::new(args.device);
    let name = &path.display().to_string();
    let dev = Device::open(path, true).map_err(Failure::Error)?;
    let logical = dev.logical_block.unwrap_or(MIN_BLOCK_BYTES);
    if logical > SB_SIZE as u64 {
        return error(format!(
            "{name}: logical block size {} is larger than the {} superblock",
            Size(logical),
            Size(SB_SIZE as u64)
        ));
    }
    let block = args
        .block
        .unwrap_or(dev.logical_block.unwrap_or(DEFAULT_BLOCK_BYTES));
    if block < logical {
        return error(format!(
            "block size {} is smaller than {name}'s logical block size {}",
            Size(block),
            Size(logical)
        ));
    }
    let size = match args.size {
        None => dev.size,
        Some(s) if s <= dev.size => s,
        Some(s) => {
            return error(format!(
                "{name}: --size {} is larger than the device ({})",
                Size(s),
                Size(dev.size)
            ))
        }
    };
    let bucket = args
        .bucket
        .unwrap_or_else(|| Layout::default_bucket_bytes(size, block));
    let layout = Layout::plan(size, block, bucket).or_else(|e| {
        error(format!(
            "{name}: {e} (block size {}, bucket size {})",
            Size(block),
            Size(bucket)
        ))
    })?;
    let io = |what| io_failure(name, what);
    let found = signatures::detect(&dev).map_err(io("cannot read"))?;
    if !found.is_empty() && !args.force {
        confirm(&format!("{name} has {}", signatures::describe(&found)))?;
    }
    let mut sb = Superblock::new(layout, args.uuid.map_or_else(random_uuid, Ok)?);
    sb.label = args.label;
    sb.created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut block_buf = [0u8; SB_SIZE];
    sb.encode(&mut block_buf);
    // The old superblock and the metadata regions first, the new superblock
    // last: an interrupted format leaves no valid superblock.
    let metadata_end = layout.data_start_sector() * SECTOR_SIZE;
    signatures::wipe(&dev, &found).map_err(io("cannot wipe signatures"))?;
    dev.zero(SB_OFFSET, metadata_end - SB_OFFSET)
        .map_err(io("cannot zero the metadata"))?;
    dev.sync().map_err(io("cannot sync"))?;
    dev.write_at(SB_OFFSET, &block_buf)
        .map_err(io("cannot write the superblock"))?;
    dev.sync().map_err(io("cannot sync"))?;
    let back = dev
        .read_at(SB_OFFSET, SB_SIZE)
        .map_err(io("cannot read back"))?;
    match Superblock::decode(&back) {
        Ok(read) if read == sb => {}
        Ok(_) => return error(format!("{name}: the superblock read back differs")),
        Err(e) => return error(format!("{name}: the superblock read back is invalid: {e}")),
    }
    for f in &found {
        println!(
            "wiped {} signature ({} bytes at byte {})",
            f.kind, f.len, f.offset
        );
    }
    println!("formatted {name} as a bcache_rs cache");
    print!("{}", report::describe(&sb));
    Ok(())
}

/// Asks `what; overwrite? [y/N]` on a terminal; refuses without one.
fn confirm(what: &str) -> Outcome {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return error(format!("{what}; use --force to overwrite it"));
    }
    eprint!("{what}; overwrite? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .or_else(|e| error(format!("cannot read the answer: {e}")))?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => error("aborted: nothing written"),
    }
}

fn show(path: &Path) -> Outcome {
    let name = &path.display().to_string();
    let dev = Device::open(path, false).map_err(Failure::Error)?;
    let block = dev
        .read_at(SB_OFFSET, SB_SIZE)
        .map_err(io_failure(name, "cannot read"))?;
    let sb = match Superblock::decode(&block) {
        Ok(sb) => sb,
        Err(e) => {
            let mut msg = format!("{name}: {e}");
            if e == SbError::NotFormatted {
                if let Ok(found) = signatures::detect(&dev) {
                    if !found.is_empty() {
                        msg += &format!(" (it has {})", signatures::describe(&found));
                    }
                }
            }
            return error(msg);
        }
    };
    let kind = if dev.is_block { "block device" } else { "file" };
    println!("{name}: bcache_rs cache, {kind} of {}", Size(dev.size));
    print!("{}", report::describe(&sb));
    sb.check_device(dev.size)
        .or_else(|e| error(format!("{name}: {e}")))?;
    if let Err(e) = sb.check_writable() {
        println!("note: {e}");
    }
    Ok(())
}
