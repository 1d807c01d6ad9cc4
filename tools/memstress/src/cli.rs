// SPDX-License-Identifier: GPL-2.0

//! Command-line parsing.

use std::time::Duration;

use crate::content::Mix;

/// Default seed: runs are reproducible unless `--seed` is given.
pub const DEFAULT_SEED: u64 = 0x5eed;

/// Default number of worker threads (one per vCPU of the test guest).
pub const DEFAULT_THREADS: usize = 2;

/// Default number of passes without `--seconds`.
pub const DEFAULT_PASSES: u64 = 3;

/// Largest accepted `--threads`.
const MAX_THREADS: usize = 1024;

/// Largest accepted `--size-mib` (1 TiB).
const MAX_SIZE_MIB: usize = 1 << 20;

/// The usage text printed by `--help`.
pub const USAGE: &str = "\
Usage: rkm-memstress --size-mib N [OPTIONS]

Memory-pressure workload for zswap tests. Maps N MiB of anonymous memory,
fills every 4 KiB page with deterministic content of a mix of kinds of
different compressibility, then verifies every byte of every page over
several passes (rewriting a quarter of the pages with new content each
pass). Run it in a memory cgroup whose memory.max is below N MiB so that
its pages go through swap.

Options:
  --size-mib N       size of the working set in MiB (required, >= 1)
  --threads T        worker threads, each verifying a disjoint share of
                     the pages in shuffled order (default 2)
  --passes P         verification passes (default 3); with --seconds, an
                     upper bound on the passes (default: none)
  --seconds S        start new passes until S seconds have elapsed since
                     start (at least one pass is run)
  --seed X           seed of the content, decimal or 0x-hex (default 0x5eed)
  --mix LIST         kinds of page content, comma-separated, each optionally
                     with a weight as KIND=W (default text=35,binary=25,
                     pattern=20,random=15,zero=5; a listed kind without a
                     weight gets its default one, an unlisted kind none)
                     kinds: text, binary, pattern, random, zero
  -h, --help         print this help

Exit status: 0 all bytes verified, 1 mismatches found, 2 usage or setup error.
";

/// A parsed command line.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// `--help`.
    Help,
    /// Run the workload.
    Run(Config),
}

/// The workload's configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Size of the region in MiB.
    pub size_mib: usize,
    /// Number of worker threads.
    pub threads: usize,
    /// Maximum number of passes; `None` only with a time limit.
    pub passes: Option<u64>,
    /// Time limit for starting new passes.
    pub duration: Option<Duration>,
    /// Content seed.
    pub seed: u64,
    /// Content mix.
    pub mix: Mix,
    /// Test-only: corrupt one byte after the fill.
    pub inject_corruption: bool,
}

/// Parses the arguments (without the program name).
pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Command, String> {
    let mut size_mib = None;
    let mut threads = DEFAULT_THREADS;
    let mut passes = None;
    let mut duration = None;
    let mut seed = DEFAULT_SEED;
    let mut mix = Mix::default();
    let mut inject_corruption = false;

    let mut it = args.iter().map(AsRef::as_ref);
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v)),
            _ => (arg, None),
        };
        let mut value = |name: &str| -> Result<&str, String> {
            match inline {
                Some(v) => Ok(v),
                None => it
                    .next()
                    .ok_or_else(|| format!("option {name} needs a value")),
            }
        };
        match name {
            "-h" | "--help" => return Ok(Command::Help),
            "--size-mib" => {
                let v = value(name)?;
                size_mib = Some(parse_count(name, v, 1, MAX_SIZE_MIB as u64)? as usize);
            }
            "--threads" => {
                let v = value(name)?;
                threads = parse_count(name, v, 1, MAX_THREADS as u64)? as usize;
            }
            "--passes" => {
                let v = value(name)?;
                passes = Some(parse_count(name, v, 1, u64::MAX)?);
            }
            "--seconds" => {
                let v = value(name)?;
                let s: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s < 1e9)
                    .ok_or_else(|| format!("{name}: '{v}' is not a positive number of seconds"))?;
                duration = Some(Duration::from_secs_f64(s));
            }
            "--seed" => {
                let v = value(name)?;
                seed = parse_u64(v).ok_or_else(|| format!("{name}: '{v}' is not a number"))?;
            }
            "--mix" => {
                let v = value(name)?;
                mix = Mix::parse(v).map_err(|e| format!("--mix: {e}"))?;
            }
            "--inject-corruption" if inline.is_none() => inject_corruption = true,
            _ => return Err(format!("unknown argument '{arg}'")),
        }
    }

    let size_mib = size_mib.ok_or("--size-mib is required")?;
    if duration.is_none() && passes.is_none() {
        passes = Some(DEFAULT_PASSES);
    }
    Ok(Command::Run(Config {
        size_mib,
        threads,
        passes,
        duration,
        seed,
        mix,
        inject_corruption,
    }))
}

