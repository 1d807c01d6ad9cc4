// SPDX-License-Identifier: GPL-2.0

//! z3fold_rs: the z3fold allocator as a zpool driver, in Rust.
//!
//! - Registers the zpool type `z3fold_rs` (module alias `zpool-z3fold_rs`),
//!   so `echo z3fold_rs > /sys/module/zswap/parameters/zpool` loads and uses
//!   it.
//! - The allocator is `rust/z3fold` (kernel-agnostic, host-tested): up to
//!   three compressed objects per page in 64-byte chunks, objects too large
//!   to share a page alone in a headless page, unbuddied lists by largest
//!   free region, in-page compaction; page descriptors outside the pages and
//!   handles that name an object through its page's descriptor, so they
//!   survive compaction and are checked on every use.
//! - `pool.rs` hands it to the glue shared by every Rust zpool driver
//!   (`rust/kglue/zpool_pool.rs`): one spinlock, statistics in debugfs
//!   (`/sys/kernel/debug/z3fold_rs/<pool>/`), bad handles reported.
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
// The cores' public API is the host crates'; a module uses part of it.
#[allow(unreachable_pub, dead_code)]
#[path = "../z3fold/src/z3fold.rs"]
mod z3fold;
#[allow(unreachable_pub, dead_code)]
#[path = "../zalloc/src/zalloc.rs"]
mod zalloc;
#[path = "../kglue/zpool.rs"]
mod zpool;
#[path = "../kglue/zpool_driver.rs"]
mod zpool_driver;
#[path = "../kglue/zpool_pool.rs"]
mod zpool_pool;

zpool_driver::zpool_trampolines!(pool::Z3foldPool);

module! {
    type: Z3foldRs,
    name: "z3fold_rs",
    author: "rust-kmods",
    description: "z3fold in Rust: a zpool allocator storing up to three compressed pages per page",
    license: "GPL",
}

/// The loaded module: the driver (`rust/kglue/zpool_driver.rs`).
struct Z3foldRs {
    _driver: zpool_driver::Driver,
}

impl kernel::Module for Z3foldRs {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(Z3foldRs {
            _driver: zpool_driver::Driver::new(c_str!("z3fold_rs")),
        })
    }
}
