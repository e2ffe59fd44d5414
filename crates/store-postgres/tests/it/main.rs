//! Integration tests of the PostgreSQL backend: the shared conformance suite, then behaviour specific
//! to PostgreSQL (migrations, refusing a newer schema, an unreachable server, concurrency across
//! pools). Every test gets a fresh, uniquely named database, dropped afterwards.
//!
//! They need a server: `TEST_POSTGRES_URL` names a database whose user may create databases
//! (`scripts/with-postgres.sh cargo test --workspace` starts a throwaway cluster and sets it). Without
//! it, the database tests print a loud SKIPPED notice and pass locally, but fail when `CI` is set, so
//! the suite never passes vacuously in CI.

mod bulk;
mod postgres;
mod replica;
mod sharded;

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use store::Store;
use store_postgres::{PostgresOptions, PostgresStore};

/// The admin URL from `TEST_POSTGRES_URL`, or None (after a loud notice) when it is unset locally.
///
/// # Panics
/// When it is unset and `CI` is set.
pub fn test_url(test: &str) -> Option<String> {
    store::conformance::prerequisite(
        store::conformance::env_value("TEST_POSTGRES_URL"),
        "TEST_POSTGRES_URL is not set",
        &format!("store-postgres {test}"),
        "Run `scripts/with-postgres.sh cargo test -p store-postgres` to test PostgreSQL.",
    )
}

/// A freshly created database, dropped (connections and all) when this value is dropped.
pub struct TestDatabase {
    admin_url: String,
    name: String,
    /// The URL of the new database.
    pub url: String,
}

impl TestDatabase {
    /// Creates a uniquely named, empty database on the server of `admin_url`.
    pub async fn create(admin_url: &str) -> TestDatabase {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.subsec_nanos())
            .unwrap_or_default();
        let name = format!(
            "tsunagu_test_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        admin_execute(admin_url, &format!("CREATE DATABASE {name}")).await;
        let (base, _) = admin_url
            .rsplit_once('/')
            .expect("TEST_POSTGRES_URL ends with /DATABASE");
        TestDatabase {
            admin_url: admin_url.to_owned(),
            url: format!("{base}/{name}"),
            name,
        }
    }

    /// Connects a store with default options to this database (migrating it).
    pub async fn store(&self) -> PostgresStore {
        PostgresStore::connect(
            &self.url,
            PostgresOptions::default(),
            Arc::new(store::SystemClock),
        )
        .await
        .expect("connect store")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs inside the tests' runtime, which cannot block on itself: drop the database from
        // a thread with its own small runtime.
        let admin_url = self.admin_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(admin_execute(&admin_url, &sql));
        })
        .join();
        if dropped.is_err() {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

/// Runs one statement on a direct (unpooled) connection to `url`.
pub async fn admin_execute(url: &str, sql: &str) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to TEST_POSTGRES_URL");
    let driver = tokio::spawn(connection);
    client.batch_execute(sql).await.expect(sql);
    drop(client);
    let _ = driver.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let Some(admin_url) = test_url("conformance") else {
        return;
    };
    // The databases must outlive their stores; they are dropped when the test ends, pass or fail.
    let databases = Arc::new(std::sync::Mutex::new(Vec::new()));
    store::conformance::run_all(|| {
        let databases = Arc::clone(&databases);
        let admin_url = admin_url.clone();
        async move {
            let database = TestDatabase::create(&admin_url).await;
            let store = database.store().await;
            databases.lock().expect("lock").push(database);
            Arc::new(store) as Arc<dyn Store>
        }
    })
    .await;
    // Not captured by the harness, so the count shows in every run's output.
    let _ = writeln!(
        std::io::stderr(),
        "store-postgres passed all {} conformance scenarios",
        store::conformance::scenario_names().len()
    );
}

/// Removes every resource from the store at `url` (keeping its schema and interned parameters),
/// for suites that reuse one database across scenarios.
pub async fn empty_store(url: &str) {
    let tables: Vec<&str> = store_postgres::shard::DISTRIBUTED_TABLES
        .iter()
        .map(|(table, _)| *table)
        .collect();
    admin_execute(
        url,
        &format!("TRUNCATE resource, {} RESTART IDENTITY", tables.join(", ")),
    )
    .await;
}
