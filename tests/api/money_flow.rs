//! Money in and out over real HTTP: Stripe deposits with the real signature scheme, payouts
//! through the simulator and Daraja-shaped callbacks, each applied exactly once.

use crate::support::app::*;
use remit::wire::stripe::sign as sign_stripe;
use serde_json::{json, Value};
use std::sync::{Arc, Barrier};

pub(crate) fn stripe_event(
    event_id: &str,
    intent_id: &str,
    escrow_id: &str,
    cents: i64,
    currency: &str,
) -> String {
    json!({"id": event_id, "object": "event", "type": "payment_intent.succeeded", "livemode": false,
           "data": {"object": {"id": intent_id, "object": "payment_intent", "amount": cents, "amount_received": cents,
                               "currency": currency, "status": "succeeded", "metadata": {"escrowId": escrow_id}}}})
    .to_string()
}

/// A Stripe `charge.refunded` event of the PaymentIntent `intent` (its charge `ch_<intent>`):
/// `refunded` is Stripe's running total of the charge's refunds.
pub(crate) fn stripe_refund(event: &str, intent: &str, charged: i64, refunded: i64) -> String {
    json!({"id": event, "object": "event", "type": "charge.refunded", "livemode": false,
        "data": {"object": {"id": format!("ch_{intent}"), "object": "charge",
        "payment_intent": intent, "amount": charged, "amount_refunded": refunded,
        "refunded": refunded == charged, "currency": "usd"}}})
    .to_string()
}

/// A Stripe `charge.dispute.created` event of the PaymentIntent `intent`.
fn stripe_dispute(event: &str, intent: &str, cents: i64) -> String {
    json!({"id": event, "object": "event", "type": "charge.dispute.created",
        "livemode": false, "data": {"object": {"id": format!("dp_{intent}"), "object": "dispute",
        "payment_intent": intent, "charge": format!("ch_{intent}"), "amount": cents, "currency": "usd",
        "reason": "fraudulent", "status": "needs_response"}}})
    .to_string()
}

/// Posts a Stripe event signed now with the test secret; asserts it was taken (200) and that
/// its deposit was flagged, never applied.
fn post_flagged(app: &TestApp, body: &str, what: &str) {
    let r = post_stripe(
        app,
        body,
        &sign_stripe(STRIPE_SECRET, now(), body.as_bytes()),
    );
    assert_eq!(r.status, 200, "{what}: {}", r.text);
    assert!(
        r.body["outcome"]
            .as_str()
            .unwrap()
            .starts_with("deposit flagged"),
        "{what}: {}",
        r.text
    );
}

fn post_stripe(app: &TestApp, body: &str, header: &str) -> Resp {
    app.raw(
        "POST",
        "/webhooks/stripe",
        None,
        Some(("application/json", body.as_bytes())),
        &[("Stripe-Signature", header)],
    )
}

fn now() -> i64 {
    remit::time::now_unix()
}

