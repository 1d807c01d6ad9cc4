// SPDX-License-Identifier: GPL-2.0

//! Unit tests: sizes, placement, headless pages, list selection, compaction
//! (at once and deferred), the map/unmap contract, handle checks, page
//! accounting, table growth, allocation failures and teardown. Small enough
//! for Miri (`cargo +nightly miri test -p rkm-z3fold --test unit`).

mod common;

use common::{addr, check, chunk, chunks, fill, page_of, TestPages, TestPool, Z3fold, GFP};
use rkm_z3fold::*;
use rkm_zalloc::testing::scenarios;

/// An empty pool on `src`.
fn pool(src: &TestPages) -> Z3fold<'_> {
    Z3fold::new(src)
}

/// Checks the pool's invariants.
fn checked(pool: &Z3fold<'_>) {
    if let Err(what) = pool.check() {
        panic!("pool invariant broken: {what}");
    }
}

rkm_zalloc::shared_tests!(
    Z3fold<'_>;
    most_recently_listed_page_first,
    flags_reach_every_page,
    no_memory_at_any_page,
    reuse_gives_new_handles,
    foreign_and_freed_handles,
    table_grows_a_leaf_at_a_time(127, PAGE_SIZE),
    destroying_an_empty_pool_frees_everything(
        (0..if cfg!(miri) { 100 } else { 600 }).map(|i| 1 + i * 7 % PAGE_SIZE)
    ),
    dropping_an_empty_pool_frees_everything,
    destroying_a_live_pool_leaks_its_pages,
    reset_leaks_live_pages_and_renews_the_pool,
);

/// The tag bits of `handle`.
fn tag(handle: Handle) -> u64 {
    handle.to_raw() & (0xffff << 48)
}

/// A page source without pages, `Send` and `Sync`.
struct NoPages;

// SAFETY: It returns no page.
unsafe impl PageSource for NoPages {
    type Flags = ();

    fn alloc_page(&self, _flags: ()) -> Option<std::ptr::NonNull<u8>> {
        None
    }

    unsafe fn free_page(&self, _page: std::ptr::NonNull<u8>) {}
}

#[test]
fn a_pool_moves_to_other_threads() {
    let mut pool = Pool::new(NoPages);
    assert_eq!(pool.alloc(1, ()), Err(AllocError::NoMemory));
    let stats = std::thread::spawn(move || pool.stats()).join().unwrap();
    assert_eq!(stats.rejected_no_memory, 1);
}

#[test]
fn constants() {
    assert_eq!(CHUNK_SIZE, 64);
    assert_eq!(NCHUNKS, 64);
    assert_eq!(OBJECTS_PER_PAGE, 3);
    assert_eq!(MAX_SHARED_SIZE, 63 * 64);
    assert_eq!(MAX_ALLOC_SIZE, 4096);
    assert_eq!(MAX_PAGES, 127 << 18);
    assert_eq!(MAX_MAPS, 15);
}

#[test]
fn size_edges() {
    let src = TestPages::new();
    let mut pool = pool(&src);
    assert_eq!(pool.alloc(0, GFP), Err(AllocError::Invalid));
    assert_eq!(pool.alloc(PAGE_SIZE + 1, GFP), Err(AllocError::TooBig));
    assert_eq!(pool.alloc(usize::MAX, GFP), Err(AllocError::TooBig));
    assert_eq!(src.allocs.get(), 0);
    assert_eq!(pool.total_pages(), 0);

    // Sizes that share pages: 1, 1 and 1 chunks on one page (three
    // objects at most), 2 on a second, 63 on a third (2 + 63 > 64).
    let mut live = Vec::new();
    for (id, size) in [1, 63, 64, 65, MAX_SHARED_SIZE].into_iter().enumerate() {
        let h = pool.alloc(size, GFP).unwrap();
        fill(&mut pool, h, size, id as u64);
        live.push((h, size, id as u64));
    }
    let stats = pool.stats();
    assert_eq!(stats.headless_pages, 0);
    assert_eq!(stats.objects, 5);
    assert_eq!(stats.pages, 3);
    assert_eq!(
        (stats.pages_one, stats.pages_two, stats.pages_three),
        (2, 0, 1)
    );
    // Headless: a whole page each.
    for (id, size) in [MAX_SHARED_SIZE + 1, PAGE_SIZE].into_iter().enumerate() {
        let h = pool.alloc(size, GFP).unwrap();
        assert_eq!(chunk(&mut pool, h), 0);
        fill(&mut pool, h, size, 10 + id as u64);
        live.push((h, size, 10 + id as u64));
    }
    let stats = pool.stats();
    assert_eq!(stats.headless_pages, 2);
    assert_eq!(stats.pages, 5);
    assert_eq!(stats.rejected_invalid, 1);
    assert_eq!(stats.rejected_too_big, 2);
    assert_eq!(stats.rejected_no_memory, 0);
    checked(&pool);
    for (h, size, id) in live {
        check(&mut pool, h, size, id);
    }
}

