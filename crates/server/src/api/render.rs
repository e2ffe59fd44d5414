//! Renders Bundles (searchset, history, transaction-response, batch-response) as JSON text. Stored
//! resources are spliced in as the exact text the store holds, so a page of results is not parsed
//! and re-serialised unless `_summary` or `_elements` asks for a subset.

use app::{
    BundleEntryResult, BundleKind, BundleOutcome, HistoryMethod, HistoryOutcome, SearchOutcome,
    StoredResource, Summary,
};
use fhir::{Issue, IssueCode, SummaryMode};

use crate::ApiError;

/// Appends `text` as a JSON string literal.
fn push_str_literal(out: &mut String, text: &str) {
    // Serialising a &str cannot fail.
    out.push_str(&serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned()));
}

/// Starts a Bundle of `kind` with a fresh id and the current time.
fn open_bundle(out: &mut String, kind: &str) {
    out.push_str("{\"resourceType\":\"Bundle\",\"id\":\"");
    out.push_str(&uuid::Uuid::new_v4().to_string());
    out.push_str("\",\"meta\":{\"lastUpdated\":\"");
    out.push_str(&store_now().to_fhir_instant());
    out.push_str("\"},\"type\":\"");
    out.push_str(kind);
    out.push('"');
}

fn store_now() -> app::Timestamp {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    app::Timestamp(i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX))
}

/// Appends `"link":[...]`.
fn push_links(out: &mut String, links: &[(&str, String)]) {
    out.push_str(",\"link\":[");
    for (index, (relation, url)) in links.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        out.push_str("{\"relation\":\"");
        out.push_str(relation);
        out.push_str("\",\"url\":");
        push_str_literal(out, url);
        out.push('}');
    }
    out.push(']');
}

/// The resource text to embed, reduced by `_summary`/`_elements` when asked.
pub(crate) fn resource_text(
    resource: &StoredResource,
    summary: Option<&Summary>,
    elements: Option<&[String]>,
) -> String {
    let mode = match summary {
        Some(Summary::True) => Some(SummaryMode::True),
        Some(Summary::Text) => Some(SummaryMode::Text),
        Some(Summary::Data) => Some(SummaryMode::Data),
        Some(Summary::Count | Summary::False) | None => None,
    };
    if mode.is_none() && elements.is_none() {
        return resource.json.clone();
    }
    let Ok(value) = fhir::parse_json(resource.json.as_bytes()) else {
        return resource.json.clone();
    };
    let value = match (mode, elements) {
        (Some(mode), _) => fhir::summarize(&value, mode),
        (None, Some(elements)) => fhir::select_elements(&value, elements),
        (None, None) => value,
    };
    value.to_string()
}

fn full_url(base: &str, resource: &StoredResource) -> String {
    format!("{base}/{}/{}", resource.resource_type, resource.id)
}

/// Builds a link URL: `link_base` plus the canonical parameters, the page size and the cursor.
fn page_url(
    link_base: &str,
    canonical: &[(String, String)],
    count: u32,
    cursor: Option<&str>,
) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in canonical {
        query.append_pair(name, value);
    }
    query.append_pair("_count", &count.to_string());
    if let Some(cursor) = cursor {
        query.append_pair("_cursor", cursor);
    }
    format!("{link_base}?{}", query.finish())
}

/// A searchset Bundle. `link_base` is the URL searched without its query (`{base}/Observation`).
pub(crate) fn searchset(base: &str, link_base: &str, outcome: &SearchOutcome) -> String {
    let parsed = &outcome.parsed;
    let page = &outcome.page;
    let count = parsed.query.count;
    let mut out = String::with_capacity(
        256 + page
            .matches
            .iter()
            .map(|r| r.json.len() + 128)
            .sum::<usize>(),
    );
    open_bundle(&mut out, "searchset");
    if let Some(total) = page.total {
        out.push_str(",\"total\":");
        out.push_str(&total.to_string());
    }
    let current = parsed.query.cursor.as_ref().map(|cursor| cursor.0.as_str());
    let mut links = vec![(
        "self",
        page_url(link_base, &parsed.canonical, count, current),
    )];
    if let Some(next) = &page.next {
        links.push((
            "next",
            page_url(link_base, &parsed.canonical, count, Some(&next.0)),
        ));
    }
    if let Some(previous) = &page.previous {
        links.push((
            "previous",
            page_url(link_base, &parsed.canonical, count, Some(&previous.0)),
        ));
    }
    push_links(&mut out, &links);
    out.push_str(",\"entry\":[");
    let mut first = true;
    let summary = parsed.summary.as_ref();
    let elements = parsed.elements.as_deref();
    for (resources, mode) in [(&page.matches, "match"), (&page.included, "include")] {
        for resource in resources.iter() {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str("{\"fullUrl\":");
            push_str_literal(&mut out, &full_url(base, resource));
            out.push_str(",\"resource\":");
            out.push_str(&resource_text(
                resource,
                summary,
                if mode == "match" { elements } else { None },
            ));
            out.push_str(",\"search\":{\"mode\":\"");
            out.push_str(mode);
            out.push_str("\"}}");
        }
    }
    if !parsed.warnings.is_empty() {
        if !first {
            out.push(',');
        }
        let issues: Vec<Issue> = parsed
            .warnings
            .iter()
            .map(|warning| {
                Issue::warning(
                    IssueCode::NotSupported,
                    Some(warning.param.clone()),
                    warning.message.clone(),
                )
            })
            .collect();
        out.push_str("{\"resource\":");
        out.push_str(&fhir::operation_outcome(&issues).to_string());
        out.push_str(",\"search\":{\"mode\":\"outcome\"}}");
    }
    out.push_str("]}");
    out
}

