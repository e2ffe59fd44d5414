//! Access tokens whose signature this process has already checked, until they expire.
//!
//! Checking our ES256 signature is most of the cost of verifying a bearer token (~45 of ~58 µs),
//! and a client sends the same token with every request for up to five minutes. So the claims of
//! a token that passed the checks that depend only on its bytes (form, `typ`, `alg`, signature,
//! issuer, audience) are kept, keyed by the SHA-256 of the token, until its `exp`. What can change
//! while a token lives is still checked on every request by the callers: expiry against the
//! request's time, the client neither revoked nor removed and its organisation still registered,
//! the patient's account still enabled and still theirs.
//!
//! Only tokens this service signed get in (a forged or altered token fails the signature check and
//! is never kept), so the entries are bounded by the tokens issued in the last five minutes, and
//! in any case by [`CAPACITY`]: when it is reached, expired entries are dropped, and if that is not
//! enough, all of them (each live token is then verified in full once more). The token itself is
//! not kept, only its hash.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use aws_lc_rs::digest;
use serde_json::{Map, Value};

/// The most tokens kept at once (a few hundred bytes each).
pub(super) const CAPACITY: usize = 10_000;

/// The checked claims of one of our access tokens.
#[derive(Debug)]
pub(super) struct Verified {
    pub(super) claims: Map<String, Value>,
    /// `exp`, in seconds since the Unix epoch.
    pub(super) expires: i64,
}

/// The tokens checked so far (see the module doc).
#[derive(Debug, Default)]
pub(super) struct VerifiedTokens {
    entries: Mutex<HashMap<[u8; 32], Arc<Verified>>>,
}

/// The key of a token: its SHA-256.
pub(super) type Key = [u8; 32];

impl VerifiedTokens {
    /// The key of `bearer`.
    pub(super) fn key(bearer: &str) -> Key {
        let hash = digest::digest(&digest::SHA256, bearer.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(hash.as_ref());
        key
    }

    /// The checked claims of the token with `key`, if it was checked before (expired or not: the
    /// caller compares `expires` with the request's time).
    pub(super) fn get(&self, key: &Key) -> Option<Arc<Verified>> {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    /// Keeps a token that passed every check of its bytes, at `now` (seconds since the epoch).
    pub(super) fn insert(&self, key: Key, verified: Arc<Verified>, now: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= CAPACITY {
            entries.retain(|_, kept| kept.expires > now);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key, verified);
    }

    /// How many tokens are kept.
    pub(super) fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests;
