//! The writer thread: the only owner of the write connection, and the group commit.
//!
//! Callers queue [`Job`]s on a bounded channel (with their bodies already serialised into
//! templates: the thread only fills in versions and times). The thread takes the first waiting job
//! and every other job already queued (up to `max_batch`) and runs them in ONE `BEGIN IMMEDIATE`
//! transaction. After `COMMIT` succeeds, and only then, each job gets its reply. Concurrent writers
//! thus share one fsync per batch instead of paying one each.
//!
//! Jobs run without savepoints first: a savepoint copies every page its job touches, and jobs
//! rarely fail. A failing job (a version conflict, a duplicate) rolls the whole transaction back;
//! it gets its error, and the others run again, this time each inside its own `SAVEPOINT`, so that
//! another failure rolls back to its savepoint alone while the rest go on.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use rusqlite::Connection;
use sqlite_checkpoint::Checkpointer;
use store::{Clock, StoreError, WriteOp, WriteOutcome};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Fault, Result};
use crate::write::{self, ParamIds};

/// One `write` call waiting for the writer.
pub(crate) struct Job {
    pub(crate) ops: Vec<WriteOp>,
    /// One per operation: its body's template, made on the caller's task.
    pub(crate) templates: Vec<Option<write::Template>>,
    /// A bulk create: every operation is a create of a resource that never existed.
    pub(crate) only_new: bool,
    pub(crate) reply: oneshot::Sender<Reply>,
}

/// The answer to a [`Job`]. The spent operations travel back so that the caller's task, not the
/// writer thread, pays for freeing their bodies.
pub(crate) struct Reply {
    result: Result<Vec<WriteOutcome>, StoreError>,
    spent: (Vec<WriteOp>, Vec<Option<write::Template>>),
}

/// Counters of the writer thread, shared with [`crate::SqliteStore::stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) transactions: AtomicU64,
    pub(crate) calls: AtomicU64,
    pub(crate) retried: AtomicU64,
}

/// Handle to the running writer thread. Dropping it closes the queue; the thread finishes the jobs
/// already queued, then closes its connection.
pub(crate) struct Writer {
    sender: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    pub(crate) counters: Arc<Counters>,
}

/// Rows written after which the writer asks the checkpointer to copy the WAL back: about every
/// 32 MiB of WAL during a bulk import (a checkpoint copies a hot page once however often it
/// changed; checkpointing after every 1,000-resource transaction cost more CPU than it saved).
const CHECKPOINT_AFTER_CHANGES: u64 = 65_536;

/// Longest time a commit's WAL pages wait before the writer asks the checkpointer for them, when
/// fewer than [`CHECKPOINT_AFTER_CHANGES`] rows changed: small scattered writes (a submission at a
/// time, into a store of several GiB) dirty many pages per row, and by rows alone the WAL reached
/// the writer's 256 MiB backstop before the checkpointer was ever asked; the backstop's checkpoint
/// then ran on the writer thread and held every write behind it (submissions' p99 0.1-0.5 s at
/// 100,000 people).
const CHECKPOINT_AT_LEAST_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Fewest time between two background checkpoints (`sqlite_checkpoint`): a burst of small
/// commits shares one (each costs two fsyncs).
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// How often (in transactions) the writer refreshes the planner statistics with `PRAGMA optimize`.
const OPTIMIZE_EVERY: u64 = 1000;

