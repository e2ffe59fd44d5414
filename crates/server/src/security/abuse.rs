//! Abuse controls: a token bucket per client (429 with `Retry-After` when it is empty) and a watch
//! on how many different patients one user reads in a short time (an alert past a threshold).
//!
//! Both are in memory, per server process: behind a load balancer each process limits its share.
//! They hold client and user ids and, for the watch, the patient ids seen in the current window
//! (never logged, dropped when the window ends).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Limits of the abuse controls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AbuseSettings {
    /// Sustained requests per second allowed per client (or patient account).
    pub requests_per_second: f64,
    /// Requests a client may send at once above the sustained rate.
    pub burst: f64,
    /// Distinct patients one user may read within [`AbuseSettings::unusual_window`] before an
    /// alert is raised.
    pub unusual_patients: usize,
    /// The window of [`AbuseSettings::unusual_patients`].
    pub unusual_window: Duration,
}

impl Default for AbuseSettings {
    /// 200 requests/s sustained, bursts of 400, an alert past 50 patients in 10 minutes: a busy
    /// hospital system's traffic passes, one user paging through the population does not go
    /// unnoticed.
    fn default() -> Self {
        AbuseSettings {
            requests_per_second: 200.0,
            burst: 400.0,
            unusual_patients: 50,
            unusual_window: Duration::from_secs(600),
        }
    }
}

/// The most clients (or users) tracked at once; the stalest are dropped beyond it.
const MAX_TRACKED: usize = 100_000;

/// Token buckets per client.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    pub(crate) fn new(settings: &AbuseSettings) -> Self {
        RateLimiter {
            rate: settings.requests_per_second.max(0.001),
            burst: settings.burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `client`'s bucket at `now`; `Err(seconds to wait)` when it is empty.
    pub(crate) fn check(&self, client: &str, now: Instant) -> Result<(), u64> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(client) {
            // Full buckets carry no information: drop them.
            let burst = self.burst;
            let rate = self.rate;
            buckets.retain(|_, bucket| {
                bucket.tokens + now.duration_since(bucket.updated).as_secs_f64() * rate < burst
            });
        }
        let bucket = buckets.entry(client.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.rate;
            // Whole seconds for `Retry-After`, at least one.
            Err((wait.ceil() as u64).max(1))
        }
    }
}

/// Distinct patients read per user in fixed windows.
#[derive(Debug)]
pub(crate) struct AccessWatch {
    threshold: usize,
    window: Duration,
    users: Mutex<HashMap<String, Window>>,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    patients: HashSet<String>,
    alerted: bool,
}

impl AccessWatch {
    pub(crate) fn new(settings: &AbuseSettings) -> Self {
        AccessWatch {
            threshold: settings.unusual_patients.max(1),
            window: settings.unusual_window,
            users: Mutex::new(HashMap::new()),
        }
    }

    /// Notes that `user` read `patients` at `now`. Returns the number of distinct patients in the
    /// current window the first time it passes the threshold (once per window), else `None`.
    pub(crate) fn observe<'a>(
        &self,
        user: &str,
        patients: impl IntoIterator<Item = &'a str>,
        now: Instant,
    ) -> Option<usize> {
        let Ok(mut users) = self.users.lock() else {
            return None;
        };
        if users.len() >= MAX_TRACKED && !users.contains_key(user) {
            let window = self.window;
            users.retain(|_, entry| now.duration_since(entry.started) < window);
        }
        let entry = users.entry(user.to_owned()).or_insert_with(|| Window {
            started: now,
            patients: HashSet::new(),
            alerted: false,
        });
        if now.saturating_duration_since(entry.started) >= self.window {
            *entry = Window {
                started: now,
                patients: HashSet::new(),
                alerted: false,
            };
        }
        for patient in patients {
            if entry.patients.len() > self.threshold {
                break;
            }
            entry.patients.insert(patient.to_owned());
        }
        if entry.patients.len() > self.threshold && !entry.alerted {
            entry.alerted = true;
            return Some(entry.patients.len());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AbuseSettings {
        AbuseSettings {
            requests_per_second: 2.0,
            burst: 3.0,
            unusual_patients: 3,
            unusual_window: Duration::from_secs(60),
        }
    }

    #[test]
    fn a_client_gets_its_burst_then_waits_for_the_rate() {
        let limiter = RateLimiter::new(&settings());
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check("a", start), Ok(()));
        }
        assert_eq!(limiter.check("a", start), Err(1));
        // Another client has its own bucket.
        assert_eq!(limiter.check("b", start), Ok(()));
        // Half a second later one token is back (2 per second).
        assert_eq!(
            limiter.check("a", start + Duration::from_millis(500)),
            Ok(())
        );
        assert!(
            limiter
                .check("a", start + Duration::from_millis(500))
                .is_err()
        );
    }

    #[test]
    fn the_watch_alerts_once_per_window_past_the_threshold() {
        let watch = AccessWatch::new(&settings());
        let start = Instant::now();
        assert_eq!(watch.observe("u", ["p1", "p2"], start), None);
        // The same patients again do not count twice.
        assert_eq!(watch.observe("u", ["p1", "p2", "p3"], start), None);
        assert_eq!(watch.observe("u", ["p4"], start), Some(4));
        assert_eq!(watch.observe("u", ["p5"], start), None);
        // Another user is counted apart.
        assert_eq!(watch.observe("v", ["p1"], start), None);
        // A new window starts from nothing.
        let later = start + Duration::from_secs(61);
        assert_eq!(watch.observe("u", ["p1", "p2", "p3"], later), None);
        assert_eq!(watch.observe("u", ["p9"], later), Some(4));
    }
}
