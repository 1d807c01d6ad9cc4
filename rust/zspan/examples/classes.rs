// SPDX-License-Identifier: GPL-2.0

//! Prints zspan's classes: size, pages and objects of a span, and the share
//! of the span's pages the objects fill (`cargo run --example classes`).

use rkm_zspan::{CLASSES, NCLASSES};

fn main() {
    println!("{NCLASSES} classes");
    println!(
        "{:>6} {:>6} {:>8} {:>8}",
        "size", "pages", "objects", "filled"
    );
    for g in CLASSES.iter() {
        let filled = usize::from(g.objects) * usize::from(g.size) * 1000
            / (usize::from(g.pages) * rkm_zalloc::PAGE_SIZE);
        println!(
            "{:>6} {:>6} {:>8} {:>5}.{}%",
            g.size,
            g.pages,
            g.objects,
            filled / 10,
            filled % 10
        );
    }
}
