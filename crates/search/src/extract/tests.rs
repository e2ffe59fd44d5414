//! Tests of index extraction, mostly on the official R4 examples.

use expect_test::{Expect, expect};
use serde_json::{Value, json};

use crate::Registry;
use crate::test_util::{example, render_entries};

/// Extracts `resource` and renders the entries of the listed parameters (all when empty), in
/// extraction order.
fn check(resource: &Value, params: &[&str], expected: Expect) {
    let resource_type = resource["resourceType"].as_str().expect("resourceType");
    let entries: Vec<_> = Registry::r4()
        .extract(resource_type, resource)
        .into_iter()
        .filter(|entry| {
            let code = entry.param.split(':').next().unwrap_or_default();
            params.is_empty() || params.contains(&code)
        })
        .collect();
    expected.assert_eq(&render_entries(&entries));
}

#[test]
fn observation_example() {
    check(
        &example("Observation-example.json"),
        &[],
        expect![[r#"
            category token http://terminology.hl7.org/CodeSystem/observation-category|vital-signs text="vital signs"
            code token http://loinc.org|29463-7 text="body weight"
            code token http://loinc.org|3141-9 text="body weight measured"
            code token http://snomed.info/sct|27113001 text="body weight"
            code token http://acme.org/devices/clinical-codes|body-weight text="body weight"
            combo-code token http://loinc.org|29463-7 text="body weight"
            combo-code token http://loinc.org|3141-9 text="body weight measured"
            combo-code token http://snomed.info/sct|27113001 text="body weight"
            combo-code token http://acme.org/devices/clinical-codes|body-weight text="body weight"
            combo-value-quantity quantity 185.0 system=http://unitsofmeasure.org code=[lb_av] unit=lbs
            date date 2016-03-28T00:00:00.000000Z .. 2016-03-28T23:59:59.999999Z
            encounter reference Encounter/example
            patient reference Patient/example
            status token -|final
            subject reference Patient/example
            value-quantity quantity 185.0 system=http://unitsofmeasure.org code=[lb_av] unit=lbs"#]],
    );
}

#[test]
fn observation_with_period_identifier_and_performers() {
    check(
        &example("Observation-f001.json"),
        &["date", "identifier", "performer", "value-quantity", "code"],
        expect![[r#"
            code token http://loinc.org|15074-8 text="glucose [moles/volume] in blood"
            date date 2013-04-02T08:30:10.000000Z .. +∞
            identifier token http://www.bmc.nl/zorgportal/identifiers/observations|6323
            performer reference Practitioner/f005
            value-quantity quantity 6.3 system=http://unitsofmeasure.org code=mmol/L unit=mmol/l"#]],
    );
}

#[test]
fn patient_example() {
    check(
        &example("Patient-example.json"),
        &[
            "active",
            "address",
            "address-city",
            "birthdate",
            "deceased",
            "family",
            "gender",
            "given",
            "identifier",
            "name",
            "organization",
            "phone",
            "telecom",
        ],
        expect![[r#"
            active token -|true
            address string "534 erewhon st peasantville, rainbow, vic  3999" exact="534 Erewhon St PeasantVille, Rainbow, Vic  3999"
            address string "534 erewhon st" exact="534 Erewhon St"
            address string "pleasantville" exact="PleasantVille"
            address string "rainbow" exact="Rainbow"
            address string "vic" exact="Vic"
            address string "3999" exact="3999"
            address-city string "pleasantville" exact="PleasantVille"
            birthdate date 1974-12-25T00:00:00.000000Z .. 1974-12-25T23:59:59.999999Z
            deceased token -|false
            family string "chalmers" exact="Chalmers"
            family string "windsor" exact="Windsor"
            gender token -|male
            given string "peter" exact="Peter"
            given string "james" exact="James"
            given string "jim" exact="Jim"
            identifier token urn:oid:1.2.36.146.595.217.0.1|12345
            identifier:of-type token http://terminology.hl7.org/CodeSystem/v2-0203|MR|12345
            name string "chalmers" exact="Chalmers"
            name string "peter" exact="Peter"
            name string "james" exact="James"
            name string "jim" exact="Jim"
            name string "windsor" exact="Windsor"
            organization reference Organization/1
            phone token -|(03) 5555 6473
            phone token -|(03) 3410 5613
            phone token -|(03) 5555 8834
            telecom token -|(03) 5555 6473
            telecom token -|(03) 3410 5613
            telecom token -|(03) 5555 8834"#]],
    );
}

#[test]
fn medication_request_examples() {
    check(
        &example("MedicationRequest-medrx0302.json"),
        &[],
        expect![[r#"
            authoredon date 2015-01-15T00:00:00.000000Z .. 2015-01-15T23:59:59.999999Z
            encounter reference Encounter/f001
            identifier token http://www.bmc.nl/portal/prescriptions|12345689
            intent token -|order
            patient reference Patient/pat1
            requester reference Practitioner/f007
            status token -|active
            subject reference Patient/pat1"#]],
    );
}

#[test]
fn condition_examples() {
    check(
        &example("Condition-example.json"),
        &[],
        expect![[r#"
        body-site token http://snomed.info/sct|49521004 text="left external ear structure"
        body-site token -|- text="left ear"
        category token http://terminology.hl7.org/CodeSystem/condition-category|encounter-diagnosis text="encounter diagnosis"
        category token http://snomed.info/sct|439401001 text="diagnosis"
        clinical-status token http://terminology.hl7.org/CodeSystem/condition-clinical|active
        code token http://snomed.info/sct|39065001 text="burn of ear"
        code token -|- text="burnt ear"
        onset-date date 2012-05-24T00:00:00.000000Z .. 2012-05-24T23:59:59.999999Z
        patient reference Patient/example
        severity token http://snomed.info/sct|24484000 text="severe"
        subject reference Patient/example
        verification-status token http://terminology.hl7.org/CodeSystem/condition-ver-status|confirmed"#]],
    );
    check(
        &example("Condition-f201.json"),
        &[
            "abatement-string",
            "onset-date",
            "recorded-date",
            "asserter",
            "evidence",
        ],
        expect![[r#"
            abatement-string string "around april 9, 2013" exact="around April 9, 2013"
            asserter reference Practitioner/f201
            evidence token http://snomed.info/sct|258710007 text="degrees c"
            onset-date date 2013-04-02T00:00:00.000000Z .. 2013-04-02T23:59:59.999999Z
            recorded-date date 2013-04-04T00:00:00.000000Z .. 2013-04-04T23:59:59.999999Z"#]],
    );
}

#[test]
fn identifier_types_give_of_type_entries() {
    check(
        &json!({
            "resourceType": "Patient",
            "identifier": [{
                "type": {
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}],
                    "text": "診察券番号"
                },
                "system": "urn:oid:1.2.392.100495.20.3.51.1",
                "value": "00012345"
            }]
        }),
        &["identifier"],
        expect![[r#"
            identifier token urn:oid:1.2.392.100495.20.3.51.1|00012345 text="診察券番号"
            identifier:of-type token http://terminology.hl7.org/CodeSystem/v2-0203|MR|00012345"#]],
    );
}

#[test]
fn reference_forms() {
    check(
        &json!({
            "resourceType": "Observation",
            "subject": {"reference": "Patient/p1/_history/3"},
            "performer": [
                {"reference": "https://example.org/fhir/Practitioner/d1"},
                {"reference": "urn:uuid:0b2c3a2e-4c8a-4a43-9d3e-8b4d2f3a1c11"},
                {"reference": "#contained"},
                {"identifier": {"system": "urn:oid:1.2.392.100495.20.3.41", "value": "1234567890"}},
                {"display": "only a name"},
                {"reference": "not a reference"}
            ],
            "basedOn": [{"reference": "ServiceRequest/sr1", "identifier": {"value": "42"}}],
            "hasMember": [{"reference": "Observation/o1"}, {"reference": "Observation/o1"}]
        }),
        &["subject", "performer", "based-on", "has-member"],
        expect![[r#"
            based-on reference ServiceRequest/sr1
            based-on:identifier token -|42
            has-member reference Observation/o1
            performer reference url=https://example.org/fhir/Practitioner/d1
            performer reference url=urn:uuid:0b2c3a2e-4c8a-4a43-9d3e-8b4d2f3a1c11
            performer:identifier token urn:oid:1.2.392.100495.20.3.41|1234567890
            performer reference url=not a reference
            subject reference Patient/p1"#]],
    );
}

#[test]
fn canonical_references_and_uris() {
    check(
        &json!({
            "resourceType": "PlanDefinition",
            "url": "http://example.org/PlanDefinition/p",
            "library": ["http://example.org/Library/l|1.0"],
            "meta": {"profile": ["http://example.org/StructureDefinition/x"], "source": "urn:x"}
        }),
        &["url", "depends-on", "_profile", "_source"],
        expect![[r#"
            _profile uri http://example.org/StructureDefinition/x
            _source uri urn:x
            depends-on reference url=http://example.org/Library/l|1.0
            depends-on reference url=http://example.org/Library/l
            url uri http://example.org/PlanDefinition/p"#]],
    );
}

#[test]
fn choice_types_by_parameter() {
    check(
        &json!({
            "resourceType": "Condition",
            "onsetAge": {"value": 52, "unit": "years", "system": "http://unitsofmeasure.org", "code": "a"},
            "abatementRange": {"low": {"value": 1, "unit": "a"}, "high": {"value": 2, "unit": "a"}}
        }),
        &["onset-age", "abatement-age", "onset-date"],
        expect![[r#"
            abatement-age quantity 1.0 system=- code=- unit=a
            abatement-age quantity 2.0 system=- code=- unit=a
            onset-age quantity 52.0 system=http://unitsofmeasure.org code=a unit=years"#]],
    );
    check(
        &json!({
            "resourceType": "Observation",
            "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "260385009", "display": "Negative"}], "text": "陰性"},
            "component": [{"valueQuantity": {"value": 120}}, {"valueString": "ｶﾀｶﾅ"}]
        }),
        &[
            "value-concept",
            "value-string",
            "value-quantity",
            "combo-value-quantity",
        ],
        expect![[r#"
            combo-value-quantity quantity 120.0 system=- code=- unit=-
            value-concept token http://snomed.info/sct|260385009 text="negative"
            value-concept token -|- text="陰性"
            value-string string "陰性" exact="陰性""#]],
    );
}

#[test]
fn timing_money_and_numbers() {
    check(
        &json!({
            "resourceType": "ChargeItem",
            "occurrenceTiming": {
                "event": ["2024-04-01", "2024-04-02T09:00:00+09:00"],
                "repeat": {"boundsPeriod": {"end": "2024-04-30"}}
            },
            "priceOverride": {"value": 1200, "currency": "JPY"},
            "factorOverride": 0.7
        }),
        &["occurrence", "price-override", "factor-override"],
        expect![[r#"
            factor-override number 0.7
            occurrence date 2024-04-01T00:00:00.000000Z .. 2024-04-01T23:59:59.999999Z
            occurrence date 2024-04-02T00:00:00.000000Z .. 2024-04-02T00:00:00.999999Z
            occurrence date -∞ .. 2024-04-30T23:59:59.999999Z
            price-override quantity 1200.0 system=urn:iso:std:iso:4217 code=JPY unit=-"#]],
    );
    check(
        &json!({
            "resourceType": "RiskAssessment",
            "prediction": [{"probabilityDecimal": 0.25}, {"probabilityRange": {"low": {"value": 10}, "high": {"value": 20}}}]
        }),
        &["probability"],
        expect![[r#"
            probability number 0.25
            probability number 10.0
            probability number 20.0"#]],
    );
}

#[test]
fn meta_tags_and_security() {
    check(
        &json!({
            "resourceType": "Patient",
            "id": "p1",
            "meta": {
                "lastUpdated": "2024-01-01T00:00:00Z",
                "tag": [{"system": "http://example.org/tags", "code": "demo", "display": "Demo"}],
                "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]
            }
        }),
        &[],
        expect![[r#"
            _security token http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R
            _tag token http://example.org/tags|demo text="demo"
            deceased token -|false"#]],
    );
}

#[test]
fn malformed_values_are_skipped() {
    check(
        &json!({
            "resourceType": "Patient",
            "birthDate": "not a date",
            "name": [{"family": "  "}, {"given": [1, "太郎"]}],
            "gender": null,
            "telecom": "not an array",
            "identifier": [{"system": "urn:x"}]
        }),
        &[],
        expect![[r#"
            deceased token -|false
            given string "太郎" exact="太郎"
            identifier token urn:x|-
            name string "太郎" exact="太郎"
            phonetic string "太郎" exact="太郎"
            telecom token -|not an array"#]],
    );
}

#[test]
fn every_vendored_example_extracts() {
    let directory = format!("{}/../../fixtures/r4-examples", env!("CARGO_MANIFEST_DIR"));
    let mut counts = Vec::new();
    for entry in std::fs::read_dir(&directory).expect("examples directory") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|extension| extension != "json") {
            continue;
        }
        let file = path
            .file_name()
            .and_then(|name| name.to_str())
            .expect("name");
        let resource = example(file);
        let resource_type = resource["resourceType"].as_str().expect("resourceType");
        let entries = Registry::r4().extract(resource_type, &resource);
        counts.push(format!("{file}: {}", entries.len()));
    }
    counts.sort();
    expect![[r#"
        AllergyIntolerance-example.json: 20
        AllergyIntolerance-medication.json: 9
        AuditEvent-example-rest.json: 16
        Bundle-bundle-response.json: 1
        Bundle-bundle-transaction.json: 1
        Bundle-father.json: 3
        Communication-example.json: 14
        Composition-example.json: 21
        Condition-example.json: 12
        Condition-f201.json: 17
        Consent-consent-example-basic.json: 7
        Coverage-9876B1.json: 31
        DocumentReference-example.json: 26
        Encounter-example.json: 4
        Immunization-example.json: 11
        MedicationRequest-medrx0301.json: 12
        MedicationRequest-medrx0302.json: 8
        Observation-example.json: 16
        Observation-f001.json: 10
        Observation-glasgow.json: 40
        OperationOutcome-validationfail.json: 0
        Organization-1.json: 3
        Patient-example.json: 38
        Patient-pat1.json: 13
        Patient-pat2.json: 16
        Practitioner-example.json: 18
        Procedure-example.json: 8
        ServiceRequest-example.json: 7
        Specimen-101.json: 12
        Subscription-example.json: 6"#]]
    .assert_eq(&counts.join("\n"));
}
