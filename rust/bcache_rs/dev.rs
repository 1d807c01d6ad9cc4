// SPDX-License-Identifier: GPL-2.0

//! A backing device and its `/dev/bcache_rs<N>`: its settings, statistics,
//! and the two rules that make its I/O safe against attach, detach and
//! teardown.
//!
//! - Every bio of the data path holds an [`IoRef`]: an `Arc<Dev>` that also
//!   counts the device's I/O in flight. The device (its backing device, bio
//!   sets, cache attachment) therefore outlives every bio in flight by
//!   construction.
//! - The cache a device is attached to changes only while the device is
//!   [`Quiesced`]: its disk's queue frozen (no submitter inside) and no
//!   [`IoRef`] left. So an `IoRef` reads the attachment without a lock or a
//!   reference count of its own ([`IoRef::cache`]), and an I/O never sees
//!   its cache change under it. Attaching under live I/O thus drains the
//!   writes submitted uncached before: a fill planned after the attach
//!   cannot race with a write the in-flight table never saw.

use crate::bcache::{self, FillOutcome};
use crate::blk::{
    BdevFile, BioSet, DeferList, Disk, Frozen, IoCell, Live, OrigBio, ParkIter, ParkList,
};
use crate::cache_set::{CacheSet, Intent};
use crate::datapath::IoCtx;
use crate::format;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{Arc, ArcBorrow, Mutex};
use kernel::workqueue::{impl_has_work, new_work, Work, WorkItem};

/// A device's cache mode.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum CacheMode {
    /// Misses are filled; writes go to the backing device and the cache.
    Writethrough,
    /// Misses are filled; writes invalidate and go to the backing device.
    Writearound,
    /// Nothing is cached; writes invalidate.
    None,
}

impl CacheMode {
    /// Every mode, in the order `cache_mode` lists them.
    pub(crate) const ALL: [CacheMode; 3] = [
        CacheMode::Writethrough,
        CacheMode::Writearound,
        CacheMode::None,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            CacheMode::Writethrough => "writethrough",
            CacheMode::Writearound => "writearound",
            CacheMode::None => "none",
        }
    }

    fn from_u32(v: u32) -> CacheMode {
        Self::ALL
            .get(v as usize)
            .copied()
            .unwrap_or(CacheMode::Writethrough)
    }

    fn to_u32(self) -> u32 {
        match self {
            CacheMode::Writethrough => 0,
            CacheMode::Writearound => 1,
            CacheMode::None => 2,
        }
    }
}

/// The bio sets of the data path, one pair for the module: a device's
/// registration creates no slab cache (and none can fail half-way).
pub(crate) struct BioSets {
    /// Our bios, with their context in front.
    pub(crate) clones: BioSet<IoCtx>,
    /// Splits of the bios given to us at extent boundaries (a set of their
    /// own, so that a split never waits for a clone of the same
    /// submission).
    pub(crate) splits: BioSet<()>,
}

impl BioSets {
    pub(crate) fn new() -> Result<Arc<Self>> {
        Ok(Arc::new(
            BioSets {
                clones: BioSet::new()?,
                splits: BioSet::new()?,
            },
            GFP_KERNEL,
        )?)
    }
}

/// Default `sequential_cutoff`: 4 MiB.
pub(crate) const DEFAULT_SEQ_CUTOFF: u64 = 4 << 20;

/// Per-device statistics.
#[derive(Default)]
pub(crate) struct DevStats {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) bypass_hits: AtomicU64,
    pub(crate) bypass_misses: AtomicU64,
    pub(crate) collisions: AtomicU64,
    pub(crate) fills: AtomicU64,
    pub(crate) cache_sectors: AtomicU64,
    pub(crate) backing_sectors: AtomicU64,
    pub(crate) written_sectors: AtomicU64,
    pub(crate) ssd_retries: AtomicU64,
    /// Hits whose data did not match its checksums (read again from the
    /// backing device).
    pub(crate) csum_errors: AtomicU64,
    /// Fills and writethrough copies skipped for lack of memory.
    pub(crate) alloc_failures: AtomicU64,
}

