//! The FHIRPath subset used by the official R4 search parameter expressions: paths over FHIR JSON
//! (with choice elements such as `Observation.value` → `valueQuantity`), `|` unions, indexers,
//! `where(...)`, `as`/`is`/`ofType`, `resolve()`, `exists()`, `empty()`, `not()`, `first()`,
//! `extension('url')`, `=`/`!=`, `and`/`or` and string/boolean/number literals.
//!
//! Expressions are compiled once per (base type, parameter) when the registry is built;
//! evaluation walks the JSON by reference and hands each resulting item to a callback, so it
//! allocates nothing.

#[cfg(test)]
mod tests;

use serde_json::Value;

/// A compiled expression, specialised for one base resource type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    /// The resource itself (a leading type name that matches the base type, `Resource` or
    /// `DomainResource`).
    Root,
    /// A leading type name of another resource type: selects nothing.
    Nothing,
    /// The current item: the resource at the top level, the candidate inside `where(...)`.
    This,
    /// `input.name`; choice elements (`value` → `valueQuantity`) are found by their key prefix.
    Child(Box<Expr>, String),
    /// `input[index]`.
    Index(Box<Expr>, usize),
    /// `a | b | ...` (duplicates are not removed: the extractor deduplicates index entries).
    Union(Vec<Expr>),
    /// `input.where(criterion)`.
    Where(Box<Expr>, Box<Expr>),
    /// `input as T`, `input.as(T)`, `input.ofType(T)`: the items of type `T`.
    OfType(Box<Expr>, String),
    /// `input is T`, `input.is(T)`.
    Is(Box<Expr>, String),
    /// `input.resolve()`: for each reference, a stand-in for its target that knows only its type.
    Resolve(Box<Expr>),
    /// `input.exists()`.
    Exists(Box<Expr>),
    /// `input.empty()`.
    Empty(Box<Expr>),
    /// `input.not()`.
    Not(Box<Expr>),
    /// `input.first()`.
    First(Box<Expr>),
    /// `input.extension('url')`.
    Extension(Box<Expr>, String),
    /// `a = b` (`negated`: `a != b`).
    Equals {
        left: Box<Expr>,
        right: Box<Expr>,
        negated: bool,
    },
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Literal(Literal),
}

/// A literal in an expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Bool(bool),
    String(String),
    /// A number, kept as written and compared by value.
    Number(String),
}

