// SPDX-License-Identifier: GPL-2.0

//! The wrappers of bcache_rs around `bcache_rs_c.c`: every raw call into C
//! is here, in a type that owns what it opens ([`BdevFile`], [`Disk`],
//! [`KObj`], [`Work`], [`BioSet`]) or states what a raw bio pointer may be
//! used for ([`Bio`]), and [`IrqLock`], the irq-safe spinlock the data path
//! needs because completions take it.

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::ptr::NonNull;
use kernel::alloc::{flags::GFP_KERNEL, KBox};
use kernel::error::{code, Error, Result};
use kernel::ffi::{c_char, c_int, c_uint, c_ulong};

/// `struct llist_node`: a node of a lock-free list, first field of the
/// contexts handed to [`Work::defer`].
#[repr(C)]
pub(crate) struct LlNode {
    next: *mut LlNode,
}

impl LlNode {
    pub(crate) const fn new() -> Self {
        Self {
            next: core::ptr::null_mut(),
        }
    }
}

/// `struct rkm_bc_bioinfo`.
#[repr(C)]
#[derive(Default)]
pub(crate) struct BioInfo {
    pub(crate) sector: u64,
    pub(crate) sectors: u32,
    pub(crate) op: u32,
}

pub(crate) const OP_READ: u32 = 0;
pub(crate) const OP_WRITE: u32 = 1;
pub(crate) const OP_FLUSH: u32 = 2;
pub(crate) const OP_DISCARD: u32 = 3;

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
struct RawDisk {
    _p: [u8; 0],
}
#[repr(C)]
struct RawKobj {
    _p: [u8; 0],
}
#[repr(C)]
struct RawBcKobj {
    _p: [u8; 0],
}
#[repr(C)]
struct RawWork {
    _p: [u8; 0],
}
#[repr(C)]
pub(crate) struct RawBioSet {
    _p: [u8; 0],
}

extern "C" {
    fn rkm_bc_kernel_kobj() -> *mut RawKobj;
    fn rkm_bc_disk_kobj(disk: *mut RawDisk) -> *mut RawKobj;
    fn rkm_bc_kobj_create(
        parent: *mut RawKobj,
        name: *const c_char,
        owner: *mut c_void,
        names: *const *const c_char,
        modes: *const u16,
        n: c_int,
        base: c_int,
    ) -> *mut RawBcKobj;
    fn rkm_bc_kobj_destroy(k: *mut RawBcKobj);
    fn rkm_bc_open(path: *const c_char, holder: *mut c_void, err: *mut c_int) -> *mut RawFile;
    fn rkm_bc_close(f: *mut RawFile);
    fn rkm_bc_bdev(f: *mut RawFile) -> *mut RawBdev;
    fn rkm_bc_sectors(b: *mut RawBdev) -> u64;
    fn rkm_bc_lbs(b: *mut RawBdev) -> c_uint;
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
        ssd: *mut RawBdev,
        min_lbs: c_uint,
        sectors: u64,
        idx: c_int,
        owner: *mut c_void,
        err: *mut c_int,
    ) -> *mut RawDisk;
    fn rkm_bc_disk_destroy(disk: *mut RawDisk);
    fn rkm_bc_disk_openers(disk: *mut RawDisk) -> c_uint;
    fn rkm_bc_disk_link(disk: *mut RawDisk, bdev: *mut RawBdev) -> c_int;
    fn rkm_bc_disk_unlink(disk: *mut RawDisk, bdev: *mut RawBdev);
    fn rkm_bc_bio_info(bio: *mut RawBio, info: *mut BioInfo);
    fn rkm_bc_bioset_create(front_pad: c_uint) -> *mut RawBioSet;
    fn rkm_bc_bioset_destroy(bs: *mut RawBioSet);
    fn rkm_bc_bio_ctx(bio: *mut RawBio) -> *mut c_void;
    fn rkm_bc_split(bio: *mut RawBio, sectors: u32, bs: *mut RawBioSet) -> *mut RawBio;
    fn rkm_bc_clone(
        orig: *mut RawBio,
        bdev: *mut RawBdev,
        sector: u64,
        plain: bool,
        bs: *mut RawBioSet,
    ) -> *mut RawBio;
    fn rkm_bc_copy(
        src: *mut RawBio,
        bdev: *mut RawBdev,
        sector: u64,
        bs: *mut RawBioSet,
    ) -> *mut RawBio;
    fn rkm_bc_free_copy(bio: *mut RawBio);
    fn rkm_bc_submit(bio: *mut RawBio);
    fn rkm_bc_put(bio: *mut RawBio);
    fn rkm_bc_acct_start(bio: *mut RawBio, start: *mut c_ulong) -> bool;
    fn rkm_bc_complete(bio: *mut RawBio, err: c_int, acct: bool, start: c_ulong);
    fn rkm_bc_lock_size() -> usize;
    fn rkm_bc_lock_init(lock: *mut c_void);
    fn rkm_bc_lock(lock: *mut c_void) -> c_ulong;
    fn rkm_bc_unlock(lock: *mut c_void, flags: c_ulong);
    fn rkm_bc_work_create(owner: *mut c_void, what: c_int) -> *mut RawWork;
    fn rkm_bc_work_queue(w: *mut RawWork);
    fn rkm_bc_defer(w: *mut RawWork, node: *mut LlNode);
    fn rkm_bc_work_destroy(w: *mut RawWork);
    fn rkm_bc_msleep(ms: c_uint);
    fn rkm_bc_init() -> c_int;
    fn rkm_bc_exit();
}

