// SPDX-License-Identifier: GPL-2.0

//! Per-CPU buffers for objects a pool maps in two pieces (zspan's objects
//! that cross a page boundary): `map` copies the pieces into this CPU's
//! buffer and returns it, `unmap` copies it back (unless the mapping was
//! read-only) and lets the CPU go. Between the two the CPU's local lock is
//! held, so preemption is off: the caller must not sleep while such an
//! object is mapped (the pool's `sleep_mapped` is false), as with
//! zsmalloc. Wraps `map_area.c.inc`, which the module's C file includes.
//!
//! The area remembers the mapping it is held for (its handle, its task and
//! the object's pieces). The buffer is filled after the pool's map dropped
//! its spinlock, and emptied back into the object by the unmap before it
//! takes the lock ([`held_for`]): the core pins a mapped object (neither
//! moved nor freed) until its unmap, so no copy runs under the pool's lock,
//! and the local lock is never held with it.

use core::mem::MaybeUninit;
use core::ptr::NonNull;
use kernel::ffi::{c_int, c_ulong};
use kernel::prelude::*;

use crate::zpool::MapMode;
use crate::zpool_pool::Pieces;

extern "C" {
    fn rkm_map_areas_alloc() -> c_int;
    fn rkm_map_areas_free();
    fn rkm_map_area_get(
        mode: c_int,
        handle: c_ulong,
        p0: *mut u8,
        l0: usize,
        p1: *mut u8,
        l1: usize,
    ) -> *mut u8;
    fn rkm_map_area_held_for(
        handle: c_ulong,
        mode: *mut c_int,
        piece: *mut *mut u8,
        len: *mut usize,
    ) -> *mut u8;
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

/// Takes this CPU's buffer (a page) for the mapping in `mode` of the
/// object of `handle`, in `pieces`: preemption is off until [`put`]. `None`
/// if the module allocated no buffers (then nothing is held).
///
/// # Safety
///
/// The caller holds no pool lock, and calls [`put`] on the same CPU before
/// it sleeps or takes this CPU's buffer again (zpool's map/unmap pairing:
/// nothing is mapped twice before its unmap on one CPU).
pub(crate) unsafe fn get(mode: MapMode, handle: u64, pieces: &Pieces) -> Option<NonNull<u8>> {
    let [(p0, l0), (p1, l1)] = *pieces;
    // SAFETY: the local lock is taken here and released by `put` (the
    // caller's contract); the area only keeps the pieces' addresses.
    let buf = unsafe {
        rkm_map_area_get(
            mode_to_c(mode),
            handle as c_ulong,
            p0.as_ptr(),
            l0,
            p1.as_ptr(),
            l1,
        )
    };
    match NonNull::new(buf) {
        Some(buf) => Some(buf),
        None => {
            // SAFETY: taken just above, on this CPU (preemption is off).
            unsafe { rkm_map_area_put() };
            None
        }
    }
}

/// If the current task holds this CPU's buffer for the mapping of
/// `handle` ([`get`], not put yet): the buffer, whether the mapping could
/// write (so that its bytes go back to the object), and the object's
/// pieces. `None` otherwise: an object mapped in one piece, a handle mapped
/// by another task, or no mapping.
pub(crate) fn held_for(handle: u64) -> Option<(NonNull<u8>, bool, Pieces)> {
    // Left unwritten unless the buffer is returned: most unmaps are of
    // objects in one piece, for which the call is one per-CPU read.
    let mut mode = MaybeUninit::<c_int>::uninit();
    let mut piece = MaybeUninit::<[*mut u8; 2]>::uninit();
    let mut len = MaybeUninit::<[usize; 2]>::uninit();
    // SAFETY: the function reads this CPU's area (see its comment for why
    // no preemption needs turning off) and writes the three outputs, which
    // are valid for that, only when it returns a buffer.
    let buf = unsafe {
        rkm_map_area_held_for(
            handle as c_ulong,
            mode.as_mut_ptr(),
            piece.as_mut_ptr().cast(),
            len.as_mut_ptr().cast(),
        )
    };
    let buf = NonNull::new(buf)?;
    // SAFETY: a buffer was returned, so all three outputs were written.
    let (mode, piece, len) =
        unsafe { (mode.assume_init(), piece.assume_init(), len.assume_init()) };
    let pieces = [
        (NonNull::new(piece[0])?, len[0]),
        (NonNull::new(piece[1])?, len[1]),
    ];
    Some((buf, mode != mode_to_c(MapMode::ReadOnly), pieces))
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
