// SPDX-License-Identifier: GPL-2.0

//! The content of a block.
//!
//! Every block written by the tool is a pure function of `(seed, block
//! number, version)`, so that the checker regenerates what it expects
//! instead of keeping copies, and so that a block read back says which
//! block and which version it is.
//!
//! # Layout
//!
//! | bytes      | content (little endian)                                   |
//! |------------|-----------------------------------------------------------|
//! | 0..8       | magic [`MAGIC`], the bytes `RKMBLKV1`                     |
//! | 8..16      | block number: byte offset on the device / block size      |
//! | 16..24     | version (>= 1)                                            |
//! | 24..32     | seed                                                      |
//! | 32..40     | checksum of the whole block, this field taken as zero     |
//! | 40..       | body: a splitmix64 stream seeded from the three above     |
//!
//! A block of zeros means "zeroed or discarded": the magic makes sure no
//! written block is all zeros.

/// Length of the header.
pub const HEADER_LEN: usize = 40;

/// The first eight bytes of every block the tool writes.
pub const MAGIC: u64 = u64::from_le_bytes(*b"RKMBLKV1");

/// Index of the checksum word among the block's 64-bit words.
const CHECKSUM_WORD: usize = 4;

/// The splitmix64 finaliser: a bijective mix of 64 bits.
pub fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A splitmix64 generator: fast, and good enough for content and choices.
#[derive(Clone, Debug)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator whose stream is a function of `seed`.
    pub fn new(seed: u64) -> SplitMix {
        SplitMix(seed)
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.0)
    }

    /// A number in `0..n` (0 when `n` is 0), by multiply-shift.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// Reads the little-endian 64-bit word at byte `at` of `buf` (0 past its end).
fn word(buf: &[u8], at: usize) -> u64 {
    match buf.get(at..at + 8) {
        Some(b) => {
            let mut w = [0u8; 8];
            w.copy_from_slice(b);
            u64::from_le_bytes(w)
        }
        None => 0,
    }
}

/// The checksum of a block: every 64-bit word, the checksum word taken as
/// zero, and the length.
fn checksum(buf: &[u8]) -> u64 {
    let mut h = mix64(buf.len() as u64 ^ 0x636b_7375_6d00_0000);
    for (i, chunk) in buf.chunks_exact(8).enumerate() {
        let w = if i == CHECKSUM_WORD {
            0
        } else {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            u64::from_le_bytes(b)
        };
        h = (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
    }
    mix64(h)
}

/// Writes the content of `block` at `version` for `seed` into `buf`, a
/// whole block (a multiple of 8 bytes, at least [`HEADER_LEN`]).
pub fn fill(buf: &mut [u8], seed: u64, block: u64, version: u64) {
    let mut rng = SplitMix::new(mix64(seed ^ mix64(block ^ mix64(version ^ MAGIC))));
    let header = [MAGIC, block, version, seed, 0];
    for (i, chunk) in buf.chunks_exact_mut(8).enumerate() {
        let w = match header.get(i) {
            Some(&h) => h,
            None => rng.next_u64(),
        };
        chunk.copy_from_slice(&w.to_le_bytes());
    }
    let sum = checksum(buf);
    let at = CHECKSUM_WORD * 8;
    if let Some(field) = buf.get_mut(at..at + 8) {
        field.copy_from_slice(&sum.to_le_bytes());
    }
}

/// The header of a block that starts with [`MAGIC`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The block number it claims.
    pub block: u64,
    /// The version it claims.
    pub version: u64,
    /// The seed it claims.
    pub seed: u64,
    /// Whether the checksum matches the whole block.
    pub intact: bool,
}

/// What a block read back holds, as far as it tells by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// All zeros.
    Zeros,
    /// A block written by this tool (intact or not).
    Block(Header),
    /// Neither: no magic.
    Garbage,
}

/// Decodes a block read back.
pub fn decode(buf: &[u8]) -> Found {
    if buf.iter().all(|&b| b == 0) {
        return Found::Zeros;
    }
    if buf.len() < HEADER_LEN || word(buf, 0) != MAGIC {
        return Found::Garbage;
    }
    Found::Block(Header {
        block: word(buf, 8),
        version: word(buf, 16),
        seed: word(buf, 24),
        intact: word(buf, CHECKSUM_WORD * 8) == checksum(buf),
    })
}

/// A short description of what `found` is, for a report.
pub fn describe(found: Found) -> String {
    match found {
        Found::Zeros => "zeros".to_string(),
        Found::Garbage => "garbage (no header)".to_string(),
        Found::Block(h) => format!(
            "block {} version {} seed {:#x}{}",
            h.block,
            h.version,
            h.seed,
            if h.intact { "" } else { ", checksum wrong" }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_is_deterministic_and_decodes() {
        let mut a = vec![0u8; 4096];
        let mut b = vec![0u8; 4096];
        fill(&mut a, 7, 100, 3);
        fill(&mut b, 7, 100, 3);
        assert_eq!(a, b);
        assert_eq!(
            decode(&a),
            Found::Block(Header {
                block: 100,
                version: 3,
                seed: 7,
                intact: true
            })
        );
        assert_eq!(&a[..8], b"RKMBLKV1");
    }

    #[test]
    fn content_depends_on_every_input() {
        let mut base = vec![0u8; 512];
        fill(&mut base, 1, 2, 3);
        for (seed, block, version) in [(9, 2, 3), (1, 9, 3), (1, 2, 9)] {
            let mut other = vec![0u8; 512];
            fill(&mut other, seed, block, version);
            let same = base[HEADER_LEN..]
                .iter()
                .zip(&other[HEADER_LEN..])
                .filter(|(a, b)| a == b)
                .count();
            // Random bytes agree about once in 256.
            assert!(same < 20, "{seed} {block} {version}: {same}");
        }
    }

    #[test]
    fn any_flipped_byte_breaks_the_checksum() {
        let mut a = vec![0u8; 4096];
        fill(&mut a, 1, 2, 3);
        for at in [0usize, 9, 17, 25, 33, 40, 2049, 4095] {
            let mut b = a.clone();
            b[at] ^= 0x10;
            match decode(&b) {
                Found::Block(h) => assert!(!h.intact, "byte {at}"),
                Found::Garbage => assert!(at < 8, "byte {at}"),
                Found::Zeros => panic!("byte {at}"),
            }
        }
    }

    #[test]
    fn zeros_and_garbage() {
        assert_eq!(decode(&[0u8; 4096]), Found::Zeros);
        assert_eq!(decode(&[0xeeu8; 4096]), Found::Garbage);
        let mut a = vec![0u8; 4096];
        a[4095] = 1;
        assert_eq!(decode(&a), Found::Garbage);
        assert_eq!(describe(Found::Zeros), "zeros");
    }

    #[test]
    fn below_stays_below() {
        let mut r = SplitMix::new(5);
        for n in [1u64, 2, 3, 8, 1000] {
            for _ in 0..1000 {
                assert!(r.below(n) < n);
            }
        }
        assert_eq!(r.below(0), 0);
    }
}
