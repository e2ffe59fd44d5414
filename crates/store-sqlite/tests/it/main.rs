//! Integration tests of the SQLite backend: the shared conformance suite, then behaviour specific to
//! SQLite (migrations, durability settings, group commit). Every test uses a fresh temp-file
//! database.

mod default_bulk;
mod sqlite;

use std::io::Write as _;
use std::sync::{Arc, Mutex};

use store::Store;
use store_sqlite::{SqliteOptions, SqliteStore};

/// Opens a store on a fresh database file inside `directory`.
fn open_in(directory: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(
        &directory.path().join("tsunagu.db"),
        SqliteOptions::default(),
        Arc::new(store::SystemClock),
    )
    .expect("open store")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    // The directories must outlive their stores; they are removed when the test ends.
    let directories = Arc::new(Mutex::new(Vec::new()));
    store::conformance::run_all(|| {
        let directories = Arc::clone(&directories);
        async move {
            let directory = tempfile::tempdir().expect("temp dir");
            let store = open_in(&directory);
            directories.lock().expect("lock").push(directory);
            Arc::new(store) as Arc<dyn Store>
        }
    })
    .await;
    // Written to stderr directly (not captured by the harness), so the count shows in every run.
    let _ = writeln!(
        std::io::stderr(),
        "store-sqlite passed all {} conformance scenarios",
        store::conformance::scenario_names().len()
    );
}
