//! SMART Backend Services: a client's signed assertion (with the acting user in IHE IUA claims)
//! is exchanged for a short-lived access token, and that token is turned back into the
//! [`Principal`] of every FHIR request.
//!
//! The checks, in the order they run (the first failure is the answer):
//!
//! 1. the form: `grant_type=client_credentials`, `client_assertion_type=…jwt-bearer`, one
//!    `client_assertion`, one `scope`, no parameter twice;
//! 2. the assertion's header: a compact JWS, `alg` RS384 or ES384 (`none`, `HS*` and everything
//!    else refused, each with its own reason), a `kid`;
//! 3. the client named by `iss`: registered; the `client_id` parameter, if sent, agrees; not
//!    revoked;
//! 4. the key: `kid` names a key of the client's JWK Set (inline, or fetched from its allow-listed
//!    URL), of the type `alg` needs; the signature verifies;
//! 5. the claims: `sub` = `iss`, `aud` = the token endpoint URL, `exp` not passed, `nbf`/`iat`
//!    not in the future, `exp` at most five minutes after now and after `iat` (all with
//!    [`CLOCK_SKEW`] of tolerance), a `jti` not seen before (recorded until the assertion
//!    could no longer be accepted anyway);
//! 6. the acting user (IUA claims) against the policy table: role, purpose of use, emergency
//!    privilege, organisation;
//! 7. the scopes: requested ∩ policy; what cannot be granted is dropped, nothing at all is an
//!    error.
//!
//! Patients' own login, their tokens and [`TokenService::verify_bearer`], which reads both kinds
//! of token, are in `patient_login.rs`.

mod patient_login;
mod verified;

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use crate::error::AuthError;
use crate::jti::{JtiCache, JtiError};
use crate::jwk::{JwkSet, JwksUrl, JwksUrlAllowList};
use crate::jws::{self, numeric_date};
use crate::key::ServiceKey;
use crate::model::{
    ClientId, ClientKeys, Organisation, OrganisationId, OrganisationKind, PURPOSE_OF_USE_SYSTEM,
    PurposeOfUse, ROLE_SYSTEM, Role, User,
};
use crate::patient::{ChallengeStore, Lockout, PasswordHash, PatientDirectory};
use crate::policy;
use crate::registry::Registry;
use crate::scope::{Scopes, parse_requested};

pub use self::patient_login::{
    Bearer, PATIENT_GRANT_TYPE, PATIENT_SCOPE, PatientPrincipal, PatientToken,
};

/// The `grant_type` SMART Backend Services uses.
pub const GRANT_TYPE: &str = "client_credentials";
/// The `client_assertion_type` SMART Backend Services uses.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// How far client clocks may be off ours: `exp` may have passed, and `nbf`/`iat` may lie ahead,
/// by this much.
pub const CLOCK_SKEW: Duration = Duration::from_secs(30);
/// The longest a client assertion may live (`exp` − `iat`, and `exp` − now): SMART's five
/// minutes.
pub const MAX_ASSERTION_LIFETIME: Duration = Duration::from_secs(300);
/// The longest an access token may live.
pub const MAX_ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(300);
/// The `typ` of our access tokens (RFC 9068).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// The configuration of the token service, built once in `main`.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// `iss` of our access tokens: the service's public base URL, e.g. `https://tsunagu.example.jp`.
    pub issuer: String,
    /// The token endpoint's absolute public URL, e.g. `https://tsunagu.example.jp/auth/token`.
    /// Client assertions must name exactly this in `aud`.
    pub token_endpoint: String,
    /// `aud` of our access tokens: the FHIR base URL, e.g. `https://tsunagu.example.jp/fhir`.
    pub audience: String,
    /// How long access tokens live: 1 second to [`MAX_ACCESS_TOKEN_LIFETIME`].
    pub access_token_lifetime: Duration,
    /// The origins clients' JWK Set URLs may point to.
    pub jwks_url_allow_list: JwksUrlAllowList,
}

