// SPDX-License-Identifier: GPL-2.0

//! The persistent index (`persist`): a checkpoint at a clean close restores
//! the same index; a crash keeps what the write-intent map and the bucket
//! records do not drop, and a session that gave the map up restores
//! nothing; devices are remapped or dropped as the registration decides;
//! damaged blocks are refused; and the torn-metadata-write test: sessions
//! of fills, writes and evictions whose N-th metadata write fails (lost or
//! torn), for every N, reloaded after each failure and every restored
//! extent checked against a model of the data on the disks.

mod common;

use common::*;
use rkm_bcache::format::*;
use rkm_bcache::persist::*;
use rkm_bcache::sums::SumTable;
use rkm_bcache::*;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};

const TAG: u64 = 0x1234_5678_9abc_def0;
const U0: Uuid = Uuid([1; 16]);
const U1: Uuid = Uuid([2; 16]);
/// 256 blocks: a ring of 32, areas of 112.
const REGION_SECTORS: u64 = 256 * 8;
const NBUCKETS: usize = 64;
const BUCKET_SECTORS: u32 = 64;

/// Checksums are per sector here (blocks of one sector: every trim of the
/// tests is on a block boundary).
const BLOCK_SECTORS: u32 = 1;

type Sums = SumTable<Vec<AtomicU32>>;

/// A table of checksums, every slot `f(slot)`.
fn sums_with(f: impl Fn(usize) -> u32) -> Sums {
    let n = sums::table_len(NBUCKETS, BLOCK_SECTORS, BUCKET_SECTORS).unwrap();
    SumTable::new(
        (0..n).map(|i| AtomicU32::new(f(i))).collect(),
        BLOCK_SECTORS,
        BUCKET_SECTORS,
    )
    .unwrap()
}

/// The live cache's checksums: a distinct value per block.
fn live_sums() -> Sums {
    sums_with(|i| (i as u32).wrapping_mul(0x9e37_79b1) | 1)
}

/// The checksums of the blocks of extent `e`.
fn sums_of(t: &Sums, e: &Extent) -> Vec<u32> {
    t.slots(e.bucket, e.offset, u64::from(e.len))
        .unwrap()
        .iter()
        .map(|s| s.load(Ordering::Relaxed))
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// The failing write does not happen.
    Lost,
    /// The failing write reaches the disk half done.
    Torn,
}

/// The journal region of a simulated SSD, whose `fail_at`-th write fails.
#[derive(Clone)]
struct Disk {
    blocks: Vec<[u8; JBLOCK_SIZE]>,
    writes: usize,
    fail_at: usize,
    fault: Fault,
    dead: bool,
}

impl Disk {
    fn new(fail_at: usize, fault: Fault) -> Disk {
        Disk {
            blocks: vec![[0; JBLOCK_SIZE]; (REGION_SECTORS / 8) as usize],
            writes: 0,
            fail_at,
            fault,
            dead: false,
        }
    }

    fn write(&mut self, block: u64, buf: &[u8; JBLOCK_SIZE]) -> Result<(), ()> {
        if self.dead {
            return Err(());
        }
        let n = self.writes;
        self.writes += 1;
        let b = &mut self.blocks[block as usize];
        if n == self.fail_at {
            self.dead = true;
            if self.fault == Fault::Torn {
                b[..JBLOCK_SIZE / 2].copy_from_slice(&buf[..JBLOCK_SIZE / 2]);
            }
            return Err(());
        }
        *b = *buf;
        Ok(())
    }

    fn ring(&self, layout: &JournalLayout) -> Vec<u8> {
        self.blocks[..layout.ring_blocks as usize]
            .iter()
            .flat_map(|b| b.iter().copied())
            .collect()
    }
}

fn layout() -> JournalLayout {
    JournalLayout::new(REGION_SECTORS).unwrap()
}

/// A registered cache's persistence state.
struct Session {
    ring: JournalRing,
    area: u8,
}

