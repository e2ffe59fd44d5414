//! The FHIR REST API under `/fhir`: routes, content negotiation, the request-context and body
//! extractors, and response helpers. Handlers live in [`rest`]; Bundles are rendered in [`render`].

pub mod capability;
mod render;
mod rest;

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

use crate::{ApiError, AppState};

/// The FHIR JSON media type of every response body.
pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

/// Routes below `/fhir`. Unknown routes and unsupported methods answer with an OperationOutcome.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(rest::search_system).post(rest::bundle))
        .route("/metadata", get(rest::metadata))
        .route(
            "/.well-known/smart-configuration",
            get(crate::security::smart_configuration),
        )
        .route("/_history", get(rest::history_system))
        .route(
            "/{type}",
            get(rest::search_type)
                .post(rest::create)
                .put(rest::conditional_update)
                .delete(rest::conditional_delete),
        )
        .route(
            "/{type}/_search",
            axum::routing::post(rest::search_type_post),
        )
        .route("/{type}/_history", get(rest::history_type))
        .route(
            "/{type}/{id}",
            get(rest::read)
                .put(rest::update)
                .patch(rest::patch)
                .delete(rest::delete),
        )
        .route("/{type}/{id}/_history", get(rest::history_instance))
        .route("/{type}/{id}/_history/{vid}", get(rest::vread))
        .route(
            "/{type}/{id}/{compartment}",
            get(rest::compartment).post(rest::operation_post),
        )
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
}

/// A response with a FHIR JSON body.
pub(crate) fn fhir_json(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    response
}

/// What `Prefer: return=...` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum ReturnPreference {
    Minimal,
    #[default]
    Representation,
    OperationOutcome,
}

/// The per-request context every FHIR handler needs: the base URL for links, the client's
/// preferences, and the decoded query. Building it performs the content negotiation, so a handler
/// that takes it can only run for a client that accepts FHIR JSON.
#[derive(Debug, Clone)]
pub(crate) struct FhirContext {
    /// e.g. `http://127.0.0.1:8080/fhir`, without a trailing slash.
    pub base: String,
    pub prefer_return: ReturnPreference,
    /// `Prefer: handling=strict`.
    pub strict: bool,
    /// The query pairs, decoded, in order.
    pub params: Vec<(String, String)>,
    /// Who the request reads for: the `app::Viewer` an authentication layer put in the request's
    /// extensions, else an unidentified facility.
    pub viewer: app::Viewer,
    /// The façade the security guard made for this request (its ledger feeds the audit entries).
    request_app: Option<app::App>,
    /// The token's scopes, for checks inside Bundles.
    pub scopes: Option<auth::Scopes>,
}

impl FhirContext {
    /// The use-case façade answering for this request's reader: every handler goes through it.
    pub(crate) fn app(&self, state: &AppState) -> app::App {
        match &self.request_app {
            Some(app) => app.clone(),
            None => state.app.for_viewer(self.viewer.clone()),
        }
    }
}

