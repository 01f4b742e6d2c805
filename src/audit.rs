//! The audit log: one line per state change, written in the same transaction as the change,
//! each chained to the previous by HMAC-SHA256 under the audit key:
//! `mac = HMAC(key, prev_mac ‖ canonical(seq, at, actor, action, entity, details))`.
//!
//! Audit keys are random 256-bit keys, stored wrapped under the master key in `audit_keys`,
//! each valid from a sequence number on. Key rotation starts a new audit key at the next line,
//! so a holder of an old master key cannot forge lines written after the rotation.
//!
//! A chain alone cannot show that its newest lines were cut off, so every append also stores
//! the head of the chain in `meta` (`audit_head` = `seq.journal.hex(HMAC(key, label ‖ seq ‖
//! journal ‖ mac))`, `journal` the newest journal transaction's id): deleting the last lines
//! leaves a head that names a line that is gone or does not verify, and a head kept from
//! before (an older copy's, read without the key) names a journal that has grown since, so the
//! lines cut off cannot be hidden by putting it back unless the journal's money is rolled back
//! with them. (Putting back a whole older copy of the file is a restore, which no file can tell
//! apart. A head written before 2026-12-06, `seq.hex(HMAC(key, label ‖ seq ‖ mac))`, covers
//! the log alone and is still read, a ledger not written since having no other; put back after
//! a cut, it is shown up by the journal's times instead (`journal_after_the_log`), unless those
//! were edited too: they carry no MAC.)

use crate::crypto::{self, Keys};
use crate::error::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};

/// The MAC before the first line.
const GENESIS_MAC: [u8; 32] = [0u8; 32];

/// Every action an audit line names. The web UI says each in words in both its languages (a
/// test holds `ui/js/i18n.js` to this list), and a line of another action is a mistake the
/// debug build stops at (`append_line`): a new action is added here, and its words there.
pub const ACTIONS: &[&str] = &[
    "backup.made",
    "deposit.disputed",
    "deposit.flagged",
    "deposit.refunded",
    "escrow.activated",
    "escrow.cancelled",
    "escrow.completed",
    "escrow.created",
    "escrow.deposited",
    "escrow.flag_cleared",
    "fx.rate_set",
    "key.rotated",
    "ledger.payouts_held",
    "ledger.payouts_released",
    "notifications.event_unreadable",
    "payment_request.approved",
    "payment_request.cancelled",
    "payment_request.created",
    "payment_request.expired",
    "payment_request.rejected",
    "payout.failed",
    "payout.failure_contradicted",
    "payout.failure_held",
    "payout.flagged",
    "payout.outcome_unknown",
    "payout.resolved",
    "payout.result_confirmed",
    "payout.result_ignored",
    "payout.sent",
    "payout.status_asked",
    "payout.succeeded",
    "token.hash_recorded",
    "token.issued",
    "token.revoked",
    "user.created",
    "user.language_set",
    "webhook_delivery.retried",
    "webhook_endpoint.created",
    "webhook_endpoint.deleted",
    "webhook_endpoint.disabled",
    "webhook_endpoint.enabled",
];

/// The `meta` key of the chain's head.
const HEAD_META_KEY: &str = "audit_head";

/// An audit-chain key and the first line it signs.
#[derive(Clone)]
pub struct AuditKey {
    /// The first sequence number this key signs.
    pub from_seq: i64,
    key: [u8; 32],
}

