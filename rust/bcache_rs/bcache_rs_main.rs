// SPDX-License-Identifier: GPL-2.0

//! bcache_rs: an SSD cache for block devices, in Rust, after the 2010
//! bcache RFC.
//!
//! - `echo /dev/nvme0n1 > /sys/kernel/bcache_rs/register_cache` opens a
//!   cache device formatted by `bcache-rs format-cache` (exclusively) and
//!   brings it up: `/sys/kernel/bcache_rs/cache/`.
//! - `echo "<uuid> /dev/vda" > /sys/kernel/bcache_rs/register_dev` attaches
//!   a backing device in place (its data is used as it is) and adds
//!   `/dev/bcache_rs<N>`, the same size and content; its settings and
//!   statistics are in `/sys/block/bcache_rs<N>/bcache_rs/`.
//! - The data path is `datapath.rs`; what the cache knows (the B+tree
//!   index of extents, buckets, collisions) is the kernel-agnostic core
//!   `rust/bcache`; every C call is in `blk.rs`.
//!
//! Documentation/admin-guide/bcache_rs.rst is the operator's guide and
//! Documentation/ABI/testing/sysfs-bcache_rs the sysfs ABI.

use core::ffi::c_void;
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use kernel::alloc::{flags::GFP_ATOMIC, flags::GFP_KERNEL, KVec, VVec};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex, UniqueArc};

#[allow(unreachable_pub, dead_code)]
#[path = "../bcache/src/bcache.rs"]
mod bcache;
#[path = "blk.rs"]
mod blk;
#[allow(unreachable_pub, dead_code)]
#[path = "../btree/src/btree.rs"]
mod btree;
#[path = "datapath.rs"]
mod datapath;
#[allow(unreachable_pub, dead_code)]
#[path = "../bcache_format/src/format.rs"]
mod format;
#[path = "../kglue/node_alloc.rs"]
mod node_alloc;

use bcache::{BucketMeta, Buckets, FillOutcome};
use blk::{Attr, BdevFile, Bio, BioSet, Disk, IrqLock, KObj, LlNode, Parent, Work};
use datapath::IoCtx;
use node_alloc::KmallocNodes;

module! {
    type: BcacheRs,
    name: "bcache_rs",
    author: "rust-kmods",
    description: "bcache_rs: an SSD cache for block devices, indexed by a B+tree",
    license: "GPL",
}

pub(crate) const MODE_WRITETHROUGH: u32 = 0;
// 1 is writearound: writes invalidate and go to the backing device only.
pub(crate) const MODE_NONE: u32 = 2;
const MODES: [&str; 3] = ["writethrough", "writearound", "none"];

/// Default `sequential_cutoff`: 4 MiB.
const DEFAULT_SEQ_CUTOFF: u64 = 4 << 20;
/// SSD I/O errors after which the cache is detached.
const ERROR_LIMIT: u32 = 8;
/// Most backing devices (minors).
const MAX_DEVS: u32 = 256;
// A device's number is its index key's `DevId`.
const _: () = assert!(MAX_DEVS <= bcache::DevId::MAX as u32 + 1);
/// Largest fill: what one copy bio holds (256 pages).
const MAX_FILL_SECTORS: u64 = 256 * 8;

/// Work kinds (`bcache_rs_work`'s `what`).
const WORK_GC: i32 = 1;
const WORK_REAP: i32 = 2;

/// Attribute bases (`bcache_rs_show`/`_store`'s index).
const ROOT_BASE: i32 = 0;
const CACHE_BASE: i32 = 100;
const DEV_BASE: i32 = 200;

const RO: u16 = 0o444;
const WO: u16 = 0o200;
const RW: u16 = 0o644;

macro_rules! attrs {
    ($($name:literal $mode:expr),* $(,)?) => {
        &[$(Attr { name: concat!($name, "\0").as_bytes(), mode: $mode }),*]
    };
}

static ROOT_ATTRS: &[Attr] = attrs!["register_cache" WO, "register_dev" WO];
static CACHE_ATTRS: &[Attr] = attrs![
    "unregister" WO, "set_uuid" RO, "device" RO, "state" RO, "block_size" RO,
    "bucket_size" RO, "buckets_total" RO, "buckets_free" RO, "buckets_in_use" RO,
    "index_entries" RO, "index_memory" RO, "stale_dropped" RO, "invalidated" RO,
    "io_errors" RO, "attached" RO,
];
static DEV_ATTRS: &[Attr] = attrs![
    "stop" WO, "uuid" RO, "backing_dev" RO, "state" RO, "cache_mode" RW,
    "sequential_cutoff" RW, "hits" RO, "misses" RO, "bypass_hits" RO,
    "bypass_misses" RO, "hit_ratio" RO, "miss_collisions" RO, "fills" RO,
    "bytes_from_cache" RO, "bytes_from_backing" RO, "bytes_written" RO,
    "ssd_read_retries" RO, "clear_stats" WO,
];

type Core = bcache::Cache<KmallocNodes, VVec<BucketMeta>>;

/// A registered cache device.
///
/// # Invariants
///
/// `attached` counts the devices whose `cache` points here; the registry
/// does not drop the cache while it is not 0.
pub(crate) struct CacheSet {
    pub(crate) ssd: BdevFile,
    sb: format::Superblock,
    pub(crate) core: IrqLock<Core>,
    pins: VVec<AtomicU32>,
    work: Option<Work>,
    errors: AtomicU32,
    failed: AtomicBool,
    attached: AtomicU32,
    /// Attached devices asked to stop: `unregister` waits for them instead
    /// of refusing.
    stopping_devs: AtomicU32,
    unregister: AtomicBool,
    gc_seen: AtomicU64,
    registry: *const Registry,
}

