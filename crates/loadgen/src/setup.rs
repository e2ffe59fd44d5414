//! The setup before a run, against the running server and its registry and patient files (same
//! machine): the driver's organisations and client systems, the people it reads (found by their
//! insured-person id, or submitted by their facilities), their patient accounts and cards, and
//! their consents. Every step first looks for what an earlier run left, so running the driver
//! again registers, submits and consents nothing new.
//!
//! - **Submitting facilities**: every facility of the synthetic population's Bundles
//!   (`synth`, `--seed`, `--as-of`), registered as the hospital or clinic of the synthetic facility
//!   table with its institution number (or, when an organisation already holds that number, e.g.
//!   `serve --demo`'s hospital, that organisation), each with its own client system.
//! - **Readers** (institution numbers no synthetic facility has, so they see nobody without
//!   consent): `loadgen-hospital-N` and `loadgen-clinic-N` (doctors), `loadgen-pharmacy-N`
//!   (pharmacists), each consented to by every person; `loadgen-emergency-hospital`, whose doctors
//!   hold the emergency privilege and have no consent; `loadgen-unconsented-clinic`, which nobody
//!   consents to (the denied attempts).
//! - **Patients**: one account per person (`loadgen-<patient id>`), its card key in the state
//!   directory; the password is derived from the card (its signature of a fixed message), so the
//!   card file is all a later run needs.
//! - **Consents**: recorded at each reader's reception with the patient's card signature of a
//!   challenge (`POST /fhir/Consent` with `X-Card-Challenge` and `X-Card-Signature`), after a read
//!   of the patient showed that the reader does not see them yet.
//!
//! The server's rate limits (429) are waited out here, a second at a time: this is not the load.
//!
//! Client keys are in `<state>/keys/<client id>.pem` and cards in `<state>/cards/<account>.pem`.
//! A client or account whose key or card is gone is not reused: a new one is registered (an
//! account is disabled first, since a patient has one enabled account).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use auth::{
    ActingUser, Client, ClientId, ClientKey, ClientKeys, JsonFilePatientDirectory,
    JsonFileRegistry, JwkSet, OrgIdentifier, Organisation, OrganisationId, OrganisationKind,
    PatientDirectory as _, Prefecture, PurposeOfUse, Registry as _, Role,
};
use bytes::Bytes;
use serde_json::json;

use crate::http::{Connection, Reply, Request, Target};
use crate::tokens::{Endpoints, Identity, MemberClient, PatientLogin, Tokens};

/// The key id of the driver's client keys.
const KID: &str = "loadgen-1";
/// Scopes of readers (what each kind may have is granted; `Consent.c` for reception).
const READER_SCOPE: &str = "system/*.rs system/Consent.c";
/// Scopes of submitting facilities (search: to find the people they submitted).
const SUBMITTER_SCOPE: &str = "system/Bundle.c system/Patient.rs";
/// Scopes of emergency doctors.
const EMERGENCY_SCOPE: &str = "system/Patient.rs";
/// The prefecture of the readers (Tokyo) and the district of their institution numbers, which no
/// facility of the synthetic table uses.
const READER_PREFECTURE: u8 = 13;
const READER_DISTRICT: u8 = 99;
/// The message a card signs to derive its account's password.
const PASSWORD_MESSAGE: &[u8] = b"tsunagu loadgen password v1";

/// What the setup works on.
#[derive(Debug, Clone)]
pub struct SetupOptions {
    /// The server's registry file.
    pub registry: PathBuf,
    /// The server's patient directory file.
    pub patients: PathBuf,
    /// Where the driver keeps its keys and cards.
    pub state: PathBuf,
    /// The synthetic population: seed, as-of date, how many people.
    pub seed: u64,
    pub as_of: synth::Date,
    pub people: u64,
    /// How many reading hospitals, clinics and pharmacies.
    pub hospitals: usize,
    pub clinics: usize,
    pub pharmacies: usize,
    /// Users (each with their own token) per reading organisation.
    pub users: usize,
    /// PBKDF2 iterations of new patients' password hashes.
    pub password_iterations: u32,
    /// HTTP requests in flight during setup.
    pub concurrency: usize,
}

