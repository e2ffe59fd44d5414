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
//! - [`AuditLog`]: the log on its own SQLite file. [`AuditLog::append`] returns only once the
//!   entry is durably committed; concurrent appends share one transaction and one fsync (group
//!   commit), and every batch stores a new signed tree head.
//! - [`verify`]: recomputes everything from the stored bytes and reports the first bad entry or
//!   tree head.
//!
//! The pure parts (records, tree math, heads) do no IO; `log` and `verify` own the SQLite file.
//! See `docs/audit.md` for the design, what verification proves and what it cannot, and how the
//! server and `tsunagu audit verify` use this crate.

mod audit_event;
mod hash;
mod head;
mod key;
mod log;
pub mod merkle;
mod record;
mod time;
mod verify;

pub use crate::hash::Hash;
pub use crate::head::{ConsistencyProof, InclusionProof, Signature, SignedTreeHead};
pub use crate::key::{AuditKey, KeyError, PublicKey};
pub use crate::log::{AuditLog, Entry, Options, Receipt, Stats};
pub use crate::merkle::ProofError;
pub use crate::record::{
    Action, Agent, AuditRecord, Decision, INSTITUTION_NUMBER_SYSTEM, Interaction, MAX_QUERY_NAMES,
    OrganisationId, Outcome, PurposeOfUse, RecordError, parameter_names, query_parameter_names,
};
pub use crate::time::UtcTime;
pub use crate::verify::{HeadKind, Problem, Report, verify, verify_with_witnesses};

use std::sync::Arc;

/// What can go wrong with the audit log, grouped by what the caller does about it. Messages carry
/// sizes and sequence numbers at most, never record content.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The audit store could not durably write or read (I/O error, disk full, locked beyond the
    /// busy timeout, not a database). A request whose audit entry was not written must fail:
    /// the server answers 503 and sends no data.
    #[error("the audit store is unavailable")]
    Storage(#[source] Arc<rusqlite::Error>),
    /// The log has been closed (the writer thread is gone). Also a 503.
    #[error("the audit log is closed")]
    Closed,
    /// The record cannot be written: a field is too long or malformed (a bug or a hostile token
    /// claim; the request fails).
    #[error(transparent)]
    InvalidRecord(#[from] RecordError),
    /// The file disagrees with its last signed tree head, or with the key it was created with,
    /// at open; or a stored node or entry a read needs is missing or malformed. Run
    /// `tsunagu audit verify`.
    #[error("the audit log is inconsistent: {0}")]
    Inconsistent(String),
    /// A key file problem.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A proof or read asked about a sequence number or tree size the log does not have.
    #[error("no such entry or tree head in the audit log")]
    OutOfRange,
}

impl From<rusqlite::Error> for AuditError {
    fn from(error: rusqlite::Error) -> Self {
        AuditError::Storage(Arc::new(error))
    }
}
