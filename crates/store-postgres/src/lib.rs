//! The PostgreSQL storage backend: [`store::Store`] on a PostgreSQL 15+ database, through a bounded
//! pool of tokio-postgres connections.
//!
//! # Connecting
//!
//! [`PostgresStore::connect`] takes a libpq-style URL (`postgres://user:password@host:5432/db` or
//! `postgresql://...`), builds a pool of at most [`PostgresOptions::max_connections`] connections and
//! applies the embedded migrations (`migrations/NNNN_*.sql`, numbered in step with the SQLite
//! backend's) inside one transaction under an advisory lock; a database migrated by a newer binary is
//! refused. Connections are plain TCP (no TLS yet): run the database on the same host or a private
//! network.
//!
//! # Timeouts: a database that is down answers `Unavailable`, never hangs
//!
//! * [`PostgresOptions::connect_timeout`] bounds opening a connection (TCP connect and startup);
//! * [`PostgresOptions::wait_timeout`] bounds waiting for a free pooled connection;
//! * [`PostgresOptions::statement_timeout`] is the server-side `statement_timeout` of every
//!   connection;
//! * a whole call is bounded on our side too, by the statement timeout plus the connect timeout:
//!   a server that stops answering without closing the connection (a frozen process, a network
//!   cut off silently) cannot hold a request for ever. The connection of a call that timed out
//!   is closed, never reused.
//!
//! Each of them ends in `StoreError::Unavailable`, which the server turns into 503 + `Retry-After`.
//!
//! # Transactions and concurrency
//!
//! One `write` call is one `READ COMMITTED` transaction on one connection (see `write.rs` for how
//! If-Match and conditional creates stay exact under concurrency). A call that fails with a
//! deadlock or serialization failure is retried a few times from the start before it answers
//! `Unavailable`. A search or history call runs in one `REPEATABLE READ` read-only transaction, so
//! its page, total and includes come from one snapshot.
//!
//! Unlike the SQLite backend, storage order (`pk`, and history's `seq`) is assigned when a row is
//! inserted, not when its transaction commits: a page read while concurrent writes commit may miss
//! a resource that commits later with a smaller key. Paging never repeats or skips resources that
//! were committed before it started.
//!
//! # Schema and search
//!
//! `resource` holds one narrow row per resource, `resource_version` every version with its body as
//! `json` (the exact text served: key order and number spelling are kept, which `jsonb` would not),
//! and one index table per value kind holds the entries of current, live resources, keyed by the
//! resource's pk and an interned id of the (resource type, search parameter) pair. Every per-patient
//! table carries the patient key, the future distribution key (see
//! `migrations/0001_resources.sql`). Searches become the same SQL shapes as the SQLite backend's,
//! with bound parameters (`search.rs`), keyset-paged with opaque cursors (`cursor.rs`). Page sizes
//! are capped at [`MAX_PAGE_SIZE`].

mod bulk;
mod cursor;
mod error;
mod migrate;
mod read;
mod search;
pub mod shard;
mod sql;
mod write;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use store::{
    Clock, HistoryPage, HistoryQuery, SearchPage, SearchQuery, Store, StoreError, StoredResource,
    WriteOp, WriteOutcome,
};
use tokio_postgres::IsolationLevel;

pub use crate::migrate::SCHEMA_VERSION;
pub use crate::search::MAX_PAGE_SIZE;

use crate::error::{Fault, is_transaction_conflict};
use crate::write::ParamIds;

/// Tuning of a [`PostgresStore`]. `Default` suits a small server.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Most connections open at once (at least 1): calls beyond it wait for a free one.
    pub max_connections: usize,
    /// How long opening one connection may take before `Unavailable`.
    pub connect_timeout: Duration,
    /// How long a call waits for a free pooled connection before `Unavailable`.
    pub wait_timeout: Duration,
    /// The server-side `statement_timeout` of every connection.
    pub statement_timeout: Duration,
    /// How many times a `write` call is retried after a deadlock or serialization failure.
    pub write_retries: u32,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            max_connections: 16,
            connect_timeout: Duration::from_secs(5),
            wait_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
            write_retries: 3,
        }
    }
}

/// The PostgreSQL store. Cheap to share behind an `Arc<dyn Store>`.
pub struct PostgresStore {
    pool: Pool,
    /// A streaming read replica's pool, which serves searches and history when set.
    replica: Option<Pool>,
    clock: Arc<dyn Clock>,
    params: ParamIds,
    write_retries: u32,
    /// The longest a call may take: [`PostgresOptions::statement_timeout`] plus
    /// [`PostgresOptions::connect_timeout`].
    call_timeout: Duration,
}

