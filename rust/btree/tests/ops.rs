// SPDX-License-Identifier: GPL-2.0

//! Unit tests of every operation and its edge cases. Every test checks the
//! invariants after each step and that no node leaks.

mod common;

use std::ops::Bound;

use common::{DevSector, StdAlloc, TestAlloc};
use rkm_btree::{BTree, Error, Reservation, MAX_HEIGHT};

/// A `u64 -> u64` tree with the smallest nodes, so that few keys make a deep
/// tree (leaves of 5 entries, inner nodes of 6 keys).
type Small<'a> = BTree<u64, u64, &'a TestAlloc, 128>;

fn check<K: Copy + Ord, V: Copy, A: rkm_btree::NodeAlloc, const N: usize>(t: &BTree<K, V, A, N>) {
    t.check_invariants().unwrap();
}

fn entries<A: rkm_btree::NodeAlloc, const N: usize>(t: &BTree<u64, u64, A, N>) -> Vec<(u64, u64)> {
    t.iter().collect()
}

/// Inserts `keys` with value `2 * key`, checking after every insert.
fn fill<A: rkm_btree::NodeAlloc, const N: usize>(
    t: &mut BTree<u64, u64, A, N>,
    keys: impl IntoIterator<Item = u64>,
) {
    for k in keys {
        t.insert(k, 2 * k).unwrap();
        check(t);
    }
}

#[test]
fn geometry() {
    assert_eq!(Small::LEAF_CAPACITY, 5);
    assert_eq!(Small::INNER_CAPACITY, 6);
    assert_eq!(BTree::<u64, u64, StdAlloc>::LEAF_CAPACITY, 29);
    assert_eq!(BTree::<u64, u64, StdAlloc>::INNER_CAPACITY, 30);
    assert_eq!(BTree::<u128, u64, StdAlloc>::LEAF_CAPACITY, 19);
    assert_eq!(BTree::<u128, u64, StdAlloc>::INNER_CAPACITY, 19);
    assert_eq!(BTree::<DevSector, u64, StdAlloc>::LEAF_CAPACITY, 19);
}

#[test]
fn empty_tree() {
    let alloc = TestAlloc::new();
    let mut t = Small::new(&alloc);
    check(&t);
    assert!(t.is_empty());
    assert_eq!(
        (t.len(), t.height(), t.node_count(), t.memory_bytes()),
        (0, 0, 0, 0)
    );
    assert_eq!(t.get(&1), None);
    assert_eq!(t.get_mut(&1), None);
    assert_eq!(t.update(&1, 1), None);
    assert_eq!(t.remove(&1), None);
    assert_eq!((t.first(), t.last()), (None, None));
    assert_eq!(
        (t.get_le(&1), t.get_lt(&1), t.get_ge(&1), t.get_gt(&1)),
        (None, None, None, None)
    );
    assert_eq!(t.iter().count() + t.iter_back().count(), 0);
    assert_eq!(
        t.iter_from(&0).count() + t.iter_back_from(&u64::MAX).count(),
        0
    );
    assert_eq!(t.lower_bound(Bound::Unbounded).get(), None);
    t.clear();
    t.drain(|_, _| panic!("drained an empty tree"));
    check(&t);
    assert_eq!(alloc.allocs.get(), 0, "an empty tree allocates nothing");
}

#[test]
fn single_leaf() {
    let alloc = TestAlloc::new();
    let mut t = Small::new(&alloc);
    fill(&mut t, [30, 10, 20]);
    assert_eq!((t.len(), t.height(), t.node_count()), (3, 1, 1));
    assert_eq!(entries(&t), [(10, 20), (20, 40), (30, 60)]);
    assert_eq!(t.get(&20), Some(40));
    assert_eq!(t.get(&25), None);
    assert_eq!(t.insert(20, 0), Err(Error::Duplicate));
    assert_eq!(t.get(&20), Some(40));
    assert_eq!(t.update(&20, 7), Some(40));
    *t.get_mut(&30).unwrap() += 1;
    assert_eq!(entries(&t), [(10, 20), (20, 7), (30, 61)]);
    assert_eq!(t.remove(&20), Some(7));
    assert_eq!(t.remove(&20), None);
    assert_eq!(t.remove(&10), Some(20));
    assert_eq!(t.remove(&30), Some(61));
    check(&t);
    assert_eq!((t.height(), t.node_count()), (0, 0));
    drop(t);
    alloc.assert_no_leaks();
}

