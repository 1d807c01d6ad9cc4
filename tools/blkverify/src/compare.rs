// SPDX-License-Identifier: GPL-2.0

//! `compare`: whether two devices hold the same bytes over a range (a cache
//! device and its backing device, say). Both are read at once, one thread
//! each, in chunks of [`CHUNK`] bytes, each chunk reduced to a 64-bit
//! digest; the digests are compared, and a chunk whose digests differ is
//! read again from both and compared byte for byte, to report the first
//! differing block. Much cheaper than two `md5sum`s in a TCG guest.

use std::thread;
use std::time::Instant;

use crate::cli::Target;
use crate::device::{AlignedBuf, Device};
use crate::report::Summary;
use crate::{open_target, Counts, Failure};

/// Bytes per read (rounded down to whole blocks, at least one).
const CHUNK: u64 = 1 << 20;

/// A digest of `bytes`: a multiply-xorshift over its 64-bit words, with the
/// word's index mixed in (so that swapped words differ).
fn digest(bytes: &[u8]) -> u64 {
    let mut h = 0x9e37_79b9_7f4a_7c15u64;
    for (i, w) in bytes.chunks_exact(8).enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(w);
        let x = u64::from_le_bytes(word) ^ (i as u64).wrapping_mul(0xff51_afd7_ed55_8ccd);
        h = (h ^ x).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^= h >> 29;
    }
    h
}

/// The digest of every chunk of the range on `dev`, or the chunks' I/O
/// errors (their digest is then `None`).
fn digests(dev: &Device, t: &Target, chunk: u64) -> Result<Vec<Option<u64>>, Failure> {
    let mut buf = AlignedBuf::new(chunk as usize).map_err(Failure::Io)?;
    let mut out = Vec::with_capacity(t.size.div_ceil(chunk) as usize);
    let mut at = 0;
    while at < t.size {
        let n = chunk.min(t.size - at) as usize;
        let bytes = &mut buf.as_mut_slice()[..n];
        out.push(
            dev.read_at(bytes, t.offset + at)
                .ok()
                .map(|()| digest(bytes)),
        );
        at += chunk;
    }
    Ok(out)
}

/// `compare`: `t`'s range on `t.dev` and on `against`.
pub fn run(t: &Target, against: &str) -> Result<Counts, Failure> {
    let start = Instant::now();
    let a = open_target(t, false, false, false)?;
    let tb = Target {
        dev: against.to_string(),
        ..t.clone()
    };
    let b = open_target(&tb, false, false, false)?;
    let chunk = (CHUNK / t.block).max(1) * t.block;
    let (da, db) = thread::scope(|s| {
        let ja = s.spawn(|| digests(&a, t, chunk));
        let jb = s.spawn(|| digests(&b, &tb, chunk));
        (ja.join(), jb.join())
    });
    let joined = |r: thread::Result<Result<Vec<Option<u64>>, Failure>>| {
        r.unwrap_or_else(|_| Err(Failure::Io("a reading thread panicked".into())))
    };
    let (da, db) = (joined(da)?, joined(db)?);
    let mut counts = Counts {
        mismatches: 0,
        io_errors: 0,
    };
    let mut first_bad: Option<u64> = None;
    for (i, (x, y)) in da.iter().zip(&db).enumerate() {
        let at = i as u64 * chunk;
        match (x, y) {
            (Some(x), Some(y)) if x == y => {}
            (Some(_), Some(_)) => {
                counts.mismatches += 1;
                if first_bad.is_none() {
                    first_bad = Some(first_difference(&a, &b, t, at, chunk)?);
                }
            }
            _ => counts.io_errors += 1,
        }
    }
    if let Some(off) = first_bad {
        eprintln!(
            "blkverify: compare: {} and {} differ first in the block at byte {off}",
            t.dev, against
        );
    }
    Summary::new("compare")
        .kv("bytes", t.size)
        .kv("chunks", da.len())
        .kv("differing_chunks", counts.mismatches)
        .kv("io_errors", counts.io_errors)
        .kv("elapsed", format!("{:.2}", start.elapsed().as_secs_f64()))
        .print();
    Ok(counts)
}

/// The offset of the first block that differs in the chunk at `at`.
fn first_difference(
    a: &Device,
    b: &Device,
    t: &Target,
    at: u64,
    chunk: u64,
) -> Result<u64, Failure> {
    let n = chunk.min(t.size - at) as usize;
    let mut ba = AlignedBuf::new(n).map_err(Failure::Io)?;
    let mut bb = AlignedBuf::new(n).map_err(Failure::Io)?;
    let read = |dev: &Device, buf: &mut AlignedBuf| {
        dev.read_at(buf.as_mut_slice(), t.offset + at)
            .map_err(|e| Failure::Io(format!("{e}")))
    };
    read(a, &mut ba)?;
    read(b, &mut bb)?;
    let block = t.block as usize;
    let i = ba
        .as_slice()
        .chunks(block)
        .zip(bb.as_slice().chunks(block))
        .position(|(x, y)| x != y)
        .unwrap_or(0);
    Ok(t.offset + at + (i * block) as u64)
}

#[cfg(test)]
mod tests {
    use super::digest;

    #[test]
    fn digests_tell_bytes_and_order_apart() {
        let a = vec![7u8; 4096];
        let mut b = a.clone();
        assert_eq!(digest(&a), digest(&b));
        b[4095] ^= 1;
        assert_ne!(digest(&a), digest(&b));
        let mut c = a.clone();
        c[..8].copy_from_slice(&1u64.to_le_bytes());
        let mut d = a.clone();
        d[8..16].copy_from_slice(&1u64.to_le_bytes());
        assert_ne!(digest(&c), digest(&d));
    }
}
