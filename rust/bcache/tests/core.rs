// SPDX-License-Identifier: GPL-2.0

//! Unit tests of the bcache_rs core and a model test: random interleavings
//! of reads, fills, writes and discards on two devices over a tiny SSD,
//! checking that a hit never returns data the backing device no longer
//! holds.

mod common;

use common::*;
use proptest::prelude::*;
use rkm_bcache::*;

#[test]
fn empty_buckets_are_refused() {
    assert!(Buckets::new(Vec::<BucketMeta>::new(), 8).is_none());
    assert!(Buckets::new(vec![BucketMeta::FREE; 4], 0).is_none());
}

#[test]
fn a_fill_then_hits_split_at_extent_boundaries() {
    let mut c = cache(4, 64);
    let r = fill(&mut c, 0, 16, 8);
    assert_eq!(
        c.read(0, 16, 8, true, &none),
        ReadPlan::Hit {
            bucket: r.bucket,
            offset: r.offset,
            len: 8
        }
    );
    // A read that starts before the extent misses up to it.
    match c.read(0, 8, 16, false, &none) {
        ReadPlan::Miss {
            len: 8,
            collided: false,
        } => {}
        other => panic!("{other:?}"),
    }
    // A read from the middle hits the rest of the extent only.
    assert_eq!(
        c.read(0, 20, 100, true, &none),
        ReadPlan::Hit {
            bucket: r.bucket,
            offset: r.offset + 4,
            len: 4
        }
    );
    // Another device's sectors are separate.
    assert!(matches!(
        c.read(1, 16, 8, false, &none),
        ReadPlan::Miss { len: 8, .. }
    ));
    c.index.check().unwrap();
}

#[test]
fn the_last_sectors_of_a_device_and_the_last_device_keep_apart() {
    // A key packs the device above a 48-bit sector: the last sectors a
    // device may have sit right below the next device's first ones.
    let mut c = cache(8, 64);
    let last = MAX_DEV_SECTORS - 8;
    fill(&mut c, 0, last, 8);
    fill(&mut c, 1, 0, 8);
    fill(&mut c, DevId::MAX, last, 8);
    assert_eq!(
        extents(&c),
        vec![(0, last, 8), (1, 0, 8), (DevId::MAX, last, 8)]
    );
    assert!(matches!(
        c.read(0, last, 8, false, &none),
        ReadPlan::Hit { len: 8, .. }
    ));
    assert!(matches!(
        c.read(0, 0, 8, false, &none),
        ReadPlan::Miss { len: 8, .. }
    ));
    assert!(matches!(
        c.read(1, last, 8, false, &none),
        ReadPlan::Miss { len: 8, .. }
    ));
    assert!(matches!(
        c.read(2, 0, 8, false, &none),
        ReadPlan::Miss { len: 8, .. }
    ));
    // A miss that ends at the device's end is not cut by the next device.
    assert!(matches!(
        c.read(1, last - 8, 16, false, &none),
        ReadPlan::Miss { len: 16, .. }
    ));
    assert!(c.index.remove_dev(0, 8, &mut c.buckets));
    assert_eq!(extents(&c), vec![(1, 0, 8), (DevId::MAX, last, 8)]);
    c.index.check().unwrap();
}

#[test]
fn pieces_counts_runs_up_to_a_limit() {
    let mut c = cache(4, 64);
    assert_eq!(c.index.pieces(0, 0, 64, 8, &c.buckets), 1);
    // Filled in this order, 8..16 and 16..24 are not one extent.
    fill(&mut c, 0, 16, 8);
    fill(&mut c, 0, 8, 8);
    fill(&mut c, 0, 40, 8);
    // miss 0..8, hit 8..16, hit 16..24, miss 24..40, hit 40..48, miss 48..64
    assert_eq!(c.index.pieces(0, 0, 64, 8, &c.buckets), 6);
    assert_eq!(c.index.pieces(0, 0, 64, 3, &c.buckets), 4);
    assert_eq!(c.index.pieces(0, 8, 8, 8, &c.buckets), 1);
    assert_eq!(c.index.pieces(1, 0, 64, 8, &c.buckets), 1);
}