/// Writes a journal block of `records` at the ring's next place.
fn journal(
    disk: &mut Disk,
    ring: &mut JournalRing,
    records: &[Record],
    checkpoint: bool,
) -> Result<(), ()> {
    let (seq, index) = if checkpoint {
        ring.take_checkpoint()
    } else {
        ring.take()
    }
    .expect("ring room");
    let mut buf = [0u8; JBLOCK_SIZE];
    let mut b = BlockBuilder::new(&mut buf);
    for r in records {
        assert!(b.push(r));
    }
    let tail = if checkpoint { seq } else { ring.tail() };
    b.seal(BlockKind::Journal, seq, tail, TAG);
    disk.write(index, &buf)?;
    ring.written(seq);
    if checkpoint {
        ring.checkpointed(seq);
    }
    Ok(())
}

/// Writes a checkpoint of `c` and the block that names it (`CLEAN` too).
fn close(
    disk: &mut Disk,
    s: &mut Session,
    c: &TestCache,
    owners: &[Option<Uuid>],
) -> Result<(), ()> {
    let l = layout();
    let mut buf = [0u8; JBLOCK_SIZE];
    let mut w = CheckpointWriter::new(
        &mut buf,
        s.ring.next_seq(),
        TAG,
        l.area_start(s.area),
        l.area_blocks,
    );
    let live = live_sums();
    assert!(write_checkpoint(
        c,
        &live,
        owners,
        &mut w,
        &mut |b, buf| disk.write(b, buf)
    )?);
    let cp = w.finish(&mut |b, buf| disk.write(b, buf))?;
    journal(disk, &mut s.ring, &[cp, SESSION_CLEAN], true)?;
    s.area = 1 - s.area;
    Ok(())
}

/// Opens a session: a checkpoint first if the ring recovers from a gap or
/// has too little room (as the module's `open_session`); nothing else is
/// written.
fn open(
    disk: &mut Disk,
    s: &mut Session,
    c: &mut TestCache,
    owners: &[Option<Uuid>],
) -> Result<(), ()> {
    if s.ring.recovering() || s.ring.room() < 3 {
        close(disk, s, c, owners)?;
        c.buckets.checkpointed();
    }
    Ok(())
}

/// The cache, the checksums and the counts that `scan`'s checkpoint and
/// journal on `disk` restore.
fn restore_disk(
    disk: &Disk,
    scan: &Scan,
    decide: &mut dyn FnMut(u32, Uuid) -> Option<DevId>,
) -> Result<(TestCache, Sums, Restored), LoadError> {
    let l = layout();
    let ring = disk.ring(&l);
    let mut r = Restore::new(
        StdAlloc,
        vec![BucketMeta::FREE; NBUCKETS],
        BUCKET_SECTORS,
        |_| (0, 0),
    )
    .unwrap();
    let mut read = |b: u64, buf: &mut [u8; JBLOCK_SIZE]| {
        *buf = disk.blocks[b as usize];
        Ok(())
    };
    let mut buf = [0u8; JBLOCK_SIZE];
    let region = RegionView {
        layout: &l,
        tag: TAG,
        ring: &ring,
    };
    let sums = sums_with(|_| 0);
    let done = restore(scan, &region, &mut read, &mut buf, &mut r, &sums, decide)?;
    Ok((r.finish(), sums, done))
}

