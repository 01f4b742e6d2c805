//! Payment requests: asked for in KES by a recipient or agent, decided by the sender. Approval
//! reserves the USD in the category and the escrow and queues the payout, all or nothing.

use super::views::{self, PaymentRequestView};
use super::{require_role, Actor, EscrowParties, Role};
pub use crate::domain::MerchantAccount;
use crate::domain::{
    CategoryId, CategoryName, EscrowId, EscrowStatus, EventType, MerchantType, PaymentRequestId,
    PayoutId, PayoutStatus, RequestStatus, UserId,
};
use crate::error::{Error, Result};
use crate::ledger::{self, ReserveRefusal};
use crate::limits::{B2C_KES_CENTS_MAX, B2C_KES_CENTS_MIN};
use crate::money::{KesCents, UsdCents};
use crate::store::WriteCtx;
use rusqlite::{named_params, params, OptionalExtension};
use serde_json::json;

/// A new payment request, already parsed.
#[derive(Debug, Clone)]
pub struct NewPaymentRequest {
    /// The escrow.
    pub escrow_id: EscrowId,
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
/// its USD amount is fixed now at the current rate, rounded up, and it expires `ttl_s` from
/// now if it has not been approved by then.
pub fn create(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    input: &NewPaymentRequest,
    ttl_s: i64,
) -> Result<PaymentRequestView> {
    require_role(actor, &[Role::Recipient, Role::Agent])?;
    let parties = EscrowParties::load_visible(ctx.conn, &input.escrow_id, actor)?;
    if parties.status != EscrowStatus::Active {
        // The caller sees the escrow: its state is theirs to be told.
        return Err(Error::NotFoundAmong {
            what: "active escrow",
            known: format!(
                "this escrow is {} (only an active escrow, its deposits in, takes payment requests)",
                parties.status
            ),
        });
    }
    if input.amount.get() % 100 != 0 {
        return Err(Error::invalid(
            "amountKes",
            "must be whole shillings: M-Pesa pays whole KES",
        ));
    }
    if input.merchant_account.kind() == MerchantType::Phone
        && !(B2C_KES_CENTS_MIN..=B2C_KES_CENTS_MAX).contains(&input.amount.get())
    {
        return Err(Error::invalid(
            "amountKes",
            "must be between KES 10 and KES 250,000 for a phone payment",
        ));
    }
    let category_id: Option<CategoryId> = ctx
        .conn
        .prepare_cached("SELECT id FROM spending_categories WHERE escrow_id = ?1 AND name = ?2")?
        .query_row(params![input.escrow_id, input.category.as_str()], |r| {
            r.get(0)
        })
        .optional()?;
    let Some(category_id) = category_id else {
        // The caller sees the escrow: its categories are theirs to be told.
        let names: Vec<String> = ctx
            .conn
            .prepare_cached(
                "SELECT name FROM spending_categories WHERE escrow_id = ?1 ORDER BY position",
            )?
            .query_map([&input.escrow_id], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        return Err(Error::NotFoundAmong {
            what: "category",
            known: format!("this escrow's categories are {}", names.join(", ")),
        });
    };
    let (rate, _) = super::fx::current(ctx.conn)?;
    let amount_usd = rate.usd_for(input.amount);
    let id = PaymentRequestId::new();
    let row = id.as_str();
    let keys = ctx.keys;
    use crate::crypto::EncryptedColumn as Column;
    let name_enc = keys.seal(Column::MerchantName, row, &input.merchant_name)?;
    let account_enc = keys.seal(
        Column::MerchantAccount,
        row,
        &input.merchant_account.stored()?,
    )?;
    let note_enc = match &input.note {
        Some(note) => Some(keys.seal(Column::RequestNote, row, note)?),
        None => None,
    };
    ctx.conn
        .prepare_cached(
            "INSERT INTO payment_requests (id, escrow_id, category_id, requested_by, status, amount_kes_cents,
             amount_usd_cents, rate_kes_per_usd_e4, merchant_type, merchant_name_enc, merchant_account_enc,
             note_enc, created_at, updated_at, expires_at, change_seq)
             VALUES (:id, :escrow, :category, :actor, :status, :kes, :usd, :rate, :type, :name, :account,
             :note, :at, :at, :expires_at, remit_change_seq())",
        )?
        .execute(named_params! {
            ":id": id, ":escrow": input.escrow_id, ":category": category_id, ":actor": actor.id,
            ":status": RequestStatus::PendingApproval, ":kes": input.amount, ":usd": amount_usd,
            ":rate": rate, ":type": input.merchant_account.kind(), ":name": name_enc,
            ":account": account_enc, ":note": note_enc, ":at": ctx.at(),
            ":expires_at": crate::time::rfc3339(ctx.now + ttl_s),
        })?;
    ctx.audit(
        &actor.id,
        "payment_request.created",
        id.as_str(),
        &json!({
        "escrowId": input.escrow_id, "category": input.category.as_str(), "amountKesCents": input.amount.get(),
        "amountUsdCents": amount_usd.get(), "rateKesPerUsdE4": rate.e4(), "merchantType": input.merchant_account.kind()}),
    )?;
    ctx.emit(
        EventType::PaymentRequestCreated,
        crate::outbox::with_amounts(
            json!({"paymentRequestId": id, "escrowId": input.escrow_id,
                   "status": RequestStatus::PendingApproval, "category": input.category.as_str(),
                   "exchangeRate": rate.decimal(), "rateKesPerUsdE4": rate.e4(),
                   "expiresAt": crate::time::rfc3339(ctx.now + ttl_s)}),
            input.amount,
            amount_usd,
        ),
    )?;
    views::payment_request(ctx.conn, ctx.keys, actor, &id)
}

/// What a decision needs to know of a request.
struct RequestRow {
    escrow_id: EscrowId,
    category_id: CategoryId,
    category: String,
    status: RequestStatus,
    requested_by: UserId,
    amount_usd: UsdCents,
    amount_kes: KesCents,
    merchant_type: MerchantType,
    /// The escrow's daily limit, if it has one.
    daily_limit: Option<UsdCents>,
}

/// A waiting request whose expiry has passed is expired, whether or not the sweep has marked
/// it yet.
fn effective_status(status: RequestStatus, expires_at: &str, now: &str) -> RequestStatus {
    if status == RequestStatus::PendingApproval && expires_at <= now {
        RequestStatus::Expired
    } else {
        status
    }
}

/// The request, its category and its escrow's parties and limit, in one statement; when
/// `viewed`, the same statement reads the request's view too, built only if `actor` may
/// approve it (its sender or an admin, and the request waiting: a refused approval decrypts
/// nothing), so that the approval's hot path reads its request once, for its checks and for
/// its answer.
fn load_request(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    request_id: &PaymentRequestId,
    viewed: bool,
) -> Result<(RequestRow, EscrowParties, Option<PaymentRequestView>)> {
    // The columns the checks need, read by position: alone, or after the view's.
    const CHECKED: &str = "r.escrow_id, r.category_id, c.name, r.status, r.requested_by,
        r.amount_usd_cents, r.amount_kes_cents, r.merchant_type, r.expires_at,
        e.sender_id, e.recipient_id, e.status, e.daily_limit_usd_cents";
    static CHECKS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT {CHECKED} FROM payment_requests r
             JOIN spending_categories c ON c.id = r.category_id
             JOIN escrows e ON e.id = r.escrow_id WHERE r.id = ?1"
        )
    });
    static CHECKS_AND_VIEW: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        views::waiting_request_select(&format!(", {CHECKED}"), "r.id = ?1")
    });
    let (sql, first) = if viewed {
        (&*CHECKS_AND_VIEW, views::REQUEST_VIEW_WIDTH)
    } else {
        (&*CHECKS, 0)
    };
    let not_found = || Error::NotFound {
        what: "payment request",
    };
    let mut stmt = ctx.conn.prepare_cached(sql)?;
    let mut rows = stmt.query([request_id])?;
    let r = rows.next()?.ok_or_else(not_found)?;
    let col = |i: usize| first + i;
    let parties = EscrowParties {
        sender_id: r.get(col(9))?,
        recipient_id: r.get(col(10))?,
        status: r.get(col(11))?,
    };
    if !parties.visible_to(actor) {
        return Err(not_found());
    }
    let expires_at: String = r.get(col(8))?;
    let row = RequestRow {
        escrow_id: r.get(col(0))?,
        category_id: r.get(col(1))?,
        category: r.get(col(2))?,
        status: effective_status(r.get(col(3))?, &expires_at, &ctx.at()),
        requested_by: r.get(col(4))?,
        amount_usd: r.get(col(5))?,
        amount_kes: r.get(col(6))?,
        merchant_type: r.get(col(7))?,
        daily_limit: r.get(col(12))?,
    };
    let view = if viewed && parties.is_sender(actor) && row.status == RequestStatus::PendingApproval
    {
        Some(views::request_from_row(ctx.keys, actor, r)?)
    } else {
        None
    };
    Ok((row, parties, view))
}

