//! Flags are read from `meta.tag` of the indication system only.

use serde_json::json;

use super::*;

#[test]
fn each_code_sets_its_flag() {
    let resource = json!({"resourceType": "Condition", "meta": {"tag": [
        {"system": INDICATION_SYSTEM, "code": "LTS"},
        {"system": INDICATION_SYSTEM, "code": "UNINFORMED"},
    ]}});
    assert_eq!(
        flags(&resource),
        Flags {
            lts: true,
            uninformed: true,
            undelivered: false
        }
    );
    let resource = json!({"meta": {"tag": [{"system": INDICATION_SYSTEM, "code": "UNDELIVERED"}]}});
    assert!(flags(&resource).undelivered);
}

#[test]
fn other_systems_unknown_codes_and_missing_meta_set_nothing() {
    let resource = json!({"meta": {"tag": [
        {"system": "http://example.org/tags", "code": "LTS"},
        {"system": INDICATION_SYSTEM, "code": "lts"},
        {"code": "UNINFORMED"},
    ]}});
    assert_eq!(flags(&resource), Flags::default());
    assert_eq!(
        flags(&json!({"resourceType": "Condition"})),
        Flags::default()
    );
}

#[test]
fn the_published_condition_example_is_long_term_and_uninformed() {
    let path = format!(
        "{}/../../fixtures/jp/clins/Condition-Example-JP-Condition-eCS-02.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let resource: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(
        flags(&resource),
        Flags {
            lts: true,
            uninformed: true,
            undelivered: false
        }
    );
}
