// SPDX-License-Identifier: GPL-2.0

//! The code pool that [`Kind::Binary`](crate::content::Kind::Binary) pages
//! are cut from.
//!
//! Preferably real machine code: the first executable `PT_LOAD` segment of
//! this program's own executable, `/proc/self/exe`, at most [`POOL_MAX`]
//! bytes of it. If that cannot be read (no `/proc`, not a 64-bit
//! little-endian ELF file, a segment too small), a synthetic pool of x86-64
//! instruction-like byte sequences is generated instead. Either way the pool
//! is read once and stays the same for the whole run, which is all the
//! content generator needs to be deterministic.

use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::content::{Rng, PAGE_SIZE};

/// Largest pool kept in memory.
pub const POOL_MAX: usize = 256 * 1024;

/// Smallest executable segment used as a pool.
const POOL_MIN: usize = 16 * 1024;

/// Size of the synthetic pool.
const SYNTHETIC_LEN: usize = 64 * 1024;

/// Where the pool came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The executable segment of `/proc/self/exe`.
    SelfExe,
    /// Generated x86-64-like instruction bytes.
    Synthetic,
}

/// The machine code that binary pages are made of.
#[derive(Debug)]
pub struct CodePool {
    /// The bytes, at least one page.
    pub bytes: Vec<u8>,
    /// Where they came from.
    pub source: Source,
}

impl CodePool {
    /// Loads the pool from `/proc/self/exe`, falling back to a synthetic one.
    pub fn load() -> CodePool {
        match read_exec_segment("/proc/self/exe") {
            Some(bytes) => CodePool {
                bytes,
                source: Source::SelfExe,
            },
            None => CodePool::synthetic(),
        }
    }

    /// A synthetic pool.
    pub fn synthetic() -> CodePool {
        CodePool {
            bytes: synthetic_code(SYNTHETIC_LEN),
            source: Source::Synthetic,
        }
    }

    /// Describes the pool for the configuration line.
    pub fn describe(&self) -> String {
        let from = match self.source {
            Source::SelfExe => "/proc/self/exe",
            Source::Synthetic => "synthetic x86-64",
        };
        format!("{} KiB from {from}", self.bytes.len() / 1024)
    }
}

/// Reads the first executable `PT_LOAD` segment of the ELF64 little-endian
/// file at `path`, at most [`POOL_MAX`] bytes of it.
fn read_exec_segment(path: &str) -> Option<Vec<u8>> {
    const PT_LOAD: u32 = 1;
    const PF_X: u32 = 1;

    let file = File::open(path).ok()?;
    let mut ehdr = [0u8; 64];
    file.read_exact_at(&mut ehdr, 0).ok()?;
    // ELF magic, ELFCLASS64, ELFDATA2LSB.
    if ehdr[0..4] != *b"\x7fELF" || ehdr[4] != 2 || ehdr[5] != 1 {
        return None;
    }
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());

    let phoff = u64_at(&ehdr, 0x20);
    let phentsize = u64::from(u16_at(&ehdr, 0x36));
    let phnum = u64::from(u16_at(&ehdr, 0x38));
    if phentsize < 56 {
        return None;
    }
    let mut phdr = [0u8; 56];
    for i in 0..phnum {
        file.read_exact_at(&mut phdr, phoff.checked_add(i * phentsize)?)
            .ok()?;
        if u32_at(&phdr, 0) != PT_LOAD || u32_at(&phdr, 4) & PF_X == 0 {
            continue;
        }
        let offset = u64_at(&phdr, 8);
        let filesz = u64_at(&phdr, 0x20);
        let len = usize::try_from(filesz).ok()?.min(POOL_MAX);
        if len < POOL_MIN {
            continue;
        }
        let mut bytes = vec![0u8; len];
        file.read_exact_at(&mut bytes, offset).ok()?;
        // An all-zero "segment" would make binary pages zero pages.
        if bytes.iter().filter(|&&b| b != 0).count() < len / 4 {
            return None;
        }
        return Some(bytes);
    }
    None
}

