// SPDX-License-Identifier: GPL-2.0

//! Test support shared by the allocators' tests (feature `test-util`): a
//! counting page source with failure injection, a stand-in for `gfp_t`,
//! object contents patterns, [`TestPool`] (both pools, as the shared code
//! drives them, through [`test_pool!`](crate::test_pool)), the tests both
//! pools pass ([`scenarios`]) and the pieces of their model tests
//! ([`model`]).

use core::fmt::Debug;
use core::hash::Hash;
use std::alloc::{alloc, dealloc, Layout};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ptr::NonNull;
use std::vec::Vec;

use crate::{AllocError, Leak, PageSource, Rejections, PAGE_SIZE};

pub mod model;
pub mod scenarios;

/// Stand-in for `gfp_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gfp(pub u32);

/// The flags the tests pass.
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
    /// The live pages by address (the pointers keep their provenance, for
    /// Miri).
    live: RefCell<HashMap<usize, NonNull<u8>>>,
    /// Pages allocated so far.
    pub allocs: Cell<u64>,
    /// Pages freed so far.
    pub frees: Cell<u64>,
    /// Of those, pages freed through `free_page_deferred` (at once here:
    /// the tests that use this source have no lockless readers).
    pub deferred_frees: Cell<u64>,
    /// Fail every allocation.
    pub fail_all: Cell<bool>,
    /// Fail the allocation after this many more succeed.
    pub fail_after: Cell<Option<u64>>,
    /// Flags of every allocation, in order.
    pub flags: RefCell<Vec<Gfp>>,
}

impl TestPages {
    /// A source without pages.
    pub fn new() -> Self {
        Self::default()
    }

    /// Pages allocated and not freed.
    pub fn live(&self) -> u64 {
        self.live.borrow().len() as u64
    }

    /// Whether the page at `page` is allocated and not freed.
    pub fn is_live(&self, page: usize) -> bool {
        self.live.borrow().contains_key(&page)
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
        let old = self.live.borrow_mut().insert(page.as_ptr() as usize, page);
        assert!(old.is_none(), "page {page:p} handed out twice");
        self.allocs.set(self.allocs.get() + 1);
        Some(page)
    }

    unsafe fn free_page(&self, page: NonNull<u8>) {
        assert!(
            self.live
                .borrow_mut()
                .remove(&(page.as_ptr() as usize))
                .is_some(),
            "free of a page that is not live: {page:p}"
        );
        self.frees.set(self.frees.get() + 1);
        // SAFETY: The page came from `alloc` with `LAYOUT` and was live.
        unsafe { dealloc(page.as_ptr(), LAYOUT) }
    }

    unsafe fn free_page_deferred(&self, page: NonNull<u8>) {
        self.deferred_frees.set(self.deferred_frees.get() + 1);
        // SAFETY: The caller's.
        unsafe { self.free_page(page) }
    }
}

