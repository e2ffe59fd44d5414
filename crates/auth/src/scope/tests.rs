//! SMART v2 permission strings and the scopes understood in a request.

use super::*;

#[test]
fn permission_strings_are_ordered_subsequences_of_cruds() {
    for valid in ["c", "rs", "cruds", "cud", "rus"] {
        assert_eq!(Permissions::parse(valid).unwrap().to_string(), valid);
    }
    for invalid in ["", "sr", "rr", "x", "read", "cruds ", "crudsc"] {
        assert_eq!(Permissions::parse(invalid), None, "{invalid}");
    }
    let rs = Permissions::parse("rs").unwrap();
    assert!(rs.contains(Permission::Read) && rs.contains(Permission::Search));
    assert!(!rs.contains(Permission::Create));
    assert_eq!(rs.union(Permissions::CUD), Permissions::CRUDS);
    assert_eq!(
        Permissions::CRUDS.intersect(Permissions::CUD).to_string(),
        "cud"
    );
}

#[test]
fn only_system_v2_scopes_are_understood() {
    let requested = parse_requested(
        "system/Observation.rs  system/*.c patient/Condition.rs user/Patient.rs openid \
         system/Observation.read system/Patient.rs?identifier=x system/observation.rs \
         system/Condition.sr system/Bundle.cruds",
    );
    let parsed: Vec<String> = requested
        .iter()
        .map(|scope| format!("{}.{}", scope.resource_type, scope.permissions))
        .collect();
    assert_eq!(parsed, ["Observation.rs", "*.c", "Bundle.cruds"]);
}

#[test]
fn granted_scopes_read_back_strictly() {
    let scopes = Scopes::parse_granted("system/Patient.rs system/Condition.cud").unwrap();
    assert_eq!(scopes.to_string(), "system/Patient.rs system/Condition.cud");
    assert!(scopes.allows("Condition", Permission::Delete));
    assert!(!scopes.allows("Condition", Permission::Read));
    assert!(!scopes.allows("Observation", Permission::Read));
    for invalid in [
        "",
        "system/*.rs",
        "system/Patient.rs system/Patient.c",
        "patient/Patient.rs",
        "system/Patient.sr",
    ] {
        assert_eq!(Scopes::parse_granted(invalid), None, "{invalid:?}");
    }
}
