//! Regression tests for defects found in review; each says what it guards against.

use crate::support::app::*;
use remit::payout::{Ack, CallbackUrls, Gateway, GatewayError};
use remit::service::payouts::PayoutJob;
use serde_json::json;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Guards against: 40 clients declaring a 60 KB body and sending one byte froze every worker,
/// so that `/health` timed out. A client without a valid token is now refused before its body
/// is read.
#[test]
fn stalled_unauthenticated_uploads_cannot_freeze_the_server() {
    let app = spawn_app();
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut stalled = Vec::new();
    for _ in 0..40 {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.write_all(b"POST /escrows HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{").unwrap();
        stalled.push(s);
    }
    let started = Instant::now();
    let r = app.raw("GET", "/health", None, None, &[]);
    assert_eq!(r.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "health took {:?}",
        started.elapsed()
    );
    drop(stalled);
}

/// Guards against: ResultCode 15 ("Duplicate Detected": an earlier attempt may have paid) was
/// taken for a failure and released the money for spending again.
#[test]
fn a_duplicate_detected_result_keeps_the_money_reserved_and_flags_the_payout() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let escrow = app.active_escrow(100, &["a"]);
    let request = app.request(&escrow, "a", 1_500, "ACC");
    assert_eq!(app.approve(&request).status, 200);
    let (_, originator, _) = app.payout_ids(&request);
    let body = json!({"Result": {"ResultType": 0, "ResultCode": 15, "ResultDesc": "Duplicate Detected",
        "OriginatorConversationID": originator, "ConversationID": "AG_1", "TransactionID": "TCE0000000"}});
    let r = app.raw(
        "POST",
        &format!("/webhooks/payouts/{CALLBACK_TOKEN}"),
        None,
        Some(("application/json", body.to_string().as_bytes())),
        &[],
    );
    assert_eq!(r.status, 200);
    let view = app
        .get(&format!("/payment-requests/{request}"), &app.admin)
        .body;
    assert_eq!(
        (view["status"].as_str(), view["payout"]["flagged"].as_bool()),
        (Some("approved"), Some(true))
    );
    assert_eq!(app.escrow(&escrow)["reservedUsdCents"], 1_000);
    app.assert_integrity();
}

struct CountingGateway(AtomicUsize);

impl Gateway for CountingGateway {
    fn name(&self) -> &'static str {
        "simulator"
    }

    fn send(
        &self,
        _job: &PayoutJob,
        _urls: &CallbackUrls,
        _still_due: &dyn Fn() -> bool,
    ) -> Result<Ack, GatewayError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(Ack {
            conversation_id: format!("AG_TEST_{}", self.0.load(Ordering::SeqCst)),
        })
    }
}

/// Guards against: when recording the gateway's answer failed, the payout stayed due and the
/// worker sent it again at once (thousands of payouts in 200 ms). The payout is now claimed
/// before the call.
#[test]
fn a_payout_whose_answer_cannot_be_recorded_is_not_sent_again_at_once() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let escrow = app.active_escrow(100, &["a"]);
    let request = app.request(&escrow, "a", 1_500, "ACC");
    assert_eq!(app.approve(&request).status, 200);
    app.store
        .write(|ctx| {
            ctx.conn.execute_batch(
                "CREATE TRIGGER refuse_sent BEFORE UPDATE OF conversation_id ON payouts BEGIN SELECT RAISE(ABORT, 'disk trouble'); END;",
            )?;
            Ok(())
        })
        .unwrap();
    let gateway = Arc::new(CountingGateway(AtomicUsize::new(0)));
    let worker = app.worker(gateway.clone());
    for _ in 0..5 {
        if let Some(job) = worker.next_due().unwrap() {
            worker.process(job);
        }
    }
    assert_eq!(
        gateway.0.load(Ordering::SeqCst),
        1,
        "sent once, then held back until its retry time"
    );
}

/// Guards against: stored idempotent responses kept bearer tokens, names and merchant accounts
/// in plain text in the database file.
#[test]
fn idempotent_responses_are_stored_encrypted_and_new_tokens_never() {
    let app = spawn_app();
    let r = app.post_with_key(
        "/users",
        &app.admin,
        &json!({"role": "sender", "name": "Secretname Kamau"}),
        "u-1",
    );
    let token = r.body["token"].as_str().unwrap().to_string();
    let replay = app.post_with_key(
        "/users",
        &app.admin,
        &json!({"role": "sender", "name": "Secretname Kamau"}),
        "u-1",
    );
    assert_eq!(replay.status, 201);
    assert!(
        replay.body["token"].is_null(),
        "a token is shown once: {}",
        replay.text
    );
    assert_eq!(replay.body["user"]["userId"], r.body["user"]["userId"]);
    let escrow = app.active_escrow(100, &["a"]);
    let body = json!({"escrowId": escrow, "category": "a", "amountKes": 150, "merchantName": "Hidden Merchant",
                      "merchantAccount": {"type": "paybill", "number": "888880", "accountReference": "ACCSECRET77"}, "note": "private note"});
    assert_eq!(
        app.post_with_key("/payment-requests", &app.agent, &body, "pr-1")
            .status,
        201
    );
    let haystack = crate::support::ledger_file_text(app.dir.path());
    for needle in [
        token.as_str(),
        "Secretname",
        "Hidden Merchant",
        "ACCSECRET77",
        "private note",
    ] {
        assert!(
            !haystack.contains(needle),
            "{needle} is readable in the database file"
        );
    }
}

/// Guards against: `{"totalAmountUsd":5,"totalAmountUsd":6}` silently created an escrow of 6.
#[test]
fn a_field_given_twice_is_refused() {
    let app = spawn_app();
    let body = format!(
        r#"{{"recipientPhone":"{RECIPIENT_PHONE}","recipientName":"W","totalAmountUsd":5,"totalAmountUsd":6,"categories":["a"]}}"#
    );
    let r = app.raw(
        "POST",
        "/escrows",
        Some(&app.sender),
        Some(("application/json", body.as_bytes())),
        &[],
    );
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (400, Some("invalid_json")),
        "{}",
        r.text
    );
    assert!(r.body["error"].as_str().unwrap().contains("totalAmountUsd"));
}

/// Guards against: a refund or dispute of a card payment in another currency was said, and
/// audited, in dollars (JPY 5,000 refunded read "USD 50.00"); one that came before its payment
/// left the deposit in dollars once the payment came.
#[test]
fn reversals_of_a_payment_in_another_currency_are_said_in_that_currency() {
    let app = spawn_app();
    let escrow = app.pending_escrow(100, &["a"], None);
    let event = |id: &str, kind: &str, object: serde_json::Value| {
        json!({"id": id, "object": "event", "type": kind, "data": {"object": object}}).to_string()
    };
    let succeeded = |id: &str, intent: &str, amount: i64| {
        event(
            id,
            "payment_intent.succeeded",
            json!({"id": intent, "object": "payment_intent",
            "amount": amount, "amount_received": amount, "currency": "jpy", "status": "succeeded",
            "metadata": {"escrowId": escrow}}),
        )
    };
    let refunded = |id: &str, intent: &str, amount: i64, refunded: i64| {
        event(
            id,
            "charge.refunded",
            json!({"id": format!("ch_{intent}"), "object": "charge",
            "payment_intent": intent, "amount": amount, "amount_refunded": refunded,
            "refunded": refunded == amount, "currency": "jpy"}),
        )
    };
    let deposit = |intent: &str| {
        let list = app.get("/deposits", &app.admin);
        list.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["reference"] == intent)
            .cloned()
            .unwrap_or_else(|| panic!("{intent}: {}", list.text))
    };
    let in_yen = |d: &serde_json::Value, amount: i64| {
        assert_eq!(
            (&d["currency"], &d["amountMinorUnits"], &d["amountUsdCents"]),
            (&json!("jpy"), &json!(amount), &json!(null)),
            "{d}"
        );
        for field in ["flagReason", "reversalReason"] {
            let text = d[field].as_str().unwrap_or_default();
            assert!(!text.contains("USD"), "{field} in dollars: {d}");
        }
    };
    // Refunded before Stripe's success came, then the success.
    let r = app.post_stripe(&refunded("evt_1", "pi_early", 5_000, 5_000));
    assert_eq!(r.status, 200, "{}", r.text);
    in_yen(&deposit("pi_early"), 5_000);
    let r = app.post_stripe(&succeeded("evt_2", "pi_early", 5_000));
    assert_eq!(r.status, 200, "{}", r.text);
    let early = deposit("pi_early");
    in_yen(&early, 5_000);
    assert!(
        early["reversalReason"]
            .as_str()
            .unwrap()
            .contains("refunded the whole charge (5000 in the smallest unit of \"jpy\")"),
        "{early}"
    );
    // Flagged for its currency, then partly refunded.
    let r = app.post_stripe(&succeeded("evt_3", "pi_late", 1_000));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app.post_stripe(&refunded("evt_4", "pi_late", 1_000, 400));
    assert_eq!(r.status, 200, "{}", r.text);
    let late = deposit("pi_late");
    in_yen(&late, 1_000);
    assert_eq!(
        late["reversalReason"], "Stripe refunded 400 in the smallest unit of \"jpy\" of the charge",
        "{late}"
    );
    // A dispute whose event names no currency is in the payment's.
    let r = app.post_stripe(&event(
        "evt_5",
        "charge.dispute.created",
        json!({"id": "dp_late", "object": "dispute", "payment_intent": "pi_late", "amount": 1_000,
               "reason": "fraudulent"}),
    ));
    assert_eq!(r.status, 200, "{}", r.text);
    let disputed = deposit("pi_late");
    in_yen(&disputed, 1_000);
    assert!(
        disputed["reversalReason"]
            .as_str()
            .unwrap()
            .starts_with("the cardholder disputed 1000 in the smallest unit of \"jpy\""),
        "{disputed}"
    );
    // Its audit line, which the escrow's sender reads, is in yen too.
    let audit = app.get(
        &format!("/audit?entity={}", late["depositId"].as_str().unwrap()),
        &app.admin,
    );
    let line = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["action"] == "deposit.refunded")
        .cloned()
        .unwrap_or_else(|| panic!("{}", audit.text));
    assert_eq!(
        (
            &line["details"]["currency"],
            &line["details"]["amountMinorUnits"],
            &line["details"]["amountUsdCents"]
        ),
        (&json!("jpy"), &json!(400), &json!(null)),
        "{line}"
    );
    app.assert_integrity();
}

