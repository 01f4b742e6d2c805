//! The routes of API.md: match the path to a route, check the method, parse the body into
//! domain types, call one service function, and shape the reply. No SQL here.

use super::body::{item_object, Fields};
use super::idempotency::{self, Key};
use super::{App, Method, Reply, Req};
use crate::domain::{check_id, parse_reference, parse_text, CategoryName, IdKind, KenyanPhone};
use crate::error::{Error, Result};
use crate::limits::{PAGE_ROWS_DEFAULT, PAGE_ROWS_MAX, REFERENCE_BYTES_MAX};
use crate::money::{KesCents, RateKesPerUsd, UsdCents};
use crate::service::escrows::{self, Categories, DepositOutcome, DepositSource, NewEscrow};
use crate::service::payouts::{self, PayoutResult};
use crate::service::requests::{self, MerchantAccount, NewPaymentRequest};
use crate::service::users::{self, NewUser};
use crate::service::{fx, require_role, views, Actor, EscrowParties, Role};
use serde_json::{json, Value};

/// Every route: its template and the methods it answers.
const ROUTES: &[(&str, &[Method])] = &[
    ("/health", &[Method::Get]),
    ("/metrics", &[Method::Get]),
    ("/me", &[Method::Get]),
    ("/escrows", &[Method::Get, Method::Post]),
    ("/escrows/:id", &[Method::Get]),
    ("/escrows/:id/deposits", &[Method::Post]),
    ("/escrows/:id/journal", &[Method::Get]),
    ("/escrows/:id/cancel", &[Method::Post]),
    ("/payment-requests", &[Method::Get, Method::Post]),
    ("/payment-requests/:id", &[Method::Get]),
    ("/payment-requests/:id/approve", &[Method::Post]),
    ("/payment-requests/:id/reject", &[Method::Post]),
    ("/payment-requests/:id/cancel", &[Method::Post]),
    ("/fx-rates", &[Method::Get]),
    ("/fx-rates/:pair", &[Method::Put]),
    ("/users", &[Method::Get, Method::Post]),
    ("/users/:id/tokens", &[Method::Post]),
    ("/tokens/:prefix", &[Method::Delete]),
    ("/audit", &[Method::Get]),
    ("/admin/integrity", &[Method::Get]),
    ("/payouts", &[Method::Get]),
    ("/deposits", &[Method::Get]),
    ("/payouts/:id/resolve", &[Method::Post]),
    ("/webhooks/stripe", &[Method::Post]),
    ("/webhooks/payouts/:token", &[Method::Post]),
    ("/webhooks/mpesa/:token", &[Method::Post]),
];

/// Finds the route of a path: its template and the values of its `:params`.
fn match_route(path: &str) -> Option<(&'static str, &'static [Method], Vec<&str>)> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    'routes: for (template, methods) in ROUTES {
        let parts: Vec<&str> = template.trim_start_matches('/').split('/').collect();
        if parts.len() != segments.len() {
            continue;
        }
        let mut params = Vec::new();
        for (part, segment) in parts.iter().zip(&segments) {
            if part.starts_with(':') {
                if segment.is_empty() {
                    continue 'routes;
                }
                params.push(*segment);
            } else if part != segment {
                continue 'routes;
            }
        }
        return Some((template, methods, params));
    }
    None
}

/// Does this path need a bearer token? (Everything but health, metrics, webhooks and the UI.)
pub fn requires_bearer(method: Method, path: &str) -> bool {
    match match_route(path) {
        Some((route, methods, _)) => {
            methods.contains(&method)
                && !matches!(
                    route,
                    "/health"
                        | "/metrics"
                        | "/webhooks/stripe"
                        | "/webhooks/payouts/:token"
                        | "/webhooks/mpesa/:token"
                )
        }
        None => false,
    }
}

