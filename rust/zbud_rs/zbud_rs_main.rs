// SPDX-License-Identifier: GPL-2.0

//! zbud_rs: the zbud allocator as a zpool driver, in Rust.
//!
//! - Registers the zpool type `zbud_rs` (module alias `zpool-zbud_rs`), so
//!   `echo zbud_rs > /sys/module/zswap/parameters/zpool` loads and uses it.
//! - The allocator is `rust/zbud` (kernel-agnostic, host-tested): at most two
//!   compressed objects per page, the page in 64 chunks with the header in
//!   the first, the first buddy left-justified after it and the last
//!   right-justified at the end, unbuddied lists by free chunks, a buddied
//!   list; handles checked against a per-pool slot table.
//! - `pool.rs` puts it under a spinlock, counts statistics into debugfs
//!   (`/sys/kernel/debug/zbud_rs/<pool>/`) and reports bad handles.
//! - The zpool C ABI is `rust/kglue/zpool{,_driver}.rs` + `zpool_driver.c.inc`, shared
//!   with every Rust zpool driver.
//!
//! A pool holds a reference on the module: `rmmod` fails while zswap uses
//! one.

use kernel::c_str;
use kernel::prelude::*;

#[path = "../kglue/debugfs.rs"]
mod debugfs;
#[path = "../kglue/pages.rs"]
mod pages;
#[path = "pool.rs"]
mod pool;
// The core's public API is the host crate's; a module uses part of it.
#[allow(unreachable_pub, dead_code)]
#[path = "../zbud/src/zbud.rs"]
mod zbud;
#[path = "../kglue/zpool.rs"]
mod zpool;
#[path = "../kglue/zpool_driver.rs"]
mod zpool_driver;

zpool_driver::zpool_trampolines!(pool::ZbudPool);

module! {
    type: ZbudRs,
    name: "zbud_rs",
    author: "rust-kmods",
    description: "zbud in Rust: a zpool allocator storing two compressed pages per page",
    license: "GPL",
}

/// The loaded module: the debugfs directory and the driver's registration.
///
/// # Invariants
///
/// `pool::DEBUGFS_ROOT` holds `_debugfs` from `init` until `drop`.
struct ZbudRs {
    registration: Option<zpool_driver::Registration>,
    _debugfs: debugfs::Dir,
}

impl kernel::Module for ZbudRs {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let debugfs = debugfs::Dir::new(c_str!("zbud_rs"), None);
        // SAFETY: every pool creates its directory in it and holds a
        // reference on the module, so `debugfs` (dropped with the module,
        // after `drop` clears the slot) outlives them.
        unsafe { pool::DEBUGFS_ROOT.set(&debugfs) };
        let registration = Some(zpool_driver::Registration::new());
        pr_info!("registered the zpool type zbud_rs\n");
        Ok(ZbudRs {
            registration,
            _debugfs: debugfs,
        })
    }
}

impl Drop for ZbudRs {
    fn drop(&mut self) {
        // Unregister first: no pool can be created after this.
        drop(self.registration.take());
        pool::DEBUGFS_ROOT.clear();
        // `_debugfs` is removed after this, when the fields are dropped.
    }
}
