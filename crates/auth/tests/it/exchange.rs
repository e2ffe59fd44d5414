//! The token endpoint from the outside: one valid exchange, then every way an attacker (or a
//! broken client) gets it wrong, each refused with its own reason code.

use std::time::Duration;

use auth::{AuthError, ClientId, Permission, PurposeOfUse, Role, claimed_client_id};
use serde_json::{Value, json};

use crate::support::*;

const SCOPE: &str = "system/Observation.rs system/Condition.rs";

#[tokio::test]
async fn a_valid_rs384_assertion_yields_a_token_bound_to_organisation_user_role_and_scopes() {
    let world = World::new().await;
    let assertion = Assertion::new(HOSPITAL_CLIENT).rs384();

    let token = world.exchange(&assertion, SCOPE).await.unwrap();
    let body = token.response_body();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["scope"], "system/Condition.rs system/Observation.rs");
    assert_eq!(body["access_token"], token.token());

    let principal = world
        .service
        .verify_access_token(token.token(), now())
        .await
        .unwrap();
    assert_eq!(principal, token.principal);
    assert_eq!(principal.organisation.id().as_str(), HOSPITAL);
    assert_eq!(
        principal
            .organisation
            .institution_number()
            .unwrap()
            .as_str(),
        HOSPITAL_NUMBER
    );
    assert_eq!(principal.client_id.as_str(), HOSPITAL_CLIENT);
    assert_eq!(principal.user.id, "staff-0042");
    assert_eq!(principal.user.name, "山田 花子");
    assert_eq!(principal.user.role, Role::Doctor);
    assert!(!principal.user.emergency_privilege);
    assert_eq!(principal.purpose_of_use, PurposeOfUse::Treatment);
    assert!(principal.scopes.allows("Observation", Permission::Read));
    assert!(principal.scopes.allows("Condition", Permission::Search));
    assert!(!principal.scopes.allows("Observation", Permission::Create));
    assert!(!principal.scopes.allows("Patient", Permission::Read));
    assert_eq!(principal.expires_at, now() + Duration::from_secs(300));
}

#[tokio::test]
async fn a_valid_es384_assertion_is_accepted_too() {
    let world = World::new().await;
    let assertion = Assertion::new(HOSPITAL_CLIENT)
        .header("alg", json!("ES384"))
        .header("kid", json!(EC_KID))
        .es384();
    let principal = world.principal(&assertion, SCOPE).await.unwrap();
    assert_eq!(principal.client_id.as_str(), HOSPITAL_CLIENT);
}

#[tokio::test]
async fn an_expired_assertion_is_refused_but_thirty_seconds_of_clock_skew_are_tolerated() {
    let world = World::new().await;
    let now = seconds(now());
    let expired = Assertion::new(HOSPITAL_CLIENT)
        .claim("iat", json!(now - 200))
        .claim("exp", json!(now - 30))
        .rs384();
    assert_eq!(
        reason(world.exchange(&expired, SCOPE).await),
        "assertion_expired"
    );

    let just_within_skew = Assertion::new(HOSPITAL_CLIENT)
        .claim("iat", json!(now - 200))
        .claim("exp", json!(now - 29))
        .rs384();
    world.exchange(&just_within_skew, SCOPE).await.unwrap();

    let without_exp = Assertion::new(HOSPITAL_CLIENT)
        .claim("exp", Value::Null)
        .rs384();
    assert_eq!(
        reason(world.exchange(&without_exp, SCOPE).await),
        "assertion_malformed"
    );
}

