//! The Ed25519 key pair that signs tree heads, and the public key verifiers hold.
//!
//! Files are PEM: the private key as PKCS#8 (`-----BEGIN PRIVATE KEY-----`, what
//! `openssl genpkey -algorithm ed25519` writes), the public key as SubjectPublicKeyInfo
//! (`-----BEGIN PUBLIC KEY-----`, what `openssl pkey -pubout` writes). A private key file is created
//! with mode 0600 and refused when group or others may read it, as ssh does. The cryptography is
//! aws-lc-rs, the stack the `auth` crate uses.

use std::fmt;
use std::io::Write;
use std::path::Path;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::hash::{Hash, sha256};

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
    pair: Ed25519KeyPair,
}

/// The public half: what `tsunagu audit verify` and outside witnesses need.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    bytes: [u8; 32],
}

/// DER of an Ed25519 SubjectPublicKeyInfo up to the 32 key bytes (RFC 8410).
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

impl AuditKey {
    /// A fresh key from the operating system's random source.
    ///
    /// # Errors
    /// [`KeyError::Random`] if there is no randomness.
    pub fn generate() -> Result<AuditKey, KeyError> {
        Ed25519KeyPair::generate()
            .map(|pair| AuditKey { pair })
            .map_err(|_| KeyError::Random)
    }

    /// Parses a PKCS#8 (v1 or v2) PEM private key.
    ///
    /// # Errors
    /// [`KeyError::Malformed`] unless it is one.
    pub fn from_pkcs8_pem(pem: &str) -> Result<AuditKey, KeyError> {
        let der = pem_decode(pem, "PRIVATE KEY").ok_or(KeyError::Malformed("private"))?;
        let pair = Ed25519KeyPair::from_pkcs8(&der);
        zero(der);
        pair.map(|pair| AuditKey { pair })
            .map_err(|_| KeyError::Malformed("private"))
    }

    /// Loads a private key file, refusing one that group or others may access.
    ///
    /// # Errors
    /// The file cannot be read, is too open, or holds no Ed25519 PKCS#8 key.
    pub fn load(path: impl AsRef<Path>) -> Result<AuditKey, KeyError> {
        let path = path.as_ref();
        check_private_mode(path)?;
        let text = std::fs::read(path).map_err(|source| io_error(path, source))?;
        let key = std::str::from_utf8(&text)
            .map_err(|_| KeyError::Malformed("private"))
            .and_then(AuditKey::from_pkcs8_pem);
        zero(text);
        key
    }

    /// Generates a key and writes it to a new file with mode 0600 (PKCS#8 v1, as openssl
    /// writes). Never overwrites a file.
    ///
    /// # Errors
    /// The file exists or cannot be written; no randomness.
    pub fn generate_to_file(path: impl AsRef<Path>) -> Result<AuditKey, KeyError> {
        let path = path.as_ref();
        let key = AuditKey::generate()?;
        let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key.pair)
            .map_err(|_| KeyError::Malformed("private"))?;
        let pem = pem_encode(der.as_ref(), "PRIVATE KEY");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options.open(path).and_then(|mut file| {
            file.write_all(pem.as_bytes())?;
            file.sync_all()
        });
        zero(pem.into_bytes());
        written.map_err(|source| io_error(path, source))?;
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
        let bytes = <[u8; 32]>::try_from(self.pair.public_key().as_ref())
            .expect("an Ed25519 public key is 32 bytes");
        PublicKey { bytes }
    }

    /// An Ed25519 signature over `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        <[u8; 64]>::try_from(self.pair.sign(message).as_ref())
            .expect("an Ed25519 signature is 64 bytes")
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
    /// [`KeyError::Malformed`] unless it is an Ed25519 one.
    pub fn from_pem(pem: &str) -> Result<PublicKey, KeyError> {
        let der = pem_decode(pem, "PUBLIC KEY").ok_or(KeyError::Malformed("public"))?;
        der.strip_prefix(&SPKI_PREFIX)
            .and_then(|key| <[u8; 32]>::try_from(key).ok())
            .map(|bytes| PublicKey { bytes })
            .ok_or(KeyError::Malformed("public"))
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
        pem_encode(&self.spki_der(), "PUBLIC KEY")
    }

    /// The raw 32-byte key.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.bytes
    }

    /// SHA-256 of the DER SubjectPublicKeyInfo, like an RFC 6962 log id: names the key in
    /// the log's metadata and in reports.
    pub fn key_id(&self) -> Hash {
        sha256(&[&self.spki_der()])
    }

    /// Whether `signature` is this key's Ed25519 signature over `message`.
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.bytes)
            .verify(message, signature)
            .is_ok()
    }

    fn spki_der(&self) -> Vec<u8> {
        [&SPKI_PREFIX[..], &self.bytes].concat()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.key_id())
    }
}

/// The DER inside the first `-----BEGIN {label}-----` block.
fn pem_decode(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let body = pem.split_once(&begin)?.1.split_once(&end)?.0;
    let base64: String = body.split_whitespace().collect();
    STANDARD.decode(base64).ok()
}

/// PEM with 64-character lines and a final newline.
fn pem_encode(der: &[u8], label: &str) -> String {
    let base64 = STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in base64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

/// Overwrites a buffer that held key material before it is freed.
fn zero(mut bytes: Vec<u8>) {
    bytes.fill(0);
    std::hint::black_box(&bytes);
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
