//! Value grammar shared by extraction and query parsing: FHIR dates as microsecond ranges, decimal
//! numbers with their precision range, string normalisation, and search-value escaping.

#[cfg(test)]
mod tests;

use std::borrow::Cow;

use store::DateBound;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

/// Parses a FHIR `date`, `dateTime` or `instant`, partial or complete, into the inclusive range of
/// UTC microseconds it stands for: `2024` is the whole year, `2024-02` the whole month,
/// `2024-02-29T10:00:00+09:00` the whole second, `…T10:00:00.5Z` the tenth of a second.
///
/// Also accepted, for search values: a time without seconds (`2024-02-29T10:00`) and a time without
/// a zone. A value with no zone (including every date without a time) is read as UTC: FHIR leaves
/// such values' zone unknown, and UTC is the one reading that does not depend on the server's
/// location. Returns `None` for anything else (including impossible dates such as `2023-02-29`).
pub fn parse_date_range(value: &str) -> Option<DateBound> {
    let (date, time) = match value.split_once('T') {
        Some((date, time)) => (date, Some(time)),
        None => (value, None),
    };
    let mut parts = date.split('-');
    let year = fixed_digits(parts.next()?, 4)?;
    let month = match parts.next() {
        Some(part) => Some(fixed_digits(part, 2)?),
        None => None,
    };
    let day = match parts.next() {
        Some(part) => Some(fixed_digits(part, 2)?),
        None => None,
    };
    if parts.next().is_some() || year == 0 {
        return None;
    }
    if let Some(month) = month
        && !(1..=12).contains(&month)
    {
        return None;
    }
    if let (Some(month), Some(day)) = (month, day)
        && !(1..=days_in_month(year, month)).contains(&day)
    {
        return None;
    }
    let Some(time) = time else {
        let start_day = days_from_civil(year, month.unwrap_or(1), day.unwrap_or(1));
        let end_day = match (month, day) {
            (None, _) | (Some(12), None) => days_from_civil(year + 1, 1, 1),
            (Some(month), None) => days_from_civil(year, month + 1, 1),
            (Some(_), Some(_)) => start_day + 1,
        };
        return Some(DateBound {
            low: start_day * MICROS_PER_DAY,
            high: end_day * MICROS_PER_DAY - 1,
        });
    };
    let (Some(month), Some(day)) = (month, day) else {
        return None;
    };
    let (clock, offset_seconds) = split_zone(time)?;
    let (hour, rest) = clock.split_once(':')?;
    let hour = fixed_digits(hour, 2)?;
    let (minute, second) = match rest.split_once(':') {
        Some((minute, second)) => (fixed_digits(minute, 2)?, Some(second)),
        None => (fixed_digits(rest, 2)?, None),
    };
    if hour > 23 || minute > 59 {
        return None;
    }
    let (seconds, fraction_micros, width) = match second {
        None => (0, 0, 60 * MICROS_PER_SECOND),
        Some(second) => {
            let (whole, fraction) = match second.split_once('.') {
                Some((whole, fraction)) => (whole, Some(fraction)),
                None => (second, None),
            };
            let seconds = fixed_digits(whole, 2)?;
            if seconds > 60 {
                return None;
            }
            match fraction {
                None => (seconds, 0, MICROS_PER_SECOND),
                Some(fraction) => {
                    if fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
                        return None;
                    }
                    // Precision beyond microseconds is truncated.
                    let digits = fraction.len().min(6);
                    let scale = 10i64.pow(u32::try_from(6 - digits).ok()?);
                    let micros = fraction[..digits].parse::<i64>().ok()? * scale;
                    (seconds, micros, scale)
                }
            }
        }
    };
    let local_seconds = days_from_civil(year, month, day) * 86_400
        + i64::from(hour) * 3_600
        + i64::from(minute) * 60
        + i64::from(seconds);
    let low = (local_seconds - offset_seconds) * MICROS_PER_SECOND + fraction_micros;
    Some(DateBound {
        low,
        high: low + width - 1,
    })
}

