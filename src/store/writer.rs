//! The single writer: the thread that owns the only read-write connection. It takes the commands
//! waiting in its queue (up to `WRITER_BATCH_MAX`), opens one `BEGIN IMMEDIATE` transaction,
//! runs each command in its own savepoint (rolled back alone on its own error), commits once,
//! and only then writes the log lines of what committed and has every caller answered: by a
//! thread of its own (`remit-answers`), so that the writer goes on to its next batch while the
//! callers are woken.

use super::changes::ChangeLog;
use crate::audit::AuditKey;
use crate::crypto::Keys;
use crate::error::{Error, Result};
use crate::limits::{WRITER_BATCH_MAX, WRITER_RUN_MAX};
use crate::wakeup::Wakeup;
use rusqlite::Connection;
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender};
use std::time::Instant;

/// A log line that describes a change: written only once the change has committed, so the log
/// never tells of a change that was rolled back.
struct PendingLine {
    level: log::Level,
    target: &'static str,
    text: String,
}

/// What a writer command sees: the connection inside the batch's transaction (and the command's
/// savepoint), the keys, the time of the batch, and the audit log.
pub struct WriteCtx<'a> {
    /// The writer's connection; every statement runs inside the command's savepoint.
    pub conn: &'a Connection,
    /// Encryption and blind-index keys.
    pub keys: &'a Keys,
    /// Unix seconds at the start of the batch.
    pub now: i64,
    audit_key: &'a AuditKey,
    pending: RefCell<Vec<PendingLine>>,
    broken: Cell<bool>,
    /// An audit line was appended in this batch: the record of the newest line is written
    /// before the commit.
    audited: Cell<bool>,
    /// The newest audit line (sequence number, MAC) once read in this batch, kept so that
    /// each line does not read the one before; restored when a savepoint rolls back.
    audit_head: Cell<Option<(i64, [u8; 32])>>,
    /// An event was emitted in this batch: the outbox's readers are woken after the commit.
    emitted: Cell<bool>,
    /// `now` as RFC 3339, made once per batch.
    at: std::cell::OnceCell<String>,
    /// The user whose request this command is, and the prefix of the token they signed in
    /// with (`service::still_signed_in`): their audit lines name it.
    signed_in: RefCell<Option<(String, String)>>,
}

/// An audit line's details: as its caller gave them, or with the token its user acted with
/// (`WriteCtx::audit`); either is written as its own JSON.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Details<'d, T: serde::Serialize> {
    AsGiven(&'d T),
    Named(serde_json::Value),
}

impl<'a> WriteCtx<'a> {
    fn new(conn: &'a Connection, keys: &'a Keys, audit_key: &'a AuditKey, now: i64) -> Self {
        WriteCtx {
            conn,
            keys,
            now,
            audit_key,
            pending: RefCell::new(Vec::new()),
            broken: Cell::new(false),
            audited: Cell::new(false),
            audit_head: Cell::new(None),
            emitted: Cell::new(false),
            at: std::cell::OnceCell::new(),
            signed_in: RefCell::new(None),
        }
    }

    /// Runs `f` as the command of `who` (user id, token prefix), whose audit lines then name
    /// the token (`audit`); `None`: of no token (the system, the command line).
    pub fn as_signed_in<T>(
        &self,
        who: Option<(String, String)>,
        f: impl FnOnce(&Self) -> Result<T>,
    ) -> Result<T> {
        /// Puts back who was signed in before, also when `f` panics (the writer catches a
        /// command's panic and goes on with the batch's others).
        struct Restore<'c, 'a>(&'c WriteCtx<'a>, Option<(String, String)>);
        impl Drop for Restore<'_, '_> {
            fn drop(&mut self) {
                self.0.signed_in.replace(self.1.take());
            }
        }
        let _restore = Restore(self, self.signed_in.replace(who));
        f(self)
    }

    /// The batch's time as RFC 3339.
    pub fn at(&self) -> String {
        self.at
            .get_or_init(|| crate::time::rfc3339(self.now))
            .clone()
    }

    /// Appends a line to the audit chain (and, once it commits, to the log). `details` must
    /// hold no PII.
    pub fn audit(
        &self,
        actor: &str,
        action: &str,
        entity: &str,
        details: &impl serde::Serialize,
    ) -> Result<()> {
        let head = match self.audit_head.get() {
            Some(head) => head,
            None => crate::audit::last_line(self.conn)?,
        };
        // A user's line names the token they acted with (its prefix, as `DELETE /tokens/:prefix`
        // and `token.issued` name it): an admin can issue a token for any user, and a line
        // by that user's id alone did not tell their own act from one by the token the admin
        // gave themselves (until 2026-12-07).
        // Only such a line goes through a `Value` to take the field; the others (the system's)
        // are written from their details as they are.
        let details = match self.signed_in.borrow().as_ref() {
            Some((user, prefix)) if user == actor => {
                let mut named = serde_json::to_value(details).map_err(Error::internal)?;
                if let Some(fields) = named.as_object_mut() {
                    fields.insert("token".into(), prefix.clone().into());
                }
                Details::Named(named)
            }
            _ => Details::AsGiven(details),
        };
        let line = crate::audit::append_line(
            self.conn,
            self.audit_key,
            self.now,
            &head,
            actor,
            action,
            entity,
            &details,
        )?;
        self.audit_head.set(Some(line));
        self.audited.set(true);
        self.log_after_commit(
            log::Level::Info,
            "remit::audit",
            format!("{action} {entity} by {actor}"),
        );
        Ok(())
    }

    /// Appends an event to the outbox (`crate::outbox`), in this command: it is undone with the
    /// command's savepoint exactly like an audit line, so it exists exactly when its change
    /// committed. `data` holds ids, states and amounts, never PII.
    pub fn emit(
        &self,
        kind: crate::domain::EventType,
        data: impl serde::Serialize,
    ) -> Result<crate::domain::EventId> {
        let id = crate::outbox::append(self.conn, &self.at(), kind, &data)?;
        self.emitted.set(true);
        Ok(id)
    }

    /// Logs a warning about a change once that change has committed (never if it rolls back).
    pub fn warn_after_commit(&self, text: String) {
        self.log_after_commit(log::Level::Warn, "remit", text);
    }

    /// Logs a line at info level once the command has committed (never if it rolls back).
    pub fn info_after_commit(&self, text: String) {
        self.log_after_commit(log::Level::Info, "remit", text);
    }

    fn log_after_commit(&self, level: log::Level, target: &'static str, text: String) {
        self.pending.borrow_mut().push(PendingLine {
            level,
            target,
            text,
        });
    }

    /// Runs `f` in a savepoint of its own: if it fails, its changes (and the log lines it
    /// wrote) are undone and the error returned, while the rest of the transaction stands.
    pub fn savepoint<T>(&self, f: impl FnOnce(&Self) -> Result<T>) -> Result<T> {
        self.exec("SAVEPOINT command")?;
        let mark = self.mark();
        let result = f(self);
        if result.is_err() {
            self.exec("ROLLBACK TO command")?;
            self.restore(&mark);
        }
        self.exec("RELEASE command")?;
        result
    }

    /// Where the batch stands: rows changed so far, and what is kept beside the database.
    fn mark(&self) -> Mark {
        Mark {
            changes: self.conn.total_changes(),
            logged: self.pending.borrow().len(),
            head: self.audit_head.get(),
            emitted: self.emitted.get(),
        }
    }

    /// Forgets what was kept beside the database since `mark` (the database is rolled back by
    /// the caller, or was not changed).
    fn restore(&self, mark: &Mark) {
        self.pending.borrow_mut().truncate(mark.logged);
        self.audit_head.set(mark.head);
        self.emitted.set(mark.emitted);
    }

    /// Runs one of the savepoint statements; if one fails, the transaction's state is unknown and
    /// the whole batch must fail.
    fn exec(&self, sql: &str) -> Result<()> {
        let done = self
            .conn
            .prepare_cached(sql)
            .and_then(|mut stmt| stmt.execute([]));
        if let Err(e) = done {
            self.broken.set(true);
            return Err(e.into());
        }
        Ok(())
    }

    fn flush_log(self) {
        for line in self.pending.into_inner() {
            log::log!(target: line.target, line.level, "{}", line.text);
        }
    }
}

