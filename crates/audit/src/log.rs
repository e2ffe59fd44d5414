//! [`AuditLog`]: the audit log on its own SQLite file, appended to by one writer thread with
//! group commit, read (entries, a patient's history, proofs) through a few read-only connections.
//!
//! Tables (see `storage.rs`): `entry(seq, bytes, leaf_hash)` the canonical record bytes and their
//! RFC 6962 leaf hash; `tree_head(size, root, timestamp, signature)` one signed head per committed
//! batch; `node(level, idx, hash)` every complete perfect subtree, so proofs cost O(log² n) reads;
//! `entry_patient(seq, patient)` an index for access histories; `meta` the format version and the
//! key id. Triggers refuse UPDATE and DELETE on all of them (a guard rail against mistakes, not
//! against an attacker, who can drop triggers: [`crate::verify`] is the defence).

pub(crate) mod storage;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::mpsc;

use crate::AuditError;
use crate::hash::Hash;
use crate::head::{ConsistencyProof, InclusionProof, SignedTreeHead};
use crate::key::{AuditKey, PublicKey};
use crate::merkle::{self, ProofError};
use crate::record::AuditRecord;

use self::storage::{StoredSubtrees, read_head_at};
use self::writer::{Job, Shared};

/// Tuning of an [`AuditLog`].
#[derive(Debug, Clone)]
pub struct Options {
    /// The most appends committed in one transaction.
    pub max_batch: usize,
    /// The most appends waiting for the writer; further callers wait for room.
    pub queue: usize,
    /// How long the writer waits for a lock held by another connection before an append fails.
    pub busy_timeout: Duration,
    /// When the writer finds more than one append waiting (a busy server), how long it waits for
    /// more before committing them together. A lone append never waits. Zero: never.
    pub linger: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_batch: 1024,
            queue: 8192,
            busy_timeout: Duration::from_secs(5),
            // Under 32 concurrent readers: 3 → 8 appends per commit, the writer's CPU per append
            // 57 → 38 µs (docs/benchmarks.md), for at most 0.3 ms more on a busy server.
            linger: Duration::from_micros(300),
        }
    }
}

/// Proof of a durable append: the entry's sequence number and the first signed tree head that
/// covers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The entry's sequence number (its leaf index), from 0.
    pub seq: u64,
    /// The head stored with the batch the entry was committed in.
    pub tree_head: SignedTreeHead,
}

/// A stored entry, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The sequence number (leaf index).
    pub seq: u64,
    /// The record.
    pub record: AuditRecord,
    /// `SHA-256(0x00 || canonical bytes)` as stored.
    pub leaf_hash: Hash,
}

/// Counters since open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Entries committed.
    pub appends: u64,
    /// Transactions (one fsync and one signed tree head each) that committed them.
    pub batches: u64,
    /// Transactions that failed (every append in them got an error).
    pub failed_batches: u64,
}

/// The audit log. Cheap to share behind an `Arc`; every method takes `&self`.
///
/// Reads are synchronous SQLite calls that take milliseconds at most; async callers run them with
/// `tokio::task::spawn_blocking`. [`AuditLog::append`] is async and never blocks the runtime.
pub struct AuditLog {
    path: PathBuf,
    public_key: PublicKey,
    sender: Option<mpsc::Sender<Job>>,
    writer: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    readers: Mutex<Vec<Connection>>,
}

/// Read connections kept for reuse.
const MAX_IDLE_READERS: usize = 4;

impl AuditLog {
    /// Opens (or creates) the log at `path`, signing with `key`, with default [`Options`].
    ///
    /// # Errors
    /// See [`AuditLog::open_with`].
    pub fn open(path: impl AsRef<Path>, key: AuditKey) -> Result<AuditLog, AuditError> {
        AuditLog::open_with(path, key, Options::default())
    }