/// Guards against: a card payment in another currency flagged for another reason first (no
/// escrow named, or not succeeded) was listed in dollars (JPY 500,000 as USD 5,000.00), since
/// the views read its currency from the flag's words; and a second event (another event id)
/// for a PaymentIntent already flagged broke the reference's uniqueness, a 500 that Stripe
/// retried for three days.
#[test]
fn a_payment_in_another_currency_flagged_for_another_reason_keeps_its_currency() {
    let app = spawn_app();
    let escrow = app.pending_escrow(100, &["a"], None);
    let intent = |id: &str, metadata: serde_json::Value, status: &str| {
        json!({"id": id, "object": "payment_intent", "amount": 500_000, "amount_received": 500_000,
            "currency": "jpy", "status": status, "metadata": metadata})
    };
    let event = |id: &str, object: serde_json::Value| {
        json!({"id": id, "object": "event", "type": "payment_intent.succeeded", "data": {"object": object}})
            .to_string()
    };
    let cases = [
        (
            "pi_jpy_nobody",
            intent("pi_jpy_nobody", json!({}), "succeeded"),
        ),
        (
            "pi_jpy_processing",
            intent(
                "pi_jpy_processing",
                json!({"escrowId": escrow}),
                "processing",
            ),
        ),
    ];
    for (n, (reference, object)) in cases.iter().enumerate() {
        for attempt in 0..2 {
            let r = app.post_stripe(&event(&format!("evt_jpy_{n}_{attempt}"), object.clone()));
            assert_eq!(r.status, 200, "event {attempt} of {reference}: {}", r.text);
        }
        let list = app.get("/deposits?status=flagged", &app.admin);
        let items: Vec<&serde_json::Value> = list.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["reference"] == *reference)
            .collect();
        assert_eq!(items.len(), 1, "{}", list.text);
        assert_eq!(
            (
                &items[0]["currency"],
                &items[0]["amountMinorUnits"],
                &items[0]["amountUsd"]
            ),
            (&json!("jpy"), &json!(500_000), &json!(null)),
            "{}",
            items[0]
        );
    }
    app.assert_integrity();
}

/// Guards against: a flagged Stripe deposit could not be seen through the API at all.
#[test]
fn flagged_deposits_are_listed_for_admins_and_in_the_escrow_audit() {
    let app = spawn_app();
    let escrow = app.pending_escrow(50, &["a"], None);
    let event = json!({"id": "evt_eur", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_eur",
        "amount_received": 5000, "currency": "eur", "metadata": {"escrowId": escrow}}}})
    .to_string();
    let r = app.post_stripe(&event);
    assert_eq!(r.status, 200, "{}", r.text);
    let list = app.get("/deposits?status=flagged", &app.admin);
    assert_eq!(list.status, 200);
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", list.text);
    assert_eq!(items[0]["reference"], "pi_eur");
    assert!(items[0]["flagReason"].as_str().unwrap().contains("eur"));
    // In its own currency, never as dollars (it was `amountUsd: 50.0`).
    assert_eq!(
        (
            &items[0]["currency"],
            &items[0]["amountMinorUnits"],
            &items[0]["amountUsd"],
            &items[0]["amountUsdCents"]
        ),
        (&json!("eur"), &json!(5000), &json!(null), &json!(null)),
        "{}",
        list.text
    );
    assert_eq!(app.get("/deposits", &app.agent).status, 403);
    // An agent reads the cash they recorded, an escrow at a time: not this card money.
    let theirs = app.get(&format!("/deposits?escrowId={escrow}"), &app.agent);
    assert_eq!(theirs.status, 200, "{}", theirs.text);
    assert_eq!(theirs.body["items"], json!([]), "{}", theirs.text);
    // By escrow: its deposits; an escrow that does not exist is 404, as on
    // /payment-requests (it was an empty 200, which reads as "no deposits").
    let own = app.get(&format!("/deposits?escrowId={escrow}"), &app.admin);
    assert_eq!(own.status, 200, "{}", own.text);
    assert!(
        !own.body["items"].as_array().unwrap().is_empty(),
        "{}",
        own.text
    );
    for unknown in [
        "bogus",
        "pr_01m8yevggs2eed6vwrxpvfbgpm",
        "esc_01m8yevggs2eed6vwrxpvfbgpm",
    ] {
        let r = app.get(&format!("/deposits?escrowId={unknown}"), &app.admin);
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (404, Some("not_found")),
            "{unknown}: {}",
            r.text
        );
    }
    let audit = app.get(&format!("/audit?entity={escrow}"), &app.admin);
    assert!(audit.text.contains("deposit.flagged"), "{}", audit.text);
}

/// Guards against: a callback that arrived before its payout was known used up its dedupe key,
/// so Daraja's retry was ignored and the money stayed reserved for good.
#[test]
fn a_callback_for_a_not_yet_known_payout_does_not_block_its_retry() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let escrow = app.active_escrow(100, &["a"]);
    let request = app.request(&escrow, "a", 1_500, "ACC");
    assert_eq!(app.approve(&request).status, 200);
    let (payout, _, _) = app.payout_ids(&request);
    let stk = json!({"Body": {"stkCallback": {"MerchantRequestID": "m", "CheckoutRequestID": "ws_CO_EARLY", "ResultCode": 0,
        "ResultDesc": "ok", "CallbackMetadata": {"Item": [{"Name": "Amount", "Value": 1500}, {"Name": "MpesaReceiptNumber", "Value": "TCEEARLY01"}]}}}});
    let post = || {
        app.raw(
            "POST",
            &format!("/webhooks/payouts/{CALLBACK_TOKEN}"),
            None,
            Some(("application/json", stk.to_string().as_bytes())),
            &[],
        )
    };
    assert_eq!(post().status, 404, "not known yet");
    mark_sent(&app, &payout, "ws_CO_EARLY");
    assert_eq!(post().status, 200);
    assert_eq!(
        app.wait_for_status(&request, &["paid"])["payout"]["mpesaReceipt"],
        "TCEEARLY01"
    );
}