#[test]
fn three_objects_per_page_first_last_middle() {
    let src = TestPages::new();
    let mut pool = pool(&src);
    let first = pool.alloc(chunks(10), GFP).unwrap();
    let last = pool.alloc(chunks(20), GFP).unwrap();
    let middle = pool.alloc(chunks(5), GFP).unwrap();
    let page = page_of(addr(&mut pool, first));
    assert_eq!(chunk(&mut pool, first), 0);
    assert_eq!(chunk(&mut pool, last), NCHUNKS - 20);
    assert_eq!(chunk(&mut pool, middle), 10);
    for h in [last, middle] {
        assert_eq!(page_of(addr(&mut pool, h)), page);
    }
    assert_eq!(pool.stats().pages_three, 1);
    // Room is left, but no fourth object.
    let fourth = pool.alloc(1, GFP).unwrap();
    assert_ne!(page_of(addr(&mut pool, fourth)), page);
    let stats = pool.stats();
    assert_eq!((stats.pages, stats.pages_one, stats.pages_three), (2, 1, 1));
    checked(&pool);
}

#[test]
fn all_chunks_carry_data() {
    let src = TestPages::new();
    let mut pool = pool(&src);
    // 20 + 30 + 14 = 64 chunks: one page, no header.
    let sizes = [chunks(20), chunks(30), chunks(14)];
    let handles: Vec<_> = sizes.iter().map(|&s| pool.alloc(s, GFP).unwrap()).collect();
    for (id, (&h, &size)) in handles.iter().zip(&sizes).enumerate() {
        fill(&mut pool, h, size, id as u64);
    }
    assert_eq!(pool.stats().pages, 1);
    for (id, (&h, &size)) in handles.iter().zip(&sizes).enumerate() {
        check(&mut pool, h, size, id as u64);
    }
    // 63 chunks and 1 chunk share a page.
    let big = pool.alloc(MAX_SHARED_SIZE, GFP).unwrap();
    let small = pool.alloc(1, GFP).unwrap();
    assert_eq!(
        page_of(addr(&mut pool, big)),
        page_of(addr(&mut pool, small))
    );
    assert_eq!(chunk(&mut pool, small), 63);
    assert_eq!(pool.stats().pages, 2);
    checked(&pool);
}

#[test]
fn headless_pages_are_never_shared_and_go_back_at_once() {
    let src = TestPages::new();
    let mut pool = pool(&src);
    let h = pool.alloc(PAGE_SIZE, GFP).unwrap();
    fill(&mut pool, h, PAGE_SIZE, 1);
    let page = addr(&mut pool, h);
    assert_eq!(page_of(page), page);
    let small = pool.alloc(1, GFP).unwrap();
    assert_ne!(page_of(addr(&mut pool, small)), page);
    let stats = pool.stats();
    assert_eq!(
        (stats.headless_pages, stats.pages_one, stats.pages),
        (1, 1, 2)
    );
    check(&mut pool, h, PAGE_SIZE, 1);
    pool.free(h).unwrap();
    assert!(!src.is_live(page));
    assert_eq!(pool.stats().headless_pages, 0);
    checked(&pool);
}

