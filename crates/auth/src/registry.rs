//! The registry of organisations and clients: the [`Registry`] trait the token service reads and
//! the CLI writes, an in-memory implementation (tests, demo) and a JSON-file one (`file.rs`).
//!
//! Rules every implementation keeps: organisation ids, client ids and institution numbers are
//! unique; a client names a registered organisation; a revoked client stays revoked (it is kept,
//! so that its id can never be reused by someone else and its audit entries still resolve).

mod file;

use std::sync::Mutex;
use std::time::SystemTime;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use self::file::JsonFileRegistry;
use crate::model::{Client, ClientId, ModelError, Organisation, OrganisationId};

/// Why a registry call failed. Messages name what kind of thing is at fault, never an id, a name
/// or a key.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No organisation or client with that id.
    #[error("no such {0}")]
    NotFound(&'static str),
    /// The id (or institution number) is taken.
    #[error("{0} already registered")]
    Duplicate(&'static str),
    /// A value breaks a rule of the model.
    #[error("invalid registration: {0}")]
    Invalid(#[from] ModelError),
    /// The registry file does not parse or breaks a rule; nothing from it is used.
    #[error("the registry file is invalid (line {line}, column {column})")]
    Corrupt {
        /// 1-based line of the first problem (0 when it is a rule across entries).
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// The registry file could not be read or written.
    #[error("the registry file could not be read or written")]
    Io(#[from] std::io::Error),
}

/// Organisations and their clients.
///
/// Reads are on the token path (once per token request, and once per FHIR request to see whether
/// the token's client was revoked since), so implementations answer them from memory.
#[async_trait]
pub trait Registry: Send + Sync {
    /// The organisation with `id`.
    ///
    /// # Errors
    /// [`RegistryError::Io`]/[`RegistryError::Corrupt`] when the registry cannot be read.
    async fn organisation(
        &self,
        id: &OrganisationId,
    ) -> Result<Option<Organisation>, RegistryError>;

    /// The client with `id`, revoked or not.
    ///
    /// # Errors
    /// [`RegistryError::Io`]/[`RegistryError::Corrupt`] when the registry cannot be read.
    async fn client(&self, id: &ClientId) -> Result<Option<Client>, RegistryError>;

    /// Every organisation, in registration order.
    ///
    /// # Errors
    /// As [`Registry::organisation`].
    async fn organisations(&self) -> Result<Vec<Organisation>, RegistryError>;

    /// Every client, in registration order.
    ///
    /// # Errors
    /// As [`Registry::organisation`].
    async fn clients(&self) -> Result<Vec<Client>, RegistryError>;

    /// Registers an organisation.
    ///
    /// # Errors
    /// [`RegistryError::Duplicate`] when its id or one of its identifiers is taken.
    async fn add_organisation(&self, organisation: Organisation) -> Result<(), RegistryError>;

    /// Registers a client.
    ///
    /// # Errors
    /// [`RegistryError::NotFound`] when its organisation is not registered,
    /// [`RegistryError::Duplicate`] when its id is taken (by a revoked client too).
    async fn add_client(&self, client: Client) -> Result<(), RegistryError>;

    /// Revokes a client from `at` on: it gets no new token, and its tokens stop verifying.
    /// Revoking a revoked client keeps the first revocation time.
    ///
    /// # Errors
    /// [`RegistryError::NotFound`] when there is no such client.
    async fn revoke_client(&self, id: &ClientId, at: SystemTime) -> Result<(), RegistryError>;
}

/// The registry's content, and the rules across entries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegistryState {
    pub version: u32,
    #[serde(default)]
    pub organisations: Vec<Organisation>,
    #[serde(default)]
    pub clients: Vec<Client>,
}

/// The registry file format version.
pub(crate) const VERSION: u32 = 1;

impl RegistryState {
    pub fn empty() -> Self {
        RegistryState {
            version: VERSION,
            ..RegistryState::default()
        }
    }

    pub fn organisation(&self, id: &OrganisationId) -> Option<&Organisation> {
        self.organisations.iter().find(|known| known.id() == id)
    }

    pub fn client(&self, id: &ClientId) -> Option<&Client> {
        self.clients.iter().find(|known| known.client_id() == id)
    }

    pub fn add_organisation(&mut self, organisation: Organisation) -> Result<(), RegistryError> {
        if self.organisation(organisation.id()).is_some() {
            return Err(RegistryError::Duplicate("organisation id"));
        }
        let taken = organisation.identifiers().iter().any(|identifier| {
            self.organisations
                .iter()
                .any(|known| known.identifiers().contains(identifier))
        });
        if taken {
            return Err(RegistryError::Duplicate("organisation identifier"));
        }
        self.organisations.push(organisation);
        Ok(())
    }

    pub fn add_client(&mut self, client: Client) -> Result<(), RegistryError> {
        if self.organisation(client.organisation()).is_none() {
            return Err(RegistryError::NotFound("organisation"));
        }
        if self.client(client.client_id()).is_some() {
            return Err(RegistryError::Duplicate("client id"));
        }
        self.clients.push(client);
        Ok(())
    }

    pub fn revoke_client(&mut self, id: &ClientId, at: SystemTime) -> Result<(), RegistryError> {
        self.clients
            .iter_mut()
            .find(|known| known.client_id() == id)
            .ok_or(RegistryError::NotFound("client"))?
            .revoke(at);
        Ok(())
    }

    /// Re-applies the cross-entry rules to a state read from a file.
    pub fn checked(self) -> Result<Self, RegistryError> {
        if self.version != VERSION {
            return Err(RegistryError::Corrupt { line: 0, column: 0 });
        }
        let mut checked = RegistryState::empty();
        for organisation in self.organisations {
            checked.add_organisation(organisation)?;
        }
        for client in self.clients {
            checked.add_client(client)?;
        }
        Ok(checked)
    }
}

/// A registry in memory: for tests and the demo.
#[derive(Debug, Default)]
pub struct MemoryRegistry {
    state: Mutex<RegistryState>,
}

impl MemoryRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        MemoryRegistry {
            state: Mutex::new(RegistryState::empty()),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut RegistryState) -> T) -> T {
        // A panic while holding the lock cannot leave the state half-changed: every mutation
        // checks first and then pushes or sets one field.
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut state)
    }
}

#[async_trait]
impl Registry for MemoryRegistry {
    async fn organisation(
        &self,
        id: &OrganisationId,
    ) -> Result<Option<Organisation>, RegistryError> {
        Ok(self.with(|state| state.organisation(id).cloned()))
    }

    async fn client(&self, id: &ClientId) -> Result<Option<Client>, RegistryError> {
        Ok(self.with(|state| state.client(id).cloned()))
    }

    async fn organisations(&self) -> Result<Vec<Organisation>, RegistryError> {
        Ok(self.with(|state| state.organisations.clone()))
    }

    async fn clients(&self) -> Result<Vec<Client>, RegistryError> {
        Ok(self.with(|state| state.clients.clone()))
    }

    async fn add_organisation(&self, organisation: Organisation) -> Result<(), RegistryError> {
        self.with(|state| state.add_organisation(organisation))
    }

    async fn add_client(&self, client: Client) -> Result<(), RegistryError> {
        self.with(|state| state.add_client(client))
    }

    async fn revoke_client(&self, id: &ClientId, at: SystemTime) -> Result<(), RegistryError> {
        self.with(|state| state.revoke_client(id, at))
    }
}
