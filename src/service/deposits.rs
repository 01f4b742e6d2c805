//! Deposits: cash recorded at a kiosk, and Stripe PaymentIntents (through the webhook). Applied
//! deposits fund their escrow; a deposit that cannot be applied is refused (cash) or recorded
//! as `flagged` for the operator (Stripe: that money has already arrived).

use super::views::{self, DepositView};
use super::{require_role, Actor, Role};
use crate::domain::{DepositId, DepositSource, DepositStatus, EscrowId, EscrowStatus, EventType};
use crate::error::{Error, Result};
use crate::ledger;
use crate::money::{KesCents, RateKesPerUsd, UsdCents};
use crate::store::WriteCtx;
use rusqlite::{named_params, params, OptionalExtension};
use serde::Serialize;
use serde_json::json;

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

/// The answer to recording a deposit: the deposit, whether it was already known, and the
/// state its escrow is now in.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedDeposit {
    /// The deposit.
    #[serde(flatten)]
    pub deposit: DepositView,
    /// True when this (source, reference) was recorded before and nothing changed.
    pub duplicate: bool,
    /// The escrow's state after the deposit.
    pub escrow_status: Option<EscrowStatus>,
    /// What became of it (not serialised: the view says it).
    #[serde(skip)]
    pub outcome: DepositOutcome,
}

