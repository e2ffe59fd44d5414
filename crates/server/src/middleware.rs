//! The one request middleware: assigns a request id, opens the trace span, times the request for
//! the metrics, and logs the outcome (with the cause of any 5xx). It logs the route template, never
//! the URL: paths and queries can carry patient identifiers.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::{AppState, ErrorCause};

tokio::task_local! {
    /// The id of the request being served, for error bodies.
    pub(crate) static REQUEST_ID: String;
}

/// The current request id, or `-` outside a request.
pub(crate) fn current_request_id() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "-".to_owned())
}

pub(crate) async fn observe(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let interaction = interaction(request.method(), route.as_deref(), request.uri().path());
    let span = tracing::info_span!(
        "request",
        id = %request_id,
        method = %request.method(),
        route = route.as_deref().unwrap_or("-"),
    );
    let mut response = REQUEST_ID
        .scope(
            request_id.clone(),
            next.run(request).instrument(span.clone()),
        )
        .await;
    let elapsed = started.elapsed();
    let status = response.status();
    state.metrics.observe(interaction, status.as_u16(), elapsed);
    let _entered = span.enter();
    if let Some(cause) = response.extensions_mut().remove::<ErrorCause>() {
        tracing::error!(status = status.as_u16(), elapsed_ms = elapsed.as_secs_f64() * 1000.0, cause = %cause.0, "request failed");
    } else {
        tracing::info!(
            status = status.as_u16(),
            elapsed_ms = elapsed.as_secs_f64() * 1000.0,
            "request"
        );
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// The FHIR interaction a request performs, as a fixed label.
fn interaction(method: &Method, route: Option<&str>, path: &str) -> &'static str {
    let Some(route) = route else {
        return "unmatched";
    };
    match (method.as_str(), route) {
        (_, "/healthz" | "/readyz" | "/metrics" | "/") => "operations",
        ("GET", "/fhir/metadata") => "capabilities",
        ("POST", "/fhir") => "transaction-batch",
        ("GET", "/fhir") => "search-system",
        ("GET", "/fhir/_history") => "history-system",
        ("GET", "/fhir/{type}") => "search-type",
        ("POST", "/fhir/{type}") => "create",
        ("PUT", "/fhir/{type}") => "update-conditional",
        ("DELETE", "/fhir/{type}") => "delete-conditional",
        ("POST", "/fhir/{type}/_search") => "search-type",
        ("GET", "/fhir/{type}/_history") => "history-type",
        ("GET", "/fhir/{type}/{id}") => "read",
        ("PUT", "/fhir/{type}/{id}") => "update",
        ("PATCH", "/fhir/{type}/{id}") => "patch",
        ("DELETE", "/fhir/{type}/{id}") => "delete",
        ("GET", "/fhir/{type}/{id}/_history") => "history-instance",
        ("GET", "/fhir/{type}/{id}/_history/{vid}") => "vread",
        ("GET", "/fhir/{type}/{id}/{compartment}") if path.contains("/$everything") => "everything",
        ("GET", "/fhir/{type}/{id}/{compartment}") => "search-compartment",
        _ => "other",
    }
}