impl Drop for TestPages {
    fn drop(&mut self) {
        for page in self.live.borrow().values() {
            // SAFETY: A live page from `alloc` with `LAYOUT`; leaked pools
            // no longer use it.
            unsafe { dealloc(page.as_ptr(), LAYOUT) }
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

/// The page of an address.
pub fn page_of(addr: usize) -> usize {
    addr & !(PAGE_SIZE - 1)
}

/// A pool's counters that both pools have.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Pages holding objects.
    pub pages: u64,
    /// Pages of the slot table.
    pub table_pages: u64,
    /// Live objects.
    pub objects: u64,
    /// Rejected allocations.
    pub rejected: Rejections,
    /// Rejected handles.
    pub bad_handles: u64,
}

/// A pool on [`TestPages`] as the shared tests drive it: zbud's and
/// z3fold's `Pool`, wrapped by [`test_pool!`](crate::test_pool).
pub trait TestPool<'a>: Sized {
    /// The pool's handle.
    type Handle: Copy + Eq + Hash + Debug;
    /// Why the pool rejects a handle.
    type HandleError: Copy + Eq + Debug;
    /// The largest object.
    const MAX_SIZE: usize;
    /// The error for a handle of another pool.
    const FOREIGN: Self::HandleError;
    /// The error for a handle of a freed object.
    const STALE: Self::HandleError;

    /// An empty pool on `pages`.
    fn new(pages: &'a TestPages) -> Self;
    /// `Pool::alloc`.
    fn alloc(&mut self, size: usize, flags: Gfp) -> Result<Self::Handle, AllocError>;
    /// `Pool::free`.
    fn free(&mut self, handle: Self::Handle) -> Result<(), Self::HandleError>;
    /// `Pool::map`.
    fn map(&mut self, handle: Self::Handle) -> Result<NonNull<u8>, Self::HandleError>;
    /// `Pool::unmap`.
    fn unmap(&mut self, handle: Self::Handle) -> Result<(), Self::HandleError>;
    /// `Pool::reset`.
    fn reset(&mut self) -> Result<(), Leak>;
    /// `Pool::destroy`.
    fn destroy(self) -> Result<(), Leak>;
    /// `Pool::is_empty`.
    fn is_empty(&self) -> bool;
    /// The counters of `Pool::stats` that both pools have.
    fn counts(&self) -> Counts;
    /// The pool's invariant checker (`Pool::check`), if it has one.
    fn check(&self) -> Result<(), &'static str>;
    /// `Handle::to_raw`.
    fn to_raw(handle: Self::Handle) -> u64;
    /// `Handle::from_raw`.
    fn from_raw(raw: u64) -> Self::Handle;
}

/// Defines `$name<'a>`, a [`TestPool`] wrapping `$core::Pool<&'a
/// TestPages>` (`$core`: `rkm_zbud` or `rkm_z3fold`), which it derefs to.
/// With `check`, [`TestPool::check`] is the pool's `check`.
#[macro_export]
macro_rules! test_pool {
    ($name:ident, $core:ident) => {
        $crate::test_pool!(@impl $name, $core, |_pool| Ok(()));
    };
    ($name:ident, $core:ident, check) => {
        $crate::test_pool!(@impl $name, $core, |pool| pool.check());
    };
    (@impl $name:ident, $core:ident, |$pool:ident| $check:expr) => {
        /// The pool on test pages, for the shared tests (it derefs to it).
        pub struct $name<'a>(pub $core::Pool<&'a $crate::testing::TestPages>);

        impl<'a> ::core::ops::Deref for $name<'a> {
            type Target = $core::Pool<&'a $crate::testing::TestPages>;

            fn deref(&self) -> &Self::Target {
                &self.0
            }
        }

        impl<'a> ::core::ops::DerefMut for $name<'a> {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.0
            }
        }

        impl<'a> $crate::testing::TestPool<'a> for $name<'a> {
            type Handle = $core::Handle;
            type HandleError = $core::HandleError;
            const MAX_SIZE: usize = $core::MAX_ALLOC_SIZE;
            const FOREIGN: $core::HandleError = $core::HandleError::Foreign;
            const STALE: $core::HandleError = $core::HandleError::Stale;

            fn new(pages: &'a $crate::testing::TestPages) -> Self {
                Self($core::Pool::new(pages))
            }

            fn alloc(
                &mut self,
                size: usize,
                flags: $crate::testing::Gfp,
            ) -> Result<$core::Handle, $crate::AllocError> {
                self.0.alloc(size, flags)
            }

            fn free(&mut self, handle: $core::Handle) -> Result<(), $core::HandleError> {
                self.0.free(handle)
            }

            fn map(
                &mut self,
                handle: $core::Handle,
            ) -> Result<::core::ptr::NonNull<u8>, $core::HandleError> {
                self.0.map(handle)
            }

            fn unmap(&mut self, handle: $core::Handle) -> Result<(), $core::HandleError> {
                self.0.unmap(handle)
            }

            fn reset(&mut self) -> Result<(), $crate::Leak> {
                self.0.reset()
            }

            fn destroy(self) -> Result<(), $crate::Leak> {
                self.0.destroy()
            }

            fn is_empty(&self) -> bool {
                self.0.is_empty()
            }

            fn counts(&self) -> $crate::testing::Counts {
                let stats = self.0.stats();
                $crate::testing::Counts {
                    pages: stats.pages,
                    table_pages: stats.table_pages,
                    objects: stats.objects,
                    rejected: $crate::Rejections {
                        invalid: stats.rejected_invalid,
                        too_big: stats.rejected_too_big,
                        no_memory: stats.rejected_no_memory,
                    },
                    bad_handles: stats.bad_handles,
                }
            }

            fn check(&self) -> Result<(), &'static str> {
                let $pool = &self.0;
                $check
            }

            fn to_raw(handle: $core::Handle) -> u64 {
                handle.to_raw()
            }

            fn from_raw(raw: u64) -> $core::Handle {
                $core::Handle::from_raw(raw)
            }
        }
    };
}

