//! The population loads through the real transaction path, and the searches the benchmarks time
//! find what they should (a benchmark of queries that match nothing would measure nothing), on
//! both backends; the PostgreSQL run's database is dropped afterwards.
//!
//! The PostgreSQL test needs `TEST_POSTGRES_URL` (`scripts/with-postgres.sh cargo test -p benches`);
//! without it it prints a loud SKIPPED notice and passes locally, but fails when `CI` is set.

use app::SearchInput;

use super::{Breakdown, LoadPlan, load};
use crate::population::{LOINC, Shape, hospital};
use crate::setup::{Database, System};

/// The admin URL from `TEST_POSTGRES_URL`, or None (after a loud notice) when it is unset locally.
///
/// # Panics
/// When it is unset and `CI` is set.
fn test_url(test: &str) -> Option<String> {
    store::conformance::prerequisite(
        store::conformance::env_value("TEST_POSTGRES_URL"),
        "TEST_POSTGRES_URL is not set",
        &format!("benches {test}"),
        "Run `scripts/with-postgres.sh cargo test -p benches` to test PostgreSQL.",
    )
}

fn search(types: &str, params: &[(&str, &str)]) -> SearchInput {
    SearchInput {
        types: vec![types.to_owned()],
        params: params
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect(),
        ..SearchInput::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_population_loads_and_is_searchable_on_sqlite() -> anyhow::Result<()> {
    let system = System::open(&Database::Sqlite, None, 2).await?;
    assert_eq!(system.backend.kind, "sqlite");
    loads_and_is_searchable(&system).await?;
    assert!(system.database_bytes().await? > 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_population_loads_and_is_searchable_on_postgres_in_a_database_of_its_own()
-> anyhow::Result<()> {
    let Some(admin_url) = test_url("a_small_population_loads_and_is_searchable_on_postgres") else {
        return Ok(());
    };
    let database: Database = admin_url.parse().map_err(anyhow::Error::msg)?;
    let system = System::open(&database, None, 4).await?;
    let backend = system.backend.clone();
    assert_eq!(backend.kind, "postgres");
    assert!(
        backend.label.starts_with("PostgreSQL 1"),
        "{}",
        backend.label
    );
    assert_eq!(backend.pool_connections, Some(4));
    let name = backend.database.clone().expect("a database of its own");
    assert!(name.starts_with("tsunagu_bench_"), "{name}");
    assert_eq!(databases_named(&admin_url, &name).await?, 1);
    loads_and_is_searchable(&system).await?;
    assert!(system.database_bytes().await? > 0);
    drop(system);
    assert_eq!(
        databases_named(&admin_url, &name).await?,
        0,
        "the benchmark's database is dropped with it"
    );
    Ok(())
}

/// How many databases named `name` the server of `admin_url` has.
async fn databases_named(admin_url: &str, name: &str) -> anyhow::Result<i64> {
    let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls).await?;
    let driver = tokio::spawn(connection);
    let count = client
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = $1",
            &[&name],
        )
        .await?
        .get(0);
    drop(client);
    let _ = driver.await;
    Ok(count)
}

/// Loads 7 Patients with their results through `system` and checks what the timed searches find.
async fn loads_and_is_searchable(system: &System) -> anyhow::Result<()> {
    system
        .app
        .update(
            "Organization",
            crate::population::HOSPITAL_ID,
            hospital(),
            &app::Preconditions::default(),
        )
        .await?;
    let plan = LoadPlan {
        shape: Shape::default(),
        groups: 7,
        bundle_entries: 60,
        tasks: 2,
        progress: false,
    };
    let loaded = load(&system.app, plan).await?;
    assert_eq!(loaded.patients.len(), 7);
    assert_eq!(loaded.observations.len(), 7 * 19);
    assert_eq!(loaded.bundles.len(), 3);

    let patient = &loaded.patients[0];
    let by_patient = system
        .app
        .search(&search(
            "Observation",
            &[
                ("patient", patient),
                ("category", "laboratory"),
                ("_sort", "-date"),
            ],
        ))
        .await?;
    assert_eq!(by_patient.page.matches.len(), 19);

    let result = system
        .app
        .read("Observation", &loaded.observations[0])
        .await?;
    let body: serde_json::Value = serde_json::from_str(&result.json)?;
    let loinc = body["code"]["coding"][1]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let code = format!("{LOINC}|{loinc}");
    let subject = body["subject"]["reference"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let by_code = system
        .app
        .search(&search(
            "Observation",
            &[("code", &code), ("patient", &subject)],
        ))
        .await?;
    assert!(
        by_code
            .page
            .matches
            .iter()
            .any(|found| found.id == loaded.observations[0])
    );
    Ok(())
}

#[test]
fn the_breakdown_validates_the_sample() -> anyhow::Result<()> {
    let breakdown = Breakdown::measure(Shape::default(), 0..2, 1)?;
    assert_eq!(breakdown.resources, 40);
    assert!(breakdown.index_entries > 5.0);
    Ok(())
}
