// SPDX-License-Identifier: GPL-2.0

//! The tests both pools pass, generic over [`TestPool`]: page accounting on
//! failures, slot and handle reuse, table growth and teardown. Each
//! allocator's unit tests run them on its pool, with a fresh [`TestPages`].

use std::vec;
use std::vec::Vec;

use super::{
    addr, check, fill, holds, page_of, pattern, ptr, Counts, Gfp, TestPages, TestPool, GFP,
};
use crate::{AllocError, Leak, Rejections, CHUNK_SIZE, PAGE_SIZE};

/// The pool's invariants hold.
fn checked<'a, P: TestPool<'a>>(pool: &P) {
    if let Err(what) = pool.check() {
        panic!("pool invariant broken: {what}");
    }
}

/// A page whose object takes `used` of its `chunks` chunks takes another
/// object of up to the rest, right-justified; one chunk more needs a new
/// page (if the pool takes such objects).
pub fn a_page_takes_up_to_its_free_chunks<'a, P: TestPool<'a>>(
    src: &'a TestPages,
    used: usize,
    chunks: usize,
) {
    let free = chunks - used;
    let mut pool = P::new(src);
    let a = pool.alloc(used * CHUNK_SIZE, GFP).unwrap();
    let page = page_of(addr(&mut pool, a));
    if (free + 1) * CHUNK_SIZE <= P::MAX_SIZE {
        let b = pool.alloc((free + 1) * CHUNK_SIZE, GFP).unwrap();
        assert_ne!(page_of(addr(&mut pool, b)), page);
        pool.free(b).unwrap();
    }
    let c = pool.alloc(free * CHUNK_SIZE, GFP).unwrap();
    assert_eq!(page_of(addr(&mut pool, c)), page, "{used} chunks used");
    assert_eq!(addr(&mut pool, c) + free * CHUNK_SIZE, page + PAGE_SIZE);
    assert_eq!(pool.counts().pages, 1);
    checked(&pool);
}

/// Of pages with 40, 45 and 50 chunks used, 15 chunks go to the second and
/// 20 chunks to the first: the fullest page that fits. Returns the pool
/// and the pages, for more.
pub fn fullest_page_that_fits<'a, P: TestPool<'a>>(src: &'a TestPages) -> (P, Vec<usize>) {
    let mut pool = P::new(src);
    let mut pages = Vec::new();
    for used in [40, 45, 50] {
        let h = pool.alloc(used * CHUNK_SIZE, GFP).unwrap();
        pages.push(page_of(addr(&mut pool, h)));
    }
    for (chunks, page) in [(15, pages[1]), (20, pages[0])] {
        let h = pool.alloc(chunks * CHUNK_SIZE, GFP).unwrap();
        assert_eq!(page_of(addr(&mut pool, h)), page);
    }
    (pool, pages)
}

/// Of pages equally full, the most recently listed is chosen first.
pub fn most_recently_listed_page_first<'a, P: TestPool<'a>>(src: &'a TestPages) {
    let mut pool = P::new(src);
    let pages: Vec<_> = (0..3)
        .map(|_| {
            let h = pool.alloc(40 * CHUNK_SIZE, GFP).unwrap();
            page_of(addr(&mut pool, h))
        })
        .collect();
    for &page in pages.iter().rev() {
        let h = pool.alloc(20 * CHUNK_SIZE, GFP).unwrap();
        assert_eq!(page_of(addr(&mut pool, h)), page);
    }
    checked(&pool);
}

/// The first allocation needs an object page and the three table nodes of
/// slot 0, all with the allocation's flags.
pub fn flags_reach_every_page<'a, P: TestPool<'a>>(src: &'a TestPages) {
    let mut pool = P::new(src);
    pool.alloc(10, Gfp(7)).unwrap();
    assert_eq!(*src.flags.borrow(), vec![Gfp(7); 4]);
}

/// The first allocation fails at each of its four pages in turn, leaving
/// the pool unchanged, then succeeds.
pub fn no_memory_at_any_page<'a, P: TestPool<'a>>(src: &'a TestPages) {
    let mut pool = P::new(src);
    for n in 0..4 {
        src.fail_after.set(Some(n));
        assert_eq!(pool.alloc(10, GFP), Err(AllocError::NoMemory));
        assert_eq!(src.live(), 0);
        let counts = pool.counts();
        assert_eq!((counts.pages, counts.table_pages), (0, 0));
        checked(&pool);
    }
    src.fail_after.set(None);
    let h = pool.alloc(10, GFP).unwrap();
    assert_eq!(pool.counts().rejected.no_memory, 4);
    pool.free(h).unwrap();
    checked(&pool);
}

