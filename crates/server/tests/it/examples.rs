//! The official R4 examples vendored under `fixtures/r4-examples/`: each is stored under its own id,
//! read back equal to what was sent (decimals and all), and found again by a search on one of its
//! own indexed values.

use axum::http::StatusCode;
use serde_json::Value;
use store::IndexValue;

use crate::TestApp;

/// The example with `meta.versionId`/`meta.lastUpdated` removed (the server stamps its own).
fn without_server_meta(mut resource: Value) -> Value {
    if let Some(meta) = resource.get_mut("meta").and_then(Value::as_object_mut) {
        meta.shift_remove("versionId");
        meta.shift_remove("lastUpdated");
        if meta.is_empty() {
            resource
                .as_object_mut()
                .map(|object| object.shift_remove("meta"));
        }
    }
    resource
}

/// A query that must find `resource`, built from its first token or string index entry.
fn query_for(resource_type: &str, resource: &Value) -> Option<String> {
    let entries = search::Registry::r4().extract(resource_type, resource);
    // Backslashes, commas and dollars inside a value are escaped with a backslash (FHIR search escaping).
    let encode = |text: &str| {
        let escaped = text
            .replace('\\', "\\\\")
            .replace(',', "\\,")
            .replace('$', "\\$");
        form_urlencoded::byte_serialize(escaped.as_bytes()).collect::<String>()
    };
    entries
        .iter()
        .filter(|entry| !entry.param.starts_with('_') && !entry.param.contains(':'))
        .find_map(|entry| match &entry.value {
            IndexValue::Token {
                system: Some(system),
                code: Some(code),
                ..
            } => Some(format!(
                "{}={}",
                entry.param,
                encode(&format!("{system}|{code}"))
            )),
            IndexValue::Token {
                system: None,
                code: Some(code),
                ..
            } => Some(format!("{}={}", entry.param, encode(code))),
            IndexValue::String { exact, .. } => {
                Some(format!("{}:exact={}", entry.param, encode(exact)))
            }
            _ => None,
        })
}

#[tokio::test]
async fn every_official_example_round_trips_and_is_found_by_search() {
    let app = TestApp::new();
    let directory =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/r4-examples");
    let mut files: Vec<_> = std::fs::read_dir(&directory)
        .expect("vendored examples")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 30, "the vendored examples are missing");
    let mut searched = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let original: Value = serde_json::from_str(&text).unwrap();
        let resource_type = original["resourceType"].as_str().unwrap().to_owned();
        let id = original["id"].as_str().unwrap().to_owned();
        let stored = app
            .put(&format!("/fhir/{resource_type}/{id}"), &original)
            .await;
        assert_eq!(
            stored.status,
            StatusCode::CREATED,
            "{}: {}",
            file.display(),
            stored.text
        );

        let read = app.get(&format!("/fhir/{resource_type}/{id}")).await;
        assert_eq!(read.status, StatusCode::OK);
        assert_eq!(
            without_server_meta(read.json()),
            without_server_meta(original.clone()),
            "{} does not read back as sent",
            file.display()
        );

        let query = query_for(&resource_type, &original).unwrap_or_else(|| format!("_id={id}"));
        let found = app
            .get(&format!("/fhir/{resource_type}?{query}&_count=1000"))
            .await;
        assert_eq!(
            found.status,
            StatusCode::OK,
            "{}: {query}: {}",
            file.display(),
            found.text
        );
        assert!(
            found.match_ids().contains(&id),
            "{}: not found by {query}",
            file.display()
        );
        searched += 1;
    }
    assert_eq!(searched, files.len());
}
