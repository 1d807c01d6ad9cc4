// SPDX-License-Identifier: GPL-2.0

//! The state file: the expected content of every block of a hot set after
//! a `race`, for a later `verify --state`.
//!
//! ```text
//! rkm-blkverify state 1 block=4096 seed=0x5eed
//! 256 17 data
//! 257 3 zero
//! 258 0 unknown
//! ```
//!
//! One line per block: device block number (byte offset / block size),
//! version, kind (`data`: the pattern of that version; `zero`: zeros;
//! `unknown`: zeros or any whole version of the block, for blocks that were
//! never written without `--init`, or whose last write failed).

use std::fs::File;
use std::io::{self, BufWriter, Write};

use crate::check::{History, Kind};
use crate::cli::parse_number;

/// The first word of a state file.
const MAGIC: &str = "rkm-blkverify state 1";

/// Writes the state of `history`, whose block 0 is device block
/// `first_block`, to `path`.
pub fn save(
    path: &str,
    block_size: u64,
    seed: u64,
    first_block: u64,
    history: &History,
) -> io::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    writeln!(out, "{MAGIC} block={block_size} seed={seed:#x}")?;
    for i in 0..history.len() {
        let (version, kind) = history.final_state(i);
        let block = first_block.saturating_add(i as u64);
        writeln!(out, "{block} {version} {}", kind.name())?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()
}

/// A loaded state: the seed it was written with, and the expected version
/// and kind of each of `count` blocks from `first_block`.
#[derive(Debug)]
pub struct State {
    /// The content seed of the run.
    pub seed: u64,
    /// `blocks[i]`: version and kind of block `first_block + i`.
    pub blocks: Vec<(u64, Kind)>,
}

/// Loads the state of blocks `first_block..first_block + count` from the
/// text of a state file; every error is a message for a usage error.
pub fn parse(text: &str, block_size: u64, first_block: u64, count: u64) -> Result<State, String> {
    let mut lines = text.lines().enumerate();
    let header = lines.next().map_or("", |(_, l)| l);
    let rest = header
        .strip_prefix(MAGIC)
        .ok_or_else(|| format!("not a state file (its first line is not {MAGIC:?} ...)"))?;
    let (mut block, mut seed) = (None, None);
    for field in rest.split_whitespace() {
        match field.split_once('=') {
            Some(("block", v)) => block = parse_number(v),
            Some(("seed", v)) => seed = parse_number(v),
            _ => return Err(format!("line 1: unknown field {field:?}")),
        }
    }
    let (Some(file_block), Some(seed)) = (block, seed) else {
        return Err("line 1: needs block=B and seed=N".to_string());
    };
    if file_block != block_size {
        return Err(format!(
            "the state is of {file_block}-byte blocks, not {block_size}: pass --block {file_block}"
        ));
    }
    let len = usize::try_from(count).map_err(|_| format!("{count} blocks is too many"))?;
    let mut blocks: Vec<Option<(u64, Kind)>> = Vec::new();
    blocks
        .try_reserve_exact(len)
        .map_err(|e| format!("cannot allocate the state of {count} blocks: {e}"))?;
    blocks.resize(len, None);
    for (n, line) in lines {
        let bad = |what: &str| format!("line {}: {what}: {line:?}", n + 1);
        let mut fields = line.split_whitespace();
        let (Some(b), Some(v), Some(k), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(bad("expected <block> <version> <kind>"));
        };
        let b = parse_number(b).ok_or_else(|| bad("bad block number"))?;
        let v = parse_number(v).ok_or_else(|| bad("bad version"))?;
        let k = Kind::parse(k).ok_or_else(|| bad("kind is not data, zero or unknown"))?;
        let Some(i) = b.checked_sub(first_block).filter(|&i| i < count) else {
            continue;
        };
        if let Some(slot) = blocks.get_mut(i as usize) {
            if slot.is_some() {
                return Err(bad("block listed twice"));
            }
            *slot = Some((v, k));
        }
    }
    let mut out = Vec::new();
    out.try_reserve_exact(len)
        .map_err(|e| format!("cannot allocate the state of {count} blocks: {e}"))?;
    for (i, b) in blocks.into_iter().enumerate() {
        match b {
            Some(b) => out.push(b),
            None => {
                return Err(format!(
                    "block {} of the range is not in the state",
                    first_block.saturating_add(i as u64)
                ))
            }
        }
    }
    Ok(State { seed, blocks: out })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_and_parse() {
        let h = History::new(3, 1, Kind::Data).unwrap();
        assert!(h.try_lock(1, 1));
        let v = h.start(1, Kind::Zero);
        h.commit(1, v);
        let dir = std::env::temp_dir().join(format!("blkverify-state-{}", std::process::id()));
        let path = dir.to_str().unwrap().to_string();
        save(&path, 512, 7, 100, &h).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(
            text,
            "rkm-blkverify state 1 block=512 seed=0x7\n100 1 data\n101 2 zero\n102 1 data\n"
        );
        let s = parse(&text, 512, 101, 2).unwrap();
        assert_eq!(s.seed, 7);
        assert_eq!(s.blocks, vec![(2, Kind::Zero), (1, Kind::Data)]);
        assert!(parse(&text, 4096, 100, 3)
            .unwrap_err()
            .contains("--block 512"));
        assert!(parse(&text, 512, 100, 4)
            .unwrap_err()
            .contains("block 103 of the range is not in the state"));
        assert!(parse("hello\n", 512, 0, 1)
            .unwrap_err()
            .contains("not a state file"));
        let twice = format!("{text}101 3 data\n");
        assert!(parse(&twice, 512, 100, 3)
            .unwrap_err()
            .contains("listed twice"));
        let bad = format!("{text}104 x data\n");
        assert!(parse(&bad, 512, 100, 3)
            .unwrap_err()
            .contains("line 5: bad version"));
    }
}
