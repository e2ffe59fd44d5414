//! Bearer tokens on FHIR requests: only unexpired tokens signed by this service's key, issued
//! for this server, whose client is still registered, become a Principal.

use std::sync::Arc;
use std::time::Duration;

use auth::{AuthSettings, ServiceKey};
use serde_json::{Value, json};

use crate::support::*;

async fn issued(world: &World) -> String {
    world
        .exchange(
            &Assertion::new(HOSPITAL_CLIENT).rs384(),
            "system/Observation.rs",
        )
        .await
        .unwrap()
        .token()
        .to_owned()
}

fn parts(token: &str) -> (Value, Value, String) {
    let mut parts = token.split('.');
    let decode = |part: &str| -> Value {
        serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, part)
                .unwrap(),
        )
        .unwrap()
    };
    let header = decode(parts.next().unwrap());
    let claims = decode(parts.next().unwrap());
    (header, claims, parts.next().unwrap().to_owned())
}

#[tokio::test]
async fn the_token_is_an_es256_at_jwt_with_iua_claims_and_lives_five_minutes() {
    let world = World::new().await;
    let token = issued(&world).await;
    let (header, claims, _) = parts(&token);
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], FHIR_BASE);
    assert_eq!(claims["sub"], HOSPITAL_CLIENT);
    assert_eq!(claims["client_id"], HOSPITAL_CLIENT);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
    assert_eq!(claims["scope"], "system/Observation.rs");
    let iua = &claims["extensions"]["ihe_iua"];
    assert_eq!(iua["subject_organization_id"], HOSPITAL);
    assert_eq!(iua["subject_role"]["code"], "doctor");
    assert_eq!(iua["purpose_of_use"]["code"], "TREAT");
    assert_eq!(claims["extensions"]["tsunagu"]["user_id"], "staff-0042");
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let world = World::new().await;
    let token = issued(&world).await;
    let last_second = now() + Duration::from_secs(299);
    world
        .service
        .verify_access_token(&token, last_second)
        .await
        .unwrap();
    let at_expiry = now() + Duration::from_secs(300);
    assert_eq!(
        reason(world.service.verify_access_token(&token, at_expiry).await),
        "token_expired"
    );
}

#[tokio::test]
async fn a_tampered_token_is_refused() {
    let world = World::new().await;
    let token = issued(&world).await;
    let (header, mut claims, signature) = parts(&token);
    // Widen the scopes, promote the user, keep the signature.
    claims["scope"] = json!("system/Observation.cruds system/Condition.rs");
    claims["extensions"]["tsunagu"]["emergency_privilege"] = json!(true);
    let tampered = format!(
        "{}.{}.{signature}",
        b64(header.to_string()),
        b64(claims.to_string())
    );
    assert_eq!(
        reason(world.service.verify_access_token(&tampered, now()).await),
        "token_signature_invalid"
    );
    // One flipped signature character.
    let mut flipped = token.clone().into_bytes();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    assert_eq!(
        reason(
            world
                .service
                .verify_access_token(&String::from_utf8(flipped).unwrap(), now())
                .await
        ),
        "token_signature_invalid"
    );
}

#[tokio::test]
async fn a_tampered_token_is_refused_after_the_genuine_one_was_verified() {
    // The genuine token's checks are kept for its lifetime; an altered copy is not that token.
    let world = World::new().await;
    let token = issued(&world).await;
    world
        .service
        .verify_access_token(&token, now())
        .await
        .unwrap();
    let (header, mut claims, signature) = parts(&token);
    claims["scope"] = json!("system/Observation.cruds system/Condition.rs");
    let tampered = format!(
        "{}.{}.{signature}",
        b64(header.to_string()),
        b64(claims.to_string())
    );
    assert_eq!(
        reason(world.service.verify_access_token(&tampered, now()).await),
        "token_signature_invalid"
    );
    assert_eq!(
        world.service.verified_tokens(),
        1,
        "only the genuine token is kept"
    );
}

