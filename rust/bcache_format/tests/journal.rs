// SPDX-License-Identifier: GPL-2.0

//! The journal of format version 2: record and block codecs, the replay
//! plan, and torn metadata writes (Open CAS's "surprise shutdown"
//! pattern): a workload journals index changes and checkpoints through a
//! simulated disk that fails its N-th write (nothing written, half the
//! block written, or all of it without the acknowledgement), for N = 0,
//! 1, 2, ... until no write fails; after each, replay from the disk must
//! give exactly the acknowledged index, or the acknowledged index plus
//! the block whose write completed unacknowledged, never anything else.
//! Then the writer recovers (a checkpoint of the replayed index), goes on,
//! and fails again: stale blocks left after a gap must not come back.

use proptest::prelude::*;
use rkm_bcache_format::*;
use std::collections::{BTreeMap, BTreeSet};

const TAG: u64 = 0x1234_5678_9abc_def0;

fn extent(dev: u32, sector: u64, bucket: u64) -> Record {
    Record::Extent {
        dev,
        sector,
        sectors: 8,
        offset: 16,
        bucket,
        gen: 3,
        csum: 0xdead_beef,
    }
}

fn sealed(records: &[Record], kind: BlockKind, seq: u64, tail: u64) -> Box<[u8; JBLOCK_SIZE]> {
    let mut buf = Box::new([0u8; JBLOCK_SIZE]);
    let mut b = BlockBuilder::new(&mut buf);
    for r in records {
        assert!(b.push(r));
    }
    b.seal(kind, seq, tail, TAG);
    buf
}

fn record_strategy() -> impl Strategy<Value = Record> {
    prop_oneof![
        (
            any::<u32>(),
            any::<u64>(),
            1..=u32::MAX,
            any::<u32>(),
            any::<u64>(),
            any::<u32>(),
            any::<u32>()
        )
            .prop_map(
                |(dev, sector, sectors, offset, bucket, gen, csum)| Record::Extent {
                    dev,
                    sector,
                    sectors,
                    offset,
                    bucket,
                    gen,
                    csum
                }
            ),
        (any::<u32>(), any::<u64>(), 1..=u32::MAX).prop_map(|(dev, sector, sectors)| {
            Record::Invalidate {
                dev,
                sector,
                sectors,
            }
        }),
        (any::<u64>(), any::<u32>()).prop_map(|(bucket, gen)| Record::Bucket { bucket, gen }),
        (any::<u32>(), any::<u64>()).prop_map(|(dev, region)| Record::Dirty { dev, region }),
        any::<u32>().prop_map(|dev| Record::Clean { dev }),
        (
            any::<u32>(),
            any::<[u8; 16]>().prop_filter("not nil", |u| *u != [0; 16])
        )
            .prop_map(|(dev, u)| Record::Device { dev, uuid: Uuid(u) }),
        (
            any::<u32>(),
            any::<u32>(),
            proptest::collection::vec(any::<u32>(), 1..=SUMS_MAX)
        )
            .prop_map(|(bucket, block, v)| {
                let mut crcs = [0; SUMS_MAX];
                crcs[..v.len()].copy_from_slice(&v);
                Record::Sums {
                    bucket,
                    block,
                    count: v.len() as u8,
                    crcs,
                }
            }),
        (any::<u32>(), any::<u64>(), any::<u64>(), any::<u32>()).prop_map(
            |(blocks, start, records, csum)| Record::Checkpoint {
                blocks,
                start,
                records,
                csum
            }
        ),
    ]
}

proptest! {
    #[test]
    fn records_round_trip(records in prop::collection::vec(record_strategy(), 0..120)) {
        let mut buf = Box::new([0u8; JBLOCK_SIZE]);
        let mut b = BlockBuilder::new(&mut buf);
        let mut pushed = Vec::new();
        for r in &records {
            if !b.push(r) {
                break;
            }
            pushed.push(*r);
        }
        b.seal(BlockKind::Journal, 7, 3, TAG);
        let h = decode_block(&buf[..], TAG).unwrap();
        prop_assert_eq!((h.kind, h.seq, h.tail), (BlockKind::Journal, 7, 3));
        prop_assert_eq!(usize::from(h.nrecords), pushed.len());
        let back: Vec<Record> = records_of(&buf, &h);
        prop_assert_eq!(back, pushed);
    }
}

