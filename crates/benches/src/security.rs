//! The server's security layer for the HTTP benchmark, built as `tsunagu serve` builds it
//! (`crates/cli/src/access.rs`) but with an in-memory registry and files in a temporary
//! directory: an `auth::TokenService` (ES256 access tokens) over an `auth::MemoryRegistry`, the
//! tamper-evident `audit::AuditLog` (group commit, `synchronous=FULL`), an alerts file, and abuse
//! limits high enough never to throttle a benchmark.
//!
//! Two hospitals are registered, each with one client system (an ES384 key) and a doctor acting
//! for treatment:
//!
//! - the **reader** ([`READER_ORGANISATION`]) treats none of the population's patients: it sees a
//!   Patient only under that patient's consent to it ([`grant_consents`]), so that every read costs
//!   a consent lookup — what the comparison prices;
//! - the **own** facility ([`OWN_ORGANISATION`], the population's hospital, institution number
//!   [`OWN_INSTITUTION`]) holds a facility patient id in every Patient of the population, so it
//!   reads them without any consent lookup: the same security layer minus the consent search.
//!
//! Access tokens are obtained in-process ([`TokenSource::fetch`]): a client assertion signed with
//! the client's key, exchanged by `TokenService::exchange` exactly as `POST /auth/token` does.
//! [`components`] times the parts of a secured read one at a time, in-process.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, anyhow, bail};
use app::App;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::measure::{Run, run_warm};

/// The registry id of the hospital that reads under consent.
pub const READER_ORGANISATION: &str = "bench-reader-hospital";
/// Its institution number (Tokyo, medical): not the population's facility.
pub const READER_INSTITUTION: &str = "1312345678";
/// The registry id of the population's own hospital (the same id as its `Organization`).
pub const OWN_ORGANISATION: &str = crate::population::HOSPITAL_ID;
/// Its institution number: every Patient of the population carries a patient id of this facility.
pub const OWN_INSTITUTION: &str = "1318814790";
/// The scopes both clients ask for.
pub const SCOPE: &str = "system/Patient.rs system/Observation.rs";
/// The public origin the token service believes it has (nothing listens there).
const ORIGIN: &str = "http://bench.invalid";
/// How long a client assertion is valid (at most five minutes are accepted).
const ASSERTION_LIFETIME: Duration = Duration::from_secs(240);

/// A registered client system of one organisation and the doctor acting through it.
pub struct BenchClient {
    pub client_id: String,
    pub organisation: String,
    pub institution: String,
    key: auth::ClientKey,
    user: auth::ActingUser,
}

impl std::fmt::Debug for BenchClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BenchClient")
            .field("client_id", &self.client_id)
            .field("organisation", &self.organisation)
            .finish_non_exhaustive()
    }
}

impl BenchClient {
    fn new(organisation: &str, institution: &str) -> anyhow::Result<Self> {
        Ok(BenchClient {
            client_id: format!("{organisation}-system"),
            organisation: organisation.to_owned(),
            institution: institution.to_owned(),
            key: auth::ClientKey::generate("k1")?,
            user: auth::ActingUser {
                organisation: organisation.to_owned(),
                id: "doctor-1".to_owned(),
                name: "ベンチ 医師".to_owned(),
                role: auth::Role::Doctor,
                purpose_of_use: auth::PurposeOfUse::Treatment,
                emergency_privilege: false,
            },
        })
    }

    /// The façade's member for this client's doctor, as the server's guard builds it from the
    /// verified token (`crates/server/src/security/guard.rs`).
    pub fn member(&self) -> app::Member {
        app::Member {
            organisation: self.organisation.clone(),
            institution: Some(self.institution.clone()),
            kind: auth::OrganisationKind::Hospital,
            role: auth::Role::Doctor,
            user: self.user.id.clone(),
            emergency_privilege: false,
            token_types: Some(vec!["Observation".to_owned(), "Patient".to_owned()]),
        }
    }

    /// Registers the organisation and the client in `registry`.
    async fn register(&self, registry: &dyn auth::Registry) -> anyhow::Result<()> {
        let organisation_id = auth::OrganisationId::new(self.organisation.as_str())?;
        let organisation = auth::Organisation::new(
            organisation_id.clone(),
            auth::OrganisationKind::Hospital,
            format!("{} 病院", self.organisation),
            vec![auth::OrgIdentifier::new(
                auth::INSTITUTION_NUMBER_SYSTEM,
                &self.institution,
            )?],
            auth::Prefecture::new(&self.institution[..2])?,
            Vec::new(),
        )?;
        registry.add_organisation(organisation).await?;
        let jwks = auth::JwkSet::parse(&self.key.jwks().to_string())?;
        registry
            .add_client(auth::Client::new(
                auth::ClientId::new(self.client_id.as_str())?,
                organisation_id,
                auth::ClientKeys::Jwks(jwks),
            ))
            .await?;
        Ok(())
    }
}

