// SPDX-License-Identifier: GPL-2.0

//! Tests of the shared pieces: handle packing, the slot table (growth,
//! failures, slot reuse, leaves that go, generations, teardown, a model
//! test), the error helpers.

use std::ptr::NonNull;

use rkm_zalloc::testing::{TestPages, GFP};
use rkm_zalloc::*;

/// zbud's and z3fold's handles.
type Zbud = Handle<1, 27, 20>;
type Z3fold = Handle<2, 25, 16>;

#[test]
fn handles_pack_and_unpack() {
    let h = Z3fold::new(0xbeef, 0x1234, 0x1ab_cdef, 2);
    assert_eq!(
        h.to_raw(),
        0xbeef << 48 | 0x1234 << 27 | 0x1ab_cdef << 2 | 2,
        "{:#x}",
        h.to_raw()
    );
    assert_eq!(
        h.fields(),
        HandleFields {
            tag: 0xbeef,
            generation: 0x1234,
            slot: 0x1ab_cdef,
            index: 2,
            spare: 0
        }
    );
    assert_eq!(Z3fold::from_raw(h.to_raw()), h);
    // Fields are truncated to their widths.
    let h = Z3fold::new(1, 0x1_0005, 1 << 25 | 7, 5);
    assert_eq!(
        (h.fields().generation, h.fields().slot, h.fields().index),
        (5, 7, 1)
    );
    // Spare bits: z3fold has 5, zbud none.
    let f = Z3fold::from_raw(1 << 43 | 1 << 47).fields();
    assert_eq!((f.spare, f.generation, f.tag), (0b10001, 0, 0));
    let f = Zbud::from_raw(u64::MAX).fields();
    assert_eq!(
        (f.tag, f.generation, f.slot, f.index, f.spare),
        (0xffff, (1 << 20) - 1, (1 << 27) - 1, 1, 0)
    );
    assert_eq!(Z3fold::GENERATION_MASK, 0xffff);
    assert_eq!(Z3fold::next_generation(0xffff), 0);
    assert_eq!(Zbud::next_generation(7), 8);
    assert_eq!(Zbud::next_generation((1 << 20) - 1), 0);
}

#[test]
fn pool_tags_are_never_zero() {
    // Past a wrap (but under Miri, which is slow).
    let n = if cfg!(miri) { 1000 } else { 70_000 };
    let tags: Vec<u16> = (0..n).map(|_| new_pool_tag()).collect();
    assert!(tags.iter().all(|&t| t != 0));
    assert!(
        cfg!(miri) || tags.windows(2).any(|w| w[1] < w[0]),
        "tags wrap"
    );
}

/// A 64-byte record: 64 per leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(64))]
struct Rec {
    page: Option<NonNull<u8>>,
    next: u32,
    generation: u32,
    value: u64,
}

// SAFETY: Test pages may be used from any thread.
unsafe impl Send for Rec {}

impl Record for Rec {
    fn occupied(page: NonNull<u8>, generation: u32) -> Self {
        Rec {
            page: Some(page),
            next: NO_SLOT,
            generation,
            value: 0,
        }
    }

    fn vacant(next: u32, generation: u32) -> Self {
        Rec {
            page: None,
            next,
            generation,
            value: 0,
        }
    }

    fn page(&self) -> Option<NonNull<u8>> {
        self.page
    }

    /// A record without page but with a value is a pageless occupied
    /// slot's.
    fn vacancy(&self) -> Option<(u32, u32)> {
        (self.page.is_none() && self.value == 0).then_some((self.next, self.generation))
    }
}

// SAFETY: `page` reads `page`, `vacancy` reads `next` only for a record
// without page and value (a free slot's): for an occupied record, neither
// depends on `next`, the body.
unsafe impl HasBody for Rec {
    type Body = u32;

    unsafe fn body_of(at: NonNull<Self>) -> NonNull<u32> {
        // SAFETY: The caller's: `at` points to a record; the projection
        // reads nothing.
        unsafe { NonNull::new_unchecked(core::ptr::addr_of_mut!((*at.as_ptr()).next)) }
    }
}

type Table<'a> = RadixTable<Rec, &'a TestPages>;

