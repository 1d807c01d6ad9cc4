// SPDX-License-Identifier: GPL-2.0

//! Runs the `rkm-memstress` binary as the test scripts do.

use std::process::{Command, Output};

fn memstress(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rkm-memstress"))
        .args(args)
        .output()
        .expect("run rkm-memstress")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("UTF-8 output")
}

#[test]
fn verifies_8_mib() {
    let out = memstress(&["--size-mib", "8", "--threads", "2", "--passes", "2"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("memstress: config: 8 MiB (2048 pages), 2 threads, 2 passes"));
    assert!(lines[1].starts_with("memstress: filled 2048 pages in "));
    for (pass, line) in [(1, lines[2]), (2, lines[3])] {
        let prefix = format!("memstress: pass {pass}/2: verified 2048 pages, rewrote ");
        assert!(line.starts_with(&prefix), "{line}");
        assert!(line.ends_with(" s"), "{line}");
    }
    assert!(
        lines[4].starts_with("memstress: OK: 2048 pages x 2 passes verified, 0 mismatches, "),
        "{}",
        lines[4]
    );
    assert_eq!(lines.len(), 5, "{text}");
    assert!(!text.contains("MISMATCH"));
    assert!(out.stderr.is_empty());
}

#[test]
fn detects_injected_corruption() {
    let out = memstress(&[
        "--size-mib",
        "8",
        "--threads",
        "2",
        "--passes",
        "2",
        "--inject-corruption",
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let mismatches: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("memstress: MISMATCH "))
        .collect();
    assert_eq!(mismatches.len(), 1, "{text}");
    let m = mismatches[0];
    assert!(
        m.starts_with("memstress: MISMATCH page 1024 offset 2049 expected 0x"),
        "{m}"
    );
    assert!(
        m.contains(" got 0x") && m.contains("(kind ") && m.ends_with(", gen 0)"),
        "{m}"
    );
    assert!(
        text.contains("memstress: pass 1/2: verified 2048 pages"),
        "{text}"
    );
    assert!(
        text.lines().last() == Some("memstress: FAILED: 1 mismatches"),
        "{text}"
    );
    assert!(!text.contains("memstress: OK"));
}

#[test]
fn time_bound_run() {
    let out = memstress(&["--size-mib", "4", "--threads", "3", "--seconds", "0.3"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("memstress: pass 1: verified 1024 pages"),
        "{text}"
    );
    assert!(text.contains("memstress: OK: 1024 pages x "), "{text}");
}

#[test]
fn single_kind_mixes() {
    for mix in [
        "text",
        "binary",
        "pattern",
        "random",
        "zero",
        "text=1,random=1",
    ] {
        let out = memstress(&[
            "--size-mib",
            "1",
            "--passes",
            "2",
            "--mix",
            mix,
            "--seed",
            "0x1234",
        ]);
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(0), "{mix}: {text}");
        assert!(text.contains("seed 0x1234"), "{text}");
        assert!(
            text.contains("memstress: OK: 256 pages x 2 passes"),
            "{text}"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &[][..],
        &["--size-mib", "0"],
        &["--size-mib", "8", "--threads", "0"],
        &["--size-mib", "8", "--mix", "text,bogus"],
        &["--size-mib", "8", "--frobnicate"],
    ] {
        let out = memstress(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("memstress: error: "), "{args:?}: {err}");
    }
}

#[test]
fn mmap_failure_exits_2() {
    // Under a 1 GiB address-space limit a 4 GiB mapping must fail.
    let out = Command::new("sh")
        .args(["-c", "ulimit -v 1048576 && exec \"$0\" --size-mib 4096"])
        .arg(env!("CARGO_BIN_EXE_rkm-memstress"))
        .output()
        .expect("run sh");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mmap of 4096 MiB failed"), "{err}");
}

#[test]
fn help() {
    let out = memstress(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.starts_with("Usage: rkm-memstress --size-mib N"));
    for option in ["--threads", "--passes", "--seconds", "--seed", "--mix"] {
        assert!(text.contains(option), "{option}");
    }
    assert!(!text.contains("inject"));
}
