// SPDX-License-Identifier: GPL-2.0

//! stress_z3fold_rs: the z3fold_rs pool under one kernel thread per online CPU
//! (`rust/kglue/zpool_stress.rs`, shared with the other Rust zpool
//! drivers): malloc, map, write, unmap, map, check and free on one shared
//! pool, every object's bytes checked on every map, the pool's invariants
//! and total_pages checked while the threads run, and the pool empty
//! at the end. Loading it runs the test and prints KTAP in the kernel log;
//! `init` fails if a case failed. `tests/zpool-stress` loads it on a
//! 4-vCPU guest.
//!
//! It builds the very `pool.rs` of `z3fold_rs.ko`, as `test_z3fold_rs.ko` does.

use kernel::c_str;
use kernel::prelude::*;
use zpool::ZpoolAllocator;

#[path = "../kglue/debugfs.rs"]
mod debugfs;
#[path = "../kglue/ktap.rs"]
mod ktap;
#[path = "../kglue/kthread.rs"]
mod kthread;
// The pool glue's per-CPU buffers: this core never maps an object in
// two pieces, so the module allocates none.
#[allow(dead_code)]
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
#[path = "../z3fold/src/z3fold.rs"]
mod z3fold;
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

module! {
    type: StressZ3foldRs,
    name: "stress_z3fold_rs",
    author: "rust-kmods",
    description: "In-kernel stress test of the z3fold_rs pool: one thread per online CPU on one pool, contents checked",
    license: "GPL",
}

const PAGE_SIZE: usize = 4096;
/// The largest object: the largest z3fold object: a page (headless).
const MAX_SIZE: usize = PAGE_SIZE;
/// Rounds of each thread.
const ROUNDS: u32 = 50_000;

struct StressZ3foldRs {
    _debugfs: debugfs::Dir,
}

impl kernel::Module for StressZ3foldRs {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let root = zpool_stress::run(
            c_str!("stress_z3fold_rs"),
            pool::Z3foldPool::create,
            c_str!("stress"),
            MAX_SIZE,
            ROUNDS,
        )?;
        Ok(StressZ3foldRs { _debugfs: root })
    }
}
