//! What a valid JP-CLINS submission is: a collection Bundle of one of the information items, or a
//! document Bundle of one of the four documents, checked and summarised as a [`Submission`].
//!
//! Rules come from `JP_Bundle_CLINS` (invariants R0211–R9014, cited by key), the document Bundle and
//! Composition profiles, and the guide's prose (「６情報」送信仕様). Each issue names the element.

use std::collections::HashSet;

use fhir::{Issue, IssueCode};
use serde_json::Value;

use crate::ids::{
    self, BUNDLE_IDENTIFIER_SYSTEM, BundleIdentifier, FacilityPatientId, INSURED_PERSON_SYSTEM,
    InsuredPersonId, PUBLIC_PAYER_SYSTEM, PublicPayerId,
};
use crate::profile::{Profiles, canonical_url};
use crate::resource::{
    DEPARTMENT_EXTENSION, INSTITUTION_NUMBER_EXTENSION, check_resource, declared_profiles,
    declares, profiles,
};

/// The largest request body the service accepts (JP-CLINS: 10 MB per upload). The caller enforces it
/// on the raw body before parsing; [`validate_submission`] only sees parsed JSON.
pub const MAX_SUBMISSION_BYTES: usize = 10 * 1024 * 1024;

/// `meta.tag.system` that declares the resource type of a collection submission.
pub const BUNDLE_RESOURCE_TYPE_SYSTEM: &str =
    "http://jpfhir.jp/fhir/clins/CodeSystem/BundleResourceType_CS";

/// Canonical URLs of the Bundle profiles a submission declares.
pub mod bundle_profiles {
    /// The 6-information collection Bundle.
    pub const CLINS: &str = "http://jpfhir.jp/fhir/clins/StructureDefinition/JP_Bundle_CLINS";
    /// 診療情報提供書.
    pub const REFERRAL: &str =
        "http://jpfhir.jp/fhir/clins/StructureDefinition/JP_Bundle_eReferral";
    /// 退院時サマリー.
    pub const DISCHARGE_SUMMARY: &str =
        "http://jpfhir.jp/fhir/clins/StructureDefinition/JP_Bundle_eDischargeSummary";
    /// 健康診断結果報告書 (the CLINS variant; the eCheckup guide's own URL is not a CLINS submission).
    pub const CHECKUP_GENERAL: &str =
        "http://jpfhir.jp/fhir/clins/StructureDefinition/JP_Bundle_eCheckupGeneral";
    /// 患者サマリー.
    pub const PATIENT_SUMMARY: &str =
        "http://jpfhir.jp/fhir/clins/StructureDefinition/JP_Bundle_ePCS";
    /// The eCheckup guide's own Bundle profile, used outside CLINS.
    pub const CHECKUP_GENERAL_NON_CLINS: &str =
        "http://jpfhir.jp/fhir/eCheckup/StructureDefinition/JP_Bundle_eCheckupGeneral";
}

/// What a valid submission is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// A collection of one information item, or a document.
    pub kind: SubmissionKind,
    /// `Bundle.identifier` for system `http://jpfhir.jp/fhir/clins/bundle-identifier`: the unit of
    /// replacement.
    pub identifier: BundleIdentifier,
    /// Who the submission is about, from its Patient entry.
    pub patient: PatientKeys,
    /// A collection holding only the Patient entry: withdraw the submission with this identifier.
    pub withdrawal: bool,
}

/// The two shapes of submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmissionKind {
    /// A `collection` Bundle (`JP_Bundle_CLINS`) of one information item.
    Collection {
        /// The resource type declared in `Bundle.meta.tag` (BundleResourceType).
        item: InformationItem,
    },
    /// A `document` Bundle.
    Document {
        /// Which document.
        kind: DocumentKind,
    },
}

/// The resource type of a collection submission (`Bundle.meta.tag` of system BundleResourceType_CS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InformationItem {
    /// 傷病名.
    Condition,
    /// アレルギー, 薬剤禁忌.
    AllergyIntolerance,
    /// 検査, 感染症.
    Observation,
}

impl InformationItem {
    /// The FHIR resource type, which is also the tag code.
    pub fn resource_type(self) -> &'static str {
        match self {
            InformationItem::Condition => "Condition",
            InformationItem::AllergyIntolerance => "AllergyIntolerance",
            InformationItem::Observation => "Observation",
        }
    }

    /// The eCS profile each entry of this item declares.
    pub fn profile(self) -> &'static str {
        match self {
            InformationItem::Condition => profiles::CONDITION,
            InformationItem::AllergyIntolerance => profiles::ALLERGY_INTOLERANCE,
            InformationItem::Observation => profiles::OBSERVATION_LAB_RESULT,
        }
    }
}

