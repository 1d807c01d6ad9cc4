// SPDX-License-Identifier: GPL-2.0

//! Every call of bcache_rs into C, in types that own what they open or
//! carry what they may be used for. Nothing else in the module is `unsafe`
//! about C objects.
//!
//! - [`BdevFile`]: a block device opened exclusively; [`Disk`]: a
//!   `/dev/bcache_rs<N>` disk, which owns a reference of its [`Dev`] given to
//!   C ([`ForeignOwnable`]) for its submit and open callbacks; [`KObj`]: a
//!   sysfs directory that owns a reference of its owner the same way.
//! - Bios: an [`OrigBio`] is a bio the block layer gave us; it is not
//!   `Copy`, and it is consumed by [`OrigBio::complete`] (dropping one
//!   completes it with an I/O error, so none is ever left hanging). A
//!   [`NewBio<C>`] is a bio of ours from a [`BioSet<C>`], carrying a context
//!   `C` in its front pad; it is consumed by [`NewBio::submit`]. Its
//!   completion is a [`Done<C>`], from which [`Done::release`] moves the
//!   context out *before* the bio is put, so a context can never be read
//!   after its bio is freed. A clone of an `OrigBio` keeps it in its front
//!   pad until it completed (the clone shares its pages), and a copy of one
//!   of our bios holds that bio open (`bio_inc_remaining`) until it
//!   completed: lifetimes that the types carry, not comments.
//! - [`IrqSpinLockBackend`]: `spin_lock_irqsave` as a
//!   [`kernel::sync::lock::Backend`], with a lockdep class per lock.
//! - [`WorkQueue`]: the module's `WQ_MEM_RECLAIM` workqueue, for
//!   [`kernel::workqueue`] work items; [`DeferList`]: completed bios handed
//!   from interrupt context to a work item.
//!
//! [`Dev`]: crate::dev::Dev

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Ordering};
use kernel::bindings;
use kernel::error::{code, Error, Result};
use kernel::ffi::{c_char, c_int, c_uint, c_ulong};
use kernel::sync::lock::{Backend, Lock};
use kernel::types::ForeignOwnable;
use kernel::workqueue::Queue;

/// Opaque C types.
#[repr(C)]
pub(crate) struct RawBio {
    _p: [u8; 0],
}
#[repr(C)]
pub(crate) struct RawBdev {
    _p: [u8; 0],
}
#[repr(C)]
struct RawFile {
    _p: [u8; 0],
}
#[repr(C)]
pub(crate) struct RawDisk {
    _p: [u8; 0],
}
#[repr(C)]
pub(crate) struct RawKobj {
    _p: [u8; 0],
}
#[repr(C)]
struct RawBcKobj {
    _p: [u8; 0],
}
#[repr(C)]
struct RawKernfsNode {
    _p: [u8; 0],
}
#[repr(C)]
struct RawBioSet {
    _p: [u8; 0],
}
/// What a sysfs store gets from C to lift its own directory's protection.
#[repr(C)]
pub(crate) struct RawSelf {
    _p: [u8; 0],
}

/// `struct rkm_bc_bioinfo`: a bio's fields, as C reads them.
#[repr(C)]
#[derive(Default)]
struct RawInfo {
    sector: u64,
    sectors: u32,
    op: u32,
    flags: u32,
}

type ShowFn = unsafe extern "C" fn(owner: *const c_void, attr: c_int, buf: *mut u8) -> isize;
type StoreFn = unsafe extern "C" fn(
    owner: *const c_void,
    attr: c_int,
    buf: *const u8,
    len: usize,
    this: *mut RawSelf,
) -> isize;

extern "C" {
    fn rkm_bc_data_csum() -> bool;
    fn rkm_bc_crc32c_ok() -> bool;
    fn rkm_bc_reboot_register(f: RebootFn, owner: *const c_void) -> c_int;
    fn rkm_bc_reboot_unregister();
    fn rkm_bc_kernel_kobj() -> *mut RawKobj;
    fn rkm_bc_disk_kobj(disk: *mut RawDisk) -> *mut RawKobj;
    fn rkm_bc_kobj_raw(k: *mut RawBcKobj) -> *mut RawKobj;
    fn rkm_bc_kobj_create(
        parent: *mut RawKobj,
        name: *const c_char,
        owner: *const c_void,
        show: ShowFn,
        store: StoreFn,
        names: *const *const c_char,
        modes: *const u16,
        n: c_int,
        // `struct lock_class_key *` (zero-sized without lockdep: passed as
        // an untyped pointer).
        key: *mut c_void,
    ) -> *mut RawBcKobj;
    fn rkm_bc_kobj_destroy(k: *mut RawBcKobj);
    fn rkm_bc_kobj_break(this: *mut RawSelf) -> *mut RawKernfsNode;
    fn rkm_bc_kobj_unbreak(kn: *mut RawKernfsNode);
    fn rkm_bc_module_get() -> bool;
    fn rkm_bc_module_put();
    fn rkm_bc_open(path: *const c_char, holder: *mut c_void, err: *mut c_int) -> *mut RawFile;
    fn rkm_bc_close(f: *mut RawFile);
    fn rkm_bc_bdev(f: *mut RawFile) -> *mut RawBdev;
    fn rkm_bc_sectors(b: *mut RawBdev) -> u64;
    fn rkm_bc_lbs(b: *mut RawBdev) -> c_uint;
    fn rkm_bc_zoned(b: *mut RawBdev) -> bool;
    fn rkm_bc_devt(b: *mut RawBdev) -> u32;
    fn rkm_bc_bdev_name(b: *mut RawBdev, buf: *mut c_char, len: usize);
    fn rkm_bc_rw_sync(
        b: *mut RawBdev,
        sector: u64,
        buf: *mut c_void,
        len: c_uint,
        write: bool,
    ) -> c_int;
    fn rkm_bc_disk_create(
        backing: *mut RawBdev,
        min_lbs: c_uint,
        sectors: u64,
        idx: c_int,
        owner: *const c_void,
        err: *mut c_int,
    ) -> *mut RawDisk;
    fn rkm_bc_disk_destroy(disk: *mut RawDisk);
    fn rkm_bc_disk_link(disk: *mut RawDisk, bdev: *mut RawBdev) -> c_int;
    fn rkm_bc_disk_unlink(disk: *mut RawDisk, bdev: *mut RawBdev);
    fn rkm_bc_disk_open_lock(disk: *mut RawDisk);
    fn rkm_bc_disk_open_unlock(disk: *mut RawDisk);
    fn rkm_bc_disk_openers(disk: *mut RawDisk) -> c_uint;
    fn rkm_bc_disk_freeze(disk: *mut RawDisk);
    fn rkm_bc_disk_unfreeze(disk: *mut RawDisk);
    fn rkm_bc_bio_info(bio: *mut RawBio, info: *mut RawInfo);
    fn rkm_bc_bio_next(bio: *mut RawBio) -> *mut RawBio;
    fn rkm_bc_noio_save() -> c_uint;
    fn rkm_bc_noio_restore(flags: c_uint);
    fn rkm_bc_bio_set_next(bio: *mut RawBio, next: *mut RawBio);
    fn rkm_bc_bioset_create(front_pad: c_uint) -> *mut RawBioSet;
    fn rkm_bc_bioset_destroy(bs: *mut RawBioSet);
    fn rkm_bc_bio_pad(bio: *mut RawBio) -> *mut c_void;
    fn rkm_bc_split(bio: *mut RawBio, sectors: u32, bs: *mut RawBioSet) -> *mut RawBio;
    fn rkm_bc_clone(
        orig: *mut RawBio,
        bdev: *mut RawBdev,
        sector: u64,
        op: u32,
        bs: *mut RawBioSet,
    ) -> *mut RawBio;
    fn rkm_bc_alloc_pages(
        bdev: *mut RawBdev,
        sector: u64,
        bytes: c_uint,
        op: u32,
        bs: *mut RawBioSet,
    ) -> *mut RawBio;
    fn rkm_bc_free_pages(bio: *mut RawBio);
    fn rkm_bc_rewind(bio: *mut RawBio, bdev: *mut RawBdev, sector: u64, op: u32);
    fn rkm_bc_copy_data(dst: *mut RawBio, src: *mut RawBio);
    fn rkm_bc_bio_crcs(
        bio: *mut RawBio,
        block: c_uint,
        out: *mut u32,
        expect: *const u32,
        n: c_uint,
    ) -> c_int;
    fn rkm_bc_hold(bio: *mut RawBio);
    fn rkm_bc_release_hold(bio: *mut RawBio);
    fn rkm_bc_submit(bio: *mut RawBio);
    fn rkm_bc_put(bio: *mut RawBio);
    fn rkm_bc_acct_start(bio: *mut RawBio, start: *mut c_ulong) -> bool;
    fn rkm_bc_complete(bio: *mut RawBio, err: c_int, acct: bool, start: c_ulong);
    fn rkm_bc_spin_lock_irqsave(lock: *mut bindings::spinlock_t) -> c_ulong;
    fn rkm_bc_spin_unlock_irqrestore(lock: *mut bindings::spinlock_t, flags: c_ulong);
    fn rkm_bc_wq_create() -> *mut bindings::workqueue_struct;
    fn rkm_bc_wq_flush(wq: *mut bindings::workqueue_struct);
    fn rkm_bc_wq_destroy(wq: *mut bindings::workqueue_struct);
    fn rkm_bc_msleep(ms: c_uint);
    fn rkm_bc_major_register() -> c_int;
    fn rkm_bc_major_unregister();
}

fn errno(err: c_int) -> Error {
    Error::from_errno(err)
}

