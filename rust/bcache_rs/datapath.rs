// SPDX-License-Identifier: GPL-2.0

//! The data path of bcache_rs: every bio of a `/dev/bcache_rs<N>` disk, cut
//! at cached-extent boundaries and sent to the SSD (hits) or the backing
//! device (misses, writes), and what happens when those bios complete.
//!
//! Each bio of ours carries an [`IoCtx`] in its front pad (`crate::blk`):
//! the I/O reference of its device ([`IoRef`], which keeps the device and
//! its cache attachment alive), what kind of bio it is, and its claim on
//! the cache (the pinned bucket, the fill's or write's in-flight ticket),
//! which the context gives back when it is dropped, whatever path drops it.
//!
//! - A **hit** is a clone of the caller's bio (piece) to the SSD. Its data
//!   is checked against the blocks' checksums (`crate::sums`) when it
//!   completes, before the caller's bio is (in the completion for pieces
//!   up to [`VERIFY_INLINE_SECTORS`], in process context for larger ones).
//!   A failed hit, or one whose data does not match, drops its range from
//!   the index and is retried on the backing device in process context:
//!   the caller never sees the SSD's error or its bad data.
//! - A **miss that fills** reads the backing device into pages of ours;
//!   in process context the data's checksums are computed, the data is
//!   copied into the caller's bio, which is completed, and the same pages
//!   are written to the SSD. The cache is
//!   therefore filled with the device's bytes, never with the caller's
//!   buffer (which an `O_DIRECT` caller may change meanwhile).
//! - A **writethrough write** copies the caller's data into pages of ours
//!   first (and computes its checksums from them), and writes those pages
//!   both to the backing device and, beside
//!   it, to the SSD: both get the same bytes, whatever the caller does to
//!   its buffer. The SSD copy holds the backing write open
//!   (`bio_inc_remaining`), so the write completes once, after both.
//! - Anything else is a clone to the backing device (a **pass**).
//!
//! Completions run in interrupt context: they take the cache's irq-safe
//! lock to insert or drop extents (bounded work: see `rust/bcache`) and
//! hand what needs process context to the device's work item.

use crate::bcache::{ReadPlan, Region, Ticket, WritePlan, WriteTicket};
use crate::blk::{BioInfo, Done, Op, OrigBio, PagesOp};
use crate::cache_set::CacheSet;
use crate::dev::{CacheMode, Dev, DevStats, IoRef, Parked, Submitting};
use core::sync::atomic::{AtomicBool, Ordering};
use kernel::prelude::*;
use kernel::sync::Arc;

/// Most pieces a read is cut into before it goes to the backing device
/// whole.
const MAX_PIECES: usize = 4;

/// Largest hit whose checksums are verified in its completion (interrupt
/// context): 64 KiB, a crc32c of at most 64 KiB there (some 10 us without
/// the CPU's crc32 instruction). Larger hits are verified by the device's
/// work item.
const VERIFY_INLINE_SECTORS: u64 = 128;

/// What a context holds of the cache: given back on drop.
#[derive(Default)]
struct Claim {
    /// A pinned bucket.
    pin: Option<u32>,
    /// A fill's in-flight ticket.
    fill: Option<Ticket>,
    /// A write's in-flight ticket.
    write: Option<WriteTicket>,
}

impl Claim {
    fn pin(bucket: u32) -> Self {
        Self {
            pin: Some(bucket),
            ..Self::default()
        }
    }

    fn release(&mut self, c: &CacheSet) {
        let (fill, write) = (self.fill.take(), self.write.take());
        if fill.is_some() || write.is_some() {
            let mut g = c.core.lock();
            if let Some(t) = fill {
                g.inflight.end(t);
            }
            if let Some(t) = write {
                g.inflight.end_write(t);
            }
        }
        if let Some(b) = self.pin.take() {
            c.unpin(b);
        }
    }
}

