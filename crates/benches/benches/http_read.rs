//! Benchmark of reads by id over HTTP/1.1 on loopback: the real server (`server::run`, with its
//! middleware, content negotiation and rendering) over a preloaded store (SQLite by default, or a
//! fresh database on a PostgreSQL server with `--database postgres://...`), driven by a small
//! keep-alive load generator in the same process (`benches::http`) with many connections for a
//! fixed time. Then, for comparison, the same driver against an axum handler that returns a fixed
//! Patient without touching the app: the ceiling of this machine, HTTP stack and client.
//!
//! `--security` adds the server's security layer (`benches::security`, built as `tsunagu serve`
//! builds it): every request carries a bearer token of a hospital doctor, the token is verified
//! and its scopes checked, the read is decided under the patient's consent to the doctor's
//! organisation, and one audit entry is committed to the tamper-evident log before the response
//! leaves. `--security compare` measures the same reads with it off and on and states the cost;
//! `--security breakdown` adds a run reading the hospital's own patients (no consent lookup) and
//! in-process timings of each part.
//!
//! ```text
//! cargo bench -p benches --bench http_read
//! cargo bench -p benches --bench http_read -- --seconds 30 --connections 64
//! cargo bench -p benches --bench http_read -- --security compare
//! cargo bench -p benches --bench http_read -- --security breakdown --no-baseline
//! scripts/with-postgres.sh sh -c 'cargo bench -p benches --bench http_read -- --database "$TEST_POSTGRES_URL"'
//! ```
//!
//! Client and server share the machine's cores: every request costs client CPU too. Prints a table
//! and writes `<target>/bench-results/http_read.json`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use app::Preconditions;
use axum::body::Bytes;
use axum::http::header;
use benches::cpu::{MachineTimes, MachineUse, NamedBusy, ThreadTimes};
use benches::http::{Connection, get_request, get_request_with};
use benches::load::{LoadPlan, load};
use benches::measure::{Latencies, Run};
use benches::population::{self, Shape};
use benches::report::{self, Table, ms, thousands, us};
use benches::rng::Rng;
use benches::security::{self, SecurityFixture, TokenSource};
use benches::setup::{Database, System};
use clap::{Parser, ValueEnum};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

/// The issue's target.
const TARGET_READS_PER_SECOND: f64 = 15_000.0;

/// Reads checked one by one before a run is measured: each must answer 200.
const PREFLIGHT_READS: usize = 3;

// No `Debug`: `database` may carry a password.
#[derive(Parser)]
#[command(about = "Reads by id over HTTP on loopback against the real server")]
struct Args {
    /// The store: `sqlite` (a file in a temporary directory), or the admin URL of a PostgreSQL
    /// server whose user may create databases (`postgres://USER:PASSWORD@HOST:PORT/DATABASE`): the
    /// benchmark creates its own database there and drops it at the end.
    // A string parsed after clap: clap's errors would echo the URL.
    #[arg(long, default_value = "sqlite")]
    database: String,
    /// Patients in the store (read targets).
    #[arg(long, default_value_t = 10_000)]
    patients: usize,
    /// Lab results per Patient also loaded (not read; they only make the store bigger).
    #[arg(long, default_value_t = 0)]
    observations_per_patient: usize,
    /// Measured seconds per target server.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Unmeasured seconds before measuring.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Keep-alive connections, each with one request outstanding.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Server (tokio) worker threads (default: one per CPU).
    #[arg(long)]
    server_threads: Option<usize>,
    /// Client (load driver) worker threads.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// The server's security layer (bearer token, scopes, consent decision, audit log).
    #[arg(long, value_enum, default_value_t = SecurityMode::Off)]
    security: SecurityMode,
    /// Calls per in-process part timed by `--security breakdown`.
    #[arg(long, default_value_t = 5_000)]
    component_operations: usize,
    /// Skip the bare-axum baseline.
    #[arg(long)]
    no_baseline: bool,
    /// Parent directory of the temporary SQLite store (and of the audit log).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Where to write the JSON results (default: `<target>/bench-results/http_read.json`).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// Which tsunagu servers to drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SecurityMode {
    /// Without the security layer, as `server::AppState::new` (requests are an unidentified
    /// facility).
    Off,
    /// With the security layer only: a hospital doctor reads patients who consented to the
    /// hospital.
    On,
    /// Off and on, one after the other on the same store, and the cost.
    Compare,
    /// Compare, plus on reading the hospital's own patients (no consent lookup) and in-process
    /// timings of token verification, the consent decision and audit appends.
    Breakdown,
}

