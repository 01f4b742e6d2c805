//! The double-entry journal and the balance columns it explains. This is the only module that
//! writes `ledger_entries` or changes a balance column; every move runs inside the caller's
//! writer transaction and appends one journal transaction whose entries sum to zero.
//!
//! A two-phase transfer is an escrow: approve reserves (available → reserved), a paid payout
//! posts (reserved → spent), a failed one voids (reserved → available).

use crate::domain::{CategoryId, EscrowId, EscrowStatus};
use crate::error::{Error, Result};
use crate::money::UsdCents;
use crate::store::is_check_violation;
use rusqlite::{params, Connection, OptionalExtension};

crate::domain::string_enum! {
    /// A journal account.
    pub enum Account {
        /// Money that came in from outside (its balance is minus everything deposited).
        WorldDeposits = "world:deposits",
        /// Deposits of an escrow not yet covering its total.
        EscrowUnfunded = "escrow:unfunded",
        /// Unfunded deposits returned when a pending escrow is cancelled.
        EscrowRefunded = "escrow:refunded",
        /// A category's money free to be requested.
        Available = "available",
        /// A category's money approved and waiting for its payout.
        Reserved = "reserved",
        /// A category's money paid out.
        Spent = "spent",
        /// A category's money returned to the sender on cancellation.
        Refunded = "refunded",
    }
}

crate::domain::string_enum! {
    /// Why money moved.
    pub enum Kind {
        /// A deposit arrived.
        Deposit = "deposit",
        /// Deposits covered the total; the categories were funded.
        Activation = "activation",
        /// A payment request was approved.
        Approval = "approval",
        /// Its payout succeeded.
        PayoutSucceeded = "payout_succeeded",
        /// Its payout failed.
        PayoutFailed = "payout_failed",
        /// The escrow was cancelled.
        Cancellation = "cancellation",
    }
}

/// One leg of a journal transaction.
struct Leg<'a> {
    category_id: Option<&'a CategoryId>,
    account: Account,
    amount_usd_cents: i64,
}

