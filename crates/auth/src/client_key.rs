//! The client side of SMART Backend Services, for tsunagu's own tools: the demo facilities of
//! `serve --demo`, `tsunagu client assertion` (curl walk-throughs), the security test suite and
//! the load driver. A facility's real system signs with its own stack; this is the same protocol.
//!
//! A [`ClientKey`] is an ECDSA P-384 key (ES384) in a PKCS#8 PEM file; its public half is
//! registered as a JWK Set ([`ClientKey::jwks`]); [`ClientKey::assertion`] signs a client
//! assertion carrying the acting user ([`ActingUser`], the IHE IUA claims of docs/auth.md).

use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

use crate::key::KeyError;
use crate::model::{PURPOSE_OF_USE_SYSTEM, PurposeOfUse, ROLE_SYSTEM, Role};
use crate::{ASSERTION_TYPE, GRANT_TYPE, files, jws, pem};

/// A client system's signing key (ES384). `Debug` shows only its `kid`.
pub struct ClientKey {
    key_pair: EcdsaKeyPair,
    pkcs8: Vec<u8>,
    kid: String,
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Who acts, as the facility asserts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActingUser {
    /// The organisation's registry id.
    pub organisation: String,
    /// The facility's id of the user.
    pub id: String,
    /// The user's name.
    pub name: String,
    pub role: Role,
    pub purpose_of_use: PurposeOfUse,
    pub emergency_privilege: bool,
}

impl ClientKey {
    /// A fresh key with key id `kid`.
    ///
    /// # Errors
    /// [`KeyError::Generate`] without randomness.
    pub fn generate(kid: &str) -> Result<Self, KeyError> {
        let document =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| KeyError::Generate)?;
        Self::from_pkcs8_der(document.as_ref(), kid)
    }

    fn from_pkcs8_der(der: &[u8], kid: &str) -> Result<Self, KeyError> {
        let key_pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, der)
            .map_err(|_| KeyError::Invalid)?;
        Ok(ClientKey {
            key_pair,
            pkcs8: der.to_vec(),
            kid: kid.to_owned(),
        })
    }

    /// Loads a PKCS#8 PEM P-384 key, known by `kid`.
    ///
    /// # Errors
    /// [`KeyError::Io`], [`KeyError::Invalid`].
    pub fn load(path: &Path, kid: &str) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path)?;
        Self::from_pkcs8_der(
            &pem::decode(&text, "PRIVATE KEY").ok_or(KeyError::Invalid)?,
            kid,
        )
    }

    /// Writes the private key to `path` (mode 0600), replacing it.
    ///
    /// # Errors
    /// [`KeyError::Io`].
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        files::replace(
            path,
            pem::encode("PRIVATE KEY", &self.pkcs8).as_bytes(),
            0o600,
        )?;
        Ok(())
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK Set (what `tsunagu client add --jwks` registers).
    pub fn jwks(&self) -> Value {
        let point = self.key_pair.public_key().as_ref();
        json!({"keys": [{
            "kty": "EC", "crv": "P-384", "kid": self.kid, "alg": "ES384", "use": "sig",
            "x": jws::encode_bytes(&point[1..49]), "y": jws::encode_bytes(&point[49..]),
        }]})
    }

    /// A client assertion of `client_id` for `token_endpoint`, acting as `user`, issued at `now`
    /// and valid for `lifetime` (at most five minutes are accepted).
    ///
    /// # Errors
    /// [`KeyError::Generate`] when signing fails (no randomness).
    pub fn assertion(
        &self,
        client_id: &str,
        token_endpoint: &str,
        user: &ActingUser,
        now: SystemTime,
        lifetime: Duration,
    ) -> Result<String, KeyError> {
        let issued = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let mut nonce = [0u8; 16];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| KeyError::Generate)?;
        let header = json!({"alg": "ES384", "typ": "JWT", "kid": self.kid});
        let claims = json!({
            "iss": client_id, "sub": client_id, "aud": token_endpoint,
            "iat": issued, "exp": issued + lifetime.as_secs(),
            "jti": jws::encode_bytes(&nonce),
            "extensions": {
                "ihe_iua": {
                    "subject_name": user.name,
                    "subject_organization_id": user.organisation,
                    "subject_role": {"system": ROLE_SYSTEM, "code": user.role.code()},
                    "purpose_of_use": {"system": PURPOSE_OF_USE_SYSTEM, "code": user.purpose_of_use.code()},
                },
                "tsunagu": {"user_id": user.id, "emergency_privilege": user.emergency_privilege},
            },
        });
        self.sign(&header, &claims)
    }

    /// Signs any header and claims with this key (ES384), whatever they say: for tools and tests
    /// that build assertions by hand (including ones the server must refuse).
    ///
    /// # Errors
    /// [`KeyError::Generate`] when signing fails.
    pub fn sign(&self, header: &Value, claims: &Value) -> Result<String, KeyError> {
        let input = format!("{}.{}", jws::encode_part(header), jws::encode_part(claims));
        let signature = self
            .key_pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .map_err(|_| KeyError::Generate)?;
        Ok(format!("{input}.{}", jws::encode_bytes(signature.as_ref())))
    }
}

/// The token request form for an assertion and the space-separated `scope`.
pub fn token_request(assertion: &str, scope: &str) -> Vec<(String, String)> {
    vec![
        ("grant_type".into(), GRANT_TYPE.into()),
        ("client_assertion_type".into(), ASSERTION_TYPE.into()),
        ("client_assertion".into(), assertion.into()),
        ("scope".into(), scope.into()),
    ]
}
