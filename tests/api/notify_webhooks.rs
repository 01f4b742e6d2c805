//! Webhooks out, against receivers on loopback (`support::receiver`): signed deliveries that a
//! receiver verifies with its own HMAC code, retries with backoff after a 500, receivers that
//! are slow, that never answer or that disappear (they hold up neither the ledger nor the other
//! receivers), deliveries that fail for good and are counted in `/metrics`, an admin's retry,
//! the admin API, and the guard on the address a delivery actually connects to.

use crate::support::app::*;
use crate::support::notify::*;
use crate::support::receiver::{self, Answer, Receiver};
use remit::config::Config;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Retries in milliseconds rather than seconds, and a short timeout.
fn fast(c: &mut Config) {
    c.notify.webhook_retry_base = Duration::from_millis(50);
    c.notify.webhook_retry_cap = Duration::from_millis(200);
    // Long enough that a loaded machine's slow answer is not taken for none (which would send
    // it again, and break the tests' exact counts of attempts).
    c.notify.webhook_timeout = Duration::from_millis(5_000);
    c.notify.webhook_connect_timeout = Duration::from_millis(2_000);
}

/// `fast`, with a 1 s timeout for the test of a receiver that never answers.
fn fast_timeout(c: &mut Config) {
    fast(c);
    c.notify.webhook_timeout = Duration::from_millis(1_000);
    c.notify.webhook_connect_timeout = Duration::from_millis(500);
}

#[test]
fn a_receiver_gets_the_events_it_subscribed_to_signed_so_that_it_can_verify_them() {
    let app = spawn_app_with(fast);
    let receiver = Receiver::start();
    let subscribed = ["payment_request.created", "payment_request.approved"];
    let (endpoint, secret) = create_endpoint(&app, &receiver.url, &subscribed);
    receiver.set_secret(&secret);
    let escrow = app.active_escrow(100, &["rent"]);
    let request = app.request(&escrow, "rent", 1_500, "ACC1");
    assert_eq!(app.approve(&request).status, 200);
    app.wait_for_status(&request, &["paid"]);
    let items = wait_settled(&app, &endpoint, 2, Duration::from_secs(10));

    // Exactly the subscribed events, each once, verified, in the shape of API.md.
    let got = receiver.received();
    let kinds: Vec<&str> = got.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, subscribed, "{got:#?}");
    let outbox = events(&app);
    for r in &got {
        assert!(
            r.verified,
            "signature of {} did not verify: {}",
            r.kind, r.signature
        );
        assert!(r.signature.starts_with("t=") && r.signature.contains(",v1="));
        let keys: Vec<&String> = r.body.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["id", "type", "createdAt", "data"]);
        assert_eq!(r.data["paymentRequestId"], request.as_str());
        let stored = outbox
            .iter()
            .find(|e| e.id == r.id)
            .expect("an event of the outbox");
        assert_eq!(stored.kind, r.kind);
        assert_eq!(stored.data, r.data);
        assert!(!receiver::verify(
            &r.signature,
            r.body.to_string().as_bytes(),
            "whsec_wrong"
        ));
    }
    for d in &items {
        assert_eq!(d["status"], "delivered", "{d}");
        assert_eq!(d["attempts"], 1);
        assert_eq!(d["attemptLog"][0]["statusCode"], 200);
        assert_eq!(d["attemptLog"][0]["error"], serde_json::Value::Null);
    }
    // The secret was shown once: never again.
    let r = app.get(&format!("/webhook-endpoints/{endpoint}"), &app.admin);
    assert_eq!(r.status, 200);
    assert!(r.body.get("secret").is_none(), "{}", r.text);
    assert!(!r.text.contains(&secret));
}

#[test]
fn a_receiver_that_answers_500_then_200_gets_the_event_on_a_retry() {
    let app = spawn_app_with(fast);
    let receiver = Receiver::start_with(|r| {
        if r.nth == 1 {
            Answer::Status(500)
        } else {
            Answer::Status(200)
        }
    });
    let (endpoint, secret) = create_endpoint(&app, &receiver.url, &["payment_request.created"]);
    receiver.set_secret(&secret);
    let escrow = app.active_escrow(100, &["rent"]);
    app.request(&escrow, "rent", 1_500, "ACC1");
    let items = wait_settled(&app, &endpoint, 1, Duration::from_secs(10));
    let d = &items[0];
    assert_eq!(d["status"], "delivered", "{d}");
    assert_eq!(d["attempts"], 2);
    assert_eq!(d["attemptLog"][0]["n"], 2);
    assert_eq!(d["attemptLog"][0]["statusCode"], 200);
    assert_eq!(d["attemptLog"][1]["n"], 1);
    assert_eq!(d["attemptLog"][1]["statusCode"], 500);
    assert_eq!(d["attemptLog"][1]["error"], "HTTP 500");
    // The same event, twice (at least once: receivers deduplicate on its id).
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].id, got[1].id);
    assert!(got.iter().all(|r| r.verified));
    // Counted once the worker has recorded them, a moment after the list shows them.
    eventually(Duration::from_secs(5), "the attempts counted", || {
        (metric(&app, "remit_webhook_attempts_total") >= 2.0
            && metric(&app, "remit_webhook_attempts_failed_total") >= 1.0
            && metric(&app, "remit_webhook_deliveries_delivered_total") == 1.0)
            .then_some(())
    });
    // The full record of the delivery has both attempts too.
    let id = d["deliveryId"].as_str().unwrap();
    let one = app.get(&format!("/webhook-deliveries/{id}"), &app.admin);
    assert_eq!(one.status, 200, "{}", one.text);
    assert_eq!(one.body["attemptLog"].as_array().unwrap().len(), 2);
}