/// Everything a run needs.
#[derive(Debug)]
pub struct World {
    pub tokens: Arc<Tokens>,
    /// The people the readers read.
    pub people: Vec<Person>,
    /// The submitter identity of each registered facility, by institution number.
    pub submitters: HashMap<String, usize>,
    /// Identities: doctors of reading hospitals and clinics, pharmacists, emergency doctors,
    /// doctors of the clinic nobody consented to.
    pub clinicians: Vec<usize>,
    pub pharmacists: Vec<usize>,
    pub emergency: Vec<usize>,
    pub unconsented: Vec<usize>,
    pub report: SetupReport,
}

/// One person of the population.
#[derive(Debug)]
pub struct Person {
    /// The logical id of their `Patient`.
    pub patient: String,
    /// Their identity as a patient (None when their account is not the driver's).
    pub login: Option<usize>,
    /// Their Bundles, with the identity of the facility that submits each.
    pub bundles: Vec<(usize, Bytes)>,
}

/// What the setup did (JSON `setup`).
#[derive(Debug, Clone, Default)]
pub struct SetupReport {
    pub organisations_added: usize,
    pub clients_added: usize,
    pub people_found: usize,
    pub people_submitted: usize,
    pub bundles_submitted: usize,
    pub accounts_added: usize,
    pub accounts_reused: usize,
    pub people_without_account: usize,
    pub consents_found: usize,
    pub consents_added: usize,
    pub password_hashing_seconds: f64,
    pub seconds: f64,
}

/// A person as generated: their insured-person id and their Bundles.
#[derive(Debug)]
struct Planned {
    member_id: String,
    bundles: Vec<(String, Bytes)>,
}

