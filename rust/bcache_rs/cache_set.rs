// SPDX-License-Identifier: GPL-2.0

//! A registered cache device: the SSD, its superblock, the core (index,
//! buckets, in-flight table) under the cache's irq-safe lock, the bucket
//! pins, the SSD error accounting and the background pass.

use crate::bcache::{self, BucketMeta};
use crate::blk::{new_irq_spinlock, BdevFile, IrqSpinLock, Live, OrigBio, WorkQueue};
use crate::dev::{Dev, DevStats};
use crate::format;
use crate::journal::Journal;
use crate::node_alloc::KmallocNodes;
use crate::persist::{self, IntentMap};
use crate::sums::{self, SumTable};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use kernel::alloc::{flags::__GFP_NOWARN, flags::GFP_ATOMIC, flags::GFP_KERNEL, KBox, KVec, VVec};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};
use kernel::workqueue::{impl_has_work, new_work, Work, WorkItem};

/// The core the cache's lock protects.
pub(crate) type Core = bcache::Cache<KmallocNodes, VVec<BucketMeta>>;

/// Largest fill: what one bio of pages of ours holds (256 pages).
const MAX_FILL_SECTORS: u64 = 256 * 8;
/// Default of `io_error_limit`: recent SSD errors that fail the cache.
pub(crate) const DEFAULT_ERROR_LIMIT: u32 = 8;
/// Default of `io_error_halflife`: SSD I/Os after which the count of recent
/// errors is halved (0: never).
pub(crate) const DEFAULT_ERROR_HALFLIFE: u32 = 4096;
/// Default of `index_memory_max`: 64 MiB of index nodes.
pub(crate) const DEFAULT_INDEX_MAX: usize = 64 << 20;
/// Smallest `index_memory_max` accepted.
pub(crate) const MIN_INDEX_MAX: usize = 16 << 10;

/// Regions a batch of parked writes records one by one: past them, the
/// whole device is recorded (one record).
const WHOLE_DEVICE_REGIONS: usize = 64;

/// A device's write-intent map in the journal of its cache: the regions
/// whose `DIRTY` is durable since the checkpoint at the tail. A device has
/// one while attached if that checkpoint holds its extents.
pub(crate) struct Intent {
    /// The device's number in that checkpoint.
    pub(crate) num: u32,
    /// The device's UUID.
    pub(crate) uuid: format::Uuid,
    pub(crate) map: IntentMap<KVec<AtomicU64>>,
}

impl Intent {
    /// The map of a device of `sectors` sectors, number `num` of the
    /// checkpoint, nothing recorded.
    pub(crate) fn new(num: u32, uuid: format::Uuid, sectors: u64) -> Result<Self> {
        let n = usize::try_from(IntentMap::<KVec<AtomicU64>>::words_for(sectors))
            .map_err(|_| EINVAL)?;
        let mut words = KVec::with_capacity(n, GFP_KERNEL)?;
        for _ in 0..n {
            words.push(AtomicU64::new(0), GFP_KERNEL)?;
        }
        let map = IntentMap::new(words, sectors).ok_or(EINVAL)?;
        Ok(Self { num, uuid, map })
    }
}

/// The per-bucket state of a cache of superblock `sb`, all free.
pub(crate) fn bucket_meta(sb: &format::Superblock) -> Result<VVec<BucketMeta>> {
    let nb = usize::try_from(sb.layout.data_buckets()).map_err(|_| EINVAL)?;
    // Failures are the caller's errno and log line: no allocation warning
    // (vmalloc's would come with a stack dump).
    Ok(VVec::from_elem(
        BucketMeta::FREE,
        nb,
        GFP_KERNEL | __GFP_NOWARN,
    )?)
}

/// The data checksums of a cache.
pub(crate) type Sums = SumTable<VVec<AtomicU32>>;

