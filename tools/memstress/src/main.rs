// SPDX-License-Identifier: GPL-2.0

//! `rkm-memstress`: the memory-pressure workload of the zswap backend tests.
//!
//! It runs inside the QEMU test guest, in a memory cgroup whose `memory.max`
//! is well below its working set, so that its pages are swapped out through
//! zswap (the compressed swap cache) and come back on access. Its job is to
//! notice any byte that is lost or corrupted on the way.
//!
//! # What it does
//!
//! 1. Maps `--size-mib` MiB of private anonymous memory (with
//!    `MADV_NOHUGEPAGE`, so that it is reclaimed as 4 KiB pages).
//! 2. Fills every 4096-byte page with content of one of five kinds, picked
//!    per page from the mix (default text 35 %, binary 25 %, pattern 20 %,
//!    random 15 %, zero 5 %) so that zswap sees a realistic spread of
//!    compression ratios:
//!    - `text`: English-like sentences from a word list, ~2-3x compressible;
//!    - `binary`: chunks of this program's own machine code mixed with short
//!      random runs, moderately compressible;
//!    - `pattern`: an 8-64 byte pattern repeated, highly compressible;
//!    - `random`: incompressible bytes, which zswap must reject as poorly
//!      compressible so they go to the swap device;
//!    - `zero`: zeros after a header, or an entirely zero page.
//!
//!    See [`content`] for the exact page layout. A page's content is a pure
//!    function of the seed, its index and its generation, so the only state
//!    kept besides the region is a 32-bit generation per page: expected
//!    content is regenerated, never copied. Each page (except the all-zero
//!    ones) starts with its index and generation, so that a page that comes
//!    back in the wrong place is identified as such.
//! 3. Runs verification passes: `--passes` of them (default 3), or as many as
//!    start within `--seconds`. In each pass `--threads` threads take
//!    disjoint shares of the pages, visit their share in a shuffled order,
//!    compare every byte of each page with its expected content and rewrite
//!    a quarter of the pages with a new generation, so that writes go through
//!    swap too. A corrupted page is reported and then repaired, so that each
//!    corruption is counted once.
//!
//! # Output
//!
//! Line-oriented on standard output, each line flushed (the test scripts read
//! it from the guest's serial console). A successful run:
//!
//! ```text
//! memstress: config: 8 MiB (2048 pages), 2 threads, 2 passes, seed 0x5eed, mix text=35,binary=25,pattern=20,random=15,zero=5, rewrite 25% per pass, code pool 256 KiB from /proc/self/exe, THP off
//! memstress: filled 2048 pages in 0.0 s (text 715, binary 512, pattern 431, random 300, zero 90)
//! memstress: pass 1/2: verified 2048 pages, rewrote 508, 0.0 s
//! memstress: pass 2/2: verified 2048 pages, rewrote 529, 0.0 s
//! memstress: OK: 2048 pages x 2 passes verified, 0 mismatches, 0.1 s
//! ```
//!
//! With `--seconds` and no `--passes` the pass lines read `pass 2:` instead
//! of `pass 2/3:`. A failed one:
//!
//! ```text
//! memstress: MISMATCH page 1024 offset 2049 expected 0x00 got 0xff (kind binary, gen 0)
//! memstress:   pass 1: 1 of 4096 bytes of page 1024 differ, offsets 2049..=2049; its header is intact
//! memstress: pass 1/2: verified 2048 pages, rewrote 508, 0.0 s, 1 mismatches in 1 pages
//! memstress: pass 2/2: verified 2048 pages, rewrote 529, 0.0 s
//! memstress: 1 corrupted page reads in 2 passes over 2048 pages, 0.0 s
//! memstress: FAILED: 1 mismatches
//! ```
//!
//! There is one `MISMATCH` line per corrupted page (for its first wrong
//! byte), for at most [`MAX_REPORTS`] pages, each followed by a detail line
//! that says how many bytes differ and what the page holds instead (all
//! zeros, another page's or generation's header, no header). The count of
//! mismatches is the number of wrong bytes, over all pages and passes.
//!
//! Exit status: 0 when every byte verified, 1 on mismatches, 2 on usage or
//! setup errors (with a `memstress: error: ...` message on standard error).
//!
//! The flag `--inject-corruption`, left out of `--help`, is for the tool's own
//! tests only: it flips one byte (page `pages / 2`, offset 2049) after the
//! fill, so that the first pass must report it.

