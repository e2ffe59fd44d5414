//! The demo population loaded by `serve --demo` into an empty store: [`PEOPLE`] people of the
//! synthetic Japanese population (`synth`, seed [`SEED`], observed as of today), each arriving the
//! way real data does: as the JP-CLINS submissions of their facilities (diagnoses, allergies, lab and
//! infection results, referral letters carrying prescriptions, checkup reports), through
//! `App::submit`. Entirely fictional.
//!
//! So that the walk-through in the README has stable addresses, person *n* (from 1) is registered
//! first as `Patient/demo-patient-00n`, holding its national key (the insured-person id, canonical)
//! and its first facility's patient id; its submissions then link to it like any submission links
//! to a known person.

use std::path::Path;

use anyhow::Context as _;
use app::App;
use serde_json::Value;

/// How many people the demo holds.
pub(crate) const PEOPLE: u64 = 300;
/// The demo population's seed.
const SEED: u64 = 20_261_124;
/// People submitted at once.
const CONCURRENCY: usize = 4;

/// Loads the demo population when the store holds nothing yet.
pub(crate) async fn load_if_empty(app: &App) -> anyhow::Result<()> {
    if !app.resource_types_in_use().await?.is_empty() {
        tracing::info!("the store already holds data: demo population not loaded");
        return Ok(());
    }
    let started = std::time::Instant::now();
    let generator = synth::Generator::with_options(SEED, synth::Options { as_of: today() });
    let mut submissions = 0;
    let mut tasks = tokio::task::JoinSet::new();
    for number in 0..PEOPLE {
        let person = generator.person(number);
        let app = app.clone();
        tasks.spawn(async move { load_person(&app, number, person).await });
        if tasks.len() >= CONCURRENCY
            && let Some(done) = tasks.join_next().await
        {
            submissions += done.context("a demo loading task failed")??;
        }
    }
    while let Some(done) = tasks.join_next().await {
        submissions += done.context("a demo loading task failed")??;
    }
    tracing::info!(
        people = PEOPLE,
        submissions,
        seconds = started.elapsed().as_secs_f64(),
        "demo population loaded"
    );
    Ok(())
}

