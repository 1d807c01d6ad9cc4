// SPDX-License-Identifier: GPL-2.0

//! The acknowledgement log (`--ack-log A`): what `race` was told had been
//! written, kept on another device (or file) that survives a power cut of
//! the one under test, so that `verify --ack-log A` can check after the
//! reboot that no block is older than its last acknowledged write.
//!
//! The log is [`SLOT`]-byte slots, written with `O_DSYNC` (and `O_DIRECT`
//! unless `--no-direct`): slot 0 is the header (seed, block size, first
//! device block and number of blocks of the hot set), slot `1 + i` the
//! state of block `i` of the hot set:
//!
//! - `acked`: the last version whose write completed (the slot is
//!   written after it, while the writer still holds the block's lock, so
//!   slots of one block are written in version order);
//! - `pending`: the last version started (`acked`, or a higher version
//!   whose write failed: it may have reached the device in part).
//!
//! After a cut, block `i` may hold any version of `acked..=pending + 1`:
//! the acknowledged one, a failed one, or the one in flight when the power
//! went (whose slot was not written yet). Anything older is lost data.
//!
//! Every slot carries a magic, its own position and a check word, so that
//! a slot that is not the log's (another run's, a torn write) is refused,
//! not believed.

use crate::cli::Target;
use crate::device::{AlignedBuf, Device, OpenFlags};
use crate::pattern::mix64;
use crate::Failure;

/// Bytes per slot: a whole logical block of any disk.
pub const SLOT: usize = 4096;

/// The first word of the header.
const HEADER_MAGIC: u64 = u64::from_le_bytes(*b"RKMACKH1");

/// The first word of a block's slot.
const BLOCK_MAGIC: u64 = u64::from_le_bytes(*b"RKMACKB1");

/// Slots read or written by one system call, for the whole log.
const PER_IO: u64 = 256;

/// Words of a slot that are written (the rest is zeros).
const WORDS: usize = 7;

/// The state of one block in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acked {
    /// The last version acknowledged.
    pub acked: u64,
    /// The last version started (`>= acked`).
    pub pending: u64,
}

/// The check word of a slot's other words.
fn check(words: &[u64]) -> u64 {
    words
        .iter()
        .fold(0x6163_6b6c_6f67_u64, |h, &w| mix64(h ^ w))
}

fn encode(slot: &mut [u8], words: [u64; WORDS - 1]) {
    slot.fill(0);
    let sum = check(&words);
    let all = words.iter().chain(std::iter::once(&sum));
    for (out, w) in slot.chunks_exact_mut(8).zip(all) {
        out.copy_from_slice(&w.to_le_bytes());
    }
}

fn decode(slot: &[u8]) -> Option<[u64; WORDS - 1]> {
    let mut words = [0u64; WORDS];
    for (w, b) in words.iter_mut().zip(slot.chunks_exact(8)) {
        *w = u64::from_le_bytes(b.try_into().ok()?);
    }
    let (fields, sum) = words.split_at(WORDS - 1);
    (check(fields) == sum[0])
        .then(|| fields.try_into().ok())
        .flatten()
}

/// An open acknowledgement log for the hot set of a target.
#[derive(Debug)]
pub struct AckLog {
    dev: Device,
    path: String,
    seed: u64,
    block: u64,
    first_block: u64,
    blocks: u64,
}

impl AckLog {
    /// Opens the log at `path` for `t`'s hot set (`write`: to record).
    pub fn open(path: &str, t: &Target, write: bool) -> Result<AckLog, Failure> {
        let flags = OpenFlags {
            write,
            direct: t.direct,
            dsync: write,
        };
        let dev =
            Device::open(path, flags).map_err(|e| Failure::Io(format!("ack log {path}: {e}")))?;
        let need = (t.blocks() + 1).saturating_mul(SLOT as u64);
        if dev.is_block() && dev.size() < need {
            return Err(Failure::Usage(format!(
                "ack log {path}: {} bytes, the hot set of {} blocks needs {need}",
                dev.size(),
                t.blocks()
            )));
        }
        Ok(AckLog {
            dev,
            path: path.to_string(),
            seed: t.seed(),
            block: t.block,
            first_block: t.first_block(),
            blocks: t.blocks(),
        })
    }

