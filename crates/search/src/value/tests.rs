//! Tests of the value grammar: partial dates, decimal precision, normalisation, escaping.

use expect_test::{Expect, expect};

use super::{normalize_string, parse_date_range, parse_decimal, split_unescaped, unescape};
use crate::test_util::instant;

/// Renders a date range as two RFC 3339 instants (UTC, microseconds).
fn check_date(value: &str, expected: Expect) {
    let rendered = match parse_date_range(value) {
        Some(range) => format!("{} .. {}", instant(range.low), instant(range.high)),
        None => "invalid".to_owned(),
    };
    expected.assert_eq(&rendered);
}

#[test]
fn partial_dates_cover_their_whole_period() {
    check_date(
        "2024",
        expect![[r#"2024-01-01T00:00:00.000000Z .. 2024-12-31T23:59:59.999999Z"#]],
    );
    check_date(
        "2024-02",
        expect![[r#"2024-02-01T00:00:00.000000Z .. 2024-02-29T23:59:59.999999Z"#]],
    );
    check_date(
        "2023-02",
        expect![[r#"2023-02-01T00:00:00.000000Z .. 2023-02-28T23:59:59.999999Z"#]],
    );
    check_date(
        "2024-12",
        expect![[r#"2024-12-01T00:00:00.000000Z .. 2024-12-31T23:59:59.999999Z"#]],
    );
    check_date(
        "2024-02-29",
        expect![[r#"2024-02-29T00:00:00.000000Z .. 2024-02-29T23:59:59.999999Z"#]],
    );
}

#[test]
fn times_cover_their_precision_and_convert_to_utc() {
    check_date(
        "2024-02-29T10:00:00+09:00",
        expect![[r#"2024-02-29T01:00:00.000000Z .. 2024-02-29T01:00:00.999999Z"#]],
    );
    check_date(
        "2024-03-01T08:30:00+09:00",
        expect![[r#"2024-02-29T23:30:00.000000Z .. 2024-02-29T23:30:00.999999Z"#]],
    );
    check_date(
        "2024-02-29T10:00:00Z",
        expect![[r#"2024-02-29T10:00:00.000000Z .. 2024-02-29T10:00:00.999999Z"#]],
    );
    check_date(
        "2024-02-29T10:00:00.5-05:30",
        expect![[r#"2024-02-29T15:30:00.500000Z .. 2024-02-29T15:30:00.599999Z"#]],
    );
    check_date(
        "2019-11-01T09:29:23.356+11:00",
        expect![[r#"2019-10-31T22:29:23.356000Z .. 2019-10-31T22:29:23.356999Z"#]],
    );
    check_date(
        "2024-02-29T10:00:00.1234567Z",
        expect![[r#"2024-02-29T10:00:00.123456Z .. 2024-02-29T10:00:00.123456Z"#]],
    );
    // Search leniency: minutes only, and no zone (read as UTC).
    check_date(
        "2024-02-29T10:00",
        expect![[r#"2024-02-29T10:00:00.000000Z .. 2024-02-29T10:00:59.999999Z"#]],
    );
    check_date(
        "2024-02-29T10:00:00",
        expect![[r#"2024-02-29T10:00:00.000000Z .. 2024-02-29T10:00:00.999999Z"#]],
    );
    check_date(
        "1969-12-31T23:59:59Z",
        expect![[r#"1969-12-31T23:59:59.000000Z .. 1969-12-31T23:59:59.999999Z"#]],
    );
}

#[test]
fn malformed_dates_are_rejected() {
    for value in [
        "",
        "24",
        "2023-02-29",
        "2024-13",
        "2024-00",
        "2024-04-31",
        "2024-1-01",
        "0000",
        "2024-02-29T",
        "2024-02-29T25:00:00Z",
        "2024-02-29T10:60:00Z",
        "2024-02-29T10:00:00+15:00",
        "2024-02-29T10:00:00.Z",
        "2024T10:00:00Z",
        "2024-02-29 10:00:00",
        "abcd",
        "２０２４",
    ] {
        assert_eq!(parse_date_range(value), None, "{value}");
    }
}

fn check_decimal(text: &str, expected: Expect) {
    let rendered = match parse_decimal(text) {
        Some(decimal) => format!(
            "{:?} [{:?}, {:?}]",
            decimal.value, decimal.low, decimal.high
        ),
        None => "invalid".to_owned(),
    };
    expected.assert_eq(&rendered);
}

#[test]
fn decimals_carry_their_precision_range() {
    check_decimal("5.4", expect![[r#"5.4 [5.35, 5.449999999999999]"#]]);
    check_decimal("100", expect![[r#"100.0 [99.5, 100.49999999999999]"#]]);
    check_decimal("-5.4", expect!["-5.4 [-5.45, -5.3500000000000005]"]);
    check_decimal("0.0", expect![[r#"0.0 [-0.05, 0.049999999999999996]"#]]);
    check_decimal("5.40", expect![[r#"5.4 [5.395, 5.404999999999999]"#]]);
    check_decimal("1e2", expect![[r#"100.0 [50.0, 149.99999999999997]"#]]);
    check_decimal("5.4E-2", expect!["0.054 [0.0535, 0.05449999999999999]"]);
    check_decimal("+7", expect![[r#"7.0 [6.5, 7.499999999999999]"#]]);
    for text in [
        "",
        "abc",
        "5.",
        ".5",
        "5..4",
        "1e",
        "5,4",
        "１２",
        "NaN",
        "inf",
        "1e999",
        "1e-2147483648",
    ] {
        assert_eq!(parse_decimal(text), None, "{text}");
    }
}

#[test]
fn normalisation_folds_width_case_and_latin_accents() {
    let check = |input: &str, expected: Expect| expected.assert_eq(&normalize_string(input));
    check("ＡＢＣ１２３", expect![[r#"abc123"#]]);
    check("José", expect![[r#"jose"#]]);
    check("Jose\u{301}", expect![[r#"jose"#]]);
    check("Ærøskøbing Ünïcödé", expect![[r#"ærøskøbing unicode"#]]);
    check("Nguyễn", expect![[r#"nguyen"#]]);
    check("ｶﾞｸ", expect![[r#"ガク"#]]);
    check("やまだ　たろう", expect![[r#"やまだ たろう"#]]);
    check("Ελληνικά", expect![[r#"ελληνικά"#]]);
    check("PLAIN ascii", expect![[r#"plain ascii"#]]);
    assert_ne!(normalize_string("ガ"), normalize_string("カ"));
    assert_ne!(normalize_string("が"), normalize_string("か"));
    assert_ne!(normalize_string("パ"), normalize_string("ハ"));
    assert_eq!(normalize_string("ｶﾞ"), "ガ");
    assert_eq!(normalize_string("ﾊﾟ"), "パ");
}

#[test]
fn escapes_split_and_unescape() {
    let check = |value: &str, separator: char, expected: Expect| {
        let pieces: Vec<String> = split_unescaped(value, separator)
            .into_iter()
            .map(|piece| unescape(piece).into_owned())
            .collect();
        expected.assert_eq(&format!("{pieces:?}"));
    };
    check("a,b\\,c,d", ',', expect![[r#"["a", "b,c", "d"]"#]]);
    check("sys|co\\|de", '|', expect![[r#"["sys", "co|de"]"#]]);
    check("a\\$b\\\\", ',', expect![[r#"["a$b\\"]"#]]);
    check(",", ',', expect![[r#"["", ""]"#]]);
    check("", ',', expect![[r#"[""]"#]]);
}
