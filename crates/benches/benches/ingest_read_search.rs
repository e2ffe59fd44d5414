//! Benchmark of the use cases through `app::App` over a store: transaction ingest (Bundles of 1,000
//! entries, every search index), single creates, reads by id, and three searches. The store is
//! SQLite in a temporary directory by default, or a fresh database on a PostgreSQL server
//! (`--database postgres://...`, created for the run and dropped at its end).
//!
//! ```text
//! cargo bench -p benches --bench ingest_read_search                          # 100,000 resources
//! cargo bench -p benches --bench ingest_read_search -- --resources 1000000   # the 1M figure
//! scripts/with-postgres.sh sh -c 'cargo bench -p benches --bench ingest_read_search -- --database "$TEST_POSTGRES_URL"'
//! ```
//!
//! Prints tables and writes `<target>/bench-results/ingest_read_search.json`. See
//! `docs/benchmarks.md` for what each figure means.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use app::{App, Preconditions, SearchInput};
use benches::cpu::{MachineTimes, MachineUse, ThreadTimes};
use benches::load::{Breakdown, LoadPlan, Loaded, load};
use benches::measure::{Run, millis, run_warm};
use benches::population::{self, LAB_TESTS, LOINC, Shape};
use benches::report::{self, LATENCY_HEADER, Table, latency_row, ms, thousands, us};
use benches::rng::index_from;
use benches::setup::{CallTime, Database, System};
use clap::Parser;
use serde_json::{Value, json};

/// The issue's targets.
const TARGET_INGEST_PER_SECOND: f64 = 10_000.0;
const TARGET_SEARCH_P99: Duration = Duration::from_millis(10);

// No `Debug`: `database` may carry a password.
#[derive(Parser)]
#[command(about = "Ingest, create, read and search through app::App over SQLite or PostgreSQL")]
struct Args {
    /// The store: `sqlite` (a file in a temporary directory), or the admin URL of a PostgreSQL
    /// server whose user may create databases (`postgres://USER:PASSWORD@HOST:PORT/DATABASE`): the
    /// benchmark creates its own database there and drops it at the end.
    // A string parsed after clap: clap's errors would echo the URL.
    #[arg(long, default_value = "sqlite")]
    database: String,
    /// Resources to load: Patients, each followed by its lab results.
    #[arg(long, default_value_t = 100_000)]
    resources: usize,
    /// Lab-result Observations per Patient.
    #[arg(long, default_value_t = population::DEFAULT_OBSERVATIONS_PER_PATIENT)]
    observations_per_patient: usize,
    /// Most entries per transaction Bundle (whole Patient groups).
    #[arg(long, default_value_t = 1000)]
    bundle_entries: usize,
    /// Bundles in flight at once during the load (1: one client posting one after another).
    #[arg(long, default_value_t = 1)]
    ingest_tasks: usize,
    /// Single creates timed with `--tasks` concurrent tasks (a tenth of them one at a time).
    #[arg(long, default_value_t = 5_000)]
    creates: usize,
    /// Reads by id timed with `--tasks` concurrent tasks (a fifth of them one at a time).
    #[arg(long, default_value_t = 100_000)]
    reads: usize,
    /// Queries per search, one at a time and again with `--search-tasks` concurrent tasks.
    #[arg(long, default_value_t = 2_000)]
    queries: usize,
    /// Concurrent tasks for creates and reads.
    #[arg(long, default_value_t = 32)]
    tasks: usize,
    /// Concurrent tasks for searches.
    #[arg(long, default_value_t = 8)]
    search_tasks: usize,
    /// Tokio worker threads (default: one per CPU).
    #[arg(long)]
    threads: Option<usize>,
    /// Parent directory of the temporary SQLite store (default: the system's temp directory).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Where to write the JSON results (default: `<target>/bench-results/ingest_read_search.json`).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    runtime.block_on(run(args, threads))
}

