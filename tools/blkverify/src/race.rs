// SPDX-License-Identifier: GPL-2.0

//! `race`: threads pinned to the CPUs run random operations on runs of
//! blocks of the hot set, reads unlocked and racing with writes of the same
//! blocks, and check every block read against its window (see
//! [`crate::check`]).
//!
//! An operation picks a run of 1..=K contiguous blocks at random. A read
//! notes the committed version of each block, reads the run with one
//! `pread`, and checks each block. A write, zeroout or discard takes the
//! run's block locks (all or none, else another run), starts the next
//! version of each block, submits one `pwrite` (through the `O_DSYNC`
//! descriptor for a share of the writes), `BLKZEROOUT` or `BLKDISCARD`,
//! and commits the versions when it succeeded. A failed I/O is reported
//! and counted and the run goes on; its blocks keep both versions in their
//! window (the write may or may not have reached the device).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::ack::{AckLog, Acked};
use crate::check::{Checker, History, Kind, Verdict};
use crate::cli::Race;
use crate::device::{AlignedBuf, Device};
use crate::pattern::{self, mix64, SplitMix};
use crate::report::{say, warn, Reporter, Summary};
use crate::sequential::write_range;
use crate::{cpu, open_target, state, Counts, Failure};

/// How often `--progress` is rewritten.
const PROGRESS_PERIOD: Duration = Duration::from_millis(100);

/// Runs tried for the locks of a write before giving up on the operation.
const LOCK_TRIES: usize = 8;

/// The counters of a thread, and of the run.
#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    reads: u64,
    writes: u64,
    zeroes: u64,
    discards: u64,
    fsyncs: u64,
    dsync_writes: u64,
    /// Blocks read that held none of their window's versions.
    mismatches: u64,
    io_errors: u64,
    /// Blocks read whose verdict depended on forgotten versions.
    unchecked: u64,
    /// Blocks read torn between versions of their window.
    torn: u64,
    /// Blocks read and checked.
    blocks_read: u64,
    /// Writes given up because other threads held their blocks.
    busy: u64,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.reads += o.reads;
        self.writes += o.writes;
        self.zeroes += o.zeroes;
        self.discards += o.discards;
        self.fsyncs += o.fsyncs;
        self.dsync_writes += o.dsync_writes;
        self.mismatches += o.mismatches;
        self.io_errors += o.io_errors;
        self.unchecked += o.unchecked;
        self.torn += o.torn;
        self.blocks_read += o.blocks_read;
        self.busy += o.busy;
    }

    fn ops(&self) -> u64 {
        self.reads + self.writes + self.zeroes + self.discards
    }
}

/// What the threads share.
struct Shared<'a> {
    args: &'a Race,
    dev: &'a Device,
    history: &'a History,
    rep: &'a Reporter,
    /// Zeros for a zeroout on a file, `max_blocks` blocks.
    zeros: &'a AlignedBuf,
    /// Longest run, at most the hot set.
    max_blocks: u64,
    deadline: Instant,
    /// Operations done so far, for `--progress`.
    ops: &'a AtomicU64,
    /// `--ack-log`.
    ack: Option<&'a AckLog>,
}

/// What a thread owns.
struct Worker {
    number: usize,
    cpu: usize,
    buf: AlignedBuf,
    checker: Checker,
    /// Committed versions of the run being read.
    los: Vec<u64>,
    /// Versions of the run being written.
    versions: Vec<u64>,
    /// The run's slots of the ack log, and a buffer for their write.
    acks: Vec<Acked>,
    ack_buf: Option<AlignedBuf>,
}

/// An operation of the mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Read,
    Change(Change),
}

/// An operation that changes blocks, under their locks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    /// A `pwrite` of the next version, through the `O_DSYNC` descriptor
    /// when `dsync`.
    Write { dsync: bool },
    /// `BLKZEROOUT`.
    Zero,
    /// `BLKDISCARD`.
    Discard,
}

