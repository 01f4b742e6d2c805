//! The HTTP contract route by route: shapes, both money spellings, pagination, error codes,
//! idempotency keys, and concurrent approvals over real HTTP.

use crate::support::app::*;
use serde_json::json;
use std::sync::{Arc, Barrier};

#[test]
fn creating_an_escrow_answers_201_with_both_money_spellings() {
    let app = spawn_app();
    let r = app.post(
        "/escrows",
        &app.sender,
        &json!({"recipientPhone": "+254 712 345 678", "recipientName": "Wanjiru", "totalAmountUsd": 500,
                "categories": ["electricity", "water", "school_fees"], "dailyLimitUsd": 100}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["status"], "pending_deposit");
    assert_eq!(r.body["totalAmountUsd"].to_string(), "500.0");
    assert_eq!(r.body["totalAmountUsdCents"], 50_000);
    assert_eq!(r.body["depositReference"], r.body["escrowId"]);
    assert_eq!(r.body["dailyLimitUsdCents"], 10_000);
    assert_eq!(r.body["recipient"]["phone"], "+254 7** *** 678");
    let cents: Vec<i64> = r.body["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["allocatedUsdCents"].as_i64().unwrap())
        .collect();
    assert_eq!(cents, vec![16_667, 16_667, 16_666]);
    let admin_view = app.escrow(r.body["escrowId"].as_str().unwrap());
    assert_eq!(
        admin_view["recipient"]["phone"], "+254712345678",
        "admins see the phone in full"
    );
}

#[test]
fn explicit_category_amounts_must_sum_to_the_total() {
    let app = spawn_app();
    let body = json!({"recipientPhone": RECIPIENT_PHONE, "recipientName": "W", "totalAmountUsdCents": 50_000,
                      "categories": [{"name": "electricity", "amountUsd": "200.00"}, {"name": "water", "amountUsdCents": 20_000}]});
    let r = app.post("/escrows", &app.sender, &body);
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (400, Some("invalid_field"))
    );
    assert!(
        r.body["error"]
            .as_str()
            .unwrap()
            .contains("must equal total amount"),
        "{}",
        r.text
    );
    let body = json!({"recipientPhone": RECIPIENT_PHONE, "recipientName": "W", "totalAmountUsd": 400,
                      "categories": [{"name": "electricity", "amountUsd": "200.00"}, {"name": "water", "amountUsdCents": 20_000}]});
    assert_eq!(app.post("/escrows", &app.sender, &body).status, 201);
}

#[test]
fn the_whole_flow_over_http_reserves_then_spends() {
    let app = spawn_app();
    let escrow = app.active_escrow(500, &["electricity", "water"]);
    let r = app.post(
        "/payment-requests",
        &app.agent,
        &json!({"escrowId": escrow, "category": "electricity", "amountKes": 10000, "merchantName": "Kenya Power",
                "merchantAccount": {"type": "paybill", "number": "888880", "accountReference": "12345678"}, "note": "November token"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["status"], "pending_approval");
    assert_eq!(
        (
            r.body["amountUsdCents"].as_i64(),
            r.body["amountUsd"].to_string()
        ),
        (Some(6_667), "66.67".into())
    );
    assert_eq!(r.body["exchangeRate"].to_string(), "150.0");
    let id = r.body["paymentRequestId"].as_str().unwrap().to_string();
    let r = app.approve(&id);
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (200, Some("approved")),
        "{}",
        r.text
    );
    let paid = app.wait_for_status(&id, &["paid"]);
    // The simulator says what it is: in the receipt, the payout, and the audit log.
    assert!(paid["payout"]["mpesaReceipt"]
        .as_str()
        .unwrap()
        .starts_with("SIM"));
    assert_eq!(
        (&paid["payout"]["simulated"], &paid["payout"]["gateway"]),
        (&json!(true), &json!("simulator"))
    );
    let audit = app.get(&format!("/audit?entity={escrow}"), &app.admin);
    let succeeded = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["action"] == "payout.succeeded")
        .unwrap()
        .clone();
    assert_eq!(succeeded["details"]["simulated"], true, "{succeeded}");
    assert_eq!(paid["payout"]["failureReason"], json!(null));
    assert_eq!(paid["payout"]["status"], "succeeded");
    assert_eq!(paid["payout"]["method"], "b2b_paybill");
    // Its amounts in both spellings, as every amount.
    assert_eq!(
        (
            paid["payout"]["amountKes"].as_f64(),
            paid["payout"]["amountKesCents"].as_i64(),
            paid["payout"]["amountUsd"].as_f64(),
            paid["payout"]["amountUsdCents"].as_i64(),
        ),
        (Some(10_000.0), Some(1_000_000), Some(66.67), Some(6_667)),
        "{}",
        paid["payout"]
    );
    let view = app.escrow(&escrow);
    assert_eq!(view["spentUsdCents"], 6_667);
    assert_eq!(view["reservedUsdCents"], 0);
    assert_eq!(view["remainingUsdCents"], 50_000 - 6_667);
    app.assert_integrity();
}

#[test]
fn ten_concurrent_approvals_of_100_against_500_make_five_200s_and_five_409s() {
    // Payouts settle only after the test: an escrow whose five payouts were paid is completed,
    // and an approval that reached the writer after that (a thread scheduled late on a busy
    // machine) was `invalid_state`, not `insufficient_balance`.
    let app = Arc::new(spawn_app_with(|c| c.sim_delay_ms = 600_000));
    let escrow = app.active_escrow(500, &["school_fees"]);
    let ids: Vec<String> = (0..10)
        .map(|_| app.request(&escrow, "school_fees", 15_000, "ACC"))
        .collect();
    let barrier = Arc::new(Barrier::new(ids.len()));
    let handles: Vec<_> = ids
        .into_iter()
        .map(|id| {
            let (app, barrier) = (Arc::clone(&app), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                let r = app.approve(&id);
                (r.status, r.body["code"].as_str().unwrap_or("").to_string())
            })
        })
        .collect();
    let results: Vec<(u16, String)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        results.iter().filter(|(s, _)| *s == 200).count(),
        5,
        "{results:?}"
    );
    assert_eq!(
        results
            .iter()
            .filter(|(s, c)| *s == 409 && c == "insufficient_balance")
            .count(),
        5,
        "{results:?}"
    );
    let view = app.escrow(&escrow);
    assert_eq!(view["remainingUsdCents"], 0);
    app.assert_integrity();
}

