//! SQLite-specific behaviour: migrations, durability settings, group commit, reopening.

use std::sync::Arc;

use serde_json::json;
use store::{ResourceWrite, Store, StoreError, SystemClock, WriteOp, WriteOutcome};
use store_sqlite::{SCHEMA_VERSION, SqliteOptions, SqliteStore};

use crate::open_in;

fn body_of(id: &str) -> ResourceWrite {
    ResourceWrite {
        resource_type: "Patient".to_owned(),
        id: id.to_owned(),
        body: json!({ "resourceType": "Patient", "id": id }),
        index: Vec::new(),
        compartments: Vec::new(),
    }
}

fn create(id: &str) -> WriteOp {
    WriteOp::Create {
        write: body_of(id),
        if_none_exist: None,
    }
}

fn migration_rows(path: &std::path::Path) -> Vec<(i64, String)> {
    let connection = rusqlite::Connection::open(path).expect("open");
    let mut statement = connection
        .prepare("SELECT version, name FROM schema_migrations ORDER BY version")
        .expect("prepare");
    statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[tokio::test]
async fn migrations_run_once_and_data_survives_reopening() {
    let directory = tempfile::tempdir().expect("temp dir");
    let path = directory.path().join("tsunagu.db");
    {
        let store = open_in(&directory);
        store.write(vec![create("p1")]).await.expect("write");
    }
    let store = open_in(&directory);
    let rows = migration_rows(&path);
    assert_eq!(rows.len() as i64, SCHEMA_VERSION);
    assert_eq!(rows[0], (1, "resources".to_owned()));
    let read = store.read("Patient", "p1").await.expect("read");
    assert_eq!(read.map(|r| r.version), Some(1));
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let directory = tempfile::tempdir().expect("temp dir");
    let path = directory.path().join("tsunagu.db");
    drop(open_in(&directory));
    rusqlite::Connection::open(&path)
        .expect("open")
        .execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, 'future', 0)",
            [SCHEMA_VERSION + 1],
        )
        .expect("insert");
    let refused = SqliteStore::open(&path, SqliteOptions::default(), Arc::new(SystemClock));
    match refused {
        Err(StoreError::Invalid(message)) => {
            assert!(message.contains("newer"), "{message}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn durability_settings_are_in_force() {
    let directory = tempfile::tempdir().expect("temp dir");
    let store = open_in(&directory);
    let settings = store.settings();
    assert_eq!(settings.journal_mode, "wal");
    assert_eq!(settings.synchronous, 2, "synchronous = FULL");
    assert!(settings.foreign_keys);
    assert!(settings.busy_timeout_ms > 0);
}

#[tokio::test]
async fn open_creates_parent_directories_and_accepts_urls() {
    let directory = tempfile::tempdir().expect("temp dir");
    let nested = directory.path().join("a/b/tsunagu.db");
    let url = format!("sqlite://{}", nested.display());
    let store = SqliteStore::open_url(&url, SqliteOptions::default(), Arc::new(SystemClock))
        .expect("open by URL");
    store.ping().await.expect("ping");
    assert!(nested.exists());
    let memory = SqliteStore::open_url(
        "sqlite::memory:",
        SqliteOptions::default(),
        Arc::new(SystemClock),
    );
    assert!(matches!(memory, Err(StoreError::Invalid(_))), "{memory:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_batches_concurrent_writes() {
    let directory = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(open_in(&directory));
    let before = store.stats();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..64 {
        let store = Arc::clone(&store);
        tasks.spawn(async move { store.write(vec![create(&format!("p{n}"))]).await });
    }
    // One call fails (a duplicate id) without disturbing the others in its batch.
    let duplicate_store = Arc::clone(&store);
    tasks.spawn(async move {
        duplicate_store
            .write(vec![create("p0"), create("p0")])
            .await
    });
    let (mut created, mut duplicates) = (0, 0);
    while let Some(result) = tasks.join_next().await {
        match result.expect("task") {
            Ok(outcomes) => {
                assert!(matches!(outcomes[..], [WriteOutcome::Created(_)]));
                created += 1;
            }
            Err(StoreError::Duplicate(_)) => duplicates += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((created, duplicates), (64, 1));
    let after = store.stats();
    let calls = after.calls - before.calls;
    let transactions = after.transactions - before.transactions;
    assert_eq!(calls, 65);
    assert!(
        transactions < calls / 2,
        "expected concurrent calls to share transactions: {transactions} transactions for {calls} calls"
    );
    for n in 0..64 {
        let read = store.read("Patient", &format!("p{n}")).await.expect("read");
        assert_eq!(read.map(|r| r.version), Some(1), "p{n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_calls_in_a_group_leave_nothing_and_the_others_commit() {
    let directory = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(open_in(&directory));
    store.write(vec![create("existing")]).await.expect("seed");
    for round in 0..3 {
        // A large call keeps the writer busy while the small ones queue up behind it, so that they
        // run as one group.
        let large = (0..3000)
            .map(|n| create(&format!("large-{round}-{n}")))
            .collect();
        let busy = {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.write(large).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let call = |ops: Vec<WriteOp>| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.write(ops).await })
        };
        let first = call(vec![create(&format!("first-{round}"))]);
        // Fails on its second operation: its first must not survive.
        let duplicate = call(vec![create(&format!("orphan-{round}")), create("existing")]);
        let stale = call(vec![WriteOp::Update {
            write: body_of(&format!("first-{round}")),
            if_match: Some(7),
        }]);
        let last = call(vec![create(&format!("last-{round}"))]);
        assert!(busy.await.expect("task").is_ok());
        assert!(matches!(
            first.await.expect("task").as_deref(),
            Ok([WriteOutcome::Created(_)])
        ));
        assert!(matches!(
            duplicate.await.expect("task"),
            Err(StoreError::Duplicate(_))
        ));
        assert!(matches!(
            stale.await.expect("task"),
            Err(StoreError::VersionConflict { .. })
        ));
        assert!(matches!(
            last.await.expect("task").as_deref(),
            Ok([WriteOutcome::Created(_)])
        ));
        let version = |id: String| {
            let store = Arc::clone(&store);
            async move {
                store
                    .read("Patient", &id)
                    .await
                    .expect("read")
                    .map(|r| r.version)
            }
        };
        assert_eq!(version(format!("first-{round}")).await, Some(1));
        assert_eq!(version(format!("last-{round}")).await, Some(1));
        assert_eq!(version(format!("orphan-{round}")).await, None);
        assert_eq!(version("existing".to_owned()).await, Some(1));
    }
    // The failing calls shared a group with others at least once, which then ran again.
    assert!(store.stats().retried >= 1, "{:?}", store.stats());
}

#[tokio::test]
async fn empty_write_is_a_no_op() {
    let directory = tempfile::tempdir().expect("temp dir");
    let store = open_in(&directory);
    assert_eq!(store.write(Vec::new()).await.expect("write"), Vec::new());
    assert_eq!(store.stats().calls, 0);
}

/// Every committed write of a Consent moves `write_generation("Consent")`, whoever wrote it (a
/// second store on the same file stands for another process); a write that fails, or of another
/// type, leaves it alone; an uncounted type has none.
#[tokio::test]
async fn committed_consent_writes_and_only_those_move_the_write_generation() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let store = open_in(&directory);
    let other = open_in(&directory);
    let count = || async { store.write_generation("Consent").await.expect("count") };
    let consent = |id: &str, status: &str| ResourceWrite {
        resource_type: "Consent".to_owned(),
        id: id.to_owned(),
        body: json!({"resourceType": "Consent", "id": id, "status": status}),
        index: Vec::new(),
        compartments: Vec::new(),
    };
    assert_eq!(
        store.write_generation("Patient").await.expect("count"),
        None
    );
    let start = count().await.expect("Consent writes are counted");

    other
        .write(vec![WriteOp::Create {
            write: consent("c1", "active"),
            if_none_exist: None,
        }])
        .await
        .expect("create");
    let created = count().await.expect("count");
    assert!(created > start);

    store.write(vec![create("p1")]).await.expect("patient");
    assert_eq!(count().await, Some(created));

    // A conflicting update fails and commits nothing.
    let failed = other
        .write(vec![WriteOp::Update {
            write: consent("c1", "inactive"),
            if_match: Some(7),
        }])
        .await;
    assert!(failed.is_err());
    assert_eq!(count().await, Some(created));

    other
        .write(vec![WriteOp::Update {
            write: consent("c1", "inactive"),
            if_match: Some(1),
        }])
        .await
        .expect("update");
    let updated = count().await.expect("count");
    assert!(updated > created);

    store
        .write(vec![WriteOp::Delete {
            resource_type: "Consent".to_owned(),
            id: "c1".to_owned(),
            if_match: None,
        }])
        .await
        .expect("delete");
    assert!(count().await.expect("count") > updated);
}