    /// Opens (or creates) the log at `path`. An existing log must have been created with the same
    /// key, and its last signed tree head must verify and match its entries and nodes (a cheap
    /// check, O(log n) reads: the full one is [`crate::verify`]). Refusing to open is the safe
    /// failure: the server then cannot serve data it could not audit.
    ///
    /// # Errors
    /// [`AuditError::Storage`] if the file cannot be opened or written;
    /// [`AuditError::Inconsistent`] if it fails the checks above.
    pub fn open_with(
        path: impl AsRef<Path>,
        key: AuditKey,
        options: Options,
    ) -> Result<AuditLog, AuditError> {
        let path = path.as_ref().to_path_buf();
        let public_key = key.public_key();
        let connection = storage::open_writer(&path, options.busy_timeout)?;
        storage::create_schema(&connection, &public_key)?;
        let state = storage::load_state(&connection, &public_key)?;
        let checkpointer = sqlite_checkpoint::Checkpointer::spawn(
            storage::open_checkpointer(&path, options.busy_timeout)?,
            "audit-ckpt",
            storage::CHECKPOINT_INTERVAL,
        )
        .map_err(|error| {
            AuditError::Inconsistent(format!("cannot start the checkpointer: {error}"))
        })?;
        let shared = Arc::new(Shared::new(state.head.clone()));
        let (sender, receiver) = mpsc::channel(options.queue.max(1));
        let writer = writer::spawn(
            writer::Connections {
                writer: connection,
                checkpointer,
            },
            key,
            state,
            receiver,
            Arc::clone(&shared),
            writer::Batching {
                max: options.max_batch.max(1),
                linger: options.linger,
            },
        )
        .map_err(|error| AuditError::Inconsistent(format!("cannot start the writer: {error}")))?;
        Ok(AuditLog {
            path,
            public_key,
            sender: Some(sender),
            writer: Some(writer),
            shared,
            readers: Mutex::new(Vec::new()),
        })
    }

    /// Appends a record and returns once it is durably committed (`synchronous=FULL`: it
    /// survives a power loss) together with the signed tree head of its batch.
    ///
    /// The server calls this **before** a response leaves and answers 503 without data if it
    /// fails. If the caller's future is dropped after the record was queued, the record is still
    /// written: an access may be recorded whose response never left, never the reverse.
    ///
    /// # Errors
    /// [`AuditError::InvalidRecord`] for a malformed record; [`AuditError::Storage`] if the batch
    /// could not be committed; [`AuditError::Closed`] after [`AuditLog::close`].
    pub async fn append(&self, record: &AuditRecord) -> Result<Receipt, AuditError> {
        let (job, reply) = Job::new(record)?;
        let sender = self.sender.as_ref().ok_or(AuditError::Closed)?;
        sender.send(job).await.map_err(|_| AuditError::Closed)?;
        reply.await.map_err(|_| AuditError::Closed)?
    }

    /// Appends several records and returns once all are durably committed, with their receipts
    /// in order. Every record is queued before the first answer is awaited, so they share group
    /// commits; as with [`AuditLog::append`], a record once queued is written even if the caller
    /// stops waiting.
    ///
    /// # Errors
    /// As [`AuditLog::append`], for the first record that failed (records queued before it are
    /// written).
    pub async fn append_all(&self, records: &[AuditRecord]) -> Result<Vec<Receipt>, AuditError> {
        let sender = self.sender.as_ref().ok_or(AuditError::Closed)?;
        let mut replies = Vec::with_capacity(records.len());
        for record in records {
            let (job, reply) = Job::new(record)?;
            sender.send(job).await.map_err(|_| AuditError::Closed)?;
            replies.push(reply);
        }
        let mut receipts = Vec::with_capacity(replies.len());
        for reply in replies {
            receipts.push(reply.await.map_err(|_| AuditError::Closed)??);
        }
        Ok(receipts)
    }

