//! JP-CLINS submissions: a facility's collection Bundle (one of the 6 information items) or
//! document Bundle (referral letter, discharge summary, checkup report, patient summary), received
//! the FHIR way and unpacked into the resources every other path reads.
//!
//! * `POST /fhir/Bundle` with a JP-CLINS Bundle submits it; the Bundle identifier
//!   (`facility10^YYYY^local-id`) is the unit of replacement, so posting the same identifier again,
//!   or `PUT /fhir/Bundle?identifier=system|value`, replaces the earlier submission.
//! * `DELETE /fhir/Bundle?identifier=system|value` (or `DELETE /fhir/Bundle/{id}`, or a collection
//!   Bundle holding only its Patient) withdraws it.
//!
//! A submission is validated as a whole (`jp::validate_submission`), its patient resolved to the
//! one person it belongs to (`identity`), and then, in **one** store write: the submission Bundle is
//! stored (created, or updated with If-Match on the version this attempt read), every resource the
//! earlier submission under the same identifier had unpacked is deleted, and every entry but the
//! Patient is stored as a resource of its own. Readers see the old set or the new set, never a mix
//! (both stores apply a write atomically and searches read one snapshot). Two submissions of the
//! same identifier at once: one write loses the If-Match (or the conditional create) and starts
//! again from what the other committed.
//!
//! Unpacked resources get new server ids; references between entries (`urn:uuid:` full URLs) are
//! rewritten to them, and references to the submitted Patient to the person's Patient. Each carries
//! its provenance as `meta.tag`s, searchable with `_tag`: the submission (`SUBMISSION_SYSTEM|<bundle
//! identifier value>`) and the submitting facility (`SUBMITTER_SYSTEM|<institution number>`); its
//! received time is its `meta.lastUpdated`. The JP-CLINS flags the facility set stay on each
//! resource. A referral letter's contents also carry `REFERRAL_SYSTEM|pending` and its destination
//! (`DESTINATION_SYSTEM|<institution number>`) until the patient consents to that destination.
//! Withdrawing deletes (versions the deletion of) the Bundle and everything unpacked from it: they
//! leave every view, while history keeps what was there.

use std::collections::HashMap;

use fhir::IssueCode;
use jp::{DocumentKind, Submission, SubmissionKind};
use serde_json::{Value, json};
use store::{SearchQuery, StoreError, StoredResource, TotalMode, WriteOp, WriteOutcome};

use crate::references::rewrite_references;
use crate::visibility::{
    DESTINATION_SYSTEM, PENDING, PERSON_SYSTEM, RECORD_SYSTEM, REFERRAL_SYSTEM, SUBMISSION,
    SUBMISSION_SYSTEM, SUBMITTER_SYSTEM, has_tag, tag_codes, tag_is,
};
use crate::{App, AppError, new_id};

use jp::{BUNDLE_IDENTIFIER_SYSTEM, INSTITUTION_NUMBER_SYSTEM as INSTITUTION_SYSTEM};
/// How many times a submission starts again after losing a race to a concurrent one.
const ATTEMPTS: usize = 4;

/// What a submission did.
#[derive(Debug, Clone)]
pub struct SubmissionOutcome {
    /// The stored submission Bundle (for a withdrawal: the last version before it).
    pub bundle: StoredResource,
    /// The id of the Patient the submission belongs to.
    pub person: String,
    /// True when no submission with this identifier existed before.
    pub created: bool,
    /// True for a withdrawal.
    pub withdrawn: bool,
    /// Resources stored from this submission.
    pub unpacked: usize,
    /// Resources of the earlier submission that it replaced or withdrew.
    pub removed: usize,
}

/// Whether a Bundle is a JP-CLINS submission (and so goes through [`App::submit`]).
pub fn is_submission(bundle: &Value) -> bool {
    bundle.pointer("/identifier/system").and_then(Value::as_str) == Some(BUNDLE_IDENTIFIER_SYSTEM)
        || bundle
            .pointer("/meta/profile")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .any(|profile| {
                profile.starts_with("http://jpfhir.jp/fhir/clins/StructureDefinition/JP_Bundle_")
            })
}

