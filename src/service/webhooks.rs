//! Applying the webhooks we receive, exactly once: every delivery is recorded under a dedupe
//! key, encrypted, in the same writer transaction as its effect, with what was done with it.
//! Stripe events record deposits; M-Pesa results complete or fail payouts.

use super::deposits::{self, DepositOutcome, ReversalOutcome};
use super::payouts::{self, Payee, PayoutResult, Reported, ResultOutcome, StatusOutcome};
use super::Actor;
use crate::crypto::EncryptedColumn;
use crate::domain::{DepositSource, PayoutId, PayoutStatus, WebhookEventId, WebhookSource};
use crate::error::Result;
use crate::money::KesCents;
use crate::store::WriteCtx;
use crate::wire::daraja::results::{account_balances, status_answer, StatusAnswer};
use crate::wire::daraja::{Callback, CallbackKind};
use crate::wire::stripe;
use rusqlite::{params, OptionalExtension};
use std::fmt;

/// Records a webhook delivery; returns true when its dedupe key is new.
fn record_event(
    ctx: &WriteCtx<'_>,
    source: WebhookSource,
    dedupe_key: &str,
    payload: &[u8],
) -> Result<bool> {
    let at = ctx.at();
    let updated = ctx.conn.prepare_cached("UPDATE webhook_events SET change_seq = remit_change_seq(), deliveries = deliveries + 1, last_at = ?3 WHERE source = ?1 AND dedupe_key = ?2")?.execute(params![source, dedupe_key, at])?;
    if updated > 0 {
        return Ok(false);
    }
    let id = WebhookEventId::new();
    let payload_enc = ctx.keys.seal(
        EncryptedColumn::WebhookPayload,
        id.as_str(),
        &String::from_utf8_lossy(payload),
    )?;
    ctx.conn.prepare_cached("INSERT INTO webhook_events (id, source, dedupe_key, payload_enc, outcome, received_at, last_at, change_seq)
         VALUES (?1, ?2, ?3, ?4, 'received', ?5, ?5, remit_change_seq())")?.execute(params![id, source, dedupe_key, payload_enc, at])?;
    Ok(true)
}

/// A queue timeout whose body names no payout (its shape is documented nowhere): kept as it
/// came, under the hash of its bytes (the same body again is counted, not kept twice), its
/// outcome `unread`.
pub fn keep_unread_timeout(ctx: &WriteCtx<'_>, raw: &[u8]) -> Result<()> {
    let key = format!(
        "unread-timeout:{}",
        crate::crypto::hex(&crate::crypto::sha256(raw))
    );
    if record_event(ctx, WebhookSource::Mpesa, &key, raw)? {
        set_outcome(ctx, WebhookSource::Mpesa, &key, "unread")?;
    }
    Ok(())
}

fn set_outcome(
    ctx: &WriteCtx<'_>,
    source: WebhookSource,
    dedupe_key: &str,
    outcome: &str,
) -> Result<()> {
    ctx.conn
        .prepare_cached(
            "UPDATE webhook_events SET change_seq = remit_change_seq(), outcome = ?3 WHERE source = ?1 AND dedupe_key = ?2",
        )?
        .execute(params![source, dedupe_key, outcome])?;
    Ok(())
}

/// What a Stripe event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StripeOutcome {
    /// The same event was delivered before; nothing changed.
    Duplicate,
    /// Not an event remit acts on.
    Ignored,
    /// A PaymentIntent without an id: nothing to record.
    NoPaymentIntentId,
    /// A PaymentIntent without a readable amount: nothing recorded (the event is kept).
    NoAmount,
    /// A deposit was recorded.
    Deposit(DepositOutcome),
    /// A refund or a dispute of a payment.
    Reversal(ReversalOutcome),
}

