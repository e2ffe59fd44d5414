//! The embedded default storage backend: [`store::Store`] on one SQLite database file.
//!
//! # Opening
//!
//! [`SqliteStore::open`] takes a path; [`SqliteStore::open_url`] takes the URL forms used in
//! configuration:
//!
//! | URL | database file |
//! |---|---|
//! | `sqlite://relative/path.db` | `relative/path.db`, relative to the working directory |
//! | `sqlite:///abs/path.db` | `/abs/path.db` |
//! | `sqlite:relative/path.db` | `relative/path.db` |
//!
//! In-memory databases (`sqlite::memory:`) are refused: the store runs one writer and several
//! reader connections, which need a shared file (use a temporary file instead). Opening creates the
//! parent directory and the file if needed, then applies the embedded migrations
//! (`migrations/NNNN_*.sql`); a database migrated by a newer binary is refused.
//!
//! # Concurrency: one writer, parallel readers
//!
//! * A single **writer thread** owns the only write connection. `write` calls are queued to it; it
//!   takes every queued call (up to [`SqliteOptions::max_batch`]) into ONE `BEGIN IMMEDIATE`
//!   transaction, each call in its own `SAVEPOINT`, so a failing call rolls back alone while the
//!   others commit. Callers get their answer only after `COMMIT` returned. This is group commit:
//!   concurrent writers share one fsync. See `writer.rs`.
//!   A call whose caller stops waiting (its future is dropped) after it was queued still runs and
//!   may commit: a write is only known to have failed when an error came back.
//! * **Readers** are a small pool of `query_only` connections used through
//!   `tokio::task::spawn_blocking`. WAL mode gives each read transaction a snapshot, and a search
//!   (page, total, includes) runs in one read transaction, so it sees one consistent state while
//!   writes go on. Reads by key (`read`, `vread`) and existence checks whose driving condition is narrow
//!   (`exists`, the consent decision of every request) run on the calling task instead, when a
//!   connection is idle: they take a few microseconds of index reads, less than the hand-off to
//!   the blocking pool and back (measured: ~50 µs less server CPU per secured read). Readers in
//!   WAL mode never wait for the writer or the (passive) checkpoints; such a read waits only for
//!   the disk when its pages are in no cache, which a store much larger than memory would make
//!   common.
//!
//! # Durability
//!
//! The database runs in WAL mode with `synchronous = FULL`: every commit fsyncs the WAL before
//! `COMMIT` returns, so a write that was acknowledged survives a crash *and* a power loss. (`NORMAL`
//! would only fsync at checkpoints, and could lose the last acknowledged writes on power loss, which
//! is not acceptable for clinical records.) The cost of FULL is one fsync per transaction; group
//! commit amortises it over every call that was waiting, so throughput under concurrency is bounded
//! by the batch size, not by the fsync latency.
//!
//! # Schema and search
//!
//! `resource` holds the current version of each resource (its `pk` is the storage order used for
//! keyset paging), `resource_version` every version for history, and one index table per value kind
//! holds the entries of current, live resources, keyed by the resource's pk and an interned id of
//! the (resource type, search parameter) pair (see `migrations/0001_resources.sql`). Searches are
//! translated to SQL with bound parameters (`search.rs`); pages are keyset-paged with opaque cursors
//! (`cursor.rs`), so they stay correct while data changes. Page sizes are capped at
//! [`MAX_PAGE_SIZE`]. Every connection plans statements without looking at bound values (SQLite's
//! query planner stability guarantee), so a search's cached statements run again without being
//! re-prepared (`connection::plan_without_bound_values`).

//!
//! # Performance
//!
//! `examples/bulk.rs` is the hand-run load test (`cargo run --release -p store-sqlite --example
//! bulk -- 1000000`): Observation-like resources with 15 index entries and a compartment each,
//! written through `write` calls of 1 000 operations, then token searches and reads by id. On the
//! project's 2-core machine (shared with other builds while measured):
//!
//! | | 100 000 resources | 1 000 000 resources |
//! |---|---|---|
//! | ingest | 12 000-14 700 /s (~16 000 per writer-thread CPU second) | 7 000-9 000 /s (~11 000 per writer-thread CPU second) |
//! | token search, 1 match, p99 | < 0.3 ms | < 0.9 ms |
//! | token search, code shared by 1/500 of resources, first page of 20, p99 | < 2 ms | < 3 ms |
//! | reads by id, 16 concurrent tasks | 40 000-60 000 /s | 42 000-62 000 /s |
//!
//! Through the whole stack (`cargo bench -p benches --bench ingest_read_search -- --resources
//! 1000000`: 50 000 Patients with 19 lab Observations each, transaction Bundles of 1 000 entries,
//! one client; 2 shared cores), after searches started driving from one selective condition and
//! checkpoints moved off the writer thread:
//!
//! | 1 000 000 resources | before | after |
//! |---|---|---|
//! | `Observation?code=loinc\|X&patient=Patient/Y`, p50 / p99, one task | 35 / 40 ms | 0.23 / 0.41 ms |
//! | `Observation?patient=Y&category=laboratory&_sort=-date` | 166 / 197 ms | 0.31 / 0.43 ms |
//! | `Observation?code=loinc\|X&_count=20` | 5.9 / 9 ms | 0.15 / 0.23 ms |
//! | transaction ingest | 3 700 /s (store write 211 µs per resource) | 4 700 /s (160 µs; writer thread 117 µs CPU) |
//!
//! The writer thread is the ingest bottleneck, and its cost per resource grows with the database
//! (deeper index b-trees, scattered inserts into the reference and compartment indexes); the
//! remaining time is SQLite b-tree work and WAL writing, not this crate's code.

