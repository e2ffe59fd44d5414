//! Consent and what an authenticated member of an organisation may see (product.md, "Consent").
//!
//! * A patient's **Consent** names the grantee organisation (`provision.actor`, a reference to
//!   `Organization/<registry id>`), a validity period (`provision.period`), status `active`, and
//!   optionally categories. Revoking sets the status to `inactive`: the very next request is
//!   decided without it (every decision reads the store's count of Consent writes, and what was
//!   kept from an earlier request counts only while it is unchanged: [`ConsentGrants`]).
//! * A **member** of an organisation ([`Member`]) sees, within what its organisation kind and role
//!   may see at all ([`allowed_types`]): everything its own facility submitted, and a patient's
//!   other data only under an active consent of that patient to its organisation. Without one it
//!   learns nothing: a read answers 404, a search is narrowed to its own submissions (so matches and
//!   totals count nothing else), a Patient is visible only when the organisation holds a link to
//!   it (its facility patient id) or a consent.
//!
//! The decision is made here and in `visibility` only; every read path of the façade consults it.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Value, json};
use store::{Condition, Prefix, SearchQuery, StoredResource, Timestamp, TokenSystem, ValueTest};

use crate::{App, AppError};

/// The kinds of organisation and the roles of their users are the ones the registry and the
/// tokens carry (`auth`): one definition.
pub use auth::{OrganisationKind, Role};

/// An authenticated member of an organisation, acting as a user with a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The organisation's registry id: consents name `Organization/<this>`.
    pub organisation: String,
    /// Its 10-digit institution number, when it has one: its submissions are tagged with it.
    pub institution: Option<String>,
    pub kind: OrganisationKind,
    pub role: Role,
    /// The acting user's id, as asserted by the facility.
    pub user: String,
    /// Whether the user holds the emergency privilege (granted by the hospital's administrator).
    pub emergency_privilege: bool,
    /// The resource types the member's access token allows reading (its SMART scopes); `None`
    /// for no limit beyond [`allowed_types`]. The token can only narrow the table, never widen it.
    pub token_types: Option<Vec<String>>,
}

impl Member {
    /// The resource types this member may see: [`allowed_types`] of its kind and role, cut to
    /// what its token allows.
    pub fn visible_types(&self) -> Vec<&'static str> {
        let mut types = allowed_types(self.kind, self.role);
        if let Some(granted) = &self.token_types {
            types.retain(|t| granted.iter().any(|g| g == t));
        }
        types
    }
}

/// Directory data every member may read (no patient's data).
const DIRECTORY: [&str; 4] = [
    "Organization",
    "Practitioner",
    "PractitionerRole",
    "Location",
];
/// The clinical data set a treating clinician may see.
const CLINICAL: [&str; 12] = [
    "Patient",
    "Condition",
    "AllergyIntolerance",
    "Observation",
    "MedicationRequest",
    "Composition",
    "Encounter",
    "DocumentReference",
    "Specimen",
    "ServiceRequest",
    "CarePlan",
    "Coverage",
];

/// The resource types (besides directory data) a member may see at all, whatever the consent:
/// the one table of what each kind of organisation and role is for (product.md).
///
/// | organisation | role | types |
/// |---|---|---|
/// | hospital, clinic | doctor, dentist, nurse | the clinical data set |
/// | hospital, clinic | pharmacist | Patient, AllergyIntolerance, MedicationRequest, Observation |
/// | pharmacy | pharmacist | Patient, AllergyIntolerance, MedicationRequest, Observation |
/// | care provider | care worker | Patient, AllergyIntolerance, MedicationRequest |
/// | public health centre, municipality, insurer | their officers | none yet (notifications, documents addressed to them, checkups of their insured come with their own work) |
/// | any | clerk, administrator | none: no clinical data |
pub fn allowed_types(kind: OrganisationKind, role: Role) -> Vec<&'static str> {
    use OrganisationKind as K;
    use Role as R;
    let mut types: Vec<&'static str> = match (kind, role) {
        (K::Hospital | K::Clinic, R::Doctor | R::Dentist | R::Nurse) => CLINICAL.to_vec(),
        (K::Hospital | K::Clinic | K::Pharmacy, R::Pharmacist) => {
            vec![
                "Patient",
                "AllergyIntolerance",
                "MedicationRequest",
                "Observation",
            ]
        }
        (K::CareProvider, R::CareWorker) => {
            vec!["Patient", "AllergyIntolerance", "MedicationRequest"]
        }
        _ => Vec::new(),
    };
    types.extend(DIRECTORY);
    types
}