#![deny(unsafe_op_in_unsafe_fn, rust_2018_idioms)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod cli;
mod content;
mod pool;
mod region;

use std::ffi::OsString;
use std::hint::black_box;
use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Instant;

use cli::{Command, Config};
use content::{Content, Header, Kind, PAGE_SIZE};
use pool::CodePool;
use region::Region;

/// Percentage of pages rewritten with a new generation in each pass.
const REWRITE_PERCENT: u32 = 25;

/// At most this many corrupted pages are described; the rest are counted.
const MAX_REPORTS: usize = 10;

/// Exit status for usage and setup errors.
const EXIT_ERROR: u8 = 2;

/// Exit status when mismatches were found.
const EXIT_MISMATCH: u8 = 1;

/// Prints one line to standard output and flushes it. Write errors (a closed
/// console) are ignored: they must not turn into a panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        let mut out = io::stdout().lock();
        let _ = writeln!(out, $($arg)*);
        let _ = out.flush();
    }};
}

fn main() -> ExitCode {
    let args: Result<Vec<String>, OsString> = std::env::args_os()
        .skip(1)
        .map(OsString::into_string)
        .collect();
    let parsed = match args {
        Ok(args) => cli::parse(&args),
        Err(bad) => Err(format!("argument {bad:?} is not valid UTF-8")),
    };
    let config = match parsed {
        Ok(Command::Help) => {
            let mut out = io::stdout().lock();
            let _ = out.write_all(cli::USAGE.as_bytes());
            let _ = out.flush();
            return ExitCode::SUCCESS;
        }
        Ok(Command::Run(config)) => config,
        Err(e) => {
            eprintln!("memstress: error: {e}");
            eprintln!("Try 'rkm-memstress --help'.");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    match run(&config) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(EXIT_MISMATCH),
        Err(e) => {
            eprintln!("memstress: error: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Runs the workload; returns the number of mismatched bytes.
fn run(cfg: &Config) -> Result<u64, String> {
    let start = Instant::now();
    let pages = cfg.size_mib * (1024 * 1024 / PAGE_SIZE);
    let len = pages
        .checked_mul(PAGE_SIZE)
        .ok_or_else(|| format!("{} MiB does not fit in the address space", cfg.size_mib))?;
    let threads = cfg.threads.min(pages);

    let pool = CodePool::load();
    let content = Content::new(cfg.seed, cfg.mix, &pool.bytes);

    let mut generations: Vec<u32> = Vec::new();
    generations
        .try_reserve_exact(pages)
        .map_err(|e| format!("cannot allocate the page state ({pages} entries): {e}"))?;
    generations.resize(pages, 0);

    let mut region =
        Region::map(len).map_err(|e| format!("mmap of {} MiB failed: {e}", cfg.size_mib))?;
    let thp = match region.advise_no_huge_pages() {
        Ok(()) => "off",
        Err(_) => "unchanged",
    };

    let passes = match (cfg.passes, cfg.duration) {
        (Some(p), None) => format!("{p} passes"),
        (None, Some(d)) => format!("passes for {:.1} s", d.as_secs_f64()),
        (Some(p), Some(d)) => format!("up to {p} passes for {:.1} s", d.as_secs_f64()),
        (None, None) => unreachable!("the parser sets a pass count"),
    };
    say!(
        "memstress: config: {} MiB ({pages} pages), {threads} threads, {passes}, seed {:#x}, \
         mix {}, rewrite {REWRITE_PERCENT}% per pass, code pool {}, THP {thp}",
        cfg.size_mib,
        cfg.seed,
        cfg.mix,
        pool.describe(),
    );

    // Fill.
    let t = Instant::now();
    let counts = parallel(region.as_mut_slice(), &mut generations, threads, |share| {
        fill_share(&content, share)
    })?;
    let mut by_kind = [0u64; 5];
    for c in &counts {
        for (total, n) in by_kind.iter_mut().zip(c) {
            *total += n;
        }
    }
    let by_kind: Vec<String> = Kind::ALL
        .iter()
        .map(|k| format!("{k} {}", by_kind[k.index()]))
        .collect();
    say!(
        "memstress: filled {pages} pages in {:.1} s ({})",
        t.elapsed().as_secs_f64(),
        by_kind.join(", ")
    );

    if cfg.inject_corruption {
        let page = pages / 2;
        let offset = PAGE_SIZE / 2 + 1;
        region.as_mut_slice()[page * PAGE_SIZE + offset] ^= 0xff;
        say!("memstress: injected corruption at page {page} offset {offset} (test only)");
    }

    // Verify.
    let reporter = Reporter::default();
    let mut total = PassStats::default();
    let mut pass = 0u64;
    loop {
        pass += 1;
        let t = Instant::now();
        let results = parallel(region.as_mut_slice(), &mut generations, threads, |share| {
            verify_share(&content, share, pass, &reporter)
        })?;
        let mut stats = PassStats::default();
        for r in &results {
            stats.add(r);
        }
        total.add(&stats);
        let of = cfg.passes.map(|p| format!("/{p}")).unwrap_or_default();
        let bad = if stats.bad_pages == 0 {
            String::new()
        } else {
            format!(
                ", {} mismatches in {} pages",
                stats.bad_bytes, stats.bad_pages
            )
        };
        say!(
            "memstress: pass {pass}{of}: verified {} pages, rewrote {}, {:.1} s{bad}",
            stats.verified,
            stats.rewritten,
            t.elapsed().as_secs_f64()
        );
        let done = match (cfg.passes, cfg.duration) {
            (Some(p), _) if pass >= p => true,
            (_, Some(d)) => start.elapsed() >= d,
            _ => false,
        };
        if done {
            break;
        }
    }

    let elapsed = start.elapsed().as_secs_f64();
    if total.bad_bytes == 0 {
        say!("memstress: OK: {pages} pages x {pass} passes verified, 0 mismatches, {elapsed:.1} s");
    } else {
        say!(
            "memstress: {} corrupted page reads in {pass} passes over {pages} pages, {elapsed:.1} s",
            total.bad_pages
        );
        say!("memstress: FAILED: {} mismatches", total.bad_bytes);
    }
    Ok(total.bad_bytes)
}

/// One thread's disjoint share of the region.
struct Share<'a> {
    /// Number of the share, `0..threads`.
    number: usize,
    /// Index of the share's first page in the region.
    first_page: usize,
    /// The share's pages.
    mem: &'a mut [u8],
    /// Their generations.
    generations: &'a mut [u32],
}

/// Splits the region and the generations into `threads` contiguous shares and
/// runs `f` on each share in its own thread.
fn parallel<R, F>(
    mem: &mut [u8],
    generations: &mut [u32],
    threads: usize,
    f: F,
) -> Result<Vec<R>, String>
where
    R: Send,
    F: Fn(Share<'_>) -> R + Sync,
{
    let per_share = generations.len().div_ceil(threads.max(1));
    let f = &f;
    thread::scope(|s| {
        let mut error = None;
        let mut handles = Vec::with_capacity(threads);
        let shares = mem
            .chunks_mut(per_share * PAGE_SIZE)
            .zip(generations.chunks_mut(per_share))
            .enumerate();
        for (number, (mem, generations)) in shares {
            let share = Share {
                number,
                first_page: number * per_share,
                mem,
                generations,
            };
            match thread::Builder::new()
                .name(format!("memstress-{number}"))
                .spawn_scoped(s, move || f(share))
            {
                Ok(handle) => handles.push(handle),
                Err(e) => {
                    error = Some(format!("cannot start a worker thread: {e}"));
                    break;
                }
            }
        }
        let mut results = Vec::with_capacity(handles.len());
        for handle in handles {
            match handle.join() {
                Ok(r) => results.push(r),
                Err(_) => {
                    error.get_or_insert_with(|| "a worker thread panicked".to_string());
                }
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(results),
        }
    })
}

/// Writes the initial content of a share; returns the pages per kind.
fn fill_share(content: &Content<'_>, share: Share<'_>) -> [u64; 5] {
    let mut counts = [0u64; 5];
    for (local, page) in share.mem.chunks_exact_mut(PAGE_SIZE).enumerate() {
        let index = (share.first_page + local) as u64;
        let kind = content.fill(index, share.generations[local], page);
        counts[kind.index()] += 1;
    }
    counts
}

/// Statistics of a pass.
#[derive(Clone, Debug, Default)]
struct PassStats {
    verified: u64,
    rewritten: u64,
    bad_pages: u64,
    bad_bytes: u64,
}

impl PassStats {
    fn add(&mut self, other: &PassStats) {
        self.verified += other.verified;
        self.rewritten += other.rewritten;
        self.bad_pages += other.bad_pages;
        self.bad_bytes += other.bad_bytes;
    }
}

/// Verifies every page of a share in shuffled order, repairs corrupted pages
/// and rewrites some pages with a new generation.
fn verify_share(
    content: &Content<'_>,
    share: Share<'_>,
    pass: u64,
    reporter: &Reporter,
) -> PassStats {
    let n = share.generations.len();
    let order = Shuffle::new(n, content.shuffle_bits(pass, share.number as u64));
    let mut expected = [0u8; PAGE_SIZE];
    let mut stats = PassStats::default();
    for i in 0..n {
        let local = order.at(i);
        let index = (share.first_page + local) as u64;
        let generation = share.generations[local];
        let kind = content.fill(index, generation, &mut expected);
        let page = &mut share.mem[local * PAGE_SIZE..(local + 1) * PAGE_SIZE];
        // black_box hides where the slice came from, so the comparison
        // really reads the page (faulting it in from swap) every pass.
        let actual: &[u8] = black_box(&*page);
        if actual != expected {
            stats.bad_pages += 1;
            stats.bad_bytes += reporter.report(pass, index, generation, kind, &expected, actual);
            // Repair, so that this corruption is not counted again.
            page.copy_from_slice(&expected);
        }
        stats.verified += 1;
        if content.should_rewrite(index, pass, REWRITE_PERCENT) {
            let next = generation.wrapping_add(1);
            content.fill(index, next, page);
            share.generations[local] = next;
            stats.rewritten += 1;
        }
    }
    stats
}

/// A permutation of `0..n`: `i -> (stride * i + offset) mod n` with `stride`
/// coprime to `n`.
#[derive(Debug)]
struct Shuffle {
    n: u64,
    stride: u64,
    offset: u64,
}

impl Shuffle {
    fn new(n: usize, bits: u64) -> Shuffle {
        let n = n as u64;
        if n <= 2 {
            return Shuffle {
                n: n.max(1),
                stride: 1,
                offset: 0,
            };
        }
        let mut stride = 1 + content::below(bits, n - 1);
        while gcd(stride, n) != 1 {
            stride = if stride + 1 == n { 1 } else { stride + 1 };
        }
        let offset = content::below(content::mix64(bits), n);
        Shuffle { n, stride, offset }
    }

    fn at(&self, i: usize) -> usize {
        ((u128::from(self.stride) * i as u128 + u128::from(self.offset)) % u128::from(self.n))
            as usize
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Prints the first [`MAX_REPORTS`] corrupted pages.
#[derive(Debug, Default)]
struct Reporter {
    reported: AtomicUsize,
}

impl Reporter {
    /// Reports a corrupted page; returns its number of wrong bytes.
    fn report(
        &self,
        pass: u64,
        index: u64,
        generation: u32,
        kind: Kind,
        expected: &[u8],
        actual: &[u8],
    ) -> u64 {
        let wrong = expected.iter().zip(actual).filter(|(e, a)| e != a).count();
        let n = self.reported.fetch_add(1, Ordering::Relaxed);
        if n > MAX_REPORTS {
            return wrong as u64;
        }
        let mut out = io::stdout().lock();
        if n == MAX_REPORTS {
            let _ = writeln!(
                out,
                "memstress: further corrupted pages are counted but not printed"
            );
        } else if let Some(first) = expected.iter().zip(actual).position(|(e, a)| e != a) {
            let _ = writeln!(
                out,
                "memstress: MISMATCH page {index} offset {first} expected {:#04x} got {:#04x} \
                 (kind {kind}, gen {generation})",
                expected[first], actual[first]
            );
            let last = expected.iter().zip(actual).rposition(|(e, a)| e != a);
            let _ = writeln!(
                out,
                "memstress:   pass {pass}: {wrong} of {PAGE_SIZE} bytes of page {index} differ, \
                 offsets {first}..={}; {}",
                last.unwrap_or(first),
                describe_actual(index, generation, actual)
            );
        }
        let _ = out.flush();
        wrong as u64
    }
}

/// Says what a corrupted page holds instead, as far as can be told.
fn describe_actual(index: u64, generation: u32, actual: &[u8]) -> String {
    if actual.iter().all(|&b| b == 0) {
        return "the page reads back as all zeros".to_string();
    }
    match Header::parse(actual) {
        Some(h) if h.index != index || h.generation != generation => format!(
            "its header says page {} gen {} ({}): wrong page, stale or corrupt",
            h.index, h.generation, h.kind
        ),
        Some(_) => "its header is intact".to_string(),
        None => "it has no valid header".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_is_a_permutation() {
        for n in [1usize, 2, 3, 4, 97, 256, 1000, 4096] {
            for bits in [0u64, 1, 0xdead_beef, u64::MAX] {
                let s = Shuffle::new(n, bits);
                let mut seen = vec![false; n];
                for i in 0..n {
                    let j = s.at(i);
                    assert!(!seen[j], "n {n} bits {bits:#x}: {j} twice");
                    seen[j] = true;
                }
            }
        }
    }

    #[test]
    fn shuffle_is_not_sequential() {
        let s = Shuffle::new(4096, content::mix64(7));
        let sequential = (1..4096).filter(|&i| s.at(i) == s.at(i - 1) + 1).count();
        assert!(sequential < 100, "{sequential}");
    }

    #[test]
    fn describes_corruption() {
        let pool = pool::synthetic_code(PAGE_SIZE);
        let c = Content::new(1, content::Mix::parse("text").unwrap(), &pool);
        let mut page = [0u8; PAGE_SIZE];
        assert!(describe_actual(3, 0, &page).contains("all zeros"));
        c.fill(5, 2, &mut page);
        assert!(describe_actual(3, 0, &page).contains("says page 5 gen 2 (text)"));
        assert!(describe_actual(5, 2, &page).contains("intact"));
        page[13] = 0;
        assert!(describe_actual(5, 2, &page).contains("no valid header"));
    }

    #[test]
    fn verify_detects_and_repairs() {
        let pool = pool::synthetic_code(PAGE_SIZE);
        let c = Content::new(9, content::Mix::default(), &pool);
        let pages = 64;
        let mut mem = vec![0u8; pages * PAGE_SIZE];
        let mut gens = vec![0u32; pages];
        parallel(&mut mem, &mut gens, 3, |s| fill_share(&c, s)).unwrap();
        mem[10 * PAGE_SIZE + 100] ^= 1;
        mem[20 * PAGE_SIZE + 5] ^= 1;
        mem[20 * PAGE_SIZE + 4000] ^= 0x80;
        let reporter = Reporter::default();
        let run = |mem: &mut [u8], gens: &mut [u32], pass| {
            let mut total = PassStats::default();
            for r in parallel(mem, gens, 3, |s| verify_share(&c, s, pass, &reporter)).unwrap() {
                total.add(&r);
            }
            total
        };
        let first = run(&mut mem, &mut gens, 1);
        assert_eq!(first.verified, pages as u64);
        assert_eq!(first.bad_pages, 2);
        assert_eq!(first.bad_bytes, 3);
        assert!(first.rewritten > 0 && first.rewritten < pages as u64);
        let second = run(&mut mem, &mut gens, 2);
        assert_eq!(second.bad_bytes, 0);
        assert!(gens.iter().any(|&g| g > 0));
    }
}