/// `race`.
pub fn run(args: &Race) -> Result<Counts, Failure> {
    let start = Instant::now();
    let t = &args.target;
    let dev = open_target(t, true, args.dsync_pct > 0, false)?;
    let rep = Reporter::default();
    let blocks = usize::try_from(t.blocks())
        .map_err(|_| Failure::Usage(format!("race: {} blocks is too many", t.blocks())))?;
    let cpus = cpu::allowed();
    let threads = args.threads.unwrap_or(cpus.len()).max(1);
    let max_blocks = args.max_blocks.min(t.blocks());
    let run_bytes = (max_blocks * t.block) as usize;

    // Everything that can fail is allocated before the clock starts.
    let ack = match &args.ack_log {
        Some(path) => Some(AckLog::open(path, t, true)?),
        None => None,
    };
    let history = match (&ack, args.init) {
        (Some(log), false) => {
            // Resumed: a block may hold any version from its last
            // acknowledged one to the one after its last started (the
            // log's `pending`, raised by one for that).
            let spans: Vec<(u64, u64)> =
                log.resume()?.iter().map(|a| (a.acked, a.pending)).collect();
            History::resume(&spans)
        }
        (_, true) => History::new(blocks, 1, Kind::Data),
        (None, false) => History::new(blocks, 0, Kind::Unknown),
    }
    .map_err(Failure::Io)?;
    let zeros = AlignedBuf::new(run_bytes).map_err(Failure::Io)?;
    let mut workers = Vec::new();
    for number in 0..threads {
        workers.push(Worker {
            number,
            cpu: cpus[number % cpus.len()],
            buf: AlignedBuf::new(run_bytes).map_err(Failure::Io)?,
            checker: Checker::new(t.seed(), t.block as usize).map_err(Failure::Io)?,
            los: vec![0; max_blocks as usize],
            versions: vec![0; max_blocks as usize],
            acks: Vec::with_capacity(max_blocks as usize),
            ack_buf: match ack {
                Some(_) => Some(AckLog::buffer(max_blocks).map_err(Failure::Io)?),
                None => None,
            },
        });
    }

    say(&format!(
        "config: race dev={} offset={} size={} block={} blocks={blocks} threads={threads} \
         cpus={} seconds={:.3} seed={:#x} read_pct={} zero_pct={} discard_pct={} max_blocks={} \
         fsync_every={} dsync_pct={} direct={} init={} ack_log={}",
        t.dev,
        t.offset,
        t.size,
        t.block,
        cpu::list(&cpus[..threads.min(cpus.len())]),
        args.duration.as_secs_f64(),
        t.seed(),
        args.read_pct,
        args.zero_pct,
        args.discard_pct,
        max_blocks,
        args.fsync_every,
        args.dsync_pct,
        u8::from(t.direct),
        u8::from(args.init),
        args.ack_log.as_deref().unwrap_or("-"),
    ));

    let mut total = Stats::default();
    if args.init {
        let t0 = Instant::now();
        total.io_errors += write_range(&dev, t, 1, &rep)?;
        if let (Some(log), 0) = (&ack, total.io_errors) {
            log.create(1)?;
        }
        say(&format!(
            "init: wrote version 1 of {blocks} blocks in {:.2} s",
            t0.elapsed().as_secs_f64()
        ));
    } else if ack.is_some() {
        say("resumed: every block from its last acknowledged version (the ack log)");
    }

    let ops = AtomicU64::new(0);
    let progress = Progress::new(args.progress.as_deref());
    if total.io_errors == 0 {
        progress.write(0, &mut total);
        let shared = Shared {
            args,
            dev: &dev,
            history: &history,
            rep: &rep,
            zeros: &zeros,
            max_blocks,
            deadline: Instant::now() + args.duration,
            ops: &ops,
            ack: ack.as_ref(),
        };
        let results = run_threads(&shared, workers, &progress, &mut total)?;
        for r in &results {
            total.add(r);
        }
        progress.write(ops.load(Ordering::Relaxed), &mut total);
    } else {
        warn("error: the hot set could not be filled: no race");
    }

    if let Some(path) = &args.state {
        if let Err(e) = state::save(path, t.block, t.seed(), t.first_block(), &history) {
            warn(&format!("error: cannot write the state {path}: {e}"));
            total.io_errors += 1;
        }
    }
    Summary::new("race")
        .kv("ops", total.ops())
        .kv("reads", total.reads)
        .kv("writes", total.writes)
        .kv("zeroes", total.zeroes)
        .kv("discards", total.discards)
        .kv("fsyncs", total.fsyncs)
        .kv("dsync_writes", total.dsync_writes)
        .kv("mismatches", total.mismatches)
        .kv("io_errors", total.io_errors)
        .kv("unchecked", total.unchecked)
        .kv("torn", total.torn)
        .kv("blocks_read", total.blocks_read)
        .kv("busy", total.busy)
        .kv("elapsed", format!("{:.2}", start.elapsed().as_secs_f64()))
        .print();
    Ok(Counts {
        mismatches: total.mismatches,
        io_errors: total.io_errors,
    })
}

