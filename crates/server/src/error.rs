//! `ApiError`: every failure the HTTP layer can answer with, and the one place that maps it to a
//! status, a FHIR issue code and a client-safe message.
//!
//! | From | Status | issue.code |
//! | --- | --- | --- |
//! | `AppError::Invalid` | 400 | the issue's own (`invalid`, `structure`, `required`, `value`, ...) |
//! | unauthenticated, bad or expired token | 401 + `WWW-Authenticate` | `login` |
//! | `AppError::Denied` | 403 | `forbidden` |
//! | `AppError::NotFound`, unknown route | 404 | `not-found` |
//! | method not allowed | 405 | `not-supported` |
//! | not acceptable (`Accept`/`_format` asks for XML) | 406 | `not-supported` |
//! | `AppError::Gone` | 410 | `deleted` |
//! | `AppError::Conflict` | 409 | `conflict` |
//! | `AppError::PreconditionFailed` | 412 | `conflict` |
//! | payload too large | 413 | `too-costly` |
//! | unsupported media type | 415 | `not-supported` |
//! | rate limit exceeded | 429 + `Retry-After` | `throttled` |
//! | audit trail cannot record the request | 503 + `Retry-After` | `transient` (no data) |
//! | `AppError::Unavailable` | 503 + `Retry-After` | `transient` |
//! | `AppError::Internal` | 500 | `exception` |
//!
//! Every error body ends with an informational issue naming the request id (also sent as
//! `X-Request-Id`). Internal errors reach the client only as a generic message; the cause chain
//! is put into the response extensions and logged once by the request middleware.

use std::sync::Arc;

use app::AppError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fhir::{Issue, IssueCode};

use crate::middleware::current_request_id;

/// A failed request.
#[derive(Debug)]
pub enum ApiError {
    App(AppError),
    Unauthenticated,
    /// A bearer token was refused: the client-safe reason code and the `WWW-Authenticate` value.
    TokenRefused {
        reason: &'static str,
        www_authenticate: String,
    },
    /// The client's rate limit is exhausted for `retry_after` seconds.
    TooManyRequests {
        retry_after: u64,
    },
    /// The request could not be recorded in the audit trail: nothing is answered but this.
    AuditUnavailable,
    RouteNotFound,
    MethodNotAllowed,
    NotAcceptable,
    PayloadTooLarge {
        limit: usize,
    },
    UnsupportedMediaType,
    BadRequest(String),
}

/// The cause of a 5xx, attached to the response for the logging middleware; never sent.
#[derive(Debug, Clone)]
pub struct ErrorCause(pub Arc<str>);

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        ApiError::App(error)
    }
}