#[test]
fn read_first_refuses_fragmented_reads_and_leaves_no_fill() {
    let mut c = cache(4, 64);
    fill(&mut c, 0, 16, 8);
    let r = fill(&mut c, 0, 8, 8);
    fill(&mut c, 0, 40, 8);
    // One hit, even within a longer extent run.
    assert_eq!(
        c.read_first(0, 8, 8, true, 1, &none),
        Some(ReadPlan::Hit {
            bucket: r.bucket,
            offset: r.offset,
            len: 8
        })
    );
    // Six pieces: refused at four, and no fill is left in flight (one
    // would make the next fill of 0..8 a collided miss).
    assert_eq!(c.read_first(0, 0, 64, true, 4, &none), None);
    assert!(matches!(
        c.read_first(0, 0, 64, true, 8, &none),
        Some(ReadPlan::Fill { len: 8, .. })
    ));
    // Bypassed reads (one piece at most): a partial hit is refused...
    assert_eq!(c.read_first(0, 8, 16, false, 1, &none), None);
    // ...and within the limit the plan is `read`'s.
    let mut d = cache(4, 64);
    fill(&mut d, 0, 8, 8);
    assert_eq!(
        d.read_first(0, 0, 16, false, 4, &none),
        Some(ReadPlan::Miss {
            len: 8,
            collided: false
        })
    );
}

#[test]
fn invalidate_trims_both_ends_and_splits() {
    let mut c = cache(4, 64);
    let r = fill(&mut c, 0, 0, 32);
    assert_eq!(c.buckets.meta(r.bucket).unwrap().live, 32);
    // A hole in the middle splits the extent.
    assert_eq!(c.index.invalidate(0, 8, 4, &mut c.buckets).dropped, 4);
    assert_eq!(extents(&c), vec![(0, 0, 8), (0, 12, 20)]);
    assert_eq!(
        c.read(0, 12, 4, false, &none),
        ReadPlan::Hit {
            bucket: r.bucket,
            offset: r.offset + 12,
            len: 4
        }
    );
    // Across the end of one and the start of the other.
    assert_eq!(c.index.invalidate(0, 4, 10, &mut c.buckets).dropped, 6);
    assert_eq!(extents(&c), vec![(0, 0, 4), (0, 14, 18)]);
    // Everything.
    assert_eq!(c.index.invalidate(0, 0, 1000, &mut c.buckets).dropped, 22);
    assert!(c.index.is_empty());
    assert_eq!(c.buckets.meta(r.bucket).unwrap().live, 0);
}

#[test]
fn a_write_collides_with_a_fill_in_flight() {
    let mut c = cache(4, 64);
    let ReadPlan::Fill { region, ticket, .. } = c.read(0, 0, 8, true, &none) else {
        panic!()
    };
    let w = c.begin_write(0, 4, 1, false, &none).0;
    // A fill that starts while the write is in flight is not made.
    assert_eq!(
        c.read(0, 0, 8, true, &none),
        ReadPlan::Miss {
            len: 8,
            collided: true
        }
    );
    assert_eq!(
        c.finish_fill(0, 0, &region, ticket, true),
        FillOutcome::Collided
    );
    assert_eq!(c.finish_write(0, 4, &w, true), None);
    assert!(c.index.is_empty());
    // A write elsewhere does not collide.
    let ReadPlan::Fill { region, ticket, .. } = c.read(0, 0, 8, true, &none) else {
        panic!()
    };
    let w = c.begin_write(0, 8, 8, false, &none).0;
    c.finish_write(0, 8, &w, true);
    assert_eq!(
        c.finish_fill(0, 0, &region, ticket, true),
        FillOutcome::Inserted
    );
    assert_eq!(c.inflight.in_use(), 0);
}

#[test]
fn overlapping_writes_drop_both_copies() {
    let mut c = cache(4, 64);
    let a = c.begin_write(0, 0, 8, true, &none).0;
    let b = c.begin_write(0, 4, 8, true, &none).0;
    assert!(a.region.is_some());
    assert_eq!(c.finish_write(0, 0, &a, true), Some(FillOutcome::Collided));
    assert_eq!(c.finish_write(0, 4, &b, true), Some(FillOutcome::Collided));
    assert!(c.index.is_empty());
    let w = c.begin_write(0, 0, 8, true, &none).0;
    assert_eq!(c.finish_write(0, 0, &w, true), Some(FillOutcome::Inserted));
    assert!(matches!(
        c.read(0, 0, 8, false, &none),
        ReadPlan::Hit { len: 8, .. }
    ));
}

