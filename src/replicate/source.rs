//! The SQLite side of replication: which tables are copied and how their changes are found,
//! their shape (columns, primary key, the `CREATE TABLE` the replica is made from), and the
//! rows changed since a position, read on a read-only connection in one snapshot.

use crate::error::{Error, Result};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{params, Connection, OptionalExtension};

/// How a table's changes are found.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Rows are inserted and updated, each stamped with its transaction's number
    /// (`change_seq`); the changed rows are those stamped after the position.
    Stamped,
    /// Append-only (triggers forbid UPDATE and DELETE): the new rows are those whose integer
    /// key is above the position, as SQLite hands out keys in commit order.
    Appended {
        /// The `INTEGER PRIMARY KEY`.
        key: &'static str,
    },
}

/// A replicated table.
#[derive(Copy, Clone, Debug)]
pub struct Table {
    /// Its name, the same on both sides.
    pub name: &'static str,
    /// How its changes are found.
    pub kind: Kind,
}

/// Every replicated table. The file's other tables are left out on purpose (`LEFT_OUT`).
pub const TABLES: &[Table] = &[
    Table {
        name: "meta",
        kind: Kind::Stamped,
    },
    Table {
        name: "users",
        kind: Kind::Stamped,
    },
    Table {
        name: "escrows",
        kind: Kind::Stamped,
    },
    Table {
        name: "spending_categories",
        kind: Kind::Stamped,
    },
    Table {
        name: "daily_spend",
        kind: Kind::Stamped,
    },
    Table {
        name: "fx_rates",
        kind: Kind::Stamped,
    },
    Table {
        name: "payment_requests",
        kind: Kind::Stamped,
    },
    Table {
        name: "payouts",
        kind: Kind::Stamped,
    },
    Table {
        name: "deposits",
        kind: Kind::Stamped,
    },
    Table {
        name: "audit_keys",
        kind: Kind::Stamped,
    },
    Table {
        name: "webhook_events",
        kind: Kind::Stamped,
    },
    Table {
        name: "daraja_queries",
        kind: Kind::Stamped,
    },
    Table {
        name: "mpesa_balances",
        kind: Kind::Stamped,
    },
    Table {
        name: "state_counts",
        kind: Kind::Stamped,
    },
    Table {
        name: "ledger_transactions",
        kind: Kind::Appended { key: "id" },
    },
    Table {
        name: "ledger_entries",
        kind: Kind::Appended { key: "id" },
    },
    Table {
        name: "audit_log",
        kind: Kind::Appended { key: "seq" },
    },
];

/// The tables that are not replicated, on purpose; a test holds every table of the file to
/// `TABLES` or this list, so that a new table is one or the other by decision.
/// - `api_tokens`: credentials: a hash of every bearer token has no business on another
///   machine.
/// - `idempotency_keys`: a 48-hour cache of encrypted answers, forgotten hourly: transport, not
///   ledger.
/// - `outbox_events`, `outbox_positions`, `webhook_endpoints`, `webhook_deliveries`,
///   `webhook_attempts`, `sms_messages`: notifications, transport, not ledger. An event only
///   tells of a change whose rows are replicated already (with its audit line); what became of
///   it (deliveries, their attempts, text messages) is the notifier's bookkeeping, written many
///   times per change, and an endpoint holds the secret its deliveries are signed with.
pub const LEFT_OUT: &[&str] = &[
    "api_tokens",
    "idempotency_keys",
    "outbox_events",
    "outbox_positions",
    "webhook_endpoints",
    "webhook_deliveries",
    "webhook_attempts",
    "sms_messages",
];

/// Schema versions whose migration changes no shape a replica takes: only tables in
/// `LEFT_OUT`, indexes of the others that a replica does without (`REPLICA_INDEXES`), or rows
/// it stamps (which reach a replica as any change does). A replica made at the version before
/// has the same tables as one made at this version, so it is not made again (a test holds
/// each listed migration's schema to it; the rows are the migration's to stamp). Schema 14 indexes webhook
/// deliveries by their event; 17 seals their endpoints' URLs; 19 gives each endpoint the
/// outbox's place when it was made; 20 marks a text being sent (until 2026-12-07 not listed:
/// a replica made at 19 was copied again whole at the upgrade); 21 indexes an endpoint's
/// failed deliveries and keeps idempotency keys in the order they came; 22 indexes requests,
/// a sender's escrows and texts by their status; 24 changes no table's shape, only words in
/// payouts' rows, which it stamps (they reach a replica as any change does).
pub const MIGRATIONS_LEFT_OUT: &[u32] = &[14, 17, 19, 20, 21, 22, 24];

