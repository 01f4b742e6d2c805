//! Webhook endpoints (where events are posted), their deliveries and every attempt of them:
//! the admin's use cases (create with a secret shown once, list, get, enable, disable, delete,
//! list deliveries, retry one) and the delivery worker's (what is due, what came of it).
//! A delivery that fails is retried with exponential backoff and jitter until its window ends,
//! then it is `failed`; an admin's retry is one more attempt.

use super::{require_role, Actor, Page};
use crate::crypto::{self, EncryptedColumn, Keys};
use crate::domain::{
    DeliveryId, DeliveryStatus, EventId, EventType, WebhookEndpointId, WebhookUrl,
};
use crate::error::{Error, Result};
use crate::limits::{ATTEMPTS_IN_LIST_MAX, WEBHOOK_ENDPOINTS_MAX, WEBHOOK_SECRET_RANDOM_BYTES};
use crate::store::WriteCtx;
use crate::time::in_seconds;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use serde_json::json;
use std::time::Duration;

/// A webhook endpoint as admins see it (never its secret).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)] // named for what they hold
pub struct EndpointView {
    pub webhook_endpoint_id: WebhookEndpointId,
    pub url: String,
    pub events: Vec<EventType>,
    pub enabled: bool,
    pub created_at: String,
    pub updated_at: String,
    /// Deliveries waiting for their next attempt.
    pub pending_deliveries: i64,
    /// Deliveries whose retries ran out.
    pub failed_deliveries: i64,
}

/// A new endpoint, with its signing secret (shown once).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedEndpoint {
    /// The endpoint.
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// `whsec_…`: verify `Remit-Signature` with it. Shown only now.
    pub secret: String,
}

/// Parses the `events` of an endpoint: at least one, each an event type, none twice.
pub fn parse_events(field: &str, items: &[serde_json::Value]) -> Result<Vec<EventType>> {
    if items.is_empty() {
        return Err(Error::invalid(field, "must name at least one event type"));
    }
    let mut events = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let name = format!("{field}[{i}]");
        let text = item
            .as_str()
            .ok_or_else(|| Error::invalid(&name, "must be a string"))?;
        let kind = EventType::parse_field(&name, text)?;
        if events.contains(&kind) {
            return Err(Error::invalid(&name, format!("{kind} is named twice")));
        }
        events.push(kind);
    }
    Ok(events)
}

const ENDPOINT_COLUMNS: &str = "w.id, w.url, w.url_enc, w.events, w.enabled, w.created_at, w.updated_at,
    (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.endpoint_id = w.id AND d.status = 'pending') AS pending,
    (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.endpoint_id = w.id AND d.status = 'failed') AS failed";

fn endpoint_of(keys: &Keys, r: &Row<'_>) -> Result<EndpointView> {
    let events: String = r.get("events")?;
    let events: Vec<String> = serde_json::from_str(&events)
        .map_err(|e| Error::internal(format!("webhook endpoint events: {e}")))?;
    let id: WebhookEndpointId = r.get("id")?;
    // Not sealed yet (schema 17's seal runs at the open after the migration): the whole URL is
    // still in `url`.
    let url = match r.get::<_, Option<String>>("url_enc")? {
        Some(sealed) => keys.open(EncryptedColumn::WebhookUrl, id.as_str(), &sealed)?,
        None => r.get("url")?,
    };
    Ok(EndpointView {
        webhook_endpoint_id: id,
        url,
        events: events
            .iter()
            .map(|e| {
                e.parse()
                    .map_err(|_| Error::internal(format!("unknown event type {e:?}")))
            })
            .collect::<Result<_>>()?,
        enabled: r.get("enabled")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
        pending_deliveries: r.get("pending")?,
        failed_deliveries: r.get("failed")?,
    })
}

/// One endpoint (not deleted), or `NotFound`.
pub fn get(conn: &Connection, keys: &Keys, id: &WebhookEndpointId) -> Result<EndpointView> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints w WHERE w.id = ?1 AND w.deleted_at IS NULL"
    ))?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(r) => endpoint_of(keys, r),
        None => Err(Error::NotFound {
            what: "webhook endpoint",
        }),
    }
}

