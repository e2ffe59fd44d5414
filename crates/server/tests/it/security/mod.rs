//! The security suite: the real router with the security layer on (token service over a registry,
//! tamper-evident audit log, alerts file, abuse limits), attacked from outside through HTTP only.
//!
//! - `matrix`: every role × every interaction × own / consented / unconsented / nonexistent
//!   patient, with the expected outcome, and for every denied case the absence of the patient's
//!   seeded marker strings from the whole response.
//! - `tokens`: the token attacks of the issue against `POST /auth/token` and bearer tokens.
//! - `flows`: consent revoked then read at once; emergency access end to end; the audit trail
//!   (one entry per patient touched, tampering detected, audit-store failure answers 503 without
//!   data); rate limits; unusual access alerts.

mod flows;
mod matrix;
mod tokens;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use auth::{
    ActingUser, Client, ClientId, ClientKey, ClientKeys, INSTITUTION_NUMBER_SYSTEM, JwkSet,
    MemoryRegistry, MunicipalityCode, OrgIdentifier, Organisation, OrganisationId,
    OrganisationKind, Prefecture, PurposeOfUse, Registry as _, Role,
};
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{Reply, TestApp};

/// The public origin the test server believes it has.
pub const ORIGIN: &str = "http://localhost";
pub const TOKEN_URL: &str = "http://localhost/auth/token";
/// The key id of every test client key.
pub const KID: &str = "k1";

/// The facility that submitted the "own" patient's labs (the JP-CLINS example's facility).
pub const AUTHOR_NUMBER: &str = "1318814790";

/// The organisations of the suite: registry id, kind, identifiers, municipalities.
pub fn organisations() -> Vec<Organisation> {
    let org = |id: &str, kind, identifiers: Vec<OrgIdentifier>, municipalities: &[&str]| {
        Organisation::new(
            OrganisationId::new(id).unwrap(),
            kind,
            format!("{id} 名称"),
            identifiers,
            Prefecture::new("13").unwrap(),
            municipalities
                .iter()
                .map(|code| MunicipalityCode::new(*code).unwrap())
                .collect(),
        )
        .unwrap()
    };
    let institution = |number: &str| OrgIdentifier::new(INSTITUTION_NUMBER_SYSTEM, number).unwrap();
    vec![
        org(
            "author",
            OrganisationKind::Hospital,
            vec![institution(AUTHOR_NUMBER)],
            &[],
        ),
        org(
            "other-hospital",
            OrganisationKind::Hospital,
            vec![institution("1311234567")],
            &[],
        ),
        org(
            "clinic",
            OrganisationKind::Clinic,
            vec![institution("1317654321")],
            &[],
        ),
        org(
            "pharmacy",
            OrganisationKind::Pharmacy,
            vec![institution("1341234567")],
            &[],
        ),
        org(
            "care",
            OrganisationKind::CareProvider,
            vec![OrgIdentifier::new(auth::CARE_PROVIDER_NUMBER_SYSTEM, "1370000001").unwrap()],
            &[],
        ),
        org(
            "phc",
            OrganisationKind::PublicHealthCentre,
            vec![],
            &["131016"],
        ),
        org("city", OrganisationKind::Municipality, vec![], &["131016"]),
        org(
            "insurer",
            OrganisationKind::Insurer,
            vec![OrgIdentifier::new(auth::INSURER_NUMBER_SYSTEM, "06130011").unwrap()],
            &[],
        ),
    ]
}

/// One seeded patient: its id, one of its Observations, and strings that only its data holds.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub patient: String,
    pub observation: String,
    pub markers: Vec<String>,
}

/// The server under attack, with its data and its clients' keys.
pub struct World {
    pub app: TestApp,
    pub dir: tempfile::TempDir,
    pub registry: Arc<MemoryRegistry>,
    pub keys: HashMap<String, ClientKey>,
    /// Submitted by `author`.
    pub own: Seeded,
    /// Consented to every organisation of the suite.
    pub consented: Seeded,
    /// Consented to nobody.
    pub unconsented: Seeded,
    pub consents: HashMap<String, String>,
    /// The card of the patient account `pt-1`, which is the `unconsented` patient's.
    pub card: auth::CardKey,
}

