//! The routes of the security layer: the token endpoint, the SMART configuration, emergency
//! access, and a patient's access history.

use std::time::SystemTime;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::guard::{Caller, anonymous};
use super::{Alert, Security};
use crate::api::{FhirBody, FhirContext, fhir_json};
use crate::{ApiError, AppState};

/// The largest token request accepted (an assertion is a few KiB).
const MAX_TOKEN_REQUEST: usize = 16 * 1024;
/// Entries per page of an access history, by default and at most.
const HISTORY_PAGE: usize = 50;
const HISTORY_PAGE_MAX: usize = 200;

/// `GET /fhir/.well-known/smart-configuration`.
pub(crate) async fn smart_configuration(State(state): State<AppState>) -> Response {
    match &state.security {
        Some(security) => (
            [(header::CONTENT_TYPE, "application/json")],
            security.tokens.smart_configuration().to_string(),
        )
            .into_response(),
        None => ApiError::RouteNotFound.into_response(),
    }
}

/// `POST /auth/token`: SMART Backend Services `client_credentials` with a signed assertion.
/// Answers OAuth bodies (not OperationOutcomes): this is the OAuth endpoint. Every issuance and
/// refusal is recorded; the form, the assertion and the token are never logged.
pub(crate) async fn token(State(state): State<AppState>, body: axum::body::Bytes) -> Response {
    let Some(security) = state.security.clone() else {
        return ApiError::RouteNotFound.into_response();
    };
    if body.len() > MAX_TOKEN_REQUEST {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_request", "error_description": "the token request is too large"}),
        );
    }
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    // Token requests are limited per client they claim to be (unverified, only as a bucket key),
    // so that forged requests cannot flood the audit trail.
    let bucket = auth::claimed_client_id(&form).map_or_else(
        || super::guard::ANONYMOUS.to_owned(),
        |id| format!("token:{}", id.as_str()),
    );
    if let Err(retry_after) = security.limiter.check(&bucket, std::time::Instant::now()) {
        let mut response = oauth_error(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"error": "slow_down", "error_description": "too many token requests"}),
        );
        if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let now = SystemTime::now();
    let result = security.tokens.exchange(&form, now).await;
    let (response, agent, purpose, decision) = match result {
        Ok(token) => {
            let caller = Caller::Member(Box::new(token.principal.clone()));
            let (agent, purpose) = caller.agent();
            let mut response = (StatusCode::OK, Json(token.response_body())).into_response();
            no_store(&mut response);
            (response, agent, purpose, audit::Decision::Permitted)
        }
        Err(error) if error.is_unavailable() => {
            let mut response = oauth_error(StatusCode::SERVICE_UNAVAILABLE, error.oauth_body());
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return response;
        }
        Err(error) => {
            tracing::info!(reason = error.reason(), "token request refused");
            let mut agent = anonymous();
            agent.client_id = auth::claimed_client_id(&form).map(|id| id.as_str().to_owned());
            (
                oauth_error(StatusCode::UNAUTHORIZED, error.oauth_body()),
                agent,
                audit::PurposeOfUse::Treatment,
                audit::Decision::Denied,
            )
        }
    };
    let record = authentication_record(agent, purpose, decision, response.status().as_u16());
    if security.record(vec![record]).await.is_err() {
        return oauth_error(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": "temporarily_unavailable"}),
        );
    }
    response
}

/// The audit entry of a token request.
pub(crate) fn authentication_record(
    agent: audit::Agent,
    purpose_of_use: audit::PurposeOfUse,
    decision: audit::Decision,
    http_status: u16,
) -> audit::AuditRecord {
    audit::AuditRecord {
        recorded: audit::UtcTime::now(),
        request_id: crate::middleware::current_request_id(),
        agent,
        purpose_of_use,
        patient: None,
        action: audit::Action {
            interaction: audit::Interaction::Authenticate,
            operation: None,
            resource_type: None,
            resource_id: None,
            query: Vec::new(),
        },
        outcome: audit::Outcome {
            decision,
            http_status,
        },
        emergency: false,
    }
}

struct Json(Value);

impl IntoResponse for Json {
    fn into_response(self) -> Response {
        (
            [(header::CONTENT_TYPE, "application/json")],
            self.0.to_string(),
        )
            .into_response()
    }
}

pub(crate) fn oauth_error(status: StatusCode, body: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    no_store(&mut response);
    response
}

pub(crate) fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
        .headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// `POST /fhir/Patient/{id}/$emergency-access` with a Parameters body naming the `reason`: opens
