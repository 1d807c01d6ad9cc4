// SPDX-License-Identifier: GPL-2.0

//! `bcache-rs`: formats and shows bcache_rs cache and backing devices, the
//! userspace side of the `bcache_rs` SSD block cache (the 2010 bcache
//! RFC's `make-bcache`). Its command line is `clap`'s (derive): `--help` on
//! every command.
//!
//! The on-disk format is defined once, in `rust/bcache_format` (crate
//! `rkm-bcache-format`), which the kernel module includes as well.
//!
//! * `format-cache DEVICE` plans the layout for the device's size, refuses
//!   a device too small for a useful cache, looks for existing signatures
//!   (filesystems, swap, LUKS, partition tables, bcache, bcache_rs) and
//!   asks before overwriting them (or refuses without a terminal, unless
//!   `--force`), zeroes the superblock and the reserved metadata regions,
//!   wipes the old signatures' magic, writes the superblock last, syncs,
//!   reads it back and prints the layout.
//! * `format-backing DEVICE` writes a backing superblock the same way (its
//!   data then starts at `--data-offset`; the module does not read it yet).
//! * `show DEVICE` reads the superblock (a cache's or a backing device's)
//!   and explains it, or prints the precise reason it is not valid.
//! * `uuid` prints a random UUID, to name a backing device in
//!   `echo "<uuid> /dev/sdX" > register_dev`.
//! * `register DEVICE` registers a cache or a formatted backing device
//!   (their superblocks say so) or, with `--uuid`, a backing device in
//!   place (`--trust`: `trust=1`); what is registered already is success,
//!   so that a repeated call does nothing.
//! * `unregister [DEVICE]` stops the disk over DEVICE, or unregisters the
//!   cache (DEVICE the cache's, or none).
//! * `attach DEVICE` and `detach DEVICE` attach the disk over DEVICE to
//!   the cache again, or detach it (uncached, its cached data dropped).
//! * `status [--json]` shows the registered cache and devices.
//! * `probe DEVICE` prints what DEVICE is for udev's `IMPORT{program}`
//!   (`BCACHE_RS_TYPE=cache` or `backing`, `BCACHE_RS_UUID=`), nothing for
//!   anything else: the udev rule (`udev/69-bcache-rs.rules`) registers
//!   what it finds.
//! * `wipe DEVICE` erases a bcache_rs superblock (a cache's or a backing
//!   device's), and nothing else.
//!
//! Exit status: 0 success, 1 error (message on standard error prefixed
//! `bcache-rs: `), 2 usage error (the same, then the usage).

mod device;
mod report;
mod signatures;
mod sysfs;

use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand};
use device::Device;
use rkm_bcache_format::{
    check_geometry, make_label, set_tag, BackingError, BackingSb, JournalLayout, Layout, SbError,
    Size, Superblock, Uuid, DEFAULT_DATA_OFFSET, JBLOCK_SIZE, LABEL_SIZE, MAX_BUCKET_BYTES,
    MIN_BLOCK_BYTES, MIN_DATA_OFFSET, REGION_ALIGN_SECTORS, SB_OFFSET, SB_SIZE, SECTOR_SIZE,
};
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