#[test]
fn a_page_with_n_free_chunks_in_one_region_takes_up_to_n() {
    for used in [1, 2, 31, 62, 63] {
        scenarios::a_page_takes_up_to_its_free_chunks::<Z3fold<'_>>(
            &TestPages::new(),
            used,
            NCHUNKS,
        );
    }
}

#[test]
fn fullest_page_that_fits_is_chosen() {
    let src = TestPages::new();
    // Pages with 24, 19 and 14 free chunks: 15 chunks go to the second, 20
    // to the first.
    let (mut pool, pages) = scenarios::fullest_page_that_fits::<Z3fold<'_>>(&src);
    // 1 chunk: of the two pages with 4 free, the most recently listed.
    let h = pool.alloc(1, GFP).unwrap();
    assert_eq!(page_of(addr(&mut pool, h)), pages[0]);
    // 5 chunks: the page with 14 free.
    let h = pool.alloc(chunks(5), GFP).unwrap();
    assert_eq!(page_of(addr(&mut pool, h)), pages[2]);
    let stats = pool.stats();
    assert_eq!((stats.pages, stats.pages_two, stats.pages_three), (3, 2, 1));
    checked(&pool);
}

#[test]
fn freeing_first_or_last_moves_nothing() {
    let src = TestPages::new();
    let mut pool = pool(&src);
    let first = pool.alloc(chunks(10), GFP).unwrap();
    let last = pool.alloc(chunks(20), GFP).unwrap();
    let middle = pool.alloc(chunks(5), GFP).unwrap();
    fill(&mut pool, middle, chunks(5), 3);
    pool.free(last).unwrap();
    assert_eq!(chunk(&mut pool, middle), 10);
    pool.free(first).unwrap();
    // Alone, in the middle: moved to chunk 0, the free space after it.
    assert_eq!(chunk(&mut pool, middle), 0);
    assert_eq!(pool.stats().compactions, 1);
    check(&mut pool, middle, chunks(5), 3);
    // Freeing the middle of three joins the free region.
    let last = pool.alloc(chunks(30), GFP).unwrap();
    let mid2 = pool.alloc(chunks(7), GFP).unwrap();
    assert_eq!(chunk(&mut pool, last), 34);
    assert_eq!(chunk(&mut pool, mid2), 5);
    pool.free(mid2).unwrap();
    assert_eq!(pool.stats().compactions, 1);
    checked(&pool);
}

#[test]
fn compaction_moves_the_middle_and_its_handle_follows() {
    let src = TestPages::new();
    let mut pool = pool(&src);
    let first = pool.alloc(chunks(10), GFP).unwrap();
    let last = pool.alloc(chunks(20), GFP).unwrap();
    let middle = pool.alloc(chunks(5) - 3, GFP).unwrap();
    fill(&mut pool, last, chunks(20), 2);
    fill(&mut pool, middle, chunks(5) - 3, 3);
    let page = page_of(addr(&mut pool, first));
    assert_eq!(addr(&mut pool, middle), page + chunks(10));
    pool.free(first).unwrap();
    // The middle object moved to the start of the page; the free chunks
    // are one region again, and the page is listed for it.
    assert_eq!(addr(&mut pool, middle), page);
    assert_eq!(chunk(&mut pool, last), 44);
    let stats = pool.stats();
    assert_eq!(stats.compactions, 1);
    assert_eq!(stats.compactions_deferred, 0);
    assert_eq!(stats.pages_two, 1);
    check(&mut pool, middle, chunks(5) - 3, 3);
    check(&mut pool, last, chunks(20), 2);
    // 39 free chunks in one region take a 39-chunk object.
    let big = pool.alloc(chunks(39), GFP).unwrap();
    assert_eq!(page_of(addr(&mut pool, big)), page);
    assert_eq!(chunk(&mut pool, big), 5);
    checked(&pool);
}

