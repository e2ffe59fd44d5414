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

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use async_trait::async_trait;

use super::{Registry, RegistryError, RegistryState};
use crate::files;
use crate::model::{Client, ClientId, Organisation, OrganisationId};

/// The registry in a JSON file (format in `docs/auth.md`).
#[derive(Debug)]
pub struct JsonFileRegistry {
    path: PathBuf,
    cache: Mutex<Option<(Fingerprint, RegistryState)>>,
}

/// What tells us the file changed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl Fingerprint {
    fn of(path: &Path) -> std::io::Result<Self> {
        let metadata = fs::metadata(path)?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&metadata);
        #[cfg(not(unix))]
        let inode = 0;
        Ok(Fingerprint {
            modified: metadata.modified().ok(),
            len: metadata.len(),
            inode,
        })
    }
}

impl JsonFileRegistry {
    /// Opens the registry at `path`, creating an empty one when there is no file.
    ///
    /// # Errors
    /// [`RegistryError::Io`] when it cannot be read or created, [`RegistryError::Corrupt`] when
    /// it is not a valid registry.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, RegistryError> {
        let path = path.into();
        if !path.exists() {
            files::create_new(&path, &serialise(&RegistryState::empty())?, 0o644)?;
        }
        let registry = JsonFileRegistry {
            path,
            cache: Mutex::new(None),
        };
        registry.read(|_| ())?;
        Ok(registry)
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the current state, reading the file again when it changed.
    fn read<T>(&self, f: impl FnOnce(&RegistryState) -> T) -> Result<T, RegistryError> {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let fingerprint = Fingerprint::of(&self.path)?;
        let fresh = matches!(&*cache, Some((known, _)) if *known == fingerprint);
        if !fresh {
            // Forget the old state first: if the new file is bad, nothing stale is served.
            *cache = None;
            let state = load(&self.path)?;
            *cache = Some((fingerprint, state));
        }
        let (_, state) = cache.as_ref().ok_or(RegistryError::NotFound("registry"))?;
        Ok(f(state))
    }

    /// Applies `change` to the file's current content under the write lock.
    fn write(
        &self,
        change: impl FnOnce(&mut RegistryState) -> Result<(), RegistryError>,
    ) -> Result<(), RegistryError> {
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock_path(&self.path))?;
        lock.lock()?;
        let result = (|| {
            let mut state = load(&self.path)?;
            change(&mut state)?;
            files::replace(&self.path, &serialise(&state)?, 0o644)?;
            let fingerprint = Fingerprint::of(&self.path)?;
            *self
                .cache
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((fingerprint, state));
            Ok(())
        })();
        // Closing the file releases the lock too; unlocking explicitly makes the order plain.
        let _ = File::unlock(&lock);
        result
    }
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    path.with_file_name(name)
}

fn load(path: &Path) -> Result<RegistryState, RegistryError> {
    let text = fs::read(path)?;
    let state: RegistryState =
        serde_json::from_slice(&text).map_err(|error| RegistryError::Corrupt {
            line: error.line(),
            column: error.column(),
        })?;
    state.checked()
}

fn serialise(state: &RegistryState) -> Result<Vec<u8>, RegistryError> {
    let mut bytes = serde_json::to_vec_pretty(state)
        .map_err(|_| RegistryError::Io(std::io::Error::other("registry serialisation failed")))?;
    bytes.push(b'\n');
    Ok(bytes)
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
