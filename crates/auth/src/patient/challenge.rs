//! Challenges for a patient's card to sign: 32 random bytes (unpadded base64url, 43 characters),
//! each valid for [`CHALLENGE_LIFETIME`] and good for one attempt, whether that attempt succeeds
//! or not.
//!
//! [`ChallengeStore`] keeps them in memory, in one process: a challenge issued by one server
//! process is unknown to another (several processes behind one endpoint need sticky sessions for
//! the challenge and the login, or a shared store). It is bounded: expired challenges are dropped
//! on every call, and when it is full of live ones the oldest is dropped to make room. Dropping a
//! challenge early can only make its login fail; it never makes a signature count twice (unlike
//! the replay cache of client assertions, which must refuse rather than forget).

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::jws;

/// How long a challenge can be answered.
pub const CHALLENGE_LIFETIME: Duration = Duration::from_secs(120);

/// A challenge just issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The challenge, to be signed as it is (unpadded base64url of 32 random bytes).
    pub value: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

impl Challenge {
    /// The body the server answers a challenge request with: `{"challenge", "expires_in"}`.
    /// Serve it with `Cache-Control: no-store`.
    pub fn response_body(&self) -> Value {
        json!({ "challenge": self.value, "expires_in": self.expires_in })
    }
}

/// Live challenges of this process.
#[derive(Debug)]
pub struct ChallengeStore {
    capacity: usize,
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    expiry_by_value: HashMap<String, SystemTime>,
    /// The same challenges ordered by expiry: expired ones, and when full the oldest, are dropped
    /// from the front.
    by_expiry: BTreeSet<(SystemTime, String)>,
}

impl Entries {
    fn remove_first(&mut self) {
        if let Some((_, value)) = self.by_expiry.pop_first() {
            self.expiry_by_value.remove(&value);
        }
    }

    fn prune(&mut self, now: SystemTime) {
        while self
            .by_expiry
            .first()
            .is_some_and(|(expires_at, _)| *expires_at <= now)
        {
            self.remove_first();
        }
    }
}

impl ChallengeStore {
    /// The default capacity: 100,000 live challenges, about 830 challenge requests a second
    /// sustained before live ones are dropped early.
    pub const DEFAULT_CAPACITY: usize = 100_000;

    /// A store holding at most `capacity` live challenges (at least one).
    pub fn new(capacity: usize) -> Self {
        ChallengeStore {
            capacity: capacity.max(1),
            entries: Mutex::new(Entries::default()),
        }
    }

    /// Issues a new challenge at `now`.
    ///
    /// # Errors
    /// When the system has no randomness.
    pub fn issue(&self, now: SystemTime) -> Result<Challenge, std::io::Error> {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| std::io::Error::other("no randomness"))?;
        let value = jws::encode_bytes(&bytes);
        let expires_at = now + CHALLENGE_LIFETIME;
        let mut entries = self.lock();
        entries.prune(now);
        while entries.expiry_by_value.len() >= self.capacity {
            entries.remove_first();
        }
        entries.expiry_by_value.insert(value.clone(), expires_at);
        entries.by_expiry.insert((expires_at, value.clone()));
        Ok(Challenge {
            value,
            expires_in: CHALLENGE_LIFETIME.as_secs(),
        })
    }

    /// Consumes `value`: whether it was issued here and is still live at `now`. It is gone
    /// afterwards either way.
    pub fn take(&self, value: &str, now: SystemTime) -> bool {
        let mut entries = self.lock();
        let live = match entries.expiry_by_value.remove(value) {
            Some(expires_at) => {
                entries.by_expiry.remove(&(expires_at, value.to_owned()));
                expires_at > now
            }
            None => false,
        };
        entries.prune(now);
        live
    }

    /// How many challenges it holds (expired ones included until the next call drops them).
    pub fn len(&self) -> usize {
        self.lock().expiry_by_value.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for ChallengeStore {
    fn default() -> Self {
        ChallengeStore::new(ChallengeStore::DEFAULT_CAPACITY)
    }
}