impl FromRequestParts<AppState> for FhirContext {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let params: Vec<(String, String)> = parts
            .uri
            .query()
            .map(|query| {
                form_urlencoded::parse(query.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        negotiate(&parts.headers, &params)?;
        let base = match &state.settings.base_url {
            Some(base) => base.trim_end_matches('/').to_owned(),
            None => {
                let host = parts
                    .headers
                    .get(header::HOST)
                    .and_then(|value| value.to_str().ok())
                    .filter(|host| {
                        host.chars()
                            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
                    })
                    .unwrap_or("localhost");
                format!("http://{host}/fhir")
            }
        };
        let (prefer_return, strict) = parse_prefer(&parts.headers);
        let request_app = parts
            .extensions
            .get::<crate::security::RequestApp>()
            .map(|app| app.0.clone());
        let viewer = match &request_app {
            Some(app) => app.viewer().clone(),
            None => parts
                .extensions
                .get::<app::Viewer>()
                .cloned()
                .unwrap_or_default(),
        };
        let scopes = match parts.extensions.get::<crate::security::Caller>() {
            Some(crate::security::Caller::Member(principal)) => Some(principal.scopes.clone()),
            _ => None,
        };
        Ok(FhirContext {
            base,
            prefer_return,
            strict,
            params,
            viewer,
            request_app,
            scopes,
        })
    }
}

/// Refuses clients that want only XML or another format we do not serve.
fn negotiate(headers: &HeaderMap, params: &[(String, String)]) -> Result<(), ApiError> {
    if let Some((_, format)) = params.iter().find(|(name, _)| name == "_format") {
        let format = format.trim().to_ascii_lowercase();
        let json = matches!(
            format.as_str(),
            "json" | "application/json" | "application/fhir+json"
        ) || format.starts_with("application/fhir+json;")
            || format.starts_with("application/json;");
        if !json {
            return Err(ApiError::NotAcceptable);
        }
        return Ok(());
    }
    let Some(accept) = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
    else {
        return Ok(());
    };
    let acceptable = accept.split(',').any(|item| {
        let media = item
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        matches!(
            media.as_str(),
            "" | "*/*"
                | "application/*"
                | "application/json"
                | "application/fhir+json"
                | "application/json+fhir"
                | "text/*"
                | "text/html"
        )
    });
    if acceptable {
        Ok(())
    } else {
        Err(ApiError::NotAcceptable)
    }
}

/// Reads `Prefer`: `return=minimal|representation|OperationOutcome` and `handling=strict|lenient`.
fn parse_prefer(headers: &HeaderMap) -> (ReturnPreference, bool) {
    let mut preference = ReturnPreference::default();
    let mut strict = false;
    for value in headers
        .get_all("prefer")
        .iter()
        .filter_map(|value| value.to_str().ok())
    {
        for item in value.split([',', ';']) {
            match item
                .trim()
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
            {
                Some(("return", "minimal")) => preference = ReturnPreference::Minimal,
                Some(("return", "representation")) => preference = ReturnPreference::Representation,
                Some(("return", "OperationOutcome")) => {
                    preference = ReturnPreference::OperationOutcome
                }
                Some(("handling", "strict")) => strict = true,
                Some(("handling", "lenient")) => strict = false,
                _ => {}
            }
        }
    }
    (preference, strict)
}

/// A request body: FHIR JSON (a resource or a Bundle), a JSON Patch document, or a search form.
/// Bodies over the configured limit are refused with 413; XML and other media types with 415.
#[derive(Debug)]
pub(crate) enum FhirBody {
    Resource(Value),
    JsonPatch(Value),
    Form(Vec<(String, String)>),
}

impl FhirBody {
    /// The body as a FHIR resource; any other kind of body is the wrong media type here.
    pub(crate) fn into_resource(self) -> Result<Value, ApiError> {
        match self {
            FhirBody::Resource(value) => Ok(value),
            FhirBody::JsonPatch(_) | FhirBody::Form(_) => Err(ApiError::UnsupportedMediaType),
        }
    }
}

impl FromRequest<AppState> for FhirBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        #[derive(PartialEq)]
        enum Kind {
            Fhir,
            JsonPatch,
            Form,
        }
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(|value| {
                value
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        let kind = match content_type.as_deref() {
            None
            | Some(
                "application/fhir+json"
                | "application/json"
                | "application/json+fhir"
                | "text/json",
            ) => Kind::Fhir,
            Some("application/json-patch+json") => Kind::JsonPatch,
            Some("application/x-www-form-urlencoded") => Kind::Form,
            Some(_) => return Err(ApiError::UnsupportedMediaType),
        };
        let limit = state.settings.max_body_bytes;
        let bytes = axum::body::to_bytes(request.into_body(), limit)
            .await
            .map_err(|_| ApiError::PayloadTooLarge { limit })?;
        if kind == Kind::Form {
            return Ok(FhirBody::Form(
                form_urlencoded::parse(&bytes).into_owned().collect(),
            ));
        }
        if bytes.is_empty() {
            return Err(ApiError::App(app::AppError::invalid(
                fhir::IssueCode::Required,
                None,
                "the request has no body",
            )));
        }
        let value = fhir::parse_json(&bytes)
            .map_err(|issue| ApiError::App(app::AppError::Invalid(vec![issue])))?;
        Ok(if kind == Kind::JsonPatch {
            FhirBody::JsonPatch(value)
        } else {
            FhirBody::Resource(value)
        })
    }
}
