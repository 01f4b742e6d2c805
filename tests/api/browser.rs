//! The web UI in a real browser: the real server (simulator at 0 ms) and Debian's Chromium
//! driven by `tests/browser/flow.mjs` (playwright-core). A sender checks a new escrow's person
//! and creates it, gets its deposit code and gives a recipient a sign-in token; an agent finds
//! the escrow by that code, records the cash in KES and prints the receipt, and asks for
//! payments; the sender approves (Approve disabled once a category is short), both see them paid
//! with a receipt marked Simulated; a failing account shows a plain reason and the refund; the
//! recipient pages through their requests; the admin resolves a stuck payout, sees a flagged
//! deposit, is warned before revoking their own token, and sees the M-Pesa balances seeded into
//! `mpesa_balances` (a float alert of KES 5,000: one paying account below it, one above). Every
//! screen is checked at 1366, 390 and 360 px wide, in English and in Kiswahili. A second server
//! with a 3 s idle time shows the idle sign-out. Screenshots of every screen land in
//! `target/tmp/browser/` (and the README's in `REMIT_DOCS_SCREENSHOTS`, when set).
//!
//! `.ci/run` installs Chromium and the npm packages. To run `cargo test` on a machine without
//! them, set `REMIT_SKIP_BROWSER=1` (the test then says it was skipped).

use crate::support::app::*;
use remit::money::KesCents;
use rusqlite::{params, Connection};
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The float alert the server runs with, in KES cents.
const FLOAT_ALERT_CENTS: i64 = 500_000;
/// The balances seeded as if M-Pesa had reported them: the Utility account below the alert, the
/// Working account above it, a charges account (pays no payouts) negative.
const FLOAT_BALANCES: [(&str, i64); 3] = [
    ("Utility Account", 120_000),
    ("Working Account", 2_500_050),
    ("Charges Paid Account", -15_000),
];

/// The idle time of the second server, whose UI signs out after it: 12 s, so that its warning
/// shows for 4 s (a third), time enough for the test's reads and click on a busy machine (at
/// 3 s the warning's one second could pass before the click landed; at 6 s it had two).
const IDLE_S: u64 = 12;
/// The Stripe PaymentIntent of the deposit the server cannot apply (its escrow is active).
const FLAGGED_INTENT: &str = "pi_browser_flagged";
const EURO_INTENT: &str = "pi_browser_euros";
const REFUNDED_INTENT: &str = "pi_browser_refunded";
const RETURNED_INTENT: &str = "pi_browser_returned";

/// A payout M-Pesa never answers (the simulator's queue timeout): stuck for the operator, its
/// money set aside. Returns its id.
fn stuck_payout(app: &TestApp) -> (String, String) {
    let escrow = app.active_escrow(100, &["rent"]);
    let request = app.request(&escrow, "rent", 1_500, TIMEOUT_ACCOUNT);
    assert_eq!(app.approve(&request).status, 200);
    app.wait_for_payout_flag(&request);
    (escrow, app.payout_ids(&request).0)
}

/// A signed Stripe deposit for an escrow that is already active: recorded, flagged, not applied.
/// And before it one paid in euros (`EURO_INTENT`), flagged for its currency.
fn flagged_deposit(app: &TestApp, escrow_id: &str) {
    let euros = json!({"id": "evt_browser_flagged_eur", "object": "event", "type": "payment_intent.succeeded",
        "livemode": false, "data": {"object": {"id": EURO_INTENT, "object": "payment_intent",
        "amount": 2_500, "amount_received": 2_500, "currency": "eur", "status": "succeeded",
        "metadata": {"escrowId": escrow_id}}}})
    .to_string();
    assert_eq!(app.post_stripe(&euros).status, 200);
    let event =
        json!({"id": "evt_browser_flagged", "object": "event", "type": "payment_intent.succeeded",
        "livemode": false, "data": {"object": {"id": FLAGGED_INTENT, "object": "payment_intent",
        "amount": 2_500, "amount_received": 2_500, "currency": "usd", "status": "succeeded",
        "metadata": {"escrowId": escrow_id}}}})
        .to_string();
    let r = app.post_stripe(&event);
    assert_eq!(r.status, 200, "{}", r.text);
    let flagged = app.get("/deposits?status=flagged", &app.admin);
    assert_eq!(
        flagged.body["items"][0]["reference"], FLAGGED_INTENT,
        "{}",
        flagged.text
    );
}

