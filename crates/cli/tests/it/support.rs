//! What the end-to-end tests share: running the binary, `tsunagu serve` with every data file in a
//! temp dir, plain HTTP/1.1 over TCP, and signing in as a facility system does (SMART Backend
//! Services: a client assertion signed by `tsunagu client assertion`, exchanged at the token
//! endpoint the server announces).

use std::ffi::OsString;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub(crate) fn tsunagu() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tsunagu"))
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// Runs `tsunagu ARGS...` to the end and asserts it succeeded; returns its stdout.
pub(crate) fn run_ok<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let output: Output = tsunagu()
        .args(&args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run tsunagu");
    assert!(
        output.status.success(),
        "tsunagu {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// `application/x-www-form-urlencoded` (and query string) encoding of one value.
pub(crate) fn urlencode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                encoded.push(char::from(byte));
            }
            b' ' => encoded.push('+'),
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

/// The files `tsunagu serve` keeps (registry, service key, audit log and key, alerts), all in one
/// directory, so that no test writes to `data/` under the working directory.
pub(crate) struct DataDir {
    pub dir: PathBuf,
}

impl DataDir {
    pub(crate) fn new(dir: &Path) -> DataDir {
        DataDir {
            dir: dir.to_owned(),
        }
    }

    pub(crate) fn registry(&self) -> PathBuf {
        self.dir.join("registry.json")
    }

    pub(crate) fn audit_log(&self) -> PathBuf {
        self.dir.join("audit.sqlite")
    }

    /// The audit key's public half, which `serve` writes beside the key.
    pub(crate) fn audit_public_key(&self) -> PathBuf {
        self.dir.join("audit-key.pub.pem")
    }

    /// The arguments pointing `serve` at these files.
    pub(crate) fn serve_args(&self) -> Vec<OsString> {
        let mut args = Vec::new();
        for (flag, name) in [
            ("--registry", "registry.json"),
            ("--service-key", "service-key.pem"),
            ("--audit-log", "audit.sqlite"),
            ("--audit-key", "audit-key.pem"),
            ("--alerts", "alerts.jsonl"),
            ("--patients", "patients.json"),
        ] {
            args.push(OsString::from(flag));
            args.push(self.dir.join(name).into_os_string());
        }
        args
    }

    /// `tsunagu audit verify` on the audit log `serve` wrote: asserts it reports the log intact
    /// (exit 0) and returns how many entries it holds.
    pub(crate) fn verify_audit_log(&self) -> u64 {
        let output = tsunagu()
            .args(["audit", "verify", "--log"])
            .arg(self.audit_log())
            .arg("--public-key")
            .arg(self.audit_public_key())
            .output()
            .expect("run tsunagu audit verify");
        let report = String::from_utf8_lossy(&output.stdout).into_owned();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{report}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        report
            .split_once("intact: ")
            .and_then(|(_, rest)| rest.split_once(" entries"))
            .and_then(|(count, _)| count.parse().ok())
            .unwrap_or_else(|| panic!("no entry count in the report: {report}"))
    }
}

/// `tsunagu serve` with its logs in a file (a pipe nobody reads could fill up and block it);
/// killed on drop if the test did not stop it.
pub(crate) struct Server {
    child: Child,
    pub port: u16,
    log_path: PathBuf,
}

impl Server {
    /// Starts `tsunagu serve --listen 127.0.0.1:<free port> DATA-ARGS EXTRA...` with `env`, logs in
    /// `<data>/tsunagu.log`, and waits (up to `ready_within`) until `/readyz` says ready.
    pub(crate) fn start(
        data: &DataDir,
        extra: &[&str],
        env: &[(&str, &str)],
        ready_within: Duration,
    ) -> Server {
        let port = free_port();
        let log_path = data.dir.join("tsunagu.log");
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = tsunagu()
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(data.serve_args())
            .args(extra)
            .envs(env.iter().copied())
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
        let started = Instant::now();
        while request(port, "GET", "/readyz", None, None).map(|reply| reply.status) != Some(200) {
            server.assert_running();
            assert!(
                started.elapsed() < ready_within,
                "the server did not become ready within {ready_within:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            panic!("tsunagu exited with {status}: {}", self.logs());
        }
    }

    pub(crate) fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Stops the server with SIGTERM, asserts it exits cleanly and returns its logs.
    pub(crate) fn stop(mut self) -> String {
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

/// A token is renewed once it is this old (tokens live five minutes).
const TOKEN_RENEWAL: Duration = Duration::from_secs(4 * 60);

/// A facility system signed in to a running server: its client id and key, the scopes it asks
/// for, and its current access token, renewed by [`Facility::token`] when it gets old.
pub(crate) struct Facility {
    port: u16,
    registry: PathBuf,
    client: String,
    key: PathBuf,
    kid: String,
    scope: String,
    token: String,
    assertions: Vec<String>,
    tokens: Vec<String>,
    obtained: Instant,
}

impl Facility {
    /// Signs in as `client` (its ES384 key in `key`, known as `kid`; registered in `registry`)
    /// to the server on `port`, asking for `scope`.
    pub(crate) fn sign_in(
        port: u16,
        registry: &Path,
        client: &str,
        key: &Path,
        kid: &str,
        scope: &str,
    ) -> Facility {
        let mut facility = Facility {
            port,
            registry: registry.to_owned(),
            client: client.to_owned(),
            key: key.to_owned(),
            kid: kid.to_owned(),
            scope: scope.to_owned(),
            token: String::new(),
            assertions: Vec::new(),
            tokens: Vec::new(),
            obtained: Instant::now(),
        };
        facility.renew();
        facility
    }

    /// The current access token; a fresh one when it is getting old.
    pub(crate) fn token(&mut self) -> String {
        if self.obtained.elapsed() >= TOKEN_RENEWAL {
            self.renew();
        }
        self.token.clone()
    }

    /// Every assertion and access token this facility used: none may reach the server's logs.
    pub(crate) fn secrets(&self) -> impl Iterator<Item = &str> {
        self.assertions
            .iter()
            .chain(self.tokens.iter())
            .map(String::as_str)
    }

    /// The SMART flow: the token endpoint from the server's SMART configuration, an assertion for
    /// it signed by `tsunagu client assertion`, exchanged there for an access token.
    fn renew(&mut self) {
        let configuration = request(
            self.port,
            "GET",
            "/fhir/.well-known/smart-configuration",
            None,
            None,
        )
        .expect("the SMART configuration answered");
        assert_eq!(configuration.status, 200, "{}", configuration.body);
        let token_endpoint = configuration.json()["token_endpoint"]
            .as_str()
            .expect("a token_endpoint")
            .to_owned();
        let origin = format!("http://127.0.0.1:{}", self.port);
        let token_path = token_endpoint
            .strip_prefix(&origin)
            .unwrap_or_else(|| panic!("{token_endpoint} is not on {origin}"))
            .to_owned();
        let assertion = run_ok([
            OsString::from("--registry"),
            self.registry.clone().into_os_string(),
            "client".into(),
            "assertion".into(),
            "--client".into(),
            self.client.clone().into(),
            "--key".into(),
            self.key.clone().into_os_string(),
            "--kid".into(),
            self.kid.clone().into(),
            "--audience".into(),
            token_endpoint.into(),
        ])
        .trim()
        .to_owned();
        assert_eq!(
            assertion.split('.').count(),
            3,
            "a compact JWS: {assertion}"
        );
        let form = [
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.as_str()),
            ("scope", self.scope.as_str()),
        ];
        let reply = post_form(self.port, &token_path, &form).expect("the token endpoint answered");
        assert_eq!(reply.status, 200, "token request: {}", reply.body);
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        let response = reply.json();
        assert_eq!(response["token_type"], "bearer", "{}", reply.body);
        let token = response["access_token"]
            .as_str()
            .expect("an access_token")
            .to_owned();
        assert!(!token.is_empty());
        self.obtained = Instant::now();
        self.token.clone_from(&token);
        self.assertions.push(assertion);
        self.tokens.push(token);
    }
}

/// An HTTP response: status, headers (names lower-cased) and body.
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

/// Longest any one request may take: a request still unanswered after this counts as a hang.
pub(crate) const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);

/// One HTTP/1.1 request on a new connection, `Connection: close`, with `Authorization: Bearer
/// <bearer>` when given and a FHIR JSON body when given; None when it cannot connect or no
/// complete response arrives within [`CLIENT_TIMEOUT`].
pub(crate) fn request(
    port: u16,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&str>,
) -> Option<Reply> {
    request_within(port, method, path, bearer, body, CLIENT_TIMEOUT)
}

/// [`request`] with another timeout (of connecting, and of each read or write).
pub(crate) fn request_within(
    port: u16,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&str>,
    timeout: Duration,
) -> Option<Reply> {
    send(
        port,
        method,
        path,
        bearer,
        "application/fhir+json",
        body.unwrap_or(""),
        timeout,
    )
}

/// A form POST (`application/x-www-form-urlencoded`), as to the token endpoint.
pub(crate) fn post_form(port: u16, path: &str, form: &[(&str, &str)]) -> Option<Reply> {
    let body = form
        .iter()
        .map(|(name, value)| format!("{}={}", urlencode(name), urlencode(value)))
        .collect::<Vec<_>>()
        .join("&");
    send(
        port,
        "POST",
        path,
        None,
        "application/x-www-form-urlencoded",
        &body,
        CLIENT_TIMEOUT,
    )
}

fn send(
    port: u16,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    content_type: &str,
    body: &str,
    timeout: Duration,
) -> Option<Reply> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    let authorization = bearer
        .map(|token| format!("Authorization: Bearer {token}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{authorization}\
         Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
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