/// Routes a request; returns the reply, the route template (for metrics) and the request id.
pub fn dispatch(app: &App, req: &Req) -> (Result<Reply>, &'static str, String) {
    let request_id = req.request_id.clone();
    let Some((route, methods, params)) = match_route(&req.path) else {
        let result = if req.method == Method::Get {
            super::static_files::serve(&req.path)
        } else {
            Err(Error::NotFound { what: "route" })
        };
        return (result, "static", request_id);
    };
    if !methods.contains(&req.method) {
        let mut reply = super::error_reply(&Error::MethodNotAllowed, &request_id);
        let allow: Vec<&str> = methods.iter().map(|m| m.as_str()).collect();
        reply.headers.push(("Allow", allow.join(", ")));
        return (Ok(reply), route, request_id);
    }
    let param = |i: usize| params.get(i).copied().unwrap_or("");
    let result = match (route, req.method) {
        ("/health", _) => health(app),
        ("/metrics", _) => metrics(app, req),
        ("/me", _) => me(app, req),
        ("/escrows", Method::Post) => create_escrow(app, req),
        ("/escrows", _) => list_escrows(app, req),
        ("/escrows/:id", _) => get_escrow(app, req, param(0)),
        ("/escrows/:id/deposits", _) => record_deposit(app, req, param(0)),
        ("/escrows/:id/journal", _) => escrow_journal(app, req, param(0)),
        ("/escrows/:id/cancel", _) => cancel_escrow(app, req, param(0)),
        ("/payment-requests", Method::Post) => create_request(app, req),
        ("/payment-requests", _) => list_requests(app, req),
        ("/payment-requests/:id", _) => get_request(app, req, param(0)),
        ("/payment-requests/:id/approve", _) => {
            decide_request(app, req, param(0), Decision::Approve)
        }
        ("/payment-requests/:id/reject", _) => decide_request(app, req, param(0), Decision::Reject),
        ("/payment-requests/:id/cancel", _) => decide_request(app, req, param(0), Decision::Cancel),
        ("/fx-rates", _) => get_rates(app, req),
        ("/fx-rates/:pair", _) => set_rate(app, req, param(0)),
        ("/users", Method::Post) => create_user(app, req),
        ("/users", _) => list_users(app, req),
        ("/users/:id/tokens", _) => issue_token(app, req, param(0)),
        ("/tokens/:prefix", _) => revoke_token(app, req, param(0)),
        ("/audit", _) => audit(app, req),
        ("/admin/integrity", _) => integrity(app, req),
        ("/payouts", _) => list_payouts(app, req),
        ("/deposits", _) => list_deposits(app, req),
        ("/payouts/:id/resolve", _) => resolve_payout(app, req, param(0)),
        ("/webhooks/stripe", _) => crate::webhooks::stripe(app, req),
        ("/webhooks/payouts/:token" | "/webhooks/mpesa/:token", _) => {
            crate::webhooks::mpesa(app, req, param(0))
        }
        _ => Err(Error::NotFound { what: "route" }),
    };
    (result, route, request_id)
}

/// The actor, refused unless their role is one of `roles` (admins always pass).
fn actor_with(app: &App, req: &Req, roles: &[Role]) -> Result<Actor> {
    let actor = req.actor(app)?;
    require_role(&actor, roles)?;
    Ok(actor)
}

/// The idempotency key of a POST by `actor`.
fn key(req: &Req, actor: &Actor) -> Result<Option<Key>> {
    let query: Vec<String> = req.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    Key::parse(
        req.idempotency_key.as_deref(),
        &actor.id,
        req.method.as_str(),
        &req.path,
        &query.join("&"),
        &req.body,
    )
}

fn page_params(req: &Req) -> Result<(u32, Option<String>)> {
    let limit = match req.query("limit") {
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=PAGE_ROWS_MAX).contains(n))
            .ok_or_else(|| {
                Error::invalid(
                    "limit",
                    format!("must be a whole number from 1 to {PAGE_ROWS_MAX}"),
                )
            })?,
        None => PAGE_ROWS_DEFAULT,
    };
    let cursor = match req.query("cursor") {
        Some(c) if !c.is_empty() => {
            let ok = c.len() <= 40 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !ok {
                return Err(Error::invalid(
                    "cursor",
                    "is not a cursor this API returned",
                ));
            }
            Some(c.to_string())
        }
        _ => None,
    };
    Ok((limit, cursor))
}

fn status_param(req: &Req, allowed: &[&str]) -> Result<Option<String>> {
    match req.query("status") {
        Some(s) if allowed.contains(&s) => Ok(Some(s.to_string())),
        Some(_) => Err(Error::invalid(
            "status",
            format!("must be one of {}", allowed.join(", ")),
        )),
        None => Ok(None),
    }
}

