// SPDX-License-Identifier: GPL-2.0

//! Unit tests: chunk arithmetic, placement, list selection, page
//! accounting, table growth, handle checks and teardown.

mod common;

use common::{addr, check, fill, page_of, Gfp, TestPages, GFP};
use rkm_zbud::*;

/// The size of an object of `chunks` chunks.
fn chunks(chunks: usize) -> usize {
    chunks * CHUNK_SIZE
}

#[test]
fn constants_match_zbud() {
    assert_eq!(CHUNK_SIZE, 64);
    assert_eq!(ZHDR_SIZE_ALIGNED, 64);
    assert_eq!(NCHUNKS, 63);
    assert_eq!(MAX_ALLOC_SIZE, 3968);
    assert_eq!(MAX_PAGES, 1 << 27);
}

#[test]
fn size_to_chunks_rounds_up() {
    assert_eq!(size_to_chunks(0), 0);
    assert_eq!(size_to_chunks(1), 1);
    assert_eq!(size_to_chunks(63), 1);
    assert_eq!(size_to_chunks(64), 1);
    assert_eq!(size_to_chunks(65), 2);
    assert_eq!(size_to_chunks(MAX_ALLOC_SIZE), 62);
    assert_eq!(size_to_chunks(MAX_ALLOC_SIZE + 1), 63);
    assert_eq!(size_to_chunks(usize::MAX), usize::MAX / 64 + 1);
}

#[test]
fn size_edges() {
    let src = TestPages::new();
    let mut pool = Pool::new(&src);
    assert_eq!(pool.alloc(0, GFP), Err(AllocError::Invalid));
    assert_eq!(pool.alloc(MAX_ALLOC_SIZE + 1, GFP), Err(AllocError::TooBig));
    assert_eq!(pool.alloc(PAGE_SIZE, GFP), Err(AllocError::TooBig));
    assert_eq!(pool.alloc(usize::MAX, GFP), Err(AllocError::TooBig));
    assert_eq!(src.allocs.get(), 0);
    let big = pool.alloc(MAX_ALLOC_SIZE, GFP).unwrap();
    fill(&pool, big, MAX_ALLOC_SIZE, 1);
    src.fail_all.set(true);
    // The page has one chunk free.
    assert_eq!(pool.alloc(CHUNK_SIZE + 1, GFP), Err(AllocError::NoMemory));
    let small = pool.alloc(CHUNK_SIZE, GFP).unwrap();
    fill(&pool, small, CHUNK_SIZE, 2);
    assert_eq!(pool.total_pages(), 1);
    check(&pool, big, MAX_ALLOC_SIZE, 1);
    check(&pool, small, CHUNK_SIZE, 2);
    let stats = pool.stats();
    assert_eq!(stats.rejected_invalid, 1);
    assert_eq!(stats.rejected_too_big, 3);
    assert_eq!(stats.rejected_no_memory, 1);
    assert_eq!(stats.objects, 2);
}

#[test]
fn errnos() {
    assert_eq!(AllocError::Invalid.to_errno(), -22);
    assert_eq!(AllocError::TooBig.to_errno(), -28);
    assert_eq!(AllocError::NoMemory.to_errno(), -12);
}

#[test]
fn first_and_last_placement() {
    let src = TestPages::new();
    let mut pool = Pool::new(&src);
    for (first, last) in [(1, 63), (64, 65), (65, 1), (chunks(31), chunks(32))] {
        let a = pool.alloc(first, GFP).unwrap();
        let b = pool.alloc(last, GFP).unwrap();
        let page = page_of(addr(&pool, a));
        assert_eq!(addr(&pool, a), page + ZHDR_SIZE_ALIGNED);
        assert_eq!(page_of(addr(&pool, b)), page);
        assert_eq!(
            addr(&pool, b) + size_to_chunks(last) * CHUNK_SIZE,
            page + PAGE_SIZE
        );
        fill(&pool, a, first, 1);
        fill(&pool, b, last, 2);
        check(&pool, a, first, 1);
        check(&pool, b, last, 2);
        pool.free(a).unwrap();
        pool.free(b).unwrap();
    }
}

#[test]
fn a_page_with_n_free_chunks_takes_up_to_n() {
    for used in 1..=62 {
        let free = NCHUNKS - used;
        let src = TestPages::new();
        let mut pool = Pool::new(&src);
        let a = pool.alloc(chunks(used), GFP).unwrap();
        let page = page_of(addr(&pool, a));
        if free < 62 {
            // One chunk more than is free needs a new page.
            let b = pool.alloc(chunks(free + 1), GFP).unwrap();
            assert_ne!(page_of(addr(&pool, b)), page);
            pool.free(b).unwrap();
        }
        let c = pool.alloc(chunks(free), GFP).unwrap();
        assert_eq!(page_of(addr(&pool, c)), page, "{used} chunks used");
        assert_eq!(addr(&pool, c) + chunks(free), page + PAGE_SIZE);
        assert_eq!(pool.total_pages(), 1);
    }
}

