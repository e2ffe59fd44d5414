//! The attacker's workbench: real RSA-2048 and EC P-384 client keys made with aws-lc-rs, their
//! JWKs, a registry with a hospital, a pharmacy and a public health centre, and a builder that
//! signs (or forges) client assertions byte by byte.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth::{
    ASSERTION_TYPE, AuthError, AuthSettings, Client, ClientId, ClientKeys, GRANT_TYPE, JwkSet,
    MemoryJtiCache, MemoryRegistry, MunicipalityCode, OrgIdentifier, Organisation, OrganisationId,
    OrganisationKind, PURPOSE_OF_USE_SYSTEM, Prefecture, Principal, ROLE_SYSTEM, Registry,
    ServiceKey, TokenService,
};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RSA_PKCS1_SHA384,
    RsaKeyPair, RsaPublicKeyComponents,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

pub const ISSUER: &str = "https://tsunagu.test";
pub const TOKEN_URL: &str = "https://tsunagu.test/auth/token";
pub const FHIR_BASE: &str = "https://tsunagu.test/fhir";

pub const HOSPITAL: &str = "hosp-1";
pub const HOSPITAL_NUMBER: &str = "1311234567";
pub const CLINIC: &str = "clinic-1";
pub const PHARMACY: &str = "pharm-1";
pub const HEALTH_CENTRE: &str = "phc-1";

pub const HOSPITAL_CLIENT: &str = "hosp-ehr";
pub const CLINIC_CLIENT: &str = "clinic-ehr";
pub const PHARMACY_CLIENT: &str = "pharm-sys";
pub const HEALTH_CENTRE_CLIENT: &str = "phc-sys";
pub const RSA_KID: &str = "rsa-1";
pub const EC_KID: &str = "ec-1";

/// A fixed "now": 2027-01-15T08:00:00Z.
pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

pub fn seconds(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The client's RSA key (made once: RSA key generation is slow).
pub fn rsa_key() -> &'static RsaKeyPair {
    static KEY: OnceLock<RsaKeyPair> = OnceLock::new();
    KEY.get_or_init(|| RsaKeyPair::generate(KeySize::Rsa2048).unwrap())
}

/// Another RSA key: the attacker's.
pub fn other_rsa_key() -> &'static RsaKeyPair {
    static KEY: OnceLock<RsaKeyPair> = OnceLock::new();
    KEY.get_or_init(|| RsaKeyPair::generate(KeySize::Rsa2048).unwrap())
}

pub fn ec_key() -> &'static EcdsaKeyPair {
    static KEY: OnceLock<EcdsaKeyPair> = OnceLock::new();
    KEY.get_or_init(|| EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING).unwrap())
}

pub fn rsa_jwk(key: &RsaKeyPair, kid: &str) -> Value {
    let components = RsaPublicKeyComponents::<Vec<u8>>::from(key.public_key());
    json!({ "kty": "RSA", "kid": kid, "alg": "RS384", "use": "sig",
            "n": b64(&components.n), "e": b64(&components.e) })
}

pub fn ec_jwk(key: &EcdsaKeyPair, kid: &str) -> Value {
    let point = key.public_key().as_ref();
    json!({ "kty": "EC", "crv": "P-384", "kid": kid, "alg": "ES384",
            "x": b64(&point[1..49]), "y": b64(&point[49..]) })
}

/// The JWK Set every test client registers: its RSA and its EC key.
pub fn client_jwks() -> Value {
    json!({ "keys": [rsa_jwk(rsa_key(), RSA_KID), ec_jwk(ec_key(), EC_KID)] })
}

pub fn organisation(
    id: &str,
    kind: OrganisationKind,
    identifiers: &[(&str, &str)],
    municipalities: &[&str],
) -> Organisation {
    Organisation::new(
        OrganisationId::new(id).unwrap(),
        kind,
        format!("{id} の名前"),
        identifiers
            .iter()
            .map(|(system, value)| OrgIdentifier::new(system, value).unwrap())
            .collect(),
        Prefecture::new("13").unwrap(),
        municipalities
            .iter()
            .map(|code| MunicipalityCode::new(*code).unwrap())
            .collect(),
    )
    .unwrap()
}