/// The security layer's parts, shared by every secured run of a benchmark.
pub struct SecurityFixture {
    dir: TempDir,
    pub tokens: Arc<auth::TokenService>,
    pub audit: Arc<audit::AuditLog>,
    pub alerts: Arc<server::security::FileAlerts>,
    pub settings: server::security::AbuseSettings,
    /// The hospital that reads under consent.
    pub reader: Arc<BenchClient>,
    /// The population's own hospital.
    pub own: Arc<BenchClient>,
}

impl std::fmt::Debug for SecurityFixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecurityFixture")
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl SecurityFixture {
    /// Builds the token service, the audit log (in a fresh temporary directory under `work_dir`,
    /// or the system's, on the same disk as the store by default) and the alerts file.
    ///
    /// # Errors
    /// When a key cannot be generated, a registration is refused or the audit log cannot be
    /// opened.
    pub async fn new(work_dir: Option<&Path>) -> anyhow::Result<Self> {
        let mut builder = tempfile::Builder::new();
        builder.prefix("tsunagu-bench-security-");
        let dir = match work_dir {
            Some(parent) => builder.tempdir_in(parent),
            None => builder.tempdir(),
        }
        .context("cannot create the security layer's temporary directory")?;
        let reader = Arc::new(BenchClient::new(READER_ORGANISATION, READER_INSTITUTION)?);
        let own = Arc::new(BenchClient::new(OWN_ORGANISATION, OWN_INSTITUTION)?);
        let registry = Arc::new(auth::MemoryRegistry::new());
        for client in [&reader, &own] {
            client.register(registry.as_ref()).await?;
        }
        let tokens = Arc::new(token_service(registry)?);
        let audit_key = audit::AuditKey::generate()?;
        let audit = Arc::new(
            audit::AuditLog::open(dir.path().join("audit.sqlite"), audit_key)
                .context("cannot open the audit log")?,
        );
        let alerts = Arc::new(server::security::FileAlerts::new(
            dir.path().join("alerts.jsonl"),
        ));
        let settings = server::security::AbuseSettings {
            requests_per_second: 1e9,
            burst: 1e9,
            ..server::security::AbuseSettings::default()
        };
        Ok(SecurityFixture {
            dir,
            tokens,
            audit,
            alerts,
            settings,
            reader,
            own,
        })
    }

    /// A fresh security layer over the shared parts (its rate limiter and access watch start
    /// empty): one per server run.
    pub fn security(&self) -> server::security::Security {
        server::security::Security::new(
            Arc::clone(&self.tokens),
            Arc::clone(&self.audit),
            Arc::clone(&self.alerts) as Arc<dyn server::security::AlertSink>,
            self.settings,
        )
    }

    /// Access tokens for `client`'s doctor.
    pub fn token_source(&self, client: &Arc<BenchClient>) -> TokenSource {
        TokenSource {
            tokens: Arc::clone(&self.tokens),
            client: Arc::clone(client),
        }
    }

    /// The audit log's counters since it was opened.
    pub fn audit_stats(&self) -> audit::Stats {
        self.audit.stats()
    }

    /// The temporary directory holding the audit log and the alerts file.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// How many alerts were raised (lines of the alerts file).
    pub fn alerts_raised(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("alerts.jsonl"))
            .map(|text| text.lines().count())
            .unwrap_or(0)
    }
}

fn token_service(registry: Arc<dyn auth::Registry>) -> anyhow::Result<auth::TokenService> {
    let settings = auth::AuthSettings::new(
        ORIGIN,
        format!("{ORIGIN}/auth/token"),
        format!("{ORIGIN}/fhir"),
    );
    Ok(auth::TokenService::new(
        settings,
        registry,
        Arc::new(auth::MemoryJtiCache::default()),
        auth::ServiceKey::generate()?,
    )?)
}

/// Issues access tokens for one client's doctor.
#[derive(Clone)]
pub struct TokenSource {
    tokens: Arc<auth::TokenService>,
    client: Arc<BenchClient>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

/// An access token and its `Authorization` header value. `Debug` hides the token.
pub struct Bearer {
    /// `Bearer <token>`.
    pub header: String,
    /// How long the token lives from when it was fetched.
    pub lifetime: Duration,
    token: String,
}

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bearer")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    /// A fresh access token: a client assertion signed with the client's key, exchanged in-process
    /// as `POST /auth/token` exchanges it.
    ///
    /// # Errors
    /// When the assertion cannot be signed or the token service refuses it.
    pub async fn fetch(&self) -> anyhow::Result<Bearer> {
        fetch(&self.tokens, &self.client).await
    }