#[tokio::test]
async fn dates_are_numbers_in_a_sane_range() {
    let world = World::new().await;
    let now = seconds(now());
    // Decimal NumericDates are allowed (RFC 7519) and rounded down.
    let decimal = Assertion::new(HOSPITAL_CLIENT)
        .claim("iat", json!(now as f64 + 0.5))
        .claim("exp", json!(now as f64 + 200.75))
        .rs384();
    world.exchange(&decimal, SCOPE).await.unwrap();
    // Extreme values are malformed, not an overflow.
    for (claim, value) in [
        ("exp", json!(i64::MAX)),
        ("exp", json!(u64::MAX)),
        ("exp", json!(1e300)),
        ("iat", json!(i64::MIN)),
        ("iat", json!(-1)),
        ("nbf", json!("yesterday")),
        ("exp", json!(null)),
    ] {
        let assertion = Assertion::new(HOSPITAL_CLIENT).claim(claim, value).rs384();
        assert_eq!(
            reason(world.exchange(&assertion, SCOPE).await),
            "assertion_malformed",
            "{claim}"
        );
    }
}

#[tokio::test]
async fn an_assertion_not_yet_valid_is_refused() {
    let world = World::new().await;
    let now = seconds(now());
    let future_nbf = Assertion::new(HOSPITAL_CLIENT)
        .claim("nbf", json!(now + 60))
        .rs384();
    assert_eq!(
        reason(world.exchange(&future_nbf, SCOPE).await),
        "assertion_not_yet_valid"
    );
    let future_iat = Assertion::new(HOSPITAL_CLIENT)
        .claim("iat", json!(now + 120))
        .claim("exp", json!(now + 200))
        .rs384();
    assert_eq!(
        reason(world.exchange(&future_iat, SCOPE).await),
        "assertion_not_yet_valid"
    );
    // A client clock up to 30 seconds ahead is fine.
    let slightly_ahead = Assertion::new(HOSPITAL_CLIENT)
        .claim("nbf", json!(now + 30))
        .claim("iat", json!(now + 30))
        .rs384();
    world.exchange(&slightly_ahead, SCOPE).await.unwrap();
}

#[tokio::test]
async fn an_assertion_for_another_audience_is_refused() {
    let world = World::new().await;
    for audience in [
        json!("https://other.test/auth/token"),
        json!(FHIR_BASE),
        json!(format!("{TOKEN_URL}/")),
        json!(["https://other.test/auth/token"]),
        Value::Null,
    ] {
        let assertion = Assertion::new(HOSPITAL_CLIENT)
            .claim("aud", audience)
            .rs384();
        assert_eq!(
            reason(world.exchange(&assertion, SCOPE).await),
            "assertion_audience_invalid"
        );
    }
    // An audience array naming the token endpoint is what RFC 7523 allows.
    let listed = Assertion::new(HOSPITAL_CLIENT)
        .claim("aud", json!(["https://other.test", TOKEN_URL]))
        .rs384();
    world.exchange(&listed, SCOPE).await.unwrap();
}

#[tokio::test]
async fn unsigned_assertions_are_refused_in_every_spelling() {
    let world = World::new().await;
    for alg in ["none", "None", "NONE"] {
        let assertion = Assertion::new(HOSPITAL_CLIENT)
            .header("alg", json!(alg))
            .unsigned();
        assert_eq!(
            reason(world.exchange(&assertion, SCOPE).await),
            "assertion_alg_none"
        );
    }
}

#[tokio::test]
async fn hmac_assertions_keyed_with_the_clients_public_key_are_refused() {
    // RS/HS key confusion: a verifier that let the header pick the algorithm would check an HS256
    // MAC using the registered public key as the secret, which the attacker knows.
    let world = World::new().await;
    let public_jwk = client_jwks()["keys"][0].to_string();
    let modulus = rsa_jwk(rsa_key(), RSA_KID)["n"]
        .as_str()
        .unwrap()
        .to_owned();
    for (alg, algorithm) in [
        ("HS256", aws_lc_rs::hmac::HMAC_SHA256),
        ("HS384", aws_lc_rs::hmac::HMAC_SHA384),
        ("HS512", aws_lc_rs::hmac::HMAC_SHA512),
    ] {
        for secret in [public_jwk.as_bytes(), modulus.as_bytes()] {
            let assertion = Assertion::new(HOSPITAL_CLIENT)
                .header("alg", json!(alg))
                .hmac(algorithm, secret);
            assert_eq!(
                reason(world.exchange(&assertion, SCOPE).await),
                "assertion_alg_symmetric"
            );
        }
    }
}

