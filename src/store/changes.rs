//! The change sequence that replication reads (schema 8): every write transaction takes the
//! next number of one counter, kept in `meta` (key `change_seq`) and bumped under the write
//! lock, and every row it inserts or updates in a replicated table carries that number in its
//! `change_seq` column. Statements stamp it with the SQL function `remit_change_seq()`, which
//! answers the number of the transaction running on this thread and fails when there is none:
//! a write that forgot to take a number is refused rather than never replicated.
//!
//! The writer takes one number per group commit: it reads the counter at the batch's start and
//! writes it back before the commit, only when a row was stamped (the hot path gains a counter,
//! no row and no index per change; a batch that changed nothing still writes nothing). A tool
//! that writes outside the writer (key rotation, opening a database) takes one per transaction
//! with `begin`. The triggers that keep `state_counts` stamp it with the number of the row that
//! fired them.

use crate::error::{Error, Result};
use rusqlite::functions::FunctionFlags;
use rusqlite::Connection;
use std::cell::Cell;

thread_local! {
    /// The number of the write transaction running on this thread (0: none), and whether a
    /// statement has stamped a row with it.
    static CURRENT: Cell<(i64, bool)> = const { Cell::new((0, false)) };
}

/// The schema version that made the counter (`schema/0008_replication.sql`).
pub const SINCE_SCHEMA: u32 = 8;

/// The SQL function's name.
pub const FUNCTION: &str = "remit_change_seq";

/// The stamp of a `WITHOUT ROWID` table, `remit_change_seq_of('table', key)`: the same number,
/// and on the writer's connection the row's key (its primary key's first column) goes to the
/// change log, which SQLite's update hook cannot tell of such a table.
pub const KEYED_FUNCTION: &str = "remit_change_seq_of";

/// The `WITHOUT ROWID` tables every statement stamps with `KEYED_FUNCTION` (a test holds
/// `src/` to it), so that the change log can list their changed rows by key, each with the
/// first column of its primary key: the key the stamp names.
pub const KEYED_TABLES: &[(&str, &str)] = &[
    ("daily_spend", "escrow_id"),
    ("users", "id"),
    ("escrows", "id"),
    ("spending_categories", "id"),
];

/// The key column a keyed table's stamp names (`KEYED_TABLES`), `None` for another table.
pub fn keyed(table: &str) -> Option<&'static str> {
    KEYED_TABLES
        .iter()
        .find(|(t, _)| *t == table)
        .map(|(_, key)| *key)
}

fn flags() -> FunctionFlags {
    FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DIRECTONLY
}

/// The number of the transaction running on this thread, marked used.
fn stamp() -> rusqlite::Result<i64> {
    let (seq, _) = CURRENT.with(Cell::get);
    if seq > 0 {
        CURRENT.with(|c| c.set((seq, true)));
        Ok(seq)
    } else {
        Err(rusqlite::Error::UserFunctionError(
            "a replicated table was written outside a numbered transaction (store::changes::begin)"
                .into(),
        ))
    }
}

/// Registers `remit_change_seq()` and `remit_change_seq_of(table, key)` on a read-write
/// connection.
pub(super) fn register(conn: &Connection) -> rusqlite::Result<()> {
    conn.create_scalar_function(FUNCTION, 0, flags(), |_| stamp())?;
    conn.create_scalar_function(KEYED_FUNCTION, 2, flags(), |_| stamp())
}

/// The number of the write transaction on this thread until it is dropped.
#[must_use = "the number holds only while the guard lives"]
pub struct Numbered {
    /// The transaction's number.
    pub seq: i64,
}

impl Numbered {
    /// Before the commit of a transaction numbered with `begin_lazy`: records its number as
    /// the last one taken if a row was stamped with it (a transaction that changed nothing
    /// writes nothing, as before). Returns the number when it was taken.
    pub fn finish(&self, conn: &Connection) -> Result<Option<i64>> {
        let (seq, used) = CURRENT.with(Cell::get);
        if used && seq == self.seq {
            conn.prepare_cached(
                "UPDATE meta SET change_seq = ?1, value = CAST(?1 AS TEXT) WHERE key = 'change_seq'",
            )?
            .execute([seq])?;
            return Ok(Some(seq));
        }
        Ok(None)
    }
}

