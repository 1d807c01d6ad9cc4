// SPDX-License-Identifier: GPL-2.0

//! [`Pool::check`]: the pool's invariants, checked from scratch, for tests.

use super::{size_to_chunks, Handle, Header, PageSource, Pool, MAX_ALLOC_SIZE, NCHUNKS, NO_SLOT};
use crate::zalloc::Record;

/// The most chunks an object takes.
const MAX_OBJECT_CHUNKS: u32 = size_to_chunks(MAX_ALLOC_SIZE) as u32;

impl<P: PageSource> Pool<P> {
    /// Checks the pool's invariants: the slot table (its own check, and its
    /// free slots against its entries), every page's header (at least one
    /// buddy, buddies of at most [`MAX_ALLOC_SIZE`] that do not overlap,
    /// generations in range, no list links on a page with two buddies), the
    /// unbuddied lists (each page with one buddy on the list for its free
    /// chunks, which its buddies' sizes give, exactly once, with consistent
    /// links; no page with two buddies on a list) and the counters (pages,
    /// pages with two buddies, objects), and each slot's entry against its
    /// page's header (the buddies' generations and sizes, which
    /// [`Pool::map_lockless`] reads there). Returns what is wrong first.
    ///
    /// Walks the whole table and every list: for tests, not for the hot
    /// path.
    pub fn check(&self) -> Result<(), &'static str> {
        let table_free = self.slots.check()?;
        let (mut pages, mut buddied, mut objects, mut free_slots) = (0u64, 0u64, 0u64, 0u64);
        let mut agree = true;
        for slot in 0..self.slots.slot_limit() {
            // Entry 0 of each leaf and the slots of missing leaves.
            let Some(entry) = self.slots.get(slot) else {
                continue;
            };
            if entry.vacancy().is_some() {
                free_slots = free_slots.wrapping_add(1);
                continue;
            }
            let (_, header) = self
                .page(slot)
                .map_err(|_| "an occupied slot has no page")?;
            check_header(&header)?;
            agree &= entry.buddies() == header.buddies();
            pages = pages.wrapping_add(1);
            if header.is_full() {
                buddied = buddied.wrapping_add(1);
                objects = objects.wrapping_add(2);
            } else {
                objects = objects.wrapping_add(1);
            }
        }
        if free_slots != table_free {
            return Err("the table and its entries disagree on the free slots");
        }
        if pages != self.pages {
            return Err("the page count does not match the pages");
        }
        if buddied != self.buddied_pages {
            return Err("the count of pages with two buddies does not match the pages");
        }
        if objects != self.objects {
            return Err("the object count does not match the buddies");
        }

        // Every page with one buddy, on its list once: `listed` can reach
        // their number only if no list has a cycle or a page twice (a page
        // listed twice would need two back links).
        let single = pages.wrapping_sub(buddied);
        let mut listed = 0u64;
        for (list, &head) in self.unbuddied.iter().enumerate() {
            let (mut prev, mut slot) = (NO_SLOT, head);
            while slot != NO_SLOT {
                let (_, header) = self
                    .page(slot)
                    .map_err(|_| "an unbuddied list names a free or unknown slot")?;
                if header.is_full() {
                    return Err("a page with two buddies is on an unbuddied list");
                }
                if header.free_chunks() != list {
                    return Err("a page is on the wrong unbuddied list for its free chunks");
                }
                if header.prev != prev {
                    return Err("an unbuddied list has a bad back link");
                }
                listed = listed.wrapping_add(1);
                if listed > single {
                    return Err("an unbuddied list has a cycle or lists a page twice");
                }
                (prev, slot) = (slot, header.next);
            }
        }
        if listed != single {
            return Err("a page with one buddy is missing from its unbuddied list");
        }
        if !agree {
            return Err("a slot's entry and its page's header disagree on the buddies");
        }
        Ok(())
    }
}

/// Checks the header of a page of the pool, on its own.
fn check_header(header: &Header) -> Result<(), &'static str> {
    if header.is_empty() {
        return Err("a page without objects");
    }
    let [first, last] = header.chunks;
    if first > MAX_OBJECT_CHUNKS || last > MAX_OBJECT_CHUNKS {
        return Err("a buddy is larger than the largest object");
    }
    // Both at most 62: no overflow.
    if (first + last) as usize > NCHUNKS {
        return Err("the buddies overlap");
    }
    let out_of_range = |generation: u32| generation & !Handle::GENERATION_MASK != 0;
    if out_of_range(header.counter)
        || header
            .generations
            .iter()
            .zip(header.chunks)
            .any(|(&generation, chunks)| chunks != 0 && out_of_range(generation))
    {
        return Err("a generation is out of range");
    }
    if header.is_full() && (header.prev != NO_SLOT || header.next != NO_SLOT) {
        return Err("a page with two buddies has list links");
    }
    Ok(())
}