/// What registration restores: the cache (empty if dirty or damaged), the
/// session to go on with, and whether it was dirty.
fn load(
    disk: &Disk,
    decide: &mut dyn FnMut(u32, Uuid) -> Option<DevId>,
) -> (TestCache, Session, Result<Scan, LoadError>) {
    let l = layout();
    let ring = disk.ring(&l);
    let fresh = || cache(NBUCKETS, BUCKET_SECTORS);
    let scan = match scan(&l, TAG, &ring) {
        Ok(s) => s,
        Err(e) => {
            let ring = restart_ring(&l, e.newest().unwrap()).unwrap();
            return (fresh(), Session { ring, area: 0 }, Err(e));
        }
    };
    let session = Session {
        ring: scan.ring(&l).expect("ring fits"),
        area: scan.next_area(&l),
    };
    if scan.dirty {
        return (fresh(), session, Ok(scan));
    }
    match restore_disk(disk, &scan, decide) {
        Ok((mut r, sums, done)) => {
            r.buckets.set_persistent(true);
            // Every restored extent has the checksums the live cache had.
            let live = live_sums();
            for (_, _, e) in current(&r) {
                assert_eq!(sums_of(&sums, &e), sums_of(&live, &e), "{e:?}");
            }
            assert_eq!(done.unsummed, 0);
            (r, session, Ok(scan))
        }
        Err(e) => {
            let ring = restart_ring(&l, scan.plan.unwrap().newest).unwrap();
            (fresh(), Session { ring, area: 0 }, Err(e))
        }
    }
}

fn same(d: u32, _: Uuid) -> Option<DevId> {
    Some(d as DevId)
}

/// The current extents of a cache: (device, sector, extent).
type Snapshot = Vec<(DevId, u64, Extent)>;

/// The current extents.
fn current(c: &TestCache) -> Snapshot {
    let mut v = Vec::new();
    assert_eq!(
        c.index
            .current_from(0, usize::MAX, &c.buckets, |d, s, e| v.push((d, s, e))),
        None
    );
    v
}

/// A write of `len` sectors, completed at once (no cache copy).
fn write(c: &mut TestCache, dev: DevId, sector: u64, len: u64) {
    let (plan, mut more) = c.begin_write(dev, sector, len, false, &none);
    while let Some(from) = more {
        more = c.invalidate_more(dev, from, sector + len);
    }
    c.finish_write(dev, sector, &plan, true);
}

fn busy_cache() -> TestCache {
    let mut c = cache(NBUCKETS, BUCKET_SECTORS);
    for i in 0..300u64 {
        fill(&mut c, (i % 2) as DevId, i * 16, 8);
    }
    // Overwrites and evictions: trimmed extents, bumped generations.
    write(&mut c, 0, 4, 8);
    c.buckets.request_eviction();
    c.buckets.refill(&none);
    c.index.check().unwrap();
    c.buckets.check().unwrap();
    c
}

fn new_session() -> Session {
    Session {
        ring: JournalRing::new(layout().ring_blocks, None).unwrap(),
        area: 0,
    }
}

#[test]
fn a_clean_close_restores_the_same_index() {
    let mut c = busy_cache();
    let owners = [Some(U0), Some(U1)];
    let mut disk = Disk::new(usize::MAX, Fault::Lost);
    let mut s = new_session();
    open(&mut disk, &mut s, &mut c, &owners).unwrap();
    close(&mut disk, &mut s, &c, &owners).unwrap();
    let (r, _, scan) = load(&disk, &mut same);
    let scan = scan.unwrap();
    assert!(!scan.dirty);
    assert!(scan.checkpoint.is_some());
    assert!(!current(&c).is_empty());
    assert_eq!(current(&r), current(&c));
    r.index.check().unwrap();
    r.buckets.check().unwrap();
    // Every bucket keeps its generation.
    for b in 0..NBUCKETS as u32 {
        if current(&c).iter().any(|(_, _, e)| e.bucket == b) {
            assert_eq!(
                r.buckets.meta(b).unwrap().gen,
                c.buckets.meta(b).unwrap().gen
            );
        }
    }
}

#[test]
fn a_session_that_gave_the_map_up_restores_nothing() {
    let mut c = busy_cache();
    let owners = [Some(U0), Some(U1)];
    let mut disk = Disk::new(usize::MAX, Fault::Lost);
    let mut s = new_session();
    open(&mut disk, &mut s, &mut c, &owners).unwrap();
    close(&mut disk, &mut s, &c, &owners).unwrap();
    // The next session's ring filled, or its cache failed: every device
    // may have been written without a record (a crash follows).
    journal(&mut disk, &mut s.ring, &[ALL_DIRTY], false).unwrap();
    let (r, mut s2, scan) = load(&disk, &mut same);
    assert!(scan.unwrap().dirty);
    assert!(current(&r).is_empty());
    // The recovered session closes cleanly: warm again.
    open(&mut disk, &mut s2, &mut c, &owners).unwrap();
    close(&mut disk, &mut s2, &c, &owners).unwrap();
    let (r, ..) = load(&disk, &mut same);
    assert_eq!(current(&r), current(&c));
}

