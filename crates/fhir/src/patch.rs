//! JSON Patch (RFC 6902), the body of a FHIR `PATCH` sent as `application/json-patch+json`.
//!
//! Paths are JSON Pointers (RFC 6901): `~1` stands for `/`, `~0` for `~`, and `-` for the end of an
//! array when adding. A patch applies atomically: if any operation fails, the target is left as it
//! was. Diagnostics name the operation and its path, never a value.

use serde_json::{Map, Value};

use crate::{Issue, IssueCode};

/// Applies a JSON Patch document (an array of operations) to `target`.
///
/// # Errors
///
/// An issue of code `invalid` if the patch is malformed (not an array, an unknown `op`, a missing
/// member, a bad pointer), or `processing` if an operation cannot be applied to this target (a path
/// that does not exist, an index out of bounds, a failed `test`). `target` is then unchanged.
pub fn apply(target: &mut Value, patch: &Value) -> Result<(), Issue> {
    let Value::Array(operations) = patch else {
        return Err(Issue::error(
            IssueCode::Invalid,
            None,
            "a JSON Patch document must be an array of operations",
        ));
    };
    let mut document = target.clone();
    for (index, operation) in operations.iter().enumerate() {
        apply_operation(&mut document, operation).map_err(|failure| {
            let code = match failure {
                Failure::Malformed(_) => IssueCode::Invalid,
                Failure::NotApplicable(_) => IssueCode::Processing,
            };
            let (Failure::Malformed(message) | Failure::NotApplicable(message)) = failure;
            Issue::error(
                code,
                None,
                format!("JSON Patch operation {index}: {message}"),
            )
        })?;
    }
    *target = document;
    Ok(())
}

/// Why an operation failed.
#[derive(Debug)]
enum Failure {
    /// The operation itself is wrong, whatever the target.
    Malformed(String),
    /// The operation is well formed but does not fit this target.
    NotApplicable(String),
}

fn apply_operation(document: &mut Value, operation: &Value) -> Result<(), Failure> {
    let Value::Object(operation) = operation else {
        return Err(Failure::Malformed(
            "an operation must be a JSON object".to_owned(),
        ));
    };
    let op = string_member(operation, "op")?;
    let path_text = string_member(operation, "path")?;
    let path = parse_pointer(path_text)?;
    match op {
        "add" => add(document, &path, path_text, value_member(operation)?.clone()),
        "remove" => remove(document, &path, path_text).map(drop),
        "replace" => {
            let value = value_member(operation)?.clone();
            let slot = pointee_mut(document, &path).ok_or_else(|| missing(path_text))?;
            *slot = value;
            Ok(())
        }
        "move" => {
            let from_text = string_member(operation, "from")?;
            let from = parse_pointer(from_text)?;
            if from == path {
                return Ok(());
            }
            if path.starts_with(&from) {
                return Err(Failure::NotApplicable(format!(
                    "cannot move `{from_text}` into one of its own children"
                )));
            }
            let value = remove(document, &from, from_text)?;
            add(document, &path, path_text, value)
        }
        "copy" => {
            let from_text = string_member(operation, "from")?;
            let from = parse_pointer(from_text)?;
            let value = pointee(document, &from)
                .ok_or_else(|| missing(from_text))?
                .clone();
            add(document, &path, path_text, value)
        }
        "test" => {
            let expected = value_member(operation)?;
            let actual = pointee(document, &path).ok_or_else(|| missing(path_text))?;
            if json_equal(actual, expected) {
                Ok(())
            } else {
                Err(Failure::NotApplicable(format!(
                    "test failed: the value at `{path_text}` differs"
                )))
            }
        }
        _ => Err(Failure::Malformed(
            "`op` must be one of add, remove, replace, move, copy, test".to_owned(),
        )),
    }
}

fn string_member<'a>(operation: &'a Map<String, Value>, name: &str) -> Result<&'a str, Failure> {
    match operation.get(name) {
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(Failure::Malformed(format!("`{name}` must be a string"))),
        None => Err(Failure::Malformed(format!("`{name}` is missing"))),
    }
}

fn value_member(operation: &Map<String, Value>) -> Result<&Value, Failure> {
    operation
        .get("value")
        .ok_or_else(|| Failure::Malformed("`value` is missing".to_owned()))
}

fn missing(path_text: &str) -> Failure {
    Failure::NotApplicable(format!("path `{path_text}` does not exist"))
}

