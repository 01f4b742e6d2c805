//! Shared helpers: a store on a temp file, users, escrows and requests in one call (here); the
//! real server in-process (`app`); the real binary as a process (`process`).

#![allow(dead_code)]

pub mod app;
pub mod attacks;
pub mod conformance;
pub mod fake_at;
pub mod fake_daraja;
pub mod notify;
pub mod postgres;
pub mod process;
pub mod receiver;

use remit::domain::{CategoryName, DepositSource, EscrowId, KenyanPhone, PaymentRequestId};
use remit::money::{KesCents, UsdCents};
use remit::service::deposits::{self, DepositOutcome};
use remit::service::escrows::{self, Categories, NewEscrow};
use remit::service::requests::{self, MerchantAccount, NewPaymentRequest};
use remit::service::users::{self, NewUser};
use remit::service::{Actor, Role};
use remit::store::{self, OpenOptions, Store};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// A view as the JSON the API would answer with.
pub fn json<T: serde::Serialize>(view: T) -> Value {
    serde_json::to_value(view).unwrap()
}

/// An escrow id a test holds as text (a bad one is a test bug).
pub fn escrow_id(text: &str) -> EscrowId {
    EscrowId::parse(text).unwrap()
}

/// A payment request id a test holds as text.
pub fn request_id(text: &str) -> PaymentRequestId {
    PaymentRequestId::parse(text).unwrap()
}

