//! The USD→KES rate: KES 150 per USD until an admin sets one.

use super::Actor;
use crate::error::Result;
use crate::money::RateKesPerUsd;
use crate::store::WriteCtx;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};

/// The current rate and when it was set (`None` while the default applies).
pub fn current(conn: &Connection) -> Result<(RateKesPerUsd, Option<String>)> {
    let row: Option<(i64, String)> = conn
        .prepare_cached("SELECT rate_e4, updated_at FROM fx_rates WHERE pair = 'USD-KES'")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match row {
        Some((e4, at)) => (
            RateKesPerUsd::from_e4(e4).unwrap_or(RateKesPerUsd::DEFAULT),
            Some(at),
        ),
        None => (RateKesPerUsd::DEFAULT, None),
    })
}

/// `GET /fx-rates`.
pub fn rates_json(conn: &Connection) -> Result<Value> {
    let (rate, updated_at) = current(conn)?;
    Ok(json!({"USD-KES": {"rate": rate.json(), "updatedAt": updated_at}}))
}

/// `PUT /fx-rates/USD-KES`, `remit fx set`.
pub fn set(ctx: &WriteCtx<'_>, actor: &Actor, rate: RateKesPerUsd) -> Result<Value> {
    super::require_role(actor, &[])?;
    let at = crate::time::rfc3339(ctx.now);
    ctx.conn.execute(
        "INSERT INTO fx_rates (pair, rate_e4, updated_at, updated_by) VALUES ('USD-KES', ?1, ?2, ?3)
         ON CONFLICT (pair) DO UPDATE SET rate_e4 = excluded.rate_e4, updated_at = excluded.updated_at,
         updated_by = excluded.updated_by",
        params![rate.e4(), at, actor.id],
    )?;
    crate::audit::append(
        ctx,
        &actor.id,
        "fx.rate_set",
        "USD-KES",
        &json!({"rateE4": rate.e4()}),
    )?;
    Ok(json!({"pair": "USD-KES", "rate": rate.json(), "updatedAt": at}))
}
