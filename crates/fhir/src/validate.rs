//! Structural validation of a resource against the compiled R4 schema.
//!
//! One walk over the JSON value checks element names, JSON types, primitive formats and ranges, codes
//! from required value sets, mandatory elements, choice groups, FHIR JSON's rules on `null`, empty
//! values and primitive extensions (`_birthDate`, `_given`), and dispatches contained and embedded
//! resources on their `resourceType`. Diagnostics name the element and the rule, never the value.

use std::fmt::Write;

use serde_json::{Map, Value};

use crate::schema::{Complex, Definition, JsonType, Primitive, Property, Rule, Schema};
use crate::{Issue, IssueCode};

/// Checks a resource against the R4 structure definitions; an empty result means it is valid.
///
/// Each issue has severity `error` and, unless it concerns the whole resource, an expression such as
/// `Patient.name[0].given[1]` or `Bundle.entry[2].resource.ofType(Observation).valueQuantity.value`.
/// At most a hundred issues are reported, followed by a `warning` saying that more were found.
pub fn validate_resource(resource: &Value) -> Vec<Issue> {
    let mut validator = Validator {
        schema: Schema::get(),
        path: Vec::new(),
        issues: Vec::new(),
    };
    validator.resource(resource, 0);
    validator.issues
}

/// The number of issues reported before the validator says "and more".
const MAX_ISSUES: usize = 100;

/// Objects nested deeper than this are rejected rather than walked: this bounds the recursion on
/// values that were built in code rather than parsed (the parser stops at 128 levels).
const MAX_DEPTH: usize = 256;

struct Validator<'a> {
    schema: &'static Schema,
    /// Where the walk is, rendered into an expression only when an issue is reported.
    path: Vec<Segment<'a>>,
    issues: Vec<Issue>,
}

