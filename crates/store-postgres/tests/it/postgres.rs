//! PostgreSQL-specific behaviour: migrations, a newer schema, an unreachable or vanished server,
//! and concurrency across several pools (several servers sharing one database).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use store::{
    Condition, IndexEntry, IndexValue, ResourceWrite, SearchQuery, Store, StoreError, SystemClock,
    TokenSystem, ValueTest, WriteOp, WriteOutcome,
};
use store_postgres::{PostgresOptions, PostgresStore, SCHEMA_VERSION};
use tokio::net::{TcpListener, TcpStream};

use crate::{TestDatabase, test_url};

fn patient(id: &str, index: Vec<IndexEntry>) -> ResourceWrite {
    ResourceWrite {
        resource_type: "Patient".to_owned(),
        id: id.to_owned(),
        body: json!({ "resourceType": "Patient", "id": id }),
        index,
        compartments: vec![id.to_owned()],
    }
}

fn create(id: &str) -> WriteOp {
    WriteOp::Create {
        write: patient(id, Vec::new()),
        if_none_exist: None,
    }
}

async fn migration_rows(url: &str) -> Vec<(i64, String)> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let driver = tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT version, name FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .expect("query")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    drop(client);
    let _ = driver.await;
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_once_even_when_servers_start_together() {
    let Some(admin_url) = test_url("migrations") else {
        return;
    };
    let database = TestDatabase::create(&admin_url).await;
    // Four servers starting at once on an empty database: the advisory lock lets one migrate and the
    // others find nothing to do.
    let mut starting = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let url = database.url.clone();
        starting.spawn(async move {
            PostgresStore::connect(&url, PostgresOptions::default(), Arc::new(SystemClock)).await
        });
    }
    let mut stores = Vec::new();
    while let Some(result) = starting.join_next().await {
        stores.push(result.expect("task").expect("connect"));
    }
    stores[0].write(vec![create("p1")]).await.expect("write");
    drop(stores);

    // And once more, on the migrated database.
    let store = database.store().await;
    let rows = migration_rows(&database.url).await;
    assert_eq!(rows.len() as i64, SCHEMA_VERSION);
    assert_eq!(rows[0], (1, "resources".to_owned()));
    let read = store.read("Patient", "p1").await.expect("read");
    assert_eq!(read.map(|r| r.version), Some(1));
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let Some(admin_url) = test_url("newer schema") else {
        return;
    };
    let database = TestDatabase::create(&admin_url).await;
    drop(database.store().await);
    crate::admin_execute(
        &database.url,
        &format!(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ({}, 'future', 0)",
            SCHEMA_VERSION + 1
        ),
    )
    .await;
    let refused = PostgresStore::connect(
        &database.url,
        PostgresOptions::default(),
        Arc::new(SystemClock),
    )
    .await;
    match refused {
        Err(StoreError::Invalid(message)) => assert!(message.contains("newer"), "{message}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// Options with short timeouts, for the tests of an unreachable server.
fn impatient() -> PostgresOptions {
    PostgresOptions {
        max_connections: 2,
        connect_timeout: Duration::from_secs(2),
        wait_timeout: Duration::from_secs(2),
        ..PostgresOptions::default()
    }
}

/// A loopback port that nothing listens on.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    port
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_quickly() {
    // Needs no database: nothing listens on the port.
    let url = format!(
        "postgres://tsunagu:secret@127.0.0.1:{}/tsunagu",
        closed_port().await
    );
    let started = Instant::now();
    let result = PostgresStore::connect(&url, impatient(), Arc::new(SystemClock)).await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let message = format!("{:?}", result.err());
    assert!(
        !message.contains("secret"),
        "the password leaked: {message}"
    );

    let malformed =
        PostgresStore::connect("postgres://a:b@[::1", impatient(), Arc::new(SystemClock)).await;
    assert!(
        matches!(malformed, Err(StoreError::Invalid(_))),
        "{malformed:?}"
    );
}

/// Forwards loopback connections to `target` until the returned handle is aborted; aborting it
/// also cuts every forwarded connection, as a server going away would.
async fn proxy(target: String) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let handle = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = target.clone();
            connections.spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(&target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (port, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_goes_away_is_unavailable_quickly() {
    let Some(admin_url) = test_url("server goes away") else {
        return;
    };
    let database = TestDatabase::create(&admin_url).await;
    // postgres://user:password@HOST:PORT/db: route HOST:PORT through a proxy we can cut.
    let (prefix, rest) = database.url.split_once('@').expect("URL with credentials");
    let (host_port, path) = rest.split_once('/').expect("URL with a database");
    let (port, proxy_task) = proxy(host_port.to_owned()).await;
    let url = format!("{prefix}@127.0.0.1:{port}/{path}");
    let store = PostgresStore::connect(&url, impatient(), Arc::new(SystemClock))
        .await
        .expect("connect through the proxy");
    store.write(vec![create("p1")]).await.expect("write");

    proxy_task.abort();
    let _ = proxy_task.await;
    for _ in 0..3 {
        let started = Instant::now();
        let result = store.read("Patient", "p1").await;
        assert!(
            matches!(result, Err(StoreError::Unavailable(_))),
            "{result:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "took {:?}",
            started.elapsed()
        );
    }
    let ping = store.ping().await;
    assert!(matches!(ping, Err(StoreError::Unavailable(_))), "{ping:?}");

    store.close();
    let closed = store.read("Patient", "p1").await;
    assert!(
        matches!(closed, Err(StoreError::Unavailable(_))),
        "{closed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_if_match_updates_across_pools_one_wins() {
    let Some(admin_url) = test_url("concurrent If-Match") else {
        return;
    };
    let database = TestDatabase::create(&admin_url).await;
    // Two stores: two pools, as two server processes sharing the database would have.
    let stores: Vec<Arc<PostgresStore>> = vec![
        Arc::new(database.store().await),
        Arc::new(database.store().await),
    ];
    stores[0].write(vec![create("p1")]).await.expect("create");
    for round in 1..=3_u64 {
        let mut tasks = tokio::task::JoinSet::new();
        for task in 0..24 {
            let store = Arc::clone(&stores[task % 2]);
            tasks.spawn(async move {
                store
                    .write(vec![WriteOp::Update {
                        write: patient("p1", Vec::new()),
                        if_match: Some(round),
                    }])
                    .await
            });
        }
        let (mut won, mut conflicts) = (0, 0);
        while let Some(result) = tasks.join_next().await {
            match result.expect("task") {
                Ok(_) => won += 1,
                Err(StoreError::VersionConflict {
                    expected, actual, ..
                }) => {
                    assert_eq!((expected, actual), (round, Some(round + 1)));
                    conflicts += 1;
                }
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((won, conflicts), (1, 23), "round {round}");
    }
    let current = stores[1].read("Patient", "p1").await.expect("read");
    assert_eq!(current.map(|r| r.version), Some(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_conditional_creates_across_pools_make_one() {
    let Some(admin_url) = test_url("concurrent conditional creates") else {
        return;
    };
    let database = TestDatabase::create(&admin_url).await;
    let stores: Vec<Arc<PostgresStore>> = vec![
        Arc::new(database.store().await),
        Arc::new(database.store().await),
    ];
    let identifier = |code: &str| IndexEntry {
        param: "identifier".to_owned(),
        value: IndexValue::Token {
            system: Some("urn:mrn".to_owned()),
            code: Some(code.to_owned()),
            text: None,
        },
    };
    let condition = SearchQuery {
        types: vec!["Patient".to_owned()],
        filters: vec![vec![Condition::Match {
            param: "identifier".to_owned(),
            test: ValueTest::Token {
                system: TokenSystem::Is("urn:mrn".to_owned()),
                code: Some("42".to_owned()),
            },
        }]],
        count: 10,
        ..SearchQuery::default()
    };
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..32 {
        let store = Arc::clone(&stores[task % 2]);
        let condition = condition.clone();
        let write = patient(&format!("p{task}"), vec![identifier("42")]);
        tasks.spawn(async move {
            store
                .write(vec![WriteOp::Create {
                    write,
                    if_none_exist: Some(Box::new(condition)),
                }])
                .await
        });
    }
    let (mut created, mut existing) = (Vec::new(), Vec::new());
    while let Some(result) = tasks.join_next().await {
        match result.expect("task").expect("write").pop() {
            Some(WriteOutcome::Created(resource)) => created.push(resource.id),
            Some(WriteOutcome::Existing(resource)) => existing.push(resource.id),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(existing.len(), 31);
    assert!(existing.iter().all(|id| *id == created[0]));
    let page = stores[0].search(&condition).await.expect("search");
    assert_eq!(page.matches.len(), 1);
}
