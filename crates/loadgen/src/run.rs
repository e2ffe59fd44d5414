//! The load itself. Closed loop: `--connections` tasks, each on its own keep-alive connection,
//! issuing one operation after another. Open loop: operations at a fixed rate on a fixed schedule
//! (operation *k* is due at start + *k*/rate, whatever happened before), each on a free connection
//! of a pool of at most `--max-in-flight`; an operation due when all are busy is dropped and
//! counted. In open loop the first request of an operation is timed from its *scheduled* time, so
//! a server that stalls is charged for the requests that queued behind the stall (no coordinated
//! omission); every other request is timed from its own send.
//!
//! Both run the warm-up first (same load, not recorded) and then the measured window; requests
//! started in the window are waited for and counted even when they end after it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::json;
use synth::rng::Rng;

use crate::http::{Connection, Request, Target};
use crate::mix::{Class, Mix, Operation};
use crate::server::Sample;
use crate::setup::{SetupOptions, World};
use crate::stats::{Outcome, Recorder};
use crate::tokens::Sink;

/// How operations arrive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// `connections` tasks, back to back.
    Closed { connections: usize },
    /// `rate` operations per second, at most `max_in_flight` at once.
    Open { rate: f64, max_in_flight: usize },
}

/// How to run the load.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub mode: Mode,
    pub warmup: Duration,
    pub duration: Duration,
    pub timeout: Duration,
    pub mix: Mix,
    /// Seeds the draws of operations, people and users.
    pub seed: u64,
    /// The server's process, to sample its memory and CPU.
    pub server_pid: Option<u32>,
    /// Obtain every token the mix will use before the warm-up (else on first use, in the load).
    pub sign_in: bool,
}

/// What a run measured.
#[derive(Debug)]
pub struct Measured {
    pub recorder: Recorder,
    /// Readings of the machine, the driver and the server, every [`SAMPLE_INTERVAL`] from the
    /// warm-up on, and one at the end.
    pub samples: Vec<Sample>,
    /// The server's peak resident set size over its life, read at the end.
    pub peak_rss_bytes: Option<u64>,
    /// How often a new person's Bundle was not ready when asked for (the generator fell behind).
    pub fresh_waits: u64,
    /// The sign-in before the warm-up, when there was one.
    pub sign_in: Option<SignIn>,
}

/// Tokens obtained before the warm-up.
#[derive(Debug, Clone, Copy)]
pub struct SignIn {
    /// Identities signed in (facility users and patients).
    pub identities: usize,
    pub seconds: f64,
}

/// How often the server process is read.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(250);
/// Bundles of new people prepared ahead of use.
const FRESH_AHEAD: usize = 64;
/// Longest an operation waits for a new person's Bundle (then it is skipped, not sent).
const FRESH_PATIENCE: Duration = Duration::from_secs(5);

/// What every task shares.
struct Shared {
    world: Arc<World>,
    mix: Mix,
    sink: Sink,
    target: Target,
    timeout: Duration,
    /// People with a patient account of the driver's.
    with_login: Vec<usize>,
    /// Every Bundle of the population (person, bundle), and whether one is being resubmitted (two
    /// submissions of one identifier at once are not what a facility does).
    bundles: Vec<(usize, usize)>,
    resubmitting: Vec<AtomicBool>,
    /// First Bundles of people the server has never seen, made ahead by a generator thread.
    fresh: tokio::sync::Mutex<tokio::sync::mpsc::Receiver<(usize, Bytes)>>,
    fresh_waits: std::sync::atomic::AtomicU64,
}

