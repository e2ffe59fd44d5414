//! `tsunagu import`: loads FHIR JSON files (a resource, or a Bundle of any type) and NDJSON files,
//! streaming, in chunks of `batch` resources.
//!
//! Each chunk first goes to the store's bulk path ([`App::bulk_create`]: COPY on PostgreSQL), made
//! for initial loads: new resources whose references are plain `Type/id`. When that fails because
//! a resource of the chunk exists already, is invalid, or holds a conditional reference, the chunk
//! is written the general way instead: as one transaction that PUTs resources with an id and POSTs
//! those without, and when that fails too, as a batch, so that one bad resource costs only itself.
//! Transaction and batch Bundles are always processed as such, and JP-CLINS submission Bundles
//! (the files `tsunagu synth` writes, or a facility's) are submitted each on its own (`App::submit`:
//! validated, linked to their person, unpacked, replacing an earlier submission with the same
//! identifier), [`SUBMISSIONS_IN_FLIGHT`] at a time so that the store commits them in groups;
//! concurrent submissions of one person or one identifier are safe (the submission path settles
//! them). Memory stays flat: files are read line by line and at most that many Bundles wait.
//! Failures are counted and reported, never printed with their content.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use app::{App, AppError, BundleEntryResult};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

/// JP-CLINS submissions submitted at once.
const SUBMISSIONS_IN_FLIGHT: usize = 64;

/// Submissions under way.
type InFlight = tokio::task::JoinSet<Result<usize, AppError>>;

/// How to import.
#[derive(Debug, Clone, Copy)]
struct Options {
    /// Resources per chunk (per store call).
    batch: usize,
    /// Whether chunks try the bulk path first.
    bulk: bool,
}

/// Totals of one import run.
#[derive(Debug, Default, PartialEq)]
struct Summary {
    files: usize,
    /// Resources written (for submissions: the Bundle and what was unpacked from it).
    imported: usize,
    /// JP-CLINS submissions accepted.
    submissions: usize,
    failed: usize,
    /// Chunks written through the bulk path.
    bulk_chunks: usize,
    /// Chunks written through a transaction or batch (after the bulk path failed, or without it).
    fallback_chunks: usize,
}

/// Imports `paths` in chunks of `batch` resources, trying the bulk path first when `bulk` is set,
/// and prints the totals.
pub(crate) async fn run(
    app: &App,
    paths: &[PathBuf],
    batch: usize,
    bulk: bool,
) -> anyhow::Result<()> {
    let options = Options { batch, bulk };
    let started = Instant::now();
    let summary = import(app, paths, options).await?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "imported {} resources ({} JP-CLINS submissions) from {} files in {seconds:.1} s \
         ({:.0} resources/s); {} failed",
        summary.imported,
        summary.submissions,
        summary.files,
        summary.imported as f64 / seconds.max(0.001),
        summary.failed
    );
    if options.bulk && summary.fallback_chunks > 0 {
        println!(
            "{} of {} chunks could not take the bulk path (resources that exist already, invalid \
             resources or conditional references) and were written as transactions or batches",
            summary.fallback_chunks,
            summary.bulk_chunks + summary.fallback_chunks
        );
    }
    Ok(())
}

async fn import(app: &App, paths: &[PathBuf], options: Options) -> anyhow::Result<Summary> {
    let options = Options {
        batch: options.batch.max(1),
        ..options
    };
    let batch = options.batch;
    let mut files = Vec::new();
    for path in paths {
        collect_files(path, true, &mut files)?;
    }
    let total_bytes: u64 = files
        .iter()
        .filter_map(|file| std::fs::metadata(file).ok())
        .map(|meta| meta.len())
        .sum();
    let progress = ProgressBar::new(total_bytes);
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut summary = Summary::default();
    let mut pending: Vec<Value> = Vec::with_capacity(batch);
    let mut in_flight = InFlight::new();
    for file in &files {
        summary.files += 1;
        let is_ndjson = file.extension().is_some_and(|ext| ext == "ndjson");
        if is_ndjson {
            let reader = std::io::BufReader::new(
                std::fs::File::open(file)
                    .with_context(|| format!("cannot open {}", file.display()))?,
            );
            for line in reader.lines() {
                let line = line.with_context(|| format!("cannot read {}", file.display()))?;
                progress.inc(line.len() as u64 + 1);
                if line.trim().is_empty() {
                    continue;
                }
                match fhir::parse_json(line.as_bytes()) {
                    Ok(resource) if app::is_submission(&resource) => {
                        submit(app, resource, &mut in_flight, &mut summary).await?;
                    }
                    Ok(resource) => pending.push(resource),
                    Err(_) => summary.failed += 1,
                }
                if pending.len() >= batch {
                    flush(app, &mut pending, options.bulk, &mut summary).await?;
                    progress.set_message(format!(
                        "{} imported, {} failed",
                        summary.imported, summary.failed
                    ));
                }
            }
        } else {
            let bytes =
                std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            progress.inc(bytes.len() as u64);
            let Ok(value) = fhir::parse_json(&bytes) else {
                summary.failed += 1;
                continue;
            };
            let bundle_type = (value.get("resourceType").and_then(Value::as_str) == Some("Bundle"))
                .then(|| {
                    value
                        .get("type")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                });
            match bundle_type.as_deref() {
                Some(_) if app::is_submission(&value) => {
                    submit(app, value, &mut in_flight, &mut summary).await?;
                }
                Some("transaction" | "batch") => {
                    settle(&mut in_flight, 0, &mut summary).await?;
                    flush(app, &mut pending, options.bulk, &mut summary).await?;
                    match app.process_bundle(value).await {
                        Ok(outcome) => tally(&outcome.entries, &mut summary),
                        Err(AppError::Unavailable(error)) => {
                            return Err(error).context("the store is unavailable");
                        }
                        Err(_) => summary.failed += 1,
                    }
                }
                Some("collection" | "searchset" | "history") => {
                    if let Some(Value::Array(entries)) = value.get("entry") {
                        for resource in entries.iter().filter_map(|entry| entry.get("resource")) {
                            pending.push(resource.clone());
                            if pending.len() >= batch {
                                flush(app, &mut pending, options.bulk, &mut summary).await?;
                            }
                        }
                    }
                }
                _ => pending.push(value),
            }
            if pending.len() >= batch {
                flush(app, &mut pending, options.bulk, &mut summary).await?;
            }
            progress.set_message(format!(
                "{} imported, {} failed",
                summary.imported, summary.failed
            ));
        }
    }
    settle(&mut in_flight, 0, &mut summary).await?;
    flush(app, &mut pending, options.bulk, &mut summary).await?;
    progress.finish_and_clear();
    Ok(summary)
}

