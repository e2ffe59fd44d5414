//! FHIR R4 search for tsunagu: the official search parameters, index extraction at write time,
//! Patient compartment membership, and parsing of search URLs into [`store::SearchQuery`]. Pure: no
//! IO, no async.
//!
//! The [`Registry`] is built once from the vendored R4 `SearchParameter` bundle and Patient
//! `CompartmentDefinition` (see `data/SOURCES.md`). Each parameter's FHIRPath expression is split
//! by base type and compiled once (a subset of FHIRPath that covers every R4 expression);
//! extraction then walks a resource's JSON without re-parsing anything.
//!
//! Supported: every `string`, `token`, `date`, `reference`, `quantity`, `number` and `uri`
//! parameter. Not supported, and left out of [`Registry::params`] so that the CapabilityStatement
//! stays truthful: `composite` and `special` parameters and the ones without an expression
//! (`_text`, `_content`, `_query`), plus `_filter`, `_list`, `_contained` and `_containedType`.

mod extract;
mod fhirpath;
mod parse;
mod registry;
#[cfg(test)]
mod test_util;
mod value;

pub use crate::registry::Registry;
pub use crate::value::{normalize_string, parse_date_range};

/// One search parameter as it applies to one resource type.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchParamDef {
    /// The code used in URLs, e.g. `subject`, `_lastUpdated`.
    pub code: String,
    /// Canonical URL of the official definition.
    pub url: String,
    pub kind: store::ParamKind,
    /// The FHIRPath expression, keeping only the branches for this base type.
    pub expression: String,
    /// For reference parameters: the resource types it may point at (empty: any).
    pub targets: Vec<String>,
    /// The official description for this base type (plain text or light Markdown); may be empty.
    pub documentation: String,
}

/// A search as received, before parsing.
#[derive(Debug, Clone)]
pub struct SearchRequest<'a> {
    /// `[T]` for a type search, empty for a system search (which `_type` may then restrict).
    pub types: &'a [String],
    /// The Patient id for `/Patient/{id}/*` and `$everything`.
    pub compartment: Option<String>,
    /// Decoded query (or form body) pairs, in order.
    pub params: &'a [(String, String)],
    /// `Prefer: handling=strict`: unknown and unsupported parameters are errors, not warnings.
    pub strict: bool,
    /// Page size when there is no `_count`.
    pub default_count: u32,
    /// Largest page size; larger `_count` values are clamped to it.
    pub max_count: u32,
}

/// A parsed search.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedSearch {
    pub query: store::SearchQuery,
    /// `_summary`. With `Summary::Count` the query asks for no page and an accurate total.
    pub summary: Option<Summary>,
    /// `_elements`: the element names to keep.
    pub elements: Option<Vec<String>>,
    /// Parameters that were ignored: unknown or unsupported ones under lenient handling, and ones
    /// without a value.
    pub warnings: Vec<SearchError>,
    /// The parameters that define the result set, sorted by name (repeated names keep their
    /// order), without `_cursor`, `_count`, `_format`, `_pretty` and ignored parameters: for `self`
    /// and `next` links.
    pub canonical: Vec<(String, String)>,
}

/// `_summary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Summary {
    True,
    Text,
    Data,
    Count,
    False,
}

/// A problem with one search parameter. The message never repeats the parameter's value, which may
/// be patient data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{param}: {message}")]
pub struct SearchError {
    /// The parameter name as given (with its modifiers or chain).
    pub param: String,
    pub message: String,
}
