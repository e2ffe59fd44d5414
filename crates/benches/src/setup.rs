//! The system under test, built the way the `tsunagu` binary builds it: a store (default options,
//! wall clock) and an [`App`] over it. The store is wrapped in [`TimedStore`], which times every
//! call the app makes, so that a benchmark can say how much of a use case is spent in the store and
//! how much above it.
//!
//! The store is chosen by [`Database`] (the benchmarks' `--database` option): SQLite in a fresh
//! temporary directory (the default), or PostgreSQL in a fresh database created on an existing
//! server through an admin URL, with a pool as large as the benchmark's concurrency, and dropped
//! when the [`System`] is dropped. The URL (it may carry a password) is never printed.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use app::{App, Settings};
use serde_json::{Value, json};
use store::{
    HistoryPage, HistoryQuery, SearchPage, SearchQuery, StoreError, StoredResource, SystemClock,
    WriteOp, WriteOutcome,
};
use store_postgres::{PostgresOptions, PostgresStore};
use store_sqlite::{SqliteOptions, SqliteStore};
use tempfile::TempDir;

/// Where the store lives: `sqlite` or a `postgres://` URL (the `--database` option).
#[derive(Clone, Default)]
pub enum Database {
    /// A SQLite file in a fresh temporary directory.
    #[default]
    Sqlite,
    /// A fresh database on the PostgreSQL server of this admin URL (its user may create
    /// databases); the database named in the URL is only used to connect.
    Postgres(AdminUrl),
}

/// A `postgres://` URL, already checked to parse. `Debug` hides it: it may carry a password.
#[derive(Clone)]
pub struct AdminUrl(String);

impl std::str::FromStr for Database {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "sqlite" {
            return Ok(Database::Sqlite);
        }
        if !(text.starts_with("postgres://") || text.starts_with("postgresql://")) {
            return Err("expected `sqlite` or a postgres:// URL".to_owned());
        }
        // The parse error could echo the URL, password included: say only that it is malformed.
        text.parse::<tokio_postgres::Config>()
            .map_err(|_| "the PostgreSQL URL is malformed".to_owned())?;
        Ok(Database::Postgres(AdminUrl(text.to_owned())))
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite => f.write_str("Sqlite"),
            Database::Postgres(_) => f.write_str("Postgres(<URL hidden>)"),
        }
    }
}

/// What the store is, for the printed tables and the JSON results.
#[derive(Debug, Clone)]
pub struct Backend {
    /// `sqlite` or `postgres`.
    pub kind: &'static str,
    /// For titles: `SQLite` or `PostgreSQL 15.8`.
    pub label: String,
    /// The database created for this run (PostgreSQL).
    pub database: Option<String>,
    /// Most pooled connections (PostgreSQL).
    pub pool_connections: Option<usize>,
    /// Whether the PostgreSQL server runs on this machine (its CPU is then reported apart).
    pub server_on_this_machine: bool,
}

impl Backend {
    /// One line for the start of a report.
    pub fn describe(&self) -> String {
        match (&self.database, self.pool_connections) {
            (Some(database), Some(pool)) => format!(
                "{}{}, database {database} (created for this run, dropped at its end), pool of {pool} connections",
                self.label,
                if self.server_on_this_machine {
                    " on this machine"
                } else {
                    " on another machine"
                },
            ),
            _ => format!("{} in a temporary directory", self.label),
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "kind": self.kind,
            "label": self.label,
            "database": self.database,
            "pool_connections": self.pool_connections,
            "server_on_this_machine": self.server_on_this_machine,
        })
    }
}

/// A store and the app over it. Dropping it removes the SQLite directory, or drops the PostgreSQL
/// database.
pub struct System {
    pub app: App,
    /// Time spent inside the store, by kind of call.
    pub store_time: Arc<StoreTimes>,
    /// What the store is, for reports.
    pub backend: Backend,
    storage: Storage,
}

/// Where the data lives, removed on drop.
enum Storage {
    Sqlite(TempDir),
    Postgres(ScratchDatabase),
}

