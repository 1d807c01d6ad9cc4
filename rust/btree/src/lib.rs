// SPDX-License-Identifier: GPL-2.0

//! `rkm-btree`: host build of the project's kernel-agnostic B+tree.
//!
//! The whole tree is in `src/btree.rs`, which kernel modules include
//! directly with
//! `#[allow(unreachable_pub, dead_code)] #[path = "../btree/src/btree.rs"] mod btree;`.
//! This crate only wraps that file, under the kernel's lints (the workspace's), so that
//! `cargo test`, `cargo clippy` and the benchmark see the same source. The
//! design is documented in the [`btree`] module.

#![no_std]

#[path = "btree.rs"]
pub mod btree;

pub use btree::*;