/// The patient account of the suite (the `unconsented` patient's) and its password.
pub const PATIENT_ACCOUNT: &str = "pt-1";
pub const PATIENT_PASSWORD: &str = "correct horse battery";

/// Limits of a world (the defaults never throttle the suite).
pub fn generous() -> server::security::AbuseSettings {
    server::security::AbuseSettings {
        requests_per_second: 1e9,
        burst: 1e9,
        unusual_patients: 1_000,
        unusual_window: Duration::from_secs(600),
    }
}

impl World {
    pub async fn new() -> World {
        World::with(generous(), audit::Options::default()).await
    }

    pub async fn with(abuse: server::security::AbuseSettings, options: audit::Options) -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = store_sqlite::SqliteStore::open(
            &dir.path().join("store.db"),
            store_sqlite::SqliteOptions::default(),
            Arc::new(store::SystemClock),
        )
        .unwrap();
        let app = app::App::new(Arc::new(store), app::Settings::default());
        let registry = Arc::new(MemoryRegistry::new());
        let mut keys = HashMap::new();
        for organisation in organisations() {
            let id = organisation.id().as_str().to_owned();
            registry.add_organisation(organisation).await.unwrap();
            let key = ClientKey::generate(KID).unwrap();
            let jwks = JwkSet::parse(&key.jwks().to_string()).unwrap();
            let client_id = format!("{id}-system");
            registry
                .add_client(Client::new(
                    ClientId::new(&client_id).unwrap(),
                    OrganisationId::new(&id).unwrap(),
                    ClientKeys::Jwks(jwks),
                ))
                .await
                .unwrap();
            keys.insert(client_id, key);
        }
        let patients = Arc::new(auth::MemoryPatientDirectory::new());
        let tokens = auth::TokenService::new(
            auth::AuthSettings::new(ORIGIN, TOKEN_URL, format!("{ORIGIN}/fhir")),
            registry.clone(),
            Arc::new(auth::MemoryJtiCache::default()),
            auth::ServiceKey::generate().unwrap(),
        )
        .unwrap()
        .with_patients(patients.clone());
        let (audit_key, _) =
            audit::AuditKey::load_or_generate(dir.path().join("audit-key.pem")).expect("audit key");
        std::fs::write(
            dir.path().join("audit-key.pub.pem"),
            audit_key.public_key().to_pem(),
        )
        .unwrap();
        let log = audit::AuditLog::open_with(dir.path().join("audit.sqlite"), audit_key, options)
            .expect("audit log");
        let security = server::security::Security::new(
            Arc::new(tokens),
            Arc::new(log),
            Arc::new(server::security::FileAlerts::new(
                dir.path().join("alerts.jsonl"),
            )),
            abuse,
        );
        let state =
            server::AppState::new(app, server::ServerSettings::default()).with_security(security);
        let app = TestApp::from_state(state);
        let own = seed_own(&app).await;
        let consented = seed_synthetic(&app, 1).await;
        let unconsented = seed_synthetic(&app, 2).await;
        let card = auth::CardKey::generate().unwrap();
        {
            use auth::PatientDirectory as _;
            let password = auth::PasswordHash::with_iterations(
                &auth::Password::new(PATIENT_PASSWORD).unwrap(),
                auth::PasswordHash::MIN_ITERATIONS,
            )
            .unwrap();
            patients
                .add_account(
                    auth::PatientAccount::new(
                        auth::AccountId::new(PATIENT_ACCOUNT).unwrap(),
                        unconsented.patient.clone(),
                        password,
                        card.public_key(),
                    )
                    .unwrap(),
                )
                .await
                .unwrap();
        }
        let mut consents = HashMap::new();
        let now = app::now();
        for organisation in organisations() {
            let id = organisation.id().as_str().to_owned();
            let consent = app
                .state
                .app
                .grant_consent(
                    &consented.patient,
                    &id,
                    now,
                    app::Timestamp(now.0 + 365 * 86_400_000_000),
                )
                .await
                .unwrap();
            consents.insert(id, consent.id);
        }
        World {
            app,
            dir,
            registry,
            keys,
            own,
            consented,
            unconsented,
            consents,
            card,
        }
    }

    /// A fresh challenge from `POST /auth/challenge`.
    pub async fn challenge(&self) -> String {
        let reply = self
            .app
            .request(Method::POST, "/auth/challenge", &[], None)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json()["challenge"].as_str().unwrap().to_owned()
    }

    /// The patient login form: password and the card's signature of a fresh challenge.
    pub async fn login_form(&self, password: &str) -> Vec<(String, String)> {
        let challenge = self.challenge().await;
        let account = auth::AccountId::new(PATIENT_ACCOUNT).unwrap();
        let signature = self.card.sign(&auth::card_message(
            auth::LOGIN_PURPOSE,
            &challenge,
            &account,
        ));
        vec![
            ("grant_type".into(), auth::PATIENT_GRANT_TYPE.into()),
            ("username".into(), PATIENT_ACCOUNT.into()),
            ("password".into(), password.into()),
            ("challenge".into(), challenge),
            ("card_signature".into(), signature),
        ]
    }

    /// An access token of the suite's patient (the `unconsented` patient).
    pub async fn patient_token(&self) -> String {
        let form = self.login_form(PATIENT_PASSWORD).await;
        let reply = self.token_request(&form).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json()["access_token"].as_str().unwrap().to_owned()
    }

    /// The acting user of `organisation` in `role`.
    pub fn user(organisation: &str, role: Role) -> ActingUser {
        let purpose = match organisation {
            "phc" => PurposeOfUse::PublicHealth,
            "city" => PurposeOfUse::Coverage,
            "insurer" => PurposeOfUse::PopulationHealth,
            "care" => PurposeOfUse::CareManagement,
            _ => PurposeOfUse::Treatment,
        };
        ActingUser {
            organisation: organisation.to_owned(),
            id: format!("{}-user", role.code()),
            name: "試験 利用者".to_owned(),
            role,
            purpose_of_use: purpose,
            emergency_privilege: false,
        }
    }

    /// A signed assertion of `organisation`'s client for `user`.
    pub fn assertion(&self, user: &ActingUser) -> String {
        let client = format!("{}-system", user.organisation);
        self.keys[&client]
            .assertion(
                &client,
                TOKEN_URL,
                user,
                SystemTime::now(),
                Duration::from_secs(240),
            )
            .unwrap()
    }

    /// `POST /auth/token` with a form.
    pub async fn token_request(&self, form: &[(String, String)]) -> Reply {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.app
            .request(
                Method::POST,
                "/auth/token",
                &[("content-type", "application/x-www-form-urlencoded")],
                Some(body),
            )
            .await
    }

    /// An access token for `user` with every scope its organisation may hold.
    pub async fn token(&self, user: &ActingUser) -> String {
        let scope = [
            "Patient",
            "Observation",
            "Condition",
            "AllergyIntolerance",
            "MedicationRequest",
            "Composition",
            "Bundle",
            "Consent",
            "Organization",
        ]
        .iter()
        .map(|t| format!("system/{t}.cruds"))
        .collect::<Vec<_>>()
        .join(" ");
        let reply = self
            .token_request(&auth::token_request(&self.assertion(user), &scope))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json()["access_token"].as_str().unwrap().to_owned()
    }

    /// A request with a bearer token.
    pub async fn call(
        &self,
        token: &str,
        method: Method,
        uri: &str,
        body: Option<String>,
    ) -> Reply {
        let bearer = format!("Bearer {token}");
        self.app
            .request(method, uri, &[("authorization", &bearer)], body)
            .await
    }

    pub async fn get(&self, token: &str, uri: &str) -> Reply {
        self.call(token, Method::GET, uri, None).await
    }

    /// Every entry of the audit log, decoded.
    pub fn audit_entries(&self) -> Vec<audit::Entry> {
        let security = self.app.state.security.as_ref().unwrap();
        security.audit().entries(0, 1_000_000).unwrap()
    }

    /// The alerts raised so far (JSON lines).
    pub fn alerts(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("alerts.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

/// Whether `text` holds any of `markers`; returns the first found.
pub fn leaked<'a>(text: &str, markers: &'a [String]) -> Option<&'a str> {
    markers
        .iter()
        .find(|marker| text.contains(marker.as_str()))
        .map(String::as_str)
}