/// Runs the setup (see the module doc).
///
/// # Errors
/// When a file cannot be read or written, the server refuses a step, or the population does not
/// come out as planned; the message says which step.
pub async fn prepare(
    options: &SetupOptions,
    target: &Target,
    timeout: Duration,
) -> anyhow::Result<World> {
    let started = Instant::now();
    let mut report = SetupReport::default();
    for dir in [options.state.join("keys"), options.state.join("cards")] {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let registry = JsonFileRegistry::open(&options.registry)
        .with_context(|| format!("cannot open the registry {}", options.registry.display()))?;
    let directory = JsonFilePatientDirectory::open(&options.patients).with_context(|| {
        format!(
            "cannot open the patient directory {}",
            options.patients.display()
        )
    })?;

    let mut connection = Connection::new(target.clone(), timeout);
    let endpoints = discover(&mut connection).await?;
    let mut tokens = Tokens::new(endpoints);

    let generator = synth::Generator::with_options(
        options.seed,
        synth::Options {
            as_of: options.as_of,
        },
    );
    let mut planned = Vec::new();
    let mut facilities = BTreeMap::new();
    for number in 0..options.people {
        let person = generator.person(number);
        let mut bundles = Vec::new();
        for submission in &person.submissions {
            facilities.insert(submission.facility.clone(), ());
            bundles.push((
                submission.facility.clone(),
                Bytes::from(serde_json::to_vec(&submission.bundle)?),
            ));
        }
        planned.push(Planned {
            member_id: person.truth.member_id.clone(),
            bundles,
        });
    }

    // Organisations and client systems.
    let mut registration = Registration {
        registry: &registry,
        state: &options.state,
        report: &mut report,
        clients: registry.clients().await?,
        taken: HashSet::new(),
        by_number: HashMap::new(),
    };
    for organisation in registry.organisations().await? {
        if let Some(number) = organisation.institution_number() {
            registration.taken.insert(number.as_str().to_owned());
            registration
                .by_number
                .insert(number.as_str().to_owned(), organisation.id().clone());
        }
    }
    let table = generator.tables();
    for facility in &table.facilities {
        registration.taken.insert(facility.number.clone());
    }
    let mut submitters = HashMap::new();
    for number in facilities.keys() {
        let facility = table
            .facility(number)
            .with_context(|| "a synthetic Bundle names a facility outside the table")?;
        let kind = match facility.kind {
            synth::tables::FacilityKind::Hospital => OrganisationKind::Hospital,
            synth::tables::FacilityKind::Clinic => OrganisationKind::Clinic,
        };
        let organisation = match registration.by_number.get(number) {
            Some(existing) => existing.clone(),
            None => {
                let id = OrganisationId::new(format!("loadgen-f{number}"))?;
                registration
                    .organisation(&id, kind, &facility.name, Some(number))
                    .await?;
                id
            }
        };
        let client = registration.client(&organisation, &mut tokens).await?;
        let user = acting(&organisation, "loadgen-submitter", Role::Doctor, false);
        let identity = tokens.add(Identity::Member {
            client,
            user,
            scope: SUBMITTER_SCOPE,
        });
        submitters.insert(number.clone(), identity);
    }
    let mut readers = Vec::new();
    let mut clinicians = Vec::new();
    let mut pharmacists = Vec::new();
    let mut emergency = Vec::new();
    let mut unconsented = Vec::new();
    let reader_kinds = [
        ("hospital", OrganisationKind::Hospital, options.hospitals),
        ("clinic", OrganisationKind::Clinic, options.clinics),
        ("pharmacy", OrganisationKind::Pharmacy, options.pharmacies),
    ];
    for (name, kind, count) in reader_kinds {
        for n in 1..=count {
            let id = OrganisationId::new(format!("loadgen-{name}-{n}"))?;
            let role = if kind == OrganisationKind::Pharmacy {
                Role::Pharmacist
            } else {
                Role::Doctor
            };
            let users = registration
                .reader(&id, kind, role, false, options.users, &mut tokens)
                .await?;
            readers.push((id, users[0]));
            if kind == OrganisationKind::Pharmacy {
                pharmacists.extend(users);
            } else {
                clinicians.extend(users);
            }
        }
    }
    let id = OrganisationId::new("loadgen-emergency-hospital")?;
    emergency.extend(
        registration
            .reader(
                &id,
                OrganisationKind::Hospital,
                Role::Doctor,
                true,
                options.users,
                &mut tokens,
            )
            .await?,
    );
    let id = OrganisationId::new("loadgen-unconsented-clinic")?;
    unconsented.extend(
        registration
            .reader(
                &id,
                OrganisationKind::Clinic,
                Role::Doctor,
                false,
                options.users,
                &mut tokens,
            )
            .await?,
    );
    drop(registration);

    // The people: found, or submitted by their facilities.
    let tokens = Arc::new(tokens);
    let planned = Arc::new(planned);
    let submitters = Arc::new(submitters);
    let mut tasks = tokio::task::JoinSet::new();
    let workers = options.concurrency.max(1);
    for worker in 0..workers {
        let (tokens, planned, submitters) = (tokens.clone(), planned.clone(), submitters.clone());
        let mut connection = Connection::new(target.clone(), timeout);
        tasks.spawn(async move {
            let mut found = Vec::new();
            for index in (worker..planned.len()).step_by(workers) {
                let outcome =
                    find_or_submit(&tokens, &submitters, &planned[index], &mut connection).await?;
                found.push((index, outcome));
            }
            anyhow::Ok(found)
        });
    }
    let mut patients: Vec<Option<String>> = vec![None; planned.len()];
    while let Some(done) = tasks.join_next().await {
        for (index, (patient, submitted)) in done.context("a setup task failed")?? {
            if submitted > 0 {
                report.people_submitted += 1;
                report.bundles_submitted += submitted;
            } else {
                report.people_found += 1;
            }
            patients[index] = Some(patient);
        }
    }
    let patients: Vec<String> = patients.into_iter().flatten().collect();

    // Patient accounts and cards.
    let mut logins: Vec<Option<PatientLogin>> = Vec::new();
    let hashing = Instant::now();
    for patient in &patients {
        let login = account(&directory, &options.state, patient, options, &mut report).await?;
        logins.push(login);
    }
    report.password_hashing_seconds = hashing.elapsed().as_secs_f64();

    // Consents, at each reader's reception.
    let mut tokens = Arc::try_unwrap(tokens).expect("no setup task holds the tokens any more");
    let mut login_identities = Vec::new();
    for login in logins {
        login_identities.push(login.map(|login| {
            tokens.patients.push(login);
            tokens.add(Identity::Patient {
                login: tokens.patients.len() - 1,
            })
        }));
    }
    let tokens = Arc::new(tokens);
    let mut pairs = Vec::new();
    for (person, login) in login_identities.iter().enumerate() {
        if let Some(login) = login {
            for (organisation, reader) in &readers {
                pairs.push((person, *login, organisation.clone(), *reader));
            }
        }
    }
    let pairs = Arc::new(pairs);
    let patient_ids = Arc::new(patients);
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..workers {
        let (tokens, pairs, patient_ids) = (tokens.clone(), pairs.clone(), patient_ids.clone());
        let mut connection = Connection::new(target.clone(), timeout);
        tasks.spawn(async move {
            let (mut found, mut added) = (0, 0);
            for index in (worker..pairs.len()).step_by(workers) {
                let (person, login, organisation, reader) = &pairs[index];
                let patient = &patient_ids[*person];
                if consent(
                    &tokens,
                    patient,
                    *login,
                    organisation,
                    *reader,
                    &mut connection,
                )
                .await?
                {
                    added += 1;
                } else {
                    found += 1;
                }
            }
            anyhow::Ok((found, added))
        });
    }
    while let Some(done) = tasks.join_next().await {
        let (found, added) = done.context("a setup task failed")??;
        report.consents_found += found;
        report.consents_added += added;
    }

    let submitters = Arc::try_unwrap(submitters).expect("no setup task holds the submitters");
    let planned = Arc::try_unwrap(planned).expect("no setup task holds the population");
    let people = planned
        .into_iter()
        .zip(patient_ids.iter())
        .zip(login_identities)
        .map(|((planned, patient), login)| Person {
            patient: patient.clone(),
            login,
            bundles: planned
                .bundles
                .into_iter()
                .map(|(facility, body)| (submitters[&facility], body))
                .collect(),
        })
        .collect();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(World {
        tokens,
        people,
        submitters,
        clinicians,
        pharmacists,
        emergency,
        unconsented,
        report,
    })
}

/// The token endpoint from the SMART configuration; the challenge endpoint beside it.
async fn discover(connection: &mut Connection) -> anyhow::Result<Endpoints> {
    let reply = connection
        .send(&Request::get("/fhir/.well-known/smart-configuration"))
        .await
        .map_err(|failure| {
            anyhow::anyhow!(
                "the server did not answer its SMART configuration ({})",
                failure.label()
            )
        })?;
    let configuration = reply
        .json()
        .filter(|_| reply.status == 200)
        .with_context(|| format!("the SMART configuration answered {}", reply.status))?;
    let token_url = configuration["token_endpoint"]
        .as_str()
        .context("the SMART configuration names no token_endpoint")?
        .to_owned();
    let token_path = token_url
        .parse::<http::Uri>()
        .ok()
        .map(|uri| uri.path().to_owned())
        .context("the token endpoint is not a URL")?;
    let challenge_path = match token_path.strip_suffix("/token") {
        Some(parent) => format!("{parent}/challenge"),
        None => "/auth/challenge".to_owned(),
    };
    Ok(Endpoints {
        token_url,
        token_path,
        challenge_path,
    })
}

/// Registers organisations and clients, reusing what is there.
struct Registration<'a> {
    registry: &'a JsonFileRegistry,
    state: &'a Path,
    report: &'a mut SetupReport,
    clients: Vec<Client>,
    /// Institution numbers registered or used by the synthetic facility table.
    taken: HashSet<String>,
    by_number: HashMap<String, OrganisationId>,
}

