// SPDX-License-Identifier: GPL-2.0

//! Property tests: random sequences of operations on a pool (allocations,
//! some while the page source fails, frees, maps, unmaps, bad handles),
//! checked after every step against a model of the live objects, their
//! contents, their map counts and z3fold's page choice, with `check()`.

mod common;

use std::collections::HashMap;

use common::{page_of, pattern, TestPages, TestPool, Z3fold};
use proptest::prelude::*;
use rkm_z3fold::*;
use rkm_zalloc::testing::model::{self, Expected, Op};

fn size() -> impl Strategy<Value = usize> + Clone {
    let edges = vec![
        0,
        1,
        63,
        64,
        65,
        MAX_SHARED_SIZE,
        MAX_SHARED_SIZE + 1,
        PAGE_SIZE,
        PAGE_SIZE + 1,
        usize::MAX,
    ];
    model::sizes(20..1500, PAGE_SIZE, edges)
}

struct Object {
    /// The object's contents (and size).
    data: Vec<u8>,
    /// Maps in force, and the address they returned.
    maps: u32,
    mapped_at: Option<usize>,
    /// The object's page (it changes only by migration) and first chunk,
    /// as last seen.
    page: usize,
    start: usize,
    /// Whether it migrated (then it never does again).
    foreign: bool,
}

impl Object {
    fn chunks(&self) -> usize {
        size_to_chunks(self.data.len())
    }
}

/// The model: live and freed objects, the pages' objects, and the expected
/// counters.
#[derive(Default)]
struct Model {
    live: HashMap<Handle, Object>,
    /// The live handles, to pick from.
    order: Vec<Handle>,
    freed: Vec<Handle>,
    /// The live objects of each page.
    pages: HashMap<usize, Vec<Handle>>,
    next_id: u64,
    expected: Expected,
    migrations: u64,
}

impl Model {
    fn is_live(&self, handle: Handle) -> bool {
        self.live.contains_key(&handle)
    }

    /// The objects of `page`, as (start, chunks), in address order.
    fn places(&self, page: usize) -> Vec<(usize, usize)> {
        let mut places: Vec<_> = self.pages[&page]
            .iter()
            .map(|h| (self.live[h].start, self.live[h].chunks()))
            .collect();
        places.sort_unstable();
        places
    }

    /// The largest free region of `page`.
    fn largest_free(&self, page: usize) -> usize {
        let mut used = [false; NCHUNKS];
        for (start, chunks) in self.places(page) {
            used[start..start + chunks].fill(true);
        }
        used.split(|&u| u).map(<[bool]>::len).max().unwrap_or(0)
    }

    /// The largest free region of the page the pool must choose for
    /// `chunks` chunks (the smallest that fits, among pages with fewer than
    /// three objects), `None` for a new page.
    fn expected_fit(&self, chunks: usize) -> Option<usize> {
        self.fit_besides(chunks, None)
    }

    /// [`Model::expected_fit`] among the pages but `besides`.
    fn fit_besides(&self, chunks: usize, besides: Option<usize>) -> Option<usize> {
        self.pages
            .iter()
            .filter(|(&page, handles)| handles.len() < OBJECTS_PER_PAGE && Some(page) != besides)
            .map(|(&page, _)| self.largest_free(page))
            .filter(|&free| free >= chunks)
            .min()
    }

    fn expected_stats(&self, actual: &Stats) -> Stats {
        let headless = |handles: &Vec<Handle>| self.live[&handles[0]].chunks() == NCHUNKS;
        let count = |n: usize| {
            self.pages
                .values()
                .filter(|h| h.len() == n && !headless(h))
                .count() as u64
        };
        Stats {
            pages: self.pages.len() as u64,
            table_pages: actual.table_pages,
            objects: self.live.len() as u64,
            headless_pages: self.pages.values().filter(|h| headless(h)).count() as u64,
            pages_one: count(1),
            pages_two: count(2),
            pages_three: count(3),
            compactions: actual.compactions,
            compactions_deferred: actual.compactions_deferred,
            migrations: self.migrations,
            forwarded: self.live.values().filter(|o| o.foreign).count() as u64,
            rejected_invalid: self.expected.rejected.invalid,
            rejected_too_big: self.expected.rejected.too_big,
            rejected_no_memory: self.expected.rejected.no_memory,
            bad_handles: self.expected.bad_handles,
        }
    }

    fn insert(&mut self, handle: Handle, object: Object) {
        self.pages.entry(object.page).or_default().push(handle);
        self.order.push(handle);
        self.live.insert(handle, object);
    }

    /// Removes the object `order[index]`; returns its page.
    fn remove(&mut self, index: usize) -> usize {
        let handle = self.order.swap_remove(index);
        let page = self.live.remove(&handle).unwrap().page;
        let handles = self.pages.get_mut(&page).unwrap();
        handles.retain(|&h| h != handle);
        if handles.is_empty() {
            self.pages.remove(&page);
        }
        self.freed.push(handle);
        page
    }

