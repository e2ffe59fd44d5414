//! Patients' two-factor login from the outside, as an attacker would try it: a password without
//! the card, the card without the password, another card, signatures over something else,
//! replays, stale challenges, guessing until locked, disabled accounts, tokens of one kind
//! presented as the other, tampered and expired tokens; and card signatures presented by a
//! facility for a consent at its reception.

use std::sync::Arc;
use std::time::Duration;

use auth::{
    AccountId, AuthError, Bearer, CardKey, DirectoryError, JsonFilePatientDirectory,
    LOCKOUT_DURATION, LOGIN_PURPOSE, MAX_FAILED_LOGINS, MemoryPatientDirectory, OrganisationId,
    PATIENT_GRANT_TYPE, PATIENT_SCOPE, Password, PasswordHash, PatientAccount, PatientDirectory,
    PatientToken, ServiceKey, TokenService, card_message, consent_purpose,
};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::support::*;

const HANAKO: &str = "acct-hanako";
const HANAKO_PATIENT: &str = "patient-001";
const TARO: &str = "acct-taro";
const TARO_PATIENT: &str = "patient-002";
const PASSWORD: &str = "correct horse battery";
/// Few iterations, to keep the tests fast; the default is tested on its own.
const TEST_ITERATIONS: u32 = 1_000;

fn account_id(id: &str) -> AccountId {
    AccountId::new(id).unwrap()
}

fn hash(password: &str) -> PasswordHash {
    PasswordHash::with_iterations(&Password::new(password).unwrap(), TEST_ITERATIONS).unwrap()
}

fn account(id: &str, patient: &str, password: &str, card: &CardKey) -> PatientAccount {
    PatientAccount::new(account_id(id), patient, hash(password), card.public_key()).unwrap()
}

/// The token service with two patients, Hanako and Taro, each with their own card, and the
/// member world of `support` beside them.
struct Patients {
    world: World,
    directory: Arc<dyn PatientDirectory>,
    hanako_card: CardKey,
    taro_card: CardKey,
    key_pem: String,
}

impl Patients {
    async fn new() -> Patients {
        Patients::over(Arc::new(MemoryPatientDirectory::new())).await
    }

    async fn over(directory: Arc<dyn PatientDirectory>) -> Patients {
        let hanako_card = CardKey::generate().unwrap();
        let taro_card = CardKey::generate().unwrap();
        directory
            .add_account(account(HANAKO, HANAKO_PATIENT, PASSWORD, &hanako_card))
            .await
            .unwrap();
        directory
            .add_account(account(TARO, TARO_PATIENT, PASSWORD, &taro_card))
            .await
            .unwrap();
        let registry = Arc::new(auth::MemoryRegistry::new());
        seed(registry.as_ref()).await;
        let key = ServiceKey::generate().unwrap();
        let key_pem = key.to_pkcs8_pem();
        let service = TokenService::new(
            settings(),
            registry.clone(),
            Arc::new(auth::MemoryJtiCache::default()),
            key,
        )
        .unwrap()
        .with_patients(directory.clone());
        let world = World { service, registry };
        Patients {
            world,
            directory,
            hanako_card,
            taro_card,
            key_pem,
        }
    }

    fn service(&self) -> &TokenService {
        &self.world.service
    }

    fn challenge(&self) -> String {
        self.service().issue_challenge(now()).unwrap().value
    }

    /// Hanako's complete, correct login form over a fresh challenge.
    fn hanako_form(&self) -> Vec<(String, String)> {
        let challenge = self.challenge();
        let signature = self.hanako_card.sign(&card_message(
            LOGIN_PURPOSE,
            &challenge,
            &account_id(HANAKO),
        ));
        login_form(HANAKO, PASSWORD, &challenge, &signature)
    }

    async fn login(&self, form: &[(String, String)]) -> Result<PatientToken, AuthError> {
        self.service().patient_login(form, now()).await
    }
}

fn login_form(
    username: &str,
    password: &str,
    challenge: &str,
    signature: &str,
) -> Vec<(String, String)> {
    vec![
        ("grant_type".into(), PATIENT_GRANT_TYPE.into()),
        ("username".into(), username.into()),
        ("password".into(), password.into()),
        ("challenge".into(), challenge.into()),
        ("card_signature".into(), signature.into()),
    ]
}

