//! Helpers shared by the host test files.

/// xorshift64*: a small deterministic PRNG for randomized tests.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (any value).
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// The next pseudo-random number.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `n` repetitions, or a hundredth of them (at least 1) under Miri, which
/// interprets every step: the same paths, fewer rounds.
pub fn reps(n: u64) -> u64 {
    if cfg!(miri) {
        (n / 100).max(1)
    } else {
        n
    }
}
