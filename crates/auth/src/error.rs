//! Why a token request or a bearer token was refused: one variant per rejection, each with a stable,
//! client-safe reason code and the OAuth 2.0 error code the server answers with.
//!
//! Nothing here carries a token, an assertion, a key or a claim value: variants carry at most the
//! *name* of the parameter or claim at fault, so that `Display`, the reason code and the OAuth body
//! can be logged and returned as they are.

use serde_json::{Value, json};

/// A refused token request or bearer token, or a failure on our side.
///
/// The server answers every variant but [`AuthError::Unavailable`] with 401 and
/// [`AuthError::oauth_body`] (token endpoint) or [`AuthError::www_authenticate`] (FHIR requests),
/// and records the attempt with [`AuthError::reason`]. `Unavailable` is 503: the registry or the
/// replay cache could not answer, and nothing was granted.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    // The token request itself.
    /// A form parameter is missing or repeated (RFC 6749 §3.2: parameters appear at most once).
    #[error("the token request is malformed (parameter {parameter})")]
    RequestMalformed {
        /// The parameter at fault.
        parameter: &'static str,
    },
    /// `grant_type` is not the one of the call: `client_credentials` for
    /// [`crate::TokenService::exchange`], [`crate::PATIENT_GRANT_TYPE`] for
    /// [`crate::TokenService::patient_login`] (which also answers this when the service has no
    /// patient directory).
    #[error("the grant_type is not supported")]
    UnsupportedGrantType,
    /// `client_assertion_type` is not `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
    #[error("only the jwt-bearer client assertion type is supported")]
    UnsupportedAssertionType,
    /// The `client_id` parameter names another client than the assertion's `iss`.
    #[error("the client_id parameter does not match the assertion")]
    ClientIdMismatch,

    // The client assertion.
    /// Not a compact JWS with a JSON header and claims, or too large, or with a `crit` header.
    #[error("the client assertion is not a well-formed signed JWT")]
    AssertionMalformed,
    /// `alg: none`: an unsigned assertion.
    #[error("unsigned client assertions (alg none) are refused")]
    AlgorithmNone,
    /// `HS256`/`HS384`/`HS512`: a shared-secret MAC, which would let anyone holding the client's
    /// *public* key forge assertions (RS/HS key confusion).
    #[error("symmetric (HS*) client assertions are refused")]
    AlgorithmSymmetric,
    /// Any other algorithm than RS384 and ES384.
    #[error("the client assertion algorithm is not RS384 or ES384")]
    AlgorithmUnsupported,
    /// The header has no `kid`.
    #[error("the client assertion header has no kid")]
    KeyIdMissing,
    /// `iss` names no registered client.
    #[error("unknown client")]
    UnknownClient,
    /// The client was revoked.
    #[error("the client has been revoked")]
    ClientRevoked,
    /// `kid` names no key in the client's JWK Set.
    #[error("the client assertion kid names no registered key")]
    UnknownKey,
    /// The key named by `kid` is not of the kind `alg` needs (an EC key for RS384, a P-256 key for
    /// ES384, …).
    #[error("the registered key does not match the assertion algorithm")]
    KeyAlgorithmMismatch,
    /// The client's JWK Set URL is no longer on the allow-list.
    #[error("the client's JWK Set URL is not on the allow-list")]
    JwksUrlNotAllowed,
    /// The client's JWK Set URL could not be fetched or did not hold a valid JWK Set.
    #[error("the client's JWK Set could not be fetched")]
    JwksUnavailable,
    /// The signature does not verify with the registered key.
    #[error("the client assertion signature is invalid")]
    BadSignature,
    /// `iss`, `sub` and the client id disagree.
    #[error("the client assertion iss and sub must both be the client id")]
    IssuerMismatch,
    /// `aud` is not the token endpoint URL.
    #[error("the client assertion audience is not this token endpoint")]
    WrongAudience,
    /// `exp` is missing or has passed.
    #[error("the client assertion has expired")]
    AssertionExpired,
    /// `nbf` or `iat` lies in the future.
    #[error("the client assertion is not yet valid")]
    AssertionNotYetValid,
    /// `exp` lies more than five minutes after `iat` or after now.
    #[error("the client assertion lifetime exceeds five minutes")]
    AssertionLifetimeTooLong,
    /// The assertion has no `jti`.
    #[error("the client assertion has no jti")]
    JtiMissing,
    /// The `jti` was used before.
    #[error("the client assertion was already used (replayed jti)")]
    AssertionReplayed,

    // Who is acting.
    /// The client's organisation is no longer registered.
    #[error("the client's organisation is not registered")]
    UnknownOrganisation,
    /// A user claim is missing or malformed.
    #[error("the acting user's claims are invalid ({claim})")]
    UserClaimsInvalid {
        /// The claim at fault (e.g. `extensions.ihe_iua.subject_role`).
        claim: &'static str,
    },
    /// `subject_organization_id` names another organisation than the client's.
    #[error("the acting user's organisation is not the client's organisation")]
    OrganisationMismatch,
    /// The user's role does not exist at this kind of organisation.
    #[error("the acting user's role is not allowed for this kind of organisation")]
    RoleNotAllowed,
    /// The purpose of use is not one this kind of organisation may state.
    #[error("the purpose of use is not allowed for this organisation or user")]
    PurposeNotAllowed,
    /// The emergency privilege was asserted where it cannot be held (not a doctor at a hospital).
    #[error("the emergency privilege is not allowed for this organisation or role")]
    EmergencyPrivilegeNotAllowed,

    // Scopes.
    /// No `scope` parameter.
    #[error("the token request has no scope")]
    ScopeMissing,
    /// None of the requested scopes may be granted to this organisation and role.
    #[error("none of the requested scopes can be granted")]
    ScopeNotGranted,

    // Bearer tokens on FHIR requests.
    /// Not one of our access tokens (syntax, header, algorithm, claims).
    #[error("the access token is malformed")]
    TokenMalformed,
    /// The signature does not verify with the service key (tampered, or signed by another key).
    #[error("the access token signature is invalid")]
    TokenBadSignature,
    /// The access token has expired.
    #[error("the access token has expired")]
    TokenExpired,
    /// `iss` is not this service.
    #[error("the access token issuer is not this service")]
    TokenWrongIssuer,
    /// `aud` is not this FHIR base URL.
    #[error("the access token audience is not this server")]
    TokenWrongAudience,
    /// The token's client was revoked (or its client or organisation removed) since it was issued.
    #[error("the access token's client has been revoked")]
    TokenClientRevoked,

    // Patients.
    /// A patient's login was refused: the account is unknown or disabled, the password is wrong,
    /// the card signature is missing, malformed or wrong, or the challenge is unknown, expired or
    /// used. One reason for all of them, so that a refusal tells nobody which factor was wrong or
    /// whether the account exists.
    #[error("the patient login failed")]
    PatientLoginFailed,
    /// The account name had too many consecutive failed logins and is locked for a while. Names
    /// that belong to no account are locked the same way, so this says nothing about existence.
    #[error("too many failed logins for this account; try again later")]
    PatientLocked,
    /// A card signature presented by a facility (a consent at its reception) was refused: the
    /// patient has no enabled account, the challenge is not live, or the signature is not the
    /// card's over that purpose, challenge and account. One reason for all of them.
    #[error("the card signature is invalid")]
    CardSignatureInvalid,
    /// The patient token's account was disabled or removed since it was issued (or this service
    /// has no patient directory).
    #[error("the access token's patient account has been disabled")]
    TokenAccountDisabled,

    // Our side.
    /// The registry, the JWK Set fetcher or the replay cache could not answer; nothing was granted.
    #[error("authorisation is temporarily unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl AuthError {
    /// The stable, client-safe reason code: recorded with the attempt and returned as
    /// `error_description`. Reason codes never change meaning; new rejections get new codes.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::RequestMalformed { .. } => "request_malformed",
            AuthError::UnsupportedGrantType => "grant_type_unsupported",
            AuthError::UnsupportedAssertionType => "client_assertion_type_unsupported",
            AuthError::ClientIdMismatch => "client_id_mismatch",
            AuthError::AssertionMalformed => "assertion_malformed",
            AuthError::AlgorithmNone => "assertion_alg_none",
            AuthError::AlgorithmSymmetric => "assertion_alg_symmetric",
            AuthError::AlgorithmUnsupported => "assertion_alg_unsupported",
            AuthError::KeyIdMissing => "assertion_kid_missing",
            AuthError::UnknownClient => "client_unknown",
            AuthError::ClientRevoked => "client_revoked",
            AuthError::UnknownKey => "assertion_kid_unknown",
            AuthError::KeyAlgorithmMismatch => "assertion_key_mismatch",
            AuthError::JwksUrlNotAllowed => "jwks_url_not_allowed",
            AuthError::JwksUnavailable => "jwks_unavailable",
            AuthError::BadSignature => "assertion_signature_invalid",
            AuthError::IssuerMismatch => "assertion_issuer_mismatch",
            AuthError::WrongAudience => "assertion_audience_invalid",
            AuthError::AssertionExpired => "assertion_expired",
            AuthError::AssertionNotYetValid => "assertion_not_yet_valid",
            AuthError::AssertionLifetimeTooLong => "assertion_lifetime_too_long",
            AuthError::JtiMissing => "assertion_jti_missing",
            AuthError::AssertionReplayed => "assertion_replayed",
            AuthError::UnknownOrganisation => "organisation_unknown",
            AuthError::UserClaimsInvalid { .. } => "user_claims_invalid",
            AuthError::OrganisationMismatch => "organisation_mismatch",
            AuthError::RoleNotAllowed => "role_not_allowed",
            AuthError::PurposeNotAllowed => "purpose_of_use_not_allowed",
            AuthError::EmergencyPrivilegeNotAllowed => "emergency_privilege_not_allowed",
            AuthError::ScopeMissing => "scope_missing",
            AuthError::ScopeNotGranted => "scope_not_granted",
            AuthError::TokenMalformed => "token_malformed",
            AuthError::TokenBadSignature => "token_signature_invalid",
            AuthError::TokenExpired => "token_expired",
            AuthError::TokenWrongIssuer => "token_issuer_invalid",
            AuthError::TokenWrongAudience => "token_audience_invalid",
            AuthError::TokenClientRevoked => "token_client_revoked",
            AuthError::PatientLoginFailed => "patient_login_failed",
            AuthError::PatientLocked => "patient_locked",
            AuthError::CardSignatureInvalid => "card_signature_invalid",
            AuthError::TokenAccountDisabled => "token_account_disabled",
            AuthError::Unavailable(_) => "temporarily_unavailable",
        }
    }

    /// The OAuth 2.0 error code: RFC 6749 §5.2 at the token endpoint, RFC 6750 §3.1 for bearer
    /// tokens, `temporarily_unavailable` for [`AuthError::Unavailable`].
    pub fn oauth_error(&self) -> &'static str {
        match self {
            AuthError::RequestMalformed { .. } => "invalid_request",
            AuthError::UnsupportedGrantType => "unsupported_grant_type",
            AuthError::ScopeMissing | AuthError::ScopeNotGranted => "invalid_scope",
            AuthError::TokenMalformed
            | AuthError::TokenBadSignature
            | AuthError::TokenExpired
            | AuthError::TokenWrongIssuer
            | AuthError::TokenWrongAudience
            | AuthError::TokenClientRevoked
            | AuthError::TokenAccountDisabled => "invalid_token",
            // RFC 6749 §5.2: the authorisation grant (here the password and the card's signature)
            // is invalid.
            AuthError::PatientLoginFailed
            | AuthError::PatientLocked
            | AuthError::CardSignatureInvalid => "invalid_grant",
            AuthError::Unavailable(_) => "temporarily_unavailable",
            // SMART Backend Services: a failed client authentication is `invalid_client`; so is a
            // refused statement about the acting user, which the client authenticated with.
            _ => "invalid_client",
        }
    }

    /// Whether this is our failure (503, retry later) rather than a refusal (401).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, AuthError::Unavailable(_))
    }

    /// The token endpoint's JSON error body: `{"error": …, "error_description": <reason code>}`.
    pub fn oauth_body(&self) -> Value {
        json!({ "error": self.oauth_error(), "error_description": self.reason() })
    }

    /// The `WWW-Authenticate` header value for a refused bearer token (RFC 6750 §3).
    pub fn www_authenticate(&self) -> String {
        format!(
            "Bearer error=\"{}\", error_description=\"{}\"",
            self.oauth_error(),
            self.reason()
        )
    }
}

impl AuthError {
    pub(crate) fn unavailable(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        AuthError::Unavailable(Box::new(error))
    }
}
