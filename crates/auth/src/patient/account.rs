//! A patient's account and its two factors: the password, kept only as a salted PBKDF2 hash, and
//! the card's Ed25519 public key.
//!
//! The hash is a self-describing string, `pbkdf2-sha256$<iterations>$<salt>$<hash>` (salt and
//! hash in unpadded base64url; a 16-byte random salt per account, a 32-byte PBKDF2-HMAC-SHA256
//! output), so that the iteration count can be raised for new passwords while old hashes still
//! verify. Comparison is constant-time (`aws_lc_rs::pbkdf2::verify`).

use std::fmt;
use std::num::NonZeroU32;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::pbkdf2;
use aws_lc_rs::signature::{ED25519, ParsedPublicKey, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::model::{ModelError, invalid, unix_seconds};
use crate::pem;

/// A patient account's id (the `username` of a login, `sub` of a patient token): 1–64
/// characters of `A–Z a–z 0–9 - . _ ~`, like a client id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(String);

impl AccountId {
    /// Parses an account id.
    ///
    /// # Errors
    /// [`ModelError`] when the id is empty, longer than 64 characters or uses other characters.
    pub fn new(id: impl Into<String>) -> Result<Self, ModelError> {
        let id = id.into();
        let ok = (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        if ok {
            Ok(AccountId(id))
        } else {
            Err(invalid(
                "account id",
                "1-64 characters of A-Z a-z 0-9 - . _ ~",
            ))
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AccountId {
    type Error = ModelError;
    fn try_from(value: String) -> Result<Self, ModelError> {
        AccountId::new(value)
    }
}

impl From<AccountId> for String {
    fn from(value: AccountId) -> String {
        value.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `id` can be the logical id of a FHIR resource: 1–64 characters of `A–Z a–z 0–9 - .`.
pub(crate) fn is_fhir_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// A new password, checked against the policy: at least [`Password::MIN_CHARACTERS`] characters,
/// at most [`Password::MAX_BYTES`] bytes of UTF-8. Compared as given: no trimming, no Unicode
/// normalisation. `Debug` never shows it.
pub struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

impl Password {
    /// The fewest characters (Unicode scalar values) a password may have.
    pub const MIN_CHARACTERS: usize = 8;
    /// The most bytes a password may have.
    pub const MAX_BYTES: usize = 1024;

    /// Checks `text` against the policy.
    ///
    /// # Errors
    /// [`ModelError`] naming the rule (never the password) when it is too short or too long.
    pub fn new(text: impl Into<String>) -> Result<Self, ModelError> {
        let text = text.into();
        if !Self::within_policy(&text) {
            return Err(invalid(
                "password",
                "at least 8 characters and at most 1024 bytes",
            ));
        }
        Ok(Password(text))
    }

    fn within_policy(text: &str) -> bool {
        text.len() <= Self::MAX_BYTES && text.chars().count() >= Self::MIN_CHARACTERS
    }
}

/// The length of the PBKDF2 output we keep.
const HASH_BYTES: usize = 32;
/// The length of the random salt of a new hash.
const SALT_BYTES: usize = 16;
/// The first field of the encoded hash.
const HASH_SCHEME: &str = "pbkdf2-sha256";

/// A password's PBKDF2-HMAC-SHA256 hash, with its salt and iteration count. `Debug` shows only
/// the iteration count; the encoded string is for the directory file and nothing else.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PasswordHash {
    iterations: NonZeroU32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHash")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl PasswordHash {
    /// The iteration count of new hashes: OWASP's 2023 figure for PBKDF2-HMAC-SHA256.
    pub const DEFAULT_ITERATIONS: u32 = 210_000;
    /// The fewest iterations accepted, for new hashes and in the file (tests use this).
    pub const MIN_ITERATIONS: u32 = 1_000;

    /// Hashes `password` with a fresh random salt and [`PasswordHash::DEFAULT_ITERATIONS`].
    ///
    /// # Errors
    /// [`ModelError`] when the system has no randomness.
    pub fn new(password: &Password) -> Result<Self, ModelError> {
        Self::with_iterations(password, Self::DEFAULT_ITERATIONS)
    }

    /// Hashes `password` with a fresh random salt and `iterations` (at least
    /// [`PasswordHash::MIN_ITERATIONS`]; fewer than the default only for tests).
    ///
    /// # Errors
    /// [`ModelError`] when `iterations` is below the minimum or the system has no randomness.
    pub fn with_iterations(password: &Password, iterations: u32) -> Result<Self, ModelError> {
        let iterations = NonZeroU32::new(iterations)
            .filter(|count| count.get() >= Self::MIN_ITERATIONS)
            .ok_or(invalid("password hash", "at least 1000 iterations"))?;
        let mut salt = vec![0u8; SALT_BYTES];
        aws_lc_rs::rand::fill(&mut salt).map_err(|_| invalid("password hash", "no randomness"))?;
        let mut hash = vec![0u8; HASH_BYTES];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            iterations,
            &salt,
            password.0.as_bytes(),
            &mut hash,
        );
        Ok(PasswordHash {
            iterations,
            salt,
            hash,
        })
    }

    /// Reads the encoded form, `pbkdf2-sha256$<iterations>$<salt>$<hash>`.
    ///
    /// # Errors
    /// [`ModelError`] for anything else (the message never repeats the input).
    pub fn parse(encoded: &str) -> Result<Self, ModelError> {
        let malformed = || {
            invalid(
                "password hash",
                "pbkdf2-sha256$<iterations>$<salt>$<hash> (base64url)",
            )
        };
        let mut fields = encoded.split('$');
        let (Some(scheme), Some(iterations), Some(salt), Some(hash), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(malformed());
        };
        if scheme != HASH_SCHEME || !iterations.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed());
        }
        let iterations = iterations
            .parse::<u32>()
            .ok()
            .and_then(NonZeroU32::new)
            .filter(|count| count.get() >= Self::MIN_ITERATIONS)
            .ok_or_else(malformed)?;
        let salt = URL_SAFE_NO_PAD.decode(salt).map_err(|_| malformed())?;
        let hash = URL_SAFE_NO_PAD.decode(hash).map_err(|_| malformed())?;
        if !(SALT_BYTES..=64).contains(&salt.len()) || hash.len() != HASH_BYTES {
            return Err(malformed());
        }
        Ok(PasswordHash {
            iterations,
            salt,
            hash,
        })
    }

    /// The encoded form stored in the directory file. Never log it: it allows offline guessing.
    pub fn encoded(&self) -> String {
        format!(
            "{HASH_SCHEME}${}${}${}",
            self.iterations,
            URL_SAFE_NO_PAD.encode(&self.salt),
            URL_SAFE_NO_PAD.encode(&self.hash)
        )
    }

    /// The iteration count.
    pub fn iterations(&self) -> u32 {
        self.iterations.get()
    }

    /// Whether `candidate` is the password, compared in constant time. A candidate outside the
    /// policy is refused without hashing (it cannot be the password, and a megabyte-long one
    /// should not cost us the work).
    pub fn verify(&self, candidate: &str) -> bool {
        Password::within_policy(candidate)
            && pbkdf2::verify(
                pbkdf2::PBKDF2_HMAC_SHA256,
                self.iterations,
                &self.salt,
                candidate.as_bytes(),
                &self.hash,
            )
            .is_ok()
    }
}

impl TryFrom<String> for PasswordHash {
    type Error = ModelError;
    fn try_from(value: String) -> Result<Self, ModelError> {
        PasswordHash::parse(&value)
    }
}

impl From<PasswordHash> for String {
    fn from(value: PasswordHash) -> String {
        value.encoded()
    }
}

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): SEQUENCE { SEQUENCE { OID
/// 1.3.101.112 }, BIT STRING (0 unused bits) }, followed by the 32 key bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// The PEM label of a SubjectPublicKeyInfo.
const PUBLIC_KEY_LABEL: &str = "PUBLIC KEY";

/// A card's Ed25519 public key (32 bytes). Stored as unpadded base64url; read from that or from a
/// `-----BEGIN PUBLIC KEY-----` PEM (SubjectPublicKeyInfo, RFC 8410). `Debug` does not show it:
/// it identifies a patient's card.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CardPublicKey([u8; 32]);

impl fmt::Debug for CardPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CardPublicKey(Ed25519)")
    }
}

impl CardPublicKey {
    /// The raw 32-byte key.
    ///
    /// # Errors
    /// [`ModelError`] when it is not 32 bytes or not an Ed25519 public key.
    pub fn from_raw(bytes: &[u8]) -> Result<Self, ModelError> {
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| invalid("card public key", "32 bytes of Ed25519 public key"))?;
        ParsedPublicKey::new(&ED25519, key)
            .map_err(|_| invalid("card public key", "32 bytes of Ed25519 public key"))?;
        Ok(CardPublicKey(key))
    }

    /// The public half of a key pair aws-lc-rs made or accepted (valid by construction).
    pub(super) fn of_key_pair(raw: [u8; 32]) -> Self {
        CardPublicKey(raw)
    }

    /// Reads a PEM SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`) or the unpadded base64url
    /// of the 32 raw bytes (surrounding whitespace ignored).
    ///
    /// # Errors
    /// [`ModelError`] for anything else, a private key included.
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        if pem::contains(text, PUBLIC_KEY_LABEL) {
            let der = pem::decode(text, PUBLIC_KEY_LABEL).unwrap_or_default();
            let raw = der.strip_prefix(&ED25519_SPKI_PREFIX[..]).ok_or(invalid(
                "card public key",
                "an Ed25519 SubjectPublicKeyInfo",
            ))?;
            return Self::from_raw(raw);
        }
        let raw = URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| invalid("card public key", "a PEM public key or base64url"))?;
        Self::from_raw(&raw)
    }

    /// The unpadded base64url of the 32 bytes (the directory file's form).
    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// The key as a `-----BEGIN PUBLIC KEY-----` PEM (SubjectPublicKeyInfo).
    pub fn to_pem(&self) -> String {
        let mut der = ED25519_SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.0);
        pem::encode(PUBLIC_KEY_LABEL, &der)
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether `signature_base64url` (unpadded base64url of the 64-byte signature) is this
    /// card's Ed25519 signature of `message`.
    pub fn verify(&self, message: &[u8], signature_base64url: &str) -> bool {
        match URL_SAFE_NO_PAD.decode(signature_base64url) {
            Ok(signature) => UnparsedPublicKey::new(&ED25519, self.0)
                .verify(message, &signature)
                .is_ok(),
            Err(_) => false,
        }
    }
}