impl Registration<'_> {
    /// Registers `id` unless it exists (then its kind must be `kind`).
    async fn organisation(
        &mut self,
        id: &OrganisationId,
        kind: OrganisationKind,
        name: &str,
        number: Option<&str>,
    ) -> anyhow::Result<()> {
        if let Some(existing) = self.registry.organisation(id).await? {
            if existing.kind() != kind {
                bail!(
                    "the registry holds {} as a {}, not a {}",
                    id.as_str(),
                    existing.kind().code(),
                    kind.code()
                );
            }
            return Ok(());
        }
        let number = match number {
            Some(number) => number.to_owned(),
            None => self.free_number(kind)?,
        };
        let organisation = Organisation::new(
            id.clone(),
            kind,
            name,
            vec![OrgIdentifier::new(
                auth::INSTITUTION_NUMBER_SYSTEM,
                &number,
            )?],
            Prefecture::new(&number[..2])?,
            Vec::new(),
        )?;
        self.registry.add_organisation(organisation).await?;
        self.taken.insert(number.clone());
        self.by_number.insert(number, id.clone());
        self.report.organisations_added += 1;
        Ok(())
    }

    /// An institution number nobody has, for a reader.
    fn free_number(&self, kind: OrganisationKind) -> anyhow::Result<String> {
        let table = if kind == OrganisationKind::Pharmacy {
            4
        } else {
            1
        };
        (9000..10_000)
            .map(|serial| {
                synth::codes::institution_number(READER_PREFECTURE, table, READER_DISTRICT, serial)
            })
            .find(|number| !self.taken.contains(number))
            .context("no free institution number left for the driver's organisations")
    }

    /// The driver's client of `organisation` whose key it holds, or a new one.
    async fn client(
        &mut self,
        organisation: &OrganisationId,
        tokens: &mut Tokens,
    ) -> anyhow::Result<usize> {
        let prefix = format!("{}-loadgen-", organisation.as_str());
        let ours: Vec<&Client> = self
            .clients
            .iter()
            .filter(|client| client.client_id().as_str().starts_with(&prefix))
            .collect();
        for client in &ours {
            let path = key_path(self.state, client.client_id().as_str());
            if !client.is_revoked() && path.exists() {
                let key = ClientKey::load(&path, KID)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                return Ok(push_client(
                    tokens,
                    client.client_id().as_str(),
                    organisation,
                    key,
                ));
            }
        }
        let taken: HashSet<&str> = self
            .clients
            .iter()
            .map(|client| client.client_id().as_str())
            .collect();
        let client_id = (1..)
            .map(|n| format!("{prefix}{n}"))
            .find(|id| !taken.contains(id.as_str()))
            .expect("an unused client id");
        let key = ClientKey::generate(KID)?;
        let path = key_path(self.state, &client_id);
        key.save(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        let client = Client::new(
            ClientId::new(&client_id)?,
            organisation.clone(),
            ClientKeys::Jwks(JwkSet::parse(&key.jwks().to_string())?),
        );
        self.registry.add_client(client.clone()).await?;
        self.clients.push(client);
        self.report.clients_added += 1;
        Ok(push_client(tokens, &client_id, organisation, key))
    }

    /// A reading organisation, its client and `users` identities.
    async fn reader(
        &mut self,
        id: &OrganisationId,
        kind: OrganisationKind,
        role: Role,
        emergency_privilege: bool,
        users: usize,
        tokens: &mut Tokens,
    ) -> anyhow::Result<Vec<usize>> {
        let name = format!("負荷試験 {}", id.as_str());
        self.organisation(id, kind, &name, None).await?;
        let client = self.client(id, tokens).await?;
        let scope = if emergency_privilege {
            EMERGENCY_SCOPE
        } else {
            READER_SCOPE
        };
        Ok((1..=users.max(1))
            .map(|n| {
                let user = acting(
                    id,
                    &format!("loadgen-{}-{n}", role.code()),
                    role,
                    emergency_privilege,
                );
                tokens.add(Identity::Member {
                    client,
                    user,
                    scope,
                })
            })
            .collect())
    }
}

