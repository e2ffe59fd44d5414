//! The writer thread: the only owner of the write connection, and the group commit.
//!
//! Callers encode their record and hash its leaf on their own task, then queue a [`Job`]. The
//! thread takes the first waiting job and every other job already queued (up to `max_batch`),
//! and in ONE `BEGIN IMMEDIATE` transaction inserts their entries, the perfect subtrees they
//! complete, their patient index rows and one new signed tree head. Only after `COMMIT` returns
//! (WAL + `synchronous=FULL`: the commit is on disk) does each caller get its receipt. Many
//! waiting callers thus share one fsync and one signature. If the transaction fails, every caller
//! in the batch gets the error, and the state is reloaded from the file before the next batch.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, params};
use sqlite_checkpoint::Checkpointer;
use tokio::sync::{mpsc, oneshot};

use crate::AuditError;
use crate::hash::Hash;
use crate::head::SignedTreeHead;
use crate::key::AuditKey;
use crate::log::Receipt;
use crate::log::storage::{self, State};
use crate::merkle;
use crate::record::AuditRecord;
use crate::time::UtcTime;

/// One append waiting for the writer.
pub(crate) struct Job {
    bytes: Vec<u8>,
    leaf_hash: Hash,
    patient: Option<String>,
    reply: oneshot::Sender<Result<Receipt, AuditError>>,
}

/// What the writer shares with [`crate::AuditLog`]: the newest head and counters.
#[derive(Debug)]
pub(crate) struct Shared {
    head: Mutex<Option<SignedTreeHead>>,
    pub(crate) appends: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) failed_batches: AtomicU64,
}

impl Job {
    /// Encodes and hashes `record` on the caller's task; returns the job and where its answer
    /// will arrive.
    pub(crate) fn new(
        record: &AuditRecord,
    ) -> Result<(Job, oneshot::Receiver<Result<Receipt, AuditError>>), AuditError> {
        let bytes = record.to_canonical_bytes()?;
        let (reply, receiver) = oneshot::channel();
        let job = Job {
            leaf_hash: merkle::leaf_hash(&bytes),
            bytes,
            patient: record.patient.clone(),
            reply,
        };
        Ok((job, receiver))
    }
}

impl Shared {
    pub(crate) fn new(head: Option<SignedTreeHead>) -> Shared {
        Shared {
            head: Mutex::new(head),
            appends: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            failed_batches: AtomicU64::new(0),
        }
    }

    pub(crate) fn head(&self) -> Option<SignedTreeHead> {
        self.head.lock().expect("head lock poisoned").clone()
    }
}

/// What the writer owns: the write connection and the checkpointer it signals after commits.
pub(crate) struct Connections {
    pub(crate) writer: Connection,
    pub(crate) checkpointer: Checkpointer,
}

/// How the writer groups appends into transactions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Batching {
    /// The most appends in one transaction.
    pub(crate) max: usize,
    /// How long to wait for more once several were waiting (`Options::linger`).
    pub(crate) linger: Duration,
}

/// Starts the thread that owns the connections.
pub(crate) fn spawn(
    connections: Connections,
    key: AuditKey,
    state: State,
    receiver: mpsc::Receiver<Job>,
    shared: Arc<Shared>,
    batching: Batching,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("audit-writer".to_owned())
        .spawn(move || run(&connections, &key, state, receiver, &shared, batching))
}

fn run(
    connections: &Connections,
    key: &AuditKey,
    mut state: State,
    mut receiver: mpsc::Receiver<Job>,
    shared: &Shared,
    batching: Batching,
) {
    let Batching {
        max: max_batch,
        linger,
    } = batching;
    let connection = &connections.writer;
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
    while let Some(first) = receiver.blocking_recv() {
        batch.push(first);
        drain(&mut receiver, &mut batch, max_batch);
        // Several appends were already waiting: the server is busy and more are on their way.
        // Waiting a little for them lets one transaction, signature and fsync serve more of them
        // (the writer's cost is mostly per batch). A lone append is committed at once.
        if batch.len() > 1 && batch.len() < max_batch && !linger.is_zero() {
            std::thread::sleep(linger);
            drain(&mut receiver, &mut batch, max_batch);
        }
        match commit(connection, key, &state, &batch) {
            Ok((new_state, head, first_seq)) => {
                connections.checkpointer.committed();
                state = new_state;
                *shared.head.lock().expect("head lock poisoned") = Some(head.clone());
                shared
                    .appends
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                shared.batches.fetch_add(1, Ordering::Relaxed);
                for (offset, job) in batch.drain(..).enumerate() {
                    // A caller that stopped waiting still has its entry written.
                    let _ = job.reply.send(Ok(Receipt {
                        seq: first_seq + offset as u64,
                        tree_head: head.clone(),
                    }));
                }
            }
            Err(error) => {
                shared.failed_batches.fetch_add(1, Ordering::Relaxed);
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(duplicate(&error)));
                }
                // The failed transaction was rolled back, but if it failed in COMMIT the file's
                // state is best re-read; if that fails too, the next batch re-checks anyway.
                if let Ok(reloaded) = storage::load_state(connection, &key.public_key()) {
                    state = reloaded;
                }
            }
        }
    }
}