#[test]
fn refill_takes_empty_then_cold_buckets_and_skips_pinned() {
    let mut c = cache(3, 8);
    let a = fill(&mut c, 0, 0, 8);
    let b = fill(&mut c, 0, 16, 8);
    let d = fill(&mut c, 0, 32, 8);
    assert_eq!(c.buckets.free(), 0);
    // Make `a` hot; `b` loses its data.
    for _ in 0..4 {
        assert!(matches!(
            c.read(0, 0, 8, false, &none),
            ReadPlan::Hit { .. }
        ));
    }
    assert_eq!(c.buckets.meta(a.bucket).unwrap().prio, PRIO_MAX);
    c.index.invalidate(0, 16, 8, &mut c.buckets);
    // `d` is still open; a new allocation closes it and refills: pinned
    // `a` is passed over, `b` (empty) goes, `d` (filled once) gets its
    // second chance.
    let pin_a = move |x: u32| x == a.bucket;
    let r = c.buckets.alloc(8, &pin_a).unwrap();
    assert_eq!(r.bucket, b.bucket);
    assert_eq!(c.buckets.stats().invalidated, 1);
    assert!(region_current(&c, &a) && region_current(&c, &d));
    assert_eq!(c.buckets.meta(d.bucket).unwrap().prio, 0);
    // The next allocation takes `d`, which was not read since.
    let r = c.buckets.alloc(8, &pin_a).unwrap();
    assert_eq!(r.bucket, d.bucket);
    assert!(!region_current(&c, &d));
    // The stale extent of `d` is dropped by the lookup that meets it.
    assert_eq!(
        c.read(0, 32, 8, false, &none),
        ReadPlan::Miss {
            len: 8,
            collided: false
        }
    );
    c.buckets.check().unwrap();
}

#[test]
fn a_hot_bucket_outlives_single_use_fills_until_it_cools() {
    const N: u64 = 8;
    let mut c = cache(N as usize, 8);
    let hot = fill(&mut c, 0, 0, 8);
    let cold = fill(&mut c, 0, 8 * 16, 8);
    for _ in 0..8 {
        assert!(cached(&mut c, 0, 0, 8));
    }
    let mut s = 1 << 20;
    let mut cold_gone = None;
    let mut hot_gone = None;
    for i in 0..(u64::from(PRIO_MAX) + 3) * N {
        fill(&mut c, 0, s, 8);
        s += 16;
        if cold_gone.is_none() && !region_current(&c, &cold) {
            cold_gone = Some(i);
        }
        if hot_gone.is_none() && !region_current(&c, &hot) {
            hot_gone = Some(i);
        }
        c.buckets.check().unwrap();
    }
    let (cold_gone, hot_gone) = (cold_gone.unwrap(), hot_gone.unwrap());
    // The cold bucket goes on the hand's second pass, the hot one only
    // after as many more passes as it had points, and both go.
    assert!(cold_gone <= 2 * N, "cold evicted after {cold_gone} fills");
    eprintln!("cold evicted after {cold_gone} fills, hot after {hot_gone}");
    assert!(
        hot_gone >= cold_gone + N,
        "hot evicted after {hot_gone} fills"
    );
}

#[test]
fn gc_removes_stale_extents_in_batches() {
    let mut c = cache(2, 2048);
    for i in 0..200u64 {
        fill(&mut c, 0, i * 16, 8);
    }
    assert_eq!(c.index.len(), 200);
    // Allocations that each need a fresh bucket invalidate the first on
    // the eviction hand's second pass.
    for _ in 0..3 {
        c.buckets.alloc(2048, &none).unwrap();
    }
    let mut cursor = Some(0u64);
    let mut removed = 0;
    let mut steps = 0;
    while let Some(k) = cursor {
        let (next, n) = c.index.gc_step(k, &c.buckets);
        assert!(n <= GC_BATCH);
        removed += n;
        cursor = next;
        steps += 1;
    }
    assert_eq!(removed, 200);
    assert!(steps > 1);
    assert!(c.index.is_empty());
}

#[test]
fn too_large_fills_and_full_tables_fall_back_to_misses() {
    let mut c = cache(2, 8);
    assert_eq!(
        c.read(0, 0, 16, true, &none),
        ReadPlan::Miss {
            len: 16,
            collided: false
        }
    );
    let mut tickets = Vec::new();
    for i in 0..INFLIGHT_SLOTS as u64 {
        tickets.push(c.begin_write(0, i * 8, 1, false, &none).0);
    }
    let extra = c.begin_write(1, 0, 1, false, &none).0;
    assert_eq!(extra.ticket, WriteTicket::Untracked);
    assert!(matches!(
        c.read(2, 0, 8, true, &none),
        ReadPlan::Miss { collided: true, .. }
    ));
    for t in tickets {
        c.finish_write(0, 0, &t, true);
    }
    c.finish_write(1, 0, &extra, true);
    assert_eq!(c.inflight.in_use(), 0);
    assert!(matches!(
        c.read(2, 0, 8, true, &none),
        ReadPlan::Fill { .. }
    ));
}

