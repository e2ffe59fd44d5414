//! Unit tests of the migration list itself.

use super::MIGRATIONS;

#[test]
fn versions_are_contiguous_from_one() {
    for (position, migration) in MIGRATIONS.iter().enumerate() {
        assert_eq!(migration.version, position as i64 + 1, "{}", migration.name);
    }
}
