//! A store sharded by patient over three PostgreSQL servers (`store_postgres::shard`): the whole
//! conformance suite through its coordinator, and single-patient reads that need one shard only.
//!
//! Needs `TEST_POSTGRES_URL` (the coordinator's server) and `TEST_POSTGRES_SHARD_URLS` (the shard
//! servers' admin URLs, separated by spaces); `scripts/with-postgres.sh` starts all of them.

use std::io::Write as _;
use std::sync::Arc;

use serde_json::json;
use store::{
    Condition, IndexEntry, IndexValue, ResourceWrite, SearchQuery, Store, StoreError, TokenSystem,
    TotalMode, ValueTest, WriteOp,
};
use store_postgres::shard::{self, Layout};
use store_postgres::{PostgresOptions, PostgresStore};

use crate::{TestDatabase, empty_store, test_url};

/// The shard servers' admin URLs, or None (after a loud notice) when unset locally.
///
/// # Panics
/// When they are unset and `CI` is set.
fn shard_urls(test: &str) -> Option<Vec<String>> {
    let urls = store::conformance::env_value("TEST_POSTGRES_SHARD_URLS")
        .map(|urls| urls.split_whitespace().map(str::to_owned).collect());
    store::conformance::prerequisite(
        urls,
        "TEST_POSTGRES_SHARD_URLS is not set",
        &format!("store-postgres sharded::{test}"),
        "Run `scripts/with-postgres.sh cargo test -p store-postgres` to test sharding.",
    )
}

/// A coordinator database and one database on each shard server, sharded together.
struct Sharded {
    coordinator: TestDatabase,
    // Dropped after the coordinator's (field order), whose foreign tables point at them.
    _shards: Vec<TestDatabase>,
}

impl Sharded {
    async fn create(test: &str) -> Option<Sharded> {
        let admin_url = test_url(test)?;
        let shard_admins = shard_urls(test)?;
        let coordinator = TestDatabase::create(&admin_url).await;
        let mut shards = Vec::new();
        for admin in &shard_admins {
            shards.push(TestDatabase::create(admin).await);
        }
        let urls: Vec<String> = shards.iter().map(|shard| shard.url.clone()).collect();
        let layout = shard::init(&coordinator.url, &urls, Arc::new(store::SystemClock))
            .await
            .expect("shard the store");
        assert_eq!(
            layout,
            Layout {
                shards: urls.len(),
                created: true
            }
        );
        let again = shard::init(&coordinator.url, &urls, Arc::new(store::SystemClock))
            .await
            .expect("shard again");
        assert!(!again.created, "sharding twice changes nothing");
        Some(Sharded {
            coordinator,
            _shards: shards,
        })
    }