/// Consents looked up while answering one request (each patient once).
#[derive(Debug, Default)]
pub(crate) struct ConsentCache {
    decided: Mutex<HashMap<String, bool>>,
}

impl ConsentCache {
    /// Records a decision for this request (an emergency window counts as one for its patient).
    pub(crate) fn grant_for_request(&self, patient: &str) {
        if let Ok(mut decided) = self.decided.lock() {
            decided.insert(patient.to_owned(), true);
        }
    }
}

impl App {
    /// Records a patient's consent to an organisation until `until`, in force from `now`.
    ///
    /// # Errors
    /// `NotFound` for an unknown patient; `Unavailable`.
    pub async fn grant_consent(
        &self,
        patient: &str,
        organisation: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<StoredResource, AppError> {
        self.for_viewer(crate::Viewer::Service)
            .read("Patient", patient)
            .await?;
        self.record_access(patient, true);
        let consent = json!({
            "resourceType": "Consent",
            "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]}],
            "patient": {"reference": format!("Patient/{patient}")},
            "dateTime": now.to_fhir_instant(),
            "provision": {
                "type": "permit",
                "period": {"start": now.to_fhir_instant(), "end": until.to_fhir_instant()},
                "actor": [{
                    "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},
                    "reference": {"reference": format!("Organization/{organisation}")}
                }]
            }
        });
        // Written by the service on the caller's behalf: the caller's own write rules (patients
        // and members write no resources directly) were checked by whoever called this.
        Ok(self
            .for_viewer(crate::Viewer::Service)
            .create("Consent", consent, None)
            .await?
            .resource)
    }

    /// Revokes a consent: effective for the very next request.
    ///
    /// # Errors
    /// `NotFound`; `Unavailable`.
    pub async fn revoke_consent(&self, consent: &str) -> Result<(), AppError> {
        let service = self.for_viewer(crate::Viewer::Service);
        let stored = service.read("Consent", consent).await?;
        let mut body: Value = serde_json::from_str(&stored.json)
            .map_err(|error| AppError::Internal(Box::new(error)))?;
        if let Some(patient) = patient_of("Consent", consent, &body) {
            self.record_access(&patient, true);
        }
        body["status"] = json!("inactive");
        let preconditions = crate::Preconditions {
            if_match: Some(stored.version),
        };
        service
            .update("Consent", consent, body, &preconditions)
            .await?;
        Ok(())
    }

    /// Revokes one of the viewer's own consents (a patient's): another patient's consent, or one
    /// that does not exist, is `NotFound`.
    ///
    /// # Errors
    /// `NotFound`; `Denied` for anyone but a patient; `Unavailable`.
    pub async fn revoke_own_consent(&self, consent: &str) -> Result<(), AppError> {
        if !matches!(self.viewer, crate::Viewer::Patient(_)) {
            return Err(AppError::Denied(
                "a consent is revoked by its patient".into(),
            ));
        }
        // Read as the patient: only their own compartment is found.
        self.read("Consent", consent).await?;
        self.revoke_consent(consent).await
    }

    /// Whether `patient` has an active consent to `organisation` in force at `now`.
    ///
    /// Decided from the periods of the patient's active consents to the organisation, kept across
    /// requests ([`ConsentGrants`]) while the store's count of Consent writes stays the same; the
    /// count is read on every decision, so a consent granted or revoked by anyone, in this process
    /// or another, decides the very next request. A store that does not count them (PostgreSQL)
    /// is asked every time.
    pub(crate) async fn consented(
        &self,
        patient: &str,
        organisation: &str,
        now: Timestamp,
    ) -> Result<bool, AppError> {
        if let Ok(decided) = self.consents.decided.lock()
            && let Some(answer) = decided.get(patient)
        {
            return Ok(*answer);
        }
        let kept = match self.store.write_generation("Consent").await? {
            Some(generation) => match self.grants.decide(patient, organisation, generation, now) {
                Some(answer) => Some(answer),
                None => self
                    .active_consent_periods(patient, organisation)
                    .await?
                    .map(|periods| {
                        let answer = periods.iter().any(|period| period.covers(now));
                        self.grants.keep(patient, organisation, generation, periods);
                        answer
                    }),
            },
            None => None,
        };
        let answer = match kept {
            Some(answer) => answer,
            None => {
                let mut query = consent_query(patient, organisation);
                query.filters.extend(period_covers(now));
                query.count = 1;
                self.store.exists(&query).await?
            }
        };
        if let Ok(mut decided) = self.consents.decided.lock() {
            decided.insert(patient.to_owned(), answer);
        }
        Ok(answer)
    }

    /// The periods of `patient`'s active consents to `organisation`, as the store's index holds
    /// them (extracted by the same registry); `None` when there are more than
    /// [`MOST_KEPT_CONSENTS`] (decided by a search every time) or one cannot be read.
    async fn active_consent_periods(
        &self,
        patient: &str,
        organisation: &str,
    ) -> Result<Option<Vec<Period>>, AppError> {
        let mut query = consent_query(patient, organisation);
        query.count = MOST_KEPT_CONSENTS;
        let page = self.store.search_latest(&query).await?;
        if page.next.is_some() {
            return Ok(None);
        }
        let mut periods = Vec::with_capacity(page.matches.len());
        for consent in &page.matches {
            let Ok(body) = serde_json::from_str::<Value>(&consent.json) else {
                return Ok(None);
            };
            let entries = self.registry.extract("Consent", &body);
            if let Some(period) = Period::of(&entries) {
                periods.push(period);
            }
        }
        Ok(Some(periods))
    }
}

/// The search for `patient`'s active consents to `organisation` (whatever their period).
fn consent_query(patient: &str, organisation: &str) -> SearchQuery {
    SearchQuery {
        types: vec!["Consent".into()],
        filters: vec![
            vec![reference("patient", "Patient", patient)],
            vec![reference("actor", "Organization", organisation)],
            vec![token_is("status", "active")],
        ],
        ..SearchQuery::default()
    }
}

/// More active consents of one patient to one organisation than this are not kept: each decision
/// about them is a search.
const MOST_KEPT_CONSENTS: u32 = 16;

/// (patient, organisation) pairs kept at most; the whole map is dropped when it is full (the next
/// decision of each pair looks again).
const MOST_KEPT_PAIRS: usize = 100_000;

/// One active consent's `period` as the store's index holds it: the earliest start and the latest
/// end of its `period` entries (an open end is the end of time). The store's search for a consent
/// in force at `now` (`period_covers`) matches exactly when [`Period::covers`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Period {
    starts: i64,
    ends: i64,
}

