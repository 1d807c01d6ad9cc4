#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""A model of zspan's and zsmalloc's pages for a trace of object sizes.

Not a measurement (``make bench-zspan`` measures): each class's spans are
filled but its last, which holds the rest; zspan's tables are counted at
their records' bytes (16 an object, 128 a span, no node slack), zsmalloc's
objects carry their 8-byte handle (its handle slab is not counted, as in
zs_get_total_pages). It prints the pages for 16- and 8-byte size steps
below 256 bytes and for 16- and 8-byte object records, to show what each
change could give (Documentation/zspan.rst, *Size classes and spans*).

    bench/zspan-density-model.py [min max count [seed]]

Defaults: the *small* workload of bench-zspan (60 to 150 bytes, 16384
objects).
"""
import bisect
import random
import sys
from collections import Counter

PAGE = 4096
SPAN_RECORD = 128
MAX_OBJECTS = 256
MAX_PAGES = 6


def best_span(size, record):
    """zspan's rule (rust/zspan/src/classes.rs): the fewest pages within
    31/32 of the best bytes stored per byte a span costs."""
    def geometry(pages):
        return pages, min(pages * PAGE // size, MAX_OBJECTS)

    def cost(g):
        return g[0] * PAGE + SPAN_RECORD + g[1] * record

    best = geometry(1)
    for pages in range(2, MAX_PAGES + 1):
        g = geometry(pages)
        if g[1] * cost(best) > best[1] * cost(g):
            best = g
    for pages in range(1, best[0]):
        g = geometry(pages)
        if g[1] * cost(best) * 32 >= best[1] * cost(g) * 31:
            return g
    return best


def zspan_pages(sizes, fine_limit, record):
    steps, size = [], 16
    while size <= PAGE:
        steps.append(size)
        size += 8 if size < fine_limit else 16
    # Neighbouring steps with the same span are one class (the larger size).
    class_of, last = {}, None
    for step in reversed(steps):
        g = best_span(step, record)
        if last is None or last[1:] != g:
            last = (step,) + g
        class_of[step] = last
    count = Counter(class_of[steps[bisect.bisect_left(steps, s)]] for s in sizes)
    pages = spans = 0
    for (_, npages, objects), n in count.items():
        k = -(-n // objects)
        spans += k
        pages += k * npages
    return pages + (len(sizes) * record + spans * SPAN_RECORD) / PAGE


def zsmalloc_pages(sizes, chain=8):
    count = Counter(max(32, -(-(s + 8) // 16) * 16) for s in sizes)
    pages = 0
    for size, n in count.items():
        # The zspage of up to `chain` pages that wastes the least.
        npages = min(range(1, chain + 1), key=lambda p: (p * PAGE % size) / (p * PAGE))
        objects = npages * PAGE // size
        pages += -(-n // objects) * npages
    return pages


def main():
    args = [int(a) for a in sys.argv[1:]]
    lo, hi, n, seed = (args + [60, 150, 16384, 1][len(args):])[:4]
    rng = random.Random(seed)
    sizes = [rng.randint(lo, hi) for _ in range(n)]
    print(f"{n} objects of {lo} to {hi} bytes (seed {seed}): pages")
    print(f"  zsmalloc (8-byte handle in each object)      {zsmalloc_pages(sizes):7.0f}")
    for limit, step in ((16, "16-byte steps"), (256, "8-byte steps to 256")):
        for record in (16, 8):
            pages = zspan_pages(sizes, limit, record)
            print(f"  zspan, {step:19}, {record:2}-byte records {pages:7.0f}")


if __name__ == "__main__":
    main()