/// The data checksum table of a cache of superblock `sb`, all zero.
pub(crate) fn fresh_sums(sb: &format::Superblock) -> Result<Sums> {
    let l = &sb.layout;
    let nb = usize::try_from(l.data_buckets()).map_err(|_| EINVAL)?;
    let n = sums::table_len(nb, l.block_sectors, l.bucket_sectors).ok_or(EINVAL)?;
    let mut v = VVec::with_capacity(n, GFP_KERNEL | __GFP_NOWARN)?;
    for _ in 0..n {
        v.push(AtomicU32::new(0), GFP_KERNEL)?;
    }
    SumTable::new(v, l.block_sectors, l.bucket_sectors).ok_or(EINVAL)
}

/// The core of an empty cache of superblock `sb` (on the heap: its
/// in-flight table is kilobytes, which registration's deep stack must not
/// carry from frame to frame).
pub(crate) fn fresh_core(sb: &format::Superblock) -> Result<KBox<Core>> {
    let buckets = bcache::Buckets::new(bucket_meta(sb)?, sb.layout.bucket_sectors).ok_or(EINVAL)?;
    Ok(KBox::new(
        bcache::Cache::new(KmallocNodes(GFP_ATOMIC), buckets),
        GFP_KERNEL,
    )?)
}

/// A registered cache device.
///
/// # Invariants
///
/// `pins` has one counter per data bucket of `core`, counting the I/Os in
/// flight to or from the bucket; a pinned bucket is never invalidated.
/// `attached` counts the devices whose attachment holds this cache (changed
/// under the registry's mutex). `sums` has the data checksum of every cache
/// block that a current extent of `core` covers.
#[pin_data]
pub(crate) struct CacheSet {
    pub(crate) ssd: BdevFile,
    pub(crate) sb: format::Superblock,
    #[pin]
    pub(crate) core: IrqSpinLock<KBox<Core>>,
    pins: VVec<AtomicU32>,
    /// The data checksums (`crate::sums`: who writes and reads a block's).
    pub(crate) sums: Sums,
    /// Whether data is checksummed and hits verified (the module's
    /// `data_csum` when the cache was registered).
    pub(crate) csum: bool,
    /// Hits whose data did not match its checksums.
    csum_errors: AtomicU64,
    #[pin]
    gc_work: Work<CacheSet, 0>,
    wq: Arc<WorkQueue>,
    /// Recent SSD I/O errors (halved every `error_halflife` I/Os).
    errors: AtomicU32,
    /// Every SSD I/O error since registration.
    errors_total: AtomicU64,
    /// SSD I/Os completed (the clock of the error decay).
    ios: AtomicU64,
    pub(crate) error_limit: AtomicU32,
    pub(crate) error_halflife: AtomicU32,
    failed: AtomicBool,
    /// The invalidation count when the background pass last ran.
    gc_seen: AtomicU64,
    pub(crate) attached: AtomicU32,
    /// Extents the persistent index restored at registration.
    pub(crate) restored: u64,
    /// The journal (`None`: a volatile cache, its journal region too
    /// small). Taken by the registry (open, checkpoint, devices going
    /// uncached), the background pass (bucket records) and the devices'
    /// write-intent work; never under the core's lock.
    #[pin]
    pub(crate) journal: Mutex<Option<Journal>>,
    /// The write-intent map is not kept (no journal, a full ring, a
    /// failed cache): writes go on without records.
    intent_off: AtomicBool,
    _live: Live,
}

impl_has_work! {
    impl HasWork<Self, 0> for CacheSet { self.gc_work }
}

impl WorkItem<0> for CacheSet {
    type Pointer = Arc<CacheSet>;

    fn run(this: Arc<CacheSet>) {
        this.gc();
    }
}

