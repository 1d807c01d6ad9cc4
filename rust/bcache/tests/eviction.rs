// SPDX-License-Identifier: GPL-2.0

//! Eviction and the bounds on the work of one call: the victim selection is
//! fair and recency-aware on a cache of a thousand buckets, and no call of
//! the core does work proportional to the cache's size or to the number of
//! extents a range holds (the module makes these calls under a spinlock with
//! interrupts off).

mod common;

use common::*;
use core::cell::Cell;
use rkm_bcache::*;

/// Generation of every bucket: how often each was invalidated.
fn gens(c: &TestCache) -> Vec<u32> {
    (0..c.buckets.count() as u32)
        .map(|b| c.buckets.meta(b).unwrap().gen)
        .collect()
}

/// Fills `len` sectors at `sector` unless they are cached or the fill is
/// refused; returns whether it filled.
fn try_fill(c: &mut TestCache, dev: DevId, sector: u64, len: u64) -> bool {
    match c.read(dev, sector, len, true, &none) {
        ReadPlan::Fill { region, ticket, .. } => {
            c.finish_fill(dev, sector, &region, ticket, true);
            true
        }
        _ => false,
    }
}

#[test]
fn a_long_churn_reuses_every_bucket() {
    const N: usize = 1000;
    let mut c = cache(N, 16);
    let mut rng = Rng(0x1234_5678);
    // Fills of one bucket each over a space eight times the cache, and hits
    // on recent fills, so that buckets have different priorities.
    let mut recent: Vec<u64> = Vec::new();
    let mut step = |c: &mut TestCache, rng: &mut Rng| {
        if !recent.is_empty() && rng.below(10) < 3 {
            let s = recent[rng.below(recent.len() as u64) as usize];
            c.read(0, s, 16, false, &none);
        } else {
            let s = rng.below(8 * N as u64) * 16;
            if try_fill(c, 0, s, 16) {
                recent.push(s);
                if recent.len() > N / 2 {
                    recent.remove(0);
                }
            }
        }
    };
    while c.buckets.stats().invalidated < 10 * N as u64 {
        step(&mut c, &mut rng);
    }
    let before = gens(&c);
    let start = c.buckets.stats().invalidated;
    while c.buckets.stats().invalidated < start + 2000 {
        step(&mut c, &mut rng);
    }
    let after = gens(&c);
    let evicted: Vec<u32> = before.iter().zip(&after).map(|(b, a)| a - b).collect();
    let distinct = evicted.iter().filter(|&&n| n > 0).count();
    let total_min = *after.iter().min().unwrap();
    let total_max = *after.iter().max().unwrap();
    eprintln!(
        "last 2000 evictions hit {distinct} of {N} buckets; over the churn each bucket \
         was reused {total_min} to {total_max} times"
    );
    assert!(
        distinct >= 800,
        "the last 2000 evictions came from {distinct} buckets only"
    );
    assert!(total_min > 0, "a bucket was never reused");
    c.index.check().unwrap();
}

#[test]
fn a_scan_of_the_cache_size_keeps_its_most_recent_quarter() {
    const N: u64 = 1000;
    let mut c = cache(N as usize, 16);
    let mut rng = Rng(42);
    // The cache full of older data, some of it hot.
    for i in 0..N {
        fill(&mut c, 0, i * 16, 16);
    }
    for _ in 0..2 * N {
        c.read(0, rng.below(N) * 16, 16, false, &none);
    }
    // One pass over as much new data as the cache holds.
    let base = 16 * N * 16;
    for i in 0..N {
        try_fill(&mut c, 0, base + i * 16, 16);
    }
    let last_quarter = (3 * N / 4..N)
        .filter(|&i| cached(&mut c, 0, base + i * 16, 16))
        .count();
    eprintln!(
        "after the scan, {last_quarter} of its last {} fills are cached",
        N / 4
    );
    assert_eq!(last_quarter as u64, N / 4);
    c.index.check().unwrap();
}

#[test]
fn an_allocation_visits_a_bounded_number_of_buckets() {
    const N: usize = 200_000;
    let mut c = cache(N, 8);
    for i in 0..N as u64 {
        fill(&mut c, 0, i * 8, 8);
    }
    // The cache is full: the next allocation evicts.
    let calls = Cell::new(0u64);
    let counting = |_: u32| {
        calls.set(calls.get() + 1);
        false
    };
    assert!(c.buckets.alloc(8, &counting).is_some());
    eprintln!("one allocation asked about {} buckets", calls.get());
    assert!(calls.get() <= 256, "{} buckets visited", calls.get());
}

/// `n` stale one-sector extents at the even sectors below `2 * n`.
fn stale_extents(n: u64) -> TestCache {
    let mut c = cache(4, 4096);
    for i in 0..n {
        fill(&mut c, 0, 2 * i, 1);
    }
    assert_eq!(c.index.len() as u64, n);
    // Fill every bucket until the first (that of the extents) is evicted.
    let mut s = 1 << 30;
    while c.buckets.stats().invalidated == 0 {
        fill(&mut c, 1, s, 1024);
        s += 1024;
    }
    c
}