/// A card payment refunded at Stripe after its escrow was cancelled, within what the cancel
/// left owed back to the sender, is how README says the operator returns it: recorded on the
/// deposit, nothing flagged (the cancelled escrow read "held: card_refunded" to its sender and
/// recipient, and waited in the operator's flags). A refund of more than that (money paid out
/// in Kenya, taken back from the card too) or a dispute is flagged as before.
#[test]
fn a_card_refund_that_returns_a_cancelled_escrows_money_flags_nothing() {
    let app = spawn_app();
    let cancel = |escrow: &str| {
        let r = app.post(
            &format!("/escrows/{escrow}/cancel"),
            &app.sender,
            &json!({}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
    };
    let escrow_view = |escrow: &str| app.get(&format!("/escrows/{escrow}"), &app.admin).body;
    // The webhook was taken (200) and its outcome says `words`.
    let said = |r: &Resp, words: &str| {
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(
            r.body["outcome"]
                .as_str()
                .unwrap_or_default()
                .contains(words),
            "{}",
            r.text
        );
    };
    // Part of a pending escrow paid by card, the escrow cancelled, the charge refunded in two
    // steps (Stripe's running total).
    let pending = app.pending_escrow(100, &["a"], None);
    let paid = app.post_stripe(&stripe_event("evt_c1", "pi_c1", &pending, 4_000, "usd"));
    assert_eq!(paid.status, 200, "{}", paid.text);
    // What went back to the card is on the escrow for its sender, once it is cancelled.
    let returned = |escrow: &str| {
        app.get(&format!("/escrows/{escrow}"), &app.sender).body["returnedToCardUsdCents"].clone()
    };
    assert_eq!(returned(&pending), Value::Null, "not cancelled");
    cancel(&pending);
    assert_eq!(escrow_view(&pending)["refundedUsdCents"], 4_000);
    assert_eq!(returned(&pending), 0);
    for (event, refunded) in [("evt_c1_r1", 1_000), ("evt_c1_r2", 4_000)] {
        let r = app.post_stripe(&stripe_refund(event, "pi_c1", 4_000, refunded));
        said(&r, "returning what its cancelled escrow owed");
        // Stripe's running total: the largest refund, not their sum.
        assert_eq!(returned(&pending), refunded);
    }
    let view = escrow_view(&pending);
    assert!(view.get("held").is_none(), "{view}");
    assert!(view.get("flagReason").is_none(), "{view}");
    let deposits = app.get("/deposits", &app.admin).body;
    let deposit = deposits["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["reference"] == "pi_c1")
        .cloned()
        .unwrap();
    assert_eq!(deposit["reversal"], "refunded", "{deposit}");

    // An escrow paid by card, a payment made from it, then cancelled: refunding the whole
    // charge takes back money that was spent.
    let spent = app.pending_escrow(50, &["a"], None);
    let paid = app.post_stripe(&stripe_event("evt_c2", "pi_c2", &spent, 5_000, "usd"));
    assert_eq!(paid.status, 200, "{}", paid.text);
    let request = app.request(&spent, "a", 1_500, "ACC");
    assert_eq!(app.approve(&request).status, 200);
    app.wait_for_status(&request, &["paid"]);
    cancel(&spent);
    let r = app.post_stripe(&stripe_refund("evt_c2_r", "pi_c2", 5_000, 5_000));
    said(&r, "flagged for the operator");
    assert_eq!(escrow_view(&spent)["held"], "card_refunded");
    // All of the charge went back to the card, more than the cancel owed: said as it is.
    assert_eq!(returned(&spent), 5_000);
    assert!(escrow_view(&spent)["refundedUsdCents"].as_i64().unwrap() < 5_000);

    // A dispute of a cancelled escrow's charge: flagged, whatever its amount.
    let disputed = app.pending_escrow(100, &["a"], None);
    for (event, intent, cents) in [("evt_c3", "pi_c3", 2_000), ("evt_c4", "pi_c4", 1_000)] {
        let paid = app.post_stripe(&stripe_event(event, intent, &disputed, cents, "usd"));
        assert_eq!(paid.status, 200, "{}", paid.text);
    }
    cancel(&disputed);
    let dispute = json!({"id": "evt_c3_d", "object": "event", "type": "charge.dispute.created",
        "livemode": false, "data": {"object": {"id": "dp_c3", "object": "dispute",
        "payment_intent": "pi_c3", "charge": "ch_pi_c3", "amount": 2_000, "currency": "usd",
        "reason": "fraudulent", "status": "needs_response"}}});
    let r = app.post_stripe(&dispute.to_string());
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        escrow_view(&disputed)["held"],
        "card_refunded",
        "{}",
        r.text
    );
    // Its flag cleared by an admin, a refund of its other card payment is not a plain return
    // either: the dispute took money back already.
    let r = app.post(
        &format!("/escrows/{disputed}/clear-flag"),
        &app.admin,
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app.post_stripe(&stripe_refund("evt_c4_r", "pi_c4", 1_000, 1_000));
    said(&r, "flagged for the operator");
    app.assert_integrity();
}

/// A refund that names no currency is read in its deposit's, and bounded as its dollars are:
/// one of 2^63 - 1 cents was taken as USD 92 quadrillion, and the next refund of the cancelled
/// escrow's other card payment overflowed the sum of its refunds: a 500 at every retry, never
/// recorded.
#[test]
fn a_refund_naming_no_currency_is_bounded_as_dollars() {
    let app = spawn_app();
    let escrow = app.pending_escrow(100, &["a"], None);
    for (event, intent, cents) in [("evt_n1", "pi_n1", 4_000), ("evt_n2", "pi_n2", 3_000)] {
        let paid = app.post_stripe(&stripe_event(event, intent, &escrow, cents, "usd"));
        assert_eq!(paid.status, 200, "{}", paid.text);
    }
    let r = app.post(
        &format!("/escrows/{escrow}/cancel"),
        &app.sender,
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let huge = json!({"id": "evt_n1_r", "object": "event", "type": "charge.refunded", "livemode": false,
        "data": {"object": {"id": "ch_pi_n1", "object": "charge", "payment_intent": "pi_n1",
        "amount": 4_000, "amount_refunded": i64::MAX, "refunded": false}}});
    let r = app.post_stripe(&huge.to_string());
    assert_eq!(r.status, 200, "{}", r.text);
    let view = app.get(&format!("/escrows/{escrow}"), &app.admin).body;
    let flag = view["flagReason"].as_str().unwrap_or_default();
    assert!(!flag.contains("92,233,720"), "{view}");
    let r = app.post_stripe(&stripe_refund("evt_n2_r", "pi_n2", 3_000, 3_000));
    assert_eq!(r.status, 200, "{}", r.text);
    app.assert_integrity();
}

/// An escrow's flag names every reversal the operator has not cleared: a refund of one card
/// payment that came after a dispute of another replaced the dispute's words, and an admin who
/// cleared the flag they read cleared the dispute unread (its USD 150 approvable again). A
/// dispute of a payment that was flagged and never applied is none of the escrow's money: a
/// refund of its cancel is still a plain return.
#[test]
fn an_escrows_flag_keeps_every_reversal_until_it_is_cleared() {
    let app = spawn_app();
    let taken = |r: Resp| assert_eq!(r.status, 200, "{}", r.text);
    let flag = |escrow: &str| {
        app.get(&format!("/escrows/{escrow}"), &app.admin).body["flagReason"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let escrow = app.pending_escrow(200, &["rent"], None);
    taken(app.post_stripe(&stripe_event("evt_f1", "pi_f1", &escrow, 15_000, "usd")));
    taken(app.post_stripe(&stripe_event("evt_f2", "pi_f2", &escrow, 5_000, "usd")));
    taken(app.post_stripe(&stripe_dispute("evt_f1_d", "pi_f1", 15_000)));
    let disputed = flag(&escrow);
    assert!(disputed.contains("disputed USD 150.00"), "{disputed}");
    taken(app.post_stripe(&stripe_refund("evt_f2_r1", "pi_f2", 5_000, 500)));
    let both = flag(&escrow);
    assert!(
        both.contains("disputed USD 150.00") && both.contains("refunded USD 5.00"),
        "{both}"
    );
    // Cleared with what was read before the refund: refused, the flag stays.
    let r = app.post(
        &format!("/escrows/{escrow}/clear-flag"),
        &app.admin,
        &json!({"flagReason": disputed}),
    );
    assert_eq!(r.status, 409, "{}", r.text);
    // A second refund of the same charge (Stripe's running total) replaces its own words only.
    taken(app.post_stripe(&stripe_refund("evt_f2_r2", "pi_f2", 5_000, 1_000)));
    let now_said = flag(&escrow);
    assert!(
        now_said.contains("disputed USD 150.00")
            && now_said.contains("refunded USD 10.00")
            && !now_said.contains("USD 5.00"),
        "{now_said}"
    );
    let r = app.post(
        &format!("/escrows/{escrow}/clear-flag"),
        &app.admin,
        &json!({"flagReason": now_said}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(flag(&escrow), "");

    // A payment after the escrow was funded is flagged, not applied; its dispute does not make
    // the refund of the cancelled escrow's own card payment anything but a return.
    let cancelled = app.pending_escrow(100, &["a"], None);
    taken(app.post_stripe(&stripe_event("evt_g1", "pi_g1", &cancelled, 6_000, "usd")));
    taken(app.post_stripe(&stripe_event("evt_g2", "pi_g2", &cancelled, 4_000, "usd")));
    post_flagged(
        &app,
        &stripe_event("evt_g3", "pi_g3", &cancelled, 1_000, "usd"),
        "a payment to a funded escrow",
    );
    taken(app.post_stripe(&stripe_dispute("evt_g3_d", "pi_g3", 1_000)));
    let r = app.post(
        &format!("/escrows/{cancelled}/cancel"),
        &app.sender,
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app.post_stripe(&stripe_refund("evt_g1_r", "pi_g1", 6_000, 3_000));
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.body["outcome"]
            .as_str()
            .unwrap_or_default()
            .contains("returning what its cancelled escrow owed"),
        "{}",
        r.text
    );
    assert_eq!(flag(&cancelled), "");
    app.assert_integrity();
}

#[test]
fn a_signed_stripe_event_deposits_once_and_activates_the_escrow() {
    let app = spawn_app();
    let escrow = app.pending_escrow(50, &["a"], None);
    let body = stripe_event("evt_1", "pi_1", &escrow, 5_000, "usd");
    let header = sign_stripe(STRIPE_SECRET, now(), body.as_bytes());
    let r = post_stripe(&app, &body, &header);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["outcome"], "deposit applied");
    let again = post_stripe(&app, &body, &header);
    assert_eq!(
        (again.status, again.body["outcome"].as_str()),
        (200, Some("duplicate"))
    );
    // The same PaymentIntent in a new event (Stripe may send both) deposits nothing more.
    let other_event = stripe_event("evt_2", "pi_1", &escrow, 5_000, "usd");
    let r = post_stripe(
        &app,
        &other_event,
        &sign_stripe(STRIPE_SECRET, now(), other_event.as_bytes()),
    );
    assert_eq!(r.body["outcome"], "deposit already recorded");
    let view = app.escrow(&escrow);
    assert_eq!(
        (view["status"].as_str(), view["depositedUsdCents"].as_i64()),
        (Some("active"), Some(5_000))
    );
    app.assert_integrity();
}

#[test]
fn stripe_signatures_that_do_not_verify_are_refused() {
    let app = spawn_app();
    let escrow = app.pending_escrow(50, &["a"], None);
    let body = stripe_event("evt_x", "pi_x", &escrow, 5_000, "usd");
    let t = now();
    let tampered = body.replace("5000", "9000");
    assert_eq!(
        post_stripe(
            &app,
            &tampered,
            &sign_stripe(STRIPE_SECRET, t, body.as_bytes())
        )
        .status,
        401
    );
    assert_eq!(
        post_stripe(
            &app,
            &body,
            &sign_stripe("remit_test_7f3a9c2e5b1d4f60", t, body.as_bytes())
        )
        .status,
        401,
        "secret without whsec_"
    );
    assert_eq!(
        post_stripe(
            &app,
            &format!("{body}\n"),
            &sign_stripe(STRIPE_SECRET, t, body.as_bytes())
        )
        .status,
        401,
        "trailing newline"
    );
    assert_eq!(
        post_stripe(
            &app,
            &body,
            &sign_stripe(STRIPE_SECRET, t - 301, body.as_bytes())
        )
        .status,
        401,
        "301 s old"
    );
    // A request signed for a moment ahead of our clock would be replayable until then. (The
    // clock read again: `t` is some requests old, and a second may have passed since.)
    assert_eq!(
        post_stripe(
            &app,
            &body,
            &sign_stripe(STRIPE_SECRET, now() + 400, body.as_bytes())
        )
        .status,
        401,
        "301 s ahead"
    );
    assert_eq!(post_stripe(&app, &body, "v1=abc").status, 400);
    let r = app.raw(
        "POST",
        "/webhooks/stripe",
        None,
        Some(("application/json", body.as_bytes())),
        &[],
    );
    assert_eq!(r.status, 400, "no header: {}", r.text);
    assert_eq!(app.escrow(&escrow)["depositedUsdCents"], 0);
    let unconfigured = spawn_app_with(|c| c.stripe_webhook_secret = None);
    assert_eq!(
        post_stripe(
            &unconfigured,
            &body,
            &sign_stripe(STRIPE_SECRET, t, body.as_bytes())
        )
        .status,
        401
    );
}

/// API.md: a route that takes a body answers `415` to anything but JSON, webhooks too; a
/// forged sender is told `401` first, whatever it sends.
#[test]
fn webhooks_take_json_only_and_a_forged_sender_is_refused_first() {
    let app = spawn_app();
    let escrow = app.pending_escrow(50, &["a"], None);
    let body = stripe_event("evt_ct", "pi_ct", &escrow, 5_000, "usd");
    let signed = sign_stripe(STRIPE_SECRET, now(), body.as_bytes());
    let send = |content_type: &str, signature: &str| {
        app.raw(
            "POST",
            "/webhooks/stripe",
            None,
            Some((content_type, body.as_bytes())),
            &[("Stripe-Signature", signature)],
        )
    };
    let r = send("text/plain", &signed);
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (415, Some("unsupported_media_type")),
        "{}",
        r.text
    );
    assert_eq!(
        send("application/x-www-form-urlencoded", &signed).status,
        415
    );
    assert_eq!(app.escrow(&escrow)["depositedUsdCents"], 0);
    let forged = sign_stripe(STRIPE_SECRET, now(), b"something else");
    assert_eq!(send("text/plain", &forged).status, 401);
    // Stripe's own header.
    let r = send("application/json; charset=utf-8", &signed);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.escrow(&escrow)["depositedUsdCents"], 5_000);

    let result = json!({"Result": {"ResultType": 0, "ResultCode": 0, "ResultDesc": "ok",
        "OriginatorConversationID": "unknown", "ConversationID": "AG_unknown", "TransactionID": "QWE1234567"}})
    .to_string();
    let callback = |path: &str, content_type: &str| {
        app.raw(
            "POST",
            path,
            None,
            Some((content_type, result.as_bytes())),
            &[],
        )
    };
    let path = format!("/webhooks/payouts/{CALLBACK_TOKEN}");
    let r = callback(&path, "text/xml");
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (415, Some("unsupported_media_type")),
        "{}",
        r.text
    );
    assert_eq!(
        callback("/webhooks/payouts/wrongtoken", "text/xml").status,
        401
    );
    assert_eq!(
        callback(&path, "application/json").status,
        404,
        "an unknown payout, read"
    );
}

#[test]
fn deposits_that_do_not_fit_are_flagged_never_applied() {
    let app = spawn_app();
    let escrow = app.pending_escrow(50, &["a"], None);
    for (event, intent, target, cents, currency) in [
        ("evt_eur", "pi_eur", escrow.as_str(), 5_000, "eur"),
        (
            "evt_unknown",
            "pi_unknown",
            "esc_01m8862jc5ndbthyz9teyn1fsa",
            5_000,
            "usd",
        ),
        ("evt_over", "pi_over", escrow.as_str(), 9_000, "usd"),
    ] {
        let body = stripe_event(event, intent, target, cents, currency);
        post_flagged(&app, &body, event);
    }
    let ignored =
        json!({"id": "evt_other", "type": "charge.refunded", "data": {"object": {}}}).to_string();
    let r = post_stripe(
        &app,
        &ignored,
        &sign_stripe(STRIPE_SECRET, now(), ignored.as_bytes()),
    );
    assert_eq!(
        (r.status, r.body["outcome"].as_str()),
        (200, Some("ignored"))
    );
    // Metadata naming two escrows, one by each spelling: neither is guessed (the first was
    // credited, the other never told).
    let other = app.pending_escrow(50, &["a"], None);
    let body = json!({"id": "evt_two", "object": "event", "type": "payment_intent.succeeded", "livemode": false,
        "data": {"object": {"id": "pi_two", "object": "payment_intent", "amount": 5_000, "amount_received": 5_000,
                            "currency": "usd", "status": "succeeded",
                            "metadata": {"escrowId": escrow, "escrow_id": other}}}})
    .to_string();
    post_flagged(&app, &body, "two escrows");
    let flagged = app.get("/deposits?status=flagged", &app.admin);
    assert!(
        flagged.text.contains("the metadata names two escrows"),
        "{}",
        flagged.text
    );
    assert_eq!(app.escrow(&escrow)["depositedUsdCents"], 0);
    assert_eq!(app.escrow(&other)["depositedUsdCents"], 0);
    // One spelling `null` names no escrow: the other is credited (it was flagged "names two
    // escrows" until 2026-12-07).
    let body = json!({"id": "evt_null", "object": "event", "type": "payment_intent.succeeded", "livemode": false,
        "data": {"object": {"id": "pi_null", "object": "payment_intent", "amount": 1_000, "amount_received": 1_000,
                            "currency": "usd", "status": "succeeded",
                            "metadata": {"escrowId": null, "escrow_id": other}}}})
    .to_string();
    let r = app.post_stripe(&body);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.escrow(&other)["depositedUsdCents"], 1_000);
    // The same PaymentIntent with white space around its id, in new events: one payment, not
    // three deposits (each spelling was credited again until 2026-12-07).
    for (event, intent) in [("evt_null_2", "pi_null "), ("evt_null_3", " pi_null\t")] {
        let body = stripe_event(event, intent, &other, 1_000, "usd");
        let r = app.post_stripe(&body);
        assert_eq!(r.status, 200, "{event}: {}", r.text);
    }
    assert_eq!(app.escrow(&other)["depositedUsdCents"], 1_000);
    app.assert_integrity();
}

#[test]
fn a_failing_account_fails_the_payout_and_returns_the_money_and_the_day() {
    let app = spawn_app();
    let escrow = app.pending_escrow(100, &["a"], Some(50));
    app.post(
        &format!("/escrows/{escrow}/deposits"),
        &app.agent,
        &json!({"amountUsd": 100, "reference": "c1"}),
    );
    let request = app.request(&escrow, "a", 6_000, FAIL_ACCOUNT);
    assert_eq!(app.approve(&request).status, 200);
    let failed = app.wait_for_status(&request, &["failed"]);
    assert_eq!(failed["payout"]["status"], "failed");
    assert_eq!(failed["payout"]["resultCode"], "SFC_IC0003");
    // Words for people beside M-Pesa's code: the payee's account, not the kiosk's settings.
    assert_eq!(failed["payout"]["failureReason"], "recipient_not_on_mpesa");
    assert!(failed["payout"]["failureText"]
        .as_str()
        .unwrap()
        .contains("The money is back in the escrow"));
    let view = app.escrow(&escrow);
    assert_eq!(
        (
            view["remainingUsdCents"].as_i64(),
            view["reservedUsdCents"].as_i64()
        ),
        (Some(10_000), Some(0))
    );
    assert_eq!(
        view["approvedTodayUsdCents"], 0,
        "the day's total is given back"
    );
    app.assert_integrity();
}

#[test]
fn a_phone_payout_goes_out_as_b2c() {
    let app = spawn_app();
    let escrow = app.active_escrow(100, &["a"]);
    let r = app.post("/payment-requests", &app.agent, &json!({"escrowId": escrow, "category": "a", "amountKes": 1500,
        "merchantName": "Mama Mboga", "merchantAccount": {"type": "phone", "number": "0722000111"}}));
    let id = r.body["paymentRequestId"].as_str().unwrap().to_string();
    app.approve(&id);
    let paid = app.wait_for_status(&id, &["paid"]);
    assert_eq!(paid["payout"]["method"], "b2c");
}

/// A phone listed in `REMIT_SIM_FAIL_ACCOUNTS` as a person writes it (`0722 000 333`) fails
/// whatever spelling the request used.
#[test]
fn a_failing_phone_is_matched_in_any_spelling() {
    let app = spawn_app_with(|c| c.sim_fail_accounts = vec!["0722 000 333".into()]);
    let escrow = app.active_escrow(100, &["a"]);
    let r = app.post("/payment-requests", &app.agent, &json!({"escrowId": escrow, "category": "a", "amountKes": 1500,
        "merchantName": "Mama Mboga", "merchantAccount": {"type": "phone", "number": "+254722000333"}}));
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["paymentRequestId"].as_str().unwrap().to_string();
    assert_eq!(app.approve(&id).status, 200);
    let failed = app.wait_for_status(&id, &["failed", "paid"]);
    assert_eq!(failed["status"], "failed", "{failed}");
}

#[test]
fn a_queue_timeout_keeps_the_money_reserved_until_an_admin_resolves_it() {
    let app = spawn_app_with(|c| c.payout_timeout_s = 1);
    let escrow = app.active_escrow(100, &["a"]);
    let request = app.request(&escrow, "a", 1_500, TIMEOUT_ACCOUNT);
    app.approve(&request);
    let flagged = app.wait_for_payout_flag(&request);
    assert_eq!(flagged["status"], "approved");
    assert!(flagged["payout"]["flagReason"]
        .as_str()
        .unwrap()
        .contains("queue timeout"));
    assert_eq!(app.escrow(&escrow)["reservedUsdCents"], 1_000);
    let stuck = app.get("/payouts?status=stuck", &app.admin);
    let (payout, _, _) = app.payout_ids(&request);
    assert!(
        stuck.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["payoutId"] == payout.as_str()),
        "{}",
        stuck.text
    );
    // Paid through M-Pesa, its receipt is one M-Pesa could have issued: a typo is refused.
    for receipt in ["AB", "TCE-11111", "TCE0000000", "TCE1111111TCE1111111X"] {
        let r = app.post(
            &format!("/payouts/{payout}/resolve"),
            &app.admin,
            &json!({"outcome": "paid", "receipt": receipt}),
        );
        assert_eq!(
            (r.status, r.body["field"].as_str()),
            (400, Some("receipt")),
            "{receipt}: {}",
            r.text
        );
    }
    // A reason is a failure's: with a payment it was dropped without a word, now refused; so
    // is a receipt with a failure.
    for (body, field) in [
        (
            json!({"outcome": "paid", "receipt": "TCE1111111", "reason": "Confirmed by phone"}),
            "reason",
        ),
        (
            json!({"outcome": "failed", "receipt": "TCE1111111"}),
            "receipt",
        ),
    ] {
        let r = app.post(&format!("/payouts/{payout}/resolve"), &app.admin, &body);
        assert_eq!(
            (r.status, r.body["field"].as_str()),
            (400, Some(field)),
            "{body}: {}",
            r.text
        );
    }
    let r = app.post(
        &format!("/payouts/{payout}/resolve"),
        &app.admin,
        &json!({"outcome": "failed", "reason": "Checked with Safaricom: no transaction"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "failed");
    let r = app.post(
        &format!("/payouts/{payout}/resolve"),
        &app.admin,
        &json!({"outcome": "paid", "receipt": "TCE1111111"}),
    );
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (409, Some("invalid_state")),
        "a settled payout is not resolved twice"
    );
    assert_eq!(app.escrow(&escrow)["remainingUsdCents"], 10_000);
    let audit = app.get(&format!("/audit?entity={escrow}"), &app.admin);
    assert!(audit.text.contains("payout.resolved") && audit.text.contains("payout.flagged"));
    // The admin's words stay with the payout, shown to admins; the signed chain keeps the
    // outcome (nothing typed by hand enters it).
    let resolved = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "payout.resolved")
        .unwrap();
    assert_eq!(
        resolved["details"],
        json!({"outcome": "failed", "token": &app.admin[..12]}),
        "{resolved}"
    );
    let kept = app.get(&format!("/payment-requests/{request}"), &app.admin);
    assert!(
        kept.text.contains("Checked with Safaricom: no transaction"),
        "{}",
        kept.text
    );
    let listed = app.get("/payouts?status=failed", &app.admin);
    assert_eq!(
        listed.body["items"][0]["resultDesc"], "Checked with Safaricom: no transaction",
        "{}",
        listed.text
    );
    // Guards against: the admin's words (which may name the payee) were kept in the clear in
    // the file; they are sealed as a request's note is.
    let payout_id = payout.clone();
    let (plain, sealed): (Option<String>, Option<String>) = app
        .store
        .read(move |c, _| {
            Ok(c.query_row(
                "SELECT result_desc, resolve_reason_enc FROM payouts WHERE id = ?1",
                [&payout_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)
        })
        .unwrap();
    assert_eq!(plain, None);
    assert!(
        sealed.as_deref().is_some_and(|s| !s.contains("Safaricom")),
        "{sealed:?}"
    );
    app.assert_integrity();
}

/// A request approved with the gateway switched off: queued, ready for hand-made callbacks.
/// A cancel refused because a payout is in flight is "not now": once the payout settles, the
/// same request with the same Idempotency-Key cancels the escrow (its `409` was stored and
/// replayed for 48 hours).
#[test]
fn a_cancel_refused_while_a_payout_is_in_flight_is_not_replayed_once_it_settles() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let (request, payout, _) = queued_payout(&app);
    let escrow = escrow_of(&app, &request);
    let cancel = || {
        app.raw(
            "POST",
            &format!("/escrows/{escrow}/cancel"),
            Some(&app.sender),
            Some(("application/json", b"{}")),
            &[("Idempotency-Key", "cancel-1")],
        )
    };
    let refused = cancel();
    assert_eq!(
        (refused.status, refused.body["code"].as_str()),
        (409, Some("invalid_state")),
        "{}",
        refused.text
    );
    let r = app.post(
        &format!("/payouts/{payout}/resolve"),
        &app.admin,
        &json!({"outcome": "failed", "reason": "Checked with Safaricom: no transaction"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let cancelled = cancel();
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    assert_eq!(cancelled.header("Idempotent-Replayed"), None);
    assert_eq!(app.escrow(&escrow)["status"], "cancelled");
    app.assert_integrity();
}

/// Guards against: a payout resolved as failed with a reason that is no text (an accent alone,
/// spaces) kept an empty description, which read as a reason given (and the confirmation of a
/// flagged failure took it for the admin's words): it is no reason, as one left out.
#[test]
fn a_failed_payouts_reason_that_draws_nothing_is_no_reason() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let mut described = Vec::new();
    for reason in [None, Some("\u{0301}"), Some("  \u{200D} ")] {
        let (_, payout, _) = queued_payout(&app);
        let body = match reason {
            Some(text) => json!({"outcome": "failed", "reason": text}),
            None => json!({"outcome": "failed"}),
        };
        let r = app.post(&format!("/payouts/{payout}/resolve"), &app.admin, &body);
        assert_eq!(r.status, 200, "{reason:?}: {}", r.text);
        let listed = app.get("/payouts?status=failed", &app.admin);
        let item = listed.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["payoutId"] == payout.as_str())
            .cloned()
            .unwrap_or_else(|| panic!("{payout}: {}", listed.text));
        described.push(item["resultDesc"].clone());
    }
    assert!(described[0].is_string(), "{described:?}");
    assert_eq!(described[1], described[0], "{described:?}");
    assert_eq!(described[2], described[0], "{described:?}");
    app.assert_integrity();
}

/// Whom M-Pesa paid, as its result names it (`ReceiverPartyPublicName`), is kept (sealed) and
/// shown beside the payee name the requester typed: a kiosk agent may type "Kenya Power" for a
/// phone of their own, and the sender saw only that (until 2026-12-07). Not shown to those who
/// do not see the request's payee name (another kiosk's agent).
#[test]
fn a_paid_payout_shows_the_payee_as_mpesa_names_it() {
    let app = spawn_app();
    let escrow = app.active_escrow(100, &["rent"]);
    let paybill = app.request(&escrow, "rent", 1_500, "12345");
    let asked = app.post(
        "/payment-requests",
        &app.agent,
        &json!({"escrowId": escrow, "category": "rent", "amountKes": 1_000, "merchantName": "Kenya Power",
                "merchantAccount": {"type": "phone", "number": "0799111222"}}),
    );
    assert_eq!(asked.status, 201, "{}", asked.text);
    let phone = asked.body["paymentRequestId"].as_str().unwrap().to_string();
    for request in [&paybill, &phone] {
        assert_eq!(app.approve(request).status, 200);
        app.wait_for_status(request, &["paid"]);
    }
    let named = |request: &str, token: &str| -> Value {
        let r = app.get(&format!("/payment-requests/{request}"), token);
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["payout"]["mpesaPayeeName"].clone()
    };
    assert_eq!(named(&paybill, &app.sender), "888880 - SIMULATED PAYEE");
    assert_eq!(named(&phone, &app.sender), "254799111222 - SIMULATED PAYEE");
    assert_eq!(named(&phone, &app.agent), "254799111222 - SIMULATED PAYEE");
    let other = app.post(
        "/users",
        &app.admin,
        &json!({"role": "agent", "name": "Another kiosk"}),
    );
    let other = other.body["token"].as_str().unwrap();
    assert_eq!(named(&phone, other), Value::Null);
    let (payout, _, _) = app.payout_ids(&phone);
    let r = app.get("/payouts?status=succeeded", &app.admin);
    let listed = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["payoutId"] == payout.as_str())
        .unwrap_or_else(|| panic!("{payout} not in {}", r.text));
    assert_eq!(listed["mpesaPayeeName"], "254799111222 - SIMULATED PAYEE");
    // Sealed in the file, as every name.
    let (payout, _, _) = app.payout_ids(&paybill);
    let kept: String = app
        .store
        .read(move |c, _| {
            Ok(c.query_row(
                "SELECT payee_name_enc FROM payouts WHERE id = ?1",
                [&payout],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert!(
        kept.starts_with("v1.") && !kept.contains("SIMULATED"),
        "{kept}"
    );
    app.assert_integrity();
}

/// M-Pesa's words are kept as a line of text: control characters (an escape, a line break) and
/// characters that show as nothing or turn the text around as spaces, at most 120 characters.
/// And an admin's resolve of a payout as paid names no payee: M-Pesa's result with the same
/// receipt, coming after it, does (until 2026-12-07 it was dropped as a duplicate, its name
/// with it).
#[test]
fn the_payee_mpesa_names_is_kept_as_one_line_of_text() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let (request, payout, originator) = queued_payout(&app);
    let resolved = app.post(
        &format!("/payouts/{payout}/resolve"),
        &app.admin,
        &json!({"outcome": "paid", "receipt": "TCE4K7PQ2M"}),
    );
    assert_eq!(resolved.status, 200, "{}", resolved.text);
    let paid = app.wait_for_status(&request, &["paid"]);
    assert_eq!(paid["payout"]["mpesaPayeeName"], Value::Null);
    let mut body = b2c_success(&originator, "TCE4K7PQ2M", 1_500);
    let long = "X".repeat(300);
    body["Result"]["ResultParameters"]["ResultParameter"]
        .as_array_mut()
        .unwrap()
        .push(json!({"Key": "ReceiverPartyPublicName",
                     "Value": format!("888880 -\u{1b}[31m KENYA\u{202e}\u{200b}\nPOWER {long}")}));
    assert_eq!(app.post_mpesa_result(&body).status, 200);
    let paid = app
        .get(&format!("/payment-requests/{request}"), &app.sender)
        .body;
    let name = paid["payout"]["mpesaPayeeName"].as_str().unwrap();
    assert!(name.starts_with("888880 - [31m KENYA POWER XXX"), "{name}");
    assert_eq!(name.chars().count(), 120, "{name}");
}

fn queued_payout(app: &TestApp) -> (String, String, String) {
    let escrow = app.active_escrow(100, &["a"]);
    let request = app.request(&escrow, "a", 1_500, "ACC");
    assert_eq!(app.approve(&request).status, 200);
    let (payout, originator, _) = app.payout_ids(&request);
    (request, payout, originator)
}

fn b2c_success(originator: &str, receipt: &str, kes: i64) -> Value {
    json!({"Result": {"ResultType": 0, "ResultCode": 0, "ResultDesc": "The service request is processed successfully.",
        "OriginatorConversationID": originator, "ConversationID": "AG_20251125_0001", "TransactionID": receipt,
        "ResultParameters": {"ResultParameter": [{"Key": "TransactionAmount", "Value": kes}, {"Key": "TransactionReceipt", "Value": receipt}]},
        "ReferenceData": {"ReferenceItem": {"Key": "QueueTimeoutURL", "Value": "https://x"}}}})
}

#[test]
fn twenty_identical_callbacks_at_once_settle_once() {
    let app = Arc::new(spawn_app_with(|c| {
        c.gateway = remit::config::GatewayKind::None
    }));
    let (request, _, originator) = queued_payout(&app);
    let body = b2c_success(&originator, "TCE4K7PQ2M", 1_500);
    let barrier = Arc::new(Barrier::new(20));
    let handles: Vec<_> = (0..20)
        .map(|_| {
            let (app, barrier, body) = (Arc::clone(&app), Arc::clone(&barrier), body.clone());
            std::thread::spawn(move || {
                barrier.wait();
                // Unauthenticated senders share a quarter of the workers: a burst may be told
                // `503 busy` (safe to retry), and is sent again as a caller would.
                for _ in 0..100 {
                    let r = app.post_mpesa_result(&body);
                    if r.status != 503 {
                        return (r.status, r.body.clone());
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                panic!("busy for a whole second");
            })
        })
        .collect();
    for (status, body) in handles.into_iter().map(|h| h.join().unwrap()) {
        assert_eq!(status, 200);
        assert_eq!(body, json!({"ResultCode": 0, "ResultDesc": "Accepted"}));
    }
    let paid = app.wait_for_status(&request, &["paid"]);
    assert_eq!(paid["payout"]["mpesaReceipt"], "TCE4K7PQ2M");
    let (journal, deliveries): (i64, i64) = app
        .store
        .read(|c, _| {
            Ok((
                c.query_row(
                    "SELECT COUNT(*) FROM ledger_transactions WHERE kind = 'payout_succeeded'",
                    [],
                    |r| r.get(0),
                )?,
                c.query_row(
                    "SELECT SUM(deliveries) FROM webhook_events WHERE source = 'mpesa'",
                    [],
                    |r| r.get(0),
                )?,
            ))
        })
        .unwrap();
    assert_eq!(
        (journal, deliveries),
        (1, 20),
        "one settlement, every delivery recorded"
    );
    app.assert_integrity();
}

#[test]
fn a_different_outcome_after_settlement_is_flagged_never_applied() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let (request, _, originator) = queued_payout(&app);
    assert_eq!(
        app.post_mpesa_result(&b2c_success(&originator, "TCE4K7PQ2M", 1_500))
            .status,
        200
    );
    let failure = json!({"Result": {"ResultType": 0, "ResultCode": 1, "ResultDesc": "The balance is insufficient for the transaction.",
        "OriginatorConversationID": originator, "ConversationID": "AG_20251125_0001", "TransactionID": "TCE0000000"}});
    assert_eq!(app.post_mpesa_result(&failure).status, 200);
    let view = app
        .get(&format!("/payment-requests/{request}"), &app.admin)
        .body;
    assert_eq!(
        (view["status"].as_str(), view["payout"]["flagged"].as_bool()),
        (Some("paid"), Some(true))
    );
    app.assert_integrity();
}

#[test]
fn a_completed_transaction_status_without_a_readable_amount_is_flagged_not_applied() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let (request, _, originator) = queued_payout(&app);
    let escrow = escrow_of(&app, &request);
    // A Transaction Status result, recognised by the original id among its parameters, that
    // says Completed but names no Amount.
    let status = json!({"Result": {"ResultType": 0, "ResultCode": 0, "ResultDesc": "ok",
        "OriginatorConversationID": "q-1", "ConversationID": "AG_STATUS_1", "TransactionID": "TCE4K7PQ2S",
        "ResultParameters": {"ResultParameter": [
            {"Key": "OriginatorConversationID", "Value": originator},
            {"Key": "TransactionStatus", "Value": "Completed"},
            {"Key": "ReceiptNo", "Value": "TCE4K7PQ2S"}]}}});
    let r = app.post_mpesa_result(&status);
    assert_eq!(r.status, 200, "{}", r.text);
    let view = app
        .get(&format!("/payment-requests/{request}"), &app.admin)
        .body;
    assert_eq!(
        (view["status"].as_str(), &view["payout"]["flagged"]),
        (Some("approved"), &json!(true)),
        "{view}"
    );
    assert!(view["payout"]["flagReason"]
        .as_str()
        .unwrap()
        .contains("amount could not be read"));
    assert_eq!(app.escrow(&escrow)["reservedUsdCents"], 1_000);
    app.assert_integrity();
}

#[test]
fn a_late_timeout_or_unknown_outcome_for_a_settled_payout_changes_nothing() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let (paid, paid_payout, paid_originator) = queued_payout(&app);
    assert_eq!(
        app.post_mpesa_result(&b2c_success(&paid_originator, "TCE4K7PQ2M", 1_500))
            .status,
        200
    );
    app.wait_for_status(&paid, &["paid"]);
    let (failed, failed_payout, failed_originator) = queued_payout(&app);
    let failure = json!({"Result": {"ResultType": 0, "ResultCode": 2001, "ResultDesc": "The initiator information is invalid.",
        "OriginatorConversationID": failed_originator, "ConversationID": "AG_20251125_0002", "TransactionID": "TCE0000000"}});
    assert_eq!(app.post_mpesa_result(&failure).status, 200);
    app.wait_for_status(&failed, &["failed"]);
    let settled = [
        (&paid, &paid_payout, &paid_originator, "paid"),
        (&failed, &failed_payout, &failed_originator, "failed"),
    ];
    let before: Vec<_> = settled
        .iter()
        .map(|(request, payout, _, _)| {
            let escrow = escrow_of(&app, request);
            (app.escrow(&escrow), app.audit_lines_of(&escrow, payout))
        })
        .collect();
    for (request, _, originator, _) in &settled {
        let late = |code: i64, result_type: i64| {
            json!({"Result": {"ResultType": result_type, "ResultCode": code, "ResultDesc": "late",
                "OriginatorConversationID": originator, "ConversationID": "AG_LATE", "TransactionID": "TCE0000000"}})
        };
        let queue_timeout = app.raw(
            "POST",
            &format!("/webhooks/payouts/{CALLBACK_TOKEN}?timeout=1"),
            None,
            Some(("application/json", late(1, 0).to_string().as_bytes())),
            &[],
        );
        for r in [
            queue_timeout,
            app.post_mpesa_result(&late(15, 0)),
            app.post_mpesa_result(&late(0, 1)),
        ] {
            assert_eq!(r.status, 200, "{request}: {}", r.text);
            assert_eq!(r.body, json!({"ResultCode": 0, "ResultDesc": "Accepted"}));
        }
    }
    // A success without a receipt says nothing new of a paid payout.
    let no_receipt = json!({"Result": {"ResultType": 0, "ResultCode": 0, "ResultDesc": "ok",
        "OriginatorConversationID": paid_originator, "ConversationID": "AG_LATE",
        "ResultParameters": {"ResultParameter": [{"Key": "TransactionAmount", "Value": 1500}]}}});
    assert_eq!(app.post_mpesa_result(&no_receipt).status, 200);
    let flagged = app.get("/payouts?status=flagged", &app.admin);
    assert_eq!(flagged.status, 200, "{}", flagged.text);
    for ((request, payout, _, status), (escrow_before, audit_before)) in settled.iter().zip(&before)
    {
        assert!(
            !flagged.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["payoutId"] == payout.as_str()),
            "{payout} is not flagged: {}",
            flagged.text
        );
        let view = app
            .get(&format!("/payment-requests/{request}"), &app.admin)
            .body;
        assert_eq!(
            (view["status"].as_str(), &view["payout"]["flagged"]),
            (Some(*status), &json!(false)),
            "{view}"
        );
        let escrow = escrow_of(&app, request);
        assert_eq!(
            &app.escrow(&escrow),
            escrow_before,
            "the money did not move"
        );
        assert_eq!(
            &app.audit_lines_of(&escrow, payout),
            audit_before,
            "no audit line about {payout}"
        );
    }
    app.assert_integrity();
}

#[test]
fn an_amount_that_differs_from_the_payout_is_flagged_not_applied() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let (request, _, originator) = queued_payout(&app);
    assert_eq!(
        app.post_mpesa_result(&b2c_success(&originator, "TCE4K7PQ2M", 9_999))
            .status,
        200
    );
    let view = app
        .get(&format!("/payment-requests/{request}"), &app.admin)
        .body;
    assert_eq!(
        (view["status"].as_str(), view["payout"]["flagged"].as_bool()),
        (Some("approved"), Some(true))
    );
    assert!(view["payout"]["flagReason"]
        .as_str()
        .unwrap()
        .contains("result names KES 9,999.00 but the payout is KES 1,500.00"));
    // A later flag (M-Pesa's queue timeout, posted twice) is added to it, once, not put in its
    // place: the operator still reads that a result named another amount.
    for _ in 0..2 {
        let timeout = json!({"Result": {"ResultType": 0, "ResultCode": 1, "ResultDesc": "late",
            "OriginatorConversationID": originator, "ConversationID": "AG_LATE", "TransactionID": "TCE0000000"}});
        let r = app.raw(
            "POST",
            &format!("/webhooks/payouts/{CALLBACK_TOKEN}?timeout=1"),
            None,
            Some(("application/json", timeout.to_string().as_bytes())),
            &[],
        );
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let reason = app
        .get(&format!("/payment-requests/{request}"), &app.admin)
        .body["payout"]["flagReason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.contains("result names KES 9,999.00 but the payout is KES 1,500.00"),
        "{reason}"
    );
    assert_eq!(reason.matches("; then: ").count(), 1, "{reason}");
    assert!(reason.contains("queue timeout"), "{reason}");
    app.assert_integrity();
}

/// The escrow of a payment request.
fn escrow_of(app: &TestApp, request: &str) -> String {
    let view = app
        .get(&format!("/payment-requests/{request}"), &app.admin)
        .body;
    view["escrowId"].as_str().unwrap().to_string()
}

/// A result a few cents off the payout is flagged, and the flag says both amounts to the cent:
/// before, it read "result names KES 1500 but the payout is KES 1500".
#[test]
fn a_result_cents_off_the_payout_is_flagged_naming_both_amounts_to_the_cent() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let (request, _, originator) = queued_payout(&app);
    let mut result = b2c_success(&originator, "TCE4K7PQ2R", 1_500);
    result["Result"]["ResultParameters"]["ResultParameter"][0]["Value"] =
        serde_json::from_str("1500.4").unwrap();
    assert_eq!(app.post_mpesa_result(&result).status, 200);
    let view = app
        .get(&format!("/payment-requests/{request}"), &app.admin)
        .body;
    assert_eq!(
        (&view["status"], &view["payout"]["flagged"]),
        (&json!("approved"), &json!(true)),
        "{view}"
    );
    assert_eq!(
        view["payout"]["flagReason"],
        "result names KES 1,500.40 but the payout is KES 1,500.00"
    );
}

#[test]
fn a_success_whose_amount_is_missing_or_unreadable_is_flagged_not_applied() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let cases = [
        ("TCE4K7PQ2M", None),
        ("TCE4K7PQ2N", Some(json!("1,500"))),
        ("TCE4K7PQ2P", Some(json!("KES 1500"))),
        ("TCE4K7PQ2Q", Some(json!(null))),
    ];
    for (receipt, amount) in cases {
        let (request, _, originator) = queued_payout(&app);
        let escrow = escrow_of(&app, &request);
        let mut result = json!({"ResultType": 0, "ResultCode": 0,
            "OriginatorConversationID": originator, "ConversationID": "AG_X", "TransactionID": receipt});
        if let Some(value) = amount.clone() {
            result["ResultParameters"] =
                json!({"ResultParameter": [{"Key": "TransactionAmount", "Value": value}]});
        }
        let r = app.post_mpesa_result(&json!({ "Result": result }));
        assert_eq!(r.status, 200, "{amount:?}: {}", r.text);
        assert_eq!(r.body, json!({"ResultCode": 0, "ResultDesc": "Accepted"}));
        let view = app
            .get(&format!("/payment-requests/{request}"), &app.admin)
            .body;
        assert_eq!(view["status"], "approved", "{amount:?}: not applied");
        assert_ne!(view["payout"]["status"], "succeeded", "{amount:?}");
        assert_eq!(view["payout"]["flagged"], true, "{amount:?}");
        assert!(
            view["payout"]["flagReason"]
                .as_str()
                .unwrap()
                .contains("amount could not be read"),
            "{amount:?}: {view}"
        );
        let escrow = app.escrow(&escrow);
        assert_eq!(
            (&escrow["reservedUsdCents"], &escrow["spentUsdCents"]),
            (&json!(1_000), &json!(0)),
            "{amount:?}: the money stays reserved"
        );
    }
    // The real result, naming the amount, is still applied.
    let (request, _, originator) = queued_payout(&app);
    let forged = json!({"Result": {"ResultType": 0, "ResultCode": 0,
        "OriginatorConversationID": originator, "ConversationID": "AG_X", "TransactionID": "TCE4K7PQ2R"}});
    assert_eq!(app.post_mpesa_result(&forged).status, 200);
    assert_eq!(
        app.post_mpesa_result(&b2c_success(&originator, "TCE4K7PQ2R", 1_500))
            .status,
        200
    );
    assert_eq!(
        app.wait_for_status(&request, &["paid"])["payout"]["mpesaReceipt"],
        "TCE4K7PQ2R"
    );
    app.assert_integrity();
}

#[test]
fn a_b2b_failure_with_a_single_object_result_parameter_fails_the_payout() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let (request, _, originator) = queued_payout(&app);
    let body = json!({"Result": {"ResultType": 0, "ResultCode": 2001, "ResultDesc": "The initiator information is invalid.",
        "OriginatorConversationID": originator, "ConversationID": "AG_20250314_2010e6b1c9d4a7f2b038", "TransactionID": "TCE0000000",
        "ResultParameters": {"ResultParameter": {"Key": "BOCompletedTime", "Value": 20250314103902_i64}},
        "ReferenceData": {"ReferenceItem": {"Key": "QueueTimeoutURL", "Value": "https://x"}}}});
    assert_eq!(app.post_mpesa_result(&body).status, 200);
    let view = app.wait_for_status(&request, &["failed"]);
    assert_eq!(
        view["payout"]["resultDesc"],
        "The initiator information is invalid."
    );
    app.assert_integrity();
}

#[test]
fn an_stk_callback_settles_on_its_checkout_request_id_and_the_mpesa_alias_works() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let (request, payout, _) = queued_payout(&app);
    // A gateway that used STK would have stored the CheckoutRequestID as the conversation id.
    let id = payout.clone();
    app.store
        .write(move |ctx| {
            remit::service::payouts::mark_sent(
                ctx,
                &remit::domain::PayoutId::parse(&id).unwrap(),
                Some("ws_CO_14032025102455123712345678"),
                None,
            )
        })
        .unwrap();
    let body = json!({"Body": {"stkCallback": {"MerchantRequestID": "4e1c", "CheckoutRequestID": "ws_CO_14032025102455123712345678",
        "ResultCode": 0, "ResultDesc": "The service request is processed successfully.",
        "CallbackMetadata": {"Item": [{"Name": "Amount", "Value": 1500.00}, {"Name": "MpesaReceiptNumber", "Value": "TCE5N8QW3R"},
            {"Name": "Balance"}, {"Name": "TransactionDate", "Value": 20250314102512_i64}, {"Name": "PhoneNumber", "Value": 254712345678_i64}]}}}});
    let r = app.raw(
        "POST",
        &format!("/webhooks/mpesa/{CALLBACK_TOKEN}"),
        None,
        Some(("application/json", body.to_string().as_bytes())),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let view = app.wait_for_status(&request, &["paid"]);
    assert_eq!(view["payout"]["mpesaReceipt"], "TCE5N8QW3R");
}

#[test]
fn a_wrong_token_is_401_and_an_unknown_id_is_404() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let (request, _, originator) = queued_payout(&app);
    let body = b2c_success(&originator, "TCE4K7PQ2M", 1_500);
    let wrong = app.raw(
        "POST",
        "/webhooks/payouts/00000000000000000000000000000000",
        None,
        Some(("application/json", body.to_string().as_bytes())),
        &[],
    );
    assert_eq!(wrong.status, 401);
    let unknown = app.post_mpesa_result(&b2c_success(
        "ffffffffffffffffffffffffffffffff",
        "TCE9999999",
        1_500,
    ));
    assert_eq!(unknown.status, 404);
    let garbage = app.raw(
        "POST",
        &format!("/webhooks/payouts/{CALLBACK_TOKEN}"),
        None,
        Some(("application/json", b"{\"nope\": 1}")),
        &[],
    );
    assert_eq!(garbage.status, 400);
    assert_eq!(
        app.get(&format!("/payment-requests/{request}"), &app.admin)
            .body["status"],
        "approved"
    );
    app.assert_integrity();
}