impl CacheSet {
    /// A cache over the opened `ssd` with superblock `sb` and the `core`
    /// and `sums` that [`fresh_core`] and [`fresh_sums`] or the persistent
    /// index made for it (`restored` extents in it).
    pub(crate) fn new(
        ssd: BdevFile,
        sb: format::Superblock,
        wq: Arc<WorkQueue>,
        mut core: KBox<Core>,
        sums: Sums,
        restored: u64,
        journal: Option<Journal>,
    ) -> Result<Arc<Self>> {
        let nb = core.buckets.count();
        let mut pins = VVec::with_capacity(nb, GFP_KERNEL | __GFP_NOWARN)?;
        for _ in 0..nb {
            pins.push(AtomicU32::new(0), GFP_KERNEL)?;
        }
        core.index.set_max_bytes(DEFAULT_INDEX_MAX);
        // INVARIANT: one pin counter per bucket, none pinned; no device
        // attached.
        Arc::pin_init(
            pin_init!(CacheSet {
                ssd,
                sb,
                core <- new_irq_spinlock!(core, "bcache_rs cache"),
                pins,
                sums,
                csum: crate::blk::data_csum_param(),
                csum_errors: AtomicU64::new(0),
                gc_work <- new_work!("bcache_rs gc"),
                wq,
                errors: AtomicU32::new(0),
                errors_total: AtomicU64::new(0),
                ios: AtomicU64::new(0),
                error_limit: AtomicU32::new(DEFAULT_ERROR_LIMIT),
                error_halflife: AtomicU32::new(DEFAULT_ERROR_HALFLIFE),
                failed: AtomicBool::new(false),
                gc_seen: AtomicU64::new(0),
                attached: AtomicU32::new(0),
                restored,
                intent_off: AtomicBool::new(journal.is_none()),
                journal <- new_mutex!(journal, "bcache_rs journal"),
                _live: Live::new(&crate::blk::LIVE_CACHES),
            }),
            GFP_KERNEL,
        )
    }

    /// Whether bucket `b` has I/O in flight (unknown buckets count as
    /// pinned: they are never touched).
    pub(crate) fn pinned(&self, b: u32) -> bool {
        self.pins
            .get(b as usize)
            .map_or(true, |p| p.load(Ordering::Relaxed) > 0)
    }