#[test]
fn a_read_over_many_stale_extents_removes_a_bounded_number() {
    let mut c = stale_extents(1000);
    let before = c.index.len();
    // Every piece of this read misses; one planning call may remove only a
    // bounded number of the stale extents it meets.
    let plan = c.read(0, 0, 2000, false, &none);
    assert!(
        matches!(plan, ReadPlan::Miss { len, .. } if len > 0),
        "{plan:?}"
    );
    let removed = before - c.index.len();
    eprintln!("one lookup removed {removed} stale extents");
    assert!(removed <= 64, "one lookup removed {removed} stale extents");
}

#[test]
fn a_huge_discard_invalidates_in_batches() {
    let mut c = cache(8, 4096);
    for i in 0..10_000u64 {
        fill(&mut c, 0, 2 * i, 1);
    }
    let before = c.index.len();
    let _plan = c.begin_write(0, 0, 20_000, false, &none);
    let removed = before - c.index.len();
    eprintln!("begin_write removed {removed} extents in one call");
    assert!(
        removed <= 256,
        "begin_write removed {removed} extents in one call"
    );
}

#[test]
fn contiguous_fills_merge_into_one_extent() {
    let mut c = cache(4, 256);
    for i in 0..8 {
        fill(&mut c, 0, 100 + 8 * i, 8);
    }
    assert_eq!(extents(&c), vec![(0, 100, 64)]);
    c.index.check().unwrap();
}

#[test]
fn a_huge_discard_goes_on_where_it_stopped() {
    let mut c = cache(8, 4096);
    for i in 0..10_000u64 {
        fill(&mut c, 0, 2 * i, 1);
    }
    fill(&mut c, 0, 30_000, 8);
    let (plan, mut more) = c.begin_write(0, 0, 20_000, false, &none);
    let mut calls = 1;
    while let Some(from) = more {
        let before = c.index.len();
        more = c.invalidate_more(0, from, 20_000);
        assert!(before - c.index.len() <= INVALIDATE_BATCH);
        calls += 1;
    }
    assert!(calls >= 10_000 / INVALIDATE_BATCH);
    // Nothing of the range is left; what lies beyond it is.
    assert_eq!(extents(&c), vec![(0, 30_000, 8)]);
    c.finish_write(0, 0, &plan, true);
    c.buckets.check().unwrap();
    c.index.check().unwrap();
}

#[test]
fn the_index_stays_within_its_memory_limit() {
    const LIMIT: usize = 16 << 10;
    let mut c = cache(64, 2048);
    c.index.set_max_bytes(LIMIT);
    let mut rng = Rng(7);
    let mut full = 0;
    let mut seen = c.buckets.stats().invalidated;
    for _ in 0..20_000 {
        // Scattered one-sector fills: no two merge.
        let s = rng.below(1 << 24) * 2;
        if let ReadPlan::Fill { region, ticket, .. } = c.read(0, s, 1, true, &none) {
            if c.finish_fill(0, s, &region, ticket, true)
                == FillOutcome::Dropped(Some(InsertError::IndexFull))
            {
                full += 1;
            }
        }
        // The module's background pass, queued when buckets were evicted.
        if c.buckets.stats().invalidated != seen {
            seen = c.buckets.stats().invalidated;
            let mut cursor = Some(0);
            while let Some(k) = cursor {
                cursor = c.index.gc_step(k, &c.buckets).0;
            }
        }
        // One insert may split a node on every level above its leaf.
        assert!(c.index.memory_bytes() <= LIMIT + 8 * 512);
    }
    let evictions = c.buckets.stats().index_evictions;
    eprintln!(
        "index: {} extents in {} bytes (limit {LIMIT}); {full} fills refused, {evictions} \
         buckets evicted for memory",
        c.index.len(),
        c.index.memory_bytes()
    );
    assert!(full > 0 && evictions > 0);
    assert!(c.index.len() > 100, "the index emptied itself");
    c.buckets.check().unwrap();
    c.index.check().unwrap();
}

#[test]
fn an_insert_over_too_many_stale_extents_is_refused() {
    let mut c = stale_extents(100);
    // A fill of the whole range would have to remove 100 stale extents.
    let r = c.buckets.alloc(256, &none).unwrap();
    let out = c.index.insert(0, 0, &r, &mut c.buckets);
    assert_eq!(out, Err(InsertError::Fragmented));
    // The background pass removes them; then it goes in.
    let mut cursor = Some(0);
    while let Some(k) = cursor {
        cursor = c.index.gc_step(k, &c.buckets).0;
    }
    assert_eq!(c.index.insert(0, 0, &r, &mut c.buckets), Ok(()));
}
