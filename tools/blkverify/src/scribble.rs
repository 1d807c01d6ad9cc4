// SPDX-License-Identifier: GPL-2.0

//! `scribble`: a read miss filled from the caller's pages.
//!
//! A cache that fills its SSD on a read miss from the very pages the
//! caller's `O_DIRECT` read lands in (instead of from a private copy of
//! what the disk returned) writes whatever the caller put in those pages
//! while the read was in flight. This reproduces it: the range holds
//! version 1; thread A reads every block of the pass's slice, one `pread`
//! per block, into ONE page-aligned buffer, while thread B (on another CPU)
//! stores [`SCRIBBLE`] bytes all over that buffer in a tight loop. Pass `p`
//! of `P` reads the `p`-th of `P` equal slices of the range, so that each
//! block is read once and, with a cold cache, misses. Then every block of
//! the range is read twice more with a private buffer nobody touches
//! (the first may fill the cache, the second hits it) and checked against
//! version 1. Through the page cache (`--no-direct`) the kernel copies into
//! the buffer, so nothing can go wrong: that only tests the plumbing.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::check::{Checker, Kind, Verdict, Window};
use crate::cli::Target;
use crate::device::AlignedBuf;
use crate::report::{warn, Reporter, Summary};
use crate::{cpu, open_target, Counts, Failure};

/// The byte thread B stores over the shared buffer.
pub const SCRIBBLE: u8 = 0xee;

/// How long thread A waits for thread B's first pass over the buffer.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The blocks pass `pass` of `passes` reads, of `blocks`: a slice of
/// `blocks / passes` or so, or a single block when there are more passes
/// than blocks.
pub fn slice(pass: u64, passes: u64, blocks: u64) -> (u64, u64) {
    if passes > blocks {
        return (pass % blocks, 1);
    }
    let at = |p: u64| (u128::from(p) * u128::from(blocks) / u128::from(passes)) as u64;
    (at(pass), at(pass + 1) - at(pass))
}

/// `scribble`.
pub fn run(t: &Target, passes: u64) -> Result<Counts, Failure> {
    let start = Instant::now();
    let dev = open_target(t, false, false, false)?;
    let rep = Reporter::default();
    let block = t.block as usize;
    let mut shared_buf = AlignedBuf::new(block).map_err(Failure::Io)?;
    let mut clean = AlignedBuf::new(block).map_err(Failure::Io)?;
    let mut checker = Checker::new(t.seed(), block).map_err(Failure::Io)?;
    let cpus = cpu::allowed();
    let (cpu_a, cpu_b) = (cpus[0], cpus[1 % cpus.len()]);

    let stop = AtomicBool::new(false);
    let scribbles = AtomicU64::new(0);
    let (mut reads, mut io_errors) = (0u64, 0u64);
    let shared = shared_buf.share();
    thread::scope(|s| -> Result<(), Failure> {
        let scribbler = thread::Builder::new()
            .name("blkverify-scribble".to_string())
            .spawn_scoped(s, || {
                if let Err(e) = cpu::pin(cpu_b) {
                    warn(&format!(
                        "warning: cannot pin the scribbler to CPU {cpu_b}: {e}"
                    ));
                }
                let word = u64::from_ne_bytes([SCRIBBLE; 8]);
                while !stop.load(Ordering::Relaxed) {
                    for w in shared.words() {
                        w.store(word, Ordering::Relaxed);
                    }
                    scribbles.fetch_add(1, Ordering::Relaxed);
                }
            })
            .map_err(|e| Failure::Io(format!("cannot start the scribbler: {e}")))?;
        if let Err(e) = cpu::pin(cpu_a) {
            warn(&format!(
                "warning: cannot pin the reader to CPU {cpu_a}: {e}"
            ));
        }
        let waited = Instant::now();
        while scribbles.load(Ordering::Relaxed) == 0 && waited.elapsed() < START_TIMEOUT {
            thread::yield_now();
        }
        for pass in 0..passes {
            let (first, count) = slice(pass, passes, t.blocks());
            for b in first..first + count {
                reads += 1;
                if let Err(e) = shared.read_into(&dev, t.offset + b * t.block) {
                    rep.io_error(&t.dev, &e);
                    io_errors += 1;
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        scribbler
            .join()
            .map_err(|_| Failure::Io("the scribbler panicked".to_string()))
    })?;

    let window = Window::exact(1, Kind::Data);
    let (mut rereads, mut mismatches) = (0u64, 0u64);
    for round in 1..=2 {
        for b in 0..t.blocks() {
            let devblock = t.first_block() + b;
            rereads += 1;
            let found = clean.as_mut_slice();
            found.fill(0);
            if let Err(e) = dev.read_at(found, t.offset + b * t.block) {
                rep.io_error(&t.dev, &e);
                io_errors += 1;
                continue;
            }
            if let Verdict::Bad(p) = checker.check(devblock, found, &window) {
                mismatches += 1;
                let scribbled = found.iter().filter(|&&x| x == SCRIBBLE).count();
                rep.mismatch(|| {
                    let note = if scribbled > 0 {
                        format!("; {scribbled} bytes are {SCRIBBLE:#04x}, the scribbler's")
                    } else {
                        String::new()
                    };
                    format!(
                        "block {devblock} (offset {}): re-read {round}: expected {}, found {}{note}",
                        devblock * t.block,
                        window.describe(),
                        p.describe(devblock, t.seed(), &window, block)
                    )
                });
            }
        }
    }
    Summary::new("scribble")
        .kv("blocks", t.blocks())
        .kv("passes", passes)
        .kv("reads", reads)
        .kv("scribbles", scribbles.load(Ordering::Relaxed))
        .kv("rereads", rereads)
        .kv("mismatches", mismatches)
        .kv("io_errors", io_errors)
        .kv("elapsed", format!("{:.2}", start.elapsed().as_secs_f64()))
        .print();
    Ok(Counts {
        mismatches,
        io_errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_the_range_once() {
        for (passes, blocks) in [(1u64, 10u64), (3, 10), (10, 10), (4, 1000)] {
            let mut next = 0;
            for p in 0..passes {
                let (first, count) = slice(p, passes, blocks);
                assert_eq!(first, next, "{passes} {blocks} {p}");
                assert!(count >= 1);
                next = first + count;
            }
            assert_eq!(next, blocks);
        }
        assert_eq!(slice(5, 7, 3), (2, 1));
    }
}