/// Approvals waiting together share one savepoint in the writer. One refused after changing
/// rows (its category is empty but its escrow is not) makes the writer undo the whole run and
/// run each again in a savepoint of its own; one refused before changing any (an unknown id)
/// is answered alone. Here 32 clients approve, interleaved, 40 requests on a funded escrow, 40
/// on a category that pays only 10, and 20 unknown ids, half of them with an Idempotency-Key
/// (whose refusals are answers to keep, not failures): every approval gets its own answer,
/// each one that succeeded moved its money exactly once, the undone runs are counted in
/// `/metrics`, and the ledger holds.
#[test]
fn approvals_that_share_a_savepoint_get_their_own_answers_when_some_fail() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let app = Arc::new(spawn_app());
    let funded = app.active_escrow(1_000, &["rent"]);
    // USD 100 for rent and 100 for food: the rent approvals past the tenth pass the escrow's
    // update and are refused by the category's.
    let short = app.active_escrow(200, &["rent", "food"]);
    // KES 1,500 at 150: USD 10 each.
    let ids: Vec<(Option<bool>, String)> = (0..40)
        .flat_map(|i| {
            let mut these = vec![
                (
                    Some(true),
                    app.request(&funded, "rent", 1_500, &format!("F{i}")),
                ),
                (
                    Some(false),
                    app.request(&short, "rent", 1_500, &format!("S{i}")),
                ),
            ];
            if i % 2 == 0 {
                these.push((None, format!("pr_0000000000{i:016}")));
            }
            these
        })
        .collect();
    let next = AtomicUsize::new(0);
    let barrier = Barrier::new(32);
    let results: Vec<(Option<bool>, u16, String)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..32)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let mut mine = Vec::new();
                    loop {
                        let n = next.fetch_add(1, Ordering::SeqCst);
                        let Some((funded, id)) = ids.get(n) else {
                            break;
                        };
                        // Half with an Idempotency-Key: those run under the shared savepoint too,
                        // with a savepoint of their own inside for the request itself.
                        // Thirty-two at once from one user is over a caller's share of the
                        // workers: one whose body is late may be told `503 busy` before it
                        // runs, and is sent again, as the contract tells clients to.
                        let send = || {
                            if n.is_multiple_of(2) {
                                app.approve(id)
                            } else {
                                app.post_with_key(
                                    &format!("/payment-requests/{id}/approve"),
                                    &app.sender,
                                    &json!({}),
                                    &format!("approve-{n}"),
                                )
                            }
                        };
                        let mut r = send();
                        for _ in 0..50 {
                            if r.status != 503 {
                                break;
                            }
                            std::thread::sleep(std::time::Duration::from_millis(10));
                            r = send();
                        }
                        let code = r.body["code"].as_str().unwrap_or("").to_string();
                        mine.push((*funded, r.status, code));
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    assert_eq!(results.len(), 100);
    let count = |which: Option<bool>, status: u16, code: &str| {
        results
            .iter()
            .filter(|(w, s, c)| *w == which && *s == status && c == code)
            .count()
    };
    assert_eq!(count(Some(true), 200, ""), 40, "{results:?}");
    assert_eq!(count(Some(false), 200, ""), 10, "{results:?}");
    assert_eq!(
        count(Some(false), 409, "insufficient_category_balance"),
        30,
        "{results:?}"
    );
    assert_eq!(count(None, 404, "not_found"), 20, "{results:?}");
    // Exactly once each: 40 and 10 approvals of USD 10 (the payouts may have been paid since).
    assert_eq!(app.escrow(&funded)["remainingUsdCents"], 60_000);
    assert_eq!(app.escrow(&short)["remainingUsdCents"], 10_000);
    let metrics = app.raw("GET", "/metrics", None, None, &[]).text;
    let undone: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("remit_writer_shared_savepoints_undone_total "))
        .expect("the counter in /metrics")
        .parse()
        .unwrap();
    assert!(undone > 0, "no run of approvals was undone: {metrics}");
    app.assert_integrity();
}

#[test]
fn conflicts_carry_their_codes_and_a_readable_message() {
    let app = spawn_app();
    let escrow = app.pending_escrow(100, &["food", "rent"], Some(30));
    let r = app.post(
        &format!("/escrows/{escrow}/deposits"),
        &app.agent,
        &json!({"amountUsd": "100.00", "reference": "cash-1"}),
    );
    assert_eq!(r.status, 201);
    let too_big = app.request(&escrow, "food", 9_000, "A"); // USD 60 > category 50
    let r = app.approve(&too_big);
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (409, Some("insufficient_category_balance")),
        "{}",
        r.text
    );
    assert_eq!(
        r.body["error"],
        "category food balance is USD 50.00, payment needs USD 60.00"
    );
    let over_day = app.request(&escrow, "rent", 6_000, "A"); // USD 40 > daily 30
    let r = app.approve(&over_day);
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (409, Some("daily_limit_exceeded")),
        "{}",
        r.text
    );
    // (The web UI reads these words to say them in Kiswahili: ui/js/api.js, `detailedText`.)
    assert_eq!(
        r.body["error"],
        "daily limit is USD 30.00, USD 0.00 already approved today, payment needs USD 40.00"
    );
    let ok = app.request(&escrow, "rent", 1_500, "A");
    assert_eq!(app.approve(&ok).status, 200);
    let r = app.approve(&ok);
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (409, Some("invalid_state")),
        "{}",
        r.text
    );
    // The simulator may have paid it meanwhile (a loaded machine did): said as it is then.
    assert!(
        [
            "payment request is already approved",
            "payment request is paid and cannot become approved"
        ]
        .contains(&r.body["error"].as_str().unwrap_or_default()),
        "{}",
        r.text
    );
    let r = app.post(
        &format!("/escrows/{escrow}/cancel"),
        &app.sender,
        &json!({}),
    );
    assert!(r.status == 409 || r.status == 200, "{}", r.text);
    app.assert_integrity();
}

