//! The machine's limit for ingest: raw SQLite inserts of the same JSON bytes tsunagu stores, with
//! one index, and nothing else (no parsing, validation, indexing, versions, consent or audit).
//! tsunagu's ingest rate is reported as a fraction of this (issue 6: goal ≥ 50%).
//!
//! ```text
//! cargo bench -p benches --bench raw_sqlite                       # 100,000 resources
//! cargo bench -p benches --bench raw_sqlite -- --resources 1000000
//! ```
//!
//! The resources are those of the synthetic population's JP-CLINS submissions (every entry of
//! every Bundle, serialised as a client would send it), so the bytes per row match what the
//! ingest benchmarks and `tsunagu import` write. The table is `(id TEXT PRIMARY KEY, type TEXT,
//! json TEXT)` with one more index on `type`; WAL, `synchronous=FULL` (tsunagu's settings), one
//! transaction per 1,000 rows, one writer — the shape of the store's writer thread.

use std::time::Instant;

use anyhow::Context as _;
use clap::Parser;
use serde_json::Value;

#[derive(Debug, Parser)]
#[command(about = "Raw SQLite inserts of tsunagu's JSON with one index: the ingest ceiling")]
struct Args {
    /// Rows to insert.
    #[arg(long, default_value_t = 100_000)]
    resources: usize,
    /// Rows per transaction.
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    /// Where to write the JSON result (default: `<target>/bench-results/raw_sqlite.json`).
    #[arg(long)]
    out: Option<std::path::PathBuf>,
    /// Ignored (cargo bench passes it).
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rows = population(args.resources);
    let bytes: usize = rows.iter().map(|(_, _, json)| json.len()).sum();
    let dir = tempfile::tempdir().context("temp dir")?;
    let connection = rusqlite::Connection::open(dir.path().join("raw.db"))?;
    connection.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         CREATE TABLE resource (id TEXT PRIMARY KEY, type TEXT NOT NULL, json TEXT NOT NULL);
         CREATE INDEX resource_type ON resource (type);",
    )?;
    let started = Instant::now();
    for chunk in rows.chunks(args.batch.max(1)) {
        let transaction = connection.unchecked_transaction()?;
        {
            let mut statement = transaction
                .prepare_cached("INSERT INTO resource (id, type, json) VALUES (?1, ?2, ?3)")?;
            for (id, resource_type, json) in chunk {
                statement.execute((id, resource_type, json))?;
            }
        }
        transaction.commit()?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let rate = rows.len() as f64 / seconds;
    println!(
        "raw SQLite: {} rows ({:.0} bytes of JSON each on average) in {seconds:.2} s: {rate:.0} rows/s",
        rows.len(),
        bytes as f64 / rows.len().max(1) as f64
    );
    let result = serde_json::json!({
        "benchmark": "raw_sqlite",
        "rows": rows.len(),
        "mean_json_bytes": bytes as f64 / rows.len().max(1) as f64,
        "batch": args.batch,
        "seconds": seconds,
        "rows_per_second": rate,
    });
    let out = args.out.unwrap_or_else(|| {
        std::path::PathBuf::from(
            std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_owned()),
        )
        .join("bench-results/raw_sqlite.json")
    });
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&result)?)?;
    println!("results written to {}", out.display());
    Ok(())
}

/// `count` rows of (id, type, JSON) from the synthetic population's submissions.
fn population(count: usize) -> Vec<(String, String, String)> {
    let generator = synth::Generator::new(7);
    let mut rows = Vec::with_capacity(count);
    for person in generator.persons() {
        for submission in person.submissions {
            let entries = submission
                .bundle
                .get("entry")
                .and_then(Value::as_array)
                .cloned();
            for entry in entries.into_iter().flatten() {
                let Some(resource) = entry.get("resource") else {
                    continue;
                };
                let resource_type = resource
                    .get("resourceType")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                rows.push((
                    format!("{}-{}", rows.len(), resource_type),
                    resource_type,
                    resource.to_string(),
                ));
                if rows.len() == count {
                    return rows;
                }
            }
        }
    }
    rows
}