fn health(app: &App) -> Result<Reply> {
    let db_ok = app
        .store
        .read(|conn, _| Ok(conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
        .is_ok();
    let body = json!({"status": if db_ok { "ok" } else { "degraded" }, "db": if db_ok { "ok" } else { "error" },
                      "version": env!("CARGO_PKG_VERSION")});
    Ok(Reply::json(if db_ok { 200 } else { 503 }, &body))
}

fn metrics(app: &App, req: &Req) -> Result<Reply> {
    if !app.config.metrics_public {
        actor_with(app, req, &[])?;
    }
    let text = app.metrics.render(&app.store, app.config.payout_timeout_s);
    Ok(Reply {
        status: 200,
        body: text.into_bytes(),
        content_type: "text/plain; version=0.0.4",
        headers: Vec::new(),
        replay_body: None,
    })
}

fn me(app: &App, req: &Req) -> Result<Reply> {
    let actor = req.actor(app)?;
    let id = actor.id.clone();
    let (name, _) = app
        .store
        .read(move |conn, keys| views::user_name_phone(conn, keys, &id))?;
    Ok(Reply::json(
        200,
        &json!({"userId": actor.id, "role": actor.role.as_str(), "name": name}),
    ))
}

/// Reads `{field}` / `{field}Cents` from a body.
fn usd(fields: &mut Fields, field: &str, max: UsdCents) -> Result<UsdCents> {
    let major = fields.take(field);
    let minor = fields.take(&format!("{field}Cents"));
    UsdCents::parse_either(
        &fields.field_name(field),
        major.as_ref(),
        minor.as_ref(),
        max,
    )
}

fn opt_usd(fields: &mut Fields, field: &str, max: UsdCents) -> Result<Option<UsdCents>> {
    let major = fields.take(field);
    let minor = fields.take(&format!("{field}Cents"));
    if major.is_none() && minor.is_none() {
        return Ok(None);
    }
    UsdCents::parse_either(
        &fields.field_name(field),
        major.as_ref(),
        minor.as_ref(),
        max,
    )
    .map(Some)
}

fn parse_categories(items: Vec<Value>, total_max: UsdCents) -> Result<Categories> {
    if items.is_empty() {
        return Err(Error::invalid(
            "categories",
            "must name at least one category",
        ));
    }
    if items.len() > crate::limits::CATEGORIES_PER_ESCROW_MAX {
        return Err(Error::invalid(
            "categories",
            "must have at most 16 categories",
        ));
    }
    if items.iter().all(Value::is_string) {
        let names = items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                CategoryName::parse(&format!("categories[{i}]"), v.as_str().unwrap_or(""))
            })
            .collect::<Result<Vec<_>>>()?;
        return Ok(Categories::Names(names));
    }
    if items.iter().all(Value::is_object) {
        let mut pairs = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let mut fields = item_object(item, &format!("categories[{i}]"))?;
            let name = CategoryName::parse(&fields.field_name("name"), &fields.string("name")?)?;
            let amount = usd(&mut fields, "amountUsd", total_max)?;
            fields.finish()?;
            pairs.push((name, amount));
        }
        return Ok(Categories::Amounts(pairs));
    }
    Err(Error::invalid(
        "categories",
        "must be all names or all {\"name\", \"amountUsd\"} objects",
    ))
}

fn create_escrow(app: &App, req: &Req) -> Result<Reply> {
    let actor = actor_with(app, req, &[Role::Sender])?;
    let mut f = req.fields()?;
    let max = app.config.escrow_total_max;
    let recipient_phone = KenyanPhone::parse("recipientPhone", &f.string("recipientPhone")?)?;
    let recipient_name =
        parse_text("recipientName", &f.string("recipientName")?, true)?.unwrap_or_default();
    let total = usd(&mut f, "totalAmountUsd", max)?;
    let categories = parse_categories(f.array("categories")?, max)?;
    let daily_limit = opt_usd(&mut f, "dailyLimitUsd", max)?;
    f.finish()?;
    let input = NewEscrow {
        recipient_phone,
        recipient_name,
        total,
        categories,
        daily_limit,
    };
    idempotency::write(&app.store, key(req, &actor)?, move |ctx| {
        escrows::create(ctx, &actor, &input).map(|v| Reply::json(201, &v))
    })
}

