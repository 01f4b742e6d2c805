//! Users and their API tokens. Tokens are 160 random bits, shown once, stored as SHA-256.

use super::{Actor, Role};
use crate::crypto::{self, Keys};
use crate::domain::{new_id, IdKind, KenyanPhone};
use crate::error::{Error, Result};
use crate::store::{is_unique_violation, WriteCtx};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};

/// Length of the public token prefix used to name a token (`rmt_` + 8 hex).
pub const TOKEN_PREFIX_CHARS: usize = 12;

/// A new user.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Role.
    pub role: Role,
    /// Display name (PII: encrypted).
    pub name: String,
    /// Phone (PII: encrypted, blind-indexed). Recipients need one.
    pub phone: Option<KenyanPhone>,
}

/// Inserts a user; `NotFound`-free. A phone already taken is a validation error.
pub fn insert_user(conn: &Connection, keys: &Keys, user: &NewUser, now: i64) -> Result<String> {
    let id = new_id(IdKind::User);
    let name_enc = keys.encrypt(&format!("users.name.{id}"), &user.name)?;
    let (phone_enc, phone_index) = match &user.phone {
        Some(p) => (
            Some(keys.encrypt(&format!("users.phone.{id}"), &p.e164())?),
            Some(keys.blind_index(&p.e164())),
        ),
        None => (None, None),
    };
    let inserted = conn
        .prepare_cached(
            "INSERT INTO users (id, role, name_enc, phone_enc, phone_index, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![id, user.role.as_str(), name_enc, phone_enc, phone_index, crate::time::rfc3339(now)]);
    match inserted {
        Err(e) if is_unique_violation(&e) => {
            Err(Error::invalid("phone", "belongs to another user"))
        }
        other => {
            other?;
            Ok(id)
        }
    }
}

/// Issues a token for a user and returns it; only its hash is stored.
pub fn insert_token(conn: &Connection, user_id: &str, now: i64) -> Result<String> {
    // 20 random bytes = 160 bits. The prefix is part of the token, so it is random too.
    for _ in 0..4 {
        let token = format!("rmt_{}", crypto::random_hex(20));
        let hash = crypto::sha256(token.as_bytes());
        let inserted = conn
            .prepare_cached("INSERT INTO api_tokens (token_hash, prefix, user_id, created_at) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![hash.as_slice(), &token[..TOKEN_PREFIX_CHARS], user_id, crate::time::rfc3339(now)]);
        match inserted {
            Err(e) if is_unique_violation(&e) => continue,
            other => {
                other?;
                return Ok(token);
            }
        }
    }
    Err(Error::internal("could not find a free token prefix"))
}

/// `POST /users`, `remit user add`: a user and their first token.
pub fn create(ctx: &WriteCtx<'_>, actor: &Actor, user: &NewUser) -> Result<(Value, String)> {
    super::require_role(actor, &[])?;
    if user.role == Role::Recipient && user.phone.is_none() {
        return Err(Error::MissingField {
            field: "phone".into(),
        });
    }
    let id = insert_user(ctx.conn, ctx.keys, user, ctx.now)?;
    let token = insert_token(ctx.conn, &id, ctx.now)?;
    crate::audit::append(
        ctx,
        &actor.id,
        "user.created",
        &id,
        &json!({"role": user.role.as_str()}),
    )?;
    crate::audit::append(
        ctx,
        &actor.id,
        "token.issued",
        &id,
        &json!({"prefix": &token[..TOKEN_PREFIX_CHARS]}),
    )?;
    let view = user_json(ctx.conn, ctx.keys, &id)?;
    Ok((view, token))
}

/// `POST /users/:id/tokens`: another token for an existing user.
pub fn issue_token(ctx: &WriteCtx<'_>, actor: &Actor, user_id: &str) -> Result<String> {
    super::require_role(actor, &[])?;
    crate::domain::check_id(IdKind::User, user_id)?;
    let exists: bool = ctx.conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM users WHERE id = ?1)",
        [user_id],
        |r| r.get(0),
    )?;
    if !exists {
        return Err(Error::NotFound { what: "user" });
    }
    let token = insert_token(ctx.conn, user_id, ctx.now)?;
    crate::audit::append(
        ctx,
        &actor.id,
        "token.issued",
        user_id,
        &json!({"prefix": &token[..TOKEN_PREFIX_CHARS]}),
    )?;
    Ok(token)
}

