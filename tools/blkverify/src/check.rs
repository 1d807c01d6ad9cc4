// SPDX-License-Identifier: GPL-2.0

//! The checker: which versions a block may hold when a read returns, and
//! whether what the read returned is one of them.
//!
//! # Versions and the window of a read
//!
//! Every block of the hot set has a version counter. A write of a run of
//! blocks gives each block its next version: the data of [`pattern::fill`]
//! for a write, zeros for a BLKZEROOUT or (with `--discard-zeroes`) a
//! BLKDISCARD; the [`Kind`] of each version is remembered in a short ring,
//! the last [`HISTORY`] versions of the block. Version 0 is the content the
//! block had before the run, [`Kind::Unknown`] unless the hot set was
//! filled first.
//!
//! At most one thread writes a block at a time (a per-block try-lock), so
//! versions are written in order. A writer *starts* version `v` (records
//! its kind, then raises `started` to `v`) before it submits the I/O, and
//! *commits* it (raises `committed` to `v`) after the I/O completed. Reads
//! take no lock. A read loads `committed` of each block before it submits
//! its I/O and `started` after the I/O completed, which gives the window
//!
//! ```text
//! lo = committed when the read began  <=  v  <=  hi = started when it ended
//! ```
//!
//! and the read is correct iff every block holds a version of its window:
//! never older than the last write that completed before the read began
//! (the stale data of a cache that missed an invalidation), never a
//! version that had not started, never anything else. The counters are
//! `SeqCst` atomics, so `lo <= hi`.
//!
//! # What a block may hold
//!
//! * A whole version `v` of this block and seed ([`pattern::decode`] and an
//!   exact comparison with the regenerated content): correct iff
//!   `lo <= v <= hi` and `v` was not a zeroing. Older is [`Problem::Stale`],
//!   newer [`Problem::Future`].
//! * Zeros: correct iff a version of the window is a zeroing.
//! * Anything else while a write overlapped the read (`lo < hi`): a torn
//!   read, half old and half new, which a disk may return for a block
//!   being written. It is accepted ([`Verdict::Torn`]) iff every byte
//!   equals the same byte of some version of the window; any other
//!   content is a [`Problem::Other`] (garbage, another block's data, a
//!   corrupted block).
//!
//! A version whose kind has left the ring is *forgotten*: when the verdict
//! depends on it (zeros, or a torn read, over a window wider than the
//! ring), the read is counted [`Verdict::Unchecked`] instead of guessed.
//! With [`Kind::Unknown`] in the window (the content before the run, when
//! the hot set was not filled first) zeros and any whole version of this
//! block and seed are accepted; a torn read then cannot be decided.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::pattern::{self, Found};

/// How many versions of each block keep their kind.
pub const HISTORY: usize = 16;

/// What a version of a block is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The block's pattern for that version.
    Data,
    /// Zeros (BLKZEROOUT, or BLKDISCARD on a device that reads discarded
    /// blocks back as zeros).
    Zero,
    /// Not known: the content the block had before the run, or after a
    /// failed write. Zeros or any whole version of the block.
    Unknown,
}

impl Kind {
    /// Its code in a ring slot (0 is an empty slot).
    fn code(self) -> u64 {
        match self {
            Kind::Data => 1,
            Kind::Zero => 2,
            Kind::Unknown => 3,
        }
    }

    fn from_code(code: u64) -> Option<Kind> {
        match code {
            1 => Some(Kind::Data),
            2 => Some(Kind::Zero),
            3 => Some(Kind::Unknown),
            _ => None,
        }
    }

    /// Its name in reports and state files.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Data => "data",
            Kind::Zero => "zero",
            Kind::Unknown => "unknown",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<Kind> {
        [Kind::Data, Kind::Zero, Kind::Unknown]
            .into_iter()
            .find(|k| k.name() == name)
    }
}

/// The versions one read of one block may return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// The version committed when the read began.
    pub lo: u64,
    /// The version started when the read ended (`>= lo`).
    pub hi: u64,
    /// `kinds[i]` is the kind of version `hi - i`, for the last
    /// [`HISTORY`] versions; `None` where forgotten (or below `lo`).
    kinds: [Option<Kind>; HISTORY],
}