/// `GET /webhook-endpoints`: the endpoints, oldest first.
pub fn list(
    conn: &Connection,
    keys: &Keys,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page<EndpointView>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints w WHERE w.deleted_at IS NULL
         AND (?1 IS NULL OR w.id > ?1) ORDER BY w.id LIMIT ?2"
    ))?;
    let mut rows = stmt.query(params![cursor, limit + 1])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(endpoint_of(keys, r)?);
    }
    Ok(Page::of(out, limit, |e| e.webhook_endpoint_id.to_string()))
}

/// `POST /webhook-endpoints`: a new endpoint for these event types, with a new signing secret
/// (sealed; shown once). Deliveries start with the events that come after it.
pub fn create(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    url: &WebhookUrl,
    events: &[EventType],
) -> Result<CreatedEndpoint> {
    require_role(actor, &[])?;
    let count: i64 = ctx
        .conn
        .prepare_cached("SELECT COUNT(*) FROM webhook_endpoints WHERE deleted_at IS NULL")?
        .query_row([], |r| r.get(0))?;
    if count >= WEBHOOK_ENDPOINTS_MAX as i64 {
        return Err(Error::NotNow(format!(
            "there are already {WEBHOOK_ENDPOINTS_MAX} webhook endpoints, the most remit keeps; delete one first"
        )));
    }
    let id = WebhookEndpointId::new();
    let secret = format!("whsec_{}", crypto::random_hex(WEBHOOK_SECRET_RANDOM_BYTES));
    let secret_enc = ctx
        .keys
        .seal(EncryptedColumn::WebhookSecret, id.as_str(), &secret)?;
    let url_enc = ctx
        .keys
        .seal(EncryptedColumn::WebhookUrl, id.as_str(), url.as_str())?;
    let names: Vec<&str> = events.iter().map(|e| e.as_str()).collect();
    ctx.conn
        .prepare_cached(
            "INSERT INTO webhook_endpoints (id, url, url_enc, events, secret_enc, enabled, created_by, created_at, updated_at, after_seq)
             VALUES (?1, ?2, ?7, ?3, ?4, 1, ?5, ?6, ?6, ?8)",
        )?
        .execute(params![
            id,
            url.origin(),
            serde_json::to_string(&names).map_err(Error::internal)?,
            secret_enc,
            actor.id,
            ctx.at(),
            url_enc,
            // Events from now on: not those made before it that the fan-out has yet to reach.
            crate::outbox::last_seq(ctx.conn)?
        ])?;
    // The host only (and its origin, since 2026-12-07: the scheme and port, held to the
    // endpoint by `remit check`): a path may carry a receiver's own secret.
    ctx.audit(
        &actor.id,
        "webhook_endpoint.created",
        id.as_str(),
        &json!({"host": url.host(), "origin": url.origin(), "events": names}),
    )?;
    Ok(CreatedEndpoint {
        endpoint: get(ctx.conn, ctx.keys, &id)?,
        secret,
    })
}

/// Enables or disables an endpoint. While disabled, new events are not delivered to it (none are
/// made for it) and its pending deliveries wait; enabling it again resumes them.
pub fn set_enabled(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    id: &WebhookEndpointId,
    enabled: bool,
) -> Result<EndpointView> {
    require_role(actor, &[])?;
    let changed = ctx
        .conn
        .prepare_cached(
            "UPDATE webhook_endpoints SET enabled = ?2, updated_at = ?3
             WHERE id = ?1 AND deleted_at IS NULL AND enabled <> ?2",
        )?
        .execute(params![id, enabled, ctx.at()])?;
    let view = get(ctx.conn, ctx.keys, id)?;
    if changed == 1 {
        ctx.audit(
            &actor.id,
            if enabled {
                "webhook_endpoint.enabled"
            } else {
                "webhook_endpoint.disabled"
            },
            id.as_str(),
            &json!({}),
        )?;
    }
    Ok(view)
}