fn without(form: &[(String, String)], name: &str) -> Vec<(String, String)> {
    form.iter()
        .filter(|(key, _)| key != name)
        .cloned()
        .collect()
}

fn with(form: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    let mut form = without(form, name);
    form.push((name.into(), value.into()));
    form
}

fn value<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    &form.iter().find(|(key, _)| key == name).unwrap().1
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// A member's access token from the hospital's client.
async fn member_token(world: &World) -> String {
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

#[tokio::test]
async fn password_and_card_together_log_in_to_the_patients_own_compartment() {
    let patients = Patients::new().await;
    let token = patients.login(&patients.hanako_form()).await.unwrap();
    assert_eq!(token.principal.account_id, account_id(HANAKO));
    assert_eq!(token.principal.patient, HANAKO_PATIENT);
    assert_eq!(token.expires_in(), 300);

    let body = token.response_body();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["scope"], "patient/*.rs");
    assert_eq!(body["patient"], HANAKO_PATIENT);
    assert_eq!(body["access_token"], token.token());

    let claims = claims_of(token.token());
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], FHIR_BASE);
    assert_eq!(claims["sub"], HANAKO);
    assert_eq!(claims["patient"], HANAKO_PATIENT);
    assert_eq!(claims["scope"], PATIENT_SCOPE);
    assert!(claims.get("client_id").is_none());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.token().split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["typ"], "at+jwt");

    match patients.service().verify_bearer(token.token(), now()).await {
        Ok(Bearer::Patient(principal)) => {
            assert_eq!(principal, token.principal);
            assert_eq!(principal.patient, HANAKO_PATIENT);
            assert_eq!(principal.permissions(), auth::Permissions::RS);
        }
        other => panic!("expected a patient, got {other:?}"),
    }
}

#[tokio::test]
async fn a_password_without_the_card_is_refused() {
    let patients = Patients::new().await;
    let form = patients.hanako_form();
    assert_eq!(
        reason(patients.login(&without(&form, "card_signature")).await),
        "request_malformed"
    );
    for signature in [
        "",
        "garbage",
        "AAAA",
        &URL_SAFE_NO_PAD.encode([0u8; 64]),
        // A real signature of Hanako's card, over a message of its own choosing.
        &patients.hanako_card.sign(b"please log me in"),
    ] {
        let attempt = with(
            &with(&form, "challenge", &patients.challenge()),
            "card_signature",
            signature,
        );
        assert_eq!(
            reason(patients.login(&attempt).await),
            "patient_login_failed"
        );
    }
}

#[tokio::test]
async fn the_card_without_the_password_is_refused() {
    let patients = Patients::new().await;
    let form = patients.hanako_form();
    assert_eq!(
        reason(patients.login(&without(&form, "password")).await),
        "request_malformed"
    );
    for password in ["", "correct horse batter", "Correct horse battery", "x"] {
        // A fresh, correctly signed challenge each time: only the password is wrong.
        let attempt = with(&patients.hanako_form(), "password", password);
        assert_eq!(
            reason(patients.login(&attempt).await),
            "patient_login_failed"
        );
    }
}

#[tokio::test]
async fn another_card_is_refused() {
    let patients = Patients::new().await;
    let challenge = patients.challenge();
    // Taro's card signs Hanako's login message: the right message, the wrong card.
    let signature = patients.taro_card.sign(&card_message(
        LOGIN_PURPOSE,
        &challenge,
        &account_id(HANAKO),
    ));
    assert_eq!(
        reason(
            patients
                .login(&login_form(HANAKO, PASSWORD, &challenge, &signature))
                .await
        ),
        "patient_login_failed"
    );
    // And a card nobody registered.
    let stranger = CardKey::generate().unwrap();
    let challenge = patients.challenge();
    let signature = stranger.sign(&card_message(
        LOGIN_PURPOSE,
        &challenge,
        &account_id(HANAKO),
    ));
    assert_eq!(
        reason(
            patients
                .login(&login_form(HANAKO, PASSWORD, &challenge, &signature))
                .await
        ),
        "patient_login_failed"
    );
}

