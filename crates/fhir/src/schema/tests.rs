//! Tests for `schema`: the vendored files compile, and unsupported constructs are refused.

use expect_test::{Expect, expect};

use super::*;

fn check_compile_error(schema: &str, elements: &str, expect: Expect) {
    let error = compile(schema, elements)
        .err()
        .expect("the schema is refused");
    expect.assert_eq(&error);
}

const DISCRIMINATOR: &str = r#""discriminator":{"propertyName":"resourceType","mapping":{}}"#;

#[test]
fn the_vendored_schema_compiles() {
    let schema = Schema::get();
    assert_eq!(schema.resource_type_names().count(), 146);
    let patient = schema.resource("Patient").expect("Patient is a resource");
    assert_eq!(patient.resource_type.as_deref(), Some("Patient"));
    assert!(patient.properties.contains_key("_birthDate"));
    assert!(patient.summary.contains("deceasedDateTime"));
    assert!(!patient.summary.contains("contact"));
    let observation = schema
        .resource("Observation")
        .expect("Observation is a resource");
    let mandatory: Vec<&str> = observation
        .mandatory
        .iter()
        .map(|mandatory| &*mandatory.element)
        .collect();
    assert_eq!(mandatory, ["status", "code"]);
    assert!(observation.is_mandatory("_status"));
    assert!(schema.resource("Project").is_none());
}

#[test]
fn unsupported_constructs_are_refused() {
    check_compile_error(
        &format!(r#"{{"definitions":{{"A":{{"allOf":[]}}}},{DISCRIMINATOR}}}"#),
        "{}",
        expect![
            "schema: unknown field `allOf`, expected one of `properties`, `required`, `additionalProperties`, `type`, `pattern`, `oneOf` at line 1 column 28"
        ],
    );
    check_compile_error(
        &format!(
            r##"{{"definitions":{{"A":{{"properties":{{"b":{{"$ref":"#/definitions/B"}}}},"additionalProperties":false}}}},{DISCRIMINATOR}}}"##
        ),
        "{}",
        expect!["definition `A`: property `b`: dangling reference `#/definitions/B`"],
    );
    check_compile_error(
        &format!(r#"{{"definitions":{{"A":{{"properties":{{}}}}}},{DISCRIMINATOR}}}"#),
        "{}",
        expect![
            "definition `A`: only closed objects (`additionalProperties: false`) are supported"
        ],
    );
    check_compile_error(
        &format!(
            r#"{{"definitions":{{"A":{{"properties":{{"b":{{"type":"array","items":{{"type":"array"}}}}}},"additionalProperties":false}}}},{DISCRIMINATOR}}}"#
        ),
        "{}",
        expect!["definition `A`: property `b`: unsupported shape"],
    );
    check_compile_error(
        &format!(r#"{{"definitions":{{"A":{{"type":"integer"}}}},{DISCRIMINATOR}}}"#),
        "{}",
        expect!["definition `A`: unsupported primitive type"],
    );
    check_compile_error(
        &format!(r#"{{"definitions":{{}},{DISCRIMINATOR}}}"#),
        r#"{"B":{"mandatory":["c"]}}"#,
        expect!["elements table: `B` is not a schema definition"],
    );
    check_compile_error(
        &format!(
            r#"{{"definitions":{{"A":{{"properties":{{}},"additionalProperties":false}}}},{DISCRIMINATOR}}}"#
        ),
        r#"{"A":{"mandatory":["value[x]"]}}"#,
        expect!["definition `A`: `value[x]` is not a choice"],
    );
}

#[test]
fn regexes_use_xml_schema_white_space_and_are_anchored() {
    let string = fhir_regex(ANY_TEXT_PATTERN).expect("compiles");
    for text in [
        "山田\u{3000}太郎",
        " a\tb\r\n",
        " ",
        "\u{b}\u{c}\u{a0}\u{2028}",
        "\0",
    ] {
        assert!(string.is_match(text), "{text:?}");
    }
    assert!(!string.is_match(""));
    let code = fhir_regex(r"^[^\s]+(\s[^\s]+)*$").expect("compiles");
    assert!(code.is_match("a b"));
    assert!(code.is_match("a\u{3000}b"));
    assert!(!code.is_match("a  b"));
    assert!(!code.is_match(" a"));
    let uri = fhir_regex(r"^\S*$").expect("compiles");
    assert!(uri.is_match("urn:oid:1.2\u{a0}"));
    assert!(!uri.is_match("a b"));
    // The schema's unsignedInt pattern is an unanchored alternation; the wrapper anchors it.
    let unsigned = fhir_regex(r"^[0]|([1-9][0-9]*)$").expect("compiles");
    assert!(unsigned.is_match("0"));
    assert!(unsigned.is_match("10"));
    assert!(!unsigned.is_match("01"));
    assert!(!unsigned.is_match("-1"));
    assert!(!unsigned.is_match("0.5"));
}

#[test]
fn base64_is_checked_like_its_pattern() {
    let pattern = fhir_regex(BASE64_PATTERN).expect("compiles");
    let samples = [
        "",
        " ",
        "abcd",
        "abc",
        "abcde",
        "ab cd",
        "abcd efgh",
        " abcd\n",
        "abcd\r\n\tefgh ",
        "ab==",
        "abc=",
        "abcd=",
        "a+/9",
        "abcd\u{3000}",
        "ab\u{e9}d",
        "abcd  ",
        "ab-d",
        "abcdefgh",
        "\tabcd",
        "abcd\u{b}",
    ];
    for sample in samples {
        assert_eq!(is_base64(sample), pattern.is_match(sample), "{sample:?}");
    }
}