/// The module's `data_csum` parameter: whether caches registered now
/// checksum their data.
pub(crate) fn data_csum_param() -> bool {
    // SAFETY: reads a module parameter (a `bool` set at load).
    unsafe { rkm_bc_data_csum() }
}

/// Whether the data path's crc32c is crc32c (a self-check at load).
pub(crate) fn crc32c_ok() -> bool {
    // SAFETY: computes checksums of its own buffers.
    unsafe { rkm_bc_crc32c_ok() }
}

/// Sleeps `ms` milliseconds (process context, no spinlock held).
pub(crate) fn msleep(ms: u32) {
    // SAFETY: the callers are sysfs stores, work items and module exit,
    // which may sleep.
    unsafe { rkm_bc_msleep(ms) };
}

/// The block major of the bcache_rs disks, registered while it lives.
///
/// # Invariants
///
/// `rkm_bc_major_register` succeeded and is undone on drop.
pub(crate) struct Major(());

impl Major {
    pub(crate) fn register() -> Result<Self> {
        // SAFETY: no precondition; undone by drop.
        let err = unsafe { rkm_bc_major_register() };
        if err < 0 {
            return Err(errno(err));
        }
        // INVARIANT: registered just now.
        Ok(Self(()))
    }
}

impl Drop for Major {
    fn drop(&mut self) {
        // SAFETY: registered (type invariant); the module drops it after
        // every disk (the registry is torn down first).
        unsafe { rkm_bc_major_unregister() };
    }
}

// --------------------------------------------------------------- locking

/// `spinlock_t` taken with `spin_lock_irqsave`: the lock of data that bio
/// completions (interrupt context) touch. The guard state is the saved
/// interrupt flags, so a guard is neither `Send` nor kept across a sleep
/// ([`Lock`]'s guard is `!Send`).
pub(crate) struct IrqSpinLockBackend;

/// A spinlock taken with interrupts off, around a `T`.
pub(crate) type IrqSpinLock<T> = Lock<T, IrqSpinLockBackend>;

/// Builds an [`IrqSpinLock`] with a lockdep class of its own for this call
/// site, like `new_spinlock!`.
macro_rules! new_irq_spinlock {
    ($inner:expr, $name:literal) => {
        kernel::sync::lock::Lock::<_, $crate::blk::IrqSpinLockBackend>::new(
            $inner,
            kernel::c_str!($name),
            kernel::static_lock_class!(),
        )
    };
}
pub(crate) use new_irq_spinlock;

// SAFETY: `spin_lock_irqsave` gives mutual exclusion between `lock` and
// `unlock`; `relock` (the default) locks the same way.
unsafe impl Backend for IrqSpinLockBackend {
    type State = bindings::spinlock_t;
    type GuardState = c_ulong;

    unsafe fn init(ptr: *mut Self::State, name: *const c_char, key: *mut bindings::lock_class_key) {
        // SAFETY: `ptr` is valid for writes, `name` and `key` live forever
        // (the caller's contract).
        unsafe { bindings::__spin_lock_init(ptr, name, key) }
    }

    unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
        // SAFETY: `ptr` points to an initialised lock (the caller's
        // contract).
        unsafe { rkm_bc_spin_lock_irqsave(ptr) }
    }

    unsafe fn unlock(ptr: *mut Self::State, flags: &Self::GuardState) {
        // SAFETY: the caller owns the lock, taken by `lock`, which returned
        // `flags`.
        unsafe { rkm_bc_spin_unlock_irqrestore(ptr, *flags) }
    }
}

// ------------------------------------------------------------- workqueue

/// The module's workqueue (`WQ_MEM_RECLAIM`: the data path's work items
/// complete bios that memory reclaim may wait for).
///
/// # Invariants
///
/// `wq` was made by `alloc_workqueue` and is destroyed on drop.
pub(crate) struct WorkQueue {
    wq: NonNull<bindings::workqueue_struct>,
}

// SAFETY: a workqueue may be used and destroyed from any thread.
unsafe impl Send for WorkQueue {}
// SAFETY: queueing and flushing are thread-safe.
unsafe impl Sync for WorkQueue {}

impl WorkQueue {
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: no precondition.
        let wq = unsafe { rkm_bc_wq_create() };
        // INVARIANT: made just now.
        NonNull::new(wq).map(|wq| Self { wq }).ok_or(code::ENOMEM)
    }

    /// The queue, for [`Queue::enqueue`].
    pub(crate) fn queue(&self) -> &Queue {
        // SAFETY: the workqueue lives as long as `self` (type invariant).
        unsafe { Queue::from_raw(self.wq.as_ptr()) }
    }

    /// Waits for every work item queued so far to finish.
    pub(crate) fn flush(&self) {
        // SAFETY: live (type invariant); the callers are not work items of
        // this queue.
        unsafe { rkm_bc_wq_flush(self.wq.as_ptr()) };
    }
}

impl Drop for WorkQueue {
    fn drop(&mut self) {
        // SAFETY: live (type invariant), not used again; its owner is never
        // dropped by one of its own work items (the module's registry and
        // module exit hold the last references).
        unsafe { rkm_bc_wq_destroy(self.wq.as_ptr()) };
    }
}

// --------------------------------------------------------------- reboot

type RebootFn = unsafe extern "C" fn(owner: *const c_void);

/// Something to do before the machine reboots, halts or powers off.
pub(crate) trait OnReboot: Sync {
    /// Called from the reboot notifier (process context, may sleep).
    fn on_reboot(&self);
}

/// The notifier's call of [`OnReboot::on_reboot`].
///
/// # Safety
///
/// `owner` is a valid `T` (the one [`RebootHook::register`] was given).
unsafe extern "C" fn reboot_trampoline<T: OnReboot>(owner: *const c_void) {
    // SAFETY: `owner` is the `T` given to `RebootHook::register`, alive
    // until the hook is dropped, which waits for this call.
    unsafe { &*owner.cast::<T>() }.on_reboot();
}

/// The module's reboot notifier (one per module), calling
/// [`OnReboot::on_reboot`] of its owner.
///
/// # Invariants
///
/// The notifier is registered with an owner that outlives the hook.
pub(crate) struct RebootHook {
    _p: PhantomData<*const ()>,
}

// SAFETY: registering and unregistering the notifier is thread-safe.
unsafe impl Send for RebootHook {}
// SAFETY: the hook has no state of its own.
unsafe impl Sync for RebootHook {}

impl RebootHook {
    /// Registers `owner`'s [`OnReboot`].
    ///
    /// # Safety
    ///
    /// `owner` stays valid until the hook is dropped.
    pub(crate) unsafe fn register<T: OnReboot>(owner: &T) -> Result<Self> {
        let p: *const T = owner;
        // SAFETY: the trampoline is for `T`, and `owner` is valid as long as
        // the registration (the caller's promise).
        let err = unsafe { rkm_bc_reboot_register(reboot_trampoline::<T>, p.cast()) };
        if err < 0 {
            return Err(errno(err));
        }
        // INVARIANT: registered with an owner that outlives the hook.
        Ok(Self { _p: PhantomData })
    }
}

impl Drop for RebootHook {
    fn drop(&mut self) {
        // SAFETY: registered by `register`; returns after any running call.
        unsafe { rkm_bc_reboot_unregister() };
    }
}

// --------------------------------------------------------- block devices

/// A block device opened read-write and exclusively.
///
/// # Invariants
///
/// `file` is a file of `bdev_file_open_by_path`, open until drop.
pub(crate) struct BdevFile {
    file: NonNull<RawFile>,
}

// SAFETY: a block device file may be used and closed from any thread.
unsafe impl Send for BdevFile {}
// SAFETY: the methods taking `&self` only read the device's fixed state or
// submit I/O, which is thread-safe.
unsafe impl Sync for BdevFile {}

impl BdevFile {
    /// Opens the NUL-terminated `path` for `holder` (exclusive: another
    /// holder's open fails with `EBUSY`).
    pub(crate) fn open(path: &[u8], holder: *mut c_void) -> Result<Self> {
        if path.last() != Some(&0) {
            return Err(code::EINVAL);
        }
        let mut err: c_int = 0;
        // SAFETY: `path` is NUL-terminated (checked) and lives across the
        // call; `err` is a valid out-pointer.
        let f = unsafe { rkm_bc_open(path.as_ptr().cast(), holder, &mut err) };
        match NonNull::new(f) {
            // INVARIANT: opened just now.
            Some(file) => Ok(Self { file }),
            None => Err(errno(err)),
        }
    }

    fn raw(&self) -> *mut RawBdev {
        // SAFETY: `file` is an open block device file (type invariant).
        unsafe { rkm_bc_bdev(self.file.as_ptr()) }
    }

    /// Size in 512-byte sectors.
    pub(crate) fn sectors(&self) -> u64 {
        // SAFETY: the device is open (type invariant).
        unsafe { rkm_bc_sectors(self.raw()) }
    }

    /// Logical block size in bytes.
    pub(crate) fn logical_block_size(&self) -> u32 {
        // SAFETY: as in `sectors`.
        unsafe { rkm_bc_lbs(self.raw()) }
    }

    /// Whether the device is zoned (sequential-write zones).
    pub(crate) fn zoned(&self) -> bool {
        // SAFETY: as in `sectors`.
        unsafe { rkm_bc_zoned(self.raw()) }
    }

    pub(crate) fn devt(&self) -> u32 {
        // SAFETY: as in `sectors`.
        unsafe { rkm_bc_devt(self.raw()) }
    }