/// An admin could resolve a payout the worker was still sending: only a stuck one is resolved
/// by hand where a worker sends (`payouts_daraja`, an OAuth outage). Without a gateway no
/// worker sends anything, and a queued payout is the admin's to settle at once (after a
/// restore, what the replaced ledger saw; it was `409 not stuck yet`, and stayed reserved).
#[test]
fn without_a_gateway_a_queued_payout_is_resolved_by_hand_at_once() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let escrow = app.active_escrow(100, &["a"]);
    // A payout approved just now; `handed_over` says when a gateway last took it, if ever.
    let payout = |handed_over: Option<&str>| -> String {
        let request = app.request(&escrow, "a", 1_500, "ACC");
        assert_eq!(app.approve(&request).status, 200);
        let (payout, _, _) = app.payout_ids(&request);
        if let Some(at) = handed_over {
            rusqlite::Connection::open(app.dir.path().join("remit.db"))
                .unwrap()
                .execute(
                    "UPDATE payouts SET gateway = 'daraja', attempts = 1,
                     updated_at = COALESCE(?2, updated_at) WHERE id = ?1",
                    rusqlite::params![payout, (!at.is_empty()).then_some(at)],
                )
                .unwrap();
        }
        assert_eq!(app.escrow(&escrow)["reservedUsdCents"], 1_000);
        payout
    };
    let resolve = |payout: &str, body: serde_json::Value| {
        app.post(&format!("/payouts/{payout}/resolve"), &app.admin, &body)
    };
    let resolved = |r: &Resp, status: &str| {
        assert_eq!(
            (r.status, r.body["status"].as_str()),
            (200, Some(status)),
            "{}",
            r.text
        );
        assert_eq!(app.escrow(&escrow)["reservedUsdCents"], 0);
    };
    // Never handed to a gateway: failed by hand at once, its money back.
    resolved(
        &resolve(&payout(None), json!({"outcome": "failed"})),
        "failed",
    );
    // Handed to a gateway a moment ago (a server switched to none with a call in flight): it
    // may still be paid, so not failed by hand before the timeout; paid with a receipt, yes.
    let in_flight = payout(Some(""));
    let r = resolve(&in_flight, json!({"outcome": "failed"}));
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(r.text.contains("may still be paid"), "{}", r.text);
    assert_eq!(app.escrow(&escrow)["reservedUsdCents"], 1_000);
    let r = resolve(
        &in_flight,
        json!({"outcome": "paid", "receipt": "TPAIDBYHAND"}),
    );
    resolved(&r, "succeeded");
    // Handed over long ago, no word since: failed by hand.
    let quiet = payout(Some("2026-01-01T00:00:00Z"));
    resolved(&resolve(&quiet, json!({"outcome": "failed"})), "failed");
    app.assert_integrity();
}

/// A gateway that answers every call the same way, and counts the calls.
struct FixedGateway {
    answer: fn() -> Result<Ack, GatewayError>,
    calls: AtomicUsize,
}

impl Gateway for FixedGateway {
    fn name(&self) -> &'static str {
        "simulator"
    }

    fn send(
        &self,
        _job: &PayoutJob,
        _urls: &CallbackUrls,
        _still_due: &dyn Fn() -> bool,
    ) -> Result<Ack, GatewayError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        (self.answer)()
    }
}

/// A gateway that answers every send with `answer`, counting the calls.
fn fixed(answer: fn() -> Result<Ack, GatewayError>) -> Arc<FixedGateway> {
    Arc::new(FixedGateway {
        answer,
        calls: AtomicUsize::new(0),
    })
}