impl Drop for Numbered {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set((0, false)));
    }
}

/// Takes the next number for the write transaction open on `conn` (which must hold the write
/// lock: `BEGIN IMMEDIATE`), so that the statements it runs on this thread stamp their rows
/// with it. One statement: the counter's row is read and bumped together.
pub fn begin(conn: &Connection) -> Result<Numbered> {
    let seq: i64 = conn
        .prepare_cached(
            "UPDATE meta SET change_seq = change_seq + 1, value = CAST(change_seq + 1 AS TEXT)
             WHERE key = 'change_seq' RETURNING change_seq",
        )?
        .query_row([], |r| r.get(0))
        .map_err(no_counter)?;
    CURRENT.with(|c| c.set((seq, false)));
    Ok(Numbered { seq })
}

/// The writer's way, once per group commit: reads the counter (under the write lock) and holds
/// the next number for the batch's statements; `Numbered::finish` writes it back before the
/// commit only if some row was stamped with it.
pub fn begin_lazy(conn: &Connection) -> Result<Numbered> {
    let last: i64 = conn
        .prepare_cached("SELECT change_seq FROM meta WHERE key = 'change_seq'")?
        .query_row([], |r| r.get(0))
        .map_err(no_counter)?;
    CURRENT.with(|c| c.set((last + 1, false)));
    Ok(Numbered { seq: last + 1 })
}

fn no_counter(e: rusqlite::Error) -> Error {
    match e {
        rusqlite::Error::QueryReturnedNoRows => {
            Error::internal("the database has no change counter (schema 8 missing)")
        }
        other => other.into(),
    }
}

/// The number of the last committed transaction, as a read connection's snapshot sees it.
pub fn committed(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT change_seq FROM meta WHERE key = 'change_seq'")?
        .query_row([], |r| r.get(0))?)
}

/// This ledger's stable id (`ldg_…`), made once by schema 8 and kept in `meta`.
pub fn ledger_id(conn: &Connection) -> Result<String> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = 'ledger_id'")?
        .query_row([], |r| r.get(0))?)
}

/// Which rows each of the writer's transactions changed, by number, so that replication inside
/// `remit serve` reads only those rows instead of scanning every stamped table at each cycle
/// (a scan grows with the ledger; this grows with the changes). SQLite reports every insert,
/// update and delete of a rowid table to the writer connection's update hook; the writer files
/// what its batch reported under the batch's number just before the `COMMIT`.
///
/// An accelerator, never the truth: a row listed is read again from the snapshot with
/// `change_seq` above the replica's position, so a row listed too many times (a rolled-back
/// savepoint's, a reused number's) costs a lookup and nothing else. What it must never do is
/// miss a row, so it answers only for a range of numbers it saw whole: it records while a
/// replicator reads it (`start`), from the first batch that began while it recorded (one that
/// began before may be partial), with no number skipped since (another process taking
/// numbers, a batch whose commit failed, rows forgotten past `CHANGE_LOG_ROWS_MAX`, all start
/// it over), and replication scans whenever it does not answer. SQLite reports nothing for
/// `WITHOUT ROWID` tables: those of `KEYED_TABLES` tell their keys through their stamp
/// (`KEYED_FUNCTION`); the others are always scanned.
#[derive(Default)]
pub struct ChangeLog {
    /// Recording only while a replicator reads it (`start` … `stop`).
    active: std::sync::atomic::AtomicBool,
    /// Found wrong once (`distrust`): never used again in this process.
    distrusted: std::sync::atomic::AtomicBool,
    /// Moves at every `start` and `stop`: a batch that began in the same recording as it is
    /// filed in was recorded whole.
    recording: std::sync::atomic::AtomicU64,
    state: std::sync::Mutex<LogState>,
}