#[test]
fn splits_at_every_level_and_merges_back() {
    let alloc = TestAlloc::new();
    {
        let mut t = Small::new(&alloc);
        let mut heights = vec![];
        for k in 0..3000u64 {
            // Scatter the keys so that splits happen everywhere.
            let k = k.wrapping_mul(0x9e37_79b9) % 100_003;
            t.insert(k, k).unwrap();
            if k % 7 == 0 {
                check(&t);
            }
            if heights.last() != Some(&t.height()) {
                heights.push(t.height());
            }
        }
        check(&t);
        assert_eq!(heights, (1..=heights.len()).collect::<Vec<_>>());
        assert!(t.height() >= 5, "height {}", t.height());
        assert_eq!(t.memory_bytes(), alloc.live_bytes.get());
        // Remove everything: merges at every level shrink the height to 0.
        let keys: Vec<u64> = t.iter().map(|(k, _)| k).collect();
        let mut heights = vec![t.height()];
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(t.remove(k), Some(*k));
            if i % 7 == 0 || t.len() < 100 {
                check(&t);
            }
            if heights.last() != Some(&t.height()) {
                heights.push(t.height());
            }
        }
        assert_eq!(heights, (0..heights.len()).rev().collect::<Vec<_>>());
        assert_eq!(alloc.live(), 0);
    }
    alloc.assert_no_leaks();
}

#[test]
fn sequential_inserts_fill_nodes() {
    let alloc = TestAlloc::new();
    let mut t: BTree<u64, u64, &TestAlloc> = BTree::new(&alloc);
    let n = 100_000u64;
    for k in 0..n {
        t.insert(k, k).unwrap();
    }
    check(&t);
    let leaves = n.div_ceil(BTree::<u64, u64, StdAlloc>::LEAF_CAPACITY as u64) as usize;
    // All leaves but the last two are full, inner nodes nearly so.
    assert!(
        t.node_count() <= leaves + leaves / 25 + 4,
        "{} nodes",
        t.node_count()
    );
    // Descending too.
    let mut d: BTree<u64, u64, &TestAlloc> = BTree::new(&alloc);
    for k in (0..n).rev() {
        d.insert(k, k).unwrap();
    }
    check(&d);
    assert!(
        d.node_count() <= leaves + leaves / 25 + 4,
        "{} nodes",
        d.node_count()
    );
    drop((t, d));
    alloc.assert_no_leaks();
}

#[test]
fn duplicate_insert_leaves_tree_unchanged() {
    let alloc = TestAlloc::new();
    let mut t = Small::new(&alloc);
    fill(&mut t, (0..200).map(|k| k * 3));
    let before = entries(&t);
    let nodes = t.node_count();
    for k in (0..200).map(|k| k * 3) {
        assert_eq!(t.insert(k, 1), Err(Error::Duplicate));
    }
    check(&t);
    assert_eq!(entries(&t), before);
    assert_eq!(t.node_count(), nodes);
    assert_eq!(alloc.live(), nodes);
}

#[test]
fn neighbours_at_both_ends_and_between() {
    let alloc = TestAlloc::new();
    let mut t = Small::new(&alloc);
    fill(&mut t, (1..=100).map(|k| k * 10));
    assert_eq!(t.first(), Some((10, 20)));
    assert_eq!(t.last(), Some((1000, 2000)));
    // Below the first key.
    assert_eq!(t.get_le(&5), None);
    assert_eq!(t.get_lt(&10), None);
    assert_eq!(t.get_le(&10), Some((10, 20)));
    assert_eq!(t.get_ge(&0), Some((10, 20)));
    assert_eq!(t.get_gt(&5), Some((10, 20)));
    // Above the last key.
    assert_eq!(t.get_ge(&1001), None);
    assert_eq!(t.get_gt(&1000), None);
    assert_eq!(t.get_ge(&1000), Some((1000, 2000)));
    assert_eq!(t.get_le(&u64::MAX), Some((1000, 2000)));
    assert_eq!(t.get_lt(&u64::MAX), Some((1000, 2000)));
    // Between keys and on keys, across every leaf boundary.
    for k in 1..100u64 {
        let (a, b) = (k * 10, k * 10 + 10);
        for probe in a + 1..b {
            assert_eq!(t.get_le(&probe), Some((a, 2 * a)));
            assert_eq!(t.get_lt(&probe), Some((a, 2 * a)));
            assert_eq!(t.get_ge(&probe), Some((b, 2 * b)));
            assert_eq!(t.get_gt(&probe), Some((b, 2 * b)));
        }
        assert_eq!(t.get_lt(&b), Some((a, 2 * a)));
        assert_eq!(t.get_gt(&a), Some((b, 2 * b)));
    }
}

