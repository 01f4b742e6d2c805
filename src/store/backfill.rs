//! Data a migration cannot compute in SQL because it needs the key: filled once, when a
//! database is opened after the migration.

use crate::crypto::{EncryptedColumn, Keys};
use crate::domain::{EscrowId, UserId};
use crate::error::Result;
use rusqlite::{params, Connection, OptionalExtension};

/// Whether there is anything to fill, asked without the write lock: opening a file that another
/// process writes without pause (a server, `remit replicate` beside it) must not wait for that
/// lock when there is nothing to do, since SQLite's busy wait can lose to a busy writer for its
/// whole timeout.
fn anything(conn: &Connection, exists_sql: &str) -> Result<bool> {
    Ok(conn.query_row(exists_sql, [], |r| r.get(0))?)
}

/// Runs `fill` once in a ledger's life, under the write lock, freed pages overwritten (what it
/// seals must not stay readable in them): `meta` says `flag` (with how many rows `fill` did)
/// in the same numbered transaction, and later opens look no further (the question may be a
/// scan). Asked again under the lock: another process (a command started with the server)
/// may have done it between the question and the lock.
fn once(
    conn: &mut Connection,
    flag: &str,
    fill: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<usize>,
) -> Result<usize> {
    let done = format!("SELECT EXISTS (SELECT 1 FROM meta WHERE key = '{flag}')");
    if anything(conn, &done)? {
        return Ok(0);
    }
    conn.pragma_update(None, "secure_delete", "ON")?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let filled = if anything(&tx, &done)? {
        drop(tx);
        0
    } else {
        let _numbered = super::changes::begin(&tx)?;
        let filled = fill(&tx)?;
        tx.execute(
            "INSERT INTO meta (key, value, change_seq) VALUES (?1, ?2, remit_change_seq())",
            params![flag, filled.to_string()],
        )?;
        tx.commit()?;
        filled
    };
    conn.pragma_update(None, "secure_delete", "OFF")?;
    Ok(filled)
}

/// Idempotency keys were kept as the client sent them (`Idempotency-Key: +254712345678` kept a
/// phone readable in the file); they are kept by their digest now
/// (`store::idempotency::stored_key`). Those kept before (48 hours' worth) are turned into the
/// digest of their time, a SHA-256 (`stored_key_before`, as their fingerprints are), each
/// stored answer sealed again under its new name, so that a retry after the upgrade is still
/// answered from it.
pub(super) fn idempotency_keys(conn: &mut Connection, keys: &Keys) -> Result<usize> {
    once(conn, "idempotency_keys_hashed", |tx| {
        let rows: Vec<(String, String, String)> = tx
            .prepare("SELECT user_id, key, body FROM idempotency_keys WHERE instr(key, ' ') = 0")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (user_id, key, body) in &rows {
            // In the form of its time (a SHA-256, as its fingerprint is): found and told
            // apart as such a row is, until housekeeping forgets it.
            use super::idempotency::{row_of, stored_key_before};
            let column = EncryptedColumn::IdempotentResponse;
            let answer = keys.open(column, &row_of(user_id, key), body)?;
            let hashed = stored_key_before(key);
            tx.execute(
                "UPDATE idempotency_keys SET key = ?3, body = ?4 WHERE user_id = ?1 AND key = ?2",
                params![
                    user_id,
                    key,
                    hashed,
                    keys.seal(column, &row_of(user_id, &hashed), &answer)?
                ],
            )?;
        }
        Ok(rows.len())
    })
}

/// Schema 15 seals an admin's words on a payout resolved as failed by hand; words kept before
/// it, in the clear in `result_desc`, are sealed here the same way (they were left where they
/// were, readable in the file and copied so to a replica, which must never see a name).
pub(super) fn resolve_reasons(conn: &mut Connection, keys: &Keys) -> Result<usize> {
    once(conn, "resolve_reasons_sealed", |tx| {
        let rows: Vec<(String, String)> = tx
            .prepare(
                "SELECT id, result_desc FROM payouts
                 WHERE result_code = 'manual' AND result_desc IS NOT NULL AND resolve_reason_enc IS NULL",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (id, words) in &rows {
            tx.execute(
                "UPDATE payouts SET change_seq = remit_change_seq(), result_desc = NULL, resolve_reason_enc = ?2
                 WHERE id = ?1",
                params![id, keys.seal(EncryptedColumn::ResolveReason, id, words)?],
            )?;
        }
        Ok(rows.len())
    })
}

