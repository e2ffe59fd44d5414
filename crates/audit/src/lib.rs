//! The audit trail: an append-only, tamper-evident log of every decision about patient data.
//!
//! - [`merkle`]: RFC 6962 hash tree math (pure): leaf and node hashes, roots, inclusion and
//!   consistency proofs and their verifiers.

mod hash;
pub mod merkle;

pub use crate::hash::Hash;
pub use crate::merkle::ProofError;
