//! The checkpointer thread of a SQLite database with one writer (the store's, the audit log's):
//! it copies committed WAL pages back into the database file on its own connection, so that the
//! writer never stops committing while a checkpoint runs (with SQLite's automatic checkpoints one
//! commit in every ~1,000 WAL pages waited for a checkpoint and its fsync).
//!
//! The writer calls [`Checkpointer::committed`] after every commit; the thread runs `PRAGMA
//! wal_checkpoint(PASSIVE)`, which never waits for readers or for the writer, at most once per
//! interval (commits in between share one checkpoint: each costs two fsyncs, and a hot page is
//! copied once however often it changed), and runs it again at once while the commits made during
//! the previous one left fewer frames behind. When a checkpoint has copied the
//! whole WAL, the writer's next transaction starts the WAL over from its beginning, so the file
//! stops growing. The
//! writer's own automatic checkpoint (its `wal_autocheckpoint`, set by its owner) is the backstop
//! should the thread fall behind.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// Handle to the running checkpointer. Dropping it stops the thread after its current checkpoint.
pub struct Checkpointer {
    notify: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread `name` that owns `connection` (a read-write connection to the database,
    /// in WAL mode, used for nothing else) and checkpoints at most once per `interval`.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn spawn(connection: Connection, name: &str, interval: Duration) -> std::io::Result<Self> {
        let (notify, receiver) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || run(&connection, &receiver, interval))?;
        Ok(Checkpointer {
            notify: Some(notify),
            thread: Some(thread),
        })
    }

    /// Tells the thread that a transaction committed. Never blocks: a pending signal covers it.
    pub fn committed(&self) {
        if let Some(notify) = &self.notify {
            let _ = notify.try_send(());
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.notify.take();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("a SQLite checkpointer thread panicked");
        }
    }
}

fn run(connection: &Connection, receiver: &Receiver<()>, interval: Duration) {
    let mut pending = false;
    loop {
        if !pending && receiver.recv().is_err() {
            return;
        }
        let started = Instant::now();
        catch_up(connection);
        // Wait out the interval, remembering a commit signalled meanwhile; a dropped handle ends
        // the wait at once.
        pending = false;
        while let Some(rest) = interval.checked_sub(started.elapsed()) {
            match receiver.recv_timeout(rest) {
                Ok(()) => pending = true,
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}

/// Most checkpoints run back to back by [`catch_up`].
const MOST_CATCH_UPS: usize = 4;

/// Runs a PASSIVE checkpoint, then again while the commits made during the previous one left a
/// smaller remainder: the WAL is started over only once every frame in it was copied, which a
/// checkpoint running while the writer commits never achieves alone (it copies what was there
/// when it began), so without this the WAL grew to the writer's backstop under a steady trickle of
/// writes.
fn catch_up(connection: &Connection) {
    let mut remainder = u64::MAX;
    for _ in 0..MOST_CATCH_UPS {
        // (busy, frames in the WAL, frames copied back); -1 for both when not in WAL mode.
        let result = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
        });
        let (log, copied) = match result {
            Ok(frames) => frames,
            Err(error) => {
                // Tried again after the next commit; what it would have copied is in the WAL,
                // durable, whether or not it was copied back yet.
                tracing::warn!(%error, "background WAL checkpoint failed");
                return;
            }
        };
        let left = u64::try_from(log.saturating_sub(copied)).unwrap_or(0);
        if left == 0 || left >= remainder {
            return;
        }
        remainder = left;
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use rusqlite::Connection;

    use super::Checkpointer;

    /// A WAL database with a table `t` and its writer, which never checkpoints by itself.
    fn database() -> (tempfile::TempDir, PathBuf, Connection) {
        let directory = tempfile::tempdir().expect("temp dir");
        let path = directory.path().join("db.sqlite");
        let writer = Connection::open(&path).expect("open");
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
                 CREATE TABLE t (x BLOB);",
            )
            .expect("schema");
        (directory, path, writer)
    }

    fn size(path: &Path) -> u64 {
        std::fs::metadata(path).map_or(0, |m| m.len())
    }

    #[test]
    fn commits_are_copied_back_into_the_database_file() {
        let (_directory, path, writer) = database();
        let checkpointer = Checkpointer::spawn(
            Connection::open(&path).expect("open"),
            "test-ckpt",
            Duration::from_millis(10),
        )
        .expect("spawn");
        writer
            .execute("INSERT INTO t VALUES (zeroblob(100000))", [])
            .expect("insert");
        let before = size(&path);
        checkpointer.committed();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while size(&path) <= before && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(checkpointer);
        assert!(
            size(&path) > before + 90_000,
            "the row's pages reached the database file: {before} -> {}",
            size(&path)
        );
    }

    #[test]
    fn a_catch_up_copies_every_frame_so_the_wal_can_start_over() {
        let (directory, path, writer) = database();
        writer
            .execute("INSERT INTO t VALUES (zeroblob(100000))", [])
            .expect("insert");
        let wal = directory.path().join("db.sqlite-wal");
        let before = size(&wal);
        assert!(before > 100_000, "the insert is in the WAL: {before}");
        super::catch_up(&Connection::open(&path).expect("open"));
        // Everything was copied: the next write starts the WAL over instead of appending.
        writer
            .execute("INSERT INTO t VALUES (zeroblob(1000))", [])
            .expect("insert");
        assert_eq!(
            size(&wal),
            before,
            "the WAL was written over from its start"
        );
    }
}