    /// Whether the free chunks of `page` are in pieces (the pool defers
    /// their compaction while an object of the page is mapped).
    fn in_pieces(&self, page: usize) -> bool {
        let mut regions = 0;
        let mut at = 0;
        for (start, chunks) in self.places(page) {
            regions += usize::from(start > at);
            at = start + chunks;
        }
        regions + usize::from(at < NCHUNKS) > 1
    }

    /// Whether an unmap of `handle` ends the last mapping of its page while
    /// the page's free chunks are in pieces: then it compacts the page, and
    /// may migrate its object.
    fn unmap_compacts(&self, handle: Handle) -> bool {
        let page = self.live[&handle].page;
        self.live[&handle].maps == 1
            && self.pages[&page]
                .iter()
                .all(|h| *h == handle || self.live[h].maps == 0)
            && self.in_pieces(page)
    }

    /// After a free in `page`, or the unmap that compacts it: if the page
    /// is left with one unmapped native object that another page with
    /// fewer than three objects holds, the object must have migrated to
    /// the fullest such page, and `page` be gone.
    fn settle(&mut self, pool: &mut Z3fold<'_>, page: usize) {
        let Some(&[handle]) = self.pages.get(&page).map(Vec::as_slice) else {
            return;
        };
        let o = &self.live[&handle];
        if o.maps > 0 || o.foreign || o.chunks() >= NCHUNKS {
            return;
        }
        let Some(free) = self.fit_besides(o.chunks(), Some(page)) else {
            return;
        };
        let ptr = pool.map(handle).expect("map of a migrated object");
        pool.unmap(handle).unwrap();
        let addr = ptr.as_ptr() as usize;
        let to = page_of(addr);
        assert_ne!(to, page, "a lone object did not migrate");
        assert!(self.pages.contains_key(&to), "migrated to a new page");
        assert_eq!(self.largest_free(to), free, "not migrated to the best fit");
        self.pages.remove(&page);
        self.pages.get_mut(&to).unwrap().push(handle);
        let o = self.live.get_mut(&handle).unwrap();
        (o.page, o.start, o.foreign) = (to, (addr - to) / CHUNK_SIZE, true);
        self.migrations += 1;
        self.verify_page(pool, to);
    }

    /// Checks the object of `handle`: its contents, that it stays on its
    /// page and, if mapped, where it is; records its start. Map and unmap
    /// do not compact here: an object of a deferred page is not the page's
    /// only mapping.
    fn verify(&mut self, pool: &mut Z3fold<'_>, handle: Handle) {
        let o = self.live.get_mut(&handle).unwrap();
        let ptr = pool.map(handle).expect("map of a live object");
        let addr = ptr.as_ptr() as usize;
        if let Some(at) = o.mapped_at {
            assert_eq!(addr, at, "a mapped object moved");
        }
        assert_eq!(page_of(addr), o.page, "an object changed pages");
        // SAFETY: A mapped live object of `data.len()` bytes.
        let bytes = unsafe { std::slice::from_raw_parts(ptr.as_ptr(), o.data.len()) };
        assert!(bytes == o.data, "object at {addr:#x} corrupted");
        pool.unmap(handle).expect("unmap of a mapped object");
        o.start = (addr - o.page) / CHUNK_SIZE;
    }

    /// [`Model::verify`]s the objects of `page`, and that they do not
    /// overlap.
    fn verify_page(&mut self, pool: &mut Z3fold<'_>, page: usize) {
        for handle in self.pages.get(&page).cloned().unwrap_or_default() {
            self.verify(pool, handle);
        }
        if self.pages.contains_key(&page) {
            let places = self.places(page);
            assert!(places.len() <= OBJECTS_PER_PAGE);
            for pair in places.windows(2) {
                assert!(pair[0].0 + pair[0].1 <= pair[1].0, "objects overlap");
            }
        }
    }

    /// [`Model::verify`]s every live object.
    fn verify_all(&mut self, pool: &mut Z3fold<'_>) {
        let pages: Vec<usize> = self.pages.keys().copied().collect();
        for page in pages {
            self.verify_page(pool, page);
        }
    }
}

/// The expected result of a use of a handle: `Ok` or the error.
fn expect_use<T: std::fmt::Debug>(
    result: Result<T, HandleError>,
    expected: Result<(), HandleError>,
    model: &mut Model,
) -> Option<T> {
    match (result, expected) {
        (Ok(t), Ok(())) => Some(t),
        (Err(got), Err(want)) => {
            assert_eq!(got, want);
            model.expected.bad_handles += 1;
            None
        }
        (got, want) => panic!("got {got:?}, want {want:?}"),
    }
}