/// What the ledger in `dir` holds on disk, `remit.db` and its log, as text (lossy): a test
/// looks in it for what must not be readable.
pub fn ledger_file_text(dir: &std::path::Path) -> String {
    let mut bytes = std::fs::read(dir.join("remit.db")).unwrap();
    bytes.extend(std::fs::read(dir.join("remit.db-wal")).unwrap_or_default());
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Schema 22 undone (lists found by their status' indexes), for `concat!`.
macro_rules! lists_by_status_undone {
    () => {
        "
DROP INDEX payment_requests_status;
DROP INDEX escrows_sender_status;
DROP INDEX sms_messages_user;
DROP INDEX sms_messages_status;"
    };
}

/// Schema 21 undone (an endpoint's failed deliveries indexed by it, the idempotency keys kept
/// in the order they came), for `concat!`.
macro_rules! keys_by_time_undone {
    () => {
        "
DROP INDEX webhook_deliveries_failed_by_endpoint;
CREATE TABLE idempotency_keys_by_key (user_id TEXT NOT NULL, key TEXT NOT NULL,
    fingerprint BLOB NOT NULL, status INTEGER NOT NULL, body TEXT NOT NULL,
    created_at TEXT NOT NULL, PRIMARY KEY (user_id, key)) STRICT, WITHOUT ROWID;
INSERT INTO idempotency_keys_by_key (user_id, key, fingerprint, status, body, created_at)
    SELECT user_id, key, fingerprint, status, body, created_at FROM idempotency_keys;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_by_key RENAME TO idempotency_keys;"
    };
}

/// Schema 23 undone (the payee as M-Pesa names it), for `concat!`.
macro_rules! payee_name_undone {
    () => {
        "
ALTER TABLE payouts DROP COLUMN payee_name_enc;"
    };
}

/// Schemas 23 to 18 undone (M-Pesa's payee, lists by status, a text's call marked, an
/// endpoint's first event, the journal chained by escrow): the file as a remit of schema 17
/// left it, for the tests that take a new file back to an older schema before opening it.
pub const BACK_TO_SCHEMA_17: &str = concat!(
    payee_name_undone!(),
    lists_by_status_undone!(),
    keys_by_time_undone!(),
    "
ALTER TABLE sms_messages DROP COLUMN in_flight;
ALTER TABLE webhook_endpoints DROP COLUMN after_seq;
ALTER TABLE ledger_transactions DROP COLUMN prev_id;
ALTER TABLE escrows DROP COLUMN last_transaction_id;
CREATE INDEX ledger_transactions_escrow ON ledger_transactions(escrow_id, id);"
);

/// The ledger file at `path` taken back to the schema before this remit's (schema 24 changes
/// no table's shape: nothing to undo; its version said), as the remit before left it.
pub fn back_to_the_schema_before(path: &std::path::Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(
        None,
        "user_version",
        remit::store::latest_schema_version() - 1,
    )
    .unwrap();
}

/// The key every test database uses.
pub const TEST_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// A store on a fresh file; the directory lives as long as the value.
pub struct TestStore {
    pub store: Arc<Store>,
    pub dir: tempfile::TempDir,
}

impl TestStore {
    pub fn new() -> TestStore {
        TestStore::with(|_| {})
    }

    /// A store opened with options of its own.
    pub fn with(set: impl FnOnce(&mut OpenOptions)) -> TestStore {
        let dir = tempfile::tempdir().unwrap();
        let mut options = OpenOptions::new(dir.path().join("remit.db"));
        options.key_hex = Some(TEST_KEY.into());
        set(&mut options);
        let store = Arc::new(store::open(&options).unwrap());
        TestStore { store, dir }
    }

    /// A load of approvals straight through the writer: four threads, each making requests on
    /// an escrow of its own and approving them, `per_thread` times or until `stop`. Counts the
    /// approvals.
    pub fn approve_until(
        &self,
        per_thread: usize,
        stop: &std::sync::atomic::AtomicBool,
        approved: &std::sync::atomic::AtomicUsize,
    ) {
        use std::sync::atomic::Ordering;
        let sender = self.user(Role::Sender, "Amina", None);
        let agent = self.user(Role::Agent, "Kiosk", None);
        let escrows: Vec<String> = (0..4)
            .map(|i| {
                self.active_escrow(
                    &sender,
                    &agent,
                    &format!("07120000{i:02}"),
                    800_000,
                    &["rent"],
                    None,
                )
            })
            .collect();
        std::thread::scope(|s| {
            for escrow in &escrows {
                let (sender, agent) = (sender.clone(), agent.clone());
                s.spawn(move || {
                    for _ in 0..per_thread {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let request = self.request(&agent, escrow, "rent", 15_000).unwrap();
                        self.approve(&sender, request["paymentRequestId"].as_str().unwrap())
                            .unwrap();
                        approved.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
    }

    pub fn db_path(&self) -> std::path::PathBuf {
        self.dir.path().join("remit.db")
    }

    pub fn user(&self, role: Role, name: &str, phone: Option<&str>) -> Actor {
        let user = NewUser {
            role,
            name: name.into(),
            phone: phone.map(|p| KenyanPhone::parse("phone", p).unwrap()),
        };
        let created = self
            .store
            .write(move |ctx| users::create(ctx, &Actor::system("test"), &user))
            .unwrap();
        Actor::user(&created.user.user_id, role)
    }

    /// An escrow of `total_cents` split evenly over `categories`, not yet funded.
    pub fn escrow(
        &self,
        sender: &Actor,
        phone: &str,
        total_cents: i64,
        categories: &[&str],
        daily_limit: Option<i64>,
    ) -> remit::Result<Value> {
        let input = NewEscrow {
            recipient_phone: KenyanPhone::parse("recipientPhone", phone).unwrap(),
            recipient_name: "Wanjiru".into(),
            total: UsdCents::new(total_cents).unwrap(),
            categories: Categories::Names(
                categories
                    .iter()
                    .map(|c| CategoryName::parse("c", c).unwrap())
                    .collect(),
            ),
            daily_limit: daily_limit.map(|l| UsdCents::new(l).unwrap()),
            recipient_language: remit::domain::Language::En,
        };
        let sender = sender.clone();
        self.store
            .write(move |ctx| escrows::create(ctx, &sender, &input))
            .map(json)
    }

    pub fn deposit(
        &self,
        agent: &Actor,
        escrow_id: &str,
        reference: &str,
        cents: i64,
    ) -> remit::Result<(Value, DepositOutcome)> {
        let (agent, escrow_id, reference) =
            (agent.clone(), escrow_id.to_string(), reference.to_string());
        self.store
            .write(move |ctx| {
                deposits::record(
                    ctx,
                    &agent,
                    &escrow_id,
                    DepositSource::Cash,
                    &reference,
                    UsdCents::new(cents).unwrap(),
                )
            })
            .map(|recorded| {
                let outcome = recorded.outcome.clone();
                (json(recorded), outcome)
            })
    }

    /// An active escrow: created and fully deposited.
    pub fn active_escrow(
        &self,
        sender: &Actor,
        agent: &Actor,
        phone: &str,
        total_cents: i64,
        categories: &[&str],
        daily_limit: Option<i64>,
    ) -> String {
        let escrow = self
            .escrow(sender, phone, total_cents, categories, daily_limit)
            .unwrap();
        let id = escrow["escrowId"].as_str().unwrap().to_string();
        self.deposit(agent, &id, &format!("r-{id}"), total_cents)
            .unwrap();
        id
    }

    pub fn request(
        &self,
        by: &Actor,
        escrow_id: &str,
        category: &str,
        kes_cents: i64,
    ) -> remit::Result<Value> {
        self.request_to(
            by,
            escrow_id,
            category,
            kes_cents,
            MerchantAccount::Paybill {
                number: "888880".into(),
                account_reference: "12345678".into(),
            },
        )
    }

    pub fn request_to(
        &self,
        by: &Actor,
        escrow_id: &str,
        category: &str,
        kes_cents: i64,
        account: MerchantAccount,
    ) -> remit::Result<Value> {
        let input = NewPaymentRequest {
            escrow_id: EscrowId::parse(escrow_id)?,
            category: CategoryName::parse("category", category).unwrap(),
            amount: KesCents::new(kes_cents).unwrap(),
            merchant_name: "Kenya Power".into(),
            merchant_account: account,
            note: Some("November token".into()),
        };
        let by = by.clone();
        self.store
            .write(move |ctx| requests::create(ctx, &by, &input, 72 * 3600))
            .map(json)
    }

    pub fn approve(&self, sender: &Actor, request_id: &str) -> remit::Result<Value> {
        let (sender, id) = (sender.clone(), PaymentRequestId::parse(request_id)?);
        self.store
            .write(move |ctx| requests::approve(ctx, &sender, &id))
            .map(json)
    }

    pub fn escrow_view(&self, escrow_id: &str) -> Value {
        self.store
            .read(|conn, keys| {
                remit::service::views::escrow(
                    conn,
                    keys,
                    &Actor::system("test"),
                    &self::escrow_id(escrow_id),
                )
            })
            .map(json)
            .unwrap()
    }

    pub fn payout_id_of(&self, request_id: &str) -> String {
        let id = request_id.to_string();
        self.store
            .read(move |conn, _| {
                Ok(conn.query_row(
                    "SELECT id FROM payouts WHERE payment_request_id = ?1",
                    [id],
                    |r| r.get(0),
                )?)
            })
            .unwrap()
    }

    pub fn integrity(&self) -> remit::integrity::Report {
        self.store.read(remit::integrity::check).unwrap()
    }

    pub fn assert_integrity(&self) {
        let report = self.integrity();
        assert!(
            report.is_clean(),
            "integrity check failed:\n{}",
            report.mismatches.join("\n")
        );
    }
}

/// `KES amount` whose USD price at 150 is exactly `usd_cents`.
pub fn kes_for_usd_cents(usd_cents: i64) -> i64 {
    usd_cents * 150
}

pub fn cents(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

/// Sends `bytes` on a new connection and reads what comes back until the server closes it (or
/// 15 s pass): the answer, and whether the connection was closed.
pub fn exchange(addr: SocketAddr, bytes: &[u8]) -> (String, bool) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
    };
    (String::from_utf8_lossy(&out).into_owned(), closed)
}

pub fn status_of(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A free loopback port: bound, read, released, then given to a server started by the test.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The address of an in-process server.
pub fn addr(app: &app::TestApp) -> SocketAddr {
    app.base.trim_start_matches("http://").parse().unwrap()
}