const AFTER_HELP: &str = "\
SIZE is a number of bytes with an optional suffix k, M or G (KiB, MiB,
GiB): 512, 4k, 64K, 1M.
Exit status: 0 success, 1 error (one line on standard error, prefixed
\"bcache-rs: \"), 2 usage error (the same, then the usage).";

/// Formats and shows bcache_rs cache and backing devices (the SSD block
/// cache's make-bcache).
#[derive(Parser)]
#[command(name = "bcache-rs", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a bcache_rs cache superblock on DEVICE (a block device or an
    /// image file) and print the layout
    FormatCache(FormatCacheArgs),
    /// Write a backing superblock on DEVICE: its data then starts at
    /// --data-offset (what /dev/bcache_rsN will expose); existing data is
    /// not moved
    FormatBacking(FormatBackingArgs),
    /// Read, check and explain the superblock of DEVICE (a cache or a
    /// backing device), or print why it is not valid
    Show {
        /// A block device or an image file.
        device: PathBuf,
    },
    /// Print a random UUID, e.g. to name a backing device in register_dev
    Uuid,
    /// Register DEVICE with the bcache_rs module: a cache (formatted by
    /// format-cache), a backing device formatted by format-backing, or with
    /// --uuid a backing device in place; success if it is registered
    /// already
    Register(RegisterArgs),
    /// Stop the bcache_rs disk over DEVICE (or DEVICE, a bcache_rsN), or
    /// unregister the cache (DEVICE the cache device, or no DEVICE): the
    /// cache then writes its checkpoint
    Unregister {
        /// A backing device, a bcache_rsN disk or the cache device.
        device: Option<PathBuf>,
    },
    /// Print what DEVICE is, as udev properties (BCACHE_RS_TYPE=cache or
    /// backing, BCACHE_RS_UUID=...), for the udev rule; nothing if it holds
    /// no valid bcache_rs superblock
    Probe {
        /// A block device or an image file.
        device: PathBuf,
    },
    /// Attach the bcache_rs disk over DEVICE (a backing device, or a
    /// bcache_rsN) to the registered cache (again, after detach)
    Attach {
        /// A backing device or a bcache_rsN disk.
        device: PathBuf,
    },
    /// Detach the bcache_rs disk over DEVICE from its cache: it goes on
    /// uncached, its cached data is dropped, and a cache registered later
    /// leaves it alone until attach
    Detach {
        /// A backing device or a bcache_rsN disk.
        device: PathBuf,
    },
    /// Show the registered cache and devices: state, hits, index
    Status {
        /// One JSON object: {"cache": {...} or null, "devices": [...]}
        #[arg(long)]
        json: bool,
    },
    /// Erase the bcache_rs superblock of DEVICE (a cache's or a backing
    /// device's), so that nothing registers it; nothing else is written
    Wipe {
        /// A block device or an image file (not registered).
        device: PathBuf,
    },
}

#[derive(Args)]
struct RegisterArgs {
    /// A cache device, or a backing device (with --uuid).
    device: PathBuf,
    /// Register a backing device in place, named by UUID
    #[arg(long, value_name = "UUID", value_parser = uuid_arg)]
    uuid: Option<Uuid>,
    /// The backing device is not written while it is not registered: the
    /// cache keeps its extents across unregisters (register_dev trust=1)
    #[arg(long, requires = "uuid")]
    trust: bool,
}