/// Regression guard for the promise of the issue: a receiver that is slow, that never answers,
/// or that is not there at all holds up only its own deliveries.
#[test]
fn slow_silent_and_dead_receivers_hold_up_neither_the_ledger_nor_the_other_receivers() {
    let app = spawn_app_with(fast_timeout);
    let events = ["payment_request.created", "payment_request.approved"];
    let silent = Receiver::start_with(|_| Answer::Hang(Duration::from_secs(5)));
    let sluggish = Receiver::start_with(|_| Answer::Slow(Duration::from_millis(300), 200));
    let mut dead = Receiver::start();
    let dead_url = dead.url.clone();
    dead.disappear();
    let quick = Receiver::start();
    let (silent_id, _) = create_endpoint(&app, &silent.url, &events);
    let (sluggish_id, _) = create_endpoint(&app, &sluggish.url, &events);
    let (dead_id, _) = create_endpoint(&app, &dead_url, &events);
    let (quick_id, secret) = create_endpoint(&app, &quick.url, &events);
    quick.set_secret(&secret);

    let escrow = app.active_escrow(100, &["rent"]);
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..5 {
        let t = Instant::now();
        let request = app.request(&escrow, "rent", 150, &format!("R{i}"));
        let r = app.approve(&request);
        assert_eq!(r.status, 200, "{}", r.text);
        slowest = slowest.max(t.elapsed());
    }
    // Each attempt to the silent receiver takes the whole 1 s timeout: a ledger that waited
    // for it would take at least 2 s per payment (two events, each timed out).
    assert!(
        slowest < Duration::from_millis(1_800),
        "a payment took {slowest:?}"
    );
    let got = quick.wait_for(Duration::from_secs(15), |r| r.len() >= 10);
    assert!(got.iter().all(|r| r.verified));
    let quick_done = started.elapsed();
    assert!(
        silent.received().len() < 10,
        "the silent receiver cannot have had them all in {quick_done:?}"
    );
    assert_eq!(
        wait_settled(&app, &quick_id, 10, Duration::from_secs(15)).len(),
        10
    );
    let sluggish_items = wait_settled(&app, &sluggish_id, 10, Duration::from_secs(10));
    for d in &sluggish_items {
        assert_eq!(d["status"], "delivered");
        assert!(
            d["attemptLog"][0]["durationMs"].as_i64().unwrap() >= 300,
            "{d}"
        );
    }
    // The silent one's attempts end at the timeout, with no status; the dead one's at once.
    let silent_attempt = eventually(
        Duration::from_secs(15),
        "an attempt to the silent receiver",
        || {
            deliveries(&app, &silent_id)
                .into_iter()
                .find_map(|d| d["attemptLog"].as_array().and_then(|a| a.first().cloned()))
        },
    );
    assert_eq!(
        silent_attempt["statusCode"],
        serde_json::Value::Null,
        "{silent_attempt}"
    );
    assert_eq!(silent_attempt["error"], "no answer in time");
    assert!(silent_attempt["durationMs"].as_i64().unwrap() >= 900);
    let dead_attempt = eventually(
        Duration::from_secs(15),
        "an attempt to the dead receiver",
        || {
            deliveries(&app, &dead_id)
                .into_iter()
                .find_map(|d| d["attemptLog"].as_array().and_then(|a| a.first().cloned()))
        },
    );
    assert_eq!(dead_attempt["statusCode"], serde_json::Value::Null);
    assert!(
        dead_attempt["error"]
            .as_str()
            .unwrap()
            .contains("connection"),
        "{dead_attempt}"
    );
}