/// Generates `len` (at least one page) bytes that look like x86-64 code:
/// function prologues and epilogues, moves, arithmetic, calls and jumps with
/// random displacements, NOP padding between functions.
pub fn synthetic_code(len: usize) -> Vec<u8> {
    let len = len.max(PAGE_SIZE);
    let mut rng = Rng::new(0x636f_6465_706f_6f6c);
    let mut out = Vec::with_capacity(len + 32);
    while out.len() < len {
        // Prologue.
        out.extend_from_slice(&[0x55, 0x48, 0x89, 0xe5, 0x41, 0x57, 0x41, 0x56, 0x53]);
        out.extend_from_slice(&[0x48, 0x83, 0xec, (rng.below(16) as u8) * 8]);
        for _ in 0..rng.range(4, 40) {
            let regs = rng.below(64) as u8;
            match rng.below(10) {
                // mov r64, r/m64 with disp8
                0 | 1 => out.extend_from_slice(&[0x48, 0x8b, 0x40 | regs, rng.below(32) as u8 * 8]),
                // mov r/m64, r64
                2 | 3 => out.extend_from_slice(&[0x48, 0x89, 0xc0 | regs]),
                // add/sub/cmp r/m64, imm8
                4 => out.extend_from_slice(&[0x48, 0x83, 0xc0 | regs, rng.below(64) as u8]),
                // test r64, r64; je rel8
                5 => out.extend_from_slice(&[0x48, 0x85, 0xc0 | regs, 0x74, rng.below(128) as u8]),
                // call rel32
                6 => {
                    out.push(0xe8);
                    out.extend_from_slice(&(rng.next_u64() as u32 & 0x000f_ffff).to_le_bytes());
                }
                // lea r64, [rip + disp32]
                7 => {
                    out.extend_from_slice(&[0x48, 0x8d, 0x05 | (regs & 0x38)]);
                    out.extend_from_slice(&(rng.next_u64() as u32 & 0x003f_ffff).to_le_bytes());
                }
                // jne rel32
                8 => {
                    out.extend_from_slice(&[0x0f, 0x85]);
                    out.extend_from_slice(&(rng.below(4096) as u32).to_le_bytes());
                }
                // xor eax, eax / mov eax, imm32
                _ => {
                    out.extend_from_slice(&[0x31, 0xc0, 0xb8]);
                    out.extend_from_slice(&(rng.below(256) as u32).to_le_bytes());
                }
            }
        }
        // Epilogue and padding to 16 bytes.
        out.extend_from_slice(&[
            0x48, 0x83, 0xc4, 0x08, 0x5b, 0x41, 0x5e, 0x41, 0x5f, 0x5d, 0xc3,
        ]);
        while out.len() % 16 != 0 {
            out.push(0xcc);
        }
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_exe_pool_is_code() {
        let pool = CodePool::load();
        assert!(pool.bytes.len() >= PAGE_SIZE);
        assert!(pool.bytes.len() <= POOL_MAX);
        // The test binary is an ELF file with a text segment on the
        // platforms this runs on.
        if cfg!(all(
            target_os = "linux",
            target_endian = "little",
            target_pointer_width = "64"
        )) {
            assert_eq!(pool.source, Source::SelfExe);
        }
    }

    #[test]
    fn synthetic_pool_is_deterministic() {
        let a = synthetic_code(SYNTHETIC_LEN);
        let b = synthetic_code(SYNTHETIC_LEN);
        assert_eq!(a.len(), SYNTHETIC_LEN);
        assert_eq!(a, b);
    }

    #[test]
    fn not_elf_falls_back() {
        assert!(read_exec_segment("/proc/self/status").is_none());
        assert!(read_exec_segment("/nonexistent/file").is_none());
    }
}
