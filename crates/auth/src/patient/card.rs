//! What a patient's card signs, and a software card.
//!
//! The card signs, with Ed25519, the UTF-8 bytes of four lines joined by `\n` (no trailing
//! newline):
//!
//! ```text
//! tsunagu-card-v1
//! <purpose>
//! <challenge>
//! <account id>
//! ```
//!
//! where `<purpose>` is `login` (a patient's login) or `consent:<organisation id>` (a consent
//! given at that organisation's reception), `<challenge>` is the challenge exactly as the server
//! issued it (43 characters of base64url) and `<account id>` the patient's account id. None of
//! the fields can hold a newline, so the message is unambiguous; the first line keeps a card
//! signature for tsunagu from meaning anything elsewhere, and the purpose keeps a login signature
//! from being presented as a consent (or a consent for one facility as one for another).
//!
//! [`CardKey`] is a card in software (an Ed25519 key in a PKCS#8 file), for the demo, the tests
//! and `tsunagu card sign`.

use std::fmt;
use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};

use super::account::{AccountId, CardPublicKey};
use crate::files;
use crate::jws;
use crate::model::OrganisationId;
use crate::pem;

/// The first line of every card message.
pub const CARD_MESSAGE_VERSION: &str = "tsunagu-card-v1";
/// The purpose of a login signature.
pub const LOGIN_PURPOSE: &str = "login";

/// The purpose of a consent captured at `organisation`'s reception: `consent:<organisation id>`.
pub fn consent_purpose(organisation: &OrganisationId) -> String {
    format!("consent:{organisation}")
}

/// The bytes a card signs for `purpose` ([`LOGIN_PURPOSE`] or [`consent_purpose`]), `challenge`
/// (as issued) and `account` (module doc).
pub fn card_message(purpose: &str, challenge: &str, account: &AccountId) -> Vec<u8> {
    format!("{CARD_MESSAGE_VERSION}\n{purpose}\n{challenge}\n{account}").into_bytes()
}

/// Why a card key could not be loaded, saved or made.
#[derive(Debug, thiserror::Error)]
pub enum CardKeyError {
    /// The key file could not be read or written.
    #[error("the card key file could not be read or written")]
    Io(#[from] std::io::Error),
    /// The key file already exists (a card key is never overwritten).
    #[error("the card key file already exists")]
    Exists,
    /// The file does not hold a PKCS#8 (PEM or DER) Ed25519 private key.
    #[error("the card key file does not hold a PKCS#8 Ed25519 private key")]
    Invalid,
    /// The key could not be generated.
    #[error("the card key could not be generated")]
    Generate,
}

const PRIVATE_KEY_LABEL: &str = "PRIVATE KEY";

/// A card in software: an Ed25519 key pair. `Debug` shows nothing of it.
pub struct CardKey {
    key_pair: Ed25519KeyPair,
    pkcs8: Vec<u8>,
}

impl fmt::Debug for CardKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CardKey([redacted])")
    }
}

impl CardKey {
    /// A fresh random key pair.
    ///
    /// # Errors
    /// [`CardKeyError::Generate`] when the system has no randomness.
    pub fn generate() -> Result<Self, CardKeyError> {
        let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| CardKeyError::Generate)?;
        Self::from_pkcs8_der(document.as_ref())
    }

    /// Reads a PKCS#8 (v1 or v2) DER Ed25519 private key.
    ///
    /// # Errors
    /// [`CardKeyError::Invalid`] for anything else.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, CardKeyError> {
        let key_pair = Ed25519KeyPair::from_pkcs8(der).map_err(|_| CardKeyError::Invalid)?;
        Ok(CardKey {
            key_pair,
            pkcs8: der.to_vec(),
        })
    }

    /// Reads a `-----BEGIN PRIVATE KEY-----` PEM (PKCS#8) Ed25519 private key.
    ///
    /// # Errors
    /// [`CardKeyError::Invalid`] for anything else.
    pub fn from_pkcs8_pem(text: &str) -> Result<Self, CardKeyError> {
        let der = pem::decode(text, PRIVATE_KEY_LABEL).ok_or(CardKeyError::Invalid)?;
        Self::from_pkcs8_der(&der)
    }

    /// Loads the key at `path`: PKCS#8 PEM, or DER.
    ///
    /// # Errors
    /// [`CardKeyError::Io`] when it cannot be read, [`CardKeyError::Invalid`] when it is not a key.
    pub fn load(path: &Path) -> Result<Self, CardKeyError> {
        let bytes = std::fs::read(path)?;
        match std::str::from_utf8(&bytes) {
            Ok(text) if pem::contains(text, PRIVATE_KEY_LABEL) => Self::from_pkcs8_pem(text),
            _ => Self::from_pkcs8_der(&bytes),
        }
    }

    /// Writes the key to `path` as PKCS#8 PEM, readable by its owner only (mode 0600), atomically.
    ///
    /// # Errors
    /// [`CardKeyError::Exists`] when there is a file at `path` already (it is left alone),
    /// [`CardKeyError::Io`] when it cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), CardKeyError> {
        if files::create_new(path, self.to_pkcs8_pem().as_bytes(), 0o600)? {
            Ok(())
        } else {
            Err(CardKeyError::Exists)
        }
    }

    /// The private key as PKCS#8 PEM. Handle with care: it is the card.
    pub fn to_pkcs8_pem(&self) -> String {
        pem::encode(PRIVATE_KEY_LABEL, &self.pkcs8)
    }

    /// The public key, to register with the patient's account.
    pub fn public_key(&self) -> CardPublicKey {
        // An Ed25519 public key is always 32 bytes.
        let mut raw = [0u8; 32];
        raw.copy_from_slice(self.key_pair.public_key().as_ref());
        CardPublicKey::of_key_pair(raw)
    }

    /// Signs `message` (see [`card_message`]): the unpadded base64url of the 64-byte signature.
    pub fn sign(&self, message: &[u8]) -> String {
        jws::encode_bytes(self.key_pair.sign(message).as_ref())
    }
}
