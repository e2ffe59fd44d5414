//! The system under test, built the way the `tsunagu` binary builds it: a SQLite store (default
//! options, wall clock) in a fresh directory and an [`App`] over it. The store is wrapped in
//! [`TimedStore`], which times every call the app makes, so that a benchmark can say how much of a
//! use case is spent in the store and how much above it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use app::{App, Settings};
use store::{
    HistoryPage, HistoryQuery, SearchPage, SearchQuery, StoreError, StoredResource, SystemClock,
    WriteOp, WriteOutcome,
};
use store_sqlite::{SqliteOptions, SqliteStore};
use tempfile::TempDir;

/// A store in a temporary directory (removed on drop) and the app over it.
pub struct System {
    pub app: App,
    /// Time spent inside the store, by kind of call.
    pub store_time: Arc<StoreTimes>,
    /// The database file.
    pub database: PathBuf,
    directory: TempDir,
}

impl System {
    /// Creates the store in a new temporary directory under `parent` (the system's temp dir when
    /// `None`).
    ///
    /// # Errors
    /// When the directory or the store cannot be created.
    pub fn open(parent: Option<&Path>) -> anyhow::Result<System> {
        let directory = match parent {
            Some(parent) => TempDir::with_prefix_in("tsunagu-bench-", parent),
            None => TempDir::with_prefix("tsunagu-bench-"),
        }
        .context("cannot create the benchmark directory")?;
        let database = directory.path().join("bench.sqlite");
        let sqlite = SqliteStore::open(&database, SqliteOptions::default(), Arc::new(SystemClock))
            .context("cannot open the SQLite store")?;
        let store_time = Arc::new(StoreTimes::default());
        let timed = TimedStore {
            inner: Arc::new(sqlite),
            times: Arc::clone(&store_time),
        };
        let app = App::new(Arc::new(timed), Settings::default());
        Ok(System {
            app,
            store_time,
            database,
            directory,
        })
    }

    /// Bytes on disk of the database and its WAL.
    pub fn disk_bytes(&self) -> u64 {
        std::fs::read_dir(self.directory.path())
            .into_iter()
            .flatten()
            .filter_map(|entry| entry.ok()?.metadata().ok())
            .map(|metadata| metadata.len())
            .sum()
    }
}

/// Accumulated time and call counts of the store calls, per kind. Under concurrency the times
/// overlap (and include queueing for the writer), so they are sums of latencies, not wall time.
#[derive(Debug, Default)]
pub struct StoreTimes {
    pub write: CallTime,
    pub read: CallTime,
    pub search: CallTime,
    pub other: CallTime,
}

impl StoreTimes {
    /// Forgets everything counted so far.
    pub fn reset(&self) {
        for call in [&self.write, &self.read, &self.search, &self.other] {
            call.reset();
        }
    }
}

/// Calls and total nanoseconds of one kind of store call.
#[derive(Debug, Default)]
pub struct CallTime {
    calls: AtomicU64,
    nanos: AtomicU64,
}

impl CallTime {
    /// Number of calls since the last reset.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Total time inside those calls.
    pub fn total(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::Relaxed))
    }

    fn reset(&self) {
        self.calls.store(0, Ordering::Relaxed);
        self.nanos.store(0, Ordering::Relaxed);
    }

    fn add(&self, started: Instant) {
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// A [`store::Store`] that forwards every call and times it.
struct TimedStore {
    inner: Arc<dyn store::Store>,
    times: Arc<StoreTimes>,
}

#[async_trait::async_trait]
impl store::Store for TimedStore {
    async fn read(
        &self,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<StoredResource>, StoreError> {
        let started = Instant::now();
        let result = self.inner.read(resource_type, id).await;
        self.times.read.add(started);
        result
    }

    async fn vread(
        &self,
        resource_type: &str,
        id: &str,
        version: u64,
    ) -> Result<Option<StoredResource>, StoreError> {
        let started = Instant::now();
        let result = self.inner.vread(resource_type, id, version).await;
        self.times.read.add(started);
        result
    }

    async fn write(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteOutcome>, StoreError> {
        let started = Instant::now();
        let result = self.inner.write(ops).await;
        self.times.write.add(started);
        result
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchPage, StoreError> {
        let started = Instant::now();
        let result = self.inner.search(query).await;
        self.times.search.add(started);
        result
    }

    async fn history(&self, query: &HistoryQuery) -> Result<HistoryPage, StoreError> {
        let started = Instant::now();
        let result = self.inner.history(query).await;
        self.times.other.add(started);
        result
    }

    async fn scan(
        &self,
        resource_type: &str,
        after: Option<i64>,
        limit: usize,
    ) -> Result<(Vec<StoredResource>, Option<i64>), StoreError> {
        let started = Instant::now();
        let result = self.inner.scan(resource_type, after, limit).await;
        self.times.other.add(started);
        result
    }

    async fn resource_types(&self) -> Result<Vec<String>, StoreError> {
        let started = Instant::now();
        let result = self.inner.resource_types().await;
        self.times.other.add(started);
        result
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let started = Instant::now();
        let result = self.inner.ping().await;
        self.times.other.add(started);
        result
    }
}
