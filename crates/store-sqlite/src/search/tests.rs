//! Pins the SQL generated for representative searches (golden text), and checks that SQLite plans
//! them with the search indexes: the latency targets depend on those plans.

use rusqlite::Connection;
use rusqlite::types::Value;
use store::{Condition, SearchQuery, SortKey, SortParam, TokenSystem, ValueTest};

use super::page_sql;
use crate::cursor::{Direction, Position};

fn database() -> Connection {
    let mut connection = Connection::open_in_memory().expect("open");
    crate::migrate::migrate(&mut connection, 0).expect("migrate");
    connection
}

fn token_search() -> SearchQuery {
    SearchQuery {
        types: vec!["Observation".to_owned()],
        filters: vec![vec![Condition::Match {
            param: "code".to_owned(),
            test: ValueTest::Token {
                system: TokenSystem::Is("http://loinc.org".to_owned()),
                code: Some("8867-4".to_owned()),
            },
        }]],
        count: 20,
        ..SearchQuery::default()
    }
}

/// The `detail` lines of `EXPLAIN QUERY PLAN` for the page SQL of `query`.
fn plan(connection: &Connection, query: &SearchQuery, position: Option<&Position>) -> String {
    let sql = page_sql(query, position, query.count as usize);
    let mut statement = connection
        .prepare(&format!("EXPLAIN QUERY PLAN {}", sql.text))
        .expect("prepare");
    let details = statement
        .query_map(rusqlite::params_from_iter(sql.params.iter()), |row| {
            row.get::<_, String>(3)
        })
        .expect("query")
        .collect::<Result<Vec<_>, _>>()
        .expect("rows");
    details.join("\n")
}

#[test]
fn token_search_sql_is_pinned() {
    let sql = page_sql(&token_search(), None, 20);
    assert_eq!(
        sql.text,
        "SELECT pk FROM (SELECT r.pk AS pk FROM resource r WHERE r.deleted = 0 AND r.type = ?1 \
         AND (r.pk IN (SELECT res FROM idx_token WHERE 1 AND pid = (SELECT pid FROM search_param \
         WHERE type = ?3 AND param = ?2) AND code = ?4 AND system = ?5))) ORDER BY pk LIMIT ?6"
    );
    assert_eq!(
        sql.params,
        [
            Value::Text("Observation".to_owned()),
            Value::Text("code".to_owned()),
            Value::Text("Observation".to_owned()),
            Value::Text("8867-4".to_owned()),
            Value::Text("http://loinc.org".to_owned()),
            Value::Integer(21),
        ]
    );
}

#[test]
fn keyset_sql_is_pinned() {
    let mut query = token_search();
    query.filters.clear();
    query.sort = vec![SortKey {
        param: SortParam::Param {
            code: "date".to_owned(),
            kind: store::ParamKind::Date,
        },
        descending: true,
    }];
    let position = Position {
        direction: Direction::After,
        keys: vec![Value::Integer(1_000)],
        pk: 7,
    };
    let sql = page_sql(&query, Some(&position), 20);
    assert_eq!(
        sql.text,
        "SELECT pk, k0 FROM (SELECT r.pk AS pk, (SELECT max(high) FROM idx_date WHERE res = r.pk \
         AND pid IN (SELECT pid FROM search_param WHERE param = ?1)) AS k0 FROM resource r \
         WHERE r.deleted = 0 AND r.type = ?2) WHERE ((k0 IS NULL OR k0 < ?4) OR (k0 = ?4 AND \
         pk > ?3)) ORDER BY k0 IS NULL, k0 DESC, pk LIMIT ?5"
    );
}

#[test]
fn token_search_drives_from_the_token_index() {
    let plan = plan(&database(), &token_search(), None);
    assert!(plan.contains("idx_token_search"), "{plan}");
    assert!(!plan.contains("SCAN r"), "{plan}");
}

#[test]
fn type_listing_reads_the_type_index_in_storage_order() {
    let mut query = token_search();
    query.filters.clear();
    let plan = plan(&database(), &query, None);
    assert!(plan.contains("resource_by_type"), "{plan}");
    assert!(!plan.contains("TEMP B-TREE"), "no sort needed: {plan}");
}
