//! `Patient/{id}/$summary` and `Patient/{id}/$emergency-summary`: document Bundles built from the
//! patient's JP-CLINS information items, through the same searches (and so the same visibility
//! rules) as any other read.
//!
//! * `$summary` has the International Patient Summary's shape: a Composition (LOINC 60591-5) with
//!   the sections problems (11450-4: each diagnosis once, the most recently recorded record of it),
//!   allergies and intolerances (48765-2: each once, drug contraindications included), medications (10160-0: the
//!   MedicationRequests of the last 100 days, else the latest 3) and results (30954-2: the latest
//!   laboratory Observation of each code).
//! * `$emergency-summary` is the emergency data set (救急時医療情報): diagnoses, allergies and
//!   contraindications, current medications (the last 100 days), recent laboratory results (the
//!   latest of each code within a year), and infection results (the JP-CLINS infection lab codes,
//!   latest of each code, whatever their age).
//!
//! Entries are the Composition, the Patient, then each resource once, `fullUrl` under `base`.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{Value, json};
use store::{StoredResource, Timestamp};

use crate::{App, AppError, SearchInput, new_id};

/// LOINC.
const LOINC: &str = "http://loinc.org";
/// The JP-CLINS JLAC10 infection-lab code system: results coded in it are infection results.
pub const INFECTION_CODE_SYSTEM: &str =
    "http://jpfhir.jp/fhir/clins/CodeSystem/JLAC10/JP_CLINS_ObsLabResult_InfectionLabo_CS";
/// "Current" medications: prescribed within this many days.
const CURRENT_MEDICATION_DAYS: i64 = 100;
/// "Recent" laboratory results for the emergency data set: within this many days.
const RECENT_LAB_DAYS: i64 = 365;
/// Most resources read for one section.
const SECTION_LIMIT: &str = "200";

/// Which summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryKind {
    /// `$summary`: the patient summary (IPS shape).
    Patient,
    /// `$emergency-summary`: the emergency data set.
    Emergency,
}

struct Section {
    title: &'static str,
    code: (&'static str, &'static str, &'static str),
    resources: Vec<StoredResource>,
}

impl App {
    /// The summary document of a patient at time `now`, with `fullUrl`s under `base` (e.g.
    /// `https://host/fhir`).
    ///
    /// # Errors
    /// As [`App::summary_json`].
    pub async fn summary(
        &self,
        kind: SummaryKind,
        patient_id: &str,
        base: &str,
        now: Timestamp,
    ) -> Result<Value, AppError> {
        let text = self.summary_json(kind, patient_id, base, now).await?;
        serde_json::from_str(&text).map_err(|error| AppError::Internal(Box::new(error)))
    }

    /// [`App::summary`] as JSON text, with every resource's stored JSON spliced in as it is (what
    /// the server sends: no resource is parsed or serialised again).
    ///
    /// # Errors
    /// `NotFound` for a patient that does not exist or that this viewer may not see;
    /// `Unavailable`.
    pub async fn summary_json(
        &self,
        kind: SummaryKind,
        patient_id: &str,
        base: &str,
        now: Timestamp,
    ) -> Result<String, AppError> {
        // An emergency window opens the emergency data set, and only it, as a consent would.
        if kind == SummaryKind::Emergency
            && let crate::Viewer::Member(member) = self.viewer()
            && !self
                .consented(patient_id, &member.organisation, now)
                .await?
            && self.emergency_window(member, patient_id, now).await?
        {
            let window = App {
                consents: Arc::default(),
                ..self.clone()
            };
            window.consents.grant_for_request(patient_id);
            window.ledger.emergency();
            return window.summary_for(kind, patient_id, base, now).await;
        }
        self.summary_for(kind, patient_id, base, now).await
    }

