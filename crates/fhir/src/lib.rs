//! FHIR R4 JSON: parsing, structural validation, JSON Patch, summaries, and `OperationOutcome`s.
//!
//! Pure: no IO, no async. Validation follows the official R4 JSON Schema and StructureDefinitions,
//! vendored in `data/` (see `data/SOURCES.md`) and compiled once on first use.
//!
//! Nothing this crate reports ever contains a value from a resource: issues name elements, types and
//! rules, because resources are patient data and issues end up in responses and logs.

mod issue;
mod json;
pub mod patch;
mod resource_types;
mod schema;
mod summary;
mod validate;

pub use issue::{Issue, IssueCode, Severity, operation_outcome};
pub use json::parse_json;
pub use resource_types::{is_resource_type, resource_types};
pub use summary::{SummaryMode, select_elements, summarize};
pub use validate::validate_resource;