/// Guards against: a queued payout whose merchant account did not open under the key (a damaged
/// byte, an edit of the file) stopped every payout after it: the worker read it first, failed
/// ("cannot read the queue"), and read it first again, for ever. It is flagged for the operator
/// (stuck, its money reserved until an admin resolves it) and the next one is sent.
#[test]
fn a_payout_whose_account_does_not_open_is_flagged_and_the_next_one_is_sent() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let (_, a) = approved_payout(&app);
    let (_, b) = approved_payout(&app);
    // The queue's first (by the payout's id) is damaged.
    let (damaged, next) = if app.payout_ids(&a).0 < app.payout_ids(&b).0 {
        (a, b)
    } else {
        (b, a)
    };
    app.sql(
        "UPDATE payment_requests SET merchant_account_enc = merchant_account_enc || 'AA' WHERE id = ?1",
        &[&damaged],
    );
    let gateway = fixed(|| {
        Ok(Ack {
            conversation_id: "AG_TEST_NEXT".into(),
        })
    });
    assert!(run_worker_once(&app, &gateway));
    assert_eq!(
        gateway.calls.load(Ordering::SeqCst),
        1,
        "the next one was sent"
    );
    assert_eq!(app.payout_ids(&next).2.as_deref(), Some("AG_TEST_NEXT"));
    // (Its view is a 500: what it would show does not open.)
    let (status, flagged, reason): (String, bool, String) = app
        .store
        .read(move |c, _| {
            Ok(c.query_row(
                "SELECT status, flagged, flag_reason FROM payouts WHERE payment_request_id = ?1",
                [&damaged],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?)
        })
        .unwrap();
    assert_eq!((status.as_str(), flagged), ("queued", true));
    assert!(reason.contains("does not open under the key"), "{reason}");
    assert_eq!(
        app.get("/payouts?status=stuck", &app.admin).body["items"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "listed as stuck"
    );
    let sent = app
        .get(&format!("/payment-requests/{next}"), &app.admin)
        .body;
    assert_eq!(sent["payout"]["status"], "sent", "{sent}");
    assert!(!run_worker_once(&app, &gateway), "nothing more is due");
}

fn approved_payout(app: &TestApp) -> (String, String) {
    let escrow = app.active_escrow(100, &["a"]);
    let request = app.request(&escrow, "a", 1_500, "ACC");
    assert_eq!(app.approve(&request).status, 200);
    (escrow, request)
}

/// Guards against: a payout a server before 2026-12-06 left `queued` with a failure held for
/// Transaction Status waited for ever (never sent again, never stuck, not resolvable) after the
/// fix that marks new ones sent. The payout worker counts such payouts as sent when it starts.
#[test]
fn a_payout_left_queued_with_a_failure_held_counts_as_sent_and_becomes_stuck() {
    let app = spawn_app_with(|c| {
        c.gateway = remit::config::GatewayKind::None;
        c.payout_timeout_s = 1;
    });
    let (escrow, request) = approved_payout(&app);
    let (payout, _, _) = app.payout_ids(&request);
    // As a server before the fix left it: queued, its failure held.
    let id = payout.clone();
    app.store
        .write(move |ctx| {
            ctx.conn.execute(
                "UPDATE payouts SET gateway = 'daraja', attempts = 1, failure_to_confirm_code = '1',
                 failure_to_confirm_desc = 'The balance is insufficient' WHERE id = ?1",
                [&id],
            )?;
            Ok(())
        })
        .unwrap();
    let counted = app
        .store
        .write(remit::service::payouts::held_failures_count_as_sent)
        .unwrap();
    assert_eq!(counted, 1);
    let view = app
        .get(&format!("/payment-requests/{request}"), &app.admin)
        .body;
    assert_eq!(view["payout"]["status"], "sent", "{view}");
    let audit = app.get(&format!("/audit?entity={payout}"), &app.admin);
    assert!(
        audit.text.contains("payout.outcome_unknown"),
        "{}",
        audit.text
    );
    // Stuck for the operator once its timeout has passed, and resolved.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !app
        .get("/payouts?status=stuck", &app.admin)
        .text
        .contains(&payout)
    {
        assert!(Instant::now() < deadline, "never stuck");
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = app.post(
        &format!("/payouts/{payout}/resolve"),
        &app.admin,
        &json!({"outcome": "failed"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.escrow(&escrow)["remainingUsdCents"], 10_000);
    // Once: nothing is left to count.
    assert_eq!(
        app.store
            .write(remit::service::payouts::held_failures_count_as_sent)
            .unwrap(),
        0
    );
    app.assert_integrity();
}

/// Records a payout as handed to M-Pesa under `conversation`, as the gateway's answer would.
fn mark_sent(app: &TestApp, payout: &str, conversation: &'static str) {
    let id = remit::domain::PayoutId::parse(payout).unwrap();
    app.store
        .write(move |ctx| remit::service::payouts::mark_sent(ctx, &id, Some(conversation), None))
        .unwrap();
}

/// Makes a payout's next attempt due now, as its backoff running out would.
fn attempt_due_now(app: &TestApp, payout: &str) {
    let id = payout.to_string();
    app.store
        .write(move |ctx| {
            Ok(ctx.conn.execute(
                "UPDATE payouts SET next_attempt_at = '2000-01-01T00:00:00Z' WHERE id = ?1",
                [&id],
            )?)
        })
        .unwrap();
}

fn run_worker_once(app: &TestApp, gateway: &Arc<FixedGateway>) -> bool {
    let worker = app.worker(gateway.clone());
    match worker.next_due().unwrap() {
        Some(job) => {
            worker.process(job);
            true
        }
        None => false,
    }
}

#[test]
fn a_synchronous_refusal_fails_the_payout_and_returns_the_money() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let (escrow, request) = approved_payout(&app);
    let gateway = fixed(|| {
        Err(GatewayError::Refused {
            code: "400.002.02".into(),
            message: "Bad Request - Invalid PartyB".into(),
        })
    });
    assert!(run_worker_once(&app, &gateway));
    let view = app.wait_for_status(&request, &["failed"]);
    assert_eq!(view["payout"]["resultCode"], "400.002.02");
    assert_eq!(app.escrow(&escrow)["remainingUsdCents"], 10_000);
    app.assert_integrity();
}

#[test]
fn a_transport_error_is_retried_later_with_the_same_id_and_never_failed_on_its_own() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let (escrow, request) = approved_payout(&app);
    let gateway = fixed(|| Err(GatewayError::Transport("connection reset".into())));
    assert!(run_worker_once(&app, &gateway));
    assert!(
        !run_worker_once(&app, &gateway),
        "not due again before its backoff"
    );
    assert_eq!(gateway.calls.load(Ordering::SeqCst), 1);
    let view = app
        .get(&format!("/payment-requests/{request}"), &app.admin)
        .body;
    assert_eq!(
        (view["status"].as_str(), view["payout"]["status"].as_str()),
        (Some("approved"), Some("queued"))
    );
    assert_eq!(view["payout"]["attempts"], 1);
    assert_eq!(
        app.escrow(&escrow)["reservedUsdCents"],
        1_000,
        "the money stays reserved"
    );
    let (payout, originator, _) = app.payout_ids(&request);
    // Its next attempt comes due: it is sent again under the same OriginatorConversationID.
    attempt_due_now(&app, &payout);
    let due = app
        .store
        .read(|c, k| remit::service::payouts::next_due(c, k, remit::time::now_unix()))
        .unwrap();
    let Some(remit::service::payouts::Due::Job(job)) = due else {
        panic!("not due: {due:?}")
    };
    assert_eq!(job.originator_conversation_id(), originator);
    app.assert_integrity();
}

/// Guards against: read timeouts set on the listening socket also timed out `accept()`, and
/// tiny_http then stopped listening for good after 10 s without a new connection.
#[test]
fn the_server_still_accepts_connections_after_an_idle_spell() {
    let app = spawn_app();
    assert_eq!(app.raw("GET", "/health", None, None, &[]).status, 200);
    // Idle longer than the 10 s connection timeout (this waits on the server's idleness, not
    // on its start).
    std::thread::sleep(Duration::from_secs(11));
    let fresh = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    let r = fresh
        .get(&format!("{}/health", app.base))
        .call()
        .expect("the server still listens");
    assert_eq!(r.status().as_u16(), 200);
}

/// Guards against: a request declaring a 100 TB body made tiny_http allocate a buffer that size
/// when it discarded the unread body, aborting the process.
#[test]
fn a_huge_declared_body_is_refused_and_the_server_lives_on() {
    let app = spawn_app();
    let addr = app.base.trim_start_matches("http://").to_string();
    for auth in ["", &format!("Authorization: Bearer {}\r\n", app.sender)] {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        let head = format!(
            "POST /escrows HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: 100000000000000\r\n\r\n{{\"a\":"
        );
        s.write_all(head.as_bytes()).unwrap();
        let mut answer = [0u8; 12];
        std::io::Read::read_exact(&mut s, &mut answer).unwrap();
        let status = String::from_utf8_lossy(&answer).to_string();
        assert!(status.contains("401") || status.contains("413"), "{status}");
    }
    assert_eq!(app.raw("GET", "/health", None, None, &[]).status, 200);
}

/// The README says `last_used_at` is kept without a write per request: it is written in the
/// background (and at shutdown), never left behind.
#[test]
fn token_use_is_recorded_without_a_write_per_request() {
    let mut app = spawn_app();
    let before: Option<String> = app
        .store
        .read(|c, _| Ok(c.query_row("SELECT MAX(last_used_at) FROM api_tokens", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(before, None);
    // `data_version` changes whenever another connection commits a change to the file.
    let watcher = rusqlite::Connection::open_with_flags(
        app.dir.path().join("remit.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let version = || -> i64 {
        watcher
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .unwrap()
    };
    let version_before = version();
    for _ in 0..5 {
        assert_eq!(app.get("/me", &app.sender).status, 200);
    }
    assert_eq!(
        version(),
        version_before,
        "authenticated requests wrote to the database"
    );
    drop(watcher);
    let store = std::sync::Arc::clone(&app.store);
    let dir = app.dir.path().to_path_buf();
    app.shutdown();
    drop(store);
    let conn = rusqlite::Connection::open(dir.join("remit.db")).unwrap();
    let used: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM api_tokens WHERE last_used_at IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(used, 1, "exactly the sender's token was used");
}

/// Guards against: resolving a stuck payout with a receipt already used flagged the payout,
/// logged "flagged", then rolled the flag back with the refused resolution; the log told of a
/// change that never happened. Log lines of a change are now written only once it commits.
#[test]
fn the_log_never_tells_of_a_change_that_was_rolled_back() {
    use crate::support::process::{funded_escrow, kiosk_users, Server};
    use crate::support::TEST_KEY;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let log = dir.path().join("remit.log");
    let (admin, sender, agent) = kiosk_users(&db, TEST_KEY);
    let server = Server::start(
        &db,
        TEST_KEY,
        &log,
        &[("REMIT_SIM_TIMEOUT_ACCOUNTS", "STUCK1,STUCK2")],
    );
    let escrow = funded_escrow(
        &server,
        &sender,
        &agent,
        100,
        RECIPIENT_PHONE,
        "W",
        &["rent"],
    );
    let payouts: Vec<String> = ["STUCK1", "STUCK2"]
        .iter()
        .map(|reference| {
            let r = server.post(
                "/payment-requests",
                &agent,
                &json!({"escrowId": escrow, "category": "rent", "amountKes": 150, "merchantName": "KPLC",
                        "merchantAccount": {"type": "paybill", "number": "888880", "accountReference": reference}}),
            );
            assert_eq!(r.status, 201, "{}", r.text);
            let id = r.body["paymentRequestId"].as_str().unwrap().to_string();
            let r = server.post(&format!("/payment-requests/{id}/approve"), &sender, &json!({}));
            assert_eq!(r.status, 200, "{}", r.text);
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let r = server.get(&format!("/payment-requests/{id}"), &admin);
                if r.body["payout"]["flagged"] == json!(true) {
                    break r.body["payout"]["payoutId"].as_str().unwrap().to_string();
                }
                assert!(Instant::now() < deadline, "never flagged: {}", r.text);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
        .collect();
    let resolve = |payout: &str| {
        server.post(
            &format!("/payouts/{payout}/resolve"),
            &admin,
            &json!({"outcome": "paid", "receipt": "TCEDUPLIC1"}),
        )
    };
    assert_eq!(resolve(&payouts[0]).status, 200);
    let refused = resolve(&payouts[1]);
    assert_eq!(
        (refused.status, refused.body["field"].as_str()),
        (400, Some("receipt")),
        "{}",
        refused.text
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains(&format!("payout.resolved {} by", payouts[0])),
        "a committed change is logged:\n{text}"
    );
    assert!(
        !text.contains("receipt already"),
        "the rolled-back flag was logged:\n{text}"
    );
    assert!(!text.contains(&format!("payout.resolved {} by", payouts[1])));
}

#[test]
fn an_audit_line_rolled_back_with_its_command_leaves_the_chain_whole() {
    // The writer keeps the newest line in memory between lines of a batch: a line written in a
    // savepoint that rolls back must not become the "previous line" of the next one. (Lines
    // of an action remit writes: `audit::ACTIONS`, by the test's own actor.)
    let store = crate::support::TestStore::new();
    store
        .store
        .write(|ctx| {
            ctx.audit("system:test", "backup.made", "one", &json!({}))?;
            let refused: remit::Result<()> = ctx.savepoint(|ctx| {
                ctx.audit("system:test", "backup.made", "two", &json!({}))?;
                Err(remit::Error::invalid("x", "refused"))
            });
            assert!(refused.is_err());
            ctx.audit("system:test", "backup.made", "three", &json!({}))?;
            Ok(())
        })
        .unwrap();
    // And across batches: the next batch starts from the file, not from memory.
    store
        .store
        .write(|ctx| ctx.audit("system:test", "backup.made", "four", &json!({})))
        .unwrap();
    let report = store.integrity();
    assert!(report.is_clean(), "{:?}", report.mismatches);
    let entities: Vec<String> = store
        .store
        .read(|c, _| {
            let mut stmt =
                c.prepare("SELECT entity FROM audit_log WHERE actor = 'system:test' ORDER BY seq")?;
            let rows = stmt
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok(rows)
        })
        .unwrap();
    assert_eq!(entities, ["one", "three", "four"]);
}

/// A result for `approved_payout`'s payout (KES 1,500 to PayBill 888880), naming the PayBill as
/// M-Pesa does (a B2B success a gateway sent must name its payee).
fn paybill_result(
    originator: &str,
    conversation: &str,
    code: serde_json::Value,
) -> serde_json::Value {
    json!({"Result": {"ResultType": 0, "ResultCode": code, "ResultDesc": "x",
        "OriginatorConversationID": originator, "ConversationID": conversation, "TransactionID": "TCE4K7PQ2M",
        "ResultParameters": {"ResultParameter": [{"Key": "TransactionAmount", "Value": 1500},
            {"Key": "TransactionReceipt", "Value": "TCE4K7PQ2M"},
            {"Key": "ReceiverPartyPublicName", "Value": "888880 - KENYA POWER"}]}}})
}

/// Guards against: a failure result posted while the payout was on its way to the simulator
/// (claimed, its answer not recorded) returned the money, and the payout still went out: paid
/// twice from one escrow.
#[test]
fn a_failure_for_a_payout_a_gateway_has_not_acknowledged_is_refused_and_moves_nothing() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let (escrow, request) = approved_payout(&app);
    // Handed to the gateway, whose answer never came: it may have been paid.
    let gateway = fixed(|| Err(GatewayError::Transport("connection reset".into())));
    assert!(run_worker_once(&app, &gateway));
    let (_, originator, _) = app.payout_ids(&request);
    let failure = paybill_result(&originator, "AG_20251125_0001", json!(2040));
    let r = app.post_mpesa_result(&failure);
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (409, Some("invalid_state")),
        "{}",
        r.text
    );
    let view = app.escrow(&escrow);
    assert_eq!(
        (&view["reservedUsdCents"], &view["remainingUsdCents"]),
        (&json!(1_000), &json!(9_000)),
        "the money stays reserved"
    );
    // Its real result is applied when it comes.
    let success = paybill_result(&originator, "AG_20251125_0001", json!(0));
    assert_eq!(app.post_mpesa_result(&success).status, 200);
    assert_eq!(
        app.wait_for_status(&request, &["paid"])["payout"]["mpesaReceipt"],
        "TCE4K7PQ2M"
    );
    app.assert_integrity();
}

/// Guards against: `"ResultCode": 0.0` (or `"0.0"`) was read as a failure code and returned the
/// money of a payout the same body said was paid with a receipt; a JSON body naming
/// `ResultCode` twice was applied by its last value.
#[test]
fn a_result_code_that_is_not_a_code_or_is_given_twice_never_returns_the_money() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let (escrow, request) = approved_payout(&app);
    let (_, originator, _) = app.payout_ids(&request);
    for code in [json!(0.0), json!("0.0"), json!("-0"), json!("")] {
        let r = app.post_mpesa_result(&paybill_result(&originator, "AG_1", code.clone()));
        assert_eq!(r.status, 200, "{code}: {}", r.text);
    }
    let twice = format!(
        r#"{{"Result": {{"ResultType": 0, "ResultCode": 0, "ResultCode": 2001, "ResultDesc": "x",
        "OriginatorConversationID": "{originator}", "ConversationID": "AG_1", "TransactionID": "TCE4K7PQ2M"}}}}"#
    );
    let r = app.raw(
        "POST",
        &format!("/webhooks/payouts/{CALLBACK_TOKEN}"),
        None,
        Some(("application/json", twice.as_bytes())),
        &[],
    );
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (400, Some("invalid_json")),
        "{}",
        r.text
    );
    let view = app
        .get(&format!("/payment-requests/{request}"), &app.admin)
        .body;
    assert_eq!(
        (view["status"].as_str(), view["payout"]["status"].as_str()),
        (Some("approved"), Some("queued")),
        "{view}"
    );
    assert_eq!(
        view["payout"]["flagged"], true,
        "an unknown outcome is flagged"
    );
    assert_eq!(app.escrow(&escrow)["reservedUsdCents"], 1_000);
    app.assert_integrity();
}

