//! Latency samples, their percentiles, and a driver that runs an operation many times from several
//! concurrent tasks. Percentiles are nearest-rank over every sample: no histogram buckets, no
//! sampling, so p99 of 2,000 queries is the 1,980th fastest.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::rng::Rng;

/// Every latency of one measurement.
#[derive(Debug, Clone, Default)]
pub struct Latencies(Vec<Duration>);

/// The distribution of a set of latencies.
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    pub count: usize,
    pub mean: Duration,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub p999: Duration,
    pub max: Duration,
}

/// The outcome of running an operation many times.
#[derive(Debug, Clone)]
pub struct Run {
    /// Concurrent tasks that issued the operations.
    pub tasks: usize,
    /// Operations that succeeded.
    pub operations: usize,
    pub errors: usize,
    /// The first error, for the report (benchmark data is synthetic, so it may be shown).
    pub first_error: Option<String>,
    /// Wall time from the first operation's start to the last one's end.
    pub elapsed: Duration,
    /// Latencies of the successful operations.
    pub latency: Summary,
    /// Sum of what the operations returned (e.g. search matches), for sanity checks.
    pub output: u64,
}

impl Latencies {
    pub fn with_capacity(capacity: usize) -> Self {
        Latencies(Vec::with_capacity(capacity))
    }

    pub fn record(&mut self, latency: Duration) {
        self.0.push(latency);
    }

    pub fn append(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sorts the samples and computes the distribution.
    pub fn summary(mut self) -> Summary {
        self.0.sort_unstable();
        let samples = &self.0;
        if samples.is_empty() {
            return Summary::default();
        }
        let total: Duration = samples.iter().sum();
        Summary {
            count: samples.len(),
            mean: total / u32::try_from(samples.len()).unwrap_or(u32::MAX),
            p50: percentile(samples, 50.0),
            p90: percentile(samples, 90.0),
            p99: percentile(samples, 99.0),
            p999: percentile(samples, 99.9),
            max: samples[samples.len() - 1],
        }
    }
}

/// The nearest-rank percentile of sorted samples: the smallest sample such that at least `percent`
/// per cent of the samples are less than or equal to it.
pub fn percentile(sorted: &[Duration], percent: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (percent / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Summary {
    /// Milliseconds, for the JSON results.
    pub fn to_json(&self) -> Value {
        json!({
            "count": self.count,
            "mean_ms": millis(self.mean),
            "p50_ms": millis(self.p50),
            "p90_ms": millis(self.p90),
            "p99_ms": millis(self.p99),
            "p99_9_ms": millis(self.p999),
            "max_ms": millis(self.max),
        })
    }
}

impl Run {
    /// Successful operations per second of wall time.
    pub fn per_second(&self) -> f64 {
        rate(self.operations, self.elapsed)
    }

    /// Mean output per successful operation.
    pub fn mean_output(&self) -> f64 {
        if self.operations == 0 {
            0.0
        } else {
            self.output as f64 / self.operations as f64
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "tasks": self.tasks,
            "operations": self.operations,
            "errors": self.errors,
            "first_error": self.first_error,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "per_second": self.per_second(),
            "latency": self.latency.to_json(),
            "mean_output": self.mean_output(),
        })
    }
}

/// `count` per second over `elapsed`.
pub fn rate(count: usize, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

/// Milliseconds as a float.
pub fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Runs `operations` calls of `operation`, spread evenly over `tasks` concurrent tokio tasks, and
/// times each call. Each call receives a random word (from a generator seeded by `seed` and the task
/// number, so runs repeat) to pick its target with, and returns a count to add to
/// [`Run::output`]. Failed calls are counted, not timed.
pub async fn run_concurrent<F, Fut>(tasks: usize, operations: usize, seed: u64, operation: F) -> Run
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<u64>> + Send + 'static,
{
    run_shared(tasks, operations, seed, Arc::new(operation)).await
}

/// As [`run_concurrent`], after `warmup` untimed calls from the same number of tasks (with other
/// random words), so that caches and connection pools are warm.
pub async fn run_warm<F, Fut>(
    tasks: usize,
    warmup: usize,
    operations: usize,
    seed: u64,
    operation: F,
) -> Run
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<u64>> + Send + 'static,
{
    let operation = Arc::new(operation);
    run_shared(tasks, warmup, !seed, Arc::clone(&operation)).await;
    run_shared(tasks, operations, seed, operation).await
}

async fn run_shared<F, Fut>(tasks: usize, operations: usize, seed: u64, operation: Arc<F>) -> Run
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<u64>> + Send + 'static,
{
    let tasks = tasks.max(1);
    let started = Instant::now();
    let mut handles = Vec::with_capacity(tasks);
    for task in 0..tasks {
        let share = operations / tasks + usize::from(task < operations % tasks);
        let operation = Arc::clone(&operation);
        handles.push(tokio::spawn(async move {
            let mut random = Rng::new(seed.wrapping_mul(1_000_003).wrapping_add(task as u64));
            let mut latencies = Latencies::with_capacity(share);
            let (mut errors, mut output, mut first_error) = (0, 0, None);
            for _ in 0..share {
                let call_started = Instant::now();
                match operation(random.next_u64()).await {
                    Ok(count) => {
                        latencies.record(call_started.elapsed());
                        output += count;
                    }
                    Err(error) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| format!("{error:#}"));
                    }
                }
            }
            (latencies, errors, output, first_error)
        }));
    }
    let mut latencies = Latencies::with_capacity(operations);
    let (mut errors, mut output, mut first_error) = (0, 0, None);
    for handle in handles {
        match handle.await {
            Ok((task_latencies, task_errors, task_output, task_error)) => {
                latencies.append(task_latencies);
                errors += task_errors;
                output += task_output;
                first_error = first_error.or(task_error);
            }
            Err(error) => {
                errors += 1;
                first_error.get_or_insert_with(|| format!("a benchmark task panicked: {error}"));
            }
        }
    }
    let elapsed = started.elapsed();
    Run {
        tasks,
        operations: latencies.len(),
        errors,
        first_error,
        elapsed,
        latency: latencies.summary(),
        output,
    }
}

#[cfg(test)]
mod tests;