impl fmt::Display for StripeOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StripeOutcome::Duplicate => f.write_str("duplicate"),
            StripeOutcome::Ignored => f.write_str("ignored"),
            StripeOutcome::NoPaymentIntentId => f.write_str("ignored: no PaymentIntent id"),
            StripeOutcome::NoAmount => f.write_str("refused: no readable amount_received"),
            StripeOutcome::Deposit(DepositOutcome::Applied) => f.write_str("deposit applied"),
            StripeOutcome::Deposit(DepositOutcome::Duplicate) => {
                f.write_str("deposit already recorded")
            }
            StripeOutcome::Deposit(DepositOutcome::Flagged(reason)) => {
                write!(f, "deposit flagged: {reason}")
            }
            StripeOutcome::Reversal(ReversalOutcome::UnknownPayment) => {
                f.write_str("ignored: no deposit for this payment and no amount")
            }
            StripeOutcome::Reversal(ReversalOutcome::BeforeItsPayment(id)) => write!(
                f,
                "deposit {id} recorded as flagged: this payment has not been seen to succeed"
            ),
            StripeOutcome::Reversal(ReversalOutcome::Flagged(id)) => {
                write!(f, "deposit {id} flagged for the operator")
            }
            StripeOutcome::Reversal(ReversalOutcome::ReturnsACancel(id)) => write!(
                f,
                "deposit {id}: refund recorded, returning what its cancelled escrow owed"
            ),
        }
    }
}

/// Applies a verified Stripe event: `payment_intent.succeeded` records a deposit (flagged if it
/// cannot be applied); `charge.refunded` and `charge.dispute.created` flag the deposit they
/// take money back from, and its escrow; other types are acknowledged and ignored.
pub fn apply_stripe_event(
    ctx: &WriteCtx<'_>,
    event: &stripe::Event,
    raw: &[u8],
) -> Result<StripeOutcome> {
    if !record_event(ctx, WebhookSource::Stripe, &event.id, raw)? {
        return Ok(StripeOutcome::Duplicate);
    }
    let outcome = match (event.kind.as_str(), event.reversal()) {
        ("payment_intent.succeeded", _) => apply_payment_intent(ctx, &event.payment_intent())?,
        (_, Some(reversal)) => StripeOutcome::Reversal(deposits::record_reversal(
            ctx,
            &Actor::system("stripe"),
            &reversal,
        )?),
        _ => StripeOutcome::Ignored,
    };
    set_outcome(ctx, WebhookSource::Stripe, &event.id, &outcome.to_string())?;
    Ok(outcome)
}

fn apply_payment_intent(
    ctx: &WriteCtx<'_>,
    intent: &stripe::PaymentIntent,
) -> Result<StripeOutcome> {
    let actor = Actor::system("stripe");
    let Some(intent_id) = intent.id.as_deref() else {
        return Ok(StripeOutcome::NoPaymentIntentId);
    };
    let Some(amount) = intent.amount else {
        ctx.warn_after_commit(
            "Stripe PaymentIntent without a readable amount_received: nothing recorded, see the stored event"
                .into(),
        );
        return Ok(StripeOutcome::NoAmount);
    };
    if let Some(recorded) = deposits::after_reversal(
        ctx,
        &actor,
        intent_id,
        intent.escrow_id.as_deref(),
        (amount, &intent.currency),
    )? {
        return Ok(StripeOutcome::Deposit(recorded.outcome));
    }
    let source = DepositSource::Stripe;
    // Why it cannot be credited although it names an escrow, if it cannot. A flag's words end
    // with the currency's when it is not dollars, whatever the first reason: the views read
    // the amount's unit from them (it was shown as dollars under another reason).
    let refused = match intent.not_succeeded.clone() {
        Some(why) => Some(deposits::in_its_currency(why, &intent.currency)),
        None => deposits::currency_refusal(&intent.currency),
    };
    let recorded = match (intent.escrow_id.as_deref(), refused) {
        (Some(escrow_id), None) => {
            deposits::record(ctx, &actor, escrow_id, source, intent_id, amount)?
        }
        (Some(escrow_id), Some(reason)) => {
            let known = deposits::escrow_exists(ctx, escrow_id)?;
            deposits::record_flagged(
                ctx,
                &actor,
                known.as_ref(),
                source,
                intent_id,
                (amount, &intent.currency),
                &reason,
            )?
        }
        (None, _) => deposits::record_flagged(
            ctx,
            &actor,
            None,
            source,
            intent_id,
            (amount, &intent.currency),
            &deposits::in_its_currency(
                if intent.escrow_ids_differ {
                    "the metadata names two escrows (escrowId and escrow_id differ)"
                } else {
                    "no escrowId in metadata"
                }
                .to_string(),
                &intent.currency,
            ),
        )?,
    };
    Ok(StripeOutcome::Deposit(recorded.outcome))
}