#[test]
fn compaction_moves_the_fewest_chunks_both_ways() {
    let src = TestPages::new();
    let mut pool = pool(&src);
    let a = pool.alloc(chunks(10), GFP).unwrap(); // 0..10
    let c = pool.alloc(chunks(24), GFP).unwrap(); // 40..64
    let x = pool.alloc(chunks(10), GFP).unwrap(); // 10..20
    assert_eq!(
        [a, c, x].map(|h| chunk(&mut pool, h)),
        [0, 40, 10],
        "placement"
    );
    fill(&mut pool, c, chunks(24), 1);
    fill(&mut pool, x, chunks(10), 2);
    let mapped = pool.map(c).unwrap();
    // Free chunks 0..10 and 20..40: compaction waits for `c`'s unmap.
    pool.free(a).unwrap();
    let stats = pool.stats();
    assert_eq!((stats.compactions, stats.compactions_deferred), (0, 1));
    // 15 chunks fit only in 20..40, at its start: 0..10 and 35..40 stay free.
    let b = pool.alloc(chunks(15), GFP).unwrap();
    assert_eq!(chunk(&mut pool, b), 20);
    fill(&mut pool, b, chunks(15), 3);
    assert_eq!(pool.stats().compactions, 0);
    checked(&pool);
    pool.unmap(c).unwrap();
    // Every one-region layout moves 25 chunks; the first with the free
    // region between objects: `x` to 0, `b` right against `c`.
    assert_eq!([x, b, c].map(|h| chunk(&mut pool, h)), [0, 25, 40]);
    assert_eq!(addr(&mut pool, c), mapped.as_ptr() as usize);
    assert_eq!(pool.stats().compactions, 2);
    check(&mut pool, c, chunks(24), 1);
    check(&mut pool, x, chunks(10), 2);
    check(&mut pool, b, chunks(15), 3);
    checked(&pool);
}

#[test]
fn mapped_pages_are_not_compacted_until_their_last_unmap() {
    let src = TestPages::new();
    let mut pool = pool(&src);
    let first = pool.alloc(chunks(10), GFP).unwrap();
    let last = pool.alloc(chunks(20), GFP).unwrap();
    let middle = pool.alloc(chunks(5), GFP).unwrap();
    fill(&mut pool, middle, chunks(5), 7);
    fill(&mut pool, last, chunks(20), 8);
    let m = pool.map(middle).unwrap();
    let l1 = pool.map(last).unwrap();
    let l2 = pool.map(last).unwrap();
    assert_eq!(l1, l2);
    pool.free(first).unwrap();
    let stats = pool.stats();
    assert_eq!((stats.compactions, stats.compactions_deferred), (0, 1));
    checked(&pool);
    // The mapped objects stay put and intact while the caller uses them.
    // SAFETY: `middle` is mapped, 5 chunks.
    let bytes = unsafe { std::slice::from_raw_parts(m.as_ptr(), chunks(5)) };
    assert!(bytes == common::pattern(7, chunks(5)));
    // An allocation into the page's pieces moves nothing: 10 free chunks
    // at 0..10 and 29 at 15..44; 8 chunks go to the smaller, at 0.
    let small = pool.alloc(chunks(8), GFP).unwrap();
    assert_eq!(chunk(&mut pool, small), 0);
    assert_eq!(addr(&mut pool, middle), m.as_ptr() as usize);
    pool.free(small).unwrap();
    assert_eq!(pool.stats().compactions_deferred, 2);
    // Unmapping `middle` leaves `last` mapped: still no compaction.
    pool.unmap(middle).unwrap();
    pool.unmap(last).unwrap();
    assert_eq!(pool.stats().compactions, 0);
    assert_eq!(addr(&mut pool, middle), m.as_ptr() as usize);
    checked(&pool);
    // The last unmap compacts.
    pool.unmap(last).unwrap();
    assert_eq!(pool.stats().compactions, 1);
    assert_eq!(chunk(&mut pool, middle), 0);
    check(&mut pool, middle, chunks(5), 7);
    check(&mut pool, last, chunks(20), 8);
    checked(&pool);
}