/// One item of an evaluation result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Item<'a> {
    /// A JSON element. `choice_type` is the FHIR type named by a choice element's key suffix
    /// (`valueQuantity` → `Quantity`), when the item was reached through one.
    Node {
        value: &'a Value,
        choice_type: Option<&'static str>,
    },
    /// A boolean computed by the expression (`exists()`, `=`, `and`, …).
    Bool(bool),
    /// A literal of the expression.
    Literal(&'a Literal),
    /// The target of a resolved reference, known only by its resource type.
    Resolved(&'a str),
}

/// Why an expression could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("FHIRPath: {message} at offset {offset}")]
pub(crate) struct CompileError {
    pub offset: usize,
    pub message: String,
}

/// The FHIR data types that may follow a choice element's name in a JSON key (`value[x]`).
const CHOICE_TYPES: &[&str] = &[
    "Base64Binary",
    "Boolean",
    "Canonical",
    "Code",
    "Date",
    "DateTime",
    "Decimal",
    "Id",
    "Instant",
    "Integer",
    "Markdown",
    "Oid",
    "PositiveInt",
    "String",
    "Time",
    "UnsignedInt",
    "Uri",
    "Url",
    "Uuid",
    "Address",
    "Age",
    "Annotation",
    "Attachment",
    "CodeableConcept",
    "Coding",
    "ContactPoint",
    "Count",
    "Distance",
    "Duration",
    "HumanName",
    "Identifier",
    "Money",
    "Period",
    "Quantity",
    "Range",
    "Ratio",
    "Reference",
    "SampledData",
    "Signature",
    "Timing",
    "ContactDetail",
    "Contributor",
    "DataRequirement",
    "Expression",
    "ParameterDefinition",
    "RelatedArtifact",
    "TriggerDefinition",
    "UsageContext",
    "Dosage",
    "Meta",
];

/// Splits a multi-type expression (`A.x | B.y | (C.z as T)`) into its top-level union branches
/// and keeps those that apply to `base_type`: branches anchored on `base_type`, `Resource` or
/// `DomainResource`, and relative ones (`alias`). Returns `None` when no branch applies.
///
/// An expression whose top level also has operators binding looser than `|` is kept whole.
pub(crate) fn branches_for(expression: &str, base_type: &str) -> Option<String> {
    let Ok(tokens) = tokenize(expression) else {
        return Some(expression.to_owned());
    };
    let mut depth = 0usize;
    let mut cuts = Vec::new();
    for token in &tokens {
        match &token.kind {
            TokenKind::Punct("(" | "[") => depth += 1,
            TokenKind::Punct(")" | "]") => depth = depth.saturating_sub(1),
            TokenKind::Punct("|") if depth == 0 => cuts.push(token.offset),
            TokenKind::Punct("=" | "!=" | "<" | ">" | "<=" | ">=") if depth == 0 => {
                return Some(expression.to_owned());
            }
            TokenKind::Ident(word) if depth == 0 && matches!(word.as_str(), "and" | "or") => {
                return Some(expression.to_owned());
            }
            _ => {}
        }
    }
    let mut start = 0;
    let mut kept = Vec::new();
    for end in cuts.into_iter().chain([expression.len()]) {
        let branch = expression[start..end].trim();
        start = end + 1;
        let anchor = branch
            .trim_start_matches(|c: char| c == '(' || c.is_whitespace())
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .next()
            .unwrap_or_default();
        let applies = !anchor.starts_with(|c: char| c.is_ascii_uppercase())
            || anchor == base_type
            || anchor == "Resource"
            || anchor == "DomainResource";
        if applies {
            kept.push(branch);
        }
    }
    (!kept.is_empty()).then(|| kept.join(" | "))
}

/// Compiles `expression` for resources of type `base_type`.
pub(crate) fn compile(expression: &str, base_type: &str) -> Result<Expr, CompileError> {
    let tokens = tokenize(expression)?;
    let mut parser = Parser {
        tokens,
        position: 0,
        base_type,
        end: expression.len(),
    };
    let expr = parser.expression()?;
    match parser.peek() {
        None => Ok(expr),
        Some(token) => Err(CompileError {
            offset: token.offset,
            message: "unexpected token".to_owned(),
        }),
    }
}

impl Expr {
    /// Evaluates the expression against `resource` and calls `emit` for each resulting item.
    pub(crate) fn evaluate<'a>(&'a self, resource: &'a Value, emit: &mut dyn FnMut(Item<'a>)) {
        let root = Item::Node {
            value: resource,
            choice_type: None,
        };
        self.each(root, root, emit);
    }

    /// Streams the items of this expression, with `root` the resource and `this` the focus.
    fn each<'a>(&'a self, root: Item<'a>, this: Item<'a>, emit: &mut dyn FnMut(Item<'a>)) {
        match self {
            Expr::Root => emit(root),
            Expr::Nothing => {}
            Expr::This => emit(this),
            Expr::Child(input, name) => {
                input.each(root, this, &mut |item| children(item, name, emit));
            }
            Expr::Index(input, wanted) => {
                let mut position = 0usize;
                input.each(root, this, &mut |item| {
                    if position == *wanted {
                        emit(item);
                    }
                    position += 1;
                });
            }
            Expr::First(input) => {
                let mut first = true;
                input.each(root, this, &mut |item| {
                    if std::mem::take(&mut first) {
                        emit(item);
                    }
                });
            }
            Expr::Union(branches) => {
                for branch in branches {
                    branch.each(root, this, emit);
                }
            }
            Expr::Where(input, criterion) => input.each(root, this, &mut |item| {
                if criterion.truth(root, item) == Some(true) {
                    emit(item);
                }
            }),
            Expr::OfType(input, type_name) => input.each(root, this, &mut |item| {
                if is_of_type(item, type_name) {
                    emit(item);
                }
            }),
            Expr::Resolve(input) => input.each(root, this, &mut |item| {
                if let Some(target_type) = reference_target_type(item) {
                    emit(Item::Resolved(target_type));
                }
            }),
            Expr::Extension(input, url) => input.each(root, this, &mut |item| {
                let Item::Node { value, .. } = item else {
                    return;
                };
                let Some(Value::Array(extensions)) = value.get("extension") else {
                    return;
                };
                for extension in extensions {
                    if extension.get("url").and_then(Value::as_str) == Some(url.as_str()) {
                        emit(Item::Node {
                            value: extension,
                            choice_type: None,
                        });
                    }
                }
            }),
            Expr::Exists(input) => {
                let mut any = false;
                input.each(root, this, &mut |_| any = true);
                emit(Item::Bool(any));
            }
            Expr::Empty(input) => {
                let mut any = false;
                input.each(root, this, &mut |_| any = true);
                emit(Item::Bool(!any));
            }
            Expr::Literal(literal) => emit(Item::Literal(literal)),
            Expr::Is(..) | Expr::Not(_) | Expr::Equals { .. } | Expr::And(..) | Expr::Or(..) => {
                if let Some(value) = self.truth(root, this) {
                    emit(Item::Bool(value));
                }
            }
        }
    }

    /// The three-valued boolean of this expression: `None` for an empty (or not singleton) result.
    fn truth<'a>(&'a self, root: Item<'a>, this: Item<'a>) -> Option<bool> {
        match self {
            Expr::Is(input, type_name) => {
                singleton(input, root, this).map(|item| is_of_type(item, type_name))
            }
            Expr::Not(input) => input.truth(root, this).map(|value| !value),
            Expr::Equals {
                left,
                right,
                negated,
            } => {
                let left = singleton(left, root, this)?;
                let right = singleton(right, root, this)?;
                Some(items_equal(left, right) != *negated)
            }
            Expr::And(left, right) => match (left.truth(root, this), right.truth(root, this)) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            },
            Expr::Or(left, right) => match (left.truth(root, this), right.truth(root, this)) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            },
            _ => match singleton(self, root, this)? {
                Item::Bool(value) => Some(value),
                Item::Node {
                    value: Value::Bool(value),
                    ..
                } => Some(*value),
                // FHIRPath singleton evaluation: one non-boolean item counts as true.
                _ => Some(true),
            },
        }
    }
}

