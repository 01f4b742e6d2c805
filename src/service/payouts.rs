//! Payouts: taken from the queue by the worker, sent to the gateway, and completed by their
//! result (from M-Pesa, or from an admin for a stuck one). Applying a result is idempotent: a
//! payout that has its result never changes again, and a conflicting second result is flagged,
//! never applied.

use super::views::{self, PaymentRequestView, PayoutView};
use super::{Actor, Page};
use crate::crypto::EncryptedColumn;
use crate::domain::{
    CategoryId, EscrowId, EscrowStatus, EventType, MerchantAccount, PaymentRequestId,
    PayoutCommand, PayoutId, PayoutStatus, RequestStatus,
};
use crate::error::{Error, Result};
use crate::ledger;
use crate::money::{KesCents, UsdCents};
use crate::store::WriteCtx;
use rusqlite::{named_params, params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::json;

/// The audit actor of the payout worker.
const WORKER: &str = "system:payouts";

/// A payout as the worker needs it to call the gateway.
#[derive(Debug, Clone)]
pub struct PayoutJob {
    /// `po_…`.
    pub id: PayoutId,
    /// B2C or B2B.
    pub command: PayoutCommand,
    /// Whole KES are sent.
    pub amount: KesCents,
    /// Where the money goes (decrypted).
    pub account: MerchantAccount,
    /// Attempts so far.
    pub attempts: i64,
}

impl PayoutJob {
    /// Our id at Daraja; reused on every retry so that a duplicate is refused, never paid.
    pub fn originator_conversation_id(&self) -> &str {
        self.id.originator_conversation_id()
    }
}

/// SQL, true when the payout `$p` (its table's name or alias) is held with its escrow: the
/// escrow flagged because a card deposit of it was refunded or disputed at Stripe, until an
/// admin clears the flag. What the worker skips (`next_due`, `claim`), the views say
/// (`payout.held`) and `/metrics` counts apart, defined once.
macro_rules! held_with_escrow {
    ($p:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM escrows he WHERE he.id = ",
            $p,
            ".escrow_id AND he.flag_reason IS NOT NULL)"
        )
    };
}
pub(crate) use held_with_escrow;

/// SQL, true when the escrow `$e` (an expression naming its id) has a failed payout flagged for
/// the operator (M-Pesa reported it paid after all): its money is held until an admin resolves
/// it. What an approval and a cancel refuse (`refuse_if_held`) and the escrow's view says
/// (`held`), defined once; the few flagged payouts are found by their index.
macro_rules! failed_payout_flagged {
    ($e:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM payouts WHERE flagged = 1 AND +status = 'failed' AND escrow_id = ",
            $e,
            ")"
        )
    };
}
pub(crate) use failed_payout_flagged;

/// What the payout worker finds next in the queue.
#[derive(Debug)]
pub enum Due {
    /// A payout to send.
    Job(PayoutJob),
    /// A payout whose merchant account does not open under the key, or is not an account once
    /// opened (a damaged byte, or an edit of the file): flagged for the operator
    /// (`UNREADABLE_ACCOUNT`) so that the payouts after it are sent. It stopped every one of
    /// them: the worker read the same payout first, and failed, for ever.
    Unreadable(PayoutId),
}

/// The flag of a payout whose merchant account could not be read (`Due::Unreadable`).
pub const UNREADABLE_ACCOUNT: &str = "its merchant account does not open under the key (damaged, or the file was edited): nothing was sent; run remit check, then resolve it as failed to return the money";

/// The oldest queued payout whose next attempt is due, if any. One whose failure waits for
/// Transaction Status to confirm it (`hold_failure`) is not sent again meanwhile: the answer
/// could be of either call, and a failure confirmed returns the money a second call may pay.
pub fn next_due(conn: &Connection, keys: &crate::crypto::Keys, now: i64) -> Result<Option<Due>> {
    let row: Option<(PayoutId, PayoutCommand, KesCents, PaymentRequestId, String, i64)> = conn
        .prepare_cached(concat!(
            "SELECT p.id, p.command, p.amount_kes_cents, r.id AS request_id, r.merchant_account_enc, p.attempts
             FROM payouts p JOIN payment_requests r ON r.id = p.payment_request_id
             WHERE p.status = ?2 AND p.flagged = 0 AND p.failure_to_confirm_code IS NULL AND p.next_attempt_at <= ?1 AND NOT ",
            held_with_escrow!("p"),
            " ORDER BY p.id LIMIT 1"
        ))?
        .query_row(params![crate::time::rfc3339(now), PayoutStatus::Queued], |r| {
            Ok((
                r.get("id")?,
                r.get("command")?,
                r.get("amount_kes_cents")?,
                r.get("request_id")?,
                r.get("merchant_account_enc")?,
                r.get("attempts")?,
            ))
        })
        .optional()?;
    let Some((id, command, amount, request_id, account_enc, attempts)) = row else {
        return Ok(None);
    };
    Ok(Some(match account_of(keys, &request_id, &account_enc) {
        Ok(account) => Due::Job(PayoutJob {
            id,
            command,
            amount,
            account,
            attempts,
        }),
        Err(_) => Due::Unreadable(id),
    }))
}

/// Payouts `gateway` accepted (sent, with its `ConversationID`) whose result never came and
/// which nobody has flagged, oldest first, at most `limit`: what a gateway that cannot be asked
/// (the simulator, whose results are posted by threads that end with the process) still owes
/// after a restart.
pub fn unanswered(
    conn: &Connection,
    keys: &crate::crypto::Keys,
    gateway: &str,
    limit: u32,
) -> Result<Vec<(PayoutJob, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT p.id, p.command, p.amount_kes_cents, r.id AS request_id, r.merchant_account_enc, p.attempts,
                p.conversation_id
         FROM payouts p JOIN payment_requests r ON r.id = p.payment_request_id
         WHERE p.status = ?1 AND p.gateway = ?2 AND p.flagged = 0 AND p.conversation_id IS NOT NULL
         ORDER BY p.id LIMIT ?3",
    )?;
    let rows = stmt
        .query_map(params![PayoutStatus::Sent, gateway, limit], |r| {
            Ok((
                r.get::<_, PayoutId>("id")?,
                r.get::<_, PayoutCommand>("command")?,
                r.get::<_, KesCents>("amount_kes_cents")?,
                r.get::<_, PaymentRequestId>("request_id")?,
                r.get::<_, String>("merchant_account_enc")?,
                r.get::<_, i64>("attempts")?,
                r.get::<_, String>("conversation_id")?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    // A row that cannot be read is left to the operator (it stays stuck, and is listed so);
    // the others are still owed their results.
    Ok(rows
        .into_iter()
        .filter_map(
            |(id, command, amount, request_id, account_enc, attempts, conversation)| {
                match account_of(keys, &request_id, &account_enc) {
                    Ok(account) => Some((
                        PayoutJob {
                            id,
                            command,
                            amount,
                            account,
                            attempts,
                        },
                        conversation,
                    )),
                    Err(e) => {
                        log::error!("payout {id}: its account cannot be read ({}); its result is left to an admin", e.logged());
                        None
                    }
                }
            },
        )
        .collect())
}

/// The merchant account of a payout's request, opened (`account_enc`, as stored).
fn account_of(
    keys: &crate::crypto::Keys,
    request_id: &PaymentRequestId,
    account_enc: &str,
) -> Result<MerchantAccount> {
    keys.open(
        crate::crypto::EncryptedColumn::MerchantAccount,
        request_id.as_str(),
        account_enc,
    )
    .and_then(|stored| MerchantAccount::from_stored(&stored))
}

/// Claims a queued payout for one call to `gateway`: counts the attempt and moves its next
/// attempt to `retry_at` *before* the call, so that nothing (a failed write afterwards, a crash)
/// can make the worker call again at once. A later attempt reuses the same
/// `OriginatorConversationID`, which Daraja refuses as a duplicate rather than paying twice.
/// Returns false when the payout is no longer queued and due, or its escrow is flagged (a card
/// deposit of it refunded or disputed at Stripe: a payout queued before that waits with the
/// escrow's other money until an admin clears the flag, `refuse_if_held`).
pub fn claim(
    ctx: &WriteCtx<'_>,
    payout_id: &PayoutId,
    retry_at: i64,
    gateway: &str,
) -> Result<bool> {
    let claimed = ctx
        .conn
        .prepare_cached(concat!(
            "UPDATE payouts SET change_seq = remit_change_seq(), attempts = attempts + 1, next_attempt_at = :retry_at, gateway = :gateway,
             updated_at = :at
             WHERE id = :id AND status = :queued AND flagged = 0 AND failure_to_confirm_code IS NULL
             AND next_attempt_at <= :at AND NOT ",
            held_with_escrow!("payouts")
        ))?
        .execute(named_params! {
            ":id": payout_id, ":retry_at": crate::time::rfc3339(retry_at), ":at": ctx.at(),
            ":queued": PayoutStatus::Queued, ":gateway": gateway,
        })?;
    Ok(claimed == 1)
}

/// Would the payout still be sent: `queued` (no result has settled it), not flagged, its
/// escrow not held (what `claim` asks, but the due time)? Asked by a gateway before it calls
/// M-Pesa a second time within one send (`Gateway::send`'s `still_due`).
pub fn still_queued(conn: &Connection, payout_id: &PayoutId) -> Result<bool> {
    Ok(conn
        .prepare_cached(concat!(
            "SELECT p.status = ?2 AND p.flagged = 0 AND p.failure_to_confirm_code IS NULL AND NOT ",
            held_with_escrow!("p"),
            " FROM payouts p WHERE p.id = ?1"
        ))?
        .query_row(params![payout_id, PayoutStatus::Queued], |r| r.get(0))
        .optional()?
        .unwrap_or(false))
}

/// The gateway accepted the payout: record its `ConversationID` (if it gave one), and, with a
/// gateway that can ask, when to ask what became of it if no result has come
/// (`status_after_s`; a query already due sooner, for a failure that came before this answer,
/// stays due). A result that already completed it (a fast callback) is left alone.
pub fn mark_sent(
    ctx: &WriteCtx<'_>,
    payout_id: &PayoutId,
    conversation_id: Option<&str>,
    status_after_s: Option<i64>,
) -> Result<()> {
    let query_at = status_after_s.map(|s| crate::time::rfc3339(ctx.now + s));
    // A ConversationID another payout already holds: M-Pesa took the call (it is never sent
    // again), but its id would name two payouts, and a result under it could settle either.
    // The payout is recorded as sent without it, flagged, and results find it by its own id.
    let taken: bool = match conversation_id {
        Some(conversation) => ctx
            .conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM payouts WHERE conversation_id = ?1 AND id <> ?2)",
            )?
            .query_row(params![conversation, payout_id], |r| r.get(0))?,
        None => false,
    };
    let conversation_id = conversation_id.filter(|_| !taken);
    ctx.conn
        .prepare_cached(
            "UPDATE payouts SET change_seq = remit_change_seq(), conversation_id = COALESCE(conversation_id, :conversation),
         status = CASE status WHEN :queued THEN :sent ELSE status END,
         sent_at = COALESCE(sent_at, :at), next_attempt_at = NULL,
         status_query_due_at = CASE WHEN status IN (:queued, :sent) AND :query_at IS NOT NULL
             THEN MIN(COALESCE(status_query_due_at, :query_at), :query_at) END,
         updated_at = :at WHERE id = :id",
        )?
        .execute(named_params! {
            ":id": payout_id, ":conversation": conversation_id, ":at": ctx.at(),
            ":queued": PayoutStatus::Queued, ":sent": PayoutStatus::Sent, ":query_at": query_at,
        })?;
    ctx.audit(
        WORKER,
        "payout.sent",
        payout_id.as_str(),
        &json!({"conversationId": conversation_id}),
    )?;
    if taken {
        flag(
            ctx,
            payout_id,
            "M-Pesa acknowledged it with another payout's ConversationID: it was not sent again; check it at M-Pesa",
        )?;
    }
    Ok(())
}

/// Whether what became of a payout can be asked (the gateway has Transaction Status).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Unknown {
    /// Ask at once.
    Ask,
    /// Leave it flagged for the operator.
    Flag,
}