/// `DELETE /webhook-endpoints/:id`: nothing more is posted to it. Its deliveries are kept (as
/// they were) for the record.
pub fn delete(ctx: &WriteCtx<'_>, actor: &Actor, id: &WebhookEndpointId) -> Result<EndpointView> {
    require_role(actor, &[])?;
    let view = get(ctx.conn, ctx.keys, id)?;
    ctx.conn
        .prepare_cached(
            "UPDATE webhook_endpoints SET deleted_at = ?2, enabled = 0, updated_at = ?2 WHERE id = ?1",
        )?
        .execute(params![id, ctx.at()])?;
    // Its deliveries still waiting will never be made: they end `failed`, saying why, rather
    // than wait for ever (and count as waiting in the metrics).
    let ended = ctx
        .conn
        .prepare_cached(
            "UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, finished_at = ?2,
             last_error = 'the endpoint was deleted before it was delivered'
             WHERE endpoint_id = ?1 AND status = 'pending'",
        )?
        .execute(params![id, ctx.at()])? as i64;
    ctx.audit(
        &actor.id,
        "webhook_endpoint.deleted",
        id.as_str(),
        &json!({}),
    )?;
    // The endpoint as the delete leaves it: its waiting deliveries now failed.
    Ok(EndpointView {
        enabled: false,
        updated_at: ctx.at().to_string(),
        pending_deliveries: 0,
        failed_deliveries: view.failed_deliveries + ended,
        ..view
    })
}

/// One attempt of a delivery.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView {
    /// 1 for the first.
    pub n: i64,
    /// When it was made.
    pub at: String,
    /// The receiver's HTTP status; `null` when no answer came.
    pub status_code: Option<i64>,
    /// How long it took.
    pub duration_ms: i64,
    /// What went wrong (`null` for a 2xx answer).
    pub error: Option<String>,
}

/// A delivery of one event to one endpoint.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)] // named for what they hold
pub struct DeliveryView {
    pub delivery_id: DeliveryId,
    pub webhook_endpoint_id: WebhookEndpointId,
    pub event_id: EventId,
    pub event_type: EventType,
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    /// A failure after this is final.
    pub retry_until: String,
    pub last_attempt_at: Option<String>,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: String,
    /// When it was delivered, or failed for good.
    pub finished_at: Option<String>,
    /// The newest attempts (at most `ATTEMPTS_IN_LIST_MAX` in a list; all in
    /// `GET /webhook-deliveries/:id`), newest first.
    pub attempt_log: Vec<AttemptView>,
}

const DELIVERY_COLUMNS: &str = "d.id, d.endpoint_id, e.id AS event_id, e.type AS event_type, d.status,
    d.attempts, d.next_attempt_at, d.retry_until, d.last_attempt_at, d.last_status_code, d.last_error,
    d.created_at, d.finished_at";

fn delivery_of(r: &Row<'_>) -> Result<DeliveryView> {
    Ok(DeliveryView {
        delivery_id: r.get("id")?,
        webhook_endpoint_id: r.get("endpoint_id")?,
        event_id: r.get("event_id")?,
        event_type: r.get("event_type")?,
        status: r.get("status")?,
        attempts: r.get("attempts")?,
        // Kept to the millisecond (they order the work), said in whole seconds as every time
        // of every answer is.
        next_attempt_at: r
            .get::<_, Option<String>>("next_attempt_at")?
            .map(in_seconds),
        retry_until: in_seconds(r.get("retry_until")?),
        last_attempt_at: r
            .get::<_, Option<String>>("last_attempt_at")?
            .map(in_seconds),
        last_status_code: r.get("last_status_code")?,
        last_error: r.get("last_error")?,
        created_at: in_seconds(r.get("created_at")?),
        finished_at: r.get::<_, Option<String>>("finished_at")?.map(in_seconds),
        attempt_log: Vec::new(),
    })
}