fn key_path(state: &Path, client_id: &str) -> PathBuf {
    state.join("keys").join(format!("{client_id}.pem"))
}

fn push_client(
    tokens: &mut Tokens,
    client_id: &str,
    organisation: &OrganisationId,
    key: ClientKey,
) -> usize {
    tokens.clients.push(MemberClient {
        client_id: client_id.to_owned(),
        organisation: organisation.as_str().to_owned(),
        key,
    });
    tokens.clients.len() - 1
}

/// A user of `organisation`.
fn acting(
    organisation: &OrganisationId,
    id: &str,
    role: Role,
    emergency_privilege: bool,
) -> ActingUser {
    ActingUser {
        organisation: organisation.as_str().to_owned(),
        id: id.to_owned(),
        name: format!("負荷 試験 {id}"),
        role,
        purpose_of_use: if emergency_privilege {
            PurposeOfUse::EmergencyTreatment
        } else {
            PurposeOfUse::Treatment
        },
        emergency_privilege,
    }
}

/// The person's `Patient` id, searched by their insured-person id as the facility of their first
/// Bundle; when not found, every Bundle is submitted by its facility first. Returns the id and
/// how many Bundles were submitted.
async fn find_or_submit(
    tokens: &Tokens,
    submitters: &HashMap<String, usize>,
    person: &Planned,
    connection: &mut Connection,
) -> anyhow::Result<(String, usize)> {
    let (first_facility, _) = person
        .bundles
        .first()
        .context("a synthetic person without submissions")?;
    let searcher = submitters[first_facility];
    if let Some(patient) = find(tokens, searcher, &person.member_id, connection).await? {
        return Ok((patient, 0));
    }
    for (facility, body) in &person.bundles {
        let identity = submitters[facility];
        let token = token(tokens, identity, connection).await?;
        let reply = send(
            connection,
            Request::post_fhir("/fhir/Bundle", body.clone()).bearer(&token),
        )
        .await?;
        if reply.status != 200 && reply.status != 201 {
            bail!(
                "a facility's submission was refused ({}): {}",
                reply.status,
                outcome_text(&reply)
            );
        }
    }
    let patient = find(tokens, searcher, &person.member_id, connection)
        .await?
        .context("a submitted person is not found by their insured-person id")?;
    Ok((patient, person.bundles.len()))
}