/// Defines a `#[test]` for each of the [`scenarios`] named, run on a pool
/// `$pool` (a [`TestPool`]) on fresh [`TestPages`], with the arguments
/// given after them.
#[macro_export]
macro_rules! shared_tests {
    ($pool:ty; $($test:ident $(($($arg:expr),*))?),* $(,)?) => {$(
        #[test]
        fn $test() {
            let src = $crate::testing::TestPages::new();
            $crate::testing::scenarios::$test::<$pool>(&src $($(, $arg)*)?);
        }
    )*};
}

/// Runs `f` on the `len` first bytes of the object of `handle`, mapped.
pub fn with_bytes<'a, P: TestPool<'a>, R>(
    pool: &mut P,
    handle: P::Handle,
    len: usize,
    f: impl FnOnce(&mut [u8]) -> R,
) -> R {
    let ptr = pool.map(handle).expect("map of a live handle");
    // SAFETY: A mapped live object of at least `len` bytes, used by nothing
    // else until the unmap.
    let r = f(unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), len) });
    pool.unmap(handle).expect("unmap of a mapped handle");
    r
}

/// Writes `data` into the object of `handle` (at least `data.len()` bytes).
pub fn write<'a, P: TestPool<'a>>(pool: &mut P, handle: P::Handle, data: &[u8]) {
    with_bytes(pool, handle, data.len(), |bytes| {
        bytes.copy_from_slice(data)
    });
}

/// Checks that the object of `handle` starts with `data`.
pub fn verify<'a, P: TestPool<'a>>(pool: &mut P, handle: P::Handle, data: &[u8]) {
    let ok = with_bytes(pool, handle, data.len(), |bytes| *bytes == *data);
    assert!(ok, "object {handle:?} corrupted");
}

/// Fills the object of `handle` (`size` bytes) with `id`'s pattern.
pub fn fill<'a, P: TestPool<'a>>(pool: &mut P, handle: P::Handle, size: usize, id: u64) {
    write(pool, handle, &pattern(id, size));
}

/// Checks that the object of `handle` holds `id`'s pattern.
pub fn check<'a, P: TestPool<'a>>(pool: &mut P, handle: P::Handle, size: usize, id: u64) {
    verify(pool, handle, &pattern(id, size));
}

/// Pointer to the object of `handle` (mapped, then unmapped).
pub fn ptr<'a, P: TestPool<'a>>(pool: &mut P, handle: P::Handle) -> *mut u8 {
    let ptr = pool.map(handle).expect("map of a live handle");
    pool.unmap(handle).expect("unmap of a mapped handle");
    ptr.as_ptr()
}

/// Address of the object of `handle`.
pub fn addr<'a, P: TestPool<'a>>(pool: &mut P, handle: P::Handle) -> usize {
    ptr(pool, handle) as usize
}

/// Whether the `data.len()` bytes at `ptr` are `data`.
///
/// # Safety
///
/// The bytes are readable (in a page the test source has not freed) and
/// nobody writes them meanwhile.
pub unsafe fn holds(ptr: *const u8, data: &[u8]) -> bool {
    // SAFETY: The caller's guarantee.
    unsafe { std::slice::from_raw_parts(ptr, data.len()) == data }
}

/// Pages from the global allocator for a pool shared between threads (the
/// lockless-map tests): pages freed deferred (table nodes that readers
/// without the lock may still walk) are kept until the source is dropped,
/// after the readers.
#[derive(Default)]
pub struct SharedPages {
    deferred: std::sync::Mutex<Vec<usize>>,
}

// SAFETY: pages of `PAGE_SIZE` bytes, aligned, from the global allocator,
// ours until freed.
unsafe impl PageSource for SharedPages {
    type Flags = ();

    fn alloc_page(&self, _flags: ()) -> Option<NonNull<u8>> {
        // SAFETY: the layout's size is not zero.
        NonNull::new(unsafe { alloc(LAYOUT) })
    }

    unsafe fn free_page(&self, page: NonNull<u8>) {
        // SAFETY: the caller's: `page` came from `alloc_page`.
        unsafe { dealloc(page.as_ptr(), LAYOUT) }
    }

    unsafe fn free_page_deferred(&self, page: NonNull<u8>) {
        // Exposed, so that the drop can free it (a number, not a pointer).
        if let Ok(mut deferred) = self.deferred.lock() {
            deferred.push(page.as_ptr() as usize);
        }
    }
}

impl Drop for SharedPages {
    fn drop(&mut self) {
        let deferred = self.deferred.get_mut().map(|d| d.as_slice()).unwrap_or(&[]);
        for &page in deferred {
            // SAFETY: a page from `alloc_page` that the pool gave back and
            // nobody reads any more (the readers are done).
            unsafe { dealloc(page as *mut u8, LAYOUT) }
        }
    }
}
