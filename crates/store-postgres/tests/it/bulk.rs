//! `bulk_create` (COPY) against the normal writer, row for row: the same data written both ways
//! into two databases leaves the same rows in every table (keys and times aside), and concurrent
//! bulk loads of the same ids let exactly one through.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::json;
use store::{IndexEntry, IndexValue, ResourceWrite, Store, StoreError, WriteOp};

use crate::{TestDatabase, test_url};

fn entry(param: &str, value: IndexValue) -> IndexEntry {
    IndexEntry {
        param: param.to_owned(),
        value,
    }
}

fn token(param: &str, system: Option<&str>, code: &str) -> IndexEntry {
    entry(
        param,
        IndexValue::Token {
            system: system.map(str::to_owned),
            code: Some(code.to_owned()),
            text: None,
        },
    )
}

fn reference(param: &str, target_type: &str, target_id: &str) -> IndexEntry {
    entry(
        param,
        IndexValue::Reference {
            target_type: Some(target_type.to_owned()),
            target_id: Some(target_id.to_owned()),
            url: None,
        },
    )
}

/// Patients, observations in one or several compartments (one naming a patient twice), resources
/// in none, entries of every kind, null columns, and bodies with text that needs escaping: enough
/// rows to fill several COPY buffers.
fn population() -> Vec<ResourceWrite> {
    let mut writes = Vec::new();
    for n in 0..40 {
        let id = format!("p{n}");
        writes.push(ResourceWrite {
            resource_type: "Patient".to_owned(),
            id: id.clone(),
            body: json!({
                "resourceType": "Patient",
                "id": id,
                "name": [{"family": "山田", "given": ["太郎 \"タロウ\"\\\n\t"]}],
                "birthDate": "1970-01-01"
            }),
            index: vec![
                entry(
                    "family",
                    IndexValue::String {
                        normalized: "山田".to_owned(),
                        exact: "山田".to_owned(),
                    },
                ),
                token("identifier", Some("urn:oid:1.2.392"), &format!("{n}")),
                entry("birthdate", IndexValue::Date { low: 0, high: 9 }),
                token("active", None, "true"),
            ],
            compartments: vec![id],
        });
    }
    for n in 0..400 {
        let subject = format!("p{}", n % 40);
        let performer = format!("p{}", (n + 1) % 40);
        let id = format!("o{n}");
        writes.push(ResourceWrite {
            resource_type: "Observation".to_owned(),
            id: id.clone(),
            body: json!({
                "resourceType": "Observation",
                "id": id,
                "status": "final",
                "valueQuantity": {"value": 5.40, "unit": "mg"}
            }),
            index: vec![
                token("code", Some("http://loinc.org"), "1234-5"),
                entry(
                    "code",
                    IndexValue::Token {
                        system: None,
                        code: None,
                        text: Some("hemoglobin".to_owned()),
                    },
                ),
                reference("subject", "Patient", &subject),
                reference("performer", "Patient", &performer),
                entry(
                    "value-quantity",
                    IndexValue::Quantity {
                        value: 5.4,
                        system: None,
                        code: None,
                        unit: Some("mg".to_owned()),
                    },
                ),
                entry(
                    "date",
                    IndexValue::Date {
                        low: n,
                        high: n + 1,
                    },
                ),
            ],
            compartments: vec![subject.clone(), performer, subject],
        });
    }
    for n in 0..20 {
        let id = format!("r{n}");
        writes.push(ResourceWrite {
            resource_type: "RiskAssessment".to_owned(),
            id: id.clone(),
            body: json!({"resourceType": "RiskAssessment", "id": id, "status": "final"}),
            index: vec![
                entry("probability", IndexValue::Number { value: 0.5 }),
                entry(
                    "_profile",
                    IndexValue::Uri {
                        value: "http://example.org/profile".to_owned(),
                    },
                ),
                entry(
                    "subject",
                    IndexValue::Reference {
                        target_type: None,
                        target_id: None,
                        url: Some("http://elsewhere.org/fhir/Patient/1".to_owned()),
                    },
                ),
            ],
            compartments: Vec::new(),
        });
    }
    writes
}