/// While the ledger is busy a stint of deliveries rests for its share of the work the worker
/// did; the time it waited for a receiver's answer is not that work, and the rest ends with
/// the burst. A receiver that took 2 s to answer during a burst bought a minute of rest: the
/// next event reached it a minute after the burst had ended.
#[test]
fn a_slow_answer_during_a_burst_does_not_hold_the_next_delivery_after_it() {
    let app = spawn_app_with(fast);
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let first = answered.clone();
    let receiver = Receiver::start_with(move |_| {
        if first.fetch_add(1, Ordering::SeqCst) == 0 {
            Answer::Slow(Duration::from_millis(2_000), 200)
        } else {
            Answer::Status(200)
        }
    });
    let (endpoint, _) = create_endpoint(&app, &receiver.url, &["payment_request.created"]);
    let escrow = app.active_escrow(100, &["rent"]);
    let bursting = AtomicBool::new(true);
    let written = std::sync::atomic::AtomicUsize::new(0);
    let path = format!("/users/{}/language", app.agent_id);
    let rests_before = metric(&app, "remit_notify_rests_total");
    let burst = Instant::now();
    std::thread::scope(|s| {
        // The burst: an admin setting a user's language over and over, from eight clients
        // (far more than the 200 writer commands a second that make the ledger busy; four
        // made 161 a second on a machine busy with other work, and the notifier never rested).
        for i in 0..8 {
            let (app, path, bursting, written) = (&app, &path, &bursting, &written);
            s.spawn(move || {
                let mut n = i;
                while bursting.load(Ordering::SeqCst) {
                    let language = if n % 2 == 0 { "sw" } else { "en" };
                    let body = json!({ "language": language }).to_string();
                    let r = app.raw(
                        "PUT",
                        path,
                        Some(&app.admin),
                        Some(("application/json", body.as_bytes())),
                        &[],
                    );
                    assert_eq!(r.status, 200, "{}", r.text);
                    written.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            });
        }
        // The first event, answered slowly while the burst goes on.
        app.request(&escrow, "rent", 150, "R1");
        wait_settled(&app, &endpoint, 1, Duration::from_secs(30));
        bursting.store(false, Ordering::SeqCst);
    });
    // The ledger was busy, so the notifier rested: a burst too thin to be one would leave
    // nothing to test.
    let rate = written.load(Ordering::Relaxed) as f64 / burst.elapsed().as_secs_f64();
    assert!(
        metric(&app, "remit_notify_rests_total") > rests_before,
        "the notifier never rested in a burst of {rate:.0} writes a second"
    );
    let after = Instant::now();
    app.request(&escrow, "rent", 150, "R2");
    receiver.wait_for(Duration::from_secs(20), |r| r.len() >= 2);
    assert!(
        after.elapsed() < Duration::from_secs(8),
        "the next event came {:?} after the burst",
        after.elapsed()
    );
}

#[test]
fn a_delivery_whose_receiver_disappeared_fails_when_its_retries_run_out_and_is_counted() {
    let app = spawn_app_with(|c| {
        fast(c);
        c.notify.webhook_retry_for = Duration::from_millis(700);
    });
    let mut receiver = Receiver::start();
    let (endpoint, secret) = create_endpoint(&app, &receiver.url, &["payment_request.created"]);
    receiver.set_secret(&secret);
    let escrow = app.active_escrow(100, &["rent"]);
    app.request(&escrow, "rent", 150, "BEFORE");
    let first = wait_settled(&app, &endpoint, 1, Duration::from_secs(10));
    assert_eq!(first[0]["status"], "delivered");
    receiver.disappear();
    app.request(&escrow, "rent", 150, "AFTER");
    let items = wait_settled(&app, &endpoint, 2, Duration::from_secs(10));
    let failed = &items[0];
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(failed["attempts"].as_i64().unwrap() >= 2, "{failed}");
    assert!(failed["finishedAt"].is_string());
    assert!(
        failed["lastError"].as_str().unwrap().contains("connection"),
        "{failed}"
    );
    eventually(Duration::from_secs(5), "the deliveries counted", || {
        (metric(&app, "remit_webhook_deliveries_failed_total") == 1.0
            && metric(&app, "remit_webhook_deliveries_failed_kept") == 1.0
            && metric(&app, "remit_webhook_deliveries_delivered_total") == 1.0)
            .then_some(())
    });
    assert_eq!(metric(&app, "remit_webhook_deliveries_pending"), 0.0);
    let r = app.get(&format!("/webhook-endpoints/{endpoint}"), &app.admin);
    assert_eq!(r.body["failedDeliveries"], 1, "{}", r.text);
    assert_eq!(
        app.get(
            &format!("/webhook-endpoints/{endpoint}/deliveries?status=failed"),
            &app.admin
        )
        .body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// A server whose deliveries fail for good within 300 ms, an endpoint for
/// `payment_request.created` at a receiver that answers as `script` says (a failure, at first),
/// and that event's delivery, failed: (the app, the receiver, the endpoint's id, the delivery's
/// id).
fn one_failed_delivery(
    script: impl Fn(&receiver::Received) -> Answer + Send + Sync + 'static,
) -> (TestApp, Receiver, String, String) {
    let app = spawn_app_with(|c| {
        fast(c);
        c.notify.webhook_retry_for = Duration::from_millis(300);
    });
    let receiver = Receiver::start_with(script);
    let (endpoint, secret) = create_endpoint(&app, &receiver.url, &["payment_request.created"]);
    receiver.set_secret(&secret);
    let escrow = app.active_escrow(100, &["rent"]);
    app.request(&escrow, "rent", 150, "R1");
    let items = wait_settled(&app, &endpoint, 1, Duration::from_secs(10));
    assert_eq!(items[0]["status"], "failed");
    let delivery = items[0]["deliveryId"].as_str().unwrap().to_string();
    (app, receiver, endpoint, delivery)
}

#[test]
fn an_admin_retries_a_failed_delivery_once() {
    let healthy = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&healthy);
    let (app, _receiver, endpoint, id) = one_failed_delivery(move |_| {
        if flag.load(Ordering::SeqCst) {
            Answer::Status(204)
        } else {
            Answer::Status(503)
        }
    });
    let attempts = deliveries(&app, &endpoint)[0]["attempts"].as_i64().unwrap();

    // Still broken: the retry is one attempt, and the delivery is failed again.
    let r = app.post(
        &format!("/webhook-deliveries/{id}/retry"),
        &app.admin,
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let again = wait_settled(&app, &endpoint, 1, Duration::from_secs(10));
    assert_eq!(again[0]["status"], "failed");
    assert_eq!(again[0]["attempts"].as_i64().unwrap(), attempts + 1);

    // Fixed: delivered.
    healthy.store(true, Ordering::SeqCst);
    let r = app.post(
        &format!("/webhook-deliveries/{id}/retry"),
        &app.admin,
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let done = wait_settled(&app, &endpoint, 1, Duration::from_secs(10));
    assert_eq!(done[0]["status"], "delivered", "{}", done[0]);
    assert_eq!(done[0]["attempts"].as_i64().unwrap(), attempts + 2);
    assert_eq!(done[0]["attemptLog"][0]["statusCode"], 204);
    // Others may not.
    let r = app.post(
        &format!("/webhook-deliveries/{id}/retry"),
        &app.sender,
        &json!({}),
    );
    assert_eq!(r.status, 403);
    let r = app.post("/webhook-deliveries/dlv_nope/retry", &app.admin, &json!({}));
    assert_eq!(r.status, 404);
}

/// Guards against: an admin's retry of a delivery still within its days of retries set their
/// end to now, so that the attempt it made, failing, ended the delivery days early.
#[test]
fn a_retry_of_a_delivery_still_being_retried_keeps_its_days() {
    let app = spawn_app_with(|c| {
        fast(c);
        // Slow enough between attempts that the retry's own attempt is seen on its own.
        c.notify.webhook_retry_base = Duration::from_secs(30);
        c.notify.webhook_retry_cap = Duration::from_secs(30);
    });
    let receiver = Receiver::start_with(|_| Answer::Status(503));
    let (endpoint, secret) = create_endpoint(&app, &receiver.url, &["payment_request.created"]);
    receiver.set_secret(&secret);
    let escrow = app.active_escrow(100, &["rent"]);
    app.request(&escrow, "rent", 150, "R1");
    let started = std::time::Instant::now();
    let first = loop {
        let items = deliveries(&app, &endpoint);
        if items
            .first()
            .is_some_and(|d| d["attempts"].as_i64() == Some(1))
        {
            break items[0].clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no first attempt"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(first["status"], "pending", "{first}");
    let id = first["deliveryId"].as_str().unwrap();
    let r = app.post(
        &format!("/webhook-deliveries/{id}/retry"),
        &app.admin,
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["retryUntil"], first["retryUntil"], "{}", r.text);
    let started = std::time::Instant::now();
    let after = loop {
        let items = deliveries(&app, &endpoint);
        if items[0]["attempts"].as_i64() == Some(2) {
            break items[0].clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no second attempt"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(after["status"], "pending", "still within its days: {after}");
    assert_eq!(after["retryUntil"], first["retryUntil"], "{after}");
    // Its times are whole seconds, as every answer's (they were to the millisecond, the only
    // ones of the API).
    let at = after["attemptLog"][0]["at"].clone();
    for time in [
        &after["createdAt"],
        &after["retryUntil"],
        &after["nextAttemptAt"],
        &after["lastAttemptAt"],
        &at,
    ] {
        let text = time.as_str().unwrap_or_default();
        assert!(
            text.len() == 20 && text.ends_with('Z') && remit::time::parse_rfc3339(text).is_some(),
            "{time} in {after}"
        );
    }
}

/// Guards against: an admin's retry ignored `Idempotency-Key` (every other POST honours it), so
/// a client that repeated a retry whose answer it lost asked for a second attempt.
#[test]
fn a_retry_repeated_with_its_idempotency_key_is_replayed_not_made_again() {
    let (app, _receiver, _, id) = one_failed_delivery(|_| Answer::Status(503));
    let retry = || {
        app.raw(
            "POST",
            &format!("/webhook-deliveries/{id}/retry"),
            Some(&app.admin),
            Some(("application/json", b"{}")),
            &[("Idempotency-Key", "retry-once")],
        )
    };
    let first = retry();
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body["status"], "pending");
    assert_eq!(first.header("Idempotent-Replayed"), None);
    let again = retry();
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.header("Idempotent-Replayed"), Some("true"));
    assert_eq!(again.body, first.body);
    let audit = app.get(&format!("/audit?entity={id}"), &app.admin);
    assert_eq!(audit.status, 200, "{}", audit.text);
    let retried = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["action"] == "webhook_delivery.retried")
        .count();
    assert_eq!(retried, 1, "{}", audit.text);
}

#[test]
fn admins_manage_endpoints_and_what_they_refuse() {
    let app = spawn_app_with(fast);
    let receiver = Receiver::start();
    let post = |body: serde_json::Value| app.post("/webhook-endpoints", &app.admin, &body);
    let all: Vec<&str> = ALL_EVENTS.to_vec();

    // Refused: other roles, URLs that are not https (but for loopback), private addresses,
    // credentials in the URL, unknown or repeated event types, unknown fields.
    let r = app.post(
        "/webhook-endpoints",
        &app.sender,
        &json!({"url": receiver.url, "events": all}),
    );
    assert_eq!(r.status, 403);
    for (body, field) in [
        (
            json!({"url": "http://hooks.example.com/x", "events": all}),
            "url",
        ),
        (json!({"url": "https://10.0.0.7/x", "events": all}), "url"),
        (
            json!({"url": "https://169.254.169.254/latest", "events": all}),
            "url",
        ),
        (json!({"url": "https://[fd00::1]/x", "events": all}), "url"),
        (
            json!({"url": "https://u:p@hooks.example.com/x", "events": all}),
            "url",
        ),
        (json!({"url": "hooks", "events": all}), "url"),
        // What the contract fuzzer sent when the document's pattern let any visible ASCII
        // through: a URL's shape is the document's pattern, exactly.
        (
            json!({"url": "HTtPs://:[%QUk*!{H7=ToO.S@2O", "events": all}),
            "url",
        ),
        (
            json!({"url": "https://hooks.example.com/x#part", "events": all}),
            "url",
        ),
        (
            json!({"url": "https://hooks.example.com/{x}", "events": all}),
            "url",
        ),
        (json!({"url": "https://[1:2:3]/x", "events": all}), "url"),
        // Brackets hold an IPv6 address, never an IPv4 one; IANA's ranges that are no
        // receiver's (discard-only, Teredo and the other protocol assignments) are refused.
        (json!({"url": "https://[1.2.3.4]/x", "events": all}), "url"),
        (json!({"url": "https://[100::1]/x", "events": all}), "url"),
        (json!({"url": "https://[2001::1]/x", "events": all}), "url"),
        (json!({"url": receiver.url, "events": []}), "events"),
        (
            json!({"url": receiver.url, "events": ["payment_request.cancelled"]}),
            "events[0]",
        ),
        (
            json!({"url": receiver.url, "events": ["float.low", "float.low"]}),
            "events[1]",
        ),
        (
            json!({"url": receiver.url, "events": all, "secret": "mine"}),
            "secret",
        ),
    ] {
        let r = post(body.clone());
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert_eq!(r.body["field"], field, "{body}: {}", r.text);
    }

    // Created, with its secret once; a replay with the same key does not show it again.
    let body = json!({"url": receiver.url, "events": all});
    let r = app.post_with_key("/webhook-endpoints", &app.admin, &body, "endpoint-1");
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["webhookEndpointId"].as_str().unwrap().to_string();
    let secret = r.body["secret"].as_str().unwrap().to_string();
    assert!(id.starts_with("we_"));
    assert_eq!(secret.len(), "whsec_".len() + 64);
    assert_eq!(r.body["enabled"], true);
    assert_eq!(r.body["events"].as_array().unwrap().len(), 13);
    let replay = app.post_with_key("/webhook-endpoints", &app.admin, &body, "endpoint-1");
    assert_eq!(replay.status, 201);
    assert_eq!(replay.header("Idempotent-Replayed"), Some("true"));
    assert_eq!(replay.body["secret"], serde_json::Value::Null);
    assert_eq!(replay.body["webhookEndpointId"], id.as_str());
    receiver.set_secret(&secret);
    // Sealed in the file like PII: neither the row nor the file holds it in the clear.
    let stored: String = app
        .store
        .read(|c, _| {
            Ok(c.query_row(
                "SELECT secret_enc FROM webhook_endpoints WHERE id = ?1",
                [&id],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert!(stored.starts_with("v1."), "{stored}");
    let list = app.get("/webhook-endpoints", &app.admin);
    assert_eq!(list.status, 200);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    assert!(!list.text.contains(&secret));
    assert_eq!(app.get("/webhook-endpoints", &app.agent).status, 403);

    // Disabled: events made meanwhile are not for it; enabled again: the next ones are.
    let r = app.post(
        &format!("/webhook-endpoints/{id}/disable"),
        &app.admin,
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["enabled"], false);
    let escrow = app.active_escrow(100, &["rent"]);
    let while_disabled = last_seq(&app);
    // Fanned out while it is disabled: none of those events are for it.
    eventually(Duration::from_secs(15), "the fan-out", || {
        (metric(&app, "remit_outbox_backlog") == 0.0).then_some(())
    });
    let r = app.post(
        &format!("/webhook-endpoints/{id}/enable"),
        &app.admin,
        &json!({}),
    );
    assert_eq!(r.body["enabled"], true);
    let request = app.request(&escrow, "rent", 150, "AFTER");
    let got = receiver.wait_for(Duration::from_secs(15), |r| {
        r.iter()
            .any(|d| d.data["paymentRequestId"] == request.as_str())
    });
    let seqs: Vec<i64> = events(&app)
        .into_iter()
        .filter(|e| got.iter().any(|r| r.id == e.id))
        .map(|e| e.seq)
        .collect();
    assert!(
        seqs.iter().all(|s| *s > while_disabled),
        "nothing made while it was disabled is delivered: {seqs:?} after {while_disabled}"
    );

    // Deleted: gone from the API, its list of deliveries too (each stays readable by its id),
    // and nothing more is made for it.
    let listed = |path: &str| -> Vec<String> {
        let r = app.get(path, &app.admin);
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["deliveryId"].as_str().unwrap().to_string())
            .collect()
    };
    let before_delete = listed(&format!("/webhook-endpoints/{id}/deliveries?limit=200"));
    assert!(!before_delete.is_empty());
    let r = delete_endpoint(&app, &id);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        app.get(&format!("/webhook-endpoints/{id}"), &app.admin)
            .status,
        404
    );
    assert_eq!(
        app.get(&format!("/webhook-endpoints/{id}/deliveries"), &app.admin)
            .status,
        404
    );
    // What was posted to it stays listable, by the endpoint's id given as a filter, paged as
    // under the endpoint (their ids were nowhere else to be read).
    assert_eq!(
        listed(&format!("/webhook-deliveries?endpointId={id}&limit=200")),
        before_delete
    );
    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = app.get(
            &format!("/webhook-deliveries?endpointId={id}&limit=1&cursor={cursor}"),
            &app.admin,
        );
        assert_eq!(r.status, 200, "{}", r.text);
        paged.extend(
            r.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["deliveryId"].as_str().unwrap().to_string()),
        );
        match r.body["nextCursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    assert_eq!(paged, before_delete);
    for (path, status) in [
        ("/webhook-deliveries".to_string(), 400),
        ("/webhook-deliveries?endpointId=".to_string(), 400),
        (
            "/webhook-deliveries?endpointId=we_0000000000000000000000000a".to_string(),
            404,
        ),
        ("/webhook-deliveries?endpointId=nonsense".to_string(), 404),
        (
            format!("/webhook-deliveries?endpointId={id}&status=sent"),
            400,
        ),
    ] {
        let r = app.get(&path, &app.admin);
        assert_eq!(r.status, status, "{path}: {}", r.text);
    }
    let r = app.get(&format!("/webhook-deliveries?endpointId={id}"), &app.sender);
    assert_eq!(r.status, 403, "{}", r.text);
    let rows = || -> i64 {
        app.store
            .read(|c, _| {
                Ok(c.query_row("SELECT COUNT(*) FROM webhook_deliveries", [], |r| r.get(0))?)
            })
            .unwrap()
    };
    // Let the fan-out catch up with what came before, then nothing more.
    eventually(Duration::from_secs(15), "the fan-out", || {
        (metric(&app, "remit_outbox_backlog") == 0.0).then_some(())
    });
    let before = rows();
    app.request(&escrow, "rent", 150, "DELETED");
    eventually(Duration::from_secs(15), "the fan-out", || {
        (metric(&app, "remit_outbox_backlog") == 0.0).then_some(())
    });
    assert_eq!(rows(), before);
}

/// At most `WEBHOOK_ENDPOINTS_MAX` endpoints, and no retry for a deleted one's delivery: both
/// `409 invalid_state`, as the document says.
#[test]
fn the_endpoint_cap_and_a_retry_for_a_deleted_endpoint_are_conflicts() {
    let (app, receiver, first, delivery) = one_failed_delivery(|_| Answer::Status(503));
    // 16: WEBHOOK_ENDPOINTS_MAX, as README and the document say.
    for _ in 1..16 {
        create_endpoint(&app, &receiver.url, &["float.low"]);
    }
    let r = app.post(
        "/webhook-endpoints",
        &app.admin,
        &json!({"url": receiver.url, "events": ["float.low"]}),
    );
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.body["code"], "invalid_state");

    let r = delete_endpoint(&app, &first);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["enabled"], false);
    // Its deliveries stay readable; retrying one is refused.
    let r = app.get(&format!("/webhook-deliveries/{delivery}"), &app.admin);
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app.post(
        &format!("/webhook-deliveries/{delivery}/retry"),
        &app.admin,
        &json!({}),
    );
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.body["code"], "invalid_state");
    // A slot is free again.
    create_endpoint(&app, &receiver.url, &["float.low"]);
}

/// The guard checks the address a delivery connects to, not only the URL at registration: a
/// name that resolves to a loopback or private address when the delivery connects is refused
/// then, whatever it resolved to when it was registered.
#[test]
fn a_delivery_never_connects_to_an_address_the_guard_refuses() {
    let app = spawn_app_with(fast);
    let receiver = Receiver::start();
    // `127.1` and `10.1` resolve to 127.0.0.1 and 10.0.0.1 (the resolver reads them as
    // addresses), and are refused at registration: a host that ends in a number must be four
    // numbers. Names that did not resolve when they were registered (`.invalid` never does)
    // are given them afterwards, as a name's addresses can change after registration, and the
    // guard refuses them at every connection.
    let names = [
        format!("https://127.1:{}/hooks", receiver.port),
        "https://10.1:9/hooks".to_string(),
    ];
    let mut ids = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let r = app.post(
            "/webhook-endpoints",
            &app.admin,
            &json!({"url": name, "events": ["payment_request.created"]}),
        );
        assert_eq!(
            (r.status, r.body["field"].as_str()),
            (400, Some("url")),
            "{}",
            r.text
        );
        assert!(r.text.contains("as four numbers"), "{}", r.text);
        let (id, _) = create_endpoint(
            &app,
            &format!("https://later-{i}.invalid:9/hooks"),
            &["payment_request.created"],
        );
        // The URL is sealed in the file (schema 17).
        let keys = remit::crypto::Keys::new(
            &remit::crypto::MasterKey::from_hex(crate::support::TEST_KEY).unwrap(),
        );
        let sealed = keys
            .seal(remit::crypto::EncryptedColumn::WebhookUrl, &id, name)
            .unwrap();
        app.sql(
            "UPDATE webhook_endpoints SET url_enc = ?1 WHERE id = ?2",
            &[&sealed, &id],
        );
        ids.push(id);
    }
    let (loop_id, private_id) = (&ids[0], &ids[1]);
    let escrow = app.active_escrow(100, &["rent"]);
    app.request(&escrow, "rent", 150, "R1");
    for (id, says) in [(loop_id, "loopback"), (private_id, "private")] {
        let attempt = eventually(Duration::from_secs(15), "a refused attempt", || {
            deliveries(&app, id)
                .into_iter()
                .find_map(|d| d["attemptLog"].as_array().and_then(|a| a.first().cloned()))
        });
        let error = attempt["error"].as_str().unwrap();
        assert!(
            error.starts_with("refused:") && error.contains(says),
            "{error}"
        );
        assert_eq!(attempt["statusCode"], serde_json::Value::Null);
    }
    assert!(receiver.received().is_empty());
}

/// Deleting an endpoint ends its deliveries still waiting: `failed`, saying why, rather than
/// `pending` for ever with a next attempt that never comes (and counted as waiting).
#[test]
fn deleting_an_endpoint_ends_its_waiting_deliveries_as_failed() {
    let app = spawn_app_with(fast);
    let receiver = Receiver::start_with(|_| Answer::Status(503));
    let (endpoint, _) = create_endpoint(&app, &receiver.url, &["payment_request.created"]);
    let escrow = app.active_escrow(100, &["rent"]);
    app.request(&escrow, "rent", 150, "R1");
    let delivery = eventually(Duration::from_secs(10), "an attempt that failed", || {
        deliveries(&app, &endpoint)
            .into_iter()
            .find(|d| d["status"] == "pending" && d["attempts"].as_i64() > Some(0))
    });
    assert_eq!(metric(&app, "remit_webhook_deliveries_pending"), 1.0);
    // The answer is the endpoint as the delete left it: its waiting delivery failed.
    let deleted = delete_endpoint(&app, &endpoint);
    assert_eq!(deleted.status, 200);
    assert_eq!(
        (
            &deleted.body["pendingDeliveries"],
            &deleted.body["failedDeliveries"],
            &deleted.body["enabled"]
        ),
        (&json!(0), &json!(1), &json!(false)),
        "{}",
        deleted.text
    );
    let id = delivery["deliveryId"].as_str().unwrap();
    let after = app
        .get(&format!("/webhook-deliveries/{id}"), &app.admin)
        .body;
    assert_eq!(after["status"], "failed", "{after}");
    assert_eq!(after["nextAttemptAt"], serde_json::Value::Null, "{after}");
    assert!(
        after["lastError"]
            .as_str()
            .unwrap()
            .contains("endpoint was deleted"),
        "{after}"
    );
    assert_eq!(metric(&app, "remit_webhook_deliveries_pending"), 0.0);
    // The endpoint is gone with its list (a deleted resource answers 404, its parts too);
    // each delivery is still readable by its id.
    assert_eq!(
        app.get(
            &format!("/webhook-endpoints/{endpoint}/deliveries"),
            &app.admin
        )
        .status,
        404
    );
    assert_eq!(
        app.get(&format!("/webhook-deliveries/{id}"), &app.admin)
            .status,
        200
    );
}

/// Pausing an endpoint stops its worker before its next post: the worker read the endpoint
/// once per batch, and posted the rest of a batch (up to 64 deliveries, 10 s each) after the
/// admin's `…/disable` had answered (and after a DELETE, when the fan-out had a backlog to go
/// through before it told the worker). Now the endpoint is read before each post, and at most
/// the post in flight when the admin answered is made.
#[test]
fn pausing_an_endpoint_stops_the_batch_being_posted() {
    let app = spawn_app_with(fast);
    let posts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let receiver = {
        let posts = Arc::clone(&posts);
        // The first delivery is answered slowly, so that those made meanwhile are posted in
        // one batch after it; each of those takes half a second.
        Receiver::start_with(move |_| {
            if posts.fetch_add(1, Ordering::SeqCst) == 0 {
                Answer::Slow(Duration::from_millis(2_000), 200)
            } else {
                Answer::Slow(Duration::from_millis(500), 200)
            }
        })
    };
    let posted = |n: usize| {
        eventually(Duration::from_secs(10), "a post", || {
            (posts.load(Ordering::SeqCst) >= n).then_some(())
        })
    };
    let (endpoint, _) = create_endpoint(&app, &receiver.url, &["payment_request.created"]);
    let escrow = app.active_escrow(100, &["rent"]);
    app.request(&escrow, "rent", 150, "R0");
    posted(1);
    for n in 1..=6 {
        app.request(&escrow, "rent", 150, &format!("R{n}"));
    }
    // The batch's first post is in flight.
    posted(2);
    let paused = app.post(
        &format!("/webhook-endpoints/{endpoint}/disable"),
        &app.admin,
        &json!({}),
    );
    assert_eq!(paused.status, 200, "{}", paused.text);
    // The post in flight is answered within half a second; nothing comes after it.
    std::thread::sleep(Duration::from_millis(1_500));
    let made = posts.load(Ordering::SeqCst);
    assert!(
        made <= 3,
        "{} posts after the endpoint was paused",
        made - 2
    );
    let waiting = deliveries(&app, &endpoint)
        .into_iter()
        .filter(|d| d["status"] == "pending")
        .count();
    assert!(
        waiting >= 3,
        "{waiting} deliveries wait for the endpoint's resumption"
    );
}

/// A delivery whose attempt cannot be recorded (the database file moved away while the receiver
/// answers, as a full disk refuses writes) is posted again, at least once, but not in a loop:
/// the worker posted its batch again at once, every few milliseconds, for as long as the
/// records failed. Now it waits its idle second between tries, and once the ledger takes
/// writes again the delivery is recorded as delivered.
#[test]
fn attempts_that_cannot_be_recorded_are_not_posted_again_in_a_loop() {
    let app = spawn_app_with(fast);
    let db = app.dir.path().join("remit.db");
    let away = app.dir.path().join("moved-away.db");
    let first = Arc::new(AtomicBool::new(true));
    let receiver = {
        let (db, away, first) = (db.clone(), away.clone(), Arc::clone(&first));
        Receiver::start_with(move |_| {
            if first.swap(false, Ordering::SeqCst) {
                std::fs::rename(&db, &away).unwrap();
            }
            Answer::Status(200)
        })
    };
    let (endpoint, _) = create_endpoint(&app, &receiver.url, &["payment_request.created"]);
    let escrow = app.active_escrow(100, &["rent"]);
    app.request(&escrow, "rent", 150, "R1");
    receiver.wait_for(Duration::from_secs(10), |r| !r.is_empty());
    std::thread::sleep(Duration::from_millis(2_500));
    let posts = receiver.received().len();
    assert!(
        posts <= 4,
        "{posts} posts in 2.5 s while their attempts could not be recorded"
    );
    std::fs::rename(&away, &db).unwrap();
    let settled = wait_settled(&app, &endpoint, 1, Duration::from_secs(10));
    assert_eq!(settled[0]["status"], "delivered", "{}", settled[0]);
}

/// Guards against: one event of the outbox whose stored text was damaged (bytes that are not
/// UTF-8) stopped every notification after it, the fan-out failing on it every second. It is
/// passed over, said in the audit log, and the events after it are delivered.
#[test]
fn a_damaged_event_is_passed_over_and_the_events_after_it_are_delivered() {
    let app = spawn_app_with(fast);
    let receiver = Receiver::start();
    let (endpoint, secret) = create_endpoint(&app, &receiver.url, &["payment_request.created"]);
    receiver.set_secret(&secret);
    let escrow = app.active_escrow(100, &["rent"]);
    app.store
        .write(|ctx| {
            Ok(ctx.conn.execute(
                "INSERT INTO outbox_events (id, type, created_at, data)
                 VALUES ('evt_01m8862jc5ndbthyz9teyn1fsa', 'payment_request.created', '2026-12-05T00:00:00Z', CAST(X'7BFF7D' AS TEXT))",
                [],
            )?)
        })
        .unwrap();
    let request = app.request(&escrow, "rent", 1_500, "ACC1");
    let items = wait_settled(&app, &endpoint, 1, Duration::from_secs(10));
    assert_eq!(items.len(), 1, "{items:#?}");
    let got = receiver.received();
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].data["paymentRequestId"], request.as_str());
    let audit = app.get("/audit?entity=outbox", &app.admin).body;
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|line| line["action"] == "notifications.event_unreadable"),
        "{audit}"
    );
}

