//! Text messages to people, made from outbox events by the fan-out: a sender hears of a payment
//! request waiting for their approval and of a payout they approved that is stuck; a recipient
//! of a payment paid or failed. Short, in English or Kiswahili by the user's language, with
//! amounts and never a merchant detail. The body is sealed at rest; the phone is read from the
//! user, and decrypted, only to send (`due`). Neither ever reaches the log.

use super::Page;
use crate::crypto::{EncryptedColumn, Keys};
use crate::domain::{EventType, Language, SmsId, SmsStatus, SmsTemplate, UserId};
use crate::error::Result;
use crate::money::{KesCents, UsdCents};
use crate::outbox::Event;
use crate::store::WriteCtx;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

/// Who hears of an event.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Party {
    Sender,
    Recipient,
}

/// Which text an event sends, and to whom (API.md, "Outgoing notifications").
fn audience(kind: EventType) -> Option<(SmsTemplate, Party)> {
    match kind {
        EventType::PaymentRequestCreated => Some((SmsTemplate::RequestWaiting, Party::Sender)),
        EventType::PaymentRequestPaid => Some((SmsTemplate::RequestPaid, Party::Recipient)),
        EventType::PaymentRequestFailed => Some((SmsTemplate::RequestFailed, Party::Recipient)),
        EventType::PayoutStuck => Some((SmsTemplate::PayoutStuck, Party::Sender)),
        _ => None,
    }
}

/// What a text says, read from its event's data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The payment in KES.
    pub kes: KesCents,
    /// Its price in USD.
    pub usd: UsdCents,
    /// Its category (`school_fees`).
    pub category: String,
    /// M-Pesa's receipt, once paid.
    pub receipt: Option<String>,
}

impl Facts {
    fn of(data: &Value) -> Facts {
        let cents = |field: &str| data[field].as_i64().unwrap_or(0);
        Facts {
            kes: KesCents::new(cents("amountKesCents")).unwrap_or_default(),
            usd: UsdCents::new(cents("amountUsdCents")).unwrap_or_default(),
            category: data["category"].as_str().unwrap_or("").to_string(),
            receipt: data["mpesaReceipt"].as_str().map(str::to_string),
        }
    }
}

/// `KES 1,500` (whole shillings, as payments are), `KES 1,500.50` otherwise.
fn kes_text(kes: KesCents) -> String {
    let text = kes.display();
    text.strip_suffix(".00").map(str::to_string).unwrap_or(text)
}

/// The categories the web UI names in words, in English and in Kiswahili, as it does
/// (`ui/js/i18n.js`, `category.*`; a test holds them equal): a Kiswahili text said "kwa School
/// fees".
const KNOWN_CATEGORIES: [(&str, &str, &str); 8] = [
    ("electricity", "Electricity", "Umeme"),
    ("water", "Water", "Maji"),
    ("school_fees", "School fees", "Karo ya shule"),
    ("rent", "Rent", "Kodi ya nyumba"),
    ("food", "Food", "Chakula"),
    ("medical", "Medical", "Matibabu"),
    ("transport", "Transport", "Usafiri"),
    ("airtime", "Airtime", "Muda wa maongezi"),
];

