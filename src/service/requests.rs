//! Payment requests: asked for in KES by a recipient or agent, decided by the sender. Approval
//! reserves the USD in the category and the escrow and queues the payout, all or nothing.

use super::{require_role, views, Actor, EscrowParties, Role};
use crate::domain::{new_id, parse_reference, CategoryName, IdKind, KenyanPhone};
use crate::error::{Error, Result};
use crate::ledger::{self, ReserveRefusal};
use crate::limits::{B2C_KES_CENTS_MAX, B2C_KES_CENTS_MIN};
use crate::money::{KesCents, UsdCents};
use crate::store::WriteCtx;
use rusqlite::{params, OptionalExtension};
use serde_json::{json, Value};

/// Where the money goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MerchantAccount {
    /// A PayBill number and the account at the biller (paid by B2B `BusinessPayBill`).
    Paybill {
        /// The PayBill number.
        number: String,
        /// The account at the biller (meter number, student number…).
        account_reference: String,
    },
    /// A Till number (paid by B2B `BusinessBuyGoods`).
    Till {
        /// The Till number.
        number: String,
    },
    /// A mobile number (paid by B2C).
    Phone(KenyanPhone),
}

impl MerchantAccount {
    /// Parses `{"type", "number", "accountReference"}` parts.
    pub fn parse(
        kind: &str,
        number: &str,
        account_reference: Option<&str>,
    ) -> Result<MerchantAccount> {
        let short_code = |n: &str| {
            if (5..=8).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()) {
                Ok(n.to_string())
            } else {
                Err(Error::invalid(
                    "merchantAccount.number",
                    "must be a PayBill or Till number of 5 to 8 digits",
                ))
            }
        };
        match (kind, account_reference) {
            ("paybill", Some(reference)) => Ok(MerchantAccount::Paybill {
                number: short_code(number)?,
                account_reference: parse_reference(
                    "merchantAccount.accountReference",
                    reference,
                    20,
                )?,
            }),
            ("paybill", None) => Err(Error::MissingField {
                field: "merchantAccount.accountReference".into(),
            }),
            ("till", None) => Ok(MerchantAccount::Till {
                number: short_code(number)?,
            }),
            ("phone", None) => Ok(MerchantAccount::Phone(KenyanPhone::parse(
                "merchantAccount.number",
                number,
            )?)),
            ("till" | "phone", Some(_)) => Err(Error::invalid(
                "merchantAccount.accountReference",
                "is only for paybill accounts",
            )),
            _ => Err(Error::invalid(
                "merchantAccount.type",
                "must be paybill, till or phone",
            )),
        }
    }

    /// `paybill`, `till` or `phone`.
    pub fn kind(&self) -> &'static str {
        match self {
            MerchantAccount::Paybill { .. } => "paybill",
            MerchantAccount::Till { .. } => "till",
            MerchantAccount::Phone(_) => "phone",
        }
    }

    /// The JSON stored (encrypted) and shown to owners.
    pub fn json(&self) -> Value {
        match self {
            MerchantAccount::Paybill {
                number,
                account_reference,
            } => {
                json!({"type": "paybill", "number": number, "accountReference": account_reference})
            }
            MerchantAccount::Till { number } => json!({"type": "till", "number": number}),
            MerchantAccount::Phone(phone) => json!({"type": "phone", "number": phone.e164()}),
        }
    }

    /// The payout command: B2C for phones, B2B for PayBill and Till.
    pub fn payout_command(&self) -> &'static str {
        match self {
            MerchantAccount::Paybill { .. } => "b2b_paybill",
            MerchantAccount::Till { .. } => "b2b_till",
            MerchantAccount::Phone(_) => "b2c",
        }
    }
}

/// A new payment request, already parsed.
#[derive(Debug, Clone)]
pub struct NewPaymentRequest {
    /// The escrow.
    pub escrow_id: String,
    /// The category by name.
    pub category: CategoryName,
    /// The KES amount (whole shillings: M-Pesa pays whole KES).
    pub amount: KesCents,
    /// Who is paid (PII: encrypted).
    pub merchant_name: String,
    /// Where it is paid (PII: encrypted).
    pub merchant_account: MerchantAccount,
    /// A note (PII: encrypted).
    pub note: Option<String>,
}

