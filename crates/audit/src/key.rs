//! The Ed25519 key pair that signs tree heads, and the public key verifiers hold.
//!
//! Files are PEM: the private key as PKCS#8 (`-----BEGIN PRIVATE KEY-----`, what
//! `openssl genpkey -algorithm ed25519` writes), the public key as SubjectPublicKeyInfo
//! (`-----BEGIN PUBLIC KEY-----`, what `openssl pkey -pubout` writes). A private key file is created
//! with mode 0600 and refused when group or others may read it, as ssh does.

use std::fmt;
use std::io::Write;
use std::path::Path;

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::Digest;

use crate::hash::Hash;

/// What went wrong with a key or key file. Messages name the file, never key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read, created or written.
    #[error("key file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A private key file that group or others may access.
    #[error("key file {path} is accessible by group or others (mode {mode:o}); chmod 600 it")]
    TooOpen { path: String, mode: u32 },
    /// The text is not a PEM Ed25519 key of the expected kind.
    #[error("not a PEM Ed25519 {0} key")]
    Malformed(&'static str),
    /// The operating system's random source failed.
    #[error("no randomness for a new key")]
    Random,
}

/// The private key of the audit log. `Debug` shows only the key id.
pub struct AuditKey {
    signing: SigningKey,
}

/// The public half: what `tsunagu audit verify` and outside witnesses need.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    verifying: VerifyingKey,
}

impl AuditKey {
    /// A fresh key from the operating system's random source.
    ///
    /// # Errors
    /// [`KeyError::Random`] if there is no randomness.
    pub fn generate() -> Result<AuditKey, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|_| KeyError::Random)?;
        let key = AuditKey {
            signing: SigningKey::from_bytes(&seed),
        };
        seed.fill(0);
        Ok(key)
    }

    /// Parses a PKCS#8 PEM private key.
    ///
    /// # Errors
    /// [`KeyError::Malformed`] unless it is one.
    pub fn from_pkcs8_pem(pem: &str) -> Result<AuditKey, KeyError> {
        SigningKey::from_pkcs8_pem(pem)
            .map(|signing| AuditKey { signing })
            .map_err(|_| KeyError::Malformed("private"))
    }

    /// Loads a private key file, refusing one that group or others may access.
    ///
    /// # Errors
    /// The file cannot be read, is too open, or holds no Ed25519 PKCS#8 key.
    pub fn load(path: impl AsRef<Path>) -> Result<AuditKey, KeyError> {
        let path = path.as_ref();
        check_private_mode(path)?;
        let text = std::fs::read_to_string(path).map_err(|source| io_error(path, source))?;
        AuditKey::from_pkcs8_pem(&text)
    }

    /// Generates a key and writes it to a new file with mode 0600. Never overwrites a file.
    ///
    /// # Errors
    /// The file exists or cannot be written; no randomness.
    pub fn generate_to_file(path: impl AsRef<Path>) -> Result<AuditKey, KeyError> {
        let path = path.as_ref();
        let key = AuditKey::generate()?;
        let pem = key
            .signing
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|_| KeyError::Malformed("private"))?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(path)
            .map_err(|source| io_error(path, source))?;
        file.write_all(pem.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|source| io_error(path, source))?;
        Ok(key)
    }

    /// Loads the key at `path`, or generates it there if there is no file. The flag says whether
    /// it was generated (the caller should then publish the public key).
    ///
    /// # Errors
    /// As [`AuditKey::load`] and [`AuditKey::generate_to_file`].
    pub fn load_or_generate(path: impl AsRef<Path>) -> Result<(AuditKey, bool), KeyError> {
        let path = path.as_ref();
        match AuditKey::load(path) {
            Err(KeyError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                AuditKey::generate_to_file(path).map(|key| (key, true))
            }
            other => other.map(|key| (key, false)),
        }
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            verifying: self.signing.verifying_key(),
        }
    }

    /// An Ed25519 signature over `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditKey")
            .field("key_id", &self.public_key().key_id())
            .finish_non_exhaustive()
    }
}

impl PublicKey {
    /// Parses a SubjectPublicKeyInfo PEM public key.
    ///
    /// # Errors
    /// [`KeyError::Malformed`] unless it is one.
    pub fn from_pem(pem: &str) -> Result<PublicKey, KeyError> {
        VerifyingKey::from_public_key_pem(pem)
            .map(|verifying| PublicKey { verifying })
            .map_err(|_| KeyError::Malformed("public"))
    }

    /// Loads a public key file.
    ///
    /// # Errors
    /// The file cannot be read or holds no Ed25519 public key.
    pub fn load(path: impl AsRef<Path>) -> Result<PublicKey, KeyError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| io_error(path, source))?;
        PublicKey::from_pem(&text)
    }

    /// The SubjectPublicKeyInfo PEM text.
    pub fn to_pem(&self) -> String {
        self.verifying
            .to_public_key_pem(LineEnding::LF)
            .expect("an Ed25519 public key always encodes")
    }

    /// The raw 32-byte key.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.verifying.to_bytes()
    }

    /// SHA-256 of the DER SubjectPublicKeyInfo, like an RFC 6962 log id: names the key in
    /// the log's metadata and in reports.
    pub fn key_id(&self) -> Hash {
        let der = self
            .verifying
            .to_public_key_der()
            .expect("an Ed25519 public key always encodes");
        Hash(sha2::Sha256::digest(der.as_bytes()).into())
    }

    /// Whether `signature` is this key's strict Ed25519 signature over `message`.
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let signature = ed25519_dalek::Signature::from_bytes(signature);
        self.verifying.verify_strict(message, &signature).is_ok()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.key_id())
    }
}

fn io_error(path: &Path, source: std::io::Error) -> KeyError {
    KeyError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Refuses a private key file that group or others may access.
fn check_private_mode(path: &Path) -> Result<(), KeyError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let metadata = std::fs::metadata(path).map_err(|source| io_error(path, source))?;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::TooOpen {
                path: path.display().to_string(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests;
