//! Search over HTTP: parameter types and modifiers, chaining, `_has`, includes, paging links under
//! concurrent writes, totals, summaries, and unknown-parameter handling.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::{TestApp, assert_outcome};

/// Two patients with a few observations each.
async fn seeded() -> (TestApp, String, String) {
    let app = TestApp::new();
    let yamada = app
        .create(json!({
            "resourceType": "Patient",
            "identifier": [{"system": "urn:oid:1.2.392.100495.20.3.51.11318814790", "value": "0001"}],
            "name": [{"family": "Yamada", "given": ["Tarō"]}],
            "gender": "male", "birthDate": "1970-04-01"
        }))
        .await;
    let sato = app
        .create(json!({
            "resourceType": "Patient",
            "identifier": [{"system": "urn:oid:1.2.392.100495.20.3.51.11318814790", "value": "0002"}],
            "name": [{"family": "Satō", "given": ["Hanako"]}],
            "gender": "female", "birthDate": "1985-11"
        }))
        .await;
    for (patient, value, date) in [
        (&yamada, "6.1", "2026-01-10"),
        (&yamada, "7.4", "2026-03-05"),
        (&sato, "5.4", "2025-12-24"),
    ] {
        app.create(json!({
            "resourceType": "Observation", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "Hemoglobin A1c"}]},
            "subject": {"reference": format!("Patient/{patient}")},
            "effectiveDateTime": date,
            "valueQuantity": {"value": value.parse::<f64>().unwrap(), "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}
        }))
        .await;
    }
    (app, yamada, sato)
}

async fn count(app: &TestApp, query: &str) -> usize {
    let reply = app.get(query).await;
    assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.text);
    reply.match_ids().len()
}

#[tokio::test]
async fn parameter_types_and_modifiers() {
    let (app, yamada, sato) = seeded().await;
    // token
    assert_eq!(count(&app, "/fhir/Patient?gender=male").await, 1);
    assert_eq!(count(&app, "/fhir/Patient?gender:not=male").await, 1);
    assert_eq!(
        count(
            &app,
            "/fhir/Patient?identifier=urn:oid:1.2.392.100495.20.3.51.11318814790|0002"
        )
        .await,
        1
    );
    assert_eq!(count(&app, "/fhir/Patient?identifier=0002").await, 1);
    assert_eq!(
        count(
            &app,
            "/fhir/Patient?identifier=urn:oid:1.2.392.100495.20.3.51.11318814790|"
        )
        .await,
        2
    );
    assert_eq!(
        count(&app, "/fhir/Observation?code:text=hemoglobin").await,
        3
    );
    // string: starts-with, case- and accent-insensitive; exact; contains
    assert_eq!(count(&app, "/fhir/Patient?name=yam").await, 1);
    assert_eq!(count(&app, "/fhir/Patient?family=sato").await, 1);
    assert_eq!(count(&app, "/fhir/Patient?family:exact=Sato").await, 0);
    assert_eq!(count(&app, "/fhir/Patient?family:exact=Sat%C5%8D").await, 1);
    assert_eq!(count(&app, "/fhir/Patient?given:contains=ana").await, 1);
    // date with prefixes and partial dates
    assert_eq!(count(&app, "/fhir/Patient?birthdate=1970").await, 1);
    assert_eq!(
        count(&app, "/fhir/Patient?birthdate=1985-11-15").await,
        0,
        "a month is not inside one day"
    );
    assert_eq!(count(&app, "/fhir/Patient?birthdate=ap1985-11-15").await, 1);
    assert_eq!(count(&app, "/fhir/Observation?date=ge2026-01-01").await, 2);
    assert_eq!(count(&app, "/fhir/Observation?date=lt2026").await, 1);
    assert_eq!(
        count(&app, "/fhir/Observation?date=ge2026-01-01&date=lt2026-02").await,
        1
    );
    assert_eq!(count(&app, "/fhir/Observation?date=sa2026-01-10").await, 1);
    assert_eq!(count(&app, "/fhir/Observation?date=eb2026-01-10").await, 1);
    // quantity and number
    assert_eq!(count(&app, "/fhir/Observation?value-quantity=gt6").await, 2);
    assert_eq!(
        count(
            &app,
            "/fhir/Observation?value-quantity=5.4|http://unitsofmeasure.org|%25"
        )
        .await,
        1
    );
    assert_eq!(
        count(&app, "/fhir/Observation?value-quantity=le6.1||%25").await,
        2
    );
    // reference forms
    assert_eq!(
        count(&app, &format!("/fhir/Observation?subject=Patient/{yamada}")).await,
        2
    );
    assert_eq!(
        count(&app, &format!("/fhir/Observation?subject={sato}")).await,
        1
    );
    assert_eq!(
        count(&app, &format!("/fhir/Observation?subject:Patient={sato}")).await,
        1
    );
    assert_eq!(
        count(&app, &format!("/fhir/Observation?patient={yamada},{sato}")).await,
        3
    );
    // :missing, _id, _lastUpdated
    assert_eq!(
        count(&app, "/fhir/Patient?birthdate:missing=false").await,
        2
    );
    assert_eq!(
        count(&app, "/fhir/Patient?death-date:missing=true").await,
        2
    );
    // `deceased` is `deceased.exists() and deceased != false`: false for both, not missing.
    assert_eq!(count(&app, "/fhir/Patient?deceased=false").await, 2);
    assert_eq!(count(&app, &format!("/fhir/Patient?_id={yamada}")).await, 1);
    assert_eq!(
        count(&app, "/fhir/Patient?_lastUpdated=gt2020-01-01").await,
        2
    );
}

