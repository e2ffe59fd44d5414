//! Tests for `resource_types`: the list is R4's, sorted, and the schema's.

use super::*;
use crate::schema::Schema;

#[test]
fn the_list_is_sorted_and_complete() {
    assert_eq!(resource_types().len(), 146);
    assert!(resource_types().windows(2).all(|pair| pair[0] < pair[1]));
    let mut from_schema: Vec<&str> = Schema::get().resource_type_names().collect();
    from_schema.sort_unstable();
    assert_eq!(from_schema, resource_types());
}

#[test]
fn lookups_are_exact() {
    for name in resource_types() {
        assert!(is_resource_type(name), "{name}");
    }
    assert!(is_resource_type("Patient"));
    assert!(is_resource_type("VisionPrescription"));
    assert!(!is_resource_type("patient"));
    assert!(!is_resource_type("Resource"));
    assert!(!is_resource_type("DomainResource"));
    assert!(!is_resource_type("Project"));
    assert!(!is_resource_type(""));
}