/// Inserts a page and sets its record's value.
fn insert(table: &mut Table<'_>, value: u64) -> Result<(u32, u32), AllocError> {
    let (slot, generation, page) = table.insert_page(GFP)?;
    assert_eq!(table.get(slot).unwrap().page, Some(page));
    assert!(table.update(slot, |r| r.value = value));
    Ok((slot, generation))
}

#[test]
fn geometry() {
    assert_eq!(Table::RECORDS, 64);
    assert_eq!(Table::SLOT_BITS, 9 + 9 + 6);
    assert_eq!(Table::SLOTS, 1 << 24);
    assert_eq!(Table::CAPACITY, 63 << 18);
    assert_eq!(slot_bits(8), 27);
    assert_eq!(slot_bits(32), 25);
}

/// The slot of record `i` of leaf `leaf` of a [`Table`].
fn slot(leaf: u32, i: u32) -> u32 {
    leaf << 6 | i
}

#[test]
fn slots_fill_the_first_leaf_with_room_and_keep_generations() {
    let src = TestPages::new();
    let mut table = Table::new(&src);
    assert_eq!((table.get(0), table.get(1)), (None, None));
    for i in 1..11 {
        assert_eq!(insert(&mut table, 100 + u64::from(i)), Ok((i, 0)));
    }
    assert_eq!(table.node_pages(), 3);
    assert_eq!(table.free_slots(), 63 - 10);
    assert_eq!(table.slot_limit(), 64);
    assert_eq!(src.live(), 3 + 10);
    assert_eq!(table.get(3).unwrap().value, 103);
    // Record 0 is the leaf's header; slot 11 is free.
    assert_eq!(table.get(0), None);
    assert_eq!(table.get(11).unwrap().vacancy(), Some((12, 0)));
    assert_eq!(table.get(64), None);
    assert_eq!(table.get(u32::MAX), None);
    // Updates keep the page.
    let page = table.get(3).unwrap().page;
    assert!(!table.update(3, |r| r.page = None));
    assert!(!table.update(3, |r| r.page = Some(NonNull::dangling())));
    assert_eq!(table.get(3).unwrap().page, page);
    assert!(!table.update(11, |r| r.value = 1), "free");
    assert!(!table.update(0, |r| r.value = 1), "the header");
    assert!(table.remove_page(3, 41));
    assert!(!table.remove_page(3, 41), "already free");
    assert!(!table.update(3, |r| r.value = 1), "free");
    assert!(table.remove_page(7, 42));
    assert!(!table.remove_page(12, 1), "never taken");
    assert!(!table.remove_page(0, 1), "the header");
    assert_eq!(table.check(), Ok(63 - 8));
    assert_eq!(src.live(), 3 + 8);
    // Last freed first within the leaf, with the generations they kept.
    assert_eq!(table.get(7).unwrap().vacancy(), Some((3, 42)));
    assert_eq!(insert(&mut table, 7), Ok((7, 42)));
    assert_eq!(insert(&mut table, 3), Ok((3, 41)));
    assert_eq!(table.get(7).unwrap().generation, 42);
    assert_eq!(insert(&mut table, 11), Ok((11, 0)));
    table.clear();
    // The pages in the slots are left alone.
    assert_eq!(src.live(), 11);
    assert_eq!((table.node_pages(), table.free_slots()), (0, 0));
    assert_eq!(table.get(1), None);
    assert_eq!(table.check(), Ok(0));
}