fn records_of(buf: &[u8; JBLOCK_SIZE], h: &BlockHeader) -> Vec<Record> {
    rkm_bcache_format::records(&buf[..], h).collect()
}

#[test]
fn record_layout() {
    let mut b = [0u8; 64];
    assert_eq!(extent(1, 2, 3).encode(&mut b), Some(40));
    assert_eq!(&b[..4], &[1, 5, 0, 0]);
    assert_eq!(&b[4..8], &1u32.to_le_bytes());
    assert_eq!(&b[8..16], &2u64.to_le_bytes());
    assert_eq!(&b[24..32], &3u64.to_le_bytes());
    assert_eq!(Record::Clean { dev: 9 }.encode(&mut b[..7]), None);
    // Unknown kind, size that does not match the kind, reserved bytes,
    // zero length, truncation.
    let mut e = [0u8; 40];
    extent(1, 2, 3).encode(&mut e);
    let bad = |f: &dyn Fn(&mut [u8; 40])| {
        let mut c = e;
        f(&mut c);
        Record::decode(&c)
    };
    assert_eq!(
        bad(&|c| c[0] = 10),
        Err(RecordError::UnknownKind { kind: 10 })
    );
    assert_eq!(bad(&|c| c[1] = 4), Err(RecordError::BadHeader { kind: 1 }));
    assert_eq!(bad(&|c| c[3] = 1), Err(RecordError::BadHeader { kind: 1 }));
    assert_eq!(
        bad(&|c| c[16..20].fill(0)),
        Err(RecordError::BadField { kind: 1 })
    );
    assert_eq!(
        Record::decode(&e[..39]),
        Err(RecordError::Truncated { kind: 1 })
    );
    assert_eq!(Record::decode(&e), Ok((extent(1, 2, 3), 40)));
}

/// `SUMS`: its size follows its count (16 + 4 per checksum, rounded up to
/// 8); a count of 0 or over `SUMS_MAX`, a size that does not match it, or
/// bytes after the last checksum are refused.
#[test]
fn sums_record_layout() {
    let sums = |count: usize| {
        let mut crcs = [0; SUMS_MAX];
        for (i, c) in crcs.iter_mut().take(count).enumerate() {
            *c = 0xa0b0_c0d0 + i as u32;
        }
        Record::Sums {
            bucket: 7,
            block: 30,
            count: count as u8,
            crcs,
        }
    };
    for (count, size) in [(1, 24), (2, 24), (3, 32), (13, 72), (SUMS_MAX, 72)] {
        let mut b = [0u8; 80];
        assert_eq!(sums(count).encode(&mut b), Some(size), "count {count}");
        assert_eq!(&b[..4], &[9, (size / 8) as u8, 0, 0]);
        assert_eq!(&b[4..8], &7u32.to_le_bytes());
        assert_eq!(&b[8..12], &30u32.to_le_bytes());
        assert_eq!(&b[12..16], &(count as u32).to_le_bytes());
        assert_eq!(&b[16..20], &0xa0b0_c0d0u32.to_le_bytes());
        assert_eq!(Record::decode(&b), Ok((sums(count), size)));
    }
    for count in [0, SUMS_MAX + 1] {
        assert_eq!(sums(count).encode(&mut [0u8; 80]), None);
    }
    let mut b = [0u8; 32];
    sums(3).encode(&mut b).unwrap();
    let bad = |f: &dyn Fn(&mut [u8; 32])| {
        let mut c = b;
        f(&mut c);
        Record::decode(&c)
    };
    // A count whose size is not the record's.
    assert_eq!(bad(&|c| c[12] = 1), Err(RecordError::BadField { kind: 9 }));
    assert_eq!(bad(&|c| c[12] = 0), Err(RecordError::BadField { kind: 9 }));
    // Padding after the last checksum.
    assert_eq!(bad(&|c| c[31] = 1), Err(RecordError::BadField { kind: 9 }));
    // No size at all, or one past the buffer.
    assert_eq!(bad(&|c| c[1] = 0), Err(RecordError::BadHeader { kind: 9 }));
    assert_eq!(bad(&|c| c[1] = 5), Err(RecordError::Truncated { kind: 9 }));
}

