//! Transaction and batch Bundles posted to the base URL.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::{TestApp, assert_outcome};

fn entry_post(full_url: &str, resource: Value) -> Value {
    let resource_type = resource["resourceType"].as_str().unwrap().to_owned();
    json!({"fullUrl": full_url, "resource": resource, "request": {"method": "POST", "url": resource_type}})
}

#[tokio::test]
async fn transaction_resolves_urn_uuid_references_to_new_ids() {
    let app = TestApp::new();
    let patient_url = "urn:uuid:3f9e3a4c-0000-4000-8000-000000000001";
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            entry_post("urn:uuid:3f9e3a4c-0000-4000-8000-000000000002", json!({
                "resourceType": "Observation", "status": "final", "code": {"text": "HbA1c"},
                "subject": {"reference": patient_url}
            })),
            entry_post(patient_url, json!({"resourceType": "Patient", "name": [{"family": "佐藤"}]})),
        ]
    });
    let reply = app.post("/fhir", &bundle).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let response = reply.json();
    assert_eq!(response["type"], "transaction-response");
    let entries = response["entry"].as_array().unwrap();
    assert_eq!(
        entries.len(),
        2,
        "one response entry per request entry, in order"
    );
    assert_eq!(entries[0]["response"]["status"], "201 Created");
    let observation = &entries[0]["resource"];
    let patient = &entries[1]["resource"];
    assert_eq!(patient["resourceType"], "Patient");
    let patient_ref = format!("Patient/{}", patient["id"].as_str().unwrap());
    assert_eq!(observation["subject"]["reference"], patient_ref.as_str());
    // The reference is searchable under the new id.
    let found = app
        .get(&format!("/fhir/Observation?subject={patient_ref}"))
        .await;
    assert_eq!(found.match_ids(), [observation["id"].as_str().unwrap()]);
}

#[tokio::test]
async fn a_failing_entry_leaves_nothing_behind() {
    let app = TestApp::new();
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            entry_post("urn:uuid:3f9e3a4c-0000-4000-8000-000000000011", json!({"resourceType": "Patient", "name": [{"family": "鈴木"}]})),
            entry_post("urn:uuid:3f9e3a4c-0000-4000-8000-000000000012", json!({"resourceType": "Patient", "gender": "not-a-gender"})),
        ]
    });
    let reply = app.post("/fhir", &bundle).await;
    assert_outcome(&reply, StatusCode::BAD_REQUEST, "code-invalid");
    assert_eq!(
        reply.json()["issue"][0]["expression"][0],
        "Bundle.entry[1].resource.gender",
        "the failing entry is named"
    );
    assert!(
        app.get("/fhir/Patient").await.match_ids().is_empty(),
        "nothing was written"
    );

    // A version conflict inside the transaction also rolls everything back.
    let id = app.create(json!({"resourceType": "Patient"})).await;
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            entry_post("urn:uuid:3f9e3a4c-0000-4000-8000-000000000013", json!({"resourceType": "Patient", "name": [{"family": "高橋"}]})),
            {"resource": {"resourceType": "Patient", "id": id}, "request": {"method": "PUT", "url": format!("Patient/{id}"), "ifMatch": "W/\"9\""}},
        ]
    });
    assert_outcome(
        &app.post("/fhir", &bundle).await,
        StatusCode::PRECONDITION_FAILED,
        "conflict",
    );
    assert_eq!(app.get("/fhir/Patient").await.match_ids(), [id]);
}