/// A session in the model: the cache, its journal, what it recorded since
/// the checkpoint at the tail, and the data on the disks (each backing
/// sector's version, each SSD sector's (device, sector, version)).
struct Sim {
    c: TestCache,
    s: Session,
    owners: Vec<Option<Uuid>>,
    /// The devices of the checkpoint at the tail.
    ckpt_devs: Vec<Option<Uuid>>,
    /// Regions whose `DIRTY` is durable since the tail's checkpoint.
    recorded: HashSet<(DevId, u64)>,
    /// `ALL_DIRTY` is durable since the tail's checkpoint.
    all_dirty: bool,
    ssd: HashMap<(u32, u32), (DevId, u64, u32)>,
    latest: HashMap<(DevId, u64), u32>,
    /// Writes acknowledged (each after its records were durable).
    acked: u64,
}

impl Sim {
    fn new(c: TestCache, s: Session, owners: &[Option<Uuid>]) -> Sim {
        Sim {
            c,
            s,
            owners: owners.to_vec(),
            ckpt_devs: Vec::new(),
            recorded: HashSet::new(),
            all_dirty: false,
            ssd: HashMap::new(),
            latest: HashMap::new(),
            acked: 0,
        }
    }

    /// The same disks after a crash, with the cache `c` and ring `s` that
    /// registration restored.
    fn reborn(&self, c: TestCache, s: Session) -> Sim {
        Sim {
            c,
            s,
            owners: self.owners.clone(),
            ckpt_devs: self.ckpt_devs.clone(),
            recorded: HashSet::new(),
            all_dirty: false,
            ssd: self.ssd.clone(),
            latest: self.latest.clone(),
            acked: self.acked,
        }
    }

    /// One block of records (a `DIRTY` of every device instead if the
    /// ring keeps only the checkpoint's room after it), as the module's
    /// journal does.
    fn append(&mut self, disk: &mut Disk, records: &[Record]) -> Result<(), ()> {
        if self.all_dirty {
            return Ok(());
        }
        if self.s.ring.room() <= 2 {
            journal(disk, &mut self.s.ring, &[ALL_DIRTY], false)?;
            self.all_dirty = true;
            // Nothing is restored now: buckets need no record.
            self.c.buckets.set_persistent(false);
            let mut out = [(0, 0); 64];
            loop {
                let n = self.c.buckets.take_invalidated(&mut out);
                if n == 0 {
                    break;
                }
                self.c.buckets.durable(n as u32);
            }
            return Ok(());
        }
        journal(disk, &mut self.s.ring, records, false)
    }

    /// Journals the invalidated buckets' records; they may be reused then.
    fn flush_buckets(&mut self, disk: &mut Disk) -> Result<(), ()> {
        let mut out = [(0, 0); 200];
        while self.c.buckets.records_waiting() {
            let n = self.c.buckets.take_invalidated(&mut out);
            let recs: Vec<Record> = out[..n]
                .iter()
                .map(|&(b, gen)| Record::Bucket {
                    bucket: u64::from(b),
                    gen,
                })
                .collect();
            self.append(disk, &recs)?;
            self.c.buckets.durable(n as u32);
        }
        Ok(())
    }

    fn fill(&mut self, disk: &mut Disk, dev: DevId, sector: u64) -> Result<(), ()> {
        self.fill_len(disk, dev, sector, 8)
    }