    /// The device's name (`nvme0n1`), NUL-padded.
    pub(crate) fn name(&self) -> [u8; 32] {
        let mut buf = [0u8; 32];
        // SAFETY: `buf` is writable for its length; snprintf terminates.
        unsafe { rkm_bc_bdev_name(self.raw(), buf.as_mut_ptr().cast(), buf.len()) };
        buf
    }

    /// Reads `buf.len()` bytes (a multiple of 512, at most [`SYNC_IO_MAX`])
    /// at `sector`, waiting.
    pub(crate) fn read(&self, sector: u64, buf: &mut [u8]) -> Result {
        let len = c_uint::try_from(buf.len()).map_err(|_| code::EINVAL)?;
        // SAFETY: `buf` is valid for writes of `len` bytes during the call.
        let err =
            unsafe { rkm_bc_rw_sync(self.raw(), sector, buf.as_mut_ptr().cast(), len, false) };
        if err < 0 {
            return Err(errno(err));
        }
        Ok(())
    }

    /// Writes `buf` (a multiple of 512 bytes, at most [`SYNC_IO_MAX`]) at
    /// `sector`, durably (preflush and FUA), waiting.
    pub(crate) fn write_durable(&self, sector: u64, buf: &[u8]) -> Result {
        let len = c_uint::try_from(buf.len()).map_err(|_| code::EINVAL)?;
        // SAFETY: `buf` is valid for reads of `len` bytes during the call;
        // a write only reads it.
        let err = unsafe {
            rkm_bc_rw_sync(
                self.raw(),
                sector,
                buf.as_ptr().cast_mut().cast(),
                len,
                true,
            )
        };
        if err < 0 {
            return Err(errno(err));
        }
        Ok(())
    }
}

/// Most bytes of one [`BdevFile::read`] or [`BdevFile::write_durable`].
pub(crate) const SYNC_IO_MAX: usize = 16 * 4096;

impl Drop for BdevFile {
    fn drop(&mut self) {
        // SAFETY: the file is open (type invariant) and is not used again.
        unsafe { rkm_bc_close(self.file.as_ptr()) };
    }
}

/// A name as `bdev_name` writes it, for messages.
pub(crate) fn cstr_bytes(buf: &[u8]) -> &[u8] {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    buf.get(..end).unwrap_or(&[])
}

/// What a disk calls back: its submit and open callbacks, with the owner
/// the disk was made with.
pub(crate) trait DiskOps: Send + Sync + Sized + 'static {
    /// A bio for the disk. The owner outlives the call.
    fn submit(this: kernel::sync::ArcBorrow<'_, Self>, bio: OrigBio);
    /// An open of the disk (under its open mutex): `Err` refuses it.
    fn open(this: kernel::sync::ArcBorrow<'_, Self>) -> Result;
}

/// A `/dev/bcache_rs<N>` disk over a backing device, with the devices under
/// it linked as its slaves (`/sys/block/bcache_rs<N>/slaves`, their
/// `holders`: `lsblk`).
///
/// # Invariants
///
/// `disk` was added by `rkm_bc_disk_create` with `owner` (from
/// [`Arc::into_foreign`](kernel::sync::Arc)) as its private data, and is
/// removed on drop before `owner` is reclaimed; `backing` and, if not null,
/// `ssd` are open block devices linked as its slaves, unlinked on drop.
pub(crate) struct Disk<T: DiskOps> {
    disk: NonNull<RawDisk>,
    owner: *const c_void,
    backing: *mut RawBdev,
    ssd: *mut RawBdev,
    _t: PhantomData<kernel::sync::Arc<T>>,
}

// SAFETY: a gendisk may be used and removed from any thread; the owner is
// an `Arc<T>` with `T: Send + Sync`.
unsafe impl<T: DiskOps> Send for Disk<T> {}
// SAFETY: `&self` methods call thread-safe C functions.
unsafe impl<T: DiskOps> Sync for Disk<T> {}

impl<T: DiskOps> Disk<T> {
    /// Adds `/dev/bcache_rs<idx>` over `backing` (its limits are the
    /// backing device's), `sectors` long, with logical blocks of at least
    /// `min_lbs` bytes; its bios go to `T::submit(owner)`. `backing` is
    /// linked as its slave.
    ///
    /// # Safety
    ///
    /// `backing` must stay open until the disk is dropped.
    pub(crate) unsafe fn create(
        backing: &BdevFile,
        min_lbs: u32,
        sectors: u64,
        idx: u32,
        owner: kernel::sync::Arc<T>,
    ) -> Result<Self> {
        let idx = c_int::try_from(idx).map_err(|_| code::ENOSPC)?;
        let owner = owner.into_foreign();
        let mut err: c_int = 0;
        // SAFETY: `backing` is open; `owner` is valid until reclaimed below
        // or by drop.
        let d =
            unsafe { rkm_bc_disk_create(backing.raw(), min_lbs, sectors, idx, owner, &mut err) };
        let Some(disk) = NonNull::new(d) else {
            // SAFETY: from `into_foreign` above; C did not keep it.
            drop(unsafe { kernel::sync::Arc::<T>::from_foreign(owner) });
            return Err(errno(err));
        };
        // INVARIANT: added with `owner`; nothing linked yet.
        let mut this = Self {
            disk,
            owner,
            backing: ptr::null_mut(),
            ssd: ptr::null_mut(),
            _t: PhantomData,
        };
        // SAFETY: the disk is added; the backing device is open exclusively.
        let err = unsafe { rkm_bc_disk_link(disk.as_ptr(), backing.raw()) };
        if err != 0 {
            return Err(errno(err));
        }
        this.backing = backing.raw();
        Ok(this)
    }

    /// Links the cache's SSD as a slave too (its device attached to it).
    ///
    /// # Safety
    ///
    /// `ssd` must stay open until [`Disk::unlink_ssd`] or the drop.
    pub(crate) unsafe fn link_ssd(&mut self, ssd: &BdevFile) -> Result {
        if !self.ssd.is_null() {
            return Err(code::EEXIST);
        }
        // SAFETY: the disk is live (invariant); `ssd` is open exclusively.
        let err = unsafe { rkm_bc_disk_link(self.disk.as_ptr(), ssd.raw()) };
        if err != 0 {
            return Err(errno(err));
        }
        self.ssd = ssd.raw();
        Ok(())
    }

    /// Undoes [`Disk::link_ssd`], if it was done.
    pub(crate) fn unlink_ssd(&mut self) {
        if !self.ssd.is_null() {
            // SAFETY: linked and still open (invariant); the disk is live.
            unsafe { rkm_bc_disk_unlink(self.disk.as_ptr(), self.ssd) };
            self.ssd = ptr::null_mut();
        }
    }

    /// Takes the disk's open mutex: no open runs, and none starts, until
    /// the guard is dropped.
    pub(crate) fn lock_opens(&self) -> OpenGuard<'_> {
        // SAFETY: the disk is live (type invariant).
        unsafe { rkm_bc_disk_open_lock(self.disk.as_ptr()) };
        OpenGuard {
            disk: self.disk,
            _l: PhantomData,
        }
    }

    /// Freezes the disk's queue: no bio is inside its submit callback, and
    /// none enters, until the guard is dropped. Bios submitted before may
    /// still be in flight below.
    pub(crate) fn freeze(&self) -> Frozen<'_> {
        // SAFETY: the disk is live (type invariant); freezing sleeps, which
        // the callers (the registry, under its mutex) may.
        unsafe { rkm_bc_disk_freeze(self.disk.as_ptr()) };
        Frozen {
            disk: self.disk,
            _l: PhantomData,
        }
    }

    fn kobj(&self) -> *mut RawKobj {
        // SAFETY: the disk is live (type invariant).
        unsafe { rkm_bc_disk_kobj(self.disk.as_ptr()) }
    }
}

impl<T: DiskOps> Drop for Disk<T> {
    fn drop(&mut self) {
        self.unlink_ssd();
        if !self.backing.is_null() {
            // SAFETY: linked and open (invariant); the disk is live.
            unsafe { rkm_bc_disk_unlink(self.disk.as_ptr(), self.backing) };
        }
        // SAFETY: the disk is live and not used again: after this no submit
        // or open callback runs.
        unsafe { rkm_bc_disk_destroy(self.disk.as_ptr()) };
        // SAFETY: from `into_foreign` in `create`; C no longer uses it.
        drop(unsafe { kernel::sync::Arc::<T>::from_foreign(self.owner) });
    }
}

/// A disk's open mutex, held (see [`Disk::lock_opens`]).
pub(crate) struct OpenGuard<'a> {
    disk: NonNull<RawDisk>,
    _l: PhantomData<&'a ()>,
}

impl OpenGuard<'_> {
    /// How many openers the disk has (they cannot change while the guard
    /// lives).
    pub(crate) fn openers(&self) -> u32 {
        // SAFETY: the disk is live (borrowed) and its open mutex held.
        unsafe { rkm_bc_disk_openers(self.disk.as_ptr()) }
    }
}

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: locked by `lock_opens`.
        unsafe { rkm_bc_disk_open_unlock(self.disk.as_ptr()) };
    }
}

/// A disk's queue, frozen (see [`Disk::freeze`]).
pub(crate) struct Frozen<'a> {
    disk: NonNull<RawDisk>,
    _l: PhantomData<&'a ()>,
}

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        // SAFETY: frozen by `freeze`; the disk is live (borrowed).
        unsafe { rkm_bc_disk_unfreeze(self.disk.as_ptr()) };
    }
}