impl AuthSettings {
    /// Settings with five-minute tokens and an empty JWK Set URL allow-list.
    pub fn new(
        issuer: impl Into<String>,
        token_endpoint: impl Into<String>,
        audience: impl Into<String>,
    ) -> Self {
        AuthSettings {
            issuer: issuer.into(),
            token_endpoint: token_endpoint.into(),
            audience: audience.into(),
            access_token_lifetime: MAX_ACCESS_TOKEN_LIFETIME,
            jwks_url_allow_list: JwksUrlAllowList::default(),
        }
    }
}

/// Why the token service could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The access token lifetime is zero or over five minutes.
    #[error("the access token lifetime must be between 1 and 300 seconds")]
    Lifetime,
    /// An URL setting is empty.
    #[error("the issuer, token endpoint and audience must be set")]
    MissingUrl,
}

/// Fetches a client's JWK Set from its allow-listed URL. The server provides one (with its HTTP
/// client: HTTPS only, short timeouts, a size limit, and a short cache, refreshed when a `kid` is
/// not found); this crate makes no network calls itself.
#[async_trait]
pub trait JwksFetcher: Send + Sync {
    /// The body of `GET url` (a JWK Set).
    ///
    /// # Errors
    /// Any failure; the token request is then refused with `jwks_unavailable`.
    async fn fetch(
        &self,
        url: &JwksUrl,
    ) -> Result<String, Box<dyn std::error::Error + Send + Sync>>;
}

/// Who is making a FHIR request: what [`TokenService::verify_access_token`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The organisation, as registered now (not as it was when the token was issued).
    pub organisation: Organisation,
    /// The client system that obtained the token.
    pub client_id: ClientId,
    /// The acting user, as the facility asserted them.
    pub user: User,
    /// Why they act.
    pub purpose_of_use: PurposeOfUse,
    /// What the token allows at most.
    pub scopes: Scopes,
    /// The access token's `jti`: correlates audit entries with the token issuance.
    pub token_id: String,
    /// When the token expires.
    pub expires_at: SystemTime,
}

/// A freshly issued access token and whom it stands for. `Debug` never shows the token.
#[derive(Clone)]
pub struct AccessToken {
    token: String,
    expires_in: u64,
    /// The principal the token stands for (for the audit entry of the issuance).
    pub principal: Principal,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field("principal", &self.principal)
            .finish()
    }
}

impl AccessToken {
    /// The bearer token. Never log it.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Its lifetime in seconds.
    pub fn expires_in(&self) -> u64 {
        self.expires_in
    }

    /// The token endpoint's success body: `access_token`, `token_type`, `expires_in`, `scope`
    /// (the granted scopes, which may be fewer than requested). Serve it with
    /// `Cache-Control: no-store`.
    pub fn response_body(&self) -> Value {
        json!({
            "access_token": self.token,
            "token_type": "bearer",
            "expires_in": self.expires_in,
            "scope": self.principal.scopes.to_string(),
        })
    }
}

/// Issues access tokens for client assertions and verifies them on FHIR requests.
pub struct TokenService {
    settings: AuthSettings,
    registry: Arc<dyn Registry>,
    jti_cache: Arc<dyn JtiCache>,
    key: ServiceKey,
    fetcher: Option<Arc<dyn JwksFetcher>>,
    /// Patients' accounts; `None`: patients cannot log in.
    patients: Option<Arc<dyn PatientDirectory>>,
    /// Challenges for cards to sign (in this process's memory).
    challenges: ChallengeStore,
    /// Failed patient logins per account name (in this process's memory).
    lockout: Lockout,
    /// Hashed against when a login names no account (made on first use).
    decoy_hash: OnceLock<PasswordHash>,
    /// Access tokens whose signature was checked, until they expire (`verified.rs`).
    verified: verified::VerifiedTokens,
}