#[test]
fn block_rejects() {
    let good = sealed(
        &[extent(0, 8, 40), Record::Clean { dev: 1 }],
        BlockKind::Journal,
        5,
        1,
    );
    assert!(decode_block(&good[..], TAG).is_ok());
    assert_eq!(
        decode_block(&good[..100], TAG),
        Err(JournalError::ShortBuffer { len: 100 })
    );
    assert_eq!(
        decode_block(&good[..], TAG ^ 1),
        Err(JournalError::Foreign { found: TAG })
    );
    assert_eq!(
        decode_block(&[0u8; JBLOCK_SIZE], TAG),
        Err(JournalError::BadMagic)
    );
    // A field changed and the crc recomputed: still rejected, by the
    // field's own check.
    let resealed = |f: &dyn Fn(&mut [u8; JBLOCK_SIZE])| {
        let mut c = good.clone();
        f(&mut c);
        c[8..12].fill(0);
        let crc = crc32c(&c[..]);
        c[8..12].copy_from_slice(&crc.to_le_bytes());
        decode_block(&c[..], TAG)
    };
    assert_eq!(
        resealed(&|c| c[12] = 2),
        Err(JournalError::UnsupportedVersion { found: 2 })
    );
    assert_eq!(
        resealed(&|c| c[14] = 3),
        Err(JournalError::BadKind { found: 3 })
    );
    assert_eq!(resealed(&|c| c[44] = 3), Err(JournalError::BadLength));
    assert_eq!(resealed(&|c| c[40] = 41), Err(JournalError::BadLength));
    assert_eq!(resealed(&|c| c[4000] = 1), Err(JournalError::BadLength));
    assert!(matches!(
        resealed(&|c| c[48] = 77),
        Err(JournalError::BadRecord { offset: 48, .. })
    ));
    assert_eq!(
        JournalError::BadCrc {
            stored: 1,
            computed: 2
        }
        .to_errno(),
        -74
    );
}

/// Every single-bit flip of a sealed block is rejected (crc32c detects all
/// of them; this checks that the crc covers every byte).
#[test]
fn every_bit_flip_is_caught() {
    let records: Vec<Record> = (0..90)
        .map(|i| extent(i % 3, u64::from(i) * 8, 40))
        .collect();
    let good = sealed(&records, BlockKind::Journal, 11, 4);
    let mut flipped = good.clone();
    for bit in 0..JBLOCK_SIZE * 8 {
        flipped[bit / 8] ^= 1 << (bit % 8);
        assert!(
            decode_block(&flipped[..], TAG).is_err(),
            "bit {bit} not caught"
        );
        flipped[bit / 8] ^= 1 << (bit % 8);
    }
    assert!(decode_block(&flipped[..], TAG).is_ok());
}

fn header(kind: BlockKind, seq: u64, tail: u64) -> Option<BlockHeader> {
    Some(BlockHeader {
        kind,
        seq,
        tail,
        used: 0,
        nrecords: 0,
        csum: 0,
    })
}

