//! The lockout of patient accounts: after [`MAX_FAILED_LOGINS`] consecutive failed logins, an
//! account name is refused for [`LOCKOUT_DURATION`], whatever is presented.
//!
//! Failures are counted per *name* given as `username`, whether an account has that name or not:
//! a name nobody has is locked exactly like a real one, so being locked says nothing about the
//! account's existence. A success clears the count; so does [`LOCKOUT_DURATION`] without a
//! failure (the failures of a streak each follow the previous one within that time).
//!
//! In memory, per process; bounded ([`Lockout::DEFAULT_CAPACITY`] names): when full, the name
//! whose record would be forgotten first is dropped to make room (filling it takes that many
//! failed logins, each costing a password hash, within fifteen minutes).

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use super::account::AccountId;

/// Consecutive failed logins after which an account is locked.
pub const MAX_FAILED_LOGINS: u32 = 5;
/// How long a locked account stays locked (and how long a failure is remembered).
pub const LOCKOUT_DURATION: Duration = Duration::from_secs(15 * 60);

/// Failed logins per account name.
#[derive(Debug)]
pub(crate) struct Lockout {
    capacity: usize,
    records: Mutex<Records>,
}

#[derive(Debug, Default)]
struct Records {
    by_name: HashMap<AccountId, Record>,
    /// (forget at, name): the order records are forgotten in.
    by_expiry: BTreeSet<(SystemTime, AccountId)>,
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    /// When the record is forgotten: the last failure plus [`LOCKOUT_DURATION`]. A locked account
    /// is locked until then.
    forget_at: SystemTime,
}

impl Records {
    fn remove(&mut self, name: &AccountId) {
        if let Some(record) = self.by_name.remove(name) {
            self.by_expiry.remove(&(record.forget_at, name.clone()));
        }
    }

    fn prune(&mut self, now: SystemTime) {
        while let Some((forget_at, _)) = self.by_expiry.first() {
            if *forget_at > now {
                break;
            }
            if let Some((_, name)) = self.by_expiry.pop_first() {
                self.by_name.remove(&name);
            }
        }
    }
}

impl Lockout {
    /// The default capacity.
    pub const DEFAULT_CAPACITY: usize = 100_000;

    pub fn new(capacity: usize) -> Self {
        Lockout {
            capacity: capacity.max(1),
            records: Mutex::new(Records::default()),
        }
    }

    /// Whether `name` is locked at `now`.
    pub fn is_locked(&self, name: &AccountId, now: SystemTime) -> bool {
        let mut records = self.lock();
        records.prune(now);
        records
            .by_name
            .get(name)
            .is_some_and(|record| record.failures >= MAX_FAILED_LOGINS)
    }

    /// Records a failed login of `name` at `now`.
    pub fn failed(&self, name: &AccountId, now: SystemTime) {
        let mut records = self.lock();
        records.prune(now);
        let failures = records
            .by_name
            .get(name)
            .map_or(0, |record| record.failures);
        records.remove(name);
        while records.by_name.len() >= self.capacity {
            match records.by_expiry.pop_first() {
                Some((_, oldest)) => {
                    records.by_name.remove(&oldest);
                }
                None => break,
            }
        }
        let record = Record {
            failures: failures.saturating_add(1),
            forget_at: now + LOCKOUT_DURATION,
        };
        records.by_expiry.insert((record.forget_at, name.clone()));
        records.by_name.insert(name.clone(), record);
    }

    /// Records a successful login of `name`: its count starts again.
    pub fn succeeded(&self, name: &AccountId) {
        self.lock().remove(name);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Records> {
        self.records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for Lockout {
    fn default() -> Self {
        Lockout::new(Lockout::DEFAULT_CAPACITY)
    }
}