#[test]
fn the_first_leaf_with_room_fills_first_and_empty_leaves_go() {
    let src = TestPages::new();
    let mut table = Table::new(&src);
    // Three leaves.
    let mut taken = Vec::new();
    for n in 0..3 * 63 {
        taken.push(insert(&mut table, n).unwrap());
    }
    assert_eq!(taken.last().map(|t| t.0), Some(slot(2, 63)));
    assert_eq!((table.node_pages(), table.free_slots()), (2 + 3, 0));
    // Free slots in the last leaf, then in the first: the first gets the
    // next page.
    assert!(table.remove_page(slot(2, 5), 9));
    assert!(table.remove_page(slot(0, 30), 8));
    assert_eq!(table.check(), Ok(2));
    assert_eq!(insert(&mut table, 1), Ok((slot(0, 30), 8)));
    assert_eq!(insert(&mut table, 1), Ok((slot(2, 5), 9)));
    // Empty the middle leaf: it goes, and the slots of its place are none.
    for i in 1..64 {
        assert!(table.remove_page(slot(1, i), 1));
    }
    assert_eq!((table.node_pages(), table.free_slots()), (2 + 2, 0));
    assert_eq!(table.get(slot(1, 1)), None);
    assert!(!table.remove_page(slot(1, 1), 1), "its leaf is gone");
    assert_eq!(table.check(), Ok(0));
    assert_eq!(table.slot_limit(), slot(3, 0));
    // A full table grows in the first place without a leaf, with a new
    // first generation.
    let (s, generation, _) = table.insert_page(GFP).unwrap();
    assert_eq!(s, slot(1, 1));
    assert_ne!(generation, 0);
    assert_eq!(
        table.get(slot(1, 2)).unwrap().vacancy(),
        Some((slot(1, 3), generation))
    );
    assert_eq!(table.node_pages(), 2 + 3);
    // Emptying every leaf frees the whole table, which keeps its tag.
    let tag = table.tag();
    assert!(table.remove_page(s, 0));
    for &(s, _) in &taken {
        let _ = table.remove_page(s, 0);
    }
    assert_eq!((table.node_pages(), table.free_slots()), (0, 0));
    assert_eq!(table.check(), Ok(0));
    assert_eq!((src.live(), table.tag()), (0, tag));
    assert_eq!(insert(&mut table, 1).map(|t| t.0), Ok(1));
    table.clear();
    assert_eq!(src.live(), 1);
}

#[test]
fn pageless_slots_free_their_page_and_stay_taken_until_vacated() {
    let src = TestPages::new();
    let mut table = Table::new(&src);
    for i in 0..3 {
        insert(&mut table, 100 + i).unwrap();
    }
    let pageless = Rec {
        page: None,
        next: 0,
        generation: 0,
        value: 9,
    };
    let vacant = Rec::vacant(NO_SLOT, 0);
    assert_eq!(src.live(), 3 + 3);
    assert!(!table.release_page(2, vacant), "a free slot's record");
    assert!(!table.release_page(2, Rec::occupied(NonNull::dangling(), 0)));
    assert!(table.release_page(2, pageless));
    assert_eq!(src.live(), 3 + 2);
    assert!(!table.release_page(2, pageless), "no page left");
    assert!(!table.remove_page(2, 5), "no page to free");
    assert!(!table.update(2, |r| r.value = 1), "pageless records stay");
    assert_eq!(table.get(2), Some(&pageless));
    // Taken: a new page gets a new slot.
    assert_eq!(insert(&mut table, 103), Ok((4, 0)));
    assert!(!table.vacate(1, 5), "has a page");
    assert!(!table.vacate(9, 5), "never taken");
    assert!(!table.vacate(0, 5), "the header");
    assert!(table.vacate(2, 5));
    assert!(!table.vacate(2, 5), "already free");
    assert_eq!(table.check(), Ok(63 - 3));
    assert_eq!(src.live(), 3 + 3);
    assert_eq!(insert(&mut table, 104), Ok((2, 5)));
    // A leaf whose last occupied slot is pageless stays until it is vacated.
    for s in [1, 3, 4] {
        assert!(table.remove_page(s, 0));
    }
    assert!(table.release_page(2, pageless));
    assert_eq!((src.live(), table.node_pages()), (3, 3));
    assert!(table.vacate(2, 0));
    assert_eq!((src.live(), table.node_pages()), (0, 0));
    table.clear();
}

/// A record without a page, holding `value`.
fn pageless(value: u64) -> Rec {
    Rec {
        page: None,
        next: 0,
        generation: 0,
        value,
    }
}

