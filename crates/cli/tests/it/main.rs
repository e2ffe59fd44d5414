//! End-to-end tests of the `tsunagu` binary: `serve --demo` answers facility systems signed in
//! with SMART Backend Services tokens over TCP, as far as each may see, and stops cleanly on
//! SIGTERM with its audit log intact; `import` loads the official examples and `export` writes
//! them back as NDJSON; a PostgreSQL outage answers 503 and the service recovers by itself
//! (`postgres_outage`); demo cards and patient accounts are made, used and disabled (`patients`);
//! the load driver runs against it in closed and open loop (`loadgen`).

mod loadgen;
mod patients;
mod postgres_outage;
mod support;

use std::path::Path;
use std::time::Duration;

use support::{DataDir, Facility, Server, request, tsunagu};

/// The demo patient whose first facility is the demo hospital (and never the demo clinic).
const DEMO_PATIENT: &str = "demo-patient-001";

#[test]
fn serve_demo_answers_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path());
    let database = format!("sqlite://{}", dir.path().join("demo.db").display());
    let mut server = Server::start(
        &data,
        &["--demo", "--database", &database],
        &[],
        Duration::from_secs(60),
    );
    let port = server.port;
    // `serve --demo` wrote the demo clients' keys beside the registry file.
    let sign_in = |client: &str| {
        Facility::sign_in(
            port,
            &data.registry(),
            client,
            &dir.path().join("demo").join(format!("{client}.pem")),
            "demo-1",
            "system/Patient.rs system/Observation.rs",
        )
    };
    let mut hospital = sign_in("demo-hospital-system");
    let read_path = format!("/fhir/Patient/{DEMO_PATIENT}");
    let search_path =
        format!("/fhir/Observation?patient={DEMO_PATIENT}&category=laboratory&_sort=-date");

    // The patient's first facility reads what it holds without consent.
    let token = hospital.token();
    let read = request(port, "GET", &read_path, Some(&token), None).expect("read");
    assert_eq!(read.status, 200, "{}", read.body);
    assert!(read.body.contains("\"resourceType\":\"Patient\""));
    assert_eq!(read.json()["id"], DEMO_PATIENT);
    let family = read.json()["name"][0]["family"]
        .as_str()
        .expect("the demo patient's family name")
        .to_owned();
    let search = request(port, "GET", &search_path, Some(&token), None).expect("search");
    assert_eq!(search.status, 200, "{}", search.body);
    assert!(search.body.contains("\"type\":\"searchset\""));
    let results = search.json()["entry"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    // The walk-through in the README shows this patient's lab results: there are some.
    assert!(!results.is_empty(), "{}", search.body);
    for entry in &results {
        assert_eq!(entry["resource"]["resourceType"], "Observation");
        assert_eq!(
            entry["resource"]["subject"]["reference"],
            format!("Patient/{DEMO_PATIENT}")
        );
    }

    // Without a token: 401 asking for one, and nothing of the patient.
    let anonymous = request(port, "GET", &read_path, None, None).expect("read");
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    assert!(
        anonymous
            .header("www-authenticate")
            .is_some_and(|value| value.starts_with("Bearer")),
        "{:?}",
        anonymous.headers
    );
    assert!(!anonymous.body.contains("\"resourceType\":\"Patient\""));

    // A facility that never treated the patient, without their consent: as if there were none.
    let mut clinic = sign_in("demo-clinic-system");
    let token = clinic.token();
    let refused = request(port, "GET", &read_path, Some(&token), None).expect("read");
    assert_eq!(refused.status, 404, "{}", refused.body);
    assert!(
        !refused.body.contains("\"resourceType\":\"Patient\"") && !refused.body.contains(&family),
        "{}",
        refused.body
    );
    let narrowed = request(port, "GET", &search_path, Some(&token), None).expect("search");
    assert_eq!(narrowed.status, 200, "{}", narrowed.body);
    assert_eq!(
        narrowed.json()["entry"].as_array().map_or(0, Vec::len),
        0,
        "the clinic finds none of the patient's results: {}",
        narrowed.body
    );
    server.assert_running();

    let logs = server.stop();
    assert!(logs.contains("shutting down"), "{logs}");
    // No resource content reaches the logs.
    assert!(
        !logs.contains(DEMO_PATIENT)
            && !logs.contains("山田")
            && !logs.contains(&family)
            && !logs.contains("laboratory"),
        "{logs}"
    );
    // Nor any assertion or access token.
    for secret in hospital.secrets().chain(clinic.secrets()) {
        assert!(!logs.contains(secret), "the logs show a credential: {logs}");
    }
    // Every answer above was recorded in the audit log, which verifies intact: two token
    // issuances, the hospital's read and search, the refused anonymous read, the clinic's read
    // and search.
    let entries = data.verify_audit_log();
    assert!(entries >= 7, "{entries} audit entries");
}

