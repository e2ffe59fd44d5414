//! The population is deterministic and shaped as documented.

use super::{LAB_TESTS, Shape, observation, patient};

#[test]
fn the_same_number_gives_the_same_resource() {
    assert_eq!(patient(42), patient(42));
    assert_ne!(patient(42), patient(43));
    assert_eq!(
        observation(7, 3, "Patient/x"),
        observation(7, 3, "Patient/x")
    );
}

#[test]
fn a_bundle_of_a_thousand_entries_holds_fifty_groups() {
    let shape = Shape::default();
    assert_eq!(shape.group_size(), 20);
    assert_eq!(shape.groups_per_bundle(1000), 50);
    assert_eq!(shape.groups_for(1_000_000), 50_000);
    let bundle = shape.transaction_bundle(0..50);
    let entries = bundle["entry"].as_array().map_or(0, Vec::len);
    assert_eq!(entries, 1000);
    // Each result points at its Patient's fullUrl.
    assert_eq!(
        bundle["entry"][1]["resource"]["subject"]["reference"],
        bundle["entry"][0]["fullUrl"]
    );
}

#[test]
fn results_carry_both_codes_and_a_quantity() {
    let result = observation(1, 2, "Patient/p");
    let codings = result["code"]["coding"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(codings.len(), 2);
    assert!(
        LAB_TESTS
            .iter()
            .any(|test| codings[1]["code"] == test.loinc)
    );
    assert!(result["valueQuantity"]["value"].is_number());
}

#[test]
fn lab_test_names_the_code_of_the_result() {
    let result = observation(7, 3, "Patient/x");
    assert_eq!(
        result["code"]["coding"][1]["code"],
        super::lab_test(7, 3).loinc
    );
}