/// Every row of every table, keys replaced by the resource's type and id, times masked, sorted.
async fn table_rows(url: &str) -> Vec<String> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let driver = tokio::spawn(connection);
    let mut queries = vec![
        "SELECT type || '/' || id || ' ' || version || ' ' || deleted || ' ' || shard_key \
         FROM resource"
            .to_owned(),
        "SELECT v.type || '/' || v.id || ' ' || v.version || ' ' || v.method || ' ' \
         || v.shard_key || ' ' || regexp_replace(v.json::text, '\"lastUpdated\":\"[^\"]*\"', '') \
         FROM resource_version v JOIN resource r ON r.pk = v.res AND r.type = v.type AND r.id = v.id"
            .to_owned(),
        "SELECT r.type || '/' || r.id || ' ' || c.patient_id \
         FROM compartment c JOIN resource r ON r.pk = c.res"
            .to_owned(),
    ];
    for table in [
        "idx_token",
        "idx_string",
        "idx_date",
        "idx_reference",
        "idx_quantity",
        "idx_number",
        "idx_uri",
    ] {
        queries.push(format!(
            "SELECT '{table} ' || r.type || '/' || r.id || ' ' || s.type || '.' || s.param || ' ' \
             || (to_jsonb(i) - 'res' - 'pid')::text \
             FROM {table} i JOIN resource r ON r.pk = i.res JOIN search_param s ON s.pid = i.pid"
        ));
    }
    let mut rows = Vec::new();
    for query in &queries {
        for row in client.query(query.as_str(), &[]).await.expect(query) {
            rows.push(row.get::<_, String>(0));
        }
    }
    drop(client);
    let _ = driver.await;
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_create_writes_the_rows_of_plain_creates() {
    let Some(admin_url) = test_url("bulk_create_writes_the_rows_of_plain_creates") else {
        return;
    };
    let created = TestDatabase::create(&admin_url).await;
    let bulk = TestDatabase::create(&admin_url).await;
    let in_one_write = TestDatabase::create(&admin_url).await;

    // The reference: one create per write call, each through the per-resource statements.
    let store = created.store().await;
    for write in population() {
        store
            .write(vec![WriteOp::Create {
                write,
                if_none_exist: None,
            }])
            .await
            .expect("a plain create");
    }
    let stored = bulk
        .store()
        .await
        .bulk_create(population())
        .await
        .expect("bulk create");
    assert_eq!(stored.len(), 460);
    // All creates in one write call: a run of plain creates, written with COPY.
    let ops = population()
        .into_iter()
        .map(|write| WriteOp::Create {
            write,
            if_none_exist: None,
        })
        .collect();
    let outcomes = in_one_write
        .store()
        .await
        .write(ops)
        .await
        .expect("plain creates in one write");
    assert!(outcomes.iter().all(
        |outcome| matches!(outcome, store::WriteOutcome::Created(stored) if stored.version == 1)
    ));

    let expected = table_rows(&created.url).await;
    assert_eq!(
        table_rows(&in_one_write.url).await,
        expected,
        "a run of creates in one write call writes the rows of separate creates"
    );
    let found = table_rows(&bulk.url).await;
    let only_in = |these: &[String], those: &[String]| -> Vec<String> {
        let those: HashSet<&String> = those.iter().collect();
        these
            .iter()
            .filter(|row| !those.contains(row))
            .take(10)
            .cloned()
            .collect()
    };
    assert_eq!(
        (only_in(&expected, &found), only_in(&found, &expected)),
        (Vec::new(), Vec::new()),
        "rows only the plain creates wrote, rows only the bulk create wrote"
    );
    assert_eq!(found, expected, "the same rows, as often");
    // The comparison means something: each observation's index rows sit under both its patients.
    let token_rows = expected
        .iter()
        .filter(|row| row.starts_with("idx_token Observation/o7 "))
        .count();
    assert_eq!(token_rows, 4, "two entries under two keys");
    assert_eq!(
        expected
            .iter()
            .filter(|row| row.starts_with("Observation/o7 p"))
            .count(),
        2,
        "one compartment row per distinct patient"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_bulk_loads_of_the_same_ids_let_one_through() {
    let Some(admin_url) = test_url("concurrent_bulk_loads_of_the_same_ids_let_one_through") else {
        return;
    };
    let database = TestDatabase::create(&admin_url).await;
    // Two pools, as two import processes would have.
    let stores: Vec<Arc<dyn Store>> = vec![
        Arc::new(database.store().await),
        Arc::new(database.store().await),
    ];
    let mut loads = tokio::task::JoinSet::new();
    for store in &stores {
        let store = Arc::clone(store);
        loads.spawn(async move { store.bulk_create(population()).await });
    }
    let (mut loaded, mut refused) = (0, 0);
    while let Some(result) = loads.join_next().await {
        match result.expect("task") {
            Ok(stored) => {
                assert_eq!(stored.len(), 460);
                loaded += 1;
            }
            Err(StoreError::Duplicate(_)) => refused += 1,
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!((loaded, refused), (1, 1));
    let (patients, _) = stores[0].scan("Patient", None, 100).await.expect("scan");
    assert_eq!(patients.len(), 40);
    assert!(patients.iter().all(|patient| patient.version == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_of_creates_that_cannot_be_copied_takes_the_per_resource_path() {
    let Some(admin_url) =
        test_url("a_run_of_creates_that_cannot_be_copied_takes_the_per_resource_path")
    else {
        return;
    };
    let database = TestDatabase::create(&admin_url).await;
    let store = database.store().await;
    let creates = |writes: Vec<ResourceWrite>| -> Vec<WriteOp> {
        writes
            .into_iter()
            .map(|write| WriteOp::Create {
                write,
                if_none_exist: None,
            })
            .collect()
    };
    let mut writes = population();
    writes.truncate(20);
    // One of them existed and was deleted: the run re-creates it (version 3: created, deleted,
    // created again), as single creates do.
    store
        .write(creates(vec![writes[5].clone()]))
        .await
        .expect("create");
    let deleted = store
        .write(vec![WriteOp::Delete {
            resource_type: writes[5].resource_type.clone(),
            id: writes[5].id.clone(),
            if_match: None,
        }])
        .await
        .expect("delete");
    assert!(matches!(deleted[0], store::WriteOutcome::Deleted { .. }));
    let outcomes = store.write(creates(writes.clone())).await.expect("the run");
    assert_eq!(outcomes.len(), 20);
    for (index, outcome) in outcomes.iter().enumerate() {
        let store::WriteOutcome::Created(stored) = outcome else {
            panic!("op {index}: {outcome:?}");
        };
        assert_eq!(stored.id, writes[index].id);
        assert_eq!(stored.version, if index == 5 { 3 } else { 1 });
    }
    // Any of them again: a duplicate, and nothing of the call is written.
    let mut again = population();
    again.truncate(30);
    let error = store.write(creates(again.clone())).await.unwrap_err();
    assert!(
        matches!(error, store::StoreError::Duplicate(_)),
        "{error:?}"
    );
    let fresh = store
        .read(&again[25].resource_type, &again[25].id)
        .await
        .expect("read");
    assert!(fresh.is_none(), "the failed call wrote nothing");
    // Two writes of one id in a run: a duplicate too.
    let mut twice = population()[40..50].to_vec();
    twice.push(twice[0].clone());
    let error = store.write(creates(twice)).await.unwrap_err();
    assert!(
        matches!(error, store::StoreError::Duplicate(_)),
        "{error:?}"
    );
}
