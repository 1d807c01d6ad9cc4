// SPDX-License-Identifier: GPL-2.0

//! `rkm-zbud`: host build of the project's kernel-agnostic zbud allocator.
//!
//! The allocator is in `src/zbud.rs` (with its handle and slot-table code in
//! `src/handles.rs`), which kernel modules include directly with
//! `#[allow(unreachable_pub, dead_code)] #[path = "../zbud/src/zbud.rs"] mod zbud;`.
//! This crate only wraps that file, under the kernel's lints, so that
//! `cargo test` and `cargo clippy` see the same source. The design is
//! documented in the [`zbud`] module.

#![no_std]
#![deny(unsafe_op_in_unsafe_fn, missing_docs, rust_2018_idioms)]
#![deny(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    clippy::unnecessary_safety_comment,
    clippy::unnecessary_safety_doc,
    clippy::mut_mut,
    clippy::ignored_unit_patterns,
    clippy::float_arithmetic
)]

#[path = "zbud.rs"]
pub mod zbud;

pub use zbud::*;
