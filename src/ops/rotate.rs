//! `remit rotate-key`: every encrypted value and blind index re-made under a new master key.

use crate::crypto::{EncryptedColumn, Keys, MasterKey};
use crate::error::{Error, Result};
use crate::store::{self, OpenOptions};
use rusqlite::params;
use serde_json::json;
use std::path::{Path, PathBuf};

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
    // The file's rebuild, after the commit, is owed from before it: a rotation stopped between
    // the two (kill -9, a power cut) left copies of values sealed under the old key in the
    // file's pages, and the next start settled it as finished. The next command or start that
    // has the ledger alone rebuilds it (`rebuild_owed`).
    let owed = rebuild_owed_path(db);
    match crate::crypto::write_owner_only(&owed, b"") {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            return Err(Error::internal(format!(
                "cannot write {} (the mark of the file's rebuild after a key rotation): {e}",
                owed.display()
            )))
        }
        _ => super::sync_dir_of(&owed),
    }
    let rotated = rotate_in_one_transaction(db, &old, &new);
    match rotated {
        Ok(count) => {
            rebuild_without_old_values(db)?;
            Ok(count)
        }
        Err(e) => {
            // Nothing changed: nothing to rebuild.
            let _ = std::fs::remove_file(&owed);
            Err(e)
        }
    }
}

/// `rotate_key`'s transaction: every value re-sealed, the audit keys rewrapped, the key check
/// and id replaced, committed. Returns how many values were re-encrypted.
fn rotate_in_one_transaction(db: &Path, old: &Keys, new: &Keys) -> Result<usize> {
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
                let row = crate::store::idempotency::row_of(&user_id, &key);
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
    crate::audit::rewrap_keys(&tx, old, new)?;
    let next_seq: i64 =
        tx.query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_log", [], |r| {
            r.get(0)
        })?;
    let audit_key = crate::audit::add_key(&tx, new, next_seq)?;
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
    Ok(count)
}

/// Where a key rotation marks the file's rebuild as owed (`<db>.rebuild-owed`, empty, 0600),
/// from before its commit until the file is rebuilt.
pub fn rebuild_owed_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".rebuild-owed");
    PathBuf::from(name)
}

/// The file still holds values sealed under the old key where the rewrite did not reach: in
/// the inner pages of the tables kept by their key (`users`, `escrows`, …), whose cells are
/// copies of whole rows made when a page split and left as they were when the row changed
/// (not freed, so not zeroed either: SQLite's `secure_delete` left 26 of 81 values of a small
/// ledger), in the space the rewrite freed, and in pages free before it (a purged stored
/// response, a delivered SMS). Whoever holds the old key, which a rotation exists because it
/// leaked, read names and phones in a copy of the file made after the rotation. The file is
/// rebuilt from its rows (`VACUUM`, its copy on the disk beside the temporary files, not in
/// memory), then its log emptied (it holds the pages the rotation wrote over). The rotation
/// has committed: a rebuild that fails (a disk too full for the copy) is said, leaves the
/// ledger as it is, and is owed still (`<db>.rebuild-owed`): the next command or start that
/// has the ledger alone tries again. To be run with the ledger alone (the key lock held
/// alone). Whether it was rebuilt.
fn rebuild_without_old_values(db: &Path) -> Result<bool> {
    let conn = store::open_connection(db, store::Synchronous::Full)?;
    let rebuilt = conn
        .pragma_update(None, "temp_store", "FILE")
        .and_then(|()| conn.execute_batch("VACUUM"))
        .and_then(|()| {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                r.get::<_, i64>(0)
            })
        })
        .and_then(|busy| {
            if busy == 0 {
                Ok(())
            } else {
                Err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                    Some("another connection reads the log".into()),
                ))
            }
        });
    match rebuilt {
        Ok(()) => {
            let owed = rebuild_owed_path(db);
            match std::fs::remove_file(&owed) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    log::warn!("the file is rebuilt, but {} cannot be removed ({e}): the next start rebuilds it again", owed.display());
                }
                _ => super::sync_dir_of(&owed),
            }
            Ok(true)
        }
        Err(e) => {
            log::warn!(
            "the key is rotated; the file could not be rebuilt without the copies of values sealed under the old key that its pages still hold ({e}): make room on the disk (about the ledger's size); the next start of remit, or command, tries again. Copy the file nowhere until then",
            );
            Ok(false)
        }
    }
}