/// Schema 5 gives every escrow a short reference; older escrows get theirs here.
pub(super) fn short_refs(conn: &mut Connection) -> Result<usize> {
    if !anything(
        conn,
        "SELECT EXISTS (SELECT 1 FROM escrows WHERE short_ref IS NULL)",
    )? {
        return Ok(0);
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let ids: Vec<EscrowId> = tx
        .prepare("SELECT id FROM escrows WHERE short_ref IS NULL")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let _numbered = (!ids.is_empty())
        .then(|| super::changes::begin(&tx))
        .transpose()?;
    for id in &ids {
        let code = crate::domain::unique_code(
            &tx,
            "escrows",
            "short_ref",
            "",
            crate::domain::SHORT_REF_LEN,
        )?;
        tx.execute(
            "UPDATE escrows SET change_seq = remit_change_seq_of('escrows', id), short_ref = ?2 WHERE id = ?1",
            params![id, code],
        )?;
    }
    tx.commit()?;
    Ok(ids.len())
}

/// Schema 3 keeps the recipient's name with each escrow, as its sender typed it. For an older
/// escrow that name is the recipient user's name when this escrow's sender created that user
/// (the audit log says who did); otherwise what this sender typed is not known, and an empty
/// name is kept rather than another sender's.
pub(super) fn recipient_names(conn: &mut Connection, keys: &Keys) -> Result<usize> {
    if !anything(
        conn,
        "SELECT EXISTS (SELECT 1 FROM escrows WHERE recipient_name_enc IS NULL)",
    )? {
        return Ok(0);
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let rows: Vec<(EscrowId, String, UserId, String)> = tx
        .prepare(
            "SELECT e.id, e.sender_id, e.recipient_id, u.name_enc FROM escrows e
             JOIN users u ON u.id = e.recipient_id WHERE e.recipient_name_enc IS NULL",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let _numbered = (!rows.is_empty())
        .then(|| super::changes::begin(&tx))
        .transpose()?;
    for (escrow_id, sender_id, recipient_id, name_enc) in &rows {
        let creator: Option<String> = tx
            .query_row(
                "SELECT actor FROM audit_log WHERE entity = ?1 AND action = 'user.created'
                 ORDER BY seq LIMIT 1",
                [recipient_id],
                |r| r.get(0),
            )
            .optional()?;
        let name = if creator.as_deref() == Some(sender_id.as_str()) {
            keys.open(EncryptedColumn::UserName, recipient_id.as_str(), name_enc)?
        } else {
            String::new()
        };
        tx.execute(
            "UPDATE escrows SET change_seq = remit_change_seq_of('escrows', id), recipient_name_enc = ?2 WHERE id = ?1",
            params![
                escrow_id,
                keys.seal(EncryptedColumn::RecipientName, escrow_id.as_str(), &name)?
            ],
        )?;
    }
    tx.commit()?;
    Ok(rows.len())
}

/// Schema 17 seals a webhook endpoint's URL (its path or query may hold the receiver's own
/// secret) and keeps its origin in the clear; the URLs kept before are sealed here, with
/// SQLite's `secure_delete` on so that the old text is not left in the pages' free space.
/// Endpoints are few (`WEBHOOK_ENDPOINTS_MAX`) and not replicated.
pub(super) fn webhook_urls(conn: &mut Connection, keys: &Keys) -> Result<usize> {
    if !anything(
        conn,
        "SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE url_enc IS NULL)",
    )? {
        return Ok(0);
    }
    conn.pragma_update(None, "secure_delete", "ON")?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let rows: Vec<(String, String)> = tx
        .prepare("SELECT id, url FROM webhook_endpoints WHERE url_enc IS NULL")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (id, url) in &rows {
        let origin = crate::domain::WebhookUrl::from_stored(url.clone()).origin();
        tx.execute(
            "UPDATE webhook_endpoints SET url = ?2, url_enc = ?3 WHERE id = ?1",
            params![id, origin, keys.seal(EncryptedColumn::WebhookUrl, id, url)?],
        )?;
    }
    tx.commit()?;
    conn.pragma_update(None, "secure_delete", "OFF")?;
    Ok(rows.len())
}
