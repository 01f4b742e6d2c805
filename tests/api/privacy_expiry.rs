//! API.md "Privacy of views" and "Payment request expiry", per role, over real HTTP; Stripe
//! refunds, disputes and live mode; the key lock of the command line.

use crate::support::app::*;
use crate::support::process::{remit, run, user_add};
use crate::support::TEST_KEY;
use remit::service::Role;
use serde_json::{json, Value};

/// A request of `agent` on a fresh escrow, with a merchant, an account reference and a note.
fn request_by(app: &TestApp, agent: &str) -> (String, String) {
    let escrow = app.active_escrow(100, &["school_fees"]);
    let r = app.post(
        "/payment-requests",
        agent,
        &json!({"escrowId": escrow, "category": "school_fees", "amountKes": 1500,
                "merchantName": "St. Mary's School",
                "merchantAccount": {"type": "paybill", "number": "888880", "accountReference": "STUDENT-4411"},
                "note": "Term 1 fees for Amani"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    (
        escrow,
        r.body["paymentRequestId"].as_str().unwrap().to_string(),
    )
}

fn shows_merchant(view: &Value) -> bool {
    view["merchantName"] == "St. Mary's School"
        && view["merchantAccount"]["number"] == "888880"
        && view["merchantAccount"]["accountReference"] == "STUDENT-4411"
        && view["note"] == "Term 1 fees for Amani"
}

#[test]
fn only_the_owners_of_a_request_see_its_merchant_and_every_other_agent_sees_it_masked() {
    let app = spawn_app();
    let (_, request) = request_by(&app, &app.agent);
    let r = app.post(
        &format!("/payment-requests/{request}/reject"),
        &app.sender,
        &json!({"reason": "Amani changed school"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let other_agent = app.new_user(Role::Agent, "Kiosk 2", None);
    for (who, token) in [
        ("the sender", app.sender.as_str()),
        ("the recipient", app.recipient.as_str()),
        ("the agent who asked", app.agent.as_str()),
        ("an admin", app.admin.as_str()),
    ] {
        let view = app.get(&format!("/payment-requests/{request}"), token).body;
        assert!(shows_merchant(&view), "{who} sees the merchant: {view}");
        assert_eq!(view["reason"], "Amani changed school", "{who}");
    }
    let masked = |view: &Value| {
        assert_eq!(view["merchantName"], Value::Null, "{view}");
        assert_eq!(view["merchantAccount"]["number"], "***880", "{view}");
        assert_eq!(
            view["merchantAccount"]["accountReference"], "***411",
            "{view}"
        );
        assert_eq!(view["note"], Value::Null, "{view}");
        assert_eq!(view["reason"], Value::Null, "{view}");
    };
    masked(
        &app.get(&format!("/payment-requests/{request}"), &other_agent)
            .body,
    );
    let list = app.get("/payment-requests", &other_agent);
    let listed = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["paymentRequestId"] == request.as_str())
        .cloned()
        .unwrap();
    masked(&listed);
    assert!(
        !list.text.contains("St. Mary") && !list.text.contains("STUDENT-4411"),
        "{}",
        list.text
    );
}

/// M-Pesa's words of a result may name the payee ("Credit party … - JANE WANJIKU MWANGI"):
/// a reason, which only the request's owners see. Before, every agent read it in
/// `payout.resultDesc`, with only long digit runs masked. The name itself is kept by no one:
/// not in the file, not in the log, not in the owners' view (it was, in the clear).
#[test]
fn mpesa_words_of_a_result_are_for_the_owners_of_the_request_only() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    let escrow = app.active_escrow(100, &["a"]);
    let request = app.request(&escrow, "a", 150, "ACCREF998877");
    assert_eq!(app.approve(&request).status, 200);
    let (_, originator, _) = app.payout_ids(&request);
    let words = "Credit party - JANE WANJIKU MWANGI cannot receive; acct ACCREF998877";
    let r = app.post_mpesa_result(&json!({"Result": {"ResultType": 0, "ResultCode": 2040,
        "ResultDesc": words, "OriginatorConversationID": originator,
        "ConversationID": "AG_20261204_00000000000000000001", "TransactionID": "TCE0000000"}}));
    assert_eq!(r.status, 200, "{}", r.text);
    let owner = app.get(&format!("/payment-requests/{request}"), &app.agent);
    assert_eq!(owner.body["payout"]["status"], "failed", "{}", owner.text);
    assert_eq!(
        owner.body["payout"]["resultDesc"], "Credit party - ***",
        "{}",
        owner.text
    );
    assert!(
        !crate::support::ledger_file_text(app.dir.path()).contains("WANJIKU"),
        "the payee's name is readable in the file"
    );
    let other_agent = app.new_user(Role::Agent, "Kiosk 2", None);
    let seen = app.get(&format!("/payment-requests/{request}"), &other_agent);
    assert_eq!(seen.status, 200, "{}", seen.text);
    assert_eq!(
        seen.body["payout"]["resultDesc"],
        Value::Null,
        "{}",
        seen.text
    );
    assert_eq!(
        seen.body["payout"]["failureReason"],
        owner.body["payout"]["failureReason"]
    );
    let list = app.get("/payment-requests", &other_agent);
    for text in [&seen.text, &list.text] {
        assert!(
            !text.contains("WANJIKU") && !text.contains("ACCREF998877"),
            "{text}"
        );
    }
    // A flag's reason is a reason too: a success naming another amount is flagged.
    let flagged = app.request(&escrow, "a", 150, "ACCREF112233");
    assert_eq!(app.approve(&flagged).status, 200);
    let (_, originator, _) = app.payout_ids(&flagged);
    let r = app.post_mpesa_result(&json!({"Result": {"ResultType": 0, "ResultCode": 0,
        "ResultDesc": "The service request is processed successfully.",
        "OriginatorConversationID": originator,
        "ConversationID": "AG_20261204_00000000000000000002", "TransactionID": "TLB0000002",
        "ResultParameters": {"ResultParameter": [{"Key": "Amount", "Value": "999.00"}]}}}));
    assert_eq!(r.status, 200, "{}", r.text);
    let owner = app.get(&format!("/payment-requests/{flagged}"), &app.agent);
    assert_eq!(owner.body["payout"]["flagged"], true, "{}", owner.text);
    assert!(
        owner.body["payout"]["flagReason"].is_string(),
        "{}",
        owner.text
    );
    let seen = app.get(&format!("/payment-requests/{flagged}"), &other_agent);
    assert_eq!(seen.body["payout"]["flagged"], true, "{}", seen.text);
    assert_eq!(
        seen.body["payout"]["flagReason"],
        Value::Null,
        "{}",
        seen.text
    );
}

#[test]
fn a_sender_sees_only_the_recipient_name_they_typed_and_never_whether_the_phone_was_known() {
    let app = spawn_app();
    let other = app.new_user(Role::Sender, "Baraka", None);
    let create = |token: &str, phone: &str, name: &str| {
        let r = app.post(
            "/escrows",
            token,
            &json!({"recipientPhone": phone, "recipientName": name, "totalAmountUsd": 10, "categories": ["food"]}),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        r.body
    };
    // The phone of the test's recipient is known; this one is new; this one a sender's (a
    // sender may receive too, and the answer must not tell that the phone had an account).
    app.new_user(Role::Sender, "Juma", Some("0722000333"));
    let known = create(&other, RECIPIENT_PHONE, "Mama Amani");
    let fresh = create(&other, "0799123456", "Kamau");
    let senders = create(&other, "0722000333", "Juma");
    let keys = |v: &Value| {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(keys(&known), keys(&fresh), "the same answer either way");
    assert_eq!(keys(&senders), keys(&fresh), "the same answer either way");
    assert_eq!(keys(&known["recipient"]), keys(&fresh["recipient"]));
    // Nor does the escrow's audit, where the recipient's id would (by the time in it).
    for escrow in [&known, &fresh, &senders] {
        let audit = app.get(
            &format!("/audit?entity={}", escrow["escrowId"].as_str().unwrap()),
            &other,
        );
        assert_eq!(audit.status, 200, "{}", audit.text);
        let lines = audit.body["items"].as_array().unwrap();
        assert_eq!(lines[0]["action"], "escrow.created");
        for line in lines {
            assert_eq!(line["details"]["recipientId"], Value::Null, "{line}");
        }
        // Nor do the numbers of its lines: the ledger's would skip the `user.created` of a new
        // phone's account. A sender's are the lines' places in the escrow's own log.
        let places: Vec<i64> = lines.iter().map(|l| l["seq"].as_i64().unwrap()).collect();
        assert_eq!(
            places,
            (1..=lines.len() as i64).collect::<Vec<_>>(),
            "{}",
            audit.text
        );
    }
    // The admin sees the ledger's numbers, where the new phone's account shows.
    let created_seq = |escrow: &Value| {
        let id = escrow["escrowId"].as_str().unwrap();
        app.get(&format!("/audit?entity={id}"), &app.admin).body["items"][0]["seq"]
            .as_i64()
            .unwrap()
    };
    assert!(
        created_seq(&fresh) - created_seq(&known) > 1,
        "a user.created between"
    );
    // A sender pages through their places with the cursor, as an admin through the seqs.
    let escrow = app.active_escrow(100, &["a"]);
    for kes in [150, 300, 450] {
        app.request(&escrow, "a", kes, "P");
    }
    let all = app
        .get(&format!("/audit?entity={escrow}"), &app.sender)
        .body["items"]
        .as_array()
        .unwrap()
        .clone();
    assert!(all.len() >= 5, "{all:?}");
    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = app.get(
            &format!("/audit?entity={escrow}&limit=2&cursor={cursor}"),
            &app.sender,
        );
        assert_eq!(page.status, 200, "{}", page.text);
        paged.extend(page.body["items"].as_array().unwrap().iter().cloned());
        match page.body["nextCursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    assert_eq!(paged, all);
    // The sender's own phone is refused (that tells them nothing).
    let own = app.new_user(Role::Sender, "Halima", Some("0722000444"));
    let r = app.post(
        "/escrows",
        &own,
        &json!({"recipientPhone": "0722000444", "recipientName": "Me", "totalAmountUsd": 10, "categories": ["food"]}),
    );
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (400, Some("recipientPhone")),
        "{}",
        r.text
    );
    assert_eq!(
        known["recipient"],
        json!({"name": "Mama Amani", "phone": "+254 7** *** 678"}),
        "no user id and no other sender's name"
    );
    let first = create(&app.sender, RECIPIENT_PHONE, "Wanjiru Njeri");
    let id = |v: &Value| v["escrowId"].as_str().unwrap().to_string();
    assert_eq!(
        app.get(&format!("/escrows/{}", id(&known)), &other).body["recipient"]["name"],
        "Mama Amani"
    );
    assert_eq!(
        app.get(&format!("/escrows/{}", id(&first)), &app.sender)
            .body["recipient"]["name"],
        "Wanjiru Njeri"
    );
    let list = app.get("/escrows", &other);
    assert!(!list.text.contains("Wanjiru"), "{}", list.text);
    // Staff see who it is.
    let admin_view = app
        .get(&format!("/escrows/{}", id(&known)), &app.admin)
        .body;
    assert!(admin_view["recipient"]["userId"]
        .as_str()
        .unwrap()
        .starts_with("usr_"));
    assert_eq!(admin_view["recipient"]["phone"], "+254712345678");
}

#[test]
fn a_staff_phone_cannot_receive_an_escrow_and_the_answer_says_no_more() {
    let app = spawn_app();
    app.new_user(Role::Agent, "Kiosk 3", Some("0788000111"));
    let r = app.post(
        "/escrows",
        &app.sender,
        &json!({"recipientPhone": "0788000111", "recipientName": "X", "totalAmountUsd": 10, "categories": ["a"]}),
    );
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (400, Some("recipientPhone")),
        "{}",
        r.text
    );
    let message = r.body["error"].as_str().unwrap().to_lowercase();
    for word in ["agent", "admin", "staff", "belongs", "exists", "kiosk"] {
        assert!(!message.contains(word), "{message}");
    }
}

/// Follows `nextCursor` from the first page of `path` at one item a page.
fn walk(app: &TestApp, path: &str, id_field: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit=1&cursor={c}"),
            None => format!("{path}{sep}limit=1"),
        };
        let r = app.get(&url, &app.admin);
        assert_eq!(r.status, 200, "{url}: {}", r.text);
        let items = r.body["items"].as_array().unwrap();
        assert!(items.len() <= 1, "{url}: {}", r.text);
        ids.extend(
            items
                .iter()
                .map(|i| i[id_field].as_str().unwrap().to_string()),
        );
        match r.body["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
        assert!(ids.len() < 100, "the cursor never ends");
    }
    ids
}

#[test]
fn users_payouts_and_deposits_are_paged_with_a_cursor_that_visits_each_once() {
    let app = spawn_app_with(|c| c.gateway = remit::config::GatewayKind::None);
    for i in 0..3 {
        let escrow = app.active_escrow(100, &["a"]);
        let request = app.request(&escrow, "a", 150, &format!("ACC{i}"));
        assert_eq!(app.approve(&request).status, 200);
    }
    for (path, field, expected) in [
        ("/users", "userId", 5),
        ("/payouts", "payoutId", 3),
        ("/deposits", "depositId", 3),
        ("/payouts?status=queued", "payoutId", 3),
    ] {
        let ids = walk(&app, path, field);
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            (ids.len(), unique.len()),
            (expected, expected),
            "{path}: {ids:?}"
        );
        let whole = app.get(path, &app.admin);
        assert_eq!(whole.body["nextCursor"], Value::Null, "{}", whole.text);
    }
    for bad in [
        "/users?limit=0",
        "/payouts?limit=201",
        "/deposits?limit=x",
        "/escrows?limit=%2B5",
        "/users?limit=",
    ] {
        let r = app.get(bad, &app.admin);
        assert_eq!(
            (r.status, r.body["field"].as_str()),
            (400, Some("limit")),
            "{bad}"
        );
    }
    // A filter given empty is named (`?escrowId=` was "escrow not found"); an empty cursor is
    // the first page.
    for (bad, field) in [
        ("/payment-requests?escrowId=", "escrowId"),
        ("/deposits?escrowId=", "escrowId"),
        ("/sms?userId=", "userId"),
        ("/payouts?status=", "status"),
    ] {
        let r = app.get(bad, &app.admin);
        assert_eq!(
            (r.status, r.body["field"].as_str()),
            (400, Some(field)),
            "{bad}: {}",
            r.text
        );
    }
    let first = app.get("/users?cursor=", &app.admin);
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body, app.get("/users", &app.admin).body);
}

#[test]
fn a_request_expires_at_its_time_and_cannot_be_approved_after() {
    let app = spawn_app_with(|c| {
        c.request_ttl_s = 3_600;
        c.gateway = remit::config::GatewayKind::None;
    });
    let escrow = app.active_escrow(100, &["a"]);
    let request = app.request(&escrow, "a", 150, "A");
    let view = app
        .get(&format!("/payment-requests/{request}"), &app.sender)
        .body;
    let created = view["createdAt"].as_str().unwrap();
    let expires = view["expiresAt"].as_str().unwrap();
    let seconds = |t: &str| remit::time::parse_rfc3339(t).unwrap();
    assert_eq!(seconds(expires) - seconds(created), 3_600, "{view}");

    // One second before its expiry it can still be approved.
    let in_time = app.request(&escrow, "a", 150, "B");
    let soon = remit::time::rfc3339(remit::time::now_unix() + 60);
    app.sql(
        "UPDATE payment_requests SET expires_at = ?1 WHERE id = ?2",
        &[&soon, &in_time],
    );
    assert_eq!(app.approve(&in_time).status, 200);

    // At its expiry it is expired: it reads back so, is listed so, and cannot be approved.
    let now = remit::time::rfc3339(remit::time::now_unix());
    app.sql(
        "UPDATE payment_requests SET expires_at = ?1 WHERE id = ?2",
        &[&now, &request],
    );
    let view = app.get(&format!("/payment-requests/{request}"), &app.sender);
    assert_eq!(view.body["status"], "expired", "{}", view.text);
    // Decided, and last changed, when it expired: the same before the sweep marks it as after
    // (it read decidedAt null and updatedAt its creation until then).
    let times = |view: &Value| {
        (
            view["decidedAt"].clone(),
            view["updatedAt"].clone(),
            view["expiresAt"].clone(),
        )
    };
    let (decided, updated, expires) = times(&view.body);
    assert_eq!((&decided, &updated), (&expires, &expires), "{}", view.text);
    let unswept = view.body.clone();
    let r = app.approve(&request);
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (409, Some("request_expired")),
        "{}",
        r.text
    );
    let r = app.post(
        &format!("/payment-requests/{request}/reject"),
        &app.sender,
        &json!({}),
    );
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (409, Some("invalid_state")),
        "{}",
        r.text
    );
    let listed = |status: &str| {
        app.get(
            &format!("/payment-requests?escrowId={escrow}&status={status}"),
            &app.sender,
        )
        .text
        .contains(request.as_str())
    };
    assert!(listed("expired") && !listed("pending_approval"));
    assert_eq!(
        app.escrow(&escrow)["reservedUsdCents"],
        100,
        "only the one in time"
    );

    // The sweep makes it so in the file, and audits it.
    let swept = app
        .store
        .write(remit::service::requests::expire_due)
        .unwrap();
    assert_eq!(swept, 1);
    let stored: String = app
        .store
        .read(|c, _| {
            Ok(c.query_row(
                "SELECT status FROM payment_requests WHERE id = ?1",
                [&request],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(stored, "expired");
    let swept = app
        .get(&format!("/payment-requests/{request}"), &app.sender)
        .body;
    assert_eq!(
        swept, unswept,
        "the same request before and after the sweep"
    );
    let audit = app.get(&format!("/audit?entity={request}"), &app.admin);
    let line = audit.body["items"]
        .as_array()
        .and_then(|lines| {
            lines
                .iter()
                .find(|l| l["action"] == "payment_request.expired")
        })
        .cloned()
        .unwrap_or_else(|| panic!("{}", audit.text));
    // When it expired, in the signed record too (the line is stamped by the sweep).
    assert_eq!(line["details"]["expiredAt"], expires, "{line}");
    app.assert_integrity();
}

fn charge_event(kind: &str, event_id: &str, intent: &str, livemode: bool) -> String {
    let object = if kind == "charge.refunded" {
        json!({"id": "ch_1", "object": "charge", "payment_intent": intent, "amount": 5_000,
               "amount_refunded": 2_000, "refunded": false, "currency": "usd"})
    } else {
        json!({"id": "dp_1", "object": "dispute", "charge": "ch_1", "payment_intent": intent,
               "amount": 5_000, "reason": "fraudulent", "status": "needs_response"})
    };
    json!({"id": event_id, "object": "event", "type": kind, "livemode": livemode,
           "data": {"object": object}})
    .to_string()
}

fn deposit_event(event_id: &str, intent: &str, escrow: &str, livemode: bool) -> String {
    json!({"id": event_id, "object": "event", "type": "payment_intent.succeeded", "livemode": livemode,
           "data": {"object": {"id": intent, "object": "payment_intent", "amount": 5_000, "amount_received": 5_000,
                               "currency": "usd", "status": "succeeded", "metadata": {"escrowId": escrow}}}})
    .to_string()
}

#[test]
fn a_refund_or_a_dispute_of_an_applied_deposit_flags_it_and_its_escrow_for_the_operator() {
    for (kind, word) in [
        ("charge.refunded", "refunded"),
        ("charge.dispute.created", "disputed"),
    ] {
        let app = spawn_app();
        let escrow = app.pending_escrow(50, &["a"], None);
        let r = app.post_stripe(&deposit_event("evt_d", "pi_9", &escrow, false));
        assert_eq!(r.body["outcome"], "deposit applied", "{}", r.text);
        let before = app.escrow(&escrow);
        let r = app.post_stripe(&charge_event(kind, "evt_r", "pi_9", false));
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(
            r.body["outcome"].as_str().unwrap().contains("flagged"),
            "{}",
            r.text
        );
        let listed = app.get("/deposits?status=reversed", &app.admin);
        assert_eq!(listed.body["items"][0]["reversal"], word, "{}", listed.text);
        assert!(listed.body["items"][0]["reversalReason"]
            .as_str()
            .unwrap()
            .contains("USD"));
        let after = app.escrow(&escrow);
        assert!(
            after["flagReason"].as_str().unwrap().contains(word),
            "{after}"
        );
        for field in ["remainingUsdCents", "depositedUsdCents", "status"] {
            assert_eq!(after[field], before[field], "no balance moves: {field}");
        }
        let sender_view = app.get(&format!("/escrows/{escrow}"), &app.sender).body;
        assert_eq!(sender_view.get("flagReason"), None, "admins only");
        let metrics = app.raw("GET", "/metrics", None, None, &[]).text;
        assert!(
            metrics.contains(&format!("remit_deposits_reversed{{reversal=\"{word}\"}} 1")),
            "{metrics}"
        );
        assert!(metrics.contains("remit_escrows_flagged 1"), "{metrics}");
        let audit = app.get(&format!("/audit?entity={escrow}"), &app.admin);
        assert!(
            audit.text.contains(&format!("deposit.{word}")),
            "{}",
            audit.text
        );
        // While flagged, its money waits: an approval or a cancel would pay out or refund
        // money Stripe may take back (it went back three ways: Stripe's refund, a payout and
        // the cancel's refund). A request may still be made, and waits.
        let request = app.request(&escrow, "a", 150, "ACC-1");
        // Asked with a key, the hold is not stored as the answer: the same key is answered
        // anew once the flag is cleared (below).
        let approve_path = format!("/payment-requests/{request}/approve");
        let held = app.post_with_key(&approve_path, &app.sender, &json!({}), "approve-once");
        assert_eq!(
            (held.status, held.body["code"].as_str()),
            (409, Some("invalid_state")),
            "{}",
            held.text
        );
        // The web UI says it in Kiswahili by these words (ui/js/api.js, `detailedText`).
        assert!(
            held.body["error"].as_str().is_some_and(|e| e
                .starts_with("a card deposit of this escrow was refunded or disputed at Stripe")),
            "{}",
            held.text
        );
        let cancel = app.post(
            &format!("/escrows/{escrow}/cancel"),
            &app.sender,
            &json!({}),
        );
        assert_eq!(cancel.status, 409, "{}", cancel.text);
        assert_eq!(
            app.escrow(&escrow)["remainingUsdCents"],
            before["remainingUsdCents"]
        );
        // An admin clears the flag once it is settled (audited, no money moves); others may not;
        // a flag that changed since the admin read it is not cleared.
        let path = format!("/escrows/{escrow}/clear-flag");
        assert_eq!(app.post(&path, &app.sender, &json!({})).status, 403);
        assert_eq!(app.post(&path, &app.agent, &json!({})).status, 403);
        let stale = app.post(&path, &app.admin, &json!({"flagReason": "another flag"}));
        assert_eq!(stale.status, 409, "{}", stale.text);
        assert!(stale.text.contains("has changed since"), "{}", stale.text);
        let seen = app.escrow(&escrow)["flagReason"].clone();
        let cleared = app.post(&path, &app.admin, &json!({"flagReason": seen}));
        assert_eq!(cleared.status, 200, "{}", cleared.text);
        assert_eq!(
            cleared.body["flagReason"],
            serde_json::Value::Null,
            "{}",
            cleared.text
        );
        assert_eq!(
            cleared.body["remainingUsdCents"],
            before["remainingUsdCents"]
        );
        let again = app.post(&path, &app.admin, &json!({}));
        assert_eq!(again.status, 409, "{}", again.text);
        let audit = app.get(&format!("/audit?entity={escrow}"), &app.admin);
        assert!(audit.text.contains("escrow.flag_cleared"), "{}", audit.text);
        let metrics = app.raw("GET", "/metrics", None, None, &[]).text;
        assert!(metrics.contains("remit_escrows_flagged 0"), "{metrics}");
        let approved = app.post_with_key(&approve_path, &app.sender, &json!({}), "approve-once");
        assert_eq!(approved.status, 200, "{}", approved.text);
        assert_eq!(approved.header("Idempotent-Replayed"), None);
        app.assert_integrity();
    }
}

/// Stripe does not promise the order of its events (wire formats §8.5): a refund or dispute may
/// come before the payment's `payment_intent.succeeded`. Guards against: it was acknowledged
/// as "no deposit for this payment" and forgotten, and the success applied after it funded the
/// escrow with money Stripe had given back, nothing flagged.
#[test]
fn a_refund_or_dispute_before_its_payment_keeps_the_payment_from_being_applied() {
    for (kind, word) in [
        ("charge.refunded", "refunded"),
        ("charge.dispute.created", "disputed"),
    ] {
        let app = spawn_app();
        let escrow = app.pending_escrow(50, &["a"], None);
        let r = app.post_stripe(&charge_event(kind, "evt_early", "pi_early", false));
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(
            r.body["outcome"]
                .as_str()
                .unwrap()
                .contains("recorded as flagged"),
            "{}",
            r.text
        );
        let r = app.post_stripe(&deposit_event("evt_late", "pi_early", &escrow, false));
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(
            r.body["outcome"]
                .as_str()
                .unwrap()
                .starts_with("deposit flagged"),
            "{kind}: {}",
            r.text
        );
        let view = app.escrow(&escrow);
        assert_eq!(
            (view["status"].as_str(), view["depositedUsdCents"].as_i64()),
            (Some("pending_deposit"), Some(0)),
            "{kind}: not applied: {view}"
        );
        let flagged = app.get("/deposits?status=flagged", &app.admin);
        let item = &flagged.body["items"][0];
        assert_eq!(item["escrowId"], escrow.as_str(), "{}", flagged.text);
        assert_eq!(item["amountUsdCents"], 5_000, "{}", flagged.text);
        assert_eq!(item["reversal"], word, "{}", flagged.text);
        if word == "refunded" {
            // 2,000 of the 5,000 charged: a part, not the whole charge.
            assert_eq!(
                item["reversalReason"], "Stripe refunded USD 20.00 of the charge",
                "{}",
                flagged.text
            );
        }
        assert!(
            item["flagReason"]
                .as_str()
                .unwrap()
                .contains("after it had taken it back"),
            "{}",
            flagged.text
        );
        // The flag says the reversal as the deposit does, the charge known.
        assert!(
            item["flagReason"]
                .as_str()
                .unwrap()
                .contains(item["reversalReason"].as_str().unwrap()),
            "{}",
            flagged.text
        );
        // The same payment told again is the deposit already recorded.
        let r = app.post_stripe(&deposit_event("evt_again", "pi_early", &escrow, false));
        assert_eq!(r.body["outcome"], "deposit already recorded", "{}", r.text);
        assert_eq!(app.escrow(&escrow)["depositedUsdCents"], 0);
        app.assert_integrity();
    }
    // A reversal without an amount (or of none) of a payment never seen is all there is to go
    // on: ignored (a dispute of 0 was a 500 Stripe retried for days); one naming no payment
    // too (two such became one deposit).
    let app = spawn_app();
    for (event, object) in [
        (
            "evt_zero",
            json!({"id": "dp_0", "object": "dispute", "payment_intent": "pi_zero", "amount": 0, "reason": "fraudulent"}),
        ),
        (
            "evt_blank",
            json!({"id": "dp_1", "object": "dispute", "payment_intent": "", "amount": 500, "reason": "fraudulent"}),
        ),
    ] {
        let body = json!({"id": event, "object": "event", "type": "charge.dispute.created",
            "livemode": false, "data": {"object": object}});
        let r = app.post_stripe(&body.to_string());
        assert_eq!(r.status, 200, "{event}: {}", r.text);
        assert!(
            r.body["outcome"].as_str().unwrap().starts_with("ignored"),
            "{event}: {}",
            r.text
        );
    }
    let bare = json!({"id": "evt_bare", "object": "event", "type": "charge.refunded", "livemode": false,
        "data": {"object": {"id": "ch_2", "object": "charge", "payment_intent": "pi_bare", "currency": "usd"}}});
    let r = app.post_stripe(&bare.to_string());
    assert_eq!(r.status, 200);
    assert!(
        r.body["outcome"].as_str().unwrap().starts_with("ignored"),
        "{}",
        r.text
    );
}

/// Guards against: each refund or dispute event replaced the deposit's reversal, so a late
/// older refund (Stripe's `amount_refunded` is a running total) said less than was refunded,
/// and a refund after a dispute took the dispute off the operator's lists.
#[test]
fn a_deposits_reversal_says_its_dispute_and_its_largest_refund_whatever_their_order() {
    let app = spawn_app();
    let escrow = app.pending_escrow(50, &["a"], None);
    let r = app.post_stripe(&deposit_event("evt_d", "pi_9", &escrow, false));
    assert_eq!(r.body["outcome"], "deposit applied", "{}", r.text);
    let refund = |event: &str, cents: i64| {
        json!({"id": event, "object": "event", "type": "charge.refunded", "livemode": false,
               "data": {"object": {"id": "ch_1", "object": "charge", "payment_intent": "pi_9",
                                   "amount": 5_000, "amount_refunded": cents, "refunded": false, "currency": "usd"}}})
        .to_string()
    };
    for event in [
        charge_event("charge.dispute.created", "evt_dispute", "pi_9", false),
        refund("evt_later", 4_000),
        refund("evt_earlier", 1_500),
    ] {
        let r = app.post_stripe(&event);
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let listed = app.get("/deposits?status=reversed", &app.admin);
    let item = &listed.body["items"][0];
    assert_eq!(item["reversal"], "disputed", "{}", listed.text);
    let reason = item["reversalReason"].as_str().unwrap();
    assert!(
        reason.contains("disputed")
            && reason.contains("USD 40.00")
            && !reason.contains("USD 15.00"),
        "{reason}"
    );
    let flag = app.escrow(&escrow)["flagReason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        flag.contains("disputed") && flag.contains("USD 40.00"),
        "{flag}"
    );
    let metrics = app.raw("GET", "/metrics", None, None, &[]).text;
    assert!(
        metrics.contains("remit_deposits_reversed{reversal=\"disputed\"} 1")
            && !metrics.contains("remit_deposits_reversed{reversal=\"refunded\"}"),
        "{metrics}"
    );
    app.assert_integrity();
}

#[test]
fn an_event_of_the_other_stripe_mode_is_refused_and_changes_nothing() {
    let app = spawn_app();
    let escrow = app.pending_escrow(50, &["a"], None);
    let r = app.post_stripe(&deposit_event("evt_live", "pi_live", &escrow, true));
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (400, Some("livemode")),
        "{}",
        r.text
    );
    assert_eq!(app.escrow(&escrow)["depositedUsdCents"], 0);

    let live = spawn_app_with(|c| c.stripe_livemode = true);
    let escrow = live.pending_escrow(50, &["a"], None);
    let r = live.post_stripe(&deposit_event("evt_test", "pi_t", &escrow, false));
    assert_eq!(r.status, 400, "{}", r.text);
    // One that says nothing of its mode is refused in words true of it (it was told it "is
    // false").
    let mut unsaid: serde_json::Value =
        serde_json::from_str(&deposit_event("evt_unsaid", "pi_u", &escrow, true)).unwrap();
    unsaid.as_object_mut().unwrap().remove("livemode");
    let r = live.post_stripe(&unsaid.to_string());
    assert_eq!(r.status, 400, "{}", r.text);
    let said = r.body["error"].as_str().unwrap();
    assert!(
        said.contains("must be true") && !said.contains("is false"),
        "{said}"
    );
    let r = live.post_stripe(&deposit_event("evt_live", "pi_l", &escrow, true));
    assert_eq!(r.body["outcome"], "deposit applied", "{}", r.text);
}

#[test]
fn commands_that_write_wait_for_a_key_rotation_and_a_rotation_waits_for_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    user_add(&db, TEST_KEY, "admin", "Admin", None);
    let lock_path = dir.path().join("remit.db.keylock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap();
    // A rotation holds the key lock alone.
    lock.lock().unwrap();
    for args in [
        vec!["user", "add", "--role", "agent", "--name", "K"],
        vec!["fx", "set", "USD-KES", "151"],
        vec!["token", "revoke", "rmt_00000000"],
    ] {
        let mut cmd = remit(dir.path(), Some(TEST_KEY));
        cmd.args(&args).arg("--db").arg(&db);
        let ran = run(cmd);
        assert_eq!(ran.code, Some(2), "{args:?}: {ran}");
        assert!(
            ran.stderr
                .contains("a key rotation or a restore is running"),
            "{ran}"
        );
    }
    lock.unlock().unwrap();
    // A command writing holds it shared: a rotation waits.
    lock.lock_shared().unwrap();
    let new_key = dir.path().join("new.key");
    std::fs::write(
        &new_key,
        "7b33f2764398845797e8753f0f0c038887b698f3efebfdd4d808fa0e6d2f70bf",
    )
    .unwrap();
    let ran = crate::support::process::rotate_key(dir.path(), Some(TEST_KEY), &new_key, &db);
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        ran.stderr.contains("another remit command is using"),
        "{ran}"
    );
    lock.unlock().unwrap();
    let mut cmd = remit(dir.path(), Some(TEST_KEY));
    cmd.args(["fx", "set", "USD-KES", "151"])
        .arg("--db")
        .arg(&db);
    assert_eq!(run(cmd).code, Some(0));
}

#[test]
fn a_sender_never_sees_the_recipients_user_id_as_who_asked_or_who_acted() {
    let app = spawn_app();
    let escrow = app.active_escrow(100, &["electricity"]);
    let recipient_id = app.get("/me", &app.recipient).body["userId"]
        .as_str()
        .unwrap()
        .to_string();
    let asked = app.request_by(&app.recipient, &escrow, "electricity", 1000, "77");
    let by_agent = app.request(&escrow, "electricity", 500, "78");
    let requested_by = |token: &str, id: &str| {
        let r = app.get(&format!("/payment-requests/{id}"), token);
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["requestedBy"].clone()
    };
    // The recipient's id is for staff and the recipient; the sender sees null ("the recipient").
    assert_eq!(requested_by(&app.sender, &asked), Value::Null);
    assert_eq!(requested_by(&app.admin, &asked), json!(recipient_id));
    assert_eq!(requested_by(&app.recipient, &asked), json!(recipient_id));
    assert_eq!(requested_by(&app.sender, &by_agent), json!(app.agent_id));
    let listed = app.get(&format!("/payment-requests?escrowId={escrow}"), &app.sender);
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert!(!listed.text.contains(&recipient_id), "{}", listed.text);
    // Approving answers with the same view.
    let approved = app.approve(&asked);
    assert_eq!(approved.status, 200, "{}", approved.text);
    assert_eq!(approved.body["requestedBy"], Value::Null);
    // Nor in the escrow's audit: the line the recipient's request wrote names "recipient".
    let audit = app.get(&format!("/audit?entity={escrow}"), &app.sender);
    assert_eq!(audit.status, 200, "{}", audit.text);
    assert!(!audit.text.contains(&recipient_id), "{}", audit.text);
    assert!(
        audit.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["actor"] == "recipient" && l["action"] == "payment_request.created"),
        "{}",
        audit.text
    );
    // The kiosk agent who asked for a payment is named by role, the sender as themself.
    let items = audit.body["items"].as_array().unwrap();
    let actor_of = |action: &str, entity: &str| {
        items
            .iter()
            .find(|l| l["action"] == action && l["entity"] == entity)
            .map(|l| l["actor"].clone())
    };
    assert_eq!(
        actor_of("payment_request.created", &by_agent),
        Some(json!("agent")),
        "{}",
        audit.text
    );
    assert!(!audit.text.contains(&app.agent_id), "{}", audit.text);
    let me = app.get("/me", &app.sender).body["userId"].clone();
    assert_eq!(
        actor_of("payment_request.approved", &asked),
        Some(me),
        "{}",
        audit.text
    );
    let full = app.get(&format!("/audit?entity={escrow}"), &app.admin);
    assert!(full.text.contains(&recipient_id), "{}", full.text);
    assert!(full.text.contains(&app.agent_id), "{}", full.text);

    // Nor as who decided: a request the recipient cancels was decided by the recipient
    // (regression: `decidedBy` gave the sender the id `requestedBy` hid).
    let withdrawn = app.request_by(&app.recipient, &escrow, "electricity", 100, "79");
    let cancelled = app.post(
        &format!("/payment-requests/{withdrawn}/cancel"),
        &app.recipient,
        &json!({}),
    );
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    assert_eq!(cancelled.body["decidedBy"], json!(recipient_id));
    let decided_by = |token: &str| {
        let r = app.get(&format!("/payment-requests/{withdrawn}"), token);
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["status"], "cancelled", "{}", r.text);
        r.body["decidedBy"].clone()
    };
    assert_eq!(decided_by(&app.sender), Value::Null);
    assert_eq!(decided_by(&app.admin), json!(recipient_id));
    assert_eq!(decided_by(&app.recipient), json!(recipient_id));
    let listed = app.get(&format!("/payment-requests?escrowId={escrow}"), &app.sender);
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert!(!listed.text.contains(&recipient_id), "{}", listed.text);
    // The sender's own decisions still name the sender.
    let sender_id = app.get("/me", &app.sender).body["userId"].clone();
    let rejected = app.post(
        &format!("/payment-requests/{by_agent}/reject"),
        &app.sender,
        &json!({"reason": "not this month"}),
    );
    assert_eq!(rejected.status, 200, "{}", rejected.text);
    assert_eq!(rejected.body["decidedBy"], sender_id);
}