/// What a bio of ours is for.
enum Kind {
    /// Passed through to the backing device: the original (kept by the
    /// clone) is completed with its status.
    Pass { sectors: u64 },
    /// A read from the SSD of `sectors` at `offset` into `bucket`: verified
    /// against their checksums before the original completes, or
    /// (`retry`) failed and read again from the backing device.
    Hit {
        sector: u64,
        sectors: u64,
        bucket: u32,
        offset: u32,
        retry: bool,
    },
    /// A miss read from the backing device into pages of ours: `orig`
    /// waits for the data.
    FillRead {
        sector: u64,
        region: Region,
        orig: Option<OrigBio>,
    },
    /// The same pages, written to the SSD.
    FillWrite { sector: u64, region: Region },
    /// A write to the backing device (from pages of ours with a cache copy,
    /// `orig` waiting; or a clone of the original).
    Write {
        sector: u64,
        sectors: u64,
        plan: WritePlan,
        orig: Option<OrigBio>,
        copy_failed: AtomicBool,
    },
    /// The cache copy of a `Write`, holding it open.
    WriteCopy,
}

/// The context in the front pad of each bio of ours.
pub(crate) struct IoCtx {
    io: IoRef,
    kind: Kind,
    claim: Claim,
}

impl IoCtx {
    fn new(io: IoRef, kind: Kind, claim: Claim) -> Self {
        Self { io, kind, claim }
    }
}

impl Drop for IoCtx {
    fn drop(&mut self) {
        if let Some(c) = self.io.cache() {
            self.claim.release(c);
        }
    }
}

fn sectors_u32(len: u64) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// A bio submitted to a device's disk.
pub(crate) fn submit(s: Submitting<'_>, bio: OrigBio) {
    let dev = s.dev();
    if dev.is_down() {
        bio.complete(EIO.to_errno());
        return;
    }
    let info = bio.info();
    let sectors = u64::from(info.sectors);
    if matches!(info.op, Op::Write | Op::Discard) && sectors > 0 {
        match s.cache() {
            // Its write-intent records first (`Dev::park`'s work item).
            Some(c) if c.must_record(s.intent(), info.sector, sectors) => {
                Dev::park(s.io(), bio);
                return;
            }
            Some(_) => {}
            None => dev.note_uncached_write(),
        }
    }
    route(&s, bio, info);
}

/// Writes whose write-intent records were missing: recorded (or the map
/// given up), they go on (process context).
pub(crate) fn unpark(p: Parked) {
    if let (Some(c), Some(intent)) = p.attachment() {
        c.record_intent(intent, &mut p.ranges());
    }
    for (io, bio) in p {
        if io.dev().is_down() {
            bio.complete(EIO.to_errno());
            continue;
        }
        let info = bio.info();
        route(&Submitting::parked(&io), bio, info);
    }
}

/// Sends `bio` (what `info` says it is) where its device's cache says.
fn route(s: &Submitting<'_>, bio: OrigBio, info: BioInfo) {
    let dev = s.dev();
    let sectors = u64::from(info.sectors);
    let mode = dev.mode();
    let cache = s.cache().filter(|c| !c.is_failed());
    match (info.op, cache) {
        (Op::Read, Some(c)) if mode != CacheMode::None && sectors > 0 => {
            read(s, c, bio, info.sector, sectors)
        }
        (Op::Write | Op::Discard, Some(c)) if sectors > 0 => {
            write(s, c, bio, info.sector, sectors, info.op == Op::Write, mode)
        }
        _ => pass(dev, s.io(), bio, info.sector, sectors),
    }
}

/// Passes `bio` (a bio we were given, or what is left of one) to the
/// backing device.
fn pass(dev: &Dev, io: IoRef, mut bio: OrigBio, sector: u64, sectors: u64) {
    bio.start_acct();
    match dev
        .sets
        .clones
        .clone_bio(bio, &dev.backing_target(), sector, false)
    {
        Ok(u) => u
            .init(IoCtx::new(io, Kind::Pass { sectors }, Claim::default()))
            .submit(),
        Err(bio) => bio.complete(ENOMEM.to_errno()),
    }
}

fn plan_len(plan: &ReadPlan) -> u64 {
    match *plan {
        ReadPlan::Hit { len, .. } | ReadPlan::Fill { len, .. } | ReadPlan::Miss { len, .. } => len,
    }
}

