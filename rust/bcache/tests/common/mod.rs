// SPDX-License-Identifier: GPL-2.0

//! What the bcache core's test files share: a node allocator on the host's
//! heap, a cache of a given geometry, and a fill carried out at once.

#![allow(dead_code)]

use core::alloc::Layout;
use core::ptr::NonNull;
use rkm_bcache::btree::NodeAlloc;
use rkm_bcache::*;

/// Tree nodes from the host's allocator.
#[derive(Clone, Copy)]
pub struct StdAlloc;

// SAFETY: memory from `std::alloc::alloc` is valid for `layout` until freed
// with the same layout, which `free` does.
unsafe impl NodeAlloc for StdAlloc {
    fn alloc(&self, layout: Layout) -> Option<NonNull<u8>> {
        // SAFETY: node layouts are never zero-sized.
        NonNull::new(unsafe { std::alloc::alloc(layout) })
    }

    unsafe fn free(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: by `NodeAlloc::free`'s contract `ptr` came from `alloc`
        // with `layout`.
        unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) }
    }
}

pub type TestCache = Cache<StdAlloc, Vec<BucketMeta>>;

/// A cache of `nbuckets` buckets of `bucket_sectors` sectors.
pub fn cache(nbuckets: usize, bucket_sectors: u32) -> TestCache {
    let buckets = Buckets::new(vec![BucketMeta::FREE; nbuckets], bucket_sectors).unwrap();
    Cache::new(StdAlloc, buckets)
}

/// No bucket is pinned.
pub fn none(_: u32) -> bool {
    false
}

/// Reads `len` uncached sectors and completes their fill at once.
pub fn fill(c: &mut TestCache, dev: DevId, sector: u64, len: u64) -> Region {
    match c.read(dev, sector, len, true, &none) {
        ReadPlan::Fill {
            region,
            ticket,
            len: l,
        } => {
            assert_eq!(l, len);
            assert_eq!(
                c.finish_fill(dev, sector, &region, ticket, true),
                FillOutcome::Inserted
            );
            region
        }
        other => panic!("expected a fill, got {other:?}"),
    }
}

/// Every extent: (device, first sector, length).
pub fn extents(c: &TestCache) -> Vec<(DevId, u64, u32)> {
    let mut v = Vec::new();
    c.index.for_each(|d, s, e| v.push((d, s, e.len)));
    v
}

/// Whether the data written to `r` is still current (its bucket was not
/// invalidated since).
pub fn region_current(c: &TestCache, r: &Region) -> bool {
    c.buckets.is_current(&Extent {
        bucket: r.bucket,
        offset: r.offset,
        len: r.len,
        gen: r.gen,
    })
}

/// Whether all `len` sectors at `sector` are served from the cache.
pub fn cached(c: &mut TestCache, dev: DevId, sector: u64, len: u64) -> bool {
    matches!(c.read(dev, sector, len, false, &none), ReadPlan::Hit { len: l, .. } if l == len)
}

/// A small deterministic PRNG (xorshift64*), so that the tests need no seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