/// Opens the chain of a database for writing: creates its first key if it has none (a new
/// database) and returns the key that signs new lines.
pub fn open_chain(conn: &mut Connection, keys: &Keys) -> Result<AuditKey> {
    const ANY_KEY: &str = "SELECT EXISTS (SELECT 1 FROM audit_keys)";
    // A chain that has its key is only read: opening a file another process writes without
    // pause must not wait for the write lock (SQLite's busy wait can lose to a busy writer for
    // its whole timeout).
    if conn.prepare_cached(ANY_KEY)?.query_row([], |r| r.get(0))? {
        return current_key(conn, keys);
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let exists: bool = tx.prepare_cached(ANY_KEY)?.query_row([], |r| r.get(0))?;
    if !exists {
        let _numbered = crate::store::changes::begin(&tx)?;
        let key = add_key(&tx, keys, 1)?;
        write_head(&tx, &key, 0, &GENESIS_MAC, newest_journal(&tx)?.id)?;
    }
    let key = current_key(&tx, keys)?;
    tx.commit()?;
    Ok(key)
}

impl AuditKey {
    /// A key for another use, derived from this one under `label` (HMAC-SHA256): secret as
    /// the audit key is, and the same across master key rotations, which rewrap it.
    pub fn derive(&self, label: &[u8]) -> [u8; 32] {
        crypto::hmac_sha256(&self.key, &[label])
    }
}

/// Starts a new audit key at `from_seq`, wrapped under `keys`.
pub fn add_key(conn: &Connection, keys: &Keys, from_seq: i64) -> Result<AuditKey> {
    let mut key = [0u8; 32];
    crypto::fill_random(&mut key);
    conn.prepare_cached("INSERT INTO audit_keys (from_seq, key_enc, change_seq) VALUES (?1, ?2, remit_change_seq())")?
        .execute(params![from_seq, keys.wrap_audit_key(from_seq, &key)?])?;
    Ok(AuditKey { from_seq, key })
}

/// Every audit key, oldest first, unwrapped with `keys`.
pub fn all_keys(conn: &Connection, keys: &Keys) -> Result<Vec<AuditKey>> {
    let mut stmt = conn.prepare("SELECT from_seq, key_enc FROM audit_keys ORDER BY from_seq")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (from_seq, enc) = row?;
        out.push(AuditKey {
            from_seq,
            key: keys.unwrap_audit_key(from_seq, &enc)?,
        });
    }
    Ok(out)
}

/// The key that signs new lines.
pub fn current_key(conn: &Connection, keys: &Keys) -> Result<AuditKey> {
    all_keys(conn, keys)?
        .pop()
        .ok_or_else(|| Error::internal("the audit chain has no key"))
}

/// Rewraps every audit key under a new master key (key rotation).
pub fn rewrap_keys(conn: &Connection, old: &Keys, new: &Keys) -> Result<()> {
    for key in all_keys(conn, old)? {
        conn.prepare_cached("UPDATE audit_keys SET change_seq = remit_change_seq(), key_enc = ?2 WHERE from_seq = ?1")?
            .execute(params![
                key.from_seq,
                new.wrap_audit_key(key.from_seq, &key.key)?
            ])?;
    }
    Ok(())
}

fn canonical(
    seq: i64,
    at: &str,
    actor: &str,
    action: &str,
    entity: &str,
    details: &str,
) -> Vec<u8> {
    let seq = seq.to_string();
    let fields = [seq.as_str(), at, actor, action, entity, details];
    let mut out = Vec::with_capacity(fields.iter().map(|f| f.len() + 8).sum());
    for f in fields {
        out.extend_from_slice(&(f.len() as u64).to_be_bytes());
        out.extend_from_slice(f.as_bytes());
    }
    out
}

fn line_mac(key: &AuditKey, prev_mac: &[u8], line: &[u8]) -> [u8; 32] {
    crypto::hmac_sha256(&key.key, &[prev_mac, line])
}

/// The MAC of a head written before 2026-12-06, which covers the log alone.
fn head_mac_of_the_log(key: &AuditKey, seq: i64, mac: &[u8]) -> [u8; 32] {
    crypto::hmac_sha256(&key.key, &[b"remit audit head\0", &seq.to_be_bytes(), mac])
}

fn head_mac(key: &AuditKey, seq: i64, journal: i64, mac: &[u8]) -> [u8; 32] {
    crypto::hmac_sha256(
        &key.key,
        &[
            b"remit audit head and journal\0",
            &seq.to_be_bytes(),
            &journal.to_be_bytes(),
            mac,
        ],
    )
}

/// The newest journal transaction (its id, as a head records it) and when it was written (as a
/// check compares the log with it).
pub fn newest_journal(conn: &Connection) -> Result<NewestJournal> {
    Ok(conn
        .prepare_cached("SELECT id, created_at FROM ledger_transactions ORDER BY id DESC LIMIT 1")?
        .query_row([], |r| {
            Ok(NewestJournal {
                id: r.get(0)?,
                at: Some(r.get(1)?),
            })
        })
        .optional()?
        .unwrap_or_default())
}