#[tokio::test]
async fn a_signature_over_another_challenge_purpose_or_account_is_refused() {
    let patients = Patients::new().await;
    let card = &patients.hanako_card;
    let hospital = OrganisationId::new(HOSPITAL).unwrap();

    // Signed over another (live) challenge than the one sent.
    let (sent, signed) = (patients.challenge(), patients.challenge());
    let signature = card.sign(&card_message(LOGIN_PURPOSE, &signed, &account_id(HANAKO)));
    assert_eq!(
        reason(
            patients
                .login(&login_form(HANAKO, PASSWORD, &sent, &signature))
                .await
        ),
        "patient_login_failed"
    );
    // Signed as a consent at the hospital, not as a login.
    let challenge = patients.challenge();
    let signature = card.sign(&card_message(
        &consent_purpose(&hospital),
        &challenge,
        &account_id(HANAKO),
    ));
    assert_eq!(
        reason(
            patients
                .login(&login_form(HANAKO, PASSWORD, &challenge, &signature))
                .await
        ),
        "patient_login_failed"
    );
    // Signed for another account's login.
    let challenge = patients.challenge();
    let signature = card.sign(&card_message(LOGIN_PURPOSE, &challenge, &account_id(TARO)));
    assert_eq!(
        reason(
            patients
                .login(&login_form(HANAKO, PASSWORD, &challenge, &signature))
                .await
        ),
        "patient_login_failed"
    );
    // Another version line.
    let challenge = patients.challenge();
    let message = format!("tsunagu-card-v2\nlogin\n{challenge}\n{HANAKO}");
    let signature = card.sign(message.as_bytes());
    assert_eq!(
        reason(
            patients
                .login(&login_form(HANAKO, PASSWORD, &challenge, &signature))
                .await
        ),
        "patient_login_failed"
    );
}

#[tokio::test]
async fn a_challenge_is_good_for_one_attempt_only() {
    let patients = Patients::new().await;
    let form = patients.hanako_form();
    patients.login(&form).await.unwrap();
    // The very same request again: a replay.
    assert_eq!(reason(patients.login(&form).await), "patient_login_failed");
    // A failed attempt uses the challenge up too: the right password afterwards does not help.
    let form = patients.hanako_form();
    assert_eq!(
        reason(
            patients
                .login(&with(&form, "password", "wrong password"))
                .await
        ),
        "patient_login_failed"
    );
    assert_eq!(reason(patients.login(&form).await), "patient_login_failed");
}

