//! Tests for `json`: exact round trips, and syntax errors that locate without quoting.

use expect_test::{Expect, expect};

use super::*;

fn check_error(input: &str, expect: Expect) {
    let issue = parse_json(input.as_bytes()).expect_err("invalid JSON");
    assert_eq!(issue.code, IssueCode::Structure);
    assert_eq!(issue.expression, None);
    assert!(
        !issue.diagnostics.contains("secret"),
        "{issue:?} quotes the input"
    );
    expect.assert_eq(&issue.diagnostics);
}

#[test]
fn syntax_errors_name_the_position_only() {
    check_error(
        r#"{"name": "secret" "x": 1}"#,
        expect!["invalid JSON at line 1, column 19: expected `,` or `}`"],
    );
    check_error(
        "{\n  \"a\": [1, 2,]\n}",
        expect!["invalid JSON at line 2, column 14: trailing comma"],
    );
    check_error(
        r#"{"secret": tru}"#,
        expect!["invalid JSON at line 1, column 15: expected ident"],
    );
    check_error(
        r#"{"secret": "\q"}"#,
        expect!["invalid JSON at line 1, column 14: invalid escape"],
    );
    check_error(
        r#"{"secret": 1} secret"#,
        expect!["invalid JSON at line 1, column 15: trailing characters"],
    );
    check_error(
        r#"{"secret": "unterminated"#,
        expect!["invalid JSON at line 1, column 24: EOF while parsing a string"],
    );
    check_error(
        "",
        expect!["invalid JSON at line 1, column 0: EOF while parsing a value"],
    );
    check_error(
        "{\"secret\": \"\u{1}\"}",
        expect![
            "invalid JSON at line 1, column 13: control character (\\u0000-\\u001F) found while parsing a string"
        ],
    );
}

#[test]
fn invalid_utf8_is_a_syntax_error() {
    let issue = parse_json(b"{\"a\": \"\xff\"}").expect_err("invalid UTF-8");
    expect!["invalid JSON at line 1, column 8: invalid unicode code point"]
        .assert_eq(&issue.diagnostics);
}

#[test]
fn round_trips_are_byte_faithful() {
    let text = r#"{"resourceType":"Observation","valueQuantity":{"value":1.50},"b":[1e3,-0,0.000100,123456789012345678901234567890.0],"a":"\u00e9 山田"}"#;
    let value = parse_json(text.as_bytes()).expect("valid JSON");
    // Member order and number texts are kept; string escapes are normalised, and so is an exponent
    // without a sign (`1e3` becomes `1e+3`, same value), which serde_json's parser spells out.
    expect![[r#"{"resourceType":"Observation","valueQuantity":{"value":1.50},"b":[1e+3,-0,0.000100,123456789012345678901234567890.0],"a":"é 山田"}"#]]
        .assert_eq(&serde_json::to_string(&value).expect("serialisable"));
    assert_eq!(value["valueQuantity"]["value"].to_string(), "1.50");
}

#[test]
fn a_byte_order_mark_is_skipped() {
    let value = parse_json(b"\xEF\xBB\xBF{\"resourceType\":\"Patient\"}")
        .expect("valid JSON after the BOM");
    assert_eq!(value["resourceType"], "Patient");
}

#[test]
fn duplicate_members_are_refused() {
    check_error(
        "{\"resourceType\": \"Patient\",\n  \"gender\": \"secret\", \"gender\": \"male\"}",
        expect!["invalid JSON at line 2, column 23: member `gender` appears twice in one object"],
    );
    check_error(
        r#"{"a": [{"b": 1}, {"b": 2, "c": {"b": 3, "\u0062": 4}}]}"#,
        expect!["invalid JSON at line 1, column 41: member `b` appears twice in one object"],
    );
    // The same name in different objects, and names inside string values, are fine.
    let value = parse_json(
        br#"{"a": {"b": "\"b\": 1, {"}, "b": [{"b": 1}, {"b": 2}], "c\"": 1, "c": "}"}"#,
    );
    assert!(value.is_ok(), "{value:?}");
}

#[test]
fn long_strings_are_skipped_correctly() {
    // Quotes and escapes at every offset within and across eight-byte words.
    for padding in 0..17 {
        let filler = "x".repeat(padding);
        let text =
            format!(r#"{{"a": "{filler}\"{filler}\\", "b": "{filler}", "a{filler}": 1, "a": 2}}"#);
        let issue = parse_json(text.as_bytes()).expect_err("duplicate `a`");
        assert!(
            issue.diagnostics.contains("member `a` appears twice"),
            "{padding}: {issue:?}"
        );
    }
    assert!(has_byte(u64::from_le_bytes(*b"abcdefg\""), b'"'));
    assert!(!has_byte(u64::from_le_bytes(*b"abcdefgh"), b'"'));
    assert!(has_byte(u64::from_le_bytes(*b"\\bcdefgh"), b'\\'));
}