impl DevStats {
    pub(crate) fn count_hit(&self, bypass: bool) {
        let c = if bypass {
            &self.bypass_hits
        } else {
            &self.hits
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_miss(&self, bypass: bool) {
        let c = if bypass {
            &self.bypass_misses
        } else {
            &self.misses
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// Sets every counter back to 0 (`clear_stats`); I/O in flight may
    /// count in the old or the new period.
    pub(crate) fn clear(&self) {
        for c in [
            &self.hits,
            &self.misses,
            &self.bypass_hits,
            &self.bypass_misses,
            &self.collisions,
            &self.fills,
            &self.cache_sectors,
            &self.backing_sectors,
            &self.written_sectors,
            &self.ssd_retries,
            &self.csum_errors,
            &self.alloc_failures,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }

    pub(crate) fn fill_outcome(&self, o: FillOutcome) {
        match o {
            FillOutcome::Inserted => Self::add(&self.fills, 1),
            FillOutcome::Collided => Self::add(&self.collisions, 1),
            FillOutcome::Dropped(_) => {}
        }
    }
}

/// A backing device and its `/dev/bcache_rs<N>`.
///
/// # Invariants
///
/// - `inflight` counts the live [`IoRef`]s of the device and the bios in
///   `parked` (each holds the count of the reference it was parked with);
/// - `cache` is read only through an [`IoRef`] or while [`Quiesced`], and
///   written only while [`Quiesced`]; `control` holds the same cache for
///   readers without either (sysfs); `intent` (the device's write-intent
///   map in that cache's journal) likewise;
/// - `stopping`, once set (under the disk's open mutex, with no opener),
///   stays set and every later open is refused;
/// - the disk has fewer sectors than [`bcache::MAX_DEV_SECTORS`], so every
///   bio's sectors have index keys.
#[pin_data]
pub(crate) struct Dev {
    pub(crate) id: bcache::DevId,
    pub(crate) uuid: format::Uuid,
    /// Registered with `trust=1`: trusted not to be written while it is
    /// not registered, so the cache keeps its extents across unregisters.
    pub(crate) trust: bool,
    pub(crate) backing: BdevFile,
    /// Where the data starts on the backing device, in sectors (a formatted
    /// device's data offset; 0 in place).
    pub(crate) data_offset: u64,
    /// The module's bio sets.
    pub(crate) sets: Arc<BioSets>,
    /// The disk's logical block size (the backing device's).
    pub(crate) lbs: u32,
    mode: AtomicU32,
    pub(crate) seq_cutoff: AtomicU64,
    pub(crate) seq_last_end: AtomicU64,
    pub(crate) seq_run: AtomicU64,
    inflight: AtomicU64,
    cache: IoCell<Option<Arc<CacheSet>>>,
    intent: IoCell<Option<Intent>>,
    #[pin]
    control: Mutex<Option<Arc<CacheSet>>>,
    /// A write or discard went to the backing device without a cache
    /// since registration or the last attach: a checkpoint's extents of it
    /// are stale.
    written_uncached: AtomicBool,
    stopping: AtomicBool,
    /// The machine is going down: every I/O fails (set while quiesced).
    down: AtomicBool,
    pub(crate) stats: DevStats,
    /// Completions that need process context, for `defer_work`.
    pub(crate) deferred: DeferList<IoCtx>,
    #[pin]
    defer_work: Work<Dev, 1>,
    /// Writes waiting for their write-intent records, for `park_work`.
    parked: ParkList,
    #[pin]
    park_work: Work<Dev, 2>,
    wq: Arc<crate::blk::WorkQueue>,
    _live: Live,
}

impl_has_work! {
    impl HasWork<Self, 1> for Dev { self.defer_work }
    impl HasWork<Self, 2> for Dev { self.park_work }
}

impl WorkItem<2> for Dev {
    type Pointer = Arc<Dev>;

    fn run(this: Arc<Dev>) {
        if let Some(p) = Dev::take_parked(&this) {
            crate::datapath::unpark(p);
        }
    }
}

impl WorkItem<1> for Dev {
    type Pointer = Arc<Dev>;

    fn run(this: Arc<Dev>) {
        for done in this.deferred.take_all() {
            crate::datapath::deferred(done);
        }
    }
}

impl Dev {
    /// A device over the opened `backing`, uncached, with number `id`.
    pub(crate) fn new(
        id: bcache::DevId,
        uuid: format::Uuid,
        trust: bool,
        backing: BdevFile,
        data_offset: u64,
        sets: Arc<BioSets>,
        wq: Arc<crate::blk::WorkQueue>,
    ) -> Result<Arc<Self>> {
        let lbs = backing.logical_block_size();
        // INVARIANT: no I/O, no cache, not stopping; the caller checked the
        // size.
        Arc::pin_init(
            pin_init!(Dev {
                id,
                uuid,
                trust,
                backing,
                data_offset,
                sets,
                lbs,
                mode: AtomicU32::new(CacheMode::Writethrough.to_u32()),
                seq_cutoff: AtomicU64::new(DEFAULT_SEQ_CUTOFF),
                seq_last_end: AtomicU64::new(u64::MAX),
                seq_run: AtomicU64::new(0),
                inflight: AtomicU64::new(0),
                cache: IoCell::new(None),
                intent: IoCell::new(None),
                control <- new_mutex!(None),
                written_uncached: AtomicBool::new(false),
                stopping: AtomicBool::new(false),
                down: AtomicBool::new(false),
                stats: DevStats::default(),
                deferred: DeferList::new(),
                defer_work <- new_work!("bcache_rs deferred"),
                parked: ParkList::new(),
                park_work <- new_work!("bcache_rs write intent"),
                wq,
                _live: Live::new(&crate::blk::LIVE_DEVS),
            }),
            GFP_KERNEL,
        )
    }

    pub(crate) fn mode(&self) -> CacheMode {
        CacheMode::from_u32(self.mode.load(Ordering::Relaxed))
    }

    pub(crate) fn set_mode(&self, m: CacheMode) {
        self.mode.store(m.to_u32(), Ordering::Relaxed);
    }

    /// Whether a cache is attached (it may have failed).
    pub(crate) fn is_attached(&self) -> bool {
        self.control.lock().is_some()
    }

    /// The attached cache's state: `None` without one, else whether it
    /// failed.
    pub(crate) fn cache_failed(&self) -> Option<bool> {
        self.control.lock().as_ref().map(|c| c.is_failed())
    }

    /// The backing device's data area as the target of a bio.
    pub(crate) fn backing_target(&self) -> crate::blk::Target<'_> {
        self.backing.target_at(self.data_offset)
    }

    /// Whether the machine is going down (see [`Dev::set_down`]).
    pub(crate) fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    /// From now on every I/O of the device fails: the cache's checkpoint,
    /// written next, stays true until the machine is down. The caller holds
    /// the device quiesced, so no I/O is in flight.
    pub(crate) fn set_down(&self) {
        self.down.store(true, Ordering::Release);
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Marks the device as stopping if `openers` is 0: from now on every
    /// open of its disk is refused. The caller holds the disk's open mutex
    /// (the `openers` count comes from its guard).
    pub(crate) fn begin_stop(&self, openers: u32) -> Result {
        if openers > 0 {
            return Err(EBUSY);
        }
        self.stopping.store(true, Ordering::Release);
        Ok(())
    }

    /// Hands a completion to process context.
    pub(crate) fn defer(this: &Arc<Dev>, done: crate::blk::Done<IoCtx>) {
        if this.deferred.push(done) {
            // Already queued: the run takes this one too (it takes the
            // whole list after being dequeued).
            let _ = this.wq.queue().enqueue::<Arc<Dev>, 1>(this.clone());
        }
    }

    /// A write or discard went to the backing device uncached.
    pub(crate) fn note_uncached_write(&self) {
        if !self.written_uncached.load(Ordering::Relaxed) {
            self.written_uncached.store(true, Ordering::Relaxed);
        }
    }

    /// Whether a write or discard went to the backing device uncached since
    /// registration or the last attach.
    pub(crate) fn written_uncached(&self) -> bool {
        self.written_uncached.load(Ordering::Relaxed)
    }

    /// The device is being attached (quiesced): its writes go through the
    /// cache from now on.
    pub(crate) fn cached_from_now(&self) {
        self.written_uncached.store(false, Ordering::Relaxed);
    }

    /// Holds `bio` (submitted to the disk, its accounting not started)
    /// until its write-intent records are durable; `io` is its reference,
    /// kept counted while it is parked.
    pub(crate) fn park(io: IoRef, bio: OrigBio) {
        // INVARIANT: the count of `io` stays, for the bio parked now (its
        // `Arc` goes: the queued work item holds the device).
        let dev = io.keep_count();
        if dev.parked.push(bio) {
            let _ = dev.wq.queue().enqueue::<Arc<Dev>, 2>(dev.clone());
        }
    }

    /// The parked writes, each with its reference (`None`: none).
    pub(crate) fn take_parked(this: &Arc<Dev>) -> Option<Parked> {
        let bios = this.parked.take_all();
        if bios.is_empty() {
            return None;
        }
        // INVARIANT: each bio holds one count of `inflight`.
        Some(Parked {
            dev: this.clone(),
            bios,
        })
    }

    /// Waits until no I/O of the device is in flight, with its disk's queue
    /// frozen if it has one: then its attachment may change.
    ///
    /// # Safety
    ///
    /// `disk` is this device's disk (made with it as its owner), or `None`
    /// if the device has no disk (none yet, or it was removed).
    pub(crate) unsafe fn quiesce<'a>(&'a self, disk: Option<&'a Disk<Dev>>) -> Quiesced<'a> {
        let frozen = disk.map(|d| d.freeze());
        while self.inflight.load(Ordering::Acquire) != 0 {
            crate::blk::msleep(1);
        }
        Quiesced {
            dev: self,
            _frozen: frozen,
        }
    }

    /// Attaches or detaches the device's cache, with its write-intent map
    /// in that cache's journal (see [`Quiesced`]); returns the previous
    /// cache.
    pub(crate) fn set_cache(
        &self,
        q: &Quiesced<'_>,
        cache: Option<Arc<CacheSet>>,
        intent: Option<Intent>,
    ) -> Option<Arc<CacheSet>> {
        if !core::ptr::eq(q.dev, self) {
            // Another device's proof: change nothing.
            return cache;
        }
        *self.control.lock() = cache.clone();
        // SAFETY: `q`: no `IoRef` or parked bio exists or can be made, so no
        // `IoCell::get` borrow is alive; the registry's mutex orders writes.
        drop(unsafe { self.intent.set(intent) });
        // SAFETY: as above.
        unsafe { self.cache.set(cache) }
    }

    /// The attachment while quiesced (the registry's view).
    pub(crate) fn cache_quiesced<'a>(&'a self, q: &'a Quiesced<'_>) -> Option<&'a Arc<CacheSet>> {
        if !core::ptr::eq(q.dev, self) {
            return None;
        }
        // SAFETY: no `set` can run: it needs the registry's mutex, held by
        // the owner of `q` for its life.
        unsafe { self.cache.get() }.as_ref()
    }
}

impl crate::blk::DiskOps for Dev {
    fn submit(this: ArcBorrow<'_, Self>, bio: crate::blk::OrigBio) {
        let dev: &Dev = &this;
        crate::datapath::submit(Submitting { dev, arc: this }, bio);
    }

    fn open(this: ArcBorrow<'_, Self>) -> Result {
        if this.is_stopping() {
            return Err(ENXIO);
        }
        Ok(())
    }
}

/// A bio is being submitted to the device's disk: its queue is entered (the
/// submit callback), or it was parked and holds an [`IoRef`]; either way
/// the device cannot be quiesced and its attachment cannot change for the
/// life of this value.
pub(crate) struct Submitting<'a> {
    dev: &'a Dev,
    arc: ArcBorrow<'a, Dev>,
}

impl<'a> Submitting<'a> {
    /// The submission of a bio taken from [`Parked`], whose reference is
    /// `io`.
    pub(crate) fn parked(io: &'a IoRef) -> Self {
        Self {
            dev: &io.dev,
            arc: io.dev.as_arc_borrow(),
        }
    }

    pub(crate) fn dev(&self) -> &'a Dev {
        self.dev
    }

    /// The device's cache, if attached (it may have failed).
    pub(crate) fn cache(&self) -> Option<&'a Arc<CacheSet>> {
        // SAFETY: a submit callback (queue entered) or a counted `IoRef`
        // borrowed for `'a`: no quiesce completes, `set_cache` cannot run.
        unsafe { self.dev.cache.get() }.as_ref()
    }