/// Registers person `number` as `Patient/demo-patient-NNN` and submits their Bundles; returns how
/// many submissions were made.
async fn load_person(app: &App, number: u64, person: synth::Person) -> anyhow::Result<usize> {
    let Some(first) = person.submissions.first() else {
        return Ok(0);
    };
    let mut patient = first
        .bundle
        .get("entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.get("resource"))
        .find(|resource| resource.get("resourceType").and_then(Value::as_str) == Some("Patient"))
        .cloned()
        .context("a synthetic submission without its Patient")?;
    canonical_keys(&mut patient);
    let id = format!("demo-patient-{:03}", number + 1);
    if let Value::Object(object) = &mut patient {
        object.insert("id".into(), Value::String(id.clone()));
        object.shift_remove("meta");
    }
    app.update("Patient", &id, patient, &app::Preconditions::default())
        .await
        .map_err(|error| explained(error, "registering a demo patient failed"))?;
    for submission in &person.submissions {
        app.submit(submission.bundle.clone())
            .await
            .map_err(|error| explained(error, "a demo submission was refused"))?;
    }
    Ok(person.submissions.len())
}

/// The error with its issues (element paths and rules, never values) spelled out.
fn explained(error: app::AppError, what: &str) -> anyhow::Error {
    match error {
        app::AppError::Invalid(issues) => {
            let issues: Vec<String> = issues
                .iter()
                .map(|issue| {
                    format!(
                        "{}: {}",
                        issue.expression.as_deref().unwrap_or("-"),
                        issue.diagnostics
                    )
                })
                .collect();
            anyhow::anyhow!("{what}: {}", issues.join("; "))
        }
        other => anyhow::Error::new(other).context(what.to_owned()),
    }
}

/// Writes the insured-person id in its canonical form (as the identity keys are held).
fn canonical_keys(patient: &mut Value) {
    let Some(identifiers) = patient.get_mut("identifier").and_then(Value::as_array_mut) else {
        return;
    };
    for identifier in identifiers {
        if identifier.get("system").and_then(Value::as_str) != Some(jp::INSURED_PERSON_SYSTEM) {
            continue;
        }
        let canonical = identifier
            .get("value")
            .and_then(Value::as_str)
            .and_then(|value| jp::insured_person_id(value).ok())
            .map(|id| id.to_string());
        if let Some(canonical) = canonical {
            identifier["value"] = Value::String(canonical);
        }
    }
}

/// Today (UTC), as the synthetic population's observation day.
fn today() -> synth::Date {
    let instant = app::now().to_fhir_instant();
    synth::Date::parse(&instant[..10]).unwrap_or_else(|| synth::Date::from_ymd(2026, 11, 24))
}

/// The key id of the demo clients' keys.
pub(crate) const DEMO_KID: &str = "demo-1";

/// The demo organisations: `(registry id, kind, name, institution number or None)`. The hospital
/// and the clinic are facilities the demo population's submissions come from: the hospital is
/// the first facility of `Patient/demo-patient-001` (it sees what it submitted without consent),
/// the clinic one that never treated that patient (it needs the patient's consent).
fn demo_organisations() -> Vec<(
    &'static str,
    auth::OrganisationKind,
    &'static str,
    Option<String>,
)> {
    use auth::OrganisationKind as K;
    let generator = synth::Generator::with_options(SEED, synth::Options { as_of: today() });
    let facility_of = |submission: &synth::Submission| {
        submission
            .bundle
            .pointer("/identifier/value")
            .and_then(Value::as_str)
            .and_then(|value| value.split('^').next())
            .map(str::to_owned)
    };
    let first = generator.person(0);
    let hospital = first.submissions.first().and_then(facility_of);
    let theirs: Vec<String> = first.submissions.iter().filter_map(facility_of).collect();
    let clinic = (1..PEOPLE)
        .flat_map(|number| generator.person(number).submissions)
        .filter_map(|submission| facility_of(&submission))
        .find(|facility| !theirs.contains(facility));
    vec![
        ("demo-hospital", K::Hospital, "デモ総合病院", hospital),
        ("demo-clinic", K::Clinic, "デモ内科クリニック", clinic),
        (
            "demo-pharmacy",
            K::Pharmacy,
            "デモ薬局",
            Some("1341234567".to_owned()),
        ),
        (
            "demo-health-centre",
            K::PublicHealthCentre,
            "デモ保健所",
            None,
        ),
    ]
}

/// Registers the demo organisations and one client system each (an ES384 key written under
/// `demo/` beside the registry file), unless already there, and prints how to get a token.
pub(crate) async fn register_access(registry_path: &Path, origin: &str) -> anyhow::Result<()> {
    use auth::Registry as _;
    let registry =
        auth::JsonFileRegistry::open(registry_path).context("cannot open the registry")?;
    let dir = registry_path
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("demo");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut lines = Vec::new();
    for (id, kind, name, institution) in demo_organisations() {
        let organisation_id = auth::OrganisationId::new(id)?;
        let client_id = auth::ClientId::new(format!("{id}-system"))?;
        let key_path = dir.join(format!("{}.pem", client_id.as_str()));
        if registry.organisation(&organisation_id).await?.is_none() {
            let identifiers = match &institution {
                Some(number) => vec![auth::OrgIdentifier::new(
                    auth::INSTITUTION_NUMBER_SYSTEM,
                    number,
                )?],
                None => Vec::new(),
            };
            let prefecture = institution.as_deref().map_or("13", |number| &number[..2]);
            let municipalities = if kind == auth::OrganisationKind::PublicHealthCentre {
                vec![auth::MunicipalityCode::new("131016")?]
            } else {
                Vec::new()
            };
            let organisation = auth::Organisation::new(
                organisation_id.clone(),
                kind,
                name,
                identifiers,
                auth::Prefecture::new(prefecture)?,
                municipalities,
            )?;
            registry.add_organisation(organisation).await?;
        }
        if registry.client(&client_id).await?.is_none() {
            let key = auth::ClientKey::generate(DEMO_KID)?;
            key.save(&key_path)?;
            let jwks = auth::JwkSet::parse(&key.jwks().to_string())?;
            let client = auth::Client::new(
                client_id.clone(),
                organisation_id,
                auth::ClientKeys::Jwks(jwks),
            );
            registry.add_client(client).await?;
        } else if !key_path.exists() {
            anyhow::bail!(
                "the demo client {} is registered but its key {} is gone: start from an empty data directory",
                client_id.as_str(),
                key_path.display()
            );
        }
        lines.push(format!(
            "  {id:<20} client {:<28} key {}",
            client_id.as_str(),
            key_path.display()
        ));
    }
    println!("demo organisations and their client systems (SMART Backend Services, ES384 keys):");
    for line in lines {
        println!("{line}");
    }
    println!("token endpoint: {origin}/auth/token  (README: \"A walk through the API\")");
    Ok(())
}

/// The demo patient's account: `demo-patient-001` logs in as account `demo-001` with this
/// password and the card key written beside the patient directory (fictional, for the README).
pub(crate) const DEMO_PASSWORD: &str = "demo-password-001";

/// Registers the demo patient's account and card unless already there, and prints where the card
/// is.
pub(crate) async fn register_patient(directory_path: &Path) -> anyhow::Result<()> {
    use auth::PatientDirectory as _;
    let directory = auth::JsonFilePatientDirectory::open(directory_path)
        .context("cannot open the patient directory")?;
    let dir = directory_path
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("demo");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let card_path = dir.join("demo-001-card.pem");
    let account = auth::AccountId::new("demo-001")?;
    if directory.account(&account).await?.is_none() {
        let card = auth::CardKey::generate()?;
        card.save(&card_path)?;
        let password = auth::PasswordHash::new(&auth::Password::new(DEMO_PASSWORD)?)?;
        directory
            .add_account(auth::PatientAccount::new(
                account,
                "demo-patient-001",
                password,
                card.public_key(),
            )?)
            .await?;
    } else if !card_path.exists() {
        anyhow::bail!(
            "the demo patient account exists but its card {} is gone: start from an empty data directory",
            card_path.display()
        );
    }
    println!(
        "demo patient: Patient/demo-patient-001, account demo-001, password {DEMO_PASSWORD}, card {}",
        card_path.display()
    );
    Ok(())
}
