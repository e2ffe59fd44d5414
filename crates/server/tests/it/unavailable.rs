//! A store that cannot be reached turns into 503 with `Retry-After` and an OperationOutcome that
//! says nothing about the cause; `/readyz` reports it too.

use std::sync::Arc;

use axum::http::StatusCode;
use store::{
    HistoryPage, HistoryQuery, SearchPage, SearchQuery, Store, StoreError, StoredResource, WriteOp,
    WriteOutcome,
};

use crate::{TestApp, assert_outcome};

/// Every call fails as a database that refuses connections would.
struct DownStore;

fn down() -> StoreError {
    StoreError::unavailable(std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        "secret-host:5432 refused",
    ))
}

#[async_trait::async_trait]
impl Store for DownStore {
    async fn read(&self, _: &str, _: &str) -> Result<Option<StoredResource>, StoreError> {
        Err(down())
    }
    async fn vread(&self, _: &str, _: &str, _: u64) -> Result<Option<StoredResource>, StoreError> {
        Err(down())
    }
    async fn write(&self, _: Vec<WriteOp>) -> Result<Vec<WriteOutcome>, StoreError> {
        Err(down())
    }
    async fn search(&self, _: &SearchQuery) -> Result<SearchPage, StoreError> {
        Err(down())
    }
    async fn history(&self, _: &HistoryQuery) -> Result<HistoryPage, StoreError> {
        Err(down())
    }
    async fn scan(
        &self,
        _: &str,
        _: Option<i64>,
        _: usize,
    ) -> Result<(Vec<StoredResource>, Option<i64>), StoreError> {
        Err(down())
    }
    async fn resource_types(&self) -> Result<Vec<String>, StoreError> {
        Err(down())
    }
    async fn ping(&self) -> Result<(), StoreError> {
        Err(down())
    }
}

#[tokio::test]
async fn an_unreachable_store_answers_503_without_detail() {
    let app = app::App::new(Arc::new(DownStore), app::Settings::default());
    let state = server::AppState::new(app, server::ServerSettings::default());
    let test = TestApp::from_state(state);
    for uri in ["/fhir/Patient/1", "/fhir/Patient?name=x", "/fhir/_history"] {
        let reply = test.get(uri).await;
        assert_outcome(&reply, StatusCode::SERVICE_UNAVAILABLE, "transient");
        assert!(reply.header("retry-after").is_some());
        assert!(!reply.text.contains("secret-host"), "{}", reply.text);
    }
    let created = test
        .post(
            "/fhir/Patient",
            &serde_json::json!({"resourceType": "Patient"}),
        )
        .await;
    assert_outcome(&created, StatusCode::SERVICE_UNAVAILABLE, "transient");
    assert_eq!(
        test.get("/readyz").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
}
