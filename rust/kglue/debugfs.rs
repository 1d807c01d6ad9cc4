// SPDX-License-Identifier: GPL-2.0

//! debugfs directories of read-only `u64` counters, for statistics that can
//! be read without a debugger: a counter's own atomic, or a value computed
//! when the file is read ([`Computed`]). Wraps `debugfs.c.inc`, which the module's C
//! file includes.
//!
//! Like the C API, failures are not errors: debugfs is a debugging aid, and a
//! directory that could not be made is an error pointer that every call here
//! accepts and ignores.

use core::ffi::c_void;
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use kernel::ffi::c_char;
use kernel::str::CStr;

extern "C" {
    fn rkm_debugfs_dir(name: *const c_char, parent: *mut c_void) -> *mut c_void;
    fn rkm_debugfs_u64(name: *const c_char, parent: *mut c_void, value: *mut u64);
    fn rkm_debugfs_remove(dentry: *mut c_void);
    fn rkm_debugfs_computed(name: *const c_char, parent: *mut c_void, file: *const Computed);
}

/// What a computed file shows: `get(owner, index)`, called on each read
/// (`struct rkm_computed` in `debugfs.c.inc`, same layout).
#[repr(C)]
pub(crate) struct Computed {
    get: unsafe extern "C" fn(owner: *const c_void, index: u32) -> u64,
    owner: *const c_void,
    index: u32,
}

// SAFETY: the owner pointer is only passed back to `get`, which may run on
// any CPU (the contract of `Computed::new`).
unsafe impl Send for Computed {}
// SAFETY: as above; `Computed` is never changed through `&self`.
unsafe impl Sync for Computed {}

impl Computed {
    /// A file that shows `get(owner, index)`.
    ///
    /// # Safety
    ///
    /// `get(owner, index)` must be safe to call from any task, without
    /// locks held, for as long as a file made of this exists.
    pub(crate) unsafe fn new(
        get: unsafe extern "C" fn(owner: *const c_void, index: u32) -> u64,
        owner: *const c_void,
        index: u32,
    ) -> Self {
        Computed { get, owner, index }
    }
}

/// A debugfs directory, removed with everything in it when dropped.
///
/// # Invariants
///
/// `dentry` is what `debugfs_create_dir` returned (a dentry, or an error
/// pointer that the debugfs calls ignore), and is removed only on drop.
pub(crate) struct Dir {
    dentry: *mut c_void,
}

// SAFETY: a dentry pointer may be used and removed from any thread.
unsafe impl Send for Dir {}
// SAFETY: `Dir` has no methods that change it through `&self`.
unsafe impl Sync for Dir {}

impl Dir {
    /// Creates directory `name` under `parent`, or at the top of debugfs.
    pub(crate) fn new(name: &CStr, parent: Option<&Dir>) -> Self {
        let parent = parent.map_or(core::ptr::null_mut(), |p| p.dentry);
        // SAFETY: `name` is NUL-terminated; `parent` is null or a live
        // directory (by the type invariant of the borrowed `Dir`).
        let dentry = unsafe { rkm_debugfs_dir(name.as_char_ptr(), parent) };
        Dir { dentry }
    }

    /// Creates directory `name` under the directory in `root` (at the top of
    /// debugfs if it is empty).
    pub(crate) fn new_in(name: &CStr, root: &RootSlot) -> Self {
        let parent = root.0.load(Ordering::Acquire);
        // SAFETY: `name` is NUL-terminated; `parent` is null or, by the
        // contract of `RootSlot::set`, a directory that outlives this one.
        let dentry = unsafe { rkm_debugfs_dir(name.as_char_ptr(), parent) };
        Dir { dentry }
    }

    /// Adds a read-only file `name` showing `value`.
    ///
    /// # Safety
    ///
    /// `value` must stay at its address until this directory is dropped
    /// (for example, both are fields of a pinned structure, the directory
    /// declared first so that it is dropped first).
    pub(crate) unsafe fn add_u64(&self, name: &CStr, value: &AtomicU64) {
        // SAFETY: `name` is NUL-terminated, `self.dentry` is a live directory
        // by the type invariant, and the caller keeps `value` alive and in
        // place for as long as the file exists. debugfs reads the counter
        // with a plain 64-bit load, which on x86-64 is as atomic as
        // `AtomicU64::load(Relaxed)`.
        unsafe { rkm_debugfs_u64(name.as_char_ptr(), self.dentry, value.as_ptr()) };
    }
}

impl Dir {
    /// Adds a read-only file `name` whose value `file` computes on each
    /// read.
    ///
    /// # Safety
    ///
    /// `file` must stay at its address, and what it computes from valid,
    /// until this directory is dropped (removing the file waits for the
    /// reads in flight).
    pub(crate) unsafe fn add_computed(&self, name: &CStr, file: &Computed) {
        // SAFETY: `name` is NUL-terminated, `self.dentry` is a live
        // directory by the type invariant, and the caller keeps `file` and
        // its owner valid for as long as the file exists.
        unsafe { rkm_debugfs_computed(name.as_char_ptr(), self.dentry, file) };
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        // SAFETY: by the type invariant `dentry` came from
        // `debugfs_create_dir` and is removed only here.
        unsafe { rkm_debugfs_remove(self.dentry) };
    }
}

/// Where a module publishes its top directory for the objects it creates
/// later (a pool's directory under `zbud_rs/`), as a `static`.
pub(crate) struct RootSlot(AtomicPtr<c_void>);

impl RootSlot {
    /// An empty slot.
    pub(crate) const fn new() -> Self {
        RootSlot(AtomicPtr::new(core::ptr::null_mut()))
    }

    /// Publishes `dir`.
    ///
    /// # Safety
    ///
    /// `dir` must outlive every directory created with [`Dir::new_in`] from
    /// this slot, and [`RootSlot::clear`] must be called before it is
    /// dropped. (A module's top directory, when every object that creates a
    /// directory in it holds a reference on the module, qualifies.)
    pub(crate) unsafe fn set(&self, dir: &Dir) {
        self.0.store(dir.dentry, Ordering::Release);
    }

    /// Empties the slot.
    pub(crate) fn clear(&self) {
        self.0.store(core::ptr::null_mut(), Ordering::Release);
    }
}