mod connection;
mod cursor;
mod error;
mod migrate;
mod read;
mod search;
mod write;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use store::{
    Clock, HistoryPage, HistoryQuery, ResourceWrite, SearchPage, SearchQuery, Store, StoreError,
    StoredResource, WriteOp, WriteOutcome,
};

pub use crate::connection::ConnectionSettings;
pub use crate::migrate::SCHEMA_VERSION;
pub use crate::search::MAX_PAGE_SIZE;

use crate::connection::{Readers, Role, Tuning};
use crate::writer::Writer;

/// Tuning of a [`SqliteStore`]. `Default` suits a small server.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Number of read-only connections, i.e. reads running in parallel (at least 1).
    pub readers: usize,
    /// Most `write` calls grouped into one transaction (at least 1).
    pub max_batch: usize,
    /// `write` calls that may wait for the writer before callers wait to enqueue (backpressure).
    pub queue: usize,
    /// How long a connection waits for a lock held by another process before `Unavailable`.
    pub busy_timeout: Duration,
    /// Page cache of the write connection, in KiB.
    pub writer_cache_kib: u32,
    /// Page cache of each reader connection, in KiB.
    pub reader_cache_kib: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            readers: 4,
            max_batch: 64,
            queue: 1024,
            busy_timeout: Duration::from_secs(5),
            // The hot index pages of a 1M-resource store exceed 64 MiB; the writer re-reads
            // evicted ones from the OS cache on every transaction.
            writer_cache_kib: 256 * 1024,
            reader_cache_kib: 16 * 1024,
        }
    }
}

/// Counters of the writer, for tests and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterStats {
    /// Transactions run by the writer (one per group of calls).
    pub transactions: u64,
    /// `write` calls processed, successful or not.
    pub calls: u64,
    /// Groups run again, each call in a savepoint, after one of their calls failed.
    pub retried: u64,
}

/// The SQLite store. Cheap to share behind an `Arc<dyn Store>`; dropping it drains the write queue,
/// then closes every connection.
pub struct SqliteStore {
    path: PathBuf,
    // Field order matters on drop: the writer finishes the queued work first.
    writer: Writer,
    readers: Arc<Readers>,
    settings: ConnectionSettings,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    ///
    /// Blocking: call it at startup, or from `spawn_blocking`.
    ///
    /// # Errors
    /// `Invalid` when the database's schema is newer than this binary; `Unavailable` when the file
    /// cannot be created or opened; `Internal` for a failed migration.
    pub fn open(
        path: &Path,
        options: SqliteOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(StoreError::unavailable)?;
        }
        let mut connection = connection::open(
            path,
            Role::Writer,
            Tuning {
                busy_timeout: options.busy_timeout,
                cache_kib: options.writer_cache_kib,
            },
        )?;
        migrate::migrate(&mut connection, clock.now().0)?;
        // Cheap at open: analyses only tables whose statistics are missing or stale.
        connection
            .execute_batch("PRAGMA optimize = 0x10002")
            .map_err(error::classify)?;
        let settings = connection::settings(&connection)?;
        let readers = Readers::open(
            path,
            options.readers,
            Tuning {
                busy_timeout: options.busy_timeout,
                cache_kib: options.reader_cache_kib,
            },
        )?;
        let checkpointer = connection::open(
            path,
            Role::Checkpointer,
            Tuning {
                busy_timeout: options.busy_timeout,
                cache_kib: 2 * 1024,
            },
        )?;
        let writer = Writer::spawn(
            connection,
            checkpointer,
            clock,
            options.max_batch,
            options.queue,
        )
        .map_err(StoreError::unavailable)?;
        Ok(SqliteStore {
            path: path.to_owned(),
            writer,
            readers: Arc::new(readers),
            settings,
        })
    }

    /// Opens the database named by a `sqlite:` URL (see the crate documentation for the forms).
    ///
    /// # Errors
    /// `Invalid` for a URL that is not a file `sqlite:` URL; otherwise as [`SqliteStore::open`].
    pub fn open_url(
        url: &str,
        options: SqliteOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        let path = path_of_url(url)?;
        SqliteStore::open(&path, options, clock)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Durability and integrity settings of the write connection, as SQLite reports them.
    pub fn settings(&self) -> &ConnectionSettings {
        &self.settings
    }

    /// How many transactions and calls the writer has run so far. `calls > transactions` shows
    /// that group commit batched concurrent writes.
    pub fn stats(&self) -> WriterStats {
        WriterStats {
            transactions: self.writer.counters.transactions.load(Ordering::Relaxed),
            retried: self.writer.counters.retried.load(Ordering::Relaxed),
            calls: self.writer.counters.calls.load(Ordering::Relaxed),
        }
    }
}

