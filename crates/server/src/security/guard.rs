//! The guard every authenticated `/fhir` request passes (module doc of `security`).

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use auth::Permission;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Security;
use crate::{ApiError, AppState};

/// Who made a request, as their token says.
#[derive(Debug, Clone)]
pub(crate) enum Caller {
    /// A member of an organisation, through its facility system.
    Member(Box<auth::Principal>),
    /// A patient, through their own login.
    Patient { account: String, patient: String },
}

impl Caller {
    /// The reader the façade answers for.
    fn viewer(&self) -> app::Viewer {
        match self {
            Caller::Member(principal) => app::Viewer::Member(member(principal)),
            Caller::Patient { patient, .. } => app::Viewer::Patient(patient.clone()),
        }
    }

    /// The key of the caller's rate limit: the client system, or the patient's account.
    fn limit_key(&self) -> String {
        match self {
            Caller::Member(principal) => format!("client:{}", principal.client_id.as_str()),
            Caller::Patient { account, .. } => format!("patient:{account}"),
        }
    }

    /// The audit entry's agent and purpose of use.
    pub(crate) fn agent(&self) -> (audit::Agent, audit::PurposeOfUse) {
        match self {
            Caller::Member(principal) => {
                let organisation = &principal.organisation;
                let organisation_id = match organisation.institution_number() {
                    Some(number) => audit::OrganisationId::institution_number(number.to_string()),
                    None => audit::OrganisationId {
                        system: ORGANISATION_SYSTEM.to_owned(),
                        value: organisation.id().as_str().to_owned(),
                    },
                };
                (
                    audit::Agent {
                        user_id: principal.user.id.clone(),
                        display_name: principal.user.name.clone(),
                        role: principal.user.role.code().to_owned(),
                        organisation: Some(organisation_id),
                        client_id: Some(principal.client_id.as_str().to_owned()),
                    },
                    purpose(principal.purpose_of_use),
                )
            }
            Caller::Patient { account, .. } => (
                audit::Agent {
                    user_id: account.clone(),
                    display_name: "patient".to_owned(),
                    role: "patient".to_owned(),
                    organisation: None,
                    client_id: None,
                },
                audit::PurposeOfUse::PatientRequest,
            ),
        }
    }
}

/// The identifier system of organisations without an institution number: their registry id.
pub(crate) const ORGANISATION_SYSTEM: &str = "https://tsunagu.jp/fhir/NamingSystem/organisation";

/// The agent of a request whose caller is not known (no or a refused token).
pub(crate) fn anonymous() -> audit::Agent {
    audit::Agent {
        user_id: "unauthenticated".to_owned(),
        display_name: "unauthenticated".to_owned(),
        role: "none".to_owned(),
        organisation: None,
        client_id: None,
    }
}

/// The façade's member for a verified principal.
fn member(principal: &auth::Principal) -> app::Member {
    let token_types = principal
        .scopes
        .iter()
        .filter(|(_, permissions)| permissions.contains(Permission::Read))
        .map(|(resource_type, _)| resource_type.to_owned())
        .collect();
    app::Member {
        organisation: principal.organisation.id().as_str().to_owned(),
        institution: principal
            .organisation
            .institution_number()
            .map(ToString::to_string),
        kind: principal.organisation.kind(),
        role: principal.user.role,
        user: principal.user.id.clone(),
        emergency_privilege: principal.user.emergency_privilege,
        token_types: Some(token_types),
    }
}

fn purpose(purpose: auth::PurposeOfUse) -> audit::PurposeOfUse {
    use audit::PurposeOfUse as A;
    use auth::PurposeOfUse as P;
    match purpose {
        P::Treatment => A::Treatment,
        P::EmergencyTreatment => A::EmergencyTreatment,
        P::PublicHealth => A::PublicHealth,
        P::CareManagement => A::CareManagement,
        P::Coverage => A::Coverage,
        P::PopulationHealth => A::PopulationHealth,
    }
}

/// What a request asks for, from its route: for the scope check and the audit entry.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub interaction: audit::Interaction,
    pub operation: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub query: Vec<String>,
    /// The scope the interaction needs: a type (or several for a system search) and a permission.
    pub needs: Vec<(String, Permission)>,
}

