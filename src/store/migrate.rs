//! Schema migrations: `schema/NNNN_name.sql`, embedded in the binary, applied in order at start,
//! each in its own transaction, tracked by `PRAGMA user_version`. A landed migration is never
//! edited; a change is a new file.

use crate::error::{Error, Result};
use rusqlite::{Connection, OptionalExtension};

/// The embedded migrations.
#[derive(rust_embed::RustEmbed)]
#[folder = "schema/"]
struct Migrations;

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

/// The schema version of an open database (0 for an empty file).
pub fn schema_version(conn: &Connection) -> Result<u32> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Applies every migration newer than the database's `user_version`, each in its own
/// transaction. Returns the versions applied.
pub fn migrate(conn: &mut Connection) -> Result<Vec<u32>> {
    migrate_to(conn, u32::MAX)
}

/// `migrate`, stopping after schema `last`.
fn migrate_to(conn: &mut Connection, last: u32) -> Result<Vec<u32>> {
    let current = schema_version(conn)?;
    let latest = latest_schema_version();
    if current > latest {
        return Err(Error::internal(format!(
            "the database has schema version {current}, newer than this remit knows ({latest}); upgrade remit"
        )));
    }
    // A migration's statements may call remit's functions (schema 16's), on any connection.
    register_functions(conn)?;
    let mut applied = Vec::new();
    for (version, name) in migration_files() {
        if version <= current || version > last {
            continue;
        }
        let file = Migrations::get(&name)
            .ok_or_else(|| Error::internal(format!("missing migration {name}")))?;
        let sql = std::str::from_utf8(&file.data)
            .map_err(|_| Error::internal(format!("migration {name} is not UTF-8")))?;
        // A migration may rebuild a table that others reference (SQLite changes a CHECK no
        // other way): foreign keys are off while it runs, and checked before it commits. It
        // may journal the pages of whole tables: its journals stay in memory, unbounded.
        super::open::journals_in_memory(conn, true)?;
        conn.pragma_update(None, "foreign_keys", "OFF")?;
        let result = apply(conn, &name, sql, version);
        conn.pragma_update(None, "foreign_keys", "ON")?;
        result?;
        applied.push(version);
    }
    super::open::journals_in_memory(conn, false)?;
    Ok(applied)
}

/// A database in memory with every migration applied: the schema a ledger of this version has,
/// to compare a file with (`integrity`).
pub fn migrated_in_memory() -> Result<Connection> {
    migrated_in_memory_to(u32::MAX)
}

/// The same with the migrations up to schema `last` only (tests compare two versions').
pub fn migrated_in_memory_to(last: u32) -> Result<Connection> {
    let mut conn = Connection::open_in_memory()?;
    migrate_to(&mut conn, last)?;
    Ok(conn)
}

/// Registers the SQL functions of remit's statements and migrations on a read-write connection:
/// the change counter's (`store::changes`), and `remit_mask_mpesa_words`, by which schema 16
/// masks the phones and hides the payees' names in the M-Pesa words kept before it.
pub(super) fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    super::changes::register(conn)?;
    conn.create_scalar_function(
        "remit_mask_mpesa_words",
        1,
        rusqlite::functions::FunctionFlags::SQLITE_UTF8
            | rusqlite::functions::FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            Ok(ctx
                .get::<Option<String>>(0)?
                .map(|text| crate::wire::daraja::free_text(&text)))
        },
    )
}