#[tokio::test]
async fn algorithms_other_than_rs384_and_es384_are_refused_even_when_properly_signed() {
    let world = World::new().await;
    let rs256 = Assertion::new(HOSPITAL_CLIENT)
        .header("alg", json!("RS256"))
        .rs256();
    assert_eq!(
        reason(world.exchange(&rs256, SCOPE).await),
        "assertion_alg_unsupported"
    );
    for alg in ["PS384", "ES256", "EdDSA", "RSA-OAEP"] {
        let assertion = Assertion::new(HOSPITAL_CLIENT)
            .header("alg", json!(alg))
            .rs384();
        assert_eq!(
            reason(world.exchange(&assertion, SCOPE).await),
            "assertion_alg_unsupported"
        );
    }
}

#[tokio::test]
async fn an_unknown_or_missing_kid_is_refused() {
    let world = World::new().await;
    let unknown = Assertion::new(HOSPITAL_CLIENT)
        .header("kid", json!("not-registered"))
        .rs384();
    assert_eq!(
        reason(world.exchange(&unknown, SCOPE).await),
        "assertion_kid_unknown"
    );
    let missing = Assertion::new(HOSPITAL_CLIENT)
        .header("kid", Value::Null)
        .rs384();
    assert_eq!(
        reason(world.exchange(&missing, SCOPE).await),
        "assertion_kid_missing"
    );
}

#[tokio::test]
async fn an_algorithm_that_does_not_fit_the_named_key_is_refused() {
    let world = World::new().await;
    // ES384 claimed, but the kid names the RSA key: never verify across key types.
    let es_with_rsa_key = Assertion::new(HOSPITAL_CLIENT)
        .header("alg", json!("ES384"))
        .es384();
    assert_eq!(
        reason(world.exchange(&es_with_rsa_key, SCOPE).await),
        "assertion_key_mismatch"
    );
    let rs_with_ec_key = Assertion::new(HOSPITAL_CLIENT)
        .header("kid", json!(EC_KID))
        .rs384();
    assert_eq!(
        reason(world.exchange(&rs_with_ec_key, SCOPE).await),
        "assertion_key_mismatch"
    );
}

#[tokio::test]
async fn forged_and_tampered_signatures_are_refused() {
    let world = World::new().await;
    // Signed by the attacker's key under the client's kid, with the attacker's key embedded in the
    // header for verifiers that trust it.
    let forged = Assertion::new(HOSPITAL_CLIENT)
        .header("jwk", rsa_jwk(other_rsa_key(), RSA_KID))
        .rs384_with(other_rsa_key());
    assert_eq!(
        reason(world.exchange(&forged, SCOPE).await),
        "assertion_signature_invalid"
    );

    // A genuine assertion whose claims were changed after signing (a nurse claiming to be a doctor).
    let genuine = Assertion::new(HOSPITAL_CLIENT).role("nurse");
    let signed = genuine.rs384();
    let signature = signed.rsplit('.').next().unwrap();
    let tampered = format!(
        "{}.{signature}",
        genuine.clone().role("doctor").signing_input()
    );
    assert_eq!(
        reason(world.exchange(&tampered, SCOPE).await),
        "assertion_signature_invalid"
    );
}