/// Guards against: a result naming one payout's OriginatorConversationID and another's
/// ConversationID was applied to whichever the lookup found first.
#[test]
fn a_result_whose_two_ids_name_different_payouts_is_applied_to_neither() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let (_, first) = approved_payout(&app);
    let (_, second) = approved_payout(&app);
    let (a, a_originator, _) = app.payout_ids(&first);
    let (b, _, _) = app.payout_ids(&second);
    for (id, conversation) in [(&a, "AG_A"), (&b, "AG_B")] {
        mark_sent(&app, id, conversation);
    }
    let crossed = paybill_result(&a_originator, "AG_B", json!(0));
    assert_eq!(app.post_mpesa_result(&crossed).status, 404);
    for request in [&first, &second] {
        let view = app
            .get(&format!("/payment-requests/{request}"), &app.admin)
            .body;
        assert_eq!(view["payout"]["status"], "sent", "{view}");
        assert_eq!(view["payout"]["flagged"], false, "{view}");
    }
    // Our id with a conversation that is none of ours: a second conversation under one
    // payout, maybe a second payment. Applied to nothing; the payout is flagged, and its own
    // result, when it comes, settles it without clearing that flag.
    let bogus = paybill_result(&a_originator, "AG_NOT_OURS", json!(0));
    assert_eq!(app.post_mpesa_result(&bogus).status, 200);
    // No failure from M-Pesa returns the money of a payout that may have been paid twice.
    let failed = paybill_result(&a_originator, "AG_A", json!(2001));
    assert_eq!(app.post_mpesa_result(&failed).status, 200);
    let view = app
        .get(&format!("/payment-requests/{first}"), &app.admin)
        .body;
    assert_eq!(view["payout"]["status"], "sent", "{view}");
    let right = paybill_result(&a_originator, "AG_A", json!(0));
    assert_eq!(app.post_mpesa_result(&right).status, 200);
    let view = app.wait_for_status(&first, &["paid"]);
    assert_eq!(view["payout"]["flagged"], true, "{view}");
    assert!(
        view["payout"]["flagReason"]
            .as_str()
            .unwrap()
            .starts_with("M-Pesa reported a result of another conversation under this payout's id"),
        "{view}"
    );
    app.assert_integrity();
}

/// Guards against: once a later flag was added to a payout's flag rather than put in its
/// place, a kept flag (a second conversation: maybe a second payment) that came after another
/// one (a success naming the wrong amount) no longer led the reason, where the rules that keep
/// it read it: M-Pesa's failure then returned the money and cleared both.
#[test]
fn a_kept_flag_that_comes_after_another_still_keeps_the_money() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let (escrow, request) = approved_payout(&app);
    let (payout, originator, _) = app.payout_ids(&request);
    mark_sent(&app, &payout, "AG_A");
    let mut wrong_amount = paybill_result(&originator, "AG_A", json!(0));
    wrong_amount["Result"]["ResultParameters"]["ResultParameter"][0]["Value"] = json!(1499);
    assert_eq!(app.post_mpesa_result(&wrong_amount).status, 200);
    let bogus = paybill_result(&originator, "AG_NOT_OURS", json!(0));
    assert_eq!(app.post_mpesa_result(&bogus).status, 200);
    let failed = paybill_result(&originator, "AG_A", json!(2001));
    assert_eq!(app.post_mpesa_result(&failed).status, 200);
    let view = app
        .get(&format!("/payment-requests/{request}"), &app.admin)
        .body;
    assert_eq!(view["payout"]["status"], "sent", "{view}");
    assert_eq!(view["payout"]["flagged"], true, "{view}");
    let reason = view["payout"]["flagReason"].as_str().unwrap();
    assert!(
        reason.starts_with("M-Pesa reported a result of another conversation")
            && reason.contains("; earlier: ")
            && reason.contains("1,499.00"),
        "{reason}"
    );
    assert_eq!(
        app.escrow(&escrow)["reservedUsdCents"],
        1_000,
        "the money stays reserved"
    );
    app.assert_integrity();
}