#[tokio::test]
async fn chaining_reverse_chaining_and_includes() {
    let (app, yamada, sato) = seeded().await;
    assert_eq!(
        count(&app, "/fhir/Observation?subject:Patient.gender=female").await,
        1
    );
    assert_eq!(
        count(&app, "/fhir/Observation?patient.identifier=0001").await,
        2
    );
    let has = app
        .get("/fhir/Patient?_has:Observation:patient:value-quantity=gt7")
        .await;
    assert_eq!(has.match_ids(), [yamada.as_str()]);

    let included = app
        .get(&format!(
            "/fhir/Observation?patient={sato}&_include=Observation:subject"
        ))
        .await;
    let entries = included.json()["entry"].as_array().unwrap().clone();
    let modes: Vec<(&str, &str)> = entries
        .iter()
        .map(|entry| {
            (
                entry["resource"]["resourceType"].as_str().unwrap(),
                entry["search"]["mode"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(modes, [("Observation", "match"), ("Patient", "include")]);

    let reverse = app
        .get(&format!(
            "/fhir/Patient?_id={yamada}&_revinclude=Observation:subject"
        ))
        .await;
    let entries = reverse.json()["entry"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 3);
    assert_eq!(
        entries
            .iter()
            .filter(|entry| entry["search"]["mode"] == "include")
            .count(),
        2
    );
}

#[tokio::test]
async fn sorting_totals_summary_and_elements() {
    let (app, ..) = seeded().await;
    let sorted = app
        .get("/fhir/Observation?_sort=-date&_total=accurate")
        .await;
    let dates: Vec<String> = sorted.json()["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            entry["resource"]["effectiveDateTime"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(dates, ["2026-03-05", "2026-01-10", "2025-12-24"]);
    assert_eq!(sorted.json()["total"], 3);

    let counted = app.get("/fhir/Observation?_summary=count").await;
    assert_eq!(counted.json()["total"], 3);
    assert!(counted.match_ids().is_empty());

    let elements = app.get("/fhir/Patient?gender=male&_elements=gender").await;
    let resource = &elements.json()["entry"][0]["resource"];
    assert_eq!(resource["gender"], "male");
    assert!(resource.get("name").is_none());
    assert!(resource["meta"]["tag"].to_string().contains("SUBSETTED"));
}

#[tokio::test]
async fn paging_links_survive_concurrent_writes() {
    let app = TestApp::new();
    let mut ids = Vec::new();
    for index in 0..7 {
        ids.push(
            app.create(
                json!({"resourceType": "Patient", "name": [{"family": format!("P{index}")}]}),
            )
            .await,
        );
    }
    let first = app.get("/fhir/Patient?_count=3").await;
    let mut seen = first.match_ids();
    assert_eq!(seen.len(), 3);
    // Data changes underneath: one not-yet-seen patient is deleted, one seen patient is updated,
    // and new ones arrive.
    let unseen: Vec<&String> = ids.iter().filter(|id| !seen.contains(id)).collect();
    let deleted = unseen[0].clone();
    app.delete(&format!("/fhir/Patient/{deleted}")).await;
    let mut body = json!({"resourceType": "Patient", "id": seen[0], "gender": "female"});
    body["id"] = json!(seen[0]);
    assert_eq!(
        app.put(&format!("/fhir/Patient/{}", seen[0]), &body)
            .await
            .status,
        StatusCode::OK
    );
    app.create(json!({"resourceType": "Patient"})).await;

    let mut next = first.link("next");
    while let Some(url) = next {
        let page = app.get(&url).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        seen.extend(page.match_ids());
        next = page.link("next");
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        seen.len(),
        "no resource appears twice: {seen:?}"
    );
    for id in &ids {
        if *id != deleted {
            assert!(seen.contains(id), "unchanged resource {id} was skipped");
        }
    }
    assert!(!seen.contains(&deleted));

    let second = app.get(&first.link("next").unwrap()).await;
    let back = app
        .get(&second.link("previous").expect("previous link"))
        .await;
    assert_eq!(back.status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_parameters_are_reported_or_rejected() {
    let (app, ..) = seeded().await;
    let lenient = app.get("/fhir/Patient?favourite-colour=blue").await;
    assert_eq!(lenient.status, StatusCode::OK);
    let outcome = lenient.json()["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["search"]["mode"] == "outcome")
        .cloned()
        .expect("an outcome entry");
    assert_eq!(outcome["resource"]["resourceType"], "OperationOutcome");
    assert_eq!(
        lenient.match_ids().len(),
        2,
        "the unknown parameter is ignored"
    );

    let strict = app
        .request(
            Method::GET,
            "/fhir/Patient?favourite-colour=blue",
            &[("prefer", "handling=strict")],
            None,
        )
        .await;
    assert_outcome(&strict, StatusCode::BAD_REQUEST, "invalid");
    assert_outcome(
        &app.get("/fhir/Observation?date=gx2020").await,
        StatusCode::BAD_REQUEST,
        "invalid",
    );
}

#[tokio::test]
async fn patient_compartment_and_everything() {
    let (app, yamada, _sato) = seeded().await;
    let observations = app
        .get(&format!("/fhir/Patient/{yamada}/Observation"))
        .await;
    assert_eq!(observations.match_ids().len(), 2);
    let all = app.get(&format!("/fhir/Patient/{yamada}/*")).await;
    assert_eq!(all.match_ids().len(), 3, "the patient and two observations");
    let everything = app
        .get(&format!("/fhir/Patient/{yamada}/$everything?_count=2"))
        .await;
    assert_eq!(everything.status, StatusCode::OK);
    let mut seen = everything.match_ids();
    let next = everything.link("next").expect("paged");
    seen.extend(app.get(&next).await.match_ids());
    assert_eq!(seen.len(), 3);
    assert!(seen.contains(&yamada));
    assert_outcome(
        &app.get("/fhir/Patient/nobody/$everything").await,
        StatusCode::NOT_FOUND,
        "not-found",
    );
}

#[tokio::test]
async fn post_search_with_a_form_body() {
    let (app, ..) = seeded().await;
    let reply = app
        .request(
            Method::POST,
            "/fhir/Patient/_search",
            &[("content-type", "application/x-www-form-urlencoded")],
            Some("gender=female".into()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.match_ids().len(), 1);
}