#[tokio::test]
async fn an_assertion_living_longer_than_five_minutes_is_refused() {
    let world = World::new().await;
    let now = seconds(now());
    let long = Assertion::new(HOSPITAL_CLIENT)
        .claim("exp", json!(now + 600))
        .rs384();
    assert_eq!(
        reason(world.exchange(&long, SCOPE).await),
        "assertion_lifetime_too_long"
    );
    // Issued 200 seconds ago and valid for another 200: 400 seconds in all.
    let long_from_iat = Assertion::new(HOSPITAL_CLIENT)
        .claim("iat", json!(now - 200))
        .claim("exp", json!(now + 200))
        .rs384();
    assert_eq!(
        reason(world.exchange(&long_from_iat, SCOPE).await),
        "assertion_lifetime_too_long"
    );
    // Without iat, exp may lie at most five minutes (plus skew) ahead.
    let without_iat = Assertion::new(HOSPITAL_CLIENT)
        .claim("iat", Value::Null)
        .claim("exp", json!(now + 300))
        .rs384();
    world.exchange(&without_iat, SCOPE).await.unwrap();
}

#[tokio::test]
async fn a_replayed_jti_is_refused_per_client() {
    let world = World::new().await;
    let assertion = Assertion::new(HOSPITAL_CLIENT).claim("jti", json!("once"));
    world.exchange(&assertion.rs384(), SCOPE).await.unwrap();
    // The very same assertion again, and a freshly signed one reusing the jti.
    assert_eq!(
        reason(world.exchange(&assertion.rs384(), SCOPE).await),
        "assertion_replayed"
    );
    let resigned = assertion.clone().claim("iat", json!(seconds(now()) - 5));
    assert_eq!(
        reason(world.exchange(&resigned.rs384(), SCOPE).await),
        "assertion_replayed"
    );
    // Another client may use the same jti: ids are per issuer.
    let other_client = Assertion::new(CLINIC_CLIENT).claim("jti", json!("once"));
    world.exchange(&other_client.rs384(), SCOPE).await.unwrap();

    let without = Assertion::new(HOSPITAL_CLIENT)
        .claim("jti", Value::Null)
        .rs384();
    assert_eq!(
        reason(world.exchange(&without, SCOPE).await),
        "assertion_jti_missing"
    );
}

#[tokio::test]
async fn a_revoked_client_gets_no_token_and_its_tokens_stop_working() {
    let world = World::new().await;
    let token = world
        .exchange(&Assertion::new(HOSPITAL_CLIENT).rs384(), SCOPE)
        .await
        .unwrap();

    auth::Registry::revoke_client(
        world.registry.as_ref(),
        &ClientId::new(HOSPITAL_CLIENT).unwrap(),
        now(),
    )
    .await
    .unwrap();

    assert_eq!(
        reason(
            world
                .exchange(&Assertion::new(HOSPITAL_CLIENT).rs384(), SCOPE)
                .await
        ),
        "client_revoked"
    );
    assert_eq!(
        reason(
            world
                .service
                .verify_access_token(token.token(), now())
                .await
        ),
        "token_client_revoked"
    );
}

#[tokio::test]
async fn an_unknown_client_is_refused() {
    let world = World::new().await;
    for client in ["nobody", "no spaces allowed", ""] {
        let assertion = Assertion::new(client).rs384();
        assert_eq!(
            reason(world.exchange(&assertion, SCOPE).await),
            "client_unknown"
        );
    }
}

#[tokio::test]
async fn iss_sub_and_client_id_must_agree() {
    let world = World::new().await;
    let other_sub = Assertion::new(HOSPITAL_CLIENT)
        .claim("sub", json!(CLINIC_CLIENT))
        .rs384();
    assert_eq!(
        reason(world.exchange(&other_sub, SCOPE).await),
        "assertion_issuer_mismatch"
    );
    let mut form = form(&Assertion::new(HOSPITAL_CLIENT).rs384(), SCOPE);
    form.push(("client_id".into(), CLINIC_CLIENT.into()));
    assert_eq!(
        reason(world.service.exchange(&form, now()).await),
        "client_id_mismatch"
    );
}

