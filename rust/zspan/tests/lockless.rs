// SPDX-License-Identifier: GPL-2.0

//! `Pool::map_lockless`: where `Pool::map` finds an object, it pins it; a
//! pinned object is neither mapped again, nor freed, nor moved, until
//! `Pool::unmap_lockless`; bad handles find nothing; and readers that map
//! and write objects without the lock race with no writer that allocates,
//! frees and compacts under it (run under Miri, whose race detector
//! checks that: `make miri`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use rkm_zalloc::testing::SharedPages;
use rkm_zspan::{class_of, Handle, HandleError, Mapping, Pool, Shared, CLASSES, PINS};

type Zspan<'a> = Pool<&'a SharedPages>;

fn lockless(shared: &Shared, handle: Handle) -> Option<Mapping> {
    // SAFETY: the tests share `shared` with their pool (which publishes
    // its tables there after each change) and keep the pool, and the
    // deferred pages, until their readers are done.
    unsafe { Zspan::map_lockless(shared, handle) }
}

/// Writes `stamp` over the object of `m`.
fn stamp(m: &Mapping, stamp: u8) {
    for &(at, len) in m.pieces() {
        // SAFETY: a piece of a mapped (or pinned) object, `len` bytes.
        unsafe { at.as_ptr().write_bytes(stamp, len) };
    }
}