impl Writer {
    /// Starts the thread that owns `connection`.
    pub(crate) fn spawn(
        connection: Connection,
        checkpointer: Connection,
        clock: Arc<dyn Clock>,
        max_batch: usize,
        queue: usize,
    ) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel(queue.max(1));
        let counters = Arc::new(Counters::default());
        let thread_counters = Arc::clone(&counters);
        let checkpointer =
            Checkpointer::spawn(checkpointer, "store-sqlite-ckpt", CHECKPOINT_INTERVAL)?;
        let thread = std::thread::Builder::new()
            .name("store-sqlite-writer".to_owned())
            .spawn(move || {
                run(
                    &connection,
                    &checkpointer,
                    receiver,
                    clock.as_ref(),
                    max_batch.max(1),
                    &thread_counters,
                );
                // The last checkpoint finishes before the write connection closes.
                drop(checkpointer);
            })?;
        Ok(Writer {
            sender: Some(sender),
            thread: Some(thread),
            counters,
        })
    }

    /// Queues `ops` and waits until they are committed (or failed). With `only_new`, creates of
    /// resources that exist (live or deleted) fail as `Duplicate` (see [`write::apply`]).
    pub(crate) async fn submit(
        &self,
        ops: Vec<WriteOp>,
        only_new: bool,
    ) -> Result<Vec<WriteOutcome>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let templates = write::templates(&ops);
        let sender = self
            .sender
            .as_ref()
            .ok_or_else(|| StoreError::unavailable("the store is closing"))?;
        sender
            .send(Job {
                ops,
                templates,
                only_new,
                reply,
            })
            .await
            .map_err(|_| StoreError::unavailable("the writer thread has stopped"))?;
        let Reply { result, spent } = answer
            .await
            .map_err(|_| StoreError::unavailable("the writer thread stopped before replying"))?;
        drop(spent);
        result
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop once the queue is drained.
        self.sender.take();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the SQLite writer thread panicked");
        }
    }
}

fn run(
    connection: &Connection,
    checkpointer: &Checkpointer,
    mut receiver: mpsc::Receiver<Job>,
    clock: &dyn Clock,
    max_batch: usize,
    counters: &Counters,
) {
    let mut batch = Vec::with_capacity(max_batch);
    let mut params = ParamIds::default();
    let mut checkpointed_at = connection.total_changes();
    let mut asked_at = std::time::Instant::now();
    while let Some(first) = receiver.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // Counted before the replies go out, so a caller that got its answer sees its call counted.
        counters
            .calls
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        let transactions = counters.transactions.fetch_add(1, Ordering::Relaxed) + 1;
        commit_batch(connection, &mut batch, clock, &mut params, counters);
        // Rows changed stand in for WAL pages written: small writes share a checkpoint (and its
        // fsyncs) instead of paying one each, but none waits longer than a second.
        let changes = connection.total_changes();
        let unasked = changes.saturating_sub(checkpointed_at);
        if unasked >= CHECKPOINT_AFTER_CHANGES
            || (unasked > 0 && asked_at.elapsed() >= CHECKPOINT_AT_LEAST_EVERY)
        {
            checkpointed_at = changes;
            asked_at = std::time::Instant::now();
            checkpointer.committed();
        }
        if transactions.is_multiple_of(OPTIMIZE_EVERY)
            && let Err(error) = connection.execute_batch("PRAGMA optimize")
        {
            tracing::warn!(%error, "PRAGMA optimize failed");
        }
    }
}

/// Runs every job of `batch` in one transaction and replies to each after the commit.
///
/// First without savepoints; if a job fails, it is answered and the others run again, each inside
/// a savepoint (see the module documentation).
fn commit_batch(
    connection: &Connection,
    batch: &mut Vec<Job>,
    clock: &dyn Clock,
    params: &mut ParamIds,
    counters: &Counters,
) {
    match attempt(connection, batch, clock, params, false) {
        Attempt::Done => {}
        Attempt::JobFailed(index, error) => {
            rollback(connection, params);
            let job = batch.remove(index);
            let _ = job.reply.send(Reply {
                result: Err(error),
                spent: (job.ops, job.templates),
            });
            if !batch.is_empty() {
                counters.retried.fetch_add(1, Ordering::Relaxed);
                // Savepoints from here: this attempt ends in `Done` (or a fault for everyone).
                let _ = attempt(connection, batch, clock, params, true);
            }
        }
    }
}

/// What became of one attempt at a batch.
enum Attempt {
    /// Committed and answered, or failed and answered (everyone got a reply).
    Done,
    /// Without savepoints, this job failed: nothing is answered and the transaction is still open.
    JobFailed(usize, StoreError),
}