    async fn summary_for(
        &self,
        kind: SummaryKind,
        patient_id: &str,
        base: &str,
        now: Timestamp,
    ) -> Result<String, AppError> {
        let patient = self.read("Patient", patient_id).await?;
        let day = 86_400_000_000_i64;
        let since = |days: i64| iso_date(Timestamp(now.0 - days * day));
        let conditions = self
            .section_search(patient_id, "Condition", &[("_sort", "-recorded-date")])
            .await?;
        let allergies = self
            .section_search(patient_id, "AllergyIntolerance", &[("_sort", "-date")])
            .await?;
        let mut medications = self
            .section_search(
                patient_id,
                "MedicationRequest",
                &[
                    ("_sort", "-authoredon"),
                    (
                        "authoredon",
                        &format!("ge{}", since(CURRENT_MEDICATION_DAYS)),
                    ),
                ],
            )
            .await?;
        if kind == SummaryKind::Patient && medications.is_empty() {
            medications = self
                .section_search(
                    patient_id,
                    "MedicationRequest",
                    &[("_sort", "-authoredon"), ("_count", "3")],
                )
                .await?;
        }
        let labs = match kind {
            SummaryKind::Patient => {
                self.section_search(
                    patient_id,
                    "Observation",
                    &[("category", "laboratory"), ("_sort", "-date")],
                )
                .await?
            }
            SummaryKind::Emergency => {
                self.section_search(
                    patient_id,
                    "Observation",
                    &[
                        ("category", "laboratory"),
                        ("_sort", "-date"),
                        ("date", &format!("ge{}", since(RECENT_LAB_DAYS))),
                    ],
                )
                .await?
            }
        };
        let mut sections = match kind {
            SummaryKind::Patient => vec![
                Section {
                    title: "Problems",
                    code: (LOINC, "11450-4", "Problem list - Reported"),
                    resources: latest_per_code(conditions),
                },
                Section {
                    title: "Allergies and Intolerances",
                    code: (LOINC, "48765-2", "Allergies and adverse reactions Document"),
                    resources: latest_per_code(allergies),
                },
                Section {
                    title: "Medication",
                    code: (LOINC, "10160-0", "History of Medication use Narrative"),
                    resources: medications,
                },
                Section {
                    title: "Results",
                    code: (
                        LOINC,
                        "30954-2",
                        "Relevant diagnostic tests/laboratory data Narrative",
                    ),
                    resources: latest_per_code(labs),
                },
            ],
            SummaryKind::Emergency => {
                let infections = self
                    .section_search(
                        patient_id,
                        "Observation",
                        &[
                            ("code", &format!("{INFECTION_CODE_SYSTEM}|")),
                            ("_sort", "-date"),
                        ],
                    )
                    .await?;
                vec![
                    Section {
                        title: "傷病名 Diagnoses",
                        code: (LOINC, "11450-4", "Problem list - Reported"),
                        resources: latest_per_code(conditions),
                    },
                    Section {
                        title: "アレルギー・薬剤禁忌 Allergies and contraindications",
                        code: (LOINC, "48765-2", "Allergies and adverse reactions Document"),
                        resources: latest_per_code(allergies),
                    },
                    Section {
                        title: "処方 Current medications",
                        code: (LOINC, "10160-0", "History of Medication use Narrative"),
                        resources: medications,
                    },
                    Section {
                        title: "検査 Recent laboratory results",
                        code: (
                            LOINC,
                            "30954-2",
                            "Relevant diagnostic tests/laboratory data Narrative",
                        ),
                        resources: latest_per_code(labs),
                    },
                    Section {
                        title: "感染症 Infection results",
                        code: (LOINC, "18725-2", "Microbiology studies (set)"),
                        resources: latest_per_code(infections),
                    },
                ]
            }
        };
        Ok(document(kind, &patient, &mut sections, base, now))
    }

