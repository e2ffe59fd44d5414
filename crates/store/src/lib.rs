//! Storage contract of tsunagu: the record types, the search-index entries extracted at write time,
//! the search query model, and the [`Store`] trait that every backend implements.
//!
//! This crate depends on no database driver. Backends (`store-sqlite`, `store-postgres`) depend
//! on it and nothing above it; only `app` calls it. Every trait method is one transaction.
//!
//! The types here are deliberately FHIR-agnostic where they can be: a resource is a type name, an id,
//! a version and its JSON; search conditions arrive already parsed and typed (the `search` crate does
//! the parsing against the official SearchParameter definitions).

mod error;
mod index;
mod query;
mod record;
mod time;

#[cfg(feature = "conformance")]
pub mod conformance;

use async_trait::async_trait;

pub use crate::error::StoreError;
pub use crate::index::{IndexEntry, IndexValue};
pub use crate::query::{
    Condition, DateBound, Include, PageCursor, ParamKind, ParamRef, Prefix, SearchQuery, SortKey,
    SortParam, StringMode, TokenSystem, TotalMode, UriMode, ValueTest,
};
pub use crate::record::{
    HistoryEntry, HistoryMethod, HistoryPage, HistoryQuery, HistoryScope, ResourceWrite,
    SearchPage, StampTemplate, StoredResource, WriteOp, WriteOutcome,
};
pub use crate::time::{Clock, FixedClock, SystemClock, Timestamp};

