//! The parts of patient login that need no token service: the password policy and hash format,
//! card keys and the exact message, the challenge store's lifetime and bound, the lockout's
//! counting.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;
use crate::model::OrganisationId;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn password(text: &str) -> Password {
    Password::new(text).unwrap()
}

#[test]
fn the_password_policy_is_eight_characters_to_1024_bytes() {
    assert!(Password::new("1234567").is_err());
    assert!(Password::new("12345678").is_ok());
    // Characters, not bytes: eight kana are enough, seven are not.
    assert!(Password::new("つなぐつなぐつな").is_ok());
    assert!(Password::new("つなぐつなぐつ").is_err());
    assert!(Password::new("a".repeat(1024)).is_ok());
    assert!(Password::new("a".repeat(1025)).is_err());
    let error = Password::new("short").unwrap_err().to_string();
    assert!(!error.contains("short"), "{error}");
    assert_eq!(
        format!("{:?}", password("hunter2hunter2")),
        "Password([redacted])"
    );
}

#[test]
fn a_hash_is_self_describing_salted_and_verifies_only_its_password() {
    let hash = PasswordHash::with_iterations(&password("correct horse"), 1_000).unwrap();
    let encoded = hash.encoded();
    let fields: Vec<&str> = encoded.split('$').collect();
    assert_eq!(fields.len(), 4);
    assert_eq!(fields[0], "pbkdf2-sha256");
    assert_eq!(fields[1], "1000");
    assert_eq!(fields[2].len(), 22, "16 bytes of salt in base64url");
    assert_eq!(fields[3].len(), 43, "32 bytes of hash in base64url");
    assert!(hash.verify("correct horse"));
    assert!(!hash.verify("correct horsf"));
    assert!(!hash.verify("correct horse "));
    assert!(!hash.verify(""));
    assert!(!hash.verify(&"x".repeat(5000)));

    let parsed = PasswordHash::parse(&encoded).unwrap();
    assert_eq!(parsed, hash);
    assert!(parsed.verify("correct horse"));
    assert!(!format!("{hash:?}").contains(fields[3]));

    let again = PasswordHash::with_iterations(&password("correct horse"), 1_000).unwrap();
    assert_ne!(again.encoded(), encoded, "a fresh salt every time");
}

#[test]
fn malformed_or_weak_hashes_are_refused() {
    let good = PasswordHash::with_iterations(&password("correct horse"), 1_000)
        .unwrap()
        .encoded();
    let fields: Vec<&str> = good.split('$').collect();
    for bad in [
        String::new(),
        "pbkdf2-sha256".to_owned(),
        good.replacen("pbkdf2-sha256", "pbkdf2-sha1", 1),
        format!("pbkdf2-sha256$999${}${}", fields[2], fields[3]),
        format!("pbkdf2-sha256$+1000${}${}", fields[2], fields[3]),
        format!("pbkdf2-sha256$1000$${}", fields[3]),
        format!("pbkdf2-sha256$1000${}$", fields[2]),
        format!("pbkdf2-sha256$1000${}${}", fields[2], &fields[3][..40]),
        format!("pbkdf2-sha256$1000${}${}AAAA", fields[2], fields[3]),
        format!("pbkdf2-sha256$1000$AAAA${}", fields[3]),
        format!("{good}$extra"),
    ] {
        assert!(PasswordHash::parse(&bad).is_err(), "{bad}");
    }
    assert!(PasswordHash::with_iterations(&password("correct horse"), 999).is_err());
}

#[test]
fn card_public_keys_are_read_from_pem_or_base64url_and_private_keys_are_refused() {
    let card = CardKey::generate().unwrap();
    let public = card.public_key();
    assert_eq!(CardPublicKey::parse(&public.to_pem()).unwrap(), public);
    assert_eq!(
        CardPublicKey::parse(&format!("  {}\n", public.to_base64url())).unwrap(),
        public
    );
    assert!(
        public
            .to_pem()
            .starts_with("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA")
    );
    assert!(CardPublicKey::parse(&card.to_pkcs8_pem()).is_err());
    assert!(CardPublicKey::parse("AAAA").is_err());
    assert!(CardPublicKey::parse(&crate::jws::encode_bytes(&[7u8; 33])).is_err());
    assert_eq!(format!("{public:?}"), "CardPublicKey(Ed25519)");
    assert_eq!(format!("{card:?}"), "CardKey([redacted])");

    let reloaded = CardKey::from_pkcs8_pem(&card.to_pkcs8_pem()).unwrap();
    assert_eq!(reloaded.public_key(), public);
}

#[test]
fn the_card_message_is_four_lines_without_a_trailing_newline() {
    let account = AccountId::new("acct-1").unwrap();
    assert_eq!(
        card_message(LOGIN_PURPOSE, "Q2hhbGxlbmdl", &account),
        b"tsunagu-card-v1\nlogin\nQ2hhbGxlbmdl\nacct-1".to_vec()
    );
    let purpose = consent_purpose(&OrganisationId::new("hosp-1").unwrap());
    assert_eq!(purpose, "consent:hosp-1");
    assert_eq!(
        card_message(&purpose, "abc", &account),
        b"tsunagu-card-v1\nconsent:hosp-1\nabc\nacct-1".to_vec()
    );
}

#[test]
fn a_card_signature_verifies_over_its_message_only() {
    let card = CardKey::generate().unwrap();
    let message = b"tsunagu-card-v1\nlogin\nabc\nacct-1";
    let signature = card.sign(message);
    assert!(card.public_key().verify(message, &signature));
    assert!(
        !card
            .public_key()
            .verify(b"tsunagu-card-v1\nlogin\nabd\nacct-1", &signature)
    );
    assert!(!card.public_key().verify(message, &format!("{signature}=")));
    assert!(!card.public_key().verify(message, ""));
    let other = CardKey::generate().unwrap();
    assert!(!other.public_key().verify(message, &signature));
}

