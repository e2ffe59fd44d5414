//! Loading the synthetic population through the transaction path, as a client would: Bundles are
//! generated and serialised on a separate producer thread (the "client"), and each Bundle is then
//! parsed from its bytes and processed by [`App::process_bundle`] (what the server does with a
//! `POST /fhir` body). Also: a per-resource breakdown of where ingest time goes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use app::{App, BundleEntryResult};
use serde_json::Value;
use tokio::sync::{Mutex, mpsc};

use crate::population::Shape;

/// What to load and how.
#[derive(Debug, Clone, Copy)]
pub struct LoadPlan {
    pub shape: Shape,
    /// Patient groups to load.
    pub groups: usize,
    /// Most entries per transaction Bundle (rounded down to whole groups).
    pub bundle_entries: usize,
    /// Bundles in flight at once (1: one client posting Bundles one after another).
    pub tasks: usize,
    /// Print a progress line every tenth of the load.
    pub progress: bool,
}

/// The ids the load created and how long each Bundle took.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Patient ids by patient number: `patients[n]` is the Patient of group `n`.
    pub patients: Vec<String>,
    /// Observation ids by serial: result `i` of patient `n` is at `n * observations_per_patient + i`.
    pub observations: Vec<String>,
    /// In order of completion.
    pub bundles: Vec<BundleTiming>,
    /// Wall time of the whole load.
    pub elapsed: Duration,
}

/// One processed Bundle.
#[derive(Debug, Clone, Copy)]
pub struct BundleTiming {
    pub resources: usize,
    /// Parse plus `process_bundle`.
    pub took: Duration,
    /// When it finished, from the start of the load.
    pub finished: Duration,
}

impl Loaded {
    /// Resources created.
    pub fn resources(&self) -> usize {
        self.patients.len() + self.observations.len()
    }

    /// Resources per second of wall time over the whole load.
    pub fn rate(&self) -> f64 {
        crate::measure::rate(self.resources(), self.elapsed)
    }

    /// Resources per second over the last `fraction` of the Bundles (by completion), when the store
    /// is at its largest.
    pub fn tail_rate(&self, fraction: f64) -> f64 {
        let tail = ((self.bundles.len() as f64 * fraction).ceil() as usize)
            .clamp(1, self.bundles.len().max(1));
        if self.bundles.len() <= tail {
            return self.rate();
        }
        let before = self.bundles[self.bundles.len() - tail - 1].finished;
        let resources = self.bundles[self.bundles.len() - tail..]
            .iter()
            .map(|bundle| bundle.resources)
            .sum();
        crate::measure::rate(resources, self.elapsed.saturating_sub(before))
    }

    /// Mean parse + process time per resource.
    pub fn mean_per_resource(&self) -> Duration {
        let total: Duration = self.bundles.iter().map(|bundle| bundle.took).sum();
        total / u32::try_from(self.resources().max(1)).unwrap_or(u32::MAX)
    }
}

/// Loads `plan.groups` groups.
///
/// # Errors
/// When a Bundle fails (the population is valid, so that is a bug somewhere).
pub async fn load(app: &App, plan: LoadPlan) -> anyhow::Result<Loaded> {
    let shape = plan.shape;
    let groups = plan.groups;
    let per_bundle = shape.groups_per_bundle(plan.bundle_entries);
    let tasks = plan.tasks.max(1);
    let (sender, receiver) = mpsc::channel::<BundleJob>(tasks + 1);
    let producer = std::thread::Builder::new()
        .name("bundle-producer".into())
        .spawn(move || -> anyhow::Result<()> {
            for start in (0..groups).step_by(per_bundle) {
                let end = (start + per_bundle).min(groups);
                let bytes = serde_json::to_vec(&shape.transaction_bundle(start..end))?;
                if sender
                    .blocking_send(BundleJob {
                        first_group: start,
                        groups: end - start,
                        bytes,
                    })
                    .is_err()
                {
                    break;
                }
            }
            Ok(())
        })?;

    let receiver = Arc::new(Mutex::new(receiver));
    let progress = Arc::new(Progress {
        expected: groups * shape.group_size(),
        done: AtomicUsize::new(0),
        enabled: plan.progress,
    });
    let started = Instant::now();
    let mut workers = Vec::with_capacity(tasks);
    for _ in 0..tasks {
        let receiver = Arc::clone(&receiver);
        let progress = Arc::clone(&progress);
        let app = app.clone();
        workers.push(tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                let next = receiver.lock().await.recv().await;
                let Some(job) = next else { break };
                let bundle_started = Instant::now();
                let bundle = fhir::parse_json(&job.bytes)
                    .map_err(|issue| anyhow::anyhow!("{}", issue.diagnostics))?;
                let outcome = app
                    .process_bundle(bundle)
                    .await
                    .context("a transaction Bundle failed")?;
                let took = bundle_started.elapsed();
                let mut ids = Vec::with_capacity(outcome.entries.len());
                for entry in outcome.entries {
                    let BundleEntryResult::Written(written) = entry else {
                        bail!("a transaction entry was not written");
                    };
                    ids.push(written.resource.id);
                }
                if ids.len() != job.groups * shape.group_size() {
                    bail!(
                        "a Bundle of {} groups answered {} entries",
                        job.groups,
                        ids.len()
                    );
                }
                let finished = started.elapsed();
                progress.add(ids.len(), finished);
                done.push((
                    job.first_group,
                    ids,
                    BundleTiming {
                        resources: job.groups * shape.group_size(),
                        took,
                        finished,
                    },
                ));
            }
            anyhow::Ok(done)
        }));
    }

    let mut done = Vec::new();
    for worker in workers {
        done.extend(worker.await.context("a load worker panicked")??);
    }
    let elapsed = started.elapsed();
    producer
        .join()
        .map_err(|_| anyhow::anyhow!("the Bundle producer panicked"))??;
    if done.len() != groups.div_ceil(per_bundle) {
        bail!(
            "{} of {} Bundles were processed",
            done.len(),
            groups.div_ceil(per_bundle)
        );
    }

    // Entries come back in request order: each group is its Patient, then its results.
    done.sort_by_key(|(first_group, _, _)| *first_group);
    let mut loaded = Loaded {
        patients: Vec::with_capacity(groups),
        observations: Vec::with_capacity(groups * shape.observations_per_patient),
        bundles: Vec::with_capacity(done.len()),
        elapsed,
    };
    for (_, ids, timing) in done {
        for (position, id) in ids.into_iter().enumerate() {
            if position % shape.group_size() == 0 {
                loaded.patients.push(id);
            } else {
                loaded.observations.push(id);
            }
        }
        loaded.bundles.push(timing);
    }
    loaded.bundles.sort_by_key(|bundle| bundle.finished);
    Ok(loaded)
}

