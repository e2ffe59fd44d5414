//! `tsunagu`: serves the FHIR API (`serve`) and runs the admin commands that work on the store
//! directly (`import`, `export`, `migrate`). Configuration is parsed and validated here, once, and
//! passed down as typed settings.

mod access;
mod demo;
mod import;
mod patients;
mod registry;
mod synth;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use store::{Store, SystemClock};

// No `Debug`: the database URL may carry a password, and nothing should be able to print it.
#[derive(Parser)]
#[command(
    name = "tsunagu",
    version,
    about = "Electronic medical record information sharing service (FHIR R4)"
)]
struct Cli {
    /// Where the data lives: `sqlite://PATH` (the embedded default) or
    /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE` (also `postgresql://`).
    #[arg(
        long,
        global = true,
        env = "TSUNAGU_DATABASE",
        default_value = "sqlite://data/tsunagu.db"
    )]
    database: String,
    /// Log format.
    #[arg(long, global = true, env = "TSUNAGU_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(flatten)]
    pool: PostgresPool,
    /// A JSON file of retention periods in days (`app::RetentionPolicy`'s fields, e.g.
    /// `{"labs_days": 730, "lts_days": 3650}`; the rest keep their defaults; docs/jp-clins.md).
    #[arg(
        long,
        global = true,
        env = "TSUNAGU_RETENTION_POLICY",
        value_name = "FILE"
    )]
    retention_policy: Option<PathBuf>,
    /// The registry of organisations and client systems (a JSON file; docs/auth.md).
    #[arg(
        long,
        global = true,
        env = "TSUNAGU_REGISTRY",
        default_value = "data/registry.json"
    )]
    registry: PathBuf,
    /// A streaming read replica of the PostgreSQL database (`postgres://...`) that serves searches
    /// and history; reads by id and every write stay on `--database`.
    #[arg(long, global = true, env = "TSUNAGU_READ_REPLICA", value_name = "URL")]
    read_replica: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// The PostgreSQL connection pool (ignored for `sqlite://` URLs). The defaults are