#[test]
fn replay_plans() {
    let j = BlockKind::Journal;
    // Empty.
    assert_eq!(plan_replay(4, |_| None), Ok(None));
    // Blocks 1..=3 of a ring of 4, tail 1.
    let plan = plan_replay(4, |i| {
        (1..=3).contains(&i).then(|| header(j, i, 1)).flatten()
    });
    assert_eq!(
        plan,
        Ok(Some(ReplayPlan {
            tail: 1,
            end: 4,
            newest: 3
        }))
    );
    // Wrapped: seqs 5..=7 at indices 1..=3, tail 5, a stale seq 4 at 0
    // before the tail.
    let plan = plan_replay(4, |i| match i {
        0 => header(j, 4, 1),
        i => header(j, i + 4, 5),
    });
    assert_eq!(
        plan,
        Ok(Some(ReplayPlan {
            tail: 5,
            end: 8,
            newest: 7
        }))
    );
    // A gap: 2 torn, 3 valid: only 1 replays.
    let plan = plan_replay(4, |i| match i {
        1 => header(j, 1, 1),
        3 => header(j, 3, 1),
        _ => None,
    });
    assert_eq!(
        plan,
        Ok(Some(ReplayPlan {
            tail: 1,
            end: 2,
            newest: 3
        }))
    );
    // Block 1 of a new journal lost, 2 written: nothing to apply, but
    // the writer must go past 2.
    assert_eq!(
        plan_replay(4, |i| (i == 2).then(|| header(j, 2, 1)).flatten()),
        Ok(Some(ReplayPlan {
            tail: 1,
            end: 1,
            newest: 2
        }))
    );
    // The tail's block is missing.
    assert_eq!(
        plan_replay(4, |i| (i == 3).then(|| header(j, 3, 2)).flatten()),
        Err(JournalError::MissingTail { tail: 2, newest: 3 })
    );
    // A block at the wrong index, or a checkpoint block, is not the ring's.
    assert_eq!(
        plan_replay(4, |i| (i == 2).then(|| header(j, 3, 3)).flatten()),
        Ok(None)
    );
    assert_eq!(
        plan_replay(4, |i| (i == 3)
            .then(|| header(BlockKind::Checkpoint, 3, 3))
            .flatten()),
        Ok(None)
    );
}

#[test]
fn cached_records_refuse_fields_that_do_not_fit() {
    let cached = |dev, sectors, offset, bucket| Record::Cached {
        dev,
        sector: u64::MAX,
        sectors,
        offset,
        bucket,
    };
    let max = u64::from(u32::MAX);
    let ok = cached(0xffff, 0xffff, 0xffff, max);
    let mut b = [0u8; 24];
    assert_eq!(ok.encode(&mut b), Some(24));
    assert_eq!(Record::decode(&b), Ok((ok, 24)));
    for bad in [
        cached(0x10000, 1, 0, 0),
        cached(0, 0, 0, 0),
        cached(0, 0x10000, 0, 0),
        cached(0, 1, 0x10000, 0),
        cached(0, 1, 0, max + 1),
    ] {
        assert_eq!(bad.encode(&mut b), None, "{bad:?}");
    }
}

#[test]
fn journal_layout_splits_the_region() {
    assert_eq!(JournalLayout::new(7 * 8), None);
    let l = JournalLayout::new(8 * 8).unwrap();
    assert_eq!((l.ring_blocks, l.area_blocks), (4, 2));
    assert_eq!((l.area_start(0), l.area_start(1)), (4, 6));
    // 2 MiB: 512 blocks.
    let l = JournalLayout::new(4096).unwrap();
    assert_eq!((l.ring_blocks, l.area_blocks), (64, 224));
    assert_eq!(l.area_at(64 + 224), Some(1));
    assert_eq!(l.area_at(65), None);
    // 128 MiB: the ring stops at 1024 blocks.
    let l = JournalLayout::new(128 << 11).unwrap();
    assert_eq!(l.ring_blocks, MAX_RING_BLOCKS);
    assert!(l.area_start(1) + l.area_blocks <= 32768);
}

#[test]
fn a_block_whose_write_failed_is_taken_again() {
    let mut r = JournalRing::new(8, None).unwrap();
    assert_eq!(r.take(), Some((1, 1)));
    r.written(1);
    assert_eq!(r.take(), Some((2, 2)));
    // Not the last taken, or durable: ignored.
    r.untake(1);
    r.untake(3);
    assert_eq!(r.next_seq(), 3);
    r.untake(2);
    assert_eq!(r.take(), Some((2, 2)), "the same block again");
    r.written(2);
    r.untake(2);
    assert_eq!(r.next_seq(), 3, "a durable block stays");
}