#[tokio::test]
async fn wrong_grant_and_assertion_types_and_malformed_requests_are_refused() {
    let world = World::new().await;
    let assertion = Assertion::new(HOSPITAL_CLIENT).rs384();
    let with = |name: &str, value: Option<&str>| {
        let mut form: Vec<(String, String)> = form(&assertion, SCOPE)
            .into_iter()
            .filter(|(key, _)| key != name)
            .collect();
        if let Some(value) = value {
            form.push((name.to_owned(), value.to_owned()));
        }
        form
    };
    let cases = [
        (
            with("grant_type", Some("authorization_code")),
            "grant_type_unsupported",
        ),
        (with("grant_type", None), "request_malformed"),
        (
            with(
                "client_assertion_type",
                Some("urn:ietf:params:oauth:client-assertion-type:saml2-bearer"),
            ),
            "client_assertion_type_unsupported",
        ),
        (with("client_assertion_type", None), "request_malformed"),
        (with("client_assertion", None), "request_malformed"),
        (
            with("client_assertion", Some("not.a-jwt")),
            "assertion_malformed",
        ),
        (
            with("client_assertion", Some("a.b.c.d")),
            "assertion_malformed",
        ),
        (with("scope", None), "scope_missing"),
    ];
    for (form, expected) in cases {
        assert_eq!(reason(world.service.exchange(&form, now()).await), expected);
    }
    let mut repeated = form(&assertion, SCOPE);
    repeated.push(("scope".into(), "system/Patient.rs".into()));
    let error = world.service.exchange(&repeated, now()).await.unwrap_err();
    assert_eq!(error.reason(), "request_malformed");
    assert_eq!(error.oauth_error(), "invalid_request");
    // A `crit` header we cannot honour makes the assertion unusable.
    let critical = Assertion::new(HOSPITAL_CLIENT)
        .header("crit", json!(["exp"]))
        .rs384();
    assert_eq!(
        reason(world.exchange(&critical, SCOPE).await),
        "assertion_malformed"
    );
}

#[tokio::test]
async fn scopes_beyond_the_organisation_kind_are_dropped_and_nothing_grantable_is_refused() {
    let world = World::new().await;
    // A pharmacy may read prescriptions but not diagnoses: Condition is dropped.
    let token = world
        .exchange(
            &Assertion::new(PHARMACY_CLIENT).rs384(),
            "system/Condition.rs system/MedicationRequest.rs openid patient/Observation.rs",
        )
        .await
        .unwrap();
    assert_eq!(
        token.response_body()["scope"],
        "system/MedicationRequest.rs"
    );

    let error = world
        .exchange(
            &Assertion::new(PHARMACY_CLIENT).rs384(),
            "system/Condition.rs",
        )
        .await
        .unwrap_err();
    assert_eq!(error.reason(), "scope_not_granted");
    assert_eq!(error.oauth_error(), "invalid_scope");

    // A wildcard asks for everything and gets the pharmacy's row (reads, and consents taken at
    // its reception).
    let principal = world
        .principal(&Assertion::new(PHARMACY_CLIENT).rs384(), "system/*.cruds")
        .await
        .unwrap();
    assert_eq!(
        principal.scopes.to_string(),
        "system/Patient.rs system/AllergyIntolerance.rs system/Observation.rs \
         system/MedicationRequest.rs system/Consent.crs system/Organization.rs \
         system/Practitioner.rs system/PractitionerRole.rs system/Location.rs"
    );

    // A hospital doctor asking for writes on Condition gets them; SMART v1 and granular scopes
    // are not understood and so not granted.
    let principal = world
        .principal(
            &Assertion::new(HOSPITAL_CLIENT).rs384(),
            "system/Condition.cu system/Observation.read system/Patient.rs?identifier=x",
        )
        .await
        .unwrap();
    assert_eq!(principal.scopes.to_string(), "system/Condition.cu");
}

