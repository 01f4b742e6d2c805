//! Operations and administration: health, metrics, rates, audit, integrity, payouts, deposits.

use super::{actor_with, limit_param, page_params, seq_cursor, status_param};
use crate::app::App;
use crate::domain::{parse_kept_reference, parse_text, PayoutId};
use crate::error::{Error, Result};
use crate::http::idempotency::{self, key_of, signed_in};
use crate::http::reply::Reply;
use crate::http::request::Req;
use crate::limits::{AUDIT_ROWS_MAX, REFERENCE_BYTES_MAX};
use crate::money::RateKesPerUsd;
use crate::service::payouts::{self, PayoutFilter, PayoutResult};
use crate::service::views::DepositFilter;
use crate::service::{fx, views, EscrowParties, Page, Role};
use serde::Serialize;

/// `GET /health`.
pub fn health(app: &App, _req: &Req) -> Result<Reply> {
    #[derive(Serialize)]
    struct Health {
        status: &'static str,
        db: &'static str,
        version: &'static str,
        /// The background threads that ended before the stop, when any did.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        stopped: Vec<String>,
        /// A `503`'s words and code, in the shape of every error answer (a client that reads
        /// any non-2xx as `{"error", "code"}` finds them here too).
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        code: Option<&'static str>,
    }
    // Readable is not enough: a server whose disk is full answers every write 500, and a
    // monitor must hear of it.
    let db = if app.store.file_missing() {
        "missing"
    } else if !app.store.ping() {
        "error"
    } else if app.store.writes_failing() {
        "not_writable"
    } else if app.store.write_locked() {
        // Another process holds the write lock (a `sqlite3` shell left in a transaction):
        // reads go on, so the read above answered, while every write is `503 busy`.
        "locked"
    } else {
        "ok"
    };
    let db_ok = db == "ok";
    // A thread that ended (a panic, in the log) stops the payouts, the notifications or
    // replication while every request is still answered: a monitor must hear of it too.
    let stopped = app.threads.ended();
    let status = if !app.ready.load(std::sync::atomic::Ordering::SeqCst) {
        "starting"
    } else if db_ok && stopped.is_empty() {
        "ok"
    } else {
        "degraded"
    };
    let error = match (status, db) {
        ("ok", _) => None,
        ("starting", _) => Some("the server is still starting: ask again in a moment".into()),
        (_, "missing") => Some("the database file is no longer at its path".into()),
        (_, "error") => Some("the database does not answer".into()),
        (_, "not_writable") => Some("the database does not take writes".into()),
        (_, "locked") => Some(
            "another process holds the database's write lock: every write is answered 503 busy until it lets go".into(),
        ),
        _ => Some(format!(
            "background work of the server stopped ({}): restart it",
            stopped.join(", ")
        )),
    };
    let health = Health {
        status,
        db,
        version: env!("CARGO_PKG_VERSION"),
        stopped,
        code: error.is_some().then_some(status),
        error,
    };
    Ok(Reply::json(if status == "ok" { 200 } else { 503 }, &health))
}

/// `GET /metrics`.
pub fn metrics(app: &App, req: &Req) -> Result<Reply> {
    let admin = if app.config.metrics_public {
        // Public, as it is by default: what `GET /admin/float` tells only admins (the M-Pesa
        // float's balances) is shown to a caller with an admin's token only.
        req.has_authorization() && req.actor(app).is_ok_and(|actor| actor.role == Role::Admin)
    } else {
        actor_with(app, req, &[])?.role == Role::Admin
    };
    let text = app.metrics.render(
        &app.store,
        app.config.payout_timeout_s,
        &app.notify,
        app.replication.as_deref(),
        admin,
        app.threads.ended().len(),
    );
    Ok(Reply::bytes(
        200,
        "text/plain; version=0.0.4",
        text.into_bytes(),
    ))
}

/// The OpenAPI 3.1 document of the API (`docs/openapi.json`), embedded in the binary. A test
/// in `routes.rs` holds it equal to the route table.
pub const OPENAPI_JSON: &str = include_str!("../../../docs/openapi.json");

/// `GET /openapi.json`.
pub fn openapi(_app: &App, _req: &Req) -> Result<Reply> {
    Ok(
        Reply::bytes(200, "application/json", OPENAPI_JSON.as_bytes())
            .with_header("Cache-Control", "no-cache"),
    )
}

