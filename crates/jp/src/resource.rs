//! Checks of one resource against the JP-CLINS (eCS) profile it declares in `meta.profile`.
//!
//! Two layers: the rules derived from the profile's StructureDefinition ([`crate::profile`]), and the
//! hand-written rules that the profiles state as FHIRPath invariants or that the implementation guide
//! states in prose. Each hand-written rule cites its invariant key (R1012…) or the guide's section.

use fhir::{Issue, IssueCode};
use serde_json::Value;

use crate::ids::{self, INSTITUTION_NUMBER_SYSTEM, INSURED_PERSON_SYSTEM, PUBLIC_PAYER_SYSTEM};
use crate::profile::{Node, Profiles, canonical_url, children};

/// Canonical URLs of the profiles this crate checks single resources against.
pub mod profiles {
    /// 患者情報.
    pub const PATIENT: &str = "http://jpfhir.jp/fhir/eCS/StructureDefinition/JP_Patient_eCS";
    /// 傷病名情報.
    pub const CONDITION: &str = "http://jpfhir.jp/fhir/eCS/StructureDefinition/JP_Condition_eCS";
    /// アレルギー情報／薬剤禁忌.
    pub const ALLERGY_INTOLERANCE: &str =
        "http://jpfhir.jp/fhir/eCS/StructureDefinition/JP_AllergyIntolerance_eCS";
    /// 検体検査結果／感染症検体検査結果.
    pub const OBSERVATION_LAB_RESULT: &str =
        "http://jpfhir.jp/fhir/eCS/StructureDefinition/JP_Observation_LabResult_eCS";
    /// 処方情報.
    pub const MEDICATION_REQUEST: &str =
        "http://jpfhir.jp/fhir/eCS/StructureDefinition/JP_MedicationRequest_eCS";
    /// 受診情報.
    pub const ENCOUNTER: &str = "http://jpfhir.jp/fhir/eCS/StructureDefinition/JP_Encounter_eCS";
    /// 医療機関情報.
    pub const ORGANIZATION: &str =
        "http://jpfhir.jp/fhir/eCS/StructureDefinition/JP_Organization_eCS";
    /// 医療者情報.
    pub const PRACTITIONER: &str =
        "http://jpfhir.jp/fhir/eCS/StructureDefinition/JP_Practitioner_eCS";
}

/// `extension.url` of the submitting facility's institution number.
pub const INSTITUTION_NUMBER_EXTENSION: &str =
    "http://jpfhir.jp/fhir/clins/Extension/StructureDefinition/JP_eCS_InstitutionNumber";
/// `extension.url` of the clinical department (診療科).
pub const DEPARTMENT_EXTENSION: &str =
    "http://jpfhir.jp/fhir/eCS/Extension/StructureDefinition/JP_eCS_Department";

/// Lab result coding systems (JP-CLINS「検体検査結果情報における検査項目のコーディング」).
pub mod lab_systems {
    /// (1) 施設固有コード: the facility's own item code; always required.
    pub const LOCAL: &str =
        "http://jpfhir.jp/fhir/clins/CodeSystem/JP_CLINS_ObsLabResult_LocalCode_CS";
    /// (2) 共有項目JLACコード: the 43 core items (臨床検査項目基本コードセット) and infection items, JLAC10/JLAC11.
    pub const SHARED: [&str; 4] = [
        "http://jpfhir.jp/fhir/clins/CodeSystem/JLAC10/JP_CLINS_ObsLabResult_CoreLabo_CS",
        "http://jpfhir.jp/fhir/clins/CodeSystem/JLAC11/JP_CLINS_ObsLabResult_CoreLabo_CS",
        "http://jpfhir.jp/fhir/clins/CodeSystem/JLAC10/JP_CLINS_ObsLabResult_InfectionLabo_CS",
        "http://jpfhir.jp/fhir/clins/CodeSystem/JLAC11/JP_CLINS_ObsLabResult_InfectionLabo_CS",
    ];
    /// (3) 一般項目JLACコード: any JLAC10 code (17 characters), by OID or by MEDIS URL.
    pub const GENERAL_JLAC10: [&str; 2] = [
        "urn:oid:1.2.392.200119.4.504",
        "http://medis.or.jp/CodeSystem/master-JLAC10-17digits",
    ];
    /// (4) 未標準化コード: explicitly uncoded; its only code is seventeen 9s.
    pub const UNCODED: &str =
        "http://jpfhir.jp/fhir/clins/CodeSystem/JP_CLINS_ObsLabResult_Uncoded_CS";
}