/// Guards against: a refusal of a retry was taken for the payout's failure and returned its
/// money, though the first attempt, whose answer was lost, may have paid.
#[test]
fn a_refused_retry_after_a_lost_answer_leaves_the_outcome_unknown() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let (escrow, request) = approved_payout(&app);
    let lost = fixed(|| Err(GatewayError::Transport("timed out".into())));
    assert!(run_worker_once(&app, &lost));
    let (payout, _, _) = app.payout_ids(&request);
    attempt_due_now(&app, &payout);
    let refused = fixed(|| {
        Err(GatewayError::Refused {
            code: "400.002.02".into(),
            message: "Bad Request - Invalid Remarks".into(),
        })
    });
    assert!(run_worker_once(&app, &refused));
    assert_eq!(refused.calls.load(Ordering::SeqCst), 1);
    let view = app.wait_for_payout_flag(&request);
    assert_eq!(view["status"], "approved", "{view}");
    assert_ne!(view["payout"]["status"], "failed", "{view}");
    assert_eq!(
        app.escrow(&escrow)["reservedUsdCents"],
        1_000,
        "the money stays reserved"
    );
    app.assert_integrity();
}

/// Guards against: a signed Stripe event naming `amount_received` twice was applied by its last
/// value, and an event with an empty id was taken (every later one then a "duplicate").
#[test]
fn a_stripe_event_with_a_key_twice_or_an_empty_id_is_refused() {
    let app = spawn_app();
    let escrow = app.pending_escrow(100, &["a"], None);
    let event = |id: &str, amounts: &str| {
        format!(
            r#"{{"id": "{id}", "object": "event", "type": "payment_intent.succeeded", "livemode": false,
            "data": {{"object": {{"id": "pi_twice", "object": "payment_intent", {amounts},
            "currency": "usd", "status": "succeeded", "metadata": {{"escrowId": "{escrow}"}}}}}}}}"#
        )
    };
    let twice = app.post_stripe(&event(
        "evt_twice",
        r#""amount_received": 100, "amount_received": 9000"#,
    ));
    assert_eq!(
        (twice.status, twice.body["code"].as_str()),
        (400, Some("invalid_json")),
        "{}",
        twice.text
    );
    let empty = app.post_stripe(&event("", r#""amount_received": 9000"#));
    assert_eq!(empty.status, 400, "{}", empty.text);
    assert_eq!(app.escrow(&escrow)["depositedUsdCents"], 0);
    let once = app.post_stripe(&event("evt_once", r#""amount_received": 9000"#));
    assert_eq!(once.status, 200, "{}", once.text);
    assert_eq!(app.escrow(&escrow)["depositedUsdCents"], 9_000);
}

/// Guards against: a failure held for Transaction Status (it came before the B2C answer) was
/// due to be asked about at once, but the answer then put the question off by
/// `REMIT_PAYOUT_STATUS_AFTER_S`, two minutes by default.
#[test]
fn a_failure_held_before_the_gateway_answered_is_still_asked_about_at_once() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let (_, request) = approved_payout(&app);
    let (payout, _, _) = app.payout_ids(&request);
    let id = remit::domain::PayoutId::parse(&payout).unwrap();
    let due = app
        .store
        .write(move |ctx| {
            remit::service::payouts::hold_failure(
                ctx,
                &id,
                "2001",
                "The initiator information is invalid.",
            )?;
            let held: String = ctx.conn.query_row(
                "SELECT status_query_due_at FROM payouts WHERE id = ?1",
                [&id],
                |r| r.get(0),
            )?;
            remit::service::payouts::mark_sent(ctx, &id, Some("AG_LATE"), Some(120))?;
            let after: String = ctx.conn.query_row(
                "SELECT status_query_due_at FROM payouts WHERE id = ?1",
                [&id],
                |r| r.get(0),
            )?;
            Ok((held, after))
        })
        .unwrap();
    assert_eq!(due.0, due.1, "still due when the failure came");
}

/// Guards against: a queue timeout whose body named no payout (its shape is documented
/// nowhere) was refused `400` and kept nowhere; the wire-format reference says to keep it as it
/// came and acknowledge it. A result in such a shape is still refused.
#[test]
fn a_queue_timeout_that_names_no_payout_is_kept_as_it_came_and_acknowledged() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let post = |query: &str, body: &[u8]| {
        app.raw(
            "POST",
            &format!("/webhooks/payouts/{CALLBACK_TOKEN}{query}"),
            None,
            Some(("application/json", body)),
            &[],
        )
    };
    let bodies: [&[u8]; 3] = [
        br#"{"Result": {"ResultType": 0, "ResultCode": 1, "ResultDesc": "The service request timed out."}}"#,
        br#"{"requestId": "11728-2929992-1", "errorCode": "500.001.1001", "errorMessage": "Timeout"}"#,
        b"request timed out",
    ];
    for body in bodies {
        let refused = post("", body);
        assert_eq!(refused.status, 400, "as a result: {}", refused.text);
        let kept = post("?timeout=1", body);
        assert_eq!(kept.status, 200, "{}", kept.text);
        assert_eq!(
            kept.body,
            json!({"ResultCode": 0, "ResultDesc": "Accepted"})
        );
    }
    // The same body again is counted, not kept twice.
    assert_eq!(post("?timeout=1", bodies[0]).status, 200);
    let kept: Vec<(i64, String)> = app
        .store
        .read(|c, _| {
            let mut rows = c.prepare(
                "SELECT deliveries, payload_enc FROM webhook_events
                 WHERE source = 'mpesa' AND outcome = 'unread' ORDER BY deliveries DESC",
            )?;
            let rows = rows
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .unwrap();
    assert_eq!(
        kept.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        [2, 1, 1],
        "one row a body"
    );
    assert!(
        kept.iter().all(|(_, sealed)| !sealed.contains("timed out")),
        "sealed under the key"
    );
    app.assert_integrity();
}

/// Guards against: a payout flagged while its outcome was unknown (a queue timeout) kept its
/// flag, "money stays reserved", after its real result paid it: senders saw a paid payout
/// flagged, and it stayed in the operator's flagged list with nothing left to resolve.
#[test]
fn the_result_that_settles_a_flagged_payout_clears_its_flag() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let (escrow, request) = approved_payout(&app);
    let (payout, originator, _) = app.payout_ids(&request);
    let timeout = app.raw(
        "POST",
        &format!("/webhooks/payouts/{CALLBACK_TOKEN}?timeout=1"),
        None,
        Some((
            "application/json",
            json!({"Result": {"ResultType": 0, "ResultCode": 1, "ResultDesc": "The service request timed out.",
                "OriginatorConversationID": originator, "ConversationID": "AG_1"}})
            .to_string()
            .as_bytes(),
        )),
        &[],
    );
    assert_eq!(timeout.status, 200, "{}", timeout.text);
    let flagged = app.wait_for_payout_flag(&request);
    assert_eq!(flagged["status"], "approved", "{flagged}");
    let listed = app.get("/payouts?status=flagged", &app.admin);
    assert!(listed.text.contains(&payout), "{}", listed.text);
    let paid = app.post_mpesa_result(&paybill_result(&originator, "AG_1", json!(0)));
    assert_eq!(paid.status, 200, "{}", paid.text);
    let view = app.wait_for_status(&request, &["paid"]);
    assert_eq!(
        (&view["payout"]["flagged"], &view["payout"]["flagReason"]),
        (&json!(false), &serde_json::Value::Null),
        "{view}"
    );
    let listed = app.get("/payouts?status=flagged", &app.admin);
    assert!(!listed.text.contains(&payout), "{}", listed.text);
    let audit = app.audit_lines_of(&escrow, &payout);
    let succeeded = audit
        .iter()
        .find(|l| l["action"] == "payout.succeeded")
        .expect("a payout.succeeded line");
    assert!(
        succeeded["details"]["flagCleared"]
            .as_str()
            .is_some_and(|r| r.contains("queue timeout")),
        "{succeeded}"
    );
    app.assert_integrity();
}

/// A gateway that would pay a second request of a B2B payout (no refusal of a repeated id):
/// counts its calls.
struct PaysEveryRequest(AtomicUsize);

impl Gateway for PaysEveryRequest {
    fn name(&self) -> &'static str {
        "daraja"
    }

    fn refuses_repeats(&self, command: remit::domain::PayoutCommand) -> bool {
        command == remit::domain::PayoutCommand::B2c
    }

    fn send(
        &self,
        _job: &PayoutJob,
        _urls: &CallbackUrls,
        _still_due: &dyn Fn() -> bool,
    ) -> Result<Ack, GatewayError> {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(Ack {
            conversation_id: format!("AG_TEST_{n}"),
        })
    }
}

/// Guards against: a B2B payout handed to M-Pesa whose answer was never recorded (a crash
/// after the call, a write that failed) was sent again on its retry time, and a gateway that
/// does not refuse a repeated B2B request would pay the bill twice. It is asked about instead.
#[test]
fn a_b2b_payout_called_before_is_never_called_again() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let escrow = app.active_escrow(100, &["a"]);
    let called = app.request(&escrow, "a", 1_500, "ACC-1");
    let fresh = app.request(&escrow, "a", 1_600, "ACC-2");
    for request in [&called, &fresh] {
        assert_eq!(app.approve(request).status, 200);
    }
    // As a crash right after the call leaves it: claimed once, still queued.
    let (payout, _, _) = app.payout_ids(&called);
    app.sql("UPDATE payouts SET attempts = 1 WHERE id = ?1", &[&payout]);
    let gateway = Arc::new(PaysEveryRequest(AtomicUsize::new(0)));
    let worker = app.worker(gateway.clone());
    while let Some(job) = worker.next_due().unwrap() {
        worker.process(job);
    }
    assert_eq!(
        gateway.0.load(Ordering::SeqCst),
        1,
        "only the fresh one is sent"
    );
    let view = app
        .get(&format!("/payment-requests/{called}"), &app.admin)
        .body;
    // Its outcome is unknown: with a gateway that cannot ask (this one), flagged for the
    // operator, its money reserved.
    assert_eq!(view["payout"]["status"], "sent", "{view}");
    assert_eq!(view["payout"]["flagged"], true, "{view}");
    assert!(
        view["payout"]["flagReason"]
            .as_str()
            .unwrap()
            .contains("not sent again"),
        "{view}"
    );
    assert_eq!(app.escrow(&escrow)["reservedUsdCents"], 2_067);
}

