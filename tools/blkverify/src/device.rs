// SPDX-License-Identifier: GPL-2.0

//! The device under test: a block device or a regular file, opened for
//! `O_DIRECT` I/O (through the page cache with `--no-direct`); positioned
//! reads and writes of whole buffers, BLKZEROOUT, BLKDISCARD and fsync,
//! each failure an [`IoError`] that names the operation, the offset and the
//! errno; and the page-aligned buffers `O_DIRECT` needs.

use std::alloc::{self, Layout};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::marker::PhantomData;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

/// Alignment of I/O buffers: a page, enough for any logical block size.
pub const ALIGN: usize = 4096;

/// `BLKDISCARD`, `_IO(0x12, 119)`: discard a byte range `[u64; 2]`.
const BLKDISCARD: libc::c_ulong = 0x1277;

/// `BLKZEROOUT`, `_IO(0x12, 127)`: zero a byte range `[u64; 2]`.
const BLKZEROOUT: libc::c_ulong = 0x127f;

/// A failed operation on the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoError {
    /// The operation: `open`, `pread`, `pwrite`, `BLKZEROOUT`, ...
    pub op: &'static str,
    /// Its byte offset on the device.
    pub offset: u64,
    /// Its length in bytes.
    pub len: u64,
    /// The errno; `None` when the device ended before the transfer did.
    pub errno: Option<i32>,
}

impl IoError {
    fn new(op: &'static str, offset: u64, len: u64, e: &io::Error) -> IoError {
        IoError {
            op,
            offset,
            len,
            errno: Some(e.raw_os_error().unwrap_or(libc::EIO)),
        }
    }

    fn last(op: &'static str, offset: u64, len: u64) -> IoError {
        IoError::new(op, offset, len, &io::Error::last_os_error())
    }
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.offset == 0 && self.len == 0 {
            write!(f, "{}: ", self.op)?;
        } else {
            write!(
                f,
                "{} offset {} length {}: ",
                self.op, self.offset, self.len
            )?;
        }
        match self.errno {
            Some(e) => write!(
                f,
                "{} ({})",
                errno_name(e),
                io::Error::from_raw_os_error(e)
                    .to_string()
                    .trim_end_matches(&format!(" (os error {e})"))
            ),
            None => write!(f, "short transfer (the device ended)"),
        }
    }
}

/// The symbolic name of errno `e`, for the errors a block device gives.
pub fn errno_name(e: i32) -> String {
    let name = match e {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::ENODEV => "ENODEV",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::EFBIG => "EFBIG",
        libc::ENOSPC => "ENOSPC",
        libc::EROFS => "EROFS",
        libc::ENOTTY => "ENOTTY",
        libc::ENOLINK => "ENOLINK",
        libc::ENODATA => "ENODATA",
        libc::EILSEQ => "EILSEQ",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::EREMOTEIO => "EREMOTEIO",
        libc::ENOLCK => "ENOLCK",
        libc::EBADE => "EBADE",
        libc::ESTALE => "ESTALE",
        _ => return format!("errno {e}"),
    };
    name.to_string()
}

/// How to open the device.
#[derive(Clone, Copy, Debug)]
pub struct OpenFlags {
    /// Read-write (else read-only).
    pub write: bool,
    /// `O_DIRECT`.
    pub direct: bool,
    /// Also open a second descriptor with `O_DSYNC`, for FUA writes.
    pub dsync: bool,
}

/// An open device.
#[derive(Debug)]
pub struct Device {
    file: File,
    dsync: Option<File>,
    is_block: bool,
    size: u64,
}

impl Device {
    /// Opens `path`, a block device or a regular file.
    pub fn open(path: &str, flags: OpenFlags) -> Result<Device, IoError> {
        let open = |extra: libc::c_int| {
            let mut options = OpenOptions::new();
            options.read(true).write(flags.write);
            let direct = if flags.direct { libc::O_DIRECT } else { 0 };
            options.custom_flags(direct | extra);
            options
                .open(path)
                .map_err(|e| IoError::new("open", 0, 0, &e))
        };
        let mut file = open(0)?;
        let meta = file
            .metadata()
            .map_err(|e| IoError::new("fstat", 0, 0, &e))?;
        let is_block = meta.file_type().is_block_device();
        if !is_block && !meta.file_type().is_file() {
            return Err(IoError {
                op: "open (not a block device or a regular file)",
                offset: 0,
                len: 0,
                errno: Some(libc::EINVAL),
            });
        }
        let size = if is_block {
            file.seek(SeekFrom::End(0))
                .map_err(|e| IoError::new("lseek(SEEK_END)", 0, 0, &e))?
        } else {
            meta.len()
        };
        let dsync = if flags.dsync {
            Some(open(libc::O_DSYNC)?)
        } else {
            None
        };
        Ok(Device {
            file,
            dsync,
            is_block,
            size,
        })
    }