impl ApiError {
    /// The single mapping: status, issues to show, and whether the cause must be logged.
    fn classify(self) -> (StatusCode, Vec<Issue>, Option<String>) {
        let one = |code: IssueCode, message: &str| vec![Issue::error(code, None, message)];
        match self {
            ApiError::App(AppError::Invalid(issues)) => (StatusCode::BAD_REQUEST, issues, None),
            ApiError::App(AppError::NotFound) => (
                StatusCode::NOT_FOUND,
                one(IssueCode::NotFound, "the resource was not found"),
                None,
            ),
            ApiError::App(AppError::Gone { .. }) => (
                StatusCode::GONE,
                one(IssueCode::Deleted, "the resource has been deleted"),
                None,
            ),
            ApiError::App(AppError::Denied(reason)) => (
                StatusCode::FORBIDDEN,
                one(IssueCode::Forbidden, &reason),
                None,
            ),
            ApiError::App(AppError::Conflict(reason)) => (
                StatusCode::CONFLICT,
                one(IssueCode::Conflict, &reason),
                None,
            ),
            ApiError::App(AppError::PreconditionFailed(reason)) => (
                StatusCode::PRECONDITION_FAILED,
                one(IssueCode::Conflict, &reason),
                None,
            ),
            ApiError::App(AppError::Unavailable(source)) => (
                StatusCode::SERVICE_UNAVAILABLE,
                one(
                    IssueCode::Transient,
                    &format!(
                        "the service is temporarily unavailable; retry later (request id {})",
                        current_request_id()
                    ),
                ),
                Some(error_chain(&source)),
            ),
            ApiError::App(AppError::Internal(source)) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                one(
                    IssueCode::Exception,
                    &format!(
                        "an internal error occurred (request id {})",
                        current_request_id()
                    ),
                ),
                Some(error_chain(source.as_ref())),
            ),
            ApiError::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                one(IssueCode::Login, "authentication is required"),
                None,
            ),
            ApiError::TokenRefused { reason, .. } => (
                StatusCode::UNAUTHORIZED,
                one(
                    IssueCode::Login,
                    &format!("the access token was refused ({reason})"),
                ),
                None,
            ),
            ApiError::TooManyRequests { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                one(
                    IssueCode::Throttled,
                    &format!("too many requests from this client; retry after {retry_after} s"),
                ),
                None,
            ),
            ApiError::AuditUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                one(
                    IssueCode::Transient,
                    &format!(
                        "the service is temporarily unavailable; retry later (request id {})",
                        current_request_id()
                    ),
                ),
                Some("the audit trail could not record the request".to_owned()),
            ),
            ApiError::RouteNotFound => (
                StatusCode::NOT_FOUND,
                one(
                    IssueCode::NotFound,
                    "no FHIR interaction is served at this URL",
                ),
                None,
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                one(
                    IssueCode::NotSupported,
                    "this HTTP method is not supported at this URL",
                ),
                None,
            ),
            ApiError::NotAcceptable => (
                StatusCode::NOT_ACCEPTABLE,
                one(
                    IssueCode::NotSupported,
                    "only FHIR JSON (application/fhir+json) is served",
                ),
                None,
            ),
            ApiError::PayloadTooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                one(
                    IssueCode::TooCostly,
                    &format!("the request body exceeds the limit of {limit} bytes"),
                ),
                None,
            ),
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                one(
                    IssueCode::NotSupported,
                    "the body must be FHIR JSON (application/fhir+json)",
                ),
                None,
            ),
            ApiError::BadRequest(message) => (
                StatusCode::BAD_REQUEST,
                one(IssueCode::Invalid, &message),
                None,
            ),
        }
    }
}

impl ApiError {
    /// The status and OperationOutcome text, for an error reported inside a Bundle entry. Causes of
    /// 5xx are logged here because no response carries them to the middleware.
    pub(crate) fn status_and_outcome(self) -> (StatusCode, String) {
        let (status, issues, cause) = self.classify();
        if let Some(cause) = cause {
            tracing::error!(status = status.as_u16(), cause = %cause, "bundle entry failed");
        }
        (status, fhir::operation_outcome(&issues).to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let extra_header = match &self {
            ApiError::Unauthenticated => Some((header::WWW_AUTHENTICATE, "Bearer".to_owned())),
            ApiError::TokenRefused {
                www_authenticate, ..
            } => Some((header::WWW_AUTHENTICATE, www_authenticate.clone())),
            ApiError::TooManyRequests { retry_after } => {
                Some((header::RETRY_AFTER, retry_after.to_string()))
            }
            _ => None,
        };
        let (status, mut issues, cause) = self.classify();
        // Every error names its request, so a caller can quote it to the operators.
        issues.push(Issue {
            severity: fhir::Severity::Information,
            code: IssueCode::Informational,
            expression: None,
            diagnostics: format!("request id {}", current_request_id()),
        });
        let mut response =
            crate::api::fhir_json(status, fhir::operation_outcome(&issues).to_string());
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if let Some((name, value)) = extra_header
            && let Ok(value) = HeaderValue::from_str(&value)
        {
            response.headers_mut().insert(name, value);
        }
        if let Some(cause) = cause {
            response.extensions_mut().insert(ErrorCause(cause.into()));
        }
        response
    }
}

/// The error and its sources, one per line, for the log.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
