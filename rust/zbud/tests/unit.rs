// SPDX-License-Identifier: GPL-2.0

//! Unit tests: chunk arithmetic, placement, list selection, page
//! accounting, table growth, handle checks, teardown, and the invariant
//! checker (`Pool::check`), which every test runs and which must see a
//! corrupted header or list. Small enough for Miri
//! (`cargo +nightly miri test -p rkm-zbud --test unit`).

mod common;

use common::{addr, check, fill, page_of, TestPages, TestPool, Zbud, GFP};
use rkm_zalloc::testing::scenarios;
use rkm_zbud::*;

/// Checks the pool's invariants.
fn checked(pool: &Zbud<'_>) {
    if let Err(what) = pool.check() {
        panic!("pool invariant broken: {what}");
    }
}

rkm_zalloc::shared_tests!(
    Zbud<'_>;
    most_recently_listed_page_first,
    flags_reach_every_page,
    no_memory_at_any_page,
    reuse_gives_new_handles,
    foreign_and_freed_handles,
    table_grows_a_leaf_at_a_time(255, MAX_ALLOC_SIZE),
    destroying_an_empty_pool_frees_everything(1..600),
    dropping_an_empty_pool_frees_everything,
    destroying_a_live_pool_leaks_its_pages,
    reset_leaks_live_pages_and_renews_the_pool,
);

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
    assert_eq!(MAX_PAGES, 255 << 18);
    assert_eq!(size_to_chunks(MAX_ALLOC_SIZE), 62);
    assert_eq!(size_to_chunks(MAX_ALLOC_SIZE + 1), 63);
}

#[test]
fn size_edges() {
    let src = TestPages::new();
    let mut pool = Zbud::new(&src);
    assert_eq!(pool.alloc(0, GFP), Err(AllocError::Invalid));
    assert_eq!(pool.alloc(MAX_ALLOC_SIZE + 1, GFP), Err(AllocError::TooBig));
    assert_eq!(pool.alloc(PAGE_SIZE, GFP), Err(AllocError::TooBig));
    assert_eq!(pool.alloc(usize::MAX, GFP), Err(AllocError::TooBig));
    assert_eq!(src.allocs.get(), 0);
    let big = pool.alloc(MAX_ALLOC_SIZE, GFP).unwrap();
    fill(&mut pool, big, MAX_ALLOC_SIZE, 1);
    src.fail_all.set(true);
    // The page has one chunk free.
    assert_eq!(pool.alloc(CHUNK_SIZE + 1, GFP), Err(AllocError::NoMemory));
    let small = pool.alloc(CHUNK_SIZE, GFP).unwrap();
    fill(&mut pool, small, CHUNK_SIZE, 2);
    assert_eq!(pool.total_pages(), 1);
    check(&mut pool, big, MAX_ALLOC_SIZE, 1);
    check(&mut pool, small, CHUNK_SIZE, 2);
    let stats = pool.stats();
    assert_eq!(stats.rejected_invalid, 1);
    assert_eq!(stats.rejected_too_big, 3);
    assert_eq!(stats.rejected_no_memory, 1);
    assert_eq!(stats.objects, 2);
    checked(&pool);
}

#[test]
fn first_and_last_placement() {
    let src = TestPages::new();
    let mut pool = Zbud::new(&src);
    for (first, last) in [(1, 63), (64, 65), (65, 1), (chunks(31), chunks(32))] {
        let a = pool.alloc(first, GFP).unwrap();
        let b = pool.alloc(last, GFP).unwrap();
        let page = page_of(addr(&mut pool, a));
        assert_eq!(addr(&mut pool, a), page + ZHDR_SIZE_ALIGNED);
        assert_eq!(page_of(addr(&mut pool, b)), page);
        assert_eq!(
            addr(&mut pool, b) + size_to_chunks(last) * CHUNK_SIZE,
            page + PAGE_SIZE
        );
        fill(&mut pool, a, first, 1);
        fill(&mut pool, b, last, 2);
        check(&mut pool, a, first, 1);
        check(&mut pool, b, last, 2);
        pool.free(a).unwrap();
        pool.free(b).unwrap();
    }
    checked(&pool);
}

#[test]
fn a_page_with_n_free_chunks_takes_up_to_n() {
    for used in 1..=62 {
        scenarios::a_page_takes_up_to_its_free_chunks::<Zbud<'_>>(&TestPages::new(), used, NCHUNKS);
    }
}

