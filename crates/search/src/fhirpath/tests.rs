//! Tests of the FHIRPath subset: one per construct, plus branch selection by base type.

use expect_test::{Expect, expect};
use serde_json::{Value, json};

use super::{Item, branches_for, compile};

/// Evaluates `expression` on `resource` (its type taken from `resourceType`) and renders the items,
/// one per line: JSON as written, with the choice type in brackets.
fn check(expression: &str, resource: Value, expected: Expect) {
    let base = resource["resourceType"]
        .as_str()
        .unwrap_or("Resource")
        .to_owned();
    let expr = match compile(expression, &base) {
        Ok(expr) => expr,
        Err(error) => return expected.assert_eq(&format!("error: {error}")),
    };
    let mut lines = Vec::new();
    expr.evaluate(&resource, &mut |item| {
        lines.push(match item {
            Item::Node {
                value,
                choice_type: Some(choice_type),
            } => format!("[{choice_type}] {value}"),
            Item::Node { value, .. } => value.to_string(),
            Item::Bool(value) => format!("bool {value}"),
            Item::Literal(literal) => format!("literal {literal:?}"),
            Item::Resolved(target) => format!("resolved {target}"),
        });
    });
    expected.assert_eq(&lines.join("\n"));
}

fn observation() -> Value {
    json!({
        "resourceType": "Observation",
        "id": "x",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}, {"code": "a"}]},
        "subject": {"reference": "Patient/1"},
        "performer": [{"reference": "Practitioner/2"}, {"reference": "Patient/3"}, {"display": "?"}],
        "effectivePeriod": {"start": "2024-01-01"},
        "valueQuantity": {"value": 5.4, "unit": "kg"},
        "component": [
            {"code": {"text": "a"}, "valueString": "one"},
            {"code": {"text": "b"}, "valueCodeableConcept": {"text": "two"}}
        ],
        "extension": [
            {"url": "http://example.org/a", "valueString": "A"},
            {"url": "http://example.org/b", "valueString": "B"}
        ]
    })
}

