//! The one classifier that turns SQLite errors into [`StoreError`], and the crate-internal error
//! type that lets `?` carry both kinds through the backend's functions.

use rusqlite::ErrorCode;
use rusqlite::ffi;
use store::StoreError;

/// A failure inside this crate: already classified, so the public API only unwraps it.
///
/// Exists because `From<rusqlite::Error> for StoreError` cannot be written here (both are foreign);
/// with this type `?` works on rusqlite, serde_json and store errors alike.
#[derive(Debug)]
pub(crate) struct Fault(pub(crate) StoreError);

pub(crate) type Result<T, E = Fault> = std::result::Result<T, E>;

impl From<rusqlite::Error> for Fault {
    fn from(error: rusqlite::Error) -> Self {
        Fault(classify(error))
    }
}

impl From<StoreError> for Fault {
    fn from(error: StoreError) -> Self {
        Fault(error)
    }
}

impl From<Fault> for StoreError {
    fn from(fault: Fault) -> Self {
        fault.0
    }
}

/// Maps a rusqlite error to what the caller should do about it:
///
/// | SQLite | `StoreError` |
/// |---|---|
/// | `BUSY`, `LOCKED`, `CANTOPEN`, `IOERR`, `FULL`, `NOMEM`, `PROTOCOL`, `PERM`, `READONLY`, `INTERRUPT` | `Unavailable` (retryable, or an operator problem) |
/// | `CONSTRAINT_UNIQUE`, `CONSTRAINT_PRIMARYKEY` | `Duplicate` |
/// | anything else (SQL errors, type mismatches, corruption) | `Internal` |
pub(crate) fn classify(error: rusqlite::Error) -> StoreError {
    let rusqlite::Error::SqliteFailure(failure, _) = &error else {
        return StoreError::internal(error);
    };
    match failure.code {
        ErrorCode::DatabaseBusy
        | ErrorCode::DatabaseLocked
        | ErrorCode::CannotOpen
        | ErrorCode::SystemIoFailure
        | ErrorCode::DiskFull
        | ErrorCode::OutOfMemory
        | ErrorCode::FileLockingProtocolFailed
        | ErrorCode::PermissionDenied
        | ErrorCode::ReadOnly
        | ErrorCode::OperationInterrupted => StoreError::unavailable(error),
        ErrorCode::ConstraintViolation
            if matches!(
                failure.extended_code,
                ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            ) =>
        {
            StoreError::Duplicate(error.to_string())
        }
        _ => StoreError::internal(error),
    }
}

/// Wraps a JSON (de)serialisation failure: the body came from us or from `serde_json::Value`, so a
/// failure is a bug.
impl From<serde_json::Error> for Fault {
    fn from(error: serde_json::Error) -> Self {
        Fault(StoreError::internal(error))
    }
}

/// Shorthand for an `Invalid` fault.
pub(crate) fn invalid(message: impl Into<String>) -> Fault {
    Fault(StoreError::Invalid(message.into()))
}

/// A copy of `error` (`StoreError` is not `Clone`: sources are kept as their message), for each
/// job of a failed batch, or each use of a failed template.
pub(crate) fn same_error(error: &StoreError) -> StoreError {
    match error {
        StoreError::VersionConflict {
            op,
            expected,
            actual,
        } => StoreError::VersionConflict {
            op: *op,
            expected: *expected,
            actual: *actual,
        },
        StoreError::Duplicate(message) => StoreError::Duplicate(message.clone()),
        StoreError::Invalid(message) => StoreError::Invalid(message.clone()),
        StoreError::Unavailable(source) => StoreError::unavailable(source.to_string()),
        StoreError::Internal(source) => StoreError::internal(source.to_string()),
    }
}
