// SPDX-License-Identifier: GPL-2.0

//! The device being formatted or shown: a block device or a regular file
//! (an image), its size and logical block size, positioned I/O.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// An open device.
pub struct Device {
    file: File,
    /// A block device rather than a regular file.
    pub is_block: bool,
    /// The size in bytes.
    pub size: u64,
    /// The logical block size (the smallest I/O) of a block device in
    /// bytes; `None` for a file or if unknown.
    pub logical_block: Option<u64>,
}

impl Device {
    /// Opens `path`. With `write`, a block device is opened exclusively
    /// (`O_EXCL`: fails if mounted or held by a driver).
    pub fn open(path: &Path, write: bool) -> Result<Device, String> {
        let name = path.display();
        let meta = std::fs::metadata(path).map_err(|e| format!("cannot open {name}: {e}"))?;
        let kind = meta.file_type();
        let is_block = kind.is_block_device();
        if !is_block && !kind.is_file() {
            return Err(format!("{name} is not a block device or a regular file"));
        }
        let mut options = OpenOptions::new();
        options.read(true).write(write);
        if write && is_block {
            options.custom_flags(libc::O_EXCL);
        }
        let mut file = options.open(path).map_err(|e| {
            if e.raw_os_error() == Some(libc::EBUSY) {
                format!("{name} is in use (mounted, or held by a driver such as bcache_rs, md or device-mapper)")
            } else {
                format!("cannot open {name}: {e}")
            }
        })?;
        let size = file
            .seek(SeekFrom::End(0))
            .map_err(|e| format!("cannot get the size of {name}: {e}"))?;
        let logical_block = if is_block {
            logical_block_size(meta.rdev())
        } else {
            None
        };
        Ok(Device {
            file,
            is_block,
            size,
            logical_block,
        })
    }

    /// Reads up to `len` bytes at `offset` (fewer at the end of the device).
    pub fn read_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        let mut done = 0;
        while done < len {
            match self.file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(done);
        Ok(buf)
    }

    /// Writes all of `buf` at `offset`.
    pub fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }

    /// Writes zeros over `len` bytes from `offset`.
    pub fn zero(&self, offset: u64, len: u64) -> io::Result<()> {
        const CHUNK: u64 = 1 << 20;
        let zeros = vec![0u8; CHUNK as usize];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(CHUNK);
            self.write_at(offset + done, &zeros[..n as usize])?;
            done += n;
        }
        Ok(())
    }

    /// Flushes the writes to stable storage.
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_all()
    }
}

/// The logical block size of block device `rdev` from sysfs: its own
/// `queue/` or, for a partition, its disk's.
fn logical_block_size(rdev: u64) -> Option<u64> {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    let dir = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    let disk = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.parent().map(Path::to_path_buf));
    [Some(dir), disk]
        .into_iter()
        .flatten()
        .find_map(|d| std::fs::read_to_string(d.join("queue/logical_block_size")).ok())
        .and_then(|text| text.trim().parse().ok())
}