impl Target {
    pub(crate) fn of(method: &Method, route: &str, path: &str, query: Option<&str>) -> Target {
        use audit::Interaction as I;
        let segments: Vec<&str> = path
            .trim_start_matches("/fhir")
            .split('/')
            .filter(|segment| !segment.is_empty())
            .collect();
        let resource_type = segments
            .first()
            .filter(|t| t.starts_with(|c: char| c.is_ascii_uppercase()))
            .map(|t| (*t).to_owned());
        let resource_id = segments.get(1).map(|id| (*id).to_owned());
        let query_names = query.map(audit::query_parameter_names).unwrap_or_default();
        let (interaction, permission) = match (method.as_str(), route) {
            ("POST", "/fhir") => (I::Batch, None),
            ("GET", "/fhir") => (I::SearchSystem, Some(Permission::Search)),
            ("GET", "/fhir/_history") => (I::HistorySystem, Some(Permission::Read)),
            ("GET" | "POST", "/fhir/{type}/_search") => (I::SearchType, Some(Permission::Search)),
            ("GET", "/fhir/{type}") => (I::SearchType, Some(Permission::Search)),
            ("POST", "/fhir/{type}") => (I::Create, Some(Permission::Create)),
            ("PUT", "/fhir/{type}") => (I::Update, Some(Permission::Update)),
            ("DELETE", "/fhir/{type}") => (I::Delete, Some(Permission::Delete)),
            ("GET", "/fhir/{type}/_history") => (I::HistoryType, Some(Permission::Read)),
            ("GET", "/fhir/{type}/{id}") => (I::Read, Some(Permission::Read)),
            ("PUT", "/fhir/{type}/{id}") => (I::Update, Some(Permission::Update)),
            ("PATCH", "/fhir/{type}/{id}") => (I::Patch, Some(Permission::Update)),
            ("DELETE", "/fhir/{type}/{id}") => (I::Delete, Some(Permission::Delete)),
            ("GET", "/fhir/{type}/{id}/_history") => (I::HistoryInstance, Some(Permission::Read)),
            ("GET", "/fhir/{type}/{id}/_history/{vid}") => (I::Vread, Some(Permission::Read)),
            (_, "/fhir/{type}/{id}/{compartment}") => {
                let target = segments.get(2).copied().unwrap_or_default();
                if target.starts_with('$') {
                    (I::Operation, Some(Permission::Read))
                } else {
                    (I::SearchType, Some(Permission::Search))
                }
            }
            _ => (I::Read, None),
        };
        let operation = if interaction == I::Operation {
            segments
                .get(2)
                .map(|op| (*op).to_owned())
                .filter(|op| valid_operation(op))
        } else {
            None
        };
        // An operation name the audit record cannot hold is not an operation we serve.
        let interaction = if interaction == I::Operation && operation.is_none() {
            I::Read
        } else {
            interaction
        };
        let mut needs = Vec::new();
        match (interaction, permission) {
            (I::SearchSystem, _) => {
                for types in query
                    .into_iter()
                    .flat_map(|q| form_urlencoded::parse(q.as_bytes()))
                    .filter(|(name, _)| name == "_type")
                {
                    for t in types.1.split(',') {
                        needs.push((t.to_owned(), Permission::Search));
                    }
                }
                if needs.is_empty() {
                    // Without `_type` a system search would reach every type: name them.
                    needs.push(("*".to_owned(), Permission::Search));
                }
            }
            (I::HistorySystem, _) => needs.push(("*".to_owned(), Permission::Read)),
            (I::Operation, Some(permission)) => {
                needs.push(("Patient".to_owned(), permission));
            }
            (I::SearchType, Some(permission)) if route == "/fhir/{type}/{id}/{compartment}" => {
                let target = segments.get(2).copied().unwrap_or_default();
                if target == "*" {
                    needs.push(("Patient".to_owned(), Permission::Read));
                } else {
                    needs.push((target.to_owned(), permission));
                }
            }
            (_, Some(permission)) => {
                if let Some(resource_type) = &resource_type {
                    needs.push((resource_type.clone(), permission));
                }
            }
            (_, None) => {}
        }
        let is_id = |id: &String| {
            !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        };
        let resource_id = resource_id.filter(|id| {
            is_id(id)
                && !matches!(
                    route,
                    "/fhir/{type}" | "/fhir/{type}/_search" | "/fhir/{type}/_history"
                )
        });
        let resource_type =
            resource_type.filter(|t| t.len() <= 64 && t.bytes().all(|b| b.is_ascii_alphabetic()));
        Target {
            interaction,
            operation,
            resource_type,
            resource_id,
            query: query_names,
            needs,
        }
    }