/// An escrow that completes (everything spent) can pay no request still waiting for approval:
/// those are cancelled with it, as with a cancelled escrow, rather than left pending until
/// they expire (approving one was a puzzling `409 escrow is completed`).
#[test]
fn requests_waiting_on_an_escrow_that_completes_are_cancelled_with_it() {
    let app = spawn_app();
    let escrow = app.active_escrow(10, &["a"]);
    let all = app.request(&escrow, "a", 1_500, "ALL");
    let waiting = app.request(&escrow, "a", 100, "LATER");
    assert_eq!(app.approve(&all).status, 200);
    app.wait_for_status(&all, &["paid"]);
    assert_eq!(app.escrow(&escrow)["status"], "completed");
    let view = app
        .get(&format!("/payment-requests/{waiting}"), &app.sender)
        .body;
    assert_eq!(view["status"], "cancelled", "{view}");
    let lines = app.audit_lines_of(&escrow, &waiting);
    let last = lines.last().unwrap();
    assert_eq!(
        (&last["action"], &last["details"]["reason"], &last["actor"]),
        (
            &json!("payment_request.cancelled"),
            &json!("escrow completed"),
            &json!("system:escrows")
        ),
        "{lines:?}"
    );
    let admins = app
        .get(&format!("/payment-requests/{waiting}"), &app.admin)
        .body;
    assert_eq!(admins["decidedBy"], Value::Null, "{admins}");
    // The request says why, to those who see its reason.
    for token in [&app.sender, &app.agent] {
        let view = app.get(&format!("/payment-requests/{waiting}"), token).body;
        assert!(
            view["reason"].as_str().unwrap().contains("fully spent"),
            "{view}"
        );
    }
    let r = app.approve(&waiting);
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (409, Some("invalid_state")),
        "{}",
        r.text
    );
    app.assert_integrity();
}

