//! The interpreter of derived profile rules, on small hand-made resources.

use serde_json::json;

use super::*;

fn issues_for(profile_url: &str, resource: &Value) -> Vec<(String, String)> {
    let profiles = Profiles::get();
    let profile = profiles.profile(profile_url).expect("profile compiled in");
    let mut issues = Vec::new();
    profiles.check(profile, resource, "Condition", &mut issues);
    issues
        .into_iter()
        .map(|issue| (issue.expression.unwrap_or_default(), issue.diagnostics))
        .collect()
}

const CONDITION: &str = "http://jpfhir.jp/fhir/eCS/StructureDefinition/JP_Condition_eCS";

#[test]
fn the_packages_profiles_are_compiled_in_with_version_suffixes_ignored() {
    let profiles = Profiles::get();
    let condition = profiles.profile(&format!("{CONDITION}|1")).unwrap();
    assert_eq!(condition.resource_type, "Condition");
    assert_eq!(condition.name, "JP_Condition_eCS");
    assert!(
        profiles
            .profile("http://example.org/StructureDefinition/Other")
            .is_none()
    );
}

#[test]
fn a_missing_required_slice_names_the_element_and_the_system() {
    let condition = json!({
        "resourceType": "Condition",
        "code": {"coding": [{"system": "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/ICD10-2013-full", "code": "C169", "display": "胃癌"}], "text": "胃癌"}
    });
    let issues = issues_for(CONDITION, &condition);
    assert!(
        issues.contains(&(
            "Condition.code.coding".to_owned(),
            "JP_Condition_eCS requires at least 1 element with system http://medis.or.jp/CodeSystem/master-disease-keyNumber (slice medisRecordNo)".to_owned()
        )),
        "{issues:?}"
    );
}

#[test]
fn cardinality_applies_within_each_parent_and_reports_indices() {
    let condition = json!({
        "resourceType": "Condition",
        "code": {"coding": [
            {"system": "http://medis.or.jp/CodeSystem/master-disease-keyNumber", "code": "20054178", "display": "胃癌"},
            {"system": "http://medis.or.jp/CodeSystem/master-disease-keyNumber", "display": "胃癌"}
        ]}
    });
    let issues = issues_for(CONDITION, &condition);
    // The second MEDIS coding lacks its code (slice child min 1), the CodeableConcept its text.
    assert!(
        issues.contains(&(
            "Condition.code.coding[1].code".to_owned(),
            "JP_Condition_eCS requires at least 1 of this element (profile cardinality)".to_owned()
        )),
        "{issues:?}"
    );
    assert!(
        issues.contains(&(
            "Condition.code.text".to_owned(),
            "JP_Condition_eCS requires at least 1 of this element (profile cardinality)".to_owned()
        )),
        "{issues:?}"
    );
    assert!(
        !issues
            .iter()
            .any(|(path, _)| path == "Condition.code.coding[0].code")
    );
}

#[test]
fn max_cardinality_fixed_values_and_bindings_are_enforced() {
    let profiles = Profiles::get();
    let request = profiles
        .profile("http://jpfhir.jp/fhir/eCS/StructureDefinition/JP_MedicationRequest_eCS")
        .unwrap();
    let resource = json!({
        "resourceType": "MedicationRequest",
        "status": "active",
        "meta": {"tag": [{"system": "http://example.org/tags", "code": "X"}]},
        "medicationCodeableConcept": {"coding": [
            {"system": "http://capstandard.jp/iyaku.info/CodeSystem/YJ-code", "code": "2316009F1022", "display": "a"},
            {"system": "http://capstandard.jp/iyaku.info/CodeSystem/YJ-code", "code": "2456001F1310", "display": "b"}
        ], "text": "x"}
    });
    let mut issues = Vec::new();
    profiles.check(request, &resource, "MedicationRequest", &mut issues);
    let shown: Vec<String> = issues
        .iter()
        .map(|issue| {
            format!(
                "{} {}",
                issue.expression.as_deref().unwrap_or_default(),
                issue.diagnostics
            )
        })
        .collect();
    for expected in [
        "MedicationRequest.status JP_MedicationRequest_eCS fixes this element to `completed`",
        "MedicationRequest.medicationCodeableConcept.coding JP_MedicationRequest_eCS allows at most 1 element with system http://capstandard.jp/iyaku.info/CodeSystem/YJ-code (slice codingYJ)",
        "MedicationRequest.meta.tag[0] JP_MedicationRequest_eCS requires a code from the value set http://jpfhir.jp/fhir/clins/ValueSet/JP_ehrshrs_indication (required binding)",
    ] {
        assert!(
            shown.iter().any(|line| line == expected),
            "{expected}\n{shown:#?}"
        );
    }
}

#[test]
fn codes_of_compiled_code_systems_are_checked_anywhere() {
    let observation = json!({"resourceType": "Observation", "code": {"coding": [
        {"system": "http://jpfhir.jp/fhir/clins/CodeSystem/JLAC10/JP_CLINS_ObsLabResult_CoreLabo_CS", "code": "3A015000001827101"},
        {"system": "http://jpfhir.jp/fhir/clins/CodeSystem/JLAC10/JP_CLINS_ObsLabResult_CoreLabo_CS", "code": "3A015000009999999"},
        {"system": "http://jpfhir.jp/fhir/clins/CodeSystem/JLAC10/JP_CLINS_ObsLabResult_CoreLabo_CS", "code": "ALB"}
    ]}});
    let mut issues = Vec::new();
    Profiles::get().check_codings(&observation, "Observation", &mut issues);
    let paths: Vec<&str> = issues
        .iter()
        .filter_map(|i| i.expression.as_deref())
        .collect();
    assert_eq!(
        paths,
        [
            "Observation.code.coding[1].code",
            "Observation.code.coding[2].code"
        ]
    );
}

#[test]
fn choice_elements_match_any_type_suffix() {
    let node = Node {
        value: &json!({"effectiveDateTime": "2021", "effective": 1, "effectivePeriod": {}}),
        location: "Observation".to_owned(),
    };
    let found: Vec<String> = children(&node, "effective[x]")
        .into_iter()
        .map(|n| n.location)
        .collect();
    assert_eq!(
        found,
        [
            "Observation.effectiveDateTime",
            "Observation.effectivePeriod"
        ]
    );
}