#[test]
fn ring_keeps_room_for_a_checkpoint() {
    let mut r = JournalRing::new(3, None).unwrap();
    assert_eq!(r.take(), Some((1, 1)));
    assert_eq!(r.take(), Some((2, 2)));
    assert_eq!(r.take(), None, "the last block is the checkpoint's");
    r.written(1);
    r.written(2);
    assert_eq!(r.take_checkpoint(), Some((3, 0)));
    r.checkpointed(3);
    assert_eq!(r.tail(), 1, "not durable yet");
    r.written(3);
    r.checkpointed(3);
    assert_eq!((r.tail(), r.room()), (3, 2));
    assert_eq!(r.take(), Some((4, 1)));
    // After a replay: past every block seen, checkpoint first.
    let mut r = JournalRing::new(
        4,
        Some(ReplayPlan {
            tail: 2,
            end: 3,
            newest: 4,
        }),
    )
    .unwrap();
    assert!(r.recovering());
    assert_eq!(r.take(), None);
    assert_eq!(r.take_checkpoint(), Some((5, 1)));
    r.written(5);
    r.checkpointed(5);
    assert!(!r.recovering());
    assert_eq!(r.take(), Some((6, 2)));
    // A replay that reached the newest block left no gap: the writer goes
    // on after it, no checkpoint first.
    let mut r = JournalRing::new(
        8,
        Some(ReplayPlan {
            tail: 2,
            end: 5,
            newest: 4,
        }),
    )
    .unwrap();
    assert!(!r.recovering());
    assert_eq!(r.take(), Some((5, 5)));
    assert_eq!(
        JournalRing::new(
            4,
            Some(ReplayPlan {
                tail: 1,
                end: 2,
                newest: 5
            })
        ),
        None
    );
}

// ---- torn metadata writes against a model ----

/// The index the records describe (a model of the module's).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Index {
    extents: BTreeMap<(u32, u64), Record>,
    gens: BTreeMap<u64, u32>,
    dirty: BTreeSet<(u32, u64)>,
}

impl Index {
    fn apply(&mut self, r: &Record) {
        match *r {
            Record::Extent { dev, sector, .. } => {
                self.extents.insert((dev, sector), *r);
            }
            Record::Invalidate {
                dev,
                sector,
                sectors,
            } => {
                let end = sector + u64::from(sectors);
                self.extents
                    .retain(|&(d, s), _| d != dev || s < sector || s >= end);
            }
            Record::Bucket { bucket, gen } => {
                self.gens.insert(bucket, gen);
                self.extents
                    .retain(|_, e| !matches!(e, Record::Extent { bucket: b, .. } if *b == bucket));
            }
            Record::Dirty { dev, region } => {
                self.dirty.insert((dev, region));
            }
            Record::Clean { dev } => self.dirty.retain(|&(d, _)| d != dev),
            Record::Checkpoint { .. }
            | Record::Device { .. }
            | Record::Cached { .. }
            | Record::Sums { .. } => {}
        }
    }

    /// The records of a checkpoint of the index.
    fn snapshot(&self) -> Vec<Record> {
        let gens = self
            .gens
            .iter()
            .map(|(&bucket, &gen)| Record::Bucket { bucket, gen });
        let dirty = self
            .dirty
            .iter()
            .map(|&(dev, region)| Record::Dirty { dev, region });
        gens.chain(dirty)
            .chain(self.extents.values().copied())
            .collect()
    }
}

const RING: u64 = 8;
const AREA_BLOCKS: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// Nothing of the write reaches the disk.
    Lost,
    /// Its first half does (a torn write).
    Torn,
    /// All of it does, but the machine dies before the acknowledgement.
    Unacknowledged,
}

/// A disk of a journal ring and two checkpoint areas that dies at its
/// `fail_at`-th write.
struct Disk {
    ring: Vec<Box<[u8; JBLOCK_SIZE]>>,
    areas: [Vec<Box<[u8; JBLOCK_SIZE]>>; 2],
    writes: u64,
    fail_at: u64,
    fault: Fault,
    dead: bool,
}

enum Place {
    Ring(u64),
    Area(usize, usize),
}