    /// The client the tokens are for.
    pub fn client(&self) -> &Arc<BenchClient> {
        &self.client
    }
}

async fn fetch(tokens: &auth::TokenService, client: &BenchClient) -> anyhow::Result<Bearer> {
    let now = SystemTime::now();
    let assertion = client.key.assertion(
        &client.client_id,
        &tokens.settings().token_endpoint,
        &client.user,
        now,
        ASSERTION_LIFETIME,
    )?;
    let token = tokens
        .exchange(&auth::token_request(&assertion, SCOPE), now)
        .await
        .map_err(|error| anyhow!("the token service refused the bench client: {error}"))?;
    let granted = token.principal.scopes.to_string();
    if !granted.contains("Patient") {
        bail!("the token does not allow reading Patients (granted: {granted})");
    }
    Ok(Bearer {
        header: format!("Bearer {}", token.token()),
        lifetime: Duration::from_secs(token.expires_in()),
        token: token.token().to_owned(),
    })
}

/// Records an active consent of every patient to `organisation` for the next day, from `tasks`
/// concurrent tasks (each consent is one create; concurrent commits share fsyncs). Returns the
/// time it took.
///
/// # Errors
/// The first failed grant.
pub async fn grant_consents(
    app: &App,
    patients: &[String],
    organisation: &str,
    tasks: usize,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let now = app::now();
    let until = app::Timestamp(now.0 + 24 * 3600 * 1_000_000);
    let patients: Arc<Vec<String>> = Arc::new(patients.to_vec());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..tasks.max(1) {
        let (app, patients, next) = (app.clone(), Arc::clone(&patients), Arc::clone(&next));
        let organisation = organisation.to_owned();
        workers.spawn(async move {
            loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(patient) = patients.get(index) else {
                    return anyhow::Ok(());
                };
                // A façade of its own: the shared one's access ledger stays empty.
                app.for_viewer(app::Viewer::Service)
                    .grant_consent(patient, &organisation, now, until)
                    .await
                    .with_context(|| format!("cannot grant the consent of Patient/{patient}"))?;
            }
        });
    }
    while let Some(result) = workers.join_next().await {
        result??;
    }
    Ok(started.elapsed())
}

/// One part of a secured read, timed on its own.
#[derive(Debug, Clone)]
pub struct Component {
    pub label: String,
    /// Concurrent tasks.
    pub tasks: usize,
    pub run: Run,
    /// Audit log counters during the part (appends, batches), when it appended.
    pub audit: Option<(u64, u64)>,
}

impl Component {
    pub fn to_json(&self) -> Value {
        json!({
            "label": self.label,
            "tasks": self.tasks,
            "run": self.run.to_json(),
            "audit_appends": self.audit.map(|(appends, _)| appends),
            "audit_batches": self.audit.map(|(_, batches)| batches),
        })
    }
}