impl Window {
    /// A window of one version of a known kind.
    pub fn exact(version: u64, kind: Kind) -> Window {
        let mut kinds = [None; HISTORY];
        kinds[0] = Some(kind);
        Window {
            lo: version,
            hi: version,
            kinds,
        }
    }

    /// A window of every version of `lo..=hi`, all of `kind` (the last
    /// [`HISTORY`] remembered).
    pub fn span(lo: u64, hi: u64, kind: Kind) -> Window {
        let hi = hi.max(lo);
        let mut kinds = [None; HISTORY];
        for (back, k) in kinds.iter_mut().enumerate() {
            if (back as u64) <= hi - lo {
                *k = Some(kind);
            }
        }
        Window { lo, hi, kinds }
    }

    /// The kind of version `v`, if it is in the window and remembered.
    pub fn kind(&self, v: u64) -> Option<Kind> {
        if v < self.lo || v > self.hi {
            return None;
        }
        let back = usize::try_from(self.hi - v).ok()?;
        self.kinds.get(back).copied().flatten()
    }

    /// The versions of the window whose kind is remembered, newest first.
    fn known(&self) -> impl Iterator<Item = (u64, Kind)> + '_ {
        let span = self.hi - self.lo;
        self.kinds
            .iter()
            .enumerate()
            .take_while(move |(i, _)| (*i as u64) <= span)
            .filter_map(move |(i, k)| k.map(|k| (self.hi - i as u64, k)))
    }

    /// Whether a remembered version of the window is of `kind`.
    pub fn any(&self, kind: Kind) -> bool {
        self.known().any(|(_, k)| k == kind)
    }

    /// Whether some version of the window has a forgotten kind.
    pub fn forgotten(&self) -> bool {
        let span = self.hi - self.lo;
        (self.known().count() as u64) <= span
    }

    /// Says which versions the window allows, for a report.
    pub fn describe(&self) -> String {
        let name = |v: u64| self.kind(v).map_or("?", Kind::name);
        if self.lo == self.hi {
            return format!("version {} ({})", self.lo, name(self.lo));
        }
        let mut kinds: Vec<&str> = (0..HISTORY as u64)
            .take_while(|&i| i <= self.hi - self.lo)
            .map(|i| name(self.lo.max(self.hi.saturating_sub(HISTORY as u64 - 1)) + i))
            .collect();
        if self.hi - self.lo >= HISTORY as u64 {
            kinds.insert(0, "...");
        }
        format!("versions {}..={} ({})", self.lo, self.hi, kinds.join(", "))
    }
}

/// What is wrong with a block read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A whole version of this block older than the window: a write had
    /// completed before the read began, and the read did not see it.
    Stale {
        /// The version found.
        found: u64,
    },
    /// A whole version of this block newer than any started write.
    Future {
        /// The version found.
        found: u64,
    },
    /// A whole version of this block, of a version that was a zeroing.
    NotZeroed {
        /// The version found.
        found: u64,
    },
    /// Zeros where no version of the window is a zeroing.
    Zeros,
    /// Anything else: another block's or seed's data, a corrupted block,
    /// garbage, or a torn read with a byte from no version of the window.
    Other {
        /// What the block holds, as far as it tells.
        found: Found,
        /// How many bytes differ from the newest committed version (`lo`),
        /// when its content is known.
        differ: Option<usize>,
    },
}