/// `GET /fx-rates`.
pub fn rates(app: &App, req: &Req) -> Result<Reply> {
    req.actor(app)?;
    let rates = app.store.read(|conn, _| fx::rates(conn))?;
    Ok(Reply::json(200, &rates))
}

/// `PUT /fx-rates/:pair`.
pub fn set_rate(app: &App, req: &Req) -> Result<Reply> {
    let actor = actor_with(app, req, &[])?;
    if !req.param(0).eq_ignore_ascii_case("USD-KES") {
        return Err(Error::NotFound {
            what: "currency pair",
        });
    }
    let mut f = req.fields()?;
    let rate = f.take("rate").ok_or_else(|| f.missing("rate"))?;
    let rate = RateKesPerUsd::parse_json("rate", &rate)?;
    f.finish()?;
    let view = app.store.write(signed_in(actor.credential, move |ctx| {
        fx::set(ctx, &actor, rate)
    }))?;
    Ok(Reply::json(200, &view))
}

/// `GET /audit?entity=…`.
pub fn audit(app: &App, req: &Req) -> Result<Reply> {
    let actor = req.actor(app)?;
    // Agents and recipients may never read it: `403` before the query is looked at, whatever
    // escrow it names (one of theirs or not, one that exists or not).
    if !(actor.is_admin() || actor.role == Role::Sender) {
        return Err(Error::Forbidden);
    }
    let entity = req
        .query("entity")
        .filter(|e| !e.is_empty())
        .ok_or(Error::MissingField {
            field: "entity".into(),
        })?
        .to_string();
    // Pages of at most 1,000 lines (the default), oldest first; an admin's cursor is the last
    // line's `seq`. A sender's `seq` is the line's place in the escrow's own log (1, 2, …),
    // not the ledger's: gaps in the ledger's numbers would tell them of lines they may not
    // see (a `user.created` between two of their escrows: the phone was new). Their cursor
    // holds that place and the ledger's `seq`, sealed (`SenderAuditCursor`): a page goes on
    // from the `seq`. (It was the place alone: a card deposit made the escrow's after a
    // refund came first brought its older lines into the middle of the log, and the next
    // page repeated a line and hid another; and each page read the log from its start.)
    let limit = limit_param(req, AUDIT_ROWS_MAX, AUDIT_ROWS_MAX)?;
    let cursor = req.query("cursor").filter(|c| !c.is_empty());
    let bad_cursor = || Error::invalid("cursor", "is not a cursor this API returned");
    let admin_after = match cursor {
        Some(text) if actor.is_admin() => seq_cursor(text).ok_or_else(bad_cursor)?,
        _ => 0,
    };
    let page = app.store.read(move |conn, keys| {
        // A sender may read the audit of their own escrow; nobody else but admins.
        let recipient = if actor.is_admin() {
            None
        } else {
            let escrow_id = crate::domain::EscrowId::parse(&entity)?;
            let parties = EscrowParties::load_visible(conn, &escrow_id, &actor)?;
            if !(actor.role == Role::Sender && actor.is(&parties.sender_id)) {
                return Err(Error::Forbidden);
            }
            Some(parties.recipient_id)
        };
        let mut next_sealed = None;
        let mut lines = match &recipient {
            None => crate::audit::lines_for(conn, &entity, admin_after, limit + 1)?,
            Some(_) => {
                let sealed = SenderAuditCursor::of(&actor.id, &entity);
                let (after_place, after_seq) = match cursor {
                    None => (0, 0),
                    Some(text) => sealed.open(keys, text).ok_or_else(bad_cursor)?,
                };
                let mut lines = crate::audit::lines_for(conn, &entity, after_seq, limit + 1)?;
                if let Some(last) = lines
                    .get(limit as usize - 1)
                    .filter(|_| lines.len() > limit as usize)
                {
                    let place = after_place + i64::from(limit);
                    next_sealed = Some(sealed.seal(keys, place, last.seq)?);
                }
                for (place, line) in (after_place + 1..).zip(lines.iter_mut()) {
                    line.seq = place;
                }
                lines
            }
        };
        if let Some(recipient) = recipient {
            // The recipient's user id would tell a sender, by its time, whether the phone had
            // an account before their escrow (views hide it from senders for that reason):
            // neither in the details nor as the one who acted. M-Pesa's conversation ids are
            // for admins, as in the payout's own view. The other people who act on an escrow
            // (a kiosk agent taking cash or asking for a payment, an admin) are named by their
            // role: an id says nothing to a sender.
            let mut roles: std::collections::HashMap<String, Option<String>> =
                std::collections::HashMap::new();
            for line in &mut lines {
                // The token a line was acted with: the sender's own (theirs to match with the
                // tokens they hold: one they never had is someone else's act in their name),
                // not another's.
                if line.actor != actor.id {
                    if let Some(details) = line.details.as_object_mut() {
                        details.remove("token");
                    }
                }
                if line.actor != recipient.as_str()
                    && line.actor != actor.id
                    && line.actor.starts_with("usr_")
                {
                    let role = match roles.get(&line.actor) {
                        Some(role) => role.clone(),
                        None => {
                            let role = crate::service::users::role_of(conn, &line.actor)?;
                            roles.insert(line.actor.clone(), role.clone());
                            role
                        }
                    };
                    if let Some(role @ ("agent" | "admin")) = role.as_deref() {
                        line.actor = role.to_string();
                    }
                }
                if let Some(details) = line.details.as_object_mut() {
                    details.remove("recipientId");
                    details.remove("conversationId");
                    details.remove("originatorConversationId");
                }
                if line.actor == recipient.as_str() {
                    line.actor = "recipient".into();
                }
            }
        }
        Ok(match next_sealed {
            Some(next) => Page::of(lines, limit, |_| next.clone()),
            None => Page::of(lines, limit, |line| line.seq.to_string()),
        })
    })?;
    Ok(Reply::json(200, &page))
}

