//! What was measured: per class an HDR histogram of latencies (microseconds, 3 significant
//! digits, up to an hour), the answers counted by status, errors and dropped operations; and a
//! timeline of completions per second. Only requests *started* (or, in open loop, scheduled) inside
//! the measurement window count; the warm-up's are dropped.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::http::Failure;
use crate::mix::Class;

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An expected status (and, for a denied search, an empty Bundle).
    Expected(u16),
    /// Any other status: an error.
    Unexpected(u16),
    /// A denied search that returned entries: an error (a leak, if it ever happens).
    NotEmpty,
    /// No answer: an error.
    Failed(Failure),
    /// The token request before it failed (and is counted in its own class): an error.
    NoToken,
    /// Open loop: no free slot at the scheduled time, never sent.
    Dropped,
}

impl Outcome {
    /// The label the outcome is counted under in `statuses`.
    pub fn label(self) -> String {
        match self {
            Outcome::Expected(status) | Outcome::Unexpected(status) => status.to_string(),
            Outcome::NotEmpty => "200-not-empty".to_owned(),
            Outcome::Failed(failure) => failure.label().to_owned(),
            Outcome::NoToken => "no-token".to_owned(),
            Outcome::Dropped => "dropped".to_owned(),
        }
    }

    pub fn is_expected(self) -> bool {
        matches!(self, Outcome::Expected(_))
    }
}

/// One class's figures.
#[derive(Debug, Clone)]
pub struct ClassStats {
    /// Latencies of the expected answers, in microseconds.
    pub latency: Histogram<u64>,
    /// Requests sent (answered or failed; dropped ones are not sent).
    pub requests: u64,
    /// Answered as expected.
    pub ok: u64,
    /// Open loop: operations dropped for want of a free slot.
    pub dropped: u64,
    /// Every outcome by label (`"200"`, `"404"`, `"timeout"`, `"dropped"`, …).
    pub statuses: BTreeMap<String, u64>,
    /// The unexpected outcomes by label.
    pub errors: BTreeMap<String, u64>,
}

impl ClassStats {
    fn new() -> ClassStats {
        ClassStats {
            latency: new_histogram(),
            requests: 0,
            ok: 0,
            dropped: 0,
            statuses: BTreeMap::new(),
            errors: BTreeMap::new(),
        }
    }

    /// Requests that were not answered as expected (dropped operations not included).
    pub fn error_count(&self) -> u64 {
        self.requests - self.ok
    }
}

/// A histogram of microseconds from 1 µs to an hour, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// Completions in one second of the measurement.
#[derive(Debug, Clone, Default)]
pub struct Second {
    /// Per class (in [`Class::ALL`] order), requests completed in this second.
    pub completed: Vec<u64>,
    /// Of those, errors (and dropped operations scheduled in this second).
    pub errors: u64,
}

/// Collects outcomes during a run.
#[derive(Debug)]
pub struct Recorder {
    start: Instant,
    end: Instant,
    classes: Vec<ClassStats>,
    timeline: Vec<Second>,
}

impl Recorder {
    /// A recorder for the window `[start, start + duration)`.
    pub fn new(start: Instant, duration: Duration) -> Recorder {
        let seconds = duration.as_secs_f64().ceil().max(1.0) as usize;
        Recorder {
            start,
            end: start + duration,
            classes: Class::ALL.iter().map(|_| ClassStats::new()).collect(),
            timeline: (0..seconds)
                .map(|_| Second {
                    completed: vec![0; Class::ALL.len()],
                    errors: 0,
                })
                .collect(),
        }
    }

    /// Whether a request started at `started` is measured.
    pub fn measures(&self, started: Instant) -> bool {
        started >= self.start && started < self.end
    }

    /// Records a request of `class` started (or scheduled) at `started` that ended at `ended`.
    pub fn record(&mut self, class: Class, started: Instant, ended: Instant, outcome: Outcome) {
        if !self.measures(started) {
            return;
        }
        let stats = &mut self.classes[class.index()];
        *stats.statuses.entry(outcome.label()).or_default() += 1;
        let second =
            ((ended.max(started) - self.start).as_secs() as usize).min(self.timeline.len() - 1);
        match outcome {
            Outcome::Dropped => {
                stats.dropped += 1;
                *stats.errors.entry(outcome.label()).or_default() += 1;
                self.timeline[second].errors += 1;
                return;
            }
            Outcome::Expected(_) => {
                stats.requests += 1;
                stats.ok += 1;
                let micros = (ended.saturating_duration_since(started).as_micros() as u64).max(1);
                stats.latency.saturating_record(micros);
            }
            _ => {
                stats.requests += 1;
                *stats.errors.entry(outcome.label()).or_default() += 1;
                self.timeline[second].errors += 1;
            }
        }
        self.timeline[second].completed[class.index()] += 1;
    }

    /// The figures of every class, in [`Class::ALL`] order.
    pub fn classes(&self) -> &[ClassStats] {
        &self.classes
    }

    /// Completions per second of the window.
    pub fn timeline(&self) -> &[Second] {
        &self.timeline
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    /// Of a histogram of microseconds (all zero when it is empty).
    pub fn of(histogram: &Histogram<u64>) -> Percentiles {
        if histogram.is_empty() {
            return Percentiles::default();
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Percentiles {
            p50: ms(histogram.value_at_quantile(0.50)),
            p90: ms(histogram.value_at_quantile(0.90)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p99_9: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
            mean: histogram.mean() / 1000.0,
        }
    }

    /// `(JSON name, value)` of each, in order.
    pub fn named(&self) -> [(&'static str, f64); 6] {
        [
            ("p50", self.p50),
            ("p90", self.p90),
            ("p99", self.p99),
            ("p99_9", self.p99_9),
            ("max", self.max),
            ("mean", self.mean),
        ]
    }
}

#[cfg(test)]
mod tests;
