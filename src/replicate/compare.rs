//! `remit check --postgres` beside the ledger's own file: the replica's rows against the file's,
//! table by table, both read in key order and walked together (memory does not grow with the
//! ledger). The replica holds the file as it was at its position: a stamped row the file
//! changed after that position is newer in the file and not compared, an appended row past the
//! position's keys is not there yet; every other row must be in both, with the same values. A
//! replica edited by hand (a row deleted, a role or an amount changed) or one that holds
//! another history (a file restored from an older backup) is said row by row.

use super::source::{self, Cell, ColumnType, Kind, Position, Shape};
use crate::error::{Error, Result};
use postgres::fallible_iterator::FallibleIterator;
use postgres::Transaction;
use rusqlite::Connection;
use std::cmp::Ordering;

/// The most rows said per table; the rest are counted.
const SAID_PER_TABLE: usize = 10;

/// What the comparison found: one line of what was compared, and each difference.
pub struct Compared {
    /// `the replica's rows are the file's …: N rows of M tables compared …`.
    pub check: String,
    /// One sentence per row that differs (at most `SAID_PER_TABLE` per table, then a count).
    pub mismatches: Vec<String>,
}

/// Compares every replicated table of the replica (in `schema`, read in `tx`) with the file
/// (read in one snapshot on `file`), up to the replica's `position`.
pub fn compare(
    tx: &mut Transaction<'_>,
    schema: &str,
    file: &Connection,
    shapes: &[Shape],
    position: &Position,
) -> Result<Compared> {
    let snapshot = file.unchecked_transaction()?;
    let (mut compared, mut newer) = (0u64, 0u64);
    let mut mismatches = Vec::new();
    for shape in shapes {
        let found = compare_table(tx, schema, &snapshot, shape, position)?;
        compared += found.compared;
        newer += found.newer;
        let more = found.differences.len().saturating_sub(SAID_PER_TABLE);
        mismatches.extend(found.differences.into_iter().take(SAID_PER_TABLE));
        if more > 0 {
            mismatches.push(format!(
                "{more} more rows of {} differ between the replica and the file",
                shape.table.name
            ));
        }
    }
    snapshot.finish()?;
    Ok(Compared {
        check: format!(
            "the replica's rows against the file's, up to change {}: {compared} rows of {} tables compared ({newer} changed or added in the file since, not yet replicated)",
            position.change_seq,
            shapes.len()
        ),
        mismatches,
    })
}

struct TableFound {
    compared: u64,
    newer: u64,
    differences: Vec<String>,
}

/// Is the row past the replica's position: a stamped row stamped after its change, an appended
/// row past its key?
fn past_position(shape: &Shape, position: &Position, row: &[Cell]) -> bool {
    match shape.table.kind {
        Kind::Stamped => source::stamp_of(shape, row).is_some_and(|seq| seq > position.change_seq),
        Kind::Appended { key } => shape
            .columns
            .iter()
            .position(|c| c.name == key)
            .and_then(|i| row.get(i))
            .is_some_and(|k| matches!(k, Cell::Int(k) if *k > position.key_of(shape.table.name))),
    }
}

