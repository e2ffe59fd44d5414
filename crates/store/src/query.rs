//! The search query model: what the `search` crate parses a FHIR query string into, and what
//! backends turn into their own SQL. Values arrive normalised and typed; backends do no FHIR parsing.
//!
//! Range semantics for dates, numbers and quantities (FHIR R4 §3.1.1.4.2): a search value stands for
//! the range `[low, high]` implied by its precision, and an indexed value for its own range. With
//! search range `S = [sl, sh]` and indexed range `R = [rl, rh]` (for numbers and quantities the
//! indexed range is the single value `v`, so `rl = rh = v`):
//!
//! | prefix | matches when |
//! |---|---|
//! | `eq` | `rl >= sl && rh <= sh` (R inside S) |
//! | `ne` | not `eq` |
//! | `gt` | `rh > sh` |
//! | `lt` | `rl < sl` |
//! | `ge` | `rh >= sl` |
//! | `le` | `rl <= sh` |
//! | `sa` | `rl > sh` |
//! | `eb` | `rh < sl` |
//! | `ap` | R overlaps S widened by 10% of the value (numbers) or of the distance to now (dates); the parser does the widening, backends test overlap: `rl <= sh && rh >= sl` |
//!
//! For numbers and quantities the search range is half-open in theory (`[5.35, 5.45)`); the parser
//! gives `high` as the largest value below the bound, so backends always compare inclusively.

/// Comparison prefix of a date, number or quantity search value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Sa,
    Eb,
    Ap,
}

/// An inclusive range of instants (microseconds since the Unix epoch, UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateBound {
    pub low: i64,
    pub high: i64,
}

/// How a token's system part was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSystem {
    /// `code`: any system.
    Any,
    /// `|code`: only values without a system.
    None,
    /// `system|code` or `system|` (then `code` is `None`).
    Is(String),
}

/// String matching mode. The value is pre-normalised for `StartsWith`/`Contains` and verbatim for `Exact`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringMode {
    StartsWith,
    Exact,
    Contains,
}

/// URI matching mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriMode {
    Exact,
    /// Indexed value starts with the search value (`:below`).
    Below,
    /// Search value starts with the indexed value (`:above`).
    Above,
}

/// The value kind of a search parameter, naming the index table to look in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    Token,
    String,
    Date,
    Reference,
    Quantity,
    Number,
    Uri,
}

/// One test against the index entries of one search parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueTest {
    Token {
        system: TokenSystem,
        code: Option<String>,
    },
    /// `:text`: the normalised display/text starts with this normalised value.
    TokenText(String),
    String {
        value: String,
        mode: StringMode,
    },
    Date {
        prefix: Prefix,
        range: DateBound,
    },
    Number {
        prefix: Prefix,
        low: f64,
        high: f64,
    },
    /// `system`/`code` restrict the unit (`code` matches the coded unit or, without a system, the
    /// unit text too).
    Quantity {
        prefix: Prefix,
        low: f64,
        high: f64,
        system: Option<String>,
        code: Option<String>,
    },
    /// `Type/id`, `id` (any type, or `target_type` from a `:Type` modifier), or an absolute `url`.
    Reference {
        target_type: Option<String>,
        id: Option<String>,
        url: Option<String>,
    },
    Uri {
        value: String,
        mode: UriMode,
    },
}

impl ValueTest {
    /// The index table this test reads.
    pub fn kind(&self) -> ParamKind {
        match self {
            ValueTest::Token { .. } | ValueTest::TokenText(_) => ParamKind::Token,
            ValueTest::String { .. } => ParamKind::String,
            ValueTest::Date { .. } => ParamKind::Date,
            ValueTest::Number { .. } => ParamKind::Number,
            ValueTest::Quantity { .. } => ParamKind::Quantity,
            ValueTest::Reference { .. } => ParamKind::Reference,
            ValueTest::Uri { .. } => ParamKind::Uri,
        }
    }
}

/// The parameter a condition reads: its code on the resource type being tested.
pub type ParamRef = String;

/// One alternative of a search filter, tested against a candidate resource.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `_id`.
    Id(String),
    /// `_lastUpdated`.
    LastUpdated { prefix: Prefix, range: DateBound },
    /// The resource has an index entry of `param` passing `test`.
    Match { param: ParamRef, test: ValueTest },
    /// `:missing=true` (no entry of `param` of this kind) or `:missing=false` (at least one).
    Missing {
        param: ParamRef,
        kind: ParamKind,
        missing: bool,
    },
    /// The resource does not satisfy the inner condition (token `:not`; resources without any value match).
    Not(Box<Condition>),
    /// Chaining: the resource's `reference` parameter points at a resource of one of `target_types`
    /// that satisfies `inner`.
    Chain {
        reference: ParamRef,
        target_types: Vec<String>,
        inner: Box<Condition>,
    },
    /// Reverse chaining (`_has:source_type:reference_param:...`): some current resource of
    /// `source_type` whose `reference_param` points at this resource satisfies `inner`.
    Has {
        source_type: String,
        reference_param: ParamRef,
        inner: Box<Condition>,
    },
}

/// What to sort by.
#[derive(Debug, Clone, PartialEq)]
pub enum SortParam {
    Id,
    LastUpdated,
    /// A search parameter; ascending sorts use the smallest value (dates: range low), descending the
    /// largest (dates: range high). Resources without a value sort last in either direction.
    Param {
        code: ParamRef,
        kind: ParamKind,
    },
}

/// One `_sort` key.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub param: SortParam,
    pub descending: bool,
}

/// `_include` or `_revinclude` (`source_type:param[:target_type]`, optionally `:iterate`).
#[derive(Debug, Clone, PartialEq)]
pub struct Include {
    pub source_type: String,
    pub param: ParamRef,
    pub target_type: Option<String>,
    /// Also applied (one more level) to resources that were themselves included.
    pub iterate: bool,
}

/// `_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TotalMode {
    #[default]
    None,
    Accurate,
}

/// An opaque keyset position issued by a backend. Only the backend that issued it can read it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageCursor(pub String);

/// A parsed search.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SearchQuery {
    /// Resource types searched. One for a type search; empty for a system search over every type
    /// (or the `_type` list).
    pub types: Vec<String>,
    /// Restricts to the compartment of this Patient id.
    pub compartment: Option<String>,
    /// Conditions: every inner list must hold (AND); within one, any alternative may (OR).
    pub filters: Vec<Vec<Condition>>,
    /// Sort keys, most significant first. The resource's storage order breaks ties, so order is total.
    pub sort: Vec<SortKey>,
    /// Page size. Zero means only the total is wanted.
    pub count: u32,
    /// Continue from here (a cursor from a previous page of the same query).
    pub cursor: Option<PageCursor>,
    pub total: TotalMode,
    pub includes: Vec<Include>,
    pub revincludes: Vec<Include>,
}

impl SearchQuery {
    /// The same selection reduced to what [`crate::Store::exists`] asks: its types, compartment
    /// and conditions, first match only, unsorted, from the start, without includes or total.
    pub fn to_existence(&self) -> SearchQuery {
        SearchQuery {
            types: self.types.clone(),
            compartment: self.compartment.clone(),
            filters: self.filters.clone(),
            count: 1,
            ..SearchQuery::default()
        }
    }
}