fn list_escrows(app: &App, req: &Req) -> Result<Reply> {
    let actor = req.actor(app)?;
    let (limit, cursor) = page_params(req)?;
    let status = status_param(
        req,
        &["pending_deposit", "active", "completed", "cancelled"],
    )?;
    let recipient_phone_index = match req.query("recipientPhone") {
        Some(p) if actor.role == Role::Agent || actor.role == Role::Admin => Some(
            app.store
                .keys()
                .blind_index(&KenyanPhone::parse("recipientPhone", p)?.e164()),
        ),
        Some(_) => {
            return Err(Error::invalid(
                "recipientPhone",
                "only agents and admins search by phone",
            ))
        }
        None => None,
    };
    let filter = views::EscrowFilter {
        status,
        recipient_phone_index,
    };
    let page = app
        .store
        .read(|conn, keys| views::escrows(conn, keys, &actor, &filter, limit, cursor.as_deref()))?;
    Ok(Reply::json(200, &page.json()))
}

fn get_escrow(app: &App, req: &Req, id: &str) -> Result<Reply> {
    let actor = req.actor(app)?;
    let view = app
        .store
        .read(|conn, keys| views::escrow(conn, keys, &actor, id))?;
    Ok(Reply::json(200, &view))
}

fn escrow_journal(app: &App, req: &Req, id: &str) -> Result<Reply> {
    let actor = req.actor(app)?;
    let (limit, cursor) = page_params(req)?;
    let after = match cursor {
        Some(c) => Some(
            c.parse::<i64>()
                .map_err(|_| Error::invalid("cursor", "is not a cursor this API returned"))?,
        ),
        None => None,
    };
    let page = app
        .store
        .read(|conn, _| views::journal(conn, &actor, id, limit, after))?;
    Ok(Reply::json(200, &page.json()))
}

fn record_deposit(app: &App, req: &Req, escrow_id: &str) -> Result<Reply> {
    let actor = actor_with(app, req, &[Role::Agent])?;
    check_id(IdKind::Escrow, escrow_id)?;
    let mut f = req.fields()?;
    let amount = usd(&mut f, "amountUsd", app.config.escrow_total_max)?;
    let reference = parse_reference("reference", &f.string("reference")?, REFERENCE_BYTES_MAX)?;
    f.finish()?;
    let escrow_id = escrow_id.to_string();
    idempotency::write(&app.store, key(req, &actor)?, move |ctx| {
        let (view, outcome) = escrows::record_deposit(
            ctx,
            &actor,
            &escrow_id,
            DepositSource::Cash,
            &reference,
            amount,
        )?;
        Ok(Reply::json(
            if outcome == DepositOutcome::Duplicate {
                200
            } else {
                201
            },
            &view,
        ))
    })
}

fn cancel_escrow(app: &App, req: &Req, escrow_id: &str) -> Result<Reply> {
    let actor = req.actor(app)?;
    req.fields()?.finish()?;
    let escrow_id = escrow_id.to_string();
    idempotency::write(&app.store, key(req, &actor)?, move |ctx| {
        escrows::cancel(ctx, &actor, &escrow_id).map(|v| Reply::json(200, &v))
    })
}

fn create_request(app: &App, req: &Req) -> Result<Reply> {
    let actor = actor_with(app, req, &[Role::Recipient, Role::Agent])?;
    let mut f = req.fields()?;
    let escrow_id = f.string("escrowId")?;
    let category = CategoryName::parse("category", &f.string("category")?)?;
    let major = f.take("amountKes");
    let minor = f.take("amountKesCents");
    let amount = KesCents::parse_either(
        "amountKes",
        major.as_ref(),
        minor.as_ref(),
        app.config.request_kes_max,
    )?;
    let merchant_name =
        parse_text("merchantName", &f.string("merchantName")?, true)?.unwrap_or_default();
    let mut account = f.object("merchantAccount")?;
    let kind = account.string("type")?;
    let number = account.string("number")?;
    let reference = account.opt_string("accountReference")?;
    account.finish()?;
    let merchant_account = MerchantAccount::parse(&kind, &number, reference.as_deref())?;
    let note = match f.opt_string("note")? {
        Some(n) => parse_text("note", &n, false)?,
        None => None,
    };
    f.finish()?;
    check_id(IdKind::Escrow, &escrow_id)?;
    let input = NewPaymentRequest {
        escrow_id,
        category,
        amount,
        merchant_name,
        merchant_account,
        note,
    };
    idempotency::write(&app.store, key(req, &actor)?, move |ctx| {
        requests::create(ctx, &actor, &input).map(|v| Reply::json(201, &v))
    })
}