/// An escrow funded by card whose payment Stripe then refunded: flagged, its money held until an
/// admin clears the flag. Returns its id.
fn refunded_escrow(app: &TestApp) -> String {
    let escrow = app.pending_escrow(25, &["rent"], None);
    let paid = json!({"id": "evt_browser_refunded_paid", "object": "event", "type": "payment_intent.succeeded",
        "livemode": false, "data": {"object": {"id": REFUNDED_INTENT, "object": "payment_intent",
        "amount": 2_500, "amount_received": 2_500, "currency": "usd", "status": "succeeded",
        "metadata": {"escrowId": escrow}}}});
    let r = app.post_stripe(&paid.to_string());
    assert_eq!(r.body["outcome"], "deposit applied", "{}", r.text);
    let refunded = json!({"id": "evt_browser_refunded", "object": "event", "type": "charge.refunded",
        "livemode": false, "data": {"object": {"id": "ch_browser", "object": "charge",
        "payment_intent": REFUNDED_INTENT, "amount": 2_500, "amount_refunded": 2_500,
        "refunded": true, "currency": "usd"}}});
    let r = app.post_stripe(&refunded.to_string());
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(app.escrow(&escrow)["flagReason"].is_string());
    escrow
}

/// An escrow funded by card, cancelled by its sender, whose payment Stripe then refunded: its
/// card shows what went back to the card. Returns its id.
fn returned_escrow(app: &TestApp) -> String {
    // A recipient of its own: the kiosk's searches for Wanjiru's phone find no cancelled escrow.
    let body = json!({"recipientPhone": "0733000444", "recipientName": "Akinyi", "totalAmountUsd": 30, "categories": ["rent"]});
    let r = app.post("/escrows", &app.sender, &body);
    assert_eq!(r.status, 201, "{}", r.text);
    let escrow = r.body["escrowId"].as_str().unwrap().to_string();
    let paid = json!({"id": "evt_browser_returned_paid", "object": "event", "type": "payment_intent.succeeded",
        "livemode": false, "data": {"object": {"id": RETURNED_INTENT, "object": "payment_intent",
        "amount": 3_000, "amount_received": 3_000, "currency": "usd", "status": "succeeded",
        "metadata": {"escrowId": escrow}}}});
    let r = app.post_stripe(&paid.to_string());
    assert_eq!(r.body["outcome"], "deposit applied", "{}", r.text);
    let cancel = app.post(
        &format!("/escrows/{escrow}/cancel"),
        &app.sender,
        &json!({}),
    );
    assert_eq!(cancel.status, 200, "{}", cancel.text);
    let refunded = json!({"id": "evt_browser_returned", "object": "event", "type": "charge.refunded",
        "livemode": false, "data": {"object": {"id": "ch_browser_returned", "object": "charge",
        "payment_intent": RETURNED_INTENT, "amount": 3_000, "amount_refunded": 3_000,
        "refunded": true, "currency": "usd"}}});
    let r = app.post_stripe(&refunded.to_string());
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.escrow(&escrow)["returnedToCardUsdCents"], 3_000);
    escrow
}

/// Writes `FLOAT_BALANCES` into the server's `mpesa_balances` through its database file; returns
/// what `flow.mjs` expects to see (`REMIT_FLOAT`).
fn seed_float(app: &TestApp) -> serde_json::Value {
    let updated_at = remit::time::now_rfc3339();
    let conn = Connection::open(app.dir.path().join("remit.db")).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    for (account, cents) in FLOAT_BALANCES {
        conn.execute(
            "INSERT INTO mpesa_balances (account, currency, available_kes_cents, updated_at)
             VALUES (?1, 'KES', ?2, ?3)",
            params![account, cents, updated_at],
        )
        .unwrap();
    }
    let accounts: Vec<_> = FLOAT_BALANCES
        .iter()
        .map(|(name, cents)| json!({ "name": name, "cents": cents }))
        .collect();
    json!({ "alertKesCents": FLOAT_ALERT_CENTS, "updatedAt": updated_at, "accounts": accounts })
}

