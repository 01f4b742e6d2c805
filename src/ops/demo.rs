//! `remit serve --demo`: a demo sender, recipient and agent, and escrows in several states.

use crate::domain::MerchantAccount;
use crate::domain::{CategoryName, EscrowId, KenyanPhone, PaymentRequestId, PayoutId, UserId};
use crate::error::{Error, Result};
use crate::money::{KesCents, UsdCents};
use crate::service::escrows::{self, Categories, NewEscrow};
use crate::service::requests::{self, NewPaymentRequest};
use crate::service::users::{self, NewUser};
use crate::service::{deposits, payouts, Actor, Role};
use crate::store::{Store, WriteCtx};
use rusqlite::{params, OptionalExtension};

/// Has a `--demo` start ever seeded this ledger? Its escrows are funded by made-up deposits, so
/// the ledger must never pay through a gateway that moves real money.
pub fn holds_demo_data(conn: &rusqlite::Connection) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM meta WHERE key LIKE 'demo\\_user\\_%' ESCAPE '\\')",
        [],
        |r| r.get(0),
    )?)
}

/// Does this ledger hold escrows and no demo data? `--demo` is refused there: it would mark a
/// ledger of real money as a demo's for good. (Users alone, the walkthrough's, are no money.)
pub fn holds_money_but_no_demo(conn: &rusqlite::Connection) -> Result<bool> {
    Ok(!holds_demo_data(conn)?
        && conn.query_row("SELECT EXISTS (SELECT 1 FROM escrows)", [], |r| r.get(0))?)
}

/// A demo user: role, name and a fresh token.
#[derive(Debug, Clone)]
pub struct DemoUser {
    /// Role.
    pub role: Role,
    /// Name.
    pub name: String,
    /// A token issued now.
    pub token: String,
}

/// The demo recipient's number: the one the README's examples use, or, when a user of the
/// database already has it (the walkthrough's recipient, a real person), the first free one of
/// 0799 000 001 … 099. A demo never takes over someone else's account.
fn free_demo_phone(ctx: &WriteCtx<'_>) -> Result<KenyanPhone> {
    let candidates =
        std::iter::once("0712345678".to_string()).chain((1..100).map(|n| format!("0799000{n:03}")));
    for candidate in candidates {
        let phone = KenyanPhone::parse("phone", &candidate)?;
        let taken: bool = ctx.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM users WHERE phone_index = ?1)",
            [ctx.keys.blind_index(&phone.e164())],
            |r| r.get(0),
        )?;
        if !taken {
            return Ok(phone);
        }
    }
    Err(Error::internal(
        "every demo phone number is taken by another user; remove --demo or use a fresh database",
    ))
}

fn demo_user(
    ctx: &WriteCtx<'_>,
    role: Role,
    name: &str,
    with_phone: bool,
) -> Result<(Actor, String)> {
    let key = format!("demo_user_{role}");
    let existing: Option<UserId> = ctx
        .conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [&key], |r| {
            r.get(0)
        })
        .optional()?;
    let system = Actor::system("demo");
    let (id, token) = match existing {
        Some(id) => {
            // The tokens printed now are the demo user's only ones: those of earlier `--demo`
            // starts (in a terminal's history, on a screenshot) stop working.
            let earlier: Vec<String> = ctx
                .conn
                .prepare("SELECT prefix FROM api_tokens WHERE user_id = ?1 AND revoked_at IS NULL")?
                .query_map([&id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            for prefix in earlier {
                users::revoke_token(ctx, &system, &prefix)?;
            }
            let issued = users::issue_token(ctx, &system, &id)?;
            (id, issued.token)
        }
        None => {
            let phone = if with_phone {
                Some(free_demo_phone(ctx)?)
            } else {
                None
            };
            let created = users::create(
                ctx,
                &system,
                &NewUser {
                    role,
                    name: name.into(),
                    phone,
                },
            )?;
            let id = created.user.user_id;
            ctx.conn.execute(
                "INSERT INTO meta (key, value, change_seq) VALUES (?1, ?2, remit_change_seq())",
                params![key, id],
            )?;
            (id, created.token)
        }
    };
    Ok((Actor::user(&id, role), token))
}

fn usd(cents: i64) -> Result<UsdCents> {
    UsdCents::new(cents).ok_or_else(|| Error::internal("negative demo amount"))
}

fn kes(whole: i64) -> Result<KesCents> {
    KesCents::new(whole * 100).ok_or_else(|| Error::internal("negative demo amount"))
}

fn name(text: &str) -> Result<CategoryName> {
    CategoryName::parse("category", text)
}

/// Adds the demo sender, recipient and agent (once), with escrows in several states, and
/// returns fresh tokens for all three. Its requests wait `request_ttl_s` for their sender, as
/// any other (`REMIT_REQUEST_TTL_H`).
pub fn seed_demo(store: &Store, request_ttl_s: i64) -> Result<Vec<DemoUser>> {
    store.write(move |ctx| {
        let (sender, sender_token) = demo_user(ctx, Role::Sender, "Amina (demo sender)", false)?;
        let (recipient, recipient_token) =
            demo_user(ctx, Role::Recipient, "Wanjiru (demo recipient)", true)?;
        let (agent, agent_token) = demo_user(ctx, Role::Agent, "Kiosk 1 (demo agent)", false)?;
        let seeded: bool = ctx.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM meta WHERE key = 'demo_seeded')",
            [],
            |r| r.get(0),
        )?;
        if !seeded {
            seed_escrows(ctx, &sender, &recipient, &agent, request_ttl_s)?;
            ctx.conn.execute(
                "INSERT INTO meta (key, value, change_seq) VALUES ('demo_seeded', ?1, remit_change_seq())",
                [ctx.at()],
            )?;
        }
        Ok(vec![
            DemoUser {
                role: Role::Sender,
                name: "Amina (demo sender)".into(),
                token: sender_token,
            },
            DemoUser {
                role: Role::Recipient,
                name: "Wanjiru (demo recipient)".into(),
                token: recipient_token,
            },
            DemoUser {
                role: Role::Agent,
                name: "Kiosk 1 (demo agent)".into(),
                token: agent_token,
            },
        ])
    })
}