/// One serialised Bundle on its way from the producer to a worker.
struct BundleJob {
    first_group: usize,
    groups: usize,
    bytes: Vec<u8>,
}

/// Progress lines on stderr, one per tenth of the load.
struct Progress {
    expected: usize,
    done: AtomicUsize,
    enabled: bool,
}

impl Progress {
    fn add(&self, resources: usize, elapsed: Duration) {
        let before = self.done.fetch_add(resources, Ordering::Relaxed);
        let after = before + resources;
        let tenth = self.expected.div_ceil(10).max(1);
        if self.enabled && before / tenth != after / tenth {
            eprintln!(
                "  loaded {after:>9} / {} resources in {:>6.1} s ({:.0}/s)",
                self.expected,
                elapsed.as_secs_f64(),
                crate::measure::rate(after, elapsed)
            );
        }
    }
}

/// Mean time per resource of each step of the ingest path, measured on its own over a sample.
#[derive(Debug, Clone, Copy, Default)]
pub struct Breakdown {
    pub resources: usize,
    /// Building the resources (the client's side, not part of ingest).
    pub generate: Duration,
    /// Serialising the Bundle (the client's side).
    pub serialize: Duration,
    /// `fhir::parse_json` of the Bundle bytes.
    pub parse: Duration,
    /// `fhir::validate_resource`.
    pub validate: Duration,
    /// `search::Registry::extract` plus `compartments`.
    pub extract: Duration,
    /// Mean index entries per resource.
    pub index_entries: f64,
}

impl Breakdown {
    /// Times each step on the Bundle holding `groups` (per resource, averaged over `rounds`).
    ///
    /// # Errors
    /// When the sample Bundle does not parse back.
    pub fn measure(
        shape: Shape,
        groups: std::ops::Range<usize>,
        rounds: u32,
    ) -> anyhow::Result<Breakdown> {
        let registry = search::Registry::r4();
        let mut breakdown = Breakdown::default();
        let mut index_entries = 0usize;
        for _ in 0..rounds {
            let started = Instant::now();
            let bundle = shape.transaction_bundle(groups.clone());
            breakdown.generate += started.elapsed();

            let started = Instant::now();
            let bytes = serde_json::to_vec(&bundle)?;
            breakdown.serialize += started.elapsed();

            let started = Instant::now();
            let parsed = fhir::parse_json(&bytes)
                .map_err(|issue| anyhow::anyhow!("{}", issue.diagnostics))?;
            breakdown.parse += started.elapsed();

            let resources: Vec<&Value> = parsed["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|entry| entry.get("resource"))
                .collect();
            breakdown.resources = resources.len();
            for resource in &resources {
                let started = Instant::now();
                let issues = fhir::validate_resource(resource);
                breakdown.validate += started.elapsed();
                if let Some(issue) = issues.iter().find(|issue| {
                    matches!(
                        issue.severity,
                        fhir::Severity::Error | fhir::Severity::Fatal
                    )
                }) {
                    bail!("the synthetic population is invalid: {}", issue.diagnostics);
                }

                let resource_type = resource["resourceType"].as_str().unwrap_or_default();
                let started = Instant::now();
                let index = registry.extract(resource_type, resource);
                let compartments = registry.compartments(resource_type, "sample-id", &index);
                breakdown.extract += started.elapsed();
                index_entries += index.len();
                std::hint::black_box(compartments);
            }
        }
        let per = u32::try_from(breakdown.resources.max(1)).unwrap_or(u32::MAX) * rounds.max(1);
        breakdown.generate /= per;
        breakdown.serialize /= per;
        breakdown.parse /= per;
        breakdown.validate /= per;
        breakdown.extract /= per;
        breakdown.index_entries = index_entries as f64 / f64::from(per);
        Ok(breakdown)
    }
}

#[cfg(test)]
mod tests;
