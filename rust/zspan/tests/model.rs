// SPDX-License-Identifier: GPL-2.0

//! Property tests: long random sequences of operations on a pool (with
//! compactions, objects kept mapped across other operations and rewritten
//! through their mapping, page allocation failures and bad handles), checked
//! after every step against a model of the live objects and their bytes,
//! the class each object must land in, and with `Pool::check` (both tables,
//! every span and list, every object record, the counters).

mod common;

use std::collections::HashMap;

use common::{pattern, TestPages, TestPool, Zspan, GFP};
use proptest::prelude::*;
use rkm_zalloc::testing::model::{self, Expected, Op};
use rkm_zalloc::{AllocError, PAGE_SIZE};
use rkm_zspan::*;

fn size() -> impl Strategy<Value = usize> + Clone {
    let edges = vec![
        0,
        1,
        15,
        16,
        17,
        2048,
        2049,
        2592,
        4095,
        4096,
        4097,
        usize::MAX,
    ];
    model::sizes(100..3500, MAX_SIZE, edges)
}

/// An operation of the model: zalloc's, or a compaction with a budget.
#[derive(Clone, Copy, Debug)]
enum Step {
    Op(Op),
    Compact(usize),
    /// Rewrites a mapped object through its mapping (a new pattern).
    Rewrite(usize),
}

fn steps() -> impl Strategy<Value = Step> {
    prop_oneof![
        20 => model::ops(size()).prop_map(Step::Op),
        1 => (1..200usize).prop_map(Step::Compact),
        2 => any::<usize>().prop_map(Step::Rewrite),
    ]
}

struct Object {
    handle: Handle,
    data: Vec<u8>,
    /// The object's mapping while it is mapped: the address the test pool
    /// gave (a bounce buffer for a split object).
    mapped: Option<*mut u8>,
}

#[derive(Default)]
struct Model {
    live: Vec<Object>,
    freed: Vec<Handle>,
    next_id: u64,
    expected: Expected,
    moved: u64,
}

fn verify_object(pool: &mut Zspan<'_>, o: &Object) {
    match o.mapped {
        Some(at) => {
            // SAFETY: The object is mapped: the address is its bytes (or
            // its bounce buffer), at least `data.len()` of them.
            let intact = unsafe { common::holds(at, &o.data) };
            assert!(intact, "mapped object corrupted");
        }
        None => common::verify(pool, o.handle, &o.data),
    }
}

