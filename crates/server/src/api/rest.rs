//! Handlers of the FHIR RESTful interactions. Each one turns HTTP into an `app` call and the result
//! back into HTTP; none of them decides anything about FHIR content.

use app::{
    HistoryRequest, HistoryScope, Preconditions, SearchInput, StoredResource, Summary, WriteResult,
};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fhir::{Issue, IssueCode};
use serde_json::Value;

use super::render;
use super::{FhirBody, FhirContext, ReturnPreference, fhir_json};
use crate::{ApiError, AppState};

type ApiResult = Result<Response, ApiError>;

/// Parameters that shape the response and never select resources.
const FORMAT_PARAMS: [&str; 2] = ["_format", "_pretty"];

pub(crate) async fn metadata(State(state): State<AppState>, _context: FhirContext) -> ApiResult {
    Ok(fhir_json(StatusCode::OK, state.capability.to_string()))
}

pub(crate) async fn search_system(
    State(state): State<AppState>,
    context: FhirContext,
) -> ApiResult {
    let input = SearchInput {
        types: Vec::new(),
        compartment: None,
        params: context.params.clone(),
        strict: context.strict,
    };
    let outcome = context.app(&state).search(&input).await?;
    Ok(fhir_json(
        StatusCode::OK,
        render::searchset(&context.base, &context.base, &outcome),
    ))
}

pub(crate) async fn search_type(
    State(state): State<AppState>,
    Path(resource_type): Path<String>,
    context: FhirContext,
) -> ApiResult {
    search(&state, &context, resource_type, context.params.clone()).await
}

pub(crate) async fn search_type_post(
    State(state): State<AppState>,
    Path(resource_type): Path<String>,
    context: FhirContext,
    body: FhirBody,
) -> ApiResult {
    let FhirBody::Form(form) = body else {
        return Err(ApiError::UnsupportedMediaType);
    };
    let mut params = context.params.clone();
    params.extend(form);
    search(&state, &context, resource_type, params).await
}

async fn search(
    state: &AppState,
    context: &FhirContext,
    resource_type: String,
    params: Vec<(String, String)>,
) -> ApiResult {
    if resource_type == "AuditEvent"
        && let Some(security) = &state.security
    {
        // Access history comes from the tamper-evident log, not from the store.
        return crate::security::access_history(security, context).await;
    }
    let link_base = format!("{}/{resource_type}", context.base);
    let input = SearchInput {
        types: vec![resource_type],
        compartment: None,
        params,
        strict: context.strict,
    };
    let outcome = context.app(state).search(&input).await?;
    Ok(fhir_json(
        StatusCode::OK,
        render::searchset(&context.base, &link_base, &outcome),
    ))
}

/// `POST Patient/[id]/$emergency-access`.
pub(crate) async fn operation_post(
    State(state): State<AppState>,
    Path((compartment_type, id, operation)): Path<(String, String, String)>,
    context: FhirContext,
    body: FhirBody,
) -> ApiResult {
    if compartment_type != "Patient" || operation != "$emergency-access" {
        return Err(ApiError::RouteNotFound);
    }
    crate::security::emergency_access(&state, &context, &id, body).await
}

/// `GET Patient/[id]/*`, `GET Patient/[id]/[type]` and `GET Patient/[id]/$everything`.
pub(crate) async fn compartment(
    State(state): State<AppState>,
    Path((compartment_type, id, target)): Path<(String, String, String)>,
    context: FhirContext,
) -> ApiResult {
    if compartment_type != "Patient" {
        return Err(ApiError::RouteNotFound);
    }
    let summary = match target.as_str() {
        "$summary" => Some(app::SummaryKind::Patient),
        "$emergency-summary" => Some(app::SummaryKind::Emergency),
        _ => None,
    };
    if let Some(kind) = summary {
        let document = context
            .app(&state)
            .summary_json(kind, &id, &context.base, app::now())
            .await?;
        return Ok(fhir_json(StatusCode::OK, document));
    }
    let types = match target.as_str() {
        "$everything" | "*" => Vec::new(),
        resource_type if resource_type.starts_with('$') => return Err(ApiError::RouteNotFound),
        resource_type => vec![resource_type.to_owned()],
    };
    let mut params = context.params.clone();
    if target == "$everything" {
        // The patient must exist; $everything of nobody is a 404, not an empty Bundle.
        context.app(&state).read("Patient", &id).await?;
        params.retain(|(name, _)| {
            matches!(
                name.as_str(),
                "_count"
                    | "_cursor"
                    | "_type"
                    | "_total"
                    | "_format"
                    | "_pretty"
                    | "_since"
                    | "_elements"
                    | "_summary"
            )
        });
        if let Some(position) = params.iter().position(|(name, _)| name == "_since") {
            let (_, since) = params.remove(position);
            params.push(("_lastUpdated".into(), format!("ge{since}")));
        }
    }
    let link_base = format!("{}/Patient/{id}/{target}", context.base);
    let input = SearchInput {
        types,
        compartment: Some(id),
        params,
        strict: context.strict,
    };
    let outcome = context.app(&state).search(&input).await?;
    Ok(fhir_json(
        StatusCode::OK,
        render::searchset(&context.base, &link_base, &outcome),
    ))
}

