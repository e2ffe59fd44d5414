//! `StoreError`: storage failures classified by what the caller should do about them.

/// What went wrong in a storage call, by caller reaction. Each backend has exactly one classifier
/// that maps its driver errors into these variants.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An `If-Match` precondition failed: the resource is at `actual` (None: absent or deleted).
    #[error("version conflict in operation {op}: expected version {expected}, found {actual:?}")]
    VersionConflict {
        op: usize,
        expected: u64,
        actual: Option<u64>,
    },
    /// A uniqueness rule was broken (e.g. the same id created twice in one transaction).
    #[error("duplicate: {0}")]
    Duplicate(String),
    /// The request to the store is malformed (a foreign cursor, an empty id). Safe to show.
    #[error("invalid: {0}")]
    Invalid(String),
    /// Retryable: the database is down, busy or the pool is exhausted.
    #[error("storage unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A bug or an unexpected database state; keeps the source for the log.
    #[error("internal storage error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Wraps any error as `Internal`.
    pub fn internal(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StoreError::Internal(error.into())
    }

    /// Wraps any error as `Unavailable`.
    pub fn unavailable(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StoreError::Unavailable(error.into())
    }
}
