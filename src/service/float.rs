//! The float: the M-Pesa account balances payouts are paid from (B2C from the Utility account,
//! B2B from the Working account), as the last Account Balance result reported them.

use crate::domain::EventType;
use crate::error::Result;
use crate::money::{Decimal, KesCents};
use crate::store::WriteCtx;
use crate::wire::daraja::results::AccountBalance;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::json;

/// The accounts that pay payouts, whose balance below the alert is worth a warning.
const PAYING_ACCOUNTS: [&str; 2] = ["Utility Account", "Working Account"];

/// An Account Balance query was sent; its result will carry `conversation_id`.
pub fn balance_asked(ctx: &WriteCtx<'_>, conversation_id: &str) -> Result<()> {
    ctx.conn
        .prepare_cached(
            "INSERT OR IGNORE INTO daraja_queries (conversation_id, kind, sent_at, change_seq)
             VALUES (?1, 'account_balance', ?2, remit_change_seq())",
        )?
        .execute(params![conversation_id, ctx.at()])?;
    Ok(())
}

/// Is this a paying account below the alert? The alert is in shillings: an account M-Pesa
/// reports in another currency is kept as reported (with its currency), never compared with it.
fn below_alert(name: &str, currency: &str, cents: i64, alert: KesCents) -> bool {
    currency.eq_ignore_ascii_case("KES") && PAYING_ACCOUNTS.contains(&name) && cents < alert.get()
}

/// Keeps the balances a result reported; returns the paying accounts now below `alert`.
pub fn record(
    ctx: &WriteCtx<'_>,
    balances: &[AccountBalance],
    alert: KesCents,
) -> Result<Vec<String>> {
    let mut upsert = ctx.conn.prepare_cached(
        "INSERT INTO mpesa_balances (account, currency, available_kes_cents, updated_at, change_seq)
         VALUES (?1, ?2, ?3, ?4, remit_change_seq())
         ON CONFLICT (account) DO UPDATE SET currency = excluded.currency,
         available_kes_cents = excluded.available_kes_cents, updated_at = excluded.updated_at,
         change_seq = excluded.change_seq",
    )?;
    let mut before = ctx
        .conn
        .prepare_cached("SELECT available_kes_cents FROM mpesa_balances WHERE account = ?1")?;
    let mut low = Vec::new();
    for b in balances {
        let was: Option<i64> = before.query_row([&b.name], |r| r.get(0)).optional()?;
        upsert.execute(params![b.name, b.currency, b.available_cents, ctx.at()])?;
        if below_alert(&b.name, &b.currency, b.available_cents, alert) {
            // Once when it goes below the alert, not at every report while it stays there.
            if was.is_none_or(|was| was >= alert.get()) {
                ctx.emit(
                    EventType::FloatLow,
                    json!({"account": b.name, "currency": b.currency,
                           "availableKes": Decimal::of_minor(b.available_cents, 2),
                           "availableKesCents": b.available_cents,
                           "alertKes": alert.major(), "alertKesCents": alert.get()}),
                )?;
            }
            low.push(b.name.clone());
            ctx.warn_after_commit(format!(
                "float low: the M-Pesa {} holds {}, below the alert of {}",
                b.name,
                format_kes(b.available_cents),
                alert.display()
            ));
        }
    }
    Ok(low)
}

fn format_kes(cents: i64) -> String {
    let amount = KesCents::new(cents.abs()).unwrap_or_default().display();
    if cents < 0 {
        format!("-{amount}")
    } else {
        amount
    }
}

/// One account's balance.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    /// `Utility Account`, `Working Account`, …
    pub name: String,
    /// `KES`.
    pub currency: String,
    /// Available, in KES.
    pub available_kes: Decimal,
    /// The same in cents.
    pub available_kes_cents: i64,
    /// Below the alert (`REMIT_FLOAT_ALERT_KES`): a paying account that may not cover payouts.
    pub low: bool,
}

/// `GET /admin/float`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FloatView {
    /// The gateway that pays: `daraja` (balances are asked for), `simulator` or `none` (no
    /// float to report).
    pub gateway: &'static str,
    /// Every account last reported.
    pub accounts: Vec<AccountView>,
    /// When the last report came (`null`: never).
    pub updated_at: Option<String>,
    /// The alert threshold, in KES (0: no alert).
    pub alert_kes: Decimal,
    /// The same in cents.
    pub alert_kes_cents: i64,
}

/// The balances last reported.
pub fn view(conn: &Connection, gateway: &'static str, alert: KesCents) -> Result<FloatView> {
    let mut stmt = conn.prepare_cached(
        "SELECT account, currency, available_kes_cents, updated_at FROM mpesa_balances ORDER BY account",
    )?;
    let mut rows = stmt.query([])?;
    let mut accounts = Vec::new();
    let mut updated_at: Option<String> = None;
    while let Some(r) = rows.next()? {
        let name: String = r.get(0)?;
        let cents: i64 = r.get(2)?;
        let at: String = r.get(3)?;
        if updated_at.as_ref().is_none_or(|u| &at > u) {
            updated_at = Some(at);
        }
        let currency: String = r.get(1)?;
        accounts.push(AccountView {
            low: below_alert(&name, &currency, cents, alert),
            name,
            currency,
            available_kes: Decimal::of_minor(cents, 2),
            available_kes_cents: cents,
        });
    }
    Ok(FloatView {
        gateway,
        accounts,
        updated_at,
        alert_kes: alert.major(),
        alert_kes_cents: alert.get(),
    })
}