fn errno(err: c_int) -> Error {
    Error::from_errno(err)
}

/// The module-wide C state (workqueue, block major): [`init`] at load,
/// [`exit`] at unload.
pub(crate) fn init() -> Result {
    // SAFETY: called once, at module load, before anything else of this file.
    let err = unsafe { rkm_bc_init() };
    if err < 0 {
        return Err(errno(err));
    }
    Ok(())
}

/// Undoes [`init`].
///
/// # Safety
///
/// [`init`] succeeded, and every object of this file has been dropped.
pub(crate) unsafe fn exit() {
    // SAFETY: by the caller's contract.
    unsafe { rkm_bc_exit() };
}

/// Sleeps `ms` milliseconds.
pub(crate) fn msleep(ms: u32) {
    // SAFETY: sleeping is allowed where this is called (process context,
    // no lock held: the callers are sysfs stores and work items).
    unsafe { rkm_bc_msleep(ms) };
}

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
// SAFETY: the methods taking `&self` only read the device's fixed state.
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
            Some(file) => Ok(Self { file }),
            None => Err(errno(err)),
        }
    }

    pub(crate) fn bdev(&self) -> *mut RawBdev {
        // SAFETY: `file` is an open block device file (type invariant).
        unsafe { rkm_bc_bdev(self.file.as_ptr()) }
    }

    /// Size in 512-byte sectors.
    pub(crate) fn sectors(&self) -> u64 {
        // SAFETY: `bdev()` is valid while the file is open.
        unsafe { rkm_bc_sectors(self.bdev()) }
    }

    /// Logical block size in bytes.
    pub(crate) fn logical_block_size(&self) -> u32 {
        // SAFETY: as in `sectors`.
        unsafe { rkm_bc_lbs(self.bdev()) }
    }

    pub(crate) fn devt(&self) -> u32 {
        // SAFETY: as in `sectors`.
        unsafe { rkm_bc_devt(self.bdev()) }
    }

    /// The device's name (`nvme0n1`), NUL-padded.
    pub(crate) fn name(&self) -> [u8; 32] {
        let mut buf = [0u8; 32];
        // SAFETY: `buf` is writable for its length; snprintf terminates.
        unsafe { rkm_bc_bdev_name(self.bdev(), buf.as_mut_ptr().cast(), buf.len()) };
        buf
    }

    /// Reads `buf.len()` bytes (at most a page) at `sector`, waiting.
    pub(crate) fn read(&self, sector: u64, buf: &mut [u8]) -> Result {
        let len = c_uint::try_from(buf.len()).map_err(|_| code::EINVAL)?;
        // SAFETY: `buf` is valid for writes of `len` bytes during the call.
        let err =
            unsafe { rkm_bc_rw_sync(self.bdev(), sector, buf.as_mut_ptr().cast(), len, false) };
        if err < 0 {
            return Err(errno(err));
        }
        Ok(())
    }
}

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

/// A `/dev/bcache_rs<N>` disk, with the devices under it linked as its
/// slaves (`/sys/block/bcache_rs<N>/slaves`, their `holders`: `lsblk`).
///
/// # Invariants
///
/// `disk` was added by `rkm_bc_disk_create` and is removed on drop;
/// `backing` and, if not null, `ssd` are open block devices linked as its
/// slaves, unlinked on drop, and stay open until then.
pub(crate) struct Disk {
    disk: NonNull<RawDisk>,
    backing: *mut RawBdev,
    ssd: *mut RawBdev,
}

