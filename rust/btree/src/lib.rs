// SPDX-License-Identifier: GPL-2.0

//! `rkm-btree`: host build of the project's kernel-agnostic B+tree.
//!
//! The whole tree is in `src/btree.rs`, which kernel modules include
//! directly with
//! `#[allow(unreachable_pub, dead_code)] #[path = "../btree/src/btree.rs"] mod btree;`.
//! This crate only wraps that file, under the kernel's lints, so that
//! `cargo test`, `cargo clippy` and the benchmark see the same source. The
//! design is documented in the [`btree`] module.

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

#[path = "btree.rs"]
pub mod btree;

pub use btree::*;