pub(crate) async fn history_system(
    State(state): State<AppState>,
    context: FhirContext,
) -> ApiResult {
    history(
        &state,
        &context,
        HistoryScope::System,
        context.base.clone() + "/_history",
    )
    .await
}

pub(crate) async fn history_type(
    State(state): State<AppState>,
    Path(resource_type): Path<String>,
    context: FhirContext,
) -> ApiResult {
    let link_base = format!("{}/{resource_type}/_history", context.base);
    history(
        &state,
        &context,
        HistoryScope::Type(resource_type),
        link_base,
    )
    .await
}

pub(crate) async fn history_instance(
    State(state): State<AppState>,
    Path((resource_type, id)): Path<(String, String)>,
    context: FhirContext,
) -> ApiResult {
    let link_base = format!("{}/{resource_type}/{id}/_history", context.base);
    history(
        &state,
        &context,
        HistoryScope::Instance { resource_type, id },
        link_base,
    )
    .await
}

async fn history(
    state: &AppState,
    context: &FhirContext,
    scope: HistoryScope,
    link_base: String,
) -> ApiResult {
    let request = HistoryRequest {
        scope,
        params: context.params.clone(),
    };
    let outcome = context.app(state).history(&request).await?;
    let count = outcome
        .canonical
        .iter()
        .find(|(name, _)| name == "_count")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(state.app.settings().default_count);
    let canonical_without_count = app::HistoryOutcome {
        canonical: outcome
            .canonical
            .iter()
            .filter(|(name, _)| name != "_count")
            .cloned()
            .collect(),
        ..outcome
    };
    Ok(fhir_json(
        StatusCode::OK,
        render::history(&context.base, &link_base, &canonical_without_count, count),
    ))
}

pub(crate) async fn read(
    State(state): State<AppState>,
    Path((resource_type, id)): Path<(String, String)>,
    headers: HeaderMap,
    context: FhirContext,
) -> ApiResult {
    let resource = context.app(&state).read(&resource_type, &id).await?;
    if let Some(tag) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        && app::parse_etag(tag) == Some(resource.version)
    {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        set_version_headers(&mut response, &resource);
        return Ok(response);
    }
    let summary = context
        .params
        .iter()
        .find(|(name, _)| name == "_summary")
        .map(|(_, value)| parse_summary(value))
        .transpose()?;
    let elements: Option<Vec<String>> = context
        .params
        .iter()
        .find(|(name, _)| name == "_elements")
        .map(|(_, value)| {
            value
                .split(',')
                .map(|element| element.trim().to_owned())
                .filter(|e| !e.is_empty())
                .collect()
        });
    let body = render::resource_text(&resource, summary.as_ref(), elements.as_deref());
    let mut response = fhir_json(StatusCode::OK, body);
    set_version_headers(&mut response, &resource);
    Ok(response)
}

