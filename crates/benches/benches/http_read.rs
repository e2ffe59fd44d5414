//! Benchmark of reads by id over HTTP/1.1 on loopback: the real server (`server::run`, with its
//! middleware, content negotiation and rendering) over a preloaded store (SQLite by default, or a
//! fresh database on a PostgreSQL server with `--database postgres://...`), driven by a small
//! keep-alive load generator in the same process (`benches::http`) with many connections for a
//! fixed time. Then, for comparison, the same driver against an axum handler that returns a fixed
//! Patient without touching the app: the ceiling of this machine, HTTP stack and client.
//!
//! ```text
//! cargo bench -p benches --bench http_read
//! cargo bench -p benches --bench http_read -- --seconds 30 --connections 64
//! scripts/with-postgres.sh sh -c 'cargo bench -p benches --bench http_read -- --database "$TEST_POSTGRES_URL"'
//! ```
//!
//! Client and server share the machine's cores: every request costs client CPU too. Prints a table
//! and writes `<target>/bench-results/http_read.json`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use app::Preconditions;
use axum::body::Bytes;
use axum::http::header;
use benches::cpu::{MachineTimes, MachineUse, NamedBusy, ThreadTimes};
use benches::http::{Connection, get_request};
use benches::load::{LoadPlan, load};
use benches::measure::{Latencies, Run};
use benches::population::{self, Shape};
use benches::report::{self, Table, ms, thousands};
use benches::rng::Rng;
use benches::setup::{Database, System};
use clap::Parser;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

/// The issue's target.
const TARGET_READS_PER_SECOND: f64 = 15_000.0;

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
    /// Skip the bare-axum baseline.
    #[arg(long)]
    no_baseline: bool,
    /// Parent directory of the temporary SQLite store.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Where to write the JSON results (default: `<target>/bench-results/http_read.json`).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
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
        "driving {} keep-alive connections for {} s (+{} s warm-up); server: {server_threads} worker threads, client: {} — client and server share the {cpus} CPUs",
        drive.connections, args.seconds, args.warmup, args.client_threads
    );

    let state = server::AppState::new(app.clone(), server::ServerSettings::default());
    let fhir = serve_and_drive(
        &server_runtime,
        &client_runtime,
        &drive,
        Arc::clone(&paths),
        |listener, shutdown| {
            Box::pin(async move {
                let _ = server::run(listener, state, async move {
                    let _ = shutdown.await;
                })
                .await;
            })
        },
    )?;

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
            paths,
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
        ],
    );
    let row = |label: &str, run: &Run| {
        vec![
            label.to_owned(),
            thousands(run.per_second()),
            ms(run.latency.p50),
            ms(run.latency.p90),
            ms(run.latency.p99),
            ms(run.latency.p999),
            ms(run.latency.max),
            run.errors.to_string(),
        ]
    };
    table.row(row(
        &format!("tsunagu (server::run, {})", backend.label),
        &fhir.run,
    ));
    if let Some(baseline) = &baseline {
        table.row(row("bare axum, fixed body (ceiling)", &baseline.run));
    }
    table.print();
    println!(
        "  response body: {} bytes per Patient; client and server share {cpus} CPUs",
        sample.json.len()
    );
    for (label, driven) in [("tsunagu", Some(&fhir)), ("baseline", baseline.as_ref())] {
        if let Some(error) = driven.and_then(|driven| driven.run.first_error.as_ref()) {
            println!("  {label}: first error: {error}");
        }
    }
    let rate = fhir.run.per_second();
    println!(
        "  target ≥ {} reads/s: {}",
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

    report::print_busy(
        "CPU use by thread while driving tsunagu (client = load driver, server = tokio workers and blocking store reads)",
        &fhir.busy,
        fhir.wall,
    );
    report::print_machine_use("the tsunagu run", &fhir.machine);
    if let Some(baseline) = &baseline {
        report::print_busy(
            "CPU use by thread while driving bare axum",
            &baseline.busy,
            baseline.wall,
        );
        report::print_machine_use("the bare axum run", &baseline.machine);
    }

    let run_json = |driven: &Driven| {
        let run = &driven.run;
        json!({
            "requests_per_second": run.per_second(),
            "requests": run.operations,
            "errors": run.errors,
            "first_error": run.first_error,
            "measured_s": run.elapsed.as_secs_f64(),
            "latency": run.latency.to_json(),
            "mean_body_bytes": run.mean_output(),
            "cpu_by_thread": report::busy_json(&driven.busy, driven.wall),
            "machine_cpu": report::machine_use_json(&driven.machine),
        })
    };
    let results = json!({
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
        },
        "tsunagu": run_json(&fhir),
        "baseline_axum_fixed_body": baseline.as_ref().map(run_json),
        "target": {"reads_per_second": TARGET_READS_PER_SECOND, "met": rate >= TARGET_READS_PER_SECOND},
    });
    report::write_json(&report::results_path("http_read", args.json), &results)?;
    Ok(())
}