impl Period {
    /// From a Consent's index entries; `None` without a `period` (such a consent is never in
    /// force: both of `period_covers`' conditions need an entry).
    fn of(entries: &[store::IndexEntry]) -> Option<Period> {
        entries
            .iter()
            .filter(|entry| entry.param == "period")
            .filter_map(|entry| match entry.value {
                store::IndexValue::Date { low, high } => Some(Period {
                    starts: low,
                    ends: high,
                }),
                _ => None,
            })
            .reduce(|a, b| Period {
                starts: a.starts.min(b.starts),
                ends: a.ends.max(b.ends),
            })
    }

    /// `period=le<now>` and `period=ge<now>`: started by `now` and not ended before it.
    fn covers(self, now: Timestamp) -> bool {
        self.starts <= now.0 && self.ends >= now.0
    }
}

/// The periods of each (patient, organisation)'s active consents, kept across requests with the
/// store's count of Consent writes they were read at (`Store::write_generation`): valid only
/// while the count is the same, and then exactly what a search would find (a consent's period is
/// compared with the time of each decision, so one that ends stops counting at its end).
#[derive(Debug, Default)]
pub(crate) struct ConsentGrants {
    kept: Mutex<HashMap<(String, String), Kept>>,
}

/// The periods of one pair's active consents and the count of Consent writes they were read at.
#[derive(Debug)]
struct Kept {
    generation: u64,
    periods: Vec<Period>,
}

impl ConsentGrants {
    /// Whether a kept consent of `patient` to `organisation` is in force at `now`; `None` when
    /// nothing was kept at `generation`.
    fn decide(
        &self,
        patient: &str,
        organisation: &str,
        generation: u64,
        now: Timestamp,
    ) -> Option<bool> {
        let kept = self.kept.lock().ok()?;
        // A borrowed key would need a second map type; one lookup allocates two short strings.
        let kept = kept.get(&(patient.to_owned(), organisation.to_owned()))?;
        (kept.generation == generation)
            .then(|| kept.periods.iter().any(|period| period.covers(now)))
    }