#[derive(Args)]
struct FormatCacheArgs {
    /// A block device or an image file.
    device: PathBuf,
    /// Smallest I/O of the cache, 512 B to 4 KiB [default: the device's
    /// logical block size; 4 KiB for a file]
    #[arg(long, value_name = "SIZE", value_parser = size_arg)]
    block_size: Option<u64>,
    /// Unit of allocation and eviction, 4 KiB to 16 MiB [default: 512 KiB,
    /// halved down to 4 KiB or the block size while the device has fewer
    /// than 1024 buckets]
    #[arg(long, value_name = "SIZE", value_parser = size_arg)]
    bucket_size: Option<u64>,
    /// Use only the first SIZE bytes of DEVICE [default: all of it]
    #[arg(long, value_name = "SIZE", value_parser = size_arg)]
    size: Option<u64>,
    /// The cache-set UUID [default: random]
    #[arg(long, value_name = "UUID", value_parser = uuid_arg)]
    uuid: Option<Uuid>,
    /// Up to 32 bytes, informational
    #[arg(long, value_name = "LABEL", value_parser = label_arg)]
    label: Option<[u8; LABEL_SIZE]>,
    /// Overwrite existing signatures without asking
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
struct FormatBackingArgs {
    /// A block device or an image file.
    device: PathBuf,
    /// Where the data starts: a multiple of 4 KiB, at least 8 KiB
    /// [default: 8 KiB]
    #[arg(long, value_name = "SIZE", value_parser = size_arg)]
    data_offset: Option<u64>,
    /// The device's UUID [default: random]
    #[arg(long, value_name = "UUID", value_parser = uuid_arg)]
    uuid: Option<Uuid>,
    /// Up to 32 bytes, informational
    #[arg(long, value_name = "LABEL", value_parser = label_arg)]
    label: Option<[u8; LABEL_SIZE]>,
    /// Overwrite existing signatures without asking
    #[arg(long)]
    force: bool,
}

/// The block size for a file, or a block device whose logical block size
/// is unknown.
const DEFAULT_BLOCK_BYTES: u64 = 4096;

/// Why the program stops.
enum Failure {
    /// A bad command line: exit 2, with the usage of `command`.
    Usage(String, &'static str),
    /// Anything else: exit 1.
    Error(String),
}

type Outcome<T = ()> = Result<T, Failure>;

fn error<T>(msg: impl Into<String>) -> Outcome<T> {
    Err(Failure::Error(msg.into()))
}

/// The usage of subcommand `name` (of the program if empty).
fn usage_of(name: &str) -> String {
    let mut cmd = Cli::command();
    // Built, the subcommands' usages name the program.
    cmd.build();
    let usage = match cmd.find_subcommand_mut(name) {
        Some(sub) => sub.render_usage(),
        None => cmd.render_usage(),
    };
    usage.to_string()
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            print!("{e}");
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            eprintln!("bcache-rs: missing command");
            eprint!("{}", usage_of(""));
            eprintln!();
            return ExitCode::from(2);
        }
        Err(e) => {
            // clap's message, as one `bcache-rs: ` line, then the usage.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("");
            let msg = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("bcache-rs: {msg}");
            for line in text.lines().skip(1).filter(|l| !l.is_empty()) {
                eprintln!("{line}");
            }
            if !text.contains("Usage:") {
                // The usage of the command given, if it is one.
                let command = std::env::args().nth(1).unwrap_or_default();
                eprint!("{}", usage_of(&command));
                eprintln!();
            }
            return ExitCode::from(2);
        }
    };
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg, command)) => {
            eprintln!("bcache-rs: {msg}");
            eprint!("{}", usage_of(command));
            eprintln!();
            ExitCode::from(2)
        }
        Err(Failure::Error(msg)) => {
            eprintln!("bcache-rs: {msg}");
            ExitCode::from(1)
        }
    }
}

fn run(command: Command) -> Outcome {
    match command {
        Command::FormatCache(args) => format_cache(&args),
        Command::FormatBacking(args) => format_backing(&args),
        Command::Show { device } => show(&device),
        Command::Uuid => {
            println!("{}", random_uuid()?);
            Ok(())
        }
        Command::Register(args) => register(&args),
        Command::Unregister { device } => unregister(device.as_deref()),
        Command::Status { json } => status(json),
        Command::Probe { device } => probe(&device),
        Command::Attach { device } => attach_detach(&device, "attach"),
        Command::Detach { device } => attach_detach(&device, "detach"),
        Command::Wipe { device } => wipe(&device),
    }
}

/// The module's directory, or why it is not there.
fn module_root() -> Outcome<PathBuf> {
    let root = sysfs::root();
    if root.is_dir() {
        Ok(root)
    } else {
        error(format!(
            "the bcache_rs module is not loaded ({} is missing): modprobe bcache_rs",
            root.display()
        ))
    }
}

/// `path` made absolute (the kernel opens it from its own root).
fn absolute(path: &Path) -> Outcome<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    std::env::current_dir()
        .map(|d| d.join(path))
        .or_else(|e| error(format!("cannot resolve {}: {e}", path.display())))
}

