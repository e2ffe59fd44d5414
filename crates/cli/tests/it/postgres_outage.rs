//! PostgreSQL outages seen through the real binary: `tsunagu serve` on its own throwaway cluster
//! (driven with `scripts/pg-cluster.sh`, not the shared `TEST_POSTGRES_URL` one, since the tests
//! take the database away).
//!
//! * A database that is stopped: reads, searches, writes and `/readyz` answer 503 within seconds
//!   instead of hanging, and the server keeps running; when the database comes back on the same
//!   port, the same requests succeed again without restarting tsunagu.
//! * A database that hangs (its processes stopped with SIGSTOP: what a stalled disk or a paused VM
//!   looks like from outside, connections open but never answered): a request answers 503 once
//!   the store's call timeout (statement timeout + connect timeout) has passed, and the service
//!   recovers when the database resumes.
//!
//! Needs PostgreSQL 15's server binaries in `/usr/lib/postgresql/15/bin`. Without them the tests
//! print a loud SKIPPED notice and pass locally, but fail when `CI` is set.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{free_port, tsunagu};

const INITDB: &str = "/usr/lib/postgresql/15/bin/initdb";
/// The password `scripts/pg-cluster.sh` gives the cluster's superuser: must never reach the logs.
const PASSWORD: &str = "tsunagu-test";
/// The family name of the tests' Patient: must never reach the logs.
const FAMILY: &str = "停電試験";
/// Longest any one request may take: a request still unanswered after this counts as a hang.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);
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
    let (mut server, port) = Server::spawn(&cluster, &[]);
    let (id, stored) = create_patient(port);
    let read_path = format!("/fhir/Patient/{id}");

    // The database goes away: its connections are terminated and new ones are refused.
    cluster.stop("fast");
    let down: [(&str, &str, Option<&str>); 3] = [
        ("GET", &read_path, None),
        ("GET", "/fhir/Patient?family=x", None),
        (
            "POST",
            "/fhir/Patient",
            Some(r#"{"resourceType":"Patient"}"#),
        ),
    ];
    for (method, path, body) in down {
        let started = Instant::now();
        let reply = request(port, method, path, body).unwrap_or_else(|| {
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
    let ready = request(port, "GET", "/readyz", None).expect("/readyz answered");
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert!(started.elapsed() < UNAVAILABLE_WITHIN);
    assert!(ready.header("retry-after").is_some(), "{}", ready.body);
    assert!(ready.body.contains("OperationOutcome"), "{}", ready.body);
    server.assert_running();

    // The database comes back on the same port with the same data; tsunagu is not restarted.
    cluster.restart();
    assert_recovers(port, &read_path, &stored);
    server.assert_running();

    let logs = server.stop();
    assert!(logs.contains("shutting down"), "{logs}");
    // Neither the database password nor patient data reaches the logs.
    assert!(
        !logs.contains(PASSWORD),
        "the logs show the database password"
    );
    assert!(!logs.contains(FAMILY) && !logs.contains(&id), "{logs}");
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
    let (mut server, port) = Server::spawn(
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
    let (id, stored) = create_patient(port);
    let read_path = format!("/fhir/Patient/{id}");

    cluster.signal("freeze");
    // The read takes an idle pooled connection and sends its query, which is never answered (the
    // kernel still acknowledges, so TCP sees nothing wrong): the call timeout ends the wait.
    for path in [read_path.as_str(), "/readyz"] {
        let started = Instant::now();
        let reply = request_within(port, "GET", path, None, CLIENT_TIMEOUT)
            .unwrap_or_else(|| panic!("{path} hung for {CLIENT_TIMEOUT:?}"));
        assert_eq!(reply.status, 503, "{}", reply.body);
        assert!(reply.header("retry-after").is_some(), "{}", reply.body);
        assert!(
            started.elapsed() < HUNG_UNAVAILABLE_WITHIN,
            "{path} took {:?}",
            started.elapsed()
        );
    }
    server.assert_running();

    // The database resumes; tsunagu serves again without a restart.
    cluster.signal("thaw");
    assert_recovers(port, &read_path, &stored);
    server.assert_running();
    server.stop();
}

/// Creates a Patient while the database is up and reads it back; returns its id and the stored
/// resource.
fn create_patient(port: u16) -> (String, serde_json::Value) {
    let body = format!(r#"{{"resourceType":"Patient","name":[{{"family":"{FAMILY}"}}]}}"#);
    let created = request(port, "POST", "/fhir/Patient", Some(&body)).expect("create answered");
    assert_eq!(created.status, 201, "{}", created.body);
    let stored = created.json();
    let id = stored["id"].as_str().expect("an id").to_owned();
    let read = request(port, "GET", &format!("/fhir/Patient/{id}"), None).expect("read answered");
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.json(), stored);
    (id, stored)
}

/// Polls the read until it answers 200 (503 meanwhile) within [`RECOVERY_WITHIN`]; then the same
/// resource must come back, `/readyz` must say ready, and a write must succeed.
fn assert_recovers(port: u16, read_path: &str, stored: &serde_json::Value) {
    let started = Instant::now();
    let after = loop {
        let reply = request(port, "GET", read_path, None).expect("read answered");
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
    assert_eq!(&after.json(), stored, "the same resource, same version");
    assert_eq!(
        request(port, "GET", "/readyz", None).map(|reply| reply.status),
        Some(200)
    );
    let body = r#"{"resourceType":"Patient"}"#;
    let written = request(port, "POST", "/fhir/Patient", Some(body)).expect("create answered");
    assert_eq!(written.status, 201, "writes recover too: {}", written.body);
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

/// `tsunagu serve` with its logs in a file (a pipe nobody reads could fill up and block it);
/// killed on drop if the test did not stop it.
struct Server {
    child: Child,
    port: u16,
    log_path: PathBuf,
}

impl Server {
    /// Starts `tsunagu serve` on `cluster`'s database with `extra` arguments, on a free port, and
    /// waits until it is ready; returns it and its port.
    fn spawn(cluster: &Cluster, extra: &[&str]) -> (Server, u16) {
        let port = free_port();
        let log_path = cluster.dir.path().join("tsunagu.log");
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = tsunagu()
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            // Through the environment, so that the password is not on a command line either.
            .env("TSUNAGU_DATABASE", cluster.url())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tsunagu");
        let mut server = Server {
            child,
            port,
            log_path,
        };
        server.wait_until_ready();
        (server, port)
    }

    fn wait_until_ready(&mut self) {
        let started = Instant::now();
        while request(self.port, "GET", "/readyz", None).map(|reply| reply.status) != Some(200) {
            self.assert_running();
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the server did not become ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            panic!("tsunagu exited with {status}: {}", self.logs());
        }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Stops the server with SIGTERM, asserts it exits cleanly and returns its logs.
    fn stop(mut self) -> String {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(killed.success());
        let status = self.child.wait().expect("wait");
        let logs = self.logs();
        assert!(status.success(), "tsunagu exited with {status}: {logs}");
        logs
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An HTTP response: status, headers (names lower-cased) and body.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

/// One HTTP/1.1 request on a new connection, `Connection: close`; None when it cannot connect or
/// no complete response arrives within [`CLIENT_TIMEOUT`].
fn request(port: u16, method: &str, path: &str, body: Option<&str>) -> Option<Reply> {
    request_within(port, method, path, body, CLIENT_TIMEOUT)
}

/// [`request`] with another timeout (of connecting, and of each read or write).
fn request_within(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    timeout: Duration,
) -> Option<Reply> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: application/fhir+json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).ok()?;
    let status = status_line.split(' ').nth(1)?.parse().ok()?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let mut raw = Vec::new();
    reader.read_to_end(&mut raw).ok()?;
    let chunked = headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"));
    let raw = if chunked { dechunk(&raw)? } else { raw };
    Some(Reply {
        status,
        headers,
        body: String::from_utf8(raw).ok()?,
    })
}

/// Decodes a `Transfer-Encoding: chunked` body.
fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|pair| pair == b"\r\n")?;
        let size_text = std::str::from_utf8(&raw[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}