#[test]
fn remove_dev_drops_only_that_device() {
    let mut c = cache(4, 64);
    fill(&mut c, 0, 0, 8);
    fill(&mut c, 1, 8, 8);
    fill(&mut c, 1, 0, 8);
    assert!(!c.index.remove_dev(1, 1, &mut c.buckets));
    assert!(c.index.remove_dev(1, 10, &mut c.buckets));
    assert_eq!(extents(&c), vec![(0, 0, 8)]);
}

#[test]
fn sequential_runs() {
    assert_eq!(sequential_run(0, 0, 0, 8), 8);
    assert_eq!(sequential_run(8, 8, 8, 8), 16);
    assert_eq!(sequential_run(8, 16, 100, 8), 8);
    assert_eq!(sequential_run(8, u64::MAX, 8, 8), u64::MAX);
}

// The model: sector values of the backing devices and of the SSD, and the
// I/O in flight, advanced one step at a time in a random order.

const DEVS: DevId = 2;
const DEV_SECTORS: u64 = 64;
const NBUCKETS: usize = 4;
const BUCKET_SECTORS: u32 = 16;

#[derive(Clone, Debug)]
enum Op {
    Read {
        dev: DevId,
        sector: u64,
        len: u64,
    },
    Write {
        dev: DevId,
        sector: u64,
        len: u64,
        copy: bool,
    },
    Step(usize),
    Gc,
    /// Every I/O completes, then the cache is checkpointed and restored
    /// (a clean unregister and registration, at the core's level).
    Restart,
    /// The journal takes up to n `BUCKET` records and makes them durable.
    Journal(usize),
    /// A crash: what the SSD holds (the last checkpoint and the durable
    /// `BUCKET` records) names no data overwritten since (a persistent
    /// cache only).
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    let range =
        (0..DEVS, 0..DEV_SECTORS, 1..=12u64).prop_map(|(d, s, l)| (d, s, l.min(DEV_SECTORS - s)));
    prop_oneof![
        3 => range.clone().prop_map(|(dev, sector, len)| Op::Read { dev, sector, len }),
        2 => (range, any::<bool>()).prop_map(|((dev, sector, len), copy)| Op::Write { dev, sector, len, copy }),
        4 => (0..8usize).prop_map(Op::Step),
        1 => Just(Op::Gc),
        1 => Just(Op::Restart),
        1 => (0..4usize).prop_map(Op::Journal),
        1 => Just(Op::Crash),
    ]
}

enum Io {
    // A fill: `data` is what the backing read returned, once it has run.
    Fill {
        dev: DevId,
        sector: u64,
        region: Region,
        ticket: Ticket,
        data: Option<Vec<u64>>,
    },
    // A write of `value`: `stage` 0 before the backing write, 1 after it;
    // `more`: where its invalidation goes on (the backing write waits).
    Write {
        dev: DevId,
        sector: u64,
        len: u64,
        plan: WritePlan,
        value: u64,
        stage: u8,
        more: Option<u64>,
    },
}

/// A checkpoint: the current extents, and each bucket's generation and
/// priority.
type Checkpoint = (Vec<(DevId, u64, Extent)>, Vec<(u32, u8)>);

/// What the module will journal: the index changes, in order.
#[derive(Clone, Copy, Debug)]
enum Rec {
    Extent(DevId, u64, Extent),
    Invalidate(DevId, u64, u64),
    Bucket(u32, u32),
}

struct Model {
    c: TestCache,
    /// The last checkpoint (the current extents and the buckets'
    /// generations and priorities at the last restart), and the records
    /// since: replaying both must give the cache's current extents.
    checkpoint: Checkpoint,
    log: Vec<Rec>,
    /// Persistent buckets: the `BUCKET` records made durable since the
    /// last checkpoint, and the SSD's content at that checkpoint.
    persistent: bool,
    durable: Vec<(u32, u32)>,
    checkpoint_ssd: Vec<u64>,
    backing: Vec<Vec<u64>>,
    ssd: Vec<u64>,
    io: Vec<Io>,
    next_value: u64,
    hits: u64,
}