impl fmt::Debug for TokenService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenService")
            .field("settings", &self.settings)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl TokenService {
    /// A token service. Clients registered with a JWK Set URL are refused (`jwks_unavailable`)
    /// until a fetcher is given with [`TokenService::with_jwks_fetcher`].
    ///
    /// # Errors
    /// [`SettingsError`] when the settings are out of bounds.
    pub fn new(
        settings: AuthSettings,
        registry: Arc<dyn Registry>,
        jti_cache: Arc<dyn JtiCache>,
        key: ServiceKey,
    ) -> Result<Self, SettingsError> {
        let lifetime = settings.access_token_lifetime;
        if lifetime < Duration::from_secs(1) || lifetime > MAX_ACCESS_TOKEN_LIFETIME {
            return Err(SettingsError::Lifetime);
        }
        if [
            &settings.issuer,
            &settings.token_endpoint,
            &settings.audience,
        ]
        .iter()
        .any(|url| url.is_empty())
        {
            return Err(SettingsError::MissingUrl);
        }
        Ok(TokenService {
            settings,
            registry,
            jti_cache,
            key,
            fetcher: None,
            patients: None,
            challenges: ChallengeStore::default(),
            lockout: Lockout::default(),
            decoy_hash: OnceLock::new(),
            verified: verified::VerifiedTokens::default(),
        })
    }

    /// Lets clients registered with a JWK Set URL authenticate.
    pub fn with_jwks_fetcher(mut self, fetcher: Arc<dyn JwksFetcher>) -> Self {
        self.fetcher = Some(fetcher);
        self
    }

    /// The settings.
    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// The registry the service reads.
    pub fn registry(&self) -> &Arc<dyn Registry> {
        &self.registry
    }

    /// Exchanges a token request (the decoded `application/x-www-form-urlencoded` body, pairs in
    /// order) for an access token, at time `now`.
    ///
    /// # Errors
    /// [`AuthError`]: the reason of the first check that failed (module doc), or
    /// [`AuthError::Unavailable`] when the registry or the replay cache could not answer.
    pub async fn exchange(
        &self,
        form: &[(String, String)],
        now: SystemTime,
    ) -> Result<AccessToken, AuthError> {
        let now_seconds = unix(now);
        let form = Form(form);
        match form.single("grant_type")? {
            Some(GRANT_TYPE) => {}
            Some(_) => return Err(AuthError::UnsupportedGrantType),
            None => {
                return Err(AuthError::RequestMalformed {
                    parameter: "grant_type",
                });
            }
        }
        match form.single("client_assertion_type")? {
            Some(ASSERTION_TYPE) => {}
            Some(_) => return Err(AuthError::UnsupportedAssertionType),
            None => {
                return Err(AuthError::RequestMalformed {
                    parameter: "client_assertion_type",
                });
            }
        }
        let assertion = form
            .single("client_assertion")?
            .ok_or(AuthError::RequestMalformed {
                parameter: "client_assertion",
            })?;
        let scope = form.single("scope")?.ok_or(AuthError::ScopeMissing)?;
        let client_id_parameter = form.single("client_id")?;

        // The header, before anything is looked up.
        let compact = jws::parse(assertion).ok_or(AuthError::AssertionMalformed)?;
        let algorithm = jws::assertion_algorithm(&compact.header)?;
        let kid = match compact.header.get("kid") {
            Some(Value::String(kid)) => kid.as_str(),
            Some(_) => return Err(AuthError::AssertionMalformed),
            None => return Err(AuthError::KeyIdMissing),
        };

        // The client.
        let issuer = string_claim(&compact.claims, "iss")?;
        let client_id = ClientId::new(issuer).map_err(|_| AuthError::UnknownClient)?;
        let client = self
            .registry
            .client(&client_id)
            .await
            .map_err(AuthError::unavailable)?
            .ok_or(AuthError::UnknownClient)?;
        if client_id_parameter.is_some_and(|parameter| parameter != issuer) {
            return Err(AuthError::ClientIdMismatch);
        }
        if client.is_revoked() {
            return Err(AuthError::ClientRevoked);
        }

        // The key and the signature.
        let keys = self.client_keys(client.keys()).await?;
        let key = keys.find(kid).ok_or(AuthError::UnknownKey)?;
        jws::verify_assertion(algorithm, key.material(), &compact)?;

        // The claims, now known to be the client's own.
        let claims = &compact.claims;
        if string_claim(claims, "sub")? != issuer {
            return Err(AuthError::IssuerMismatch);
        }
        let audience_ok = match claims.get("aud") {
            Some(Value::String(audience)) => *audience == self.settings.token_endpoint,
            Some(Value::Array(audiences)) => audiences
                .iter()
                .any(|audience| audience.as_str() == Some(&self.settings.token_endpoint)),
            _ => false,
        };
        if !audience_ok {
            return Err(AuthError::WrongAudience);
        }
        let skew = CLOCK_SKEW.as_secs() as i64;
        let expires = match numeric_date(claims, "exp") {
            Some(Ok(expires)) => expires,
            Some(Err(())) | None => return Err(AuthError::AssertionMalformed),
        };
        if expires + skew <= now_seconds {
            return Err(AuthError::AssertionExpired);
        }
        for name in ["nbf", "iat"] {
            match numeric_date(claims, name) {
                Some(Ok(time)) if time > now_seconds + skew => {
                    return Err(AuthError::AssertionNotYetValid);
                }
                Some(Err(())) => return Err(AuthError::AssertionMalformed),
                _ => {}
            }
        }
        let max_lifetime = MAX_ASSERTION_LIFETIME.as_secs() as i64;
        let issued_at = numeric_date(claims, "iat").and_then(Result::ok);
        if expires - now_seconds > max_lifetime + skew
            || issued_at.is_some_and(|issued_at| expires - issued_at > max_lifetime)
        {
            return Err(AuthError::AssertionLifetimeTooLong);
        }
        let jti = match claims.get("jti") {
            Some(Value::String(jti)) if !jti.is_empty() && jti.len() <= 256 => jti,
            Some(_) => return Err(AuthError::AssertionMalformed),
            None => return Err(AuthError::JtiMissing),
        };
        // Remembered until the assertion is unacceptable anyway: `exp` plus the skew we allow.
        let remember_until = at(expires + skew);
        let first_use = self
            .jti_cache
            .first_use(&format!("{client_id}\n{jti}"), remember_until, now)
            .await
            .map_err(|error| match error {
                JtiError::Full => AuthError::unavailable(error),
                JtiError::Unavailable(_) => AuthError::unavailable(error),
            })?;
        if !first_use {
            return Err(AuthError::AssertionReplayed);
        }

        // Who is acting, and what they may have.
        let organisation = self
            .registry
            .organisation(client.organisation())
            .await
            .map_err(AuthError::unavailable)?
            .ok_or(AuthError::UnknownOrganisation)?;
        let (user, purpose_of_use) = read_user(claims, &organisation)?;
        let scopes = policy::grant(organisation.kind(), user.role, &parse_requested(scope));
        if scopes.is_empty() {
            return Err(AuthError::ScopeNotGranted);
        }
        self.issue(organisation, client_id, user, purpose_of_use, scopes, now)
    }

    async fn client_keys<'a>(&self, keys: &'a ClientKeys) -> Result<Cow<'a, JwkSet>, AuthError> {
        match keys {
            ClientKeys::Jwks(set) => Ok(Cow::Borrowed(set)),
            ClientKeys::JwksUrl(url) => {
                if !self.settings.jwks_url_allow_list.allows(url) {
                    return Err(AuthError::JwksUrlNotAllowed);
                }
                let fetcher = self.fetcher.as_ref().ok_or(AuthError::JwksUnavailable)?;
                let body = fetcher
                    .fetch(url)
                    .await
                    .map_err(|_| AuthError::JwksUnavailable)?;
                let set = JwkSet::parse_fetched(&body).map_err(|_| AuthError::JwksUnavailable)?;
                Ok(Cow::Owned(set))
            }
        }
    }

    fn issue(
        &self,
        organisation: Organisation,
        client_id: ClientId,
        user: User,
        purpose_of_use: PurposeOfUse,
        scopes: Scopes,
        now: SystemTime,
    ) -> Result<AccessToken, AuthError> {
        let lifetime = self.settings.access_token_lifetime.as_secs();
        let issued_at = unix(now);
        let expires_at = issued_at + lifetime as i64;
        let token_id = new_token_id()?;
        let claims = json!({
            "iss": self.settings.issuer,
            "sub": client_id.as_str(),
            "aud": self.settings.audience,
            "client_id": client_id.as_str(),
            "iat": issued_at,
            "exp": expires_at,
            "jti": token_id,
            "scope": scopes.to_string(),
            "extensions": {
                "ihe_iua": {
                    "subject_name": user.name,
                    "subject_organization": organisation.name(),
                    "subject_organization_id": organisation.id().as_str(),
                    "subject_role": { "system": ROLE_SYSTEM, "code": user.role.code() },
                    "purpose_of_use": { "system": PURPOSE_OF_USE_SYSTEM, "code": purpose_of_use.code() },
                },
                "tsunagu": {
                    "user_id": user.id,
                    "emergency_privilege": user.emergency_privilege,
                    "organisation_kind": organisation.kind().code(),
                },
            },
        });
        Ok(AccessToken {
            token: self.sign_token(&claims)?,
            expires_in: lifetime,
            principal: Principal {
                organisation,
                client_id,
                user,
                purpose_of_use,
                scopes,
                token_id,
                expires_at: at(expires_at),
            },
        })
    }

    /// Signs `claims` as one of our access tokens (ES256, `typ` [`ACCESS_TOKEN_TYPE`], our key's
    /// `kid`).
    fn sign_token(&self, claims: &Value) -> Result<String, AuthError> {
        let header = json!({ "alg": "ES256", "typ": ACCESS_TOKEN_TYPE, "kid": self.key.kid() });
        let signing_input = format!("{}.{}", jws::encode_part(&header), jws::encode_part(claims));
        let signature = self
            .key
            .sign(signing_input.as_bytes())
            .ok_or_else(|| AuthError::unavailable(std::io::Error::other("signing failed")))?;
        Ok(format!("{signing_input}.{}", jws::encode_bytes(&signature)))
    }

    /// Verifies a member's bearer token (the `Authorization: Bearer …` value) at time `now`: our
    /// signature, our issuer, our audience, not expired, not a patient token, and its client
    /// neither revoked nor removed since. Called on every FHIR request;
    /// [`TokenService::verify_bearer`] reads patients' tokens too.
    ///
    /// # Errors
    /// `token_*` [`AuthError`]s (`token_malformed` for a patient token), or
    /// [`AuthError::Unavailable`] when the registry cannot answer.
    pub async fn verify_access_token(
        &self,
        bearer: &str,
        now: SystemTime,
    ) -> Result<Principal, AuthError> {
        let verified = self.verify_signed(bearer, now)?;
        if patient_login::is_patient_token(&verified.claims) {
            return Err(AuthError::TokenMalformed);
        }
        self.member_principal(&verified.claims, verified.expires)
            .await
    }

    /// The claims and expiry of one of our access tokens of either kind: `typ`, our ES256
    /// signature, our issuer and audience, not expired. What depends only on the token's bytes is
    /// checked once per token (`verified.rs`); expiry on every call.
    fn verify_signed(
        &self,
        bearer: &str,
        now: SystemTime,
    ) -> Result<Arc<verified::Verified>, AuthError> {
        let now = unix(now);
        let key = verified::VerifiedTokens::key(bearer);
        let verified = match self.verified.get(&key) {
            Some(verified) => verified,
            None => {
                let verified = Arc::new(self.verify_bytes(bearer)?);
                if now < verified.expires {
                    self.verified.insert(key, Arc::clone(&verified), now);
                }
                verified
            }
        };
        if now >= verified.expires {
            return Err(AuthError::TokenExpired);
        }
        Ok(verified)
    }

    /// The checks of an access token that depend only on its bytes: form, `typ`, our ES256
    /// signature, our issuer and audience, an `exp`.
    fn verify_bytes(&self, bearer: &str) -> Result<verified::Verified, AuthError> {
        let compact = jws::parse(bearer).ok_or(AuthError::TokenMalformed)?;
        if compact.header.get("typ").and_then(Value::as_str) != Some(ACCESS_TOKEN_TYPE) {
            return Err(AuthError::TokenMalformed);
        }
        // Only ES256 with our key: whatever else the header says, it is not our signature.
        if compact.header.get("alg").and_then(Value::as_str) != Some("ES256")
            || !jws::verify_es256(self.key.public_key(), &compact)
        {
            return Err(AuthError::TokenBadSignature);
        }
        let claims = &compact.claims;
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        if text("iss") != Some(&self.settings.issuer) {
            return Err(AuthError::TokenWrongIssuer);
        }
        if text("aud") != Some(&self.settings.audience) {
            return Err(AuthError::TokenWrongAudience);
        }
        let expires = match numeric_date(claims, "exp") {
            Some(Ok(expires)) => expires,
            _ => return Err(AuthError::TokenMalformed),
        };
        Ok(verified::Verified {
            claims: compact.claims,
            expires,
        })
    }

    /// How many verified access tokens this service keeps (at most a bound, see `verified.rs`).
    pub fn verified_tokens(&self) -> usize {
        self.verified.len()
    }

    /// The principal of a signed, timely member token whose client is still registered and not
    /// revoked.
    async fn member_principal(
        &self,
        claims: &Map<String, Value>,
        expires: i64,
    ) -> Result<Principal, AuthError> {
        let token = TokenClaims::read(claims).ok_or(AuthError::TokenMalformed)?;
        let client = self
            .registry
            .client(&token.client_id)
            .await
            .map_err(AuthError::unavailable)?;
        let client = match client {
            Some(client)
                if !client.is_revoked() && *client.organisation() == token.organisation =>
            {
                client
            }
            _ => return Err(AuthError::TokenClientRevoked),
        };
        let organisation = self
            .registry
            .organisation(client.organisation())
            .await
            .map_err(AuthError::unavailable)?
            .ok_or(AuthError::TokenClientRevoked)?;
        Ok(Principal {
            organisation,
            client_id: token.client_id,
            user: token.user,
            purpose_of_use: token.purpose_of_use,
            scopes: token.scopes,
            token_id: token.token_id,
            expires_at: at(expires),
        })
    }
}