/// The documents a `document` submission can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentKind {
    /// 診療情報提供書, Composition type 57133-1.
    Referral,
    /// 退院時サマリー, Composition type 18842-5.
    DischargeSummary,
    /// 健康診断結果報告書, Composition type 53576-5 (eCheckup) or JPGCHKUP01 (CLINS doc-typecodes).
    CheckupGeneral,
    /// 患者サマリー (療養計画書), Composition type 56447-6.
    PatientSummary,
}

impl DocumentKind {
    /// The Bundle profile of this document.
    pub fn bundle_profile(self) -> &'static str {
        match self {
            DocumentKind::Referral => bundle_profiles::REFERRAL,
            DocumentKind::DischargeSummary => bundle_profiles::DISCHARGE_SUMMARY,
            DocumentKind::CheckupGeneral => bundle_profiles::CHECKUP_GENERAL,
            DocumentKind::PatientSummary => bundle_profiles::PATIENT_SUMMARY,
        }
    }

    /// The Composition profile of this document.
    pub fn composition_profile(self) -> &'static str {
        match self {
            DocumentKind::Referral => {
                "http://jpfhir.jp/fhir/eReferral/StructureDefinition/JP_Composition_eReferral"
            }
            DocumentKind::DischargeSummary => {
                "http://jpfhir.jp/fhir/eDischargeSummary/StructureDefinition/JP_Composition_eDischargeSummary"
            }
            DocumentKind::CheckupGeneral => {
                "http://jpfhir.jp/fhir/eCheckup/StructureDefinition/JP_Composition_eCheckupGeneral"
            }
            DocumentKind::PatientSummary => {
                "http://jpfhir.jp/fhir/ePCS/StructureDefinition/JP_Composition_ePCS"
            }
        }
    }

    /// The `Composition.type` codes (system `http://jpfhir.jp/fhir/Common/CodeSystem/doc-typecodes`).
    pub fn type_codes(self) -> &'static [&'static str] {
        match self {
            DocumentKind::Referral => &["57133-1"],
            DocumentKind::DischargeSummary => &["18842-5"],
            DocumentKind::CheckupGeneral => &["53576-5", "JPGCHKUP01"],
            DocumentKind::PatientSummary => &["56447-6"],
        }
    }

    fn from_bundle_profile(url: &str) -> Option<DocumentKind> {
        [
            DocumentKind::Referral,
            DocumentKind::DischargeSummary,
            DocumentKind::CheckupGeneral,
            DocumentKind::PatientSummary,
        ]
        .into_iter()
        .find(|kind| kind.bundle_profile() == url)
    }
}

/// Who a submission is about, from its Patient entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientKeys {
    /// The insured-person identifier, canonical (exactly one of this and `public_payer` is set).
    pub insured: Option<InsuredPersonId>,
    /// The public-assistance recipient identifier, canonical.
    pub public_payer: Option<PublicPayerId>,
    /// The facility's own patient ids (`urn:oid:1.2.392.100495.20.3.51.1<facility10>`), at most one per
    /// the profile.
    pub facility_ids: Vec<FacilityPatientId>,
}

/// Validates a parsed submission Bundle against the JP-CLINS rules that matter for safety.
///
/// # Errors
/// Every issue found (all of severity `error`), each naming the element, when the Bundle is not a valid
/// submission.
pub fn validate_submission(bundle: &Value) -> Result<Submission, Vec<Issue>> {
    let mut issues = Vec::new();
    if bundle["resourceType"].as_str() != Some("Bundle") {
        issues.push(Issue::error(
            IssueCode::Invalid,
            Some("Bundle".to_owned()),
            "a submission is a Bundle resource",
        ));
        return Err(issues);
    }
    let identifier = bundle_identifier(bundle, &mut issues);
    let entries = entries(bundle, &mut issues);
    let outcome = match bundle["type"].as_str() {
        Some("collection") => collection(bundle, &entries, &mut issues),
        Some("document") => document(bundle, &entries, &mut issues),
        _ => {
            issues.push(Issue::error(
                IssueCode::Value,
                Some("Bundle.type".to_owned()),
                "a submission is a `collection` Bundle (information items) or a `document` Bundle \
                 (referral, discharge summary, checkup, patient summary)",
            ));
            None
        }
    };
    match (outcome, identifier) {
        (Some((kind, patient, withdrawal)), Some(identifier)) if issues.is_empty() => {
            Ok(Submission {
                kind,
                identifier,
                patient,
                withdrawal,
            })
        }
        _ => {
            if issues.is_empty() {
                // Defensive: a rejection always says why.
                issues.push(Issue::error(
                    IssueCode::Invalid,
                    Some("Bundle".to_owned()),
                    "the Bundle is not a valid JP-CLINS submission",
                ));
            }
            Err(issues)
        }
    }
}