/// Whether a replica made at schema `from` needs to be made again for a file at schema `to`:
/// unless every migration in between changed only tables replication leaves out.
pub fn replica_outdated(from: u32, to: u32) -> bool {
    from != to && !(from < to && (from + 1..=to).all(|v| MIGRATIONS_LEFT_OUT.contains(&v)))
}

/// Is `table` replicated with its rows stamped (`Kind::Stamped`)? Only such a table has a
/// `change_seq` column to stamp.
pub fn is_stamped(table: &str) -> bool {
    TABLES
        .iter()
        .any(|t| t.name == table && t.kind == Kind::Stamped)
}

/// The storage class of a column (tables are `STRICT`, so every value has its column's).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ColumnType {
    /// `INTEGER`: `bigint` in PostgreSQL.
    Integer,
    /// `TEXT`: `text`.
    Text,
    /// `BLOB`: `bytea`.
    Blob,
}

/// A column of a replicated table.
#[derive(Clone, Debug)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its type.
    pub ty: ColumnType,
    /// Its place in the primary key (1-based), 0 when it is not part of it.
    pub pk: u32,
}

/// A replicated table as the file defines it now.
#[derive(Clone, Debug)]
pub struct Shape {
    /// The table.
    pub table: Table,
    /// Its columns, in order.
    pub columns: Vec<Column>,
    /// Its `CREATE TABLE` statement.
    pub create: String,
    /// The `CREATE INDEX` statements the replica takes (`REPLICA_INDEXES`).
    pub indexes: Vec<String>,
    /// A rowid table (not `WITHOUT ROWID`): the change log can name its changed rows.
    pub rowid: bool,
}

impl Shape {
    /// The primary key's columns, in key order.
    pub fn key(&self) -> Vec<&str> {
        self.key_positions()
            .into_iter()
            .map(|i| self.columns[i].name.as_str())
            .collect()
    }

    /// Where the primary key's columns are among the columns (a row's cells), in key order.
    pub fn key_positions(&self) -> Vec<usize> {
        let mut key: Vec<usize> = (0..self.columns.len())
            .filter(|i| self.columns[*i].pk > 0)
            .collect();
        key.sort_by_key(|i| self.columns[*i].pk);
        key
    }

    /// Can the change log list this table's changed rows: a stamped table, by rowid, or by
    /// key when its statements name it (`store::changes::KEYED_TABLES`)?
    pub fn listable(&self) -> bool {
        self.table.kind == Kind::Stamped
            && (self.rowid || crate::store::changes::keyed(self.table.name).is_some())
    }

    /// The column list, quoted: `"id", "status", …`.
    pub fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| quote(&c.name))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `"name"`: an identifier quoted for either database (our names never hold a quote).
pub fn quote(name: &str) -> String {
    format!("\"{name}\"")
}

/// The indexes of a table (`?1`) that its replica takes: every unique one (a constraint, like
/// the keys and the `CHECK`s), and every other that finds rows by what does not change (an
/// escrow's requests, a transaction's entries, an entity's audit lines). Not the file's work
/// queues: a partial index picks the rows the server still has to work through (waiting
/// requests, payouts due for a status query, flagged rows), an index with a `status` orders
/// them by where they stand (led by it, or after an owner: a sender's escrows of a status).
/// (One partial index is a lookup, not a queue: `daraja_queries_payout`, the status queries of
/// a payout; a replica does without it too, those rows are few.) Nobody works those queues on
/// a replica, and a status in an index,
/// even in its `WHERE`, makes PostgreSQL write a new entry in every index of the row at each
/// change of status (an update that changes an indexed column cannot be a HOT update).
const REPLICA_INDEXES: &str = "SELECT m.sql FROM sqlite_master m
     JOIN pragma_index_list(?1) l ON l.name = m.name
     WHERE m.type = 'index' AND m.sql IS NOT NULL
     AND (l.\"unique\" OR (NOT l.partial
          AND NOT EXISTS (SELECT 1 FROM pragma_index_info(m.name) i WHERE i.name = 'status')))
     ORDER BY m.name";