/// A reused place in a page, or a reused slot, gets a new handle, and the
/// old handles are stale.
pub fn reuse_gives_new_handles<'a, P: TestPool<'a>>(src: &'a TestPages) {
    let mut pool = P::new(src);
    let a = pool.alloc(100, GFP).unwrap();
    let b = pool.alloc(100, GFP).unwrap();
    let (a_addr, page) = (addr(&mut pool, a), page_of(addr(&mut pool, b)));
    pool.free(a).unwrap();
    // Same page, same place.
    let c = pool.alloc(100, GFP).unwrap();
    assert_eq!(addr(&mut pool, c), a_addr);
    assert_eq!(page_of(a_addr), page);
    assert_ne!(a, c);
    assert_eq!(pool.map(a), Err(P::STALE));
    pool.free(b).unwrap();
    pool.free(c).unwrap();
    // Same slot, another page.
    let d = pool.alloc(100, GFP).unwrap();
    for old in [a, b, c] {
        assert_ne!(old, d);
        assert_eq!(pool.free(old), Err(P::STALE));
    }
    pool.free(d).unwrap();
    checked(&pool);
}

/// Handles of another pool, 0 and those of freed objects are rejected,
/// and counted; the pool is unchanged.
pub fn foreign_and_freed_handles<'a, P: TestPool<'a>>(src: &'a TestPages) {
    let mut pool = P::new(src);
    let mut other = P::new(src);
    let keep = pool.alloc(3000, GFP).unwrap();
    fill(&mut pool, keep, 3000, 42);
    let freed = pool.alloc(100, GFP).unwrap();
    pool.free(freed).unwrap();
    let foreign = other.alloc(100, GFP).unwrap();
    assert_ne!(P::to_raw(keep), 0);
    let before = pool.counts();
    assert_eq!(pool.free(foreign), Err(P::FOREIGN));
    assert_eq!(pool.map(foreign), Err(P::FOREIGN));
    assert_eq!(pool.unmap(foreign), Err(P::FOREIGN));
    assert_eq!(pool.free(P::from_raw(0)), Err(P::FOREIGN));
    assert_eq!(pool.free(freed), Err(P::STALE));
    assert_eq!(pool.map(freed), Err(P::STALE));
    assert_eq!(pool.unmap(freed), Err(P::STALE));
    assert_eq!(
        pool.counts(),
        Counts {
            bad_handles: before.bad_handles + 7,
            ..before
        }
    );
    check(&mut pool, keep, 3000, 42);
    assert!(other.map(foreign).is_ok());
    checked(&pool);
}

/// The table grows a leaf every `per_leaf` pages (objects of `size` bytes
/// take a page each): failing the leaf, or the object page, leaves the
/// pool unchanged. Freed slots are reused; a leaf whose pages are all freed
/// goes.
pub fn table_grows_a_leaf_at_a_time<'a, P: TestPool<'a>>(
    src: &'a TestPages,
    per_leaf: u64,
    size: usize,
) {
    let mut pool = P::new(src);
    let mut handles = Vec::new();
    for id in 0..per_leaf {
        let h = pool.alloc(size, GFP).unwrap();
        if id % 32 == 0 {
            fill(&mut pool, h, size, id);
        }
        handles.push(h);
    }
    assert_eq!(pool.counts().table_pages, 3);
    // Slot `per_leaf` needs a new leaf: fail it, then the object page.
    for n in [1, 0] {
        let before = pool.counts();
        src.fail_after.set(Some(n));
        assert_eq!(pool.alloc(size, GFP), Err(AllocError::NoMemory));
        assert_eq!(src.live(), per_leaf + 3);
        let rejected = Rejections {
            no_memory: before.rejected.no_memory + 1,
            ..before.rejected
        };
        assert_eq!(pool.counts(), Counts { rejected, ..before });
        checked(&pool);
    }
    let h = pool.alloc(size, GFP).unwrap();
    assert_eq!(pool.counts().table_pages, 4);
    fill(&mut pool, h, size, per_leaf);
    handles.push(h);
    for (id, h) in (0..).zip(&handles).step_by(32) {
        check(&mut pool, *h, size, id);
    }
    // Freed slots are reused: no further growth.
    for h in handles.drain(..20) {
        pool.free(h).unwrap();
    }
    for _ in 0..20 {
        handles.push(pool.alloc(size, GFP).unwrap());
    }
    assert_eq!(pool.counts().table_pages, 4);
    // The first leaf's 20 reused slots, then the second leaf's slot.
    handles.retain(|&other| other != h);
    for h in handles.drain(handles.len() - 20..) {
        pool.free(h).unwrap();
    }
    assert_eq!(pool.counts().table_pages, 4);
    pool.free(h).unwrap();
    assert_eq!(pool.counts().table_pages, 3);
    checked(&pool);
    for h in handles {
        pool.free(h).unwrap();
    }
    checked(&pool);
    assert_eq!(pool.counts().table_pages, 0);
    assert_eq!(pool.destroy(), Ok(()));
    assert_eq!(src.live(), 0);
}

