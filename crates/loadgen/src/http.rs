//! One keep-alive HTTP/1.1 connection to the server (hyper's client connection, no pool): the
//! driver decides how many connections exist and which task uses which, so that `--connections`
//! and `--max-in-flight` mean exactly what they say. A connection that fails or times out is
//! dropped and the next request opens a new one.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// Where the server listens, parsed once from `--url`.
#[derive(Debug, Clone)]
pub struct Target {
    /// The address connections go to.
    pub address: SocketAddr,
    /// The `Host` header (host and port as given in the URL).
    pub host: String,
    /// `http://host:port`, without a trailing slash.
    pub origin: String,
}

impl Target {
    /// Parses `http://host:port` (an `https` URL is refused: the driver speaks plain HTTP, as on
    /// loopback behind the TLS terminator).
    ///
    /// # Errors
    /// When the URL is not `http://host[:port][/]` or the host does not resolve.
    pub fn parse(url: &str) -> anyhow::Result<Target> {
        let uri: http::Uri = url.parse()?;
        anyhow::ensure!(
            uri.scheme_str() == Some("http"),
            "--url must be http://HOST:PORT (the driver speaks plain HTTP)"
        );
        anyhow::ensure!(
            uri.path() == "/" || uri.path().is_empty(),
            "--url is the server's origin, without a path (FHIR is under /fhir)"
        );
        let authority = uri
            .authority()
            .ok_or_else(|| anyhow::anyhow!("--url needs a host"))?;
        let port = authority.port_u16().unwrap_or(80);
        let address = std::net::ToSocketAddrs::to_socket_addrs(&(authority.host(), port))?
            .next()
            .ok_or_else(|| anyhow::anyhow!("the host of --url does not resolve"))?;
        Ok(Target {
            address,
            host: authority.as_str().to_owned(),
            origin: format!("http://{}", authority.as_str()),
        })
    }
}

/// An answer: the status and the whole body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON (None when it is not).
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Why no answer came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Connecting, writing or reading failed (the connection is dropped).
    Io,
    /// No complete answer within the request timeout (the connection is dropped).
    Timeout,
}

impl Failure {
    /// The label errors of this kind are counted under.
    pub fn label(self) -> &'static str {
        match self {
            Failure::Io => "io",
            Failure::Timeout => "timeout",
        }
    }
}

/// A request to send: method, path with query, extra headers, body.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: http::Method,
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Bytes>,
}

impl Request {
    /// `GET path` with `Accept: application/fhir+json`.
    pub fn get(path: impl Into<String>) -> Request {
        Request {
            method: http::Method::GET,
            path: path.into(),
            headers: vec![("accept", "application/fhir+json".into())],
            body: None,
        }
    }

    /// `POST path` with a FHIR JSON body.
    pub fn post_fhir(path: impl Into<String>, body: Bytes) -> Request {
        Request {
            method: http::Method::POST,
            path: path.into(),
            headers: vec![
                ("accept", "application/fhir+json".into()),
                ("content-type", "application/fhir+json".into()),
            ],
            body: Some(body),
        }
    }

    /// `POST path` with a form body (the token endpoint).
    pub fn post_form(path: impl Into<String>, form: &[(String, String)]) -> Request {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        Request {
            method: http::Method::POST,
            path: path.into(),
            headers: vec![("content-type", "application/x-www-form-urlencoded".into())],
            body: Some(Bytes::from(body)),
        }
    }

    /// `POST path` without a body (the challenge endpoint).
    pub fn post_empty(path: impl Into<String>) -> Request {
        Request {
            method: http::Method::POST,
            path: path.into(),
            headers: Vec::new(),
            body: Some(Bytes::new()),
        }
    }

    /// The same request with `Authorization: Bearer <token>`.
    pub fn bearer(mut self, token: &str) -> Request {
        self.headers
            .push(("authorization", format!("Bearer {token}")));
        self
    }

    /// The same request with one more header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Request {
        self.headers.push((name, value.into()));
        self
    }
}

/// One connection, opened on first use and again after a failure.
#[derive(Debug)]
pub struct Connection {
    target: Target,
    timeout: Duration,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    pub fn new(target: Target, timeout: Duration) -> Connection {
        Connection {
            target,
            timeout,
            sender: None,
        }
    }

    /// Sends `request` and reads the whole answer, within the timeout.
    ///
    /// # Errors
    /// [`Failure`] when no complete answer came; the connection is then closed.
    pub async fn send(&mut self, request: &Request) -> Result<Reply, Failure> {
        match tokio::time::timeout(self.timeout, self.exchange(request)).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(failure)) => {
                self.sender = None;
                Err(failure)
            }
            Err(_) => {
                self.sender = None;
                Err(Failure::Timeout)
            }
        }
    }

    async fn exchange(&mut self, request: &Request) -> Result<Reply, Failure> {
        let sender = match &mut self.sender {
            Some(sender) if !sender.is_closed() => sender,
            _ => self.sender.insert(connect(&self.target).await?),
        };
        sender.ready().await.map_err(|_| Failure::Io)?;
        let mut builder = http::Request::builder()
            .method(request.method.clone())
            .uri(&request.path)
            .header("host", &self.target.host);
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        let body = Full::new(request.body.clone().unwrap_or_default());
        let http_request = builder.body(body).map_err(|_| Failure::Io)?;
        let response = sender
            .send_request(http_request)
            .await
            .map_err(|_| Failure::Io)?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|_| Failure::Io)?
            .to_bytes();
        Ok(Reply { status, body })
    }
}

async fn connect(target: &Target) -> Result<SendRequest<Full<Bytes>>, Failure> {
    let stream = tokio::net::TcpStream::connect(target.address)
        .await
        .map_err(|_| Failure::Io)?;
    // Requests are small and answered at once: do not let Nagle hold them back.
    stream.set_nodelay(true).map_err(|_| Failure::Io)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| Failure::Io)?;
    // The connection future drives reads and writes; it ends when the sender is dropped or the
    // server closes the connection.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}