// SAFETY: every field is thread-safe; `registry` outlives the cache.
unsafe impl Send for CacheSet {}
// SAFETY: as above.
unsafe impl Sync for CacheSet {}

impl CacheSet {
    pub(crate) fn pinned(&self, b: u32) -> bool {
        self.pins
            .get(b as usize)
            .map_or(true, |p| p.load(Ordering::Relaxed) > 0)
    }

    pub(crate) fn pin(&self, b: u32) {
        if let Some(p) = self.pins.get(b as usize) {
            p.fetch_add(1, Ordering::Relaxed);
        }
    }

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

    pub(crate) fn max_fill_sectors(&self) -> u64 {
        MAX_FILL_SECTORS.min(u64::from(self.sb.layout.bucket_sectors))
    }

    /// An SSD I/O error: past [`ERROR_LIMIT`], the cache is detached.
    pub(crate) fn io_error(&self, dev: &Dev) {
        let n = self.errors.fetch_add(1, Ordering::Relaxed) + 1;
        if n == ERROR_LIMIT && !self.failed.swap(true, Ordering::Relaxed) {
            pr_err!(
                "cache {}: {} I/O errors, detaching it: devices go on uncached (last on bcache_rs{})\n",
                self.sb.set_uuid,
                n,
                dev.id
            );
        }
    }

    /// Queues the background pass if buckets were invalidated since it ran.
    pub(crate) fn maybe_gc(&self, invalidated: u64) {
        if invalidated != self.gc_seen.load(Ordering::Relaxed) {
            if let Some(w) = &self.work {
                w.queue();
            }
        }
    }

    /// Hands `node` to the cache's work (process context).
    ///
    /// # Safety
    ///
    /// As for [`Work::defer`].
    pub(crate) unsafe fn defer(&self, node: *mut LlNode) {
        if let Some(w) = &self.work {
            // SAFETY: as the caller's.
            unsafe { w.defer(node) };
        }
    }

    /// The background pass: removes stale extents in batches.
    fn gc(&self) {
        let seen = self.core.lock().buckets.stats().invalidated;
        let mut cursor = Some(0u64);
        while let Some(k) = cursor {
            let mut g = self.core.lock();
            let core = &mut *g;
            cursor = core.index.gc_step(k, &core.buckets).0;
        }
        self.gc_seen.store(seen, Ordering::Relaxed);
    }

    fn name(&self) -> [u8; 32] {
        self.ssd.name()
    }
}

/// Per-device statistics.
#[derive(Default)]
pub(crate) struct DevStats {
    hits: AtomicU64,
    misses: AtomicU64,
    bypass_hits: AtomicU64,
    bypass_misses: AtomicU64,
    pub(crate) collisions: AtomicU64,
    fills: AtomicU64,
    cache_sectors: AtomicU64,
    backing_sectors: AtomicU64,
    written_sectors: AtomicU64,
    pub(crate) ssd_retries: AtomicU64,
}