/// # Safety
///
/// `owner` is the private data of a live disk made by [`Disk::create`] for
/// `T = Dev`; `bio` a bio submitted to it.
#[no_mangle]
unsafe extern "C" fn bcache_rs_submit(owner: *const c_void, bio: *mut RawBio) {
    // SAFETY: the disk owns a reference until it is removed, which waits
    // for submitters.
    let dev = unsafe { kernel::sync::Arc::<crate::dev::Dev>::borrow(owner) };
    let Some(raw) = NonNull::new(bio) else {
        return;
    };
    // INVARIANT: submitted to our disk, not completed: ours to complete.
    let bio = OrigBio { raw, acct: None };
    <crate::dev::Dev as DiskOps>::submit(dev, bio);
}

/// # Safety
///
/// As for `bcache_rs_submit`; called under the disk's open mutex.
#[no_mangle]
unsafe extern "C" fn bcache_rs_open(owner: *const c_void) -> c_int {
    // SAFETY: as in `bcache_rs_submit`.
    let dev = unsafe { kernel::sync::Arc::<crate::dev::Dev>::borrow(owner) };
    match <crate::dev::Dev as DiskOps>::open(dev) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

// ----------------------------------------------------------------- sysfs

/// One sysfs file: its NUL-terminated name and mode.
pub(crate) struct Attr {
    pub(crate) name: &'static [u8],
    pub(crate) mode: u16,
}

/// The files of a sysfs directory: an enum generated by [`sysfs_attrs!`]
/// from one list of names and modes.
pub(crate) trait AttrList: Copy + 'static {
    /// The files, in the enum's order.
    const FILES: &'static [Attr];
    /// The file of index `i` of [`AttrList::FILES`].
    fn from_index(i: usize) -> Option<Self>;
}

/// Declares a sysfs directory's files as an enum, from one list:
/// `sysfs_attrs!(enum Name { Variant = ("file", MODE), ... });`.
macro_rules! sysfs_attrs {
    ($(#[$meta:meta])* enum $name:ident { $($var:ident = ($file:literal, $mode:expr)),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        pub(crate) enum $name { $($var),* }

        impl $crate::blk::AttrList for $name {
            const FILES: &'static [$crate::blk::Attr] = &[
                $($crate::blk::Attr { name: concat!($file, "\0").as_bytes(), mode: $mode }),*
            ];
            fn from_index(i: usize) -> Option<Self> {
                const ALL: &[$name] = &[$($name::$var),*];
                ALL.get(i).copied()
            }
        }
    };
}
pub(crate) use sysfs_attrs;

/// What a sysfs directory's owner answers.
pub(crate) trait SysfsDir: Send + Sync + Sized + 'static {
    /// Its files.
    type Attr: AttrList;
    /// The lockdep class of its files' active references, one per kind of
    /// directory (`kernel::static_lock_class!()` in each implementation):
    /// a store that takes a lock under which a directory of another kind is
    /// removed is then not mistaken for a cycle.
    fn lock_class() -> &'static kernel::sync::LockClassKey;
    /// Writes the content of `attr` into `w`.
    fn show(this: &Self, attr: Self::Attr, w: &mut PageWriter) -> core::fmt::Result;
    /// Takes a write of `input` to `attr`; `store` can let the write remove
    /// its own directory ([`Store::unprotect`]).
    fn store(
        this: kernel::sync::ArcBorrow<'_, Self>,
        attr: Self::Attr,
        input: &[u8],
        store: &Store,
    ) -> Result;
}

/// A write to a sysfs file in progress.
pub(crate) struct Store {
    this: *mut RawSelf,
}

impl Store {
    /// Lifts the protection that makes the removal of this file's directory
    /// wait for this write, until the returned guard is dropped: the write
    /// may then take a lock under which the directory is removed (or remove
    /// it itself). The directory's owner must stay alive: the caller holds a
    /// reference of its own ([`kernel::sync::ArcBorrow`] into
    /// [`kernel::sync::Arc`]) before unprotecting. The module is pinned
    /// meanwhile (nothing else keeps `rmmod` from unloading the code of a
    /// write whose directory is gone); `ENODEV` if it is going away.
    pub(crate) fn unprotect(&self) -> Result<Unprotected<'_>> {
        // SAFETY: no precondition.
        if !unsafe { rkm_bc_module_get() } {
            return Err(code::ENODEV);
        }
        // SAFETY: `this` is the live store's (`Store` only exists during
        // the store callback); the C function takes a kobject reference.
        let kn = unsafe { rkm_bc_kobj_break(self.this) };
        Ok(Unprotected {
            kn,
            _l: PhantomData,
        })
    }
}

/// See [`Store::unprotect`].
pub(crate) struct Unprotected<'a> {
    kn: *mut RawKernfsNode,
    _l: PhantomData<&'a Store>,
}

impl Drop for Unprotected<'_> {
    fn drop(&mut self) {
        if !self.kn.is_null() {
            // SAFETY: from `rkm_bc_kobj_break`, undone once.
            unsafe { rkm_bc_kobj_unbreak(self.kn) };
        }
        // SAFETY: pinned by `unprotect`.
        unsafe { rkm_bc_module_put() };
    }
}

/// Writes into a sysfs buffer (a page).
pub(crate) struct PageWriter {
    buf: *mut u8,
    len: usize,
}

/// The size of a sysfs buffer.
const PAGE_SIZE: usize = 4096;

impl core::fmt::Write for PageWriter {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let room = PAGE_SIZE.saturating_sub(self.len + 1);
        let n = s.len().min(room);
        // SAFETY: sysfs show buffers are PAGE_SIZE bytes; `len + n` stays
        // below it.
        unsafe { ptr::copy_nonoverlapping(s.as_ptr(), self.buf.add(self.len), n) };
        self.len += n;
        Ok(())
    }
}

/// Where a [`KObj`] goes.
pub(crate) enum Parent<'a> {
    /// `/sys/kernel/`.
    Kernel,
    /// Under another directory of ours, which must outlive it.
    Dir(&'a KObjRaw),
    /// `/sys/block/<disk>/`.
    Disk(*mut RawKobj),
}

/// A directory of ours, as a parent (see [`KObj::as_parent`]).
pub(crate) struct KObjRaw(*mut RawKobj);

/// A sysfs directory whose files call `T::show`/`T::store` with the owner
/// it was made with.
///
/// # Invariants
///
/// `k` was made by `rkm_bc_kobj_create` with `owner` (from
/// `Arc::into_foreign`); drop destroys it (waiting for the show and store
/// calls in progress) and then reclaims `owner`.
pub(crate) struct KObj<T: SysfsDir> {
    k: NonNull<RawBcKobj>,
    owner: *const c_void,
    raw: KObjRaw,
    _t: PhantomData<kernel::sync::Arc<T>>,
}

// SAFETY: a kobject may be removed from any thread; the owner is an `Arc<T>`
// with `T: Send + Sync`.
unsafe impl<T: SysfsDir> Send for KObj<T> {}
// SAFETY: no `&self` method changes anything.
unsafe impl<T: SysfsDir> Sync for KObj<T> {}
// SAFETY: `KObjRaw` only names a directory, for a child's creation.
unsafe impl Send for KObjRaw {}
// SAFETY: as above.
unsafe impl Sync for KObjRaw {}

/// Most files a directory has.
const MAX_ATTRS: usize = 32;

impl<T: SysfsDir> KObj<T> {
    /// Makes the directory `name` (NUL-terminated) under `parent` with the
    /// files of `T::Attr`, owned by `owner`.
    pub(crate) fn create(
        parent: Parent<'_>,
        name: &'static [u8],
        owner: kernel::sync::Arc<T>,
    ) -> Result<Self> {
        let files = <T::Attr as AttrList>::FILES;
        if files.len() > MAX_ATTRS
            || name.last() != Some(&0)
            || files.iter().any(|a| a.name.last() != Some(&0))
        {
            return Err(code::EINVAL);
        }
        let mut names = [ptr::null::<c_char>(); MAX_ATTRS];
        let mut modes = [0u16; MAX_ATTRS];
        for ((n, m), a) in names.iter_mut().zip(modes.iter_mut()).zip(files) {
            *n = a.name.as_ptr().cast();
            *m = a.mode;
        }
        let parent = match parent {
            // SAFETY: `kernel_kobj` is always there.
            Parent::Kernel => unsafe { rkm_bc_kernel_kobj() },
            Parent::Dir(p) => p.0,
            Parent::Disk(k) => k,
        };
        // `LockClassKey` is a `#[repr(transparent)]` wrapper of the C key;
        // the kernel crate keeps its own `as_ptr` private.
        let key = ptr::from_ref(T::lock_class()).cast_mut().cast::<c_void>();
        let owner = owner.into_foreign();
        // `owner` stays valid until the directory is destroyed (drop).
        // SAFETY: static NUL-terminated names (checked), arrays of
        // `files.len()` entries, `T`'s callbacks, a static key.
        let k = unsafe {
            rkm_bc_kobj_create(
                parent,
                name.as_ptr().cast(),
                owner,
                show_trampoline::<T>,
                store_trampoline::<T>,
                names.as_ptr(),
                modes.as_ptr(),
                files.len() as c_int,
                key,
            )
        };
        let Some(k) = NonNull::new(k) else {
            // SAFETY: from `into_foreign` above; C did not keep it.
            drop(unsafe { kernel::sync::Arc::<T>::from_foreign(owner) });
            return Err(code::ENOMEM);
        };
        // SAFETY: `k` is live.
        let raw = KObjRaw(unsafe { rkm_bc_kobj_raw(k.as_ptr()) });
        // INVARIANT: made just now with `owner`.
        Ok(Self {
            k,
            owner,
            raw,
            _t: PhantomData,
        })
    }

    /// The directory, as the parent of others. Valid while the directory
    /// lives: its owner makes children only before dropping it (the
    /// kobject core holds the parent of each child it adds).
    pub(crate) fn parent_handle(&self) -> KObjRaw {
        KObjRaw(self.raw.0)
    }
}

