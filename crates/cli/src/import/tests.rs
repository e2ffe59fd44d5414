//! `tsunagu import` on a real (SQLite) store: chunks of new resources take the bulk path, chunks
//! that cannot (existing ids, invalid resources, conditional references) are written the general
//! way with nothing valid lost, and `--no-bulk` never uses the bulk path.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use app::{App, SearchInput};
use serde_json::{Value, json};
use store::SystemClock;

use super::{Options, Summary, import};

fn app_in(dir: &Path) -> App {
    let store = store_sqlite::SqliteStore::open(
        &dir.join("import.db"),
        store_sqlite::SqliteOptions::default(),
        Arc::new(SystemClock),
    )
    .expect("open SQLite store");
    App::new(Arc::new(store), app::Settings::default())
}

fn ndjson(dir: &Path, name: &str, resources: &[Value]) -> PathBuf {
    let path = dir.join(name);
    let lines: Vec<String> = resources.iter().map(Value::to_string).collect();
    std::fs::write(&path, lines.join("\n") + "\n").expect("write NDJSON");
    path
}

fn patient(id: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "id": id,
        "identifier": [{"system": "urn:test", "value": id}],
        "gender": "female"
    })
}

fn observation(id: Option<&str>, subject: &str) -> Value {
    let mut observation = json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "1234-5"}]},
        "subject": {"reference": subject}
    });
    if let Some(id) = id {
        observation["id"] = json!(id);
    }
    observation
}

async fn search(app: &App, resource_type: &str, params: &[(&str, &str)]) -> Vec<Value> {
    let input = SearchInput {
        types: vec![resource_type.to_owned()],
        params: params
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect(),
        ..SearchInput::default()
    };
    app.search(&input)
        .await
        .expect("search")
        .page
        .matches
        .iter()
        .map(|resource| serde_json::from_str(&resource.json).expect("stored JSON"))
        .collect()
}

async fn version_of(app: &App, resource_type: &str, id: &str) -> u64 {
    app.read(resource_type, id).await.expect("read").version
}

const BULK: Options = Options {
    batch: 3,
    bulk: true,
};

#[tokio::test]
async fn new_resources_take_the_bulk_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app_in(dir.path());
    let file = ndjson(
        dir.path(),
        "load.ndjson",
        &[
            patient("p1"),
            patient("p2"),
            observation(Some("o1"), "Patient/p1"),
            observation(None, "Patient/p1"),
            observation(None, "Patient/p2"),
        ],
    );
    let collection = dir.path().join("collection.json");
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": patient("p3")}, {"resource": observation(Some("o3"), "Patient/p3")}]
    });
    std::fs::write(&collection, bundle.to_string()).expect("write Bundle");

    let summary = import(&app, &[file, collection], BULK)
        .await
        .expect("import");
    assert_eq!(
        summary,
        Summary {
            files: 2,
            imported: 7,
            submissions: 0,
            failed: 0,
            bulk_chunks: 3,
            fallback_chunks: 0,
        }
    );
    assert_eq!(version_of(&app, "Patient", "p1").await, 1);
    assert_eq!(version_of(&app, "Observation", "o3").await, 1);
    assert_eq!(
        search(&app, "Observation", &[("subject", "Patient/p1")])
            .await
            .len(),
        2
    );
    assert_eq!(
        search(&app, "Patient", &[("identifier", "urn:test|p2")])
            .await
            .len(),
        1
    );
    let in_compartment = SearchInput {
        types: vec!["Observation".to_owned()],
        compartment: Some("p2".to_owned()),
        ..SearchInput::default()
    };
    let page = app.search(&in_compartment).await.expect("search").page;
    assert_eq!(page.matches.len(), 1, "the compartment of a bulk load");
}

#[tokio::test]
async fn a_chunk_that_cannot_take_the_bulk_path_loses_nothing_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app_in(dir.path());
    let first = ndjson(dir.path(), "first.ndjson", &[patient("p1")]);
    import(&app, &[first], BULK).await.expect("import");

    let invalid = json!({"resourceType": "Patient", "id": "bad", "gender": 5});
    let second = ndjson(
        dir.path(),
        "second.ndjson",
        &[
            // Chunk 1: an existing id, a new one and an invalid resource.
            patient("p1"),
            patient("p2"),
            invalid,
            // Chunk 2: new resources only.
            patient("p3"),
            observation(Some("o3"), "Patient/p3"),
            patient("p4"),
            // Chunk 3: a conditional reference, which only a transaction resolves.
            observation(Some("o4"), "Patient?identifier=urn:test|p3"),
        ],
    );
    let summary = import(&app, &[second], BULK).await.expect("import");
    assert_eq!(
        summary,
        Summary {
            files: 1,
            imported: 6,
            submissions: 0,
            failed: 1,
            bulk_chunks: 1,
            fallback_chunks: 2,
        }
    );
    assert_eq!(
        version_of(&app, "Patient", "p1").await,
        2,
        "updated, as an import without the bulk path does"
    );
    assert_eq!(version_of(&app, "Patient", "p2").await, 1);
    assert!(app.read("Patient", "bad").await.is_err());
    let resolved = search(&app, "Observation", &[("subject", "Patient/p3")]).await;
    let mut ids: Vec<&str> = resolved
        .iter()
        .filter_map(|resource| resource["id"].as_str())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["o3", "o4"], "the conditional reference was resolved");
}

#[tokio::test]
async fn without_bulk_every_chunk_is_a_transaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app_in(dir.path());
    let file = ndjson(
        dir.path(),
        "load.ndjson",
        &[
            patient("p1"),
            patient("p2"),
            observation(Some("o1"), "Patient/p1"),
            observation(None, "Patient/p2"),
        ],
    );
    let options = Options {
        batch: 3,
        bulk: false,
    };
    let summary = import(&app, &[file], options).await.expect("import");
    assert_eq!(
        summary,
        Summary {
            files: 1,
            imported: 4,
            submissions: 0,
            failed: 0,
            bulk_chunks: 0,
            fallback_chunks: 2,
        }
    );
    assert_eq!(version_of(&app, "Observation", "o1").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submissions_are_imported_concurrently_and_every_one_is_counted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = app_in(dir.path());
    // Twelve people's submissions, several per person and per facility: submitted 16 at a time,
    // so the same person's Bundles race each other for the identity link.
    let generator = synth::Generator::new(11);
    let bundles: Vec<Value> = (0..12)
        .flat_map(|number| generator.person(number).submissions)
        .map(|submission| submission.bundle)
        .collect();
    assert!(bundles.len() > 16, "more than one window of submissions");
    let file = ndjson(dir.path(), "bundles.ndjson", &bundles);
    let options = Options {
        batch: 1000,
        bulk: true,
    };
    let summary = import(&app, &[file], options).await.expect("import");
    assert_eq!(summary.failed, 0, "{summary:?}");
    assert_eq!(summary.submissions, bundles.len());
    // Every person once, whatever the order their Bundles arrived in.
    assert_eq!(search(&app, "Patient", &[]).await.len(), 12);
    // The count is of resources written: each submission's Bundle and its unpacked entries.
    let service = app.for_viewer(app::Viewer::Service);
    let mut stored = 0;
    for resource_type in service.resource_types_in_use().await.expect("types") {
        let (chunk, _) = service
            .export_chunk(&resource_type, None, 100_000)
            .await
            .expect("scan");
        stored += chunk.len();
    }
    // Plus the twelve Patients, which submissions link to rather than count as theirs.
    assert_eq!(summary.imported + 12, stored, "{summary:?}");
}
