//! Read models: the typed shapes the API answers with (escrows, payment requests, payouts,
//! deposits, users, the journal), each read with one query by column name, and shared by reads
//! from the pool and by writer commands that answer with the object they changed.

use super::{Actor, EscrowParties, Page, Role};
use crate::crypto::{EncryptedColumn, Keys};
use crate::domain::{
    mask_number, CategoryId, DepositId, DepositReversal, DepositSource, DepositStatus, EscrowId,
    EscrowStatus, KenyanPhone, MerchantAccount, MerchantAccountView, PaymentRequestId,
    PayoutCommand, PayoutId, PayoutStatus, RequestStatus, UserId,
};
use crate::error::{Error, Result};
use crate::money::{Decimal, KesCents, RateKesPerUsd, UsdCents};
use crate::store::{all_rows, named_rows};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

/// Declares the columns of a view's SELECT once: their SQL, in order, and an enum of their
/// positions, so that rows are read by position (reading by name searched the statement's
/// column names at every read: a sixth of a view's cost) without the two drifting apart.
macro_rules! columns {
    ($(#[$doc:meta])* $sql:ident, $pos:ident { $($col:ident = $expr:expr,)+ }) => {
        $(#[$doc])*
        const $sql: &str = concat_columns!($($expr),+);
        #[allow(non_camel_case_types, clippy::upper_case_acronyms, clippy::enum_variant_names, dead_code)]
        #[derive(Clone, Copy)]
        enum $pos {
            $($col,)+
            /// How many columns.
            COUNT,
        }
    };
}

/// `a, b, c` from column expressions.
macro_rules! concat_columns {
    ($first:expr $(, $rest:expr)*) => { concat!($first $(, ", ", $rest)*) };
}

/// The one row a query finds, read with `from_row`, or `NotFound { what }`.
fn one_row<T, P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    from_row: impl FnMut(&Row<'_>) -> Result<T>,
    what: &'static str,
) -> Result<T> {
    all_rows(conn, sql, params, from_row)?
        .pop()
        .ok_or(Error::NotFound { what })
}

/// A user's decrypted name and phone.
pub fn user_name_phone(
    conn: &Connection,
    keys: &Keys,
    user_id: &UserId,
) -> Result<(String, Option<KenyanPhone>)> {
    let (name_enc, phone_enc): (String, Option<String>) = conn
        .prepare_cached("SELECT name_enc, phone_enc FROM users WHERE id = ?1")?
        .query_row([user_id], |r| Ok((r.get("name_enc")?, r.get("phone_enc")?)))
        .optional()?
        .ok_or(Error::NotFound { what: "user" })?;
    decrypt_name_phone(keys, user_id, &name_enc, phone_enc.as_deref())
}

fn decrypt_name_phone(
    keys: &Keys,
    user_id: &UserId,
    name_enc: &str,
    phone_enc: Option<&str>,
) -> Result<(String, Option<KenyanPhone>)> {
    let name = keys.open(EncryptedColumn::UserName, user_id.as_str(), name_enc)?;
    let phone = phone_enc
        .map(|enc| decrypt_phone(keys, user_id, enc))
        .transpose()?;
    Ok((name, phone))
}

fn decrypt_phone(keys: &Keys, user_id: &UserId, phone_enc: &str) -> Result<KenyanPhone> {
    let e164 = keys.open(EncryptedColumn::UserPhone, user_id.as_str(), phone_enc)?;
    KenyanPhone::parse("phone", &e164).map_err(|_| Error::internal("stored phone does not parse"))
}

// ---------------------------------------------------------------------------------------------
// Escrows

/// An escrow's recipient as a viewer sees them.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecipientView {
    /// `usr_…`, for staff only: to a sender, a recipient's id would tell whether the phone had
    /// an account before their escrow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    /// The name this escrow's sender typed (`null` for an older escrow whose sender's typing
    /// is not known).
    pub name: Option<String>,
    /// E.164 for admins, masked for everyone else.
    pub phone: Option<String>,
}

/// A spending category and its four balances.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)] // amounts are named for what they hold
pub struct CategoryView {
    pub category_id: CategoryId,
    pub name: String,
    pub allocated_usd: Decimal,
    pub allocated_usd_cents: UsdCents,
    pub remaining_usd: Decimal,
    pub remaining_usd_cents: UsdCents,
    pub reserved_usd: Decimal,
    pub reserved_usd_cents: UsdCents,
    pub spent_usd: Decimal,
    pub spent_usd_cents: UsdCents,
    pub refunded_usd: Decimal,
    pub refunded_usd_cents: UsdCents,
}

/// `GET /escrows/:id`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)] // amounts are named for what they hold
pub struct EscrowView {
    pub escrow_id: EscrowId,
    pub status: EscrowStatus,
    pub total_amount_usd: Decimal,
    pub total_amount_usd_cents: UsdCents,
    pub deposited_usd: Decimal,
    pub deposited_usd_cents: UsdCents,
    pub remaining_usd: Decimal,
    pub remaining_usd_cents: UsdCents,
    pub reserved_usd: Decimal,
    pub reserved_usd_cents: UsdCents,
    pub spent_usd: Decimal,
    pub spent_usd_cents: UsdCents,
    pub refunded_usd: Decimal,
    pub refunded_usd_cents: UsdCents,
    /// Of a cancelled escrow: what Stripe has refunded to the card of its card deposits, as its
    /// refunds reported it (each deposit's largest refund, Stripe's running total, at most its
    /// charge; the whole charge for a refund that named no amount in dollars). What the cancel
    /// owed back (`refunded_usd`) less this is still to go back, by card or by hand (cash is
    /// returned by hand and not recorded here). `null` for an escrow not cancelled.
    pub returned_to_card_usd: Option<Decimal>,
    pub returned_to_card_usd_cents: Option<UsdCents>,
    pub daily_limit_usd: Option<Decimal>,
    pub daily_limit_usd_cents: Option<UsdCents>,
    /// Approved today (Nairobi) against the daily limit; `null` without a limit (there is
    /// nothing to count it against, and it is not counted). Always present, as every field.
    pub approved_today_usd: Option<Decimal>,
    pub approved_today_usd_cents: Option<UsdCents>,
    /// What a depositor quotes (the escrow id).
    pub deposit_reference: EscrowId,
    /// The same as a short code a person reads out and types at the kiosk (`K7M3Q9P2`, shown
    /// as `K7M3-Q9P2`); `GET /escrows?ref=` finds it.
    pub short_ref: Option<String>,
    pub sender_id: UserId,
    /// Why the operator must look at it (a deposit refunded or disputed): admins only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flag_reason: Option<String>,
    /// Why its money is held, approvals and its cancel refused (`409`) until an admin acts:
    /// `card_refunded` (a card deposit of it was refunded or disputed at Stripe: the escrow is
    /// flagged), `payout_flagged` (a failed payout of it is flagged: M-Pesa reported it paid
    /// after all). For its sender, its recipient and admins; absent when nothing holds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<&'static str>,
    pub recipient: RecipientView,
    pub categories: Vec<CategoryView>,
    pub created_at: String,
    pub updated_at: String,
}

columns! {
    /// An escrow's columns (`e`), its recipient's phone (`u`), today's approvals (`d`) and one
    /// of its categories (`c`): one row per category.
    ESCROW_COLUMNS, E {
        ID = "e.id",
        SENDER = "e.sender_id",
        RECIPIENT = "e.recipient_id",
        STATUS = "e.status",
        TOTAL = "e.total_usd_cents",
        DEPOSITED = "e.deposited_usd_cents",
        REMAINING = "e.remaining_usd_cents",
        RESERVED = "e.reserved_usd_cents",
        SPENT = "e.spent_usd_cents",
        REFUNDED = "e.refunded_usd_cents",
        DAILY_LIMIT = "e.daily_limit_usd_cents",
        CREATED = "e.created_at",
        UPDATED = "e.updated_at",
        FLAG_REASON = "e.flag_reason",
        RECIPIENT_NAME = "e.recipient_name_enc",
        SHORT_REF = "e.short_ref",
        RECIPIENT_PHONE = "u.phone_enc",
        APPROVED_TODAY = "d.approved_usd_cents",
        CATEGORY_ID = "c.id",
        CATEGORY_NAME = "c.name",
        CATEGORY_ALLOCATED = "c.allocated_usd_cents",
        CATEGORY_REMAINING = "c.remaining_usd_cents",
        CATEGORY_RESERVED = "c.reserved_usd_cents",
        CATEGORY_SPENT = "c.spent_usd_cents",
        CATEGORY_REFUNDED = "c.refunded_usd_cents",
        // The hold `payouts::refuse_if_held` applies for a flagged failed payout.
        PAYOUT_HELD = super::payouts::failed_payout_flagged!("e.id"),
        // `EscrowView::returned_to_card_usd_cents`: read for a cancelled escrow only.
        RETURNED_TO_CARD = concat!(
            "CASE WHEN e.status = 'cancelled' THEN ",
            super::deposits::returned_to_card!("e.id"),
            " END"
        ),
    }
}

/// What `ESCROW_COLUMNS` are selected from: the escrows the inner `WHERE` picks, in its order,
/// with their recipient, today's approvals (or a later day's, which approvals count against
/// after the clock was set back: `requests::limit_day`) and their categories.
const ESCROW_FROM: &str = concat!(
    "FROM (SELECT * FROM escrows WHERE {where}) e
    JOIN users u ON u.id = e.recipient_id
    LEFT JOIN daily_spend d ON d.escrow_id = e.id AND d.day = COALESCE(",
    super::requests::limit_day_counted!("e.id"),
    ", :today)
    JOIN spending_categories c ON c.escrow_id = e.id
    ORDER BY e.id DESC, c.position"
);

fn category_from_row(r: &Row<'_>) -> Result<CategoryView> {
    let amount = |column: E| -> Result<(Decimal, UsdCents)> {
        let cents: UsdCents = r.get(column as usize)?;
        Ok((cents.major(), cents))
    };
    let (allocated_usd, allocated_usd_cents) = amount(E::CATEGORY_ALLOCATED)?;
    let (remaining_usd, remaining_usd_cents) = amount(E::CATEGORY_REMAINING)?;
    let (reserved_usd, reserved_usd_cents) = amount(E::CATEGORY_RESERVED)?;
    let (spent_usd, spent_usd_cents) = amount(E::CATEGORY_SPENT)?;
    let (refunded_usd, refunded_usd_cents) = amount(E::CATEGORY_REFUNDED)?;
    Ok(CategoryView {
        category_id: r.get(E::CATEGORY_ID as usize)?,
        name: r.get(E::CATEGORY_NAME as usize)?,
        allocated_usd,
        allocated_usd_cents,
        remaining_usd,
        remaining_usd_cents,
        reserved_usd,
        reserved_usd_cents,
        spent_usd,
        spent_usd_cents,
        refunded_usd,
        refunded_usd_cents,
    })
}

fn escrow_from_row(keys: &Keys, viewer: &Actor, r: &Row<'_>) -> Result<EscrowView> {
    let id: EscrowId = r.get(E::ID as usize)?;
    let recipient_id: UserId = r.get(E::RECIPIENT as usize)?;
    let amount = |column: E| -> Result<(Decimal, UsdCents)> {
        let cents: UsdCents = r.get(column as usize)?;
        Ok((cents.major(), cents))
    };
    let (total_amount_usd, total_amount_usd_cents) = amount(E::TOTAL)?;
    let (deposited_usd, deposited_usd_cents) = amount(E::DEPOSITED)?;
    let (remaining_usd, remaining_usd_cents) = amount(E::REMAINING)?;
    let (reserved_usd, reserved_usd_cents) = amount(E::RESERVED)?;
    let (spent_usd, spent_usd_cents) = amount(E::SPENT)?;
    let (refunded_usd, refunded_usd_cents) = amount(E::REFUNDED)?;
    let returned_to_card: Option<UsdCents> = r.get(E::RETURNED_TO_CARD as usize)?;
    let daily_limit: Option<UsdCents> = r.get(E::DAILY_LIMIT as usize)?;
    let approved_today = daily_limit.map(|_| -> Result<UsdCents> {
        Ok(r.get::<_, Option<UsdCents>>(E::APPROVED_TODAY as usize)?
            .unwrap_or(UsdCents::ZERO))
    });
    let approved_today = approved_today.transpose()?;
    let name = match r.get::<_, Option<String>>(E::RECIPIENT_NAME as usize)? {
        Some(enc) => Some(keys.open(EncryptedColumn::RecipientName, id.as_str(), &enc)?)
            .filter(|name| !name.is_empty()),
        None => None,
    };
    let phone = match r.get::<_, Option<String>>(E::RECIPIENT_PHONE as usize)? {
        Some(enc) => Some(decrypt_phone(keys, &recipient_id, &enc)?),
        None => None,
    };
    let phone = phone.map(|p| {
        if viewer.role == Role::Admin {
            p.e164()
        } else {
            p.masked()
        }
    });
    let staff = matches!(viewer.role, Role::Admin | Role::Agent);
    let sender_id: UserId = r.get(E::SENDER as usize)?;
    let flag_reason: Option<String> = r.get(E::FLAG_REASON as usize)?;
    // Its owners' business, as a held payout is (`PayoutView::seen_by`).
    let owner = viewer.is_admin() || viewer.is(&sender_id) || viewer.is(&recipient_id);
    let held = match (
        flag_reason.is_some(),
        r.get::<_, bool>(E::PAYOUT_HELD as usize)?,
    ) {
        _ if !owner => None,
        (true, _) => Some("card_refunded"),
        (false, true) => Some("payout_flagged"),
        (false, false) => None,
    };
    Ok(EscrowView {
        deposit_reference: id.clone(),
        short_ref: r.get(E::SHORT_REF as usize)?,
        escrow_id: id,
        status: r.get(E::STATUS as usize)?,
        total_amount_usd,
        total_amount_usd_cents,
        deposited_usd,
        deposited_usd_cents,
        remaining_usd,
        remaining_usd_cents,
        reserved_usd,
        reserved_usd_cents,
        spent_usd,
        spent_usd_cents,
        refunded_usd,
        refunded_usd_cents,
        returned_to_card_usd: returned_to_card.map(UsdCents::major),
        returned_to_card_usd_cents: returned_to_card,
        daily_limit_usd: daily_limit.map(UsdCents::major),
        daily_limit_usd_cents: daily_limit,
        approved_today_usd: approved_today.map(UsdCents::major),
        approved_today_usd_cents: approved_today,
        sender_id,
        flag_reason: flag_reason.filter(|_| viewer.role == Role::Admin),
        held,
        recipient: RecipientView {
            user_id: staff.then_some(recipient_id),
            name,
            phone,
        },
        categories: Vec::new(),
        created_at: r.get(E::CREATED as usize)?,
        updated_at: r.get(E::UPDATED as usize)?,
    })
}

/// The escrows' query with this inner `WHERE`.
fn escrow_select(where_clause: &str) -> String {
    format!(
        "SELECT {ESCROW_COLUMNS} {}",
        ESCROW_FROM.replace("{where}", where_clause)
    )
}

/// Runs `escrow_select` with this inner `WHERE` and folds its rows into escrows.
fn query_escrows(
    conn: &Connection,
    keys: &Keys,
    viewer: &Actor,
    where_clause: &str,
    params: &[(&str, &dyn rusqlite::ToSql)],
) -> Result<Vec<EscrowView>> {
    let sql = escrow_select(where_clause);
    let mut escrows: Vec<EscrowView> = Vec::new();
    named_rows(conn, &sql, params, |r| {
        let id: EscrowId = r.get(E::ID as usize)?;
        let same = escrows.last().is_some_and(|e| e.escrow_id == id);
        if !same {
            escrows.push(escrow_from_row(keys, viewer, r)?);
        }
        if let Some(escrow) = escrows.last_mut() {
            escrow.categories.push(category_from_row(r)?);
        }
        Ok(())
    })?;
    Ok(escrows)
}

/// `GET /escrows/:id`: the escrow as the viewer may see it (phone masked but for admins).
pub fn escrow(
    conn: &Connection,
    keys: &Keys,
    viewer: &Actor,
    escrow_id: &EscrowId,
) -> Result<EscrowView> {
    EscrowParties::load_visible(conn, escrow_id, viewer)?;
    let (today, tomorrow) = super::requests::limit_days(crate::time::now_unix());
    query_escrows(
        conn,
        keys,
        viewer,
        "id = :id",
        &[
            (":id", escrow_id),
            (":today", &today),
            (":tomorrow", &tomorrow),
        ],
    )?
    .pop()
    .ok_or(Error::NotFound { what: "escrow" })
}

/// Filters of `GET /escrows`.
#[derive(Debug, Default, Clone)]
pub struct EscrowFilter {
    /// Only this status.
    pub status: Option<EscrowStatus>,
    /// Only escrows of the recipient with this blind index (agents and admins).
    pub recipient_phone_index: Option<String>,
    /// Only the escrow with this short reference.
    pub short_ref: Option<String>,
}

/// `escrows`' conditions, order and limit: only the conditions that apply, each a plain
/// comparison (a `(:x IS NULL OR col = :x)` form hides every index from the planner, which then
/// walks all escrows by id). It names `:cursor`, `:limit` and, as they apply, `:viewer`,
/// `:scope` (a token's sender), `:status`, `:phone` and `:short_ref`.
fn escrow_page_where(viewer: &Actor, filter: &EscrowFilter) -> String {
    let mut conditions = vec!["id < :cursor".to_string()];
    conditions.extend(the_viewers(viewer, ""));
    if filter.status.is_some() {
        // A sender's escrows of a status have an index of their own (schema 22; before it, a
        // sender's completed escrows read every escrow they had). A recipient's own index is
        // the narrower one (`+` keeps the planner off the status index, which holds everyone's
        // escrows).
        conditions.push(match viewer.role {
            Role::Recipient => "+status = :status".into(),
            Role::Sender | Role::Agent | Role::Admin => "status = :status".into(),
        });
    }
    if filter.recipient_phone_index.is_some() {
        conditions.push("recipient_id = (SELECT id FROM users WHERE phone_index = :phone)".into());
    }
    if filter.short_ref.is_some() {
        conditions.push("short_ref = :short_ref".into());
    }
    format!("{} ORDER BY id DESC LIMIT :limit", conditions.join(" AND "))
}

/// The conditions that keep a list to the escrows `viewer` may see, by `:viewer` and `:scope`
/// (a token's sender): a sender's own, a recipient's own (of one sender, with a token that
/// sender gave), every escrow for agents and admins. `escrow` is the escrows' alias and a dot
/// (`e.`), or nothing.
fn the_viewers(viewer: &Actor, escrow: &str) -> Vec<String> {
    let mut conditions = Vec::new();
    match viewer.role {
        Role::Sender => conditions.push(format!("{escrow}sender_id = :viewer")),
        Role::Recipient => conditions.push(format!("{escrow}recipient_id = :viewer")),
        Role::Agent | Role::Admin => {}
    }
    if viewer.sender_scope.is_some() {
        conditions.push(format!("{escrow}sender_id = :scope"));
    }
    conditions
}

/// `GET /escrows`: the viewer's escrows (all for admins and agents), newest first.
pub fn escrows(
    conn: &Connection,
    keys: &Keys,
    viewer: &Actor,
    filter: &EscrowFilter,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page<EscrowView>> {
    let (today, tomorrow) = super::requests::limit_days(crate::time::now_unix());
    let cursor = cursor.unwrap_or("~");
    let fetch = limit + 1;
    let where_clause = escrow_page_where(viewer, filter);
    let params: [(&str, &dyn rusqlite::ToSql); 9] = [
        (":cursor", &cursor),
        (":limit", &fetch),
        (":today", &today),
        (":tomorrow", &tomorrow),
        (":viewer", &viewer.id),
        (":scope", &viewer.sender_scope),
        (":status", &filter.status),
        (":phone", &filter.recipient_phone_index),
        (":short_ref", &filter.short_ref),
    ];
    let rows = query_escrows(conn, keys, viewer, &where_clause, &params)?;
    Ok(Page::of(rows, limit, |e| e.escrow_id.to_string()))
}

// ---------------------------------------------------------------------------------------------
// Payouts

/// A payout: what the payout worker did and what M-Pesa answered.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)] // named for what they hold
pub struct PayoutView {
    pub payout_id: PayoutId,
    pub payment_request_id: PaymentRequestId,
    pub escrow_id: EscrowId,
    pub status: PayoutStatus,
    /// The M-Pesa API it goes through.
    pub method: PayoutCommand,
    /// KES, decimal (as every amount, in both spellings).
    pub amount_kes: Decimal,
    pub amount_kes_cents: KesCents,
    /// USD, decimal: what the escrow pays for it.
    pub amount_usd: Decimal,
    pub amount_usd_cents: UsdCents,
    /// Who pays it: `simulator` (no real money moves) or `daraja`; `null` until it is sent.
    pub gateway: Option<String>,
    /// Paid (or to be paid) by the simulator: no real money moves, its receipt is made up.
    pub simulated: bool,
    /// Our id at Daraja (admins only: a result naming it is believed by its id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub originator_conversation_id: Option<String>,
    /// Daraja's id, once it accepted the payout (admins only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    pub mpesa_receipt: Option<String>,
    pub result_code: Option<String>,
    pub result_desc: Option<String>,
    /// Why it failed, as a word (`FailureReason`); `null` unless failed.
    pub failure_reason: Option<crate::domain::FailureReason>,
    /// The same in a plain sentence for the person who asked (`resultCode` and `resultDesc`
    /// keep M-Pesa's own).
    pub failure_text: Option<&'static str>,
    pub attempts: i64,
    /// Waiting for the operator: its outcome is unknown or contradicted.
    pub flagged: bool,
    pub flag_reason: Option<String>,
    /// Queued and held with its escrow, flagged because a card deposit of it was refunded or
    /// disputed at Stripe: not sent until an admin clears the flag (for its owners and admins).
    pub held: bool,
    pub created_at: String,
    pub sent_at: Option<String>,
    /// When its result was recorded.
    pub result_at: Option<String>,
    /// The payee as M-Pesa's result of the paid payout names it (`"888880 - KENYA POWER"`,
    /// `"254712345678 - JANE WANJIKU"`), beside the name its requester typed; `null` before
    /// it is paid (and for payouts paid before 2026-12-07), and for those who do not see the
    /// request's payee name.
    pub mpesa_payee_name: Option<String>,
    /// Sealed (`opened` opens it into `mpesa_payee_name`).
    #[serde(skip)]
    pub(crate) sealed_payee: Option<String>,
    /// An admin's words on a failure resolved by hand, sealed (`opened` puts them in
    /// `result_desc`).
    #[serde(skip)]
    pub(crate) sealed_reason: Option<String>,
}

columns! {
    /// The payout columns, as every query that reads a `PayoutView` names them.
    PAYOUT_COLUMNS, P {
        ID = "p.id",
        REQUEST = "p.payment_request_id",
        ESCROW = "p.escrow_id",
        STATUS = "p.status",
        COMMAND = "p.command",
        KES = "p.amount_kes_cents",
        USD = "p.amount_usd_cents",
        ORIGINATOR = "p.originator_conversation_id",
        CONVERSATION = "p.conversation_id",
        GATEWAY = "p.gateway",
        RECEIPT = "p.receipt",
        RESULT_CODE = "p.result_code",
        RESULT_DESC = "p.result_desc",
        ATTEMPTS = "p.attempts",
        FLAGGED = "p.flagged",
        FLAG_REASON = "p.flag_reason",
        CREATED = "p.created_at",
        SENT = "p.sent_at",
        RESULT_AT = "p.result_at",
        RESOLVE_REASON = "p.resolve_reason_enc",
        PAYEE_NAME = "p.payee_name_enc",
        HELD = concat!("(p.status = 'queued' AND ", super::payouts::held_with_escrow!("p"), ")"),
    }
}

impl PayoutView {
    /// A payout from a row whose payout columns (`PAYOUT_COLUMNS`) start at `at`.
    fn from_row_at(r: &Row<'_>, at: usize) -> Result<PayoutView> {
        let col = |c: P| at + c as usize;
        let status: PayoutStatus = r.get(col(P::STATUS))?;
        let gateway: Option<String> = r.get(col(P::GATEWAY))?;
        let result_code: Option<String> = r.get(col(P::RESULT_CODE))?;
        let failure_reason = (status == PayoutStatus::Failed)
            .then(|| crate::domain::FailureReason::of_code(result_code.as_deref().unwrap_or("")));
        Ok(PayoutView {
            payout_id: r.get(col(P::ID))?,
            payment_request_id: r.get(col(P::REQUEST))?,
            escrow_id: r.get(col(P::ESCROW))?,
            status,
            method: r.get(col(P::COMMAND))?,
            amount_kes: r.get::<_, KesCents>(col(P::KES))?.major(),
            amount_kes_cents: r.get(col(P::KES))?,
            amount_usd: r.get::<_, UsdCents>(col(P::USD))?.major(),
            amount_usd_cents: r.get(col(P::USD))?,
            simulated: gateway.as_deref() == Some("simulator"),
            gateway,
            originator_conversation_id: r.get(col(P::ORIGINATOR))?,
            conversation_id: r.get(col(P::CONVERSATION))?,
            mpesa_receipt: r.get(col(P::RECEIPT))?,
            result_code,
            result_desc: r.get(col(P::RESULT_DESC))?,
            failure_reason,
            failure_text: failure_reason.map(crate::domain::FailureReason::text),
            attempts: r.get(col(P::ATTEMPTS))?,
            flagged: r.get(col(P::FLAGGED))?,
            flag_reason: r.get(col(P::FLAG_REASON))?,
            held: r.get(col(P::HELD))?,
            created_at: r.get(col(P::CREATED))?,
            sent_at: r.get(col(P::SENT))?,
            result_at: r.get(col(P::RESULT_AT))?,
            sealed_reason: r.get(col(P::RESOLVE_REASON))?,
            mpesa_payee_name: None,
            sealed_payee: r.get(col(P::PAYEE_NAME))?,
        })
    }

    /// The payout with an admin's sealed words on its failure opened, as its `resultDesc`,
    /// and M-Pesa's payee as `mpesaPayeeName`.
    pub(crate) fn opened(mut self, keys: &Keys) -> Result<PayoutView> {
        if let Some(sealed) = self.sealed_reason.take() {
            self.result_desc = Some(keys.open(
                EncryptedColumn::ResolveReason,
                self.payout_id.as_str(),
                &sealed,
            )?);
        }
        if let Some(sealed) = self.sealed_payee.take() {
            self.mpesa_payee_name =
                Some(keys.open(EncryptedColumn::PayeeName, self.payout_id.as_str(), &sealed)?);
        }
        Ok(self)
    }

    fn from_row(r: &Row<'_>) -> Result<PayoutView> {
        Self::from_row_at(r, 0)
    }

    /// A payout just queued, as `from_row` reads the row the approval inserts (a test holds
    /// the approval's answer to a read of it).
    pub(crate) fn queued(
        payout_id: &PayoutId,
        payment_request_id: &PaymentRequestId,
        escrow_id: &EscrowId,
        method: PayoutCommand,
        amount_kes_cents: KesCents,
        amount_usd_cents: UsdCents,
        created_at: &str,
    ) -> PayoutView {
        PayoutView {
            payout_id: payout_id.clone(),
            payment_request_id: payment_request_id.clone(),
            escrow_id: escrow_id.clone(),
            status: PayoutStatus::Queued,
            method,
            amount_kes: amount_kes_cents.major(),
            amount_kes_cents,
            amount_usd: amount_usd_cents.major(),
            amount_usd_cents,
            gateway: None,
            simulated: false,
            originator_conversation_id: Some(payout_id.originator_conversation_id().to_string()),
            conversation_id: None,
            mpesa_receipt: None,
            result_code: None,
            result_desc: None,
            failure_reason: None,
            failure_text: None,
            attempts: 0,
            flagged: false,
            flag_reason: None,
            held: false,
            created_at: created_at.to_string(),
            sent_at: None,
            result_at: None,
            sealed_reason: None,
            mpesa_payee_name: None,
            sealed_payee: None,
        }
    }

    /// The payout as `viewer` may see it: Daraja's ids are for admins; M-Pesa's words and a
    /// flag's reason, which may name the payee ("… - JANE WANJIKU"), for the request's owners
    /// (`owner`). The failure's kind (`failureReason`, its text) is M-Pesa's code in our
    /// words, for everyone.
    pub(crate) fn seen_by(mut self, viewer: &Actor, owner: bool) -> PayoutView {
        if !viewer.is_admin() {
            self.originator_conversation_id = None;
            self.conversation_id = None;
        }
        if !owner {
            // Not even opened for them.
            self.result_desc = None;
            self.sealed_reason = None;
            self.flag_reason = None;
            // As the request's payee name is not, for them.
            self.sealed_payee = None;
            // It says that the escrow is flagged, which is its owners' business.
            self.held = false;
        }
        self
    }
}

/// One payout (admins).
pub fn payout(conn: &Connection, keys: &Keys, payout_id: &PayoutId) -> Result<PayoutView> {
    let sql = format!("SELECT {PAYOUT_COLUMNS} FROM payouts p WHERE p.id = ?1");
    one_row(conn, &sql, [payout_id], PayoutView::from_row, "payout")?.opened(keys)
}

/// A page of payouts matching `where_clause` (over `p`, with `?1` its parameter), after
/// `cursor` in the order `ascending` (by id) says.
pub fn payouts_where(
    conn: &Connection,
    keys: &Keys,
    where_clause: &str,
    param: &dyn rusqlite::ToSql,
    ascending: bool,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page<PayoutView>> {
    let (after, order) = if ascending {
        ("p.id > ?3", "p.id")
    } else {
        ("p.id < ?3", "p.id DESC")
    };
    let sql = format!(
        "SELECT {PAYOUT_COLUMNS} FROM payouts p WHERE {where_clause} AND (?3 IS NULL OR {after})
         ORDER BY {order} LIMIT ?2"
    );
    let rows = all_rows(
        conn,
        &sql,
        params![param, limit + 1, cursor],
        PayoutView::from_row,
    )?
    .into_iter()
    .map(|p| p.opened(keys))
    .collect::<Result<Vec<_>>>()?;
    Ok(Page::of(rows, limit, |p| p.payout_id.to_string()))
}

// ---------------------------------------------------------------------------------------------
// Payment requests

/// `GET /payment-requests/:id`: the request, its merchant as the viewer may see it, and its
/// payout once approved.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)] // named for what they hold
pub struct PaymentRequestView {
    pub payment_request_id: PaymentRequestId,
    pub escrow_id: EscrowId,
    pub category: String,
    pub status: RequestStatus,
    pub amount_kes: Decimal,
    pub amount_kes_cents: KesCents,
    pub amount_usd: Decimal,
    pub amount_usd_cents: UsdCents,
    /// KES per USD, fixed when the request was made.
    pub exchange_rate: Decimal,
    /// The merchant's name: only for the request's owners.
    pub merchant_name: Option<String>,
    /// Masked (`***880`) for anyone but the request's owners.
    pub merchant_account: MerchantAccountView,
    /// Only for the request's owners.
    pub note: Option<String>,
    /// Who asked; `None` (null) to the escrow's sender when it was the recipient, whose user
    /// id only staff see (its time would tell whether the phone had an account before).
    pub requested_by: Option<UserId>,
    pub decided_by: Option<UserId>,
    pub decided_at: Option<String>,
    /// A rejection's reason, or why the request was cancelled with its escrow: only for the
    /// request's owners.
    pub reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// When it expires if it is not approved by then.
    pub expires_at: String,
    pub payout: Option<PayoutView>,
}

/// A waiting request past its expiry that the expiry sweep has not marked yet (`r`).
macro_rules! expired_unswept {
    () => {
        "(r.status = 'pending_approval' AND r.expires_at <= strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))"
    };
}

columns! {
    /// The request columns (`r`, its category `c`, escrow `e`); a request's status as the API
    /// shows it: a waiting request past its expiry is `expired`, whether or not the expiry
    /// sweep has marked it yet.
    REQUEST_COLUMNS, R {
        ID = "r.id",
        ESCROW = "r.escrow_id",
        CATEGORY = "c.name",
        REQUESTED_BY = "r.requested_by",
        STATUS = concat!("CASE WHEN ", expired_unswept!(), " THEN 'expired' ELSE r.status END"),
        EXPIRES = "r.expires_at",
        KES = "r.amount_kes_cents",
        USD = "r.amount_usd_cents",
        RATE = "r.rate_kes_per_usd_e4",
        MERCHANT_NAME = "r.merchant_name_enc",
        MERCHANT_ACCOUNT = "r.merchant_account_enc",
        NOTE = "r.note_enc",
        DECIDED_BY = "r.decided_by",
        // As the sweep writes them: decided, and last changed, when it expired.
        DECIDED_AT = concat!("CASE WHEN ", expired_unswept!(), " THEN r.expires_at ELSE r.decided_at END"),
        REASON = "r.decision_reason_enc",
        CREATED = "r.created_at",
        UPDATED = concat!("CASE WHEN ", expired_unswept!(), " THEN r.expires_at ELSE r.updated_at END"),
        SENDER = "e.sender_id",
        RECIPIENT = "e.recipient_id",
    }
}

/// The request columns and its payout's, if any (`LEFT JOIN`: `NULL`s without one).
fn request_select(where_clause: &str) -> String {
    select_requests(
        PAYOUT_COLUMNS,
        "LEFT JOIN payouts p ON p.payment_request_id = r.id",
        "",
        where_clause,
    )
}

/// `payment_requests`' query: only the conditions that apply (see `escrows`), so that the
/// planner can start from an escrow's requests, an owner's escrows, the index of a status or
/// the waiting requests' index. It names `:cursor`, `:limit` and, as they apply, `:viewer`,
/// `:scope` (a token's sender), `:escrow` and `:now`.
fn request_page_sql(viewer: &Actor, escrow_given: bool, status: Option<RequestStatus>) -> String {
    let mut conditions = vec!["r.id < :cursor".to_string()];
    conditions.extend(the_viewers(viewer, "e."));
    if escrow_given {
        conditions.push("r.escrow_id = :escrow".into());
    }
    // With an owner or an escrow named, their requests are the narrower set: `+` keeps the
    // planner off the index of a status, which holds everyone's. The waiting requests' partial
    // index holds the few not decided yet: for them, a literal comparison that it serves.
    let owned = conditions.len() > 1;
    let decided = |status: &str| match (owned, status) {
        (true, _) => format!(" AND +r.status = '{status}'"),
        // Found newest first at once: most requests are paid.
        (false, "paid") => " AND r.status = 'paid'".to_string(),
        // The partial index of the other statuses serves a query that names its conditions.
        (false, _) => format!(
            " AND r.status = '{status}' AND r.status <> 'paid' AND r.status <> 'pending_approval'"
        ),
    };
    let alternatives = match status {
        None => vec![String::new()],
        Some(RequestStatus::PendingApproval) => {
            vec![" AND r.status = 'pending_approval' AND r.expires_at > :now".to_string()]
        }
        // Marked expired, or still waiting past its time (until the sweep marks it): a page of
        // each, merged.
        Some(RequestStatus::Expired) => vec![
            decided("expired"),
            " AND r.status = 'pending_approval' AND r.expires_at <= :now".to_string(),
        ],
        Some(other) => vec![decided(other.as_str())],
    };
    request_page_select(&conditions.join(" AND "), &alternatives)
}

/// A page of requests, newest first: the `:limit` newest that meet `conditions` (on `r`, the
/// request, and `e`, its escrow) and one of `alternatives` (each ` AND …`, a page of each
/// merged), found first from the indexes, and only they read whole with their category and
/// payout. Read whole before the sort, a sender's page read every request they ever had (20 ms
/// for a page of a sender's 2,000 requests; 1.3 ms found first).
fn request_page_select(conditions: &str, alternatives: &[String]) -> String {
    let page = |alternative: &String| {
        format!(
            "SELECT r.id FROM payment_requests r JOIN escrows e ON e.id = r.escrow_id
             WHERE {conditions}{alternative} ORDER BY r.id DESC LIMIT :limit"
        )
    };
    let ids = match alternatives {
        [one] => page(one),
        many => format!(
            "SELECT id FROM ({}) ORDER BY id DESC LIMIT :limit",
            many.iter()
                .map(|a| format!("SELECT id FROM ({})", page(a)))
                .collect::<Vec<_>>()
                .join(" UNION ALL ")
        ),
    };
    request_select(&format!("r.id IN ({ids}) ORDER BY r.id DESC"))
}

/// The columns of a request's view, which `waiting_request_select`'s extra columns follow.
pub(crate) const REQUEST_VIEW_WIDTH: usize = R::COUNT as usize + P::COUNT as usize;

/// `request_select` for a request that has no payout yet (a waiting one), with `extra` columns
/// (`, a, b`) after the view's (from `REQUEST_VIEW_WIDTH` on), read with `request_from_row`:
/// the approval reads its request once, for its checks and for its answer. The payout's
/// columns are `NULL`, without the join that would look for one.
pub(crate) fn waiting_request_select(extra: &str, where_clause: &str) -> String {
    select_requests(
        &vec!["NULL"; P::COUNT as usize].join(", "),
        "",
        extra,
        where_clause,
    )
}

/// The request columns, then `payout_columns` (from `payout_join`), then `extra`.
fn select_requests(
    payout_columns: &str,
    payout_join: &str,
    extra: &str,
    where_clause: &str,
) -> String {
    format!(
        "SELECT {REQUEST_COLUMNS}, {payout_columns}{extra}
         FROM payment_requests r
         JOIN spending_categories c ON c.id = r.category_id
         JOIN escrows e ON e.id = r.escrow_id
         {payout_join}
         WHERE {where_clause}"
    )
}

/// A user id on a request, as `viewer` sees it: the recipient's own id is for staff and the
/// recipient, never for a sender (its time would tell whether the phone had an account before
/// the escrow); a sender reads null, "the recipient".
fn unless_recipient_to_sender(
    viewer: &Actor,
    user: Option<UserId>,
    recipient_id: &UserId,
) -> Option<UserId> {
    user.filter(|user| !(viewer.role == Role::Sender && user == recipient_id))
}

pub(crate) fn request_from_row(
    keys: &Keys,
    viewer: &Actor,
    r: &Row<'_>,
) -> Result<PaymentRequestView> {
    let id: PaymentRequestId = r.get(R::ID as usize)?;
    let requested_by: UserId = r.get(R::REQUESTED_BY as usize)?;
    let sender_id: UserId = r.get(R::SENDER as usize)?;
    let recipient_id: UserId = r.get(R::RECIPIENT as usize)?;
    // Owners see the merchant in full: the escrow's two parties, whoever asked, admins.
    let owner = viewer.is_admin()
        || viewer.is(&sender_id)
        || viewer.is(&recipient_id)
        || viewer.is(&requested_by);
    let row = id.as_str();
    // What only owners see is not even decrypted for anyone else.
    let open = |column: EncryptedColumn, stored: Option<String>| -> Result<Option<String>> {
        match stored {
            Some(s) if owner => keys.open(column, row, &s).map(Some),
            _ => Ok(None),
        }
    };
    let merchant_name = open(
        EncryptedColumn::MerchantName,
        r.get(R::MERCHANT_NAME as usize)?,
    )?;
    let account = MerchantAccount::from_stored(&keys.open(
        EncryptedColumn::MerchantAccount,
        row,
        &r.get::<_, String>(R::MERCHANT_ACCOUNT as usize)?,
    )?)?;
    let mut merchant_account = account.view();
    if !owner {
        merchant_account.number = mask_number(&merchant_account.number);
        merchant_account.account_reference = merchant_account
            .account_reference
            .as_deref()
            .map(mask_number);
    }
    let note = open(EncryptedColumn::RequestNote, r.get(R::NOTE as usize)?)?;
    let reason = open(EncryptedColumn::DecisionReason, r.get(R::REASON as usize)?)?;
    let amount_kes: KesCents = r.get(R::KES as usize)?;
    let amount_usd: UsdCents = r.get(R::USD as usize)?;
    let rate: RateKesPerUsd = r.get(R::RATE as usize)?;
    let payout = match r.get::<_, Option<PayoutId>>(R::COUNT as usize + P::ID as usize)? {
        Some(_) => Some(
            PayoutView::from_row_at(r, R::COUNT as usize)?
                .seen_by(viewer, owner)
                .opened(keys)?,
        ),
        None => None,
    };
    Ok(PaymentRequestView {
        payment_request_id: id,
        escrow_id: r.get(R::ESCROW as usize)?,
        category: r.get(R::CATEGORY as usize)?,
        status: r.get(R::STATUS as usize)?,
        amount_kes: amount_kes.major(),
        amount_kes_cents: amount_kes,
        amount_usd: amount_usd.major(),
        amount_usd_cents: amount_usd,
        exchange_rate: rate.decimal(),
        merchant_name,
        merchant_account,
        note,
        requested_by: unless_recipient_to_sender(viewer, Some(requested_by), &recipient_id),
        decided_by: unless_recipient_to_sender(
            viewer,
            r.get(R::DECIDED_BY as usize)?,
            &recipient_id,
        ),
        decided_at: r.get(R::DECIDED_AT as usize)?,
        reason,
        created_at: r.get(R::CREATED as usize)?,
        updated_at: r.get(R::UPDATED as usize)?,
        expires_at: r.get(R::EXPIRES as usize)?,
        payout,
    })
}

/// `GET /payment-requests/:id`.
pub fn payment_request(
    conn: &Connection,
    keys: &Keys,
    viewer: &Actor,
    request_id: &PaymentRequestId,
) -> Result<PaymentRequestView> {
    let what = "payment request";
    // Made once, not at every call.
    static BY_ID: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| request_select("r.id = ?1"));
    one_row(
        conn,
        &BY_ID,
        [request_id],
        |r| {
            let parties = EscrowParties {
                sender_id: r.get(R::SENDER as usize)?,
                recipient_id: r.get(R::RECIPIENT as usize)?,
                status: EscrowStatus::Active, // not used for visibility
            };
            if !parties.visible_to(viewer) {
                return Err(Error::NotFound { what });
            }
            request_from_row(keys, viewer, r)
        },
        what,
    )
}

/// `GET /payment-requests`: requests the viewer may see, newest first, optionally of one
/// escrow and one status.
pub fn payment_requests(
    conn: &Connection,
    keys: &Keys,
    viewer: &Actor,
    escrow_id: Option<&EscrowId>,
    status: Option<RequestStatus>,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page<PaymentRequestView>> {
    if let Some(escrow_id) = escrow_id {
        EscrowParties::load_visible(conn, escrow_id, viewer)?;
    }
    let cursor = cursor.unwrap_or("~");
    let fetch = limit + 1;
    let now = crate::time::now_rfc3339();
    let sql = request_page_sql(viewer, escrow_id.is_some(), status);
    let named: [(&str, &dyn rusqlite::ToSql); 6] = [
        (":cursor", &cursor),
        (":limit", &fetch),
        (":viewer", &viewer.id),
        (":scope", &viewer.sender_scope),
        (":escrow", &escrow_id),
        (":now", &now),
    ];
    let items = named_rows(conn, &sql, &named, |r| request_from_row(keys, viewer, r))?;
    Ok(Page::of(items, limit, |r| r.payment_request_id.to_string()))
}

// ---------------------------------------------------------------------------------------------
// Deposits

/// A deposit: cash recorded at a kiosk, or a Stripe PaymentIntent.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)] // named for what they hold
pub struct DepositView {
    pub deposit_id: DepositId,
    /// `None` for money that named no escrow we know.
    pub escrow_id: Option<EscrowId>,
    pub source: DepositSource,
    pub reference: String,
    /// The receipt number remit made for a cash deposit (`null` for card deposits).
    pub receipt_number: Option<String>,
    /// `usd`; for a card payment flagged for its currency, the currency Stripe named (`eur`),
    /// `null` when it named none.
    pub currency: Option<String>,
    /// The amount in US dollars; `null` for money in another currency (never shown as
    /// dollars: JPY 5,000 is not USD 50.00), whose amount is `amount_minor_units`.
    pub amount_usd: Option<Decimal>,
    pub amount_usd_cents: Option<UsdCents>,
    /// Money in another currency (a card payment flagged for it): Stripe's amount, in that
    /// currency's smallest unit; `null` for dollars.
    pub amount_minor_units: Option<i64>,
    /// Cash taken in shillings: the KES received and the rate they were converted at (KES per
    /// USD × 10⁴); `null` otherwise.
    pub amount_kes: Option<Decimal>,
    pub amount_kes_cents: Option<KesCents>,
    pub rate_kes_per_usd_e4: Option<i64>,
    pub status: DepositStatus,
    pub flag_reason: Option<String>,
    pub recorded_by: String,
    pub created_at: String,
    /// Refunded or disputed at Stripe after it was applied: its money may be taken back.
    pub reversal: Option<DepositReversal>,
    pub reversal_reason: Option<String>,
    pub reversal_at: Option<String>,
}

const DEPOSIT_COLUMNS: &str = "id, escrow_id, source, reference, receipt_number, amount_usd_cents,
    amount_kes_cents, rate_kes_per_usd_e4, status, flag_reason, recorded_by, created_at, reversal,
    reversal_reason, reversal_at";

impl DepositView {
    fn from_row(r: &Row<'_>) -> Result<DepositView> {
        let amount: UsdCents = r.get("amount_usd_cents")?;
        let kes: Option<KesCents> = r.get("amount_kes_cents")?;
        let flag_reason: Option<String> = r.get("flag_reason")?;
        let foreign = crate::service::deposits::flagged_currency(flag_reason.as_deref());
        let dollars = foreign.is_none().then_some(amount);
        Ok(DepositView {
            deposit_id: r.get("id")?,
            escrow_id: r.get("escrow_id")?,
            source: r.get("source")?,
            reference: r.get("reference")?,
            receipt_number: r.get("receipt_number")?,
            currency: match &foreign {
                None => Some(crate::service::deposits::USD.to_string()),
                Some(code) => code.clone(),
            },
            amount_usd: dollars.map(UsdCents::major),
            amount_usd_cents: dollars,
            amount_minor_units: foreign.is_some().then_some(amount.get()),
            amount_kes: kes.map(KesCents::major),
            amount_kes_cents: kes,
            rate_kes_per_usd_e4: r.get("rate_kes_per_usd_e4")?,
            status: r.get("status")?,
            flag_reason,
            recorded_by: r.get("recorded_by")?,
            created_at: r.get("created_at")?,
            reversal: r.get("reversal")?,
            reversal_reason: r.get("reversal_reason")?,
            reversal_at: r.get("reversal_at")?,
        })
    }
}

/// One deposit.
pub fn deposit(conn: &Connection, deposit_id: &DepositId) -> Result<DepositView> {
    let sql = format!("SELECT {DEPOSIT_COLUMNS} FROM deposits WHERE id = ?1");
    one_row(conn, &sql, [deposit_id], DepositView::from_row, "deposit")
}

/// `GET /deposits?status=&escrowId=`: deposits, newest first, so that flagged Stripe money is
/// seen and handled (admins); with `recorded_by`, only the cash that user recorded (an agent's
/// own receipts).
pub fn deposits(
    conn: &Connection,
    filter: DepositFilter,
    escrow_id: Option<&str>,
    recorded_by: Option<&str>,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page<DepositView>> {
    let (status, reversed) = match filter {
        DepositFilter::All => (None, false),
        DepositFilter::Status(status) => (Some(status), false),
        DepositFilter::Reversed => (None, true),
    };
    // Literal conditions for the rare kinds, which have partial indexes of their own.
    let cursor = cursor.unwrap_or("~");
    let fetch = limit + 1;
    let mut conditions = vec!["id < :cursor".to_string()];
    let mut params: Vec<(&str, &dyn rusqlite::ToSql)> =
        vec![(":cursor", &cursor), (":limit", &fetch)];
    if let Some(status) = status {
        conditions.push(format!("status = '{}'", status.as_str()));
    }
    if reversed {
        conditions.push("reversal IS NOT NULL".into());
    }
    if let Some(escrow_id) = &escrow_id {
        conditions.push("escrow_id = :escrow".into());
        params.push((":escrow", escrow_id));
    }
    if let Some(recorded_by) = &recorded_by {
        conditions.push("source = 'cash' AND recorded_by = :recorded_by".into());
        params.push((":recorded_by", recorded_by));
    }
    let sql = format!(
        "SELECT {DEPOSIT_COLUMNS} FROM deposits WHERE {} ORDER BY id DESC LIMIT :limit",
        conditions.join(" AND ")
    );
    let rows = all_rows(conn, &sql, params.as_slice(), DepositView::from_row)?;
    Ok(Page::of(rows, limit, |d| d.deposit_id.to_string()))
}

/// Which deposits `GET /deposits` lists.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum DepositFilter {
    /// All of them.
    All,
    /// Applied or flagged.
    Status(DepositStatus),
    /// Refunded or disputed at Stripe after they were applied.
    Reversed,
}

impl DepositFilter {
    /// Parses `status=…` of `GET /deposits`.
    pub fn parse(field: &str, text: &str) -> Result<DepositFilter> {
        match text {
            "reversed" => Ok(DepositFilter::Reversed),
            other => other
                .parse()
                .map(DepositFilter::Status)
                .map_err(|_| Error::invalid(field, "must be one of applied, flagged, reversed")),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The journal

/// One leg of a journal transaction.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JournalEntryView {
    /// The account (`available`, `world:deposits`, …).
    pub account: String,
    /// The category's name, for a category account.
    pub category: Option<String>,
    /// Signed: negative out of the account, positive into it.
    pub amount_usd: Decimal,
    /// The same in cents.
    pub amount_usd_cents: i64,
}

/// One journal transaction: its entries sum to zero.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JournalTransactionView {
    /// Its number; also the cursor of the journal's pages. The ledger's own for admins; for
    /// anyone else its place in the escrow's journal (1, 2, …): the ledger's numbers' gaps
    /// would count other people's money moving.
    pub transaction_id: i64,
    /// Why money moved (`deposit`, `approval`, …).
    pub kind: String,
    /// What it is about (a deposit, request or payout id).
    pub reference: String,
    /// When.
    pub created_at: String,
    /// Its legs.
    pub entries: Vec<JournalEntryView>,
    /// For a deposit: how the money came in, as its payer can match it (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deposit: Option<JournalDepositView>,
}

/// How a deposit came in, in a journal: what the person who paid holds (the kiosk's receipt
/// number and the shillings counted, or a card payment), not who recorded it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JournalDepositView {
    /// `cash` (at a kiosk) or `stripe` (a card).
    pub source: DepositSource,
    /// The receipt number of cash taken at a kiosk (`null` for a card, and for an agent who
    /// did not take it).
    pub receipt_number: Option<String>,
    /// Cash taken in shillings: the KES counted (`null` otherwise).
    pub amount_kes: Option<Decimal>,
    /// The same in cents.
    pub amount_kes_cents: Option<KesCents>,
    /// The rate those shillings were converted to dollars at (KES per USD × 10⁴; `null`
    /// otherwise): the sender sees what their money was counted at.
    pub rate_kes_per_usd_e4: Option<i64>,
}

/// A page of an escrow's journal (`?1` the escrow, `?2` the cursor, `?3` the page's length
/// plus one, `?4` whether the viewer sees the ledger's numbers): the escrow's transactions by
/// their chain (schema 18: from the escrow's newest, each naming the one before it, each found
/// by its key), then their entries. The walk stays in the escrow (a link to another escrow's
/// transaction ends it: `remit check` reports such a chain), only goes back (a loop, which the
/// column's `CHECK` forbids, ends it too) and, for a viewer who pages by the ledger's numbers,
/// stops at the cursor; the places in the escrow's journal count the whole chain.
const JOURNAL_PAGE: &str = "WITH RECURSIVE chain(id, prev_id, kind, reference, created_at) AS (
         SELECT lt.id, lt.prev_id, lt.kind, lt.reference, lt.created_at
         FROM escrows s JOIN ledger_transactions lt ON lt.id = s.last_transaction_id
         WHERE s.id = ?1 AND lt.escrow_id = ?1
         UNION ALL
         SELECT lt.id, lt.prev_id, lt.kind, lt.reference, lt.created_at
         FROM chain JOIN ledger_transactions lt ON lt.id = chain.prev_id
         WHERE lt.escrow_id = ?1 AND lt.id < chain.id AND (NOT ?4 OR lt.id > ?2))
     SELECT t.shown AS id, t.kind, t.reference, t.created_at, e.account, c.name AS category, e.amount_usd_cents,
            d.source AS deposit_source, d.receipt_number AS deposit_receipt, d.amount_kes_cents AS deposit_kes,
            d.rate_kes_per_usd_e4 AS deposit_rate, d.recorded_by AS deposit_recorded_by
     FROM (SELECT * FROM (SELECT id, kind, reference, created_at,
               CASE WHEN ?4 THEN id ELSE ROW_NUMBER() OVER (ORDER BY id) END AS shown
               FROM chain)
           WHERE shown > ?2 ORDER BY id LIMIT ?3) t
     JOIN ledger_entries e ON e.transaction_id = t.id
     LEFT JOIN spending_categories c ON c.id = e.category_id
     LEFT JOIN deposits d ON t.kind = 'deposit' AND d.id = t.reference
     ORDER BY t.id, e.id";

/// `GET /escrows/:id/journal`: every movement of the escrow's money, oldest first, as the
/// double-entry journal records it (each transaction's entries sum to zero).
pub fn journal(
    conn: &Connection,
    viewer: &Actor,
    escrow_id: &EscrowId,
    limit: u32,
    after: Option<i64>,
) -> Result<Page<JournalTransactionView>> {
    EscrowParties::load_visible(conn, escrow_id, viewer)?;
    let mut stmt = conn.prepare_cached(JOURNAL_PAGE)?;
    let mut rows = stmt.query(params![
        escrow_id,
        after.unwrap_or(0),
        limit + 1,
        viewer.is_admin()
    ])?;
    let mut transactions: Vec<JournalTransactionView> = Vec::new();
    while let Some(r) = rows.next()? {
        let id: i64 = r.get("id")?;
        if transactions.last().is_none_or(|t| t.transaction_id != id) {
            transactions.push(JournalTransactionView {
                transaction_id: id,
                kind: r.get("kind")?,
                reference: r.get("reference")?,
                created_at: r.get("created_at")?,
                entries: Vec::new(),
                deposit: r
                    .get::<_, Option<DepositSource>>("deposit_source")?
                    .map(|source| -> Result<JournalDepositView> {
                        // Another agent reads no receipt of cash they did not take (they read
                        // only their own deposits); the escrow's parties and admins read it.
                        let recorder: Option<String> = r.get("deposit_recorded_by")?;
                        let theirs = viewer.role != Role::Agent
                            || recorder.as_deref() == Some(viewer.id.as_str());
                        let kes: Option<KesCents> = r.get("deposit_kes")?;
                        Ok(JournalDepositView {
                            source,
                            receipt_number: if theirs {
                                r.get("deposit_receipt")?
                            } else {
                                None
                            },
                            amount_kes: kes.map(KesCents::major),
                            amount_kes_cents: kes,
                            rate_kes_per_usd_e4: r.get("deposit_rate")?,
                        })
                    })
                    .transpose()?,
            });
        }
        let cents: i64 = r.get("amount_usd_cents")?;
        if let Some(t) = transactions.last_mut() {
            t.entries.push(JournalEntryView {
                account: r.get("account")?,
                category: r.get("category")?,
                amount_usd: Decimal::of_minor(cents, 2),
                amount_usd_cents: cents,
            });
        }
    }
    Ok(Page::of(transactions, limit, |t| {
        t.transaction_id.to_string()
    }))
}

#[cfg(test)]
mod tests {
    use super::super::{Actor, Role};
    use crate::domain::{EscrowId, UserId};

    /// Two escrows whose journals interleave (a: 1, 3, 4; b: 2, 5), chained as the ledger
    /// writes them, each transaction with its two legs.
    fn two_journals() -> (rusqlite::Connection, EscrowId, EscrowId, Actor) {
        let conn = crate::store::migrated_in_memory().unwrap();
        let id = |prefix: &str, n: u32| format!("{prefix}_{n:026}");
        conn.execute_batch(&format!(
            "INSERT INTO users (id, role, name_enc, created_at) VALUES
                 ('{s}', 'sender', 'x', 't'), ('{r}', 'recipient', 'x', 't');
             INSERT INTO escrows (id, sender_id, recipient_id, status, total_usd_cents, deposited_usd_cents,
                 created_at, updated_at, last_transaction_id)
                 VALUES ('{a}', '{s}', '{r}', 'pending_deposit', 100, 30, 't', 't', 4),
                        ('{b}', '{s}', '{r}', 'pending_deposit', 100, 20, 't', 't', 5);
             INSERT INTO ledger_transactions (id, escrow_id, kind, reference, created_at, prev_id) VALUES
                 (1, '{a}', 'deposit', 'd1', 't', NULL), (2, '{b}', 'deposit', 'd2', 't', NULL),
                 (3, '{a}', 'deposit', 'd3', 't', 1), (4, '{a}', 'deposit', 'd4', 't', 3),
                 (5, '{b}', 'deposit', 'd5', 't', 2);
             INSERT INTO ledger_entries (transaction_id, escrow_id, account, amount_usd_cents)
                 SELECT id, escrow_id, 'world:deposits', -10 FROM ledger_transactions;
             INSERT INTO ledger_entries (transaction_id, escrow_id, account, amount_usd_cents)
                 SELECT id, escrow_id, 'escrow:unfunded', 10 FROM ledger_transactions;",
            s = id("usr", 1),
            r = id("usr", 2),
            a = id("esc", 1),
            b = id("esc", 2),
        ))
        .unwrap();
        let sender = Actor::user(&UserId::parse(&id("usr", 1)).unwrap(), Role::Sender);
        let a = EscrowId::parse(&id("esc", 1)).unwrap();
        let b = EscrowId::parse(&id("esc", 2)).unwrap();
        (conn, a, b, sender)
    }

    fn references(page: &super::Page<super::JournalTransactionView>) -> Vec<(i64, &str)> {
        page.items
            .iter()
            .map(|t| (t.transaction_id, t.reference.as_str()))
            .collect()
    }

    /// The chain gives each escrow its own transactions, oldest first, in pages: numbered by
    /// their place for the sender, by the ledger's numbers for an admin.
    #[test]
    fn a_journal_is_its_escrows_chain_oldest_first_in_pages() {
        let (conn, a, b, sender) = two_journals();
        let page = super::journal(&conn, &sender, &a, 2, None).unwrap();
        assert_eq!(references(&page), [(1, "d1"), (2, "d3")]);
        assert_eq!(page.next_cursor.as_deref(), Some("2"));
        let page = super::journal(&conn, &sender, &a, 2, Some(2)).unwrap();
        assert_eq!(references(&page), [(3, "d4")]);
        assert_eq!(page.next_cursor, None);
        let page = super::journal(&conn, &sender, &b, 50, None).unwrap();
        assert_eq!(references(&page), [(1, "d2"), (2, "d5")]);
        let admin = Actor::system("test");
        assert!(admin.is_admin());
        let page = super::journal(&conn, &admin, &a, 1, Some(1)).unwrap();
        assert_eq!(references(&page), [(3, "d3")]);
        assert_eq!(page.next_cursor.as_deref(), Some("3"));
        let page = super::journal(&conn, &admin, &a, 50, Some(3)).unwrap();
        assert_eq!(references(&page), [(4, "d4")]);
    }

    /// Escrow a's journal as its sender reads it, once `edit` has changed the chain (past the
    /// journal's append-only guard).
    fn sender_page_after(edit: &str) -> super::Page<super::JournalTransactionView> {
        let (conn, a, _b, sender) = two_journals();
        conn.execute_batch("DROP TRIGGER ledger_transactions_append_only_update")
            .unwrap();
        conn.execute_batch(edit).unwrap();
        super::journal(&conn, &sender, &a, 50, None).unwrap()
    }

    /// A link edited to point into another escrow's journal ends the walk there: the page
    /// never shows the other escrow's money (`remit check` names the link).
    #[test]
    fn a_chain_that_leads_into_another_escrow_shows_none_of_it() {
        let page = sender_page_after("UPDATE ledger_transactions SET prev_id = 2 WHERE id = 4");
        assert_eq!(references(&page), [(1, "d4")]);
    }

    /// A loop edited into a chain past its `CHECK` (1 after 4 after 3 after 1) ends the walk
    /// where it would go forward: the page is the chain once, not a query that never ends.
    #[test]
    fn a_chain_edited_into_a_loop_is_walked_once() {
        let page = sender_page_after(
            "PRAGMA ignore_check_constraints = ON;
             UPDATE ledger_transactions SET prev_id = 4 WHERE id = 1;",
        );
        assert_eq!(references(&page), [(1, "d1"), (2, "d3"), (3, "d4")]);
    }

    /// A page of an escrow's journal reads that escrow's transactions by their chain, each by
    /// its key (schema 18); without it every page scanned the ledger's whole journal.
    #[test]
    fn a_journal_page_reads_its_escrows_transactions_by_their_chain() {
        let conn = crate::store::migrated_in_memory().unwrap();
        let plan = crate::store::query_plan(
            &conn,
            super::JOURNAL_PAGE,
            rusqlite::params!["esc_x", 0, 51, false],
        );
        assert!(
            plan.iter()
                .any(|l| l.contains("SEARCH lt USING INTEGER PRIMARY KEY (rowid=?)")),
            "{plan:?}"
        );
        assert!(
            !plan
                .iter()
                .any(|l| l.starts_with("SCAN ledger_") || l.starts_with("SCAN lt")),
            "{plan:?}"
        );
    }

    /// A viewer of this role (and a recipient's token scoped to a sender, `scoped`).
    fn viewer(role: Role, scoped: bool) -> Actor {
        Actor {
            id: "usr_x".into(),
            role,
            sender_scope: scoped.then(|| UserId::parse("usr_01m98aadvsdkjdam98fa5a10ce").unwrap()),
            credential: None,
        }
    }

    fn plan_of(sql: &str) -> Vec<String> {
        crate::store::unbound_query_plan(&crate::store::migrated_in_memory().unwrap(), sql)
    }

    /// Guards against: a sender's page of requests read every request they ever had whole,
    /// with its category and payout, before sorting them (20 ms for a sender's 2,000): the
    /// page's requests are found from the indexes first, and only they are read whole.
    #[test]
    fn a_page_of_requests_reads_whole_only_the_requests_of_the_page() {
        for (role, scoped) in [
            (Role::Sender, false),
            (Role::Recipient, false),
            (Role::Recipient, true),
        ] {
            let plan = plan_of(&super::request_page_sql(&viewer(role, scoped), false, None));
            assert!(
                plan.iter().any(|l| l.contains(
                    "SEARCH r USING COVERING INDEX payment_requests_escrow (escrow_id=? AND id<?)"
                )),
                "{role:?}: {plan:#?}"
            );
            assert!(
                plan.iter().any(|l| l
                    .contains("SEARCH r USING INDEX sqlite_autoindex_payment_requests_1 (id=?)")),
                "{role:?}: {plan:#?}"
            );
        }
    }

    /// Guards against: an admin's or an agent's requests of a status (`failed`, `expired`)
    /// walked every request newest first until a page of them turned up: the whole table for
    /// a status rare or absent (130 ms at 135,000 requests). Each is found from the index of
    /// its status (`expired`: marked, and still waiting past its time), an owner's from
    /// their own; `paid`, most requests, newest first (the index leaves them out, so that an
    /// approval and its payout's success move one entry each).
    #[test]
    fn requests_of_a_status_are_found_from_its_index() {
        use crate::domain::RequestStatus;
        let admin = viewer(Role::Admin, false);
        for status in [
            RequestStatus::Failed,
            RequestStatus::Approved,
            RequestStatus::Rejected,
            RequestStatus::Cancelled,
            RequestStatus::Expired,
        ] {
            let plan = plan_of(&super::request_page_sql(&admin, false, Some(status)));
            assert!(
                plan.iter()
                    .any(|l| l.contains("USING INDEX payment_requests_status (status=? AND id<?)")),
                "{status:?}: {plan:#?}"
            );
            // A scan of a page found (`SCAN (subquery-2)`), never of a table.
            assert!(
                !plan
                    .iter()
                    .any(|l| l.starts_with("SCAN") && !l.starts_with("SCAN (subquery")),
                "{status:?}: {plan:#?}"
            );
        }
        let sender = viewer(Role::Sender, false);
        for escrow in [false, true] {
            let plan = plan_of(&super::request_page_sql(
                &sender,
                escrow,
                Some(RequestStatus::Failed),
            ));
            assert!(
                !plan.iter().any(|l| l.contains("payment_requests_status")),
                "{plan:#?}"
            );
        }
    }

    /// Guards against: a sender's escrows of a status (`completed`) read every escrow the
    /// sender had (the status index holds everyone's): schema 22 indexes them by both.
    #[test]
    fn a_senders_escrows_of_a_status_are_found_from_their_own_index() {
        let filter = super::EscrowFilter {
            status: Some(crate::domain::EscrowStatus::Completed),
            ..Default::default()
        };
        let sql = super::escrow_select(&super::escrow_page_where(
            &viewer(Role::Sender, false),
            &filter,
        ));
        let plan = plan_of(&sql);
        assert!(
            plan.iter()
                .any(|l| l.contains("escrows_sender_status (sender_id=? AND status=? AND id<?)")),
            "{plan:#?}"
        );
    }
}