async fn run(args: Args, threads: usize) -> anyhow::Result<()> {
    let machine = report::machine();
    report::print_machine(&machine);
    let shape = Shape {
        observations_per_patient: args.observations_per_patient,
    };
    // One pooled connection per store call the benchmark can have in flight.
    let connections = args.tasks.max(args.search_tasks).max(args.ingest_tasks);
    let database: Database = args.database.parse().map_err(anyhow::Error::msg)?;
    let system = System::open(&database, args.work_dir.as_deref(), connections).await?;
    let backend = system.backend.clone();
    println!("store: {}", backend.describe());
    let app = system.app.clone();
    app.update(
        "Organization",
        population::HOSPITAL_ID,
        population::hospital(),
        &Preconditions::default(),
    )
    .await
    .context("cannot write the hospital")?;

    // Where ingest time goes, step by step, on a sample measured before the load.
    let breakdown = Breakdown::measure(shape, 0..shape.groups_per_bundle(args.bundle_entries), 3)?;

    let groups = shape.groups_for(args.resources);
    println!(
        "\nloading {} resources ({groups} Patients with {} lab results each) in transaction Bundles of up to {} entries, {} in flight, {threads} worker threads",
        thousands((groups * shape.group_size()) as f64),
        shape.observations_per_patient,
        shape.groups_per_bundle(args.bundle_entries) * shape.group_size(),
        args.ingest_tasks,
    );
    system.store_time.reset();
    let plan = LoadPlan {
        shape,
        groups,
        bundle_entries: args.bundle_entries,
        tasks: args.ingest_tasks,
        progress: true,
    };
    let (cpu_before, machine_before) = (ThreadTimes::snapshot(), MachineTimes::snapshot());
    let loaded = load(&app, plan).await?;
    let load_busy = ThreadTimes::snapshot().since(&cpu_before);
    let load_machine = MachineTimes::snapshot().since(&machine_before);
    let store_write = system.store_time.write.total();
    let ingest = ingest_report(
        &loaded,
        &breakdown,
        store_write,
        system.database_bytes().await?,
        args.ingest_tasks,
        &backend.label,
    );
    let ingest_rate = loaded.rate();
    let loaded_elapsed = loaded.elapsed;
    report::print_busy(
        "CPU use by thread during the load",
        &load_busy,
        loaded.elapsed,
    );
    report::print_machine_use("the load", &load_machine);
    system.settle().await?;

    let targets = Arc::new(Targets {
        shape,
        patients: loaded.patients,
        observations: loaded.observations,
    });
    let mut results = Vec::new();
    let use_cases_started = MachineTimes::snapshot();

    let creates = [(1, args.creates / 10), (args.tasks, args.creates)];
    // A count of zero skips that measurement (e.g. to time only the load).
    for (index, (tasks, operations)) in creates.into_iter().enumerate() {
        if operations == 0 {
            continue;
        }
        let run = measure(
            &system,
            &system.store_time.write,
            tasks,
            operations / 20,
            operations,
            10 + index as u64,
            {
                let (app, targets) = (app.clone(), Arc::clone(&targets));
                move |random| create(app.clone(), Arc::clone(&targets), random)
            },
        )
        .await;
        results.push((
            "create",
            "Observation (one resource per transaction)".to_owned(),
            run,
        ));
    }
    let reads = [(1, args.reads / 5), (args.tasks, args.reads)];
    for (index, (tasks, operations)) in reads.into_iter().enumerate() {
        if operations == 0 {
            continue;
        }
        let run = measure(
            &system,
            &system.store_time.read,
            tasks,
            operations / 20,
            operations,
            20 + index as u64,
            {
                let (app, targets) = (app.clone(), Arc::clone(&targets));
                move |random| read(app.clone(), Arc::clone(&targets), random)
            },
        )
        .await;
        results.push((
            "read",
            "by random id (Patient or Observation)".to_owned(),
            run,
        ));
    }
    for query in [
        Query::CodeAndPatient,
        Query::PatientCategorySorted,
        Query::Code,
    ] {
        for (index, tasks) in [1, args.search_tasks].into_iter().enumerate() {
            if args.queries == 0 {
                continue;
            }
            let run = measure(
                &system,
                &system.store_time.search,
                tasks,
                args.queries / 10,
                args.queries,
                30 + index as u64,
                {
                    let (app, targets) = (app.clone(), Arc::clone(&targets));
                    move |random| search(app.clone(), Arc::clone(&targets), query, random)
                },
            )
            .await;
            results.push((query.name(), query.shape().to_owned(), run));
        }
    }

    let resources = targets.patients.len() + targets.observations.len();
    let mut table = Table::new(
        format!(
            "App use cases on a {} store of {} resources",
            backend.label,
            thousands(resources as f64)
        ),
        &LATENCY_HEADER,
    );
    for (name, _, measured) in &results {
        table.row(latency_row(name, &measured.run, Some(measured.in_store)));
    }
    let use_cases_machine = MachineTimes::snapshot().since(&use_cases_started);
    if !results.is_empty() {
        table.print();
        report::print_machine_use("these measurements", &use_cases_machine);
        println!("  queries: {}", Query::legend());
    }
    for (name, _, measured) in results.iter().filter(|(name, _, _)| name.starts_with('q')) {
        if measured.run.tasks == 1 {
            println!(
                "  {name}: {:.1} matches per query on average",
                measured.run.mean_output()
            );
        }
    }
    for (name, _, measured) in &results {
        if let Some(error) = &measured.run.first_error {
            println!(
                "  {name} with {} tasks failed {} times; first error: {error}",
                measured.run.tasks, measured.run.errors
            );
        }
    }

    let verdicts = verdicts(ingest_rate, &results, resources);
    let mut table = Table::new(
        format!(
            "Targets (issue: A FHIR R4 server on an embedded store), measured on {}",
            backend.label
        ),
        &["target", "measured", "verdict"],
    );
    for (target, measured, verdict) in &verdicts {
        table.row(vec![target.clone(), measured.clone(), verdict.clone()]);
    }
    table.print();
    println!("  (the HTTP read target is measured by `cargo bench -p benches --bench http_read`)");

    let results_json = json!({
        "benchmark": "ingest_read_search",
        "unix_time": report::unix_time(),
        "machine": machine,
        "backend": backend.to_json(),
        "parameters": {
            "resources": resources,
            "patients": targets.patients.len(),
            "observations_per_patient": shape.observations_per_patient,
            "bundle_entries": shape.groups_per_bundle(args.bundle_entries) * shape.group_size(),
            "ingest_tasks": args.ingest_tasks,
            "worker_threads": threads,
            "tasks": args.tasks,
            "search_tasks": args.search_tasks,
        },
        "ingest": ingest,
        "ingest_cpu_by_thread": report::busy_json(&load_busy, loaded_elapsed),
        "ingest_machine_cpu": report::machine_use_json(&load_machine),
        "use_cases_machine_cpu": report::machine_use_json(&use_cases_machine),
        "use_cases": results.iter().map(|(name, shape, measured)| json!({
            "name": name,
            "what": shape,
            "run": measured.run.to_json(),
            "store_ms_per_op": millis(measured.in_store),
            "machine_cpu": report::machine_use_json(&measured.machine),
        })).collect::<Vec<_>>(),
        "targets": verdicts.iter().map(|(target, measured, verdict)| json!({"target": target, "measured": measured, "verdict": verdict})).collect::<Vec<_>>(),
    });
    report::write_json(
        &report::results_path("ingest_read_search", args.json),
        &results_json,
    )?;
    Ok(())
}