#[tokio::test]
async fn a_challenge_lives_two_minutes() {
    let patients = Patients::new().await;
    let form = patients.hanako_form();
    assert_eq!(
        reason(
            patients
                .service()
                .patient_login(&form, now() + Duration::from_secs(121))
                .await
        ),
        "patient_login_failed"
    );
    let form = patients.hanako_form();
    patients
        .service()
        .patient_login(&form, now() + Duration::from_secs(119))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_unknown_challenge_is_refused() {
    let patients = Patients::new().await;
    for challenge in [
        URL_SAFE_NO_PAD.encode([7u8; 32]),
        String::new(),
        "x".repeat(10_000),
    ] {
        let signature = patients.hanako_card.sign(&card_message(
            LOGIN_PURPOSE,
            &challenge,
            &account_id(HANAKO),
        ));
        assert_eq!(
            reason(
                patients
                    .login(&login_form(HANAKO, PASSWORD, &challenge, &signature))
                    .await
            ),
            "patient_login_failed"
        );
    }
}

#[tokio::test]
async fn an_unknown_account_is_refused_exactly_like_a_wrong_password() {
    let patients = Patients::new().await;
    let wrong_password = patients
        .login(&with(&patients.hanako_form(), "password", "wrong password"))
        .await
        .unwrap_err();
    let challenge = patients.challenge();
    let signature = patients.hanako_card.sign(&card_message(
        LOGIN_PURPOSE,
        &challenge,
        &account_id("acct-nobody"),
    ));
    let unknown = patients
        .login(&login_form("acct-nobody", PASSWORD, &challenge, &signature))
        .await
        .unwrap_err();
    let invalid_name = patients
        .login(&with(
            &patients.hanako_form(),
            "username",
            "not an account id",
        ))
        .await
        .unwrap_err();
    for error in [&unknown, &invalid_name] {
        assert_eq!(error.reason(), wrong_password.reason());
        assert_eq!(error.oauth_body(), wrong_password.oauth_body());
        assert_eq!(error.to_string(), wrong_password.to_string());
    }
    assert_eq!(
        wrong_password.oauth_body(),
        json!({ "error": "invalid_grant", "error_description": "patient_login_failed" })
    );
}

#[tokio::test]
async fn five_failures_lock_the_account_even_against_the_right_credentials_for_fifteen_minutes() {
    let patients = Patients::new().await;
    for _ in 0..MAX_FAILED_LOGINS {
        let attempt = with(&patients.hanako_form(), "password", "wrong password");
        assert_eq!(
            reason(patients.login(&attempt).await),
            "patient_login_failed"
        );
    }
    let locked = patients.login(&patients.hanako_form()).await.unwrap_err();
    assert_eq!(locked.reason(), "patient_locked");
    assert_eq!(locked.oauth_error(), "invalid_grant");
    // Others are not locked out.
    let challenge = patients.challenge();
    let signature =
        patients
            .taro_card
            .sign(&card_message(LOGIN_PURPOSE, &challenge, &account_id(TARO)));
    patients
        .login(&login_form(TARO, PASSWORD, &challenge, &signature))
        .await
        .unwrap();
    // Still locked a second before the fifteen minutes are up; open after.
    let form = patients.hanako_form();
    let almost = now() + LOCKOUT_DURATION - Duration::from_secs(1);
    assert_eq!(
        reason(patients.service().patient_login(&form, almost).await),
        "patient_locked"
    );
    let later = now() + LOCKOUT_DURATION;
    let challenge = patients.service().issue_challenge(later).unwrap().value;
    let signature = patients.hanako_card.sign(&card_message(
        LOGIN_PURPOSE,
        &challenge,
        &account_id(HANAKO),
    ));
    patients
        .service()
        .patient_login(&login_form(HANAKO, PASSWORD, &challenge, &signature), later)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_success_starts_the_count_again_and_unknown_names_lock_like_real_ones() {
    let patients = Patients::new().await;
    for _ in 0..2 {
        for _ in 0..MAX_FAILED_LOGINS - 1 {
            let attempt = with(&patients.hanako_form(), "password", "wrong password");
            patients.login(&attempt).await.unwrap_err();
        }
        patients.login(&patients.hanako_form()).await.unwrap();
    }
    // A name with no account locks after the same number of failures, with the same answer:
    // being locked says nothing about existence.
    for _ in 0..MAX_FAILED_LOGINS {
        let attempt = with(&patients.hanako_form(), "username", "acct-nobody");
        assert_eq!(
            reason(patients.login(&attempt).await),
            "patient_login_failed"
        );
    }
    let attempt = with(&patients.hanako_form(), "username", "acct-nobody");
    assert_eq!(reason(patients.login(&attempt).await), "patient_locked");
}

#[tokio::test]
async fn a_disabled_account_cannot_log_in_and_its_tokens_stop_working() {
    let patients = Patients::new().await;
    let token = patients.login(&patients.hanako_form()).await.unwrap();
    // Verified once before (its signature is then not checked again): the account is still
    // checked on every request.
    patients
        .service()
        .verify_bearer(token.token(), now())
        .await
        .unwrap();
    patients
        .directory
        .disable_account(&account_id(HANAKO), now())
        .await
        .unwrap();
    assert_eq!(
        reason(patients.service().verify_bearer(token.token(), now()).await),
        "token_account_disabled"
    );
    assert_eq!(
        reason(patients.login(&patients.hanako_form()).await),
        "patient_login_failed"
    );
}

#[tokio::test]
async fn a_patient_token_is_never_a_member_token_and_a_member_token_never_a_patients() {
    let patients = Patients::new().await;
    let patient = patients.login(&patients.hanako_form()).await.unwrap();
    assert_eq!(
        reason(
            patients
                .service()
                .verify_access_token(patient.token(), now())
                .await
        ),
        "token_malformed"
    );
    let member = member_token(&patients.world).await;
    match patients.service().verify_bearer(&member, now()).await {
        Ok(Bearer::Member(principal)) => {
            assert_eq!(principal.client_id.as_str(), HOSPITAL_CLIENT);
        }
        other => panic!("expected a member, got {other:?}"),
    }
    // The member token still verifies the old way too.
    patients
        .service()
        .verify_access_token(&member, now())
        .await
        .unwrap();
    // The patient grant is not a client_credentials exchange, nor the reverse.
    assert_eq!(
        reason(
            patients
                .service()
                .exchange(&patients.hanako_form(), now())
                .await
        ),
        "grant_type_unsupported"
    );
    assert_eq!(
        reason(
            patients
                .login(&form(
                    &Assertion::new(HOSPITAL_CLIENT).rs384(),
                    "system/Patient.rs"
                ))
                .await
        ),
        "grant_type_unsupported"
    );
}

/// Signs `claims` with the service's own key, as only the service could: what a token mixing
/// both kinds would look like if the service ever issued one.
fn signed_by_the_service(key_pem: &str, claims: &Value) -> String {
    let body: String = key_pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let key = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &STANDARD.decode(body).unwrap(),
    )
    .unwrap();
    let header = json!({ "alg": "ES256", "typ": "at+jwt" });
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let signature = key.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
    format!("{input}.{}", b64(signature.as_ref()))
}

#[tokio::test]
async fn a_token_mixing_both_kinds_is_neither() {
    let patients = Patients::new().await;
    let member = member_token(&patients.world).await;
    let mut claims = claims_of(&member);
    claims["patient"] = json!(HANAKO_PATIENT);
    let mixed = signed_by_the_service(&patients.key_pem, &claims);
    assert_eq!(
        reason(patients.service().verify_access_token(&mixed, now()).await),
        "token_malformed"
    );
    assert_eq!(
        reason(patients.service().verify_bearer(&mixed, now()).await),
        "token_malformed"
    );
    // A patient token with a wider scope, or naming another patient, even if it were signed.
    let patient = patients.login(&patients.hanako_form()).await.unwrap();
    let mut claims = claims_of(patient.token());
    claims["scope"] = json!("patient/*.cruds");
    let widened = signed_by_the_service(&patients.key_pem, &claims);
    assert_eq!(
        reason(patients.service().verify_bearer(&widened, now()).await),
        "token_malformed"
    );
    let mut claims = claims_of(patient.token());
    claims["patient"] = json!(TARO_PATIENT);
    let other_patient = signed_by_the_service(&patients.key_pem, &claims);
    assert_eq!(
        reason(
            patients
                .service()
                .verify_bearer(&other_patient, now())
                .await
        ),
        "token_account_disabled"
    );
}

#[tokio::test]
async fn a_tampered_patient_token_is_refused() {
    let patients = Patients::new().await;
    let token = patients.login(&patients.hanako_form()).await.unwrap();
    let mut parts = token.token().split('.');
    let (header, _, signature) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let mut claims = claims_of(token.token());
    claims["patient"] = json!(TARO_PATIENT);
    let tampered = format!("{header}.{}.{signature}", b64(claims.to_string()));
    assert_eq!(
        reason(patients.service().verify_bearer(&tampered, now()).await),
        "token_signature_invalid"
    );
    // A member token turned into a patient's by adding the claim.
    let member = member_token(&patients.world).await;
    let mut parts = member.split('.');
    let (header, _, signature) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let mut claims = claims_of(&member);
    claims["patient"] = json!(HANAKO_PATIENT);
    let tampered = format!("{header}.{}.{signature}", b64(claims.to_string()));
    assert_eq!(
        reason(patients.service().verify_bearer(&tampered, now()).await),
        "token_signature_invalid"
    );
}

#[tokio::test]
async fn an_expired_patient_token_is_refused() {
    let patients = Patients::new().await;
    let token = patients.login(&patients.hanako_form()).await.unwrap();
    patients
        .service()
        .verify_bearer(token.token(), now() + Duration::from_secs(299))
        .await
        .unwrap();
    assert_eq!(
        reason(
            patients
                .service()
                .verify_bearer(token.token(), now() + Duration::from_secs(300))
                .await
        ),
        "token_expired"
    );
}

#[tokio::test]
async fn a_card_signature_for_a_consent_at_reception_is_accepted_once_and_for_that_facility_only() {
    let patients = Patients::new().await;
    let hospital = consent_purpose(&OrganisationId::new(HOSPITAL).unwrap());
    let pharmacy = consent_purpose(&OrganisationId::new(PHARMACY).unwrap());
    let card = &patients.hanako_card;
    let service = patients.service();

    let challenge = patients.challenge();
    let signature = card.sign(&card_message(&hospital, &challenge, &account_id(HANAKO)));
    let accepted = service
        .verify_card_signature(HANAKO_PATIENT, &hospital, &challenge, &signature, now())
        .await
        .unwrap();
    assert_eq!(accepted, account_id(HANAKO));
    // Replayed.
    let replayed = service
        .verify_card_signature(HANAKO_PATIENT, &hospital, &challenge, &signature, now())
        .await
        .unwrap_err();
    assert_eq!(replayed.reason(), "card_signature_invalid");
    assert_eq!(replayed.oauth_error(), "invalid_grant");

    // Given at the hospital, presented by the pharmacy.
    let challenge = patients.challenge();
    let signature = card.sign(&card_message(&hospital, &challenge, &account_id(HANAKO)));
    assert_eq!(
        reason(
            service
                .verify_card_signature(HANAKO_PATIENT, &pharmacy, &challenge, &signature, now())
                .await
        ),
        "card_signature_invalid"
    );
    // A login signature is never a consent, and `login` is no consent purpose.
    let challenge = patients.challenge();
    let signature = card.sign(&card_message(
        LOGIN_PURPOSE,
        &challenge,
        &account_id(HANAKO),
    ));
    assert_eq!(
        reason(
            service
                .verify_card_signature(HANAKO_PATIENT, &hospital, &challenge, &signature, now())
                .await
        ),
        "card_signature_invalid"
    );
    for purpose in [LOGIN_PURPOSE, "consent:", "consent:bad id", "consent"] {
        assert_eq!(
            reason(
                service
                    .verify_card_signature(
                        HANAKO_PATIENT,
                        purpose,
                        &patients.challenge(),
                        &signature,
                        now()
                    )
                    .await
            ),
            "request_malformed"
        );
    }
    // Hanako's card for Taro's consent; an unknown patient; a stale challenge.
    let challenge = patients.challenge();
    let signature = card.sign(&card_message(&hospital, &challenge, &account_id(TARO)));
    assert_eq!(
        reason(
            service
                .verify_card_signature(TARO_PATIENT, &hospital, &challenge, &signature, now())
                .await
        ),
        "card_signature_invalid"
    );
    let challenge = patients.challenge();
    let signature = card.sign(&card_message(&hospital, &challenge, &account_id(HANAKO)));
    assert_eq!(
        reason(
            service
                .verify_card_signature("patient-999", &hospital, &challenge, &signature, now())
                .await
        ),
        "card_signature_invalid"
    );
    let challenge = patients.challenge();
    let signature = card.sign(&card_message(&hospital, &challenge, &account_id(HANAKO)));
    assert_eq!(
        reason(
            service
                .verify_card_signature(
                    HANAKO_PATIENT,
                    &hospital,
                    &challenge,
                    &signature,
                    now() + Duration::from_secs(121)
                )
                .await
        ),
        "card_signature_invalid"
    );
    // A disabled account's card gives no consent.
    patients
        .directory
        .disable_account(&account_id(HANAKO), now())
        .await
        .unwrap();
    let challenge = patients.challenge();
    let signature = card.sign(&card_message(&hospital, &challenge, &account_id(HANAKO)));
    assert_eq!(
        reason(
            service
                .verify_card_signature(HANAKO_PATIENT, &hospital, &challenge, &signature, now())
                .await
        ),
        "card_signature_invalid"
    );
}

#[tokio::test]
async fn hashes_never_hold_the_password_and_nothing_secret_is_shown() {
    let patients = Patients::new().await;
    let hanako = patients
        .directory
        .account(&account_id(HANAKO))
        .await
        .unwrap()
        .unwrap();
    let taro = patients
        .directory
        .account(&account_id(TARO))
        .await
        .unwrap()
        .unwrap();
    let encoded = hanako.password().encoded();
    assert_ne!(encoded, PASSWORD);
    assert!(!encoded.contains(PASSWORD));
    assert!(!encoded.contains(&URL_SAFE_NO_PAD.encode(PASSWORD)));
    assert_ne!(
        encoded,
        taro.password().encoded(),
        "the same password, different salts, different hashes"
    );

    let token = patients.login(&patients.hanako_form()).await.unwrap();
    let shown = format!("{hanako:?} {token:?} {:?}", token.principal);
    for secret in [
        encoded.as_str(),
        encoded.rsplit('$').next().unwrap(),
        token.token(),
        HANAKO_PATIENT,
        PASSWORD,
        &hanako.card().to_base64url(),
    ] {
        assert!(!shown.contains(secret), "{shown}");
    }
    let form = with(&patients.hanako_form(), "password", "wrong password");
    let error = patients.login(&form).await.unwrap_err();
    let said = format!("{error} {error:?} {}", error.oauth_body());
    for secret in [value(&form, "card_signature"), "wrong password", HANAKO] {
        assert!(!said.contains(secret), "{said}");
    }
}

#[test]
fn new_passwords_are_hashed_with_at_least_210_000_iterations() {
    const { assert!(PasswordHash::DEFAULT_ITERATIONS >= 210_000) };
    let hash = PasswordHash::new(&Password::new(PASSWORD).unwrap()).unwrap();
    assert_eq!(hash.iterations(), PasswordHash::DEFAULT_ITERATIONS);
    assert!(hash.encoded().starts_with("pbkdf2-sha256$210000$"));
    assert!(hash.verify(PASSWORD));
}

#[tokio::test]
async fn a_malformed_login_request_is_refused_before_anything_is_looked_up() {
    let patients = Patients::new().await;
    let form = patients.hanako_form();
    let mut repeated = form.clone();
    repeated.push(("password".into(), "another".into()));
    assert_eq!(reason(patients.login(&repeated).await), "request_malformed");
    for name in ["grant_type", "username", "challenge"] {
        assert_eq!(
            reason(patients.login(&without(&form, name)).await),
            "request_malformed"
        );
    }
    assert_eq!(
        reason(patients.login(&with(&form, "grant_type", "password")).await),
        "grant_type_unsupported"
    );
    // A service without a patient directory does not do patient logins at all.
    let members_only = World::new().await;
    assert_eq!(
        reason(members_only.service.patient_login(&form, now()).await),
        "grant_type_unsupported"
    );
    // ... and so cannot vouch for a patient token.
    let token = patients.login(&patients.hanako_form()).await.unwrap();
    let same_key = World::over(
        members_only.registry.clone(),
        ServiceKey::from_pkcs8_pem(&patients.key_pem).unwrap(),
        settings(),
    );
    assert_eq!(
        reason(same_key.service.verify_bearer(token.token(), now()).await),
        "token_account_disabled"
    );
}

#[tokio::test]
async fn the_directory_refuses_a_second_account_for_a_patient_id_or_card_until_the_first_is_disabled()
 {
    let patients = Patients::new().await;
    let new_card = CardKey::generate().unwrap();
    for (account, expected) in [
        (
            account(HANAKO, "patient-003", PASSWORD, &new_card),
            "account id",
        ),
        (
            account("acct-3", HANAKO_PATIENT, PASSWORD, &new_card),
            "patient",
        ),
        (
            account("acct-3", "patient-003", PASSWORD, &patients.hanako_card),
            "card",
        ),
    ] {
        match patients.directory.add_account(account).await {
            Err(DirectoryError::Duplicate(what)) => assert_eq!(what, expected),
            other => panic!("expected a duplicate {expected}, got {other:?}"),
        }
    }
    let found = patients
        .directory
        .account_for_patient(TARO_PATIENT)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.account_id(), &account_id(TARO));
    assert_eq!(patients.directory.accounts().await.unwrap().len(), 2);

    // A lost card: the account is disabled and the patient gets a new one, with a new card. The
    // old card is never accepted again, the old id never reused.
    patients
        .directory
        .disable_account(&account_id(HANAKO), now())
        .await
        .unwrap();
    let lost_card = account(
        "acct-hanako-2",
        HANAKO_PATIENT,
        PASSWORD,
        &patients.hanako_card,
    );
    assert!(matches!(
        patients.directory.add_account(lost_card).await,
        Err(DirectoryError::Duplicate("card"))
    ));
    patients
        .directory
        .add_account(account(
            "acct-hanako-2",
            HANAKO_PATIENT,
            PASSWORD,
            &new_card,
        ))
        .await
        .unwrap();
    let found = patients
        .directory
        .account_for_patient(HANAKO_PATIENT)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.account_id(), &account_id("acct-hanako-2"));
    let third = CardKey::generate().unwrap();
    assert!(matches!(
        patients
            .directory
            .add_account(account("acct-hanako-3", HANAKO_PATIENT, PASSWORD, &third))
            .await,
        Err(DirectoryError::Duplicate("patient"))
    ));
    // The new card gives consent; the old one does not.
    let hospital = consent_purpose(&OrganisationId::new(HOSPITAL).unwrap());
    let challenge = patients.challenge();
    let old = patients.hanako_card.sign(&card_message(
        &hospital,
        &challenge,
        &account_id("acct-hanako-2"),
    ));
    assert_eq!(
        reason(
            patients
                .service()
                .verify_card_signature(HANAKO_PATIENT, &hospital, &challenge, &old, now())
                .await
        ),
        "card_signature_invalid"
    );
    let challenge = patients.challenge();
    let new = new_card.sign(&card_message(
        &hospital,
        &challenge,
        &account_id("acct-hanako-2"),
    ));
    patients
        .service()
        .verify_card_signature(HANAKO_PATIENT, &hospital, &challenge, &new, now())
        .await
        .unwrap();
}