/// One step of a FHIRPath expression.
#[derive(Debug, Clone, Copy)]
enum Segment<'a> {
    /// A JSON property; the first one is the resource type.
    Element(&'a str),
    /// A position in an array.
    Index(usize),
    /// An embedded resource of this type (`ofType(Observation)`).
    OfType(&'a str),
}

impl<'a> Validator<'a> {
    /// Validates a resource, found at the top level or as a contained or embedded resource.
    fn resource(&mut self, value: &'a Value, depth: usize) {
        let Value::Object(object) = value else {
            self.report(
                IssueCode::Structure,
                format!("expected a resource (a JSON object), found {}", kind(value)),
            );
            return;
        };
        let resource_type = match object.get("resourceType") {
            Some(Value::String(resource_type)) => resource_type,
            Some(other) => {
                let message = format!("`resourceType` must be a string, found {}", kind(other));
                self.within(Segment::Element("resourceType"), |validator| {
                    validator.report(IssueCode::Structure, message);
                });
                return;
            }
            None => {
                self.report(
                    IssueCode::Required,
                    "missing required element `resourceType`",
                );
                return;
            }
        };
        let Some(definition) = self.schema.resource(resource_type) else {
            self.within(Segment::Element("resourceType"), |validator| {
                validator.report(IssueCode::Structure, "unknown resource type");
            });
            return;
        };
        let segment = if self.path.is_empty() {
            Segment::Element(resource_type)
        } else {
            Segment::OfType(resource_type)
        };
        self.within(segment, |validator| {
            validator.object(object, definition, depth)
        });
    }

    /// Validates the properties of an object against its type.
    fn object(&mut self, object: &'a Map<String, Value>, complex: &'static Complex, depth: usize) {
        if object.is_empty() {
            self.report(IssueCode::Structure, "an empty object is not allowed");
            return;
        }
        if depth > MAX_DEPTH {
            self.report(IssueCode::TooCostly, "elements are nested too deeply");
            return;
        }
        // Bit `i` is set once a variant of `complex.choices[i]` was seen, and in `conflicts` once a
        // second one was reported.
        let mut chosen = 0u64;
        let mut conflicts = 0u64;
        for (name, value) in object {
            let Some(property) = complex.properties.get(name.as_str()) else {
                self.within(Segment::Element(name), |validator| {
                    validator.report(
                        IssueCode::Structure,
                        format!("unknown element `{}`", element_name(name)),
                    );
                });
                continue;
            };
            // `_valueString` next to `valueString` is the same variant: only the latter counts.
            if let Some(choice) = property.choice
                && name
                    .strip_prefix('_')
                    .is_none_or(|base| !object.contains_key(base))
            {
                let bit = 1u64 << choice;
                if chosen & bit != 0 && conflicts & bit == 0 {
                    conflicts |= bit;
                    self.report_choice_conflict(object, complex, choice);
                }
                chosen |= bit;
            }
            self.within(Segment::Element(name), |validator| {
                validator.property(object, name, value, property, depth);
            });
        }
        for mandatory in &complex.mandatory {
            if !mandatory
                .present_as
                .iter()
                .any(|name| object.contains_key(&**name))
            {
                self.report(
                    IssueCode::Required,
                    format!("missing required element `{}`", mandatory.element),
                );
            }
        }
    }

    /// Validates the value of one property of `object`, an array or a single value.
    fn property(
        &mut self,
        object: &'a Map<String, Value>,
        name: &'a str,
        value: &'a Value,
        property: &Property,
        depth: usize,
    ) {
        if !property.array {
            self.value(value, &property.rule, depth);
            return;
        }
        let Value::Array(items) = value else {
            self.report(
                IssueCode::Structure,
                format!("expected an array, found {}", kind(value)),
            );
            return;
        };
        if items.is_empty() {
            self.report(IssueCode::Structure, "an empty array is not allowed");
            return;
        }
        for (index, item) in items.iter().enumerate() {
            self.within(Segment::Index(index), |validator| {
                if !item.is_null() {
                    validator.value(item, &property.rule, depth);
                } else if !paired_value_at(object, name, index) {
                    validator.report(
                        IssueCode::Structure,
                        "null is only allowed in an array of primitives whose `_` sibling has a value at the same position",
                    );
                }
            });
        }
        if let Some(base) = name.strip_prefix('_')
            && let Some(Value::Array(values)) = object.get(base)
            && values.len() != items.len()
        {
            self.report(
                IssueCode::Structure,
                format!("`{name}` must have as many entries as `{base}`"),
            );
        }
    }

    /// Validates one value against a rule.
    fn value(&mut self, value: &'a Value, rule: &Rule, depth: usize) {
        match rule {
            Rule::Type(id) => match self.schema.definition(*id) {
                Definition::Primitive(primitive) => self.primitive(value, primitive),
                Definition::Complex(complex) => match value {
                    Value::Object(object) => self.object(object, complex, depth + 1),
                    other => self.report(
                        IssueCode::Structure,
                        format!("expected an object, found {}", kind(other)),
                    ),
                },
                Definition::Xhtml => match value {
                    Value::String(text) if text.is_empty() => self.report_empty_string(),
                    Value::String(_) => {}
                    other => self.report(
                        IssueCode::Structure,
                        format!(
                            "expected a JSON string (FHIR `xhtml`), found {}",
                            kind(other)
                        ),
                    ),
                },
                Definition::AnyResource => self.resource(value, depth + 1),
            },
            Rule::Code(codes) => match value {
                Value::String(code) if code.is_empty() => self.report_empty_string(),
                Value::String(code) if codes.iter().any(|allowed| **allowed == **code) => {}
                Value::String(_) => self.report(IssueCode::CodeInvalid, not_an_allowed_code(codes)),
                other => self.report(
                    IssueCode::Structure,
                    format!(
                        "expected a JSON string (FHIR `code`), found {}",
                        kind(other)
                    ),
                ),
            },
            Rule::Const(expected) => {
                if value.as_str() != Some(&**expected) {
                    self.report(IssueCode::Value, format!("must be `{expected}`"));
                }
            }
        }
    }

    /// Validates a primitive value: JSON type, size, format and range.
    fn primitive(&mut self, value: &Value, primitive: &Primitive) {
        match (primitive.json_type, value) {
            (JsonType::String, Value::String(text)) => {
                if text.is_empty() {
                    self.report_empty_string();
                } else if primitive
                    .max_bytes
                    .is_some_and(|max_bytes| text.len() > max_bytes)
                {
                    self.report(
                        IssueCode::TooLong,
                        format!("a `{}` may not be longer than 1 MB", primitive.name),
                    );
                } else if primitive
                    .format
                    .as_ref()
                    .is_some_and(|format| !format.matches(text))
                {
                    self.report_format(primitive);
                }
            }
            (JsonType::Number, Value::Number(number)) => {
                // With `arbitrary_precision` this is the number exactly as written in the JSON text.
                let text = number.as_str();
                if primitive
                    .format
                    .as_ref()
                    .is_some_and(|format| !format.matches(text))
                {
                    self.report_format(primitive);
                } else if let Some(range) = &primitive.range
                    && !text
                        .parse::<i64>()
                        .is_ok_and(|integer| range.contains(&integer))
                {
                    self.report(
                        IssueCode::Value,
                        format!("value is out of range for `{}`", primitive.name),
                    );
                }
            }
            (JsonType::Boolean, Value::Bool(_)) => {}
            (expected, found) => self.report(
                IssueCode::Structure,
                format!(
                    "expected a JSON {} (FHIR `{}`), found {}",
                    expected.as_str(),
                    primitive.name,
                    kind(found)
                ),
            ),
        }
    }

    fn report_format(&mut self, primitive: &Primitive) {
        self.report(
            IssueCode::Value,
            format!("value does not match the format of `{}`", primitive.name),
        );
    }

    fn report_empty_string(&mut self) {
        self.report(IssueCode::Value, "an empty string is not allowed");
    }

    /// Reports that `object` has several variants of one choice element, naming them all.
    fn report_choice_conflict(
        &mut self,
        object: &Map<String, Value>,
        complex: &Complex,
        choice: u8,
    ) {
        let choice = &complex.choices[usize::from(choice)];
        let present: Vec<String> = choice
            .variants
            .iter()
            .filter(|variant| {
                object.contains_key(&***variant) || object.contains_key(&format!("_{variant}"))
            })
            .map(|variant| format!("`{variant}`"))
            .collect();
        let message = format!(
            "only one variant of `{}` is allowed, found {}",
            choice.element,
            present.join(", ")
        );
        self.report(IssueCode::Structure, message);
    }

    /// Runs `check` one step further down the path.
    fn within(&mut self, segment: Segment<'a>, check: impl FnOnce(&mut Self)) {
        self.path.push(segment);
        check(self);
        self.path.pop();
    }

    /// Records an issue at the current path.
    fn report(&mut self, code: IssueCode, diagnostics: impl Into<String>) {
        match self.issues.len() {
            count if count < MAX_ISSUES => {
                let expression = self.expression();
                self.issues
                    .push(Issue::error(code, expression, diagnostics));
            }
            MAX_ISSUES => self.issues.push(Issue::warning(
                IssueCode::TooCostly,
                None,
                format!("more issues were found; only the first {MAX_ISSUES} are reported"),
            )),
            _ => {}
        }
    }

    /// The current path as a FHIRPath expression; `None` at the top of the resource.
    fn expression(&self) -> Option<String> {
        if self.path.is_empty() {
            return None;
        }
        let mut expression = String::new();
        for segment in &self.path {
            match segment {
                Segment::Element(name) => {
                    if !expression.is_empty() {
                        expression.push('.');
                    }
                    expression.push_str(element_name(name));
                }
                Segment::Index(index) => {
                    let _ = write!(expression, "[{index}]");
                }
                Segment::OfType(resource_type) => {
                    let _ = write!(expression, ".ofType({resource_type})");
                }
            }
        }
        Some(expression)
    }
}

/// Whether the partner of a primitive array (`given` for `_given` and the reverse) has a non-null
/// entry at `index`, which is what makes a `null` at that position legal.
fn paired_value_at(object: &Map<String, Value>, name: &str, index: usize) -> bool {
    let partner = match name.strip_prefix('_') {
        Some(base) => object.get(base),
        None => object.get(&format!("_{name}")),
    };
    partner
        .and_then(Value::as_array)
        .and_then(|items| items.get(index))
        .is_some_and(|item| !item.is_null())
}

/// The diagnostics for a code outside its value set: the allowed codes are part of the
/// specification, not of the data, so short lists are spelt out.
fn not_an_allowed_code(codes: &[Box<str>]) -> String {
    const LISTED: usize = 12;
    if codes.len() > LISTED {
        return format!("value is not one of the {} allowed codes", codes.len());
    }
    let listed: Vec<String> = codes.iter().map(|code| format!("`{code}`")).collect();
    format!(
        "value is not one of the allowed codes ({})",
        listed.join(", ")
    )
}

/// An element name as echoed in expressions and diagnostics: names are not data, but an unknown one
/// can be anything the client sent, so a long one is cut short.
pub(crate) fn element_name(name: &str) -> &str {
    const MAX_CHARS: usize = 64;
    match name.char_indices().nth(MAX_CHARS) {
        Some((end, _)) => &name[..end],
        None => name,
    }
}

/// The JSON type of a value, for diagnostics.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests;