/// The outcome of a payout is not known (M-Pesa reports it was submitted before, or it could
/// not be reached time after time): it counts as sent, and it is asked about at once, or
/// flagged for the operator when the gateway cannot ask. Never sent again under a new id.
pub fn mark_unknown(
    ctx: &WriteCtx<'_>,
    payout_id: &PayoutId,
    reason: &str,
    then: Unknown,
) -> Result<()> {
    match then {
        Unknown::Ask => {
            mark_sent(ctx, payout_id, None, Some(0))?;
            ctx.audit(
                WORKER,
                "payout.outcome_unknown",
                payout_id.as_str(),
                &json!({"reason": reason}),
            )
        }
        Unknown::Flag => {
            mark_sent(ctx, payout_id, None, None)?;
            flag(ctx, payout_id, reason)
        }
    }
}

/// A transport error on a claimed payout: keep the error; after `PAYOUT_ATTEMPTS_MAX` attempts
/// its outcome is unknown (asked about, or flagged for the operator): it is never silently
/// failed.
pub fn mark_retry(
    ctx: &WriteCtx<'_>,
    payout_id: &PayoutId,
    error: &str,
    not_before: i64,
    then: Unknown,
) -> Result<()> {
    // A result may have completed the payout meanwhile: then there is nothing to record. The
    // next attempt is not before `not_before` (the wait counted from the failure, not from the
    // claim, which set it before the call).
    let attempts: Option<i64> = ctx
        .conn
        .prepare_cached("UPDATE payouts SET change_seq = remit_change_seq(), result_desc = :error, updated_at = :at,
             next_attempt_at = MAX(COALESCE(next_attempt_at, :not_before), :not_before)
             WHERE id = :id AND status = :queued
             RETURNING attempts")?.query_row(named_params! {
                ":id": payout_id, ":error": error, ":at": ctx.at(), ":queued": PayoutStatus::Queued,
                ":not_before": crate::time::rfc3339(not_before),
            },
            |r| r.get(0))
        .optional()?;
    let Some(attempts) = attempts else {
        return Ok(());
    };
    if attempts >= crate::limits::PAYOUT_ATTEMPTS_MAX {
        mark_unknown(
            ctx,
            payout_id,
            &format!("gateway unreachable after {attempts} attempts: {error}"),
            then,
        )?;
    }
    Ok(())
}

/// The reason a payout is flagged when M-Pesa tells of a second conversation under its id (a
/// second payment, maybe) begins so. This flag, and the one of a result naming another payee
/// (`OTHER_PAYEE`), are kept: the result that settles the payout does not clear them, a later
/// flag is added to them rather than put in their place, and no failure from M-Pesa returns the
/// money of such a payout (an admin resolves it, after checking M-Pesa). SQL tells them by
/// `flag_reason LIKE :kept || '%' OR flag_reason LIKE :kept_payee || '%'`, given these two.
pub const SECOND_CONVERSATION: &str = "M-Pesa reported a result of another conversation";
/// The beginning of the other kept flag's reasons (`payee_named`'s `Payee::Other`).
const OTHER_PAYEE: &str = "M-Pesa's result names another";

/// The flag of a payout an STK result named (`webhooks::apply_to_payout`).
pub const STK_FOR_B2X: &str = "an STK (Lipa na M-Pesa Online) result named this payout, which was sent as B2C or B2B: not applied, money stays reserved; check M-Pesa";
/// The flag of a B2B success that names no payee remit can compare (`webhooks::apply_to_payout`).
pub const NO_PAYEE: &str = "M-Pesa's B2B success names no payee remit can compare (neither the bill account nor the PayBill or Till number): not applied, money stays reserved; check M-Pesa";

/// The flag of a payout paid by a success that came while its only call was on its way, a call
/// that then reached nothing (`mark_not_sent`). Kept, as `SECOND_CONVERSATION`'s is: a later
/// flag (M-Pesa's retry, another post) is added to it, never put in its place.
pub const SUCCESS_UNSENT: &str = "M-Pesa's success came while remit's only call of this payout was on its way, and that call then reached nothing (turned away before processing): no payment of it can have been made, so the success may be forged; check M-Pesa";

/// Past this many characters a payout's flag reason is cut in its middle when a flag is added
/// (`flag`).
const FLAG_REASON_CHARS_MAX: i64 = 2_000;

/// Is this flag reason one that is kept?
fn kept(reason: &str) -> bool {
    reason.starts_with(SECOND_CONVERSATION)
        || reason.starts_with(OTHER_PAYEE)
        || reason.starts_with(SUCCESS_UNSENT)
}

/// Whom a success says it paid, against the payout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payee {
    /// The payout's payee, or a B2C result naming no phone (or one masked past telling).
    Same,
    /// Another payee: the reason not to apply it, in words that hold no account number or phone.
    Other(&'static str),
    /// A B2B success that names neither a bill account nor a PayBill or Till that could be
    /// compared with what remit sent.
    Unnamed,
}

