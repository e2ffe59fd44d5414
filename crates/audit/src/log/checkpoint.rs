//! The checkpointer thread: copies committed WAL pages back into the log's database file on its
//! own connection, so that the writer thread never stops committing appends while a checkpoint
//! runs (with SQLite's automatic checkpoints, every ~1,000 WAL pages one commit waited for a
//! checkpoint and its fsync: several milliseconds for every request waiting on that commit, the
//! p99 of a busy server).
//!
//! The writer signals after every commit; the thread runs `PRAGMA wal_checkpoint(PASSIVE)`, which
//! never waits for readers or for the writer, at most once per [`MIN_INTERVAL`]. When a checkpoint
//! has copied the whole WAL, the writer's next transaction starts the WAL over from its beginning.
//! Should the background checkpoints fall behind, the writer's own automatic checkpoint (at
//! [`WRITER_AUTOCHECKPOINT`] pages) is the backstop.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// Fewest time between two checkpoints: the commits of a busy server share one (each costs two
/// fsyncs), and a hot page (the tail of a table) is copied once however often it changed.
///
/// A checkpoint still slows the commits that overlap it (its writes and its fsync share the disk
/// and the CPUs with them), so fewer, larger ones touch fewer requests. Measured with 32 secured
/// readers at ~11,500 appends/s: every 100 ms, p99 7.4–8.9 ms and p99.9 18–19 ms; every 1 s,
/// p99 4.9–5.6 ms and p99.9 27–29 ms (the WAL then holds ~10 MB); the writer's own automatic
/// checkpoints, p99 9–10 ms.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// WAL pages after which the writer checkpoints itself (the backstop).
pub(crate) const WRITER_AUTOCHECKPOINT: i64 = 16_384;

/// Handle to the running checkpointer. Dropping it stops the thread after its current checkpoint.
pub(crate) struct Checkpointer {
    notify: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread that owns `connection` (`storage::open_checkpointer`).
    pub(crate) fn spawn(connection: Connection) -> std::io::Result<Self> {
        let (notify, receiver) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("audit-ckpt".to_owned())
            .spawn(move || run(&connection, &receiver))?;
        Ok(Checkpointer {
            notify: Some(notify),
            thread: Some(thread),
        })
    }

    /// Tells the thread that a batch committed. Never blocks: a pending signal covers it.
    pub(crate) fn committed(&self) {
        if let Some(notify) = &self.notify {
            let _ = notify.try_send(());
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.notify.take();
        if let Some(thread) = self.thread.take() {
            // A panic there has been reported by the panic hook already.
            let _ = thread.join();
        }
    }
}

fn run(connection: &Connection, receiver: &Receiver<()>) {
    let mut pending = false;
    loop {
        if !pending && receiver.recv().is_err() {
            return;
        }
        let started = Instant::now();
        // A failed checkpoint is retried after the next commit; the entries are in the WAL,
        // durable, whether or not they were copied back yet.
        let _ = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_row| Ok(()));
        // Wait out the interval, remembering a commit signalled meanwhile; a closed log ends the
        // wait at once.
        pending = false;
        while let Some(rest) = MIN_INTERVAL.checked_sub(started.elapsed()) {
            match receiver.recv_timeout(rest) {
                Ok(()) => pending = true,
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}
