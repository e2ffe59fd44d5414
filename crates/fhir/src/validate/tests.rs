//! Tests for `validate`: the official examples pass, and each rule reports what and where, never a value.

use std::path::Path;

use expect_test::{Expect, expect};
use serde_json::{Value, json};

use super::*;
use crate::parse_json;

/// Validates `resource` and compares the issues, one per line, with `expect`. Also checks that no
/// diagnostics or expression quotes a string value of the resource.
fn check(resource: Value, expect: Expect) {
    let issues = validate_resource(&resource);
    let mut values = Vec::new();
    string_values(&resource, &mut values);
    for issue in &issues {
        for value in &values {
            let quoted = issue.diagnostics.contains(value.as_str())
                || issue
                    .expression
                    .as_deref()
                    .is_some_and(|expression| expression.contains(value.as_str()));
            assert!(!quoted, "{issue:?} quotes a value of the resource");
        }
    }
    let rendered: Vec<String> = issues
        .iter()
        .map(|issue| {
            let expression = issue.expression.as_deref().unwrap_or("-");
            format!(
                "{} {} {expression}: {}",
                issue.severity.as_str(),
                issue.code.as_str(),
                issue.diagnostics
            )
        })
        .collect();
    expect.assert_eq(&rendered.join("\n"));
}

/// The string values of `value` that look like data: `resourceType` values and codes are names.
fn string_values(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::String(text) if text.len() >= 6 && text.contains("secret") => {
            into.push(text.clone())
        }
        Value::Array(items) => items.iter().for_each(|item| string_values(item, into)),
        Value::Object(object) => object.values().for_each(|item| string_values(item, into)),
        _ => {}
    }
}

fn fixture_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/r4-examples")
}

