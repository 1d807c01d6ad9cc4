// SPDX-License-Identifier: GPL-2.0

//! `rkm-zspan`: host build of the project's kernel-agnostic size-class
//! allocator.
//!
//! The allocator is in `src/zspan.rs` (with its classes in
//! `src/classes.rs`, its table records and handles in `src/records.rs` and
//! its invariant checker in `src/check.rs`), which kernel modules include
//! directly with
//! `#[allow(unreachable_pub, dead_code)] #[path = "../zspan/src/zspan.rs"] mod zspan;`,
//! next to the code it shares with zbud and z3fold,
//! `#[allow(unreachable_pub, dead_code)] #[path = "../zalloc/src/zalloc.rs"] mod zalloc;`,
//! which it uses as `crate::zalloc`. This crate only wraps that file, under
//! the kernel's lints (the workspace's), so that `cargo test` and `cargo
//! clippy` see the same source; `crate::zalloc` is the `rkm-zalloc` crate
//! here. The design is documented in the [`zspan`] module.

#![no_std]

pub use rkm_zalloc as zalloc;

#[path = "zspan.rs"]
pub mod zspan;

pub use zspan::*;
