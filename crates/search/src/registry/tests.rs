//! Tests of the registry: every official expression compiles, what is (not) supported, lookups,
//! and Patient compartments.

use expect_test::expect;
use serde_json::json;
use store::{IndexEntry, IndexValue, ParamKind};

use super::{Lookup, PATIENT_COMPARTMENT, Registry, SEARCH_PARAMETERS};

#[test]
fn every_official_expression_compiles_for_every_base_type() {
    let (_, report) =
        Registry::build(SEARCH_PARAMETERS, PATIENT_COMPARTMENT).expect("vendored data");
    assert_eq!(report.failures, Vec::<(String, String, String)>::new());
    expect![[r#"
        definitions (base type, parameter): 1706
        supported: 1630
        unsupported composite: 72
        unsupported special: 4"#]]
    .assert_eq(&format!(
        "definitions (base type, parameter): {}\nsupported: {}\nunsupported composite: {}\n\
         unsupported special: {}",
        report.definitions, report.supported, report.composite, report.special
    ));
}

#[test]
fn params_include_the_common_ones_sorted_and_skip_unsupported() {
    let registry = Registry::r4();
    let codes: Vec<&str> = registry
        .params("Observation")
        .iter()
        .map(|def| def.code.as_str())
        .collect();
    expect![[r#"
        _id _lastUpdated _profile _security _source _tag based-on category code combo-code
        combo-data-absent-reason combo-value-concept combo-value-quantity component-code
        component-data-absent-reason component-value-concept component-value-quantity
        data-absent-reason date derived-from device encounter focus has-member identifier method
        part-of patient performer specimen status subject value-concept value-date value-quantity
        value-string"#]]
    .assert_eq(&wrap(&codes));
    assert!(!codes.contains(&"code-value-quantity"), "composite");
    assert!(!codes.contains(&"_text"), "no expression");

    let common: Vec<&str> = registry
        .params("Binary")
        .iter()
        .map(|def| def.code.as_str())
        .collect();
    expect![[r#"_id _lastUpdated _profile _security _source _tag"#]].assert_eq(&wrap(&common));
    assert!(registry.params("NoSuchType").is_empty());
    assert!(
        !registry
            .params("Location")
            .iter()
            .any(|def| def.code == "near")
    );
}

/// Joins codes with spaces, wrapped at 90 columns.
fn wrap(codes: &[&str]) -> String {
    let mut lines = vec![String::new()];
    for code in codes {
        let line = lines.last_mut().expect("one line");
        if !line.is_empty() && line.len() + code.len() + 1 > 90 {
            lines.push((*code).to_owned());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(code);
        }
    }
    lines.join("\n")
}

#[test]
fn param_definitions_are_specialised_per_base_type() {
    let registry = Registry::r4();
    let code = registry.param("Condition", "code").expect("Condition.code");
    expect![[r#"
        SearchParamDef {
            code: "code",
            url: "http://hl7.org/fhir/SearchParameter/clinical-code",
            kind: Token,
            expression: "Condition.code",
            targets: [],
            documentation: "Code for the condition",
        }
    "#]]
    .assert_debug_eq(code);
    let subject = registry
        .param("Observation", "patient")
        .expect("Observation.patient");
    expect![[r#"
        SearchParamDef {
            code: "patient",
            url: "http://hl7.org/fhir/SearchParameter/clinical-patient",
            kind: Reference,
            expression: "Observation.subject.where(resolve() is Patient)",
            targets: [
                "Patient",
                "Group",
            ],
            documentation: "The subject that the observation is about (if patient)",
        }
    "#]]
    .assert_debug_eq(subject);
    let tag = registry.param("Patient", "_tag").expect("_tag");
    assert_eq!(
        (tag.kind, tag.expression.as_str()),
        (ParamKind::Token, "Resource.meta.tag")
    );
    assert!(registry.param("Patient", "code").is_none());
}

#[test]
fn lookup_tells_unsupported_from_unknown() {
    let registry = Registry::r4();
    let describe = |resource_type: &str, code: &str| match registry.lookup(resource_type, code) {
        Lookup::Found(param) => format!("found {:?}", param.def.kind),
        Lookup::Unsupported => "unsupported".to_owned(),
        Lookup::Unknown => "unknown".to_owned(),
    };
    expect![[r#"
        Observation code: found Token
        Observation code-value-quantity: unsupported
        Observation _text: unsupported
        Observation _content: unsupported
        Observation _filter: unsupported
        Location near: unsupported
        Observation nonsense: unknown
        Resource _id: found Token
        Resource identifier: unknown"#]]
    .assert_eq(
        &[
            ("Observation", "code"),
            ("Observation", "code-value-quantity"),
            ("Observation", "_text"),
            ("Observation", "_content"),
            ("Observation", "_filter"),
            ("Location", "near"),
            ("Observation", "nonsense"),
            ("Resource", "_id"),
            ("Resource", "identifier"),
        ]
        .iter()
        .map(|(resource_type, code)| {
            format!("{resource_type} {code}: {}", describe(resource_type, code))
        })
        .collect::<Vec<_>>()
        .join("\n"),
    );
}

fn reference(param: &str, target_type: &str, id: &str) -> IndexEntry {
    IndexEntry {
        param: param.to_owned(),
        value: IndexValue::Reference {
            target_type: Some(target_type.to_owned()),
            target_id: Some(id.to_owned()),
            url: None,
        },
    }
}

#[test]
fn compartments_follow_the_official_definition() {
    let registry = Registry::r4();
    assert_eq!(registry.compartments("Patient", "p1", &[]), ["p1"]);
    let linked = [reference("link", "Patient", "p2")];
    assert_eq!(
        registry.compartments("Patient", "p1", &linked),
        ["p1", "p2"]
    );

    let observation = registry.extract(
        "Observation",
        &json!({
            "resourceType": "Observation",
            "subject": {"reference": "Patient/p1"},
            "performer": [{"reference": "Patient/p2"}, {"reference": "Practitioner/d1"}],
            "focus": [{"reference": "Patient/p3"}]
        }),
    );
    // `subject` and `performer` are compartment parameters of Observation; `focus` is not.
    assert_eq!(
        registry.compartments("Observation", "o1", &observation),
        ["p1", "p2"]
    );

    // Absolute references are indexed by URL only, and a Group subject is no Patient.
    let entries = registry.extract(
        "Observation",
        &json!({
            "resourceType": "Observation",
            "subject": {"reference": "https://example.org/fhir/Patient/p9"},
            "performer": [{"reference": "Group/g1"}]
        }),
    );
    assert!(
        registry
            .compartments("Observation", "o2", &entries)
            .is_empty()
    );

    // Types outside the compartment, and unknown types, belong to none.
    let practitioner = [reference("subject", "Patient", "p1")];
    assert!(
        registry
            .compartments("Practitioner", "d1", &practitioner)
            .is_empty()
    );
    assert!(
        registry
            .compartments("NoSuchType", "x", &practitioner)
            .is_empty()
    );
}