impl std::fmt::Debug for PostgresStore {
    /// Shows the pool's state, never the URL (it may carry a password).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PostgresStore")
            .field("max_connections", &status.max_size)
            .field("open_connections", &status.size)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` and brings its schema up to date.
    ///
    /// # Errors
    /// `Invalid` for a malformed URL, or when the database's schema is newer than this binary;
    /// `Unavailable` when the database cannot be reached in time; `Internal` for a failed migration.
    pub async fn connect(
        url: &str,
        options: PostgresOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        let pool = build_pool(url, &options)?;
        let mut client = pool.get().await.map_err(Fault::from)?;
        if shard::role(&client).await? == shard::Role::Shard {
            return Err(StoreError::Invalid(
                "this database is one shard of a sharded store: connect to its coordinator"
                    .to_owned(),
            ));
        }
        migrate::migrate(&mut client, clock.now().0).await?;
        drop(client);
        Ok(PostgresStore {
            pool,
            replica: None,
            clock,
            params: ParamIds::default(),
            write_retries: options.write_retries,
            call_timeout: options.statement_timeout + options.connect_timeout,
        })
    }

    /// Serves searches and history from the read replica at `url` (a streaming standby of this
    /// store's database, same pool options); reads by id, versions, writes (and the searches
    /// inside conditional writes) stay on the primary.
    ///
    /// A search on an asynchronous standby may miss writes committed in the last moments before
    /// it (its replay lag); with `synchronous_commit = remote_apply` and the standby listed in
    /// `synchronous_standby_names`, a write is visible on it once acknowledged.
    ///
    /// # Errors
    /// `Invalid` for a malformed URL or a replica whose schema differs from this binary's;
    /// `Unavailable` when it cannot be reached.
    pub async fn with_read_replica(
        mut self,
        url: &str,
        options: &PostgresOptions,
    ) -> Result<Self, StoreError> {
        let replica = build_pool(url, options)?;
        let client = replica.get().await.map_err(Fault::from)?;
        let version: i64 = client
            .query_one(
                "SELECT coalesce(max(version), 0)::bigint FROM schema_migrations",
                &[],
            )
            .await
            .map_err(|_| {
                StoreError::Invalid("the read replica holds no tsunagu schema".to_owned())
            })?
            .get(0);
        if version != SCHEMA_VERSION {
            return Err(StoreError::Invalid(format!(
                "the read replica's schema version is {version}, this binary's {SCHEMA_VERSION}: \
                 is it a replica of this database?"
            )));
        }
        drop(client);
        self.replica = Some(replica);
        Ok(self)
    }

    /// Closes every connection; later calls answer `Unavailable`.
    pub fn close(&self) {
        self.pool.close();
        if let Some(replica) = &self.replica {
            replica.close();
        }
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.pool.get().await.map_err(Fault::from)?)
    }

    /// A connection for searches and history: the replica's when there is one.
    async fn reader(&self) -> Result<deadpool_postgres::Object, StoreError> {
        let pool = self.replica.as_ref().unwrap_or(&self.pool);
        Ok(pool.get().await.map_err(Fault::from)?)
    }

    /// Runs a call's work on `client`, bounded by the call timeout.
    ///
    /// The statement timeout is enforced by the server, so a server that stops answering (frozen,
    /// or cut off without a reset) would leave the call waiting for ever: past the call timeout
    /// the call answers `Unavailable`, and its connection, whose reply may still come, is taken
    /// out of the pool and closed rather than handed to the next caller.
    async fn bounded<T, E: Into<StoreError>>(
        &self,
        mut client: deadpool_postgres::Object,
        work: impl AsyncFnOnce(&mut deadpool_postgres::Object) -> Result<T, E>,
    ) -> Result<T, StoreError> {
        let outcome = tokio::time::timeout(self.call_timeout, work(&mut client)).await;
        match outcome {
            Ok(result) => result.map_err(Into::into),
            Err(_) => {
                drop(deadpool_postgres::Object::take(client));
                Err(StoreError::Unavailable(
                    "the database did not answer within the call timeout".into(),
                ))
            }
        }
    }
}

/// A bounded pool of connections to `url` with the options' timeouts (its errors never echo the
/// URL: it may hold a password).
fn build_pool(url: &str, options: &PostgresOptions) -> Result<Pool, StoreError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(StoreError::Invalid(
            "not a postgres:// or postgresql:// URL".to_owned(),
        ));
    }
    // The parse error would echo the URL, password included: say only that it is malformed.
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|_| StoreError::Invalid("the PostgreSQL URL is malformed".to_owned()))?;
    config.connect_timeout(options.connect_timeout);
    config.application_name("tsunagu");
    config.options(format!(
        "-c statement_timeout={}",
        options.statement_timeout.as_millis()
    ));
    let manager = Manager::from_config(
        config,
        tokio_postgres::NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(options.max_connections.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(options.wait_timeout))
        .create_timeout(Some(options.connect_timeout))
        .recycle_timeout(Some(options.connect_timeout))
        .build()
        .map_err(StoreError::internal)
}

#[async_trait]
impl Store for PostgresStore {
    async fn read(
        &self,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<StoredResource>, StoreError> {
        let client = self.client().await?;
        self.bounded(client, async |client| {
            read::read(client, resource_type, id).await
        })
        .await
    }

    async fn vread(
        &self,
        resource_type: &str,
        id: &str,
        version: u64,
    ) -> Result<Option<StoredResource>, StoreError> {
        let client = self.client().await?;
        self.bounded(client, async |client| {
            read::vread(client, resource_type, id, version).await
        })
        .await
    }

    async fn write(&self, mut ops: Vec<WriteOp>) -> Result<Vec<WriteOutcome>, StoreError> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        self.bounded(client, async |client| {
            self.params.register(client, &ops).await?;
            let mut attempt = 0;
            loop {
                let now = self.clock.now();
                let result: Result<Vec<WriteOutcome>, Fault> = async {
                    let transaction = client.transaction().await?;
                    let outcomes = write::apply(&transaction, &self.params, &mut ops, now).await?;
                    transaction.commit().await?;
                    Ok(outcomes)
                }
                .await;
                match result {
                    Err(Fault(error))
                        if attempt < self.write_retries && is_transaction_conflict(&error) =>
                    {
                        attempt += 1;
                        tracing::debug!(attempt, "retrying a write after a transaction conflict");
                    }
                    other => return other,
                }
            }
        })
        .await
    }

    async fn bulk_create(
        &self,
        writes: Vec<store::ResourceWrite>,
    ) -> Result<Vec<StoredResource>, StoreError> {
        let client = self.client().await?;
        self.bounded(client, async |client| {
            let clock = self.clock.as_ref();
            bulk::create(client, &self.params, clock, self.write_retries, writes).await
        })
        .await
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchPage, StoreError> {
        let client = self.reader().await?;
        self.bounded(client, async |client| search_on(client, query).await)
            .await
    }

    async fn search_latest(&self, query: &SearchQuery) -> Result<SearchPage, StoreError> {
        let client = self.client().await?;
        self.bounded(client, async |client| search_on(client, query).await)
            .await
    }

    async fn history(&self, query: &HistoryQuery) -> Result<HistoryPage, StoreError> {
        let client = self.reader().await?;
        self.bounded(client, async |client| {
            let transaction = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let page = read::history(&transaction, query).await?;
            transaction.commit().await?;
            Ok::<_, Fault>(page)
        })
        .await
    }

    async fn scan(
        &self,
        resource_type: &str,
        after: Option<i64>,
        limit: usize,
    ) -> Result<(Vec<StoredResource>, Option<i64>), StoreError> {
        let client = self.client().await?;
        self.bounded(client, async |client| {
            read::scan(client, resource_type, after, limit).await
        })
        .await
    }

    async fn resource_types(&self) -> Result<Vec<String>, StoreError> {
        let client = self.client().await?;
        self.bounded(client, async |client| read::resource_types(client).await)
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        self.bounded(client, async |client| {
            client.simple_query("SELECT 1").await?;
            Ok::<_, Fault>(())
        })
        .await
    }
}

/// Runs a search in one `REPEATABLE READ` read-only transaction on `client`.
async fn search_on(
    client: &mut deadpool_postgres::Object,
    query: &SearchQuery,
) -> Result<SearchPage, StoreError> {
    let transaction = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(Fault::from)?;
    let page = search::search(&transaction, query).await?;
    transaction.commit().await.map_err(Fault::from)?;
    Ok(page)
}
