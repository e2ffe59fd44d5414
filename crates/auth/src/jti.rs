//! Replay protection: every client assertion's `jti` is remembered until the assertion could no
//! longer be accepted anyway, and a second use is refused.
//!
//! [`MemoryJtiCache`] serves one server process. It is bounded: when it is full of entries that
//! have not expired yet, it refuses to take more (the token request fails with 503) rather than
//! forget one early, which would open a replay window. Several server processes behind one
//! token endpoint need a shared implementation (a table with a unique key), left for the
//! PostgreSQL deployment.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::SystemTime;

use async_trait::async_trait;

/// Why the cache could not answer.
#[derive(Debug, thiserror::Error)]
pub enum JtiError {
    /// The cache holds its maximum of unexpired entries.
    #[error("the replay cache is full")]
    Full,
    /// A shared cache could not be reached.
    #[error("the replay cache is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Remembers assertion ids.
#[async_trait]
pub trait JtiCache: Send + Sync {
    /// Records `key` until `expires_at` and answers whether it was new. An entry whose expiry has
    /// passed (by `now`) counts as never seen.
    ///
    /// # Errors
    /// [`JtiError`] when the key could not be recorded; the caller must then refuse the
    /// assertion, as it cannot tell a replay from a first use.
    async fn first_use(
        &self,
        key: &str,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> Result<bool, JtiError>;
}

/// An in-process replay cache holding at most `capacity` unexpired entries.
#[derive(Debug)]
pub struct MemoryJtiCache {
    capacity: usize,
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    expiry_by_key: HashMap<String, SystemTime>,
    /// The same entries ordered by expiry, so that expired ones are dropped cheaply.
    by_expiry: BTreeSet<(SystemTime, String)>,
}

impl MemoryJtiCache {
    /// The default capacity: 100,000 assertions in flight, i.e. about 330 token requests a second
    /// sustained with five-minute assertions.
    pub const DEFAULT_CAPACITY: usize = 100_000;

    /// A cache holding at most `capacity` unexpired entries.
    pub fn new(capacity: usize) -> Self {
        MemoryJtiCache {
            capacity,
            entries: Mutex::new(Entries::default()),
        }
    }

    /// How many entries it holds (expired ones included until the next call drops them).
    pub fn len(&self) -> usize {
        self.lock().expiry_by_key.len()
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for MemoryJtiCache {
    fn default() -> Self {
        MemoryJtiCache::new(MemoryJtiCache::DEFAULT_CAPACITY)
    }
}

#[async_trait]
impl JtiCache for MemoryJtiCache {
    async fn first_use(
        &self,
        key: &str,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> Result<bool, JtiError> {
        let mut entries = self.lock();
        while let Some(first) = entries.by_expiry.first() {
            if first.0 > now {
                break;
            }
            if let Some((_, expired)) = entries.by_expiry.pop_first() {
                entries.expiry_by_key.remove(&expired);
            }
        }
        if entries.expiry_by_key.contains_key(key) {
            return Ok(false);
        }
        if entries.expiry_by_key.len() >= self.capacity {
            return Err(JtiError::Full);
        }
        entries.expiry_by_key.insert(key.to_owned(), expires_at);
        entries.by_expiry.insert((expires_at, key.to_owned()));
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
