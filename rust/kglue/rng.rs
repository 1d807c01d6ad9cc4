// SPDX-License-Identifier: GPL-2.0

//! A small deterministic PRNG (xorshift64*) for in-kernel tests and
//! benchmarks: a fixed seed makes a failure reproducible and two runs of a
//! benchmark see the same keys.

/// xorshift64*.
///
/// # Invariants
///
/// The state is never 0 (a zero seed is replaced), or the sequence would be
/// all zeros.
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Rng(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// The next number.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`; 0 if `n` is 0.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next().checked_rem(n).unwrap_or(0)
    }
}
