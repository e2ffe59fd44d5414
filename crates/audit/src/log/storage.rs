//! The SQLite side of the log: connections, the schema, the writer's start-up state (with the
//! cheap consistency check), stored perfect subtrees for proofs, and row decoding.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior};

use crate::AuditError;
use crate::hash::Hash;
use crate::head::{Signature, SignedTreeHead};
use crate::key::PublicKey;
use crate::log::Entry;
use crate::merkle::{Frontier, Subtrees};
use crate::record::AuditRecord;
use crate::time::UtcTime;

/// The on-disk format this code writes and reads.
const FORMAT_VERSION: &str = "1";

/// Tables, indexes and append-only guard triggers. `STRICT` keeps types honest.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS entry (
    seq INTEGER PRIMARY KEY,
    bytes BLOB NOT NULL,
    leaf_hash BLOB NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS tree_head (
    size INTEGER PRIMARY KEY,
    root BLOB NOT NULL,
    timestamp INTEGER NOT NULL,
    signature BLOB NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS node (
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS entry_patient (
    seq INTEGER PRIMARY KEY,
    patient TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS entry_patient_by_patient ON entry_patient (patient, seq);
CREATE TRIGGER IF NOT EXISTS entry_no_update BEFORE UPDATE ON entry
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS entry_no_delete BEFORE DELETE ON entry
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS tree_head_no_update BEFORE UPDATE ON tree_head
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS tree_head_no_delete BEFORE DELETE ON tree_head
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS node_no_update BEFORE UPDATE ON node
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS node_no_delete BEFORE DELETE ON node
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS entry_patient_no_update BEFORE UPDATE ON entry_patient
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS entry_patient_no_delete BEFORE DELETE ON entry_patient
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
";

/// What the writer needs to go on appending: the compact tree and the newest head.
#[derive(Debug, Clone)]
pub(crate) struct State {
    pub(crate) frontier: Frontier,
    pub(crate) head: Option<SignedTreeHead>,
}

/// Fewest time between two background checkpoints of the log (`sqlite_checkpoint`): the commits
/// of a busy server share one (each costs two fsyncs), and a hot page (the tail of a table) is
/// copied once however often it changed.
///
/// A checkpoint still slows the commits that overlap it (its writes and its fsync share the disk
/// and the CPUs with them), so fewer, larger ones touch fewer requests. Measured with 32 secured
/// readers at ~11,500 appends/s: every 100 ms, p99 7.4–8.9 ms and p99.9 18–19 ms; every 1 s,
/// p99 4.9–5.6 ms and p99.9 27–29 ms (the WAL then holds ~10 MB); the writer's own automatic
/// checkpoints, p99 9–10 ms.
pub(crate) const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// WAL pages after which the writer checkpoints itself (the backstop).
const WRITER_AUTOCHECKPOINT: i64 = 16_384;

/// The write connection: WAL, `synchronous=FULL` (a commit survives a power loss).
pub(crate) fn open_writer(path: &Path, busy_timeout: Duration) -> Result<Connection, AuditError> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(busy_timeout)?;
    let mode: String = connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(AuditError::Inconsistent(format!(
            "the audit database refused WAL mode (got {mode})"
        )));
    }
    connection.pragma_update(None, "synchronous", "FULL")?;
    // The checkpointer thread copies the WAL back; the writer only as a backstop.
    connection.pragma_update(None, "wal_autocheckpoint", WRITER_AUTOCHECKPOINT)?;
    // Keep the WAL file from staying large after a backlog.
    connection.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    Ok(connection)
}

/// The checkpointer's connection (`sqlite_checkpoint`): `synchronous=FULL` (a checkpoint syncs the
/// WAL before copying and the database file after), no automatic checkpoints of its own.
pub(crate) fn open_checkpointer(
    path: &Path,
    busy_timeout: Duration,
) -> Result<Connection, AuditError> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(busy_timeout)?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.pragma_update(None, "wal_autocheckpoint", 0)?;
    Ok(connection)
}

