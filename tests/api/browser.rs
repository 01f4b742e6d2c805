//! The web UI in a real browser: the real server (simulator at 0 ms) and Debian's Chromium
//! driven by `tests/browser/flow.mjs` (playwright-core). A sender creates an escrow, an agent
//! records the cash deposit and asks for a payment, the sender approves, both see it paid with a
//! receipt; a failing account shows the refund; a bad amount shows the API's message beside its
//! field; the admin overview shows the M-Pesa balances seeded into `mpesa_balances` (a float
//! alert of KES 5,000: one paying account below it, one above). Screenshots of every screen land
//! in `target/tmp/browser/`.
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
    let float = seed_float(&app);
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
        .env("REMIT_FAIL_ACCOUNT", FAIL_ACCOUNT)
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
        shots >= 5,
        "expected a screenshot of each screen in {}, found {shots}",
        screenshots.display()
    );
    app.assert_integrity();
    // The UI changed money only through the API: the ledger holds, and the sender's escrow shows
    // one paid request and one refunded failure.
    let escrows = app.get("/escrows", &app.sender);
    let items = escrows.body["items"].as_array().expect("items");
    assert!(!items.is_empty(), "the browser created an escrow");
}
