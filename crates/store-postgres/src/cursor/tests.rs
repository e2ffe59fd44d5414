//! Round trips and rejections of cursor text.

use crate::sql::Value;
use store::PageCursor;

use super::{Direction, Position, Scope, decode, encode};

#[test]
fn round_trips_every_key_kind() {
    let scope = Scope::of("Patient sort=name");
    let position = Position {
        direction: Direction::Before,
        keys: vec![
            Value::Null,
            Value::Int(-42),
            Value::Real(-1.5e300),
            Value::Text("Ça.va|x".to_owned()),
            Value::Text(String::new()),
        ],
        pk: 9_000_000_001,
    };
    let cursor = encode(scope, &position);
    assert!(
        cursor
            .0
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'),
        "{cursor:?}"
    );
    assert_eq!(decode(scope, &cursor, 5).ok(), Some(position));
}

#[test]
fn refuses_foreign_and_edited_cursors() {
    let scope = Scope::of("Patient");
    let position = Position {
        direction: Direction::After,
        keys: vec![Value::Int(7)],
        pk: 3,
    };
    let cursor = encode(scope, &position);
    assert!(decode(Scope::of("Observation"), &cursor, 1).is_err());
    assert!(decode(scope, &cursor, 2).is_err());
    let edited = PageCursor(cursor.0.replacen(".i7.", ".i8.", 1));
    assert!(decode(scope, &edited, 1).is_err());
    for junk in [
        "",
        ".",
        "c1",
        "c1.n.3",
        "garbage.0000000000000000",
        "c1.x.3.0",
    ] {
        assert!(
            decode(scope, &PageCursor(junk.to_owned()), 0).is_err(),
            "{junk}"
        );
    }
}

#[test]
fn sqlite_cursors_are_foreign() {
    // The same position encoded by the SQLite backend's format: its tag is `c1`, ours `g1`.
    let scope = Scope::of("Patient");
    let ours = encode(
        scope,
        &Position {
            direction: Direction::After,
            keys: Vec::new(),
            pk: 3,
        },
    );
    let theirs = PageCursor(ours.0.replacen("g1.", "c1.", 1));
    assert!(decode(scope, &theirs, 0).is_err());
}