/// `DELETE /tokens/:prefix`, `remit token revoke`: revokes the token with this prefix.
pub fn revoke_token(ctx: &WriteCtx<'_>, actor: &Actor, prefix: &str) -> Result<Value> {
    super::require_role(actor, &[])?;
    let row: Option<(String, Option<String>)> = ctx
        .conn
        .query_row(
            "SELECT user_id, revoked_at FROM api_tokens WHERE prefix = ?1",
            [prefix],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((user_id, revoked_at)) = row else {
        return Err(Error::NotFound { what: "token" });
    };
    if revoked_at.is_none() {
        ctx.conn.execute(
            "UPDATE api_tokens SET revoked_at = ?2 WHERE prefix = ?1",
            params![prefix, crate::time::rfc3339(ctx.now)],
        )?;
        crate::audit::append(
            ctx,
            &actor.id,
            "token.revoked",
            &user_id,
            &json!({"prefix": prefix}),
        )?;
    }
    Ok(json!({"prefix": prefix, "userId": user_id, "revoked": true}))
}

/// The user behind a bearer token, unless unknown or revoked.
pub fn authenticate(conn: &Connection, token: &str) -> Result<Actor> {
    let hash = crypto::sha256(token.as_bytes());
    let row: Option<(String, String)> = conn
        .prepare_cached(
            "SELECT u.id, u.role FROM api_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = ?1 AND t.revoked_at IS NULL",
        )?
        .query_row([hash.as_slice()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (id, role) = row.ok_or(Error::Unauthenticated)?;
    Ok(Actor::user(id, Role::parse("role", &role)?))
}

/// Records when tokens were last used, many at once (called from a background thread so
/// that a request never writes just for this).
pub fn touch_tokens(ctx: &WriteCtx<'_>, token_hashes: &[[u8; 32]]) -> Result<()> {
    let at = crate::time::rfc3339(ctx.now);
    let mut stmt = ctx
        .conn
        .prepare_cached("UPDATE api_tokens SET last_used_at = ?2 WHERE token_hash = ?1")?;
    for hash in token_hashes {
        stmt.execute(params![hash.as_slice(), at])?;
    }
    Ok(())
}

/// One user as admins see it: id, role, name, phone in full, tokens by prefix.
pub fn user_json(conn: &Connection, keys: &Keys, user_id: &str) -> Result<Value> {
    let (role, created_at): (String, String) = conn.query_row(
        "SELECT role, created_at FROM users WHERE id = ?1",
        [user_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (name, phone) = super::views::user_name_phone(conn, keys, user_id)?;
    let mut stmt = conn.prepare_cached(
        "SELECT prefix, created_at, last_used_at, revoked_at FROM api_tokens WHERE user_id = ?1 ORDER BY created_at",
    )?;
    let tokens: Vec<Value> = stmt
        .query_map([user_id], |r| {
            Ok(json!({"prefix": r.get::<_, String>(0)?, "createdAt": r.get::<_, String>(1)?,
                      "lastUsedAt": r.get::<_, Option<String>>(2)?, "revokedAt": r.get::<_, Option<String>>(3)?}))
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(
        json!({"userId": user_id, "role": role, "name": name, "phone": phone.map(|p| p.e164()),
              "createdAt": created_at, "tokens": tokens}),
    )
}

/// `remit user list`, `GET /users`: every user, oldest first.
pub fn list(conn: &Connection, keys: &Keys) -> Result<Vec<Value>> {
    let ids: Vec<String> = conn
        .prepare("SELECT id FROM users ORDER BY id")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    ids.iter().map(|id| user_json(conn, keys, id)).collect()
}

/// Is there any user yet? (The first start creates an admin.)
pub fn any_user(conn: &Connection) -> Result<bool> {
    Ok(conn.query_row("SELECT EXISTS (SELECT 1 FROM users)", [], |r| r.get(0))?)
}