#[derive(Default)]
struct LogState {
    /// Table names, in the order first seen (the rows hold their index).
    tables: Vec<Box<str>>,
    /// Reported since the last filing: (table, row).
    pending: Vec<(u16, Row)>,
    /// The first number the log holds whole (0: none yet).
    first: i64,
    /// The last number filed.
    last: i64,
    /// (number, table, row), in filing order.
    rows: std::collections::VecDeque<(i64, u16, Row)>,
}

/// A changed row as the log names it: by rowid (SQLite's update hook), or by the key its
/// stamp gave (`KEYED_FUNCTION`, for a `WITHOUT ROWID` table).
#[derive(Clone, Debug)]
enum Row {
    Rowid(i64),
    Key(Box<str>),
}

/// The rows some range of numbers changed, per table, each once, sorted: rowids, and the keys
/// of the `KEYED_TABLES`.
#[derive(Debug, Default)]
pub struct ChangedRows {
    /// Per rowid table.
    pub rowids: std::collections::HashMap<String, Vec<i64>>,
    /// Per keyed table.
    pub keys: std::collections::HashMap<String, Vec<String>>,
}

impl ChangeLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Installs the update hook on the writer's connection, and the keyed stamp that also
    /// tells the log a `WITHOUT ROWID` row's key.
    pub(super) fn hook(log: &std::sync::Arc<ChangeLog>, conn: &Connection) -> Result<()> {
        let hooked = std::sync::Arc::clone(log);
        conn.update_hook(Some(
            move |_: rusqlite::hooks::Action, db: &str, table: &str, rowid: i64| {
                if db == "main" {
                    hooked.noted(table, || Row::Rowid(rowid));
                }
            },
        ))?;
        let keyed = std::sync::Arc::clone(log);
        conn.create_scalar_function(KEYED_FUNCTION, 2, flags(), move |ctx| {
            let seq = stamp()?;
            let key = ctx.get_raw(1).as_str()?;
            keyed.noted(ctx.get_raw(0).as_str()?, || Row::Key(key.into()));
            Ok(seq)
        })?;
        Ok(())
    }

    /// A replicator reads the log from now on: the writer records the rows of `tables` (the
    /// others it is told of are not asked for: the journal and the audit log are read by their
    /// keys, the tables left out never).
    pub fn start(&self, tables: &[&str]) {
        if self.distrusted.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        // Emptied first: what it held (a recording never stopped) names the old list's tables.
        self.reset();
        self.lock().tables = tables.iter().map(|&t| t.into()).collect();
        self.recording
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.active.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The log disagreed with a scan: it is stopped and never used again in this process.
    pub fn distrust(&self) {
        self.distrusted
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.stop();
    }

    /// No replicator reads it any more: the writer stops recording and the log is emptied.
    pub fn stop(&self) {
        self.active
            .store(false, std::sync::atomic::Ordering::SeqCst);
        self.recording
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.reset();
    }

    /// At the start of a batch: the recording it begins in, if the log records now (given back
    /// to `file`, it says whether the batch was recorded from its start).
    pub(super) fn begin_batch(&self) -> Option<u64> {
        self.is_active()
            .then(|| self.recording.load(std::sync::atomic::Ordering::SeqCst))
    }

    fn is_active(&self) -> bool {
        self.active.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn noted(&self, table: &str, row: impl FnOnce() -> Row) {
        if !self.is_active() {
            return;
        }
        let mut s = self.lock();
        if let Some(index) = s.tables.iter().position(|t| &**t == table) {
            s.pending.push((index as u16, row()));
        }
    }

    /// Files what was reported since the last filing under transaction `seq` (about to be
    /// committed), or drops it when the transaction took no number (`seq` is `None`: nothing
    /// it wrote is replicated). `began` is what `begin_batch` said at the batch's start.
    pub(super) fn file(&self, seq: Option<i64>, began: Option<u64>) {
        let mut s = self.lock();
        let Some(seq) = seq.filter(|_| self.is_active()) else {
            s.pending.clear();
            return;
        };
        if s.first == 0 || seq != s.last + 1 {
            // The first filing since the log started, or numbers taken elsewhere: the log
            // starts over, from this batch if it was recorded from its start (it began in this
            // recording), else from the next (recording began in the middle of it).
            s.rows.clear();
            let whole = began.is_some()
                && began == Some(self.recording.load(std::sync::atomic::Ordering::SeqCst));
            if !whole {
                s.pending.clear();
                s.first = seq + 1;
                s.last = seq;
                return;
            }
            s.first = seq;
        }
        s.last = seq;
        let s = &mut *s;
        s.rows.extend(s.pending.drain(..).map(|(t, r)| (seq, t, r)));
        while s.rows.len() > crate::limits::CHANGE_LOG_ROWS_MAX {
            if let Some((dropped, _, _)) = s.rows.pop_front() {
                s.first = s.first.max(dropped + 1);
            }
        }
    }

    /// A batch failed and was rolled back: its number will be taken again by the next, which
    /// may write other rows; the log starts over.
    pub(super) fn reset(&self) {
        let mut s = self.lock();
        s.pending.clear();
        s.rows.clear();
        s.first = 0;
        s.last = 0;
    }

    /// The rows changed by transactions `after + 1 ..= upto`, if the log saw them all.
    pub fn changed(&self, after: i64, upto: i64) -> Option<ChangedRows> {
        // Under the lock (the writer waits for it), only the copy; the rest after.
        let (names, by_table) = {
            let s = self.lock();
            if s.first == 0 || s.first > after + 1 || s.last < upto {
                return None;
            }
            let mut by_table: Vec<Vec<Row>> = vec![Vec::new(); s.tables.len()];
            for (seq, table, row) in s.rows.iter().rev() {
                if *seq <= after {
                    break;
                }
                if *seq <= upto {
                    by_table[*table as usize].push(row.clone());
                }
            }
            (s.tables.clone(), by_table)
        };
        let mut changed = ChangedRows::default();
        for (name, rows) in names.iter().zip(by_table) {
            if keyed(name).is_some() {
                let mut keys: Vec<String> = rows
                    .into_iter()
                    .filter_map(|r| match r {
                        Row::Key(k) => Some(k.into()),
                        Row::Rowid(_) => None,
                    })
                    .collect();
                keys.sort_unstable();
                keys.dedup();
                changed.keys.insert(name.to_string(), keys);
            } else {
                let mut rowids: Vec<i64> = rows
                    .into_iter()
                    .filter_map(|r| match r {
                        Row::Rowid(id) => Some(id),
                        Row::Key(_) => None,
                    })
                    .collect();
                rowids.sort_unstable();
                rowids.dedup();
                changed.rowids.insert(name.to_string(), rowids);
            }
        }
        Some(changed)
    }

    /// Forgets the rows of transactions up to `seq` (the replica holds them).
    pub fn forget_through(&self, seq: i64) {
        let mut s = self.lock();
        while s.rows.front().is_some_and(|(n, _, _)| *n <= seq) {
            s.rows.pop_front();
        }
        if s.first != 0 && s.first <= seq {
            s.first = seq + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn every_keyed_table_is_without_rowid_and_named_by_the_first_column_of_its_key() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::migrate(&mut conn).unwrap();
        for (table, key) in KEYED_TABLES {
            let without_rowid: bool = conn
                .query_row(
                    "SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?1",
                    [table],
                    |r| r.get(0),
                )
                .unwrap();
            assert!(without_rowid, "{table} is a rowid table");
            let first: String = conn
                .query_row(
                    "SELECT name FROM pragma_table_info(?1) WHERE pk = 1",
                    [table],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(first, *key, "{table}");
        }
        // Every other replicated WITHOUT ROWID table is scanned at every cycle: only
        // `state_counts`, a row per state (kept by triggers), may be.
        let unkeyed: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_list WHERE schema = 'main' AND wr")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<Vec<String>>>()
            .unwrap()
            .into_iter()
            .filter(|t| {
                keyed(t).is_none() && crate::replicate::source::is_stamped(t) && t != "state_counts"
            })
            .collect();
        assert!(unkeyed.is_empty(), "{unkeyed:?}");
    }

    fn fixture() -> (Connection, Arc<ChangeLog>) {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER);
             CREATE TABLE w (k TEXT PRIMARY KEY, v INTEGER) WITHOUT ROWID;
             CREATE TABLE u (id INTEGER PRIMARY KEY);",
        )
        .unwrap();
        let log = Arc::new(ChangeLog::default());
        ChangeLog::hook(&log, &conn).unwrap();
        (conn, log)
    }

    fn listed(log: &ChangeLog, after: i64, upto: i64) -> Option<Vec<(String, Vec<i64>)>> {
        log.changed(after, upto).map(|m| {
            let mut v: Vec<_> = m
                .rowids
                .into_iter()
                .filter(|(_, rows)| !rows.is_empty())
                .collect();
            v.sort();
            v
        })
    }

    #[test]
    fn a_keyed_table_is_listed_by_the_keys_its_stamps_name() {
        let (conn, log) = fixture();
        conn.execute_batch(
            "CREATE TABLE daily_spend (escrow_id TEXT NOT NULL, day TEXT NOT NULL, v INTEGER,
             change_seq INTEGER, PRIMARY KEY (escrow_id, day)) WITHOUT ROWID;",
        )
        .unwrap();
        log.start(&["t", "daily_spend"]);
        let batch = |seq: i64, sql: &str| {
            CURRENT.with(|c| c.set((seq, false)));
            let began = log.begin_batch();
            conn.execute_batch(sql).unwrap();
            log.file(Some(seq), began);
            CURRENT.with(|c| c.set((0, false)));
        };
        batch(
            1,
            "INSERT INTO daily_spend VALUES ('e2', 'd1', 1, remit_change_seq_of('daily_spend', 'e2'));
             INSERT INTO daily_spend VALUES ('e1', 'd1', 1, remit_change_seq_of('daily_spend', 'e1'));
             UPDATE daily_spend SET v = 2, change_seq = remit_change_seq_of('daily_spend', escrow_id)
             WHERE escrow_id = 'e2';
             INSERT INTO t (id, v) VALUES (3, 0);",
        );
        let changed = log.changed(0, 1).unwrap();
        assert_eq!(changed.keys["daily_spend"], vec!["e1", "e2"]);
        assert_eq!(changed.rowids["t"], vec![3]);
        assert!(!changed.rowids.contains_key("daily_spend"));
        batch(
            2,
            "UPDATE daily_spend SET v = 3, change_seq = remit_change_seq_of('daily_spend', escrow_id)
             WHERE escrow_id = 'e1';",
        );
        assert_eq!(log.changed(1, 2).unwrap().keys["daily_spend"], vec!["e1"]);
        log.forget_through(1);
        assert!(log.changed(0, 2).is_none());
        assert_eq!(log.changed(1, 2).unwrap().keys["daily_spend"], vec!["e1"]);
        // Outside a numbered transaction the keyed stamp refuses, as the plain one does.
        assert!(conn
            .execute_batch(
                "UPDATE daily_spend SET change_seq = remit_change_seq_of('daily_spend', escrow_id)"
            )
            .is_err());
    }

    #[test]
    fn the_log_answers_only_for_numbers_it_saw_whole() {
        let (conn, log) = fixture();
        conn.execute("INSERT INTO t (id, v) VALUES (1, 0)", [])
            .unwrap();
        log.file(Some(1), None);
        assert_eq!(listed(&log, 0, 1), None, "nothing recorded before start");

        log.start(&["t"]);
        // The batch during which recording began may be partial: not answered for.
        conn.execute("INSERT INTO t (id, v) VALUES (2, 0)", [])
            .unwrap();
        log.file(Some(2), None);
        assert_eq!(listed(&log, 1, 2), None);
        assert_eq!(listed(&log, 2, 2), Some(vec![]));

        // Whole batches: every row of a table asked for, sorted, each once; WITHOUT ROWID
        // tables unseen, other tables not kept.
        conn.execute_batch(
            "UPDATE t SET v = 1 WHERE id = 2; INSERT INTO t (id, v) VALUES (9, 0);
             INSERT INTO w (k, v) VALUES ('a', 1); UPDATE t SET v = 2 WHERE id = 2;
             INSERT INTO u (id) VALUES (5);",
        )
        .unwrap();
        log.file(Some(3), None);
        conn.execute("UPDATE t SET v = 3 WHERE id = 1", []).unwrap();
        log.file(Some(4), None);
        assert_eq!(
            listed(&log, 2, 4),
            Some(vec![("t".to_string(), vec![1, 2, 9])])
        );
        assert_eq!(listed(&log, 3, 4), Some(vec![("t".to_string(), vec![1])]));
        assert_eq!(
            listed(&log, 2, 3),
            Some(vec![("t".to_string(), vec![2, 9])])
        );
        assert_eq!(listed(&log, 2, 5), None, "not filed yet");
        assert_eq!(listed(&log, 1, 4), None, "before the log");

        // A batch that took no number files nothing.
        conn.execute("UPDATE t SET v = 4 WHERE id = 9", []).unwrap();
        log.file(None, None);
        conn.execute("UPDATE t SET v = 5 WHERE id = 1", []).unwrap();
        log.file(Some(5), None);
        assert_eq!(listed(&log, 4, 5), Some(vec![("t".to_string(), vec![1])]));

        // A number taken elsewhere (a gap): answered again only after it.
        conn.execute("UPDATE t SET v = 6 WHERE id = 1", []).unwrap();
        log.file(Some(7), None);
        assert_eq!(listed(&log, 4, 7), None);
        assert_eq!(listed(&log, 6, 7), None);
        conn.execute("UPDATE t SET v = 7 WHERE id = 2", []).unwrap();
        log.file(Some(8), None);
        assert_eq!(listed(&log, 7, 8), Some(vec![("t".to_string(), vec![2])]));

        // What the replica holds is forgotten; the log answers from after it.
        log.forget_through(7);
        assert_eq!(listed(&log, 6, 8), None);
        assert_eq!(listed(&log, 7, 8), Some(vec![("t".to_string(), vec![2])]));

        // A failed batch starts the log over.
        conn.execute("UPDATE t SET v = 8 WHERE id = 9", []).unwrap();
        log.reset();
        log.file(Some(9), None);
        assert_eq!(listed(&log, 8, 9), None);

        // Stopped: nothing recorded, nothing answered.
        log.stop();
        conn.execute("UPDATE t SET v = 9 WHERE id = 9", []).unwrap();
        log.file(Some(10), None);
        log.file(Some(11), None);
        assert_eq!(listed(&log, 10, 11), None);

        // A batch that began after recording started was recorded whole: answered from it.
        log.start(&["t"]);
        let began = log.begin_batch();
        conn.execute("UPDATE t SET v = 11 WHERE id = 1", [])
            .unwrap();
        log.file(Some(20), began);
        assert_eq!(listed(&log, 19, 20), Some(vec![("t".to_string(), vec![1])]));
        // One that began before a stop and a start was not.
        let began = log.begin_batch();
        log.stop();
        log.start(&["t"]);
        conn.execute("UPDATE t SET v = 12 WHERE id = 2", [])
            .unwrap();
        log.file(Some(21), began);
        assert_eq!(listed(&log, 20, 21), None);
        assert_eq!(listed(&log, 21, 21), Some(vec![]));
        // Nor one that began before recording did (the log was stopped).
        log.stop();
        let began = log.begin_batch();
        log.start(&["t"]);
        conn.execute("UPDATE t SET v = 13 WHERE id = 2", [])
            .unwrap();
        log.file(Some(22), began);
        assert_eq!(listed(&log, 21, 22), None);

        // Found wrong once: never started again.
        log.start(&["t"]);
        log.file(Some(12), None);
        assert_eq!(listed(&log, 12, 12), Some(vec![]));
        log.distrust();
        log.start(&["t"]);
        log.file(Some(13), None);
        conn.execute("UPDATE t SET v = 10 WHERE id = 9", [])
            .unwrap();
        log.file(Some(14), None);
        assert_eq!(listed(&log, 13, 14), None);
    }
}