#[test]
fn neighbours_after_removals_leave_stale_separators() {
    // Separators in inner nodes may name removed keys; searches must not
    // depend on them being present.
    let alloc = TestAlloc::new();
    let mut t = Small::new(&alloc);
    fill(&mut t, 0..500);
    for k in (0..500).filter(|k| k % 5 != 0) {
        t.remove(&k).unwrap();
        check(&t);
    }
    for probe in 0..520u64 {
        let below = (probe / 5 * 5).min(495);
        assert_eq!(t.get_le(&probe).map(|e| e.0), Some(below));
        let above = probe.div_ceil(5) * 5;
        assert_eq!(
            t.get_ge(&probe).map(|e| e.0),
            (above < 500).then_some(above)
        );
    }
}

#[test]
fn iteration_from_absent_keys_both_ways() {
    let alloc = TestAlloc::new();
    let mut t = Small::new(&alloc);
    fill(&mut t, (0..300).map(|k| k * 2 + 1));
    let all = entries(&t);
    for probe in 0..605u64 {
        let fwd: Vec<_> = t.iter_from(&probe).collect();
        let expect: Vec<_> = all.iter().copied().filter(|e| e.0 >= probe).collect();
        assert_eq!(fwd, expect);
        let back: Vec<_> = t.iter_back_from(&probe).collect();
        let expect: Vec<_> = all.iter().rev().copied().filter(|e| e.0 <= probe).collect();
        assert_eq!(back, expect);
    }
    assert!(t.iter_back().eq(all.iter().rev().copied()));
}

#[test]
fn cursor_moves_both_ways() {
    let alloc = TestAlloc::new();
    let mut t = Small::new(&alloc);
    fill(&mut t, (0..50).map(|k| k * 10));
    // "Every entry overlapping [a, b)": start at the predecessor of a.
    let mut c = t.upper_bound(Bound::Included(&123));
    assert_eq!(c.get(), Some((120, 240)));
    c.move_next();
    assert_eq!(c.get(), Some((130, 260)));
    c.move_prev();
    c.move_prev();
    assert_eq!(c.get(), Some((110, 220)));
    let mut c = t.lower_bound(Bound::Excluded(&490));
    assert_eq!(c.get(), None);
    c.move_prev();
    assert_eq!(c.get(), None, "a cursor past the end stays there");
    let mut c = t.lower_bound(Bound::Unbounded);
    c.move_prev();
    assert_eq!(c.get(), None);
    let mut c = t.upper_bound(Bound::Excluded(&0));
    assert_eq!(c.get(), None);
    let mut c2 = t.upper_bound(Bound::Unbounded);
    let mut walked = vec![];
    while let Some(e) = c2.get() {
        walked.push(e.0);
        c2.move_prev();
    }
    assert_eq!(walked, (0..50).rev().map(|k| k * 10).collect::<Vec<_>>());
    c.move_next();
    assert_eq!(c.get(), None);
}

#[test]
fn allocation_failure_at_every_point_leaves_tree_unchanged() {
    let alloc = TestAlloc::new();
    {
        let mut t = Small::new(&alloc);
        // Ascending keys make splits cascade up to the root.
        for k in 0..2000u64 {
            let before_nodes = t.node_count();
            // Fail the first, second, ... allocation of this insert until it
            // goes through.
            for nth in 0.. {
                alloc.fail_nth.set(Some(nth));
                match t.insert(k, k) {
                    Ok(()) => break,
                    Err(e) => {
                        assert_eq!(e, Error::NoMemory);
                        assert_eq!(t.node_count(), before_nodes);
                        assert_eq!(t.len(), k as usize);
                        assert_eq!(t.get(&k), None);
                        assert_eq!(alloc.live(), before_nodes);
                        if k % 50 == 0 {
                            check(&t);
                        }
                    }
                }
            }
            alloc.fail_nth.set(None);
        }
        check(&t);
        assert!(alloc.failures.get() > 300);
        // Removal never allocates.
        alloc.fail_all.set(true);
        for k in 0..2000u64 {
            assert_eq!(t.remove(&k), Some(k));
        }
        check(&t);
        alloc.fail_all.set(false);
    }
    alloc.assert_no_leaks();
}

