// SPDX-License-Identifier: GPL-2.0

//! The anonymous memory region under test.

use std::io;
use std::ptr::NonNull;

/// A private anonymous mapping, unmapped on drop.
///
/// Pages are not populated up front: the first write faults each one in,
/// and under the memory cgroup's limit the kernel swaps them out again.
#[derive(Debug)]
pub struct Region {
    ptr: NonNull<u8>,
    len: usize,
}

impl Region {
    /// Maps `len` (> 0) bytes of read-write anonymous memory.
    pub fn map(len: usize) -> io::Result<Region> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty region"));
        }
        // SAFETY: a fresh anonymous mapping at an address of the kernel's
        // choosing; it overlaps nothing, so no existing memory is affected.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr =
            NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned NULL"))?;
        Ok(Region { ptr, len })
    }

    /// Asks the kernel not to back the region with transparent huge pages,
    /// so that it is reclaimed and swapped as individual 4 KiB pages.
    pub fn advise_no_huge_pages(&self) -> io::Result<()> {
        // SAFETY: madvise only changes how the kernel manages our own
        // mapping; MADV_NOHUGEPAGE does not change its contents.
        let rc =
            unsafe { libc::madvise(self.ptr.as_ptr().cast(), self.len, libc::MADV_NOHUGEPAGE) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// The whole region.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: the mapping is `len` bytes of readable and writable memory
        // (zero-filled when first touched, so initialised), valid until
        // `self` is dropped, and the `&mut self` borrow makes this the only
        // reference to it for the returned lifetime.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping created in `map`; no slice into
        // it can outlive `self`.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_write_read() {
        let mut r = Region::map(3 * 4096).unwrap();
        let _ = r.advise_no_huge_pages();
        let s = r.as_mut_slice();
        assert_eq!(s.len(), 3 * 4096);
        assert!(s.iter().all(|&b| b == 0));
        s[5000] = 7;
        assert_eq!(r.as_mut_slice()[5000], 7);
    }

    #[test]
    fn empty_is_an_error() {
        assert!(Region::map(0).is_err());
    }
}