#[test]
fn import_then_export_round_trips_the_official_examples() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("import.db").display());
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/r4-examples");
    let output = tsunagu()
        .args(["--database", &database, "import"])
        .arg(&examples)
        .output()
        .expect("import");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let files = std::fs::read_dir(&examples)
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|e| e == "json")
        })
        .count();
    assert!(stdout.contains(&format!("from {files} files")), "{stdout}");
    // Bundle-bundle-transaction.json is run as a transaction, and the official example is not
    // executable on purpose (an If-Match on a resource that does not exist, a ValueSet/$lookup entry):
    // it fails whole and is counted, and everything else loads.
    assert!(stdout.contains("; 1 failed"), "{stdout}");

    let out = dir.path().join("export");
    let output = tsunagu()
        .args(["--database", &database, "export", "--out"])
        .arg(&out)
        .output()
        .expect("export");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let patients = std::fs::read_to_string(out.join("Patient.ndjson")).unwrap();
    assert_eq!(
        patients.lines().count(),
        3,
        "Patient-example, pat1 and pat2"
    );
    for line in patients.lines() {
        let resource: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(resource["resourceType"], "Patient");
    }
}

#[test]
fn a_database_url_of_an_unknown_kind_is_refused_clearly() {
    let output = tsunagu()
        .args(["--database", "mysql://x", "migrate"])
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("sqlite://"));
}

#[test]
fn organisations_and_clients_are_registered_listed_and_revoked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let registry = dir.path().join("registry.json");
    let jwks = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/it/fixtures/client-jwks.json"
    );
    let run = |args: &[&str]| {
        let output = tsunagu()
            .arg("--registry")
            .arg(&registry)
            .args(args)
            .env("RUST_BACKTRACE", "0")
            .output()
            .expect("run tsunagu");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (ok, _, error) = run(&[
        "org",
        "add",
        "--id",
        "org-a",
        "--kind",
        "hospital",
        "--name",
        "テスト病院",
        "--prefecture",
        "13",
        "--institution-number",
        "1318814790",
    ]);
    assert!(ok, "{error}");
    // A hospital needs a valid institution number of its prefecture; an unknown kind is refused.
    let (ok, _, error) = run(&[
        "org",
        "add",
        "--id",
        "org-b",
        "--kind",
        "hospital",
        "--name",
        "x",
        "--prefecture",
        "13",
        "--institution-number",
        "1318814",
    ]);
    assert!(!ok && error.contains("institution number"), "{error}");
    let (ok, _, _) = run(&[
        "org",
        "add",
        "--id",
        "org-c",
        "--kind",
        "spaceship",
        "--name",
        "x",
        "--prefecture",
        "13",
    ]);
    assert!(!ok);
    let (ok, _, error) = run(&[
        "client", "add", "--id", "sys-a", "--org", "org-a", "--jwks", jwks,
    ]);
    assert!(ok, "{error}");
    let (_, listed, _) = run(&["client", "list"]);
    assert_eq!(listed.trim(), "sys-a\torg-a\tactive");
    let (ok, _, _) = run(&["client", "revoke", "sys-a"]);
    assert!(ok);
    let (_, listed, _) = run(&["client", "list"]);
    assert_eq!(listed.trim(), "sys-a\torg-a\trevoked");
    let (_, organisations, _) = run(&["org", "list"]);
    assert_eq!(organisations.trim(), "org-a\thospital\tテスト病院");
}