impl App {
    /// Submits (or resubmits, replacing) a JP-CLINS Bundle; a Patient-only collection Bundle
    /// withdraws the submission with its identifier.
    ///
    /// # Errors
    /// `Invalid` with one issue per broken JP-CLINS rule (each naming its element); `Conflict`
    /// when the patient's identifiers conflict with an existing link, or when concurrent
    /// submissions of the same identifier kept winning; `NotFound` for withdrawing a submission
    /// that does not exist; `Unavailable`.
    pub async fn submit(&self, bundle: Value) -> Result<SubmissionOutcome, AppError> {
        let submission = jp::validate_submission(&bundle).map_err(AppError::Invalid)?;
        let identifier = submission.identifier.to_string();
        self.guard_submitter(&identifier)?;
        if submission.withdrawal {
            return self.withdraw(&identifier).await;
        }
        let patient = patient_entry(&bundle).ok_or_else(|| {
            AppError::invalid(
                IssueCode::Required,
                Some("Bundle.entry".into()),
                "the submission has no Patient",
            )
        })?;
        let person = self.resolve_person(patient).await?;
        for _ in 0..ATTEMPTS {
            let existing = self.find_submission(&identifier).await?;
            let old = match &existing {
                Some(_) => self.unpacked_of(&identifier).await?,
                None => Vec::new(),
            };
            let (bundle_write, unpacked) =
                self.unpack(&bundle, &submission, &person, existing.as_ref())?;
            let unpacked_count = unpacked.len();
            let mut ops = Vec::with_capacity(1 + old.len() + unpacked.len());
            ops.push(match &existing {
                Some(stored) => WriteOp::Update {
                    write: bundle_write,
                    if_match: Some(stored.version),
                },
                None => WriteOp::Create {
                    write: bundle_write,
                    if_none_exist: Some(Box::new(submission_query(&identifier))),
                },
            });
            ops.extend(old.iter().map(|(resource_type, id)| WriteOp::Delete {
                resource_type: resource_type.clone(),
                id: id.clone(),
                if_match: None,
            }));
            ops.extend(unpacked.into_iter().map(|write| WriteOp::Create {
                write,
                if_none_exist: None,
            }));
            match self.store.write(ops).await {
                Ok(mut outcomes) => match outcomes.swap_remove(0) {
                    WriteOutcome::Created(bundle) | WriteOutcome::Updated(bundle) => {
                        self.record_access(&person, true);
                        return Ok(SubmissionOutcome {
                            bundle,
                            person,
                            created: existing.is_none(),
                            withdrawn: false,
                            unpacked: unpacked_count,
                            removed: old.len(),
                        });
                    }
                    // A concurrent first submission of this identifier won: replace it.
                    WriteOutcome::Existing(_) => {}
                    _ => {
                        return Err(AppError::Internal(
                            "the submission Bundle was neither created nor updated".into(),
                        ));
                    }
                },
                // A concurrent resubmission changed the Bundle since this attempt read it.
                Err(StoreError::VersionConflict { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Err(AppError::Conflict(
            "concurrent submissions with the same Bundle identifier; retry".into(),
        ))
    }

    /// Withdraws the submission with this Bundle identifier value: it and everything unpacked from
    /// it leave every view (history keeps them).
    ///
    /// # Errors
    /// `NotFound` when no such submission exists; `Conflict` when concurrent changes kept
    /// winning; `Unavailable`.
    pub async fn withdraw(&self, identifier: &str) -> Result<SubmissionOutcome, AppError> {
        self.guard_submitter(identifier)?;
        for _ in 0..ATTEMPTS {
            let Some(existing) = self.find_submission(identifier).await? else {
                return Err(AppError::NotFound);
            };
            let old = self.unpacked_of(identifier).await?;
            let person = person_of(&existing).unwrap_or_default();
            let mut ops = Vec::with_capacity(1 + old.len());
            ops.push(WriteOp::Delete {
                resource_type: "Bundle".into(),
                id: existing.id.clone(),
                if_match: Some(existing.version),
            });
            ops.extend(old.iter().map(|(resource_type, id)| WriteOp::Delete {
                resource_type: resource_type.clone(),
                id: id.clone(),
                if_match: None,
            }));
            match self.store.write(ops).await {
                Ok(_) => {
                    if !person.is_empty() {
                        self.record_access(&person, true);
                    }
                    return Ok(SubmissionOutcome {
                        bundle: existing,
                        person,
                        created: false,
                        withdrawn: true,
                        unpacked: 0,
                        removed: old.len(),
                    });
                }
                Err(StoreError::VersionConflict { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Err(AppError::Conflict(
            "concurrent submissions with the same Bundle identifier; retry".into(),
        ))
    }

    /// The stored submission Bundle with this identifier value (whoever asks: writes must see it).
    pub(crate) async fn find_submission(
        &self,
        identifier: &str,
    ) -> Result<Option<StoredResource>, AppError> {
        let page = self
            .store
            .search_latest(&submission_query(identifier))
            .await?;
        Ok(page.matches.into_iter().next())
    }

    /// `(type, id)` of every live resource unpacked from the submission with this identifier.
    pub(crate) async fn unpacked_of(
        &self,
        identifier: &str,
    ) -> Result<Vec<(String, String)>, AppError> {
        let mut query = SearchQuery {
            types: Vec::new(),
            filters: vec![vec![tag_is(SUBMISSION_SYSTEM, identifier)]],
            count: 1000,
            total: TotalMode::None,
            ..SearchQuery::default()
        };
        let mut found = Vec::new();
        loop {
            let page = self.store.search_latest(&query).await?;
            found.extend(
                page.matches
                    .into_iter()
                    .filter(|resource| resource.resource_type != "Bundle")
                    .map(|resource| (resource.resource_type, resource.id)),
            );
            match page.next {
                Some(cursor) => query.cursor = Some(cursor),
                None => return Ok(found),
            }
        }
    }

    /// The submission Bundle to store and the resources unpacked from its entries.
    fn unpack(
        &self,
        bundle: &Value,
        submission: &Submission,
        person: &str,
        existing: Option<&StoredResource>,
    ) -> Result<(store::ResourceWrite, Vec<store::ResourceWrite>), AppError> {
        let identifier = submission.identifier.to_string();
        let facility = submission.identifier.facility.to_string();
        let mut tags = vec![
            json!({"system": SUBMISSION_SYSTEM, "code": identifier}),
            json!({"system": SUBMITTER_SYSTEM, "code": facility}),
        ];
        if let SubmissionKind::Document {
            kind: DocumentKind::Referral,
        } = submission.kind
        {
            tags.push(json!({"system": REFERRAL_SYSTEM, "code": PENDING}));
            if let Some(destination) = referral_destination(bundle) {
                tags.push(json!({"system": DESTINATION_SYSTEM, "code": destination}));
            }
        }
        let entries: Vec<&Value> = bundle
            .get("entry")
            .and_then(Value::as_array)
            .map(|entries| entries.iter().collect())
            .unwrap_or_default();
        // Every entry's new address, for the references between them.
        let mut resolved: HashMap<String, String> = HashMap::new();
        let mut planned: Vec<(String, String, Value)> = Vec::new();
        for entry in &entries {
            let Some(resource) = entry.get("resource") else {
                continue;
            };
            let Some(resource_type) = resource.get("resourceType").and_then(Value::as_str) else {
                continue;
            };
            let address = if resource_type == "Patient" {
                format!("Patient/{person}")
            } else {
                let id = new_id();
                planned.push((resource_type.to_owned(), id.clone(), resource.clone()));
                format!("{resource_type}/{id}")
            };
            if let Some(full_url) = entry.get("fullUrl").and_then(Value::as_str) {
                resolved.insert(full_url.to_owned(), address.clone());
            }
            if let Some(id) = resource.get("id").and_then(Value::as_str) {
                resolved.insert(format!("{resource_type}/{id}"), address);
            }
        }
        let mut unpacked = Vec::with_capacity(planned.len());
        for (resource_type, id, mut resource) in planned {
            rewrite_references(&mut resource, &resolved);
            add_tags(&mut resource, &tags);
            unpacked.push(self.prepare_trusted(&resource_type, &id, resource)?);
        }
        let mut stored = bundle.clone();
        let mut record_tags = tags.clone();
        record_tags.push(json!({"system": RECORD_SYSTEM, "code": SUBMISSION}));
        record_tags.push(json!({"system": PERSON_SYSTEM, "code": person}));
        add_tags(&mut stored, &record_tags);
        let bundle_id = existing.map_or_else(new_id, |stored| stored.id.clone());
        let bundle_write = self.prepare_trusted("Bundle", &bundle_id, stored)?;
        Ok((bundle_write, unpacked))
    }
}

fn person_of(bundle: &StoredResource) -> Option<String> {
    let body: Value = serde_json::from_str(&bundle.json).ok()?;
    tag_codes(&body, PERSON_SYSTEM).next().map(str::to_owned)
}

/// `Bundle?identifier=<JP-CLINS system>|<value>`.
fn submission_query(identifier: &str) -> SearchQuery {
    SearchQuery {
        types: vec!["Bundle".to_owned()],
        filters: vec![vec![store::Condition::Match {
            param: "identifier".to_owned(),
            test: store::ValueTest::Token {
                system: store::TokenSystem::Is(BUNDLE_IDENTIFIER_SYSTEM.to_owned()),
                code: Some(identifier.to_owned()),
            },
        }]],
        count: 1,
        ..SearchQuery::default()
    }
}

/// The submission's Patient resource.
fn patient_entry(bundle: &Value) -> Option<&Value> {
    bundle
        .get("entry")?
        .as_array()?
        .iter()
        .filter_map(|entry| entry.get("resource"))
        .find(|resource| resource.get("resourceType").and_then(Value::as_str) == Some("Patient"))
}

/// The institution number of a referral letter's destination: the Organization that the
/// Composition's 紹介先 section (code 910) names.
fn referral_destination(bundle: &Value) -> Option<String> {
    let entries = bundle.get("entry")?.as_array()?;
    let composition = entries.first()?.get("resource")?;
    let section = composition
        .get("section")?
        .as_array()?
        .iter()
        .find(|section| {
            section
                .pointer("/code/coding")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|coding| coding.get("code").and_then(Value::as_str) == Some("910"))
        })?;
    let targets: Vec<&str> = section
        .get("entry")?
        .as_array()?
        .iter()
        .filter_map(|reference| reference.get("reference").and_then(Value::as_str))
        .collect();
    entries
        .iter()
        .filter(|entry| {
            entry
                .get("fullUrl")
                .and_then(Value::as_str)
                .is_some_and(|url| targets.contains(&url))
        })
        .filter_map(|entry| entry.get("resource"))
        .filter(|resource| {
            resource.get("resourceType").and_then(Value::as_str) == Some("Organization")
        })
        .flat_map(|organization| {
            organization
                .get("identifier")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .find(|identifier| {
            identifier.get("system").and_then(Value::as_str) == Some(INSTITUTION_SYSTEM)
        })
        .and_then(|identifier| identifier.get("value").and_then(Value::as_str))
        .map(str::to_owned)
}

/// Appends tags to `resource.meta.tag` (creating `meta` and `tag` as needed), once each.
fn add_tags(resource: &mut Value, tags: &[Value]) {
    let Value::Object(object) = resource else {
        return;
    };
    let meta = object
        .entry("meta")
        .or_insert_with(|| Value::Object(serde_json::Map::new()));
    let Value::Object(meta) = meta else {
        return;
    };
    let list = meta
        .entry("tag")
        .or_insert_with(|| Value::Array(Vec::new()));
    let Value::Array(list) = list else {
        return;
    };
    for tag in tags {
        let system = tag
            .get("system")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let code = tag.get("code").and_then(Value::as_str).unwrap_or_default();
        let present = list.iter().any(|existing| {
            existing.get("system").and_then(Value::as_str) == Some(system)
                && existing.get("code").and_then(Value::as_str) == Some(code)
        });
        if !present {
            list.push(tag.clone());
        }
    }
}

/// The Bundle identifier value a conditional URL names with the JP-CLINS system
/// (`identifier=<system>|<value>`), if it names exactly that.
pub(crate) fn identifier_param(params: &[(String, String)]) -> Option<String> {
    let prefix = format!("{BUNDLE_IDENTIFIER_SYSTEM}|");
    match params {
        [(name, value)] if name == "identifier" => value.strip_prefix(&prefix).map(str::to_owned),
        _ => None,
    }
}

/// Whether a stored resource is a submission record (for `DELETE /fhir/Bundle/{id}`).
pub(crate) fn submission_identifier(bundle: &Value) -> Option<String> {
    if !has_tag(bundle, RECORD_SYSTEM, SUBMISSION) {
        return None;
    }
    bundle
        .pointer("/identifier/value")
        .and_then(Value::as_str)
        .map(str::to_owned)
}