impl<T: SysfsDir> Drop for KObj<T> {
    fn drop(&mut self) {
        // SAFETY: `k` is live (type invariant) and not used again; this
        // waits for the callbacks in progress.
        unsafe { rkm_bc_kobj_destroy(self.k.as_ptr()) };
        // SAFETY: from `into_foreign` in `create`; no callback uses it any
        // more.
        drop(unsafe { kernel::sync::Arc::<T>::from_foreign(self.owner) });
    }
}

/// The parent directory of a disk's own files (`/sys/block/<disk>/`).
pub(crate) fn disk_parent<T: DiskOps>(disk: &Disk<T>) -> Parent<'_> {
    Parent::Disk(disk.kobj())
}

/// # Safety
///
/// `owner` is the owner of a live `KObj<T>`, `buf` a sysfs page.
unsafe extern "C" fn show_trampoline<T: SysfsDir>(
    owner: *const c_void,
    attr: c_int,
    buf: *mut u8,
) -> isize {
    // SAFETY: the directory owns a reference until it is destroyed, which
    // waits for this call.
    let this = unsafe { kernel::sync::Arc::<T>::borrow(owner) };
    let Some(attr) = usize::try_from(attr).ok().and_then(T::Attr::from_index) else {
        return code::EINVAL.to_errno() as isize;
    };
    let mut w = PageWriter { buf, len: 0 };
    if T::show(&this, attr, &mut w).is_err() {
        return code::EINVAL.to_errno() as isize;
    }
    w.len as isize
}

/// # Safety
///
/// As for `show_trampoline`; `buf` holds `len` bytes; `this` is the store's
/// C context.
unsafe extern "C" fn store_trampoline<T: SysfsDir>(
    owner: *const c_void,
    attr: c_int,
    buf: *const u8,
    len: usize,
    this: *mut RawSelf,
) -> isize {
    // SAFETY: as in `show_trampoline`.
    let dir = unsafe { kernel::sync::Arc::<T>::borrow(owner) };
    let Some(attr) = usize::try_from(attr).ok().and_then(T::Attr::from_index) else {
        return code::EINVAL.to_errno() as isize;
    };
    // SAFETY: sysfs passes `len` valid bytes.
    let input = unsafe { core::slice::from_raw_parts(buf, len) };
    match T::store(dir, attr, input, &Store { this }) {
        Ok(()) => len as isize,
        Err(e) => e.to_errno() as isize,
    }
}

// ------------------------------------------------------------------ bios

/// A bio's operation, as the data path sees it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Op {
    /// A read.
    Read,
    /// A write with data.
    Write,
    /// A flush alone (an empty write with a preflush, or `REQ_OP_FLUSH`).
    Flush,
    /// A discard, a write of zeroes or a secure erase: sectors change
    /// without data.
    Discard,
    /// Anything else: passed through.
    Other,
}

/// A bio's sector, size and operation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BioInfo {
    pub(crate) sector: u64,
    pub(crate) sectors: u32,
    pub(crate) op: Op,
}

fn classify(raw: &RawInfo) -> Op {
    match raw.op {
        bindings::req_op_REQ_OP_READ => Op::Read,
        bindings::req_op_REQ_OP_WRITE if raw.sectors == 0 => Op::Flush,
        bindings::req_op_REQ_OP_WRITE => Op::Write,
        bindings::req_op_REQ_OP_FLUSH => Op::Flush,
        bindings::req_op_REQ_OP_DISCARD
        | bindings::req_op_REQ_OP_SECURE_ERASE
        | bindings::req_op_REQ_OP_WRITE_ZEROES => Op::Discard,
        _ => Op::Other,
    }
}

fn bio_info(raw: NonNull<RawBio>) -> BioInfo {
    let mut info = RawInfo::default();
    // SAFETY: the callers hold a live bio; `info` is a valid out-pointer.
    unsafe { rkm_bc_bio_info(raw.as_ptr(), &mut info) };
    BioInfo {
        sector: info.sector,
        sectors: info.sectors,
        op: classify(&info),
    }
}

/// What [`bio_sums`] does with the checksums.
#[derive(Clone, Copy)]
enum SumsOp {
    /// Stores them.
    Store,
    /// Compares them with the slots.
    Match,
}

/// The data checksums of the bio's data (blocks of `block` bytes), one per
/// slot: stored in `slots`, or compared with them. `false` if the data is
/// not `slots.len()` whole blocks (nothing stored) or does not match.
///
/// # Safety
///
/// `raw` is a live bio whose iterator describes its data, not under I/O;
/// nothing else writes `slots` meanwhile (nor reads them, to store).
unsafe fn bio_sums(raw: NonNull<RawBio>, block: u32, slots: &[AtomicU32], op: SumsOp) -> bool {
    let Ok(n) = c_uint::try_from(slots.len()) else {
        return false;
    };
    // `AtomicU32` has `u32`'s size and alignment.
    let p = slots.as_ptr().cast_mut().cast::<u32>();
    let (out, expect) = match op {
        SumsOp::Store => (p, ptr::null()),
        SumsOp::Match => (ptr::null_mut(), p.cast_const()),
    };
    // SAFETY: by the caller's contract; `out`/`expect` point to `n` `u32`s
    // that nothing else accesses while C stores into or reads them.
    unsafe { rkm_bc_bio_crcs(raw.as_ptr(), block, out, expect, n) >= 0 }
}

/// The plain write operation (no flush, no FUA) of a cache copy.
const PLAIN_WRITE: u32 = bindings::req_op_REQ_OP_WRITE;

/// What a bio of pages of ours does ([`BioSet::pages_bio`]).
pub(crate) enum PagesOp<'a> {
    /// A read.
    Read,
    /// A write with the operation and flags (flush, FUA...) of a bio we
    /// were given.
    WriteLike(&'a OrigBio),
}

/// A bio the block layer submitted to one of our disks, or a piece split
/// off one: ours to complete, exactly once.
///
/// # Invariants
///
/// `raw` is a live bio submitted to a bcache_rs disk (or split off one and
/// chained to it), not completed; `acct` is its I/O accounting start, if
/// started.
pub(crate) struct OrigBio {
    raw: NonNull<RawBio>,
    acct: Option<c_ulong>,
}

// SAFETY: a bio may be completed from any thread.
unsafe impl Send for OrigBio {}

impl OrigBio {
    pub(crate) fn info(&self) -> BioInfo {
        bio_info(self.raw)
    }

    /// The bio's operation and flags (`bi_opf`).
    fn opf(&self) -> u32 {
        let mut info = RawInfo::default();
        // SAFETY: live (type invariant); `info` is a valid out-pointer.
        unsafe { rkm_bc_bio_info(self.raw.as_ptr(), &mut info) };
        info.op | info.flags
    }

    /// Starts the disk's I/O accounting of the bio as it is now (a piece:
    /// its sectors and operation), unless the disk's `queue/iostats` is off
    /// or it was started already.
    pub(crate) fn start_acct(&mut self) {
        if self.acct.is_some() {
            return;
        }
        let mut start: c_ulong = 0;
        // SAFETY: live and ours (type invariant); `start` is an out-pointer.
        if unsafe { rkm_bc_acct_start(self.raw.as_ptr(), &mut start) } {
            self.acct = Some(start);
        }
    }

    /// Splits off the first `sectors` (fewer than the bio has) as a bio of
    /// its own, chained to this one (which completes after it); `None` if
    /// there is no memory.
    pub(crate) fn split_front(&mut self, sectors: u32, bs: &BioSet<()>) -> Option<OrigBio> {
        // SAFETY: live, not submitted anywhere (type invariant).
        let b = unsafe { rkm_bc_split(self.raw.as_ptr(), sectors, bs.raw()) };
        // INVARIANT: the split is chained to this bio: ours to complete.
        NonNull::new(b).map(|raw| OrigBio { raw, acct: None })
    }

    /// Whether `expect` holds the data checksums of the bio's data (blocks
    /// of `block` bytes): called once the clone that read it completed.
    ///
    /// # Safety
    ///
    /// No I/O to the bio's pages is in flight, and nothing writes `expect`
    /// meanwhile.
    pub(crate) unsafe fn sums_match(&self, block: u32, expect: &[AtomicU32]) -> bool {
        // SAFETY: live (type invariant), not submitted anywhere: its
        // iterator describes its data; the rest is the caller's contract.
        unsafe { bio_sums(self.raw, block, expect, SumsOp::Match) }
    }

    /// Completes the bio with `err` (0 or a negative errno), ending its
    /// accounting.
    pub(crate) fn complete(self, err: i32) {
        let this = ManuallyDrop::new(self);
        let (on, start) = match this.acct {
            Some(s) => (true, s),
            None => (false, 0),
        };
        // SAFETY: live and not completed (type invariant); `this` is not
        // used again (and not dropped).
        unsafe { rkm_bc_complete(this.raw.as_ptr(), err, on, start) };
    }
}

impl Drop for OrigBio {
    /// A bio nobody completed: completed with an I/O error, so that its
    /// submitter never hangs (a bug, said once in the log).
    fn drop(&mut self) {
        static WARNED: AtomicBool = AtomicBool::new(false);
        if !WARNED.swap(true, Ordering::Relaxed) {
            kernel::pr_warn!("a bio was dropped without completion: failed with EIO\n");
        }
        let (on, start) = match self.acct {
            Some(s) => (true, s),
            None => (false, 0),
        };
        // SAFETY: live and not completed (type invariant); not used again.
        unsafe { rkm_bc_complete(self.raw.as_ptr(), code::EIO.to_errno(), on, start) };
    }
}