/// Guards against: M-Pesa reporting a success for a payout remit had already failed (its money
/// back in the escrow) was flagged, but the flag was not the operator's to clear (resolve said
/// "only a stuck payout"), and the sender could cancel the escrow and be refunded the money
/// M-Pesa had paid out. The escrow is not cancelled while one of its payouts is flagged; an
/// admin who has checked confirms the result the payout has, which clears the flag.
#[test]
fn a_payout_flagged_after_its_result_holds_the_refund_until_an_admin_confirms_it() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let (escrow, request) = approved_payout(&app);
    let gateway = fixed(|| {
        Ok(Ack {
            conversation_id: "AG_20251125_0002".into(),
        })
    });
    assert!(run_worker_once(&app, &gateway));
    let (payout, originator, _) = app.payout_ids(&request);
    let failure = paybill_result(&originator, "AG_20251125_0002", json!(2040));
    assert_eq!(app.post_mpesa_result(&failure).status, 200);
    app.wait_for_status(&request, &["failed"]);
    let success = paybill_result(&originator, "AG_20251125_0002", json!(0));
    assert_eq!(app.post_mpesa_result(&success).status, 200);
    let payout_view = |app: &TestApp| {
        app.get(&format!("/payment-requests/{request}"), &app.admin)
            .body["payout"]
            .clone()
    };
    let flagged = payout_view(&app);
    assert_eq!(
        (flagged["status"].as_str(), flagged["flagged"].as_bool()),
        (Some("failed"), Some(true)),
        "{flagged}"
    );
    let cancel = |app: &TestApp| {
        app.post(
            &format!("/escrows/{escrow}/cancel"),
            &app.sender,
            &json!({}),
        )
    };
    let refused = cancel(&app);
    assert_eq!(
        (refused.status, refused.body["code"].as_str()),
        (409, Some("invalid_state")),
        "{}",
        refused.text
    );
    assert!(refused.text.contains("flagged"), "{}", refused.text);
    // Nor is it paid out again meanwhile: an approval on the escrow waits too.
    let second = app.request(&escrow, "a", 1_500, "ACC2");
    let held = app.approve(&second);
    assert_eq!(held.status, 409, "{}", held.text);
    assert!(held.text.contains("flagged"), "{}", held.text);
    let metrics = app.raw("GET", "/metrics", None, None, &[]).text;
    assert!(
        metrics.contains("remit_payouts_flagged_with_result 1"),
        "{metrics}"
    );
    let before = app.escrow(&escrow);
    let resolve = |body: serde_json::Value| {
        app.post(&format!("/payouts/{payout}/resolve"), &app.admin, &body)
    };
    // Another outcome than the one it has is not applied here: its money has moved.
    let other = resolve(json!({"outcome": "paid", "receipt": "TCE4K7PQ2M"}));
    assert_eq!(other.status, 409, "{}", other.text);
    assert!(
        other.text.contains("confirming that result"),
        "{}",
        other.text
    );
    // A receipt of a paid payout's own is what confirms one; this one failed: confirmed failed
    // (once M-Pesa has reversed the payment it reported, or found the report false).
    // An admin's words would read as M-Pesa's beside its code: refused, not dropped.
    let worded = resolve(json!({"outcome": "failed", "reason": "reversed at M-Pesa, ref R42"}));
    assert_eq!(
        (worded.status, worded.body["field"].as_str()),
        (400, Some("reason")),
        "{}",
        worded.text
    );
    let confirmed = resolve(json!({"outcome": "failed"}));
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    let owner = app
        .get(&format!("/payment-requests/{request}"), &app.sender)
        .body;
    assert_ne!(
        owner["payout"]["resultDesc"], "reversed at M-Pesa, ref R42",
        "{owner}"
    );
    let now = app.escrow(&escrow);
    for field in ["remainingUsdCents", "reservedUsdCents", "spentUsdCents"] {
        assert_eq!(now[field], before[field], "no money moves: {field}");
    }
    let after = payout_view(&app);
    assert_eq!(
        (after["status"].as_str(), after["flagged"].as_bool()),
        (Some("failed"), Some(false)),
        "{after}"
    );
    let audit = app.get(&format!("/audit?entity={payout}"), &app.admin).body;
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|line| line["action"] == "payout.result_confirmed"),
        "{audit}"
    );
    assert_eq!(app.approve(&second).status, 200);
    app.wait_for_status(&second, &["approved", "paid", "failed"]);
    app.assert_integrity();
}