impl Model {
    fn new(persistent: bool) -> Self {
        Self {
            c: {
                let mut c = cache(NBUCKETS, BUCKET_SECTORS);
                c.index.set_invalidate_batch(1);
                c.buckets.set_persistent(persistent);
                c
            },
            persistent,
            durable: Vec::new(),
            checkpoint_ssd: vec![u64::MAX; NBUCKETS * BUCKET_SECTORS as usize],
            backing: (0..DEVS)
                .map(|d| (0..DEV_SECTORS).map(|s| u64::from(d) << 32 | s).collect())
                .collect(),
            ssd: vec![u64::MAX; NBUCKETS * BUCKET_SECTORS as usize],
            checkpoint: (Vec::new(), vec![(0, 0); NBUCKETS]),
            log: Vec::new(),
            io: Vec::new(),
            next_value: 1 << 40,
            hits: 0,
        }
    }

    fn pins(&self) -> Vec<u32> {
        self.io
            .iter()
            .filter_map(|io| match io {
                Io::Fill { region, .. } => Some(region.bucket),
                Io::Write { plan, .. } => plan.region.map(|r| r.bucket),
            })
            .collect()
    }

    fn ssd_at(region_bucket: u32, offset: u32) -> usize {
        (region_bucket * BUCKET_SECTORS + offset) as usize
    }

    fn writing(&self, dev: DevId, s: u64) -> bool {
        self.io.iter().any(|io| matches!(io, Io::Write { dev: d, sector, len, .. } if *d == dev && *sector <= s && s < sector + len))
    }

    fn gens(&self) -> Vec<u32> {
        (0..NBUCKETS as u32)
            .map(|b| self.c.buckets.meta(b).unwrap().gen)
            .collect()
    }

    /// Logs a `BUCKET` record for each bucket whose generation changed
    /// since `before`.
    fn log_buckets(&mut self, before: &[u32]) {
        for (b, (old, new)) in before.iter().zip(self.gens()).enumerate() {
            if *old != new {
                self.log.push(Rec::Bucket(b as u32, new));
            }
        }
    }

    fn read(&mut self, dev: DevId, mut sector: u64, len: u64) {
        let end = sector + len;
        while sector < end {
            let pins = self.pins();
            let pinned = move |b: u32| pins.contains(&b);
            let gens = self.gens();
            let plan = self.c.read(dev, sector, end - sector, true, &pinned);
            self.log_buckets(&gens);
            match plan {
                ReadPlan::Hit {
                    bucket,
                    offset,
                    len,
                } => {
                    assert!(len > 0);
                    for i in 0..len {
                        let s = sector + i;
                        if self.writing(dev, s) {
                            continue;
                        }
                        let got = self.ssd[Self::ssd_at(bucket, offset + i as u32)];
                        assert_eq!(
                            got, self.backing[dev as usize][s as usize],
                            "stale hit: dev {dev} sector {s}"
                        );
                    }
                    self.hits += 1;
                    sector += len;
                }
                ReadPlan::Fill {
                    len,
                    region,
                    ticket,
                } => {
                    assert_eq!(u64::from(region.len), len);
                    self.io.push(Io::Fill {
                        dev,
                        sector,
                        region,
                        ticket,
                        data: None,
                    });
                    sector += len;
                }
                ReadPlan::Miss { len, .. } => {
                    assert!(len > 0);
                    sector += len;
                }
            }
        }
    }

    fn write(&mut self, dev: DevId, sector: u64, len: u64, copy: bool) {
        let pins = self.pins();
        let pinned = move |b: u32| pins.contains(&b);
        // One extent a hold: other operations run between the batches.
        let gens = self.gens();
        let (plan, more) = self.c.begin_write(dev, sector, len, copy, &pinned);
        self.log_buckets(&gens);
        self.log.push(Rec::Invalidate(dev, sector, len));
        self.next_value += 1;
        let value = self.next_value;
        self.io.push(Io::Write {
            dev,
            sector,
            len,
            plan,
            value,
            stage: 0,
            more,
        });
    }