/// Does a success name another payee than the one remit sent the payout to? M-Pesa's B2B
/// result names the bill account it paid (`BillReferenceNumber`) and the payee
/// (`ReceiverPartyPublicName`, `"888880 - KENYA POWER"`), a B2C result the phone it paid
/// (`"254712345678 - JANE WANJIKU"`); any of them naming another (a result of another payment,
/// or a forged one) is a reason, in words that hold no account number or phone (the reason is
/// kept unencrypted), not to apply it. A B2B success must name its payee: one of the two
/// compared and the same (`Unnamed` otherwise: a name without its number, or a bill account for
/// a Till paid without one, says nothing); a B2C result naming no phone passes, and so does a
/// phone masked past telling (only the digits it shows are compared). Each value the result
/// gives is compared (`Callback::named`): one naming another payee is enough.
pub fn payee_named(
    ctx: &WriteCtx<'_>,
    payout_id: &PayoutId,
    bill_references: &[String],
    payees: &[String],
) -> Result<Payee> {
    let (command, request_id, account_enc): (PayoutCommand, PaymentRequestId, String) = ctx
        .conn
        .prepare_cached(
            "SELECT p.command, r.id, r.merchant_account_enc FROM payouts p
             JOIN payment_requests r ON r.id = p.payment_request_id WHERE p.id = ?1",
        )?
        .query_row([payout_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    if command == PayoutCommand::B2c && payees.is_empty() {
        return Ok(Payee::Same);
    }
    let account = ctx
        .keys
        .open(
            crate::crypto::EncryptedColumn::MerchantAccount,
            request_id.as_str(),
            &account_enc,
        )
        .and_then(|stored| MerchantAccount::from_stored(&stored))?;
    if command == PayoutCommand::B2c {
        let sent = account.number();
        return Ok(match payees.iter().any(|payee| names_another_phone(payee, &sent)) {
            true => Payee::Other(
                "M-Pesa's result names another phone than the one remit paid: not applied, money stays reserved; check M-Pesa",
            ),
            false => Payee::Same,
        });
    }
    // A number-valued reference loses its leading zeros on the way: digits compare as numbers.
    let same = |named: &str, sent: &str| {
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        match digits(named) && digits(sent) {
            true => named.trim_start_matches('0') == sent.trim_start_matches('0'),
            false => named.eq_ignore_ascii_case(sent),
        }
    };
    let mut compared = false;
    let sent_reference = account.account_reference().map(str::trim);
    for named in bill_references.iter().map(|b| b.trim()) {
        let Some(sent) = sent_reference else { break };
        if !same(named, sent) {
            return Ok(Payee::Other(
                "M-Pesa's result names another bill account than the one remit sent: not applied, money stays reserved; check M-Pesa",
            ));
        }
        compared = true;
    }
    // "888880 - KENYA POWER" (or Daraja's sample's "000000– Biller"): the number before the
    // dash, when it is one.
    let named_numbers = payees
        .iter()
        .filter_map(|p| p.split(['-', '\u{2013}']).next())
        .map(str::trim)
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    for number in named_numbers {
        if number != account.number() {
            return Ok(Payee::Other(
                "M-Pesa's result names another PayBill or Till than the one remit sent: not applied, money stays reserved; check M-Pesa",
            ));
        }
        compared = true;
    }
    Ok(if compared {
        Payee::Same
    } else {
        Payee::Unnamed
    })
}

/// Does `payee` (a B2C result's `ReceiverPartyPublicName`: a phone, `254712345678`,
/// `0712345678`, `712345678` or `+254…`, any of them masked with `*` where M-Pesa hides digits,
/// then a space or a dash and the name) name another phone than `sent` (E.164,
/// `+254712345678`)? Only when it surely does: the phone is read in Daraja's form (12
/// characters; a national one only when its first digit shows a mobile's 7 or 1) and each digit
/// it shows is compared in its place. Text that is no phone, or a phone of another length,
/// cannot tell (a payout held for a result M-Pesa wrote otherwise would wait for an admin though
/// it was paid); a 12-digit number of another country (`255…`) is another phone.
fn names_another_phone(payee: &str, sent: &str) -> bool {
    let sent = sent.trim_start_matches('+');
    let payee = payee.trim();
    let payee = payee.strip_prefix('+').unwrap_or(payee);
    // The phone's digits, in groups a single space apart as people write them (`254 799 999
    // 999`), until 12 of them. A group joins only when it is digits alone (up to a space, a
    // dash or the end): `0712345678 3M KENYA` is the phone and then a name.
    let digit = |c: char| c.is_ascii_digit() || c == '*';
    let ends_group = |c: Option<char>| {
        c.is_none_or(|c| c.is_whitespace() || matches!(c, '-' | '\u{2013}' | '\u{2014}'))
    };
    let mut named = String::new();
    let mut rest = payee;
    while let Some(c) = rest.chars().next() {
        if digit(c) {
            named.push(c);
        } else {
            let group = &rest[1..];
            let len = group.find(|c: char| !digit(c)).unwrap_or(group.len());
            let joins = c == ' '
                && !named.is_empty()
                && named.len() < 12
                && len > 0
                && ends_group(group[len..].chars().next());
            if !joins {
                break;
            }
        }
        rest = &rest[c.len_utf8()..];
    }
    let named = named.as_str();
    let ends_there = rest
        .chars()
        .next()
        .is_none_or(|c| c.is_whitespace() || matches!(c, '-' | '\u{2013}' | '\u{2014}'));
    if named.is_empty() || !ends_there {
        return false;
    }
    let mobile = |national: &str| national.starts_with(['7', '1']);
    let named = match named.len() {
        12 => named.to_string(),
        10 if named.starts_with('0') && mobile(&named[1..]) => format!("254{}", &named[1..]),
        9 if mobile(named) => format!("254{named}"),
        _ => return false,
    };
    named.len() == sent.len()
        && named
            .bytes()
            .zip(sent.bytes())
            .any(|(n, s)| n != b'*' && n != s)
}

/// A call that provably reached nothing (no access token, no connection, turned away before
/// processing): the attempt is not counted (attempts count calls that may have reached M-Pesa,
/// `PAYOUT_ATTEMPTS_MAX` of which make the outcome unknown), the error is kept, and the payout
/// is sent again `retry_s` from now. A success applied while this call was on its way (a
/// result may come before its call's answer) cannot be this payout's when this call was the
/// only one that might have reached M-Pesa: the payout is flagged.
pub fn mark_not_sent(
    ctx: &WriteCtx<'_>,
    payout_id: &PayoutId,
    error: &str,
    retry_s: i64,
) -> Result<()> {
    let changed = ctx
        .conn
        .prepare_cached(
            "UPDATE payouts SET change_seq = remit_change_seq(), attempts = MAX(attempts - 1, 0), result_desc = :error,
             next_attempt_at = :next, updated_at = :at WHERE id = :id AND status = :queued",
        )?
        .execute(named_params! {
            ":id": payout_id, ":error": error, ":at": ctx.at(),
            ":next": crate::time::rfc3339(ctx.now + retry_s), ":queued": PayoutStatus::Queued,
        })?;
    if changed == 0 {
        // The claim of this call counted its attempt: one means no other call was counted.
        let paid_unsent = ctx
            .conn
            .prepare_cached(
                "SELECT status = :succeeded AND attempts = 1 FROM payouts WHERE id = :id",
            )?
            .query_row(
                named_params! {":id": payout_id, ":succeeded": PayoutStatus::Succeeded},
                |r| r.get::<_, bool>(0),
            )
            .optional()?
            .unwrap_or(false);
        if paid_unsent {
            flag(ctx, payout_id, SUCCESS_UNSENT)?;
        }
    }
    Ok(())
}

/// The next payout whose Transaction Status query is due.
pub fn next_status_query(conn: &Connection, now: i64) -> Result<Option<PayoutId>> {
    Ok(conn
        .prepare_cached(NEXT_STATUS_QUERY)?
        .query_row([crate::time::rfc3339(now)], |r| r.get(0))
        .optional()?)
}

/// `next_status_query`'s: from the index of due times, which holds only the payouts in flight
/// (a payout's due time is cleared with its outcome). `+` keeps the planner off the index of
/// statuses, by which it read and sorted every payout in flight at each turn of the worker
/// (10 ms at 15,000; an outage of M-Pesa leaves hundreds of thousands).
const NEXT_STATUS_QUERY: &str =
    "SELECT id FROM payouts WHERE status_query_due_at <= ?1 AND +status IN ('queued', 'sent')
     ORDER BY status_query_due_at LIMIT 1";

/// A Transaction Status query of a payout was sent (`conversation_id`: its acknowledgement's,
/// which its result will carry) or could not be: it is asked again `again_after_s` from now
/// unless its result comes first. Every query counts towards the next one's backoff, answered
/// or not: a Daraja that refuses or drops every query (an outage, spike arrest) is asked less
/// and less often, not every `REMIT_PAYOUT_STATUS_AFTER_S` for as long as it lasts.
pub fn status_query_sent(
    ctx: &WriteCtx<'_>,
    payout_id: &PayoutId,
    conversation_id: Option<&str>,
    again_after_s: i64,
) -> Result<()> {
    if let Some(conversation_id) = conversation_id {
        ctx.conn
            .prepare_cached(
                "INSERT OR IGNORE INTO daraja_queries (conversation_id, kind, payout_id, sent_at, change_seq)
                 VALUES (?1, 'transaction_status', ?2, ?3, remit_change_seq())",
            )?
            .execute(params![conversation_id, payout_id, ctx.at()])?;
        ctx.audit(
            WORKER,
            "payout.status_asked",
            payout_id.as_str(),
            &json!({"conversationId": conversation_id}),
        )?;
    }
    ctx.conn
        .prepare_cached(
            "UPDATE payouts SET change_seq = remit_change_seq(), status_queries = status_queries + 1, status_query_due_at = ?2
             WHERE id = ?1 AND status IN ('queued', 'sent')",
        )?
        .execute(params![
            payout_id,
            crate::time::rfc3339(ctx.now + again_after_s)
        ])?;
    Ok(())
}

/// A failure result for a payout sent through a gateway whose results carry no signature: it
/// is applied only once Transaction Status confirms it (a forged failure would return money
/// that was paid). Asked about at once. A payout still `queued` (the failure came while its
/// call was on its way, or after that call lost its answer) counts as sent from now: it is
/// not sent again while its failure waits, so its outcome is unknown until an answer settles
/// it, and it is stuck for the operator `REMIT_PAYOUT_TIMEOUT_S` after, as any sent payout
/// without a result. (It stayed `queued`, never sent and never stuck: when Transaction Status
/// never answered, nobody could resolve it.) The answer of a call still on its way records
/// its ConversationID as usual.
pub fn hold_failure(
    ctx: &WriteCtx<'_>,
    payout_id: &PayoutId,
    code: &str,
    desc: &str,
) -> Result<()> {
    ctx.conn
        .prepare_cached(
            "UPDATE payouts SET change_seq = remit_change_seq(), failure_to_confirm_code = ?2, failure_to_confirm_desc = ?3,
         status = 'sent', sent_at = COALESCE(sent_at, ?4), next_attempt_at = NULL,
         status_query_due_at = ?4, updated_at = ?4 WHERE id = ?1 AND status IN ('queued', 'sent')",
        )?
        .execute(params![payout_id, code, desc, ctx.at()])?;
    ctx.audit(
        "system:mpesa",
        "payout.failure_held",
        payout_id.as_str(),
        &json!({"resultCode": code}),
    )
}

/// The payouts a server before 2026-12-06 left `queued` with a failure held (`hold_failure`
/// did not mark them sent): never sent again, never stuck, they could wait for ever. They count
/// as sent now, each audited as an outcome not known; once, at the payout worker's start (the
/// queued payouts are walked by their status, a walk no sweep makes). Returns how many.
pub fn held_failures_count_as_sent(ctx: &WriteCtx<'_>) -> Result<usize> {
    let ids = ctx
        .conn
        .prepare_cached(
            "UPDATE payouts SET change_seq = remit_change_seq(), status = 'sent', sent_at = COALESCE(sent_at, updated_at),
             next_attempt_at = NULL WHERE status = 'queued' AND failure_to_confirm_code IS NOT NULL RETURNING id",
        )?
        .query_map([], |r| r.get::<_, PayoutId>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for id in &ids {
        ctx.audit(
            WORKER,
            "payout.outcome_unknown",
            id.as_str(),
            &json!({"reason": "a failure held for Transaction Status on a payout left queued: it counts as sent, its outcome not known until M-Pesa answers"}),
        )?;
    }
    Ok(ids.len())
}

/// What a Transaction Status answer did to its payout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusOutcome {
    /// The answer resolved the payout (or it already had this result).
    Result(ResultOutcome),
    /// The query was refused; it is asked again later.
    AskAgain,
}

/// Applies a Transaction Status answer: `Completed` → succeeded with its receipt (a held
/// failure was contradicted: audited); another status → failed with the held failure's code
/// (or the status), money back; a refused query → nothing (it is asked again).
pub fn apply_status_answer(
    ctx: &WriteCtx<'_>,
    payout_id: &PayoutId,
    answer: &crate::wire::daraja::results::StatusAnswer,
) -> Result<StatusOutcome> {
    use crate::wire::daraja::results::StatusAnswer;
    let actor = Actor::system("mpesa");
    let held: Option<(Option<String>, Option<String>)> = ctx
        .conn
        .prepare_cached(
            "SELECT failure_to_confirm_code, failure_to_confirm_desc FROM payouts WHERE id = ?1",
        )?
        .query_row([payout_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (held_code, held_desc) = held.unwrap_or((None, None));
    let outcome = match answer {
        StatusAnswer::Completed {
            receipt,
            amount,
            payee,
        } => {
            let result = PayoutResult::Succeeded {
                receipt: receipt.clone(),
            };
            // (A failure held meanwhile is said contradicted by `apply_result`.)
            let outcome = apply_result(ctx, &actor, payout_id, &result, Reported::Amount(*amount))?;
            if matches!(
                outcome,
                ResultOutcome::Applied | ResultOutcome::AlreadyApplied
            ) {
                record_payee_name(ctx, payout_id, payee.as_slice())?;
            }
            outcome
        }
        StatusAnswer::NotCompleted { status } => {
            let result = PayoutResult::Failed {
                code: held_code.unwrap_or_else(|| "status".into()),
                desc: held_desc.unwrap_or_else(|| format!("Transaction Status: {status}")),
            };
            apply_result(ctx, &actor, payout_id, &result, Reported::NotCarried)?
        }
        // It says nothing of the payment (M-Pesa refused the query, does not know the
        // transaction, whose meaning is not confirmed, or has not finished it), so nothing is
        // applied, nothing flagged, and it is asked again; but what M-Pesa answered is kept as
        // the payout's last word (`resultDesc`) while it has no result, for the operator who
        // finds it stuck (it was asked about without end, with no reason given).
        StatusAnswer::QueryFailed { code, desc } => {
            let said = format!(
                "Transaction Status answered {code} ({}): asked again",
                desc.chars().take(120).collect::<String>()
            );
            ctx.conn
                .prepare_cached(
                    "UPDATE payouts SET change_seq = remit_change_seq(), result_desc = ?2
                     WHERE id = ?1 AND status IN ('queued', 'sent') AND result_desc IS NOT ?2",
                )?
                .execute(params![payout_id, said])?;
            return Ok(StatusOutcome::AskAgain);
        }
    };
    Ok(StatusOutcome::Result(outcome))
}

/// Flags a payout for the operator without touching its money. A flag still on is not put
/// out by a later one: the reason grows by `; then: ` and the new one (unless it already says
/// it), so that a result naming the wrong amount is still on the payout after M-Pesa's queue
/// timeout. A kept reason (`kept`) always leads, as the rules that keep it read it: one that
/// comes after another flag goes first, `; earlier: ` and the rest after it. Past
/// `FLAG_REASON_CHARS_MAX` the middle is cut (`…`): the first reason and the newest stay, and
/// the audit log has a `payout.flagged` line for every flag.
pub fn flag(ctx: &WriteCtx<'_>, payout_id: &PayoutId, reason: &str) -> Result<()> {
    ctx.conn
        .prepare_cached(
            "UPDATE payouts SET change_seq = remit_change_seq(), flagged = 1,
             flag_reason = CASE
                 WHEN flag_reason IS NULL OR (flagged = 0 AND NOT (flag_reason LIKE :second || '%'
                     OR flag_reason LIKE :payee || '%' OR flag_reason LIKE :unsent || '%'))
                 THEN :reason
                 WHEN instr(flag_reason, :reason) > 0 THEN flag_reason
                 WHEN :reason_kept AND NOT (flag_reason LIKE :second || '%'
                     OR flag_reason LIKE :payee || '%' OR flag_reason LIKE :unsent || '%')
                 THEN :reason || '; earlier: ' || substr(flag_reason, 1, :max)
                 WHEN length(flag_reason) > :max
                 THEN substr(flag_reason, 1, :max / 2) || ' …; then: ' || :reason
                 ELSE flag_reason || '; then: ' || :reason END,
             updated_at = :at WHERE id = :id",
        )?
        .execute(named_params! {
            ":id": payout_id,
            ":reason": reason,
            ":reason_kept": kept(reason),
            ":at": ctx.at(),
            ":second": SECOND_CONVERSATION,
            ":payee": OTHER_PAYEE,
            ":unsent": SUCCESS_UNSENT,
            ":max": FLAG_REASON_CHARS_MAX,
        })?;
    ctx.warn_after_commit(format!("payout {payout_id} flagged: {reason}"));
    ctx.audit(
        WORKER,
        "payout.flagged",
        payout_id.as_str(),
        &json!({"reason": reason}),
    )?;
    // A flagged payout without a result is stuck from now on (`STUCK`; the cutoff does not
    // matter to a flagged one).
    emit_stuck(ctx, Some(payout_id), &ctx.at(), 1).map(|_| ())
}

/// The result code of a payout an admin resolved as failed (`PayoutResult::Failed`).
pub const MANUAL: &str = "manual";
/// The words of a payout an admin resolved as failed without giving a reason.
pub const RESOLVED_WITHOUT_REASON: &str = "resolved as failed by an operator";

/// The flag of a payout M-Pesa's queue timed out on, Transaction Status asked
/// (`service::webhooks`).
pub const QUEUE_TIMEOUT_ASKED: &str =
    "queue timeout at M-Pesa: outcome unknown, money stays reserved; Transaction Status is asked";

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

impl PayoutResult {
    /// The result with its receipt as M-Pesa writes it: upper-case letters and digits. One
    /// told in lower case is the same receipt, kept, compared (unique: one receipt completes
    /// one payout) and audited so.
    fn in_mpesa_form(&self) -> std::borrow::Cow<'_, PayoutResult> {
        match self {
            PayoutResult::Succeeded { receipt }
                if receipt.bytes().any(|b| b.is_ascii_lowercase()) =>
            {
                std::borrow::Cow::Owned(PayoutResult::Succeeded {
                    receipt: receipt.to_ascii_uppercase(),
                })
            }
            other => std::borrow::Cow::Borrowed(other),
        }
    }
}

/// What applying a result did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultOutcome {
    /// The result was applied.
    Applied,
    /// The payout already had this result; nothing changed.
    AlreadyApplied,
    /// The result was not applied and the payout is flagged; the reason says why.
    Flagged(String),
    /// The result was not applied, and nothing is flagged: it cannot be of this payout (the
    /// reason says why).
    Ignored(String),
}

/// Did Daraja refuse this payout at its only call (failed with a `400.*` code, which only the
/// worker's first call records, one attempt, no ConversationID ever given)? Then M-Pesa
/// cannot have paid it, and a success for it is someone else's words (`ignore_success`).
pub fn refused_at_its_only_call(conn: &Connection, payout_id: &PayoutId) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT status = 'failed' AND conversation_id IS NULL AND result_code LIKE '400.%'
             AND attempts = 1 AND gateway IS 'daraja'
             FROM payouts WHERE id = ?1",
        )?
        .query_row([payout_id], |r| r.get(0))
        .optional()?
        .unwrap_or(false))
}