/// A read-only connection, for reads, proofs and [`crate::verify`].
pub(crate) fn open_reader(path: &Path) -> Result<Connection, AuditError> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(Duration::from_secs(5))?;
    Ok(connection)
}

/// Creates the tables if they are missing and records (or checks) the format and the key id.
pub(crate) fn create_schema(
    connection: &Connection,
    public_key: &PublicKey,
) -> Result<(), AuditError> {
    let key_id = public_key.key_id().to_hex();
    let transaction =
        rusqlite::Transaction::new_unchecked(connection, TransactionBehavior::Immediate)?;
    // Never add audit tables to another database (say, the resource store) given by mistake.
    let foreign_tables: i64 = transaction.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table'
         AND name NOT IN ('meta', 'entry', 'tree_head', 'node', 'entry_patient')
         AND name NOT LIKE 'sqlite_%'",
        [],
        |row| row.get(0),
    )?;
    if foreign_tables > 0 {
        return Err(AuditError::Inconsistent(
            "the file is another database, not an audit log".to_owned(),
        ));
    }
    transaction.execute_batch(SCHEMA)?;
    transaction.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('format', ?1), ('key_id', ?2)",
        [FORMAT_VERSION, key_id.as_str()],
    )?;
    let stored_format: String =
        transaction.query_row("SELECT value FROM meta WHERE key = 'format'", [], |row| {
            row.get(0)
        })?;
    if stored_format != FORMAT_VERSION {
        return Err(AuditError::Inconsistent(format!(
            "the audit log has format {stored_format}, this build reads {FORMAT_VERSION}"
        )));
    }
    let stored_key: String =
        transaction.query_row("SELECT value FROM meta WHERE key = 'key_id'", [], |row| {
            row.get(0)
        })?;
    if stored_key != key_id {
        return Err(AuditError::Inconsistent(format!(
            "the audit log was created with key {stored_key}, not with this key ({key_id})"
        )));
    }
    transaction.commit()?;
    Ok(())
}

/// The writer's state from the file, checked cheaply: the entries end where the newest head
/// says, the head verifies with `public_key`, and the stored perfect subtrees of that size hash to
/// its root.
pub(crate) fn load_state(
    connection: &Connection,
    public_key: &PublicKey,
) -> Result<State, AuditError> {
    let head = connection
        .query_row(
            "SELECT size, root, timestamp, signature FROM tree_head ORDER BY size DESC LIMIT 1",
            [],
            head_from_row,
        )
        .optional()?;
    let last_seq: Option<i64> =
        connection.query_row("SELECT max(seq) FROM entry", [], |row| row.get(0))?;
    let entries = last_seq.map_or(0, |seq| seq.saturating_add(1));
    let Some(head) = head else {
        if entries != 0 {
            return Err(AuditError::Inconsistent(
                "entries exist but no signed tree head".to_owned(),
            ));
        }
        return Ok(State {
            frontier: Frontier::new(),
            head: None,
        });
    };
    let head = head
        .ok_or_else(|| AuditError::Inconsistent("the newest tree head is malformed".to_owned()))?;
    if !head.verify(public_key) {
        return Err(AuditError::Inconsistent(format!(
            "the signature of the newest tree head (size {}) does not verify",
            head.tree_size
        )));
    }
    if i64::try_from(head.tree_size).ok() != Some(entries) {
        return Err(AuditError::Inconsistent(format!(
            "the newest tree head covers {} entries but the log ends after {entries}",
            head.tree_size
        )));
    }
    let mut source = StoredSubtrees::new(connection);
    let nodes = Frontier::positions(head.tree_size)
        .map(|(level, index)| source.perfect(level, index))
        .collect::<Result<Vec<_>, _>>()?;
    let frontier =
        Frontier::from_nodes(head.tree_size, nodes).expect("one node per set bit of the size");
    if frontier.root() != head.root_hash {
        return Err(AuditError::Inconsistent(format!(
            "the stored tree does not hash to the newest tree head (size {})",
            head.tree_size
        )));
    }
    Ok(State {
        frontier,
        head: Some(head),
    })
}