fn require_pending(row: &RequestRow, to: &'static str) -> Result<()> {
    if row.status == RequestStatus::PendingApproval {
        Ok(())
    } else {
        Err(Error::InvalidState {
            entity: "payment request",
            from: row.status.to_string(),
            to,
        })
    }
}

/// `POST /payment-requests/:id/approve`: as one command, remaining → reserved in the category
/// and the escrow, the day's total grows, the journal records it, the payout is queued and the
/// audit log gets its line. Any CHECK that refuses rolls all of it back.
///
/// The answer is the view read with the request before the change, brought up to date with
/// what the approval wrote (its decision, and its payout made from the values inserted): the
/// same view `GET /payment-requests/:id` shows the approver once the approval is committed (a
/// test holds the two equal), without a second read on the single writer thread.
pub fn approve(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    request_id: &PaymentRequestId,
) -> Result<PaymentRequestView> {
    // The approver as `decided_by` holds it: a user (the sender, or an admin), never a system
    // actor; checked before anything is written.
    let decided_by = UserId::parse(&actor.id)
        .map_err(|_| Error::internal("a payment request is decided by a user"))?;
    let (row, parties, view) = load_request(ctx, actor, request_id, true)?;
    let payout = approve_loaded(ctx, actor, request_id, &row, &parties)?;
    // `approve_loaded` refused anyone but the sender or an admin, and a request not waiting.
    let mut view = view.ok_or_else(|| Error::internal("the approval's view was not read"))?;
    let at = ctx.at();
    view.status = RequestStatus::Approved;
    view.decided_by = Some(decided_by);
    view.decided_at = Some(at.clone());
    view.updated_at = at;
    // The approver is the escrow's sender or an admin: an owner of the request.
    view.payout = Some(payout.seen_by(actor, true));
    Ok(view)
}