fn recorded(
    ctx: &WriteCtx<'_>,
    deposit_id: &DepositId,
    outcome: DepositOutcome,
) -> Result<RecordedDeposit> {
    let deposit = views::deposit(ctx.conn, deposit_id)?;
    let escrow_status: Option<EscrowStatus> = match &deposit.escrow_id {
        Some(id) => ctx
            .conn
            .prepare_cached("SELECT status FROM escrows WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?,
        None => None,
    };
    Ok(RecordedDeposit {
        deposit,
        duplicate: outcome == DepositOutcome::Duplicate,
        escrow_status,
        outcome,
    })
}

/// Records a deposit, idempotent on (source, reference). Applied deposits move
/// `world:deposits → escrow:unfunded`; once they cover the total the escrow turns `active` and
/// its categories are funded. A deposit that does not fit (escrow not `pending_deposit`, or
/// more than is still due) is refused for cash, and recorded as `flagged` for Stripe, whose
/// money has already arrived. `escrow_id` is as the depositor quoted it: it may name nothing.
pub fn record(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    escrow_id: &str,
    source: DepositSource,
    reference: &str,
    amount: UsdCents,
) -> Result<RecordedDeposit> {
    record_with(
        ctx,
        actor,
        escrow_id,
        source,
        reference,
        amount,
        &Cash::default(),
    )
}

/// How much cash an agent took: dollars, or shillings converted at the day's rate.
#[derive(Debug, Clone, Copy)]
pub enum CashAmount {
    /// US dollars.
    Usd(UsdCents),
    /// Kenyan shillings.
    Kes(KesCents),
}

/// What a cash deposit carries besides its amount: the receipt number remit made, and the
/// shillings and rate when it was taken in KES.
#[derive(Debug, Clone, Default)]
struct Cash {
    receipt_number: Option<String>,
    kes: Option<(KesCents, RateKesPerUsd)>,
}

/// Characters of a deposit receipt number after its `D`.
const RECEIPT_CODE_LEN: usize = 8;

/// `POST /escrows/:id/deposits`: cash taken at a kiosk, in USD or in KES at today's rate
/// (`USD cents = floor(KES cents × 10⁴ / rate)`: never in the platform's disfavour). remit
/// makes the receipt number; the agent's own `reference` is optional and, when absent, is
/// the receipt number (then only an `Idempotency-Key` guards a retry: the handler requires one).
pub fn record_cash(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    escrow_id: &EscrowId,
    reference: Option<&str>,
    amount: CashAmount,
) -> Result<RecordedDeposit> {
    require_role(actor, &[Role::Agent])?;
    let receipt_number = crate::domain::unique_code(
        ctx.conn,
        "deposits",
        "receipt_number",
        "D",
        RECEIPT_CODE_LEN,
    )?;
    let (usd, kes) = match amount {
        CashAmount::Usd(usd) => (usd, None),
        CashAmount::Kes(kes) => {
            let (rate, _) = super::fx::current(ctx.conn)?;
            let usd = rate.usd_for_floor(kes);
            if usd.get() == 0 {
                return Err(Error::invalid(
                    "amountKes",
                    format!("is less than one US cent at today's rate ({rate})"),
                ));
            }
            (usd, Some((kes, rate)))
        }
    };
    let reference = reference.unwrap_or(&receipt_number).to_string();
    let cash = Cash {
        receipt_number: Some(receipt_number),
        kes,
    };
    record_with(
        ctx,
        actor,
        escrow_id.as_str(),
        DepositSource::Cash,
        &reference,
        usd,
        &cash,
    )
}

/// A deposit already recorded under a reference: its id, escrow, amounts and recorder.
type PreviousDeposit = (
    DepositId,
    Option<String>,
    UsdCents,
    Option<KesCents>,
    String,
);

fn record_with(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    escrow_id: &str,
    source: DepositSource,
    reference: &str,
    amount: UsdCents,
    cash: &Cash,
) -> Result<RecordedDeposit> {
    if source == DepositSource::Cash {
        require_role(actor, &[Role::Agent])?;
    }
    let previous: Option<PreviousDeposit> = ctx
        .conn
        .prepare_cached("SELECT id, escrow_id, amount_usd_cents, amount_kes_cents, recorded_by FROM deposits WHERE source = ?1 AND reference = ?2")?
        .query_row(params![source, reference], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .optional()?;
    if let Some((id, previous_escrow, previous_amount, previous_kes, recorded_by)) = previous {
        // A PaymentIntent id names one payment, so a repeat is always the same deposit; a cash
        // reference reused for another escrow or amount is a mistake at the kiosk. Shillings
        // are compared as shillings (the rate may have changed since).
        let same_amount = match (cash.kes, previous_kes) {
            (Some((kes, _)), Some(before)) => kes == before,
            (None, None) => previous_amount == amount,
            _ => false,
        };
        let differs = previous_escrow.as_deref() != Some(escrow_id) || !same_amount;
        // The repeat of a deposit is its agent's (a retry after a lost answer); another agent
        // reads only the cash they recorded, so a reference typed at another kiosk is refused
        // first, in one sentence whatever its escrow and amount (which would otherwise tell
        // whether they match the other agent's cash), and never answered with that receipt.
        if source == DepositSource::Cash {
            if recorded_by != actor.id {
                return Err(Error::invalid(
                    "reference",
                    "was already used for a deposit recorded by another agent",
                ));
            }
            if differs {
                return Err(Error::invalid(
                    "reference",
                    "was already used for a different deposit (a reference names one deposit: give this one its own, or none and an Idempotency-Key)",
                ));
            }
        }
        return recorded(ctx, &id, DepositOutcome::Duplicate);
    }

    let escrow: Option<(EscrowId, EscrowStatus, UsdCents, UsdCents)> = match EscrowId::parse(
        escrow_id,
    ) {
        Ok(id) => ctx
            .conn
            .prepare_cached(
                "SELECT status, total_usd_cents, deposited_usd_cents FROM escrows WHERE id = ?1",
            )?
            .query_row([&id], |r| Ok((id.clone(), r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?,
        Err(_) => None,
    };
    let refusal = match &escrow {
        None => Some((
            Error::NotFound { what: "escrow" },
            "unknown escrow".to_string(),
        )),
        Some((_, status, _, _)) if *status != EscrowStatus::PendingDeposit => Some((
            Error::InvalidState {
                entity: "escrow",
                from: status.to_string(),
                to: "deposited",
            },
            format!("escrow is {status}"),
        )),
        // In shillings, more than the kiosk collects for what is due (`kes_to_collect`: the
        // whole shillings that pay it) is refused too: converted down to whole cents it could
        // equal what is due, and the shillings past it would be taken and credited to no one.
        Some((_, _, total, deposited))
            if more_than_due(amount, cash, still_due(total, deposited)) =>
        {
            let due = still_due(total, deposited);
            let refused = match cash.kes {
                // A rate under one shilling a dollar: a shilling's cent is worth more than a
                // cent, and no amount in shillings may be the last cents due.
                Some((_, rate)) if rate.usd_for_floor(rate.kes_to_collect(due)) > due => {
                    Error::invalid(
                        "amountKes",
                        format!(
                            "is worth more than the {} still due at today's rate ({rate}): take it in USD (amountUsd)",
                            due.display()
                        ),
                    )
                }
                Some((_, rate)) => Error::invalid(
                    "amountKes",
                    format!(
                        "is more than the {} still due ({} at today's rate)",
                        due.display(),
                        rate.kes_to_collect(due).display()
                    ),
                ),
                None => Error::invalid(
                    "amountUsd",
                    format!("is more than the {} still due", due.display()),
                ),
            };
            Some((
                refused,
                format!("amount exceeds the {} still due", due.display()),
            ))
        }
        Some(_) => None,
    };
    let escrow_id = match (escrow, refusal) {
        (Some((id, ..)), None) => id,
        (escrow, refusal) => {
            let (error, reason) = refusal.unwrap_or((
                Error::NotFound { what: "escrow" },
                "unknown escrow".to_string(),
            ));
            if source == DepositSource::Cash {
                return Err(error);
            }
            let known = escrow.map(|(id, ..)| id);
            return record_flagged(
                ctx,
                actor,
                known.as_ref(),
                source,
                reference,
                (amount, USD),
                &reason,
            );
        }
    };
    let id = DepositId::new();
    ctx.conn
        .prepare_cached(
            "INSERT INTO deposits (id, escrow_id, source, reference, amount_usd_cents, status, recorded_by,
             created_at, receipt_number, amount_kes_cents, rate_kes_per_usd_e4, change_seq)
             VALUES (:id, :escrow, :source, :reference, :amount, :status, :actor, :at, :receipt, :kes, :rate,
             remit_change_seq())",
        )?
        .execute(named_params! {
            ":id": id, ":escrow": escrow_id, ":source": source, ":reference": reference,
            ":amount": amount, ":status": DepositStatus::Applied, ":actor": actor.id, ":at": ctx.at(),
            ":receipt": cash.receipt_number, ":kes": cash.kes.map(|(k, _)| k),
            ":rate": cash.kes.map(|(_, r)| r),
        })?;
    let activated = ledger::deposit(ctx.conn, &escrow_id, amount, id.as_str(), ctx.now)?;
    ctx.audit(
        &actor.id,
        "escrow.deposited",
        escrow_id.as_str(),
        &json!({"depositId": id, "source": source, "amountUsdCents": amount.get(),
                "receiptNumber": cash.receipt_number, "amountKesCents": cash.kes.map(|(k, _)| k.get()),
                "rateKesPerUsdE4": cash.kes.map(|(_, r)| r.e4())}),
    )?;
    ctx.emit(
        EventType::DepositRecorded,
        json!({"depositId": id, "escrowId": escrow_id, "status": DepositStatus::Applied,
               "source": source, "amountUsd": amount.major(), "amountUsdCents": amount.get(),
               "amountKes": cash.kes.map(|(k, _)| k.major()),
               "amountKesCents": cash.kes.map(|(k, _)| k.get()),
               "exchangeRate": cash.kes.map(|(_, r)| r.decimal()),
               "rateKesPerUsdE4": cash.kes.map(|(_, r)| r.e4()),
               "receiptNumber": cash.receipt_number}),
    )?;
    if activated {
        ctx.audit(
            &actor.id,
            "escrow.activated",
            escrow_id.as_str(),
            &json!({}),
        )?;
        let total = total_of(ctx, &escrow_id)?;
        ctx.emit(
            EventType::EscrowActivated,
            json!({"escrowId": escrow_id, "status": EscrowStatus::Active,
                   "totalAmountUsd": total.major(), "totalAmountUsdCents": total.get()}),
        )?;
    }
    recorded(ctx, &id, DepositOutcome::Applied)
}

/// What an escrow still waits for.
fn still_due(total: &UsdCents, deposited: &UsdCents) -> UsdCents {
    UsdCents::new(total.get() - deposited.get()).unwrap_or_default()
}

/// Is a deposit of `amount` more than is `due`? In shillings, more than the kiosk collects for
/// it (`kes_to_collect`), which converts down to exactly `due`.
fn more_than_due(amount: UsdCents, cash: &Cash, due: UsdCents) -> bool {
    match cash.kes {
        // Converted down, never more than is due either (at a rate under one shilling a
        // dollar the shillings `kes_to_collect` allows are worth more).
        Some((kes, rate)) => kes.get() > rate.kes_to_collect(due).get() || amount > due,
        None => amount > due,
    }
}

/// The currency of money that arrived, as its source names it: cash, and the card payments
/// remit credits, are in `usd`.
pub const USD: &str = "usd";

/// The flag of a card payment that names no currency.
const NO_CURRENCY: &str = "the payment names no currency";

/// Has agent `agent` recorded a cash deposit under `reference`?
pub fn cash_reference_recorded(
    conn: &rusqlite::Connection,
    reference: &str,
    agent: &str,
) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM deposits WHERE source = 'cash' AND reference = ?1 AND recorded_by = ?2)",
        )?
        .query_row([reference, agent], |row| row.get(0))?)
}