fn list_requests(app: &App, req: &Req) -> Result<Reply> {
    let actor = req.actor(app)?;
    let (limit, cursor) = page_params(req)?;
    let status = status_param(
        req,
        &[
            "pending_approval",
            "approved",
            "paid",
            "failed",
            "rejected",
            "cancelled",
        ],
    )?;
    let escrow_id = req.query("escrowId");
    let page = app.store.read(|conn, keys| {
        views::payment_requests(
            conn,
            keys,
            &actor,
            escrow_id,
            status.as_deref(),
            limit,
            cursor.as_deref(),
        )
    })?;
    Ok(Reply::json(200, &page.json()))
}

fn get_request(app: &App, req: &Req, id: &str) -> Result<Reply> {
    let actor = req.actor(app)?;
    let view = app
        .store
        .read(|conn, keys| views::payment_request(conn, keys, &actor, id))?;
    Ok(Reply::json(200, &view))
}

#[derive(Copy, Clone)]
enum Decision {
    Approve,
    Reject,
    Cancel,
}

fn decide_request(app: &App, req: &Req, id: &str, decision: Decision) -> Result<Reply> {
    let actor = req.actor(app)?;
    let mut f = req.fields()?;
    let reason = match decision {
        Decision::Reject => match f.opt_string("reason")? {
            Some(r) => parse_text("reason", &r, false)?,
            None => None,
        },
        _ => None,
    };
    f.finish()?;
    let id = id.to_string();
    let reply = idempotency::write(&app.store, key(req, &actor)?, move |ctx| {
        let view = match decision {
            Decision::Approve => requests::approve(ctx, &actor, &id)?,
            Decision::Reject => requests::reject(ctx, &actor, &id, reason.as_deref())?,
            Decision::Cancel => requests::cancel(ctx, &actor, &id)?,
        };
        Ok(Reply::json(200, &view))
    })?;
    if matches!(decision, Decision::Approve) {
        app.payouts_wakeup.notify();
    }
    Ok(reply)
}

fn get_rates(app: &App, req: &Req) -> Result<Reply> {
    req.actor(app)?;
    let rates = app.store.read(|conn, _| fx::rates_json(conn))?;
    Ok(Reply::json(200, &rates))
}

fn set_rate(app: &App, req: &Req, pair: &str) -> Result<Reply> {
    let actor = actor_with(app, req, &[])?;
    if pair != "USD-KES" {
        return Err(Error::NotFound {
            what: "currency pair",
        });
    }
    let mut f = req.fields()?;
    let rate = f.take("rate").ok_or(Error::MissingField {
        field: "rate".into(),
    })?;
    let rate = RateKesPerUsd::parse_json("rate", &rate)?;
    f.finish()?;
    let view = app.store.write(move |ctx| fx::set(ctx, &actor, rate))?;
    Ok(Reply::json(200, &view))
}

fn create_user(app: &App, req: &Req) -> Result<Reply> {
    let actor = actor_with(app, req, &[])?;
    let mut f = req.fields()?;
    let role = Role::parse("role", &f.string("role")?)?;
    let name = parse_text("name", &f.string("name")?, true)?.unwrap_or_default();
    let phone = match f.opt_string("phone")? {
        Some(p) => Some(KenyanPhone::parse("phone", &p)?),
        None => None,
    };
    f.finish()?;
    let user = NewUser { role, name, phone };
    idempotency::write(&app.store, key(req, &actor)?, move |ctx| {
        let (view, token) = users::create(ctx, &actor, &user)?;
        Ok(token_reply(json!({"user": view, "token": token})))
    })
}

/// A `201` that shows a new token once: an idempotent replay answers with `"token": null`.
fn token_reply(mut body: Value) -> Reply {
    let mut reply = Reply::json(201, &body);
    body["token"] = Value::Null;
    body["tokenShownOnce"] = json!(true);
    reply.replay_body = Some(body.to_string().into_bytes());
    reply
}

fn list_users(app: &App, req: &Req) -> Result<Reply> {
    actor_with(app, req, &[])?;
    let items = app.store.read(users::list)?;
    Ok(Reply::json(200, &json!({"items": items})))
}

fn issue_token(app: &App, req: &Req, user_id: &str) -> Result<Reply> {
    let actor = actor_with(app, req, &[])?;
    req.fields()?.finish()?;
    let user_id = user_id.to_string();
    idempotency::write(&app.store, key(req, &actor)?, move |ctx| {
        let token = users::issue_token(ctx, &actor, &user_id)?;
        Ok(token_reply(json!({"userId": user_id, "token": token})))
    })
}

