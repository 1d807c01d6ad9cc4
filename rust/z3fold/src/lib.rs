// SPDX-License-Identifier: GPL-2.0

//! `rkm-z3fold`: host build of the project's kernel-agnostic z3fold
//! allocator.
//!
//! The allocator is in `src/z3fold.rs` (with its page descriptors in
//! `src/descriptor.rs` and its invariant checker in `src/check.rs`), which
//! kernel modules include directly with
//! `#[allow(unreachable_pub, dead_code)] #[path = "../z3fold/src/z3fold.rs"] mod z3fold;`,
//! next to the code it shares with zbud,
//! `#[allow(unreachable_pub, dead_code)] #[path = "../zalloc/src/zalloc.rs"] mod zalloc;`,
//! which it uses as `crate::zalloc`. This crate only wraps that file, under
//! the kernel's lints (the workspace's), so that `cargo test` and `cargo clippy` see the same
//! source; `crate::zalloc` is the `rkm-zalloc` crate here. The design is
//! documented in the [`z3fold`] module.

#![no_std]

pub use rkm_zalloc as zalloc;

#[path = "z3fold.rs"]
pub mod z3fold;

pub use z3fold::*;