    /// The size in bytes (of a regular file: when it was opened).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether it is a block device (else a regular file).
    pub fn is_block(&self) -> bool {
        self.is_block
    }

    /// Reads `buf.len()` bytes at `offset`.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), IoError> {
        // SAFETY: `buf` is valid for writes of its length, and the `&mut`
        // borrow excludes any other access for the duration of the call.
        unsafe { self.read_raw(buf.as_mut_ptr(), buf.len(), offset) }
    }

    /// Reads `len` bytes at `offset` into the memory at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` must be valid for writes of `len` bytes for the duration of the
    /// call, and no reference to that memory may be read meanwhile except
    /// through atomics.
    pub unsafe fn read_raw(&self, ptr: *mut u8, len: usize, offset: u64) -> Result<(), IoError> {
        let fd = self.file.as_raw_fd();
        let mut done = 0usize;
        while done < len {
            let at = offset.saturating_add(done as u64);
            let Ok(at_off) = libc::off_t::try_from(at) else {
                return Err(io_einval("pread", offset, len));
            };
            // SAFETY: `done < len`, so `ptr + done` is in the buffer and
            // `len - done` bytes from it are valid for writes (caller's
            // contract); the kernel writes nothing else.
            let n = unsafe { libc::pread(fd, ptr.add(done).cast(), len - done, at_off) };
            match n {
                n if n > 0 => done += n as usize,
                0 => {
                    return Err(IoError {
                        op: "pread",
                        offset,
                        len: len as u64,
                        errno: None,
                    })
                }
                _ => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(IoError::new("pread", offset, len as u64, &e));
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes all of `buf` at `offset`, through the `O_DSYNC` descriptor
    /// (a FUA write) when `dsync` is set and it was opened.
    pub fn write_at(&self, buf: &[u8], offset: u64, dsync: bool) -> Result<(), IoError> {
        let (file, op) = match (&self.dsync, dsync) {
            (Some(f), true) => (f, "pwrite(O_DSYNC)"),
            _ => (&self.file, "pwrite"),
        };
        let fd = file.as_raw_fd();
        let mut done = 0usize;
        while let Some(rest) = buf.get(done..).filter(|r| !r.is_empty()) {
            let Ok(at) = libc::off_t::try_from(offset.saturating_add(done as u64)) else {
                return Err(io_einval(op, offset, buf.len()));
            };
            // SAFETY: `rest` is valid for reads of its length.
            let n = unsafe { libc::pwrite(fd, rest.as_ptr().cast(), rest.len(), at) };
            match n {
                n if n > 0 => done += n as usize,
                0 => {
                    return Err(IoError {
                        op,
                        offset,
                        len: buf.len() as u64,
                        errno: None,
                    })
                }
                _ => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(IoError::new(op, offset, buf.len() as u64, &e));
                    }
                }
            }
        }
        Ok(())
    }

    /// Makes `len` bytes at `offset` read back as zeros: BLKZEROOUT on a
    /// block device, a write of `zeros` (at least `len` bytes) on a file.
    pub fn zero_out(&self, offset: u64, len: u64, zeros: &[u8]) -> Result<(), IoError> {
        if self.is_block {
            return self.range_ioctl("BLKZEROOUT", BLKZEROOUT, offset, len);
        }
        match usize::try_from(len).ok().and_then(|n| zeros.get(..n)) {
            Some(z) => self.write_at(z, offset, false),
            None => Err(io_einval("pwrite(zeros)", offset, len as usize)),
        }
    }

    /// Discards `len` bytes at `offset`: BLKDISCARD on a block device, a
    /// punched hole on a file.
    pub fn discard(&self, offset: u64, len: u64) -> Result<(), IoError> {
        if self.is_block {
            return self.range_ioctl("BLKDISCARD", BLKDISCARD, offset, len);
        }
        let (Ok(at), Ok(n)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
            return Err(io_einval("fallocate(PUNCH_HOLE)", offset, len as usize));
        };
        let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
        // SAFETY: fallocate takes no pointers.
        let rc = unsafe { libc::fallocate(self.file.as_raw_fd(), mode, at, n) };
        if rc == 0 {
            Ok(())
        } else {
            Err(IoError::last("fallocate(PUNCH_HOLE)", offset, len))
        }
    }

    fn range_ioctl(
        &self,
        op: &'static str,
        request: libc::c_ulong,
        offset: u64,
        len: u64,
    ) -> Result<(), IoError> {
        let range: [u64; 2] = [offset, len];
        // SAFETY: BLKZEROOUT and BLKDISCARD read a `[u64; 2]` through the
        // pointer, which is valid for the duration of the call.
        let rc = unsafe { libc::ioctl(self.file.as_raw_fd(), request as _, range.as_ptr()) };
        if rc == 0 {
            Ok(())
        } else {
            Err(IoError::last(op, offset, len))
        }
    }

    /// fsync: on a block device, a flush of its volatile cache.
    pub fn sync(&self) -> Result<(), IoError> {
        self.file
            .sync_all()
            .map_err(|e| IoError::new("fsync", 0, self.size, &e))
    }
}