/// What [`NewBio`], [`Done`] and [`DeferList`] keep in a bio's front pad,
/// before the caller's context.
#[repr(C)]
struct Header {
    /// The next bio of a [`DeferList`].
    link: *mut RawBio,
    /// The bio's errno at completion.
    status: i32,
    /// The bio's pages are ours: freed when it is released.
    own_pages: bool,
    /// The bio whose pages this clone shares: completed by the caller only
    /// after this clone completed (given back by [`Done::release`]).
    orig: Option<OrigBio>,
    /// A bio of ours whose pages this copy shares and that it holds open
    /// (`bio_inc_remaining`): released after this copy completed.
    holds: *mut RawBio,
}

/// The front pad of a bio of a [`BioSet<C>`].
#[repr(C)]
struct Pad<C> {
    hdr: Header,
    ctx: C,
}

/// A bio set whose bios carry a `C` before them.
///
/// # Invariants
///
/// `bs` was made by `rkm_bc_bioset_create` with `size_of::<Pad<C>>()`
/// bytes of front pad, and is destroyed on drop.
pub(crate) struct BioSet<C> {
    bs: NonNull<RawBioSet>,
    _c: PhantomData<C>,
}

// SAFETY: bio sets are thread-safe (mempools); the contexts travel with
// their bios, so `C: Send` is required to make them.
unsafe impl<C: Send> Send for BioSet<C> {}
// SAFETY: as above.
unsafe impl<C: Send> Sync for BioSet<C> {}

impl<C> BioSet<C> {
    pub(crate) fn new() -> Result<Self> {
        // The front pad is right before the bio, which C aligns to 8.
        const { assert!(core::mem::align_of::<Pad<C>>() <= 8) };
        let pad = c_uint::try_from(core::mem::size_of::<Pad<C>>()).map_err(|_| code::EINVAL)?;
        // SAFETY: any front pad size is accepted.
        let bs = unsafe { rkm_bc_bioset_create(pad) };
        // INVARIANT: made just now with that front pad.
        NonNull::new(bs)
            .map(|bs| Self {
                bs,
                _c: PhantomData,
            })
            .ok_or(code::ENOMEM)
    }

    fn raw(&self) -> *mut RawBioSet {
        self.bs.as_ptr()
    }

    /// A clone of `orig`'s data for `to` at `sector` (`plain`: a plain
    /// write, without `orig`'s flush or FUA). The clone keeps `orig` until
    /// it completed ([`Done::release`] gives it back). `Err` gives `orig`
    /// back if there is no memory.
    pub(crate) fn clone_bio(
        &self,
        orig: OrigBio,
        to: &Target<'_>,
        sector: u64,
        plain: bool,
    ) -> core::result::Result<Unready<C>, OrigBio> {
        let op = if plain { PLAIN_WRITE } else { 0 };
        // SAFETY: `orig` is live (its invariant); `to` an open device.
        let b = unsafe {
            rkm_bc_clone(
                orig.raw.as_ptr(),
                to.bdev,
                to.sector(sector),
                op,
                self.raw(),
            )
        };
        let Some(raw) = NonNull::new(b) else {
            return Err(orig);
        };
        // SAFETY: a fresh bio of this set.
        Ok(unsafe { Unready::new(raw, false, Some(orig), ptr::null_mut()) })
    }

    /// A bio of `bytes` in pages of its own, for `to` at `sector`, doing
    /// `op`; `None` if there is no memory (the pages are not waited for).
    pub(crate) fn pages_bio(
        &self,
        to: &Target<'_>,
        sector: u64,
        bytes: u32,
        op: PagesOp<'_>,
    ) -> Option<Unready<C>> {
        let op = match op {
            PagesOp::Read => bindings::req_op_REQ_OP_READ,
            PagesOp::WriteLike(orig) => orig.opf(),
        };
        // SAFETY: `to` is an open device; the C function checks `bytes`.
        let b = unsafe { rkm_bc_alloc_pages(to.bdev, to.sector(sector), bytes, op, self.raw()) };
        let raw = NonNull::new(b)?;
        // SAFETY: a fresh bio of this set.
        Some(unsafe { Unready::new(raw, true, None, ptr::null_mut()) })
    }
}

impl<C> Drop for BioSet<C> {
    fn drop(&mut self) {
        // SAFETY: no bio of the set is alive any more: each owns a context
        // that holds its device's I/O reference, and the owner drains those
        // before dropping the set.
        unsafe { rkm_bc_bioset_destroy(self.bs.as_ptr()) };
    }
}

/// Where a bio of ours goes.
pub(crate) struct Target<'a> {
    bdev: *mut RawBdev,
    /// Added to every sector: where the data starts on the device.
    offset: u64,
    _l: PhantomData<&'a BdevFile>,
}

impl Target<'_> {
    /// The device's sector of the target's `sector`.
    fn sector(&self, sector: u64) -> u64 {
        sector.saturating_add(self.offset)
    }
}

impl BdevFile {
    /// This device as the target of a bio. The bio's context must keep the
    /// device open until it completed (the data path's I/O references do).
    pub(crate) fn target(&self) -> Target<'_> {
        self.target_at(0)
    }

    /// The device's data from sector `offset` on as the target of a bio (a
    /// formatted backing device's data area).
    pub(crate) fn target_at(&self, offset: u64) -> Target<'_> {
        Target {
            bdev: self.raw(),
            offset,
            _l: PhantomData,
        }
    }
}

/// The front pad of a bio of a `BioSet<C>`.
///
/// # Safety
///
/// `raw` is a live bio of a `BioSet<C>`.
unsafe fn pad<C>(raw: NonNull<RawBio>) -> *mut Pad<C> {
    // SAFETY: by the caller's contract.
    unsafe { rkm_bc_bio_pad(raw.as_ptr()).cast() }
}

/// The header of the pad of `raw`.
///
/// # Safety
///
/// As for [`pad`].
unsafe fn header<C>(raw: NonNull<RawBio>) -> *mut Header {
    // SAFETY: by the caller's contract the pad is there; no reference is
    // made.
    unsafe { ptr::addr_of_mut!((*pad::<C>(raw)).hdr) }
}

/// A bio of ours from a [`BioSet<C>`] whose context is not set yet.
///
/// # Invariants
///
/// `raw` is a live bio of a `BioSet<C>`, not submitted, whose pad header is
/// initialised (its context is not), with end_io `bcache_rs_endio`.
pub(crate) struct Unready<C> {
    raw: NonNull<RawBio>,
    _c: PhantomData<C>,
}

impl<C> Unready<C> {
    /// # Safety
    ///
    /// `raw` is a fresh bio of a `BioSet<C>` with end_io
    /// `bcache_rs_endio`; `holds` is null or a live bio this one holds
    /// open.
    unsafe fn new(
        raw: NonNull<RawBio>,
        own_pages: bool,
        orig: Option<OrigBio>,
        holds: *mut RawBio,
    ) -> Self {
        let hdr = Header {
            link: ptr::null_mut(),
            status: 0,
            own_pages,
            orig,
            holds,
        };
        // SAFETY: the front pad is `size_of::<Pad<C>>()` bytes before the
        // bio, aligned (checked in `BioSet::new`), ours and uninitialised.
        unsafe { ptr::write(header::<C>(raw), hdr) };
        // INVARIANT: header written, not submitted.
        Self {
            raw,
            _c: PhantomData,
        }
    }

    /// Copies `src`'s data into this bio's pages (a bio of pages of ours as
    /// long as `src`): the data the caller gave is read once, here.
    pub(crate) fn copy_from(&mut self, src: &OrigBio) -> Result {
        // SAFETY: the header is initialised (type invariant).
        if !unsafe { (*header::<C>(self.raw)).own_pages } {
            return Err(code::EINVAL);
        }
        // SAFETY: both bios are live; our pages are not under I/O (not
        // submitted); C copies as much as the shorter holds.
        unsafe { rkm_bc_copy_data(self.raw.as_ptr(), src.raw.as_ptr()) };
        Ok(())
    }

    /// Stores the data checksums of this bio's data (blocks of `block`
    /// bytes) in `out`; `false` (nothing stored) unless the data is
    /// `out.len()` whole blocks.
    ///
    /// # Safety
    ///
    /// Nothing else reads or writes `out` meanwhile.
    pub(crate) unsafe fn store_sums(&self, block: u32, out: &[AtomicU32]) -> bool {
        // SAFETY: live, not submitted (type invariant); the rest is the
        // caller's contract.
        unsafe { bio_sums(self.raw, block, out, SumsOp::Store) }
    }

    /// Sets the context: the bio is ready to be submitted.
    pub(crate) fn init(self, ctx: C) -> NewBio<C> {
        let this = ManuallyDrop::new(self);
        // SAFETY: the pad's context is ours and uninitialised (type
        // invariant).
        unsafe { ptr::write(ptr::addr_of_mut!((*pad::<C>(this.raw)).ctx), ctx) };
        // INVARIANT: pad fully initialised, not submitted.
        NewBio {
            raw: this.raw,
            _c: PhantomData,
        }
    }
}

impl<C> Drop for Unready<C> {
    /// Never used: the header is released, the bio put.
    fn drop(&mut self) {
        // SAFETY: header initialised, not submitted (type invariant); read
        // out once, the bio not used again.
        drop(unsafe { release_header::<C>(self.raw) });
    }
}

/// A bio of ours from a [`BioSet<C>`] with its context, built and not
/// submitted yet.
///
/// # Invariants
///
/// `raw` is a live bio of a `BioSet<C>` whose pad is initialised and whose
/// end_io is `bcache_rs_endio`; it is not submitted.
pub(crate) struct NewBio<C> {
    raw: NonNull<RawBio>,
    _c: PhantomData<C>,
}