    fn fill_len(&mut self, disk: &mut Disk, dev: DevId, sector: u64, len: u64) -> Result<(), ()> {
        if let ReadPlan::Fill { region, ticket, .. } = self.c.read(dev, sector, len, true, &none) {
            for i in 0..region.len {
                let s = sector + u64::from(i);
                let v = self.latest.get(&(dev, s)).copied().unwrap_or(0);
                self.ssd
                    .insert((region.bucket, region.offset + i), (dev, s, v));
            }
            self.c.finish_fill(dev, sector, &region, ticket, true);
        }
        self.flush_buckets(disk)
    }

    /// A write of 8 sectors, acknowledged once its region's `DIRTY` is
    /// durable (a device with extents in the checkpoint only).
    fn write(&mut self, disk: &mut Disk, dev: DevId, sector: u64) -> Result<(), ()> {
        let region = dirty_region(sector);
        let in_ckpt = self
            .ckpt_devs
            .get(usize::from(dev))
            .is_some_and(|o| o.is_some());
        if in_ckpt && !self.all_dirty && !self.recorded.contains(&(dev, region)) {
            self.append(
                disk,
                &[Record::Dirty {
                    dev: u32::from(dev),
                    region,
                }],
            )?;
            self.recorded.insert((dev, region));
        }
        for i in 0..8 {
            *self.latest.entry((dev, sector + i)).or_insert(0) += 1;
        }
        write(&mut self.c, dev, sector, 8);
        self.acked += 1;
        Ok(())
    }

    fn evict(&mut self, disk: &mut Disk) -> Result<(), ()> {
        self.c.buckets.request_eviction();
        self.c.buckets.refill(&none);
        self.flush_buckets(disk)
    }

    /// A clean unregister: the checkpoint; the session's records are behind
    /// the tail now.
    fn close(&mut self, disk: &mut Disk) -> Result<(), ()> {
        close(disk, &mut self.s, &self.c, &self.owners)?;
        self.ckpt_devs = self.owners.clone();
        self.recorded.clear();
        self.all_dirty = false;
        self.c.buckets.set_persistent(true);
        self.c.buckets.checkpointed();
        Ok(())
    }

    /// Checks that every extent of `r` (a restored cache) holds the data
    /// its sectors have on the backing device now: nothing older than an
    /// acknowledged write.
    fn check_current(&self, r: &TestCache, what: &str) {
        for (dev, sector, e) in current(r) {
            for i in 0..e.len {
                let s = sector + u64::from(i);
                let want = (dev, s, self.latest.get(&(dev, s)).copied().unwrap_or(0));
                assert_eq!(
                    self.ssd.get(&(e.bucket, e.offset + i)),
                    Some(&want),
                    "{what}: extent {e:?} of device {dev} at {sector}, sector {i}"
                );
            }
        }
    }
}

/// A cache of two devices and its disk, closed cleanly: fills of 32
/// sectors at every 2048 sectors of device 0, then of device 1 (8 extents
/// in each region of the write-intent map, 12 buckets each).
fn spread_and_closed() -> (Disk, Sim) {
    let owners = [Some(U0), Some(U1)];
    let mut disk = Disk::new(usize::MAX, Fault::Lost);
    let mut sim = Sim::new(cache(NBUCKETS, BUCKET_SECTORS), new_session(), &owners);
    for i in 0..48u64 {
        sim.fill_len(&mut disk, (i / 24) as DevId, i % 24 * 2048, 32)
            .unwrap();
    }
    sim.close(&mut disk).unwrap();
    (disk, sim)
}

