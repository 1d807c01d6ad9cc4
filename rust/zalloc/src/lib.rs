// SPDX-License-Identifier: GPL-2.0

//! `rkm-zalloc`: host build of what the project's zpool allocators share.
//!
//! The shared code is in `src/zalloc.rs` (with `src/handle.rs` and
//! `src/table.rs`, which it includes), which kernel modules include directly
//! with `#[allow(unreachable_pub, dead_code)] #[path = "../zalloc/src/zalloc.rs"] mod zalloc;`
//! next to an allocator core (`rust/zbud`, `rust/z3fold`) that refers to it
//! as `crate::zalloc`. The host crates of the cores re-export this crate
//! under that name. The design is documented in the [`zalloc`] module.
//!
//! With the `test-util` feature, `testing` has the test support the
//! allocators' tests share (it uses `std`).

#![no_std]

#[cfg(feature = "test-util")]
extern crate std;

#[path = "zalloc.rs"]
pub mod zalloc;

pub use zalloc::*;

#[cfg(feature = "test-util")]
pub mod testing;