// SAFETY: the bio may be submitted from any thread; its context is `Send`.
unsafe impl<C: Send> Send for NewBio<C> {}

impl<C> NewBio<C> {
    /// The context.
    pub(crate) fn ctx(&mut self) -> &mut C {
        // SAFETY: live with an initialised pad (type invariant), borrowed
        // mutably through `self`.
        unsafe { &mut (*pad::<C>(self.raw)).ctx }
    }

    /// As [`Unready::store_sums`].
    ///
    /// # Safety
    ///
    /// Nothing else reads or writes `out` meanwhile.
    pub(crate) unsafe fn store_sums(&self, block: u32, out: &[AtomicU32]) -> bool {
        // SAFETY: live, not submitted (type invariant): its iterator
        // describes its data; the rest is the caller's contract.
        unsafe { bio_sums(self.raw, block, out, SumsOp::Store) }
    }

    /// Copies this bio's data (pages of ours) into `dst` (as long).
    pub(crate) fn copy_to(&self, dst: &mut OrigBio) {
        // SAFETY: both are live; our pages are not under I/O (not
        // submitted); C copies as much as the shorter holds.
        unsafe { rkm_bc_copy_data(dst.raw.as_ptr(), self.raw.as_ptr()) };
    }

    /// Submits the bio: it comes back as a [`Done<C>`] in `bcache_rs_endio`.
    pub(crate) fn submit(self) {
        let this = ManuallyDrop::new(self);
        // SAFETY: built and not submitted (type invariant); ownership passes
        // to the block layer until its end_io.
        unsafe { rkm_bc_submit(this.raw.as_ptr()) };
    }

    /// Submits the bio and, beside it, a plain write of the same pages to
    /// `to` at `sector` with context `ctx`: this bio does not complete
    /// before the copy did (the copy holds it open). `Err` gives the bio
    /// and `ctx` back, nothing submitted, if there is no memory.
    pub(crate) fn submit_with_copy(
        self,
        bs: &BioSet<C>,
        to: &Target<'_>,
        sector: u64,
        ctx: C,
    ) -> core::result::Result<(), (Self, C)> {
        // SAFETY: `self` is live and not submitted; `to` an open device.
        let b = unsafe {
            rkm_bc_clone(
                self.raw.as_ptr(),
                to.bdev,
                to.sector(sector),
                PLAIN_WRITE,
                bs.raw(),
            )
        };
        let Some(raw) = NonNull::new(b) else {
            return Err((self, ctx));
        };
        // SAFETY: `self` is live, not submitted: one more completion holds
        // its end_io back, given by the copy's release (`release_header`),
        // which happens after both are submitted, below.
        unsafe { rkm_bc_hold(self.raw.as_ptr()) };
        // SAFETY: a fresh bio of `bs`, holding `self` open.
        let copy = unsafe { Unready::<C>::new(raw, false, None, self.raw.as_ptr()) }.init(ctx);
        copy.submit();
        self.submit();
        Ok(())
    }
}

impl<C> Drop for NewBio<C> {
    /// A bio built and never submitted: its context (and the original it
    /// keeps) is dropped, its pages freed, and it is put.
    fn drop(&mut self) {
        // SAFETY: live with an initialised pad (type invariant); the pad is
        // read out once and the bio not used again.
        drop(unsafe { release::<C>(self.raw) });
    }
}

/// Moves the header out of `raw`, frees its own pages, puts it, releases
/// the bio it held; returns the original a clone kept.
///
/// # Safety
///
/// `raw` is a live bio of a `BioSet<C>` with an initialised header, not in
/// flight, not used again; its context was moved out or never set.
unsafe fn release_header<C>(raw: NonNull<RawBio>) -> Option<OrigBio> {
    // SAFETY: by the caller's contract; the header is not read again.
    let hdr = unsafe { ptr::read(header::<C>(raw)) };
    if hdr.own_pages {
        // SAFETY: the pages are ours and no I/O uses them any more.
        unsafe { rkm_bc_free_pages(raw.as_ptr()) };
    }
    // SAFETY: live, ours, not used again.
    unsafe { rkm_bc_put(raw.as_ptr()) };
    if !hdr.holds.is_null() {
        // SAFETY: the bio we held open (`submit_with_copy`) is live until
        // this release, our one pending completion of it.
        unsafe { rkm_bc_release_hold(hdr.holds) };
    }
    hdr.orig
}

/// Moves the context and the original out of `raw` and frees it: the
/// context is never reached after the bio is put.
///
/// # Safety
///
/// As for [`release_header`], with the context initialised.
unsafe fn release<C>(raw: NonNull<RawBio>) -> (C, Option<OrigBio>) {
    // SAFETY: by the caller's contract the context is initialised; it is
    // not read again.
    let ctx = unsafe { ptr::read(ptr::addr_of!((*pad::<C>(raw)).ctx)) };
    // SAFETY: as the caller's, the context moved out.
    let orig = unsafe { release_header::<C>(raw) };
    (ctx, orig)
}

/// A bio of ours that completed, with its context still in its front pad.
///
/// # Invariants
///
/// `raw` is a live, completed bio of a `BioSet<C>` with an initialised pad
/// whose `status` is its completion's.
pub(crate) struct Done<C> {
    raw: NonNull<RawBio>,
    _c: PhantomData<C>,
}

// SAFETY: a completed bio may be released from any thread; `C: Send`.
unsafe impl<C: Send> Send for Done<C> {}

impl<C> Done<C> {
    /// # Safety
    ///
    /// `raw` is a bio of a `BioSet<C>` built by [`NewBio`], completing now
    /// with `err`.
    pub(crate) unsafe fn from_endio(raw: NonNull<RawBio>, err: i32) -> Self {
        // SAFETY: by the caller's contract the pad is initialised.
        unsafe { (*header::<C>(raw)).status = err };
        // INVARIANT: completed, status recorded.
        Self {
            raw,
            _c: PhantomData,
        }
    }

    fn pad(&self) -> &Pad<C> {
        // SAFETY: live with an initialised pad (type invariant).
        unsafe { &*pad::<C>(self.raw) }
    }

    /// The completion's errno (0 or negative).
    pub(crate) fn status(&self) -> i32 {
        self.pad().hdr.status
    }

    /// The context.
    pub(crate) fn ctx(&self) -> &C {
        &self.pad().ctx
    }

    /// The context, to change before [`Done::rewrite`].
    pub(crate) fn ctx_mut(&mut self) -> &mut C {
        // SAFETY: live with an initialised pad (type invariant), borrowed
        // mutably through `self`.
        unsafe { &mut (*pad::<C>(self.raw)).ctx }
    }

    /// The original a clone keeps (its data is what the clone read, once
    /// the clone completed).
    pub(crate) fn orig(&self) -> Option<&OrigBio> {
        self.pad().hdr.orig.as_ref()
    }

    /// The context of the bio this copy holds open
    /// ([`NewBio::submit_with_copy`]), if any: that bio's end_io waits for
    /// this copy's release, so only shared access is given.
    pub(crate) fn held_ctx(&self) -> Option<&C> {
        let held = NonNull::new(self.pad().hdr.holds)?;
        // The held bio cannot complete before our release, and nobody has
        // it mutably until its own end_io, after our release.
        // SAFETY: live, of the same `BioSet<C>` (cloned into it), pad set.
        Some(unsafe { &(*pad::<C>(held)).ctx })
    }

    /// Moves the context (and the original a clone kept) out, then frees
    /// the bio.
    pub(crate) fn release(self) -> (C, Option<OrigBio>) {
        let this = ManuallyDrop::new(self);
        // SAFETY: live, completed, with an initialised pad (type invariant);
        // `this` is not used again.
        unsafe { release::<C>(this.raw) }
    }

    /// Makes a completed bio of pages of our own a new write of all of them
    /// to `to` at `sector` (a fill: the data read from the backing device,
    /// written to the SSD), keeping its context. `Err` gives it back if its
    /// pages are not ours.
    pub(crate) fn rewrite(
        self,
        to: &Target<'_>,
        sector: u64,
    ) -> core::result::Result<NewBio<C>, Self> {
        let hdr = &self.pad().hdr;
        if !hdr.own_pages || !hdr.holds.is_null() {
            return Err(self);
        }
        let this = ManuallyDrop::new(self);
        // SAFETY: completed, ours, its pages ours; the pad (before the bio)
        // is untouched by the reset.
        unsafe { rkm_bc_rewind(this.raw.as_ptr(), to.bdev, to.sector(sector), PLAIN_WRITE) };
        // INVARIANT: live, pad initialised, end_io set again, not submitted.
        Ok(NewBio {
            raw: this.raw,
            _c: PhantomData,
        })
    }
}

impl<C> Drop for Done<C> {
    fn drop(&mut self) {
        // SAFETY: live, completed, pad initialised (type invariant); not
        // used again.
        drop(unsafe { release::<C>(self.raw) });
    }
}

/// Completed bios handed from interrupt context to process context: a
/// lock-free LIFO (`llist`) through their pads, taken whole by the work.
///
/// # Invariants
///
/// `head` is null or the first of a chain of completed bios of a
/// `BioSet<C>` (linked through their headers), each owned by the list.
pub(crate) struct DeferList<C> {
    head: AtomicPtr<RawBio>,
    _c: PhantomData<C>,
}

// SAFETY: the list is used with atomics; its bios' contexts are `Send`.
unsafe impl<C: Send> Send for DeferList<C> {}
// SAFETY: as above.
unsafe impl<C: Send> Sync for DeferList<C> {}

