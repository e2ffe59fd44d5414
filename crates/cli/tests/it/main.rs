//! End-to-end tests of the `tsunagu` binary: `serve --demo` answers over TCP and stops cleanly on
//! SIGTERM; `import` loads the official examples and `export` writes them back as NDJSON; a
//! PostgreSQL outage answers 503 and the service recovers by itself (`postgres_outage`); demo
//! cards and patient accounts are made, used and disabled (`patients`).

mod patients;
mod postgres_outage;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn tsunagu() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tsunagu"))
}

/// A plain HTTP/1.1 GET; returns the status code and the body.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

#[test]
fn serve_demo_answers_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let database = format!("sqlite://{}", dir.path().join("demo.db").display());
    let mut child = tsunagu()
        .args([
            "serve",
            "--demo",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database",
            &database,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tsunagu");
    let started = Instant::now();
    while http_get(port, "/readyz").map(|(status, _)| status) != Some(200) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the server did not become ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, body) = http_get(port, "/fhir/Patient/demo-patient-001").expect("read");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"resourceType\":\"Patient\""));
    let (status, body) = http_get(
        port,
        "/fhir/Observation?patient=demo-patient-001&category=laboratory&_sort=-date",
    )
    .expect("search");
    assert_eq!(status, 200);
    assert!(body.contains("\"type\":\"searchset\""));

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = child.wait().expect("wait");
    assert!(status.success(), "tsunagu exited with {status}");
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(logs.contains("shutting down"), "{logs}");
    // No resource content reaches the logs.
    assert!(
        !logs.contains("demo-patient-001")
            && !logs.contains("山田")
            && !logs.contains("laboratory"),
        "{logs}"
    );
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