pub(crate) async fn vread(
    State(state): State<AppState>,
    Path((resource_type, id, version)): Path<(String, String, String)>,
    context: FhirContext,
) -> ApiResult {
    let version: u64 = version
        .parse()
        .map_err(|_| ApiError::App(app::AppError::NotFound))?;
    let resource = context
        .app(&state)
        .vread(&resource_type, &id, version)
        .await?;
    let mut response = fhir_json(StatusCode::OK, resource.json.clone());
    set_version_headers(&mut response, &resource);
    Ok(response)
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Path(resource_type): Path<String>,
    headers: HeaderMap,
    context: FhirContext,
    body: FhirBody,
) -> ApiResult {
    let body = body.into_resource()?;
    if resource_type == "Consent"
        && matches!(
            context.viewer,
            app::Viewer::Patient(_) | app::Viewer::Member(_)
        )
    {
        return crate::security::consent_create(&state, &context, &headers, body).await;
    }
    // `If-None-Exist`, or the query of `POST [type]?params` as some clients send it.
    let condition: Option<Vec<(String, String)>> = match headers
        .get("if-none-exist")
        .and_then(|value| value.to_str().ok())
    {
        Some(query) => Some(
            form_urlencoded::parse(query.trim_start_matches('?').as_bytes())
                .into_owned()
                .collect(),
        ),
        None => {
            let selecting: Vec<_> = selecting_params(&context.params);
            (!selecting.is_empty()).then_some(selecting)
        }
    };
    let result = context
        .app(&state)
        .create(&resource_type, body, condition.as_deref())
        .await?;
    Ok(written(&context, result))
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Path((resource_type, id)): Path<(String, String)>,
    headers: HeaderMap,
    context: FhirContext,
    body: FhirBody,
) -> ApiResult {
    let body = body.into_resource()?;
    let preconditions = preconditions(&headers)?;
    let result = context
        .app(&state)
        .update(&resource_type, &id, body, &preconditions)
        .await?;
    Ok(written(&context, result))
}

pub(crate) async fn conditional_update(
    State(state): State<AppState>,
    Path(resource_type): Path<String>,
    headers: HeaderMap,
    context: FhirContext,
    body: FhirBody,
) -> ApiResult {
    let body = body.into_resource()?;
    let preconditions = preconditions(&headers)?;
    let params = selecting_params(&context.params);
    let result = context
        .app(&state)
        .conditional_update(&resource_type, &params, body, &preconditions)
        .await?;
    Ok(written(&context, result))
}

pub(crate) async fn patch(
    State(state): State<AppState>,
    Path((resource_type, id)): Path<(String, String)>,
    headers: HeaderMap,
    context: FhirContext,
    body: FhirBody,
) -> ApiResult {
    let FhirBody::JsonPatch(patch) = body else {
        return Err(ApiError::UnsupportedMediaType);
    };
    let preconditions = preconditions(&headers)?;
    let result = context
        .app(&state)
        .patch(&resource_type, &id, &patch, &preconditions)
        .await?;
    Ok(written(&context, result))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path((resource_type, id)): Path<(String, String)>,
    headers: HeaderMap,
    context: FhirContext,
) -> ApiResult {
    if resource_type == "Consent" && matches!(context.viewer, app::Viewer::Patient(_)) {
        // A patient revokes their consent: kept, inactive, effective on the next request.
        context.app(&state).revoke_own_consent(&id).await?;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let preconditions = preconditions(&headers)?;
    let version = context
        .app(&state)
        .delete(&resource_type, &id, &preconditions)
        .await?;
    Ok(deleted(version))
}

pub(crate) async fn conditional_delete(
    State(state): State<AppState>,
    Path(resource_type): Path<String>,
    context: FhirContext,
) -> ApiResult {
    let params = selecting_params(&context.params);
    let version = context
        .app(&state)
        .conditional_delete(&resource_type, &params)
        .await?;
    Ok(deleted(version))
}

/// `POST /fhir` with a transaction or batch Bundle.
pub(crate) async fn bundle(
    State(state): State<AppState>,
    context: FhirContext,
    body: FhirBody,
) -> ApiResult {
    let bundle = body.into_resource()?;
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(ApiError::App(app::AppError::invalid(
            IssueCode::Invalid,
            Some("resourceType".into()),
            "only a transaction or batch Bundle can be posted to the base URL",
        )));
    }
    if let Some(scopes) = &context.scopes {
        check_entry_scopes(scopes, &bundle)?;
    }
    let outcome = context.app(&state).process_bundle(bundle).await?;
    let minimal = context.prefer_return == ReturnPreference::Minimal;
    Ok(fhir_json(
        StatusCode::OK,
        render::bundle_response(&context.base, outcome, minimal),
    ))
}