#[tokio::test]
async fn the_directory_file_is_private_and_a_cli_disable_reaches_the_running_server() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("patients.json");
    let server_side = Arc::new(JsonFilePatientDirectory::open(&path).unwrap());
    let patients = Patients::over(server_side.clone()).await;
    let token = patients.login(&patients.hanako_form()).await.unwrap();

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains(PASSWORD));
    let json: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["accounts"][0]["account_id"], HANAKO);
    assert_eq!(json["accounts"][0]["patient"], HANAKO_PATIENT);
    assert!(
        json["accounts"][0]["password"]
            .as_str()
            .unwrap()
            .starts_with("pbkdf2-sha256$1000$")
    );
    assert_eq!(
        json["accounts"][0]["card_public_key"],
        patients.hanako_card.public_key().to_base64url()
    );

    // The CLI: another handle on the same file.
    let cli = JsonFilePatientDirectory::open(&path).unwrap();
    cli.disable_account(&account_id(HANAKO), now())
        .await
        .unwrap();
    assert_eq!(
        reason(patients.service().verify_bearer(token.token(), now()).await),
        "token_account_disabled"
    );
    assert_eq!(
        reason(patients.login(&patients.hanako_form()).await),
        "patient_login_failed"
    );
    let disabled = server_side
        .account(&account_id(HANAKO))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(disabled.disabled_at(), Some(now()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "a rewrite keeps the mode");
    }

    // A broken file is refused as a whole: nothing stale is served.
    std::fs::write(
        &path,
        "{ \"version\": 1, \"accounts\": [ { \"account_id\": 1 } ] }",
    )
    .unwrap();
    assert!(matches!(
        server_side.account(&account_id(TARO)).await,
        Err(DirectoryError::Corrupt { .. })
    ));
    assert!(
        patients
            .login(&patients.hanako_form())
            .await
            .unwrap_err()
            .is_unavailable()
    );
}
