// SPDX-License-Identifier: GPL-2.0

//! The driver half of the zpool glue (see `zpool.rs`): the registration of
//! the module's `struct zpool_driver` (`zpool_driver.c.inc`) and the
//! `extern "C"` trampolines into a [`ZpoolAllocator`](crate::zpool::ZpoolAllocator). Only a zpool driver
//! module includes it, as `zpool_driver`, next to `zpool.rs` as `zpool`.

use crate::zpool::MapMode;
use kernel::prelude::*;

/// The [`MapMode`] of a C `enum zpool_mapmode` value (checked by
/// `zpool_driver.c.inc`); unknown values are taken as read-write, the most
/// permissive mode.
pub(crate) fn map_mode(mode: kernel::ffi::c_int) -> MapMode {
    match mode {
        1 => MapMode::ReadOnly,
        2 => MapMode::WriteOnly,
        _ => MapMode::ReadWrite,
    }
}

extern "C" {
    fn rkm_zpool_register();
    fn rkm_zpool_unregister() -> kernel::ffi::c_int;
}

/// The module's zpool driver, registered while this lives.
///
/// # Invariants
///
/// `rkm_zpool_register` was called when it was created, and
/// `rkm_zpool_unregister` is called only when it is dropped.
pub(crate) struct Registration(());

impl Registration {
    /// Registers the driver of `zpool_driver.c.inc` with zpool.
    pub(crate) fn new() -> Self {
        // SAFETY: `rkm_zpool_register` registers the module's static
        // `struct zpool_driver`, whose callbacks the module defines with
        // `zpool_trampolines!`; it is called once, here.
        unsafe { rkm_zpool_register() };
        Registration(())
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // SAFETY: by the type invariant the driver is registered. A pool
        // holds a reference on the module, so when the module is unloaded
        // (the only time this runs) no pool exists and zpool's refcount is 0.
        let ret = unsafe { rkm_zpool_unregister() };
        if ret != 0 {
            pr_err!("zpool driver still in use at unload ({})\n", ret);
        }
    }
}