#[test]
fn a_lone_object_migrates_and_its_handle_follows() {
    let src = TestPages::new();
    let mut pool = pool(&src);
    // Page A: three objects; page B: 60 + 3 chunks, room for 1.
    let a1 = pool.alloc(chunks(10), GFP).unwrap();
    let a2 = pool.alloc(chunks(10), GFP).unwrap();
    let a3 = pool.alloc(chunks(10), GFP).unwrap();
    let b1 = pool.alloc(chunks(40), GFP).unwrap();
    let page_a = page_of(addr(&mut pool, a1));
    let page_b = page_of(addr(&mut pool, b1));
    assert_ne!(page_a, page_b);
    fill(&mut pool, a2, chunks(10), 5);
    fill(&mut pool, b1, chunks(40), 6);
    pool.free(a1).unwrap();
    assert_eq!(pool.stats().migrations, 0);
    let before = src.live();
    // A is left with `a2` alone; B (24 free) takes it, A goes back.
    pool.free(a3).unwrap();
    let stats = pool.stats();
    assert_eq!((stats.migrations, stats.forwarded), (1, 1));
    assert_eq!((stats.pages, stats.pages_one, stats.pages_two), (1, 0, 1));
    assert_eq!(src.live(), before - 1);
    assert_eq!(page_of(addr(&mut pool, a2)), page_b);
    check(&mut pool, a2, chunks(10), 5);
    check(&mut pool, b1, chunks(40), 6);
    checked(&pool);
    // The forwarded handle maps, nests and is busy while mapped.
    let m = pool.map(a2).unwrap();
    assert_eq!(pool.free(a2), Err(HandleError::Busy));
    pool.unmap(a2).unwrap();
    assert_eq!(page_of(m.as_ptr() as usize), page_b);
    // Freeing the forwarded object frees its forwarder: the handle is
    // stale, and B does not give `b1` away (no other page).
    pool.free(a2).unwrap();
    assert_eq!(pool.free(a2), Err(HandleError::Stale));
    assert_eq!(pool.map(a2), Err(HandleError::Stale));
    let stats = pool.stats();
    assert_eq!((stats.migrations, stats.forwarded, stats.pages), (1, 0, 1));
    check(&mut pool, b1, chunks(40), 6);
    checked(&pool);
    pool.free(b1).unwrap();
    assert_eq!(pool.total_pages(), src.live());
    assert!(pool.destroy().is_ok());
    assert_eq!(src.live(), 0);
}

#[test]
fn foreign_objects_move_once_and_pin_their_page() {
    let src = TestPages::new();
    let mut pool = pool(&src);
    // Page A: `a1`, `a2`; page B: `b1`. Freeing `a1` migrates `a2` to B.
    let a1 = pool.alloc(chunks(30), GFP).unwrap();
    let a2 = pool.alloc(chunks(20), GFP).unwrap();
    let b1 = pool.alloc(chunks(40), GFP).unwrap();
    let page_b = page_of(addr(&mut pool, b1));
    fill(&mut pool, a2, chunks(20), 9);
    pool.free(a1).unwrap();
    assert_eq!(page_of(addr(&mut pool, a2)), page_b);
    assert_eq!(pool.stats().migrations, 1);
    // Page C: `c1` and room. Freeing `b1` leaves B with the foreign `a2`
    // alone: it does not move again.
    let c1 = pool.alloc(chunks(50), GFP).unwrap();
    assert_ne!(page_of(addr(&mut pool, c1)), page_b);
    pool.free(b1).unwrap();
    assert_eq!(page_of(addr(&mut pool, a2)), page_b);
    assert_eq!(pool.stats().migrations, 1);
    // `d` fits only in B, beside the foreign `a2`. When `a2`'s free (through
    // its forwarder) leaves `d` alone, no page has room for it: it stays.
    let d = pool.alloc(chunks(30), GFP).unwrap();
    assert_eq!(page_of(addr(&mut pool, d)), page_b);
    fill(&mut pool, d, chunks(30), 4);
    pool.free(a2).unwrap();
    let stats = pool.stats();
    assert_eq!((stats.migrations, stats.forwarded, stats.pages), (1, 0, 2));
    assert_eq!(page_of(addr(&mut pool, d)), page_b);
    check(&mut pool, d, chunks(30), 4);
    checked(&pool);
    pool.free(d).unwrap();
    pool.free(c1).unwrap();
    assert_eq!((pool.total_pages(), pool.stats().pages), (src.live(), 0));
    checked(&pool);
}

