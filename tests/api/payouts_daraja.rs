//! Payouts through the Daraja gateway, end to end: remit with `REMIT_GATEWAY=daraja` against
//! the fake Daraja on loopback (`support::fake_daraja`). Each scenario checks what M-Pesa
//! did (the fake's own record of what it paid), what remit recorded (the request, the payout,
//! the escrow's balances, the journal, the audit log) and, at the end, `remit check`.

use crate::support::app::*;
use crate::support::fake_daraja::{
    self, Delivery, FakeDaraja, Outcome, Reply, Script, CONSUMER_KEY, CONSUMER_SECRET, INITIATOR,
    INITIATOR_PASSWORD, SHORTCODE,
};
use crate::support::process::{check, stop_app};
use crate::support::TEST_KEY;
use remit::config::{B2cCommand, Config, DarajaConfig, GatewayKind};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// remit's configuration for the fake: the credential computed from the password and the
/// fixture certificate, as at start; calls time out after 1.5 s.
fn daraja_config(fake: &FakeDaraja) -> DarajaConfig {
    let pem = std::fs::read_to_string(fake_daraja::cert_path()).unwrap();
    DarajaConfig {
        url: fake.base.clone(),
        consumer_key: CONSUMER_KEY.into(),
        consumer_secret: CONSUMER_SECRET.into(),
        shortcode: SHORTCODE.into(),
        initiator: INITIATOR.into(),
        security_credential: remit::wire::daraja::requests::security_credential(
            INITIATOR_PASSWORD,
            &pem,
        )
        .unwrap(),
        b2c_command: B2cCommand::BusinessPayment,
        public_url: None,
        timeout: Duration::from_millis(1_500),
    }
}

/// The fake and remit paying through it; status queries after 1 s.
fn start_with(configure: impl FnOnce(&mut Config)) -> (FakeDaraja, TestApp) {
    let fake = FakeDaraja::start();
    let daraja = daraja_config(&fake);
    let app = spawn_app_with(|c| {
        c.gateway = GatewayKind::Daraja(Box::new(daraja));
        c.payout_status_after_s = 1;
        c.float_check_s = 3_600;
        configure(c);
    });
    (fake, app)
}

fn start() -> (FakeDaraja, TestApp) {
    start_with(|_| {})
}

/// The fake and remit paying through it, a sent payout asked about only after a minute: the
/// test's own results come first (a doubtful result is still asked about at once).
fn unasked() -> (FakeDaraja, TestApp) {
    start_with(|c| c.payout_status_after_s = 60)
}

