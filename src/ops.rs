//! Operator tasks behind the command line: first-start bootstrap, demo data, online backup,
//! and key rotation.

use crate::crypto::{KeySource, Keys, MasterKey};
use crate::domain::KenyanPhone;
use crate::error::{Error, Result};
use crate::money::{KesCents, UsdCents};
use crate::service::escrows::{self, Categories, DepositSource, NewEscrow};
use crate::service::payouts;
use crate::service::requests::{self, MerchantAccount, NewPaymentRequest};
use crate::service::users::{self, NewUser};
use crate::service::{Actor, Role};
use crate::store::{self, OpenOptions, Store};
use rusqlite::{params, OptionalExtension};
use serde_json::{json, Value};
use std::fs::File;
use std::path::{Path, PathBuf};

/// The lock file beside a database that a server holds while it runs.
pub fn lock_file_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the exclusive lock of a database (held until the file is dropped). Only one server
/// runs per database, and key rotation needs none running.
pub fn lock(db: &Path) -> Result<File> {
    let path = lock_file_path(db);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::internal(format!("cannot open lock file {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(_) => Err(Error::internal(format!(
            "another remit server is using {} (lock file {})",
            db.display(),
            path.display()
        ))),
    }
}

/// On an empty database, creates the first admin and returns its token (shown once).
pub fn bootstrap_admin(store: &Store) -> Result<Option<String>> {
    store.write(|ctx| {
        if users::any_user(ctx.conn)? {
            return Ok(None);
        }
        let admin = NewUser {
            role: Role::Admin,
            name: "Administrator".into(),
            phone: None,
        };
        let (_, token) = users::create(ctx, &Actor::system("bootstrap"), &admin)?;
        Ok(Some(token))
    })
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

fn demo_user(
    ctx: &store::WriteCtx<'_>,
    role: Role,
    name: &str,
    phone: Option<&str>,
) -> Result<(Actor, String)> {
    let key = format!("demo_user_{}", role.as_str());
    let existing: Option<String> = ctx
        .conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [&key], |r| {
            r.get(0)
        })
        .optional()?;
    let system = Actor::system("demo");
    let (id, token) = match existing {
        Some(id) => {
            let token = users::issue_token(ctx, &system, &id)?;
            (id, token)
        }
        None => {
            let phone = phone.map(|p| KenyanPhone::parse("phone", p)).transpose()?;
            let (view, token) = users::create(
                ctx,
                &system,
                &NewUser {
                    role,
                    name: name.into(),
                    phone,
                },
            )?;
            let id = view["userId"].as_str().unwrap_or_default().to_string();
            ctx.conn.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                params![key, id],
            )?;
            (id, token)
        }
    };
    Ok((Actor::user(id, role), token))
}

fn usd(cents: i64) -> Result<UsdCents> {
    UsdCents::new(cents).ok_or_else(|| Error::internal("negative demo amount"))
}

