// SPDX-License-Identifier: GPL-2.0

//! What is registered: the cache and the backing devices, under one mutex
//! that serialises registration, attach, detach, stop, unregister and
//! module unload. Each operation runs to its end under the mutex, so no
//! counter can drift between a request and its completion.
//!
//! `stop` and `unregister` are sysfs writes to the directory they remove:
//! they lift their own file's protection first ([`crate::blk::Store`]), so
//! removing the directory under the mutex never waits for a writer that
//! waits for the mutex.

use crate::bcache::{self, DevId};
use crate::blk::{self, disk_parent, BdevFile, Disk, KObj, Parent, WorkQueue};
use crate::cache_set::{CacheSet, Intent};
use crate::dev::{BioSets, Dev};
use crate::format::{self, Uuid};
use crate::journal::Journal;
use crate::sysfs::{CacheDir, DevDir};
use core::ffi::c_void;
use core::sync::atomic::Ordering;
use kernel::alloc::{flags::GFP_KERNEL, KVec};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};

/// Most backing devices (minors).
pub(crate) const MAX_DEVS: u32 = 256;
// A device's number is its index key's `DevId`.
const _: () = assert!(MAX_DEVS <= bcache::DevId::MAX as u32 + 1);

/// The largest logical block size the block layer of 6.12 accepts.
const MAX_BLOCK_BYTES: u32 = 4096;

/// A registered device and what the registry owns for it.
///
/// # Invariants
///
/// `disk`, if any, was made with `dev` as its owner; `kobj` is under
/// `disk`'s directory.
struct DevEntry {
    dev: Arc<Dev>,
    disk: Option<Disk<Dev>>,
    kobj: Option<KObj<DevDir>>,
    /// Detached by the operator (`detach`): a cache registered later does
    /// not attach it; `attach` does.
    held_off: bool,
}

impl DevEntry {
    /// The device with no I/O in flight and its disk's queue frozen (see
    /// [`crate::dev::Quiesced`]).
    fn quiesce(&self) -> crate::dev::Quiesced<'_> {
        // SAFETY: `disk` is `dev`'s own (type invariant).
        unsafe { self.dev.quiesce(self.disk.as_ref()) }
    }
}

/// The registered cache, its directory and its persistent index.
///
/// # Invariants
///
/// `owners` has [`MAX_DEVS`] entries: `owners[d]` is the UUID of the
/// trusted device whose extents are under number `d` and go into the
/// checkpoint (registered, or expected: restored before it registered);
/// the extents of a number with no owner are dropped by the next attach
/// to it and left out of the checkpoint.
struct CacheEntry {
    cache: Arc<CacheSet>,
    kobj: Option<KObj<CacheDir>>,
    owners: KVec<Option<Uuid>>,
}

impl CacheEntry {
    /// Device `dev` goes on (or may have been written) without the cache:
    /// a checkpoint's extents of it are marked stale, durably.
    fn uncached(&self, dev: &Dev) {
        if let Some(j) = self.cache.journal.lock().as_mut() {
            j.dirty_device(&self.cache, dev.uuid);
        }
    }
}

/// Writes the checkpoint of a working `cache` (its journal taken: `None`
/// after a shutdown wrote it) and says how it went (a failed cache writes
/// none, and gives its write-intent map up: its next registration starts
/// empty).
fn checkpoint(cache: &CacheSet, owners: &[Option<Uuid>]) {
    let Some(mut j) = cache.journal.lock().take() else {
        return;
    };
    let uuid = cache.sb.set_uuid;
    if cache.is_failed() {
        j.give_up(cache, "the cache failed");
        pr_warn!(
            "cache {}: failed: no checkpoint; its index starts empty at the next registration\n",
            uuid
        );
        return;
    }
    match j.checkpoint(cache, owners) {
        Ok((records, true)) => {
            pr_info!("cache {}: checkpoint of {} records written\n", uuid, records)
        }
        Ok((records, false)) => pr_warn!(
            "cache {}: checkpoint of {} records written: its area is full, the other extents are not kept\n",
            uuid,
            records
        ),
        Err(e) => pr_err!(
            "cache {}: cannot write its checkpoint (error {}): its index starts empty at the next registration\n",
            uuid,
            e.to_errno()
        ),
    }
}

