//! Idempotency keys: the first response for (user, key) is stored in the same writer
//! transaction as the change and replayed verbatim, status included, for the same request;
//! the same key with a different request is `422 idempotency_key_reused`. A request the service
//! refused (`404`, `409`, …) is stored with its refusal; requests refused before they ran
//! (malformed bodies, authentication) and transient failures (`503`, `500`) are not.
//! Stored responses are encrypted like any PII; a new token in a response is replaced by
//! `null` in the stored copy, since a token is shown once.

use super::Reply;
use crate::error::{Error, Result};
use crate::limits::{IDEMPOTENCY_KEY_BYTES_MAX, IDEMPOTENCY_TTL_S};
use crate::store::{Store, WriteCtx};
use rusqlite::{params, OptionalExtension};

/// A validated `Idempotency-Key` and the fingerprint of its request.
pub struct Key {
    user_id: String,
    key: String,
    fingerprint: [u8; 32],
}

impl Key {
    /// Parses the header: 1–255 visible ASCII characters.
    pub fn parse(
        header: Option<&str>,
        user_id: &str,
        method: &str,
        path: &str,
        query: &str,
        body: &[u8],
    ) -> Result<Option<Key>> {
        let Some(key) = header else { return Ok(None) };
        let ok = !key.is_empty()
            && key.len() <= IDEMPOTENCY_KEY_BYTES_MAX
            && key.bytes().all(|b| b.is_ascii_graphic());
        if !ok {
            return Err(Error::invalid(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            ));
        }
        let fingerprint = crate::crypto::sha256(
            &[
                method.as_bytes(),
                b" ",
                path.as_bytes(),
                b"?",
                query.as_bytes(),
                b"\n",
                body,
            ]
            .concat(),
        );
        Ok(Some(Key {
            user_id: user_id.to_string(),
            key: key.to_string(),
            fingerprint,
        }))
    }
}

/// Runs `f` as one writer command; with a key, replays a stored response or stores the new one
/// in the same transaction.
pub fn write<F>(store: &Store, key: Option<Key>, f: F) -> Result<Reply>
where
    F: FnOnce(&WriteCtx<'_>) -> Result<Reply> + Send + 'static,
{
    store.write(move |ctx| {
        let Some(key) = key else { return f(ctx) };
        let cutoff = crate::time::rfc3339(ctx.now - IDEMPOTENCY_TTL_S);
        let stored: Option<(Vec<u8>, u16, String)> = ctx
            .conn
            .prepare_cached(
                "SELECT fingerprint, status, body FROM idempotency_keys WHERE user_id = ?1 AND key = ?2 AND created_at > ?3",
            )?
            .query_row(params![key.user_id, key.key, cutoff], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        let aad = format!("idempotency_keys.body.{}.{}", key.user_id, key.key);
        if let Some((fingerprint, status, body_enc)) = stored {
            if fingerprint != key.fingerprint {
                return Err(Error::IdempotencyKeyReused);
            }
            let body = ctx.keys.decrypt(&aad, &body_enc)?;
            let mut reply = Reply {
                status,
                body: body.into_bytes(),
                content_type: "application/json",
                headers: Vec::new(),
                replay_body: None,
            };
            reply.headers.push(("Idempotent-Replayed", "true".into()));
            return Ok(reply);
        }
        let reply = match in_savepoint(ctx, f) {
            Ok(reply) => reply,
            // The request ran and was refused (404, 409, …): that answer is the first response
            // too, and its replay must not run it again. Transient failures (busy, internal)
            // are not stored, so that a retry with the same key can still succeed.
            Err(e) if is_final(&e) => super::error_reply(&e, ""),
            Err(e) => return Err(e),
        };
        // Responses hold PII (and, for new tokens, a secret shown once): stored encrypted, and
        // a new token is never stored at all.
        let stored_body = reply.replay_body.as_ref().unwrap_or(&reply.body);
        let body_enc = ctx.keys.encrypt(&aad, &String::from_utf8_lossy(stored_body))?;
        ctx.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO idempotency_keys (user_id, key, fingerprint, status, body, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                key.user_id,
                key.key,
                key.fingerprint.as_slice(),
                reply.status,
                body_enc,
                crate::time::rfc3339(ctx.now)
            ])?;
        Ok(reply)
    })
}

/// Runs `f` in a savepoint of its own, so that a refusal undoes its changes while the
/// idempotency record of that refusal can still be written.
fn in_savepoint<F>(ctx: &WriteCtx<'_>, f: F) -> Result<Reply>
where
    F: FnOnce(&WriteCtx<'_>) -> Result<Reply>,
{
    ctx.conn
        .prepare_cached("SAVEPOINT idempotent")?
        .execute([])?;
    let logged = crate::audit::pending_log_len();
    let result = f(ctx);
    if result.is_err() {
        ctx.conn
            .prepare_cached("ROLLBACK TO idempotent")?
            .execute([])?;
        crate::audit::discard_pending_log(logged);
    }
    ctx.conn.prepare_cached("RELEASE idempotent")?.execute([])?;
    result
}

/// Is this refusal the request's real answer (stored for replay), not a passing failure?
fn is_final(e: &Error) -> bool {
    !matches!(
        e,
        Error::Busy | Error::Internal(_) | Error::WrongKey | Error::IdempotencyKeyReused
    )
}

/// Deletes keys older than the retention time (called from a background thread).
pub fn purge_expired(ctx: &WriteCtx<'_>) -> Result<usize> {
    let cutoff = crate::time::rfc3339(ctx.now - IDEMPOTENCY_TTL_S);
    Ok(ctx.conn.execute(
        "DELETE FROM idempotency_keys WHERE created_at <= ?1",
        [cutoff],
    )?)
}