#[test]
fn payment_requests_validate_their_fields_by_name() {
    let app = spawn_app();
    let escrow = app.active_escrow(100, &["a"]);
    let base = json!({"escrowId": escrow, "category": "a", "amountKes": 150, "merchantName": "M",
                      "merchantAccount": {"type": "till", "number": "123456"}});
    let cases = [
        ("amountKes", json!("1.005"), "amountKes"),
        ("amountKes", json!(10.5), "amountKes"),
        ("amountKes", json!(2_000_000), "amountKes"),
        ("category", json!("nope"), ""),
        (
            "merchantAccount",
            json!({"type": "till", "number": "12"}),
            "merchantAccount.number",
        ),
        (
            "merchantAccount",
            json!({"type": "paybill", "number": "888880"}),
            "merchantAccount.accountReference",
        ),
        (
            // Daraja's AccountReference holds 13 characters.
            "merchantAccount",
            json!({"type": "paybill", "number": "888880", "accountReference": "12345678901234"}),
            "merchantAccount.accountReference",
        ),
        (
            "merchantAccount",
            json!({"type": "phone", "number": "+255712345678"}),
            "merchantAccount.number",
        ),
        (
            "merchantAccount",
            json!({"type": "bank", "number": "1"}),
            "merchantAccount.type",
        ),
        (
            "merchantAccount",
            json!({"type": "till", "number": "123456", "extra": 1}),
            "merchantAccount.extra",
        ),
    ];
    for (field, value, named) in cases {
        let mut body = base.clone();
        body[field] = value.clone();
        let r = app.post("/payment-requests", &app.agent, &body);
        if named.is_empty() {
            assert_eq!(r.status, 404, "{field}={value}: {}", r.text);
        } else {
            assert_eq!(r.status, 400, "{field}={value}: {}", r.text);
            assert_eq!(r.body["field"], named, "{field}={value}: {}", r.text);
        }
    }
    let mut phone = base.clone();
    phone["merchantAccount"] = json!({"type": "phone", "number": "0722000000"});
    phone["amountKes"] = json!(5);
    let r = app.post("/payment-requests", &app.agent, &phone);
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (400, Some("amountKes")),
        "B2C minimum: {}",
        r.text
    );
    // The same rules, told to a client that sent cents, name the field it sent.
    for (cents, why) in [(500, "B2C minimum"), (150_050, "whole shillings")] {
        let mut body = phone.clone();
        body.as_object_mut().unwrap().remove("amountKes");
        body["amountKesCents"] = json!(cents);
        let r = app.post("/payment-requests", &app.agent, &body);
        assert_eq!(
            (r.status, r.body["field"].as_str()),
            (400, Some("amountKesCents")),
            "{why}: {}",
            r.text
        );
    }
}

#[test]
fn lists_are_paginated_newest_first_with_a_cursor() {
    let app = spawn_app();
    let ids: Vec<String> = (0..5)
        .map(|_| app.pending_escrow(10, &["a"], None))
        .collect();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/escrows?limit=2&cursor={c}"),
            None => "/escrows?limit=2".to_string(),
        };
        let r = app.get(&path, &app.sender);
        assert_eq!(r.status, 200, "{}", r.text);
        for item in r.body["items"].as_array().unwrap() {
            seen.push(item["escrowId"].as_str().unwrap().to_string());
        }
        match r.body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(seen, expected);
    assert_eq!(app.get("/escrows?limit=0", &app.sender).status, 400);
    assert_eq!(app.get("/escrows?status=bogus", &app.sender).status, 400);
    assert_eq!(app.get("/escrows?cursor=%27;--", &app.sender).status, 400);
    assert_eq!(
        app.get("/escrows", &app.other_sender).body["items"]
            .as_array()
            .unwrap()
            .len(),
        0,
        "only their own"
    );
    let r = app.get(
        &format!("/escrows?recipientPhone={}", "%2B254712345678"),
        &app.agent,
    );
    assert_eq!(
        r.body["items"].as_array().unwrap().len(),
        5,
        "agents find escrows by phone: {}",
        r.text
    );
}

/// A name a client sends is said back by its first 64 characters wherever an error names it:
/// a key given twice and an unknown query parameter were echoed whole (a 3,000-character key
/// made a 3 KB answer).
#[test]
fn an_error_says_a_long_name_back_by_its_first_64_characters() {
    let app = spawn_app();
    let cut = |c: &str| format!("{}…", c.repeat(64));
    let key = "k".repeat(3_000);
    let body = format!("{{\"{key}\": 1, \"{key}\": 2}}");
    let r = app.raw(
        "POST",
        "/escrows",
        Some(&app.sender),
        Some(("application/json", body.as_bytes())),
        &[],
    );
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(
        r.text.contains(&cut("k")) && !r.text.contains(&"k".repeat(65)),
        "{}",
        r.text
    );
    let r = app.get(&format!("/escrows?{}=1", "q".repeat(5_000)), &app.sender);
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["field"], cut("q"), "{}", r.text);
    assert!(!r.text.contains(&"q".repeat(65)), "{}", r.text);
}