/// `approve` without its answer (the scale benchmark's ledger builder).
pub fn approve_unviewed(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    request_id: &PaymentRequestId,
) -> Result<PayoutId> {
    let (row, parties, _) = load_request(ctx, actor, request_id, false)?;
    Ok(approve_loaded(ctx, actor, request_id, &row, &parties)?.payout_id)
}

/// The approval of a request `load_request` read; returns the payout it queued.
fn approve_loaded(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    request_id: &PaymentRequestId,
    row: &RequestRow,
    parties: &EscrowParties,
) -> Result<views::PayoutView> {
    if !parties.is_sender(actor) {
        return Err(Error::Forbidden);
    }
    if row.status == RequestStatus::Expired {
        return Err(Error::RequestExpired);
    }
    require_pending(row, "approved")?;
    if parties.status != EscrowStatus::Active {
        return Err(Error::InvalidState {
            entity: "escrow",
            from: parties.status.to_string(),
            to: "approved",
        });
    }
    super::payouts::refuse_if_held(ctx.conn, &row.escrow_id, "approved")?;
    let daily_limit = row.daily_limit;
    let day = match daily_limit {
        Some(_) => limit_day(ctx.conn, &row.escrow_id, ctx.now)?,
        None => crate::time::nairobi_day(ctx.now),
    };
    let daily = daily_limit.map(|limit| (day.as_str(), limit));
    let refusal = ledger::reserve(
        ctx.conn,
        &row.escrow_id,
        &row.category_id,
        row.amount_usd,
        daily,
        request_id.as_str(),
        ctx.now,
    )?;
    if let Err(refusal) = refusal {
        return Err(refusal_error(ctx, row, refusal, &day));
    }
    let payout_id = PayoutId::new();
    let at = ctx.at();
    let command = row.merchant_type.payout_command();
    // Without `RETURNING`, which SQLite serves through a temporary table opened and closed
    // for each statement: the view is made from the same values (`PayoutView::queued`).
    ctx.conn
        .prepare_cached(
            "INSERT INTO payouts (id, payment_request_id, escrow_id, status, command, amount_kes_cents, amount_usd_cents,
             originator_conversation_id, next_attempt_at, created_at, updated_at, change_seq)
             VALUES (:id, :request, :escrow, :status, :command, :kes, :usd, :originator, :at, :at, :at,
             remit_change_seq())",
        )?
        .execute(named_params! {
            ":id": payout_id, ":request": request_id, ":escrow": row.escrow_id,
            ":status": PayoutStatus::Queued, ":command": command,
            ":kes": row.amount_kes, ":usd": row.amount_usd,
            ":originator": payout_id.originator_conversation_id(), ":at": at,
        })?;
    let payout = views::PayoutView::queued(
        &payout_id,
        request_id,
        &row.escrow_id,
        command,
        row.amount_kes,
        row.amount_usd,
        &at,
    );
    ctx.conn
        .prepare_cached(
            "UPDATE payment_requests SET change_seq = remit_change_seq(), status = :status, decided_by = :actor, decided_at = :at,
             approved_day = :day, updated_at = :at WHERE id = :id",
        )?
        .execute(named_params! {
            ":id": request_id, ":status": RequestStatus::Approved, ":actor": actor.id, ":at": at,
            ":day": daily.map(|(d, _)| d),
        })?;
    ctx.audit(
        &actor.id,
        "payment_request.approved",
        request_id.as_str(),
        &ApprovedLine {
            amount_usd_cents: row.amount_usd.get(),
            payout_id: &payout_id,
            approved_day: daily.map(|(d, _)| d),
        },
    )?;
    ctx.emit(
        EventType::PaymentRequestApproved,
        ApprovedEvent {
            payment_request_id: request_id,
            escrow_id: &row.escrow_id,
            payout_id: &payout_id,
            status: RequestStatus::Approved,
            amounts: crate::outbox::Amounts::of(row.amount_kes, row.amount_usd),
        },
    )?;
    Ok(payout)
}

