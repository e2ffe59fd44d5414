//! HTTP integration tests of the FHIR API: the real router over a fresh SQLite store per test,
//! driven without sockets (`tower::ServiceExt::oneshot`), plus one end-to-end run over TCP.

mod access;
mod bundles;
mod conformance_http;
mod examples;
mod interactions;
mod jp_clins;
mod search;
mod security;
mod unavailable;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::ServiceExt as _;

/// A server over a fresh store in a temporary directory.
pub struct TestApp {
    pub router: axum::Router,
    pub state: server::AppState,
    _dir: Option<tempfile::TempDir>,
}

/// What a request returned.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Reply {
    /// The body as JSON (panics with the text when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Ids of the `match` entries of a searchset Bundle, in order.
    pub fn match_ids(&self) -> Vec<String> {
        self.json()["entry"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|entry| entry["search"]["mode"] == "match")
                    .map(|entry| {
                        entry["resource"]["id"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The URL of a Bundle link, made relative to the server.
    pub fn link(&self, relation: &str) -> Option<String> {
        let json = self.json();
        json["link"]
            .as_array()?
            .iter()
            .find(|link| link["relation"] == relation)
            .and_then(|link| {
                link["url"]
                    .as_str()
                    .map(|url| url.trim_start_matches("http://localhost").to_owned())
            })
    }
}

impl Default for TestApp {
    fn default() -> Self {
        Self::new()
    }
}

impl TestApp {
    pub fn new() -> Self {
        Self::with_settings(server::ServerSettings::default())
    }

    pub fn with_settings(settings: server::ServerSettings) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = store_sqlite::SqliteStore::open(
            &dir.path().join("test.db"),
            store_sqlite::SqliteOptions::default(),
            Arc::new(store::SystemClock),
        )
        .expect("open store");
        let app = app::App::new(Arc::new(store), app::Settings::default());
        let state = server::AppState::new(app, settings);
        TestApp {
            router: server::router(state.clone()),
            state,
            _dir: Some(dir),
        }
    }

    /// A server over state built by the test (e.g. over a failing store).
    pub fn from_state(state: server::AppState) -> Self {
        TestApp {
            router: server::router(state.clone()),
            state,
            _dir: None,
        }
    }

    pub async fn request(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Reply {
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "localhost");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let has_content_type = headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
        if body.is_some() && !has_content_type {
            builder = builder.header("content-type", "application/fhir+json");
        }
        let request = builder
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .expect("request");
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible router");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        Reply {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.request(Method::GET, uri, &[], None).await
    }

    pub async fn post(&self, uri: &str, body: &Value) -> Reply {
        self.request(Method::POST, uri, &[], Some(body.to_string()))
            .await
    }

    pub async fn put(&self, uri: &str, body: &Value) -> Reply {
        self.request(Method::PUT, uri, &[], Some(body.to_string()))
            .await
    }

    pub async fn delete(&self, uri: &str) -> Reply {
        self.request(Method::DELETE, uri, &[], None).await
    }

    /// Creates a resource and returns its server-assigned id.
    pub async fn create(&self, resource: Value) -> String {
        let resource_type = resource["resourceType"]
            .as_str()
            .expect("resourceType")
            .to_owned();
        let reply = self
            .post(&format!("/fhir/{resource_type}"), &resource)
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        reply.json()["id"].as_str().expect("id").to_owned()
    }
}

/// Checks that a reply is an OperationOutcome with the given status and first issue code.
pub fn assert_outcome(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.text);
    let json = reply.json();
    assert_eq!(json["resourceType"], "OperationOutcome", "{}", reply.text);
    assert_eq!(json["issue"][0]["code"], code, "{}", reply.text);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|value| value.starts_with("application/fhir+json"))
    );
}
