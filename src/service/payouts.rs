//! Payouts: taken from the queue by the worker, sent to the gateway, and settled by the
//! gateway's result (or by an admin for a stuck one). Settling is idempotent: a settled payout
//! never changes again, and a conflicting second result is flagged, never applied.

use super::{views, Actor};
use crate::error::{Error, Result};
use crate::ledger;
use crate::money::UsdCents;
use crate::store::WriteCtx;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};

/// A payout as the worker needs it to call the gateway.
#[derive(Debug, Clone)]
pub struct PayoutJob {
    /// `po_…`.
    pub id: String,
    /// `b2c`, `b2b_paybill` or `b2b_till`.
    pub command: String,
    /// Whole KES are sent; this is in cents.
    pub amount_kes_cents: i64,
    /// Our id at Daraja; reused on every retry so that a duplicate is refused, never paid.
    pub originator_conversation_id: String,
    /// The merchant account JSON (decrypted): `type`, `number`, `accountReference`.
    pub account: Value,
    /// Attempts so far.
    pub attempts: i64,
}

/// The oldest queued payout whose next attempt is due, if any.
pub fn next_due(
    conn: &Connection,
    keys: &crate::crypto::Keys,
    now: i64,
) -> Result<Option<PayoutJob>> {
    let row: Option<(String, String, i64, String, String, String, i64)> = conn
        .prepare_cached(
            "SELECT p.id, p.command, p.amount_kes_cents, p.originator_conversation_id, r.id, r.merchant_account_enc, p.attempts
             FROM payouts p JOIN payment_requests r ON r.id = p.payment_request_id
             WHERE p.status = 'queued' AND p.flagged = 0 AND p.next_attempt_at <= ?1 ORDER BY p.id LIMIT 1",
        )?
        .query_row([crate::time::rfc3339(now)], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
        })
        .optional()?;
    let Some((
        id,
        command,
        amount_kes_cents,
        originator_conversation_id,
        request_id,
        account_enc,
        attempts,
    )) = row
    else {
        return Ok(None);
    };
    let account_text = keys.decrypt(
        &format!("payment_requests.merchant_account.{request_id}"),
        &account_enc,
    )?;
    let account = serde_json::from_str(&account_text).map_err(Error::internal)?;
    Ok(Some(PayoutJob {
        id,
        command,
        amount_kes_cents,
        originator_conversation_id,
        account,
        attempts,
    }))
}

/// Claims a queued payout for one gateway call: counts the attempt and moves its next attempt
/// to `retry_at` *before* the call, so that nothing (a failed write afterwards, a crash) can make
/// the worker call again at once. A later attempt reuses the same `OriginatorConversationID`,
/// which Daraja refuses as a duplicate rather than paying twice. Returns false when the payout
/// is no longer queued and due.
pub fn claim(ctx: &WriteCtx<'_>, payout_id: &str, retry_at: i64) -> Result<bool> {
    let claimed = ctx
        .conn
        .prepare_cached(
            "UPDATE payouts SET attempts = attempts + 1, next_attempt_at = ?2, updated_at = ?3
             WHERE id = ?1 AND status = 'queued' AND flagged = 0 AND next_attempt_at <= ?3",
        )?
        .execute(params![
            payout_id,
            crate::time::rfc3339(retry_at),
            crate::time::rfc3339(ctx.now)
        ])?;
    Ok(claimed == 1)
}

/// The gateway accepted the payout: record its `ConversationID` (if it gave one). A result
/// that already settled it (a fast callback) is left alone.
pub fn mark_sent(ctx: &WriteCtx<'_>, payout_id: &str, conversation_id: Option<&str>) -> Result<()> {
    let at = crate::time::rfc3339(ctx.now);
    ctx.conn.execute(
        "UPDATE payouts SET conversation_id = COALESCE(conversation_id, ?2),
         status = CASE status WHEN 'queued' THEN 'sent' ELSE status END,
         sent_at = COALESCE(sent_at, ?3), next_attempt_at = NULL, updated_at = ?3 WHERE id = ?1",
        params![payout_id, conversation_id, at],
    )?;
    crate::audit::append(
        ctx,
        "system:payouts",
        "payout.sent",
        payout_id,
        &json!({"conversationId": conversation_id}),
    )
}