#[test]
fn paths_flatten_arrays() {
    check(
        "Observation.code.coding.code",
        observation(),
        expect![[r#"
            "29463-7"
            "a""#]],
    );
    check("Observation.missing.path", observation(), expect![[""]]);
}

#[test]
fn leading_type_names_anchor_on_the_resource() {
    check("Resource.id", observation(), expect![[r#""x""#]]);
    check("DomainResource.id", observation(), expect![[r#""x""#]]);
    check("Patient.id", observation(), expect![[""]]);
    check("status", observation(), expect![[r#""final""#]]);
}

#[test]
fn choice_elements_by_key_prefix() {
    check(
        "Observation.value",
        observation(),
        expect![[r#"[Quantity] {"value":5.4,"unit":"kg"}"#]],
    );
    check(
        "Observation.effective",
        observation(),
        expect![[r#"[Period] {"start":"2024-01-01"}"#]],
    );
    check(
        "Observation.component.value",
        observation(),
        expect![[r#"
            [String] "one"
            [CodeableConcept] {"text":"two"}"#]],
    );
    // `codeFilter` is not a choice of `code`: only known data types count as suffixes.
    check(
        "Observation.code",
        json!({"resourceType": "Observation", "codeFilter": "x"}),
        expect![[""]],
    );
}

#[test]
fn as_operator_and_functions_filter_by_type() {
    check(
        "(Observation.value as Quantity)",
        observation(),
        expect![[r#"[Quantity] {"value":5.4,"unit":"kg"}"#]],
    );
    check(
        "Observation.value as CodeableConcept",
        observation(),
        expect![[""]],
    );
    check(
        "Observation.component.value.as(string)",
        observation(),
        expect![[r#"[String] "one""#]],
    );
    check(
        "Observation.component.value.ofType(CodeableConcept)",
        observation(),
        expect![[r#"[CodeableConcept] {"text":"two"}"#]],
    );
    check(
        "(Observation.component.value as CodeableConcept).text",
        observation(),
        expect![[r#""two""#]],
    );
    check(
        "Observation.effective as FHIR.Period",
        observation(),
        expect![[r#"[Period] {"start":"2024-01-01"}"#]],
    );
}

#[test]
fn unions_concatenate() {
    check(
        "Observation.status | Observation.id | Patient.gender",
        observation(),
        expect![[r#"
            "final"
            "x""#]],
    );
}

#[test]
fn where_with_resolve_is() {
    check(
        "Observation.performer.where(resolve() is Patient)",
        observation(),
        expect![[r#"{"reference":"Patient/3"}"#]],
    );
    check(
        "Observation.performer.resolve()",
        observation(),
        expect![[r#"
            resolved Practitioner
            resolved Patient"#]],
    );
}

#[test]
fn where_with_equality() {
    let patient = json!({
        "resourceType": "Patient",
        "telecom": [
            {"system": "phone", "value": "03-1234-5678"},
            {"system": "email", "value": "a@example.org"}
        ]
    });
    check(
        "Patient.telecom.where(system='email')",
        patient.clone(),
        expect![[r#"{"system":"email","value":"a@example.org"}"#]],
    );
    check(
        "Patient.telecom.where(system != 'email').value",
        patient,
        expect![[r#""03-1234-5678""#]],
    );
}

#[test]
fn exists_and_boolean_logic() {
    let expression = "Patient.deceased.exists() and Patient.deceased != false";
    check(
        expression,
        json!({"resourceType": "Patient", "deceasedBoolean": true}),
        expect![[r#"bool true"#]],
    );
    check(
        expression,
        json!({"resourceType": "Patient", "deceasedBoolean": false}),
        expect![[r#"bool false"#]],
    );
    check(
        expression,
        json!({"resourceType": "Patient", "deceasedDateTime": "2020-01-01"}),
        expect![[r#"bool true"#]],
    );
    check(
        expression,
        json!({"resourceType": "Patient"}),
        expect![[r#"bool false"#]],
    );
    check(
        "Patient.active.empty() or Patient.active.not()",
        json!({"resourceType": "Patient", "active": false}),
        expect![[r#"bool true"#]],
    );
    check(
        "Patient.active.exists($this = true)",
        json!({"resourceType": "Patient", "active": false}),
        expect![[r#"bool false"#]],
    );
}

#[test]
fn is_operator() {
    check(
        "Observation.value is Quantity",
        observation(),
        expect![[r#"bool true"#]],
    );
    check(
        "Observation.value is Range",
        observation(),
        expect![[r#"bool false"#]],
    );
}

#[test]
fn indexer_and_first() {
    check(
        "Observation.performer[1].reference",
        observation(),
        expect![[r#""Patient/3""#]],
    );
    check("Observation.performer[7]", observation(), expect![[""]]);
    check(
        "Observation.code.coding.first().system",
        observation(),
        expect![[r#""http://loinc.org""#]],
    );
}

#[test]
fn extension_by_url() {
    check(
        "Observation.extension('http://example.org/b').value",
        observation(),
        expect![[r#"[String] "B""#]],
    );
}

#[test]
fn literals_and_this() {
    check(
        "Observation.status.where($this = 'final')",
        observation(),
        expect![[r#""final""#]],
    );
    check(
        "Observation.valueQuantity.value = 5.40",
        observation(),
        expect![[r#"bool true"#]],
    );
}

#[test]
fn unsupported_syntax_is_a_compile_error() {
    check(
        "Observation.code.memberOf('x')",
        observation(),
        expect!["error: FHIRPath: unsupported function at offset 17"],
    );
    check(
        "Observation.value > 5",
        observation(),
        expect![[r#"error: FHIRPath: unexpected token at offset 18"#]],
    );
    check(
        "Observation.code.where(",
        observation(),
        expect![[r#"error: FHIRPath: unexpected end of expression at offset 23"#]],
    );
    check(
        "Observation.status = 'x",
        observation(),
        expect![[r#"error: FHIRPath: unterminated string at offset 21"#]],
    );
}

#[test]
fn branches_are_kept_per_base_type() {
    let expression = "AllergyIntolerance.code | AllergyIntolerance.reaction.substance | \
                      Condition.code | (DeviceRequest.code as CodeableConcept)";
    let check_branches = |base: &str, expected: Expect| {
        expected.assert_eq(&format!("{:?}", branches_for(expression, base)));
    };
    check_branches(
        "AllergyIntolerance",
        expect![[r#"Some("AllergyIntolerance.code | AllergyIntolerance.reaction.substance")"#]],
    );
    check_branches(
        "DeviceRequest",
        expect![[r#"Some("(DeviceRequest.code as CodeableConcept)")"#]],
    );
    check_branches("Patient", expect![[r#"None"#]]);
    expect![[r#"Some("InsurancePlan.name | alias")"#]].assert_eq(&format!(
        "{:?}",
        branches_for("InsurancePlan.name | alias", "InsurancePlan")
    ));
    expect![[r#"Some("Patient.deceased.exists() and Patient.deceased != false")"#]].assert_eq(
        &format!(
            "{:?}",
            branches_for(
                "Patient.deceased.exists() and Patient.deceased != false",
                "Patient"
            )
        ),
    );
}