/// A history Bundle.
pub(crate) fn history(base: &str, link_base: &str, outcome: &HistoryOutcome, count: u32) -> String {
    let mut out = String::with_capacity(
        256 + outcome
            .entries
            .iter()
            .map(|e| e.resource.json.len() + 192)
            .sum::<usize>(),
    );
    open_bundle(&mut out, "history");
    if let Some(total) = outcome.total {
        out.push_str(",\"total\":");
        out.push_str(&total.to_string());
    }
    let mut links = vec![("self", page_url(link_base, &outcome.canonical, count, None))];
    if let Some(next) = &outcome.next {
        links.push((
            "next",
            page_url(link_base, &outcome.canonical, count, Some(&next.0)),
        ));
    }
    push_links(&mut out, &links);
    out.push_str(",\"entry\":[");
    for (index, entry) in outcome.entries.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        let resource = &entry.resource;
        out.push_str("{\"fullUrl\":");
        push_str_literal(&mut out, &full_url(base, resource));
        if !resource.deleted {
            out.push_str(",\"resource\":");
            out.push_str(&resource.json);
        }
        let (method, url, status) = match entry.method {
            HistoryMethod::Create => ("POST", resource.resource_type.clone(), "201 Created"),
            HistoryMethod::Update => (
                "PUT",
                format!("{}/{}", resource.resource_type, resource.id),
                "200 OK",
            ),
            HistoryMethod::Delete => (
                "DELETE",
                format!("{}/{}", resource.resource_type, resource.id),
                "204 No Content",
            ),
        };
        out.push_str(",\"request\":{\"method\":\"");
        out.push_str(method);
        out.push_str("\",\"url\":");
        push_str_literal(&mut out, &url);
        out.push_str("},\"response\":{\"status\":\"");
        out.push_str(status);
        out.push_str("\",\"etag\":\"W/\\\"");
        out.push_str(&resource.version.to_string());
        out.push_str("\\\"\",\"lastModified\":\"");
        out.push_str(&resource.last_updated.to_fhir_instant());
        out.push_str("\"}}");
    }
    out.push_str("]}");
    out
}

/// A transaction-response or batch-response Bundle.
pub(crate) fn bundle_response(base: &str, outcome: BundleOutcome, minimal: bool) -> String {
    let kind = match outcome.kind {
        BundleKind::Transaction => "transaction-response",
        BundleKind::Batch => "batch-response",
    };
    let mut out = String::new();
    open_bundle(&mut out, kind);
    out.push_str(",\"entry\":[");
    for (index, entry) in outcome.entries.into_iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        out.push('{');
        match entry {
            BundleEntryResult::Written(written) => {
                let resource = &written.resource;
                out.push_str("\"fullUrl\":");
                push_str_literal(&mut out, &full_url(base, resource));
                if !minimal {
                    out.push_str(",\"resource\":");
                    out.push_str(&resource.json);
                }
                out.push_str(",\"response\":{\"status\":\"");
                out.push_str(if written.created {
                    "201 Created"
                } else {
                    "200 OK"
                });
                out.push_str("\",\"location\":");
                push_str_literal(
                    &mut out,
                    &format!(
                        "{}/{}/{}/_history/{}",
                        base, resource.resource_type, resource.id, resource.version
                    ),
                );
                out.push_str(",\"etag\":\"W/\\\"");
                out.push_str(&resource.version.to_string());
                out.push_str("\\\"\",\"lastModified\":\"");
                out.push_str(&resource.last_updated.to_fhir_instant());
                out.push_str("\"}");
            }
            BundleEntryResult::Deleted(version) => {
                out.push_str("\"response\":{\"status\":\"");
                out.push_str(if version.is_some() {
                    "204 No Content"
                } else {
                    "200 OK"
                });
                out.push('"');
                if let Some(version) = version {
                    out.push_str(",\"etag\":\"W/\\\"");
                    out.push_str(&version.to_string());
                    out.push_str("\\\"\"");
                }
                out.push('}');
            }
            BundleEntryResult::Read(resource) => {
                out.push_str("\"fullUrl\":");
                push_str_literal(&mut out, &full_url(base, &resource));
                out.push_str(",\"resource\":");
                out.push_str(&resource.json);
                out.push_str(",\"response\":{\"status\":\"200 OK\",\"etag\":\"W/\\\"");
                out.push_str(&resource.version.to_string());
                out.push_str("\\\"\"}");
            }
            BundleEntryResult::Searched(search) => {
                let types = search.parsed.query.types.join(",");
                out.push_str("\"resource\":");
                out.push_str(&searchset(base, &format!("{base}/{types}"), &search));
                out.push_str(",\"response\":{\"status\":\"200 OK\"}");
            }
            BundleEntryResult::Failed(error) => {
                let (status, outcome) = ApiError::from(error).status_and_outcome();
                out.push_str("\"response\":{\"status\":");
                push_str_literal(&mut out, &status.as_u16().to_string());
                out.push_str(",\"outcome\":");
                out.push_str(&outcome);
                out.push('}');
            }
        }
        out.push('}');
    }
    out.push_str("]}");
    out
}
