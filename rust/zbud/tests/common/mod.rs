// SPDX-License-Identifier: GPL-2.0

//! Test support: a counting page source with failure injection, and object
//! contents patterns.

#![allow(dead_code)]

use std::alloc::{alloc, dealloc, Layout};
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::ptr::NonNull;

use rkm_zbud::{Handle, PageSource, Pool, PAGE_SIZE};

/// Stand-in for `gfp_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gfp(pub u32);

pub const GFP: Gfp = Gfp(0x2c0);

const LAYOUT: Layout = match Layout::from_size_align(PAGE_SIZE, PAGE_SIZE) {
    Ok(layout) => layout,
    Err(_) => panic!("bad page layout"),
};

/// Pages from the global allocator, filled with garbage, counted, with
/// failures on demand. Panics (failing the test) on a double or foreign
/// free; frees its remaining pages when dropped.
#[derive(Default)]
pub struct TestPages {
    live: RefCell<HashSet<usize>>,
    pub allocs: Cell<u64>,
    pub frees: Cell<u64>,
    /// Fail every allocation.
    pub fail_all: Cell<bool>,
    /// Fail the allocation after this many more succeed.
    pub fail_after: Cell<Option<u64>>,
    /// Flags of every allocation, in order.
    pub flags: RefCell<Vec<Gfp>>,
}

impl TestPages {
    pub fn new() -> Self {
        Self::default()
    }

    /// Pages allocated and not freed.
    pub fn live(&self) -> u64 {
        self.live.borrow().len() as u64
    }

    pub fn is_live(&self, page: usize) -> bool {
        self.live.borrow().contains(&page)
    }

    fn should_fail(&self) -> bool {
        if self.fail_all.get() {
            return true;
        }
        match self.fail_after.get() {
            Some(0) => {
                self.fail_after.set(None);
                true
            }
            Some(n) => {
                self.fail_after.set(Some(n - 1));
                false
            }
            None => false,
        }
    }
}

// SAFETY: Pages are fresh `PAGE_SIZE`-aligned allocations of `PAGE_SIZE`
// bytes from the global allocator, owned by the caller until `free_page`.
unsafe impl PageSource for TestPages {
    type Flags = Gfp;

    fn alloc_page(&self, flags: Gfp) -> Option<NonNull<u8>> {
        self.flags.borrow_mut().push(flags);
        if self.should_fail() {
            return None;
        }
        // SAFETY: The layout is not zero-sized.
        let page = NonNull::new(unsafe { alloc(LAYOUT) })?;
        // SAFETY: The page is PAGE_SIZE writable bytes. Garbage, so that the
        // pool cannot rely on zeroed pages.
        unsafe { page.as_ptr().write_bytes(0xa5, PAGE_SIZE) };
        assert!(self.live.borrow_mut().insert(page.as_ptr() as usize));
        self.allocs.set(self.allocs.get() + 1);
        Some(page)
    }

    unsafe fn free_page(&self, page: NonNull<u8>) {
        assert!(
            self.live.borrow_mut().remove(&(page.as_ptr() as usize)),
            "free of a page that is not live: {page:p}"
        );
        self.frees.set(self.frees.get() + 1);
        // SAFETY: The page came from `alloc` with `LAYOUT` and was live.
        unsafe { dealloc(page.as_ptr(), LAYOUT) }
    }
}

impl Drop for TestPages {
    fn drop(&mut self) {
        for &page in self.live.borrow().iter() {
            // SAFETY: A live page from `alloc` with `LAYOUT`; leaked pools
            // no longer use it.
            unsafe { dealloc(page as *mut u8, LAYOUT) }
        }
    }
}

/// The contents of the object with id `id`: `size` bytes that differ
/// from those of other ids.
pub fn pattern(id: u64, size: usize) -> Vec<u8> {
    let mut x = id.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..size)
        .map(|_| {
            // xorshift64
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Writes `data` into the object of `handle` (at least `data.len()` bytes).
pub fn write<P: PageSource>(pool: &Pool<P>, handle: Handle, data: &[u8]) {
    let ptr = pool.map(handle).expect("map of a live handle");
    // SAFETY: A live object of at least `data.len()` bytes.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), ptr.as_ptr(), data.len()) };
}

/// Checks that the object of `handle` starts with `data`.
pub fn verify<P: PageSource>(pool: &Pool<P>, handle: Handle, data: &[u8]) {
    let ptr = pool.map(handle).expect("map of a live handle");
    // SAFETY: A live object of at least `data.len()` bytes.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.as_ptr(), data.len()) };
    assert!(bytes == data, "object at {ptr:p} corrupted");
}

/// Fills the object of `handle` (`size` bytes) with `id`'s pattern.
pub fn fill<P: PageSource>(pool: &Pool<P>, handle: Handle, size: usize, id: u64) {
    write(pool, handle, &pattern(id, size));
}

/// Checks that the object of `handle` holds `id`'s pattern.
pub fn check<P: PageSource>(pool: &Pool<P>, handle: Handle, size: usize, id: u64) {
    verify(pool, handle, &pattern(id, size));
}

/// Address of the object of `handle`.
pub fn addr<P: PageSource>(pool: &Pool<P>, handle: Handle) -> usize {
    pool.map(handle).expect("map of a live handle").as_ptr() as usize
}

/// The page of an address.
pub fn page_of(addr: usize) -> usize {
    addr & !(PAGE_SIZE - 1)
}