#[test]
fn fullest_page_that_fits_is_chosen() {
    let src = TestPages::new();
    // Pages with 23, 18 and 13 free chunks: 15 chunks go to the second, 20
    // to the first.
    let (mut pool, pages) = scenarios::fullest_page_that_fits::<Zbud<'_>>(&src);
    // 1 chunk: the page with 13 free (the others are full).
    let h = pool.alloc(1, GFP).unwrap();
    assert_eq!(page_of(addr(&mut pool, h)), pages[2]);
    assert_eq!(pool.total_pages(), 3);
    assert_eq!(pool.stats().buddied_pages, 3);
    checked(&pool);
}

#[test]
fn at_most_two_buddies_per_page() {
    let src = TestPages::new();
    let mut pool = Zbud::new(&src);
    let handles: Vec<_> = (0..3).map(|_| pool.alloc(1, GFP).unwrap()).collect();
    assert_eq!(pool.total_pages(), 2);
    let stats = pool.stats();
    assert_eq!((stats.buddied_pages, stats.unbuddied_pages), (1, 1));
    assert_eq!(
        page_of(addr(&mut pool, handles[0])),
        page_of(addr(&mut pool, handles[1]))
    );
    assert_ne!(
        page_of(addr(&mut pool, handles[0])),
        page_of(addr(&mut pool, handles[2]))
    );
    checked(&pool);
}

#[test]
fn freeing_both_buddies_returns_the_page() {
    let src = TestPages::new();
    let mut pool = Zbud::new(&src);
    let a = pool.alloc(100, GFP).unwrap();
    let b = pool.alloc(200, GFP).unwrap();
    let page = page_of(addr(&mut pool, a));
    let table = pool.stats().table_pages;
    assert_eq!(table, 3);
    assert_eq!(src.live(), 1 + table);
    pool.free(a).unwrap();
    assert_eq!(pool.total_pages(), 1);
    assert!(src.is_live(page));
    pool.free(b).unwrap();
    assert_eq!(pool.total_pages(), 0);
    assert!(!src.is_live(page));
    // The table went with its last page, its three nodes through the
    // deferred free (readers without the lock may still walk them).
    assert_eq!(src.live(), 0);
    assert_eq!(src.deferred_frees.get(), table);
    assert!(pool.is_empty());
    assert_eq!(pool.stats().unbuddied_pages, 0);
    checked(&pool);
}

#[test]
fn freed_space_coalesces_with_the_slack() {
    let src = TestPages::new();
    let mut pool = Zbud::new(&src);
    let a = pool.alloc(chunks(30), GFP).unwrap();
    let b = pool.alloc(chunks(30), GFP).unwrap();
    let page = page_of(addr(&mut pool, a));
    fill(&mut pool, b, chunks(30), 7);
    pool.free(a).unwrap();
    // 33 chunks are free: 30 of the first buddy and 3 of slack.
    let c = pool.alloc(chunks(33), GFP).unwrap();
    assert_eq!(addr(&mut pool, c), page + ZHDR_SIZE_ALIGNED);
    fill(&mut pool, c, chunks(33), 8);
    check(&mut pool, b, chunks(30), 7);
    pool.free(b).unwrap();
    let d = pool.alloc(chunks(30), GFP).unwrap();
    assert_eq!(addr(&mut pool, d), page + PAGE_SIZE - chunks(30));
    assert_eq!(pool.total_pages(), 1);
    checked(&pool);
}

#[test]
fn total_pages_is_exact() {
    let src = TestPages::new();
    let mut pool = Zbud::new(&src);
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
    checked(&pool);
}

#[test]
fn malformed_and_stale_handles_are_rejected() {
    let src = TestPages::new();
    let mut pool = Zbud::new(&src);
    let a = pool.alloc(100, GFP).unwrap();
    let b = pool.alloc(100, GFP).unwrap();
    let keep = pool.alloc(3000, GFP).unwrap();
    fill(&mut pool, keep, 3000, 42);

    pool.free(a).unwrap();
    assert_eq!(pool.free(a), Err(HandleError::Stale));
    assert_eq!(pool.map(a), Err(HandleError::Stale));
    // `b` is now alone on its page; when it goes, so does its slot.
    pool.free(b).unwrap();
    assert_eq!(pool.free(b), Err(HandleError::Stale));
    // Same tag, slot 2^26 - 256: record 0 of a leaf, never a slot.
    let tag = keep.to_raw() & (0xffff << 48);
    let malformed = Handle::from_raw(tag | ((1 << 26) - 256) << 1);
    assert_eq!(pool.free(malformed), Err(HandleError::Malformed));
    // Slot 2^26 - 1: a slot without leaf, like a freed one.
    let no_leaf = Handle::from_raw(tag | ((1 << 26) - 1) << 1);
    assert_eq!(pool.free(no_leaf), Err(HandleError::Stale));
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
    assert_eq!(pool.stats().bad_handles, 7);
    assert_eq!(pool.stats().objects, 1);
    check(&mut pool, keep, 3000, 42);
    checked(&pool);
}

