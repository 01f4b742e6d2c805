//! The service layer: one function per use case. Each validates, authorises and runs as one
//! writer command (or one read), and returns the JSON the API answers with. No HTTP here.

pub mod escrows;
pub mod fx;
pub mod payouts;
pub mod requests;
pub mod users;
pub mod views;

use crate::error::{Error, Result};
use rusqlite::{Connection, OptionalExtension};
use std::fmt;

/// The four roles of API.md.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Puts money in and approves payments on their own escrows.
    Sender,
    /// Receives: sees their escrows and asks for payments.
    Recipient,
    /// A kiosk operator: asks for payments for any recipient, records cash deposits.
    Agent,
    /// Everything.
    Admin,
}

impl Role {
    /// Parses `sender`, `recipient`, `agent`, `admin`.
    pub fn parse(field: &str, text: &str) -> Result<Role> {
        match text {
            "sender" => Ok(Role::Sender),
            "recipient" => Ok(Role::Recipient),
            "agent" => Ok(Role::Agent),
            "admin" => Ok(Role::Admin),
            _ => Err(Error::invalid(
                field,
                "must be one of sender, recipient, agent, admin",
            )),
        }
    }

    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Sender => "sender",
            Role::Recipient => "recipient",
            Role::Agent => "agent",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is acting: an authenticated user, or the system itself (webhooks, the payout worker,
/// the command line), which acts with admin rights and a `system:…` id in the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// `usr_…`, or `system:stripe`, `system:payouts`, `system:cli`, …
    pub id: String,
    /// What the actor may do.
    pub role: Role,
}

impl Actor {
    /// A user.
    pub fn user(id: impl Into<String>, role: Role) -> Actor {
        Actor {
            id: id.into(),
            role,
        }
    }

    /// The system acting on its own (`system:<name>`).
    pub fn system(name: &str) -> Actor {
        Actor {
            id: format!("system:{name}"),
            role: Role::Admin,
        }
    }

    /// True for admins and the system.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// Who an escrow belongs to, for authorisation.
#[derive(Debug, Clone)]
pub struct EscrowParties {
    /// The escrow.
    pub id: String,
    /// Its sender.
    pub sender_id: String,
    /// Its recipient.
    pub recipient_id: String,
    /// Its status.
    pub status: String,
}

impl EscrowParties {
    /// Loads the parties of an escrow, or `NotFound`.
    pub fn load(conn: &Connection, escrow_id: &str) -> Result<EscrowParties> {
        conn.prepare_cached("SELECT sender_id, recipient_id, status FROM escrows WHERE id = ?1")?
            .query_row([escrow_id], |r| {
                Ok(EscrowParties {
                    id: escrow_id.to_string(),
                    sender_id: r.get(0)?,
                    recipient_id: r.get(1)?,
                    status: r.get(2)?,
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
            Role::Sender => self.sender_id == actor.id,
            Role::Recipient => self.recipient_id == actor.id,
        }
    }

    /// Is the actor the escrow's sender (or an admin)?
    pub fn is_sender(&self, actor: &Actor) -> bool {
        actor.is_admin() || (actor.role == Role::Sender && self.sender_id == actor.id)
    }

    /// Loads and checks visibility: someone else's escrow is `NotFound`, not `Forbidden`.
    pub fn load_visible(
        conn: &Connection,
        escrow_id: &str,
        actor: &Actor,
    ) -> Result<EscrowParties> {
        crate::domain::check_id(crate::domain::IdKind::Escrow, escrow_id)?;
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
#[derive(Debug, Clone)]
pub struct Page {
    /// The rows, newest first.
    pub items: Vec<serde_json::Value>,
    /// Pass as `cursor` to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

impl Page {
    /// `{"items": [...], "nextCursor": …}`.
    pub fn json(self) -> serde_json::Value {
        serde_json::json!({"items": self.items, "nextCursor": self.next_cursor})
    }
}
