//! The directory of patient accounts: the [`PatientDirectory`] trait the token service reads and
//! the CLI writes, and an in-memory implementation (tests, demo); the JSON file is `file.rs`.
//!
//! Rules every implementation keeps: account ids are unique, a patient has at most one enabled
//! account, a card is registered to one account only (ever: a lost card's key is never accepted
//! again), and a disabled account stays disabled (it is kept, so that its id is never reused and
//! its audit entries still resolve). A patient whose account was disabled (a lost card) gets a
//! new account, with a new id and a new card.

use std::sync::Mutex;
use std::time::SystemTime;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::account::{AccountId, PatientAccount};
use crate::model::ModelError;

/// Why a directory call failed. Messages name what kind of thing is at fault, never an id, a
/// patient or a key.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// No account with that id.
    #[error("no such {0}")]
    NotFound(&'static str),
    /// The account id, the patient or the card has an account already.
    #[error("{0} already registered")]
    Duplicate(&'static str),
    /// A value breaks a rule of the model.
    #[error("invalid account: {0}")]
    Invalid(#[from] ModelError),
    /// The directory file does not parse or breaks a rule; nothing from it is used.
    #[error("the patient directory file is invalid (line {line}, column {column})")]
    Corrupt {
        /// 1-based line of the first problem (0 when it is a rule across entries).
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// The directory file could not be read or written.
    #[error("the patient directory file could not be read or written")]
    Io(#[from] std::io::Error),
}

/// Patients' accounts.
///
/// Reads are on the login path and on every request made with a patient token (to see whether
/// the account was disabled since), so implementations answer them from memory.
#[async_trait]
pub trait PatientDirectory: Send + Sync {
    /// The account with `id`, disabled or not.
    ///
    /// # Errors
    /// [`DirectoryError::Io`]/[`DirectoryError::Corrupt`] when the directory cannot be read.
    async fn account(&self, id: &AccountId) -> Result<Option<PatientAccount>, DirectoryError>;

    /// The account of the patient whose `Patient` resource has logical id `patient`: their
    /// enabled account, or when they have none their latest disabled one.
    ///
    /// # Errors
    /// As [`PatientDirectory::account`].
    async fn account_for_patient(
        &self,
        patient: &str,
    ) -> Result<Option<PatientAccount>, DirectoryError>;

    /// Every account, in registration order.
    ///
    /// # Errors
    /// As [`PatientDirectory::account`].
    async fn accounts(&self) -> Result<Vec<PatientAccount>, DirectoryError>;

    /// Registers an account.
    ///
    /// # Errors
    /// [`DirectoryError::Duplicate`] when its id (of a disabled account too) or its card (of a
    /// disabled account too) is taken, or its patient has an enabled account.
    async fn add_account(&self, account: PatientAccount) -> Result<(), DirectoryError>;

    /// Disables an account from `at` on: it logs in no more, and its tokens stop verifying.
    /// Disabling a disabled account keeps the first time.
    ///
    /// # Errors
    /// [`DirectoryError::NotFound`] when there is no such account.
    async fn disable_account(&self, id: &AccountId, at: SystemTime) -> Result<(), DirectoryError>;
}

/// The directory's content, and the rules across entries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DirectoryState {
    pub version: u32,
    #[serde(default)]
    pub accounts: Vec<PatientAccount>,
}

/// The directory file format version.
pub(crate) const VERSION: u32 = 1;

impl DirectoryState {
    pub fn empty() -> Self {
        DirectoryState {
            version: VERSION,
            accounts: Vec::new(),
        }
    }

    pub fn account(&self, id: &AccountId) -> Option<&PatientAccount> {
        self.accounts.iter().find(|known| known.account_id() == id)
    }

    pub fn account_for_patient(&self, patient: &str) -> Option<&PatientAccount> {
        let mut of_patient = self
            .accounts
            .iter()
            .filter(|known| known.patient() == patient);
        of_patient
            .clone()
            .find(|known| !known.is_disabled())
            .or_else(|| of_patient.next_back())
    }

    pub fn add_account(&mut self, account: PatientAccount) -> Result<(), DirectoryError> {
        if self.account(account.account_id()).is_some() {
            return Err(DirectoryError::Duplicate("account id"));
        }
        // Two accounts of one patient may coexist only while one of them is disabled.
        let conflicts = |known: &PatientAccount| {
            known.patient() == account.patient() && !known.is_disabled() && !account.is_disabled()
        };
        if self.accounts.iter().any(conflicts) {
            return Err(DirectoryError::Duplicate("patient"));
        }
        if self
            .accounts
            .iter()
            .any(|known| known.card() == account.card())
        {
            return Err(DirectoryError::Duplicate("card"));
        }
        self.accounts.push(account);
        Ok(())
    }

    pub fn disable_account(
        &mut self,
        id: &AccountId,
        at: SystemTime,
    ) -> Result<(), DirectoryError> {
        self.accounts
            .iter_mut()
            .find(|known| known.account_id() == id)
            .ok_or(DirectoryError::NotFound("account"))?
            .disable(at);
        Ok(())
    }

    /// Re-applies the cross-entry rules to a state read from a file.
    pub fn checked(self) -> Result<Self, DirectoryError> {
        if self.version != VERSION {
            return Err(DirectoryError::Corrupt { line: 0, column: 0 });
        }
        let mut checked = DirectoryState::empty();
        for account in self.accounts {
            checked.add_account(account)?;
        }
        Ok(checked)
    }
}

/// A directory in memory: for tests and the demo.
#[derive(Debug, Default)]
pub struct MemoryPatientDirectory {
    state: Mutex<DirectoryState>,
}

impl MemoryPatientDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        MemoryPatientDirectory {
            state: Mutex::new(DirectoryState::empty()),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut DirectoryState) -> T) -> T {
        // Every mutation checks first and then pushes or sets one field: a panic cannot leave
        // the state half-changed.
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut state)
    }
}

#[async_trait]
impl PatientDirectory for MemoryPatientDirectory {
    async fn account(&self, id: &AccountId) -> Result<Option<PatientAccount>, DirectoryError> {
        Ok(self.with(|state| state.account(id).cloned()))
    }

    async fn account_for_patient(
        &self,
        patient: &str,
    ) -> Result<Option<PatientAccount>, DirectoryError> {
        Ok(self.with(|state| state.account_for_patient(patient).cloned()))
    }

    async fn accounts(&self) -> Result<Vec<PatientAccount>, DirectoryError> {
        Ok(self.with(|state| state.accounts.clone()))
    }

    async fn add_account(&self, account: PatientAccount) -> Result<(), DirectoryError> {
        self.with(|state| state.add_account(account))
    }

    async fn disable_account(&self, id: &AccountId, at: SystemTime) -> Result<(), DirectoryError> {
        self.with(|state| state.disable_account(id, at))
    }
}
