//! Search-index entries: the typed values extracted from a resource at write time, one per
//! (search parameter, value). Backends store them in one table per value kind.

/// One extracted value of one search parameter of one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry {
    /// The search parameter code, e.g. `identifier`, `subject`, `_tag`.
    /// Synthetic codes ending in `:of-type` carry identifier-type tokens (see [`IndexValue::Token`]).
    pub param: String,
    pub value: IndexValue,
}

/// The value kinds of FHIR search. Strings are pre-normalised by the extractor so that backends
/// compare bytes only.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexValue {
    /// Coding, Identifier, code, boolean, ContactPoint. `text` is the normalised display/text used
    /// by `:text`. For `<param>:of-type` entries, `system` is the identifier type's system and `code`
    /// is `<type code>|<identifier value>`.
    Token {
        system: Option<String>,
        code: Option<String>,
        text: Option<String>,
    },
    /// `normalized` is lower-cased with accents and width folded (used by the default and
    /// `:contains` matches); `exact` is the value as written (used by `:exact`).
    String { normalized: String, exact: String },
    /// An inclusive range of instants in microseconds since the Unix epoch (UTC). A partial date such
    /// as `2024-03` becomes the whole month.
    Date { low: i64, high: i64 },
    /// A reference. `target_type`/`target_id` are set for relative and resolvable references
    /// (`Patient/123`); `url` is set for absolute and canonical references.
    Reference {
        target_type: Option<String>,
        target_id: Option<String>,
        url: Option<String>,
    },
    /// A quantity with its value range given by the value's precision (`5.4` is `[5.35, 5.45)`).
    Quantity {
        value: f64,
        system: Option<String>,
        code: Option<String>,
        unit: Option<String>,
    },
    /// A number (integer or decimal).
    Number { value: f64 },
    /// A URI or canonical URL, as written.
    Uri { value: String },
}

impl IndexValue {
    /// Name of the value kind, as used in table names and diagnostics.
    pub fn kind(&self) -> &'static str {
        match self {
            IndexValue::Token { .. } => "token",
            IndexValue::String { .. } => "string",
            IndexValue::Date { .. } => "date",
            IndexValue::Reference { .. } => "reference",
            IndexValue::Quantity { .. } => "quantity",
            IndexValue::Number { .. } => "number",
            IndexValue::Uri { .. } => "uri",
        }
    }
}