/// Each entry of a Bundle against the token's scopes, by its own type and method (a read needs
/// `r`, a search `s`, a write `c`/`u`/`d`).
fn check_entry_scopes(scopes: &auth::Scopes, bundle: &Value) -> Result<(), ApiError> {
    use auth::Permission;
    let entries = bundle.get("entry").and_then(Value::as_array);
    for entry in entries.into_iter().flatten() {
        let method = entry
            .pointer("/request/method")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let url = entry
            .pointer("/request/url")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let path = url.split_once('?').map_or(url, |(path, _)| path);
        let mut segments = path.trim_start_matches('/').split('/');
        let resource_type = segments.next().unwrap_or_default();
        let has_id = segments.next().is_some_and(|id| !id.is_empty());
        let permission = match method {
            "GET" | "HEAD" if has_id => Permission::Read,
            "GET" | "HEAD" => Permission::Search,
            "POST" => Permission::Create,
            "PUT" | "PATCH" => Permission::Update,
            "DELETE" => Permission::Delete,
            _ => continue,
        };
        if !scopes.allows(resource_type, permission) {
            return Err(ApiError::App(app::AppError::Denied(format!(
                "the access token does not allow an entry's interaction on {}",
                if resource_type.is_empty() {
                    "this URL"
                } else {
                    resource_type
                }
            ))));
        }
    }
    Ok(())
}

/// The query parameters that select resources (not those that only format the response).
fn selecting_params(params: &[(String, String)]) -> Vec<(String, String)> {
    params
        .iter()
        .filter(|(name, _)| !FORMAT_PARAMS.contains(&name.as_str()))
        .cloned()
        .collect()
}

fn parse_summary(value: &str) -> Result<Summary, ApiError> {
    match value {
        "true" => Ok(Summary::True),
        "text" => Ok(Summary::Text),
        "data" => Ok(Summary::Data),
        "false" => Ok(Summary::False),
        "count" => Ok(Summary::Count),
        _ => Err(ApiError::BadRequest(
            "_summary must be one of true, text, data, count, false".into(),
        )),
    }
}

/// Reads `If-Match`.
fn preconditions(headers: &HeaderMap) -> Result<Preconditions, ApiError> {
    let if_match =
        match headers.get(header::IF_MATCH) {
            Some(value) => Some(value.to_str().ok().and_then(app::parse_etag).ok_or_else(
                || ApiError::BadRequest("If-Match must be a version ETag such as W/\"3\"".into()),
            )?),
            None => None,
        };
    Ok(Preconditions { if_match })
}

/// The response to a create or update, shaped by `Prefer: return`.
fn written(context: &FhirContext, result: WriteResult) -> Response {
    let resource = &result.resource;
    let status = if result.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = match context.prefer_return {
        ReturnPreference::Representation => fhir_json(status, resource.json.clone()),
        ReturnPreference::Minimal => status.into_response(),
        ReturnPreference::OperationOutcome => {
            let message = if result.created {
                "the resource was created"
            } else {
                "the resource was updated"
            };
            let issue = Issue {
                severity: fhir::Severity::Information,
                code: IssueCode::Informational,
                expression: None,
                diagnostics: message.into(),
            };
            fhir_json(status, fhir::operation_outcome(&[issue]).to_string())
        }
    };
    set_version_headers(&mut response, resource);
    let location = format!(
        "{}/{}/{}/_history/{}",
        context.base, resource.resource_type, resource.id, resource.version
    );
    if let Ok(value) = HeaderValue::from_str(&location) {
        response
            .headers_mut()
            .insert(header::LOCATION, value.clone());
        response
            .headers_mut()
            .insert(header::CONTENT_LOCATION, value);
    }
    response
}

fn deleted(version: Option<u64>) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Some(version) = version
        && let Ok(value) = HeaderValue::from_str(&format!("W/\"{version}\""))
    {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

fn set_version_headers(response: &mut Response, resource: &StoredResource) {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&format!("W/\"{}\"", resource.version)) {
        headers.insert(header::ETAG, value);
    }
    if let Ok(value) = HeaderValue::from_str(&resource.last_updated.to_http_date()) {
        headers.insert(header::LAST_MODIFIED, value);
    }
}
