// SPDX-License-Identifier: GPL-2.0

//! [`Pool::check`]: the pool's invariants, checked from scratch, for tests.

use super::descriptor::Descriptor;
use super::{PageSource, Pool, NCHUNKS, NO_SLOT, OBJECTS_PER_PAGE};
use crate::zalloc::Record;

impl<P: PageSource> Pool<P> {
    /// Checks the pool's invariants: every descriptor (objects inside the
    /// page and not overlapping, map counts only on live objects, the
    /// deferred flag set exactly when the free chunks are in pieces, which
    /// only a mapped page may have), the slot table (its own check, and its
    /// free slots against the records), the unbuddied lists (each listable
    /// page on the list for its largest free region, with consistent links,
    /// no other page on a list) and the counters.
    /// Returns what is wrong first.
    ///
    /// Walks the whole table: for tests, not for the hot path.
    pub fn check(&self) -> Result<(), &'static str> {
        let table_free = self.table.check()?;
        let mut classes = [0u64; OBJECTS_PER_PAGE + 1];
        let (mut objects, mut free_slots, mut listable) = (0u64, 0u32, 0u32);
        let (mut forwarders, mut foreign) = (0u64, 0u64);
        for slot in 0..self.table.slot_limit() {
            // Record 0 of each leaf and the slots of missing leaves.
            let Some(descriptor) = self.table.get(slot) else {
                continue;
            };
            if descriptor.vacancy().is_some() {
                free_slots = free_slots.wrapping_add(1);
                continue;
            }
            if let Some((to, index)) = descriptor.forwarded() {
                check_forwarder(descriptor)?;
                let target = self
                    .descriptor(to)
                    .ok_or("a forwarder names a slot without page")?;
                // The low 16 bits of the forwarder's slot.
                if !target.is_foreign(index) || target.generation(index) != Some(slot & 0xffff) {
                    return Err("a forwarder names an object that is not its own");
                }
                forwarders = forwarders.wrapping_add(1);
                continue;
            }
            check_descriptor(descriptor)?;
            foreign = foreign.wrapping_add(
                (0..OBJECTS_PER_PAGE)
                    .filter(|&i| descriptor.is_foreign(i))
                    .count() as u64,
            );
            let class = classes
                .get_mut(descriptor.class())
                .ok_or("a page of no class")?;
            *class = class.wrapping_add(1);
            objects = objects.wrapping_add(descriptor.count() as u64);
            if descriptor.list().is_some() {
                listable = listable.wrapping_add(1);
            } else if descriptor.prev != NO_SLOT || descriptor.next != NO_SLOT {
                return Err("a page on no list has list links");
            }
        }
        if classes != self.classes {
            return Err("page counts do not match the pages");
        }
        if objects != self.objects {
            return Err("the object count does not match the objects");
        }
        if forwarders != foreign || foreign != self.forwarded {
            return Err("forwarders, foreign objects and their count disagree");
        }

        if u64::from(free_slots) != table_free {
            return Err("the table and its records disagree on the free slots");
        }

        let mut listed = 0u32;
        for (list, &head) in self.unbuddied.iter().enumerate() {
            let (mut prev, mut slot) = (NO_SLOT, head);
            while slot != NO_SLOT {
                let descriptor = self
                    .descriptor(slot)
                    .ok_or("an unbuddied list names a free or unknown slot")?;
                if descriptor.list() != Some(list) {
                    return Err("a page is on the wrong unbuddied list");
                }
                if descriptor.prev != prev {
                    return Err("an unbuddied list has a bad back link");
                }
                listed = listed.wrapping_add(1);
                if listed > listable {
                    return Err("an unbuddied list has a cycle");
                }
                (prev, slot) = (slot, descriptor.next);
            }
        }
        if listed != listable {
            return Err("a page is missing from its unbuddied list");
        }
        Ok(())
    }
}

/// Checks the invariants of a forwarder.
fn check_forwarder(forwarder: &Descriptor) -> Result<(), &'static str> {
    if forwarder.count() != 1 || forwarder.starts != [0; OBJECTS_PER_PAGE] {
        return Err("a forwarder without exactly one object");
    }
    if forwarder.is_mapped() || forwarder.is_deferred() || forwarder.has_foreign() {
        return Err("a forwarder has state");
    }
    Ok(())
}

/// Checks the invariants of the descriptor of a page of the pool.
fn check_descriptor(descriptor: &Descriptor) -> Result<(), &'static str> {
    if descriptor.is_empty() {
        return Err("a page without objects");
    }
    for index in 0..OBJECTS_PER_PAGE {
        if !descriptor.is_live(index)
            && (descriptor.start(index) != 0
                || descriptor.maps(index) != 0
                || descriptor.is_foreign(index))
        {
            return Err("a free object has a start, a map count or a foreign flag");
        }
    }
    let mut end = 0;
    for extent in descriptor.extents().as_slice() {
        if extent.start < end {
            return Err("objects overlap");
        }
        end = extent.end();
    }
    if end > NCHUNKS {
        return Err("an object ends beyond its page");
    }
    let contiguous = descriptor.is_contiguous();
    if descriptor.is_deferred() == contiguous {
        return Err("the deferred flag does not match the free chunks");
    }
    if !contiguous && !descriptor.is_mapped() {
        return Err("an unmapped page is not compacted");
    }
    Ok(())
}
