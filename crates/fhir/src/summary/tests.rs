//! Tests for `summary`: what each mode keeps, and the `SUBSETTED` tag.

use expect_test::{Expect, expect};
use serde_json::{Value, json};

use super::*;

fn patient() -> Value {
    json!({
        "resourceType": "Patient",
        "id": "p1",
        "text": { "status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>" },
        "extension": [{ "url": "http://example.org", "valueString": "x" }],
        "identifier": [{ "value": "1" }],
        "active": true,
        "name": [{ "family": "F" }],
        "birthDate": "1970-01-01",
        "_birthDate": { "id": "b" },
        "deceasedBoolean": false,
        "contact": [{ "name": { "family": "C" } }],
        "communication": [{ "language": { "text": "ja" } }],
    })
}

fn observation() -> Value {
    // Parsed rather than built with `json!`, so that the decimal keeps its text (`1.50`).
    let text = r#"{
        "resourceType": "Observation",
        "id": "o1",
        "meta": { "versionId": "2", "tag": [{ "system": "http://example.org/tags", "code": "t" }] },
        "text": { "status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>" },
        "status": "final",
        "category": [{ "text": "laboratory" }],
        "code": { "text": "x" },
        "subject": { "reference": "Patient/p1" },
        "valueQuantity": { "value": 1.50 },
        "interpretation": [{ "text": "H" }],
        "note": [{ "text": "n" }]
    }"#;
    crate::parse_json(text.as_bytes()).expect("valid JSON")
}

fn check(actual: Value, expect: Expect) {
    assert_eq!(
        crate::validate_resource(&actual),
        [],
        "the reduced resource is valid"
    );
    expect.assert_eq(&actual.to_string());
}

#[test]
fn summary_true_keeps_summary_elements() {
    check(
        summarize(&patient(), SummaryMode::True),
        expect![[
            r#"{"resourceType":"Patient","id":"p1","meta":{"tag":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"SUBSETTED"}]},"identifier":[{"value":"1"}],"active":true,"name":[{"family":"F"}],"birthDate":"1970-01-01","_birthDate":{"id":"b"},"deceasedBoolean":false}"#
        ]],
    );
    check(
        summarize(&observation(), SummaryMode::True),
        expect![[
            r#"{"resourceType":"Observation","id":"o1","meta":{"versionId":"2","tag":[{"system":"http://example.org/tags","code":"t"},{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"SUBSETTED"}]},"status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p1"},"valueQuantity":{"value":1.50}}"#
        ]],
    );
}

#[test]
fn summary_text_keeps_text_and_mandatory_elements() {
    check(
        summarize(&observation(), SummaryMode::Text),
        expect![[
            r#"{"resourceType":"Observation","id":"o1","meta":{"versionId":"2","tag":[{"system":"http://example.org/tags","code":"t"},{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"SUBSETTED"}]},"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},"status":"final","code":{"text":"x"}}"#
        ]],
    );
}

#[test]
fn summary_data_drops_the_narrative() {
    check(
        summarize(&observation(), SummaryMode::Data),
        expect![[
            r#"{"resourceType":"Observation","id":"o1","meta":{"versionId":"2","tag":[{"system":"http://example.org/tags","code":"t"},{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"SUBSETTED"}]},"status":"final","category":[{"text":"laboratory"}],"code":{"text":"x"},"subject":{"reference":"Patient/p1"},"valueQuantity":{"value":1.50},"interpretation":[{"text":"H"}],"note":[{"text":"n"}]}"#
        ]],
    );
}

#[test]
fn nothing_removed_means_no_tag() {
    let minimal = json!({ "resourceType": "Patient", "id": "p1", "active": true });
    assert_eq!(summarize(&minimal, SummaryMode::True), minimal);
    assert_eq!(summarize(&minimal, SummaryMode::Data), minimal);
    assert_eq!(select_elements(&minimal, &["active".to_owned()]), minimal);
}

#[test]
fn the_tag_is_added_once() {
    let once = summarize(&observation(), SummaryMode::True);
    let twice = summarize(&once, SummaryMode::Text);
    let tags = twice["meta"]["tag"].as_array().expect("tags");
    assert_eq!(tags.len(), 2);
}

#[test]
fn meta_goes_after_the_id() {
    let resource =
        json!({ "resourceType": "Patient", "active": true, "id": "p1", "gender": "male" });
    check(
        select_elements(&resource, &["active".to_owned()]),
        expect![[
            r#"{"resourceType":"Patient","active":true,"id":"p1","meta":{"tag":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"SUBSETTED"}]}}"#
        ]],
    );
    let resource = json!({ "resourceType": "Patient", "active": true, "gender": "male" });
    check(
        select_elements(&resource, &["active".to_owned()]),
        expect![[
            r#"{"resourceType":"Patient","meta":{"tag":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"SUBSETTED"}]},"active":true}"#
        ]],
    );
}

#[test]
fn elements_keep_listed_choices_extensions_and_mandatory_elements() {
    let elements = [
        "value".to_owned(),
        "Observation.note".to_owned(),
        "nonsense".to_owned(),
    ];
    check(
        select_elements(&observation(), &elements),
        expect![[
            r#"{"resourceType":"Observation","id":"o1","meta":{"versionId":"2","tag":[{"system":"http://example.org/tags","code":"t"},{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"SUBSETTED"}]},"status":"final","code":{"text":"x"},"valueQuantity":{"value":1.50},"note":[{"text":"n"}]}"#
        ]],
    );
    check(
        select_elements(
            &patient(),
            &["birthDate".to_owned(), " deceased ".to_owned()],
        ),
        expect![[
            r#"{"resourceType":"Patient","id":"p1","meta":{"tag":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"SUBSETTED"}]},"birthDate":"1970-01-01","_birthDate":{"id":"b"},"deceasedBoolean":false}"#
        ]],
    );
}

#[test]
fn unknown_types_and_non_objects() {
    let unknown = json!({ "resourceType": "Unknown", "id": "u", "text": { "div": "x" }, "a": 1 });
    expect![[r#"{"resourceType":"Unknown","id":"u","meta":{"tag":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"SUBSETTED"}]}}"#]]
        .assert_eq(&summarize(&unknown, SummaryMode::True).to_string());
    assert_eq!(summarize(&json!([1]), SummaryMode::Data), json!([1]));
    assert_eq!(select_elements(&json!("x"), &[]), json!("x"));
}
