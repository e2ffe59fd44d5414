//! The population loads through the real transaction path, and the searches the benchmarks time
//! find what they should (a benchmark of queries that match nothing would measure nothing).

use app::SearchInput;

use super::{Breakdown, LoadPlan, load};
use crate::population::{LOINC, Shape, hospital};
use crate::setup::System;

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
async fn a_small_population_loads_and_is_searchable() -> anyhow::Result<()> {
    let system = System::open(None)?;
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
