//! Notifications done with are forgotten after their keeping (`service::retention`): old
//! events whose deliveries and texts are final go with them, and nothing else does — not an
//! event still to be delivered, not one the fan-out has not reached, not the newest, not a
//! young one, and never a row of the ledger.

use crate::support::app::*;
use crate::support::notify::*;
use crate::support::receiver::Receiver;
use remit::service::retention::{forget_done, Forgotten};
use serde_json::json;
use std::time::Duration;

const KEEP_S: i64 = 30 * 86_400;

fn count(app: &TestApp, sql: &'static str) -> i64 {
    app.store
        .read(move |c, _| Ok(c.query_row(sql, [], |r| r.get(0))?))
        .unwrap()
}

fn forget(app: &TestApp, after: i64, batch: u32) -> Forgotten {
    app.store
        .write_bulk(move |ctx| forget_done(ctx, KEEP_S, after, batch))
        .unwrap()
}

/// A loopback address where nothing listens: a delivery there stays pending.
fn nowhere() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}/hook", listener.local_addr().unwrap())
}

/// Makes every event, and every delivery's and text's last change, 40 days old or more.
fn age_everything(app: &TestApp) {
    let long_ago = ["2020-01-01T00:00:00Z"];
    app.sql("UPDATE outbox_events SET created_at = ?1", &long_ago);
    app.sql(
        "UPDATE webhook_deliveries SET finished_at = ?1 WHERE finished_at IS NOT NULL",
        &long_ago,
    );
    app.sql("UPDATE sms_messages SET updated_at = ?1", &long_ago);
}

fn fan_out_done(app: &TestApp) {
    eventually(Duration::from_secs(10), "the fan-out", || {
        let reached = count(app, "SELECT seq FROM outbox_positions");
        (reached == last_seq(app)).then_some(())
    });
}

