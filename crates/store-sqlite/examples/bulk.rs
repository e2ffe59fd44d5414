//! Hand-run load test of the SQLite store: bulk ingest, token search latency, reads by id.
//!
//! ```text
//! cargo run --release -p store-sqlite --example bulk -- [RESOURCES] [DATABASE]
//! ```
//!
//! Writes RESOURCES (default 100 000) Observation-like resources with 15 index entries each through
//! `write` calls of 1 000 operations from BULK_CLIENTS (default 2) concurrent clients, then measures token searches and reads by id through the async
//! API. The database defaults to a temporary file.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use store::{
    Condition, IndexEntry, IndexValue, ResourceWrite, SearchQuery, Store, SystemClock, TokenSystem,
    ValueTest, WriteOp,
};
use store_sqlite::{SqliteOptions, SqliteStore};

const BATCH: usize = 1000;
const PATIENTS: usize = 10_000;
const CODES: usize = 500;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let directory = tempfile::tempdir().expect("temp dir");
    let path = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| directory.path().join("bulk.db"));
    let store = Arc::new(
        SqliteStore::open(&path, SqliteOptions::default(), Arc::new(SystemClock))
            .expect("open store"),
    );

    let existing = store
        .scan("Observation", None, 1)
        .await
        .expect("scan")
        .0
        .len();
    if existing == 0 {
        ingest(&store, total).await;
    } else {
        println!("reusing the resources already in {}", path.display());
    }
    token_search(&store, total).await;
    reads_by_id(&store, total).await;
}

async fn ingest(store: &Arc<SqliteStore>, total: usize) {
    let started = Instant::now();
    // Concurrent clients keep the queue fed while the writer thread commits, as parallel import
    // requests would; calls that wait together share a transaction.
    let clients: usize = std::env::var("BULK_CLIENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2);
    let mut tasks = tokio::task::JoinSet::new();
    let (sender, receiver) = tokio::sync::mpsc::channel::<Vec<WriteOp>>(clients);
    let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
    for _ in 0..clients {
        let store = Arc::clone(store);
        let receiver = Arc::clone(&receiver);
        tasks.spawn(async move {
            loop {
                let Some(ops) = receiver.lock().await.recv().await else {
                    break;
                };
                store.write(ops).await.expect("write");
            }
        });
    }
    for start in (0..total).step_by(BATCH) {
        let ops = (start..(start + BATCH).min(total))
            .map(|n| WriteOp::Create {
                write: observation(n),
                if_none_exist: None,
            })
            .collect();
        sender.send(ops).await.expect("send");
    }
    drop(sender);
    while tasks.join_next().await.is_some() {}
    let elapsed = started.elapsed();
    println!(
        "ingest: {total} resources in {:.1} s = {:.0} resources/s \
         ({clients} clients, {} transactions)",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        store.stats().transactions
    );
    // The writer thread is the bottleneck of ingest; its CPU time says what the store could do on
    // an otherwise idle core, whatever else the machine is running.
    if let Some(cpu) = writer_cpu_seconds() {
        println!(
            "ingest: writer thread CPU {cpu:.1} s = {:.0} resources per writer-CPU-second",
            total as f64 / cpu
        );
    }
}

/// User + system CPU time of the writer thread, from `/proc` (Linux only).
fn writer_cpu_seconds() -> Option<f64> {
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let task = task.ok()?.path();
        let name = std::fs::read_to_string(task.join("comm")).ok()?;
        if name.trim() != "store-sqlite-wr" {
            continue;
        }
        let stat = std::fs::read_to_string(task.join("stat")).ok()?;
        // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        return Some(ticks / 100.0);
    }
    None
}

async fn token_search(store: &Arc<SqliteStore>, total: usize) {
    for (label, make) in [
        (
            "identifier (1 match)",
            Box::new(|n: usize| token_query("identifier", "urn:bulk", &format!("obs-{n}")))
                as Box<dyn Fn(usize) -> SearchQuery>,
        ),
        (
            "code (first page of ~total/500)",
            Box::new(|n: usize| {
                token_query("code", "http://loinc.org", &format!("{}-0", n % CODES))
            }),
        ),
    ] {
        let mut latencies = Vec::with_capacity(2000);
        for round in 0..2000 {
            let query = make((round * 7919) % total);
            let started = Instant::now();
            let page = store.search(&query).await.expect("search");
            latencies.push(started.elapsed());
            assert!(!page.matches.is_empty(), "{label}: no match for {query:?}");
        }
        report(&format!("token search by {label}"), &mut latencies);
    }
}

