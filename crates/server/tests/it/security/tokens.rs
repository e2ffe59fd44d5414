//! Token attacks through `POST /auth/token` and with bearer tokens on `/fhir`: each refused with
//! 401 and recorded in the audit trail as a denied authentication.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth::{ClientKey, Role};
use axum::http::{Method, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::{KID, TOKEN_URL, World};

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The header and claims of a valid assertion, to be tampered with and re-signed.
fn parts(assertion: &str) -> (Value, Value) {
    let mut pieces = assertion.split('.');
    let decode = |piece: Option<&str>| -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(piece.unwrap()).unwrap()).unwrap()
    };
    (decode(pieces.next()), decode(pieces.next()))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn token_attacks_are_refused_with_401_and_recorded() {
    let world = World::new().await;
    let user = World::user("author", Role::Doctor);
    let key = &world.keys["author-system"];
    let valid = world.assertion(&user);
    let (header, claims) = parts(&valid);
    let resign = |header: &Value, claims: &Value| key.sign(header, claims).unwrap();
    let with = |name: &str, value: Value| {
        let mut claims = claims.clone();
        claims[name] = value;
        claims["jti"] = json!(format!("jti-{name}-{}", now()));
        claims
    };
    let jwk = &key.jwks()["keys"][0];
    let public_bytes = format!(
        "{}{}",
        jwk["x"].as_str().unwrap(),
        jwk["y"].as_str().unwrap()
    );
    let hs256 = {
        let header = json!({"alg": "HS256", "typ": "JWT", "kid": KID});
        let input = format!(
            "{}.{}",
            b64(header.to_string()),
            b64(with("jti", json!("h")).to_string())
        );
        let tag = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, public_bytes.as_bytes()),
            input.as_bytes(),
        );
        format!("{input}.{}", b64(tag.as_ref()))
    };
    let none = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT"}).to_string()),
        b64(with("jti", json!("n")).to_string())
    );
    let attacker = ClientKey::generate(KID).unwrap();
    let t = now();
    let attacks: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            resign(&header, &with("exp", json!(t - 60))),
            "assertion_expired",
        ),
        (
            "not yet valid",
            resign(&header, &with("iat", json!(t + 600))),
            "assertion_not_yet_valid",
        ),
        (
            "wrong audience",
            resign(
                &header,
                &with("aud", json!("https://elsewhere.example/token")),
            ),
            "assertion_audience_invalid",
        ),
        ("alg none", none, "assertion_alg_none"),
        (
            "HS256 keyed with the public key",
            hs256,
            "assertion_alg_symmetric",
        ),
        (
            "unknown kid",
            resign(
                &json!({"alg": "ES384", "typ": "JWT", "kid": "other"}),
                &with("jti", json!("k")),
            ),
            "assertion_kid_unknown",
        ),
        (
            "lifetime over five minutes",
            resign(&header, &with("exp", json!(t + 3600))),
            "assertion_lifetime_too_long",
        ),
        (
            "signed by another key",
            attacker.sign(&header, &with("jti", json!("a"))).unwrap(),
            "assertion_signature_invalid",
        ),
    ];
    let before = world.audit_entries().len();
    let mut refused = 0;
    for (name, assertion, reason) in &attacks {
        let reply = world
            .token_request(&auth::token_request(assertion, "system/Patient.rs"))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{name}: {}",
            reply.text
        );
        let body = reply.json();
        assert_eq!(body["error_description"], *reason, "{name}: {}", reply.text);
        assert!(body.get("access_token").is_none());
        assert!(
            !reply.text.contains(assertion.as_str()),
            "{name}: the assertion was echoed"
        );
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        refused += 1;
    }
    // A replayed assertion: accepted once, refused the second time.
    let fresh = world.assertion(&user);
    let first = world
        .token_request(&auth::token_request(&fresh, "system/Patient.rs"))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let replay = world
        .token_request(&auth::token_request(&fresh, "system/Patient.rs"))
        .await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    assert_eq!(replay.json()["error_description"], "assertion_replayed");
    refused += 1;
    // A revoked client: refused at the token endpoint, and its live token refused on /fhir.
    let token = world.token(&World::user("clinic", Role::Doctor)).await;
    assert_eq!(
        world.get(&token, "/fhir/Organization").await.status,
        StatusCode::OK
    );
    use auth::Registry as _;
    world
        .registry
        .revoke_client(
            &auth::ClientId::new("clinic-system").unwrap(),
            SystemTime::now(),
        )
        .await
        .unwrap();
    let reply = world
        .token_request(&auth::token_request(
            &world.assertion(&World::user("clinic", Role::Doctor)),
            "system/Patient.rs",
        ))
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["error_description"], "client_revoked");
    refused += 1;
    let reply = world.get(&token, "/fhir/Organization").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    assert!(
        reply
            .header("www-authenticate")
            .is_some_and(|v| v.starts_with("Bearer"))
    );

    // Every refusal is in the audit trail as a denied authentication; the grant as permitted.
    let entries = world.audit_entries();
    let authentications: Vec<_> = entries[before..]
        .iter()
        .filter(|entry| entry.record.action.interaction == audit::Interaction::Authenticate)
        .collect();
    let denied = authentications
        .iter()
        .filter(|entry| entry.record.outcome.decision == audit::Decision::Denied)
        .count();
    assert_eq!(denied, refused, "every refused token request is recorded");
    assert!(
        authentications
            .iter()
            .any(
                |entry| entry.record.outcome.decision == audit::Decision::Permitted
                    && entry.record.agent.client_id.as_deref() == Some("author-system")
            )
    );
}