/// The kernel's name of the block device at `path` (`sdb` for
/// `/dev/disk/by-id/...`; the last component of a path that does not
/// resolve).
fn kernel_name(path: &Path) -> Option<String> {
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    Some(real.file_name()?.to_string_lossy().into_owned())
}

fn write_sysfs(file: &Path, line: &str) -> Outcome {
    sysfs::write_line(file, line)
        .or_else(|e| error(format!("{}: {e} (the kernel log says why)", file.display())))
}

fn register(args: &RegisterArgs) -> Outcome {
    let name = &args.device.display().to_string();
    let root = module_root()?;
    let dev = Device::open(&args.device, false).map_err(Failure::Error)?;
    let block = dev
        .read_at(SB_OFFSET, SB_SIZE)
        .map_err(io_failure(name, "cannot read"))?;
    let path = absolute(&args.device)?;
    let path_text = path.to_string_lossy().into_owned();
    match Superblock::decode(&block) {
        Ok(sb) => {
            if args.uuid.is_some() {
                return Err(Failure::Usage(
                    format!("{name} is a cache: --uuid names backing devices"),
                    "register",
                ));
            }
            if let Some(dir) = sysfs::cache_dir() {
                if sysfs::read(&dir.join("set_uuid")).as_deref() == Some(&sb.set_uuid.to_string()) {
                    println!("{name}: cache {} is registered already", sb.set_uuid);
                    return Ok(());
                }
            }
            if let Err(e) = write_sysfs(&root.join("register_cache"), &path_text) {
                // Registered meanwhile by another caller (udev): done.
                let dir = sysfs::cache_dir();
                if dir.and_then(|d| sysfs::read(&d.join("set_uuid")))
                    == Some(sb.set_uuid.to_string())
                {
                    println!("{name}: cache {} is registered already", sb.set_uuid);
                    return Ok(());
                }
                return Err(e);
            }
            let restored = sysfs::cache_dir()
                .and_then(|d| sysfs::read(&d.join("restored_extents")))
                .unwrap_or_else(|| "?".into());
            println!(
                "{name}: cache {} registered ({restored} extents restored)",
                sb.set_uuid
            );
            Ok(())
        }
        Err(SbError::BackingDevice) => {
            let b = BackingSb::decode(&block).or_else(|e| error(format!("{name}: {e}")))?;
            if let Some(u) = args.uuid.filter(|u| *u != b.uuid) {
                return error(format!(
                    "{name}: UUID {u} given, its backing superblock names {}",
                    b.uuid
                ));
            }
            if let Some((disk, _)) = sysfs::device_of(&b.uuid) {
                println!("{name}: registered already as {disk}");
                return Ok(());
            }
            // Trusted (the module's default for a formatted device): its
            // data is reached through bcache_rs alone.
            if let Err(e) = write_sysfs(&root.join("register_dev"), &path_text) {
                // Registered meanwhile by another caller (udev): done.
                if let Some((disk, _)) = sysfs::device_of(&b.uuid) {
                    println!("{name}: registered already as {disk}");
                    return Ok(());
                }
                return Err(e);
            }
            let disk =
                sysfs::device_of(&b.uuid).map_or_else(|| "a bcache_rs disk".into(), |(n, _)| n);
            println!("{name}: backing device {} registered as {disk}", b.uuid);
            Ok(())
        }
        Err(e) => {
            let Some(uuid) = args.uuid else {
                return Err(Failure::Usage(
                    format!("{name} is not a cache ({e}): a backing device in place needs --uuid"),
                    "register",
                ));
            };
            let kname = kernel_name(&args.device);
            if let Some((disk, dir)) = sysfs::device_of(&uuid) {
                if kname.is_some() && sysfs::read(&dir.join("backing_dev")) == kname {
                    println!("{name}: registered already as {disk}");
                    return Ok(());
                }
                return error(format!("UUID {uuid} is registered already, as {disk}"));
            }
            let line = format!(
                "{uuid} {path_text}{}",
                if args.trust { " trust=1" } else { "" }
            );
            write_sysfs(&root.join("register_dev"), &line)?;
            let disk =
                sysfs::device_of(&uuid).map_or_else(|| "a bcache_rs disk".into(), |(n, _)| n);
            println!(
                "{name}: registered as {disk}{}",
                if args.trust { " (trusted)" } else { "" }
            );
            Ok(())
        }
    }
}