impl Disk {
    fn new(fail_at: u64, fault: Fault) -> Disk {
        let blank = || Box::new([0u8; JBLOCK_SIZE]);
        Disk {
            ring: (0..RING).map(|_| blank()).collect(),
            areas: [
                (0..AREA_BLOCKS).map(|_| blank()).collect(),
                (0..AREA_BLOCKS).map(|_| blank()).collect(),
            ],
            writes: 0,
            fail_at,
            fault,
            dead: false,
        }
    }

    /// Writes `data` at `place`; `Err` when the disk dies on this write
    /// (what reaches it depends on the fault) or is dead.
    fn write(&mut self, place: Place, data: &[u8; JBLOCK_SIZE]) -> Result<(), ()> {
        if self.dead {
            return Err(());
        }
        let n = self.writes;
        self.writes += 1;
        let target = match place {
            Place::Ring(i) => &mut self.ring[i as usize],
            Place::Area(a, i) => &mut self.areas[a][i],
        };
        if n != self.fail_at {
            target.copy_from_slice(data);
            return Ok(());
        }
        self.dead = true;
        match self.fault {
            Fault::Lost => {}
            Fault::Torn => target[..JBLOCK_SIZE / 2].copy_from_slice(&data[..JBLOCK_SIZE / 2]),
            Fault::Unacknowledged => target.copy_from_slice(data),
        }
        Err(())
    }

    /// Registration: the index the disk holds, and the replay plan.
    fn replay(&self) -> Result<(Index, Option<ReplayPlan>), JournalError> {
        let at = |i: u64| decode_block(&self.ring[i as usize][..], TAG).ok();
        let Some(plan) = plan_replay(RING, at)? else {
            return Ok((Index::default(), None));
        };
        let mut index = Index::default();
        for seq in plan.tail..plan.end {
            let buf = &self.ring[(seq % RING) as usize];
            let h = decode_block(&buf[..], TAG)?;
            for (i, r) in records(&buf[..], &h).enumerate() {
                match r {
                    Record::Checkpoint {
                        blocks,
                        start,
                        records: count,
                        csum,
                    } if i == 0 && seq == plan.tail => {
                        index = self.load_checkpoint(seq, blocks, start, count, csum)?;
                    }
                    r => index.apply(&r),
                }
            }
        }
        Ok((index, Some(plan)))
    }

    fn load_checkpoint(
        &self,
        seq: u64,
        blocks: u32,
        area: u64,
        count: u64,
        csum: u32,
    ) -> Result<Index, JournalError> {
        let bad = JournalError::BadCheckpoint { index: 0 };
        let area = self.areas.get(area as usize).ok_or(bad)?;
        let mut index = Index::default();
        let (mut csums, mut n) = (Vec::new(), 0u64);
        for i in 0..blocks as usize {
            let buf = area.get(i).ok_or(bad)?;
            let h = decode_block(&buf[..], TAG)?;
            check_checkpoint_block(&h, seq, i as u64)?;
            csums.push(h.csum);
            for r in records(&buf[..], &h) {
                index.apply(&r);
                n += 1;
            }
        }
        if n != count || checkpoint_csum(csums.into_iter()) != csum {
            return Err(bad);
        }
        Ok(index)
    }
}

/// The writer: journals a workload's records through a [`JournalRing`],
/// two blocks at a time (written in a random order, as concurrent bios
/// complete), and checkpoints now and then.
struct Writer {
    ring: JournalRing,
    /// The index as the acknowledged records make it.
    acked: Index,
    /// The index with the block whose write died, if it was a journal
    /// block (its records may or may not be on disk).
    in_flight: Vec<Index>,
    area: usize,
    rng: u64,
}