/// Runs the load against a prepared world.
///
/// # Errors
/// When the mix needs something the world lacks (e.g. patient flows without a patient account).
pub async fn run(
    world: Arc<World>,
    setup: &SetupOptions,
    options: &RunOptions,
    target: &Target,
) -> anyhow::Result<Measured> {
    let with_login: Vec<usize> = world
        .people
        .iter()
        .enumerate()
        .filter(|(_, person)| person.login.is_some())
        .map(|(index, _)| index)
        .collect();
    anyhow::ensure!(
        !world.people.is_empty(),
        "the population is empty (--people)"
    );
    let patient_flows = [
        Operation::PatientRead,
        Operation::PatientSummary,
        Operation::PatientHistory,
    ];
    anyhow::ensure!(
        !with_login.is_empty() || patient_flows.iter().all(|op| options.mix.weight(*op) == 0),
        "no person has a patient account of the driver's: give patient flows weight 0 with --mix"
    );
    let bundles: Vec<(usize, usize)> = world
        .people
        .iter()
        .enumerate()
        .flat_map(|(person, p)| (0..p.bundles.len()).map(move |bundle| (person, bundle)))
        .collect();
    let sign_in = if options.sign_in {
        let identities = identities_used(&world, &options.mix, &with_login);
        let started = Instant::now();
        sign_in_all(&world, &identities, target, options.timeout).await?;
        Some(SignIn {
            identities: identities.len(),
            seconds: started.elapsed().as_secs_f64(),
        })
    } else {
        None
    };
    let (fresh_sender, fresh_receiver) = tokio::sync::mpsc::channel(FRESH_AHEAD);
    let generator = (options.mix.weight(Operation::SubmitNew) > 0)
        .then(|| start_generator(&world, setup, fresh_sender));

    let start = Instant::now();
    let measure_start = start + options.warmup;
    let end = measure_start + options.duration;
    let shared = Arc::new(Shared {
        resubmitting: bundles.iter().map(|_| AtomicBool::new(false)).collect(),
        bundles,
        world,
        mix: options.mix.clone(),
        sink: Mutex::new(Recorder::new(measure_start, options.duration)),
        target: target.clone(),
        timeout: options.timeout,
        with_login,
        fresh: tokio::sync::Mutex::new(fresh_receiver),
        fresh_waits: std::sync::atomic::AtomicU64::new(0),
    });
    let pid = options.server_pid;
    let sampler = tokio::spawn(async move {
        let mut samples = Vec::new();
        let mut ticks = tokio::time::interval(SAMPLE_INTERVAL);
        while Instant::now() < end {
            ticks.tick().await;
            let at = signed_seconds(measure_start, Instant::now());
            samples.extend(crate::server::sample(pid, at));
        }
        samples
    });

    match options.mode {
        Mode::Closed { connections } => closed(&shared, connections, options.seed, end).await,
        Mode::Open {
            rate,
            max_in_flight,
        } => open(&shared, rate, max_in_flight, options.seed, start, end).await,
    }

    // The generator stops once nobody can receive what it makes.
    shared.fresh.lock().await.close();
    let mut samples = sampler.await.unwrap_or_default();
    samples.extend(crate::server::sample(
        pid,
        signed_seconds(measure_start, Instant::now()),
    ));
    let peak_rss_bytes = options.server_pid.and_then(crate::server::peak_rss);
    if let Some(generator) = generator {
        let _ = tokio::task::spawn_blocking(move || generator.join()).await;
    }
    let shared = Arc::into_inner(shared).expect("every load task has ended");
    Ok(Measured {
        recorder: shared.sink.into_inner().expect("the recorder lock"),
        samples,
        peak_rss_bytes,
        fresh_waits: shared.fresh_waits.into_inner(),
        sign_in,
    })
}

/// The identities the mix's operations act as.
fn identities_used(world: &World, mix: &Mix, with_login: &[usize]) -> Vec<usize> {
    let mut identities = Vec::new();
    let uses = |operations: &[Operation]| operations.iter().any(|op| mix.weight(*op) > 0);
    if uses(&[Operation::SubmitNew, Operation::Resubmit]) {
        identities.extend(world.submitters.values().copied());
    }
    if uses(&[
        Operation::ClinicianSummary,
        Operation::ClinicianLabs,
        Operation::ClinicianRead,
    ]) {
        identities.extend(&world.clinicians);
    }
    if uses(&[
        Operation::PharmacistMedications,
        Operation::PharmacistAllergies,
    ]) {
        identities.extend(&world.pharmacists);
    }
    if uses(&[
        Operation::PatientRead,
        Operation::PatientSummary,
        Operation::PatientHistory,
    ]) {
        identities.extend(
            with_login
                .iter()
                .filter_map(|person| world.people[*person].login),
        );
    }
    if uses(&[Operation::Emergency]) {
        identities.extend(&world.emergency);
    }
    if uses(&[Operation::DeniedRead, Operation::DeniedSearch]) {
        identities.extend(&world.unconsented);
    }
    identities.sort_unstable();
    identities.dedup();
    identities
}

