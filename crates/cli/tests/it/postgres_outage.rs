//! PostgreSQL outages seen through the real binary: `tsunagu serve` on its own throwaway cluster
//! (driven with `scripts/pg-cluster.sh`, not the shared `TEST_POSTGRES_URL` one, since the tests
//! take the database away), used the way a facility system uses it: registered with
//! `tsunagu org add` and `tsunagu client add` (its key from `tsunagu client keygen`), signed in with
//! a SMART Backend Services token, writing by submitting a JP-CLINS Bundle (the published
//! lab-results example) and reading back the Patient that submission filed.
//!
//! * A database that is stopped: reads, searches, submissions and `/readyz` answer 503 within
//!   seconds instead of hanging, and the server keeps running; when the database comes back on the
//!   same port, the same requests succeed again without restarting tsunagu.
//! * A database that hangs (its processes stopped with SIGSTOP: what a stalled disk or a paused VM
//!   looks like from outside, connections open but never answered): a request answers 503 once
//!   the store's call timeout (statement timeout + connect timeout) has passed, and the service
//!   recovers when the database resumes.
//!
//! Needs PostgreSQL 15's server binaries in `/usr/lib/postgresql/15/bin`. Without them the tests
//! print a loud SKIPPED notice and pass locally, but fail when `CI` is set.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{
    CLIENT_TIMEOUT, DataDir, Facility, Server, request, request_within, run_ok, urlencode,
};

const INITDB: &str = "/usr/lib/postgresql/15/bin/initdb";
/// The password `scripts/pg-cluster.sh` gives the cluster's superuser: must never reach the logs.
const PASSWORD: &str = "tsunagu-test";
/// The submission: the published JP-CLINS lab-results collection (a Patient and 4 Observations).
const SUBMISSION: &str = "Bundle-Bundle-CLINS-Observations-Example-01.json";
/// The facility patient-id system of a medical institution, followed by its 10-digit number.
const FACILITY_PATIENT_ID_SYSTEM: &str = "urn:oid:1.2.392.100495.20.3.51.1";
/// What the test facility's token asks for: reading patients and results, submitting Bundles.
const SCOPE: &str = "system/Patient.rs system/Observation.rs system/Bundle.c";
/// How quickly a request must answer 503 once the database is stopped (the default connect and
/// wait timeouts are 5 s each; a refused connection is much faster than either).
const UNAVAILABLE_WITHIN: Duration = Duration::from_secs(6);
/// How long the service may take to serve again after the database is back.
const RECOVERY_WITHIN: Duration = Duration::from_secs(30);
/// How quickly a request to a hung database must answer 503: the test's statement and connect
/// timeouts are 1 s each, so the call timeout is 2 s; the rest is margin for a busy machine.
const HUNG_UNAVAILABLE_WITHIN: Duration = Duration::from_secs(8);

#[test]
fn a_stopped_database_answers_503_and_the_service_recovers_without_a_restart() {
    if !postgres_binaries_present(
        "a_stopped_database_answers_503_and_the_service_recovers_without_a_restart",
    ) {
        return;
    }
    let cluster = Cluster::start();
    // Default pool settings: what an operator gets without tuning.
    let mut site = Site::start(&cluster, &[]);
    let submission = site.submit_and_read_back();
    let read_path = format!("/fhir/Patient/{}", submission.patient);
    let bundle = submission.bundle.to_string();

    // The database goes away: its connections are terminated and new ones are refused.
    let token = site.facility.token();
    cluster.stop("fast");
    let down: [(&str, &str, Option<&str>); 3] = [
        ("GET", &read_path, None),
        ("GET", "/fhir/Patient?family=x", None),
        ("POST", "/fhir/Bundle", Some(&bundle)),
    ];
    for (method, path, body) in down {
        let started = Instant::now();
        let reply = request(site.port(), method, path, Some(&token), body).unwrap_or_else(|| {
            panic!("{method} {path} hung or failed while the database was down")
        });
        let took = started.elapsed();
        assert_eq!(reply.status, 503, "{method} {path}: {}", reply.body);
        assert!(took < UNAVAILABLE_WITHIN, "{method} {path} took {took:?}");
        assert_eq!(reply.header("retry-after"), Some("5"), "{method} {path}");
        let outcome = reply.json();
        assert_eq!(outcome["resourceType"], "OperationOutcome");
        assert_eq!(outcome["issue"][0]["code"], "transient", "{method} {path}");
        // Nothing about the cause: no host, port or driver message.
        assert!(
            !reply.body.contains("127.0.0.1")
                && !reply.body.contains(&format!(":{}", cluster.port))
                && !reply.body.contains("refused"),
            "{}",
            reply.body
        );
    }
    let started = Instant::now();
    let ready = request(site.port(), "GET", "/readyz", None, None).expect("/readyz answered");
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert!(started.elapsed() < UNAVAILABLE_WITHIN);
    assert!(ready.header("retry-after").is_some(), "{}", ready.body);
    assert!(ready.body.contains("OperationOutcome"), "{}", ready.body);
    site.server.assert_running();

    // The database comes back on the same port with the same data; tsunagu is not restarted.
    cluster.restart();
    site.assert_recovers(&submission);
    site.server.assert_running();

    let Site {
        server,
        facility,
        data,
        ..
    } = site;
    let logs = server.stop();
    assert!(logs.contains("shutting down"), "{logs}");
    // Neither the database password, nor patient data, nor a credential reaches the logs.
    assert!(
        !logs.contains(PASSWORD),
        "the logs show the database password"
    );
    assert!(
        !logs.contains(&submission.family) && !logs.contains(&submission.patient),
        "{logs}"
    );
    for secret in facility.secrets() {
        assert!(!logs.contains(secret), "the logs show a credential: {logs}");
    }
    // The audit log, written while the database was down too, verifies intact.
    assert!(data.verify_audit_log() > 0);
}