/// An approval's audit details, written as a struct on the hot path: the text `json!` gave.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ApprovedLine<'a> {
    amount_usd_cents: i64,
    payout_id: &'a PayoutId,
    /// The day its escrow's daily limit counted it against (none without a limit): held to the
    /// request's `approved_day` by `remit check` (a day moved in the file gave a fresh limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    approved_day: Option<&'a str>,
}

/// An approval's event, written as a struct on the hot path (building a `serde_json::Value`
/// first cost 5 % of the writer): the text `with_amounts(json!(…))` gave, tested below.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ApprovedEvent<'a> {
    payment_request_id: &'a PaymentRequestId,
    escrow_id: &'a EscrowId,
    payout_id: &'a PayoutId,
    status: RequestStatus,
    #[serde(flatten)]
    amounts: crate::outbox::Amounts,
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
            .prepare_cached(sql)
            .and_then(|mut stmt| stmt.query_row(params![key, day], |r| r.get::<_, UsdCents>(0)))
            .unwrap_or_default()
    };
    match refusal {
        ReserveRefusal::Escrow => Error::InsufficientBalance {
            available: read("SELECT remaining_usd_cents FROM escrows WHERE id = ?1 AND ?2 IS NOT NULL", row.escrow_id.as_str()),
            needed,
        },
        ReserveRefusal::Category => Error::InsufficientCategoryBalance {
            category: row.category.clone(),
            available: read("SELECT remaining_usd_cents FROM spending_categories WHERE id = ?1 AND ?2 IS NOT NULL", row.category_id.as_str()),
            needed,
        },
        ReserveRefusal::DailyLimit => Error::DailyLimitExceeded {
            limit: read("SELECT daily_limit_usd_cents FROM escrows WHERE id = ?1 AND ?2 IS NOT NULL", row.escrow_id.as_str()),
            approved: read("SELECT approved_usd_cents FROM daily_spend WHERE escrow_id = ?1 AND day = ?2", row.escrow_id.as_str()),
            needed,
        },
    }
}

