//! Forgetting the notifications' bookkeeping once it has done its work. A webhook delivery that
//! is final (delivered or failed) and a text message that is no longer pending are forgotten
//! once their last change (a delivery's `finished_at`, a message's `updated_at`) is older than
//! `REMIT_NOTIFICATIONS_KEEP_DAYS` (30 by default); an outbox event goes when it is that old
//! too and nothing of it is left. Without this the outbox and its deliveries grow with every
//! change for ever: at a million escrows the outbox was a quarter of the file.
//!
//! The ledger's own rows (journal, audit log, requests, payouts, deposits) are never touched:
//! an event only told of a change they record. What stays, whatever its age: an event the
//! fan-out has not reached, an event with a delivery or a message still to be sent or changed
//! within the keeping (a failed delivery stays that long after it failed, for an admin to see
//! and send again), and the newest event (its `seq` is where the next one is numbered from:
//! without `AUTOINCREMENT`, SQLite gives a new row the largest rowid plus one, and a reused
//! number would sit behind the fan-out's position and never be sent).
//!
//! A command looks at one window of events in `seq` order, at most `batch`, from the oldest
//! after `after`, and stops at the first one younger than the cutoff (events are numbered in
//! the order of commit, so the rest are younger too). Deliveries and messages are found by
//! their event (`webhook_deliveries_event`, the messages' `UNIQUE (event_seq, user_id)`), and
//! so is every row that names an event when the event goes (the foreign keys' checks): the
//! cost is the window's, never the outbox's.

use crate::error::Result;
use crate::store::WriteCtx;
use rusqlite::params;
use std::collections::HashSet;

/// What one command forgot, and where the next one goes on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forgotten {
    /// Events deleted.
    pub events: usize,
    /// Webhook deliveries deleted (with their attempts).
    pub deliveries: usize,
    /// Text messages deleted.
    pub sms: usize,
    /// The window was full of old events: the next command starts after this `seq`. `None`
    /// when the window reached events younger than the cutoff, the fan-out's position or the
    /// newest event: the next pass starts from the oldest again.
    pub more_after: Option<i64>,
}

/// Forgets, in one command, the events after `after` (at most `batch` of them) that are older
/// than `keep_s` seconds and done with, and what was made of them (see the module's text).
pub fn forget_done(ctx: &WriteCtx<'_>, keep_s: i64, after: i64, batch: u32) -> Result<Forgotten> {
    let conn = ctx.conn;
    let cutoff = crate::time::rfc3339(ctx.now - keep_s);
    let reached = crate::outbox::position(conn, super::fanout::CONSUMER)?;
    let upto = reached.min(crate::outbox::last_seq(conn)? - 1);
    let window: Vec<(i64, String)> = conn
        .prepare_cached(
            "SELECT seq, created_at FROM outbox_events WHERE seq > ?1 AND seq <= ?2 ORDER BY seq LIMIT ?3",
        )?
        .query_map(params![after, upto, batch], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let old: Vec<i64> = window
        .iter()
        .take_while(|(_, at)| at.as_str() < cutoff.as_str())
        .map(|(seq, _)| *seq)
        .collect();
    let mut done = Forgotten::default();
    let (Some(&first), Some(&last)) = (old.first(), old.last()) else {
        return Ok(done);
    };
    if old.len() == window.len() && window.len() >= batch as usize {
        done.more_after = Some(last);
    }
    // The events of the window that something is still kept for.
    let mut kept: HashSet<i64> = HashSet::new();
    let mut rows = |sql: &str| -> Result<Vec<String>> {
        let mut forgettable = Vec::new();
        for row in conn
            .prepare_cached(sql)?
            .query_map(params![first, last, cutoff], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, bool>(2)?,
                ))
            })?
        {
            let (id, seq, done_long_ago) = row?;
            if done_long_ago {
                forgettable.push(id);
            } else {
                kept.insert(seq);
            }
        }
        Ok(forgettable)
    };
    let deliveries = rows(
        "SELECT id, event_seq, status <> 'pending' AND finished_at IS NOT NULL AND finished_at < ?3
         FROM webhook_deliveries WHERE event_seq >= ?1 AND event_seq <= ?2",
    )?;
    let messages = rows(
        "SELECT id, event_seq, status <> 'pending' AND updated_at < ?3
         FROM sms_messages WHERE event_seq >= ?1 AND event_seq <= ?2",
    )?;
    for id in &deliveries {
        conn.prepare_cached("DELETE FROM webhook_attempts WHERE delivery_id = ?1")?
            .execute([id])?;
        conn.prepare_cached("DELETE FROM webhook_deliveries WHERE id = ?1")?
            .execute([id])?;
    }
    for id in &messages {
        conn.prepare_cached("DELETE FROM sms_messages WHERE id = ?1")?
            .execute([id])?;
    }
    done.deliveries = deliveries.len();
    done.sms = messages.len();

    let mut forget = conn.prepare_cached("DELETE FROM outbox_events WHERE seq = ?1")?;
    for seq in old.iter().filter(|seq| !kept.contains(seq)) {
        done.events += forget.execute([seq])?;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    /// Every row that names a row this module deletes is found by an index led by that column:
    /// SQLite's check of a foreign key, when the row it names is deleted, looks for it that way,
    /// and without such an index reads the whole table for each row deleted (schema 14).
    #[test]
    fn every_row_naming_a_forgotten_row_is_found_by_an_index() {
        let conn = crate::store::migrated_in_memory().unwrap();
        let forgotten = [
            "outbox_events",
            "webhook_deliveries",
            "webhook_attempts",
            "sms_messages",
        ];
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let mut checked = 0;
        for table in &tables {
            let keys: Vec<(String, String)> = conn
                .prepare(&format!(
                    "SELECT \"table\", \"from\" FROM pragma_foreign_key_list('{table}')"
                ))
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            for (parent, column) in keys {
                if !forgotten.contains(&parent.as_str()) {
                    continue;
                }
                checked += 1;
                let led: bool = conn
                    .query_row(
                        "SELECT EXISTS (SELECT 1 FROM pragma_index_list(?1) l
                         JOIN pragma_index_info(l.name) i
                         WHERE l.partial = 0 AND i.seqno = 0 AND i.name = ?2)",
                        [table.as_str(), column.as_str()],
                        |r| r.get(0),
                    )
                    .unwrap();
                assert!(led, "{table}.{column} names {parent} but leads no index");
            }
        }
        assert!(checked >= 3, "{checked}");
    }
}
