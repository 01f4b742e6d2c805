//! `/webhook-endpoints`, `/webhook-deliveries`, `/sms`: outgoing notifications, for admins.

use super::{actor_with, page_params, status_param};
use crate::app::App;
use crate::domain::{DeliveryId, DeliveryStatus, SmsStatus, UserId, WebhookEndpointId, WebhookUrl};
use crate::error::{Error, Result};
use crate::http::idempotency::{self, key_of, signed_in};
use crate::http::reply::Reply;
use crate::http::request::Req;
use crate::service::endpoints as service;
use serde_json::json;
use std::sync::{Arc, OnceLock};

/// `POST /webhook-endpoints` `{"url", "events": [...]}`: `201` with the endpoint and its signing
/// secret, shown once (an idempotent replay answers `"secret": null`).
pub fn create(app: &App, req: &Req) -> Result<Reply> {
    let actor = actor_with(app, req, &[])?;
    let mut f = req.fields()?;
    let allow_private = app.config.notify.webhook_allow_private;
    let url = WebhookUrl::parse("url", &f.string("url")?, allow_private)?;
    let events = service::parse_events("events", &f.array("events")?)?;
    f.finish()?;
    let key = key_of(app.store.keys(), req, &actor)?;
    // A request that will be replayed answers as it did, whatever its host resolves to now.
    let replayed = match &key {
        Some(key) => app
            .store
            .read(|conn, _| crate::service::idempotency::is_stored(conn, key))?,
        None => false,
    };
    if !replayed {
        url.refuse_unreachable("url", allow_private)?;
    }
    let reply = idempotency::write(&app.store, actor.credential, key, move |ctx| {
        let created = service::create(ctx, &actor, &url, &events)?;
        let mut reply = Reply::json(201, &created);
        let mut replay = serde_json::to_value(&created).unwrap_or_default();
        replay["secret"] = serde_json::Value::Null;
        replay["secretShownOnce"] = json!(true);
        reply.replay_body = Some(replay.to_string().into_bytes());
        Ok(reply)
    })?;
    app.notify.endpoints_changed();
    Ok(reply)
}

/// `GET /webhook-endpoints`.
pub fn list(app: &App, req: &Req) -> Result<Reply> {
    actor_with(app, req, &[])?;
    let (limit, cursor) = page_params(req, WebhookEndpointId::is_shaped)?;
    let page = app
        .store
        .read(|conn, keys| service::list(conn, keys, limit, cursor.as_deref()))?;
    Ok(Reply::json(200, &page))
}

/// `GET /webhook-endpoints/:id`.
pub fn get(app: &App, req: &Req) -> Result<Reply> {
    actor_with(app, req, &[])?;
    let id = WebhookEndpointId::parse(req.param(0))?;
    let view = app.store.read(|conn, keys| service::get(conn, keys, &id))?;
    Ok(Reply::json(200, &view))
}

/// `DELETE /webhook-endpoints/:id`.
pub fn delete(app: &App, req: &Req) -> Result<Reply> {
    let actor = actor_with(app, req, &[])?;
    let id = WebhookEndpointId::parse(req.param(0))?;
    let view = app.store.write(signed_in(actor.credential, move |ctx| {
        service::delete(ctx, &actor, &id)
    }))?;
    app.notify.endpoints_changed();
    Ok(Reply::json(200, &view))
}

fn set_enabled(app: &App, req: &Req, enabled: bool) -> Result<Reply> {
    let actor = actor_with(app, req, &[])?;
    req.fields()?.finish()?;
    let id = WebhookEndpointId::parse(req.param(0))?;
    let reply = idempotency::write(
        &app.store,
        actor.credential,
        key_of(app.store.keys(), req, &actor)?,
        move |ctx| service::set_enabled(ctx, &actor, &id, enabled).map(|v| Reply::json(200, &v)),
    )?;
    app.notify.endpoints_changed();
    Ok(reply)
}

/// `POST /webhook-endpoints/:id/enable`.
pub fn enable(app: &App, req: &Req) -> Result<Reply> {
    set_enabled(app, req, true)
}

/// `POST /webhook-endpoints/:id/disable`.
pub fn disable(app: &App, req: &Req) -> Result<Reply> {
    set_enabled(app, req, false)
}

/// `GET /webhook-endpoints/:id/deliveries?status=`.
pub fn deliveries(app: &App, req: &Req) -> Result<Reply> {
    actor_with(app, req, &[])?;
    let id = WebhookEndpointId::parse(req.param(0))?;
    deliveries_of(app, req, &id, service::EndpointsListed::Live)
}

/// `GET /webhook-deliveries?endpointId=`: an endpoint's deliveries, a deleted one's too.
pub fn deliveries_by_endpoint(app: &App, req: &Req) -> Result<Reply> {
    actor_with(app, req, &[])?;
    let id = req
        .query("endpointId")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| Error::MissingField {
            field: "endpointId".into(),
        })
        .and_then(WebhookEndpointId::parse)?;
    deliveries_of(app, req, &id, service::EndpointsListed::EvenDeleted)
}

fn deliveries_of(
    app: &App,
    req: &Req,
    id: &WebhookEndpointId,
    listed: service::EndpointsListed,
) -> Result<Reply> {
    let status = status_param(req, DeliveryStatus::parse_field)?;
    let (limit, cursor) = page_params(req, DeliveryId::is_shaped)?;
    let page = app
        .store
        .read(|conn, _| service::deliveries(conn, id, listed, status, limit, cursor.as_deref()))?;
    Ok(Reply::json(200, &page))
}

/// `GET /webhook-deliveries/:id`: one delivery with every attempt.
pub fn delivery(app: &App, req: &Req) -> Result<Reply> {
    actor_with(app, req, &[])?;
    let id = DeliveryId::parse(req.param(0))?;
    let view = app.store.read(|conn, _| service::delivery(conn, &id))?;
    Ok(Reply::json(200, &view))
}

/// `POST /webhook-deliveries/:id/retry`: one more attempt, now (a replay of the same
/// `Idempotency-Key` asks for none).
pub fn retry(app: &App, req: &Req) -> Result<Reply> {
    let actor = actor_with(app, req, &[])?;
    req.fields()?.finish()?;
    let id = DeliveryId::parse(req.param(0))?;
    let retried = Arc::new(OnceLock::new());
    let endpoint = Arc::clone(&retried);
    let reply = idempotency::write(
        &app.store,
        actor.credential,
        key_of(app.store.keys(), req, &actor)?,
        move |ctx| {
            let view = service::retry(ctx, &actor, &id)?;
            let _ = endpoint.set(view.webhook_endpoint_id.clone());
            Ok(Reply::json(200, &view))
        },
    )?;
    if let Some(endpoint) = retried.get() {
        app.notify.wake_endpoint(endpoint);
    }
    Ok(reply)
}

/// `GET /sms?status=&userId=`: the text messages, newest first (their text, never a phone).
pub fn sms(app: &App, req: &Req) -> Result<Reply> {
    actor_with(app, req, &[])?;
    let status = status_param(req, SmsStatus::parse_field)?;
    let user_id = req.query_given("userId")?.map(UserId::parse).transpose()?;
    let (limit, cursor) = page_params(req, crate::domain::SmsId::is_shaped)?;
    let page = app.store.read(|conn, keys| {
        crate::service::sms::list(
            conn,
            keys,
            status,
            user_id.as_ref(),
            limit,
            cursor.as_deref(),
        )
    })?;
    Ok(Reply::json(200, &page))
}