/// Why a card payment in `currency` (as Stripe names it) cannot be credited: `None` for
/// dollars. `flagged_currency` reads it back.
pub fn currency_refusal(currency: &str) -> Option<String> {
    match currency {
        USD => None,
        "" => Some(NO_CURRENCY.into()),
        other => Some(format!(
            "currency {} is not usd",
            serde_json::Value::from(other)
        )),
    }
}

/// The currency a deposit's flag (`currency_refusal`'s words) says it was in, when it was not
/// dollars: `Some(None)` for a payment that named none, `Some(Some("eur"))` for another one,
/// `None` for dollars.
pub fn flagged_currency(flag_reason: Option<&str>) -> Option<Option<String>> {
    let reason = flag_reason?;
    // The words are the whole flag, or end it after another reason (`in_its_currency`), whose
    // text (a dispute's reason, as Stripe gave it) may hold the same words before them.
    if reason == NO_CURRENCY || reason.ends_with(&format!("; {NO_CURRENCY}")) {
        return Some(None);
    }
    let at = match reason.rfind("; currency \"") {
        Some(at) => at + 2,
        None if reason.starts_with("currency \"") => 0,
        None => return None,
    };
    let quoted = reason[at..].strip_prefix("currency ")?;
    let raw = quoted.strip_suffix(" is not usd")?;
    let code = serde_json::from_str(raw).unwrap_or_else(|_| raw.trim_matches('"').to_string());
    Some(Some(code))
}

