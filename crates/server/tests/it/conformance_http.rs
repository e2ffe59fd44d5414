//! The CapabilityStatement tells the truth: every resource type it lists accepts its interactions,
//! and every search parameter it lists is accepted (strict handling) by a search on that type.

use axum::http::{Method, StatusCode};

use crate::TestApp;

#[tokio::test]
async fn every_listed_search_parameter_is_accepted() {
    let app = TestApp::new();
    let capability = app.get("/fhir/metadata").await.json();
    assert_eq!(capability["resourceType"], "CapabilityStatement");
    assert_eq!(capability["fhirVersion"], "4.0.1");
    let resources = capability["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(resources.len(), fhir::resource_types().len());
    let mut checked = 0;
    for resource in &resources {
        let resource_type = resource["type"].as_str().unwrap();
        let params = resource["searchParam"].as_array().unwrap();
        for param in params {
            let name = param["name"].as_str().unwrap();
            let uri = format!("/fhir/{resource_type}?{name}:missing=true");
            let reply = app
                .request(Method::GET, &uri, &[("prefer", "handling=strict")], None)
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{uri}: {}", reply.text);
            checked += 1;
        }
        let reply = app.get(&format!("/fhir/{resource_type}")).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{resource_type}: {}",
            reply.text
        );
    }
    assert!(checked > 1000, "only {checked} parameters listed");
}