fn attempts_of(conn: &Connection, id: &DeliveryId, limit: u32) -> Result<Vec<AttemptView>> {
    Ok(conn
        .prepare_cached(
            "SELECT n, at, status_code, duration_ms, error FROM webhook_attempts
             WHERE delivery_id = ?1 ORDER BY n DESC LIMIT ?2",
        )?
        .query_map(params![id, limit], |r| {
            Ok(AttemptView {
                n: r.get(0)?,
                at: in_seconds(r.get(1)?),
                status_code: r.get(2)?,
                duration_ms: r.get(3)?,
                error: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?)
}

/// Which endpoints' deliveries a list may show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointsListed {
    /// Only a live endpoint's (`GET /webhook-endpoints/:id/deliveries`: a deleted endpoint's
    /// list is `404` with it, a resource deleted is gone, its parts too).
    Live,
    /// A deleted endpoint's too (`GET /webhook-deliveries?endpointId=`: what was posted to an
    /// endpoint since deleted stays listable, for the admin who looks into it).
    EvenDeleted,
}

/// `GET /webhook-endpoints/:id/deliveries?status=` and `GET /webhook-deliveries?endpointId=`:
/// an endpoint's deliveries, newest event first, each with its newest attempts.
pub fn deliveries(
    conn: &Connection,
    endpoint_id: &WebhookEndpointId,
    listed: EndpointsListed,
    status: Option<DeliveryStatus>,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page<DeliveryView>> {
    // Each delivery stays readable by its id (`GET /webhook-deliveries/:id`) whatever its
    // endpoint became.
    let live: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = ?1 AND (deleted_at IS NULL OR ?2))",
        )?
        .query_row(params![endpoint_id, listed == EndpointsListed::EvenDeleted], |r| r.get(0))?;
    if !live {
        return Err(Error::NotFound {
            what: "webhook endpoint",
        });
    }
    // The list pages by the cursor's event: a cursor whose delivery is not there (forgotten
    // since, `service::retention`, or never made) has no place to go on from, and is `404`
    // like any id of nothing, rather than an empty page that reads as the list's end.
    // The cursor's event is read once and the page goes on from that number, so that a
    // delivery forgotten between the two reads cannot empty the page either.
    let before: Option<i64> = match cursor {
        None => None,
        Some(cursor) => Some(
            conn.prepare_cached("SELECT event_seq FROM webhook_deliveries WHERE id = ?1")?
                .query_row([cursor], |r| r.get(0))
                .optional()?
                .ok_or(Error::NotFound {
                    what: "cursor: its delivery is no longer kept (start again from the first page), or was",
                })?,
        ),
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN outbox_events e ON e.seq = d.event_seq
         WHERE d.endpoint_id = ?1 AND (?2 IS NULL OR d.status = ?2)
         AND (?3 IS NULL OR d.event_seq < ?3)
         ORDER BY d.event_seq DESC LIMIT ?4"
    ))?;
    let mut rows = stmt.query(params![endpoint_id, status, before, limit + 1])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(delivery_of(r)?);
    }
    let mut page = Page::of(out, limit, |d| d.delivery_id.to_string());
    for d in &mut page.items {
        d.attempt_log = attempts_of(conn, &d.delivery_id, ATTEMPTS_IN_LIST_MAX)?;
    }
    Ok(page)
}

/// `GET /webhook-deliveries/:id`: one delivery with every attempt (the newest
/// `AUDIT_ROWS_MAX`).
pub fn delivery(conn: &Connection, id: &DeliveryId) -> Result<DeliveryView> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN outbox_events e ON e.seq = d.event_seq
         WHERE d.id = ?1"
    ))?;
    let mut rows = stmt.query([id])?;
    let Some(r) = rows.next()? else {
        return Err(Error::NotFound {
            what: "webhook delivery",
        });
    };
    let mut view = delivery_of(r)?;
    view.attempt_log = attempts_of(conn, id, crate::limits::AUDIT_ROWS_MAX)?;
    Ok(view)
}