#[tokio::test]
async fn clerks_and_administrators_read_no_clinical_data() {
    let world = World::new().await;
    for role in ["clerk", "administrator"] {
        let error = world
            .exchange(
                &Assertion::new(HOSPITAL_CLIENT).role(role).rs384(),
                "system/Observation.rs system/Condition.rs",
            )
            .await
            .unwrap_err();
        assert_eq!(error.reason(), "scope_not_granted");

        let principal = world
            .principal(
                &Assertion::new(HOSPITAL_CLIENT).role(role).rs384(),
                "system/*.cruds",
            )
            .await
            .unwrap();
        assert_eq!(
            principal.scopes.to_string(),
            "system/Patient.cud system/Condition.cud system/AllergyIntolerance.cud \
             system/Observation.cud system/MedicationRequest.cud system/Composition.cud \
             system/Encounter.cud system/DocumentReference.cud system/Specimen.cud \
             system/ServiceRequest.cud system/CarePlan.cud system/Coverage.cud system/Bundle.cud \
             system/Consent.crs system/Organization.rs system/Practitioner.rs \
             system/PractitionerRole.rs system/Location.rs"
        );
    }
}

#[tokio::test]
async fn the_acting_user_is_checked_against_the_organisation_kind() {
    let world = World::new().await;
    let cases = [
        // A pharmacy has no doctors.
        (
            Assertion::new(PHARMACY_CLIENT).role("doctor"),
            "role_not_allowed",
        ),
        // Public health staff cannot claim treatment.
        (
            Assertion::new(HEALTH_CENTRE_CLIENT).purpose("TREAT"),
            "purpose_of_use_not_allowed",
        ),
        // Emergency treatment needs the privilege…
        (
            Assertion::new(HOSPITAL_CLIENT).purpose("ETREAT"),
            "purpose_of_use_not_allowed",
        ),
        // …which only doctors at hospitals can hold.
        (
            Assertion::new(CLINIC_CLIENT)
                .claim("extensions/tsunagu/emergency_privilege", json!(true)),
            "emergency_privilege_not_allowed",
        ),
        (
            Assertion::new(HOSPITAL_CLIENT)
                .role("nurse")
                .claim("extensions/tsunagu/emergency_privilege", json!(true)),
            "emergency_privilege_not_allowed",
        ),
        // A user of another organisation.
        (
            Assertion::new(HOSPITAL_CLIENT).claim(
                "extensions/ihe_iua/subject_organization_id",
                json!(PHARMACY),
            ),
            "organisation_mismatch",
        ),
        // Missing or malformed user claims.
        (
            Assertion::new(HOSPITAL_CLIENT).claim("extensions/ihe_iua", Value::Null),
            "user_claims_invalid",
        ),
        (
            Assertion::new(HOSPITAL_CLIENT).claim("extensions/tsunagu/user_id", Value::Null),
            "user_claims_invalid",
        ),
        (
            Assertion::new(HOSPITAL_CLIENT).claim("extensions/ihe_iua/subject_name", json!(" ")),
            "user_claims_invalid",
        ),
        (
            Assertion::new(HOSPITAL_CLIENT)
                .claim("extensions/ihe_iua/subject_role/system", json!("urn:other")),
            "user_claims_invalid",
        ),
        (
            Assertion::new(HOSPITAL_CLIENT).role("surgeon-general"),
            "user_claims_invalid",
        ),
    ];
    for (assertion, expected) in cases {
        assert_eq!(
            reason(world.exchange(&assertion.rs384(), SCOPE).await),
            expected
        );
    }
}

#[tokio::test]
async fn an_emergency_physician_carries_the_privilege_and_the_emergency_purpose() {
    let world = World::new().await;
    let principal = world
        .principal(
            &Assertion::new(HOSPITAL_CLIENT)
                .purpose("ETREAT")
                .claim("extensions/tsunagu/emergency_privilege", json!(true))
                // The institution number names the organisation as well as its registry id.
                .claim(
                    "extensions/ihe_iua/subject_organization_id",
                    json!(HOSPITAL_NUMBER),
                )
                .rs384(),
            SCOPE,
        )
        .await
        .unwrap();
    assert!(principal.user.emergency_privilege);
    assert_eq!(principal.purpose_of_use, PurposeOfUse::EmergencyTreatment);
}

