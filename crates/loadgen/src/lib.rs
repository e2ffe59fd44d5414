//! `loadgen`: the load driver. It replays realistic traffic against a running tsunagu over HTTP,
//! with real tokens: facilities submitting JP-CLINS Bundles, clinicians and pharmacists reading
//! with the patient's consent, patients reading their record and their access history, emergency
//! accesses, and denied attempts; in closed loop (`--connections`) or open loop (`--rate`, on a
//! fixed schedule, timed from it); and reports per class throughput, latency percentiles
//! (HDR histograms), errors by status and the server's memory and CPU, as a table, a JSON document
//! and an SVG chart. docs/benchmarks.md, "Load driver", is the manual.
//!
//! A crate of its own rather than a `tsunagu bench` subcommand: it is a *client* of the service
//! and talks to it only through HTTP (it depends on `auth` for the client side of the token
//! protocols, `synth` for the people and `jp` for one identifier system, never on `app`, `store`
//! or `server`), so it can run on another machine than the server, and its HTTP client and
//! histograms stay out of the server binary.
//!
//! - `setup`: organisations, client systems, the people, patient accounts and consents
//!   (idempotent); `tokens`: tokens obtained and renewed as the traffic needs them;
//! - `mix`: the request classes and their weights; `run`: closed and open loop; `http`: one
//!   keep-alive connection (hyper);
//! - `stats`, `report`, `svg`: what was measured, the JSON and table, the chart;
//! - `server`: spawning the server, reading its `/proc` figures.

pub mod http;
pub mod mix;
pub mod report;
pub mod run;
pub mod server;
pub mod setup;
pub mod stats;
pub mod svg;
pub mod tokens;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use clap::Parser;

/// The command line (`loadgen --help`).
#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    about = "Realistic mixed traffic against a running tsunagu, over HTTP with real tokens",
    after_help = "docs/benchmarks.md, \"Load driver\", explains the workload, the setup and every field of the JSON results."
)]
pub struct Args {
    /// The server's origin (FHIR is under /fhir). Ignored with --spawn.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The server's data directory: its registry.json and patients.json (unless --registry or
    /// --patients name them), and with --spawn every data file of the server.
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
    /// The server's registry file (default <data>/registry.json).
    #[arg(long)]
    pub registry: Option<PathBuf>,
    /// The server's patient directory file (default <data>/patients.json).
    #[arg(long)]
    pub patients: Option<PathBuf>,
    /// Where the driver keeps its client keys and patients' cards (default <data>/loadgen).
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// The server's process id, to sample its memory and CPU (with --spawn, known).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Start the server: `BIN serve --listen 127.0.0.1:<free port> --database … <data files in
    /// --data> [SERVE-ARGS after --]`, and stop it at the end.
    #[arg(long, value_name = "BIN")]
    pub spawn: Option<PathBuf>,
    /// With --spawn: the database (default sqlite://<data>/tsunagu.db).
    #[arg(long)]
    pub database: Option<String>,
    /// With --spawn: how long the server may take to become ready (e.g. loading --demo).
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    pub ready_timeout: Duration,
    /// With --spawn: more arguments for `serve` (e.g. `-- --demo --rate-limit 100000`).
    #[arg(last = true, value_name = "SERVE-ARGS")]
    pub serve_args: Vec<OsString>,

    /// Closed loop: this many connections, each issuing operations back to back (default 32
    /// without --rate).
    #[arg(long, conflicts_with = "rate")]
    pub connections: Option<usize>,
    /// Open loop: this many operations per second on a fixed schedule.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Open loop: most operations in flight; one due when all are busy is dropped (an error).
    #[arg(long, default_value_t = 256)]
    pub max_in_flight: usize,
    /// Measured time (`30s`, `500ms`, `2m`).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Load before the measurement, not recorded (tokens, caches, connections).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Longest a request may take before it counts as a `timeout` error.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Weights of the operations, `name=weight,...` over the defaults (docs: "The mix").
    #[arg(long)]
    pub mix: Option<String>,
    /// Worker threads of the driver's runtime (it shares the machine with the server).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,

    /// People of the synthetic population the readers read (submitted in setup if the server
    /// does not have them).
    #[arg(long, default_value_t = 100)]
    pub people: u64,
    /// The synthetic population's seed.
    #[arg(long, default_value_t = 20_261_125)]
    pub seed: u64,
    /// The population's observation day (YYYY-MM-DD).
    #[arg(long, default_value = "2026-11-25")]
    pub as_of: String,
    /// Reading hospitals, clinics and pharmacies (each its own client system).
    #[arg(long, default_value_t = 3)]
    pub hospitals: usize,
    #[arg(long, default_value_t = 3)]
    pub clinics: usize,
    #[arg(long, default_value_t = 3)]
    pub pharmacies: usize,
    /// Users per reading organisation (each with its own token).
    #[arg(long, default_value_t = 4)]
    pub users: usize,
    /// PBKDF2 iterations of the new patient accounts' password hashes: the server's default
    /// (logins cost what they cost in production); at least 1000.
    #[arg(long, default_value_t = auth::PasswordHash::DEFAULT_ITERATIONS)]
    pub password_iterations: u32,
    /// Only the setup, no load.
    #[arg(long)]
    pub setup_only: bool,
    /// Do not obtain every token before the warm-up: each identity signs in on first use, during
    /// the load (its token requests are then measured).
    #[arg(long)]
    pub no_sign_in: bool,

    /// Where the JSON results go.
    #[arg(long, default_value = "loadgen.json")]
    pub json: PathBuf,
    /// Where the SVG chart goes.
    #[arg(long, default_value = "loadgen.svg")]
    pub svg: PathBuf,
}