/// `probe`: the device's kind and UUID as `KEY=VALUE` lines (udev's
/// `IMPORT{program}`), nothing for a device without a valid superblock of
/// ours; an unreadable device is an error.
fn probe(device: &Path) -> Outcome {
    let name = device.display().to_string();
    let dev = Device::open(device, false).map_err(Failure::Error)?;
    let block = dev
        .read_at(SB_OFFSET, SB_SIZE)
        .map_err(io_failure(&name, "cannot read"))?;
    let found = match Superblock::decode(&block) {
        Ok(sb) => Some(("cache", sb.set_uuid)),
        Err(SbError::BackingDevice) => BackingSb::decode(&block).ok().map(|b| ("backing", b.uuid)),
        Err(_) => None,
    };
    if let Some((kind, uuid)) = found {
        println!("BCACHE_RS_TYPE={kind}");
        println!("BCACHE_RS_UUID={uuid}");
    }
    Ok(())
}

fn unregister(device: Option<&Path>) -> Outcome {
    module_root()?;
    let cache = sysfs::cache_dir();
    let Some(device) = device else {
        let Some(dir) = cache else {
            return error("no cache is registered");
        };
        write_sysfs(&dir.join("unregister"), "1")?;
        println!("cache unregistered (its checkpoint written)");
        return Ok(());
    };
    let name = device.display().to_string();
    let kname = kernel_name(device).unwrap_or_else(|| name.clone());
    if let Some((disk, dir)) = disk_of(&kname) {
        write_sysfs(&dir.join("stop"), "1")?;
        println!("{disk} stopped");
        return Ok(());
    }
    if let Some(dir) = cache {
        if sysfs::read(&dir.join("device")).as_deref() == Some(&kname) {
            write_sysfs(&dir.join("unregister"), "1")?;
            println!("cache on {kname} unregistered (its checkpoint written)");
            return Ok(());
        }
    }
    error(format!("{name} is not registered with bcache_rs"))
}

/// The registered disk named `kname` (`bcache_rs0`) or over the backing
/// device `kname`, and its sysfs directory.
fn disk_of(kname: &str) -> Option<(String, PathBuf)> {
    sysfs::devices().into_iter().find(|(disk, dir)| {
        disk == kname || sysfs::read(&dir.join("backing_dev")).as_deref() == Some(kname)
    })
}

/// `attach` or `detach` (`what`) of the disk over `device`.
fn attach_detach(device: &Path, what: &str) -> Outcome {
    module_root()?;
    let name = device.display().to_string();
    let kname = kernel_name(device).unwrap_or_else(|| name.clone());
    let Some((disk, dir)) = disk_of(&kname) else {
        return error(format!("{name} is not registered with bcache_rs"));
    };
    write_sysfs(&dir.join(what), "1")?;
    let state = sysfs::read(&dir.join("state")).unwrap_or_else(|| "?".into());
    println!("{disk}: {what}ed ({state})");
    Ok(())
}