/// What an M-Pesa result did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// No payout or query has this conversation id (yet): kept for the record, answered `404`.
    UnknownPayout,
    /// A failure that cannot be confirmed, for a payout handed to a gateway that has not
    /// acknowledged it yet (it may be on its way): kept for the record, answered `409` (the
    /// simulator posts it again), and nothing changes.
    NotSent,
    /// The same callback was delivered before; nothing changed.
    Duplicate,
    /// The payout was flagged for the operator; its money stays reserved.
    Flagged(String),
    /// The result was applied (or was already the payout's).
    Result(ResultOutcome),
    /// A failure result waits for Transaction Status to confirm it; the money stays reserved.
    FailureHeld,
    /// The outcome is not known: Transaction Status is asked at once.
    AskStatus,
    /// A Transaction Status query was refused; it is asked again later.
    QueryRefused,
    /// An Account Balance result: the float is recorded.
    Balances,
    /// A callback that reports no different final outcome (a queue timeout, an unknown
    /// outcome, a success without a receipt for a paid payout) for a payout that already has
    /// its result: acknowledged, nothing changed.
    AlreadySettled(&'static str),
    /// A result that cannot be M-Pesa's (what it lacks): not applied, and M-Pesa asked about the
    /// payout if it has no result yet. Whoever posted it holds the result URL's token.
    NotMpesas(&'static str),
}

impl fmt::Display for CallbackOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallbackOutcome::UnknownPayout => f.write_str("unknown payout"),
            CallbackOutcome::NotSent => f.write_str("refused: the payout is not sent yet"),
            CallbackOutcome::Duplicate => f.write_str("duplicate"),
            CallbackOutcome::Flagged(what) => write!(f, "flagged: {what}"),
            CallbackOutcome::Result(ResultOutcome::Applied) => f.write_str("applied"),
            CallbackOutcome::Result(ResultOutcome::AlreadyApplied) => f.write_str("duplicate"),
            CallbackOutcome::Result(ResultOutcome::Flagged(reason)) => {
                write!(f, "flagged: {reason}")
            }
            CallbackOutcome::Result(ResultOutcome::Ignored(reason)) => {
                write!(f, "ignored: {reason}")
            }
            CallbackOutcome::FailureHeld => {
                f.write_str("failure held until Transaction Status confirms it")
            }
            CallbackOutcome::AskStatus => f.write_str("outcome unknown: Transaction Status asked"),
            CallbackOutcome::QueryRefused => f.write_str("query refused: asked again later"),
            CallbackOutcome::Balances => f.write_str("balances recorded"),
            CallbackOutcome::AlreadySettled(what) => {
                write!(f, "ignored: {what} for a payout that has its result")
            }
            CallbackOutcome::NotMpesas(what) => {
                write!(f, "not applied: {what}, which M-Pesa's results never are")
            }
        }
    }
}

/// A query of ours that a result answers.
struct Query {
    kind: String,
    payout_id: Option<PayoutId>,
}

fn find_query(ctx: &WriteCtx<'_>, conversation: Option<&str>) -> Result<Option<Query>> {
    let Some(conversation) = conversation else {
        return Ok(None);
    };
    Ok(ctx
        .conn
        .prepare_cached("SELECT kind, payout_id FROM daraja_queries WHERE conversation_id = ?1")?
        .query_row([conversation], |r| {
            Ok(Query {
                kind: r.get(0)?,
                payout_id: r.get(1)?,
            })
        })
        .optional()?)
}