fn revoke_token(app: &App, req: &Req, prefix: &str) -> Result<Reply> {
    let actor = actor_with(app, req, &[])?;
    let prefix = prefix.to_string();
    let view = app
        .store
        .write(move |ctx| users::revoke_token(ctx, &actor, &prefix))?;
    Ok(Reply::json(200, &view))
}

fn audit(app: &App, req: &Req) -> Result<Reply> {
    let actor = req.actor(app)?;
    let entity = req
        .query("entity")
        .filter(|e| !e.is_empty())
        .ok_or(Error::MissingField {
            field: "entity".into(),
        })?;
    let entity = entity.to_string();
    let items = app.store.read(move |conn, _| {
        if !actor.is_admin() {
            // A sender may read the audit of their own escrow; nobody else but admins.
            let parties = EscrowParties::load_visible(conn, &entity, &actor)?;
            if !(actor.role == Role::Sender && parties.sender_id == actor.id) {
                return Err(Error::Forbidden);
            }
        }
        crate::audit::lines_for(conn, &entity, crate::limits::AUDIT_ROWS_MAX)
    })?;
    Ok(Reply::json(200, &json!({"items": items})))
}

fn integrity(app: &App, req: &Req) -> Result<Reply> {
    actor_with(app, req, &[])?;
    let report = app.store.read(crate::integrity::check)?;
    Ok(Reply::json(200, &report.json()))
}

fn list_payouts(app: &App, req: &Req) -> Result<Reply> {
    actor_with(app, req, &[])?;
    let status = status_param(
        req,
        &["queued", "sent", "succeeded", "failed", "stuck", "flagged"],
    )?;
    let (limit, _) = page_params(req)?;
    let timeout = app.config.payout_timeout_s;
    let items = app.store.read(|conn, _| {
        payouts::list(
            conn,
            status.as_deref(),
            timeout,
            crate::time::now_unix(),
            limit,
        )
    })?;
    Ok(Reply::json(200, &json!({"items": items})))
}

fn list_deposits(app: &App, req: &Req) -> Result<Reply> {
    actor_with(app, req, &[])?;
    let status = status_param(req, &["applied", "flagged"])?;
    let (limit, _) = page_params(req)?;
    let escrow_id = req.query("escrowId");
    let items = app
        .store
        .read(|conn, _| escrows::list_deposits(conn, status.as_deref(), escrow_id, limit))?;
    Ok(Reply::json(200, &json!({"items": items})))
}

fn resolve_payout(app: &App, req: &Req, payout_id: &str) -> Result<Reply> {
    let actor = actor_with(app, req, &[])?;
    let mut f = req.fields()?;
    let outcome = f.string("outcome")?;
    let receipt = f.opt_string("receipt")?;
    let reason = f.opt_string("reason")?;
    f.finish()?;
    let result = match (outcome.as_str(), receipt) {
        ("paid", Some(receipt)) => PayoutResult::Succeeded {
            receipt: parse_reference("receipt", &receipt, REFERENCE_BYTES_MAX)?,
        },
        ("paid", None) => {
            return Err(Error::MissingField {
                field: "receipt".into(),
            })
        }
        ("failed", None) => PayoutResult::Failed {
            code: "manual".into(),
            desc: parse_text(
                "reason",
                reason
                    .as_deref()
                    .unwrap_or("resolved as failed by an operator"),
                false,
            )?
            .unwrap_or_default(),
        },
        ("failed", Some(_)) => return Err(Error::invalid("receipt", "is only for paid payouts")),
        _ => return Err(Error::invalid("outcome", "must be paid or failed")),
    };
    let payout_id = payout_id.to_string();
    let timeout_s = app.config.payout_timeout_s;
    idempotency::write(&app.store, key(req, &actor)?, move |ctx| {
        payouts::resolve(ctx, &actor, &payout_id, &result, timeout_s).map(|v| Reply::json(200, &v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_templates_and_params() {
        let (route, _, params) = match_route("/payment-requests/pr_1/approve").unwrap();
        assert_eq!(
            (route, params),
            ("/payment-requests/:id/approve", vec!["pr_1"])
        );
        assert!(match_route("/escrows//cancel").is_none());
        assert!(match_route("/../../etc/passwd").is_none());
        assert_eq!(match_route("/escrows").unwrap().0, "/escrows");
    }
}
