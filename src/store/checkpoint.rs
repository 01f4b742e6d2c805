//! The background checkpointer: copies the WAL into the database file from its own connection,
//! never inside a commit (checkpoints inside commits caused 10–30 ms commit spikes). Passive: it
//! never waits for the writer or the readers. It runs every second, and every 100 ms once the
//! log is a quarter of its bound, so that when the writer must empty the log (`WalBound`) few
//! frames are left to copy and its pause stays short.

use super::open::open_connection;
use super::writer::WriterStats;
use super::Synchronous;
use crate::error::{Error, Result};
use crate::limits::{CHECKPOINT_BUSY_INTERVAL_MS, CHECKPOINT_INTERVAL_MS};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Starts the checkpointer; send on the returned channel (or drop it) to stop it.
pub(super) fn start(
    path: &Path,
    wal_max_bytes: u64,
    stats: &Arc<WriterStats>,
) -> Result<(SyncSender<()>, JoinHandle<()>)> {
    let conn = open_connection(path, Synchronous::Full)?;
    let stats = Arc::clone(stats);
    let interval = move || {
        let in_use = stats.wal_in_use_bytes.load(Ordering::Relaxed);
        Duration::from_millis(if in_use > wal_max_bytes / 4 {
            CHECKPOINT_BUSY_INTERVAL_MS
        } else {
            CHECKPOINT_INTERVAL_MS
        })
    };
    let (stop, stopped) = mpsc::sync_channel::<()>(1);
    let handle = std::thread::Builder::new()
        .name("remit-checkpoint".into())
        .spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval()) {
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    log::warn!("checkpoint failed: {e}");
                }
            }
        })
        .map_err(|e| Error::internal(format!("cannot start the checkpoint thread: {e}")))?;
    Ok((stop, handle))
}
