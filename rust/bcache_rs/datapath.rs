// SPDX-License-Identifier: GPL-2.0

//! The data path of bcache_rs: every bio of a `/dev/bcache_rs<N>` disk, cut
//! at cached-extent boundaries and sent to the SSD (hits) or the backing
//! device (misses, writes), and what happens when those clones complete.
//!
//! A clone carries an [`IoCtx`] in its bio set's front pad. Completions run
//! in interrupt context: they take the cache's [`IrqLock`] to insert or drop
//! extents, and hand what needs process context (copying a miss into a fill,
//! retrying a failed SSD read on the backing device) to the cache's work
//! item. Each bio given to us counts in its device's `pending` until its
//! last clone completed, so teardown can wait for the device to go idle.

use crate::bcache::{ReadPlan, Region, Ticket, WritePlan};
use crate::blk::{Acct, Bio, LlNode, OP_DISCARD, OP_FLUSH, OP_READ, OP_WRITE};
use crate::{CacheSet, Dev, MODE_NONE, MODE_WRITETHROUGH};
use core::ptr;
use core::sync::atomic::{AtomicI32, AtomicU32, Ordering};

/// What a clone is for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Passed through to the backing device: complete the original.
    Pass,
    /// A read from the SSD.
    Hit,
    /// A read from the backing device to be copied into the cache.
    MissFill,
    /// The copy of a miss, written to the SSD.
    FillWrite,
    /// A write to the backing device, with a cache copy beside it or not.
    Write,
    /// The cache copy of a write (writethrough).
    WriteCopy,
}

/// The context in front of each of our clones.
#[repr(C)]
pub(crate) struct IoCtx {
    /// For [`Work::defer`](crate::blk::Work::defer); first field.
    node: LlNode,
    kind: Kind,
    dev: *const Dev,
    /// The bio given to us (for `FillWrite`: none).
    orig: Bio,
    /// `orig`'s accounting on our disk, ended when `orig` completes (on
    /// the clone that completes it: `Pass`, `Hit`, `MissFill`, `Write`).
    acct: Option<Acct>,
    sector: u64,
    sectors: u64,
    region: Option<Region>,
    ticket: Option<Ticket>,
    plan: Option<WritePlan>,
    /// `WriteCopy`: the `Write` clone that finishes the pair.
    partner: Bio,
    /// `Write`: clones of the pair still in flight, and their first error.
    remaining: AtomicU32,
    status: AtomicI32,
    copy_failed: bool,
}

/// Most pieces a read is cut into (see [`Dev::read`]).
const MAX_PIECES: usize = 4;

fn sectors_u32(len: u64) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

impl Dev {
    /// Builds the context of `clone`.
    ///
    /// # Safety
    ///
    /// `clone` is a fresh clone of the device's bio set; `acct` is `orig`'s
    /// accounting if this clone completes `orig`, else `None`.
    unsafe fn init_ctx(
        &self,
        clone: Bio,
        kind: Kind,
        orig: Bio,
        acct: Option<Acct>,
        sector: u64,
        sectors: u64,
    ) -> *mut IoCtx {
        // SAFETY: the clone is live and from `self.bs` (caller).
        let ctx = unsafe { clone.ctx::<IoCtx>() };
        // SAFETY: the front pad is ours, sized and aligned for an `IoCtx`
        // (`BioSet<IoCtx>`; front pads are aligned to pointers and the
        // bio allocation's alignment).
        unsafe {
            ptr::write(
                ctx,
                IoCtx {
                    node: LlNode::new(),
                    kind,
                    dev: self,
                    orig,
                    acct,
                    sector,
                    sectors,
                    region: None,
                    ticket: None,
                    plan: None,
                    partner: Bio(ptr::null_mut()),
                    remaining: AtomicU32::new(1),
                    status: AtomicI32::new(0),
                    copy_failed: false,
                },
            )
        };
        ctx
    }

