//! Who is asking: organisations and the facility systems (clients) they register, SMART Backend
//! Services token exchange with the acting user carried as IHE IUA claims, and the [`Principal`]
//! every FHIR request is made by.
//!
//! - [`Registry`] ([`MemoryRegistry`], [`JsonFileRegistry`]): organisations ([`Organisation`]: kind,
//!   national identifiers, area) and clients ([`Client`]: public keys, revocation).
//! - [`TokenService::exchange`]: a `client_credentials` request with a signed client assertion →
//!   an [`AccessToken`] (ES256 JWT, at most five minutes) bound to organisation, client, user,
//!   role, purpose of use and the granted SMART v2 scopes.
//! - [`TokenService::verify_access_token`]: a bearer token → the [`Principal`], on every request.
//! - Patients ([`PatientAccount`], [`PatientDirectory`]): [`TokenService::patient_login`] with a
//!   password *and* the card's signature of a [`TokenService::issue_challenge`] challenge → a
//!   [`PatientToken`] for their own compartment; [`TokenService::verify_bearer`] reads either kind
//!   of token into a [`Bearer`]; [`TokenService::verify_card_signature`] checks a card signature a
//!   facility presents (a consent at its reception).
//! - [`TokenService::smart_configuration`], [`TokenService::capability_security`]: what the server
//!   announces.
//! - [`policy`]: the one table of what each kind of organisation may be granted.
//! - [`AuthError`]: one client-safe reason code per rejection.
//!
//! No HTTP here (the server owns the routes) and no network calls (a client's JWK Set URL is
//! fetched through the server's [`JwksFetcher`]). Nothing this crate returns in an error or
//! `Debug` output contains a token, an assertion, a key, a password (or its hash), a patient id or
//! a claim value. `docs/auth.md` has the
//! flow, the claims and the wiring.

mod client_key;
mod error;
mod files;
mod jti;
mod jwk;
mod jws;
mod key;
mod model;
mod patient;
mod pem;
pub mod policy;
mod registry;
mod scope;
mod smart;
mod token;

pub use client_key::{ActingUser, ClientKey, token_request};
pub use error::AuthError;
pub use jti::{JtiCache, JtiError, MemoryJtiCache};
pub use jwk::{JwkSet, JwksUrl, JwksUrlAllowList, MAX_KEYS, PublicJwk};
pub use key::{KeyError, ServiceKey};
pub use model::{
    CARE_PROVIDER_NUMBER_SYSTEM, Client, ClientId, ClientKeys, INSTITUTION_NUMBER_SYSTEM,
    INSURER_NUMBER_SYSTEM, ModelError, MunicipalityCode, OrgIdentifier, Organisation,
    OrganisationId, OrganisationKind, PURPOSE_OF_USE_SYSTEM, Prefecture, PurposeOfUse, ROLE_SYSTEM,
    Role, User,
};
pub use patient::{
    AccountId, CARD_MESSAGE_VERSION, CHALLENGE_LIFETIME, CardKey, CardKeyError, CardPublicKey,
    Challenge, ChallengeStore, DirectoryError, JsonFilePatientDirectory, LOCKOUT_DURATION,
    LOGIN_PURPOSE, MAX_FAILED_LOGINS, MemoryPatientDirectory, Password, PasswordHash,
    PatientAccount, PatientDirectory, card_message, consent_purpose,
};
pub use registry::{JsonFileRegistry, MemoryRegistry, Registry, RegistryError};
pub use scope::{Permission, Permissions, RequestedScope, Scopes, parse_requested};
pub use smart::OAUTH_URIS_EXTENSION;
pub use token::{
    ACCESS_TOKEN_TYPE, ASSERTION_TYPE, AccessToken, AuthSettings, Bearer, CLOCK_SKEW, GRANT_TYPE,
    JwksFetcher, MAX_ACCESS_TOKEN_LIFETIME, MAX_ASSERTION_LIFETIME, PATIENT_GRANT_TYPE,
    PATIENT_SCOPE, PatientPrincipal, PatientToken, Principal, SettingsError, TokenService,
    claimed_client_id,
};