fn status(json: bool) -> Outcome {
    module_root()?;
    let cache = sysfs::cache_dir().map(|d| sysfs::values(&d, sysfs::CACHE_FILES));
    let devices: Vec<(String, Vec<(&str, String)>)> = sysfs::devices()
        .into_iter()
        .map(|(n, d)| (n, sysfs::values(&d, sysfs::DEV_FILES)))
        .collect();
    if json {
        let cache = cache.map_or_else(|| "null".into(), |c| sysfs::json_object(&c));
        let devs: Vec<String> = devices
            .iter()
            .map(|(n, v)| {
                let mut pairs = vec![("name", n.clone())];
                pairs.extend(v.iter().cloned());
                sysfs::json_object(&pairs)
            })
            .collect();
        println!("{{\"cache\": {cache}, \"devices\": [{}]}}", devs.join(", "));
        return Ok(());
    }
    let get = |v: &[(&str, String)], k: &str| {
        v.iter()
            .find(|(f, _)| *f == k)
            .map_or_else(|| "?".to_string(), |(_, x)| x.clone())
    };
    match &cache {
        Some(c) => println!(
            "cache {} on {}: {}, {} of {} buckets in use, {} extents ({} restored at registration), {} devices attached",
            get(c, "set_uuid"),
            get(c, "device"),
            get(c, "state"),
            get(c, "buckets_in_use"),
            get(c, "buckets_total"),
            get(c, "index_entries"),
            get(c, "restored_extents"),
            get(c, "attached")
        ),
        None => println!("no cache registered"),
    }
    for (n, v) in &devices {
        println!(
            "{n}: {} on {}, {}, {}, {}, hit ratio {}% ({} hits, {} misses)",
            get(v, "uuid"),
            get(v, "backing_dev"),
            get(v, "state"),
            get(v, "cache_mode"),
            if get(v, "trusted") == "1" {
                "trusted"
            } else {
                "not trusted"
            },
            get(v, "hit_ratio"),
            get(v, "hits"),
            get(v, "misses")
        );
    }
    Ok(())
}