/// Records without pages: taken with `insert_record`, changed with
/// `update_pageless`, freed with `vacate`; a record with a page or a free
/// slot's is refused and the slot stays free.
#[test]
fn records_without_pages() {
    let src = TestPages::new();
    let mut table = Table::new(&src);
    let (a, ga) = table.insert_record(GFP, |_, _| pageless(7)).unwrap();
    assert_eq!((a, ga), (1, 0));
    assert_eq!(src.live(), 3, "the table's nodes only");
    assert_eq!(
        table.insert_record(GFP, |_, g| Rec::vacant(NO_SLOT, g)),
        Err(AllocError::NoMemory)
    );
    assert_eq!(
        table.insert_record(GFP, |_, g| Rec::occupied(NonNull::dangling(), g)),
        Err(AllocError::NoMemory)
    );
    assert_eq!(table.check(), Ok(62));
    let (b, _) = table.insert_record(GFP, |_, _| pageless(8)).unwrap();
    assert_eq!(b, 2, "the refused records left their slot free");
    assert!(table.update_pageless(a, |r| r.value = 70));
    assert_eq!(table.get(a).unwrap().value, 70);
    assert!(!table.update_pageless(a, |r| r.value = 0), "would free it");
    assert!(!table.update_pageless(a, |r| r.page = Some(NonNull::dangling())));
    assert_eq!(table.get(a).unwrap().value, 70);
    assert!(!table.update_pageless(9, |r| r.value = 1), "never taken");
    let (c, _, _) = table.insert_page(GFP).unwrap();
    assert!(!table.update_pageless(c, |r| r.value = 1), "has a page");
    assert!(table.remove_page(c, 0));
    assert!(table.vacate(a, 3) && table.vacate(b, 0));
    assert_eq!((src.live(), table.node_pages()), (0, 0));
    // A full table that cannot grow refuses, unchanged.
    src.fail_all.set(true);
    assert_eq!(
        table.insert_record(GFP, |_, _| pageless(1)),
        Err(AllocError::NoMemory)
    );
    src.fail_all.set(false);
    assert_eq!(table.check(), Ok(0));
}

/// `body_mut_if` lends an occupied record's body when the check holds, in
/// place; never a free slot's, a header's or a slot without leaf.
#[test]
fn bodies_lent_after_a_check() {
    let src = TestPages::new();
    let mut table = Table::new(&src);
    let (a, _, _) = table.insert_page(GFP).unwrap();
    let (b, _) = table
        .insert_record(GFP, |_, g| Rec {
            page: None,
            next: 0,
            generation: g,
            value: 5,
        })
        .unwrap();
    *table.body_mut_if(a, |r| r.page.is_some()).unwrap() = 11;
    *table.body_mut_if(b, |r| r.value == 5).unwrap() = 12;
    assert_eq!(
        (table.get(a).unwrap().next, table.get(b).unwrap().next),
        (11, 12)
    );
    assert!(table.body_mut_if(b, |r| r.value == 6).is_none(), "refused");
    assert!(table.body_mut_if(3, |_| true).is_none(), "a free slot");
    assert!(table.body_mut_if(0, |_| true).is_none(), "the header");
    assert!(table.body_mut_if(1 << 20, |_| true).is_none(), "no leaf");
    assert!(table.vacate(b, 1));
    assert!(table.body_mut_if(b, |_| true).is_none(), "vacated");
    assert!(table.remove_page(a, 1));
    assert_eq!(table.check(), Ok(0));
    table.clear();
}

/// `insert_record` tells `make` the slot it fills; `vacate_if` frees a
/// pageless record only when its check gives a generation, returns the
/// record it had, and never frees a page's slot, a free slot or a header.
#[test]
fn records_checked_and_vacated_in_one_walk() {
    let src = TestPages::new();
    let mut table = Table::new(&src);
    let mut told = None;
    let (a, _) = table
        .insert_record(GFP, |slot, _| {
            told = Some(slot);
            pageless(u64::from(slot) + 40)
        })
        .unwrap();
    assert_eq!(told, Some(a));
    let tagged = u64::from(a) + 40;
    assert_eq!(table.get(a).unwrap().value, tagged, "made knowing its slot");
    let (p, _, _) = table.insert_page(GFP).unwrap();
    assert_eq!(table.vacate_if(a, |r| (r.value == 0).then_some(1)), None);
    assert_eq!(table.get(a).unwrap().value, tagged, "refused: unchanged");
    assert_eq!(table.vacate_if(p, |_| Some(1)), None, "has a page");
    assert_eq!(table.vacate_if(9, |_| Some(1)), None, "a free slot");
    assert_eq!(table.vacate_if(0, |_| Some(1)), None, "the header");
    assert_eq!(table.vacate_if(1 << 20, |_| Some(1)), None, "no leaf");
    let had = table.vacate_if(a, |r| (r.value == tagged).then_some(5));
    assert_eq!(had.map(|r| r.value), Some(tagged));
    assert_eq!(table.get(a).unwrap().vacancy().map(|(_, g)| g), Some(5));
    assert!(table.remove_page(p, 0));
    assert_eq!((src.live(), table.node_pages()), (0, 0));
    assert_eq!(table.check(), Ok(0));
}