#[tokio::test]
async fn transaction_honours_conditional_entries_and_orders_reads_last() {
    let app = TestApp::new();
    let existing = app
        .create(json!({"resourceType": "Patient", "identifier": [{"system": "urn:test", "value": "42"}]}))
        .await;
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"request": {"method": "GET", "url": "Patient?identifier=urn:test|42"}},
            {
                "fullUrl": "urn:uuid:3f9e3a4c-0000-4000-8000-000000000021",
                "resource": {"resourceType": "Patient", "identifier": [{"system": "urn:test", "value": "42"}]},
                "request": {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=urn:test|42"}
            },
            entry_post("urn:uuid:3f9e3a4c-0000-4000-8000-000000000022", json!({
                "resourceType": "Observation", "status": "final", "code": {"text": "x"},
                "subject": {"reference": "urn:uuid:3f9e3a4c-0000-4000-8000-000000000021"},
                "performer": [{"reference": "Patient?identifier=urn:test|42"}]
            })),
        ]
    });
    let reply = app.post("/fhir", &bundle).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let entries = reply.json()["entry"].as_array().unwrap().clone();
    assert_eq!(
        entries[1]["response"]["status"], "200 OK",
        "the conditional create matched"
    );
    assert_eq!(entries[1]["resource"]["id"], existing.as_str());
    let observation = &entries[2]["resource"];
    assert_eq!(
        observation["subject"]["reference"],
        format!("Patient/{existing}")
    );
    assert_eq!(
        observation["performer"][0]["reference"],
        format!("Patient/{existing}")
    );
    let searched = &entries[0]["resource"];
    assert_eq!(searched["type"], "searchset");
    assert_eq!(
        app.get("/fhir/Patient").await.match_ids().len(),
        1,
        "no duplicate patient"
    );
}

#[tokio::test]
async fn batch_entries_succeed_or_fail_independently() {
    let app = TestApp::new();
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": {"resourceType": "Patient", "name": [{"family": "田中"}]}, "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Patient", "birthDate": "not a date"}, "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "GET", "url": "Patient/missing"}},
            {"request": {"method": "DELETE", "url": "Patient/missing"}},
        ]
    });
    let reply = app.post("/fhir", &bundle).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let entries = reply.json()["entry"].as_array().unwrap().clone();
    assert_eq!(entries[0]["response"]["status"], "201 Created");
    assert_eq!(entries[1]["response"]["status"], "400");
    assert_eq!(
        entries[1]["response"]["outcome"]["resourceType"],
        "OperationOutcome"
    );
    assert_eq!(entries[2]["response"]["status"], "404");
    assert_eq!(entries[3]["response"]["status"], "200 OK");
    assert_eq!(app.get("/fhir/Patient").await.match_ids().len(), 1);
}

#[tokio::test]
async fn a_transaction_of_ten_thousand_entries_commits() {
    let app = TestApp::new();
    let patient_url = "urn:uuid:3f9e3a4c-0000-4000-8000-0000000000ff";
    let mut entries = vec![entry_post(
        patient_url,
        json!({"resourceType": "Patient", "name": [{"family": "伊藤"}]}),
    )];
    for index in 0..9_999 {
        entries.push(json!({
            "resource": {
                "resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
                "subject": {"reference": patient_url},
                "valueQuantity": {"value": index, "unit": "%"}
            },
            "request": {"method": "POST", "url": "Observation"}
        }));
    }
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    let reply = app.post("/fhir", &bundle).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{}",
        &reply.text[..reply.text.len().min(500)]
    );
    assert_eq!(reply.json()["entry"].as_array().unwrap().len(), 10_000);
    let count = app
        .get("/fhir/Observation?code=http://loinc.org|4548-4&_summary=count")
        .await;
    assert_eq!(count.json()["total"], 9_999);
}

#[tokio::test]
async fn only_transactions_and_batches_are_accepted_at_the_base() {
    let app = TestApp::new();
    let collection = json!({"resourceType": "Bundle", "type": "collection"});
    assert_outcome(
        &app.post("/fhir", &collection).await,
        StatusCode::BAD_REQUEST,
        "invalid",
    );
    assert_outcome(
        &app.post("/fhir", &json!({"resourceType": "Patient"})).await,
        StatusCode::BAD_REQUEST,
        "invalid",
    );
}