/// Records a deposit that arrived but cannot be applied (unknown escrow, wrong currency, more
/// than is due…): kept for the operator, audited, never touching a balance. `amount` is in
/// the smallest unit of its currency (as the source said it: Stripe's `currency`, `""` when
/// it named none), kept where a deposit's cents are.
pub fn record_flagged(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    escrow_id: Option<&EscrowId>,
    source: DepositSource,
    reference: &str,
    amount: (UsdCents, &str),
    reason: &str,
) -> Result<RecordedDeposit> {
    // A PaymentIntent id names one payment: a second event for one already recorded (another
    // event id, as a re-created test event or a second endpoint has) is its repeat, as on the
    // credited path (`record_with`); it broke the reference's uniqueness, a 500 that Stripe
    // retried for three days.
    let previous: Option<DepositId> = ctx
        .conn
        .prepare_cached("SELECT id FROM deposits WHERE source = ?1 AND reference = ?2")?
        .query_row(params![source, reference], |r| r.get(0))
        .optional()?;
    if let Some(id) = previous {
        return recorded(ctx, &id, DepositOutcome::Duplicate);
    }
    let id = insert_flagged(ctx, actor, escrow_id, source, reference, amount.0, reason)?;
    said_flagged(ctx, actor, &id, escrow_id, source, amount, reason)
}

/// A flagged deposit's amount as its audit line and event say it: in US dollars when it is,
/// else in its own currency's smallest unit, with no dollar amount (a receiver must not book
/// JPY 5,000 as USD 50.00).
fn flagged_amount((amount, currency): (UsdCents, &str)) -> serde_json::Value {
    if currency == USD {
        json!({"currency": USD, "amountUsd": amount.major(), "amountUsdCents": amount.get()})
    } else {
        json!({"currency": (!currency.is_empty()).then_some(currency), "amountUsd": null,
               "amountUsdCents": null, "amountMinorUnits": amount.get()})
    }
}

/// `fields` with the flagged deposit's amount (`flagged_amount`) added.
fn with_flagged_amount(
    mut fields: serde_json::Value,
    amount: (UsdCents, &str),
) -> serde_json::Value {
    if let (Some(map), serde_json::Value::Object(more)) =
        (fields.as_object_mut(), flagged_amount(amount))
    {
        map.extend(more);
    }
    fields
}

/// The row of a deposit not applied, flagged for the operator with `reason`.
fn insert_flagged(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    escrow_id: Option<&EscrowId>,
    source: DepositSource,
    reference: &str,
    amount: UsdCents,
    reason: &str,
) -> Result<DepositId> {
    let id = DepositId::new();
    ctx.conn.prepare_cached("INSERT INTO deposits (id, escrow_id, source, reference, amount_usd_cents, status, flag_reason, recorded_by, created_at,
         change_seq) VALUES (:id, :escrow, :source, :reference, :amount, :status, :reason, :actor, :at, remit_change_seq())")?.execute(named_params! {
            ":id": id, ":escrow": escrow_id, ":source": source, ":reference": reference,
            ":amount": amount, ":status": DepositStatus::Flagged, ":reason": reason,
            ":actor": actor.id, ":at": ctx.at(),
        })?;
    Ok(id)
}

/// A deposit flagged for the operator: its audit line, its event and the log's warning.
fn said_flagged(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    id: &DepositId,
    escrow_id: Option<&EscrowId>,
    source: DepositSource,
    amount: (UsdCents, &str),
    reason: &str,
) -> Result<RecordedDeposit> {
    // The signed record says amounts in cents only (its dollars were a float: `1.0`); the
    // event says both spellings, as every answer does.
    let mut details = with_flagged_amount(
        json!({"escrowId": escrow_id, "source": source, "reason": reason}),
        amount,
    );
    if let Some(map) = details.as_object_mut() {
        map.remove("amountUsd");
    }
    ctx.audit(&actor.id, "deposit.flagged", id.as_str(), &details)?;
    ctx.emit(
        EventType::DepositFlagged,
        with_flagged_amount(
            json!({"depositId": id, "escrowId": escrow_id, "status": DepositStatus::Flagged,
               "source": source}),
            amount,
        ),
    )?;
    ctx.warn_after_commit(format!(
        "deposit {id} from {source} flagged for the operator: {reason}"
    ));
    recorded(ctx, id, DepositOutcome::Flagged(reason.to_string()))
}