#[test]
fn an_idempotency_key_replays_the_first_response_and_refuses_another_request() {
    let app = spawn_app();
    let body = json!({"recipientPhone": RECIPIENT_PHONE, "recipientName": "W", "totalAmountUsd": 10, "categories": ["a"]});
    let first = app.post_with_key("/escrows", &app.sender, &body, "create-1");
    let again = app.post_with_key("/escrows", &app.sender, &body, "create-1");
    assert_eq!((first.status, again.status), (201, 201));
    assert_eq!(first.text, again.text, "replayed verbatim");
    assert_eq!(again.header("Idempotent-Replayed"), Some("true"));
    // A body refused as written is refused, not replayed, though the key's fingerprint (the
    // last of a field given twice, `null`s left out) reads it as the same request.
    let sent = |text: &str| {
        app.raw(
            "POST",
            "/escrows",
            Some(&app.sender),
            Some(("application/json", text.as_bytes())),
            &[("Idempotency-Key", "create-1")],
        )
    };
    let twice = format!(
        "{{\"recipientPhone\": \"{RECIPIENT_PHONE}\", \"recipientName\": \"W\", \"totalAmountUsd\": 999, \"totalAmountUsd\": 10, \"categories\": [\"a\"]}}"
    );
    let unknown = format!(
        "{{\"recipientPhone\": \"{RECIPIENT_PHONE}\", \"recipientName\": \"W\", \"totalAmountUsd\": 10, \"categories\": [\"a\"], \"colour\": null}}"
    );
    for (text, code) in [(twice, "invalid_json"), (unknown, "unknown_field")] {
        let r = sent(&text);
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (400, Some(code)),
            "{text}: {}",
            r.text
        );
    }
    let mut other = body.clone();
    other["totalAmountUsd"] = json!(11);
    let r = app.post_with_key("/escrows", &app.sender, &other, "create-1");
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
    // A different request that is also wrong as sent is still the key reused: the key keeps
    // its answer whatever else is wrong with the new request. Under a fresh key the same
    // mistake is the field's 400.
    let mut wrong = body.clone();
    wrong["totalAmountUsd"] = json!(-1);
    let r = app.post_with_key("/escrows", &app.sender, &wrong, "create-1");
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (422, Some("idempotency_key_reused")),
        "{}",
        r.text
    );
    let r = app.post_with_key("/escrows", &app.sender, &wrong, "create-wrong");
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (400, Some("invalid_field"))
    );
    // So is one naming an id that cannot be one (refused before anything is read), or one
    // that names nothing; under a fresh key, the 404.
    for id in ["esc_bad", "esc_01JZZZZZZZZZZZZZZZZZZZZZZZ"] {
        let path = format!("/escrows/{id}/cancel");
        let r = app.post_with_key(&path, &app.sender, &json!({}), "create-1");
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (422, Some("idempotency_key_reused")),
            "{id}: {}",
            r.text
        );
        let r = app.post_with_key(&path, &app.sender, &json!({}), &format!("cancel-{id}"));
        assert_eq!(r.status, 404, "{id}: {}", r.text);
    }
    // The same request written again by another serialiser (fields in another order, spaced)
    // is the same request: replayed, not refused.
    let rewritten = format!(
        "{{ \"categories\" : [\"a\"],\n \"totalAmountUsd\": 10, \"recipientName\": \"W\", \"recipientPhone\": \"{RECIPIENT_PHONE}\" }}"
    );
    let r = app.raw(
        "POST",
        "/escrows",
        Some(&app.sender),
        Some(("application/json", rewritten.as_bytes())),
        &[("Idempotency-Key", "create-1")],
    );
    assert_eq!((r.status, r.text.as_str()), (201, first.text.as_str()));
    assert_eq!(r.header("Idempotent-Replayed"), Some("true"));
    // Keys belong to their user: another sender's same key is a new request.
    assert_eq!(
        app.post_with_key("/escrows", &app.other_sender, &body, "create-1")
            .status,
        201
    );
    let count = app.get("/escrows", &app.sender).body["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(count, 1);
    let bad = app.raw(
        "POST",
        "/escrows",
        Some(&app.sender),
        Some(("application/json", body.to_string().as_bytes())),
        &[("Idempotency-Key", "")],
    );
    assert_eq!(bad.status, 400);
    // A refusal is the first response too: replayed, not run again.
    let escrow = app.active_escrow(100, &["a"]);
    let too_big = app.request(&escrow, "a", 30_000, "A"); // USD 200 > USD 100
    let path = format!("/payment-requests/{too_big}/approve");
    let first = app.post_with_key(&path, &app.sender, &json!({}), "approve-too-big");
    assert_eq!(
        (first.status, first.body["code"].as_str()),
        (409, Some("insufficient_balance")),
        "{}",
        first.text
    );
    let again = app.post_with_key(&path, &app.sender, &json!({}), "approve-too-big");
    assert_eq!(
        (again.status, again.text.as_str()),
        (409, first.text.as_str())
    );
    assert_eq!(again.header("Idempotent-Replayed"), Some("true"));
    app.assert_integrity();
}

/// A request wrong as sent (`400`) is not the key's answer, even when only the ledger can tell
/// it is wrong (more than is still due): the agent who mends the amount retries with the same
/// key and is served, where a stored `400` made that retry `422`.
#[test]
fn a_request_wrong_as_sent_leaves_its_key_free_for_the_mended_one() {
    let app = spawn_app();
    let escrow = app.pending_escrow(10, &["a"], None);
    let path = format!("/escrows/{escrow}/deposits");
    let over = json!({"amountUsd": 11, "reference": "mended-1"});
    for _ in 0..2 {
        let r = app.post_with_key(&path, &app.agent, &over, "deposit-1");
        assert_eq!(
            (
                r.status,
                r.body["code"].as_str(),
                r.header("Idempotent-Replayed")
            ),
            (400, Some("invalid_field"), None),
            "{}",
            r.text
        );
    }
    let mended = json!({"amountUsd": 10, "reference": "mended-1"});
    let first = app.post_with_key(&path, &app.agent, &mended, "deposit-1");
    assert_eq!(first.status, 201, "{}", first.text);
    let again = app.post_with_key(&path, &app.agent, &mended, "deposit-1");
    assert_eq!(
        (again.status, again.text.as_str()),
        (201, first.text.as_str())
    );
    assert_eq!(again.header("Idempotent-Replayed"), Some("true"));
    assert_eq!(app.escrow(&escrow)["depositedUsdCents"], 1_000);
    // A staff phone as recipient is wrong as sent too.
    let staff = json!({"recipientPhone": "0700000001", "recipientName": "W", "totalAmountUsd": 10,
        "categories": ["a"]});
    app.new_user(remit::service::Role::Agent, "Kiosk 2", Some("0700000001"));
    let r = app.post_with_key("/escrows", &app.sender, &staff, "escrow-1");
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (400, Some("recipientPhone")),
        "{}",
        r.text
    );
    let mut mended = staff.clone();
    mended["recipientPhone"] = json!(RECIPIENT_PHONE);
    let r = app.post_with_key("/escrows", &app.sender, &mended, "escrow-1");
    assert_eq!(r.status, 201, "{}", r.text);
    app.assert_integrity();
}

