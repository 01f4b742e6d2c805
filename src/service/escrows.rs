//! Escrows: creation with categories, and cancellation. (Deposits are in `deposits`.)

use super::users::{insert_user, NewUser};
use super::views::{self, EscrowView};
use super::{require_role, Actor, EscrowParties, Role};
use crate::domain::{
    CategoryId, CategoryName, EscrowId, EscrowStatus, EventType, KenyanPhone, PaymentRequestId,
    RequestStatus, UserId,
};
use crate::error::{Error, Result};
use crate::ledger;
use crate::money::UsdCents;
use crate::store::WriteCtx;
use rusqlite::{named_params, params, OptionalExtension};
use serde_json::json;

/// How the total is split into categories.
#[derive(Debug, Clone)]
pub enum Categories {
    /// Split evenly to the cent, the remainder cents to the first categories.
    Names(Vec<CategoryName>),
    /// Explicit amounts that must sum exactly to the total.
    Amounts(Vec<(CategoryName, UsdCents)>),
}

/// A new escrow, already parsed.
#[derive(Debug, Clone)]
pub struct NewEscrow {
    /// The recipient's phone; the recipient is found by it or created.
    pub recipient_phone: KenyanPhone,
    /// The recipient's name, used when the recipient is created.
    pub recipient_name: String,
    /// The total.
    pub total: UsdCents,
    /// The categories.
    pub categories: Categories,
    /// Most that may be approved per Nairobi day.
    pub daily_limit: Option<UsdCents>,
    /// The language of the texts to the recipient if this escrow makes them a user
    /// (`REMIT_SMS_LANGUAGE`); one already a user keeps theirs.
    pub recipient_language: crate::domain::Language,
}

/// Splits `total` over `n` parts that sum to it exactly; the first `total % n` parts get one
/// cent more (USD 100.00 over 3 → 33.34, 33.33, 33.33).
pub fn split_evenly(total: UsdCents, n: usize) -> Vec<i64> {
    let n_i64 = n as i64;
    let base = total.get() / n_i64;
    let extra = total.get() % n_i64;
    (0..n_i64).map(|i| base + i64::from(i < extra)).collect()
}

