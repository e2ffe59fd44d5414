//! The keys of a submitted Patient, linking, and search canonicalisation.

use serde_json::json;

use super::*;

const FACILITY_SYSTEM: &str = "urn:oid:1.2.392.100495.20.3.51.11318814790";

fn patient(insured: &str, facility_id: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [
            {"system": FACILITY_SYSTEM, "value": facility_id},
            {"system": INSURED_SYSTEM, "value": insured},
        ],
    })
}

#[test]
fn full_width_digits_give_the_same_national_key_as_half_width() {
    let full = Keys::of(&patient("00012345:あいう:１８７:01", "000999739")).expect("keys");
    let half = Keys::of(&patient("00012345:あいう:187:01", "000999739")).expect("keys");
    assert_eq!(full, half);
    assert_eq!(
        full.keys[0].0, INSURED_SYSTEM,
        "the national key comes first"
    );
    assert_eq!(
        full.keys[1],
        (FACILITY_SYSTEM.to_owned(), "000999739".to_owned())
    );
}

#[test]
fn a_patient_without_a_national_key_or_with_a_malformed_one_is_refused() {
    let without = json!({"resourceType": "Patient", "identifier": [{"system": FACILITY_SYSTEM, "value": "1"}]});
    assert!(matches!(Keys::of(&without), Err(AppError::Invalid(_))));
    let Err(AppError::Invalid(issues)) = Keys::of(&patient("not-an-id", "1")) else {
        panic!("a malformed insured-person id is invalid");
    };
    let text = format!("{issues:?}");
    assert!(text.contains("Patient.identifier[1].value"), "{text}");
    assert!(
        !text.contains("not-an-id"),
        "issues never echo identifiers: {text}"
    );
}

#[test]
fn linking_adds_missing_keys_and_refuses_a_different_value_of_a_held_system() {
    let keys = Keys::of(&patient("00012345:あいう:187:01", "000999739")).expect("keys");
    let mut stored = json!({"resourceType": "Patient", "identifier": [
        {"system": INSURED_SYSTEM, "value": "00012345:あいう:187:01"},
    ]});
    assert_eq!(link(&mut stored, &keys).expect("links"), 1);
    assert_eq!(stored["identifier"].as_array().map(Vec::len), Some(2));
    assert_eq!(link(&mut stored, &keys).expect("already linked"), 0);

    // The same facility id already belongs to someone with another insured-person id.
    let mut other = json!({"resourceType": "Patient", "identifier": [
        {"system": INSURED_SYSTEM, "value": "00012345:あいう:999:01"},
        {"system": FACILITY_SYSTEM, "value": "000999739"},
    ]});
    assert!(matches!(
        link(&mut other, &keys),
        Err(AppError::Conflict(_))
    ));
    // Another patient id at the same facility for this insured person: also refused.
    let mut moved = json!({"resourceType": "Patient", "identifier": [
        {"system": INSURED_SYSTEM, "value": "00012345:あいう:187:01"},
        {"system": FACILITY_SYSTEM, "value": "111"},
    ]});
    assert!(matches!(
        link(&mut moved, &keys),
        Err(AppError::Conflict(_))
    ));
}

#[test]
fn identifier_searches_are_canonicalised_for_the_insured_person_system_only() {
    let mut params = vec![
        (
            "identifier".to_owned(),
            format!("{INSURED_SYSTEM}|00012345:あいう:１８７:01,{FACILITY_SYSTEM}|１"),
        ),
        ("name".to_owned(), "１８７".to_owned()),
    ];
    canonical_identifier_params(&mut params);
    assert_eq!(
        params[0].1,
        format!("{INSURED_SYSTEM}|00012345:あいう:187:01,{FACILITY_SYSTEM}|１")
    );
    assert_eq!(params[1].1, "１８７");
}

#[test]
fn the_key_condition_escapes_token_separators() {
    let keys = Keys {
        keys: vec![("s".into(), "a|b,c".into())],
    };
    assert_eq!(keys.condition()[0].1, "s|a\\|b\\,c");
}