pub fn client(id: &str, organisation: &str) -> Client {
    Client::new(
        ClientId::new(id).unwrap(),
        OrganisationId::new(organisation).unwrap(),
        ClientKeys::Jwks(JwkSet::parse(&client_jwks().to_string()).unwrap()),
    )
}

pub async fn seed(registry: &dyn Registry) {
    let institution = auth::INSTITUTION_NUMBER_SYSTEM;
    for organisation in [
        organisation(
            HOSPITAL,
            OrganisationKind::Hospital,
            &[(institution, HOSPITAL_NUMBER)],
            &["131016"],
        ),
        organisation(
            CLINIC,
            OrganisationKind::Clinic,
            &[(institution, "1317654321")],
            &[],
        ),
        organisation(
            PHARMACY,
            OrganisationKind::Pharmacy,
            &[(institution, "1341234567")],
            &[],
        ),
        organisation(
            HEALTH_CENTRE,
            OrganisationKind::PublicHealthCentre,
            &[],
            &["131016", "131024"],
        ),
    ] {
        registry.add_organisation(organisation).await.unwrap();
    }
    for (id, organisation) in [
        (HOSPITAL_CLIENT, HOSPITAL),
        (CLINIC_CLIENT, CLINIC),
        (PHARMACY_CLIENT, PHARMACY),
        (HEALTH_CENTRE_CLIENT, HEALTH_CENTRE),
    ] {
        registry.add_client(client(id, organisation)).await.unwrap();
    }
}

pub fn settings() -> AuthSettings {
    AuthSettings::new(ISSUER, TOKEN_URL, FHIR_BASE)
}

/// The service under attack, over a seeded in-memory registry.
pub struct World {
    pub service: TokenService,
    pub registry: Arc<MemoryRegistry>,
}

impl World {
    pub async fn new() -> World {
        let registry = Arc::new(MemoryRegistry::new());
        seed(registry.as_ref()).await;
        World::over(registry, ServiceKey::generate().unwrap(), settings())
    }

    pub fn over(registry: Arc<MemoryRegistry>, key: ServiceKey, settings: AuthSettings) -> World {
        let service = TokenService::new(
            settings,
            registry.clone(),
            Arc::new(MemoryJtiCache::default()),
            key,
        )
        .unwrap();
        World { service, registry }
    }

    /// Exchanges `assertion` for `scope` at [`now`].
    pub async fn exchange(
        &self,
        assertion: &str,
        scope: &str,
    ) -> Result<auth::AccessToken, AuthError> {
        self.service.exchange(&form(assertion, scope), now()).await
    }

    /// Exchanges and verifies, returning the principal the server would see.
    pub async fn principal(&self, assertion: &str, scope: &str) -> Result<Principal, AuthError> {
        let token = self.exchange(assertion, scope).await?;
        self.service.verify_access_token(token.token(), now()).await
    }
}

pub fn form(assertion: &str, scope: &str) -> Vec<(String, String)> {
    vec![
        ("grant_type".into(), GRANT_TYPE.into()),
        ("client_assertion_type".into(), ASSERTION_TYPE.into()),
        ("client_assertion".into(), assertion.into()),
        ("scope".into(), scope.into()),
    ]
}

/// The reason code of an exchange's refusal (panics with the token's principal if it was granted).
pub fn reason<T: std::fmt::Debug>(result: Result<T, AuthError>) -> &'static str {
    match result {
        Ok(granted) => panic!("expected a refusal, got {granted:?}"),
        Err(error) => error.reason(),
    }
}

static JTI: AtomicU64 = AtomicU64::new(1);

/// A client assertion under construction: header and claims as JSON, signed at the end.
#[derive(Clone)]
pub struct Assertion {
    pub header: Value,
    pub claims: Value,
}

