// SPDX-License-Identifier: GPL-2.0

//! Size classes and their span geometry, computed at compile time; see
//! *Size classes and spans* in the [parent module](super).

use crate::zalloc::PAGE_SIZE;

/// Sizes above [`FINE_LIMIT`] step by this many bytes: an object of
/// `size` bytes goes to the class of the first step at or above it (or a
/// merged class above that).
pub const CLASS_DELTA: usize = 16;

/// Sizes up to this many bytes step by [`FINE_DELTA`], from the smallest
/// class, [`MIN_SIZE`]. Rounding a size up to its step wastes half a step
/// on average, 7.5 bytes of an object of 60 to 150 bytes with 16-byte
/// steps (6 %: the object's 16-byte record costs as much again); with
/// 8-byte steps, 3.5. Above it the waste is a small part of the object,
/// and each class more is one more part-empty span.
pub const FINE_LIMIT: usize = 256;

/// The steps up to [`FINE_LIMIT`].
pub const FINE_DELTA: usize = 8;

/// The smallest class: a page of it is [`MAX_SPAN_OBJECTS`] objects.
pub const MIN_SIZE: usize = 16;

/// The largest object, a page: zswap stores nothing larger.
pub const MAX_SIZE: usize = PAGE_SIZE;

/// The most pages a span has. A class's last span is part empty, half of
/// it on average: with 16-page spans and objects in a hundred classes
/// that slack was most of what zspan lost to zsmalloc (Documentation/
/// zspan.rst); 6 pages keep the fill of large pools (a model of the
/// benchmark's sizes: 2.49 objects a page at 20000 objects, 2.43 at 8000,
/// against 2.46 and 1.86 with 16) and much of small ones.
pub const MAX_SPAN_PAGES: usize = 6;

/// The most objects a span holds (its bitmap's bits, and its index's in
/// an object's record): a page of the smallest class, [`MIN_SIZE`].
pub const MAX_SPAN_OBJECTS: usize = 256;

/// Bytes of metadata a span costs (its record in the span table), counted
/// in the geometry's choice.
pub const SPAN_COST: usize = 128;

/// Bytes of metadata an object costs (its record in the object table),
/// counted in the geometry's choice.
pub const OBJECT_COST: usize = 16;

/// A span of fewer pages is chosen over the best if it stores at least
/// this many 32nds of the best's bytes per byte it costs: a smaller span
/// leaves less of a class's last span empty.
const TOLERANCE_32NDS: usize = 31;

/// The fine steps: step `i <= FINE_STEPS - 1` is the size
/// `MIN_SIZE + i * FINE_DELTA`.
const FINE_STEPS: usize = (FINE_LIMIT - MIN_SIZE) / FINE_DELTA + 1;

/// Size steps: the fine ones, then `FINE_LIMIT + CLASS_DELTA` up to
/// [`MAX_SIZE`] by [`CLASS_DELTA`]. An object goes to the first step at or
/// above its size ([`step_of`]).
const STEPS: usize = FINE_STEPS + (MAX_SIZE - FINE_LIMIT) / CLASS_DELTA;

// The steps meet: the fine ones end at FINE_LIMIT, the coarse ones at a page.
const _: () = assert!((FINE_LIMIT - MIN_SIZE) % FINE_DELTA == 0);
const _: () = assert!((MAX_SIZE - FINE_LIMIT) % CLASS_DELTA == 0);
const _: () = assert!(MIN_SIZE * MAX_SPAN_OBJECTS == PAGE_SIZE);

/// The size of step `step` (`< STEPS`).
const fn step_size(step: usize) -> usize {
    if step < FINE_STEPS {
        MIN_SIZE + step * FINE_DELTA
    } else {
        FINE_LIMIT + (step + 1 - FINE_STEPS) * CLASS_DELTA
    }
}

/// The step of an object of `size` bytes, `1..=MAX_SIZE`: the first whose
/// size is at least `size`.
const fn step_of(size: usize) -> usize {
    if size <= MIN_SIZE {
        0
    } else if size <= FINE_LIMIT {
        (size - MIN_SIZE).div_ceil(FINE_DELTA)
    } else {
        FINE_STEPS - 1 + (size - FINE_LIMIT).div_ceil(CLASS_DELTA)
    }
}

/// A class: its objects' size (the largest they may be), and its spans'
/// pages and objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// The objects' size in bytes, a step's: a multiple of [`FINE_DELTA`].
    pub size: u16,
    /// Pages of a span, `1..=MAX_SPAN_PAGES`.
    pub pages: u8,
    /// Objects of a span, `1..=MAX_SPAN_OBJECTS`:
    /// `min(pages * PAGE_SIZE / size, MAX_SPAN_OBJECTS)`.
    pub objects: u16,
}

const fn min(a: usize, b: usize) -> usize {
    if a < b {
        a
    } else {
        b
    }
}

/// The span of `pages` pages for objects of `size` bytes.
const fn geometry(size: usize, pages: usize) -> Geometry {
    Geometry {
        size: size as u16,
        pages: pages as u8,
        objects: min(pages * PAGE_SIZE / size, MAX_SPAN_OBJECTS) as u16,
    }
}

