//! The database: opening and migrating the file, the single writer thread with group commit,
//! the pool of read-only connections, and the background checkpointer.
//!
//! Every state change is a command run by the writer thread, which owns the only read-write
//! connection. It takes the commands waiting in its queue (up to `WRITER_BATCH_MAX`), opens one
//! `BEGIN IMMEDIATE` transaction, runs each command in its own `SAVEPOINT` (rolled back alone on
//! its own error), commits once, and only then answers every caller.

use crate::audit::AuditKey;
use crate::crypto::{KeySource, Keys, MasterKey};
use crate::error::{Error, Result};
use crate::limits::{
    BUSY_TIMEOUT_MS, CHECKPOINT_INTERVAL_MS, READ_POOL_TIMEOUT_MS, STATEMENT_CACHE_CAPACITY,
    WRITER_BATCH_MAX, WRITER_CACHE_KIB, WRITER_QUEUE_MAX,
};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The embedded migrations (`schema/NNNN_name.sql`).
#[derive(rust_embed::RustEmbed)]
#[folder = "schema/"]
struct Migrations;

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
    /// Create the database (and key file) if missing; `remit check` never does.
    pub create: bool,
    /// Durability of commits.
    pub synchronous: Synchronous,
    /// Read-only connections in the pool.
    pub read_pool_size: u32,
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
        }
    }
}

/// What a writer command sees: the connection inside the batch's transaction (and the
/// command's savepoint), the keys, and the time of the batch.
pub struct WriteCtx<'a> {
    /// The writer's connection; every statement runs inside the command's savepoint.
    pub conn: &'a Connection,
    /// Encryption and blind-index keys.
    pub keys: &'a Keys,
    /// The current key of the audit chain.
    pub audit_key: &'a AuditKey,
    /// Unix seconds at the start of the batch.
    pub now: i64,
}

trait Command: Send {
    /// Runs the command; true when it succeeded (its savepoint is then released).
    fn apply(&mut self, ctx: &WriteCtx<'_>) -> bool;
    /// Answers the caller once the batch's commit is known.
    fn answer(self: Box<Self>, commit: Result<()>);
}

struct Job<T, F> {
    run: Option<F>,
    outcome: Option<Result<T>>,
    reply: SyncSender<Result<T>>,
}

impl<T, F> Command for Job<T, F>
where
    T: Send,
    F: FnOnce(&WriteCtx<'_>) -> Result<T> + Send,
{
    fn apply(&mut self, ctx: &WriteCtx<'_>) -> bool {
        let Some(run) = self.run.take() else {
            return false;
        };
        let outcome = match catch_unwind(AssertUnwindSafe(|| run(ctx))) {
            Ok(outcome) => outcome,
            Err(_) => Err(Error::internal(
                "a writer command panicked; it was rolled back",
            )),
        };
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn answer(self: Box<Self>, commit: Result<()>) {
        let result = match (commit, self.outcome) {
            (Ok(()), Some(outcome)) => outcome,
            (Ok(()), None) => Err(Error::internal("writer command never ran")),
            // A failed command's own error says more than the batch's; a succeeded one was
            // rolled back with the batch, so it gets the commit error.
            (Err(_), Some(Err(own))) => Err(own),
            (Err(e), _) => Err(e),
        };
        let _ = self.reply.send(result);
    }
}

enum Msg {
    Run(Box<dyn Command>),
    Stop,
}

/// Counters of the writer, for `/metrics`.
#[derive(Default, Debug)]
pub struct WriterStats {
    /// Commands queued and not yet answered.
    pub queue_depth: AtomicUsize,
    /// Batches committed (or failed).
    pub batches: AtomicU64,
    /// Commands run.
    pub commands: AtomicU64,
    /// Sum of commit latencies in microseconds.
    pub commit_micros_total: AtomicU64,
    /// Histogram of batch sizes: 1, 2–4, 5–16, 17–64, 65–256.
    pub batch_size_buckets: [AtomicU64; 5],
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
}

fn apply_pragmas(conn: &Connection, synchronous: Synchronous) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))?;
    // Every statement of a command path stays prepared; re-parsing SQL showed up in profiles.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", synchronous.pragma())?;
    Ok(())
}