#[test]
fn growth_is_all_or_nothing() {
    let src = TestPages::new();
    let mut table = Table::new(&src);
    // The object page, then three nodes.
    for n in 0..4 {
        src.fail_after.set(Some(n));
        assert_eq!(insert(&mut table, 1), Err(AllocError::NoMemory));
        assert_eq!(
            (src.live(), table.node_pages(), table.free_slots()),
            (0, 0, 0)
        );
    }
    src.fail_after.set(None);
    for i in 0..63 {
        insert(&mut table, i + 1).unwrap();
    }
    // Slot 65 needs a leaf.
    src.fail_after.set(Some(1));
    assert_eq!(insert(&mut table, 1), Err(AllocError::NoMemory));
    assert_eq!(table.check(), Ok(0));
    assert_eq!(src.live(), 63 + 3);
    assert_eq!(insert(&mut table, 64), Ok((65, 0x9e37_79b9)));
    assert_eq!(table.node_pages(), 4);
    assert_eq!(src.live(), 64 + 4);
    for slot in (1..64).chain(65..66) {
        assert_eq!(table.get(slot).unwrap().value, u64::from(slot - slot / 64));
    }
    assert_eq!(
        *table.source() as *const TestPages,
        &src as *const TestPages
    );
    // Dropping a table does not free its pages: `clear` does.
    let _ = table;
    assert_eq!(src.live(), 64 + 4);
}

/// A record of half a page: one slot per leaf.
#[derive(Clone, Copy)]
#[repr(C, align(2048))]
struct Big(Rec);

impl Record for Big {
    fn occupied(page: NonNull<u8>, generation: u32) -> Self {
        Big(Rec::occupied(page, generation))
    }

    fn vacant(next: u32, generation: u32) -> Self {
        Big(Rec::vacant(next, generation))
    }

    fn page(&self) -> Option<NonNull<u8>> {
        self.0.page()
    }

    fn vacancy(&self) -> Option<(u32, u32)> {
        self.0.vacancy()
    }
}

#[test]
fn interior_nodes_grow_and_go_too() {
    let src = TestPages::new();
    let mut table = RadixTable::<Big, _>::new(&src);
    assert_eq!(RadixTable::<Big, &TestPages>::SLOTS, 1 << 19);
    assert_eq!(RadixTable::<Big, &TestPages>::CAPACITY, 1 << 18);
    let slots = if cfg!(miri) { 3 } else { 513 };
    for n in 0..slots {
        assert_eq!(table.insert_page(GFP).unwrap().0, n << 1 | 1);
    }
    // A root, a leaf per slot, and an interior node per 512 slots.
    let interior = u64::from(slots).div_ceil(512);
    assert_eq!(table.node_pages(), 1 + interior + u64::from(slots));
    assert_eq!(table.check(), Ok(0));
    for n in 0..slots {
        assert!(table.remove_page(n << 1 | 1, n));
        assert_eq!(table.check(), Ok(0));
    }
    assert_eq!((src.live(), table.node_pages()), (0, 0));
    table.clear();
}

