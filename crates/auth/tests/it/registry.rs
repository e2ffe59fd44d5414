//! The JSON-file registry as the CLI and the running server share it: changes made through one
//! handle are seen by the other on its next call, the file is never torn, and a broken file is
//! refused rather than half-used.

use std::sync::Arc;

use auth::{
    ClientId, JsonFileRegistry, MemoryJtiCache, OrganisationKind, Registry, RegistryError,
    ServiceKey, TokenService,
};

use crate::support::*;

#[tokio::test]
async fn registrations_survive_reopening_and_keep_their_content() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("registry.json");
    let registry = JsonFileRegistry::open(&path).unwrap();
    seed(&registry).await;

    let reopened = JsonFileRegistry::open(&path).unwrap();
    assert_eq!(
        reopened.organisations().await.unwrap(),
        registry.organisations().await.unwrap()
    );
    assert_eq!(
        reopened.clients().await.unwrap(),
        registry.clients().await.unwrap()
    );
    let hospital = reopened
        .organisation(&auth::OrganisationId::new(HOSPITAL).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hospital.kind(), OrganisationKind::Hospital);
    assert_eq!(
        hospital.institution_number().unwrap().as_str(),
        HOSPITAL_NUMBER
    );

    // The file is plain JSON an operator can read; only the registry file and its lock remain.
    let text = std::fs::read_to_string(&path).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["organisations"][0]["kind"], "hospital");
    assert_eq!(
        json["organisations"][0]["identifiers"][0]["system"],
        auth::INSTITUTION_NUMBER_SYSTEM
    );
    assert_eq!(json["clients"][0]["jwks"]["keys"][0]["kid"], RSA_KID);
    let mut names: Vec<String> = std::fs::read_dir(directory.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["registry.json", "registry.json.lock"]);
}

#[tokio::test]
async fn a_revocation_by_the_cli_reaches_the_running_server_on_its_next_request() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("registry.json");
    let server_registry = Arc::new(JsonFileRegistry::open(&path).unwrap());
    seed(server_registry.as_ref()).await;
    let service = TokenService::new(
        settings(),
        server_registry.clone(),
        Arc::new(MemoryJtiCache::default()),
        ServiceKey::generate().unwrap(),
    )
    .unwrap();
    let token = service
        .exchange(
            &form(
                &Assertion::new(HOSPITAL_CLIENT).rs384(),
                "system/Patient.rs",
            ),
            now(),
        )
        .await
        .unwrap();

    // The CLI: another process, another handle on the same file.
    let cli = JsonFileRegistry::open(&path).unwrap();
    cli.revoke_client(&ClientId::new(HOSPITAL_CLIENT).unwrap(), now())
        .await
        .unwrap();

    assert_eq!(
        reason(service.verify_access_token(token.token(), now()).await),
        "token_client_revoked"
    );
    assert_eq!(
        reason(
            service
                .exchange(
                    &form(
                        &Assertion::new(HOSPITAL_CLIENT).rs384(),
                        "system/Patient.rs"
                    ),
                    now()
                )
                .await
        ),
        "client_revoked"
    );
    // Revocation is kept, with its first time, and the id cannot be registered again.
    let revoked = server_registry
        .client(&ClientId::new(HOSPITAL_CLIENT).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(revoked.revoked_at(), Some(now()));
    assert!(matches!(
        cli.add_client(client(HOSPITAL_CLIENT, HOSPITAL)).await,
        Err(RegistryError::Duplicate("client id"))
    ));
}

#[tokio::test]
async fn two_writers_do_not_lose_each_others_changes() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("registry.json");
    let first = JsonFileRegistry::open(&path).unwrap();
    let second = JsonFileRegistry::open(&path).unwrap();
    seed(&first).await;
    // `second` has not read the file since; its write must start from the current content.
    second
        .add_client(client("second-client", PHARMACY))
        .await
        .unwrap();
    assert_eq!(first.clients().await.unwrap().len(), 5);
}

#[tokio::test]
async fn rules_across_entries_are_kept() {
    let registry = auth::MemoryRegistry::new();
    seed(&registry).await;
    assert!(matches!(
        registry.add_client(client("orphan", "no-such-org")).await,
        Err(RegistryError::NotFound("organisation"))
    ));
    // Another organisation with the hospital's institution number.
    let twin = organisation(
        "hosp-twin",
        OrganisationKind::Hospital,
        &[(auth::INSTITUTION_NUMBER_SYSTEM, HOSPITAL_NUMBER)],
        &[],
    );
    assert!(matches!(
        registry.add_organisation(twin).await,
        Err(RegistryError::Duplicate("organisation identifier"))
    ));
    assert!(matches!(
        registry
            .revoke_client(&ClientId::new("nobody").unwrap(), now())
            .await,
        Err(RegistryError::NotFound("client"))
    ));
}

#[tokio::test]
async fn a_broken_registry_file_is_refused_and_nothing_stale_is_served() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("registry.json");
    let registry = JsonFileRegistry::open(&path).unwrap();
    seed(&registry).await;
    let client_id = ClientId::new(HOSPITAL_CLIENT).unwrap();
    assert!(registry.client(&client_id).await.unwrap().is_some());

    std::fs::write(&path, "{\"version\": 1, \"organisations\": [").unwrap();
    assert!(matches!(
        registry.client(&client_id).await,
        Err(RegistryError::Corrupt { .. })
    ));
    assert!(matches!(
        JsonFileRegistry::open(&path),
        Err(RegistryError::Corrupt { .. })
    ));

    // Valid JSON that breaks a rule (a client of an unregistered organisation) is refused too.
    let mut json: serde_json::Value =
        serde_json::to_value(auth::MemoryRegistry::new().clients().await.unwrap()).unwrap();
    json = serde_json::json!({ "version": 1, "organisations": [], "clients": json });
    json["clients"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::to_value(client("orphan", "nowhere")).unwrap());
    std::fs::write(&path, json.to_string()).unwrap();
    assert!(matches!(
        registry.client(&client_id).await,
        Err(RegistryError::NotFound("organisation"))
    ));

    // A hand-written private key in a JWK Set never loads.
    let mut leaked = serde_json::to_value(client("leaky", HOSPITAL)).unwrap();
    leaked["jwks"]["keys"][0]["d"] = serde_json::json!("c2VjcmV0");
    let error = serde_json::from_value::<auth::Client>(leaked).unwrap_err();
    assert!(!error.to_string().contains("c2VjcmV0"), "{error}");
}
