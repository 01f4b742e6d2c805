//! The USD→KES rate: KES 150 per USD until an admin sets one.

use super::Actor;
use crate::error::Result;
use crate::money::{Decimal, RateKesPerUsd};
use crate::store::WriteCtx;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::json;

/// The current rate and when it was set (`None` while the default applies).
pub fn current(conn: &Connection) -> Result<(RateKesPerUsd, Option<String>)> {
    let row: Option<(RateKesPerUsd, String)> = conn
        .prepare_cached(
            "SELECT rate_kes_per_usd_e4, updated_at FROM fx_rates WHERE pair = 'USD-KES'",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match row {
        Some((rate, at)) => (rate, Some(at)),
        None => (RateKesPerUsd::DEFAULT, None),
    })
}

/// A rate and when it was set.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RateView {
    /// KES per USD.
    pub rate: Decimal,
    /// When an admin set it (`null` for the default).
    pub updated_at: Option<String>,
}

/// `GET /fx-rates`: every pair.
#[derive(Debug, Clone, Serialize)]
pub struct RatesView {
    /// The only pair.
    #[serde(rename = "USD-KES")]
    pub usd_kes: RateView,
}

/// A rate just set.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RateSet {
    /// `USD-KES`.
    pub pair: &'static str,
    /// KES per USD.
    pub rate: Decimal,
    /// Now.
    pub updated_at: String,
}

/// `GET /fx-rates`.
pub fn rates(conn: &Connection) -> Result<RatesView> {
    let (rate, updated_at) = current(conn)?;
    Ok(RatesView {
        usd_kes: RateView {
            rate: rate.decimal(),
            updated_at,
        },
    })
}

/// `PUT /fx-rates/USD-KES`, `remit fx set`.
pub fn set(ctx: &WriteCtx<'_>, actor: &Actor, rate: RateKesPerUsd) -> Result<RateSet> {
    super::require_role(actor, &[])?;
    let at = ctx.at();
    ctx.conn.prepare_cached("INSERT INTO fx_rates (pair, rate_kes_per_usd_e4, updated_at, updated_by, change_seq)
         VALUES ('USD-KES', ?1, ?2, ?3, remit_change_seq())
         ON CONFLICT (pair) DO UPDATE SET rate_kes_per_usd_e4 = excluded.rate_kes_per_usd_e4,
         updated_at = excluded.updated_at, updated_by = excluded.updated_by, change_seq = excluded.change_seq")?.execute(params![rate, at, actor.id])?;
    ctx.audit(
        &actor.id,
        "fx.rate_set",
        "USD-KES",
        &json!({"rateKesPerUsdE4": rate.e4()}),
    )?;
    Ok(RateSet {
        pair: "USD-KES",
        rate: rate.decimal(),
        updated_at: at,
    })
}