/// One step of [`table_matches_a_model`].
#[derive(Clone, Debug)]
enum Op {
    /// Insert a page.
    Insert,
    /// Remove the page of the `n`th occupied slot (modulo their number).
    Remove(usize),
    /// Release the `n`th occupied slot's page, keeping the slot.
    Release(usize),
    /// Vacate the `n`th pageless slot.
    Vacate(usize),
    /// Fail the next allocation after this many.
    Fail(u64),
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        6 => Just(Op::Insert),
        4 => any::<usize>().prop_map(Op::Remove),
        1 => any::<usize>().prop_map(Op::Release),
        1 => any::<usize>().prop_map(Op::Vacate),
        1 => (0u64..3).prop_map(Op::Fail),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: if cfg!(miri) { 2 } else { 256 },
        // Miri isolates the test from the file system.
        failure_persistence: if cfg!(miri) {
            None
        } else {
            proptest::prelude::ProptestConfig::default().failure_persistence
        },
        ..Default::default()
    })]

    /// Random inserts, removes, releases and vacates with failing page
    /// allocations, against a model of the occupied slots: each insert
    /// takes a slot of the first leaf with a free slot, else of the first
    /// leaf place without leaf; the table has exactly the leaves with an
    /// occupied slot (and their interior nodes); generations are kept;
    /// the table's check passes after every step; every page comes back.
    #[test]
    fn table_matches_a_model(ops in proptest::collection::vec(op(), 1..if cfg!(miri) { 40 } else { 600 })) {
        use std::collections::{BTreeMap, BTreeSet};
        let src = TestPages::new();
        let mut table = Table::new(&src);
        // Occupied slot -> (value, has a page); free slots of live leaves
        // -> generation.
        let mut occupied = BTreeMap::<u32, (u64, bool)>::new();
        let mut free = BTreeMap::<u32, u32>::new();
        let mut generation = BTreeMap::<u32, u32>::new();
        for (n, op) in ops.into_iter().enumerate() {
            let n = n as u64;
            match op {
                Op::Insert => {
                    let first_leaf_with_room = free.keys().next().map(|s| s >> 6);
                    match insert(&mut table, n) {
                        Ok((s, g)) => {
                            match first_leaf_with_room {
                                Some(leaf) => {
                                    assert_eq!(s >> 6, leaf, "the first leaf with room");
                                    assert_eq!(free.remove(&s), Some(g));
                                }
                                None => {
                                    let leaves: BTreeSet<u32> = occupied.keys().map(|s| s >> 6).collect();
                                    let place = (0..).find(|l| !leaves.contains(l)).unwrap();
                                    assert_eq!(s >> 6, place, "the first place without leaf");
                                    for i in 1..64 {
                                        free.insert(slot(place, i), g);
                                    }
                                    assert_eq!(free.remove(&s), Some(g));
                                }
                            }
                            generation.insert(s, g);
                            occupied.insert(s, (n, true));
                        }
                        Err(e) => assert_eq!(e, AllocError::NoMemory),
                    }
                }
                Op::Remove(i) | Op::Release(i) if !occupied.is_empty() => {
                    let with_page: Vec<u32> = occupied.iter().filter(|e| e.1 .1).map(|e| *e.0).collect();
                    let Some(&s) = with_page.get(i % with_page.len().max(1)) else { continue };
                    if matches!(op, Op::Remove(_)) {
                        let g = (n as u32) ^ 0x55;
                        assert!(table.remove_page(s, g));
                        occupied.remove(&s);
                        free.insert(s, g);
                        generation.insert(s, g);
                    } else {
                        let pageless = Rec { page: None, next: 0, generation: 0, value: n + 1 };
                        assert!(table.release_page(s, pageless));
                        occupied.insert(s, (n + 1, false));
                    }
                }
                Op::Vacate(i) => {
                    let pageless: Vec<u32> = occupied.iter().filter(|e| !e.1 .1).map(|e| *e.0).collect();
                    let Some(&s) = pageless.get(i % pageless.len().max(1)) else { continue };
                    assert!(table.vacate(s, 7));
                    occupied.remove(&s);
                    free.insert(s, 7);
                    generation.insert(s, 7);
                }
                Op::Fail(after) => src.fail_after.set(Some(after)),
                _ => {}
            }
            // Leaves without occupied slot are gone, with their free slots.
            let leaves: BTreeSet<u32> = occupied.keys().map(|s| s >> 6).collect();
            free.retain(|s, _| leaves.contains(&(s >> 6)));
            assert_eq!(table.check(), Ok(free.len() as u64));
            let mids: BTreeSet<u32> = leaves.iter().map(|l| l >> 9).collect();
            let root = u64::from(!leaves.is_empty());
            assert_eq!(table.node_pages(), root + mids.len() as u64 + leaves.len() as u64);
            let pages = occupied.values().filter(|v| v.1).count() as u64;
            assert_eq!(src.live(), table.node_pages() + pages);
            for (&s, &(value, _)) in &occupied {
                assert_eq!(table.get(s).map(|r| r.value), Some(value));
            }
            for (&s, &g) in &free {
                assert_eq!(table.get(s).and_then(Record::vacancy).map(|v| v.1), Some(g));
            }
        }
        src.fail_after.set(None);
        for (s, (_, has_page)) in occupied {
            assert!(if has_page { table.remove_page(s, 0) } else { table.vacate(s, 0) });
        }
        assert_eq!((src.live(), table.node_pages()), (0, 0));
    }
}