/// The later day, tomorrow at most, that an escrow's approvals were counted against already, as
/// an SQL expression of the escrow's id `$e` and the parameters `:today` and `:tomorrow` (NULL
/// when there is none): its approvals count against that day rather than today (`limit_day`),
/// and the escrow's view reads that day's approvals (`views::ESCROW_FROM`). Counted against the
/// clock's day alone, a clock set back an hour across Nairobi's midnight (by hand, or NTP
/// correcting a kiosk that ran ahead) gave the escrow a second day's limit within the same real
/// hour: twice the limit approved, each day under its own. Tomorrow at most: approvals made on a
/// clock days or years ahead would have held every later one to that one day until it came.
macro_rules! limit_day_counted {
    ($e:literal) => {
        concat!(
            "(SELECT MAX(day) FROM daily_spend WHERE escrow_id = ",
            $e,
            " AND day > :today AND day <= :tomorrow)"
        )
    };
}
pub(crate) use limit_day_counted;

/// Today and tomorrow in Nairobi at `now`: `limit_day_counted!`'s `:today` and `:tomorrow`.
pub(crate) fn limit_days(now: i64) -> (String, String) {
    (
        crate::time::nairobi_day(now),
        crate::time::nairobi_day(now + 86_400),
    )
}

/// The day an escrow's approvals count against its daily limit: today in Nairobi, or tomorrow
/// when approvals were counted against it already (`limit_day_counted!`).
pub(crate) fn limit_day(
    conn: &rusqlite::Connection,
    escrow_id: &EscrowId,
    now: i64,
) -> Result<String> {
    let (today, tomorrow) = limit_days(now);
    let counted: Option<String> = conn
        .prepare_cached(concat!("SELECT ", limit_day_counted!(":escrow")))?
        .query_row(
            rusqlite::named_params! {":escrow": escrow_id.as_str(), ":today": today, ":tomorrow": tomorrow},
            |r| r.get(0),
        )?;
    Ok(counted.unwrap_or(today))
}

/// `POST /payment-requests/:id/reject`: the sender declines, with an optional reason.
pub fn reject(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    request_id: &PaymentRequestId,
    reason: Option<&str>,
) -> Result<PaymentRequestView> {
    let (row, parties, _) = load_request(ctx, actor, request_id, false)?;
    if !parties.is_sender(actor) {
        return Err(Error::Forbidden);
    }
    require_pending(&row, "rejected")?;
    let reason_enc = match reason {
        Some(r) => Some(ctx.keys.seal(
            crate::crypto::EncryptedColumn::DecisionReason,
            request_id.as_str(),
            r,
        )?),
        None => None,
    };
    decide(ctx, actor, request_id, RequestStatus::Rejected, reason_enc)?;
    ctx.audit(
        &actor.id,
        "payment_request.rejected",
        request_id.as_str(),
        &json!({}),
    )?;
    ctx.emit(
        EventType::PaymentRequestRejected,
        crate::outbox::with_amounts(
            json!({"paymentRequestId": request_id, "escrowId": row.escrow_id,
                   "status": RequestStatus::Rejected}),
            row.amount_kes,
            row.amount_usd,
        ),
    )?;
    views::payment_request(ctx.conn, ctx.keys, actor, request_id)
}

/// `POST /payment-requests/:id/cancel`: whoever asked for it, or an agent, withdraws it.
pub fn cancel(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    request_id: &PaymentRequestId,
) -> Result<PaymentRequestView> {
    let (row, _, _) = load_request(ctx, actor, request_id, false)?;
    let allowed = actor.is_admin() || actor.role == Role::Agent || actor.is(&row.requested_by);
    if !allowed {
        return Err(Error::ForbiddenHere(if actor.role == Role::Sender {
            "only whoever made this request, or a kiosk agent, may cancel it; its sender rejects it instead"
        } else {
            "only whoever made this request, or a kiosk agent, may cancel it"
        }));
    }
    require_pending(&row, "cancelled")?;
    decide(ctx, actor, request_id, RequestStatus::Cancelled, None)?;
    ctx.audit(
        &actor.id,
        "payment_request.cancelled",
        request_id.as_str(),
        &json!({}),
    )?;
    views::payment_request(ctx.conn, ctx.keys, actor, request_id)
}

fn decide(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    request_id: &PaymentRequestId,
    status: RequestStatus,
    reason_enc: Option<String>,
) -> Result<()> {
    ctx.conn
        .prepare_cached(
            "UPDATE payment_requests SET change_seq = remit_change_seq(), status = :status, decided_by = :actor, decided_at = :at,
             decision_reason_enc = :reason, updated_at = :at WHERE id = :id AND status = :pending",
        )?
        .execute(named_params! {
            ":id": request_id, ":status": status, ":actor": actor.id, ":at": ctx.at(),
            ":reason": reason_enc, ":pending": RequestStatus::PendingApproval,
        })?;
    Ok(())
}