// SAFETY: a gendisk may be removed from any thread.
unsafe impl Send for Disk {}
// SAFETY: `&self` methods only read an atomic counter.
unsafe impl Sync for Disk {}

impl Disk {
    /// Adds `/dev/bcache_rs<idx>` over `backing` (limits also stacked from
    /// `ssd`), `sectors` long, submitting its bios to `owner`; `backing` is
    /// linked as its slave.
    ///
    /// # Safety
    ///
    /// `owner` must be a `Dev` that outlives the disk: `bcache_rs_submit`
    /// dereferences it for every bio until drop returns. `backing` must
    /// stay open until the disk is dropped.
    pub(crate) unsafe fn create(
        backing: &BdevFile,
        ssd: Option<&BdevFile>,
        min_lbs: u32,
        sectors: u64,
        idx: u32,
        owner: *mut c_void,
    ) -> Result<Self> {
        let idx = c_int::try_from(idx).map_err(|_| code::ENOSPC)?;
        let limits_ssd = ssd.map_or(core::ptr::null_mut(), |s| s.bdev());
        let mut err: c_int = 0;
        // SAFETY: both block devices are open; `owner` is valid (caller).
        let d = unsafe {
            rkm_bc_disk_create(
                backing.bdev(),
                limits_ssd,
                min_lbs,
                sectors,
                idx,
                owner,
                &mut err,
            )
        };
        let disk = NonNull::new(d).ok_or_else(|| errno(err))?;
        let bdev = backing.bdev();
        // SAFETY: the disk is added; `bdev` is open exclusively (`BdevFile`).
        let err = unsafe { rkm_bc_disk_link(disk.as_ptr(), bdev) };
        if err != 0 {
            // SAFETY: just added, not used again.
            unsafe { rkm_bc_disk_destroy(disk.as_ptr()) };
            return Err(errno(err));
        }
        Ok(Self {
            disk,
            backing: bdev,
            ssd: core::ptr::null_mut(),
        })
    }

    /// Links the cache's SSD as a slave too (its device attached to it).
    ///
    /// # Safety
    ///
    /// `ssd` must stay open until the disk is dropped.
    pub(crate) unsafe fn link_ssd(&mut self, ssd: &BdevFile) -> Result {
        if !self.ssd.is_null() {
            return Err(code::EEXIST);
        }
        // SAFETY: the disk is live (invariant); `ssd` is open exclusively.
        let err = unsafe { rkm_bc_disk_link(self.disk.as_ptr(), ssd.bdev()) };
        if err != 0 {
            return Err(errno(err));
        }
        self.ssd = ssd.bdev();
        Ok(())
    }

    /// The disk, for [`disk_is_open`].
    pub(crate) fn raw(&self) -> *mut c_void {
        self.disk.as_ptr().cast()
    }

    fn kobj(&self) -> *mut RawKobj {
        // SAFETY: the disk is live (type invariant).
        unsafe { rkm_bc_disk_kobj(self.disk.as_ptr()) }
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        if !self.ssd.is_null() {
            // SAFETY: linked and still open (invariant); the disk is live.
            unsafe { rkm_bc_disk_unlink(self.disk.as_ptr(), self.ssd) };
        }
        // SAFETY: as above.
        unsafe { rkm_bc_disk_unlink(self.disk.as_ptr(), self.backing) };
        // SAFETY: the disk is live and is not used again.
        unsafe { rkm_bc_disk_destroy(self.disk.as_ptr()) };
    }
}

/// Whether something has the disk `raw` (from [`Disk::raw`], or null) open.
///
/// The caller makes sure the disk is not removed meanwhile: the `stop` file
/// that asks is removed before its disk.
pub(crate) fn disk_is_open(raw: *mut c_void) -> bool {
    if raw.is_null() {
        return false;
    }
    // SAFETY: a live disk (the caller's contract).
    unsafe { rkm_bc_disk_openers(raw.cast()) > 0 }
}

/// One sysfs file of a [`KObj`]: its NUL-terminated name and mode.
pub(crate) struct Attr {
    pub(crate) name: &'static [u8],
    pub(crate) mode: u16,
}

