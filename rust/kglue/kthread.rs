// SPDX-License-Identifier: GPL-2.0

//! Kernel threads bound to a CPU, for the test modules' concurrency cases
//! (6.12 has no Rust abstraction for them). Wraps `kthread.c.inc`, which the
//! module's C file includes.

use core::ffi::c_void;
use core::ptr::NonNull;
use kernel::alloc::flags::GFP_KERNEL;
use kernel::ffi::{c_int, c_uint, c_ulong};
use kernel::prelude::*;

extern "C" {
    fn rkm_kthread_start(
        f: unsafe extern "C" fn(*mut c_void) -> c_int,
        data: *mut c_void,
        cpu: c_uint,
    ) -> *mut c_void;
    fn rkm_kthread_stop(task: *mut c_void) -> c_int;
    fn rkm_usleep(us: c_ulong);
    fn rkm_udelay(us: c_ulong);
}

/// Sleeps for `us` to `2 * us` microseconds.
pub(crate) fn usleep(us: u32) {
    // SAFETY: `usleep_range` may be called from any sleepable context; the
    // test modules call this from their threads and `init`.
    unsafe { rkm_usleep(us as c_ulong) };
}

/// Waits `us` microseconds without sleeping (for a thread that holds a
/// mapping it may not sleep with).
pub(crate) fn udelay(us: u32) {
    // SAFETY: `udelay` busy-waits; it may be called from any context.
    unsafe { rkm_udelay(us as c_ulong) };
}

/// Holds on for `us` microseconds: sleeps if `may_sleep`, else busy-waits.
pub(crate) fn pause(us: u32, may_sleep: bool) {
    if may_sleep {
        usleep(us);
    } else {
        udelay(us);
    }
}

/// What a thread runs: `f(data)`.
struct Start<T> {
    f: fn(&T) -> i32,
    data: *const T,
}

/// The thread's body: calls `f(data)`.
///
/// # Safety
///
/// `arg` is the `Start<T>` that [`Thread::start`] passed, alive until the
/// thread returns.
unsafe extern "C" fn run<T>(arg: *mut c_void) -> c_int {
    // SAFETY: by the contract, `arg` is a live `Start<T>`.
    let start = unsafe { &*arg.cast::<Start<T>>() };
    // SAFETY: `Thread::start`'s caller keeps `data` alive until the thread
    // is stopped.
    (start.f)(unsafe { &*start.data })
}

/// A kernel thread running `f(data)` on one CPU; dropping it stops it.
///
/// `kthread_stop` keeps a thread that has not started yet from running `f`
/// at all (the stop returns `-EINTR`): callers that want `f` to run to its
/// end wait for a sign from `f` before [`Thread::join`].
///
/// # Invariants
///
/// `task`, until taken by `stop`, is a started thread on which we hold a
/// reference, running `run` on `*start`, which is dropped after the thread
/// is stopped (fields are dropped after `drop`).
pub(crate) struct Thread<T> {
    task: Option<NonNull<c_void>>,
    _start: KBox<Start<T>>,
}

impl<T: Sync> Thread<T> {
    /// Starts `f(data)` in a new thread bound to `cpu`.
    ///
    /// # Safety
    ///
    /// `data` must stay alive until the returned thread is dropped or
    /// joined, and the thread must not be leaked.
    pub(crate) unsafe fn start(cpu: u32, f: fn(&T) -> i32, data: &T) -> Result<Self> {
        let start = KBox::new(
            Start {
                f,
                data: core::ptr::from_ref(data),
            },
            GFP_KERNEL,
        )?;
        let arg = core::ptr::from_ref::<Start<T>>(&start).cast_mut().cast();
        // SAFETY: `run::<T>` matches the thread function type; `arg` is a
        // boxed `Start<T>` that lives in the `Thread` until it is stopped,
        // and the caller keeps `data` alive as long.
        let task = unsafe { rkm_kthread_start(run::<T>, arg, cpu) };
        let task = Some(NonNull::new(task).ok_or(ENOMEM)?);
        Ok(Thread {
            task,
            _start: start,
        })
    }

    /// Stops the thread (waiting for `f` to return) and gives `f`'s result,
    /// `-EINTR` if `f` never ran.
    pub(crate) fn join(mut self) -> i32 {
        self.stop()
    }
}

impl<T> Thread<T> {
    fn stop(&mut self) -> i32 {
        match self.task.take() {
            // SAFETY: `task` is a started thread we hold a reference on
            // (type invariant), stopped once: it was taken out.
            Some(task) => unsafe { rkm_kthread_stop(task.as_ptr()) },
            None => 0,
        }
    }
}

impl<T> Drop for Thread<T> {
    fn drop(&mut self) {
        self.stop();
    }
}
