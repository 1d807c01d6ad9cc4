// SPDX-License-Identifier: GPL-2.0

//! The sysfs files of bcache_rs (Documentation/ABI/testing/sysfs-bcache_rs):
//! `/sys/kernel/bcache_rs/` (the registry), its `cache/` directory and each
//! disk's `bcache_rs/` directory. Each directory's files are one enum,
//! declared once with their names and modes.

use crate::blk::{sysfs_attrs, PageWriter, Store, SysfsDir};
use crate::cache_set::{CacheSet, MIN_INDEX_MAX};
use crate::dev::{CacheMode, Dev};
use crate::registry::{line_str, Registry};
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::prelude::*;
use kernel::sync::{Arc, ArcBorrow};

const RO: u16 = 0o444;
const WO: u16 = 0o200;
const RW: u16 = 0o644;

sysfs_attrs!(
    /// `/sys/kernel/bcache_rs/`.
    enum RootAttr {
        RegisterCache = ("register_cache", WO),
        RegisterDev = ("register_dev", WO),
    }
);

sysfs_attrs!(
    /// `/sys/kernel/bcache_rs/cache/`.
    enum CacheAttr {
        Unregister = ("unregister", WO),
        SetUuid = ("set_uuid", RO),
        Device = ("device", RO),
        State = ("state", RO),
        BlockSize = ("block_size", RO),
        BucketSize = ("bucket_size", RO),
        BucketsTotal = ("buckets_total", RO),
        BucketsFree = ("buckets_free", RO),
        BucketsInUse = ("buckets_in_use", RO),
        IndexEntries = ("index_entries", RO),
        IndexMemory = ("index_memory", RO),
        IndexMemoryMax = ("index_memory_max", RW),
        StaleDropped = ("stale_dropped", RO),
        Invalidated = ("invalidated", RO),
        BucketReuse = ("bucket_reuse", RO),
        IndexEvictions = ("index_evictions", RO),
        IoErrors = ("io_errors", RO),
        IoErrorsRecent = ("io_errors_recent", RO),
        IoErrorLimit = ("io_error_limit", RW),
        IoErrorHalflife = ("io_error_halflife", RW),
        Attached = ("attached", RO),
        RestoredExtents = ("restored_extents", RO),
        DataCsum = ("data_csum", RO),
        CsumErrors = ("csum_errors", RO),
        SumsMemory = ("sums_memory", RO),
    }
);

sysfs_attrs!(
    /// `/sys/block/bcache_rs<N>/bcache_rs/`.
    enum DevAttr {
        Stop = ("stop", WO),
        Attach = ("attach", WO),
        Detach = ("detach", WO),
        Uuid = ("uuid", RO),
        Trusted = ("trusted", RO),
        DataOffset = ("data_offset", RO),
        BackingDev = ("backing_dev", RO),
        State = ("state", RO),
        CacheMode = ("cache_mode", RW),
        SequentialCutoff = ("sequential_cutoff", RW),
        Hits = ("hits", RO),
        Misses = ("misses", RO),
        BypassHits = ("bypass_hits", RO),
        BypassMisses = ("bypass_misses", RO),
        HitRatio = ("hit_ratio", RO),
        MissCollisions = ("miss_collisions", RO),
        Fills = ("fills", RO),
        BytesFromCache = ("bytes_from_cache", RO),
        BytesFromBacking = ("bytes_from_backing", RO),
        BytesWritten = ("bytes_written", RO),
        SsdReadRetries = ("ssd_read_retries", RO),
        CsumErrors = ("csum_errors", RO),
        AllocFailures = ("alloc_failures", RO),
        ClearStats = ("clear_stats", WO),
    }
);