#[test]
fn a_crash_keeps_what_was_not_written() {
    let (mut disk, sim) = spread_and_closed();
    let before = current(&sim.c);
    assert_eq!(before.len(), 48);
    // A second session, restored from the checkpoint.
    let (r, s, _) = load(&disk, &mut same);
    assert_eq!(current(&r), before);
    let mut sim = sim.reborn(r, s);
    let w0 = sim.s.ring.next_seq();
    // Writes into two regions of device 0 (one of them twice) and one of
    // device 1: three `DIRTY` blocks, the second write of a region none.
    sim.write(&mut disk, 0, 16384 + 100).unwrap();
    sim.write(&mut disk, 0, 16384 + 9000).unwrap();
    sim.write(&mut disk, 0, 3 * 16384).unwrap();
    sim.write(&mut disk, 1, 4096).unwrap();
    assert_eq!(sim.s.ring.next_seq() - w0, 3);
    // Evictions: buckets of the checkpoint reused only after their record.
    sim.evict(&mut disk).unwrap();
    // Fills after the checkpoint go into fresh or recorded buckets.
    for i in 0..20u64 {
        sim.fill(&mut disk, 1, 200_000 + i * 64).unwrap();
    }
    let reused: HashSet<u32> = (0..NBUCKETS as u32)
        .filter(|&b| sim.c.buckets.meta(b).unwrap().gen != 0)
        .collect();
    assert!(!reused.is_empty() && reused.len() < 16, "{reused:?}");
    // A crash: the checkpoint, less the regions written and the buckets
    // recorded; the fills since are lost.
    let (r, _, scan) = load(&disk, &mut same);
    let scan = scan.unwrap();
    assert!(!scan.dirty);
    assert_eq!(scan.regions, 3);
    assert!(scan.records > 0);
    let want: Snapshot = before
        .iter()
        .copied()
        .filter(|&(d, sector, e)| {
            let r = dirty_region(sector);
            let written = (d == 0 && (r == 1 || r == 3)) || (d == 1 && r == 0);
            !written && !reused.contains(&e.bucket)
        })
        .collect();
    assert!(want.len() >= 20, "{} kept", want.len());
    assert_eq!(current(&r), want);
    let (_, _, done) = restore_disk(&disk, &scan, &mut same).unwrap();
    assert_eq!(
        done.extents,
        want.len() as u64,
        "the count of restored extents"
    );
    r.index.check().unwrap();
    r.buckets.check().unwrap();
    sim.check_current(&r, "after the crash");
}

#[test]
fn buckets_of_dropped_devices_are_reused_only_after_their_record() {
    let (mut disk, sim) = spread_and_closed();
    // Device 1 is dropped by this registration, not by the next one.
    let (r, s, _) = load(&disk, &mut |d, _| (d == 0).then_some(0));
    let marked = r.buckets.pending();
    assert!(marked > 0, "device 1's buckets wait for their records");
    let mut sim = sim.reborn(r, s);
    // The cache fills up again: every bucket reused is recorded first.
    for i in 0..200u64 {
        sim.fill(&mut disk, 0, (1 << 20) + i * 64).unwrap();
    }
    let (r, ..) = load(&disk, &mut same);
    assert!(current(&r).iter().all(|x| x.0 == 0 || x.1 < 1 << 20));
    sim.check_current(&r, "device 1 kept again");
}

#[test]
fn devices_are_remapped_or_dropped_as_registration_decides() {
    let mut c = busy_cache();
    let owners = [Some(U0), None];
    let mut disk = Disk::new(usize::MAX, Fault::Lost);
    let mut s = new_session();
    open(&mut disk, &mut s, &mut c, &owners).unwrap();
    close(&mut disk, &mut s, &c, &owners).unwrap();
    let dev0: Vec<_> = current(&c).into_iter().filter(|x| x.0 == 0).collect();
    // Device 1 has no owner: its extents were not kept.
    let mut seen = Vec::new();
    let (r, ..) = load(&disk, &mut |d, u| {
        seen.push((d, u));
        (u == U0).then_some(7)
    });
    assert_eq!(seen, vec![(0, U0)]);
    let moved: Vec<_> = dev0.iter().map(|&(_, s, e)| (7, s, e)).collect();
    assert_eq!(current(&r), moved);
    // Dropped: nothing restored, and the buckets are free again.
    let (r, ..) = load(&disk, &mut |_, _| None);
    assert!(current(&r).is_empty());
    assert_eq!(r.buckets.in_use(), 0);
}

