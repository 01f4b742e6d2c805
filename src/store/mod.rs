//! The database: the single writer thread with group commit (`writer`), the pool of read-only
//! connections, opening and migrating the file (`open`, `migrate`), and the background
//! checkpointer (`checkpoint`).
//!
//! Every state change is a command run by the writer thread, which owns the only read-write
//! connection; reads use pooled read-only connections, which in WAL mode never block the writer
//! and never see half a batch.

mod backfill;
pub mod changes;
mod checkpoint;
pub mod idempotency;
mod migrate;
mod open;
mod writer;

pub use migrate::{
    latest_schema_version, migrate, migrated_in_memory, migrated_in_memory_to, schema_version,
};
pub use open::{
    a_file_or_nothing, create_private, existing_database, journals_in_memory, keeps_a_log,
    no_ledger_was_here, not_another_programs, not_sqlite, one_name, open, open_connection,
    open_for_check, open_with_key, read_only_connection, what_it_holds, Holds,
};
pub use writer::{WriteCtx, WriterStats};

/// A store on a new ledger file in `dir` (a key of its own), for the library's tests.
#[cfg(test)]
pub fn open_for_test(dir: &std::path::Path) -> Store {
    let mut options = OpenOptions::new(dir.join("test.db"));
    options.key_hex =
        Some("f22e7eded44972216725f772fba0b898d95e8e558f8edc10f321e184d3254d3d".into());
    open(&options).expect("a store opens on a new file")
}

use crate::audit::AuditKey;
use crate::crypto::{KeySource, Keys};
use crate::error::{Error, Result};
use crate::limits::{READ_POOL_TIMEOUT_MS, WRITER_QUEUE_MAX};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use writer::{Command, Job, Msg, RepeatableJob};

/// How hard a commit waits for the disk.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Synchronous {
    /// fsync on every commit: nothing acknowledged is lost on power cut (the default).
    Full,
    /// fsync at checkpoints only: a power cut may lose the last commits (never corrupts).
    Normal,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// How to open a database.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// The database file.
    pub path: PathBuf,
    /// `ENCRYPTION_KEY`, if set (64 hex characters).
    pub key_hex: Option<String>,
    /// Create the database (and key file) if missing; only `serve` does.
    pub create: bool,
    /// Durability of commits.
    pub synchronous: Synchronous,
    /// Read-only connections in the pool.
    pub read_pool_size: u32,
    /// The write-ahead log is kept under this size (bytes).
    pub wal_max_bytes: u64,
    /// Keep the change log replication reads (`changes::ChangeLog`): `serve` with
    /// `REMIT_REPLICATE_TO`.
    pub track_changes: bool,
    /// How long a batch that finds the file locked by another process (`Error::Busy`: a
    /// command beside a busy server) is run again before it fails; besides the busy timeout
    /// each attempt waits. Zero for the server, the file's only writer.
    pub busy_wait: std::time::Duration,
    /// Grow the write-ahead log's file with zeros before the first write (`WalBound::grow_file`):
    /// the server, whose log fills and restarts all day; not a command that writes a line.
    pub grow_wal: bool,
    /// A command that may run beside a server (`user add`, `user list`, `fx set`…): at its
    /// stop the log is left to the server if one runs (`WalBound::beside_server`).
    pub beside_server: bool,
}

impl OpenOptions {
    /// Defaults for a database at `path`.
    pub fn new(path: impl Into<PathBuf>) -> OpenOptions {
        OpenOptions {
            path: path.into(),
            key_hex: None,
            create: true,
            synchronous: Synchronous::Full,
            read_pool_size: crate::limits::READ_POOL_SIZE_DEFAULT,
            wal_max_bytes: crate::limits::WAL_MAX_MIB_DEFAULT << 20,
            track_changes: false,
            busy_wait: std::time::Duration::ZERO,
            grow_wal: false,
            beside_server: false,
        }
    }
}

/// The open database: the writer, the read pool and the keys. Cheap to share behind an `Arc`.
pub struct Store {
    sender: Mutex<Option<SyncSender<Msg>>>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    checkpointer: Mutex<Option<(SyncSender<()>, JoinHandle<()>)>>,
    reads: r2d2::Pool<SqliteConnectionManager>,
    keys: Arc<Keys>,
    path: PathBuf,
    key_source: KeySource,
    /// Writer counters.
    pub stats: Arc<WriterStats>,
    /// Rung after every commit that emitted an event (the outbox's readers wait on it).
    events: Arc<crate::wakeup::Wakeup>,
    /// The rows each of the writer's transactions changed (with `track_changes`).
    changes: Option<Arc<changes::ChangeLog>>,
    /// The database file opened, looked for at its path (`file_missing`).
    file: writer::FileInPlace,
    /// The database file, which the checkpointer syncs after its copies. Last, so dropped
    /// after the connections: closing a descriptor of a file drops every POSIX lock the
    /// process holds on it, SQLite's included.
    _db_file: Arc<std::fs::File>,
}