#[test]
fn reservation_makes_insert_infallible() {
    let alloc = TestAlloc::new();
    {
        let mut t = Small::new(&alloc);
        let mut res = Reservation::new(&alloc);
        assert!(res.is_empty());
        for k in 0..3000u64 {
            t.reserve_for_insert(&mut res).unwrap();
            assert!(res.len() > t.height());
            // "Under the lock": the allocator fails everything.
            alloc.fail_all.set(true);
            t.insert_reserved(k, k, &mut res).unwrap();
            assert_eq!(t.insert_reserved(k, k, &mut res), Err(Error::Duplicate));
            alloc.fail_all.set(false);
            if k % 100 == 0 {
                check(&t);
            }
        }
        check(&t);
        assert_eq!(alloc.live(), t.node_count() + res.len());
        res.release();
        assert!(res.is_empty());
        assert_eq!(alloc.live(), t.node_count());
        // Dropping a reservation frees its nodes too.
        let mut res2 = Reservation::<_, 128>::new(&alloc);
        res2.fill(usize::MAX).unwrap();
        assert_eq!(res2.len(), Reservation::<&TestAlloc, 128>::CAPACITY);
        assert_eq!(res2.len(), MAX_HEIGHT);
        drop(res2);
        assert_eq!(alloc.live(), t.node_count());
        // A failing fill keeps what it got.
        let mut res3 = Reservation::<_, 128>::new(&alloc);
        alloc.fail_nth.set(Some(2));
        assert_eq!(res3.fill(5), Err(Error::NoMemory));
        assert_eq!(res3.len(), 2);
        // A short reservation falls back to the allocator.
        let mut empty = Reservation::new(&alloc);
        t.insert_reserved(1 << 40, 0, &mut empty).unwrap();
        alloc.fail_all.set(true);
        let mut k = 1 << 41;
        let err = loop {
            // Eventually an insert needs a node the reservation lacks.
            match t.insert_reserved(k, 0, &mut empty) {
                Ok(()) => k += 1,
                Err(e) => break e,
            }
        };
        assert_eq!(err, Error::NoMemory);
        assert_eq!(t.get(&k), None);
        alloc.fail_all.set(false);
        check(&t);
    }
    alloc.assert_no_leaks();
}

#[test]
fn merge_moves_entries_and_keeps_duplicates_in_other() {
    let alloc = TestAlloc::new();
    {
        let mut a = Small::new(&alloc);
        let mut b = Small::new(&alloc);
        fill(&mut a, (0..300).map(|k| k * 2));
        for k in (0..300).map(|k| k * 3) {
            b.insert(k, 1).unwrap();
        }
        a.merge(&mut b).unwrap();
        check(&a);
        check(&b);
        // Keys in both stay in `b` with b's value; `a` keeps its own.
        let dups: Vec<_> = (0..300)
            .map(|k| k * 3)
            .filter(|k| k % 2 == 0 && *k < 600)
            .collect();
        assert_eq!(b.iter().map(|e| e.0).collect::<Vec<_>>(), dups);
        assert!(b.iter().all(|e| e.1 == 1));
        for k in 0..900u64 {
            let expect = if k % 2 == 0 && k < 600 {
                Some(2 * k)
            } else if k % 3 == 0 {
                Some(1)
            } else {
                None
            };
            assert_eq!(a.get(&k), expect, "key {k}");
        }
        // Merging into an empty tree takes the nodes over.
        let mut empty = Small::new(&alloc);
        let nodes = a.node_count();
        let allocs = alloc.allocs.get();
        empty.merge(&mut a).unwrap();
        assert!(a.is_empty());
        assert_eq!(empty.node_count(), nodes);
        assert_eq!(alloc.allocs.get(), allocs);
        check(&empty);
        check(&a);
    }
    alloc.assert_no_leaks();
}

