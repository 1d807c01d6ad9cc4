// SPDX-License-Identifier: GPL-2.0

//! Command-line parsing. Every error is a message for a usage error (exit
//! status 3).

use std::time::Duration;

/// Default content seed.
pub const DEFAULT_SEED: u64 = 0x5eed;

/// Default block size.
pub const DEFAULT_BLOCK: u64 = 4096;

/// Smallest and largest block size.
const MIN_BLOCK: u64 = 512;
const MAX_BLOCK: u64 = 1 << 20;

/// Default longest run of a race operation, in blocks.
pub const DEFAULT_MAX_BLOCKS: u64 = 8;

/// Largest `--max-blocks`, `--threads` and `--passes`.
const MAX_RUN_BLOCKS: u64 = 1024;
const MAX_THREADS: u64 = 1024;
const MAX_PASSES: u64 = 1 << 20;

/// Longest `--seconds`: a week.
const MAX_SECONDS: u64 = 7 * 24 * 3600;

/// Default share of reads in a race, in percent.
pub const DEFAULT_READ_PCT: u64 = 50;

/// The usage text printed by `--help`.
pub const USAGE: &str = "\
Usage: rkm-blkverify fill     --dev D --size S [--offset O] [--version V] [COMMON]
       rkm-blkverify verify   --dev D --size S [--offset O]
                              (--version V | --state FILE | --ack-log A) [--io-size R]
                              [COMMON]
       rkm-blkverify race     --dev D --size S [--offset O] --seconds T [--threads N]
                              [--read-pct P] [--zero-pct P] [--discard-pct P --discard-zeroes]
                              [--max-blocks K] [--fsync-every N] [--dsync-pct P]
                              [--init] [--state FILE] [--progress FILE] [--ack-log A]
                              [COMMON]
       rkm-blkverify scribble --dev D --size S [--offset O] [--passes P] [COMMON]
       rkm-blkverify compare  --dev D --against E --size S [--offset O] [COMMON]
       rkm-blkverify help

A verifying block-device workload: every block written holds a header
(block number, version, seed, checksum) and a body derived from them, and
every block read is checked against the versions it may hold.

  fill      write version V (default 1) of every block of [O, O+S)
  verify    read every block and check it against version V, against the
            per-block state saved by `race --state FILE`, or against the
            acknowledgement log of `race --ack-log A` (after a power cut:
            no block older than its last acknowledged write); R bytes a
            read (default 1m; a cache serves small reads, not big ones)
  race      N threads (default: one per online CPU, each pinned to one) run
            random reads, writes, zeroouts and discards of runs of 1..K
            blocks (default 8) of the hot set [O, O+S) for T seconds; reads
            race with writes of the same blocks and must never return a
            version older than the last write completed before they began
    --read-pct P       share of reads (default 50); the rest are writes
    --zero-pct P       share of BLKZEROOUTs (default 0)
    --discard-pct P    share of BLKDISCARDs (default 0), only with
    --discard-zeroes     which says the device reads discarded blocks as zeros
    --fsync-every N    fsync (a flush) after every N writes of a thread
    --dsync-pct P      share of writes through an O_DSYNC descriptor (FUA)
    --init             fill the hot set (version 1) first; without it, blocks
                       may hold zeros or any version until first written
    --state FILE       write the final per-block state, for verify --state
    --progress FILE    rewrite \"ops <n>\" in FILE every 100 ms while running
    --ack-log A        after each write, record the blocks' versions in the
                       log A (another device or a file; 4 KiB per block and
                       one more), with O_DSYNC, before the next write of
                       them: a new log with --init, else the run resumes
                       from A's versions (writes only: no zeroouts or
                       discards)
  scribble  read every block of a slice of the range (P slices, one per
            pass) into ONE buffer that another thread overwrites all the
            time, then read every block of the range twice with a clean
            buffer and check it against version 1 (which it must hold)
  compare   read [O, O+S) of D and of E at once (a thread each) and check
            that they hold the same bytes; the first differing block is
            reported (exit 1)