/// A key rotation's rebuild of the file still owed (`rebuild_owed_path`: the rotation stopped
/// before it, or it failed) is made; to be run with the ledger alone (the key lock held alone).
/// Said in the log.
fn rebuild_owed(db: &Path) -> Result<()> {
    if !rebuild_owed_path(db).exists() || !db.exists() {
        return Ok(());
    }
    log::warn!(
        "a key rotation did not rebuild {} (it was stopped, or failed to): rebuilding it now, so that no copy of a value sealed under the old key stays in its pages (this takes about as long as a backup)",
        db.display()
    );
    if rebuild_without_old_values(db)? {
        log::warn!("{} is rebuilt", db.display());
    }
    Ok(())
}

/// Where a rotation of the key file's key keeps the new key from before its commit until the key
/// file holds it (`<db>.key.rotating`, 0600): a rotation stopped between the two (kill -9,
/// Ctrl-C, a power cut) left the ledger under a key no file beside it held, every start refused
/// as under a wrong key, and nothing said of the new key's file an operator might then delete.
pub fn rotating_key_path(db: &Path) -> PathBuf {
    let mut name = crate::crypto::key_file_path(db).into_os_string();
    name.push(".rotating");
    PathBuf::from(name)
}

/// The name a rotation's copy of the old key has until the rotation commits.
pub fn unfinished_name(kept: &Path) -> PathBuf {
    let mut name = kept.as_os_str().to_owned();
    name.push(".unfinished");
    PathBuf::from(name)
}

/// Settles a rotation of the key file's key that was stopped before its end; to be run with the
/// key lock held alone (`KeyUse::Exclusive`). When the ledger is under the rotation's new key,
/// the rotation committed: the key file takes the new key and the copies of the old key take
/// their names (`.before-rotate-<time>`). When it is under the key file's key, the rotation
/// never committed: nothing changed, and the copies of that key it made are removed. Either way
/// the new key's file beside the key file goes. What was done is logged; nothing is done when no
/// rotation was stopped, when there is no ledger, or when the ledger is under neither key (left
/// as it is, for the key's refusal to say). And a rotation's rebuild of the file still owed, of
/// the key file's key or `ENCRYPTION_KEY`'s, is made (`rebuild_owed`).
pub fn settle_stopped_rotation(db: &Path) -> Result<()> {
    if let Some(said) = settled(db)? {
        log::warn!("{said}");
    }
    rebuild_owed(db)
}