    fn step(&mut self, i: usize) {
        if self.io.is_empty() {
            return;
        }
        let i = i % self.io.len();
        match &mut self.io[i] {
            Io::Fill {
                dev,
                sector,
                region,
                data,
                ..
            } if data.is_none() => {
                let b = &self.backing[*dev as usize];
                *data = Some(
                    (0..u64::from(region.len))
                        .map(|k| b[(*sector + k) as usize])
                        .collect(),
                );
            }
            Io::Fill { .. } => {
                let Io::Fill {
                    dev,
                    sector,
                    region,
                    ticket,
                    data,
                } = self.io.remove(i)
                else {
                    unreachable!()
                };
                for (k, v) in data.unwrap().into_iter().enumerate() {
                    self.ssd[Self::ssd_at(region.bucket, region.offset + k as u32)] = v;
                }
                if self.c.finish_fill(dev, sector, &region, ticket, true) == FillOutcome::Inserted {
                    self.log.push(Rec::Extent(dev, sector, extent_of(&region)));
                }
            }
            Io::Write {
                dev,
                sector,
                len,
                more: more @ Some(_),
                ..
            } => {
                *more = more.and_then(|from| self.c.invalidate_more(*dev, from, *sector + *len));
            }
            Io::Write {
                dev,
                sector,
                len,
                value,
                stage,
                plan,
                ..
            } if *stage == 0 => {
                for s in *sector..*sector + *len {
                    self.backing[*dev as usize][s as usize] = *value;
                }
                if let Some(r) = plan.region {
                    for k in 0..r.len {
                        self.ssd[Self::ssd_at(r.bucket, r.offset + k)] = *value;
                    }
                }
                *stage = 1;
            }
            Io::Write { .. } => {
                let Io::Write {
                    dev, sector, plan, ..
                } = self.io.remove(i)
                else {
                    unreachable!()
                };
                if self.c.finish_write(dev, sector, &plan, true) == Some(FillOutcome::Inserted) {
                    let r = plan.region.unwrap();
                    self.log.push(Rec::Extent(dev, sector, extent_of(&r)));
                }
            }
        }
    }

    /// Completes every I/O, passes over the current extents in steps of 3
    /// (a checkpoint) and restores a new cache from them and from the
    /// buckets' generations and priorities: it has the same current
    /// extents, so the reads after it hit where the ones before did.
    /// Takes up to `n` `BUCKET` records and makes them durable.
    fn journal(&mut self, n: usize) {
        let mut out = vec![(0, 0); n];
        let k = self.c.buckets.take_invalidated(&mut out);
        assert_eq!(self.c.buckets.durable(k as u32), k as u32);
        self.durable.extend_from_slice(&out[..k]);
    }

    /// A restore of the last checkpoint: the buckets' generations and
    /// priorities, then its extents (all current).
    fn restore_checkpoint(&self) -> Restore<StdAlloc, Vec<BucketMeta>> {
        let (extents, gens) = &self.checkpoint;
        let mut r = Restore::new(
            StdAlloc,
            vec![BucketMeta::FREE; NBUCKETS],
            BUCKET_SECTORS,
            |b| gens[b as usize],
        )
        .unwrap();
        for &(d, s, e) in extents {
            assert_eq!(r.extent(d, s, e), Ok(true));
        }
        r
    }

    /// What a crash leaves: the last checkpoint and the durable `BUCKET`
    /// records since. Every current extent of what they restore must hold
    /// the data it held at the checkpoint: no bucket was written again
    /// before its new generation was durable.
    fn crash(&self) {
        if !self.persistent {
            return;
        }
        let mut r = self.restore_checkpoint();
        for &(b, g) in &self.durable {
            r.bucket(b, g).unwrap();
        }
        let c = r.finish();
        c.index.for_each(|d, s, e| {
            if !c.buckets.is_current(&e) {
                return;
            }
            for k in 0..e.len {
                let at = Self::ssd_at(e.bucket, e.offset + k);
                assert_eq!(
                    self.ssd[at], self.checkpoint_ssd[at],
                    "dev {d} sector {}: its bucket {} was written again before its generation was durable",
                    s + u64::from(k),
                    e.bucket
                );
            }
        });
    }

    fn restart(&mut self) {
        while !self.io.is_empty() {
            self.step(0);
        }
        while self.c.buckets.pending() > 0 {
            self.journal(NBUCKETS);
        }
        self.check_replay();
        let mut before = Vec::new();
        let mut cursor = Some(0);
        while let Some(c) = cursor {
            cursor = self
                .c
                .index
                .current_from(c, 3, &self.c.buckets, |d, s, e| before.push((d, s, e)));
        }
        let metas: Vec<BucketMeta> = (0..NBUCKETS as u32)
            .map(|b| self.c.buckets.meta(b).unwrap())
            .collect();
        let mut r = Restore::new(
            StdAlloc,
            vec![BucketMeta::FREE; NBUCKETS],
            BUCKET_SECTORS,
            |b| (metas[b as usize].gen, metas[b as usize].prio),
        )
        .unwrap();
        for &(d, s, e) in &before {
            assert_eq!(r.extent(d, s, e), Ok(true));
        }
        let mut c = r.finish();
        c.index.set_invalidate_batch(1);
        c.buckets.set_persistent(self.persistent);
        let mut after = Vec::new();
        c.index.for_each(|d, s, e| after.push((d, s, e)));
        assert_eq!(before, after, "the restored index is the current extents");
        self.checkpoint = (before, metas.iter().map(|m| (m.gen, m.prio)).collect());
        self.log.clear();
        self.durable.clear();
        self.checkpoint_ssd = self.ssd.clone();
        self.c = c;
    }