/// A storage backend. One method call is one transaction; backends own their connections.
///
/// Implementations must be safe to share (`Arc<dyn Store>`) between many concurrent requests.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The current version of a resource, including a deleted marker (so callers can answer 410).
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached; `Internal` on a bug.
    async fn read(
        &self,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<StoredResource>, StoreError>;

    /// One specific version of a resource (deleted versions come back with `deleted = true`).
    ///
    /// # Errors
    /// `Unavailable`, `Internal`.
    async fn vread(
        &self,
        resource_type: &str,
        id: &str,
        version: u64,
    ) -> Result<Option<StoredResource>, StoreError>;

    /// Applies all operations atomically, in order: either every one commits or none does.
    /// A single create/update/delete is a one-element call. Backends may group several
    /// concurrent calls into one physical commit, but each call stays all-or-nothing.
    ///
    /// Versions start at 1 and grow by one per write of the same resource (deletes included).
    /// The store stamps `meta.versionId` and `meta.lastUpdated` into each written body.
    ///
    /// # Errors
    /// `VersionConflict` when an `if_match` does not hold (with the index of the failing operation),
    /// `Invalid` when an operation is malformed (e.g. an empty id), `Unavailable`, `Internal`.
    async fn write(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteOutcome>, StoreError>;

    /// Creates many new resources in one transaction: the initial load of a large data set, which
    /// backends may write faster than [`Store::write`] (PostgreSQL uses `COPY`).
    ///
    /// All or nothing, like `write`. Every resource must be new: no resource with its type and id
    /// exists, live *or deleted*, and no two writes of the call share a type and id. Each is stored
    /// exactly as a [`WriteOp::Create`] without condition would store it: version 1, the body stamped
    /// by [`ResourceWrite::stamp`], the same index and compartment rows, a `Create` in history, so
    /// reads, searches, history and later updates cannot tell the two apart. The stored resources
    /// come back in the order of `writes`, which is also their storage order (`scan`).
    ///
    /// The default implementation checks that each resource is absent (one `read` each), then
    /// `write`s plain creates. Unlike a backend's own implementation, its check runs before the write
    /// transaction: a resource created and deleted by someone else in between is re-created at the
    /// next version instead of being refused.
    ///
    /// # Errors
    /// `Duplicate` when a resource exists or two writes share a type and id (nothing is written);
    /// `Invalid` for a malformed write (e.g. an empty id); `Unavailable`, `Internal`.
    async fn bulk_create(
        &self,
        writes: Vec<ResourceWrite>,
    ) -> Result<Vec<StoredResource>, StoreError> {
        check_bulk_unique(&writes)?;
        for write in &writes {
            if self.read(&write.resource_type, &write.id).await?.is_some() {
                return Err(bulk_duplicate(&write.resource_type));
            }
        }
        let ops = writes
            .into_iter()
            .map(|write| WriteOp::Create {
                write,
                if_none_exist: None,
            })
            .collect();
        self.write(ops)
            .await?
            .into_iter()
            .map(|outcome| match outcome {
                WriteOutcome::Created(resource) if resource.version == 1 => Ok(resource),
                _ => Err(StoreError::internal(
                    "a bulk create wrote something other than a new resource",
                )),
            })
            .collect()
    }

    /// Runs a search: the matching page, resources pulled in by `_include`/`_revinclude`,
    /// the total if asked for, and keyset cursors for the next and previous pages.
    ///
    /// # Errors
    /// `Invalid` for a cursor that this store did not issue or that does not fit the query;
    /// `Unavailable`, `Internal`.
    async fn search(&self, query: &SearchQuery) -> Result<SearchPage, StoreError>;

    /// A search whose answer decides a write (the match of a conditional update or delete, a
    /// conditional reference in a transaction): it sees every write committed before it started.
    /// A store that serves searches from replicas runs this one on its primary.
    ///
    /// # Errors
    /// As [`Store::search`].
    async fn search_latest(&self, query: &SearchQuery) -> Result<SearchPage, StoreError> {
        self.search(query).await
    }

    /// Whether some current resource matches `query`'s types, compartment and conditions (its
    /// page size, sort, cursor, includes and total are ignored), seeing every write committed
    /// before it started, as [`Store::search_latest`] does. For decisions made on every request
    /// (is there an active consent?), where a page of bodies would be thrown away.
    ///
    /// # Errors
    /// `Unavailable`, `Internal`.
    async fn exists(&self, query: &SearchQuery) -> Result<bool, StoreError> {
        let query = query.to_existence();
        Ok(!self.search_latest(&query).await?.matches.is_empty())
    }

    /// A count that moves whenever a write of a resource of `resource_type` is committed, by this
    /// process or any other: two reads that give the same number saw no such write between them.
    /// Read so that it sees every write committed before it started, as [`Store::exists`] does.
    /// What lets a caller keep something derived from resources of that type (the consent
    /// decisions) for as long as the number stays the same, at the cost of reading it.
    ///
    /// `None` when the store does not count writes of that type, or cannot read the count for
    /// less than the lookup it would save: the caller then looks again every time. The default.
    ///
    /// # Errors
    /// `Unavailable`, `Internal`.
    async fn write_generation(&self, resource_type: &str) -> Result<Option<u64>, StoreError> {
        let _ = resource_type;
        Ok(None)
    }

    /// History of one resource, one type, or the whole system, newest first, paged by cursor.
    ///
    /// # Errors
    /// `Invalid` for a foreign cursor; `Unavailable`, `Internal`.
    async fn history(&self, query: &HistoryQuery) -> Result<HistoryPage, StoreError>;

    /// Every current (not deleted) resource of one type, in storage order, for export.
    /// `after` is the opaque position returned with the previous chunk.
    ///
    /// # Errors
    /// `Unavailable`, `Internal`.
    async fn scan(
        &self,
        resource_type: &str,
        after: Option<i64>,
        limit: usize,
    ) -> Result<(Vec<StoredResource>, Option<i64>), StoreError>;

    /// Resource types that have at least one current resource.
    ///
    /// # Errors
    /// `Unavailable`, `Internal`.
    async fn resource_types(&self) -> Result<Vec<String>, StoreError>;

    /// Cheap liveness check of the underlying database, for `/readyz`.
    ///
    /// # Errors
    /// `Unavailable` when the database does not answer.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Fails with `Duplicate` when two writes of a [`Store::bulk_create`] call share a type and id.
/// Backends that implement `bulk_create` themselves call it too, so the message is the same.
///
/// # Errors
/// `Duplicate`, naming the resource type only.
pub fn check_bulk_unique(writes: &[ResourceWrite]) -> Result<(), StoreError> {
    let mut seen = std::collections::HashSet::with_capacity(writes.len());
    for write in writes {
        if !seen.insert((write.resource_type.as_str(), write.id.as_str())) {
            return Err(StoreError::Duplicate(format!(
                "two {} resources of a bulk create have the same id",
                write.resource_type
            )));
        }
    }
    Ok(())
}

/// The `Duplicate` error of a [`Store::bulk_create`] that names an existing resource. The message
/// names the type only: ids are identifiers and stay out of errors.
pub fn bulk_duplicate(resource_type: &str) -> StoreError {
    StoreError::Duplicate(format!(
        "a {resource_type} resource of a bulk create exists already (live or deleted)"
    ))
}
