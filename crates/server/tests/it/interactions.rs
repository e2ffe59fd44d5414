//! The instance and type interactions: create, read, vread, update, patch, delete, history,
//! conditional operations, preconditions, headers and errors.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::{TestApp, assert_outcome};

fn patient() -> serde_json::Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:1.2.392.100495.20.3.51.11318814790", "value": "00000123"}],
        "name": [{"family": "山田", "given": ["太郎"]}],
        "gender": "male",
        "birthDate": "1970-04-01"
    })
}

#[tokio::test]
async fn create_assigns_an_id_and_sets_version_headers() {
    let app = TestApp::new();
    let mut body = patient();
    body["id"] = json!("client-chosen");
    let reply = app.post("/fhir/Patient", &body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let created = reply.json();
    let id = created["id"].as_str().unwrap();
    assert_ne!(id, "client-chosen", "create ignores a client id");
    assert_eq!(created["meta"]["versionId"], "1");
    assert_eq!(reply.header("etag"), Some("W/\"1\""));
    assert!(
        reply
            .header("last-modified")
            .is_some_and(|value| value.ends_with(" GMT"))
    );
    assert_eq!(
        reply.header("location"),
        Some(format!("http://localhost/fhir/Patient/{id}/_history/1").as_str())
    );
    assert!(reply.header("x-request-id").is_some());

    let read = app.get(&format!("/fhir/Patient/{id}")).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.json(), created);
    let keys: Vec<String> = read.json().as_object().unwrap().keys().cloned().collect();
    assert_eq!(&keys[..3], ["resourceType", "id", "meta"]);
}

