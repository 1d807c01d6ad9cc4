// SPDX-License-Identifier: GPL-2.0

//! Test support: `rkm-zalloc`'s (the page source, patterns, helpers, the
//! shared tests) and [`Zspan`], the pool as the shared code drives it: a
//! mapping of an object that crosses a page boundary is a bounce buffer,
//! copied in at `map` and back at `unmap`, as the kernel glue does with its
//! per-CPU buffer.

// Each test uses part of it.
#![allow(dead_code, unused_imports)]

use std::collections::HashMap;
use std::ptr::NonNull;

pub use rkm_zalloc::testing::{
    addr, check, fill, holds, page_of, pattern, ptr, verify, write, Counts, Gfp, TestPages,
    TestPool, GFP,
};
use rkm_zalloc::{AllocError, Leak, Rejections, PAGE_SIZE};
use rkm_zspan::{Handle, HandleError, Pool};

/// A zspan pool on test pages, with bounce buffers for split objects.
pub struct Zspan<'a> {
    /// The pool.
    pub pool: Pool<&'a TestPages>,
    /// The bounce buffers of the mapped split objects, by handle.
    pub bounce: HashMap<u64, Box<[u8; PAGE_SIZE]>>,
    /// Split mappings so far.
    pub splits: u64,
}

impl<'a> std::ops::Deref for Zspan<'a> {
    type Target = Pool<&'a TestPages>;

    fn deref(&self) -> &Self::Target {
        &self.pool
    }
}

impl<'a> std::ops::DerefMut for Zspan<'a> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.pool
    }
}

impl<'a> Zspan<'a> {
    /// Shard `shard` of a pool split into shards, on `pages`.
    pub fn shard(pages: &'a TestPages, shard: usize) -> Self {
        Zspan {
            pool: Pool::new_shard(pages, shard),
            bounce: HashMap::new(),
            splits: 0,
        }
    }

    /// [`Pool::release`] as the kernel glue calls it: a split object's
    /// bounce buffer is copied back first (through the mapping `unmap`
    /// returns, as the glue does through the pieces it mapped).
    pub fn release(&mut self, handle: Handle) -> Result<(), HandleError> {
        if self.bounce.contains_key(&handle.to_raw()) {
            return TestPool::unmap(self, handle);
        }
        self.pool.release(handle)
    }
}

impl<'a> TestPool<'a> for Zspan<'a> {
    type Handle = Handle;
    type HandleError = HandleError;
    const MAX_SIZE: usize = rkm_zspan::MAX_SIZE;
    const FOREIGN: HandleError = HandleError::Foreign;
    const STALE: HandleError = HandleError::Stale;

    fn new(pages: &'a TestPages) -> Self {
        Zspan {
            pool: Pool::new(pages),
            bounce: HashMap::new(),
            splits: 0,
        }
    }

    fn alloc(&mut self, size: usize, flags: Gfp) -> Result<Handle, AllocError> {
        self.pool.alloc(size, flags)
    }

    fn free(&mut self, handle: Handle) -> Result<(), HandleError> {
        self.pool.free(handle)
    }

    fn map(&mut self, handle: Handle) -> Result<NonNull<u8>, HandleError> {
        let mapping = self.pool.map(handle)?;
        if mapping.is_direct() {
            return Ok(mapping.first());
        }
        self.splits += 1;
        let buf = self
            .bounce
            .entry(handle.to_raw())
            .or_insert_with(|| Box::new([0; PAGE_SIZE]));
        // SAFETY: The buffer has a page's room, the object (mapped) at most
        // a page, and they do not overlap.
        unsafe { mapping.copy_to(buf.as_mut_ptr()) };
        Ok(NonNull::new(buf.as_mut_ptr()).unwrap())
    }

    fn unmap(&mut self, handle: Handle) -> Result<(), HandleError> {
        let mapping = self.pool.unmap(handle)?;
        if let Some(buf) = self.bounce.remove(&handle.to_raw()) {
            // SAFETY: As in `map`; the pool is unchanged since the unmap.
            unsafe { mapping.copy_from(buf.as_ptr()) };
        }
        Ok(())
    }

    fn reset(&mut self) -> Result<(), Leak> {
        self.bounce.clear();
        self.pool.reset()
    }

    fn destroy(self) -> Result<(), Leak> {
        self.pool.destroy()
    }

    fn is_empty(&self) -> bool {
        self.pool.is_empty()
    }

    fn counts(&self) -> Counts {
        let stats = self.pool.stats();
        Counts {
            pages: stats.pages,
            table_pages: stats.table_pages,
            objects: stats.objects,
            rejected: Rejections {
                invalid: stats.rejected_invalid,
                too_big: stats.rejected_too_big,
                no_memory: stats.rejected_no_memory,
            },
            bad_handles: stats.bad_handles,
        }
    }

    fn check(&self) -> Result<(), &'static str> {
        self.pool.check()
    }

    fn to_raw(handle: Handle) -> u64 {
        handle.to_raw()
    }

    fn from_raw(raw: u64) -> Handle {
        Handle::from_raw(raw)
    }
}