/// An escrow's total (for the `escrow.activated` event).
fn total_of(ctx: &WriteCtx<'_>, escrow_id: &EscrowId) -> Result<UsdCents> {
    Ok(ctx
        .conn
        .prepare_cached("SELECT total_usd_cents FROM escrows WHERE id = ?1")?
        .query_row([escrow_id], |r| r.get(0))?)
}

/// Does an escrow with this id exist? (For flagging money that names one.)
pub fn escrow_exists(ctx: &WriteCtx<'_>, escrow_id: &str) -> Result<Option<EscrowId>> {
    let Ok(id) = EscrowId::parse(escrow_id) else {
        return Ok(None);
    };
    let exists: bool = ctx
        .conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM escrows WHERE id = ?1)")?
        .query_row([&id], |r| r.get(0))?;
    Ok(exists.then_some(id))
}

/// What a refund or dispute at Stripe did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReversalOutcome {
    /// No deposit has this PaymentIntent and the event carries no amount: nothing recorded.
    UnknownPayment,
    /// No deposit has this PaymentIntent yet (Stripe does not promise the order of its
    /// events): it is recorded as a flagged deposit of no escrow, so that the payment's own
    /// `payment_intent.succeeded`, when it comes, is not applied (`after_reversal`).
    BeforeItsPayment(DepositId),
    /// The deposit (and, if it was applied, its escrow) is flagged for the operator.
    Flagged(DepositId),
    /// A refund of a cancelled escrow's card payment, within what its cancel left owed back to
    /// the sender (README: the operator returns a card payment from Stripe's dashboard): the
    /// deposit records it, and nothing is flagged.
    ReturnsACancel(DepositId),
}

/// How the flag of a deposit recorded from a refund or dispute of a payment not yet seen
/// begins (`after_reversal` looks for it).
const BEFORE_ITS_PAYMENT: &str = "Stripe took this payment back before remit heard it succeed";