/// Bytes a span of `g` costs: its pages, its record and its objects'
/// records.
const fn cost(g: Geometry) -> usize {
    g.pages as usize * PAGE_SIZE + SPAN_COST + g.objects as usize * OBJECT_COST
}

/// The span for objects of `size` bytes: of those that store at least
/// [`TOLERANCE_32NDS`]/32 of the most object bytes per byte a span costs
/// ([`cost`]), the one with the fewest pages. Integer arithmetic only:
/// `a / b > c / d` is `a * d > c * b`.
const fn best_geometry(size: usize) -> Geometry {
    let mut best = geometry(size, 1);
    let mut pages = 2;
    while pages <= MAX_SPAN_PAGES {
        let g = geometry(size, pages);
        let stored = g.objects as usize * size;
        let best_stored = best.objects as usize * size;
        if stored * cost(best) > best_stored * cost(g) {
            best = g;
        }
        pages += 1;
    }
    let best_stored = best.objects as usize * size;
    let mut pages = 1;
    while pages < best.pages as usize {
        let g = geometry(size, pages);
        let stored = g.objects as usize * size;
        if stored * cost(best) * 32 >= best_stored * cost(g) * TOLERANCE_32NDS {
            return g;
        }
        pages += 1;
    }
    best
}

/// The classes, and each size step's class: neighbouring steps whose best
/// spans have the same pages and objects are one class, of the largest
/// step's size (a larger size in the same span wastes nothing more).
struct Table {
    classes: [Geometry; STEPS],
    count: usize,
    class_of_step: [u8; STEPS],
}

const fn build() -> Table {
    let mut table = Table {
        classes: [Geometry {
            size: 0,
            pages: 0,
            objects: 0,
        }; STEPS],
        count: 0,
        class_of_step: [0; STEPS],
    };
    // From the largest step down: a step joins the class above when its
    // span is the same.
    let mut step = STEPS;
    let mut reversed = [0u8; STEPS];
    while step > 0 {
        step -= 1;
        let g = best_geometry(step_size(step));
        let last = table.count;
        if last > 0
            && table.classes[last - 1].pages == g.pages
            && table.classes[last - 1].objects == g.objects
        {
            reversed[step] = (last - 1) as u8;
        } else {
            table.classes[last] = g;
            table.count = last + 1;
            reversed[step] = last as u8;
        }
    }
    // Number the classes from the smallest size up.
    let mut i = 0;
    while i < table.count / 2 {
        let j = table.count - 1 - i;
        let t = table.classes[i];
        table.classes[i] = table.classes[j];
        table.classes[j] = t;
        i += 1;
    }
    let mut s = 0;
    while s < STEPS {
        table.class_of_step[s] = (table.count - 1 - reversed[s] as usize) as u8;
        s += 1;
    }
    table
}

const TABLE: Table = build();

/// Number of classes.
pub const NCLASSES: usize = TABLE.count;

/// The classes, by size.
pub const CLASSES: [Geometry; NCLASSES] = {
    let mut out = [Geometry {
        size: 0,
        pages: 0,
        objects: 0,
    }; NCLASSES];
    let mut i = 0;
    while i < NCLASSES {
        out[i] = TABLE.classes[i];
        i += 1;
    }
    out
};

/// The class of each 8 bytes of size: entry `i` is the class of the sizes
/// `8 * i + 1 ..= 8 * (i + 1)`, which are all in one step (every step's
/// size is a multiple of [`FINE_DELTA`]; asserted below). One load a
/// lookup, as with one kind of step.
const CLASS_OF_EIGHTH: [u8; MAX_SIZE / FINE_DELTA] = {
    let mut out = [0u8; MAX_SIZE / FINE_DELTA];
    let mut i = 0;
    while i < MAX_SIZE / FINE_DELTA {
        out[i] = TABLE.class_of_step[step_of((i + 1) * FINE_DELTA)];
        // The entry's first size is in the same step as its last.
        assert!(step_of(i * FINE_DELTA + 1) == step_of((i + 1) * FINE_DELTA));
        i += 1;
    }
    out
};

const _: () = assert!(MAX_SIZE % FINE_DELTA == 0 && CLASS_DELTA % FINE_DELTA == 0);

// Every class fits its limits, and a class index fits a byte.
const _: () = {
    assert!(NCLASSES <= 256);
    let mut i = 0;
    while i < NCLASSES {
        let g = CLASSES[i];
        assert!(g.size as usize % FINE_DELTA == 0 && g.size as usize <= MAX_SIZE);
        assert!(g.size as usize >= MIN_SIZE);
        assert!(g.pages >= 1 && g.pages as usize <= MAX_SPAN_PAGES);
        assert!(g.objects >= 1 && g.objects as usize <= MAX_SPAN_OBJECTS);
        assert!(g.objects as usize * g.size as usize <= g.pages as usize * PAGE_SIZE);
        i += 1;
    }
};

/// The class of an object of `size` bytes, `1..=MAX_SIZE`; `None` for 0
/// and above [`MAX_SIZE`].
pub fn class_of(size: usize) -> Option<usize> {
    let eighth = size.checked_sub(1)? / FINE_DELTA;
    CLASS_OF_EIGHTH.get(eighth).map(|&c| usize::from(c))
}