/// `loadgen ARGS...` (the first item is the program name), as the binary runs it: parses, runs
/// on its own runtime, prints the table, writes the JSON and the SVG.
///
/// # Errors
/// Bad arguments, or anything that stopped the setup or the run.
pub fn main_with_args<I, T>(args: I) -> anyhow::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args = Args::try_parse_from(args)?;
    run_blocking(args)
}

/// Runs parsed arguments on a runtime of `--threads` workers.
///
/// # Errors
/// As [`main_with_args`].
pub fn run_blocking(args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(drive(args))
}

async fn drive(args: Args) -> anyhow::Result<()> {
    let started_at = SystemTime::now();
    let mix = match &args.mix {
        Some(spec) => mix::Mix::parse(spec)?,
        None => mix::Mix::default(),
    };
    let as_of = synth::Date::parse(&args.as_of).context("--as-of is YYYY-MM-DD")?;
    anyhow::ensure!(
        args.password_iterations >= auth::PasswordHash::MIN_ITERATIONS,
        "--password-iterations is at least {}",
        auth::PasswordHash::MIN_ITERATIONS
    );
    let mode = match args.rate {
        Some(rate) => {
            anyhow::ensure!(rate > 0.0, "--rate must be positive");
            run::Mode::Open {
                rate,
                max_in_flight: args.max_in_flight,
            }
        }
        None => run::Mode::Closed {
            connections: args.connections.unwrap_or(32),
        },
    };
    let spawned = match &args.spawn {
        Some(binary) => {
            let database = args
                .database
                .clone()
                .unwrap_or_else(|| format!("sqlite://{}", args.data.join("tsunagu.db").display()));
            eprintln!("starting {} serve …", binary.display());
            let spawned = server::Spawned::start(
                binary,
                &args.data,
                &database,
                &args.serve_args,
                args.ready_timeout,
            )
            .await?;
            eprintln!(
                "server ready at {} (pid {}), log {}",
                spawned.url,
                spawned.pid(),
                spawned.log.display()
            );
            Some(spawned)
        }
        None => None,
    };
    let base_url = spawned
        .as_ref()
        .map_or_else(|| args.url.clone(), |spawned| spawned.url.clone());
    let server_pid = spawned
        .as_ref()
        .map(server::Spawned::pid)
        .or(args.server_pid);
    let target = http::Target::parse(&base_url)?;
    let setup_options = setup::SetupOptions {
        registry: args
            .registry
            .clone()
            .unwrap_or_else(|| args.data.join("registry.json")),
        patients: args
            .patients
            .clone()
            .unwrap_or_else(|| args.data.join("patients.json")),
        state: args
            .state
            .clone()
            .unwrap_or_else(|| args.data.join("loadgen")),
        seed: args.seed,
        as_of,
        people: args.people,
        hospitals: args.hospitals,
        clinics: args.clinics,
        pharmacies: args.pharmacies,
        users: args.users,
        password_iterations: args.password_iterations,
        concurrency: 4,
    };
    eprintln!("setup: {} people, seed {} …", args.people, args.seed);
    let world = setup::prepare(&setup_options, &target, args.timeout).await?;
    let report = &world.report;
    eprintln!(
        "setup done in {:.1} s: {} organisations and {} clients added; {} people found, {} submitted ({} Bundles); {} accounts added ({:.1} s of password hashing), {} reused; {} consents added, {} found",
        report.seconds,
        report.organisations_added,
        report.clients_added,
        report.people_found,
        report.people_submitted,
        report.bundles_submitted,
        report.accounts_added,
        report.password_hashing_seconds,
        report.accounts_reused,
        report.consents_added,
        report.consents_found,
    );
    if args.setup_only {
        if let Some(spawned) = spawned {
            spawned.stop()?;
        }
        return Ok(());
    }
    let setup_report = world.report.clone();
    let world = Arc::new(world);
    let run_options = run::RunOptions {
        mode,
        warmup: args.warmup,
        duration: args.duration,
        timeout: args.timeout,
        mix: mix.clone(),
        seed: args.seed ^ 0x6c6f_6164,
        server_pid,
        sign_in: !args.no_sign_in,
    };
    eprintln!(
        "load: {:?}, {:?} warm-up then {:?} measured …",
        mode, args.warmup, args.duration
    );
    let measured = run::run(world, &setup_options, &run_options, &target).await?;
    let info = report::RunInfo {
        base_url,
        server_pid,
        spawned: args.spawn.is_some(),
        mode,
        warmup: args.warmup,
        duration: args.duration,
        timeout: args.timeout,
        mix,
        seed: args.seed,
        as_of: args.as_of.clone(),
        people: args.people,
        client_threads: args.threads.max(1),
        started_at,
    };
    let results = report::results(&info, &setup_report, &measured);
    print!("{}", report::table(&results));
    write(&args.json, &serde_json::to_string_pretty(&results)?)?;
    write(&args.svg, &svg::chart(&results))?;
    eprintln!(
        "results: {} and {}",
        args.json.display(),
        args.svg.display()
    );
    if let Some(spawned) = spawned {
        spawned.stop()?;
    }
    Ok(())
}

fn write(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// `30s`, `500ms`, `2m`, `1.5s`, or a bare number of seconds.
///
/// # Errors
/// Anything else.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(number) = text.strip_suffix("ms") {
        (number, 0.001)
    } else if let Some(number) = text.strip_suffix('s') {
        (number, 1.0)
    } else if let Some(number) = text.strip_suffix('m') {
        (number, 60.0)
    } else {
        (text, 1.0)
    };
    number
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|value| value.is_finite() && *value >= 0.0)
        .map(|value| Duration::from_secs_f64(value * scale))
        .ok_or_else(|| format!("{text:?} is not a duration such as 30s, 500ms or 2m"))
}

#[cfg(test)]
mod tests;
