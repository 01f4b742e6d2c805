//! The outbox survives `kill -9`: events committed but not yet delivered (their receiver had not
//! answered when the process died) are delivered after a restart, every one of them, each
//! fanned out once. Against the real binary (`support::process`).

use crate::support::notify::ALL_EVENTS;
use crate::support::process::*;
use crate::support::receiver::{Answer, Receiver};
use crate::support::TEST_KEY;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn a_kill_9_between_commit_and_delivery_loses_no_event() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let log = dir.path().join("remit.log");
    // Until told otherwise the receiver takes each delivery and never answers: whatever the
    // server committed stays undelivered.
    let answering = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&answering);
    let receiver = Receiver::start_with(move |_| {
        if flag.load(Ordering::SeqCst) {
            Answer::Status(200)
        } else {
            Answer::Hang(Duration::from_secs(20))
        }
    });
    let mut server = Server::start(&db, TEST_KEY, &log, &[]);
    let admin = server.admin_token();
    let r = server.post(
        "/webhook-endpoints",
        &admin,
        &json!({"url": receiver.url, "events": ALL_EVENTS}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let endpoint = r.body["webhookEndpointId"].as_str().unwrap().to_string();
    let secret = r.body["secret"].as_str().unwrap().to_string();
    receiver.set_secret(&secret);
    let (sender, agent, escrow) = a_texted_sender_and_a_funded_escrow(&server, &admin, "sw");
    let requests = pending_requests(&server, &agent, &escrow, 4);
    for id in &requests {
        let r = server.post(
            &format!("/payment-requests/{id}/approve"),
            &sender,
            &json!({}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
    }
    wait_for_payouts(&server, &admin, &requests);
    // The endpoint's worker holds a delivery the receiver will not answer.
    receiver.wait_for(Duration::from_secs(10), |r| !r.is_empty());

    server.kill9();

    let (committed, delivered): (BTreeSet<String>, i64) = {
        let conn = read_only(&db);
        let ids = conn
            .prepare("SELECT id FROM outbox_events")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let delivered = conn
            .query_row(
                "SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'delivered'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        (ids, delivered)
    };
    // deposit, activation, 4 × (created, approved, paid) at least.
    assert!(committed.len() >= 14, "{committed:?}");
    assert_eq!(delivered, 0, "nothing was delivered before the kill");

    answering.store(true, Ordering::SeqCst);
    let mut server = Server::start(&db, TEST_KEY, &log, &[]);
    let got = receiver.wait_for(Duration::from_secs(30), |r| {
        let ids: BTreeSet<&str> = r.iter().map(|d| d.id.as_str()).collect();
        committed.iter().all(|id| ids.contains(id.as_str()))
    });
    assert!(got.iter().all(|r| r.verified), "every delivery verifies");

    // Each event was fanned out once, and every delivery of it is done.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = server.get(
            &format!("/webhook-endpoints/{endpoint}/deliveries?limit=200"),
            &admin,
        );
        assert_eq!(r.status, 200, "{}", r.text);
        let items = r.body["items"].as_array().unwrap();
        if items.iter().all(|d| d["status"] == "delivered") {
            let events: BTreeSet<&str> = items
                .iter()
                .map(|d| d["eventId"].as_str().unwrap())
                .collect();
            assert_eq!(events.len(), items.len(), "one delivery per event");
            assert!(committed.iter().all(|id| events.contains(id.as_str())));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "deliveries still pending: {}",
            r.text
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.terminate().code(), Some(0));

    // Neither a phone, nor an SMS text, nor the secret ever reached the log.
    let text = std::fs::read_to_string(&log).unwrap();
    for never in [
        "733000001",
        "712345678",
        "malipo",
        "yanasubiri",
        "M-Pesa receipt",
        &secret,
    ] {
        assert!(!text.contains(never), "the log holds {never:?}");
    }
    let conn = read_only(&db);
    let texts: i64 = conn
        .query_row("SELECT COUNT(*) FROM sms_messages", [], |r| r.get(0))
        .unwrap();
    assert!(texts >= 8, "texts were recorded: {texts}");
}

/// A sender with a phone (texts in `language`), an agent, and an escrow of USD 100 (`rent`) the
/// agent funded in cash: their tokens and the escrow's id.
fn a_texted_sender_and_a_funded_escrow(
    server: &Server,
    admin: &str,
    language: &str,
) -> (String, String, String) {
    let user = |role: &str, name: &str, phone: Option<&str>| {
        let mut body = json!({"role": role, "name": name, "language": language});
        if let Some(phone) = phone {
            body["phone"] = json!(phone);
        }
        let r = server.post("/users", admin, &body);
        assert_eq!(r.status, 201, "{}", r.text);
        r.body["token"].as_str().unwrap().to_string()
    };
    let sender = user("sender", "Amina", Some("0733000001"));
    let agent = user("agent", "Kiosk", None);
    let escrow = funded_escrow(
        server,
        &sender,
        &agent,
        100,
        "0712345678",
        "Wanjiru",
        &["rent"],
    );
    (sender, agent, escrow)
}

/// The settings of a server that texts through the fake Africa's Talking `fake`.
fn texting_through(fake: &crate::support::fake_at::FakeAt) -> [(&'static str, &str); 4] {
    use crate::support::fake_at;
    [
        ("REMIT_SMS_GATEWAY", "africastalking"),
        ("REMIT_AT_USERNAME", fake_at::USERNAME),
        ("REMIT_AT_API_KEY", fake_at::API_KEY),
        ("REMIT_AT_URL", fake.base.as_str()),
    ]
}

/// A text whose call to the gateway is cut by `kill -9` (sent, its answer never written): it was
/// sent again after each restart, its attempt not counted, so a server killed again and again
/// sent it again and again. Its attempt is counted before the call and the call marked as under
/// way; after a restart the outcome is known to be unknown: tried once more, and a second cut
/// call fails it ("sent at most twice"). Against the real binary and a fake Africa's Talking.
#[test]
fn a_text_whose_call_is_cut_by_kill_9_is_sent_at_most_twice() {
    use crate::support::fake_at::FakeAt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let log = dir.path().join("remit.log");
    let fake = FakeAt::start();
    // The gateway takes each text and answers long after: the server is killed meanwhile.
    fake.answer_late(Duration::from_secs(60));
    let env = texting_through(&fake);
    let mut server = Server::start(&db, TEST_KEY, &log, &env);
    let admin = server.admin_token();
    let (_, agent, escrow) = a_texted_sender_and_a_funded_escrow(&server, &admin, "en");
    // One text: to the sender, a request waits for their approval.
    pending_requests(&server, &agent, &escrow, 1);
    let row = || -> (String, i64, i64, Option<String>) {
        read_only(&db)
            .query_row(
                "SELECT status, attempts, in_flight, error FROM sms_messages",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap()
    };
    // Its due time moved to now while the server is down: its claim would hold it 30 s.
    let due_now = || {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute(
            "UPDATE sms_messages SET next_attempt_at = '2020-01-01T00:00:00.000Z' WHERE status = 'pending'",
            [],
        )
        .unwrap();
    };

    fake.wait_for_calls(1, Duration::from_secs(15));
    server.kill9();
    let (status, attempts, in_flight, _) = row();
    assert_eq!(
        (status.as_str(), attempts, in_flight),
        ("pending", 1, 1),
        "the cut call is counted and marked"
    );

    // Restarted: sent once more, the outcome before not known; cut again.
    due_now();
    let mut server = Server::start(&db, TEST_KEY, &log, &env);
    fake.wait_for_calls(2, Duration::from_secs(15));
    server.kill9();
    let (status, attempts, in_flight, error) = row();
    assert_eq!((status.as_str(), attempts, in_flight), ("pending", 2, 1));
    assert!(
        error
            .as_deref()
            .is_some_and(|e| e.starts_with("outcome unknown (it may have been sent)")),
        "{error:?}"
    );

    // Restarted again, the gateway answering at once now: not sent a third time.
    fake.answer_late(Duration::ZERO);
    due_now();
    let mut server = Server::start(&db, TEST_KEY, &log, &env);
    let deadline = Instant::now() + Duration::from_secs(15);
    let (status, attempts, in_flight, error) = loop {
        let now = row();
        if now.0 != "pending" || Instant::now() > deadline {
            break now;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!((status.as_str(), attempts, in_flight), ("failed", 2, 0));
    assert!(
        error
            .as_deref()
            .is_some_and(|e| e.ends_with("a second time: not tried again")),
        "{error:?}"
    );
    assert_eq!(fake.calls().len(), 2, "{:?}", fake.calls());
    assert_eq!(server.terminate().code(), Some(0));
    // Said in the log, where the operator looks.
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("was never written, after an outcome not known or as its last try: failed, not sent again"),
        "{logged}"
    );
}

/// README: a text the gateway answered for another number is a warning in the log, where the
/// operator looks (it was logged as any refusal, at INFO), its id only.
#[test]
fn a_text_answered_for_another_number_is_a_warning_in_the_log() {
    use crate::support::fake_at::{FakeAt, Turn};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let log = dir.path().join("remit.log");
    let fake = FakeAt::start();
    fake.answer_in_turn(&[Turn::OtherNumber]);
    let env = texting_through(&fake);
    let mut server = Server::start(&db, TEST_KEY, &log, &env);
    let admin = server.admin_token();
    let (_, agent, escrow) = a_texted_sender_and_a_funded_escrow(&server, &admin, "en");
    pending_requests(&server, &agent, &escrow, 1);
    let deadline = Instant::now() + Duration::from_secs(15);
    while server.get("/sms?status=failed", &admin).body["items"]
        .as_array()
        .is_none_or(|items| items.is_empty())
    {
        assert!(Instant::now() < deadline, "the text never failed");
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(server.terminate().code(), Some(0));
    let logged = std::fs::read_to_string(&log).unwrap();
    let line = logged
        .lines()
        .find(|l| l.contains("answered for another number, not sent again"))
        .unwrap_or_else(|| panic!("{logged}"));
    assert!(
        line.contains("WARN") && !line.contains("700000999"),
        "{line}"
    );
}