#[test]
fn a_hung_database_answers_503_after_the_call_timeout_and_the_service_recovers() {
    if !postgres_binaries_present(
        "a_hung_database_answers_503_after_the_call_timeout_and_the_service_recovers",
    ) {
        return;
    }
    let cluster = Cluster::start();
    // Short timeouts: the store's call timeout is their sum, 2 s.
    let mut site = Site::start(
        &cluster,
        &[
            "--pg-connect-timeout-ms",
            "1000",
            "--pg-wait-timeout-ms",
            "1000",
            "--pg-statement-timeout-ms",
            "1000",
        ],
    );
    let submission = site.submit_and_read_back();
    let read_path = format!("/fhir/Patient/{}", submission.patient);

    let token = site.facility.token();
    cluster.signal("freeze");
    // The read takes an idle pooled connection and sends its query, which is never answered (the
    // kernel still acknowledges, so TCP sees nothing wrong): the call timeout ends the wait.
    for (path, bearer) in [
        (read_path.as_str(), Some(token.as_str())),
        ("/readyz", None),
    ] {
        let started = Instant::now();
        let reply = request_within(site.port(), "GET", path, bearer, None, CLIENT_TIMEOUT)
            .unwrap_or_else(|| panic!("{path} hung for {CLIENT_TIMEOUT:?}"));
        assert_eq!(reply.status, 503, "{}", reply.body);
        assert!(reply.header("retry-after").is_some(), "{}", reply.body);
        assert!(
            started.elapsed() < HUNG_UNAVAILABLE_WITHIN,
            "{path} took {:?}",
            started.elapsed()
        );
    }
    site.server.assert_running();

    // The database resumes; tsunagu serves again without a restart.
    cluster.signal("thaw");
    site.assert_recovers(&submission);
    site.server.assert_running();
    site.server.stop();
}

/// The test hospital's submission, and what the server filed it as.
struct Submission {
    /// The JP-CLINS Bundle as submitted.
    bundle: Value,
    /// The id of the Patient it was filed under.
    patient: String,
    /// That Patient as read back (resource and version).
    stored: Value,
    /// The patient's family name in the fixture: must never reach the logs.
    family: String,
}

/// `tsunagu serve` on a cluster, with the test hospital registered and signed in.
struct Site {
    server: Server,
    facility: Facility,
    data: DataDir,
    _dir: tempfile::TempDir,
}

