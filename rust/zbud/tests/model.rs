// SPDX-License-Identifier: GPL-2.0

//! Property tests: long random sequences of operations on a pool, checked
//! after every step against a model of the live objects and of zbud's page
//! choice, with page allocation failures and bad handles mixed in.

mod common;

use std::collections::HashMap;

use common::{addr, page_of, pattern, verify, write, TestPages, GFP};
use proptest::prelude::*;
use rkm_zbud::*;

#[derive(Clone, Copy, Debug)]
enum Op {
    Alloc(usize),
    /// An allocation while the page source fails.
    AllocFailing(usize),
    Free(usize),
    Map(usize),
    /// Free or map (`bool`) of a freed handle.
    UseFreed(usize, bool),
    /// A handle of another pool.
    Foreign(usize),
    /// Any value.
    Random(u64),
    /// Any value with the pool's tag.
    RandomSameTag(u64),
}

fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        8 => 100usize..3000,
        2 => 1..=MAX_ALLOC_SIZE,
        1 => prop::sample::select(vec![
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
        ]),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => size().prop_map(Op::Alloc),
        2 => size().prop_map(Op::AllocFailing),
        8 => any::<usize>().prop_map(Op::Free),
        3 => any::<usize>().prop_map(Op::Map),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(i, free)| Op::UseFreed(i, free)),
        1 => any::<usize>().prop_map(Op::Foreign),
        1 => any::<u64>().prop_map(Op::Random),
        1 => any::<u64>().prop_map(Op::RandomSameTag),
    ]
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
    rejected_invalid: u64,
    rejected_too_big: u64,
    rejected_no_memory: u64,
    bad_handles: u64,
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
            rejected_invalid: self.rejected_invalid,
            rejected_too_big: self.rejected_too_big,
            rejected_no_memory: self.rejected_no_memory,
            bad_handles: self.bad_handles,
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
    let mut pool = Pool::new(&src);
    let mut other = Pool::new(&other_src);
    let foreign: Vec<Handle> = (1..=8)
        .map(|i| other.alloc(i * 300, GFP).unwrap())
        .collect();
    let mut model = Model::default();

    for (step, op) in ops.into_iter().enumerate() {
        let mut check_all = false;
        match op {
            Op::Alloc(size) | Op::AllocFailing(size) => {
                let failing = matches!(op, Op::AllocFailing(_));
                src.fail_all.set(failing);
                let fit = model.expected_fit(size_to_chunks(size));
                let before = pool.total_pages();
                let result = pool.alloc(size, GFP);
                src.fail_all.set(false);
                match result {
                    Err(AllocError::Invalid) => {
                        assert_eq!(size, 0);
                        model.rejected_invalid += 1;
                    }
                    Err(AllocError::TooBig) => {
                        assert!(size > MAX_ALLOC_SIZE);
                        model.rejected_too_big += 1;
                    }
                    Err(AllocError::NoMemory) => {
                        assert!(failing && fit.is_none(), "unexpected NoMemory");
                        model.rejected_no_memory += 1;
                    }
                    Ok(handle) => {
                        assert!(size != 0 && size <= MAX_ALLOC_SIZE);
                        assert!(!failing || fit.is_some(), "allocated a page while failing");
                        assert_ne!(handle.to_raw(), 0);
                        assert!(!model.is_live(handle), "handle reused while live");
                        let addr = addr(&pool, handle);
                        check_placement(&model, addr, size, fit);
                        assert_eq!(pool.total_pages(), before + u64::from(fit.is_none()));
                        let data = pattern(model.next_id, size);
                        model.next_id += 1;
                        write(&pool, handle, &data);
                        model.insert(Object { handle, addr, data });
                    }
                }
            }
            Op::Free(i) | Op::Map(i) if !model.live.is_empty() => {
                let index = i % model.live.len();
                let o = &model.live[index];
                assert_eq!(addr(&pool, o.handle), o.addr, "object moved");
                verify(&pool, o.handle, &o.data);
                if let Op::Free(_) = op {
                    pool.free(model.remove(index).handle).unwrap();
                }
            }
            Op::Free(_) | Op::Map(_) => {}
            Op::UseFreed(i, free) if !model.freed.is_empty() => {
                let handle = model.freed[i % model.freed.len()];
                // Only a generation wrap could make it live again.
                assert!(!model.is_live(handle));
                let result = if free {
                    pool.free(handle)
                } else {
                    pool.map(handle).map(drop)
                };
                assert_eq!(result, Err(HandleError::Stale));
                model.bad_handles += 1;
                check_all = true;
            }
            Op::UseFreed(..) => {}
            Op::Foreign(i) => {
                let handle = foreign[i % foreign.len()];
                assert_eq!(pool.map(handle), Err(HandleError::Foreign));
                assert_eq!(pool.free(handle), Err(HandleError::Foreign));
                model.bad_handles += 2;
                check_all = true;
            }
            Op::Random(raw) | Op::RandomSameTag(raw) => {
                let raw = match (op, model.live.first()) {
                    (Op::RandomSameTag(_), Some(o)) => {
                        o.handle.to_raw() & (0xffff << 48) | raw & ((1 << 48) - 1)
                    }
                    _ => raw,
                };
                let handle = Handle::from_raw(raw);
                if !model.is_live(handle) {
                    let result = pool.free(handle);
                    assert!(result.is_err());
                    let same_tag = model
                        .live
                        .first()
                        .is_some_and(|o| o.handle.to_raw() >> 48 == raw >> 48);
                    if same_tag {
                        assert_ne!(result, Err(HandleError::Foreign));
                    }
                    model.bad_handles += 1;
                    check_all = true;
                }
            }
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
                verify(&pool, o.handle, &o.data);
            }
        }
    }

    for o in &model.live {
        verify(&pool, o.handle, &o.data);
    }
    while !model.live.is_empty() {
        pool.free(model.remove(0).handle).unwrap();
        assert_eq!(pool.total_pages(), model.pages.len() as u64);
    }
    assert!(pool.is_empty());
    assert_eq!(pool.total_pages(), 0);
    assert_eq!(pool.destroy(), Ok(()));
    assert_eq!(src.live(), 0);
    for h in &foreign {
        other.free(*h).unwrap();
    }
    assert_eq!(other.destroy(), Ok(()));
    assert_eq!(other_src.live(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(96),
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn pool_matches_model(ops in prop::collection::vec(op(), 1..600)) {
        run(ops);
    }
}

/// Builds up a large pool, then churns it: the shape zswap gives it.
#[test]
fn churn() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRunner};
    let mut runner = TestRunner::new(Config::default());
    let grow = prop::collection::vec(size().prop_map(Op::Alloc), 1500);
    let churn = prop::collection::vec(op(), 3000);
    for _ in 0..4 {
        let mut ops = grow.new_tree(&mut runner).unwrap().current();
        ops.extend(churn.new_tree(&mut runner).unwrap().current());
        run(ops);
    }
}