impl<C> DeferList<C> {
    pub(crate) const fn new() -> Self {
        // INVARIANT: empty.
        Self {
            head: AtomicPtr::new(ptr::null_mut()),
            _c: PhantomData,
        }
    }

    /// Adds `done` (any context). Returns whether the list was empty, i.e.
    /// whether the caller must queue the work that drains it.
    pub(crate) fn push(&self, done: Done<C>) -> bool {
        let this = ManuallyDrop::new(done);
        let raw = this.raw.as_ptr();
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: `raw` is live with an initialised pad (`Done`'s
            // invariant), and ours until published below.
            unsafe { (*header::<C>(this.raw)).link = head };
            match self
                .head
                .compare_exchange_weak(head, raw, Ordering::Release, Ordering::Relaxed)
            {
                // INVARIANT: the list owns `raw` now.
                Ok(_) => return head.is_null(),
                Err(h) => head = h,
            }
        }
    }

    /// Takes every bio of the list, oldest first.
    pub(crate) fn take_all(&self) -> DeferIter<C> {
        let mut node = self.head.swap(ptr::null_mut(), Ordering::Acquire);
        // Reverse the LIFO chain into completion order.
        let mut rev: *mut RawBio = ptr::null_mut();
        while let Some(n) = NonNull::new(node) {
            // SAFETY: owned by the list (invariant), now by us.
            let h = unsafe { header::<C>(n) };
            // SAFETY: as above.
            node = unsafe { (*h).link };
            // SAFETY: as above.
            unsafe { (*h).link = rev };
            rev = n.as_ptr();
        }
        // INVARIANT: `next` heads a chain of bios the iterator owns.
        DeferIter {
            next: rev,
            _c: PhantomData,
        }
    }
}

impl<C> Drop for DeferList<C> {
    fn drop(&mut self) {
        // Whatever is left is released (its contexts dropped).
        drop(self.take_all());
    }
}

/// The bios taken from a [`DeferList`].
///
/// # Invariants
///
/// `next` is null or the first of a chain of completed bios of a
/// `BioSet<C>` owned by the iterator.
pub(crate) struct DeferIter<C> {
    next: *mut RawBio,
    _c: PhantomData<C>,
}

impl<C> Iterator for DeferIter<C> {
    type Item = Done<C>;

    fn next(&mut self) -> Option<Done<C>> {
        let n = NonNull::new(self.next)?;
        // SAFETY: owned by the iterator (invariant), with an initialised
        // pad.
        self.next = unsafe { (*header::<C>(n)).link };
        // INVARIANT: a completed bio with its status, given to the caller.
        Some(Done {
            raw: n,
            _c: PhantomData,
        })
    }
}

impl<C> Drop for DeferIter<C> {
    fn drop(&mut self) {
        for done in self.by_ref() {
            drop(done);
        }
    }
}

/// A bio of ours completed.
///
/// # Safety
///
/// `bio` is a bio of the data path's `BioSet<IoCtx>`, completing now.
#[no_mangle]
unsafe extern "C" fn bcache_rs_endio(bio: *mut RawBio, err: c_int) {
    let Some(raw) = NonNull::new(bio) else {
        return;
    };
    // SAFETY: by the caller's contract.
    let done = unsafe { Done::<crate::datapath::IoCtx>::from_endio(raw, err) };
    crate::datapath::endio(done);
}

/// Devices alive (see [`Live`]).
pub(crate) static LIVE_DEVS: AtomicUsize = AtomicUsize::new(0);
/// Caches alive (see [`Live`]).
pub(crate) static LIVE_CACHES: AtomicUsize = AtomicUsize::new(0);

/// One object counted alive in a module-wide counter while this lives (a
/// field of the object): module unload says if any is left (a leaked
/// reference, which would keep its disk held).
pub(crate) struct Live(&'static AtomicUsize);

impl Live {
    pub(crate) fn new(count: &'static AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A scope in which the task's allocations do no I/O (`GFP_NOIO`): work
/// that writes of our disks may wait for (the journal's), so that reclaim
/// never waits for those writes from it. Ended on drop, on the same task.
pub(crate) struct NoIo {
    flags: c_uint,
    // Not `Send`: the scope is the task's.
    _task: PhantomData<*mut ()>,
}

impl NoIo {
    pub(crate) fn begin() -> Self {
        // SAFETY: no precondition; restored on drop, on this task.
        let flags = unsafe { rkm_bc_noio_save() };
        Self {
            flags,
            _task: PhantomData,
        }
    }
}

impl Drop for NoIo {
    fn drop(&mut self) {
        // SAFETY: the value `rkm_bc_noio_save` returned on this task (the
        // guard is not `Send`), scopes nested in order.
        unsafe { rkm_bc_noio_restore(self.flags) };
    }
}

/// Bios submitted to a disk of ours and held back (linked through their
/// `bi_next`, as a `bio_list` does), for a work item to take: pushed from
/// any context, taken whole.
///
/// # Invariants
///
/// `head` is null or the last pushed of a chain of live, uncompleted bios
/// submitted to a bcache_rs disk, whose accounting has not started, owned
/// by the list.
pub(crate) struct ParkList {
    head: AtomicPtr<RawBio>,
}

impl ParkList {
    pub(crate) const fn new() -> Self {
        // INVARIANT: empty.
        Self {
            head: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Holds `bio` back (its accounting must not have started: it starts
    /// again when the bio is taken). Returns whether the list was empty:
    /// then the caller queues the work that takes it.
    pub(crate) fn push(&self, bio: OrigBio) -> bool {
        let this = ManuallyDrop::new(bio);
        let raw = this.raw.as_ptr();
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: live and ours (`OrigBio`'s invariant), not published
            // yet.
            unsafe { rkm_bc_bio_set_next(raw, head) };
            match self
                .head
                .compare_exchange_weak(head, raw, Ordering::Release, Ordering::Relaxed)
            {
                // INVARIANT: the list owns `raw` now.
                Ok(_) => return head.is_null(),
                Err(h) => head = h,
            }
        }
    }

    /// Takes every bio held, oldest first.
    pub(crate) fn take_all(&self) -> ParkIter {
        let mut node = self.head.swap(ptr::null_mut(), Ordering::Acquire);
        let mut rev: *mut RawBio = ptr::null_mut();
        while !node.is_null() {
            // SAFETY: owned by the list (invariant), now by us.
            let next = unsafe { rkm_bc_bio_next(node) };
            // SAFETY: as above.
            unsafe { rkm_bc_bio_set_next(node, rev) };
            rev = node;
            node = next;
        }
        // INVARIANT: `next` heads a chain the iterator owns.
        ParkIter { next: rev }
    }
}

impl Drop for ParkList {
    fn drop(&mut self) {
        // Completed with an error by `OrigBio`'s drop (a bug: the owner
        // takes every bio before it goes).
        drop(self.take_all());
    }
}

/// The bios taken from a [`ParkList`].
///
/// # Invariants
///
/// `next` is null or the first of a chain of bios as in [`ParkList`],
/// owned by the iterator.
pub(crate) struct ParkIter {
    next: *mut RawBio,
}

impl ParkIter {
    /// Whether no bio is left.
    pub(crate) fn is_empty(&self) -> bool {
        self.next.is_null()
    }

    /// What each bio left is, in order (the bios stay).
    pub(crate) fn infos(&self) -> impl Iterator<Item = BioInfo> + '_ {
        let mut node = self.next;
        core::iter::from_fn(move || {
            let n = NonNull::new(node)?;
            // SAFETY: owned by the iterator (invariant), which `&self`
            // borrows: the chain stays.
            node = unsafe { rkm_bc_bio_next(n.as_ptr()) };
            Some(bio_info(n))
        })
    }
}

impl Iterator for ParkIter {
    type Item = OrigBio;

    fn next(&mut self) -> Option<OrigBio> {
        let n = NonNull::new(self.next)?;
        // SAFETY: owned by the iterator (invariant).
        self.next = unsafe { rkm_bc_bio_next(n.as_ptr()) };
        // SAFETY: as above; the link is ours to clear.
        unsafe { rkm_bc_bio_set_next(n.as_ptr(), ptr::null_mut()) };
        // INVARIANT: a live bio submitted to our disk, not completed, its
        // accounting not started; given to the caller.
        Some(OrigBio { raw: n, acct: None })
    }
}

impl Drop for ParkIter {
    fn drop(&mut self) {
        for bio in self.by_ref() {
            drop(bio);
        }
    }
}

/// A value that only a [`Quiesced`](crate::dev::Quiesced) device may change
/// and only code holding one of its I/O references may read: see
/// `crate::dev`.
pub(crate) struct IoCell<T> {
    value: UnsafeCell<T>,
}

impl<T> IoCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self {
            value: UnsafeCell::new(value),
        }
    }

    /// # Safety
    ///
    /// No [`IoCell::set`] may run for the life of the returned reference.
    pub(crate) unsafe fn get(&self) -> &T {
        // SAFETY: by the caller's contract nobody writes meanwhile.
        unsafe { &*self.value.get() }
    }

    /// # Safety
    ///
    /// No reference from [`IoCell::get`] may be alive, and no other `set`
    /// may run.
    pub(crate) unsafe fn set(&self, value: T) -> T {
        // SAFETY: by the caller's contract the access is exclusive.
        unsafe { core::mem::replace(&mut *self.value.get(), value) }
    }
}

// SAFETY: the accessors' contracts make every access exclusive or shared
// without writers; `T` crosses threads with the device.
unsafe impl<T: Send + Sync> Sync for IoCell<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for IoCell<T> {}