/// A sender's cursor in an escrow's audit log: the last line's place in the escrow's own log
/// and its `seq` in the ledger's, sealed under the key for this sender and this escrow (the
/// `seq` is not theirs to read, and a cursor opens for no one else's page).
struct SenderAuditCursor(String);

impl SenderAuditCursor {
    fn of(viewer: &str, escrow: &str) -> SenderAuditCursor {
        SenderAuditCursor(format!("audit-cursor.{viewer}.{escrow}"))
    }

    /// Both numbers written at full width: a sealed text as long as its numbers would tell the
    /// sender how many digits the ledger's `seq` has.
    fn seal(&self, keys: &crate::crypto::Keys, place: i64, seq: i64) -> Result<String> {
        keys.encrypt(&self.0, &format!("{place:019}.{seq:019}"))
    }

    /// (place, seq), or `None` for a text this did not seal (another's, a damaged one, one
    /// sealed under a key rotated away, or a place alone as cursors were until 2026-12-07).
    fn open(&self, keys: &crate::crypto::Keys, text: &str) -> Option<(i64, i64)> {
        let plain = keys.decrypt(&self.0, text).ok()?;
        let (place, seq) = plain.split_once('.')?;
        Some((place.parse().ok()?, seq.parse().ok()?))
    }
}

/// `GET /admin/integrity`: the whole ledger read, so one check at a time (another asked
/// meanwhile is `503 busy`), holding one of the read pool's connections (the file served, not
/// whatever is at its path now), each part in a snapshot of its own (`check_part_by_part`).
/// Until 2026-12-07 a script that asked it in a loop from a few connections took every pooled
/// connection for seconds each (the other requests waited 5 s, then were answered 500), and its
/// snapshot, held for the whole check, let the log grow past its bound under load.
pub fn integrity(app: &App, req: &Req) -> Result<Reply> {
    actor_with(app, req, &[])?;
    let _running = app
        .integrity_check
        .start()
        .ok_or(Error::Occupied(CHECK_RUNNING))?;
    let report = app.store.read(crate::integrity::check_part_by_part)?;
    Ok(Reply::json(200, &report))
}

/// What a second `GET /admin/integrity` is told while one runs.
pub const CHECK_RUNNING: &str = "an integrity check is running already (one at a time: it reads the whole ledger); ask again when it is done";

/// `GET /admin/replication`: where the ledger is replicated and how far behind it is.
pub fn replication(app: &App, req: &Req) -> Result<Reply> {
    actor_with(app, req, &[])?;
    let body = match &app.replication {
        Some(status) => {
            let mut view = serde_json::to_value(status.view())
                .map_err(|e| Error::internal(format!("replication status: {e}")))?;
            if let Some(object) = view.as_object_mut() {
                object.insert("enabled".into(), serde_json::Value::Bool(true));
            }
            view
        }
        None => serde_json::json!({ "enabled": false }),
    };
    Ok(Reply::json(200, &body))
}

