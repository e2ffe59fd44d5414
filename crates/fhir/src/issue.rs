//! Validation and processing problems, and their rendering as a FHIR `OperationOutcome`.
//!
//! An [`Issue`] is what every fallible function of this crate reports. Its diagnostics name elements
//! and rules, never values: resources are patient data, and issues end up in responses and logs.

use serde_json::{Map, Value, json};

/// How bad an issue is (FHIR `IssueSeverity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// The operation could not even be attempted.
    Fatal,
    /// The operation failed.
    Error,
    /// The operation went ahead, but something is questionable.
    Warning,
    /// Purely informative.
    Information,
}

impl Severity {
    /// The FHIR code: `fatal`, `error`, `warning` or `information`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Fatal => "fatal",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "information",
        }
    }
}

/// What kind of problem an issue is (FHIR `IssueType`, all R4 codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IssueCode {
    /// `invalid`: content invalid against the specification or a profile.
    Invalid,
    /// `structure`: a structural issue (unknown element, wrong JSON type, bad syntax).
    Structure,
    /// `required`: a required element is missing.
    Required,
    /// `value`: an element's value is not valid (format, range).
    Value,
    /// `invariant`: a content validation rule failed.
    Invariant,
    /// `security`: an authentication or authorisation problem.
    Security,
    /// `login`: the client needs to log in.
    Login,
    /// `unknown`: the user or system was not recognised.
    Unknown,
    /// `expired`: the session or token expired.
    Expired,
    /// `forbidden`: the user may not perform this operation.
    Forbidden,
    /// `suppressed`: some information was not returned, for policy reasons.
    Suppressed,
    /// `processing`: processing failed.
    Processing,
    /// `not-supported`: the operation or content is not supported.
    NotSupported,
    /// `duplicate`: a duplicate record.
    Duplicate,
    /// `multiple-matches`: more than one record matched a conditional request.
    MultipleMatches,
    /// `not-found`: the reference or resource does not exist.
    NotFound,
    /// `deleted`: the resource was deleted.
    Deleted,
    /// `too-long`: content was too long.
    TooLong,
    /// `code-invalid`: a code is not one of the allowed codes.
    CodeInvalid,
    /// `extension`: an unacceptable extension.
    Extension,
    /// `too-costly`: the operation would cost too much.
    TooCostly,
    /// `business-rule`: a business rule failed.
    BusinessRule,
    /// `conflict`: an edit conflict (version mismatch).
    Conflict,
    /// `transient`: a temporary problem; try again later.
    Transient,
    /// `lock-error`: a resource lock could not be obtained.
    LockError,
    /// `no-store`: persistent storage is unavailable.
    NoStore,
    /// `exception`: an unexpected internal error.
    Exception,
    /// `timeout`: an internal timeout.
    Timeout,
    /// `incomplete`: not all data sources answered.
    Incomplete,
    /// `throttled`: the system is throttling the client.
    Throttled,
    /// `informational`: a message that is not a problem.
    Informational,
}

impl IssueCode {
    /// The FHIR code, e.g. `not-found` or `too-costly`.
    pub fn as_str(&self) -> &'static str {
        match self {
            IssueCode::Invalid => "invalid",
            IssueCode::Structure => "structure",
            IssueCode::Required => "required",
            IssueCode::Value => "value",
            IssueCode::Invariant => "invariant",
            IssueCode::Security => "security",
            IssueCode::Login => "login",
            IssueCode::Unknown => "unknown",
            IssueCode::Expired => "expired",
            IssueCode::Forbidden => "forbidden",
            IssueCode::Suppressed => "suppressed",
            IssueCode::Processing => "processing",
            IssueCode::NotSupported => "not-supported",
            IssueCode::Duplicate => "duplicate",
            IssueCode::MultipleMatches => "multiple-matches",
            IssueCode::NotFound => "not-found",
            IssueCode::Deleted => "deleted",
            IssueCode::TooLong => "too-long",
            IssueCode::CodeInvalid => "code-invalid",
            IssueCode::Extension => "extension",
            IssueCode::TooCostly => "too-costly",
            IssueCode::BusinessRule => "business-rule",
            IssueCode::Conflict => "conflict",
            IssueCode::Transient => "transient",
            IssueCode::LockError => "lock-error",
            IssueCode::NoStore => "no-store",
            IssueCode::Exception => "exception",
            IssueCode::Timeout => "timeout",
            IssueCode::Incomplete => "incomplete",
            IssueCode::Throttled => "throttled",
            IssueCode::Informational => "informational",
        }
    }
}

/// One problem, shaped like an `OperationOutcome.issue`.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    /// How bad it is.
    pub severity: Severity,
    /// What kind of problem it is.
    pub code: IssueCode,
    /// Where: a FHIRPath expression such as `Patient.name[0].given[1]`, if the issue has a location.
    pub expression: Option<String>,
    /// What is wrong, for a human. Names elements and rules, never values.
    pub diagnostics: String,
}

impl Issue {
    /// An issue of severity `error`.
    pub fn error(
        code: IssueCode,
        expression: Option<String>,
        diagnostics: impl Into<String>,
    ) -> Self {
        Issue {
            severity: Severity::Error,
            code,
            expression,
            diagnostics: diagnostics.into(),
        }
    }

    /// An issue of severity `warning`.
    pub fn warning(
        code: IssueCode,
        expression: Option<String>,
        diagnostics: impl Into<String>,
    ) -> Self {
        Issue {
            severity: Severity::Warning,
            code,
            expression,
            diagnostics: diagnostics.into(),
        }
    }
}

/// Renders issues as an `OperationOutcome` resource.
///
/// An empty slice gives the single informational issue "All OK", since an `OperationOutcome` needs at
/// least one issue.
pub fn operation_outcome(issues: &[Issue]) -> Value {
    let issues: Vec<Value> = if issues.is_empty() {
        vec![json!({ "severity": "information", "code": "informational", "diagnostics": "All OK" })]
    } else {
        issues.iter().map(issue_json).collect()
    };
    json!({ "resourceType": "OperationOutcome", "issue": issues })
}

fn issue_json(issue: &Issue) -> Value {
    let mut object = Map::new();
    object.insert("severity".to_owned(), issue.severity.as_str().into());
    object.insert("code".to_owned(), issue.code.as_str().into());
    // An empty string is not valid FHIR, so an issue without diagnostics simply has none.
    if !issue.diagnostics.is_empty() {
        object.insert("diagnostics".to_owned(), issue.diagnostics.as_str().into());
    }
    if let Some(expression) = &issue.expression {
        object.insert("expression".to_owned(), json!([expression]));
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests;
