//! Index extraction: turns the items a parameter's expression selects into typed index entries,
//! according to the parameter's kind and each item's FHIR data type (known from a choice element's
//! key, otherwise inferred from the JSON shape).

#[cfg(test)]
mod tests;

use serde_json::{Map, Value};
use store::{IndexEntry, IndexValue, ParamKind};

use crate::fhirpath::Item;
use crate::registry::Param;
use crate::value::{normalize_string, parse_date_range};

/// `ContactPoint.system` codes: an object with `value` and one of these is a ContactPoint, not an
/// Identifier (whose systems are URIs).
const CONTACT_POINT_SYSTEMS: &[&str] = &["phone", "fax", "email", "pager", "url", "sms", "other"];

/// The string parts of HumanName and Address, each indexed on its own.
const STRING_PARTS: &[&str] = &[
    "text",
    "family",
    "given",
    "prefix",
    "suffix",
    "line",
    "city",
    "district",
    "state",
    "postalCode",
    "country",
];

const CURRENCY_SYSTEM: &str = "urn:iso:std:iso:4217";

/// Appends the distinct index entries of `param` for `resource` to `entries`.
pub(crate) fn extract_param(param: &Param, resource: &Value, entries: &mut Vec<IndexEntry>) {
    let Some(expr) = &param.expr else {
        return;
    };
    let start = entries.len();
    let mut sink = Sink {
        param,
        entries,
        start,
    };
    expr.evaluate(resource, &mut |item| sink.item(item));
}

/// Collects one parameter's entries, skipping duplicates.
struct Sink<'p, 'e> {
    param: &'p Param,
    entries: &'e mut Vec<IndexEntry>,
    /// Where this parameter's entries start in `entries`.
    start: usize,
}

impl Sink<'_, '_> {
    fn push(&mut self, value: IndexValue) {
        self.push_as(None, value);
    }

    /// Pushes an entry under the parameter's code, or under a synthetic code (`<code>:identifier`).
    fn push_as(&mut self, synthetic: Option<&str>, value: IndexValue) {
        let param = self.param;
        let code = synthetic.unwrap_or(&param.def.code);
        let duplicate = self.entries[self.start..]
            .iter()
            .any(|entry| entry.param == code && entry.value == value);
        if !duplicate {
            self.entries.push(IndexEntry {
                param: code.to_owned(),
                value,
            });
        }
    }

    fn item(&mut self, item: Item<'_>) {
        let value = match item {
            Item::Node { value, .. } => value,
            Item::Bool(value) => {
                if self.param.def.kind == ParamKind::Token {
                    self.push(token(None, Some(bool_code(value)), None));
                }
                return;
            }
            Item::Literal(_) | Item::Resolved(_) => return,
        };
        match self.param.def.kind {
            ParamKind::Token => self.token(value),
            ParamKind::String => self.string(value),
            ParamKind::Date => self.date(value),
            ParamKind::Reference => self.reference(value),
            ParamKind::Quantity => self.quantity(value),
            ParamKind::Number => self.number(value),
            ParamKind::Uri => {
                if let Value::String(uri) = value {
                    self.push(IndexValue::Uri { value: uri.clone() });
                }
            }
        }
    }

    /// Coding, CodeableConcept, Identifier, ContactPoint and primitives.
    fn token(&mut self, value: &Value) {
        let object = match value {
            Value::String(code) => return self.push(token(None, Some(code), None)),
            Value::Bool(flag) => return self.push(token(None, Some(bool_code(*flag)), None)),
            Value::Number(number) => return self.push(token(None, Some(number.as_str()), None)),
            Value::Object(object) => object,
            Value::Null | Value::Array(_) => return,
        };
        if let Some(Value::Array(codings)) = object.get("coding") {
            for coding in codings {
                if let Value::Object(coding) = coding {
                    self.coding(coding);
                }
            }
            if let Some(text) = str_of(object, "text") {
                self.push(token(None, None, Some(text)));
            }
        } else if let Some(identifying) = str_of(object, "value") {
            let system = str_of(object, "system");
            if system.is_some_and(|system| CONTACT_POINT_SYSTEMS.contains(&system)) {
                self.push(token(None, Some(identifying), None));
            } else {
                self.identifier(object, system, identifying);
            }
        } else if object.contains_key("system") || object.contains_key("code") {
            self.coding(object);
        } else if let Some(text) = str_of(object, "text") {
            self.push(token(None, None, Some(text)));
        }
    }