/// A payout queued before Stripe refunded its escrow's card deposit is not sent while the
/// escrow is flagged (approvals and the cancel wait too): it goes once an admin clears the flag.
#[test]
fn a_payout_queued_before_a_card_refund_waits_for_the_escrows_flag_to_be_cleared() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let escrow = app.pending_escrow(50, &["a"], None);
    let paid = json!({"id": "evt_paid", "object": "event", "type": "payment_intent.succeeded",
        "livemode": false, "data": {"object": {"id": "pi_q", "object": "payment_intent",
        "amount": 5_000, "amount_received": 5_000, "currency": "usd", "status": "succeeded",
        "metadata": {"escrowId": escrow}}}});
    assert_eq!(
        app.post_stripe(&paid.to_string()).body["outcome"],
        "deposit applied"
    );
    let request = app.request(&escrow, "a", 1_500, "ACC");
    assert_eq!(app.approve(&request).status, 200);
    let refunded = json!({"id": "evt_refund", "object": "event", "type": "charge.refunded",
        "livemode": false, "data": {"object": {"id": "ch_q", "object": "charge",
        "payment_intent": "pi_q", "amount": 5_000, "amount_refunded": 5_000, "refunded": true,
        "currency": "usd"}}});
    assert_eq!(app.post_stripe(&refunded.to_string()).status, 200);
    let gateway = fixed(|| {
        Ok(Ack {
            conversation_id: "AG_20261205_00000000000000000001".into(),
        })
    });
    assert!(
        !run_worker_once(&app, &gateway),
        "a payout of a flagged escrow was due"
    );
    assert_eq!(gateway.calls.load(Ordering::SeqCst), 0);
    // Nor is it claimed, should a worker have picked it just before the flag.
    let payout = app.payout_ids(&request).0;
    let claimed = app
        .store
        .write(move |ctx| {
            remit::service::payouts::claim(
                ctx,
                &remit::domain::PayoutId::parse(&payout)?,
                ctx.now + 60,
                "simulator",
            )
        })
        .unwrap();
    assert!(!claimed, "a payout of a flagged escrow was claimed");
    // Its view says why it waits, to its owners; not to another agent.
    let seen = app.get(&format!("/payment-requests/{request}"), &app.sender);
    assert_eq!(seen.body["payout"]["held"], true, "{}", seen.text);
    let other = app.new_user(remit::service::Role::Agent, "Kiosk 2", None);
    let seen = app.get(&format!("/payment-requests/{request}"), &other);
    assert_eq!(seen.body["payout"]["held"], false, "{}", seen.text);
    // So does the escrow's, to its sender and recipient (whose screens disable Approve and
    // Cancel with the reason): not to an agent.
    for (who, token) in [("sender", &app.sender), ("recipient", &app.recipient)] {
        let seen = app.get(&format!("/escrows/{escrow}"), token);
        assert_eq!(seen.body["held"], "card_refunded", "{who}: {}", seen.text);
    }
    let seen = app.get(&format!("/escrows/{escrow}"), &other);
    assert!(seen.body.get("held").is_none(), "{}", seen.text);
    // Said apart in /metrics: held for the operator, not waiting for M-Pesa.
    let metrics = app.raw("GET", "/metrics", None, None, &[]).text;
    assert!(metrics.contains("\nremit_payouts_held 1\n"), "{metrics}");
    assert!(
        metrics.contains("\nremit_payouts_queued_oldest_seconds 0\n"),
        "{metrics}"
    );
    let cleared = app.post(
        &format!("/escrows/{escrow}/clear-flag"),
        &app.admin,
        &json!({}),
    );
    assert_eq!(cleared.status, 200, "{}", cleared.text);
    let seen = app.get(&format!("/payment-requests/{request}"), &app.sender);
    assert_eq!(seen.body["payout"]["held"], false, "{}", seen.text);
    let seen = app.get(&format!("/escrows/{escrow}"), &app.sender);
    assert!(seen.body.get("held").is_none(), "{}", seen.text);
    assert!(run_worker_once(&app, &gateway));
    assert_eq!(gateway.calls.load(Ordering::SeqCst), 1);
    app.assert_integrity();
}

/// SQLite's virtual-machine steps of what `f` runs on `conn`, in hundreds (a progress handler
/// called every hundred).
fn vm_hundreds<T>(
    conn: &rusqlite::Connection,
    f: impl FnOnce() -> remit::Result<T>,
) -> remit::Result<(T, usize)> {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    conn.progress_handler(
        100,
        Some(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            false
        }),
    )?;
    let out = f();
    conn.progress_handler(0, None::<fn() -> bool>)?;
    Ok((out?, calls.load(Ordering::SeqCst)))
}

/// Guards against: the count of stuck payouts (`/metrics`), the count of payouts held with a
/// flagged escrow (`/metrics`) and the writer's sweep for `payout.stuck` (every 15 s) walked
/// every queued payout, which an M-Pesa outage makes as long as it lasts: 1.5 and 2.6 s on a
/// ledger with 370,000 queued, the sweep stopping every write as long. Found by their indexes
/// now, the same payouts.
#[test]
fn stuck_and_held_payouts_are_found_without_walking_the_queue() {
    use remit::service::payouts::{emit_stuck_due, held_count, stuck_count};
    use std::sync::atomic::AtomicBool;
    let t = crate::support::TestStore::new();
    let approved = AtomicUsize::new(0);
    t.approve_until(75, &AtomicBool::new(false), &approved);
    assert_eq!(approved.load(Ordering::SeqCst), 300, "queued payouts");
    // One queued payout flagged (stuck at once), one escrow flagged (its 75 payouts held).
    let (payout, escrow): (String, String) = t
        .store
        .read(|conn, _| {
            Ok(conn.query_row(
                "SELECT id, escrow_id FROM payouts WHERE status = 'queued' ORDER BY id LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)
        })
        .unwrap();
    t.store
        .write(move |ctx| {
            ctx.conn.execute(
                "UPDATE payouts SET flagged = 1, flag_reason = 'test' WHERE id = ?1",
                [&payout],
            )?;
            ctx.conn.execute(
                "UPDATE escrows SET flag_reason = 'test' WHERE id = ?1",
                [&escrow],
            )?;
            Ok(())
        })
        .unwrap();
    let now = remit::time::now_unix();
    let ((stuck, held), (stuck_steps, held_steps)) = t
        .store
        .read(|conn, _| {
            let (stuck, stuck_steps) = vm_hundreds(conn, || stuck_count(conn, 600, now))?;
            let (held, held_steps) = vm_hundreds(conn, || held_count(conn))?;
            Ok(((stuck, held), (stuck_steps, held_steps)))
        })
        .unwrap();
    assert_eq!((stuck, held), (1, 75));
    // Walking the 300 queued payouts takes thousands of steps; the indexes a few dozen (the
    // held count visits the flagged escrow's 75 requests and their payouts).
    assert!(
        stuck_steps < 2,
        "{stuck_steps} hundred steps to count the stuck"
    );
    assert!(
        held_steps < 20,
        "{held_steps} hundred steps to count the held"
    );
    let (emitted, sweep_steps) = t
        .store
        .write(|ctx| vm_hundreds(ctx.conn, || emit_stuck_due(ctx, 600)))
        .unwrap();
    assert_eq!(emitted, 1, "the flagged payout's event");
    assert!(sweep_steps < 5, "{sweep_steps} hundred steps to sweep");
}

/// Guards against: a sender's audit cursor was the last line's place in the escrow's log, and a
/// card payment refunded at Stripe before Stripe's success came joined the escrow's log with its
/// earlier line once the success came: the next page repeated a line (numbered anew) and hid
/// the refund's.
#[test]
fn a_senders_audit_pages_neither_repeat_nor_hide_a_line_when_a_deposit_joins_the_log() {
    let app = spawn_app();
    let escrow = app.pending_escrow(100, &["a"], None);
    let r = app.post_stripe(&crate::money_flow::stripe_refund(
        "evt_refund",
        "pi_early",
        1_000,
        1_000,
    ));
    assert_eq!(r.status, 200, "{}", r.text);
    let path = format!("/escrows/{escrow}/deposits");
    let r = app.post_with_key(&path, &app.agent, &json!({"amountUsd": 100}), "cash");
    assert_eq!(r.status, 201, "{}", r.text);
    let page = |cursor: &str| {
        let r = app.get(
            &format!("/audit?entity={escrow}&limit=2&cursor={cursor}"),
            &app.sender,
        );
        assert_eq!(r.status, 200, "{}", r.text);
        r.body
    };
    let first = page("");
    let actions = |body: &serde_json::Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| format!("{} {}", l["action"], l["entity"]))
            .collect()
    };
    let mut walked = actions(&first);
    // Stripe's success of the refunded payment: the deposit becomes the escrow's (flagged, its
    // money refunded), its earlier line with it.
    let r = app.post_stripe(&crate::money_flow::stripe_event(
        "evt_success",
        "pi_early",
        &escrow,
        1_000,
        "usd",
    ));
    assert_eq!(r.status, 200, "{}", r.text);
    let mut cursor = first["nextCursor"].as_str().unwrap().to_string();
    loop {
        let body = page(&cursor);
        walked.extend(actions(&body));
        match body["nextCursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    let mut seen = std::collections::HashSet::new();
    for line in &walked {
        assert!(seen.insert(line), "{line} twice in {walked:?}");
    }
    // Every line there was when the walk began, and every line written since, is walked.
    let admins = app.get(&format!("/audit?entity={escrow}"), &app.admin);
    let joined_before: Vec<String> = actions(&admins.body)
        .into_iter()
        .filter(|l| !walked.contains(l))
        .collect();
    assert!(
        joined_before.iter().all(|l| l.contains("deposit.refunded")),
        "not walked: {joined_before:?} of {}",
        admins.text
    );
}