/// An entry's resource and where it is.
struct Entry<'a> {
    resource: &'a Value,
    location: String,
    resource_type: &'a str,
}

/// Entries with their resources; checks what every entry of a submission must satisfy.
fn entries<'a>(bundle: &'a Value, issues: &mut Vec<Issue>) -> Vec<Entry<'a>> {
    let Some(items) = bundle["entry"].as_array().filter(|items| !items.is_empty()) else {
        issues.push(Issue::error(
            IssueCode::Required,
            Some("Bundle.entry".to_owned()),
            "a submission needs at least one entry",
        ));
        return Vec::new();
    };
    let mut full_urls = HashSet::new();
    let mut entries = Vec::new();
    for (index, entry) in items.iter().enumerate() {
        let location = format!("Bundle.entry[{index}]");
        match entry["fullUrl"].as_str() {
            Some(full_url) if !full_urls.insert(full_url) => issues.push(Issue::error(
                IssueCode::Duplicate,
                Some(format!("{location}.fullUrl")),
                "fullUrl must be unique within the Bundle (bdl-7)",
            )),
            Some(_) => {}
            None => issues.push(Issue::error(
                IssueCode::Required,
                Some(format!("{location}.fullUrl")),
                "every entry needs a fullUrl (a fresh urn:uuid)",
            )),
        }
        for forbidden in ["request", "response", "search"] {
            if entry.get(forbidden).is_some() {
                issues.push(Issue::error(
                    IssueCode::Invalid,
                    Some(format!("{location}.{forbidden}")),
                    "a submission's entries carry no request, response or search",
                ));
            }
        }
        let resource = &entry["resource"];
        let Some(resource_type) = resource["resourceType"].as_str() else {
            issues.push(Issue::error(
                IssueCode::Required,
                Some(format!("{location}.resource")),
                "every entry needs a resource",
            ));
            continue;
        };
        let location = format!("{location}.resource");
        if declared_profiles(resource).next().is_none() {
            issues.push(Issue::error(
                IssueCode::Required,
                Some(format!("{location}.meta.profile")),
                "every resource of a submission declares its profile in meta.profile",
            ));
        }
        entries.push(Entry {
            resource,
            location,
            resource_type,
        });
    }
    entries
}

/// `Bundle.identifier`: system `bundle-identifier` and a value `facility10^YYYY^local-id` (R02151,
/// R2152).
fn bundle_identifier(bundle: &Value, issues: &mut Vec<Issue>) -> Option<BundleIdentifier> {
    let identifier = &bundle["identifier"];
    if identifier.is_null() {
        issues.push(Issue::error(
            IssueCode::Required,
            Some("Bundle.identifier".to_owned()),
            "a submission needs Bundle.identifier (system http://jpfhir.jp/fhir/clins/bundle-identifier)",
        ));
        return None;
    }
    if identifier["system"].as_str() != Some(BUNDLE_IDENTIFIER_SYSTEM) {
        issues.push(Issue::error(
            IssueCode::Value,
            Some("Bundle.identifier.system".to_owned()),
            "R02151: the Bundle identifier system must be http://jpfhir.jp/fhir/clins/bundle-identifier",
        ));
        return None;
    }
    let Some(value) = identifier["value"].as_str() else {
        issues.push(Issue::error(
            IssueCode::Required,
            Some("Bundle.identifier.value".to_owned()),
            "R2152: the Bundle identifier needs a value facility10^YYYY^local-id",
        ));
        return None;
    };
    match ids::bundle_identifier(value) {
        Ok(parsed) => Some(parsed),
        Err(error) => {
            issues.push(Issue::error(
                IssueCode::Value,
                Some("Bundle.identifier.value".to_owned()),
                format!("R2152: {error}"),
            ));
            None
        }
    }
}

type Outcome = Option<(SubmissionKind, PatientKeys, bool)>;