/// The client id an assertion *claims* (its `iss`), unverified: for recording a refused token
/// request against the client it names. `None` unless it is a syntactically valid client id.
/// Never use it to decide anything.
pub fn claimed_client_id(form: &[(String, String)]) -> Option<ClientId> {
    let assertion = Form(form).single("client_assertion").ok().flatten()?;
    let compact = jws::parse(assertion)?;
    ClientId::new(compact.claims.get("iss")?.as_str()?).ok()
}

/// A fresh access token id (`jti`): 128 random bits, base64url.
fn new_token_id() -> Result<String, AuthError> {
    let mut jti_bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut jti_bytes)
        .map_err(|_| AuthError::unavailable(std::io::Error::other("no randomness")))?;
    Ok(jws::encode_bytes(&jti_bytes))
}

/// The form parameters, each read at most once.
struct Form<'a>(&'a [(String, String)]);

impl<'a> Form<'a> {
    fn single(&self, name: &'static str) -> Result<Option<&'a str>, AuthError> {
        let mut values = self.0.iter().filter(|(key, _)| key == name);
        let first = values.next().map(|(_, value)| value.as_str());
        if values.next().is_some() {
            return Err(AuthError::RequestMalformed { parameter: name });
        }
        Ok(first)
    }
}

fn string_claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Result<&'a str, AuthError> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .ok_or(AuthError::AssertionMalformed)
}

