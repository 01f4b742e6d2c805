//! The outbox: every event type of API.md is written exactly when its change commits (in the
//! same writer command), never for a change that was refused or rolled back, and carries ids,
//! states and amounts, never a name, a phone or a merchant detail.

use crate::support::app::*;
use crate::support::notify::{assert_events_documented, events, kinds_about, last_seq};
use crate::support::TestStore;
use remit::domain::EventType;
use remit::service::{payouts, Role};
use remit::Error;
use serde_json::json;

/// The data of every event, as text: none of these may appear in any of it.
fn assert_no_pii(app: &TestApp) {
    for e in events(app) {
        let text = e.data.to_string();
        for secret in [
            "Kenya Power",
            "888880",
            "Wanjiru",
            "Amina",
            RECIPIENT_PHONE,
            "712345678",
            "733000001",
        ] {
            assert!(
                !text.contains(secret),
                "{} carries {secret:?}: {text}",
                e.kind
            );
        }
    }
}

#[test]
fn money_in_emits_deposit_recorded_and_escrow_activated_only_when_they_commit() {
    let app = spawn_app();
    let escrow = app.pending_escrow(100, &["rent", "water"], None);
    let before = last_seq(&app);
    let part = |usd: i64, reference: &str| {
        app.post(
            &format!("/escrows/{escrow}/deposits"),
            &app.agent,
            &json!({"amountUsd": usd, "reference": reference}),
        )
    };
    assert_eq!(part(40, "part-1").status, 201);
    assert_eq!(kinds_about(&app, before, &escrow), ["deposit.recorded"]);
    let recorded = events(&app).into_iter().last().unwrap();
    assert_eq!(
        (
            &recorded.data["amountKes"],
            &recorded.data["rateKesPerUsdE4"]
        ),
        (&json!(null), &json!(null)),
        "{}",
        recorded.data
    );
    // Cash in shillings says the rate it was priced at, as the journal does.
    let kes_escrow = app.pending_escrow(100, &["rent"], None);
    let r = app.post_with_key(
        &format!("/escrows/{kes_escrow}/deposits"),
        &app.agent,
        &json!({"amountKes": 1500}),
        "kes-cash",
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let recorded = events(&app).into_iter().last().unwrap();
    assert_eq!(
        (
            &recorded.data["amountKesCents"],
            &recorded.data["exchangeRate"],
            &recorded.data["rateKesPerUsdE4"],
            &recorded.data["amountUsdCents"]
        ),
        (
            &json!(150_000),
            &json!(150.0),
            &json!(1_500_000),
            &json!(1_000)
        ),
        "{}",
        recorded.data
    );
    assert_eq!(part(60, "part-2").status, 201);
    assert_eq!(
        kinds_about(&app, before, &escrow),
        ["deposit.recorded", "deposit.recorded", "escrow.activated"]
    );
    let activated = events(&app).into_iter().last().unwrap();
    assert_eq!(activated.kind, "escrow.activated");
    assert_eq!(activated.data["status"], "active");
    assert_eq!(activated.data["totalAmountUsdCents"], 10_000);
    assert!(activated.id.starts_with("evt_"), "{}", activated.id);

    // Refused (the escrow is active now): nothing happened, nothing is said.
    let refused_at = last_seq(&app);
    assert_eq!(part(5, "part-3").status, 409);
    assert_eq!(part(60, "part-1").status, 400, "a reused reference");
    assert_eq!(last_seq(&app), refused_at);

    // A Stripe payment that cannot be applied is flagged: deposit.flagged, no escrow named.
    let event =
        json!({"id": "evt_stripe_unknown", "object": "event", "type": "payment_intent.succeeded",
        "livemode": false, "data": {"object": {"id": "pi_unknown_1", "object": "payment_intent",
        "amount": 2_500, "amount_received": 2_500, "currency": "usd", "status": "succeeded",
        "metadata": {}}}})
        .to_string();
    let r = app.post_stripe(&event);
    assert_eq!(r.status, 200, "{}", r.text);
    let flagged = events(&app).into_iter().last().unwrap();
    assert_eq!(flagged.kind, "deposit.flagged");
    assert_eq!(flagged.data["escrowId"], serde_json::Value::Null);
    assert_eq!(flagged.data["amountUsdCents"], 2_500);
    assert_eq!(flagged.data["currency"], "usd");
    assert_eq!(flagged.data["source"], "stripe");
    // One in another currency says its amount in that currency, never as dollars: JPY 5,000 was
    // said as amountUsd 50.0.
    let event =
        json!({"id": "evt_stripe_jpy", "object": "event", "type": "payment_intent.succeeded",
        "livemode": false, "data": {"object": {"id": "pi_jpy_1", "object": "payment_intent",
        "amount": 5_000, "amount_received": 5_000, "currency": "jpy", "status": "succeeded",
        "metadata": {}}}})
        .to_string();
    assert_eq!(app.post_stripe(&event).status, 200);
    let flagged = events(&app).into_iter().last().unwrap();
    assert_eq!(flagged.kind, "deposit.flagged");
    assert_eq!(
        (
            &flagged.data["currency"],
            &flagged.data["amountMinorUnits"],
            &flagged.data["amountUsd"],
            &flagged.data["amountUsdCents"]
        ),
        (
            &json!("jpy"),
            &json!(5_000),
            &serde_json::Value::Null,
            &serde_json::Value::Null
        ),
        "{}",
        flagged.data
    );
    assert_no_pii(&app);
    assert_events_documented(&app.store);
}

#[test]
fn a_payment_request_emits_each_state_it_reaches_and_nothing_for_a_refused_approval() {
    let app = spawn_app();
    let escrow = app.active_escrow(100, &["rent", "water"]);
    let before = last_seq(&app);

    // Created → approved → paid, each once, in order.
    let paid = app.request(&escrow, "rent", 1_500, "ACC-PAID");
    let created = events(&app).into_iter().last().unwrap();
    assert_eq!(created.kind, "payment_request.created");
    assert_eq!(created.data["paymentRequestId"], paid.as_str());
    assert_eq!(created.data["escrowId"], escrow.as_str());
    assert_eq!(created.data["status"], "pending_approval");
    assert_eq!(created.data["category"], "rent");
    assert_eq!(created.data["amountKesCents"], 150_000);
    assert_eq!(created.data["amountUsdCents"], 1_000);
    assert!(created.data.get("merchantName").is_none());
    assert_eq!(app.approve(&paid).status, 200);
    let view = app.wait_for_status(&paid, &["paid"]);
    assert_eq!(
        kinds_about(&app, before, &paid),
        [
            "payment_request.created",
            "payment_request.approved",
            "payment_request.paid"
        ]
    );
    let paid_event = events(&app)
        .into_iter()
        .find(|e| e.kind == "payment_request.paid")
        .unwrap();
    assert_eq!(
        paid_event.data["mpesaReceipt"],
        view["payout"]["mpesaReceipt"]
    );
    assert_eq!(paid_event.data["payoutId"], view["payout"]["payoutId"]);
    assert_eq!(paid_event.data["simulated"], true);

    // An approval the category cannot cover is refused by a CHECK: its command rolls back,
    // and with it the event it would have written, with or without an Idempotency-Key.
    let big = app.request(&escrow, "water", 7_600, "ACC-BIG");
    let refused_at = last_seq(&app);
    let r = app.approve(&big);
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.body["code"], "insufficient_category_balance");
    let r = app.post_with_key(
        &format!("/payment-requests/{big}/approve"),
        &app.sender,
        &json!({}),
        "approve-big-1",
    );
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(
        last_seq(&app),
        refused_at,
        "a refused approval emits nothing"
    );

    // Rejected.
    let r = app.post(
        &format!("/payment-requests/{big}/reject"),
        &app.sender,
        &json!({"reason": "too much"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        kinds_about(&app, before, &big),
        ["payment_request.created", "payment_request.rejected"]
    );
    let rejected = events(&app).into_iter().last().unwrap();
    assert!(
        !rejected.data.to_string().contains("too much"),
        "a reason is PII"
    );

    // Failed: the money goes back.
    let failed = app.request(&escrow, "rent", 150, FAIL_ACCOUNT);
    assert_eq!(app.approve(&failed).status, 200);
    app.wait_for_status(&failed, &["failed"]);
    assert_eq!(
        kinds_about(&app, before, &failed),
        [
            "payment_request.created",
            "payment_request.approved",
            "payment_request.failed"
        ]
    );

    // Stuck: a queue timeout flags the payout; payout.stuck comes with the flag, once.
    let stuck = app.request(&escrow, "rent", 150, TIMEOUT_ACCOUNT);
    assert_eq!(app.approve(&stuck).status, 200);
    app.wait_for_payout_flag(&stuck);
    let stuck_kinds = kinds_about(&app, before, &stuck);
    assert_eq!(
        stuck_kinds,
        [
            "payment_request.created",
            "payment_request.approved",
            "payout.stuck"
        ]
    );
    let stuck_event = events(&app)
        .into_iter()
        .find(|e| e.kind == "payout.stuck")
        .unwrap();
    assert_eq!(stuck_event.data["flagged"], true);
    assert_eq!(stuck_event.data["amountKesCents"], 15_000);

    // Expired, by the sweep (the clock moved on).
    let late = app.request(&escrow, "rent", 150, "ACC-LATE");
    app.sql(
        "UPDATE payment_requests SET expires_at = '2020-01-01T00:00:00Z' WHERE id = ?1",
        &[&late],
    );
    let n = app
        .store
        .write(remit::service::requests::expire_due)
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        kinds_about(&app, before, &late),
        ["payment_request.created", "payment_request.expired"]
    );
    // It says when it expired, not only when the sweep found it.
    let expired = events(&app)
        .into_iter()
        .find(|e| e.kind == "payment_request.expired")
        .unwrap();
    assert_eq!(expired.data["expiredAt"], "2020-01-01T00:00:00Z");

    // A cancel refused while a payout is in flight (the stuck one) emits nothing.
    let at = last_seq(&app);
    let r = app.post(
        &format!("/escrows/{escrow}/cancel"),
        &app.sender,
        &json!({}),
    );
    assert_eq!(r.status, 409, "{}", r.text);
    // The web UI says it in Kiswahili by these words (ui/js/api.js, `detailedText`).
    assert!(
        r.body["error"].as_str().is_some_and(|e| e
            .starts_with("escrow is active with a payout in flight and cannot become cancelled")),
        "{}",
        r.text
    );
    assert_eq!(last_seq(&app), at);
    assert_no_pii(&app);
    assert_events_documented(&app.store);
}

#[test]
fn an_escrow_emits_cancelled_and_completed() {
    let app = spawn_app();
    let cancelled = app.pending_escrow(50, &["rent"], None);
    let before = last_seq(&app);
    let r = app.post(
        &format!("/escrows/{cancelled}/cancel"),
        &app.sender,
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(kinds_about(&app, before, &cancelled), ["escrow.cancelled"]);
    let e = events(&app).into_iter().last().unwrap();
    assert_eq!(e.data["status"], "cancelled");
    assert_eq!(e.data["refundedUsdCents"], 0);
    assert_eq!(e.data["cancelledPaymentRequestIds"], json!([]));

    // The requests still waiting are cancelled with it, and its event names them (they have
    // no event of their own: a receiver still held them as waiting).
    let funded = app.active_escrow(20, &["rent"]);
    let waiting = app.request(&funded, "rent", 1_500, "ACC-WAIT");
    let r = app.post(
        &format!("/escrows/{funded}/cancel"),
        &app.sender,
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let e = events(&app).into_iter().last().unwrap();
    assert_eq!(
        (&e.kind[..], &e.data["cancelledPaymentRequestIds"]),
        ("escrow.cancelled", &json!([waiting])),
        "{:?}",
        e.data
    );

    // All of it paid: completed, once, after the paid request; the one still waiting is named.
    let spent = app.active_escrow(10, &["rent"]);
    let request = app.request(&spent, "rent", 1_500, "ACC-ALL");
    let left_over = app.request(&spent, "rent", 1_500, "ACC-LATE");
    assert_eq!(app.approve(&request).status, 200);
    app.wait_for_status(&request, &["paid"]);
    let kinds = kinds_about(&app, before, &spent);
    assert_eq!(
        kinds.iter().filter(|k| *k == "escrow.completed").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(kinds.last().map(String::as_str), Some("escrow.completed"));
    let completed = events(&app).into_iter().last().unwrap();
    assert_eq!(completed.data["spentUsdCents"], 1_000);
    assert_eq!(
        completed.data["cancelledPaymentRequestIds"],
        json!([left_over])
    );
    assert_events_documented(&app.store);
}

/// An event belongs to its writer command: a command that fails takes its events with it, and a
/// savepoint rolled back inside a command that succeeds takes only its own.
#[test]
fn an_event_is_undone_with_its_commands_savepoint() {
    let ts = TestStore::new();
    let count = || {
        ts.store
            .read(|conn, _| {
                Ok(
                    conn.query_row("SELECT COUNT(*) FROM outbox_events", [], |r| {
                        r.get::<_, i64>(0)
                    })?,
                )
            })
            .unwrap()
    };
    let before = count();
    let failed = ts.store.write(|ctx| {
        ctx.emit(EventType::FloatLow, json!({"account": "Utility Account"}))?;
        Err::<(), _>(Error::Forbidden)
    });
    assert!(failed.is_err());
    assert_eq!(count(), before, "a failed command leaves no event");

    ts.store
        .write(|ctx| {
            ctx.emit(EventType::EscrowActivated, json!({"escrowId": "outer"}))?;
            let inner = ctx.savepoint(|ctx| {
                ctx.emit(EventType::EscrowCancelled, json!({"escrowId": "inner"}))?;
                Err::<(), _>(Error::Forbidden)
            });
            assert!(inner.is_err());
            Ok(())
        })
        .unwrap();
    let kinds: Vec<String> = ts
        .store
        .read(|conn, _| {
            let mut stmt = conn.prepare("SELECT type FROM outbox_events ORDER BY seq")?;
            let kinds = stmt
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok(kinds)
        })
        .unwrap();
    assert_eq!(kinds, ["escrow.activated"]);
}

/// `payout.stuck` follows the one definition of stuck in `service::payouts`: a payout sent with
/// no result past the timeout is found by the sweep, once; a flagged one when it is flagged.
#[test]
fn the_stuck_sweep_emits_payout_stuck_once_per_payout() {
    let ts = TestStore::new();
    let sender = ts.user(Role::Sender, "Amina", Some("0733000001"));
    let agent = ts.user(Role::Agent, "Kiosk", None);
    let escrow = ts.active_escrow(&sender, &agent, "0712345678", 10_000, &["rent"], None);
    let request = ts.request(&agent, &escrow, "rent", 150_000).unwrap();
    let request_id = request["paymentRequestId"].as_str().unwrap().to_string();
    ts.approve(&sender, &request_id).unwrap();
    let payout = ts.payout_id_of(&request_id);
    let stuck_events = || {
        ts.store
            .read(|conn, _| {
                Ok(conn.query_row(
                    "SELECT COUNT(*) FROM outbox_events WHERE type = 'payout.stuck'",
                    [],
                    |r| r.get::<_, i64>(0),
                )?)
            })
            .unwrap()
    };
    // Queued, or sent within the timeout: not stuck.
    assert_eq!(
        ts.store
            .write(|ctx| payouts::emit_stuck_due(ctx, 600))
            .unwrap(),
        0
    );
    let sent_at = remit::time::rfc3339(remit::time::now_unix() - 30);
    let p = payout.clone();
    ts.store
        .write(move |ctx| {
            ctx.conn.execute(
                "UPDATE payouts SET status = 'sent', sent_at = ?2 WHERE id = ?1",
                [&p, &sent_at],
            )?;
            Ok(())
        })
        .unwrap();
    assert_eq!(
        ts.store
            .write(|ctx| payouts::emit_stuck_due(ctx, 600))
            .unwrap(),
        0
    );
    // Past the timeout: stuck, said once however often the sweep runs.
    assert_eq!(
        ts.store
            .write(|ctx| payouts::emit_stuck_due(ctx, 10))
            .unwrap(),
        1
    );
    assert_eq!(
        ts.store
            .write(|ctx| payouts::emit_stuck_due(ctx, 10))
            .unwrap(),
        0
    );
    assert_eq!(stuck_events(), 1);
    // Flagging a payout already said to be stuck says nothing more.
    let p = remit::domain::PayoutId::parse(&payout).unwrap();
    ts.store
        .write(move |ctx| payouts::flag(ctx, &p, "test"))
        .unwrap();
    assert_eq!(stuck_events(), 1);
    // A payout an admin resolves because it is stuck, before the sweep (every 15 s) reached it,
    // is said to be stuck first, in the same command: it was on the admin's list of stuck
    // payouts, and its sender heard nothing of the delay.
    let admin = ts.user(Role::Admin, "Ops", None);
    let request = ts.request(&agent, &escrow, "rent", 160_000).unwrap();
    let request_id = request["paymentRequestId"].as_str().unwrap().to_string();
    ts.approve(&sender, &request_id).unwrap();
    let second = remit::domain::PayoutId::parse(&ts.payout_id_of(&request_id)).unwrap();
    let (p, sent_at) = (
        second.clone(),
        remit::time::rfc3339(remit::time::now_unix() - 30),
    );
    ts.store
        .write(move |ctx| {
            ctx.conn.execute(
                "UPDATE payouts SET status = 'sent', sent_at = ?2 WHERE id = ?1",
                [p.as_str(), &sent_at],
            )?;
            Ok(())
        })
        .unwrap();
    let paid = payouts::PayoutResult::Succeeded {
        receipt: "TCE4K7PQ2N".into(),
    };
    ts.store
        .write(move |ctx| payouts::resolve(ctx, &admin, &second, &paid, 10, false))
        .unwrap();
    let kinds: Vec<String> = ts
        .store
        .read(|conn, _| {
            let mut stmt = conn.prepare(
                "SELECT type FROM outbox_events WHERE type IN ('payout.stuck', 'payment_request.paid') ORDER BY seq",
            )?;
            let kinds = stmt
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok(kinds)
        })
        .unwrap();
    assert_eq!(
        kinds,
        ["payout.stuck", "payout.stuck", "payment_request.paid"]
    );
    assert_events_documented(&ts.store);
}

/// `float.low` when a paying account goes below the alert, not at every report while it stays.
#[test]
fn float_low_is_emitted_when_an_account_goes_below_the_alert() {
    use remit::wire::daraja::results::AccountBalance;
    let ts = TestStore::new();
    let alert = remit::money::KesCents::new(500_000).unwrap();
    let report = |utility: i64| {
        let balances = vec![
            AccountBalance {
                name: "Utility Account".into(),
                currency: "KES".into(),
                available_cents: utility,
            },
            AccountBalance {
                name: "Charges Paid Account".into(),
                currency: "KES".into(),
                available_cents: -100,
            },
        ];
        ts.store
            .write(move |ctx| remit::service::float::record(ctx, &balances, alert))
            .unwrap();
    };
    let lows = || {
        ts.store
            .read(|conn, _| {
                let mut stmt = conn.prepare(
                    "SELECT data FROM outbox_events WHERE type = 'float.low' ORDER BY seq",
                )?;
                let rows = stmt
                    .query_map([], |r| r.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .unwrap()
    };
    report(900_000);
    assert!(lows().is_empty());
    report(120_000);
    report(110_000);
    assert_eq!(lows().len(), 1, "once while it stays low: {:?}", lows());
    let data: serde_json::Value = serde_json::from_str(&lows()[0]).unwrap();
    assert_eq!(data["account"], "Utility Account");
    assert_eq!(data["availableKesCents"], 120_000);
    assert_eq!(data["alertKesCents"], 500_000);
    assert_events_documented(&ts.store);
    report(700_000);
    report(100);
    assert_eq!(lows().len(), 2, "again when it goes below again");
}