/// A transport error on a claimed payout: keep the error; after `PAYOUT_ATTEMPTS_MAX` attempts
/// leave it flagged for the operator (its outcome is unknown, so it is never silently failed).
pub fn mark_retry(ctx: &WriteCtx<'_>, payout_id: &str, error: &str) -> Result<()> {
    let at = crate::time::rfc3339(ctx.now);
    // A result may have settled the payout meanwhile: then there is nothing to record.
    let attempts: Option<i64> = ctx
        .conn
        .query_row(
            "UPDATE payouts SET result_desc = ?2, updated_at = ?3 WHERE id = ?1 AND status = 'queued'
             RETURNING attempts",
            params![payout_id, error, at],
            |r| r.get(0),
        )
        .optional()?;
    let Some(attempts) = attempts else {
        return Ok(());
    };
    if attempts >= crate::limits::PAYOUT_ATTEMPTS_MAX {
        flag(
            ctx,
            payout_id,
            &format!("gateway unreachable after {attempts} attempts: {error}"),
        )?;
    }
    Ok(())
}

/// Flags a payout for the operator without touching its money.
pub fn flag(ctx: &WriteCtx<'_>, payout_id: &str, reason: &str) -> Result<()> {
    ctx.conn.execute(
        "UPDATE payouts SET flagged = 1, flag_reason = ?2, updated_at = ?3 WHERE id = ?1",
        params![payout_id, reason, crate::time::rfc3339(ctx.now)],
    )?;
    log::warn!("payout {payout_id} flagged: {reason}");
    crate::audit::append(
        ctx,
        "system:payouts",
        "payout.flagged",
        payout_id,
        &json!({"reason": reason}),
    )
}

/// The result of a payout, from the gateway or an admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayoutResult {
    /// Money moved; the M-Pesa receipt.
    Succeeded {
        /// `TransactionID` / `MpesaReceiptNumber`.
        receipt: String,
    },
    /// No money moved.
    Failed {
        /// Daraja's `ResultCode` (or `manual`).
        code: String,
        /// Daraja's `ResultDesc`.
        desc: String,
    },
}

/// What settling did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// The result was applied.
    Applied,
    /// The payout was already settled with this result; nothing changed.
    AlreadySettled,
    /// The result was not applied and the payout is flagged; the reason says why.
    Flagged(String),
}

impl Settlement {
    /// A short word for logs and the webhook record.
    pub fn as_str(&self) -> &'static str {
        match self {
            Settlement::Applied => "applied",
            Settlement::AlreadySettled => "duplicate",
            Settlement::Flagged(_) => "flagged",
        }
    }
}

struct PayoutRow {
    status: String,
    request_id: String,
    escrow_id: String,
    category_id: String,
    amount_usd: UsdCents,
    amount_kes_cents: i64,
    approved_day: Option<String>,
    receipt: Option<String>,
}

fn load_payout(conn: &Connection, payout_id: &str) -> Result<PayoutRow> {
    conn.prepare_cached(
        "SELECT p.status, p.payment_request_id, p.escrow_id, r.category_id, p.amount_usd_cents, p.amount_kes_cents,
         r.approved_day, p.receipt
         FROM payouts p JOIN payment_requests r ON r.id = p.payment_request_id WHERE p.id = ?1",
    )?
    .query_row([payout_id], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get::<_, i64>(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
    })
    .optional()?
    .ok_or(Error::NotFound { what: "payout" })
    .and_then(|t| {
        Ok(PayoutRow {
            status: t.0,
            request_id: t.1,
            escrow_id: t.2,
            category_id: t.3,
            amount_usd: UsdCents::from_column(t.4)?,
            amount_kes_cents: t.5,
            approved_day: t.6,
            receipt: t.7,
        })
    })
}

