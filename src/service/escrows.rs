//! Escrows: creation with categories, deposits (cash now, Stripe through the webhook), and
//! cancellation.

use super::users::{insert_user, NewUser};
use super::{require_role, views, Actor, EscrowParties, Role};
use crate::domain::{new_id, CategoryName, IdKind, KenyanPhone};
use crate::error::{Error, Result};
use crate::ledger;
use crate::money::UsdCents;
use crate::store::WriteCtx;
use rusqlite::{params, OptionalExtension};
use serde_json::{json, Value};

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
pub fn create(ctx: &WriteCtx<'_>, actor: &Actor, input: &NewEscrow) -> Result<Value> {
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
    let existing: Option<(String, String)> = ctx
        .conn
        .prepare_cached("SELECT id, role FROM users WHERE phone_index = ?1")?
        .query_row([&phone_index], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let recipient_id = match existing {
        Some((id, role)) if role == "recipient" => id,
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
            crate::audit::append(
                ctx,
                &actor.id,
                "user.created",
                &id,
                &json!({"role": "recipient"}),
            )?;
            id
        }
    };
    let id = new_id(IdKind::Escrow);
    let at = crate::time::rfc3339(ctx.now);
    ctx.conn
        .prepare_cached(
            "INSERT INTO escrows (id, sender_id, recipient_id, status, total_usd_cents, daily_limit_usd_cents,
             created_at, updated_at) VALUES (?1, ?2, ?3, 'pending_deposit', ?4, ?5, ?6, ?6)",
        )?
        .execute(params![id, actor.id, recipient_id, input.total.get(), input.daily_limit.map(UsdCents::get), at])?;
    let mut insert = ctx.conn.prepare_cached(
        "INSERT INTO spending_categories (id, escrow_id, position, name, allocated_usd_cents) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (position, (name, amount)) in allocations.iter().enumerate() {
        insert.execute(params![
            new_id(IdKind::Category),
            id,
            position as i64,
            name.as_str(),
            amount
        ])?;
    }
    crate::audit::append(
        ctx,
        &actor.id,
        "escrow.created",
        &id,
        &json!({"totalUsdCents": input.total.get(), "categories": allocations.iter().map(|(n, a)| json!({"name": n.as_str(), "allocatedUsdCents": a})).collect::<Vec<_>>(),
                "dailyLimitUsdCents": input.daily_limit.map(UsdCents::get), "recipientId": recipient_id}),
    )?;
    views::escrow(ctx.conn, ctx.keys, actor, &id)
}

/// Where a deposit came from.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum DepositSource {
    /// Cash or bank transfer recorded at a kiosk.
    Cash,
    /// A Stripe PaymentIntent (the reference is its `pi_…` id).
    Stripe,
}

impl DepositSource {
    fn as_str(self) -> &'static str {
        match self {
            DepositSource::Cash => "cash",
            DepositSource::Stripe => "stripe",
        }
    }
}

/// What became of a deposit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DepositOutcome {
    /// Recorded now and applied to the escrow.
    Applied,
    /// The same (source, reference) was recorded before; nothing changed.
    Duplicate,
    /// Recorded but not applied (unknown escrow, wrong state, more than is due): for the
    /// operator to resolve.
    Flagged(String),
}