    /// An I/O reference for one bio of this submission.
    pub(crate) fn io(&self) -> IoRef {
        IoRef::new(self.arc)
    }

    /// The device's write-intent map in its cache's journal, if it has one.
    pub(crate) fn intent(&self) -> Option<&'a Intent> {
        // SAFETY: as for `cache`.
        unsafe { self.dev.intent.get() }.as_ref()
    }
}

/// Proof that a device has no I/O in flight and none can start: its disk's
/// queue is frozen (or it has none) and it has no [`IoRef`]. Made by
/// [`Dev::quiesce`]; the queue is unfrozen on drop.
pub(crate) struct Quiesced<'a> {
    dev: &'a Dev,
    _frozen: Option<Frozen<'a>>,
}

/// An I/O of a device in flight: keeps the device alive and counted, and
/// gives access to its cache.
///
/// # Invariants
///
/// `dev.inflight` counts this reference.
pub(crate) struct IoRef {
    dev: Arc<Dev>,
}

impl IoRef {
    /// The reference of a bio just submitted to the device's disk (its
    /// queue is entered, so the device is not quiesced).
    fn new(dev: ArcBorrow<'_, Dev>) -> Self {
        dev.inflight.fetch_add(1, Ordering::Relaxed);
        // INVARIANT: counted just now.
        Self { dev: dev.into() }
    }

