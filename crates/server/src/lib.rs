//! The HTTP face of tsunagu: the FHIR REST API under `/fhir` (in [`api`]), health and metrics
//! endpoints, and the request middleware (request id, trace span, metrics). The only crate that
//! knows axum and HTTP.
//!
//! [`router`] builds the whole service from an [`AppState`]; [`run`] serves it on a listener until a
//! shutdown future resolves, finishing in-flight requests first.

pub mod api;
mod error;
mod metrics;
mod middleware;
pub mod security;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;

pub use crate::error::{ApiError, ErrorCause};
pub use crate::metrics::Metrics;

/// HTTP-level settings, validated once in `main`.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Largest accepted request body in bytes (413 beyond it).
    pub max_body_bytes: usize,
    /// The public base URL of the FHIR API (e.g. `https://tsunagu.example.jp/fhir`). When `None`,
    /// links are built from the request's `Host` header and `http`.
    pub base_url: Option<String>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            max_body_bytes: 10 * 1024 * 1024,
            base_url: None,
        }
    }
}

/// Everything a handler may use.
#[derive(Debug, Clone)]
pub struct AppState {
    pub app: app::App,
    pub settings: Arc<ServerSettings>,
    pub metrics: Arc<Metrics>,
    /// The CapabilityStatement, built once.
    pub capability: Arc<str>,
    /// Authentication, audit and abuse controls. `None` only for library use without them (the
    /// `tsunagu serve` binary always sets it): requests are then an unidentified facility.
    pub security: Option<Arc<security::Security>>,
}

impl AppState {
    /// Builds the state and the CapabilityStatement.
    pub fn new(app: app::App, settings: ServerSettings) -> Self {
        let capability = api::capability::capability_statement(&app)
            .to_string()
            .into();
        AppState {
            app,
            settings: Arc::new(settings),
            metrics: Arc::new(Metrics::default()),
            capability,
            security: None,
        }
    }

    /// The same state with authentication, audit and abuse controls on; the CapabilityStatement
    /// then announces the token endpoint (`rest[0].security`).
    pub fn with_security(mut self, security: security::Security) -> Self {
        let mut capability = api::capability::capability_statement(&self.app);
        capability["rest"][0]["security"] = security.tokens().capability_security();
        self.capability = capability.to_string().into();
        self.security = Some(Arc::new(security));
        self
    }
}

/// The whole service: `/fhir/...`, `/healthz`, `/readyz`, `/metrics`, and `/`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .nest(
            "/fhir",
            api::routes().route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                security::guard,
            )),
        )
        .route("/auth/token", axum::routing::post(security::token))
        .route("/auth/challenge", axum::routing::post(security::challenge))
        .route("/", get(home))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics_text))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::observe,
        ))
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets in-flight requests finish.
///
/// # Errors
/// When the listener fails.
pub async fn run(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The peer address keys the rate limits of requests that carry no credential yet (challenges,
    // patients' logins).
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// 200 when the store answers; otherwise the store's error as every API error is answered (503
/// with `Retry-After` and an OperationOutcome for an unavailable store).
async fn ready(State(state): State<AppState>) -> axum::response::Response {
    match state.app.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(error) => error::ApiError::from(error).into_response(),
    }
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    let mut text = state.metrics.render();
    if let Some(security) = &state.security {
        let stats = security.audit().stats();
        text.push_str(&format!(
            "# HELP tsunagu_audit_appends_total Audit entries committed.\n\
             # TYPE tsunagu_audit_appends_total counter\n\
             tsunagu_audit_appends_total {}\n\
             # HELP tsunagu_audit_batches_total Audit group commits (one fsync each).\n\
             # TYPE tsunagu_audit_batches_total counter\n\
             tsunagu_audit_batches_total {}\n\
             # HELP tsunagu_audit_failed_batches_total Audit group commits that failed.\n\
             # TYPE tsunagu_audit_failed_batches_total counter\n\
             tsunagu_audit_failed_batches_total {}\n",
            stats.appends, stats.batches, stats.failed_batches
        ));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

async fn home() -> Html<&'static str> {
    Html(include_str!("ui/home.html"))
}
