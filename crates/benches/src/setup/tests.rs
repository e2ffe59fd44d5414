//! The `--database` option: what it accepts, that it never shows a URL, and how the benchmark's
//! own database URL is derived from the admin URL.

use super::{Database, database_url};

#[test]
fn the_database_option_takes_sqlite_or_a_postgres_url() {
    assert!(matches!("sqlite".parse::<Database>(), Ok(Database::Sqlite)));
    for url in [
        "postgres://tsunagu:secret@127.0.0.1:5432/postgres",
        "postgresql://tsunagu@localhost/postgres",
    ] {
        assert!(
            matches!(url.parse::<Database>(), Ok(Database::Postgres(_))),
            "{url}"
        );
    }
    for wrong in ["sqlite://x.db", "mysql://x", ""] {
        let error = wrong.parse::<Database>().expect_err(wrong);
        assert!(error.contains("postgres://"), "{error}");
    }
}

#[test]
fn neither_debug_nor_a_parse_error_shows_the_url() {
    let database: Database = "postgres://tsunagu:secret@127.0.0.1:5432/postgres"
        .parse()
        .expect("parse");
    assert!(!format!("{database:?}").contains("secret"));
    let error = "postgres://tsunagu:secret@127.0.0.1:notaport/postgres"
        .parse::<Database>()
        .expect_err("a malformed URL");
    assert!(!error.contains("secret"), "{error}");
}

#[test]
fn the_benchmark_database_replaces_the_admin_database() {
    let url = |admin: &str| database_url(admin, "tsunagu_bench_1").expect(admin);
    assert_eq!(
        url("postgres://u:p@127.0.0.1:5432/postgres"),
        "postgres://u:p@127.0.0.1:5432/tsunagu_bench_1"
    );
    assert_eq!(
        url("postgresql://u@db.example:6543"),
        "postgresql://u@db.example:6543/tsunagu_bench_1"
    );
    assert_eq!(
        url("postgres://u@h/postgres?connect_timeout=3"),
        "postgres://u@h/tsunagu_bench_1?connect_timeout=3"
    );
    assert!(database_url("mysql://u@h/x", "y").is_err());
}