/// `POST /payment-requests`: the recipient of the escrow or an agent asks for a KES payment;
/// its USD amount is fixed now at the current rate, rounded up.
pub fn create(ctx: &WriteCtx<'_>, actor: &Actor, input: &NewPaymentRequest) -> Result<Value> {
    require_role(actor, &[Role::Recipient, Role::Agent])?;
    let parties = EscrowParties::load_visible(ctx.conn, &input.escrow_id, actor)?;
    if parties.status != "active" {
        return Err(Error::NotFound {
            what: "active escrow",
        });
    }
    if input.amount.get() % 100 != 0 {
        return Err(Error::invalid(
            "amountKes",
            "must be whole shillings: M-Pesa pays whole KES",
        ));
    }
    if matches!(input.merchant_account, MerchantAccount::Phone(_))
        && !(B2C_KES_CENTS_MIN..=B2C_KES_CENTS_MAX).contains(&input.amount.get())
    {
        return Err(Error::invalid(
            "amountKes",
            "must be between KES 10 and KES 250,000 for a phone payment",
        ));
    }
    let category_id: String = ctx
        .conn
        .prepare_cached("SELECT id FROM spending_categories WHERE escrow_id = ?1 AND name = ?2")?
        .query_row(params![input.escrow_id, input.category.as_str()], |r| {
            r.get(0)
        })
        .optional()?
        .ok_or(Error::NotFound { what: "category" })?;
    let (rate, _) = super::fx::current(ctx.conn)?;
    let amount_usd = rate.usd_for(input.amount);
    let id = new_id(IdKind::PaymentRequest);
    let at = crate::time::rfc3339(ctx.now);
    let keys = ctx.keys;
    let name_enc = keys.encrypt(
        &format!("payment_requests.merchant_name.{id}"),
        &input.merchant_name,
    )?;
    let account_enc = keys.encrypt(
        &format!("payment_requests.merchant_account.{id}"),
        &input.merchant_account.json().to_string(),
    )?;
    let note_enc = match &input.note {
        Some(note) => Some(keys.encrypt(&format!("payment_requests.note.{id}"), note)?),
        None => None,
    };
    ctx.conn
        .prepare_cached(
            "INSERT INTO payment_requests (id, escrow_id, category_id, requested_by, status, amount_kes_cents,
             amount_usd_cents, rate_e4, merchant_type, merchant_name_enc, merchant_account_enc, note_enc, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, 'pending_approval', ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)",
        )?
        .execute(params![
            id, input.escrow_id, category_id, actor.id, input.amount.get(), amount_usd.get(), rate.e4(),
            input.merchant_account.kind(), name_enc, account_enc, note_enc, at
        ])?;
    crate::audit::append(
        ctx,
        &actor.id,
        "payment_request.created",
        &id,
        &json!({
        "escrowId": input.escrow_id, "category": input.category.as_str(), "amountKesCents": input.amount.get(),
        "amountUsdCents": amount_usd.get(), "rateE4": rate.e4(), "merchantType": input.merchant_account.kind()}),
    )?;
    views::payment_request(ctx.conn, ctx.keys, actor, &id)
}

struct RequestRow {
    escrow_id: String,
    category_id: String,
    category: String,
    status: String,
    requested_by: String,
    amount_usd: UsdCents,
    amount_kes: i64,
    merchant_type: String,
}