/// Adds the demo sender, recipient and agent (once), with escrows in several states, and
/// returns fresh tokens for all three.
pub fn seed_demo(store: &Store) -> Result<Vec<DemoUser>> {
    store.write(|ctx| {
        let (sender, sender_token) = demo_user(ctx, Role::Sender, "Amina (demo sender)", None)?;
        let (recipient, recipient_token) = demo_user(
            ctx,
            Role::Recipient,
            "Wanjiru (demo recipient)",
            Some("0712345678"),
        )?;
        let (agent, agent_token) = demo_user(ctx, Role::Agent, "Kiosk 1 (demo agent)", None)?;
        let seeded: bool = ctx.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM meta WHERE key = 'demo_seeded')",
            [],
            |r| r.get(0),
        )?;
        if !seeded {
            let name = |n: &str| crate::domain::CategoryName::parse("category", n);
            let escrow = |total: i64, cats: &[&str], daily: Option<i64>| -> Result<String> {
                let input = NewEscrow {
                    recipient_phone: KenyanPhone::parse("phone", "0712345678")?,
                    recipient_name: "Wanjiru".into(),
                    total: usd(total)?,
                    categories: Categories::Names(
                        cats.iter().map(|c| name(c)).collect::<Result<_>>()?,
                    ),
                    daily_limit: daily.map(usd).transpose()?,
                };
                let view = escrows::create(ctx, &sender, &input)?;
                Ok(view["escrowId"].as_str().unwrap_or_default().to_string())
            };
            let request = |escrow_id: &str,
                           category: &str,
                           kes: i64,
                           merchant: &str,
                           account: MerchantAccount|
             -> Result<String> {
                let input = NewPaymentRequest {
                    escrow_id: escrow_id.into(),
                    category: name(category)?,
                    amount: KesCents::new(kes * 100)
                        .ok_or_else(|| Error::internal("bad demo amount"))?,
                    merchant_name: merchant.into(),
                    merchant_account: account,
                    note: Some("demo".into()),
                };
                let view = requests::create(ctx, &agent, &input)?;
                Ok(view["paymentRequestId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string())
            };
            // 1. Waiting for its deposit.
            escrow(30_000, &["rent", "food"], None)?;
            // 2. Active, with a paid request, a pending one and one for the recipient to see.
            let active = escrow(
                50_000,
                &["electricity", "water", "school_fees"],
                Some(20_000),
            )?;
            escrows::record_deposit(
                ctx,
                &agent,
                &active,
                DepositSource::Cash,
                "demo-receipt-0001",
                usd(50_000)?,
            )?;
            let paid = request(
                &active,
                "electricity",
                1_500,
                "Kenya Power",
                MerchantAccount::Paybill {
                    number: "888880".into(),
                    account_reference: "37194502618".into(),
                },
            )?;
            requests::approve(ctx, &sender, &paid)?;
            let payout_id: String = ctx.conn.query_row(
                "SELECT id FROM payouts WHERE payment_request_id = ?1",
                [&paid],
                |r| r.get(0),
            )?;
            payouts::settle(
                ctx,
                &Actor::system("demo"),
                &payout_id,
                &payouts::PayoutResult::Succeeded {
                    receipt: "TCE7H2LX9B".into(),
                },
                None,
            )?;
            request(
                &active,
                "water",
                2_400,
                "Nairobi Water",
                MerchantAccount::Paybill {
                    number: "444400".into(),
                    account_reference: "WTR-55012".into(),
                },
            )?;
            let recipient_request = NewPaymentRequest {
                escrow_id: active.clone(),
                category: name("school_fees")?,
                amount: KesCents::new(15_000 * 100)
                    .ok_or_else(|| Error::internal("bad demo amount"))?,
                merchant_name: "St. Mary's School".into(),
                merchant_account: MerchantAccount::Till {
                    number: "5123456".into(),
                },
                note: Some("Term 1 fees".into()),
            };
            requests::create(ctx, &recipient, &recipient_request)?;
            // 3. Cancelled after a deposit.
            let cancelled = escrow(10_000, &["transport"], None)?;
            escrows::record_deposit(
                ctx,
                &agent,
                &cancelled,
                DepositSource::Cash,
                "demo-receipt-0002",
                usd(10_000)?,
            )?;
            escrows::cancel(ctx, &sender, &cancelled)?;
            ctx.conn.execute(
                "INSERT INTO meta (key, value) VALUES ('demo_seeded', ?1)",
                [crate::time::rfc3339(ctx.now)],
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

/// `remit backup FILE`: a consistent copy made while the server may be running (`VACUUM INTO`
/// reads one snapshot and never blocks the writer), then opened and checked; audited.
pub fn backup(store: &Store, target: &Path) -> Result<crate::integrity::Report> {
    if target.exists() {
        return Err(Error::internal(format!(
            "{} already exists; choose a new file",
            target.display()
        )));
    }
    let target_text = target
        .to_str()
        .ok_or_else(|| Error::internal("the backup path is not UTF-8"))?
        .to_string();
    // Not on a pooled read connection: those are read-only, and SQLite opens the INTO file
    // with the connection's flags, so the copy could not be written.
    {
        let conn = store::open_connection(store.path(), store::Synchronous::Full)?;
        conn.execute("VACUUM INTO ?1", [&target_text])?;
    }
    let copy =
        rusqlite::Connection::open_with_flags(target, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let report = crate::integrity::check(&copy, store.keys())?;
    drop(copy);
    let details = json!({"clean": report.is_clean(), "bytes": std::fs::metadata(target).map(|m| m.len()).unwrap_or(0)});
    store.write(move |ctx| {
        crate::audit::append(ctx, "system:cli", "backup.made", "database", &details)
    })?;
    Ok(report)
}

/// Columns that hold ciphertext, with the table and the AAD column name.
const ENCRYPTED_COLUMNS: &[(&str, &str, &str)] = &[
    ("users", "name_enc", "name"),
    ("users", "phone_enc", "phone"),
    ("payment_requests", "merchant_name_enc", "merchant_name"),
    (
        "payment_requests",
        "merchant_account_enc",
        "merchant_account",
    ),
    ("payment_requests", "note_enc", "note"),
    ("payment_requests", "decision_reason_enc", "decision_reason"),
    ("webhook_events", "payload_enc", "payload"),
];

/// `remit rotate-key`: in one transaction, re-encrypts every PII column and recomputes every
/// blind index and the key check under the new key; rewraps the audit keys and starts a new
/// audit key whose first line records the rotation. Returns how many values were re-encrypted.
pub fn rotate_key(db: &Path, old_key_hex: Option<&str>, new_key: &MasterKey) -> Result<usize> {
    let (old_master, _) = crate::crypto::load_master_key(db, old_key_hex, false)?;
    let old = Keys::new(&old_master);
    let new = Keys::new(new_key);
    if old.key_check == new.key_check {
        return Err(Error::internal("the new key is the current key"));
    }
    {
        // Validate the old key (and migrate) through the normal open path, then close.
        let mut options = OpenOptions::new(db);
        options.key_hex = Some(old_master.to_hex());
        options.create = false;
        let store = store::open_with_key(&options, &old_master, KeySource::Environment)?;
        store.close();
    }
    let mut conn = store::open_connection(db, store::Synchronous::Full)?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut count = 0;
    for (table, column, aad_column) in ENCRYPTED_COLUMNS {
        let rows: Vec<(String, String)> = tx
            .prepare(&format!(
                "SELECT id, {column} FROM {table} WHERE {column} IS NOT NULL"
            ))?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut update = tx.prepare(&format!("UPDATE {table} SET {column} = ?2 WHERE id = ?1"))?;
        for (id, stored) in rows {
            let aad = format!("{table}.{aad_column}.{id}");
            let plain = old.decrypt(&aad, &stored)?;
            update.execute(params![id, new.encrypt(&aad, &plain)?])?;
            if *table == "users" && *column == "phone_enc" {
                tx.execute(
                    "UPDATE users SET phone_index = ?2 WHERE id = ?1",
                    params![id, new.blind_index(&plain)],
                )?;
            }
            count += 1;
        }
    }
    // Stored idempotent responses are a 48-hour cache encrypted under the old key: forgotten.
    tx.execute("DELETE FROM idempotency_keys", [])?;
    crate::audit::rewrap_keys(&tx, &old, &new)?;
    let next_seq: i64 =
        tx.query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_log", [], |r| {
            r.get(0)
        })?;
    let audit_key = crate::audit::add_key(&tx, &new, next_seq)?;
    tx.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'key_check'",
        [&new.key_check],
    )?;
    tx.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'key_id'",
        [&new.key_id],
    )?;
    let details =
        json!({"oldKeyId": old.key_id, "newKeyId": new.key_id, "valuesReencrypted": count});
    crate::audit::append_with_key(
        &tx,
        &audit_key,
        crate::time::now_unix(),
        "system:cli",
        "key.rotated",
        "database",
        &details,
    )?;
    tx.commit()?;
    crate::audit::flush_pending_log();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(count)
}

/// Prints users as a table for `remit user list`.
pub fn user_rows(store: &Store) -> Result<Vec<Value>> {
    store.read(users::list)
}