/// Medication coding systems accepted by invariant R3010 of `JP_MedicationRequest_eCS`.
pub mod medication_systems {
    /// YJ code (個別医薬品コード).
    pub const YJ: &str = "http://capstandard.jp/iyaku.info/CodeSystem/YJ-code";
    /// 厚労省一般処方名コード (general-name prescription code).
    pub const GENERAL_NAME: &str =
        "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/MedicationGeneralOrderCode";
    /// 標準コードなし (no standard code).
    pub const NO_CODE: &str = "http://jpfhir.jp/fhir/eCS/CodeSystem/MedicationCodeNocoded_CS";
}

/// Checks a single resource against the JP-CLINS profiles named in its `meta.profile`.
///
/// Resources that declare none of the profiles this crate knows (JP Core profiles, other guides) get no
/// JP-CLINS issues: this function does not decide which profile a resource *should* declare; the
/// submission rules do. Structural FHIR validity is `fhir::validate_resource`'s job.
pub fn validate_resource(resource: &Value) -> Vec<Issue> {
    let root = resource["resourceType"]
        .as_str()
        .unwrap_or("Resource")
        .to_owned();
    let mut issues = Vec::new();
    check_resource(resource, &root, &mut issues);
    issues
}

/// [`validate_resource`] for a resource found at `location` (e.g. `Bundle.entry[2].resource`).
pub(crate) fn check_resource(resource: &Value, location: &str, issues: &mut Vec<Issue>) {
    let compiled = Profiles::get();
    let resource_type = resource["resourceType"].as_str().unwrap_or_default();
    let mut any_known = false;
    for url in declared_profiles(resource) {
        let Some(profile) = compiled.profile(url) else {
            continue;
        };
        if profile.resource_type != resource_type {
            issues.push(Issue::error(
                IssueCode::Invalid,
                Some(format!("{location}.meta.profile")),
                format!(
                    "the profile {} is for {} resources",
                    profile.name, profile.resource_type
                ),
            ));
            continue;
        }
        any_known = true;
        compiled.check(profile, resource, location, issues);
        match canonical_url(url) {
            profiles::PATIENT => patient_rules(resource, location, issues),
            profiles::OBSERVATION_LAB_RESULT => lab_result_rules(resource, location, issues),
            profiles::MEDICATION_REQUEST => medication_request_rules(resource, location, issues),
            _ => {}
        }
    }
    if any_known {
        institution_number_extension_rule(resource, location, issues);
        compiled.check_codings(resource, location, issues);
    }
}

/// The `meta.profile` entries of a resource.
pub(crate) fn declared_profiles(resource: &Value) -> impl Iterator<Item = &str> {
    resource["meta"]["profile"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// Whether the resource declares `url` (with or without a `|version`) in `meta.profile`.
pub(crate) fn declares(resource: &Value, url: &str) -> bool {
    declared_profiles(resource).any(|declared| canonical_url(declared) == url)
}

/// `JP_Patient_eCS` invariants R1010, R1012, R1013 (and its public-payer counterpart) and R1113.
fn patient_rules(patient: &Value, location: &str, issues: &mut Vec<Issue>) {
    let identifiers = identifiers(patient, location);
    let national: Vec<&Node> = identifiers
        .iter()
        .filter(|node| {
            matches!(
                node.value["system"].as_str(),
                Some(INSURED_PERSON_SYSTEM | PUBLIC_PAYER_SYSTEM)
            )
        })
        .collect();
    if national.len() != 1 {
        issues.push(Issue::error(
            if national.is_empty() {
                IssueCode::Required
            } else {
                IssueCode::Invalid
            },
            Some(format!("{location}.identifier")),
            "R1012: exactly one insured-person identifier (system JP_Insurance_memberID) or \
             public-assistance recipient identifier (system JP_PublicPayer_memberID) is required",
        ));
    }
    let mut facility_ids = 0;
    for node in &identifiers {
        let system = node.value["system"].as_str().unwrap_or_default();
        let value = node.value["value"].as_str();
        let value_location = format!("{}.value", node.location);
        match system {
            INSURED_PERSON_SYSTEM | PUBLIC_PAYER_SYSTEM => {
                let parsed = match value {
                    None => Err("R1013: the identifier needs a value".to_owned()),
                    Some(value) if system == INSURED_PERSON_SYSTEM => ids::insured_person_id(value)
                        .map(|_| ())
                        .map_err(|error| format!("R1013: {error}")),
                    Some(value) => ids::public_payer_id(value)
                        .map(|_| ())
                        .map_err(|error| format!("R1013: {error}")),
                };
                if let Err(message) = parsed {
                    issues.push(Issue::error(
                        IssueCode::Value,
                        Some(value_location),
                        message,
                    ));
                }
            }
            _ => match ids::facility_of_patient_id_system(system) {
                Ok(None) => {}
                Ok(Some(_)) => {
                    facility_ids += 1;
                    if value.is_none_or(str::is_empty) {
                        issues.push(Issue::error(
                            IssueCode::Required,
                            Some(value_location),
                            "a facility patient id needs a value",
                        ));
                    }
                }
                Err(error) => issues.push(Issue::error(
                    IssueCode::Value,
                    Some(format!("{}.system", node.location)),
                    format!("R1010: {error}"),
                )),
            },
        }
    }
    if facility_ids > 1 {
        issues.push(Issue::error(
            IssueCode::Invalid,
            Some(format!("{location}.identifier")),
            "R1010: at most one facility patient id (system urn:oid:1.2.392.100495.20.3.51.1…) is allowed",
        ));
    }
    let root = Node {
        value: patient,
        location: location.to_owned(),
    };
    for name in children(&root, "name") {
        let represented =
            name.value["extension"]
                .as_array()
                .is_some_and(|extensions| {
                    extensions.iter().any(|extension| {
                extension["url"].as_str()
                    == Some("http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation")
            })
                });
        if represented
            && name.value["text"]
                .as_str()
                .is_some_and(|text| text.contains('\u{3000}'))
        {
            issues.push(Issue::error(
                IssueCode::Value,
                Some(format!("{}.text", name.location)),
                "R1113: kanji and kana names separate family and given name by a half-width space, \
                 never a full-width space",
            ));
        }
    }
}

fn identifiers<'a>(resource: &'a Value, location: &str) -> Vec<Node<'a>> {
    let root = Node {
        value: resource,
        location: location.to_owned(),
    };
    children(&root, "identifier")
}