/// A success for a payout Daraja refused at its only call (`refused_at_its_only_call`): not
/// applied, and held nothing (a flag held the whole escrow's money until an admin acted, on a
/// forger's word): said in the log and the audit log.
pub fn ignore_success(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    payout_id: &PayoutId,
) -> Result<ResultOutcome> {
    let reason = "a success for a payout M-Pesa refused at its only call (it gave no ConversationID): not applied; check who else may know the result URL's token".to_string();
    ctx.warn_after_commit(format!("payout {payout_id}: {reason}"));
    ctx.audit(
        &actor.id,
        "payout.result_ignored",
        payout_id.as_str(),
        &json!({"reason": reason}),
    )?;
    Ok(ResultOutcome::Ignored(reason))
}

/// What a result needs to know of its payout.
struct PayoutRow {
    status: PayoutStatus,
    request_id: PaymentRequestId,
    escrow_id: EscrowId,
    category_id: CategoryId,
    amount_usd: UsdCents,
    amount_kes: KesCents,
    approved_day: Option<String>,
    receipt: Option<String>,
    /// Sent through the simulator: nothing real moved.
    simulated: bool,
    /// Why it is flagged, if it is: its result, once applied, settles what the flag asked.
    flag_reason: Option<String>,
    /// The code of a failure reported for it and held until Transaction Status confirms it.
    held_failure: Option<String>,
}