/// A `JP_Bundle_CLINS` collection.
fn collection(bundle: &Value, entries: &[Entry], issues: &mut Vec<Issue>) -> Outcome {
    if !declares(bundle, bundle_profiles::CLINS) {
        issues.push(Issue::error(
            IssueCode::Invalid,
            Some("Bundle.meta.profile".to_owned()),
            "R0213: a collection submission declares the profile JP_Bundle_CLINS",
        ));
    }
    check_bundle_profile(bundle, bundle_profiles::CLINS, issues);
    let item = declared_item(bundle, issues);

    let patient = match entries.first() {
        Some(first) if first.resource_type == "Patient" => {
            if !declares(first.resource, profiles::PATIENT) {
                issues.push(Issue::error(
                    IssueCode::Invalid,
                    Some(format!("{}.meta.profile", first.location)),
                    "R0212: the Patient entry declares the profile JP_Patient_eCS",
                ));
            }
            check_resource(first.resource, &first.location, issues);
            patient_keys(first.resource)
        }
        Some(first) => {
            issues.push(Issue::error(
                IssueCode::Invalid,
                Some(first.location.clone()),
                "R0211: the first entry of a collection submission is the Patient",
            ));
            None
        }
        None => None,
    };

    for entry in entries.iter().skip(1) {
        single_type_rule(entry, item, issues);
    }
    let withdrawal = entries.len() == 1;
    if let Some(item) = item {
        for entry in entries.iter().skip(1) {
            if entry.resource_type == item.resource_type() {
                collection_entry_rules(entry, item, issues);
            }
        }
    }
    Some((
        SubmissionKind::Collection { item: item? },
        patient?,
        withdrawal,
    ))
}

/// The BundleResourceType tag: exactly one, and one of the three information items (R02141, R02142).
fn declared_item(bundle: &Value, issues: &mut Vec<Issue>) -> Option<InformationItem> {
    let tags: Vec<(usize, &Value)> = bundle["meta"]["tag"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, tag)| tag["system"].as_str() == Some(BUNDLE_RESOURCE_TYPE_SYSTEM))
        .collect();
    let [(index, tag)] = tags.as_slice() else {
        issues.push(Issue::error(
            if tags.is_empty() {
                IssueCode::Required
            } else {
                IssueCode::Invalid
            },
            Some("Bundle.meta.tag".to_owned()),
            "R02141: a collection submission declares exactly one resource type in Bundle.meta.tag \
             (system BundleResourceType_CS)",
        ));
        return None;
    };
    let item = match tag["code"].as_str() {
        Some("Condition") => Some(InformationItem::Condition),
        Some("AllergyIntolerance") => Some(InformationItem::AllergyIntolerance),
        Some("Observation") => Some(InformationItem::Observation),
        _ => None,
    };
    if item.is_none() {
        issues.push(Issue::error(
            IssueCode::CodeInvalid,
            Some(format!("Bundle.meta.tag[{index}].code")),
            "R02142: the declared resource type is Condition, AllergyIntolerance or Observation \
             (prescriptions travel only inside documents)",
        ));
    }
    item
}

/// Every entry after the Patient is of the declared type; Encounter, Practitioner, Specimen and
/// ServiceRequest travel only as contained resources (「ひとつのBundleリソースに格納できるデータ」).
fn single_type_rule(entry: &Entry, item: Option<InformationItem>, issues: &mut Vec<Issue>) {
    let Some(item) = item else {
        return;
    };
    if entry.resource_type == item.resource_type() {
        return;
    }
    let message = match entry.resource_type {
        "Encounter" | "Practitioner" | "Specimen" | "ServiceRequest" => format!(
            "{} {} travels only as a contained resource of the {} it belongs to",
            article(entry.resource_type),
            entry.resource_type,
            item.resource_type()
        ),
        "Patient" => {
            "a collection submission holds exactly one Patient, the first entry".to_owned()
        }
        _ => format!(
            "single-type rule: this submission declares {} in Bundle.meta.tag, so every entry after \
             the Patient is {} {}",
            item.resource_type(),
            article(item.resource_type()),
            item.resource_type()
        ),
    };
    issues.push(Issue::error(
        IssueCode::Invalid,
        Some(entry.location.clone()),
        message,
    ));
}