impl TryFrom<String> for CardPublicKey {
    type Error = ModelError;
    fn try_from(value: String) -> Result<Self, ModelError> {
        CardPublicKey::parse(&value)
    }
}

impl From<CardPublicKey> for String {
    fn from(value: CardPublicKey) -> String {
        value.to_base64url()
    }
}

/// A patient's account: who they are (the `Patient` resource), and their two factors. At most one
/// enabled account per patient. `Debug` shows the account id and whether it is disabled, nothing else.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "AccountRecord", into = "AccountRecord")]
pub struct PatientAccount {
    account_id: AccountId,
    patient: String,
    password: PasswordHash,
    card: CardPublicKey,
    disabled_at: Option<SystemTime>,
}

impl fmt::Debug for PatientAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PatientAccount")
            .field("account_id", &self.account_id)
            .field("disabled", &self.is_disabled())
            .finish_non_exhaustive()
    }
}

impl PatientAccount {
    /// A new, enabled account for the `Patient` with logical id `patient`.
    ///
    /// # Errors
    /// [`ModelError`] when `patient` is not a FHIR logical id (1–64 characters of
    /// `A–Z a–z 0–9 - .`).
    pub fn new(
        account_id: AccountId,
        patient: impl Into<String>,
        password: PasswordHash,
        card: CardPublicKey,
    ) -> Result<Self, ModelError> {
        let patient = patient.into();
        if !is_fhir_id(&patient) {
            return Err(invalid("patient", "1-64 characters of A-Z a-z 0-9 - ."));
        }
        Ok(PatientAccount {
            account_id,
            patient,
            password,
            card,
            disabled_at: None,
        })
    }

