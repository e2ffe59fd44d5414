//! Read replicas (`PostgresStore::with_read_replica`): searches and history go to the replica,
//! everything else (searches that decide writes included) to the primary; and the whole conformance suite with searches served by a
//! real streaming standby.
//!
//! The standby test needs `TEST_POSTGRES_PRIMARY_URL` and `TEST_POSTGRES_STANDBY_URL`: a primary
//! that commits with `synchronous_commit = remote_apply` and its hot standby, which
//! `scripts/with-postgres.sh` starts.

use std::io::Write as _;
use std::sync::Arc;

use serde_json::json;
use store::{
    HistoryQuery, HistoryScope, ResourceWrite, SearchQuery, Store, StoreError, TotalMode, WriteOp,
};
use store_postgres::PostgresOptions;

use crate::{TestDatabase, empty_store, test_url};

fn create(id: &str) -> WriteOp {
    WriteOp::Create {
        write: ResourceWrite {
            resource_type: "Patient".to_owned(),
            id: id.to_owned(),
            body: json!({"resourceType": "Patient", "id": id}),
            index: Vec::new(),
            compartments: vec![id.to_owned()],
        },
        if_none_exist: None,
    }
}

fn all_patients() -> SearchQuery {
    SearchQuery {
        types: vec!["Patient".to_owned()],
        count: 10,
        total: TotalMode::Accurate,
        ..SearchQuery::default()
    }
}

/// Two different databases as "primary" and "replica": what each call returns shows where it went.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_and_history_go_to_the_replica_and_the_rest_to_the_primary() {
    let Some(admin_url) = test_url("searches_go_to_the_replica") else {
        return;
    };
    let primary = TestDatabase::create(&admin_url).await;
    let replica = TestDatabase::create(&admin_url).await;
    primary
        .store()
        .await
        .write(vec![create("on-primary")])
        .await
        .expect("write primary");
    replica
        .store()
        .await
        .write(vec![create("on-replica")])
        .await
        .expect("write replica");

    let options = PostgresOptions::default();
    let store = primary
        .store()
        .await
        .with_read_replica(&replica.url, &options)
        .await
        .expect("replica");
    let page = store.search(&all_patients()).await.expect("search");
    assert_eq!(page.matches[0].id, "on-replica");
    assert_eq!(page.total, Some(1));
    let history = store
        .history(&HistoryQuery {
            scope: HistoryScope::System,
            since: None,
            before: None,
            count: 10,
            cursor: None,
            with_total: false,
        })
        .await
        .expect("history");
    assert_eq!(history.entries[0].resource.id, "on-replica");
    assert!(
        store
            .read("Patient", "on-primary")
            .await
            .expect("read")
            .is_some()
    );
    assert!(
        store
            .read("Patient", "on-replica")
            .await
            .expect("read")
            .is_none()
    );
    store.write(vec![create("written")]).await.expect("write");
    assert!(
        store
            .read("Patient", "written")
            .await
            .expect("read")
            .is_some()
    );
    // A search that decides a write must see the primary's latest state.
    let latest = store.search_latest(&all_patients()).await.expect("search");
    let mut ids: Vec<String> = latest.matches.into_iter().map(|r| r.id).collect();
    ids.sort();
    assert_eq!(ids, ["on-primary", "written"]);

    // A database without tsunagu's schema is not accepted as a replica.
    let empty = TestDatabase::create(&admin_url).await;
    let refused = primary
        .store()
        .await
        .with_read_replica(&empty.url, &options)
        .await
        .expect_err("no schema");
    assert!(matches!(refused, StoreError::Invalid(_)), "{refused:?}");
}

/// The primary's and the standby's admin URLs, or None (after a loud notice) when unset locally.
///
/// # Panics
/// When they are unset and `CI` is set.
fn standby_urls(test: &str) -> Option<(String, String)> {
    let urls = store::conformance::env_value("TEST_POSTGRES_PRIMARY_URL")
        .zip(store::conformance::env_value("TEST_POSTGRES_STANDBY_URL"));
    store::conformance::prerequisite(
        urls,
        "TEST_POSTGRES_PRIMARY_URL/TEST_POSTGRES_STANDBY_URL are not set",
        &format!("store-postgres replica::{test}"),
        "Run `scripts/with-postgres.sh cargo test -p store-postgres`.",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_with_searches_on_a_streaming_standby() {
    let Some((primary_admin, standby_admin)) = standby_urls("conformance_on_a_standby") else {
        return;
    };
    // Created on the primary, the database reaches the standby by replication.
    let database = Arc::new(TestDatabase::create(&primary_admin).await);
    let (standby_base, _) = standby_admin.rsplit_once('/').expect("URL ends with /DB");
    let name = database.url.rsplit_once('/').expect("URL ends with /DB").1;
    let standby_url = format!("{standby_base}/{name}");
    database.store().await; // migrate once
    store::conformance::run_all(|| {
        let database = Arc::clone(&database);
        let standby_url = standby_url.clone();
        async move {
            empty_store(&database.url).await;
            let store = database
                .store()
                .await
                .with_read_replica(&standby_url, &PostgresOptions::default())
                .await
                .expect("standby");
            Arc::new(store) as Arc<dyn Store>
        }
    })
    .await;
    let _ = writeln!(
        std::io::stderr(),
        "store-postgres with searches on a streaming standby passed all {} conformance scenarios",
        store::conformance::scenario_names().len()
    );
}