/// Undoes a read plan that will not be carried out.
fn unplan(c: &CacheSet, plan: &ReadPlan) {
    match *plan {
        ReadPlan::Hit { bucket, .. } => c.unpin(bucket),
        ReadPlan::Fill { region, ticket, .. } => {
            c.core.lock().inflight.end(ticket);
            c.unpin(region.bucket);
        }
        ReadPlan::Miss { .. } => {}
    }
}

fn read(s: &Submitting<'_>, c: &Arc<CacheSet>, bio: OrigBio, start: u64, sectors: u64) {
    let dev = s.dev();
    let bypass = dev.bypass(start, sectors);
    // A bypassed read is served from the SSD only if it is one hit; a read
    // that would be cut in more than MAX_PIECES pieces goes to the backing
    // device whole (each miss piece would cost it a seek). The cache is
    // never dirty, so the backing device is always up to date.
    let end = start + sectors;
    let max_fill = c.max_fill_sectors();
    let mut sector = start;
    let mut rest = Some(bio);
    let mut first = true;
    while let Some(mut bio) = rest.take() {
        let want = end - sector;
        let fill = !bypass && want <= max_fill;
        let (plan, invalidated) = {
            let mut g = c.core.lock();
            let pinned = |b: u32| c.pinned(b);
            let plan = if first {
                let max = if bypass { 1 } else { MAX_PIECES };
                g.read_first(dev.id, sector, want, fill, max, &pinned)
            } else {
                Some(g.read(dev.id, sector, want, fill, &pinned))
            };
            match plan {
                Some(ReadPlan::Hit { bucket, .. }) => c.pin(bucket),
                Some(ReadPlan::Fill { region, .. }) => c.pin(region.bucket),
                Some(ReadPlan::Miss { .. }) | None => {}
            }
            (plan, g.buckets.stats().invalidated)
        };
        first = false;
        let Some(plan) = plan else {
            dev.stats.count_miss(bypass);
            pass(dev, s.io(), bio, sector, want);
            return;
        };
        CacheSet::maybe_gc(c, invalidated);
        let len = plan_len(&plan);
        let piece = if len < want {
            match bio.split_front(sectors_u32(len), &dev.sets.splits) {
                Some(p) => {
                    // `bio` now holds the rest.
                    rest = Some(bio);
                    p
                }
                None => {
                    unplan(c, &plan);
                    pass(dev, s.io(), bio, sector, want);
                    return;
                }
            }
        } else {
            bio
        };
        match plan {
            ReadPlan::Hit {
                bucket,
                offset,
                len,
            } => hit(s, c, piece, sector, len, bucket, offset, bypass),
            ReadPlan::Fill {
                len,
                region,
                ticket,
            } => fill_miss(s, c, piece, sector, len, region, ticket, bypass),
            ReadPlan::Miss { len, collided } => {
                dev.stats.count_miss(bypass);
                if collided {
                    DevStats::add(&dev.stats.collisions, 1);
                }
                pass(dev, s.io(), piece, sector, len);
            }
        }
        sector += len;
    }
}

