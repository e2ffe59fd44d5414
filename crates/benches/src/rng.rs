//! The benchmarks' deterministic pseudo-random generator: the synthetic population's own
//! (`synth::rng`, SplitMix64), so that every run generates the same data and query mix.

pub use synth::rng::{Rng, index_from};