#[test]
fn official_r4_examples_are_valid() {
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(fixture_dir())
        .expect("fixtures/r4-examples exists")
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .collect();
    paths.sort();
    for path in paths {
        let bytes = std::fs::read(&path).expect("readable fixture");
        let resource = parse_json(&bytes).expect("fixture is JSON");
        for issue in validate_resource(&resource) {
            failures.push(format!("{}: {issue:?}", path.display()));
        }
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} examples found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn minimal_resources_are_valid() {
    check(json!({ "resourceType": "Patient" }), expect![""]);
    check(
        json!({ "resourceType": "Basic", "id": "a-1.b", "code": { "text": "secret" } }),
        expect![""],
    );
}

#[test]
fn unknown_elements_are_named() {
    check(
        json!({ "resourceType": "Patient", "nmae": [{ "family": "secret-family" }], "name": [{ "famly": "secret" }] }),
        expect![[r#"
            error structure Patient.nmae: unknown element `nmae`
            error structure Patient.name[0].famly: unknown element `famly`"#]],
    );
}

#[test]
fn long_unknown_element_names_are_cut_short() {
    let name = "x".repeat(100);
    let issues = validate_resource(&json!({ "resourceType": "Patient", name.clone(): true }));
    assert_eq!(issues.len(), 1);
    assert!(!issues[0].diagnostics.contains(&name));
    assert!(issues[0].diagnostics.contains(&"x".repeat(64)));
}

#[test]
fn wrong_json_types() {
    check(
        json!({
            "resourceType": "Patient",
            "active": "true",
            "birthDate": 19700101,
            "name": { "family": "secret-family" },
            "telecom": [{ "rank": "1" }],
            "contact": ["secret-contact"],
            "photo": [{ "data": false }],
            "multipleBirthInteger": 2.5,
        }),
        expect![[r#"
            error structure Patient.active: expected a JSON boolean (FHIR `boolean`), found a string
            error structure Patient.birthDate: expected a JSON string (FHIR `date`), found a number
            error structure Patient.name: expected an array, found an object
            error structure Patient.telecom[0].rank: expected a JSON number (FHIR `positiveInt`), found a string
            error structure Patient.contact[0]: expected an object, found a string
            error structure Patient.photo[0].data: expected a JSON string (FHIR `base64Binary`), found a boolean
            error value Patient.multipleBirthInteger: value does not match the format of `integer`"#]],
    );
}

#[test]
fn primitive_formats() {
    check(
        json!({
            "resourceType": "Observation",
            "status": "final",
            "code": { "coding": [{ "system": "secret system", "code": "secret  code" }] },
            "effectiveDateTime": "2020-02-30T10:00:00",
            "issued": "2020-01-01",
            "valueTime": "25:00:00",
        }),
        expect![[r#"
            error value Observation.code.coding[0].system: value does not match the format of `uri`
            error value Observation.code.coding[0].code: value does not match the format of `code`
            error value Observation.effectiveDateTime: value does not match the format of `dateTime`
            error value Observation.issued: value does not match the format of `instant`
            error value Observation.valueTime: value does not match the format of `time`"#]],
    );
}

#[test]
fn bad_dates() {
    check(
        json!({ "resourceType": "Patient", "birthDate": "1970-13-01" }),
        expect!["error value Patient.birthDate: value does not match the format of `date`"],
    );
    check(
        json!({ "resourceType": "Patient", "birthDate": "secret 1970" }),
        expect!["error value Patient.birthDate: value does not match the format of `date`"],
    );
    check(
        json!({ "resourceType": "Patient", "birthDate": "1970" }),
        expect![""],
    );
    check(
        json!({ "resourceType": "Patient", "birthDate": "1970-01" }),
        expect![""],
    );
}

#[test]
fn codes_from_required_value_sets() {
    check(
        json!({ "resourceType": "Patient", "gender": "secret-gender", "link": [{ "other": {}, "type": "secret" }] }),
        expect![[r#"
            error code-invalid Patient.gender: value is not one of the allowed codes (`male`, `female`, `other`, `unknown`)
            error structure Patient.link[0].other: an empty object is not allowed
            error code-invalid Patient.link[0].type: value is not one of the allowed codes (`replaced-by`, `replaces`, `refer`, `seealso`)"#]],
    );
    check(
        json!({ "resourceType": "Observation", "status": 1, "code": { "text": "x" } }),
        expect![
            "error structure Observation.status: expected a JSON string (FHIR `code`), found a number"
        ],
    );
}

#[test]
fn large_value_sets_are_not_listed() {
    check(
        json!({
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": { "text": "x" },
            "subject": { "reference": "Patient/1" },
            "dosageInstruction": [{ "timing": { "repeat": { "when": ["MORN", "secret-when"] } } }],
        }),
        expect![
            "error code-invalid MedicationRequest.dosageInstruction[0].timing.repeat.when[1]: value is not one of the 26 allowed codes"
        ],
    );
}

#[test]
fn resource_ids() {
    check(
        json!({ "resourceType": "Patient", "id": "secret_id" }),
        expect!["error value Patient.id: value does not match the format of `id`"],
    );
    check(
        json!({ "resourceType": "Patient", "id": "a".repeat(65) }),
        expect!["error value Patient.id: value does not match the format of `id`"],
    );
    check(
        json!({ "resourceType": "Patient", "id": "A-1.z".to_owned() + &"9".repeat(59) }),
        expect![""],
    );
    // `Element.id` is a plain string: any non-empty text.
    check(
        json!({ "resourceType": "Patient", "name": [{ "id": "secret id", "text": "x" }] }),
        expect![""],
    );
}

#[test]
fn empty_values_are_not_allowed() {
    check(
        json!({
            "resourceType": "Patient",
            "name": [{ "family": "", "given": [] }],
            "maritalStatus": {},
            "identifier": [{}],
            "text": { "status": "generated", "div": "" },
        }),
        expect![[r#"
            error value Patient.name[0].family: an empty string is not allowed
            error structure Patient.name[0].given: an empty array is not allowed
            error structure Patient.maritalStatus: an empty object is not allowed
            error structure Patient.identifier[0]: an empty object is not allowed
            error value Patient.text.div: an empty string is not allowed"#]],
    );
}

#[test]
fn strings_may_hold_any_text_but_not_more_than_a_megabyte() {
    // Japanese names are separated by an ideographic space (U+3000), which FHIR's `\s` does not cover.
    check(
        json!({ "resourceType": "Patient", "name": [{ "text": "山田　太郎", "family": "山田" }], "gender": "male" }),
        expect![""],
    );
    check(
        json!({ "resourceType": "Patient", "name": [{ "text": "line one\r\n\tline two " }] }),
        expect![""],
    );
    let long = "secret".repeat(200_000);
    check(
        json!({ "resourceType": "Patient", "name": [{ "text": long }] }),
        expect!["error too-long Patient.name[0].text: a `string` may not be longer than 1 MB"],
    );
}

#[test]
fn only_one_variant_of_a_choice() {
    check(
        json!({ "resourceType": "Patient", "deceasedBoolean": true, "deceasedDateTime": "2020-01-01" }),
        expect![
            "error structure Patient: only one variant of `deceased[x]` is allowed, found `deceasedBoolean`, `deceasedDateTime`"
        ],
    );
    check(
        json!({ "resourceType": "Patient", "deceasedBoolean": true, "_deceasedDateTime": { "id": "x" } }),
        expect![
            "error structure Patient: only one variant of `deceased[x]` is allowed, found `deceasedBoolean`, `deceasedDateTime`"
        ],
    );
    // A variant with its own primitive extension is still one variant.
    check(
        json!({ "resourceType": "Patient", "deceasedBoolean": true, "_deceasedBoolean": { "id": "x" } }),
        expect![""],
    );
    check(
        json!({ "resourceType": "Patient", "_deceasedBoolean": { "id": "x" }, "deceasedBoolean": true }),
        expect![""],
    );
    check(
        json!({ "resourceType": "Patient", "extension": [{ "url": "http://example.org", "valueString": "secret", "valueCode": "secret-code", "valueInteger": 1 }] }),
        expect![
            "error structure Patient.extension[0]: only one variant of `value[x]` is allowed, found `valueCode`, `valueInteger`, `valueString`"
        ],
    );
}

#[test]
fn mandatory_elements() {
    check(
        json!({ "resourceType": "Observation", "valueString": "secret" }),
        expect![[r#"
            error required Observation: missing required element `status`
            error required Observation: missing required element `code`"#]],
    );
    check(
        json!({ "resourceType": "Patient", "extension": [{ "valueString": "secret" }], "link": [{ "type": "seealso" }] }),
        expect![[r#"
            error required Patient.extension[0]: missing required element `url`
            error required Patient.link[0]: missing required element `other`"#]],
    );
    // A mandatory primitive may be present as its extension only (a data-absent reason).
    check(
        json!({
            "resourceType": "Observation",
            "_status": { "extension": [{ "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown" }] },
            "code": { "text": "x" },
        }),
        expect![""],
    );
    // A mandatory choice is satisfied by any variant.
    check(
        json!({ "resourceType": "Observation", "status": "final", "code": { "text": "x" },
                "component": [{ "code": { "text": "y" }, "valueQuantity": { "value": 1 } }] }),
        expect![""],
    );
    check(
        json!({ "resourceType": "Condition", "subject": { "reference": "Patient/1" },
                "evidence": [{ "detail": [{ "reference": "Observation/1" }] }] }),
        expect![""],
    );
    check(
        json!({ "resourceType": "RiskAssessment", "status": "final", "subject": { "reference": "Patient/1" },
                "prediction": [{ "probabilityDecimal": 0.5 }] }),
        expect![""],
    );
    check(
        json!({ "resourceType": "Goal", "lifecycleStatus": "active", "subject": { "reference": "Patient/1" } }),
        expect!["error required Goal: missing required element `description`"],
    );
    check(
        json!({ "resourceType": "MedicationRequest", "status": "active", "intent": "order", "subject": { "reference": "Patient/1" } }),
        expect!["error required MedicationRequest: missing required element `medication[x]`"],
    );
}

#[test]
fn primitive_extensions() {
    check(
        json!({
            "resourceType": "Patient",
            "birthDate": "1970-01-01",
            "_birthDate": { "id": "b", "extension": [{ "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "1970-01-01T10:00:00+09:00" }] },
            "name": [{ "given": ["secret-a", null, "secret-c"], "_given": [null, { "extension": [{ "url": "http://example.org", "valueCode": "x" }] }, null] }],
        }),
        expect![""],
    );
    // Only the extension, no value.
    check(
        json!({ "resourceType": "Patient", "_birthDate": { "id": "b" } }),
        expect![""],
    );
    check(
        json!({
            "resourceType": "Patient",
            "_birthDate": { "url": "secret" },
            "_gender": {},
            "name": [
                { "given": ["secret", null] },
                { "given": ["secret", null], "_given": [null, null] },
                { "given": ["secret"], "_given": [null, { "id": "x" }] },
                { "_given": [null] },
            ],
            "_active": [{ "id": "x" }],
        }),
        expect![[r#"
            error structure Patient._birthDate.url: unknown element `url`
            error structure Patient._gender: an empty object is not allowed
            error structure Patient.name[0].given[1]: null is only allowed in an array of primitives whose `_` sibling has a value at the same position
            error structure Patient.name[1].given[1]: null is only allowed in an array of primitives whose `_` sibling has a value at the same position
            error structure Patient.name[1]._given[1]: null is only allowed in an array of primitives whose `_` sibling has a value at the same position
            error structure Patient.name[2]._given: `_given` must have as many entries as `given`
            error structure Patient.name[3]._given[0]: null is only allowed in an array of primitives whose `_` sibling has a value at the same position
            error structure Patient._active: expected an object, found an array"#]],
    );
}

#[test]
fn nulls_are_not_values() {
    check(
        json!({ "resourceType": "Patient", "birthDate": null, "name": null, "contact": [null] }),
        expect![[r#"
            error structure Patient.birthDate: expected a JSON string (FHIR `date`), found null
            error structure Patient.name: expected an array, found null
            error structure Patient.contact[0]: null is only allowed in an array of primitives whose `_` sibling has a value at the same position"#]],
    );
}

#[test]
fn resource_types() {
    check(
        json!({ "resourceType": "Patinet", "name": "secret" }),
        expect!["error structure resourceType: unknown resource type"],
    );
    // Medplum's own resource types are in the upstream schema, but are not R4.
    check(
        json!({ "resourceType": "Project" }),
        expect!["error structure resourceType: unknown resource type"],
    );
    check(
        json!({ "resourceType": ["Patient"] }),
        expect!["error structure resourceType: `resourceType` must be a string, found an array"],
    );
    check(
        json!({ "name": [] }),
        expect!["error required -: missing required element `resourceType`"],
    );
    check(
        json!(["secret"]),
        expect!["error structure -: expected a resource (a JSON object), found an array"],
    );
    check(
        json!({ "resourceType": "Patient", "meta": { "versionId": "1", "project": "secret" } }),
        expect!["error structure Patient.meta.project: unknown element `project`"],
    );
}

#[test]
fn contained_resources_are_validated_by_their_own_type() {
    check(
        json!({
            "resourceType": "Patient",
            "contained": [
                { "resourceType": "Organization", "id": "org", "name": "secret", "active": "yes" },
                { "resourceType": "Practitioner", "id": "pr", "gender": "secret" },
                { "resourceType": "Secret" },
                { "id": "no-type" },
            ],
            "managingOrganization": { "reference": "#org" },
        }),
        expect![[r#"
            error structure Patient.contained[0].ofType(Organization).active: expected a JSON boolean (FHIR `boolean`), found a string
            error code-invalid Patient.contained[1].ofType(Practitioner).gender: value is not one of the allowed codes (`male`, `female`, `other`, `unknown`)
            error structure Patient.contained[2].resourceType: unknown resource type
            error required Patient.contained[3]: missing required element `resourceType`"#]],
    );
}

#[test]
fn bundle_entries_and_parameters_are_validated_by_their_own_type() {
    check(
        json!({
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                { "fullUrl": "urn:uuid:9c2b8c4e-54e6-4bc0-8d0b-1a5f4bd0bb59", "resource": { "resourceType": "Patient" } },
                { "resource": { "resourceType": "Observation", "status": "final", "code": { "text": "x" }, "valueQuantity": { "value": "secret" } } },
                { "resource": { "resourceType": "Bundle", "type": "collection", "entry": [{ "resource": { "resourceType": "Patient", "gender": "secret" } }] } },
            ],
        }),
        expect![[r#"
            error structure Bundle.entry[1].resource.ofType(Observation).valueQuantity.value: expected a JSON number (FHIR `decimal`), found a string
            error code-invalid Bundle.entry[2].resource.ofType(Bundle).entry[0].resource.ofType(Patient).gender: value is not one of the allowed codes (`male`, `female`, `other`, `unknown`)"#]],
    );
    check(
        json!({
            "resourceType": "Parameters",
            "parameter": [
                { "name": "resource", "resource": { "resourceType": "Patient", "secret": true } },
                { "name": "count", "valueInteger": 2 },
            ],
        }),
        expect![
            "error structure Parameters.parameter[0].resource.ofType(Patient).secret: unknown element `secret`"
        ],
    );
}

#[test]
fn numbers_are_checked_on_their_exact_text() {
    let observation = |value: &str| {
        let text = format!(
            r#"{{"resourceType":"Observation","status":"final","code":{{"text":"x"}},"valueQuantity":{{"value":{value}}},"component":[{{"code":{{"text":"y"}},"valueInteger":{value}}}]}}"#
        );
        parse_json(text.as_bytes()).expect("valid JSON")
    };
    check(observation("1"), expect![""]);
    check(observation("-0"), expect![""]);
    check(
        observation("1.50"),
        expect![
            "error value Observation.component[0].valueInteger: value does not match the format of `integer`"
        ],
    );
    check(
        observation("1e3"),
        expect![
            "error value Observation.component[0].valueInteger: value does not match the format of `integer`"
        ],
    );
    check(
        observation("2147483648"),
        expect![
            "error value Observation.component[0].valueInteger: value is out of range for `integer`"
        ],
    );
    check(observation("-2147483648"), expect![""]);
    check(
        observation("123456789012345678901234567890"),
        expect![
            "error value Observation.component[0].valueInteger: value is out of range for `integer`"
        ],
    );
    check(
        json!({ "resourceType": "Patient", "telecom": [{ "rank": 0 }, { "rank": 1 }], "multipleBirthInteger": -1 }),
        expect![
            "error value Patient.telecom[0].rank: value does not match the format of `positiveInt`"
        ],
    );
    check(
        json!({ "resourceType": "Patient", "photo": [{ "size": -1 }, { "size": 0 }] }),
        expect![
            "error value Patient.photo[0].size: value does not match the format of `unsignedInt`"
        ],
    );
}

#[test]
fn decimals_keep_their_text() {
    let text = r#"{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1.50,"unit":"mg"},"referenceRange":[{"low":{"value":0.000100},"high":{"value":12345678901234567890.10}}]}"#;
    let resource = parse_json(text.as_bytes()).expect("valid JSON");
    check(resource.clone(), expect![""]);
    assert_eq!(
        serde_json::to_string(&resource).expect("serialisable"),
        text
    );
}

#[test]
fn issues_are_capped() {
    let names: Vec<Value> = (0..150).map(|_| json!({ "family": "" })).collect();
    let issues = validate_resource(&json!({ "resourceType": "Patient", "name": names }));
    assert_eq!(issues.len(), 101);
    expect!["more issues were found; only the first 100 are reported"]
        .assert_eq(&issues[100].diagnostics);
    assert_eq!(issues[100].severity, crate::Severity::Warning);
}

#[test]
fn deep_nesting_is_refused() {
    let mut extension = json!({ "url": "http://example.org", "valueString": "x" });
    for _ in 0..300 {
        extension = json!({ "url": "http://example.org", "extension": [extension] });
    }
    let issues = validate_resource(&json!({ "resourceType": "Patient", "extension": [extension] }));
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0].code, IssueCode::TooCostly);
}

#[test]
fn narrative_is_a_string() {
    check(
        json!({ "resourceType": "Patient", "text": { "status": "generated", "div": { "div": "secret" } } }),
        expect![
            "error structure Patient.text.div: expected a JSON string (FHIR `xhtml`), found an object"
        ],
    );
    check(
        json!({ "resourceType": "Patient", "text": { "status": "generated" } }),
        expect!["error required Patient.text: missing required element `div`"],
    );
}