/// Finds a payout by our `OriginatorConversationID` or Daraja's `ConversationID`.
pub fn find_by_conversation(
    conn: &Connection,
    originator: Option<&str>,
    conversation: Option<&str>,
) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT id FROM payouts WHERE (?1 IS NOT NULL AND originator_conversation_id = ?1)
             OR (?2 IS NOT NULL AND conversation_id = ?2) LIMIT 1",
        )?
        .query_row(params![originator, conversation], |r| r.get(0))
        .optional()?)
}

/// Settles a payout with its result. `reported_kes_cents` is the amount the result names, if
/// it names one: a different amount is flagged and not applied.
pub fn settle(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    payout_id: &str,
    result: &PayoutResult,
    reported_kes_cents: Option<i64>,
) -> Result<Settlement> {
    let row = load_payout(ctx.conn, payout_id)?;
    let at = crate::time::rfc3339(ctx.now);
    match (row.status.as_str(), result) {
        ("succeeded", PayoutResult::Succeeded { receipt })
            if row.receipt.as_deref() == Some(receipt.as_str()) =>
        {
            return Ok(Settlement::AlreadySettled)
        }
        ("failed", PayoutResult::Failed { .. }) => return Ok(Settlement::AlreadySettled),
        ("succeeded" | "failed", _) => {
            let reason = format!(
                "a different result arrived for a payout already {}",
                row.status
            );
            flag(ctx, payout_id, &reason)?;
            return Ok(Settlement::Flagged(reason));
        }
        _ => {}
    }
    if let Some(reported) = reported_kes_cents {
        if reported != row.amount_kes_cents {
            let reason = format!(
                "result names KES {} but the payout is KES {}",
                reported / 100,
                row.amount_kes_cents / 100
            );
            flag(ctx, payout_id, &reason)?;
            return Ok(Settlement::Flagged(reason));
        }
    }
    match result {
        PayoutResult::Succeeded { receipt } => {
            let taken: Option<String> = ctx
                .conn
                .query_row(
                    "SELECT id FROM payouts WHERE receipt = ?1",
                    [receipt],
                    |r| r.get(0),
                )
                .optional()?;
            if taken.is_some() {
                let reason = "the receipt already settled another payout".to_string();
                flag(ctx, payout_id, &reason)?;
                return Ok(Settlement::Flagged(reason));
            }
            ledger::post(
                ctx.conn,
                &row.escrow_id,
                &row.category_id,
                row.amount_usd,
                payout_id,
                ctx.now,
            )?;
            ctx.conn.execute(
                "UPDATE payouts SET status = 'succeeded', receipt = ?2, result_code = '0', settled_at = ?3, updated_at = ?3,
                 next_attempt_at = NULL WHERE id = ?1",
                params![payout_id, receipt, at],
            )?;
            set_request_status(ctx, &row.request_id, "paid", &at)?;
            crate::audit::append(
                ctx,
                &actor.id,
                "payout.succeeded",
                payout_id,
                &json!({"receipt": receipt, "paymentRequestId": row.request_id}),
            )?;
            complete_if_spent(ctx, actor, &row.escrow_id)?;
        }
        PayoutResult::Failed { code, desc } => {
            ledger::void(
                ctx.conn,
                &row.escrow_id,
                &row.category_id,
                row.amount_usd,
                row.approved_day.as_deref(),
                payout_id,
                ctx.now,
            )?;
            ctx.conn.execute(
                "UPDATE payouts SET status = 'failed', result_code = ?2, result_desc = ?3, settled_at = ?4, updated_at = ?4,
                 next_attempt_at = NULL WHERE id = ?1",
                params![payout_id, code, desc, at],
            )?;
            set_request_status(ctx, &row.request_id, "failed", &at)?;
            crate::audit::append(
                ctx,
                &actor.id,
                "payout.failed",
                payout_id,
                &json!({"resultCode": code, "paymentRequestId": row.request_id}),
            )?;
        }
    }
    Ok(Settlement::Applied)
}