/// Three escrows: one waiting for its deposit; one active with a paid request, a pending one
/// and one made by the recipient; one cancelled after a deposit.
fn seed_escrows(
    ctx: &WriteCtx<'_>,
    sender: &Actor,
    recipient: &Actor,
    agent: &Actor,
    ttl_s: i64,
) -> Result<()> {
    let recipient_phone = {
        let id = UserId::parse(&recipient.id)?;
        let (_, phone) = crate::service::views::user_name_phone(ctx.conn, ctx.keys, &id)?;
        phone.ok_or_else(|| Error::internal("the demo recipient has no phone"))?
    };
    let escrow = |total: i64, cats: &[&str], daily: Option<i64>| -> Result<EscrowId> {
        let input = NewEscrow {
            recipient_phone: recipient_phone.clone(),
            recipient_name: "Wanjiru".into(),
            total: usd(total)?,
            categories: Categories::Names(cats.iter().map(|c| name(c)).collect::<Result<_>>()?),
            daily_limit: daily.map(usd).transpose()?,
            recipient_language: crate::domain::Language::En,
        };
        Ok(escrows::create(ctx, sender, &input)?.escrow_id)
    };
    let request = |by: &Actor,
                   escrow_id: &EscrowId,
                   category: &str,
                   amount: KesCents,
                   merchant: &str,
                   account: MerchantAccount,
                   note: &str|
     -> Result<PaymentRequestId> {
        let input = NewPaymentRequest {
            escrow_id: escrow_id.clone(),
            category: name(category)?,
            amount,
            merchant_name: merchant.into(),
            merchant_account: account,
            note: Some(note.into()),
        };
        Ok(requests::create(ctx, by, &input, ttl_s)?.payment_request_id)
    };
    let paybill = |number: &str, reference: &str| MerchantAccount::Paybill {
        number: number.into(),
        account_reference: reference.into(),
    };
    // 1. Waiting for its deposit.
    escrow(30_000, &["rent", "food"], None)?;
    // 2. Active, with a paid request, a pending one and one for the recipient to see.
    let active = escrow(
        50_000,
        &["electricity", "water", "school_fees"],
        Some(20_000),
    )?;
    deposits::record_cash(
        ctx,
        agent,
        &active,
        None,
        deposits::CashAmount::Usd(usd(50_000)?),
    )?;
    let paid = request(
        agent,
        &active,
        "electricity",
        kes(1_500)?,
        "Kenya Power",
        paybill("888880", "37194502618"),
        "Electricity for the house, November",
    )?;
    requests::approve(ctx, sender, &paid)?;
    let payout_id: PayoutId = ctx.conn.query_row(
        "SELECT id FROM payouts WHERE payment_request_id = ?1",
        [&paid],
        |r| r.get(0),
    )?;
    // Paid by no one: it says so as the simulator's payouts do (`simulated`, a `SIM` receipt),
    // whatever gateway the server runs.
    ctx.conn.execute(
        "UPDATE payouts SET gateway = 'simulator', change_seq = remit_change_seq() WHERE id = ?1",
        [&payout_id],
    )?;
    payouts::apply_result(
        ctx,
        &Actor::system("demo"),
        &payout_id,
        &payouts::PayoutResult::Succeeded {
            receipt: crate::payout::simulated_receipt(),
        },
        payouts::Reported::NotCarried,
    )?;
    request(
        agent,
        &active,
        "water",
        kes(2_400)?,
        "Nairobi Water",
        paybill("444400", "WTR-55012"),
        "Water bill, November",
    )?;
    request(
        recipient,
        &active,
        "school_fees",
        kes(15_000)?,
        "St. Mary's School",
        MerchantAccount::Till {
            number: "5123456".into(),
        },
        "Term 1 fees",
    )?;
    // 3. Cancelled after a deposit.
    let cancelled = escrow(10_000, &["transport"], None)?;
    deposits::record_cash(
        ctx,
        agent,
        &cancelled,
        None,
        deposits::CashAmount::Usd(usd(10_000)?),
    )?;
    escrows::cancel(ctx, sender, &cancelled)?;
    Ok(())
}