#[test]
fn chunks() {
    assert_eq!((NCHUNKS_ORDER, CHUNK_SIZE), (6, 64));
    assert_eq!(size_to_chunks(0), 0);
    assert_eq!(size_to_chunks(1), 1);
    assert_eq!(size_to_chunks(63), 1);
    assert_eq!(size_to_chunks(64), 1);
    assert_eq!(size_to_chunks(65), 2);
    assert_eq!(size_to_chunks(PAGE_SIZE), 64);
    assert_eq!(size_to_chunks(usize::MAX), usize::MAX / 64 + 1);
    assert_eq!(object_chunks(0, 100), Err(AllocError::Invalid));
    assert_eq!(object_chunks(101, 100), Err(AllocError::TooBig));
    assert_eq!(object_chunks(usize::MAX, 100), Err(AllocError::TooBig));
    assert_eq!(object_chunks(100, 100), Ok(2));
}

#[test]
fn errors_and_reports() {
    let mut rejected = Rejections::default();
    for err in [
        AllocError::Invalid,
        AllocError::NoMemory,
        AllocError::NoMemory,
    ] {
        assert_eq!(rejected.count::<()>(Err(err)), Err(err));
    }
    assert_eq!(rejected.count(Ok(5)), Ok(5));
    assert_eq!(
        rejected,
        Rejections {
            invalid: 1,
            too_big: 0,
            no_memory: 2
        }
    );
    assert_eq!(AllocError::Invalid.to_errno(), -22);
    assert_eq!(AllocError::TooBig.to_errno(), -28);
    assert_eq!(AllocError::NoMemory.to_errno(), -12);
    assert_eq!(Leak::check(0, 0), Ok(()));
    let leak = Leak::check(2, 3).unwrap_err();
    assert_eq!(
        leak.to_string(),
        "pool destroyed with 3 live objects, leaking 2 pages"
    );
}

/// A 64-byte record of a table that readers walk without the lock.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct Shared {
    page: Option<NonNull<u8>>,
    next: u32,
    generation: u32,
}

// SAFETY: Test pages may be used from any thread.
unsafe impl Send for Shared {}

impl Record for Shared {
    const LOCKLESS: bool = true;

    fn occupied(page: NonNull<u8>, generation: u32) -> Self {
        Shared {
            page: Some(page),
            next: NO_SLOT,
            generation,
        }
    }

    fn vacant(next: u32, generation: u32) -> Self {
        Shared {
            page: None,
            next,
            generation,
        }
    }

    fn page(&self) -> Option<NonNull<u8>> {
        self.page
    }

    fn vacancy(&self) -> Option<(u32, u32)> {
        self.page.is_none().then_some((self.next, self.generation))
    }
}

/// Test pages whose deferred frees wait for [`Deferring::release`] (a
/// grace period's end).
struct Deferring<'a> {
    pages: &'a TestPages,
    held: std::cell::RefCell<Vec<NonNull<u8>>>,
}

impl Deferring<'_> {
    fn release(&self) {
        for page in self.held.borrow_mut().drain(..) {
            // SAFETY: a page of `pages` the table gave back, read by nobody
            // now.
            unsafe { self.pages.free_page(page) };
        }
    }
}

// SAFETY: Forwards to `TestPages`; deferred pages are freed later, once.
unsafe impl PageSource for Deferring<'_> {
    type Flags = testing::Gfp;

    fn alloc_page(&self, flags: testing::Gfp) -> Option<NonNull<u8>> {
        self.pages.alloc_page(flags)
    }

    unsafe fn free_page(&self, page: NonNull<u8>) {
        // SAFETY: The caller's.
        unsafe { self.pages.free_page(page) }
    }

    unsafe fn free_page_deferred(&self, page: NonNull<u8>) {
        self.held.borrow_mut().push(page);
    }
}