/// JP-CLINS「検体検査結果情報における検査項目のコーディング」: a local code always, plus a shared JLAC code,
/// a general JLAC10 code or the uncoded code.
fn lab_result_rules(observation: &Value, location: &str, issues: &mut Vec<Issue>) {
    let codings: Vec<&Value> = observation["code"]["coding"]
        .as_array()
        .map(|codings| codings.iter().collect())
        .unwrap_or_default();
    let element = format!("{location}.code.coding");
    let has = |systems: &[&str]| {
        codings
            .iter()
            .any(|coding| systems.contains(&coding["system"].as_str().unwrap_or_default()))
    };
    let locals = codings
        .iter()
        .filter(|coding| coding["system"].as_str() == Some(lab_systems::LOCAL))
        .count();
    if locals == 0 {
        issues.push(Issue::error(
            IssueCode::Required,
            Some(element.clone()),
            "a lab result needs a coding with the facility's own code (system \
             JP_CLINS_ObsLabResult_LocalCode_CS)",
        ));
    } else if locals > 1 {
        issues.push(Issue::error(
            IssueCode::Invalid,
            Some(element.clone()),
            "a lab result has exactly one coding with the facility's own code",
        ));
    }
    let standard = has(&lab_systems::SHARED)
        || has(&lab_systems::GENERAL_JLAC10)
        || has(&[lab_systems::UNCODED]);
    if !standard {
        issues.push(Issue::error(
            IssueCode::Required,
            Some(element),
            "a lab result needs a JLAC10/JLAC11 coding (shared item code or general JLAC10 code) or \
             the uncoded code (system JP_CLINS_ObsLabResult_Uncoded_CS)",
        ));
    }
    let root = Node {
        value: observation,
        location: location.to_owned(),
    };
    for code in children(&root, "code") {
        for coding in children(&code, "coding") {
            let system = coding.value["system"].as_str().unwrap_or_default();
            let Some(value) = coding.value["code"].as_str() else {
                continue;
            };
            let jlac10 =
                lab_systems::GENERAL_JLAC10.contains(&system) || system.contains("/JLAC10/");
            if jlac10 && !(value.len() == 17 && value.bytes().all(|b| b.is_ascii_alphanumeric())) {
                issues.push(Issue::error(
                    IssueCode::Value,
                    Some(format!("{}.code", coding.location)),
                    "a JLAC10 code is 17 half-width letters and digits",
                ));
            }
        }
    }
}

