//! `/escrows`: create, list, get, deposit, cancel, journal.

use super::{actor_with, opt_usd, page_params, seq_cursor, status_param, usd};
use crate::app::App;
use crate::domain::{
    parse_kept_reference, parse_text, CategoryName, EscrowId, EscrowStatus, KenyanPhone,
};
use crate::error::{Error, Result};
use crate::http::body::{item_object, Fields};
use crate::http::idempotency::{self, key_of};
use crate::http::reply::Reply;
use crate::http::request::Req;
use crate::limits::{CATEGORIES_PER_ESCROW_MAX, REFERENCE_BYTES_MAX};
use crate::money::{KesCents, UsdCents};
use crate::service::deposits::{self, CashAmount, DepositOutcome};
use crate::service::escrows::{self as service, Categories, NewEscrow};
use crate::service::{views, Role};
use serde_json::Value;

fn parse_categories(items: Vec<Value>, total_max: UsdCents) -> Result<Categories> {
    if items.is_empty() {
        return Err(Error::invalid(
            "categories",
            "must name at least one category",
        ));
    }
    if items.len() > CATEGORIES_PER_ESCROW_MAX {
        return Err(Error::invalid(
            "categories",
            format!("must have at most {CATEGORIES_PER_ESCROW_MAX} categories"),
        ));
    }
    if items.iter().all(Value::is_string) {
        let names = items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                CategoryName::parse_new(&format!("categories[{i}]"), v.as_str().unwrap_or(""))
            })
            .collect::<Result<Vec<_>>>()?;
        return Ok(Categories::Names(names));
    }
    if items.iter().all(Value::is_object) {
        let mut pairs = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let mut fields = item_object(item, &format!("categories[{i}]"))?;
            let name =
                CategoryName::parse_new(&fields.field_name("name"), &fields.string("name")?)?;
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

/// `POST /escrows`.
pub fn create(app: &App, req: &Req) -> Result<Reply> {
    let actor = actor_with(app, req, &[Role::Sender])?;
    let mut f: Fields = req.fields()?;
    let max = app.config.escrow_total_max;
    let recipient_phone = KenyanPhone::parse("recipientPhone", &f.string("recipientPhone")?)?;
    let recipient_name =
        parse_text("recipientName", &f.string("recipientName")?, true)?.unwrap_or_default();
    let total = usd(&mut f, "totalAmountUsd", max)?;
    let categories = parse_categories(f.array("categories")?, max)?;
    // The service's rules name the limit `dailyLimitUsd`; a client that sent cents hears of
    // the field it sent.
    let daily_limit_sent = match f.has("dailyLimitUsdCents") {
        true => "dailyLimitUsdCents",
        false => "dailyLimitUsd",
    };
    let daily_limit = opt_usd(&mut f, "dailyLimitUsd", max)?;
    f.finish()?;
    let input = NewEscrow {
        recipient_phone,
        recipient_name,
        total,
        categories,
        daily_limit,
        recipient_language: app.config.notify.recipient_language,
    };
    idempotency::write(
        &app.store,
        actor.credential,
        key_of(app.store.keys(), req, &actor)?,
        move |ctx| {
            service::create(ctx, &actor, &input)
                .map(|v| Reply::json(201, &v))
                .map_err(|e| e.naming("dailyLimitUsd", daily_limit_sent))
        },
    )
}

/// `GET /escrows`.
pub fn list(app: &App, req: &Req) -> Result<Reply> {
    let actor = req.actor(app)?;
    let (limit, cursor) = page_params(req, EscrowId::is_shaped)?;
    let status = status_param(req, EscrowStatus::parse_field)?;
    let recipient_phone_index = match req.query("recipientPhone") {
        Some(p) if actor.role == Role::Agent || actor.role == Role::Admin => Some(
            app.store
                .keys()
                .blind_index(&KenyanPhone::parse("recipientPhone", p)?.e164()),
        ),
        // A role that may never search by phone is refused as any forbidden action is.
        Some(_) => return Err(Error::Forbidden),
        None => None,
    };
    let short_ref = req
        .query("ref")
        .map(|r| crate::domain::parse_code("ref", r, crate::domain::SHORT_REF_LEN))
        .transpose()?;
    let filter = views::EscrowFilter {
        status,
        recipient_phone_index,
        short_ref,
    };
    let page = app
        .store
        .read(|conn, keys| views::escrows(conn, keys, &actor, &filter, limit, cursor.as_deref()))?;
    Ok(Reply::json(200, &page))
}

/// `GET /escrows/:id`.
pub fn get(app: &App, req: &Req) -> Result<Reply> {
    let actor = req.actor(app)?;
    let id = EscrowId::parse(req.param(0))?;
    let view = app
        .store
        .read(|conn, keys| views::escrow(conn, keys, &actor, &id))?;
    Ok(Reply::json(200, &view))
}

/// `GET /escrows/:id/journal`.
pub fn journal(app: &App, req: &Req) -> Result<Reply> {
    let actor = req.actor(app)?;
    let id = EscrowId::parse(req.param(0))?;
    let (limit, cursor) = page_params(req, |c| seq_cursor(c).is_some())?;
    let after = cursor.as_deref().and_then(seq_cursor);
    let page = app
        .store
        .read(|conn, _| views::journal(conn, &actor, &id, limit, after))?;
    Ok(Reply::json(200, &page))
}

/// `POST /escrows/:id/deposits`: cash at a kiosk.
pub fn deposit(app: &App, req: &Req) -> Result<Reply> {
    let actor = actor_with(app, req, &[Role::Agent])?;
    let escrow_id = EscrowId::parse(req.param(0))?;
    let mut f = req.fields()?;
    // The service's rules name the amounts by their decimal spelling; a client that sent cents
    // hears of the field it sent.
    let usd_sent = if f.has("amountUsdCents") {
        "amountUsdCents"
    } else {
        "amountUsd"
    };
    let usd_amount = opt_usd(&mut f, "amountUsd", app.config.escrow_total_max)?;
    let kes_major = f.take("amountKes");
    let kes_sent = if kes_major.is_some() {
        "amountKes"
    } else {
        "amountKesCents"
    };
    let kes_minor = f.take("amountKesCents");
    let amount = match (usd_amount, kes_major.is_some() || kes_minor.is_some()) {
        (Some(usd), false) => CashAmount::Usd(usd),
        (None, true) => CashAmount::Kes(KesCents::parse_either(
            "amountKes",
            kes_major.as_ref(),
            kes_minor.as_ref(),
            app.config.request_kes_max,
        )?),
        (Some(_), true) => {
            return Err(Error::invalid(
                "amountKes",
                "give amountUsd or amountKes, not both",
            ))
        }
        (None, false) => {
            return Err(f.missing_one_of(
                "amountUsd",
                &["amountUsd", "amountUsdCents", "amountKes", "amountKesCents"],
            ))
        }
    };
    let reference = f
        .opt_string("reference")?
        .map(|r| {
            parse_kept_reference("reference", &r, REFERENCE_BYTES_MAX).or_else(|refused| {
                // A reference this agent recorded before such were refused is still its
                // deposit's (a retry of it is answered as one), whatever it holds.
                let recorded = app.store.read(|conn, _| {
                    crate::service::deposits::cash_reference_recorded(conn, &r, &actor.id)
                })?;
                if recorded {
                    Ok(r)
                } else {
                    Err(refused)
                }
            })
        })
        .transpose()?;
    f.finish()?;
    let key = key_of(app.store.keys(), req, &actor)?;
    if reference.is_none() && key.is_none() {
        // Without a reference of the agent's, only the key can tell a retry from a second
        // deposit of the same amount.
        return Err(Error::MissingFieldWhen {
            field: "Idempotency-Key",
            when: "when the body has no reference: send the deposit's reference (your receipt \
                   book's number) or an Idempotency-Key header, so that a retry is not taken \
                   for a second deposit",
        });
    }
    idempotency::write(&app.store, actor.credential, key, move |ctx| {
        let recorded = deposits::record_cash(ctx, &actor, &escrow_id, reference.as_deref(), amount)
            .map_err(|e| {
                e.naming("amountKes", kes_sent)
                    .naming("amountUsd", usd_sent)
            })?;
        let status = if recorded.outcome == DepositOutcome::Duplicate {
            200
        } else {
            201
        };
        Ok(Reply::json(status, &recorded))
    })
}

/// `POST /escrows/:id/recipient-token`: the sender gives the recipient a first token (`201`,
/// shown once; an idempotent replay shows `null`).
pub fn recipient_token(app: &App, req: &Req) -> Result<Reply> {
    let actor = actor_with(app, req, &[Role::Sender])?;
    req.fields()?.finish()?;
    let escrow_id = EscrowId::parse(req.param(0))?;
    idempotency::write(
        &app.store,
        actor.credential,
        key_of(app.store.keys(), req, &actor)?,
        move |ctx| {
            let issued = crate::service::users::issue_recipient_token(ctx, &actor, &escrow_id)?;
            Ok(super::users::token_reply(&issued))
        },
    )
}

/// `POST /escrows/:id/clear-flag` (admin).
pub fn clear_flag(app: &App, req: &Req) -> Result<Reply> {
    let actor = req.actor(app)?;
    let mut f = req.fields()?;
    let seen = f.opt_string("flagReason")?;
    f.finish()?;
    let escrow_id = EscrowId::parse(req.param(0))?;
    let reply = idempotency::write(
        &app.store,
        actor.credential,
        key_of(app.store.keys(), req, &actor)?,
        move |ctx| {
            service::clear_flag(ctx, &actor, &escrow_id, seen.as_deref())
                .map(|v| Reply::json(200, &v))
        },
    )?;
    // Its payouts queued before the flag may go now.
    app.payouts_wakeup.notify();
    Ok(reply)
}

/// `POST /escrows/:id/cancel`.
pub fn cancel(app: &App, req: &Req) -> Result<Reply> {
    let actor = req.actor(app)?;
    req.fields()?.finish()?;
    let escrow_id = EscrowId::parse(req.param(0))?;
    idempotency::write(
        &app.store,
        actor.credential,
        key_of(app.store.keys(), req, &actor)?,
        move |ctx| service::cancel(ctx, &actor, &escrow_id).map(|v| Reply::json(200, &v)),
    )
}
