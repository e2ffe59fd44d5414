//! Unit tests of the migration list itself.

use super::MIGRATIONS;

#[test]
fn versions_are_contiguous_from_one() {
    for (position, migration) in MIGRATIONS.iter().enumerate() {
        assert_eq!(migration.version, position as i64 + 1, "{}", migration.name);
    }
}

#[test]
fn the_write_generation_table_has_a_row_for_each_counted_type_and_no_other() {
    let mut connection = rusqlite::Connection::open_in_memory().expect("open");
    super::migrate(&mut connection, 0).expect("migrate");
    let mut statement = connection
        .prepare("SELECT type FROM write_generation ORDER BY type")
        .expect("prepare");
    let rows: Vec<String> = statement
        .query_map([], |row| row.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    let mut counted = crate::write::COUNTED_TYPES.to_vec();
    counted.sort_unstable();
    assert_eq!(rows, counted);
}
