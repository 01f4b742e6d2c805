//! The outbox: every change a person or another system should hear about, as an event
//! (`evt_…`, its type, when, and data of ids, states and amounts), appended by the writer
//! command that makes the change (`WriteCtx::emit`). So an event exists exactly when its change
//! committed: a command that rolls back takes its events with it. Readers of the outbox (the
//! fan-out) keep their position in `outbox_positions`, moved in the same command as what they
//! made of the events. Never: a name, a phone or a merchant detail in an event's data.

use crate::domain::{EventId, EventType};
use crate::error::Result;
use rusqlite::{params, Connection, OptionalExtension};

/// `data` (an object) with the amount of a payment request, as every event about one carries
/// it (`Amounts`'s fields, after `data`'s own).
pub fn with_amounts(
    mut data: serde_json::Value,
    kes: crate::money::KesCents,
    usd: crate::money::UsdCents,
) -> serde_json::Value {
    if let (Some(fields), Ok(serde_json::Value::Object(amounts))) = (
        data.as_object_mut(),
        serde_json::to_value(Amounts::of(kes, usd)),
    ) {
        fields.extend(amounts);
    }
    data
}

/// The amount of a payment request as every event about one carries it: shillings and
/// dollars, each as a decimal and in cents. `with_amounts` adds it to a `serde_json::Value`; an
/// event written as a struct flattens it after its own fields (`#[serde(flatten)]`).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Amounts {
    amount_kes: crate::money::Decimal,
    amount_kes_cents: i64,
    amount_usd: crate::money::Decimal,
    amount_usd_cents: i64,
}

impl Amounts {
    /// The amount of a request in shillings and dollars.
    pub fn of(kes: crate::money::KesCents, usd: crate::money::UsdCents) -> Amounts {
        Amounts {
            amount_kes: kes.major(),
            amount_kes_cents: kes.get(),
            amount_usd: usd.major(),
            amount_usd_cents: usd.get(),
        }
    }
}

/// Appends an event; returns its id.
pub fn append(
    conn: &Connection,
    at: &str,
    kind: EventType,
    data: &impl serde::Serialize,
) -> Result<EventId> {
    let id = EventId::new();
    conn.prepare_cached(
        "INSERT INTO outbox_events (id, type, created_at, data) VALUES (?1, ?2, ?3, ?4)",
    )?
    // Straight into a buffer: `Display` writes the same text through a formatter, slower.
    .execute(params![
        id,
        kind,
        at,
        serde_json::to_string(data).map_err(crate::error::Error::internal)?
    ])?;
    Ok(id)
}

/// An event as stored.
#[derive(Debug, Clone)]
pub struct Event {
    /// Its place in the outbox (the order of commit).
    pub seq: i64,
    /// `evt_…`.
    pub id: EventId,
    /// What happened.
    pub kind: EventType,
    /// When (RFC 3339).
    pub created_at: String,
    /// Its data, as JSON text.
    pub data: String,
}

impl Event {
    /// The data as JSON.
    pub fn data_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap_or(serde_json::Value::Null)
    }
}

fn event_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Event> {
    Ok(Event {
        seq: r.get("seq")?,
        id: r.get("id")?,
        kind: r.get("type")?,
        created_at: r.get("created_at")?,
        data: r.get("data")?,
    })
}

/// At most `limit` events after `seq`, in order.
pub fn after(conn: &Connection, seq: i64, limit: u32) -> Result<Vec<Event>> {
    Ok(conn
        .prepare_cached(
            "SELECT seq, id, type, created_at, data FROM outbox_events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?
        .query_map(params![seq, limit], event_of)?
        .collect::<rusqlite::Result<_>>()?)
}

/// One event by its place.
pub fn by_seq(conn: &Connection, seq: i64) -> Result<Option<Event>> {
    Ok(conn
        .prepare_cached("SELECT seq, id, type, created_at, data FROM outbox_events WHERE seq = ?1")?
        .query_row([seq], event_of)
        .optional()?)
}

/// Where a reader of the outbox has come to.
pub fn position(conn: &Connection, consumer: &str) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT seq FROM outbox_positions WHERE consumer = ?1")?
        .query_row([consumer], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Moves a reader's position (in the same command as what it made of the events).
pub fn set_position(conn: &Connection, consumer: &str, seq: i64) -> Result<()> {
    conn.prepare_cached("UPDATE outbox_positions SET seq = ?2 WHERE consumer = ?1")?
        .execute(params![consumer, seq])?;
    Ok(())
}

/// The newest event's place (0 for an empty outbox).
pub fn last_seq(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM outbox_events")?
        .query_row([], |r| r.get(0))?)
}

#[cfg(test)]
mod tests {
    /// Events and audit lines are serialised with `serde_json::to_string`, and the audit
    /// chain's MACs cover that text: it must stay exactly what `Display` wrote before.
    #[test]
    fn serialised_json_is_the_display_text() {
        let value = serde_json::json!({
            "zeta": 1, "alpha": [1.50, -0.0, 12345678901234567890u64],
            "text": "a \"quoted\" line\nwith é, \u{1F600} and \u{0007}",
            "nested": {"b": null, "a": true, "amount": crate::money::UsdCents::new(6_667).unwrap().major()},
        });
        assert_eq!(serde_json::to_string(&value).unwrap(), value.to_string());
    }
}