    /// Passes `bio` (or what is left of it) to the backing device; `acct`
    /// is its accounting, `None` to start it now.
    ///
    /// # Safety
    ///
    /// `bio` was given to us and is not completed; `acct` is from
    /// [`Bio::start_acct`] on it.
    unsafe fn pass(&self, bio: Bio, sector: u64, sectors: u64, acct: Option<Acct>) {
        let acct = match acct {
            Some(a) => Some(a),
            // SAFETY: `bio` is live and ours (caller).
            None => unsafe { bio.start_acct() },
        };
        // SAFETY: `bio` is live (caller); the backing device is open.
        let clone = unsafe { bio.clone_to(self.backing.bdev(), sector, false, &self.bs) };
        // SAFETY: fresh clone of our bio set; it completes `bio`.
        unsafe { self.init_ctx(clone, Kind::Pass, bio, acct, sector, sectors) };
        self.pending.fetch_add(1, Ordering::Relaxed);
        // SAFETY: built above.
        unsafe { clone.submit() };
    }

    /// Handles a bio submitted to the disk.
    ///
    /// # Safety
    ///
    /// `bio` was submitted to this device's disk and is not completed.
    pub(crate) unsafe fn submit(&self, bio: Bio) {
        // SAFETY: live (caller).
        let info = unsafe { bio.info() };
        let cache = self.active_cache();
        let mode = self.mode.load(Ordering::Relaxed);
        match (info.op, cache) {
            (OP_READ, Some(c)) if mode != MODE_NONE && info.sectors > 0 => {
                // SAFETY: as the caller's.
                unsafe { self.read(c, bio, info.sector, u64::from(info.sectors)) }
            }
            (OP_WRITE | OP_DISCARD, Some(c)) if info.sectors > 0 => {
                // SAFETY: as the caller's.
                unsafe {
                    self.write(
                        c,
                        bio,
                        info.sector,
                        u64::from(info.sectors),
                        info.op == OP_WRITE,
                        mode,
                    )
                }
            }
            (OP_FLUSH, _) | (_, _) => {
                // SAFETY: as the caller's.
                unsafe { self.pass(bio, info.sector, u64::from(info.sectors), None) }
            }
        }
    }

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