    fn header_words(&self) -> [u64; WORDS - 1] {
        [
            HEADER_MAGIC,
            self.seed,
            self.block,
            self.first_block,
            self.blocks,
            0,
        ]
    }

    fn slot_words(&self, i: u64, a: Acked) -> [u64; WORDS - 1] {
        [
            BLOCK_MAGIC,
            self.seed,
            self.first_block + i,
            a.acked,
            a.pending,
            0,
        ]
    }

    fn io(&self, e: crate::device::IoError) -> Failure {
        Failure::Io(format!("ack log {}: {e}", self.path))
    }

    /// Starts a new log: every block at `version` (written and synced
    /// before), then the header.
    pub fn create(&self, version: u64) -> Result<(), Failure> {
        self.write_all(|_| Acked {
            acked: version,
            pending: version,
        })?;
        let mut head = AlignedBuf::new(SLOT).map_err(Failure::Io)?;
        encode(head.as_mut_slice(), self.header_words());
        self.dev
            .write_at(head.as_slice(), 0, true)
            .map_err(|e| self.io(e))
    }

    /// Writes every block's slot, `state(i)` for block `i` of the hot set,
    /// [`PER_IO`] slots a write.
    fn write_all(&self, state: impl Fn(usize) -> Acked) -> Result<(), Failure> {
        let mut buf = AckLog::buffer(PER_IO).map_err(Failure::Io)?;
        let mut run = Vec::new();
        let mut first = 0;
        while first < self.blocks {
            let n = PER_IO.min(self.blocks - first);
            run.clear();
            run.extend((first..first + n).map(|i| state(i as usize)));
            self.record(&mut buf, first, &run)?;
            first += n;
        }
        Ok(())
    }

    /// Reads the log: the state of every block of the hot set. A missing
    /// or foreign header, or a damaged slot, is an error.
    pub fn load(&self) -> Result<Vec<Acked>, Failure> {
        let mut buf = AlignedBuf::new(SLOT).map_err(Failure::Io)?;
        let bad = |what: String| Failure::Usage(format!("ack log {}: {what}", self.path));
        let none = || bad("no log here (start one with race --init)".to_string());
        match self.dev.read_at(buf.as_mut_slice(), 0) {
            Ok(()) => {}
            // A file shorter than the header.
            Err(e) if e.errno.is_none() => return Err(none()),
            Err(e) => return Err(self.io(e)),
        }
        match decode(buf.as_slice()) {
            Some(h) if h == self.header_words() => {}
            Some(h) if h[0] == HEADER_MAGIC => {
                return Err(bad(format!(
                    "it is of another hot set (seed {:#x}, block {}, first block {}, {} \
                     blocks), not this one (seed {:#x}, block {}, first block {}, {} blocks)",
                    h[1], h[2], h[3], h[4], self.seed, self.block, self.first_block, self.blocks
                )))
            }
            _ => return Err(none()),
        }
        let mut out = Vec::new();
        out.try_reserve_exact(self.blocks as usize)
            .map_err(|e| Failure::Io(format!("cannot allocate the ack log: {e}")))?;
        let mut chunk = AckLog::buffer(PER_IO).map_err(Failure::Io)?;
        let mut i = 0;
        while i < self.blocks {
            let n = PER_IO.min(self.blocks - i);
            let bytes = &mut chunk.as_mut_slice()[..n as usize * SLOT];
            self.dev
                .read_at(bytes, (1 + i) * SLOT as u64)
                .map_err(|e| self.io(e))?;
            for (k, slot) in bytes.chunks_exact(SLOT).enumerate() {
                let b = i + k as u64;
                let w = decode(slot).filter(|w| {
                    w[0] == BLOCK_MAGIC && w[1] == self.seed && w[2] == self.first_block + b
                });
                let Some(w) = w.filter(|w| w[3] <= w[4]) else {
                    return Err(bad(format!(
                        "the slot of block {} is damaged or not this log's",
                        self.first_block + b
                    )));
                };
                out.push(Acked {
                    acked: w[3],
                    pending: w[4],
                });
            }
            i += n;
        }
        Ok(out)
    }

