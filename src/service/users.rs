//! Users and their API tokens. Tokens are 160 random bits, shown once, stored as SHA-256.

use super::{Actor, Page, Role};
use crate::crypto::{self, EncryptedColumn, Keys};
use crate::domain::{KenyanPhone, Language, UserId};
use crate::error::{Error, Result};
use crate::limits::TOKEN_RANDOM_BYTES;
use crate::store::{is_unique_violation, WriteCtx};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use serde_json::json;

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

/// A token as admins see it: by prefix, never the token.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)] // named for what they hold
pub struct TokenView {
    pub prefix: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

/// A user as admins see it: phone in full, tokens by prefix.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)] // named for what they hold
pub struct UserView {
    pub user_id: UserId,
    pub role: Role,
    pub name: String,
    /// E.164.
    pub phone: Option<String>,
    /// The language of their SMS (`en` when not chosen).
    pub language: Language,
    pub created_at: String,
    pub tokens: Vec<TokenView>,
}

/// `GET /me`: who the caller is.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MeView {
    /// `usr_…`.
    pub user_id: String,
    /// The caller's role.
    pub role: Role,
    /// Their name.
    pub name: String,
    /// The server's settings a client needs.
    #[serde(flatten)]
    pub settings: MeSettings,
}

/// What `GET /me` says of the server's settings.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MeSettings {
    /// Which gateway pays payouts: `simulator` (no real money moves), `daraja` or `none`.
    pub gateway: &'static str,
    /// The web UI signs out after this many seconds without input (0: never;
    /// `REMIT_UI_IDLE_S`).
    pub idle_sign_out_s: u64,
    /// The largest escrow total (`REMIT_MAX_ESCROW_USD`): a form says so before anything is
    /// sent.
    pub max_escrow_usd: crate::money::Decimal,
    /// The same in cents.
    pub max_escrow_usd_cents: crate::money::UsdCents,
    /// The largest payment request (`REMIT_MAX_REQUEST_KES`).
    pub max_request_kes: crate::money::Decimal,
    /// The same in cents.
    pub max_request_kes_cents: crate::money::KesCents,
}

/// A user created, with their first token (shown once).
#[derive(Debug, Clone, Serialize)]
pub struct CreatedUser {
    /// The user.
    pub user: UserView,
    /// The token, in full.
    pub token: String,
}

/// A token issued (shown once).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuedToken {
    /// Whose.
    pub user_id: UserId,
    /// The token, in full.
    pub token: String,
}

/// A token revoked.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevokedToken {
    /// Its prefix.
    pub prefix: String,
    /// Whose.
    pub user_id: UserId,
    /// Always true.
    pub revoked: bool,
    /// It was revoked before this call (nothing changed).
    #[serde(skip)]
    pub already: bool,
}