/// A point in a batch to come back to (`WriteCtx::mark`).
struct Mark {
    /// SQLite's count of rows changed by the connection's statements that completed.
    changes: u64,
    logged: usize,
    head: Option<(i64, [u8; 32])>,
    emitted: bool,
}

/// A unit of work for the writer.
pub(super) trait Command: Send {
    /// Runs the command inside its savepoint; an error rolls it back.
    fn apply(&mut self, ctx: &WriteCtx<'_>) -> Result<()>;
    /// Answers the caller once the batch's commit is known.
    fn answer(self: Box<Self>, commit: Result<()>);
    /// May the command run again after its first run was rolled back (see `Writer::run_batch`)?
    fn repeatable(&self) -> bool {
        false
    }
    /// May the command journal more than the build's piece of 4 MiB (`Store::write_bulk`)?
    fn bulk(&self) -> bool {
        false
    }
}

/// Runs a command's closure, a panic turned into an error.
fn run_caught<T>(run: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(outcome) => outcome,
        Err(_) => Err(Error::internal(
            "a writer command panicked; it was rolled back",
        )),
    }
}

/// The answer to a command: its own outcome once the batch committed; otherwise its own error,
/// or the commit's.
fn answer_of<T>(commit: Result<()>, outcome: Option<Result<T>>) -> Result<T> {
    match (commit, outcome) {
        (Ok(()), Some(outcome)) => outcome,
        (Ok(()), None) => Err(Error::internal("writer command never ran")),
        // A failed command's own error says more than the batch's; a succeeded one was
        // rolled back with the batch, so it gets the commit error.
        (Err(_), Some(Err(own))) => Err(own),
        (Err(e), _) => Err(e),
    }
}

/// Keeps a command's outcome for its answer and returns its status, for the savepoint around it.
fn keep<T>(slot: &mut Option<Result<T>>, outcome: Result<T>) -> Result<()> {
    let status = match &outcome {
        Ok(_) => Ok(()),
        Err(e) => Err(e.clone()),
    };
    *slot = Some(outcome);
    status
}

/// A closure and the channel its caller waits on.
pub(super) struct Job<T, F> {
    pub(super) run: F,
    pub(super) outcome: Option<Result<T>>,
    pub(super) reply: SyncSender<Result<T>>,
    /// Submitted with `Store::write_bulk`.
    pub(super) bulk: bool,
}