#[test]
fn fullest_page_that_fits_is_chosen() {
    let src = TestPages::new();
    let mut pool = Pool::new(&src);
    // Pages with 23, 18 and 13 free chunks.
    let mut pages = Vec::new();
    for used in [40, 45, 50] {
        let h = pool.alloc(chunks(used), GFP).unwrap();
        pages.push(page_of(addr(&pool, h)));
    }
    // 15 chunks: the page with 18 free.
    let h = pool.alloc(chunks(15), GFP).unwrap();
    assert_eq!(page_of(addr(&pool, h)), pages[1]);
    // 20 chunks: the page with 23 free.
    let h = pool.alloc(chunks(20), GFP).unwrap();
    assert_eq!(page_of(addr(&pool, h)), pages[0]);
    // 1 chunk: the page with 13 free.
    let h = pool.alloc(1, GFP).unwrap();
    assert_eq!(page_of(addr(&pool, h)), pages[2]);
    assert_eq!(pool.total_pages(), 3);
    assert_eq!(pool.stats().buddied_pages, 3);
}

#[test]
fn most_recently_listed_page_first() {
    let src = TestPages::new();
    let mut pool = Pool::new(&src);
    let pages: Vec<_> = (0..3)
        .map(|_| {
            let h = pool.alloc(chunks(40), GFP).unwrap();
            page_of(addr(&pool, h))
        })
        .collect();
    for &page in pages.iter().rev() {
        let h = pool.alloc(chunks(20), GFP).unwrap();
        assert_eq!(page_of(addr(&pool, h)), page);
    }
}

#[test]
fn at_most_two_buddies_per_page() {
    let src = TestPages::new();
    let mut pool = Pool::new(&src);
    let handles: Vec<_> = (0..3).map(|_| pool.alloc(1, GFP).unwrap()).collect();
    assert_eq!(pool.total_pages(), 2);
    let stats = pool.stats();
    assert_eq!((stats.buddied_pages, stats.unbuddied_pages), (1, 1));
    assert_eq!(
        page_of(addr(&pool, handles[0])),
        page_of(addr(&pool, handles[1]))
    );
    assert_ne!(
        page_of(addr(&pool, handles[0])),
        page_of(addr(&pool, handles[2]))
    );
}

#[test]
fn freeing_both_buddies_returns_the_page() {
    let src = TestPages::new();
    let mut pool = Pool::new(&src);
    let a = pool.alloc(100, GFP).unwrap();
    let b = pool.alloc(200, GFP).unwrap();
    let page = page_of(addr(&pool, a));
    let table = pool.stats().table_pages;
    assert_eq!(table, 3);
    assert_eq!(src.live(), 1 + table);
    pool.free(a).unwrap();
    assert_eq!(pool.total_pages(), 1);
    assert!(src.is_live(page));
    pool.free(b).unwrap();
    assert_eq!(pool.total_pages(), 0);
    assert!(!src.is_live(page));
    assert_eq!(src.live(), table);
    assert!(pool.is_empty());
    assert_eq!(pool.stats().unbuddied_pages, 0);
}

#[test]
fn freed_space_coalesces_with_the_slack() {
    let src = TestPages::new();
    let mut pool = Pool::new(&src);
    let a = pool.alloc(chunks(30), GFP).unwrap();
    let b = pool.alloc(chunks(30), GFP).unwrap();
    let page = page_of(addr(&pool, a));
    fill(&pool, b, chunks(30), 7);
    pool.free(a).unwrap();
    // 33 chunks are free: 30 of the first buddy and 3 of slack.
    let c = pool.alloc(chunks(33), GFP).unwrap();
    assert_eq!(addr(&pool, c), page + ZHDR_SIZE_ALIGNED);
    fill(&pool, c, chunks(33), 8);
    check(&pool, b, chunks(30), 7);
    pool.free(b).unwrap();
    let d = pool.alloc(chunks(30), GFP).unwrap();
    assert_eq!(addr(&pool, d), page + PAGE_SIZE - chunks(30));
    assert_eq!(pool.total_pages(), 1);
}