#[test]
fn a_mapped_lone_object_migrates_at_its_unmap_only_if_deferred() {
    let src = TestPages::new();
    let mut pool = pool(&src);
    let first = pool.alloc(chunks(10), GFP).unwrap();
    let last = pool.alloc(chunks(10), GFP).unwrap();
    let middle = pool.alloc(chunks(10), GFP).unwrap();
    let other = pool.alloc(chunks(40), GFP).unwrap();
    let page = page_of(addr(&mut pool, first));
    fill(&mut pool, middle, chunks(10), 1);
    let m = pool.map(middle).unwrap();
    pool.free(first).unwrap();
    pool.free(last).unwrap();
    // Alone but mapped: it stays, deferred.
    assert_eq!(addr(&mut pool, middle), m.as_ptr() as usize);
    assert_eq!(pool.stats().migrations, 0);
    checked(&pool);
    pool.unmap(middle).unwrap();
    // The last unmap compacts and migrates it next to `other`.
    let stats = pool.stats();
    assert_eq!((stats.migrations, stats.pages), (1, 1));
    assert_ne!(page_of(addr(&mut pool, middle)), page);
    assert_eq!(
        page_of(addr(&mut pool, middle)),
        page_of(addr(&mut pool, other))
    );
    check(&mut pool, middle, chunks(10), 1);
    checked(&pool);
}

#[test]
fn busy_not_mapped_and_nested_maps() {
    let src = TestPages::new();
    let mut pool = pool(&src);
    let h = pool.alloc(100, GFP).unwrap();
    assert_eq!(pool.unmap(h), Err(HandleError::NotMapped));
    let a = pool.map(h).unwrap();
    let before = pool.stats();
    assert_eq!(pool.free(h), Err(HandleError::Busy));
    assert_eq!(
        pool.stats(),
        Stats {
            bad_handles: before.bad_handles + 1,
            ..before
        }
    );
    for _ in 1..MAX_MAPS {
        assert_eq!(pool.map(h).unwrap(), a);
    }
    assert_eq!(pool.map(h), Err(HandleError::Busy));
    for _ in 0..MAX_MAPS {
        assert_eq!(pool.free(h), Err(HandleError::Busy));
        pool.unmap(h).unwrap();
    }
    assert_eq!(pool.unmap(h), Err(HandleError::NotMapped));
    pool.free(h).unwrap();
    assert_eq!(pool.unmap(h), Err(HandleError::Stale));
    assert_eq!(pool.stats().bad_handles, 2 + 1 + MAX_MAPS as u64 + 1 + 1);
    assert!(pool.is_empty());
    checked(&pool);
}

#[test]
fn malformed_and_stale_handles_are_rejected() {
    let src = TestPages::new();
    let mut pool = pool(&src);
    let keep = pool.alloc(MAX_SHARED_SIZE, GFP).unwrap();
    fill(&mut pool, keep, MAX_SHARED_SIZE, 42);
    // Same tag, slot 2^25 - 128: record 0 of a leaf, never a slot.
    let malformed = Handle::from_raw(tag(keep) | ((1 << 25) - 128) << 2);
    assert_eq!(pool.free(malformed), Err(HandleError::Malformed));
    // Slot 2^25 - 1: a slot without leaf, like a freed one.
    let no_leaf = Handle::from_raw(tag(keep) | ((1 << 25) - 1) << 2);
    assert_eq!(pool.free(no_leaf), Err(HandleError::Stale));
    // Index 3: no page has it.
    let index_3 = Handle::from_raw(keep.to_raw() | 3);
    assert_eq!(pool.map(index_3), Err(HandleError::Malformed));
    // A spare bit.
    let spare = Handle::from_raw(keep.to_raw() | 1 << 43);
    assert_eq!(pool.unmap(spare), Err(HandleError::Malformed));
    // Other objects of `keep`'s page, never allocated.
    for index in [1, 2] {
        let other = Handle::from_raw(keep.to_raw() ^ index);
        assert_eq!(pool.map(other), Err(HandleError::Stale));
    }
    // Another generation of `keep`.
    let old = Handle::from_raw(keep.to_raw() ^ (1 << 27));
    assert_eq!(pool.free(old), Err(HandleError::Stale));
    let stats = pool.stats();
    assert_eq!((stats.bad_handles, stats.objects), (7, 1));
    check(&mut pool, keep, MAX_SHARED_SIZE, 42);
    checked(&pool);
}