/// Runs `ops`, checking the pool after every step: its invariants, its
/// counters, and the contents of the objects of the page the step touched
/// (of every object every `verify_every` steps).
fn run(ops: Vec<Op>, verify_every: usize) {
    let src = TestPages::new();
    let other_src = TestPages::new();
    let mut pool = Z3fold::new(&src);
    let (other, foreign) = model::foreign::<Z3fold<'_>>(&other_src);
    let mut model = Model::default();

    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Alloc(size) | Op::AllocFailing(size) | Op::AllocFailAfter(size, _) => {
                let chunks = size_to_chunks(size);
                let fit = model.expected_fit(chunks);
                let expected = &mut model.expected;
                if let Some(handle) =
                    model::alloc(&mut pool, &src, op, size, fit.is_some(), expected)
                {
                    assert!(!model.is_live(handle), "handle reused while live");
                    let data = pattern(model.next_id, size);
                    model.next_id += 1;
                    let ptr = pool.map(handle).unwrap();
                    let addr = ptr.as_ptr() as usize;
                    let page = page_of(addr);
                    match fit {
                        None => assert!(!model.pages.contains_key(&page), "expected a new page"),
                        Some(free) => {
                            assert!(model.pages.contains_key(&page), "expected an old page");
                            assert_eq!(model.largest_free(page), free, "not the best fit");
                        }
                    }
                    // SAFETY: A mapped live object of `size` bytes.
                    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), ptr.as_ptr(), size) };
                    pool.unmap(handle).unwrap();
                    let object = Object {
                        data,
                        maps: 0,
                        mapped_at: None,
                        page,
                        start: (addr - page) / CHUNK_SIZE,
                        foreign: false,
                    };
                    model.insert(handle, object);
                    model.verify_page(&mut pool, page);
                }
            }
            Op::Free(i) | Op::Map(i) | Op::Unmap(i) if !model.live.is_empty() => {
                let index = i % model.order.len();
                let handle = model.order[index];
                let compacts = model.unmap_compacts(handle);
                let o = model.live.get_mut(&handle).unwrap();
                let page = o.page;
                match op {
                    Op::Free(_) => {
                        let expected = if o.maps > 0 {
                            Err(HandleError::Busy)
                        } else {
                            Ok(())
                        };
                        if expect_use(pool.free(handle), expected, &mut model).is_some() {
                            model.remove(index);
                            model.settle(&mut pool, page);
                        }
                    }
                    Op::Map(_) if o.maps < 3 => {
                        let addr = pool.map(handle).unwrap().as_ptr() as usize;
                        assert_eq!(
                            *o.mapped_at.get_or_insert(addr),
                            addr,
                            "mapped object moved"
                        );
                        o.maps += 1;
                    }
                    Op::Map(_) => {}
                    _ => {
                        let expected = if o.maps == 0 {
                            Err(HandleError::NotMapped)
                        } else {
                            o.maps -= 1;
                            if o.maps == 0 {
                                o.mapped_at = None;
                            }
                            Ok(())
                        };
                        if expect_use(pool.unmap(handle), expected, &mut model).is_some()
                            && compacts
                        {
                            model.settle(&mut pool, page);
                        }
                    }
                }
                // A free or unmap may have moved the page's objects.
                model.verify_page(&mut pool, page);
            }
            Op::Free(_) | Op::Map(_) | Op::Unmap(_) => {}
            _ => {
                let live = model.order.first().copied();
                let is_live = |h| model.live.contains_key(&h);
                let expected = &mut model.expected;
                let (freed, foreign) = (&model.freed, &foreign);
                assert!(model::bad_handle(
                    &mut pool, op, freed, foreign, live, is_live, expected
                ));
            }
        }
        if let Err(what) = pool.check() {
            panic!("step {step}: {op:?}: pool invariant broken: {what}");
        }
        if step % verify_every == 0 {
            model.verify_all(&mut pool);
        }
        let stats = pool.stats();
        assert_eq!(stats, model.expected_stats(&stats), "step {step}: {op:?}");
        assert_eq!(src.live(), pool.total_pages());
    }

    model.verify_all(&mut pool);
    let mapped: Vec<Handle> = model
        .order
        .iter()
        .copied()
        .filter(|h| model.live[h].maps > 0)
        .collect();
    for handle in mapped {
        while model.live[&handle].maps > 0 {
            let compacts = model.unmap_compacts(handle);
            pool.unmap(handle).unwrap();
            let o = model.live.get_mut(&handle).unwrap();
            o.maps -= 1;
            if o.maps == 0 {
                o.mapped_at = None;
            }
            if compacts {
                let page = o.page;
                model.settle(&mut pool, page);
            }
        }
    }
    pool.check().unwrap();
    model.verify_all(&mut pool);
    model::finish(pool, &src, model.order, (other, foreign), &other_src);
}

proptest! {
    #![proptest_config(model::config())]

    #[test]
    fn pool_matches_model(ops in prop::collection::vec(model::ops(size()), 1..500)) {
        run(ops, 1);
    }
}

/// Builds up a large pool, then churns it.
#[test]
fn churn() {
    model::churn(size(), 3, |ops| run(ops, 200));
}