/// Reads the shape of every replicated table from the file.
pub fn shapes(conn: &Connection) -> Result<Vec<Shape>> {
    TABLES
        .iter()
        .map(|table| {
            let create: String = conn
                .query_row(
                    "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1",
                    [table.name],
                    |r| r.get(0),
                )
                .optional()?
                .ok_or_else(|| {
                    Error::internal(format!("the database has no table {}", table.name))
                })?;
            let indexes: Vec<String> = conn
                .prepare(REPLICA_INDEXES)?
                .query_map([table.name], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut stmt = conn.prepare(&format!("PRAGMA table_info({})", quote(table.name)))?;
            let columns = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>("name")?,
                        r.get::<_, String>("type")?,
                        r.get::<_, u32>("pk")?,
                    ))
                })?
                .map(|row| {
                    let (name, ty, pk) = row?;
                    let ty = match ty.to_ascii_uppercase().as_str() {
                        "INTEGER" => ColumnType::Integer,
                        "TEXT" => ColumnType::Text,
                        "BLOB" => ColumnType::Blob,
                        other => {
                            return Err(Error::internal(format!(
                                "{}.{name} has type {other}, which replication does not know",
                                table.name
                            )))
                        }
                    };
                    Ok(Column { name, ty, pk })
                })
                .collect::<Result<Vec<_>>>()?;
            let without_rowid: bool = conn.query_row(
                "SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?1",
                [table.name],
                |r| r.get(0),
            )?;
            if let Kind::Stamped = table.kind {
                if !columns.iter().any(|c| c.name == "change_seq") {
                    return Err(Error::internal(format!(
                        "{} has no change_seq column",
                        table.name
                    )));
                }
            }
            Ok(Shape {
                table: *table,
                columns,
                create,
                indexes,
                rowid: !without_rowid,
            })
        })
        .collect()
}

/// A value read from the file.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// `NULL`.
    Null,
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

/// A value of the file looked up again in the file (a key).
impl rusqlite::ToSql for Cell {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::Borrowed(match self {
            Cell::Null => ValueRef::Null,
            Cell::Int(v) => ValueRef::Integer(*v),
            Cell::Text(t) => ValueRef::Text(t.as_bytes()),
            Cell::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

/// How far a replica has come: everything up to these numbers is in it, nothing after.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Position {
    /// The last transaction number whose stamped rows are in the replica (-1: none yet).
    pub change_seq: i64,
    /// The last journal transaction (`ledger_transactions.id`).
    pub journal_transaction_id: i64,
    /// The last journal entry (`ledger_entries.id`).
    pub journal_entry_id: i64,
    /// The last audit line (`audit_log.seq`).
    pub audit_seq: i64,
    /// That line's MAC: the file must still hold the same line (else it is not the history
    /// the replica holds: a restored backup, or a copy of another kiosk's file).
    pub audit_mac: Option<Vec<u8>>,
}

impl Position {
    /// Before the first copy.
    pub fn start() -> Position {
        Position {
            change_seq: -1,
            ..Position::default()
        }
    }

    /// The position of an appended table's key.
    pub(crate) fn key_of(&self, table: &str) -> i64 {
        match table {
            "ledger_transactions" => self.journal_transaction_id,
            "ledger_entries" => self.journal_entry_id,
            _ => self.audit_seq,
        }
    }
}

/// The position of a snapshot of the file: everything it holds. Run inside the read
/// transaction the rows are read in.
pub fn snapshot_position(conn: &Connection) -> Result<Position> {
    let max = |sql: &str| -> Result<i64> { Ok(conn.query_row(sql, [], |r| r.get(0))?) };
    let audit_seq = max("SELECT COALESCE(MAX(seq), 0) FROM audit_log")?;
    Ok(Position {
        change_seq: crate::store::changes::committed(conn)?,
        journal_transaction_id: max("SELECT COALESCE(MAX(id), 0) FROM ledger_transactions")?,
        journal_entry_id: max("SELECT COALESCE(MAX(id), 0) FROM ledger_entries")?,
        audit_seq,
        audit_mac: audit_mac(conn, audit_seq)?,
    })
}

/// The MAC of audit line `seq` in the file, if it has it.
pub fn audit_mac(conn: &Connection, seq: i64) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .prepare_cached("SELECT mac FROM audit_log WHERE seq = ?1")?
        .query_row([seq], |r| r.get(0))
        .optional()?)
}

/// Refuses to continue a replica whose history the file does not share: the file is behind it
/// (restored from an older backup) or holds other lines (another kiosk's copy).
pub fn same_history(conn: &Connection, replica: &Position, file: &Position) -> Result<()> {
    let how = if file.change_seq < replica.change_seq {
        format!(
            "it holds changes up to {}, the file up to {}",
            replica.change_seq, file.change_seq
        )
    } else if file.journal_transaction_id < replica.journal_transaction_id
        || file.journal_entry_id < replica.journal_entry_id
    {
        format!(
            "its journal goes to transaction {}, the file's to {}",
            replica.journal_transaction_id, file.journal_transaction_id
        )
    } else if file.audit_seq < replica.audit_seq {
        format!(
            "its audit line {} is past the file's end",
            replica.audit_seq
        )
    } else if replica.audit_seq > 0
        && audit_mac(conn, replica.audit_seq)?.as_deref() != replica.audit_mac.as_deref()
    {
        format!(
            "its audit line {} differs from the file's",
            replica.audit_seq
        )
    } else {
        return Ok(());
    };
    Err(another_history(&how))
}