#[test]
fn twenty_concurrent_duplicates_with_one_key_make_one_change() {
    let app = Arc::new(spawn_app());
    let escrow = app.active_escrow(500, &["a"]);
    let request = app.request(&escrow, "a", 1_500, "ACC");
    let barrier = Arc::new(Barrier::new(20));
    let handles: Vec<_> = (0..20)
        .map(|_| {
            let (app, barrier, request) = (Arc::clone(&app), Arc::clone(&barrier), request.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let r = app.post_with_key(
                    &format!("/payment-requests/{request}/approve"),
                    &app.sender,
                    &json!({}),
                    "approve-once",
                );
                (r.status, r.text)
            })
        })
        .collect();
    let results: Vec<(u16, String)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(results.iter().all(|(s, _)| *s == 200), "{results:?}");
    assert!(
        results.iter().all(|(_, t)| *t == results[0].1),
        "every answer is the first one"
    );
    let reserved_or_spent = {
        let v = app.escrow(&escrow);
        v["reservedUsdCents"].as_i64().unwrap() + v["spentUsdCents"].as_i64().unwrap()
    };
    assert_eq!(reserved_or_spent, 1_000, "one approval of USD 10.00");
    let deposits = (0..20)
        .map(|_| {
            app.post_with_key(
                &format!("/escrows/{}/deposits", app.pending_escrow(50, &["a"], None)),
                &app.agent,
                &json!({"amountUsd": 1, "reference": "x"}),
                "dep",
            )
        })
        .filter(|r| r.status == 201)
        .count();
    assert_eq!(
        deposits, 1,
        "the same key on different paths is a different request → 422 after the first"
    );
    app.assert_integrity();
}