/// Reads the acting user from the assertion's IUA claims and checks them against the policy
/// table for `organisation`.
fn read_user(
    claims: &Map<String, Value>,
    organisation: &Organisation,
) -> Result<(User, PurposeOfUse), AuthError> {
    let invalid = |claim: &'static str| AuthError::UserClaimsInvalid { claim };
    let extensions = claims.get("extensions").and_then(Value::as_object);
    let iua = extensions
        .and_then(|extensions| extensions.get("ihe_iua"))
        .and_then(Value::as_object)
        .ok_or(invalid("extensions.ihe_iua"))?;
    let ours = extensions
        .and_then(|extensions| extensions.get("tsunagu"))
        .and_then(Value::as_object)
        .ok_or(invalid("extensions.tsunagu"))?;
    let name = iua
        .get("subject_name")
        .and_then(Value::as_str)
        .filter(|name| plain_text(name, 200))
        .ok_or(invalid("extensions.ihe_iua.subject_name"))?;
    let role = coding(iua.get("subject_role"), ROLE_SYSTEM)
        .and_then(Role::from_code)
        .ok_or(invalid("extensions.ihe_iua.subject_role"))?;
    let purpose = coding(iua.get("purpose_of_use"), PURPOSE_OF_USE_SYSTEM)
        .and_then(PurposeOfUse::from_code)
        .ok_or(invalid("extensions.ihe_iua.purpose_of_use"))?;
    match iua.get("subject_organization_id") {
        None => {}
        Some(Value::String(named)) => {
            let ours = named == organisation.id().as_str()
                || organisation
                    .identifiers()
                    .iter()
                    .any(|identifier| identifier.value() == named);
            if !ours {
                return Err(AuthError::OrganisationMismatch);
            }
        }
        Some(_) => return Err(invalid("extensions.ihe_iua.subject_organization_id")),
    }
    let user_id = ours
        .get("user_id")
        .and_then(Value::as_str)
        .filter(|id| plain_text(id, 128))
        .ok_or(invalid("extensions.tsunagu.user_id"))?;
    let emergency_privilege = match ours.get("emergency_privilege") {
        None => false,
        Some(Value::Bool(held)) => *held,
        Some(_) => return Err(invalid("extensions.tsunagu.emergency_privilege")),
    };

    let row = policy::policy(organisation.kind());
    if !row.roles.contains(&role) {
        return Err(AuthError::RoleNotAllowed);
    }
    if emergency_privilege && !row.emergency_roles.contains(&role) {
        return Err(AuthError::EmergencyPrivilegeNotAllowed);
    }
    let emergency_without_privilege =
        purpose == PurposeOfUse::EmergencyTreatment && !emergency_privilege;
    if !row.purposes.contains(&purpose) || emergency_without_privilege {
        return Err(AuthError::PurposeNotAllowed);
    }
    Ok((
        User {
            id: user_id.to_owned(),
            name: name.to_owned(),
            role,
            emergency_privilege,
        },
        purpose,
    ))
}