impl Writer {
    fn rand(&mut self, n: u64) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % n
    }

    /// The next operation's records.
    fn op(&mut self) -> Vec<Record> {
        let dev = self.rand(2) as u32;
        let sector = self.rand(64) * 8;
        match self.rand(10) {
            0..=4 => vec![extent(dev, sector, 40 + self.rand(8))],
            5..=6 => vec![Record::Invalidate {
                dev,
                sector,
                sectors: 8 * (1 + self.rand(4) as u32),
            }],
            7 => {
                let bucket = 40 + self.rand(8);
                let gen = self.acked.gens.get(&bucket).copied().unwrap_or(0) + 1;
                vec![Record::Bucket { bucket, gen }]
            }
            8 => vec![Record::Dirty {
                dev,
                region: self.rand(4),
            }],
            _ => vec![Record::Clean { dev }],
        }
    }

    /// Journals `records` in blocks of at most `per_block` records, up to
    /// two blocks written at once; acknowledges them when both are on
    /// disk.
    fn commit(&mut self, disk: &mut Disk, records: &[Record], per_block: usize) -> Result<(), ()> {
        for batch in records.chunks(per_block * 2) {
            // Room for the batch and for a checkpoint after it.
            let needed = batch.len().div_ceil(per_block) as u64;
            if self.ring.room() < needed + 1 {
                self.checkpoint(disk)?;
            }
            let mut blocks = Vec::new();
            let mut after = self.acked.clone();
            for chunk in batch.chunks(per_block) {
                let (seq, index) = self.ring.take().expect("room after a checkpoint");
                let buf = sealed(chunk, BlockKind::Journal, seq, self.ring.tail());
                chunk.iter().for_each(|r| after.apply(r));
                blocks.push((seq, index, buf, after.clone()));
            }
            if blocks.len() == 2 && self.rand(2) == 0 {
                blocks.swap(0, 1);
            }
            for (_, index, buf, state) in &blocks {
                self.in_flight.push(state.clone());
                disk.write(Place::Ring(*index), buf)?;
            }
            self.in_flight.clear();
            blocks.sort_by_key(|b| b.0);
            for (seq, ..) in &blocks {
                self.ring.written(*seq);
            }
            self.acked = after;
        }
        Ok(())
    }

    /// Writes a checkpoint of the acknowledged index into the area not in
    /// use, then the journal block that names it; the tail moves there.
    fn checkpoint(&mut self, disk: &mut Disk) -> Result<(), ()> {
        let area = 1 - self.area;
        let seq = self.ring.next_seq();
        let snapshot = self.acked.snapshot();
        let mut csums = Vec::new();
        let chunks: Vec<&[Record]> = snapshot.chunks(60).collect();
        assert!(chunks.len() <= AREA_BLOCKS);
        for (i, chunk) in chunks.iter().enumerate() {
            let mut buf = Box::new([0u8; JBLOCK_SIZE]);
            let mut b = BlockBuilder::new(&mut buf);
            for r in *chunk {
                assert!(b.push(r));
            }
            csums.push(b.seal(BlockKind::Checkpoint, seq, i as u64, TAG));
            disk.write(Place::Area(area, i), &buf)?;
        }
        let (cseq, index) = self.ring.take_checkpoint().expect("room for a checkpoint");
        assert_eq!(cseq, seq);
        let record = Record::Checkpoint {
            blocks: chunks.len() as u32,
            start: area as u64,
            records: snapshot.len() as u64,
            csum: checkpoint_csum(csums.into_iter()),
        };
        let buf = sealed(&[record], BlockKind::Journal, seq, seq);
        disk.write(Place::Ring(index), &buf)?;
        self.ring.written(seq);
        self.ring.checkpointed(seq);
        self.area = area;
        Ok(())
    }

    /// Runs `ops` operations (checkpointing every 25) until the disk dies.
    fn run(&mut self, disk: &mut Disk, ops: usize) -> Result<(), ()> {
        for i in 0..ops {
            let mut records = self.op();
            if i % 7 == 0 {
                records.extend(self.op());
                records.extend(self.op());
            }
            self.commit(disk, &records, 2)?;
            if i % 25 == 24 {
                self.checkpoint(disk)?;
            }
        }
        Ok(())
    }
}