#[test]
fn random_handles_are_rejected_and_change_nothing() {
    let src = TestPages::new();
    let mut pool = pool(&src);
    let live: Vec<_> = (0..5u64)
        .map(|id| {
            let h = pool.alloc(700 + id as usize * 300, GFP).unwrap();
            fill(&mut pool, h, 700 + id as usize * 300, id);
            h
        })
        .collect();
    let before = pool.stats();
    let mut x = 0x1234_5678_9abc_def1u64;
    let rounds = if cfg!(miri) { 200 } else { 20_000 };
    let mut rejected = 0;
    for i in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Half of them with the pool's tag and a small slot.
        let raw = if i % 2 == 0 {
            x
        } else {
            tag(live[0]) | (x & 0x0007_ffff_ffff)
        };
        let h = Handle::from_raw(raw);
        if live.contains(&h) {
            continue;
        }
        let result = match i % 3 {
            0 => pool.free(h),
            1 => pool.map(h).map(drop),
            _ => pool.unmap(h),
        };
        assert!(result.is_err(), "{raw:#x} accepted");
        if i % 2 == 1 {
            assert_ne!(result, Err(HandleError::Foreign));
        }
        rejected += 1;
    }
    assert_eq!(
        pool.stats(),
        Stats {
            bad_handles: rejected,
            ..before
        }
    );
    for (id, &h) in live.iter().enumerate() {
        check(&mut pool, h, 700 + id * 300, id as u64);
    }
    checked(&pool);
}

#[test]
fn freeing_every_object_returns_the_page() {
    let src = TestPages::new();
    let mut pool = pool(&src);
    let handles: Vec<_> = [100, 200, 300]
        .iter()
        .map(|&s| pool.alloc(s, GFP).unwrap())
        .collect();
    let page = page_of(addr(&mut pool, handles[0]));
    let table = pool.stats().table_pages;
    assert_eq!(table, 3);
    assert_eq!(src.live(), 1 + table);
    assert_eq!(pool.total_pages(), 1 + table);
    for (i, &h) in handles.iter().enumerate() {
        assert!(src.is_live(page));
        pool.free(h).unwrap();
        assert_eq!(pool.stats().pages, u64::from(i < 2));
    }
    assert!(!src.is_live(page));
    // The table went with its last page.
    assert_eq!(src.live(), 0);
    assert_eq!(pool.total_pages(), 0);
    assert!(pool.is_empty());
    checked(&pool);
}

#[test]
fn total_pages_is_exact() {
    let src = TestPages::new();
    let mut pool = pool(&src);
    let n = if cfg!(miri) { 60 } else { 900 };
    let mut handles = Vec::new();
    // 1220 to 1344 bytes: 20 or 21 chunks, three per page.
    for i in 0..n {
        handles.push(pool.alloc(1220 + i % 125, GFP).unwrap());
        let stats = pool.stats();
        assert_eq!(stats.pages, (i as u64) / 3 + 1);
        assert_eq!(pool.total_pages(), stats.pages + stats.table_pages);
        assert_eq!(src.live(), pool.total_pages());
    }
    // Freeing in order empties a page every third free.
    for (i, h) in (1..).zip(handles) {
        pool.free(h).unwrap();
        assert_eq!(pool.stats().pages, (n as u64 - i).div_ceil(3));
        assert_eq!(src.live(), pool.total_pages());
    }
    checked(&pool);
}