/// The own patient: the JP-CLINS lab example, submitted by `author`.
async fn seed_own(app: &TestApp) -> Seeded {
    let path = format!(
        "{}/../../fixtures/jp/clins/Bundle-Bundle-CLINS-Observations-Example-01.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let bundle: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let outcome = app.state.app.submit(bundle).await.expect("submission");
    seeded(app, &outcome.person).await
}

/// A synthetic person (submitted by facilities outside the suite).
async fn seed_synthetic(app: &TestApp, number: u64) -> Seeded {
    let generator = synth::Generator::new(7);
    let mut skip = 0;
    loop {
        let person = generator.person(number * 100 + skip);
        skip += 1;
        let has_labs = person.submissions.iter().any(|submission| {
            submission
                .bundle
                .to_string()
                .contains("\"resourceType\":\"Observation\"")
        });
        if !has_labs {
            continue;
        }
        let mut id = None;
        for submission in person.submissions {
            let outcome = app
                .state
                .app
                .submit(submission.bundle)
                .await
                .expect("synthetic submission");
            id = Some(outcome.person);
        }
        return seeded(app, &id.unwrap()).await;
    }
}

/// The patient's id, one Observation, and its markers: family and given names and identifier
/// values (strings no request of the suite contains).
async fn seeded(app: &TestApp, patient: &str) -> Seeded {
    let service = app.state.app.for_viewer(app::Viewer::Service);
    let stored = service.read("Patient", patient).await.unwrap();
    let body: Value = serde_json::from_str(&stored.json).unwrap();
    let mut markers = Vec::new();
    for name in body["name"].as_array().into_iter().flatten() {
        if let Some(family) = name["family"].as_str() {
            markers.push(family.to_owned());
        }
        for given in name["given"].as_array().into_iter().flatten() {
            markers.extend(given.as_str().map(str::to_owned));
        }
    }
    for identifier in body["identifier"].as_array().into_iter().flatten() {
        markers.extend(identifier["value"].as_str().map(str::to_owned));
    }
    markers.retain(|marker| marker.chars().count() >= 2);
    assert!(!markers.is_empty(), "a seeded patient without markers");
    let observations = service
        .search(&app::SearchInput {
            types: vec!["Observation".into()],
            compartment: Some(patient.to_owned()),
            ..app::SearchInput::default()
        })
        .await
        .unwrap()
        .page
        .matches;
    // One the patient may see too (not 未告知/未提供).
    let observation = observations
        .iter()
        .find(|o| !o.json.contains("UNINFORMED") && !o.json.contains("UNDELIVERED"))
        .expect("an unflagged Observation")
        .id
        .clone();
    Seeded {
        patient: patient.to_owned(),
        observation,
        markers,
    }
}

/// A transaction/batch Bundle of GETs.
pub fn batch(urls: &[String]) -> String {
    json!({
        "resourceType": "Bundle",
        "type": "batch",
        "entry": urls.iter().map(|url| json!({"request": {"method": "GET", "url": url}})).collect::<Vec<_>>()
    })
    .to_string()
}