impl Store {
    /// Starts the read pool, the writer thread (which takes `conn`) and the checkpointer.
    fn start(
        conn: Connection,
        keys: Keys,
        audit_key: AuditKey,
        options: &OpenOptions,
        key_source: KeySource,
    ) -> Result<Store> {
        // Opened before any connection of the store's own, so that a failure here closes none
        // of their locks. Writable where it may be (not every system syncs a read-only
        // handle; Linux does).
        let db_file = Arc::new(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&options.path)
                .or_else(|_| std::fs::File::open(&options.path))
                .map_err(|e| {
                    Error::internal(format!("cannot open {}: {e}", options.path.display()))
                })?,
        );
        // Declared after the descriptor, so that on an early return it is dropped first.
        let conn = conn;
        let synchronous = options.synchronous;
        let manager = SqliteConnectionManager::file(&options.path)
            .with_flags(OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .with_init(move |c| {
                open::apply_pragmas(c, synchronous)?;
                c.pragma_update(None, "query_only", "ON")
            });
        let reads = r2d2::Pool::builder()
            .max_size(options.read_pool_size.max(1))
            .min_idle(Some(1))
            // A read-only connection to a local file does not go stale; checking each one out
            // ran (and re-parsed) an empty statement on every read.
            .test_on_check_out(false)
            .connection_timeout(Duration::from_millis(READ_POOL_TIMEOUT_MS))
            .build(manager)?;

        let keys = Arc::new(keys);
        let stats = Arc::new(WriterStats::default());
        let (sender, receiver) = mpsc::sync_channel::<Msg>(WRITER_QUEUE_MAX);
        let writer_keys = Arc::clone(&keys);
        let writer_stats = Arc::clone(&stats);
        let events = Arc::new(crate::wakeup::Wakeup::default());
        let writer_events = Arc::clone(&events);
        // Beside the file a link leads to, where SQLite keeps it, not beside the link.
        let wal_path = crate::ops::beside(&options.path, "-wal");
        let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        let wal = writer::WalBound {
            path: wal_path,
            max_bytes: options.wal_max_bytes,
            frame_bytes: page_size.unsigned_abs() + 24,
            grow: options.grow_wal,
            beside_server: options
                .beside_server
                .then(|| crate::ops::lock_file_path(&options.path)),
        };
        conn.wal_hook(Some(writer::note_wal_pages));
        // A log restarted after a checkpoint is cut back to the bound, not left at its peak.
        conn.pragma_update(None, "journal_size_limit", options.wal_max_bytes as i64)?;
        let changes = options
            .track_changes
            .then(|| Arc::new(changes::ChangeLog::default()));
        if let Some(log) = &changes {
            changes::ChangeLog::hook(log, &conn)?;
        }
        let writer_changes = changes.clone();
        let busy_wait = options.busy_wait;
        let file = writer::FileInPlace::of(&options.path, &db_file)?;
        let writer_file = file.clone();
        let committing = Arc::new(std::sync::atomic::AtomicBool::new(false));
        writer::gate_commits(&conn, &committing)?;
        let writer_thread = std::thread::Builder::new()
            .name("remit-writer".into())
            .spawn(move || {
                writer::Writer {
                    conn,
                    keys: &writer_keys,
                    audit_key: &audit_key,
                    stats: &writer_stats,
                    wal: &wal,
                    events: &writer_events,
                    changes: writer_changes.as_deref(),
                    committing: &committing,
                    busy_wait,
                    file: writer_file,
                }
                .run(&receiver)
            })
            .map_err(|e| Error::internal(format!("cannot start the writer thread: {e}")))?;
        let store = Store {
            sender: Mutex::new(Some(sender)),
            writer_thread: Mutex::new(Some(writer_thread)),
            checkpointer: Mutex::new(None),
            reads,
            keys,
            path: options.path.clone(),
            file,
            key_source,
            stats,
            events,
            changes,
            _db_file: db_file,
        };
        // Started last, into the store: should it fail, dropping the store stops the writer
        // and closes the connections before the file's descriptor.
        let checkpointer = checkpoint::start(
            &options.path,
            options.wal_max_bytes,
            &store.stats,
            Arc::clone(&store._db_file),
        )?;
        if let Ok(mut slot) = store.checkpointer.lock() {
            *slot = Some(checkpointer);
        }
        Ok(store)
    }