    /// One more reference of the same device (for a second bio of the same
    /// I/O).
    pub(crate) fn another(&self) -> Self {
        self.dev.inflight.fetch_add(1, Ordering::Relaxed);
        // INVARIANT: counted just now.
        Self {
            dev: self.dev.clone(),
        }
    }

    pub(crate) fn dev(&self) -> &Arc<Dev> {
        &self.dev
    }

    /// The device, this reference's count of `inflight` left in place for
    /// the caller to account for (a parked bio).
    fn keep_count(self) -> Arc<Dev> {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again: its `dev` is
        // moved out once.
        unsafe { core::ptr::read(&this.dev) }
    }

    /// The device's cache, if attached (it may have failed).
    pub(crate) fn cache(&self) -> Option<&Arc<CacheSet>> {
        // SAFETY: this reference is counted in `inflight` (type invariant),
        // so the device is not quiesced and `set_cache` cannot run for the
        // life of `&self`.
        unsafe { self.dev.cache.get() }.as_ref()
    }
}

/// Writes parked by [`Dev::park`], taken by its work item.
///
/// # Invariants
///
/// Each bio of `bios` holds one count of `dev.inflight`.
pub(crate) struct Parked {
    dev: Arc<Dev>,
    bios: ParkIter,
}

impl Parked {
    /// The device's cache and write-intent map (stable while a parked bio
    /// is left: it holds a reference); none once every bio was taken.
    pub(crate) fn attachment(&self) -> (Option<&Arc<CacheSet>>, Option<&Intent>) {
        if self.bios.is_empty() {
            return (None, None);
        }
        // SAFETY: a bio left is counted in `inflight` (type invariant):
        // `set_cache` cannot run for the life of `&self`.
        unsafe {
            (
                self.dev.cache.get().as_ref(),
                self.dev.intent.get().as_ref(),
            )
        }
    }

    /// The (sector, sectors) of each parked bio.
    pub(crate) fn ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.bios.infos().map(|i| (i.sector, u64::from(i.sectors)))
    }
}

impl Iterator for Parked {
    type Item = (IoRef, OrigBio);

    fn next(&mut self) -> Option<(IoRef, OrigBio)> {
        let bio = self.bios.next()?;
        // INVARIANT: the bio's count becomes this reference's.
        Some((
            IoRef {
                dev: self.dev.clone(),
            },
            bio,
        ))
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        // Each bio left is failed (`OrigBio`'s drop) and its count given
        // back.
        for (io, bio) in self.by_ref() {
            drop(bio);
            drop(io);
        }
    }
}

impl Drop for IoRef {
    fn drop(&mut self) {
        // Release: everything this I/O did with the attachment happens
        // before a quiesce that sees the count reach 0.
        self.dev.inflight.fetch_sub(1, Ordering::Release);
    }
}