/// Times the parts of a secured read by id in-process, one call at a time unless said otherwise
/// (so a latency is the part's CPU time, except where it waits for an fsync):
///
/// - verifying an access token (ES256 signature, claims, two registry lookups) with the
///   in-memory registry, and with the JSON file registry `tsunagu serve` uses (one `stat` of the
///   file per lookup);
/// - `App::read` of a Patient as an unidentified facility (no decision), as the own hospital's
///   doctor (the decision, no consent lookup), and as the reading hospital's doctor (the decision
///   and a consent search);
/// - appending one audit entry, alone (one transaction and fsync each) and from 32 tasks (group
///   commit).
///
/// # Errors
/// When the file registry cannot be set up or a token cannot be fetched.
pub async fn components(
    fixture: &SecurityFixture,
    app: &App,
    patients: &[String],
    operations: usize,
) -> anyhow::Result<Vec<Component>> {
    let patients: Arc<Vec<String>> = Arc::new(patients.to_vec());
    let pick = |patients: &Arc<Vec<String>>, word: u64| -> String {
        patients[(word % patients.len() as u64) as usize].clone()
    };
    let warmup = (operations / 10).max(10);
    let mut parts = Vec::new();

    // Token verification, memory and file registries.
    let bearer = fixture.token_source(&fixture.reader).fetch().await?;
    let file_registry = Arc::new(
        auth::JsonFileRegistry::open(fixture.dir().join("registry.json"))
            .context("cannot create the file registry")?,
    );
    for client in [&fixture.reader, &fixture.own] {
        client.register(file_registry.as_ref()).await?;
    }
    let file_tokens = Arc::new(token_service(file_registry)?);
    let file_bearer = fetch(&file_tokens, &fixture.reader).await?;
    for (label, tokens, token) in [
        (
            "verify access token (ES256, claims, memory registry)",
            Arc::clone(&fixture.tokens),
            bearer.token.clone(),
        ),
        (
            "verify access token, JSON file registry (as `serve`)",
            file_tokens,
            file_bearer.token.clone(),
        ),
    ] {
        let token = Arc::new(token);
        let run = run_warm(1, warmup, operations, 0x746f_6b65, move |_| {
            let (tokens, token) = (Arc::clone(&tokens), Arc::clone(&token));
            async move {
                tokens
                    .verify_access_token(&token, SystemTime::now())
                    .await
                    .map_err(|error| anyhow!("{error}"))?;
                Ok(1)
            }
        })
        .await;
        parts.push(Component {
            label: label.to_owned(),
            tasks: 1,
            run,
            audit: None,
        });
    }

    // Reads with and without the decision.
    let viewers = [
        (
            "App::read Patient, unidentified facility (security off)",
            app::Viewer::default(),
        ),
        (
            "App::read Patient, own hospital's doctor (decision, no consent lookup)",
            app::Viewer::Member(fixture.own.member()),
        ),
        (
            "App::read Patient, other hospital's doctor (decision + consent search)",
            app::Viewer::Member(fixture.reader.member()),
        ),
    ];
    for (label, viewer) in viewers {
        let (app, patients) = (app.clone(), Arc::clone(&patients));
        let run = run_warm(1, warmup, operations, 0x7265_6164, move |word| {
            // One façade per read, as the server makes one per request.
            let app = app.for_viewer(viewer.clone());
            let patient = pick(&patients, word);
            async move {
                let read = app.read("Patient", &patient).await?;
                Ok(read.json.len() as u64)
            }
        })
        .await;
        parts.push(Component {
            label: label.to_owned(),
            tasks: 1,
            run,
            audit: None,
        });
    }

    // Audit appends, alone and concurrent.
    for (label, tasks, count) in [
        (
            "audit append, one at a time (a transaction + fsync each)",
            1,
            (operations / 20).max(50),
        ),
        (
            "audit append, 32 tasks (group commit)",
            32,
            operations.max(1000),
        ),
    ] {
        let before = fixture.audit_stats();
        let (log, patients) = (Arc::clone(&fixture.audit), Arc::clone(&patients));
        let run = run_warm(tasks, 0, count, 0x6175_6469, move |word| {
            let log = Arc::clone(&log);
            let record = read_record(&pick(&patients, word));
            async move {
                log.append(&record).await?;
                Ok(1)
            }
        })
        .await;
        let after = fixture.audit_stats();
        parts.push(Component {
            label: label.to_owned(),
            tasks,
            run,
            audit: Some((
                after.appends - before.appends,
                after.batches - before.batches,
            )),
        });
    }
    Ok(parts)
}

/// The audit entry the server writes for a permitted read of `Patient/{patient}` by the reading
/// hospital's doctor (`crates/server/src/security/guard.rs`).
fn read_record(patient: &str) -> audit::AuditRecord {
    audit::AuditRecord {
        recorded: audit::UtcTime::now(),
        request_id: "bench-0000000000000000".to_owned(),
        agent: audit::Agent {
            user_id: "doctor-1".to_owned(),
            display_name: "ベンチ 医師".to_owned(),
            role: auth::Role::Doctor.code().to_owned(),
            organisation: Some(audit::OrganisationId::institution_number(
                READER_INSTITUTION,
            )),
            client_id: Some(format!("{READER_ORGANISATION}-system")),
        },
        purpose_of_use: audit::PurposeOfUse::Treatment,
        patient: Some(patient.to_owned()),
        action: audit::Action {
            interaction: audit::Interaction::Read,
            operation: None,
            resource_type: Some("Patient".to_owned()),
            resource_id: Some(patient.to_owned()),
            query: Vec::new(),
        },
        outcome: audit::Outcome {
            decision: audit::Decision::Permitted,
            http_status: 200,
        },
        emergency: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn both_doctors_get_tokens_the_service_verifies_with_their_hospital() {
        let fixture = SecurityFixture::new(None).await.expect("fixture");
        for (client, organisation) in [
            (&fixture.reader, READER_ORGANISATION),
            (&fixture.own, OWN_ORGANISATION),
        ] {
            let bearer = fixture.token_source(client).fetch().await.expect("token");
            assert!(bearer.header.starts_with("Bearer "));
            assert_eq!(bearer.lifetime, auth::MAX_ACCESS_TOKEN_LIFETIME);
            let principal = fixture
                .tokens
                .verify_access_token(&bearer.token, SystemTime::now())
                .await
                .expect("verified");
            assert_eq!(principal.organisation.id().as_str(), organisation);
            assert!(principal.scopes.allows("Patient", auth::Permission::Read));
            assert_eq!(client.member().organisation, organisation);
        }
        assert_eq!(fixture.audit_stats().appends, 0);
    }
}