    /// The account id.
    pub fn account_id(&self) -> &AccountId {
        &self.account_id
    }

    /// The logical id of the patient's `Patient` resource: the compartment their tokens reach.
    pub fn patient(&self) -> &str {
        &self.patient
    }

    /// The password hash.
    pub fn password(&self) -> &PasswordHash {
        &self.password
    }

    /// The card's public key.
    pub fn card(&self) -> &CardPublicKey {
        &self.card
    }

    /// When the account was disabled: it logs in no more, and its tokens stop working.
    pub fn disabled_at(&self) -> Option<SystemTime> {
        self.disabled_at
    }

    /// Whether it is disabled.
    pub fn is_disabled(&self) -> bool {
        self.disabled_at.is_some()
    }

    pub(crate) fn disable(&mut self, at: SystemTime) {
        // The first time counts, as for revoked clients.
        self.disabled_at.get_or_insert(at);
    }
}

/// The directory file's shape of a [`PatientAccount`]; `disabled_at` in seconds since the Unix
/// epoch.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountRecord {
    account_id: AccountId,
    patient: String,
    password: PasswordHash,
    card_public_key: CardPublicKey,
    #[serde(default)]
    disabled_at: Option<u64>,
}

impl TryFrom<AccountRecord> for PatientAccount {
    type Error = ModelError;
    fn try_from(record: AccountRecord) -> Result<Self, ModelError> {
        let mut account = PatientAccount::new(
            record.account_id,
            record.patient,
            record.password,
            record.card_public_key,
        )?;
        account.disabled_at = record
            .disabled_at
            .map(|seconds| UNIX_EPOCH + Duration::from_secs(seconds));
        Ok(account)
    }
}

impl From<PatientAccount> for AccountRecord {
    fn from(account: PatientAccount) -> Self {
        AccountRecord {
            account_id: account.account_id,
            patient: account.patient,
            password: account.password,
            card_public_key: account.card,
            disabled_at: account.disabled_at.map(unix_seconds),
        }
    }
}