impl PayoutRow {
    /// An audit line's details, naming the flag its result cleared, if any (a kept flag is
    /// not cleared).
    fn details(&self, mut details: serde_json::Value) -> serde_json::Value {
        if let Some(reason) = self.flag_reason.as_deref().filter(|r| !kept(r)) {
            details["flagCleared"] = json!(reason);
        }
        details
    }
}

fn load_payout(conn: &Connection, payout_id: &PayoutId) -> Result<PayoutRow> {
    conn.prepare_cached(
        "SELECT p.status, p.payment_request_id, p.escrow_id, r.category_id, p.amount_usd_cents,
         p.amount_kes_cents, r.approved_day, p.receipt, p.gateway IS 'simulator' AS simulated,
         p.flag_reason, p.failure_to_confirm_code
         FROM payouts p JOIN payment_requests r ON r.id = p.payment_request_id WHERE p.id = ?1",
    )?
    .query_row([payout_id], |r| {
        Ok(PayoutRow {
            status: r.get("status")?,
            request_id: r.get("payment_request_id")?,
            escrow_id: r.get("escrow_id")?,
            category_id: r.get("category_id")?,
            amount_usd: r.get("amount_usd_cents")?,
            amount_kes: r.get("amount_kes_cents")?,
            approved_day: r.get("approved_day")?,
            receipt: r.get("receipt")?,
            simulated: r.get("simulated")?,
            flag_reason: r.get("flag_reason")?,
            held_failure: r.get("failure_to_confirm_code")?,
        })
    })
    .optional()?
    .ok_or(Error::NotFound { what: "payout" })
}

/// Finds the payout a result names: by our `OriginatorConversationID` when it names one, whose
/// `ConversationID`, if it names one too, must be the payout's (or the payout has none yet: the
/// result came before the acknowledgement); by Daraja's `ConversationID` (an STK
/// `CheckoutRequestID`) otherwise, also when the `OriginatorConversationID` is none of ours
/// (Daraja may give a B2B payment an id of its own, and its result carries that). A result
/// naming one payout's id and another's finds none, unless the first has no ConversationID of
/// its own: then its own id decides, as for a payout M-Pesa acknowledged with another's
/// ConversationID (`mark_sent`), whose result may come before or after that acknowledgement.
pub fn find_by_conversation(
    conn: &Connection,
    originator: Option<&str>,
    conversation: Option<&str>,
) -> Result<Option<PayoutId>> {
    Ok(conn
        .prepare_cached(
            "SELECT id FROM payouts WHERE originator_conversation_id = ?1
             AND (?2 IS NULL OR conversation_id IS NULL OR conversation_id = ?2)
             UNION ALL
             SELECT id FROM payouts WHERE conversation_id = ?2 AND (?1 IS NULL
                 OR NOT EXISTS (SELECT 1 FROM payouts WHERE originator_conversation_id = ?1))",
        )?
        .query_row(params![originator, conversation], |r| r.get(0))
        .optional()?)
}

/// The amount a result names, checked against the payout's before the result is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reported {
    /// A result from M-Pesa (a callback, a Transaction Status answer): the amount it names, or
    /// `None` when it names none that can be read. A success moves money, so it must name the
    /// payout's amount: another amount, or none that can be read, is flagged and not applied.
    Amount(Option<KesCents>),
    /// A result that carries no amount by its nature: an admin's resolution, a request Daraja
    /// refused, a failure result (M-Pesa's failures carry no `ResultParameters`).
    NotCarried,
}

/// Applies a payout's result. `reported` is the amount the result names (`Reported`): a success
/// from M-Pesa whose amount differs from the payout's, or cannot be read, is flagged and not
/// applied.
pub fn apply_result(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    payout_id: &PayoutId,
    result: &PayoutResult,
    reported: Reported,
) -> Result<ResultOutcome> {
    let result = &*result.in_mpesa_form();
    let row = load_payout(ctx.conn, payout_id)?;
    let at = ctx.at();
    // A payout that may have been paid twice, or whose success named another payee: no failure
    // from M-Pesa (a held one confirmed, a Transaction Status answer) returns its money; an
    // admin does, after checking M-Pesa.
    if matches!(result, PayoutResult::Failed { .. })
        && actor.user_id().is_none()
        && !row.status.has_result()
        && row.flag_reason.as_deref().is_some_and(kept)
    {
        return Ok(ResultOutcome::Flagged(
            "a failure is not applied to this flagged payout: an admin resolves it after checking M-Pesa"
                .into(),
        ));
    }
    match (row.status, result) {
        (PayoutStatus::Succeeded, PayoutResult::Succeeded { receipt })
            if row.receipt.as_deref() == Some(receipt.as_str()) =>
        {
            return Ok(ResultOutcome::AlreadyApplied)
        }
        (PayoutStatus::Failed, PayoutResult::Failed { .. }) => {
            return Ok(ResultOutcome::AlreadyApplied)
        }
        // A success for a payout M-Pesa refused at its only call (`400.*`, no ConversationID
        // ever given): M-Pesa cannot have paid what it refused, so the success is someone
        // else's words (whoever knows the result URL's token). Said and audited, not flagged:
        // the flag held the whole escrow's money until an admin acted, on a forger's word.
        (PayoutStatus::Failed, PayoutResult::Succeeded { .. })
            if actor.user_id().is_none() && refused_at_its_only_call(ctx.conn, payout_id)? =>
        {
            return ignore_success(ctx, actor, payout_id);
        }
        (status, _) if status.has_result() => {
            let reason = format!("a different result arrived for a payout already {status}");
            flag(ctx, payout_id, &reason)?;
            return Ok(ResultOutcome::Flagged(reason));
        }
        _ => {}
    }
    match (reported, result) {
        (Reported::Amount(Some(reported)), _) if reported != row.amount_kes => {
            let reason = format!(
                "result names {} but the payout is {}",
                reported.display(),
                row.amount_kes.display()
            );
            flag(ctx, payout_id, &reason)?;
            return Ok(ResultOutcome::Flagged(reason));
        }
        (Reported::Amount(None), PayoutResult::Succeeded { .. }) => {
            let reason = "success result whose amount could not be read (missing or not an amount): not applied"
                .to_string();
            flag(ctx, payout_id, &reason)?;
            return Ok(ResultOutcome::Flagged(reason));
        }
        _ => {}
    }
    match result {
        PayoutResult::Succeeded { receipt } => {
            let taken: Option<PayoutId> = ctx
                .conn
                .prepare_cached("SELECT id FROM payouts WHERE receipt = ?1")?
                .query_row([receipt], |r| r.get(0))
                .optional()?;
            if taken.is_some() {
                let reason = "the receipt already completed another payout".to_string();
                flag(ctx, payout_id, &reason)?;
                return Ok(ResultOutcome::Flagged(reason));
            }
            ledger::post(
                ctx.conn,
                &row.escrow_id,
                &row.category_id,
                row.amount_usd,
                payout_id.as_str(),
                ctx.now,
            )?;
            ctx.conn.prepare_cached("UPDATE payouts SET change_seq = remit_change_seq(), status = :status, receipt = :receipt, result_code = '0', result_at = :at,
                 updated_at = :at, next_attempt_at = NULL, status_query_due_at = NULL,
                 failure_to_confirm_code = NULL, failure_to_confirm_desc = NULL,
                 flagged = COALESCE(flag_reason LIKE :kept || '%' OR flag_reason LIKE :kept_payee || '%', 0),
                 flag_reason = CASE WHEN flag_reason LIKE :kept || '%' OR flag_reason LIKE :kept_payee || '%'
                     THEN flag_reason || '; then: paid, M-Pesa receipt ' || :receipt || ' (the money is spent; the flag stays for the operator)' END
                 WHERE id = :id")?.execute(named_params! {
                    ":id": payout_id, ":status": PayoutStatus::Succeeded, ":receipt": receipt, ":at": at,
                    ":kept": SECOND_CONVERSATION, ":kept_payee": OTHER_PAYEE,
                })?;
            set_request_status(ctx, &row.request_id, RequestStatus::Paid)?;
            ctx.audit(
                &actor.id,
                "payout.succeeded",
                payout_id.as_str(),
                &row.details(
                    json!({"receipt": receipt, "paymentRequestId": row.request_id,
                        "simulated": row.simulated}),
                ),
            )?;
            ctx.emit(
                EventType::PaymentRequestPaid,
                crate::outbox::with_amounts(
                    json!({"paymentRequestId": row.request_id, "escrowId": row.escrow_id,
                           "payoutId": payout_id, "status": RequestStatus::Paid,
                           "mpesaReceipt": receipt, "simulated": row.simulated}),
                    row.amount_kes,
                    row.amount_usd,
                ),
            )?;
            // A failure reported before, held until Transaction Status confirms it: this
            // success contradicts it, whoever brings it (the answer, or a callback that came
            // first: it was applied with no word of the failure). Not an admin's resolution:
            // they checked M-Pesa.
            if let Some(code) = row
                .held_failure
                .as_ref()
                .filter(|_| actor.user_id().is_none())
            {
                ctx.warn_after_commit(format!(
                    "payout {payout_id}: a failure result ({code}) was contradicted by a success; not applied"
                ));
                ctx.audit(
                    &actor.id,
                    "payout.failure_contradicted",
                    payout_id.as_str(),
                    &json!({"resultCode": code, "receipt": receipt}),
                )?;
                // Flagged too (DESIGN): a failure M-Pesa did not report may have come from
                // someone who knows the result URL's token. An admin confirms the payment (with
                // its receipt) once that is looked into.
                flag(
                    ctx,
                    payout_id,
                    &format!(
                        "a failure ({code}) was reported for it, and M-Pesa then reported it paid: check who else may know the result URL's token"
                    ),
                )?;
            }
            complete_if_spent(ctx, actor, &row.escrow_id)?;
        }
        PayoutResult::Failed { code, desc } => {
            ledger::void(
                ctx.conn,
                &row.escrow_id,
                &row.category_id,
                row.amount_usd,
                row.approved_day.as_deref(),
                payout_id.as_str(),
                ctx.now,
            )?;
            // An admin's words (a failure resolved by hand) are sealed, as any text a person
            // types; M-Pesa's are kept as they came.
            let (desc, sealed) = if code == MANUAL {
                let sealed =
                    ctx.keys
                        .seal(EncryptedColumn::ResolveReason, payout_id.as_str(), desc)?;
                (None, Some(sealed))
            } else {
                (Some(desc.as_str()), None)
            };
            ctx.conn.prepare_cached("UPDATE payouts SET change_seq = remit_change_seq(), status = :status, result_code = :code, result_desc = :desc, resolve_reason_enc = :sealed, result_at = :at,
                 updated_at = :at, next_attempt_at = NULL, status_query_due_at = NULL,
                 failure_to_confirm_code = NULL, failure_to_confirm_desc = NULL,
                 flagged = COALESCE(flag_reason LIKE :kept || '%' OR flag_reason LIKE :kept_payee || '%', 0),
                 flag_reason = CASE WHEN flag_reason LIKE :kept || '%' OR flag_reason LIKE :kept_payee || '%' THEN flag_reason END
                 WHERE id = :id")?.execute(named_params! {
                    ":id": payout_id, ":status": PayoutStatus::Failed, ":code": code, ":desc": desc,
                    ":sealed": sealed, ":at": at, ":kept": SECOND_CONVERSATION, ":kept_payee": OTHER_PAYEE,
                })?;
            set_request_status(ctx, &row.request_id, RequestStatus::Failed)?;
            ctx.audit(
                &actor.id,
                "payout.failed",
                payout_id.as_str(),
                &row.details(
                    json!({"resultCode": code, "paymentRequestId": row.request_id,
                        "simulated": row.simulated}),
                ),
            )?;
            ctx.emit(
                EventType::PaymentRequestFailed,
                crate::outbox::with_amounts(
                    json!({"paymentRequestId": row.request_id, "escrowId": row.escrow_id,
                           "payoutId": payout_id, "status": RequestStatus::Failed,
                           "resultCode": code, "simulated": row.simulated}),
                    row.amount_kes,
                    row.amount_usd,
                ),
            )?;
        }
    }
    Ok(ResultOutcome::Applied)
}

