// SPDX-License-Identifier: GPL-2.0

//! `rkm-bcache`: host build of the kernel-agnostic core of the bcache_rs SSD
//! cache.
//!
//! The core is `src/bcache.rs`, which the module includes directly with
//! `#[allow(unreachable_pub, dead_code)] #[path = "../bcache/src/bcache.rs"] mod bcache;`
//! next to the B+tree it indexes with,
//! `#[allow(unreachable_pub, dead_code)] #[path = "../btree/src/btree.rs"] mod btree;`,
//! which it uses as `crate::btree`. This crate only wraps that file, under
//! the kernel's lints, so that `cargo test` and `cargo clippy` see the same
//! source; `crate::btree` is the `rkm-btree` crate here. The design is
//! documented in the [`bcache`] module.

#![no_std]

pub use rkm_bcache_format::format;
pub use rkm_btree as btree;

#[path = "bcache.rs"]
pub mod bcache;

pub use bcache::*;

/// The persistent index: replay at registration, checkpoint at a clean
/// unregister (the module includes it as `#[path = "../bcache/src/persist.rs"] mod persist;`,
/// next to `format`).
#[path = "persist.rs"]
pub mod persist;

/// Data checksums: a crc32c per cache block (the module includes it as
/// `#[path = "../bcache/src/sums.rs"] mod sums;`).
#[path = "sums.rs"]
pub mod sums;
