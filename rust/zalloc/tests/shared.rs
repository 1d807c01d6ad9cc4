// SPDX-License-Identifier: GPL-2.0

//! Tests of the shared pieces: handle packing, the slot table (growth,
//! failures, slot reuse, generations, teardown), the error helpers.

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
    assert_eq!(slot_bits(8), 27);
    assert_eq!(slot_bits(32), 25);
}

#[test]
fn slots_are_dense_reused_last_freed_first_and_keep_generations() {
    let src = TestPages::new();
    let mut table = Table::new(&src);
    assert_eq!(table.get(0), None);
    for i in 0..10 {
        assert_eq!(insert(&mut table, 100 + i), Ok((i as u32, 0)));
    }
    assert_eq!(table.node_pages(), 3);
    assert_eq!(table.high_water(), 10);
    assert_eq!(src.live(), 3 + 10);
    assert_eq!(table.get(3).unwrap().value, 103);
    assert_eq!(table.get(10), None);
    // Updates keep the page.
    let page = table.get(3).unwrap().page;
    assert!(!table.update(3, |r| r.page = None));
    assert!(!table.update(3, |r| r.page = Some(NonNull::dangling())));
    assert_eq!(table.get(3).unwrap().page, page);
    assert!(!table.update(10, |r| r.value = 1));
    assert!(table.remove_page(3, 41));
    assert!(!table.remove_page(3, 41), "already free");
    assert!(!table.update(3, |r| r.value = 1), "free");
    assert!(table.remove_page(7, 42));
    assert!(!table.remove_page(12, 1), "never handed out");
    assert_eq!(src.live(), 3 + 8);
    assert_eq!(table.free_head(), 7);
    assert_eq!(table.get(7).unwrap().vacancy(), Some((3, 42)));
    assert_eq!(insert(&mut table, 7), Ok((7, 42)));
    assert_eq!(insert(&mut table, 3), Ok((3, 41)));
    assert_eq!(table.get(7).unwrap().generation, 42);
    assert_eq!(insert(&mut table, 10), Ok((10, 0)));
    assert_eq!(table.free_head(), NO_SLOT);
    table.clear();
    // The pages in the slots are left alone.
    assert_eq!(src.live(), 11);
    assert_eq!((table.node_pages(), table.high_water()), (0, 0));
    assert_eq!(table.get(0), None);
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
    assert!(!table.release_page(1, vacant), "a free slot's record");
    assert!(!table.release_page(1, Rec::occupied(NonNull::dangling(), 0)));
    assert!(table.release_page(1, pageless));
    assert_eq!(src.live(), 3 + 2);
    assert!(!table.release_page(1, pageless), "no page left");
    assert!(!table.remove_page(1, 5), "no page to free");
    assert!(!table.update(1, |r| r.value = 1), "pageless records stay");
    assert_eq!(table.get(1), Some(&pageless));
    // Taken: a new page gets a new slot.
    assert_eq!(insert(&mut table, 103), Ok((3, 0)));
    assert!(!table.vacate(0, 5), "has a page");
    assert!(!table.vacate(9, 5), "never handed out");
    assert!(table.vacate(1, 5));
    assert!(!table.vacate(1, 5), "already free");
    assert_eq!(table.free_head(), 1);
    assert_eq!(src.live(), 3 + 3);
    assert_eq!(insert(&mut table, 104), Ok((1, 5)));
    table.clear();
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
            (src.live(), table.node_pages(), table.high_water()),
            (0, 0, 0)
        );
    }
    src.fail_after.set(None);
    for i in 0..64 {
        insert(&mut table, i + 1).unwrap();
    }
    // Slot 64 needs a leaf.
    src.fail_after.set(Some(1));
    assert_eq!(insert(&mut table, 1), Err(AllocError::NoMemory));
    assert_eq!(table.high_water(), 64);
    assert_eq!(src.live(), 64 + 3);
    assert_eq!(insert(&mut table, 65), Ok((64, 0)));
    assert_eq!(table.node_pages(), 4);
    assert_eq!(src.live(), 65 + 4);
    for slot in 0..65 {
        assert_eq!(table.get(slot).unwrap().value, u64::from(slot) + 1);
    }
    assert_eq!(
        *table.source() as *const TestPages,
        &src as *const TestPages
    );
    // Dropping a table does not free its pages: `clear` does.
    let _ = table;
    assert_eq!(src.live(), 65 + 4);
}

/// A record of a page: one per leaf.
#[derive(Clone, Copy)]
#[repr(C, align(4096))]
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
fn interior_nodes_grow_too() {
    let src = TestPages::new();
    let mut table = RadixTable::<Big, _>::new(&src);
    assert_eq!(RadixTable::<Big, &TestPages>::SLOTS, 1 << 18);
    let slots = if cfg!(miri) { 3 } else { 513 };
    for slot in 0..slots {
        assert_eq!(table.insert_page(GFP).unwrap().0, slot);
    }
    // A root, a leaf per slot, and an interior node per 512 slots.
    let interior = u64::from(slots).div_ceil(512);
    assert_eq!(table.node_pages(), 1 + interior + u64::from(slots));
    for slot in 0..slots {
        assert!(table.remove_page(slot, slot));
    }
    table.clear();
    assert_eq!(src.live(), 0);
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
