// SPDX-License-Identifier: GPL-2.0

//! [`NodeAlloc`](super::btree::NodeAlloc) for kernel modules: B+tree nodes
//! from `kmalloc`.
//!
//! A module includes this file next to the tree with
//! `#[path = "../kglue/node_alloc.rs"] mod node_alloc;` (the tree must be its
//! `btree` module). With `NODE_BYTES` a power of two, `kmalloc` serves each
//! node from the matching `kmalloc-NODE_BYTES` cache, naturally aligned.

use super::btree::NodeAlloc;
use core::alloc::Layout;
use core::ptr::NonNull;
use kernel::alloc::{allocator::Kmalloc, Allocator, Flags};

/// Tree nodes from `kmalloc` with fixed GFP flags.
///
/// `GFP_KERNEL` for trees changed in process context; `GFP_ATOMIC` (or
/// `GFP_NOWAIT`) for trees changed under a spinlock, or a
/// [`Reservation`](super::btree::Reservation) filled with `GFP_KERNEL`
/// before taking the lock.
#[derive(Clone, Copy)]
pub(crate) struct KmallocNodes(pub(crate) Flags);

// SAFETY: `Kmalloc::alloc` returns memory valid for `layout` (size and
// alignment) until it is freed, and `Kmalloc::free` accepts any pointer
// `Kmalloc` returned whatever the flags it was allocated with, so memory from
// one `KmallocNodes` may be freed by any other.
unsafe impl NodeAlloc for KmallocNodes {
    fn alloc(&self, layout: Layout) -> Option<NonNull<u8>> {
        Kmalloc::alloc(layout, self.0).ok().map(|p| p.cast())
    }

    unsafe fn free(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: by the contract of `NodeAlloc::free`, `ptr` came from
        // `alloc` above (that is, from `Kmalloc`) with `layout`, and is not
        // used after this call.
        unsafe { Kmalloc::free(ptr, layout) };
    }
}
