// SPDX-License-Identifier: GPL-2.0

//! z3fold_rs's pool: the kernel-agnostic [`z3fold::Pool`](crate::z3fold::Pool)
//! behind the shared zpool glue (`rust/kglue/zpool_pool.rs`: one spinlock,
//! debugfs, reports).
//!
//! Shared by `z3fold_rs.ko` (the zpool driver) and `test_z3fold_rs.ko`
//! (which drives a pool directly). The core moves objects when it compacts a
//! page, but never those of a page with a mapped object: `map` pins the
//! object's page until `unmap`, which may then compact it (see the core's
//! *Locking* documentation).

use crate::pages::KernelPages;
use crate::zpool_pool::LockedPool;

/// A z3fold pool of zswap's.
pub(crate) type Z3foldPool = LockedPool<crate::z3fold::Pool<KernelPages>>;

crate::zpool_pool::impl_core!(z3fold, counters: {
    "pages" => pages,
    "table_pages" => table_pages,
    "objects" => objects,
    "headless_pages" => headless_pages,
    "pages_one_object" => pages_one,
    "pages_two_objects" => pages_two,
    "pages_three_objects" => pages_three,
    "compactions" => compactions,
    "compactions_deferred" => compactions_deferred,
    "migrations" => migrations,
    "forwarded" => forwarded,
    "reject_invalid" => rejected_invalid,
    "reject_too_big" => rejected_too_big,
    "reject_no_memory" => rejected_no_memory,
    "bad_handles" => bad_handles,
});
