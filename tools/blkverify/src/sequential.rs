// SPDX-License-Identifier: GPL-2.0

//! The sequential commands: `fill` writes a version of every block of the
//! range, `verify` reads every block back and checks it against a version
//! or a saved state. Both move [`CHUNK`] bytes per system call.

use std::time::Instant;

use crate::ack::AckLog;
use crate::check::{Checker, Kind, Verdict, Window};
use crate::cli::{Expect, Target};
use crate::device::{AlignedBuf, Device};
use crate::pattern;
use crate::report::{Reporter, Summary};
use crate::{open_target, state, Counts, Failure};

/// Bytes per read or write (rounded down to whole blocks, at least one).
const CHUNK: u64 = 1 << 20;

/// Blocks per chunk of `bytes` (default [`CHUNK`]), and a buffer for them.
fn chunk_buffer(t: &Target, bytes: Option<u64>) -> Result<(u64, AlignedBuf), Failure> {
    let per_chunk = (bytes.unwrap_or(CHUNK) / t.block).clamp(1, t.blocks());
    let buf = AlignedBuf::new((per_chunk * t.block) as usize).map_err(Failure::Io)?;
    Ok((per_chunk, buf))
}

/// Writes `version` of every block of the range, in chunks; then fsyncs.
/// Failed chunks are reported and skipped. Returns the I/O errors.
pub fn write_range(dev: &Device, t: &Target, version: u64, rep: &Reporter) -> Result<u64, Failure> {
    let (per_chunk, mut buf) = chunk_buffer(t, None)?;
    let block = t.block as usize;
    let mut errors = 0;
    let mut first = 0;
    while first < t.blocks() {
        let n = per_chunk.min(t.blocks() - first);
        let bytes = &mut buf.as_mut_slice()[..n as usize * block];
        for (i, b) in bytes.chunks_exact_mut(block).enumerate() {
            pattern::fill(b, t.seed(), t.first_block() + first + i as u64, version);
        }
        if let Err(e) = dev.write_at(bytes, t.offset + first * t.block, false) {
            rep.io_error(&t.dev, &e);
            errors += 1;
        }
        first += n;
    }
    if let Err(e) = dev.sync() {
        rep.io_error(&t.dev, &e);
        errors += 1;
    }
    Ok(errors)
}

/// `fill`.
pub fn fill(t: &Target, version: u64) -> Result<Counts, Failure> {
    let start = Instant::now();
    let dev = open_target(t, true, false, true)?;
    let rep = Reporter::default();
    let io_errors = write_range(&dev, t, version, &rep)?;
    Summary::new("fill")
        .kv("blocks", t.blocks())
        .kv("version", version)
        .kv("seed", format!("{:#x}", t.seed()))
        .kv("io_errors", io_errors)
        .kv("elapsed", format!("{:.2}", start.elapsed().as_secs_f64()))
        .print();
    Ok(Counts {
        mismatches: 0,
        io_errors,
    })
}

/// `verify`, `io_size` bytes a read (default [`CHUNK`]).
pub fn verify(t: &Target, expect: &Expect, io_size: Option<u64>) -> Result<Counts, Failure> {
    let start = Instant::now();
    let mut spans = None;
    let (seed, states) = match expect {
        Expect::Version(_) => (t.seed(), None),
        Expect::AckLog(path) => {
            let acked = AckLog::open(path, t, false)?.load()?;
            spans = Some(acked);
            (t.seed(), None)
        }
        Expect::State(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::Usage(format!("cannot read the state {path}: {e}")))?;
            let s = state::parse(&text, t.block, t.first_block(), t.blocks())
                .map_err(|e| Failure::Usage(format!("state {path}: {e}")))?;
            if let Some(seed) = t.seed.filter(|&seed| seed != s.seed) {
                return Err(Failure::Usage(format!(
                    "--seed {seed:#x} is not the state's seed {:#x}",
                    s.seed
                )));
            }
            (s.seed, Some(s.blocks))
        }
    };
    let dev = open_target(t, false, false, false)?;
    let rep = Reporter::default();
    let mut checker = Checker::new(seed, t.block as usize).map_err(Failure::Io)?;
    let (per_chunk, mut buf) = chunk_buffer(t, io_size)?;
    let block = t.block as usize;
    let (mut ok, mut mismatches, mut unknown, mut unread, mut io_errors) = (0u64, 0, 0, 0, 0);
    // With an ack log: blocks found newer than their acknowledged version.
    let mut newer = 0u64;
    let mut first = 0;
    while first < t.blocks() {
        let n = per_chunk.min(t.blocks() - first);
        let bytes = &mut buf.as_mut_slice()[..n as usize * block];
        if let Err(e) = dev.read_at(bytes, t.offset + first * t.block) {
            rep.io_error(&t.dev, &e);
            io_errors += 1;
            unread += n;
            first += n;
            continue;
        }
        for (i, found) in bytes.chunks_exact(block).enumerate() {
            let index = first + i as u64;
            let window = match (&states, expect) {
                (Some(s), _) => match s.get(index as usize) {
                    Some(&(v, kind)) => Window::exact(v, kind),
                    None => Window::exact(0, Kind::Unknown),
                },
                (None, Expect::AckLog(_)) => {
                    match spans.as_ref().and_then(|s| s.get(index as usize)) {
                        Some(a) => {
                            if let pattern::Found::Block(h) = pattern::decode(found) {
                                newer += u64::from(h.intact && h.version > a.acked);
                            }
                            Window::span(a.acked, a.pending.saturating_add(1), Kind::Data)
                        }
                        None => Window::exact(0, Kind::Unknown),
                    }
                }
                (None, Expect::Version(v)) => Window::exact(*v, Kind::Data),
                (None, Expect::State(_)) => Window::exact(0, Kind::Unknown),
            };
            if window.any(Kind::Unknown) {
                unknown += 1;
            }
            let devblock = t.first_block() + index;
            match checker.check(devblock, found, &window) {
                Verdict::Ok | Verdict::Torn | Verdict::Unchecked => ok += 1,
                Verdict::Bad(p) => {
                    mismatches += 1;
                    rep.mismatch(|| {
                        format!(
                            "block {devblock} (offset {}): expected {}, found {}",
                            devblock * t.block,
                            window.describe(),
                            p.describe(devblock, seed, &window, block)
                        )
                    });
                }
            }
        }
        first += n;
    }
    Summary::new("verify")
        .kv("blocks", t.blocks())
        .kv("ok", ok)
        .kv("mismatches", mismatches)
        .kv("unknown", unknown)
        .kv("unread", unread)
        .kv("newer_than_acked", newer)
        .kv("io_errors", io_errors)
        .kv("elapsed", format!("{:.2}", start.elapsed().as_secs_f64()))
        .print();
    Ok(Counts {
        mismatches,
        io_errors,
    })
}