    async fn store(&self) -> PostgresStore {
        self.coordinator.store().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_three_shards() {
    let Some(sharded) = Sharded::create("conformance_on_three_shards").await else {
        return;
    };
    let sharded = Arc::new(sharded);
    // One sharded store, emptied before each scenario (a fresh set of four databases per scenario
    // would cost more than the scenarios).
    store::conformance::run_all(|| {
        let sharded = Arc::clone(&sharded);
        async move {
            empty_store(&sharded.coordinator.url).await;
            Arc::new(sharded.store().await) as Arc<dyn Store>
        }
    })
    .await;
    let _ = writeln!(
        std::io::stderr(),
        "store-postgres on 3 shards passed all {} conformance scenarios",
        store::conformance::scenario_names().len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_cannot_be_served_directly_nor_a_used_store_sharded() {
    let Some(sharded) = Sharded::create("a_shard_cannot_be_served_directly").await else {
        return;
    };
    let shard_url = &sharded._shards[0].url;
    let refused = PostgresStore::connect(
        shard_url,
        PostgresOptions::default(),
        Arc::new(store::SystemClock),
    )
    .await
    .expect_err("a shard is refused");
    assert!(
        refused.to_string().contains("coordinator"),
        "says where to connect: {refused}"
    );

    let Some(admin_url) = test_url("a_used_store_cannot_be_sharded") else {
        return;
    };
    let used = TestDatabase::create(&admin_url).await;
    used.store()
        .await
        .write(vec![WriteOp::Create {
            write: patient("p"),
            if_none_exist: None,
        }])
        .await
        .expect("write");
    let fresh_shard = TestDatabase::create(&shard_urls("used").expect("urls")[0]).await;
    let refused = shard::init(
        &used.url,
        std::slice::from_ref(&fresh_shard.url),
        Arc::new(store::SystemClock),
    )
    .await
    .expect_err("a store holding resources is not sharded");
    assert!(matches!(refused, StoreError::Invalid(_)), "{refused:?}");
}

/// With every shard but one unreachable, everything about a patient on that shard is still
/// served, while a search across patients fails: single-patient reads touch one shard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_patient_reads_touch_only_that_patients_shard() {
    let Some(sharded) = Sharded::create("single_patient_reads_touch_one_shard").await else {
        return;
    };
    let store = sharded.store().await;
    let mut ops = Vec::new();
    for n in 0..12 {
        let id = format!("p{n}");
        ops.push(WriteOp::Create {
            write: patient(&id),
            if_none_exist: None,
        });
        ops.push(WriteOp::Create {
            write: lab(&format!("o{n}"), &id),
            if_none_exist: None,
        });
    }
    store.write(ops).await.expect("write");

    // Where does p0 live? Its compartment rows are in the partition of its shard.
    let (client, connection) =
        tokio_postgres::connect(&sharded.coordinator.url, tokio_postgres::NoTls)
            .await
            .expect("connect");
    let driver = tokio::spawn(connection);
    let partition: String = client
        .query_one(
            "SELECT tableoid::regclass::text FROM compartment WHERE patient_id = 'p0' LIMIT 1",
            &[],
        )
        .await
        .expect("locate p0")
        .get(0);
    let home = partition
        .strip_prefix("compartment_shard_")
        .expect("a shard partition")
        .to_owned();
    for other in ["0", "1", "2"].into_iter().filter(|s| *s != home) {
        client
            .batch_execute(&format!(
                "ALTER SERVER tsunagu_shard_{other} OPTIONS (SET host '127.0.0.1', SET port '1')"
            ))
            .await
            .expect("break a shard");
    }
    drop(client);
    let _ = driver.await;
    let store = sharded.store().await;

    let read = store.read("Patient", "p0").await.expect("read p0");
    assert_eq!(read.expect("found").version, 1);
    assert!(
        store
            .read("Observation", "o0")
            .await
            .expect("read o0")
            .is_some()
    );
    assert!(
        store
            .vread("Observation", "o0", 1)
            .await
            .expect("vread")
            .is_some()
    );
    let mut labs = SearchQuery {
        types: vec!["Observation".to_owned()],
        compartment: Some("p0".to_owned()),
        filters: vec![vec![Condition::Match {
            param: "code".to_owned(),
            test: ValueTest::Token {
                system: TokenSystem::Any,
                code: Some("glucose".to_owned()),
            },
        }]],
        total: TotalMode::Accurate,
        count: 10,
        ..SearchQuery::default()
    };
    let page = store.search(&labs).await.expect("compartment search");
    assert_eq!(page.total, Some(1));
    assert_eq!(page.matches[0].id, "o0");
    labs.types = Vec::new();
    labs.filters = Vec::new();
    let everything = store.search(&labs).await.expect("everything of p0");
    assert_eq!(everything.total, Some(2));

    // The control: a search across patients needs every shard, and two are gone.
    labs.compartment = None;
    let across = store.search(&labs).await;
    assert!(
        matches!(across, Err(StoreError::Unavailable(_))),
        "a search across patients needs the unreachable shards: {across:?}"
    );
}

fn patient(id: &str) -> ResourceWrite {
    ResourceWrite {
        resource_type: "Patient".to_owned(),
        id: id.to_owned(),
        body: json!({"resourceType": "Patient", "id": id}),
        index: Vec::new(),
        compartments: vec![id.to_owned()],
    }
}

fn lab(id: &str, patient: &str) -> ResourceWrite {
    ResourceWrite {
        resource_type: "Observation".to_owned(),
        id: id.to_owned(),
        body: json!({"resourceType": "Observation", "id": id}),
        index: vec![
            IndexEntry {
                param: "code".to_owned(),
                value: IndexValue::Token {
                    system: Some("http://loinc.org".to_owned()),
                    code: Some("glucose".to_owned()),
                    text: None,
                },
            },
            IndexEntry {
                param: "subject".to_owned(),
                value: IndexValue::Reference {
                    target_type: Some("Patient".to_owned()),
                    target_id: Some(patient.to_owned()),
                    url: None,
                },
            },
        ],
        compartments: vec![patient.to_owned()],
    }
}