/// A pool whose objects (of `sizes`) were all freed, last first, has
/// returned every page, its table's too; destroying it frees nothing
/// more.
pub fn destroying_an_empty_pool_frees_everything<'a, P: TestPool<'a>>(
    src: &'a TestPages,
    sizes: impl IntoIterator<Item = usize>,
) {
    let mut pool = P::new(src);
    let handles: Vec<_> = sizes
        .into_iter()
        .map(|size| pool.alloc(size, GFP).unwrap())
        .collect();
    for h in handles.into_iter().rev() {
        pool.free(h).unwrap();
    }
    assert!(pool.is_empty());
    checked(&pool);
    assert_eq!(src.live(), 0);
    assert_eq!(pool.destroy(), Ok(()));
    assert_eq!(src.live(), 0);
    assert_eq!(src.allocs.get(), src.frees.get());
}

/// Dropping an empty pool, used or not, frees every page.
pub fn dropping_an_empty_pool_frees_everything<'a, P: TestPool<'a>>(src: &'a TestPages) {
    let mut pool = P::new(src);
    let h = pool.alloc(1, GFP).unwrap();
    pool.free(h).unwrap();
    drop(pool);
    assert_eq!(src.live(), 0);
    drop(P::new(src));
    assert_eq!(src.allocs.get(), src.frees.get());
}

/// Destroying a pool with live objects reports them and frees none of
/// their pages, which keep the objects intact; it frees the rest.
pub fn destroying_a_live_pool_leaks_its_pages<'a, P: TestPool<'a>>(src: &'a TestPages) {
    let mut pool = P::new(src);
    let live: Vec<_> = (0..5u64)
        .map(|id| {
            let h = pool.alloc(1000, GFP).unwrap();
            fill(&mut pool, h, 1000, id);
            (id, ptr(&mut pool, h))
        })
        .collect();
    let pages = pool.counts().pages;
    assert_eq!(pool.destroy(), Err(Leak { pages, objects: 5 }));
    assert_eq!(src.live(), pages);
    for (id, ptr) in live {
        assert!(src.is_live(page_of(ptr as usize)));
        // SAFETY: The object's page was leaked, not freed.
        assert!(unsafe { holds(ptr, &pattern(id, 1000)) });
    }
}

/// Resetting a pool with a live object reports it and leaves its page
/// alone; the pool is usable again, under a new tag.
pub fn reset_leaks_live_pages_and_renews_the_pool<'a, P: TestPool<'a>>(src: &'a TestPages) {
    let mut pool = P::new(src);
    let old = pool.alloc(1000, GFP).unwrap();
    fill(&mut pool, old, 1000, 1);
    let old_ptr = ptr(&mut pool, old);
    let leak = Leak {
        pages: 1,
        objects: 1,
    };
    assert_eq!(pool.reset(), Err(leak));
    assert_eq!(src.live(), 1);
    assert!(pool.is_empty());
    let counts = pool.counts();
    assert_eq!((counts.pages, counts.table_pages), (0, 0));
    checked(&pool);
    // Handles from before the reset belong to another pool now.
    assert_eq!(pool.map(old), Err(P::FOREIGN));
    let new = pool.alloc(1000, GFP).unwrap();
    assert_ne!(page_of(addr(&mut pool, new)), page_of(old_ptr as usize));
    // SAFETY: The old object's page was leaked, not freed.
    assert!(unsafe { holds(old_ptr, &pattern(1, 1000)) });
    pool.free(new).unwrap();
    assert_eq!(pool.reset(), Ok(()));
    assert_eq!(src.live(), 1);
    assert_eq!(pool.counts().bad_handles, 1);
}