impl<T, F> Command for Job<T, F>
where
    T: Send,
    F: Fn(&WriteCtx<'_>) -> Result<T> + Send,
{
    fn apply(&mut self, ctx: &WriteCtx<'_>) -> Result<()> {
        keep(&mut self.outcome, run_caught(|| (self.run)(ctx)))
    }

    fn answer(self: Box<Self>, commit: Result<()>) {
        let _ = self.reply.send(answer_of(commit, self.outcome));
    }

    fn bulk(&self) -> bool {
        self.bulk
    }
}

/// A command whose closure may run twice in a batch, its first run rolled back: one that does
/// nothing but through its `WriteCtx` (an approval). Runs of them share one savepoint.
pub(super) struct RepeatableJob<T, F> {
    pub(super) run: F,
    pub(super) outcome: Option<Result<T>>,
    pub(super) reply: SyncSender<Result<T>>,
}

impl<T, F> Command for RepeatableJob<T, F>
where
    T: Send,
    F: Fn(&WriteCtx<'_>) -> Result<T> + Send,
{
    fn apply(&mut self, ctx: &WriteCtx<'_>) -> Result<()> {
        keep(&mut self.outcome, run_caught(|| (self.run)(ctx)))
    }

    fn answer(self: Box<Self>, commit: Result<()>) {
        let _ = self.reply.send(answer_of(commit, self.outcome));
    }

    fn repeatable(&self) -> bool {
        true
    }
}

/// What the writer's queue carries.
pub(super) enum Msg {
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
    /// Runs of repeatable commands that shared a savepoint and were undone and run again
    /// because one of them failed after changing rows.
    pub shared_savepoints_undone: AtomicU64,
    /// Batches rolled back and run again with their journals in memory because SQLite could
    /// not write: a command outgrew the savepoint journal's piece of 4 MiB, or the disk is full.
    pub journals_outgrown: AtomicU64,
    /// Times the WAL neared its bound and the writer checkpointed and restarted it.
    pub wal_resets: AtomicU64,
    /// Times it tried and could not (a reader or a checkpoint held the log); it tries again
    /// after the next batch.
    pub wal_reset_failures: AtomicU64,
    /// Sum of the time those checkpoints and attempts took, in microseconds.
    pub wal_reset_micros_total: AtomicU64,
    /// Longest of them, in microseconds.
    pub wal_reset_micros_max: AtomicU64,
    /// Largest WAL seen after a commit, in bytes.
    pub wal_peak_bytes: AtomicU64,
    /// The log's frames since it last restarted, in bytes (its file is not cut when it
    /// restarts, so its size says how far it once went, not how much it holds).
    pub wal_in_use_bytes: AtomicU64,
    /// The background checkpointer is copying the log into the database file.
    pub checkpoint_copying: AtomicBool,
    /// How many of the log's frames the background checkpointer's last copy left copied (0
    /// once the writer restarts the log). A hint for when to restart: a stale one makes a
    /// restart copy more, never less.
    pub checkpoint_copied_frames: AtomicU64,
    /// The writer asks the background checkpointer to copy now (`WalBound::enforce`).
    pub checkpoint_wanted: AtomicBool,
    /// The background checkpointer's thread, to wake it.
    pub checkpointer: std::sync::OnceLock<std::thread::Thread>,
    /// A batch could not be written (a full disk, a file grown past what the process may write,
    /// an I/O error), or the checkpointer could not copy the log into a full disk: `/health`
    /// says so until a batch commits `WRITES_BACK_AFTER_MS` after the last such failure (on a disk
    /// just full, SQLite reuses the log's space, so that some writes pass among those that fail:
    /// said as recovered at each, `/health` and the log flapped every second).
    pub writes_failing: AtomicBool,
    /// When the last write failed (`monotonic_ms`: a clock set back must not hold `/health`).
    pub last_write_failure_ms: std::sync::atomic::AtomicI64,
    /// The database file is no longer at its path (`FileInPlace`): writes are refused.
    pub file_missing: AtomicBool,
    /// The last batch gave up waiting for another process's write lock (a `sqlite3` shell left
    /// in a transaction, a command of another server), and none has committed since: every
    /// write is answered `503 busy` while reads go on. `/health` says so (`write_locked`).
    pub locked_out: AtomicBool,
    /// When that batch gave up (`monotonic_ms`).
    pub locked_out_at_ms: std::sync::atomic::AtomicI64,
}

/// The database file the store opened, known by its device and inode. Deleted, moved or
/// replaced while the server runs, its connections go on with the file they hold, and every
/// write would be acknowledged and lost with the server (a new start at the path finds
/// nothing): so the writer looks before each batch (one `stat`, two through a link), and
/// refuses writes while the file at the path is not this one.
#[derive(Clone)]
pub(super) struct FileInPlace {
    path: std::path::PathBuf,
    /// The path with its symbolic links resolved at the open: SQLite keeps the log beside
    /// that name, so the file must stay there too (a link pointed at the file moved elsewhere
    /// finds it, but a new start would look for its log beside the new name, without it).
    resolved: Option<std::path::PathBuf>,
    id: (u64, u64),
    /// The file as opened (whether any name is left to it: `is_deleted`).
    opened: std::sync::Arc<std::fs::File>,
    /// Its copy once it was deleted (`rescue`).
    rescue: std::sync::Arc<std::sync::Mutex<Rescue>>,
}

/// What became of the copy of a deleted ledger (`FileInPlace::rescue`).
#[derive(Clone, Copy, Default)]
enum Rescue {
    /// Not tried.
    #[default]
    NotTried,
    /// Tried, and no copy could be made (tried again 10 s later at most often).
    FailedAt(std::time::Instant),
    /// Made.
    Made,
}

impl FileInPlace {
    /// The file `opened`, which the store opened at `path`.
    pub(super) fn of(path: &std::path::Path, opened: &std::fs::File) -> Result<FileInPlace> {
        use std::os::unix::fs::MetadataExt;
        let cannot_read =
            |e: std::io::Error| Error::internal(format!("cannot read {}: {e}", path.display()));
        let meta = opened.metadata().map_err(cannot_read)?;
        let resolved = Some(crate::ops::real_path(path)).filter(|r| r.as_path() != path);
        Ok(FileInPlace {
            path: path.to_path_buf(),
            resolved,
            id: (meta.dev(), meta.ino()),
            opened: std::sync::Arc::new(opened.try_clone().map_err(cannot_read)?),
            rescue: std::sync::Arc::default(),
        })
    }

    /// Was the file opened deleted, no name left to it anywhere (not moved, not replaced by
    /// another: both leave it a name)? What this process holds open is then the ledger's only
    /// copy, its log's newest commits included.
    fn is_deleted(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        self.opened.metadata().is_ok_and(|m| m.nlink() == 0)
    }

    /// Copies the ledger, deleted while this process holds it, through the writer's connection
    /// (`conn`, which sees every commit) to a new file (0600) beside its path,
    /// `<path>.rescued-<unix time>` (or `…-2`, `…-3` when that name is taken), or else in the
    /// temporary directory: a stop folded the log into the deleted file, removed the log, and
    /// every commit since the last backup went with the process. Once it is made; a copy that
    /// failed (a full disk) is tried again at a refused write 10 s later, and at the stop
    /// (`at_stop`) whenever it failed. Said in the log, with what to do. `committing` lets the
    /// copy's own commit through the writer's gate.
    fn rescue(&self, conn: &Connection, committing: &AtomicBool, at_stop: bool) {
        let Ok(mut rescue) = self.rescue.lock() else {
            return;
        };
        match *rescue {
            Rescue::Made => return,
            Rescue::FailedAt(at)
                if !at_stop && at.elapsed() < std::time::Duration::from_secs(10) =>
            {
                return
            }
            _ if !self.is_deleted() => return,
            _ => {}
        }
        let stamp = crate::time::now_unix();
        let name = self
            .path
            .file_name()
            .map_or_else(|| "remit.db".into(), |n| n.to_string_lossy().into_owned());
        let places = ["", "-2", "-3"]
            .iter()
            .map(|n| crate::ops::beside(&self.path, &format!(".rescued-{stamp}{n}")))
            .chain(std::iter::once(
                std::env::temp_dir().join(format!("{name}.rescued-{stamp}")),
            ));
        let mut failures = Vec::new();
        for to in places {
            // A name taken is someone's file: left as it is, the next one tried.
            if let Err(e) = crate::crypto::write_owner_only(&to, b"") {
                failures.push(format!("{}: {e}", to.display()));
                continue;
            }
            committing.store(true, Ordering::SeqCst);
            let copied = conn.execute("VACUUM INTO ?1", [to.to_string_lossy()]);
            committing.store(false, Ordering::SeqCst);
            match copied {
                Ok(_) => {
                    *rescue = Rescue::Made;
                    log::error!(
                        "the database file {} was deleted while this server held it: every commit it holds is copied to {}. Stop the server, move that copy to {} (the key file beside it is unchanged), check it (remit check) and start again",
                        self.path.display(),
                        to.display(),
                        self.path.display()
                    );
                    return;
                }
                Err(e) => {
                    // Made empty above, and this copy's: removed.
                    let _ = std::fs::remove_file(&to);
                    failures.push(format!("{}: {e}", to.display()));
                }
            }
        }
        *rescue = Rescue::FailedAt(std::time::Instant::now());
        let then = if at_stop {
            "the server stops without it: the commits since the last backup are lost with it; restore the last backup"
        } else {
            "it is tried again at a write 10 s from now and at the stop: make room (beside it, or in the temporary directory) before stopping the server"
        };
        log::error!(
            "the database file {} was deleted while this server held it, and no copy of it could be made ({}): {then}",
            self.path.display(),
            failures.join("; ")
        );
    }

    /// Is the file at the path still the one opened? (A path that cannot be looked at for
    /// another reason than its absence, a permission or a stale network handle, is not said
    /// to be missing.)
    pub(super) fn is_here(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        std::iter::once(&self.path)
            .chain(self.resolved.as_ref())
            .all(|path| match std::fs::metadata(path) {
                Ok(m) => (m.dev(), m.ino()) == self.id,
                Err(e) => e.kind() != std::io::ErrorKind::NotFound,
            })
    }

    /// `is_here`, said once when the file goes and when it is back (moved back: the same file).
    fn here(&self, stats: &WriterStats) -> bool {
        let here = self.is_here();
        let was_missing = stats.file_missing.swap(!here, Ordering::SeqCst);
        if !here && !was_missing {
            log::error!(
                "the database file {} was deleted, moved or replaced while this server runs: every write is refused from now on (it would be lost with the server), and /health says db \"missing\". Put the same file back at its path (a move back); a file deleted is copied beside its path by this server, as a next line says; otherwise stop the server and restore the last backup (`remit restore`)",
                self.path.display()
            );
        } else if here && was_missing {
            log::warn!(
                "the database file {} is back at its path: writes are taken again",
                self.path.display()
            );
        }
        here
    }
}

/// Milliseconds on a clock that only goes forward, from the first time it is read.
fn monotonic_ms() -> i64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    i64::try_from(
        START
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_millis(),
    )
    .unwrap_or(i64::MAX)
}

/// How long writes must go without a failure before the database is said to take them again.
pub const WRITES_BACK_AFTER_MS: i64 = 10_000;

impl WriterStats {
    /// A write failed (not for another process holding the file).
    pub fn write_failed(&self) {
        self.last_write_failure_ms
            .store(monotonic_ms(), Ordering::SeqCst);
        self.writes_failing.store(true, Ordering::SeqCst);
    }

    /// A batch committed: true when that ends a time of failing writes (none for
    /// `WRITES_BACK_AFTER_MS`), to be said once.
    fn write_succeeded(&self) -> bool {
        if !self.writes_failing.load(Ordering::SeqCst) {
            return false;
        }
        let last = self.last_write_failure_ms.load(Ordering::SeqCst);
        if monotonic_ms() - last < WRITES_BACK_AFTER_MS
            || !self.writes_failing.swap(false, Ordering::SeqCst)
        {
            return false;
        }
        // A failure said meanwhile (the checkpointer's, on its own thread) keeps it failing.
        if self.last_write_failure_ms.load(Ordering::SeqCst) != last {
            self.writes_failing.store(true, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Did a batch give up on another process's write lock within `WRITES_BACK_AFTER_MS`, none
    /// committing since? (Its time bounds it: with no write asked since, none is refused.)
    pub fn write_locked(&self) -> bool {
        self.locked_out.load(Ordering::SeqCst)
            && monotonic_ms() - self.locked_out_at_ms.load(Ordering::SeqCst) < WRITES_BACK_AFTER_MS
    }

    /// Asks the background checkpointer to copy the log now (it copies before its clock).
    pub fn wake_checkpointer(&self) {
        self.checkpoint_wanted.store(true, Ordering::Release);
        if let Some(checkpointer) = self.checkpointer.get() {
            checkpointer.unpark();
        }
    }
}

thread_local! {
    /// Pages in the writer's log since it restarted, as SQLite said after the last commit.
    static WAL_PAGES: Cell<u64> = const { Cell::new(0) };
}

/// SQLite's WAL hook on the writer's connection: after each commit, the pages in the log.
/// (It replaces the automatic checkpoint, which remit turns off anyway.)
pub(super) fn note_wal_pages(
    _: &rusqlite::hooks::Wal,
    pages: std::os::raw::c_int,
) -> rusqlite::Result<()> {
    WAL_PAGES.with(|p| p.set(pages.max(0) as u64));
    Ok(())
}

/// The bound on the write-ahead log: past `max_bytes` of frames after a commit, the writer
/// (between batches, holding no transaction) checkpoints it and restarts it from its start.
/// Readers only ever wait for no one; the writer waits for the readers still using the log
/// (they are short) and for the copy of the frames the background checkpointer has not copied
/// yet. The file is not cut: the next frames overwrite blocks the file system already holds
/// (cutting it to zero and growing it again cost the writer a block allocation per page);
/// `journal_size_limit` cuts it back to the bound if a last batch took it past.
pub(super) struct WalBound {
    /// The `-wal` file.
    pub path: std::path::PathBuf,
    /// Its largest size.
    pub max_bytes: u64,
    /// A frame's size in the log: a page and its 24-byte header.
    pub frame_bytes: u64,
    /// Grow the file before the first write (`grow`).
    pub grow: bool,
    /// A command's store: the lock file a server holds while it runs. At the stop, while a
    /// server holds it, the log is the server's and stays as it is: the command's last
    /// checkpoint (`TRUNCATE`) cut the server's grown log to nothing, so that its next
    /// frames each grew the file again, and held the server's writer while it copied.
    pub beside_server: Option<std::path::PathBuf>,
}

impl WalBound {
    /// How large `grow` makes the file: up to where the writer restarts the log whatever the
    /// checkpointer's progress (fifteen sixteenths of the bound), at most
    /// `WAL_GROWN_MAX_MIB`.
    fn grown_bytes(&self) -> u64 {
        (self.max_bytes - self.max_bytes / 16).min(crate::limits::WAL_GROWN_MAX_MIB << 20)
    }

    /// Before the writer's first batch, grows the log's file with zeros (and syncs it), as
    /// PostgreSQL makes its WAL segments (`wal_init_zero`). A frame written past the file's
    /// end costs the file system a block allocated and a page of its cache zeroed at each
    /// write: a server just started writes its first tens of MiB of log that way, and a
    /// million-escrow ledger, whose approvals each change pages of their own, spent an eighth
    /// of its writer's time zeroing pages and ran a quarter slower until the log first
    /// restarted (README, "The WAL's bound"). Afterwards the frames overwrite blocks the file
    /// holds.
    ///
    /// Only past the file's end, under the log's write lock (`BEGIN IMMEDIATE`): no frame can
    /// be there or be written meanwhile, by this process or another. Zeros are no frame: a log
    /// whose header or frames end in them is read to its last valid commit, as SQLite reads a
    /// log restarted over older frames. On any failure (a full disk) the file is cut back to
    /// its size before, and the server goes on without.
    fn grow_file(&self, conn: &Connection) {
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            log::debug!("the write-ahead log was not grown: {e}");
            return;
        }
        let grown = zeros_to(&self.path, self.grown_bytes());
        if let Err(e) = conn.execute_batch("ROLLBACK") {
            log::warn!("cannot end the transaction that grew the write-ahead log: {e}");
        }
        match grown {
            Ok(0) => {}
            Ok(bytes) => log::debug!("the write-ahead log's file grown by {} MiB", bytes >> 20),
            Err(e) => log::warn!(
                "cannot grow the write-ahead log's file ({}); the first writes extend it as they go",
                e
            ),
        }
    }

    /// Checkpoints the log and restarts it if it passed its bound.
    fn enforce(&self, conn: &Connection, stats: &WriterStats) {
        let size = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        stats.wal_peak_bytes.fetch_max(size, Ordering::Relaxed);
        let in_use = WAL_PAGES.with(Cell::get) * self.frame_bytes;
        stats.wal_in_use_bytes.store(in_use, Ordering::Relaxed);
        // From three quarters of the bound on, a batch that finds the background checkpointer
        // idle with more than a thirty-second of the bound left to copy wakes it to copy at
        // once, and from seven eighths on a batch that finds it idle with less restarts the
        // log: what the restart copies, it copies with the writer stopped. While the
        // checkpointer copies it holds the checkpoint lock, and a restart would fail at once
        // (SQLite does not wait for that lock). From fifteen sixteenths on (`hard`), the writer
        // waits for its copy to end and restarts whatever is left, so the batch after it, which
        // would cross the bound, writes into a restarted log: the log stays under the bound
        // unless one batch writes more than a sixteenth of it (4 MiB of the default 64), or a
        // reader holds the log longer than the wait.
        if in_use <= self.max_bytes - self.max_bytes / 4 {
            // The log restarted (by the writer, or by SQLite after the checkpointer's copy):
            // the restarts refused before are history.
            RESTART_FAILURES.with(|n| n.set(0));
            RESTART_RETRY_AT.with(|at| at.set(None));
            return;
        }
        let hard = self.max_bytes - self.max_bytes / 16;
        let copying = stats.checkpoint_copying.load(Ordering::Acquire);
        let copied = stats.checkpoint_copied_frames.load(Ordering::Acquire) * self.frame_bytes;
        let behind = in_use.saturating_sub(copied);
        let caught_up = behind <= self.max_bytes / 32;
        if in_use <= hard && (in_use <= self.max_bytes - self.max_bytes / 8 || !caught_up) {
            if !copying && !caught_up {
                stats.wake_checkpointer();
            }
            return;
        }
        // After restarts that failed one after another (a reader holding the log: a check or a
        // backup beside the server, for as long as it reads), the next is tried a little later,
        // up to a quarter of a second, and waits for readers briefly: each attempt stopped the
        // writer up to `WAL_RESET_WAIT_MS`, and tried after every batch they took two thirds
        // of its time while a check ran.
        if RESTART_RETRY_AT.with(|at| at.get().is_some_and(|at| Instant::now() < at)) {
            return;
        }
        let started = Instant::now();
        // The checkpointer's copy is waited for as long as ever; the readers, as `restart_wait`
        // says.
        let limit = std::time::Duration::from_millis(crate::limits::WAL_RESET_WAIT_MS);
        RESTART_LIMIT.with(|l| l.set(restart_wait(RESTART_FAILURES.with(Cell::get))));
        if copying {
            if in_use <= hard {
                return;
            }
            while stats.checkpoint_copying.load(Ordering::Acquire) && started.elapsed() < limit {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        }
        // RESTART: copy every frame, wait for the readers of the log, restart it. It holds the
        // log's write lock while it waits, so it waits briefly: a reader that needs a write of
        // its own to let go (another process opening the file) would otherwise stall it, and
        // every writer behind it, for the whole busy timeout. A log it could not restart is
        // tried again after the next batch.
        let waited_for_copy = started.elapsed();
        RESTART_STARTED.with(|s| s.set(Some(started)));
        let _ = conn.busy_handler(Some(wait_briefly));
        let done: rusqlite::Result<(i64, i64, i64)> =
            conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            });
        let _ = conn.busy_timeout(std::time::Duration::from_millis(
            crate::limits::BUSY_TIMEOUT_MS,
        ));
        let micros = started.elapsed().as_micros() as u64;
        if let Ok((0, _, _)) = done {
            stats.wal_resets.fetch_add(1, Ordering::Relaxed);
        } else {
            stats.wal_reset_failures.fetch_add(1, Ordering::Relaxed);
        }
        stats
            .wal_reset_micros_total
            .fetch_add(micros, Ordering::Relaxed);
        stats
            .wal_reset_micros_max
            .fetch_max(micros, Ordering::Relaxed);
        if let Ok((0, _, _)) = done {
            WAL_PAGES.with(|p| p.set(0));
            stats.wal_in_use_bytes.store(0, Ordering::Relaxed);
            stats.checkpoint_copied_frames.store(0, Ordering::Release);
        }
        let failed = RESTART_FAILURES.with(|n| {
            let failed = if matches!(done, Ok((0, _, _))) {
                0
            } else {
                n.get() + 1
            };
            n.set(failed);
            failed
        });
        RESTART_RETRY_AT
            .with(|at| at.set(restart_backoff(failed).map(|wait| Instant::now() + wait)));
        match done {
            Ok((0, _, _)) => log::debug!(
                "the WAL neared its bound of {} MiB ({} MiB, {} frames past the last copy, a copy {}running): checkpointed and restarted in {:.1} ms ({:.1} ms of it waiting for the copy)",
                self.max_bytes >> 20,
                in_use >> 20,
                behind / self.frame_bytes,
                if copying { "" } else { "not " },
                micros as f64 / 1e3,
                waited_for_copy.as_secs_f64() * 1e3
            ),
            // A command of a line or two beside a server (`token issue`, `backup`): the log
            // is the server's to keep under its bound, and the command stops before any
            // second try (it warned "trying again within a second" on the server's log).
            Ok(_) if self.beside_server.is_some() => log::debug!(
                "the WAL neared its bound of {} MiB ({} MiB) and could not be restarted: left to the server",
                self.max_bytes >> 20,
                in_use >> 20
            ),
            Ok(_) => RESTART_REFUSED_LOG.log(
                module_path!(),
                log::Level::Warn,
                format_args!(
                    "the WAL neared its bound of {} MiB ({} MiB) and could not be restarted (a reader or a checkpoint held it, {failed} time(s) in a row); trying again within a second",
                    self.max_bytes >> 20,
                    in_use >> 20
                ),
            ),
            Err(e) => RESTART_FAILED_LOG.log(
                module_path!(),
                log::Level::Warn,
                format_args!("WAL checkpoint failed: {e}"),
            ),
        }
    }
}

/// How long the writer waits before it tries again to restart the log after `failed`
/// restarts in a row: the next batch after one (a reader that let go meanwhile), then 50 ms,
/// doubling up to a quarter of a second (a window between two readers is still found soon).
fn restart_backoff(failed: u32) -> Option<std::time::Duration> {
    (failed >= 2).then(|| {
        std::time::Duration::from_millis(50u64 << (failed - 2).min(3))
            .min(std::time::Duration::from_millis(250))
    })
}

/// How long a restart waits for the readers of the log after `failed` restarts in a row:
/// `WAL_RESET_WAIT_MS` for the readers of a moment; 10 ms once a long one has held it twice,
/// but for every fourth attempt, which waits the whole time again (readers of tens of ms one
/// after another would otherwise refuse every 10 ms attempt for as long as they came).
fn restart_wait(failed: u32) -> std::time::Duration {
    std::time::Duration::from_millis(if failed >= 2 && !failed.is_multiple_of(4) {
        10
    } else {
        crate::limits::WAL_RESET_WAIT_MS
    })
}

/// The log's restart refused, or failing (a full disk), said at most once every 10 s with how
/// many times since: tried after each batch, it filled the log with a line per batch.
static RESTART_REFUSED_LOG: crate::error::Throttle =
    crate::error::Throttle::new(std::time::Duration::from_secs(10));
static RESTART_FAILED_LOG: crate::error::Throttle =
    crate::error::Throttle::new(std::time::Duration::from_secs(10));

/// Writes zeros from the end of the file at `path` to `target` bytes and syncs them; returns
/// how many. On a failure the file is cut back to its size before.
fn zeros_to(path: &std::path::Path, target: u64) -> std::io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new().write(true).open(path)?;
    let size = file.metadata()?.len();
    if size >= target {
        return Ok(0);
    }
    let zeros = vec![0u8; 1 << 20];
    let mut at = size;
    let written = loop {
        if at >= target {
            break file.sync_data();
        }
        let n = (target - at).min(zeros.len() as u64) as usize;
        if let Err(e) = file.write_all_at(&zeros[..n], at) {
            break Err(e);
        }
        at += n as u64;
    };
    if let Err(e) = written {
        let _ = file.set_len(size);
        return Err(e);
    }
    Ok(at - size)
}

thread_local! {
    /// When the writer's restart of the log began (`wait_briefly`'s clock).
    static RESTART_STARTED: Cell<Option<Instant>> = const { Cell::new(None) };
    /// Restarts of the log that failed in a row.
    static RESTART_FAILURES: Cell<u32> = const { Cell::new(0) };
    /// Not before then is a restart tried again (`restart_backoff`).
    static RESTART_RETRY_AT: Cell<Option<Instant>> = const { Cell::new(None) };
    /// How long the restart under way waits for readers (`restart_wait`).
    static RESTART_LIMIT: Cell<std::time::Duration> =
        const { Cell::new(std::time::Duration::from_millis(crate::limits::WAL_RESET_WAIT_MS)) };
}

/// The writer's busy handler while it restarts the log. What it waits for, readers still on
/// the log's older frames, let go within a millisecond or so, and SQLite's own handler sleeps
/// 1, 2, 5, 10, 15, 20, 25 ms… in turn, overshooting by as much: this one looks again every
/// 200 µs, until its wait (`restart_wait`) is over.
fn wait_briefly(_tries: i32) -> bool {
    let limit = RESTART_LIMIT.with(Cell::get);
    let waited = RESTART_STARTED.with(|s| s.get().map_or(limit, |t| t.elapsed()));
    if waited >= limit {
        return false;
    }
    std::thread::sleep(std::time::Duration::from_micros(200).min(limit - waited));
    true
}

/// The writer thread and what it works with.
pub(super) struct Writer<'a> {
    /// The read-write connection, the only one.
    pub conn: Connection,
    pub keys: &'a Keys,
    pub audit_key: &'a AuditKey,
    pub stats: &'a WriterStats,
    pub wal: &'a WalBound,
    /// Rung after a commit that emitted an event.
    pub events: &'a Wakeup,
    /// Told the rows each batch changed, when replication reads them.
    pub changes: Option<&'a ChangeLog>,
    /// Set only while the writer runs its `COMMIT`: the connection's commit hook
    /// (`gate_commits`) refuses every other commit.
    pub committing: &'a AtomicBool,
    /// How long a batch refused by another process's lock is run again (`OpenOptions`).
    pub busy_wait: std::time::Duration,
    /// The file opened, looked for at its path before each batch.
    pub file: FileInPlace,
}