/// Records `seq` (whose MAC is `mac`) as the last line of the chain, with the journal as it
/// now ends (its newest transaction's id, `journal`). (Every command that writes a journal
/// transaction writes an audit line too, and the writer writes the record again after any
/// batch that grew the journal, audited or not.)
fn write_head(conn: &Connection, key: &AuditKey, seq: i64, mac: &[u8], journal: i64) -> Result<()> {
    let value = format!(
        "{seq}.{journal}.{}",
        crypto::hex(&head_mac(key, seq, journal, mac))
    );
    conn.prepare_cached(
        "INSERT INTO meta (key, value, change_seq) VALUES (?1, ?2, remit_change_seq())
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, change_seq = excluded.change_seq",
    )?
    .execute(params![HEAD_META_KEY, value])?;
    Ok(())
}

/// Compares the stored record of the newest line (`stored`) with the last line (`seq` 0 and the
/// genesis MAC for none) and the journal's newest transaction (`journal`).
fn head_problem(
    audit_keys: &[AuditKey],
    stored: Option<String>,
    last_seq: i64,
    last_mac: &[u8],
    journal: i64,
) -> Option<String> {
    let Some(stored) = stored else {
        return Some(format!(
            "the record of its last line is missing (the log ends at line {last_seq}): lines may have been deleted"
        ));
    };
    let mut parts = stored.splitn(3, '.');
    let head_seq = parts.next().unwrap_or_default();
    // `seq.journal.mac`, or `seq.mac` as written before 2026-12-06.
    let (recorded_journal, head) = match (parts.next(), parts.next()) {
        (Some(journal), Some(mac)) => (Some(journal.parse::<i64>().ok()), mac),
        (Some(mac), None) => (None, mac),
        _ => (None, ""),
    };
    match head_seq.parse::<i64>() {
        Ok(written) if written > last_seq => {
            return Some(format!(
                "the log ends at line {last_seq} but line {written} was written: lines were deleted"
            ))
        }
        Ok(written) if written == last_seq => {}
        _ => {
            return Some(format!(
            "the log ends at line {last_seq} but the record of its last line names line {head_seq}"
        ))
        }
    }
    let key = audit_keys
        .iter()
        .rev()
        .find(|k| k.from_seq <= last_seq.max(1));
    let verifies = key.is_some_and(|key| {
        let want = match recorded_journal {
            Some(Some(recorded)) => head_mac(key, last_seq, recorded, last_mac),
            Some(None) => return false,
            None => head_mac_of_the_log(key, last_seq, last_mac),
        };
        crypto::constant_time_eq(crypto::hex(&want).as_bytes(), head.as_bytes())
    });
    if !verifies {
        return Some(format!("the record of its last line does not verify for line {last_seq}: lines after it may have been deleted"));
    }
    match recorded_journal.flatten() {
        Some(recorded) if recorded < journal => Some(format!(
            "the record of its last line (line {last_seq}) was written when the journal ended at transaction {recorded}, but it ends at {journal}: lines written since may have been deleted and an older record put back"
        )),
        Some(recorded) if recorded > journal => Some(format!(
            "the record of its last line (line {last_seq}) was written when the journal ended at transaction {recorded}, but it ends at {journal}: journal transactions were deleted"
        )),
        _ => None,
    }
}

/// Appends one line to the chain, signed with `key`, inside the caller's transaction.
/// `details` must hold no PII. (Writer commands call it through `WriteCtx::audit`.)
pub fn append(
    conn: &Connection,
    key: &AuditKey,
    now: i64,
    actor: &str,
    action: &str,
    entity: &str,
    details: &impl serde::Serialize,
) -> Result<()> {
    let head = last_line(conn)?;
    let (seq, mac) = append_line(conn, key, now, &head, actor, action, entity, details)?;
    write_head(conn, key, seq, &mac, newest_journal(conn)?.id)
}

/// The newest line's sequence number and MAC (0 and the genesis MAC for an empty log).
pub fn last_line(conn: &Connection) -> Result<(i64, [u8; 32])> {
    let last: Option<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT seq, mac FROM audit_log ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match last {
        Some((seq, mac)) => (
            seq,
            mac.try_into()
                .map_err(|_| Error::internal("an audit line's MAC is not 32 bytes"))?,
        ),
        None => (0, GENESIS_MAC),
    })
}

