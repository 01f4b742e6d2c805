//! `/payment-requests`: create, list, get, approve, reject, cancel.

use super::{actor_with, page_params, status_param};
use crate::app::App;
use crate::domain::{
    parse_text, CategoryName, EscrowId, MerchantAccount, PaymentRequestId, RequestStatus,
};
use crate::error::Result;
use crate::http::idempotency::{self, key_of, signed_in};
use crate::http::reply::Reply;
use crate::http::request::Req;
use crate::money::KesCents;
use crate::service::requests::{self as service, NewPaymentRequest};
use crate::service::{views, Role};

/// `POST /payment-requests`.
pub fn create(app: &App, req: &Req) -> Result<Reply> {
    let actor = actor_with(app, req, &[Role::Recipient, Role::Agent])?;
    let mut f = req.fields()?;
    let escrow_id = f.string("escrowId")?;
    let category = CategoryName::parse("category", &f.string("category")?)?;
    let major = f.take("amountKes");
    let minor = f.take("amountKesCents");
    if major.is_none() && minor.is_none() {
        return Err(f.missing_one_of("amountKes", &["amountKes", "amountKesCents"]));
    }
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
    let input = NewPaymentRequest {
        escrow_id: EscrowId::parse(&escrow_id)?,
        category,
        amount,
        merchant_name,
        merchant_account,
        note,
    };
    let ttl_s = app.config.request_ttl_s;
    // The service's rules name the amount `amountKes`; a client that sent cents hears of the
    // field it sent.
    let sent = if major.is_some() {
        "amountKes"
    } else {
        "amountKesCents"
    };
    // A request acts only through the writer's context: requests made together share a
    // savepoint.
    idempotency::write_repeatable(
        &app.store,
        actor.credential,
        key_of(app.store.keys(), req, &actor)?,
        move |ctx| {
            service::create(ctx, &actor, &input, ttl_s)
                .map(|v| Reply::json(201, &v))
                .map_err(|e| e.naming("amountKes", sent))
        },
    )
}

/// `GET /payment-requests`.
pub fn list(app: &App, req: &Req) -> Result<Reply> {
    let actor = req.actor(app)?;
    let (limit, cursor) = page_params(req, crate::domain::PaymentRequestId::is_shaped)?;
    let status = status_param(req, RequestStatus::parse_field)?;
    let escrow_id = req
        .query_given("escrowId")?
        .map(EscrowId::parse)
        .transpose()?;
    let page = app.store.read(|conn, keys| {
        views::payment_requests(
            conn,
            keys,
            &actor,
            escrow_id.as_ref(),
            status,
            limit,
            cursor.as_deref(),
        )
    })?;
    Ok(Reply::json(200, &page))
}

/// `GET /payment-requests/:id`.
pub fn get(app: &App, req: &Req) -> Result<Reply> {
    let actor = req.actor(app)?;
    let id = PaymentRequestId::parse(req.param(0))?;
    let view = app
        .store
        .read(|conn, keys| views::payment_request(conn, keys, &actor, &id))?;
    Ok(Reply::json(200, &view))
}

#[derive(Copy, Clone)]
enum Decision {
    Approve,
    Reject,
    Cancel,
}

fn decide(app: &App, req: &Req, decision: Decision) -> Result<Reply> {
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
    let id = PaymentRequestId::parse(req.param(0))?;
    let key = key_of(app.store.keys(), req, &actor)?;
    if key.is_none() && matches!(decision, Decision::Approve) {
        // The hot path: the writer approves and answers with the request's view, read with the
        // request before the change and brought up to date (`service::requests::approve`), and this
        // thread turns it into JSON, off the writer. An approval does nothing but through the
        // writer's context, so approvals waiting together share one savepoint
        // (`Store::write_repeatable`).
        let view = app
            .store
            .write_repeatable(signed_in(actor.credential, move |ctx| {
                service::approve(ctx, &actor, &id)
            }))?;
        app.payouts_wakeup.notify();
        return Ok(Reply::json(200, &view));
    }
    // A decision acts only through the writer's context, like the approval above.
    let reply = idempotency::write_repeatable(&app.store, actor.credential, key, move |ctx| {
        let view = match decision {
            Decision::Approve => service::approve(ctx, &actor, &id)?,
            Decision::Reject => service::reject(ctx, &actor, &id, reason.as_deref())?,
            Decision::Cancel => service::cancel(ctx, &actor, &id)?,
        };
        Ok(Reply::json(200, &view))
    })?;
    if matches!(decision, Decision::Approve) {
        app.payouts_wakeup.notify();
    }
    Ok(reply)
}

/// `POST /payment-requests/:id/approve`.
pub fn approve(app: &App, req: &Req) -> Result<Reply> {
    decide(app, req, Decision::Approve)
}

/// `POST /payment-requests/:id/reject`.
pub fn reject(app: &App, req: &Req) -> Result<Reply> {
    decide(app, req, Decision::Reject)
}

/// `POST /payment-requests/:id/cancel`.
pub fn cancel(app: &App, req: &Req) -> Result<Reply> {
    decide(app, req, Decision::Cancel)
}
