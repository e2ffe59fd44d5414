//! Keyset cursors: the opaque text behind [`PageCursor`], and its validation.
//!
//! The same shape as the SQLite backend's cursors, with its own version tag (`g1`) so that neither
//! backend accepts the other's. Format (only URL-unreserved characters, so it can go into a link as
//! is):
//!
//! ```text
//! g1.<direction>.<key>.<key>...<pk>.<check>
//! ```
//!
//! * `direction` is `n` (rows after the position: a next link) or `p` (rows before it: a previous
//!   link).
//! * each `key` is one sort key value of the boundary row: `z` (no value), `i<decimal>` (integer),
//!   `r<16 hex digits>` (the bits of an f64) or `t<hex of the UTF-8 bytes>` (text).
//! * `pk` is the boundary row's storage key (for history: its version sequence number), the final
//!   tie-breaker.
//! * `check` is a 64-bit FNV-1a hash, in hex, of the query's scope fingerprint and everything before
//!   it. A cursor from another query, another kind of listing, or edited by hand fails the check and
//!   is refused as `Invalid`.

use store::PageCursor;

use crate::error::{Result, invalid};
use crate::sql::Value;

const VERSION_TAG: &str = "g1";

/// Which side of the boundary row the page lies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Rows strictly after the boundary in the query's order.
    After,
    /// Rows strictly before the boundary in the query's order.
    Before,
}

/// A decoded cursor: the boundary row's sort keys and pk.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Position {
    pub(crate) direction: Direction,
    /// One value per sort key of the query, most significant first.
    pub(crate) keys: Vec<Value>,
    pub(crate) pk: i64,
}

/// A hash of everything that defines a listing except its page size and position. Cursors carry it
/// (inside their check), so a cursor only works for the listing that issued it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scope(u64);

impl Scope {
    /// Fingerprints a listing from a stable textual description of it.
    pub(crate) fn of(description: &str) -> Self {
        Scope(fnv1a(FNV_OFFSET, description.as_bytes()))
    }
}

/// Encodes a position as cursor text bound to `scope`.
pub(crate) fn encode(scope: Scope, position: &Position) -> PageCursor {
    use std::fmt::Write as _;

    let mut text = String::with_capacity(32 + position.keys.len() * 16);
    text.push_str(VERSION_TAG);
    text.push_str(match position.direction {
        Direction::After => ".n",
        Direction::Before => ".p",
    });
    for key in &position.keys {
        text.push('.');
        match key {
            Value::Null => text.push('z'),
            Value::Int(integer) => {
                let _ = write!(text, "i{integer}");
            }
            Value::Real(real) => {
                let _ = write!(text, "r{:016x}", real.to_bits());
            }
            Value::Text(string) => {
                text.push('t');
                push_hex(&mut text, string.as_bytes());
            }
        }
    }
    let _ = write!(text, ".{}", position.pk);
    let check = checksum(scope, &text);
    let _ = write!(text, ".{check:016x}");
    PageCursor(text)
}

/// Decodes and validates a cursor issued by [`encode`] for the same `scope` with `key_count` keys.
///
/// # Errors
/// `Invalid` for anything else: other listings' cursors, other backends' cursors, edited text.
pub(crate) fn decode(scope: Scope, cursor: &PageCursor, key_count: usize) -> Result<Position> {
    let foreign = || invalid("the page cursor was not issued for this query");
    let text = cursor.0.as_str();
    let (body, check) = text.rsplit_once('.').ok_or_else(foreign)?;
    let check = u64::from_str_radix(check, 16).map_err(|_| foreign())?;
    if check != checksum(scope, body) {
        return Err(foreign());
    }
    let mut parts = body.split('.');
    if parts.next() != Some(VERSION_TAG) {
        return Err(foreign());
    }
    let direction = match parts.next() {
        Some("n") => Direction::After,
        Some("p") => Direction::Before,
        _ => return Err(foreign()),
    };
    let parts: Vec<&str> = parts.collect();
    let Some((pk, keys)) = parts.split_last() else {
        return Err(foreign());
    };
    if keys.len() != key_count {
        return Err(foreign());
    }
    let pk: i64 = pk.parse().map_err(|_| foreign())?;
    let keys = keys
        .iter()
        .map(|key| decode_key(key).ok_or_else(foreign))
        .collect::<Result<Vec<_>>>()?;
    Ok(Position {
        direction,
        keys,
        pk,
    })
}

fn decode_key(key: &str) -> Option<Value> {
    let (tag, rest) = key.split_at_checked(1)?;
    match tag {
        "z" if rest.is_empty() => Some(Value::Null),
        "i" => rest.parse().ok().map(Value::Int),
        "r" if rest.len() == 16 => u64::from_str_radix(rest, 16)
            .ok()
            .map(|bits| Value::Real(f64::from_bits(bits))),
        "t" => String::from_utf8(parse_hex(rest)?).ok().map(Value::Text),
        _ => None,
    }
}

/// A stable 64-bit hash of a string (FNV-1a), e.g. for advisory lock keys.
pub(crate) fn fnv1a_str(text: &str) -> u64 {
    fnv1a(FNV_OFFSET, text.as_bytes())
}

fn checksum(scope: Scope, body: &str) -> u64 {
    fnv1a(fnv1a(FNV_OFFSET, &scope.0.to_le_bytes()), body.as_bytes())
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// 64-bit FNV-1a: stable across Rust releases (unlike `DefaultHasher`), so cursors survive a restart.
fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
}

fn parse_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests;