/// Keeps, sealed, the payee as M-Pesa's result of a payout it paid names it (the first of its
/// `ReceiverPartyPublicName`s, or a Transaction Status answer's `CreditPartyName`, that says
/// something): at most `PAYEE_NAME_CHARS` characters, without control characters or characters
/// that show as nothing (the view shows it beside the name the requester typed). The first
/// kept stays: a result applied again (the same receipt, after an admin resolved it as paid)
/// names the payee only when none was kept.
pub fn record_payee_name(ctx: &WriteCtx<'_>, payout_id: &PayoutId, named: &[String]) -> Result<()> {
    let Some(name) = named.iter().find_map(|n| payee_name_kept(n)) else {
        return Ok(());
    };
    let sealed = ctx
        .keys
        .seal(EncryptedColumn::PayeeName, payout_id.as_str(), &name)?;
    ctx.conn
        .prepare_cached(
            "UPDATE payouts SET change_seq = remit_change_seq(), payee_name_enc = ?2
             WHERE id = ?1 AND payee_name_enc IS NULL",
        )?
        .execute(params![payout_id, sealed])?;
    Ok(())
}

/// The longest payee name kept from M-Pesa's result.
const PAYEE_NAME_CHARS: usize = 120;

/// M-Pesa's payee name as kept: the characters refused in a name (`domain::refused_in_text`:
/// control characters, which the callback's reading has made U+FFFD already, and those that
/// show as nothing or turn the text around) as spaces, spaces run together, cut to
/// `PAYEE_NAME_CHARS`; `None` when nothing is left.
fn payee_name_kept(named: &str) -> Option<String> {
    let spaced: String = named
        .chars()
        .map(
            |c| match crate::domain::refused_in_text(c) || c == char::REPLACEMENT_CHARACTER {
                true => ' ',
                false => c,
            },
        )
        .collect();
    let kept: String = spaced
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(PAYEE_NAME_CHARS)
        .collect();
    (!kept.is_empty()).then_some(kept)
}

/// Records the result description that came with a success (kept for the request view).
pub fn record_result_desc(ctx: &WriteCtx<'_>, payout_id: &PayoutId, desc: &str) -> Result<()> {
    ctx.conn
        .prepare_cached(
            "UPDATE payouts SET change_seq = remit_change_seq(), result_desc = ?2 WHERE id = ?1",
        )?
        .execute(params![payout_id, desc])?;
    Ok(())
}

fn set_request_status(
    ctx: &WriteCtx<'_>,
    request_id: &PaymentRequestId,
    status: RequestStatus,
) -> Result<()> {
    ctx.conn.prepare_cached("UPDATE payment_requests SET change_seq = remit_change_seq(), status = :status, updated_at = :at WHERE id = :id AND status = :approved")?.execute(named_params! {
            ":id": request_id, ":status": status, ":at": ctx.at(), ":approved": RequestStatus::Approved,
        })?;
    Ok(())
}

