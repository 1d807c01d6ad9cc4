// SPDX-License-Identifier: GPL-2.0

//! Per-CPU buffers for objects a pool maps in two pieces (zspan's objects
//! that cross a page boundary): `map` copies the pieces into this CPU's
//! buffer and returns it, `unmap` copies it back (unless the mapping was
//! read-only) and lets the CPU go. Between the two the CPU's local lock is
//! held, so preemption is off: the caller must not sleep while such an
//! object is mapped (the pool's `sleep_mapped` is false), as with
//! zsmalloc. Wraps `map_area.c.inc`, which the module's C file includes.
//!
//! The buffer is returned after the object was copied into it while the
//! pool's spinlock is *not* held (the object is pinned by its mapped state),
//! and the unmap copies back under the pool's lock before the object is
//! unpinned: the local lock is only ever taken with no pool lock held, so
//! the one lock order is *map area, then pool*.

use core::ptr::NonNull;
use kernel::ffi::c_int;
use kernel::prelude::*;

use crate::zpool::MapMode;

extern "C" {
    fn rkm_map_areas_alloc() -> c_int;
    fn rkm_map_areas_free();
    fn rkm_map_area_get(mode: c_int) -> *mut u8;
    fn rkm_map_area_held(mode: *mut c_int) -> *mut u8;
    fn rkm_map_area_put();
}

/// The buffers of every possible CPU, allocated while this lives.
///
/// # Invariants
///
/// `rkm_map_areas_alloc` succeeded when it was created; the buffers are
/// freed only when it is dropped.
pub(crate) struct MapAreas(());

impl MapAreas {
    /// Allocates a page for every possible CPU.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: called from module init, before any pool of the module
        // exists, so nothing holds an area.
        match unsafe { rkm_map_areas_alloc() } {
            0 => Ok(MapAreas(())),
            _ => Err(ENOMEM),
        }
    }
}

impl Drop for MapAreas {
    fn drop(&mut self) {
        // SAFETY: dropped at module unload, when no pool exists (each pins
        // the module), so no area is held.
        unsafe { rkm_map_areas_free() };
    }
}

fn mode_to_c(mode: MapMode) -> c_int {
    match mode {
        MapMode::ReadWrite => 0,
        MapMode::ReadOnly => 1,
        MapMode::WriteOnly => 2,
    }
}

/// Takes this CPU's buffer (a page) for a mapping in `mode`: preemption
/// is off until [`put`]. `None` if the module allocated no buffers (then
/// nothing is held).
///
/// # Safety
///
/// The caller holds no pool lock, and calls [`put`] on the same CPU before
/// it sleeps or takes this CPU's buffer again (zpool's map/unmap pairing:
/// nothing is mapped twice before its unmap on one CPU).
pub(crate) unsafe fn get(mode: MapMode) -> Option<NonNull<u8>> {
    // SAFETY: the local lock is taken here and released by `put` (the
    // caller's contract).
    let buf = unsafe { rkm_map_area_get(mode_to_c(mode)) };
    match NonNull::new(buf) {
        Some(buf) => Some(buf),
        None => {
            // SAFETY: taken just above, on this CPU (preemption is off).
            unsafe { rkm_map_area_put() };
            None
        }
    }
}

/// This CPU's buffer, taken by [`get`] and not put yet, and whether its
/// mapping could write (so that its bytes go back to the object).
///
/// # Safety
///
/// The caller took it with [`get`] on this CPU and has not put it since.
pub(crate) unsafe fn held() -> (Option<NonNull<u8>>, bool) {
    let mut mode = 0;
    // SAFETY: the caller's contract: the area is held on this CPU, so
    // preemption is off and `this_cpu_ptr` is this CPU's.
    let buf = unsafe { rkm_map_area_held(&mut mode) };
    (NonNull::new(buf), mode != mode_to_c(MapMode::ReadOnly))
}

/// Releases this CPU's buffer, taken by [`get`].
///
/// # Safety
///
/// The caller took it with [`get`] on this CPU and has not put it since,
/// and uses the buffer no more.
pub(crate) unsafe fn put() {
    // SAFETY: the caller's contract: the area is held on this CPU.
    unsafe { rkm_map_area_put() };
}
