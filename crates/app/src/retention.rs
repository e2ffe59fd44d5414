//! Retention: deleting submitted data once its item's retention period has passed, and recording
//! what was deleted.
//!
//! Periods count from when tsunagu received the data (the unpacked resource's `meta.lastUpdated`:
//! unpacked resources are never updated, only replaced by a resubmission, which receives anew).
//! Only data that arrived as a JP-CLINS submission is subject to retention; resources written
//! through the plain REST API are not. Resources flagged `LTS` are kept (the default keeps them
//! for good; [`RetentionPolicy::lts_days`] bounds it).
//!
//! | item | default |
//! |---|---|
//! | diagnoses (Condition), allergies (AllergyIntolerance), infection results | 5 years |
//! | laboratory results (Observation) | 1 year, but the latest 3 of each test per patient are kept |
//! | prescriptions (MedicationRequest) | 100 days, but the latest 3 per patient are kept |
//! | checkup reports (document) | 5 years |
//! | patient summaries (document) | 6 months |
//! | referral letters and discharge summaries (documents) | 5 years (our choice: the specification leaves it open once picked up) |
//!
//! A document expires as a whole: it is withdrawn, contents and all. A collection's stored record
//! is deleted once retention has taken everything unpacked from it. Each run that deletes
//! something writes one `AuditEvent` (type `rest`, subtype `delete`, agent "tsunagu retention")
//! naming every deleted resource as an entity: the record of what retention removed. Deleted
//! resources stay in history, as with any delete.

use serde_json::{Value, json};
use store::{
    Condition, DateBound, Prefix, SearchQuery, StoredResource, Timestamp, TokenSystem, TotalMode,
    ValueTest, WriteOp,
};

use crate::summary::INFECTION_CODE_SYSTEM;
use crate::visibility::{FLAG_SYSTEM, LTS, RECORD_SYSTEM, SUBMISSION, SUBMITTER_SYSTEM, tag_is};
use crate::{App, AppError, new_id};

const DAY_MICROS: i64 = 86_400_000_000;

/// Retention periods in days (see the module docs for the defaults). Read from JSON by
/// `tsunagu --retention-policy FILE`: every field is optional there and defaults as below, unknown
/// fields are refused (a misspelt period must not silently keep its default).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionPolicy {
    pub diagnoses_days: i64,
    pub allergies_days: i64,
    pub infections_days: i64,
    pub labs_days: i64,
    /// Laboratory results kept per patient and test however old.
    pub labs_keep_latest: usize,
    pub prescriptions_days: i64,
    /// Prescriptions kept per patient however old.
    pub prescriptions_keep_latest: usize,
    pub checkups_days: i64,
    pub patient_summaries_days: i64,
    pub referrals_days: i64,
    /// `LTS`-flagged data: None keeps it for good.
    pub lts_days: Option<i64>,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy {
            diagnoses_days: 5 * 365,
            allergies_days: 5 * 365,
            infections_days: 5 * 365,
            labs_days: 365,
            labs_keep_latest: 3,
            prescriptions_days: 100,
            prescriptions_keep_latest: 3,
            checkups_days: 5 * 365,
            patient_summaries_days: 183,
            referrals_days: 5 * 365,
            lts_days: None,
        }
    }
}

/// What one run deleted, by kind (`Condition`, `Observation (laboratory)`, `document`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub deleted: Vec<(String, usize)>,
    /// The AuditEvent that records the run, when it deleted anything.
    pub audit_event: Option<String>,
}

impl RetentionReport {
    /// Resources deleted in all.
    pub fn total(&self) -> usize {
        self.deleted.iter().map(|(_, count)| count).sum()
    }
}

/// One per-resource rule.
struct Rule {
    label: &'static str,
    resource_type: &'static str,
    days: i64,
    /// Extra conditions choosing the rule's resources among the type's.
    filters: Vec<Vec<Condition>>,
    /// Keep this many of the newest per patient (and per code when `per_code`).
    keep_latest: usize,
    per_code: bool,
    sort: &'static str,
}