/// `store_postgres::PostgresOptions::default()`'s; a unit test keeps them equal.
#[derive(Debug, Clone, Copy, Args)]
#[command(next_help_heading = "PostgreSQL pool (postgres:// URLs only)")]
struct PostgresPool {
    /// Most database connections open at once; requests beyond it wait for a free one.
    #[arg(
        long = "pg-max-connections",
        global = true,
        value_name = "COUNT",
        env = "TSUNAGU_PG_MAX_CONNECTIONS",
        default_value_t = 16,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    max_connections: u32,
    /// How long opening one connection may take, in milliseconds, before the request answers 503.
    #[arg(
        long = "pg-connect-timeout-ms",
        global = true,
        value_name = "MS",
        env = "TSUNAGU_PG_CONNECT_TIMEOUT_MS",
        default_value_t = 5_000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    connect_timeout_ms: u64,
    /// How long a request waits for a free pooled connection, in milliseconds, before it answers
    /// 503.
    #[arg(
        long = "pg-wait-timeout-ms",
        global = true,
        value_name = "MS",
        env = "TSUNAGU_PG_WAIT_TIMEOUT_MS",
        default_value_t = 5_000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    wait_timeout_ms: u64,
    /// The server-side `statement_timeout` of every connection, in milliseconds: a statement
    /// running longer is cancelled and its request answers 503.
    #[arg(
        long = "pg-statement-timeout-ms",
        global = true,
        value_name = "MS",
        env = "TSUNAGU_PG_STATEMENT_TIMEOUT_MS",
        default_value_t = 30_000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    statement_timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

// No `Debug` either: shard URLs carry passwords.
#[derive(Subcommand)]
enum Command {
    /// Serve the FHIR API.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "TSUNAGU_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        /// Load the demo population when the store is empty.
        #[arg(long)]
        demo: bool,
        /// Largest accepted request body in bytes.
        #[arg(long, env = "TSUNAGU_MAX_BODY_BYTES", default_value_t = 10 * 1024 * 1024)]
        max_body_bytes: usize,
        /// Public base URL of the FHIR API, for links (default: from the request's Host header).
        #[arg(long, env = "TSUNAGU_BASE_URL")]
        base_url: Option<String>,
        /// Hours between runs of the retention job (deleting submitted data past its retention
        /// period; docs/jp-clins.md); 0 turns it off.
        #[arg(long, env = "TSUNAGU_RETENTION_INTERVAL_HOURS", default_value_t = 24)]
        retention_interval_hours: u64,
        #[command(flatten)]
        security: access::SecurityArgs,
    },
    /// Load Bundles (JSON) and NDJSON files or directories into the store.
    Import {
        /// Files or directories (searched recursively for .json and .ndjson).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Resources per chunk (one store call each).
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        /// Write every chunk as a transaction, never through the bulk path (COPY on PostgreSQL).
        #[arg(long)]
        no_bulk: bool,
    },
    /// Write every current resource as NDJSON, one file per type.
    Export {
        /// Output directory.
        #[arg(long, default_value = "export")]
        out: PathBuf,
        /// Only these resource types (default: every type that holds data).
        #[arg(long = "type")]
        types: Vec<String>,
    },
    /// Create or upgrade the database schema and exit.
    Migrate,
    /// The tamper-evident audit log (docs/audit.md).
    Audit {
        #[command(subcommand)]
        action: AuditCommand,
    },
    /// Organisations in the registry.
    Org {
        #[command(subcommand)]
        action: registry::OrgCommand,
    },
    /// Facility systems (SMART Backend Services clients) in the registry.
    Client {
        #[command(subcommand)]
        action: registry::ClientCommand,
    },
    /// Patients' accounts (a password and a card each) in the patient directory (docs/auth.md).
    Patient {
        /// The patient directory (a JSON file holding password hashes; created mode 0600).
        #[arg(
            long,
            global = true,
            env = "TSUNAGU_PATIENTS",
            default_value = "data/patients.json",
            value_name = "FILE"
        )]
        directory: PathBuf,
        #[command(subcommand)]
        action: patients::PatientCommand,
    },
    /// Demo cards: software Ed25519 key pairs that sign challenges as a patient's card would.
    Card {
        #[command(subcommand)]
        action: patients::CardCommand,
    },
    /// Emergency accesses awaiting the privacy officer's review.
    Review {
        #[command(subcommand)]
        action: ReviewCommand,
    },
    /// The retention job (docs/jp-clins.md, "Retention").
    Retention {
        #[command(subcommand)]
        action: RetentionCommand,
    },
    /// Shard a new PostgreSQL store by patient over several PostgreSQL servers (docs/scale-out.md).
    Shard {
        #[command(subcommand)]
        action: ShardCommand,
    },
    /// Write a deterministic Japanese synthetic population as JP-CLINS Bundles (needs no database).
    Synth(synth::SynthArgs),
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the log: recompute every hash from the stored entries, check every signed tree head
    /// and their consistency, and report the first bad entry. Exit status 0 when intact, 1 when
    /// not, 2 when the log cannot be read.
    Verify {
        /// The audit log file.
        #[arg(long, default_value = "data/audit.sqlite")]
        log: PathBuf,
        /// The log's public key (PEM).
        #[arg(long, default_value = "data/audit-key.pub.pem")]
        public_key: PathBuf,
        /// Tree heads published earlier to outside witnesses (JSON files), to detect a truncated
        /// tail the file alone cannot show.
        #[arg(long = "witness")]
        witnesses: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ReviewCommand {
    /// List the emergency accesses still open for review (no patient data).
    List,
    /// Close a review once it has been looked at.
    Close {
        /// The review's id, as `review list` shows it.
        id: String,
    },
}

#[derive(Subcommand)]
enum RetentionCommand {
    /// Delete, now, what has passed its retention period, and record what was deleted.
    Run,
}

#[derive(Subcommand)]
enum ShardCommand {
    /// Make `--database` the coordinator of a store partitioned over the given shard databases
    /// (each new and empty); running it again with the same shards changes nothing.
    Init {
        /// A shard database, `postgres://USER:PASSWORD@HOST:PORT/DATABASE`; once per shard.
        #[arg(long = "shard", required = true, value_name = "URL")]
        shards: Vec<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    if let Command::Shard {
        action: ShardCommand::Init { shards },
    } = &cli.command
    {
        return shard_init(&cli.database, shards).await;
    }
    if let Command::Synth(args) = &cli.command {
        return synth::run(args);
    }
    if let Command::Audit {
        action:
            AuditCommand::Verify {
                log,
                public_key,
                witnesses,
            },
    } = &cli.command
    {
        std::process::exit(audit_verify(log, public_key, witnesses));
    }
    match cli.command {
        Command::Org { action } => return registry::org(&cli.registry, action).await,
        Command::Client { action } => return registry::client(&cli.registry, action).await,
        Command::Patient { directory, action } => {
            return patients::patient(&directory, action).await;
        }
        Command::Card { action } => return patients::card(action),
        _ => {}
    }
    let retention = retention_policy(cli.retention_policy.as_deref())?;
    let store = open_store(&cli.database, cli.pool, cli.read_replica.as_deref()).await?;
    let app = app::App::new(store, app::Settings::default());
    match cli.command {
        Command::Serve {
            listen,
            demo,
            max_body_bytes,
            base_url,
            retention_interval_hours,
            security,
        } => {
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            let origin =
                access::public_origin(&security, base_url.as_deref(), &listener.local_addr()?);
            if demo {
                demo::load_if_empty(&app).await?;
                demo::register_access(&cli.registry, &origin).await?;
                demo::register_patient(&security.patients).await?;
            }
            let security = access::security(&security, &cli.registry, &origin)?;
            if retention_interval_hours > 0 {
                tokio::spawn(retention_job(
                    app.clone(),
                    retention.clone(),
                    std::time::Duration::from_secs(retention_interval_hours * 3600),
                ));
            }
            let settings = server::ServerSettings {
                max_body_bytes,
                base_url,
            };
            let state = server::AppState::new(app, settings).with_security(security);
            tracing::info!(address = %listener.local_addr()?, "tsunagu is serving FHIR R4 at /fhir");
            server::run(listener, state, shutdown_signal()).await?;
            tracing::info!("stopped");
        }
        Command::Import {
            paths,
            batch,
            no_bulk,
        } => {
            import::run(&app, &paths, batch, !no_bulk).await?;
        }
        Command::Export { out, types } => export(&app, &out, types).await?,
        Command::Migrate => tracing::info!("the schema is up to date"),
        Command::Review {
            action: ReviewCommand::List,
        } => {
            let reviews = app.open_reviews().await?;
            for review in &reviews {
                println!(
                    "{}\t{}\t{}\t{}",
                    review.id, review.opened, review.organisation, review.user
                );
            }
            println!("{} emergency accesses await review", reviews.len());
        }
        Command::Review {
            action: ReviewCommand::Close { id },
        } => {
            app.close_review(&id).await?;
            println!("review {id} closed");
        }
        Command::Retention {
            action: RetentionCommand::Run,
        } => {
            let report = app.apply_retention(&retention, app::now()).await?;
            for (kind, count) in &report.deleted {
                println!("deleted {count} {kind}");
            }
            println!("retention: {} resources deleted", report.total());
        }
        Command::Shard { .. }
        | Command::Synth(_)
        | Command::Org { .. }
        | Command::Client { .. }
        | Command::Patient { .. }
        | Command::Card { .. }
        | Command::Audit { .. } => {
            unreachable!("handled before the store is opened")
        }
    }
    Ok(())
}

/// Runs retention a minute after start-up, then every `interval`; failures are logged and the
/// next run tries again. Logs say how many resources of which kind, never which.
async fn retention_job(app: app::App, policy: app::RetentionPolicy, interval: std::time::Duration) {
    tokio::time::sleep(std::time::Duration::from_secs(60).min(interval)).await;
    loop {
        match app.apply_retention(&policy, app::now()).await {
            Ok(report) => {
                tracing::info!(deleted = report.total(), "retention run finished");
            }
            Err(error) => {
                tracing::warn!(%error, "retention run failed; retrying at the next interval")
            }
        }
        tokio::time::sleep(interval).await;
    }
}

/// `tsunagu audit verify`: prints the report (sequence numbers and sizes only) and returns the exit
/// status: 0 intact, 1 not intact, 2 unreadable.
fn audit_verify(log: &std::path::Path, public_key: &std::path::Path, witnesses: &[PathBuf]) -> i32 {
    let key = match audit::PublicKey::load(public_key) {
        Ok(key) => key,
        Err(error) => {
            eprintln!("cannot read the audit public key: {error}");
            return 2;
        }
    };
    let mut heads = Vec::new();
    for path in witnesses {
        let head = std::fs::read_to_string(path)
            .ok()
            .and_then(|text| serde_json::from_str::<audit::SignedTreeHead>(&text).ok());
        match head {
            Some(head) => heads.push(head),
            None => {
                eprintln!("cannot read the witnessed tree head {}", path.display());
                return 2;
            }
        }
    }
    match audit::verify_with_witnesses(log, &key, &heads) {
        Ok(report) => {
            println!("{report}");
            if report.is_intact() { 0 } else { 1 }
        }
        Err(error) => {
            eprintln!("cannot read the audit log: {error}");
            2
        }
    }
}

/// The retention policy: the defaults, or those of a JSON file.
fn retention_policy(path: Option<&std::path::Path>) -> anyhow::Result<app::RetentionPolicy> {
    let Some(path) = path else {
        return Ok(app::RetentionPolicy::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the retention policy {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("the retention policy {} is not valid", path.display()))
}

/// Opens the backend named by the URL scheme.
async fn open_store(
    url: &str,
    pool: PostgresPool,
    read_replica: Option<&str>,
) -> anyhow::Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        if read_replica.is_some() {
            bail!("--read-replica needs a postgres:// database; a SQLite store has no replicas");
        }
        let store = store_sqlite::SqliteStore::open_url(
            url,
            store_sqlite::SqliteOptions::default(),
            Arc::new(SystemClock),
        )
        .context("cannot open the SQLite store")?;
        return Ok(Arc::new(store));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return open_postgres(url, pool, read_replica).await;
    }
    bail!("unknown database URL scheme; expected sqlite://PATH or postgres://USER@HOST/DATABASE")
}

/// Opens the PostgreSQL backend (the error never shows the URL: it may hold a password).
#[cfg(feature = "postgres")]
async fn open_postgres(
    url: &str,
    pool: PostgresPool,
    read_replica: Option<&str>,
) -> anyhow::Result<Arc<dyn Store>> {
    let options = pool.options();
    let mut store =
        store_postgres::PostgresStore::connect(url, options.clone(), Arc::new(SystemClock))
            .await
            .context("cannot open the PostgreSQL store")?;
    if let Some(replica) = read_replica {
        store = store
            .with_read_replica(replica, &options)
            .await
            .context("cannot use the read replica")?;
        tracing::info!("searches and history are served by the read replica");
    }
    Ok(Arc::new(store))
}

/// `tsunagu shard init`.
#[cfg(feature = "postgres")]
async fn shard_init(coordinator: &str, shards: &[String]) -> anyhow::Result<()> {
    if !(coordinator.starts_with("postgres://") || coordinator.starts_with("postgresql://")) {
        bail!("sharding needs a postgres:// --database (the coordinator)");
    }
    let layout = store_postgres::shard::init(coordinator, shards, Arc::new(SystemClock))
        .await
        .context("cannot shard the store")?;
    if layout.created {
        tracing::info!(shards = layout.shards, "the store is sharded by patient");
    } else {
        tracing::info!(
            shards = layout.shards,
            "the store was already sharded over these shards"
        );
    }
    Ok(())
}

#[cfg(not(feature = "postgres"))]
async fn shard_init(_coordinator: &str, _shards: &[String]) -> anyhow::Result<()> {
    bail!("this build has no PostgreSQL backend: rebuild with `--features postgres`")
}

#[cfg(feature = "postgres")]
impl PostgresPool {
    /// The store options: these flags over the defaults (write retries stay the default).
    fn options(self) -> store_postgres::PostgresOptions {
        use std::time::Duration;
        store_postgres::PostgresOptions {
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            wait_timeout: Duration::from_millis(self.wait_timeout_ms),
            statement_timeout: Duration::from_millis(self.statement_timeout_ms),
            ..store_postgres::PostgresOptions::default()
        }
    }
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(
    _url: &str,
    _pool: PostgresPool,
    _read_replica: Option<&str>,
) -> anyhow::Result<Arc<dyn Store>> {
    bail!(
        "this build has no PostgreSQL backend: rebuild with `--features postgres` \
         (part of the default features), or use a sqlite:// URL"
    )
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

async fn export(app: &app::App, out: &std::path::Path, types: Vec<String>) -> anyhow::Result<()> {
    use std::io::Write as _;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let types = if types.is_empty() {
        app.resource_types_in_use().await?
    } else {
        types
    };
    let mut total = 0usize;
    for resource_type in types {
        let path = out.join(format!("{resource_type}.ndjson"));
        let mut file = std::io::BufWriter::new(
            std::fs::File::create(&path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        );
        let mut after = None;
        let mut count = 0usize;
        loop {
            let (chunk, next) = app.export_chunk(&resource_type, after, 1000).await?;
            for resource in &chunk {
                file.write_all(resource.json.as_bytes())?;
                file.write_all(b"\n")?;
            }
            count += chunk.len();
            match next {
                Some(position) if !chunk.is_empty() => after = Some(position),
                _ => break,
            }
        }
        file.flush()?;
        println!("{resource_type}: {count} resources -> {}", path.display());
        total += count;
    }
    println!("exported {total} resources");
    Ok(())
}

#[cfg(test)]
mod tests;
