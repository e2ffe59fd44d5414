//! The registry as one JSON file, shared by the server (which reads it) and the CLI (which
//! writes it while the server runs).
//!
//! - Writes take an exclusive lock on `<file>.lock`, re-read the file, apply the change and
//!   replace the file atomically (temporary file, fsync, rename, fsync of the directory): two
//!   CLI commands at once cannot lose each other's change, and no reader ever sees half a file.
//! - Reads are answered from memory, after one `stat` of the file: when its inode, size or
//!   modification time changed, it is read again. A revocation written by the CLI therefore
//!   reaches the running server on its very next token request or FHIR request.
//! - A file that does not parse, or breaks a rule, is refused as a whole (reads fail with
//!   [`RegistryError::Corrupt`], and the server answers 503): the server never keeps serving
//!   an older state that a revocation might have changed.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use async_trait::async_trait;

use super::{Registry, RegistryError, RegistryState};
use crate::files::{FileState, WatchedFile};
use crate::model::{Client, ClientId, Organisation, OrganisationId};

/// The registry in a JSON file (format in `docs/auth.md`).
#[derive(Debug)]
pub struct JsonFileRegistry {
    file: WatchedFile<RegistryState>,
}

impl JsonFileRegistry {
    /// Opens the registry at `path`, creating an empty one when there is no file.
    ///
    /// # Errors
    /// [`RegistryError::Io`] when it cannot be read or created, [`RegistryError::Corrupt`] when
    /// it is not a valid registry.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, RegistryError> {
        Ok(JsonFileRegistry {
            file: WatchedFile::open(path.into(), &RegistryState::empty(), 0o644)?,
        })
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    fn read<T>(&self, f: impl FnOnce(&RegistryState) -> T) -> Result<T, RegistryError> {
        self.file.read(f)
    }

    fn write(
        &self,
        change: impl FnOnce(&mut RegistryState) -> Result<(), RegistryError>,
    ) -> Result<(), RegistryError> {
        self.file.write(change)
    }
}

impl FileState for RegistryState {
    type Error = RegistryError;

    fn io_error(error: std::io::Error) -> RegistryError {
        RegistryError::Io(error)
    }

    fn parse(bytes: &[u8]) -> Result<Self, RegistryError> {
        let state: RegistryState =
            serde_json::from_slice(bytes).map_err(|error| RegistryError::Corrupt {
                line: error.line(),
                column: error.column(),
            })?;
        state.checked()
    }

    fn serialise(&self) -> Result<Vec<u8>, RegistryError> {
        let mut bytes = serde_json::to_vec_pretty(self).map_err(|_| {
            RegistryError::Io(std::io::Error::other("registry serialisation failed"))
        })?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}

#[async_trait]
impl Registry for JsonFileRegistry {
    async fn organisation(
        &self,
        id: &OrganisationId,
    ) -> Result<Option<Organisation>, RegistryError> {
        self.read(|state| state.organisation(id).cloned())
    }

    async fn client(&self, id: &ClientId) -> Result<Option<Client>, RegistryError> {
        self.read(|state| state.client(id).cloned())
    }

    async fn organisations(&self) -> Result<Vec<Organisation>, RegistryError> {
        self.read(|state| state.organisations.clone())
    }

    async fn clients(&self) -> Result<Vec<Client>, RegistryError> {
        self.read(|state| state.clients.clone())
    }

    async fn add_organisation(&self, organisation: Organisation) -> Result<(), RegistryError> {
        self.write(|state| state.add_organisation(organisation))
    }

    async fn add_client(&self, client: Client) -> Result<(), RegistryError> {
        self.write(|state| state.add_client(client))
    }

    async fn revoke_client(&self, id: &ClientId, at: SystemTime) -> Result<(), RegistryError> {
        self.write(|state| state.revoke_client(id, at))
    }
}