/// Marks waiting requests whose expiry has passed as `expired` (decided by the clock, by
/// nobody), at most `EXPIRY_SWEEP_ROWS_MAX` per command; audited. Returns how many. The audit
/// line and the event are stamped when the sweep finds it (every minute while the server runs,
/// so later after a stop: the log's lines stay in time order) and say when it expired
/// (`expiredAt`, its `expiresAt`).
pub fn expire_due(ctx: &WriteCtx<'_>) -> Result<usize> {
    type Expired = (PaymentRequestId, EscrowId, KesCents, UsdCents, String);
    let expired: Vec<Expired> = ctx
        .conn
        .prepare_cached(
            "UPDATE payment_requests SET change_seq = remit_change_seq(), status = :expired, decided_at = expires_at, updated_at = expires_at
             WHERE id IN (SELECT id FROM payment_requests
                          WHERE status = :pending AND expires_at <= :at ORDER BY expires_at LIMIT :max)
             RETURNING id, escrow_id, amount_kes_cents, amount_usd_cents, expires_at",
        )?
        .query_map(
            named_params! {
                ":expired": RequestStatus::Expired, ":pending": RequestStatus::PendingApproval,
                ":at": ctx.at(), ":max": crate::limits::EXPIRY_SWEEP_ROWS_MAX,
            },
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?
        .collect::<rusqlite::Result<_>>()?;
    for (id, escrow_id, kes, usd, expired_at) in &expired {
        ctx.audit(
            "system:clock",
            "payment_request.expired",
            id.as_str(),
            &json!({"expiredAt": expired_at}),
        )?;
        ctx.emit(
            EventType::PaymentRequestExpired,
            crate::outbox::with_amounts(
                json!({"paymentRequestId": id, "escrowId": escrow_id,
                       "status": RequestStatus::Expired, "expiredAt": expired_at}),
                *kes,
                *usd,
            ),
        )?;
    }
    Ok(expired.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Subscribers and the audit chain see the text the `json!` forms gave, byte for byte.
    #[test]
    fn the_approvals_event_and_audit_line_are_the_text_of_their_json_forms() {
        let (request, escrow, payout) = (PaymentRequestId::new(), EscrowId::new(), PayoutId::new());
        for (kes, usd) in [(1_000_000, 6_667), (100, 1), (999_999_900, 6_666_667)] {
            let (kes, usd) = (KesCents::new(kes).unwrap(), UsdCents::new(usd).unwrap());
            let typed = serde_json::to_string(&ApprovedEvent {
                payment_request_id: &request,
                escrow_id: &escrow,
                payout_id: &payout,
                status: RequestStatus::Approved,
                amounts: crate::outbox::Amounts::of(kes, usd),
            })
            .unwrap();
            // Written out in full, not through `Amounts` (which `with_amounts` now uses too).
            let value = json!({"paymentRequestId": request, "escrowId": escrow,
                   "payoutId": payout, "status": RequestStatus::Approved,
                   "amountKes": kes.major(), "amountKesCents": kes.get(),
                   "amountUsd": usd.major(), "amountUsdCents": usd.get()});
            assert_eq!(typed, serde_json::to_string(&value).unwrap());
            assert_eq!(
                serde_json::to_string(&crate::outbox::with_amounts(
                    json!({"paymentRequestId": request, "escrowId": escrow,
                           "payoutId": payout, "status": RequestStatus::Approved}),
                    kes,
                    usd,
                ))
                .unwrap(),
                typed
            );
            let line = ApprovedLine {
                amount_usd_cents: usd.get(),
                payout_id: &payout,
                approved_day: None,
            };
            assert_eq!(
                serde_json::to_string(&line).unwrap(),
                json!({"amountUsdCents": usd.get(), "payoutId": payout}).to_string()
            );
            let line = ApprovedLine {
                approved_day: Some("2026-12-07"),
                ..line
            };
            assert_eq!(
                serde_json::to_string(&line).unwrap(),
                json!({"amountUsdCents": usd.get(), "payoutId": payout, "approvedDay": "2026-12-07"})
                    .to_string()
            );
        }
    }
}