/// The refusal of a file whose history is not the replica's (`how` says what differs).
pub fn another_history(how: &str) -> Error {
    Error::internal(format!(
        "the replica holds a history this file does not ({how}): the file was restored from an older backup, or it is a copy of the ledger's file that went its own way. Nothing was copied. If this file is the ledger now (a restore), drop its replica (`remit replicate --drop`) and let it be copied again; a copy must not replicate under the ledger's id (README, \"Replication\")"
    ))
}

/// One of the replica's most recently stamped rows, as the control row keeps them: its table,
/// its key, its stamp and a digest of its values. A file that holds each of them, the same or
/// changed since, shares the replica's history; one that holds another row under the key at
/// the same stamp (a copy of the file that went its own way, a restored backup that wrote on),
/// or an older one, or none, does not. The audit line at the position cannot tell
/// them apart when the writes since the split left no audit line (a callback for an unknown
/// payout, an ignored Stripe event: a row of `webhook_events` each).
#[derive(Clone, Debug, PartialEq)]
pub struct NewestRow {
    table: String,
    key: Vec<Cell>,
    change_seq: i64,
    digest: String,
}

/// How many of the replica's most recently stamped rows the control row keeps.
const NEWEST_ROWS_KEPT: usize = 16;

impl Cell {
    pub(crate) fn to_json(&self) -> serde_json::Value {
        match self {
            Cell::Null => serde_json::Value::Null,
            Cell::Int(v) => serde_json::json!(v),
            Cell::Text(t) => serde_json::json!(t),
            Cell::Blob(b) => serde_json::json!({ "hex": crate::crypto::hex(b) }),
        }
    }

    fn from_json(v: &serde_json::Value) -> Option<Cell> {
        match v {
            serde_json::Value::Null => Some(Cell::Null),
            serde_json::Value::Number(n) => n.as_i64().map(Cell::Int),
            serde_json::Value::String(t) => Some(Cell::Text(t.clone())),
            serde_json::Value::Object(o) => o
                .get("hex")
                .and_then(|h| h.as_str())
                .and_then(crate::crypto::unhex)
                .map(Cell::Blob),
            _ => None,
        }
    }
}

/// A digest of a row's values: each tagged and its length given, so that no two rows share
/// one by how their values run together.
fn digest(row: &[Cell]) -> String {
    let mut bytes = Vec::new();
    for cell in row {
        let (tag, body): (u8, &[u8]) = match cell {
            Cell::Null => (0, &[]),
            Cell::Int(v) => {
                bytes.push(1);
                bytes.extend_from_slice(&v.to_be_bytes());
                continue;
            }
            Cell::Text(t) => (2, t.as_bytes()),
            Cell::Blob(b) => (3, b),
        };
        bytes.push(tag);
        bytes.extend_from_slice(&(body.len() as u64).to_be_bytes());
        bytes.extend_from_slice(body);
    }
    crate::crypto::hex(&crate::crypto::sha256(&bytes))
}

/// Keeps the most recently stamped rows among those it is shown (`see`).
#[derive(Default)]
pub struct Newest {
    rows: Vec<NewestRow>,
}

/// A stamped row's change number.
pub(crate) fn stamp_of(shape: &Shape, row: &[Cell]) -> Option<i64> {
    match shape
        .columns
        .iter()
        .position(|c| c.name == "change_seq")
        .and_then(|i| row.get(i))
    {
        Some(Cell::Int(seq)) if shape.table.kind == Kind::Stamped => Some(*seq),
        _ => None,
    }
}

/// Tables with a row stamped by nearly every transaction (the change counter in `meta`, the
/// state counts): restamped in any copy of a file, they would tell no copy from another.
const STAMPED_BY_EVERY_CHANGE: &[&str] = &["meta", "state_counts"];

impl Newest {
    /// The rows a control row keeps, to which the next cycle's are added.
    pub fn from_kept(rows: Vec<NewestRow>) -> Newest {
        let mut newest = Newest { rows };
        newest.rows.sort_by_key(|r| std::cmp::Reverse(r.change_seq));
        newest.rows.truncate(NEWEST_ROWS_KEPT);
        newest
    }

    /// Notes a row of `shape` written to the replica: the replica's most recently stamped rows
    /// are kept (`NEWEST_ROWS_KEPT`, one per key), over as many changes and cycles as they
    /// span, so that rows a copy restamped (and so cannot be compared) do not hide the others.
    pub fn see(&mut self, shape: &Shape, row: &[Cell]) {
        if STAMPED_BY_EVERY_CHANGE.contains(&shape.table.name) {
            return;
        }
        let Some(seq) = stamp_of(shape, row) else {
            return;
        };
        let full = self.rows.len() >= NEWEST_ROWS_KEPT;
        if full
            && self
                .rows
                .last()
                .is_some_and(|oldest| seq <= oldest.change_seq)
        {
            return;
        }
        let key: Vec<Cell> = shape
            .key_positions()
            .into_iter()
            .map(|i| row[i].clone())
            .collect();
        let name = shape.table.name;
        if let Some(at) = self
            .rows
            .iter()
            .position(|r| r.table == name && r.key == key)
        {
            if self.rows[at].change_seq >= seq {
                return;
            }
            self.rows.remove(at);
        }
        let row = NewestRow {
            table: name.to_string(),
            key,
            change_seq: seq,
            digest: digest(row),
        };
        // Newest first.
        let at = self.rows.partition_point(|r| r.change_seq >= seq);
        self.rows.insert(at, row);
        self.rows.truncate(NEWEST_ROWS_KEPT);
    }