/// The single item of `expr`, or `None` when it yields none or several.
fn singleton<'a>(expr: &'a Expr, root: Item<'a>, this: Item<'a>) -> Option<Item<'a>> {
    let mut found = None;
    let mut count = 0usize;
    expr.each(root, this, &mut |item| {
        count += 1;
        found = Some(item);
    });
    if count == 1 { found } else { None }
}

/// Emits the children called `name` of `item`, flattening arrays and finding choice elements.
fn children<'a>(item: Item<'a>, name: &str, emit: &mut dyn FnMut(Item<'a>)) {
    let Item::Node {
        value: Value::Object(object),
        ..
    } = item
    else {
        return;
    };
    if let Some(child) = object.get(name) {
        emit_flattened(child, None, emit);
        return;
    }
    for (key, child) in object {
        let Some(suffix) = key.strip_prefix(name) else {
            continue;
        };
        if let Some(choice_type) = CHOICE_TYPES.iter().find(|known| **known == suffix) {
            emit_flattened(child, Some(choice_type), emit);
        }
    }
}

fn emit_flattened<'a>(
    value: &'a Value,
    choice_type: Option<&'static str>,
    emit: &mut dyn FnMut(Item<'a>),
) {
    match value {
        Value::Array(elements) => {
            for element in elements {
                emit(Item::Node {
                    value: element,
                    choice_type,
                });
            }
        }
        Value::Null => {}
        _ => emit(Item::Node { value, choice_type }),
    }
}