#[test]
fn damaged_checkpoints_and_journals_restore_nothing() {
    let mut c = busy_cache();
    let owners = [Some(U0), Some(U1)];
    let mut disk = Disk::new(usize::MAX, Fault::Lost);
    let mut s = new_session();
    open(&mut disk, &mut s, &mut c, &owners).unwrap();
    close(&mut disk, &mut s, &c, &owners).unwrap();
    let l = layout();
    let (_, _, scan) = load(&disk, &mut same);
    let cp = scan.unwrap().checkpoint.unwrap();
    assert!(cp.blocks >= 2, "a checkpoint of several blocks");
    // A bit flipped anywhere in a checkpoint block: refused, restarted empty.
    for blk in 0..cp.blocks as u64 {
        for bit in [0usize, 300 * 8 + 3, JBLOCK_SIZE * 8 - 1] {
            let mut d = disk.clone();
            d.blocks[(cp.start + blk) as usize][bit / 8] ^= 1 << (bit % 8);
            let (mut r, mut s2, res) = load(&d, &mut same);
            assert!(res.is_err(), "block {blk} bit {bit}");
            assert!(current(&r).is_empty());
            // The restarted ring goes on past every block seen.
            open(&mut d, &mut s2, &mut r, &owners).unwrap();
            journal(&mut d, &mut s2.ring, &[ALL_DIRTY], false).unwrap();
            let (r2, _, res2) = load(&d, &mut same);
            assert!(res2.unwrap().dirty);
            assert!(current(&r2).is_empty());
        }
    }
    // The tail's journal block flipped: the journal before it (the open
    // block, no checkpoint) is what is left, or nothing.
    let mut d = disk.clone();
    d.blocks[(cp.seq % l.ring_blocks) as usize][100] ^= 4;
    let (r, ..) = load(&d, &mut same);
    assert!(current(&r).is_empty());
}

/// Sessions over `sim` until a metadata write fails: each opens, fills
/// (4 regions of 2 devices), writes (2 regions of one) and evicts, closes (or, one in three, stops without closing: a
/// crash, then registration). Returns the first failure, if any.
fn run_sessions(disk: &mut Disk, sim: &mut Sim, seed: u64) -> Result<(), ()> {
    let mut rng = Rng(seed | 1);
    for round in 0..4 {
        if sim.s.ring.recovering() || sim.s.ring.room() < 3 {
            sim.close(disk)?;
        }
        for _ in 0..300 {
            let dev = (rng.next() % 2) as DevId;
            let sector = rng.next() % 512 * 128;
            match rng.next() % 64 {
                // Writes to half of device 0's regions (the other regions
                // stay warm across a crash, but for reused buckets).
                0..=15 => sim.write(disk, 0, sector % 32768)?,
                16 => sim.evict(disk)?,
                _ => sim.fill(disk, dev, sector)?,
            }
        }
        if round % 3 == 1 {
            // A crash: what registration restores goes on.
            let (r, s, _) = load(disk, &mut same);
            sim.check_current(&r, "a crash without a fault");
            *sim = sim.reborn(r, s);
            continue;
        }
        sim.close(disk)?;
    }
    Ok(())
}

#[test]
fn torn_metadata_writes_never_restore_a_stale_index() {
    let owners = [Some(U0), Some(U1)];
    for fault in [Fault::Lost, Fault::Torn] {
        for seed in [3u64, 0xfeed] {
            let mut fail_at = 0;
            let mut warm = 0;
            loop {
                let what = format!("{fault:?}, seed {seed:#x}, write {fail_at}");
                let mut disk = Disk::new(fail_at, fault);
                let mut sim = Sim::new(cache(NBUCKETS, BUCKET_SECTORS), new_session(), &owners);
                let res = run_sessions(&mut disk, &mut sim, seed);
                let (r, s2, _) = load(&disk, &mut same);
                r.index.check().unwrap();
                r.buckets.check().unwrap();
                // Whatever was restored holds the data of the last
                // acknowledged writes.
                sim.check_current(&r, &what);
                warm += usize::from(!current(&r).is_empty());
                if res.is_ok() {
                    assert!(fail_at > 12, "{what}: too few writes");
                    assert_eq!(current(&r), current(&sim.c));
                    break;
                }
                // Recover, then sessions without faults: each crash and
                // the last clean close restore what they must.
                let mut disk2 = Disk {
                    writes: 0,
                    fail_at: usize::MAX,
                    dead: false,
                    ..disk.clone()
                };
                let mut sim2 = sim.reborn(r, s2);
                run_sessions(&mut disk2, &mut sim2, seed ^ 77).unwrap();
                let (r2, ..) = load(&disk2, &mut same);
                sim2.check_current(&r2, &format!("{what}: after recovery"));
                assert_eq!(current(&r2), current(&sim2.c), "{what}: after recovery");
                fail_at += 1;
            }
            // Crashes keep warm caches (the test restores something).
            assert!(warm >= fail_at / 3, "{warm} of {fail_at} restored an index");
        }
    }
}

