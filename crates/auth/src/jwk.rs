//! Clients' public keys: JWK Sets (RFC 7517) holding only the keys SMART Backend Services allows
//! (RSA of 2048–8192 bits for RS384, EC P-384 for ES384), and JWK Set URLs on an allow-list.
//!
//! A registered set is checked strictly: every key has a unique `kid`, is of a supported type and
//! carries no private member (`d`, `p`, `q`, …): a JWK Set file holding a private key is a mistake
//! that must be refused rather than stored. A set fetched from a URL is read leniently (keys of
//! other types are skipped, as a facility may publish keys for other uses), but private members
//! still make the whole set unusable.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::model::{ModelError, invalid};

/// At most this many keys in one set.
pub const MAX_KEYS: usize = 16;

/// Members that only a private JWK has (RFC 7518 §6.2.2, §6.3.2, §6.4).
const PRIVATE_MEMBERS: [&str; 9] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"];

/// One public key a client signs its assertions with.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicJwk {
    kid: String,
    material: KeyMaterial,
    alg: Option<String>,
    usage: Option<String>,
}

/// The key itself.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum KeyMaterial {
    /// An RSA public key: big-endian modulus and exponent, without leading zeros.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// An EC P-384 public key: the uncompressed point `04 || x || y`.
    EcP384 { point: Vec<u8> },
}

impl fmt::Debug for PublicJwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Public keys are not secret, but their bytes help nobody reading a log.
        let kty = match self.material {
            KeyMaterial::Rsa { .. } => "RSA",
            KeyMaterial::EcP384 { .. } => "EC P-384",
        };
        f.debug_struct("PublicJwk")
            .field("kid", &self.kid)
            .field("kty", &kty)
            .finish()
    }
}

impl PublicJwk {
    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub(crate) fn material(&self) -> &KeyMaterial {
        &self.material
    }

    /// Reads one JWK. `Ok(None)`: a well-formed key of a type we do not use.
    fn parse(value: &Value) -> Result<Option<PublicJwk>, ModelError> {
        let object = value
            .as_object()
            .ok_or(invalid("jwks", "every key is a JSON object"))?;
        if PRIVATE_MEMBERS
            .iter()
            .any(|member| object.contains_key(*member))
        {
            return Err(invalid(
                "jwks",
                "public keys only: a key holds a private or symmetric member",
            ));
        }
        let text = |name: &'static str| -> Result<Option<&str>, ModelError> {
            match object.get(name) {
                None => Ok(None),
                Some(Value::String(text)) => Ok(Some(text)),
                Some(_) => Err(invalid("jwks", "key members are strings")),
            }
        };
        let bytes = |name: &'static str| -> Result<Vec<u8>, ModelError> {
            let text = text(name)?.ok_or(invalid("jwks", "a key member is missing"))?;
            URL_SAFE_NO_PAD
                .decode(text)
                .map_err(|_| invalid("jwks", "key members are unpadded base64url"))
        };
        let kid = text("kid")?.ok_or(invalid("jwks", "every key has a kid"))?;
        if kid.is_empty() || kid.len() > 256 {
            return Err(invalid("jwks", "a kid has 1-256 characters"));
        }
        let alg = text("alg")?;
        let usage = text("use")?;
        if usage.is_some_and(|usage| usage != "sig") {
            return Ok(None);
        }
        if let Some(operations) = object.get("key_ops") {
            let verifies = operations
                .as_array()
                .is_some_and(|ops| ops.iter().any(|op| op == "verify"));
            if !verifies {
                return Ok(None);
            }
        }
        let material = match (text("kty")?, text("crv")?) {
            (Some("RSA"), _) => {
                if alg.is_some_and(|alg| alg != "RS384") {
                    return Ok(None);
                }
                let n = strip_leading_zeros(bytes("n")?);
                let e = strip_leading_zeros(bytes("e")?);
                if !(256..=1024).contains(&n.len()) || e.is_empty() || e.len() > 8 {
                    return Err(invalid("jwks", "RSA keys have 2048 to 8192 bits"));
                }
                KeyMaterial::Rsa { n, e }
            }
            (Some("EC"), Some("P-384")) => {
                if alg.is_some_and(|alg| alg != "ES384") {
                    return Ok(None);
                }
                let (x, y) = (bytes("x")?, bytes("y")?);
                if x.len() != 48 || y.len() != 48 {
                    return Err(invalid("jwks", "P-384 coordinates are 48 bytes"));
                }
                let mut point = Vec::with_capacity(97);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                KeyMaterial::EcP384 { point }
            }
            _ => return Ok(None),
        };
        Ok(Some(PublicJwk {
            kid: kid.to_owned(),
            material,
            alg: alg.map(str::to_owned),
            usage: usage.map(str::to_owned),
        }))
    }

    fn to_json(&self) -> Value {
        let mut object = Map::new();
        match &self.material {
            KeyMaterial::Rsa { n, e } => {
                object.insert("kty".into(), json!("RSA"));
                object.insert("kid".into(), json!(self.kid));
                object.insert("n".into(), json!(URL_SAFE_NO_PAD.encode(n)));
                object.insert("e".into(), json!(URL_SAFE_NO_PAD.encode(e)));
            }
            KeyMaterial::EcP384 { point } => {
                object.insert("kty".into(), json!("EC"));
                object.insert("kid".into(), json!(self.kid));
                object.insert("crv".into(), json!("P-384"));
                object.insert("x".into(), json!(URL_SAFE_NO_PAD.encode(&point[1..49])));
                object.insert("y".into(), json!(URL_SAFE_NO_PAD.encode(&point[49..])));
            }
        }
        if let Some(alg) = &self.alg {
            object.insert("alg".into(), json!(alg));
        }
        if let Some(usage) = &self.usage {
            object.insert("use".into(), json!(usage));
        }
        Value::Object(object)
    }
}

fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|byte| **byte == 0).count();
    bytes.drain(..zeros);
    bytes
}

/// A client's public keys: 1–16 RSA or EC P-384 keys with unique `kid`s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub struct JwkSet {
    keys: Vec<PublicJwk>,
}

impl JwkSet {
    /// Reads a JWK Set to register: every key must be usable (RSA ≥ 2048 bits or EC P-384, for
    /// signing, with a `kid`), public, and its `kid` unique.
    ///
    /// # Errors
    /// [`ModelError`] naming the rule the set breaks.
    pub fn parse(json: &str) -> Result<Self, ModelError> {
        let value: Value =
            serde_json::from_str(json).map_err(|_| invalid("jwks", "a JSON JWK Set"))?;
        Self::from_value(&value, true)
    }

    /// Reads a fetched JWK Set: keys of other types and uses are skipped.
    pub(crate) fn parse_fetched(json: &str) -> Result<Self, ModelError> {
        let value: Value =
            serde_json::from_str(json).map_err(|_| invalid("jwks", "a JSON JWK Set"))?;
        Self::from_value(&value, false)
    }

    fn from_value(value: &Value, strict: bool) -> Result<Self, ModelError> {
        let entries = value
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(invalid("jwks", "an object with a keys array"))?;
        if entries.len() > MAX_KEYS {
            return Err(invalid("jwks", "at most 16 keys"));
        }
        let mut keys: Vec<PublicJwk> = Vec::new();
        for entry in entries {
            match PublicJwk::parse(entry)? {
                Some(key) => {
                    if keys.iter().any(|known| known.kid == key.kid) {
                        return Err(invalid("jwks", "every kid is unique"));
                    }
                    keys.push(key);
                }
                None if strict => {
                    return Err(invalid(
                        "jwks",
                        "keys are RSA (RS384) or EC P-384 (ES384) signing keys",
                    ));
                }
                None => {}
            }
        }
        if keys.is_empty() {
            return Err(invalid("jwks", "at least one RSA or EC P-384 signing key"));
        }
        Ok(JwkSet { keys })
    }

    /// The keys.
    pub fn keys(&self) -> &[PublicJwk] {
        &self.keys
    }

    /// The key with this `kid`.
    pub fn find(&self, kid: &str) -> Option<&PublicJwk> {
        self.keys.iter().find(|key| key.kid == kid)
    }

