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
    SearchPage, StoredResource, WriteOp, WriteOutcome,
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