/// A table of `LOCKLESS` records gives the nodes it drops back deferred, so
/// that a reader that reached a node before still reads it (under Miri, a
/// read of a node freed at once is a use after free); a reader that comes
/// after finds nothing. Other tables free their nodes at once.
#[test]
fn a_lockless_table_defers_the_nodes_it_drops() {
    type Lockless<'a> = RadixTable<Shared, &'a Deferring<'a>>;
    let src = TestPages::new();
    let deferring = Deferring {
        pages: &src,
        held: Default::default(),
    };
    let mut table = Lockless::new(&deferring);
    let view = LocklessView::new();
    let find = |slot| {
        // SAFETY: `view` is this table's, which lives on, and the nodes it
        // drops are held until `release`, after the last use of a record.
        unsafe { Lockless::lockless_record(&view, slot) }
    };
    assert!(find(1).is_none());
    // The first leaf's 63 slots, and one of a second leaf.
    let slots: Vec<(u32, u32)> = (0..64)
        .map(|_| {
            let (slot, generation, _) = table.insert_page(GFP).unwrap();
            (slot, generation)
        })
        .collect();
    table.publish(&view);
    assert_eq!(table.node_pages(), 4);
    let (last, generation) = slots[63];
    let record = find(last).unwrap();
    // SAFETY: A record of a live leaf.
    assert!(unsafe { record.as_ptr().read() }.page.is_some());
    // The second leaf goes: deferred, its slots free.
    assert!(table.remove_page(last, generation));
    assert_eq!(table.node_pages(), 3);
    assert_eq!(deferring.held.borrow().len(), 1);
    // SAFETY: The dropped leaf is held.
    assert!(unsafe { record.as_ptr().read() }.vacancy().is_some());
    assert!(find(last).is_none());
    let first = find(slots[0].0).unwrap();
    // The rest: the first leaf and the interior node go too, unlinked
    // before they go. The root, which the view still names, is held by
    // the table until `publish` has unpublished it: a reader that loads it
    // meanwhile may begin after a deferred free began, which would not
    // wait for it.
    for &(slot, generation) in &slots[..63] {
        assert!(table.remove_page(slot, generation));
    }
    table.check().unwrap();
    assert_eq!((table.node_pages(), deferring.held.borrow().len()), (1, 3));
    assert!(!table.is_published(&view));
    assert!(find(slots[0].0).is_none(), "the held root has no link");
    // SAFETY: The dropped leaf is held.
    assert!(unsafe { first.as_ptr().read() }.vacancy().is_some());
    table.publish(&view);
    assert_eq!(deferring.held.borrow().len(), 4, "the root, unpublished");
    assert_eq!(table.node_pages(), 0);
    assert!(find(slots[0].0).is_none());
    deferring.release();
    assert_eq!(src.live(), 0);
    assert_eq!(src.deferred_frees.get(), 0);

    // A root dropped and not yet unpublished is the root of the next
    // leaf: one page fewer to get, and the view names the root again.
    let (slot, generation, _) = table.insert_page(GFP).unwrap();
    table.publish(&view);
    let pages = src.live();
    assert!(table.remove_page(slot, generation));
    assert_eq!(
        deferring.held.borrow().len(),
        2,
        "the leaf and its interior node"
    );
    assert_eq!(table.pages_to_insert(), 2, "a leaf and an interior node");
    let (slot, generation, _) = table.insert_page(GFP).unwrap();
    table.check().unwrap();
    assert_eq!(table.node_pages(), 3);
    assert!(table.is_published(&view), "the same root");
    assert!(find(slot).is_some());
    deferring.release();
    assert_eq!(src.live(), pages);
    assert!(table.remove_page(slot, generation));
    // A held root goes with `clear`, at once (nobody walks a table that
    // is cleared).
    table.clear();
    table.check().unwrap();
    deferring.release();
    assert_eq!(src.live(), 0);

    // A table of other records frees its nodes at once.
    let mut table = Table::new(&src);
    let (slot, generation) = insert(&mut table, 1).unwrap();
    assert!(table.remove_page(slot, generation));
    assert_eq!((src.live(), src.deferred_frees.get()), (0, 0));
}
