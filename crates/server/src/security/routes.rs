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
pub(crate) async fn token(
    State(state): State<AppState>,
    extensions: axum::http::Extensions,
    body: axum::body::Bytes,
) -> Response {
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
    let patient_grant = form
        .iter()
        .any(|(name, value)| name == "grant_type" && value == auth::PATIENT_GRANT_TYPE);
    let bucket = if patient_grant {
        // Patients' logins carry no client: limited per peer address (per account name when the
        // address is unknown), apart from every other bucket.
        peer(&extensions).map_or_else(
            || {
                let name = form
                    .iter()
                    .find(|(name, _)| name == "username")
                    .map(|(_, value)| value.chars().take(64).collect::<String>())
                    .unwrap_or_default();
                format!("login:{name}")
            },
            |peer| format!("login-peer:{peer}"),
        )
    } else {
        auth::claimed_client_id(&form).map_or_else(
            || super::guard::ANONYMOUS.to_owned(),
            |id| format!("token:{}", id.as_str()),
        )
    };
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
    if patient_grant {
        return patient_login(&security, &form, now).await;
    }
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

/// A patient's login at the token endpoint (password + card signature of a challenge).
/// Failures answer 400 `invalid_grant` (RFC 6749 §5.2) with one reason whatever failed.
async fn patient_login(
    security: &Security,
    form: &[(String, String)],
    now: SystemTime,
) -> Response {
    let (response, agent, decision) = match security.tokens.patient_login(form, now).await {
        Ok(token) => {
            let caller = Caller::Patient {
                account: token.principal.account_id.as_str().to_owned(),
                patient: token.principal.patient.clone(),
            };
            let (agent, _) = caller.agent();
            let mut response = (StatusCode::OK, Json(token.response_body())).into_response();
            no_store(&mut response);
            (response, agent, audit::Decision::Permitted)
        }
        Err(error) if error.is_unavailable() => {
            return oauth_error(StatusCode::SERVICE_UNAVAILABLE, error.oauth_body());
        }
        Err(error) => {
            tracing::info!(reason = error.reason(), "patient login refused");
            let status = if error.oauth_body()["error"] == "invalid_grant" {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::UNAUTHORIZED
            };
            (
                oauth_error(status, error.oauth_body()),
                anonymous(),
                audit::Decision::Denied,
            )
        }
    };
    let record = authentication_record(
        agent,
        audit::PurposeOfUse::PatientRequest,
        decision,
        response.status().as_u16(),
    );
    if security.record(vec![record]).await.is_err() {
        return oauth_error(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": "temporarily_unavailable"}),
        );
    }
    response
}

/// `POST /auth/challenge`: a single-use challenge (two minutes) for a patient's card to sign, at
/// login or at a facility's reception.
pub(crate) async fn challenge(
    State(state): State<AppState>,
    extensions: axum::http::Extensions,
) -> Response {
    let Some(security) = state.security.clone() else {
        return ApiError::RouteNotFound.into_response();
    };
    // Per peer address, so that one client cannot use up everyone's challenges.
    let bucket = peer(&extensions).map_or_else(
        || "challenge".to_owned(),
        |peer| format!("challenge:{peer}"),
    );
    if let Err(retry_after) = security.limiter.check(&bucket, std::time::Instant::now()) {
        return ApiError::TooManyRequests { retry_after }.into_response();
    }
    match security.tokens.issue_challenge(SystemTime::now()) {
        Ok(challenge) => {
            let mut response = (StatusCode::OK, Json(challenge.response_body())).into_response();
            no_store(&mut response);
            response
        }
        Err(_) => ApiError::AuditUnavailable.into_response(),
    }
}

/// `POST /fhir/Consent`: a patient consents to an organisation (portal), or a facility records the
/// consent its patient gave at reception with the card's signature of a challenge
/// (`X-Card-Challenge`, `X-Card-Signature`; the card signs `consent:<organisation>`). The
/// grantee is `provision.actor[0].reference` (`Organization/<registry id>`), valid until
/// `provision.period.end` (default: one year).
pub(crate) async fn consent_create(
    state: &AppState,
    context: &FhirContext,
    headers: &axum::http::HeaderMap,
    body: Value,
) -> Result<Response, ApiError> {
    let Some(security) = &state.security else {
        return Err(ApiError::RouteNotFound);
    };
    let invalid = |path: &str, message: &str| {
        ApiError::App(app::AppError::invalid(
            fhir::IssueCode::Required,
            Some(path.to_owned()),
            message,
        ))
    };
    if body.get("resourceType").and_then(Value::as_str) != Some("Consent") {
        return Err(invalid("Consent", "the body must be a Consent"));
    }
    let grantee = body
        .pointer("/provision/actor/0/reference/reference")
        .and_then(Value::as_str)
        .and_then(|reference| reference.strip_prefix("Organization/"))
        .ok_or_else(|| {
            invalid(
                "Consent.provision.actor[0].reference",
                "name the organisation consented to as Organization/<id>",
            )
        })?
        .to_owned();
    let named_patient = body
        .pointer("/patient/reference")
        .and_then(Value::as_str)
        .and_then(|reference| reference.strip_prefix("Patient/"))
        .map(str::to_owned);
    let now = app::now();
    let until = match body
        .pointer("/provision/period/end")
        .and_then(Value::as_str)
    {
        Some(end) => app::parse_fhir_end(end)
            .ok_or_else(|| invalid("Consent.provision.period.end", "a date or dateTime"))?,
        None => app::Timestamp(now.0 + 365 * 86_400_000_000),
    };
    if until.0 <= now.0 {
        return Err(invalid(
            "Consent.provision.period.end",
            "the end must be in the future",
        ));
    }
    let organisation = auth::OrganisationId::new(grantee.clone()).map_err(|_| {
        invalid(
            "Consent.provision.actor[0].reference",
            "not an organisation id",
        )
    })?;
    let known = security
        .tokens
        .registry()
        .organisation(&organisation)
        .await
        .map_err(|_| ApiError::AuditUnavailable)?;
    if known.is_none() {
        return Err(invalid(
            "Consent.provision.actor[0].reference",
            "no such organisation is registered",
        ));
    }
    let patient = match &context.viewer {
        app::Viewer::Patient(own) => {
            if named_patient.as_ref().is_some_and(|named| named != own) {
                return Err(ApiError::App(app::AppError::Denied(
                    "a patient consents for themself only".into(),
                )));
            }
            own.clone()
        }
        app::Viewer::Member(member) => {
            if member.organisation != grantee {
                return Err(ApiError::App(app::AppError::Denied(
                    "a facility records consents to itself only".into(),
                )));
            }
            let patient = named_patient
                .ok_or_else(|| invalid("Consent.patient", "name the patient as Patient/<id>"))?;
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned)
            };
            let (Some(challenge), Some(signature)) =
                (header("x-card-challenge"), header("x-card-signature"))
            else {
                return Err(ApiError::App(app::AppError::Denied(
                    "a consent given at reception carries the patient's card signature \
                     (X-Card-Challenge, X-Card-Signature)"
                        .into(),
                )));
            };
            let purpose = auth::consent_purpose(&organisation);
            if let Err(error) = security
                .tokens
                .verify_card_signature(
                    &patient,
                    &purpose,
                    &challenge,
                    &signature,
                    SystemTime::now(),
                )
                .await
            {
                if error.is_unavailable() {
                    return Err(ApiError::AuditUnavailable);
                }
                return Err(ApiError::App(app::AppError::Denied(format!(
                    "the patient's card signature was not accepted ({})",
                    error.reason()
                ))));
            }
            patient
        }
        _ => {
            return Err(ApiError::App(app::AppError::Denied(
                "consents are given by patients or recorded with their card".into(),
            )));
        }
    };
    let consent = context
        .app(state)
        .grant_consent(&patient, &grantee, now, until)
        .await?;
    let mut response = fhir_json(StatusCode::CREATED, consent.json.clone());
    if let Ok(value) = HeaderValue::from_str(&format!(
        "{}/Consent/{}/_history/{}",
        context.base, consent.id, consent.version
    )) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// The peer's IP address, when the server was started with connection info (`server::run`).
/// Behind a load balancer this is the balancer's: limit per client there too.
fn peer(extensions: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip())
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