/// Records the result description that came with a success (kept for the request view).
pub fn record_result_desc(ctx: &WriteCtx<'_>, payout_id: &str, desc: &str) -> Result<()> {
    ctx.conn.execute(
        "UPDATE payouts SET result_desc = ?2 WHERE id = ?1",
        params![payout_id, desc],
    )?;
    Ok(())
}

fn set_request_status(ctx: &WriteCtx<'_>, request_id: &str, status: &str, at: &str) -> Result<()> {
    ctx.conn.execute(
        "UPDATE payment_requests SET status = ?2, updated_at = ?3 WHERE id = ?1 AND status = 'approved'",
        params![request_id, status, at],
    )?;
    Ok(())
}

/// An active escrow with nothing remaining and nothing reserved is `completed`.
fn complete_if_spent(ctx: &WriteCtx<'_>, actor: &Actor, escrow_id: &str) -> Result<()> {
    let n = ctx.conn.execute(
        "UPDATE escrows SET status = 'completed', updated_at = ?2
         WHERE id = ?1 AND status = 'active' AND remaining_usd_cents = 0 AND reserved_usd_cents = 0",
        params![escrow_id, crate::time::rfc3339(ctx.now)],
    )?;
    if n == 1 {
        crate::audit::append(ctx, &actor.id, "escrow.completed", escrow_id, &json!({}))?;
    }
    Ok(())
}

fn payout_json(conn: &Connection, payout_id: &str) -> Result<Value> {
    conn.prepare_cached(
        "SELECT id, payment_request_id, escrow_id, status, command, amount_kes_cents, amount_usd_cents,
         originator_conversation_id, conversation_id, receipt, result_code, result_desc, attempts, flagged,
         flag_reason, created_at, sent_at, settled_at FROM payouts WHERE id = ?1",
    )?
    .query_row([payout_id], |r| {
        let mut o = serde_json::Map::new();
        o.insert("payoutId".into(), json!(r.get::<_, String>(0)?));
        o.insert("paymentRequestId".into(), json!(r.get::<_, String>(1)?));
        o.insert("escrowId".into(), json!(r.get::<_, String>(2)?));
        o.insert("status".into(), json!(r.get::<_, String>(3)?));
        o.insert("method".into(), json!(r.get::<_, String>(4)?));
        o.insert("amountKesCents".into(), json!(r.get::<_, i64>(5)?));
        o.insert("amountUsdCents".into(), json!(r.get::<_, i64>(6)?));
        o.insert("originatorConversationId".into(), json!(r.get::<_, String>(7)?));
        o.insert("conversationId".into(), json!(r.get::<_, Option<String>>(8)?));
        o.insert("mpesaReceipt".into(), json!(r.get::<_, Option<String>>(9)?));
        o.insert("resultCode".into(), json!(r.get::<_, Option<String>>(10)?));
        o.insert("resultDesc".into(), json!(r.get::<_, Option<String>>(11)?));
        o.insert("attempts".into(), json!(r.get::<_, i64>(12)?));
        o.insert("flagged".into(), json!(r.get::<_, i64>(13)? == 1));
        o.insert("flagReason".into(), json!(r.get::<_, Option<String>>(14)?));
        o.insert("createdAt".into(), json!(r.get::<_, String>(15)?));
        o.insert("sentAt".into(), json!(r.get::<_, Option<String>>(16)?));
        o.insert("settledAt".into(), json!(r.get::<_, Option<String>>(17)?));
        Ok(Value::Object(o))
    })
    .optional()?
    .ok_or(Error::NotFound { what: "payout" })
}

/// When a payout is stuck, as one SQL predicate (`?1` is the cutoff time): unsettled, and
/// flagged or sent with no result since the cutoff. A queued payout is not stuck: the worker
/// may be sending it. Listing, resolving and the metrics all use this one definition.
const STUCK: &str =
    "(status IN ('queued', 'sent') AND (flagged = 1 OR (status = 'sent' AND sent_at <= ?1)))";

