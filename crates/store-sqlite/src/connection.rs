//! Opening connections with the settings every connection of the store needs, and the reader pool
//! (used from the blocking thread pool, or on the calling thread for reads by key).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};
use store::StoreError;
use tokio::sync::Semaphore;

use crate::error::Result;

/// Settings read back from the write connection after opening, for diagnostics and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// `wal`.
    pub journal_mode: String,
    /// `PRAGMA synchronous`: 2 is `FULL`.
    pub synchronous: i64,
    pub foreign_keys: bool,
    pub busy_timeout_ms: i64,
}

/// Which end of the store a connection serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Writer,
    Reader,
    /// Copies the WAL back into the database file in the background (`sqlite_checkpoint`), so the
    /// writer thread never stalls on it.
    Checkpointer,
}

/// Per-connection tuning shared by both roles.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tuning {
    pub(crate) busy_timeout: std::time::Duration,
    pub(crate) cache_kib: u32,
}

/// How many prepared statements each connection keeps. Search SQL varies with the query's shape
/// (not its values), so a few hundred shapes cover a server's traffic.
const STATEMENT_CACHE: usize = 256;

/// WAL pages after which the writer checkpoints itself (see [`Role::Checkpointer`]).
pub(crate) const WRITER_AUTOCHECKPOINT: i64 = 65536;

/// Opens a connection to `path` configured for `role`.
pub(crate) fn open(path: &Path, role: Role, tuning: Tuning) -> Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if role == Role::Writer {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let connection = Connection::open_with_flags(path, flags)?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    plan_without_bound_values(&connection)?;
    connection.busy_timeout(tuning.busy_timeout)?;
    connection.pragma_update(None, "cache_size", -i64::from(tuning.cache_kib))?;
    connection.pragma_update(None, "temp_store", "MEMORY")?;
    match role {
        Role::Writer => {
            // WAL is a property of the database file; setting it once is enough, but it is
            // idempotent and cheap. It must happen outside a transaction.
            let mode: String =
                connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::unavailable(format!(
                    "SQLite refused WAL mode (journal_mode is {mode})"
                ))
                .into());
            }
            connection.pragma_update(None, "synchronous", "FULL")?;
            connection.pragma_update(None, "foreign_keys", true)?;
            // The checkpointer thread copies the WAL back after commits; the writer checkpoints
            // itself only as a backstop, when the WAL reached 65536 pages (256 MiB) because the
            // background checkpoints could not complete (they never wait for the writer).
            connection.pragma_update(None, "wal_autocheckpoint", WRITER_AUTOCHECKPOINT)?;
            // When the WAL starts over, keep its file up to a little more than the backstop's
            // size, not beyond: frames written over a part of the file that exists cost a copy,
            // while frames that extend it (4,120 bytes, across page boundaries) make the kernel
            // allocate and zero the pages they half cover. With 64 MiB here the WAL was cut back
            // after every backstop checkpoint during ingest, and zeroing was 17% of the writer's
            // time (100,000 resources, two Bundles in flight: 9,100 -> 10,100-10,400/s, writer CPU
            // 78 -> 67 µs per resource). A clean close removes the WAL file whatever its size.
            connection.pragma_update(
                None,
                "journal_size_limit",
                WRITER_AUTOCHECKPOINT * 4096 * 5 / 4,
            )?;
            // Bound the work of `PRAGMA optimize` (the writer runs it now and then).
            connection.pragma_update(None, "analysis_limit", 400)?;
        }
        Role::Reader => {
            connection.pragma_update(None, "foreign_keys", true)?;
            connection.pragma_update(None, "query_only", true)?;
        }
        Role::Checkpointer => {
            // A checkpoint syncs the WAL before copying and the database file after: FULL.
            connection.pragma_update(None, "synchronous", "FULL")?;
            connection.pragma_update(None, "wal_autocheckpoint", 0)?;
        }
    }
    Ok(connection)
}