    /// Replays the last checkpoint and the records since into a new cache:
    /// each sector is where the cache has it (extents merged or split
    /// differently, the same sectors in the same places).
    fn check_replay(&self) {
        let mut r = self.restore_checkpoint();
        for rec in &self.log {
            match *rec {
                Rec::Extent(d, s, e) => assert_eq!(r.extent(d, s, e), Ok(true), "{rec:?}"),
                Rec::Invalidate(d, s, l) => r.invalidate(d, s, l).unwrap(),
                Rec::Bucket(b, g) => r.bucket(b, g).unwrap(),
            }
        }
        let c = r.finish();
        c.index.check().unwrap();
        c.buckets.check().unwrap();
        assert_eq!(sectors(&c), sectors(&self.c), "replayed sectors differ");
        for b in 0..NBUCKETS as u32 {
            let (a, z) = (c.buckets.meta(b).unwrap(), self.c.buckets.meta(b).unwrap());
            assert_eq!((a.gen, a.live), (z.gen, z.live), "bucket {b}");
        }
    }

    fn check(&self) {
        self.c.index.check().unwrap();
        self.c.buckets.check().unwrap();
        // Every current extent matches the backing device wherever no write
        // is in flight.
        self.c.index.for_each(|dev, start, e| {
            if !self.c.buckets.is_current(&e) {
                return;
            }
            for k in 0..e.len {
                let s = start + u64::from(k);
                if !self.writing(dev, s) {
                    assert_eq!(
                        self.ssd[Self::ssd_at(e.bucket, e.offset + k)],
                        self.backing[dev as usize][s as usize]
                    );
                }
            }
        });
        // Live sectors per bucket are those of its current extents.
        let mut live = [0u32; NBUCKETS];
        self.c.index.for_each(|_, _, e| {
            if self.c.buckets.is_current(&e) {
                live[e.bucket as usize] += e.len;
            }
        });
        for (b, l) in live.iter().enumerate() {
            assert_eq!(
                self.c.buckets.meta(b as u32).unwrap().live,
                *l,
                "live sectors of bucket {b}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]

    #[test]
    fn never_serves_stale_data(ops in prop::collection::vec(op(), 1..200), persistent in any::<bool>()) {
        let mut m = Model::new(persistent);
        let mut gc = Some(0u64);
        for op in ops {
            match op {
                Op::Read { dev, sector, len } => m.read(dev, sector, len),
                Op::Write { dev, sector, len, copy } => m.write(dev, sector, len, copy),
                Op::Step(i) => m.step(i),
                Op::Gc => {
                    let (next, _) = m.c.index.gc_step(gc.unwrap_or(0), &m.c.buckets);
                    gc = next;
                }
                Op::Restart => m.restart(),
                Op::Journal(n) => m.journal(n),
                Op::Crash => m.crash(),
            }
            m.check();
        }
        while !m.io.is_empty() {
            m.step(0);
            m.check();
        }
        m.check_replay();
        prop_assert_eq!(m.c.inflight.in_use(), 0);
        // After everything completed, reading all twice: the second pass
        // hits wherever the first one filled.
        for dev in 0..DEVS {
            m.read(dev, 0, DEV_SECTORS);
            while !m.io.is_empty() {
                m.step(0);
            }
            m.check();
        }
    }
}

fn extent_of(r: &Region) -> Extent {
    Extent {
        bucket: r.bucket,
        offset: r.offset,
        len: r.len,
        gen: r.gen,
    }
}

/// Where each sector of each device is cached: (bucket, sector in it).
fn sectors(c: &TestCache) -> Vec<Option<(u32, u32)>> {
    let mut v = vec![None; DEVS as usize * DEV_SECTORS as usize];
    c.index.for_each(|d, s, e| {
        if c.buckets.is_current(&e) {
            for k in 0..e.len {
                v[d as usize * DEV_SECTORS as usize + (s + u64::from(k)) as usize] =
                    Some((e.bucket, e.offset + k));
            }
        }
    });
    v
}

#[test]
fn restore_refuses_what_no_cache_holds_and_skips_stale_extents() {
    let mut r = Restore::new(StdAlloc, vec![BucketMeta::FREE; 4], 8, |b| (b, 1)).unwrap();
    let e = |bucket, offset, len, gen| Extent {
        bucket,
        offset,
        len,
        gen,
    };
    assert_eq!(
        r.extent(0, 0, e(4, 0, 1, 4)),
        Err(RestoreError::Invalid),
        "no bucket 4"
    );
    assert_eq!(
        r.extent(0, 0, e(1, 6, 3, 1)),
        Err(RestoreError::Invalid),
        "past the bucket"
    );
    assert_eq!(
        r.extent(0, 0, e(1, 0, 0, 1)),
        Err(RestoreError::Invalid),
        "empty"
    );
    assert_eq!(
        r.extent(0, MAX_DEV_SECTORS - 1, e(1, 0, 2, 1)),
        Err(RestoreError::Invalid),
        "past the sector space"
    );
    assert_eq!(
        r.extent(0, 16, e(2, 0, 4, 1)),
        Ok(false),
        "stale: bucket 2 is at gen 2"
    );
    assert_eq!(r.skipped(), 1);
    assert_eq!(r.extent(0, 16, e(1, 0, 4, 1)), Ok(true));
    assert_eq!(r.extent(0, 18, e(3, 0, 4, 3)), Err(RestoreError::Overlap));
    assert_eq!(r.extent(0, 12, e(3, 0, 5, 3)), Err(RestoreError::Overlap));
    assert_eq!(r.extent(1, 16, e(3, 0, 4, 3)), Ok(true), "another device");
    let mut c = r.finish();
    c.buckets.check().unwrap();
    c.index.check().unwrap();
    assert_eq!(c.buckets.in_use(), 2);
    assert_eq!(c.buckets.free(), 2);
    assert_eq!(c.buckets.meta(1).unwrap().live, 4);
    // The restored data hits; a fill goes to a free bucket.
    assert!(matches!(
        c.read(0, 16, 4, true, &none),
        ReadPlan::Hit {
            bucket: 1,
            offset: 0,
            len: 4
        }
    ));
    let r = fill(&mut c, 0, 0, 8);
    assert!(
        r.bucket == 0 || r.bucket == 2,
        "a fill took bucket {}",
        r.bucket
    );
}

#[test]
fn a_persistent_cache_reuses_a_bucket_only_once_its_generation_is_durable() {
    let mut c = cache(4, 8);
    c.buckets.set_persistent(true);
    // Buckets no checkpoint holds are reused at once.
    for i in 0..5 {
        fill(&mut c, 0, i * 8, 8);
    }
    assert_eq!(c.buckets.pending(), 0);
    let mut c = cache(4, 8);
    c.buckets.set_persistent(true);
    // Fill every bucket, checkpoint them, then one more: the hand
    // invalidates bucket 0 (the oldest), which waits for its record
    // instead of being reused.
    for i in 0..4 {
        let r = fill(&mut c, 0, i * 8, 8);
        assert_eq!(r.bucket, i as u32);
    }
    c.buckets.checkpointed();
    assert!(
        matches!(c.read(0, 32, 8, true, &none), ReadPlan::Miss { .. }),
        "no free bucket until a record is durable"
    );
    assert!(c.buckets.pending() > 0);
    c.buckets.check().unwrap();
    let mut out = [(0, 0); 8];
    let n = c.buckets.take_invalidated(&mut out);
    assert!(n > 0);
    assert_eq!(out[0], (0, 1), "bucket 0, generation 1");
    c.buckets.check().unwrap();
    assert!(
        matches!(c.read(0, 32, 8, true, &none), ReadPlan::Miss { .. }),
        "taken is not durable"
    );
    assert_eq!(c.buckets.durable(1), 1);
    assert_eq!(c.buckets.durable(100), n as u32 - 1, "only what was taken");
    c.buckets.check().unwrap();
    let r = fill(&mut c, 0, 32, 8);
    assert_eq!((r.bucket, r.gen), (0, 1));
    c.buckets.check().unwrap();
    // Refills stop at MAX_PENDING buckets waiting.
    let mut c = cache(2 * MAX_PENDING, 8);
    c.buckets.set_persistent(true);
    for i in 0..(4 * MAX_PENDING) as u64 {
        if let ReadPlan::Fill { region, ticket, .. } = c.read(1, i * 8, 8, true, &none) {
            c.finish_fill(1, i * 8, &region, ticket, true);
        }
        c.buckets.checkpointed();
    }
    assert!(c.buckets.pending() as usize <= MAX_PENDING);
    c.buckets.check().unwrap();
}
