//! `AppError`: use-case failures grouped by how the caller should react.

use fhir::{Issue, IssueCode};
use store::{StoreError, Timestamp};

/// A failed use case. The server maps each variant to exactly one HTTP status (see
/// `server::error`). Messages are client-safe: they never contain resource content.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request or the resource is malformed; each issue names the element path.
    #[error("invalid request")]
    Invalid(Vec<Issue>),
    /// Nothing lives at this address (or the caller may not know it does).
    #[error("not found")]
    NotFound,
    /// The resource was deleted at `version`.
    #[error("gone")]
    Gone {
        version: u64,
        last_updated: Timestamp,
    },
    /// The policy said no.
    #[error("denied: {0}")]
    Denied(String),
    /// The request conflicts with the current state (an id that exists, a transaction race).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A precondition (`If-Match`, a conditional operation's match count) does not hold.
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    /// Retry later: the store is unavailable.
    #[error("service unavailable")]
    Unavailable(#[source] StoreError),
    /// A bug; the source is logged, never shown.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl AppError {
    /// One invalid-request issue.
    pub fn invalid(
        code: IssueCode,
        expression: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        AppError::Invalid(vec![Issue::error(code, expression, message)])
    }
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::VersionConflict {
                expected, actual, ..
            } => AppError::PreconditionFailed(match actual {
                Some(actual) => {
                    format!("version {expected} was expected but the current version is {actual}")
                }
                None => format!("version {expected} was expected but the resource does not exist"),
            }),
            StoreError::Duplicate(message) => AppError::Conflict(message),
            StoreError::Invalid(message) => AppError::invalid(IssueCode::Invalid, None, message),
            StoreError::Unavailable(_) => AppError::Unavailable(error),
            StoreError::Internal(source) => AppError::Internal(source),
        }
    }
}
