// SPDX-License-Identifier: GPL-2.0

//! Test support: `rkm-zalloc`'s (the page source, patterns, helpers, the
//! shared tests) and [`Zbud`], the pool as it drives it.

// Each test uses part of it.
#![allow(dead_code, unused_imports)]

pub use rkm_zalloc::testing::{
    addr, check, fill, holds, page_of, pattern, ptr, verify, write, Gfp, TestPages, TestPool, GFP,
};

rkm_zalloc::test_pool!(Zbud, rkm_zbud, check);
