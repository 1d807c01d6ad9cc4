// SPDX-License-Identifier: GPL-2.0

//! Pages for the zpool allocators: direct-mapped pages from the page
//! allocator, got without sleeping (the pools take them under their
//! spinlock). Wraps `pages.c.inc`, which the module's C file includes.

use super::zalloc::PageSource;
use super::zpool::Gfp;
use core::ptr::NonNull;

extern "C" {
    fn rkm_get_page_nosleep(gfp: u32) -> kernel::ffi::c_ulong;
}

/// The page allocator, with the caller's GFP flags less direct reclaim,
/// highmem and movable (`pages.c.inc`).
#[derive(Clone, Copy)]
pub(crate) struct KernelPages;

// SAFETY: `__get_free_page` returns the direct-map address of an order-0
// page (PAGE_SIZE bytes, PAGE_SIZE-aligned, ours until `free_pages`), and
// highmem is masked off so that the address exists.
unsafe impl PageSource for KernelPages {
    type Flags = Gfp;

    fn alloc_page(&self, flags: Gfp) -> Option<NonNull<u8>> {
        // SAFETY: any GFP flags are accepted; the wrapper masks off those
        // that could sleep or give a page without a direct-map address.
        let addr = unsafe { rkm_get_page_nosleep(flags.0) };
        NonNull::new(addr as *mut u8)
    }

    unsafe fn free_page(&self, page: NonNull<u8>) {
        // SAFETY: by the caller's contract `page` came from `alloc_page`
        // (an order-0 page of `__get_free_page`) and is not used again.
        unsafe { kernel::bindings::free_pages(page.as_ptr() as kernel::ffi::c_ulong, 0) };
    }
}