/// Moves the jobs already queued into `batch`, up to `max_batch`.
fn drain(receiver: &mut mpsc::Receiver<Job>, batch: &mut Vec<Job>, max_batch: usize) {
    while batch.len() < max_batch {
        match receiver.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

/// Writes one batch in one transaction. Returns the new state, the batch's signed head and the
/// first sequence number it used.
fn commit(
    connection: &Connection,
    key: &AuditKey,
    state: &State,
    batch: &[Job],
) -> Result<(State, SignedTreeHead, u64), AuditError> {
    let transaction = Immediate::begin(connection)?;
    // Another process may have appended to the same file since this state was read: never write
    // on a stale tree.
    let last_seq: Option<i64> = connection
        .prepare_cached("SELECT max(seq) FROM entry")?
        .query_row([], |row| row.get(0))?;
    let stored_size = last_seq.map_or(0, |seq| seq.saturating_add(1)) as u64;
    let reloaded;
    let state = if stored_size == state.frontier.size() {
        state
    } else {
        reloaded = storage::load_state(connection, &key.public_key())?;
        &reloaded
    };
    let mut frontier = state.frontier.clone();
    let first_seq = frontier.size();
    {
        let mut insert_entry = connection
            .prepare_cached("INSERT INTO entry (seq, bytes, leaf_hash) VALUES (?1, ?2, ?3)")?;
        let mut insert_patient = connection
            .prepare_cached("INSERT INTO entry_patient (seq, patient) VALUES (?1, ?2)")?;
        let mut insert_node =
            connection.prepare_cached("INSERT INTO node (level, idx, hash) VALUES (?1, ?2, ?3)")?;
        for job in batch {
            let seq = frontier.size() as i64;
            insert_entry.execute(params![seq, job.bytes, job.leaf_hash.as_bytes()])?;
            if let Some(patient) = &job.patient {
                insert_patient.execute(params![seq, patient])?;
            }
            let mut completed = Vec::new();
            frontier.push(job.leaf_hash, |level, index, hash| {
                completed.push((level, index, *hash));
            });
            for (level, index, hash) in completed {
                insert_node.execute(params![level, index as i64, hash.as_bytes()])?;
            }
        }
    }
    // Heads never go back in time, even if the wall clock does.
    let now = UtcTime::now();
    let timestamp = match &state.head {
        Some(previous) if previous.timestamp > now => previous.timestamp,
        _ => now,
    };
    let head = SignedTreeHead::sign(key, frontier.size(), frontier.root(), timestamp);
    connection
        .prepare_cached(
            "INSERT INTO tree_head (size, root, timestamp, signature) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            head.tree_size as i64,
            head.root_hash.as_bytes(),
            head.timestamp.unix_micros(),
            head.signature.0
        ])?;
    transaction.commit()?;
    Ok((
        State {
            frontier,
            head: Some(head.clone()),
        },
        head,
        first_seq,
    ))
}

/// A `BEGIN IMMEDIATE` transaction on the write connection, begun and committed with cached
/// statements (the writer runs one per batch); rolled back when dropped uncommitted.
struct Immediate<'c> {
    connection: &'c Connection,
    committed: bool,
}

impl<'c> Immediate<'c> {
    fn begin(connection: &'c Connection) -> rusqlite::Result<Immediate<'c>> {
        connection.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        Ok(Immediate {
            connection,
            committed: false,
        })
    }

    fn commit(mut self) -> rusqlite::Result<()> {
        self.connection.prepare_cached("COMMIT")?.execute([])?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Immediate<'_> {
    fn drop(&mut self) {
        if !self.committed && !self.connection.is_autocommit() {
            let _ = self.connection.execute_batch("ROLLBACK");
        }
    }
}

/// The same failure for every caller of a failed batch.
fn duplicate(error: &AuditError) -> AuditError {
    match error {
        AuditError::Storage(source) => AuditError::Storage(Arc::clone(source)),
        other => AuditError::Inconsistent(other.to_string()),
    }
}
