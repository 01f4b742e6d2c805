//! The background checkpointer: copies the WAL into the database file from its own connection,
//! never inside a commit (checkpoints inside commits caused 10–30 ms commit spikes).

use super::open::open_connection;
use super::Synchronous;
use crate::error::{Error, Result};
use crate::limits::CHECKPOINT_INTERVAL_MS;
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::Duration;

/// Starts the checkpointer; send on the returned channel (or drop it) to stop it.
pub(super) fn start(path: &Path) -> Result<(SyncSender<()>, JoinHandle<()>)> {
    let conn = open_connection(path, Synchronous::Full)?;
    let (stop, stopped) = mpsc::sync_channel::<()>(1);
    let handle = std::thread::Builder::new()
        .name("remit-checkpoint".into())
        .spawn(move || {
            while let Err(RecvTimeoutError::Timeout) =
                stopped.recv_timeout(Duration::from_millis(CHECKPOINT_INTERVAL_MS))
            {
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    log::warn!("checkpoint failed: {e}");
                }
            }
        })
        .map_err(|e| Error::internal(format!("cannot start the checkpoint thread: {e}")))?;
    Ok((stop, handle))
}