/// One way of running the tsunagu server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// `AppState::new`: no token, no decision, no audit.
    Off,
    /// With security, as a doctor of a hospital reading patients under their consent.
    Consented,
    /// With security, as a doctor of the population's own hospital (no consent lookup).
    Own,
}

impl Variant {
    fn label(self) -> &'static str {
        match self {
            Variant::Off => "tsunagu, security off",
            Variant::Consented => "tsunagu, security on (consented patients)",
            Variant::Own => "tsunagu, security on (own patients, no consent lookup)",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Variant::Off => "tsunagu",
            Variant::Consented => "tsunagu_security_on",
            Variant::Own => "tsunagu_security_on_own_patients",
        }
    }
}

impl SecurityMode {
    fn variants(self) -> Vec<Variant> {
        match self {
            SecurityMode::Off => vec![Variant::Off],
            SecurityMode::On => vec![Variant::Consented],
            SecurityMode::Compare => vec![Variant::Off, Variant::Consented],
            SecurityMode::Breakdown => vec![Variant::Off, Variant::Own, Variant::Consented],
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let machine = report::machine();
    report::print_machine(&machine);
    let cpus = std::thread::available_parallelism().map_or(2, usize::from);
    let server_threads = args.server_threads.unwrap_or(cpus);
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(server_threads)
        .thread_name("server")
        .enable_all()
        .build()?;
    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .thread_name("client")
        .enable_all()
        .build()?;

    // One pooled connection per keep-alive connection: each has one request in flight.
    let database: Database = args.database.parse().map_err(anyhow::Error::msg)?;
    let system = server_runtime.block_on(System::open(
        &database,
        args.work_dir.as_deref(),
        args.connections,
    ))?;
    let backend = system.backend.clone();
    println!("store: {}", backend.describe());
    let app = system.app.clone();
    let shape = Shape {
        observations_per_patient: args.observations_per_patient,
    };
    println!(
        "loading {} Patients ({} lab results each)…",
        thousands(args.patients as f64),
        shape.observations_per_patient
    );
    let loaded = server_runtime.block_on(async {
        app.update(
            "Organization",
            population::HOSPITAL_ID,
            population::hospital(),
            &Preconditions::default(),
        )
        .await?;
        let plan = LoadPlan {
            shape,
            groups: args.patients,
            bundle_entries: 1000,
            tasks: 1,
            progress: false,
        };
        let loaded = load(&app, plan).await?;
        system.settle().await?;
        anyhow::Ok(loaded)
    })?;

    let variants = args.security.variants();
    let secured = variants.iter().any(|variant| *variant != Variant::Off);
    let fixture = if secured {
        let fixture = server_runtime.block_on(SecurityFixture::new(args.work_dir.as_deref()))?;
        println!(
            "granting {} consents to {} (one Consent each, 32 tasks)…",
            thousands(loaded.patients.len() as f64),
            security::READER_ORGANISATION
        );
        let took = server_runtime.block_on(async {
            let took =
                security::grant_consents(&app, &loaded.patients, security::READER_ORGANISATION, 32)
                    .await?;
            system.settle().await?;
            anyhow::Ok(took)
        })?;
        println!("  done in {:.1} s", took.as_secs_f64());
        Some(fixture)
    } else {
        None
    };

    let sample = server_runtime.block_on(app.read("Patient", &loaded.patients[0]))?;
    let paths: Arc<Vec<String>> = Arc::new(
        loaded
            .patients
            .iter()
            .map(|id| format!("/fhir/Patient/{id}"))
            .collect(),
    );
    let drive = Drive {
        connections: args.connections,
        warmup: Duration::from_secs(args.warmup),
        measure: Duration::from_secs(args.seconds),
    };
    println!(
        "driving {} keep-alive connections for {} s (+{} s warm-up) per server: {}; server: {server_threads} worker threads, client: {} — client and server share the {cpus} CPUs",
        drive.connections,
        args.seconds,
        args.warmup,
        variants
            .iter()
            .map(|variant| variant.label())
            .collect::<Vec<_>>()
            .join(", "),
        args.client_threads
    );

    let mut runs: Vec<(Variant, Driven)> = Vec::new();
    for variant in &variants {
        let mut state = server::AppState::new(app.clone(), server::ServerSettings::default());
        let mut secured_by = None;
        if let Some(fixture) = &fixture {
            let client = match variant {
                Variant::Off => None,
                Variant::Consented => Some(&fixture.reader),
                Variant::Own => Some(&fixture.own),
            };
            if let Some(client) = client {
                state = state.with_security(fixture.security());
                secured_by = Some(Secured {
                    tokens: fixture.token_source(client),
                    audit: Arc::clone(&fixture.audit),
                });
            }
        }
        let driven = serve_and_drive(
            &server_runtime,
            &client_runtime,
            &drive,
            Arc::clone(&paths),
            secured_by.as_ref(),
            |listener, shutdown| {
                Box::pin(async move {
                    let _ = server::run(listener, state, async move {
                        let _ = shutdown.await;
                    })
                    .await;
                })
            },
        )
        .with_context(|| format!("{} failed", variant.label()))?;
        runs.push((*variant, driven));
    }

    let baseline = if args.no_baseline {
        None
    } else {
        let body = Bytes::from(sample.json.clone());
        let router = axum::Router::new().route(
            "/fhir/Patient/{id}",
            axum::routing::get(move || {
                let body = body.clone();
                async move { ([(header::CONTENT_TYPE, "application/fhir+json")], body) }
            }),
        );
        Some(serve_and_drive(
            &server_runtime,
            &client_runtime,
            &drive,
            Arc::clone(&paths),
            None,
            |listener, shutdown| {
                Box::pin(async move {
                    let shutdown = async move {
                        let _ = shutdown.await;
                    };
                    let _ = axum::serve(listener, router)
                        .with_graceful_shutdown(shutdown)
                        .await;
                })
            },
        )?)
    };

    let components = match (&fixture, args.security) {
        (Some(fixture), SecurityMode::Breakdown) => {
            println!(
                "timing the parts of a secured read in-process ({} calls each)…",
                thousands(args.component_operations as f64)
            );
            Some(server_runtime.block_on(security::components(
                fixture,
                &app,
                &loaded.patients,
                args.component_operations,
            ))?)
        }
        _ => None,
    };

    // The results table.
    let mut table = Table::new(
        format!(
            "GET /fhir/Patient/{{id}} over HTTP/1.1 on loopback, {} Patients in {}, {} connections",
            thousands(args.patients as f64),
            backend.label,
            drive.connections
        ),
        &[
            "server",
            "requests/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
            "errors",
            "server CPU µs/req",
            "audit appends/batch",
        ],
    );
    let row = |label: &str, driven: &Driven| {
        let run = &driven.run;
        vec![
            label.to_owned(),
            thousands(run.per_second()),
            ms(run.latency.p50),
            ms(run.latency.p90),
            ms(run.latency.p99),
            ms(run.latency.p999),
            ms(run.latency.max),
            run.errors.to_string(),
            format!("{:.0}", driven.server_cpu_per_request().as_secs_f64() * 1e6),
            driven.audit.map_or_else(
                || "-".to_owned(),
                |audit| format!("{:.1}", audit.per_batch()),
            ),
        ]
    };
    for (variant, driven) in &runs {
        table.row(row(
            &format!("{} ({})", variant.label(), backend.label),
            driven,
        ));
    }
    if let Some(baseline) = &baseline {
        table.row(row("bare axum, fixed body (ceiling)", baseline));
    }
    table.print();
    println!(
        "  response body: {} bytes per Patient; client and server share {cpus} CPUs; server CPU = every thread but the load driver's, warm-up included",
        sample.json.len()
    );
    let labelled: Vec<(&str, &Driven)> = runs
        .iter()
        .map(|(variant, driven)| (variant.label(), driven))
        .chain(baseline.iter().map(|driven| ("baseline", driven)))
        .collect();
    for (label, driven) in &labelled {
        if let Some(error) = &driven.run.first_error {
            println!("  {label}: first error: {error}");
        }
        let other: Vec<String> = driven
            .statuses
            .iter()
            .filter(|(status, _)| **status != 200)
            .map(|(status, count)| format!("{count} × {status}"))
            .collect();
        if !other.is_empty() {
            println!(
                "  {label}: ERRORS, answers other than 200 (counted as errors, not throughput): {}",
                other.join(", ")
            );
        }
    }
    for (variant, driven) in &runs {
        let rate = driven.run.per_second();
        println!(
            "  {}: target ≥ {} reads/s: {}",
            variant.label(),
            thousands(TARGET_READS_PER_SECOND),
            if rate >= TARGET_READS_PER_SECOND {
                "met".to_owned()
            } else {
                format!(
                    "MISSED ({:.0}% of target)",
                    100.0 * rate / TARGET_READS_PER_SECOND
                )
            }
        );
    }

    // The cost of security, against the run without it.
    let off = runs
        .iter()
        .find(|(variant, _)| *variant == Variant::Off)
        .map(|(_, driven)| driven);
    let mut costs = Vec::new();
    if let Some(off) = off {
        for (variant, on) in runs.iter().filter(|(variant, _)| *variant != Variant::Off) {
            let cost = Cost::between(off, on);
            println!(
                "  cost of security ({}): throughput ×{:.2} ({:+.0}%), p50 {:+.3} ms, p99 {:+.3} ms, server CPU per request {:.0} → {:.0} µs ({:+.0} µs)",
                variant.label(),
                cost.throughput_ratio,
                100.0 * (cost.throughput_ratio - 1.0),
                cost.added_p50_ms,
                cost.added_p99_ms,
                cost.server_cpu_off_us,
                cost.server_cpu_on_us,
                cost.server_cpu_on_us - cost.server_cpu_off_us,
            );
            costs.push((*variant, cost));
        }
    }
    for (variant, driven) in &runs {
        if let Some(audit) = &driven.audit {
            println!(
                "  audit log during {}: {} appends in {} batches ({:.1} appends per batch, one transaction, signed tree head and fsync each; {} failed batches), {:.2} appends per response",
                variant.label(),
                thousands(audit.appends as f64),
                thousands(audit.batches as f64),
                audit.per_batch(),
                audit.failed_batches,
                audit.appends as f64 / driven.completed.max(1) as f64,
            );
        }
    }
    if let Some(fixture) = &fixture {
        println!(
            "  alerts raised (unusual access: one doctor reading many patients, once per window): {}",
            fixture.alerts_raised()
        );
    }

    if let Some(components) = &components {
        let mut table = Table::new(
            "The parts of a secured read, in-process (one call at a time unless said; a latency is CPU time unless it waits for an fsync)",
            &[
                "part",
                "tasks",
                "calls/s",
                "mean µs",
                "p50 µs",
                "p99 µs",
                "appends/batch",
            ],
        );
        for part in components {
            table.row(vec![
                part.label.clone(),
                part.tasks.to_string(),
                thousands(part.run.per_second()),
                us(part.run.latency.mean),
                us(part.run.latency.p50),
                us(part.run.latency.p99),
                part.audit.map_or_else(
                    || "-".to_owned(),
                    |(appends, batches)| format!("{:.1}", appends as f64 / batches.max(1) as f64),
                ),
            ]);
        }
        table.print();
    }

    for (variant, driven) in &runs {
        report::print_busy(
            &format!(
                "CPU use by thread while driving {} (client = load driver, server = tokio workers and blocking store reads)",
                variant.label()
            ),
            &driven.busy,
            driven.wall,
        );
        report::print_machine_use(variant.label(), &driven.machine);
    }
    if let Some(baseline) = &baseline {
        report::print_busy(
            "CPU use by thread while driving bare axum",
            &baseline.busy,
            baseline.wall,
        );
        report::print_machine_use("the bare axum run", &baseline.machine);
    }

    let off_rate = off.map(|driven| driven.run.per_second());
    let mut results = json!({
        "benchmark": "http_read",
        "unix_time": report::unix_time(),
        "machine": machine,
        "backend": backend.to_json(),
        "parameters": {
            "patients": args.patients,
            "observations_per_patient": shape.observations_per_patient,
            "connections": drive.connections,
            "seconds": args.seconds,
            "warmup_s": args.warmup,
            "server_threads": server_threads,
            "client_threads": args.client_threads,
            "client_and_server_share_cpus": true,
            "security": format!("{:?}", args.security).to_lowercase(),
        },
        "tsunagu": null,
        "baseline_axum_fixed_body": baseline.as_ref().map(Driven::to_json),
        "target": {
            "reads_per_second": TARGET_READS_PER_SECOND,
            "met": off_rate.map(|rate| rate >= TARGET_READS_PER_SECOND),
        },
    });
    for (variant, driven) in &runs {
        results[variant.key()] = driven.to_json();
    }
    if let Some(fixture) = &fixture {
        results["security"] = json!({
            "reader_organisation": security::READER_ORGANISATION,
            "reader_institution_number": security::READER_INSTITUTION,
            "own_organisation": security::OWN_ORGANISATION,
            "scope": security::SCOPE,
            "consents_granted": loaded.patients.len(),
            "alerts_raised": fixture.alerts_raised(),
            "cost": costs
                .iter()
                .map(|(variant, cost)| (variant.key().to_owned(), cost.to_json()))
                .collect::<serde_json::Map<String, Value>>(),
            "components": components
                .as_ref()
                .map(|parts| parts.iter().map(security::Component::to_json).collect::<Vec<_>>()),
        });
    }
    report::write_json(&report::results_path("http_read", args.json), &results)?;
    let failed: Vec<&str> = labelled
        .iter()
        .filter(|(_, driven)| driven.run.errors > 0)
        .map(|(label, _)| *label)
        .collect();
    if !failed.is_empty() {
        bail!(
            "runs with errors (their figures are not throughput): {}",
            failed.join(", ")
        );
    }
    Ok(())
}

/// What a secured run needs: where its tokens come from, and the audit log to count appends in.
struct Secured {
    tokens: TokenSource,
    audit: Arc<audit::AuditLog>,
}

/// How to drive a server.
struct Drive {
    connections: usize,
    warmup: Duration,
    measure: Duration,
}

type ServeFuture = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// Starts a server on 127.0.0.1:0 on the server runtime (built by `serve` from the listener and a
/// receiver that fires at shutdown), checks that the first reads answer 200, drives it from the
/// client runtime (with a bearer token on every request when `secured`, refreshed at half its
/// lifetime), then shuts it down.
fn serve_and_drive(
    server_runtime: &Runtime,
    client_runtime: &Runtime,
    drive: &Drive,
    paths: Arc<Vec<String>>,
    secured: Option<&Secured>,
    serve: impl FnOnce(TcpListener, oneshot::Receiver<()>) -> ServeFuture,
) -> anyhow::Result<Driven> {
    let listener = server_runtime
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .context("cannot listen on loopback")?;
    let address = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = server_runtime.spawn(serve(listener, stopped));
    let stop_server = |stop: oneshot::Sender<()>| {
        let _ = stop.send(());
        server_runtime.block_on(async {
            // Connections are closed by now; give the server a moment to finish, no more.
            let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
        });
    };

    let authorization = match secured {
        Some(secured) => {
            let bearer = client_runtime.block_on(secured.tokens.fetch())?;
            let header = Arc::new(RwLock::new(bearer.header));
            // Access tokens live five minutes: a longer run gets a new one at half the lifetime.
            let refresh = {
                let (tokens, header) = (secured.tokens.clone(), Arc::clone(&header));
                let every = (bearer.lifetime / 2).max(Duration::from_secs(1));
                client_runtime.spawn(async move {
                    loop {
                        tokio::time::sleep(every).await;
                        match tokens.fetch().await {
                            Ok(fresh) => {
                                if let Ok(mut current) = header.write() {
                                    *current = fresh.header;
                                }
                            }
                            Err(error) => eprintln!("cannot refresh the access token: {error:#}"),
                        }
                    }
                })
            };
            Some((header, refresh))
        }
        None => None,
    };
    let header = authorization.as_ref().map(|(header, _)| Arc::clone(header));
    let audit_before = secured.map(|secured| secured.audit.stats());

    let preflight = client_runtime.block_on(preflight(address, &paths, header.as_ref()));
    if let Err(error) = preflight {
        stop_server(stop);
        return Err(error);
    }
    let (before, machine_before) = (ThreadTimes::snapshot(), MachineTimes::snapshot());
    let load = client_runtime.block_on(drive_load(address, paths, drive, header));
    let busy = ThreadTimes::snapshot().since(&before);
    let machine = MachineTimes::snapshot().since(&machine_before);
    if let Some((_, refresh)) = authorization {
        refresh.abort();
    }
    stop_server(stop);
    let audit = match (secured, audit_before) {
        (Some(secured), Some(before)) => {
            let after = secured.audit.stats();
            Some(AuditDelta {
                appends: after.appends - before.appends,
                batches: after.batches - before.batches,
                failed_batches: after.failed_batches - before.failed_batches,
            })
        }
        _ => None,
    };
    Ok(Driven {
        run: load.run,
        completed: load.completed + PREFLIGHT_READS as u64,
        statuses: load.statuses,
        busy,
        machine,
        wall: drive.warmup + drive.measure,
        audit,
    })
}

/// Reads the first targets one at a time: each must answer 200 (not 401, 403 or 404), or the run
/// would measure refusals.
async fn preflight(
    address: SocketAddr,
    paths: &[String],
    authorization: Option<&Arc<RwLock<String>>>,
) -> anyhow::Result<()> {
    let stream = TcpStream::connect(address)
        .await
        .context("cannot connect to the server")?;
    let mut connection = Connection::new(stream);
    for path in paths.iter().take(PREFLIGHT_READS) {
        let request = request(path, authorization);
        let response = connection
            .send(&request)
            .await
            .with_context(|| format!("GET {path}"))?;
        if response.status != 200 {
            bail!(
                "GET {path} answered {} before the run: every read must be a permitted 200",
                response.status
            );
        }
    }
    Ok(())
}

/// The request for `path`, with the current bearer token when there is one.
fn request(path: &str, authorization: Option<&Arc<RwLock<String>>>) -> Vec<u8> {
    match authorization.and_then(|header| header.read().ok()) {
        Some(header) => get_request_with(path, &[("Authorization", header.as_str())]),
        None => get_request(path),
    }
}

/// Audit log counters during one run.
#[derive(Debug, Clone, Copy)]
struct AuditDelta {
    appends: u64,
    batches: u64,
    failed_batches: u64,
}

impl AuditDelta {
    fn per_batch(&self) -> f64 {
        self.appends as f64 / self.batches.max(1) as f64
    }
}

/// A measured run and the CPU use by thread over its whole duration (warm-up included).
struct Driven {
    run: Run,
    /// Responses received over the whole run (warm-up and pre-flight included), whatever their
    /// status.
    completed: u64,
    /// Responses in the measured window by status.
    statuses: BTreeMap<u16, u64>,
    busy: Vec<NamedBusy>,
    machine: MachineUse,
    wall: Duration,
    /// The audit log's appends and batches during the run (secured runs).
    audit: Option<AuditDelta>,
}

impl Driven {
    /// CPU time of every thread but the load driver's (the server's workers and blocking threads,
    /// the store's and the audit log's writers), per response, warm-up included.
    fn server_cpu_per_request(&self) -> Duration {
        let server: Duration = self
            .busy
            .iter()
            .filter(|named| named.name != "client")
            .map(|named| named.cpu)
            .sum();
        server / u32::try_from(self.completed.max(1)).unwrap_or(u32::MAX)
    }

    fn to_json(&self) -> Value {
        let run = &self.run;
        json!({
            "requests_per_second": run.per_second(),
            "requests": run.operations,
            "errors": run.errors,
            "first_error": run.first_error,
            "statuses": self.statuses.iter().map(|(status, count)| (status.to_string(), json!(count))).collect::<serde_json::Map<String, Value>>(),
            "responses_including_warmup": self.completed,
            "measured_s": run.elapsed.as_secs_f64(),
            "latency": run.latency.to_json(),
            "mean_body_bytes": run.mean_output(),
            "server_cpu_us_per_request": self.server_cpu_per_request().as_secs_f64() * 1e6,
            "audit": self.audit.map(|audit| json!({
                "appends": audit.appends,
                "batches": audit.batches,
                "failed_batches": audit.failed_batches,
                "appends_per_batch": audit.per_batch(),
                "appends_per_response": audit.appends as f64 / self.completed.max(1) as f64,
            })),
            "cpu_by_thread": report::busy_json(&self.busy, self.wall),
            "machine_cpu": report::machine_use_json(&self.machine),
        })
    }
}

/// What security costs, from a run without it to one with it.
struct Cost {
    throughput_ratio: f64,
    added_p50_ms: f64,
    added_p99_ms: f64,
    added_p999_ms: f64,
    server_cpu_off_us: f64,
    server_cpu_on_us: f64,
}

impl Cost {
    fn between(off: &Driven, on: &Driven) -> Cost {
        let millis = |duration: Duration| duration.as_secs_f64() * 1000.0;
        Cost {
            throughput_ratio: on.run.per_second() / off.run.per_second().max(1e-9),
            added_p50_ms: millis(on.run.latency.p50) - millis(off.run.latency.p50),
            added_p99_ms: millis(on.run.latency.p99) - millis(off.run.latency.p99),
            added_p999_ms: millis(on.run.latency.p999) - millis(off.run.latency.p999),
            server_cpu_off_us: off.server_cpu_per_request().as_secs_f64() * 1e6,
            server_cpu_on_us: on.server_cpu_per_request().as_secs_f64() * 1e6,
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "throughput_ratio": self.throughput_ratio,
            "added_p50_ms": self.added_p50_ms,
            "added_p99_ms": self.added_p99_ms,
            "added_p99_9_ms": self.added_p999_ms,
            "server_cpu_us_per_request_off": self.server_cpu_off_us,
            "server_cpu_us_per_request_on": self.server_cpu_on_us,
        })
    }
}

/// What [`drive_load`] saw.
struct Load {
    run: Run,
    completed: u64,
    statuses: BTreeMap<u16, u64>,
}

/// Runs `drive.connections` keep-alive connections, each issuing reads of random paths back to
/// back (with `authorization` when given), and measures the requests that start after the warm-up
/// and finish within the window. Only 200 answers count as throughput; any other is an error.
async fn drive_load(
    address: SocketAddr,
    paths: Arc<Vec<String>>,
    drive: &Drive,
    authorization: Option<Arc<RwLock<String>>>,
) -> Load {
    let started = Instant::now();
    let measure_from = started + drive.warmup;
    let end = measure_from + drive.measure;
    let mut tasks = Vec::with_capacity(drive.connections);
    for connection_number in 0..drive.connections {
        let paths = Arc::clone(&paths);
        let authorization = authorization.clone();
        tasks.push(tokio::spawn(async move {
            let mut random = Rng::new(0x6874_7470 + connection_number as u64);
            let mut latencies = Latencies::with_capacity(4096);
            let (mut errors, mut body_bytes, mut first_error) = (0usize, 0u64, None::<String>);
            let mut completed = 0u64;
            let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
            let mut connection = None;
            while Instant::now() < end {
                let current = match &mut connection {
                    Some(current) => current,
                    None => match TcpStream::connect(address).await {
                        Ok(stream) => {
                            let _ = stream.set_nodelay(true);
                            connection.insert(Connection::new(stream))
                        }
                        Err(error) => {
                            errors += 1;
                            first_error.get_or_insert_with(|| format!("connect: {error}"));
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    },
                };
                let path: &String = random.pick(paths.as_slice());
                let request = request(path, authorization.as_ref());
                let sent = Instant::now();
                let outcome = current.send(&request).await;
                let done = Instant::now();
                let measured = sent >= measure_from && done <= end;
                if outcome.is_ok() {
                    completed += 1;
                }
                match outcome {
                    Ok(response) if response.status == 200 => {
                        if measured {
                            *statuses.entry(200).or_default() += 1;
                            latencies.record(done - sent);
                            body_bytes += response.body_bytes as u64;
                        }
                    }
                    Ok(response) => {
                        if measured {
                            *statuses.entry(response.status).or_default() += 1;
                            errors += 1;
                            first_error
                                .get_or_insert_with(|| format!("status {}", response.status));
                        }
                    }
                    Err(error) => {
                        connection = None;
                        if measured {
                            errors += 1;
                            first_error.get_or_insert_with(|| format!("io: {error}"));
                        }
                    }
                }
            }
            (
                latencies,
                errors,
                body_bytes,
                first_error,
                completed,
                statuses,
            )
        }));
    }
    let mut latencies = Latencies::default();
    let (mut errors, mut body_bytes, mut first_error) = (0, 0, None);
    let mut completed = 0;
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    for task in tasks {
        if let Ok((
            task_latencies,
            task_errors,
            task_bytes,
            task_error,
            task_completed,
            task_statuses,
        )) = task.await
        {
            latencies.append(task_latencies);
            errors += task_errors;
            body_bytes += task_bytes;
            first_error = first_error.or(task_error);
            completed += task_completed;
            for (status, count) in task_statuses {
                *statuses.entry(status).or_default() += count;
            }
        } else {
            errors += 1;
        }
    }
    Load {
        run: Run {
            tasks: drive.connections,
            operations: latencies.len(),
            errors,
            first_error,
            elapsed: drive.measure,
            latency: latencies.summary(),
            output: body_bytes,
        },
        completed,
        statuses,
    }
}