fn attempt(
    connection: &Connection,
    batch: &mut Vec<Job>,
    clock: &dyn Clock,
    params: &mut ParamIds,
    savepoints: bool,
) -> Attempt {
    if let Err(Fault(error)) = begin(connection) {
        reply_all_failed(batch, &error);
        return Attempt::Done;
    }
    let mut results = Vec::with_capacity(batch.len());
    for (index, job) in batch.iter_mut().enumerate() {
        if savepoints {
            results.push(run_job(connection, params, job, clock));
        } else {
            match apply_job(connection, params, job, clock) {
                Ok(outcomes) => results.push(Ok(outcomes)),
                Err(Fault(error)) => return Attempt::JobFailed(index, error),
            }
        }
        // Some errors (a full disk, I/O) make SQLite roll the whole transaction back. Going on
        // would run the next jobs in autocommit mode, one statement at a time: fail the batch.
        if connection.is_autocommit() {
            params.forget();
            let error = StoreError::unavailable("the write transaction was aborted by SQLite");
            tracing::error!(%error, "group commit aborted");
            reply_all_failed(batch, &error);
            return Attempt::Done;
        }
    }
    if let Err(Fault(error)) = commit(connection) {
        tracing::error!(%error, "group commit failed");
        rollback(connection, params);
        reply_all_failed(batch, &error);
        return Attempt::Done;
    }
    for (job, result) in batch.drain(..).zip(results) {
        // A caller that went away (its future was dropped) does not need the answer.
        let _ = job.reply.send(Reply {
            result,
            spent: (job.ops, job.templates),
        });
    }
    Attempt::Done
}

/// Applies one job's operations at the clock's time (see [`write::apply`]).
fn apply_job(
    connection: &Connection,
    params: &mut ParamIds,
    job: &Job,
    clock: &dyn Clock,
) -> Result<Vec<WriteOutcome>> {
    write::apply(
        connection,
        params,
        &job.ops,
        &job.templates,
        job.only_new,
        clock.now(),
    )
}

/// One job inside its savepoint: released on success, rolled back on failure.
fn run_job(
    connection: &Connection,
    params: &mut ParamIds,
    job: &mut Job,
    clock: &dyn Clock,
) -> Result<Vec<WriteOutcome>, StoreError> {
    connection
        .prepare_cached("SAVEPOINT job")
        .and_then(|mut statement| statement.execute([]))
        .map_err(|error| StoreError::from(Fault::from(error)))?;
    let result = apply_job(connection, params, job, clock);
    let end = if result.is_ok() {
        connection.execute_batch("RELEASE job")
    } else {
        params.forget();
        connection.execute_batch("ROLLBACK TO job; RELEASE job")
    };
    match (result, end) {
        (Ok(outcomes), Ok(())) => Ok(outcomes),
        (Err(Fault(error)), Ok(())) => Err(error),
        // Failing to end a savepoint leaves the transaction in an unknown state; the job fails, and
        // so will the commit if the connection is broken.
        (_, Err(error)) => Err(Fault::from(error).0),
    }
}

/// Rolls the open transaction back (best effort: SQLite may already have done it).
fn rollback(connection: &Connection, params: &mut ParamIds) {
    params.forget();
    if !connection.is_autocommit()
        && let Err(error) = connection.execute_batch("ROLLBACK")
    {
        tracing::error!(%error, "rollback failed");
    }
}

fn begin(connection: &Connection) -> Result<()> {
    connection.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    Ok(())
}

fn commit(connection: &Connection) -> Result<()> {
    connection.prepare_cached("COMMIT")?.execute([])?;
    Ok(())
}

fn reply_all_failed(batch: &mut Vec<Job>, error: &StoreError) {
    for job in batch.drain(..) {
        let _ = job.reply.send(Reply {
            result: Err(crate::error::same_error(error)),
            spent: (job.ops, job.templates),
        });
    }
}
