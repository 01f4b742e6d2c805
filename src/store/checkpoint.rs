//! The background checkpointer: copies the WAL into the database file from its own connection,
//! never inside a commit (checkpoints inside commits caused 10–30 ms commit spikes). Passive: it
//! never waits for the writer or the readers. It runs every second, every 100 ms once the log
//! is a quarter of its bound, and at once when the writer wakes it (from three quarters of the
//! bound on), so that when the writer must empty the log (`WalBound`) few frames are left to
//! copy and its pause stays short.
//!
//! SQLite syncs the database file after a copy only when the copy reached the log's end, which
//! under a steady load it never does (the writer commits while it copies): every page it
//! copied would wait in the kernel's cache for the writer's restart of the log, whose sync
//! then wrote them all with the writer stopped (at a million escrows, tens of MiB of pages
//! scattered over the file: 84–234 ms). So after each copy the checkpointer syncs the file
//! itself, on a descriptor the store holds open for as long as its connections
//! (`Store::_db_file`), and the restart's sync finds little left to write.

use super::open::open_connection;
use super::writer::WriterStats;
use super::Synchronous;
use crate::error::{Error, Result};
use crate::limits::{CHECKPOINT_BUSY_INTERVAL_MS, CHECKPOINT_INTERVAL_MS};
use std::fs::File;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Starts the checkpointer; send on the returned channel (or drop it) and unpark its thread to
/// stop it.
pub(super) fn start(
    path: &Path,
    wal_max_bytes: u64,
    stats: &Arc<WriterStats>,
    db_file: Arc<File>,
) -> Result<(SyncSender<()>, JoinHandle<()>)> {
    let conn = open_connection(path, Synchronous::Full)?;
    let watched = Arc::clone(stats);
    let copying = Arc::clone(stats);
    // Looked at every busy interval, so that a log that fills within the idle interval (a
    // million-escrow ledger under load passes its bound in under half a second) is copied as it
    // grows, not in one piece by the writer's restart.
    let mut last = Instant::now();
    let due = move || {
        let busy = watched.wal_in_use_bytes.load(Ordering::Relaxed) > wal_max_bytes / 4;
        let due = busy || last.elapsed() >= Duration::from_millis(CHECKPOINT_INTERVAL_MS);
        if due {
            last = Instant::now();
        }
        due
    };
    let (stop, stopped) = mpsc::sync_channel::<()>(1);
    let handle = std::thread::Builder::new()
        .name("remit-checkpoint".into())
        .spawn(move || {
            let mut due = due;
            let look = Duration::from_millis(CHECKPOINT_BUSY_INTERVAL_MS);
            loop {
                // Woken early by the writer (`WalBound::enforce`) or by `close`.
                std::thread::park_timeout(look);
                if !matches!(stopped.try_recv(), Err(TryRecvError::Empty)) {
                    break;
                }
                let wanted = copying.checkpoint_wanted.swap(false, Ordering::AcqRel);
                if !due() && !wanted {
                    continue;
                }
                copying.checkpoint_copying.store(true, Ordering::Release);
                let before = copying.checkpoint_copied_frames.load(Ordering::Acquire);
                let began = Instant::now();
                // (busy, frames in the log, frames copied): SQLite answers 1, -1, -1 when
                // another checkpoint held the log.
                let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(2)?))
                });
                if let Ok((0, frames)) = done {
                    let frames = u64::try_from(frames).unwrap_or(0);
                    if frames != before {
                        // (While it syncs, `checkpoint_copying` stays set: a writer that must
                        // restart the log waits for the sync, as its own would for the same
                        // pages.)
                        if let Err(e) = db_file.sync_data() {
                            // SQLite already counts these frames as copied, and the kernel
                            // forgets a failed write once it has said so: the writer's next
                            // restart of the log would sync "successfully" and overwrite the
                            // only good copy of commits already answered. The process stops
                            // here instead, the log as it is: the next start reads it whole
                            // and copies every frame again (as a database does that cannot
                            // trust its disk's word; the unit restarts it).
                            log::error!(
                                "cannot sync the database file after a checkpoint ({e}): the disk may have lost writes; stopping now so that the next start copies the write-ahead log into the file again (check the disk: `dmesg`, `remit check`)"
                            );
                            log::logger().flush();
                            std::process::abort();
                        }
                    }
                    let took = began.elapsed();
                    copying
                        .checkpoint_copied_frames
                        .store(frames, Ordering::Release);
                    // The copies that take long are a large ledger's (its pages scattered
                    // over the file, each its own write at the sync).
                    if took >= Duration::from_millis(20) {
                        log::debug!(
                            "copied the WAL to frame {frames} (from {before}) in {:.1} ms",
                            took.as_secs_f64() * 1e3
                        );
                    }
                }
                copying.checkpoint_copying.store(false, Ordering::Release);
                if let Err(e) = done {
                    // A full disk: what the log holds cannot reach the file, and the writes
                    // after it will fail once the log is at its bound: said as failing writes.
                    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
                        copying.write_failed();
                    }
                    static FAILED: crate::error::Throttle =
                        crate::error::Throttle::new(Duration::from_secs(10));
                    FAILED.log(
                        module_path!(),
                        log::Level::Warn,
                        format_args!("checkpoint failed: {e}"),
                    );
                }
            }
        })
        .map_err(|e| Error::internal(format!("cannot start the checkpoint thread: {e}")))?;
    let _ = stats.checkpointer.set(handle.thread().clone());
    Ok((stop, handle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpointer_asked_to_copy_copies_before_its_clock_and_says_how_far() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let conn = open_connection(&path, Synchronous::Full).unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        conn.execute_batch("CREATE TABLE t (v BLOB)").unwrap();
        for _ in 0..8 {
            conn.execute("INSERT INTO t VALUES (zeroblob(4000))", [])
                .unwrap();
        }
        let stats = Arc::new(WriterStats::default());
        let started = Instant::now();
        let file = Arc::new(File::open(&path).unwrap());
        let (stop, handle) = start(&path, 64 << 20, &stats, Arc::clone(&file)).unwrap();
        // Not due by its clock for a second: only the wake makes it copy before that.
        assert!(stats.checkpointer.get().is_some());
        stats.wake_checkpointer();
        while stats.checkpoint_copied_frames.load(Ordering::SeqCst) == 0
            && started.elapsed() < Duration::from_secs(5)
        {
            std::thread::yield_now();
        }
        let copied_after = started.elapsed();
        let frames: i64 = conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
            .unwrap();
        assert_eq!(
            stats.checkpoint_copied_frames.load(Ordering::SeqCst),
            u64::try_from(frames).unwrap()
        );
        assert!(
            copied_after < Duration::from_millis(CHECKPOINT_INTERVAL_MS * 9 / 10),
            "copied after {copied_after:?}"
        );
        assert!(!stats.checkpoint_wanted.load(Ordering::SeqCst));
        stop.send(()).unwrap();
        handle.thread().unpark();
        handle.join().unwrap();
        // The file's descriptor last (see `Store::_db_file`).
        drop(conn);
        drop(file);
    }
}
