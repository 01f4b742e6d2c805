//! Idempotent POSTs: a writer command that replays a stored response for a repeated
//! `Idempotency-Key`, or runs the request and stores its first response in the same
//! transaction. A request the service refused (`404`, `409`, …) is stored with its refusal;
//! a request that was wrong as sent (`400`, whether its body was malformed or its amount more
//! than is due), one refused before it ran (authentication) and transient failures (`503`,
//! `500`) are not. A new token in a response is stored as `null`: a token is shown once.

use super::reply::{error_reply, status_of, Reply};
use super::request::Req;
use crate::error::{Error, Result};
use crate::service::idempotency::{self, IdempotencyKey, Lookup, StoredResponse};
use crate::service::{still_signed_in, Actor, Credential};
use crate::store::{Store, WriteCtx};

/// The idempotency key of a POST by `actor`, if it sent one. Keys are the user's, but a
/// recipient's token that opens one sender's escrows only has keys of its own: a replay must
/// not hand it a response made for a token that sees more (another sender's escrow).
pub fn key_of(
    keys: &crate::crypto::Keys,
    req: &Req,
    actor: &Actor,
) -> Result<Option<IdempotencyKey>> {
    let owner = match &actor.sender_scope {
        Some(scope) => format!("{}/{scope}", actor.id),
        None => actor.id.clone(),
    };
    req.idempotency_key()
        .map(|header| {
            IdempotencyKey::parse(
                keys,
                header,
                &owner,
                req.method.as_str(),
                &req.path,
                &req.query_text(),
                &req.body,
            )
        })
        .transpose()
}

/// Runs `f` as one writer command of the user signed in with `credential` (refused `401` if
/// that token was revoked meanwhile: `service::still_signed_in`); with a key, replays a stored
/// response or stores the new one in the same transaction.
pub fn write<F>(
    store: &Store,
    credential: Option<Credential>,
    key: Option<IdempotencyKey>,
    f: F,
) -> Result<Reply>
where
    F: Fn(&WriteCtx<'_>) -> Result<Reply> + Send + 'static,
{
    store.write(signed_in(credential, move |ctx| {
        keyed(ctx, key.as_ref(), &f)
    }))
}

/// `write` for a request that acts only through the writer's context (`Store::write_repeatable`:
/// requests of this kind waiting together share a savepoint).
pub fn write_repeatable<F>(
    store: &Store,
    credential: Option<Credential>,
    key: Option<IdempotencyKey>,
    f: F,
) -> Result<Reply>
where
    F: Fn(&WriteCtx<'_>) -> Result<Reply> + Send + 'static,
{
    store.write_repeatable(signed_in(credential, move |ctx| {
        keyed(ctx, key.as_ref(), &f)
    }))
}

/// The writer command `f` of the user signed in with `credential`, refused first (`401`) if
/// that token was revoked since its request was authenticated (`service::still_signed_in`):
/// what every writer command of a user's request runs as, keyed or not.
pub fn signed_in<T>(
    credential: Option<Credential>,
    f: impl Fn(&WriteCtx<'_>) -> Result<T>,
) -> impl Fn(&WriteCtx<'_>) -> Result<T> {
    move |ctx| {
        let who = still_signed_in(ctx, credential)?;
        ctx.as_signed_in(who, &f)
    }
}

/// The writer's part of `write`: without a key, `f`; with one, a replay, a refusal of the reused
/// key, or `f` and the record of its answer.
fn keyed(
    ctx: &WriteCtx<'_>,
    key: Option<&IdempotencyKey>,
    f: impl FnOnce(&WriteCtx<'_>) -> Result<Reply>,
) -> Result<Reply> {
    let Some(key) = key else { return f(ctx) };
    match idempotency::lookup(ctx, key)? {
        Lookup::Replay(stored) => return Ok(replayed(stored)),
        Lookup::Reused => return Err(Error::IdempotencyKeyReused),
        Lookup::New => {}
    }
    // In a savepoint of its own, so that a refusal undoes its changes while the record of
    // that refusal can still be written.
    let reply = match ctx.savepoint(f) {
        Ok(reply) => reply,
        // The request ran and was refused (404, 409, …): that answer is the first response
        // too, and its replay must not run it again. A request wrong as sent (400) and
        // transient failures (busy, internal) are not stored, so that a retry with the same
        // key, the mistake mended, can still succeed.
        Err(e) if is_final(&e) => error_reply(&e, ""),
        Err(e) => return Err(e),
    };
    let stored_body: &[u8] = reply.replay_body.as_deref().unwrap_or(&reply.body);
    let stored = StoredResponse {
        status: reply.status,
        body: String::from_utf8_lossy(stored_body).into_owned(),
    };
    idempotency::remember(ctx, key, &stored)?;
    Ok(reply)
}

/// A stored answer, as its replay says it.
pub fn replayed(stored: StoredResponse) -> Reply {
    let reply = Reply::bytes(stored.status, "application/json", stored.body.into_bytes());
    reply.with_header("Idempotent-Replayed", "true")
}

/// Is this refusal the request's real answer (stored for replay)? Not a passing failure, and
/// not a `400`: a request wrong as sent moved nothing, and the client that mends it (a kiosk
/// agent who typed more than is due) retries with the same key, which must not answer `422`.
/// The same request sent again is refused again (what is due only shrinks). Nor a refusal for
/// now (`NotNow`: the escrow's money held until an admin resolves a flag, a payout whose
/// Transaction Status is being asked): retried with the same key once it has passed, it is
/// answered anew, not with the hold it met.
fn is_final(e: &Error) -> bool {
    !matches!(e, Error::IdempotencyKeyReused | Error::NotNow(_))
        && !matches!(status_of(e), 400 | 500 | 503)
}
