// SPDX-License-Identifier: GPL-2.0

//! `rkm-blkverify`: a verifying block-device workload for the tests of the
//! `bcache_rs` SSD cache.
//!
//! fio's random map touches each block once per pass, so it never reads
//! back a block that was cached and then overwritten, and it never races a
//! read with a write of the same block. This tool does both, on purpose,
//! and checks every block it reads. It runs in the QEMU test guest (a
//! busybox initramfs; the binary needs libc only) and on the host against
//! regular files for its own tests.
//!
//! * `fill` writes a version (default 1) of every block of a range.
//! * `verify` reads the range back and checks every block against a
//!   version, or against the state a `race` left (`--state`).
//! * `race` runs threads pinned one per CPU that overwrite, zero, discard
//!   and read runs of blocks of a hot set, reads racing with writes of the
//!   same blocks, and checks every block read against the versions that
//!   may be there ([`check`]): never older than the last write completed
//!   before the read began (stale data), never newer than the last write
//!   started, never anything else.
//! * `scribble` reproduces a read miss filled from the caller's pages
//!   ([`scribble`]).
//!
//! Every block's content is a function of (seed, block number, version)
//! ([`pattern`]), so the checker regenerates what it expects and a block
//! read back says which block and version it is.
//!
//! # Output
//!
//! Lines prefixed `blkverify: `, flushed one by one. Each command ends with
//! one summary line, `<command> key=value ...`, machine-readable:
//!
//! ```text
//! blkverify: fill blocks=256 version=1 seed=0x5eed io_errors=0 elapsed=0.01
//! blkverify: verify blocks=256 ok=256 mismatches=0 unknown=0 unread=0 io_errors=0 elapsed=0.00
//! blkverify: race ops=41234 reads=20611 writes=20623 zeroes=0 discards=0 fsyncs=0 dsync_writes=0 mismatches=0 io_errors=0 unchecked=0 torn=3 blocks_read=92813 busy=12 elapsed=2.00
//! blkverify: scribble blocks=256 passes=1 reads=256 scribbles=90210 rereads=512 mismatches=0 io_errors=0 elapsed=0.05
//! ```
//!
//! The first [`report::MAX_REPORTS`] mismatches are described on standard
//! output (`MISMATCH block <n> (offset <o>): ... expected <versions>, found
//! <what>`), the first I/O errors on standard error (`error: <dev>: <op>
//! offset <o> length <n>: <ERRNO> (<text>)`); the rest are counted.
//!
//! Exit status: 0 when everything read was verified and no I/O failed;
//! 1 when mismatches were found (whether or not I/O failed too); 2 on I/O
//! errors (none of them a mismatch), including failing to open the device;
//! 3 on usage errors (a message on standard error).

#![deny(unsafe_op_in_unsafe_fn, rust_2018_idioms, missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod ack;
mod check;
mod cli;
mod compare;
mod cpu;
mod device;
mod pattern;
mod race;
mod report;
mod scribble;
mod sequential;
mod state;

use std::ffi::OsString;
use std::io::{self, Write};
use std::process::ExitCode;

use cli::{Command, Target};
use device::{Device, OpenFlags};
use report::warn;

/// Exit status when mismatches were found.
const EXIT_MISMATCH: u8 = 1;

/// Exit status on I/O errors.
const EXIT_IO: u8 = 2;

/// Exit status on usage errors.
const EXIT_USAGE: u8 = 3;

/// Why a command could not run (or finish).
#[derive(Debug)]
pub enum Failure {
    /// A bad command line or input file: exit 3.
    Usage(String),
    /// The device could not be opened, memory not allocated, a thread not
    /// started: exit 2.
    Io(String),
}

/// What a command found.
#[derive(Clone, Copy, Debug)]
pub struct Counts {
    /// Blocks read back wrong.
    pub mismatches: u64,
    /// Failed I/O operations.
    pub io_errors: u64,
}

fn main() -> ExitCode {
    let args: Result<Vec<String>, OsString> = std::env::args_os()
        .skip(1)
        .map(OsString::into_string)
        .collect();
    let parsed = match args {
        Ok(args) => cli::parse(&args),
        Err(bad) => Err(format!("argument {bad:?} is not valid UTF-8")),
    };
    let command = match parsed {
        Ok(c) => c,
        Err(e) => return usage_error(&e),
    };
    let outcome = match &command {
        Command::Help => {
            let mut out = io::stdout().lock();
            let _ = out.write_all(cli::USAGE.as_bytes());
            let _ = out.flush();
            return ExitCode::SUCCESS;
        }
        Command::Fill(t, version) => sequential::fill(t, *version),
        Command::Verify(t, expect, io) => sequential::verify(t, expect, *io),
        Command::Race(args) => race::run(args),
        Command::Scribble(t, passes) => scribble::run(t, *passes),
        Command::Compare(t, against) => compare::run(t, against),
    };
    match outcome {
        Ok(c) if c.mismatches > 0 => ExitCode::from(EXIT_MISMATCH),
        Ok(c) if c.io_errors > 0 => ExitCode::from(EXIT_IO),
        Ok(_) => ExitCode::SUCCESS,
        Err(Failure::Usage(e)) => usage_error(&e),
        Err(Failure::Io(e)) => {
            warn(&format!("error: {e}"));
            ExitCode::from(EXIT_IO)
        }
    }
}

fn usage_error(message: &str) -> ExitCode {
    warn(&format!("usage error: {message}"));
    warn("try 'rkm-blkverify help'");
    ExitCode::from(EXIT_USAGE)
}

/// Opens the target's device and checks that the range fits in it; with
/// `extend`, a regular file may be shorter (a write extends it).
pub fn open_target(t: &Target, write: bool, dsync: bool, extend: bool) -> Result<Device, Failure> {
    let flags = OpenFlags {
        write,
        direct: t.direct,
        dsync,
    };
    let dev = Device::open(&t.dev, flags).map_err(|e| {
        let hint = if t.direct && e.errno == Some(libc::EINVAL) {
            " (no O_DIRECT here? --no-direct goes through the page cache)"
        } else {
            ""
        };
        Failure::Io(format!("{}: {e}{hint}", t.dev))
    })?;
    let end = t.offset.saturating_add(t.size);
    let may_grow = extend && !dev.is_block();
    if end > dev.size() && !may_grow {
        return Err(Failure::Usage(format!(
            "{}: the range {}..{} ends past the end of the device ({} bytes)",
            t.dev,
            t.offset,
            end,
            dev.size()
        )));
    }
    Ok(dev)
}