#[test]
fn total_pages_is_exact() {
    let src = TestPages::new();
    let mut pool = Pool::new(&src);
    let mut handles = Vec::new();
    // 1800 to 1900 bytes: 29 or 30 chunks, two per page.
    for i in 0..1000 {
        handles.push(pool.alloc(1800 + i % 101, GFP).unwrap());
        assert_eq!(pool.total_pages(), (i as u64) / 2 + 1);
    }
    // Freeing in order empties a page every second free.
    for (i, h) in (1..).zip(handles) {
        pool.free(h).unwrap();
        assert_eq!(pool.total_pages(), 500 - i / 2);
    }
    assert_eq!(src.live(), pool.stats().table_pages);
}

#[test]
fn flags_reach_every_page_allocation() {
    let src = TestPages::new();
    let mut pool = Pool::new(&src);
    pool.alloc(10, Gfp(7)).unwrap();
    // The zbud page and the three table nodes of slot 0.
    assert_eq!(*src.flags.borrow(), vec![Gfp(7); 4]);
}

#[test]
fn no_memory_at_any_page_leaves_the_pool_unchanged() {
    let src = TestPages::new();
    let mut pool = Pool::new(&src);
    // The first allocation needs a zbud page and three table nodes.
    for n in 0..4 {
        src.fail_after.set(Some(n));
        assert_eq!(pool.alloc(10, GFP), Err(AllocError::NoMemory));
        assert_eq!(src.live(), 0);
        assert_eq!(pool.total_pages(), 0);
        assert_eq!(pool.stats().table_pages, 0);
    }
    src.fail_after.set(None);
    let h = pool.alloc(10, GFP).unwrap();
    assert_eq!(pool.stats().rejected_no_memory, 4);
    pool.free(h).unwrap();
}

#[test]
fn table_grows_a_leaf_every_512_pages() {
    let src = TestPages::new();
    let mut pool = Pool::new(&src);
    let mut handles = Vec::new();
    for id in 0..512 {
        let h = pool.alloc(MAX_ALLOC_SIZE, GFP).unwrap();
        fill(&pool, h, MAX_ALLOC_SIZE, id);
        handles.push(h);
    }
    assert_eq!(pool.stats().table_pages, 3);
    // Slot 512 needs a new leaf: fail it, then the zbud page.
    for n in [1, 0] {
        let before = pool.stats();
        src.fail_after.set(Some(n));
        assert_eq!(pool.alloc(MAX_ALLOC_SIZE, GFP), Err(AllocError::NoMemory));
        assert_eq!(src.live(), 512 + 3);
        let after = pool.stats();
        assert_eq!(
            after,
            Stats {
                rejected_no_memory: before.rejected_no_memory + 1,
                ..before
            }
        );
    }
    let h = pool.alloc(MAX_ALLOC_SIZE, GFP).unwrap();
    assert_eq!(pool.stats().table_pages, 4);
    handles.push(h);
    fill(&pool, h, MAX_ALLOC_SIZE, 512);
    for (id, h) in handles.iter().enumerate() {
        check(&pool, *h, MAX_ALLOC_SIZE, id as u64);
    }
    // Freed slots are reused: no further growth.
    for h in handles.drain(..100) {
        pool.free(h).unwrap();
    }
    for _ in 0..100 {
        handles.push(pool.alloc(MAX_ALLOC_SIZE, GFP).unwrap());
    }
    assert_eq!(pool.stats().table_pages, 4);
    for h in handles {
        pool.free(h).unwrap();
    }
    assert_eq!(pool.destroy(), Ok(()));
    assert_eq!(src.live(), 0);
}

#[test]
fn bad_handles_are_rejected() {
    let src = TestPages::new();
    let mut pool = Pool::new(&src);
    let mut other = Pool::new(&src);
    let a = pool.alloc(100, GFP).unwrap();
    let b = pool.alloc(100, GFP).unwrap();
    let keep = pool.alloc(3000, GFP).unwrap();
    fill(&pool, keep, 3000, 42);
    let foreign = other.alloc(100, GFP).unwrap();
    assert_ne!(a.to_raw(), 0);

    pool.free(a).unwrap();
    assert_eq!(pool.free(a), Err(HandleError::Stale));
    assert_eq!(pool.map(a), Err(HandleError::Stale));
    // `b` is now alone on its page; when it goes, so does its slot.
    pool.free(b).unwrap();
    assert_eq!(pool.free(b), Err(HandleError::Stale));
    assert_eq!(pool.free(foreign), Err(HandleError::Foreign));
    assert_eq!(pool.map(foreign), Err(HandleError::Foreign));
    assert_eq!(pool.free(Handle::from_raw(0)), Err(HandleError::Foreign));
    // Same tag, slot 2^27 - 1: never handed out.
    let tag = keep.to_raw() & (0xffff << 48);
    let malformed = Handle::from_raw(tag | ((1 << 27) - 1) << 1);
    assert_eq!(pool.free(malformed), Err(HandleError::Malformed));
    // The other buddy of `keep`'s page, never allocated.
    assert_eq!(
        pool.map(Handle::from_raw(keep.to_raw() ^ 1)),
        Err(HandleError::Stale)
    );
    // Another generation of `keep`.
    assert_eq!(
        pool.map(Handle::from_raw(keep.to_raw() ^ (1 << 28))),
        Err(HandleError::Stale)
    );
    assert_eq!(pool.stats().bad_handles, 9);
    assert_eq!(pool.stats().objects, 1);
    check(&pool, keep, 3000, 42);
    assert!(other.map(foreign).is_ok());
}