/// Records that Stripe took (or may take) back the money of a deposit: the deposit keeps what
/// happened, and the escrow it was applied to is flagged for the operator. No balance moves:
/// the money may already have been paid out, which only the operator can sort out.
pub fn record_reversal(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    reversal: &crate::wire::stripe::Reversal,
) -> Result<ReversalOutcome> {
    type Found = (DepositId, Option<EscrowId>, DepositStatus, Option<String>);
    let found: Option<Found> = ctx
        .conn
        .prepare_cached(
            "SELECT id, escrow_id, status, flag_reason FROM deposits WHERE source = ?1 AND reference = ?2",
        )?
        .query_row(
            params![DepositSource::Stripe, reversal.payment_intent],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    // An event that names no currency is in the deposit's (a Dispute without `currency`).
    let named;
    let reversal = match &found {
        Some((.., flag_reason)) if reversal.currency.is_empty() => {
            named = crate::wire::stripe::Reversal {
                currency: match flagged_currency(flag_reason.as_deref()) {
                    None => USD.to_string(),
                    Some(currency) => currency.unwrap_or_default(),
                },
                ..reversal.clone()
            };
            &named
        }
        _ => reversal,
    };
    let (id, escrow_id, status, early) = match found {
        Some((id, escrow_id, status, _)) => (id, escrow_id, status, false),
        None => {
            let Some(amount) = reversal.amount else {
                ctx.warn_after_commit(format!(
                    "Stripe {} without an amount for a payment remit never recorded: nothing recorded, see the stored event",
                    reversal.kind
                ));
                return Ok(ReversalOutcome::UnknownPayment);
            };
            let said = format!("{BEFORE_ITS_PAYMENT}: {}", reversal.describe());
            // Its currency said when the event names one (the payment's own, when it comes,
            // says it otherwise: `after_reversal`).
            let reason = match reversal.currency.as_str() {
                "" => said,
                currency => in_its_currency(said, currency),
            };
            let id = insert_flagged(
                ctx,
                actor,
                None,
                DepositSource::Stripe,
                &reversal.payment_intent,
                amount,
                &reason,
            )?;
            (id, None, DepositStatus::Flagged, true)
        }
    };
    ctx.audit(
        &actor.id,
        &format!("deposit.{}", reversal.kind),
        id.as_str(),
        &reversal_line(
            escrow_id
                .as_ref()
                .filter(|_| status == DepositStatus::Applied),
            reversal,
        ),
    )?;
    // Stripe's events come in any order, and a refund's `amount_refunded` is the running
    // total: the deposit says every reversal it had, from its audit lines, the largest refund
    // and a dispute (which stays: it needs the operator's answer) rather than the latest event.
    let (kind, reason) = reversals_of(ctx, &id, charge_of(ctx, &id)?)?;
    ctx.conn.prepare_cached("UPDATE deposits SET change_seq = remit_change_seq(), reversal = :kind, reversal_reason = :reason, reversal_at = :at WHERE id = :id")?.execute(named_params! {":id": id, ":kind": kind, ":reason": reason, ":at": ctx.at()})?;
    let flagged_escrow = match (&escrow_id, status) {
        (Some(escrow_id), DepositStatus::Applied)
            if kind == crate::domain::DepositReversal::Refunded
                && returns_a_cancel(ctx, escrow_id)? =>
        {
            ctx.info_after_commit(format!(
                "deposit {id}: {reason}; its escrow was cancelled and owed this back: recorded, nothing flagged"
            ));
            return Ok(ReversalOutcome::ReturnsACancel(id));
        }
        (Some(escrow_id), DepositStatus::Applied) => {
            let flag: Option<String> = ctx
                .conn
                .prepare_cached("SELECT flag_reason FROM escrows WHERE id = ?1")?
                .query_row([escrow_id], |r| r.get(0))?;
            let flag = escrow_flag_with(
                flag.as_deref(),
                &id,
                &format!("deposit {id}: {reason}; its money may be taken back"),
            );
            ctx.conn
                .prepare_cached(
                    "UPDATE escrows SET change_seq = remit_change_seq_of('escrows', id), flag_reason = ?2, updated_at = ?3 WHERE id = ?1",
                )?
                .execute(params![escrow_id, flag, ctx.at()])?;
            Some(escrow_id)
        }
        _ => None,
    };
    if early {
        ctx.warn_after_commit(format!(
            "Stripe {} a payment remit has not heard succeed: recorded as deposit {id}, flagged, so that its success is not applied",
            reversal.kind
        ));
        return Ok(ReversalOutcome::BeforeItsPayment(id));
    }
    ctx.warn_after_commit(format!(
        "deposit {id}: {reason}; flagged for the operator{}",
        if flagged_escrow.is_some() {
            " with its escrow"
        } else {
            ""
        }
    ));
    Ok(ReversalOutcome::Flagged(id))
}

/// Between the reversals of different deposits in an escrow's flag.
const FLAG_SEPARATOR: &str = " | ";

/// An escrow's flag with `said` of deposit `id` in it: an earlier reversal of another deposit
/// the operator has not cleared stays beside it (a later refund of another card replaced a
/// dispute, and the admin who cleared the flag they read cleared the dispute unread); an
/// earlier word on the same deposit is replaced (`said` tells all its reversals).
fn escrow_flag_with(flag: Option<&str>, id: &DepositId, said: &str) -> String {
    let own = format!("deposit {id}: ");
    let mut parts: Vec<&str> = flag
        .into_iter()
        .flat_map(|flag| flag.split(FLAG_SEPARATOR))
        .filter(|part| !part.is_empty() && !part.starts_with(&own))
        .collect();
    parts.push(said);
    parts.join(FLAG_SEPARATOR)
}

/// What Stripe has refunded of the escrow `$e`'s applied card deposits (SQL, in US cents): each
/// deposit's largest refund (Stripe's running total of the charge), or the whole charge when a
/// refund of it named no amount in dollars, at most the charge. What a cancel's returns are held
/// to (`returns_a_cancel`) and what a cancelled escrow's view says went back to the card
/// (`EscrowView::returned_to_card_usd_cents`), defined once.
macro_rules! returned_to_card {
    ($e:literal) => {
        concat!(
            "(SELECT COALESCE(SUM(MIN(d.amount_usd_cents, COALESCE((
                SELECT CASE WHEN COUNT(*) > COUNT(json_extract(a.details, '$.amountUsdCents'))
                    THEN d.amount_usd_cents ELSE MAX(json_extract(a.details, '$.amountUsdCents')) END
                FROM audit_log a WHERE a.entity = d.id AND a.action = 'deposit.refunded'), 0))), 0)
            FROM deposits d WHERE d.escrow_id = ",
            $e,
            " AND d.source = 'stripe' AND d.status = 'applied')"
        )
    };
}
pub(crate) use returned_to_card;