/// Invariant R3010 of `JP_MedicationRequest_eCS` (one YJ, general-name or no-code coding) with the
/// code formats, and R5020/R5021 of `JP_MedicationDosage_eCS` (exactly one usage code system).
fn medication_request_rules(request: &Value, location: &str, issues: &mut Vec<Issue>) {
    let element = format!("{location}.medicationCodeableConcept.coding");
    let codings: Vec<&Value> = request["medicationCodeableConcept"]["coding"]
        .as_array()
        .map(|codings| codings.iter().collect())
        .unwrap_or_default();
    let count = |system: &str| {
        codings
            .iter()
            .filter(|coding| coding["system"].as_str() == Some(system))
            .count()
    };
    let standard = [
        medication_systems::YJ,
        medication_systems::GENERAL_NAME,
        medication_systems::NO_CODE,
    ];
    if !standard.iter().any(|system| count(system) == 1) {
        issues.push(Issue::error(
            IssueCode::Required,
            Some(element.clone()),
            "R3010: the medication needs exactly one coding with a YJ code, a MHLW general-name \
             prescription code or the no-standard-code code",
        ));
    }
    for (index, coding) in codings.iter().enumerate() {
        let code = coding["code"].as_str().unwrap_or_default();
        let well_formed = match coding["system"].as_str() {
            Some(medication_systems::YJ) => is_yj_code(code),
            Some(medication_systems::GENERAL_NAME) => is_general_name_code(code),
            _ => true,
        };
        if !well_formed {
            issues.push(Issue::error(
                IssueCode::Value,
                Some(format!("{element}[{index}].code")),
                "a YJ code is 12 half-width characters (7 digits, a dosage-form letter, then 4 \
                 letters or digits); a general-name code is the first 9 of those followed by ZZZ",
            ));
        }
    }
    let root = Node {
        value: request,
        location: location.to_owned(),
    };
    for dosage in children(&root, "dosageInstruction") {
        let codings: Vec<&Value> = dosage.value["timing"]["code"]["coding"]
            .as_array()
            .map(|codings| codings.iter().collect())
            .unwrap_or_default();
        let mhlw = codings.iter().any(|coding| {
            coding["system"].as_str()
                == Some("http://jpfhir.jp/fhir/core/mhlw/CodeSystem/MedicationUsage_ePrescription")
        });
        let dummy = codings.iter().any(|coding| {
            coding["system"].as_str()
                == Some(
                    "http://jpfhir.jp/fhir/clins/CodeSystem/JP_CLINS_MedicationUsage_Uncoded_CS",
                )
                && coding["code"].as_str() == Some("0X0XXXXXXXXX0000")
        });
        if mhlw == dummy {
            issues.push(Issue::error(
                IssueCode::Invalid,
                Some(format!("{}.timing.code.coding", dosage.location)),
                "R5020/R5021: the usage needs either a MHLW usage code (MedicationUsage_ePrescription) \
                 or the dummy usage code, not both and not neither",
            ));
        }
    }
}

/// 12 characters: 4-digit drug class, 3 digits, a dosage-form letter, then 4 letters or digits.
fn is_yj_code(code: &str) -> bool {
    let bytes = code.as_bytes();
    bytes.len() == 12
        && bytes[..7].iter().all(u8::is_ascii_digit)
        && bytes[7].is_ascii_uppercase()
        && bytes[8..]
            .iter()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

/// The first 9 characters of a drug price code followed by `ZZZ`.
fn is_general_name_code(code: &str) -> bool {
    code.len() == 12 && is_yj_code(code) && code.ends_with("ZZZ")
}

/// `JP_eCS_InstitutionNumber`: when present, its identifier is a valid 10-digit institution number
/// (invariant `valid-value-institutionNumberExtension`).
fn institution_number_extension_rule(resource: &Value, location: &str, issues: &mut Vec<Issue>) {
    let root = Node {
        value: resource,
        location: location.to_owned(),
    };
    for extension in children(&root, "extension") {
        if extension.value["url"].as_str() != Some(INSTITUTION_NUMBER_EXTENSION) {
            continue;
        }
        let identifier = &extension.value["valueIdentifier"];
        let element = format!("{}.valueIdentifier", extension.location);
        if identifier["system"].as_str() != Some(INSTITUTION_NUMBER_SYSTEM) {
            issues.push(Issue::error(
                IssueCode::Value,
                Some(format!("{element}.system")),
                "the institution number extension's identifier system must be \
                 http://jpfhir.jp/fhir/core/IdSystem/insurance-medical-institution-no",
            ));
        }
        let number = identifier["value"].as_str().map(ids::institution_number);
        match number {
            Some(Ok(number)) if number.point_table().may_submit() => {}
            Some(Ok(_)) => issues.push(Issue::error(
                IssueCode::Value,
                Some(format!("{element}.value")),
                "the institution number must be of a medical (1) or dental (3) facility",
            )),
            Some(Err(error)) => issues.push(Issue::error(
                IssueCode::Value,
                Some(format!("{element}.value")),
                error.to_string(),
            )),
            None => issues.push(Issue::error(
                IssueCode::Required,
                Some(format!("{element}.value")),
                "the institution number extension needs a value",
            )),
        }
    }
}

#[cfg(test)]
mod tests;