impl Site {
    /// Registers the test hospital (with the institution number of the submission's identifier)
    /// and its client system (a key made by `tsunagu client keygen`), starts `tsunagu serve` on
    /// `cluster`'s database with `extra` arguments, and signs the hospital in.
    fn start(cluster: &Cluster, extra: &[&str]) -> Site {
        let dir = tempfile::tempdir().expect("data directory");
        let data = DataDir::new(dir.path());
        let institution = institution_number(&submission_bundle());
        let registry = data.registry();
        let key = dir.path().join("test-hospital-system.pem");
        let registry_arg = registry.to_str().expect("a UTF-8 path");
        run_ok([
            "--registry",
            registry_arg,
            "org",
            "add",
            "--id",
            "test-hospital",
            "--kind",
            "hospital",
            "--name",
            "停電試験病院",
            "--prefecture",
            &institution[..2],
            "--institution-number",
            &institution,
        ]);
        run_ok([
            "client",
            "keygen",
            "--kid",
            "test-1",
            "--out",
            key.to_str().expect("a UTF-8 path"),
        ]);
        let mut jwks = key.clone().into_os_string();
        jwks.push(".jwks.json");
        run_ok([
            "--registry",
            registry_arg,
            "client",
            "add",
            "--id",
            "test-hospital-system",
            "--org",
            "test-hospital",
            "--jwks",
            PathBuf::from(jwks).to_str().expect("a UTF-8 path"),
        ]);
        let url = cluster.url();
        // The database URL through the environment, so that the password is not on a command
        // line either.
        let server = Server::start(
            &data,
            extra,
            &[("TSUNAGU_DATABASE", url.as_str())],
            Duration::from_secs(60),
        );
        let facility = Facility::sign_in(
            server.port,
            &registry,
            "test-hospital-system",
            &key,
            "test-1",
            SCOPE,
        );
        Site {
            server,
            facility,
            data,
            _dir: dir,
        }
    }

    fn port(&self) -> u16 {
        self.server.port
    }

    /// Submits the JP-CLINS Bundle while the database is up, finds the Patient it was filed
    /// under by the hospital's own patient id, and reads that Patient back.
    fn submit_and_read_back(&mut self) -> Submission {
        let bundle = submission_bundle();
        let token = self.facility.token();
        let submitted = request(
            self.port(),
            "POST",
            "/fhir/Bundle",
            Some(&token),
            Some(&bundle.to_string()),
        )
        .expect("submission answered");
        assert_eq!(submitted.status, 201, "{}", submitted.body);
        assert_eq!(
            submitted.json()["identifier"]["value"],
            bundle["identifier"]["value"]
        );

        let patient_entry = bundle["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|entry| &entry["resource"])
            .find(|resource| resource["resourceType"] == "Patient")
            .expect("the submission's Patient");
        let system = format!(
            "{FACILITY_PATIENT_ID_SYSTEM}{}",
            institution_number(&bundle)
        );
        let local_id = patient_entry["identifier"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|identifier| identifier["system"] == system.as_str())
            .and_then(|identifier| identifier["value"].as_str())
            .expect("the hospital's patient id");
        let family = patient_entry["name"][0]["family"]
            .as_str()
            .expect("a family name")
            .to_owned();
        let found = request(
            self.port(),
            "GET",
            &format!(
                "/fhir/Patient?identifier={}",
                urlencode(&format!("{system}|{local_id}"))
            ),
            Some(&token),
            None,
        )
        .expect("search answered");
        assert_eq!(found.status, 200, "{}", found.body);
        let matches = found.json()["entry"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(matches.len(), 1, "one Patient filed: {}", found.body);
        let patient = matches[0]["resource"]["id"]
            .as_str()
            .expect("an id")
            .to_owned();

        let read = request(
            self.port(),
            "GET",
            &format!("/fhir/Patient/{patient}"),
            Some(&token),
            None,
        )
        .expect("read answered");
        assert_eq!(read.status, 200, "{}", read.body);
        let stored = read.json();
        assert_eq!(
            stored, matches[0]["resource"],
            "the search found what reads"
        );
        assert!(read.body.contains(&family), "{}", read.body);
        // The submission's results were unpacked and are the hospital's to read.
        let results = request(
            self.port(),
            "GET",
            &format!("/fhir/Observation?patient={patient}&_summary=count"),
            Some(&token),
            None,
        )
        .expect("search answered");
        assert_eq!(results.status, 200, "{}", results.body);
        assert_eq!(results.json()["total"], 4, "{}", results.body);
        Submission {
            bundle,
            patient,
            stored,
            family,
        }
    }

    /// Polls the read until it answers 200 (503 meanwhile) within [`RECOVERY_WITHIN`]; then the
    /// same Patient must come back, `/readyz` must say ready, and submitting the Bundle again must
    /// succeed (replacing the first submission).
    fn assert_recovers(&mut self, submission: &Submission) {
        let read_path = format!("/fhir/Patient/{}", submission.patient);
        let started = Instant::now();
        let after = loop {
            let token = self.facility.token();
            let reply =
                request(self.port(), "GET", &read_path, Some(&token), None).expect("read answered");
            if reply.status == 200 {
                break reply;
            }
            assert_eq!(reply.status, 503, "{}", reply.body);
            assert!(
                started.elapsed() < RECOVERY_WITHIN,
                "still 503 {:?} after the database came back",
                started.elapsed()
            );
            std::thread::sleep(Duration::from_millis(250));
        };
        assert_eq!(
            after.json(),
            submission.stored,
            "the same resource, same version"
        );
        assert_eq!(
            request(self.port(), "GET", "/readyz", None, None).map(|reply| reply.status),
            Some(200)
        );
        let token = self.facility.token();
        let resubmitted = request(
            self.port(),
            "POST",
            "/fhir/Bundle",
            Some(&token),
            Some(&submission.bundle.to_string()),
        )
        .expect("submission answered");
        assert_eq!(
            resubmitted.status, 200,
            "writes recover too (a resubmission replaces the first): {}",
            resubmitted.body
        );
    }
}

/// The published JP-CLINS lab-results collection.
fn submission_bundle() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/jp/clins")
        .join(SUBMISSION);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
    serde_json::from_str(&text).expect("JSON")
}

/// The submitting facility's institution number: the first part of the Bundle identifier.
fn institution_number(bundle: &Value) -> String {
    let number = bundle["identifier"]["value"]
        .as_str()
        .and_then(|value| value.split('^').next())
        .expect("a JP-CLINS Bundle identifier")
        .to_owned();
    assert!(
        number.len() == 10 && number.bytes().all(|b| b.is_ascii_digit()),
        "{number}"
    );
    number
}

/// Whether PostgreSQL's server binaries are installed; prints a loud notice when they are not.
///
/// # Panics
/// When they are missing and `CI` is set: the tests must never pass vacuously in CI.
fn postgres_binaries_present(test: &str) -> bool {
    store::conformance::prerequisite(
        Path::new(INITDB).exists().then_some(()),
        &format!("{INITDB} is missing"),
        &format!("tsunagu {test}"),
        "Install Debian's postgresql-15 (or run once under scripts/with-postgres.sh, which \
         installs it) to run it.",
    )
    .is_some()
}

/// A throwaway cluster in its own directory, stopped (immediately) and removed on drop.
struct Cluster {
    dir: tempfile::TempDir,
    port: u16,
}

impl Cluster {
    fn start() -> Cluster {
        // Under /tmp: when we are root the cluster runs as `postgres`, which must reach the
        // directory (a TMPDIR under /root would not do).
        let dir = tempfile::Builder::new()
            .prefix("tsunagu-outage-")
            .tempdir_in("/tmp")
            .expect("cluster directory");
        let port = pg_cluster(&["start", &dir.path().to_string_lossy()])
            .parse()
            .expect("pg-cluster.sh start prints the port");
        Cluster { dir, port }
    }

