// SPDX-License-Identifier: GPL-2.0

//! Runs the `rkm-blkverify` binary on regular files (`--no-direct`), as the
//! guest's test scripts run it on block devices, including against a
//! "faulty device": a thread of the test that rolls blocks back to older
//! versions behind the tool's back.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn tool() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rkm-blkverify"))
}

fn run(args: &[&str]) -> Output {
    tool().args(args).output().expect("run rkm-blkverify")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("UTF-8 output")
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("UTF-8 output")
}

/// A scratch file of `size` zero bytes, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str, size: u64) -> Scratch {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        fs::create_dir_all(dir).unwrap();
        let path = dir.join(format!("blkverify-{name}-{}", std::process::id()));
        File::create(&path).unwrap().set_len(size).unwrap();
        Scratch(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }

    fn sibling(&self, ext: &str) -> String {
        format!("{}.{ext}", self.path())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
        for ext in ["state", "progress", "progress.tmp"] {
            let _ = fs::remove_file(self.sibling(ext));
        }
    }
}

/// The `key=value` pairs of the summary line of `command`.
fn summary(text: &str, command: &str) -> HashMap<String, String> {
    let prefix = format!("blkverify: {command} ");
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with(&prefix) && l.contains('='))
        .collect();
    assert_eq!(lines.len(), 1, "one summary line in {text}");
    lines[0][prefix.len()..]
        .split(' ')
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("key=value");
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn num(s: &HashMap<String, String>, key: &str) -> u64 {
    s.get(key)
        .unwrap_or_else(|| panic!("no {key} in {s:?}"))
        .parse()
        .unwrap()
}

fn mismatch_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.starts_with("blkverify: MISMATCH "))
        .collect()
}