/// An active escrow with nothing remaining and nothing reserved is `completed`; requests still
/// waiting for approval on it are cancelled with it (nothing is left to pay them).
fn complete_if_spent(ctx: &WriteCtx<'_>, actor: &Actor, escrow_id: &EscrowId) -> Result<()> {
    let completed: Option<(UsdCents, UsdCents)> = ctx
        .conn
        .prepare_cached(
            "UPDATE escrows SET change_seq = remit_change_seq_of('escrows', id), status = :completed, updated_at = :at
         WHERE id = :id AND status = :active AND remaining_usd_cents = 0 AND reserved_usd_cents = 0
         RETURNING total_usd_cents, spent_usd_cents",
        )?
        .query_row(
            named_params! {
                ":id": escrow_id, ":at": ctx.at(), ":completed": EscrowStatus::Completed,
                ":active": EscrowStatus::Active,
            },
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((total, spent)) = completed {
        ctx.audit(
            &actor.id,
            "escrow.completed",
            escrow_id.as_str(),
            &json!({}),
        )?;
        // The system's doing, whoever's result completed the escrow (an admin's resolution
        // included): the requests were not theirs to decide.
        let cancelled = super::escrows::cancel_pending_requests(
            ctx,
            &Actor::system("escrows"),
            escrow_id,
            "escrow completed",
            "The escrow was fully spent, so nothing was left to pay this request; it was cancelled.",
        )?;
        ctx.emit(
            EventType::EscrowCompleted,
            json!({"escrowId": escrow_id, "status": EscrowStatus::Completed,
                   "totalAmountUsd": total.major(), "totalAmountUsdCents": total.get(),
                   "spentUsd": spent.major(), "spentUsdCents": spent.get(),
                   "cancelledPaymentRequestIds": cancelled}),
        )?;
    }
    Ok(())
}

/// When a payout is stuck, as one SQL predicate over `p` (`?1` is the cutoff time): it has no
/// result, and is flagged or was sent with no result since the cutoff. A queued payout is not
/// stuck: the worker may be sending it. The one definition: resolving reads it of one payout,
/// and the list, the metrics and the sweep find the same payouts by `stuck_ids!`.
const STUCK: &str = "(p.status IN ('queued', 'sent') AND (p.flagged = 1 OR (p.status = 'sent' AND p.sent_at <= ?1)))";

/// The ids of the payouts `STUCK` holds (`?1` is the cutoff), found by two indexes: the flagged
/// ones by their partial index, the sent ones by the status index. `STUCK` over the payouts by
/// their status walks every queued payout, and an M-Pesa outage makes that queue as long as
/// it lasts: a ledger with 370,000 queued took 1.5 s to count them (cold) in every `/metrics`,
/// and the writer's sweep every 15 s as long. `payout.stuck`'s sweep, its count and the list
/// of stuck payouts go this way; a check of one payout (`resolve`) reads `STUCK`.
macro_rules! stuck_ids {
    () => {
        "SELECT id FROM payouts WHERE flagged = 1 AND +status IN ('queued', 'sent')
         UNION ALL SELECT id FROM payouts WHERE status = 'sent' AND flagged = 0 AND sent_at <= ?1"
    };
}

/// `STUCK` for a list: the payout's id among `stuck_ids!`.
const STUCK_BY_ID: &str = concat!("p.id IN (", stuck_ids!(), ")");

/// Emits `payout.stuck` once for each payout that is stuck (as `STUCK` says, with `cutoff`) and
/// has not had it yet; `only` limits it to one payout. At most `max`; returns how many.
fn emit_stuck(
    ctx: &WriteCtx<'_>,
    only: Option<&PayoutId>,
    cutoff: &str,
    max: u32,
) -> Result<usize> {
    let stuck: Vec<StuckRow> = ctx
        .conn
        .prepare_cached(&format!(
            "UPDATE payouts SET change_seq = remit_change_seq(), stuck_event_at = ?2
             WHERE id IN (SELECT p.id FROM payouts p WHERE {STUCK_BY_ID} AND p.stuck_event_at IS NULL
                          AND (?3 IS NULL OR p.id = ?3) ORDER BY p.id LIMIT ?4)
             RETURNING id, payment_request_id, escrow_id, status, flagged, amount_kes_cents,
             amount_usd_cents, sent_at"
        ))?
        .query_map(params![cutoff, ctx.at(), only, max], |r| {
            Ok(StuckRow {
                id: r.get(0)?,
                request_id: r.get(1)?,
                escrow_id: r.get(2)?,
                status: r.get(3)?,
                flagged: r.get(4)?,
                amount_kes: r.get(5)?,
                amount_usd: r.get(6)?,
                sent_at: r.get(7)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    for p in &stuck {
        ctx.emit(
            EventType::PayoutStuck,
            crate::outbox::with_amounts(
                json!({"payoutId": p.id, "paymentRequestId": p.request_id,
                       "escrowId": p.escrow_id, "status": p.status, "flagged": p.flagged,
                       "sentAt": p.sent_at}),
                p.amount_kes,
                p.amount_usd,
            ),
        )?;
    }
    Ok(stuck.len())
}

/// A payout that just became stuck.
struct StuckRow {
    id: PayoutId,
    request_id: PaymentRequestId,
    escrow_id: EscrowId,
    status: PayoutStatus,
    flagged: bool,
    amount_kes: KesCents,
    amount_usd: UsdCents,
    sent_at: Option<String>,
}

/// The sweep: emits `payout.stuck` for payouts that became stuck by the passing of time (sent
/// with no result for `timeout_s`) since the last sweep. A flagged payout had its event when it
/// was flagged. Returns how many.
pub fn emit_stuck_due(ctx: &WriteCtx<'_>, timeout_s: i64) -> Result<usize> {
    let cutoff = crate::time::rfc3339(ctx.now - timeout_s);
    emit_stuck(ctx, None, &cutoff, crate::limits::STUCK_SWEEP_ROWS_MAX)
}

/// How many payouts are stuck (for `/metrics`).
pub fn stuck_count(conn: &Connection, timeout_s: i64, now: i64) -> Result<i64> {
    let cutoff = crate::time::rfc3339(now - timeout_s);
    Ok(conn
        .prepare_cached(concat!("SELECT COUNT(*) FROM (", stuck_ids!(), ")"))?
        .query_row([cutoff], |r| r.get(0))?)
}

/// How many queued payouts wait for their flagged escrow (for `/metrics`): from the flagged
/// escrows (few, by their partial index) to their requests and each request's payout, in that
/// order (`CROSS JOIN`), never from the queue of payouts (see `stuck_ids!`).
pub fn held_count(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT COUNT(*) FROM escrows e CROSS JOIN payment_requests r CROSS JOIN payouts p
             WHERE e.flag_reason IS NOT NULL AND r.escrow_id = e.id
             AND p.payment_request_id = r.id AND +p.status = 'queued'",
        )?
        .query_row([], |r| r.get(0))?)
}

/// Which payouts `GET /payouts` lists.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PayoutFilter {
    /// All of them.
    All,
    /// In one state.
    Status(PayoutStatus),
    /// Flagged for the operator.
    Flagged,
    /// Stuck, as `STUCK` defines it.
    Stuck,
}

impl PayoutFilter {
    /// Parses `status=…` of `GET /payouts`.
    pub fn parse(field: &str, text: &str) -> Result<PayoutFilter> {
        match text {
            "stuck" => Ok(PayoutFilter::Stuck),
            "flagged" => Ok(PayoutFilter::Flagged),
            other => other.parse().map(PayoutFilter::Status).map_err(|_| {
                Error::invalid(
                    field,
                    "must be one of queued, sent, succeeded, failed, stuck, flagged",
                )
            }),
        }
    }
}

/// `GET /payouts?status=…`: payouts by status, newest first; stuck ones oldest first (the
/// longest waiting first), with the cutoff `timeout_s` before `now`.
pub fn list(
    conn: &Connection,
    keys: &crate::crypto::Keys,
    filter: PayoutFilter,
    timeout_s: i64,
    now: i64,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page<PayoutView>> {
    let cutoff = crate::time::rfc3339(now - timeout_s);
    let (where_clause, param, ascending): (&str, &dyn rusqlite::ToSql, bool) = match &filter {
        PayoutFilter::Stuck => (STUCK_BY_ID, &cutoff, true),
        // A literal, so that the partial index of flagged payouts serves it.
        PayoutFilter::Flagged => ("p.flagged = 1 AND ?1 IS NOT NULL", &1, false),
        PayoutFilter::Status(status) => ("p.status = ?1", status, false),
        PayoutFilter::All => ("?1 IS NULL", &rusqlite::types::Null, false),
    };
    views::payouts_where(conn, keys, where_clause, param, ascending, limit, cursor)
}

/// A payout resolved by hand
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedPayout {
    /// The payout.
    #[serde(flatten)]
    pub payout: PayoutView,
    /// Its payment request.
    pub payment_request: PaymentRequestView,
}

/// Refuses to let an escrow's money move (`doing`: `cancelled`, `approved`) while one of its
/// payouts that failed is flagged: M-Pesa reported it paid after all, and its money, back in
/// the escrow, may be owed. Refunded or paid out again, it could leave twice. An admin
/// resolves it first (`confirm_flagged_result`). By the index of flagged payouts (few); the `+`
/// keeps SQLite from walking every failed payout by the status index instead.
///
/// And while the escrow is flagged (a card deposit of it refunded or disputed at Stripe: its
/// money may be taken back, and spent or refunded meanwhile it would leave twice), until an
/// admin clears the flag (`escrows::clear_flag`).
pub fn refuse_if_held(conn: &Connection, escrow_id: &EscrowId, doing: &str) -> Result<()> {
    // Both in one statement: this is on every approval's path.
    let (flagged, held): (bool, bool) = conn
        .prepare_cached(concat!(
            "SELECT EXISTS (SELECT 1 FROM escrows WHERE id = ?1 AND flag_reason IS NOT NULL), ",
            failed_payout_flagged!("?1")
        ))?
        .query_row([escrow_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if flagged {
        return Err(Error::NotNow(format!(
            "a card deposit of this escrow was refunded or disputed at Stripe, and the money may be taken back: the escrow's money is not {doing} until an admin has checked it and cleared the escrow's flag"
        )));
    }
    if held {
        return Err(Error::NotNow(format!(
            "a failed payout of this escrow is flagged for the operator (M-Pesa reported it paid after all): the escrow's money is not {doing} until an admin has resolved it"
        )));
    }
    Ok(())
}

/// Flagged payouts that have their result (for `/metrics`): the operator's to confirm.
pub fn flagged_with_result_count(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT COUNT(*) FROM payouts WHERE flagged = 1 AND +status IN ('succeeded', 'failed')",
        )?
        .query_row([], |r| r.get(0))?)
}

/// A payout flagged after its result (a different outcome reported, a receipt of another
/// payment, another payee): an admin who has checked with M-Pesa confirms the result it has,
/// which clears the flag (audited; no money moves), and its escrow may be cancelled again. A
/// different outcome is not applied here: its money has already moved (a failure's back to the
/// escrow, a success's spent), and the correction is the operator's to make by hand.
fn confirm_flagged_result(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    payout_id: &PayoutId,
    row: &PayoutRow,
    reason: &str,
    result: &PayoutResult,
) -> Result<ResolvedPayout> {
    let same = match (result, row.status) {
        (PayoutResult::Succeeded { receipt }, PayoutStatus::Succeeded) => {
            if row.receipt.as_deref() != Some(receipt.as_str()) {
                return Err(Error::invalid(
                    "receipt",
                    format!(
                        "is not this payout's: it was paid with receipt {}; confirm that one, or settle another by hand",
                        row.receipt.as_deref().unwrap_or("(none)")
                    ),
                ));
            }
            true
        }
        (PayoutResult::Failed { .. }, PayoutStatus::Failed) => true,
        _ => false,
    };
    // A result confirmed keeps M-Pesa's code and words (`resultCode`, `resultDesc`): an admin's
    // words would read as M-Pesa's there, so they are refused rather than dropped without a
    // word (until 2026-12-06 they were accepted and dropped).
    if let PayoutResult::Failed { desc, .. } = result {
        if desc != RESOLVED_WITHOUT_REASON {
            return Err(Error::invalid(
                "reason",
                "is for a payout resolved without a result; a flagged result is confirmed as M-Pesa reported it, its words kept (leave the reason out)",
            ));
        }
    }
    if !same {
        return Err(Error::NotNow(format!(
            "the payout has its result ({}) and its money has moved: a flag on it is cleared by confirming that result; another one is not applied here (a failed payout M-Pesa really paid: have M-Pesa reverse the payment, then confirm it failed; README \"Stuck payouts\")",
            row.status
        )));
    }
    settled_by_hand(
        ctx,
        actor,
        payout_id,
        row,
        "payout.result_confirmed",
        &json!({"outcome": if row.status == PayoutStatus::Succeeded { "paid" } else { "failed" },
                "flagCleared": reason}),
    )
}

/// The end of an admin's `resolve`: the payout's flag taken down, the audit line `action` with
/// `details`, and the payout and its request as they are now.
fn settled_by_hand(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    payout_id: &PayoutId,
    row: &PayoutRow,
    action: &str,
    details: &serde_json::Value,
) -> Result<ResolvedPayout> {
    ctx.conn
        .prepare_cached("UPDATE payouts SET change_seq = remit_change_seq(), flagged = 0, flag_reason = NULL, updated_at = ?2 WHERE id = ?1")?
        .execute(params![payout_id, ctx.at()])?;
    ctx.audit(&actor.id, action, payout_id.as_str(), details)?;
    Ok(ResolvedPayout {
        payout: views::payout(ctx.conn, ctx.keys, payout_id)?,
        payment_request: views::payment_request(ctx.conn, ctx.keys, actor, &row.request_id)?,
    })
}

/// `POST /payouts/:id/resolve`: an admin records a stuck payout's result by hand after
/// checking with M-Pesa. Only payouts without a result can be resolved; it is audited.
/// `nothing_sends`: this server hands nothing to a gateway (`REMIT_GATEWAY=none`), so every
/// payout without a result waits for the operator, stuck or not.
pub fn resolve(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    payout_id: &PayoutId,
    result: &PayoutResult,
    timeout_s: i64,
    nothing_sends: bool,
) -> Result<ResolvedPayout> {
    super::require_role(actor, &[])?;
    let result = &*result.in_mpesa_form();
    let row = load_payout(ctx.conn, payout_id)?;
    if row.status.has_result() {
        return match row.flag_reason.as_deref() {
            Some(reason) => confirm_flagged_result(ctx, actor, payout_id, &row, reason, result),
            None => Err(Error::InvalidState {
                entity: "payout",
                from: row.status.to_string(),
                to: "resolved",
            }),
        };
    }
    // Paid through M-Pesa (handed to the simulator or Daraja, or to be by this server), its
    // receipt is held to what a result's must be: an admin's typo is not a receipt M-Pesa
    // could have issued. A payout never handed to a gateway, on a server that hands none
    // (`REMIT_GATEWAY=none`), went out some other way, with a reference of its own.
    // Only a stuck payout is resolved by hand: flagged, or sent with no result past the
    // timeout. A queued one may be in the worker's hands at this moment (a retry), so resolving
    // it could release money that M-Pesa is about to pay.
    //
    // Without a gateway (`REMIT_GATEWAY=none`: after a restore, to settle by hand what the
    // replaced ledger saw, `remit restore` names them) no worker holds one, so any payout
    // without a result may be resolved as paid, with M-Pesa's receipt. As failed, only one
    // never handed to a gateway, or one handed over (under an earlier setting) that has had no
    // word for the whole timeout: a call made minutes before the switch may still be paid, and
    // its money must stay reserved until then.
    let cutoff = crate::time::rfc3339(ctx.now - timeout_s);
    let (stuck, never_handed_over, quiet, handed_over): (bool, bool, bool, bool) = ctx
        .conn
        .prepare_cached(&format!(
            "SELECT {STUCK}, p.status = 'queued' AND p.gateway IS NULL AND p.attempts = 0,
                    p.updated_at <= ?1, p.gateway IS NOT NULL
             FROM payouts p WHERE p.id = ?2"
        ))?
        .query_row(params![cutoff, payout_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
    // Paid through M-Pesa (handed to the simulator or Daraja, or to be by this server), its
    // receipt is held to what a result's must be: an admin's typo is not a receipt M-Pesa
    // could have issued. A payout never handed to a gateway, on a server that hands none
    // (`REMIT_GATEWAY=none`), went out some other way, with a reference of its own.
    if let PayoutResult::Succeeded { receipt } = result {
        if (handed_over || !nothing_sends) && !crate::wire::daraja::plausible_receipt(receipt) {
            return Err(Error::invalid(
                "receipt",
                "must be the M-Pesa receipt: 6 to 20 letters and digits (QK12AB34CD)",
            ));
        }
    }
    let paid = matches!(result, PayoutResult::Succeeded { .. });
    // A queue timeout is flagged at once while Transaction Status is asked: its answer may
    // still say M-Pesa paid, so it is resolved as failed only once it has had no word for the
    // whole timeout (as paid, with M-Pesa's receipt, at any time).
    if !paid
        && !quiet
        && row
            .flag_reason
            .as_deref()
            .is_some_and(|r| r.contains(QUEUE_TIMEOUT_ASKED))
    {
        return Err(Error::NotNow(format!(
            "M-Pesa's Transaction Status is being asked about this payout and may still say it was paid: resolve it as failed once it has had no answer for {timeout_s} s, or as paid with M-Pesa's receipt"
        )));
    }
    let allowed = stuck || (nothing_sends && (paid || never_handed_over || quiet));
    if !allowed && nothing_sends {
        return Err(Error::NotNow(format!(
            "the payout was handed to a gateway less than {timeout_s} s ago and may still be paid: resolve it as paid with M-Pesa's receipt, or as failed once it has had no result for {timeout_s} s"
        )));
    }
    if !allowed {
        return Err(Error::InvalidState {
            entity: "payout",
            from: format!("{} and not stuck yet", row.status),
            to: "resolved",
        });
    }
    // Resolved because it is stuck: its `payout.stuck` goes out first, in this command, if the
    // sweep (every 15 s) had not reached it yet: every payout on the admin's list of stuck
    // ones is said to be stuck (its sender told of the delay), however soon it is resolved.
    if stuck {
        emit_stuck(ctx, Some(payout_id), &cutoff, 1)?;
    }
    match apply_result(ctx, actor, payout_id, result, Reported::NotCarried)? {
        ResultOutcome::Applied => {}
        ResultOutcome::AlreadyApplied => {
            return Err(Error::InvalidState {
                entity: "payout",
                from: row.status.to_string(),
                to: "resolved",
            })
        }
        ResultOutcome::Flagged(reason) | ResultOutcome::Ignored(reason) => {
            return Err(Error::invalid("receipt", reason))
        }
    }
    settled_by_hand(
        ctx,
        actor,
        payout_id,
        &row,
        "payout.resolved",
        // What the admin found at M-Pesa, in the signed record: the receipt of a payment. Their
        // words on a failure stay with the payout (its result), not in the append-only chain,
        // which nothing typed by hand (a name pasted from M-Pesa's answer) may enter.
        &match result {
            PayoutResult::Succeeded { receipt } => json!({"outcome": "paid", "receipt": receipt}),
            PayoutResult::Failed { .. } => json!({"outcome": "failed"}),
        },
    )
}

#[cfg(test)]
mod tests {
    /// Guards against: the payout worker's next Transaction Status query read and sorted every
    /// payout in flight at each turn (the index of statuses), 10 ms at 15,000: it walks the
    /// index of due times, which holds only payouts in flight.
    #[test]
    fn the_next_status_query_walks_the_index_of_due_times() {
        let conn = crate::store::migrated_in_memory().unwrap();
        let plan = crate::store::unbound_query_plan(&conn, super::NEXT_STATUS_QUERY);
        assert!(
            plan.iter().any(|l| l.contains("payouts_status_query_due")),
            "{plan:#?}"
        );
        assert!(!plan.iter().any(|l| l.contains("TEMP B-TREE")), "{plan:#?}");
    }

    /// A B2C result's phone names another only when it surely does.
    #[test]
    fn a_phone_names_another_only_when_it_surely_does() {
        let sent = "+254722000111";
        for (named, other) in [
            ("254722000111", false),
            ("0722000111", false),
            ("+254722000111", false),
            ("2547******11", false),
            ("254722***111", false),
            ("JANE WANJIKU", false),
            ("", false),
            ("2547*****11", false),
            ("722000111", false),
            ("07******11", false),
            ("25472200011", false),
            ("2547220001111", false),
            ("254***111", false),
            ("254722000111 - JANE-ANNE", false),
            ("254722000111 \u{2014} JANE", false),
            ("254722000111JANE", false),
            ("JANE 254799999999", false),
            ("  254799999999 - X", true),
            ("254799999999 \u{2014} JANE", true),
            ("254799999999 JANE", true),
            ("255722000111 - X", true),
            ("2559******11", true),
            ("254799999999", true),
            ("0799999999", true),
            ("799999999", true),
            ("07******99", true),
            ("2547******99", true),
            ("2549******11", true),
            ("254 722 000 111 - JANE", false),
            ("0722 000 111 - JANE", false),
            ("254 799 999 999 - JANE", true),
            ("+254 799 999 999 - JANE", true),
            ("0799 999 999 - JANE", true),
            ("254799999999 3M KENYA", true),
            ("0799999999 3M KENYA", true),
            ("0722000111 3M KENYA", false),
        ] {
            assert_eq!(super::names_another_phone(named, sent), other, "{named}");
        }
    }
}