    /// The rows kept, as the control row keeps them (`None`: none).
    pub fn text(&self) -> Option<String> {
        (!self.rows.is_empty()).then(|| {
            serde_json::Value::Array(
                self.rows
                    .iter()
                    .map(|r| {
                        serde_json::json!({
                            "table": r.table,
                            "key": r.key.iter().map(Cell::to_json).collect::<Vec<_>>(),
                            "changeSeq": r.change_seq,
                            "digest": r.digest,
                        })
                    })
                    .collect(),
            )
            .to_string()
        })
    }

    /// The rows a control row keeps; `None` for a text that is not theirs.
    pub fn parse(text: &str) -> Option<Vec<NewestRow>> {
        let value: serde_json::Value = serde_json::from_str(text).ok()?;
        value
            .as_array()?
            .iter()
            .map(|r| {
                Some(NewestRow {
                    table: r.get("table")?.as_str()?.to_string(),
                    key: r
                        .get("key")?
                        .as_array()?
                        .iter()
                        .map(Cell::from_json)
                        .collect::<Option<Vec<_>>>()?,
                    change_seq: r.get("changeSeq")?.as_i64()?,
                    digest: r.get("digest")?.as_str()?.to_string(),
                })
            })
            .collect()
    }
}

/// Does the file hold the replica's newest rows (`NewestRow`), each the same or changed since
/// (`by_values` false: at the same stamp or a later one, whatever its values, for a replica of
/// an older schema, whose columns may differ)? `None` when it does; else what differs, in
/// words. (`meta`, from which `remit restore --done` deletes a row, is never among them:
/// `STAMPED_BY_EVERY_CHANGE`.)
pub fn newest_rows_differ(
    conn: &Connection,
    shapes: &[Shape],
    newest: &[NewestRow],
    by_values: bool,
) -> Result<Option<String>> {
    for row in newest {
        let Some(shape) = shapes.iter().find(|s| s.table.name == row.table) else {
            continue;
        };
        let key = shape.key();
        if key.len() != row.key.len() || key.is_empty() {
            continue;
        }
        let filter: Vec<String> = key
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{} = ?{}", quote(c), i + 1))
            .collect();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {} FROM {} WHERE {}",
            shape.column_list(),
            quote(shape.table.name),
            filter.join(" AND ")
        ))?;
        let mut rows = stmt.query(rusqlite::params_from_iter(row.key.iter()))?;
        let found = match rows.next()? {
            Some(r) => Some(cells(shape, r)?),
            None => None,
        };
        let differs = match found {
            None => Some("the file has no such row"),
            Some(cells) => match stamp_of(shape, &cells) {
                Some(seq) if seq > row.change_seq => None,
                Some(seq)
                    if seq == row.change_seq && (!by_values || digest(&cells) == row.digest) =>
                {
                    None
                }
                Some(seq) if seq == row.change_seq => {
                    Some("the file holds other values under its key at the same change")
                }
                _ => Some("the file's row is older"),
            },
        };
        if let Some(how) = differs {
            let key: Vec<serde_json::Value> = row.key.iter().map(Cell::to_json).collect();
            return Ok(Some(format!(
                "the replica's row {} of {} (change {}): {how}",
                serde_json::Value::Array(key),
                row.table,
                row.change_seq
            )));
        }
    }
    Ok(None)
}

