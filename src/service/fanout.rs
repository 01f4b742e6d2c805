//! The fan-out: new outbox events become webhook deliveries (one per endpoint subscribed to the
//! event's type, enabled now) and SMS (`service::sms`), and the fan-out's position moves past
//! them, all in one writer command: a crash before its commit leaves the position where it was
//! (the events are fanned out again, none lost), after it leaves nothing to redo (none twice;
//! `UNIQUE (endpoint_id, event_seq)` would refuse a second delivery of an event anyway).

use crate::domain::{DeliveryId, DeliveryStatus, EventType, WebhookEndpointId};
use crate::error::{Error, Result};
use crate::store::WriteCtx;
use rusqlite::params;
use std::time::Duration;

/// The name of the fan-out's position in `outbox_positions`.
pub(super) const CONSUMER: &str = "fanout";

/// What a fan-out command did.
#[derive(Debug, Clone, Default)]
pub struct FanOut {
    /// Events fanned out.
    pub events: usize,
    /// The endpoints that got new deliveries (their workers are woken).
    pub endpoints: Vec<WebhookEndpointId>,
    /// Messages made.
    pub sms: usize,
    /// More events are waiting (the command took its most).
    pub more: bool,
}

/// How the fan-out makes what it makes.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Events per command at most.
    pub max_events: u32,
    /// How long a delivery is retried.
    pub retry_for: Duration,
    /// The SMS gateway's name, kept with each message.
    pub sms_gateway: &'static str,
    /// Whether it sends (else messages are only `logged`).
    pub sms_sends: bool,
}

/// Fans out the events after the fan-out's position, at most `options.max_events`.
pub fn fan_out(ctx: &WriteCtx<'_>, options: &Options) -> Result<FanOut> {
    let position = crate::outbox::position(ctx.conn, CONSUMER)?;
    let events = match crate::outbox::after(ctx.conn, position, options.max_events) {
        Ok(events) => events,
        // A damaged event (its stored text not text) stopped every notification after it, the
        // fan-out failing on it every second: the events before it are fanned out, and it is
        // passed over, said in the log and the audit log.
        Err(Error::Damaged(_)) => match readable_events(ctx, position, options.max_events)? {
            Readable::Events(events) => events,
            Readable::Unreadable(seq) => {
                crate::outbox::set_position(ctx.conn, CONSUMER, seq)?;
                return Ok(FanOut {
                    more: true,
                    ..FanOut::default()
                });
            }
        },
        Err(e) => return Err(e),
    };
    let Some(last) = events.last().map(|e| e.seq) else {
        return Ok(FanOut::default());
    };
    // Each endpoint with the events it takes, and the newest event made before it was (it
    // receives only those after: schema 19).
    let endpoints: Vec<(WebhookEndpointId, Vec<EventType>, i64)> = ctx
        .conn
        .prepare_cached(
            "SELECT id, events, after_seq FROM webhook_endpoints WHERE enabled = 1 AND deleted_at IS NULL ORDER BY id",
        )?
        .query_map([], |r| {
            Ok((
                r.get::<_, WebhookEndpointId>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?
        .map(|row| {
            let (id, events, after) = row?;
            let names: Vec<String> = serde_json::from_str(&events)
                .map_err(|e| Error::internal(format!("webhook endpoint events: {e}")))?;
            Ok((id, names.iter().filter_map(|n| n.parse().ok()).collect(), after))
        })
        .collect::<Result<_>>()?;
    let now_ms = crate::time::now_unix_ms();
    let now = crate::time::rfc3339_ms(now_ms);
    let retry_until = crate::time::rfc3339_ms(now_ms + options.retry_for.as_millis() as i64);
    let mut out = FanOut {
        events: events.len(),
        more: events.len() as u32 >= options.max_events,
        ..FanOut::default()
    };
    let mut insert = ctx.conn.prepare_cached(
        "INSERT INTO webhook_deliveries (id, endpoint_id, event_seq, status, next_attempt_at, retry_until, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for event in &events {
        for (endpoint_id, kinds, after) in &endpoints {
            if event.seq <= *after || !kinds.contains(&event.kind) {
                continue;
            }
            insert.execute(params![
                DeliveryId::new(),
                endpoint_id,
                event.seq,
                DeliveryStatus::Pending,
                now,
                retry_until,
                ctx.at()
            ])?;
            if !out.endpoints.contains(endpoint_id) {
                out.endpoints.push(endpoint_id.clone());
            }
        }
        if super::sms::make_for_event(ctx, event, options.sms_gateway, options.sms_sends)? {
            out.sms += 1;
        }
    }
    crate::outbox::set_position(ctx.conn, CONSUMER, last)?;
    Ok(out)
}

/// What can be read after a position when a page of events could not be.
enum Readable {
    /// The events up to the first that cannot be read.
    Events(Vec<crate::outbox::Event>),
    /// The first event after the position cannot be read: passed over.
    Unreadable(i64),
}

/// The events after `position`, one at a time, up to the first that cannot be read; when that
/// is the first, it is passed over: an ERROR in the log and a `notifications.event_unreadable`
/// audit line name it (its place only: its text cannot be read).
fn readable_events(ctx: &WriteCtx<'_>, position: i64, max: u32) -> Result<Readable> {
    let seqs: Vec<i64> = ctx
        .conn
        .prepare_cached("SELECT seq FROM outbox_events WHERE seq > ?1 ORDER BY seq LIMIT ?2")?
        .query_map(params![position, max], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut events = Vec::new();
    for seq in seqs {
        match crate::outbox::by_seq(ctx.conn, seq) {
            Ok(Some(event)) => events.push(event),
            Ok(None) => break,
            Err(Error::Damaged(_)) if events.is_empty() => {
                log::error!(
                    "event {seq} of the outbox cannot be read (its stored text is damaged): it is passed over, and no webhook or text message is made of it; run `remit check`, and restore from a backup if it finds the file damaged (README, \"Restore drill\")"
                );
                ctx.audit(
                    "system:notify",
                    "notifications.event_unreadable",
                    "outbox",
                    &serde_json::json!({"seq": seq}),
                )?;
                return Ok(Readable::Unreadable(seq));
            }
            Err(Error::Damaged(_)) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(Readable::Events(events))
}

/// How many events are waiting for the fan-out (for `/metrics`).
pub fn backlog(conn: &rusqlite::Connection) -> Result<i64> {
    Ok(crate::outbox::last_seq(conn)? - crate::outbox::position(conn, CONSUMER)?)
}