#[tokio::test]
async fn bearer_tokens_that_are_missing_forged_tampered_or_expired_are_refused() {
    let world = World::new().await;
    let uri = format!("/fhir/Patient/{}", world.own.patient);
    let token = world.token(&World::user("author", Role::Doctor)).await;
    assert_eq!(world.get(&token, &uri).await.status, StatusCode::OK);

    // No token.
    let reply = world.app.get(&uri).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    assert_eq!(reply.json()["issue"][0]["code"], "login");
    // Another scheme.
    let reply = world
        .app
        .request(
            Method::GET,
            &uri,
            &[("authorization", &format!("Basic {token}"))],
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    // Tampered claims (another organisation), original signature.
    let mut pieces: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&pieces[1]).unwrap()).unwrap();
    claims["organisation"] = json!("other-hospital");
    claims["tsunagu_org"] = json!("other-hospital");
    pieces[1] = b64(claims.to_string());
    let tampered = pieces.join(".");
    // Forged: a token signed by a key of the attacker's with the same header.
    let forged = ClientKey::generate("x")
        .unwrap()
        .sign(
            &serde_json::from_slice(
                &URL_SAFE_NO_PAD
                    .decode(token.split('.').next().unwrap())
                    .unwrap(),
            )
            .unwrap(),
            &claims,
        )
        .unwrap();
    for (name, bad) in [
        ("tampered", tampered),
        ("forged", forged),
        ("garbage", "a.b.c".to_owned()),
    ] {
        let reply = world.get(&bad, &uri).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{name}: {}",
            reply.text
        );
        assert!(!reply.text.contains(&world.own.markers[0]), "{name}");
    }
    // An access token of another service (its own key, our issuer): refused.
    let other = auth::TokenService::new(
        auth::AuthSettings::new(super::ORIGIN, TOKEN_URL, format!("{}/fhir", super::ORIGIN)),
        world.registry.clone(),
        std::sync::Arc::new(auth::MemoryJtiCache::default()),
        auth::ServiceKey::generate().unwrap(),
    )
    .unwrap();
    let foreign = other
        .exchange(
            &auth::token_request(
                &world.assertion(&World::user("author", Role::Doctor)),
                "system/Patient.rs",
            ),
            SystemTime::now(),
        )
        .await
        .unwrap();
    assert_eq!(
        world.get(foreign.token(), &uri).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Expired: a token of this service verified after its lifetime.
    let security = world.app.state.security.as_ref().unwrap();
    let later = SystemTime::now() + Duration::from_secs(301);
    let expired = security.tokens().verify_access_token(&token, later).await;
    assert_eq!(expired.unwrap_err().reason(), "token_expired");
}