    /// Loads the log to resume a run from it: every block's `pending`
    /// goes one up, written back before the run writes anything, because
    /// the block may hold that version already (a write that landed but
    /// whose slot a cut beat) and the run's next write of it is the one
    /// after. Returns the states as written.
    pub fn resume(&self) -> Result<Vec<Acked>, Failure> {
        let mut states = self.load()?;
        for a in states.iter_mut() {
            a.pending = a.pending.saturating_add(1);
        }
        self.write_all(|i| states[i])?;
        Ok(states)
    }

    /// A buffer for [`AckLog::record`] of up to `blocks` blocks.
    pub fn buffer(blocks: u64) -> Result<AlignedBuf, String> {
        AlignedBuf::new(blocks.max(1) as usize * SLOT)
    }

    /// Records the state of blocks `first..first + states.len()` of the
    /// hot set, in one `O_DSYNC` write; the caller holds their locks.
    pub fn record(
        &self,
        buf: &mut AlignedBuf,
        first: u64,
        states: &[Acked],
    ) -> Result<(), Failure> {
        let Some(bytes) = buf.as_mut_slice().get_mut(..states.len() * SLOT) else {
            return Err(Failure::Io("ack log: buffer too small".to_string()));
        };
        for (k, (slot, &a)) in bytes.chunks_exact_mut(SLOT).zip(states).enumerate() {
            encode(slot, self.slot_words(first + k as u64, a));
        }
        self.dev
            .write_at(bytes, (1 + first) * SLOT as u64, true)
            .map_err(|e| self.io(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(seed: u64) -> Target {
        Target {
            dev: String::new(),
            offset: 8 * 4096,
            size: 5 * 4096,
            block: 4096,
            seed: Some(seed),
            direct: false,
        }
    }

    #[test]
    fn create_record_load_and_refuse() {
        let path = std::env::temp_dir().join(format!("blkverify-ack-{}", std::process::id()));
        let path = path.to_str().unwrap().to_string();
        std::fs::write(&path, vec![0u8; 6 * SLOT]).unwrap();
        let log = AckLog::open(&path, &target(7), true).unwrap();
        assert!(matches!(log.load(), Err(Failure::Usage(e)) if e.contains("no log here")));
        log.create(1).unwrap();
        let one = Acked {
            acked: 1,
            pending: 1,
        };
        assert_eq!(log.load().unwrap(), vec![one; 5]);
        let mut buf = AckLog::buffer(2).unwrap();
        let two = [
            Acked {
                acked: 3,
                pending: 3,
            },
            Acked {
                acked: 2,
                pending: 4,
            },
        ];
        log.record(&mut buf, 2, &two).unwrap();
        assert_eq!(log.load().unwrap(), vec![one, one, two[0], two[1], one]);

        // A resumed run may find the block one past its last start.
        let resumed = log.resume().unwrap();
        assert_eq!(
            resumed[3],
            Acked {
                acked: 2,
                pending: 5
            }
        );
        assert_eq!(log.load().unwrap(), resumed);

        let other = AckLog::open(&path, &target(8), false).unwrap();
        assert!(matches!(other.load(), Err(Failure::Usage(e)) if e.contains("another hot set")));

        // A slot with a bit flipped is refused.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[3 * SLOT + 24] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let e = log.load().unwrap_err();
        let _ = std::fs::remove_file(&path);
        assert!(matches!(e, Failure::Usage(e) if e.contains("slot of block 10 is damaged")));
    }
}