    /// One section's resources: a compartment search of the patient, with this viewer's rules.
    async fn section_search(
        &self,
        patient_id: &str,
        resource_type: &str,
        params: &[(&str, &str)],
    ) -> Result<Vec<StoredResource>, AppError> {
        let mut pairs: Vec<(String, String)> = params
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        if !pairs.iter().any(|(name, _)| name == "_count") {
            pairs.push(("_count".into(), SECTION_LIMIT.into()));
        }
        let input = SearchInput {
            types: vec![resource_type.to_owned()],
            compartment: Some(patient_id.to_owned()),
            params: pairs,
            strict: true,
        };
        Ok(self.search(&input).await?.page.matches)
    }
}

/// The first (newest, given the sort) resource of each `code`: a resource is left out when one of
/// its codings (system|code), or its code text when it has no coding, belongs to a resource kept
/// before it (the same diagnosis sent in a collection and again in a referral letter counts once).
fn latest_per_code(resources: Vec<StoredResource>) -> Vec<StoredResource> {
    let mut seen: HashSet<String> = HashSet::new();
    resources
        .into_iter()
        .filter(|resource| {
            // Only `code` is read: the rest of the body is skipped, not built.
            let code = serde_json::from_str::<Coded>(&resource.json)
                .ok()
                .and_then(|coded| coded.code);
            let mut keys: Vec<String> = code
                .iter()
                .flat_map(|code| code.coding.iter())
                .filter_map(|coding| {
                    let code = coding.code.as_deref()?;
                    let system = coding.system.as_deref().unwrap_or_default();
                    Some(format!("{system}|{code}"))
                })
                .collect();
            if keys.is_empty() {
                keys.push(code.and_then(|code| code.text).map_or_else(
                    || format!("id:{}", resource.id),
                    |text| format!("text:{text}"),
                ));
            }
            if keys.iter().any(|key| seen.contains(key)) {
                return false;
            }
            seen.extend(keys);
            true
        })
        .collect()
}

/// The `code` of a stored resource (a CodeableConcept in every type a section reads).
#[derive(serde::Deserialize)]
struct Coded {
    #[serde(default)]
    code: Option<Concept>,
}

#[derive(serde::Deserialize)]
struct Concept {
    #[serde(default)]
    coding: Vec<Coding>,
    #[serde(default)]
    text: Option<String>,
}

#[derive(serde::Deserialize)]
struct Coding {
    #[serde(default)]
    system: Option<String>,
    #[serde(default)]
    code: Option<String>,
}

/// Assembles the document Bundle as JSON text.
fn document(
    kind: SummaryKind,
    patient: &StoredResource,
    sections: &mut [Section],
    base: &str,
    now: Timestamp,
) -> String {
    let base = base.trim_end_matches('/');
    let full_url =
        |resource: &StoredResource| format!("{base}/{}/{}", resource.resource_type, resource.id);
    let reference = |resource: &StoredResource| json!({"reference": format!("{}/{}", resource.resource_type, resource.id)});
    let (type_coding, title) = match kind {
        SummaryKind::Patient => (
            json!({"system": LOINC, "code": "60591-5", "display": "Patient summary Document"}),
            "Patient summary",
        ),
        SummaryKind::Emergency => (
            json!({"system": "https://tsunagu.jp/fhir/CodeSystem/document-type", "code": "emergency-summary", "display": "救急時医療情報"}),
            "救急時医療情報 Emergency summary",
        ),
    };
    let instant = now.to_fhir_instant();
    let composition = json!({
        "resourceType": "Composition",
        "id": new_id(),
        "status": "final",
        "type": {"coding": [type_coding]},
        "subject": reference(patient),
        "date": instant,
        "author": [{"display": "tsunagu"}],
        "title": title,
        "section": sections.iter().map(|section| {
            let mut value = json!({
                "title": section.title,
                "code": {"coding": [{"system": section.code.0, "code": section.code.1, "display": section.code.2}]},
            });
            if section.resources.is_empty() {
                value["emptyReason"] = json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/list-empty-reason", "code": "unavailable"}]});
            } else {
                value["entry"] = Value::Array(section.resources.iter().map(reference).collect());
            }
            value
        }).collect::<Vec<_>>(),
    });
    let composition_url = format!(
        "urn:uuid:{}",
        composition["id"].as_str().unwrap_or_default()
    );
    let head = json!({
        "resourceType": "Bundle",
        "id": new_id(),
        "identifier": {"system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{}", new_id())},
        "type": "document",
        "timestamp": instant,
    });
    let resources: Vec<&StoredResource> = {
        let mut seen = HashSet::new();
        std::iter::once(patient)
            .chain(sections.iter().flat_map(|section| section.resources.iter()))
            .filter(|resource| seen.insert((&resource.resource_type, &resource.id)))
            .collect()
    };
    let composition = composition.to_string();
    let mut text = head.to_string();
    text.reserve(
        composition.len()
            + resources
                .iter()
                .map(|resource| resource.json.len() + base.len() + 64)
                .sum::<usize>(),
    );
    // `{...}` without its closing brace, then the entries.
    text.pop();
    text.push_str(",\"entry\":[");
    let mut entry = |full_url: &str, resource: &str| {
        if !text.ends_with('[') {
            text.push(',');
        }
        text.push_str("{\"fullUrl\":");
        text.push_str(&Value::from(full_url).to_string());
        text.push_str(",\"resource\":");
        // Stored JSON is one compact JSON object (a deleted version, never summarised, is empty).
        text.push_str(if resource.is_empty() {
            "null"
        } else {
            resource
        });
        text.push('}');
    };
    entry(&composition_url, &composition);
    for resource in resources {
        entry(&full_url(resource), &resource.json);
    }
    text.push_str("]}");
    text
}

/// `YYYY-MM-DD` of a timestamp (UTC).
fn iso_date(at: Timestamp) -> String {
    at.to_fhir_instant().chars().take(10).collect()
}

#[cfg(test)]
mod tests {
    use store::{StoredResource, Timestamp};

    use super::latest_per_code;

    fn stored(id: &str, json: &str) -> StoredResource {
        StoredResource {
            resource_type: "Condition".into(),
            id: id.into(),
            version: 1,
            last_updated: Timestamp(0),
            deleted: false,
            json: json.into(),
        }
    }

    #[test]
    fn each_code_is_kept_once_the_first_time_it_comes() {
        let kept = latest_per_code(vec![
            stored(
                "a",
                r#"{"resourceType":"Condition","code":{"coding":[{"system":"s","code":"1"},{"system":"t","code":"9"}]},"note":[{"text":"x"}]}"#,
            ),
            // Shares t|9 with the first: the same diagnosis sent again.
            stored("b", r#"{"code":{"coding":[{"system":"t","code":"9"}]}}"#),
            // The same code in another system is another code.
            stored("c", r#"{"code":{"coding":[{"system":"u","code":"1"}]}}"#),
            // Without a system.
            stored("d", r#"{"code":{"coding":[{"code":"1"}]}}"#),
            stored("e", r#"{"code":{"coding":[{"code":"1"}]}}"#),
            // Text only: kept once per text.
            stored("f", r#"{"code":{"text":"頭痛"}}"#),
            stored(
                "g",
                r#"{"code":{"coding":[{"display":"no code"}],"text":"頭痛"}}"#,
            ),
            // Neither: each is its own.
            stored("h", r#"{"resourceType":"Condition"}"#),
            stored("i", r#"{"code":"not a concept"}"#),
        ]);
        let ids: Vec<&str> = kept.iter().map(|resource| resource.id.as_str()).collect();
        assert_eq!(ids, ["a", "c", "d", "f", "h", "i"]);
    }
}
