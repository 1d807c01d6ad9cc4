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
//!
//! The crate, by concept:
//!
//! - `registry`: what is registered, and every operation that changes it
//!   (register, attach, detach, stop, unregister, unload), under one mutex;
//! - `cache_set`: a cache device: the core under its irq-safe lock, the
//!   bucket pins, SSD errors, the background pass;
//! - `dev`: a backing device and its disk: settings, statistics, the I/O
//!   references that make attach, detach and teardown safe;
//! - `datapath`: the bios of a disk and their completions;
//! - `sysfs`: the files, one enum per directory;
//! - `blk`: every call into C (`bcache_rs_c.c`), in owning types;
//! - the kernel-agnostic core (`rust/bcache`: index, buckets, collisions),
//!   the B+tree it indexes with, and the on-disk format shared with the
//!   `bcache-rs` tool, included from their host crates.
//!
//! Documentation/admin-guide/bcache_rs.rst is the operator's guide,
//! Documentation/bcache_rs-design.rst the design (ownership, locks and
//! their hold bounds, eviction), Documentation/ABI/testing/sysfs-bcache_rs
//! the sysfs ABI.

// `pin_init!` of the device's and cache's many fields.
#![recursion_limit = "256"]

use kernel::prelude::*;
use kernel::sync::Arc;

#[allow(unreachable_pub, dead_code)]
#[path = "../bcache/src/bcache.rs"]
mod bcache;
mod blk;
#[allow(unreachable_pub, dead_code)]
#[path = "../btree/src/btree.rs"]
mod btree;
mod cache_set;
mod datapath;
mod dev;
#[allow(unreachable_pub, dead_code)]
#[path = "../bcache_format/src/format.rs"]
mod format;
mod journal;
#[path = "../kglue/node_alloc.rs"]
mod node_alloc;
#[allow(unreachable_pub, dead_code)]
#[path = "../bcache/src/persist.rs"]
mod persist;
mod registry;
#[allow(unreachable_pub, dead_code)]
#[path = "../bcache/src/sums.rs"]
mod sums;
mod sysfs;

use blk::{KObj, Major, Parent, RebootHook, WorkQueue};
use core::sync::atomic::Ordering;
use registry::Registry;

module! {
    type: BcacheRs,
    name: "bcache_rs",
    author: "rust-kmods",
    description: "bcache_rs: an SSD cache for block devices, indexed by a B+tree",
    license: "GPL",
}

/// The module: its block major, workqueue, registry and root directory.
///
/// # Invariants
///
/// `root` is `Some` while the module is live; drop tears the registry down
/// before the directory, the workqueue and the major go.
struct BcacheRs {
    /// Checkpoints the cache at reboot; dropped first.
    reboot: Option<RebootHook>,
    root: Option<KObj<Registry>>,
    registry: Arc<Registry>,
    wq: Arc<WorkQueue>,
    _major: Major,
}

impl kernel::Module for BcacheRs {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        if !blk::crc32c_ok() {
            pr_err!("the data checksums' crc32c gives wrong values: not loaded\n");
            return Err(EINVAL);
        }
        let major = Major::register()?;
        let wq = Arc::new(WorkQueue::new()?, GFP_KERNEL)?;
        let registry = Registry::new(wq.clone())?;
        let root = KObj::create(Parent::Kernel, b"bcache_rs\0", registry.clone())?;
        registry.set_root(root.parent_handle());
        // SAFETY: the registry lives in `Self`, which drops the hook first.
        let reboot = unsafe { RebootHook::register(&*registry)? };
        pr_info!("loaded: /sys/kernel/bcache_rs/register_cache and register_dev\n");
        // INVARIANT: the directory is made.
        Ok(Self {
            reboot: Some(reboot),
            root: Some(root),
            registry,
            wq,
            _major: major,
        })
    }
}

impl Drop for BcacheRs {
    fn drop(&mut self) {
        // No reboot call runs or starts after this.
        drop(self.reboot.take());
        // Every device and the cache go (no disk is open: the module would
        // be pinned), and nothing more is registered...
        self.registry.teardown_all();
        // ...then the root directory (waiting for writes in progress, which
        // now fail), and the module's work.
        drop(self.root.take());
        self.wq.flush();
        let devs = blk::LIVE_DEVS.load(Ordering::Relaxed);
        let caches = blk::LIVE_CACHES.load(Ordering::Relaxed);
        if devs + caches > 0 {
            // A reference leaked: its backing device or SSD stays held.
            pr_err!(
                "rkm-leak: {} devices and {} caches still alive after unload\n",
                devs,
                caches
            );
        }
    }
}