    /// [`AuditLog::append`] for threads outside an async runtime (the CLI, benchmarks). Panics if
    /// called from within an async task.
    ///
    /// # Errors
    /// As [`AuditLog::append`].
    pub fn append_blocking(&self, record: &AuditRecord) -> Result<Receipt, AuditError> {
        let (job, reply) = Job::new(record)?;
        let sender = self.sender.as_ref().ok_or(AuditError::Closed)?;
        sender.blocking_send(job).map_err(|_| AuditError::Closed)?;
        reply.blocking_recv().map_err(|_| AuditError::Closed)?
    }

    /// The newest signed tree head, `None` while the log is empty. Publish these (see
    /// `docs/audit.md`).
    pub fn tree_head(&self) -> Option<SignedTreeHead> {
        self.shared.head()
    }

    /// The public key verifiers need.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// Counters since open.
    pub fn stats(&self) -> Stats {
        Stats {
            appends: self.shared.appends.load(Ordering::Relaxed),
            batches: self.shared.batches.load(Ordering::Relaxed),
            failed_batches: self.shared.failed_batches.load(Ordering::Relaxed),
        }
    }

    /// The entry with sequence number `seq`.
    ///
    /// # Errors
    /// [`AuditError::Storage`]; [`AuditError::Inconsistent`] if the stored bytes are not a
    /// canonical record.
    pub fn entry(&self, seq: u64) -> Result<Option<Entry>, AuditError> {
        self.with_reader(|connection| {
            connection
                .query_row(
                    "SELECT seq, bytes, leaf_hash FROM entry WHERE seq = ?1",
                    [to_sql(seq)?],
                    storage::entry_from_row,
                )
                .optional()?
                .transpose()
        })
    }