    /// Runs `f` as one writer command and returns its result once the batch holding it has
    /// committed. On an error of its own its changes are rolled back and the rest of the batch
    /// stands. `f` may run a second time, its first run rolled back: when a command of its
    /// batch outgrew the savepoint journal's piece of 4 MiB, the whole batch runs again with
    /// its journals in memory (`Writer::run_batch`). So it acts through its `WriteCtx` and
    /// keeps what it does outside the database for after `write` returns.
    pub fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(&WriteCtx<'_>) -> Result<T> + Send + 'static,
    {
        self.write_job(f, false)
    }

    /// `write` for a command that may change many rows (a sweep, a purge, seeding): its batch
    /// keeps its savepoint journals in memory without a bound, since a journal past the
    /// build's piece of 4 MiB would fail the transaction (`.cargo/config.toml`). Slower per
    /// page journaled; every other command is expected to change a few rows.
    pub fn write_bulk<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(&WriteCtx<'_>) -> Result<T> + Send + 'static,
    {
        self.write_job(f, true)
    }

    fn write_job<T, F>(&self, f: F, bulk: bool) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(&WriteCtx<'_>) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = mpsc::sync_channel(1);
        let job: Box<dyn Command> = Box::new(Job {
            run: f,
            outcome: None,
            reply,
            bulk,
        });
        self.submit(job, &answer)
    }

    /// `write` for a command that does nothing but through its `WriteCtx` (no side effect of its
    /// own), so that it may run twice: the writer runs several of these under one savepoint,
    /// and if one of them fails after changing rows, undoes them all, runs those before it
    /// again, and the failed one in a savepoint of its own (`Writer::run_batch`).
    /// The answer is the same as `write`'s; the hot path (approvals) spends less per command.
    pub fn write_repeatable<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(&WriteCtx<'_>) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = mpsc::sync_channel(1);
        let job: Box<dyn Command> = Box::new(RepeatableJob {
            run: f,
            outcome: None,
            reply,
        });
        self.submit(job, &answer)
    }

    /// Queues a command for the writer and waits for its answer.
    fn submit<T>(&self, job: Box<dyn Command>, answer: &mpsc::Receiver<Result<T>>) -> Result<T> {
        let sender = match self.sender.lock() {
            Ok(guard) => guard.clone(),
            Err(_) => None,
        };
        let Some(sender) = sender else {
            return Err(Error::Busy);
        };
        self.stats.queue_depth.fetch_add(1, Ordering::Relaxed);
        if sender.send(Msg::Run(job)).is_err() {
            self.stats.queue_depth.fetch_sub(1, Ordering::Relaxed);
            return Err(Error::Busy);
        }
        answer.recv().unwrap_or(Err(Error::Busy))
    }

    /// Runs `f` on a pooled read-only connection. It sees the last committed state.
    pub fn read<T>(&self, f: impl FnOnce(&Connection, &Keys) -> Result<T>) -> Result<T> {
        let conn = self.reads.get()?;
        f(&conn, &self.keys)
    }

    /// A read-only connection of its own, opened like the pool's: for a reader that keeps one
    /// (replication), so that it never holds a pooled connection the HTTP workers need.
    pub fn reader(&self) -> Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        open::apply_pragmas(&conn, Synchronous::Full)?;
        conn.pragma_update(None, "query_only", "ON")?;
        Ok(conn)
    }

    /// Did the last batch fail to be written (a full disk, an I/O error)? Until one commits.
    pub fn writes_failing(&self) -> bool {
        self.stats.writes_failing.load(Ordering::Relaxed)
    }

    /// Are writes refused for another process's write lock (`WriterStats::write_locked`)?
    pub fn write_locked(&self) -> bool {
        self.stats.write_locked()
    }

    /// The database file was deleted, moved or replaced while this store had it open: writes
    /// are refused (`writer::FileInPlace`).
    pub fn file_missing(&self) -> bool {
        !self.file.is_here()
    }

    /// Can a read connection run a statement? (`GET /health`.)
    pub fn ping(&self) -> bool {
        self.read(|conn, _| Ok(conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
            .is_ok()
    }

    /// Rung after every commit that emitted an event.
    pub fn events(&self) -> &Arc<crate::wakeup::Wakeup> {
        &self.events
    }

    /// The rows each of the writer's transactions changed, if this store keeps that.
    pub fn change_log(&self) -> Option<&changes::ChangeLog> {
        self.changes.as_deref()
    }

    /// The keys of this database.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the master key came from.
    pub fn key_source(&self) -> &KeySource {
        &self.key_source
    }

    /// Commits and answers everything queued, stops the writer and the checkpointer, and
    /// checkpoints the WAL into the file. Later writes get `Busy`.
    pub fn close(&self) {
        // The checkpointer first: while it copies it holds the checkpoint lock, and the
        // writer's last checkpoint, which empties the log, would find it taken and leave the
        // log whole for the next start to copy while it serves (250 ms at a million escrows).
        if let Some((stop, handle)) = self.checkpointer.lock().ok().and_then(|mut c| c.take()) {
            let _ = stop.send(());
            handle.thread().unpark();
            let _ = handle.join();
        }
        let sender = self.sender.lock().ok().and_then(|mut s| s.take());
        if let Some(sender) = sender {
            let _ = sender.send(Msg::Stop);
        }
        if let Some(handle) = self.writer_thread.lock().ok().and_then(|mut h| h.take()) {
            let _ = handle.join();
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}

/// The space this process may still use on the file system that holds `db` (a regular user's
/// share: the blocks root keeps for itself are not counted), the file's own when `db` is a link
/// to another; none when it cannot be asked.
pub fn disk_free_bytes(db: &std::path::Path) -> Option<u64> {
    let real = std::fs::canonicalize(db).ok();
    let db = real.as_deref().unwrap_or(db);
    let dir = match db.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => std::path::Path::new("."),
    };
    let stat = rustix::fs::statvfs(dir).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// The steps of SQLite's plan for `sql` (`EXPLAIN QUERY PLAN`'s detail column), its parameters
/// unbound as when the server prepares it, for the tests that hold a query to its index.
#[cfg(test)]
pub fn unbound_query_plan(conn: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let mut rows = stmt.raw_query();
    let mut plan = Vec::new();
    while let Some(r) = rows.next().unwrap() {
        plan.push(r.get(3).unwrap());
    }
    plan
}

/// The plan SQLite makes for `sql` with `params` (one line per step).
#[cfg(test)]
pub fn query_plan<P: rusqlite::Params>(conn: &Connection, sql: &str, params: P) -> Vec<String> {
    all_rows(conn, &format!("EXPLAIN QUERY PLAN {sql}"), params, |r| {
        Ok(r.get(3)?)
    })
    .unwrap()
}

/// Runs a (cached) query whose text names its parameters (`:name`), each bound from `named`,
/// which may hold more than the text names (a list's query holds only the conditions that
/// apply, and names only their values); and reads every row with `from_row`. A parameter named
/// in the text with no value in `named` is an error, never a silent `NULL`.
pub fn named_rows<T>(
    conn: &Connection,
    sql: &str,
    named: &[(&str, &dyn rusqlite::ToSql)],
    from_row: impl FnMut(&rusqlite::Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let names: Vec<String> = (1..=stmt.parameter_count())
        .map(|i| stmt.parameter_name(i).unwrap_or_default().to_string())
        .collect();
    for (i, name) in names.iter().enumerate() {
        let (_, value) = named
            .iter()
            .find(|(n, _)| n == name)
            .ok_or_else(|| Error::internal(format!("no value for the parameter {name:?}")))?;
        stmt.raw_bind_parameter(i + 1, value)?;
    }
    read_all(stmt.raw_query(), from_row)
}

/// Every row of `rows`, read with `from_row`.
fn read_all<T>(
    mut rows: rusqlite::Rows<'_>,
    mut from_row: impl FnMut(&rusqlite::Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(from_row(r)?);
    }
    Ok(out)
}

/// Runs a (cached) query and reads every row with `from_row`.
pub fn all_rows<T, P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    from_row: impl FnMut(&rusqlite::Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = read_all(stmt.query(params)?, from_row);
    rows
}

/// Is this error a violation of the named CHECK constraint?
pub fn is_check_violation(e: &rusqlite::Error, constraint: &str) -> bool {
    match e {
        rusqlite::Error::SqliteFailure(err, Some(msg)) => {
            err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_CHECK && msg.contains(constraint)
        }
        _ => false,
    }
}

/// Is this error a UNIQUE or PRIMARY KEY violation?
pub fn is_unique_violation(e: &rusqlite::Error) -> bool {
    match e {
        rusqlite::Error::SqliteFailure(err, _) => {
            err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        }
        _ => false,
    }
}