/// `tsunagu client keygen` makes a key pair a facility system can be registered and sign in with,
/// keeps the private key to its owner, and never replaces an existing key.
#[test]
fn client_keygen_writes_a_key_the_registry_accepts_and_never_replaces_one() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("temp dir");
    let registry = dir.path().join("registry.json");
    let key = dir.path().join("sys-a.pem");
    let jwks = dir.path().join("sys-a.pem.jwks.json");
    let keygen = || {
        tsunagu()
            .arg("--registry")
            .arg(&registry)
            .args(["client", "keygen", "--kid", "sys-a-1", "--out"])
            .arg(&key)
            .env("RUST_BACKTRACE", "0")
            .output()
            .expect("run tsunagu")
    };
    let output = keygen();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("sys-a.pem.jwks.json"));
    assert!(
        !registry.exists(),
        "keygen needs no registry: it does not create one"
    );
    let private = std::fs::read_to_string(&key).expect("the private key");
    assert!(
        private.starts_with("-----BEGIN PRIVATE KEY-----"),
        "PKCS#8 PEM"
    );
    assert_eq!(
        std::fs::metadata(&key).expect("key").permissions().mode() & 0o777,
        0o600
    );
    let set: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&jwks).expect("the JWK Set")).expect("JSON");
    let keys = set["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kid"], "sys-a-1");
    assert_eq!(keys[0]["alg"], "ES384");
    assert!(
        keys[0].get("d").is_none(),
        "the set holds the public half only"
    );

    support::run_ok([
        "--registry",
        registry.to_str().unwrap(),
        "org",
        "add",
        "--id",
        "org-a",
        "--kind",
        "clinic",
        "--name",
        "テスト診療所",
        "--prefecture",
        "13",
        "--institution-number",
        "1318814790",
    ]);
    support::run_ok([
        "--registry",
        registry.to_str().unwrap(),
        "client",
        "add",
        "--id",
        "sys-a",
        "--org",
        "org-a",
        "--jwks",
        jwks.to_str().unwrap(),
    ]);
    let assertion = support::run_ok([
        "--registry",
        registry.to_str().unwrap(),
        "client",
        "assertion",
        "--client",
        "sys-a",
        "--kid",
        "sys-a-1",
        "--key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(assertion.trim().split('.').count(), 3, "{assertion}");

    // Run again: refused, and the key in place is the same.
    let again = keygen();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("exists"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(std::fs::read_to_string(&key).expect("key"), private);
}

/// `tsunagu audit verify` on a real log: intact, then edited behind the log's back (as someone
/// with write access to the file would), reported at the first bad entry with exit status 1.
#[test]
fn audit_verify_reports_an_intact_log_and_the_first_tampered_entry() {
    use audit::{
        Action, Agent, AuditKey, AuditLog, AuditRecord, Decision, Interaction, OrganisationId,
        Outcome, PurposeOfUse, UtcTime,
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let log_path = dir.path().join("audit.sqlite");
    let key_path = dir.path().join("audit-key.pem");
    let public_path = dir.path().join("audit-key.pub.pem");
    let key = AuditKey::generate_to_file(&key_path).expect("key");
    std::fs::write(&public_path, key.public_key().to_pem()).expect("public key");
    let log = AuditLog::open(&log_path, key).expect("log");
    for i in 0..20u64 {
        let record = AuditRecord {
            recorded: UtcTime::from_unix_micros(1_795_512_600_000_000 + i as i64).expect("time"),
            request_id: format!("request-{i}"),
            agent: Agent {
                user_id: "user-1".to_owned(),
                display_name: "テスト 医師".to_owned(),
                role: "doctor".to_owned(),
                organisation: Some(OrganisationId::institution_number("1318814790")),
                client_id: Some("emr-1".to_owned()),
            },
            purpose_of_use: PurposeOfUse::Treatment,
            patient: Some(format!("patient-{}", i % 3)),
            action: Action {
                interaction: Interaction::Read,
                operation: None,
                resource_type: Some("Observation".to_owned()),
                resource_id: None,
                query: Vec::new(),
            },
            outcome: Outcome {
                decision: Decision::Permitted,
                http_status: 200,
            },
            emergency: false,
        };
        log.append_blocking(&record).expect("append");
    }
    log.close();
    let verify = || {
        tsunagu()
            .args(["audit", "verify", "--log"])
            .arg(&log_path)
            .arg("--public-key")
            .arg(&public_path)
            .env("RUST_BACKTRACE", "0")
            .output()
            .expect("run tsunagu")
    };
    let intact = verify();
    let text = String::from_utf8_lossy(&intact.stdout).into_owned();
    assert_eq!(intact.status.code(), Some(0), "{text}");
    assert!(text.contains("intact: 20 entries"), "{text}");

    // Someone with write access to the file drops the append-only guards and edits entry 7.
    let connection = rusqlite::Connection::open(&log_path).expect("open");
    let triggers: Vec<String> = connection
        .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        .expect("prepare")
        .query_map([], |row| row.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("triggers");
    for trigger in triggers {
        connection
            .execute_batch(&format!("DROP TRIGGER {trigger}"))
            .expect("drop trigger");
    }
    let bytes: Vec<u8> = connection
        .query_row("SELECT bytes FROM entry WHERE seq = 7", [], |row| {
            row.get(0)
        })
        .expect("entry 7");
    let forged = String::from_utf8(bytes)
        .expect("utf-8")
        .replace("Permitted", "Denied")
        .replace("permit", "deny");
    connection
        .execute(
            "UPDATE entry SET bytes = ?1 WHERE seq = 7",
            [forged.into_bytes()],
        )
        .expect("edit");
    drop(connection);
    let tampered = verify();
    let text = String::from_utf8_lossy(&tampered.stdout).into_owned();
    assert_eq!(tampered.status.code(), Some(1), "{text}");
    assert!(text.contains("first bad entry: 7"), "{text}");
    assert!(
        !text.contains("patient-"),
        "the report names no patient: {text}"
    );

    // An unreadable key is status 2.
    let missing = tsunagu()
        .args(["audit", "verify", "--log"])
        .arg(&log_path)
        .args(["--public-key", "/nonexistent.pem"])
        .output()
        .expect("run tsunagu");
    assert_eq!(missing.status.code(), Some(2));
}