/// Runs one migration in its own transaction; refuses to commit if it broke a foreign key.
fn apply(conn: &mut Connection, name: &str, sql: &str, version: u32) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // From the change counter's schema on, a migration is a numbered transaction: one that
    // changes rows stamps them with `remit_change_seq()`, and the replica receives them.
    let _numbered = (version > super::changes::SINCE_SCHEMA)
        .then(|| super::changes::begin(&tx))
        .transpose()?;
    tx.execute_batch(sql)
        .map_err(|e| Error::internal(format!("migration {name}: {e}")))?;
    let broken: Option<String> = tx
        .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
        .optional()?;
    if let Some(table) = broken {
        return Err(Error::internal(format!(
            "migration {name} left a broken foreign key in {table}"
        )));
    }
    tx.pragma_update(None, "user_version", version)?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Schema 21 keeps the idempotency keys kept before it (in the order they were kept, by user
    /// and key: not sorted by time, which a migration sorts in memory), still one per user and
    /// key.
    #[test]
    fn schema_21_keeps_every_idempotency_key() {
        let mut conn = migrated_in_memory_to(20).unwrap();
        conn.execute_batch(
            "INSERT INTO idempotency_keys (user_id, key, fingerprint, status, body, created_at) VALUES
                 ('usr_1', 'k3', x'03', 201, 'sealed-3', '2026-12-07T10:00:00Z'),
                 ('usr_1', 'k1', x'01', 200, 'sealed-1', '2026-12-06T10:00:00Z'),
                 ('usr_2', 'k2', x'02', 409, 'sealed-2', '2026-12-06T11:00:00Z');",
        )
        .unwrap();
        migrate_to(&mut conn, 21).unwrap();
        let kept: Vec<(String, String, i64, String)> = conn
            .prepare("SELECT user_id, key, status, body FROM idempotency_keys ORDER BY created_at")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let names: Vec<(&str, &str, i64, &str)> = kept
            .iter()
            .map(|(u, k, s, b)| (u.as_str(), k.as_str(), *s, b.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("usr_1", "k1", 200, "sealed-1"),
                ("usr_2", "k2", 409, "sealed-2"),
                ("usr_1", "k3", 201, "sealed-3")
            ]
        );
        let twice = conn.execute(
            "INSERT INTO idempotency_keys (user_id, key, fingerprint, status, body, created_at)
             VALUES ('usr_1', 'k1', x'09', 201, 'x', '2026-12-07T12:00:00Z')",
            [],
        );
        assert!(twice.is_err(), "one row per user and key");
    }

    /// Schema 18 chains the journal kept before it: each transaction names its escrow's one
    /// before it, each escrow its newest, and the integrity check's two chain queries find
    /// nothing to say; the index the chain replaces is gone.
    #[test]
    fn schema_18_chains_the_journal_kept_before_it() {
        let mut conn = migrated_in_memory_to(17).unwrap();
        conn.execute_batch(
            "INSERT INTO users (id, role, name_enc, created_at) VALUES
                 ('usr_s', 'sender', 'x', 't'), ('usr_r', 'recipient', 'x', 't');
             INSERT INTO escrows (id, sender_id, recipient_id, status, total_usd_cents, created_at, updated_at)
                 VALUES ('esc_a', 'usr_s', 'usr_r', 'pending_deposit', 100, 't', 't'),
                        ('esc_b', 'usr_s', 'usr_r', 'pending_deposit', 100, 't', 't'),
                        ('esc_c', 'usr_s', 'usr_r', 'pending_deposit', 100, 't', 't');
             INSERT INTO ledger_transactions (id, escrow_id, kind, reference, created_at) VALUES
                 (1, 'esc_a', 'deposit', 'd1', 't'), (2, 'esc_b', 'deposit', 'd2', 't'),
                 (3, 'esc_a', 'deposit', 'd3', 't'), (4, 'esc_a', 'deposit', 'd4', 't'),
                 (5, 'esc_b', 'deposit', 'd5', 't');",
        )
        .unwrap();
        assert_eq!(migrate(&mut conn).unwrap().first(), Some(&18));
        fn pairs<A: rusqlite::types::FromSql, B: rusqlite::types::FromSql>(
            conn: &Connection,
            sql: &str,
        ) -> Vec<(A, B)> {
            conn.prepare(sql)
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        }
        let links: Vec<(i64, Option<i64>)> = pairs(
            &conn,
            "SELECT id, prev_id FROM ledger_transactions ORDER BY id",
        );
        assert_eq!(
            links,
            [
                (1, None),
                (2, None),
                (3, Some(1)),
                (4, Some(3)),
                (5, Some(2))
            ]
        );
        let newest: Vec<(String, Option<i64>)> = pairs(
            &conn,
            "SELECT id, last_transaction_id FROM escrows ORDER BY id",
        );
        assert_eq!(
            newest,
            [
                ("esc_a".to_string(), Some(4)),
                ("esc_b".to_string(), Some(5)),
                ("esc_c".to_string(), None)
            ]
        );
        // The journal is append-only again, by the very trigger it had.
        assert!(conn
            .execute(
                "UPDATE ledger_transactions SET prev_id = NULL WHERE id = 3",
                []
            )
            .is_err());
        let index: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'ledger_transactions_escrow'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(index, 0);
        let mut chain_checks = 0;
        for (name, sql) in crate::integrity::LEDGER_CHECKS {
            if name.contains("one before it") || name.contains("newest journal transaction") {
                let found: i64 = conn
                    .query_row(&format!("SELECT COUNT(*) FROM ({sql})"), [], |r| r.get(0))
                    .unwrap();
                assert_eq!(found, 0, "{name}");
                chain_checks += 1;
            }
        }
        assert_eq!(chain_checks, 2);
    }
}