/// A checkpoint written without checksums (a version before `data_csum`),
/// or whose last extent lost some of them: those extents are not restored,
/// and the index stays consistent.
#[test]
fn extents_without_all_their_checksums_are_dropped() {
    let mut c = busy_cache();
    let owners = [Some(U0), Some(U1)];
    let live = live_sums();
    let want = current(&c);
    assert!(want.len() > 10);
    // `keep(i, sums)`: how many of the SUMS records of extent i to write.
    for keep in [
        &|_: usize, _: usize| -> usize { 0 } as &dyn Fn(usize, usize) -> usize,
        &|i, n| if i % 3 == 1 { n - 1 } else { n },
    ] {
        let mut disk = Disk::new(usize::MAX, Fault::Lost);
        let mut s = new_session();
        open(&mut disk, &mut s, &mut c, &owners).unwrap();
        let l = layout();
        let mut buf = [0u8; JBLOCK_SIZE];
        let mut w = CheckpointWriter::new(
            &mut buf,
            s.ring.next_seq(),
            TAG,
            l.area_start(s.area),
            l.area_blocks,
        );
        let mut emit = |b, buf: &[u8; JBLOCK_SIZE]| disk.write(b, buf);
        let mut batch = [SESSION_CLEAN; 8];
        let mut cursor = Cursor::Devices(0);
        let mut extent = 0;
        let mut dropped = Vec::new();
        loop {
            let (n, next) = checkpoint_step(&c, &owners, cursor, &mut batch);
            for r in &batch[..n] {
                assert!(w.push(r, &mut emit).unwrap());
                let mut recs = Vec::new();
                extent_sums(r, &live, &mut |s| -> Result<bool, ()> {
                    recs.push(*s);
                    Ok(true)
                })
                .unwrap();
                if recs.is_empty() {
                    continue;
                }
                // Every extent of the busy cache needs one SUMS record.
                let k = keep(extent, recs.len());
                if k < recs.len() {
                    dropped.push(want[extent]);
                }
                for s in &recs[..k] {
                    assert!(w.push(s, &mut emit).unwrap());
                }
                extent += 1;
            }
            if next == Cursor::Done {
                break;
            }
            cursor = next;
        }
        assert_eq!(extent, want.len());
        let cp = w.finish(&mut emit).unwrap();
        journal(&mut disk, &mut s.ring, &[cp, SESSION_CLEAN], true).unwrap();
        let l = layout();
        let scan = scan(&l, TAG, &disk.ring(&l)).unwrap();
        let (r, sums, done) = restore_disk(&disk, &scan, &mut same).unwrap();
        r.index.check().unwrap();
        r.buckets.check().unwrap();
        let kept: Snapshot = want
            .iter()
            .copied()
            .filter(|x| !dropped.contains(x))
            .collect();
        assert!(!dropped.is_empty());
        assert_eq!(current(&r), kept);
        assert_eq!(done.unsummed, dropped.len() as u64);
        assert_eq!(done.extents, kept.len() as u64);
        for (_, _, e) in current(&r) {
            assert_eq!(sums_of(&sums, &e), sums_of(&live, &e));
        }
    }
}