/// Where a [`KObj`] goes.
pub(crate) enum Parent<'a> {
    /// `/sys/kernel/`.
    Kernel,
    /// Another directory of ours, by [`KObj::raw`]; it must outlive the
    /// new one.
    Raw(*mut c_void),
    /// `/sys/block/<disk>/`.
    Disk(&'a Disk),
}

/// A sysfs directory whose files call `bcache_rs_show`/`_store` with
/// `owner` and `base` plus the file's index in its attribute table.
///
/// # Invariants
///
/// `k` was made by `rkm_bc_kobj_create` and is destroyed on drop, which
/// waits for the show and store calls in progress.
pub(crate) struct KObj {
    k: NonNull<RawBcKobj>,
}

// SAFETY: a kobject may be removed from any thread.
unsafe impl Send for KObj {}
// SAFETY: no `&self` method changes anything.
unsafe impl Sync for KObj {}

/// Most files a directory has.
const MAX_ATTRS: usize = 32;

impl KObj {
    /// Makes the directory `name` (NUL-terminated) with `attrs`.
    ///
    /// # Safety
    ///
    /// `owner` must stay valid until the `KObj` is dropped: show and store
    /// calls pass it back.
    pub(crate) unsafe fn create(
        parent: Parent<'_>,
        name: &'static [u8],
        owner: *mut c_void,
        attrs: &'static [Attr],
        base: i32,
    ) -> Result<Self> {
        if attrs.len() > MAX_ATTRS
            || name.last() != Some(&0)
            || attrs.iter().any(|a| a.name.last() != Some(&0))
        {
            return Err(code::EINVAL);
        }
        let mut names = [core::ptr::null::<c_char>(); MAX_ATTRS];
        let mut modes = [0u16; MAX_ATTRS];
        for (i, a) in attrs.iter().enumerate() {
            if let (Some(n), Some(m)) = (names.get_mut(i), modes.get_mut(i)) {
                *n = a.name.as_ptr().cast();
                *m = a.mode;
            }
        }
        let parent = match parent {
            // SAFETY: `kernel_kobj` is always there.
            Parent::Kernel => unsafe { rkm_bc_kernel_kobj() },
            // The C struct starts with its kobject.
            Parent::Raw(p) => p.cast::<RawKobj>(),
            Parent::Disk(d) => d.kobj(),
        };
        // SAFETY: the names are static and NUL-terminated (checked), the
        // arrays hold `attrs.len()` entries, `owner` is valid (caller).
        let k = unsafe {
            rkm_bc_kobj_create(
                parent,
                name.as_ptr().cast(),
                owner,
                names.as_ptr(),
                modes.as_ptr(),
                attrs.len() as c_int,
                base,
            )
        };
        NonNull::new(k).map(|k| Self { k }).ok_or(code::ENOMEM)
    }
}

impl KObj {
    /// The directory, for [`Parent::Raw`].
    pub(crate) fn raw(&self) -> *mut c_void {
        self.k.as_ptr().cast()
    }
}

impl Drop for KObj {
    fn drop(&mut self) {
        // SAFETY: `k` is live (type invariant) and not used again.
        unsafe { rkm_bc_kobj_destroy(self.k.as_ptr()) };
    }
}

/// A work item on the module's workqueue (`WQ_MEM_RECLAIM`): runs
/// `bcache_rs_deferred(owner, node)` for each node handed to
/// [`Work::defer`], then `bcache_rs_work(owner, what)`.
///
/// # Invariants
///
/// `w` was made by `rkm_bc_work_create`; drop cancels and waits for it.
pub(crate) struct Work {
    w: NonNull<RawWork>,
}

// SAFETY: work may be queued from any context and thread.
unsafe impl Send for Work {}
// SAFETY: queueing is thread-safe.
unsafe impl Sync for Work {}

impl Work {
    /// # Safety
    ///
    /// `owner` must stay valid until the `Work` is dropped.
    pub(crate) unsafe fn new(owner: *mut c_void, what: i32) -> Result<Self> {
        // SAFETY: `owner` is valid (caller).
        let w = unsafe { rkm_bc_work_create(owner, what) };
        NonNull::new(w).map(|w| Self { w }).ok_or(code::ENOMEM)
    }

    /// Queues the work (a no-op if it is queued already).
    pub(crate) fn queue(&self) {
        // SAFETY: `w` is live (type invariant).
        unsafe { rkm_bc_work_queue(self.w.as_ptr()) };
    }

