// SPDX-License-Identifier: GPL-2.0

//! `Pool::map_lockless`: the same answers as `Pool::map` for live handles,
//! none for the handles `map` rejects, and no data race with a writer that
//! changes the pool meanwhile under its lock (run under Miri, whose race
//! detector checks the latter: `make miri`).

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use rkm_zalloc::testing::SharedPages;
use rkm_zbud::zalloc::LocklessView;
use rkm_zbud::{Handle, Pool, MAX_ALLOC_SIZE};

type Zbud = Pool<SharedPages>;

fn lockless(view: &LocklessView, handle: Handle) -> Option<NonNull<u8>> {
    // SAFETY: the tests publish the pool's table in `view` and keep the
    // pool until their readers are done.
    unsafe { Zbud::map_lockless(view, handle) }
}

/// A small xorshift, so that the test needs no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn size(&mut self) -> usize {
        1 + (self.next() % MAX_ALLOC_SIZE as u64) as usize
    }
}

#[test]
fn lockless_map_agrees_with_map() {
    let view = LocklessView::new();
    let mut pool = Zbud::new(SharedPages::default());
    // Nothing published: nothing found.
    let first = pool.alloc(100, ()).unwrap();
    assert_eq!(lockless(&view, first), None);
    pool.publish(&view);
    assert_eq!(lockless(&view, first), Some(pool.map(first).unwrap()));

    let mut rng = Rng(0x1234_5678);
    let mut live = vec![first];
    let mut dead = Vec::new();
    let steps = if cfg!(miri) { 300 } else { 5000 };
    for _ in 0..steps {
        if live.len() > 8 && rng.next() % 2 == 0 {
            let i = (rng.next() % live.len() as u64) as usize;
            let h = live.swap_remove(i);
            pool.free(h).unwrap();
            dead.push(h);
        } else {
            live.push(pool.alloc(rng.size(), ()).unwrap());
            pool.publish(&view);
        }
    }
    pool.check().unwrap();
    for &h in &live {
        assert_eq!(lockless(&view, h), Some(pool.map(h).unwrap()));
        // The other buddy, free or with another generation.
        let other = Handle::from_raw(h.to_raw() ^ 1);
        assert_eq!(lockless(&view, other), pool.map(other).ok());
        // Another generation; another tag.
        assert_eq!(
            lockless(&view, Handle::from_raw(h.to_raw() ^ 1 << 30)),
            None
        );
        assert_eq!(
            lockless(&view, Handle::from_raw(h.to_raw() ^ 1 << 60)),
            None
        );
    }
    for &h in &dead {
        assert!(pool.map(h).is_err());
        assert_eq!(lockless(&view, h), None);
    }
    // Malformed (a leaf's record 0) and out of any leaf.
    let tag = first.to_raw() & 0xffff << 48;
    assert_eq!(lockless(&view, Handle::from_raw(tag | 256 << 1)), None);
    assert_eq!(
        lockless(&view, Handle::from_raw(tag | ((1 << 26) - 1) << 1)),
        None
    );

    // Emptied, the pool gives its table back (deferred) and publishes
    // that: old handles find nothing.
    for h in live.drain(..) {
        pool.free(h).unwrap();
        dead.push(h);
    }
    pool.publish(&view);
    assert_eq!(pool.stats().table_pages, 0);
    for &h in &dead {
        assert_eq!(lockless(&view, h), None);
    }
    // Reset: a new tag, the table gone; published, readers find nothing.
    assert_eq!(pool.reset(), Ok(()));
    pool.publish(&view);
    assert_eq!(lockless(&view, dead[0]), None);
    let h = pool.alloc(100, ()).unwrap();
    pool.publish(&view);
    assert_eq!(lockless(&view, h), Some(pool.map(h).unwrap()));
    pool.free(h).unwrap();
    assert_eq!(pool.destroy(), Ok(()));
}

/// A writer allocates and frees under the pool's lock (pages and slots
/// come and go; a second leaf of the table, and its interior node's free
/// bits, fill and empty) while two readers map, without the lock, handles
/// that stay live (each must give the same address, and the bytes stamped
/// there) and handles freed before they look (each must be refused, also
/// in a leaf the table has dropped meanwhile).
#[test]
fn lockless_readers_and_a_writer() {
    let view = LocklessView::new();
    let pool = Mutex::new(Zbud::new(SharedPages::default()));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Objects that live through the test, stamped with their number (and
    // their addresses as numbers, which threads share).
    let pinned: Vec<(Handle, usize, usize)> = {
        let mut pool = pool.lock().unwrap();
        let pinned = (0..8u8)
            .map(|i| {
                let size = rng.size();
                let h = pool.alloc(size, ()).unwrap();
                let at = pool.map(h).unwrap();
                // SAFETY: `at` is the object's address, `size` bytes.
                unsafe { at.as_ptr().write_bytes(i, size) };
                (h, size, at.as_ptr() as usize)
            })
            .collect();
        pool.publish(&view);
        pinned
    };
    let dead = Mutex::new(Vec::new());
    let done = AtomicBool::new(false);
    let (writes, reads) = if cfg!(miri) {
        (1200, 60)
    } else {
        (12000, 4000)
    };
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for round in 0..reads {
                    for (i, &(h, size, at)) in pinned.iter().enumerate() {
                        let found = lockless(&view, h).unwrap();
                        assert_eq!(found.as_ptr() as usize, at);
                        // SAFETY: the object is live, `size` bytes at
                        // `found`; only its stamp was ever written there.
                        let last = unsafe { found.as_ptr().add(size - 1).read() };
                        assert_eq!(last, i as u8);
                    }
                    // Freed before this look: refused.
                    let freed: Vec<Handle> = dead.lock().unwrap().clone();
                    for h in freed.iter().rev().take(4) {
                        assert_eq!(lockless(&view, *h), None);
                    }
                    if done.load(Ordering::Relaxed) && round > 1 {
                        break;
                    }
                }
            });
        }
        let mut live = Vec::new();
        let (mut most_table, mut dropped) = (0, false);
        for step in 0..writes {
            let mut pool = pool.lock().unwrap();
            // 320 steps that fill pages of one object past the first
            // leaf's 255 slots (then churn), 280 that free the newest
            // objects first, emptying the second leaf.
            let filling = step % 600 < 320;
            let free = if filling {
                live.len() >= 260 && rng.next() % 2 == 0
            } else {
                !live.is_empty()
            };
            if !free {
                let size = if filling { MAX_ALLOC_SIZE } else { rng.size() };
                live.push(pool.alloc(size, ()).unwrap());
                pool.publish(&view);
                most_table = most_table.max(pool.stats().table_pages);
            } else {
                let i = if filling {
                    (rng.next() % live.len() as u64) as usize
                } else {
                    live.len() - 1
                };
                let h = live.swap_remove(i);
                pool.free(h).unwrap();
                pool.publish(&view);
                let table = pool.stats().table_pages;
                dropped |= table < most_table;
                drop(pool);
                dead.lock().unwrap().push(h);
            }
        }
        // The table grew a leaf and dropped it again.
        assert!(most_table > 3 && dropped, "{most_table} table pages");
        let mut pool = pool.lock().unwrap();
        for h in live {
            pool.free(h).unwrap();
        }
        done.store(true, Ordering::Relaxed);
    });
    let mut pool = pool.into_inner().unwrap();
    pool.check().unwrap();
    for (h, _, _) in pinned {
        pool.free(h).unwrap();
    }
    assert_eq!(pool.destroy(), Ok(()));
}
