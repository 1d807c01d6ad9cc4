// SPDX-License-Identifier: GPL-2.0

//! stress_zspan_rs: the zspan_rs pool under one kernel thread per online CPU
//! (`rust/kglue/zpool_stress.rs`, shared with the other Rust zpool
//! drivers): malloc, map, write, unmap, map, check and free on one shared
//! pool, every object's bytes checked on every map, the pool's invariants
//! and total_pages checked while the threads run, and the pool empty
//! at the end. Loading it runs the test and prints KTAP in the kernel log;
//! `init` fails if a case failed. `tests/zpool-stress` loads it on a
//! 4-vCPU guest.
//!
//! It builds the very `pool.rs` of `zspan_rs.ko`, as `test_zspan_rs.ko`
//! does, with its per-CPU map buffers: a mapping held across the other
//! threads' work busy-waits instead of sleeping. Its pool shards its
//! classes from the first page (the driver's from 4096 pages), so the
//! threads run on all eight shards' locks, and the checkpoints hold them
//! all.

use kernel::c_str;
use kernel::prelude::*;
use zpool::ZpoolAllocator;

#[path = "../kglue/debugfs.rs"]
mod debugfs;
#[path = "../kglue/ktap.rs"]
mod ktap;
#[path = "../kglue/kthread.rs"]
mod kthread;
#[path = "../kglue/map_area.rs"]
mod map_area;
#[path = "../kglue/pages.rs"]
mod pages;
#[path = "pool.rs"]
mod pool;
#[path = "../kglue/rng.rs"]
mod rng;
// The cores' public API is the host crates'; a module uses part of it.
#[allow(unreachable_pub, dead_code)]
#[path = "../zalloc/src/zalloc.rs"]
mod zalloc;
// The trait only: this module registers no driver.
#[path = "../kglue/zpool.rs"]
mod zpool;
#[path = "../kglue/zpool_pool.rs"]
mod zpool_pool;
#[path = "../kglue/zpool_stress.rs"]
mod zpool_stress;
#[allow(unreachable_pub, dead_code)]
#[path = "../zspan/src/zspan.rs"]
mod zspan;

module! {
    type: StressZspanRs,
    name: "stress_zspan_rs",
    author: "rust-kmods",
    description: "In-kernel stress test of the zspan_rs pool: one thread per online CPU on one pool, contents checked",
    license: "GPL",
}

const PAGE_SIZE: usize = 4096;
/// The largest object: a page.
const MAX_SIZE: usize = PAGE_SIZE;
/// Rounds of each thread.
const ROUNDS: u32 = 50_000;

struct StressZspanRs {
    _debugfs: debugfs::Dir,
    _areas: map_area::MapAreas,
}

impl kernel::Module for StressZspanRs {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let areas = map_area::MapAreas::new()?;
        // The pool stays far below the pages from which zspan_rs shards
        // its classes: shard from the first page, so that the threads'
        // objects (of every class) go to all eight shards' locks.
        pool::set_shard_from_pages(0);
        let root = zpool_stress::run(
            c_str!("stress_zspan_rs"),
            pool::ZspanPool::create,
            c_str!("stress"),
            MAX_SIZE,
            ROUNDS,
        )?;
        Ok(StressZspanRs {
            _debugfs: root,
            _areas: areas,
        })
    }
}