/// Runs the workers until the deadline, rewriting the progress file
/// meanwhile; returns their counters.
fn run_threads(
    shared: &Shared<'_>,
    workers: Vec<Worker>,
    progress: &Progress,
    total: &mut Stats,
) -> Result<Vec<Stats>, Failure> {
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        let mut handles = Vec::new();
        let mut error = None;
        for w in workers {
            let stop = &stop;
            let spawned = thread::Builder::new()
                .name(format!("blkverify-{}", w.number))
                .spawn_scoped(s, move || worker(shared, w, stop));
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    error = Some(format!("cannot start a thread: {e}"));
                    stop.store(true, Ordering::Relaxed);
                    break;
                }
            }
        }
        while !handles.iter().all(|h| h.is_finished()) {
            thread::sleep(PROGRESS_PERIOD);
            progress.write(shared.ops.load(Ordering::Relaxed), total);
        }
        let mut results = Vec::new();
        for h in handles {
            match h.join() {
                Ok(r) => results.push(r),
                Err(_) => {
                    error.get_or_insert_with(|| "a thread panicked".to_string());
                }
            }
        }
        match error {
            Some(e) => Err(Failure::Io(e)),
            None => Ok(results),
        }
    })
}

/// One thread: random operations until the deadline.
fn worker(sh: &Shared<'_>, mut w: Worker, stop: &AtomicBool) -> Stats {
    let mut st = Stats::default();
    if let Err(e) = cpu::pin(w.cpu) {
        warn(&format!(
            "warning: cannot pin thread {} to CPU {}: {e}",
            w.number, w.cpu
        ));
    }
    let a = sh.args;
    let seed = a.target.seed();
    let mut rng = SplitMix::new(mix64(seed ^ mix64(w.number as u64 + 1)));
    let blocks = sh.history.len() as u64;
    while Instant::now() < sh.deadline && !stop.load(Ordering::Relaxed) {
        let pick = rng.below(100);
        let op = if pick < a.read_pct {
            Op::Read
        } else if pick < a.read_pct + a.zero_pct {
            Op::Change(Change::Zero)
        } else if pick < a.read_pct + a.zero_pct + a.discard_pct {
            Op::Change(Change::Discard)
        } else {
            Op::Change(Change::Write {
                dsync: rng.below(100) < a.dsync_pct,
            })
        };
        match op {
            Op::Read => {
                let first = rng.below(blocks);
                let count = (1 + rng.below(sh.max_blocks)).min(blocks - first);
                read(sh, &mut w, &mut st, first, count);
            }
            Op::Change(change) => {
                let mut locked = None;
                for _ in 0..LOCK_TRIES {
                    let first = rng.below(blocks);
                    let count = (1 + rng.below(sh.max_blocks)).min(blocks - first);
                    if sh.history.try_lock(first as usize, count as usize) {
                        locked = Some((first, count));
                        break;
                    }
                }
                let Some((first, count)) = locked else {
                    st.busy += 1;
                    continue;
                };
                write(sh, &mut w, &mut st, change, first, count);
                sh.history.unlock(first as usize, count as usize);
                let is_write = matches!(change, Change::Write { .. });
                if is_write && a.fsync_every > 0 && st.writes % a.fsync_every == 0 {
                    st.fsyncs += 1;
                    if let Err(e) = sh.dev.sync() {
                        sh.rep.io_error(&a.target.dev, &e);
                        st.io_errors += 1;
                    }
                }
            }
        }
        sh.ops.fetch_add(1, Ordering::Relaxed);
    }
    st
}