/// Do the card refunds of a cancelled escrow return no more than its cancel left owed back to
/// the sender (`refunded_usd_cents`)? Each applied card deposit counts its largest refund (Stripe's
/// running total of the charge), or the whole charge when a refund of it named no amount in
/// dollars. More than that returns money that was spent (paid out in Kenya): flagged. Not
/// cancelled: the money may be spent yet, flagged. A deposit of it disputed (its money taken
/// back by the card's bank, whatever the amount) makes no refund a plain return: flagged. A
/// payment flagged and never applied (one that came after the escrow was funded) is none of
/// the escrow's money: its dispute changes nothing here.
fn returns_a_cancel(ctx: &WriteCtx<'_>, escrow_id: &EscrowId) -> Result<bool> {
    Ok(ctx
        .conn
        .prepare_cached(concat!(
            "SELECT e.status = 'cancelled' AND ",
            returned_to_card!("e.id"),
            " <= e.refunded_usd_cents
             AND NOT EXISTS (SELECT 1 FROM deposits d WHERE d.escrow_id = e.id AND d.status = 'applied' AND d.reversal = 'disputed')
             FROM escrows e WHERE e.id = ?1"
        ))?
        .query_row([escrow_id], |r| r.get(0))
        .optional()?
        .unwrap_or(false))
}

/// A refund's or dispute's audit line: its amount in dollars when it is, else in its own
/// currency's smallest unit (`amountMinorUnits`) with no dollar amount, as a flagged deposit's.
fn reversal_line(
    escrow_id: Option<&EscrowId>,
    reversal: &crate::wire::stripe::Reversal,
) -> serde_json::Value {
    let amount = reversal.amount.map(UsdCents::get);
    if reversal.currency == USD {
        json!({"escrowId": escrow_id, "amountUsdCents": amount, "reason": reversal.reason})
    } else {
        json!({"escrowId": escrow_id, "currency": (!reversal.currency.is_empty()).then_some(&reversal.currency),
               "amountUsdCents": null, "amountMinorUnits": amount, "reason": reversal.reason})
    }
}

/// A flag `reason` of money in `currency`: with `currency_refusal`'s words after it when that
/// is not dollars, where `flagged_currency` finds them.
pub fn in_its_currency(reason: String, currency: &str) -> String {
    match currency_refusal(currency) {
        Some(refusal) => format!("{reason}; {refusal}"),
        None => reason,
    }
}

/// What a deposit charged, when known: one recorded from a reversal that came before its
/// payment holds the reversal's amount, not the charge's, until the payment comes.
fn charge_of(ctx: &WriteCtx<'_>, id: &DepositId) -> Result<Option<UsdCents>> {
    Ok(ctx
        .conn
        .prepare_cached(
            "SELECT amount_usd_cents FROM deposits WHERE id = ?1 AND NOT (escrow_id IS NULL AND flag_reason LIKE ?2 || '%')",
        )?
        .query_row(params![id, BEFORE_ITS_PAYMENT], |r| r.get(0))
        .optional()?)
}

/// What a deposit's reversals amount to, from its audit lines: `disputed` once it was disputed
/// (whatever was refunded after), else `refunded`; and one sentence naming the dispute and the
/// largest refund (a refund's amount is Stripe's running total, so a late older event says
/// less, not more; a refund of `charged` or more is the whole charge).
fn reversals_of(
    ctx: &WriteCtx<'_>,
    id: &DepositId,
    charged: Option<UsdCents>,
) -> Result<(crate::domain::DepositReversal, String)> {
    use crate::domain::DepositReversal;
    let mut stmt = ctx.conn.prepare_cached(
        "SELECT action, coalesce(json_extract(details, '$.amountUsdCents'), json_extract(details, '$.amountMinorUnits')),
         json_extract(details, '$.reason'),
         CASE WHEN json_type(details, '$.amountMinorUnits') IS NULL THEN 'usd' ELSE coalesce(json_extract(details, '$.currency'), '') END
         FROM audit_log WHERE entity = ?1 AND action IN ('deposit.refunded', 'deposit.disputed')
         ORDER BY seq",
    )?;
    // Each with the currency its own line said (an older line, in dollars, says none): a
    // dispute was said in the currency of a refund that came after it.
    let mut refunded: Option<(Option<i64>, String)> = None;
    let mut disputed: Option<(Option<i64>, Option<String>, String)> = None;
    let mut rows = stmt.query([id])?;
    while let Some(r) = rows.next()? {
        let action: String = r.get(0)?;
        let amount: Option<i64> = r.get(1)?;
        let currency: String = r.get(3)?;
        if action == "deposit.disputed" {
            disputed = Some((amount, r.get(2)?, currency));
        } else {
            let largest = refunded.as_ref().and_then(|(a, _)| *a);
            if refunded.is_none() || amount > largest {
                refunded = Some((amount, currency));
            }
        }
    }
    let sentence = |kind, amount: Option<i64>, reason: Option<String>, currency: String| {
        crate::wire::stripe::Reversal {
            payment_intent: String::new(),
            currency,
            kind,
            amount: amount.and_then(UsdCents::new),
            full: amount.is_some_and(|c| charged.is_some_and(|charged| c >= charged.get())),
            reason,
        }
        .describe()
    };
    let refund = refunded
        .map(|(amount, currency)| sentence(DepositReversal::Refunded, amount, None, currency));
    Ok(match disputed {
        Some((amount, reason, currency)) => {
            let dispute = sentence(DepositReversal::Disputed, amount, reason, currency);
            let both = match refund {
                Some(refund) => format!("{dispute}; {refund}"),
                None => dispute,
            };
            (DepositReversal::Disputed, both)
        }
        None => (
            DepositReversal::Refunded,
            refund.unwrap_or_else(|| "Stripe refunded an unknown amount".into()),
        ),
    })
}

