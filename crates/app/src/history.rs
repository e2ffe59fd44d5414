//! History use cases: instance, type and system history, newest first, paged by cursor.

use fhir::IssueCode;
use store::{HistoryEntry, HistoryQuery, HistoryScope, PageCursor};

use crate::resources::check_type;
use crate::{App, AppError};

/// A history request as received: `_count`, `_since`, `_at`, `_cursor`, `_total`.
#[derive(Debug, Clone)]
pub struct HistoryRequest {
    pub scope: HistoryScope,
    pub params: Vec<(String, String)>,
}

/// One page of history with the parameters to repeat in paging links.
#[derive(Debug, Clone)]
pub struct HistoryOutcome {
    pub entries: Vec<HistoryEntry>,
    pub next: Option<PageCursor>,
    pub total: Option<u64>,
    /// `_since`/`_at`/`_count`/`_total` as given, for the `self` and `next` links.
    pub canonical: Vec<(String, String)>,
}

impl App {
    /// Lists history.
    ///
    /// # Errors
    /// `Invalid` for malformed parameters, `NotFound` for the history of an instance that never
    /// existed, `Unavailable`.
    pub async fn history(&self, request: &HistoryRequest) -> Result<HistoryOutcome, AppError> {
        match &request.scope {
            HistoryScope::System => {}
            HistoryScope::Type(resource_type) => check_type(resource_type)?,
            HistoryScope::Instance { resource_type, .. } => check_type(resource_type)?,
        }
        let mut query = HistoryQuery {
            scope: request.scope.clone(),
            since: None,
            before: None,
            count: self.settings.default_count,
            cursor: None,
            with_total: false,
        };
        let mut canonical = Vec::new();
        for (name, value) in &request.params {
            match name.as_str() {
                "_count" => {
                    let count: u32 = value
                        .parse()
                        .map_err(|_| bad_param("_count", "must be a non-negative integer"))?;
                    query.count = count.min(self.settings.max_count);
                    canonical.push((name.clone(), value.clone()));
                }
                "_since" => {
                    let range = ::search::parse_date_range(value)
                        .ok_or_else(|| bad_param("_since", "must be an instant"))?;
                    query.since = Some(store::Timestamp(range.low));
                    canonical.push((name.clone(), value.clone()));
                }
                "_at" => {
                    let range = ::search::parse_date_range(value)
                        .ok_or_else(|| bad_param("_at", "must be a date or instant"))?;
                    query.before = Some(store::Timestamp(range.high.saturating_add(1)));
                    canonical.push((name.clone(), value.clone()));
                }
                "_total" => {
                    query.with_total = value == "accurate" || value == "estimate";
                    canonical.push((name.clone(), value.clone()));
                }
                "_cursor" => query.cursor = Some(PageCursor(value.clone())),
                "_format" | "_pretty" => {}
                other => {
                    return Err(bad_param(other, "is not a history parameter"));
                }
            }
        }
        let page = self.store.history(&query).await?;
        if page.entries.is_empty()
            && query.cursor.is_none()
            && query.since.is_none()
            && query.before.is_none()
            && let HistoryScope::Instance { .. } = &request.scope
        {
            return Err(AppError::NotFound);
        }
        // Each version as it was: a version that carried a flag stays hidden with it.
        let mut entries = Vec::with_capacity(page.entries.len());
        for entry in page.entries {
            if entry.resource.deleted || self.permits(&entry.resource).await? {
                entries.push(entry);
            }
        }
        if entries.iter().all(|entry| entry.resource.deleted)
            && query.cursor.is_none()
            && let HistoryScope::Instance { .. } = &request.scope
        {
            // Nothing of it may be shown: as if it never existed.
            return Err(AppError::NotFound);
        }
        Ok(HistoryOutcome {
            entries,
            next: page.next,
            total: page.total,
            canonical,
        })
    }
}

fn bad_param(name: &str, message: &str) -> AppError {
    AppError::invalid(
        IssueCode::Invalid,
        Some(name.to_owned()),
        format!("{name} {message}"),
    )
}