    /// The patient named in the URL (`Patient/{id}...`), for requests refused before any lookup.
    fn url_patient(&self) -> Option<String> {
        (self.resource_type.as_deref() == Some("Patient"))
            .then(|| self.resource_id.clone())
            .flatten()
    }
}

fn valid_operation(op: &str) -> bool {
    op.len() <= 64
        && op.strip_prefix('$').is_some_and(|name| {
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Whether a route is public: the discovery documents.
fn is_public(route: &str) -> bool {
    matches!(
        route,
        "/fhir/metadata" | "/fhir/.well-known/smart-configuration"
    )
}

/// The guard (module doc of `security`).
pub(crate) async fn guard(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(security) = state.security.clone() else {
        return next.run(request).await;
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_default();
    if is_public(&route) {
        return next.run(request).await;
    }
    let target = Target::of(
        request.method(),
        &route,
        request.uri().path(),
        request.uri().query(),
    );
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        });
    if bearer.is_none() || !bearer.as_deref().is_some_and(looks_like_a_token) {
        // Requests without a credential share one bucket, so that they cannot flood the audit
        // trail (each refusal is recorded) or crowd out authenticated clients.
        if let Err(retry_after) = security.limiter.check(ANONYMOUS, Instant::now()) {
            return ApiError::TooManyRequests { retry_after }.into_response();
        }
    }
    let caller = match bearer {
        None => {
            return refuse(&security, &target, None, ApiError::Unauthenticated).await;
        }
        Some(token) => match verify(&security, &token).await {
            Ok(caller) => caller,
            Err(error) if error.is_unavailable() => {
                return ApiError::App(app::AppError::Unavailable(store::StoreError::Unavailable(
                    "the registry could not be read".into(),
                )))
                .into_response();
            }
            Err(error) => {
                let refusal = ApiError::TokenRefused {
                    reason: error.reason(),
                    www_authenticate: error.www_authenticate(),
                };
                return refuse(&security, &target, None, refusal).await;
            }
        },
    };
    if let Err(retry_after) = security.limiter.check(&caller.limit_key(), Instant::now()) {
        // The client id of a facility system, never a patient's account.
        match &caller {
            Caller::Member(principal) => {
                tracing::warn!(client = principal.client_id.as_str(), "rate limit exceeded")
            }
            Caller::Patient { .. } => tracing::warn!("rate limit exceeded by a patient account"),
        }
        return ApiError::TooManyRequests { retry_after }.into_response();
    }
    if let Err(refusal) = check_scopes(&caller, &target) {
        return refuse(&security, &target, Some(&caller), refusal).await;
    }
    let app = state.app.for_viewer(caller.viewer());
    request.extensions_mut().insert(RequestApp(app.clone()));
    request.extensions_mut().insert(caller.clone());
    let response = next.run(request).await;
    let accesses = app.accesses();
    let status = response.status().as_u16();
    let records = records(&caller, &target, &accesses, status);
    if security.record(records).await.is_err() {
        return ApiError::AuditUnavailable.into_response();
    }
    if let Caller::Member(principal) = &caller {
        let read: Vec<&str> = accesses
            .patients
            .iter()
            .filter(|(_, permitted)| *permitted)
            .map(|(patient, _)| patient.as_str())
            .collect();
        let user = format!(
            "{}/{}",
            principal.organisation.id().as_str(),
            principal.user.id
        );
        if let Some(count) = security.watch.observe(&user, read, Instant::now()) {
            security.alerts.raise(&super::Alert::UnusualAccess {
                organisation: principal.organisation.id().as_str().to_owned(),
                user: principal.user.id.clone(),
                patients: count,
                window_seconds: security.settings.unusual_window.as_secs(),
            });
        }
    }
    response
}

/// The rate-limit key of requests without a usable credential.
pub(crate) const ANONYMOUS: &str = "anonymous";

/// Whether a bearer value has the shape of a compact JWS (three base64url parts).
fn looks_like_a_token(value: &str) -> bool {
    value.len() <= 16 * 1024
        && value.split('.').count() == 3
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The façade a request's handlers answer with (put there by the guard).
#[derive(Debug, Clone)]
pub(crate) struct RequestApp(pub app::App);

async fn verify(security: &Security, token: &str) -> Result<Caller, auth::AuthError> {
    Ok(
        match security
            .tokens
            .verify_bearer(token, SystemTime::now())
            .await?
        {
            auth::Bearer::Member(principal) => Caller::Member(Box::new(principal)),
            auth::Bearer::Patient(principal) => Caller::Patient {
                account: principal.account_id.as_str().to_owned(),
                patient: principal.patient,
            },
        },
    )
}

/// The scopes the interaction needs, against the token's. Patients hold no scopes: their
/// compartment bounds them, and they may read and search it and write consents only.
fn check_scopes(caller: &Caller, target: &Target) -> Result<(), ApiError> {
    match caller {
        Caller::Member(principal) => {
            for (resource_type, permission) in &target.needs {
                if !principal.scopes.allows(resource_type, *permission) {
                    return Err(ApiError::App(app::AppError::Denied(format!(
                        "the access token does not allow this interaction on {}",
                        if resource_type == "*" {
                            "every type (name the types with _type)"
                        } else {
                            resource_type.as_str()
                        }
                    ))));
                }
            }
            Ok(())
        }
        Caller::Patient { .. } => {
            let writes_consent = target.resource_type.as_deref() == Some("Consent")
                && matches!(
                    target.interaction,
                    audit::Interaction::Create | audit::Interaction::Delete
                );
            let reads = target
                .needs
                .iter()
                .all(|(_, permission)| matches!(permission, Permission::Read | Permission::Search));
            if writes_consent
                || (reads && target.interaction != audit::Interaction::Operation)
                || target.operation.as_deref().is_some_and(|op| {
                    matches!(op, "$summary" | "$everything" | "$emergency-summary")
                })
                || target.interaction == audit::Interaction::Batch
            {
                Ok(())
            } else {
                Err(ApiError::App(app::AppError::Denied(
                    "patients read their own record and write consents only".into(),
                )))
            }
        }
    }
}

/// A refusal before the handler ran, recorded like every other answer.
async fn refuse(
    security: &Arc<Security>,
    target: &Target,
    caller: Option<&Caller>,
    refusal: ApiError,
) -> Response {
    let response = refusal.into_response();
    let (agent, purpose) = match caller {
        Some(caller) => caller.agent(),
        None => (anonymous(), audit::PurposeOfUse::Treatment),
    };
    let record = record(
        agent,
        purpose,
        target,
        target.url_patient(),
        audit::Decision::Denied,
        response.status().as_u16(),
        false,
    );
    if security.record(vec![record]).await.is_err() {
        return ApiError::AuditUnavailable.into_response();
    }
    response
}

/// The audit entries of an answered request: one per patient touched, or one for the request.
fn records(
    caller: &Caller,
    target: &Target,
    accesses: &app::Accesses,
    status: u16,
) -> Vec<audit::AuditRecord> {
    let (agent, purpose) = caller.agent();
    let refused = matches!(status, 401 | 403 | 429);
    if accesses.patients.is_empty() {
        let decision = if refused {
            audit::Decision::Denied
        } else {
            audit::Decision::Permitted
        };
        return vec![record(
            agent,
            purpose,
            target,
            target.url_patient(),
            decision,
            status,
            accesses.emergency,
        )];
    }
    accesses
        .patients
        .iter()
        .map(|(patient, permitted)| {
            let decision = if *permitted && !refused {
                audit::Decision::Permitted
            } else {
                audit::Decision::Denied
            };
            record(
                agent.clone(),
                purpose,
                target,
                Some(patient.clone()),
                decision,
                status,
                accesses.emergency,
            )
        })
        .collect()
}

fn record(
    agent: audit::Agent,
    purpose_of_use: audit::PurposeOfUse,
    target: &Target,
    patient: Option<String>,
    decision: audit::Decision,
    http_status: u16,
    emergency: bool,
) -> audit::AuditRecord {
    audit::AuditRecord {
        recorded: audit::UtcTime::now(),
        request_id: crate::middleware::current_request_id(),
        agent,
        purpose_of_use,
        patient,
        action: audit::Action {
            interaction: target.interaction,
            operation: target.operation.clone(),
            resource_type: target.resource_type.clone(),
            resource_id: target.resource_id.clone(),
            query: target.query.clone(),
        },
        outcome: audit::Outcome {
            decision,
            http_status,
        },
        emergency,
    }
}