#[test]
fn old_notifications_done_with_are_forgotten_and_nothing_else() {
    let app = spawn_app_with(|c| {
        c.notify.webhook_retry_base = Duration::from_millis(50);
        c.notify.webhook_retry_cap = Duration::from_millis(200);
    });
    let receiver = Receiver::start();
    let (taken, _) = create_endpoint(&app, &receiver.url, &ALL_EVENTS);
    let (waiting, _) = create_endpoint(&app, &nowhere(), &["payment_request.created"]);
    let (gone, _) = create_endpoint(&app, &nowhere(), &ALL_EVENTS);

    let escrow = app.active_escrow(100, &["rent"]);
    let request = app.request(&escrow, "rent", 1_500, "ACC1");
    assert_eq!(app.approve(&request).status, 200);
    app.wait_for_status(&request, &["paid"]);
    fan_out_done(&app);
    let old = events(&app);
    wait_settled(&app, &taken, old.len(), Duration::from_secs(10));
    assert_eq!(delete_endpoint(&app, &gone).status, 200);
    eventually(Duration::from_secs(10), "the texts", || {
        (count(
            &app,
            "SELECT COUNT(*) FROM sms_messages WHERE status = 'pending'",
        ) == 0
            && count(&app, "SELECT COUNT(*) FROM sms_messages") >= 2)
            .then_some(())
    });
    let seq_of = |kind: &str| old.iter().find(|e| e.kind == kind).unwrap().seq;
    let (created, approved, paid) = (
        seq_of("payment_request.created"),
        seq_of("payment_request.approved"),
        seq_of("payment_request.paid"),
    );

    // Everything so far is made 40 days old; one more event, young, comes after. But the
    // approval's delivery failed an hour ago (an admin sent it again, late) and the payment's
    // text changed an hour ago: both are kept, and so are their events.
    age_everything(&app);
    let an_hour_ago = remit::time::rfc3339(remit::time::now_unix() - 3_600);
    app.sql(
        "UPDATE webhook_deliveries SET status = 'failed', finished_at = ?1 WHERE endpoint_id = ?2 AND event_seq = ?3",
        &[&an_hour_ago, &taken, &approved.to_string()],
    );
    app.sql(
        "UPDATE sms_messages SET updated_at = ?1 WHERE event_seq = ?2",
        &[&an_hour_ago, &paid.to_string()],
    );
    let second = app.request(&escrow, "rent", 700, "ACC2");
    fan_out_done(&app);
    let young = last_seq(&app);
    assert!(young > old.last().unwrap().seq);
    let ledger = |app: &TestApp| {
        (
            count(app, "SELECT COUNT(*) FROM ledger_entries"),
            count(app, "SELECT COUNT(*) FROM audit_log"),
            count(app, "SELECT COUNT(*) FROM payment_requests"),
            count(app, "SELECT COUNT(*) FROM payouts"),
        )
    };
    let before = ledger(&app);
    let oldest_delivery: String = {
        let (endpoint, seq) = (taken.clone(), old[0].seq);
        app.store
            .read(move |c, _| {
                Ok(c.query_row(
                    "SELECT id FROM webhook_deliveries WHERE endpoint_id = ?1 AND event_seq = ?2",
                    rusqlite::params![endpoint, seq],
                    |r| r.get(0),
                )?)
            })
            .unwrap()
    };

    // A window of two old events, full: the next command goes on after it.
    let first = forget(&app, 0, 2);
    assert_eq!(first.more_after, Some(old[1].seq), "{first:?}");
    assert_eq!(first.events, 2, "{first:?}");
    // The rest, from there: the window ends at the young event.
    let rest = forget(&app, old[1].seq, 500);
    assert_eq!(rest.more_after, None, "{rest:?}");

    // Left: the event whose delivery is still pending, the two whose delivery or text changed
    // within the keeping, and the young one.
    let left: Vec<i64> = events(&app).iter().map(|e| e.seq).collect();
    assert_eq!(
        left,
        [created, approved, paid, young],
        "kept: {created} (pending delivery), {approved} (failed an hour ago), {paid} (its text changed an hour ago) and {young} (young)"
    );
    let listed = deliveries(&app, &taken);
    assert_eq!(
        listed.len(),
        2,
        "the young event's and the recent failure: {listed:#?}"
    );
    assert!(
        listed.iter().any(|d| d["status"] == "failed"),
        "{listed:#?}"
    );
    assert_eq!(deliveries(&app, &waiting).len(), 2, "both still pending");
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id WHERE w.deleted_at IS NOT NULL AND d.event_seq < (SELECT MAX(seq) FROM outbox_events)"
        ),
        0,
        "a deleted endpoint's old deliveries go, pending or not"
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM webhook_attempts a WHERE NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.id = a.delivery_id)"
        ),
        0,
        "no attempt outlives its delivery"
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM sms_messages WHERE updated_at < '2021'"
        ),
        0
    );
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM sms_messages WHERE event_seq = (SELECT MIN(seq) FROM outbox_events WHERE type = 'payment_request.paid')"),
        1,
        "the text changed an hour ago is kept"
    );
    assert_eq!(
        first.events + rest.events,
        old.len() - 3,
        "{first:?} {rest:?}"
    );
    assert_eq!(ledger(&app), before, "the ledger's rows are never touched");
    app.assert_integrity();
    // A page's cursor naming a delivery forgotten says so, rather than end the list.
    let r = app.get(
        &format!("/webhook-endpoints/{taken}/deliveries?limit=1&cursor={oldest_delivery}"),
        &app.admin,
    );
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (404, Some("not_found")),
        "{}",
        r.text
    );
    assert!(r.text.contains("cursor"), "{}", r.text);
    let r = app.get(
        &format!("/webhook-deliveries/{oldest_delivery}"),
        &app.admin,
    );
    assert_eq!(r.status, 404, "{}", r.text);

    // The newest event stays even when old and done with: the next one is numbered after it,
    // and the fan-out, past it, still makes what it should of it. (The rejection's event has
    // nothing pending: the receiver takes it, the other live endpoint does not want it.)
    let r = app.post(
        &format!("/payment-requests/{second}/reject"),
        &app.sender,
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    fan_out_done(&app);
    let newest = last_seq(&app);
    wait_settled(&app, &taken, 3, Duration::from_secs(10));
    age_everything(&app);
    let forgotten = forget(&app, 0, 500);
    assert_eq!(
        forgotten.events, 2,
        "the approval's and the payment's: {forgotten:?}"
    );
    assert_eq!(
        events(&app).iter().map(|e| e.seq).collect::<Vec<_>>(),
        [created, young, newest]
    );
    let texts = count(&app, "SELECT COUNT(*) FROM sms_messages");
    let third = app.request(&escrow, "rent", 800, "ACC3");
    fan_out_done(&app);
    assert!(last_seq(&app) > newest);
    eventually(Duration::from_secs(10), "a text of the new request", || {
        (count(&app, "SELECT COUNT(*) FROM sms_messages") > texts).then_some(())
    });
    assert!(kinds_about(&app, newest, &third).contains(&"payment_request.created".to_string()));
}

#[test]
fn an_event_the_fan_out_has_not_reached_is_kept_however_old() {
    let mut app = spawn_app();
    let escrow = app.active_escrow(100, &["rent"]);
    app.request(&escrow, "rent", 1_500, "ACC1");
    fan_out_done(&app);
    let all = events(&app);
    assert!(all.len() >= 3, "{all:?}");
    // The fan-out stops with the server; the file is opened again without one.
    app.shutdown();
    let mut options = remit::store::OpenOptions::new(app.dir.path().join("remit.db"));
    options.key_hex = Some(crate::support::TEST_KEY.into());
    let store = remit::store::open(&options).unwrap();
    let behind = all[0].seq;
    store
        .write(move |ctx| {
            ctx.conn.execute(
                "UPDATE outbox_events SET created_at = '2020-01-01T00:00:00Z'",
                [],
            )?;
            // As if the fan-out had stopped after the first event (the others' texts then
            // not made).
            ctx.conn
                .execute("UPDATE outbox_positions SET seq = ?1", [behind])?;
            ctx.conn
                .execute("DELETE FROM sms_messages WHERE event_seq > ?1", [behind])?;
            Ok(())
        })
        .unwrap();
    let done = store
        .write_bulk(|ctx| forget_done(ctx, KEEP_S, 0, 500))
        .unwrap();
    assert_eq!(done.events, 1, "{done:?}");
    let left: Vec<i64> = store
        .read(|c, _| {
            Ok(c.prepare("SELECT seq FROM outbox_events ORDER BY seq")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?)
        })
        .unwrap();
    assert_eq!(left, all[1..].iter().map(|e| e.seq).collect::<Vec<_>>());
}