/// After a crash: the replayed index is the acknowledged one, or the one
/// with the records of the write that died (if it reached the disk).
fn check_replay(disk: &Disk, w: &Writer, what: &str) -> (Index, Option<ReplayPlan>) {
    let (index, plan) = disk
        .replay()
        .unwrap_or_else(|e| panic!("{what}: replay refused: {e}"));
    let ok = index == w.acked || w.in_flight.contains(&index);
    assert!(
        ok,
        "{what}: replayed index is neither the acknowledged nor an in-flight one"
    );
    (index, plan)
}

#[test]
fn torn_metadata_writes() {
    for fault in [Fault::Lost, Fault::Torn, Fault::Unacknowledged] {
        for seed in [1u64, 0x9e37_79b9] {
            let mut fail_at = 0;
            loop {
                let mut disk = Disk::new(fail_at, fault);
                let mut w = Writer {
                    ring: JournalRing::new(RING, None).unwrap(),
                    acked: Index::default(),
                    in_flight: Vec::new(),
                    area: 0,
                    rng: seed,
                };
                let what = format!("{fault:?}, seed {seed:#x}, write {fail_at}");
                if w.run(&mut disk, 120).is_ok() {
                    // No write failed: every point was tried.
                    assert!(fail_at > 100, "{what}: too few writes");
                    assert_eq!(disk.replay().unwrap().0, w.acked);
                    break;
                }
                let (index, plan) = check_replay(&disk, &w, &what);
                // Recover and crash again, a few writes later: what the
                // first crash left after a gap must not come back.
                let again = (fail_at * 7 + seed) % 13;
                let mut disk2 = Disk {
                    writes: 0,
                    fail_at: again,
                    dead: false,
                    ..disk
                };
                let mut w2 = Writer {
                    ring: JournalRing::new(RING, plan).expect("ring after replay"),
                    acked: index,
                    in_flight: Vec::new(),
                    area: plan.map_or(0, |p| area_of(&disk2, p.tail)),
                    rng: seed ^ fail_at,
                };
                let res = if w2.ring.recovering() {
                    w2.checkpoint(&mut disk2)
                        .and_then(|()| w2.run(&mut disk2, 40))
                } else {
                    w2.run(&mut disk2, 40)
                };
                let what2 = format!("{what}, then write {again} after recovery");
                match res {
                    Ok(()) => assert_eq!(disk2.replay().unwrap().0, w2.acked, "{what2}"),
                    Err(()) => {
                        check_replay(&disk2, &w2, &what2);
                    }
                }
                fail_at += 1;
            }
        }
    }
}

/// The checkpoint area named by the block `tail` (0 if it names none).
fn area_of(disk: &Disk, tail: u64) -> usize {
    let buf = &disk.ring[(tail % RING) as usize];
    let Ok(h) = decode_block(&buf[..], TAG) else {
        return 0;
    };
    match records(&buf[..], &h).next() {
        Some(Record::Checkpoint { start, .. }) => start as usize,
        _ => 0,
    }
}

proptest! {
    /// Whatever a journal block's bytes are (random, or a valid block with
    /// bytes overwritten and its crc made right again, so that the checks
    /// past the crc see them), decoding returns a header or a reason and
    /// never panics; a header it returns describes records that all
    /// decode.
    #[test]
    fn any_bytes_decode_or_are_refused(
        noise in prop::collection::vec(any::<u8>(), JBLOCK_SIZE),
        edits in prop::collection::vec((0..JBLOCK_SIZE, any::<u8>()), 1..8),
        reseal in any::<bool>(),
    ) {
        let _ = decode_block(&noise, TAG);
        let records: Vec<Record> = (0..40).map(|i| extent(i % 2, u64::from(i) * 8, 40)).collect();
        let mut b = sealed(&records, BlockKind::Journal, 9, 2);
        for (at, v) in edits {
            b[at] = v;
        }
        if reseal {
            b[8..12].fill(0);
            let crc = crc32c(&b[..]);
            b[8..12].copy_from_slice(&crc.to_le_bytes());
        }
        if let Ok(h) = decode_block(&b[..], TAG) {
            prop_assert_eq!(records_of(&b, &h).len(), usize::from(h.nrecords));
        }
    }
}