/// `POST /webhook-deliveries/:id/retry`: one more attempt, now (whatever its state: a delivered
/// event may be sent again; receivers deduplicate on the event id). If that attempt fails the
/// delivery is `failed` again: an admin's retry does not start a new window of retries.
pub fn retry(ctx: &WriteCtx<'_>, actor: &Actor, id: &DeliveryId) -> Result<DeliveryView> {
    require_role(actor, &[])?;
    let endpoint: Option<(WebhookEndpointId, Option<String>)> = ctx
        .conn
        .prepare_cached(
            "SELECT w.id, w.deleted_at FROM webhook_deliveries d
             JOIN webhook_endpoints w ON w.id = d.endpoint_id WHERE d.id = ?1",
        )?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((endpoint_id, deleted_at)) = endpoint else {
        return Err(Error::NotFound {
            what: "webhook delivery",
        });
    };
    if deleted_at.is_some() {
        return Err(Error::NotNow(
            "its webhook endpoint was deleted: nothing is posted to it any more".into(),
        ));
    }
    let now = crate::time::rfc3339_ms(crate::time::now_unix_ms());
    // One attempt now. A delivery still in its three days keeps them (the retry only brings
    // its next attempt forward); one that ended gets this attempt alone.
    ctx.conn
        .prepare_cached(
            "UPDATE webhook_deliveries SET next_attempt_at = ?2, finished_at = NULL,
             retry_until = CASE WHEN status = 'pending' AND retry_until > ?2 THEN retry_until ELSE ?2 END,
             status = 'pending' WHERE id = ?1",
        )?
        .execute(params![id, now])?;
    ctx.audit(
        &actor.id,
        "webhook_delivery.retried",
        id.as_str(),
        &json!({"webhookEndpointId": endpoint_id}),
    )?;
    delivery(ctx.conn, id)
}

// ---------------------------------------------------------------------------------------------
// The delivery worker's side.

/// What a worker needs of its endpoint: where to post and what to sign with (decrypted here).
pub struct WorkerEndpoint {
    /// Where.
    pub url: WebhookUrl,
    /// `whsec_…`.
    pub secret: String,
    /// Deliveries wait while it is disabled.
    pub enabled: bool,
}

/// The endpoint as its worker needs it; `None` once it is deleted.
pub fn for_worker(
    conn: &Connection,
    keys: &Keys,
    id: &WebhookEndpointId,
) -> Result<Option<WorkerEndpoint>> {
    let row: Option<((String, bool), String, bool)> = conn
        .prepare_cached(
            "SELECT COALESCE(url_enc, url), url_enc IS NOT NULL, secret_enc, enabled FROM webhook_endpoints
             WHERE id = ?1 AND deleted_at IS NULL",
        )?
        .query_row([id], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?, r.get(3)?)))
        .optional()?;
    let Some(((url, sealed), secret_enc, enabled)) = row else {
        return Ok(None);
    };
    // Not sealed yet (schema 17's seal runs at the open after the migration): in the clear.
    let url = if sealed {
        keys.open(EncryptedColumn::WebhookUrl, id.as_str(), &url)?
    } else {
        url
    };
    Ok(Some(WorkerEndpoint {
        url: WebhookUrl::from_stored(url),
        secret: keys.open(EncryptedColumn::WebhookSecret, id.as_str(), &secret_enc)?,
        enabled,
    }))
}

/// The endpoints that are not deleted (each has a worker).
pub fn live_ids(conn: &Connection) -> Result<Vec<WebhookEndpointId>> {
    Ok(conn
        .prepare_cached("SELECT id FROM webhook_endpoints WHERE deleted_at IS NULL ORDER BY id")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?)
}

/// A delivery due now, with its event.
pub struct DueDelivery {
    /// `dlv_…`.
    pub id: DeliveryId,
    /// The event it posts.
    pub event: crate::outbox::Event,
}