#[test]
fn no_memory_only_for_a_new_page() {
    let src = TestPages::new();
    let mut pool = pool(&src);
    // A page with one free chunk and a failing source: only a new page
    // would do for two.
    let big = pool.alloc(chunks(63), GFP).unwrap();
    let before = pool.stats();
    src.fail_all.set(true);
    assert_eq!(pool.alloc(chunks(2), GFP), Err(AllocError::NoMemory));
    let one = pool.alloc(chunks(1), GFP).unwrap();
    src.fail_all.set(false);
    let stats = pool.stats();
    assert_eq!(stats.rejected_no_memory, before.rejected_no_memory + 1);
    assert_eq!(stats.pages, before.pages);
    for h in [big, one] {
        pool.free(h).unwrap();
    }
    checked(&pool);
}

#[test]
fn mapped_objects_are_leaked_too() {
    let src = TestPages::new();
    let mut pool = pool(&src);
    let h = pool.alloc(1000, GFP).unwrap();
    let mapped = pool.alloc(PAGE_SIZE, GFP).unwrap();
    fill(&mut pool, mapped, PAGE_SIZE, 9);
    let m = pool.map(mapped).unwrap();
    pool.map(h).unwrap();
    let leak = Leak {
        pages: 2,
        objects: 2,
    };
    assert_eq!(pool.0.destroy(), Err(leak));
    assert_eq!(src.live(), 2);
    // SAFETY: The mapped object's page was leaked, not freed.
    assert!(unsafe { common::holds(m.as_ptr(), &common::pattern(9, PAGE_SIZE)) });
}

#[test]
fn the_pool_writes_no_page_bytes_while_an_object_is_mapped() {
    let src = TestPages::new();
    let mut pool = pool(&src);
    let a = pool.alloc(chunks(10), GFP).unwrap();
    let b = pool.alloc(chunks(10), GFP).unwrap();
    let c = pool.alloc(chunks(10), GFP).unwrap();
    assert_eq!([a, b, c].map(|h| chunk(&mut pool, h)), [0, 54, 10]);
    // Fill the whole page through `a`, at its start: objects and free
    // chunks alike.
    let page = pool.map(a).unwrap();
    // SAFETY: The test source's page is live, and the pool does not write
    // it while an object of it is mapped (which this test checks).
    unsafe { std::ptr::write_bytes(page.as_ptr(), 0x3c, PAGE_SIZE) };
    let page_bytes = || {
        // SAFETY: As above.
        unsafe { std::slice::from_raw_parts(page.as_ptr(), PAGE_SIZE) }.to_vec()
    };
    let unchanged = page_bytes();
    pool.map(c).unwrap();
    for h in [b, b, a] {
        pool.map(h).unwrap();
        pool.unmap(h).unwrap();
    }
    pool.unmap(a).unwrap();
    // Free chunks 0..10 and 20..54: deferred, `c` is mapped.
    pool.free(a).unwrap();
    pool.free(b).unwrap();
    // Allocations into the pieces (0..10, 20..64) write only the
    // descriptor.
    let d = pool.alloc(chunks(4), GFP).unwrap();
    let e = pool.alloc(chunks(30), GFP).unwrap();
    assert_eq!([d, e].map(|h| chunk(&mut pool, h)), [0, 34]);
    assert_eq!(pool.stats().compactions, 0);
    assert!(page_bytes() == unchanged);
    pool.free(d).unwrap();
    assert!(page_bytes() == unchanged);
    let stats = pool.stats();
    assert_eq!((stats.compactions, stats.compactions_deferred), (0, 3));
    checked(&pool);
    // The unmap compacts, moving 10 chunks: `c` to 0 (or to 24, but the
    // free region between objects is preferred).
    pool.unmap(c).unwrap();
    assert_eq!([c, e].map(|h| chunk(&mut pool, h)), [0, 34]);
    assert_eq!(pool.stats().compactions, 1);
    checked(&pool);
}
