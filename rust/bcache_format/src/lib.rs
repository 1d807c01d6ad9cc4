// SPDX-License-Identifier: GPL-2.0

//! `rkm-bcache-format`: host build of the on-disk format of the bcache_rs
//! SSD cache.
//!
//! The format is in `src/format.rs` (with `crc32c.rs`, `uuid.rs` and
//! `devtable.rs`, which it includes), which the kernel module includes
//! directly with
//! `#[allow(unreachable_pub, dead_code)] #[path = "../bcache_format/src/format.rs"] mod format;`
//! and the `bcache-rs` tool uses through this crate. This crate only wraps
//! that file, under the kernel's lints (the workspace's), so that `cargo test` and
//! `cargo clippy` see the same source. The format is documented in the
//! [`format`] module.

#![no_std]

#[path = "format.rs"]
pub mod format;

pub use format::*;
