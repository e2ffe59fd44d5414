//! `serve`'s security layer: the token service over the registry file, the tamper-evident audit
//! log, the alerts file and the abuse limits (docs/security.md). `serve` never runs without it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

/// Where the security layer keeps its files, its public URL, and its limits.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Security (docs/security.md)")]
pub(crate) struct SecurityArgs {
    /// The public origin clients reach the service at (e.g. `https://tsunagu.example.jp`): the
    /// issuer of access tokens; assertions must name `<origin>/auth/token` as their audience.
    /// Default: the origin of `--base-url`, else `http://<listen address>`.
    #[arg(long, env = "TSUNAGU_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// The key that signs access tokens (created, mode 0600, when missing).
    #[arg(
        long,
        env = "TSUNAGU_SERVICE_KEY",
        default_value = "data/service-key.pem"
    )]
    pub service_key: PathBuf,
    /// The tamper-evident audit log (docs/audit.md).
    #[arg(long, env = "TSUNAGU_AUDIT_LOG", default_value = "data/audit.sqlite")]
    pub audit_log: PathBuf,
    /// The key that signs the audit log's tree heads (created when missing; its public half is
    /// written next to it as `<name>.pub.pem`, what `tsunagu audit verify` reads).
    #[arg(long, env = "TSUNAGU_AUDIT_KEY", default_value = "data/audit-key.pem")]
    pub audit_key: PathBuf,
    /// Patients' accounts (password hashes and card public keys; `tsunagu patient add`).
    #[arg(long, env = "TSUNAGU_PATIENTS", default_value = "data/patients.json")]
    pub patients: PathBuf,
    /// Alerts for the privacy officer, one JSON object per line (no patient data).
    #[arg(long, env = "TSUNAGU_ALERTS", default_value = "data/alerts.jsonl")]
    pub alerts: PathBuf,
    /// Sustained requests per second allowed per client system (or patient account).
    #[arg(long, env = "TSUNAGU_RATE_LIMIT", default_value_t = 200.0)]
    pub rate_limit: f64,
    /// Requests a client may send at once above the sustained rate.
    #[arg(long, env = "TSUNAGU_RATE_BURST", default_value_t = 400.0)]
    pub rate_burst: f64,
    /// Alert when one user reads more than this many different patients within the window.
    #[arg(long, env = "TSUNAGU_UNUSUAL_PATIENTS", default_value_t = 50)]
    pub unusual_patients: usize,
    /// The window of `--unusual-patients`, in minutes.
    #[arg(long, env = "TSUNAGU_UNUSUAL_WINDOW_MINUTES", default_value_t = 10)]
    pub unusual_window_minutes: u64,
}

/// The public origin: `--public-url`, else the origin of the FHIR base URL, else the listener's.
pub(crate) fn public_origin(
    args: &SecurityArgs,
    base_url: Option<&str>,
    listen: &std::net::SocketAddr,
) -> String {
    if let Some(origin) = &args.public_url {
        return origin.trim_end_matches('/').to_owned();
    }
    if let Some(base) = base_url {
        let base = base.trim_end_matches('/');
        return base.strip_suffix("/fhir").unwrap_or(base).to_owned();
    }
    format!("http://{listen}")
}

/// Builds the security layer (refusing to start when the audit log fails its checks).
pub(crate) fn security(
    args: &SecurityArgs,
    registry_path: &std::path::Path,
    origin: &str,
) -> anyhow::Result<server::security::Security> {
    for path in [
        &args.service_key,
        &args.audit_log,
        &args.audit_key,
        &args.alerts,
        &args.patients,
    ] {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
    }
    let registry =
        Arc::new(auth::JsonFileRegistry::open(registry_path).context("cannot open the registry")?);
    let key = auth::ServiceKey::load_or_generate(&args.service_key)
        .context("cannot load or create the service key")?;
    let settings = auth::AuthSettings::new(
        origin,
        format!("{origin}/auth/token"),
        format!("{origin}/fhir"),
    );
    let tokens = auth::TokenService::new(
        settings,
        registry,
        Arc::new(auth::MemoryJtiCache::default()),
        key,
    )
    .context("invalid token settings")?
    .with_patients(Arc::new(
        auth::JsonFilePatientDirectory::open(&args.patients)
            .context("cannot open the patient directory")?,
    ));
    let (audit_key, created) = audit::AuditKey::load_or_generate(&args.audit_key)
        .context("cannot load or create the audit key")?;
    let public_path = args.audit_key.with_extension("pub.pem");
    if created || !public_path.exists() {
        std::fs::write(&public_path, audit_key.public_key().to_pem())
            .with_context(|| format!("cannot write {}", public_path.display()))?;
        tracing::info!(public_key = %public_path.display(), "audit public key written");
    }
    let log = audit::AuditLog::open(&args.audit_log, audit_key).context(
        "cannot open the audit log (run `tsunagu audit verify`); refusing to serve unaudited",
    )?;
    let settings = server::security::AbuseSettings {
        requests_per_second: args.rate_limit,
        burst: args.rate_burst,
        unusual_patients: args.unusual_patients,
        unusual_window: Duration::from_secs(args.unusual_window_minutes * 60),
    };
    Ok(server::security::Security::new(
        Arc::new(tokens),
        Arc::new(log),
        Arc::new(server::security::FileAlerts::new(&args.alerts)),
        settings,
    ))
}