impl Problem {
    /// Says what was found and why it is wrong, for a report.
    pub fn describe(&self, block: u64, seed: u64, window: &Window, len: usize) -> String {
        match *self {
            Problem::Stale { found } => format!(
                "version {found} of this block: stale, version {} had completed before the read \
                 began",
                window.lo
            ),
            Problem::Future { found } => format!(
                "version {found} of this block: from the future, no write past version {} had \
                 started",
                window.hi
            ),
            Problem::NotZeroed { found } => format!(
                "version {found} of this block, but version {found} was a zeroing (lost, or this \
                 is an earlier run's data that it did not replace)"
            ),
            Problem::Zeros => "zeros".to_string(),
            Problem::Other { found, differ } => {
                let what = match found {
                    Found::Block(h) if h.block != block => Some("another block's data"),
                    Found::Block(h) if h.seed != seed => Some("data of another seed"),
                    Found::Block(h) if !h.intact => Some("a corrupted block"),
                    Found::Block(_) => Some("this block's data, torn or corrupted"),
                    Found::Garbage if window.lo < window.hi => {
                        Some("not a mix of the window's versions")
                    }
                    Found::Garbage | Found::Zeros => None,
                };
                let differ =
                    differ.map(|n| format!("{n} of {len} bytes differ from version {}", window.lo));
                let notes: Vec<String> =
                    what.map(str::to_string).into_iter().chain(differ).collect();
                if notes.is_empty() {
                    pattern::describe(found)
                } else {
                    format!("{} ({})", pattern::describe(found), notes.join(", "))
                }
            }
        }
    }
}

/// The verdict on one block of one read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A version of the window, whole.
    Ok,
    /// A mix of versions of the window, byte by byte, while a write of the
    /// block overlapped the read.
    Torn,
    /// Cannot be decided: the verdict depends on forgotten or unknown
    /// versions.
    Unchecked,
    /// Wrong.
    Bad(Problem),
}

/// Checks blocks read back; holds the scratch space for the expected
/// content.
#[derive(Debug)]
pub struct Checker {
    seed: u64,
    expected: Vec<u8>,
    explained: Vec<bool>,
}

impl Checker {
    /// A checker for blocks of `block_size` bytes written with `seed`.
    pub fn new(seed: u64, block_size: usize) -> Result<Checker, String> {
        let mut expected = Vec::new();
        let mut explained = Vec::new();
        expected
            .try_reserve_exact(block_size)
            .and_then(|()| explained.try_reserve_exact(block_size))
            .map_err(|e| format!("cannot allocate {block_size} bytes of scratch space: {e}"))?;
        expected.resize(block_size, 0);
        explained.resize(block_size, false);
        Ok(Checker {
            seed,
            expected,
            explained,
        })
    }

    /// Checks `found`, block number `block` as read back, against the
    /// versions of `window`.
    pub fn check(&mut self, block: u64, found: &[u8], window: &Window) -> Verdict {
        let decoded = pattern::decode(found);
        match decoded {
            Found::Zeros => {
                return if window.any(Kind::Zero) || window.any(Kind::Unknown) {
                    Verdict::Ok
                } else if window.forgotten() {
                    Verdict::Unchecked
                } else {
                    Verdict::Bad(Problem::Zeros)
                };
            }
            Found::Block(h) if h.intact && h.block == block && h.seed == self.seed => {
                if self.is_version(block, h.version, found) {
                    let v = h.version;
                    // The content before the run may be any version,
                    // including one whose number this run gave a zeroing.
                    return if window.any(Kind::Unknown) {
                        Verdict::Ok
                    } else if (window.lo..=window.hi).contains(&v) {
                        match window.kind(v) {
                            Some(Kind::Zero) => Verdict::Bad(Problem::NotZeroed { found: v }),
                            _ => Verdict::Ok,
                        }
                    } else if v < window.lo {
                        Verdict::Bad(Problem::Stale { found: v })
                    } else {
                        Verdict::Bad(Problem::Future { found: v })
                    };
                }
            }
            Found::Block(_) | Found::Garbage => {}
        }
        if window.lo < window.hi {
            if window.any(Kind::Unknown) || window.forgotten() {
                return Verdict::Unchecked;
            }
            if self.is_torn(block, found, window) {
                return Verdict::Torn;
            }
        }
        let differ = match window.kind(window.lo) {
            Some(Kind::Data) => {
                self.generate(block, window.lo);
                Some(differing(&self.expected, found))
            }
            Some(Kind::Zero) => Some(found.iter().filter(|&&b| b != 0).count()),
            Some(Kind::Unknown) | None => None,
        };
        Verdict::Bad(Problem::Other {
            found: decoded,
            differ,
        })
    }