/// The stored head of exactly `tree_size` entries.
pub(crate) fn read_head_at(
    connection: &Connection,
    tree_size: u64,
) -> Result<Option<SignedTreeHead>, AuditError> {
    let Ok(size) = i64::try_from(tree_size) else {
        return Ok(None);
    };
    let head = connection
        .query_row(
            "SELECT size, root, timestamp, signature FROM tree_head WHERE size = ?1",
            [size],
            head_from_row,
        )
        .optional()?;
    match head {
        None => Ok(None),
        Some(Some(head)) => Ok(Some(head)),
        Some(None) => Err(AuditError::Inconsistent(format!(
            "the tree head of size {tree_size} is malformed"
        ))),
    }
}

/// A `tree_head` row (`size, root, timestamp, signature`); `None` when a value has the wrong type
/// or length (a tampered row).
pub(crate) fn head_from_row(row: &Row<'_>) -> rusqlite::Result<Option<SignedTreeHead>> {
    let size = row
        .get_ref(0)?
        .as_i64()
        .ok()
        .and_then(|size| u64::try_from(size).ok());
    let root = row.get_ref(1)?.as_blob().ok().and_then(Hash::from_slice);
    let timestamp = row
        .get_ref(2)?
        .as_i64()
        .ok()
        .and_then(UtcTime::from_unix_micros);
    let signature = row
        .get_ref(3)?
        .as_blob()
        .ok()
        .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok());
    Ok(match (size, root, timestamp, signature) {
        (Some(tree_size), Some(root_hash), Some(timestamp), Some(signature)) => {
            Some(SignedTreeHead {
                tree_size,
                root_hash,
                timestamp,
                signature: Signature(signature),
            })
        }
        _ => None,
    })
}

/// An `entry` row (`seq, bytes, leaf_hash`) decoded; the inner error for bytes that are not a
/// canonical record or a malformed leaf hash.
pub(crate) fn entry_from_row(row: &Row<'_>) -> rusqlite::Result<Result<Entry, AuditError>> {
    let seq: i64 = row.get(0)?;
    let bytes = row.get_ref(1)?.as_blob().ok();
    let leaf_hash = row.get_ref(2)?.as_blob().ok().and_then(Hash::from_slice);
    let malformed = || AuditError::Inconsistent(format!("entry {seq} is malformed"));
    let (Some(bytes), Some(leaf_hash), Ok(seq)) = (bytes, leaf_hash, u64::try_from(seq)) else {
        return Ok(Err(malformed()));
    };
    Ok(AuditRecord::from_canonical_bytes(bytes)
        .map(|record| Entry {
            seq,
            record,
            leaf_hash,
        })
        .map_err(|_| malformed()))
}

/// Perfect subtrees as stored: level 0 from `entry.leaf_hash`, higher levels from `node`.
pub(crate) struct StoredSubtrees<'c> {
    connection: &'c Connection,
}

impl<'c> StoredSubtrees<'c> {
    pub(crate) fn new(connection: &'c Connection) -> Self {
        StoredSubtrees { connection }
    }
}

impl Subtrees for StoredSubtrees<'_> {
    type Error = AuditError;

    fn perfect(&mut self, level: u32, index: u64) -> Result<Hash, AuditError> {
        let index = i64::try_from(index).map_err(|_| AuditError::OutOfRange)?;
        let stored: Option<Vec<u8>> = if level == 0 {
            self.connection
                .prepare_cached("SELECT leaf_hash FROM entry WHERE seq = ?1")?
                .query_row([index], |row| row.get(0))
                .optional()?
        } else {
            self.connection
                .prepare_cached("SELECT hash FROM node WHERE level = ?1 AND idx = ?2")?
                .query_row([i64::from(level), index], |row| row.get(0))
                .optional()?
        };
        stored.as_deref().and_then(Hash::from_slice).ok_or_else(|| {
            AuditError::Inconsistent(format!(
                "the stored tree node at level {level}, index {index} is missing or malformed"
            ))
        })
    }
}