/// The ids the operations pick from.
struct Targets {
    shape: Shape,
    patients: Vec<String>,
    observations: Vec<String>,
}

/// A run and the mean time per operation spent inside the store.
struct Measured {
    run: Run,
    in_store: Duration,
    /// How the CPUs were shared during this measurement (warm-up included).
    machine: MachineUse,
}

/// Runs one measurement and attributes the store time of `calls` to it.
async fn measure<F, Fut>(
    system: &System,
    calls: &CallTime,
    tasks: usize,
    warmup: usize,
    operations: usize,
    seed: u64,
    operation: F,
) -> Measured
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<u64>> + Send + 'static,
{
    system.store_time.reset();
    let machine_before = MachineTimes::snapshot();
    // The warm-up is counted too, so compute the store time per call, not per measured operation.
    let run = run_warm(tasks, warmup, operations, seed, operation).await;
    let in_store = calls.total() / u32::try_from(calls.calls().max(1)).unwrap_or(u32::MAX);
    let machine = MachineTimes::snapshot().since(&machine_before);
    Measured {
        run,
        in_store,
        machine,
    }
}

async fn create(app: App, targets: Arc<Targets>, random: u64) -> anyhow::Result<u64> {
    let number = index_from(random, targets.patients.len());
    let subject = format!("Patient/{}", targets.patients[number]);
    // Result numbers past the loaded ones: new results for an existing patient.
    let index = targets.shape.observations_per_patient + index_from(random >> 32, 1000);
    let body = population::observation(number, index, &subject);
    app.create("Observation", body, None).await?;
    Ok(1)
}

async fn read(app: App, targets: Arc<Targets>, random: u64) -> anyhow::Result<u64> {
    let position = index_from(random, targets.patients.len() + targets.observations.len());
    let resource = match targets.observations.get(position) {
        Some(id) => app.read("Observation", id).await?,
        None => {
            app.read(
                "Patient",
                &targets.patients[position - targets.observations.len()],
            )
            .await?
        }
    };
    std::hint::black_box(resource);
    Ok(1)
}