#[test]
fn the_kiosk_flow_works_in_a_real_browser() {
    if std::env::var_os("REMIT_SKIP_BROWSER").is_some() {
        eprintln!("browser test skipped: REMIT_SKIP_BROWSER is set");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let flow = root.join("tests/browser/flow.mjs");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists() && root.join("tests/browser/node_modules/playwright-core").exists(),
        "the browser test needs Debian's chromium ({chromium}) and `npm ci` in tests/browser: run .ci/run, \
         or set REMIT_SKIP_BROWSER=1 to skip it"
    );
    let app = spawn_app_with(|config| {
        config.float_alert = KesCents::new(FLOAT_ALERT_CENTS).unwrap();
    });
    let idle_app = spawn_app_with(|config| config.ui_idle_s = IDLE_S);
    // Without a gateway (as after a restore) a queued payout is the admin's to settle.
    let held_app = spawn_app_with(|config| config.gateway = remit::config::GatewayKind::None);
    let held_escrow = held_app.active_escrow(100, &["rent"]);
    let held_request = held_app.request(&held_escrow, "rent", 1_500, "0722000111");
    assert_eq!(held_app.approve(&held_request).status, 200);
    let held = held_app.payout_ids(&held_request).0;
    let float = seed_float(&app);
    let (stuck_escrow, stuck) = stuck_payout(&app);
    flagged_deposit(&app, &stuck_escrow);
    let refunded = refunded_escrow(&app);
    let returned = returned_escrow(&app);
    // The API flags exactly the paying account below the alert (the simulator pays, so the
    // gateway is `simulator`; the recorded balances are listed all the same).
    let shown = app.get("/admin/float", &app.admin);
    assert_eq!(shown.status, 200, "{}", shown.text);
    assert_eq!(shown.body["gateway"], "simulator", "{}", shown.text);
    let low: Vec<(&str, bool)> = shown.body["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .map(|a| (a["name"].as_str().unwrap(), a["low"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        low,
        [
            ("Charges Paid Account", false),
            ("Utility Account", true),
            ("Working Account", false)
        ],
        "{}",
        shown.text
    );
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    let _ = std::fs::remove_dir_all(&screenshots);
    let output = Command::new("node")
        .arg(&flow)
        .env("REMIT_URL", &app.base)
        .env("REMIT_SENDER_TOKEN", &app.sender)
        .env("REMIT_AGENT_TOKEN", &app.agent)
        .env("REMIT_ADMIN_TOKEN", &app.admin)
        .env("REMIT_RECIPIENT_TOKEN", &app.recipient)
        .env("REMIT_FAIL_ACCOUNT", FAIL_ACCOUNT)
        .env("REMIT_STUCK_PAYOUT", &stuck)
        .env("REMIT_FLAGGED_DEPOSIT", FLAGGED_INTENT)
        .env("REMIT_EURO_DEPOSIT", EURO_INTENT)
        .env("REMIT_REFUNDED_DEPOSIT", REFUNDED_INTENT)
        .env("REMIT_REFUNDED_ESCROW", &refunded)
        .env("REMIT_RETURNED_DEPOSIT", RETURNED_INTENT)
        .env("REMIT_RETURNED_ESCROW", &returned)
        .env("REMIT_IDLE_URL", &idle_app.base)
        .env("REMIT_IDLE_TOKEN", &idle_app.agent)
        .env("REMIT_IDLE_S", IDLE_S.to_string())
        .env("REMIT_HELD_URL", &held_app.base)
        .env("REMIT_HELD_ADMIN_TOKEN", &held_app.admin)
        .env("REMIT_HELD_PAYOUT", &held)
        .env("REMIT_FLOAT", float.to_string())
        .env("REMIT_SCREENSHOT_DIR", &screenshots)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser flow failed:\n{stdout}\n{stderr}\nscreenshots: {}",
        screenshots.display()
    );
    let shots = std::fs::read_dir(&screenshots)
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(
        shots >= 20,
        "expected a screenshot of each screen in {}, found {shots}",
        screenshots.display()
    );
    app.assert_integrity();
    // The UI changed money only through the API: the ledger holds; the escrow the browser made
    // was funded (in KES, at the kiosk); the stuck payout was resolved as failed.
    let escrows = app.get("/escrows", &app.sender);
    let items = escrows.body["items"].as_array().expect("items");
    assert!(
        items.len() >= 3,
        "the flow made two escrows beside the stuck payout's: {}",
        escrows.text
    );
    assert!(
        items
            .iter()
            .any(|e| e["status"] == "active" && e["totalAmountUsdCents"] == 50_000),
        "the escrow funded at the kiosk is not active: {}",
        escrows.text
    );
    let resolved = app.get("/payouts?status=failed&limit=200", &app.admin);
    assert!(
        resolved.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|p| p["payoutId"] == stuck.as_str()),
        "the stuck payout was not resolved as failed: {}",
        resolved.text
    );
    assert_eq!(
        app.get("/payouts?status=stuck", &app.admin).body["items"],
        json!([]),
        "a payout is still stuck"
    );
}