/// The rows of a stamped table the change log lists (`store::changes::ChangedRows`).
#[derive(Copy, Clone, Debug)]
pub enum Listed<'a> {
    /// A rowid table's rowids, sorted.
    Rowids(&'a [i64]),
    /// A keyed table's keys (the first column of its primary key), sorted.
    Keys(&'a [String]),
}

/// Feeds every row of `shape` that changed after `since` (and is in this snapshot) to `each`:
/// with `listed`, the rows of a stamped table are looked up by the rowids or keys the change
/// log lists instead of found by a scan; a listed row is fed only if its stamp is after
/// `since`, so a list too long costs lookups, never a wrong row.
pub fn changed_rows(
    conn: &Connection,
    shape: &Shape,
    since: &Position,
    listed: Option<Listed<'_>>,
    each: &mut dyn FnMut(Vec<Cell>) -> Result<()>,
) -> Result<u64> {
    let mut n = 0;
    // Listed rows are looked up by rowid, or by the first column of a keyed table's key.
    let lookups: Option<(String, Vec<&dyn rusqlite::ToSql>)> = match (listed, shape.table.kind) {
        (Some(Listed::Rowids(rowids)), Kind::Stamped) if shape.rowid => Some((
            "rowid".into(),
            rowids.iter().map(|r| r as &dyn rusqlite::ToSql).collect(),
        )),
        (Some(Listed::Keys(keys)), Kind::Stamped) => {
            let key = shape.key();
            let first = key.first().ok_or_else(|| {
                Error::internal(format!("{} has no primary key", shape.table.name))
            })?;
            Some((
                quote(first),
                keys.iter().map(|k| k as &dyn rusqlite::ToSql).collect(),
            ))
        }
        _ => None,
    };
    if let Some((column, values)) = lookups {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {} FROM {} WHERE {column} = ?1 AND change_seq > ?2",
            shape.column_list(),
            quote(shape.table.name)
        ))?;
        for value in values {
            let mut rows = stmt.query(params![value, since.change_seq])?;
            while let Some(row) = rows.next()? {
                each(cells(shape, row)?)?;
                n += 1;
            }
        }
        return Ok(n);
    }
    let (sql, after) = match shape.table.kind {
        Kind::Stamped => (
            format!(
                "SELECT {} FROM {} WHERE change_seq > ?1",
                shape.column_list(),
                quote(shape.table.name)
            ),
            since.change_seq,
        ),
        Kind::Appended { key } => (
            format!(
                "SELECT {} FROM {} WHERE {key} > ?1 ORDER BY {key}",
                shape.column_list(),
                quote(shape.table.name)
            ),
            since.key_of(shape.table.name),
        ),
    };
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![after])?;
    while let Some(row) = rows.next()? {
        each(cells(shape, row)?)?;
        n += 1;
    }
    Ok(n)
}

/// What the check of one slice of a table found (`unlisted_in_slice`).
#[derive(Debug, PartialEq)]
pub struct Slice {
    /// Rows stamped after the position that the change log did not list: each one's rowid,
    /// or the first column of its key.
    pub unlisted: Vec<Value>,
    /// Where the slice ended, for the next to start after (`None`: it reached the table's
    /// end): the last rowid, or the last row's whole key.
    pub until: Option<Vec<Value>>,
}

/// Checks the change log's list of a stamped table (`listed`, sorted: rowids, or the first
/// column of a keyed table's key) against a scan of the next `rows` rows after `after` (the
/// table's start when `None`) in rowid or key order: every row there stamped after `since`
/// must be listed (a listed row that was not changed only costs a lookup). Bounded: it reads
/// at most `rows` rows whatever the table's size. A slice goes by the whole key, so a table
/// whose rows share the key's first column (`daily_spend`: an escrow's days) may end one
/// slice inside an escrow's rows and start the next at the row after.
pub fn unlisted_in_slice(
    conn: &Connection,
    shape: &Shape,
    since: &Position,
    listed: Listed<'_>,
    after: Option<&[Value]>,
    rows: usize,
) -> Result<Slice> {
    let columns: Vec<String> = match listed {
        Listed::Rowids(_) => vec!["rowid".into()],
        Listed::Keys(_) => shape.key().into_iter().map(quote).collect(),
    };
    if columns.is_empty() {
        return Err(Error::internal(format!(
            "{} has no primary key",
            shape.table.name
        )));
    }
    let order = columns.join(", ");
    let n = columns.len();
    // ?1: the stamp; ?2: the slice's length; ?3…: the key the slice starts after.
    let after_clause = match after {
        Some(key) if key.len() == n => {
            let values: Vec<String> = (3..3 + n).map(|i| format!("?{i}")).collect();
            format!("WHERE ({order}) > ({})", values.join(", "))
        }
        Some(_) => {
            return Err(Error::internal(format!(
                "a slice of {} starts after a key of another shape",
                shape.table.name
            )))
        }
        None => String::new(),
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT change_seq > ?1, {order} FROM {} {after_clause} ORDER BY {order} LIMIT ?2",
        quote(shape.table.name)
    ))?;
    let limit = rows as i64;
    let mut values: Vec<&dyn rusqlite::ToSql> = vec![&since.change_seq, &limit];
    if let Some(key) = after {
        values.extend(key.iter().map(|v| v as &dyn rusqlite::ToSql));
    }
    let mut found = stmt.query(values.as_slice())?;
    let (mut unlisted, mut seen, mut last) = (Vec::new(), 0usize, None);
    while let Some(row) = found.next()? {
        let changed: bool = row.get(0)?;
        let key = (1..=n)
            .map(|i| row.get::<_, Value>(i))
            .collect::<rusqlite::Result<Vec<Value>>>()?;
        let is_listed = match (listed, &key[0]) {
            (Listed::Rowids(rowids), Value::Integer(rowid)) => rowids.binary_search(rowid).is_ok(),
            (Listed::Keys(keys), Value::Text(first)) => keys.binary_search(first).is_ok(),
            _ => {
                return Err(Error::internal(format!(
                    "{} has a key the change log cannot name",
                    shape.table.name
                )))
            }
        };
        if changed && !is_listed {
            unlisted.push(key[0].clone());
        }
        seen += 1;
        last = Some(key);
    }
    Ok(Slice {
        unlisted,
        until: last.filter(|_| seen == rows),
    })
}