/// FHIRPath equality of two singletons: same primitive value (types must agree).
fn items_equal(left: Item<'_>, right: Item<'_>) -> bool {
    match (primitive(left), primitive(right)) {
        (Some(Primitive::Bool(a)), Some(Primitive::Bool(b))) => a == b,
        (Some(Primitive::Str(a)), Some(Primitive::Str(b))) => a == b,
        (Some(Primitive::Number(a)), Some(Primitive::Number(b))) => {
            match (a.parse::<f64>(), b.parse::<f64>()) {
                (Ok(a), Ok(b)) => a == b,
                _ => a == b,
            }
        }
        (Some(Primitive::Str(a)), Some(Primitive::Resolved(b)))
        | (Some(Primitive::Resolved(a)), Some(Primitive::Str(b))) => a == b,
        _ => false,
    }
}

enum Primitive<'a> {
    Bool(bool),
    Str(&'a str),
    Number(&'a str),
    Resolved(&'a str),
}

fn primitive(item: Item<'_>) -> Option<Primitive<'_>> {
    match item {
        Item::Bool(value) => Some(Primitive::Bool(value)),
        Item::Resolved(target) => Some(Primitive::Resolved(target)),
        Item::Literal(Literal::Bool(value)) => Some(Primitive::Bool(*value)),
        Item::Literal(Literal::String(value)) => Some(Primitive::Str(value)),
        Item::Literal(Literal::Number(value)) => Some(Primitive::Number(value)),
        Item::Node { value, .. } => match value {
            Value::Bool(value) => Some(Primitive::Bool(*value)),
            Value::String(value) => Some(Primitive::Str(value)),
            Value::Number(number) => Some(Primitive::Number(number.as_str())),
            _ => None,
        },
    }
}

/// Whether `item` is of the FHIR type `type_name` (as in `as T`, `is T`, `ofType(T)`).
///
/// Choice elements know their type from their key; other items are judged by shape.
pub(crate) fn is_of_type(item: Item<'_>, type_name: &str) -> bool {
    match item {
        Item::Resolved(target) => target == type_name,
        Item::Bool(_) | Item::Literal(Literal::Bool(_)) => {
            type_name.eq_ignore_ascii_case("boolean")
        }
        Item::Literal(Literal::String(_)) => type_name.eq_ignore_ascii_case("string"),
        Item::Literal(Literal::Number(_)) => type_name.eq_ignore_ascii_case("decimal"),
        Item::Node {
            choice_type: Some(choice_type),
            ..
        } => {
            choice_type.eq_ignore_ascii_case(type_name)
                || (type_name == "Quantity"
                    && matches!(choice_type, "Age" | "Count" | "Distance" | "Duration"))
        }
        Item::Node {
            value,
            choice_type: None,
        } => shape_is(value, type_name),
    }
}

/// Shape-based type test for items that were not reached through a choice element.
fn shape_is(value: &Value, type_name: &str) -> bool {
    match value {
        Value::Bool(_) => type_name.eq_ignore_ascii_case("boolean"),
        Value::Number(_) => matches!(
            type_name,
            "decimal" | "integer" | "positiveInt" | "unsignedInt"
        ),
        // Strings carry no type in JSON: every string primitive type matches.
        Value::String(_) => type_name.starts_with(|c: char| c.is_ascii_lowercase()),
        Value::Object(object) => {
            if let Some(resource_type) = object.get("resourceType").and_then(Value::as_str) {
                return resource_type == type_name
                    || type_name == "Resource"
                    || type_name == "DomainResource";
            }
            let has = |key: &str| object.contains_key(key);
            match type_name {
                "CodeableConcept" => has("coding") || (has("text") && object.len() == 1),
                "Coding" => (has("system") || has("code")) && !has("value"),
                "Reference" => has("reference") || has("identifier") || has("display"),
                "Identifier" => has("value") || has("system") || has("assigner"),
                "Period" => has("start") || has("end"),
                "Quantity" | "Age" | "Duration" | "Distance" | "Count" | "SimpleQuantity" => {
                    has("value") && !has("currency")
                }
                "Money" => has("currency"),
                "Range" => has("low") || has("high"),
                "HumanName" => has("family") || has("given"),
                "Timing" => has("event") || has("repeat"),
                _ => false,
            }
        }
        Value::Null | Value::Array(_) => false,
    }
}

/// The resource type a reference item points at (`Patient/1`, `http://x/Patient/1`,
/// `Patient/1/_history/2`, or the reference's `type` element).
pub(crate) fn reference_target_type<'a>(item: Item<'a>) -> Option<&'a str> {
    let Item::Node {
        value: Value::Object(object),
        ..
    } = item
    else {
        return None;
    };
    if let Some(reference) = object.get("reference").and_then(Value::as_str)
        && let Some(target_type) = reference_type_part(reference)
    {
        return Some(target_type);
    }
    object.get("type").and_then(Value::as_str)
}

/// The `Type` of `Type/id`, `Type/id/_history/v` or `.../Type/id`, if it looks like a resource
/// type.
pub(crate) fn reference_type_part(reference: &str) -> Option<&str> {
    if reference.starts_with('#') || reference.starts_with("urn:") {
        return None;
    }
    let path = reference.split(['?', '#']).next().unwrap_or_default();
    let mut segments: Vec<&str> = path.split('/').collect();
    if segments.len() >= 4 && segments[segments.len() - 2] == "_history" {
        segments.truncate(segments.len() - 2);
    }
    let [.., target_type, id] = segments.as_slice() else {
        return None;
    };
    let looks_like_type = target_type.starts_with(|c: char| c.is_ascii_uppercase())
        && target_type.chars().all(|c| c.is_ascii_alphanumeric());
    (looks_like_type && !id.is_empty()).then_some(*target_type)
}

// ---------------------------------------------------------------------------------------------
// Tokenizer and parser.

#[derive(Debug, Clone, PartialEq)]
enum TokenKind {
    Ident(String),
    String(String),
    Number(String),
    Punct(&'static str),
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    kind: TokenKind,
    offset: usize,
}

const PUNCTUATION: &[&str] = &[
    "!=", "<=", ">=", "!~", ".", "(", ")", "[", "]", "|", "=", ",", "<", ">", "~", "+", "-", "*",
    "/", "&", "$", "%",
];

fn tokenize(text: &str) -> Result<Vec<Token>, CompileError> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut position = 0;
    while position < bytes.len() {
        let byte = bytes[position];
        let start = position;
        if byte.is_ascii_whitespace() {
            position += 1;
            continue;
        }
        let kind = if byte.is_ascii_alphabetic() || byte == b'_' {
            while position < bytes.len()
                && (bytes[position].is_ascii_alphanumeric() || bytes[position] == b'_')
            {
                position += 1;
            }
            TokenKind::Ident(text[start..position].to_owned())
        } else if byte == b'`' {
            let end = text[start + 1..].find('`').ok_or_else(|| CompileError {
                offset: start,
                message: "unterminated delimited identifier".to_owned(),
            })?;
            position = start + 1 + end + 1;
            TokenKind::Ident(text[start + 1..start + 1 + end].to_owned())
        } else if byte.is_ascii_digit() {
            while position < bytes.len()
                && (bytes[position].is_ascii_digit() || bytes[position] == b'.')
            {
                position += 1;
            }
            TokenKind::Number(text[start..position].to_owned())
        } else if byte == b'\'' {
            let mut value = String::new();
            let mut chars = text[start + 1..].char_indices();
            loop {
                let Some((offset, c)) = chars.next() else {
                    return Err(CompileError {
                        offset: start,
                        message: "unterminated string".to_owned(),
                    });
                };
                match c {
                    '\'' => {
                        position = start + 1 + offset + 1;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, 't')) => value.push('\t'),
                        Some((_, 'r')) => value.push('\r'),
                        Some((_, escaped)) => value.push(escaped),
                        None => {}
                    },
                    c => value.push(c),
                }
            }
            TokenKind::String(value)
        } else {
            let rest = &text[start..];
            let punct = PUNCTUATION
                .iter()
                .find(|punct| rest.starts_with(**punct))
                .ok_or_else(|| CompileError {
                    offset: start,
                    message: "unexpected character".to_owned(),
                })?;
            position += punct.len();
            TokenKind::Punct(punct)
        };
        tokens.push(Token {
            kind,
            offset: start,
        });
    }
    Ok(tokens)
}