impl App {
    /// Applies `policy` as of `now`. Run as the service (every resource is considered).
    ///
    /// # Errors
    /// `Unavailable`; a failure leaves what was deleted so far deleted (each batch is atomic).
    pub async fn apply_retention(
        &self,
        policy: &RetentionPolicy,
        now: Timestamp,
    ) -> Result<RetentionReport, AppError> {
        let service = self.for_viewer(crate::Viewer::Service);
        let infection_code = || Condition::Match {
            param: "code".into(),
            test: ValueTest::Token {
                system: TokenSystem::Is(INFECTION_CODE_SYSTEM.into()),
                code: None,
            },
        };
        let rules = vec![
            Rule {
                label: "Condition",
                resource_type: "Condition",
                days: policy.diagnoses_days,
                filters: vec![],
                keep_latest: 0,
                per_code: false,
                sort: "",
            },
            Rule {
                label: "AllergyIntolerance",
                resource_type: "AllergyIntolerance",
                days: policy.allergies_days,
                filters: vec![],
                keep_latest: 0,
                per_code: false,
                sort: "",
            },
            Rule {
                label: "Observation (infection)",
                resource_type: "Observation",
                days: policy.infections_days,
                filters: vec![vec![infection_code()]],
                keep_latest: 0,
                per_code: false,
                sort: "",
            },
            Rule {
                label: "Observation (laboratory)",
                resource_type: "Observation",
                days: policy.labs_days,
                filters: vec![vec![Condition::Not(Box::new(infection_code()))]],
                keep_latest: policy.labs_keep_latest,
                per_code: true,
                sort: "-date",
            },
            Rule {
                label: "MedicationRequest",
                resource_type: "MedicationRequest",
                days: policy.prescriptions_days,
                filters: vec![],
                keep_latest: policy.prescriptions_keep_latest,
                per_code: false,
                sort: "-authoredon",
            },
        ];
        let mut report = RetentionReport::default();
        let mut deleted_refs: Vec<String> = Vec::new();
        for rule in rules {
            let mut expired = Vec::new();
            for lts in [false, true] {
                let days = match (lts, policy.lts_days) {
                    (false, _) => rule.days,
                    (true, Some(days)) => days.max(rule.days),
                    (true, None) => continue,
                };
                let mut query = expired_query(rule.resource_type, now, days, lts);
                query.filters.extend(rule.filters.iter().cloned());
                for resource in service.all_matches(query).await? {
                    if rule.keep_latest == 0 || !service.among_latest(&resource, &rule).await? {
                        expired.push(resource);
                    }
                }
            }
            if !expired.is_empty() {
                service.delete_all(&expired).await?;
                report.deleted.push((rule.label.to_owned(), expired.len()));
                deleted_refs.extend(
                    expired
                        .iter()
                        .map(|r| format!("{}/{}", r.resource_type, r.id)),
                );
            }
        }
        // Documents expire whole.
        let mut documents = 0;
        let oldest = [
            policy.checkups_days,
            policy.patient_summaries_days,
            policy.referrals_days,
            policy.diagnoses_days,
            policy.allergies_days,
            policy.infections_days,
            policy.labs_days,
            policy.prescriptions_days,
        ]
        .into_iter()
        .min()
        .unwrap_or(0);
        let mut query = expired_query("Bundle", now, oldest, false);
        query.filters.push(vec![tag_is(RECORD_SYSTEM, SUBMISSION)]);
        let mut emptied = Vec::new();
        for bundle in service.all_matches(query).await? {
            let body: Value = serde_json::from_str(&bundle.json).unwrap_or(Value::Null);
            let Some(days) = document_days(&body, policy) else {
                // A collection's record goes once retention has taken everything unpacked from it.
                if let Some(identifier) = crate::submission::submission_identifier(&body)
                    && service.unpacked_of(&identifier).await?.is_empty()
                {
                    emptied.push(bundle);
                }
                continue;
            };
            if bundle.last_updated.0 >= now.0 - days * DAY_MICROS {
                continue;
            }
            if let Some(identifier) = crate::submission::submission_identifier(&body) {
                let outcome = service.withdraw(&identifier).await?;
                documents += 1 + outcome.removed;
                deleted_refs.push(format!("Bundle/{}", bundle.id));
            }
        }
        if documents > 0 {
            report.deleted.push(("document".into(), documents));
        }
        if !emptied.is_empty() {
            service.delete_all(&emptied).await?;
            report
                .deleted
                .push(("emptied submission record".into(), emptied.len()));
            deleted_refs.extend(emptied.iter().map(|r| format!("Bundle/{}", r.id)));
        }
        if !deleted_refs.is_empty() {
            report.audit_event = Some(service.record_retention(&deleted_refs, now).await?);
        }
        Ok(report)
    }

    /// Every match of a query, page after page.
    async fn all_matches(&self, mut query: SearchQuery) -> Result<Vec<StoredResource>, AppError> {
        let mut found = Vec::new();
        loop {
            let page = self.store.search_latest(&query).await?;
            found.extend(page.matches);
            match page.next {
                Some(cursor) => query.cursor = Some(cursor),
                None => return Ok(found),
            }
        }
    }