/// The `JP_Bundle_CLINS` invariants on each information-item entry: its profile (validEntryProfile-*),
/// institution number (R9011/R9012), department (R9014C/O), contained Encounter (R9013C/O), onset
/// (R9013C), then its own profile's rules.
fn collection_entry_rules(entry: &Entry, item: InformationItem, issues: &mut Vec<Issue>) {
    let resource = entry.resource;
    if !declares(resource, item.profile()) {
        issues.push(Issue::error(
            IssueCode::Invalid,
            Some(format!("{}.meta.profile", entry.location)),
            format!(
                "{} {} entry declares the profile {}",
                article(item.resource_type()),
                item.resource_type(),
                item.profile().rsplit('/').next().unwrap_or_default()
            ),
        ));
    }
    let has_extension = |url: &str| {
        resource["extension"]
            .as_array()
            .is_some_and(|extensions| extensions.iter().any(|e| e["url"].as_str() == Some(url)))
    };
    if !has_extension(INSTITUTION_NUMBER_EXTENSION) {
        issues.push(Issue::error(
            IssueCode::Required,
            Some(format!("{}.extension", entry.location)),
            "R9011: every resource after the Patient carries the institution number extension \
             (JP_eCS_InstitutionNumber)",
        ));
    }
    if matches!(
        item,
        InformationItem::Condition | InformationItem::Observation
    ) {
        if !has_extension(DEPARTMENT_EXTENSION) {
            issues.push(Issue::error(
                IssueCode::Required,
                Some(format!("{}.extension", entry.location)),
                "R9014: every Condition and Observation carries the department extension \
                 (JP_eCS_Department)",
            ));
        }
        let contained_encounter = resource["contained"].as_array().is_some_and(|contained| {
            contained.iter().any(|c| {
                c["resourceType"].as_str() == Some("Encounter")
                    && declares(
                        c,
                        "http://jpfhir.jp/fhir/core/StructureDefinition/JP_Encounter",
                    )
            })
        });
        if !contained_encounter {
            issues.push(Issue::error(
                IssueCode::Required,
                Some(format!("{}.contained", entry.location)),
                "R9013: every Condition and Observation contains its Encounter (profile JP_Encounter)",
            ));
        }
    }
    if item == InformationItem::Condition && resource.get("onsetDateTime").is_none() {
        issues.push(Issue::error(
            IssueCode::Required,
            Some(format!("{}.onsetDateTime", entry.location)),
            "R9013C: every Condition states its onset as onsetDateTime",
        ));
    }
    check_resource(resource, &entry.location, issues);
}

/// A document Bundle of one of the four documents.
fn document(bundle: &Value, entries: &[Entry], issues: &mut Vec<Issue>) -> Outcome {
    let kinds: Vec<DocumentKind> = declared_profiles(bundle)
        .filter_map(|url| DocumentKind::from_bundle_profile(canonical_url(url)))
        .collect();
    let kind = match kinds.as_slice() {
        [kind] => Some(*kind),
        _ => {
            let hint = if declares(bundle, bundle_profiles::CHECKUP_GENERAL_NON_CLINS) {
                " (the eCheckup guide's own profile URL is not a CLINS submission: declare \
                 http://jpfhir.jp/fhir/clins/StructureDefinition/JP_Bundle_eCheckupGeneral)"
            } else {
                ""
            };
            issues.push(Issue::error(
                IssueCode::Invalid,
                Some("Bundle.meta.profile".to_owned()),
                format!(
                    "a document submission declares exactly one of JP_Bundle_eReferral, \
                     JP_Bundle_eDischargeSummary, JP_Bundle_eCheckupGeneral, JP_Bundle_ePCS{hint}"
                ),
            ));
            None
        }
    };
    if let Some(kind) = kind {
        check_bundle_profile(bundle, kind.bundle_profile(), issues);
    }
    if bundle["timestamp"].is_null() {
        issues.push(Issue::error(
            IssueCode::Required,
            Some("Bundle.timestamp".to_owned()),
            "a document needs a timestamp (bdl-10)",
        ));
    }

    let composition = entries
        .first()
        .filter(|first| first.resource_type == "Composition");
    match (composition, kind) {
        (None, _) => issues.push(Issue::error(
            IssueCode::Invalid,
            Some("Bundle.entry[0].resource".to_owned()),
            "the first entry of a document is its Composition (bdl-11)",
        )),
        (Some(composition), Some(kind)) => composition_rules(composition, kind, issues),
        (Some(_), None) => {}
    }

    let patients: Vec<&Entry> = entries
        .iter()
        .filter(|entry| entry.resource_type == "Patient")
        .collect();
    let patient = match patients.as_slice() {
        [patient] => {
            if !declares(patient.resource, profiles::PATIENT) {
                issues.push(Issue::error(
                    IssueCode::Invalid,
                    Some(format!("{}.meta.profile", patient.location)),
                    "the Patient of a document declares the profile JP_Patient_eCS",
                ));
            }
            if let Some(composition) = composition {
                let subject = composition.resource["subject"]["reference"].as_str();
                let full_url = bundle["entry"]
                    .as_array()
                    .and_then(|items| {
                        items
                            .iter()
                            .find(|item| std::ptr::eq(&item["resource"], patient.resource))
                    })
                    .and_then(|item| item["fullUrl"].as_str());
                if subject.is_none() || subject != full_url {
                    issues.push(Issue::error(
                        IssueCode::Invalid,
                        Some(format!("{}.subject.reference", composition.location)),
                        "the Composition's subject refers to the document's Patient entry by its fullUrl",
                    ));
                }
            }
            patient_keys(patient.resource)
        }
        _ => {
            issues.push(Issue::error(
                IssueCode::Invalid,
                Some("Bundle.entry".to_owned()),
                "a document holds exactly one Patient entry",
            ));
            None
        }
    };

    for entry in entries.iter().skip(1) {
        check_resource(entry.resource, &entry.location, issues);
    }
    Some((SubmissionKind::Document { kind: kind? }, patient?, false))
}