/// Whether every byte of the object of `m`, `size` bytes, is `stamp`.
fn stamped(m: &Mapping, size: usize, stamp: u8) -> bool {
    let mut left = size;
    m.pieces().iter().all(|&(at, len)| {
        let n = len.min(left);
        left -= n;
        // SAFETY: as in `stamp`.
        unsafe { std::slice::from_raw_parts(at.as_ptr(), n) }
            .iter()
            .all(|&b| b == stamp)
    })
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

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[test]
fn a_pinned_object_is_neither_mapped_nor_freed_nor_moved() {
    let pages = SharedPages::default();
    let shared = Shared::new();
    let mut pool = Zspan::new(&pages);
    // Not shared: nothing published, nothing found.
    let first = pool.alloc(100, ()).unwrap();
    assert_eq!(lockless(&shared, first), None);
    // SAFETY: `shared` outlives the pool, at its address.
    unsafe { pool.share(&shared) };

    // Same place as the lock's map; a second map of either kind refused.
    let m = lockless(&shared, first).unwrap();
    assert_eq!(pool.stats().mapped, 1);
    assert_eq!(lockless(&shared, first), None);
    assert_eq!(pool.map(first), Err(HandleError::Mapped));
    assert_eq!(pool.free(first), Err(HandleError::Mapped));
    pool.check().unwrap();
    assert!(Zspan::unmap_lockless(&shared, first));
    assert!(!Zspan::unmap_lockless(&shared, first));
    assert_eq!(pool.map(first), Ok(m));
    // Mapped under the lock: not without it, and not unmapped without it.
    assert_eq!(lockless(&shared, first), None);
    assert!(!Zspan::unmap_lockless(&shared, first));
    assert_eq!(pool.unmap(first), Ok(m));
    assert_eq!(pool.stats().mapped, 0);

    // Objects of a class over half a page (split ones among them), every
    // third kept, the rest freed: compaction has spans to empty.
    let size = 1500;
    let g = CLASSES[class_of(size).unwrap()];
    let handles: Vec<_> = (0..u32::from(g.objects) * 8)
        .map(|i| {
            let h = pool.alloc(size, ()).unwrap();
            let m = lockless(&shared, h).unwrap();
            stamp(&m, i as u8);
            assert!(Zspan::unmap_lockless(&shared, h));
            (h, i as u8)
        })
        .collect();
    let mut kept = Vec::new();
    for (i, (h, s)) in handles.into_iter().enumerate() {
        if i % 3 == 0 {
            kept.push((h, s));
        } else {
            pool.free(h).unwrap();
        }
    }
    // Pinned: where the lock's map finds them, and compaction moves none.
    let mut pinned = Vec::new();
    for &(h, s) in &kept {
        match lockless(&shared, h) {
            Some(m) => {
                assert!(stamped(&m, size, s));
                pinned.push((h, m));
            }
            // Its pin is another object's (a slot PINS away).
            None => {
                let m = pool.map(h).unwrap();
                assert_eq!(pool.unmap(h), Ok(m));
            }
        }
    }
    assert!(pinned.len() >= PINS.min(kept.len()) / 2);
    assert!(pinned.iter().any(|(_, m)| !m.is_direct()));
    let c = pool.compact(100_000);
    pool.check().unwrap();
    for &(h, m) in &pinned {
        assert_eq!(pool.free(h), Err(HandleError::Mapped));
        assert!(Zspan::unmap_lockless(&shared, h));
        assert_eq!(pool.map(h), Ok(m), "a pinned object moved");
        pool.unmap(h).unwrap();
    }
    // Unpinned, they move.
    let more = pool.compact(100_000);
    assert!(c.moved + more.moved > 0 && more.moved > 0);
    pool.check().unwrap();
    for &(h, s) in &kept {
        let m = lockless(&shared, h).unwrap_or_else(|| pool.map(h).unwrap());
        assert!(stamped(&m, size, s));
        if !Zspan::unmap_lockless(&shared, h) {
            pool.unmap(h).unwrap();
        }
    }

    // Bad handles find nothing, and take no pin.
    let h = kept[0].0;
    for bad in [
        // Another generation, another tag, another shard.
        h.to_raw() ^ 1 << 40,
        h.to_raw() ^ 1 << 60,
        h.to_raw() ^ 1,
        // A leaf's record 0.
        h.to_raw() & !(((1 << 26) - 1) << 3),
    ] {
        assert_eq!(lockless(&shared, Handle::from_raw(bad)), None);
    }
    assert_eq!(shared.pinned(), 0);
    for (h, _) in kept {
        pool.free(h).unwrap();
    }
    assert_eq!(lockless(&shared, h), None);
    pool.free(first).unwrap();
    assert_eq!(pool.stats().table_pages, 0);
    assert_eq!(lockless(&shared, first), None);
    assert_eq!(pool.destroy(), Ok(()));
}

/// A writer allocates, stamps, frees and compacts under the pool's lock
/// while two readers map objects that live through the test without the
/// lock (under it when their pin is taken), check their stamps and write
/// them again: a move of a pinned object, or a free of its span, would be
/// a race Miri reports (and a stamp found wrong).
#[test]
fn lockless_readers_and_a_writer_that_compacts() {
    let pages = SharedPages::default();
    let shared = Shared::new();
    let pool = Mutex::new(Zspan::new(&pages));
    // SAFETY: `shared` outlives the pool, at its address.
    unsafe { pool.lock().unwrap().share(&shared) };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let sizes = [1500usize, 2600, 300];
    let stable: Vec<(Handle, usize, u8)> = {
        let mut pool = pool.lock().unwrap();
        (0..12u8)
            .map(|i| {
                let size = sizes[usize::from(i) % sizes.len()];
                let h = pool.alloc(size, ()).unwrap();
                let m = pool.map(h).unwrap();
                stamp(&m, i);
                pool.unmap(h).unwrap();
                (h, size, i)
            })
            .collect()
    };
    let done = AtomicBool::new(false);
    let (writes, reads) = if cfg!(miri) { (300, 30) } else { (20000, 4000) };
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let mut round = 0;
                while round < reads || !done.load(Ordering::Relaxed) {
                    round += 1;
                    for &(h, size, i) in &stable {
                        if let Some(m) = lockless(&shared, h) {
                            assert!(stamped(&m, size, i), "a pinned object changed");
                            stamp(&m, i);
                            assert!(Zspan::unmap_lockless(&shared, h));
                            continue;
                        }
                        // Pin taken, or the object BUSY: under the lock.
                        let mut pool = pool.lock().unwrap();
                        // The other reader may hold it mapped under the lock.
                        let Ok(m) = pool.map(h) else {
                            continue;
                        };
                        assert!(stamped(&m, size, i));
                        pool.unmap(h).unwrap();
                    }
                }
            });
        }
        let mut live: Vec<(Handle, usize, u8)> = Vec::new();
        for step in 0..writes {
            let mut pool = pool.lock().unwrap();
            if live.len() < 60 || rng.below(2) == 0 && live.len() < 200 {
                let size = sizes[rng.below(3) as usize] - rng.below(100) as usize;
                let h = pool.alloc(size, ()).unwrap();
                let m = pool.map(h).unwrap();
                let s = 100 + (step % 100) as u8;
                stamp(&m, s);
                pool.unmap(h).unwrap();
                live.push((h, size, s));
            } else {
                let (h, size, s) = live.swap_remove(rng.below(live.len() as u64) as usize);
                let m = pool.map(h).unwrap();
                assert!(stamped(&m, size, s));
                pool.unmap(h).unwrap();
                pool.free(h).unwrap();
                pool.after_free();
            }
            if step % 50 == 0 {
                pool.compact(64);
            }
        }
        let mut pool = pool.lock().unwrap();
        assert!(pool.stats().moved > 0);
        for (h, _, _) in live {
            pool.free(h).unwrap();
        }
        done.store(true, Ordering::Relaxed);
    });
    let mut pool = pool.into_inner().unwrap();
    pool.check().unwrap();
    assert_eq!(shared.pinned(), 0);
    for (h, size, i) in stable {
        let m = pool.map(h).unwrap();
        assert!(stamped(&m, size, i));
        pool.unmap(h).unwrap();
        pool.free(h).unwrap();
    }
    assert_eq!(pool.destroy(), Ok(()));
}
