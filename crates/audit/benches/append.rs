//! Audit append throughput and latency with group commit: 1, 8 and 32 concurrent appenders
//! (tokio tasks calling `AuditLog::append`, as request handlers will), each for a fixed time on a
//! fresh log file on the target directory's disk (WAL, `synchronous=FULL`: every batch is an
//! fsync), then `verify` over the result. Exact percentiles; timings are printed, never asserted.
//!
//! `cargo bench -p audit --bench append` (seconds per run: `AUDIT_BENCH_SECONDS`, default 5).

use std::sync::Arc;
use std::time::{Duration, Instant};

use audit::{
    Action, Agent, AuditKey, AuditLog, AuditRecord, Decision, Interaction, OrganisationId, Outcome,
    PurposeOfUse, UtcTime, query_parameter_names, verify,
};

fn main() {
    let seconds: u64 = std::env::var("AUDIT_BENCH_SECONDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(5);
    let duration = Duration::from_secs(seconds);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    println!(
        "audit append: {seconds} s per run, record {} bytes, {} cores",
        record(0).to_canonical_bytes().unwrap().len(),
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    fsync_probe("before");
    println!(
        "{:>10} {:>10} {:>9} {:>9} {:>10} {:>10} {:>10} {:>10}",
        "appenders", "appends/s", "appends", "batches", "per batch", "p50 ms", "p99 ms", "max ms"
    );
    for appenders in [1usize, 8, 32] {
        run(&runtime, appenders, duration);
    }
    fsync_probe("after");
}

/// The disk's fsync latency now (4 KiB appended and fsynced, 200 times): the floor of a commit,
/// printed because the machine's disk is shared and its latency varies.
fn fsync_probe(when: &str) {
    use std::io::Write;
    let directory = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a temp dir");
    let mut file = std::fs::File::create(directory.path().join("probe")).expect("a file");
    let block = [0u8; 4096];
    let mut latencies: Vec<Duration> = (0..200)
        .map(|_| {
            let before = Instant::now();
            file.write_all(&block).expect("write");
            file.sync_data().expect("fsync");
            before.elapsed()
        })
        .collect();
    latencies.sort_unstable();
    println!(
        "disk {when}: 4 KiB write + fsync p50 {:.2} ms, p99 {:.2} ms",
        latencies[99].as_secs_f64() * 1000.0,
        latencies[197].as_secs_f64() * 1000.0
    );
}

fn run(runtime: &tokio::runtime::Runtime, appenders: usize, duration: Duration) {
    let directory = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a temp dir");
    let path = directory.path().join("audit.sqlite");
    let key = AuditKey::generate().expect("a key");
    let public_key = key.public_key();
    let log = Arc::new(AuditLog::open(&path, key).expect("an audit log"));
    let started = Instant::now();
    let mut latencies: Vec<Duration> = runtime.block_on(async {
        let tasks: Vec<_> = (0..appenders)
            .map(|appender| {
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut i = appender as u64;
                    while started.elapsed() < duration {
                        let before = Instant::now();
                        log.append(&record(i)).await.expect("append");
                        latencies.push(before.elapsed());
                        i += appenders as u64;
                    }
                    latencies
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.expect("appender"));
        }
        all
    });
    let elapsed = started.elapsed();
    let stats = log.stats();
    drop(log);
    latencies.sort_unstable();
    let percentile = |p: f64| {
        let index = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[index].as_secs_f64() * 1000.0
    };
    println!(
        "{:>10} {:>10.0} {:>9} {:>9} {:>10.1} {:>10.2} {:>10.2} {:>10.2}",
        appenders,
        stats.appends as f64 / elapsed.as_secs_f64(),
        stats.appends,
        stats.batches,
        stats.appends as f64 / stats.batches as f64,
        percentile(0.50),
        percentile(0.99),
        percentile(1.0),
    );
    let verify_started = Instant::now();
    let report = verify(&path, &public_key).expect("verify");
    let verify_elapsed = verify_started.elapsed();
    assert!(report.is_intact(), "{report}");
    println!(
        "{:>10} verify: {} entries, {} heads in {:.2} s ({:.0} entries/s)",
        "",
        report.entries,
        report.tree_heads,
        verify_elapsed.as_secs_f64(),
        report.entries as f64 / verify_elapsed.as_secs_f64()
    );
}

/// A typical search record (about 600 bytes canonical).
fn record(i: u64) -> AuditRecord {
    AuditRecord {
        recorded: UtcTime::now(),
        request_id: format!("{i:08x}-4b5a-6978-8796-a5b4c3d2e1f0"),
        agent: Agent {
            user_id: format!("user-{}", i % 500),
            display_name: "山田 太郎".to_owned(),
            role: "doctor".to_owned(),
            organisation: Some(OrganisationId::institution_number("1312345678")),
            client_id: Some("clinic-emr-1".to_owned()),
        },
        purpose_of_use: PurposeOfUse::Treatment,
        patient: Some(format!("patient-{}", i % 10_000)),
        action: Action {
            interaction: Interaction::SearchType,
            operation: None,
            resource_type: Some("Observation".to_owned()),
            resource_id: None,
            query: query_parameter_names("patient=x&code=y&_count=10"),
        },
        outcome: Outcome {
            decision: Decision::Permitted,
            http_status: 200,
        },
        emergency: false,
    }
}
