// SPDX-License-Identifier: GPL-2.0

//! Output: line-oriented, each line flushed (the guest's test scripts read
//! it from a serial console); mismatches and I/O errors are described for
//! the first [`MAX_REPORTS`] of each and counted beyond.

use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::device::IoError;

/// At most this many mismatches, and this many I/O errors, are described.
pub const MAX_REPORTS: usize = 10;

/// Prints one line on standard output and flushes it. Write errors (a
/// closed console) are ignored: they must not turn into a panic.
pub fn say(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "blkverify: {line}");
    let _ = out.flush();
}

/// Prints one line on standard error.
pub fn warn(line: &str) {
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "blkverify: {line}");
    let _ = err.flush();
}

/// Reports mismatches and I/O errors from any thread.
#[derive(Debug, Default)]
pub struct Reporter {
    mismatches: AtomicUsize,
    errors: AtomicUsize,
}

impl Reporter {
    /// Reports a mismatch, `MISMATCH <what>` on standard output; `what` is
    /// only built for the ones printed.
    pub fn mismatch(&self, what: impl FnOnce() -> String) {
        match self.mismatches.fetch_add(1, Ordering::Relaxed) {
            n if n < MAX_REPORTS => say(&format!("MISMATCH {}", what())),
            MAX_REPORTS => say("further mismatches are counted, not described"),
            _ => {}
        }
    }

    /// Reports a failed I/O on `dev`, `error: <dev>: <op> offset <o>
    /// length <n>: <ERRNO> (<text>)` on standard error.
    pub fn io_error(&self, dev: &str, e: &IoError) {
        match self.errors.fetch_add(1, Ordering::Relaxed) {
            n if n < MAX_REPORTS => warn(&format!("error: {dev}: {e}")),
            MAX_REPORTS => warn("further I/O errors are counted, not described"),
            _ => {}
        }
    }
}

/// A summary line: `<command> key=value ...`.
#[derive(Debug)]
pub struct Summary(String);

impl Summary {
    /// A summary of `command`.
    pub fn new(command: &str) -> Summary {
        Summary(command.to_string())
    }

    /// Adds `key=value`.
    pub fn kv(mut self, key: &str, value: impl std::fmt::Display) -> Summary {
        self.0.push_str(&format!(" {key}={value}"));
        self
    }

    /// Prints it.
    pub fn print(self) {
        say(&self.0);
    }
}
