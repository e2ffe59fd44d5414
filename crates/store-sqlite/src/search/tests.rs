//! Pins the SQL generated for representative searches (golden text), and checks that SQLite plans
//! them with the search indexes: the latency targets depend on those plans.

use rusqlite::Connection;
use rusqlite::types::Value;
use store::{Condition, SearchQuery, SortKey, SortParam, TokenSystem, ValueTest};

use super::{Driver, choose_driver, page_sql};
use crate::cursor::{Direction, Position};

/// A migrated in-memory database planning as the store's connections do.
fn database() -> Connection {
    let mut connection = Connection::open_in_memory().expect("open");
    crate::connection::plan_without_bound_values(&connection).expect("qpsg");
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
    let driver = choose_driver(connection, query).expect("driver");
    let sql = page_sql(query, driver, position, query.count as usize + 1);
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
    let sql = page_sql(&token_search(), Driver::Group(0), None, 21);
    assert_eq!(
        sql.text,
        "SELECT pk FROM (SELECT d.res AS pk FROM idx_token d CROSS JOIN resource r \
         WHERE r.pk = d.res AND d.pid = (SELECT pid FROM search_param WHERE type = ?2 \
         AND param = ?1) AND d.code = ?3 AND d.system = ?4 AND +r.deleted = 0 AND +r.type = ?5) \
         ORDER BY pk LIMIT ?6"
    );
    assert_eq!(
        sql.params,
        [
            Value::Text("code".to_owned()),
            Value::Text("Observation".to_owned()),
            Value::Text("8867-4".to_owned()),
            Value::Text("http://loinc.org".to_owned()),
            Value::Text("Observation".to_owned()),
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
    let sql = page_sql(&query, Driver::Sets, Some(&position), 21);
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

fn patient(id: &str) -> Condition {
    Condition::Match {
        param: "patient".to_owned(),
        test: ValueTest::Reference {
            target_type: Some("Patient".to_owned()),
            id: Some(id.to_owned()),
            url: None,
        },
    }
}

/// `Observation?code=loinc|X&patient=Patient/Y`.
fn code_and_patient() -> SearchQuery {
    let mut query = token_search();
    query.filters.push(vec![patient("p1")]);
    query
}

/// `Observation?patient=Y&category=laboratory&_sort=-date`.
fn patient_category_sorted() -> SearchQuery {
    SearchQuery {
        types: vec!["Observation".to_owned()],
        filters: vec![
            vec![patient("p1")],
            vec![Condition::Match {
                param: "category".to_owned(),
                test: ValueTest::Token {
                    system: TokenSystem::Any,
                    code: Some("laboratory".to_owned()),
                },
            }],
        ],
        sort: vec![SortKey {
            param: SortParam::Param {
                code: "date".to_owned(),
                kind: store::ParamKind::Date,
            },
            descending: true,
        }],
        count: 20,
        ..SearchQuery::default()
    }
}

#[test]
fn a_single_index_match_drives_and_streams_in_pk_order() {
    let connection = database();
    assert_eq!(
        choose_driver(&connection, &token_search()).expect("driver"),
        Driver::Group(0)
    );
    let plan = plan(&connection, &token_search(), None);
    assert!(plan.contains("idx_token_search"), "{plan}");
    assert!(
        !plan.contains("TEMP B-TREE"),
        "no sort, no collected set: {plan}"
    );
    assert!(!plan.contains("LIST SUBQUERY"), "{plan}");
    assert!(!plan.contains("SCAN"), "{plan}");
}

#[test]
fn the_reference_drives_and_the_code_is_probed() {
    let connection = database();
    let query = code_and_patient();
    assert_eq!(
        choose_driver(&connection, &query).expect("driver"),
        Driver::Group(1)
    );
    let plan = plan(&connection, &query, None);
    assert!(plan.contains("idx_reference_search"), "{plan}");
    assert!(
        plan.contains("SEARCH idx_token EXISTS USING PRIMARY KEY (res=?)"),
        "{plan}"
    );
    assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    assert!(!plan.contains("SCAN"), "{plan}");
}

#[test]
fn a_sorted_search_sorts_only_the_driven_candidates() {
    let connection = database();
    let query = patient_category_sorted();
    assert_eq!(
        choose_driver(&connection, &query).expect("driver"),
        Driver::Group(0)
    );
    let plan = plan(&connection, &query, None);
    assert!(plan.contains("idx_reference_search"), "{plan}");
    // Only the tiny `search_param` table is scanned (once, for the sort key's parameter ids).
    assert!(!plan.contains("SCAN r"), "{plan}");
    assert!(!plan.contains("SCAN idx"), "{plan}");
    assert!(!plan.contains("resource_by_type"), "{plan}");
    assert!(
        plan.contains("SEARCH idx_token EXISTS USING PRIMARY KEY (res=?)"),
        "the probe reads the candidate's rows, not every laboratory row: {plan}"
    );
}

/// `Observation?subject=<absolute url>`: a reference by URL.
fn reference_by_url() -> SearchQuery {
    SearchQuery {
        types: vec!["Observation".to_owned()],
        filters: vec![vec![Condition::Match {
            param: "subject".to_owned(),
            test: ValueTest::Reference {
                target_type: None,
                id: None,
                url: Some("https://example.org/fhir/Patient/1".to_owned()),
            },
        }]],
        count: 20,
        ..SearchQuery::default()
    }
}

#[test]
fn a_reference_by_url_reads_the_partial_url_index() {
    // The partial index's condition (`url IS NOT NULL`) is implied by `url = ?N` without
    // looking at the bound value, so planning without bound values keeps it usable.
    let plan = plan(&database(), &reference_by_url(), None);
    assert!(plan.contains("idx_reference_url"), "{plan}");
    assert!(!plan.contains("SCAN"), "{plan}");
}

/// Runs `queries` one after the other on one connection through the statement cache, and returns
/// how often SQLite re-prepared the cached page statement of the last one.
fn reprepares(connection: &Connection, queries: &[SearchQuery]) -> i32 {
    for query in queries {
        super::search(connection, query).expect("search");
    }
    let last = queries.last().expect("a query");
    let driver = choose_driver(connection, last).expect("driver");
    let sql = page_sql(last, driver, None, last.count as usize + 1);
    let statement = connection.prepare_cached(&sql.text).expect("cached");
    statement.get_status(rusqlite::StatementStatus::RePrepare)
}

#[test]
fn cached_search_statements_are_not_prepared_again_on_every_execution() {
    let queries: Vec<SearchQuery> = (0..5)
        .map(|n| {
            let mut query = code_and_patient();
            query.filters[1] = vec![patient(&format!("p{n}"))];
            query.count = 10 + n;
            query
        })
        .collect();
    assert_eq!(reprepares(&database(), &queries), 0);

    // What it guards against: without the planner stability guarantee, SQLite re-plans the
    // statement after each rebinding of its `LIMIT` (rusqlite's cache clears the bindings).
    let mut unstable = Connection::open_in_memory().expect("open");
    crate::migrate::migrate(&mut unstable, 0).expect("migrate");
    assert!(reprepares(&unstable, &queries) > 0);
}

/// `Patient?identifier=a,b` (how a submission finds its person by any of its keys) is the union of
/// the alternatives' index rows, not a walk over every Patient: at 100,000 people the walk made
/// each submission read every Patient row.
#[test]
fn alternatives_of_an_index_match_drive_through_their_indexes() {
    let alternative = |code: &str| Condition::Match {
        param: "identifier".to_owned(),
        test: ValueTest::Token {
            system: TokenSystem::Is("urn:oid:1.2.392.100495.20.3.61".to_owned()),
            code: Some(code.to_owned()),
        },
    };
    let mut query = SearchQuery {
        types: vec!["Patient".to_owned()],
        filters: vec![vec![alternative("a"), alternative("b"), alternative("c")]],
        count: 2,
        ..SearchQuery::default()
    };
    let connection = database();
    assert_eq!(
        choose_driver(&connection, &query).expect("driver"),
        Driver::Group(0)
    );
    let plan = plan(&connection, &query, None);
    assert_eq!(plan.matches("idx_token_search").count(), 3, "{plan}");
    assert!(plan.contains("UNION"), "{plan}");
    assert!(!plan.contains("resource_by_type"), "{plan}");
    assert!(!plan.contains("SCAN"), "{plan}");
    // An alternative no index can narrow leaves the group to the sets.
    query.filters[0].push(Condition::Match {
        param: "identifier".to_owned(),
        test: ValueTest::Token {
            system: TokenSystem::Any,
            code: None,
        },
    });
    assert_eq!(
        choose_driver(&connection, &query).expect("driver"),
        Driver::Sets
    );
}