/// Obtains the token of every identity, on a few connections at once.
async fn sign_in_all(
    world: &Arc<World>,
    identities: &[usize],
    target: &Target,
    timeout: Duration,
) -> anyhow::Result<()> {
    const CONNECTIONS: usize = 8;
    let identities = Arc::new(identities.to_vec());
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..CONNECTIONS {
        let (world, identities) = (world.clone(), identities.clone());
        let mut connection = Connection::new(target.clone(), timeout);
        tasks.spawn(async move {
            for identity in identities.iter().skip(worker).step_by(CONNECTIONS) {
                world
                    .tokens
                    .token_patiently(*identity, &mut connection)
                    .await
                    .map_err(|refused| {
                        anyhow::anyhow!(
                            "signing in before the load: a token request failed ({})",
                            refused.0.label()
                        )
                    })?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

fn signed_seconds(origin: Instant, at: Instant) -> f64 {
    if at >= origin {
        (at - origin).as_secs_f64()
    } else {
        -(origin - at).as_secs_f64()
    }
}

/// Closed loop: each task back to back until `end`.
async fn closed(shared: &Arc<Shared>, connections: usize, seed: u64, end: Instant) {
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..connections.max(1) {
        let shared = shared.clone();
        tasks.spawn(async move {
            let mut connection = Connection::new(shared.target.clone(), shared.timeout);
            let mut random = Rng::for_stream(seed, task as u64);
            let mut deck = shared.mix.deck();
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                let operation = deck.draw(&mut random);
                perform(&shared, operation, &mut connection, &mut random, now).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// Open loop: operation `k` due at `start + k / rate`.
async fn open(
    shared: &Arc<Shared>,
    rate: f64,
    max_in_flight: usize,
    seed: u64,
    start: Instant,
    end: Instant,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(max_in_flight.max(1)));
    let pool: Arc<Mutex<Vec<Connection>>> = Arc::new(Mutex::new(Vec::new()));
    let mut random = Rng::for_stream(seed, u64::MAX);
    let mut deck = shared.mix.deck();
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0u64.. {
        let due = start + Duration::from_secs_f64(k as f64 / rate);
        if due >= end {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let operation = deck.draw(&mut random);
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            shared.sink.lock().expect("the recorder lock").record(
                operation.first_class(),
                due,
                due,
                Outcome::Dropped,
            );
            continue;
        };
        let task_seed = random.next_u64();
        let (shared, pool) = (shared.clone(), pool.clone());
        tasks.spawn(async move {
            let idle = pool.lock().expect("the pool lock").pop();
            let mut connection =
                idle.unwrap_or_else(|| Connection::new(shared.target.clone(), shared.timeout));
            let mut random = Rng::new(task_seed);
            perform(&shared, operation, &mut connection, &mut random, due).await;
            pool.lock().expect("the pool lock").push(connection);
            drop(slot);
        });
        // Reap finished tasks now and then so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

/// One operation: picks who does it and to whom, obtains their token, sends its request(s) and
/// records them. `started` is when the first request is charged from.
async fn perform(
    shared: &Shared,
    operation: Operation,
    connection: &mut Connection,
    random: &mut Rng,
    started: Instant,
) {
    let world = &shared.world;
    let person = &world.people[random.below(world.people.len())];
    let patient = person.patient.as_str();
    let (identity, request) = match operation {
        Operation::SubmitNew => {
            let mut fresh = shared.fresh.lock().await;
            let next = match fresh.try_recv() {
                Ok(next) => Some(next),
                Err(_) => {
                    shared
                        .fresh_waits
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    // Bounded, so that a generator that cannot keep up never holds the run's end.
                    tokio::time::timeout(FRESH_PATIENCE, fresh.recv())
                        .await
                        .ok()
                        .flatten()
                }
            };
            drop(fresh);
            let Some((submitter, body)) = next else {
                return;
            };
            (submitter, Request::post_fhir("/fhir/Bundle", body))
        }
        Operation::Resubmit => {
            let Some((index, (person, bundle))) = claim_bundle(shared, random) else {
                return;
            };
            let (submitter, body) = world.people[person].bundles[bundle].clone();
            send_as(
                shared,
                submitter,
                Class::Resubmit,
                Request::post_fhir("/fhir/Bundle", body),
                connection,
                started,
            )
            .await;
            shared.resubmitting[index].store(false, Ordering::Release);
            return;
        }
        Operation::ClinicianSummary => (
            *random.pick(&world.clinicians),
            Request::get(format!("/fhir/Patient/{patient}/$summary")),
        ),
        Operation::ClinicianLabs => (
            *random.pick(&world.clinicians),
            Request::get(format!(
                "/fhir/Observation?patient={patient}&category=laboratory&_sort=-date"
            )),
        ),
        Operation::ClinicianRead => (
            *random.pick(&world.clinicians),
            Request::get(format!("/fhir/Patient/{patient}")),
        ),
        Operation::PharmacistMedications => (
            *random.pick(&world.pharmacists),
            Request::get(format!("/fhir/MedicationRequest?patient={patient}")),
        ),
        Operation::PharmacistAllergies => (
            *random.pick(&world.pharmacists),
            Request::get(format!("/fhir/AllergyIntolerance?patient={patient}")),
        ),
        Operation::PatientRead | Operation::PatientSummary | Operation::PatientHistory => {
            let own = &world.people[*random.pick(&shared.with_login)];
            let identity = own.login.expect("a person with a login");
            let patient = &own.patient;
            let path = match operation {
                Operation::PatientRead => format!("/fhir/Patient/{patient}"),
                Operation::PatientSummary => format!("/fhir/Patient/{patient}/$summary"),
                _ => format!("/fhir/AuditEvent?patient={patient}"),
            };
            (identity, Request::get(path))
        }
        Operation::Emergency => {
            let doctor = *random.pick(&world.emergency);
            let parameters = json!({
                "resourceType": "Parameters",
                "parameter": [{"name": "reason", "valueString": "意識障害で救急搬送、本人同意取得不能（負荷試験）"}],
            });
            let opened = send_as(
                shared,
                doctor,
                Class::EmergencyAccess,
                Request::post_fhir(
                    format!("/fhir/Patient/{patient}/$emergency-access"),
                    Bytes::from(parameters.to_string()),
                ),
                connection,
                started,
            )
            .await;
            if opened.is_expected() {
                send_as(
                    shared,
                    doctor,
                    Class::EmergencySummary,
                    Request::get(format!("/fhir/Patient/{patient}/$emergency-summary")),
                    connection,
                    Instant::now(),
                )
                .await;
            }
            return;
        }
        Operation::DeniedRead => (
            *random.pick(&world.unconsented),
            Request::get(format!("/fhir/Patient/{patient}")),
        ),
        Operation::DeniedSearch => (
            *random.pick(&world.unconsented),
            Request::get(format!("/fhir/Observation?patient={patient}")),
        ),
    };
    send_as(
        shared,
        identity,
        operation.first_class(),
        request,
        connection,
        started,
    )
    .await;
}

/// A random Bundle of the population that nobody is resubmitting right now, marked as taken.
fn claim_bundle(shared: &Shared, random: &mut Rng) -> Option<(usize, (usize, usize))> {
    for _ in 0..16 {
        let index = random.below(shared.bundles.len());
        if shared.resubmitting[index]
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            return Some((index, shared.bundles[index]));
        }
    }
    None
}

/// Sends `request` as `identity` (its token first) and records it as `class`, charged from
/// `started`; returns the outcome.
async fn send_as(
    shared: &Shared,
    identity: usize,
    class: Class,
    request: Request,
    connection: &mut Connection,
    started: Instant,
) -> Outcome {
    let outcome = match shared
        .world
        .tokens
        .token(identity, connection, Some(&shared.sink))
        .await
    {
        Err(_) => Outcome::NoToken,
        Ok(token) => match connection.send(&request.bearer(&token)).await {
            Err(failure) => Outcome::Failed(failure),
            Ok(reply) if !class.expected().contains(&reply.status) => {
                Outcome::Unexpected(reply.status)
            }
            Ok(reply) if class == Class::DeniedSearch && has_entries(&reply.body) => {
                Outcome::NotEmpty
            }
            Ok(reply) => Outcome::Expected(reply.status),
        },
    };
    shared
        .sink
        .lock()
        .expect("the recorder lock")
        .record(class, started, Instant::now(), outcome);
    outcome
}

/// Whether a searchset Bundle holds any entry.
fn has_entries(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|bundle| {
            bundle
                .get("entry")
                .and_then(|entry| entry.as_array().map(Vec::len))
        })
        .is_some_and(|entries| entries > 0)
}

/// A thread making the first Bundle of people nobody has submitted yet (person numbers far beyond
/// the population's, different on every run), for facilities the setup registered.
fn start_generator(
    world: &World,
    setup: &SetupOptions,
    sender: tokio::sync::mpsc::Sender<(usize, Bytes)>,
) -> std::thread::JoinHandle<()> {
    let submitters = world.submitters.clone();
    let generator =
        synth::Generator::with_options(setup.seed, synth::Options { as_of: setup.as_of });
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64);
    // Far beyond the population, and apart for runs a nanosecond apart.
    let first = (1u64 << 40) + (nanos % (1u64 << 50)) * 1024;
    std::thread::spawn(move || {
        for number in first.. {
            let person = generator.person(number);
            let Some((submitter, bundle)) = person.submissions.iter().find_map(|submission| {
                submitters
                    .get(&submission.facility)
                    .map(|submitter| (*submitter, &submission.bundle))
            }) else {
                continue;
            };
            let Ok(body) = serde_json::to_vec(bundle) else {
                continue;
            };
            if sender
                .blocking_send((submitter, Bytes::from(body)))
                .is_err()
            {
                return;
            }
        }
    })
}
