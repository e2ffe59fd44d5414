//! The default `Store::bulk_create` (a read per resource, then plain creates), which both backends
//! override: run on a store that delegates everything else to SQLite, it passes the bulk scenarios
//! of the conformance suite.

use std::sync::Arc;

use async_trait::async_trait;
use store::{
    HistoryPage, HistoryQuery, SearchPage, SearchQuery, Store, StoreError, StoredResource, WriteOp,
    WriteOutcome,
};
use store_sqlite::SqliteStore;

use crate::open_in;

/// A store without a `bulk_create` of its own.
struct DefaultBulk(SqliteStore);

#[async_trait]
impl Store for DefaultBulk {
    async fn read(
        &self,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<StoredResource>, StoreError> {
        self.0.read(resource_type, id).await
    }

    async fn vread(
        &self,
        resource_type: &str,
        id: &str,
        version: u64,
    ) -> Result<Option<StoredResource>, StoreError> {
        self.0.vread(resource_type, id, version).await
    }

    async fn write(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteOutcome>, StoreError> {
        self.0.write(ops).await
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchPage, StoreError> {
        self.0.search(query).await
    }

    async fn history(&self, query: &HistoryQuery) -> Result<HistoryPage, StoreError> {
        self.0.history(query).await
    }

    async fn scan(
        &self,
        resource_type: &str,
        after: Option<i64>,
        limit: usize,
    ) -> Result<(Vec<StoredResource>, Option<i64>), StoreError> {
        self.0.scan(resource_type, after, limit).await
    }

    async fn resource_types(&self) -> Result<Vec<String>, StoreError> {
        self.0.resource_types().await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.0.ping().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_bulk_create_passes_the_bulk_scenarios() {
    let bulk_scenarios: Vec<_> = store::conformance::SCENARIOS
        .iter()
        .filter(|(name, _)| name.starts_with("bulk_"))
        .collect();
    assert_eq!(bulk_scenarios.len(), 2);
    for (name, scenario) in bulk_scenarios {
        let directory = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn Store> = Arc::new(DefaultBulk(open_in(&directory)));
        if let Err(error) = tokio::spawn(scenario(store)).await {
            panic!("{name} failed with the default bulk_create: {error}");
        }
    }
}
