//! Read models: the JSON shapes of escrows and payment requests, shared by reads from the pool
//! and by writer commands that answer with the object they changed.

use super::{Actor, EscrowParties, Page, Role};
use crate::crypto::Keys;
use crate::domain::{check_id, IdKind, KenyanPhone};
use crate::error::{Error, Result};
use crate::money::{KesCents, RateKesPerUsd, UsdCents};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::{json, Map, Value};

/// Adds `{name}Usd` and `{name}UsdCents` to a JSON object.
pub fn put_usd(obj: &mut Map<String, Value>, name: &str, cents: i64) -> Result<()> {
    let amount = UsdCents::from_column(cents)?;
    obj.insert(format!("{name}Usd"), amount.major_json());
    obj.insert(format!("{name}UsdCents"), json!(cents));
    Ok(())
}

/// Adds `{name}Kes` and `{name}KesCents` to a JSON object.
pub fn put_kes(obj: &mut Map<String, Value>, name: &str, cents: i64) -> Result<()> {
    let amount = KesCents::from_column(cents)?;
    obj.insert(format!("{name}Kes"), amount.major_json());
    obj.insert(format!("{name}KesCents"), json!(cents));
    Ok(())
}

/// A user's decrypted name and phone.
pub fn user_name_phone(
    conn: &Connection,
    keys: &Keys,
    user_id: &str,
) -> Result<(String, Option<KenyanPhone>)> {
    let (name_enc, phone_enc): (String, Option<String>) = conn
        .prepare_cached("SELECT name_enc, phone_enc FROM users WHERE id = ?1")?
        .query_row([user_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let name = keys.decrypt(&format!("users.name.{user_id}"), &name_enc)?;
    let phone = match phone_enc {
        Some(enc) => {
            let e164 = keys.decrypt(&format!("users.phone.{user_id}"), &enc)?;
            Some(
                KenyanPhone::parse("phone", &e164)
                    .map_err(|_| Error::internal("stored phone does not parse"))?,
            )
        }
        None => None,
    };
    Ok((name, phone))
}

const ESCROW_COLUMNS: &str = "id, sender_id, recipient_id, status, total_usd_cents, deposited_usd_cents,
    remaining_usd_cents, reserved_usd_cents, spent_usd_cents, refunded_usd_cents, daily_limit_usd_cents,
    created_at, updated_at";

fn escrow_from_row(conn: &Connection, keys: &Keys, viewer: &Actor, r: &Row<'_>) -> Result<Value> {
    let id: String = r.get(0)?;
    let recipient_id: String = r.get(2)?;
    let daily_limit: Option<i64> = r.get(10)?;
    let mut o = Map::new();
    o.insert("escrowId".into(), json!(id));
    o.insert("status".into(), json!(r.get::<_, String>(3)?));
    put_usd(&mut o, "totalAmount", r.get(4)?)?;
    put_usd(&mut o, "deposited", r.get(5)?)?;
    put_usd(&mut o, "remaining", r.get(6)?)?;
    put_usd(&mut o, "reserved", r.get(7)?)?;
    put_usd(&mut o, "spent", r.get(8)?)?;
    put_usd(&mut o, "refunded", r.get(9)?)?;
    match daily_limit {
        Some(limit) => {
            put_usd(&mut o, "dailyLimit", limit)?;
            let today = crate::time::nairobi_day(crate::time::now_unix());
            let approved: i64 = conn
                .prepare_cached(
                    "SELECT approved_usd_cents FROM daily_spend WHERE escrow_id = ?1 AND day = ?2",
                )?
                .query_row(params![id, today], |r| r.get(0))
                .optional()?
                .unwrap_or(0);
            put_usd(&mut o, "approvedToday", approved)?;
        }
        None => {
            o.insert("dailyLimitUsd".into(), Value::Null);
            o.insert("dailyLimitUsdCents".into(), Value::Null);
        }
    }
    o.insert("depositReference".into(), json!(id));
    o.insert("senderId".into(), json!(r.get::<_, String>(1)?));
    let (name, phone) = user_name_phone(conn, keys, &recipient_id)?;
    let phone = phone.map(|p| {
        if viewer.role == Role::Admin {
            p.e164()
        } else {
            p.masked()
        }
    });
    o.insert(
        "recipient".into(),
        json!({"userId": recipient_id, "name": name, "phone": phone}),
    );
    let mut categories = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, allocated_usd_cents, remaining_usd_cents, reserved_usd_cents, spent_usd_cents,
         refunded_usd_cents FROM spending_categories WHERE escrow_id = ?1 ORDER BY position",
    )?;
    let mut rows = stmt.query([&id])?;
    while let Some(c) = rows.next()? {
        let mut co = Map::new();
        co.insert("categoryId".into(), json!(c.get::<_, String>(0)?));
        co.insert("name".into(), json!(c.get::<_, String>(1)?));
        put_usd(&mut co, "allocated", c.get(2)?)?;
        put_usd(&mut co, "remaining", c.get(3)?)?;
        put_usd(&mut co, "reserved", c.get(4)?)?;
        put_usd(&mut co, "spent", c.get(5)?)?;
        put_usd(&mut co, "refunded", c.get(6)?)?;
        categories.push(Value::Object(co));
    }
    o.insert("categories".into(), Value::Array(categories));
    o.insert("createdAt".into(), json!(r.get::<_, String>(11)?));
    o.insert("updatedAt".into(), json!(r.get::<_, String>(12)?));
    Ok(Value::Object(o))
}

/// `GET /escrows/:id`: the escrow as the viewer may see it (phone masked but for admins).
pub fn escrow(conn: &Connection, keys: &Keys, viewer: &Actor, escrow_id: &str) -> Result<Value> {
    EscrowParties::load_visible(conn, escrow_id, viewer)?;
    let sql = format!("SELECT {ESCROW_COLUMNS} FROM escrows WHERE id = ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([escrow_id])?;
    match rows.next()? {
        Some(r) => escrow_from_row(conn, keys, viewer, r),
        None => Err(Error::NotFound { what: "escrow" }),
    }
}

/// Filters of `GET /escrows`.
#[derive(Debug, Default, Clone)]
pub struct EscrowFilter {
    /// Only this status.
    pub status: Option<String>,
    /// Only escrows of the recipient with this blind index (agents and admins).
    pub recipient_phone_index: Option<String>,
}

/// `GET /escrows`: the viewer's escrows (all for admins and agents), newest first.
pub fn escrows(
    conn: &Connection,
    keys: &Keys,
    viewer: &Actor,
    filter: &EscrowFilter,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page> {
    let mut sql = format!("SELECT {ESCROW_COLUMNS} FROM escrows WHERE id < ?1");
    match viewer.role {
        Role::Sender => sql.push_str(" AND sender_id = ?2"),
        Role::Recipient => sql.push_str(" AND recipient_id = ?2"),
        Role::Agent | Role::Admin => sql.push_str(" AND ?2 IS NOT NULL"),
    }
    sql.push_str(" AND (?3 IS NULL OR status = ?3)");
    sql.push_str(
        " AND (?4 IS NULL OR recipient_id = (SELECT id FROM users WHERE phone_index = ?4))",
    );
    sql.push_str(" ORDER BY id DESC LIMIT ?5");
    let cursor = cursor.unwrap_or("~");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![
        cursor,
        viewer.id,
        filter.status,
        filter.recipient_phone_index,
        limit + 1
    ])?;
    let mut items = Vec::new();
    while let Some(r) = rows.next()? {
        items.push(escrow_from_row(conn, keys, viewer, r)?);
    }
    Ok(page(items, limit, "escrowId"))
}

fn page(mut items: Vec<Value>, limit: u32, id_field: &str) -> Page {
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_cursor = if more {
        items
            .last()
            .and_then(|v| v.get(id_field))
            .and_then(Value::as_str)
            .map(str::to_string)
    } else {
        None
    };
    Page { items, next_cursor }
}

const REQUEST_COLUMNS: &str = "r.id, r.escrow_id, c.name, r.requested_by, r.status, r.amount_kes_cents,
    r.amount_usd_cents, r.rate_e4, r.merchant_type, r.merchant_name_enc, r.merchant_account_enc, r.note_enc,
    r.decided_by, r.decided_at, r.decision_reason_enc, r.created_at, r.updated_at,
    p.id, p.status, p.receipt, p.result_code, p.result_desc, p.attempts, p.flagged, p.flag_reason,
    p.created_at, p.sent_at, p.settled_at, p.command, e.sender_id, e.recipient_id";

const REQUEST_FROM: &str = "FROM payment_requests r
    JOIN spending_categories c ON c.id = r.category_id
    JOIN escrows e ON e.id = r.escrow_id
    LEFT JOIN payouts p ON p.payment_request_id = r.id";

fn mask_account(number: &str) -> String {
    let keep = number.len().min(3);
    format!(
        "{}{}",
        "*".repeat(number.len() - keep),
        &number[number.len() - keep..]
    )
}

fn request_from_row(keys: &Keys, viewer: &Actor, r: &Row<'_>) -> Result<Value> {
    let id: String = r.get(0)?;
    let requested_by: String = r.get(3)?;
    let sender_id: String = r.get(29)?;
    let recipient_id: String = r.get(30)?;
    // Owners see the merchant in full: the escrow's two parties, whoever asked, admins.
    let owner =
        viewer.is_admin() || [&sender_id, &recipient_id, &requested_by].contains(&&viewer.id);
    let mut o = Map::new();
    o.insert("paymentRequestId".into(), json!(id));
    o.insert("escrowId".into(), json!(r.get::<_, String>(1)?));
    o.insert("category".into(), json!(r.get::<_, String>(2)?));
    o.insert("status".into(), json!(r.get::<_, String>(4)?));
    put_kes(&mut o, "amount", r.get(5)?)?;
    put_usd(&mut o, "amount", r.get(6)?)?;
    let rate = RateKesPerUsd::from_e4(r.get(7)?)
        .ok_or_else(|| Error::internal("stored rate out of range"))?;
    o.insert("exchangeRate".into(), rate.json());
    let merchant_name = keys.decrypt(
        &format!("payment_requests.merchant_name.{id}"),
        &r.get::<_, String>(9)?,
    )?;
    let account_text = keys.decrypt(
        &format!("payment_requests.merchant_account.{id}"),
        &r.get::<_, String>(10)?,
    )?;
    let mut account: Value = serde_json::from_str(&account_text).map_err(Error::internal)?;
    if !owner {
        if let Some(number) = account
            .get("number")
            .and_then(Value::as_str)
            .map(mask_account)
        {
            account["number"] = json!(number);
        }
    }
    o.insert("merchantName".into(), json!(merchant_name));
    o.insert("merchantAccount".into(), account);
    let note = match r.get::<_, Option<String>>(11)? {
        Some(enc) if owner => Some(keys.decrypt(&format!("payment_requests.note.{id}"), &enc)?),
        _ => None,
    };
    o.insert("note".into(), json!(note));
    o.insert("requestedBy".into(), json!(requested_by));
    o.insert("decidedBy".into(), json!(r.get::<_, Option<String>>(12)?));
    o.insert("decidedAt".into(), json!(r.get::<_, Option<String>>(13)?));
    let reason = match r.get::<_, Option<String>>(14)? {
        Some(enc) => Some(keys.decrypt(&format!("payment_requests.decision_reason.{id}"), &enc)?),
        None => None,
    };
    o.insert("reason".into(), json!(reason));
    o.insert("createdAt".into(), json!(r.get::<_, String>(15)?));
    o.insert("updatedAt".into(), json!(r.get::<_, String>(16)?));
    let payout = match r.get::<_, Option<String>>(17)? {
        Some(payout_id) => json!({
            "payoutId": payout_id,
            "status": r.get::<_, String>(18)?,
            "mpesaReceipt": r.get::<_, Option<String>>(19)?,
            "resultCode": r.get::<_, Option<String>>(20)?,
            "resultDesc": r.get::<_, Option<String>>(21)?,
            "attempts": r.get::<_, i64>(22)?,
            "flagged": r.get::<_, i64>(23)? == 1,
            "flagReason": r.get::<_, Option<String>>(24)?,
            "method": r.get::<_, String>(28)?,
            "createdAt": r.get::<_, String>(25)?,
            "sentAt": r.get::<_, Option<String>>(26)?,
            "settledAt": r.get::<_, Option<String>>(27)?,
        }),
        None => Value::Null,
    };
    o.insert("payout".into(), payout);
    Ok(Value::Object(o))
}

/// `GET /payment-requests/:id`.
pub fn payment_request(
    conn: &Connection,
    keys: &Keys,
    viewer: &Actor,
    request_id: &str,
) -> Result<Value> {
    check_id(IdKind::PaymentRequest, request_id)?;
    let escrow_id: String = conn
        .prepare_cached("SELECT escrow_id FROM payment_requests WHERE id = ?1")?
        .query_row([request_id], |r| r.get(0))
        .optional()?
        .ok_or(Error::NotFound {
            what: "payment request",
        })?;
    let parties = EscrowParties::load(conn, &escrow_id)?;
    if !parties.visible_to(viewer) {
        return Err(Error::NotFound {
            what: "payment request",
        });
    }
    let sql = format!("SELECT {REQUEST_COLUMNS} {REQUEST_FROM} WHERE r.id = ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([request_id])?;
    match rows.next()? {
        Some(r) => request_from_row(keys, viewer, r),
        None => Err(Error::NotFound {
            what: "payment request",
        }),
    }
}

/// `GET /payment-requests`: requests the viewer may see, newest first, optionally of one
/// escrow and one status.
pub fn payment_requests(
    conn: &Connection,
    keys: &Keys,
    viewer: &Actor,
    escrow_id: Option<&str>,
    status: Option<&str>,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page> {
    if let Some(escrow_id) = escrow_id {
        EscrowParties::load_visible(conn, escrow_id, viewer)?;
    }
    let mut sql = format!("SELECT {REQUEST_COLUMNS} {REQUEST_FROM} WHERE r.id < ?1");
    match viewer.role {
        Role::Sender => sql.push_str(" AND e.sender_id = ?2"),
        Role::Recipient => sql.push_str(" AND e.recipient_id = ?2"),
        Role::Agent | Role::Admin => sql.push_str(" AND ?2 IS NOT NULL"),
    }
    sql.push_str(" AND (?3 IS NULL OR r.escrow_id = ?3) AND (?4 IS NULL OR r.status = ?4) ORDER BY r.id DESC LIMIT ?5");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![
        cursor.unwrap_or("~"),
        viewer.id,
        escrow_id,
        status,
        limit + 1
    ])?;
    let mut items = Vec::new();
    while let Some(r) = rows.next()? {
        items.push(request_from_row(keys, viewer, r)?);
    }
    Ok(page(items, limit, "paymentRequestId"))
}

/// `GET /escrows/:id/journal`: every movement of the escrow's money, oldest first, as the
/// double-entry journal records it (each transaction's entries sum to zero).
pub fn journal(
    conn: &Connection,
    viewer: &Actor,
    escrow_id: &str,
    limit: u32,
    after: Option<i64>,
) -> Result<Page> {
    EscrowParties::load_visible(conn, escrow_id, viewer)?;
    let mut stmt = conn.prepare_cached(
        "SELECT id, kind, reference, created_at FROM ledger_transactions
         WHERE escrow_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
    )?;
    let transactions: Vec<(i64, String, String, String)> = stmt
        .query_map(params![escrow_id, after.unwrap_or(0), limit + 1], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let more = transactions.len() > limit as usize;
    let mut entries_stmt = conn.prepare_cached(
        "SELECT e.account, c.name, e.amount_usd_cents FROM ledger_entries e
         LEFT JOIN spending_categories c ON c.id = e.category_id WHERE e.transaction_id = ?1 ORDER BY e.id",
    )?;
    let mut items = Vec::with_capacity(transactions.len());
    for (id, kind, reference, created_at) in transactions.into_iter().take(limit as usize) {
        let mut entries = Vec::new();
        let mut rows = entries_stmt.query([id])?;
        while let Some(r) = rows.next()? {
            let cents: i64 = r.get(2)?;
            entries.push(json!({"account": r.get::<_, String>(0)?, "category": r.get::<_, Option<String>>(1)?,
                                "amountUsd": crate::money::signed_major_json(cents), "amountUsdCents": cents}));
        }
        items.push(json!({"transactionId": id, "kind": kind, "reference": reference, "createdAt": created_at, "entries": entries}));
    }
    let next_cursor = if more {
        items
            .last()
            .and_then(|v| v["transactionId"].as_i64())
            .map(|id| id.to_string())
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}
