//! `remit rotate-key`: every encrypted value and blind index re-made under a new master key.

use crate::crypto::{EncryptedColumn, Keys, MasterKey};
use crate::error::{Error, Result};
use crate::store::{self, OpenOptions};
use rusqlite::params;
use serde_json::json;
use std::path::Path;

/// In one transaction, re-encrypts every PII column (`EncryptedColumn::ALL`) and recomputes
/// every blind index and the key check under the new key, stored idempotent responses included;
/// rewraps the audit keys and starts a new audit key whose first line
/// records the rotation. Returns how many values were re-encrypted.
pub fn rotate_key(db: &Path, old_key_hex: Option<&str>, new_key: &MasterKey) -> Result<usize> {
    if !db.exists() {
        return Err(Error::internal(format!("no database at {}", db.display())));
    }
    let (old_master, _) = crate::crypto::load_master_key(db, old_key_hex, false)?;
    let old = Keys::new(&old_master);
    let new = Keys::new(new_key);
    if old.key_check == new.key_check {
        return Err(Error::internal("the new key is the current key"));
    }
    {
        // Validate the old key (and migrate) through the normal open path, which also refuses
        // a file that is not a ledger (another program's database is left as it is), then close.
        let mut options = OpenOptions::new(db);
        options.key_hex = Some(old_master.to_hex());
        options.create = false;
        let store = store::open(&options)?;
        store.close();
    }
    let mut conn = store::open_connection(db, store::Synchronous::Full)?;
    // One transaction rewrites every encrypted row: its journals may pass the build's 4 MiB.
    store::journals_in_memory(&conn, true)?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // Every re-encrypted row is a change the replica must receive.
    let _numbered = store::changes::begin(&tx)?;
    let mut count = 0;
    for column in EncryptedColumn::ALL {
        let (table, name) = (column.table(), column.column());
        if *column == EncryptedColumn::IdempotentResponse {
            // Kept, so that a client's retry after the rotation is still answered by its
            // first response (keyed by user and key, not by an id).
            let rows: Vec<(String, String, String)> = tx
                .prepare(&format!("SELECT user_id, key, {name} FROM {table}"))?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let mut update = tx.prepare(&format!(
                "UPDATE {table} SET {name} = ?3 WHERE user_id = ?1 AND key = ?2"
            ))?;
            for (user_id, key, stored) in rows {
                let row = crate::service::idempotency::row_of(&user_id, &key);
                let plain = old.open(*column, &row, &stored)?;
                update.execute(params![user_id, key, new.seal(*column, &row, &plain)?])?;
                count += 1;
            }
            continue;
        }
        let rows: Vec<(String, String)> = tx
            .prepare(&format!(
                "SELECT id, {name} FROM {table} WHERE {name} IS NOT NULL"
            ))?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        // Only a replicated table is stamped (a keyed one tells the change log its key); the
        // notifications' tables are not replicated.
        let stamp = match store::changes::keyed(table) {
            Some(key) => format!(
                "change_seq = {}('{table}', {key}), ",
                store::changes::KEYED_FUNCTION
            ),
            None if crate::replicate::source::is_stamped(table) => {
                "change_seq = remit_change_seq(), ".to_string()
            }
            None => String::new(),
        };
        let mut update = tx.prepare(&format!(
            "UPDATE {table} SET {stamp}{name} = ?2 WHERE id = ?1"
        ))?;
        for (id, stored) in rows {
            let plain = old.open(*column, &id, &stored)?;
            update.execute(params![id, new.seal(*column, &id, &plain)?])?;
            if *column == EncryptedColumn::UserPhone {
                tx.execute(
                    "UPDATE users SET change_seq = remit_change_seq_of('users', id), phone_index = ?2 WHERE id = ?1",
                    params![id, new.blind_index(&plain)],
                )?;
            }
            count += 1;
        }
    }
    crate::audit::rewrap_keys(&tx, &old, &new)?;
    let next_seq: i64 =
        tx.query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_log", [], |r| {
            r.get(0)
        })?;
    let audit_key = crate::audit::add_key(&tx, &new, next_seq)?;
    tx.execute(
        "UPDATE meta SET change_seq = remit_change_seq(), value = ?1 WHERE key = 'key_check'",
        [&new.key_check],
    )?;
    tx.execute(
        "UPDATE meta SET change_seq = remit_change_seq(), value = ?1 WHERE key = 'key_id'",
        [&new.key_id],
    )?;
    let details =
        json!({"oldKeyId": old.key_id, "newKeyId": new.key_id, "valuesReencrypted": count});
    crate::audit::append(
        &tx,
        &audit_key,
        crate::time::now_unix(),
        "system:cli",
        "key.rotated",
        "database",
        &details,
    )?;
    tx.commit()?;
    log::info!(target: "remit::audit", "key.rotated database by system:cli");
    // Committed: the ledger is under the new key whatever follows. A log that cannot be
    // emptied now (another reader) is emptied at the next start; an error here made the
    // command report a failed rotation, and drop its copy of the old key, after the fact.
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        log::warn!("the key is rotated; the log beside the database could not be emptied now ({e}): the next start empties it");
    }
    Ok(count)
}
