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

/// Registers `remit_change_seq()` on a read-write connection.
pub(super) fn register(conn: &Connection) -> rusqlite::Result<()> {
    conn.create_scalar_function(
        FUNCTION,
        0,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DIRECTONLY,
        |_| {
            let (seq, _) = CURRENT.with(Cell::get);
            if seq > 0 {
                CURRENT.with(|c| c.set((seq, true)));
                Ok(seq)
            } else {
                Err(rusqlite::Error::UserFunctionError(
                    "a replicated table was written outside a numbered transaction (store::changes::begin)".into(),
                ))
            }
        },
    )
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
    /// writes nothing, as before).
    pub fn finish(&self, conn: &Connection) -> Result<()> {
        let (seq, used) = CURRENT.with(Cell::get);
        if used && seq == self.seq {
            conn.prepare_cached(
                "UPDATE meta SET change_seq = ?1, value = CAST(?1 AS TEXT) WHERE key = 'change_seq'",
            )?
            .execute([seq])?;
        }
        Ok(())
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