    fn generate(&mut self, block: u64, version: u64) {
        pattern::fill(&mut self.expected, self.seed, block, version);
    }

    /// Whether `found` is exactly version `version` of `block`.
    fn is_version(&mut self, block: u64, version: u64, found: &[u8]) -> bool {
        self.generate(block, version);
        self.expected == found
    }

    /// Whether every byte of `found` is the same byte of some version of
    /// the window (all of whose kinds are known).
    fn is_torn(&mut self, block: u64, found: &[u8], window: &Window) -> bool {
        if found.len() != self.explained.len() {
            return false;
        }
        self.explained.fill(false);
        for (v, kind) in window.known() {
            match kind {
                Kind::Data => {
                    pattern::fill(&mut self.expected, self.seed, block, v);
                    for ((e, &f), &x) in self.explained.iter_mut().zip(found).zip(&self.expected) {
                        *e |= f == x;
                    }
                }
                Kind::Zero => {
                    for (e, &f) in self.explained.iter_mut().zip(found) {
                        *e |= f == 0;
                    }
                }
                Kind::Unknown => return false,
            }
        }
        self.explained.iter().all(|&e| e)
    }
}

/// The number of bytes where `a` and `b` differ (and the difference in
/// length).
fn differing(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).filter(|(x, y)| x != y).count() + a.len().abs_diff(b.len())
}

/// The state of one block of the hot set, shared by the threads.
#[derive(Debug)]
struct BlockState {
    /// The last version whose write completed.
    committed: AtomicU64,
    /// The last version whose write started (`>= committed`).
    started: AtomicU64,
    /// Held by the one thread writing the block.
    busy: AtomicBool,
    /// Slot `v % HISTORY` holds `v << 2 | kind code` for the last versions.
    ring: [AtomicU64; HISTORY],
}

impl BlockState {
    fn new(version: u64, kind: Kind) -> BlockState {
        let ring = std::array::from_fn(|_| AtomicU64::new(0));
        let state = BlockState {
            committed: AtomicU64::new(version),
            started: AtomicU64::new(version),
            busy: AtomicBool::new(false),
            ring,
        };
        state.record(version, kind);
        state
    }

    /// Committed at `lo`, started at `hi` (`>= lo`), every version between
    /// of `kind`: a block whose last writes may or may not have landed.
    fn span(lo: u64, hi: u64, kind: Kind) -> BlockState {
        let hi = hi.max(lo);
        let state = BlockState::new(lo, kind);
        for v in hi.saturating_sub(HISTORY as u64 - 1).max(lo)..=hi {
            state.record(v, kind);
        }
        state.started.store(hi, Ordering::SeqCst);
        state
    }

    fn slot(&self, v: u64) -> &AtomicU64 {
        &self.ring[(v % HISTORY as u64) as usize]
    }

    fn record(&self, v: u64, kind: Kind) {
        self.slot(v).store(v << 2 | kind.code(), Ordering::SeqCst);
    }

    fn kind(&self, v: u64) -> Option<Kind> {
        let slot = self.slot(v).load(Ordering::SeqCst);
        if slot >> 2 == v & (u64::MAX >> 2) {
            Kind::from_code(slot & 3)
        } else {
            None
        }
    }
}

/// The per-block versions of the hot set, shared by the threads of a run.
/// Blocks are numbered from 0 (the first block of the hot set).
#[derive(Debug)]
pub struct History {
    blocks: Vec<BlockState>,
}

impl History {
    /// `n` blocks, each at `version` of `kind`.
    pub fn new(n: usize, version: u64, kind: Kind) -> Result<History, String> {
        let mut blocks = Vec::new();
        blocks.try_reserve_exact(n).map_err(|e| {
            format!("cannot allocate the state of {n} blocks ({HISTORY} versions each): {e}")
        })?;
        blocks.extend((0..n).map(|_| BlockState::new(version, kind)));
        Ok(History { blocks })
    }