    fn url(&self) -> String {
        format!(
            "postgres://tsunagu:{PASSWORD}@127.0.0.1:{}/postgres",
            self.port
        )
    }

    /// Stops the server (`pg_ctl stop -m MODE`).
    fn stop(&self, mode: &str) {
        pg_cluster(&["stop", &self.dir.path().to_string_lossy(), mode]);
    }

    /// `freeze` (SIGSTOP every server process) or `thaw` (SIGCONT).
    fn signal(&self, action: &str) {
        pg_cluster(&[action, &self.dir.path().to_string_lossy()]);
    }

    /// Starts the stopped server again: same data directory, same port.
    fn restart(&self) {
        let port = pg_cluster(&["start", &self.dir.path().to_string_lossy()])
            .parse::<u16>()
            .expect("pg-cluster.sh start prints the port");
        assert_eq!(port, self.port, "the cluster came back on another port");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // `stop` thaws a frozen cluster first.
        let _ = Command::new(script())
            .args(["stop", &self.dir.path().to_string_lossy(), "immediate"])
            .output();
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg-cluster.sh")
}

/// Runs `pg-cluster.sh ARGS...`, asserts it succeeded and returns its stdout, trimmed.
fn pg_cluster(args: &[&str]) -> String {
    let output = Command::new(script())
        .args(args)
        .output()
        .expect("run pg-cluster.sh");
    assert!(
        output.status.success(),
        "pg-cluster.sh {}: {}",
        args[0],
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}
