//! The checkpointer thread: copies committed WAL pages back into the database file on its own
//! connection, so the writer thread never spends its time (and its fsyncs) on checkpoints.
//!
//! The writer signals after every commit; the thread runs `PRAGMA wal_checkpoint(PASSIVE)`, which
//! never waits for readers or for the writer, at most once per [`MIN_INTERVAL`]. When a checkpoint
//! has copied the whole WAL, the writer's next transaction starts the WAL over from its beginning,
//! so the file stops growing. Should the background checkpoints fall behind, the writer's own
//! autocheckpoint (at [`crate::connection::WRITER_AUTOCHECKPOINT`] pages) is the backstop.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// Fewest time between two checkpoints: a burst of small commits shares one (each costs two
/// fsyncs).
const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// Handle to the running checkpointer. Dropping it stops the thread after its current checkpoint.
pub(crate) struct Checkpointer {
    notify: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread that owns `connection` (opened with `Role::Checkpointer`).
    pub(crate) fn spawn(connection: Connection) -> std::io::Result<Self> {
        let (notify, receiver) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("store-sqlite-ckpt".to_owned())
            .spawn(move || run(&connection, &receiver))?;
        Ok(Checkpointer {
            notify: Some(notify),
            thread: Some(thread),
        })
    }

    /// Tells the thread that a transaction committed. Never blocks: a pending signal covers it.
    pub(crate) fn committed(&self) {
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
            tracing::error!("the SQLite checkpointer thread panicked");
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
        if let Err(error) =
            connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_row| Ok(()))
        {
            tracing::warn!(%error, "background WAL checkpoint failed");
        }
        // Wait out the interval, remembering a commit signalled meanwhile; a closed store ends
        // the wait at once.
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