/// Opens a read-write connection with the pragmas of every remit connection.
pub fn open_connection(path: &Path, synchronous: Synchronous) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    apply_pragmas(&conn, synchronous)?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::internal(format!(
            "could not switch the database to WAL (got {mode})"
        )));
    }
    Ok(conn)
}

/// The latest schema version this binary knows.
pub fn latest_schema_version() -> u32 {
    migration_files().last().map_or(0, |(v, _)| *v)
}

fn migration_files() -> Vec<(u32, String)> {
    let mut files: Vec<(u32, String)> = Migrations::iter()
        .filter_map(|name| {
            let version = name.split('_').next()?.parse::<u32>().ok()?;
            Some((version, name.to_string()))
        })
        .collect();
    files.sort();
    files
}

/// Applies every migration newer than the database's `user_version`, each in its own
/// transaction. Returns the versions applied.
pub fn migrate(conn: &mut Connection) -> Result<Vec<u32>> {
    let current: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let latest = latest_schema_version();
    if current > latest {
        return Err(Error::internal(format!(
            "the database has schema version {current}, newer than this remit knows ({latest}); upgrade remit"
        )));
    }
    let mut applied = Vec::new();
    for (version, name) in migration_files() {
        if version <= current {
            continue;
        }
        let file = Migrations::get(&name)
            .ok_or_else(|| Error::internal(format!("missing migration {name}")))?;
        let sql = std::str::from_utf8(&file.data)
            .map_err(|_| Error::internal(format!("migration {name} is not UTF-8")))?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)
            .map_err(|e| Error::internal(format!("migration {name}: {e}")))?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        applied.push(version);
    }
    Ok(applied)
}

/// Refuses a key that does not match the database, before anything is written.
fn check_key(conn: &Connection, keys: &Keys) -> Result<bool> {
    let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version == 0 {
        return Ok(false);
    }
    let stored: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'key_check'", [], |r| {
            r.get(0)
        })
        .optional()?;
    match stored {
        Some(check)
            if crate::crypto::constant_time_eq(check.as_bytes(), keys.key_check.as_bytes()) =>
        {
            Ok(true)
        }
        Some(_) => Err(Error::WrongKey),
        None => Ok(false),
    }
}

/// Opens a database read-only for `remit check`: never creates, migrates or writes anything,
/// and refuses a file that is not a remit database of this version or a key that does not
/// match.
pub fn open_for_check(path: &Path, key_hex: Option<&str>) -> Result<(Connection, Keys)> {
    if !path.exists() {
        return Err(Error::internal(format!(
            "no database at {}",
            path.display()
        )));
    }
    let (master, _) = crate::crypto::load_master_key(path, key_hex, false)?;
    let keys = Keys::new(&master);
    // With no WAL beside it (a server stopped cleanly, a copied file), even a read-only open
    // would create `-wal` and `-shm`: open it as immutable instead, which writes nothing.
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = if Path::new(&wal).exists() {
        Connection::open_with_flags(path, flags)?
    } else {
        let text = path
            .to_str()
            .ok_or_else(|| Error::internal("the database path is not UTF-8"))?;
        let escaped = text
            .replace('%', "%25")
            .replace('?', "%3f")
            .replace('#', "%23");
        Connection::open_with_flags(format!("file:{escaped}?immutable=1"), flags)?
    };
    conn.busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))?;
    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| {
            Error::internal(format!(
                "{} cannot be read as a database: {e}",
                path.display()
            ))
        })?;
    let latest = latest_schema_version();
    if version == 0 {
        return Err(Error::internal(format!(
            "{} is not a remit database",
            path.display()
        )));
    }
    if version != latest {
        return Err(Error::internal(format!(
            "{} has schema version {version} and this remit knows {latest}: {}",
            path.display(),
            if version < latest {
                "start the server once to migrate it"
            } else {
                "upgrade remit"
            }
        )));
    }
    if !check_key(&conn, &keys)? {
        return Err(Error::internal(format!(
            "{} is not a remit database (it has no key check)",
            path.display()
        )));
    }
    Ok((conn, keys))
}