struct Parser<'s> {
    tokens: Vec<Token>,
    position: usize,
    base_type: &'s str,
    end: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn offset(&self) -> usize {
        self.peek().map_or(self.end, |token| token.offset)
    }

    fn error<T>(&self, message: &str) -> Result<T, CompileError> {
        Err(CompileError {
            offset: self.offset(),
            message: message.to_owned(),
        })
    }

    fn eat_punct(&mut self, punct: &str) -> bool {
        if matches!(self.peek(), Some(Token { kind: TokenKind::Punct(p), .. }) if *p == punct) {
            self.position += 1;
            true
        } else {
            false
        }
    }

    fn eat_word(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Token { kind: TokenKind::Ident(w), .. }) if w == word) {
            self.position += 1;
            true
        } else {
            false
        }
    }

    fn expect_punct(&mut self, punct: &str) -> Result<(), CompileError> {
        if self.eat_punct(punct) {
            Ok(())
        } else {
            self.error(&format!("expected `{punct}`"))
        }
    }

    fn identifier(&mut self) -> Result<String, CompileError> {
        match self.peek() {
            Some(Token {
                kind: TokenKind::Ident(name),
                ..
            }) => {
                let name = name.clone();
                self.position += 1;
                Ok(name)
            }
            _ => self.error("expected an identifier"),
        }
    }

    /// `or` (lowest precedence in this subset; `xor` and `implies` are not supported).
    fn expression(&mut self) -> Result<Expr, CompileError> {
        let mut left = self.and()?;
        while self.eat_word("or") {
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, CompileError> {
        let mut left = self.equality()?;
        while self.eat_word("and") {
            let right = self.equality()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn equality(&mut self) -> Result<Expr, CompileError> {
        let mut left = self.union()?;
        loop {
            let negated = if self.eat_punct("=") {
                false
            } else if self.eat_punct("!=") {
                true
            } else {
                break;
            };
            let right = self.union()?;
            left = Expr::Equals {
                left: Box::new(left),
                right: Box::new(right),
                negated,
            };
        }
        Ok(left)
    }

    fn union(&mut self) -> Result<Expr, CompileError> {
        let first = self.type_operation()?;
        if !matches!(
            self.peek(),
            Some(Token {
                kind: TokenKind::Punct("|"),
                ..
            })
        ) {
            return Ok(first);
        }
        let mut branches = vec![first];
        while self.eat_punct("|") {
            branches.push(self.type_operation()?);
        }
        Ok(Expr::Union(branches))
    }

    fn type_operation(&mut self) -> Result<Expr, CompileError> {
        let mut expr = self.postfix()?;
        loop {
            if self.eat_word("as") {
                expr = Expr::OfType(Box::new(expr), self.type_specifier()?);
            } else if self.eat_word("is") {
                expr = Expr::Is(Box::new(expr), self.type_specifier()?);
            } else {
                return Ok(expr);
            }
        }
    }

    /// `T`, `FHIR.T` or `System.T`; the namespace is dropped.
    fn type_specifier(&mut self) -> Result<String, CompileError> {
        let mut name = self.identifier()?;
        if (name == "FHIR" || name == "System") && self.eat_punct(".") {
            name = self.identifier()?;
        }
        Ok(name)
    }

    fn postfix(&mut self) -> Result<Expr, CompileError> {
        let mut expr = self.term()?;
        loop {
            if self.eat_punct(".") {
                let offset = self.offset();
                let name = self.identifier()?;
                expr = if self.eat_punct("(") {
                    self.function(expr, &name, offset)?
                } else {
                    Expr::Child(Box::new(expr), name)
                };
            } else if self.eat_punct("[") {
                let index = match self.peek() {
                    Some(Token {
                        kind: TokenKind::Number(number),
                        ..
                    }) => number.parse::<usize>().ok(),
                    _ => None,
                };
                let Some(index) = index else {
                    return self.error("only integer indexers are supported");
                };
                self.position += 1;
                self.expect_punct("]")?;
                expr = Expr::Index(Box::new(expr), index);
            } else {
                return Ok(expr);
            }
        }
    }

    fn term(&mut self) -> Result<Expr, CompileError> {
        let Some(token) = self.peek().cloned() else {
            return self.error("unexpected end of expression");
        };
        self.position += 1;
        match token.kind {
            TokenKind::Punct("(") => {
                let inner = self.expression()?;
                self.expect_punct(")")?;
                Ok(inner)
            }
            TokenKind::Punct("$") => {
                let name = self.identifier()?;
                if name == "this" {
                    Ok(Expr::This)
                } else {
                    self.error("unsupported variable")
                }
            }
            TokenKind::String(value) => Ok(Expr::Literal(Literal::String(value))),
            TokenKind::Number(value) => Ok(Expr::Literal(Literal::Number(value))),
            TokenKind::Ident(word) if word == "true" || word == "false" => {
                Ok(Expr::Literal(Literal::Bool(word == "true")))
            }
            TokenKind::Ident(name) => {
                if self.eat_punct("(") {
                    return self.function(Expr::This, &name, token.offset);
                }
                if name.starts_with(|c: char| c.is_ascii_uppercase()) {
                    let anchors_here =
                        name == self.base_type || name == "Resource" || name == "DomainResource";
                    return Ok(if anchors_here {
                        Expr::Root
                    } else {
                        Expr::Nothing
                    });
                }
                Ok(Expr::Child(Box::new(Expr::This), name))
            }
            TokenKind::Punct(_) => {
                self.position -= 1;
                self.error("unsupported operator")
            }
        }
    }

    /// A function call on `input`; the opening parenthesis has been consumed. `offset` is where
    /// the function's name starts.
    fn function(&mut self, input: Expr, name: &str, offset: usize) -> Result<Expr, CompileError> {
        let input = Box::new(input);
        let expr = match name {
            "where" => {
                let criterion = self.expression()?;
                Expr::Where(input, Box::new(criterion))
            }
            "as" | "ofType" => Expr::OfType(input, self.type_specifier()?),
            "is" => Expr::Is(input, self.type_specifier()?),
            "extension" => match self.peek().cloned() {
                Some(Token {
                    kind: TokenKind::String(url),
                    ..
                }) => {
                    self.position += 1;
                    Expr::Extension(input, url)
                }
                _ => return self.error("extension() takes a string literal"),
            },
            "resolve" => Expr::Resolve(input),
            "exists" => {
                if matches!(
                    self.peek(),
                    Some(Token {
                        kind: TokenKind::Punct(")"),
                        ..
                    })
                ) {
                    Expr::Exists(input)
                } else {
                    let criterion = self.expression()?;
                    Expr::Exists(Box::new(Expr::Where(input, Box::new(criterion))))
                }
            }
            "empty" => Expr::Empty(input),
            "not" => Expr::Not(input),
            "first" => Expr::First(input),
            _ => {
                return Err(CompileError {
                    offset,
                    message: "unsupported function".to_owned(),
                });
            }
        };
        self.expect_punct(")")?;
        Ok(expr)
    }
}