#[allow(clippy::too_many_arguments)]
fn hit(
    s: &Submitting<'_>,
    c: &CacheSet,
    mut piece: OrigBio,
    sector: u64,
    len: u64,
    bucket: u32,
    offset: u32,
    bypass: bool,
) {
    let dev = s.dev();
    dev.stats.count_hit(bypass);
    piece.start_acct();
    let ctx = IoCtx::new(
        s.io(),
        Kind::Hit {
            sector,
            sectors: len,
            bucket,
            offset,
            retry: false,
        },
        Claim::pin(bucket),
    );
    let ssd_sector = c.bucket_sector(bucket) + u64::from(offset);
    match dev
        .sets
        .clones
        .clone_bio(piece, &c.ssd.target(), ssd_sector, false)
    {
        Ok(u) => u.init(ctx).submit(),
        Err(piece) => {
            drop(ctx);
            piece.complete(ENOMEM.to_errno());
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn fill_miss(
    s: &Submitting<'_>,
    c: &CacheSet,
    mut piece: OrigBio,
    sector: u64,
    len: u64,
    region: Region,
    ticket: Ticket,
    bypass: bool,
) {
    let dev = s.dev();
    dev.stats.count_miss(bypass);
    let bytes = sectors_u32(len).saturating_mul(512);
    let Some(u) = dev
        .sets
        .clones
        .pages_bio(&dev.backing_target(), sector, bytes, PagesOp::Read)
    else {
        // No pages for the fill: a plain miss.
        DevStats::add(&dev.stats.alloc_failures, 1);
        unplan(
            c,
            &ReadPlan::Fill {
                len,
                region,
                ticket,
            },
        );
        pass(dev, s.io(), piece, sector, len);
        return;
    };
    piece.start_acct();
    let ctx = IoCtx::new(
        s.io(),
        Kind::FillRead {
            sector,
            region,
            orig: Some(piece),
        },
        Claim {
            pin: Some(region.bucket),
            fill: Some(ticket),
            write: None,
        },
    );
    u.init(ctx).submit();
}

fn write(
    s: &Submitting<'_>,
    c: &Arc<CacheSet>,
    mut bio: OrigBio,
    sector: u64,
    sectors: u64,
    data: bool,
    mode: CacheMode,
) {
    let dev = s.dev();
    let bypass = data && dev.bypass(sector, sectors);
    let want_copy =
        data && mode == CacheMode::Writethrough && !bypass && sectors <= c.max_fill_sectors();
    // The pages both copies are written from, filled with the caller's
    // data once, before the lock (allocating may sleep).
    let bounce = if want_copy {
        let bytes = sectors_u32(sectors).saturating_mul(512);
        dev.sets
            .clones
            .pages_bio(
                &dev.backing_target(),
                sector,
                bytes,
                PagesOp::WriteLike(&bio),
            )
            .and_then(|mut u| u.copy_from(&bio).ok().map(|()| u))
    } else {
        None
    };
    if want_copy && bounce.is_none() {
        DevStats::add(&dev.stats.alloc_failures, 1);
    }
    let (plan, mut more, invalidated) = {
        let mut g = c.core.lock();
        let pinned = |b: u32| c.pinned(b);
        let (plan, more) = g.begin_write(dev.id, sector, sectors, bounce.is_some(), &pinned);
        if let Some(r) = plan.region {
            c.pin(r.bucket);
        }
        (plan, more, g.buckets.stats().invalidated)
    };
    // The write is in the in-flight table: the rest of its range is
    // invalidated a batch per hold, before it goes to the backing device.
    let end = sector + sectors;
    while let Some(from) = more {
        more = c.core.lock().invalidate_more(dev.id, from, end);
    }
    CacheSet::maybe_gc(c, invalidated);
    bio.start_acct();
    let claim = Claim {
        pin: plan.region.map(|r| r.bucket),
        fill: None,
        write: Some(plan.ticket),
    };
    match (plan.region, bounce) {
        (Some(r), Some(u)) => {
            // The copy's checksums, from the pages both writes take.
            // SAFETY: the region is new: no extent covers its blocks until
            // this write's completion inserts one, and the bucket is pinned
            // (`crate::sums`).
            let summed = c.store_sums(&r, |b, s| unsafe { u.store_sums(b, s) });
            let w = u.init(IoCtx::new(
                s.io(),
                Kind::Write {
                    sector,
                    sectors,
                    plan,
                    orig: Some(bio),
                    copy_failed: AtomicBool::new(false),
                },
                claim,
            ));
            let copy = IoCtx::new(s.io(), Kind::WriteCopy, Claim::default());
            let at = c.bucket_sector(r.bucket) + u64::from(r.offset);
            let submitted = if summed {
                w.submit_with_copy(&dev.sets.clones, &c.ssd.target(), at, copy)
            } else {
                // Cannot happen (a region is whole blocks).
                Err((w, copy))
            };
            if let Err((mut w, copy)) = submitted {
                // No copy after all: the write alone, not inserted.
                drop(copy);
                if let Kind::Write { copy_failed, .. } = &w.ctx().kind {
                    copy_failed.store(true, Ordering::Relaxed);
                }
                w.submit();
            }
        }
        (_, bounce) => {
            drop(bounce);
            let ctx = IoCtx::new(
                s.io(),
                Kind::Write {
                    sector,
                    sectors,
                    plan,
                    orig: None,
                    copy_failed: AtomicBool::new(false),
                },
                claim,
            );
            match dev
                .sets
                .clones
                .clone_bio(bio, &dev.backing_target(), sector, false)
            {
                Ok(u) => u.init(ctx).submit(),
                Err(bio) => {
                    drop(ctx);
                    bio.complete(ENOMEM.to_errno());
                }
            }
        }
    }
}

/// A bio of ours completed (interrupt context).
pub(crate) fn endio(mut done: Done<IoCtx>) {
    let err = done.status();
    let ctx = done.ctx();
    let dev = ctx.io.dev();
    match &ctx.kind {
        Kind::Pass { sectors } => {
            if err == 0 {
                DevStats::add(&dev.stats.backing_sectors, *sectors);
            }
            let (ctx, orig) = done.release();
            if let Some(o) = orig {
                o.complete(err);
            }
            drop(ctx);
        }
        &Kind::Hit {
            sector,
            sectors,
            bucket,
            offset,
            ..
        } => {
            let Some(c) = ctx.io.cache() else {
                let (ctx, orig) = done.release();
                if let Some(o) = orig {
                    o.complete(err);
                }
                drop(ctx);
                return;
            };
            {
                c.ssd_io_done(err != 0, dev.id);
                let retry = if err != 0 {
                    // The extent's data is unreadable: drop it.
                    DevStats::add(&dev.stats.ssd_retries, 1);
                    c.drop_range(dev.id, sector, sectors);
                    true
                } else if sectors > VERIFY_INLINE_SECTORS {
                    // Verified in process context.
                    let dev = dev.clone();
                    Dev::defer(&dev, done);
                    return;
                } else {
                    let ok = done
                        .orig()
                        .is_some_and(|o| c.hit_matches(o, bucket, offset, sectors));
                    if !ok {
                        c.csum_mismatch(dev, sector, sectors, bucket, offset);
                    }
                    !ok
                };
                if retry {
                    // Read the backing device instead, in process context.
                    let dev = dev.clone();
                    if let Kind::Hit { retry, .. } = &mut done.ctx_mut().kind {
                        *retry = true;
                    }
                    Dev::defer(&dev, done);
                    return;
                }
            }
            complete_hit(done, sectors);
        }
        Kind::FillRead { region, .. } => {
            if err == 0 {
                DevStats::add(&dev.stats.backing_sectors, u64::from(region.len));
                // Copy and write to the SSD in process context.
                let dev = dev.clone();
                Dev::defer(&dev, done);
                return;
            }
            let (mut ctx, _) = done.release();
            if let Kind::FillRead { orig, .. } = &mut ctx.kind {
                if let Some(o) = orig.take() {
                    o.complete(err);
                }
            }
            drop(ctx);
        }
        Kind::FillWrite { sector, region } => {
            let (sector, region) = (*sector, *region);
            let ctx = done.ctx_mut();
            if let (Some(c), Some(ticket)) = (ctx.io.cache(), ctx.claim.fill.take()) {
                c.ssd_io_done(err != 0, ctx.io.dev().id);
                let outcome =
                    c.core
                        .lock()
                        .finish_fill(ctx.io.dev().id, sector, &region, ticket, err == 0);
                ctx.io.dev().stats.fill_outcome(outcome);
            }
            // Unpins, frees the pages.
            drop(done);
        }
        Kind::WriteCopy => {
            if let Some(c) = ctx.io.cache() {
                c.ssd_io_done(err != 0, dev.id);
            }
            if err != 0 {
                if let Some(IoCtx {
                    kind: Kind::Write { copy_failed, .. },
                    ..
                }) = done.held_ctx()
                {
                    copy_failed.store(true, Ordering::Relaxed);
                }
            }
            // Releases the hold on the write, which may complete now.
            drop(done);
        }
        Kind::Write { .. } => {
            let ctx = done.ctx_mut();
            let ticket = ctx.claim.write.take();
            if let Kind::Write {
                sector,
                sectors,
                plan,
                copy_failed,
                ..
            } = &ctx.kind
            {
                let ok = err == 0 && !copy_failed.load(Ordering::Relaxed);
                if let (Some(c), Some(_)) = (ctx.io.cache(), ticket) {
                    let outcome = c
                        .core
                        .lock()
                        .finish_write(ctx.io.dev().id, *sector, plan, ok);
                    if let Some(o) = outcome {
                        ctx.io.dev().stats.fill_outcome(o);
                    }
                }
                if err == 0 {
                    DevStats::add(&ctx.io.dev().stats.written_sectors, *sectors);
                }
            }
            let (mut ctx, clone_of) = done.release();
            let orig = match &mut ctx.kind {
                Kind::Write { orig, .. } => orig.take().or(clone_of),
                _ => clone_of,
            };
            if let Some(o) = orig {
                o.complete(err);
            }
            drop(ctx);
        }
    }
}

/// A hit that read what its checksums say: the original completes.
fn complete_hit(done: Done<IoCtx>, sectors: u64) {
    DevStats::add(&done.ctx().io.dev().stats.cache_sectors, sectors);
    let (ctx, orig) = done.release();
    if let Some(o) = orig {
        o.complete(0);
    }
    drop(ctx);
}

/// A completion handed to process context by [`endio`].
pub(crate) fn deferred(mut done: Done<IoCtx>) {
    match &done.ctx().kind {
        &Kind::Hit {
            sector,
            sectors,
            bucket,
            offset,
            retry,
        } => {
            let ctx = done.ctx();
            let ok = !retry
                && match (ctx.io.cache(), done.orig()) {
                    (Some(c), Some(o)) => {
                        let ok = c.hit_matches(o, bucket, offset, sectors);
                        if !ok {
                            c.csum_mismatch(ctx.io.dev(), sector, sectors, bucket, offset);
                        }
                        ok
                    }
                    _ => false,
                };
            if ok {
                complete_hit(done, sectors);
                return;
            }
            let (ctx, orig) = done.release();
            let dev = ctx.io.dev().clone();
            let io = ctx.io.another();
            // Unpins the bucket.
            drop(ctx);
            if let Some(orig) = orig {
                pass(&dev, io, orig, sector, sectors);
            }
        }
        Kind::FillRead { sector, region, .. } => {
            let (sector, region) = (*sector, *region);
            let Some(c) = done.ctx().io.cache().cloned() else {
                return;
            };
            let orig = match &mut done.ctx_mut().kind {
                Kind::FillRead { orig, .. } => orig.take(),
                _ => None,
            };
            done.ctx_mut().kind = Kind::FillWrite { sector, region };
            let at = c.bucket_sector(region.bucket) + u64::from(region.offset);
            match done.rewrite(&c.ssd.target(), at) {
                Ok(w) => {
                    // SAFETY: the region is new: no extent covers its
                    // blocks until this fill's completion inserts one, and
                    // the bucket is pinned (`crate::sums`).
                    let summed = c.store_sums(&region, |b, s| unsafe { w.store_sums(b, s) });
                    if let Some(mut o) = orig {
                        w.copy_to(&mut o);
                        o.complete(0);
                    }
                    if summed {
                        w.submit();
                    }
                    // Else (cannot happen: a region is whole blocks) the
                    // fill is not made: dropping `w` ends its ticket.
                }
                Err(done) => {
                    // Not pages of ours: cannot happen; fail safe.
                    drop(done);
                    if let Some(o) = orig {
                        o.complete(EIO.to_errno());
                    }
                }
            }
        }
        _ => drop(done),
    }
}

impl Dev {
    /// Whether I/O at `sector` continues a sequential stream longer than
    /// `sequential_cutoff` (it then bypasses the cache).
    fn bypass(&self, sector: u64, sectors: u64) -> bool {
        let last = self.seq_last_end.swap(sector + sectors, Ordering::Relaxed);
        let run = crate::bcache::sequential_run(
            last,
            self.seq_run.load(Ordering::Relaxed),
            sector,
            sectors,
        );
        self.seq_run.store(run, Ordering::Relaxed);
        let cutoff = self.seq_cutoff.load(Ordering::Relaxed);
        cutoff > 0 && run.saturating_mul(512) > cutoff
    }
}