impl DevStats {
    pub(crate) fn count_hit(&self, bypass: bool, _sectors: u64) {
        let c = if bypass {
            &self.bypass_hits
        } else {
            &self.hits
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_miss(&self, bypass: bool, _sectors: u64) {
        let c = if bypass {
            &self.bypass_misses
        } else {
            &self.misses
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_cache_sectors(&self, sectors: u64) {
        self.cache_sectors.fetch_add(sectors, Ordering::Relaxed);
    }

    pub(crate) fn add_backing_sectors(&self, sectors: u64) {
        self.backing_sectors.fetch_add(sectors, Ordering::Relaxed);
    }

    pub(crate) fn written(&self, sectors: u64) {
        self.written_sectors.fetch_add(sectors, Ordering::Relaxed);
    }

    /// Sets every counter back to 0 (`clear_stats`); I/O in flight may
    /// count in the old or the new period.
    fn clear(&self) {
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
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }

    pub(crate) fn fill_outcome(&self, o: FillOutcome) {
        match o {
            FillOutcome::Inserted => self.fills.fetch_add(1, Ordering::Relaxed),
            FillOutcome::Collided => self.collisions.fetch_add(1, Ordering::Relaxed),
            FillOutcome::Dropped(_) => 0,
        };
    }
}

/// A backing device and its `/dev/bcache_rs<N>`.
///
/// # Invariants
///
/// `cache`, if not null, points to a live [`CacheSet`] whose `attached`
/// counts this device. `pending` counts the bios given to us whose last
/// clone has not completed. The disk has fewer sectors than
/// [`bcache::MAX_DEV_SECTORS`], so every bio's sectors have index keys.
pub(crate) struct Dev {
    pub(crate) id: bcache::DevId,
    uuid: format::Uuid,
    pub(crate) backing: BdevFile,
    pub(crate) bs: BioSet<IoCtx>,
    /// For splits at extent boundaries (a set of their own, so that a
    /// split never waits for a clone of the same submission).
    pub(crate) split_bs: BioSet<()>,
    /// The disk, for `stop`'s open check (set once it exists).
    disk: AtomicPtr<c_void>,
    cache: AtomicPtr<CacheSet>,
    lbs: u32,
    pub(crate) mode: AtomicU32,
    pub(crate) seq_cutoff: AtomicU64,
    pub(crate) seq_last_end: AtomicU64,
    pub(crate) seq_run: AtomicU64,
    pub(crate) pending: AtomicU64,
    stopping: AtomicBool,
    pub(crate) stats: DevStats,
    registry: *const Registry,
}

// SAFETY: every field is thread-safe; the pointers outlive the device.
unsafe impl Send for Dev {}
// SAFETY: as above.
unsafe impl Sync for Dev {}

impl Dev {
    /// The cache, if attached (whether it works or not).
    pub(crate) fn cache_ref(&self) -> Option<&CacheSet> {
        let p = self.cache.load(Ordering::Acquire);
        // SAFETY: a non-null `cache` is live while attached (invariant).
        (!p.is_null()).then(|| unsafe { &*p })
    }

    /// The cache if attached and working.
    pub(crate) fn active_cache(&self) -> Option<&CacheSet> {
        self.cache_ref()
            .filter(|c| !c.failed.load(Ordering::Relaxed))
    }

    fn wait_idle(&self) {
        while self.pending.load(Ordering::Acquire) != 0 {
            blk::msleep(1);
        }
    }
}

/// A registered device and what the registry owns for it.
struct DevEntry {
    dev: Arc<Dev>,
    disk: Option<Disk>,
    kobj: Option<KObj>,
}

/// The registered cache and its directory.
struct CacheEntry {
    cache: Arc<CacheSet>,
    kobj: Option<KObj>,
}

/// Everything registered, under one mutex (sysfs writes and teardown).
struct RegInner {
    cache: Option<CacheEntry>,
    /// Slot `i` holds `bcache_rs<i>`; [`MAX_DEVS`] slots.
    devs: KVec<Option<DevEntry>>,
}

impl RegInner {
    fn devs(&self) -> impl Iterator<Item = &DevEntry> {
        self.devs.iter().flatten()
    }
}

/// The module's registry, for the reap work (whose owner is null: the
/// work is made before the registry exists). Set while the module is live.
static REGISTRY: AtomicPtr<Registry> = AtomicPtr::new(core::ptr::null_mut());

/// # Invariants
///
/// `root` is null or the `/sys/kernel/bcache_rs` directory, which outlives
/// every registration (the module drops it first, and it waits for writes
/// in progress). `reap` is declared before `inner`, so that it is cancelled
/// (and a running reap waited for) before `inner` is dropped.
#[pin_data]
struct Registry {
    reap: Work,
    root: AtomicPtr<c_void>,
    #[pin]
    inner: Mutex<RegInner>,
}

/// `pr_err` of a failed sysfs write and its errno.
macro_rules! fail {
    ($err:expr, $($arg:tt)*) => {{
        pr_err!($($arg)*);
        return Err($err);
    }};
}

fn nul_terminated(path: &[u8]) -> Result<KVec<u8>> {
    let mut v = KVec::with_capacity(path.len() + 1, GFP_KERNEL)?;
    v.extend_from_slice(path, GFP_KERNEL)?;
    v.push(0, GFP_KERNEL)?;
    Ok(v)
}

fn errno_of(e: i32) -> Error {
    Error::from_errno(e)
}

fn line_str(b: &[u8]) -> &str {
    core::str::from_utf8(b).unwrap_or("<not UTF-8>")
}

impl Registry {
    fn register_cache(&self, line: &[u8]) -> Result {
        let path = match format::parse_path_line(line) {
            Ok(p) => p,
            Err(e) => fail!(errno_of(e.to_errno()), "register_cache: {}\n", e),
        };
        let p = line_str(path);
        let cpath = nul_terminated(path)?;
        let mut inner = self.inner.lock();
        if inner.cache.is_some() {
            fail!(EBUSY, "register_cache: {}: a cache is already registered (one cache serves every device)\n", p);
        }
        let holder = self as *const Registry as *mut c_void;
        let ssd = match BdevFile::open(&cpath, holder) {
            Ok(f) => f,
            Err(e) if e == EBUSY => fail!(e, "register_cache: {}: in use by another holder (or registered as a backing device)\n", p),
            Err(e) => fail!(e, "register_cache: {}: cannot open it exclusively (error {})\n", p, e.to_errno()),
        };
        if inner.devs().any(|d| d.dev.backing.devt() == ssd.devt()) {
            fail!(
                EEXIST,
                "register_cache: {}: already registered as a backing device\n",
                p
            );
        }
        let mut buf = KVec::from_elem(0u8, format::SB_SIZE, GFP_KERNEL)?;
        if let Err(e) = ssd.read(format::SB_SECTOR, &mut buf) {
            fail!(
                e,
                "register_cache: {}: cannot read the superblock (error {})\n",
                p,
                e.to_errno()
            );
        }
        let sb = match format::Superblock::decode(&buf) {
            Ok(sb) => sb,
            Err(e) => fail!(errno_of(e.to_errno()), "register_cache: {}: {}\n", p, e),
        };
        let checks = sb
            .check_device(ssd.sectors().saturating_mul(512))
            .and_then(|()| sb.check_writable());
        if let Err(e) = checks {
            fail!(errno_of(e.to_errno()), "register_cache: {}: {}\n", p, e);
        }
        let block_bytes = sb.layout.block_sectors * 512;
        if block_bytes < ssd.logical_block_size() {
            fail!(
                EINVAL,
                "register_cache: {}: block size {} is below the device's logical block size {}\n",
                p,
                block_bytes,
                ssd.logical_block_size()
            );
        }
        let nb = match usize::try_from(sb.layout.data_buckets()) {
            Ok(n) if u32::try_from(n).is_ok() => n,
            _ => fail!(EINVAL, "register_cache: {}: too many buckets\n", p),
        };
        let meta = VVec::from_elem(BucketMeta::FREE, nb, GFP_KERNEL)?;
        let mut pins = VVec::with_capacity(nb, GFP_KERNEL)?;
        for _ in 0..nb {
            pins.push(AtomicU32::new(0), GFP_KERNEL)?;
        }
        let Some(buckets) = Buckets::new(meta, sb.layout.bucket_sectors) else {
            fail!(EINVAL, "register_cache: {}: no data buckets\n", p);
        };
        let core = IrqLock::new(bcache::Cache::new(KmallocNodes(GFP_ATOMIC), buckets))?;
        let mut cache = UniqueArc::new(
            CacheSet {
                ssd,
                sb,
                core,
                pins,
                work: None,
                errors: AtomicU32::new(0),
                failed: AtomicBool::new(false),
                attached: AtomicU32::new(0),
                stopping_devs: AtomicU32::new(0),
                unregister: AtomicBool::new(false),
                gc_seen: AtomicU64::new(0),
                registry: self,
            },
            GFP_KERNEL,
        )?;
        let ptr = &*cache as *const CacheSet as *mut c_void;
        // SAFETY: the cache's address is stable (it is on the heap) and it
        // outlives its work, which it owns.
        cache.work = Some(unsafe { Work::new(ptr, WORK_GC)? });
        let cache: Arc<CacheSet> = cache.into();
        let root = self.root.load(Ordering::Acquire);
        if root.is_null() {
            return Err(EINVAL);
        }
        // SAFETY: the directory is dropped before the cache (teardown).
        let kobj = match unsafe {
            KObj::create(Parent::Raw(root), b"cache\0", ptr, CACHE_ATTRS, CACHE_BASE)
        } {
            Ok(k) => k,
            Err(e) => fail!(
                e,
                "register_cache: {}: cannot create its sysfs directory\n",
                p
            ),
        };
        // Attach the devices registered before the cache, their disks
        // linked to the SSD first (the SSD outlives attached devices).
        for d in inner.devs.iter_mut().flatten() {
            if !Self::attachable(&d.dev, &cache) {
                continue;
            }
            if let Some(disk) = d.disk.as_mut() {
                // SAFETY: the cache, which holds the SSD open, is not torn
                // down while a device is attached, and a device's disk is
                // dropped before it is detached.
                if let Err(e) = unsafe { disk.link_ssd(&cache.ssd) } {
                    pr_warn!(
                        "bcache_rs{}: not attached to cache {}: cannot link its SSD (error {})\n",
                        d.dev.id,
                        cache.sb.set_uuid,
                        e.to_errno()
                    );
                    continue;
                }
            }
            Self::attach(&d.dev, &cache);
        }
        pr_info!(
            "cache {} on {}: {} buckets of {} KiB, blocks of {} bytes\n",
            cache.sb.set_uuid,
            line_str(blk::cstr_bytes(&cache.name())),
            nb,
            cache.sb.layout.bucket_sectors / 2,
            block_bytes
        );
        inner.cache = Some(CacheEntry {
            cache,
            kobj: Some(kobj),
        });
        Ok(())
    }

    /// Whether `d` may be attached to `cache` (a warning if not).
    fn attachable(d: &Dev, cache: &CacheSet) -> bool {
        if d.stopping.load(Ordering::Relaxed) {
            return false;
        }
        let block = cache.sb.layout.block_sectors * 512;
        if block > d.lbs {
            pr_warn!(
                "bcache_rs{}: not attached to cache {}: its block size {} exceeds the disk's {}\n",
                d.id,
                cache.sb.set_uuid,
                block,
                d.lbs
            );
            return false;
        }
        true
    }

    /// Attaches `d` to `cache`, which must be [`Registry::attachable`]: from
    /// now on its I/O uses the cache.
    fn attach(d: &Dev, cache: &Arc<CacheSet>) {
        cache.attached.fetch_add(1, Ordering::Relaxed);
        d.cache.store(
            &**cache as *const CacheSet as *mut CacheSet,
            Ordering::Release,
        );
    }

    fn register_dev(&self, line: &[u8]) -> Result {
        let (uuid, path) = match format::parse_register_dev(line) {
            Ok(v) => v,
            Err(e) => fail!(errno_of(e.to_errno()), "register_dev: {}\n", e),
        };
        let p = line_str(path);
        let cpath = nul_terminated(path)?;
        let mut inner = self.inner.lock();
        if inner.devs().any(|d| d.dev.uuid == uuid) {
            fail!(
                EEXIST,
                "register_dev: {}: UUID {} is already registered\n",
                p,
                uuid
            );
        }
        let free = inner.devs.iter().position(|d| d.is_none());
        let Some(id) = free.and_then(|i| bcache::DevId::try_from(i).ok()) else {
            fail!(
                ENOSPC,
                "register_dev: {}: {} devices are registered already\n",
                p,
                MAX_DEVS
            );
        };
        let holder = self as *const Registry as *mut c_void;
        let backing = match BdevFile::open(&cpath, holder) {
            Ok(f) => f,
            Err(e) if e == EBUSY => fail!(e, "register_dev: {}: in use by another holder\n", p),
            Err(e) => fail!(
                e,
                "register_dev: {}: cannot open it exclusively (error {})\n",
                p,
                e.to_errno()
            ),
        };
        if inner.devs().any(|d| d.dev.backing.devt() == backing.devt()) {
            fail!(EEXIST, "register_dev: {}: already registered\n", p);
        }
        if backing.sectors() >= bcache::MAX_DEV_SECTORS {
            fail!(
                EFBIG,
                "register_dev: {}: {} sectors, more than the index's {}\n",
                p,
                backing.sectors(),
                bcache::MAX_DEV_SECTORS - 1
            );
        }
        if let Some(c) = &inner.cache {
            if c.cache.ssd.devt() == backing.devt() {
                fail!(EEXIST, "register_dev: {}: it is the cache device\n", p);
            }
            if c.cache.unregister.load(Ordering::Relaxed) {
                fail!(
                    EBUSY,
                    "register_dev: {}: the cache is being unregistered\n",
                    p
                );
            }
        }
        let cache = inner.cache.as_ref().map(|c| c.cache.clone());
        let block = cache
            .as_ref()
            .map_or(512, |c| c.sb.layout.block_sectors * 512);
        let lbs = backing.logical_block_size().max(block);
        let sectors = backing.sectors() & !(u64::from(lbs / 512) - 1);
        let dev = Arc::new(
            Dev {
                id,
                uuid,
                backing,
                bs: BioSet::new()?,
                split_bs: BioSet::new()?,
                disk: AtomicPtr::new(core::ptr::null_mut()),
                cache: AtomicPtr::new(core::ptr::null_mut()),
                lbs,
                mode: AtomicU32::new(MODE_WRITETHROUGH),
                seq_cutoff: AtomicU64::new(DEFAULT_SEQ_CUTOFF),
                seq_last_end: AtomicU64::new(u64::MAX),
                seq_run: AtomicU64::new(0),
                pending: AtomicU64::new(0),
                stopping: AtomicBool::new(false),
                stats: DevStats::default(),
                registry: self,
            },
            GFP_KERNEL,
        )?;
        if let Some(c) = cache.as_ref().filter(|c| Self::attachable(&dev, c)) {
            Self::attach(&dev, c);
        }
        let mut entry = DevEntry {
            dev,
            disk: None,
            kobj: None,
        };
        let ptr = &*entry.dev as *const Dev as *mut c_void;
        // SAFETY: the device outlives its disk: teardown drops the disk
        // first and waits for its I/O.
        let disk = unsafe {
            Disk::create(
                &entry.dev.backing,
                cache.as_ref().map(|c| &c.ssd),
                lbs,
                sectors,
                u32::from(id),
                ptr,
            )
        };
        let mut disk = match disk {
            Ok(d) => d,
            Err(e) => {
                Self::teardown_dev(entry);
                fail!(
                    e,
                    "register_dev: {}: cannot add bcache_rs{} (error {})\n",
                    p,
                    id,
                    e.to_errno()
                );
            }
        };
        if let Some(c) = entry.dev.cache_ref() {
            // SAFETY: as in `register_cache`: the SSD stays open until the
            // disk is dropped.
            if let Err(e) = unsafe { disk.link_ssd(&c.ssd) } {
                entry.disk = Some(disk);
                Self::teardown_dev(entry);
                fail!(
                    e,
                    "register_dev: {}: cannot link bcache_rs{} to the cache's SSD (error {})\n",
                    p,
                    id,
                    e.to_errno()
                );
            }
        }
        entry.dev.disk.store(disk.raw(), Ordering::Release);
        // SAFETY: the device outlives its directory (dropped first).
        let kobj = unsafe {
            KObj::create(
                Parent::Disk(&disk),
                b"bcache_rs\0",
                ptr,
                DEV_ATTRS,
                DEV_BASE,
            )
        };
        entry.disk = Some(disk);
        match kobj {
            Ok(k) => entry.kobj = Some(k),
            Err(e) => {
                Self::teardown_dev(entry);
                fail!(
                    e,
                    "register_dev: {}: cannot create its sysfs directory\n",
                    p
                );
            }
        }
        let cached = entry.dev.cache_ref().is_some();
        let name = entry.dev.backing.name();
        if let Some(slot) = inner.devs.get_mut(id as usize) {
            *slot = Some(entry);
        }
        pr_info!(
            "bcache_rs{}: {} ({}) on {}, {} sectors, {}\n",
            id,
            uuid,
            p,
            line_str(blk::cstr_bytes(&name)),
            sectors,
            if cached {
                "cached"
            } else {
                "uncached until a cache is registered"
            }
        );
        Ok(())
    }

    fn detach(d: &Dev) {
        let p = d.cache.swap(core::ptr::null_mut(), Ordering::AcqRel);
        if !p.is_null() {
            // SAFETY: attached caches are live (invariant of `Dev`).
            let c = unsafe { &*p };
            // `attached` first: `unregister` reads `stopping_devs` first, so
            // it never sees this device uncounted as stopping but still
            // attached.
            c.attached.fetch_sub(1, Ordering::SeqCst);
            if d.stopping.load(Ordering::Relaxed) {
                c.stopping_devs.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Removes a device's directory and disk, waits for its I/O, drops its
    /// extents and detaches it.
    fn teardown_dev(entry: DevEntry) {
        let DevEntry { dev, disk, kobj } = entry;
        drop(kobj);
        dev.disk.store(core::ptr::null_mut(), Ordering::Release);
        drop(disk);
        dev.wait_idle();
        if let Some(c) = dev.cache_ref() {
            loop {
                let mut g = c.core.lock();
                let core = &mut *g;
                if core.index.remove_dev(dev.id, 256, &mut core.buckets) {
                    break;
                }
            }
        }
        Self::detach(&dev);
    }

    /// The reap work: stops the devices asked to stop and unregisters the
    /// cache if asked.
    fn reap(&self) {
        let mut inner = self.inner.lock();
        for slot in inner.devs.iter_mut() {
            if slot
                .as_ref()
                .is_some_and(|d| d.dev.stopping.load(Ordering::Relaxed))
            {
                if let Some(e) = slot.take() {
                    let id = e.dev.id;
                    Self::teardown_dev(e);
                    pr_info!("bcache_rs{}: stopped\n", id);
                }
            }
        }
        let unreg = inner
            .cache
            .as_ref()
            .is_some_and(|c| c.cache.unregister.load(Ordering::Relaxed));
        if unreg {
            // Under the lock `attached` only changes here and in
            // `register_dev`; `stopping_devs` may grow (a `stop` written
            // since the loop above, whose reap is queued).
            let (attached, stopping) = inner.cache.as_ref().map_or((0, 0), |c| {
                (
                    c.cache.attached.load(Ordering::SeqCst),
                    c.cache.stopping_devs.load(Ordering::SeqCst),
                )
            });
            if attached == 0 {
                if let Some(c) = inner.cache.take() {
                    Self::teardown_cache(c);
                }
            } else if attached > stopping {
                // A device was registered after the unregister was accepted.
                if let Some(c) = inner.cache.as_ref() {
                    c.cache.unregister.store(false, Ordering::Relaxed);
                    pr_warn!(
                        "cache {}: unregister cancelled: a device was attached meanwhile\n",
                        c.cache.sb.set_uuid
                    );
                }
            }
        }
    }

    fn teardown_cache(entry: CacheEntry) {
        let CacheEntry { cache, kobj } = entry;
        drop(kobj);
        pr_info!("cache {}: unregistered\n", cache.sb.set_uuid);
        drop(cache);
    }
}

struct BcacheRs {
    /// Dropped first.
    root: Option<KObj>,
    registry: Option<Pin<KBox<Registry>>>,
}

impl kernel::Module for BcacheRs {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let mut devs = KVec::with_capacity(MAX_DEVS as usize, GFP_KERNEL)?;
        for _ in 0..MAX_DEVS {
            devs.push(None, GFP_KERNEL)?;
        }
        blk::init()?;
        let made = (|| -> Result<Self> {
            // SAFETY: a null owner: `bcache_rs_work` finds the registry in
            // `REGISTRY`, set below before the work can be queued.
            let reap = unsafe { Work::new(core::ptr::null_mut(), WORK_REAP)? };
            let registry = KBox::pin_init(
                pin_init!(Registry {
                    reap,
                    root: AtomicPtr::new(core::ptr::null_mut()),
                    inner <- new_mutex!(RegInner { cache: None, devs }),
                }),
                GFP_KERNEL,
            )?;
            let ptr = &*registry as *const Registry;
            REGISTRY.store(ptr as *mut Registry, Ordering::Release);
            // SAFETY: the registry outlives the directory (dropped first).
            let root = unsafe {
                KObj::create(
                    Parent::Kernel,
                    b"bcache_rs\0",
                    ptr as *mut c_void,
                    ROOT_ATTRS,
                    ROOT_BASE,
                )
            };
            let root = match root {
                Ok(r) => r,
                Err(e) => {
                    REGISTRY.store(core::ptr::null_mut(), Ordering::Release);
                    return Err(e);
                }
            };
            registry.root.store(root.raw(), Ordering::Release);
            Ok(Self {
                root: Some(root),
                registry: Some(registry),
            })
        })();
        match made {
            Ok(m) => {
                pr_info!("loaded: /sys/kernel/bcache_rs/register_cache and register_dev\n");
                Ok(m)
            }
            Err(e) => {
                // SAFETY: `init` succeeded and everything made since was
                // dropped.
                unsafe { blk::exit() };
                Err(e)
            }
        }
    }
}

impl Drop for BcacheRs {
    fn drop(&mut self) {
        // No new registration: the root directory goes first (it waits for
        // writes in progress).
        drop(self.root.take());
        if let Some(r) = &self.registry {
            r.root.store(core::ptr::null_mut(), Ordering::Release);
            let mut inner = r.inner.lock();
            for slot in inner.devs.iter_mut() {
                if let Some(e) = slot.take() {
                    Registry::teardown_dev(e);
                }
            }
            if let Some(c) = inner.cache.take() {
                Registry::teardown_cache(c);
            }
        }
        // The reap work is cancelled (or waited for) before the rest of the
        // registry goes (field order).
        drop(self.registry.take());
        REGISTRY.store(core::ptr::null_mut(), Ordering::Release);
        // SAFETY: every object of blk.rs is gone.
        unsafe { blk::exit() };
    }
}

/// Writes into a sysfs buffer (a page).
struct PageWriter {
    buf: *mut u8,
    len: usize,
}

impl Write for PageWriter {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let room = 4096usize.saturating_sub(self.len + 1);
        let n = s.len().min(room);
        // SAFETY: sysfs show buffers are PAGE_SIZE bytes; `len + n` stays
        // below 4096.
        unsafe { core::ptr::copy_nonoverlapping(s.as_ptr(), self.buf.add(self.len), n) };
        self.len += n;
        Ok(())
    }
}

fn trimmed(buf: &[u8]) -> &[u8] {
    let mut b = buf;
    while let [rest @ .., last] = b {
        if last.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    b
}

fn parse_u64(s: &[u8]) -> Option<u64> {
    let s = trimmed(s);
    let (digits, mult) = match s.last() {
        Some(b'k' | b'K') => (s.get(..s.len() - 1)?, 1u64 << 10),
        Some(b'm' | b'M') => (s.get(..s.len() - 1)?, 1 << 20),
        Some(b'g' | b'G') => (s.get(..s.len() - 1)?, 1 << 30),
        _ => (s, 1),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v = 0u64;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    v.checked_mul(mult)
}

fn show_cache(c: &CacheSet, attr: i32, w: &mut PageWriter) -> core::fmt::Result {
    let l = &c.sb.layout;
    match attr {
        1 => writeln!(w, "{}", c.sb.set_uuid),
        2 => writeln!(w, "{}", line_str(blk::cstr_bytes(&c.name()))),
        3 => writeln!(
            w,
            "{}",
            if c.failed.load(Ordering::Relaxed) {
                "failed"
            } else {
                "active"
            }
        ),
        4 => writeln!(w, "{}", u64::from(l.block_sectors) * 512),
        5 => writeln!(w, "{}", u64::from(l.bucket_sectors) * 512),
        6 => writeln!(w, "{}", l.data_buckets()),
        7 => writeln!(w, "{}", c.core.lock().buckets.free()),
        8 => writeln!(w, "{}", c.core.lock().buckets.in_use()),
        9 => writeln!(w, "{}", c.core.lock().index.len()),
        10 => writeln!(w, "{}", c.core.lock().index.memory_bytes()),
        11 => writeln!(w, "{}", c.core.lock().index.stale_dropped()),
        12 => writeln!(w, "{}", c.core.lock().buckets.stats().invalidated),
        13 => writeln!(w, "{}", c.errors.load(Ordering::Relaxed)),
        14 => writeln!(w, "{}", c.attached.load(Ordering::Relaxed)),
        _ => Ok(()),
    }
}

fn show_dev(d: &Dev, attr: i32, w: &mut PageWriter) -> core::fmt::Result {
    let s = &d.stats;
    let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
    match attr {
        1 => writeln!(w, "{}", d.uuid),
        2 => writeln!(w, "{}", line_str(blk::cstr_bytes(&d.backing.name()))),
        3 => writeln!(
            w,
            "{}",
            match d.cache_ref() {
                None => "no cache",
                Some(c) if c.failed.load(Ordering::Relaxed) => "cache failed",
                Some(_) => "cached",
            }
        ),
        4 => {
            let m = d.mode.load(Ordering::Relaxed) as usize;
            for (i, name) in MODES.iter().enumerate() {
                let sep = if i == 0 { "" } else { " " };
                if i == m {
                    write!(w, "{sep}[{name}]")?;
                } else {
                    write!(w, "{sep}{name}")?;
                }
            }
            writeln!(w)
        }
        5 => writeln!(w, "{}", ld(&d.seq_cutoff)),
        6 => writeln!(w, "{}", ld(&s.hits)),
        7 => writeln!(w, "{}", ld(&s.misses)),
        8 => writeln!(w, "{}", ld(&s.bypass_hits)),
        9 => writeln!(w, "{}", ld(&s.bypass_misses)),
        10 => {
            let (h, m) = (ld(&s.hits), ld(&s.misses));
            let pct = (h * 100).checked_div(h + m).unwrap_or(0);
            writeln!(w, "{pct}")
        }
        11 => writeln!(w, "{}", ld(&s.collisions)),
        12 => writeln!(w, "{}", ld(&s.fills)),
        13 => writeln!(w, "{}", ld(&s.cache_sectors) * 512),
        14 => writeln!(w, "{}", ld(&s.backing_sectors) * 512),
        15 => writeln!(w, "{}", ld(&s.written_sectors) * 512),
        16 => writeln!(w, "{}", ld(&s.ssd_retries)),
        _ => Ok(()),
    }
}

/// A sysfs file of ours is read.
///
/// # Safety
///
/// `owner` is the owner its directory was made with (a `Registry`,
/// `CacheSet` or `Dev` by `attr`'s base), `buf` a page.
#[no_mangle]
unsafe extern "C" fn bcache_rs_show(owner: *mut c_void, attr: i32, buf: *mut u8) -> isize {
    let mut w = PageWriter { buf, len: 0 };
    let r = if (CACHE_BASE..DEV_BASE).contains(&attr) {
        // SAFETY: by the directory's base, `owner` is a live `CacheSet`.
        show_cache(
            unsafe { &*owner.cast::<CacheSet>() },
            attr - CACHE_BASE,
            &mut w,
        )
    } else if attr >= DEV_BASE {
        // SAFETY: by the base, a live `Dev`.
        show_dev(unsafe { &*owner.cast::<Dev>() }, attr - DEV_BASE, &mut w)
    } else {
        Ok(())
    };
    if r.is_err() {
        return EINVAL.to_errno() as isize;
    }
    w.len as isize
}

fn store_dev(d: &Dev, attr: i32, input: &[u8]) -> Result {
    match attr {
        0 => {
            if blk::disk_is_open(d.disk.load(Ordering::Acquire)) {
                fail!(EBUSY, "bcache_rs{}: stop: the disk is open\n", d.id);
            }
            if d.stopping.load(Ordering::Relaxed) {
                return Ok(());
            }
            // Counted before the flag is set: the reap, which detaches
            // only devices it sees stopping, then uncounts it.
            if let Some(c) = d.cache_ref() {
                c.stopping_devs.fetch_add(1, Ordering::SeqCst);
            }
            d.stopping.store(true, Ordering::Relaxed);
            // SAFETY: the registry outlives its devices.
            unsafe { &*d.registry }.reap.queue();
            Ok(())
        }
        4 => {
            let want = trimmed(input);
            match MODES.iter().position(|m| m.as_bytes() == want) {
                Some(m) => {
                    d.mode.store(m as u32, Ordering::Relaxed);
                    Ok(())
                }
                None => fail!(
                    EINVAL,
                    "bcache_rs{}: cache_mode: '{}' is not writethrough, writearound or none\n",
                    d.id,
                    line_str(want)
                ),
            }
        }
        5 => match parse_u64(input) {
            Some(v) => {
                d.seq_cutoff.store(v, Ordering::Relaxed);
                Ok(())
            }
            None => fail!(
                EINVAL,
                "bcache_rs{}: sequential_cutoff: '{}' is not a size in bytes\n",
                d.id,
                line_str(trimmed(input))
            ),
        },
        17 => {
            if trimmed(input) != b"1" {
                fail!(
                    EINVAL,
                    "bcache_rs{}: clear_stats: write 1, not '{}'\n",
                    d.id,
                    line_str(trimmed(input))
                );
            }
            d.stats.clear();
            Ok(())
        }
        _ => Err(EINVAL),
    }
}

fn store_cache(c: &CacheSet, attr: i32) -> Result {
    if attr != 0 {
        return Err(EINVAL);
    }
    // Devices being stopped are waited for (the reap stops them first).
    let stopping = c.stopping_devs.load(Ordering::SeqCst);
    let n = c.attached.load(Ordering::SeqCst).saturating_sub(stopping);
    if n > 0 {
        fail!(
            EBUSY,
            "cache {}: unregister: {} devices are attached; stop them first\n",
            c.sb.set_uuid,
            n
        );
    }
    c.unregister.store(true, Ordering::Relaxed);
    // SAFETY: the registry outlives its caches.
    unsafe { &*c.registry }.reap.queue();
    Ok(())
}

/// A sysfs file of ours is written.
///
/// # Safety
///
/// As for `bcache_rs_show`; `buf` holds `len` bytes.
#[no_mangle]
unsafe extern "C" fn bcache_rs_store(
    owner: *mut c_void,
    attr: i32,
    buf: *const u8,
    len: usize,
) -> isize {
    // SAFETY: sysfs passes `len` valid bytes.
    let input = unsafe { core::slice::from_raw_parts(buf, len) };
    let r = if attr < CACHE_BASE {
        // SAFETY: by the base, a live `Registry`.
        let reg = unsafe { &*owner.cast::<Registry>() };
        if attr == ROOT_BASE {
            reg.register_cache(input)
        } else {
            reg.register_dev(input)
        }
    } else if attr < DEV_BASE {
        // SAFETY: by the base, a live `CacheSet`.
        store_cache(unsafe { &*owner.cast::<CacheSet>() }, attr - CACHE_BASE)
    } else {
        // SAFETY: by the base, a live `Dev`.
        store_dev(unsafe { &*owner.cast::<Dev>() }, attr - DEV_BASE, input)
    };
    match r {
        Ok(()) => len as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// A bio for a `bcache_rs` disk.
///
/// # Safety
///
/// `owner` is the disk's `Dev`, `bio` a bio submitted to the disk.
#[no_mangle]
unsafe extern "C" fn bcache_rs_submit(owner: *mut c_void, bio: *mut blk::RawBio) {
    // SAFETY: by the caller's contract (the device outlives its disk).
    let dev = unsafe { &*owner.cast::<Dev>() };
    // SAFETY: as the caller's.
    unsafe { dev.submit(Bio(bio)) };
}

/// One of our clones completed.
///
/// # Safety
///
/// `bio` is a clone or copy made by the data path.
#[no_mangle]
unsafe extern "C" fn bcache_rs_endio(bio: *mut blk::RawBio, err: i32) {
    // SAFETY: by the caller's contract.
    unsafe { datapath::endio(Bio(bio), err) };
}

/// A node deferred to a cache's work.
///
/// # Safety
///
/// `owner` is the work's `CacheSet`, `node` a node given to its `defer`.
#[no_mangle]
unsafe extern "C" fn bcache_rs_deferred(owner: *mut c_void, node: *mut LlNode) {
    // SAFETY: by the caller's contract.
    let c = unsafe { &*owner.cast::<CacheSet>() };
    // SAFETY: as the caller's.
    unsafe { datapath::deferred(c, node) };
}

/// A work item runs.
///
/// # Safety
///
/// `owner` is the work's owner: a `CacheSet` for [`WORK_GC`], null for
/// [`WORK_REAP`].
#[no_mangle]
unsafe extern "C" fn bcache_rs_work(owner: *mut c_void, what: i32) {
    match what {
        WORK_GC if !owner.is_null() => {
            // SAFETY: by the caller's contract.
            let c = unsafe { &*owner.cast::<CacheSet>() };
            if c.core.lock().buckets.stats().invalidated != c.gc_seen.load(Ordering::Relaxed) {
                c.gc();
            }
        }
        WORK_REAP => {
            let r = REGISTRY.load(Ordering::Acquire);
            if !r.is_null() {
                // SAFETY: `REGISTRY` is the live registry: the module
                // cancels this work before dropping it.
                unsafe { &*r }.reap();
            }
        }
        _ => {}
    }
}