/// Opens (and with `create`, creates) the database: checks the key, migrates, bootstraps the
/// key check and the audit chain's first key, then starts the writer and the checkpointer.
pub fn open(options: &OpenOptions) -> Result<Store> {
    if !options.create && !options.path.exists() {
        return Err(Error::internal(format!(
            "no database at {}",
            options.path.display()
        )));
    }
    let (master, key_source) =
        crate::crypto::load_master_key(&options.path, options.key_hex.as_deref(), options.create)?;
    open_with_key(options, &master, key_source)
}

/// `open` with a key already in hand (key rotation and tests).
pub fn open_with_key(
    options: &OpenOptions,
    master: &MasterKey,
    key_source: KeySource,
) -> Result<Store> {
    let keys = Keys::new(master);
    let mut conn = open_connection(&options.path, options.synchronous)?;
    let key_known = check_key(&conn, &keys)?;
    migrate(&mut conn)?;
    if !key_known {
        bootstrap_keys(&mut conn, &keys)?;
    }
    // Checkpoints run from their own connection, never inside a commit.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    // The writer touches the hot pages of every command; keep them in its own cache.
    conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
    let audit_key = crate::audit::current_key(&conn, &keys)?;

    let synchronous = options.synchronous;
    let manager = SqliteConnectionManager::file(&options.path)
        .with_flags(OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .with_init(move |c| {
            apply_pragmas(c, synchronous)?;
            c.pragma_update(None, "query_only", "ON")
        });
    let reads = r2d2::Pool::builder()
        .max_size(options.read_pool_size.max(1))
        .min_idle(Some(1))
        .connection_timeout(Duration::from_millis(READ_POOL_TIMEOUT_MS))
        .build(manager)?;

    let keys = Arc::new(keys);
    let stats = Arc::new(WriterStats::default());
    let (sender, receiver) = mpsc::sync_channel::<Msg>(WRITER_QUEUE_MAX);
    let writer_keys = Arc::clone(&keys);
    let writer_stats = Arc::clone(&stats);
    let writer_thread = std::thread::Builder::new()
        .name("remit-writer".into())
        .spawn(move || writer_loop(conn, &writer_keys, &audit_key, &receiver, &writer_stats))
        .map_err(|e| Error::internal(format!("cannot start the writer thread: {e}")))?;
    let checkpointer = start_checkpointer(&options.path)?;

    Ok(Store {
        sender: Mutex::new(Some(sender)),
        writer_thread: Mutex::new(Some(writer_thread)),
        checkpointer: Mutex::new(Some(checkpointer)),
        reads,
        keys,
        path: options.path.clone(),
        key_source,
        stats,
    })
}

fn bootstrap_keys(conn: &mut Connection, keys: &Keys) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let has_rows: bool = tx.query_row("SELECT EXISTS (SELECT 1 FROM users)", [], |r| r.get(0))?;
    if has_rows {
        // A database with data but no key check was not made by remit.
        return Err(Error::WrongKey);
    }
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('key_check', ?1), ('key_id', ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (&keys.key_check, &keys.key_id),
    )?;
    crate::audit::ensure_first_key(&tx, keys)?;
    tx.commit()?;
    Ok(())
}

