//! The audit trail: an append-only, tamper-evident log of every decision about patient data.
//!
//! - [`AuditRecord`]: one decision (who, which organisation, why, which patient, what, outcome,
//!   when, emergency or not) in the IHE BALP shape, with one canonical byte encoding
//!   ([`AuditRecord::to_canonical_bytes`]) and a FHIR R4 `AuditEvent` view
//!   ([`AuditRecord::to_audit_event`]).
//! - [`merkle`]: RFC 6962 hash tree math (pure): leaf and node hashes, roots, inclusion and
//!   consistency proofs and their verifiers.
//! - [`SignedTreeHead`]: `(tree_size, root_hash, timestamp)` signed with the log's Ed25519
//!   [`AuditKey`]; [`InclusionProof`] and [`ConsistencyProof`] check against one.

mod audit_event;
mod hash;
mod head;
mod key;
pub mod merkle;
mod record;
mod time;

pub use crate::hash::Hash;
pub use crate::head::{ConsistencyProof, InclusionProof, Signature, SignedTreeHead};
pub use crate::key::{AuditKey, KeyError, PublicKey};
pub use crate::merkle::ProofError;
pub use crate::record::{
    Action, Agent, AuditRecord, Decision, INSTITUTION_NUMBER_SYSTEM, Interaction, MAX_QUERY_NAMES,
    OrganisationId, Outcome, PurposeOfUse, RecordError, parameter_names, query_parameter_names,
};
pub use crate::time::UtcTime;