/// At most `limit` deliveries of an endpoint due at `now_ms` (Unix milliseconds), the longest
/// waiting first.
pub fn due(
    conn: &Connection,
    endpoint_id: &WebhookEndpointId,
    now_ms: i64,
    limit: u32,
) -> Result<Vec<DueDelivery>> {
    Ok(conn
        .prepare_cached(
            "SELECT d.id AS delivery_id, e.seq, e.id, e.type, e.created_at, e.data
             FROM webhook_deliveries d JOIN outbox_events e ON e.seq = d.event_seq
             WHERE d.endpoint_id = ?1 AND d.status = 'pending' AND d.next_attempt_at <= ?2
             ORDER BY d.next_attempt_at, d.event_seq LIMIT ?3",
        )?
        .query_map(
            params![endpoint_id, crate::time::rfc3339_ms(now_ms), limit],
            |r| {
                Ok(DueDelivery {
                    id: r.get("delivery_id")?,
                    event: crate::outbox::Event {
                        seq: r.get("seq")?,
                        id: r.get("id")?,
                        kind: r.get("type")?,
                        created_at: r.get("created_at")?,
                        data: r.get("data")?,
                    },
                })
            },
        )?
        .collect::<rusqlite::Result<_>>()?)
}

/// When an endpoint's next pending delivery is due (RFC 3339 with milliseconds), if any.
pub fn next_due_at(conn: &Connection, endpoint_id: &WebhookEndpointId) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE endpoint_id = ?1 AND status = 'pending'",
        )?
        .query_row([endpoint_id], |r| r.get(0))?)
}

/// One attempt, as the worker made it.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The delivery.
    pub delivery_id: DeliveryId,
    /// When it started (Unix milliseconds).
    pub at_ms: i64,
    /// The receiver's status, if it answered.
    pub status_code: Option<u16>,
    /// How long it took.
    pub duration: Duration,
    /// What went wrong; `None` for a 2xx answer.
    pub error: Option<String>,
}

impl Attempt {
    /// Did the receiver take it (a 2xx answer)?
    pub fn delivered(&self) -> bool {
        self.error.is_none() && self.status_code.is_some_and(|s| (200..300).contains(&s))
    }
}

/// When to try again after failed attempt `n`: `base × 2^(n−1)`, at most `cap`, with "equal
/// jitter" (half of it fixed, half random) so that many deliveries that failed together do not
/// come back together.
pub fn backoff(n: i64, base: Duration, cap: Duration) -> Duration {
    let shift = u32::try_from(n.clamp(1, 40) - 1).unwrap_or(0);
    let full = base
        .as_millis()
        .saturating_mul(1u128 << shift.min(100))
        .min(cap.as_millis()) as u64;
    let mut random = [0u8; 8];
    crypto::fill_random(&mut random);
    let half = full / 2;
    let jitter = u64::from_le_bytes(random) % (full - half + 1);
    Duration::from_millis(half + jitter)
}

/// What a `record` did, for the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Attempts recorded.
    pub attempts: u64,
    /// Deliveries that were taken.
    pub delivered: u64,
    /// Deliveries that failed for good (their window ended).
    pub failed: u64,
    /// Deliveries to be tried again.
    pub retrying: u64,
}