/// How to drive a server.
struct Drive {
    connections: usize,
    warmup: Duration,
    measure: Duration,
}

type ServeFuture = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// Starts a server on 127.0.0.1:0 on the server runtime (built by `serve` from the listener and a
/// receiver that fires at shutdown), drives it from the client runtime, then shuts it down.
fn serve_and_drive(
    server_runtime: &Runtime,
    client_runtime: &Runtime,
    drive: &Drive,
    paths: Arc<Vec<String>>,
    serve: impl FnOnce(TcpListener, oneshot::Receiver<()>) -> ServeFuture,
) -> anyhow::Result<Driven> {
    let listener = server_runtime
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .context("cannot listen on loopback")?;
    let address = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = server_runtime.spawn(serve(listener, stopped));
    let (before, machine_before) = (ThreadTimes::snapshot(), MachineTimes::snapshot());
    let run = client_runtime.block_on(drive_load(address, paths, drive));
    let busy = ThreadTimes::snapshot().since(&before);
    let machine = MachineTimes::snapshot().since(&machine_before);
    let _ = stop.send(());
    server_runtime.block_on(async {
        // Connections are closed by now; give the server a moment to finish, no more.
        let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    });
    Ok(Driven {
        run,
        busy,
        machine,
        wall: drive.warmup + drive.measure,
    })
}

/// A measured run and the CPU use by thread over its whole duration (warm-up included).
struct Driven {
    run: Run,
    busy: Vec<NamedBusy>,
    machine: MachineUse,
    wall: Duration,
}

/// Runs `drive.connections` keep-alive connections, each issuing reads of random paths back to
/// back, and measures the requests that start after the warm-up and finish within the window.
async fn drive_load(address: SocketAddr, paths: Arc<Vec<String>>, drive: &Drive) -> Run {
    let started = Instant::now();
    let measure_from = started + drive.warmup;
    let end = measure_from + drive.measure;
    let mut tasks = Vec::with_capacity(drive.connections);
    for connection_number in 0..drive.connections {
        let paths = Arc::clone(&paths);
        tasks.push(tokio::spawn(async move {
            let mut random = Rng::new(0x6874_7470 + connection_number as u64);
            let mut latencies = Latencies::with_capacity(4096);
            let (mut errors, mut body_bytes, mut first_error) = (0usize, 0u64, None::<String>);
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
                let request = get_request(path);
                let sent = Instant::now();
                let outcome = current.send(&request).await;
                let done = Instant::now();
                let measured = sent >= measure_from && done <= end;
                match outcome {
                    Ok(response) if response.status == 200 => {
                        if measured {
                            latencies.record(done - sent);
                            body_bytes += response.body_bytes as u64;
                        }
                    }
                    Ok(response) => {
                        if measured {
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
            (latencies, errors, body_bytes, first_error)
        }));
    }
    let mut latencies = Latencies::default();
    let (mut errors, mut body_bytes, mut first_error) = (0, 0, None);
    for task in tasks {
        if let Ok((task_latencies, task_errors, task_bytes, task_error)) = task.await {
            latencies.append(task_latencies);
            errors += task_errors;
            body_bytes += task_bytes;
            first_error = first_error.or(task_error);
        } else {
            errors += 1;
        }
    }
    Run {
        tasks: drive.connections,
        operations: latencies.len(),
        errors,
        first_error,
        elapsed: drive.measure,
        latency: latencies.summary(),
        output: body_bytes,
    }
}