    /// Whether `resource` is among the newest `rule.keep_latest` of its patient (and code).
    async fn among_latest(&self, resource: &StoredResource, rule: &Rule) -> Result<bool, AppError> {
        let body: Value = serde_json::from_str(&resource.json).unwrap_or(Value::Null);
        let Some(patient) = body
            .pointer("/subject/reference")
            .or_else(|| body.pointer("/patient/reference"))
            .and_then(Value::as_str)
        else {
            return Ok(false);
        };
        let mut params = vec![
            ("patient".to_owned(), patient.to_owned()),
            ("_sort".to_owned(), rule.sort.to_owned()),
            ("_count".to_owned(), rule.keep_latest.to_string()),
        ];
        if rule.per_code
            && let Some(coding) = body.pointer("/code/coding/0")
        {
            let system = coding
                .get("system")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let code = coding
                .get("code")
                .and_then(Value::as_str)
                .unwrap_or_default();
            params.push(("code".to_owned(), format!("{system}|{code}")));
        }
        let query = self.condition_query(rule.resource_type, &params)?;
        let mut query = query;
        query.count = u32::try_from(rule.keep_latest).unwrap_or(u32::MAX);
        let page = self.store.search_latest(&query).await?;
        Ok(page.matches.iter().any(|latest| latest.id == resource.id))
    }

    /// Deletes resources, a thousand per store write.
    async fn delete_all(&self, resources: &[StoredResource]) -> Result<(), AppError> {
        for chunk in resources.chunks(1000) {
            let ops = chunk
                .iter()
                .map(|resource| WriteOp::Delete {
                    resource_type: resource.resource_type.clone(),
                    id: resource.id.clone(),
                    if_match: None,
                })
                .collect();
            self.store.write(ops).await?;
        }
        Ok(())
    }

    /// Writes the AuditEvent recording one retention run; returns its id.
    async fn record_retention(
        &self,
        deleted: &[String],
        now: Timestamp,
    ) -> Result<String, AppError> {
        let event = json!({
            "resourceType": "AuditEvent",
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation"},
            "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": "delete", "display": "delete"}],
            "action": "D",
            "recorded": now.to_fhir_instant(),
            "outcome": "0",
            "outcomeDesc": "retention: data past its retention period was deleted",
            "agent": [{"who": {"display": "tsunagu retention"}, "requestor": false}],
            "source": {"observer": {"display": "tsunagu"}},
            "entity": deleted.iter().map(|reference| json!({"what": {"reference": reference}})).collect::<Vec<_>>(),
        });
        let id = new_id();
        let write = self.prepare_write("AuditEvent", &id, event)?;
        self.store
            .write(vec![WriteOp::Create {
                write,
                if_none_exist: None,
            }])
            .await?;
        Ok(id)
    }
}

/// Submitted resources of a type received before `now - days`, with (`lts`) or without the LTS flag.
fn expired_query(resource_type: &str, now: Timestamp, days: i64, lts: bool) -> SearchQuery {
    let cutoff = now.0 - days * DAY_MICROS;
    let lts_flag = tag_is(FLAG_SYSTEM, LTS);
    SearchQuery {
        types: vec![resource_type.to_owned()],
        filters: vec![
            vec![Condition::LastUpdated {
                prefix: Prefix::Lt,
                range: DateBound {
                    low: cutoff,
                    high: cutoff,
                },
            }],
            vec![Condition::Match {
                param: "_tag".into(),
                test: ValueTest::Token {
                    system: TokenSystem::Is(SUBMITTER_SYSTEM.into()),
                    code: None,
                },
            }],
            vec![if lts {
                lts_flag
            } else {
                Condition::Not(Box::new(lts_flag))
            }],
        ],
        count: 1000,
        total: TotalMode::None,
        ..SearchQuery::default()
    }
}

/// A stored document's retention period, by its Bundle profile.
fn document_days(bundle: &Value, policy: &RetentionPolicy) -> Option<i64> {
    let profiles: Vec<&str> = bundle
        .pointer("/meta/profile")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let has = |name: &str| profiles.iter().any(|profile| profile.contains(name));
    if has("JP_Bundle_eCheckup") {
        Some(policy.checkups_days)
    } else if has("JP_Bundle_ePCS") {
        Some(policy.patient_summaries_days)
    } else if has("JP_Bundle_eReferral") || has("JP_Bundle_eDischargeSummary") {
        Some(policy.referrals_days)
    } else {
        None
    }
}
