// SPDX-License-Identifier: GPL-2.0

//! Property tests: long random sequences of operations on a pool, checked
//! after every step against a model of the live objects and of zbud's page
//! choice, and with `Pool::check` (the lists, headers and counters), with
//! page allocation failures and bad handles mixed in.

mod common;

use std::collections::HashMap;

use common::{addr, page_of, pattern, verify, write, TestPages, TestPool, Zbud};
use proptest::prelude::*;
use rkm_zalloc::testing::model::{self, Expected, Op};
use rkm_zbud::*;

fn size() -> impl Strategy<Value = usize> + Clone {
    let edges = vec![
        0,
        1,
        63,
        64,
        65,
        MAX_ALLOC_SIZE - 1,
        MAX_ALLOC_SIZE,
        MAX_ALLOC_SIZE + 1,
        PAGE_SIZE,
        usize::MAX,
    ];
    model::sizes(100..3000, MAX_ALLOC_SIZE, edges)
}

struct Object {
    handle: Handle,
    addr: usize,
    /// The object's contents (and size).
    data: Vec<u8>,
}

impl Object {
    fn end(&self) -> usize {
        self.addr + self.data.len()
    }
}

/// The model: live and freed objects and the expected counters.
#[derive(Default)]
struct Model {
    live: Vec<Object>,
    /// The chunks of the objects on each page holding some.
    pages: HashMap<usize, Vec<usize>>,
    freed: Vec<Handle>,
    next_id: u64,
    expected: Expected,
}

impl Model {
    fn insert(&mut self, object: Object) {
        self.pages
            .entry(page_of(object.addr))
            .or_default()
            .push(size_to_chunks(object.data.len()));
        self.live.push(object);
    }

    fn remove(&mut self, index: usize) -> Object {
        let object = self.live.swap_remove(index);
        let page = page_of(object.addr);
        let chunks = self.pages.get_mut(&page).unwrap();
        let i = chunks
            .iter()
            .position(|&c| c == size_to_chunks(object.data.len()))
            .unwrap();
        chunks.swap_remove(i);
        if chunks.is_empty() {
            self.pages.remove(&page);
        }
        self.freed.push(object.handle);
        object
    }

    /// The free chunks of the page zbud must choose for `chunks` chunks:
    /// the fewest among pages with one object and enough room.
    fn expected_fit(&self, chunks: usize) -> Option<usize> {
        self.pages
            .values()
            .filter(|used| used.len() == 1)
            .map(|used| NCHUNKS - used[0])
            .filter(|&free| free >= chunks)
            .min()
    }

    fn expected_stats(&self, table_pages: u64) -> Stats {
        let pages = self.pages.len() as u64;
        let buddied = self.pages.values().filter(|used| used.len() == 2).count() as u64;
        Stats {
            pages,
            table_pages,
            objects: self.live.len() as u64,
            unbuddied_pages: pages - buddied,
            buddied_pages: buddied,
            rejected_invalid: self.expected.rejected.invalid,
            rejected_too_big: self.expected.rejected.too_big,
            rejected_no_memory: self.expected.rejected.no_memory,
            bad_handles: self.expected.bad_handles,
        }
    }

    fn is_live(&self, handle: Handle) -> bool {
        self.live.iter().any(|o| o.handle == handle)
    }
}

/// Checks a new object's place against the model before it joins it.
fn check_placement(model: &Model, addr: usize, size: usize, fit: Option<usize>) {
    let chunks = size_to_chunks(size);
    let page = page_of(addr);
    let offset = addr - page;
    assert!(
        offset == ZHDR_SIZE_ALIGNED || offset + chunks * CHUNK_SIZE == PAGE_SIZE,
        "object neither first nor last: offset {offset}, {chunks} chunks"
    );
    for o in &model.live {
        assert!(
            addr + size <= o.addr || o.end() <= addr,
            "new object overlaps the one at {:#x}",
            o.addr
        );
    }
    match fit {
        None => assert!(!model.pages.contains_key(&page), "expected a new page"),
        Some(free) => {
            let used = model.pages.get(&page).expect("expected an existing page");
            assert_eq!(used.len(), 1);
            assert_eq!(NCHUNKS - used[0], free, "not the fullest page that fits");
        }
    }
}

fn run(ops: Vec<Op>) {
    let src = TestPages::new();
    let other_src = TestPages::new();
    let mut pool = Zbud::new(&src);
    let (other, foreign) = model::foreign::<Zbud<'_>>(&other_src);
    let mut model = Model::default();

    for (step, op) in ops.into_iter().enumerate() {
        let mut check_all = false;
        match op {
            Op::Alloc(size) | Op::AllocFailing(size) | Op::AllocFailAfter(size, _) => {
                let fit = model.expected_fit(size_to_chunks(size));
                let expected = &mut model.expected;
                if let Some(handle) =
                    model::alloc(&mut pool, &src, op, size, fit.is_some(), expected)
                {
                    assert!(!model.is_live(handle), "handle reused while live");
                    let addr = addr(&mut pool, handle);
                    check_placement(&model, addr, size, fit);
                    let data = pattern(model.next_id, size);
                    model.next_id += 1;
                    write(&mut pool, handle, &data);
                    model.insert(Object { handle, addr, data });
                }
            }
            Op::Free(i) | Op::Map(i) | Op::Unmap(i) if !model.live.is_empty() => {
                let index = i % model.live.len();
                let (handle, at) = (model.live[index].handle, model.live[index].addr);
                // zbud never moves an object, and its map and unmap only
                // check the handle.
                assert_eq!(addr(&mut pool, handle), at, "object moved");
                verify(&mut pool, handle, &model.live[index].data);
                match op {
                    Op::Free(_) => pool.free(model.remove(index).handle).unwrap(),
                    Op::Unmap(_) => pool.unmap(handle).unwrap(),
                    _ => {}
                }
            }
            Op::Free(_) | Op::Map(_) | Op::Unmap(_) => {}
            _ => {
                let live = model.live.first().map(|o| o.handle);
                let live_objects = &model.live;
                let is_live = |h| live_objects.iter().any(|o| o.handle == h);
                let expected = &mut model.expected;
                let (freed, foreign) = (&model.freed, &foreign);
                assert!(model::bad_handle(
                    &mut pool, op, freed, foreign, live, is_live, expected
                ));
                check_all = true;
            }
        }
        if let Err(what) = pool.check() {
            panic!("step {step}: {op:?}: pool invariant broken: {what}");
        }
        let stats = pool.stats();
        assert_eq!(
            stats,
            model.expected_stats(stats.table_pages),
            "step {step}"
        );
        assert_eq!(src.live(), stats.pages + stats.table_pages);
        if check_all || step % 64 == 0 {
            for o in &model.live {
                verify(&mut pool, o.handle, &o.data);
            }
        }
    }

    for o in &model.live {
        verify(&mut pool, o.handle, &o.data);
    }
    let live = model.live.iter().map(|o| o.handle).collect::<Vec<_>>();
    model::finish(pool, &src, live, (other, foreign), &other_src);
}

proptest! {
    #![proptest_config(model::config())]

    #[test]
    fn pool_matches_model(ops in prop::collection::vec(model::ops(size()), 1..600)) {
        run(ops);
    }
}

/// Builds up a large pool, then churns it.
#[test]
fn churn() {
    model::churn(size(), 4, run);
}
