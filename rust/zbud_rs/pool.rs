// SPDX-License-Identifier: GPL-2.0

//! zbud_rs's pool: the kernel-agnostic [`zbud::Pool`](crate::zbud::Pool)
//! behind the shared zpool glue (`rust/kglue/zpool_pool.rs`: one spinlock,
//! debugfs, reports).
//!
//! Shared by `zbud_rs.ko` (the zpool driver), `test_zbud_rs.ko` (which
//! drives a pool directly) and `bench_zspan_rs.ko`. zbud never moves an object, so `map` and `unmap`
//! only check the handle, and do so without the lock
//! (`zbud::Pool::map_lockless`: the slot table's entries carry what the
//! check needs); the lock is taken only for a handle that check refuses.

use crate::pages::KernelPages;
use crate::zpool_pool::LockedPool;

/// A zbud pool of zswap's.
pub(crate) type ZbudPool = LockedPool<crate::zbud::Pool<KernelPages>>;

// The table pages: one per 255 object pages at the pool's peak, plus two.
crate::zpool_pool::impl_core!(zbud, lockless_map: true, counters: {
    "pages" => pages,
    "table_pages" => table_pages,
    "objects" => objects,
    "pages_one_buddy" => unbuddied_pages,
    "pages_two_buddies" => buddied_pages,
    "reject_invalid" => rejected_invalid,
    "reject_too_big" => rejected_too_big,
    "reject_no_memory" => rejected_no_memory,
    "bad_handles" => bad_handles,
});