#[test]
fn rates_are_set_by_admins_and_used_for_new_requests() {
    let app = spawn_app();
    let r = app.get("/fx-rates", &app.agent);
    assert_eq!(r.body["USD-KES"]["rate"].to_string(), "150.0");
    let r = app.raw(
        "PUT",
        "/fx-rates/USD-KES",
        Some(&app.admin),
        Some(("application/json", br#"{"rate": 152.25}"#)),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    for bad in [
        r#"{"rate": 152.123456}"#,
        r#"{"rate": 0}"#,
        r#"{"rate": "abc"}"#,
        r#"{}"#,
    ] {
        let r = app.raw(
            "PUT",
            "/fx-rates/USD-KES",
            Some(&app.admin),
            Some(("application/json", bad.as_bytes())),
            &[],
        );
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
    }
    assert_eq!(
        app.raw(
            "PUT",
            "/fx-rates/USD-EUR",
            Some(&app.admin),
            Some(("application/json", br#"{"rate": 1}"#)),
            &[]
        )
        .status,
        404
    );
    let escrow = app.active_escrow(100, &["a"]);
    let id = app.request(&escrow, "a", 15_225, "A");
    let r = app.get(&format!("/payment-requests/{id}"), &app.sender);
    assert_eq!(
        (
            r.body["amountUsdCents"].as_i64(),
            r.body["exchangeRate"].to_string()
        ),
        (Some(10_000), "152.25".into())
    );
}

#[test]
fn users_and_tokens_are_managed_by_admins_and_revocation_is_immediate() {
    let app = spawn_app();
    let r = app.post(
        "/users",
        &app.admin,
        &json!({"role": "agent", "name": "Kiosk 2"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let token = r.body["token"].as_str().unwrap().to_string();
    assert!(
        token.starts_with("rmt_") && token.len() >= 4 + 32,
        "≥ 128 random bits"
    );
    assert_eq!(app.get("/me", &token).body["role"], "agent");
    let r = app.raw(
        "DELETE",
        &format!("/tokens/{}", &token[..12]),
        Some(&app.admin),
        None,
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.get("/me", &token).status, 401);
    assert_eq!(
        app.raw("DELETE", "/tokens/rmt_nothere", Some(&app.admin), None, &[])
            .status,
        404
    );
    let r = app.post(
        "/users",
        &app.admin,
        &json!({"role": "recipient", "name": "No Phone"}),
    );
    assert_eq!((r.status, r.body["field"].as_str()), (400, Some("phone")));
    let r = app.post(
        "/users",
        &app.admin,
        &json!({"role": "recipient", "name": "Dup", "phone": RECIPIENT_PHONE}),
    );
    assert_eq!((r.status, r.body["field"].as_str()), (400, Some("phone")));
    let r = app.get("/users", &app.admin);
    assert!(r.body["items"].as_array().unwrap().len() >= 6);
    assert!(!r.text.contains(&token), "tokens are never shown again");
}

#[test]
fn the_audit_log_of_an_escrow_tells_its_story() {
    let app = spawn_app();
    let escrow = app.active_escrow(100, &["a"]);
    let request = app.request(&escrow, "a", 1_500, "A");
    app.approve(&request);
    app.wait_for_status(&request, &["paid"]);
    let r = app.get(&format!("/audit?entity={escrow}"), &app.sender);
    assert_eq!(r.status, 200, "{}", r.text);
    let actions: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["action"].as_str().unwrap())
        .collect();
    for expected in [
        "escrow.created",
        "escrow.deposited",
        "escrow.activated",
        "payment_request.created",
        "payment_request.approved",
        "payout.sent",
        "payout.succeeded",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    assert!(
        !r.text.contains("712345678") && !r.text.contains("Kenya Power"),
        "no PII in audit details"
    );
    assert_eq!(app.get("/audit", &app.admin).status, 400);
}

#[test]
fn health_and_metrics_answer_without_a_token() {
    let app = spawn_app();
    let r = app.raw("GET", "/health", None, None, &[]);
    assert_eq!(
        r.body,
        json!({"status": "ok", "db": "ok", "version": env!("CARGO_PKG_VERSION")})
    );
    app.pending_escrow(10, &["a"], None);
    // Refused before its handler ran, a request is counted under its route all the same.
    let refused = app.raw(
        "POST",
        "/escrows",
        None,
        Some(("application/json", b"{}")),
        &[],
    );
    assert_eq!(refused.status, 401, "{}", refused.text);
    // A monitor's HEAD is counted as a HEAD; a path that names nothing is no file of the UI
    // (until 2026-12-07 they were counted as a GET and under route="static").
    assert_eq!(app.raw("HEAD", "/health", None, None, &[]).status, 200);
    assert_eq!(app.raw("GET", "/no-such-page", None, None, &[]).status, 404);
    assert_eq!(app.raw("GET", "/app.css", None, None, &[]).status, 200);
    let r = app.raw("GET", "/metrics", None, None, &[]);
    assert_eq!(r.status, 200);
    for counted in [
        "{method=\"POST\",route=\"/escrows\",status=\"401\"} 1",
        "{method=\"HEAD\",route=\"/health\",status=\"200\"} 1",
        "{method=\"GET\",route=\"/health\",status=\"200\"} 1",
        "{method=\"GET\",route=\"-\",status=\"404\"} 1",
        "{method=\"GET\",route=\"static\",status=\"200\"} 1",
    ] {
        assert!(
            r.text
                .contains(&format!("remit_http_requests_total{counted}")),
            "{counted} not in {}",
            r.text
        );
    }
    for name in [
        "remit_http_requests_total{",
        "remit_http_request_duration_seconds_bucket",
        "remit_writer_batch_size_bucket",
        "remit_writer_commit_seconds_total",
        "remit_writer_queue_depth",
        "remit_escrows{status=\"pending_deposit\"} 1",
        "remit_payouts_stuck",
        "remit_ledger_gauges_read 1",
        "remit_database_bytes",
        "remit_disk_free_bytes",
        "remit_wal_bytes",
        "remit_wal_in_use_bytes",
        "remit_wal_resets_total",
        "remit_wal_reset_failures_total",
        "remit_wal_reset_seconds_total",
    ] {
        assert!(r.text.contains(name), "{name} missing from /metrics");
    }
    // One family per name as OpenMetrics parsers read them: a counter `x_total` is the family
    // `x`, a histogram's `x_bucket`/`x_sum`/`x_count` are `x`'s; none may be another family.
    let mut families = std::collections::HashMap::new();
    for line in r.text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut words = line["# TYPE ".len()..].split(' ');
        let (name, kind) = (words.next().unwrap(), words.next().unwrap());
        let family = match kind {
            "counter" => name.strip_suffix("_total").unwrap_or(name),
            _ => name,
        };
        let mut taken = vec![family.to_string()];
        if kind == "counter" {
            taken.push(format!("{family}_total"));
        }
        if kind == "histogram" || kind == "summary" {
            for suffix in ["_bucket", "_sum", "_count"] {
                taken.push(format!("{family}{suffix}"));
            }
        }
        for n in taken {
            if let Some(other) = families.insert(n.clone(), line.to_string()) {
                panic!("{line:?} and {other:?} both name {n}");
            }
        }
    }
}

#[test]
fn the_request_id_is_echoed_or_made() {
    let app = spawn_app();
    let r = app.raw(
        "GET",
        "/health",
        None,
        None,
        &[("X-Request-Id", "kiosk-7-0001")],
    );
    assert_eq!(r.request_id.as_deref(), Some("kiosk-7-0001"));
    // An id that holds what reads as a phone or a token is echoed too (the log masks it): a
    // UUID's last group reads as nine digits in a row, and such ids were replaced.
    for sent in [
        "550e8400-e29b-41d4-a716-446655440000",
        "1733520000123",
        "Wanjiru-0712345678",
        "rmt_0123456789abcdef0123456789abcdef",
    ] {
        let r = app.raw("GET", "/health", None, None, &[("X-Request-Id", sent)]);
        assert_eq!(r.request_id.as_deref(), Some(sent));
    }
    // One that is not an id (a space, a quote, more than 64 bytes) is replaced by a new one.
    for sent in ["a b", "x\"y", &"z".repeat(65)] {
        let r = app.raw("GET", "/health", None, None, &[("X-Request-Id", sent)]);
        let given = r.request_id.unwrap();
        assert!(given != sent && given.len() >= 8, "{sent}: {given}");
    }
    let r = app.raw("GET", "/nothing-here", None, None, &[]);
    assert_eq!(r.status, 404);
    assert!(r.request_id.unwrap().len() >= 8);
    let r = app.raw("PATCH", "/escrows", Some(&app.sender), None, &[]);
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
    assert_eq!(r.header("Allow"), Some("GET, POST, HEAD"));
    // A HEAD is answered as its GET, without the body (a monitor's `HEAD /health` was 405).
    {
        use std::io::{Read, Write};
        let mut stream =
            std::net::TcpStream::connect(app.base.trim_start_matches("http://")).unwrap();
        stream
            .write_all(b"HEAD /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        let answer = String::from_utf8(answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            head.to_ascii_lowercase().contains("content-length: "),
            "{answer}"
        );
        assert_eq!(body, "", "a HEAD got a body: {answer}");
    }
    // The web UI's pages are GET (and HEAD) only, and say so; a path that is nothing is 404.
    for path in ["/", "/api.html"] {
        let r = app.raw("POST", path, None, Some(("text/plain", b"x")), &[]);
        assert_eq!(
            (r.status, r.body["code"].as_str(), r.header("Allow")),
            (405, Some("method_not_allowed"), Some("GET, HEAD")),
            "{path}: {}",
            r.text
        );
    }
    let r = app.raw("DELETE", "/nothing-here", None, None, &[]);
    assert_eq!(r.status, 404, "{}", r.text);
}

#[test]
fn the_journal_of_an_escrow_explains_every_cent() {
    let app = spawn_app();
    let escrow = app.active_escrow(100, &["food", "rent"]);
    let request = app.request(&escrow, "food", 1_500, "A");
    app.approve(&request);
    app.wait_for_status(&request, &["paid"]);
    let r = app.get(&format!("/escrows/{escrow}/journal"), &app.sender);
    assert_eq!(r.status, 200, "{}", r.text);
    let items = r.body["items"].as_array().unwrap();
    let kinds: Vec<&str> = items.iter().map(|t| t["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        vec!["deposit", "activation", "approval", "payout_succeeded"]
    );
    for t in items {
        let sum: i64 = t["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["amountUsdCents"].as_i64().unwrap())
            .sum();
        assert_eq!(sum, 0, "each transaction balances: {t}");
    }
    // The deposit says how it came in, as the person who paid can match it: the kiosk's
    // receipt number (not who recorded it, nor the agent's own reference).
    let deposits = app.get(&format!("/deposits?escrowId={escrow}"), &app.admin);
    let receipt = &deposits.body["items"][0]["receiptNumber"];
    assert!(receipt.is_string(), "{}", deposits.text);
    assert_eq!(
        items[0]["deposit"],
        json!({"source": "cash", "receiptNumber": receipt, "amountKes": null, "amountKesCents": null,
               "rateKesPerUsdE4": null}),
        "{}",
        items[0]
    );
    assert!(
        items[1..].iter().all(|t| t.get("deposit").is_none()),
        "{}",
        r.text
    );
    // The agent who took it reads its receipt too; another agent reads that cash came in.
    let agents_view = |token: &str| {
        app.get(&format!("/escrows/{escrow}/journal"), token).body["items"][0]["deposit"].clone()
    };
    assert_eq!(agents_view(&app.agent)["receiptNumber"], *receipt);
    let other_agent = app.new_user(remit::service::Role::Agent, "Second kiosk", None);
    assert_eq!(
        agents_view(&other_agent),
        json!({"source": "cash", "receiptNumber": null, "amountKes": null, "amountKesCents": null,
               "rateKesPerUsdE4": null})
    );
    // Cash counted in shillings: its sender reads the rate it was counted at (they could read
    // it nowhere: `/deposits` is staff's).
    let in_shillings = app.pending_escrow(10, &["food"], None);
    let r = app.post_with_key(
        &format!("/escrows/{in_shillings}/deposits"),
        &app.agent,
        &json!({"amountKes": 1_500}),
        "kes-cash-1",
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let counted = &app
        .get(&format!("/escrows/{in_shillings}/journal"), &app.sender)
        .body["items"][0]["deposit"];
    assert_eq!(counted["amountKesCents"], 150_000, "{counted}");
    assert_eq!(
        counted["rateKesPerUsdE4"], r.body["rateKesPerUsdE4"],
        "{counted}"
    );
    assert!(
        counted["rateKesPerUsdE4"].as_i64().unwrap() > 0,
        "{counted}"
    );
    let spent = &items[3]["entries"].as_array().unwrap()[1];
    assert_eq!(
        (
            spent["account"].as_str(),
            spent["category"].as_str(),
            spent["amountUsdCents"].as_i64()
        ),
        (Some("spent"), Some("food"), Some(1_000))
    );
    assert_eq!(items[3]["entries"][0]["amountUsd"].to_string(), "-10.0");
    let page = app.get(&format!("/escrows/{escrow}/journal?limit=2"), &app.sender);
    let cursor = page.body["nextCursor"].as_str().unwrap().to_string();
    let rest = app.get(
        &format!("/escrows/{escrow}/journal?limit=2&cursor={cursor}"),
        &app.sender,
    );
    assert_eq!(rest.body["items"][0]["kind"], "approval");
    assert_eq!(
        app.get(&format!("/escrows/{escrow}/journal"), &app.other_sender)
            .status,
        404
    );
    // Other escrows' money moves between this one's: its parties see their own journal's
    // numbers (1, 2, …), which count nothing of anyone else's; admins the ledger's. Before,
    // every caller saw the ledger's, whose gaps counted other people's movements.
    let later = app.request(&escrow, "rent", 1_500, "B");
    for _ in 0..3 {
        app.active_escrow(10, &["a"]);
    }
    app.approve(&later);
    app.wait_for_status(&later, &["paid"]);
    let numbers = |token: &str| -> Vec<i64> {
        let mut seen = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = app.get(&format!("/escrows/{escrow}/journal?limit=2{cursor}"), token);
            assert_eq!(page.status, 200, "{}", page.text);
            for t in page.body["items"].as_array().unwrap() {
                seen.push(t["transactionId"].as_i64().unwrap());
            }
            match page.body["nextCursor"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => return seen,
            }
        }
    };
    for token in [&app.sender, &app.recipient, &app.agent] {
        assert_eq!(numbers(token), vec![1, 2, 3, 4, 5, 6], "the escrow's own");
    }
    let ledger = numbers(&app.admin);
    assert_eq!(ledger.len(), 6, "{ledger:?}");
    assert!(
        ledger[4] - ledger[3] > 1,
        "the ledger's numbers: {ledger:?}"
    );
}

// A sender may cancel an escrow whatever waits on it. Eleven hundred waiting requests with the
// longest texts take a page each: cancelling them all changes more pages than a writer command
// may journal in its fast piece of 4 MiB, so the writer runs the cancel's batch again with its
// journals in memory. The answer is 200, every request is cancelled, nothing else changed.
#[test]
fn an_escrow_with_a_thousand_waiting_requests_can_be_cancelled() {
    const WAITING: usize = 1_100;
    let app = spawn_app();
    let escrow = app.active_escrow(100, &["rent"]);
    let longest = "\u{1F30D}".repeat(200);
    std::thread::scope(|s| {
        for first in 0..8 {
            let (app, escrow, longest) = (&app, &escrow, &longest);
            s.spawn(move || {
                for _ in (first..WAITING).step_by(8) {
                    let r = app.post(
                        "/payment-requests",
                        &app.agent,
                        &json!({"escrowId": escrow, "category": "rent", "amountKes": 150,
                                "merchantName": longest, "note": longest,
                                "merchantAccount": {"type": "till", "number": "123456"}}),
                    );
                    assert_eq!(r.status, 201, "{}", r.text);
                }
            });
        }
    });
    let outgrown = || {
        app.store
            .stats
            .journals_outgrown
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let before = outgrown();
    let r = app.post(
        &format!("/escrows/{escrow}/cancel"),
        &app.sender,
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "cancelled", "{}", r.text);
    assert!(outgrown() > before, "the cancel outgrew the piece");
    let escrow_id = escrow.clone();
    let by_status: Vec<(String, i64)> = app
        .store
        .write(move |ctx| {
            let mut stmt = ctx.conn.prepare(
                "SELECT status, count(*) FROM payment_requests WHERE escrow_id = ?1 GROUP BY status",
            )?;
            let rows = stmt
                .query_map([&escrow_id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
        .unwrap();
    assert_eq!(by_status, vec![("cancelled".to_string(), WAITING as i64)]);
    app.assert_integrity();
}

/// `GET /me` tells a client the server's maxima, so that a form says them before sending; a
/// configured one is the one enforced.
#[test]
fn me_says_the_largest_escrow_and_request_the_server_takes() {
    let app = spawn_app_with(|c| {
        c.escrow_total_max = remit::money::UsdCents::new(50_000).unwrap();
        c.request_kes_max = remit::money::KesCents::new(2_000_000).unwrap();
    });
    for token in [&app.sender, &app.agent, &app.recipient, &app.admin] {
        let me = app.get("/me", token);
        assert_eq!(me.status, 200, "{}", me.text);
        assert_eq!(
            (
                &me.body["maxEscrowUsd"],
                &me.body["maxEscrowUsdCents"],
                &me.body["maxRequestKes"],
                &me.body["maxRequestKesCents"]
            ),
            (
                &json!(500.0),
                &json!(50_000),
                &json!(20000.0),
                &json!(2_000_000)
            ),
            "{}",
            me.text
        );
    }
    let over = app.post(
        "/escrows",
        &app.sender,
        &json!({"recipientPhone": "0712345678", "recipientName": "Wanjiru",
            "totalAmountUsdCents": 50_001, "categories": ["rent"]}),
    );
    assert_eq!(
        (over.status, over.body["field"].as_str()),
        (400, Some("totalAmountUsdCents")),
        "{}",
        over.text
    );
}

/// What the ledger keeps as typed (a cash deposit's reference, a category's name) holds no
/// phone and no token: an agent typing the customer's phone as the reference put it in the
/// file, its backups and the replica, readable. Refused, naming the field; a receipt number
/// of digits is taken.
#[test]
fn a_phone_or_a_token_is_refused_where_the_ledger_keeps_text_as_typed() {
    let app = spawn_app();
    let escrow = app.pending_escrow(100, &["food"], None);
    let deposit = |reference: &str| {
        app.post(
            &format!("/escrows/{escrow}/deposits"),
            &app.agent,
            &json!({"amountUsd": 1, "reference": reference}),
        )
    };
    for reference in [
        "0712345678",
        "Wanjiku-0712-345-678",
        "+254_712_345_678",
        "0712.345.678",
        "rmt_a1b2c3d4e5f6a7b8",
        "RMT-a1b2c3d4e5f6a7b8",
        "00254 712 345 678",
    ] {
        let r = deposit(reference);
        assert_eq!(
            (r.status, r.body["field"].as_str()),
            (400, Some("reference")),
            "{reference}: {}",
            r.text
        );
        assert!(!r.text.contains("712345678"), "{}", r.text);
    }
    // A reference recorded before such were refused is still its deposit's: a retry of it is
    // answered as one, not refused.
    let (id, agent) = (escrow.clone(), app.agent_id.clone());
    app.store
        .write(move |ctx| {
            remit::service::deposits::record_cash(
                ctx,
                &remit::service::Actor {
                    id: agent.clone(),
                    role: remit::service::Role::Agent,
                    sender_scope: None,
                    credential: None,
                },
                &remit::domain::EscrowId::parse(&id)?,
                Some("0722000111"),
                remit::service::deposits::CashAmount::Usd(
                    remit::money::UsdCents::new(100).unwrap(),
                ),
            )
        })
        .unwrap();
    let r = deposit("0722000111");
    assert_eq!(
        (r.status, &r.body["duplicate"]),
        (200, &json!(true)),
        "{}",
        r.text
    );
    for receipt in [
        "123456789",
        "QK12345678",
        "CASH-2026-000123",
        "RMT-2026-0001",
        "15-07-2026-0001",
        "INV/01/2026/0001",
    ] {
        let r = deposit(receipt);
        assert_eq!(r.status, 201, "{receipt}: {}", r.text);
    }
    let r = app.post(
        "/escrows",
        &app.sender,
        &json!({"recipientPhone": RECIPIENT_PHONE, "recipientName": "Wanjiru", "totalAmountUsd": 10,
                "categories": ["school 0799 111 222"]}),
    );
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("phone number"), "{}", r.text);
    app.assert_integrity();
}

/// Every field of an escrow is in its answer: without a daily limit, `approvedTodayUsd(Cents)`
/// are `null`, as `dailyLimitUsd(Cents)` are (they were left out, and a client reading them got
/// a missing key).
#[test]
fn an_escrow_without_a_daily_limit_says_its_days_total_as_null() {
    let app = spawn_app();
    let escrow = app.active_escrow(100, &["food"]);
    let one = app.get(&format!("/escrows/{escrow}"), &app.sender).body;
    let listed = app.get("/escrows", &app.sender).body["items"][0].clone();
    for view in [&one, &listed] {
        let fields = view.as_object().unwrap();
        for key in [
            "dailyLimitUsd",
            "dailyLimitUsdCents",
            "approvedTodayUsd",
            "approvedTodayUsdCents",
        ] {
            assert_eq!(
                fields.get(key),
                Some(&serde_json::Value::Null),
                "{key} in {view}"
            );
        }
    }
}