    /// One block per `(lo, hi)` of `spans`: committed at `lo`, started at
    /// `hi`, every version between written with data (a run resumed after
    /// a power cut: the block may hold any of them).
    pub fn resume(spans: &[(u64, u64)]) -> Result<History, String> {
        let n = spans.len();
        let mut blocks = Vec::new();
        blocks.try_reserve_exact(n).map_err(|e| {
            format!("cannot allocate the state of {n} blocks ({HISTORY} versions each): {e}")
        })?;
        blocks.extend(
            spans
                .iter()
                .map(|&(lo, hi)| BlockState::span(lo, hi, Kind::Data)),
        );
        Ok(History { blocks })
    }

    /// The number of blocks.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    fn range(&self, first: usize, count: usize) -> &[BlockState] {
        let end = first.saturating_add(count).min(self.blocks.len());
        self.blocks.get(first..end).unwrap_or(&[])
    }

    /// Takes the write locks of blocks `first..first + count`, in
    /// ascending order, without waiting: all of them, or none (`false`).
    pub fn try_lock(&self, first: usize, count: usize) -> bool {
        let blocks = self.range(first, count);
        for (i, b) in blocks.iter().enumerate() {
            let taken = b
                .busy
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok();
            if !taken {
                for held in &blocks[..i] {
                    held.busy.store(false, Ordering::Release);
                }
                return false;
            }
        }
        true
    }

    /// Releases the locks taken by [`History::try_lock`].
    pub fn unlock(&self, first: usize, count: usize) {
        for b in self.range(first, count) {
            b.busy.store(false, Ordering::Release);
        }
    }

    /// Starts the next version of block `i`, of `kind`, and returns it.
    /// The caller holds the block's lock and submits the I/O afterwards.
    pub fn start(&self, i: usize, kind: Kind) -> u64 {
        let Some(b) = self.blocks.get(i) else {
            return 0;
        };
        let v = b.started.load(Ordering::SeqCst).saturating_add(1);
        b.record(v, kind);
        b.started.store(v, Ordering::SeqCst);
        v
    }

    /// Commits version `v` of block `i`, after its I/O completed.
    pub fn commit(&self, i: usize, v: u64) {
        if let Some(b) = self.blocks.get(i) {
            b.committed.store(v, Ordering::SeqCst);
        }
    }

    /// Before a read's I/O: the version of block `i` it must at least see.
    pub fn read_begin(&self, i: usize) -> u64 {
        self.blocks
            .get(i)
            .map_or(0, |b| b.committed.load(Ordering::SeqCst))
    }

    /// After a read's I/O: its window for block `i`, from `lo` returned by
    /// [`History::read_begin`].
    pub fn read_end(&self, i: usize, lo: u64) -> Window {
        let Some(b) = self.blocks.get(i) else {
            return Window::exact(lo, Kind::Unknown);
        };
        let hi = b.started.load(Ordering::SeqCst).max(lo);
        let mut kinds = [None; HISTORY];
        for (back, k) in kinds.iter_mut().enumerate() {
            let Some(v) = hi.checked_sub(back as u64).filter(|&v| v >= lo) else {
                break;
            };
            *k = b.kind(v);
        }
        Window { lo, hi, kinds }
    }

    /// The final state of block `i`, when no thread runs: its version and
    /// kind, [`Kind::Unknown`] after a write that did not complete.
    pub fn final_state(&self, i: usize) -> (u64, Kind) {
        let Some(b) = self.blocks.get(i) else {
            return (0, Kind::Unknown);
        };
        let (committed, started) = (
            b.committed.load(Ordering::SeqCst),
            b.started.load(Ordering::SeqCst),
        );
        match b.kind(committed) {
            Some(kind) if committed == started => (committed, kind),
            _ => (committed, Kind::Unknown),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: usize = 512;
    const SEED: u64 = 0x5eed;

    fn block(n: u64, v: u64) -> Vec<u8> {
        let mut b = vec![0u8; B];
        pattern::fill(&mut b, SEED, n, v);
        b
    }

    fn checker() -> Checker {
        Checker::new(SEED, B).unwrap()
    }

    /// A history of one block that went through `kinds` (versions 1..).
    fn history(initial: Kind, kinds: &[Kind]) -> History {
        let h = History::new(1, 0, initial).unwrap();
        for &k in kinds {
            assert!(h.try_lock(0, 1));
            let v = h.start(0, k);
            h.commit(0, v);
            h.unlock(0, 1);
        }
        h
    }

    #[test]
    fn whole_versions_in_the_window() {
        let mut c = checker();
        let w = Window::exact(4, Kind::Data);
        assert_eq!(c.check(7, &block(7, 4), &w), Verdict::Ok);
        // A read that overlapped the write of 5.
        let h = history(Kind::Data, &[Kind::Data; 4]);
        let lo = h.read_begin(0);
        assert!(h.try_lock(0, 1));
        let v = h.start(0, Kind::Data);
        let w = h.read_end(0, lo);
        assert_eq!((w.lo, w.hi, v), (4, 5, 5));
        assert_eq!(c.check(0, &block(0, 4), &w), Verdict::Ok);
        assert_eq!(c.check(0, &block(0, 5), &w), Verdict::Ok);
        assert_eq!(w.describe(), "versions 4..=5 (data, data)");
    }

    #[test]
    fn stale_version_after_a_completed_write_is_flagged() {
        let h = history(Kind::Data, &[Kind::Data; 5]);
        // Version 5 completed before the read began: 4 is stale.
        let lo = h.read_begin(0);
        let w = h.read_end(0, lo);
        assert_eq!((w.lo, w.hi), (5, 5));
        let mut c = checker();
        let verdict = c.check(0, &block(0, 4), &w);
        assert_eq!(verdict, Verdict::Bad(Problem::Stale { found: 4 }));
        let Verdict::Bad(p) = verdict else {
            unreachable!()
        };
        assert!(p
            .describe(0, SEED, &w, B)
            .contains("stale, version 5 had completed"));
        // Still stale while version 6 is being written.
        assert!(h.try_lock(0, 1));
        h.start(0, Kind::Data);
        let w = h.read_end(0, lo);
        assert_eq!((w.lo, w.hi), (5, 6));
        assert_eq!(
            c.check(0, &block(0, 4), &w),
            Verdict::Bad(Problem::Stale { found: 4 })
        );
    }

    #[test]
    fn future_versions_are_flagged() {
        let h = history(Kind::Data, &[Kind::Data; 2]);
        let w = h.read_end(0, h.read_begin(0));
        assert_eq!(
            checker().check(0, &block(0, 3), &w),
            Verdict::Bad(Problem::Future { found: 3 })
        );
    }

    #[test]
    fn zero_versions() {
        let mut c = checker();
        let zeros = vec![0u8; B];
        // 1 data, 2 zero, 3 data.
        let h = history(Kind::Data, &[Kind::Data, Kind::Zero]);
        let w = h.read_end(0, h.read_begin(0));
        assert_eq!(w.describe(), "version 2 (zero)");
        assert_eq!(c.check(0, &zeros, &w), Verdict::Ok);
        assert_eq!(
            c.check(0, &block(0, 1), &w),
            Verdict::Bad(Problem::Stale { found: 1 })
        );
        // The pattern of a version that was a zeroing cannot be there.
        assert_eq!(
            c.check(0, &block(0, 2), &w),
            Verdict::Bad(Problem::NotZeroed { found: 2 })
        );
        assert!(h.try_lock(0, 1));
        let v = h.start(0, Kind::Data);
        h.commit(0, v);
        let w = h.read_end(0, h.read_begin(0));
        assert_eq!(c.check(0, &zeros, &w), Verdict::Bad(Problem::Zeros));
        assert_eq!(c.check(0, &block(0, 3), &w), Verdict::Ok);
    }

    #[test]
    fn garbage_and_wrong_blocks_are_flagged() {
        let mut c = checker();
        let w = Window::exact(3, Kind::Data);
        let verdict = c.check(9, &[0xee; B], &w);
        assert_eq!(
            verdict,
            Verdict::Bad(Problem::Other {
                found: Found::Garbage,
                differ: Some(differing(&[0xee; B], &block(9, 3)))
            })
        );
        // Another block's version 3.
        let other = block(8, 3);
        let Verdict::Bad(p) = c.check(9, &other, &w) else {
            panic!("another block's data passed");
        };
        let text = p.describe(9, SEED, &w, B);
        assert!(
            text.starts_with("block 8 version 3 seed 0x5eed (another block's data"),
            "{text}"
        );
        // Another seed.
        let mut b = vec![0u8; B];
        pattern::fill(&mut b, 1, 9, 3);
        let Verdict::Bad(p) = c.check(9, &b, &w) else {
            panic!("another seed passed");
        };
        assert!(p.describe(9, SEED, &w, B).contains("another seed"));
        // One flipped byte.
        let mut b = block(9, 3);
        b[300] ^= 1;
        let Verdict::Bad(p) = c.check(9, &b, &w) else {
            panic!("a corrupted block passed");
        };
        let text = p.describe(9, SEED, &w, B);
        assert!(
            text.contains(
                "checksum wrong (a corrupted block, 1 of 512 bytes differ from version 3)"
            ),
            "{text}"
        );
    }

    #[test]
    fn torn_reads_only_while_a_write_overlaps() {
        let mut c = checker();
        let h = history(Kind::Data, &[Kind::Data; 3]);
        let (old, new) = (block(0, 3), block(0, 4));
        let mut torn = old.clone();
        torn[256..].copy_from_slice(&new[256..]);
        // No write in flight: a torn block is wrong.
        let w = h.read_end(0, h.read_begin(0));
        assert!(matches!(c.check(0, &torn, &w), Verdict::Bad(_)));
        // Version 4 being written: a mix of 3 and 4 is a torn read.
        let lo = h.read_begin(0);
        assert!(h.try_lock(0, 1));
        h.start(0, Kind::Data);
        let w = h.read_end(0, lo);
        assert_eq!(c.check(0, &torn, &w), Verdict::Torn);
        // A mix with the stale version 2 is not.
        let mut stale_mix = block(0, 2);
        stale_mix[256..].copy_from_slice(&new[256..]);
        assert!(matches!(c.check(0, &stale_mix, &w), Verdict::Bad(_)));
        // Zeros mixed in are fine only with a zeroing in the window.
        let mut zero_mix = old.clone();
        zero_mix[100..200].fill(0);
        assert!(matches!(c.check(0, &zero_mix, &w), Verdict::Bad(_)));
    }

    #[test]
    fn forgotten_versions_leave_reads_unchecked() {
        let mut c = checker();
        let h = history(Kind::Data, &[Kind::Zero]);
        let lo = h.read_begin(0);
        assert_eq!(lo, 1);
        // HISTORY + 2 writes of data while the read runs: version 1 (the
        // zeroing) leaves the ring.
        for _ in 0..HISTORY + 2 {
            assert!(h.try_lock(0, 1));
            let v = h.start(0, Kind::Data);
            h.commit(0, v);
            h.unlock(0, 1);
        }
        let w = h.read_end(0, lo);
        assert!(w.forgotten());
        assert_eq!(w.kind(1), None);
        assert_eq!(c.check(0, &vec![0u8; B], &w), Verdict::Unchecked);
        // A whole version is still decided.
        assert_eq!(c.check(0, &block(0, 5), &w), Verdict::Ok);
        assert_eq!(
            c.check(0, &block(0, 0), &w),
            Verdict::Bad(Problem::Stale { found: 0 })
        );
        assert!(w.describe().starts_with("versions 1..=19 (..., data, data"));
    }

    #[test]
    fn unknown_initial_content() {
        let mut c = checker();
        let h = history(Kind::Unknown, &[]);
        let w = h.read_end(0, h.read_begin(0));
        assert_eq!(c.check(0, &vec![0u8; B], &w), Verdict::Ok);
        assert_eq!(c.check(0, &block(0, 77), &w), Verdict::Ok);
        assert!(matches!(c.check(0, &block(1, 1), &w), Verdict::Bad(_)));
        assert!(matches!(c.check(0, &[1u8; B], &w), Verdict::Bad(_)));
        // A zeroing numbered 1 in flight: an earlier run's version 1 (a
        // `fill`) is still the unknown content, not a zeroing that failed.
        let lo = h.read_begin(0);
        assert!(h.try_lock(0, 1));
        assert_eq!(h.start(0, Kind::Zero), 1);
        let w = h.read_end(0, lo);
        assert_eq!(w.describe(), "versions 0..=1 (unknown, zero)");
        assert_eq!(c.check(0, &block(0, 1), &w), Verdict::Ok);
        // Once it completed, that version 1 is a zeroing that was lost.
        h.commit(0, 1);
        let w = h.read_end(0, h.read_begin(0));
        assert_eq!(
            c.check(0, &block(0, 1), &w),
            Verdict::Bad(Problem::NotZeroed { found: 1 })
        );
        // Once a write completed, the unknown content is stale too.
        let h = history(Kind::Unknown, &[Kind::Data]);
        let w = h.read_end(0, h.read_begin(0));
        assert_eq!(
            c.check(0, &block(0, 77), &w),
            Verdict::Bad(Problem::Future { found: 77 })
        );
        assert_eq!(c.check(0, &vec![0u8; B], &w), Verdict::Bad(Problem::Zeros));
    }

    #[test]
    fn locks_are_all_or_nothing() {
        let h = History::new(8, 1, Kind::Data).unwrap();
        assert!(h.try_lock(2, 3));
        assert!(!h.try_lock(0, 3));
        // The failed attempt released blocks 0 and 1.
        assert!(h.try_lock(0, 2));
        assert!(h.try_lock(5, 10));
        h.unlock(2, 3);
        assert!(h.try_lock(3, 1));
        assert_eq!(h.len(), 8);
    }

    #[test]
    fn final_state_after_a_failed_write() {
        let h = history(Kind::Data, &[Kind::Data, Kind::Zero]);
        assert_eq!(h.final_state(0), (2, Kind::Zero));
        assert!(h.try_lock(0, 1));
        h.start(0, Kind::Data);
        assert_eq!(h.final_state(0), (2, Kind::Unknown));
        assert_eq!(h.final_state(1), (0, Kind::Unknown));
    }

    #[test]
    fn resumed_blocks_accept_their_span_and_nothing_older() {
        let h = History::resume(&[(3, 4), (7, 7)]).unwrap();
        let lo = h.read_begin(0);
        let w = h.read_end(0, lo);
        assert_eq!((w.lo, w.hi), (3, 4));
        assert_eq!(w, Window::span(3, 4, Kind::Data));
        assert_eq!(w.kind(2), None);
        let mut c = Checker::new(5, 512).unwrap();
        let mut buf = vec![0u8; 512];
        for (v, ok) in [(2, false), (3, true), (4, true), (5, false)] {
            crate::pattern::fill(&mut buf, 5, 0, v);
            assert_eq!(
                matches!(c.check(0, &buf, &w), Verdict::Ok),
                ok,
                "version {v}"
            );
        }
        assert!(h.try_lock(0, 2));
        assert_eq!(h.start(0, Kind::Data), 5);
        assert_eq!(h.start(1, Kind::Data), 8);
        assert_eq!(Window::span(7, 7, Kind::Data), Window::exact(7, Kind::Data));
    }

    #[test]
    fn kinds_round_trip() {
        for k in [Kind::Data, Kind::Zero, Kind::Unknown] {
            assert_eq!(Kind::parse(k.name()), Some(k));
            assert_eq!(Kind::from_code(k.code()), Some(k));
        }
        assert_eq!(Kind::parse("x"), None);
    }
}
