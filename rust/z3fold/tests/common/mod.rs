// SPDX-License-Identifier: GPL-2.0

//! Test support: `rkm-zalloc`'s (the page source, patterns, helpers, the
//! shared tests) and [`Z3fold`], the pool as it drives it.

// Each test uses part of it.
#![allow(dead_code, unused_imports)]

use rkm_z3fold::CHUNK_SIZE;
pub use rkm_zalloc::testing::{
    addr, check, fill, holds, page_of, pattern, ptr, with_bytes, Gfp, TestPages, TestPool, GFP,
};

rkm_zalloc::test_pool!(Z3fold, rkm_z3fold, check);

/// The first chunk of the object of `handle` in its page.
pub fn chunk(pool: &mut Z3fold<'_>, handle: rkm_z3fold::Handle) -> usize {
    let addr = addr(pool, handle);
    (addr - page_of(addr)) / CHUNK_SIZE
}

/// The size of an object of `chunks` chunks.
pub fn chunks(chunks: usize) -> usize {
    chunks * CHUNK_SIZE
}
