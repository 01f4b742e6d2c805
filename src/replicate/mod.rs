//! Continuous replication of the ledger into PostgreSQL (README, "Replication"): `remit
//! replicate --to URL`, or a background thread of `remit serve` (`REMIT_REPLICATE_TO`).
//!
//! Every write transaction stamps the rows it changes with its number in the change sequence
//! (`store::changes`); the journal and the audit log are append-only. A cycle reads, on a
//! read-only connection and in one snapshot, the rows stamped after the replica's position and
//! the appended rows after its keys, and writes them in one PostgreSQL transaction that also
//! records the new position. So the replica always holds a state the file held, changes
//! arrive in commit order, and after a crash anywhere nothing is sent twice or skipped. The
//! writer is never waited for: replication only reads.

mod compare;
mod ddl;
pub mod postgres;
pub mod source;

pub use postgres::{Replica, Target};

/// How far behind a replica must be for a cycle to stream rows from the snapshot, and how many
/// rows of a stamped table one upsert carries (for the tests of a long catch-up).
pub use crate::limits::{REPLICATION_STREAM_AFTER_CHANGES, REPLICATION_UPSERT_ROWS};

use crate::error::{Error, Result};
use crate::limits::{
    REPLICATION_CYCLE_MIN_MS, REPLICATION_IDLE_CHECK_S, REPLICATION_LAG_SAMPLES_MAX,
    REPLICATION_POLL_MS, REPLICATION_RETRY_MAX_S, REPLICATION_RETRY_MIN_S, REPLICATION_STALL_S,
};
use crate::store::changes::ChangeLog;
use crate::store::Store;
use postgres::{Applied, Phase};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What replication reports to `/metrics` and the admin screen.
#[derive(Default)]
pub struct Status {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    target: String,
    ledger_id: String,
    connected: bool,
    /// The change number the replica holds (-1: nothing yet; `None`: not known yet).
    applied: Option<i64>,
    /// The change number last seen in the file.
    file: i64,
    /// The last moment the file was known to hold nothing the replica lacks.
    equal_at: Option<Instant>,
    last_error: Option<String>,
    replicated_at: Option<i64>,
    cycles: u64,
    /// Cycles that found the stamped tables' changes by the change log, not by scans.
    cycles_listed: u64,
    rows: u64,
    lags_ms: Vec<f64>,
    /// When the cycle under way began (`None` between cycles): one PostgreSQL has not
    /// answered for `REPLICATION_STALL_S` is said as not answering.
    cycle_since: Option<Instant>,
    /// Cycles and idle checks PostgreSQL answered, since start (the watch thread says a
    /// PostgreSQL that stopped answering answers again when this moves).
    answered: u64,
    /// Since when every attempt has failed (`None` while they succeed): the replica is not
    /// being kept, whatever its numbers say, and its lag counts from then.
    failing_since: Option<Instant>,
}

/// Replication as the admin screen shows it (`GET /admin/replication`).
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusView {
    /// `postgres://user@host:port/db` (never a password).
    pub target: String,
    /// This ledger's id: its rows are in schema `remit_<id>`.
    pub ledger_id: String,
    /// Whether PostgreSQL answered the last attempt.
    pub connected: bool,
    /// How long the oldest change not yet in PostgreSQL has waited (0: none waits).
    pub lag_seconds: f64,
    /// Committed transactions not yet in PostgreSQL.
    pub lag_changes: i64,
    /// The change number PostgreSQL holds (-1: nothing yet).
    pub replicated_change_seq: i64,
    /// The last change number committed in the file.
    pub file_change_seq: i64,
    /// When PostgreSQL was last written (RFC 3339).
    pub replicated_at: Option<String>,
    /// Why the last attempt failed, while it is failing.
    pub last_error: Option<String>,
    /// Cycles applied since start.
    pub cycles: u64,
    /// Rows written since start.
    pub rows: u64,
}