    /// The set as JWK Set JSON (public members only).
    pub fn to_json(&self) -> Value {
        json!({ "keys": self.keys.iter().map(PublicJwk::to_json).collect::<Vec<_>>() })
    }
}

impl TryFrom<Value> for JwkSet {
    type Error = ModelError;
    fn try_from(value: Value) -> Result<Self, ModelError> {
        JwkSet::from_value(&value, true)
    }
}

impl From<JwkSet> for Value {
    fn from(set: JwkSet) -> Value {
        set.to_json()
    }
}

/// The origins a client's JWK Set URL may point to, from configuration: `https://host[:port]`
/// entries. A URL is allowed when its scheme is `https` and its origin equals an entry's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JwksUrlAllowList {
    origins: Vec<String>,
}

impl JwksUrlAllowList {
    /// Parses the allow-list entries.
    ///
    /// # Errors
    /// [`ModelError`] when an entry is not an `https://host[:port]` origin.
    pub fn new<I, S>(origins: I) -> Result<Self, ModelError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let origins = origins
            .into_iter()
            .map(|entry| {
                let entry = entry.as_ref().trim_end_matches('/');
                match origin_of(entry) {
                    Some((origin, "")) => Ok(origin),
                    _ => Err(invalid(
                        "jwks url allow-list",
                        "entries are https://host[:port] origins",
                    )),
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(JwksUrlAllowList { origins })
    }

    /// Whether `url` points into an allowed origin.
    pub fn allows(&self, url: &JwksUrl) -> bool {
        origin_of(&url.0).is_some_and(|(origin, _)| self.origins.contains(&origin))
    }
}

/// An `https` JWK Set URL that was on the allow-list when the client was registered. The
/// token service checks it against its allow-list again before every fetch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JwksUrl(String);

impl JwksUrl {
    /// Parses a JWK Set URL and checks it against the allow-list.
    ///
    /// # Errors
    /// [`ModelError`] when it is not an `https` URL without user info or fragment, or its origin
    /// is not on `allow_list`.
    pub fn new(url: impl Into<String>, allow_list: &JwksUrlAllowList) -> Result<Self, ModelError> {
        let url = JwksUrl::syntax(url.into())?;
        if allow_list.allows(&url) {
            Ok(url)
        } else {
            Err(invalid("jwks url", "the origin is not on the allow-list"))
        }
    }

    fn syntax(url: String) -> Result<Self, ModelError> {
        let ok = url.len() <= 2048
            && !url.contains('#')
            && !url.chars().any(|c| c.is_whitespace() || c.is_control())
            && origin_of(&url).is_some();
        if ok {
            Ok(JwksUrl(url))
        } else {
            Err(invalid(
                "jwks url",
                "an https URL without user info or fragment, at most 2048 characters",
            ))
        }
    }

    /// The URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for JwksUrl {
    type Error = ModelError;
    fn try_from(url: String) -> Result<Self, ModelError> {
        // The registry file holds URLs that passed the allow-list at registration; the token
        // service checks them again against the current one.
        JwksUrl::syntax(url)
    }
}

impl From<JwksUrl> for String {
    fn from(url: JwksUrl) -> String {
        url.0
    }
}

/// Splits `https://host[:port]…` into the normalised origin (lower-case host, port kept) and the
/// rest. `None` for other schemes, user info, empty or odd hosts, and non-numeric ports.
fn origin_of(url: &str) -> Option<(String, &str)> {
    let scheme_len = "https://".len();
    if !url
        .get(..scheme_len)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
    {
        return None;
    }
    let after = &url[scheme_len..];
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !host.starts_with(['.', '-'])
        && !host.ends_with('.');
    let port_ok = port.is_none_or(|port| {
        (1..=5).contains(&port.len())
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|port| port != 0)
    });
    if !host_ok || !port_ok {
        return None;
    }
    let mut origin = format!("https://{}", host.to_ascii_lowercase());
    if let Some(port) = port.filter(|port| *port != "443") {
        origin.push(':');
        origin.push_str(port);
    }
    Some((origin, rest))
}

#[cfg(test)]
mod tests;