/// `GET /admin/float`: the M-Pesa balances last reported.
pub fn float(app: &App, req: &Req) -> Result<Reply> {
    actor_with(app, req, &[])?;
    let alert = app.config.float_alert;
    let gateway = app.config.gateway.name();
    let view = app
        .store
        .read(|conn, _| crate::service::float::view(conn, gateway, alert))?;
    Ok(Reply::json(200, &view))
}

/// `GET /payouts?status=…`.
pub fn payouts(app: &App, req: &Req) -> Result<Reply> {
    actor_with(app, req, &[])?;
    let filter = status_param(req, PayoutFilter::parse)?.unwrap_or(PayoutFilter::All);
    let (limit, cursor) = page_params(req, PayoutId::is_shaped)?;
    let timeout = app.config.payout_timeout_s;
    let page = app.store.read(|conn, keys| {
        let now = crate::time::now_unix();
        payouts::list(conn, keys, filter, timeout, now, limit, cursor.as_deref())
    })?;
    Ok(Reply::json(200, &page))
}

/// `GET /deposits?status=…&escrowId=…`.
pub fn deposits(app: &App, req: &Req) -> Result<Reply> {
    let actor = actor_with(app, req, &[Role::Agent])?;
    let filter = status_param(req, DepositFilter::parse)?.unwrap_or(DepositFilter::All);
    let (limit, cursor) = page_params(req, crate::domain::DepositId::is_shaped)?;
    // An escrow that does not exist is 404, as on `GET /payment-requests`, not an empty list.
    let escrow_id = req
        .query_given("escrowId")?
        .map(crate::domain::EscrowId::parse)
        .transpose()?;
    // An agent reads the cash they took themselves, an escrow at a time (to print a receipt
    // again): by the escrow's index, never a scan of every deposit for their name. The list of
    // every deposit stays the admins'.
    let recorded_by = match actor.role {
        Role::Agent if escrow_id.is_none() => {
            return Err(Error::ForbiddenHere(
                "agents list the cash deposits they recorded on one escrow: give escrowId",
            ))
        }
        Role::Agent => Some(actor.id.as_str()),
        _ => None,
    };
    let page = app.store.read(|conn, _| {
        if let Some(escrow_id) = &escrow_id {
            EscrowParties::load(conn, escrow_id)?;
        }
        views::deposits(
            conn,
            filter,
            escrow_id.as_ref().map(|id| id.as_str()),
            recorded_by,
            limit,
            cursor.as_deref(),
        )
    })?;
    Ok(Reply::json(200, &page))
}

/// `POST /payouts/:id/resolve`.
pub fn resolve_payout(app: &App, req: &Req) -> Result<Reply> {
    let actor = actor_with(app, req, &[])?;
    let mut f = req.fields()?;
    let outcome = f.string("outcome")?;
    let receipt = f.opt_string("receipt")?;
    let reason = f.opt_string("reason")?;
    f.finish()?;
    let nothing_sends = matches!(app.config.gateway, crate::config::GatewayKind::None);
    let result = match (outcome.as_str(), receipt) {
        // Held to M-Pesa's form by `payouts::resolve` for a payout paid through M-Pesa.
        // Kept with a failure only: not dropped without a word.
        ("paid", Some(_)) if reason.is_some() => {
            return Err(Error::invalid("reason", "is only for failed payouts"))
        }
        ("paid", Some(receipt)) => PayoutResult::Succeeded {
            receipt: parse_kept_reference("receipt", &receipt, REFERENCE_BYTES_MAX)?,
        },
        ("paid", None) => {
            return Err(Error::MissingField {
                field: "receipt".into(),
            })
        }
        // A reason that is no text (blank, or characters that draw nothing) is none given: said
        // as such (it was kept as an empty description, which read as a reason given).
        ("failed", None) => PayoutResult::Failed {
            code: payouts::MANUAL.into(),
            desc: match reason {
                Some(text) => parse_text("reason", &text, false)?,
                None => None,
            }
            .unwrap_or_else(|| payouts::RESOLVED_WITHOUT_REASON.into()),
        },
        ("failed", Some(_)) => return Err(Error::invalid("receipt", "is only for paid payouts")),
        _ => return Err(Error::invalid("outcome", "must be paid or failed")),
    };
    let payout_id = PayoutId::parse(req.param(0))?;
    let timeout_s = app.config.payout_timeout_s;
    idempotency::write(
        &app.store,
        actor.credential,
        key_of(app.store.keys(), req, &actor)?,
        move |ctx| {
            payouts::resolve(ctx, &actor, &payout_id, &result, timeout_s, nothing_sends)
                .map(|v| Reply::json(200, &v))
        },
    )
}