impl System {
    /// Creates the store: for SQLite in a new temporary directory under `parent` (the system's
    /// temp dir when `None`); for PostgreSQL in a new database whose pool holds up to
    /// `connections` connections (the most store calls the benchmark has in flight at once).
    ///
    /// # Errors
    /// When the directory, the database or the store cannot be created.
    pub async fn open(
        database: &Database,
        parent: Option<&Path>,
        connections: usize,
    ) -> anyhow::Result<System> {
        let (store, backend, storage): (Arc<dyn store::Store>, _, _) = match database {
            Database::Sqlite => {
                let directory = match parent {
                    Some(parent) => TempDir::with_prefix_in("tsunagu-bench-", parent),
                    None => TempDir::with_prefix("tsunagu-bench-"),
                }
                .context("cannot create the benchmark directory")?;
                let file = directory.path().join("bench.sqlite");
                let sqlite =
                    SqliteStore::open(&file, SqliteOptions::default(), Arc::new(SystemClock))
                        .context("cannot open the SQLite store")?;
                let backend = Backend {
                    kind: "sqlite",
                    label: "SQLite".to_owned(),
                    database: None,
                    pool_connections: None,
                    server_on_this_machine: true,
                };
                (Arc::new(sqlite), backend, Storage::Sqlite(directory))
            }
            Database::Postgres(admin_url) => {
                let mut scratch = ScratchDatabase::create(admin_url).await?;
                let options = PostgresOptions {
                    max_connections: connections.max(1),
                    ..PostgresOptions::default()
                };
                let postgres = Arc::new(
                    PostgresStore::connect(&scratch.url, options, Arc::new(SystemClock))
                        .await
                        .context("cannot open the PostgreSQL store")?,
                );
                let backend = Backend {
                    kind: "postgres",
                    label: format!("PostgreSQL {}", scratch.server_version),
                    database: Some(scratch.name.clone()),
                    pool_connections: Some(connections.max(1)),
                    server_on_this_machine: scratch.postmaster.is_some(),
                };
                if let Some(postmaster) = scratch.postmaster {
                    crate::cpu::set_database_server(postmaster);
                }
                scratch.store = Some(Arc::clone(&postgres));
                (postgres, backend, Storage::Postgres(scratch))
            }
        };
        let store_time = Arc::new(StoreTimes::default());
        let timed = TimedStore {
            inner: store,
            times: Arc::clone(&store_time),
        };
        let app = App::new(Arc::new(timed), Settings::default());
        Ok(System {
            app,
            store_time,
            backend,
            storage,
        })
    }

    /// Brings the database to the state a running service would be in after a load: on
    /// PostgreSQL, `ANALYZE` (autovacuum would do it within minutes; a benchmark cannot wait), so
    /// that the planner plans with the loaded tables' statistics. Nothing on SQLite.
    ///
    /// # Errors
    /// When PostgreSQL cannot be reached.
    pub async fn settle(&self) -> anyhow::Result<()> {
        if let Storage::Postgres(scratch) = &self.storage {
            let (client, connection) = tokio_postgres::connect(&scratch.url, tokio_postgres::NoTls)
                .await
                .context("cannot connect to analyse the benchmark database")?;
            let driver = tokio::spawn(connection);
            client
                .batch_execute("ANALYZE")
                .await
                .context("cannot analyse the benchmark database")?;
            drop(client);
            let _ = driver.await;
        }
        Ok(())
    }

    /// Bytes the database takes: the SQLite file and its WAL; PostgreSQL's `pg_database_size`
    /// (the database's relations; the server's WAL is shared and not counted).
    ///
    /// # Errors
    /// When PostgreSQL cannot be asked.
    pub async fn database_bytes(&self) -> anyhow::Result<u64> {
        match &self.storage {
            Storage::Sqlite(directory) => Ok(std::fs::read_dir(directory.path())
                .into_iter()
                .flatten()
                .filter_map(|entry| entry.ok()?.metadata().ok())
                .map(|metadata| metadata.len())
                .sum()),
            Storage::Postgres(scratch) => {
                let client = AdminClient::connect(&scratch.admin_url).await?;
                let row = client
                    .client
                    .query_one("SELECT pg_database_size($1)", &[&scratch.name])
                    .await
                    .context("cannot read the database size")?;
                Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or_default())
            }
        }
    }
}

/// A database created for one run on the server of an admin URL, dropped (connections and all)
/// when this value is dropped.
struct ScratchDatabase {
    admin_url: AdminUrl,
    name: String,
    /// The URL of the new database.
    url: String,
    server_version: String,
    /// The postmaster's pid when the server runs on this machine.
    postmaster: Option<u32>,
    /// The store over it, closed before the database is dropped.
    store: Option<Arc<PostgresStore>>,
}