/// Records attempts (one writer command for many, so that deliveries cost the writer little):
/// every attempt in `webhook_attempts`; a 2xx delivers; a failure schedules the next attempt
/// (`backoff`) unless it would fall after the delivery's `retry_until`, which fails it for good.
/// A delivery that is no longer pending (an admin changed it meanwhile) keeps its attempt and
/// nothing else changes.
pub fn record(
    ctx: &WriteCtx<'_>,
    attempts: &[Attempt],
    base: Duration,
    cap: Duration,
) -> Result<Tally> {
    let mut tally = Tally::default();
    for a in attempts {
        let at = crate::time::rfc3339_ms(a.at_ms);
        let row: Option<(i64, String)> = ctx
            .conn
            .prepare_cached(
                // An attempt that ends after its delivery ended (its endpoint was deleted
                // meanwhile) is logged, but leaves the delivery's last word as it was.
                "UPDATE webhook_deliveries SET attempts = attempts + 1, last_attempt_at = ?2,
                 last_status_code = CASE WHEN status = 'pending' THEN ?3 ELSE last_status_code END,
                 last_error = CASE WHEN status = 'pending' THEN ?4 ELSE last_error END
                 WHERE id = ?1 RETURNING attempts, retry_until",
            )?
            .query_row(params![a.delivery_id, at, a.status_code, a.error], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let Some((n, retry_until)) = row else {
            continue;
        };
        ctx.conn
            .prepare_cached(
                "INSERT INTO webhook_attempts (delivery_id, n, at, status_code, duration_ms, error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                a.delivery_id,
                n,
                at,
                a.status_code,
                a.duration.as_millis() as i64,
                a.error
            ])?;
        tally.attempts += 1;
        let done_at = crate::time::rfc3339_ms(a.at_ms + a.duration.as_millis() as i64);
        let (status, next) = if a.delivered() {
            (DeliveryStatus::Delivered, None)
        } else {
            let next = crate::time::rfc3339_ms(
                a.at_ms + a.duration.as_millis() as i64 + backoff(n, base, cap).as_millis() as i64,
            );
            if next > retry_until {
                (DeliveryStatus::Failed, None)
            } else {
                (DeliveryStatus::Pending, Some(next))
            }
        };
        let finished = next.is_none().then_some(&done_at);
        let changed = ctx
            .conn
            .prepare_cached(
                "UPDATE webhook_deliveries SET status = ?2, next_attempt_at = ?3, finished_at = ?4
                 WHERE id = ?1 AND status = 'pending'",
            )?
            .execute(params![a.delivery_id, status, next, finished])?;
        // Counted only when this attempt decided it: a delivery an admin ended meanwhile (its
        // endpoint deleted) is not counted again as delivered or failed.
        if changed == 1 {
            match status {
                DeliveryStatus::Delivered => tally.delivered += 1,
                DeliveryStatus::Failed => tally.failed += 1,
                _ => tally.retrying += 1,
            }
        }
    }
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guards against: an endpoint's count of failed deliveries read every delivery it kept
    /// (the index of failed ones is by id), 2 ms per thousand, in the writer's turn when an
    /// endpoint was disabled or enabled.
    #[test]
    fn an_endpoints_failed_deliveries_are_counted_by_an_index_led_by_the_endpoint() {
        let conn = crate::store::migrated_in_memory().unwrap();
        let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints w WHERE w.id = 'x'");
        let plan = crate::store::query_plan(&conn, &sql, []);
        assert!(
            plan.iter()
                .any(|step| step.contains("webhook_deliveries_failed_by_endpoint (endpoint_id=?)")),
            "{plan:#?}"
        );
        assert!(
            !plan
                .iter()
                .any(|step| step.contains("sqlite_autoindex_webhook_deliveries")),
            "{plan:#?}"
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_in_its_upper_half() {
        let base = Duration::from_secs(10);
        let cap = Duration::from_secs(3600);
        for n in 1..=30 {
            let full = (10_000u64 << (n - 1).min(30)).min(3_600_000);
            let d = backoff(n, base, cap).as_millis() as u64;
            assert!(d >= full / 2 && d <= full, "attempt {n}: {d} ms of {full}");
        }
        // A zero base never panics (tests use tiny delays).
        assert_eq!(backoff(3, Duration::ZERO, cap), Duration::ZERO);
    }

    #[test]
    fn event_lists_are_checked() {
        let ok = parse_events(
            "events",
            &[json!("payment_request.paid"), json!("float.low")],
        )
        .unwrap();
        assert_eq!(ok, vec![EventType::PaymentRequestPaid, EventType::FloatLow]);
        assert!(parse_events("events", &[]).is_err());
        assert!(parse_events(
            "events",
            &[json!("payment_request.paid"), json!("payment_request.paid")]
        )
        .is_err());
        let unknown = parse_events("events", &[json!("payment_request.cancelled")]).unwrap_err();
        assert!(matches!(unknown, Error::Validation { field, .. } if field == "events[0]"));
    }
}