/// An endpoint's URL may carry its receiver's own secret (an API key in its query): it is
/// sealed in the file, its origin alone kept in the clear; the admin reads it whole, and
/// deliveries go to it whole. Before schema 17 it was kept in the clear.
#[test]
fn an_endpoints_url_is_sealed_in_the_file_and_used_whole() {
    let app = spawn_app_with(fast);
    let receiver = Receiver::start();
    let url = format!("{}?apikey=RECEIVERSECRET42", receiver.url);
    let (endpoint, secret) = create_endpoint(&app, &url, &["payment_request.created"]);
    receiver.set_secret(&secret);
    let escrow = app.active_escrow(100, &["rent"]);
    app.request(&escrow, "rent", 1_500, "ACC1");
    let items = wait_settled(&app, &endpoint, 1, Duration::from_secs(10));
    assert_eq!(items[0]["status"], "delivered", "{}", items[0]);
    assert!(receiver.received()[0].verified);
    let shown = app.get(&format!("/webhook-endpoints/{endpoint}"), &app.admin);
    assert_eq!(shown.body["url"], url.as_str(), "{}", shown.text);
    let listed = app.get("/webhook-endpoints", &app.admin);
    assert_eq!(
        listed.body["items"][0]["url"],
        url.as_str(),
        "{}",
        listed.text
    );
    assert!(
        !crate::support::ledger_file_text(app.dir.path()).contains("RECEIVERSECRET42"),
        "the URL's secret is readable in the file"
    );
    let origin: String = app
        .store
        .read(|c, _| Ok(c.query_row("SELECT url FROM webhook_endpoints", [], |r| r.get(0))?))
        .unwrap();
    assert!(
        receiver.url.starts_with(&origin)
            && !origin.contains("/hooks")
            && origin.starts_with("http://127.0.0.1:"),
        "{origin}"
    );
}