/// A `payment_intent.succeeded` event credits what was collected, and only for an object that
/// is a succeeded PaymentIntent: no `amount_received` (only the `amount` asked for) credits
/// nothing; a `processing` intent or a `charge` is a flagged deposit, never a balance.
#[test]
fn a_stripe_event_credits_only_what_a_succeeded_payment_intent_collected() {
    let app = spawn_app();
    let escrow = app.pending_escrow(50, &["a"], None);
    let send = |id: &str, object: Value| {
        let body = json!({"id": id, "object": "event", "type": "payment_intent.succeeded",
            "livemode": false, "data": {"object": object}})
        .to_string();
        let r = app.post_stripe(&body);
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["outcome"].as_str().unwrap_or_default().to_string()
    };
    let asked_only = send(
        "evt_asked",
        json!({"id": "pi_asked", "object": "payment_intent", "amount": 5_000, "currency": "usd",
               "status": "succeeded", "metadata": {"escrowId": escrow}}),
    );
    assert_eq!(asked_only, "refused: no readable amount_received");
    let processing = send(
        "evt_processing",
        json!({"id": "pi_processing", "object": "payment_intent", "amount": 5_000,
               "amount_received": 5_000, "currency": "usd", "status": "processing",
               "metadata": {"escrowId": escrow}}),
    );
    assert!(
        processing.starts_with("deposit flagged") && processing.contains("processing"),
        "{processing}"
    );
    let charge = send(
        "evt_charge",
        json!({"id": "ch_1", "object": "charge", "amount": 5_000, "amount_received": 5_000,
               "currency": "usd", "status": "succeeded", "metadata": {"escrowId": escrow}}),
    );
    assert!(
        charge.starts_with("deposit flagged") && charge.contains("charge"),
        "{charge}"
    );
    let view = app.escrow(&escrow);
    assert_eq!(
        (view["status"].as_str(), view["depositedUsdCents"].as_i64()),
        (Some("pending_deposit"), Some(0)),
        "{view}"
    );
    app.assert_integrity();
}

