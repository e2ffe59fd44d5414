//! The visibility table, row by row.

use serde_json::{Value, json};

use super::*;

fn tagged(tags: &[(&str, &str)]) -> Value {
    let tags: Vec<Value> = tags
        .iter()
        .map(|(system, code)| json!({"system": system, "code": code}))
        .collect();
    json!({"resourceType": "Condition", "meta": {"tag": tags}})
}

const HERE: &str = "1318814790";
const ELSEWHERE: &str = "2712345678";

fn facility(number: &str) -> Viewer {
    Viewer::Facility(Some(number.to_owned()))
}

#[test]
fn undelivered_is_seen_by_the_submitting_facility_only() {
    let resource = tagged(&[(FLAG_SYSTEM, UNDELIVERED), (SUBMITTER_SYSTEM, HERE)]);
    assert!(facility(HERE).may_see(&resource));
    assert!(Viewer::Service.may_see(&resource));
    assert!(!facility(ELSEWHERE).may_see(&resource));
    assert!(!Viewer::Facility(None).may_see(&resource));
    assert!(!Viewer::Patient("p".into()).may_see(&resource));
}

#[test]
fn uninformed_is_hidden_from_the_patient_only() {
    let resource = tagged(&[(FLAG_SYSTEM, UNINFORMED), (SUBMITTER_SYSTEM, HERE)]);
    assert!(facility(HERE).may_see(&resource));
    assert!(facility(ELSEWHERE).may_see(&resource));
    assert!(!Viewer::Patient("p".into()).may_see(&resource));
}

#[test]
fn a_pending_referral_is_seen_by_its_author_and_the_patient() {
    let resource = tagged(&[
        (REFERRAL_SYSTEM, PENDING),
        (DESTINATION_SYSTEM, ELSEWHERE),
        (SUBMITTER_SYSTEM, HERE),
    ]);
    assert!(facility(HERE).may_see(&resource));
    assert!(
        !facility(ELSEWHERE).may_see(&resource),
        "the destination waits for the patient's consent"
    );
    assert!(Viewer::Patient("p".into()).may_see(&resource));
}

#[test]
fn untagged_resources_are_seen_by_everyone() {
    let resource = json!({"resourceType": "Condition"});
    for viewer in [
        Viewer::Service,
        Viewer::Facility(None),
        facility(HERE),
        Viewer::Patient("p".into()),
    ] {
        assert!(viewer.may_see(&resource), "{viewer:?}");
    }
}

#[test]
fn restrictions_add_one_group_per_rule() {
    let mut query = SearchQuery::default();
    Viewer::Service.restrict(&mut query);
    assert!(query.filters.is_empty());
    facility(HERE).restrict(&mut query);
    assert_eq!(query.filters.len(), 3);
    assert!(
        query.filters.iter().all(|group| group.len() == 2),
        "each rule: not tagged, or submitted here"
    );
    let mut query = SearchQuery::default();
    Viewer::Patient("p".into()).restrict(&mut query);
    assert_eq!(
        query.filters,
        vec![
            vec![Condition::Not(Box::new(tag_is(FLAG_SYSTEM, UNDELIVERED)))],
            vec![Condition::Not(Box::new(tag_is(FLAG_SYSTEM, UNINFORMED)))],
            vec![Condition::Not(Box::new(tag_is(RECORD_SYSTEM, SUBMISSION)))],
        ]
    );
}

#[test]
fn a_stored_submission_is_its_submitters_record() {
    let resource = tagged(&[(RECORD_SYSTEM, SUBMISSION), (SUBMITTER_SYSTEM, HERE)]);
    assert!(facility(HERE).may_see(&resource));
    assert!(!facility(ELSEWHERE).may_see(&resource));
    assert!(!Viewer::Patient("p".into()).may_see(&resource));
}

#[test]
fn marks_read_from_the_text_are_the_marks_of_the_parsed_body() {
    let cases = [
        (
            "Patient",
            r#"{"resourceType":"Patient","meta":{"tag":[{"system":"s","code":"c","display":"d"}]},"identifier":[{"system":"urn:a","value":"1"},{"value":"2"},{"system":"urn:b"}],"name":[{"family":"x"}]}"#,
        ),
        ("Patient", r#"{"resourceType":"Patient"}"#),
        // Escapes in strings, a tag without a code, an empty meta.
        (
            "Observation",
            r#"{"meta":{"tag":[{"system":"s\"q","code":"\u3042"},{"system":"s"}]},"subject":{"reference":"Patient/p1"}}"#,
        ),
        (
            "Observation",
            r#"{"meta":{},"patient":{"reference":"Patient/p2"}}"#,
        ),
        // Identifiers of other types are not read.
        ("Composition", r#"{"identifier":{"system":"urn:a"}}"#),
        // Shapes R4 does not allow: the whole body decides.
        (
            "Patient",
            r#"{"meta":{"tag":{"system":"s","code":"c"}},"identifier":[{"system":1}]}"#,
        ),
        (
            "Observation",
            r#"{"meta":{"tag":[{"system":"s","code":7}]}}"#,
        ),
        ("Patient", r#"{"identifier":"urn:a"}"#),
    ];
    for (index, (resource_type, json)) in cases.into_iter().enumerate() {
        // The first five are R4's shape: read without building the body.
        assert_eq!(
            Marks::read_r4(resource_type, "self", json).is_ok(),
            index < 5,
            "{json}"
        );
        let body: Value = serde_json::from_str(json).expect("json");
        assert_eq!(
            Marks::read(resource_type, "self", json).expect("marks"),
            Marks::of_body(resource_type, "self", &body),
            "{json}"
        );
    }
    let marks = Marks::read("Patient", "p", cases[0].1).expect("marks");
    assert!(marks.has_tag("s", "c") && !marks.has_tag("s", "d"));
    assert!(marks.has_identifier_system("urn:b") && !marks.has_identifier_system("urn:c"));
    assert_eq!(marks.patient.as_deref(), Some("p"));
    assert!(Marks::read("Patient", "p", "{not json").is_err());
}