fn load_request(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    request_id: &str,
) -> Result<(RequestRow, EscrowParties)> {
    crate::domain::check_id(IdKind::PaymentRequest, request_id)?;
    let row = ctx
        .conn
        .prepare_cached(
            "SELECT r.escrow_id, r.category_id, c.name, r.status, r.requested_by, r.amount_usd_cents,
             r.amount_kes_cents, r.merchant_type
             FROM payment_requests r JOIN spending_categories c ON c.id = r.category_id WHERE r.id = ?1",
        )?
        .query_row([request_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get::<_, i64>(5)?, r.get(6)?, r.get(7)?))
        })
        .optional()?
        .ok_or(Error::NotFound { what: "payment request" })?;
    let row = RequestRow {
        escrow_id: row.0,
        category_id: row.1,
        category: row.2,
        status: row.3,
        requested_by: row.4,
        amount_usd: UsdCents::from_column(row.5)?,
        amount_kes: row.6,
        merchant_type: row.7,
    };
    let parties = EscrowParties::load(ctx.conn, &row.escrow_id)?;
    if !parties.visible_to(actor) {
        return Err(Error::NotFound {
            what: "payment request",
        });
    }
    Ok((row, parties))
}

fn require_pending(row: &RequestRow, to: &'static str) -> Result<()> {
    if row.status == "pending_approval" {
        Ok(())
    } else {
        Err(Error::InvalidState {
            entity: "payment request",
            from: row.status.clone(),
            to,
        })
    }
}

/// `POST /payment-requests/:id/approve`: as one command, remaining → reserved in the category
/// and the escrow, the day's total grows, the journal records it, the payout is queued and the
/// audit log gets its line. Any CHECK that refuses rolls all of it back.
pub fn approve(ctx: &WriteCtx<'_>, actor: &Actor, request_id: &str) -> Result<Value> {
    let (row, parties) = load_request(ctx, actor, request_id)?;
    if !parties.is_sender(actor) {
        return Err(Error::Forbidden);
    }
    require_pending(&row, "approved")?;
    if parties.status != "active" {
        return Err(Error::InvalidState {
            entity: "escrow",
            from: parties.status,
            to: "approved",
        });
    }
    let daily_limit: Option<i64> = ctx
        .conn
        .prepare_cached("SELECT daily_limit_usd_cents FROM escrows WHERE id = ?1")?
        .query_row([&row.escrow_id], |r| r.get(0))?;
    let day = crate::time::nairobi_day(ctx.now);
    let daily = match daily_limit {
        Some(limit) => Some((day.as_str(), UsdCents::from_column(limit)?)),
        None => None,
    };
    let refusal = ledger::reserve(
        ctx.conn,
        &row.escrow_id,
        &row.category_id,
        row.amount_usd,
        daily,
        request_id,
        ctx.now,
    )?;
    if let Err(refusal) = refusal {
        return Err(refusal_error(ctx, &row, refusal, &day));
    }
    let payout_id = new_id(IdKind::Payout);
    let at = crate::time::rfc3339(ctx.now);
    let command = match row.merchant_type.as_str() {
        "paybill" => "b2b_paybill",
        "till" => "b2b_till",
        _ => "b2c",
    };
    ctx.conn
        .prepare_cached(
            "INSERT INTO payouts (id, payment_request_id, escrow_id, status, command, amount_kes_cents, amount_usd_cents,
             originator_conversation_id, next_attempt_at, created_at, updated_at)
             VALUES (?1, ?2, ?3, 'queued', ?4, ?5, ?6, ?7, ?8, ?8, ?8)",
        )?
        .execute(params![
            payout_id, request_id, row.escrow_id, command, row.amount_kes, row.amount_usd.get(),
            originator_conversation_id(&payout_id), at
        ])?;
    ctx.conn
        .prepare_cached(
            "UPDATE payment_requests SET status = 'approved', decided_by = ?2, decided_at = ?3, approved_day = ?4,
             updated_at = ?3 WHERE id = ?1",
        )?
        .execute(params![request_id, actor.id, at, daily.map(|(d, _)| d)])?;
    crate::audit::append(
        ctx,
        &actor.id,
        "payment_request.approved",
        request_id,
        &json!({"amountUsdCents": row.amount_usd.get(), "payoutId": payout_id}),
    )?;
    views::payment_request(ctx.conn, ctx.keys, actor, request_id)
}