/// Reads blocks `first..first + count` of the hot set and checks them.
fn read(sh: &Shared<'_>, w: &mut Worker, st: &mut Stats, first: u64, count: u64) {
    let t = &sh.args.target;
    let block = t.block as usize;
    let len = count as usize * block;
    st.reads += 1;
    for (i, lo) in w.los.iter_mut().take(count as usize).enumerate() {
        *lo = sh.history.read_begin(first as usize + i);
    }
    let bytes = &mut w.buf.as_mut_slice()[..len];
    if let Err(e) = sh.dev.read_at(bytes, t.offset + first * t.block) {
        sh.rep.io_error(&t.dev, &e);
        st.io_errors += 1;
        return;
    }
    for (i, found) in bytes.chunks_exact(block).enumerate() {
        let index = first as usize + i;
        let window = sh.history.read_end(index, w.los[i]);
        let devblock = t.first_block() + index as u64;
        st.blocks_read += 1;
        match w.checker.check(devblock, found, &window) {
            Verdict::Ok => {}
            Verdict::Torn => st.torn += 1,
            Verdict::Unchecked => st.unchecked += 1,
            Verdict::Bad(p) => {
                st.mismatches += 1;
                sh.rep.mismatch(|| {
                    format!(
                        "block {devblock} (offset {}): thread {} read of blocks {}..={}: \
                         expected {}, found {}",
                        devblock * t.block,
                        w.number,
                        t.first_block() + first,
                        t.first_block() + first + count - 1,
                        window.describe(),
                        p.describe(devblock, t.seed(), &window, block)
                    )
                });
            }
        }
    }
}

/// Writes, zeroes or discards blocks `first..first + count` of the hot
/// set, whose locks the caller holds.
fn write(sh: &Shared<'_>, w: &mut Worker, st: &mut Stats, change: Change, first: u64, count: u64) {
    let t = &sh.args.target;
    let block = t.block as usize;
    let len = count * t.block;
    let offset = t.offset + first * t.block;
    let kind = match change {
        Change::Write { .. } => Kind::Data,
        Change::Zero | Change::Discard => Kind::Zero,
    };
    for (i, v) in w.versions.iter_mut().take(count as usize).enumerate() {
        *v = sh.history.start(first as usize + i, kind);
    }
    let done = match change {
        Change::Write { dsync } => {
            st.writes += 1;
            st.dsync_writes += u64::from(dsync);
            let bytes = &mut w.buf.as_mut_slice()[..len as usize];
            for (i, b) in bytes.chunks_exact_mut(block).enumerate() {
                let devblock = t.first_block() + first + i as u64;
                pattern::fill(b, t.seed(), devblock, w.versions[i]);
            }
            sh.dev.write_at(bytes, offset, dsync)
        }
        Change::Zero => {
            st.zeroes += 1;
            sh.dev.zero_out(offset, len, sh.zeros.as_slice())
        }
        Change::Discard => {
            st.discards += 1;
            sh.dev.discard(offset, len)
        }
    };
    match done {
        Ok(()) => {
            for (i, &v) in w.versions.iter().take(count as usize).enumerate() {
                sh.history.commit(first as usize + i, v);
            }
        }
        Err(e) => {
            sh.rep.io_error(&t.dev, &e);
            st.io_errors += 1;
        }
    }
    if let (Some(log), Some(buf)) = (sh.ack, w.ack_buf.as_mut()) {
        // Each block's committed version (the one just written, or the
        // last before a failed write) and the one started: a failed one
        // may have landed in part, and the log says so before any later
        // write of these blocks.
        w.acks.clear();
        for (i, &v) in w.versions.iter().take(count as usize).enumerate() {
            w.acks.push(Acked {
                acked: sh.history.read_begin(first as usize + i),
                pending: v,
            });
        }
        if let Err(e) = log.record(buf, first, &w.acks) {
            let (Failure::Io(e) | Failure::Usage(e)) = e;
            warn(&format!("error: {e}"));
            st.io_errors += 1;
        }
    }
}

/// The `--progress` file: `ops <n>`, replaced atomically (written to
/// `FILE.tmp`, then renamed).
struct Progress {
    path: Option<String>,
    failed: AtomicBool,
}

impl Progress {
    fn new(path: Option<&str>) -> Progress {
        Progress {
            path: path.map(str::to_string),
            failed: AtomicBool::new(false),
        }
    }

    /// Rewrites the file; the first failure is reported and counted.
    fn write(&self, ops: u64, total: &mut Stats) {
        let Some(path) = &self.path else {
            return;
        };
        let tmp = format!("{path}.tmp");
        let done =
            std::fs::write(&tmp, format!("ops {ops}\n")).and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = done {
            if !self.failed.swap(true, Ordering::Relaxed) {
                warn(&format!("error: cannot write the progress {path}: {e}"));
                total.io_errors += 1;
            }
        }
    }
}