impl Status {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The view of now.
    pub fn view(&self) -> StatusView {
        let s = self.lock();
        let applied = s.applied.unwrap_or(-1);
        let behind = s.file > applied;
        let stalled = s.stalled();
        StatusView {
            target: s.target.clone(),
            ledger_id: s.ledger_id.clone(),
            connected: s.connected && stalled.is_none(),
            // Failing (PostgreSQL gone, or the file refused as another history), the file's
            // numbers may not even be comparable with the replica's (a refused copy's): the
            // lag is the time since the failures began, idle or not, so that an alert on the
            // lag hears of it.
            lag_seconds: match (behind, s.equal_at) {
                (true, Some(at)) => at.elapsed().as_secs_f64(),
                _ => 0.0,
            }
            .max(s.failing_since.map_or(0.0, |at| at.elapsed().as_secs_f64()))
            .max(stalled.map_or(0.0, |waited| waited.as_secs_f64())),
            lag_changes: if s.applied.is_some() {
                (s.file - applied).max(0)
            } else {
                0
            },
            replicated_change_seq: applied,
            file_change_seq: s.file,
            replicated_at: s.replicated_at.map(crate::time::rfc3339),
            last_error: match stalled {
                Some(waited) => Some(format!(
                    "PostgreSQL has not answered for {} s (a stopped server, a network that drops packets, or a lock another session holds on the replica)",
                    waited.as_secs()
                )),
                None => s.last_error.clone(),
            },
            cycles: s.cycles,
            rows: s.rows,
        }
    }

    /// The lag of each cycle's oldest change, in milliseconds (for the benchmark).
    pub fn cycle_lags_ms(&self) -> Vec<f64> {
        self.lock().lags_ms.clone()
    }

    /// Cycles since start, and how many of them read only the rows the change log listed.
    pub fn cycles_listed(&self) -> (u64, u64) {
        let s = self.lock();
        (s.cycles, s.cycles_listed)
    }

    fn observe(&self, file: i64) {
        let mut s = self.lock();
        s.file = s.file.max(file);
        // (Compared with the newest seen: another thread may have seen a later commit.)
        if s.applied.is_some_and(|a| a >= s.file) {
            s.equal_at = Some(Instant::now());
        }
    }

    fn connected(&self, applied: i64) {
        let mut s = self.lock();
        s.cycle_since = None;
        s.connected = true;
        s.applied = Some(applied);
        s.last_error = None;
    }

    fn cycle_began(&self) {
        self.lock().cycle_since = Some(Instant::now());
    }

    /// The cycle under way is no longer watched (what comes next may last minutes).
    fn unwatched(&self) {
        self.lock().cycle_since = None;
    }

    /// The replica was checked while the file changed nothing (`Replica::position`, read only).
    fn checked(&self) {
        let mut s = self.lock();
        s.cycle_since = None;
        s.connected = true;
        s.failing_since = None;
        s.last_error = None;
        s.answered += 1;
    }

    fn applied(&self, done: &Applied, snapshot_at: Instant) {
        let (change_seq, rows, first_copy) =
            (done.position.change_seq, done.rows, done.made_schema);
        let now = Instant::now();
        let mut s = self.lock();
        s.cycle_since = None;
        // The oldest change of this cycle was committed after the file was last seen equal
        // to the replica: its wait is at most this. (A first copy is not a lag.)
        if let (Some(since), false) = (s.equal_at, first_copy) {
            if s.lags_ms.len() < REPLICATION_LAG_SAMPLES_MAX {
                s.lags_ms
                    .push(now.duration_since(since).as_secs_f64() * 1e3);
            }
        }
        // At the snapshot the file held exactly what the replica now holds.
        s.equal_at = Some(s.equal_at.map_or(snapshot_at, |at| at.max(snapshot_at)));
        s.applied = Some(change_seq);
        s.file = s.file.max(change_seq);
        s.replicated_at = Some(crate::time::now_unix());
        s.cycles += 1;
        s.cycles_listed += u64::from(done.listed);
        s.rows += rows;
        s.answered += 1;
        s.connected = true;
        s.failing_since = None;
        s.last_error = None;
    }

    fn failed(&self, error: &str) {
        let mut s = self.lock();
        s.cycle_since = None;
        s.connected = false;
        s.failing_since.get_or_insert_with(Instant::now);
        s.last_error = Some(error.to_string());
    }
}

impl State {
    /// How long the cycle under way has waited, once that is `REPLICATION_STALL_S` or more.
    fn stalled(&self) -> Option<Duration> {
        self.cycle_since
            .map(|at| at.elapsed())
            .filter(|waited| *waited >= Duration::from_secs(REPLICATION_STALL_S))
    }
}