/// Installs the hook that makes the writer's `COMMIT` the only way anything commits on its
/// connection: once SQLite has undone a batch's transaction by itself (a journal past its piece,
/// an I/O error), the statements a command runs next would each commit alone, outside the
/// batch, and be run again with it. Refused, they fail, and so does the batch.
pub(super) fn gate_commits(
    conn: &Connection,
    committing: &std::sync::Arc<AtomicBool>,
) -> Result<()> {
    let committing = std::sync::Arc::clone(committing);
    conn.commit_hook(Some(move || !committing.load(Ordering::SeqCst)))?;
    Ok(())
}

/// A batch's commands and the outcome of its commit, for the thread that answers them.
type Answered = (Vec<Box<dyn Command>>, Result<()>);

/// Answers the commands of a batch whose commit is known: each caller gets its own outcome
/// once the batch committed, else the batch's error. One channel send each, so one wake-up of
/// a waiting thread each: 5 – 9 % of the writer's CPU when it made them itself.
/// (The queue's depth is counted down first: a caller that has its answer is no longer in it.)
fn answer_all(batch: Vec<Box<dyn Command>>, commit: &Result<()>, stats: &WriterStats) {
    stats.queue_depth.fetch_sub(batch.len(), Ordering::Relaxed);
    for cmd in batch {
        cmd.answer(commit.clone());
    }
}