/// `settle_stopped_rotation`'s work: what was done, in words, if anything.
fn settled(db: &Path) -> Result<Option<String>> {
    if !db.exists() {
        return Ok(None);
    }
    let rotating = rotating_key_path(db);
    let key_file = crate::crypto::key_file_path(db);
    let copies = unfinished_copies(&key_file);
    // The new key, if its file is whole: one cut short (a power cut while it was written) was
    // never synced whole, so the rotation, which commits after, never began.
    let (new, was_rotating) = match std::fs::read_to_string(&rotating) {
        Ok(text) => (MasterKey::from_hex(&text).ok(), true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if copies.is_empty() {
                return Ok(None);
            }
            (None, false)
        }
        Err(e) => {
            return Err(Error::internal(format!(
                "{} (the new key of a key rotation stopped before its end) cannot be read: {e}; run the command as the user who ran the rotation, or give that file to this one (`chown`)",
                rotating.display()
            )))
        }
    };
    let current = std::fs::read_to_string(&key_file)
        .ok()
        .and_then(|text| MasterKey::from_hex(&text).ok());
    let stored: Option<String> = {
        let conn = store::open_connection(db, store::Synchronous::Full)?;
        conn.query_row("SELECT value FROM meta WHERE key = 'key_check'", [], |r| {
            r.get(0)
        })
        .ok()
    };
    let opens = |key: &MasterKey| {
        stored.as_deref().is_some_and(|check| {
            crate::crypto::constant_time_eq(check.as_bytes(), Keys::new(key).key_check.as_bytes())
        })
    };
    let said = if let Some(new) = new.as_ref().filter(|new| opens(new)) {
        if !current.as_ref().is_some_and(opens) {
            crate::crypto::replace_key_file(&key_file, new).map_err(|e| {
                Error::internal(format!(
                    "a key rotation stopped after its commit: the ledger is under the new key, which is in {}, but {e}: put it in the key file yourself (`cp {} {}`), or set ENCRYPTION_KEY to it",
                    rotating.display(),
                    rotating.display(),
                    key_file.display()
                ))
            })?;
        }
        let kept: Vec<String> = copies
            .iter()
            .map(|copy| {
                let name = copy.to_string_lossy();
                let to = PathBuf::from(name.trim_end_matches(".unfinished"));
                match std::fs::symlink_metadata(&to) {
                    Err(_) if std::fs::rename(copy, &to).is_ok() => to.display().to_string(),
                    _ => copy.display().to_string(),
                }
            })
            .collect();
        format!(
            "a key rotation stopped after its commit was finished: the ledger was under the new key, and the key file {} now holds it{}",
            key_file.display(),
            if kept.is_empty() {
                String::new()
            } else {
                format!(
                    "; the old key is kept in {}: keep it as long as any backup made before the rotation",
                    kept.join(", ")
                )
            }
        )
    } else if current.as_ref().is_some_and(opens) {
        let current = current.as_ref().map(|k| k.to_hex()).unwrap_or_default();
        let mut removed = 0;
        for copy in &copies {
            // A copy of the key still in use, made for a rotation that did not happen (one
            // stopped before it kept the new key is known by its copies alone).
            let same = std::fs::read_to_string(copy).is_ok_and(|text| {
                crate::crypto::constant_time_eq(text.trim().as_bytes(), current.as_bytes())
            });
            if same && std::fs::remove_file(copy).is_ok() {
                removed += 1;
            }
        }
        if !was_rotating && removed == 0 {
            return Ok(None);
        }
        format!(
            "a key rotation stopped before its commit changed nothing: the ledger and its key file {} keep the key they had",
            key_file.display()
        )
    } else {
        return Ok(None);
    };
    match std::fs::remove_file(&rotating) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(Error::internal(format!(
                "cannot remove {}: {e}",
                rotating.display()
            )))
        }
        _ => {}
    }
    super::sync_dir_of(&rotating);
    Ok(Some(said))
}

/// The copies of the old key a rotation made and had not yet named as kept
/// (`<key file>.before-rotate-<time>[-n].unfinished`).
fn unfinished_copies(key_file: &Path) -> Vec<PathBuf> {
    let Some(name) = key_file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
    else {
        return Vec::new();
    };
    let prefix = format!("{name}.before-rotate-");
    let Ok(entries) = std::fs::read_dir(super::parent_dir(key_file)) else {
        return Vec::new();
    };
    let mut copies: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok())
        .filter(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.starts_with(&prefix) && name.ends_with(".unfinished")
        })
        .map(|entry| key_file.with_file_name(entry.file_name()))
        .collect();
    copies.sort();
    copies
}

/// Before a command or a start uses the key: a rotation stopped before its end is settled
/// (`settle_stopped_rotation`) when no other command holds the key (one that does, a server,
/// opened the ledger already); what was done is logged.
pub fn settle_before_use(db: &Path) -> Result<()> {
    let stopped = rotating_key_path(db).exists()
        || !unfinished_copies(&crate::crypto::key_file_path(db)).is_empty()
        || rebuild_owed_path(db).exists();
    if !stopped || !db.exists() {
        return Ok(());
    }
    let Ok(_alone) = super::key_lock(db, super::KeyUse::Exclusive) else {
        return Ok(());
    };
    settle_stopped_rotation(db)
}
