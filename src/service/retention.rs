//! Forgetting the notifications' bookkeeping once it has done its work. An outbox event older
//! than `REMIT_NOTIFICATIONS_KEEP_DAYS` (30 by default) whose every webhook delivery and text
//! message is final (delivered or failed, sent, logged or failed; or a delivery to an endpoint
//! since deleted, which is never posted) goes, with those deliveries, their attempts and the
//! messages. Without this the outbox and its deliveries grow with every change for ever: at a
//! million escrows the outbox was a quarter of the file.
//!
//! The ledger's own rows (journal, audit log, requests, payouts, deposits) are never touched:
//! an event only told of a change they record. What stays, whatever its age: an event the
//! fan-out has not reached, an event with a delivery or a message still to be sent, and the
//! newest event (its `seq` is where the next one is numbered from: without `AUTOINCREMENT`,
//! SQLite gives a new row the largest rowid plus one, and a reused number would sit behind the
//! fan-out's position and never be sent).
//!
//! A command looks at one window of events in `seq` order, at most `batch`, from the oldest
//! after `after`, and stops at the first one younger than the cutoff (events are numbered in
//! the order of commit, so the rest are younger too), so that its cost is the window's and
//! never the outbox's.

use crate::domain::{DeliveryStatus, SmsStatus};
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
    // The events of the window that something still waits on.
    let mut waiting: HashSet<i64> = HashSet::new();

    // Deliveries, endpoint by endpoint: `UNIQUE (endpoint_id, event_seq)` finds a window's.
    let endpoints: Vec<(String, bool)> = conn
        .prepare_cached("SELECT id, deleted_at IS NOT NULL FROM webhook_endpoints")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let pending = DeliveryStatus::Pending.as_str();
    for (endpoint, deleted) in endpoints {
        let deliveries: Vec<(String, i64, String)> = conn
            .prepare_cached(
                "SELECT id, event_seq, status FROM webhook_deliveries
                 WHERE endpoint_id = ?1 AND event_seq >= ?2 AND event_seq <= ?3",
            )?
            .query_map(params![endpoint, first, last], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        for (id, seq, status) in deliveries {
            if status == pending && !deleted {
                waiting.insert(seq);
                continue;
            }
            conn.prepare_cached("DELETE FROM webhook_attempts WHERE delivery_id = ?1")?
                .execute([&id])?;
            conn.prepare_cached("DELETE FROM webhook_deliveries WHERE id = ?1")?
                .execute([&id])?;
            done.deliveries += 1;
        }
    }

    // Text messages: `UNIQUE (event_seq, user_id)` finds a window's.
    let messages: Vec<(String, i64, String)> = conn
        .prepare_cached(
            "SELECT id, event_seq, status FROM sms_messages WHERE event_seq >= ?1 AND event_seq <= ?2",
        )?
        .query_map(params![first, last], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let unsent = SmsStatus::Pending.as_str();
    for (id, seq, status) in messages {
        if status == unsent {
            waiting.insert(seq);
            continue;
        }
        conn.prepare_cached("DELETE FROM sms_messages WHERE id = ?1")?
            .execute([&id])?;
        done.sms += 1;
    }

    let mut forget = conn.prepare_cached("DELETE FROM outbox_events WHERE seq = ?1")?;
    for seq in old.iter().filter(|seq| !waiting.contains(seq)) {
        done.events += forget.execute([seq])?;
    }
    Ok(done)
}