    /// Hands `node` to the work; callable in any context.
    ///
    /// # Safety
    ///
    /// `node` must stay valid and untouched until the work passes it to
    /// `bcache_rs_deferred`, and the work must not be dropped before.
    pub(crate) unsafe fn defer(&self, node: *mut LlNode) {
        // SAFETY: by the caller's contract.
        unsafe { rkm_bc_defer(self.w.as_ptr(), node) };
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        // SAFETY: `w` is live and not used again.
        unsafe { rkm_bc_work_destroy(self.w.as_ptr()) };
    }
}

/// A bio set whose bios carry a `T` before them.
///
/// # Invariants
///
/// `bs` was made by `rkm_bc_bioset_create` with `size_of::<T>()` bytes of
/// front pad, and is destroyed on drop.
pub(crate) struct BioSet<T> {
    bs: NonNull<RawBioSet>,
    _t: core::marker::PhantomData<T>,
}

// SAFETY: bio sets are thread-safe (mempools).
unsafe impl<T> Send for BioSet<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for BioSet<T> {}

impl<T> BioSet<T> {
    pub(crate) fn new() -> Result<Self> {
        let pad = c_uint::try_from(core::mem::size_of::<T>()).map_err(|_| code::EINVAL)?;
        // SAFETY: any front pad size is accepted.
        let bs = unsafe { rkm_bc_bioset_create(pad) };
        NonNull::new(bs)
            .map(|bs| Self {
                bs,
                _t: core::marker::PhantomData,
            })
            .ok_or(code::ENOMEM)
    }

    pub(crate) fn raw(&self) -> *mut RawBioSet {
        self.bs.as_ptr()
    }
}

impl<T> Drop for BioSet<T> {
    fn drop(&mut self) {
        // SAFETY: no bio of the set is in flight any more (the owner waits
        // for them before dropping it).
        unsafe { rkm_bc_bioset_destroy(self.bs.as_ptr()) };
    }
}

/// The start (in jiffies) of a bio's I/O accounting on our disk, to be
/// ended when it completes ([`Bio::complete`]).
#[derive(Clone, Copy)]
pub(crate) struct Acct(c_ulong);

/// A raw bio: the block layer's, or one of our clones.
#[derive(Clone, Copy)]
pub(crate) struct Bio(pub(crate) *mut RawBio);

// SAFETY: a bio may be completed from any thread.
unsafe impl Send for Bio {}

impl Bio {
    /// Its sector, size and operation.
    ///
    /// # Safety
    ///
    /// The bio must be live.
    pub(crate) unsafe fn info(self) -> BioInfo {
        let mut info = BioInfo::default();
        // SAFETY: the bio is live (caller); `info` is a valid out-pointer.
        unsafe { rkm_bc_bio_info(self.0, &mut info) };
        info
    }

    /// The `T` in front of a bio of `BioSet<T>`.
    ///
    /// # Safety
    ///
    /// The bio must be live and come from a `BioSet<T>`.
    pub(crate) unsafe fn ctx<T>(self) -> *mut T {
        // SAFETY: by the caller's contract the front pad is a `T`.
        unsafe { rkm_bc_bio_ctx(self.0).cast() }
    }

    /// Splits off its first `sectors` (chained to it).
    ///
    /// # Safety
    ///
    /// The bio must be live, not yet submitted or completed, and longer
    /// than `sectors`.
    pub(crate) unsafe fn split<T>(self, sectors: u32, bs: &BioSet<T>) -> Option<Bio> {
        // SAFETY: by the caller's contract.
        let b = unsafe { rkm_bc_split(self.0, sectors, bs.raw()) };
        (!b.is_null()).then_some(Bio(b))
    }

    /// A clone for `bdev` at `sector` (a plain write with `plain`), whose
    /// completion calls `bcache_rs_endio`. Its `T` is uninitialised.
    ///
    /// # Safety
    ///
    /// The bio must be live and not completed before the clone is.
    pub(crate) unsafe fn clone_to<T>(
        self,
        bdev: *mut RawBdev,
        sector: u64,
        plain: bool,
        bs: &BioSet<T>,
    ) -> Bio {
        // SAFETY: by the caller's contract; `bdev` is an open device.
        Bio(unsafe { rkm_bc_clone(self.0, bdev, sector, plain, bs.raw()) })
    }

