// SPDX-License-Identifier: GPL-2.0

//! The zpool driver glue, written once for every Rust zpool allocator.
//!
//! An allocator implements the safe trait [`ZpoolAllocator`] (this file);
//! its driver module then
//! - includes this file as `zpool` and `zpool_driver.rs` as `zpool_driver`
//!   at its crate root,
//! - invokes `zpool_driver::zpool_trampolines!(MyPool);` there, which
//!   defines the `extern "C"` callbacks `rkm_zpool_*` that recover `&MyPool`
//!   from zpool's `void *pool` and call the trait,
//! - links a C file that defines `RKM_ZPOOL_TYPE` and includes
//!   `rust/kglue/zpool_driver.c.inc` (the `struct zpool_driver`, whose
//!   layout therefore comes from the C header, and `MODULE_ALIAS`),
//! - holds a `zpool_driver::Registration` for as long as it is loaded.
//!
//! A test module may include this file alone, to drive a pool directly.
//!
//! The 6.12 `struct zpool_driver` contract, as the trampolines present it:
//! `create` returns a pool or fails (`NULL`); `destroy` drops it; `malloc`
//! returns a handle or a negative errno; `free` takes a live handle and never
//! sleeps (zswap calls it under spinlocks); `map` returns the object's
//! address until `unmap` (`sleep_mapped` is true: nothing is locked while an
//! object is mapped); `total_pages` is the pool's exact size in pages. The
//! driver's `owner` is the module, so every pool pins it: `rmmod` fails (the
//! module is in use) while zswap holds one.

use kernel::prelude::*;
use kernel::str::CStr;

/// GFP flags as zpool passes them to `create` and `malloc`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Gfp(pub(crate) u32);

impl Gfp {
    /// Whether the caller asked for a highmem page, which a pool that hands
    /// out direct-mapped addresses cannot give (zbud refuses it: `-EINVAL`).
    pub(crate) fn highmem(self) -> bool {
        self.0 & kernel::bindings::__GFP_HIGHMEM != 0
    }
}

/// How a mapped object will be accessed (`enum zpool_mapmode`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum MapMode {
    /// `ZPOOL_MM_RW`: read and write.
    ReadWrite,
    /// `ZPOOL_MM_RO`: read only.
    ReadOnly,
    /// `ZPOOL_MM_WO`: write only.
    WriteOnly,
}

/// A zpool allocator: what a Rust zpool driver implements.
///
/// A pool is shared by zswap's CPUs: every method takes `&self`, and the
/// implementation does its own locking. `Drop` is `destroy`: it must report
/// a pool that still holds objects instead of freeing memory a caller may
/// still use.
pub(crate) trait ZpoolAllocator: Sized + Send + Sync + 'static {
    /// Creates a pool called `name` (zswap's pool name). Pinned: a pool may
    /// hold locks and addresses of its own fields.
    fn create(name: &CStr, gfp: Gfp) -> Result<Pin<KBox<Self>>>;

    /// Allocates `size` bytes; returns the handle.
    ///
    /// # Errors
    ///
    /// `EINVAL` for a size of 0 or highmem flags, `ENOSPC` for an object too
    /// large for the pool, `ENOMEM` when no page can be had.
    fn malloc(&self, size: usize, gfp: Gfp) -> Result<u64>;

    /// Frees the object of `handle`. Never sleeps. A handle that is not live
    /// in this pool must be reported and ignored.
    fn free(&self, handle: u64);

    /// The address of the object of `handle`, until [`Self::unmap`]; null for
    /// a handle that is not live in this pool (after reporting it).
    fn map(&self, handle: u64, mode: MapMode) -> *mut u8;

    /// Ends a [`Self::map`].
    fn unmap(&self, handle: u64);

    /// The pool's size in pages.
    fn total_pages(&self) -> u64;
}