#[test]
fn a_reused_buddy_or_slot_gets_a_new_handle() {
    let src = TestPages::new();
    let mut pool = Pool::new(&src);
    let a = pool.alloc(100, GFP).unwrap();
    let b = pool.alloc(100, GFP).unwrap();
    pool.free(a).unwrap();
    // Same page, same buddy.
    let c = pool.alloc(100, GFP).unwrap();
    assert_eq!(addr(&pool, c), page_of(addr(&pool, b)) + ZHDR_SIZE_ALIGNED);
    assert_ne!(a, c);
    assert_eq!(pool.map(a), Err(HandleError::Stale));
    pool.free(b).unwrap();
    pool.free(c).unwrap();
    // Same slot, another page.
    let d = pool.alloc(100, GFP).unwrap();
    for old in [a, b, c] {
        assert_ne!(old, d);
        assert_eq!(pool.free(old), Err(HandleError::Stale));
    }
    pool.free(d).unwrap();
}

#[test]
fn destroying_an_empty_pool_frees_everything() {
    let src = TestPages::new();
    let mut pool = Pool::new(&src);
    let handles: Vec<_> = (1..600).map(|i| pool.alloc(i, GFP).unwrap()).collect();
    for h in handles {
        pool.free(h).unwrap();
    }
    assert!(src.live() > 0);
    assert_eq!(pool.destroy(), Ok(()));
    assert_eq!(src.live(), 0);
    assert_eq!(src.allocs.get(), src.frees.get());
}

#[test]
fn dropping_an_empty_pool_frees_everything() {
    let src = TestPages::new();
    let mut pool = Pool::new(&src);
    let h = pool.alloc(1, GFP).unwrap();
    pool.free(h).unwrap();
    drop(pool);
    assert_eq!(src.live(), 0);
    drop(Pool::new(&src));
    assert_eq!(src.allocs.get(), src.frees.get());
}

#[test]
fn destroying_a_live_pool_reports_the_leak_and_frees_no_object() {
    let src = TestPages::new();
    let mut pool = Pool::new(&src);
    let live: Vec<_> = (0..5u64)
        .map(|id| {
            let h = pool.alloc(1000, GFP).unwrap();
            fill(&pool, h, 1000, id);
            (id, addr(&pool, h))
        })
        .collect();
    assert_eq!(
        pool.destroy(),
        Err(Leak {
            pages: 3,
            objects: 5
        })
    );
    // Only the object pages are left, and the objects are intact.
    assert_eq!(src.live(), 3);
    for (id, addr) in live {
        assert!(src.is_live(page_of(addr)));
        // SAFETY: The object's page was leaked, not freed.
        let bytes = unsafe { std::slice::from_raw_parts(addr as *const u8, 1000) };
        assert!(bytes == common::pattern(id, 1000));
    }
}

#[test]
fn reset_reports_the_leak_and_leaves_a_usable_pool() {
    let src = TestPages::new();
    let mut pool = Pool::new(&src);
    let old = pool.alloc(1000, GFP).unwrap();
    fill(&pool, old, 1000, 1);
    let old_addr = addr(&pool, old);
    assert_eq!(
        pool.reset(),
        Err(Leak {
            pages: 1,
            objects: 1
        })
    );
    assert_eq!(src.live(), 1);
    assert!(pool.is_empty());
    assert_eq!(pool.total_pages(), 0);
    assert_eq!(pool.stats().table_pages, 0);
    // Handles from before the reset belong to another pool now.
    assert_eq!(pool.map(old), Err(HandleError::Foreign));
    let new = pool.alloc(1000, GFP).unwrap();
    assert_ne!(page_of(addr(&pool, new)), page_of(old_addr));
    // SAFETY: The leaked page was not freed.
    let bytes = unsafe { std::slice::from_raw_parts(old_addr as *const u8, 1000) };
    assert!(bytes == common::pattern(1, 1000));
    pool.free(new).unwrap();
    assert_eq!(pool.reset(), Ok(()));
    assert_eq!(src.live(), 1);
    assert_eq!(pool.stats().bad_handles, 1);
}