    /// Keeps what was read at `generation` (read before the search that found `periods`: a write
    /// committed after that moves the count, so what it changed is never taken as current).
    fn keep(&self, patient: &str, organisation: &str, generation: u64, periods: Vec<Period>) {
        if let Ok(mut kept) = self.kept.lock() {
            if kept.len() >= MOST_KEPT_PAIRS {
                kept.clear();
            }
            kept.insert(
                (patient.to_owned(), organisation.to_owned()),
                Kept {
                    generation,
                    periods,
                },
            );
        }
    }
}

impl App {
    /// Narrows a search to what a member may see; false when that is nothing at all.
    ///
    /// Types are cut to the member's [`allowed_types`]. A search about one patient (a compartment,
    /// or a single `patient`/`subject` reference) who has consented to the member's organisation
    /// stays as it is; any other search is narrowed to the member's own submissions and the
    /// patients its facility holds a patient id for, so that neither matches nor totals count
    /// anyone else's data.
    ///
    /// # Errors
    /// `Unavailable` when a consent cannot be looked up.
    pub(crate) async fn scope_for_member(
        &self,
        member: &Member,
        query: &mut SearchQuery,
    ) -> Result<bool, AppError> {
        let allowed = member.visible_types();
        if query.types.is_empty() {
            query.types = allowed.iter().map(|t| (*t).to_owned()).collect();
        } else {
            query.types.retain(|t| allowed.contains(&t.as_str()));
            if query.types.is_empty() {
                return Ok(false);
            }
        }
        if let Some(patient) = single_patient(query) {
            if self
                .consented(&patient, &member.organisation, crate::now())
                .await?
            {
                return Ok(true);
            }
            // Asked about one patient without their consent: an attempt their history shows,
            // whatever the narrowed search then finds of the member's own submissions.
            self.record_access(&patient, false);
        }
        let mut own = Vec::new();
        if let Some(institution) = &member.institution {
            own.push(crate::visibility::tag_is(
                crate::visibility::SUBMITTER_SYSTEM,
                institution,
            ));
            own.push(Condition::Match {
                param: "identifier".into(),
                test: ValueTest::Token {
                    system: TokenSystem::Is(format!(
                        "{}1{institution}",
                        jp::FACILITY_PATIENT_ID_PREFIX
                    )),
                    code: None,
                },
            });
        }
        // `_has` looks at other resources than the ones it returns: narrowed, it would still tell
        // which of the member's patients have data elsewhere. Without consent it finds nothing.
        if query.filters.iter().flatten().any(reaches_other_resources) {
            return Ok(false);
        }
        // Directory data is not a patient's: a search of directory types only is left as it is
        // (a search mixing them with patients' data is narrowed as a whole).
        if query.types.iter().all(|t| DIRECTORY.contains(&t.as_str())) {
            return Ok(true);
        }
        // With no institution number, `own` is empty: an empty OR group matches nothing.
        query.filters.push(own);
        Ok(true)
    }
}

/// `param` references `target_type/id`.
pub(crate) fn reference(param: &str, target_type: &str, id: &str) -> Condition {
    Condition::Match {
        param: param.to_owned(),
        test: ValueTest::Reference {
            target_type: Some(target_type.to_owned()),
            id: Some(id.to_owned()),
            url: None,
        },
    }
}

/// `param` has the code `code` (any system).
pub(crate) fn token_is(param: &str, code: &str) -> Condition {
    Condition::Match {
        param: param.to_owned(),
        test: ValueTest::Token {
            system: TokenSystem::Any,
            code: Some(code.to_owned()),
        },
    }
}

/// The `period` parameter's range covers `now`: two AND groups (it starts by then, ends after).
pub(crate) fn period_covers(now: Timestamp) -> [Vec<Condition>; 2] {
    let at = store::DateBound {
        low: now.0,
        high: now.0,
    };
    [Prefix::Le, Prefix::Ge].map(|prefix| {
        vec![Condition::Match {
            param: "period".to_owned(),
            test: ValueTest::Date { prefix, range: at },
        }]
    })
}

/// Whether a condition looks at resources that point at the candidate (`_has`).
fn reaches_other_resources(condition: &Condition) -> bool {
    match condition {
        Condition::Has { .. } => true,
        Condition::Not(inner) => reaches_other_resources(inner),
        Condition::Chain { inner, .. } => reaches_other_resources(inner),
        _ => false,
    }
}