impl Writer<'_> {
    /// The writer thread's loop: batches until told to stop, then drains the queue, waits
    /// until every caller is answered, and checkpoints.
    pub(super) fn run(&self, receiver: &Receiver<Msg>) {
        if self.wal.grow {
            self.wal.grow_file(&self.conn);
        }
        let stats = self.stats;
        std::thread::scope(|scope| {
            let (sender, committed) = std::sync::mpsc::channel::<Answered>();
            let answerer = std::thread::Builder::new()
                .name("remit-answers".into())
                .spawn_scoped(scope, move || {
                    for (batch, commit) in committed {
                        answer_all(batch, &commit, stats);
                    }
                });
            let answers = match answerer {
                Ok(_) => Some(sender),
                Err(e) => {
                    log::warn!("cannot start the thread that answers the writer's callers ({e}): the writer answers them itself");
                    None
                }
            };
            self.batches(receiver, answers.as_ref());
            // Dropping `answers` ends the answerer once it has answered every batch; the
            // scope waits for it.
        });
        if let Some(lock) = &self.wal.beside_server {
            if crate::ops::held_by_another(lock) {
                log::debug!("a server runs on this ledger: its write-ahead log is left to it");
                return;
            }
        }
        // Deleted while it was held, and no write since to find it: copied before the
        // checkpoint folds the log into the deleted file and the log is removed.
        self.file.rescue(&self.conn, self.committing, true);
        // Last checkpoint so that the file alone holds everything.
        match self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get::<_, i64>(0))
        {
            Ok(0) => {}
            Ok(_) => log::info!(
                "the WAL could not be emptied at the stop (a reader or another process's checkpoint held it): the next start copies it"
            ),
            Err(e) => log::warn!("final checkpoint failed: {e}"),
        }
    }

    /// Batches until told to stop, then drains the queue.
    fn batches(&self, receiver: &Receiver<Msg>, answers: Option<&Sender<Answered>>) {
        let mut batch: Vec<Box<dyn Command>> = Vec::with_capacity(WRITER_BATCH_MAX);
        let mut stopping = false;
        // How the connection keeps its journals now (`None`: as it was opened).
        let mut journals = None;
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
                    self.run_batch(&mut batch, &mut journals, answers);
                    self.wal.enforce(&self.conn, self.stats);
                }
            }
            if !batch.is_empty() {
                self.run_batch(&mut batch, &mut journals, answers);
                self.wal.enforce(&self.conn, self.stats);
            }
        }
    }

    /// Runs one batch in one transaction. `journals` is how the connection keeps its savepoint
    /// journals (`Some(true)`: in memory without a bound), set for this batch first.
    /// `answers` takes the batch's commands to be answered (else the writer answers them).
    fn run_batch(
        &self,
        batch: &mut Vec<Box<dyn Command>>,
        journals: &mut Option<bool>,
        answers: Option<&Sender<Answered>>,
    ) {
        let Writer { conn, stats, .. } = self;
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

        // A journal past the build's piece of 4 MiB fails its transaction
        // (`.cargo/config.toml`). A command that may journal more is submitted as bulk (the
        // housekeeping sweeps: 500 expired requests at a million escrows journal some 2,500
        // pages): a batch holding one keeps its journals in memory without a bound, in
        // SQLite's smaller pieces. Every other command is expected to change a few rows, and
        // shared runs of repeatable ones stop at `WRITER_RUN_MAX`, well inside the piece. A
        // command that outgrows it all the same fails with `Error::Full`: then the batch is
        // rolled back whole and run again with its journals in memory (every command may run
        // twice, `Store::write`), so it costs time, never an answer.
        let mut unbounded = batch.iter().any(|cmd| cmd.bulk());
        // SQLite could not write with the journals in their piece: a command journaled more
        // than 4 MiB, or the disk is full. Which it was, the second run tells.
        let mut outgrown = false;
        let patience = std::time::Instant::now() + self.busy_wait;
        let commit = loop {
            if *journals != Some(unbounded) {
                match super::open::journals_in_memory(conn, unbounded) {
                    Ok(()) => *journals = Some(unbounded),
                    Err(e) => log::warn!("cannot set how the writer keeps its journals: {e}"),
                }
            }
            let commit = if self.file.here(stats) {
                self.attempt(batch, unbounded)
            } else {
                self.file.rescue(conn, self.committing, false);
                Err(Error::internal(
                    "the database file is no longer at its path",
                ))
            };
            if commit.is_err() && crate::error::take_full() && !unbounded {
                stats.journals_outgrown.fetch_add(1, Ordering::Relaxed);
                outgrown = true;
                unbounded = true;
                continue;
            }
            // Another process's writer (a server beside this command) held the file through
            // the busy timeout: rolled back whole, the batch runs again while patience lasts.
            if matches!(commit, Err(Error::Busy)) && std::time::Instant::now() < patience {
                std::thread::sleep(std::time::Duration::from_millis(
                    crate::limits::BUSY_RETRY_PAUSE_MS,
                ));
                continue;
            }
            break commit;
        };
        static FAILED: crate::error::Throttle =
            crate::error::Throttle::new(std::time::Duration::from_secs(10));
        match &commit {
            Ok(()) => {
                stats.locked_out.store(false, Ordering::SeqCst);
                if stats.write_succeeded() {
                    // The failed batches not logged since the last line that said one: said
                    // here, or no line would ever count them.
                    let left_out = match FAILED.take_left_out() {
                        0 => String::new(),
                        n => format!("; {n} more batches failed after the last failure logged"),
                    };
                    log::warn!(
                        "the database takes writes again (none has failed for {} s{left_out})",
                        WRITES_BACK_AFTER_MS / 1000
                    );
                }
                if outgrown {
                    log::warn!(
                        "a batch of {size} journaled more than 4 MiB and ran again with its journals in memory: a command that changes that much should be submitted with Store::write_bulk"
                    );
                }
            }
            Err(e) => {
                // Another process holding the file past the patience says nothing about it,
                // nor does a file no longer at its path (`/health` says that itself).
                if matches!(e, Error::Busy) {
                    stats
                        .locked_out_at_ms
                        .store(monotonic_ms(), Ordering::SeqCst);
                    stats.locked_out.store(true, Ordering::SeqCst);
                } else if !stats.file_missing.load(Ordering::SeqCst) {
                    stats.write_failed();
                }
                // Counted whatever their causes (a full disk, then a file deleted): the count
                // says batches, not "like it".
                if let Some(left_out) = FAILED.admit() {
                    let left_out = match left_out {
                        0 => String::new(),
                        n => format!(" ({n} more batches failed since the last such line, whatever their cause, not logged)"),
                    };
                    log::error!(
                        "writer batch of {size} failed and was rolled back: {}{left_out}",
                        e.logged()
                    );
                }
            }
        }
        let done = std::mem::replace(batch, Vec::with_capacity(WRITER_BATCH_MAX));
        let unsent = match answers {
            Some(to) => to.send((done, commit)).err().map(|e| e.0),
            None => Some((done, commit)),
        };
        if let Some((done, commit)) = unsent {
            answer_all(done, &commit, stats);
        }
    }

    /// One run of a batch in one transaction: committed, or rolled back whole. With
    /// `unbounded` false, a command that outgrew the journal's piece fails the batch.
    fn attempt(&self, batch: &mut [Box<dyn Command>], unbounded: bool) -> Result<()> {
        let Writer {
            conn,
            keys,
            audit_key,
            stats,
            events,
            changes,
            ..
        } = self;
        crate::error::take_full();
        // The batch's time is read once the write lock is held: `BEGIN IMMEDIATE` may wait up
        // to the busy timeout for another process (a command beside the server), and a time
        // read before it dated an approval on the day and the expiry of before that wait.
        let begun = conn
            .prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut begin| begin.execute([]));
        let ctx = WriteCtx::new(conn, keys, audit_key, crate::time::now_unix());
        let commit = (|| -> Result<()> {
            begun?;
            // The batch's number in the change sequence replication reads: one counter per batch.
            let numbered = super::changes::begin_lazy(conn)?;
            // The journal as the batch found it: the record of the log's newest line names it,
            // so a batch that grew it writes that record again, audited or not.
            let journal_before = crate::audit::newest_journal(conn)?.id;
            let recording = changes.and_then(|log| log.begin_batch());
            // Each command runs in a savepoint of its own, so that its failure undoes it alone
            // and is its answer. A savepoint copies every page the command touches the first
            // time it touches it (a fifth of an approval's CPU), so a run of repeatable commands
            // shares one. A command of the run that fails without having changed a row (refused
            // before its first write, or by a statement SQLite undid itself) is simply answered
            // with its error: nothing is left to undo. One that fails after changing rows undoes
            // the run; then the commands before it run again under one savepoint (they passed
            // on this very state), the failed one alone, and the rest of the run as a run again:
            // a refusal costs the run's beginning once more. Only broken savepoint machinery
            // fails the whole batch.
            let mut start = 0;
            let mut alone: Option<usize> = None;
            while start < batch.len() {
                let run = if alone == Some(start) {
                    0
                } else {
                    let run = batch[start..]
                        .iter()
                        .take(WRITER_RUN_MAX)
                        .take_while(|cmd| cmd.repeatable())
                        .count();
                    match alone {
                        Some(k) if k > start => run.min(k - start),
                        _ => run,
                    }
                };
                if run <= 1 {
                    let _ = ctx.savepoint(|ctx| batch[start].apply(ctx));
                    if ctx.broken.get() {
                        return Err(Error::internal("a savepoint could not be rolled back"));
                    }
                    if alone == Some(start) {
                        alone = None;
                    }
                    start += 1;
                    continue;
                }
                let end = start + run;
                let mut failed = None;
                let shared = ctx.savepoint(|ctx| {
                    for (i, cmd) in batch[start..end].iter_mut().enumerate() {
                        let mark = ctx.mark();
                        if let Err(e) = cmd.apply(ctx) {
                            if ctx.conn.is_autocommit() {
                                // SQLite undid the whole transaction: the batch fails here.
                                ctx.broken.set(true);
                                return Err(e);
                            }
                            if ctx.conn.total_changes() != mark.changes {
                                failed = Some(start + i);
                                return Err(e);
                            }
                            ctx.restore(&mark);
                        }
                    }
                    Ok(())
                });
                if ctx.broken.get() {
                    return Err(Error::internal("a savepoint could not be rolled back"));
                }
                if shared.is_ok() {
                    start = end;
                } else {
                    stats
                        .shared_savepoints_undone
                        .fetch_add(1, Ordering::Relaxed);
                    // (Without a command to blame: the first alone, then the rest as a run.)
                    alone = Some(failed.unwrap_or(start));
                }
            }
            if !unbounded && crate::error::met_full() {
                // The command's own savepoint was rolled back, but the batch runs again whole,
                // in journals that may grow (`run_batch`).
                return Err(Error::Full);
            }
            let journal = crate::audit::newest_journal(conn)?.id;
            if ctx.audited.get() || journal != journal_before {
                crate::audit::seal_head(conn, audit_key, journal)?;
            }
            let seq = numbered.finish(conn)?;
            if let Some(log) = changes {
                log.file(seq, recording);
            }
            let started = Instant::now();
            self.committing.store(true, Ordering::SeqCst);
            let committed = conn
                .prepare_cached("COMMIT")
                .and_then(|mut c| c.execute([]));
            self.committing.store(false, Ordering::SeqCst);
            committed?;
            stats
                .commit_micros_total
                .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            Ok(())
        })();
        match &commit {
            Ok(()) => {
                if ctx.emitted.get() {
                    events.notify();
                }
                ctx.flush_log();
            }
            Err(_) => {
                drop(ctx);
                if let Some(log) = changes {
                    log.reset();
                }
                if !conn.is_autocommit() {
                    if let Err(rollback) = conn.execute_batch("ROLLBACK") {
                        log::error!("rollback after a failed batch failed too: {rollback}");
                    }
                }
            }
        }
        commit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file in WAL mode whose log holds some frames, the writer's hook on it; the log's
    /// bound is `bound_of(bytes in use)`.
    fn log_of(dir: &std::path::Path, bound_of: impl Fn(u64) -> u64) -> (Connection, WalBound) {
        let path = dir.join("w.db");
        let conn = Connection::open(&path).unwrap();
        let _: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        conn.wal_hook(Some(note_wal_pages));
        conn.execute_batch("CREATE TABLE t (v BLOB)").unwrap();
        for _ in 0..8 {
            conn.execute("INSERT INTO t VALUES (zeroblob(4000))", [])
                .unwrap();
        }
        let mut wal = path.into_os_string();
        wal.push("-wal");
        let frame_bytes = 4096 + 24;
        let bound = WalBound {
            path: wal.into(),
            max_bytes: bound_of(WAL_PAGES.with(Cell::get) * frame_bytes),
            frame_bytes,
            grow: true,
            beside_server: None,
        };
        (conn, bound)
    }

    #[test]
    fn a_restart_refused_again_and_again_is_tried_less_often() {
        let ms = |failed| restart_backoff(failed).map(|d| d.as_millis());
        assert_eq!((ms(0), ms(1)), (None, None), "after the next batch");
        assert_eq!((ms(2), ms(3), ms(4)), (Some(50), Some(100), Some(200)));
        assert_eq!((ms(5), ms(40)), (Some(250), Some(250)));
        assert_eq!(restart_wait(1).as_millis(), 100);
        assert_eq!(
            (restart_wait(2).as_millis(), restart_wait(3).as_millis()),
            (10, 10)
        );
        assert_eq!(
            (restart_wait(4).as_millis(), restart_wait(5).as_millis()),
            (100, 10)
        );
    }

    #[test]
    fn the_log_is_grown_only_past_its_end_and_only_under_its_write_lock() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, bound) = log_of(dir.path(), |in_use| in_use * 4);
        let size = || std::fs::metadata(&bound.path).unwrap().len();
        let frames = size();
        let before = std::fs::read(&bound.path).unwrap();
        // Another connection writing: the log is left as it is.
        let other = Connection::open(dir.path().join("w.db")).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        conn.busy_timeout(std::time::Duration::ZERO).unwrap();
        bound.grow_file(&conn);
        assert_eq!(size(), frames);
        other.execute_batch("ROLLBACK").unwrap();
        // Then grown with zeros to fifteen sixteenths of the bound, its frames untouched, and
        // the connection left outside any transaction.
        bound.grow_file(&conn);
        assert_eq!(size(), bound.grown_bytes());
        assert!(bound.grown_bytes() > frames);
        let after = std::fs::read(&bound.path).unwrap();
        assert_eq!(&after[..before.len()], &before[..]);
        assert!(after[before.len()..].iter().all(|b| *b == 0));
        assert!(conn.is_autocommit());
        // Grown already: nothing more.
        bound.grow_file(&conn);
        assert_eq!(size(), bound.grown_bytes());
        // Its rows read back from the grown log by a new connection (SQLite recovers the log
        // up to its last commit; the zeros after it are no frame).
        drop(other);
        let copy = dir.path().join("copy");
        std::fs::create_dir(&copy).unwrap();
        std::fs::copy(dir.path().join("w.db"), copy.join("w.db")).unwrap();
        std::fs::copy(&bound.path, copy.join("w.db-wal")).unwrap();
        let reopened = Connection::open(copy.join("w.db")).unwrap();
        let rows: i64 = reopened
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 8);
    }

    fn log_past_bound(dir: &std::path::Path) -> (Connection, WalBound) {
        log_of(dir, |in_use| in_use / 2)
    }

    #[test]
    fn near_its_bound_the_log_is_restarted_after_a_batch_that_finds_no_copy_running() {
        let dir = tempfile::tempdir().unwrap();
        // Past seven eighths of the bound, not past fifteen sixteenths.
        let (conn, bound) = log_of(dir.path(), |in_use| in_use + in_use / 10);
        let stats = WriterStats::default();
        stats
            .checkpoint_copied_frames
            .store(WAL_PAGES.with(Cell::get), Ordering::SeqCst);
        stats.checkpoint_copying.store(true, Ordering::SeqCst);
        bound.enforce(&conn, &stats);
        assert_eq!(stats.wal_resets.load(Ordering::SeqCst), 0);
        assert!(stats.wal_in_use_bytes.load(Ordering::SeqCst) > 0);

        stats.checkpoint_copying.store(false, Ordering::SeqCst);
        bound.enforce(&conn, &stats);
        assert_eq!(stats.wal_resets.load(Ordering::SeqCst), 1);
        assert_eq!(stats.wal_in_use_bytes.load(Ordering::SeqCst), 0);
        // The next commit writes from the log's start again.
        conn.execute("INSERT INTO t VALUES (1)", []).unwrap();
        assert!(WAL_PAGES.with(Cell::get) <= 2);
    }

    #[test]
    fn writes_are_said_to_be_back_once_none_has_failed_for_a_while_and_said_once() {
        let stats = WriterStats::default();
        assert!(!stats.write_succeeded(), "nothing failed");
        stats.write_failed();
        assert!(
            !stats.write_succeeded(),
            "a write that passes among failures is no recovery"
        );
        assert!(stats.writes_failing.load(Ordering::SeqCst));
        stats
            .last_write_failure_ms
            .store(monotonic_ms() - WRITES_BACK_AFTER_MS, Ordering::SeqCst);
        assert!(stats.write_succeeded());
        assert!(!stats.writes_failing.load(Ordering::SeqCst));
        assert!(!stats.write_succeeded(), "said once");
    }

    #[test]
    fn from_fifteen_sixteenths_of_its_bound_the_log_is_restarted_before_a_batch_can_cross_it() {
        let dir = tempfile::tempdir().unwrap();
        // Past fifteen sixteenths of the bound, not past it, nothing copied: the batch after
        // this one could cross the bound, so this one restarts the log, copy or not.
        let (conn, bound) = log_of(dir.path(), |in_use| in_use + in_use / 20);
        let stats = WriterStats::default();
        bound.enforce(&conn, &stats);
        assert_eq!(stats.wal_resets.load(Ordering::SeqCst), 1);
        assert_eq!(stats.wal_in_use_bytes.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn near_its_bound_a_log_the_copy_has_not_caught_up_with_wakes_the_checkpointer_first() {
        let dir = tempfile::tempdir().unwrap();
        // Past seven eighths of the bound, not past fifteen sixteenths, nothing copied yet.
        let (conn, bound) = log_of(dir.path(), |in_use| in_use + in_use / 10);
        let stats = WriterStats::default();
        let woken = std::thread::scope(|s| {
            let checkpointer = s.spawn(|| {
                let deadline = Instant::now() + std::time::Duration::from_secs(10);
                while !stats.checkpoint_wanted.load(Ordering::SeqCst) && Instant::now() < deadline {
                    std::thread::park_timeout(std::time::Duration::from_millis(100));
                }
                stats.checkpoint_wanted.load(Ordering::SeqCst)
            });
            stats
                .checkpointer
                .set(checkpointer.thread().clone())
                .unwrap();
            bound.enforce(&conn, &stats);
            checkpointer.join().unwrap()
        });
        assert!(woken, "the checkpointer is woken and asked to copy");
        assert_eq!(stats.wal_resets.load(Ordering::SeqCst), 0);
        assert!(stats.wal_in_use_bytes.load(Ordering::SeqCst) > 0);

        // Once its copy has caught up, the next batch restarts the log.
        let frames = WAL_PAGES.with(Cell::get);
        stats.checkpoint_wanted.store(false, Ordering::SeqCst);
        stats
            .checkpoint_copied_frames
            .store(frames, Ordering::SeqCst);
        bound.enforce(&conn, &stats);
        assert_eq!(stats.wal_resets.load(Ordering::SeqCst), 1);
        assert_eq!(stats.checkpoint_copied_frames.load(Ordering::SeqCst), 0);
        assert!(!stats.checkpoint_wanted.load(Ordering::SeqCst));

        // Past the bound the log is restarted whatever the copy left.
        for _ in 0..30 {
            conn.execute("INSERT INTO t VALUES (zeroblob(4000))", [])
                .unwrap();
        }
        assert!(WAL_PAGES.with(Cell::get) * bound.frame_bytes > bound.max_bytes);
        bound.enforce(&conn, &stats);
        assert_eq!(stats.wal_resets.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn from_three_quarters_of_its_bound_a_copy_left_behind_is_asked_for_and_the_log_kept() {
        let dir = tempfile::tempdir().unwrap();
        // Five sixths of the bound: past three quarters, not past seven eighths.
        let (conn, bound) = log_of(dir.path(), |in_use| in_use + in_use / 5);
        let stats = WriterStats::default();
        stats
            .checkpoint_copied_frames
            .store(WAL_PAGES.with(Cell::get), Ordering::SeqCst);
        bound.enforce(&conn, &stats);
        assert!(
            !stats.checkpoint_wanted.load(Ordering::SeqCst),
            "nothing to copy"
        );
        stats.checkpoint_copied_frames.store(0, Ordering::SeqCst);
        stats.checkpoint_copying.store(true, Ordering::SeqCst);
        bound.enforce(&conn, &stats);
        assert!(
            !stats.checkpoint_wanted.load(Ordering::SeqCst),
            "a copy is running"
        );
        stats.checkpoint_copying.store(false, Ordering::SeqCst);
        bound.enforce(&conn, &stats);
        assert!(stats.checkpoint_wanted.load(Ordering::SeqCst));
        assert_eq!(stats.wal_resets.load(Ordering::SeqCst), 0);
        assert!(stats.wal_in_use_bytes.load(Ordering::SeqCst) > 0);
    }

    #[test]
    fn at_its_bound_the_log_is_restarted_once_the_copy_running_ends() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, bound) = log_past_bound(dir.path());
        let stats = WriterStats::default();
        stats.checkpoint_copying.store(true, Ordering::SeqCst);
        let started = Instant::now();
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(std::time::Duration::from_millis(30));
                stats.checkpoint_copying.store(false, Ordering::SeqCst);
            });
            bound.enforce(&conn, &stats);
        });
        assert!(started.elapsed() >= std::time::Duration::from_millis(30));
        assert_eq!(stats.wal_resets.load(Ordering::SeqCst), 1);
        assert_eq!(stats.wal_in_use_bytes.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_reader_on_the_log_delays_the_restart_by_at_most_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, bound) = log_past_bound(dir.path());
        let reader = Connection::open(dir.path().join("w.db")).unwrap();
        let read = reader.unchecked_transaction().unwrap();
        let _: i64 = read
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        conn.execute("INSERT INTO t VALUES (2)", []).unwrap();
        let stats = WriterStats::default();
        let started = Instant::now();
        bound.enforce(&conn, &stats);
        let waited = started.elapsed();
        // The reader holds frames the restart would overwrite: it is not restarted, and the
        // writer waited about `WAL_RESET_WAIT_MS`, not SQLite's busy timeout.
        assert_ne!(stats.wal_in_use_bytes.load(Ordering::SeqCst), 0);
        assert_eq!(stats.wal_resets.load(Ordering::SeqCst), 0);
        assert_eq!(stats.wal_reset_failures.load(Ordering::SeqCst), 1);
        let limit = std::time::Duration::from_millis(crate::limits::WAL_RESET_WAIT_MS);
        assert!(waited >= limit, "gave up after {waited:?}");
        assert!(waited < limit * 3, "waited {waited:?}");
        drop(read);
        bound.enforce(&conn, &stats);
        assert_eq!(stats.wal_in_use_bytes.load(Ordering::SeqCst), 0);
        assert_eq!(stats.wal_resets.load(Ordering::SeqCst), 1);
    }

    /// Each answer seen: the thread that gave it, and whether the row was committed by then.
    type Seen = std::sync::Arc<std::sync::Mutex<Vec<(Option<String>, bool)>>>;

    /// A command that writes a row and, when answered, notes which thread answered it and
    /// whether its row was committed then (read through a connection of its own).
    struct Probe {
        id: i64,
        path: std::path::PathBuf,
        seen: Seen,
    }

    impl Command for Probe {
        fn apply(&mut self, ctx: &WriteCtx<'_>) -> Result<()> {
            ctx.conn
                .execute("INSERT INTO probes (id) VALUES (?1)", [self.id])?;
            Ok(())
        }

        fn answer(self: Box<Self>, commit: Result<()>) {
            assert!(commit.is_ok(), "{commit:?}");
            let reader = Connection::open(&self.path).unwrap();
            let committed: i64 = reader
                .query_row(
                    "SELECT count(*) FROM probes WHERE id = ?1",
                    [self.id],
                    |r| r.get(0),
                )
                .unwrap();
            let thread = std::thread::current().name().map(str::to_string);
            self.seen.lock().unwrap().push((thread, committed == 1));
        }
    }

    #[test]
    fn callers_are_answered_by_a_thread_of_their_own_after_the_commit_and_all_before_close() {
        let dir = tempfile::tempdir().unwrap();
        let mut options = crate::store::OpenOptions::new(dir.path().join("a.db"));
        options.key_hex =
            Some("9526f11e06e32fa0e62ac5f605dbb1f7a175773cd424dd3f73a96288b90308ed".into());
        let store = crate::store::open(&options).unwrap();
        store
            .write(|ctx| {
                Ok(ctx
                    .conn
                    .execute_batch("CREATE TABLE probes (id INTEGER PRIMARY KEY)")?)
            })
            .unwrap();
        let seen = std::sync::Arc::default();
        let sender = store.sender.lock().unwrap().clone().unwrap();
        const PROBES: i64 = 200;
        for id in 0..PROBES {
            store.stats.queue_depth.fetch_add(1, Ordering::SeqCst);
            let probe = Probe {
                id,
                path: options.path.clone(),
                seen: std::sync::Arc::clone(&seen),
            };
            sender.send(Msg::Run(Box::new(probe))).unwrap();
        }
        drop(sender);
        // Closing waits for the writer, which waits for the thread answering its callers.
        store.close();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), PROBES as usize);
        for (thread, committed) in seen.iter() {
            assert_eq!(thread.as_deref(), Some("remit-answers"));
            assert!(committed, "answered before its row was committed");
        }
        assert_eq!(store.stats.queue_depth.load(Ordering::SeqCst), 0);
    }
}