/// The header of the page whose first buddy is `first`.
fn header_of(pool: &mut Zbud<'_>, first: Handle) -> *mut u8 {
    common::ptr(pool, first).wrapping_sub(ZHDR_SIZE_ALIGNED)
}

/// Sets the `u32` field at `offset` of the page header `header` (`repr(C)`:
/// `prev` at 0, `next` at 4, `chunks` at 8 and 12, `generations` at 16 and
/// 20, `counter` at 24) to `value`; returns the old value.
fn poke(header: *mut u8, offset: usize, value: u32) -> u32 {
    // SAFETY: the header of a live page of the test source, which the pool
    // does not use meanwhile (the test holds it); `offset` is that of a
    // `u32` field, so the address is aligned.
    unsafe {
        let field = header.add(offset).cast::<u32>();
        let old = field.read();
        field.write(value);
        old
    }
}

/// The slot of `handle` (bits 1 to 27).
fn slot_of(handle: Handle) -> u32 {
    (handle.to_raw() >> 1) as u32 & ((1 << 26) - 1)
}

#[test]
fn the_checker_sees_corrupted_headers_and_lists() {
    const PREV: usize = 0;
    const NEXT: usize = 4;
    const FIRST_CHUNKS: usize = 8;
    const LAST_CHUNKS: usize = 12;
    const COUNTER: usize = 24;
    const FIRST_GENERATION: usize = 16;
    let src = TestPages::new();
    let mut pool = Zbud::new(&src);
    // Page B: two buddies (40 and 20 chunks). Page A: one buddy of 2
    // chunks (list 61).
    let b1 = pool.alloc(chunks(40), GFP).unwrap();
    let b2 = pool.alloc(chunks(20), GFP).unwrap();
    let a = pool.alloc(100, GFP).unwrap();
    assert_ne!(page_of(addr(&mut pool, a)), page_of(addr(&mut pool, b1)));
    assert_eq!(page_of(addr(&mut pool, b1)), page_of(addr(&mut pool, b2)));
    checked(&pool);

    // Each corruption is seen, with what it breaks; undoing it repairs the
    // pool.
    let (a_header, b_header) = (header_of(&mut pool, a), header_of(&mut pool, b1));
    let cases: [(*mut u8, usize, u32, &str); 7] = [
        (
            a_header,
            FIRST_CHUNKS,
            3,
            "a page is on the wrong unbuddied list for its free chunks",
        ),
        (
            a_header,
            FIRST_CHUNKS,
            63,
            "a buddy is larger than the largest object",
        ),
        (a_header, FIRST_CHUNKS, 0, "a page without objects"),
        (
            a_header,
            NEXT,
            slot_of(a),
            "an unbuddied list has a bad back link",
        ),
        (
            a_header,
            LAST_CHUNKS,
            5,
            "the count of pages with two buddies does not match the pages",
        ),
        (
            b_header,
            PREV,
            slot_of(a),
            "a page with two buddies has list links",
        ),
        (b_header, FIRST_CHUNKS, 50, "the buddies overlap"),
    ];
    for (header, offset, value, expected) in cases {
        let old = poke(header, offset, value);
        assert_eq!(pool.check(), Err(expected), "field at {offset} = {value}");
        poke(header, offset, old);
        checked(&pool);
    }
    let old = poke(a_header, COUNTER, 1 << 21);
    assert_eq!(pool.check(), Err("a generation is out of range"));
    poke(a_header, COUNTER, old);
    // The header's generation of `a`'s buddy, which its slot's entry has
    // too (for the lockless map).
    let old = poke(a_header, FIRST_GENERATION, old ^ 1);
    assert_eq!(
        pool.check(),
        Err("a slot's entry and its page's header disagree on the buddies")
    );
    poke(a_header, FIRST_GENERATION, old);
    checked(&pool);

    for h in [a, b1, b2] {
        pool.free(h).unwrap();
        checked(&pool);
    }
    assert_eq!(src.live(), 0);
}