/// The Composition of a document: its profile, type code and profile rules.
fn composition_rules(composition: &Entry, kind: DocumentKind, issues: &mut Vec<Issue>) {
    let resource = composition.resource;
    if !declares(resource, kind.composition_profile()) {
        issues.push(Issue::error(
            IssueCode::Invalid,
            Some(format!("{}.meta.profile", composition.location)),
            format!(
                "the Composition declares the profile {}",
                kind.composition_profile()
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
            ),
        ));
    }
    let type_matches = resource["type"]["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|coding| {
            coding["system"].as_str()
                == Some("http://jpfhir.jp/fhir/Common/CodeSystem/doc-typecodes")
                && coding["code"]
                    .as_str()
                    .is_some_and(|code| kind.type_codes().contains(&code))
        });
    if !type_matches {
        issues.push(Issue::error(
            IssueCode::CodeInvalid,
            Some(format!("{}.type.coding", composition.location)),
            format!(
                "the Composition type (system doc-typecodes) of this document is {}",
                kind.type_codes().join(" or ")
            ),
        ));
    }
    let compiled = Profiles::get();
    // The Composition's own profile rules apply whatever it declares: the Bundle profile says which.
    if let Some(profile) = compiled.profile(kind.composition_profile()) {
        compiled.check(profile, resource, &composition.location, issues);
    }
}

/// The derived rules of the Bundle profile itself (cardinalities, fixed type and identifier system).
fn check_bundle_profile(bundle: &Value, url: &str, issues: &mut Vec<Issue>) {
    let compiled = Profiles::get();
    if let Some(profile) = compiled.profile(url) {
        let mut found = Vec::new();
        compiled.check(profile, bundle, "Bundle", &mut found);
        // Identifier issues are reported once, by the bundle identifier check.
        found.retain(|issue| {
            !issue
                .expression
                .as_deref()
                .is_some_and(|expression| expression.starts_with("Bundle.identifier"))
        });
        issues.extend(found);
    }
}

/// "a" or "an" before a resource type name.
fn article(word: &str) -> &'static str {
    if word.starts_with(['A', 'E', 'I', 'O', 'U']) {
        "an"
    } else {
        "a"
    }
}

/// The national and facility keys of a Patient (its validity is checked by the profile rules).
fn patient_keys(patient: &Value) -> Option<PatientKeys> {
    let mut keys = PatientKeys {
        insured: None,
        public_payer: None,
        facility_ids: Vec::new(),
    };
    for identifier in patient["identifier"].as_array().into_iter().flatten() {
        let (Some(system), Some(value)) =
            (identifier["system"].as_str(), identifier["value"].as_str())
        else {
            continue;
        };
        match system {
            INSURED_PERSON_SYSTEM => keys.insured = ids::insured_person_id(value).ok(),
            PUBLIC_PAYER_SYSTEM => keys.public_payer = ids::public_payer_id(value).ok(),
            _ => {
                if let Ok(Some(facility)) = ids::facility_of_patient_id_system(system) {
                    keys.facility_ids.push(FacilityPatientId {
                        facility,
                        value: value.to_owned(),
                    });
                }
            }
        }
    }
    (keys.insured.is_some() != keys.public_payer.is_some()).then_some(keys)
}

#[cfg(test)]
mod tests;