/// Writes the keyed record of the newest line as the log now ends, with the journal's newest
/// transaction (`journal`, as the writer read it after the batch) (once per writer batch,
/// before its commit: the lines of a batch are committed together, so the record written with
/// them names the last of them).
pub fn seal_head(conn: &Connection, key: &AuditKey, journal: i64) -> Result<()> {
    let (seq, mac) = last_line(conn)?;
    write_head(conn, key, seq, &mac, journal)
}

/// Appends one line after `head` (the newest line: `last_line`, or what the writer keeps of
/// it) without writing the record of the newest line (the writer seals it once per batch:
/// `seal_head`); returns the new line's sequence number and MAC.
#[allow(clippy::too_many_arguments)]
pub fn append_line(
    conn: &Connection,
    key: &AuditKey,
    now: i64,
    head: &(i64, [u8; 32]),
    actor: &str,
    action: &str,
    entity: &str,
    details: &impl serde::Serialize,
) -> Result<(i64, [u8; 32])> {
    debug_assert!(
        ACTIONS.contains(&action),
        "audit action {action} is not in audit::ACTIONS"
    );
    let (seq, prev_mac) = (head.0 + 1, head.1);
    if seq < key.from_seq {
        return Err(Error::internal("audit key starts after the next line"));
    }
    let at = crate::time::rfc3339(now);
    // The same compact text as `Display` gives, written straight into a buffer.
    let details = serde_json::to_string(details).map_err(Error::internal)?;
    let mac = line_mac(
        key,
        &prev_mac,
        &canonical(seq, &at, actor, action, entity, &details),
    );
    conn.prepare_cached(
        "INSERT INTO audit_log (seq, at, actor, action, entity, details, prev_mac, mac)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        seq,
        at,
        actor,
        action,
        entity,
        details,
        prev_mac.as_slice(),
        mac.as_slice()
    ])?;
    Ok((seq, mac))
}

/// One line of the chain as stored (in the file or in its replica).
#[derive(Debug, Clone)]
pub struct StoredLine {
    /// Position in the chain.
    pub seq: i64,
    /// When.
    pub at: String,
    /// Who.
    pub actor: String,
    /// What happened.
    pub action: String,
    /// To what.
    pub entity: String,
    /// The details as stored (JSON text).
    pub details: String,
    /// The MAC of the line before it.
    pub prev_mac: Vec<u8>,
    /// This line's MAC.
    pub mac: Vec<u8>,
}

/// Verifies a chain fed to it line by line, oldest first, whatever stores it: the file
/// (`verify`) or its PostgreSQL replica. Each break is one sentence.
pub struct ChainVerifier {
    audit_keys: Vec<AuditKey>,
    problems: Vec<String>,
    expected_seq: i64,
    prev: Vec<u8>,
    lines: i64,
    /// The newest time a line was written at (they are in order of their numbers, but the
    /// clock may have been set back).
    newest_at: String,
}

/// The journal as the record of the log's newest line is compared with it: its newest
/// transaction's id (0 for none), and when that transaction was written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewestJournal {
    pub id: i64,
    pub at: Option<String>,
}