/// `Patient?identifier=<insured-person system>|<id>` as `identity`.
async fn find(
    tokens: &Tokens,
    identity: usize,
    member_id: &str,
    connection: &mut Connection,
) -> anyhow::Result<Option<String>> {
    let token = token(tokens, identity, connection).await?;
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair(
            "identifier",
            &format!("{}|{member_id}", jp::INSURED_PERSON_SYSTEM),
        )
        .append_pair("_count", "2")
        .finish();
    let reply = send(
        connection,
        Request::get(format!("/fhir/Patient?{query}")).bearer(&token),
    )
    .await?;
    if reply.status != 200 {
        bail!(
            "a search by insured-person id answered {}: {}",
            reply.status,
            outcome_text(&reply)
        );
    }
    let bundle = reply.json().context("a search answered no JSON")?;
    let ids: Vec<&str> = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry["resource"]["id"].as_str())
        .collect();
    match ids.as_slice() {
        [] => Ok(None),
        [id] => Ok(Some((*id).to_owned())),
        _ => bail!("two Patients hold one insured-person id"),
    }
}

/// The driver's account of `patient` (reused when its card is in the state directory), or a new
/// one; None when the patient's enabled account is someone else's.
async fn account(
    directory: &JsonFilePatientDirectory,
    state: &Path,
    patient: &str,
    options: &SetupOptions,
    report: &mut SetupReport,
) -> anyhow::Result<Option<PatientLogin>> {
    let base = format!("loadgen-{patient}");
    if let Some(existing) = directory.account_for_patient(patient).await?
        && !existing.is_disabled()
    {
        if !existing.account_id().as_str().starts_with(&base) {
            report.people_without_account += 1;
            return Ok(None);
        }
        let path = card_path(state, existing.account_id().as_str());
        if path.exists() {
            let card = auth::CardKey::load(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            report.accounts_reused += 1;
            return Ok(Some(login(existing.account_id().clone(), card, patient)));
        }
        // Its card is gone: a new account replaces it, as after a lost card.
        directory
            .disable_account(existing.account_id(), SystemTime::now())
            .await?;
    }
    let mut account_id = None;
    for n in 1.. {
        let candidate = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let candidate = auth::AccountId::new(candidate)
            .context("a patient id too long for the driver's account ids")?;
        if directory.account(&candidate).await?.is_none() {
            account_id = Some(candidate);
            break;
        }
    }
    let account_id = account_id.expect("an unused account id");
    let card = auth::CardKey::generate()?;
    let path = card_path(state, account_id.as_str());
    card.save(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    let login = login(account_id.clone(), card, patient);
    let hash = auth::PasswordHash::with_iterations(
        &auth::Password::new(login.password.clone())?,
        options.password_iterations,
    )?;
    directory
        .add_account(auth::PatientAccount::new(
            account_id,
            patient,
            hash,
            login.card.public_key(),
        )?)
        .await?;
    report.accounts_added += 1;
    Ok(Some(login))
}

fn card_path(state: &Path, account: &str) -> PathBuf {
    state.join("cards").join(format!("{account}.pem"))
}

/// The patient's login, with the password derived from the card.
fn login(account: auth::AccountId, card: auth::CardKey, patient: &str) -> PatientLogin {
    let password = card.sign(PASSWORD_MESSAGE)[..32].to_owned();
    PatientLogin {
        account,
        password,
        card,
        patient: patient.to_owned(),
    }
}

/// Makes sure `reader`'s organisation has the patient's consent: a read of the patient as the
/// reader first (200: it has); else the consent recorded at its reception with the card.
/// Returns whether a consent was added.
async fn consent(
    tokens: &Tokens,
    patient: &str,
    login: usize,
    organisation: &OrganisationId,
    reader: usize,
    connection: &mut Connection,
) -> anyhow::Result<bool> {
    let token = token(tokens, reader, connection).await?;
    let read = send(
        connection,
        Request::get(format!("/fhir/Patient/{patient}")).bearer(&token),
    )
    .await?;
    match read.status {
        200 => return Ok(false),
        404 => {}
        status => bail!(
            "a reader's probe read answered {status}: {}",
            outcome_text(&read)
        ),
    }
    let challenge = tokens
        .challenge_patiently(connection)
        .await
        .map_err(|refused| {
            anyhow::anyhow!(
                "the challenge endpoint refused a challenge ({})",
                refused.0.label()
            )
        })?;
    let patient_login = tokens.login_of(login).expect("a patient identity");
    let signature = patient_login.card.sign(&auth::card_message(
        &auth::consent_purpose(organisation),
        &challenge,
        &patient_login.account,
    ));
    let body = json!({
        "resourceType": "Consent",
        "status": "active",
        "patient": {"reference": format!("Patient/{patient}")},
        "provision": {"actor": [{"reference": {"reference": format!("Organization/{}", organisation.as_str())}}]},
    });
    let reply = send(
        connection,
        Request::post_fhir("/fhir/Consent", Bytes::from(body.to_string()))
            .bearer(&token)
            .header("x-card-challenge", challenge)
            .header("x-card-signature", signature),
    )
    .await?;
    if reply.status != 201 {
        bail!(
            "a consent at reception was refused ({}): {}",
            reply.status,
            outcome_text(&reply)
        );
    }
    Ok(true)
}

async fn token(
    tokens: &Tokens,
    identity: usize,
    connection: &mut Connection,
) -> anyhow::Result<Arc<str>> {
    tokens
        .token_patiently(identity, connection)
        .await
        .map_err(|refused| {
            anyhow::anyhow!(
                "the token endpoint refused one of the driver's users ({})",
                refused.0.label()
            )
        })
}

/// Sends a setup request; the server's rate limit (429) is waited out for up to a minute.
async fn send(connection: &mut Connection, request: Request) -> anyhow::Result<Reply> {
    let deadline = Instant::now() + crate::tokens::PATIENCE;
    loop {
        let reply = connection.send(&request).await.map_err(|failure| {
            anyhow::anyhow!("the server did not answer ({})", failure.label())
        })?;
        if reply.status != 429 || Instant::now() >= deadline {
            return Ok(reply);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The diagnostics of an OperationOutcome (they name elements and rules, never values).
fn outcome_text(reply: &Reply) -> String {
    reply
        .json()
        .and_then(|body| {
            let texts: Vec<String> = body["issue"]
                .as_array()?
                .iter()
                .filter_map(|issue| issue["diagnostics"].as_str().map(str::to_owned))
                .collect();
            Some(texts.join("; "))
        })
        .unwrap_or_else(|| {
            String::from_utf8_lossy(&reply.body[..reply.body.len().min(300)]).into_owned()
        })
}