impl Assertion {
    /// A valid RS384 assertion of `client` for a doctor, issued now, expiring in four minutes.
    pub fn new(client: &str) -> Assertion {
        let now = seconds(now());
        let organisation = match client {
            PHARMACY_CLIENT => PHARMACY,
            CLINIC_CLIENT => CLINIC,
            HEALTH_CENTRE_CLIENT => HEALTH_CENTRE,
            _ => HOSPITAL,
        };
        let (role, purpose) = match client {
            PHARMACY_CLIENT => ("pharmacist", "TREAT"),
            HEALTH_CENTRE_CLIENT => ("public-health-officer", "PUBHLTH"),
            _ => ("doctor", "TREAT"),
        };
        Assertion {
            header: json!({ "alg": "RS384", "typ": "JWT", "kid": RSA_KID }),
            claims: json!({
                "iss": client, "sub": client, "aud": TOKEN_URL,
                "iat": now, "exp": now + 240,
                "jti": format!("jti-{}", JTI.fetch_add(1, Ordering::Relaxed)),
                "extensions": {
                    "ihe_iua": {
                        "subject_name": "山田 花子",
                        "subject_organization_id": organisation,
                        "subject_role": { "system": ROLE_SYSTEM, "code": role },
                        "purpose_of_use": { "system": PURPOSE_OF_USE_SYSTEM, "code": purpose },
                    },
                    "tsunagu": { "user_id": "staff-0042", "emergency_privilege": false },
                },
            }),
        }
    }

    /// Sets a claim (a `/`-separated path into the claims; `null` removes it).
    pub fn claim(mut self, path: &str, value: Value) -> Assertion {
        set(&mut self.claims, path, value);
        self
    }

    /// Sets a header member (`null` removes it).
    pub fn header(mut self, name: &str, value: Value) -> Assertion {
        set(&mut self.header, name, value);
        self
    }

    pub fn role(self, code: &str) -> Assertion {
        self.claim("extensions/ihe_iua/subject_role/code", json!(code))
    }

    pub fn purpose(self, code: &str) -> Assertion {
        self.claim("extensions/ihe_iua/purpose_of_use/code", json!(code))
    }

    pub fn signing_input(&self) -> String {
        format!(
            "{}.{}",
            b64(self.header.to_string()),
            b64(self.claims.to_string())
        )
    }

    /// Signs with the client's RSA key (RS384), as the header says or not.
    pub fn rs384(&self) -> String {
        self.rs384_with(rsa_key())
    }

    pub fn rs384_with(&self, key: &RsaKeyPair) -> String {
        let input = self.signing_input();
        let mut signature = vec![0; key.public_modulus_len()];
        key.sign(
            &RSA_PKCS1_SHA384,
            &SystemRandom::new(),
            input.as_bytes(),
            &mut signature,
        )
        .unwrap();
        format!("{input}.{}", b64(signature))
    }

    /// Signs RS256 with the client's own key: a real signature, with an algorithm SMART refuses.
    pub fn rs256(&self) -> String {
        let key = rsa_key();
        let input = self.signing_input();
        let mut signature = vec![0; key.public_modulus_len()];
        key.sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            input.as_bytes(),
            &mut signature,
        )
        .unwrap();
        format!("{input}.{}", b64(signature))
    }

    /// Signs with the client's EC key (ES384).
    pub fn es384(&self) -> String {
        let input = self.signing_input();
        let signature = ec_key()
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", b64(signature.as_ref()))
    }

    /// A MAC with `secret`, as an attacker would compute HS256 with the public key as secret.
    pub fn hmac(&self, algorithm: aws_lc_rs::hmac::Algorithm, secret: &[u8]) -> String {
        let input = self.signing_input();
        let tag = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(algorithm, secret),
            input.as_bytes(),
        );
        format!("{input}.{}", b64(tag.as_ref()))
    }

    /// No signature at all.
    pub fn unsigned(&self) -> String {
        format!("{}.", self.signing_input())
    }
}

fn set(target: &mut Value, path: &str, value: Value) {
    let mut parts: Vec<&str> = path.split('/').collect();
    let last = parts.pop().unwrap();
    let mut node = target;
    for part in parts {
        node = node
            .as_object_mut()
            .unwrap()
            .entry(part)
            .or_insert_with(|| json!({}));
    }
    let object = node.as_object_mut().unwrap();
    if value.is_null() {
        object.remove(last);
    } else {
        object.insert(last.to_owned(), value);
    }
}