impl ChainVerifier {
    /// A verifier for a chain whose keys are stored as `wrapped` (`from_seq`, wrapped key),
    /// unwrapped with `keys`.
    pub fn new(keys: &Keys, wrapped: Vec<(i64, String)>) -> Result<ChainVerifier> {
        let audit_keys = wrapped
            .into_iter()
            .map(|(from_seq, enc)| {
                Ok(AuditKey {
                    from_seq,
                    key: keys.unwrap_audit_key(from_seq, &enc)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ChainVerifier {
            audit_keys,
            problems: Vec::new(),
            expected_seq: 1,
            prev: GENESIS_MAC.to_vec(),
            lines: 0,
            newest_at: String::new(),
        })
    }

    /// Checks the next line.
    pub fn line(&mut self, line: &StoredLine) {
        let seq = line.seq;
        if seq != self.expected_seq {
            self.problems.push(format!(
                "audit line {} is missing (next line is {seq})",
                self.expected_seq
            ));
        }
        if !crypto::constant_time_eq(&line.prev_mac, &self.prev) {
            self.problems.push(format!(
                "audit line {seq} does not chain to the line before it"
            ));
        }
        let key = self.audit_keys.iter().rev().find(|k| k.from_seq <= seq);
        match key {
            Some(key) => {
                let want = line_mac(
                    key,
                    &line.prev_mac,
                    &canonical(
                        seq,
                        &line.at,
                        &line.actor,
                        &line.action,
                        &line.entity,
                        &line.details,
                    ),
                );
                if !crypto::constant_time_eq(&want, &line.mac) {
                    self.problems.push(format!(
                        "audit line {seq} ({} {}) was altered: its MAC does not verify",
                        line.action, line.entity
                    ));
                }
            }
            None => self.problems.push(format!("audit line {seq} has no key")),
        }
        self.prev.clone_from(&line.mac);
        self.expected_seq = seq + 1;
        self.lines += 1;
        if line.at > self.newest_at {
            self.newest_at.clone_from(&line.at);
        }
    }

    /// The lines checked so far.
    pub fn lines(&self) -> i64 {
        self.lines
    }

    /// Every journal transaction is written with an audit line, in the same commit and at the
    /// same time: a journal whose newest transaction was written after the log's newest line
    /// had lines cut off after it. The record of the newest line says so on its own since
    /// 2026-12-06 (it names the journal); this says it of a record written before, which names
    /// the log alone and could be put back after such a cut (unless the transactions' times
    /// were edited too: they carry no MAC).
    fn journal_after_the_log(&self, journal: &NewestJournal) -> Option<String> {
        let written = journal.at.as_deref()?;
        (written > self.newest_at.as_str()).then(|| {
            format!(
                "the journal's newest transaction ({}, written {written}) is newer than the log's newest line ({}): lines may have been deleted and an older record of the last line put back",
                journal.id,
                if self.newest_at.is_empty() { "none" } else { self.newest_at.as_str() }
            )
        })
    }

    /// Ends the chain: compares the stored record of its newest line (`audit_head` in `meta`)
    /// with the last line and the journal's newest transaction (`journal`), and returns every
    /// problem found.
    pub fn finish(mut self, stored_head: Option<String>, journal: &NewestJournal) -> Vec<String> {
        if let Some(problem) = head_problem(
            &self.audit_keys,
            stored_head,
            self.expected_seq - 1,
            &self.prev,
            journal.id,
        )
        .or_else(|| self.journal_after_the_log(journal))
        {
            self.problems.push(problem);
        }
        self.problems
    }
}

/// The wrapped audit keys as stored: (`from_seq`, wrapped key), oldest first.
pub fn stored_keys(conn: &Connection) -> Result<Vec<(i64, String)>> {
    let mut stmt = conn.prepare("SELECT from_seq, key_enc FROM audit_keys ORDER BY from_seq")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// The stored record of the chain's newest line.
pub fn stored_head(conn: &Connection) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([HEAD_META_KEY], |r| r.get(0))
        .optional()?)
}

/// Feeds every line of the file's chain, oldest first, to `each`.
pub fn stored_lines(conn: &Connection, each: &mut dyn FnMut(&StoredLine)) -> Result<()> {
    let mut stmt = conn.prepare(
        "SELECT seq, at, actor, action, entity, details, prev_mac, mac FROM audit_log ORDER BY seq",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        each(&StoredLine {
            seq: r.get(0)?,
            at: r.get(1)?,
            actor: r.get(2)?,
            action: r.get(3)?,
            entity: r.get(4)?,
            details: r.get(5)?,
            prev_mac: r.get(6)?,
            mac: r.get(7)?,
        });
    }
    Ok(())
}

/// One audit line as shown by `GET /audit`.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditLine {
    /// Position in the chain.
    pub seq: i64,
    /// When.
    pub at: String,
    /// Who: a user id or `system:…`.
    pub actor: String,
    /// What happened (`payment_request.approved`).
    pub action: String,
    /// The object it happened to.
    pub entity: String,
    /// Non-PII details.
    pub details: serde_json::Value,
    /// This line's MAC, hex.
    pub mac: String,
}

/// Audit lines about an entity and, for an escrow, about its requests and payouts too.
pub fn lines_for(
    conn: &Connection,
    entity: &str,
    after_seq: i64,
    limit: u32,
) -> Result<Vec<AuditLine>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, at, actor, action, entity, details, mac FROM audit_log
         WHERE seq > ?3 AND (entity = ?1 OR entity IN (SELECT id FROM payment_requests WHERE escrow_id = ?1)
            OR entity IN (SELECT id FROM deposits WHERE escrow_id = ?1)
            OR entity IN (SELECT p.id FROM payouts p JOIN payment_requests r ON r.id = p.payment_request_id
                          WHERE r.escrow_id = ?1))
         ORDER BY seq LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![entity, limit, after_seq], |r| {
        let details: String = r.get(5)?;
        let mac: Vec<u8> = r.get(6)?;
        Ok(AuditLine {
            seq: r.get(0)?,
            at: r.get(1)?,
            actor: r.get(2)?,
            action: r.get(3)?,
            entity: r.get(4)?,
            details: serde_json::from_str(&details).unwrap_or(serde_json::Value::Null),
            mac: crypto::hex(&mac),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The web UI says every action in words, in English and in Kiswahili (before, a sender's
    /// log showed `deposit.refunded` as the code), and has words for no action that is not one.
    #[test]
    fn every_action_has_words_in_both_of_the_uis_languages() {
        let i18n = include_str!("../ui/js/i18n.js");
        for action in ACTIONS {
            assert_eq!(
                i18n.matches(&format!("'audit.action.{action}': ")).count(),
                2,
                "ui/js/i18n.js says {action} in words in both languages, once each"
            );
        }
        for (at, key) in i18n.match_indices("'audit.action.") {
            let action = &i18n[at + key.len()..].split('\'').next().unwrap();
            assert!(
                ACTIONS.contains(action),
                "ui/js/i18n.js has words for {action}"
            );
        }
    }

    #[test]
    fn a_head_names_the_line_and_the_journal_and_one_from_before_still_reads() {
        let keys = [AuditKey {
            from_seq: 1,
            key: [7u8; 32],
        }];
        let mac = [9u8; 32];
        let head = |journal: i64| {
            format!(
                "12.{journal}.{}",
                crypto::hex(&head_mac(&keys[0], 12, journal, &mac))
            )
        };
        assert_eq!(head_problem(&keys, Some(head(40)), 12, &mac, 40), None);
        let grown = head_problem(&keys, Some(head(40)), 12, &mac, 41).unwrap();
        assert!(grown.contains("older record put back"), "{grown}");
        let cut = head_problem(&keys, Some(head(40)), 12, &mac, 39).unwrap();
        assert!(cut.contains("journal transactions were deleted"), "{cut}");
        // The journal's number changed in the record: it does not verify.
        let forged = head(40).replacen(".40.", ".41.", 1);
        let said = head_problem(&keys, Some(forged), 12, &mac, 41).unwrap();
        assert!(said.contains("does not verify"), "{said}");
        let garbled = head(40).replacen(".40.", ".x.", 1);
        assert!(head_problem(&keys, Some(garbled), 12, &mac, 40).is_some());
        // A record written before the journal was named: the log alone, as it was read.
        let before = format!(
            "12.{}",
            crypto::hex(&head_mac_of_the_log(&keys[0], 12, &mac))
        );
        assert_eq!(
            head_problem(&keys, Some(before.clone()), 12, &mac, 41),
            None
        );
        assert!(head_problem(&keys, Some(before), 12, &[8u8; 32], 41).is_some());
    }

    /// Such a record, put back after a cut, is still caught by the journal's times: its newest
    /// transaction is written with an audit line, at the same time.
    #[test]
    fn a_journal_newer_than_the_log_is_a_cut() {
        let verifier = |newest_at: &str| ChainVerifier {
            audit_keys: Vec::new(),
            problems: Vec::new(),
            expected_seq: 13,
            prev: GENESIS_MAC.to_vec(),
            lines: 12,
            newest_at: newest_at.into(),
        };
        let journal = |at: Option<&str>| NewestJournal {
            id: 41,
            at: at.map(str::to_string),
        };
        let log = verifier("2026-12-06T10:00:00Z");
        assert_eq!(log.journal_after_the_log(&journal(None)), None);
        assert_eq!(
            log.journal_after_the_log(&journal(Some("2026-12-06T10:00:00Z"))),
            None
        );
        assert_eq!(
            log.journal_after_the_log(&journal(Some("2026-12-06T09:59:59Z"))),
            None
        );
        let said = log
            .journal_after_the_log(&journal(Some("2026-12-06T10:00:01Z")))
            .unwrap();
        assert!(
            said.contains("older record of the last line put back"),
            "{said}"
        );
        assert!(verifier("")
            .journal_after_the_log(&journal(Some("2026-12-06T10:00:01Z")))
            .is_some());
    }
}