/// An endpoint receives the events made after it, even those the fan-out reaches only after it
/// exists: events committed before it and not yet fanned out (a backlog, here made by one
/// command that writes an event and then the endpoint, which the fan-out can only see together)
/// were given to it too.
#[test]
fn an_endpoint_made_behind_a_backlog_receives_only_the_events_after_it() {
    use remit::domain::{EventType, WebhookUrl};
    use remit::service::{endpoints, Actor};
    let app = spawn_app_with(fast);
    let receiver = Receiver::start();
    let url = WebhookUrl::parse("url", &receiver.url, false).unwrap();
    let (before, created) = app
        .store
        .write(move |ctx| {
            let before = ctx.emit(EventType::FloatLow, json!({"balanceKes": 1}))?;
            let created =
                endpoints::create(ctx, &Actor::system("test"), &url, &[EventType::FloatLow])?;
            Ok((before, created))
        })
        .unwrap();
    receiver.set_secret(&created.secret);
    let endpoint = created.endpoint.webhook_endpoint_id.to_string();
    // Made beside the server: an admin's call tells its notifier there is an endpoint to serve.
    let r = app.post(
        &format!("/webhook-endpoints/{endpoint}/enable"),
        &app.admin,
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let after = app
        .store
        .write(|ctx| ctx.emit(EventType::FloatLow, json!({"balanceKes": 2})))
        .unwrap();
    receiver.wait_for(Duration::from_secs(10), |got| {
        got.iter().any(|r| r.id == after.to_string())
    });
    let events: Vec<String> = deliveries(&app, &endpoint)
        .iter()
        .map(|d| d["eventId"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(events, vec![after.to_string()], "not {before}");
    assert!(!receiver.ids().contains(&before.to_string()));
}

/// Guards against: a webhook endpoint pointed at another host in the file (its URL in the
/// clear, which the server sealed at its next start as its own), or its events widened, passed
/// `remit check`, and the ledger's events went to whoever the editor chose. The endpoint is
/// held to the audit line that made it: its host and its events.
#[test]
fn a_webhook_endpoint_pointed_elsewhere_or_widened_in_the_file_is_found() {
    let app = spawn_app_with(fast);
    let (endpoint, _) = create_endpoint(
        &app,
        "http://127.0.0.1:9/hooks?key=RECEIVERKEY",
        &["payment_request.created"],
    );
    app.assert_integrity();
    let mismatches =
        || -> String { app.get("/admin/integrity", &app.admin).body["mismatches"].to_string() };
    for (edit, says) in [
        (
            "UPDATE webhook_endpoints SET url_enc = NULL, url = 'http://127.0.0.1.evil.example:9/x' WHERE id = ?1",
            "posts to http://127.0.0.1.evil.example:9/x",
        ),
        (
            "UPDATE webhook_endpoints SET events = '[\"payment_request.created\",\"deposit.recorded\"]' WHERE id = ?1",
            "deposit.recorded",
        ),
        // The same host, its scheme or port changed.
        (
            "UPDATE webhook_endpoints SET url = 'https://127.0.0.1:9' WHERE id = ?1",
            "posts to https://127.0.0.1:9",
        ),
        // Unsealed, on another port of the same host.
        (
            "UPDATE webhook_endpoints SET url_enc = NULL, url = 'http://127.0.0.1:90/hooks' WHERE id = ?1",
            "posts to http://127.0.0.1:90/hooks",
        ),
        // The host named first, as credentials: posted to the host after the '@'.
        (
            "UPDATE webhook_endpoints SET url_enc = NULL, url = 'http://127.0.0.1:x@evil.example' WHERE id = ?1",
            "posts to http://127.0.0.1:x@evil.example",
        ),
    ] {
        let (url, url_enc, events): (String, Option<String>, String) = app
            .store
            .read({
                let endpoint = endpoint.clone();
                move |c, _| {
                    Ok(c.query_row(
                        "SELECT url, url_enc, events FROM webhook_endpoints WHERE id = ?1",
                        [&endpoint],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )?)
                }
            })
            .unwrap();
        app.sql(edit, &[&endpoint]);
        let found = mismatches();
        assert!(
            found.contains(&format!("webhook endpoint {endpoint}")) && found.contains(says),
            "{edit}: {found}"
        );
        app.sql(
            "UPDATE webhook_endpoints SET url = ?2, url_enc = NULLIF(?3, ''), events = ?4 WHERE id = ?1",
            &[&endpoint, &url, &url_enc.unwrap_or_default(), &events],
        );
        app.assert_integrity();
    }
}