/// A success whose receipt cannot be an M-Pesa receipt (a space in it, a page of text) pays
/// nothing: its outcome is unknown and the payout is flagged with its money reserved.
#[test]
fn a_success_whose_receipt_is_not_a_receipt_pays_nothing() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    for (i, receipt) in ["x y".to_string(), "T".repeat(5_000)]
        .into_iter()
        .enumerate()
    {
        let (request, _, originator) = queued_payout(&app);
        let mut body = b2c_success(&originator, "TCE4K7PQ2M", 1_500);
        body["Result"]["TransactionID"] = json!(receipt);
        body["Result"]["ResultParameters"]["ResultParameter"][1]["Value"] = json!(receipt);
        let r = app.post_mpesa_result(&body);
        assert_eq!(r.status, 200, "{i}: {}", r.text);
        let view = app
            .get(&format!("/payment-requests/{request}"), &app.admin)
            .body;
        assert_eq!(
            (view["status"].as_str(), &view["payout"]["flagged"]),
            (Some("approved"), &json!(true)),
            "{i}: {view}"
        );
        assert!(
            !view.to_string().contains(&receipt),
            "{i}: the receipt was kept: {view}"
        );
    }
    app.assert_integrity();
}

/// Guards against: receipts were unique as written, so one receipt told in upper case and then
/// in lower case completed two payouts. M-Pesa writes them in upper case; one told otherwise is
/// kept as M-Pesa writes it, and completes one payout only.
#[test]
fn a_receipt_told_in_lower_case_is_the_same_receipt() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let (first, _, originator) = queued_payout(&app);
    let r = app.post_mpesa_result(&b2c_success(&originator, "qwe1234567", 1_500));
    assert_eq!(r.status, 200, "{}", r.text);
    let view = app
        .get(&format!("/payment-requests/{first}"), &app.admin)
        .body;
    assert_eq!(
        (
            view["status"].as_str(),
            view["payout"]["mpesaReceipt"].as_str()
        ),
        (Some("paid"), Some("QWE1234567")),
        "{view}"
    );
    let (second, _, originator) = queued_payout(&app);
    let r = app.post_mpesa_result(&b2c_success(&originator, "QWE1234567", 1_500));
    assert_eq!(r.status, 200, "{}", r.text);
    let view = app
        .get(&format!("/payment-requests/{second}"), &app.admin)
        .body;
    assert_eq!(
        (view["status"].as_str(), &view["payout"]["flagged"]),
        (Some("approved"), &json!(true)),
        "{view}"
    );
    // An admin's receipt too, in the payout and in its audit line.
    let (_, third, _) = queued_payout(&app);
    let r = app.post(
        &format!("/payouts/{third}/resolve"),
        &app.admin,
        &json!({"outcome": "paid", "receipt": "qzz7654321"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let audit = app.get(&format!("/audit?entity={third}"), &app.admin);
    assert!(
        audit.text.contains("QZZ7654321") && !audit.text.contains("qzz7654321"),
        "{}",
        audit.text
    );
    app.assert_integrity();
}

/// The service call the result URL's handler makes on a server that pays through `paying`.
fn apply_as_if_paying(
    app: &TestApp,
    body: &Value,
    paying: remit::service::webhooks::Paying,
) -> remit::service::webhooks::CallbackOutcome {
    let callback = remit::wire::daraja::parse_callback(body, false).unwrap();
    let raw = body.to_string().into_bytes();
    app.store
        .write(move |ctx| {
            remit::service::webhooks::apply_payout_callback(
                ctx,
                &callback,
                &raw,
                remit::money::KesCents::default(),
                Some(paying),
            )
        })
        .unwrap()
}

/// A result for a payout not yet handed to the gateway, on a server that pays through the
/// simulator, moves nothing: `NotSent` (`409`), recorded apart so that the result of the call
/// still to come is applied. Before, a success posted with the path token right after an
/// approval paid the request with a made-up receipt, and the real result was then flagged as a
/// conflict. The payout is kept unclaimed by a server that hands nothing to a gateway
/// (`REMIT_GATEWAY=none`), and the result is applied through the service call the handler of a
/// paying server makes; posted to this server, which takes results by hand, it is applied.
#[test]
fn a_result_for_a_payout_not_yet_handed_to_the_gateway_moves_nothing() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let (request, _, originator) = queued_payout(&app);
    for body in [
        b2c_success(&originator, "TCE4K7PQ2M", 1_500),
        json!({"Result": {"ResultType": 0, "ResultCode": 2040, "ResultDesc": "declined",
            "OriginatorConversationID": originator, "ConversationID": "AG_20251125_0001",
            "TransactionID": "TCE0000000"}}),
    ] {
        let outcome = apply_as_if_paying(&app, &body, remit::service::webhooks::Paying::Simulator);
        assert_eq!(
            outcome,
            remit::service::webhooks::CallbackOutcome::NotSent,
            "{body}"
        );
        let view = app.get(&format!("/payment-requests/{request}"), &app.sender);
        assert_eq!(view.body["status"], "approved", "{}", view.text);
        assert_eq!(view.body["payout"]["status"], "queued", "{}", view.text);
        assert_eq!(view.body["payout"]["mpesaReceipt"], Value::Null);
        assert_eq!(view.body["payout"]["flagged"], false, "{}", view.text);
    }
    // Posted to this server (nothing is ever handed to a gateway): taken as it comes.
    let r = app.post_mpesa_result(&b2c_success(&originator, "TCE4K7PQ2M", 1_500));
    assert_eq!(r.status, 200, "{}", r.text);
    let view = app.get(&format!("/payment-requests/{request}"), &app.sender);
    assert_eq!(view.body["status"], "paid", "{}", view.text);
    app.assert_integrity();
}

/// Through Daraja, a result for a payout not yet handed to it is not applied either, and the
/// payout is not sent: its outcome is unknown and Transaction Status is asked. (A genuine one
/// comes only where the record of the hand-over was lost, a backup restored from before it say,
/// and a second B2B request could pay twice.)
#[test]
fn through_daraja_a_result_for_a_payout_not_handed_over_asks_what_became_of_it() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let (request, payout, originator) = queued_payout(&app);
    let outcome = apply_as_if_paying(
        &app,
        &b2c_success(&originator, "TCE4K7PQ2M", 1_500),
        remit::service::webhooks::Paying::Daraja,
    );
    assert_eq!(
        outcome,
        remit::service::webhooks::CallbackOutcome::AskStatus
    );
    let view = app.get(&format!("/payment-requests/{request}"), &app.sender);
    assert_eq!(view.body["status"], "approved", "{}", view.text);
    assert_eq!(view.body["payout"]["status"], "sent", "{}", view.text);
    assert_eq!(view.body["payout"]["mpesaReceipt"], Value::Null);
    let due: Option<String> = app
        .store
        .read(move |c, _| {
            Ok(c.query_row(
                "SELECT status_query_due_at FROM payouts WHERE id = ?1",
                [&payout],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert!(due.is_some(), "Transaction Status is not asked");
    app.assert_integrity();
}

/// A failed payout that M-Pesa then reports paid is flagged, and its escrow's money held until
/// an admin resolves it: the escrow says so to its sender (`held: payout_flagged`), whose
/// screen disables Approve and Cancel with the reason.
#[test]
fn an_escrow_whose_failed_payout_was_reported_paid_says_its_money_is_held() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let (request, _, originator) = queued_payout(&app);
    let escrow = escrow_of(&app, &request);
    let seen = app.get(&format!("/escrows/{escrow}"), &app.sender);
    assert!(seen.body.get("held").is_none(), "{}", seen.text);
    let failure = json!({"Result": {"ResultType": 0, "ResultCode": 1, "ResultDesc": "The balance is insufficient for the transaction.",
        "OriginatorConversationID": originator, "ConversationID": "AG_20251125_0001", "TransactionID": "TCE0000000"}});
    assert_eq!(app.post_mpesa_result(&failure).status, 200);
    assert_eq!(
        app.post_mpesa_result(&b2c_success(&originator, "TCE4K7PQ2M", 1_500))
            .status,
        200
    );
    let seen = app.get(&format!("/escrows/{escrow}"), &app.sender);
    assert_eq!(seen.body["held"], "payout_flagged", "{}", seen.text);
    let cancel = app.post(
        &format!("/escrows/{escrow}/cancel"),
        &app.sender,
        &json!({}),
    );
    assert_eq!(cancel.status, 409, "{}", cancel.text);
    // The web UI says it in Kiswahili by these words (ui/js/api.js, `detailedText`).
    assert!(
        cancel.body["error"].as_str().is_some_and(
            |e| e.starts_with("a failed payout of this escrow is flagged for the operator")
        ),
        "{}",
        cancel.text
    );
    app.assert_integrity();
}

/// Stripe charges eight digits at most: an `amount_received` or `amount_refunded` beyond that
/// is no amount (9,223,372,036,854,775,807 cents was flagged as such, and a refund of it said
/// as "Stripe refunded the whole charge (USD 92,233,720,368,547,758.07)"); and the signed
/// record says a flagged deposit's amount in cents only (it said `"amountUsd": 1.0`).
#[test]
fn amounts_beyond_stripes_are_none_and_the_audit_says_cents_only() {
    let app = spawn_app();
    let escrow = app.pending_escrow(100, &["a"], None);
    let huge = stripe_event("evt_huge", "pi_huge", &escrow, i64::MAX, "usd");
    let r = app.post_stripe(&huge);
    assert_eq!(r.status, 200, "{}", r.text);
    let deposits = app.get("/deposits", &app.admin).body;
    assert_eq!(deposits["items"].as_array().unwrap().len(), 0, "{deposits}");
    // The bound is a dollar one: money in a currency whose unit is worth little (IDR
    // 1,000,000,000,000) is still flagged for an admin, in its own units.
    let rupiah = stripe_event("evt_idr", "pi_idr", &escrow, 1_000_000_000_000, "idr");
    assert_eq!(app.post_stripe(&rupiah).status, 200);
    let deposits = app.get("/deposits", &app.admin).body;
    assert_eq!(
        (
            &deposits["items"][0]["currency"],
            &deposits["items"][0]["amountMinorUnits"],
            &deposits["items"][0]["status"]
        ),
        (
            &json!("idr"),
            &json!(1_000_000_000_000_i64),
            &json!("flagged")
        ),
        "{deposits}"
    );
    // A deposit of USD 50.00, then a refund Stripe cannot have made.
    let r = app.post_stripe(&stripe_event("evt_paid", "pi_paid", &escrow, 5_000, "usd"));
    assert_eq!(r.status, 200, "{}", r.text);
    let refund = json!({"id": "evt_refund_huge", "object": "event", "type": "charge.refunded",
        "livemode": false, "data": {"object": {"id": "ch_1", "object": "charge", "amount": 5_000,
        "amount_refunded": i64::MAX, "refunded": false, "currency": "usd",
        "payment_intent": "pi_paid"}}})
    .to_string();
    let r = app.post_stripe(&refund);
    assert_eq!(r.status, 200, "{}", r.text);
    let flag = app.get(&format!("/escrows/{escrow}"), &app.admin).body["flagReason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        flag.contains("an unknown amount") && !flag.contains("92,233"),
        "{flag}"
    );
    // A flagged deposit (no escrow named), then every audit line's numbers are whole.
    let unknown = stripe_event("evt_unknown", "pi_unknown", "esc_nobody", 100, "usd");
    assert_eq!(app.post_stripe(&unknown).status, 200);
    let details: Vec<String> = app
        .store
        .read(|c, _| {
            Ok(c.prepare("SELECT details FROM audit_log")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?)
        })
        .unwrap();
    fn floats(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Number(n) if !(n.is_i64() || n.is_u64()) => out.push(n.to_string()),
            Value::Array(items) => items.iter().for_each(|i| floats(i, out)),
            Value::Object(map) => map.values().for_each(|i| floats(i, out)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    for text in &details {
        floats(&serde_json::from_str(text).unwrap(), &mut found);
    }
    assert!(found.is_empty(), "floats in the audit log: {found:?}");
    assert!(
        details.iter().any(|d| d.contains("\"amountUsdCents\":100")),
        "no flagged deposit's line: {details:?}"
    );
    app.assert_integrity();
}

/// Guards against: the sentence of a deposit's reversals said every one in the currency of the
/// last (a dispute in dollars, then a refund naming another currency, read "disputed 5000 in
/// the smallest unit of \"eur\""): each is said in its own.
#[test]
fn each_reversal_of_a_deposit_is_said_in_its_own_currency() {
    let app = spawn_app();
    let escrow = app.pending_escrow(100, &["a"], None);
    let paid = app.post_stripe(&stripe_event("evt_x1", "pi_x1", &escrow, 10_000, "usd"));
    assert_eq!(paid.status, 200, "{}", paid.text);
    let disputed = app.post_stripe(&stripe_dispute("evt_x1_d", "pi_x1", 5_000));
    assert_eq!(disputed.status, 200, "{}", disputed.text);
    let refund = json!({"id": "evt_x1_r", "object": "event", "type": "charge.refunded",
        "livemode": false, "data": {"object": {"id": "ch_pi_x1", "object": "charge",
        "payment_intent": "pi_x1", "amount": 10_000, "amount_refunded": 2_000,
        "refunded": false, "currency": "eur"}}});
    let refunded = app.post_stripe(&refund.to_string());
    assert_eq!(refunded.status, 200, "{}", refunded.text);
    let flag = app.get(&format!("/escrows/{escrow}"), &app.admin).body["flagReason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(flag.contains("USD 50.00"), "{flag}");
    assert!(
        flag.contains("2000 in the smallest unit of \"eur\""),
        "{flag}"
    );
}

/// Guards against: edits of the file that decide where and when money goes passed `remit
/// check`, each agreeing with every other table: a card refund's flag cleared (the refunded
/// money was approvable again), a card deposit told as cash (its refund then flagged nothing),
/// a recipient token's sender scope pointed at another sender (it opened their escrows). Each
/// is held to the keyed audit line that made it.
#[test]
fn a_refunds_flag_a_deposits_source_and_a_tokens_scope_edited_in_the_file_are_found() {
    let app = spawn_app();
    // A recipient new to remit, whom the sender may give a first token.
    let made = app.post(
        "/escrows",
        &app.sender,
        &json!({"recipientPhone": "0722555111", "recipientName": "Achieng", "totalAmountUsd": 100,
                "categories": ["rent"]}),
    );
    assert_eq!(made.status, 201, "{}", made.text);
    let escrow = made.body["escrowId"].as_str().unwrap().to_string();
    let paid = app.post_stripe(&stripe_event("evt_t1", "pi_t1", &escrow, 10_000, "usd"));
    assert_eq!(paid.status, 200, "{}", paid.text);
    let r = app.post_stripe(&stripe_refund("evt_t1_r", "pi_t1", 10_000, 2_000));
    assert_eq!(r.status, 200, "{}", r.text);
    let token = app.post(
        &format!("/escrows/{escrow}/recipient-token"),
        &app.sender,
        &json!({}),
    );
    assert_eq!(token.status, 201, "{}", token.text);
    let prefix = token.body["token"].as_str().unwrap()[..12].to_string();
    app.assert_integrity();
    let mismatches = || -> Vec<String> {
        let r = app.get("/admin/integrity", &app.admin);
        r.body["mismatches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap().to_string())
            .collect()
    };
    let found = |what: &str, needles: &[&str]| {
        let all = mismatches();
        assert!(
            all.iter().any(|m| needles.iter().all(|n| m.contains(n))),
            "{what}: no mismatch naming {needles:?}: {all:?}"
        );
    };
    let flag: String = app.get(&format!("/escrows/{escrow}"), &app.admin).body["flagReason"]
        .as_str()
        .expect("the refund flagged the escrow")
        .to_string();
    app.sql(
        "UPDATE escrows SET flag_reason = NULL WHERE id = ?1",
        &[&escrow],
    );
    found(
        "the refund's flag cleared in the file",
        &["stays flagged until an admin clears it", &escrow],
    );
    app.sql(
        "UPDATE escrows SET flag_reason = ?2 WHERE id = ?1",
        &[&escrow, &flag],
    );
    app.assert_integrity();
    app.sql(
        "UPDATE deposits SET source = 'cash' WHERE escrow_id = ?1",
        &[&escrow],
    );
    found(
        "a card deposit told as cash",
        &["US cents (cash) but audit line", "US cents (stripe)"],
    );
    app.sql(
        "UPDATE deposits SET source = 'stripe' WHERE escrow_id = ?1",
        &[&escrow],
    );
    app.assert_integrity();
    app.sql(
        "UPDATE api_tokens SET sender_scope = ?2 WHERE prefix = ?1",
        &[&prefix, &app.agent_id],
    );
    found(
        "a token's scope pointed at another user",
        &[&prefix, "issued it for escrow", &escrow],
    );
}