/// Splits a JSON Pointer into its unescaped reference tokens; the empty pointer is the whole document.
fn parse_pointer(text: &str) -> Result<Vec<String>, Failure> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let Some(tokens) = text.strip_prefix('/') else {
        return Err(Failure::Malformed(format!(
            "path `{text}` must be empty or start with `/`"
        )));
    };
    tokens
        .split('/')
        .map(|token| unescape(token, text))
        .collect()
}

fn unescape(token: &str, pointer: &str) -> Result<String, Failure> {
    let mut unescaped = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(char) = chars.next() {
        if char != '~' {
            unescaped.push(char);
            continue;
        }
        match chars.next() {
            Some('0') => unescaped.push('~'),
            Some('1') => unescaped.push('/'),
            _ => {
                return Err(Failure::Malformed(format!(
                    "path `{pointer}` has a `~` that is not followed by `0` or `1`"
                )));
            }
        }
    }
    Ok(unescaped)
}

/// An array index token: decimal digits without leading zeros.
fn parse_index(token: &str) -> Option<usize> {
    let well_formed = !token.is_empty()
        && token.bytes().all(|byte| byte.is_ascii_digit())
        && (token == "0" || !token.starts_with('0'));
    if well_formed {
        token.parse().ok()
    } else {
        None
    }
}

/// The position an `add` inserts at (`-` or up to `len`) or a `remove` takes from (below `len`).
fn position(token: &str, len: usize, for_add: bool, path_text: &str) -> Result<usize, Failure> {
    if token == "-" && for_add {
        return Ok(len);
    }
    match parse_index(token) {
        Some(index) if index < len || (for_add && index == len) => Ok(index),
        Some(_) => Err(Failure::NotApplicable(format!(
            "path `{path_text}`: array index out of bounds"
        ))),
        None => Err(Failure::Malformed(format!(
            "path `{path_text}`: an array index must be a number"
        ))),
    }
}

fn pointee<'a>(document: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(document, |value, token| match value {
        Value::Object(object) => object.get(token),
        Value::Array(items) => items.get(parse_index(token)?),
        _ => None,
    })
}

fn pointee_mut<'a>(document: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(document, |value, token| match value {
        Value::Object(object) => object.get_mut(token),
        Value::Array(items) => items.get_mut(parse_index(token)?),
        _ => None,
    })
}

fn add(
    document: &mut Value,
    path: &[String],
    path_text: &str,
    value: Value,
) -> Result<(), Failure> {
    let Some((last, parent_path)) = path.split_last() else {
        *document = value;
        return Ok(());
    };
    match pointee_mut(document, parent_path) {
        Some(Value::Object(object)) => {
            object.insert(last.clone(), value);
            Ok(())
        }
        Some(Value::Array(items)) => {
            let index = position(last, items.len(), true, path_text)?;
            items.insert(index, value);
            Ok(())
        }
        Some(_) => Err(Failure::NotApplicable(format!(
            "path `{path_text}`: the parent is not an object or array"
        ))),
        None => Err(Failure::NotApplicable(format!(
            "path `{path_text}`: the parent does not exist"
        ))),
    }
}

fn remove(document: &mut Value, path: &[String], path_text: &str) -> Result<Value, Failure> {
    let Some((last, parent_path)) = path.split_last() else {
        return Err(Failure::NotApplicable(
            "the whole document cannot be removed".to_owned(),
        ));
    };
    match pointee_mut(document, parent_path) {
        // `shift_remove` keeps the order of the remaining elements, which FHIR JSON readers expect.
        Some(Value::Object(object)) => object
            .shift_remove(last.as_str())
            .ok_or_else(|| missing(path_text)),
        Some(Value::Array(items)) => {
            let index = position(last, items.len(), false, path_text)?;
            Ok(items.remove(index))
        }
        _ => Err(missing(path_text)),
    }
}

/// JSON equality as RFC 6902 `test` defines it: numbers compare by value (`1.0` equals `1`), objects
/// regardless of member order.
fn json_equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(left), Value::Number(right)) => {
            left.as_str() == right.as_str()
                || matches!((left.as_f64(), right.as_f64()), (Some(left), Some(right)) if left == right)
        }
        (Value::Array(left), Value::Array(right)) => {
            left.len() == right.len()
                && left
                    .iter()
                    .zip(right)
                    .all(|(left, right)| json_equal(left, right))
        }
        (Value::Object(left), Value::Object(right)) => {
            left.len() == right.len()
                && left.iter().all(|(name, value)| {
                    right
                        .get(name)
                        .is_some_and(|other| json_equal(value, other))
                })
        }
        _ => left == right,
    }
}

#[cfg(test)]
mod tests;