/// Text as PostgreSQL's `text` can hold it: UTF-8 without the NUL character. SQLite keeps
/// whatever it is given, and a text that reached the file with a NUL (an id or words an
/// outside caller sent: a result posted with the path token, a Stripe event's currency) made
/// every cycle fail on that row, for good. A NUL is sent as U+FFFD, as bytes that are not
/// UTF-8 already were; the comparison reads the file through this too, so both sides agree.
fn replica_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text.into_owned()
    }
}

/// A row's values, in `shape`'s column order.
pub(crate) fn cells(shape: &Shape, row: &rusqlite::Row<'_>) -> Result<Vec<Cell>> {
    (0..shape.columns.len())
        .map(|i| {
            Ok(match row.get_ref(i)? {
                ValueRef::Null => Cell::Null,
                ValueRef::Integer(v) => Cell::Int(v),
                ValueRef::Text(t) => Cell::Text(replica_text(t)),
                ValueRef::Blob(b) => Cell::Blob(b.to_vec()),
                ValueRef::Real(_) => {
                    return Err(Error::internal(format!(
                        "{} holds a real number, which no remit column does",
                        shape.table.name
                    )))
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A migration listed as changing nothing a replica takes changes nothing else of the
    /// schema: every table, trigger and view of the file that is not about a table in
    /// `LEFT_OUT`, and every index of those a replica takes, reads the same before it and after
    /// it. And a replica is made again across any other migration.
    #[test]
    fn a_migration_that_keeps_the_replica_touches_only_what_replication_leaves_out() {
        let kept_schema = |version: u32| -> Vec<(String, String, String)> {
            let conn = crate::store::migrated_in_memory_to(version).unwrap();
            let rows: Vec<(String, String, String)> = conn
                .prepare("SELECT type, name, COALESCE(sql, '') || tbl_name FROM sqlite_schema ORDER BY type, name")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            let tables: Vec<(String, String)> = conn
                .prepare("SELECT name, tbl_name FROM sqlite_schema")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            let mut taken = Vec::new();
            for (_, table) in &tables {
                let mut stmt = conn.prepare(REPLICA_INDEXES).unwrap();
                let sql = stmt.query_map([table], |r| r.get::<_, String>(0)).unwrap();
                taken.extend(sql.map(|s| s.unwrap()));
            }
            rows.into_iter()
                .filter(|(kind, name, sql)| {
                    let on = tables
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, t)| t.as_str());
                    !on.is_some_and(|t| LEFT_OUT.contains(&t))
                        && (kind != "index" || taken.iter().any(|t| sql.starts_with(t.as_str())))
                })
                .collect()
        };
        for &version in MIGRATIONS_LEFT_OUT {
            let (before, after) = (kept_schema(version - 1), kept_schema(version));
            assert!(!before.is_empty());
            assert_eq!(
                before, after,
                "migration {version} changes a replicated table"
            );
        }
        let latest = crate::store::latest_schema_version();
        assert!(!replica_outdated(13, 14) && !replica_outdated(latest, latest));
        assert!(
            replica_outdated(12, 14) && replica_outdated(15, 14) && replica_outdated(1, latest)
        );
    }

    /// The tables the check holds to be append-only are the ones the replica makes append-only,
    /// and each has its two triggers in the file (so that a check's "missing" means dropped).
    #[test]
    fn the_checked_append_only_tables_are_the_replicated_appended_ones_and_the_files() {
        let appended: Vec<&str> = TABLES
            .iter()
            .filter(|t| matches!(t.kind, Kind::Appended { .. }))
            .map(|t| t.name)
            .collect();
        assert_eq!(appended, crate::integrity::APPEND_ONLY);
        let conn = crate::store::migrated_in_memory().unwrap();
        for table in crate::integrity::APPEND_ONLY {
            let guards: i64 = conn
                .query_row(
                    "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = ?1
                     AND sql LIKE '%RAISE(ABORT%' AND (sql LIKE '%BEFORE UPDATE%' OR sql LIKE '%BEFORE DELETE%')",
                    [table],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(guards, 2, "{table}");
        }
    }

    #[test]
    fn a_slice_check_finds_a_changed_row_the_log_did_not_list_and_reads_only_its_slice() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, change_seq INTEGER NOT NULL);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10)
             INSERT INTO t SELECT i, CASE WHEN i % 3 = 0 THEN 7 ELSE 2 END FROM n;",
        )
        .unwrap();
        let shape = Shape {
            table: Table {
                name: "t",
                kind: Kind::Stamped,
            },
            columns: Vec::new(),
            create: String::new(),
            indexes: Vec::new(),
            rowid: true,
        };
        let since = Position {
            change_seq: 5,
            ..Position::start()
        };
        // Rows 3, 6 and 9 changed after the position. A list with all of them (and one more,
        // which only costs a lookup) agrees, slice by slice, and the last slice says so.
        let all = [3, 4, 6, 9];
        let check = |listed: &[i64], after: i64, rows| {
            let after = [Value::Integer(after)];
            unlisted_in_slice(
                &conn,
                &shape,
                &since,
                Listed::Rowids(listed),
                (after[0] != Value::Integer(0)).then_some(&after[..]),
                rows,
            )
            .unwrap()
        };
        assert_eq!(
            check(&all, 0, 4),
            Slice {
                unlisted: vec![],
                until: Some(vec![Value::Integer(4)])
            }
        );
        assert_eq!(
            check(&all, 4, 4),
            Slice {
                unlisted: vec![],
                until: Some(vec![Value::Integer(8)])
            }
        );
        assert_eq!(
            check(&all, 8, 4),
            Slice {
                unlisted: vec![],
                until: None
            }
        );
        // A list that lacks row 6 is caught by the slice that holds it, and only by it.
        assert_eq!(check(&[3, 9], 0, 4).unlisted, vec![]);
        assert_eq!(check(&[3, 9], 4, 4).unlisted, vec![Value::Integer(6)]);
        assert_eq!(check(&[3, 9], 8, 4).unlisted, vec![]);
    }

    #[test]
    fn a_slice_check_of_a_keyed_table_goes_by_its_whole_key() {
        let conn = Connection::open_in_memory().unwrap();
        // An escrow's days, as `daily_spend` keeps them: the key's first column is shared.
        conn.execute_batch(
            "CREATE TABLE k (e TEXT NOT NULL, day TEXT NOT NULL, change_seq INTEGER NOT NULL,
                 PRIMARY KEY (e, day)) WITHOUT ROWID;
             INSERT INTO k VALUES ('a', '1', 2), ('b', '1', 7), ('b', '2', 2), ('b', '3', 7),
                 ('c', '1', 2), ('d', '1', 7);",
        )
        .unwrap();
        let column = |name: &str, pk| Column {
            name: name.into(),
            ty: ColumnType::Text,
            pk,
        };
        let shape = Shape {
            table: Table {
                name: "k",
                kind: Kind::Stamped,
            },
            columns: vec![column("e", 1), column("day", 2), column("change_seq", 0)],
            create: String::new(),
            indexes: Vec::new(),
            rowid: false,
        };
        let since = Position {
            change_seq: 5,
            ..Position::start()
        };
        let text = |t: &str| Value::Text(t.into());
        let keys = |k: &[&str]| k.iter().map(|k| k.to_string()).collect::<Vec<_>>();
        let check = |listed: &[String], after: Option<&[Value]>| {
            unlisted_in_slice(&conn, &shape, &since, Listed::Keys(listed), after, 3).unwrap()
        };
        // b and d changed. Slices of three rows in key order, the first ending inside b's
        // days: the next starts at b's next day, not at the next escrow.
        let all = keys(&["b", "d"]);
        assert_eq!(
            check(&all, None),
            Slice {
                unlisted: vec![],
                until: Some(vec![text("b"), text("2")])
            }
        );
        assert_eq!(
            check(&all, Some(&[text("b"), text("2")])),
            Slice {
                unlisted: vec![],
                until: Some(vec![text("d"), text("1")])
            }
        );
        assert_eq!(
            check(&all, Some(&[text("d"), text("1")])),
            Slice {
                unlisted: vec![],
                until: None
            }
        );
        // A list without b: its changed day in the second slice is caught there too.
        assert_eq!(check(&keys(&["d"]), None).unlisted, vec![text("b")]);
        assert_eq!(
            check(&keys(&["d"]), Some(&[text("b"), text("2")])).unlisted,
            vec![text("b")]
        );
        // A start of another shape than the key is an error, not an empty slice.
        assert!(unlisted_in_slice(
            &conn,
            &shape,
            &since,
            Listed::Keys(&all),
            Some(&[text("b")]),
            3
        )
        .is_err());
    }
}