/// A `payment_intent.succeeded` for a payment Stripe refunded or disputed before it came
/// (`ReversalOutcome::BeforeItsPayment`): the deposit recorded then gets its escrow and amount
/// and stays flagged, not applied (the money went back, or may). `None` when there is no such
/// deposit.
pub fn after_reversal(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    payment_intent: &str,
    escrow_id: Option<&str>,
    amount: (UsdCents, &str),
) -> Result<Option<RecordedDeposit>> {
    let (amount, currency) = amount;
    let found: Option<DepositId> = ctx
        .conn
        .prepare_cached(
            "SELECT id FROM deposits WHERE source = ?1 AND reference = ?2 AND status = ?3
             AND escrow_id IS NULL AND reversal IS NOT NULL AND flag_reason LIKE ?4 || '%'",
        )?
        .query_row(
            params![
                DepositSource::Stripe,
                payment_intent,
                DepositStatus::Flagged,
                BEFORE_ITS_PAYMENT
            ],
            |r| r.get(0),
        )
        .optional()?;
    let Some(id) = found else {
        return Ok(None);
    };
    let known = match escrow_id {
        Some(escrow_id) => escrow_exists(ctx, escrow_id)?,
        None => None,
    };
    // The charge is known now: a refund of all of it is said so, a part as a part.
    let (_, reversed) = reversals_of(ctx, &id, Some(amount))?;
    let reason = in_its_currency(
        format!(
            "Stripe said this payment of {} succeeded after it had taken it back ({reversed}): not applied",
            crate::wire::stripe::amount_in(amount, currency)
        ),
        currency,
    );
    ctx.conn.prepare_cached("UPDATE deposits SET change_seq = remit_change_seq(), escrow_id = :escrow, amount_usd_cents = :amount, flag_reason = :reason, reversal_reason = :reversed WHERE id = :id")?.execute(named_params! {
        ":id": id, ":escrow": known, ":amount": amount, ":reason": reason, ":reversed": reversed,
    })?;
    said_flagged(
        ctx,
        actor,
        &id,
        known.as_ref(),
        DepositSource::Stripe,
        (amount, currency),
        &reason,
    )
    .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flag a card payment in another currency gets is read back as that currency, however
    /// Stripe spelled it; dollars are no flag.
    #[test]
    fn a_currency_refused_is_read_back_from_its_flag() {
        assert_eq!(currency_refusal(USD), None);
        for currency in ["eur", "jpy", "", "e\"u\\r\u{1b}"] {
            let reason = currency_refusal(currency).unwrap();
            let named = (!currency.is_empty()).then(|| currency.to_string());
            assert_eq!(
                flagged_currency(Some(&reason)),
                Some(named.clone()),
                "{reason}"
            );
            // After another reason, as a refund before its payment is flagged.
            let after = in_its_currency(format!("{BEFORE_ITS_PAYMENT}: refunded (x; y)"), currency);
            assert_eq!(flagged_currency(Some(&after)), Some(named), "{after}");
        }
        assert_eq!(
            in_its_currency("more than is due".into(), USD),
            "more than is due"
        );
        // Words of the same shape in a dispute's reason, before the currency's own: the last.
        let disputed = in_its_currency(
            format!("{BEFORE_ITS_PAYMENT}: disputed (reason: x; currency \"eur\" is not usd)"),
            "jpy",
        );
        assert_eq!(flagged_currency(Some(&disputed)), Some(Some("jpy".into())));
        let dollars =
            format!("{BEFORE_ITS_PAYMENT}: disputed (reason: x; currency \"eur\" is not usd)");
        assert_eq!(flagged_currency(Some(&dollars)), None, "{dollars}");
        let named = format!("{BEFORE_ITS_PAYMENT}: disputed (reason: x; {NO_CURRENCY})");
        assert_eq!(flagged_currency(Some(&named)), None, "{named}");
        assert_eq!(flagged_currency(Some("more than is still due")), None);
        assert_eq!(flagged_currency(None), None);
    }
}
