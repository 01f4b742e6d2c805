//! SMS out: who gets what and in which language, recorded (sealed) and shown to admins with the
//! `log` gateway, sent through a fake Africa's Talking on loopback (`support::fake_at`) with its
//! key and form fields, retried after a 500 and not after a refusal; the users' language; key
//! rotation covering the new sealed columns.

use crate::support::app::*;
use crate::support::fake_at::{self, FakeAt, Turn};
use crate::support::notify::{create_endpoint, eventually, metric};
use crate::support::process::{remit, run, stop_app};
use crate::support::TEST_KEY;
use remit::config::{AfricasTalkingConfig, SmsGatewayKind};
use serde_json::{json, Value};
use std::time::Duration;

/// A sender who reads Kiswahili, with a phone; returns their token.
fn swahili_sender(app: &TestApp) -> String {
    let r = app.post(
        "/users",
        &app.admin,
        &json!({"role": "sender", "name": "Baraka", "phone": "0733000002", "language": "sw"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["user"]["language"], "sw");
    r.body["token"].as_str().unwrap().to_string()
}

fn escrow_of(app: &TestApp, sender: &str, phone: &str) -> String {
    let r = app.post(
        "/escrows",
        sender,
        &json!({"recipientPhone": phone, "recipientName": "Wanjiru", "totalAmountUsd": 100, "categories": ["school_fees"]}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["escrowId"].as_str().unwrap().to_string();
    let r = app.post(
        &format!("/escrows/{id}/deposits"),
        &app.agent,
        &json!({"amountUsd": 100, "reference": format!("cash-{id}")}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    id
}

fn sms(app: &TestApp, query: &str) -> Vec<Value> {
    let r = app.get(&format!("/sms{query}"), &app.admin);
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["items"].as_array().unwrap().clone()
}

fn wait_sms(app: &TestApp, n: usize, settled: bool) -> Vec<Value> {
    eventually(Duration::from_secs(10), "the SMS", || {
        let items = sms(app, "");
        (items.len() >= n && (!settled || items.iter().all(|s| s["status"] != "pending")))
            .then_some(items)
    })
}

#[test]
fn with_the_log_gateway_each_text_is_recorded_sealed_in_its_language_and_shown_to_admins() {
    let app = spawn_app();
    let baraka = swahili_sender(&app);
    let escrow = escrow_of(&app, &baraka, RECIPIENT_PHONE);
    // A request waiting: its sender hears of it, in Kiswahili.
    let request = app.request(&escrow, "school_fees", 1_500, "ACC1");
    let items = wait_sms(&app, 1, true);
    let waiting = &items[0];
    assert_eq!(waiting["template"], "request_waiting");
    assert_eq!(waiting["language"], "sw");
    assert_eq!(waiting["status"], "logged");
    assert_eq!(waiting["gateway"], "log");
    assert_eq!(waiting["eventType"], "payment_request.created");
    assert_eq!(
        waiting["body"],
        "remit: malipo ya KES 1,500 (USD 10.00) kwa Karo ya shule yanasubiri idhini yako."
    );
    assert!(waiting.get("phone").is_none() && !waiting.to_string().contains("733000002"));

    // Paid: the recipient hears of it, in English (no language chosen), with the receipt.
    let r = app.post(
        &format!("/payment-requests/{request}/approve"),
        &baraka,
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let view = app.wait_for_status(&request, &["paid"]);
    let items = wait_sms(&app, 2, true);
    let paid = &items[0];
    assert_eq!(paid["template"], "request_paid");
    assert_eq!(paid["language"], "en");
    let receipt = view["payout"]["mpesaReceipt"].as_str().unwrap();
    assert_eq!(
        paid["body"],
        format!("remit: your payment of KES 1,500 was paid. M-Pesa receipt {receipt}.")
    );

    // Failed: the recipient; stuck: the sender. No merchant detail in any of them.
    let failed = app.request(&escrow, "school_fees", 150, FAIL_ACCOUNT);
    app.post(
        &format!("/payment-requests/{failed}/approve"),
        &baraka,
        &json!({}),
    );
    app.wait_for_status(&failed, &["failed"]);
    let stuck = app.request(&escrow, "school_fees", 150, TIMEOUT_ACCOUNT);
    app.post(
        &format!("/payment-requests/{stuck}/approve"),
        &baraka,
        &json!({}),
    );
    app.wait_for_payout_flag(&stuck);
    let items = wait_sms(&app, 6, true);
    let templates: Vec<&str> = items
        .iter()
        .map(|s| s["template"].as_str().unwrap())
        .collect();
    assert!(templates.contains(&"request_failed"), "{templates:?}");
    assert!(templates.contains(&"payout_stuck"), "{templates:?}");
    let stuck_text = items
        .iter()
        .find(|s| s["template"] == "payout_stuck")
        .unwrap();
    assert_eq!(
        stuck_text["body"],
        "remit: malipo ya KES 150 uliyoidhinisha yamechelewa kwa M-Pesa. Tunayafuatilia; pesa yako iko salama."
    );
    for s in &items {
        let body = s["body"].as_str().unwrap();
        assert!(
            !body.contains("Kenya Power") && !body.contains("888880"),
            "{body}"
        );
        assert!(body.len() <= 160, "{body}");
    }

    // A sender without a phone gets nothing; filters; admins only.
    let other_escrow = escrow_of(&app, &app.other_sender, "0712000111");
    let before = sms(&app, "").len();
    app.request(&other_escrow, "school_fees", 150, "ACC2");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sms(&app, "").len(), before);
    assert!(sms(&app, "?status=sent").is_empty());
    let user_id = waiting["userId"].as_str().unwrap();
    assert!(sms(&app, &format!("?userId={user_id}"))
        .iter()
        .all(|s| s["userId"] == user_id));
    // A user that does not exist is 404, whatever the shape of its id (not an empty list).
    let last = user_id.chars().last().unwrap();
    let unknown = format!(
        "{}{}",
        &user_id[..user_id.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    for id in [unknown.as_str(), "garbage"] {
        let r = app.get(&format!("/sms?userId={id}"), &app.admin);
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (404, Some("not_found")),
            "{id}: {}",
            r.text
        );
    }
    assert_eq!(app.get("/sms", &app.agent).status, 403);
    assert_eq!(app.get("/sms?status=lost", &app.admin).status, 400);

    // Sealed at rest: the text is in neither the file nor its write-ahead log.
    app.store.close();
    for file in ["remit.db", "remit.db-wal"] {
        let bytes = std::fs::read(app.dir.path().join(file)).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("yanasubiri idhini"),
            "{file} holds an SMS text"
        );
        assert!(
            !text.contains("was paid. M-Pesa"),
            "{file} holds an SMS text"
        );
    }
}

/// `with_fake_at`, giving up on each call after 300 ms.
fn impatient_with(fake: &FakeAt) -> impl FnOnce(&mut remit::config::Config) + '_ {
    move |c| {
        with_fake_at(fake)(c);
        if let SmsGatewayKind::AfricasTalking(at) = &mut c.notify.sms {
            at.timeout = Duration::from_millis(300);
        }
    }
}

fn with_fake_at(fake: &FakeAt) -> impl FnOnce(&mut remit::config::Config) + '_ {
    move |c| {
        c.notify.sms = SmsGatewayKind::AfricasTalking(Box::new(AfricasTalkingConfig {
            url: fake.base.clone(),
            username: fake_at::USERNAME.into(),
            api_key: fake_at::API_KEY.into(),
            sender_id: Some(fake_at::SENDER_ID.into()),
            timeout: Duration::from_secs(5),
        }));
        c.notify.sms_retry_base = Duration::from_millis(50);
    }
}

#[test]
fn africas_talking_gets_each_text_with_its_key_and_fields_and_a_500_is_tried_again() {
    let fake = FakeAt::start();
    fake.fail_first(1);
    fake.refuse_number("+254712345678");
    let app = spawn_app_with(with_fake_at(&fake));
    let escrow = app.active_escrow(100, &["rent"]);
    let request = app.request(&escrow, "rent", 1_500, "ACC1");
    let calls = fake.wait_for_calls(2, Duration::from_secs(10));
    assert_eq!(fake.refused_auth(), 0);
    assert_eq!(calls[0].status, 500);
    let sent = &calls[1];
    assert_eq!(sent.status, 201, "{sent:?}");
    assert_eq!(sent.to, "+254733000001");
    assert_eq!(sent.username, fake_at::USERNAME);
    assert_eq!(sent.from.as_deref(), Some(fake_at::SENDER_ID));
    assert_eq!(sent.bulk_sms_mode.as_deref(), Some("1"));
    assert_eq!(
        sent.message,
        "remit: a payment of KES 1,500 (USD 10.00) for Rent is waiting for your approval."
    );
    let items = wait_sms(&app, 1, true);
    assert_eq!(items[0]["status"], "sent", "{}", items[0]);
    assert_eq!(items[0]["attempts"], 2);
    assert_eq!(items[0]["gateway"], "africastalking");
    assert!(items[0]["providerId"]
        .as_str()
        .unwrap()
        .starts_with("ATXid_fake"));
    assert_eq!(items[0]["providerStatus"], "Success (101)");
    // Counted once the worker has recorded it, a moment after the list shows it.
    eventually(Duration::from_secs(5), "the sent text counted", || {
        (metric(&app, "remit_sms_sent_total") == 1.0).then_some(())
    });

    // The recipient's number is refused: failed at once, never tried again.
    assert_eq!(app.approve(&request).status, 200);
    app.wait_for_status(&request, &["paid"]);
    let items = wait_sms(&app, 2, true);
    let refused = items
        .iter()
        .find(|s| s["template"] == "request_paid")
        .unwrap();
    assert_eq!(refused["status"], "failed", "{refused}");
    assert_eq!(refused["attempts"], 1);
    assert_eq!(refused["providerStatus"], "InvalidPhoneNumber (403)");
    std::thread::sleep(Duration::from_millis(200));
    let to_recipient = fake
        .calls()
        .iter()
        .filter(|c| c.to == "+254712345678")
        .count();
    assert_eq!(to_recipient, 1);
    eventually(Duration::from_secs(5), "the failed text counted", || {
        (metric(&app, "remit_sms_failed_total") == 1.0).then_some(())
    });
}

/// A text whose result cannot be recorded (here the database file is moved away while the
/// gateway answers, as a full disk refuses writes) is not sent again and again: the worker
/// recorded a batch at its end, and a record that failed sent every text of it again a second
/// later, for as long as it failed. Now each text is claimed by a write before it is sent and
/// recorded as soon as it is answered: while the ledger takes no writes nothing more is sent;
/// once it takes them, the text whose answer the ledger lost is sent once more and recorded.
#[test]
fn a_text_whose_result_cannot_be_recorded_is_not_sent_again_and_again() {
    let fake = FakeAt::start();
    let app = spawn_app_with(with_fake_at(&fake));
    let db = app.dir.path().join("remit.db");
    let away = app.dir.path().join("moved-away.db");
    {
        let (db, away) = (db.clone(), away.clone());
        fake.before_next_answer(move || std::fs::rename(&db, &away).unwrap());
    }
    let escrow = app.active_escrow(100, &["rent"]);
    app.request(&escrow, "rent", 1_500, "ACC1");
    fake.wait_for_calls(1, Duration::from_secs(10));
    // The worker tries again every second (its idle wait) for as long as writes are refused.
    std::thread::sleep(Duration::from_millis(2_500));
    let calls = fake.calls();
    assert_eq!(
        calls.len(),
        1,
        "sent again while nothing could be recorded: {calls:?}"
    );
    std::fs::rename(&away, &db).unwrap();
    let items = wait_sms(&app, 1, true);
    assert_eq!(items[0]["status"], "sent", "{}", items[0]);
    let calls = fake.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0].message, calls[1].message);
}

#[test]
fn a_users_language_is_set_when_they_are_made_through_the_api_or_the_command_line() {
    let app = spawn_app();
    let r = app.post(
        "/users",
        &app.admin,
        &json!({"role": "sender", "name": "X", "language": "fr"}),
    );
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["field"], "language");
    let r = app.post("/users", &app.admin, &json!({"role": "agent", "name": "Y"}));
    assert_eq!(r.body["user"]["language"], "en", "{}", r.text);
    let dir = stop_app(app);
    let db = dir.path().join("remit.db");
    let add = |language: &str| {
        let mut cmd = remit(dir.path(), Some(TEST_KEY));
        cmd.args([
            "user",
            "add",
            "--role",
            "sender",
            "--name",
            "Zawadi",
            "--language",
            language,
        ])
        .arg("--db")
        .arg(&db);
        run(cmd)
    };
    let refused = add("fr");
    assert_ne!(refused.code, Some(0), "{refused}");
    assert!(refused.stderr.contains("--language"), "{refused}");
    let added = add("sw");
    assert_eq!(added.code, Some(0), "{added}");
    let conn = crate::support::process::read_only(&db);
    let languages: Vec<Option<String>> = conn
        .prepare("SELECT language FROM users ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert!(languages.contains(&Some("sw".into())), "{languages:?}");
}

/// `remit rotate-key` walks every sealed column: a webhook secret and an SMS text still open
/// under the new key, with the same values.
#[test]
fn key_rotation_re_seals_webhook_secrets_and_sms_texts() {
    const NEW_KEY: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
    let app = spawn_app();
    let (endpoint, secret) =
        create_endpoint(&app, "https://hooks.example.com/remit", &["float.low"]);
    let escrow = app.active_escrow(100, &["rent"]);
    app.request(&escrow, "rent", 150, "ACC1");
    let body = wait_sms(&app, 1, true)[0]["body"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = stop_app(app);
    let db = dir.path().join("remit.db");
    let key_file = dir.path().join("new.key");
    std::fs::write(&key_file, NEW_KEY).unwrap();
    let rotated = crate::support::process::rotate_key(dir.path(), Some(TEST_KEY), &key_file, &db);
    assert_eq!(rotated.code, Some(0), "{rotated}");

    let mut options = remit::store::OpenOptions::new(&db);
    options.key_hex = Some(NEW_KEY.into());
    options.create = false;
    let store = remit::store::open(&options).unwrap();
    let id = remit::domain::WebhookEndpointId::parse(&endpoint).unwrap();
    let opened = store
        .read(|conn, keys| remit::service::endpoints::for_worker(conn, keys, &id))
        .unwrap()
        .unwrap();
    assert_eq!(opened.secret, secret);
    let page = store
        .read(|conn, keys| remit::service::sms::list(conn, keys, None, None, 10, None))
        .unwrap();
    assert_eq!(page.items[0].body, body);
}

/// A text waiting to be tried again says when in whole seconds, as every time of every answer
/// (it said it to the millisecond, as kept).
#[test]
fn a_text_to_be_tried_again_says_when_in_whole_seconds() {
    let fake = FakeAt::start();
    fake.fail_first(1_000);
    let app = spawn_app_with(with_fake_at(&fake));
    let escrow = app.active_escrow(100, &["rent"]);
    app.request(&escrow, "rent", 1_500, "ACC1");
    let waiting = eventually(Duration::from_secs(10), "a text tried and waiting", || {
        sms(&app, "")
            .into_iter()
            .find(|s| s["status"] == "pending" && s["attempts"].as_i64() >= Some(1))
    });
    let next = waiting["nextAttemptAt"].as_str().unwrap_or_default();
    assert!(
        next.len() == 20 && remit::time::parse_rfc3339(next).is_some(),
        "{waiting}"
    );
}

/// A gateway that takes each text but answers after the call's time is up: the outcome is not
/// known (it may have been sent), so the text is tried once more and then no more: it was
/// tried six times, and a slow gateway that took every try sent it six times.
#[test]
fn a_text_whose_outcome_is_not_known_is_sent_at_most_twice() {
    let fake = FakeAt::start();
    fake.answer_late(Duration::from_millis(900));
    let app = spawn_app_with(impatient_with(&fake));
    let escrow = app.active_escrow(100, &["rent"]);
    app.request(&escrow, "rent", 1_500, "ACC1");
    let failed = eventually(Duration::from_secs(20), "the text given up", || {
        sms(&app, "").into_iter().find(|s| s["status"] == "failed")
    });
    assert_eq!(failed["attempts"], 2, "{failed}");
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("outcome unknown (it may have been sent)")
            && error.ends_with("not tried again"),
        "{failed}"
    );
    // The fake took it twice; nothing more comes.
    let calls = fake.wait_for_calls(2, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(fake.calls().len(), 2, "{calls:?}");
}

/// A recipient is made, in English, by the first escrow to their phone, and their language
/// could not be changed by anyone: an admin sets it, and their texts are in Swahili from then.
#[test]
fn an_admin_sets_a_recipients_language_and_their_texts_follow_it() {
    let app = spawn_app();
    let baraka = swahili_sender(&app);
    let escrow = escrow_of(&app, &baraka, "0733444555");
    let recipient = app.get(&format!("/escrows/{escrow}"), &app.admin).body["recipient"]["userId"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/users/{recipient}/language");
    let put = |token: &str, body: &Value| {
        app.raw(
            "PUT",
            &path,
            Some(token),
            Some(("application/json", body.to_string().as_bytes())),
            &[],
        )
    };
    assert_eq!(put(&baraka, &json!({"language": "sw"})).status, 403);
    let r = put(&app.admin, &json!({"language": "fr"}));
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (400, Some("language")),
        "{}",
        r.text
    );
    let r = put(&app.admin, &json!({"language": "sw"}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.body["userId"].as_str(), r.body["language"].as_str()),
        (Some(recipient.as_str()), Some("sw"))
    );
    // Set again: the same answer, and one audit line for the change.
    assert_eq!(put(&app.admin, &json!({"language": "sw"})).status, 200);
    let changes: i64 = app
        .store
        .read(|c, _| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM audit_log WHERE action = 'user.language_set' AND entity = ?1",
                [&recipient],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(changes, 1);
    let missing = app.raw(
        "PUT",
        "/users/usr_0000000000000000000000000a/language",
        Some(&app.admin),
        Some(("application/json", br#"{"language": "sw"}"#)),
        &[],
    );
    assert_eq!(missing.status, 404, "{}", missing.text);
    // Paid: the recipient hears of it in Swahili.
    let request = app.request(&escrow, "school_fees", 1_500, "ACC1");
    let r = app.post(
        &format!("/payment-requests/{request}/approve"),
        &baraka,
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    app.wait_for_status(&request, &["paid"]);
    let paid = eventually(Duration::from_secs(10), "the paid text", || {
        sms(&app, "")
            .into_iter()
            .find(|s| s["template"] == "request_paid")
    });
    assert_eq!(paid["language"], "sw", "{paid}");
}

/// An outcome not known, a refusal of the moment, another outcome not known: that is two
/// texts that may have gone, and it is given up (a refusal between the two made the second one
/// a first again: three, or more).
#[test]
fn a_refusal_between_two_unknown_outcomes_does_not_reset_them() {
    let fake = FakeAt::start();
    fake.answer_in_turn(&[
        Turn::Late(Duration::from_millis(900)),
        Turn::Fail,
        Turn::Late(Duration::from_millis(900)),
    ]);
    let app = spawn_app_with(impatient_with(&fake));
    let escrow = app.active_escrow(100, &["rent"]);
    app.request(&escrow, "rent", 1_500, "ACC1");
    let failed = eventually(Duration::from_secs(20), "the text given up", || {
        sms(&app, "").into_iter().find(|s| s["status"] == "failed")
    });
    assert_eq!(failed["attempts"], 3, "{failed}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(fake.calls().len(), 3, "{:?}", fake.calls());
}

/// The gateway answers a text as sent to another number than the one it was given: it was
/// recorded as sent. It is no text of this recipient's: failed, the number masked, not sent
/// again (its words may have reached that number).
#[test]
fn a_text_answered_for_another_number_is_failed_not_sent_again() {
    let fake = FakeAt::start();
    fake.answer_in_turn(&[Turn::OtherNumber]);
    let app = spawn_app_with(impatient_with(&fake));
    let escrow = app.active_escrow(100, &["rent"]);
    app.request(&escrow, "rent", 1_500, "ACC1");
    let failed = eventually(Duration::from_secs(20), "the text failed", || {
        sms(&app, "").into_iter().find(|s| s["status"] == "failed")
    });
    assert_eq!(failed["attempts"], 1, "{failed}");
    assert_eq!(
        failed["error"], "the gateway answered for another number: not sent again",
        "{failed}"
    );
    let said = failed["providerStatus"].as_str().unwrap_or_default();
    assert!(
        said.contains("another number (+***999)") && !failed.to_string().contains("700000999"),
        "{failed}"
    );
    assert!(
        sms(&app, "").iter().all(|s| s["status"] != "sent"),
        "{:?}",
        sms(&app, "")
    );
    assert_eq!(fake.calls().len(), 1, "{:?}", fake.calls());
}

/// While the gateway holds a call, the text reads as being sent (its attempt counted), and no
/// more once its answer is written.
#[test]
fn a_text_reads_as_being_sent_while_its_call_is_under_way() {
    let fake = FakeAt::start();
    fake.answer_late(Duration::from_millis(1_500));
    let app = spawn_app_with(with_fake_at(&fake));
    let escrow = app.active_escrow(100, &["rent"]);
    app.request(&escrow, "rent", 1_500, "ACC1");
    fake.wait_for_calls(1, Duration::from_secs(10));
    let during = sms(&app, "").into_iter().next().unwrap();
    assert_eq!(
        (&during["status"], &during["attempts"], &during["sending"]),
        (&json!("pending"), &json!(1), &json!(true)),
        "{during}"
    );
    let sent = eventually(Duration::from_secs(10), "the text sent", || {
        sms(&app, "").into_iter().find(|s| s["status"] == "sent")
    });
    assert_eq!(
        (&sent["attempts"], &sent["sending"]),
        (&json!(1), &json!(false)),
        "{sent}"
    );
}

/// Guards against: a recipient made by an escrow to their phone heard in English until an admin
/// set their language, though most recipients of a Kenyan pilot read Kiswahili. With
/// `REMIT_SMS_LANGUAGE=sw` they hear in Kiswahili from the first text; a user made before, with
/// no language chosen, keeps English; an admin's choice stands.
#[test]
fn a_recipient_made_by_an_escrow_hears_in_the_language_the_server_is_set_to() {
    let app = spawn_app_with(|c| c.notify.recipient_language = remit::domain::Language::Sw);
    let fresh = escrow_of(&app, &app.sender, "0733000777");
    let known = escrow_of(&app, &app.sender, RECIPIENT_PHONE);
    for escrow in [&fresh, &known] {
        let request = app.request(escrow, "school_fees", 1_500, "ACC1");
        assert_eq!(app.approve(&request).status, 200);
        app.wait_for_status(&request, &["paid"]);
    }
    let paid: Vec<Value> = eventually(
        Duration::from_secs(10),
        "the texts of both payments",
        || {
            let items: Vec<Value> = sms(&app, "")
                .into_iter()
                .filter(|s| s["template"] == "request_paid")
                .collect();
            (items.len() == 2).then_some(items)
        },
    );
    let recipient_of = |escrow: &str| {
        let r = app.get(&format!("/escrows/{escrow}"), &app.admin);
        r.body["recipient"]["userId"]
            .as_str()
            .unwrap_or_else(|| panic!("{}", r.text))
            .to_string()
    };
    let text_to = |user: &str| {
        paid.iter()
            .find(|s| s["userId"] == user)
            .unwrap_or_else(|| panic!("no text to {user}: {paid:?}"))
    };
    let (fresh_user, known_user) = (recipient_of(&fresh), recipient_of(&known));
    let to_fresh = text_to(&fresh_user);
    assert_eq!(to_fresh["language"], "sw", "{to_fresh}");
    assert!(
        to_fresh["body"]
            .as_str()
            .unwrap()
            .starts_with("remit: malipo yako ya KES 1,500 yamelipwa."),
        "{to_fresh}"
    );
    assert_eq!(text_to(&known_user)["language"], "en");
    let users = app.get("/users?limit=200", &app.admin);
    let listed = users.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["userId"] == fresh_user.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("{}", users.text));
    assert_eq!(listed["language"], "sw", "{listed}");
    app.assert_integrity();
}