/// A category as the web UI shows it in `language`: a known one in its words, another as
/// spelled (`term_2_books` → `Term 2 books`).
fn category_text(name: &str, language: Language) -> String {
    if let Some((_, en, sw)) = KNOWN_CATEGORIES.iter().find(|(known, ..)| *known == name) {
        return match language {
            Language::En => en,
            Language::Sw => sw,
        }
        .to_string();
    }
    let words = name.replace('_', " ");
    let mut chars = words.trim().chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The text of a message. Plain GSM characters only, so that it fits one SMS.
pub fn render(template: SmsTemplate, language: Language, facts: &Facts) -> String {
    let kes = kes_text(facts.kes);
    let usd = facts.usd.display();
    let category = category_text(&facts.category, language);
    let receipt = facts.receipt.as_deref().unwrap_or("-");
    match (template, language) {
        (SmsTemplate::RequestWaiting, Language::En) => format!(
            "remit: a payment of {kes} ({usd}) for {category} is waiting for your approval."
        ),
        (SmsTemplate::RequestWaiting, Language::Sw) => format!(
            "remit: malipo ya {kes} ({usd}) kwa {category} yanasubiri idhini yako."
        ),
        (SmsTemplate::RequestPaid, Language::En) => {
            format!("remit: your payment of {kes} was paid. M-Pesa receipt {receipt}.")
        }
        (SmsTemplate::RequestPaid, Language::Sw) => {
            format!("remit: malipo yako ya {kes} yamelipwa. Risiti ya M-Pesa {receipt}.")
        }
        (SmsTemplate::RequestFailed, Language::En) => {
            format!("remit: your payment of {kes} failed. The money is back in your escrow.")
        }
        (SmsTemplate::RequestFailed, Language::Sw) => format!(
            "remit: malipo yako ya {kes} hayakufaulu. Pesa imerudishwa kwenye mfuko wako."
        ),
        (SmsTemplate::PayoutStuck, Language::En) => format!(
            "remit: a payment of {kes} you approved is delayed at M-Pesa. We are checking it; your money is safe."
        ),
        (SmsTemplate::PayoutStuck, Language::Sw) => format!(
            "remit: malipo ya {kes} uliyoidhinisha yamechelewa kwa M-Pesa. Tunayafuatilia; pesa yako iko salama."
        ),
    }
}

/// Makes the message an event sends, if it sends one and its person has a phone: sealed, and
/// `pending` for a gateway that sends, `logged` for the `log` gateway. Run by the fan-out, in
/// the command that moves its position. Returns whether a message was made.
pub fn make_for_event(
    ctx: &WriteCtx<'_>,
    event: &Event,
    gateway: &str,
    sends: bool,
) -> Result<bool> {
    let Some((template, party)) = audience(event.kind) else {
        return Ok(false);
    };
    let data = event.data_json();
    let Some(escrow_id) = data["escrowId"].as_str() else {
        return Ok(false);
    };
    let column = match party {
        Party::Sender => "sender_id",
        Party::Recipient => "recipient_id",
    };
    let person: Option<(UserId, Option<Language>, bool)> = ctx
        .conn
        .prepare_cached(&format!(
            "SELECT u.id, u.language, u.phone_enc IS NOT NULL FROM escrows e
             JOIN users u ON u.id = e.{column} WHERE e.id = ?1"
        ))?
        .query_row([escrow_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((user_id, language, has_phone)) = person else {
        return Ok(false);
    };
    if !has_phone {
        return Ok(false);
    }
    let language = language.unwrap_or(Language::En);
    let body = render(template, language, &Facts::of(&data));
    let id = SmsId::new();
    let body_enc = ctx
        .keys
        .seal(EncryptedColumn::SmsBody, id.as_str(), &body)?;
    let (status, next) = if sends {
        (
            SmsStatus::Pending,
            Some(crate::time::rfc3339_ms(crate::time::now_unix_ms())),
        )
    } else {
        (SmsStatus::Logged, None)
    };
    ctx.conn
        .prepare_cached(
            "INSERT INTO sms_messages (id, event_seq, user_id, template, language, body_enc, status,
             gateway, next_attempt_at, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
        )?
        .execute(params![
            id, event.seq, user_id, template, language, body_enc, status, gateway, next,
            ctx.at()
        ])?;
    Ok(true)
}

/// A message as admins see it (`GET /sms`): its text, never the phone.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)] // named for what they hold
pub struct SmsView {
    pub sms_id: SmsId,
    pub user_id: UserId,
    pub event_id: String,
    pub event_type: EventType,
    pub template: SmsTemplate,
    pub language: Language,
    pub status: SmsStatus,
    /// `log` (nothing sent) or `africastalking`.
    pub gateway: String,
    pub body: String,
    pub attempts: i64,
    /// A call to the gateway is under way (its attempt counted), or was cut by a crash and
    /// its outcome is not yet recorded (the next claim takes it as not known).
    pub sending: bool,
    pub next_attempt_at: Option<String>,
    /// The gateway's id of the message (Africa's Talking's `messageId`).
    pub provider_id: Option<String>,
    /// What the gateway said of it.
    pub provider_status: Option<String>,
    pub error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

const SMS_COLUMNS: &str =
    "s.id, s.user_id, e.id AS event_id, e.type AS event_type, s.template, s.language,
    s.status, s.gateway, s.body_enc, s.attempts, s.in_flight, s.next_attempt_at, s.provider_id,
    s.provider_status, s.error, s.created_at, s.updated_at";

fn view_of(keys: &Keys, r: &Row<'_>) -> Result<SmsView> {
    let id: SmsId = r.get("id")?;
    let body = keys.open(
        EncryptedColumn::SmsBody,
        id.as_str(),
        &r.get::<_, String>("body_enc")?,
    )?;
    Ok(SmsView {
        sms_id: id,
        user_id: r.get("user_id")?,
        event_id: r.get("event_id")?,
        event_type: r.get("event_type")?,
        template: r.get("template")?,
        language: r.get("language")?,
        status: r.get("status")?,
        gateway: r.get("gateway")?,
        body,
        attempts: r.get("attempts")?,
        sending: r.get::<_, i64>("in_flight")? == 1,
        // Kept to the millisecond (it orders the sending), said in whole seconds as every time
        // of every answer is.
        next_attempt_at: r
            .get::<_, Option<String>>("next_attempt_at")?
            .map(crate::time::in_seconds),
        provider_id: r.get("provider_id")?,
        provider_status: r.get("provider_status")?,
        error: r.get("error")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

/// `GET /sms?status=&userId=`: messages, newest first. A user that does not exist is `404`
/// (as one whose id has another shape), not an empty list that reads as "no messages for them".
pub fn list(
    conn: &Connection,
    keys: &Keys,
    status: Option<SmsStatus>,
    user_id: Option<&UserId>,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page<SmsView>> {
    if let Some(id) = user_id {
        conn.prepare_cached("SELECT 1 FROM users WHERE id = ?1")?
            .query_row([id], |_| Ok(()))
            .optional()?
            .ok_or(crate::error::Error::NotFound { what: "user" })?;
    }
    let cursor = cursor.unwrap_or("~");
    let fetch = limit + 1;
    let named: [(&str, &dyn rusqlite::ToSql); 4] = [
        (":cursor", &cursor),
        (":limit", &fetch),
        (":status", &status),
        (":user", &user_id),
    ];
    let sql = list_sql(status.is_some(), user_id.is_some());
    let out = crate::store::named_rows(conn, &sql, &named, |r| view_of(keys, r))?;
    Ok(Page::of(out, limit, |s| s.sms_id.to_string()))
}

/// `list`'s query: only the conditions that apply, each a plain comparison (a `(?1 IS NULL OR
/// …)` form hides every index from the planner, which then read every text kept for a page of
/// one user's or one status; schema 22 indexes both). It names `:cursor`, `:limit` and, as they
/// apply, `:status` and `:user`.
fn list_sql(status: bool, user: bool) -> String {
    let mut conditions = vec!["s.id < :cursor"];
    if user {
        conditions.push("s.user_id = :user");
    }
    if status {
        // Both given, a user's texts are the fewer (`+` keeps the planner off the status index).
        conditions.push(if user {
            "+s.status = :status"
        } else {
            "s.status = :status"
        });
    }
    format!(
        "SELECT {SMS_COLUMNS} FROM sms_messages s JOIN outbox_events e ON e.seq = s.event_seq
         WHERE {} ORDER BY s.id DESC LIMIT :limit",
        conditions.join(" AND ")
    )
}

/// A message due to be sent, with what sending needs. The phone is decrypted here, for the
/// sending alone.
pub struct DueSms {
    /// `sms_…`.
    pub id: SmsId,
    /// E.164 (`+254…`).
    pub phone: String,
    /// The text.
    pub body: String,
}

/// At most `limit` messages due to be sent at `now_ms` (Unix milliseconds).
pub fn due(conn: &Connection, keys: &Keys, now_ms: i64, limit: u32) -> Result<Vec<DueSms>> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.id, s.body_enc, u.id AS user_id, u.phone_enc FROM sms_messages s
         JOIN users u ON u.id = s.user_id
         WHERE s.status = 'pending' AND s.next_attempt_at <= ?1 ORDER BY s.next_attempt_at LIMIT ?2",
    )?;
    let mut rows = stmt.query(params![crate::time::rfc3339_ms(now_ms), limit])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let id: SmsId = r.get("id")?;
        let user_id: UserId = r.get("user_id")?;
        let phone_enc: Option<String> = r.get("phone_enc")?;
        let Some(phone_enc) = phone_enc else { continue };
        out.push(DueSms {
            body: keys.open(
                EncryptedColumn::SmsBody,
                id.as_str(),
                &r.get::<_, String>("body_enc")?,
            )?,
            phone: keys.open(EncryptedColumn::UserPhone, user_id.as_str(), &phone_enc)?,
            id,
        });
    }
    Ok(out)
}

/// What a `claim` did.
#[derive(Debug, Default)]
pub struct Claimed {
    /// To be sent now, in order.
    pub ids: Vec<SmsId>,
    /// Of them, those whose call before was cut (`in_flight`): sent once more.
    pub cut: Vec<SmsId>,
    /// Failed instead: a call cut after an outcome not known already, or its last try.
    pub failed: Vec<SmsId>,
}

/// Claims messages about to be sent: each one still pending is not due again for `lease`. The
/// worker sends only what this write claimed and records each result as soon as it has it, so a
/// message whose result cannot be written (a full disk, a file moved away, a crash) is not sent
/// again at once, and a ledger that takes no writes sends nothing. A message still marked
/// `in_flight` (`begin`) had its call cut before its result was written: an outcome not known,
/// recorded as one (`record`'s `Unknown`: a second fails it, and it is not claimed).
pub fn claim(
    ctx: &WriteCtx<'_>,
    ids: &[SmsId],
    lease: Duration,
    retry_base: Duration,
) -> Result<Claimed> {
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 4);
    let until = crate::time::rfc3339_ms(crate::time::now_unix_ms().saturating_add(lease_ms));
    let mut claimed = Claimed::default();
    for id in ids {
        let cut: Option<bool> = ctx
            .conn
            .prepare_cached(
                "SELECT in_flight = 1 FROM sms_messages WHERE id = ?1 AND status = 'pending'",
            )?
            .query_row([id], |r| r.get(0))
            .optional()?;
        match cut {
            None => continue,
            Some(true) => {
                let unknown = SmsResult::Unknown {
                    reason: "the gateway's answer to its call was never written (the server stopped, or the ledger took no writes)".into(),
                };
                let tally = settle(ctx, id, &unknown, retry_base)?;
                if tally.failed > 0 {
                    claimed.failed.push(id.clone());
                    continue;
                }
                claimed.cut.push(id.clone());
            }
            Some(false) => {}
        }
        ctx.conn
            .prepare_cached(
                "UPDATE sms_messages SET next_attempt_at = ?2 WHERE id = ?1 AND status = 'pending'",
            )?
            .execute(params![id, until])?;
        claimed.ids.push(id.clone());
    }
    Ok(claimed)
}

/// Marks a claimed message as being sent, just before the gateway is called: its attempt is
/// counted now, and `in_flight` stays set until its result is written (`record`), so that a call
/// cut by a crash is known at the next claim. False if it is no longer pending or already marked.
pub fn begin(ctx: &WriteCtx<'_>, id: &SmsId) -> Result<bool> {
    let changed = ctx
        .conn
        .prepare_cached(
            "UPDATE sms_messages SET attempts = attempts + 1, in_flight = 1, updated_at = ?2
             WHERE id = ?1 AND status = 'pending' AND in_flight = 0",
        )?
        .execute(params![id, ctx.at()])?;
    Ok(changed == 1)
}

/// When the next pending message is due, if any.
pub fn next_due_at(conn: &Connection) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT MIN(next_attempt_at) FROM sms_messages WHERE status = 'pending'")?
        .query_row([], |r| r.get(0))?)
}

/// What the gateway did with one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmsResult {
    /// Taken.
    Sent {
        /// The gateway's message id.
        provider_id: Option<String>,
        /// What it said.
        status: String,
    },
    /// Refused for good.
    Refused {
        /// What it said.
        status: String,
    },
    /// Answered for another number than the one sent to: failed, not sent again.
    OtherNumber {
        /// What it said, that number masked.
        status: String,
    },
    /// Not taken this time: tried again later, up to `SMS_ATTEMPTS_MAX` tries.
    Retry {
        /// Why.
        reason: String,
    },
    /// It may have been taken (no answer in time once it was sent, an answer that cannot be
    /// read): tried once more, never again after a second such outcome.
    Unknown {
        /// Why.
        reason: String,
    },
}

/// The beginning of a message's `error` after an outcome that was not known: the next such
/// outcome fails it, so that a message is sent at most twice for it.
const OUTCOME_UNKNOWN: &str = "outcome unknown (it may have been sent): ";

/// How many messages a `record` sent, failed and left for later.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SmsTally {
    /// Taken by the gateway.
    pub sent: u64,
    /// Refused, or out of tries.
    pub failed: u64,
    /// To be tried again.
    pub retrying: u64,
    /// Why the last one given up after a try that may be tried again was: `no more tries`, or
    /// `a second outcome not known`.
    pub given_up: Option<&'static str>,
}