/// The one patient a search is about: its compartment, or a single `patient`/`subject` reference
/// to a Patient.
pub(crate) fn single_patient(query: &SearchQuery) -> Option<String> {
    if let Some(patient) = &query.compartment {
        return Some(patient.clone());
    }
    query
        .filters
        .iter()
        .find_map(|group| match group.as_slice() {
            [
                Condition::Match {
                    param,
                    test:
                        ValueTest::Reference {
                            target_type,
                            id: Some(id),
                            url: None,
                        },
                },
            ] if (param == "patient" || param == "subject")
                && target_type.as_deref().is_none_or(|t| t == "Patient") =>
            {
                Some(id.clone())
            }
            _ => None,
        })
}

/// Whether a Patient holds a patient id of the member's own facility (the organisation treats
/// them: it may see who they are, not what others recorded).
pub(crate) fn linked(patient: &crate::visibility::Marks, member: &Member) -> bool {
    let Some(institution) = &member.institution else {
        return false;
    };
    patient.has_identifier_system(&format!("{}1{institution}", jp::FACILITY_PATIENT_ID_PREFIX))
}

/// The patient a stored resource belongs to (itself for a Patient), if any.
pub(crate) fn patient_of(resource_type: &str, id: &str, body: &Value) -> Option<String> {
    if resource_type == "Patient" {
        return Some(id.to_owned());
    }
    [
        "/subject/reference",
        "/patient/reference",
        "/beneficiary/reference",
    ]
    .iter()
    .filter_map(|pointer| body.pointer(pointer).and_then(Value::as_str))
    .find_map(|reference| reference.strip_prefix("Patient/"))
    .map(str::to_owned)
}

/// [`patient_of`] of a stored resource's JSON text, reading only the three references it looks
/// at (the rest of the body is skipped, not built), and the whole body only when one of them is
/// not a Reference.
pub(crate) fn patient_of_json(resource_type: &str, id: &str, json: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct References {
        subject: Option<Reference>,
        patient: Option<Reference>,
        beneficiary: Option<Reference>,
    }
    #[derive(serde::Deserialize)]
    struct Reference {
        reference: Option<String>,
    }
    if resource_type == "Patient" {
        return Some(id.to_owned());
    }
    match serde_json::from_str::<References>(json) {
        Ok(found) => [found.subject, found.patient, found.beneficiary]
            .into_iter()
            .flatten()
            .filter_map(|reference| reference.reference)
            .find_map(|reference| reference.strip_prefix("Patient/").map(str::to_owned)),
        Err(_) => {
            let body: Value = serde_json::from_str(json).ok()?;
            patient_of(resource_type, id, &body)
        }
    }
}

impl App {
    /// Refuses writes other than submissions and consents to authenticated users: a member's
    /// facility shares data by submitting JP-CLINS Bundles (attributable, replaceable, withdrawable
    /// as a whole), a patient writes consents only. Unauthenticated library use and the service
    /// itself are not limited here.
    ///
    /// # Errors
    /// `Denied` for a member or a patient.
    pub(crate) fn guard_direct_write(&self) -> Result<(), AppError> {
        match &self.viewer {
            crate::Viewer::Member(_) => Err(AppError::Denied(
                "members of organisations share data by submitting JP-CLINS Bundles \
                 (POST /fhir/Bundle)"
                    .into(),
            )),
            crate::Viewer::Patient(_) => Err(AppError::Denied(
                "patients write consents only (POST /fhir/Consent, DELETE /fhir/Consent/[id])"
                    .into(),
            )),
            _ => Ok(()),
        }
    }

    /// A member submits, replaces and withdraws only its own facility's submissions (the Bundle
    /// identifier begins with the facility's institution number); a patient none.
    ///
    /// # Errors
    /// `Denied` otherwise.
    pub(crate) fn guard_submitter(&self, identifier: &str) -> Result<(), AppError> {
        match &self.viewer {
            crate::Viewer::Member(member) => {
                let facility = identifier.split('^').next().unwrap_or_default();
                if member.institution.as_deref() == Some(facility) {
                    Ok(())
                } else {
                    Err(AppError::Denied(
                        "a facility submits and withdraws only its own submissions (the Bundle \
                         identifier begins with its institution number)"
                            .into(),
                    ))
                }
            }
            crate::Viewer::Patient(_) => Err(AppError::Denied(
                "patients do not submit clinical data".into(),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
