//! Tests for `patch`: every operation, pointer escapes, atomicity, and value-free diagnostics.

use expect_test::{Expect, expect};
use serde_json::{Value, json};

use super::*;

fn patient() -> Value {
    json!({
        "resourceType": "Patient",
        "id": "p1",
        "active": true,
        "name": [{ "family": "secret-family", "given": ["secret-a", "secret-b"] }],
        "a/b": { "m~n": 1 },
    })
}

/// Applies `patch` to the test patient and renders the result or the error.
fn check(patch: Value, expect: Expect) {
    let mut target = patient();
    let rendered = match apply(&mut target, &patch) {
        Ok(()) => target.to_string(),
        Err(issue) => {
            assert_eq!(
                target,
                patient(),
                "a failed patch leaves the target unchanged"
            );
            assert!(
                !issue.diagnostics.contains("secret"),
                "{issue:?} quotes a value"
            );
            format!(
                "{} {}: {}",
                issue.severity.as_str(),
                issue.code.as_str(),
                issue.diagnostics
            )
        }
    };
    expect.assert_eq(&rendered);
}

#[test]
fn add() {
    check(
        json!([
            { "op": "add", "path": "/gender", "value": "female" },
            { "op": "add", "path": "/name/0/given/1", "value": "x" },
            { "op": "add", "path": "/name/0/given/-", "value": "z" },
            { "op": "add", "path": "/active", "value": false },
        ]),
        expect![[
            r#"{"resourceType":"Patient","id":"p1","active":false,"name":[{"family":"secret-family","given":["secret-a","x","secret-b","z"]}],"a/b":{"m~n":1},"gender":"female"}"#
        ]],
    );
    check(
        json!([{ "op": "add", "path": "", "value": { "resourceType": "Basic" } }]),
        expect![[r#"{"resourceType":"Basic"}"#]],
    );
}

#[test]
fn remove_keeps_the_order_of_the_rest() {
    check(
        json!([{ "op": "remove", "path": "/id" }, { "op": "remove", "path": "/name/0/given/0" }]),
        expect![[
            r#"{"resourceType":"Patient","active":true,"name":[{"family":"secret-family","given":["secret-b"]}],"a/b":{"m~n":1}}"#
        ]],
    );
}

#[test]
fn replace_move_copy_test() {
    check(
        json!([
            { "op": "test", "path": "/name/0/given/1", "value": "secret-b" },
            { "op": "replace", "path": "/name/0/family", "value": "new" },
            { "op": "move", "from": "/name/0/given/0", "path": "/name/0/given/-" },
            { "op": "copy", "from": "/name/0", "path": "/name/-" },
            { "op": "test", "path": "/a~1b/m~0n", "value": 1.0 },
            { "op": "move", "from": "/id", "path": "/id" },
        ]),
        expect![[
            r#"{"resourceType":"Patient","id":"p1","active":true,"name":[{"family":"new","given":["secret-b","secret-a"]},{"family":"new","given":["secret-b","secret-a"]}],"a/b":{"m~n":1}}"#
        ]],
    );
}

#[test]
fn test_compares_objects_regardless_of_order() {
    check(
        json!([{ "op": "test", "path": "/a~1b", "value": { "m~n": 1 } }, { "op": "test", "path": "/name/0", "value": { "given": ["secret-a", "secret-b"], "family": "secret-family" } }]),
        expect![[
            r#"{"resourceType":"Patient","id":"p1","active":true,"name":[{"family":"secret-family","given":["secret-a","secret-b"]}],"a/b":{"m~n":1}}"#
        ]],
    );
}

#[test]
fn failures_leave_the_target_unchanged() {
    check(
        json!([{ "op": "replace", "path": "/active", "value": false }, { "op": "test", "path": "/name/0/family", "value": "other" }]),
        expect![
            "error processing: JSON Patch operation 1: test failed: the value at `/name/0/family` differs"
        ],
    );
    check(
        json!([{ "op": "remove", "path": "/gender" }]),
        expect!["error processing: JSON Patch operation 0: path `/gender` does not exist"],
    );
    check(
        json!([{ "op": "replace", "path": "/name/1/family", "value": "x" }]),
        expect!["error processing: JSON Patch operation 0: path `/name/1/family` does not exist"],
    );
    check(
        json!([{ "op": "add", "path": "/name/0/given/3", "value": "x" }]),
        expect![
            "error processing: JSON Patch operation 0: path `/name/0/given/3`: array index out of bounds"
        ],
    );
    check(
        json!([{ "op": "add", "path": "/contact/0/name", "value": {} }]),
        expect![
            "error processing: JSON Patch operation 0: path `/contact/0/name`: the parent does not exist"
        ],
    );
    check(
        json!([{ "op": "add", "path": "/active/x", "value": 1 }]),
        expect![
            "error processing: JSON Patch operation 0: path `/active/x`: the parent is not an object or array"
        ],
    );
    check(
        json!([{ "op": "move", "from": "/name", "path": "/name/0/x" }]),
        expect![
            "error processing: JSON Patch operation 0: cannot move `/name` into one of its own children"
        ],
    );
    check(
        json!([{ "op": "remove", "path": "" }]),
        expect!["error processing: JSON Patch operation 0: the whole document cannot be removed"],
    );
    check(
        json!([{ "op": "remove", "path": "/name/-" }]),
        expect![
            "error invalid: JSON Patch operation 0: path `/name/-`: an array index must be a number"
        ],
    );
}

#[test]
fn malformed_patches() {
    check(
        json!({ "op": "add" }),
        expect!["error invalid: a JSON Patch document must be an array of operations"],
    );
    check(
        json!(["add"]),
        expect!["error invalid: JSON Patch operation 0: an operation must be a JSON object"],
    );
    check(
        json!([{ "path": "/a" }]),
        expect!["error invalid: JSON Patch operation 0: `op` is missing"],
    );
    check(
        json!([{ "op": "merge", "path": "/a" }]),
        expect![
            "error invalid: JSON Patch operation 0: `op` must be one of add, remove, replace, move, copy, test"
        ],
    );
    check(
        json!([{ "op": "add", "path": "/a" }]),
        expect!["error invalid: JSON Patch operation 0: `value` is missing"],
    );
    check(
        json!([{ "op": "add", "path": 1, "value": 1 }]),
        expect!["error invalid: JSON Patch operation 0: `path` must be a string"],
    );
    check(
        json!([{ "op": "add", "path": "a", "value": 1 }]),
        expect!["error invalid: JSON Patch operation 0: path `a` must be empty or start with `/`"],
    );
    check(
        json!([{ "op": "copy", "path": "/a" }]),
        expect!["error invalid: JSON Patch operation 0: `from` is missing"],
    );
    check(
        json!([{ "op": "add", "path": "/a~2", "value": 1 }]),
        expect![
            "error invalid: JSON Patch operation 0: path `/a~2` has a `~` that is not followed by `0` or `1`"
        ],
    );
    check(
        json!([{ "op": "add", "path": "/name/01", "value": {} }]),
        expect![
            "error invalid: JSON Patch operation 0: path `/name/01`: an array index must be a number"
        ],
    );
}

#[test]
fn an_empty_patch_changes_nothing() {
    check(
        json!([]),
        expect![[
            r#"{"resourceType":"Patient","id":"p1","active":true,"name":[{"family":"secret-family","given":["secret-a","secret-b"]}],"a/b":{"m~n":1}}"#
        ]],
    );
}
