//! Parsing FHIR JSON bytes into a [`serde_json::Value`], with errors that never quote the input.
//!
//! The workspace builds `serde_json` with `arbitrary_precision`, so a number keeps its exact text:
//! `1.50` is read and written back as `1.50`, as FHIR requires for decimals.

use std::borrow::Cow;
use std::collections::HashSet;

use serde_json::Value;
use serde_json::error::Category;

use crate::{Issue, IssueCode};

/// Parses a JSON document.
///
/// # Errors
///
/// A syntax error gives an issue of code `structure` that names the line and column and the kind of
/// problem (`expected value`, `trailing comma`, ...), but never the offending content. An object
/// with the same member twice is refused the same way: serde_json would silently keep the last one,
/// and a reader that keeps the first would see another resource than the one we validated.
pub fn parse_json(bytes: &[u8]) -> Result<Value, Issue> {
    // A UTF-8 byte order mark is not JSON, but some tools write one; it carries no content.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let value = serde_json::from_slice(bytes).map_err(|error| {
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
        syntax_issue(error.line(), error.column(), &reason)
    })?;
    if let Some(duplicate) = find_duplicate_member(bytes) {
        let (line, column) = line_and_column(bytes, duplicate.offset);
        let name = crate::validate::element_name(&duplicate.name);
        return Err(syntax_issue(
            line,
            column,
            &format!("member `{name}` appears twice in one object"),
        ));
    }
    Ok(value)
}

fn syntax_issue(line: usize, column: usize, reason: &str) -> Issue {
    Issue::error(
        IssueCode::Structure,
        None,
        format!("invalid JSON at line {line}, column {column}: {reason}"),
    )
}

/// A member name that appears twice in one object, and where its second occurrence starts.
struct DuplicateMember<'a> {
    name: Cow<'a, str>,
    offset: usize,
}

/// Finds the first member name repeated within one object of `bytes`, which must be valid JSON.
///
/// One pass over the bytes, with one set of (object number, name) pairs for the whole document, so
/// that neither many small objects nor one huge object costs more than linear time.
fn find_duplicate_member(bytes: &[u8]) -> Option<DuplicateMember<'_>> {
    // For each open container: the number of the object, or `None` for an array.
    let mut open: Vec<Option<usize>> = Vec::new();
    let mut seen: HashSet<(usize, Cow<'_, str>)> = HashSet::new();
    let mut objects = 0;
    let mut expecting_name = false;
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'{' => {
                open.push(Some(objects));
                objects += 1;
                expecting_name = true;
            }
            b'[' => {
                open.push(None);
                expecting_name = false;
            }
            b'}' | b']' => {
                open.pop();
                expecting_name = false;
            }
            b',' => expecting_name = matches!(open.last(), Some(Some(_))),
            b'"' => {
                let end = string_end(bytes, index);
                if expecting_name && let Some(Some(object)) = open.last() {
                    let name = member_name(&bytes[index + 1..end]);
                    if !seen.insert((*object, name.clone())) {
                        return Some(DuplicateMember {
                            name,
                            offset: index,
                        });
                    }
                }
                expecting_name = false;
                index = end;
            }
            _ => {}
        }
        index += 1;
    }
    None
}

/// The index of the quote that closes the string opening at `start`.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut index = start + 1;
    // Long strings (attachments, narratives) are skipped eight bytes at a time while no byte of the
    // word is a quote or a backslash.
    while let Some(&word) = bytes.get(index..).and_then(|rest| rest.first_chunk::<8>()) {
        let word = u64::from_le_bytes(word);
        if has_byte(word, b'"') || has_byte(word, b'\\') {
            break;
        }
        index += 8;
    }
    while index < bytes.len() {
        match bytes[index] {
            b'\\' => index += 2,
            b'"' => return index,
            _ => index += 1,
        }
    }
    bytes.len()
}

/// Whether any of the eight bytes of `word` is `byte` (the classic bit trick: a byte of `word ^ all`
/// is zero exactly where `word` has `byte`, and subtracting one from a zero byte borrows into its
/// high bit).
fn has_byte(word: u64, byte: u8) -> bool {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH_BITS: u64 = u64::from_le_bytes([0x80; 8]);
    let zero_where_equal = word ^ (ONES * u64::from(byte));
    zero_where_equal.wrapping_sub(ONES) & !zero_where_equal & HIGH_BITS != 0
}

/// A member name as the JSON text means it: escapes decoded, so that `"a"` and `"\u0061"` count as
/// the same name.
fn member_name(raw: &[u8]) -> Cow<'_, str> {
    if !raw.contains(&b'\\') {
        // The document parsed, so it is UTF-8 and this borrows.
        return String::from_utf8_lossy(raw);
    }
    let mut quoted = Vec::with_capacity(raw.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw);
    quoted.push(b'"');
    match serde_json::from_slice::<String>(&quoted) {
        Ok(name) => Cow::Owned(name),
        Err(_) => String::from_utf8_lossy(raw),
    }
}

/// The 1-based line and column of a byte offset, counted in bytes as serde_json counts them.
fn line_and_column(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset];
    let line = before.iter().filter(|byte| **byte == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|byte| *byte == b'\n')
        .map_or(0, |newline| newline + 1);
    (line, offset - line_start + 1)
}

#[cfg(test)]
mod tests;