COMMON:
  --block B     block size, a multiple of 512 up to 1m (default 4096)
  --seed N      content seed, decimal or 0x-hex (default 0x5eed; verify
                --state takes the state's)
  --no-direct   I/O through the page cache (default: O_DIRECT), for files

Sizes and offsets take a k, m or g suffix (KiB, MiB, GiB) and must be
multiples of the block size. Options also take the --option=value form.
Exit status: 0 all verified, 1 mismatches, 2 I/O errors, 3 usage errors.
";

/// The range and content every command works on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The device or file.
    pub dev: String,
    /// Byte offset of the first block.
    pub offset: u64,
    /// Size in bytes (a positive multiple of `block`).
    pub size: u64,
    /// Block size in bytes.
    pub block: u64,
    /// Content seed; `None` when not given.
    pub seed: Option<u64>,
    /// `O_DIRECT`.
    pub direct: bool,
}

impl Target {
    /// The number of blocks.
    pub fn blocks(&self) -> u64 {
        self.size / self.block
    }

    /// The device block number of the first block.
    pub fn first_block(&self) -> u64 {
        self.offset / self.block
    }

    /// The seed, given or default.
    pub fn seed(&self) -> u64 {
        self.seed.unwrap_or(DEFAULT_SEED)
    }
}

/// What `verify` checks against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Every block at this version.
    Version(u64),
    /// The per-block state in this file.
    State(String),
    /// The acknowledgement log on this device or file.
    AckLog(String),
}

/// The arguments of `race`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Race {
    /// The hot set.
    pub target: Target,
    /// How long to run.
    pub duration: Duration,
    /// Worker threads; `None`: one per online CPU.
    pub threads: Option<usize>,
    /// Percent of reads.
    pub read_pct: u64,
    /// Percent of BLKZEROOUTs.
    pub zero_pct: u64,
    /// Percent of BLKDISCARDs.
    pub discard_pct: u64,
    /// Longest run, in blocks.
    pub max_blocks: u64,
    /// fsync after every this many writes of a thread (0: never).
    pub fsync_every: u64,
    /// Percent of writes through the `O_DSYNC` descriptor.
    pub dsync_pct: u64,
    /// Fill the hot set first.
    pub init: bool,
    /// Where to write the final state.
    pub state: Option<String>,
    /// Where to write the progress.
    pub progress: Option<String>,
    /// The acknowledgement log.
    pub ack_log: Option<String>,
}

/// A parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `help`.
    Help,
    /// `fill`: the range and the version.
    Fill(Target, u64),
    /// `verify`.
    Verify(Target, Expect, Option<u64>),
    /// `race`.
    Race(Race),
    /// `scribble`: the range and the number of passes.
    Scribble(Target, u64),
    /// `compare`: the range on `--dev`, and the other device.
    Compare(Target, String),
}