/// Normalises a string for the string index and for string search values: NFKC (which folds
/// full-width ASCII and digits and half-width katakana to their standard forms), lower case, and
/// Latin accents removed (`José` → `jose`). Only combining marks U+0300–U+036F that follow a Latin
/// letter are removed, so Japanese voiced marks survive (`ガ` stays distinct from `カ`).
pub fn normalize_string(value: &str) -> String {
    if value.is_ascii() {
        return value.to_ascii_lowercase();
    }
    let folded: String = value.nfkc().flat_map(char::to_lowercase).collect();
    if !folded
        .chars()
        .any(|c| is_latin_with_marks(c) || is_latin_mark(c))
    {
        return folded;
    }
    let mut stripped = String::with_capacity(folded.len());
    let mut after_latin = false;
    for c in folded.nfd() {
        if is_latin_mark(c) && after_latin {
            continue;
        }
        if !is_combining_mark(c) {
            after_latin = c.is_ascii_alphabetic() || is_latin_with_marks(c);
        }
        stripped.push(c);
    }
    stripped.nfc().collect()
}

/// A decimal search or index value with the range its precision implies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Decimal {
    pub value: f64,
    /// Lowest value the written precision admits.
    pub low: f64,
    /// Highest value the written precision admits (the largest `f64` below the open upper bound).
    pub high: f64,
}

/// Parses a FHIR decimal as written in a search (`5.4`, `-3`, `1e3`, `5.40E-2`): `5.4` stands for
/// `[5.35, 5.45)` and `100` for `[99.5, 100.5)`. Bounds are computed in decimal and rounded once.
pub(crate) fn parse_decimal(text: &str) -> Option<Decimal> {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], text[at + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (negative, unsigned) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    if unsigned.ends_with('.') {
        return None;
    }
    let value = text.parse::<f64>().ok()?;
    if !value.is_finite() {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    let scale = exponent.checked_sub(i32::try_from(fraction.len()).ok()?)?;
    // value = digits × 10^scale; the bounds are (10 × digits ± 5) × 10^(scale − 1).
    let significant: i128 = match digits.trim_start_matches('0') {
        "" => 0,
        trimmed if trimmed.len() <= 36 => trimmed.parse().ok()?,
        _ => {
            return Some(Decimal {
                value,
                low: value,
                high: value,
            });
        }
    };
    let signed = if negative { -significant } else { significant };
    let bound_scale = scale.checked_sub(1)?;
    let low = format!("{}e{bound_scale}", signed * 10 - 5)
        .parse::<f64>()
        .ok()?;
    let high = format!("{}e{bound_scale}", signed * 10 + 5)
        .parse::<f64>()
        .ok()?;
    Some(Decimal {
        value,
        low,
        high: high.next_down(),
    })
}

/// Splits a search value on `separator` where it is not escaped with a backslash. The pieces keep
/// their escapes; pass each through [`unescape`].
pub(crate) fn split_unescaped(value: &str, separator: char) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (offset, c) in value.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == separator {
            pieces.push(&value[start..offset]);
            start = offset + c.len_utf8();
        }
    }
    pieces.push(&value[start..]);
    pieces
}

/// Removes search-value escapes (`\,`, `\|`, `\$`, `\\`).
pub(crate) fn unescape(value: &str) -> Cow<'_, str> {
    if !value.contains('\\') {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(next) = chars.next()
        {
            out.push(next);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn is_latin_mark(c: char) -> bool {
    ('\u{0300}'..='\u{036F}').contains(&c)
}

/// Latin letters beyond ASCII, which may decompose into a base letter and accents.
fn is_latin_with_marks(c: char) -> bool {
    matches!(c, '\u{00C0}'..='\u{024F}' | '\u{1E00}'..='\u{1EFF}')
}

/// Parses exactly `width` ASCII digits.
fn fixed_digits(text: &str, width: usize) -> Option<u32> {
    if text.len() == width && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse().ok()
    } else {
        None
    }
}

/// Splits `hh:mm[:ss[.f]]` from its zone (`Z`, `+hh:mm`, `-hh:mm`, or none: UTC) and returns the
/// zone's offset in seconds east of UTC.
fn split_zone(time: &str) -> Option<(&str, i64)> {
    if let Some(clock) = time.strip_suffix('Z') {
        return Some((clock, 0));
    }
    let Some(at) = time.find(['+', '-']) else {
        return Some((time, 0));
    };
    let (clock, zone) = time.split_at(at);
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let (hours, minutes) = zone[1..].split_once(':')?;
    let hours = fixed_digits(hours, 2)?;
    let minutes = fixed_digits(minutes, 2)?;
    if hours > 14 || minutes > 59 {
        return None;
    }
    Some((
        clock,
        sign * (i64::from(hours) * 3_600 + i64::from(minutes) * 60),
    ))
}

fn is_leap_year(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: u32, month: u32, day: u32) -> i64 {
    civil::days_from_civil(i64::from(year), month, day)
}