/// Makes SQLite plan every statement without looking at the values bound to it (its query
/// planner stability guarantee, QPSG).
///
/// Without it, a statement whose plan looked at a bound value (`LIMIT ?N`, which every page
/// query binds; a `LIKE ?N` pattern; a value compared with a partial index's condition; a range
/// estimated from STAT4 samples) is marked to be re-prepared whenever that parameter is bound
/// again, and rusqlite's statement cache clears the bindings of every statement it takes back,
/// which marks it too: each cached search statement was parsed and planned again on every
/// execution (about 65 µs of a consent search's 70 µs). The store does not need value-dependent
/// plans: searches choose their driving condition themselves (`search::choose_driver`, by bounded
/// probes) and spell it out in the SQL (`+` on the columns that must not lead), string prefixes are
/// ranges rather than `LIKE`, and the one partial index (`idx_reference_url`, `WHERE url IS NOT
/// NULL`) is implied by `url = ?N` whatever its value. `search/tests.rs` pins the plans under it.
pub(crate) fn plan_without_bound_values(connection: &Connection) -> Result<()> {
    connection.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

/// Reads back the settings that matter for durability and integrity.
pub(crate) fn settings(connection: &Connection) -> Result<ConnectionSettings> {
    let pragma_text = |name: &str| -> rusqlite::Result<String> {
        connection.query_row(&format!("PRAGMA {name}"), [], |row| row.get(0))
    };
    let pragma_int = |name: &str| -> rusqlite::Result<i64> {
        connection.query_row(&format!("PRAGMA {name}"), [], |row| row.get(0))
    };
    Ok(ConnectionSettings {
        journal_mode: pragma_text("journal_mode")?,
        synchronous: pragma_int("synchronous")?,
        foreign_keys: pragma_int("foreign_keys")? == 1,
        busy_timeout_ms: pragma_int("busy_timeout")?,
    })
}

/// A fixed number of read-only connections used from `spawn_blocking`.
///
/// Invariant: at most `permits` connections are in use at once; an idle connection sits in `idle`.
/// A connection lost to a panicking task is replaced by opening a new one on demand.
pub(crate) struct Readers {
    path: PathBuf,
    tuning: Tuning,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl Readers {
    /// Opens `count` reader connections (at least one).
    pub(crate) fn open(path: &Path, count: usize, tuning: Tuning) -> Result<Self> {
        let count = count.max(1);
        let idle = (0..count)
            .map(|_| open(path, Role::Reader, tuning))
            .collect::<Result<Vec<_>>>()?;
        Ok(Readers {
            path: path.to_owned(),
            tuning,
            idle: Mutex::new(idle),
            permits: Arc::new(Semaphore::new(count)),
        })
    }

    /// Runs `work` on an idle reader connection on the blocking thread pool.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::unavailable("the reader pool is closed"))?;
        let readers = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let mut connection = readers.take()?;
            let result = work(&mut connection);
            // The connection goes back even if the caller stopped waiting: the work ran to its end.
            readers.give_back(connection);
            drop(permit);
            result
        })
        .await
        .map_err(StoreError::internal)?
        .map_err(StoreError::from)
    }

    /// Runs `work` on an idle reader connection on the calling thread (an async worker), without
    /// the hand-off to the blocking pool; when no connection is idle, as [`Readers::run`].
    ///
    /// Only for work that costs a few index reads whatever the data (a read by key, a narrow
    /// existence check): the hand-off (a wake-up and two context switches each way) costs more
    /// than such a read, while the async worker is held only as long as the read. It still waits
    /// for the disk when a page is in neither SQLite's cache nor the OS's (a store much larger
    /// than memory).
    pub(crate) async fn run_here<T, F>(self: &Arc<Self>, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() else {
            return self.run(work).await;
        };
        let mut connection = self.take().map_err(StoreError::from)?;
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&mut connection)));
        drop(permit);
        match result {
            Ok(result) => {
                self.give_back(connection);
                result.map_err(StoreError::from)
            }
            // As a panicking blocking task would: the connection is dropped, a new one is opened
            // when needed, and the caller gets an internal error.
            Err(_) => Err(StoreError::internal("a read panicked")),
        }
    }

    fn take(&self) -> Result<Connection> {
        let reused = self
            .idle
            .lock()
            .map_err(|_| StoreError::internal("reader pool lock poisoned"))?
            .pop();
        match reused {
            Some(connection) => Ok(connection),
            None => open(&self.path, Role::Reader, self.tuning),
        }
    }

    fn give_back(&self, connection: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(connection);
        }
    }
}