#[tokio::test]
async fn refusals_never_echo_the_assertion_or_its_claims() {
    let world = World::new().await;
    let assertion = Assertion::new(HOSPITAL_CLIENT)
        .claim("aud", json!("https://attacker.test/SECRET-MARKER"))
        .claim("extensions/ihe_iua/subject_name", json!("MARKER-NAME"))
        .rs384();
    let error = world.exchange(&assertion, SCOPE).await.unwrap_err();
    let rendered = format!(
        "{error} {error:?} {} {}",
        error.oauth_body(),
        error.www_authenticate()
    );
    for secret in [
        assertion.as_str(),
        "SECRET-MARKER",
        "MARKER-NAME",
        HOSPITAL_CLIENT,
    ] {
        assert!(!rendered.contains(secret), "{rendered}");
    }
    assert_eq!(
        error.oauth_body(),
        json!({ "error": "invalid_client", "error_description": "assertion_audience_invalid" })
    );
}

#[tokio::test]
async fn the_claimed_client_id_is_available_for_recording_refusals() {
    let assertion = Assertion::new(HOSPITAL_CLIENT)
        .header("alg", json!("none"))
        .unsigned();
    assert_eq!(
        claimed_client_id(&form(&assertion, SCOPE))
            .unwrap()
            .as_str(),
        HOSPITAL_CLIENT
    );
    let junk = Assertion::new("bad id with spaces").unsigned();
    assert_eq!(claimed_client_id(&form(&junk, SCOPE)), None);
    assert_eq!(claimed_client_id(&form("garbage", SCOPE)), None);
}

#[tokio::test]
async fn every_rejection_has_its_own_stable_reason() {
    let errors = [
        AuthError::RequestMalformed { parameter: "scope" },
        AuthError::UnsupportedGrantType,
        AuthError::UnsupportedAssertionType,
        AuthError::ClientIdMismatch,
        AuthError::AssertionMalformed,
        AuthError::AlgorithmNone,
        AuthError::AlgorithmSymmetric,
        AuthError::AlgorithmUnsupported,
        AuthError::KeyIdMissing,
        AuthError::UnknownClient,
        AuthError::ClientRevoked,
        AuthError::UnknownKey,
        AuthError::KeyAlgorithmMismatch,
        AuthError::JwksUrlNotAllowed,
        AuthError::JwksUnavailable,
        AuthError::BadSignature,
        AuthError::IssuerMismatch,
        AuthError::WrongAudience,
        AuthError::AssertionExpired,
        AuthError::AssertionNotYetValid,
        AuthError::AssertionLifetimeTooLong,
        AuthError::JtiMissing,
        AuthError::AssertionReplayed,
        AuthError::UnknownOrganisation,
        AuthError::UserClaimsInvalid { claim: "x" },
        AuthError::OrganisationMismatch,
        AuthError::RoleNotAllowed,
        AuthError::PurposeNotAllowed,
        AuthError::EmergencyPrivilegeNotAllowed,
        AuthError::ScopeMissing,
        AuthError::ScopeNotGranted,
        AuthError::TokenMalformed,
        AuthError::TokenBadSignature,
        AuthError::TokenExpired,
        AuthError::TokenWrongIssuer,
        AuthError::TokenWrongAudience,
        AuthError::TokenClientRevoked,
        AuthError::PatientLoginFailed,
        AuthError::PatientLocked,
        AuthError::CardSignatureInvalid,
        AuthError::TokenAccountDisabled,
        AuthError::Unavailable(Box::new(std::io::Error::other("x"))),
    ];
    let mut reasons: Vec<&str> = errors.iter().map(AuthError::reason).collect();
    reasons.sort();
    reasons.dedup();
    assert_eq!(reasons.len(), errors.len());
    assert!(errors.iter().all(|error| {
        error
            .reason()
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_')
    }));
    assert_eq!(
        errors.iter().filter(|error| error.is_unavailable()).count(),
        1
    );
}