/// Starts submitting a JP-CLINS Bundle (replacing an earlier submission with its identifier),
/// first waiting for room among the submissions under way; a refused one counts as failed.
async fn submit(
    app: &App,
    bundle: Value,
    in_flight: &mut InFlight,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    settle(in_flight, SUBMISSIONS_IN_FLIGHT - 1, summary).await?;
    let app = app.clone();
    // A submission stores its Bundle and every entry but the Patient as resources of their own.
    in_flight.spawn(async move { app.submit(bundle).await.map(|outcome| outcome.unpacked + 1) });
    Ok(())
}

/// Waits until at most `room` submissions are under way, counting those that finished.
async fn settle(
    in_flight: &mut InFlight,
    room: usize,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    while in_flight.len() > room {
        let Some(done) = in_flight.join_next().await else {
            break;
        };
        match done.context("a submission task failed")? {
            Ok(resources) => {
                summary.submissions += 1;
                summary.imported += resources;
            }
            Err(AppError::Unavailable(error)) => {
                return Err(error).context("the store is unavailable");
            }
            Err(_) => summary.failed += 1,
        }
    }
    Ok(())
}

/// Writes the pending resources: through the bulk path when `bulk` is set and every one of them
/// can take it; else in one transaction, and on failure one by one as a batch.
async fn flush(
    app: &App,
    pending: &mut Vec<Value>,
    bulk: bool,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let resources = std::mem::take(pending);
    let count = resources.len();
    if bulk {
        // A copy, because a chunk that the bulk path refuses is written again the general way.
        match app.bulk_create(resources.clone()).await {
            Ok(_) => {
                summary.imported += count;
                summary.bulk_chunks += 1;
                return Ok(());
            }
            Err(AppError::Unavailable(error)) => {
                return Err(error).context("the store is unavailable");
            }
            Err(error) => {
                tracing::debug!(
                    error = %error,
                    "a chunk could not take the bulk path; writing it as a transaction"
                );
            }
        }
    }
    summary.fallback_chunks += 1;
    match app
        .process_bundle(bundle_of("transaction", &resources))
        .await
    {
        Ok(_) => summary.imported += count,
        Err(AppError::Unavailable(error)) => return Err(error).context("the store is unavailable"),
        Err(_) => {
            let outcome = app
                .process_bundle(bundle_of("batch", &resources))
                .await
                .context("a batch import failed")?;
            tally(&outcome.entries, summary);
        }
    }
    Ok(())
}

fn tally(entries: &[BundleEntryResult], summary: &mut Summary) {
    for entry in entries {
        match entry {
            BundleEntryResult::Failed(_) => summary.failed += 1,
            _ => summary.imported += 1,
        }
    }
}

/// A transaction or batch that PUTs resources with an id and POSTs those without.
fn bundle_of(kind: &str, resources: &[Value]) -> Value {
    let entries: Vec<Value> = resources
        .iter()
        .map(|resource| {
            let resource_type = resource
                .get("resourceType")
                .and_then(Value::as_str)
                .unwrap_or("Unknown");
            let request = match resource.get("id").and_then(Value::as_str) {
                Some(id) => json!({"method": "PUT", "url": format!("{resource_type}/{id}")}),
                None => json!({"method": "POST", "url": resource_type}),
            };
            json!({"resource": resource, "request": request})
        })
        .collect();
    json!({"resourceType": "Bundle", "type": kind, "entry": entries})
}

/// Files to import under `path`. Inside directories only `.json` and `.ndjson` files count;
/// a file named on the command line counts whatever its extension.
fn collect_files(path: &Path, named: bool, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if path.is_dir() {
        let mut children: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("cannot list {}", path.display()))?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .collect();
        children.sort();
        for child in children {
            collect_files(&child, false, files)?;
        }
    } else if named {
        if !path.exists() {
            anyhow::bail!("{} does not exist", path.display());
        }
        files.push(path.to_owned());
    } else if path
        .extension()
        .is_some_and(|ext| ext == "json" || ext == "ndjson")
    {
        files.push(path.to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
