//! Parsing FHIR JSON bytes into a [`serde_json::Value`], with errors that never quote the input.
//!
//! The workspace builds `serde_json` with `arbitrary_precision`, so a number keeps its exact text:
//! `1.50` is read and written back as `1.50`, as FHIR requires for decimals.

use serde_json::Value;
use serde_json::error::Category;

use crate::{Issue, IssueCode};

/// Parses a JSON document.
///
/// # Errors
///
/// A syntax error gives an issue of code `structure` that names the line and column and the kind of
/// problem (`expected value`, `trailing comma`, ...), but never the offending content.
pub fn parse_json(bytes: &[u8]) -> Result<Value, Issue> {
    // A UTF-8 byte order mark is not JSON, but some tools write one; it carries no content.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    serde_json::from_slice(bytes).map_err(|error| {
        let reason = match error.classify() {
            // These messages are fixed texts chosen by serde_json's parser (`expected `,` or `}``),
            // followed by the position, which is added below in the same words for every category.
            Category::Syntax | Category::Eof => {
                let message = error.to_string();
                match message.split_once(" at line ") {
                    Some((reason, _)) => reason.to_owned(),
                    None => message,
                }
            }
            // Data errors can quote what was found; they cannot happen when parsing into a `Value`,
            // but if they ever do, say nothing specific.
            Category::Data | Category::Io => "not a valid JSON document".to_owned(),
        };
        Issue::error(
            IssueCode::Structure,
            None,
            format!(
                "invalid JSON at line {}, column {}: {reason}",
                error.line(),
                error.column()
            ),
        )
    })
}

#[cfg(test)]
mod tests;