/// A payment request of `kes` to `account` (a `merchantAccount` object).
fn request_to(app: &TestApp, escrow: &str, kes: i64, account: Value) -> String {
    let r = app.post(
        "/payment-requests",
        &app.agent,
        &json!({"escrowId": escrow, "category": "a", "amountKes": kes, "merchantName": "Payee",
                "merchantAccount": account}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["paymentRequestId"].as_str().unwrap().to_string()
}

fn phone(number: &str) -> Value {
    json!({"type": "phone", "number": number})
}

/// Requests and approves a payment of `kes` to a phone; returns the request's id.
fn approved_phone_payment(app: &TestApp, escrow: &str, kes: i64) -> String {
    let request = request_to(app, escrow, kes, phone("0722000111"));
    let r = app.approve(&request);
    assert_eq!(r.status, 200, "{}", r.text);
    request
}

/// Polls a request until its status is one of `statuses` (bounded: 30 s, for retries with
/// backoff).
fn settled(app: &TestApp, request: &str, statuses: &[&str]) -> Value {
    app.wait_for_status_within(request, statuses, Duration::from_secs(30))
}

/// The journal's transactions of one payout, by kind.
fn journal_kinds(app: &TestApp, payout: &str) -> Vec<String> {
    let payout = payout.to_string();
    app.store
        .read(move |c, _| {
            let mut stmt =
                c.prepare("SELECT kind FROM ledger_transactions WHERE reference = ?1 ORDER BY id")?;
            let kinds = stmt
                .query_map([payout], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok(kinds)
        })
        .unwrap()
}

/// The audit log's actions about one payout, read through the escrow's audit.
fn audit_actions(app: &TestApp, escrow: &str, payout: &str) -> Vec<String> {
    app.audit_lines_of(escrow, payout)
        .iter()
        .map(|line| line["action"].as_str().unwrap().to_string())
        .collect()
}

fn count(items: &[String], what: &str) -> usize {
    items.iter().filter(|i| i.as_str() == what).count()
}

/// The escrow's (remaining, reserved, spent) in USD cents.
fn balances(app: &TestApp, escrow: &str) -> (i64, i64, i64) {
    let view = app.escrow(escrow);
    (
        view["remainingUsdCents"].as_i64().unwrap(),
        view["reservedUsdCents"].as_i64().unwrap(),
        view["spentUsdCents"].as_i64().unwrap(),
    )
}

/// The request's USD cents.
fn usd_of(view: &Value) -> i64 {
    view["amountUsdCents"].as_i64().unwrap()
}

/// What every paid scenario ends with: the request paid with the fake's receipt, M-Pesa paid
/// it exactly once, the money spent once, one settlement in the journal and the audit log.
fn assert_paid_once(app: &TestApp, fake: &FakeDaraja, escrow: &str, request: &str) -> Value {
    let view = settled(app, request, &["paid"]);
    let (payout, originator, _) = app.payout_ids(request);
    let txns: Vec<_> = fake
        .txns()
        .into_iter()
        .filter(|t| t.originator == originator)
        .collect();
    assert_eq!(txns.len(), 1, "M-Pesa took the payout once: {txns:?}");
    let receipt = txns[0].paid.clone().expect("M-Pesa paid it");
    assert_eq!(view["payout"]["status"], "succeeded");
    assert_eq!(view["payout"]["mpesaReceipt"], receipt.as_str());
    assert_eq!(view["payout"]["gateway"], "daraja");
    assert_eq!(
        txns[0].amount_kes * 100,
        view["amountKesCents"].as_i64().unwrap(),
        "whole shillings, the amount approved"
    );
    let journal = journal_kinds(app, &payout);
    assert_eq!(count(&journal, "payout_succeeded"), 1, "{journal:?}");
    assert_eq!(count(&journal, "payout_failed"), 0, "{journal:?}");
    let audit = audit_actions(app, escrow, &payout);
    assert_eq!(count(&audit, "payout.succeeded"), 1, "{audit:?}");
    assert_eq!(count(&audit, "payout.failed"), 0, "{audit:?}");
    view
}

/// What every failed scenario ends with: M-Pesa paid nothing, the money is back.
fn assert_failed_money_back(
    app: &TestApp,
    fake: &FakeDaraja,
    escrow: &str,
    request: &str,
    total_usd_cents: i64,
) -> Value {
    let view = settled(app, request, &["failed"]);
    let (payout, originator, _) = app.payout_ids(request);
    assert!(
        fake.txns()
            .iter()
            .filter(|t| t.originator == originator)
            .all(|t| t.paid.is_err()),
        "M-Pesa paid nothing"
    );
    assert_eq!(view["payout"]["status"], "failed");
    assert_eq!(balances(app, escrow), (total_usd_cents, 0, 0));
    let journal = journal_kinds(app, &payout);
    assert_eq!(
        (
            count(&journal, "payout_failed"),
            count(&journal, "payout_succeeded")
        ),
        (1, 0),
        "{journal:?}"
    );
    assert_eq!(
        count(&audit_actions(app, escrow, &payout), "payout.failed"),
        1
    );
    view
}

/// Stops remit and runs `remit check` on its database file.
fn assert_checks(app: TestApp) {
    let dir = stop_app(app);
    let ran = check(&dir.path().join("remit.db"), TEST_KEY);
    assert_eq!(ran.code, Some(0), "remit check: {ran}");
}

#[test]
fn a_phone_is_paid_by_b2c_with_every_field_daraja_requires() {
    let (fake, app) = start();
    let escrow = app.active_escrow(100, &["a"]);
    let request = approved_phone_payment(&app, &escrow, 1_500);
    let view = assert_paid_once(&app, &fake, &escrow, &request);
    let usd = usd_of(&view);
    assert_eq!(balances(&app, &escrow), (10_000 - usd, 0, usd));
    let calls = fake.calls("/mpesa/b2c/v3/paymentrequest");
    assert_eq!(calls.len(), 1);
    let body = &calls[0].body;
    assert_eq!(
        (
            &body["CommandID"],
            &body["PartyB"],
            &body["InitiatorName"],
            &body["Amount"]
        ),
        (
            &json!("BusinessPayment"),
            &json!("254722000111"),
            &json!(INITIATOR),
            &json!(1_500)
        ),
        "{body}"
    );
    assert_eq!(
        body["OriginatorConversationID"],
        app.payout_ids(&request).1.as_str(),
        "our own id, chosen before the call"
    );
    // B2C pays from the Utility account.
    assert_eq!(fake.balances_kes(), (1_000_000 - 1_500, 1_000_000));
    assert_eq!(fake.token_requests(), 1, "one token, shared");
    assert_checks(app);
}

#[test]
fn a_paybill_and_a_till_are_paid_by_b2b() {
    let (fake, app) = start();
    let escrow = app.active_escrow(200, &["a"]);
    let paybill = request_to(
        &app,
        &escrow,
        2_000,
        json!({"type": "paybill", "number": "888880", "accountReference": "37194502618"}),
    );
    let till = request_to(
        &app,
        &escrow,
        700,
        json!({"type": "till", "number": "5123456"}),
    );
    for request in [&paybill, &till] {
        assert_eq!(app.approve(request).status, 200);
    }
    let paid_bill = assert_paid_once(&app, &fake, &escrow, &paybill);
    let paid_till = assert_paid_once(&app, &fake, &escrow, &till);
    let (a, b) = (usd_of(&paid_bill), usd_of(&paid_till));
    assert_eq!(balances(&app, &escrow), (20_000 - a - b, 0, a + b));
    let calls = fake.calls("/mpesa/b2b/v1/paymentrequest");
    let sent = |command: &str| {
        calls
            .iter()
            .find(|c| c.body["CommandID"] == command)
            .unwrap_or_else(|| panic!("no {command} in {calls:?}"))
            .body
            .clone()
    };
    let bill = sent("BusinessPayBill");
    assert_eq!(
        (
            &bill["PartyB"],
            &bill["AccountReference"],
            &bill["Initiator"]
        ),
        (&json!("888880"), &json!("37194502618"), &json!(INITIATOR))
    );
    let buy = sent("BusinessBuyGoods");
    assert_eq!(buy["PartyB"], "5123456");
    for method in [
        &paid_bill["payout"]["method"],
        &paid_till["payout"]["method"],
    ] {
        assert!(method.as_str().unwrap().starts_with("b2b"), "{method}");
    }
    // B2B pays from the Working account.
    assert_eq!(fake.balances_kes(), (1_000_000, 1_000_000 - 2_700));
    assert_checks(app);
}

/// A refusal whose message quotes the request: a paybill's number and account reference are no
/// phone (which M-Pesa's words have masked by its length), and they were kept in the clear in
/// the payout's description (the file, its backups) and the log.
#[test]
fn a_refusal_quoting_a_paybill_keeps_its_number_and_reference_masked() {
    let (fake, app) = start();
    fake.script(
        1_235,
        Script {
            replies: vec![Reply::Refuse],
            ..Script::default()
        },
    );
    let escrow = app.active_escrow(100, &["a"]);
    let account = json!({"type": "paybill", "number": "888880", "accountReference": "ACCT7777"});
    let request = request_to(&app, &escrow, 1_235, account);
    assert_eq!(app.approve(&request).status, 200);
    let view = assert_failed_money_back(&app, &fake, &escrow, &request, 10_000);
    let desc = view["payout"]["resultDesc"].as_str().unwrap_or_default();
    assert!(
        desc.contains(r#""PartyB":"***880","AccountReference":"***777""#),
        "the echo is kept, masked: {desc}"
    );
    let dir = stop_app(app);
    for file in ["remit.db", "remit.db-wal"] {
        let bytes = std::fs::read(dir.path().join(file)).unwrap_or_default();
        for clear in ["888880", "ACCT7777"] {
            assert!(
                !bytes.windows(clear.len()).any(|w| w == clear.as_bytes()),
                "{clear} readable in {file}"
            );
        }
    }
}

#[test]
fn a_refused_payout_fails_at_once_and_the_money_returns() {
    let (fake, app) = start();
    fake.script(
        1_234,
        Script {
            replies: vec![Reply::Refuse],
            ..Script::default()
        },
    );
    let escrow = app.active_escrow(100, &["a"]);
    let request = approved_phone_payment(&app, &escrow, 1_234);
    let view = assert_failed_money_back(&app, &fake, &escrow, &request, 10_000);
    assert_eq!(view["payout"]["resultCode"], "400.002.02");
    // The refusal echoed the security credential: the description keeps the message, not it.
    let credential = fake.calls("/mpesa/b2c/v3/paymentrequest")[0].body["SecurityCredential"]
        .as_str()
        .unwrap()
        .to_string();
    let desc = view["payout"]["resultDesc"].to_string();
    assert!(
        desc.contains("Invalid PartyB")
            && desc.contains("[redacted]")
            && !desc.contains(&credential),
        "{desc}"
    );
    assert!(fake.txns().is_empty(), "nothing was taken");
    assert_eq!(
        fake.calls("/mpesa/b2c/v3/paymentrequest").len(),
        1,
        "a refusal is final"
    );
    assert_checks(app);
}

#[test]
fn transient_refusals_are_retried_under_the_same_id_until_paid() {
    let (fake, app) = start();
    fake.script(
        1_600,
        Script {
            replies: vec![Reply::ServerError, Reply::SpikeArrest],
            ..Script::default()
        },
    );
    let escrow = app.active_escrow(100, &["a"]);
    let request = approved_phone_payment(&app, &escrow, 1_600);
    assert_paid_once(&app, &fake, &escrow, &request);
    let calls = fake.calls("/mpesa/b2c/v3/paymentrequest");
    assert_eq!(calls.len(), 3, "two refusals, then accepted");
    let ids: Vec<_> = calls
        .iter()
        .map(|c| c.body["OriginatorConversationID"].clone())
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "one id: {ids:?}");
    assert_checks(app);
}

#[test]
fn an_ambiguous_answer_keeps_the_money_reserved_and_is_retried_under_the_same_id() {
    let (fake, app) = start();
    // "0" without a ConversationID: M-Pesa took it (and sends no result); the retry under the
    // same id is refused as a duplicate, and Transaction Status settles it.
    fake.script(
        1_700,
        Script {
            replies: vec![Reply::AcceptWithoutId],
            result: Delivery::Never,
            ..Script::default()
        },
    );
    // A 503 with a ResponseCode: nothing taken; the retry is accepted and paid.
    fake.script(
        1_800,
        Script {
            replies: vec![Reply::Unavailable],
            ..Script::default()
        },
    );
    let escrow = app.active_escrow(100, &["a"]);
    let ambiguous = approved_phone_payment(&app, &escrow, 1_700);
    let unavailable = approved_phone_payment(&app, &escrow, 1_800);
    let usd = |request: &str| {
        usd_of(
            &app.get(&format!("/payment-requests/{request}"), &app.admin)
                .body,
        )
    };
    let (reserved_a, reserved_b) = (usd(&ambiguous), usd(&unavailable));
    // Both answers seen; remit records each before the next attempt (2 s later at the least).
    fake.wait_for("both ambiguous answers", |v| {
        v.calls
            .iter()
            .filter(|c| c.error.as_deref() == Some("no ConversationID"))
            .count()
            == 1
            && v.calls.iter().filter(|c| c.status == 503).count() == 1
    });
    for request in [&ambiguous, &unavailable] {
        let (payout, _, _) = app.payout_ids(request);
        let attempted = |app: &TestApp| {
            let id = payout.clone();
            app.store
                .read(move |c, _| {
                    Ok(c.query_row(
                        "SELECT result_desc IS NOT NULL OR status <> 'queued' FROM payouts WHERE id = ?1",
                        [id],
                        |r| r.get::<_, bool>(0),
                    )?)
                })
                .unwrap()
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !attempted(&app) {
            assert!(
                Instant::now() < deadline,
                "{request}: the answer was never recorded"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let view = app
            .get(&format!("/payment-requests/{request}"), &app.admin)
            .body;
        assert_eq!(view["status"], "approved", "not failed: {view}");
        assert_ne!(view["payout"]["status"], "failed", "{view}");
    }
    // Nothing went back to the escrow: each payout's money is reserved (or spent, if its retry
    // already paid it).
    let (remaining, reserved, spent) = balances(&app, &escrow);
    assert_eq!(
        (remaining, reserved + spent),
        (10_000 - reserved_a - reserved_b, reserved_a + reserved_b),
        "the money stays reserved"
    );
    let category = &app.escrow(&escrow)["categories"][0];
    assert_eq!(
        category["remainingUsdCents"].as_i64().unwrap(),
        10_000 - reserved_a - reserved_b,
        "the category got nothing back: {category}"
    );
    for request in [&ambiguous, &unavailable] {
        let view = assert_paid_once(&app, &fake, &escrow, request);
        assert_eq!(view["payout"]["resultCode"], "0");
        let (payout, _, _) = app.payout_ids(request);
        assert_eq!(count(&journal_kinds(&app, &payout), "payout_failed"), 0);
    }
    let ids = |amount: i64| {
        fake.calls("/mpesa/b2c/v3/paymentrequest")
            .into_iter()
            .filter(|c| c.body["Amount"] == amount)
            .map(|c| c.body["OriginatorConversationID"].clone())
            .collect::<Vec<_>>()
    };
    for amount in [1_700, 1_800] {
        let ids = ids(amount);
        assert!(ids.len() >= 2, "{amount}: retried: {ids:?}");
        assert!(ids.iter().all(|id| *id == ids[0]), "one id: {ids:?}");
    }
    assert!(
        !fake.calls("/mpesa/transactionstatus/v1/query").is_empty(),
        "the duplicate was asked about"
    );
    assert_eq!(
        balances(&app, &escrow),
        (10_000 - reserved_a - reserved_b, 0, reserved_a + reserved_b)
    );
    assert_checks(app);
}

#[test]
fn a_lost_answer_then_a_duplicate_is_resolved_by_transaction_status() {
    let (fake, app) = start();
    // M-Pesa took and paid the first attempt but its answer never arrived, nor its result;
    // the retry is refused as a duplicate, and only the status query tells what happened.
    fake.script(
        1_700,
        Script {
            replies: vec![Reply::Lose],
            result: Delivery::Never,
            ..Script::default()
        },
    );
    // The same again with an answer that comes too late (past remit's timeout).
    fake.script(
        1_800,
        Script {
            replies: vec![Reply::Slow(Duration::from_millis(2_500))],
            result: Delivery::Never,
            ..Script::default()
        },
    );
    let escrow = app.active_escrow(100, &["a"]);
    let lost = approved_phone_payment(&app, &escrow, 1_700);
    let slow = approved_phone_payment(&app, &escrow, 1_800);
    for request in [&lost, &slow] {
        let view = assert_paid_once(&app, &fake, &escrow, request);
        assert_eq!(view["payout"]["flagged"], false);
    }
    let calls = fake.calls("/mpesa/b2c/v3/paymentrequest");
    // The slow one's retry waited its 2 s from the moment its call gave up (1.5 s), not from
    // the claim before it (it went out the moment the call ended). Due times are whole
    // seconds, which may shorten a wait by up to one.
    let (_, slow_originator, _) = app.payout_ids(&slow);
    let slow_calls: Vec<Instant> = calls
        .iter()
        .filter(|c| c.body["OriginatorConversationID"] == slow_originator.as_str())
        .map(|c| c.at)
        .collect();
    assert!(
        slow_calls.len() >= 2 && slow_calls[1] - slow_calls[0] >= Duration::from_millis(2_450),
        "the retry came {:?} after the first call",
        slow_calls.get(1).map(|at| *at - slow_calls[0])
    );
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.error.as_deref() == Some("500.002.1001"))
            .count(),
        2,
        "each retry was refused as a duplicate: {calls:?}"
    );
    assert!(!fake.calls("/mpesa/transactionstatus/v1/query").is_empty());
    for request in [&lost, &slow] {
        let payout = app.payout_ids(request).0;
        let audit = audit_actions(&app, &escrow, &payout);
        assert_eq!(count(&audit, "payout.outcome_unknown"), 1, "{audit:?}");
        assert!(count(&audit, "payout.status_asked") >= 1, "{audit:?}");
    }
    assert_eq!(
        fake.balances_kes().0,
        1_000_000 - 1_700 - 1_800,
        "paid once each"
    );
    assert_checks(app);
}

/// A phone payment of `kes` approved and taken by M-Pesa, then a failure for it posted by
/// someone who knows the result URL's token (its ids, `ResultCode` 2001): (request, originator).
fn forged_failure_once_taken(
    app: &TestApp,
    fake: &FakeDaraja,
    escrow: &str,
    kes: i64,
) -> (String, String) {
    let request = approved_phone_payment(app, escrow, kes);
    let (_, originator, _) = app.payout_ids(&request);
    fake.wait_for("the payment", |v| {
        v.txns.iter().any(|t| t.originator == originator)
    });
    let conversation = fake
        .txns()
        .into_iter()
        .find(|t| t.originator == originator)
        .unwrap()
        .conversation;
    let forged = json!({"Result": {"ResultType": 0, "ResultCode": 2001,
        "ResultDesc": "The initiator information is invalid.",
        "OriginatorConversationID": originator, "ConversationID": conversation,
        "TransactionID": "TLC0000000"}});
    let r = app.post_mpesa_result(&forged);
    assert_eq!(r.status, 200, "{}", r.text);
    (request, originator)
}

/// The payment of `request` paid once, the failure held for it and said contradicted, and the
/// payout flagged for the operator (whoever posted the failure may know the result URL's
/// token): (payout, its dollars, its view).
fn paid_and_failure_contradicted(
    app: &TestApp,
    fake: &FakeDaraja,
    escrow: &str,
    request: &str,
) -> (String, i64, Value) {
    let view = assert_paid_once(app, fake, escrow, request);
    let usd = usd_of(&view);
    assert_eq!(balances(app, escrow), (10_000 - usd, 0, usd));
    let payout = app.payout_ids(request).0;
    let audit = audit_actions(app, escrow, &payout);
    assert_eq!(count(&audit, "payout.failure_held"), 1, "{audit:?}");
    assert_eq!(count(&audit, "payout.failure_contradicted"), 1, "{audit:?}");
    let flagged = app
        .get(&format!("/payment-requests/{request}"), &app.admin)
        .body["payout"]
        .clone();
    assert_eq!(flagged["flagged"], true, "{flagged}");
    assert!(
        flagged["flagReason"]
            .as_str()
            .is_some_and(|r| r.contains("result URL's token")),
        "{flagged}"
    );
    (payout, usd, flagged)
}

#[test]
fn a_forged_failure_for_a_paid_payout_is_contradicted_and_the_payout_stays_paid() {
    // No status query of its own before the forged failure comes (on a slow machine one after
    // 1 s could settle the payout first); the held failure asks at once.
    let (fake, app) = start_with(|c| c.payout_status_after_s = 60);
    // The real success comes late (long after the held failure's question is answered, however
    // loaded the machine); a forged failure gets there first.
    fake.script(
        1_900,
        Script {
            result: Delivery::After(Duration::from_secs(10)),
            ..Script::default()
        },
    );
    let escrow = app.active_escrow(100, &["a"]);
    let (request, originator) = forged_failure_once_taken(&app, &fake, &escrow, 1_900);
    // Flagged for the operator: the forger may know the result URL's token.
    let (payout, usd, flagged) = paid_and_failure_contradicted(&app, &fake, &escrow, &request);
    // The real success arrives after all that, and changes nothing.
    fake.wait_for("the late result", |v| {
        v.posted.iter().any(|p| {
            p.body["Result"]["OriginatorConversationID"] == originator.as_str()
                && p.body["Result"]["ResultCode"] == 0
        })
    });
    assert_paid_once(&app, &fake, &escrow, &request);
    assert_eq!(balances(&app, &escrow), (10_000 - usd, 0, usd));
    // Looked into, the payment is confirmed with its receipt, which clears the flag.
    let receipt = flagged["mpesaReceipt"].as_str().unwrap().to_string();
    let confirmed = app.post(
        &format!("/payouts/{payout}/resolve"),
        &app.admin,
        &json!({"outcome": "paid", "receipt": receipt}),
    );
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    assert_eq!(confirmed.body["flagged"], false, "{}", confirmed.text);
    assert_eq!(balances(&app, &escrow), (10_000 - usd, 0, usd));
    assert_checks(app);
}

/// The same forged failure, contradicted this time by M-Pesa's own success callback before
/// Transaction Status answers: the success is applied, and the failure is said contradicted and
/// flagged as when Transaction Status contradicts it (it was applied with no word of it).
#[test]
fn a_held_failure_contradicted_by_a_success_callback_is_flagged() {
    let (fake, app) = start_with(|c| c.payout_status_after_s = 60);
    fake.script(
        1_950,
        Script {
            result: Delivery::After(Duration::from_secs(3)),
            status: Delivery::Never,
            ..Script::default()
        },
    );
    let escrow = app.active_escrow(100, &["a"]);
    let (request, _) = forged_failure_once_taken(&app, &fake, &escrow, 1_950);
    paid_and_failure_contradicted(&app, &fake, &escrow, &request);
    assert_checks(app);
}

#[test]
fn a_real_failure_returns_the_money_once_transaction_status_confirms_it() {
    let (fake, app) = start();
    // The Utility account cannot cover it: M-Pesa fails it (ResultCode 1).
    fake.set_balances(1_000, 1_000_000);
    let escrow = app.active_escrow(100, &["a"]);
    let request = approved_phone_payment(&app, &escrow, 2_500);
    let view = assert_failed_money_back(&app, &fake, &escrow, &request, 10_000);
    assert_eq!(
        view["payout"]["resultCode"], "1",
        "the failure result's own code"
    );
    assert_eq!(
        (
            &view["payout"]["failureReason"],
            &view["payout"]["simulated"]
        ),
        (&json!("mpesa_float_low"), &json!(false))
    );
    // A B2B failure (its result in the single-object shape), the same way.
    fake.script(
        900,
        Script {
            outcome: Outcome::Fail(2028),
            ..Script::default()
        },
    );
    let other = app.active_escrow(100, &["a"]);
    let till = request_to(
        &app,
        &other,
        900,
        json!({"type": "till", "number": "5123456"}),
    );
    assert_eq!(app.approve(&till).status, 200);
    let view = assert_failed_money_back(&app, &fake, &other, &till, 10_000);
    assert_eq!(view["payout"]["resultCode"], "2028");
    let (payout, originator, _) = app.payout_ids(&request);
    let audit = audit_actions(&app, &escrow, &payout);
    assert_eq!(count(&audit, "payout.failure_held"), 1, "{audit:?}");
    let asked = fake.calls("/mpesa/transactionstatus/v1/query");
    assert!(
        asked
            .iter()
            .any(|c| c.body["OriginalConversationID"] == originator.as_str()),
        "the failure was confirmed before the money returned: {asked:?}"
    );
    assert_checks(app);
}

#[test]
fn a_payout_without_any_result_is_resolved_by_transaction_status_once() {
    let (fake, app) = start();
    // No result ever; the status result is delivered twice.
    fake.script(
        2_100,
        Script {
            result: Delivery::Never,
            status: Delivery::Twice,
            ..Script::default()
        },
    );
    // A queue timeout instead of a result: the same.
    fake.script(
        2_200,
        Script {
            result: Delivery::QueueTimeout,
            ..Script::default()
        },
    );
    let escrow = app.active_escrow(100, &["a"]);
    let silent = approved_phone_payment(&app, &escrow, 2_100);
    let queued = approved_phone_payment(&app, &escrow, 2_200);
    let a = usd_of(&assert_paid_once(&app, &fake, &escrow, &silent));
    let b = usd_of(&assert_paid_once(&app, &fake, &escrow, &queued));
    // The queue timeout flagged the payout for the operator (API.md) while Transaction Status
    // was asked; its answer settled it and took the flag down.
    let (queued_payout, _, _) = app.payout_ids(&queued);
    let audit = app.get(&format!("/audit?entity={queued_payout}"), &app.admin);
    assert!(
        audit.text.contains("payout.flagged") && audit.text.contains("queue timeout"),
        "{}",
        audit.text
    );
    let view = app
        .get(&format!("/payment-requests/{queued}"), &app.admin)
        .body;
    assert_eq!(view["payout"]["flagged"], false, "{view}");
    // Settled by Transaction Status, it names the payee as its answer does (`CreditPartyName`;
    // until 2026-12-07 only a result's name was kept).
    for request in [&silent, &queued] {
        let view = app
            .get(&format!("/payment-requests/{request}"), &app.sender)
            .body;
        let named = view["payout"]["mpesaPayeeName"].as_str().unwrap_or("");
        assert!(
            named.starts_with("2547") && named.ends_with(" - PAYEE"),
            "{view}"
        );
    }
    let originator = app.payout_ids(&silent).1;
    fake.wait_for("the status result delivered twice", |v| {
        v.posted
            .iter()
            .filter(|p| {
                p.body["Result"]["ResultParameters"]["ResultParameter"]
                    .as_array()
                    .is_some_and(|items| {
                        items.iter().any(|i| {
                            i["Key"] == "OriginatorConversationID"
                                && i["Value"] == originator.as_str()
                        })
                    })
            })
            .count()
            >= 2
    });
    assert_eq!(balances(&app, &escrow), (10_000 - a - b, 0, a + b));
    assert_checks(app);
}

#[test]
fn a_payout_m_pesa_never_answers_about_is_stuck_for_the_operator_with_its_money_reserved() {
    let (fake, app) = start_with(|c| c.payout_timeout_s = 2);
    // Neither the result nor any status result ever comes.
    fake.script(
        2_300,
        Script {
            result: Delivery::Never,
            status: Delivery::Never,
            ..Script::default()
        },
    );
    let escrow = app.active_escrow(100, &["a"]);
    let request = approved_phone_payment(&app, &escrow, 2_300);
    let (payout, originator, _) = app.payout_ids(&request);
    fake.wait_for("two status queries", |v| {
        v.calls
            .iter()
            .filter(|c| c.body["OriginalConversationID"] == originator.as_str())
            .count()
            >= 2
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stuck = app.get("/payouts?status=stuck", &app.admin);
        if stuck.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["payoutId"] == payout.as_str())
        {
            break;
        }
        assert!(Instant::now() < deadline, "never stuck: {}", stuck.text);
        std::thread::sleep(Duration::from_millis(50));
    }
    let view = app
        .get(&format!("/payment-requests/{request}"), &app.admin)
        .body;
    assert_eq!(view["status"], "approved", "still unknown: {view}");
    let usd = usd_of(&view);
    assert_eq!(
        balances(&app, &escrow),
        (10_000 - usd, usd, 0),
        "money stays reserved"
    );
    // The operator looks it up at M-Pesa and resolves it with the receipt found there.
    let receipt = fake.txns()[0].paid.clone().unwrap();
    let r = app.post(
        &format!("/payouts/{payout}/resolve"),
        &app.admin,
        &json!({"outcome": "paid", "receipt": receipt}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_paid_once(&app, &fake, &escrow, &request);
    assert_eq!(balances(&app, &escrow), (10_000 - usd, 0, usd));
    assert_eq!(
        count(&audit_actions(&app, &escrow, &payout), "payout.resolved"),
        1
    );
    assert_checks(app);
}

/// A failure whose call then lost its answer (it came while the call was on its way, or while
/// the payout waited to be sent again) is held until Transaction Status confirms it, and the
/// payout is not sent again meanwhile: when M-Pesa never answers the query, the payout is stuck
/// for the operator like any other whose outcome is not known. It stayed `queued`, never sent,
/// never listed, and could be neither resolved nor its escrow cancelled.
#[test]
fn a_held_failure_whose_call_lost_its_answer_is_stuck_for_the_operator() {
    let (fake, app) = start_with(|c| c.payout_timeout_s = 2);
    // The failure is posted at once; the call's answer comes after remit has given up on it.
    fake.script(
        2_400,
        Script {
            replies: vec![Reply::Slow(Duration::from_millis(2_500))],
            outcome: Outcome::Fail(1),
            result: Delivery::Now,
            status: Delivery::Never,
        },
    );
    // The call's answer is lost; the failure comes while the payout waits to be sent again.
    fake.script(
        2_500,
        Script {
            replies: vec![Reply::Lose],
            outcome: Outcome::Fail(1),
            result: Delivery::After(Duration::from_millis(500)),
            status: Delivery::Never,
        },
    );
    let escrow = app.active_escrow(100, &["a"]);
    let during = approved_phone_payment(&app, &escrow, 2_400);
    let waiting = approved_phone_payment(&app, &escrow, 2_500);
    let payouts = [app.payout_ids(&during).0, app.payout_ids(&waiting).0];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stuck = app.get("/payouts?status=stuck", &app.admin);
        let listed = stuck.body["items"].as_array().unwrap();
        if payouts
            .iter()
            .all(|id| listed.iter().any(|p| p["payoutId"] == id.as_str()))
        {
            break;
        }
        assert!(Instant::now() < deadline, "never stuck: {}", stuck.text);
        std::thread::sleep(Duration::from_millis(50));
    }
    let payment_calls = || fake.calls("/mpesa/b2c/v3/paymentrequest").len();
    let calls_when_stuck = payment_calls();
    let reserved: i64 = [&during, &waiting]
        .iter()
        .map(|r| {
            let view = app.get(&format!("/payment-requests/{r}"), &app.admin).body;
            assert_eq!(view["status"], "approved", "still unknown: {view}");
            usd_of(&view)
        })
        .sum();
    assert_eq!(balances(&app, &escrow), (10_000 - reserved, reserved, 0));
    // A held failure is never sent again. Each may have been sent again under the same id
    // before its failure was handled (the retry is due 2 s after the call gave up: a loaded
    // machine has handled the failure later than that; CI did, for both); a call decided just
    // before the hold committed may reach M-Pesa just after remit answered the failure (CI
    // saw one), never a second; and none comes once both are stuck (counted again at the end).
    for (amount, payout) in [(2_400, &payouts[0]), (2_500, &payouts[1])] {
        let (_, originator, _) = app.payout_ids(if amount == 2_400 { &during } else { &waiting });
        let held_at = fake
            .posted()
            .into_iter()
            .find(|p| {
                p.body["Result"]["OriginatorConversationID"] == originator.as_str()
                    && p.status == Some(200)
            })
            .map(|p| p.answered)
            .expect("the failure was answered");
        let calls: Vec<Instant> = fake
            .calls("/mpesa/b2c/v3/paymentrequest")
            .into_iter()
            .filter(|c| c.body["Amount"] == amount)
            .map(|c| c.at)
            .collect();
        let after = calls.iter().filter(|at| **at >= held_at).count();
        assert!(
            (1..=2).contains(&calls.len()) && after <= 1,
            "{payout}: {} calls, {after} after its failure was held",
            calls.len(),
        );
        let audit = audit_actions(&app, &escrow, payout);
        assert_eq!(count(&audit, "payout.failure_held"), 1, "{audit:?}");
    }
    // The operator finds them failed at M-Pesa: the money returns.
    for payout in &payouts {
        let r = app.post(
            &format!("/payouts/{payout}/resolve"),
            &app.admin,
            &json!({"outcome": "failed"}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert_eq!(balances(&app, &escrow), (10_000, 0, 0));
    assert_eq!(
        payment_calls(),
        calls_when_stuck,
        "a stuck payout was sent again"
    );
    assert_checks(app);
}

#[test]
fn an_expired_token_is_renewed_once_and_the_payout_goes_on() {
    let (fake, app) = start();
    let escrow = app.active_escrow(100, &["a"]);
    let first = approved_phone_payment(&app, &escrow, 1_100);
    assert_paid_once(&app, &fake, &escrow, &first);
    assert_eq!(fake.token_requests(), 1);
    fake.expire_token();
    let second = approved_phone_payment(&app, &escrow, 1_200);
    assert_paid_once(&app, &fake, &escrow, &second);
    assert_eq!(fake.token_requests(), 2, "one new token");
    assert_eq!(fake.bearer_refused(), 1, "one refusal, one retry");
    assert_eq!(
        fake.calls("/mpesa/b2c/v3/paymentrequest").len(),
        2,
        "the refused call is not counted by M-Pesa; each payout went once"
    );
    assert_checks(app);
}

/// Polls `GET /admin/float` until `ready` holds of it (bounded: 20 s).
fn wait_for_float(app: &TestApp, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = app.get("/admin/float", &app.admin);
        assert_eq!(r.status, 200, "{}", r.text);
        if ready(&r.body) {
            return r.body;
        }
        assert!(Instant::now() < deadline, "{what} never showed: {}", r.text);
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn float_account(float: &Value, name: &str) -> Value {
    float["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .cloned()
        .unwrap_or(Value::Null)
}

#[test]
fn a_low_float_is_reported_and_warned_about() {
    let fake = FakeDaraja::start();
    fake.set_balances(3_000, 250_000);
    let daraja = daraja_config(&fake);
    let app = spawn_app_with(|c| {
        c.gateway = GatewayKind::Daraja(Box::new(daraja));
        c.float_check_s = 1;
        c.float_alert = remit::money::KesCents::new(500_000).unwrap();
    });
    let float = wait_for_float(&app, "a balance", |f| f["updatedAt"].is_string());
    assert_eq!(float["gateway"], "daraja");
    let account = |name: &str| float_account(&float, name);
    let utility = account("Utility Account");
    assert_eq!(
        (&utility["availableKesCents"], &utility["low"]),
        (&json!(300_000), &json!(true))
    );
    let working = account("Working Account");
    assert_eq!(
        (&working["availableKesCents"], &working["low"]),
        (&json!(25_000_000), &json!(false))
    );
    assert_eq!(
        account("Charges Paid Account")["availableKesCents"],
        -125_000
    );
    assert_eq!(
        (&float["alertKes"], &float["alertKesCents"]),
        (&json!(5000.0), &json!(500_000))
    );
    // A sender does not see the float.
    assert_eq!(app.get("/admin/float", &app.sender).status, 403);
    let metrics = app.get("/metrics", &app.admin).text;
    assert!(
        metrics.contains("remit_mpesa_balance_kes{account=\"Utility Account\"} 3000")
            && metrics.contains("remit_mpesa_balance_kes{account=\"Working Account\"} 250000"),
        "{metrics}"
    );
    // Nor does anyone without a token, or with another's: `/metrics` is public by default,
    // and the float was there for anyone who asked (an admin's figure, `GET /admin/float`).
    for token in ["", app.sender.as_str()] {
        let metrics = app.get("/metrics", token);
        assert_eq!(metrics.status, 200);
        assert!(
            metrics.text.contains("remit_escrows_flagged ")
                && !metrics.text.contains("remit_mpesa_balance_kes"),
            "{}",
            metrics.text
        );
    }
    // The balance is asked again on the timer: a top-up shows.
    fake.set_balances(90_000, 250_000);
    let float = wait_for_float(&app, "the top-up", |f| {
        float_account(f, "Utility Account")["availableKesCents"] == 9_000_000
    });
    assert_eq!(float_account(&float, "Utility Account")["low"], false);
    // An account reported in another currency is shown as reported, never compared with the
    // alert in shillings nor given to /metrics as shillings.
    fake.set_utility_currency("USD");
    fake.set_balances(5, 250_000);
    let float = wait_for_float(&app, "the account in dollars", |f| {
        float_account(f, "Utility Account")["currency"] == "USD"
    });
    assert_eq!(float_account(&float, "Utility Account")["low"], false);
    let metrics = app.get("/metrics", &app.admin).text;
    assert!(
        !metrics.contains("remit_mpesa_balance_kes{account=\"Utility Account\"}"),
        "{metrics}"
    );
    assert_checks(app);
}

#[test]
fn without_a_public_url_a_loopback_daraja_calls_this_server_back() {
    // The other scenarios rely on it; here it is checked directly, with the URLs sent.
    let (fake, app) = start();
    let escrow = app.active_escrow(100, &["a"]);
    let request = approved_phone_payment(&app, &escrow, 1_300);
    assert_paid_once(&app, &fake, &escrow, &request);
    let body = &fake.calls("/mpesa/b2c/v3/paymentrequest")[0].body;
    assert_eq!(
        (&body["ResultURL"], &body["QueueTimeOutURL"]),
        (
            &json!(format!("{}/webhooks/payouts/{CALLBACK_TOKEN}", app.base)),
            &json!(format!(
                "{}/webhooks/payouts/{CALLBACK_TOKEN}?timeout=1",
                app.base
            ))
        )
    );
    assert_checks(app);
}

// ---------------------------------------------------------------------------------------------
// The real binary, configured from the environment.

const CALLBACK: &str = "5e0d1c2b3a4f5e6d7c8b9a0f1e2d3c4b";

/// `REMIT_GATEWAY=daraja` and everything it needs, for the fake at `base`: the credential
/// computed at start from the password and the certificate.
fn daraja_env(base: &str) -> Vec<(&'static str, String)> {
    vec![
        ("REMIT_GATEWAY", "daraja".into()),
        ("REMIT_DARAJA_URL", base.into()),
        ("REMIT_DARAJA_CONSUMER_KEY", CONSUMER_KEY.into()),
        ("REMIT_DARAJA_CONSUMER_SECRET", CONSUMER_SECRET.into()),
        ("REMIT_DARAJA_SHORTCODE", SHORTCODE.into()),
        ("REMIT_DARAJA_INITIATOR", INITIATOR.into()),
        ("REMIT_DARAJA_INITIATOR_PASSWORD", INITIATOR_PASSWORD.into()),
        (
            "REMIT_DARAJA_CERT",
            fake_daraja::cert_path().to_string_lossy().into_owned(),
        ),
        ("REMIT_DARAJA_TIMEOUT_S", "2".into()),
        ("REMIT_MPESA_CALLBACK_TOKEN", CALLBACK.into()),
    ]
}

fn with(
    env: &[(&'static str, String)],
    name: &'static str,
    value: &str,
) -> Vec<(&'static str, String)> {
    let mut env: Vec<_> = env.iter().filter(|(k, _)| *k != name).cloned().collect();
    env.push((name, value.to_string()));
    env
}

fn without(env: &[(&'static str, String)], name: &str) -> Vec<(&'static str, String)> {
    env.iter().filter(|(k, _)| *k != name).cloned().collect()
}

/// `remit daraja ping` with `env`.
fn ping(dir: &std::path::Path, env: &[(&'static str, String)]) -> crate::support::process::Ran {
    let mut cmd = crate::support::process::remit(dir, Some(TEST_KEY));
    cmd.args(["daraja", "ping"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    crate::support::process::run(cmd)
}

/// On a server run from the binary: an admin's token, and a payment request of KES 1,500 to a
/// phone, approved by its sender (users, a funded escrow and the request made through the API).
fn approved_through_the_binary(server: &crate::support::process::Server) -> (String, String) {
    let admin = server.admin_token();
    let user = |role: &str, name: &str| -> String {
        let r = server.post("/users", &admin, &json!({"role": role, "name": name}));
        assert_eq!(r.status, 201, "{}", r.text);
        r.body["token"].as_str().unwrap().to_string()
    };
    let (sender, agent) = (user("sender", "Amina"), user("agent", "Kiosk"));
    let escrow = crate::support::process::funded_escrow(
        server,
        &sender,
        &agent,
        100,
        "0712345678",
        "Wanjiru",
        &["a"],
    );
    let r = server.post(
        "/payment-requests",
        &agent,
        &json!({"escrowId": escrow, "category": "a", "amountKes": 1_500, "merchantName": "Mama Mboga",
                "merchantAccount": {"type": "phone", "number": "0799 123 456"}}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let request = r.body["paymentRequestId"].as_str().unwrap().to_string();
    let r = server.post(
        &format!("/payment-requests/{request}/approve"),
        &sender,
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    (admin, request)
}

/// The request once paid or failed, read through the binary's API (bounded: 30 s).
fn settled_through_the_binary(
    server: &crate::support::process::Server,
    admin: &str,
    request: &str,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = server.get(&format!("/payment-requests/{request}"), admin);
        if r.body["status"] == "paid" || r.body["status"] == "failed" {
            return r.body;
        }
        assert!(Instant::now() < deadline, "never settled: {}", r.text);
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn the_binary_pays_through_daraja_configured_from_the_environment() {
    use crate::support::process::Server;
    let fake = FakeDaraja::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let env = daraja_env(&fake.base);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut server = Server::start(&db, TEST_KEY, &dir.path().join("serve.log"), &env);
    let payouts_line = server
        .stdout
        .iter()
        .find(|l| l.starts_with("payouts: "))
        .cloned()
        .unwrap_or_default();
    assert!(
        payouts_line.contains("M-Pesa Daraja at")
            && payouts_line.contains(&format!("{}/webhooks/payouts/", server.base)),
        "{payouts_line}"
    );
    let (admin, request) = approved_through_the_binary(&server);
    let view = settled_through_the_binary(&server, &admin, &request);
    // Paid: the credential remit computed decrypted to the initiator's password (else M-Pesa
    // would have failed it with 2001).
    assert_eq!(view["status"], "paid", "{view}");
    let txns = fake.txns();
    assert_eq!(txns.len(), 1);
    assert_eq!(txns[0].party_b, "254799123456");
    assert_eq!(
        view["payout"]["mpesaReceipt"],
        txns[0].paid.clone().unwrap().as_str()
    );
    server.terminate();
    let log = server.log();
    for secret in [
        INITIATOR_PASSWORD,
        CONSUMER_SECRET,
        CALLBACK,
        "254799123456",
        "799123456",
    ] {
        assert!(!log.contains(secret), "the log shows {secret:?}:\n{log}");
    }
    assert!(log.contains("daraja"), "the calls are logged:\n{log}");
    let ran = check(&db, TEST_KEY);
    assert_eq!(ran.code, Some(0), "remit check: {ran}");
}

/// An answer of Daraja's that redirects is not followed: a `302` to another host gave remit a
/// token from that host, taken for Daraja's.
#[test]
fn a_redirect_from_daraja_is_an_answer_not_followed() {
    use std::io::{Read, Write};
    let elsewhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let redirector = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let to = format!(
        "http://{}/oauth/v1/generate",
        elsewhere.local_addr().unwrap()
    );
    let base = format!("http://{}", redirector.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in redirector.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let _ = write!(
                stream,
                "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let ran = ping(dir.path(), &daraja_env(&base));
    assert_eq!(ran.code, Some(1), "{ran}");
    assert!(ran.stdout.contains("token: FAILED"), "{ran}");
    elsewhere.set_nonblocking(true).unwrap();
    assert!(
        elsewhere.accept().is_err(),
        "remit followed Daraja's redirect: {ran}"
    );
}

#[test]
fn daraja_ping_checks_a_configuration_with_one_sentence_per_fault() {
    let fake = FakeDaraja::start();
    let dir = tempfile::tempdir().unwrap();
    let env = daraja_env(&fake.base);
    let ok = ping(dir.path(), &env);
    assert_eq!(ok.code, Some(0), "{ok}");
    assert!(
        ok.stdout.contains("token: ok") && ok.stdout.contains("balance query: ok"),
        "{ok}"
    );
    assert_eq!(fake.calls("/mpesa/accountbalance/v1/query").len(), 1);

    let bad_secret = ping(
        dir.path(),
        &with(&env, "REMIT_DARAJA_CONSUMER_SECRET", "wrong"),
    );
    assert_eq!(bad_secret.code, Some(1), "{bad_secret}");
    assert!(
        bad_secret
            .stdout
            .contains("check REMIT_DARAJA_CONSUMER_KEY and REMIT_DARAJA_CONSUMER_SECRET"),
        "{bad_secret}"
    );

    let unreadable = ping(
        dir.path(),
        &with(&env, "REMIT_DARAJA_CERT", "/nonexistent/mpesa.cer"),
    );
    assert_ne!(unreadable.code, Some(0), "{unreadable}");
    assert!(
        unreadable.stderr.contains("REMIT_DARAJA_CERT")
            && unreadable.stderr.contains("/nonexistent/mpesa.cer")
            && !unreadable.stderr.contains("panicked"),
        "{unreadable}"
    );

    // An address Daraja is documented to refuse is warned about, whatever its spelling.
    let keyword = ping(
        dir.path(),
        &with(&env, "REMIT_PUBLIC_URL", "https://M-Pesa.kiosk.example.org"),
    );
    assert!(
        keyword
            .stderr
            .contains("REMIT_PUBLIC_URL contains \"mpesa\""),
        "{keyword}"
    );
    assert!(!ok.stderr.contains("REMIT_PUBLIC_URL contains"), "{ok}");

    let not_a_cert = dir.path().join("not-a-cert.pem");
    std::fs::write(
        &not_a_cert,
        "-----BEGIN CERTIFICATE-----\nnonsense\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let garbled = ping(
        dir.path(),
        &with(&env, "REMIT_DARAJA_CERT", not_a_cert.to_str().unwrap()),
    );
    assert_ne!(garbled.code, Some(0), "{garbled}");
    assert!(garbled.stderr.contains("REMIT_DARAJA_CERT"), "{garbled}");

    // A credential M-Pesa cannot decrypt: the balance query is refused.
    let refused = ping(
        dir.path(),
        &with(
            &without(&env, "REMIT_DARAJA_INITIATOR_PASSWORD"),
            "REMIT_DARAJA_SECURITY_CREDENTIAL",
            "bm90IGEgY3JlZGVudGlhbA==",
        ),
    );
    assert_eq!(refused.code, Some(1), "{refused}");
    assert!(
        refused.stdout.contains("token: ok") && refused.stdout.contains("balance query: REFUSED"),
        "{refused}"
    );

    let unreachable = ping(
        dir.path(),
        &with(&env, "REMIT_DARAJA_URL", "http://127.0.0.1:9"),
    );
    assert_eq!(unreachable.code, Some(1), "{unreachable}");
    assert!(
        unreachable
            .stdout
            .contains("token: FAILED: no token from http://127.0.0.1:9"),
        "{unreachable}"
    );

    for line in [&ok.stdout, &bad_secret.stdout, &refused.stdout] {
        assert!(
            !line.contains(CONSUMER_SECRET) && !line.contains(INITIATOR_PASSWORD),
            "{line}"
        );
    }
}

/// Every setting given is checked at every start, whoever pays: a Daraja or Africa's Talking
/// setting that cannot work stopped nothing while the simulator paid, and surfaced on the day
/// real money was switched on; a bound the README gives (at least 60 s between balance checks)
/// was raised without a word; a blank choice (`REMIT_GATEWAY=`) chose the default.
#[test]
fn every_setting_given_is_checked_whoever_pays_and_a_blank_choice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // A file that is no certificate, where the command runs.
    std::fs::write(dir.path().join("junk.pem"), "not a certificate\n").unwrap();
    let cases = [
        ("REMIT_DARAJA_TIMEOUT_S", "0"),
        ("REMIT_DARAJA_TIMEOUT_S", "121"),
        ("REMIT_DARAJA_B2C_COMMAND", "Foo"),
        ("REMIT_DARAJA_URL", "http://example.com"),
        ("REMIT_PUBLIC_URL", "ftp://x"),
        ("REMIT_DARAJA_SHORTCODE", "12ab"),
        ("REMIT_DARAJA_SECURITY_CREDENTIAL", "!!notbase64!!"),
        ("REMIT_DARAJA_CERT", "/nonexistent/cert.pem"),
        ("REMIT_DARAJA_CERT", "junk.pem"),
        ("REMIT_AT_URL", "http://example.com"),
        ("REMIT_AT_URL", "http://127.0.0.1:9/#f"),
        ("REMIT_DARAJA_URL", "http://127.0.0.1:9/#f"),
        ("REMIT_FLOAT_CHECK_S", "59"),
        ("REMIT_PAYOUT_STATUS_AFTER_S", "0"),
        ("REMIT_GATEWAY", ""),
        ("REMIT_SMS_GATEWAY", " "),
        ("REMIT_CALLBACK_ALLOW_IPS", ""),
        ("REMIT_NOTIFICATIONS_KEEP_DAYS", "0"),
        ("REMIT_NOTIFICATIONS_KEEP_DAYS", "-1"),
        ("REMIT_NOTIFICATIONS_KEEP_DAYS", "3651"),
    ];
    for (name, value) in cases {
        let mut cmd = crate::support::process::remit(dir.path(), Some(TEST_KEY));
        cmd.args(["serve", "--db"])
            .arg(dir.path().join("remit.db"))
            .args(["--addr", "127.0.0.1:0"])
            .env(name, value);
        let ran = crate::support::process::run(cmd);
        assert_eq!(ran.code, Some(2), "{name}={value:?}: {ran}");
        assert!(
            ran.stderr.contains(&format!("remit: {name}")),
            "{name}={value:?} is named: {ran}"
        );
    }
    assert!(
        !dir.path().join("remit.db").exists(),
        "a refused start made the database"
    );
}

#[test]
fn a_daraja_configuration_that_cannot_work_stops_the_start_with_a_sentence_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let env = daraja_env("http://127.0.0.1:9");
    let cases: Vec<(Vec<(&'static str, String)>, &str)> = vec![
        (
            without(&env, "REMIT_DARAJA_SHORTCODE"),
            "REMIT_DARAJA_SHORTCODE",
        ),
        (
            with(&env, "REMIT_DARAJA_SHORTCODE", "12ab"),
            "REMIT_DARAJA_SHORTCODE",
        ),
        (
            without(&env, "REMIT_DARAJA_CONSUMER_KEY"),
            "REMIT_DARAJA_CONSUMER_KEY",
        ),
        (
            without(&env, "REMIT_DARAJA_INITIATOR"),
            "REMIT_DARAJA_INITIATOR",
        ),
        (
            without(&env, "REMIT_DARAJA_INITIATOR_PASSWORD"),
            "REMIT_DARAJA_INITIATOR_PASSWORD",
        ),
        (
            without(&env, "REMIT_MPESA_CALLBACK_TOKEN"),
            "REMIT_MPESA_CALLBACK_TOKEN",
        ),
        // Typed, not random.
        (
            with(&env, "REMIT_MPESA_CALLBACK_TOKEN", &"0".repeat(32)),
            "REMIT_MPESA_CALLBACK_TOKEN",
        ),
        // Credentials in an address would go out with every call.
        (
            with(
                &env,
                "REMIT_PUBLIC_URL",
                "https://user:secret@kiosk.example.org",
            ),
            "REMIT_PUBLIC_URL",
        ),
        // Plain HTTP only to a loopback host.
        (
            with(&env, "REMIT_DARAJA_URL", "http://sandbox.example.org"),
            "REMIT_DARAJA_URL",
        ),
        // A Daraja elsewhere needs a public address to call back.
        (
            with(&env, "REMIT_DARAJA_URL", "https://sandbox.example.org"),
            "REMIT_PUBLIC_URL",
        ),
        (
            with(&env, "REMIT_PUBLIC_URL", "http://kiosk.example.org"),
            "REMIT_PUBLIC_URL",
        ),
        (
            with(&env, "REMIT_DARAJA_B2C_COMMAND", "Charity"),
            "REMIT_DARAJA_B2C_COMMAND",
        ),
        (
            with(&env, "REMIT_DARAJA_TIMEOUT_S", "0"),
            "REMIT_DARAJA_TIMEOUT_S",
        ),
        (
            with(
                &env,
                "REMIT_CALLBACK_ALLOW_IPS",
                "196.201.214.0/24, nonsense",
            ),
            "REMIT_CALLBACK_ALLOW_IPS",
        ),
    ];
    for (env, name) in cases {
        let mut cmd = crate::support::process::remit(dir.path(), Some(TEST_KEY));
        cmd.args(["serve", "--db"])
            .arg(dir.path().join("remit.db"))
            .args(["--addr", "127.0.0.1:0"]);
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let ran = crate::support::process::run(cmd);
        assert_ne!(ran.code, Some(0), "{name}: {ran}");
        assert!(
            ran.stderr.contains(name) && !ran.stderr.contains("panicked"),
            "{name} is named: {ran}"
        );
        assert!(!ran.stderr.contains(INITIATOR_PASSWORD), "{ran}");
    }
}

#[test]
fn only_allowed_networks_may_post_results_and_a_proxy_is_believed_only_when_trusted() {
    let allow = |c: &mut Config| {
        c.gateway = GatewayKind::None;
        c.callback_allow = vec!["196.201.214.0/24".parse().unwrap()];
    };
    let body = json!({"Result": {"ResultType": 0, "ResultCode": 0, "ResultDesc": "ok",
        "OriginatorConversationID": "nobody", "ConversationID": "AG_X", "TransactionID": "TLC1234567"}})
    .to_string();
    // Each item its own `X-Forwarded-For` line.
    let post_lines = |app: &TestApp, forwarded: &[&str]| {
        let headers: Vec<(&str, &str)> =
            forwarded.iter().map(|f| ("X-Forwarded-For", *f)).collect();
        app.raw(
            "POST",
            &format!("/webhooks/payouts/{CALLBACK_TOKEN}"),
            None,
            Some(("application/json", body.as_bytes())),
            &headers,
        )
    };
    let post = |app: &TestApp, forwarded: Option<&str>| post_lines(app, forwarded.as_slice());
    // Loopback is not on the list; a forwarded address is not believed without a trusted proxy.
    let app = spawn_app_with(allow);
    assert_eq!(post(&app, None).status, 401);
    assert_eq!(post(&app, Some("196.201.214.200")).status, 401);
    // Behind a trusted proxy (here: loopback), the address it forwards is the caller's.
    let app = spawn_app_with(|c| {
        allow(c);
        c.trusted_proxy = Some("127.0.0.1".parse().unwrap());
    });
    // Let through: it reaches the payout lookup (and names no payout of ours).
    let accepted = post(&app, Some("10.9.9.9, 196.201.214.200"));
    assert_eq!(accepted.status, 404, "{}", accepted.text);
    assert_eq!(
        post(&app, Some("196.201.214.200, 10.9.9.9")).status,
        401,
        "the proxy's own entry is the last"
    );
    assert_eq!(post(&app, None).status, 401);
    // A proxy that adds a line of its own after the client's (HAProxy does): the lines are one
    // list, and its entry is still the last, not the client's first line.
    assert_eq!(
        post_lines(&app, &["196.201.214.200", "10.9.9.9"]).status,
        401,
        "a client's own line is not believed"
    );
    let accepted = post_lines(&app, &["10.9.9.9", "196.201.214.200"]);
    assert_eq!(accepted.status, 404, "{}", accepted.text);
}

/// Guards against: an `expires_in` too large to add to a clock reading panicked while the
/// token was renewed, which left the token's lock poisoned and every later call failing.
#[test]
fn a_token_that_says_it_never_expires_still_pays_every_payout() {
    let (fake, app) = start();
    fake.set_token_lifetime(std::time::Duration::from_secs(i64::MAX as u64));
    let escrow = app.active_escrow(100, &["a", "b"]);
    let first = approved_phone_payment(&app, &escrow, 1_500);
    assert_paid_once(&app, &fake, &escrow, &first);
    fake.expire_token();
    let second = approved_phone_payment(&app, &escrow, 1_200);
    assert_paid_once(&app, &fake, &escrow, &second);
    assert_checks(app);
}

/// A token that lives less than two minutes is used for half its life: renewed a minute
/// before it expires, as a long one is, it was asked for again at every call (each new token
/// voids the one before).
#[test]
fn a_short_lived_token_is_used_for_half_its_life() {
    let (fake, app) = start();
    fake.set_token_lifetime(Duration::from_secs(30));
    let escrow = app.active_escrow(100, &["a", "b"]);
    for kes in [1_500, 1_200, 1_100] {
        let request = approved_phone_payment(&app, &escrow, kes);
        assert_paid_once(&app, &fake, &escrow, &request);
    }
    assert_eq!(fake.token_requests(), 1, "one token for three payouts");
    assert_checks(app);
}

/// Transaction Status queries that Daraja turns away (an outage, spike arrest) are asked
/// again with the same backoff as answered ones: before, every `REMIT_PAYOUT_STATUS_AFTER_S`
/// for as long as the refusals lasted.
#[test]
fn refused_status_queries_are_asked_again_less_and_less_often() {
    let (fake, app) = start_with(|c| c.payout_status_after_s = 2);
    unanswered(&fake, 2_400);
    fake.refuse_status_queries(true);
    let escrow = app.active_escrow(100, &["a"]);
    let request = approved_phone_payment(&app, &escrow, 2_400);
    let originator = app.payout_ids(&request).1;
    let asked = || {
        fake.calls("/mpesa/transactionstatus/v1/query")
            .into_iter()
            .filter(|c| c.body["OriginalConversationID"] == originator.as_str())
            .collect::<Vec<_>>()
    };
    fake.wait_for("three refused status queries", |v| {
        v.calls
            .iter()
            .filter(|c| c.body["OriginalConversationID"] == originator.as_str())
            .count()
            >= 3
    });
    let at: Vec<Instant> = asked().iter().map(|c| c.at).collect();
    assert!(asked().iter().all(|c| c.status == 500));
    // Asked when 2 s passed without a result, then 2 s and 4 s later (2 s and 2 s before; due
    // times are whole seconds, which may shorten a wait by up to one).
    let (first, second) = (at[1] - at[0], at[2] - at[1]);
    assert!(
        first >= Duration::from_millis(900) && second >= Duration::from_millis(3_000),
        "gaps {first:?} and {second:?}"
    );
    let view = app
        .get(&format!("/payment-requests/{request}"), &app.admin)
        .body;
    assert_eq!(view["status"], "approved", "outcome unknown: {view}");
    fake.refuse_status_queries(false);
    assert_paid_once(&app, &fake, &escrow, &request);
    assert_checks(app);
}

/// A Transaction Status answer is found by its query's `ConversationID`; one that names
/// another payout's `OriginatorConversationID` among its parameters is about neither for sure.
/// It is `404`, as a result whose two ids name two payouts, and settles neither: before, it
/// paid the query's payout on the strength of an answer about the other.
#[test]
fn a_status_answer_naming_another_payout_than_its_query_settles_neither() {
    let (fake, app) = start();
    fake.script(
        2_300,
        Script {
            result: Delivery::Never,
            status: Delivery::Never,
            ..Script::default()
        },
    );
    let escrow = app.active_escrow(100, &["a"]);
    let a = approved_phone_payment(&app, &escrow, 2_300);
    let b = approved_phone_payment(&app, &escrow, 2_300);
    let (payout_a, _, _) = app.payout_ids(&a);
    let (_, originator_b, _) = app.payout_ids(&b);
    let query_a = crate::support::notify::eventually(
        Duration::from_secs(20),
        "a status query about the first payout",
        || {
            let id = payout_a.clone();
            app.store
                .read(move |c, _| {
                    Ok(c.query_row(
                        "SELECT conversation_id FROM daraja_queries WHERE payout_id = ?1",
                        [id],
                        |r| r.get::<_, String>(0),
                    )
                    .ok())
                })
                .unwrap()
        },
    );
    let kes = remit::money::KesCents::new(230_000).unwrap();
    let post = |body: Value| app.post_mpesa_result(&body);
    let crossed = remit::wire::daraja::results::status_result(
        &query_a,
        &originator_b,
        "TLQ0000011",
        "Completed",
        kes,
    );
    let r = post(crossed);
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (404, Some("not_found")),
        "{}",
        r.text
    );
    // So is a payment's result whose own ids name the other payout (our OriginatorConversationID)
    // and the query (its ConversationID): before, it was read as the query's answer (and
    // for an Account Balance query swallowed as an unreadable balance), settling nothing.
    let r = post(remit::wire::daraja::results::b2c_success(
        &originator_b,
        &query_a,
        "TLQ0000013",
        kes,
        None,
    ));
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (404, Some("not_found")),
        "{}",
        r.text
    );
    for request in [&a, &b] {
        let view = app
            .get(&format!("/payment-requests/{request}"), &app.admin)
            .body;
        assert_eq!(view["status"], "approved", "{view}");
        assert_eq!(view["payout"]["status"], "sent", "{view}");
    }
    // An answer naming an id that is none of ours (Daraja's own, as for a B2B payment) is no
    // contradiction: found by its query, it is applied to the query's payout.
    let own = remit::wire::daraja::results::status_result(
        &query_a,
        "5e3b-4f21-9a0c-2d7e1c6b8a90",
        "TLQ0000012",
        "Completed",
        kes,
    );
    assert_eq!(post(own).status, 200);
    assert_eq!(settled(&app, &a, &["paid"])["status"], "paid");
    let view = app.get(&format!("/payment-requests/{b}"), &app.admin).body;
    assert_eq!(view["status"], "approved", "{view}");
    drop(fake);
    assert_checks(app);
}

/// Each Transaction Status query is answered on its own: an answer "Pending" to one query and
/// "Completed" to the next, both naming the payment by the same ids (as a status result whose
/// `OriginatorConversationID` is the payment's own, not the query's), are two answers. Before,
/// the second was taken for a repeat of the first and dropped: the payout stayed stuck, its
/// money reserved, and the operator read "Pending" from M-Pesa about money it had paid.
#[test]
fn a_completed_status_answer_after_a_pending_one_settles_the_payout() {
    let (fake, app) = start();
    fake.script(
        2_500,
        Script {
            result: Delivery::Never,
            status: Delivery::Never,
            ..Script::default()
        },
    );
    let escrow = app.active_escrow(100, &["a"]);
    let request = approved_phone_payment(&app, &escrow, 2_500);
    let (payout, originator, _) = app.payout_ids(&request);
    let query_after = |answered: Option<String>| {
        let payout = payout.clone();
        crate::support::notify::eventually(
            Duration::from_secs(20),
            "a status query about the payout",
            || {
                let (id, answered) = (payout.clone(), answered.clone());
                app.store
                    .read(move |c, _| {
                        Ok(c.query_row(
                            "SELECT conversation_id FROM daraja_queries WHERE payout_id = ?1
                                 AND conversation_id IS NOT ?2 ORDER BY rowid DESC LIMIT 1",
                            rusqlite::params![id, answered],
                            |r| r.get::<_, String>(0),
                        )
                        .ok())
                    })
                    .unwrap()
            },
        )
    };
    let kes = remit::money::KesCents::new(250_000).unwrap();
    let answer = |query: &str, status: &str| {
        app.post_mpesa_result(&remit::wire::daraja::results::status_result(
            query,
            &originator,
            "TLQ0000021",
            status,
            kes,
        ))
    };
    let first = query_after(None);
    let pending = answer(&first, "Pending");
    assert_eq!(pending.status, 200, "{}", pending.text);
    let view = app
        .get(&format!("/payment-requests/{request}"), &app.admin)
        .body;
    assert_eq!(view["status"], "approved", "not finished: {view}");
    let second = query_after(Some(first));
    let completed = answer(&second, "Completed");
    assert_eq!(completed.status, 200, "{}", completed.text);
    let view = settled(&app, &request, &["paid"]);
    assert_eq!(view["payout"]["mpesaReceipt"], "TLQ0000021", "{view}");
    // The same answer to the same query again is a repeat.
    let again = answer(&second, "Completed");
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(
        balances(&app, &escrow),
        (10_000 - usd_of(&view), 0, usd_of(&view))
    );
    drop(fake);
    assert_checks(app);
}

/// Daraja documents a refusal of a repeated `OriginatorConversationID` for B2C only: a B2B
/// payment whose answer was lost is never sent again (a second request could pay the bill
/// twice); Transaction Status tells what became of it, and it is paid once.
#[test]
fn a_b2b_payment_whose_answer_was_lost_is_asked_about_and_never_sent_again() {
    let (fake, app) = start();
    fake.script(
        2_300,
        Script {
            replies: vec![Reply::Lose],
            result: Delivery::Never,
            ..Script::default()
        },
    );
    let escrow = app.active_escrow(100, &["a"]);
    let request = approved_paybill(&app, &escrow, 2_300, "11112222");
    let view = assert_paid_once(&app, &fake, &escrow, &request);
    assert_eq!(view["payout"]["flagged"], false);
    assert_eq!(
        fake.calls("/mpesa/b2b/v1/paymentrequest").len(),
        1,
        "a B2B payment whose answer was lost was sent again"
    );
    assert!(!fake.calls("/mpesa/transactionstatus/v1/query").is_empty());
    let payout = app.payout_ids(&request).0;
    let audit = audit_actions(&app, &escrow, &payout);
    assert_eq!(count(&audit, "payout.outcome_unknown"), 1, "{audit:?}");
    assert_eq!(fake.balances_kes().1, 1_000_000 - 2_300, "paid once");
    assert_checks(app);
}

/// While no access token can be had, no payment call is made, so nothing was sent: the payout
/// stays queued, counts no attempt and never becomes "outcome unknown"; once OAuth is back it
/// is paid once.
#[test]
fn an_oauth_outage_keeps_payouts_queued_and_they_are_paid_once_it_ends() {
    let (fake, app) = start();
    fake.oauth_down(true);
    let escrow = app.active_escrow(100, &["a"]);
    let request = approved_phone_payment(&app, &escrow, 2_400);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while fake.oauth_refused() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "remit stopped asking for a token"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Between two tries it counts no attempt (during one, claimed, it counts the one in hand
    // until the refusal is recorded: read again until the worker is between tries; three
    // refusals counted would never come back to 0).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let waiting = loop {
        let waiting = app.get(&format!("/payment-requests/{request}"), &app.admin);
        if waiting.body["payout"]["attempts"] == 0 {
            break waiting;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "attempts counted: {}",
            waiting.text
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        waiting.body["payout"]["status"], "queued",
        "{}",
        waiting.text
    );
    // Its sender reads why in words, not remit's own error (the OAuth call's, for the log).
    let seen = app.get(&format!("/payment-requests/{request}"), &app.sender);
    assert_eq!(
        seen.body["payout"]["resultDesc"],
        "not sent yet: remit could not reach M-Pesa, or could not sign in to it; it is sent again automatically, and the operator's log says why",
        "{}",
        seen.text
    );
    assert!(fake.calls("/mpesa/b2c/v3/paymentrequest").is_empty());
    // In the worker's hands, not stuck: an admin cannot resolve it (the worker may send it
    // the next moment, and M-Pesa pay it).
    let payout = app.payout_ids(&request).0;
    let r = app.post(
        &format!("/payouts/{payout}/resolve"),
        &app.admin,
        &json!({"outcome": "failed"}),
    );
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (409, Some("invalid_state")),
        "{}",
        r.text
    );
    // How long it has waited is in /metrics, for an alert, and so are the calls that reached
    // nothing and how long they have (the outage itself, whatever waits).
    let metric = |name: &str| -> i64 {
        let metrics = app.get("/metrics", &app.admin).text;
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name}: {metrics}"))
            .parse()
            .unwrap()
    };
    let oldest = || metric("remit_payouts_queued_oldest_seconds");
    assert!(oldest() >= 2, "{}", oldest());
    assert!(metric("remit_payout_calls_not_sent_total") >= 1);
    assert!(metric("remit_payout_gateway_unreachable_seconds") >= 1);
    fake.oauth_down(false);
    assert_paid_once(&app, &fake, &escrow, &request);
    assert_eq!(oldest(), 0);
    assert_eq!(metric("remit_payout_gateway_unreachable_seconds"), 0);
    let payout = app.payout_ids(&request).0;
    let audit = audit_actions(&app, &escrow, &payout);
    assert_eq!(count(&audit, "payout.outcome_unknown"), 0, "{audit:?}");
    assert_eq!(fake.calls("/mpesa/b2c/v3/paymentrequest").len(), 1);
    assert_checks(app);
}

/// A call whose fresh token is refused too was turned away before any processing: the payout
/// stays queued, counts no attempt, is never "outcome unknown" and is paid once the gateway
/// takes tokens again. Before, the second refusal was read as an answer whose outcome is not
/// known: a B2C payout counted attempts until it became "outcome unknown", a B2B one at once.
/// A result posted for such a payout (M-Pesa never had it, as far as remit can tell) is not
/// applied: its outcome becomes unknown and Transaction Status is asked. Before, a forged
/// success paid the request with money that never left.
#[test]
fn calls_whose_every_token_is_refused_keep_payouts_queued_and_they_are_paid_once_it_ends() {
    let (fake, app) = start();
    fake.refuse_every_token(true);
    let escrow = app.active_escrow(100, &["a"]);
    let b2c = approved_phone_payment(&app, &escrow, 2_500);
    let b2b = approved_paybill(&app, &escrow, 2_600, "ACC-77");
    // Two rounds of both payouts' calls, each retried with a new token (two refusals a call,
    // counted by path: the worker's balance query may add its own), and both between calls:
    // queued, no attempt counted. The B2B payout's third call is 4 s away: the forged result
    // below is posted while no call of it is in flight (a result that comes while one is may
    // be that call's, and is applied).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let attempts = |request: &str| -> Value {
        let view = app.get(&format!("/payment-requests/{request}"), &app.admin);
        assert_eq!(view.body["payout"]["status"], "queued", "{}", view.text);
        view.body["payout"]["attempts"].clone()
    };
    let refused = |path: &str| fake.bearer_refused_on(path);
    while refused("/mpesa/b2c/v3/paymentrequest") < 4
        || refused("/mpesa/b2b/v1/paymentrequest") < 4
        || attempts(&b2c) != 0
        || attempts(&b2b) != 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "remit stopped calling, or counted attempts: {} refusals",
            fake.bearer_refused()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        refused("/mpesa/b2b/v1/paymentrequest") < 6,
        "a third call already"
    );
    assert!(fake.calls("/mpesa/transactionstatus/v1/query").is_empty());
    let originator = app.payout_ids(&b2b).1;
    let forged = b2b_success(
        (&originator, "AG_20261204_0000000000000000zzzz"),
        2_600,
        "TLB2600ZZZ",
        "888880 - KENYA POWER",
        "ACC-77",
    );
    let r = post_result(&app, &forged);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_sent_unpaid(&app, &b2b, "asked about");
    let payout = app.payout_ids(&b2b).0;
    let audit = audit_actions(&app, &escrow, &payout);
    assert_eq!(count(&audit, "payout.outcome_unknown"), 1, "{audit:?}");
    fake.refuse_every_token(false);
    assert_paid_once(&app, &fake, &escrow, &b2c);
    let payout = app.payout_ids(&b2c).0;
    let audit = audit_actions(&app, &escrow, &payout);
    assert_eq!(count(&audit, "payout.outcome_unknown"), 0, "{audit:?}");
    // The B2B payout is asked about, never sent again (M-Pesa does not refuse a repeated B2B
    // request), and never paid by the forged result.
    while fake.calls("/mpesa/transactionstatus/v1/query").is_empty() {
        assert!(
            std::time::Instant::now() < deadline + Duration::from_secs(30),
            "never asked"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(fake.calls("/mpesa/b2b/v1/paymentrequest").is_empty());
    let view = app
        .get(&format!("/payment-requests/{b2b}"), &app.admin)
        .body;
    assert_ne!(view["status"], "paid", "{view}");
    assert_ne!(view["payout"]["mpesaReceipt"], "TLB2600ZZZ", "{view}");
    assert_checks(app);
}

/// A PayBill payout of `kes` to bill account `account` whose call is turned away for its token
/// (as `refuse` makes the fake do) and held there, and a success for it (receipt `TLB<kes>ZZZ`)
/// posted while that call is on its way: the fake, the app, the escrow, the request and the
/// payout's `OriginatorConversationID`. Calls wait for their answer longer than the test takes;
/// the worker's first balance query is answered before calls are held (a held one would hold
/// the worker).
fn success_posted_while_refused(
    refuse: fn(&FakeDaraja),
    kes: i64,
    account: &str,
) -> (FakeDaraja, TestApp, String, String, String) {
    let (fake, app) = start_with(|c| {
        if let GatewayKind::Daraja(daraja) = &mut c.gateway {
            daraja.timeout = Duration::from_secs(30);
        }
    });
    fake.wait_for("the balance query", |v| {
        v.calls
            .iter()
            .any(|c| c.path == "/mpesa/accountbalance/v1/query")
    });
    refuse(&fake);
    fake.hold_refusals(true);
    let escrow = app.active_escrow(100, &["a"]);
    let b2b = approved_paybill(&app, &escrow, kes, account);
    fake.wait_for("the payment call, held", |v| {
        v.holding
            .iter()
            .any(|p| p == "/mpesa/b2b/v1/paymentrequest")
    });
    let originator = app.payout_ids(&b2b).1;
    let forged = b2b_success(
        (&originator, "AG_20261206_00000000000000000zzz"),
        kes,
        &format!("TLB{kes}ZZZ"),
        "888880 - KENYA POWER",
        account,
    );
    let r = post_result(&app, &forged);
    assert_eq!(r.status, 200, "{}", r.text);
    (fake, app, escrow, b2b, originator)
}

/// A success that comes while remit's only call of a payout is on its way may be that call's
/// (a result can come before its call's answer) and is applied; but once that call proves to
/// have reached nothing (its token refused), no payment of the payout can have been made: the
/// payout is flagged for the operator, and never sent again. Before, it stood paid, no word said.
#[test]
fn a_success_that_came_while_the_only_call_reached_nothing_is_flagged() {
    let (fake, app, escrow, b2b, originator) =
        success_posted_while_refused(|fake| fake.refuse_every_token(true), 2_600, "ACC-77");
    let view = app
        .get(&format!("/payment-requests/{b2b}"), &app.admin)
        .body;
    assert_eq!(view["status"], "paid", "{view}");
    assert_eq!(view["payout"]["flagged"], false, "{view}");
    fake.hold_refusals(false);
    let view = app.wait_for_payout_flag(&b2b);
    let reason = view["payout"]["flagReason"].as_str().unwrap_or_default();
    assert!(reason.contains("may be forged"), "{view}");
    let payout = app.payout_ids(&b2b).0;
    let audit = audit_actions(&app, &escrow, &payout);
    assert_eq!(count(&audit, "payout.flagged"), 1, "{audit:?}");
    // A later flag (another success for it) is added to this one, never put in its place.
    let again = b2b_success(
        (&originator, "AG_20261206_00000000000000000zzz"),
        2_600,
        "TLB2600YYZ",
        "888880 - KENYA POWER",
        "ACC-77",
    );
    assert_eq!(post_result(&app, &again).status, 200);
    let view = app
        .get(&format!("/payment-requests/{b2b}"), &app.admin)
        .body;
    let reason = view["payout"]["flagReason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("may be forged") && reason.contains("; then: "),
        "{view}"
    );
    // Paid as far as remit is concerned: the call is not made again once tokens are taken.
    fake.refuse_every_token(false);
    let refused = fake.bearer_refused_on("/mpesa/b2b/v1/paymentrequest");
    assert_eq!(
        refused, 1,
        "the call alone: a result settled it meanwhile, so no retry with a fresh token"
    );
    let b2c = approved_phone_payment(&app, &escrow, 2_500);
    assert_paid_once(&app, &fake, &escrow, &b2c);
    assert!(fake.calls("/mpesa/b2b/v1/paymentrequest").is_empty());
    assert_checks(app);
}

/// A token that has expired is renewed and the call made again at once; but not for a payout a
/// result settled while the refused call was on its way: that call reached nothing, so the
/// result may be forged, and sending the payout again would pay what remit already counts as
/// paid. Before, the call was made again with the new token (and paid), the forged receipt
/// kept, no word said.
#[test]
fn a_payout_settled_while_its_call_was_refused_for_its_token_is_not_sent_again() {
    let (fake, app, escrow, b2b, _) =
        success_posted_while_refused(|fake| fake.expire_token(), 2_700, "ACC-78");
    fake.hold_refusals(false);
    let view = app.wait_for_payout_flag(&b2b);
    let reason = view["payout"]["flagReason"].as_str().unwrap_or_default();
    assert!(reason.contains("may be forged"), "{view}");
    assert_eq!(fake.bearer_refused_on("/mpesa/b2b/v1/paymentrequest"), 1);
    assert!(
        fake.calls("/mpesa/b2b/v1/paymentrequest").is_empty(),
        "sent again with a new token: {:?}",
        fake.calls("/mpesa/b2b/v1/paymentrequest")
    );
    // The next payout's call renews the token and goes on.
    let b2c = approved_phone_payment(&app, &escrow, 2_500);
    assert_paid_once(&app, &fake, &escrow, &b2c);
    assert_checks(app);
}

/// A payment of `kes` whose result M-Pesa keeps to itself (the test posts one).
fn unanswered(fake: &FakeDaraja, kes: i64) {
    fake.script(
        kes,
        Script {
            result: Delivery::Never,
            ..Script::default()
        },
    );
}

/// A request of `kes` to PayBill 888880, account `reference`, approved.
fn approved_paybill(app: &TestApp, escrow: &str, kes: i64, reference: &str) -> String {
    let request = request_to(
        app,
        escrow,
        kes,
        json!({"type": "paybill", "number": "888880", "accountReference": reference}),
    );
    assert_eq!(app.approve(&request).status, 200);
    request
}

/// The payout of `request` once M-Pesa has taken it and remit recorded the acknowledgement:
/// (payout, originator, conversation).
fn acknowledged(app: &TestApp, fake: &FakeDaraja, request: &str) -> (String, String, String) {
    let (_, originator, _) = app.payout_ids(request);
    fake.wait_for("the payment", |v| {
        v.txns.iter().any(|t| t.originator == originator)
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let (payout, originator, Some(conversation)) = app.payout_ids(request) {
            return (payout, originator, conversation);
        }
        assert!(
            Instant::now() < deadline,
            "{request} was never acknowledged"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A B2B success of `kes` under these ids, naming this payee and bill account.
fn b2b_success(ids: (&str, &str), kes: i64, receipt: &str, payee: &str, bill: &str) -> Value {
    json!({"Result": {"ResultType": "0", "ResultCode": "0", "ResultDesc": "The service request is processed successfully",
        "OriginatorConversationID": ids.0, "ConversationID": ids.1, "TransactionID": receipt,
        "ResultParameters": {"ResultParameter": [{"Key": "Amount", "Value": format!("{kes}.00")},
            {"Key": "ReceiverPartyPublicName", "Value": payee}]},
        "ReferenceData": {"ReferenceItem": [{"Key": "BillReferenceNumber", "Value": bill}]}}})
}

/// The receipt M-Pesa paid the payout of `originator` with.
fn receipt_of(fake: &FakeDaraja, originator: &str) -> String {
    fake.txns()
        .into_iter()
        .find(|t| t.originator == originator)
        .and_then(|t| t.paid.ok())
        .expect("M-Pesa paid it")
}

/// A request whose payout is sent and not paid: no receipt, the money still reserved.
fn assert_sent_unpaid(app: &TestApp, request: &str, what: &str) {
    let view = app
        .get(&format!("/payment-requests/{request}"), &app.admin)
        .body;
    assert_eq!(view["status"], "approved", "{what}: {view}");
    assert_eq!(view["payout"]["status"], "sent", "{what}: {view}");
    assert_eq!(
        view["payout"]["mpesaReceipt"],
        Value::Null,
        "{what}: {view}"
    );
}

/// Posts a result to remit's result URL.
fn post_result(app: &TestApp, body: &Value) -> Resp {
    app.raw(
        "POST",
        &format!("/webhooks/payouts/{CALLBACK_TOKEN}"),
        None,
        Some(("application/json", body.to_string().as_bytes())),
        &[],
    )
}

/// A B2B result may carry an `OriginatorConversationID` of Daraja's own: it is found by the
/// `ConversationID` the acknowledgement gave, and applied. A result under our payout's id but
/// of a conversation that is none of ours tells of a second payment: it is not applied, and
/// the payout is flagged for the operator.
#[test]
fn a_result_is_found_by_its_conversation_and_a_second_conversation_is_flagged() {
    let (fake, app) = unasked();
    unanswered(&fake, 2_500);
    unanswered(&fake, 2_600);
    let escrow = app.active_escrow(100, &["a"]);
    let theirs = approved_paybill(&app, &escrow, 2_500, "ACC-2500");
    let second = approved_paybill(&app, &escrow, 2_600, "ACC-2600");
    // Daraja's own id for the payment, with the ConversationID remit was given: applied.
    let (_, _, conversation) = acknowledged(&app, &fake, &theirs);
    let body = b2b_success(
        ("29115-34620561-1", &conversation),
        2_500,
        "TLB2500AAA",
        "888880 - KENYA POWER",
        "ACC-2500",
    );
    let r = post_result(&app, &body);
    assert_eq!(r.status, 200, "{}", r.text);
    let paid = settled(&app, &theirs, &["paid"]);
    assert_eq!(paid["payout"]["mpesaReceipt"], "TLB2500AAA");
    // Our id, and a conversation that is none of ours: flagged, not applied.
    let (payout, originator, _) = acknowledged(&app, &fake, &second);
    let body = b2b_success(
        (&originator, "AG_20261201_00000000000000ffffff"),
        2_600,
        "TLB2600BBB",
        "888880 - KENYA POWER",
        "ACC-2600",
    );
    held_by_result(&app, &second, &escrow, &body, "another conversation", &[]);
    let audit = audit_actions(&app, &escrow, &payout);
    assert_eq!(count(&audit, "payout.succeeded"), 0, "{audit:?}");
}

/// A B2C success of `kes` to the phone of `approved_phone_payment`, under our payout's id
/// `originator` and no ConversationID, as whoever holds the result URL's token could post it.
fn success_naming_no_conversation(originator: &str, kes: i64, receipt: &str) -> Value {
    json!({"Result": {"ResultType": 0, "ResultCode": 0,
        "ResultDesc": "The service request is processed successfully.",
        "OriginatorConversationID": originator, "TransactionID": receipt,
        "ResultParameters": {"ResultParameter": [
            {"Key": "TransactionAmount", "Value": kes},
            {"Key": "TransactionReceipt", "Value": receipt},
            {"Key": "ReceiverPartyPublicName", "Value": "254722000111 - JANE WANJIKU"}]}}})
}

/// A success that names our payout's id but no ConversationID (every result of M-Pesa's names
/// one) is not M-Pesa's: anyone who holds the result URL's token could post it. It is not
/// applied; M-Pesa is asked at once, and its answer settles the payout: here a failure, whose
/// money comes back. (Until 2026-12-07 it paid the request, and M-Pesa's real failure was only
/// flagged.) Posted again once the payout has its result, it changes nothing.
#[test]
fn a_success_naming_no_conversation_is_not_applied_and_m_pesa_is_asked() {
    let (fake, app) = unasked();
    fake.script(
        2_300,
        Script {
            outcome: Outcome::Fail(2040),
            result: Delivery::Never,
            ..Script::default()
        },
    );
    let escrow = app.active_escrow(100, &["a"]);
    let request = approved_phone_payment(&app, &escrow, 2_300);
    let (payout, originator, _) = acknowledged(&app, &fake, &request);
    let forged = success_naming_no_conversation(&originator, 2_300, "TCFORGE123");
    let r = post_result(&app, &forged);
    assert_eq!(r.status, 200, "{}", r.text);
    let view = assert_failed_money_back(&app, &fake, &escrow, &request, 10_000);
    assert_eq!(view["payout"]["mpesaReceipt"], Value::Null, "{view}");
    let audit = audit_actions(&app, &escrow, &payout);
    assert_eq!(count(&audit, "payout.succeeded"), 0, "{audit:?}");
    assert!(
        !fake.calls("/mpesa/transactionstatus/v1/query").is_empty(),
        "M-Pesa was asked"
    );
    let again = post_result(&app, &forged);
    assert_eq!(again.status, 200, "{}", again.text);
    let view = settled(&app, &request, &["failed"]);
    assert_eq!(view["payout"]["flagged"], false, "{view}");
    assert_eq!(balances(&app, &escrow), (10_000, 0, 0));
    assert_checks(app);
}

/// The same forged success while the payout's call is still in flight (no ConversationID
/// recorded yet): not applied either (the review of the first mend found it paid there).
#[test]
fn a_success_naming_no_conversation_during_the_call_is_not_applied() {
    let (fake, app) = unasked();
    fake.script(
        2_350,
        Script {
            replies: vec![Reply::Slow(Duration::from_millis(3_000))],
            outcome: Outcome::Fail(2040),
            result: Delivery::Never,
            ..Script::default()
        },
    );
    let escrow = app.active_escrow(100, &["a"]);
    let request = approved_phone_payment(&app, &escrow, 2_350);
    let (payout, originator, _) = app.payout_ids(&request);
    fake.wait_for("the call", |v| {
        v.txns.iter().any(|t| t.originator == originator)
    });
    let forged = success_naming_no_conversation(&originator, 2_350, "TCFORGE124");
    let r = post_result(&app, &forged);
    assert_eq!(r.status, 200, "{}", r.text);
    let view = app
        .get(&format!("/payment-requests/{request}"), &app.admin)
        .body;
    assert_eq!(view["status"], "approved", "{view}");
    assert_eq!(view["payout"]["mpesaReceipt"], Value::Null, "{view}");
    // M-Pesa's own answer (failed) settles it, and the money comes back once.
    assert_failed_money_back(&app, &fake, &escrow, &request, 10_000);
    let audit = audit_actions(&app, &escrow, &payout);
    assert_eq!(count(&audit, "payout.succeeded"), 0, "{audit:?}");
    assert_checks(app);
}

/// A result under one payout's ids whose parameters name another of our payouts is about
/// neither for sure: `404` as ids that name two payouts are, and neither payout moves. (Until
/// 2026-12-07 the first was paid.)
#[test]
fn a_result_whose_parameters_name_another_payout_settles_neither() {
    let (fake, app) = unasked();
    unanswered(&fake, 2_410);
    unanswered(&fake, 2_420);
    let escrow = app.active_escrow(100, &["a"]);
    let first = approved_phone_payment(&app, &escrow, 2_410);
    let second = approved_phone_payment(&app, &escrow, 2_420);
    let (_, originator, conversation) = acknowledged(&app, &fake, &first);
    let (_, other, _) = acknowledged(&app, &fake, &second);
    let body = json!({"Result": {"ResultType": 0, "ResultCode": 0,
        "ResultDesc": "The service request is processed successfully.",
        "OriginatorConversationID": originator, "ConversationID": conversation,
        "TransactionID": "TCE2410AAA",
        "ResultParameters": {"ResultParameter": [
            {"Key": "TransactionAmount", "Value": 2_410},
            {"Key": "TransactionReceipt", "Value": "TCE2410AAA"},
            {"Key": "OriginatorConversationID", "Value": other},
            {"Key": "ReceiverPartyPublicName", "Value": "254722000111 - JANE WANJIKU"}]}}});
    let r = post_result(&app, &body);
    assert_eq!(r.status, 404, "{}", r.text);
    for request in [&first, &second] {
        assert_sent_unpaid(&app, request, "a result naming two payouts");
    }
    let reserved = app.escrow(&escrow)["reservedUsdCents"].as_i64().unwrap();
    let view = |r: &str| app.get(&format!("/payment-requests/{r}"), &app.admin).body;
    assert_eq!(reserved, usd_of(&view(&first)) + usd_of(&view(&second)));
}

/// Posts a result that must not be applied: answered 200, the request still approved, its payout
/// flagged saying `says` (and none of `unsaid`), its money still reserved.
fn held_by_result(
    app: &TestApp,
    request: &str,
    escrow: &str,
    body: &Value,
    says: &str,
    unsaid: &[&str],
) {
    let r = post_result(app, body);
    assert_eq!(r.status, 200, "{}", r.text);
    let view = app
        .get(&format!("/payment-requests/{request}"), &app.admin)
        .body;
    assert_eq!(view["status"], "approved", "{view}");
    assert_eq!(view["payout"]["flagged"], true, "{view}");
    let reason = view["payout"]["flagReason"].as_str().unwrap();
    assert!(reason.contains(says), "{reason}");
    assert!(unsaid.iter().all(|u| !reason.contains(u)), "{reason}");
    assert_eq!(app.escrow(escrow)["reservedUsdCents"], usd_of(&view));
}

/// A B2B success must name the payee remit sent the payout to: another bill account
/// (`BillReferenceNumber`, wherever the result names it) or another PayBill
/// (`ReceiverPartyPublicName`) is not applied; the
/// payout is flagged, its money stays reserved, and the right result still settles it (the flag
/// stays, for the operator to look at M-Pesa's other results).
#[test]
fn a_b2b_success_naming_another_payee_is_not_applied() {
    let (fake, app) = unasked();
    unanswered(&fake, 2_700);
    let escrow = app.active_escrow(100, &["a"]);
    let request = approved_paybill(&app, &escrow, 2_700, "11112222");
    let (_, originator, conversation) = acknowledged(&app, &fake, &request);
    let ids = (originator.as_str(), conversation.as_str());
    // The right bill account where M-Pesa puts it, another among the parameters: both read.
    let mut two_accounts =
        b2b_success(ids, 2_700, "TLB2700DDD", "888880 - KENYA POWER", "11112222");
    two_accounts["Result"]["ResultParameters"]["ResultParameter"]
        .as_array_mut()
        .unwrap()
        .push(json!({"Key": "BillReferenceNumber", "Value": "99990000"}));
    for (body, says) in [
        (
            b2b_success(ids, 2_700, "TLB2700AAA", "888880 - KENYA POWER", "99990000"),
            "another bill account",
        ),
        (two_accounts, "another bill account"),
        (
            b2b_success(
                ids,
                2_700,
                "TLB2700BBB",
                "999999 - SOMEONE ELSE",
                "11112222",
            ),
            "another PayBill or Till",
        ),
    ] {
        held_by_result(
            &app,
            &request,
            &escrow,
            &body,
            says,
            &["11112222", "99990000"],
        );
    }
    let body = b2b_success(ids, 2_700, "TLB2700CCC", "888880 - KENYA POWER", "11112222");
    let r = post_result(&app, &body);
    assert_eq!(r.status, 200, "{}", r.text);
    let paid = settled(&app, &request, &["paid"]);
    assert_eq!(paid["payout"]["mpesaReceipt"], "TLB2700CCC");
    // Settled, and still flagged: someone checks with M-Pesa what the other results were. The
    // flag says it was paid after all (it still said "money stays reserved").
    assert_eq!(paid["payout"]["flagged"], true, "{paid}");
    let reason = paid["payout"]["flagReason"].as_str().unwrap_or_default();
    assert!(
        reason.ends_with("; then: paid, M-Pesa receipt TLB2700CCC (the money is spent; the flag stays for the operator)"),
        "{reason}"
    );
    assert_checks(app);
}

/// An STK result (the answer to a Lipa na M-Pesa Online push, which remit never makes) whose
/// CheckoutRequestID is the ConversationID of a payout Daraja took as B2C, and a B2B success
/// naming no payee at all, are not taken at their word: not applied (with the path token anyone
/// could post either), and M-Pesa is asked, whose Transaction Status answer settles each payout
/// with the receipt M-Pesa paid it with. Before, the STK result paid the B2C payout with its own
/// receipt, skipping the check of the phone, and the B2B success without a payee was applied.
#[test]
fn an_stk_result_or_a_b2b_success_naming_no_payee_is_asked_about_not_applied() {
    let (fake, app) = unasked();
    unanswered(&fake, 2_800);
    unanswered(&fake, 2_900);
    let escrow = app.active_escrow(100, &["a"]);
    let phone_request = approved_phone_payment(&app, &escrow, 2_800);
    let bill_request = approved_paybill(&app, &escrow, 2_900, "ACC-2900");
    let (_, phone_originator, phone_conversation) = acknowledged(&app, &fake, &phone_request);
    let (_, bill_originator, bill_conversation) = acknowledged(&app, &fake, &bill_request);
    let stk = json!({"Body": {"stkCallback": {"MerchantRequestID": "m-1", "CheckoutRequestID": phone_conversation,
        "ResultCode": 0, "ResultDesc": "The service request is processed successfully.",
        "CallbackMetadata": {"Item": [{"Name": "Amount", "Value": 2_800}, {"Name": "MpesaReceiptNumber", "Value": "TLSTK28000"},
            {"Name": "PhoneNumber", "Value": 254_799_999_999_i64}]}}}});
    let no_payee = json!({"Result": {"ResultType": "0", "ResultCode": "0", "ResultDesc": "The service request is processed successfully",
        "OriginatorConversationID": bill_originator, "ConversationID": bill_conversation, "TransactionID": "TLB2900NOP",
        "ResultParameters": {"ResultParameter": [{"Key": "Amount", "Value": "2900.00"}]}}});
    for (request, originator, body, forged) in [
        (&phone_request, &phone_originator, &stk, "TLSTK28000"),
        (&bill_request, &bill_originator, &no_payee, "TLB2900NOP"),
    ] {
        let r = post_result(&app, body);
        assert_eq!(r.status, 200, "{}", r.text);
        let paid = settled(&app, request, &["paid"]);
        assert_ne!(paid["payout"]["mpesaReceipt"], forged, "{paid}");
        assert_eq!(
            paid["payout"]["mpesaReceipt"].as_str(),
            Some(receipt_of(&fake, originator).as_str()),
            "{paid}"
        );
        assert_eq!(
            paid["payout"]["flagged"], false,
            "the asked answer settled it: {paid}"
        );
    }
    // Once a payout has its result, either of them with another receipt is a different result
    // for a settled payout: flagged as such a conflict is, not asked about (nothing would be
    // asked of a settled payout, and the conflict would go unsaid). (The same body again is
    // a repeat, acknowledged and applied to nothing.)
    let mut stk_again = stk.clone();
    stk_again["Body"]["stkCallback"]["CallbackMetadata"]["Item"][1]["Value"] = json!("TLSTK28001");
    let mut no_payee_again = no_payee.clone();
    no_payee_again["Result"]["TransactionID"] = json!("TLB2900NO2");
    for (request, body) in [
        (&phone_request, &stk_again),
        (&bill_request, &no_payee_again),
    ] {
        assert_eq!(post_result(&app, body).status, 200);
        let view = app
            .get(&format!("/payment-requests/{request}"), &app.admin)
            .body;
        assert_eq!(view["status"], "paid", "{view}");
        assert_eq!(view["payout"]["flagged"], true, "{view}");
        assert!(
            view["payout"]["flagReason"]
                .as_str()
                .is_some_and(|r| r.contains("a different result arrived")),
            "{view}"
        );
    }
    assert_checks(app);
}

/// A Transaction Status `Completed` that matches no query remit made (its ConversationID made
/// up) names its payout only among its parameters: it is not applied on that word (before, it
/// paid a B2B payout with the forger's receipt, past the payee checks a result gets); the
/// payout is asked about at once, and the real answer settles it.
#[test]
fn a_status_answer_matching_no_query_makes_remit_ask_and_is_not_applied() {
    let (fake, app) = unasked();
    unanswered(&fake, 3_100);
    let escrow = app.active_escrow(100, &["a"]);
    let request = approved_paybill(&app, &escrow, 3_100, "ACC-3100");
    let (_, originator, _) = acknowledged(&app, &fake, &request);
    let forged = remit::wire::daraja::results::status_result(
        "AG_20261206_made_up_000000000",
        &originator,
        "TLFORGED31",
        "Completed",
        remit::money::KesCents::new(310_000).unwrap(),
    );
    let r = post_result(&app, &forged);
    assert_eq!(r.status, 200, "{}", r.text);
    let paid = settled(&app, &request, &["paid"]);
    assert_eq!(
        paid["payout"]["mpesaReceipt"].as_str(),
        Some(receipt_of(&fake, &originator).as_str()),
        "{paid}"
    );
    assert_ne!(paid["payout"]["mpesaReceipt"], "TLFORGED31", "{paid}");
    assert_checks(app);
}

/// A failure for a payout whose call's answer was lost is held until Transaction Status
/// confirms it, and the payout is not sent again meanwhile: the answer could be about either
/// call, and a failure confirmed returns money a second call may have paid (before, the
/// worker sent it again on its retry time while the question was out).
#[test]
fn a_payout_whose_failure_is_held_is_not_sent_again_meanwhile() {
    let (fake, app) = unasked();
    fake.script(
        2_400,
        Script {
            replies: vec![Reply::Lose],
            result: Delivery::Never,
            status: Delivery::Never,
            ..Script::default()
        },
    );
    let escrow = app.active_escrow(100, &["a"]);
    let request = approved_phone_payment(&app, &escrow, 2_400);
    let (payout, originator, _) = app.payout_ids(&request);
    fake.wait_for("the first call", |v| {
        v.txns.iter().any(|t| t.originator == originator)
    });
    let r = post_result(
        &app,
        &remit::wire::daraja::results::b2c_failure(&originator, "AG_20261206_never_recorded_01"),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let audit = audit_actions(&app, &escrow, &payout);
    assert_eq!(count(&audit, "payout.failure_held"), 1, "{audit:?}");
    // The lost answer's retry was due 4 s after the call.
    std::thread::sleep(Duration::from_secs(5));
    let calls = fake.calls("/mpesa/b2c/v3/paymentrequest");
    assert_eq!(
        calls.len(),
        1,
        "sent again while its failure was held: {calls:?}"
    );
    let view = app
        .get(&format!("/payment-requests/{request}"), &app.admin)
        .body;
    assert_eq!(view["status"], "approved", "{view}");
    assert!(
        !fake.calls("/mpesa/transactionstatus/v1/query").is_empty(),
        "the held failure is asked about"
    );
}

/// A B2C success must name the phone remit paid, when it names one: a result of the payout's
/// own ids naming another phone is not applied (flagged, money reserved, the reason without
/// either phone); one naming the payout's phone as M-Pesa masks it settles it.
#[test]
fn a_b2c_success_naming_another_phone_is_not_applied() {
    let (fake, app) = unasked();
    unanswered(&fake, 2_600);
    let escrow = app.active_escrow(100, &["a"]);
    let request = approved_phone_payment(&app, &escrow, 2_600);
    let (_, originator, conversation) = acknowledged(&app, &fake, &request);
    let b2c_success = |receipt: &str, payee: &str| {
        json!({"Result": {"ResultType": 0, "ResultCode": 0, "ResultDesc": "The service request is processed successfully.",
            "OriginatorConversationID": originator, "ConversationID": conversation, "TransactionID": receipt,
            "ResultParameters": {"ResultParameter": [{"Key": "TransactionAmount", "Value": 2_600},
                {"Key": "TransactionReceipt", "Value": receipt},
                {"Key": "ReceiverPartyPublicName", "Value": payee}]}}})
    };
    held_by_result(
        &app,
        &request,
        &escrow,
        &b2c_success("TLC2600AAA", "254799999999 - SOMEONE ELSE"),
        "another phone",
        &["799999999", "722000111"],
    );
    let r = post_result(&app, &b2c_success("TLC2600BBB", "2547******11 - JANE"));
    assert_eq!(r.status, 200, "{}", r.text);
    let paid = settled(&app, &request, &["paid"]);
    assert_eq!(paid["payout"]["mpesaReceipt"], "TLC2600BBB");
    assert_checks(app);
}

/// Guards against: a queue timeout, flagged at once, could be resolved as failed at once while
/// Transaction Status was still being asked, returning money M-Pesa may have paid. As failed it
/// waits for the whole timeout; as paid, with M-Pesa's receipt, it is taken at once.
#[test]
fn a_queue_timeout_is_resolved_as_failed_only_after_the_timeout() {
    let (fake, app) = start();
    fake.script(
        2_400,
        Script {
            result: Delivery::QueueTimeout,
            status: Delivery::Never,
            ..Script::default()
        },
    );
    let escrow = app.active_escrow(100, &["a"]);
    let request = approved_phone_payment(&app, &escrow, 2_400);
    let (payout, originator, _) = app.payout_ids(&request);
    app.wait_for_payout_flag(&request);
    // Another flag after it (a success naming another amount) does not take that wait away.
    let conversation = app.payout_ids(&request).2;
    let wrong = json!({"Result": {"ResultType": 0, "ResultCode": 0, "ResultDesc": "x",
        "OriginatorConversationID": originator, "ConversationID": conversation,
        "TransactionID": "TCE2399AAA",
        "ResultParameters": {"ResultParameter": [{"Key": "TransactionAmount", "Value": 2399},
            {"Key": "TransactionReceipt", "Value": "TCE2399AAA"}]}}});
    assert_eq!(post_result(&app, &wrong).status, 200);
    let reason = app
        .get(&format!("/payment-requests/{request}"), &app.admin)
        .body["payout"]["flagReason"]
        .to_string();
    assert!(
        reason.contains("queue timeout") && reason.contains("2,399.00"),
        "{reason}"
    );
    let r = app.post(
        &format!("/payouts/{payout}/resolve"),
        &app.admin,
        &json!({"outcome": "failed"}),
    );
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(r.text.contains("Transaction Status"), "{}", r.text);
    let receipt = fake.txns()[0].paid.clone().unwrap();
    let r = app.post(
        &format!("/payouts/{payout}/resolve"),
        &app.admin,
        &json!({"outcome": "paid", "receipt": receipt}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_checks(app);
}

/// A success that says two things is not money that moved. Each of these, posted with the
/// payout's own ids, leaves it unpaid with its money reserved (asked about, not applied): a
/// payment's result naming a `TransactionStatus` other than `Completed` (only a status answer
/// carries one), two different amounts, two different receipts, M-Pesa's stand-in for no
/// receipt, a `ResultCode` of zero written otherwise than `0` or `"0"`. The payout's real
/// result then pays it once.
#[test]
fn a_success_result_that_contradicts_itself_is_not_applied() {
    let (fake, app) = start();
    let escrow = app.active_escrow(200, &["a"]);
    type Forge = fn(&mut Value);
    let forgeries: [(&str, Forge); 6] = [
        ("TransactionStatus Failed", |b| {
            b["Result"]["ResultParameters"]["ResultParameter"]
                .as_array_mut()
                .unwrap()
                .push(json!({"Key": "TransactionStatus", "Value": "Failed"}));
        }),
        ("two amounts", |b| {
            b["Result"]["ResultParameters"]["ResultParameter"]
                .as_array_mut()
                .unwrap()
                .push(json!({"Key": "TransactionAmount", "Value": 1}));
        }),
        ("two receipts", |b| {
            b["Result"]["TransactionID"] = json!("TLCOTHER01");
        }),
        ("a stand-in receipt", |b| {
            b["Result"]["TransactionID"] = json!("TLC0000000");
            b["Result"]["ResultParameters"]["ResultParameter"][1]["Value"] = json!("TLC0000000");
        }),
        ("ResultCode \"00\"", |b| {
            b["Result"]["ResultCode"] = json!("00")
        }),
        ("ResultCode \" 0\"", |b| {
            b["Result"]["ResultCode"] = json!(" 0")
        }),
    ];
    for (i, (what, forge)) in forgeries.into_iter().enumerate() {
        let kes = 1_401 + i as i64;
        fake.script(
            kes,
            Script {
                result: Delivery::Never,
                status: Delivery::Never,
                ..Script::default()
            },
        );
        let request = approved_phone_payment(&app, &escrow, kes);
        let (_, originator, conversation) = acknowledged(&app, &fake, &request);
        let receipt = receipt_of(&fake, &originator);
        let amount = remit::money::KesCents::new(kes * 100).unwrap();
        let mut forged = remit::wire::daraja::results::b2c_success(
            &originator,
            &conversation,
            &receipt,
            amount,
            None,
        );
        forge(&mut forged);
        let r = post_result(&app, &forged);
        assert_eq!(r.status, 200, "{what}: {}", r.text);
        assert_sent_unpaid(&app, &request, what);
        // The real result, as M-Pesa sends it: paid once.
        let real = remit::wire::daraja::results::b2c_success(
            &originator,
            &conversation,
            &receipt,
            amount,
            None,
        );
        let r = post_result(&app, &real);
        assert_eq!(r.status, 200, "{what}: {}", r.text);
        assert_paid_once(&app, &fake, &escrow, &request);
    }
    assert_checks(app);
}

/// M-Pesa acknowledging a payout with a `ConversationID` another payout holds: the payout is
/// recorded as sent (never sent again: M-Pesa took it), flagged, and found by its own id when
/// its result comes; the other payout is left as it was.
#[test]
fn an_acknowledgement_reusing_another_payouts_conversation_is_flagged_and_never_sent_again() {
    let (fake, app) = start();
    let escrow = app.active_escrow(100, &["a"]);
    const SHARED: &str = "AG_20261201_0000000000000000c0ffee";
    for amount in [1_501, 1_502] {
        fake.script(
            amount,
            Script {
                replies: vec![Reply::AcceptAs(SHARED)],
                result: Delivery::Never,
                status: Delivery::Never,
                ..Script::default()
            },
        );
    }
    let first = approved_phone_payment(&app, &escrow, 1_501);
    let (first_payout, _, conversation) = acknowledged(&app, &fake, &first);
    assert_eq!(conversation, SHARED);
    let second = approved_phone_payment(&app, &escrow, 1_502);
    let deadline = Instant::now() + Duration::from_secs(10);
    let view = loop {
        let view = app
            .get(&format!("/payment-requests/{second}"), &app.admin)
            .body;
        if view["payout"]["flagged"] == true {
            break view;
        }
        assert!(Instant::now() < deadline, "never flagged: {view}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(view["payout"]["status"], "sent", "{view}");
    assert!(
        view["payout"]["flagReason"]
            .as_str()
            .unwrap()
            .contains("another payout's ConversationID"),
        "{view}"
    );
    let (second_payout, originator, recorded) = app.payout_ids(&second);
    assert_eq!(
        recorded, None,
        "the shared id is not recorded on the second payout"
    );
    // Its result, under its own id and the shared conversation: applied to it, once.
    let receipt = receipt_of(&fake, &originator);
    let amount = remit::money::KesCents::new(1_502 * 100).unwrap();
    let body =
        remit::wire::daraja::results::b2c_success(&originator, SHARED, &receipt, amount, None);
    assert_eq!(post_result(&app, &body).status, 200);
    assert_paid_once(&app, &fake, &escrow, &second);
    let first_view = app
        .get(&format!("/payment-requests/{first}"), &app.admin)
        .body;
    assert_eq!(first_view["payout"]["status"], "sent", "{first_view}");
    assert_ne!(first_payout, second_payout);
    assert_checks(app);
}

/// A stop does not wait for a Daraja call that is not answered: with the call's timeout at 90 s
/// and M-Pesa answering after 60, SIGTERM waited the whole call (up to four such calls) and a
/// service manager's `TimeoutStopSec` (30 s in `examples/remit.service`) killed the server
/// mid-stop. It leaves the call, 20 s after the stop began, as a crash would, and the next
/// start asks again: the payout is paid once.
#[test]
fn a_stop_does_not_wait_for_a_daraja_call_that_is_not_answered() {
    use crate::support::process::Server;
    let fake = FakeDaraja::start();
    fake.script(
        1_500,
        Script {
            replies: vec![Reply::Slow(Duration::from_secs(60))],
            result: Delivery::Never,
            ..Script::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let env = with(&daraja_env(&fake.base), "REMIT_DARAJA_TIMEOUT_S", "90");
    let env = with(&env, "REMIT_PAYOUT_STATUS_AFTER_S", "1");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut server = Server::start(&db, TEST_KEY, &dir.path().join("serve.log"), &env);
    let (admin, request) = approved_through_the_binary(&server);
    fake.wait_for("the payment request", |view| {
        view.count("/mpesa/b2c/v3/paymentrequest") == 1
    });

    let stopping = Instant::now();
    let status = server.terminate();
    let took = stopping.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(
        took < Duration::from_secs(28),
        "the stop took {took:?}:\n{}",
        server.log()
    );
    assert!(
        server
            .log()
            .contains("the stop goes on without remit-payouts"),
        "{}",
        server.log()
    );

    // The next start does not know what became of the call: it asks, and M-Pesa's answer pays
    // the payout, once.
    let mut server = Server::start(&db, TEST_KEY, &dir.path().join("serve2.log"), &env);
    let view = settled_through_the_binary(&server, &admin, &request);
    assert_eq!(view["status"], "paid", "{view}");
    assert_eq!(fake.txns().len(), 1, "paid once: {:?}", fake.txns());
    assert!(server.terminate().success());
    let ran = check(&db, TEST_KEY);
    assert_eq!(ran.code, Some(0), "remit check: {ran}");
}

/// A backlog of sends does not hold the status queries behind it: the single worker sent every
/// queued payout before it asked about any (with a thousand queued after an outage, the held
/// failures' answers, and their money, waited minutes). Sends and queries take turns.
#[test]
fn status_queries_take_turns_with_a_backlog_of_sends() {
    let (fake, app) = start_with(|c| c.payout_status_after_s = 60);
    // A failure, which remit holds until Transaction Status confirms it (asked at once).
    fake.script(
        200,
        Script {
            outcome: Outcome::Fail(2001),
            ..Script::default()
        },
    );
    // Twenty payouts whose sends take a while each.
    fake.script(
        300,
        Script {
            replies: vec![Reply::Slow(Duration::from_millis(150)); 20],
            ..Script::default()
        },
    );
    let escrow = app.active_escrow(100, &["a"]);
    let failed = approved_phone_payment(&app, &escrow, 200);
    let backlog: Vec<String> = (0..20)
        .map(|_| approved_phone_payment(&app, &escrow, 300))
        .collect();
    settled(&app, &failed, &["failed"]);
    for request in &backlog {
        settled(&app, request, &["paid"]);
    }
    let mut calls = fake.calls("/mpesa/b2c/v3/paymentrequest");
    calls.extend(fake.calls("/mpesa/transactionstatus/v1/query"));
    calls.sort_by_key(|c| c.at);
    let asked = calls
        .iter()
        .position(|c| c.path.contains("transactionstatus"))
        .expect("the failure was asked about");
    let sent_before = calls[..asked]
        .iter()
        .filter(|c| c.body["Amount"].to_string().contains("300"))
        .count();
    assert!(
        sent_before <= 3,
        "{sent_before} of the backlog's 20 sends went before the question"
    );
    assert_checks(app);
}

/// A Transaction Status query M-Pesa answers with an error (here, of a B2B payment its first
/// call never reached: "The transaction could not be found") says nothing of the payment: the
/// money stays reserved, nothing is flagged (an answer that may mean "not finished" must not
/// invite a failure by hand), and it is asked again; but what M-Pesa answered is kept as the
/// payout's last word (it was asked about without end, stuck with no reason given).
#[test]
fn a_status_query_m_pesa_answers_with_an_error_is_said_on_the_payout() {
    let (fake, app) = start_with(|c| c.payout_status_after_s = 2);
    fake.script(
        2_600,
        Script {
            replies: vec![Reply::Unavailable],
            ..Script::default()
        },
    );
    let escrow = app.active_escrow(100, &["a"]);
    let request = approved_paybill(&app, &escrow, 2_600, "ACC-26");
    let view = crate::support::notify::eventually(
        Duration::from_secs(30),
        "M-Pesa's answer kept on the payout",
        || {
            let view = app
                .get(&format!("/payment-requests/{request}"), &app.admin)
                .body;
            view["payout"]["resultDesc"]
                .as_str()
                .is_some_and(|r| r.contains("could not be found"))
                .then_some(view)
        },
    );
    assert_eq!(view["status"], "approved", "{view}");
    assert_eq!(view["payout"]["flagged"], false, "{view}");
    let said = view["payout"]["resultDesc"].as_str().unwrap();
    assert!(
        said.starts_with("Transaction Status answered R000001"),
        "{said}"
    );
    // Asked again, and nothing flagged however often M-Pesa answers so.
    let (payout, _, _) = app.payout_ids(&request);
    crate::support::notify::eventually(
        Duration::from_secs(30),
        "a second status answer recorded",
        || {
            let id = payout.clone();
            let answered: i64 = app
                .store
                .read(move |c, _| {
                    Ok(c.query_row(
                        "SELECT COUNT(*) FROM daraja_queries WHERE payout_id = ?1 AND answered_at IS NOT NULL",
                        [id],
                        |r| r.get(0),
                    )?)
                })
                .unwrap();
            (answered >= 2).then_some(())
        },
    );
    let flags: i64 = app
        .store
        .read(|c, _| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM audit_log WHERE action = 'payout.flagged'",
                [],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(flags, 0);
    assert_eq!(fake.txns().len(), 0, "nothing was paid");
}

/// M-Pesa refused a payout at its only call (`400.002.02`, no ConversationID given): a success
/// posted for it afterwards (by whoever knows the result URL's token) is not applied, and holds
/// nothing: it is said and audited. It flagged the payout as "reported paid after all", which
/// held every approval of the escrow until an admin acted.
#[test]
fn a_success_for_a_payout_refused_at_its_only_call_holds_nothing() {
    let (fake, app) = start();
    fake.script(
        1_235,
        Script {
            replies: vec![Reply::Refuse],
            ..Script::default()
        },
    );
    let escrow = app.active_escrow(100, &["a"]);
    let request = approved_phone_payment(&app, &escrow, 1_235);
    assert_failed_money_back(&app, &fake, &escrow, &request, 10_000);
    let (payout, originator, _) = app.payout_ids(&request);
    let forged = json!({"Result": {"ResultType": 0, "ResultCode": 0,
        "ResultDesc": "The service request is processed successfully.",
        "OriginatorConversationID": originator, "ConversationID": "AG_20261206_FORGED0001",
        "TransactionID": "TLC1235AAA",
        "ResultParameters": {"ResultParameter": [{"Key": "TransactionAmount", "Value": 1_235},
            {"Key": "TransactionReceipt", "Value": "TLC1235AAA"}]}}});
    let r = app.post_mpesa_result(&forged);
    assert_eq!(r.status, 200, "{}", r.text);
    let view = app
        .get(&format!("/payment-requests/{request}"), &app.admin)
        .body;
    assert_eq!(
        (view["status"].as_str(), view["payout"]["flagged"].as_bool()),
        (Some("failed"), Some(false)),
        "{view}"
    );
    // One that names another payee (which flags a payout M-Pesa may have paid) holds nothing
    // either.
    let other_payee = json!({"Result": {"ResultType": 0, "ResultCode": 0,
        "ResultDesc": "The service request is processed successfully.",
        "OriginatorConversationID": originator, "ConversationID": "AG_20261206_FORGED0002",
        "TransactionID": "TLC1235BBB",
        "ResultParameters": {"ResultParameter": [{"Key": "TransactionAmount", "Value": 1_235},
            {"Key": "TransactionReceipt", "Value": "TLC1235BBB"},
            {"Key": "ReceiverPartyPublicName", "Value": "254799999999 - SOMEONE ELSE"}]}}});
    let r = app.post_mpesa_result(&other_payee);
    assert_eq!(r.status, 200, "{}", r.text);
    let view = app
        .get(&format!("/payment-requests/{request}"), &app.admin)
        .body;
    assert_eq!(view["payout"]["flagged"], false, "{view}");
    // Nor one that names no ConversationID: ignored, with its audit line as the others.
    let r = app.post_mpesa_result(&success_naming_no_conversation(
        &originator,
        1_235,
        "TLC1235CCC",
    ));
    assert_eq!(r.status, 200, "{}", r.text);
    let audit = audit_actions(&app, &escrow, &payout);
    assert_eq!(count(&audit, "payout.result_ignored"), 3, "{audit:?}");
    // The escrow's money is not held: another request is approved.
    let next = approved_phone_payment(&app, &escrow, 1_700);
    assert_paid_once(&app, &fake, &escrow, &next);
    assert_checks(app);
}

/// README: a `daraja ping`'s balances come back to the result URL, where a running server does
/// not take them (it did not ask for them): answered `404`, and `GET /admin/float` keeps what
/// the server was told by its own query.
#[test]
fn a_pings_balances_are_not_taken_by_a_running_server() {
    use crate::support::process::Server;
    let fake = FakeDaraja::start();
    fake.set_balances(50_000, 1_000);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let env = daraja_env(&fake.base);
    let server_env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut server = Server::start(&db, TEST_KEY, &dir.path().join("serve.log"), &server_env);
    let admin = server.admin_token();
    let utility = || {
        let r = server.get("/admin/float", &admin);
        assert_eq!(r.status, 200, "{}", r.text);
        float_account(&r.body, "Utility Account")["availableKesCents"].clone()
    };
    // The server's own query, at its start.
    let deadline = Instant::now() + Duration::from_secs(20);
    while utility() != json!(5_000_000) {
        assert!(Instant::now() < deadline, "the server's balance never came");
        std::thread::sleep(Duration::from_millis(25));
    }
    // M-Pesa's float changes; a ping asks, its result sent to the server's result URL.
    fake.set_balances(7_000, 2_000);
    let before = fake.posted().len();
    let ran = ping(dir.path(), &with(&env, "REMIT_PUBLIC_URL", &server.base));
    assert_eq!(ran.code, Some(0), "{ran}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let answered = loop {
        let posted = fake.posted();
        // The ping's result, by the balances it carries: the fake records a post once it is
        // answered, so the server's own result (of the balances before) may be recorded after
        // the count was taken (a loaded machine took it, answered 200, for the ping's).
        if let Some(p) = posted[before..].iter().find(|p| {
            p.url.starts_with(&server.base)
                && p.status.is_some()
                && p.body.to_string().contains("Utility Account|KES|7000.00")
        }) {
            break p.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the ping's result was never posted"
        );
        std::thread::sleep(Duration::from_millis(25));
    };
    assert_eq!(answered.status, Some(404), "{:?}", answered.body);
    assert_eq!(utility(), json!(5_000_000), "the ping's balance was taken");
    assert_eq!(server.terminate().code(), Some(0));
}
