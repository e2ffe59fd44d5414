//! The service's own signing key: an ECDSA P-256 key (ES256) that signs every access token, kept
//! in a PKCS#8 PEM file that is created, readable by its owner only, on first start.
//!
//! ES256 rather than EdDSA: both are fast to verify, but ES256 is what every JOSE library and
//! FHIR client stack supports, should a resource server other than ours ever verify our tokens.
//! Rotation: replace the file and restart; tokens signed by the old key stop verifying, and
//! clients simply exchange a new assertion (tokens live five minutes at most).

use std::fmt;
use std::path::Path;

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

use crate::files;
use crate::jws;
use crate::pem;

/// Why the service key could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read or written.
    #[error("the service key file could not be read or written")]
    Io(#[from] std::io::Error),
    /// The file does not hold a PKCS#8 PEM ECDSA P-256 private key.
    #[error("the service key file does not hold a PKCS#8 PEM P-256 private key")]
    Invalid,
    /// The key could not be generated.
    #[error("the service key could not be generated")]
    Generate,
}

/// The access-token signing key. `Debug` shows only its `kid`.
pub struct ServiceKey {
    key_pair: EcdsaKeyPair,
    pkcs8: Vec<u8>,
    kid: String,
}

impl fmt::Debug for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

const PEM_LABEL: &str = "PRIVATE KEY";

impl ServiceKey {
    /// A fresh random key.
    ///
    /// # Errors
    /// [`KeyError::Generate`] when the system has no randomness.
    pub fn generate() -> Result<Self, KeyError> {
        let document =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| KeyError::Generate)?;
        Self::from_pkcs8_der(document.as_ref())
    }

    /// Reads a PKCS#8 DER P-256 private key.
    ///
    /// # Errors
    /// [`KeyError::Invalid`] for anything else.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let key_pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map_err(|_| KeyError::Invalid)?;
        let kid = thumbprint(key_pair.public_key().as_ref());
        Ok(ServiceKey {
            key_pair,
            pkcs8: der.to_vec(),
            kid,
        })
    }

    /// Reads a `-----BEGIN PRIVATE KEY-----` PEM (PKCS#8) P-256 private key.
    ///
    /// # Errors
    /// [`KeyError::Invalid`] for anything else.
    pub fn from_pkcs8_pem(text: &str) -> Result<Self, KeyError> {
        let der = pem::decode(text, PEM_LABEL).ok_or(KeyError::Invalid)?;
        Self::from_pkcs8_der(&der)
    }

    /// The key as PKCS#8 PEM.
    pub fn to_pkcs8_pem(&self) -> String {
        pem::encode(PEM_LABEL, &self.pkcs8)
    }

    /// Loads the key at `path`.
    ///
    /// # Errors
    /// [`KeyError::Io`] when it cannot be read, [`KeyError::Invalid`] when it is not a key.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        Self::from_pkcs8_pem(&std::fs::read_to_string(path)?)
    }

    /// Loads the key at `path`, first creating it (mode 0600, atomically) when there is none.
    /// Two processes starting at once end up with the same key.
    ///
    /// # Errors
    /// [`KeyError`] when the file cannot be read, written or parsed.
    pub fn load_or_generate(path: &Path) -> Result<Self, KeyError> {
        if !path.exists() {
            let key = ServiceKey::generate()?;
            if files::create_new(path, key.to_pkcs8_pem().as_bytes(), 0o600)? {
                return Ok(key);
            }
        }
        Self::load(path)
    }

    /// The key id in our tokens' headers: the RFC 7638 JWK thumbprint (SHA-256) of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK (with `kid`, `alg: ES256`, `use: sig`), should a JWK Set endpoint
    /// ever publish it.
    pub fn public_jwk(&self) -> Value {
        let (x, y) = coordinates(self.key_pair.public_key().as_ref());
        json!({
            "kty": "EC", "crv": "P-256", "x": x, "y": y,
            "kid": self.kid, "alg": "ES256", "use": "sig",
        })
    }

    /// The uncompressed public point.
    pub(crate) fn public_key(&self) -> &[u8] {
        self.key_pair.public_key().as_ref()
    }

    /// Signs `message` (ES256, fixed-width r || s).
    pub(crate) fn sign(&self, message: &[u8]) -> Option<Vec<u8>> {
        self.key_pair
            .sign(&SystemRandom::new(), message)
            .ok()
            .map(|signature| signature.as_ref().to_vec())
    }
}

/// The base64url x and y of an uncompressed P-256 point.
fn coordinates(point: &[u8]) -> (String, String) {
    let (x, y) = point
        .get(1..)
        .unwrap_or_default()
        .split_at(32.min(point.len().saturating_sub(1)));
    (jws::encode_bytes(x), jws::encode_bytes(y))
}

fn thumbprint(point: &[u8]) -> String {
    let (x, y) = coordinates(point);
    // RFC 7638: the required members only, in lexicographic order, no whitespace.
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    jws::encode_bytes(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
}