/// The role of the user `id` (`None`: no such user), as the database spells it.
pub fn role_of(conn: &Connection, id: &str) -> Result<Option<String>> {
    use rusqlite::OptionalExtension;
    Ok(conn
        .prepare_cached("SELECT role FROM users WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?)
}

/// Inserts a user. A phone already taken is a validation error.
pub fn insert_user(conn: &Connection, keys: &Keys, user: &NewUser, now: i64) -> Result<UserId> {
    let id = UserId::new();
    let name_enc = keys.seal(EncryptedColumn::UserName, id.as_str(), &user.name)?;
    let (phone_enc, phone_index) = match &user.phone {
        Some(p) => (
            Some(keys.seal(EncryptedColumn::UserPhone, id.as_str(), &p.e164())?),
            Some(keys.blind_index(&p.e164())),
        ),
        None => (None, None),
    };
    let inserted = conn
        .prepare_cached(
            "INSERT INTO users (id, role, name_enc, phone_enc, phone_index, created_at, change_seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, remit_change_seq_of('users', ?1))",
        )?
        .execute(params![
            id,
            user.role,
            name_enc,
            phone_enc,
            phone_index,
            crate::time::rfc3339(now)
        ]);
    match inserted {
        Err(e) if is_unique_violation(&e) => {
            Err(Error::invalid(
                "phone",
                "belongs to another user (the users list finds them by it: remit user list, or the admin screen's Users; remit token issue gives them a token)",
            ))
        }
        other => {
            other?;
            Ok(id)
        }
    }
}

/// Issues a token for a user and returns it; only its hash is stored.
pub fn insert_token(conn: &Connection, user_id: &UserId, now: i64) -> Result<String> {
    insert_scoped_token(conn, user_id, None, now)
}

/// `insert_token` for a token that opens one sender's escrows only (`Actor::sender_scope`).
fn insert_scoped_token(
    conn: &Connection,
    user_id: &UserId,
    sender_scope: Option<&UserId>,
    now: i64,
) -> Result<String> {
    // The prefix is part of the token, so it is random too.
    for _ in 0..4 {
        let token = format!("rmt_{}", crypto::random_hex(TOKEN_RANDOM_BYTES));
        let hash = crypto::sha256(token.as_bytes());
        let inserted = conn
            .prepare_cached("INSERT INTO api_tokens (token_hash, prefix, user_id, created_at, sender_scope) VALUES (?1, ?2, ?3, ?4, ?5)")?
            .execute(params![hash.as_slice(), &token[..TOKEN_PREFIX_CHARS], user_id, crate::time::rfc3339(now), sender_scope]);
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

/// The details of a `token.issued` audit line: the token's prefix, the digest of its hash
/// (`crypto::token_digest`) and, for a token a sender gave, the escrow it was given for.
fn issued(token: &str, escrow: Option<&crate::domain::EscrowId>) -> serde_json::Value {
    let digest = crypto::token_digest(&crypto::sha256(token.as_bytes()));
    let mut details = json!({"prefix": &token[..TOKEN_PREFIX_CHARS], "hashDigest": digest});
    if let Some(escrow) = escrow {
        details["escrowId"] = json!(escrow);
    }
    details
}

/// Tokens issued before 2026-12-07 have no digest of their hash in their `token.issued` line,
/// and `remit check` could not tell such a hash replaced in the file (an editor's own token
/// given an admin's account). At each start every such token still open is given a
/// `token.hash_recorded` line with the digest of the hash it holds then: an edit after it is
/// found (one before it is not: the line records what the file held). Returns how many.
pub fn record_old_token_digests(ctx: &WriteCtx<'_>) -> Result<usize> {
    let rows: Vec<(String, String, Vec<u8>)> = ctx
        .conn
        .prepare(OLD_TOKENS)?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (user, prefix, hash) in &rows {
        ctx.audit(
            "system:upgrade",
            "token.hash_recorded",
            user,
            &json!({"prefix": prefix, "hashDigest": crypto::token_digest(hash)}),
        )?;
    }
    Ok(rows.len())
}

/// `record_old_token_digests`' tokens. The tokens are the outer loop (`CROSS JOIN`), each line
/// found by the log's entity index: without statistics SQLite chose to read the whole audit
/// log instead, and every start of a ledger of a million escrows took seconds more.
const OLD_TOKENS: &str = "SELECT t.user_id, t.prefix, t.token_hash FROM api_tokens t
             CROSS JOIN audit_log a ON a.entity = t.user_id AND a.action = 'token.issued'
                 AND json_extract(a.details, '$.prefix') = t.prefix
             WHERE t.revoked_at IS NULL AND json_extract(a.details, '$.hashDigest') IS NULL
                 AND NOT EXISTS (SELECT 1 FROM audit_log r WHERE r.entity = t.user_id
                     AND r.action = 'token.hash_recorded' AND json_extract(r.details, '$.prefix') = t.prefix)
             ORDER BY t.created_at, t.prefix";

/// `POST /users`, `remit user add`: a user and their first token.
pub fn create(ctx: &WriteCtx<'_>, actor: &Actor, user: &NewUser) -> Result<CreatedUser> {
    create_speaking(ctx, actor, user, None)
}

/// `create`, with the language of the user's SMS (`None`: English).
pub fn create_speaking(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    user: &NewUser,
    language: Option<Language>,
) -> Result<CreatedUser> {
    super::require_role(actor, &[])?;
    if user.role == Role::Recipient && user.phone.is_none() {
        return Err(Error::MissingField {
            field: "phone".into(),
        });
    }
    let id = insert_user(ctx.conn, ctx.keys, user, ctx.now)?;
    if let Some(language) = language {
        ctx.conn
            .prepare_cached(
                "UPDATE users SET change_seq = remit_change_seq_of('users', id), language = ?2 WHERE id = ?1",
            )?
            .execute(params![id, language])?;
    }
    let token = insert_token(ctx.conn, &id, ctx.now)?;
    ctx.audit(
        &actor.id,
        "user.created",
        id.as_str(),
        &json!({"role": user.role, "language": language}),
    )?;
    ctx.audit(
        &actor.id,
        "token.issued",
        id.as_str(),
        &issued(&token, None),
    )?;
    let user = user_view(ctx.conn, ctx.keys, &id)?;
    Ok(CreatedUser { user, token })
}

/// `POST /users/:id/tokens`: another token for an existing user.
pub fn issue_token(ctx: &WriteCtx<'_>, actor: &Actor, user_id: &UserId) -> Result<IssuedToken> {
    super::require_role(actor, &[])?;
    let exists: bool = ctx
        .conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM users WHERE id = ?1)")?
        .query_row([user_id], |r| r.get(0))?;
    if !exists {
        return Err(Error::NotFound { what: "user" });
    }
    let token = insert_token(ctx.conn, user_id, ctx.now)?;
    ctx.audit(
        &actor.id,
        "token.issued",
        user_id.as_str(),
        &issued(&token, None),
    )?;
    Ok(IssuedToken {
        user_id: user_id.clone(),
        token,
    })
}

/// A recipient's first token, given by the sender of their escrow.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecipientToken {
    /// The recipient.
    pub user_id: UserId,
    /// Their name as this escrow's sender typed it.
    pub name: String,
    /// The token, in full (shown once).
    pub token: String,
}

/// `POST /escrows/:id/recipient-token`: the escrow's sender gives its recipient a way to sign
/// in. Only a first token, and only for a recipient who receives from this sender alone: a
/// token opens every escrow of its holder, and a sender must not see another sender's.
/// Otherwise an admin issues it (`POST /users/:id/tokens`, `remit token issue`).
pub fn issue_recipient_token(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    escrow_id: &crate::domain::EscrowId,
) -> Result<RecipientToken> {
    let parties = super::EscrowParties::load_visible(ctx.conn, escrow_id, actor)?;
    if !parties.is_sender(actor) {
        return Err(if actor.role == Role::Sender {
            Error::NotFound { what: "escrow" }
        } else {
            Error::Forbidden
        });
    }
    let recipient = parties.recipient_id.clone();
    // The token opens the escrows of the escrow's sender (an admin asking acts for the sender:
    // a token scoped to the admin would open none).
    let sender = parties.sender_id.clone();
    // A first token only: a token ever issued, revoked ones included (an admin's revocation is
    // not a sender's to undo), and only to a plain recipient (a sender's phone may receive an
    // escrow, and a token for it would open that sender's own account).
    let (had_token, other_senders, plain_recipient): (bool, bool, bool) = ctx
        .conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM api_tokens WHERE user_id = ?1),
                EXISTS (SELECT 1 FROM escrows WHERE recipient_id = ?1 AND sender_id <> ?2),
                EXISTS (SELECT 1 FROM users WHERE id = ?1 AND role = 'recipient')",
        )?
        .query_row(params![recipient, sender], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    // One answer for every reason: which one it is would tell this sender about the
    // recipient's other senders, or that the phone already had an account.
    if had_token || other_senders || !plain_recipient {
        return Err(Error::NotNow(if actor.is_admin() {
            "this recipient already has a token or receives from other senders too: issue theirs by POST /users/:id/tokens (a token opens every escrow of its holder)".into()
        } else {
            "only an admin can give this recipient a token (POST /users/:id/tokens)".into()
        }));
    }
    // It opens this sender's escrows only: another sender may make one to the same phone
    // later, and whoever holds this token (this sender, until they hand it over) must not
    // read it.
    let token = insert_scoped_token(ctx.conn, &recipient, Some(&sender), ctx.now)?;
    ctx.audit(
        &actor.id,
        "token.issued",
        recipient.as_str(),
        &issued(&token, Some(escrow_id)),
    )?;
    let view = super::views::escrow(ctx.conn, ctx.keys, actor, escrow_id)?;
    Ok(RecipientToken {
        user_id: recipient,
        name: view.recipient.name.unwrap_or_default(),
        token,
    })
}

/// `DELETE /tokens/:prefix`, `remit token revoke`: revokes the token with this prefix.
pub fn revoke_token(ctx: &WriteCtx<'_>, actor: &Actor, given: &str) -> Result<RevokedToken> {
    super::require_role(actor, &[])?;
    // Its prefix, as `user list` shows it, or the whole token: then the whole of it must be the
    // token, not only its first characters (a token with a slip at its end is not another's).
    let prefix: String = given.chars().take(TOKEN_PREFIX_CHARS).collect();
    let row: Option<(UserId, Option<String>, Vec<u8>)> = ctx
        .conn
        .prepare_cached("SELECT user_id, revoked_at, token_hash FROM api_tokens WHERE prefix = ?1")?
        .query_row([&prefix], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let whole = given.len() > prefix.len();
    let row = row.filter(|(_, _, hash)| {
        !whole || crypto::constant_time_eq(hash, &crypto::sha256(given.as_bytes()))
    });
    let Some((user_id, revoked_at, _)) = row else {
        return Err(Error::NotFound { what: "token" });
    };
    let prefix = prefix.as_str();
    if revoked_at.is_none() {
        ctx.conn
            .prepare_cached("UPDATE api_tokens SET revoked_at = ?2 WHERE prefix = ?1")?
            .execute(params![prefix, ctx.at()])?;
        ctx.audit(
            &actor.id,
            "token.revoked",
            user_id.as_str(),
            &json!({"prefix": prefix}),
        )?;
    }
    Ok(RevokedToken {
        prefix: prefix.to_string(),
        user_id,
        revoked: true,
        already: revoked_at.is_some(),
    })
}

/// The user behind a bearer token, unless unknown or revoked.
pub fn authenticate(conn: &Connection, token: &str) -> Result<Actor> {
    let hash = crypto::sha256(token.as_bytes());
    let row: Option<(UserId, Role, Option<UserId>)> = conn
        .prepare_cached(
            "SELECT u.id, u.role, t.sender_scope FROM api_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = ?1 AND t.revoked_at IS NULL",
        )?
        .query_row([hash.as_slice()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let (id, role, sender_scope) = row.ok_or(Error::Unauthenticated)?;
    Ok(Actor {
        sender_scope,
        credential: Some(super::Credential(hash)),
        ..Actor::user(&id, role)
    })
}

/// Records when tokens were last used, many at once (called from a background thread so
/// that a request never writes just for this).
pub fn touch_tokens(ctx: &WriteCtx<'_>, used: &[([u8; 32], i64)]) -> Result<()> {
    // The time of the use, not of this write (up to a flush later): a token used, then revoked
    // before the flush, read as used after its revocation (until 2026-12-07). Never earlier
    // than a use already recorded.
    let mut stmt = ctx.conn.prepare_cached(
        "UPDATE api_tokens SET last_used_at = ?2
         WHERE token_hash = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)",
    )?;
    for (hash, at) in used {
        stmt.execute(params![hash.as_slice(), crate::time::rfc3339(*at)])?;
    }
    Ok(())
}

/// Users (those the inner `WHERE` over `users` picks, with `?1` its parameter and `?2` a
/// limit, in id order) and their tokens: one row per token (or one for a user with none),
/// folded into views.
fn users_where(
    conn: &Connection,
    keys: &Keys,
    where_clause: &str,
    param: &dyn rusqlite::ToSql,
    limit: u32,
) -> Result<Vec<UserView>> {
    let sql = format!(
        "SELECT u.id, u.role, u.name_enc, u.phone_enc, u.language, u.created_at, t.prefix, t.created_at AS token_created_at,
         t.last_used_at, t.revoked_at
         FROM (SELECT * FROM users WHERE {where_clause} ORDER BY id LIMIT ?2) u
         LEFT JOIN api_tokens t ON t.user_id = u.id
         ORDER BY u.id, t.created_at"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![param, limit])?;
    let mut users: Vec<UserView> = Vec::new();
    while let Some(r) = rows.next()? {
        let id: UserId = r.get("id")?;
        if users.last().is_none_or(|u| u.user_id != id) {
            users.push(user_from_row(keys, id, r)?);
        }
        if let (Some(user), Some(prefix)) =
            (users.last_mut(), r.get::<_, Option<String>>("prefix")?)
        {
            user.tokens.push(TokenView {
                prefix,
                created_at: r.get("token_created_at")?,
                last_used_at: r.get("last_used_at")?,
                revoked_at: r.get("revoked_at")?,
            });
        }
    }
    Ok(users)
}

fn user_from_row(keys: &Keys, id: UserId, r: &Row<'_>) -> Result<UserView> {
    let name = keys.open(
        EncryptedColumn::UserName,
        id.as_str(),
        &r.get::<_, String>("name_enc")?,
    )?;
    let phone = match r.get::<_, Option<String>>("phone_enc")? {
        Some(enc) => Some(keys.open(EncryptedColumn::UserPhone, id.as_str(), &enc)?),
        None => None,
    };
    Ok(UserView {
        user_id: id,
        role: r.get("role")?,
        name,
        phone,
        language: r
            .get::<_, Option<Language>>("language")?
            .unwrap_or(Language::En),
        created_at: r.get("created_at")?,
        tokens: Vec::new(),
    })
}

/// `PUT /users/:id/language`, `remit user language`: the language of a user's SMS. A recipient
/// is made by the first escrow to their phone, in `REMIT_SMS_LANGUAGE` (English by default),
/// and before this no one could change it: the person paid, most often a Swahili speaker,
/// could never be told in Swahili.
pub fn set_language(
    ctx: &WriteCtx<'_>,
    actor: &Actor,
    user_id: &UserId,
    language: Language,
) -> Result<UserView> {
    super::require_role(actor, &[])?;
    // (`NULL`: never chosen, English.)
    let before: Option<Option<Language>> = ctx
        .conn
        .prepare_cached("SELECT language FROM users WHERE id = ?1")?
        .query_row([user_id], |r| r.get(0))
        .optional()?;
    let Some(before) = before else {
        return Err(Error::NotFound { what: "user" });
    };
    let before = before.unwrap_or(Language::En);
    if before != language {
        ctx.conn
            .prepare_cached(
                "UPDATE users SET change_seq = remit_change_seq_of('users', id), language = ?2 WHERE id = ?1",
            )?
            .execute(params![user_id, language])?;
        ctx.audit(
            &actor.id,
            "user.language_set",
            user_id.as_str(),
            &json!({"from": before, "to": language}),
        )?;
    }
    user_view(ctx.conn, ctx.keys, user_id)
}

/// One user as admins see it.
pub fn user_view(conn: &Connection, keys: &Keys, user_id: &UserId) -> Result<UserView> {
    users_where(conn, keys, "id = ?1", user_id, 1)?
        .pop()
        .ok_or(Error::NotFound { what: "user" })
}

/// `remit user list`, `GET /users`: users, oldest first, after `cursor`, at most `limit`.
pub fn list(
    conn: &Connection,
    keys: &Keys,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page<UserView>> {
    let rows = users_where(conn, keys, "(?1 IS NULL OR id > ?1)", &cursor, limit + 1)?;
    Ok(Page::of(rows, limit, |u| u.user_id.to_string()))
}

/// `GET /me`.
///
/// A recipient signed in with a token their sender gave them is named as that sender typed the
/// name (in their newest escrow to them), as every view of theirs names them: never as another
/// sender typed it. (Tokens a remit of 2026-12-06 gave a recipient of two senders are still
/// open; the name was the other sender's.)
pub fn me(conn: &Connection, keys: &Keys, actor: &Actor, settings: MeSettings) -> Result<MeView> {
    let id = UserId::parse(&actor.id)?;
    let typed = match &actor.sender_scope {
        Some(sender) => conn
            .prepare_cached(
                "SELECT id, recipient_name_enc FROM escrows
                 WHERE recipient_id = ?1 AND sender_id = ?2 AND recipient_name_enc IS NOT NULL
                 ORDER BY created_at DESC, id DESC LIMIT 1",
            )?
            .query_row(params![id, sender], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .optional()?
            .map(|(escrow, enc)| keys.open(EncryptedColumn::RecipientName, &escrow, &enc))
            .transpose()?
            .filter(|name| !name.is_empty()),
        None => None,
    };
    let name = match typed {
        Some(name) => name,
        None => super::views::user_name_phone(conn, keys, &id)?.0,
    };
    Ok(MeView {
        user_id: actor.id.clone(),
        role: actor.role,
        name,
        settings,
    })
}

/// The user with this phone number (its blind index), for `remit token issue`.
pub fn find_by_phone(conn: &Connection, keys: &Keys, phone: &KenyanPhone) -> Result<UserId> {
    conn.prepare_cached("SELECT id FROM users WHERE phone_index = ?1")?
        .query_row([keys.blind_index(&phone.e164())], |r| r.get(0))
        .optional()?
        .ok_or(Error::NotFound { what: "user" })
}

/// Is there any user yet? (The first start creates an admin.)
pub fn any_user(conn: &Connection) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM users)")?
        .query_row([], |r| r.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guards against: the start's question for tokens without a recorded digest read the whole
    /// audit log (SQLite, without statistics, drove the join from it): 6.7 s more to every
    /// start of a ledger of a million escrows.
    #[test]
    fn the_tokens_without_a_digest_are_found_by_the_logs_entity_index() {
        let conn = crate::store::migrated_in_memory().unwrap();
        let plan = crate::store::query_plan(&conn, OLD_TOKENS, []);
        assert!(plan.iter().any(|s| s == "SCAN t"), "{plan:#?}");
        assert!(
            !plan
                .iter()
                .any(|s| s.starts_with("SCAN a") || s.starts_with("SCAN r")),
            "{plan:#?}"
        );
    }
}