    /// Pins bucket `b` (under the core's lock, so that a refill running
    /// under it never picks a bucket about to be read or written).
    pub(crate) fn pin(&self, b: u32) {
        if let Some(p) = self.pins.get(b as usize) {
            p.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Undoes one [`CacheSet::pin`] (any context, without the lock).
    pub(crate) fn unpin(&self, b: u32) {
        if let Some(p) = self.pins.get(b as usize) {
            p.fetch_sub(1, Ordering::Release);
        }
    }

    /// First SSD sector of data bucket `b`.
    pub(crate) fn bucket_sector(&self, b: u32) -> u64 {
        let l = &self.sb.layout;
        (l.first_bucket + u64::from(b)) * u64::from(l.bucket_sectors)
    }

    /// Largest fill or writethrough copy.
    pub(crate) fn max_fill_sectors(&self) -> u64 {
        MAX_FILL_SECTORS.min(u64::from(self.sb.layout.bucket_sectors))
    }

    /// The cache's block size in bytes.
    pub(crate) fn block_bytes(&self) -> u32 {
        self.sb.layout.block_sectors * 512
    }

    /// Whether the cache failed (past its error limit): devices go on
    /// uncached, and it is never used again.
    pub(crate) fn is_failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// Fails the cache (its journal cannot be written).
    pub(crate) fn fail(&self) {
        if !self.failed.swap(true, Ordering::Relaxed) {
            pr_err!(
                "cache {}: failed; its devices go on uncached\n",
                self.sb.set_uuid
            );
        }
    }

    /// Whether writes go on without write-intent records.
    pub(crate) fn intent_off(&self) -> bool {
        // Acquire: the records' state before it was given up is seen.
        self.intent_off.load(Ordering::Acquire)
    }

    /// Set under the journal's mutex.
    pub(crate) fn set_intent_off(&self, off: bool) {
        self.intent_off.store(off, Ordering::Release);
    }

    /// Whether a write of `sectors` from `sector` by a device whose map is
    /// `intent` must wait for write-intent records first (its cache
    /// failed: for the map to be given up).
    pub(crate) fn must_record(&self, intent: Option<&Intent>, sector: u64, sectors: u64) -> bool {
        match intent {
            Some(i) => !self.intent_off() && (self.is_failed() || !i.map.covers(sector, sectors)),
            None => false,
        }
    }

    /// Records what the parked writes `infos` (sector, sectors) of a
    /// device whose map is `intent` need before they go on: the regions
    /// not yet recorded (the whole device past [`WHOLE_DEVICE_REGIONS`]
    /// of them), or the map given up if the cache failed. Process context.
    pub(crate) fn record_intent(
        &self,
        intent: &Intent,
        infos: &mut dyn Iterator<Item = (u64, u64)>,
    ) {
        let mut guard = self.journal.lock();
        let Some(j) = guard.as_mut() else {
            return;
        };
        if self.intent_off() {
            return;
        }
        if self.is_failed() {
            j.give_up(self, "the cache failed");
            return;
        }
        let mut regions = [0u64; WHOLE_DEVICE_REGIONS];
        let mut n = 0;
        let mut whole = false;
        'bios: for (sector, sectors) in infos {
            let (first, last) = persist::dirty_regions(sector, sectors);
            for r in first..=last {
                if intent.map.recorded(r) || regions[..n].contains(&r) {
                    continue;
                }
                match regions.get_mut(n) {
                    Some(slot) => {
                        *slot = r;
                        n += 1;
                    }
                    None => {
                        whole = true;
                        break 'bios;
                    }
                }
            }
        }
        if whole {
            j.dirty_device(self, intent.uuid);
            intent.map.set_all();
            return;
        }
        j.dirty(self, intent.num, &regions[..n]);
        for &r in &regions[..n] {
            intent.map.set(r);
        }
    }

    /// An SSD I/O completed, with an error or not: counts it, decays the
    /// recent errors every `io_error_halflife` I/Os, and fails the cache
    /// when they reach `io_error_limit`. Returns the recent error count.
    pub(crate) fn ssd_io_done(&self, error: bool, dev_id: bcache::DevId) -> u32 {
        let n = self.ios.fetch_add(1, Ordering::Relaxed) + 1;
        let halflife = u64::from(self.error_halflife.load(Ordering::Relaxed));
        if halflife > 0 && n % halflife == 0 {
            let _ = self
                .errors
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |e| Some(e / 2));
        }
        if !error {
            return self.errors.load(Ordering::Relaxed);
        }
        self.errors_total.fetch_add(1, Ordering::Relaxed);
        let recent = self.errors.fetch_add(1, Ordering::Relaxed) + 1;
        let limit = self.error_limit.load(Ordering::Relaxed);
        if recent >= limit && !self.failed.swap(true, Ordering::Relaxed) {
            pr_err!(
                "cache {}: {} recent I/O errors (limit {}), the last from bcache_rs{}: failed; its devices go on uncached\n",
                self.sb.set_uuid,
                recent,
                limit,
                dev_id
            );
        }
        recent
    }

    /// Whether `orig`, whose clone read `sectors` at `offset` into `bucket`
    /// from the SSD, holds the data the checksums say the blocks hold.
    /// Hits only: the bucket is pinned, so no fill writes its blocks'
    /// checksums meanwhile (see `crate::sums`).
    pub(crate) fn hit_matches(
        &self,
        orig: &OrigBio,
        bucket: u32,
        offset: u32,
        sectors: u64,
    ) -> bool {
        if !self.csum {
            return true;
        }
        self.sums
            .slots(bucket, offset, sectors)
            // SAFETY: the clone completed (no I/O to the pages); the
            // bucket is pinned by the hit, so no fill or copy writes these
            // checksums (`crate::sums`).
            .is_some_and(|s| unsafe { orig.sums_match(self.sums.block_bytes(), s) })
    }

