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
        self.may_see_tagged(|system, code| has_tag(resource, system, code))
    }

    /// [`Viewer::may_see`] of a resource read as [`Marks`].
    pub(crate) fn may_see_marked(&self, marks: &Marks) -> bool {
        self.may_see_tagged(|system, code| marks.has_tag(system, code))
    }

    /// [`Viewer::may_see`] of a resource whose tags `tagged(system, code)` answers for.
    fn may_see_tagged(&self, tagged: impl Fn(&str, &str) -> bool) -> bool {
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

/// What the decision about one stored resource reads of it (`App::permits`): its tags, the
/// patient it belongs to and, for a Patient, the systems of its identifiers. Read from the JSON
/// text with everything else skipped, not built (parsing a 1 KB Patient whole was ~8 µs of a
/// secured read's ~110); a body of another shape than R4's is parsed whole and read the same way.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Marks {
    /// `meta.tag` codings with a string system and code.
    tags: Vec<(String, String)>,
    /// Systems of a Patient's identifiers (empty for other types).
    identifier_systems: Vec<String>,
    /// The patient the resource belongs to (itself for a Patient): `consent::patient_of`.
    pub(crate) patient: Option<String>,
}

impl Marks {
    /// Reads `json`, the stored body of `resource_type/id`.
    ///
    /// # Errors
    /// When `json` is not JSON.
    pub(crate) fn read(
        resource_type: &str,
        id: &str,
        json: &str,
    ) -> Result<Marks, serde_json::Error> {
        match Marks::read_r4(resource_type, id, json) {
            Ok(marks) => Ok(marks),
            Err(_) => Ok(Marks::of_body(
                resource_type,
                id,
                &serde_json::from_str(json)?,
            )),
        }
    }

    /// [`Marks::read`] of a body of R4's shape, decoding only what it reads; an error for any other.
    fn read_r4(resource_type: &str, id: &str, json: &str) -> Result<Marks, serde_json::Error> {
        #[derive(serde::Deserialize)]
        struct Tagged {
            meta: Option<Meta>,
        }
        #[derive(serde::Deserialize)]
        struct Identified {
            meta: Option<Meta>,
            identifier: Option<Vec<Identifier>>,
        }
        #[derive(serde::Deserialize)]
        struct Meta {
            tag: Option<Vec<Coding>>,
        }
        #[derive(serde::Deserialize)]
        struct Coding {
            system: Option<String>,
            code: Option<String>,
        }
        #[derive(serde::Deserialize)]
        struct Identifier {
            system: Option<String>,
        }
        let tags = |meta: Option<Meta>| -> Vec<(String, String)> {
            meta.and_then(|meta| meta.tag)
                .into_iter()
                .flatten()
                .filter_map(|coding| Some((coding.system?, coding.code?)))
                .collect()
        };
        if resource_type == "Patient" {
            serde_json::from_str::<Identified>(json).map(|text| Marks {
                tags: tags(text.meta),
                identifier_systems: text
                    .identifier
                    .into_iter()
                    .flatten()
                    .filter_map(|identifier| identifier.system)
                    .collect(),
                patient: Some(id.to_owned()),
            })
        } else {
            serde_json::from_str::<Tagged>(json).map(|text| Marks {
                tags: tags(text.meta),
                identifier_systems: Vec::new(),
                patient: crate::consent::patient_of_json(resource_type, id, json),
            })
        }
    }

    /// The same, of a parsed body.
    pub(crate) fn of_body(resource_type: &str, id: &str, body: &Value) -> Marks {
        let strings =
            |value: &Value, key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        let list = |pointer: &str| {
            body.pointer(pointer)
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
        };
        Marks {
            tags: list("/meta/tag")
                .iter()
                .filter_map(|tag| Some((strings(tag, "system")?, strings(tag, "code")?)))
                .collect(),
            identifier_systems: if resource_type == "Patient" {
                list("/identifier")
                    .iter()
                    .filter_map(|identifier| strings(identifier, "system"))
                    .collect()
            } else {
                Vec::new()
            },
            patient: crate::consent::patient_of(resource_type, id, body),
        }
    }

    /// Whether a tag of `system` has `code` ([`has_tag`]).
    pub(crate) fn has_tag(&self, system: &str, code: &str) -> bool {
        self.tags.iter().any(|(s, c)| s == system && c == code)
    }

    /// Whether a Patient has an identifier of `system`.
    pub(crate) fn has_identifier_system(&self, system: &str) -> bool {
        self.identifier_systems.iter().any(|s| s == system)
    }
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