#[test]
fn a_challenge_lives_two_minutes_and_is_taken_once() {
    let store = ChallengeStore::default();
    let challenge = store.issue(now()).unwrap();
    assert_eq!(challenge.expires_in, 120);
    assert_eq!(challenge.value.len(), 43);
    assert!(store.take(&challenge.value, now() + Duration::from_secs(119)));
    assert!(!store.take(&challenge.value, now()), "used once");

    let late = store.issue(now()).unwrap();
    assert!(!store.take(&late.value, now() + Duration::from_secs(120)));
    assert!(!store.take("never issued", now()));
    assert!(store.is_empty());
}

#[test]
fn the_challenge_store_is_bounded_and_drops_the_oldest_first() {
    let store = ChallengeStore::new(3);
    let challenges: Vec<Challenge> = (0..5u64)
        .map(|i| store.issue(now() + Duration::from_secs(i)).unwrap())
        .collect();
    assert_eq!(store.len(), 3);
    assert!(!store.take(&challenges[0].value, now() + Duration::from_secs(5)));
    assert!(!store.take(&challenges[1].value, now() + Duration::from_secs(5)));
    assert!(store.take(&challenges[4].value, now() + Duration::from_secs(5)));
    // Expired ones are pruned on every call.
    store.issue(now() + Duration::from_secs(500)).unwrap();
    assert_eq!(store.len(), 1);
}

#[test]
fn five_consecutive_failures_lock_a_name_for_fifteen_minutes() {
    let lockout = Lockout::default();
    let name = AccountId::new("acct-1").unwrap();
    for _ in 0..MAX_FAILED_LOGINS - 1 {
        lockout.failed(&name, now());
    }
    assert!(!lockout.is_locked(&name, now()));
    lockout.failed(&name, now());
    assert!(lockout.is_locked(&name, now()));
    assert!(lockout.is_locked(&name, now() + LOCKOUT_DURATION - Duration::from_secs(1)));
    assert!(!lockout.is_locked(&name, now() + LOCKOUT_DURATION));
    // Other names are not affected.
    assert!(!lockout.is_locked(&AccountId::new("acct-2").unwrap(), now()));
}

#[test]
fn a_success_or_fifteen_quiet_minutes_start_the_count_again() {
    let lockout = Lockout::default();
    let name = AccountId::new("acct-1").unwrap();
    for _ in 0..4 {
        lockout.failed(&name, now());
    }
    lockout.succeeded(&name);
    lockout.failed(&name, now());
    assert!(!lockout.is_locked(&name, now()));

    let later = now() + LOCKOUT_DURATION;
    for _ in 0..4 {
        lockout.failed(&name, later);
    }
    assert!(
        !lockout.is_locked(&name, later),
        "the earlier failure was forgotten"
    );
}

#[test]
fn the_lockout_is_bounded() {
    let lockout = Lockout::new(2);
    let names: Vec<AccountId> = (0..3)
        .map(|i| AccountId::new(format!("acct-{i}")).unwrap())
        .collect();
    for (offset, name) in names.iter().enumerate() {
        for _ in 0..MAX_FAILED_LOGINS {
            lockout.failed(name, now() + Duration::from_secs(offset as u64));
        }
    }
    assert!(!lockout.is_locked(&names[0], now() + Duration::from_secs(3)));
    assert!(lockout.is_locked(&names[1], now() + Duration::from_secs(3)));
    assert!(lockout.is_locked(&names[2], now() + Duration::from_secs(3)));
}

#[test]
fn account_ids_and_patient_ids_are_checked() {
    assert!(AccountId::new("acct_1.a-b~c").is_ok());
    assert!(AccountId::new("").is_err());
    assert!(AccountId::new("a b").is_err());
    assert!(AccountId::new("a".repeat(65)).is_err());
    let hash = PasswordHash::with_iterations(&password("correct horse"), 1_000).unwrap();
    let card = CardKey::generate().unwrap().public_key();
    let account = |patient: &str| {
        PatientAccount::new(
            AccountId::new("acct-1").unwrap(),
            patient,
            hash.clone(),
            card.clone(),
        )
    };
    assert!(account("patient-001.a").is_ok());
    assert!(account("patient_001").is_err());
    assert!(account("").is_err());
    assert!(account(&"p".repeat(65)).is_err());
}

/// The test vector of docs/auth.md (checked against Python's `cryptography` too): RFC 8032's
/// first test key signs a login message.
#[test]
fn the_documented_test_vector_holds() {
    let seed = hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
    let key_pair = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
    let card = CardKey::from_pkcs8_der(key_pair.to_pkcs8().unwrap().as_ref()).unwrap();
    assert_eq!(
        card.public_key().to_base64url(),
        "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    );
    let challenge = crate::jws::encode_bytes(&(0u8..32).collect::<Vec<u8>>());
    assert_eq!(challenge, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");
    let message = card_message(
        LOGIN_PURPOSE,
        &challenge,
        &AccountId::new("acct-hanako").unwrap(),
    );
    assert_eq!(
        message,
        b"tsunagu-card-v1\nlogin\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\nacct-hanako"
    );
    let signature =
        "DxXGbLCqeyIkT7e_sGftyGa5_tbDGbRislp-ueagvtO8z1yztjUiaoSXRjBDbJYL-5u-COgtbHjWPay7SxQ-CQ";
    assert_eq!(card.sign(&message), signature);
    assert!(card.public_key().verify(&message, signature));
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}