/// Defines the `extern "C"` callbacks of `zpool_driver.c.inc` for the
/// [`ZpoolAllocator`](crate::zpool::ZpoolAllocator) `$pool`: each recovers the pool from zpool's
/// `void *pool` (a leaked `Pin<KBox<$pool>>` from `create`) and calls the
/// trait. The module must include this file as its crate-root module
/// `zpool`.
macro_rules! zpool_trampolines {
    ($pool:ty) => {
        /// zpool's `create`.
        ///
        /// # Safety
        ///
        /// `name` is a NUL-terminated string (zpool passes the pool's name).
        #[no_mangle]
        unsafe extern "C" fn rkm_zpool_create(
            name: *const kernel::ffi::c_char,
            gfp: u32,
        ) -> *mut core::ffi::c_void {
            // SAFETY: zpool passes a valid NUL-terminated name.
            let name = unsafe { kernel::str::CStr::from_char_ptr(name) };
            match <$pool as $crate::zpool::ZpoolAllocator>::create(name, $crate::zpool::Gfp(gfp)) {
                Ok(pool) => {
                    // SAFETY: the pool is never moved out of its box: the
                    // pointer goes to zpool and comes back only to
                    // `rkm_zpool_destroy`, which drops it in place.
                    let pool = unsafe { core::pin::Pin::into_inner_unchecked(pool) };
                    KBox::into_raw(pool).cast()
                }
                Err(_) => core::ptr::null_mut(),
            }
        }

        /// zpool's `destroy`.
        ///
        /// # Safety
        ///
        /// `pool` came from `rkm_zpool_create` and is not used afterwards.
        #[no_mangle]
        unsafe extern "C" fn rkm_zpool_destroy(pool: *mut core::ffi::c_void) {
            // SAFETY: `pool` is the `KBox` leaked by `rkm_zpool_create`, and
            // zpool does not use it again; it is dropped where it is.
            drop(unsafe { core::pin::Pin::new_unchecked(KBox::from_raw(pool.cast::<$pool>())) });
        }

        /// zpool's `malloc`.
        ///
        /// # Safety
        ///
        /// `pool` came from `rkm_zpool_create` and is live; `handle` is
        /// valid for a write.
        #[no_mangle]
        unsafe extern "C" fn rkm_zpool_malloc(
            pool: *mut core::ffi::c_void,
            size: usize,
            gfp: u32,
            handle: *mut kernel::ffi::c_ulong,
        ) -> kernel::ffi::c_int {
            // SAFETY: `pool` is a live pool from `rkm_zpool_create`.
            let pool = unsafe { &*pool.cast::<$pool>() };
            match $crate::zpool::ZpoolAllocator::malloc(pool, size, $crate::zpool::Gfp(gfp)) {
                Ok(h) => {
                    // SAFETY: zpool passes a pointer valid for a write.
                    unsafe { *handle = h as kernel::ffi::c_ulong };
                    0
                }
                Err(e) => e.to_errno(),
            }
        }

        /// zpool's `free`.
        ///
        /// # Safety
        ///
        /// `pool` came from `rkm_zpool_create` and is live.
        #[no_mangle]
        unsafe extern "C" fn rkm_zpool_free(
            pool: *mut core::ffi::c_void,
            handle: kernel::ffi::c_ulong,
        ) {
            // SAFETY: `pool` is a live pool from `rkm_zpool_create`.
            let pool = unsafe { &*pool.cast::<$pool>() };
            $crate::zpool::ZpoolAllocator::free(pool, handle as u64);
        }

        /// zpool's `map`.
        ///
        /// # Safety
        ///
        /// `pool` came from `rkm_zpool_create` and is live.
        #[no_mangle]
        unsafe extern "C" fn rkm_zpool_map(
            pool: *mut core::ffi::c_void,
            handle: kernel::ffi::c_ulong,
            mode: kernel::ffi::c_int,
        ) -> *mut core::ffi::c_void {
            // SAFETY: `pool` is a live pool from `rkm_zpool_create`.
            let pool = unsafe { &*pool.cast::<$pool>() };
            let mode = $crate::zpool_driver::map_mode(mode);
            $crate::zpool::ZpoolAllocator::map(pool, handle as u64, mode).cast()
        }

        /// zpool's `unmap`.
        ///
        /// # Safety
        ///
        /// `pool` came from `rkm_zpool_create` and is live.
        #[no_mangle]
        unsafe extern "C" fn rkm_zpool_unmap(
            pool: *mut core::ffi::c_void,
            handle: kernel::ffi::c_ulong,
        ) {
            // SAFETY: `pool` is a live pool from `rkm_zpool_create`.
            let pool = unsafe { &*pool.cast::<$pool>() };
            $crate::zpool::ZpoolAllocator::unmap(pool, handle as u64);
        }

        /// zpool's `total_pages`.
        ///
        /// # Safety
        ///
        /// `pool` came from `rkm_zpool_create` and is live.
        #[no_mangle]
        unsafe extern "C" fn rkm_zpool_total_pages(pool: *mut core::ffi::c_void) -> u64 {
            // SAFETY: `pool` is a live pool from `rkm_zpool_create`.
            let pool = unsafe { &*pool.cast::<$pool>() };
            $crate::zpool::ZpoolAllocator::total_pages(pool)
        }
    };
}
pub(crate) use zpool_trampolines;

/// A loaded zpool driver module: its debugfs directory, where its pools put
/// theirs (`zpool_pool::DEBUGFS_ROOT`) and which shows what pools destroyed
/// while not empty left behind (`leaked_pools`, `leaked_pages`,
/// `leaked_objects`: `zpool_pool::LEAKS`), and its registration. A module's
/// `init` creates one and the module holds it.
///
/// # Invariants
///
/// `zpool_pool::DEBUGFS_ROOT` holds `_debugfs` from `new` until `drop`.
pub(crate) struct Driver {
    registration: Option<Registration>,
    _debugfs: crate::debugfs::Dir,
}

impl Driver {
    /// Creates the debugfs directory `name` and registers the driver.
    pub(crate) fn new(name: &kernel::str::CStr) -> Self {
        let debugfs = crate::debugfs::Dir::new(name, None);
        let leaks = &crate::zpool_pool::LEAKS;
        for (file, value) in [
            (kernel::c_str!("leaked_pools"), &leaks.pools),
            (kernel::c_str!("leaked_pages"), &leaks.pages),
            (kernel::c_str!("leaked_objects"), &leaks.objects),
        ] {
            // SAFETY: the counters are statics: they outlive the directory.
            unsafe { debugfs.add_u64(file, value) };
        }
        // SAFETY: every pool creates its directory in it and holds a
        // reference on the module, so `debugfs` (dropped with the module,
        // after `drop` clears the slot) outlives them.
        unsafe { crate::zpool_pool::DEBUGFS_ROOT.set(&debugfs) };
        let registration = Some(Registration::new());
        pr_info!("registered the zpool type {}\n", name);
        Driver {
            registration,
            _debugfs: debugfs,
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Unregister first: no pool can be created after this.
        drop(self.registration.take());
        crate::zpool_pool::DEBUGFS_ROOT.clear();
        // `_debugfs` is removed after this, when the fields are dropped.
    }
}
