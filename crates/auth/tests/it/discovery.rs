//! What the server announces: the SMART configuration and the CapabilityStatement security
//! element, pinned as snapshots.

use expect_test::expect;

use crate::support::*;

#[tokio::test]
async fn the_smart_configuration_tells_what_the_token_service_does() {
    let world = World::new().await;
    let configuration = world.service.smart_configuration();
    expect![[r#"
        {
          "token_endpoint": "https://tsunagu.test/auth/token",
          "grant_types_supported": [
            "client_credentials"
          ],
          "token_endpoint_auth_methods_supported": [
            "private_key_jwt"
          ],
          "token_endpoint_auth_signing_alg_values_supported": [
            "RS384",
            "ES384"
          ],
          "scopes_supported": [
            "system/Patient.cruds",
            "system/Condition.cruds",
            "system/AllergyIntolerance.cruds",
            "system/Observation.cruds",
            "system/MedicationRequest.cruds",
            "system/Composition.cruds",
            "system/Encounter.cruds",
            "system/DocumentReference.cruds",
            "system/Specimen.cruds",
            "system/ServiceRequest.cruds",
            "system/CarePlan.cruds",
            "system/Coverage.cruds",
            "system/Bundle.cruds",
            "system/Consent.crs",
            "system/Organization.rs",
            "system/Practitioner.rs",
            "system/PractitionerRole.rs",
            "system/Location.rs",
            "system/Patient.rs",
            "system/AllergyIntolerance.rs",
            "system/Observation.rs",
            "system/MedicationRequest.rs",
            "system/Condition.rs",
            "system/Bundle.rs"
          ],
          "capabilities": [
            "client-confidential-asymmetric",
            "permission-v2"
          ]
        }"#]]
    .assert_eq(&serde_json::to_string_pretty(&configuration).unwrap());

    // Every scope it announces can actually be granted to someone.
    for scope in configuration["scopes_supported"].as_array().unwrap() {
        let scope = scope.as_str().unwrap();
        let requested = auth::parse_requested(scope);
        let grantable = auth::OrganisationKind::ALL.iter().any(|kind| {
            auth::policy::grant(*kind, auth::Role::Doctor, &requested).to_string() == scope
                || auth::Role::ALL
                    .iter()
                    .any(|role| auth::policy::grant(*kind, *role, &requested).to_string() == scope)
        });
        assert!(grantable, "{scope}");
    }
}

#[tokio::test]
async fn the_capability_statement_names_the_token_endpoint() {
    let world = World::new().await;
    let security = world.service.capability_security();
    assert_eq!(security["extension"][0]["url"], auth::OAUTH_URIS_EXTENSION);
    assert_eq!(
        security["extension"][0]["extension"][0],
        serde_json::json!({ "url": "token", "valueUri": TOKEN_URL })
    );
    assert_eq!(security["service"][0]["coding"][0]["code"], "SMART-on-FHIR");
}
