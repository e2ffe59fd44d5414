//! Who sees what of the JP-CLINS flags and submission states: the one place every read path
//! (read, vread, search and its includes, history, `$everything`, the summaries, Bundle GET
//! entries) consults.
//!
//! | A resource tagged … | the submitting facility | another facility | the patient |
//! |---|---|---|---|
//! | `UNDELIVERED` (未提供) | sees it | does not | does not |
//! | `UNINFORMED` (未告知) | sees it, tagged | sees it, tagged | does not |
//! | a referral letter's content, pending the patient's consent | sees it | does not (its destination: once the patient consents to it, see `consent`) | sees it |
//! | a stored submission Bundle (the facility's record of what it sent) | sees it | does not | does not |
//!
//! A hidden resource is indistinguishable from an absent one: a read answers 404, a search leaves
//! it out of its matches and its total. Searches get the rules as extra conditions (so that totals
//! and paging stay exact); single resources are checked by [`Viewer::may_see`]. Both are written
//! from the same table above.

use serde_json::Value;
use store::{Condition, SearchQuery, TokenSystem, ValueTest};

/// The JP-CLINS indication flags (`meta.tag`).
pub use jp::INDICATION_SYSTEM as FLAG_SYSTEM;
/// 未提供: shown to nobody outside the submitting facility.
pub const UNDELIVERED: &str = "UNDELIVERED";
/// 未告知: never shown to the patient; shown to facilities with the tag.
pub const UNINFORMED: &str = "UNINFORMED";
/// Keep longer than the item's default retention.
pub const LTS: &str = "LTS";

/// The submission a resource was unpacked from (`meta.tag`, code = the Bundle identifier value).
pub const SUBMISSION_SYSTEM: &str = "https://tsunagu.jp/fhir/CodeSystem/submission";
/// The facility that submitted a resource (`meta.tag`, code = its 10-digit institution number).
pub const SUBMITTER_SYSTEM: &str = "https://tsunagu.jp/fhir/CodeSystem/submitting-facility";
/// A referral letter's state (`meta.tag`): `pending` until the patient consents to its destination.
pub const REFERRAL_SYSTEM: &str = "https://tsunagu.jp/fhir/CodeSystem/referral-state";
/// A referral letter's destination (`meta.tag`, code = the destination's institution number).
pub const DESTINATION_SYSTEM: &str = "https://tsunagu.jp/fhir/CodeSystem/referral-destination";
/// The pending state of [`REFERRAL_SYSTEM`].
pub const PENDING: &str = "pending";
/// What kind of record a resource is (`meta.tag`); [`SUBMISSION`] marks a stored submission Bundle.
pub const RECORD_SYSTEM: &str = "https://tsunagu.jp/fhir/CodeSystem/record";
/// A stored submission Bundle: everyone else reads the resources unpacked from it.
pub const SUBMISSION: &str = "submission";
/// The person a stored submission belongs to (`meta.tag`, code = the Patient id).
pub const PERSON_SYSTEM: &str = "https://tsunagu.jp/fhir/CodeSystem/submission-person";

/// Who is reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    /// The service's own maintenance (export, retention): sees everything.
    Service,
    /// A facility, by its 10-digit institution number when it is known. Until requests are
    /// authenticated, an HTTP request is an unidentified facility.
    Facility(Option<String>),
    /// The patient, by the id of their Patient resource.
    Patient(String),
    /// An authenticated member of an organisation: besides the flags, its organisation kind and
    /// role and the patient's consent decide (`consent`).
    Member(crate::consent::Member),
}

impl Default for Viewer {
    /// The safe default: an unidentified facility.
    fn default() -> Self {
        Viewer::Facility(None)
    }
}

impl Viewer {
    /// Whether this viewer may see `resource` (a stored body).
    pub fn may_see(&self, resource: &Value) -> bool {
        let tagged = |system: &str, code: &str| has_tag(resource, system, code);
        let submitted_here = |facility: &Option<String>| {
            facility
                .as_deref()
                .is_some_and(|facility| tagged(SUBMITTER_SYSTEM, facility))
        };
        match self {
            Viewer::Service => true,
            Viewer::Facility(facility) => SUBMITTER_ONLY
                .iter()
                .all(|(system, code)| !tagged(system, code) || submitted_here(facility)),
            Viewer::Patient(_) => PATIENT_NEVER
                .iter()
                .all(|(system, code)| !tagged(system, code)),
            Viewer::Member(member) => {
                let institution = &member.institution;
                let addressed_here = institution
                    .as_deref()
                    .is_some_and(|institution| tagged(DESTINATION_SYSTEM, institution));
                // A referral letter also reaches its destination (consent is checked after this,
                // for everything that is not the member's own).
                (!tagged(FLAG_SYSTEM, UNDELIVERED) || submitted_here(institution))
                    && (!tagged(REFERRAL_SYSTEM, PENDING)
                        || submitted_here(institution)
                        || addressed_here)
                    && (!tagged(RECORD_SYSTEM, SUBMISSION) || submitted_here(institution))
            }
        }
    }