/// The searches timed.
#[derive(Debug, Clone, Copy)]
enum Query {
    CodeAndPatient,
    PatientCategorySorted,
    Code,
}

impl Query {
    fn name(self) -> &'static str {
        match self {
            Query::CodeAndPatient => "q1 code+patient",
            Query::PatientCategorySorted => "q2 patient+category",
            Query::Code => "q3 code",
        }
    }

    fn shape(self) -> &'static str {
        match self {
            Query::CodeAndPatient => "Observation?code=http://loinc.org|X&patient=Patient/Y",
            Query::PatientCategorySorted => "Observation?patient=Y&category=laboratory&_sort=-date",
            Query::Code => "Observation?code=http://loinc.org|X&_count=20",
        }
    }

    fn legend() -> String {
        [
            Query::CodeAndPatient,
            Query::PatientCategorySorted,
            Query::Code,
        ]
        .map(|query| {
            format!(
                "{} = {}",
                query.name().split(' ').next().unwrap_or_default(),
                query.shape()
            )
        })
        .join("; ")
    }

    /// The query pairs, for a random patient (and for q1 one of the codes that patient has).
    fn params(self, targets: &Targets, random: u64) -> Vec<(String, String)> {
        let number = index_from(random, targets.patients.len());
        let patient = &targets.patients[number];
        let pair = |name: &str, value: String| (name.to_owned(), value);
        match self {
            Query::CodeAndPatient => {
                let index = index_from(random >> 32, targets.shape.observations_per_patient.max(1));
                let test = population::lab_test(number, index);
                vec![
                    pair("code", format!("{LOINC}|{}", test.loinc)),
                    pair("patient", format!("Patient/{patient}")),
                ]
            }
            Query::PatientCategorySorted => {
                vec![
                    pair("patient", patient.clone()),
                    pair("category", "laboratory".into()),
                    pair("_sort", "-date".into()),
                ]
            }
            Query::Code => {
                let test = &LAB_TESTS[index_from(random >> 32, LAB_TESTS.len())];
                vec![
                    pair("code", format!("{LOINC}|{}", test.loinc)),
                    pair("_count", "20".into()),
                ]
            }
        }
    }
}

async fn search(app: App, targets: Arc<Targets>, query: Query, random: u64) -> anyhow::Result<u64> {
    let input = SearchInput {
        types: vec!["Observation".into()],
        params: query.params(&targets, random),
        ..SearchInput::default()
    };
    let outcome = app.search(&input).await?;
    Ok(outcome.page.matches.len() as u64)
}