impl ScratchDatabase {
    async fn create(admin_url: &AdminUrl) -> anyhow::Result<ScratchDatabase> {
        static CREATED: AtomicU64 = AtomicU64::new(0);
        let admin = AdminClient::connect(admin_url).await?;
        let name = match CREATED.fetch_add(1, Ordering::Relaxed) {
            0 => format!("tsunagu_bench_{}", std::process::id()),
            n => format!("tsunagu_bench_{}_{n}", std::process::id()),
        };
        let server_version: String = admin
            .client
            .query_one("SHOW server_version", &[])
            .await
            .context("cannot ask the server's version")?
            .get(0);
        let backend_pid: i32 = admin
            .client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .context("cannot ask the server's process id")?
            .get(0);
        let postmaster = local_postmaster(&admin_url.0, backend_pid);
        admin
            .client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .with_context(|| {
                format!("cannot create database {name} (may the --database user create databases?)")
            })?;
        Ok(ScratchDatabase {
            url: database_url(&admin_url.0, &name)?,
            admin_url: admin_url.clone(),
            name,
            server_version: server_version
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned(),
            postmaster,
            store: None,
        })
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        if let Some(store) = &self.store {
            store.close();
        }
        // Drop may run inside a runtime, which cannot block on itself: drop the database from a
        // thread with its own small runtime.
        let admin_url = self.admin_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let dropped = std::thread::spawn(move || -> anyhow::Result<()> {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(async {
                    let admin = AdminClient::connect(&admin_url).await?;
                    admin.client.batch_execute(&sql).await?;
                    Ok(())
                })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("could not drop database {}: {error:#}", self.name),
            Err(_) => eprintln!("could not drop database {}", self.name),
        }
    }
}

/// A direct (unpooled) connection to the admin URL, its driver task aborted on drop.
struct AdminClient {
    client: tokio_postgres::Client,
    driver: tokio::task::JoinHandle<()>,
}

impl AdminClient {
    async fn connect(url: &AdminUrl) -> anyhow::Result<AdminClient> {
        // The error names the cause (refused, authentication), never the URL.
        let (client, connection) = tokio_postgres::connect(&url.0, tokio_postgres::NoTls)
            .await
            .context("cannot connect to the --database server")?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(AdminClient { client, driver })
    }
}

impl Drop for AdminClient {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// `admin_url` with its database replaced by `name` (query parameters kept).
///
/// # Errors
/// When `admin_url` is not a `postgres://` or `postgresql://` URL.
pub fn database_url(admin_url: &str, name: &str) -> anyhow::Result<String> {
    let (scheme, rest) = admin_url
        .split_once("://")
        .filter(|(scheme, _)| matches!(*scheme, "postgres" | "postgresql"))
        .ok_or_else(|| anyhow!("not a postgres:// URL"))?;
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    let authority = before_query.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        bail!("the PostgreSQL URL names no host");
    }
    Ok(match query {
        Some(query) => format!("{scheme}://{authority}/{name}?{query}"),
        None => format!("{scheme}://{authority}/{name}"),
    })
}

/// The pid of the postmaster of a backend process, when the server of `url` runs on this machine
/// (a loopback or Unix-socket host, and a `postgres` process with that pid here).
fn local_postmaster(url: &str, backend_pid: i32) -> Option<u32> {
    let config: tokio_postgres::Config = url.parse().ok()?;
    let local = config.get_hosts().iter().all(|host| match host {
        tokio_postgres::config::Host::Tcp(name) => {
            matches!(name.as_str(), "localhost" | "127.0.0.1" | "::1")
        }
        #[cfg(unix)]
        tokio_postgres::config::Host::Unix(_) => true,
    });
    if !local {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{backend_pid}/stat")).ok()?;
    if !stat.contains("(postgres)") {
        return None;
    }
    crate::cpu::parent_pid(&stat)
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

    async fn search_latest(&self, query: &SearchQuery) -> Result<SearchPage, StoreError> {
        let started = Instant::now();
        let result = self.inner.search_latest(query).await;
        self.times.search.add(started);
        result
    }

    async fn exists(&self, query: &SearchQuery) -> Result<bool, StoreError> {
        let started = Instant::now();
        let result = self.inner.exists(query).await;
        self.times.search.add(started);
        result
    }

    async fn write_generation(&self, resource_type: &str) -> Result<Option<u64>, StoreError> {
        let started = Instant::now();
        let result = self.inner.write_generation(resource_type).await;
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

#[cfg(test)]
mod tests;