/// Everything a replication thread needs.
pub struct Replicator {
    /// The ledger (read only).
    pub store: Arc<Store>,
    /// Where to.
    pub target: Target,
    /// Shared with `/metrics` and the admin screen.
    pub status: Arc<Status>,
}

impl Replicator {
    /// Starts replication in the background; it stops soon after `stopping` is set.
    pub fn start(self, stopping: Arc<AtomicBool>) -> Result<JoinHandle<()>> {
        // Where to and which ledger, known before the thread's first cycle: an admin asking at
        // once read both as "" (the thread set them when its cycle began).
        // (A file that cannot be read now is the thread's to say and to try again.)
        {
            let ledger_id = self
                .store
                .reader()
                .and_then(|reader| crate::store::changes::ledger_id(&reader));
            let mut s = self.status.lock();
            s.target = self.target.display().to_string();
            if let Ok(id) = ledger_id {
                s.ledger_id = id;
            }
        }
        self.watch(Arc::clone(&stopping));
        std::thread::Builder::new()
            .name("remit-replicate".into())
            .spawn(move || {
                // The file could not be read (an I/O error, a lock held past the busy wait):
                // said, shown as not connected with its reason, and tried again with backoff,
                // for as long as the server runs. (The thread ended there, and the status went
                // on saying "connected" while the lag grew.)
                let mut wait = Duration::from_secs(REPLICATION_RETRY_MIN_S);
                while !stopping.load(Ordering::SeqCst) {
                    let Err(e) = self.run(&stopping) else { return };
                    let text = crate::error::describe(&e);
                    self.status.failed(&text);
                    log::error!(
                        "replication to {} stopped: {text}; it starts again in {} s",
                        self.target.display(),
                        wait.as_secs()
                    );
                    let until = Instant::now() + wait;
                    while Instant::now() < until && !stopping.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(REPLICATION_POLL_MS));
                    }
                    wait = (wait * 2).min(Duration::from_secs(REPLICATION_RETRY_MAX_S));
                }
            })
            .map_err(|e| Error::internal(format!("cannot start the replication thread: {e}")))
    }

    /// A thread beside the replication thread, which may wait inside a cycle for a PostgreSQL
    /// that does not answer (the connection open, nothing coming back): it keeps the file's
    /// change number current in the status (the lag in changes grows while the cycle waits),
    /// and says once in the log when a cycle has waited `REPLICATION_STALL_S`.
    pub fn watch(&self, stopping: Arc<AtomicBool>) {
        let (store, status) = (Arc::clone(&self.store), Arc::clone(&self.status));
        let target = self.target.display().to_string();
        let started = std::thread::Builder::new()
            .name("remit-replicate-watch".into())
            .spawn(move || {
                let Ok(reader) = store.reader() else { return };
                let mut said: Option<Instant> = None;
                let mut cycles_then = 0;
                while !stopping.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_secs(1));
                    if let Ok(file) = crate::store::changes::committed(&reader) {
                        status.observe(file);
                    }
                    let (stalled, waiting, cycles, applied) = {
                        let s = status.lock();
                        (s.stalled().and(s.cycle_since), s.cycle_since, s.answered, s.applied)
                    };
                    if let Some(since) = stalled.filter(|at| said != Some(*at)) {
                        said = Some(since);
                        cycles_then = cycles;
                        log::warn!(
                            "replication to {target} is waiting on PostgreSQL: no answer for {} s (a stopped server, a network that drops packets, or a lock another session holds on the replica). The ledger goes on; replication catches up when it answers",
                            since.elapsed().as_secs()
                        );
                    } else if let Some(since) = said.filter(|at| waiting != Some(*at)) {
                        // The cycle said to wait is no longer waited on. Only a cycle or check
                        // answered since says PostgreSQL answers: a failure followed by a
                        // quick reconnection does not (the failure is said by the replication
                        // thread itself), nor a cycle that went on from its wait to copy a
                        // backlog, no longer watched (it is said when it ends; it was not said
                        // at all, and the log ended on the wait).
                        if cycles > cycles_then {
                            said = None;
                            log::info!(
                                "replication to {target}: PostgreSQL answers again, after {:.0} s; replicated up to change {}",
                                since.elapsed().as_secs_f64(),
                                applied.unwrap_or(-1)
                            );
                        }
                    }
                }
            });
        if let Err(e) = started {
            log::warn!("cannot start the thread that watches replication ({e}): a PostgreSQL that stops answering is not said");
        }
    }

    /// Replicates until `stopping` is set: a cycle whenever the file committed something
    /// (at most one per `REPLICATION_CYCLE_MIN_MS`); when PostgreSQL cannot be reached, says so
    /// once, retries with backoff and catches up when it answers again. Fails only when the
    /// file itself cannot be read.
    pub fn run(&self, stopping: &AtomicBool) -> Result<()> {
        let log = self.store.change_log();
        let ran = self.replicate(stopping, log);
        if let Some(log) = log {
            log.stop();
        }
        ran
    }

    fn replicate(&self, stopping: &AtomicBool, log: Option<&ChangeLog>) -> Result<()> {
        let reader = self.store.reader()?;
        let ledger_id = crate::store::changes::ledger_id(&reader)?;
        let file_version = crate::store::schema_version(&reader)?;
        let shapes = source::shapes(&reader)?;
        if let Some(log) = log {
            let listed: Vec<&str> = shapes
                .iter()
                .filter(|s| s.listable())
                .map(|s| s.table.name)
                .collect();
            log.start(&listed);
        }
        {
            let mut s = self.status.lock();
            s.target = self.target.display().to_string();
            s.ledger_id.clone_from(&ledger_id);
            s.equal_at = Some(Instant::now());
        }
        log::info!(
            "replicating ledger {ledger_id} to {} (schema remit_{ledger_id})",
            self.target.display()
        );
        let mut replica: Option<Replica> = None;
        let mut retry_at = Instant::now();
        let mut backoff = Duration::from_secs(REPLICATION_RETRY_MIN_S);
        let mut outage: Option<(Instant, String)> = None;
        let mut last_cycle: Option<Instant> = None;
        let mut verify = false;
        while !stopping.load(Ordering::SeqCst) {
            let file = crate::store::changes::committed(&reader)?;
            self.status.observe(file);
            if replica.is_none() && Instant::now() >= retry_at {
                // Watched too: a server that accepts the connection and then stops answering.
                self.status.cycle_began();
                let opened = Replica::open(&self.target, &ledger_id, shapes.clone(), file_version)
                    .and_then(|mut r| Ok((r.position()?, r)));
                match opened {
                    Ok((position, r)) => {
                        self.status.connected(position.map_or(-1, |p| p.change_seq));
                        replica = Some(r);
                        // The first cycle of a connection runs even with nothing new: it
                        // checks that the file is the history the replica holds.
                        last_cycle = None;
                        verify = true;
                    }
                    Err(e) => self.failed(&e, &mut outage, &mut retry_at, &mut backoff),
                }
            }
            let applied = self.status.lock().applied;
            let due = last_cycle
                .is_none_or(|at| at.elapsed() >= Duration::from_millis(REPLICATION_CYCLE_MIN_MS));
            // Nothing new for a while: the replica is checked all the same, so that a
            // PostgreSQL gone (or a replica dropped) is said now, not at the next change.
            let idle = last_cycle
                .is_some_and(|at| at.elapsed() >= Duration::from_secs(REPLICATION_IDLE_CHECK_S));
            if let (Some(r), Some(applied)) = (replica.as_mut(), applied) {
                if idle && due && file <= applied && !verify {
                    // Read only: the replica's position, as this ledger left it. A replica
                    // dropped or moved by another replicator gets a full cycle next.
                    last_cycle = Some(Instant::now());
                    self.status.cycle_began();
                    match r.position() {
                        Ok(position) => {
                            self.status.checked();
                            if position.is_none_or(|p| p.change_seq != applied) {
                                verify = true;
                            }
                        }
                        Err(e) => {
                            replica = None;
                            self.failed(&e, &mut outage, &mut retry_at, &mut backoff);
                        }
                    }
                    continue;
                }
                if (file > applied || verify) && due {
                    // A replicator in a process of its own beside a server upgraded meanwhile
                    // (which migrated the file at its start, taking a change number) read the
                    // tables as they were before: it went on without the new columns, its
                    // position stamped with the old version, and a column renamed or dropped
                    // failed every cycle as if PostgreSQL were out. It stops and says to start
                    // it again (the server's own replicator starts with the server). Asked
                    // before each cycle, not at each look at the file.
                    let now_version = crate::store::schema_version(&reader)?;
                    if now_version != file_version {
                        return Err(Error::internal(format!(
                            "the ledger's schema changed from version {file_version} to {now_version} while replicating (a server of a newer remit opened the file): nothing was replicated after the change; start `remit replicate` again, with the same remit as the server"
                        )));
                    }
                    let first = verify;
                    verify = false;
                    let snapshot_at = Instant::now();
                    last_cycle = Some(snapshot_at);
                    // A cycle that should be quick is watched whole for a PostgreSQL that
                    // stopped answering; a connection's first up to its statements prepared (a
                    // server stopped just after it took the connection held that cycle, said
                    // as connected, for as long as it was stopped): after that it reads the
                    // whole file's changes (the change log is new). Neither is watched once it
                    // copies the ledger (minutes at a million escrows).
                    let quick = !first && file - applied < REPLICATION_STREAM_AFTER_CHANGES;
                    self.status.cycle_began();
                    let phase = |phase: Phase| {
                        if phase == Phase::Copying || !quick {
                            self.status.unwatched();
                        }
                    };
                    match r.cycle(&reader, log, &phase) {
                        Ok(done) => {
                            self.status.applied(&done, snapshot_at);
                            if done.made_schema {
                                log::info!(
                                    "replica of ledger {ledger_id} made in {}: {} rows up to change {}",
                                    self.target.display(),
                                    done.rows,
                                    done.position.change_seq
                                );
                            }
                            if let Some((since, _)) = outage.take() {
                                log::info!(
                                    "replication to {} resumed after {:.0} s: caught up to change {} ({} rows)",
                                    self.target.display(),
                                    since.elapsed().as_secs_f64(),
                                    done.position.change_seq,
                                    done.rows
                                );
                            }
                            backoff = Duration::from_secs(REPLICATION_RETRY_MIN_S);
                        }
                        Err(e) => {
                            replica = None;
                            self.failed(&e, &mut outage, &mut retry_at, &mut backoff);
                        }
                    }
                    continue;
                }
            }
            std::thread::sleep(Duration::from_millis(REPLICATION_POLL_MS));
        }
        Ok(())
    }

    /// Records a failure: the first of an outage (or a new reason) is logged, the rest only
    /// counted; the next attempt waits twice as long, up to `REPLICATION_RETRY_MAX_S`.
    fn failed(
        &self,
        error: &Error,
        outage: &mut Option<(Instant, String)>,
        retry_at: &mut Instant,
        backoff: &mut Duration,
    ) {
        let text = crate::error::describe(error);
        self.status.failed(&text);
        if outage.as_ref().is_none_or(|(_, last)| *last != text) {
            // A PostgreSQL that answered with a refusal is not "unreachable": it is to be put
            // right there (a read-only database, a column dropped by hand).
            let when = if text.contains("PostgreSQL says ") {
                "once PostgreSQL takes the changes again"
            } else {
                "when PostgreSQL answers"
            };
            log::warn!(
                "replication to {} is not running: {}. The ledger goes on; remit retries every {} s at most and catches up {when}",
                self.target.display(),
                text.trim_end_matches('.'),
                REPLICATION_RETRY_MAX_S
            );
            let since = outage.as_ref().map_or_else(Instant::now, |(at, _)| *at);
            *outage = Some((since, text));
        }
        *retry_at = Instant::now() + *backoff;
        *backoff = (*backoff * 2).min(Duration::from_secs(REPLICATION_RETRY_MAX_S));
    }

    /// One cycle now, if the file holds anything the replica lacks (`remit replicate --once`):
    /// returns the position reached and the rows written.
    pub fn once(&self) -> Result<(source::Position, u64, String)> {
        let reader = self.store.reader()?;
        let ledger_id = crate::store::changes::ledger_id(&reader)?;
        let file_version = crate::store::schema_version(&reader)?;
        let shapes = source::shapes(&reader)?;
        let mut replica = Replica::open(&self.target, &ledger_id, shapes, file_version)?;
        // Even with nothing new, a cycle: it checks that the file is the replica's history.
        let done = replica.cycle(&reader, self.store.change_log(), &|_| {})?;
        Ok((done.position, done.rows, ledger_id))
    }
}