/// the emergency window (`app::EMERGENCY_WINDOW_MINUTES`) on the patient's `$emergency-summary`,
/// and alerts the privacy officer.
pub(crate) async fn emergency_access(
    state: &AppState,
    context: &FhirContext,
    patient: &str,
    body: FhirBody,
) -> Result<Response, ApiError> {
    let app::Viewer::Member(member) = &context.viewer else {
        return Err(ApiError::App(app::AppError::Denied(
            "emergency access is for hospital users holding the emergency privilege".into(),
        )));
    };
    let parameters = body.into_resource()?;
    let reason = parameters
        .get("parameter")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|parameter| parameter.get("name").and_then(Value::as_str) == Some("reason"))
        .and_then(|parameter| {
            parameter
                .get("valueString")
                .or_else(|| parameter.pointer("/valueCodeableConcept/text"))
                .and_then(Value::as_str)
        })
        .unwrap_or_default()
        .to_owned();
    let now = app::now();
    let task = context
        .app(state)
        .open_emergency_access(member, patient, &reason, now)
        .await?;
    if let Some(security) = &state.security {
        security.alerts.raise(&Alert::EmergencyAccess {
            review: task.id.clone(),
            organisation: member.organisation.clone(),
            user: member.user.clone(),
        });
    }
    let end = now.0 + app::EMERGENCY_WINDOW_MINUTES * 60_000_000;
    let parameters = json!({
        "resourceType": "Parameters",
        "parameter": [
            {"name": "review", "valueReference": {"reference": format!("Task/{}", task.id)}},
            {"name": "window-end", "valueInstant": app::Timestamp(end).to_fhir_instant()},
            {"name": "operation", "valueString": "$emergency-summary"},
        ]
    });
    Ok(fhir_json(StatusCode::OK, parameters.to_string()))
}

/// `GET /fhir/AuditEvent?patient=…`: the patient's own access history, newest first, from the
/// audit log. Another id than their own finds nothing; members are refused (the history is the
/// patient's; privacy officers read the log with the CLI).
pub(crate) async fn access_history(
    security: &Security,
    context: &FhirContext,
) -> Result<Response, ApiError> {
    let app::Viewer::Patient(own) = &context.viewer else {
        return Err(ApiError::App(app::AppError::Denied(
            "the access history is read by the patient it belongs to".into(),
        )));
    };
    let mut patient = None;
    let mut count = HISTORY_PAGE;
    let mut before = None;
    for (name, value) in &context.params {
        match name.as_str() {
            "patient" | "entity" => {
                patient = Some(value.trim_start_matches("Patient/").to_owned());
            }
            "_count" => {
                count = value
                    .parse::<usize>()
                    .map_err(|_| ApiError::BadRequest("_count must be a number".into()))?
                    .clamp(1, HISTORY_PAGE_MAX);
            }
            "_cursor" => {
                before = Some(value.parse::<u64>().map_err(|_| {
                    ApiError::BadRequest("_cursor must be a cursor from a next link".into())
                })?);
            }
            "_format" | "_pretty" => {}
            _ => {
                return Err(ApiError::BadRequest(
                    "the access history is searched by patient, _count and _cursor only".into(),
                ));
            }
        }
    }
    let patient = patient.unwrap_or_else(|| own.clone());
    let entries = if &patient == own {
        let log = std::sync::Arc::clone(&security.audit);
        let own = own.clone();
        tokio::task::spawn_blocking(move || log.patient_history(&own, before, count + 1))
            .await
            .map_err(|_| ApiError::AuditUnavailable)?
            .map_err(|_| ApiError::AuditUnavailable)?
    } else {
        Vec::new()
    };
    let more = entries.len() > count;
    let shown = &entries[..entries.len().min(count)];
    let mut bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "link": [{"relation": "self", "url": format!("{}/AuditEvent?patient={patient}&_count={count}", context.base)}],
        "entry": shown.iter().map(|entry| {
            let id = entry.seq.to_string();
            json!({
                "fullUrl": format!("{}/AuditEvent/{id}", context.base),
                "resource": entry.record.to_audit_event(&id),
                "search": {"mode": "match"},
            })
        }).collect::<Vec<_>>(),
    });
    if more && let Some(last) = shown.last() {
        bundle["link"].as_array_mut().into_iter().for_each(|links| {
            links.push(json!({
                "relation": "next",
                "url": format!(
                    "{}/AuditEvent?patient={patient}&_count={count}&_cursor={}",
                    context.base, last.seq
                ),
            }));
        });
    }
    Ok(fhir_json(StatusCode::OK, bundle.to_string()))
}