    /// Stores the checksums of `region`'s new data with `store` (which
    /// computes them from the pages about to be written there, given the
    /// block size and the region's slots); `true` if it did, or if the
    /// cache does not checksum.
    pub(crate) fn store_sums(
        &self,
        region: &bcache::Region,
        store: impl FnOnce(u32, &[AtomicU32]) -> bool,
    ) -> bool {
        !self.csum
            || self
                .sums
                .slots(region.bucket, region.offset, u64::from(region.len))
                .is_some_and(|s| store(self.sums.block_bytes(), s))
    }

    /// A hit of `sectors` of `dev` at `sector` read data from `bucket` (at
    /// `offset`) that does not match its checksums: counted, said once,
    /// and the range dropped from the index (the caller reads the backing
    /// device instead).
    pub(crate) fn csum_mismatch(
        &self,
        dev: &Dev,
        sector: u64,
        sectors: u64,
        bucket: u32,
        offset: u32,
    ) {
        DevStats::add(&dev.stats.csum_errors, 1);
        if self.csum_errors.fetch_add(1, Ordering::Relaxed) == 0 {
            pr_err!(
                "cache {}: data read from SSD sector {} for bcache_rs{} sector {} (+{}) does not match its checksum: read from the backing device, the extent dropped (further mismatches are counted in csum_errors)\n",
                self.sb.set_uuid,
                self.bucket_sector(bucket) + u64::from(offset),
                dev.id,
                sector,
                sectors
            );
        }
        self.drop_range(dev.id, sector, sectors);
    }

    /// Drops the cached sectors of `dev` in a range that one extent holds
    /// (a hit's): one call of the index's invalidation.
    pub(crate) fn drop_range(&self, dev: bcache::DevId, sector: u64, sectors: u64) {
        let mut g = self.core.lock();
        let core: &mut Core = &mut g;
        core.index
            .invalidate(dev, sector, sectors, &mut core.buckets);
    }

    /// Hits whose data did not match its checksums.
    pub(crate) fn csum_errors(&self) -> u64 {
        self.csum_errors.load(Ordering::Relaxed)
    }

    /// SSD errors: (recent, total).
    pub(crate) fn errors(&self) -> (u32, u64) {
        (
            self.errors.load(Ordering::Relaxed),
            self.errors_total.load(Ordering::Relaxed),
        )
    }

    /// Queues the background pass if buckets were invalidated since it
    /// last ran (any context).
    pub(crate) fn maybe_gc(this: &Arc<Self>, invalidated: u64) {
        if invalidated != this.gc_seen.load(Ordering::Relaxed) {
            // Already queued: the pass will see these invalidations too.
            let _ = this.wq.queue().enqueue::<Arc<CacheSet>, 0>(this.clone());
        }
    }

    /// The background pass: journals the records of invalidated buckets
    /// (which are reused once they are durable), then removes the stale
    /// extents of the index, a batch per hold of the lock.
    fn gc(&self) {
        let waiting = self.core.lock().buckets.records_waiting();
        if waiting {
            if let Some(j) = self.journal.lock().as_mut() {
                j.flush_buckets(self);
            }
        }
        let seen = self.core.lock().buckets.stats().invalidated;
        if seen == self.gc_seen.load(Ordering::Relaxed) {
            return;
        }
        let mut cursor = Some(0u64);
        while let Some(k) = cursor {
            let mut g = self.core.lock();
            let core: &mut Core = &mut g;
            cursor = core.index.gc_step(k, &core.buckets).0;
        }
        self.gc_seen.store(seen, Ordering::Relaxed);
    }

    /// Removes every extent of device `id` from the index, a batch per hold
    /// of the lock (the device has no I/O in flight).
    pub(crate) fn remove_dev(&self, id: bcache::DevId) {
        loop {
            let mut g = self.core.lock();
            let core: &mut Core = &mut g;
            if core.index.remove_dev(id, 256, &mut core.buckets) {
                break;
            }
        }
    }

    /// The SSD's name (`nvme0n1`), NUL-padded.
    pub(crate) fn name(&self) -> [u8; 32] {
        self.ssd.name()
    }
}