/// Runs `steps` on shard `shard` of a pool (a lone pool is shard 0).
fn run(steps: Vec<Step>, shard: usize) {
    let src = TestPages::new();
    let other_src = TestPages::new();
    let shared = Shared::new();
    let mut pool = Zspan::shard(&src, shard);
    if shard % 2 == 1 {
        // An odd shard shares, as zspan_rs's do: frees and moves look for
        // pins (none here: the lockless maps are `tests/lockless.rs`'s),
        // and `check` checks what the pool published.
        // SAFETY: `shared` outlives the pool, at its address.
        unsafe { pool.pool.share(&shared) };
    }
    let (other, foreign) = model::foreign::<Zspan<'_>>(&other_src);
    let mut model = Model::default();

    for (n, step) in steps.into_iter().enumerate() {
        let mut check_all = false;
        match step {
            Step::Op(
                op @ (Op::Alloc(size) | Op::AllocFailing(size) | Op::AllocFailAfter(size, _)),
            ) => {
                let before = pool.stats();
                src.fail_after.set(model::failing(op));
                let result = pool.alloc(size, GFP);
                src.fail_after.set(None);
                match result {
                    Ok(handle) => {
                        assert!((1..=MAX_SIZE).contains(&size));
                        assert!(model.live.iter().all(|o| o.handle != handle));
                        // The object's class holds it.
                        let m = pool.pool.map(handle).unwrap();
                        assert_eq!(m.len(), usize::from(CLASSES[class_of(size).unwrap()].size));
                        pool.pool.unmap(handle).unwrap();
                        let data = pattern(model.next_id, size);
                        model.next_id += 1;
                        common::write(&mut pool, handle, &data);
                        model.live.push(Object {
                            handle,
                            data,
                            mapped: None,
                        });
                    }
                    Err(e) => {
                        match e {
                            AllocError::Invalid => assert_eq!(size, 0),
                            AllocError::TooBig => assert!(size > MAX_SIZE),
                            AllocError::NoMemory => assert!(model::failing(op).is_some()),
                        }
                        let _ = model.expected.rejected.count::<()>(Err(e));
                        let after = pool.stats();
                        // Unchanged, its spare included.
                        assert_eq!(
                            (after.pages, after.spare_pages, after.objects, after.spans),
                            (
                                before.pages,
                                before.spare_pages,
                                before.objects,
                                before.spans
                            )
                        );
                    }
                }
            }
            Step::Op(Op::Free(i)) if !model.live.is_empty() => {
                let index = i % model.live.len();
                let o = &model.live[index];
                verify_object(&mut pool, o);
                if o.mapped.is_some() {
                    assert_eq!(pool.free(o.handle), Err(HandleError::Mapped));
                    model.expected.bad_handles += 1;
                } else {
                    let o = model.live.swap_remove(index);
                    pool.free(o.handle).unwrap();
                    model.freed.push(o.handle);
                    // As the driver does after each free.
                    if let Some(c) = pool.after_free() {
                        model.moved += c.moved as u64;
                    }
                }
            }
            Step::Op(Op::Map(i)) if !model.live.is_empty() => {
                let index = i % model.live.len();
                let handle = model.live[index].handle;
                if model.live[index].mapped.is_some() {
                    assert_eq!(pool.map(handle), Err(HandleError::Mapped));
                    model.expected.bad_handles += 1;
                } else {
                    let at = pool.map(handle).unwrap();
                    model.live[index].mapped = Some(at.as_ptr());
                }
                verify_object(&mut pool, &model.live[index]);
            }
            Step::Op(Op::Unmap(i)) if !model.live.is_empty() => {
                let index = i % model.live.len();
                let handle = model.live[index].handle;
                // Half the unmaps are `release`s (the kernel glue's).
                let release = i % 2 == 1;
                if model.live[index].mapped.take().is_some() {
                    if release {
                        pool.release(handle).unwrap();
                    } else {
                        pool.unmap(handle).unwrap();
                    }
                } else if release {
                    assert_eq!(pool.release(handle), Err(HandleError::NotMapped));
                    model.expected.bad_handles += 1;
                } else {
                    assert_eq!(pool.unmap(handle), Err(HandleError::NotMapped));
                    model.expected.bad_handles += 1;
                }
                verify_object(&mut pool, &model.live[index]);
            }
            Step::Rewrite(i) if !model.live.is_empty() => {
                let index = i % model.live.len();
                if let Some(at) = model.live[index].mapped {
                    let data = pattern(model.next_id, model.live[index].data.len());
                    model.next_id += 1;
                    // SAFETY: The object is mapped at `at`, `data.len()`
                    // bytes at least, and nothing else uses them.
                    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), at, data.len()) };
                    model.live[index].data = data;
                }
            }
            Step::Compact(budget) => {
                let mapped: Vec<_> = model
                    .live
                    .iter()
                    .filter_map(|o| o.mapped.map(|at| (o.handle, at)))
                    .collect();
                let c = pool.compact(budget);
                assert!(c.scanned <= budget && c.moved <= c.scanned);
                model.moved += c.moved as u64;
                // Mapped objects stay where they are (their mappings are
                // still the object's bytes: checked below).
                for (handle, at) in mapped {
                    assert!(model
                        .live
                        .iter()
                        .any(|o| o.handle == handle && o.mapped == Some(at)));
                }
                check_all = true;
            }
            Step::Op(Op::Free(_) | Op::Map(_) | Op::Unmap(_)) | Step::Rewrite(_) => {}
            Step::Op(op) => {
                let live = model.live.first().map(|o| o.handle);
                let live_objects = &model.live;
                let is_live = |h| live_objects.iter().any(|o| o.handle == h);
                let expected = &mut model.expected;
                let (freed, foreign) = (&model.freed, &foreign);
                // A map of a freed handle through the test pool would
                // leave nothing mapped: the pool rejects it.
                assert!(model::bad_handle(
                    &mut pool, op, freed, foreign, live, is_live, expected
                ));
                check_all = true;
            }
        }
        if let Err(what) = pool.check() {
            panic!("step {n}: {step:?}: pool invariant broken: {what}");
        }
        let stats = pool.stats();
        assert_eq!(stats.objects, model.live.len() as u64, "step {n}");
        assert_eq!(
            stats.mapped,
            model.live.iter().filter(|o| o.mapped.is_some()).count() as u64
        );
        assert_eq!(
            stats.bad_handles, model.expected.bad_handles,
            "step {n}: {step:?}"
        );
        assert_eq!(stats.rejected_invalid, model.expected.rejected.invalid);
        assert_eq!(stats.rejected_too_big, model.expected.rejected.too_big);
        assert_eq!(stats.rejected_no_memory, model.expected.rejected.no_memory);
        assert_eq!(stats.moved, model.moved);
        let bytes: u64 = model
            .live
            .iter()
            .map(|o| u64::from(CLASSES[class_of(o.data.len()).unwrap()].size))
            .sum();
        assert_eq!(stats.class_bytes, bytes);
        assert!(stats.class_bytes <= stats.pages * PAGE_SIZE as u64);
        // The source's pages are the spans', the spare's and the tables'.
        let held = stats.pages + stats.spare_pages + stats.table_pages;
        assert_eq!(src.live(), held, "step {n}");
        assert_eq!(pool.all_pages(), held);
        assert!(stats.spare_pages <= MAX_SPAN_PAGES as u64);
        if check_all || n % 64 == 0 {
            for o in &model.live {
                verify_object(&mut pool, o);
            }
        }
    }

    for o in &mut model.live {
        if o.mapped.take().is_some() {
            pool.unmap(o.handle).unwrap();
        }
    }
    for o in &model.live {
        common::verify(&mut pool, o.handle, &o.data);
    }
    let live = model.live.iter().map(|o| o.handle).collect::<Vec<_>>();
    model::finish(pool, &src, live, (other, foreign), &other_src);
}

proptest! {
    #![proptest_config(model::config())]

    #[test]
    fn pool_matches_model(steps in prop::collection::vec(steps(), 1..600), shard in 0..SHARDS) {
        run(steps, shard);
    }
}

/// Builds up a large pool, then churns it, compacting now and then.
#[test]
fn churn() {
    model::churn(size(), 4, |ops| {
        let mut steps: Vec<Step> = Vec::with_capacity(ops.len() + ops.len() / 100);
        for (i, op) in ops.into_iter().enumerate() {
            steps.push(Step::Op(op));
            if i % 100 == 99 {
                steps.push(Step::Compact(500));
            }
        }
        run(steps, SHARDS - 1);
    });
}

/// The bytes of the sizes the model allocates: every class sees objects.
#[test]
fn model_sizes_reach_many_classes() {
    let mut seen = HashMap::new();
    for size in 100..3500 {
        *seen.entry(class_of(size).unwrap()).or_insert(0) += 1;
    }
    assert!(seen.len() > NCLASSES / 2);
}