/// How many payouts are stuck (for `/metrics`).
pub fn stuck_count(conn: &Connection, timeout_s: i64, now: i64) -> Result<i64> {
    let cutoff = crate::time::rfc3339(now - timeout_s);
    Ok(conn.query_row(
        &format!("SELECT COUNT(*) FROM payouts WHERE {STUCK}"),
        [cutoff],
        |r| r.get(0),
    )?)
}

/// `GET /payouts?status=…`: payouts by status; `stuck` as [`STUCK`] defines it, with the
/// cutoff `timeout_s` before `now`.
pub fn list(
    conn: &Connection,
    status: Option<&str>,
    timeout_s: i64,
    now: i64,
    limit: u32,
) -> Result<Vec<Value>> {
    let cutoff = crate::time::rfc3339(now - timeout_s);
    let ids: Vec<String> = match status {
        Some("stuck") => conn
            .prepare_cached(&format!("SELECT id FROM payouts WHERE {STUCK} ORDER BY id LIMIT ?2"))?
            .query_map(params![cutoff, limit], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?,
        Some("flagged") => conn
            .prepare_cached("SELECT id FROM payouts WHERE flagged = 1 ORDER BY id DESC LIMIT ?1")?
            .query_map(params![limit], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?,
        other => conn
            .prepare_cached("SELECT id FROM payouts WHERE (?1 IS NULL OR status = ?1) ORDER BY id DESC LIMIT ?2")?
            .query_map(params![other, limit], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?,
    };
    ids.iter().map(|id| payout_json(conn, id)).collect()
}

/// `POST /payouts/:id/resolve`: an admin settles a payout by hand after checking with M-Pesa.
/// Only unsettled payouts can be resolved; the resolution is audited.
pub fn resolve(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    payout_id: &str,
    result: &PayoutResult,
    timeout_s: i64,
) -> Result<Value> {
    super::require_role(actor, &[])?;
    crate::domain::check_id(crate::domain::IdKind::Payout, payout_id)?;
    let row = load_payout(ctx.conn, payout_id)?;
    if row.status == "succeeded" || row.status == "failed" {
        return Err(Error::InvalidState {
            entity: "payout",
            from: row.status,
            to: "resolved",
        });
    }
    // Only a stuck payout is resolved by hand: flagged, or sent with no result past the
    // timeout. A queued one may be in the worker's hands at this moment (a retry), so resolving
    // it could release money that M-Pesa is about to pay.
    let cutoff = crate::time::rfc3339(ctx.now - timeout_s);
    let stuck: bool = ctx.conn.query_row(
        &format!("SELECT {STUCK} FROM payouts WHERE id = ?2"),
        params![cutoff, payout_id],
        |r| r.get(0),
    )?;
    if !stuck {
        return Err(Error::InvalidState {
            entity: "payout",
            from: format!("{} and not stuck yet", row.status),
            to: "resolved",
        });
    }
    match settle(ctx, actor, payout_id, result, None)? {
        Settlement::Applied => {}
        Settlement::AlreadySettled => {
            return Err(Error::InvalidState {
                entity: "payout",
                from: row.status,
                to: "resolved",
            })
        }
        Settlement::Flagged(reason) => return Err(Error::invalid("receipt", reason)),
    }
    ctx.conn.execute(
        "UPDATE payouts SET flagged = 0, flag_reason = NULL WHERE id = ?1",
        [payout_id],
    )?;
    crate::audit::append(
        ctx,
        &actor.id,
        "payout.resolved",
        payout_id,
        &json!({"outcome": match result {
        PayoutResult::Succeeded { .. } => "paid", PayoutResult::Failed { .. } => "failed" }}),
    )?;
    let mut view = payout_json(ctx.conn, payout_id)?;
    view["paymentRequest"] = views::payment_request(ctx.conn, ctx.keys, actor, &row.request_id)?;
    Ok(view)
}

/// One payout as JSON (admins).
pub fn get(conn: &Connection, payout_id: &str) -> Result<Value> {
    crate::domain::check_id(crate::domain::IdKind::Payout, payout_id)?;
    payout_json(conn, payout_id)
}
