//! The patient directory as one JSON file, shared by the server (which reads it) and the CLI
//! (which writes it while the server runs), exactly as the registry file is (`files.rs`): writes
//! under a lock on `<file>.lock` and atomic replacement, reads from memory after one `stat`,
//! re-read when the file changed (so an account disabled with the CLI is refused on the server's
//! next request), a broken file refused as a whole.
//!
//! The file holds password hashes: it is created readable and writable by its owner only
//! (0600), and every rewrite keeps that mode.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use async_trait::async_trait;

use super::account::{AccountId, PatientAccount};
use super::directory::{DirectoryError, DirectoryState, PatientDirectory};
use crate::files::{FileState, WatchedFile};

/// The patient directory in a JSON file (format in `docs/auth.md`).
#[derive(Debug)]
pub struct JsonFilePatientDirectory {
    file: WatchedFile<DirectoryState>,
}

impl JsonFilePatientDirectory {
    /// Opens the directory at `path`, creating an empty one (mode 0600) when there is no file.
    ///
    /// # Errors
    /// [`DirectoryError::Io`] when it cannot be read or created, [`DirectoryError::Corrupt`]
    /// when it is not a valid directory.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, DirectoryError> {
        Ok(JsonFilePatientDirectory {
            file: WatchedFile::open(path.into(), &DirectoryState::empty(), 0o600)?,
        })
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        self.file.path()
    }
}

impl FileState for DirectoryState {
    type Error = DirectoryError;

    fn io_error(error: std::io::Error) -> DirectoryError {
        DirectoryError::Io(error)
    }

    fn parse(bytes: &[u8]) -> Result<Self, DirectoryError> {
        let state: DirectoryState =
            serde_json::from_slice(bytes).map_err(|error| DirectoryError::Corrupt {
                line: error.line(),
                column: error.column(),
            })?;
        state.checked()
    }

    fn serialise(&self) -> Result<Vec<u8>, DirectoryError> {
        let mut bytes = serde_json::to_vec_pretty(self).map_err(|_| {
            DirectoryError::Io(std::io::Error::other(
                "patient directory serialisation failed",
            ))
        })?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}

#[async_trait]
impl PatientDirectory for JsonFilePatientDirectory {
    async fn account(&self, id: &AccountId) -> Result<Option<PatientAccount>, DirectoryError> {
        self.file.read(|state| state.account(id).cloned())
    }

    async fn account_for_patient(
        &self,
        patient: &str,
    ) -> Result<Option<PatientAccount>, DirectoryError> {
        self.file
            .read(|state| state.account_for_patient(patient).cloned())
    }

    async fn accounts(&self) -> Result<Vec<PatientAccount>, DirectoryError> {
        self.file.read(|state| state.accounts.clone())
    }

    async fn add_account(&self, account: PatientAccount) -> Result<(), DirectoryError> {
        self.file.write(|state| state.add_account(account))
    }

    async fn disable_account(&self, id: &AccountId, at: SystemTime) -> Result<(), DirectoryError> {
        self.file.write(|state| state.disable_account(id, at))
    }
}