/// Parses the arguments (without the program name).
pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Command, String> {
    let Some((command, rest)) = args.split_first() else {
        return Err("missing command (fill, verify, race, scribble, compare or help)".to_string());
    };
    let command = command.as_ref();
    let common: &[(&'static str, bool)] = &[
        ("--dev", true),
        ("--offset", true),
        ("--size", true),
        ("--block", true),
        ("--seed", true),
        ("--no-direct", false),
    ];
    let extra: &[(&'static str, bool)] = match command {
        "help" | "--help" | "-h" => return Ok(Command::Help),
        "fill" => &[("--version", true)],
        "verify" => &[
            ("--version", true),
            ("--state", true),
            ("--ack-log", true),
            ("--io-size", true),
        ],
        "race" => &[
            ("--seconds", true),
            ("--threads", true),
            ("--read-pct", true),
            ("--zero-pct", true),
            ("--discard-pct", true),
            ("--discard-zeroes", false),
            ("--max-blocks", true),
            ("--fsync-every", true),
            ("--dsync-pct", true),
            ("--init", false),
            ("--state", true),
            ("--progress", true),
            ("--ack-log", true),
        ],
        "scribble" => &[("--passes", true)],
        "compare" => &[("--against", true)],
        _ => return Err(format!("unknown command {command:?}")),
    };
    let o = Options::parse(command, rest, common, extra)?;
    let target = o.target()?;
    match command {
        "fill" => Ok(Command::Fill(
            target,
            o.count("--version", 1, u64::MAX >> 2)?.unwrap_or(1),
        )),
        "verify" => {
            let version = o.count("--version", 1, u64::MAX >> 2)?;
            let mut expect = Vec::new();
            expect.extend(version.map(Expect::Version));
            expect.extend(o.value("--state").map(|s| Expect::State(s.to_string())));
            expect.extend(o.value("--ack-log").map(|s| Expect::AckLog(s.to_string())));
            match expect.pop() {
                Some(e) if expect.is_empty() => {
                    let io = o.size("--io-size")?;
                    if let Some(n) = io.filter(|&n| n == 0 || n % target.block != 0) {
                        return Err(format!(
                            "verify: --io-size {n}: must be a positive multiple of the block size"
                        ));
                    }
                    Ok(Command::Verify(target, e, io))
                }
                Some(_) => {
                    Err("verify: --version, --state and --ack-log exclude each other".into())
                }
                None => Err("verify: needs --version V, --state FILE or --ack-log A".into()),
            }
        }
        "race" => o.race(target),
        "compare" => match o.value("--against") {
            Some(e) if !e.is_empty() => Ok(Command::Compare(target, e.to_string())),
            _ => Err("compare: needs --against E".into()),
        },
        _ => Ok(Command::Scribble(
            target,
            o.count("--passes", 1, MAX_PASSES)?.unwrap_or(1),
        )),
    }
}

/// A command's options: `--name value`, `--name=value`, or a flag.
struct Options<'a> {
    command: &'a str,
    values: Vec<(&'static str, &'a str)>,
    flags: Vec<&'static str>,
}

impl<'a> Options<'a> {
    fn parse<S: AsRef<str>>(
        command: &'a str,
        args: &'a [S],
        common: &[(&'static str, bool)],
        extra: &[(&'static str, bool)],
    ) -> Result<Options<'a>, String> {
        let mut o = Options {
            command,
            values: Vec::new(),
            flags: Vec::new(),
        };
        let mut it = args.iter().map(AsRef::as_ref);
        while let Some(arg) = it.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n, Some(v)),
                _ => (arg, None),
            };
            let spec = common.iter().chain(extra).find(|(n, _)| *n == name);
            let Some(&(name, takes_value)) = spec else {
                return Err(if arg.starts_with('-') {
                    format!("{command}: unknown option {arg}")
                } else {
                    format!("{command}: unexpected argument {arg:?}")
                });
            };
            if o.values.iter().any(|(n, _)| *n == name) || o.flags.contains(&name) {
                return Err(format!("{command}: {name} given twice"));
            }
            if takes_value {
                let value = match inline {
                    Some(v) => v,
                    None => it
                        .next()
                        .ok_or_else(|| format!("{command}: {name} needs a value"))?,
                };
                o.values.push((name, value));
            } else if inline.is_some() {
                return Err(format!("{command}: {name} takes no value"));
            } else {
                o.flags.push(name);
            }
        }
        Ok(o)
    }

    fn value(&self, name: &str) -> Option<&'a str> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    fn flag(&self, name: &str) -> bool {
        self.flags.contains(&name)
    }

    fn error(&self, name: &str, text: &str, what: &str) -> String {
        format!("{}: {name}: bad value {text:?}: {what}", self.command)
    }

    /// A number in `min..=max`, decimal or 0x-hex.
    fn count(&self, name: &str, min: u64, max: u64) -> Result<Option<u64>, String> {
        let Some(text) = self.value(name) else {
            return Ok(None);
        };
        let n = parse_number(text)
            .ok_or_else(|| self.error(name, text, "not a number (decimal or 0x-hex)"))?;
        if n < min || n > max {
            return Err(self.error(name, text, &format!("must be {min}..={max}")));
        }
        Ok(Some(n))
    }

    /// A percentage.
    fn percent(&self, name: &str, default: u64) -> Result<u64, String> {
        Ok(self.count(name, 0, 100)?.unwrap_or(default))
    }

    /// A size in bytes, with an optional k, m or g suffix.
    fn size(&self, name: &str) -> Result<Option<u64>, String> {
        let Some(text) = self.value(name) else {
            return Ok(None);
        };
        parse_size(text)
            .map(Some)
            .ok_or_else(|| self.error(name, text, "not a size (e.g. 4096, 64k, 16m, 1g)"))
    }

    fn target(&self) -> Result<Target, String> {
        let command = self.command;
        let dev = self
            .value("--dev")
            .ok_or_else(|| format!("{command}: needs --dev D"))?;
        if dev.is_empty() {
            return Err(format!("{command}: --dev: empty path"));
        }
        let block = self.size("--block")?.unwrap_or(DEFAULT_BLOCK);
        if !(MIN_BLOCK..=MAX_BLOCK).contains(&block) || block % MIN_BLOCK != 0 {
            return Err(format!(
                "{command}: --block {block}: must be a multiple of {MIN_BLOCK} from \
                 {MIN_BLOCK} to {MAX_BLOCK}"
            ));
        }
        let offset = self.size("--offset")?.unwrap_or(0);
        let size = self
            .size("--size")?
            .ok_or_else(|| format!("{command}: needs --size S"))?;
        for (name, v) in [("--offset", offset), ("--size", size)] {
            if v % block != 0 {
                return Err(format!(
                    "{command}: {name} {v}: not a multiple of the block size {block}"
                ));
            }
        }
        if size == 0 {
            return Err(format!("{command}: --size: must be at least one block"));
        }
        if offset
            .checked_add(size)
            .is_none_or(|end| end > i64::MAX as u64)
        {
            return Err(format!(
                "{command}: --offset {offset} + --size {size}: past the largest file offset"
            ));
        }
        let seed = match self.value("--seed") {
            None => None,
            Some(t) => Some(
                parse_number(t)
                    .ok_or_else(|| self.error("--seed", t, "not a number (decimal or 0x-hex)"))?,
            ),
        };
        Ok(Target {
            dev: dev.to_string(),
            offset,
            size,
            block,
            seed,
            direct: !self.flag("--no-direct"),
        })
    }

    fn race(&self, target: Target) -> Result<Command, String> {
        let text = self
            .value("--seconds")
            .ok_or_else(|| "race: needs --seconds T".to_string())?;
        let duration = parse_seconds(text)
            .filter(|d| d.as_secs() <= MAX_SECONDS)
            .ok_or_else(|| {
                self.error(
                    "--seconds",
                    text,
                    &format!("seconds, e.g. 10 or 0.5, at most {MAX_SECONDS}"),
                )
            })?;
        let read_pct = self.percent("--read-pct", DEFAULT_READ_PCT)?;
        let zero_pct = self.percent("--zero-pct", 0)?;
        let discard_pct = self.percent("--discard-pct", 0)?;
        if discard_pct > 0 && !self.flag("--discard-zeroes") {
            return Err(
                "race: --discard-pct needs --discard-zeroes (the test's promise that \
                        discarded blocks read back as zeros)"
                    .to_string(),
            );
        }
        if read_pct + zero_pct + discard_pct > 100 {
            return Err(format!(
                "race: --read-pct {read_pct} + --zero-pct {zero_pct} + --discard-pct \
                 {discard_pct} is more than 100"
            ));
        }
        let threads = self.count("--threads", 1, MAX_THREADS)?;
        let ack_log = self.value("--ack-log").map(str::to_string);
        if ack_log.is_some() && zero_pct + discard_pct > 0 {
            return Err(
                "race: --ack-log records writes only (no --zero-pct or --discard-pct)".into(),
            );
        }
        Ok(Command::Race(Race {
            target,
            duration,
            threads: threads.map(|t| t as usize),
            read_pct,
            zero_pct,
            discard_pct,
            max_blocks: self
                .count("--max-blocks", 1, MAX_RUN_BLOCKS)?
                .unwrap_or(DEFAULT_MAX_BLOCKS),
            fsync_every: self.count("--fsync-every", 0, u64::MAX)?.unwrap_or(0),
            dsync_pct: self.percent("--dsync-pct", 0)?,
            init: self.flag("--init"),
            state: self.value("--state").map(str::to_string),
            progress: self.value("--progress").map(str::to_string),
            ack_log,
        }))
    }
}