#[tokio::test]
async fn decimals_are_kept_exactly_as_sent() {
    let app = TestApp::new();
    let body = r#"{"resourceType":"Observation","status":"final","code":{"text":"体温"},"valueQuantity":{"value":36.50,"unit":"Cel"},"component":[{"code":{"text":"x"},"valueQuantity":{"value":1.500e2}}]}"#;
    let reply = app
        .request(
            Method::POST,
            "/fhir/Observation",
            &[],
            Some(body.to_owned()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let id = reply.json()["id"].as_str().unwrap().to_owned();
    let read = app.get(&format!("/fhir/Observation/{id}")).await;
    assert!(read.text.contains(r#""value":36.50"#), "{}", read.text);
    // serde_json writes the exponent sign; digits and precision stay as sent.
    assert!(read.text.contains(r#""value":1.500e+2"#), "{}", read.text);
}

#[tokio::test]
async fn update_versions_and_if_match() {
    let app = TestApp::new();
    let id = app.create(patient()).await;
    let mut body = patient();
    body["id"] = json!(id);
    body["gender"] = json!("other");

    let stale = app
        .request(
            Method::PUT,
            &format!("/fhir/Patient/{id}"),
            &[("if-match", "W/\"7\"")],
            Some(body.to_string()),
        )
        .await;
    assert_outcome(&stale, StatusCode::PRECONDITION_FAILED, "conflict");

    let updated = app
        .request(
            Method::PUT,
            &format!("/fhir/Patient/{id}"),
            &[("if-match", "W/\"1\"")],
            Some(body.to_string()),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    assert_eq!(updated.header("etag"), Some("W/\"2\""));

    let version_one = app.get(&format!("/fhir/Patient/{id}/_history/1")).await;
    assert_eq!(version_one.json()["gender"], "male");
    let version_two = app.get(&format!("/fhir/Patient/{id}/_history/2")).await;
    assert_eq!(version_two.json()["gender"], "other");
    assert_outcome(
        &app.get(&format!("/fhir/Patient/{id}/_history/3")).await,
        StatusCode::NOT_FOUND,
        "not-found",
    );
}

#[tokio::test]
async fn update_creates_with_the_client_id_and_checks_it() {
    let app = TestApp::new();
    let mut body = patient();
    body["id"] = json!("p-100");
    let created = app.put("/fhir/Patient/p-100", &body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let mismatch = app.put("/fhir/Patient/p-101", &body).await;
    assert_outcome(&mismatch, StatusCode::BAD_REQUEST, "invalid");
}

#[tokio::test]
async fn delete_is_soft_and_reads_answer_gone() {
    let app = TestApp::new();
    let id = app.create(patient()).await;
    let deleted = app.delete(&format!("/fhir/Patient/{id}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_outcome(
        &app.get(&format!("/fhir/Patient/{id}")).await,
        StatusCode::GONE,
        "deleted",
    );
    // History keeps every version, the delete included.
    let history = app.get(&format!("/fhir/Patient/{id}/_history")).await;
    let entries = history.json()["entry"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["request"]["method"], "DELETE");
    assert_eq!(entries[1]["request"]["method"], "POST");
    // Deleting again is not an error.
    assert_eq!(
        app.delete(&format!("/fhir/Patient/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    // Searches no longer find it.
    assert!(
        app.get(&format!("/fhir/Patient?_id={id}"))
            .await
            .match_ids()
            .is_empty()
    );
}

#[tokio::test]
async fn conditional_create_update_and_delete() {
    let app = TestApp::new();
    let condition = "identifier=urn:oid:1.2.392.100495.20.3.51.11318814790|00000123";
    let first = app
        .request(
            Method::POST,
            "/fhir/Patient",
            &[("if-none-exist", condition)],
            Some(patient().to_string()),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let second = app
        .request(
            Method::POST,
            "/fhir/Patient",
            &[("if-none-exist", condition)],
            Some(patient().to_string()),
        )
        .await;
    assert_eq!(
        second.status,
        StatusCode::OK,
        "an existing match is returned"
    );
    assert_eq!(second.json()["id"], first.json()["id"]);
    // The form some clients use: POST [type]?search.
    let third = app
        .post(&format!("/fhir/Patient?{condition}"), &patient())
        .await;
    assert_eq!(third.status, StatusCode::OK);
    assert_eq!(third.json()["id"], first.json()["id"]);

    let mut changed = patient();
    changed["gender"] = json!("female");
    let updated = app
        .put(&format!("/fhir/Patient?{condition}"), &changed)
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    assert_eq!(updated.json()["id"], first.json()["id"]);
    assert_eq!(updated.json()["meta"]["versionId"], "2");

    let mut other = patient();
    other["identifier"][0]["value"] = json!("00000999");
    let created = app
        .put("/fhir/Patient?identifier=urn:x|nobody", &other)
        .await;
    assert_eq!(
        created.status,
        StatusCode::CREATED,
        "no match: conditional update creates"
    );

    // Two matches now for family=山田: conditional operations refuse to guess.
    assert_outcome(
        &app.put("/fhir/Patient?family=%E5%B1%B1%E7%94%B0", &patient())
            .await,
        StatusCode::PRECONDITION_FAILED,
        "conflict",
    );
    assert_outcome(
        &app.delete("/fhir/Patient?family=%E5%B1%B1%E7%94%B0").await,
        StatusCode::PRECONDITION_FAILED,
        "conflict",
    );

    assert_eq!(
        app.delete(&format!("/fhir/Patient?{condition}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&format!("/fhir/Patient?{condition}"))
            .await
            .match_ids()
            .len(),
        0
    );
}

#[tokio::test]
async fn json_patch_applies_to_the_current_version() {
    let app = TestApp::new();
    let id = app.create(patient()).await;
    let patch = r#"[{"op":"replace","path":"/gender","value":"female"},{"op":"add","path":"/name/0/given/-","value":"次郎"}]"#;
    let reply = app
        .request(
            Method::PATCH,
            &format!("/fhir/Patient/{id}"),
            &[("content-type", "application/json-patch+json")],
            Some(patch.to_owned()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let patched = reply.json();
    assert_eq!(patched["gender"], "female");
    assert_eq!(patched["name"][0]["given"], json!(["太郎", "次郎"]));
    assert_eq!(patched["meta"]["versionId"], "2");

    let invalid = r#"[{"op":"add","path":"/favouriteColour","value":"blue"}]"#;
    let reply = app
        .request(
            Method::PATCH,
            &format!("/fhir/Patient/{id}"),
            &[("content-type", "application/json-patch+json")],
            Some(invalid.to_owned()),
        )
        .await;
    assert_outcome(&reply, StatusCode::BAD_REQUEST, "structure");
}

#[tokio::test]
async fn prefer_return_shapes_the_response() {
    let app = TestApp::new();
    let minimal = app
        .request(
            Method::POST,
            "/fhir/Patient",
            &[("prefer", "return=minimal")],
            Some(patient().to_string()),
        )
        .await;
    assert_eq!(minimal.status, StatusCode::CREATED);
    assert!(minimal.text.is_empty());
    assert!(minimal.header("location").is_some());
    let outcome = app
        .request(
            Method::POST,
            "/fhir/Patient",
            &[("prefer", "return=OperationOutcome")],
            Some(patient().to_string()),
        )
        .await;
    assert_eq!(outcome.json()["resourceType"], "OperationOutcome");
}

#[tokio::test]
async fn invalid_resources_are_rejected_naming_the_path_but_not_the_value() {
    let app = TestApp::new();
    let reply = app
        .post(
            "/fhir/Patient",
            &json!({"resourceType": "Patient", "birthDate": "1970-13-45", "name": [{"family": "秘密", "nickname": "x"}]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    let issues = reply.json()["issue"].as_array().unwrap().clone();
    let expressions: Vec<String> = issues
        .iter()
        .map(|issue| issue["expression"][0].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(
        expressions.iter().any(|e| e.contains("birthDate")),
        "{expressions:?}"
    );
    assert!(
        expressions.iter().any(|e| e.contains("name[0]")),
        "{expressions:?}"
    );
    assert!(
        !reply.text.contains("1970-13-45") && !reply.text.contains("秘密"),
        "values leaked: {}",
        reply.text
    );

    let wrong_type = app
        .post(
            "/fhir/Patient",
            &json!({"resourceType": "Observation", "status": "final", "code": {}}),
        )
        .await;
    assert_outcome(&wrong_type, StatusCode::BAD_REQUEST, "invalid");
    let unknown_type = app
        .post("/fhir/Unicorn", &json!({"resourceType": "Unicorn"}))
        .await;
    assert_eq!(unknown_type.status, StatusCode::BAD_REQUEST);
    let broken = app
        .request(
            Method::POST,
            "/fhir/Patient",
            &[],
            Some("{\"resourceType\": \"Patient\",".into()),
        )
        .await;
    assert_outcome(&broken, StatusCode::BAD_REQUEST, "structure");
}

#[tokio::test]
async fn media_types_sizes_routes_and_methods_answer_with_operation_outcomes() {
    let app = TestApp::with_settings(server::ServerSettings {
        max_body_bytes: 1024,
        base_url: None,
    });
    let xml = app
        .request(
            Method::POST,
            "/fhir/Patient",
            &[("content-type", "application/fhir+xml")],
            Some("<Patient/>".into()),
        )
        .await;
    assert_outcome(&xml, StatusCode::UNSUPPORTED_MEDIA_TYPE, "not-supported");
    let accept_xml = app
        .request(
            Method::GET,
            "/fhir/metadata",
            &[("accept", "application/fhir+xml")],
            None,
        )
        .await;
    assert_outcome(&accept_xml, StatusCode::NOT_ACCEPTABLE, "not-supported");
    assert_outcome(
        &app.get("/fhir/metadata?_format=xml").await,
        StatusCode::NOT_ACCEPTABLE,
        "not-supported",
    );
    assert_eq!(
        app.get("/fhir/metadata?_format=json").await.status,
        StatusCode::OK
    );

    let big = json!({"resourceType": "Patient", "name": [{"text": "あ".repeat(2000)}]});
    assert_outcome(
        &app.post("/fhir/Patient", &big).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "too-costly",
    );
    assert_outcome(
        &app.get("/fhir/Patient/1/nonsense/path/deeper").await,
        StatusCode::NOT_FOUND,
        "not-found",
    );
    assert_outcome(
        &app.get("/fhir/Patient/does-not-exist").await,
        StatusCode::NOT_FOUND,
        "not-found",
    );
    assert_outcome(
        &app.request(Method::DELETE, "/fhir/metadata", &[], None)
            .await,
        StatusCode::METHOD_NOT_ALLOWED,
        "not-supported",
    );
}

#[tokio::test]
async fn history_pages_newest_first() {
    let app = TestApp::new();
    let id = app.create(patient()).await;
    for gender in ["female", "other", "unknown", "male"] {
        let mut body = patient();
        body["id"] = json!(id);
        body["gender"] = json!(gender);
        assert_eq!(
            app.put(&format!("/fhir/Patient/{id}"), &body).await.status,
            StatusCode::OK
        );
    }
    let first = app
        .get(&format!("/fhir/Patient/{id}/_history?_count=2"))
        .await;
    let versions = |reply: &crate::Reply| -> Vec<String> {
        reply.json()["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e["resource"]["meta"]["versionId"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(versions(&first), ["5", "4"]);
    let second = app.get(&first.link("next").expect("next link")).await;
    assert_eq!(versions(&second), ["3", "2"]);
    let third = app.get(&second.link("next").expect("next link")).await;
    assert_eq!(versions(&third), ["1"]);
    assert!(third.link("next").is_none());

    let type_history = app.get("/fhir/Patient/_history").await;
    assert_eq!(type_history.json()["entry"].as_array().unwrap().len(), 5);
    let system_history = app.get("/fhir/_history?_count=1").await;
    assert_eq!(system_history.json()["entry"].as_array().unwrap().len(), 1);
    assert_outcome(
        &app.get("/fhir/Patient/nobody/_history").await,
        StatusCode::NOT_FOUND,
        "not-found",
    );
}

#[tokio::test]
async fn operations_endpoints_answer() {
    let app = TestApp::new();
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
    assert_eq!(app.get("/readyz").await.status, StatusCode::OK);
    app.create(patient()).await;
    let metrics = app.get("/metrics").await;
    assert!(
        metrics
            .text
            .contains("tsunagu_requests_total{interaction=\"create\",status=\"2xx\"} 1"),
        "{}",
        metrics.text
    );
    assert!(!metrics.text.contains("山田"));
}

#[tokio::test]
async fn serves_over_tcp_and_shuts_down_gracefully() {
    let app = TestApp::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::run(listener, app.state.clone(), async {
        let _ = stopped.await;
    }));
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    stream
        .write_all(b"GET /fhir/metadata HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"fhirVersion\":\"4.0.1\""));
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
