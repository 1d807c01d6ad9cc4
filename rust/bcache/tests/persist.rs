// SPDX-License-Identifier: GPL-2.0

//! The persistent index (`persist`): a checkpoint at a clean close restores
//! the same index; a session that did not close restores nothing; devices
//! are remapped or dropped as the registration decides; damaged blocks
//! are refused; and the torn-metadata-write test: sessions of fills and
//! writes whose N-th metadata write fails (lost or torn), for every N,
//! reloaded after each failure and checked against a model.

mod common;

use common::*;
use rkm_bcache::format::*;
use rkm_bcache::persist::*;
use rkm_bcache::sums::SumTable;
use rkm_bcache::*;
use std::sync::atomic::{AtomicU32, Ordering};

const TAG: u64 = 0x1234_5678_9abc_def0;
const U0: Uuid = Uuid([1; 16]);
const U1: Uuid = Uuid([2; 16]);
/// 64 blocks: a ring of 8, areas of 28.
const REGION_SECTORS: u64 = 64 * 8;
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

/// Opens a session: the `DIRTY` block (after a checkpoint if the ring
/// recovers from a gap).
fn open(
    disk: &mut Disk,
    s: &mut Session,
    c: &TestCache,
    owners: &[Option<Uuid>],
) -> Result<(), ()> {
    if s.ring.recovering() || s.ring.room() < 2 {
        close(disk, s, c, owners)?;
    }
    journal(disk, &mut s.ring, &[SESSION_OPEN], false)
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
        Ok((r, sums, done)) => {
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
    let c = busy_cache();
    let owners = [Some(U0), Some(U1)];
    let mut disk = Disk::new(usize::MAX, Fault::Lost);
    let mut s = new_session();
    open(&mut disk, &mut s, &c, &owners).unwrap();
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
fn an_open_session_restores_nothing() {
    let c = busy_cache();
    let owners = [Some(U0), Some(U1)];
    let mut disk = Disk::new(usize::MAX, Fault::Lost);
    let mut s = new_session();
    open(&mut disk, &mut s, &c, &owners).unwrap();
    close(&mut disk, &mut s, &c, &owners).unwrap();
    // The next session opens and never closes (a crash).
    open(&mut disk, &mut s, &c, &owners).unwrap();
    let (r, mut s2, scan) = load(&disk, &mut same);
    assert!(scan.unwrap().dirty);
    assert!(current(&r).is_empty());
    // The recovered session closes cleanly: warm again.
    open(&mut disk, &mut s2, &c, &owners).unwrap();
    close(&mut disk, &mut s2, &c, &owners).unwrap();
    let (r, ..) = load(&disk, &mut same);
    assert_eq!(current(&r), current(&c));
}

#[test]
fn devices_are_remapped_or_dropped_as_registration_decides() {
    let c = busy_cache();
    let owners = [Some(U0), None];
    let mut disk = Disk::new(usize::MAX, Fault::Lost);
    let mut s = new_session();
    open(&mut disk, &mut s, &c, &owners).unwrap();
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
    let c = busy_cache();
    let owners = [Some(U0), Some(U1)];
    let mut disk = Disk::new(usize::MAX, Fault::Lost);
    let mut s = new_session();
    open(&mut disk, &mut s, &c, &owners).unwrap();
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
            let (r, mut s2, res) = load(&d, &mut same);
            assert!(res.is_err(), "block {blk} bit {bit}");
            assert!(current(&r).is_empty());
            // The restarted ring goes on past every block seen.
            open(&mut d, &mut s2, &r, &owners).unwrap();
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

/// Sessions over `disk` until a write fails: each opens, changes the cache,
/// closes. Returns the snapshot the disk must restore: the index at the
/// last close whose journal block is on disk, or nothing if a session had
/// opened since.
fn run_sessions(
    disk: &mut Disk,
    c: &mut TestCache,
    owners: &[Option<Uuid>],
    s: &mut Session,
    seed: u64,
) -> (Result<(), ()>, Snapshot, Snapshot) {
    let mut expect = Vec::new();
    let mut rng = seed;
    let mut step = || {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        rng >> 33
    };
    for _ in 0..4 {
        if let Err(e) = open(disk, s, c, owners) {
            // The open block is lost or torn: the last clean close stands;
            // or all of it landed (its second half is zero), and the
            // session is open: nothing.
            return (Err(e), expect, Vec::new());
        }
        for _ in 0..300 {
            let dev = (step() % 2) as DevId;
            let sector = step() % 512 * 8;
            if step() % 3 == 0 {
                write(c, dev, sector, 8);
            } else if let ReadPlan::Fill { region, ticket, .. } =
                c.read(dev, sector, 8, true, &none)
            {
                c.finish_fill(dev, sector, &region, ticket, true);
            }
        }
        let snap = current(c);
        if let Err(e) = close(disk, s, c, owners) {
            // The session opened and did not close: nothing; or, if the
            // failing write was the close's journal block and all of it
            // landed (a torn write of a block whose second half is zero),
            // the index it closed with.
            return (Err(e), Vec::new(), snap);
        }
        expect = snap;
    }
    (Ok(()), expect.clone(), expect)
}

#[test]
fn torn_metadata_writes_never_restore_a_stale_index() {
    let owners = [Some(U0), Some(U1)];
    for fault in [Fault::Lost, Fault::Torn] {
        for seed in [3u64, 0xfeed] {
            let mut fail_at = 0;
            loop {
                let what = format!("{fault:?}, seed {seed:#x}, write {fail_at}");
                let mut disk = Disk::new(fail_at, fault);
                let mut c = cache(NBUCKETS, BUCKET_SECTORS);
                let mut s = new_session();
                let (res, lo, hi) = run_sessions(&mut disk, &mut c, &owners, &mut s, seed);
                let (r, mut s2, _) = load(&disk, &mut same);
                r.index.check().unwrap();
                r.buckets.check().unwrap();
                let got = current(&r);
                // The index of the last clean close, or nothing if a
                // session opened after it; never a mix.
                assert!(
                    got == lo || got == hi,
                    "{what}: restored {} extents, want {} or {}",
                    got.len(),
                    lo.len(),
                    hi.len()
                );
                if res.is_ok() {
                    assert!(fail_at > 16, "{what}: too few writes");
                    assert_eq!(got, hi);
                    break;
                }
                // Recover, then a clean session: what it closes with is
                // what the next registration gets.
                let mut disk2 = Disk {
                    writes: 0,
                    fail_at: usize::MAX,
                    dead: false,
                    ..disk.clone()
                };
                let mut c2 = r;
                let (res2, _, hi2) = run_sessions(&mut disk2, &mut c2, &owners, &mut s2, seed ^ 77);
                res2.unwrap();
                let (r2, ..) = load(&disk2, &mut same);
                assert_eq!(current(&r2), hi2, "{what}: after recovery");
                fail_at += 1;
            }
        }
    }
}

/// A checkpoint written without checksums (a version before `data_csum`),
/// or whose last extent lost some of them: those extents are not restored,
/// and the index stays consistent.
#[test]
fn extents_without_all_their_checksums_are_dropped() {
    let c = busy_cache();
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
        open(&mut disk, &mut s, &c, &owners).unwrap();
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