    /// A write of a copy of the bio's data to `bdev` at `sector`.
    ///
    /// # Safety
    ///
    /// As for [`Bio::clone_to`]; the copy is freed with [`Bio::free_copy`].
    pub(crate) unsafe fn copy_to<T>(
        self,
        bdev: *mut RawBdev,
        sector: u64,
        bs: &BioSet<T>,
    ) -> Option<Bio> {
        // SAFETY: by the caller's contract.
        let b = unsafe { rkm_bc_copy(self.0, bdev, sector, bs.raw()) };
        (!b.is_null()).then_some(Bio(b))
    }

    /// # Safety
    ///
    /// The bio is a clone or copy of ours, built and not yet submitted.
    pub(crate) unsafe fn submit(self) {
        // SAFETY: by the caller's contract.
        unsafe { rkm_bc_submit(self.0) };
    }

    /// # Safety
    ///
    /// The bio is a completed clone of ours, not used again.
    pub(crate) unsafe fn put(self) {
        // SAFETY: by the caller's contract.
        unsafe { rkm_bc_put(self.0) };
    }

    /// # Safety
    ///
    /// The bio is a completed copy of ours, not used again.
    pub(crate) unsafe fn free_copy(self) {
        // SAFETY: by the caller's contract.
        unsafe { rkm_bc_free_copy(self.0) };
    }

    /// Starts our disk's I/O accounting (`/sys/block/bcache_rs<N>/stat`)
    /// of a bio we were given, as it is now (its sectors and operation);
    /// `None` if the disk's `queue/iostats` is off.
    ///
    /// # Safety
    ///
    /// The bio was submitted to us and is not completed yet.
    pub(crate) unsafe fn start_acct(self) -> Option<Acct> {
        let mut start: c_ulong = 0;
        // SAFETY: by the caller's contract; `start` is a valid out-pointer.
        unsafe { rkm_bc_acct_start(self.0, &mut start) }.then_some(Acct(start))
    }

    /// Completes a bio we were given, with a negative errno or 0, ending
    /// its accounting if it was started.
    ///
    /// # Safety
    ///
    /// The bio was submitted to us, is not completed yet and is not used
    /// again; `acct` is what [`Bio::start_acct`] returned for it, and its
    /// sectors and operation have not changed since.
    pub(crate) unsafe fn complete(self, err: i32, acct: Option<Acct>) {
        let (on, start) = match acct {
            Some(Acct(start)) => (true, start),
            None => (false, 0),
        };
        // SAFETY: by the caller's contract.
        unsafe { rkm_bc_complete(self.0, err, on, start) };
    }
}

/// A spinlock taken with interrupts off, around a `T`: the data path takes
/// it in bio completions.
///
/// # Invariants
///
/// `lock` holds an initialised `spinlock_t` (it is boxed so that it never
/// moves); `data` is only reached through a [`IrqGuard`].
pub(crate) struct IrqLock<T> {
    lock: KBox<UnsafeCell<[u64; 16]>>,
    data: UnsafeCell<T>,
}

// SAFETY: the lock serialises every access to `data`.
unsafe impl<T: Send> Send for IrqLock<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for IrqLock<T> {}

impl<T> IrqLock<T> {
    pub(crate) fn new(data: T) -> Result<Self> {
        // SAFETY: no precondition.
        if unsafe { rkm_bc_lock_size() } > core::mem::size_of::<[u64; 16]>() {
            return Err(code::EINVAL);
        }
        let lock = KBox::new(UnsafeCell::new([0u64; 16]), GFP_KERNEL)?;
        // SAFETY: the storage is large enough (checked), aligned for a
        // `spinlock_t` (8 bytes) and never moves (boxed).
        unsafe { rkm_bc_lock_init(lock.get().cast()) };
        Ok(Self {
            lock,
            data: UnsafeCell::new(data),
        })
    }

    pub(crate) fn lock(&self) -> IrqGuard<'_, T> {
        // SAFETY: the lock is initialised (type invariant).
        let flags = unsafe { rkm_bc_lock(self.lock.get().cast()) };
        IrqGuard { lock: self, flags }
    }
}

/// The lock held: access to the data.
pub(crate) struct IrqGuard<'a, T> {
    lock: &'a IrqLock<T>,
    flags: c_ulong,
}

impl<T> core::ops::Deref for IrqGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the lock is held for the guard's life.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> core::ops::DerefMut for IrqGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the lock is held for the guard's life, and the guard is
        // borrowed mutably.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for IrqGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: taken in `lock` with these flags.
        unsafe { rkm_bc_unlock(self.lock.lock.get().cast(), self.flags) };
    }
}
