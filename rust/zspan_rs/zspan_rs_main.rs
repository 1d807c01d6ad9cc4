// SPDX-License-Identifier: GPL-2.0

//! zspan_rs: the zspan size-class allocator as a zpool driver, in Rust.
//!
//! - Registers the zpool type `zspan_rs` (module alias `zpool-zspan_rs`), so
//!   `echo zspan_rs > /sys/module/zswap/parameters/zpool` loads and uses it.
//! - The allocator is `rust/zspan` (kernel-agnostic, host-tested): size
//!   classes on spans of up to 6 pages, objects that cross page boundaries,
//!   metadata in two slot tables (none in the object pages), checked
//!   handles, bounded compaction that never moves a mapped object, maps
//!   and unmaps without the pool's lock (the object pinned meanwhile).
//! - `pool.rs` hands it to the glue shared by every Rust zpool driver
//!   (`rust/kglue/zpool_pool.rs`: a spinlock, debugfs counters in
//!   `/sys/kernel/debug/zspan_rs/<pool>/`, bad-handle and leak reports),
//!   which maps an object in two pieces through a per-CPU buffer
//!   (`rust/kglue/map_area.rs`, allocated here at load): the driver's
//!   `sleep_mapped` is false, as zsmalloc's.
//!
//! A pool holds a reference on the module: `rmmod` fails while zswap uses
//! one.

use kernel::c_str;
use kernel::prelude::*;

#[path = "../kglue/debugfs.rs"]
mod debugfs;
#[path = "../kglue/map_area.rs"]
mod map_area;
#[path = "../kglue/pages.rs"]
mod pages;
#[path = "pool.rs"]
mod pool;
// The cores' public API is the host crates'; a module uses part of it.
#[allow(unreachable_pub, dead_code)]
#[path = "../zalloc/src/zalloc.rs"]
mod zalloc;
#[path = "../kglue/zpool.rs"]
mod zpool;
#[path = "../kglue/zpool_driver.rs"]
mod zpool_driver;
#[path = "../kglue/zpool_pool.rs"]
mod zpool_pool;
#[allow(unreachable_pub, dead_code)]
#[path = "../zspan/src/zspan.rs"]
mod zspan;

zpool_driver::zpool_trampolines!(pool::ZspanPool);

module! {
    type: ZspanRs,
    name: "zspan_rs",
    author: "rust-kmods",
    description: "zspan: a zpool allocator with size classes on spans of up to 6 pages",
    license: "GPL",
}

/// The loaded module: the per-CPU buffers, then the driver (dropped first,
/// in declaration order: no pool exists once it is unregistered).
struct ZspanRs {
    _driver: zpool_driver::Driver,
    _areas: map_area::MapAreas,
}

impl kernel::Module for ZspanRs {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let areas = map_area::MapAreas::new()?;
        Ok(ZspanRs {
            _driver: zpool_driver::Driver::new(c_str!("zspan_rs")),
            _areas: areas,
        })
    }
}