/// Our `OriginatorConversationID` for a payout: its id without the prefix (26 lowercase
/// alphanumerics, unique, and time-ordered so that its index only ever appends).
fn originator_conversation_id(payout_id: &str) -> String {
    payout_id.trim_start_matches("po_").to_string()
}

/// The typed error for a refused reservation, with the balances that refused it.
fn refusal_error(
    ctx: &WriteCtx<'_>,
    row: &RequestRow,
    refusal: ReserveRefusal,
    day: &str,
) -> Error {
    let needed = row.amount_usd;
    let read = |sql: &str, key: &str| -> UsdCents {
        ctx.conn
            .query_row(sql, params![key, day], |r| r.get::<_, i64>(0))
            .ok()
            .and_then(UsdCents::new)
            .unwrap_or_default()
    };
    match refusal {
        ReserveRefusal::Escrow => Error::InsufficientBalance {
            available: read("SELECT remaining_usd_cents FROM escrows WHERE id = ?1 AND ?2 IS NOT NULL", &row.escrow_id),
            needed,
        },
        ReserveRefusal::Category => Error::InsufficientCategoryBalance {
            category: row.category.clone(),
            available: read("SELECT remaining_usd_cents FROM spending_categories WHERE id = ?1 AND ?2 IS NOT NULL", &row.category_id),
            needed,
        },
        ReserveRefusal::DailyLimit => Error::DailyLimitExceeded {
            limit: read("SELECT daily_limit_usd_cents FROM escrows WHERE id = ?1 AND ?2 IS NOT NULL", &row.escrow_id),
            approved: read("SELECT approved_usd_cents FROM daily_spend WHERE escrow_id = ?1 AND day = ?2", &row.escrow_id),
            needed,
        },
    }
}

/// `POST /payment-requests/:id/reject`: the sender declines, with an optional reason.
pub fn reject(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    request_id: &str,
    reason: Option<&str>,
) -> Result<Value> {
    let (row, parties) = load_request(ctx, actor, request_id)?;
    if !parties.is_sender(actor) {
        return Err(Error::Forbidden);
    }
    require_pending(&row, "rejected")?;
    let reason_enc = match reason {
        Some(r) => Some(
            ctx.keys
                .encrypt(&format!("payment_requests.decision_reason.{request_id}"), r)?,
        ),
        None => None,
    };
    decide(ctx, actor, request_id, "rejected", reason_enc)?;
    crate::audit::append(
        ctx,
        &actor.id,
        "payment_request.rejected",
        request_id,
        &json!({}),
    )?;
    views::payment_request(ctx.conn, ctx.keys, actor, request_id)
}

/// `POST /payment-requests/:id/cancel`: whoever asked for it, or an agent, withdraws it.
pub fn cancel(ctx: &WriteCtx<'_>, actor: &Actor, request_id: &str) -> Result<Value> {
    let (row, _) = load_request(ctx, actor, request_id)?;
    let allowed = actor.is_admin() || actor.role == Role::Agent || row.requested_by == actor.id;
    if !allowed {
        return Err(Error::Forbidden);
    }
    require_pending(&row, "cancelled")?;
    decide(ctx, actor, request_id, "cancelled", None)?;
    crate::audit::append(
        ctx,
        &actor.id,
        "payment_request.cancelled",
        request_id,
        &json!({}),
    )?;
    views::payment_request(ctx.conn, ctx.keys, actor, request_id)
}

fn decide(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    request_id: &str,
    status: &str,
    reason_enc: Option<String>,
) -> Result<()> {
    ctx.conn
        .prepare_cached(
            "UPDATE payment_requests SET status = ?2, decided_by = ?3, decided_at = ?4, decision_reason_enc = ?5,
             updated_at = ?4 WHERE id = ?1 AND status = 'pending_approval'",
        )?
        .execute(params![request_id, status, actor.id, crate::time::rfc3339(ctx.now), reason_enc])?;
    Ok(())
}