/// The ingest figures: printed, and returned as JSON.
fn ingest_report(
    loaded: &Loaded,
    breakdown: &Breakdown,
    store_write: Duration,
    disk_bytes: u64,
    tasks: usize,
    backend: &str,
) -> Value {
    let resources = loaded.resources();
    let per_resource = loaded.mean_per_resource();
    let store_per_resource = store_write / u32::try_from(resources.max(1)).unwrap_or(u32::MAX);
    let mut table = Table::new(
        format!(
            "Transaction ingest of {} resources into {backend}",
            thousands(resources as f64)
        ),
        &["", "value"],
    );
    table.row(vec![
        "Bundles".into(),
        thousands(loaded.bundles.len() as f64),
    ]);
    table.row(vec![
        "wall time s".into(),
        format!("{:.1}", loaded.elapsed.as_secs_f64()),
    ]);
    table.row(vec![
        "resources/s (whole load)".into(),
        thousands(loaded.rate()),
    ]);
    table.row(vec![
        "resources/s (last 10% of Bundles)".into(),
        thousands(loaded.tail_rate(0.1)),
    ]);
    table.row(vec![
        "Bundle time p50 ms".into(),
        ms(bundle_percentile(loaded, 50.0)),
    ]);
    table.row(vec![
        "Bundle time max ms".into(),
        ms(bundle_percentile(loaded, 100.0)),
    ]);
    table.row(vec![
        "index entries per resource".into(),
        format!("{:.1}", breakdown.index_entries),
    ]);
    table.row(vec![
        "database on disk MiB".into(),
        format!("{:.0}", disk_bytes as f64 / 1024.0 / 1024.0),
    ]);
    table.print();

    // Where one resource's ingest time goes. Parse, validation and extraction were timed on their
    // own on a sample; the store write is timed around every store call during the load; the rest
    // of process_bundle (planning, reference rewriting, canonical ordering, copies) is the remainder.
    let above = breakdown.parse + breakdown.validate + breakdown.extract;
    let rest = per_resource.saturating_sub(above + store_per_resource);
    let mut table = Table::new(
        format!(
            "Where ingest time goes, per resource (µs){}",
            if tasks > 1 {
                " — steps overlap with several Bundles in flight"
            } else {
                ""
            }
        ),
        &["step", "µs", "share"],
    );
    let share = |part: Duration| {
        format!(
            "{:.0}%",
            100.0 * part.as_secs_f64() / per_resource.as_secs_f64().max(1e-12)
        )
    };
    for (step, time) in [
        ("parse Bundle JSON (fhir::parse_json)", breakdown.parse),
        ("validate (fhir::validate_resource)", breakdown.validate),
        ("index + compartments (search::Registry)", breakdown.extract),
        (
            "store write (Store::write, one transaction)",
            store_per_resource,
        ),
        ("rest of process_bundle", rest),
    ] {
        table.row(vec![step.into(), us(time), share(time)]);
    }
    table.row(vec![
        "total (parse + process_bundle)".into(),
        us(per_resource),
        "100%".into(),
    ]);
    table.row(vec![
        "client side, not counted: generate + serialise".into(),
        us(breakdown.generate + breakdown.serialize),
        String::new(),
    ]);
    table.print();

    json!({
        "resources": resources,
        "bundles": loaded.bundles.len(),
        "tasks": tasks,
        "elapsed_s": loaded.elapsed.as_secs_f64(),
        "per_second": loaded.rate(),
        "per_second_last_10_percent": loaded.tail_rate(0.1),
        "bundle_p50_ms": millis(bundle_percentile(loaded, 50.0)),
        "bundle_max_ms": millis(bundle_percentile(loaded, 100.0)),
        "index_entries_per_resource": breakdown.index_entries,
        "database_bytes": disk_bytes,
        "per_resource_us": {
            "total": per_resource.as_secs_f64() * 1e6,
            "parse": breakdown.parse.as_secs_f64() * 1e6,
            "validate": breakdown.validate.as_secs_f64() * 1e6,
            "index_and_compartments": breakdown.extract.as_secs_f64() * 1e6,
            "store_write": store_per_resource.as_secs_f64() * 1e6,
            "rest_of_process_bundle": rest.as_secs_f64() * 1e6,
            "client_generate_and_serialize": (breakdown.generate + breakdown.serialize).as_secs_f64() * 1e6,
        },
    })
}

fn bundle_percentile(loaded: &Loaded, percent: f64) -> Duration {
    let mut times: Vec<Duration> = loaded.bundles.iter().map(|bundle| bundle.took).collect();
    times.sort_unstable();
    benches::measure::percentile(&times, percent)
}

/// (target, measured, verdict) for the targets this benchmark measures.
fn verdicts(
    ingest_rate: f64,
    results: &[(&str, String, Measured)],
    resources: usize,
) -> Vec<(String, String, String)> {
    let mut verdicts = vec![(
        format!(
            "ingest ≥ {} resources/s",
            thousands(TARGET_INGEST_PER_SECOND)
        ),
        format!("{} resources/s", thousands(ingest_rate)),
        verdict(
            ingest_rate >= TARGET_INGEST_PER_SECOND,
            ingest_rate / TARGET_INGEST_PER_SECOND,
        ),
    )];
    let scale = if resources >= 1_000_000 {
        String::new()
    } else {
        format!(
            " (store of {} resources, not 1M)",
            thousands(resources as f64)
        )
    };
    for (name, _, measured) in results
        .iter()
        .filter(|(name, _, _)| name.starts_with("q1") || name.starts_with("q3"))
    {
        let p99 = measured.run.latency.p99;
        verdicts.push((
            format!(
                "token search p99 < {} ms: {name}, {} task(s){scale}",
                TARGET_SEARCH_P99.as_millis(),
                measured.run.tasks
            ),
            format!("p99 {} ms", ms(p99)),
            verdict(
                p99 < TARGET_SEARCH_P99,
                TARGET_SEARCH_P99.as_secs_f64() / p99.as_secs_f64().max(1e-9),
            ),
        ));
    }
    verdicts
}

/// "met" or "MISSED (x% of target)"; `ratio` is measured/target for rates and target/measured for
/// latencies, so below 1 is a miss either way.
fn verdict(met: bool, ratio: f64) -> String {
    if met {
        "met".to_owned()
    } else {
        format!("MISSED ({:.0}% of target)", ratio * 100.0)
    }
}