async fn reads_by_id(store: &Arc<SqliteStore>, total: usize) {
    let reads = 100_000;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..16 {
        let store = Arc::clone(store);
        tasks.spawn(async move {
            for n in 0..reads / 16 {
                let id = format!("o{}", (worker * 104_729 + n * 7919) % total);
                let found = store.read("Observation", &id).await.expect("read");
                assert!(found.is_some(), "{id}");
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = started.elapsed();
    println!(
        "reads by id: {reads} in {:.2} s = {:.0} reads/s (16 concurrent tasks)",
        elapsed.as_secs_f64(),
        reads as f64 / elapsed.as_secs_f64()
    );
}

fn report(label: &str, latencies: &mut [Duration]) {
    latencies.sort();
    let at = |quantile: f64| {
        latencies[((latencies.len() as f64 * quantile) as usize).min(latencies.len() - 1)]
    };
    println!(
        "{label}: p50 {:?}, p99 {:?}, max {:?}",
        at(0.50),
        at(0.99),
        at(1.0)
    );
}

fn token_query(param: &str, system: &str, code: &str) -> SearchQuery {
    SearchQuery {
        types: vec!["Observation".to_owned()],
        filters: vec![vec![Condition::Match {
            param: param.to_owned(),
            test: ValueTest::Token {
                system: TokenSystem::Is(system.to_owned()),
                code: Some(code.to_owned()),
            },
        }]],
        count: 20,
        ..SearchQuery::default()
    }
}

fn entry(param: &str, value: IndexValue) -> IndexEntry {
    IndexEntry {
        param: param.to_owned(),
        value,
    }
}

fn token(param: &str, system: &str, code: String) -> IndexEntry {
    entry(
        param,
        IndexValue::Token {
            system: Some(system.to_owned()),
            code: Some(code),
            text: None,
        },
    )
}

/// A synthetic Observation with 15 index entries.
fn observation(n: usize) -> ResourceWrite {
    let id = format!("o{n}");
    let patient = format!("p{}", n % PATIENTS);
    let code = format!("{}-0", n % CODES);
    let effective = 1_600_000_000_000_000 + (n as i64) * 60_000_000;
    let body = json!({
        "resourceType": "Observation",
        "id": id,
        "identifier": [{ "system": "urn:bulk", "value": format!("obs-{n}") }],
        "status": "final",
        "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs" }] }],
        "code": { "coding": [{ "system": "http://loinc.org", "code": code, "display": "Synthetic measurement" }] },
        "subject": { "reference": format!("Patient/{patient}") },
        "encounter": { "reference": format!("Encounter/e{}", n / 10) },
        "effectiveDateTime": "2020-09-13T12:26:40Z",
        "valueQuantity": { "value": (n % 200) as f64 / 2.0, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg" },
        "note": [{ "text": "synthetic" }]
    });
    let index = vec![
        token("identifier", "urn:bulk", format!("obs-{n}")),
        token(
            "status",
            "http://hl7.org/fhir/observation-status",
            "final".to_owned(),
        ),
        token(
            "category",
            "http://terminology.hl7.org/CodeSystem/observation-category",
            "vital-signs".to_owned(),
        ),
        token("code", "http://loinc.org", code.clone()),
        token("combo-code", "http://loinc.org", code),
        token("_profile", "urn:profile", "bulk".to_owned()),
        entry(
            "subject",
            IndexValue::Reference {
                target_type: Some("Patient".to_owned()),
                target_id: Some(patient.clone()),
                url: None,
            },
        ),
        entry(
            "patient",
            IndexValue::Reference {
                target_type: Some("Patient".to_owned()),
                target_id: Some(patient.clone()),
                url: None,
            },
        ),
        entry(
            "encounter",
            IndexValue::Reference {
                target_type: Some("Encounter".to_owned()),
                target_id: Some(format!("e{}", n / 10)),
                url: None,
            },
        ),
        entry(
            "date",
            IndexValue::Date {
                low: effective,
                high: effective + 999_999,
            },
        ),
        entry(
            "value-quantity",
            IndexValue::Quantity {
                value: (n % 200) as f64 / 2.0,
                system: Some("http://unitsofmeasure.org".to_owned()),
                code: Some("kg".to_owned()),
                unit: Some("kg".to_owned()),
            },
        ),
        entry(
            "note",
            IndexValue::String {
                normalized: "synthetic".to_owned(),
                exact: "synthetic".to_owned(),
            },
        ),
        entry(
            "code-text",
            IndexValue::String {
                normalized: "synthetic measurement".to_owned(),
                exact: "Synthetic measurement".to_owned(),
            },
        ),
        entry(
            "value-number",
            IndexValue::Number {
                value: (n % 200) as f64 / 2.0,
            },
        ),
        entry(
            "_source",
            IndexValue::Uri {
                value: "urn:bulk:generator".to_owned(),
            },
        ),
    ];
    ResourceWrite {
        resource_type: "Observation".to_owned(),
        id,
        body,
        index,
        compartments: vec![patient],
    }
}