/// The code of a `{system, code}` coding in `system`.
fn coding<'a>(value: Option<&'a Value>, system: &str) -> Option<&'a str> {
    let object = value?.as_object()?;
    (object.get("system")?.as_str()? == system).then_some(())?;
    object.get("code")?.as_str()
}

/// Non-blank, at most `max` characters, no control characters.
fn plain_text(text: &str, max: usize) -> bool {
    !text.trim().is_empty() && text.chars().count() <= max && !text.chars().any(char::is_control)
}

/// What our own access token says, read back.
struct TokenClaims {
    client_id: ClientId,
    organisation: OrganisationId,
    user: User,
    purpose_of_use: PurposeOfUse,
    scopes: Scopes,
    token_id: String,
}

impl TokenClaims {
    fn read(claims: &Map<String, Value>) -> Option<TokenClaims> {
        let text = |object: &Map<String, Value>, name: &str| -> Option<String> {
            object.get(name)?.as_str().map(str::to_owned)
        };
        let extensions = claims.get("extensions")?.as_object()?;
        let iua = extensions.get("ihe_iua")?.as_object()?;
        let ours = extensions.get("tsunagu")?.as_object()?;
        let client_id = ClientId::new(text(claims, "client_id")?).ok()?;
        if text(claims, "sub")? != client_id.as_str() {
            return None;
        }
        OrganisationKind::from_code(&text(ours, "organisation_kind")?)?;
        Some(TokenClaims {
            client_id,
            organisation: OrganisationId::new(text(iua, "subject_organization_id")?).ok()?,
            user: User {
                id: text(ours, "user_id")?,
                name: text(iua, "subject_name")?,
                role: Role::from_code(coding(iua.get("subject_role"), ROLE_SYSTEM)?)?,
                emergency_privilege: ours.get("emergency_privilege")?.as_bool()?,
            },
            purpose_of_use: PurposeOfUse::from_code(coding(
                iua.get("purpose_of_use"),
                PURPOSE_OF_USE_SYSTEM,
            )?)?,
            scopes: Scopes::parse_granted(&text(claims, "scope")?)?,
            token_id: text(claims, "jti")?,
        })
    }
}

/// Whole seconds since the Unix epoch (negative before it).
fn unix(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(since) => since.as_secs() as i64,
        Err(before) => -(before.duration().as_secs() as i64),
    }
}

/// The time `seconds` after the Unix epoch (the epoch itself for negative values).
fn at(seconds: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds.max(0) as u64)
}