#[test]
fn fill_then_verify() {
    let f = Scratch::new("fill", 0);
    let out = run(&[
        "fill",
        "--dev",
        f.path(),
        "--offset",
        "64k",
        "--size",
        "1m",
        "--no-direct",
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    let s = summary(&text, "fill");
    assert_eq!(
        (num(&s, "blocks"), num(&s, "version"), num(&s, "io_errors")),
        (256, 1, 0)
    );
    // The file grew to the end of the range.
    assert_eq!(fs::metadata(&f.0).unwrap().len(), (64 + 1024) * 1024);

    let out = run(&[
        "verify",
        "--dev",
        f.path(),
        "--offset",
        "64k",
        "--size",
        "1m",
        "--no-direct",
        "--version",
        "1",
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let s = summary(&text, "verify");
    assert_eq!(
        (num(&s, "blocks"), num(&s, "ok"), num(&s, "mismatches")),
        (256, 256, 0)
    );

    // The blocks before the range are zeros, not version 1.
    let out = run(&[
        "verify",
        "--dev",
        f.path(),
        "--size",
        "64k",
        "--no-direct",
        "--version",
        "1",
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert_eq!(num(&summary(&text, "verify"), "mismatches"), 16);
    assert!(
        mismatch_lines(&text)[0].starts_with(
            "blkverify: MISMATCH block 0 (offset 0): expected version 1 (data), found zeros"
        ),
        "{text}"
    );
}

#[test]
fn verify_reports_what_it_found() {
    let f = Scratch::new("found", 0);
    let args = [
        "--dev",
        f.path(),
        "--size",
        "64k",
        "--no-direct",
        "--block",
        "1k",
    ];
    let fill = |version: &str, extra: &[&str]| {
        let out = run(&[&["fill"], &args[..], &["--version", version], extra].concat());
        assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    };
    let verify = |version: &str, extra: &[&str]| {
        let out = run(&[&["verify"], &args[..], &["--version", version], extra].concat());
        (out.status.code(), stdout(&out))
    };
    fill("2", &[]);
    assert_eq!(verify("2", &[]).0, Some(0));
    // Expecting version 3: every block is stale.
    let (code, text) = verify("3", &[]);
    assert_eq!(code, Some(1));
    assert_eq!(num(&summary(&text, "verify"), "mismatches"), 64);
    assert!(mismatch_lines(&text)[0].contains(
        "block 0 (offset 0): expected version 3 (data), found version 2 of this block: stale"
    ));
    assert_eq!(mismatch_lines(&text).len(), 10, "{text}");
    assert!(text.contains("blkverify: further mismatches are counted, not described"));
    // Expecting version 1: from the future.
    let (_, text) = verify("1", &[]);
    assert!(
        text.contains("found version 2 of this block: from the future"),
        "{text}"
    );
    // Another seed.
    let (code, text) = verify("2", &["--seed", "7"]);
    assert_eq!(code, Some(1));
    assert!(
        text.contains("found block 0 version 2 seed 0x5eed (data of another seed"),
        "{text}"
    );

    // One flipped byte in block 5, block 9 copied over block 7.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&f.0)
        .unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, 5 * 1024 + 700).unwrap();
    file.write_all_at(&[byte[0] ^ 0x40], 5 * 1024 + 700)
        .unwrap();
    let mut nine = vec![0u8; 1024];
    file.read_exact_at(&mut nine, 9 * 1024).unwrap();
    file.write_all_at(&nine, 7 * 1024).unwrap();
    file.sync_all().unwrap();
    let (code, text) = verify("2", &[]);
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(num(&summary(&text, "verify"), "mismatches"), 2);
    let lines = mismatch_lines(&text);
    assert!(
        lines[0].ends_with(
            "block 5 (offset 5120): expected version 2 (data), found block 5 version 2 seed \
             0x5eed, checksum wrong (a corrupted block, 1 of 1024 bytes differ from version 2)"
        ),
        "{text}"
    );
    assert!(
        lines[1].contains(
            "block 7 (offset 7168): expected version 2 (data), found block 9 \
                           version 2 seed 0x5eed (another block's data"
        ),
        "{text}"
    );
}

#[test]
fn race_on_a_correct_file_finds_nothing() {
    let f = Scratch::new("race", 2 << 20);
    let (state, progress) = (f.sibling("state"), f.sibling("progress"));
    let out = run(&[
        "race",
        "--dev",
        f.path(),
        "--offset",
        "1m",
        "--size",
        "256k",
        "--no-direct",
        "--seconds",
        "1.5",
        "--threads",
        "4",
        "--init",
        "--read-pct",
        "40",
        "--zero-pct",
        "10",
        "--discard-pct",
        "10",
        "--discard-zeroes",
        "--fsync-every",
        "20",
        "--dsync-pct",
        "30",
        "--max-blocks",
        "16",
        "--state",
        &state,
        "--progress",
        &progress,
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(text.starts_with("blkverify: config: race dev="), "{text}");
    assert!(text.contains(" threads=4 "), "{text}");
    let s = summary(&text, "race");
    for key in [
        "reads",
        "writes",
        "zeroes",
        "discards",
        "fsyncs",
        "dsync_writes",
        "blocks_read",
    ] {
        assert!(num(&s, key) > 0, "{key}: {text}");
    }
    assert_eq!(
        num(&s, "ops"),
        num(&s, "reads") + num(&s, "writes") + num(&s, "zeroes") + num(&s, "discards")
    );
    assert_eq!(
        (
            num(&s, "mismatches"),
            num(&s, "io_errors"),
            num(&s, "unchecked")
        ),
        (0, 0, 0)
    );
    assert!(num(&s, "fsyncs") <= num(&s, "writes") / 20 + 4);
    assert!(mismatch_lines(&text).is_empty());
    assert_eq!(
        fs::read_to_string(&progress).unwrap(),
        format!("ops {}\n", num(&s, "ops"))
    );

    // The state it left verifies, and one block rolled back to version 1
    // does not.
    let verify = || {
        let out = run(&[
            "verify",
            "--dev",
            f.path(),
            "--offset",
            "1m",
            "--size",
            "256k",
            "--no-direct",
            "--state",
            &state,
        ]);
        (out.status.code(), stdout(&out))
    };
    let (code, text) = verify();
    assert_eq!(code, Some(0), "{text}");
    let s = summary(&text, "verify");
    assert_eq!((num(&s, "ok"), num(&s, "unknown")), (64, 0));
    let states = fs::read_to_string(&state).unwrap();
    let rewritten = states
        .lines()
        .skip(1)
        .find_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let version: u64 = f[1].parse().unwrap();
            (f[2] == "data" && version > 1).then(|| (f[0].parse::<u64>().unwrap(), version))
        })
        .expect("a block rewritten with data");
    let (block, version) = rewritten;
    let out = run(&[
        "fill",
        "--dev",
        f.path(),
        "--offset",
        &(block * 4096).to_string(),
        "--size",
        "4k",
        "--no-direct",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let (code, text) = verify();
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(num(&summary(&text, "verify"), "mismatches"), 1);
    let expected = format!(
        "blkverify: MISMATCH block {block} (offset {}): expected version {version} (data), \
         found version 1 of this block: stale",
        block * 4096
    );
    assert!(mismatch_lines(&text)[0].starts_with(&expected), "{text}");
}

#[test]
fn race_writes_progress_while_running() {
    let f = Scratch::new("progress", 1 << 20);
    let progress = f.sibling("progress");
    let mut child = tool()
        .args([
            "race",
            "--dev",
            f.path(),
            "--size",
            "1m",
            "--no-direct",
            "--seconds",
            "3",
            "--threads",
            "2",
            "--init",
            "--progress",
            &progress,
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let mut seen = Vec::new();
    while t.elapsed() < Duration::from_secs(2) {
        if let Ok(line) = fs::read_to_string(&progress) {
            let n: u64 = line
                .strip_prefix("ops ")
                .and_then(|n| n.trim_end().parse().ok())
                .unwrap_or_else(|| panic!("progress {line:?}"));
            if seen.last() != Some(&n) {
                seen.push(n);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let running = child.try_wait().unwrap().is_none();
    let status = child.wait().unwrap();
    assert!(running, "the race ended early");
    assert_eq!(status.code(), Some(0));
    // Rewritten at least every 200 ms, growing.
    assert!(seen.len() >= 5, "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
}

/// Rolls the file back behind the tool's back: snapshots it, waits a few
/// milliseconds, writes the snapshot back, until `stop`.
fn roll_back(path: PathBuf, len: usize, stop: &std::sync::atomic::AtomicBool) -> u64 {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut snapshot = vec![0u8; len];
    let mut rounds = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        file.read_exact_at(&mut snapshot, 0).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        file.write_all_at(&snapshot, 0).unwrap();
        rounds += 1;
    }
    rounds
}

#[test]
fn race_catches_a_device_that_loses_writes() {
    let f = Scratch::new("faulty", 64 << 10);
    let progress = f.sibling("progress");
    let child = tool()
        .args([
            "race",
            "--dev",
            f.path(),
            "--size",
            "64k",
            "--no-direct",
            "--seconds",
            "1.5",
            "--threads",
            "2",
            "--init",
            "--max-blocks",
            "4",
            "--progress",
            &progress,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The progress file appears once the hot set is filled: from then on,
    // roll back until the race ends.
    let t = Instant::now();
    while fs::metadata(&progress).is_err() && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (rounds, out) = std::thread::scope(|s| {
        let faulty = s.spawn(|| roll_back(f.0.clone(), 64 << 10, &stop));
        let out = child.wait_with_output().unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (faulty.join().unwrap(), out)
    });
    let text = stdout(&out);
    assert!(rounds > 10, "{rounds} rollbacks");
    assert_eq!(out.status.code(), Some(1), "{text}");
    let s = summary(&text, "race");
    assert!(num(&s, "mismatches") > 0);
    assert_eq!(num(&s, "io_errors"), 0);
    let lines = mismatch_lines(&text);
    assert!(!lines.is_empty(), "{text}");
    assert!(
        lines.iter().any(|l| l.contains(": stale, version ")),
        "no stale read among {lines:#?}"
    );
}

#[test]
fn race_without_init() {
    // A zero file: the unknown initial content may be zeros.
    let f = Scratch::new("noinit", 256 << 10);
    let args = [
        "race",
        "--dev",
        f.path(),
        "--size",
        "256k",
        "--no-direct",
        "--seconds",
        "0.5",
    ];
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // Nor the data of a `fill`, even where this run zeroes a block with a
    // version number the fill used.
    let out = run(&["fill", "--dev", f.path(), "--size", "256k", "--no-direct"]);
    assert_eq!(out.status.code(), Some(0));
    let out = run(&[&args[..], &["--zero-pct", "40", "--max-blocks", "16"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // Garbage is not.
    fs::write(&f.0, vec![0x5au8; 256 << 10]).unwrap();
    let out = run(&[&args[..], &["--read-pct", "100"]].concat());
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        mismatch_lines(&text)[0]
            .ends_with("expected version 0 (unknown), found garbage (no header)"),
        "{text}"
    );
}

/// The acknowledged version of block `i` of the hot set in the ack log at
/// `path` (slot `1 + i`, word 3: see `src/ack.rs`).
fn acked(path: &str, i: u64) -> u64 {
    let f = File::open(path).unwrap();
    let mut word = [0u8; 8];
    f.read_exact_at(&mut word, (1 + i) * 4096 + 24).unwrap();
    u64::from_le_bytes(word)
}

#[test]
fn ack_log_survives_runs_and_catches_a_lost_write() {
    let d = Scratch::new("ack-data", 256 << 10);
    let a = Scratch::new("ack-log", 0);
    let range = ["--dev", d.path(), "--size", "256k", "--no-direct"];
    let race = |extra: &[&str]| {
        let mut args = vec![
            "race",
            "--seconds",
            "0.5",
            "--threads",
            "2",
            "--ack-log",
            a.path(),
        ];
        args.extend_from_slice(&range);
        args.extend_from_slice(extra);
        let out = run(&args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    };
    let verify = || {
        let mut args = vec!["verify", "--ack-log", a.path()];
        args.extend_from_slice(&range);
        run(&args)
    };
    // Without a log, a run must start one.
    let mut args = vec!["race", "--seconds", "0.1", "--ack-log", a.path()];
    args.extend_from_slice(&range);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("no log here"), "{}", stderr(&out));

    race(&["--init"]);
    let first = acked(a.path(), 5);
    assert!(first >= 1);
    let out = verify();
    let s = summary(&stdout(&out), "verify");
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!((num(&s, "ok"), num(&s, "newer_than_acked")), (64, 0));

    // A second run resumes from the log: its versions go on.
    assert!(race(&[]).contains("resumed"));
    let v = acked(a.path(), 5);
    assert!(v >= first);

    // The write in flight at a cut (the next version) is allowed...
    let fill = |version: u64| {
        let out = run(&[
            "fill",
            "--dev",
            d.path(),
            "--offset",
            "20k",
            "--size",
            "4k",
            "--no-direct",
            "--version",
            &version.to_string(),
        ]);
        assert_eq!(out.status.code(), Some(0));
    };
    fill(v + 1);
    let out = verify();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(
        num(&summary(&stdout(&out), "verify"), "newer_than_acked"),
        1
    );
    // ... an acknowledged write lost is not, nor a version never started.
    for bad in [v.saturating_sub(1), v + 2] {
        if bad == 0 {
            continue;
        }
        fill(bad);
        let out = verify();
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(
            mismatch_lines(&text)[0].contains("block 5 (offset 20480)"),
            "{text}"
        );
    }
    let zeros = OpenOptions::new().write(true).open(d.path()).unwrap();
    zeros.write_all_at(&[0u8; 4096], 20 << 10).unwrap();
    assert_eq!(verify().status.code(), Some(1));

    // Another hot set's log, or a damaged one, is refused (exit 3).
    let out = run(&[
        "verify",
        "--ack-log",
        a.path(),
        "--dev",
        d.path(),
        "--size",
        "128k",
        "--no-direct",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("another hot set"), "{}", stderr(&out));
    let log = OpenOptions::new().write(true).open(a.path()).unwrap();
    log.write_all_at(&[0xff], 3 * 4096 + 30).unwrap();
    let out = verify();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("slot of block 2 is damaged"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn scribble_on_a_file() {
    let f = Scratch::new("scribble", 0);
    let common = ["--dev", f.path(), "--size", "512k", "--no-direct"];
    let out = run(&[&["fill"], &common[..]].concat());
    assert_eq!(out.status.code(), Some(0));
    let out = run(&[&["scribble"], &common[..], &["--passes", "4"]].concat());
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    let s = summary(&text, "scribble");
    assert_eq!(
        (num(&s, "blocks"), num(&s, "passes"), num(&s, "reads")),
        (128, 4, 128)
    );
    assert_eq!((num(&s, "rereads"), num(&s, "mismatches")), (256, 0));
    assert!(num(&s, "scribbles") > 0);
    // It checks the range: a version-2 block is reported.
    let out = run(&[
        "fill",
        "--dev",
        f.path(),
        "--offset",
        "8k",
        "--size",
        "4k",
        "--no-direct",
        "--version",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let out = run(&[&["scribble"], &common[..]].concat());
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert_eq!(num(&summary(&text, "scribble"), "mismatches"), 2);
    assert!(
        mismatch_lines(&text)[0].contains("block 2 (offset 8192): re-read 1: expected version 1")
    );
}

#[test]
fn usage_errors_exit_3() {
    let f = Scratch::new("usage", 64 << 10);
    for (args, needle) in [
        (vec![], "missing command"),
        (vec!["frob"], "unknown command \"frob\""),
        (vec!["fill", "--size", "4k"], "fill: needs --dev D"),
        (
            vec!["verify", "--dev", f.path(), "--size", "4k"],
            "needs --version V, --state FILE or --ack-log A",
        ),
        (
            vec!["fill", "--dev", f.path(), "--size", "3k"],
            "not a multiple of the block size",
        ),
        (
            vec![
                "race",
                "--dev",
                f.path(),
                "--size",
                "4k",
                "--seconds",
                "1",
                "--discard-pct",
                "5",
            ],
            "--discard-pct needs --discard-zeroes",
        ),
        (
            vec!["race", "--dev", f.path(), "--size", "4k"],
            "race: needs --seconds T",
        ),
        (
            vec![
                "verify",
                "--dev",
                f.path(),
                "--size",
                "128k",
                "--no-direct",
                "--version",
                "1",
            ],
            "ends past the end of the device (65536 bytes)",
        ),
        (
            vec![
                "verify",
                "--dev",
                f.path(),
                "--size",
                "4k",
                "--no-direct",
                "--state",
                "/nonexistent",
            ],
            "cannot read the state /nonexistent",
        ),
    ] {
        let out = run(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(err.contains("try 'rkm-blkverify help'"), "{err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let out = run(&["help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).starts_with("Usage: rkm-blkverify fill"));
}

#[test]
fn io_errors_exit_2() {
    let out = run(&[
        "verify",
        "--dev",
        "/nonexistent/dev",
        "--size",
        "4k",
        "--version",
        "1",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "blkverify: error: /nonexistent/dev: open: ENOENT (No such file or directory)"
        ),
        "{err}"
    );
}