fn io_einval(op: &'static str, offset: u64, len: usize) -> IoError {
    IoError {
        op,
        offset,
        len: len as u64,
        errno: Some(libc::EINVAL),
    }
}

/// A zero-initialised buffer aligned to [`ALIGN`], for `O_DIRECT`.
///
/// # Invariants
///
/// `ptr` points to an allocation of `len > 0` bytes made with
/// `Layout::from_size_align(len, ALIGN)`, initialised, owned by `self`.
#[derive(Debug)]
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: an `AlignedBuf` owns its memory exclusively, like a `Box<[u8]>`.
unsafe impl Send for AlignedBuf {}

// SAFETY: shared references only give shared (read-only) access to the
// bytes, like `&Box<[u8]>`.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// Allocates `len` zero bytes.
    pub fn new(len: usize) -> Result<AlignedBuf, String> {
        let layout = Layout::from_size_align(len.max(1), ALIGN)
            .map_err(|e| format!("cannot allocate a buffer of {len} bytes: {e}"))?;
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(ptr)
            .ok_or_else(|| format!("cannot allocate a buffer of {len} bytes: out of memory"))?;
        // INVARIANT: a fresh zeroed allocation of `layout`, owned by no one else.
        Ok(AlignedBuf {
            ptr,
            len: len.max(1),
        })
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: by the invariants, `len` initialised bytes owned by `self`;
        // the `&self` borrow excludes writes for the returned lifetime.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The bytes, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: by the invariants, `len` initialised bytes owned by `self`;
        // the `&mut self` borrow makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// Shares the buffer between a thread that reads the device into it and
    /// threads that write it through atomics, for as long as the borrow.
    pub fn share(&mut self) -> SharedBuf<'_> {
        SharedBuf {
            ptr: self.ptr,
            len: self.len,
            _buf: PhantomData,
        }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        if let Ok(layout) = Layout::from_size_align(self.len, ALIGN) {
            // SAFETY: by the invariants, allocated with this very layout;
            // no borrow of the bytes outlives `self`.
            unsafe { alloc::dealloc(self.ptr.as_ptr(), layout) };
        }
    }
}

/// An [`AlignedBuf`] shared by threads: one reads the device into it
/// ([`SharedBuf::read_into`]), others store into it through
/// [`SharedBuf::words`]. No `&[u8]` to it exists meanwhile, so the bytes
/// are only ever accessed by the kernel or by atomics.
#[derive(Debug)]
pub struct SharedBuf<'a> {
    ptr: NonNull<u8>,
    len: usize,
    _buf: PhantomData<&'a mut AlignedBuf>,
}

// SAFETY: the memory is only accessed through atomics and by the kernel
// (`read_into`), both of which may happen from any thread.
unsafe impl Send for SharedBuf<'_> {}

// SAFETY: as for `Send`: no access through a shared `SharedBuf` is a plain
// Rust read or write of the bytes.
unsafe impl Sync for SharedBuf<'_> {}

impl SharedBuf<'_> {
    /// The buffer as 64-bit atomic words.
    pub fn words(&self) -> &[AtomicU64] {
        // SAFETY: the buffer is ALIGN-aligned (>= align_of::<AtomicU64>()),
        // initialised, and `len / 8` words fit in it; `AtomicU64` has the
        // layout of `u64`; the mutable borrow of the `AlignedBuf` held by
        // `self` means every other Rust access goes through these atomics.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast::<AtomicU64>(), self.len / 8) }
    }

    /// Reads the device at `offset` into the whole buffer.
    pub fn read_into(&self, dev: &Device, offset: u64) -> Result<(), IoError> {
        // SAFETY: the buffer is valid for writes of `len` bytes while `self`
        // borrows it, and Rust code only reads it through atomics.
        unsafe { dev.read_raw(self.ptr.as_ptr(), self.len, offset) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_and_zeroed() {
        let mut b = AlignedBuf::new(8192).unwrap();
        assert_eq!(b.as_slice().as_ptr() as usize % ALIGN, 0);
        assert!(b.as_slice().iter().all(|&x| x == 0));
        b.as_mut_slice()[100] = 3;
        assert_eq!(b.as_slice()[100], 3);
        assert_eq!(b.share().words().len(), 1024);
    }

    #[test]
    fn errors_name_the_operation() {
        let e = IoError {
            op: "pwrite",
            offset: 4096,
            len: 512,
            errno: Some(libc::EIO),
        };
        assert_eq!(
            e.to_string(),
            "pwrite offset 4096 length 512: EIO (Input/output error)"
        );
        let e = IoError { errno: None, ..e };
        assert!(e.to_string().ends_with("short transfer (the device ended)"));
        assert_eq!(errno_name(9999), "errno 9999");
    }
}