/// The number that a restored device `d` of UUID `u` gets: a registered
/// device's own number if it is trusted and was not written uncached
/// (else `None`: its extents are dropped), or for a device not registered yet, `d` if no device has it,
/// else the first number no device has; recorded in `owners`.
fn decide_dev(
    devs: &[Option<DevEntry>],
    owners: &mut [Option<Uuid>],
    d: u32,
    u: Uuid,
) -> Option<DevId> {
    if let Some(e) = devs.iter().flatten().find(|e| e.dev.uuid == u) {
        let slot = owners.get_mut(usize::from(e.dev.id))?;
        // Written before the cache was registered: its extents are stale.
        if !e.dev.trust || e.dev.is_stopping() || e.dev.written_uncached() || slot.is_some() {
            return None;
        }
        *slot = Some(u);
        return Some(e.dev.id);
    }
    if owners.contains(&Some(u)) {
        return None;
    }
    let free = |i: usize| {
        devs.get(i).is_some_and(|s| s.is_none()) && owners.get(i).is_some_and(|o| o.is_none())
    };
    let i = usize::try_from(d)
        .ok()
        .filter(|&i| free(i))
        .or_else(|| (0..owners.len()).find(|&i| free(i)))?;
    let id = DevId::try_from(i).ok()?;
    *owners.get_mut(i)? = Some(u);
    Some(id)
}

/// Everything registered.
struct RegInner {
    /// `/sys/kernel/bcache_rs`, the cache directory's parent (set once the
    /// module made it; it outlives every registration).
    root: Option<blk::KObjRaw>,
    /// The module is going: nothing more is registered.
    closing: bool,
    cache: Option<CacheEntry>,
    /// Slot `i` holds `bcache_rs<i>`; [`MAX_DEVS`] slots.
    devs: KVec<Option<DevEntry>>,
}

impl RegInner {
    fn devs(&self) -> impl Iterator<Item = &DevEntry> {
        self.devs.iter().flatten()
    }

    /// The slot of `dev`, if it is still registered.
    fn slot_of(&mut self, dev: &Arc<Dev>) -> Option<&mut Option<DevEntry>> {
        self.devs
            .iter_mut()
            .find(|s| s.as_ref().is_some_and(|e| Arc::ptr_eq(&e.dev, dev)))
    }
}

/// The module's registry.
#[pin_data]
pub(crate) struct Registry {
    #[pin]
    inner: Mutex<RegInner>,
    pub(crate) wq: Arc<WorkQueue>,
    sets: Arc<BioSets>,
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

/// `EOPNOTSUPP`, which the kernel crate of 6.12 does not name.
fn eopnotsupp() -> Error {
    Error::from_errno(-(kernel::bindings::EOPNOTSUPP as i32))
}

fn errno_of(e: i32) -> Error {
    Error::from_errno(e)
}

pub(crate) fn line_str(b: &[u8]) -> &str {
    core::str::from_utf8(b).unwrap_or("<not UTF-8>")
}

impl Registry {
    pub(crate) fn new(wq: Arc<WorkQueue>) -> Result<Arc<Self>> {
        let sets = BioSets::new()?;
        let mut devs = KVec::with_capacity(MAX_DEVS as usize, GFP_KERNEL)?;
        for _ in 0..MAX_DEVS {
            devs.push(None, GFP_KERNEL)?;
        }
        Arc::pin_init(
            pin_init!(Registry {
                inner <- new_mutex!(RegInner {
                    root: None,
                    closing: false,
                    cache: None,
                    devs,
                }),
                wq,
                sets,
            }),
            GFP_KERNEL,
        )
    }