    /// # Safety
    ///
    /// As for [`Dev::submit`].
    unsafe fn read(&self, c: &CacheSet, bio: Bio, mut sector: u64, sectors: u64) {
        let bypass = self.bypass(sector, sectors);
        // A bypassed read is served from the SSD only if it is one hit;
        // any read that would be cut in more than MAX_PIECES pieces goes to
        // the backing device whole: each miss piece would cost the HDD a
        // seek. The cache is never dirty, so the backing device is always
        // up to date.
        let end = sector + sectors;
        let max_fill = c.max_fill_sectors();
        let mut first = true;
        loop {
            let want = end - sector;
            let fill = !bypass && want <= max_fill;
            let (plan, invalidated) = {
                let mut g = c.core.lock();
                let pinned = |b: u32| c.pinned(b);
                let plan = if first {
                    let max = if bypass { 1 } else { MAX_PIECES };
                    g.read_first(self.id, sector, want, fill, max, &pinned)
                } else {
                    Some(g.read(self.id, sector, want, fill, &pinned))
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
                self.stats.count_miss(bypass, sectors);
                // SAFETY: as the caller's.
                unsafe { self.pass(bio, sector, sectors, None) };
                return;
            };
            c.maybe_gc(invalidated);
            let len = match plan {
                ReadPlan::Hit { len, .. }
                | ReadPlan::Fill { len, .. }
                | ReadPlan::Miss { len, .. } => len,
            };
            let piece = if len < want {
                // SAFETY: `bio` is live, not submitted, longer than `len`.
                match unsafe { bio.split(sectors_u32(len), &self.split_bs) } {
                    Some(p) => p,
                    None => {
                        // No split: undo the plan and pass the rest through.
                        self.unplan(c, &plan);
                        // SAFETY: as the caller's.
                        unsafe { self.pass(bio, sector, want, None) };
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
                } => {
                    self.stats.count_hit(bypass, len);
                    let ssd_sector = c.bucket_sector(bucket) + u64::from(offset);
                    // SAFETY: `piece` is live and ours.
                    let acct = unsafe { piece.start_acct() };
                    // SAFETY: `piece` is live; the SSD is open.
                    let clone =
                        unsafe { piece.clone_to(c.ssd.bdev(), ssd_sector, false, &self.bs) };
                    // SAFETY: fresh clone.
                    let ctx = unsafe { self.init_ctx(clone, Kind::Hit, piece, acct, sector, len) };
                    // SAFETY: just initialised, not shared yet.
                    unsafe {
                        (*ctx).region = Some(Region {
                            bucket,
                            offset,
                            len: sectors_u32(len),
                            gen: 0,
                        })
                    };
                    self.pending.fetch_add(1, Ordering::Relaxed);
                    // SAFETY: built above.
                    unsafe { clone.submit() };
                }
                ReadPlan::Fill {
                    len,
                    region,
                    ticket,
                } => {
                    self.stats.count_miss(bypass, len);
                    // SAFETY: `piece` is live and ours.
                    let acct = unsafe { piece.start_acct() };
                    // SAFETY: `piece` is live; the backing device is open.
                    let clone =
                        unsafe { piece.clone_to(self.backing.bdev(), sector, false, &self.bs) };
                    // SAFETY: fresh clone.
                    let ctx =
                        unsafe { self.init_ctx(clone, Kind::MissFill, piece, acct, sector, len) };
                    // SAFETY: just initialised, not shared yet.
                    unsafe {
                        (*ctx).region = Some(region);
                        (*ctx).ticket = Some(ticket);
                    }
                    self.pending.fetch_add(1, Ordering::Relaxed);
                    // SAFETY: built above.
                    unsafe { clone.submit() };
                }
                ReadPlan::Miss { len, collided } => {
                    self.stats.count_miss(bypass, len);
                    if collided {
                        self.stats.collisions.fetch_add(1, Ordering::Relaxed);
                    }
                    // SAFETY: `piece` is live and ours to complete.
                    unsafe { self.pass(piece, sector, len, None) };
                }
            }
            if len >= want {
                return;
            }
            // `bio` now holds the rest (the split took the front).
            sector += len;
        }
    }

    /// Undoes a read plan that will not be carried out.
    fn unplan(&self, c: &CacheSet, plan: &ReadPlan) {
        match *plan {
            ReadPlan::Hit { bucket, .. } => c.unpin(bucket),
            ReadPlan::Fill { region, ticket, .. } => {
                c.core.lock().inflight.end(ticket);
                c.unpin(region.bucket);
            }
            ReadPlan::Miss { .. } => {}
        }
    }

    /// # Safety
    ///
    /// As for [`Dev::submit`].
    unsafe fn write(
        &self,
        c: &CacheSet,
        bio: Bio,
        sector: u64,
        sectors: u64,
        data: bool,
        mode: u32,
    ) {
        let bypass = data && self.bypass(sector, sectors);
        let copy = data && mode == MODE_WRITETHROUGH && !bypass && sectors <= c.max_fill_sectors();
        let (plan, invalidated) = {
            let mut g = c.core.lock();
            let pinned = |b: u32| c.pinned(b);
            let plan = g.begin_write(self.id, sector, sectors, copy, &pinned);
            if let Some(r) = plan.region {
                c.pin(r.bucket);
            }
            (plan, g.buckets.stats().invalidated)
        };
        c.maybe_gc(invalidated);
        // SAFETY: `bio` is live and ours.
        let acct = unsafe { bio.start_acct() };
        // SAFETY: `bio` is live; the backing device is open.
        let clone = unsafe { bio.clone_to(self.backing.bdev(), sector, false, &self.bs) };
        // SAFETY: fresh clone; the pair's last completion completes `bio`.
        let ctx = unsafe { self.init_ctx(clone, Kind::Write, bio, acct, sector, sectors) };
        // SAFETY: just initialised, not shared yet.
        unsafe { (*ctx).plan = Some(plan) };
        self.pending.fetch_add(1, Ordering::Relaxed);
        if let Some(r) = plan.region {
            // SAFETY: as above, to the SSD.
            let copy = unsafe {
                bio.clone_to(
                    c.ssd.bdev(),
                    c.bucket_sector(r.bucket) + u64::from(r.offset),
                    true,
                    &self.bs,
                )
            };
            // SAFETY: fresh clone.
            let cctx = unsafe { self.init_ctx(copy, Kind::WriteCopy, bio, None, sector, sectors) };
            // SAFETY: neither context is shared yet.
            unsafe {
                (*cctx).partner = clone;
                (*ctx).remaining.store(2, Ordering::Relaxed);
            }
            // SAFETY: built above.
            unsafe { copy.submit() };
        }
        // SAFETY: built above.
        unsafe { clone.submit() };
    }

    /// The last clone for a bio given to us completed.
    fn done(&self) {
        self.pending.fetch_sub(1, Ordering::Release);
    }
}

/// A clone completed with `err` (0 or a negative errno); interrupt context.
///
/// # Safety
///
/// `bio` is one of our clones or copies (its front pad an [`IoCtx`]),
/// completing now.
pub(crate) unsafe fn endio(bio: Bio, err: i32) {
    // SAFETY: by the caller's contract.
    let ctx = unsafe { &mut *bio.ctx::<IoCtx>() };
    // SAFETY: a device outlives its clones (teardown waits for `pending`).
    let dev = unsafe { &*ctx.dev };
    match ctx.kind {
        Kind::Pass => {
            if err == 0 && ctx.sectors > 0 {
                dev.stats.add_backing_sectors(ctx.sectors);
            }
            // SAFETY: `orig` was given to us; this clone was its last.
            unsafe { ctx.orig.complete(err, ctx.acct) };
            // SAFETY: completed, not used again.
            unsafe { bio.put() };
            dev.done();
        }
        Kind::Hit => {
            let Some(c) = dev.cache_ref() else {
                return;
            };
            if let Some(r) = ctx.region {
                c.unpin(r.bucket);
            }
            if err != 0 {
                // Retry from the backing device, in process context.
                c.io_error(dev);
                dev.stats.ssd_retries.fetch_add(1, Ordering::Relaxed);
                // SAFETY: the node stays in the clone's front pad, which
                // lives until the deferred handler puts the clone.
                unsafe { c.defer(&mut ctx.node) };
                return;
            }
            dev.stats.add_cache_sectors(ctx.sectors);
            // SAFETY: as for `Pass`.
            unsafe { ctx.orig.complete(0, ctx.acct) };
            // SAFETY: completed, not used again.
            unsafe { bio.put() };
            dev.done();
        }
        Kind::MissFill => {
            let Some(c) = dev.cache_ref() else {
                return;
            };
            if err != 0 {
                if let (Some(r), Some(t)) = (ctx.region, ctx.ticket) {
                    c.core.lock().finish_fill(dev.id, ctx.sector, &r, t, false);
                    c.unpin(r.bucket);
                }
                // SAFETY: as for `Pass`.
                unsafe { ctx.orig.complete(err, ctx.acct) };
                // SAFETY: completed, not used again.
                unsafe { bio.put() };
                dev.done();
                return;
            }
            dev.stats.add_backing_sectors(ctx.sectors);
            // Copy and complete in process context.
            // SAFETY: as for `Hit`.
            unsafe { c.defer(&mut ctx.node) };
        }
        Kind::FillWrite => {
            if let (Some(c), Some(r), Some(t)) = (dev.cache_ref(), ctx.region, ctx.ticket) {
                if err != 0 {
                    c.io_error(dev);
                }
                let outcome = c
                    .core
                    .lock()
                    .finish_fill(dev.id, ctx.sector, &r, t, err == 0);
                c.unpin(r.bucket);
                dev.stats.fill_outcome(outcome);
            }
            // SAFETY: a completed copy, not used again.
            unsafe { bio.free_copy() };
            dev.done();
        }
        Kind::WriteCopy => {
            // SAFETY: the partner's context lives until both completed.
            let w = unsafe { &mut *ctx.partner.ctx::<IoCtx>() };
            if err != 0 {
                w.copy_failed = true;
                if let Some(c) = dev.cache_ref() {
                    c.io_error(dev);
                }
            }
            // SAFETY: completed; the pair's finish does not touch it.
            unsafe { bio.put() };
            // SAFETY: `w` is the `Write` clone's context.
            unsafe { write_part_done(ctx.partner, w, dev) };
        }
        Kind::Write => {
            if err != 0 {
                ctx.status.store(err, Ordering::Relaxed);
            }
            // SAFETY: `ctx` is this `Write` clone's context.
            unsafe { write_part_done(bio, ctx, dev) };
        }
    }
}

/// One clone of a write pair completed; the last one finishes the write.
///
/// # Safety
///
/// `wbio` is the `Write` clone and `w` its context.
unsafe fn write_part_done(wbio: Bio, w: &mut IoCtx, dev: &Dev) {
    if w.remaining.fetch_sub(1, Ordering::AcqRel) != 1 {
        return;
    }
    let err = w.status.load(Ordering::Relaxed);
    if let (Some(c), Some(plan)) = (dev.cache_ref(), w.plan) {
        let outcome =
            c.core
                .lock()
                .finish_write(dev.id, w.sector, &plan, err == 0 && !w.copy_failed);
        if let Some(r) = plan.region {
            c.unpin(r.bucket);
        }
        if let Some(o) = outcome {
            dev.stats.fill_outcome(o);
        }
    }
    if err == 0 {
        dev.stats.written(w.sectors);
    }
    // SAFETY: `orig` was given to us; both clones completed.
    unsafe { w.orig.complete(err, w.acct) };
    // SAFETY: completed, not used again.
    unsafe { wbio.put() };
    dev.done();
}

/// A context deferred by [`endio`]; process context.
///
/// # Safety
///
/// `node` is the `node` of a live clone's [`IoCtx`] given to `Work::defer`.
pub(crate) unsafe fn deferred(c: &CacheSet, node: *mut LlNode) {
    let ctx = node.cast::<IoCtx>();
    // SAFETY: `node` is the first field of a `#[repr(C)]` `IoCtx`.
    let ctx = unsafe { &mut *ctx };
    // The clone's bio follows its front pad: recover it from the context.
    let clone = ctx_bio(ctx);
    // SAFETY: a device outlives its clones.
    let dev = unsafe { &*ctx.dev };
    match ctx.kind {
        Kind::Hit => {
            // SAFETY: `orig` is live and not completed; pass it through.
            unsafe { dev.pass(ctx.orig, ctx.sector, ctx.sectors, ctx.acct) };
            // SAFETY: the failed clone, not used again.
            unsafe { clone.put() };
            dev.done();
        }
        Kind::MissFill => {
            let (Some(r), Some(t)) = (ctx.region, ctx.ticket) else {
                return;
            };
            let ssd_sector = c.bucket_sector(r.bucket) + u64::from(r.offset);
            // SAFETY: `orig` holds the data read (not completed yet).
            let copy = unsafe { ctx.orig.copy_to(c.ssd.bdev(), ssd_sector, &dev.bs) };
            // SAFETY: the data is copied (or not needed): complete it.
            unsafe { ctx.orig.complete(0, ctx.acct) };
            match copy {
                Some(copy) => {
                    // SAFETY: fresh copy of our bio set.
                    let cctx = unsafe {
                        dev.init_ctx(
                            copy,
                            Kind::FillWrite,
                            Bio(ptr::null_mut()),
                            None,
                            ctx.sector,
                            ctx.sectors,
                        )
                    };
                    // SAFETY: not shared yet.
                    unsafe {
                        (*cctx).region = Some(r);
                        (*cctx).ticket = Some(t);
                    }
                    // The fill keeps the device's pending count.
                    // SAFETY: built above.
                    unsafe { copy.submit() };
                }
                None => {
                    c.core.lock().finish_fill(dev.id, ctx.sector, &r, t, false);
                    c.unpin(r.bucket);
                    dev.done();
                }
            }
            // SAFETY: the completed read clone, not used again.
            unsafe { clone.put() };
        }
        _ => {}
    }
}

/// The bio whose front pad holds `ctx`.
fn ctx_bio(ctx: &mut IoCtx) -> Bio {
    let p: *mut IoCtx = ctx;
    // The bio starts right after its front pad (`bio_alloc_bioset`).
    Bio(p.wrapping_add(1).cast())
}