fn writer_loop(
    mut conn: Connection,
    keys: &Keys,
    audit_key: &AuditKey,
    receiver: &Receiver<Msg>,
    stats: &WriterStats,
) {
    let mut batch: Vec<Box<dyn Command>> = Vec::with_capacity(WRITER_BATCH_MAX);
    let mut stopping = false;
    while !stopping {
        match receiver.recv() {
            Ok(Msg::Run(cmd)) => batch.push(cmd),
            Ok(Msg::Stop) | Err(_) => stopping = true,
        }
        // Take whatever else is waiting; on stop, drain the whole queue.
        while stopping || batch.len() < WRITER_BATCH_MAX {
            match receiver.try_recv() {
                Ok(Msg::Run(cmd)) => batch.push(cmd),
                Ok(Msg::Stop) => stopping = true,
                Err(_) => break,
            }
            if batch.len() >= WRITER_BATCH_MAX {
                run_batch(&mut conn, keys, audit_key, &mut batch, stats);
            }
        }
        if !batch.is_empty() {
            run_batch(&mut conn, keys, audit_key, &mut batch, stats);
        }
    }
    // Last checkpoint so that the file alone holds everything.
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        log::warn!("final checkpoint failed: {e}");
    }
}

fn run_batch(
    conn: &mut Connection,
    keys: &Keys,
    audit_key: &AuditKey,
    batch: &mut Vec<Box<dyn Command>>,
    stats: &WriterStats,
) {
    let size = batch.len();
    let bucket = match size {
        1 => 0,
        2..=4 => 1,
        5..=16 => 2,
        17..=64 => 3,
        _ => 4,
    };
    stats.batch_size_buckets[bucket].fetch_add(1, Ordering::Relaxed);
    stats.batches.fetch_add(1, Ordering::Relaxed);
    stats.commands.fetch_add(size as u64, Ordering::Relaxed);

    let commit = (|| -> Result<()> {
        conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        let ctx = WriteCtx {
            conn,
            keys,
            audit_key,
            now: crate::time::now_unix(),
        };
        for cmd in batch.iter_mut() {
            conn.prepare_cached("SAVEPOINT command")?.execute([])?;
            let logged = crate::audit::pending_log_len();
            if !cmd.apply(&ctx) {
                conn.prepare_cached("ROLLBACK TO command")?.execute([])?;
                crate::audit::discard_pending_log(logged);
            }
            conn.prepare_cached("RELEASE command")?.execute([])?;
        }
        let started = Instant::now();
        conn.prepare_cached("COMMIT")?.execute([])?;
        stats
            .commit_micros_total
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        Ok(())
    })();
    match &commit {
        Ok(()) => crate::audit::flush_pending_log(),
        Err(e) => {
            crate::audit::discard_pending_log(0);
            log::error!("writer batch of {size} failed and was rolled back: {e:?}");
            if !conn.is_autocommit() {
                if let Err(rollback) = conn.execute_batch("ROLLBACK") {
                    log::error!("rollback after a failed batch failed too: {rollback}");
                }
            }
        }
    }
    for cmd in batch.drain(..) {
        cmd.answer(commit.clone());
    }
    stats.queue_depth.fetch_sub(size, Ordering::Relaxed);
}

fn start_checkpointer(path: &Path) -> Result<(SyncSender<()>, JoinHandle<()>)> {
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

impl Store {
    /// Runs `f` as one writer command and returns its result once the batch holding it has
    /// committed. On any error its changes are rolled back and nothing else in the batch is
    /// touched.
    pub fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&WriteCtx<'_>) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = mpsc::sync_channel(1);
        let job: Box<dyn Command> = Box::new(Job {
            run: Some(f),
            outcome: None,
            reply,
        });
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
        let sender = self.sender.lock().ok().and_then(|mut s| s.take());
        if let Some(sender) = sender {
            let _ = sender.send(Msg::Stop);
        }
        if let Some(handle) = self.writer_thread.lock().ok().and_then(|mut h| h.take()) {
            let _ = handle.join();
        }
        if let Some((stop, handle)) = self.checkpointer.lock().ok().and_then(|mut c| c.take()) {
            let _ = stop.send(());
            let _ = handle.join();
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
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
