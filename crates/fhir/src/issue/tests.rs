//! Tests for `issue`: FHIR codes and the `OperationOutcome` shape.

use expect_test::expect;

use super::*;

#[test]
fn codes_are_the_fhir_codes() {
    let codes = [
        IssueCode::NotFound,
        IssueCode::TooCostly,
        IssueCode::MultipleMatches,
        IssueCode::NotSupported,
        IssueCode::CodeInvalid,
        IssueCode::BusinessRule,
        IssueCode::LockError,
        IssueCode::NoStore,
        IssueCode::TooLong,
        IssueCode::Informational,
    ];
    let rendered: Vec<&str> = codes.iter().map(IssueCode::as_str).collect();
    expect!["not-found too-costly multiple-matches not-supported code-invalid business-rule lock-error no-store too-long informational"]
        .assert_eq(&rendered.join(" "));
    let severities = [
        Severity::Fatal,
        Severity::Error,
        Severity::Warning,
        Severity::Information,
    ];
    let rendered: Vec<&str> = severities.iter().map(Severity::as_str).collect();
    expect!["fatal error warning information"].assert_eq(&rendered.join(" "));
}

#[test]
fn no_issues_is_all_ok() {
    expect![[r#"{"resourceType":"OperationOutcome","issue":[{"severity":"information","code":"informational","diagnostics":"All OK"}]}"#]]
        .assert_eq(&operation_outcome(&[]).to_string());
}

#[test]
fn issues_render_in_order() {
    let issues = [
        Issue::error(
            IssueCode::Required,
            Some("Observation.status".to_owned()),
            "missing required element `status`",
        ),
        Issue::warning(IssueCode::Processing, None, "something odd"),
        Issue::error(IssueCode::Exception, None, ""),
    ];
    expect![[r#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"required","diagnostics":"missing required element `status`","expression":["Observation.status"]},{"severity":"warning","code":"processing","diagnostics":"something odd"},{"severity":"error","code":"exception"}]}"#]]
        .assert_eq(&operation_outcome(&issues).to_string());
}

#[test]
fn outcomes_are_valid_resources() {
    let issues = [Issue::error(
        IssueCode::Value,
        Some("Patient.birthDate".to_owned()),
        "bad",
    )];
    assert_eq!(crate::validate_resource(&operation_outcome(&issues)), []);
    assert_eq!(crate::validate_resource(&operation_outcome(&[])), []);
}