/// Checks the categories and returns (name, allocation) pairs summing to the total.
pub fn allocate(total: UsdCents, categories: &Categories) -> Result<Vec<(CategoryName, i64)>> {
    let names: Vec<&CategoryName> = match categories {
        Categories::Names(names) => names.iter().collect(),
        Categories::Amounts(pairs) => pairs.iter().map(|(n, _)| n).collect(),
    };
    if names.is_empty() || names.len() > crate::limits::CATEGORIES_PER_ESCROW_MAX {
        return Err(Error::invalid(
            "categories",
            "must have between 1 and 16 categories",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for name in &names {
        if !seen.insert(name.as_str()) {
            return Err(Error::invalid(
                "categories",
                format!("category {} appears twice", name.as_str()),
            ));
        }
    }
    match categories {
        Categories::Names(names) => {
            if total.get() < names.len() as i64 {
                return Err(Error::invalid(
                    "categories",
                    "each category needs at least one cent",
                ));
            }
            Ok(names
                .iter()
                .cloned()
                .zip(split_evenly(total, names.len()))
                .collect())
        }
        Categories::Amounts(pairs) => {
            let sum = pairs
                .iter()
                .try_fold(0i64, |acc, (_, a)| acc.checked_add(a.get()));
            if sum != Some(total.get()) {
                return Err(Error::invalid(
                    "categories",
                    format!(
                        "category amounts add up to {}, which must equal total amount {}",
                        UsdCents::new(sum.unwrap_or(i64::MAX))
                            .unwrap_or_default()
                            .display(),
                        total.display()
                    ),
                ));
            }
            Ok(pairs.iter().map(|(n, a)| (n.clone(), a.get())).collect())
        }
    }
}

/// `POST /escrows`: creates a `pending_deposit` escrow for the recipient with this phone
/// (found by blind index, or created).
pub fn create(ctx: &WriteCtx<'_>, actor: &Actor, input: &NewEscrow) -> Result<EscrowView> {
    require_role(actor, &[Role::Sender])?;
    let allocations = allocate(input.total, &input.categories)?;
    if let Some(limit) = input.daily_limit {
        if limit > input.total {
            return Err(Error::invalid(
                "dailyLimitUsd",
                "must not be more than the total amount",
            ));
        }
    }
    let phone_index = ctx.keys.blind_index(&input.recipient_phone.e164());
    let existing: Option<(UserId, Role)> = ctx
        .conn
        .prepare_cached("SELECT id, role FROM users WHERE phone_index = ?1")?
        .query_row([&phone_index], |r| Ok((r.get("id")?, r.get("role")?)))
        .optional()?;
    // The answer is the same whether or not the phone belongs to someone (a sender who also
    // receives is that escrow's recipient); only staff's phones are refused, without a word on
    // why, and the sender's own, which tells them nothing they do not know.
    let recipient_id = match existing {
        Some((id, _)) if actor.is(&id) => {
            return Err(Error::invalid(
                "recipientPhone",
                "is your own number; an escrow is for someone else",
            ));
        }
        Some((id, Role::Recipient | Role::Sender)) => id,
        Some(_) => {
            // Deliberately vague: a sender must not learn whose phone it is.
            return Err(Error::invalid(
                "recipientPhone",
                "cannot receive an escrow; use another number",
            ));
        }
        None => {
            let user = NewUser {
                role: Role::Recipient,
                name: input.recipient_name.clone(),
                phone: Some(input.recipient_phone.clone()),
            };
            let id = insert_user(ctx.conn, ctx.keys, &user, ctx.now)?;
            // English is the column's `NULL`: only another language is written (and said).
            let mut details = json!({"role": "recipient"});
            let language = input.recipient_language;
            if !matches!(language, crate::domain::Language::En) {
                ctx.conn
                    .prepare_cached(
                        "UPDATE users SET change_seq = remit_change_seq_of('users', id), language = ?2 WHERE id = ?1",
                    )?
                    .execute(params![id, language])?;
                details["language"] = json!(language);
            }
            ctx.audit(&actor.id, "user.created", id.as_str(), &details)?;
            id
        }
    };
    let id = EscrowId::new();
    let short_ref = crate::domain::unique_code(
        ctx.conn,
        "escrows",
        "short_ref",
        "",
        crate::domain::SHORT_REF_LEN,
    )?;
    // The name as this sender typed it, kept with the escrow: never the name another sender
    // typed for the same phone.
    let name_enc = ctx.keys.seal(
        crate::crypto::EncryptedColumn::RecipientName,
        id.as_str(),
        &input.recipient_name,
    )?;
    ctx.conn
        .prepare_cached(
            "INSERT INTO escrows (id, sender_id, recipient_id, recipient_name_enc, status, total_usd_cents,
             daily_limit_usd_cents, short_ref, created_at, updated_at, change_seq)
             VALUES (:id, :sender, :recipient, :name, :status, :total, :daily_limit, :short_ref, :at, :at,
             remit_change_seq_of('escrows', :id))",
        )?
        .execute(named_params! {
            ":id": id, ":sender": actor.id, ":recipient": recipient_id, ":name": name_enc,
            ":status": EscrowStatus::PendingDeposit, ":total": input.total,
            ":daily_limit": input.daily_limit, ":short_ref": short_ref, ":at": ctx.at(),
        })?;
    let mut insert = ctx.conn.prepare_cached(
        "INSERT INTO spending_categories (id, escrow_id, position, name, allocated_usd_cents, change_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, remit_change_seq_of('spending_categories', ?1))",
    )?;
    for (position, (name, amount)) in allocations.iter().enumerate() {
        insert.execute(params![
            CategoryId::new(),
            id,
            position as i64,
            name.as_str(),
            amount
        ])?;
    }
    ctx.audit(
        &actor.id,
        "escrow.created",
        id.as_str(),
        &json!({"totalUsdCents": input.total.get(), "categories": allocations.iter().map(|(n, a)| json!({"name": n.as_str(), "allocatedUsdCents": a})).collect::<Vec<_>>(),
                "dailyLimitUsdCents": input.daily_limit.map(UsdCents::get), "recipientId": recipient_id,
                "shortRef": short_ref}),
    )?;
    views::escrow(ctx.conn, ctx.keys, actor, &id)
}

/// Cancels the escrow's requests still waiting for approval (not those already expired), when
/// the escrow can no longer pay them: it was cancelled, or it completed (nothing remains).
/// Each gets an audit line with `reason` (`escrow completed`, `escrow cancelled`) and, as its
/// own reason for the people who see it, `words`; `decided_by` names the user who acted, if one
/// did (a completion is the system's). Returns the requests cancelled, which the escrow's
/// event names (no event of their own: API.md lists none for a cancelled request).
pub(crate) fn cancel_pending_requests(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    escrow_id: &EscrowId,
    reason: &str,
    words: &str,
) -> Result<Vec<PaymentRequestId>> {
    let mut stmt = ctx.conn.prepare_cached(
        "UPDATE payment_requests SET change_seq = remit_change_seq(), status = :cancelled, decided_by = :actor, decided_at = :at, updated_at = :at
         WHERE escrow_id = :escrow AND status = :pending AND expires_at > :at RETURNING id",
    )?;
    let cancelled: Vec<PaymentRequestId> = stmt
        .query_map(
            named_params! {
                ":cancelled": RequestStatus::Cancelled, ":actor": actor.user_id(), ":at": ctx.at(),
                ":escrow": escrow_id, ":pending": RequestStatus::PendingApproval,
            },
            |r| r.get(0),
        )?
        .collect::<rusqlite::Result<_>>()?;
    for request_id in &cancelled {
        let words_enc = ctx.keys.seal(
            crate::crypto::EncryptedColumn::DecisionReason,
            request_id.as_str(),
            words,
        )?;
        ctx.conn
            .prepare_cached(
                "UPDATE payment_requests SET change_seq = remit_change_seq(), decision_reason_enc = ?2 WHERE id = ?1",
            )?
            .execute(params![request_id, words_enc])?;
        ctx.audit(
            &actor.id,
            "payment_request.cancelled",
            request_id.as_str(),
            &json!({ "reason": reason }),
        )?;
    }
    Ok(cancelled)
}

/// `POST /escrows/:id/cancel`: refunds what is left. Refused while a payout is in flight
/// (money reserved); pending payment requests are cancelled with it.
pub fn cancel(ctx: &WriteCtx<'_>, actor: &Actor, escrow_id: &EscrowId) -> Result<EscrowView> {
    let parties = EscrowParties::load_visible(ctx.conn, escrow_id, actor)?;
    if !parties.is_sender(actor) {
        return Err(if actor.role == Role::Sender {
            Error::NotFound { what: "escrow" }
        } else {
            Error::Forbidden
        });
    }
    if !matches!(
        parties.status,
        EscrowStatus::PendingDeposit | EscrowStatus::Active
    ) {
        return Err(Error::InvalidState {
            entity: "escrow",
            from: parties.status.to_string(),
            to: "cancelled",
        });
    }
    let reserved: UsdCents = ctx
        .conn
        .prepare_cached("SELECT reserved_usd_cents FROM escrows WHERE id = ?1")?
        .query_row([escrow_id], |r| r.get(0))?;
    if reserved > UsdCents::ZERO {
        // Not now rather than never: once the payout settles the same request succeeds, so its
        // idempotency key must not keep this answer (a `409 invalid_state` was stored and
        // replayed for 48 hours).
        return Err(Error::NotNow(
            "escrow is active with a payout in flight and cannot become cancelled until it settles"
                .into(),
        ));
    }
    super::payouts::refuse_if_held(ctx.conn, escrow_id, "cancelled")?;
    let refunded = ledger::refund(ctx.conn, escrow_id, ctx.now)?;
    let cancelled = cancel_pending_requests(
        ctx,
        actor,
        escrow_id,
        "escrow cancelled",
        "The escrow was cancelled, so this request was cancelled with it.",
    )?;
    ctx.audit(
        &actor.id,
        "escrow.cancelled",
        escrow_id.as_str(),
        &json!({"refundedUsdCents": refunded.get()}),
    )?;
    ctx.emit(
        EventType::EscrowCancelled,
        json!({"escrowId": escrow_id, "status": EscrowStatus::Cancelled,
               "refundedUsd": refunded.major(), "refundedUsdCents": refunded.get(),
               "cancelledPaymentRequestIds": cancelled}),
    )?;
    views::escrow(ctx.conn, ctx.keys, actor, escrow_id)
}

/// `POST /escrows/:id/clear-flag`: an admin who has dealt with what flagged an escrow (a card
/// deposit refunded or disputed at Stripe: with Stripe and its sender) clears the flag, and the
/// escrow's money may be approved and cancelled again (`payouts::refuse_if_held`). No money
/// moves; audited `escrow.flag_cleared` with the flag cleared. `seen`: the flag the admin read;
/// when given and the flag has changed since (a dispute after the refund they read about), it
/// is `409`, so that a flag is never cleared unread.
pub fn clear_flag(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    escrow_id: &EscrowId,
    seen: Option<&str>,
) -> Result<EscrowView> {
    super::require_role(actor, &[])?;
    let flag: Option<String> = ctx
        .conn
        .prepare_cached("SELECT flag_reason FROM escrows WHERE id = ?1")?
        .query_row([escrow_id], |r| r.get(0))
        .optional()?
        .ok_or(Error::NotFound { what: "escrow" })?;
    let Some(flag) = flag else {
        return Err(Error::InvalidState {
            entity: "escrow",
            from: "not flagged".into(),
            to: "cleared",
        });
    };
    if seen.is_some_and(|seen| seen != flag) {
        return Err(Error::NotNow(format!(
            "the escrow's flag has changed since it was read; it now says: {flag}"
        )));
    }
    ctx.conn
        .prepare_cached(
            "UPDATE escrows SET change_seq = remit_change_seq_of('escrows', id), flag_reason = NULL, updated_at = ?2 WHERE id = ?1",
        )?
        .execute(params![escrow_id, ctx.at()])?;
    ctx.audit(
        &actor.id,
        "escrow.flag_cleared",
        escrow_id.as_str(),
        &json!({ "flagReason": flag }),
    )?;
    views::escrow(ctx.conn, ctx.keys, actor, escrow_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_split_gives_remainder_cents_to_the_first_categories() {
        assert_eq!(
            split_evenly(UsdCents::new(10_000).unwrap(), 3),
            vec![3334, 3333, 3333]
        );
        assert_eq!(
            split_evenly(UsdCents::new(50_000).unwrap(), 3),
            vec![16667, 16667, 16666]
        );
        assert_eq!(split_evenly(UsdCents::new(2).unwrap(), 3), vec![1, 1, 0]);
        for total in [1_i64, 7, 99, 100, 1_000_001] {
            for n in 1..=16 {
                let parts = split_evenly(UsdCents::new(total).unwrap(), n);
                assert_eq!(parts.iter().sum::<i64>(), total, "{total} over {n}");
                assert!(parts.windows(2).all(|w| w[0] >= w[1] && w[0] - w[1] <= 1));
            }
        }
    }

    #[test]
    fn explicit_amounts_must_sum_to_the_total() {
        let name = |s| CategoryName::parse("c", s).unwrap();
        let cents = |c| UsdCents::new(c).unwrap();
        let err = allocate(
            cents(50_000),
            &Categories::Amounts(vec![(name("electricity"), cents(20_000))]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("must equal total amount"), "{err}");
        assert!(allocate(
            cents(50_000),
            &Categories::Amounts(vec![(name("a"), cents(20_000)), (name("b"), cents(30_000))])
        )
        .is_ok());
        assert!(allocate(
            cents(2),
            &Categories::Names(vec![name("a"), name("b"), name("c")])
        )
        .is_err());
        assert!(allocate(cents(200), &Categories::Names(vec![name("a"), name("a")])).is_err());
    }
}