/// The file path of a `sqlite:` URL.
fn path_of_url(url: &str) -> Result<PathBuf, StoreError> {
    let rest = url
        .strip_prefix("sqlite:")
        .ok_or_else(|| StoreError::Invalid(format!("not a sqlite: URL: {url}")))?;
    let path = rest.strip_prefix("//").unwrap_or(rest);
    if path.is_empty() || path == ":memory:" || path.starts_with(":memory:") {
        return Err(StoreError::Invalid(
            "in-memory SQLite databases are not supported; give a file path (sqlite://data/tsunagu.db)"
                .to_owned(),
        ));
    }
    if path.contains('?') {
        return Err(StoreError::Invalid(
            "sqlite: URLs take no query parameters; use SqliteOptions".to_owned(),
        ));
    }
    Ok(PathBuf::from(path))
}

#[async_trait]
impl Store for SqliteStore {
    async fn read(
        &self,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<StoredResource>, StoreError> {
        let (resource_type, id) = (resource_type.to_owned(), id.to_owned());
        self.readers
            .run_here(move |connection| read::read(connection, &resource_type, &id))
            .await
    }

    async fn vread(
        &self,
        resource_type: &str,
        id: &str,
        version: u64,
    ) -> Result<Option<StoredResource>, StoreError> {
        let (resource_type, id) = (resource_type.to_owned(), id.to_owned());
        self.readers
            .run_here(move |connection| read::vread(connection, &resource_type, &id, version))
            .await
    }

    async fn write(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteOutcome>, StoreError> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        self.writer.submit(ops, false).await
    }

    /// Plain creates on the writer thread, where a resource that exists, live or deleted, fails the
    /// call as `Duplicate` inside the write transaction (exact, and no read per resource).
    async fn bulk_create(
        &self,
        writes: Vec<ResourceWrite>,
    ) -> Result<Vec<StoredResource>, StoreError> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        store::check_bulk_unique(&writes)?;
        let ops = writes
            .into_iter()
            .map(|write| WriteOp::Create {
                write,
                if_none_exist: None,
            })
            .collect();
        self.writer
            .submit(ops, true)
            .await?
            .into_iter()
            .map(|outcome| match outcome {
                WriteOutcome::Created(resource) => Ok(resource),
                _ => Err(StoreError::internal(
                    "a bulk create wrote something other than a new resource",
                )),
            })
            .collect()
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchPage, StoreError> {
        let query = query.clone();
        self.readers
            .run(move |connection| {
                let transaction = connection.transaction()?;
                let page = search::search(&transaction, &query)?;
                transaction.commit()?;
                Ok(page)
            })
            .await
    }

    async fn exists(&self, query: &SearchQuery) -> Result<bool, StoreError> {
        let query = Arc::new(query.to_existence());
        let narrow = Arc::clone(&query);
        let answer = self
            .readers
            .run_here(move |connection| search::exists_if_narrow(connection, &narrow))
            .await?;
        match answer {
            Some(answer) => Ok(answer),
            None => {
                self.readers
                    .run(move |connection| search::exists(connection, &query))
                    .await
            }
        }
    }

    /// One statement on the calling task (one row of a small table): a few microseconds, against
    /// the consent search it lets the app skip.
    async fn write_generation(&self, resource_type: &str) -> Result<Option<u64>, StoreError> {
        let resource_type = resource_type.to_owned();
        self.readers
            .run_here(move |connection| read::write_generation(connection, &resource_type))
            .await
    }

    async fn history(&self, query: &HistoryQuery) -> Result<HistoryPage, StoreError> {
        let query = query.clone();
        self.readers
            .run(move |connection| {
                let transaction = connection.transaction()?;
                let page = read::history(&transaction, &query)?;
                transaction.commit()?;
                Ok(page)
            })
            .await
    }

    async fn scan(
        &self,
        resource_type: &str,
        after: Option<i64>,
        limit: usize,
    ) -> Result<(Vec<StoredResource>, Option<i64>), StoreError> {
        let resource_type = resource_type.to_owned();
        self.readers
            .run(move |connection| read::scan(connection, &resource_type, after, limit))
            .await
    }

    async fn resource_types(&self) -> Result<Vec<String>, StoreError> {
        self.readers
            .run(|connection| read::resource_types(connection))
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.readers
            .run(|connection| {
                connection.query_row("SELECT 1", [], |_| Ok(()))?;
                Ok(())
            })
            .await
    }
}

#[cfg(test)]
mod tests;