    fn holder(&self) -> *mut c_void {
        (self as *const Registry).cast_mut().cast()
    }

    /// `register_cache`: opens and brings up the cache device at `line`'s
    /// path, and attaches the devices registered before it.
    /// Sets the parent directory of the cache's (module init).
    pub(crate) fn set_root(&self, root: blk::KObjRaw) {
        self.inner.lock().root = Some(root);
    }

    pub(crate) fn register_cache(self: &Arc<Self>, line: &[u8]) -> Result {
        let path = match format::parse_path_line(line) {
            Ok(p) => p,
            Err(e) => fail!(errno_of(e.to_errno()), "register_cache: {}\n", e),
        };
        let p = line_str(path);
        let cpath = nul_terminated(path)?;
        let mut inner = self.inner.lock();
        if inner.closing {
            return Err(ENODEV);
        }
        if inner.cache.is_some() {
            fail!(EBUSY, "register_cache: {}: a cache is already registered (one cache serves every device)\n", p);
        }
        let ssd = match BdevFile::open(&cpath, self.holder()) {
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
        if ssd.zoned() {
            fail!(
                eopnotsupp(),
                "register_cache: {}: a zoned device cannot be a cache\n",
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
        if block_bytes > MAX_BLOCK_BYTES {
            fail!(EINVAL, "register_cache: {}: block size {} is above the largest the block layer takes ({})\n",
                p, block_bytes, MAX_BLOCK_BYTES);
        }
        if u32::try_from(sb.layout.data_buckets()).is_err() {
            fail!(EINVAL, "register_cache: {}: too many buckets\n", p);
        }
        let mut sb = sb;
        if !sb.current() {
            let up = sb.upgraded();
            let mut block = KVec::from_elem(0u8, format::SB_SIZE, GFP_KERNEL)?;
            let b: &mut [u8; format::SB_SIZE] =
                block.as_mut_slice().try_into().map_err(|_| EINVAL)?;
            up.encode(b);
            if let Err(e) = ssd.write_durable(format::SB_SECTOR, &block) {
                fail!(
                    e,
                    "register_cache: {}: cannot write the upgraded superblock (error {})\n",
                    p,
                    e.to_errno()
                );
            }
            pr_info!(
                "cache {}: format version {} (incompat features {:#x}) upgraded to version {} (incompat features {:#x}: persistent index, data checksums)\n",
                sb.set_uuid,
                sb.version,
                sb.incompat,
                up.version,
                up.incompat
            );
            sb = up;
        }
        let mut owners = KVec::from_elem(None, MAX_DEVS as usize, GFP_KERNEL)?;
        let loaded = {
            let devs = &inner.devs;
            let mut decide = |d: u32, u: Uuid| decide_dev(devs, &mut owners, d, u);
            match Journal::load(&ssd, &sb, &mut decide) {
                Ok(l) => l,
                Err(e) => fail!(
                    e,
                    "register_cache: {}: cannot restore its index (error {})\n",
                    p,
                    e.to_errno()
                ),
            }
        };
        let cache = match CacheSet::new(
            ssd,
            sb,
            self.wq.clone(),
            loaded.core,
            loaded.sums,
            loaded.restored,
            loaded.journal,
        ) {
            Ok(c) => c,
            Err(e) => fail!(
                e,
                "register_cache: {}: cannot set the cache up (error {})\n",
                p,
                e.to_errno()
            ),
        };
        if let Some(j) = cache.journal.lock().as_mut() {
            // Before any device is attached.
            if let Err(e) = j.open_session(&cache, &owners) {
                fail!(
                    e,
                    "register_cache: {}: cannot write its journal (error {})\n",
                    p,
                    e.to_errno()
                );
            }
        }
        let dir = CacheDir::new(cache.clone(), self.clone())?;
        let Some(root) = inner.root.as_ref() else {
            return Err(ENODEV);
        };
        let kobj = match KObj::create(Parent::Dir(root), b"cache\0", dir) {
            Ok(k) => k,
            Err(e) => fail!(
                e,
                "register_cache: {}: cannot create its sysfs directory\n",
                p
            ),
        };
        pr_info!(
            "cache {} on {}: {} buckets of {} KiB, blocks of {} bytes\n",
            cache.sb.set_uuid,
            line_str(blk::cstr_bytes(&cache.name())),
            cache.sb.layout.data_buckets(),
            cache.sb.layout.bucket_sectors / 2,
            block_bytes
        );
        let mut entry = CacheEntry {
            cache,
            kobj: Some(kobj),
            owners,
        };
        // Attach the devices registered before the cache (but those the
        // operator detached, which go on uncached).
        for e in inner.devs.iter_mut().flatten() {
            if !e.held_off {
                Self::attach(e, &mut entry);
            }
            if !e.dev.is_attached() {
                entry.uncached(&e.dev);
            }
        }
        inner.cache = Some(entry);
        Ok(())
    }

    /// Attaches `e` to `cache` if their block sizes allow it, draining the
    /// device's I/O first (see [`crate::dev::Quiesced`]); a warning says
    /// why not otherwise. The device's geometry never changes.
    fn attach(e: &mut DevEntry, c: &mut CacheEntry) {
        let cache = &c.cache;
        let dev = &e.dev;
        if dev.is_stopping() {
            return;
        }
        let block = cache.block_bytes();
        if block > dev.lbs {
            pr_warn!(
                "bcache_rs{}: not attached to cache {}: its block size {} exceeds the disk's logical block size {}\n",
                dev.id, cache.sb.set_uuid, block, dev.lbs
            );
            return;
        }
        if let Some(disk) = e.disk.as_mut() {
            // SAFETY: the cache, which holds the SSD open, stays attached
            // until `detach`, which unlinks it first.
            if let Err(err) = unsafe { disk.link_ssd(&cache.ssd) } {
                pr_warn!(
                    "bcache_rs{}: not attached to cache {}: cannot link its SSD (error {})\n",
                    dev.id,
                    cache.sb.set_uuid,
                    err.to_errno()
                );
                return;
            }
        }
        // Allocated before the device is quiesced (no reclaim waits for it
        // then); not needed if its extents go.
        let intent = match Self::intent_of(cache, dev) {
            Ok(i) => i,
            Err(err) => {
                pr_warn!(
                    "bcache_rs{}: not attached to cache {}: no memory for its write-intent map (error {})\n",
                    dev.id,
                    cache.sb.set_uuid,
                    err.to_errno()
                );
                if let Some(disk) = e.disk.as_mut() {
                    disk.unlink_ssd();
                }
                return;
            }
        };
        let q = e.quiesce();
        // Decided with no I/O in flight: the extents under the device's
        // number are its own only if it is trusted, was not written
        // uncached since the cache restored them, and they were kept for
        // its UUID; any other number's extents of its UUID are stale (it
        // was written since).
        let id = usize::from(dev.id);
        let kept = dev.trust
            && !dev.written_uncached()
            && c.owners.get(id).copied().flatten() == Some(dev.uuid);
        let intent = if kept {
            intent
        } else {
            cache.remove_dev(dev.id);
            // Nor restored by a later registration, whatever it is
            // written with: durably, before its first write through the
            // cache (its allocations do no I/O: the queue is frozen).
            c.uncached(dev);
            None
        };
        for (j, o) in c.owners.iter_mut().enumerate() {
            if j != id && *o == Some(dev.uuid) {
                if let Ok(other) = DevId::try_from(j) {
                    cache.remove_dev(other);
                }
                *o = None;
            }
        }
        if let Some(o) = c.owners.get_mut(id) {
            *o = dev.trust.then_some(dev.uuid);
        }
        dev.cached_from_now();
        let old = e.dev.set_cache(&q, Some(cache.clone()), intent);
        drop(q);
        drop(old);
        cache.attached.fetch_add(1, Ordering::Relaxed);
    }

    /// The write-intent map of `dev` in `cache`'s journal: one if the
    /// checkpoint at the tail holds its extents.
    fn intent_of(cache: &CacheSet, dev: &Dev) -> Result<Option<Intent>> {
        let num = cache
            .journal
            .lock()
            .as_ref()
            .and_then(|j| j.ckpt_number(dev.uuid));
        let Some(num) = num else {
            return Ok(None);
        };
        let sectors = dev.backing.sectors().saturating_sub(dev.data_offset);
        Ok(Some(Intent::new(num, dev.uuid, sectors)?))
    }

    /// Detaches `e` from its cache: drains its I/O, and drops its extents
    /// unless the device is trusted and `owners` (the cache's) keeps them
    /// for it (a working cache only).
    fn detach(e: &mut DevEntry, owners: Option<&mut [Option<Uuid>]>) {
        let q = e.quiesce();
        let old = match e.dev.cache_quiesced(&q) {
            Some(c) => {
                let id = usize::from(e.dev.id);
                let slot = owners.and_then(|o| o.get_mut(id));
                let keep = e.dev.trust
                    && !c.is_failed()
                    && slot.as_ref().is_some_and(|o| **o == Some(e.dev.uuid));
                if !keep {
                    c.remove_dev(e.dev.id);
                    if let Some(o) = slot {
                        *o = None;
                    }
                }
                e.dev.set_cache(&q, None, None)
            }
            None => None,
        };
        drop(q);
        if let Some(c) = old {
            if let Some(disk) = e.disk.as_mut() {
                disk.unlink_ssd();
            }
            c.attached.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// `register_dev`: opens a backing device in place and adds its disk.
    pub(crate) fn register_dev(self: &Arc<Self>, line: &[u8]) -> Result {
        let (line_uuid, path, trust) = match format::parse_register_dev(line) {
            Ok(l) => (l.uuid, l.path, l.trust),
            Err(e) => fail!(errno_of(e.to_errno()), "register_dev: {}\n", e),
        };
        let p = line_str(path);
        let cpath = nul_terminated(path)?;
        let mut inner = self.inner.lock();
        if inner.closing {
            return Err(ENODEV);
        }
        let backing = match BdevFile::open(&cpath, self.holder()) {
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
        if let Some(c) = &inner.cache {
            if c.cache.ssd.devt() == backing.devt() {
                fail!(EEXIST, "register_dev: {}: it is the cache device\n", p);
            }
        }
        if backing.zoned() {
            fail!(
                eopnotsupp(),
                "register_dev: {}: zoned devices are not supported\n",
                p
            );
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
        let lbs = backing.logical_block_size();
        let lbs_sectors = u64::from(lbs / 512).max(1);
        // A backing superblock (bcache-rs format-backing) names the device
        // and says where its data starts; a formatted device is trusted
        // (its data is reached through bcache_rs), unless trust=0.
        let mut buf = KVec::from_elem(0u8, format::SB_SIZE, GFP_KERNEL)?;
        if let Err(e) = backing.read(format::SB_SECTOR, &mut buf) {
            fail!(
                e,
                "register_dev: {}: cannot read its superblock block (error {})\n",
                p,
                e.to_errno()
            );
        }
        let (uuid, trust, data_offset) = match format::BackingSb::decode(&buf) {
            Ok(b) => {
                if let Err(e) = b.check_device(backing.sectors()) {
                    fail!(errno_of(e.to_errno()), "register_dev: {}: {}\n", p, e);
                }
                if b.data_offset % lbs_sectors != 0 {
                    fail!(EINVAL, "register_dev: {}: data offset of {} sectors is not a multiple of the logical block size {}\n",
                        p, b.data_offset, lbs);
                }
                if let Some(u) = line_uuid.filter(|u| *u != b.uuid) {
                    fail!(
                        EINVAL,
                        "register_dev: {}: UUID {} given, its backing superblock names {}\n",
                        p,
                        u,
                        b.uuid
                    );
                }
                (b.uuid, trust.unwrap_or(true), b.data_offset)
            }
            Err(format::BackingError::NotFormatted) => match line_uuid {
                Some(u) => (u, trust.unwrap_or(false), 0),
                None => fail!(
                    EINVAL,
                    "register_dev: {}: no backing superblock: a device in place is registered as \"<uuid> <path>\"\n",
                    p
                ),
            },
            Err(e) => fail!(errno_of(e.to_errno()), "register_dev: {}: {}\n", p, e),
        };
        if inner.devs().any(|d| d.dev.uuid == uuid) {
            fail!(
                EEXIST,
                "register_dev: {}: UUID {} is already registered\n",
                p,
                uuid
            );
        }
        // The number the cache kept this UUID's extents under, else one
        // that holds no other device's, else any free one.
        let owners = inner.cache.as_ref().map(|c| &c.owners[..]).unwrap_or(&[]);
        let owner = |i: usize| owners.get(i).copied().flatten();
        let free = |i: usize| inner.devs.get(i).is_some_and(|d| d.is_none());
        let n = inner.devs.len();
        let slot = (0..n)
            .find(|&i| free(i) && owner(i) == Some(uuid))
            .or_else(|| (0..n).find(|&i| free(i) && owner(i).is_none()))
            .or_else(|| (0..n).find(|&i| free(i)));
        let Some(id) = slot.and_then(|i| DevId::try_from(i).ok()) else {
            fail!(
                ENOSPC,
                "register_dev: {}: {} devices are registered already\n",
                p,
                MAX_DEVS
            );
        };
        let sectors = backing.sectors().saturating_sub(data_offset) & !(lbs_sectors - 1);
        let dev = match Dev::new(
            id,
            uuid,
            trust,
            backing,
            data_offset,
            self.sets.clone(),
            self.wq.clone(),
        ) {
            Ok(d) => d,
            Err(e) => fail!(
                e,
                "register_dev: {}: cannot set the device up (error {})\n",
                p,
                e.to_errno()
            ),
        };
        // Everything that may fail without I/O first: once the disk exists,
        // its I/O may be in flight, and a failure goes through the teardown
        // (which drains it: a device is never dropped by the completion of
        // its last bio, in interrupt context).
        let dir = DevDir::new(dev.clone(), self.clone())?;
        // SAFETY: the backing device is owned by `dev`, which the disk keeps
        // alive (its owner) until it is removed.
        let disk = unsafe { Disk::create(&dev.backing, lbs, sectors, u32::from(id), dev.clone()) };
        let disk = match disk {
            Ok(d) => d,
            Err(e) => fail!(
                e,
                "register_dev: {}: cannot add bcache_rs{} (error {})\n",
                p,
                id,
                e.to_errno()
            ),
        };
        let kobj = KObj::create(disk_parent(&disk), b"bcache_rs\0", dir);
        // INVARIANT: the disk was made with `dev`, the directory under it.
        let mut entry = DevEntry {
            dev,
            disk: Some(disk),
            kobj: None,
            held_off: false,
        };
        match kobj {
            Ok(k) => entry.kobj = Some(k),
            Err(e) => {
                self.teardown_dev(entry, None);
                fail!(
                    e,
                    "register_dev: {}: cannot create its sysfs directory\n",
                    p
                );
            }
        }
        if let Some(c) = inner.cache.as_mut() {
            if !c.cache.is_failed() {
                Self::attach(&mut entry, c);
            }
            if !entry.dev.is_attached() {
                c.uncached(&entry.dev);
            }
        }
        let cached = entry.dev.is_attached();
        let name = entry.dev.backing.name();
        pr_info!(
            "bcache_rs{}: {} ({}) on {}{}, {} sectors{}, {}\n",
            id,
            uuid,
            p,
            line_str(blk::cstr_bytes(&name)),
            if data_offset > 0 { " (formatted)" } else { "" },
            sectors,
            if trust { ", trusted" } else { "" },
            if cached {
                "cached"
            } else if inner.cache.is_some() {
                "not cached"
            } else {
                "uncached until a cache is registered"
            }
        );
        if let Some(slot) = inner.devs.get_mut(usize::from(id)) {
            *slot = Some(entry);
        }
        Ok(())
    }

    /// Removes a device's directory and disk, waits for its I/O, drops its
    /// extents and detaches it. The registry drops a device only here,
    /// after its I/O drained: so the last reference of a device is never
    /// an I/O's, dropped in interrupt context.
    fn teardown_dev(&self, mut e: DevEntry, owners: Option<&mut [Option<Uuid>]>) {
        drop(e.kobj.take());
        // No submitter and no opener after this.
        drop(e.disk.take());
        Self::detach(&mut e, owners);
        // Deferred completions of the device ran (they were counted in its
        // I/O); its work item may still hold a reference: let it finish, so
        // that the device is released here.
        self.wq.flush();
    }

    /// `stop` of device `dev`: refused (`EBUSY`) while its disk is open;
    /// from the moment it is accepted no open succeeds. Synchronous: the
    /// disk is gone and the device detached when it returns.
    pub(crate) fn stop_dev(&self, dev: &Arc<Dev>) -> Result {
        let mut inner = self.inner.lock();
        let Some(slot) = inner.slot_of(dev) else {
            // Stopped meanwhile (a concurrent `stop`).
            return Ok(());
        };
        if let Some(disk) = slot.as_ref().and_then(|e| e.disk.as_ref()) {
            let opens = disk.lock_opens();
            if let Err(e) = dev.begin_stop(opens.openers()) {
                fail!(e, "bcache_rs{}: stop: the disk is open\n", dev.id);
            }
        }
        if let Some(e) = slot.take() {
            let owners = inner.cache.as_mut().map(|c| &mut c.owners[..]);
            self.teardown_dev(e, owners);
            pr_info!("bcache_rs{}: stopped\n", dev.id);
        }
        Ok(())
    }

    /// `detach` of device `dev`: its I/O drained, it goes on uncached, and
    /// its extents are dropped (written while detached, they would be
    /// stale); a cache registered later leaves it alone until `attach`.
    /// Detached already is success.
    pub(crate) fn detach_dev(&self, dev: &Arc<Dev>) -> Result {
        let mut inner = self.inner.lock();
        let RegInner { devs, cache, .. } = &mut *inner;
        let Some(e) = devs.iter_mut().flatten().find(|e| Arc::ptr_eq(&e.dev, dev)) else {
            // Stopped meanwhile.
            return Ok(());
        };
        e.held_off = true;
        if !e.dev.is_attached() {
            return Ok(());
        }
        // No owners: the extents go, whatever the device's trust.
        Self::detach(e, None);
        if let Some(c) = cache.as_mut() {
            if let Some(o) = c.owners.get_mut(usize::from(dev.id)) {
                *o = None;
            }
            c.uncached(dev);
            pr_info!(
                "bcache_rs{}: detached from cache {} (its cached data dropped)\n",
                dev.id,
                c.cache.sb.set_uuid
            );
        }
        Ok(())
    }

    /// `attach` of device `dev` to the registered cache: `ENODEV` without
    /// one (or a failed one), `EINVAL` if their block sizes do not allow it
    /// (the kernel log says why). Attached already is success.
    pub(crate) fn attach_dev(&self, dev: &Arc<Dev>) -> Result {
        let mut inner = self.inner.lock();
        let RegInner { devs, cache, .. } = &mut *inner;
        let Some(e) = devs.iter_mut().flatten().find(|e| Arc::ptr_eq(&e.dev, dev)) else {
            fail!(
                ENODEV,
                "bcache_rs{}: attach: the device is stopping\n",
                dev.id
            );
        };
        if e.dev.is_attached() {
            e.held_off = false;
            return Ok(());
        }
        let Some(c) = cache.as_mut().filter(|c| !c.cache.is_failed()) else {
            fail!(
                ENODEV,
                "bcache_rs{}: attach: no working cache is registered\n",
                dev.id
            );
        };
        Self::attach(e, c);
        if !e.dev.is_attached() {
            // `attach` said why; the device stays held off.
            return Err(EINVAL);
        }
        e.held_off = false;
        pr_info!(
            "bcache_rs{}: attached to cache {}\n",
            dev.id,
            c.cache.sb.set_uuid
        );
        Ok(())
    }

    /// `unregister` of the cache: refused (`EBUSY`) while devices are
    /// attached to a working cache; a failed cache is detached from its
    /// devices (they go on uncached). Synchronous.
    pub(crate) fn unregister_cache(&self, cache: &Arc<CacheSet>) -> Result {
        let mut inner = self.inner.lock();
        let ours = inner
            .cache
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(&c.cache, cache));
        if !ours {
            return Ok(());
        }
        let attached = cache.attached.load(Ordering::Relaxed);
        if attached > 0 && !cache.is_failed() {
            fail!(
                EBUSY,
                "cache {}: unregister: {} devices are attached; stop them first\n",
                cache.sb.set_uuid,
                attached
            );
        }
        let RegInner {
            devs,
            cache: centry,
            ..
        } = &mut *inner;
        let mut owners = centry.as_mut().map(|c| &mut c.owners[..]);
        for e in devs.iter_mut().flatten() {
            if e.dev.is_attached() {
                Self::detach(e, owners.as_deref_mut());
                pr_info!(
                    "bcache_rs{}: detached from the failed cache {}\n",
                    e.dev.id,
                    cache.sb.set_uuid
                );
            }
        }
        if let Some(c) = inner.cache.take() {
            self.teardown_cache(c);
        }
        Ok(())
    }

    /// Removes the cache's directory and, if it works and keeps its
    /// index, writes its checkpoint (no device is attached: nothing
    /// changes the index but the background pass, which is flushed).
    fn teardown_cache(&self, entry: CacheEntry) {
        let CacheEntry {
            cache,
            kobj,
            owners,
        } = entry;
        drop(kobj);
        // The background pass holds a reference while it runs.
        self.wq.flush();
        let uuid = cache.sb.set_uuid;
        checkpoint(&cache, &owners);
        pr_info!("cache {}: unregistered\n", uuid);
        drop(cache);
    }

    /// Reboot, halt or power off: every device's I/O drains and fails from
    /// then on (`EIO`), so that nothing is written after the checkpoint,
    /// which is written next; nothing more is registered. The disks stay
    /// (they may be open); the module unload that may follow tears down.
    pub(crate) fn shutdown(&self) {
        let mut inner = self.inner.lock();
        if inner.closing {
            return;
        }
        inner.closing = true;
        let RegInner { devs, cache, .. } = &mut *inner;
        for e in devs.iter().flatten() {
            let q = e.quiesce();
            e.dev.set_down();
            drop(q);
        }
        if let Some(c) = cache.as_ref() {
            // Its background pass may journal bucket records: done first.
            self.wq.flush();
            checkpoint(&c.cache, &c.owners);
        }
        pr_info!("shutting down: the I/O of bcache_rs disks fails from now on\n");
    }

    /// Module unload: stops every device, unregisters the cache, and
    /// refuses any later registration.
    pub(crate) fn teardown_all(&self) {
        let mut inner = self.inner.lock();
        inner.closing = true;
        let RegInner { devs, cache, .. } = &mut *inner;
        let mut owners = cache.as_mut().map(|c| &mut c.owners[..]);
        for slot in devs.iter_mut() {
            if let Some(e) = slot.take() {
                self.teardown_dev(e, owners.as_deref_mut());
            }
        }
        if let Some(c) = inner.cache.take() {
            self.teardown_cache(c);
        }
    }
}

impl crate::blk::OnReboot for Registry {
    fn on_reboot(&self) {
        self.shutdown();
    }
}
