//! JWS compact serialisation (RFC 7515) read and written by hand over aws-lc-rs, so that every
//! step that can refuse a token refuses it with its own reason.
//!
//! Only what SMART Backend Services and our own access tokens need: three base64url parts, a JSON
//! object header and payload, RS384 (RSASSA-PKCS1-v1_5, 2048–8192-bit keys) and ES384 (P-384,
//! fixed-width signatures) for client assertions, ES256 for our tokens. A `crit` header is refused
//! (we understand no extension); key-carrying headers (`jwk`, `jku`, `x5u`, `x5c`) are ignored:
//! keys come from the registry only.

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED, RSA_PKCS1_2048_8192_SHA384,
    RsaPublicKeyComponents, UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::error::AuthError;
use crate::jwk::KeyMaterial;

/// The largest token we read, in bytes: far above any honest assertion or access token.
pub(crate) const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// A parsed (not yet verified) compact JWS.
pub(crate) struct Compact<'a> {
    /// `base64url(header) . base64url(payload)`: what the signature covers.
    pub signing_input: &'a str,
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    pub signature: Vec<u8>,
}

/// Splits and decodes a compact JWS. `None` unless it has exactly three parts, each canonical
/// unpadded base64url, the first two JSON objects, and no `crit` header.
pub(crate) fn parse(token: &str) -> Option<Compact<'_>> {
    if token.len() > MAX_TOKEN_BYTES {
        return None;
    }
    let mut parts = token.split('.');
    let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let object = |part: &str| -> Option<Map<String, Value>> {
        let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
        match serde_json::from_slice(&bytes).ok()? {
            Value::Object(object) => Some(object),
            _ => None,
        }
    };
    let header_object = object(header)?;
    if header_object.contains_key("crit") {
        return None;
    }
    Some(Compact {
        signing_input: &token[..header.len() + 1 + payload.len()],
        header: header_object,
        claims: object(payload)?,
        signature: URL_SAFE_NO_PAD.decode(signature).ok()?,
    })
}

/// The algorithms a client assertion may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AssertionAlgorithm {
    Rs384,
    Es384,
}

/// Reads `alg` of a client assertion header, refusing everything but RS384 and ES384 with the
/// reason that fits.
pub(crate) fn assertion_algorithm(
    header: &Map<String, Value>,
) -> Result<AssertionAlgorithm, AuthError> {
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(AuthError::AssertionMalformed)?;
    match alg {
        "RS384" => Ok(AssertionAlgorithm::Rs384),
        "ES384" => Ok(AssertionAlgorithm::Es384),
        // Some libraries compare case-insensitively; refuse every spelling as unsigned.
        _ if alg.eq_ignore_ascii_case("none") => Err(AuthError::AlgorithmNone),
        _ if alg.to_ascii_uppercase().starts_with("HS") => Err(AuthError::AlgorithmSymmetric),
        _ => Err(AuthError::AlgorithmUnsupported),
    }
}

/// Verifies a client assertion's signature with a registered key.
///
/// # Errors
/// [`AuthError::KeyAlgorithmMismatch`] when the key is not of the algorithm's type (the
/// algorithm is fixed by the header *and* the key: an RSA key never verifies an ES384 signature
/// and vice versa); [`AuthError::BadSignature`] when the signature does not verify.
pub(crate) fn verify_assertion(
    algorithm: AssertionAlgorithm,
    key: &KeyMaterial,
    compact: &Compact<'_>,
) -> Result<(), AuthError> {
    let message = compact.signing_input.as_bytes();
    let verified = match (algorithm, key) {
        (AssertionAlgorithm::Rs384, KeyMaterial::Rsa { n, e }) => RsaPublicKeyComponents { n, e }
            .verify(&RSA_PKCS1_2048_8192_SHA384, message, &compact.signature),
        (AssertionAlgorithm::Es384, KeyMaterial::EcP384 { point }) => {
            UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, point)
                .verify(message, &compact.signature)
        }
        _ => return Err(AuthError::KeyAlgorithmMismatch),
    };
    verified.map_err(|_| AuthError::BadSignature)
}

/// Verifies an ES256 signature with an uncompressed P-256 public key.
pub(crate) fn verify_es256(public_key: &[u8], compact: &Compact<'_>) -> bool {
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public_key)
        .verify(compact.signing_input.as_bytes(), &compact.signature)
        .is_ok()
}

/// `base64url(json)` of a header or payload.
pub(crate) fn encode_part(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// `base64url(bytes)`.
pub(crate) fn encode_bytes(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The latest NumericDate we accept: 1e11 seconds, in the year 5138. Bounding dates keeps every
/// sum and difference of them far from overflow, whatever an attacker writes.
const MAX_NUMERIC_DATE: i64 = 100_000_000_000;

/// A NumericDate claim (RFC 7519 §2) as whole seconds: integers, or decimals rounded down, from
/// 0 to [`MAX_NUMERIC_DATE`]. `Some(Err(()))` for anything else.
pub(crate) fn numeric_date(claims: &Map<String, Value>, name: &str) -> Option<Result<i64, ()>> {
    let value = claims.get(name)?;
    let seconds = value.as_i64().or_else(|| {
        value
            .as_f64()
            .filter(|seconds| seconds.is_finite() && seconds.abs() < 1e15)
            .map(|seconds| seconds.floor() as i64)
    });
    Some(
        seconds
            .filter(|seconds| (0..=MAX_NUMERIC_DATE).contains(seconds))
            .ok_or(()),
    )
}
