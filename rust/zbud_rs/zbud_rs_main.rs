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
//! - `pool.rs` hands it to the glue shared by every Rust zpool driver
//!   (`rust/kglue/zpool_pool.rs`), which puts it under a spinlock, counts
//!   statistics into debugfs (`/sys/kernel/debug/zbud_rs/<pool>/`) and
//!   reports bad handles.
//! - The zpool C ABI is `rust/kglue/zpool{,_driver}.rs` + `zpool_driver.c.inc`,
//!   also shared.
//!
//! A pool holds a reference on the module: `rmmod` fails while zswap uses
//! one.

use kernel::c_str;
use kernel::prelude::*;

#[path = "../kglue/debugfs.rs"]
mod debugfs;
// The pool glue's per-CPU buffers: this core never maps an object in
// two pieces, so the module allocates none.
#[allow(dead_code)]
#[path = "../kglue/map_area.rs"]
mod map_area;
#[path = "../kglue/pages.rs"]
mod pages;
#[path = "pool.rs"]
mod pool;
// The core's public API is the host crate's; a module uses part of it.
#[allow(unreachable_pub, dead_code)]
#[path = "../zalloc/src/zalloc.rs"]
mod zalloc;
#[allow(unreachable_pub, dead_code)]
#[path = "../zbud/src/zbud.rs"]
mod zbud;
#[path = "../kglue/zpool.rs"]
mod zpool;
#[path = "../kglue/zpool_driver.rs"]
mod zpool_driver;
#[path = "../kglue/zpool_pool.rs"]
mod zpool_pool;

zpool_driver::zpool_trampolines!(pool::ZbudPool);

module! {
    type: ZbudRs,
    name: "zbud_rs",
    author: "rust-kmods",
    description: "zbud in Rust: a zpool allocator storing two compressed pages per page",
    license: "GPL",
}

/// The loaded module: the driver (`rust/kglue/zpool_driver.rs`).
struct ZbudRs {
    _driver: zpool_driver::Driver,
}

impl kernel::Module for ZbudRs {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(ZbudRs {
            _driver: zpool_driver::Driver::new(c_str!("zbud_rs")),
        })
    }
}
