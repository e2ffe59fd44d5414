//! A small deterministic pseudo-random generator (SplitMix64), so that a seed always generates the
//! same population without pulling in a dependency. Not for anything but synthetic data.
//!
//! This is the generator `benches` has used since its start (same API, same sequence); the benchmark
//! crate can re-export it from here (`pub use synth::rng::{Rng, index_from};`).

/// SplitMix64: a 64-bit state, good enough spread for picking ids, codes and values.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// A generator for one item of a family (a person of a population, say): its sequence is fixed
    /// by the family's `seed` and the item's `stream`, and differs from every other stream's.
    pub fn for_stream(seed: u64, stream: u64) -> Self {
        let mut mixer = Rng::new(seed ^ 0x6A09_E667_F3BC_C908);
        let base = mixer.next_u64();
        let mut mixer = Rng::new(base ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        Rng(mixer.next_u64())
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut mixed = self.0;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^ (mixed >> 31)
    }

    /// A number in `0..bound`; `bound` must not be zero. The modulo bias is irrelevant at the
    /// sizes used here.
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound as u64) as usize
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: usize, high: usize) -> usize {
        low + self.below(high - low + 1)
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `probability`.
    pub fn chance(&mut self, probability: f64) -> bool {
        self.unit() < probability
    }

    /// A float in `[low, high)`.
    pub fn uniform(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    /// An approximately normal value (Irwin–Hall: twelve uniforms), so that no transcendental
    /// function makes the output depend on the platform's maths library.
    pub fn normal(&mut self, mean: f64, deviation: f64) -> f64 {
        let sum: f64 = (0..12).map(|_| self.unit()).sum();
        mean + deviation * (sum - 6.0)
    }

    /// An index into `weights` drawn with probability proportional to its weight; the weights must
    /// not all be zero.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|weight| u64::from(*weight)).sum();
        let mut target = self.next_u64() % total;
        for (index, weight) in weights.iter().enumerate() {
            let weight = u64::from(*weight);
            if target < weight {
                return index;
            }
            target -= weight;
        }
        weights.len() - 1
    }
}

/// Picks an index in `0..len` from a random word handed to a benchmark operation.
pub fn index_from(random: u64, len: usize) -> usize {
    (random % len as u64) as usize
}