fn wipe(path: &Path) -> Outcome {
    let name = &path.display().to_string();
    let dev = Device::open(path, true).map_err(Failure::Error)?;
    let block = dev
        .read_at(SB_OFFSET, SB_SIZE)
        .map_err(io_failure(name, "cannot read"))?;
    let what = match Superblock::decode(&block) {
        Ok(sb) => format!("cache {}", sb.set_uuid),
        Err(SbError::BackingDevice) => match BackingSb::decode(&block) {
            Ok(b) => format!("backing device {}", b.uuid),
            Err(_) => "damaged backing superblock".into(),
        },
        Err(SbError::NotFormatted | SbError::ForeignBcache) => {
            return error(format!("{name}: no bcache_rs superblock: nothing wiped"));
        }
        // A damaged superblock of ours (its magic is there).
        Err(e) => format!("damaged superblock ({e})"),
    };
    dev.write_at(SB_OFFSET, &[0u8; SB_SIZE])
        .and_then(|()| dev.sync())
        .map_err(io_failure(name, "cannot write"))?;
    println!("{name}: wiped the superblock of {what}");
    Ok(())
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

fn size_arg(text: &str) -> Result<u64, String> {
    parse_size(text).ok_or_else(|| format!("bad SIZE {text:?} (e.g. 512, 4k, 64K, 1M)"))
}

fn uuid_arg(text: &str) -> Result<Uuid, String> {
    match Uuid::parse(text.trim().as_bytes()) {
        Ok(u) if u.is_nil() => Err("the nil UUID cannot name a device".to_string()),
        Ok(u) => Ok(u),
        Err(e) => Err(e.to_string()),
    }
}

fn label_arg(text: &str) -> Result<[u8; LABEL_SIZE], String> {
    make_label(text.as_bytes()).ok_or_else(|| format!("at most {LABEL_SIZE} bytes, no NUL"))
}

/// The seconds since the Unix epoch.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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

fn format_cache(args: &FormatCacheArgs) -> Outcome {
    // The sizes alone, before the device is opened.
    let checked = check_geometry(
        args.block_size.unwrap_or(MIN_BLOCK_BYTES),
        args.bucket_size
            .unwrap_or(MAX_BUCKET_BYTES.max(args.block_size.unwrap_or(0))),
    );
    if let Err(e) = checked {
        return Err(Failure::Usage(e.to_string(), "format-cache"));
    }
    let path = args.device.as_path();
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
        .block_size
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
        .bucket_size
        .unwrap_or_else(|| Layout::default_bucket_bytes(size, block));
    let layout = Layout::plan(size, block, bucket).or_else(|e| {
        error(format!(
            "{name}: {e} (block size {}, bucket size {})",
            Size(block),
            Size(bucket)
        ))
    })?;
    let found = signatures_to_overwrite(&dev, name, args.force)?;
    let mut sb = Superblock::new(layout, args.uuid.map_or_else(random_uuid, Ok)?);
    sb.label = args.label.unwrap_or([0; LABEL_SIZE]);
    sb.created = now();
    let mut block = [0u8; SB_SIZE];
    sb.encode(&mut block);
    let metadata_end = layout.data_start_sector() * SECTOR_SIZE;
    write_superblock(&dev, name, &found, metadata_end, &block, |b| {
        Superblock::decode(b).map(|read| read == sb)
    })?;
    println!("formatted {name} as a bcache_rs cache");
    print!("{}", report::describe(&sb));
    Ok(())
}

/// The signatures found on `dev`, once the user agreed to overwrite them
/// (or `force`).
fn signatures_to_overwrite(
    dev: &Device,
    name: &str,
    force: bool,
) -> Outcome<Vec<signatures::Found>> {
    let found = signatures::detect(dev).map_err(io_failure(name, "cannot read"))?;
    if !found.is_empty() && !force {
        confirm(&format!("{name} has {}", signatures::describe(&found)))?;
    }
    Ok(found)
}

/// Writes the superblock `block` of `dev`: the `found` signatures' magic
/// wiped and the bytes from the superblock up to `zero_end` zeroed first,
/// the superblock last (an interrupted format leaves no valid one), each
/// step synced; then reads it back and checks it with `same` (decodes it
/// and compares it with what was encoded), and lists the wiped signatures.
fn write_superblock<E: std::fmt::Display>(
    dev: &Device,
    name: &str,
    found: &[signatures::Found],
    zero_end: u64,
    block: &[u8; SB_SIZE],
    same: impl Fn(&[u8]) -> Result<bool, E>,
) -> Outcome {
    let io = |what| io_failure(name, what);
    signatures::wipe(dev, found).map_err(io("cannot wipe signatures"))?;
    dev.zero(SB_OFFSET, zero_end - SB_OFFSET)
        .map_err(io("cannot zero the metadata"))?;
    dev.sync().map_err(io("cannot sync"))?;
    dev.write_at(SB_OFFSET, block)
        .map_err(io("cannot write the superblock"))?;
    dev.sync().map_err(io("cannot sync"))?;
    let back = dev
        .read_at(SB_OFFSET, SB_SIZE)
        .map_err(io("cannot read back"))?;
    match same(&back) {
        Ok(true) => {}
        Ok(false) => return error(format!("{name}: the superblock read back differs")),
        Err(e) => return error(format!("{name}: the superblock read back is invalid: {e}")),
    }
    for f in found {
        println!(
            "wiped {} signature ({} bytes at byte {})",
            f.kind, f.len, f.offset
        );
    }
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

/// Writes a backing superblock on `args.device` (see `BackingSb`): the old
/// signatures' magic wiped, the bytes from the superblock to the data
/// offset zeroed, the superblock written last, synced and read back.
fn format_backing(args: &FormatBackingArgs) -> Outcome {
    let offset_bytes = args
        .data_offset
        .unwrap_or(DEFAULT_DATA_OFFSET * SECTOR_SIZE);
    let align = REGION_ALIGN_SECTORS * SECTOR_SIZE;
    if offset_bytes < MIN_DATA_OFFSET * SECTOR_SIZE || !offset_bytes.is_multiple_of(align) {
        return Err(Failure::Usage(
            format!(
                "--data-offset {}: must be a multiple of {} from {}",
                Size(offset_bytes),
                Size(align),
                Size(MIN_DATA_OFFSET * SECTOR_SIZE)
            ),
            "format-backing",
        ));
    }
    let path = args.device.as_path();
    let name = &path.display().to_string();
    let dev = Device::open(path, true).map_err(Failure::Error)?;
    let sectors = dev.size / SECTOR_SIZE;
    let offset = offset_bytes / SECTOR_SIZE;
    if sectors <= offset {
        return error(format!(
            "{name}: device too small: {}, the data offset is {}",
            Size(dev.size),
            Size(offset_bytes)
        ));
    }
    let found = signatures_to_overwrite(&dev, name, args.force)?;
    let mut sb = BackingSb::new(args.uuid.map_or_else(random_uuid, Ok)?, offset, sectors);
    sb.label = args.label.unwrap_or([0; LABEL_SIZE]);
    sb.created = now();
    let mut block = [0u8; SB_SIZE];
    sb.encode(&mut block);
    write_superblock(&dev, name, &found, offset_bytes, &block, |b| {
        BackingSb::decode(b).map(|read| read == sb)
    })?;
    println!("formatted {name} as a bcache_rs backing device");
    print!("{}", report::describe_backing(&sb, sectors));
    Ok(())
}

fn show(path: &Path) -> Outcome {
    let name = &path.display().to_string();
    let dev = Device::open(path, false).map_err(Failure::Error)?;
    let block = dev
        .read_at(SB_OFFSET, SB_SIZE)
        .map_err(io_failure(name, "cannot read"))?;
    let kind = if dev.is_block { "block device" } else { "file" };
    let sb = match Superblock::decode(&block) {
        Ok(sb) => sb,
        Err(e) => {
            // No cache magic: a backing device's superblock, valid or
            // damaged?
            let backing = match e {
                SbError::BackingDevice => BackingSb::decode(&block),
                _ => Err(BackingError::NotFormatted),
            };
            match backing {
                Ok(b) => {
                    println!(
                        "{name}: bcache_rs backing device, {kind} of {}",
                        Size(dev.size)
                    );
                    print!("{}", report::describe_backing(&b, dev.size / SECTOR_SIZE));
                    return b
                        .check_device(dev.size / SECTOR_SIZE)
                        .or_else(|e| error(format!("{name}: {e}")));
                }
                Err(BackingError::NotFormatted | BackingError::IsCache) => {}
                Err(b) => return error(format!("{name}: {b}")),
            }
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
    println!("{name}: bcache_rs cache, {kind} of {}", Size(dev.size));
    print!("{}", report::describe(&sb));
    if sb.persistent() {
        let layout = JournalLayout::new(sb.layout.journal.sectors);
        let len = layout.map_or(0, |l| l.ring_blocks as usize * JBLOCK_SIZE);
        let ring = dev
            .read_at(sb.layout.journal.start * SECTOR_SIZE, len)
            .map_err(io_failure(name, "cannot read the journal of"))?;
        print!("{}", report::describe_journal(&sb, layout.as_ref(), &ring));
        let seq = layout
            .and_then(|l| rkm_bcache::persist::scan(&l, set_tag(&sb.set_uuid), &ring).ok())
            .and_then(|s| s.checkpoint)
            .map(|c| c.seq);
        if let Some(seq) = seq {
            let prios = dev
                .read_at(
                    sb.layout.prios.start * SECTOR_SIZE,
                    (sb.layout.prios.sectors * SECTOR_SIZE) as usize,
                )
                .map_err(io_failure(name, "cannot read the priorities of"))?;
            print!("{}", report::describe_prios(&sb, seq, &prios));
        }
    }
    sb.check_device(dev.size)
        .or_else(|e| error(format!("{name}: {e}")))?;
    if let Err(e) = sb.check_writable() {
        println!("note: {e}");
    }
    Ok(())
}