#[tokio::test]
async fn a_token_verified_before_is_still_refused_once_expired_or_its_client_revoked() {
    let world = World::new().await;
    let token = issued(&world).await;
    for _ in 0..3 {
        world
            .service
            .verify_access_token(&token, now())
            .await
            .unwrap();
    }
    assert_eq!(world.service.verified_tokens(), 1);
    assert_eq!(
        reason(
            world
                .service
                .verify_access_token(&token, now() + Duration::from_secs(300))
                .await
        ),
        "token_expired"
    );
    auth::Registry::revoke_client(
        world.registry.as_ref(),
        &auth::ClientId::new(HOSPITAL_CLIENT).unwrap(),
        now(),
    )
    .await
    .unwrap();
    assert_eq!(
        reason(world.service.verify_access_token(&token, now()).await),
        "token_client_revoked"
    );
    assert_eq!(
        reason(world.service.verify_bearer(&token, now()).await),
        "token_client_revoked"
    );
}

#[tokio::test]
async fn a_token_signed_by_another_key_is_refused() {
    let world = World::new().await;
    // Another deployment (or an attacker) with its own key and the very same settings.
    let impostor = World::over(
        world.registry.clone(),
        ServiceKey::generate().unwrap(),
        settings(),
    );
    let foreign = issued(&impostor).await;
    assert_eq!(
        reason(world.service.verify_access_token(&foreign, now()).await),
        "token_signature_invalid"
    );
    // An unsigned copy of a genuine token.
    let genuine = issued(&world).await;
    let (_, claims, _) = parts(&genuine);
    let unsigned = format!(
        "{}.{}.",
        b64(json!({ "alg": "none", "typ": "at+jwt" }).to_string()),
        b64(claims.to_string())
    );
    assert_eq!(
        reason(world.service.verify_access_token(&unsigned, now()).await),
        "token_signature_invalid"
    );
}

#[tokio::test]
async fn a_token_for_another_issuer_or_audience_is_refused() {
    let world = World::new().await;
    let key = ServiceKey::generate().unwrap();
    let pem = key.to_pkcs8_pem();
    let here = World::over(world.registry.clone(), key, settings());
    // The same key, but tokens issued for another FHIR server or by another issuer.
    let elsewhere = AuthSettings::new(ISSUER, TOKEN_URL, "https://other.test/fhir");
    let other_audience = World::over(
        world.registry.clone(),
        ServiceKey::from_pkcs8_pem(&pem).unwrap(),
        elsewhere,
    );
    let other_issuer = World::over(
        world.registry.clone(),
        ServiceKey::from_pkcs8_pem(&pem).unwrap(),
        AuthSettings::new("https://other.test", TOKEN_URL, FHIR_BASE),
    );
    assert_eq!(
        reason(
            here.service
                .verify_access_token(&issued(&other_audience).await, now())
                .await
        ),
        "token_audience_invalid"
    );
    assert_eq!(
        reason(
            here.service
                .verify_access_token(&issued(&other_issuer).await, now())
                .await
        ),
        "token_issuer_invalid"
    );
}

#[tokio::test]
async fn client_assertions_and_garbage_are_not_access_tokens() {
    let world = World::new().await;
    let assertion = Assertion::new(HOSPITAL_CLIENT).rs384();
    assert_eq!(
        reason(world.service.verify_access_token(&assertion, now()).await),
        "token_malformed"
    );
    for garbage in ["", "Bearer", "a.b", "a.b.c", "....", &"x".repeat(20_000)] {
        assert_eq!(
            reason(world.service.verify_access_token(garbage, now()).await),
            "token_malformed"
        );
    }
}

#[tokio::test]
async fn tokens_survive_a_restart_with_the_key_file() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("service-key.pem");
    let key = ServiceKey::load_or_generate(&path).unwrap();
    let kid = key.kid().to_owned();
    let registry = Arc::new(auth::MemoryRegistry::new());
    seed(registry.as_ref()).await;
    let before = World::over(registry.clone(), key, settings());
    let token = issued(&before).await;

    let reloaded = ServiceKey::load_or_generate(&path).unwrap();
    assert_eq!(reloaded.kid(), kid);
    let after = World::over(registry, reloaded, settings());
    after
        .service
        .verify_access_token(&token, now())
        .await
        .unwrap();

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Nothing but the key (no temporary file) is left in the directory.
    assert_eq!(std::fs::read_dir(directory.path()).unwrap().count(), 1);
}