/// Parses a number: decimal, or hexadecimal after `0x`.
pub fn parse_number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
    .filter(|_| !text.starts_with('+'))
}

/// Parses a size: digits and an optional binary suffix (k, m, g; KiB, MiB,
/// GiB).
pub fn parse_size(text: &str) -> Option<u64> {
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(digits);
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        _ => return None,
    };
    number.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// Parses seconds: `N` or `N.F` (up to nanoseconds).
fn parse_seconds(text: &str) -> Option<Duration> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs = whole.parse::<u64>().ok()?;
    let nanos = if frac.is_empty() {
        0
    } else {
        frac.parse::<u32>().ok()? * 10u32.pow(9 - frac.len() as u32)
    };
    Some(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &str) -> Result<Command, String> {
        let args: Vec<&str> = line.split_whitespace().collect();
        parse(&args)
    }

    #[test]
    fn sizes_numbers_seconds() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("64k"), Some(65536));
        assert_eq!(parse_size("16M"), Some(16 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("1t"), None);
        assert_eq!(parse_size("k"), None);
        assert_eq!(parse_size("99999999999999g"), None);
        assert_eq!(parse_number("0x5eed"), Some(0x5eed));
        assert_eq!(parse_number("12"), Some(12));
        assert_eq!(parse_number("+12"), None);
        assert_eq!(parse_number("-1"), None);
        assert_eq!(parse_seconds("10"), Some(Duration::from_secs(10)));
        assert_eq!(parse_seconds("0.25"), Some(Duration::from_millis(250)));
        assert_eq!(parse_seconds(".5"), None);
        assert_eq!(parse_seconds("1e3"), None);
    }

    #[test]
    fn fill_and_verify() {
        let c = parse_line("fill --dev /dev/x --offset 1m --size 4m --version 3").unwrap();
        let Command::Fill(t, 3) = c else {
            panic!("{c:?}")
        };
        assert_eq!(
            (t.offset, t.size, t.block, t.blocks()),
            (1 << 20, 4 << 20, 4096, 1024)
        );
        assert_eq!(
            (t.first_block(), t.seed(), t.direct),
            (256, DEFAULT_SEED, true)
        );
        let c = parse_line("verify --dev=f --size=8k --block 512 --no-direct --state s").unwrap();
        assert!(
            matches!(c, Command::Verify(ref t, Expect::State(ref s), None) if s == "s" && !t.direct && t.block == 512)
        );
        assert!(parse_line("verify --dev f --size 8k").is_err());
        assert!(parse_line("verify --dev f --size 8k --version 1 --state s").is_err());
    }

    #[test]
    fn race_defaults_and_rules() {
        let Command::Race(r) = parse_line("race --dev d --size 1m --seconds 2").unwrap() else {
            panic!()
        };
        assert_eq!(r.duration, Duration::from_secs(2));
        assert_eq!((r.read_pct, r.zero_pct, r.discard_pct), (50, 0, 0));
        assert_eq!((r.max_blocks, r.fsync_every, r.dsync_pct), (8, 0, 0));
        assert_eq!((r.threads, r.init), (None, false));
        let err = parse_line("race --dev d --size 1m --seconds 2 --discard-pct 5").unwrap_err();
        assert!(err.contains("--discard-zeroes"), "{err}");
        let err = parse_line("race --dev d --size 1m --seconds 2 --read-pct 90 --zero-pct 20")
            .unwrap_err();
        assert!(err.contains("more than 100"), "{err}");
        assert!(parse_line("race --dev d --size 1m").is_err());
        assert!(parse_line("race --dev d --size 1m --seconds 2 --threads 0").is_err());
    }

    #[test]
    fn usage_errors() {
        for (line, needle) in [
            ("", "missing command"),
            ("frob --dev d", "unknown command"),
            ("fill --size 1m", "needs --dev"),
            ("fill --dev d", "needs --size"),
            (
                "fill --dev d --size 1000",
                "not a multiple of the block size 4096",
            ),
            (
                "fill --dev d --size 8k --offset 512",
                "--offset 512: not a multiple",
            ),
            ("fill --dev d --size 8k --block 1000", "--block 1000"),
            ("fill --dev d --size 0", "at least one block"),
            ("fill --dev d --size 8k --bogus", "unknown option --bogus"),
            ("fill --dev d --size 8k extra", "unexpected argument"),
            ("fill --dev d --size 8k --size 4k", "given twice"),
            ("fill --dev d --size 8k --version 0", "must be 1..="),
            ("fill --dev d --size 8x", "not a size"),
            ("fill --dev d --size 8k --seed zz", "--seed"),
            ("fill --dev d --size 8k --no-direct=1", "takes no value"),
            (
                "fill --dev d --size 8k --offset 8589934592g",
                "past the largest",
            ),
            ("scribble --dev d --size 8k --passes", "needs a value"),
            ("compare --dev d --size 8k", "needs --against"),
            ("compare --dev d --size 8k --against=", "needs --against"),
            (
                "race --dev d --size 8k --seconds 1 --read-pct 101",
                "must be 0..=100",
            ),
        ] {
            let err = parse_line(line).unwrap_err();
            assert!(err.contains(needle), "{line:?}: {err}");
        }
        assert_eq!(parse_line("help").unwrap(), Command::Help);
        match parse_line("compare --dev a --against b --size 1m").unwrap() {
            Command::Compare(t, e) => {
                assert_eq!((t.dev.as_str(), t.size, e.as_str()), ("a", 1 << 20, "b"))
            }
            c => panic!("{c:?}"),
        }
    }
}
