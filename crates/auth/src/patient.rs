//! Patients' own login: an account per patient, with two factors that must both be shown every
//! time, a password (something they know) and their card (something they have), the card being an
//! Ed25519 key pair whose private half never leaves it.
//!
//! - [`PatientAccount`] ([`AccountId`], [`PasswordHash`], [`CardPublicKey`]) and the
//!   [`PatientDirectory`] that keeps them ([`MemoryPatientDirectory`],
//!   [`JsonFilePatientDirectory`]);
//! - [`ChallengeStore`]: random, single-use, two-minute challenges for the card to sign;
//! - [`card_message`]: the exact bytes a card signs, for a login or for a consent given at a
//!   facility's reception; [`CardKey`]: a software card for demos, tests and the CLI;
//! - the lockout of an account after [`MAX_FAILED_LOGINS`] failures (`lockout.rs`).
//!
//! The login itself, the patient access token and its verification are methods of
//! [`crate::TokenService`] (`token/patient_login.rs`). Challenges and lockouts live in memory, per
//! process (docs/auth.md, "Patients"). Nothing here shows a password, a hash, a key or a patient
//! id in `Debug` or in an error.

mod account;
mod card;
mod challenge;
mod directory;
mod file;
mod lockout;

pub(crate) use self::account::is_fhir_id;
pub use self::account::{AccountId, CardPublicKey, Password, PasswordHash, PatientAccount};
pub use self::card::{
    CARD_MESSAGE_VERSION, CardKey, CardKeyError, LOGIN_PURPOSE, card_message, consent_purpose,
};
pub use self::challenge::{CHALLENGE_LIFETIME, Challenge, ChallengeStore};
pub use self::directory::{DirectoryError, MemoryPatientDirectory, PatientDirectory};
pub use self::file::JsonFilePatientDirectory;
pub(crate) use self::lockout::Lockout;
pub use self::lockout::{LOCKOUT_DURATION, MAX_FAILED_LOGINS};

#[cfg(test)]
mod tests;
