//! The service layer: one function per use case. Each validates, authorises and runs as one
//! writer command (or one read), and returns a typed view (`views`) that the API serialises.
//! No HTTP here; the only SQL is next to the function that runs it.

pub mod deposits;
pub mod endpoints;
pub mod escrows;
pub mod fanout;
pub mod float;
pub mod fx;
pub mod idempotency;
pub mod payouts;
pub mod requests;
pub mod retention;
pub mod sms;
pub mod users;
pub mod views;
pub mod webhooks;

pub use crate::domain::Role;
use crate::domain::{EscrowId, EscrowStatus, UserId};
use crate::error::{Error, Result};
use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

/// Who is acting: an authenticated user, or the system itself (webhooks, the payout worker,
/// the command line), which acts with admin rights and a `system:…` id in the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// `usr_…`, or `system:stripe`, `system:payouts`, `system:cli`, …
    pub id: String,
    /// What the actor may do.
    pub role: Role,
    /// A recipient signed in with a token their sender gave them
    /// (`POST /escrows/:id/recipient-token`) sees that sender's escrows only.
    pub sender_scope: Option<UserId>,
    /// The token a user signed in with, over HTTP; `None` for the system and the command line.
    pub credential: Option<Credential>,
}

/// The token an actor signed in with, as its SHA-256 (what `api_tokens` keeps). A request is
/// authenticated when it arrives and its change commits later, in the writer's turn: the
/// writer asks again whether the token still opens anything (`still_signed_in`), so that a
/// token revoked meanwhile acts no more (approvals in flight when an admin revoked a stolen
/// token committed after the revocation, as the audit log ordered them).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Credential(pub [u8; 32]);

impl std::fmt::Debug for Credential {
    /// Never the hash: it names the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential(..)")
    }
}

/// Refuses (`401`) a change of an actor whose token (`Actor::credential`) was revoked since
/// its request was authenticated: the writer's own read, in the transaction the change commits
/// in, after every revocation committed before it. An actor without a token (the system, the
/// command line) passes.
/// Returns the token's user and prefix (its audit lines name it: `WriteCtx::as_signed_in`);
/// `None` for a command of no token.
pub fn still_signed_in(
    ctx: &crate::store::WriteCtx<'_>,
    credential: Option<Credential>,
) -> Result<Option<(String, String)>> {
    use rusqlite::OptionalExtension;
    let Some(Credential(hash)) = credential else {
        return Ok(None);
    };
    ctx.conn
        .prepare_cached(
            "SELECT user_id, prefix FROM api_tokens WHERE token_hash = ?1 AND revoked_at IS NULL",
        )?
        .query_row([hash.as_slice()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .map(Some)
        .ok_or(Error::Unauthenticated)
}

impl Actor {
    /// A user.
    pub fn user(id: &UserId, role: Role) -> Actor {
        Actor {
            id: id.to_string(),
            role,
            sender_scope: None,
            credential: None,
        }
    }

    /// The user's id, or `None` for the system (what a column referencing `users` may hold).
    pub fn user_id(&self) -> Option<&str> {
        (!self.id.starts_with("system:")).then_some(self.id.as_str())
    }

    /// The system acting on its own (`system:<name>`).
    pub fn system(name: &str) -> Actor {
        Actor {
            id: format!("system:{name}"),
            role: Role::Admin,
            sender_scope: None,
            credential: None,
        }
    }

    /// May a token of this actor open an escrow of this sender? Always, but for a recipient's
    /// token that a sender gave: that sender's only.
    pub fn scope_allows(&self, sender_id: &UserId) -> bool {
        self.sender_scope
            .as_ref()
            .is_none_or(|scope| scope == sender_id)
    }

    /// True for admins and the system.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Is this actor that user?
    pub fn is(&self, user: &UserId) -> bool {
        self.id == user.as_str()
    }
}

/// Who an escrow belongs to, for authorisation.
#[derive(Debug, Clone)]
pub struct EscrowParties {
    /// Its sender.
    pub sender_id: UserId,
    /// Its recipient.
    pub recipient_id: UserId,
    /// Its status.
    pub status: EscrowStatus,
}

impl EscrowParties {
    /// Loads the parties of an escrow, or `NotFound`.
    pub fn load(conn: &Connection, escrow_id: &EscrowId) -> Result<EscrowParties> {
        conn.prepare_cached("SELECT sender_id, recipient_id, status FROM escrows WHERE id = ?1")?
            .query_row([escrow_id], |r| {
                Ok(EscrowParties {
                    sender_id: r.get("sender_id")?,
                    recipient_id: r.get("recipient_id")?,
                    status: r.get("status")?,
                })
            })
            .optional()?
            .ok_or(Error::NotFound { what: "escrow" })
    }

    /// May the actor see this escrow? Admins and agents see all; senders and recipients
    /// their own.
    pub fn visible_to(&self, actor: &Actor) -> bool {
        match actor.role {
            Role::Admin | Role::Agent => true,
            Role::Sender => actor.is(&self.sender_id),
            Role::Recipient => actor.is(&self.recipient_id) && actor.scope_allows(&self.sender_id),
        }
    }

    /// Is the actor the escrow's sender (or an admin)?
    pub fn is_sender(&self, actor: &Actor) -> bool {
        actor.is_admin() || (actor.role == Role::Sender && actor.is(&self.sender_id))
    }

    /// Loads and checks visibility: someone else's escrow is `NotFound`, not `Forbidden`.
    pub fn load_visible(
        conn: &Connection,
        escrow_id: &EscrowId,
        actor: &Actor,
    ) -> Result<EscrowParties> {
        let parties = EscrowParties::load(conn, escrow_id)?;
        if parties.visible_to(actor) {
            Ok(parties)
        } else {
            Err(Error::NotFound { what: "escrow" })
        }
    }
}

/// Refuses unless the actor has one of `roles` (admins always pass).
pub fn require_role(actor: &Actor, roles: &[Role]) -> Result<()> {
    if actor.is_admin() || roles.contains(&actor.role) {
        Ok(())
    } else {
        Err(Error::Forbidden)
    }
}

/// A page of a list: its items and the cursor of the next page.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    /// The rows, in the list's order.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page of at most `limit` of `rows` (which may hold one more, fetched to know whether
    /// there is a next page); the cursor is what `cursor_of` says of the last row kept.
    pub fn of(mut rows: Vec<T>, limit: u32, cursor_of: impl Fn(&T) -> String) -> Page<T> {
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = if more {
            rows.last().map(cursor_of)
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }
}

/// A list answered whole (at most its limit), without a cursor.
#[derive(Debug, Clone, Serialize)]
pub struct Items<T> {
    /// The rows.
    pub items: Vec<T>,
}