/// `pr_err` of a refused write and its errno.
macro_rules! refuse {
    ($err:expr, $($arg:tt)*) => {{
        pr_err!($($arg)*);
        return Err($err);
    }};
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

/// A size in bytes, with an optional k/m/g suffix.
fn parse_u64(s: &[u8]) -> Option<u64> {
    let s = trimmed(s);
    let (digits, mult) = match s.split_last() {
        Some((b'k' | b'K', d)) => (d, 1u64 << 10),
        Some((b'm' | b'M', d)) => (d, 1 << 20),
        Some((b'g' | b'G', d)) => (d, 1 << 30),
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

impl SysfsDir for Registry {
    type Attr = RootAttr;

    fn lock_class() -> &'static kernel::sync::LockClassKey {
        kernel::static_lock_class!()
    }

    fn show(_this: &Self, _attr: RootAttr, _w: &mut PageWriter) -> core::fmt::Result {
        Ok(())
    }

    fn store(this: ArcBorrow<'_, Self>, attr: RootAttr, input: &[u8], _: &Store) -> Result {
        let reg: Arc<Registry> = this.into();
        match attr {
            RootAttr::RegisterCache => reg.register_cache(input),
            RootAttr::RegisterDev => reg.register_dev(input),
        }
    }
}

/// The owner of the cache's directory.
pub(crate) struct CacheDir {
    cache: Arc<CacheSet>,
    reg: Arc<Registry>,
}

impl CacheDir {
    pub(crate) fn new(cache: Arc<CacheSet>, reg: Arc<Registry>) -> Result<Arc<Self>> {
        Ok(Arc::new(CacheDir { cache, reg }, GFP_KERNEL)?)
    }
}

impl SysfsDir for CacheDir {
    type Attr = CacheAttr;

    fn lock_class() -> &'static kernel::sync::LockClassKey {
        kernel::static_lock_class!()
    }

    fn show(this: &Self, attr: CacheAttr, w: &mut PageWriter) -> core::fmt::Result {
        let c = &this.cache;
        let l = &c.sb.layout;
        match attr {
            CacheAttr::Unregister => Ok(()),
            CacheAttr::SetUuid => writeln!(w, "{}", c.sb.set_uuid),
            CacheAttr::Device => writeln!(w, "{}", line_str(crate::blk::cstr_bytes(&c.name()))),
            CacheAttr::State => writeln!(w, "{}", if c.is_failed() { "failed" } else { "active" }),
            CacheAttr::BlockSize => writeln!(w, "{}", c.block_bytes()),
            CacheAttr::BucketSize => writeln!(w, "{}", u64::from(l.bucket_sectors) * 512),
            CacheAttr::BucketsTotal => writeln!(w, "{}", l.data_buckets()),
            CacheAttr::BucketsFree => writeln!(w, "{}", c.core.lock().buckets.free()),
            CacheAttr::BucketsInUse => writeln!(w, "{}", c.core.lock().buckets.in_use()),
            CacheAttr::IndexEntries => writeln!(w, "{}", c.core.lock().index.len()),
            CacheAttr::IndexMemory => writeln!(w, "{}", c.core.lock().index.memory_bytes()),
            CacheAttr::IndexMemoryMax => writeln!(w, "{}", c.core.lock().index.max_bytes()),
            CacheAttr::StaleDropped => writeln!(w, "{}", c.core.lock().index.stale_dropped()),
            CacheAttr::Invalidated => {
                writeln!(w, "{}", c.core.lock().buckets.stats().invalidated)
            }
            CacheAttr::BucketReuse => {
                // The least and most invalidations of a bucket, 4096
                // buckets a hold of the lock.
                let (mut lo, mut hi) = (u32::MAX, 0u32);
                let mut from = 0usize;
                while let Some((a, b)) = c.core.lock().buckets.gen_range(from, 4096) {
                    lo = lo.min(a);
                    hi = hi.max(b);
                    from += 4096;
                }
                writeln!(w, "{} {}", lo.min(hi), hi)
            }
            CacheAttr::IndexEvictions => {
                writeln!(w, "{}", c.core.lock().buckets.stats().index_evictions)
            }
            CacheAttr::IoErrors => writeln!(w, "{}", c.errors().1),
            CacheAttr::IoErrorsRecent => writeln!(w, "{}", c.errors().0),
            CacheAttr::IoErrorLimit => writeln!(w, "{}", c.error_limit.load(Ordering::Relaxed)),
            CacheAttr::IoErrorHalflife => {
                writeln!(w, "{}", c.error_halflife.load(Ordering::Relaxed))
            }
            CacheAttr::Attached => writeln!(w, "{}", c.attached.load(Ordering::Relaxed)),
            CacheAttr::RestoredExtents => writeln!(w, "{}", c.restored),
            CacheAttr::DataCsum => writeln!(w, "{}", u8::from(c.csum)),
            CacheAttr::CsumErrors => writeln!(w, "{}", c.csum_errors()),
            CacheAttr::SumsMemory => writeln!(w, "{}", c.sums.memory_bytes()),
        }
    }

    fn store(this: ArcBorrow<'_, Self>, attr: CacheAttr, input: &[u8], store: &Store) -> Result {
        let c = &this.cache;
        let uuid = c.sb.set_uuid;
        let value = || parse_u64(input).and_then(|v| u32::try_from(v).ok());
        match attr {
            CacheAttr::Unregister => {
                if trimmed(input) != b"1" {
                    refuse!(
                        EINVAL,
                        "cache {}: unregister: write 1, not '{}'\n",
                        uuid,
                        line_str(trimmed(input))
                    );
                }
                // Our own references: the directory goes under the mutex.
                let dir: Arc<CacheDir> = this.into();
                let _unprotected = store.unprotect()?;
                dir.reg.unregister_cache(&dir.cache)
            }
            CacheAttr::IndexMemoryMax => {
                match parse_u64(input).and_then(|v| usize::try_from(v).ok()) {
                    Some(v) if v >= MIN_INDEX_MAX => {
                        c.core.lock().index.set_max_bytes(v);
                        Ok(())
                    }
                    _ => refuse!(
                        EINVAL,
                        "cache {}: index_memory_max: '{}' is not a size of at least {} bytes\n",
                        uuid,
                        line_str(trimmed(input)),
                        MIN_INDEX_MAX
                    ),
                }
            }
            CacheAttr::IoErrorLimit => match value() {
                Some(v) if v > 0 => {
                    c.error_limit.store(v, Ordering::Relaxed);
                    Ok(())
                }
                _ => refuse!(
                    EINVAL,
                    "cache {}: io_error_limit: '{}' is not a number above 0\n",
                    uuid,
                    line_str(trimmed(input))
                ),
            },
            CacheAttr::IoErrorHalflife => match value() {
                Some(v) => {
                    c.error_halflife.store(v, Ordering::Relaxed);
                    Ok(())
                }
                None => refuse!(
                    EINVAL,
                    "cache {}: io_error_halflife: '{}' is not a number of I/Os\n",
                    uuid,
                    line_str(trimmed(input))
                ),
            },
            _ => Err(EINVAL),
        }
    }
}

/// The owner of a device's directory.
pub(crate) struct DevDir {
    dev: Arc<Dev>,
    reg: Arc<Registry>,
}

impl DevDir {
    pub(crate) fn new(dev: Arc<Dev>, reg: Arc<Registry>) -> Result<Arc<Self>> {
        Ok(Arc::new(DevDir { dev, reg }, GFP_KERNEL)?)
    }
}

impl SysfsDir for DevDir {
    type Attr = DevAttr;

    fn lock_class() -> &'static kernel::sync::LockClassKey {
        kernel::static_lock_class!()
    }

    fn show(this: &Self, attr: DevAttr, w: &mut PageWriter) -> core::fmt::Result {
        let d = &this.dev;
        let s = &d.stats;
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        match attr {
            DevAttr::Stop | DevAttr::Attach | DevAttr::Detach | DevAttr::ClearStats => Ok(()),
            DevAttr::Uuid => writeln!(w, "{}", d.uuid),
            DevAttr::Trusted => writeln!(w, "{}", u8::from(d.trust)),
            DevAttr::DataOffset => writeln!(w, "{}", d.data_offset),
            DevAttr::BackingDev => {
                writeln!(w, "{}", line_str(crate::blk::cstr_bytes(&d.backing.name())))
            }
            DevAttr::State => writeln!(w, "{}", this.state()),
            DevAttr::CacheMode => {
                let m = d.mode();
                for (i, mode) in CacheMode::ALL.iter().enumerate() {
                    let sep = if i == 0 { "" } else { " " };
                    if *mode == m {
                        write!(w, "{sep}[{}]", mode.name())?;
                    } else {
                        write!(w, "{sep}{}", mode.name())?;
                    }
                }
                writeln!(w)
            }
            DevAttr::SequentialCutoff => writeln!(w, "{}", ld(&d.seq_cutoff)),
            DevAttr::Hits => writeln!(w, "{}", ld(&s.hits)),
            DevAttr::Misses => writeln!(w, "{}", ld(&s.misses)),
            DevAttr::BypassHits => writeln!(w, "{}", ld(&s.bypass_hits)),
            DevAttr::BypassMisses => writeln!(w, "{}", ld(&s.bypass_misses)),
            DevAttr::HitRatio => {
                let (h, m) = (ld(&s.hits), ld(&s.misses));
                let pct = h
                    .saturating_mul(100)
                    .checked_div(h.saturating_add(m))
                    .unwrap_or(0);
                writeln!(w, "{pct}")
            }
            DevAttr::MissCollisions => writeln!(w, "{}", ld(&s.collisions)),
            DevAttr::Fills => writeln!(w, "{}", ld(&s.fills)),
            DevAttr::BytesFromCache => writeln!(w, "{}", ld(&s.cache_sectors).saturating_mul(512)),
            DevAttr::BytesFromBacking => {
                writeln!(w, "{}", ld(&s.backing_sectors).saturating_mul(512))
            }
            DevAttr::BytesWritten => writeln!(w, "{}", ld(&s.written_sectors).saturating_mul(512)),
            DevAttr::SsdReadRetries => writeln!(w, "{}", ld(&s.ssd_retries)),
            DevAttr::CsumErrors => writeln!(w, "{}", ld(&s.csum_errors)),
            DevAttr::AllocFailures => writeln!(w, "{}", ld(&s.alloc_failures)),
        }
    }

    fn store(this: ArcBorrow<'_, Self>, attr: DevAttr, input: &[u8], store: &Store) -> Result {
        let d = &this.dev;
        let id = d.id;
        match attr {
            DevAttr::Stop => {
                if trimmed(input) != b"1" {
                    refuse!(
                        EINVAL,
                        "bcache_rs{}: stop: write 1, not '{}'\n",
                        id,
                        line_str(trimmed(input))
                    );
                }
                // Our own references: the directory goes under the mutex.
                let dir: Arc<DevDir> = this.into();
                let _unprotected = store.unprotect()?;
                dir.reg.stop_dev(&dir.dev)
            }
            DevAttr::Attach | DevAttr::Detach => {
                let name = if attr == DevAttr::Attach {
                    "attach"
                } else {
                    "detach"
                };
                if trimmed(input) != b"1" {
                    refuse!(
                        EINVAL,
                        "bcache_rs{}: {}: write 1, not '{}'\n",
                        id,
                        name,
                        line_str(trimmed(input))
                    );
                }
                // Like `stop`: a concurrent stop removes this directory
                // under the registry's mutex.
                let dir: Arc<DevDir> = this.into();
                let _unprotected = store.unprotect()?;
                if attr == DevAttr::Attach {
                    dir.reg.attach_dev(&dir.dev)
                } else {
                    dir.reg.detach_dev(&dir.dev)
                }
            }
            DevAttr::CacheMode => {
                let want = trimmed(input);
                match CacheMode::ALL.iter().find(|m| m.name().as_bytes() == want) {
                    Some(m) => {
                        d.set_mode(*m);
                        Ok(())
                    }
                    None => refuse!(
                        EINVAL,
                        "bcache_rs{}: cache_mode: '{}' is not writethrough, writearound or none\n",
                        id,
                        line_str(want)
                    ),
                }
            }
            DevAttr::SequentialCutoff => match parse_u64(input) {
                Some(v) => {
                    d.seq_cutoff.store(v, Ordering::Relaxed);
                    Ok(())
                }
                None => refuse!(
                    EINVAL,
                    "bcache_rs{}: sequential_cutoff: '{}' is not a size in bytes\n",
                    id,
                    line_str(trimmed(input))
                ),
            },
            DevAttr::ClearStats => {
                if trimmed(input) != b"1" {
                    refuse!(
                        EINVAL,
                        "bcache_rs{}: clear_stats: write 1, not '{}'\n",
                        id,
                        line_str(trimmed(input))
                    );
                }
                d.stats.clear();
                Ok(())
            }
            _ => Err(EINVAL),
        }
    }
}

impl DevDir {
    fn state(&self) -> &'static str {
        match self.dev.cache_failed() {
            None => "no cache",
            Some(true) => "cache failed",
            Some(false) => "cached",
        }
    }
}
