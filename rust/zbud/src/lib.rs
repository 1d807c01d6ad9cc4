// SPDX-License-Identifier: GPL-2.0

//! `rkm-zbud`: host build of the project's kernel-agnostic zbud allocator.
//!
//! The allocator is in `src/zbud.rs` (with its handles and slot table in
//! `src/handles.rs` and its invariant checker in `src/check.rs`), which kernel modules include directly with
//! `#[allow(unreachable_pub, dead_code)] #[path = "../zbud/src/zbud.rs"] mod zbud;`,
//! next to the code it shares with z3fold,
//! `#[allow(unreachable_pub, dead_code)] #[path = "../zalloc/src/zalloc.rs"] mod zalloc;`,
//! which it uses as `crate::zalloc`. This crate only wraps that file, under
//! the kernel's lints (the workspace's), so that `cargo test` and `cargo clippy` see the same
//! source; `crate::zalloc` is the `rkm-zalloc` crate here. The design is
//! documented in the [`zbud`] module.

#![no_std]

pub use rkm_zalloc as zalloc;

#[path = "zbud.rs"]
pub mod zbud;

pub use zbud::*;