fn deposit_json(ctx: &WriteCtx<'_>, deposit_id: &str, outcome: &DepositOutcome) -> Result<Value> {
    let (escrow_id, source, reference, amount, status, flag_reason, created_at): (
        Option<String>, String, String, i64, String, Option<String>, String,
    ) = ctx.conn.query_row(
        "SELECT escrow_id, source, reference, amount_usd_cents, status, flag_reason, created_at FROM deposits WHERE id = ?1",
        [deposit_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
    )?;
    let escrow_status: Option<String> = match &escrow_id {
        Some(id) => ctx
            .conn
            .query_row("SELECT status FROM escrows WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?,
        None => None,
    };
    let mut o = serde_json::Map::new();
    o.insert("depositId".into(), json!(deposit_id));
    o.insert("escrowId".into(), json!(escrow_id));
    o.insert("source".into(), json!(source));
    o.insert("reference".into(), json!(reference));
    views::put_usd(&mut o, "amount", amount)?;
    o.insert("status".into(), json!(status));
    o.insert("flagReason".into(), json!(flag_reason));
    o.insert(
        "duplicate".into(),
        json!(*outcome == DepositOutcome::Duplicate),
    );
    o.insert("escrowStatus".into(), json!(escrow_status));
    o.insert("createdAt".into(), json!(created_at));
    Ok(Value::Object(o))
}

/// Records a deposit, idempotent on (source, reference). Applied deposits move
/// `world:deposits → escrow:unfunded`; once they cover the total the escrow turns `active` and
/// its categories are funded. A deposit that does not fit (escrow not `pending_deposit`, or
/// more than is still due) is refused for cash, and recorded as `flagged` for Stripe, whose
/// money has already arrived. Returns the deposit's JSON and what became of it.
pub fn record_deposit(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    escrow_id: &str,
    source: DepositSource,
    reference: &str,
    amount: UsdCents,
) -> Result<(Value, DepositOutcome)> {
    if source == DepositSource::Cash {
        require_role(actor, &[Role::Agent])?;
    }
    let previous: Option<(String, Option<String>, i64)> = ctx
        .conn
        .prepare_cached("SELECT id, escrow_id, amount_usd_cents FROM deposits WHERE source = ?1 AND reference = ?2")?
        .query_row(params![source.as_str(), reference], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    if let Some((id, previous_escrow, previous_amount)) = previous {
        // A PaymentIntent id names one payment, so a repeat is always the same deposit; a cash
        // reference reused for another escrow or amount is a mistake at the kiosk.
        let differs =
            previous_escrow.as_deref() != Some(escrow_id) || previous_amount != amount.get();
        if source == DepositSource::Cash && differs {
            return Err(Error::invalid(
                "reference",
                "was already used for a different deposit",
            ));
        }
        let outcome = DepositOutcome::Duplicate;
        return Ok((deposit_json(ctx, &id, &outcome)?, outcome));
    }

    let escrow: Option<(String, i64, i64)> = match crate::domain::check_id(
        IdKind::Escrow,
        escrow_id,
    ) {
        Ok(()) => ctx
            .conn
            .prepare_cached(
                "SELECT status, total_usd_cents, deposited_usd_cents FROM escrows WHERE id = ?1",
            )?
            .query_row([escrow_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?,
        Err(_) => None,
    };
    let refusal = match &escrow {
        None => Some((
            Error::NotFound { what: "escrow" },
            "unknown escrow".to_string(),
        )),
        Some((status, _, _)) if status != "pending_deposit" => Some((
            Error::InvalidState {
                entity: "escrow",
                from: status.clone(),
                to: "deposited",
            },
            format!("escrow is {status}"),
        )),
        Some((_, total, deposited)) if amount.get() > total - deposited => {
            let due = UsdCents::new(total - deposited).unwrap_or_default();
            Some((
                Error::invalid(
                    "amountUsd",
                    format!("is more than the {} still due", due.display()),
                ),
                format!("amount exceeds the {} still due", due.display()),
            ))
        }
        Some(_) => None,
    };
    if let Some((error, reason)) = refusal {
        if source == DepositSource::Cash {
            return Err(error);
        }
        let known_escrow = escrow.as_ref().map(|_| escrow_id);
        return record_flagged_deposit(
            ctx,
            actor,
            known_escrow,
            source,
            reference,
            amount,
            &reason,
        );
    }
    let id = new_id(IdKind::Deposit);
    let at = crate::time::rfc3339(ctx.now);
    ctx.conn
        .prepare_cached(
            "INSERT INTO deposits (id, escrow_id, source, reference, amount_usd_cents, status, recorded_by, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'applied', ?6, ?7)",
        )?
        .execute(params![id, escrow_id, source.as_str(), reference, amount.get(), actor.id, at])?;
    let activated = ledger::deposit(ctx.conn, escrow_id, amount, &id, ctx.now)?;
    crate::audit::append(
        ctx,
        &actor.id,
        "escrow.deposited",
        escrow_id,
        &json!({"depositId": id, "source": source.as_str(), "amountUsdCents": amount.get()}),
    )?;
    if activated {
        crate::audit::append(ctx, &actor.id, "escrow.activated", escrow_id, &json!({}))?;
    }
    let outcome = DepositOutcome::Applied;
    Ok((deposit_json(ctx, &id, &outcome)?, outcome))
}

/// Records a deposit that arrived but cannot be applied (unknown escrow, wrong currency, more
/// than is due…): kept for the operator, audited, never touching a balance.
#[allow(clippy::too_many_arguments)]
pub fn record_flagged_deposit(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    escrow_id: Option<&str>,
    source: DepositSource,
    reference: &str,
    amount: UsdCents,
    reason: &str,
) -> Result<(Value, DepositOutcome)> {
    let id = new_id(IdKind::Deposit);
    ctx.conn.execute(
        "INSERT INTO deposits (id, escrow_id, source, reference, amount_usd_cents, status, flag_reason, recorded_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'flagged', ?6, ?7, ?8)",
        params![id, escrow_id, source.as_str(), reference, amount.get(), reason, actor.id, crate::time::rfc3339(ctx.now)],
    )?;
    crate::audit::append(
        ctx,
        &actor.id,
        "deposit.flagged",
        &id,
        &json!({"escrowId": escrow_id, "source": source.as_str(), "amountUsdCents": amount.get(), "reason": reason}),
    )?;
    log::warn!(
        "deposit {id} from {} flagged for the operator: {reason}",
        source.as_str()
    );
    let outcome = DepositOutcome::Flagged(reason.to_string());
    Ok((deposit_json(ctx, &id, &outcome)?, outcome))
}

/// `GET /deposits?status=&escrowId=`: deposits, newest first (admins), so that flagged Stripe
/// money is seen and handled.
pub fn list_deposits(
    conn: &rusqlite::Connection,
    status: Option<&str>,
    escrow_id: Option<&str>,
    limit: u32,
) -> Result<Vec<Value>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, escrow_id, source, reference, amount_usd_cents, status, flag_reason, recorded_by, created_at
         FROM deposits WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR escrow_id = ?2) ORDER BY id DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![status, escrow_id, limit], |r| {
        let mut o = serde_json::Map::new();
        o.insert("depositId".into(), json!(r.get::<_, String>(0)?));
        o.insert("escrowId".into(), json!(r.get::<_, Option<String>>(1)?));
        o.insert("source".into(), json!(r.get::<_, String>(2)?));
        o.insert("reference".into(), json!(r.get::<_, String>(3)?));
        o.insert("amountUsdCents".into(), json!(r.get::<_, i64>(4)?));
        o.insert("status".into(), json!(r.get::<_, String>(5)?));
        o.insert("flagReason".into(), json!(r.get::<_, Option<String>>(6)?));
        o.insert("recordedBy".into(), json!(r.get::<_, String>(7)?));
        o.insert("createdAt".into(), json!(r.get::<_, String>(8)?));
        Ok(Value::Object(o))
    })?;
    let mut out: Vec<Value> = rows.collect::<rusqlite::Result<_>>()?;
    for deposit in &mut out {
        let cents = deposit["amountUsdCents"].as_i64().unwrap_or(0);
        deposit["amountUsd"] = UsdCents::from_column(cents)?.major_json();
    }
    Ok(out)
}

/// `POST /escrows/:id/cancel`: refunds what is left. Refused while a payout is in flight
/// (money reserved); pending payment requests are cancelled with it.
pub fn cancel(ctx: &WriteCtx<'_>, actor: &Actor, escrow_id: &str) -> Result<Value> {
    let parties = EscrowParties::load_visible(ctx.conn, escrow_id, actor)?;
    if !parties.is_sender(actor) {
        return Err(if actor.role == Role::Sender {
            Error::NotFound { what: "escrow" }
        } else {
            Error::Forbidden
        });
    }
    if parties.status != "pending_deposit" && parties.status != "active" {
        return Err(Error::InvalidState {
            entity: "escrow",
            from: parties.status,
            to: "cancelled",
        });
    }
    let reserved: i64 = ctx.conn.query_row(
        "SELECT reserved_usd_cents FROM escrows WHERE id = ?1",
        [escrow_id],
        |r| r.get(0),
    )?;
    if reserved > 0 {
        return Err(Error::InvalidState {
            entity: "escrow",
            from: "active with a payout in flight".into(),
            to: "cancelled",
        });
    }
    let refunded = ledger::refund(ctx.conn, escrow_id, ctx.now)?;
    let at = crate::time::rfc3339(ctx.now);
    let mut stmt = ctx.conn.prepare_cached(
        "UPDATE payment_requests SET status = 'cancelled', decided_by = ?2, decided_at = ?3, updated_at = ?3
         WHERE escrow_id = ?1 AND status = 'pending_approval' RETURNING id",
    )?;
    let cancelled: Vec<String> = stmt
        .query_map(params![escrow_id, actor.id, at], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for request_id in &cancelled {
        crate::audit::append(
            ctx,
            &actor.id,
            "payment_request.cancelled",
            request_id,
            &json!({"reason": "escrow cancelled"}),
        )?;
    }
    crate::audit::append(
        ctx,
        &actor.id,
        "escrow.cancelled",
        escrow_id,
        &json!({"refundedUsdCents": refunded.get()}),
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