#[test]
fn merge_with_allocation_failure_loses_nothing() {
    let alloc = TestAlloc::new();
    {
        let mut a = Small::new(&alloc);
        let mut b = Small::new(&alloc);
        fill(&mut a, (0..100).map(|k| k * 2));
        fill(&mut b, (0..400).map(|k| k * 2 + 1));
        let mut expect: Vec<_> = a.iter().chain(b.iter()).collect();
        expect.sort();
        alloc.fail_nth.set(Some(20));
        assert_eq!(a.merge(&mut b), Err(Error::NoMemory));
        check(&a);
        check(&b);
        assert_eq!(a.len() + b.len(), 500);
        assert!(!b.is_empty() && a.len() > 100);
        let mut all: Vec<_> = a.iter().chain(b.iter()).collect();
        all.sort();
        assert_eq!(all, expect);
        // Retrying finishes the job.
        a.merge(&mut b).unwrap();
        assert!(b.is_empty());
        assert_eq!(entries(&a), expect);
    }
    alloc.assert_no_leaks();
}

#[test]
fn drain_visits_in_order_and_frees_everything() {
    let alloc = TestAlloc::new();
    let mut t = Small::new(&alloc);
    fill(&mut t, (0..1000).rev());
    let mut seen = vec![];
    t.drain(|k, v| seen.push((k, v)));
    assert_eq!(seen, (0..1000).map(|k| (k, 2 * k)).collect::<Vec<_>>());
    check(&t);
    assert_eq!(alloc.live(), 0);
    // The tree is usable afterwards.
    fill(&mut t, 0..10);
    t.clear();
    assert_eq!(alloc.live(), 0);
    drop(t);
    alloc.assert_no_leaks();
}

#[test]
fn drop_frees_all_nodes() {
    let alloc = TestAlloc::new();
    {
        let mut t = Small::new(&alloc);
        fill(&mut t, 0..777);
        assert!(alloc.live() > 100);
    }
    alloc.assert_no_leaks();
}

#[test]
fn wide_keys() {
    let alloc = TestAlloc::new();
    {
        let mut t: BTree<u128, u64, &TestAlloc, 256> = BTree::new(&alloc);
        for i in 0..2000u64 {
            let k = (u128::from(i % 4) << 100) | u128::from(i);
            t.insert(k, i).unwrap();
        }
        check(&t);
        assert_eq!(t.first(), Some((0, 0)));
        assert_eq!(t.last().map(|e| e.1), Some(1999));
        assert_eq!(t.get_le(&(1u128 << 100)), Some((1996, 1996)));
        assert_eq!(
            t.get_ge(&((1u128 << 100) + 2)),
            Some(((1u128 << 100) | 5, 5))
        );

        let mut d: BTree<DevSector, u32, &TestAlloc> = BTree::new(&alloc);
        for dev in 0..3u32 {
            for s in 0..500u64 {
                d.insert(DevSector { dev, sector: s * 8 }, dev * 1000 + s as u32)
                    .unwrap();
            }
        }
        check(&d);
        let covering = d.get_le(&DevSector { dev: 1, sector: 13 });
        assert_eq!(covering, Some((DevSector { dev: 1, sector: 8 }, 1001)));
        let overlapping: Vec<_> = d
            .iter_from(&DevSector { dev: 1, sector: 8 })
            .take_while(|(k, _)| *k < DevSector { dev: 1, sector: 40 })
            .map(|(k, _)| k.sector)
            .collect();
        assert_eq!(overlapping, [8, 16, 24, 32]);
        assert_eq!(
            d.get_lt(&DevSector { dev: 1, sector: 0 }).map(|e| e.0),
            Some(DevSector {
                dev: 0,
                sector: 499 * 8
            })
        );
    }
    alloc.assert_no_leaks();
}

#[test]
fn zero_sized_values_make_a_set() {
    let mut t: BTree<u64, (), StdAlloc> = BTree::new(StdAlloc);
    for k in (0..1000).rev() {
        t.insert(k, ()).unwrap();
    }
    check(&t);
    assert_eq!(
        t.iter().map(|e| e.0).collect::<Vec<_>>(),
        (0..1000).collect::<Vec<_>>()
    );
}

#[test]
fn tree_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}
    assert_send_sync::<BTree<u64, u64, StdAlloc>>();
    assert_send::<Reservation<StdAlloc>>();
}
