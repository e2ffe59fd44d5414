//! The one classifier that turns tokio-postgres and pool errors into [`StoreError`], and the
//! crate-internal error type that lets `?` carry every kind through the backend's functions.

use deadpool_postgres::PoolError;
use store::StoreError;

/// A failure inside this crate: already classified, so the public API only unwraps it.
///
/// Exists because `From<tokio_postgres::Error> for StoreError` cannot be written here (both are
/// foreign); with this type `?` works on driver, pool, serde_json and store errors alike.
#[derive(Debug)]
pub(crate) struct Fault(pub(crate) StoreError);

pub(crate) type Result<T, E = Fault> = std::result::Result<T, E>;

/// A driver or pool failure before classification: the input of [`classify`].
#[derive(Debug)]
pub(crate) enum DriverError {
    Postgres(tokio_postgres::Error),
    Pool(PoolError),
}

impl From<tokio_postgres::Error> for Fault {
    fn from(error: tokio_postgres::Error) -> Self {
        Fault(classify(DriverError::Postgres(error)))
    }
}

impl From<PoolError> for Fault {
    fn from(error: PoolError) -> Self {
        Fault(classify(DriverError::Pool(error)))
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

/// Wraps a JSON (de)serialisation failure: the body came from us or from `serde_json::Value`, so a
/// failure is a bug.
impl From<serde_json::Error> for Fault {
    fn from(error: serde_json::Error) -> Self {
        Fault(StoreError::internal(error))
    }
}

/// Maps a driver or pool error to what the caller should do about it:
///
/// | Source | `StoreError` |
/// |---|---|
/// | pool: wait/create/recycle timeout, pool closed | `Unavailable` |
/// | SQLSTATE class `08` (connection exception), `53` (insufficient resources, e.g. too many connections) | `Unavailable` |
/// | `40001` serialization failure, `40P01` deadlock detected | `Unavailable` (retry the whole call) |
/// | `57P01`/`57P02`/`57P03` (server shutting down or starting), `57014` (statement timeout) | `Unavailable` |
/// | no SQLSTATE, but an IO error or a closed connection (connection refused, reset, connect timeout) | `Unavailable` |
/// | `23505` unique violation | `Duplicate` (names the constraint, never the values) |
/// | anything else (SQL errors, type mismatches, pool misconfiguration) | `Internal` |
pub(crate) fn classify(error: DriverError) -> StoreError {
    let error = match error {
        DriverError::Pool(PoolError::Backend(error)) => error,
        DriverError::Pool(error @ (PoolError::Timeout(_) | PoolError::Closed)) => {
            return StoreError::unavailable(error);
        }
        DriverError::Pool(error) => return StoreError::internal(error),
        DriverError::Postgres(error) => error,
    };
    if let Some(state) = error.code() {
        let code = state.code();
        return if code == "23505" {
            let constraint = error
                .as_db_error()
                .and_then(|db| db.constraint())
                .unwrap_or("unknown")
                .to_owned();
            StoreError::Duplicate(format!("unique constraint {constraint} violated"))
        } else if code.starts_with("08")
            || code.starts_with("53")
            || matches!(
                code,
                "40001" | "40P01" | "57P01" | "57P02" | "57P03" | "57014"
            )
        {
            StoreError::unavailable(error)
        } else {
            StoreError::internal(error)
        };
    }
    let io_source = std::error::Error::source(&error)
        .is_some_and(|source| source.downcast_ref::<std::io::Error>().is_some());
    if error.is_closed() || io_source {
        StoreError::unavailable(error)
    } else {
        StoreError::internal(error)
    }
}

/// Whether an already classified error is a transaction conflict (`40001` or `40P01`) that is
/// worth retrying at once, inside the same `write` call.
pub(crate) fn is_transaction_conflict(error: &StoreError) -> bool {
    let StoreError::Unavailable(source) = error else {
        return false;
    };
    source
        .downcast_ref::<tokio_postgres::Error>()
        .and_then(tokio_postgres::Error::code)
        .is_some_and(|state| matches!(state.code(), "40001" | "40P01"))
}

/// Shorthand for an `Invalid` fault.
pub(crate) fn invalid(message: impl Into<String>) -> Fault {
    Fault(StoreError::Invalid(message.into()))
}

#[cfg(test)]
mod tests;
