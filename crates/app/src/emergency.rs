//! Emergency access (救急時医療情報閲覧): a hospital user holding the emergency privilege, stating a
//! reason, opens a time-boxed window ([`EMERGENCY_WINDOW_MINUTES`]) on one patient's
//! `$emergency-summary` only, without the patient's consent.
//!
//! Each opening is recorded as a FHIR `Task` (code `emergency-access-review`, status `requested`,
//! `for` the patient, `requester` the organisation and user, `executionPeriod` the window, the
//! reason as `reasonCode.text`): the window is decided from it, the patient's access history shows
//! it, and it stays open for the privacy officer's review until closed (status `completed`,
//! `tsunagu review close`). The alert raised for the privacy officer (a warning in the log, the
//! list of open reviews) carries no patient data: the review's id, organisation, user and time.

use serde_json::{Value, json};
use store::{Condition, SearchQuery, StoredResource, Timestamp, TokenSystem, ValueTest};

use crate::consent::{Member, OrganisationKind, period_covers, token_is};
use crate::{App, AppError, Viewer};

/// How long an emergency window stays open.
pub const EMERGENCY_WINDOW_MINUTES: i64 = 30;
/// The Task code of an emergency access awaiting review.
pub const REVIEW_SYSTEM: &str = "https://tsunagu.jp/fhir/CodeSystem/task-code";
/// The Task code of an emergency access awaiting review.
pub const REVIEW_CODE: &str = "emergency-access-review";
/// The Task identifier that names the window's holder: `<patient>/<organisation>/<user>`.
pub const WINDOW_SYSTEM: &str = "https://tsunagu.jp/fhir/NamingSystem/emergency-window";

/// The identifier value of `user`'s window at `organisation` on `patient` (ids hold no `/`).
fn window_key(patient: &str, organisation: &str, user: &str) -> String {
    format!("{patient}/{organisation}/{user}")
}

/// `code` is the review Task code.
fn review_code() -> Condition {
    Condition::Match {
        param: "code".into(),
        test: ValueTest::Token {
            system: TokenSystem::Is(REVIEW_SYSTEM.into()),
            code: Some(REVIEW_CODE.into()),
        },
    }
}

/// An open review, as listed for the privacy officer: no patient data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub id: String,
    pub organisation: String,
    pub user: String,
    pub opened: String,
}

impl App {
    /// Opens an emergency window for `member` on `patient` at `now`, for `reason`.
    ///
    /// # Errors
    /// `Denied` unless the member is at a hospital and holds the emergency privilege; `Invalid`
    /// without a reason; `NotFound` for an unknown patient; `Unavailable`.
    pub async fn open_emergency_access(
        &self,
        member: &Member,
        patient: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<StoredResource, AppError> {
        if member.kind != OrganisationKind::Hospital || !member.emergency_privilege {
            return Err(AppError::Denied(
                "emergency access needs a hospital user holding the emergency privilege".into(),
            ));
        }
        if reason.trim().is_empty() {
            return Err(AppError::invalid(
                fhir::IssueCode::Required,
                Some("Parameters.parameter.reason".into()),
                "emergency access needs a reason",
            ));
        }
        let service = self.for_viewer(Viewer::Service);
        service.read("Patient", patient).await?;
        self.record_access(patient, true);
        self.ledger.emergency();
        let end = Timestamp(now.0 + EMERGENCY_WINDOW_MINUTES * 60_000_000);
        let task = json!({
            "resourceType": "Task",
            "identifier": [{
                "system": WINDOW_SYSTEM,
                "value": window_key(patient, &member.organisation, &member.user),
            }],
            "status": "requested",
            "intent": "order",
            "code": {"coding": [{"system": REVIEW_SYSTEM, "code": REVIEW_CODE}]},
            "for": {"reference": format!("Patient/{patient}")},
            "authoredOn": now.to_fhir_instant(),
            "executionPeriod": {"start": now.to_fhir_instant(), "end": end.to_fhir_instant()},
            "requester": {
                "reference": format!("Organization/{}", member.organisation),
                "display": member.user,
            },
            "reasonCode": {"text": reason},
        });
        let stored = service.create("Task", task, None).await?.resource;
        tracing::warn!(
            review = %stored.id,
            organisation = %member.organisation,
            "emergency access opened: awaiting the privacy officer's review"
        );
        Ok(stored)
    }

    /// Whether `member` holds an emergency window on `patient` at `now`.
    pub(crate) async fn emergency_window(
        &self,
        member: &Member,
        patient: &str,
        now: Timestamp,
    ) -> Result<bool, AppError> {
        // The holder's own windows on the patient, by their identifier: what a check costs does
        // not depend on how many windows colleagues opened on the patient before.
        let query = SearchQuery {
            types: vec!["Task".into()],
            filters: std::iter::once(vec![Condition::Match {
                param: "identifier".into(),
                test: ValueTest::Token {
                    system: TokenSystem::Is(WINDOW_SYSTEM.into()),
                    code: Some(window_key(patient, &member.organisation, &member.user)),
                },
            }])
            .chain([vec![review_code()]])
            .chain(period_covers(now))
            .collect(),
            count: 1,
            ..SearchQuery::default()
        };
        Ok(!self.store.search_latest(&query).await?.matches.is_empty())
    }

    /// Emergency accesses awaiting review, oldest first.
    ///
    /// # Errors
    /// `Unavailable`.
    pub async fn open_reviews(&self) -> Result<Vec<Review>, AppError> {
        let query = SearchQuery {
            types: vec!["Task".into()],
            filters: vec![vec![review_code()], vec![token_is("status", "requested")]],
            count: 1000,
            ..SearchQuery::default()
        };
        let page = self.store.search_latest(&query).await?;
        Ok(page
            .matches
            .iter()
            .map(|task| {
                let body: Value = serde_json::from_str(&task.json).unwrap_or(Value::Null);
                let text = |pointer: &str| {
                    body.pointer(pointer)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                Review {
                    id: task.id.clone(),
                    organisation: text("/requester/reference")
                        .trim_start_matches("Organization/")
                        .to_owned(),
                    user: text("/requester/display"),
                    opened: text("/authoredOn"),
                }
            })
            .collect())
    }

    /// Closes a review (the privacy officer has looked at it).
    ///
    /// # Errors
    /// `NotFound` for an unknown review; `Unavailable`.
    pub async fn close_review(&self, id: &str) -> Result<(), AppError> {
        let service = self.for_viewer(Viewer::Service);
        let task = service.read("Task", id).await?;
        let mut body: Value = serde_json::from_str(&task.json)
            .map_err(|error| AppError::Internal(Box::new(error)))?;
        if body.pointer("/code/coding/0/code").and_then(Value::as_str) != Some(REVIEW_CODE) {
            return Err(AppError::NotFound);
        }
        body["status"] = json!("completed");
        service
            .update(
                "Task",
                id,
                body,
                &crate::Preconditions {
                    if_match: Some(task.version),
                },
            )
            .await?;
        Ok(())
    }
}