/// Applies a result posted to our result URL: the answer to one of our queries (Transaction
/// Status, Account Balance), found by its `ConversationID`, or a payout's result. For a payout
/// sent through Daraja, a failure is held until Transaction Status confirms it and an unknown
/// outcome is asked about; through the simulator they are applied, or flagged, at once.
///
/// `paying`: the gateway this server hands payouts to (`None`: `REMIT_GATEWAY=none`, which hands
/// none to any, and takes results as they are posted, by hand or by a test). A result for a
/// payout not yet handed to it is not applied: nothing was asked of M-Pesa, so it is not
/// M-Pesa's answer. The simulator's is refused (`NotSent`). Daraja's makes the outcome unknown
/// and asks Transaction Status (`AskStatus`), and the payout is not sent: the only way a genuine
/// one comes is a hand-over whose record was lost (a restored backup older than it, a power
/// cut under `REMIT_SYNCHRONOUS=normal`), and a second B2B request could pay twice.
pub fn apply_payout_callback(
    ctx: &WriteCtx<'_>,
    callback: &Callback,
    raw: &[u8],
    float_alert: KesCents,
    paying: Option<Paying>,
) -> Result<CallbackOutcome> {
    let dedupe_key = callback.dedupe_key();
    if let Some(query) = find_query(ctx, callback.conversation.as_deref())? {
        // A status answer names the payment it is about among its parameters too: one that
        // names another of our payouts than the query's is about neither for sure, and
        // settles neither (as a result whose two ids name two payouts). So does a result whose
        // own OriginatorConversationID is a payout's other than the query's (a balance query
        // has none): a payout's result is not read as a balance. An id that is none of ours
        // is no contradiction: for B2B, Daraja may name the payment by an id of its own.
        let names_another = |named: Option<String>| -> Result<bool> {
            let Some(named) = named else { return Ok(false) };
            let other = payouts::find_by_conversation(ctx.conn, Some(&named), None)?;
            Ok(other.is_some_and(|other| query.payout_id.as_ref() != Some(&other)))
        };
        if names_another(callback.parameter_text("OriginatorConversationID"))?
            || names_another(callback.originator.clone())?
        {
            let key = format!("mismatch:{}:{dedupe_key}", crate::crypto::random_hex(8));
            record_event(ctx, WebhookSource::Mpesa, &key, raw)?;
            let outcome = CallbackOutcome::UnknownPayout;
            set_outcome(ctx, WebhookSource::Mpesa, &key, &outcome.to_string())?;
            return Ok(outcome);
        }
        let dedupe_key = callback.answer_dedupe_key();
        if !record_event(ctx, WebhookSource::Mpesa, &dedupe_key, raw)? {
            return Ok(CallbackOutcome::Duplicate);
        }
        ctx.conn.prepare_cached("UPDATE daraja_queries SET change_seq = remit_change_seq(), answered_at = COALESCE(answered_at, ?2) WHERE conversation_id = ?1")?.execute(params![callback.conversation, ctx.at()])?;
        let outcome = match (query.kind.as_str(), query.payout_id) {
            ("transaction_status", Some(payout_id)) => {
                match payouts::apply_status_answer(ctx, &payout_id, &status_answer(callback))? {
                    StatusOutcome::Result(r) => CallbackOutcome::Result(r),
                    StatusOutcome::AskAgain => CallbackOutcome::QueryRefused,
                }
            }
            _ => match account_balances(callback) {
                Ok(balances) => {
                    crate::service::float::record(ctx, &balances, float_alert)?;
                    CallbackOutcome::Balances
                }
                Err(e) => {
                    ctx.warn_after_commit(format!(
                        "an Account Balance result could not be read: {e}"
                    ));
                    CallbackOutcome::QueryRefused
                }
            },
        };
        set_outcome(ctx, WebhookSource::Mpesa, &dedupe_key, &outcome.to_string())?;
        return Ok(outcome);
    }
    let mut payout_id = payouts::find_by_conversation(
        ctx.conn,
        callback.originator.as_deref(),
        callback.conversation.as_deref(),
    )?;
    // A Transaction Status result whose query was not recorded yet (it came back before the
    // acknowledgement was written) names the payment it answers among its parameters; that is
    // read only for a completed payment, and only to ask about that payment again (below).
    let late_status =
        payout_id.is_none() && matches!(status_answer(callback), StatusAnswer::Completed { .. });
    if late_status {
        payout_id = payouts::find_by_conversation(
            ctx.conn,
            callback
                .parameter_text("OriginatorConversationID")
                .as_deref(),
            None,
        )?;
    }
    // Kept for the record under a key of its own, so that a retry that arrives once the payout
    // is known (an early STK result) or sent is still applied.
    let refused = |tag: &str, outcome: CallbackOutcome| -> Result<CallbackOutcome> {
        let key = format!("{tag}:{}:{dedupe_key}", crate::crypto::random_hex(8));
        record_event(ctx, WebhookSource::Mpesa, &key, raw)?;
        set_outcome(ctx, WebhookSource::Mpesa, &key, &outcome.to_string())?;
        Ok(outcome)
    };
    // Our payout's id with a ConversationID that is none of ours (not the one its
    // acknowledgement gave, nor any other payout's or query's): M-Pesa tells of a second
    // conversation under one payout, which may be a second payment. Not applied; the payout is
    // flagged for the operator, whatever its state.
    if let (None, false, Some(originator), Some(conversation)) = (
        &payout_id,
        late_status,
        callback.originator.as_deref(),
        callback.conversation.as_deref(),
    ) {
        let ours = payouts::find_by_conversation(ctx.conn, Some(originator), None)?;
        let elsewhere = payouts::find_by_conversation(ctx.conn, None, Some(conversation))?;
        if let (Some(ours), None) = (ours, elsewhere) {
            // (The conversation id is not in the words: a flag's reason may reach a sender;
            // the callback is kept with the stored events.)
            let reason = format!(
                "{} under this payout's id: it may have been paid twice; check M-Pesa before anything else",
                payouts::SECOND_CONVERSATION
            );
            payouts::flag(ctx, &ours, &reason)?;
            return refused(
                "second-conversation",
                CallbackOutcome::Flagged("a second conversation".into()),
            );
        }
    }
    let Some(payout_id) = payout_id else {
        return refused("unknown", CallbackOutcome::UnknownPayout);
    };
    // A result whose parameters name another of our payouts than its own ids do is about
    // neither for sure, as ids that name two payouts are (and as a status answer naming
    // another payout than its query's, above): applied to none, answered as unknown. (Until
    // 2026-12-07 it was applied to the payout of its own ids.)
    if !late_status {
        if let Some(named) = callback.parameter_text("OriginatorConversationID") {
            let other = payouts::find_by_conversation(ctx.conn, Some(&named), None)?;
            if other.is_some_and(|other| other != payout_id) {
                return refused("two-payouts", CallbackOutcome::UnknownPayout);
            }
        }
    }
    // The payout as the callback finds it: its status, and the gateway it was handed to (none
    // yet: never handed to one).
    let (status, gateway, attempts): (PayoutStatus, Option<String>, i64) = ctx
        .conn
        .prepare_cached("SELECT status, gateway, attempts FROM payouts WHERE id = ?1")?
        .query_row([&payout_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    // Handed to a gateway, but every call of it was judged to have reached nothing (turned
    // away, no token, no connection: such calls count no attempt, and it has no
    // ConversationID, so any is taken): a result for it is not applied, whatever it says (with
    // the path token anyone could post one). Nor is the payout sent again, in case that
    // judgement was wrong (a B2B payment would be paid twice): its outcome is unknown, and
    // Transaction Status, or the operator where the gateway cannot ask, settles it.
    let never_reached = status == PayoutStatus::Queued && gateway.is_some() && attempts == 0;
    // A queued payout handed to a gateway may be on its way (or an attempt whose answer was
    // lost may have paid): a failure applied now would return money the gateway pays out. A
    // failure through Daraja is held until Transaction Status confirms it (below); another
    // gateway's cannot be confirmed, so it is refused until the payout is acknowledged. (One
    // never handed to a gateway, `REMIT_GATEWAY=none`, takes its result as it comes.)
    let not_sent = status == PayoutStatus::Queued
        && matches!(callback.kind, CallbackKind::Failure(_))
        && gateway.as_deref().is_some_and(|g| g != "daraja");
    // Not handed to the gateway yet (the worker claims a payout, and commits it, before any
    // call): whatever the result says, no call made it, and it is refused (a forged success
    // posted with the path token right after an approval paid the request with money that
    // never left, and the real result was then flagged as a conflict). A result of the call
    // still to come is applied then.
    let unclaimed = paying.is_some() && status == PayoutStatus::Queued && gateway.is_none();
    let ask_unclaimed = unclaimed && paying == Some(Paying::Daraja);
    if (unclaimed && !ask_unclaimed) || (not_sent && !late_status && !never_reached) {
        return refused("unsent", CallbackOutcome::NotSent);
    }
    // Every result M-Pesa posts names a ConversationID (its acknowledgement's). A success
    // that names none, for a payout handed to Daraja, is not M-Pesa's, whether the payout's
    // acknowledgement came back or not (a call in flight, an answer lost): anyone holding the
    // path token could post one under a payout's own id (which its sender sees), and it paid
    // the request with money M-Pesa never moved (the real failure after it was only flagged,
    // until 2026-12-07). Not applied: M-Pesa is asked at once, and its answer settles the
    // payout (one that has its result is left as it is, unflagged: the log says it). One whose
    // every call reached nothing, and one Daraja refused at its only call (whose ignored
    // success has an audit line of its own), go the way of any result for them (below). Through
    // the simulator, or with `REMIT_GATEWAY=none`, a result is taken as before.
    if !late_status
        && !never_reached
        && callback.conversation.is_none()
        && gateway.as_deref() == Some("daraja")
        && matches!(callback.kind, CallbackKind::Success(_))
        && !(status == PayoutStatus::Failed
            && payouts::refused_at_its_only_call(ctx.conn, &payout_id)?)
    {
        if !status.has_result() {
            ask_status_now(ctx, &payout_id)?;
        }
        return refused(
            "no-conversation",
            CallbackOutcome::NotMpesas("a success that names no ConversationID"),
        );
    }
    // Read as the payment's own result (a late status answer is read as one, above): a success
    // naming a status other than completed is an unknown outcome, and is kept as such.
    let payment = match late_status {
        true => std::borrow::Cow::Borrowed(callback),
        false => callback.as_payment_result(),
    };
    let dedupe_key = payment.dedupe_key();
    let asked_again = late_status && !status.has_result() && gateway.as_deref() == Some("daraja");
    if asked_again && !(ask_unclaimed || never_reached) {
        // Not applied: this answer names its payment only among its parameters, which anyone
        // holding the path token can write (a made-up ConversationID and a payout's id made
        // a B2B payout paid without the payee checks a result gets). The payout is asked about
        // at once; that query's own answer settles it. Kept under a key of its own, so that
        // the same answer posted again once its query is recorded is still applied. (A
        // gateway that cannot be asked takes the answer as before: with `REMIT_GATEWAY=none`
        // results are taken as posted.)
        ask_status_now(ctx, &payout_id)?;
        return refused("late-status", CallbackOutcome::AskStatus);
    }
    if !record_event(ctx, WebhookSource::Mpesa, &dedupe_key, raw)? {
        return Ok(CallbackOutcome::Duplicate);
    }
    let outcome = if ask_unclaimed || never_reached {
        // Asked where it can be: the gateway it was handed to, else the one this server pays
        // through.
        let asks = ask_unclaimed || gateway.as_deref() == Some("daraja");
        never_reached_result(ctx, &payout_id, asks)?
    } else if late_status {
        match payouts::apply_status_answer(ctx, &payout_id, &status_answer(callback))? {
            StatusOutcome::Result(r) => CallbackOutcome::Result(r),
            StatusOutcome::AskAgain => CallbackOutcome::QueryRefused,
        }
    } else {
        apply_to_payout(ctx, &payout_id, &payment, status, gateway.as_deref())?
    };
    set_outcome(ctx, WebhookSource::Mpesa, &dedupe_key, &outcome.to_string())?;
    Ok(outcome)
}

/// The gateway a server hands its payouts to, as a result callback needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paying {
    /// The built-in simulator.
    Simulator,
    /// Daraja, which can be asked what became of a payment.
    Daraja,
}

/// A result for a payout that, as far as remit knows, never reached M-Pesa (every call judged
/// turned away: `never_reached` above; or never handed to the gateway at all): not applied;
/// its outcome becomes unknown, asked of Transaction Status (Daraja) or flagged.
fn never_reached_result(
    ctx: &WriteCtx<'_>,
    payout_id: &PayoutId,
    asks: bool,
) -> Result<CallbackOutcome> {
    payouts::mark_unknown(
        ctx,
        payout_id,
        "a result came for a payout that, as far as remit knows, never reached M-Pesa: not applied; M-Pesa is asked what became of it",
        if asks {
            payouts::Unknown::Ask
        } else {
            payouts::Unknown::Flag
        },
    )?;
    Ok(if asks {
        CallbackOutcome::AskStatus
    } else {
        CallbackOutcome::Flagged("a result for a payout never sent".into())
    })
}

/// Transaction Status is asked about a payout at once (the worker's next query).
fn ask_status_now(ctx: &WriteCtx<'_>, payout_id: &PayoutId) -> Result<CallbackOutcome> {
    ctx.conn.prepare_cached("UPDATE payouts SET change_seq = remit_change_seq(), status_query_due_at = ?2 WHERE id = ?1 AND status IN ('queued', 'sent')")?.execute(params![payout_id, ctx.at()])?;
    Ok(CallbackOutcome::AskStatus)
}

fn apply_to_payout(
    ctx: &WriteCtx<'_>,
    payout_id: &PayoutId,
    callback: &Callback,
    status: PayoutStatus,
    gateway: Option<&str>,
) -> Result<CallbackOutcome> {
    let actor = Actor::system("mpesa");
    let flagged = |reason: &str, what: &str| -> Result<CallbackOutcome> {
        payouts::flag(ctx, payout_id, reason)?;
        Ok(CallbackOutcome::Flagged(what.to_string()))
    };
    let ask = || ask_status_now(ctx, payout_id);
    // Did it go through a gateway whose failure results must be confirmed and whose unknown
    // outcomes can be asked about (Daraja)?
    let asks = gateway == Some("daraja");
    // A success for a payout Daraja refused at its only call is no one's result: nothing is
    // flagged for it, whatever it names (another payee, a receipt that cannot be one).
    if status == PayoutStatus::Failed
        && matches!(callback.kind, CallbackKind::Success(_))
        && payouts::refused_at_its_only_call(ctx.conn, payout_id)?
    {
        return Ok(CallbackOutcome::Result(payouts::ignore_success(
            ctx, &actor, payout_id,
        )?));
    }
    // A payout that has its result never changes again. A callback that reports no different
    // final outcome (a late queue timeout, an unknown outcome, a success without a receipt for
    // a paid payout) is acknowledged and changes nothing; a different final outcome goes on to
    // `apply_result`, which flags it.
    if status.has_result() {
        let late = match &callback.kind {
            CallbackKind::QueueTimeout => Some("a queue timeout"),
            CallbackKind::Unknown(_) => Some("an unknown outcome"),
            CallbackKind::Success(None) if status == PayoutStatus::Succeeded => {
                Some("a success without a receipt")
            }
            _ => None,
        };
        if let Some(what) = late {
            ctx.info_after_commit(format!(
                "payout {payout_id} is already {status}: {what} for it changes nothing"
            ));
            return Ok(CallbackOutcome::AlreadySettled(what));
        }
    }
    // The STK form answers a Lipa na M-Pesa Online push, which remit never makes: a gateway
    // that sent this payout sent it as B2C or B2B, whose results name the payee checked below.
    // One naming such a payout is not its result, whatever it says (with the path token anyone
    // could post one): not applied; asked about where the gateway can be, else flagged.
    // (A payout that has its result is left to `apply_result`, below: the same receipt is
    // acknowledged, another outcome flagged as a conflict.)
    let open = !status.has_result();
    // Not taken at its word: flagged, and asked about where the gateway can be.
    let doubted = |reason: &str, what: &str| -> Result<CallbackOutcome> {
        if asks {
            payouts::flag(ctx, payout_id, reason)?;
            ask()
        } else {
            flagged(reason, what)
        }
    };
    if callback.stk && gateway.is_some() && open {
        return doubted(payouts::STK_FOR_B2X, "an STK result");
    }
    // A success that names another payee than the payout's is not applied, nor a B2B success
    // naming none that a gateway sent (asked about where it can be). A payout no gateway was
    // handed (`REMIT_GATEWAY=none`) takes its result as posted, in whatever form the operator's
    // own system writes it.
    if let CallbackKind::Success(Some(_)) = &callback.kind {
        let named = payouts::payee_named(
            ctx,
            payout_id,
            &callback.named("BillReferenceNumber"),
            &callback.named("ReceiverPartyPublicName"),
        )?;
        match named {
            Payee::Other(reason) => return flagged(reason, "another payee"),
            Payee::Unnamed if gateway.is_none() || !open => {}
            Payee::Unnamed => return doubted(payouts::NO_PAYEE, "no payee"),
            Payee::Same => {}
        }
    }
    match &callback.kind {
        // Flagged for the operator at once (API.md), and asked about: the answer settles it,
        // and takes the flag down, unless Transaction Status stays silent too.
        CallbackKind::QueueTimeout if asks => {
            payouts::flag(ctx, payout_id, payouts::QUEUE_TIMEOUT_ASKED)?;
            ask()
        }
        CallbackKind::QueueTimeout => flagged(
            "queue timeout at M-Pesa: outcome unknown, money stays reserved",
            "queue timeout",
        ),
        CallbackKind::Unknown(_) if asks => ask(),
        CallbackKind::Unknown(why) => flagged(
            &format!("outcome unknown, money stays reserved: {why}"),
            "outcome unknown",
        ),
        CallbackKind::Success(None) => flagged("success callback without a receipt", "no receipt"),
        // Stored, printed on receipts and kept unique: a text that cannot be one (a space in
        // it, a page of it) makes the outcome unknown rather than a payment (and is not kept
        // on the payout).
        CallbackKind::Success(Some(receipt))
            if !crate::wire::daraja::plausible_receipt(receipt) =>
        {
            if asks && open {
                ask()
            } else {
                flagged(
                    &format!(
                        "a success whose receipt ({} characters) is not an M-Pesa receipt (letters and digits): outcome unknown, money stays reserved",
                        receipt.chars().count()
                    ),
                    "receipt not a receipt",
                )
            }
        }
        CallbackKind::Success(Some(receipt)) => {
            let result = PayoutResult::Succeeded {
                receipt: receipt.clone(),
            };
            let applied = payouts::apply_result(
                ctx,
                &actor,
                payout_id,
                &result,
                Reported::Amount(callback.amount),
            )?;
            if applied == ResultOutcome::Applied {
                payouts::record_result_desc(ctx, payout_id, &callback.desc)?;
            }
            // Also M-Pesa's own result after an admin resolved the payout as paid with its
            // receipt: it names the payee, which the admin's resolve did not.
            if matches!(
                applied,
                ResultOutcome::Applied | ResultOutcome::AlreadyApplied
            ) {
                payouts::record_payee_name(
                    ctx,
                    payout_id,
                    &callback.named("ReceiverPartyPublicName"),
                )?;
            }
            Ok(CallbackOutcome::Result(applied))
        }
        CallbackKind::Failure(code) if asks => {
            if status.has_result() {
                // A failure for a payout that has its result: flagged as any conflicting
                // result is, never applied.
                let result = PayoutResult::Failed {
                    code: code.clone(),
                    desc: callback.desc.clone(),
                };
                let applied =
                    payouts::apply_result(ctx, &actor, payout_id, &result, Reported::NotCarried)?;
                return Ok(CallbackOutcome::Result(applied));
            }
            payouts::hold_failure(ctx, payout_id, code, &callback.desc)?;
            Ok(CallbackOutcome::FailureHeld)
        }
        CallbackKind::Failure(code) => {
            let result = PayoutResult::Failed {
                code: code.clone(),
                desc: callback.desc.clone(),
            };
            let applied =
                payouts::apply_result(ctx, &actor, payout_id, &result, Reported::NotCarried)?;
            Ok(CallbackOutcome::Result(applied))
        }
    }
}
