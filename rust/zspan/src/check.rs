// SPDX-License-Identifier: GPL-2.0

//! The invariant checker of [`Pool`]: walks both tables and every list, for
//! tests (the model tests after every step, the kernel's test modules
//! under the lock).

use super::{inline_map, trigger, Group, Maps, Pool, CLASSES, GROUPS, MAX_SPAN_PAGES, NCLASSES};
use crate::zalloc::{PageSource, NO_SLOT};
use core::sync::atomic::Ordering;

/// A mix of a span slot and an index, for the multiset comparison of the
/// objects the spans' bitmaps have and those the object records name.
fn mix(span: u32, index: u32) -> u64 {
    let mut x = u64::from(span) << 32 | u64::from(index);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ x >> 33
}

impl<P: PageSource + Clone> Pool<P> {
    /// Checks the pool's invariants from scratch: the tables, every span
    /// (pages, bitmap, counts, list, its map), every list (links, fullness), the
    /// maps' pages, every
    /// object record (its span and index live, each named once: compared
    /// as multisets through a 64-bit mix of span and index), and every
    /// counter; returns what is wrong first. Walks the whole pool: for
    /// tests.
    pub fn check(&self) -> Result<(), &'static str> {
        self.objects.check()?;
        self.spans.check()?;
        if let Some(shared) = self.shared() {
            if !self.objects.is_published(&shared.objects)
                || !self.spans.is_published(&shared.spans)
            {
                return Err("a table is not published as it is");
            }
            if shared.shard.load(Ordering::Relaxed) != self.shard {
                return Err("the pool's Shared names another shard");
            }
        }
        let (mut pages, mut spans, mut live, mut bytes) = (0u64, 0u64, 0u64, 0u64);
        let (mut class_spans, mut class_live) = ([0u32; NCLASSES], [0u32; NCLASSES]);
        let mut listed = [[0u32; GROUPS]; NCLASSES];
        let mut bits_mix = 0u64;
        let mut blocks = 0u64;
        for slot in 0..self.spans.slot_limit() {
            let Some(span) = self.span(slot) else {
                continue;
            };
            let class = usize::from(span.class);
            let g = CLASSES.get(class).ok_or("a span's class is out of range")?;
            let head = span.head();
            let npages = head.npages();
            if head.class() != span.class {
                return Err("a span's head has another class than its body");
            }
            if npages != g.pages {
                return Err("a span's page count is not its class's");
            }
            for (i, page) in head.more_slots().iter().enumerate() {
                if page.is_null() != (i + 1 >= usize::from(npages)) {
                    return Err("a span's pages are not its first npages");
                }
            }
            if npages > self.spare.widest {
                return Err("a span is wider than the widest the spare knows");
            }
            for i in 0..usize::from(npages) {
                let page = head.page_at(i).ok_or("a span lacks a page")?;
                if self.spare.pages.contains(&Some(page)) {
                    return Err("a spare page is a span's");
                }
            }
            if span.used_past(g.objects) {
                return Err("a span has a live object past its class's objects");
            }
            let mut count = 0u16;
            for i in 0..u32::from(g.objects) {
                if span.is_used(i) {
                    count += 1;
                    bits_mix = bits_mix.wrapping_add(mix(slot, i));
                }
            }
            if count != span.live || span.live == 0 {
                return Err("a span's live count is not its bitmap's, or it is empty");
            }
            // Its map: in its record, or a block of its class's kind; it
            // names at each live index the object whose record names that
            // index of this span.
            match span.map {
                None if !inline_map(g.objects) => return Err("a span has no map"),
                Some(_) if inline_map(g.objects) => {
                    return Err("a span of a class that keeps its map inline has a block")
                }
                Some(map) => {
                    Maps::check_block(map, class)?;
                    blocks += 1;
                }
                None => {}
            }
            let mut index = span.next_used(0, g.objects);
            while let Some(i) = index {
                // SAFETY: The span's block, if any, is out (checked above),
                // and `i` is below its class's objects.
                let object = unsafe { span.slot_at(i) }.ok_or("a span's map has no entry")?;
                let record = self
                    .live_object(object)
                    .ok_or("a span's map names a free object slot")?;
                if record.span() != slot || record.index() != i {
                    return Err("a span's map names an object elsewhere");
                }
                index = span.next_used(i + 1, g.objects);
            }
            let want = if span.evacuating != 0 {
                Group::Evacuating as u8
            } else {
                Group::of(span.live, g.objects) as u8
            };
            if span.list != want {
                return Err("a span is not on the list its fullness calls for");
            }
            if want == Group::Full as u8 {
                // Marked full, linked on no list.
                if span.prev != NO_SLOT || span.next != NO_SLOT {
                    return Err("a full span is linked");
                }
            } else {
                listed[class][usize::from(want)] += 1;
            }
            class_spans[class] += 1;
            class_live[class] += u32::from(span.live);
            pages += u64::from(span.head().npages());
            spans += 1;
            live += u64::from(span.live);
            bytes += u64::from(span.live) * u64::from(g.size);
        }
        self.maps.check(blocks)?;
        for (class, c) in self.classes.iter().enumerate() {
            let objects = CLASSES.get(class).map_or(0, |g| u32::from(g.objects));
            if c.spans != class_spans[class]
                || Some(c.room) != c.spans.wrapping_mul(objects).checked_sub(class_live[class])
                || c.trigger != trigger(c.spans, objects)
            {
                return Err("a class's counts are not its spans'");
            }
            for (group, &head) in c.heads.iter().enumerate() {
                let (mut slot, mut prev, mut n) = (head, NO_SLOT, 0u32);
                while slot != NO_SLOT {
                    let span = self.span(slot).ok_or("a list names a free span slot")?;
                    if usize::from(span.class) != class || usize::from(span.list) != group {
                        return Err("a span is on another class's or list's list");
                    }
                    if span.prev != prev {
                        return Err("a list's back link is wrong");
                    }
                    n += 1;
                    if n > listed[class][group] {
                        return Err("a list has a cycle or a span it should not");
                    }
                    prev = slot;
                    slot = span.next;
                }
                if n != listed[class][group] {
                    return Err("a list misses a span");
                }
            }
        }
        let (mut objects, mut objects_mapped, mut records_mix) = (0u64, 0u64, 0u64);
        for slot in 0..self.objects.slot_limit() {
            let Some(record) = self.live_object(slot) else {
                continue;
            };
            let span = self
                .span(record.span())
                .ok_or("an object names a free span")?;
            let class_objects = CLASSES
                .get(usize::from(span.class))
                .map_or(0, |g| g.objects);
            if record.index() >= u32::from(class_objects) || !span.is_used(record.index()) {
                return Err("an object names an index its span has free");
            }
            objects += 1;
            if record.busy() {
                return Err("an object is left BUSY");
            }
            if record.mapped() {
                objects_mapped += 1;
            }
            records_mix = records_mix.wrapping_add(mix(record.span(), record.index()));
        }
        if objects != live || records_mix != bits_mix {
            return Err("the object records do not name the spans' live objects once each");
        }
        if objects_mapped != self.mapped {
            return Err("the mapped objects are not the pool's mapped count");
        }
        let kept = self.spare.len();
        if kept > usize::from(self.spare.widest)
            || usize::from(self.spare.widest) > MAX_SPAN_PAGES
            || self
                .spare
                .pages
                .iter()
                .enumerate()
                .any(|(i, p)| p.is_some() != (i < kept))
        {
            return Err("the spare's pages are not its first len");
        }
        if self.span_count == 0 && (kept != 0 || self.spare.widest != 0) {
            return Err("a pool without spans keeps spare pages");
        }
        if pages != self.pages
            || spans != self.span_count
            || live != self.live
            || bytes != self.class_bytes()
        {
            return Err("a pool counter is not the sum of its spans'");
        }
        Ok(())
    }
}
