//! `/users`, `/tokens`, `/me`.

use super::{actor_with, page_params};
use crate::app::App;
use crate::domain::{parse_text, KenyanPhone, Language, Role, UserId};
use crate::error::Result;
use crate::http::idempotency::{self, key_of, signed_in};
use crate::http::reply::Reply;
use crate::http::request::Req;
use crate::service::users::{self as service, NewUser};
use serde::Serialize;
use serde_json::json;

/// `GET /me`.
pub fn me(app: &App, req: &Req) -> Result<Reply> {
    let actor = req.actor(app)?;
    let settings = service::MeSettings {
        gateway: app.config.gateway.name(),
        idle_sign_out_s: app.config.ui_idle_s,
        max_escrow_usd: app.config.escrow_total_max.major(),
        max_escrow_usd_cents: app.config.escrow_total_max,
        max_request_kes: app.config.request_kes_max.major(),
        max_request_kes_cents: app.config.request_kes_max,
    };
    let view = app
        .store
        .read(|conn, keys| service::me(conn, keys, &actor, settings))?;
    Ok(Reply::json(200, &view))
}

/// A `201` that shows a new token once: an idempotent replay answers with `"token": null`.
pub(super) fn token_reply<T: Serialize>(created: &T) -> Reply {
    let mut reply = Reply::json(201, created);
    let mut replay = serde_json::to_value(created).unwrap_or_default();
    replay["token"] = serde_json::Value::Null;
    replay["tokenShownOnce"] = json!(true);
    reply.replay_body = Some(replay.to_string().into_bytes());
    reply
}

/// `POST /users`.
pub fn create(app: &App, req: &Req) -> Result<Reply> {
    let actor = actor_with(app, req, &[])?;
    let mut f = req.fields()?;
    let role = Role::parse_field("role", &f.string("role")?)?;
    let name = parse_text("name", &f.string("name")?, true)?.unwrap_or_default();
    let phone = match f.opt_string("phone")? {
        Some(p) => Some(KenyanPhone::parse("phone", &p)?),
        None => None,
    };
    let language = f
        .opt_string("language")?
        .map(|l| Language::parse_field("language", &l))
        .transpose()?;
    f.finish()?;
    let user = NewUser { role, name, phone };
    idempotency::write(
        &app.store,
        actor.credential,
        key_of(app.store.keys(), req, &actor)?,
        move |ctx| {
            let created = service::create_speaking(ctx, &actor, &user, language)?;
            Ok(token_reply(&created))
        },
    )
}

/// `GET /users`.
pub fn list(app: &App, req: &Req) -> Result<Reply> {
    actor_with(app, req, &[])?;
    let (limit, cursor) = page_params(req, crate::domain::UserId::is_shaped)?;
    let page = app
        .store
        .read(|conn, keys| service::list(conn, keys, limit, cursor.as_deref()))?;
    Ok(Reply::json(200, &page))
}

/// `PUT /users/:id/language`.
pub fn set_language(app: &App, req: &Req) -> Result<Reply> {
    let actor = actor_with(app, req, &[])?;
    let mut f = req.fields()?;
    let language = Language::parse_field("language", &f.string("language")?)?;
    f.finish()?;
    let user_id = UserId::parse(req.param(0))?;
    let view = app.store.write(signed_in(actor.credential, move |ctx| {
        service::set_language(ctx, &actor, &user_id, language)
    }))?;
    Ok(Reply::json(200, &view))
}

/// `POST /users/:id/tokens`.
pub fn issue_token(app: &App, req: &Req) -> Result<Reply> {
    let actor = actor_with(app, req, &[])?;
    req.fields()?.finish()?;
    let user_id = UserId::parse(req.param(0))?;
    idempotency::write(
        &app.store,
        actor.credential,
        key_of(app.store.keys(), req, &actor)?,
        move |ctx| {
            let issued = service::issue_token(ctx, &actor, &user_id)?;
            Ok(token_reply(&issued))
        },
    )
}

/// `DELETE /tokens/:prefix` (the whole token is accepted too, and must then be the token).
pub fn revoke_token(app: &App, req: &Req) -> Result<Reply> {
    let actor = actor_with(app, req, &[])?;
    let given = req.param(0).to_string();
    let view = app.store.write(signed_in(actor.credential, move |ctx| {
        service::revoke_token(ctx, &actor, &given)
    }))?;
    app.auth.forget(&view.prefix);
    Ok(Reply::json(200, &view))
}
