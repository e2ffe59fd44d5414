//! Who is asking: organisations and the facility systems (clients) they register.
//!
//! - [`Registry`] ([`MemoryRegistry`], [`JsonFileRegistry`]): organisations ([`Organisation`]: kind,
//!   national identifiers, area) and clients ([`Client`]: public keys, revocation).
//! - [`JtiCache`] ([`MemoryJtiCache`]): replay protection for client assertions.
//! - [`policy`]: the one table of what each kind of organisation may be granted, in SMART v2
//!   scopes ([`Scopes`]).
//!
//! No HTTP and no network calls here. Nothing this crate returns in an error or `Debug` output
//! contains a key or a claim value.

mod files;
mod jti;
mod jwk;
mod model;
pub mod policy;
mod registry;
mod scope;

pub use jti::{JtiCache, JtiError, MemoryJtiCache};
pub use jwk::{JwkSet, JwksUrl, JwksUrlAllowList, MAX_KEYS, PublicJwk};
pub use model::{
    CARE_PROVIDER_NUMBER_SYSTEM, Client, ClientId, ClientKeys, INSTITUTION_NUMBER_SYSTEM,
    INSURER_NUMBER_SYSTEM, ModelError, MunicipalityCode, OrgIdentifier, Organisation,
    OrganisationId, OrganisationKind, PURPOSE_OF_USE_SYSTEM, Prefecture, PurposeOfUse, ROLE_SYSTEM,
    Role, User,
};
pub use registry::{JsonFileRegistry, MemoryRegistry, Registry, RegistryError};
pub use scope::{Permission, Permissions, RequestedScope, Scopes, parse_requested};