    /// Adds this viewer's rules to a search, as conditions the store evaluates (so totals and
    /// paging count only what the viewer sees).
    pub fn restrict(&self, query: &mut SearchQuery) {
        let not_tagged = |system: &str, code: &str| Condition::Not(Box::new(tag_is(system, code)));
        match self {
            Viewer::Service => {}
            Viewer::Facility(facility) => {
                for (system, code) in SUBMITTER_ONLY {
                    let mut group = vec![not_tagged(system, code)];
                    if let Some(facility) = facility {
                        group.push(tag_is(SUBMITTER_SYSTEM, facility));
                    }
                    query.filters.push(group);
                }
            }
            Viewer::Patient(_) => {
                for (system, code) in PATIENT_NEVER {
                    query.filters.push(vec![not_tagged(system, code)]);
                }
            }
            Viewer::Member(member) => {
                for (system, code) in SUBMITTER_ONLY {
                    let mut group = vec![not_tagged(system, code)];
                    if let Some(institution) = &member.institution {
                        group.push(tag_is(SUBMITTER_SYSTEM, institution));
                        if system == REFERRAL_SYSTEM {
                            group.push(tag_is(DESTINATION_SYSTEM, institution));
                        }
                    }
                    query.filters.push(group);
                }
            }
        }
    }
}

/// Tags that only the submitting facility's eyes may see, among facilities.
const SUBMITTER_ONLY: [(&str, &str); 3] = [
    (FLAG_SYSTEM, UNDELIVERED),
    (REFERRAL_SYSTEM, PENDING),
    (RECORD_SYSTEM, SUBMISSION),
];

/// Tags the patient never sees.
const PATIENT_NEVER: [(&str, &str); 3] = [
    (FLAG_SYSTEM, UNDELIVERED),
    (FLAG_SYSTEM, UNINFORMED),
    (RECORD_SYSTEM, SUBMISSION),
];

/// The tag systems only the service writes.
const RESERVED_SYSTEMS: [&str; 6] = [
    SUBMISSION_SYSTEM,
    SUBMITTER_SYSTEM,
    REFERRAL_SYSTEM,
    DESTINATION_SYSTEM,
    RECORD_SYSTEM,
    PERSON_SYSTEM,
];

/// An issue when a client's resource carries a tag of a system only the service writes (it would
/// forge provenance, or a state that decides who sees it).
pub(crate) fn reserved_tag(resource: &Value) -> Option<fhir::Issue> {
    let tags = resource.pointer("/meta/tag").and_then(Value::as_array)?;
    tags.iter()
        .position(|tag| {
            tag.get("system")
                .and_then(Value::as_str)
                .is_some_and(|system| RESERVED_SYSTEMS.contains(&system))
        })
        .map(|index| {
            fhir::Issue::error(
                fhir::IssueCode::Security,
                Some(format!("meta.tag[{index}]")),
                "this tag system is written by tsunagu only (submission provenance and state); \
                 submitted data changes through a resubmission",
            )
        })
}

/// `_tag=system|code`.
pub(crate) fn tag_is(system: &str, code: &str) -> Condition {
    Condition::Match {
        param: "_tag".to_owned(),
        test: ValueTest::Token {
            system: TokenSystem::Is(system.to_owned()),
            code: Some(code.to_owned()),
        },
    }
}

/// Whether `resource.meta.tag` holds `system|code`.
pub fn has_tag(resource: &Value, system: &str, code: &str) -> bool {
    tag_codes(resource, system).any(|found| found == code)
}

/// The codes of `resource.meta.tag` in `system`.
pub fn tag_codes<'r>(resource: &'r Value, system: &'r str) -> impl Iterator<Item = &'r str> {
    resource
        .pointer("/meta/tag")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(move |tag| tag.get("system").and_then(Value::as_str) == Some(system))
        .filter_map(|tag| tag.get("code").and_then(Value::as_str))
}

#[cfg(test)]
mod tests;