    /// Up to `limit` entries from `from_seq` on, in order (a privacy officer paging the log).
    ///
    /// # Errors
    /// As [`AuditLog::entry`].
    pub fn entries(&self, from_seq: u64, limit: usize) -> Result<Vec<Entry>, AuditError> {
        self.with_reader(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT seq, bytes, leaf_hash FROM entry WHERE seq >= ?1 ORDER BY seq LIMIT ?2",
            )?;
            let rows = statement.query_map(
                params![to_sql(from_seq)?, to_sql(limit as u64)?],
                storage::entry_from_row,
            )?;
            rows.map(|row| row?).collect()
        })
    }

    /// A patient's access history: up to `limit` entries naming `patient`, newest first, older
    /// than `before_seq` if given (keyset paging: pass the last `seq` of the previous page).
    ///
    /// # Errors
    /// As [`AuditLog::entry`].
    pub fn patient_history(
        &self,
        patient: &str,
        before_seq: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Entry>, AuditError> {
        self.with_reader(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT e.seq, e.bytes, e.leaf_hash
                 FROM entry_patient p JOIN entry e ON e.seq = p.seq
                 WHERE p.patient = ?1 AND p.seq < ?2
                 ORDER BY p.seq DESC LIMIT ?3",
            )?;
            let before = before_seq.map_or(Ok(i64::MAX), to_sql)?;
            let rows = statement.query_map(
                params![patient, before, to_sql(limit as u64)?],
                storage::entry_from_row,
            )?;
            rows.map(|row| row?).collect()
        })
    }

    /// Proof that entry `seq` is in the tree of the newest signed head.
    ///
    /// # Errors
    /// [`AuditError::OutOfRange`] if there is no such entry; storage errors.
    pub fn inclusion_proof(&self, seq: u64) -> Result<InclusionProof, AuditError> {
        let head = self.tree_head().ok_or(AuditError::OutOfRange)?;
        self.inclusion_proof_under(seq, head)
    }

    /// Proof that entry `seq` is in the tree of the stored signed head of `tree_size` entries (a
    /// head the verifier already holds, e.g. from a [`Receipt`]).
    ///
    /// # Errors
    /// [`AuditError::OutOfRange`] if there is no such entry or head; storage errors.
    pub fn inclusion_proof_at(
        &self,
        seq: u64,
        tree_size: u64,
    ) -> Result<InclusionProof, AuditError> {
        let head = self
            .with_reader(|connection| read_head_at(connection, tree_size))?
            .ok_or(AuditError::OutOfRange)?;
        self.inclusion_proof_under(seq, head)
    }

    /// Proof that the newest signed head extends the tree of `old_size` entries.
    ///
    /// # Errors
    /// [`AuditError::OutOfRange`] if `old_size` exceeds the newest head; storage errors.
    pub fn consistency_proof(&self, old_size: u64) -> Result<ConsistencyProof, AuditError> {
        let head = self.tree_head().ok_or(AuditError::OutOfRange)?;
        self.consistency_proof_under(old_size, head)
    }

    /// Proof that the stored head of `new_size` entries extends the tree of `old_size` entries.
    ///
    /// # Errors
    /// [`AuditError::OutOfRange`] if there is no head of `new_size` or `old_size` exceeds it.
    pub fn consistency_proof_between(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<ConsistencyProof, AuditError> {
        let head = self
            .with_reader(|connection| read_head_at(connection, new_size))?
            .ok_or(AuditError::OutOfRange)?;
        self.consistency_proof_under(old_size, head)
    }

    /// Stops accepting appends, lets the writer commit what is queued, and waits for it.
    pub fn close(mut self) {
        self.shut_down();
    }

    fn inclusion_proof_under(
        &self,
        seq: u64,
        tree_head: SignedTreeHead,
    ) -> Result<InclusionProof, AuditError> {
        let path = self.with_reader(|connection| {
            let mut source = StoredSubtrees::new(connection);
            merkle::inclusion_proof_from(&mut source, seq, tree_head.tree_size)
                .map_err(out_of_range)?
        })?;
        Ok(InclusionProof {
            leaf_index: seq,
            tree_head,
            path,
        })
    }

    fn consistency_proof_under(
        &self,
        old_size: u64,
        new_head: SignedTreeHead,
    ) -> Result<ConsistencyProof, AuditError> {
        let path = self.with_reader(|connection| {
            let mut source = StoredSubtrees::new(connection);
            merkle::consistency_proof_from(&mut source, old_size, new_head.tree_size)
                .map_err(out_of_range)?
        })?;
        Ok(ConsistencyProof {
            old_size,
            new_head,
            path,
        })
    }

    /// Runs `read` on an idle read-only connection (opening one if none is idle).
    fn with_reader<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, AuditError>,
    ) -> Result<T, AuditError> {
        let idle = self.readers.lock().expect("reader pool poisoned").pop();
        let connection = match idle {
            Some(connection) => connection,
            None => storage::open_reader(&self.path)?,
        };
        let result = read(&connection);
        let mut readers = self.readers.lock().expect("reader pool poisoned");
        if readers.len() < MAX_IDLE_READERS {
            readers.push(connection);
        }
        result
    }

    fn shut_down(&mut self) {
        // The idle read-only connections close first: the last connection to close a WAL database
        // copies the WAL back and removes it, which a read-only one cannot do (the WAL was left
        // behind, and the next start read it whole).
        if let Ok(mut readers) = self.readers.lock() {
            readers.clear();
        }
        self.sender.take();
        if let Some(writer) = self.writer.take() {
            // The writer only ends by its queue closing; a panic there has been reported already.
            let _ = writer.join();
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.shut_down();
    }
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .field("public_key", &self.public_key)
            .field("tree_size", &self.tree_head().map(|head| head.tree_size))
            .finish_non_exhaustive()
    }
}

fn out_of_range(_: ProofError) -> AuditError {
    AuditError::OutOfRange
}

/// A sequence number or size as SQLite's signed integer.
fn to_sql(value: u64) -> Result<i64, AuditError> {
    i64::try_from(value).map_err(|_| AuditError::OutOfRange)
}

// The server shares one log between request tasks.
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<AuditLog>();
};