/// Parses a decimal count in `min..=max`.
fn parse_count(name: &str, v: &str, min: u64, max: u64) -> Result<u64, String> {
    v.parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| format!("{name}: '{v}' is not a whole number in {min}..={max}"))
}

/// Parses a decimal or `0x` hexadecimal number.
fn parse_u64(v: &str) -> Option<u64> {
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::Kind;

    fn run(args: &[&str]) -> Config {
        match parse(args).unwrap() {
            Command::Run(c) => c,
            Command::Help => panic!("help"),
        }
    }

    #[test]
    fn defaults() {
        let c = run(&["--size-mib", "8"]);
        assert_eq!(c.size_mib, 8);
        assert_eq!(c.threads, 2);
        assert_eq!(c.passes, Some(3));
        assert_eq!(c.duration, None);
        assert_eq!(c.seed, DEFAULT_SEED);
        assert_eq!(c.mix, Mix::default());
        assert!(!c.inject_corruption);
    }

    #[test]
    fn all_options() {
        let c = run(&[
            "--size-mib=16",
            "--threads",
            "4",
            "--seconds",
            "2.5",
            "--seed",
            "0xff",
            "--mix",
            "text,random=3",
            "--inject-corruption",
        ]);
        assert_eq!(c.size_mib, 16);
        assert_eq!(c.threads, 4);
        assert_eq!(c.passes, None);
        assert_eq!(c.duration, Some(Duration::from_millis(2500)));
        assert_eq!(c.seed, 255);
        assert_eq!(c.mix.weight(Kind::Text), 35);
        assert_eq!(c.mix.weight(Kind::Random), 3);
        assert_eq!(c.mix.weight(Kind::Zero), 0);
        assert!(c.inject_corruption);
        let c = run(&["--size-mib", "1", "--seconds", "1", "--passes", "7"]);
        assert_eq!(c.passes, Some(7));
    }

    #[test]
    fn help() {
        assert_eq!(parse(&["--size-mib", "1", "--help"]), Ok(Command::Help));
        assert_eq!(parse(&["-h"]), Ok(Command::Help));
    }

    #[test]
    fn errors() {
        for bad in [
            &[][..],
            &["--threads", "2"],
            &["--size-mib"],
            &["--size-mib", "0"],
            &["--size-mib", "-1"],
            &["--size-mib", "x"],
            &["--size-mib", "1", "--threads", "0"],
            &["--size-mib", "1", "--passes", "0"],
            &["--size-mib", "1", "--seconds", "0"],
            &["--size-mib", "1", "--seconds", "nan"],
            &["--size-mib", "1", "--seed", "0xg"],
            &["--size-mib", "1", "--mix", "text,foo"],
            &["--size-mib", "1", "--mix", "text=0"],
            &["--size-mib", "1", "--mix", ""],
            &["--size-mib", "1", "--bogus"],
            &["--size-mib", "1", "extra"],
            &["--size-mib", "1", "--inject-corruption=1"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
