//! The identifier formats of Japan's insurance system that JP-CLINS submissions carry, with their
//! check digits: insurer numbers (保険者番号), medical institution numbers (医療機関番号), local
//! government codes (全国地方公共団体コード, JIS X 0402), the insured-person identifier
//! (`insurer8:symbol:number:branch2`) and the Bundle identifier (`facility10^YYYY^local-id`).
//!
//! Both check digits of the insurance system are "modulus 10, weights 2-1" (モジュラス10 ウェイト2・1
//! 分割): from the rightmost digit leftwards the digits are multiplied by 2, 1, 2, 1, …, the digits of
//! the products are added up, and the check digit is what brings the sum to a multiple of ten. The
//! local government code's check digit is modulus 11 with weights 6, 5, 4, 3, 2.

/// The check digit of `digits` under modulus 10, weights 2-1 (see the module doc). `digits` must be
/// ASCII digits.
pub fn modulus10_w21(digits: &str) -> u8 {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(position, byte)| {
            let digit = u32::from(byte - b'0');
            let product = if position % 2 == 0 { digit * 2 } else { digit };
            product / 10 + product % 10
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// An eight-digit insurer number: 法別番号 (2 digits; `00` for National Health Insurance, whose
/// six-digit numbers are written with two leading zeros), prefecture (2), insurer (3), check digit.
pub fn insurer_number(law: u8, prefecture: u8, insurer: u16) -> String {
    let body = format!("{law:02}{prefecture:02}{insurer:03}");
    let check = modulus10_w21(&body);
    format!("{body}{check}")
}

/// Whether `value` is an eight-digit insurer number whose check digit is right.
pub fn is_valid_insurer_number(value: &str) -> bool {
    value.len() == 8
        && value.bytes().all(|byte| byte.is_ascii_digit())
        && modulus10_w21(&value[..7]) == value.as_bytes()[7] - b'0'
}

/// A ten-digit medical institution number: prefecture (2), point-table digit (1 医科, 3 歯科,
/// 4 薬局), and the seven-digit 医療機関コード: district (2), serial (4), check digit over those six.
pub fn institution_number(prefecture: u8, table: u8, district: u8, serial: u16) -> String {
    let code = format!("{district:02}{serial:04}");
    let check = modulus10_w21(&code);
    format!("{prefecture:02}{table}{code}{check}")
}

/// Whether `value` is a ten-digit medical institution number with a real prefecture code, a known
/// point-table digit and a right check digit.
pub fn is_valid_institution_number(value: &str) -> bool {
    if value.len() != 10 || !value.bytes().all(|byte| byte.is_ascii_digit()) {
        return false;
    }
    let prefecture: u8 = value[..2].parse().unwrap_or(0);
    let table = value.as_bytes()[2];
    (1..=47).contains(&prefecture)
        && matches!(table, b'1' | b'3' | b'4')
        && modulus10_w21(&value[3..9]) == value.as_bytes()[9] - b'0'
}

/// The check digit of a five-digit local government code (modulus 11, weights 6-5-4-3-2; a
/// remainder of 0 gives 1 and of 1 gives 0).
pub fn municipality_check_digit(code5: &str) -> u8 {
    let sum: u32 = code5
        .bytes()
        .zip([6u32, 5, 4, 3, 2])
        .map(|(byte, weight)| u32::from(byte - b'0') * weight)
        .sum();
    ((11 - sum % 11) % 10) as u8
}

/// The six-digit local government code (the five-digit JIS X 0402 code and its check digit).
pub fn municipality_code(code5: &str) -> String {
    format!("{code5}{}", municipality_check_digit(code5))
}

/// Whether `value` is a six-digit local government code with a real prefecture and a right check
/// digit.
pub fn is_valid_municipality_code(value: &str) -> bool {
    value.len() == 6
        && value.bytes().all(|byte| byte.is_ascii_digit())
        && (1..=47).contains(&value[..2].parse::<u8>().unwrap_or(0))
        && municipality_check_digit(&value[..5]) == value.as_bytes()[5] - b'0'
}

/// The insured-person identifier `insurer8:symbol:number:branch2` (empty parts stay empty).
pub fn member_id(insurer: &str, symbol: &str, number: &str, branch: &str) -> String {
    format!("{insurer}:{symbol}:{number}:{branch}")
}

/// Whether `value` has the shape of an insured-person identifier: four `:`-separated parts, an
/// insurer number with a right check digit, a non-empty number and a two-digit branch, once
/// full-width digits are read as half-width.
pub fn is_valid_member_id(value: &str) -> bool {
    let normalized = to_halfwidth(value);
    let parts: Vec<&str> = normalized.split(':').collect();
    parts.len() == 4
        && is_valid_insurer_number(parts[0])
        && !parts[2].is_empty()
        && parts[3].len() == 2
        && parts[3].bytes().all(|byte| byte.is_ascii_digit())
}

/// The Bundle identifier `facility10^YYYY^local-id`.
pub fn bundle_identifier(facility: &str, year: i32, local_id: &str) -> String {
    format!("{facility}^{year:04}^{local_id}")
}

/// Whether `value` is a Bundle identifier: a valid institution number, a four-digit year and a
/// non-empty local id.
pub fn is_valid_bundle_identifier(value: &str) -> bool {
    let parts: Vec<&str> = value.splitn(3, '^').collect();
    parts.len() == 3
        && is_valid_institution_number(parts[0])
        && parts[1].len() == 4
        && parts[1].bytes().all(|byte| byte.is_ascii_digit())
        && !parts[2].is_empty()
}

/// ASCII digits written full-width (`１８７`), as some facility systems send them.
pub fn to_fullwidth_digits(text: &str) -> String {
    text.chars()
        .map(|character| match character {
            '0'..='9' => {
                char::from_u32(character as u32 - '0' as u32 + 0xFF10).unwrap_or(character)
            }
            other => other,
        })
        .collect()
}

/// Full-width ASCII (digits, letters, signs; U+FF01..U+FF5E) and the ideographic space read as their
/// half-width forms.
pub fn to_halfwidth(text: &str) -> String {
    text.chars()
        .map(|character| match character as u32 {
            code @ 0xFF01..=0xFF5E => char::from_u32(code - 0xFEE0).unwrap_or(character),
            0x3000 => ' ',
            _ => character,
        })
        .collect()
}