fn compare_table(
    tx: &mut Transaction<'_>,
    schema: &str,
    file: &Connection,
    shape: &Shape,
    position: &Position,
) -> Result<TableFound> {
    let name = shape.table.name;
    let key_at = shape.key_positions();
    if key_at.is_empty() {
        return Err(Error::internal(format!("{name} has no primary key")));
    }
    // Both sides in the same order: SQLite compares text by its bytes, PostgreSQL by its
    // collation unless told "C" (bytes).
    let order = |pg: bool| -> String {
        key_at
            .iter()
            .map(|i| {
                let column = &shape.columns[*i];
                let quoted = source::quote(&column.name);
                if pg && column.ty == ColumnType::Text {
                    format!("{quoted} COLLATE \"C\"")
                } else {
                    quoted
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut file_stmt = file.prepare(&format!(
        "SELECT {} FROM {} ORDER BY {}",
        shape.column_list(),
        source::quote(name),
        order(false)
    ))?;
    let mut file_rows = file_stmt.query([])?;
    let mut replica_rows = tx
        .query_raw(
            &format!(
                "SELECT {} FROM {schema}.{} ORDER BY {}",
                shape.column_list(),
                source::quote(name),
                order(true)
            ),
            std::iter::empty::<i64>(),
        )
        .map_err(|e| super::postgres::pg_error(&format!("cannot read the replica's {name}"), &e))?;
    let mut next_file = || -> Result<Option<Vec<Cell>>> {
        match file_rows.next()? {
            Some(row) => Ok(Some(source::cells(shape, row)?)),
            None => Ok(None),
        }
    };
    let mut next_replica = || -> Result<Option<Vec<Cell>>> {
        match replica_rows.next().map_err(|e| {
            super::postgres::pg_error(&format!("cannot read the replica's {name}"), &e)
        })? {
            Some(row) => Ok(Some(replica_cells(shape, &row)?)),
            None => Ok(None),
        }
    };
    let key_of = |row: &[Cell]| -> Vec<Cell> { key_at.iter().map(|i| row[*i].clone()).collect() };
    let said_key = |row: &[Cell]| -> String {
        let key: Vec<serde_json::Value> = key_of(row).iter().map(Cell::to_json).collect();
        serde_json::Value::Array(key).to_string()
    };
    let mut found = TableFound {
        compared: 0,
        newer: 0,
        differences: Vec::new(),
    };
    let (mut in_file, mut in_replica) = (next_file()?, next_replica()?);
    loop {
        let order = match (&in_file, &in_replica) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(f), Some(r)) => compare_keys(&key_of(f), &key_of(r)),
        };
        match order {
            Ordering::Less => {
                let row = in_file.take().unwrap_or_default();
                if past_position(shape, position, &row) {
                    found.newer += 1;
                } else {
                    found.differences.push(format!(
                        "row {} of {name} is in the file but not in the replica",
                        said_key(&row)
                    ));
                }
                in_file = next_file()?;
            }
            Ordering::Greater => {
                let row = in_replica.take().unwrap_or_default();
                // `remit restore --done` deletes the payouts' hold from `meta`: the replica
                // keeps it (rows are not deleted there).
                let hold = name == "meta"
                    && row.first() == Some(&Cell::Text(crate::ops::RESTORE_HOLD_KEY.into()));
                if !hold {
                    found.differences.push(format!(
                        "row {} of {name} is in the replica but not in the file",
                        said_key(&row)
                    ));
                }
                in_replica = next_replica()?;
            }
            Ordering::Equal => {
                let (f, r) = (
                    in_file.take().unwrap_or_default(),
                    in_replica.take().unwrap_or_default(),
                );
                if past_position(shape, position, &r) {
                    // The replica holds a row its position does not cover: the position was
                    // moved back by hand (replication would write the rows after it again).
                    found.differences.push(format!(
                        "row {} of {name} in the replica is stamped after the replica's position (change {})",
                        said_key(&r),
                        position.change_seq
                    ));
                } else if past_position(shape, position, &f) {
                    found.newer += 1;
                } else {
                    found.compared += 1;
                    let differing: Vec<&str> = shape
                        .columns
                        .iter()
                        .zip(f.iter().zip(&r))
                        .filter(|(_, (a, b))| a != b)
                        .map(|(c, _)| c.name.as_str())
                        .collect();
                    if !differing.is_empty() {
                        found.differences.push(format!(
                            "row {} of {name} differs from the file's in {}",
                            said_key(&f),
                            differing.join(", ")
                        ));
                    }
                }
                in_file = next_file()?;
                in_replica = next_replica()?;
            }
        }
    }
    Ok(found)
}

/// Keys in the order both sides are read in: SQLite's (NULL, integers, text by its bytes,
/// blobs by theirs), which PostgreSQL's "C" collation and `bytea` follow.
fn compare_keys(a: &[Cell], b: &[Cell]) -> Ordering {
    fn rank(c: &Cell) -> u8 {
        match c {
            Cell::Null => 0,
            Cell::Int(_) => 1,
            Cell::Text(_) => 2,
            Cell::Blob(_) => 3,
        }
    }
    for (x, y) in a.iter().zip(b) {
        let order = match (x, y) {
            (Cell::Int(x), Cell::Int(y)) => x.cmp(y),
            (Cell::Text(x), Cell::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
            (Cell::Blob(x), Cell::Blob(y)) => x.cmp(y),
            _ => rank(x).cmp(&rank(y)),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

/// A replica row's values as the file's would be (`bigint` an integer, `text` text, `bytea`
/// bytes).
fn replica_cells(shape: &Shape, row: &postgres::Row) -> Result<Vec<Cell>> {
    shape
        .columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let cell = match column.ty {
                ColumnType::Integer => row.try_get::<_, Option<i64>>(i).map(|v| v.map(Cell::Int)),
                ColumnType::Text => row
                    .try_get::<_, Option<String>>(i)
                    .map(|v| v.map(Cell::Text)),
                ColumnType::Blob => row
                    .try_get::<_, Option<Vec<u8>>>(i)
                    .map(|v| v.map(Cell::Blob)),
            };
            cell.map(|v| v.unwrap_or(Cell::Null)).map_err(|e| {
                Error::internal(format!(
                    "the replica's {}.{} is not of the file's type: {e}",
                    shape.table.name, column.name
                ))
            })
        })
        .collect()
}