/// Records what became of messages (one writer command for many), each sent after its `begin`
/// (which counted its attempt). A retry waits `retry_base` doubled per try (at most
/// `SMS_RETRY_CAP_MS`); after `SMS_ATTEMPTS_MAX` tries it is `failed`.
pub fn record(
    ctx: &WriteCtx<'_>,
    results: &[(SmsId, SmsResult)],
    retry_base: Duration,
) -> Result<SmsTally> {
    let mut tally = SmsTally::default();
    for (id, result) in results {
        let one = settle(ctx, id, result, retry_base)?;
        tally.sent += one.sent;
        tally.failed += one.failed;
        tally.retrying += one.retrying;
        tally.given_up = one.given_up.or(tally.given_up);
    }
    Ok(tally)
}

/// Writes one message's result (of the attempt `begin` counted) and clears its `in_flight`.
fn settle(
    ctx: &WriteCtx<'_>,
    id: &SmsId,
    result: &SmsResult,
    retry_base: Duration,
) -> Result<SmsTally> {
    let mut tally = SmsTally::default();
    // (`error` is not changed by this statement: it returns the try before's.)
    let row: Option<(i64, Option<String>)> = ctx
        .conn
        .prepare_cached(
            "UPDATE sms_messages SET in_flight = 0, updated_at = ?2
                 WHERE id = ?1 AND status = 'pending' RETURNING attempts, error",
        )?
        .query_row(params![id, ctx.at()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((attempts, before)) = row else {
        return Ok(tally);
    };
    let unknown_before = before.is_some_and(|e| e.starts_with(OUTCOME_UNKNOWN));
    let (status, next, provider_id, provider_status, error) = match result {
        SmsResult::Sent {
            provider_id,
            status,
        } => {
            tally.sent += 1;
            (
                SmsStatus::Sent,
                None,
                provider_id.clone(),
                Some(status.clone()),
                None,
            )
        }
        SmsResult::Refused { status } | SmsResult::OtherNumber { status } => {
            tally.failed += 1;
            let error = match result {
                SmsResult::OtherNumber { .. } => {
                    "the gateway answered for another number: not sent again"
                }
                _ => "refused by the gateway",
            };
            (
                SmsStatus::Failed,
                None,
                None,
                Some(status.clone()),
                Some(error.to_string()),
            )
        }
        // A second outcome not known fails it: the message may have gone twice already.
        SmsResult::Unknown { reason } if unknown_before => {
            tally.failed += 1;
            tally.given_up = Some("a second outcome not known");
            (
                SmsStatus::Failed,
                None,
                None,
                None,
                Some(format!(
                    "{OUTCOME_UNKNOWN}{reason}, a second time: not tried again"
                )),
            )
        }
        SmsResult::Retry { reason } | SmsResult::Unknown { reason }
            if attempts >= crate::limits::SMS_ATTEMPTS_MAX =>
        {
            tally.failed += 1;
            tally.given_up = Some("no more tries");
            (
                SmsStatus::Failed,
                None,
                None,
                None,
                Some(format!("{reason}; no more tries")),
            )
        }
        SmsResult::Retry { reason } | SmsResult::Unknown { reason } => {
            // Said as not known, so that the next such outcome fails it; a refusal of the
            // moment after one keeps saying so (an unknown, a 500, an unknown… sent it three
            // times).
            let reason = match result {
                SmsResult::Unknown { .. } => format!("{OUTCOME_UNKNOWN}{reason}"),
                _ if unknown_before => {
                    format!("{OUTCOME_UNKNOWN}an earlier try; then {reason}")
                }
                _ => reason.clone(),
            };
            tally.retrying += 1;
            let shift = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
            let wait_ms = (retry_base.as_millis() as u64)
                .saturating_mul(1 << shift)
                .min(crate::limits::SMS_RETRY_CAP_MS);
            let next = crate::time::rfc3339_ms(crate::time::now_unix_ms() + wait_ms as i64);
            (
                SmsStatus::Pending,
                Some(next),
                None,
                None,
                Some(reason.clone()),
            )
        }
    };
    ctx.conn
            .prepare_cached(
                "UPDATE sms_messages SET status = ?2, next_attempt_at = ?3, provider_id = COALESCE(?4, provider_id),
                 provider_status = COALESCE(?5, provider_status), error = ?6 WHERE id = ?1",
            )?
            .execute(params![id, status, next, provider_id, provider_status, error])?;
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guards against: `GET /sms?userId=` and `?status=` read every text kept (30 days' worth,
    /// 13 ms at 15,000) for a page: each is found from an index of its own (schema 22), a
    /// user's texts of a status from the user's.
    #[test]
    fn a_users_texts_and_texts_of_a_status_are_found_from_their_index() {
        let conn = crate::store::migrated_in_memory().unwrap();
        for (status, user, index) in [
            (true, false, "sms_messages_status (status=? AND id<?)"),
            (false, true, "sms_messages_user (user_id=? AND id<?)"),
            (true, true, "sms_messages_user (user_id=? AND id<?)"),
        ] {
            let plan = crate::store::unbound_query_plan(&conn, &list_sql(status, user));
            assert!(plan.iter().any(|l| l.contains(index)), "{plan:#?}");
            assert!(!plan.iter().any(|l| l.contains("TEMP B-TREE")), "{plan:#?}");
        }
    }

    /// The texts name a category in the words the web UI uses for it, in each language.
    #[test]
    fn the_known_categories_are_named_as_the_web_ui_names_them() {
        let i18n = include_str!("../../ui/js/i18n.js");
        let (en, sw) = i18n
            .split_once("\nexport const sw = {")
            .expect("the Kiswahili table in ui/js/i18n.js");
        for (name, english, kiswahili) in KNOWN_CATEGORIES {
            for (table, words) in [(en, english), (sw, kiswahili)] {
                assert!(
                    table.contains(&format!("'category.{name}': '{words}',")),
                    "ui/js/i18n.js names {name} otherwise than {words:?}"
                );
            }
        }
        assert_eq!(category_text("school_fees", Language::Sw), "Karo ya shule");
        assert_eq!(category_text("term_2_books", Language::Sw), "Term 2 books");
    }

    #[test]
    fn texts_are_short_with_amounts_in_both_languages() {
        let facts = Facts {
            kes: KesCents::new(150_000).unwrap(),
            usd: UsdCents::new(1_000).unwrap(),
            category: "school_fees".into(),
            receipt: Some("SIM0ABC123".into()),
        };
        let waiting = render(SmsTemplate::RequestWaiting, Language::En, &facts);
        assert_eq!(
            waiting,
            "remit: a payment of KES 1,500 (USD 10.00) for School fees is waiting for your approval."
        );
        assert_eq!(
            render(SmsTemplate::RequestPaid, Language::Sw, &facts),
            "remit: malipo yako ya KES 1,500 yamelipwa. Risiti ya M-Pesa SIM0ABC123."
        );
        for template in SmsTemplate::ALL {
            for language in Language::ALL {
                let text = render(*template, *language, &facts);
                assert!(
                    text.len() <= 160,
                    "{template} {language}: {} chars",
                    text.len()
                );
                assert!(text.is_ascii(), "{template} {language}: {text}");
                assert!(text.contains("KES 1,500"), "{template} {language}: {text}");
            }
        }
    }
}