fn post_journal(
    conn: &Connection,
    escrow_id: &EscrowId,
    kind: Kind,
    reference: &str,
    now: i64,
    legs: &[Leg<'_>],
) -> Result<()> {
    // A journal transaction that does not balance is a bug, never an input error.
    assert_eq!(
        legs.iter().map(|l| l.amount_usd_cents).sum::<i64>(),
        0,
        "unbalanced journal transaction"
    );
    if legs.iter().all(|l| l.amount_usd_cents == 0) {
        return Ok(()); // nothing moved (cancelling an escrow that holds nothing)
    }
    // The escrow's journal is a chain (schema 18): the transaction names the escrow's newest
    // before it, and becomes the newest. Both rows are on pages the command has just changed or
    // read; an index by escrow was a page at a random place per transaction.
    conn.prepare_cached(
        "INSERT INTO ledger_transactions (escrow_id, kind, reference, created_at, prev_id)
         VALUES (?1, ?2, ?3, ?4, (SELECT last_transaction_id FROM escrows WHERE id = ?1))",
    )?
    .execute(params![
        escrow_id,
        kind,
        reference,
        crate::time::rfc3339(now)
    ])?;
    let transaction_id = conn.last_insert_rowid();
    conn.prepare_cached(
        "UPDATE escrows SET change_seq = remit_change_seq_of('escrows', id), last_transaction_id = ?2
         WHERE id = ?1",
    )?
    .execute(params![escrow_id, transaction_id])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO ledger_entries (transaction_id, escrow_id, category_id, account, amount_usd_cents)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for leg in legs.iter().filter(|l| l.amount_usd_cents != 0) {
        insert.execute(params![
            transaction_id,
            escrow_id,
            leg.category_id,
            leg.account,
            leg.amount_usd_cents
        ])?;
    }
    Ok(())
}

/// A deposit arrives: `world:deposits → escrow:unfunded`, and `deposited` grows. When
/// deposits reach the total the escrow activates in the same statement (a pending escrow never
/// holds its whole total unfunded) and `escrow:unfunded → available` funds each category by its
/// allocation. Returns true when it activated.
pub fn deposit(
    conn: &Connection,
    escrow_id: &EscrowId,
    amount: UsdCents,
    reference: &str,
    now: i64,
) -> Result<bool> {
    let at = crate::time::rfc3339(now);
    let status: Option<EscrowStatus> = conn
        .prepare_cached(
            "UPDATE escrows SET change_seq = remit_change_seq_of('escrows', id), deposited_usd_cents = deposited_usd_cents + ?2,
               status = CASE WHEN deposited_usd_cents + ?2 = total_usd_cents THEN 'active' ELSE status END,
               remaining_usd_cents = CASE WHEN deposited_usd_cents + ?2 = total_usd_cents
                   THEN total_usd_cents ELSE remaining_usd_cents END,
               updated_at = ?3
             WHERE id = ?1 AND status = 'pending_deposit' RETURNING status",
        )?
        .query_row(params![escrow_id, amount.get(), at], |r| r.get(0))
        .optional()?;
    let Some(status) = status else {
        return Err(Error::NotFound {
            what: "pending escrow",
        });
    };
    post_journal(
        conn,
        escrow_id,
        Kind::Deposit,
        reference,
        now,
        &[
            Leg {
                category_id: None,
                account: Account::WorldDeposits,
                amount_usd_cents: -amount.get(),
            },
            Leg {
                category_id: None,
                account: Account::EscrowUnfunded,
                amount_usd_cents: amount.get(),
            },
        ],
    )?;
    if status != EscrowStatus::Active {
        return Ok(false);
    }
    let categories: Vec<(CategoryId, i64)> = conn
        .prepare_cached(
            "UPDATE spending_categories SET change_seq = remit_change_seq_of('spending_categories', id), funded = 1, remaining_usd_cents = allocated_usd_cents
             WHERE escrow_id = ?1 RETURNING id, allocated_usd_cents",
        )?
        .query_map([escrow_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let total: i64 = categories.iter().map(|(_, a)| a).sum();
    let mut legs = vec![Leg {
        category_id: None,
        account: Account::EscrowUnfunded,
        amount_usd_cents: -total,
    }];
    for (id, allocated) in &categories {
        legs.push(Leg {
            category_id: Some(id),
            account: Account::Available,
            amount_usd_cents: *allocated,
        });
    }
    post_journal(
        conn,
        escrow_id,
        Kind::Activation,
        escrow_id.as_str(),
        now,
        &legs,
    )?;
    Ok(true)
}

/// Which balance refused a reservation.
#[derive(Debug, PartialEq, Eq)]
pub enum ReserveRefusal {
    /// The escrow's remaining balance.
    Escrow,
    /// The category's remaining balance.
    Category,
    /// The day's approvals would pass the daily limit.
    DailyLimit,
}

/// Approve: `available → reserved` in the category and the escrow, and the Nairobi day's
/// approved total grows when the escrow has a daily limit. The CHECK constraints refuse an
/// overdraft; the refusal says which one.
#[allow(clippy::too_many_arguments)]
pub fn reserve(
    conn: &Connection,
    escrow_id: &EscrowId,
    category_id: &CategoryId,
    amount: UsdCents,
    daily: Option<(&str, UsdCents)>,
    request_id: &str,
    now: i64,
) -> Result<std::result::Result<(), ReserveRefusal>> {
    let at = crate::time::rfc3339(now);
    let escrow = conn
        .prepare_cached(
            "UPDATE escrows SET change_seq = remit_change_seq_of('escrows', id), remaining_usd_cents = remaining_usd_cents - ?2,
             reserved_usd_cents = reserved_usd_cents + ?2, updated_at = ?3 WHERE id = ?1",
        )?
        .execute(params![escrow_id, amount.get(), at]);
    match escrow {
        Err(e) if is_check_violation(&e, "escrow_remaining_nonnegative") => {
            return Ok(Err(ReserveRefusal::Escrow))
        }
        other => other?,
    };
    let category = conn
        .prepare_cached(
            "UPDATE spending_categories SET change_seq = remit_change_seq_of('spending_categories', id), remaining_usd_cents = remaining_usd_cents - ?2,
             reserved_usd_cents = reserved_usd_cents + ?2 WHERE id = ?1",
        )?
        .execute(params![category_id, amount.get()]);
    match category {
        Err(e) if is_check_violation(&e, "category_remaining_nonnegative") => {
            return Ok(Err(ReserveRefusal::Category))
        }
        other => other?,
    };
    if let Some((day, limit)) = daily {
        let spend = conn
            .prepare_cached(
                "INSERT INTO daily_spend (escrow_id, day, approved_usd_cents, limit_usd_cents, change_seq)
                 VALUES (?1, ?2, ?3, ?4, remit_change_seq_of('daily_spend', ?1))
                 ON CONFLICT (escrow_id, day) DO UPDATE SET approved_usd_cents = approved_usd_cents + ?3,
                 change_seq = excluded.change_seq",
            )?
            .execute(params![escrow_id, day, amount.get(), limit.get()]);
        match spend {
            Err(e) if is_check_violation(&e, "daily_limit") => {
                return Ok(Err(ReserveRefusal::DailyLimit))
            }
            other => other?,
        };
    }
    post_journal(
        conn,
        escrow_id,
        Kind::Approval,
        request_id,
        now,
        &[
            Leg {
                category_id: Some(category_id),
                account: Account::Available,
                amount_usd_cents: -amount.get(),
            },
            Leg {
                category_id: Some(category_id),
                account: Account::Reserved,
                amount_usd_cents: amount.get(),
            },
        ],
    )?;
    Ok(Ok(()))
}

/// A payout succeeded: `reserved → spent`.
pub fn post(
    conn: &Connection,
    escrow_id: &EscrowId,
    category_id: &CategoryId,
    amount: UsdCents,
    payout_id: &str,
    now: i64,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE escrows SET change_seq = remit_change_seq_of('escrows', id), reserved_usd_cents = reserved_usd_cents - ?2,
         spent_usd_cents = spent_usd_cents + ?2, updated_at = ?3 WHERE id = ?1",
    )?
    .execute(params![escrow_id, amount.get(), crate::time::rfc3339(now)])?;
    conn.prepare_cached(
        "UPDATE spending_categories SET change_seq = remit_change_seq_of('spending_categories', id), reserved_usd_cents = reserved_usd_cents - ?2,
         spent_usd_cents = spent_usd_cents + ?2 WHERE id = ?1",
    )?
    .execute(params![category_id, amount.get()])?;
    post_journal(
        conn,
        escrow_id,
        Kind::PayoutSucceeded,
        payout_id,
        now,
        &[
            Leg {
                category_id: Some(category_id),
                account: Account::Reserved,
                amount_usd_cents: -amount.get(),
            },
            Leg {
                category_id: Some(category_id),
                account: Account::Spent,
                amount_usd_cents: amount.get(),
            },
        ],
    )
}

/// A payout failed: `reserved → available`, and the day's approved total shrinks again.
pub fn void(
    conn: &Connection,
    escrow_id: &EscrowId,
    category_id: &CategoryId,
    amount: UsdCents,
    approved_day: Option<&str>,
    payout_id: &str,
    now: i64,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE escrows SET change_seq = remit_change_seq_of('escrows', id), reserved_usd_cents = reserved_usd_cents - ?2,
         remaining_usd_cents = remaining_usd_cents + ?2, updated_at = ?3 WHERE id = ?1",
    )?
    .execute(params![escrow_id, amount.get(), crate::time::rfc3339(now)])?;
    conn.prepare_cached(
        "UPDATE spending_categories SET change_seq = remit_change_seq_of('spending_categories', id), reserved_usd_cents = reserved_usd_cents - ?2,
         remaining_usd_cents = remaining_usd_cents + ?2 WHERE id = ?1",
    )?
    .execute(params![category_id, amount.get()])?;
    if let Some(day) = approved_day {
        conn.prepare_cached(
            "UPDATE daily_spend SET change_seq = remit_change_seq_of('daily_spend', escrow_id), approved_usd_cents = approved_usd_cents - ?3 WHERE escrow_id = ?1 AND day = ?2",
        )?
        .execute(params![escrow_id, day, amount.get()])?;
    }
    post_journal(
        conn,
        escrow_id,
        Kind::PayoutFailed,
        payout_id,
        now,
        &[
            Leg {
                category_id: Some(category_id),
                account: Account::Reserved,
                amount_usd_cents: -amount.get(),
            },
            Leg {
                category_id: Some(category_id),
                account: Account::Available,
                amount_usd_cents: amount.get(),
            },
        ],
    )
}

/// Cancels an escrow: an active one's available money goes to refunded (per category); a
/// pending one's unfunded deposits go to `escrow:refunded`. Returns the amount refunded.
pub fn refund(conn: &Connection, escrow_id: &EscrowId, now: i64) -> Result<UsdCents> {
    let at = crate::time::rfc3339(now);
    let (status, deposited, remaining): (EscrowStatus, i64, i64) = conn
        .prepare_cached(
            "SELECT status, deposited_usd_cents, remaining_usd_cents FROM escrows WHERE id = ?1",
        )?
        .query_row([escrow_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    let pending = status == EscrowStatus::PendingDeposit;
    // Categories with money left; empty for a pending escrow, whose categories were never funded.
    let categories: Vec<(CategoryId, i64)> = conn
        .prepare_cached(
            "SELECT id, remaining_usd_cents FROM spending_categories WHERE escrow_id = ?1 AND remaining_usd_cents > 0",
        )?
        .query_map([escrow_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut legs = Vec::with_capacity(2 * categories.len() + 2);
    let refunded = if pending {
        legs.push(Leg {
            category_id: None,
            account: Account::EscrowUnfunded,
            amount_usd_cents: -deposited,
        });
        legs.push(Leg {
            category_id: None,
            account: Account::EscrowRefunded,
            amount_usd_cents: deposited,
        });
        deposited
    } else {
        conn.prepare_cached(
            "UPDATE spending_categories SET change_seq = remit_change_seq_of('spending_categories', id), refunded_usd_cents = refunded_usd_cents + remaining_usd_cents,
             remaining_usd_cents = 0 WHERE escrow_id = ?1",
        )?
        .execute([escrow_id])?;
        for (id, amount) in &categories {
            legs.push(Leg {
                category_id: Some(id),
                account: Account::Available,
                amount_usd_cents: -amount,
            });
            legs.push(Leg {
                category_id: Some(id),
                account: Account::Refunded,
                amount_usd_cents: *amount,
            });
        }
        remaining
    };
    conn.prepare_cached(
        "UPDATE escrows SET change_seq = remit_change_seq_of('escrows', id), status = 'cancelled', refunded_usd_cents = refunded_usd_cents + ?2,
         remaining_usd_cents = remaining_usd_cents - ?3, updated_at = ?4 WHERE id = ?1",
    )?
    .execute(params![
        escrow_id,
        refunded,
        if pending { 0 } else { refunded },
        at
    ])?;
    post_journal(
        conn,
        escrow_id,
        Kind::Cancellation,
        escrow_id.as_str(),
        now,
        &legs,
    )?;
    UsdCents::from_column(refunded)
}