    fn coding(&mut self, coding: &Map<String, Value>) {
        let system = str_of(coding, "system");
        let code = str_of(coding, "code");
        let display = str_of(coding, "display");
        if system.is_some() || code.is_some() || display.is_some() {
            self.push(token(system, code, display));
        }
    }

    /// An Identifier, plus one `<code>:of-type` entry per coding of its type.
    fn identifier(&mut self, identifier: &Map<String, Value>, system: Option<&str>, value: &str) {
        let kind = identifier.get("type").and_then(Value::as_object);
        let type_text = kind.and_then(|kind| str_of(kind, "text"));
        self.push(token(system, Some(value), type_text));
        let Some(Value::Array(codings)) = kind.and_then(|kind| kind.get("coding")) else {
            return;
        };
        for coding in codings.iter().filter_map(Value::as_object) {
            if let Some(type_code) = str_of(coding, "code") {
                let entry = IndexValue::Token {
                    system: str_of(coding, "system").map(str::to_owned),
                    code: Some(format!("{type_code}|{value}")),
                    text: None,
                };
                let param = self.param;
                self.push_as(Some(&param.of_type_param), entry);
            }
        }
    }

    /// String primitives, and each part of HumanName and Address.
    fn string(&mut self, value: &Value) {
        match value {
            Value::String(text) => self.push_string(text),
            Value::Object(object) => {
                for part in STRING_PARTS {
                    match object.get(*part) {
                        Some(Value::String(text)) => self.push_string(text),
                        Some(Value::Array(texts)) => {
                            for text in texts.iter().filter_map(Value::as_str) {
                                self.push_string(text);
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }

    fn push_string(&mut self, text: &str) {
        if !text.trim().is_empty() {
            self.push(IndexValue::String {
                normalized: normalize_string(text),
                exact: text.to_owned(),
            });
        }
    }

    /// date/dateTime/instant, Period, and Timing (its events and bounds).
    fn date(&mut self, value: &Value) {
        match value {
            Value::String(text) => {
                if let Some(range) = parse_date_range(text) {
                    self.push(IndexValue::Date {
                        low: range.low,
                        high: range.high,
                    });
                }
            }
            Value::Object(object) => {
                if object.contains_key("start") || object.contains_key("end") {
                    self.period(object);
                }
                if let Some(Value::Array(events)) = object.get("event") {
                    for event in events {
                        self.date(event);
                    }
                }
                if let Some(Value::Object(bounds)) = object
                    .get("repeat")
                    .and_then(|repeat| repeat.get("boundsPeriod"))
                {
                    self.period(bounds);
                }
            }
            _ => {}
        }
    }

    /// A Period: from the start's low to the end's high; an open end is unbounded.
    fn period(&mut self, period: &Map<String, Value>) {
        let bound = |key: &str| match period.get(key) {
            None | Some(Value::Null) => Some(None),
            Some(Value::String(text)) => parse_date_range(text).map(Some),
            Some(_) => None,
        };
        let (Some(start), Some(end)) = (bound("start"), bound("end")) else {
            return;
        };
        if start.is_none() && end.is_none() {
            return;
        }
        self.push(IndexValue::Date {
            low: start.map_or(i64::MIN, |range| range.low),
            high: end.map_or(i64::MAX, |range| range.high),
        });
    }

    /// References (relative, absolute, `urn:`), canonical/uri strings, and `Reference.identifier`.
    fn reference(&mut self, value: &Value) {
        match value {
            Value::String(canonical) => {
                self.push(url_reference(canonical));
                if let Some((unversioned, _)) = canonical.split_once('|') {
                    self.push(url_reference(unversioned));
                }
            }
            Value::Object(object) => {
                if let Some(reference) = str_of(object, "reference")
                    && let Some(entry) = reference_value(reference)
                {
                    self.push(entry);
                }
                if let Some(Value::Object(identifier)) = object.get("identifier")
                    && let Some(value) = str_of(identifier, "value")
                {
                    let entry = token(str_of(identifier, "system"), Some(value), None);
                    let param = self.param;
                    self.push_as(Some(&param.identifier_param), entry);
                }
            }
            _ => {}
        }
    }

    /// Quantity (and Age, Duration, …), Money, and each bound of a Range.
    fn quantity(&mut self, value: &Value) {
        let Value::Object(object) = value else {
            return;
        };
        for bound in ["low", "high"] {
            if let Some(bound) = object.get(bound) {
                self.quantity(bound);
            }
        }
        let Some(amount) = object.get("value").and_then(Value::as_f64) else {
            return;
        };
        if let Some(currency) = str_of(object, "currency") {
            self.push(IndexValue::Quantity {
                value: amount,
                system: Some(CURRENCY_SYSTEM.to_owned()),
                code: Some(currency.to_owned()),
                unit: None,
            });
        } else {
            self.push(IndexValue::Quantity {
                value: amount,
                system: str_of(object, "system").map(str::to_owned),
                code: str_of(object, "code").map(str::to_owned),
                unit: str_of(object, "unit").map(str::to_owned),
            });
        }
    }

    /// integer and decimal, and the bounds of a Range.
    fn number(&mut self, value: &Value) {
        match value {
            Value::Number(number) => {
                if let Some(number) = number.as_f64() {
                    self.push(IndexValue::Number { value: number });
                }
            }
            Value::Object(object) => {
                for key in ["value", "low", "high"] {
                    if let Some(inner) = object.get(key) {
                        self.number(inner);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The index value of a `Reference.reference`: `Type/id` (a version is dropped), an absolute or
/// `urn:` URL as written, nothing for a contained (`#id`) reference.
pub(crate) fn reference_value(reference: &str) -> Option<IndexValue> {
    if reference.is_empty() || reference.starts_with('#') {
        return None;
    }
    if reference.contains(':') {
        return Some(url_reference(reference));
    }
    let mut segments = reference.split('/');
    let relative = match (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) {
        (Some(target_type), Some(id), None, None, None) => Some((target_type, id)),
        (Some(target_type), Some(id), Some("_history"), Some(_), None) => Some((target_type, id)),
        _ => None,
    };
    match relative {
        Some((target_type, id)) if is_type_name(target_type) && is_id(id) => {
            Some(IndexValue::Reference {
                target_type: Some(target_type.to_owned()),
                target_id: Some(id.to_owned()),
                url: None,
            })
        }
        _ => Some(url_reference(reference)),
    }
}

fn url_reference(url: &str) -> IndexValue {
    IndexValue::Reference {
        target_type: None,
        target_id: None,
        url: Some(url.to_owned()),
    }
}

/// Whether `text` looks like a resource type name (`Patient`).
pub(crate) fn is_type_name(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_uppercase())
        && text.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Whether `text` is a valid FHIR id (`[A-Za-z0-9\-\.]{1,64}`).
pub(crate) fn is_id(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

fn token(system: Option<&str>, code: Option<&str>, text: Option<&str>) -> IndexValue {
    IndexValue::Token {
        system: system.map(str::to_owned),
        code: code.map(str::to_owned),
        text: text.map(normalize_string),
    }
}

fn bool_code(value: bool) -> &'static str {
    if value { "true" } else { "false" }
}

fn str_of<'v>(object: &'v Map<String, Value>, key: &str) -> Option<&'v str> {
    object.get(key).and_then(Value::as_str)
}
