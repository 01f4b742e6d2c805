//! What a kiosk and its clients rely on beyond the first contract: an escrow's short deposit
//! reference, cash taken in shillings with a receipt number remit makes, a recipient's first
//! token from their sender, category names as people type them, and the API's edges (cursors,
//! query parameters, headers) refused with a clear `400` or `401`.

use crate::support::app::*;
use crate::support::{exchange, status_of};
use serde_json::{json, Value};

fn short_ref(escrow: &Value) -> String {
    let code = escrow["shortRef"].as_str().unwrap().to_string();
    assert!(
        code.len() == 8
            && code
                .bytes()
                .all(|b| b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ".contains(&b)),
        "{code}"
    );
    code
}

#[test]
fn an_escrow_is_found_by_its_short_reference_typed_any_way() {
    let app = spawn_app();
    let escrow = app.pending_escrow(100, &["a"], None);
    let other = app.pending_escrow(50, &["a"], None);
    let code = short_ref(&app.escrow(&escrow));
    assert_ne!(code, short_ref(&app.escrow(&other)));
    let typed = format!("{}-{}", &code[..4], &code[4..]).to_lowercase();
    for (who, token) in [("agent", &app.agent), ("sender", &app.sender)] {
        let r = app.get(&format!("/escrows?ref={typed}"), token);
        assert_eq!(r.status, 200, "{who}: {}", r.text);
        let items = r.body["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{who}: {}", r.text);
        assert_eq!(items[0]["escrowId"], escrow.as_str());
    }
    // Another sender's escrow stays invisible, even by its code.
    let r = app.get(&format!("/escrows?ref={code}"), &app.other_sender);
    assert_eq!(r.body["items"], json!([]), "{}", r.text);
    let r = app.get("/escrows?ref=K7M3-Q9P0", &app.agent);
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (400, Some("ref")),
        "{}",
        r.text
    );
}

#[test]
fn older_escrows_get_a_short_reference_when_the_database_is_opened() {
    let app = spawn_app();
    let escrow = app.pending_escrow(100, &["a"], None);
    let dir = crate::support::process::stop_app(app);
    let db = dir.path().join("remit.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute("UPDATE escrows SET short_ref = NULL", [])
        .unwrap();
    let mut options = remit::store::OpenOptions::new(&db);
    options.key_hex = Some(crate::support::TEST_KEY.into());
    let store = remit::store::open(&options).unwrap();
    let code: Option<String> = store
        .read(|c, _| {
            Ok(c.query_row(
                "SELECT short_ref FROM escrows WHERE id = ?1",
                [&escrow],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    short_ref(&json!({ "shortRef": code }));
    store.close();
}

/// The whole shillings the kiosk screen fills in for what is due (USD 166.67 at 150: KES
/// 25,001, as KES 25,000 would leave a cent due) are taken and complete the escrow; a shilling
/// more is refused, naming them.
#[test]
fn the_whole_shillings_a_kiosk_collects_complete_the_escrow_and_no_more_are_taken() {
    let app = spawn_app();
    let escrow = app.pending_escrow(100, &["a"], None);
    let path = format!("/escrows/{escrow}/deposits");
    let r = app.post_with_key(
        &path,
        &app.agent,
        &json!({"amountUsdCents": 8_333}),
        "first",
    );
    assert_eq!(r.status, 201, "{}", r.text);
    // USD 16.67 due at 150 is KES 2,500.50: the kiosk collects KES 2,501.
    let r = app.post_with_key(&path, &app.agent, &json!({"amountKes": 2502}), "more");
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (400, Some("amountKes")),
        "{}",
        r.text
    );
    assert!(r.text.contains("KES 2,501.00"), "{}", r.text);
    let r = app.post_with_key(&path, &app.agent, &json!({"amountKes": 2501}), "whole");
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        (&r.body["amountUsdCents"], r.body["escrowStatus"].as_str()),
        (&json!(1_667), Some("active"))
    );
}

/// Guards against: at a rate under one shilling a dollar (0.0001 to 100,000 are taken), the
/// shillings the server itself allowed for the last cent converted to more than was due, and
/// the deposit was a `500` (the escrow's CHECK refused it): now a `400` naming `amountKes`.
#[test]
fn shillings_worth_more_than_is_due_at_a_rate_under_one_are_refused_by_name() {
    let app = spawn_app();
    let r = app.raw(
        "PUT",
        "/fx-rates/USD-KES",
        Some(&app.admin),
        Some(("application/json", br#"{"rate": 0.3}"#)),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let escrow = app.pending_escrow(100, &["a"], None);
    let path = format!("/escrows/{escrow}/deposits");
    let r = app.post_with_key(&path, &app.agent, &json!({"amountUsdCents": 9_999}), "most");
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app.post_with_key(&path, &app.agent, &json!({"amountKes": 0.01}), "kes");
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (400, Some("amountKes")),
        "{}",
        r.text
    );
    assert!(r.text.contains("USD 0.01 still due"), "{}", r.text);
    let r = app.post_with_key(&path, &app.agent, &json!({"amountUsdCents": 1}), "last");
    assert_eq!(
        (r.status, r.body["escrowStatus"].as_str()),
        (201, Some("active")),
        "{}",
        r.text
    );
    app.assert_integrity();
}

#[test]
fn cash_in_shillings_is_converted_at_todays_rate_with_a_receipt_number() {
    let app = spawn_app();
    let r = app.raw(
        "PUT",
        "/fx-rates/USD-KES",
        Some(&app.admin),
        Some(("application/json", br#"{"rate": 152.25}"#)),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let escrow = app.pending_escrow(100, &["a"], None);
    let path = format!("/escrows/{escrow}/deposits");
    // KES 7,612.50 at 152.25 is exactly USD 50.
    let r = app.post_with_key(&path, &app.agent, &json!({"amountKes": 7612.50}), "cash-1");
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        (
            &r.body["amountUsdCents"],
            &r.body["amountKesCents"],
            &r.body["rateKesPerUsdE4"]
        ),
        (&json!(5_000), &json!(761_250), &json!(1_522_500))
    );
    let receipt = r.body["receiptNumber"].as_str().unwrap().to_string();
    assert!(receipt.starts_with('D') && receipt.len() == 9, "{receipt}");
    assert_eq!(
        r.body["reference"],
        receipt.as_str(),
        "no reference given: the receipt number"
    );
    // The same key again: the same deposit, not a second one.
    let again = app.post_with_key(&path, &app.agent, &json!({"amountKes": 7612.50}), "cash-1");
    assert_eq!(
        (again.status, &again.body["receiptNumber"]),
        (201, &json!(receipt)),
        "{}",
        again.text
    );
    assert_eq!(app.escrow(&escrow)["depositedUsdCents"], 5_000);
    // A shilling amount worth more than is due is refused, saying what is due in KES.
    let r = app.post_with_key(&path, &app.agent, &json!({"amountKes": 8000}), "cash-2");
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (400, Some("amountKes")),
        "{}",
        r.text
    );
    // What is due in shillings is said as the kiosk collects it: the whole shillings that pay
    // it (KES 7,612.50 is KES 7,613).
    assert!(r.text.contains("KES 7,613.00"), "{}", r.text);
    // Past those whole shillings is refused too, though in whole cents it is worth exactly
    // what is due: the shillings past them would be taken and credited to no one.
    let r = app.post_with_key(&path, &app.agent, &json!({"amountKes": 7613.50}), "cash-3");
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (400, Some("amountKes")),
        "{}",
        r.text
    );
    assert!(r.text.contains("KES 7,613.00"), "{}", r.text);
    assert_eq!(app.escrow(&escrow)["depositedUsdCents"], 5_000);
    // Sent in cents, the same refusals name the field sent.
    for (body, named) in [
        (json!({"amountKesCents": 800_000}), "amountKesCents"),
        (json!({"amountUsdCents": 6_000}), "amountUsdCents"),
    ] {
        let r = app.post_with_key(&path, &app.agent, &body, named);
        assert_eq!(
            (r.status, r.body["field"].as_str()),
            (400, Some(named)),
            "{}",
            r.text
        );
    }
    // Without a reference, a retry is only safe with an Idempotency-Key: it is required.
    let r = app.post(&path, &app.agent, &json!({"amountUsd": 10}));
    assert_eq!(
        (r.status, r.body["field"].as_str(), r.body["code"].as_str()),
        (400, Some("Idempotency-Key"), Some("missing_field")),
        "{}",
        r.text
    );
    // It says what else would do: the deposit's own reference.
    assert!(
        r.body["error"].as_str().is_some_and(
            |e| e.contains("when the body has no reference") && e.contains("reference")
        ),
        "{}",
        r.text
    );
    // With the agent's own reference, as before; and the rest in dollars activates it.
    let r = app.post(
        &path,
        &app.agent,
        &json!({"amountUsd": 50, "reference": "book-0042"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["reference"], "book-0042");
    assert!(r.body["receiptNumber"].as_str().unwrap().starts_with('D'));
    assert_eq!(r.body["amountKesCents"], Value::Null);
    assert_eq!(r.body["escrowStatus"], "active");
    for body in [
        json!({"amountUsd": 1, "amountKes": 150, "reference": "x1"}),
        json!({"reference": "x2"}),
    ] {
        let r = app.post(&path, &app.agent, &body);
        assert_eq!(r.status, 400, "{body}: {}", r.text);
    }
    app.assert_integrity();
}

#[test]
fn a_sender_gives_their_recipient_a_first_token_and_only_that() {
    let app = spawn_app();
    let escrow = app.pending_escrow(100, &["a"], None);
    let path = format!("/escrows/{escrow}/recipient-token");
    // The two steps the test repeats beside `escrow_to`: the escrow's sender asking for its
    // recipient's token, an admin revoking a token by its prefix.
    let give = |escrow: &str| {
        app.post(
            &format!("/escrows/{escrow}/recipient-token"),
            &app.sender,
            &json!({}),
        )
    };
    let revoke = |token: &str| {
        let prefix = &token[..12];
        let r = app.raw(
            "DELETE",
            &format!("/tokens/{prefix}"),
            Some(&app.admin),
            None,
            &[],
        );
        assert_eq!(r.status, 200, "{}", r.text);
    };
    // Not the sender's own: an agent is refused, another sender does not see the escrow.
    assert_eq!(app.post(&path, &app.agent, &json!({})).status, 403);
    assert_eq!(app.post(&path, &app.other_sender, &json!({})).status, 404);
    // The shared test recipient already has a token: the sender cannot add one.
    let r = give(&escrow);
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (409, Some("invalid_state")),
        "{}",
        r.text
    );
    assert!(r.text.contains("admin"), "{}", r.text);
    let refused = r.body["error"].clone();
    // A new recipient, created by this escrow: the sender gives them their first token.
    let fresh = escrow_to(&app, &app.sender, "0711 222 333", "Baraka");
    let r = give(&fresh);
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["name"], "Baraka");
    let token = r.body["token"].as_str().unwrap().to_string();
    let me = app.get("/me", &token);
    assert_eq!(
        (&me.body["role"], &me.body["userId"]),
        (&json!("recipient"), &r.body["userId"]),
        "{}",
        me.text
    );
    // Once: a second one is refused.
    let again = give(&fresh);
    assert_eq!(again.status, 409, "{}", again.text);
    // An admin's revocation is not the sender's to undo: once revoked, still refused.
    revoke(&token);
    assert_eq!(app.get("/me", &token).status, 401);
    let after = give(&fresh);
    assert_eq!(after.status, 409, "{}", after.text);
    assert_eq!(after.body["error"], refused, "{}", after.text);
    // A sender's phone may receive an escrow; a token for it would open that sender's own
    // account, revoked tokens or not.
    let bob = app.new_user(remit::service::Role::Sender, "Bob", Some("0722 000 111"));
    revoke(&bob);
    assert_eq!(app.get("/me", &bob).status, 401, "Bob is locked out");
    let r = give(&escrow_to(&app, &app.sender, "0722 000 111", "Bob"));
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.body["error"], refused, "{}", r.text);
    // A recipient who also receives from another sender is the admin's to serve.
    let shared = escrow_to(&app, &app.sender, "0711 444 555", "Neema");
    escrow_to(&app, &app.other_sender, "0711 444 555", "Neema W.");
    let r = give(&shared);
    assert_eq!(r.status, 409, "{}", r.text);
    // In the same words as for a recipient who has a token: which it is would tell this sender
    // about the recipient's other senders.
    assert_eq!(r.body["error"], refused, "{}", r.text);
    // An admin may give the first token for the sender: it opens the sender's escrows (not
    // the admin's, who has none), and a refusal points the admin at the route for any token.
    let r = app.post(&path, &app.admin, &json!({}));
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(r.text.contains("POST /users/:id/tokens"), "{}", r.text);
    assert_ne!(r.body["error"], refused, "{}", r.text);
    let for_admin = escrow_to(&app, &app.sender, "0711 888 999", "Zawadi");
    let r = app.post(
        &format!("/escrows/{for_admin}/recipient-token"),
        &app.admin,
        &json!({}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let token = r.body["token"].as_str().unwrap();
    let seen = app.get(&format!("/escrows/{for_admin}"), token);
    assert_eq!(
        seen.status, 200,
        "the recipient sees the escrow: {}",
        seen.text
    );
    let listed = app.get("/escrows", token);
    assert_eq!(
        listed.body["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        listed.text
    );
}

/// An escrow of USD 40 for rent from the sender of `token` to `phone`, whose recipient they call
/// `name`; its id.
fn escrow_to(app: &TestApp, token: &str, phone: &str, name: &str) -> String {
    let r = app.post(
        "/escrows",
        token,
        &json!({"recipientPhone": phone, "recipientName": name, "totalAmountUsd": 40, "categories": ["rent"]}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["escrowId"].as_str().unwrap().to_string()
}

/// Guards against: a token a sender gave names the recipient as that sender typed the name, never
/// as another sender did. A remit of 2026-12-06 gave a second sender a token for a recipient of
/// two (refused since); after an upgrade such a token still opens, and `GET /me` named the
/// recipient as the first sender had typed it. Made here as that remit left it: the scope of a
/// first sender's token moved to the second.
#[test]
fn a_token_a_sender_gave_names_the_recipient_as_that_sender_typed_it() {
    let app = spawn_app();
    let escrow_of = |token: &str, name: &str| escrow_to(&app, token, "0711 666 778", name);
    let first = escrow_of(&app.sender, "Mama Wanjiru");
    let r = app.post(
        &format!("/escrows/{first}/recipient-token"),
        &app.sender,
        &json!({}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let given = r.body["token"].as_str().unwrap().to_string();
    let recipient = r.body["userId"].as_str().unwrap().to_string();
    escrow_of(&app.other_sender, "Wanjiru Kamau (private)");
    let other = app.get("/me", &app.other_sender).body["userId"]
        .as_str()
        .unwrap()
        .to_string();
    app.sql(
        "UPDATE api_tokens SET sender_scope = ?1 WHERE user_id = ?2",
        &[&other, &recipient],
    );
    // (The token is read after the edit: the server keeps a token it has read for a while.)
    assert_eq!(
        app.get("/me", &given).body["name"],
        "Wanjiru Kamau (private)"
    );
}

/// Regression: the token a sender gave opened every escrow of its holder, so once a second
/// sender made an escrow to the same phone, whoever held the first sender's token read the
/// second sender's escrow: the name they typed, their amounts, merchants and notes.
#[test]
fn a_token_a_sender_gave_opens_that_senders_escrows_only() {
    let app = spawn_app();
    let escrow_of = |token: &str, name: &str| escrow_to(&app, token, "0711 666 777", name);
    let mine = escrow_of(&app.sender, "Juma");
    let r = app.post(
        &format!("/escrows/{mine}/recipient-token"),
        &app.sender,
        &json!({}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let given = r.body["token"].as_str().unwrap().to_string();
    let recipient_id = r.body["userId"].as_str().unwrap().to_string();
    // Later, another sender sends to the same phone; the escrow is funded and asked of.
    let theirs = escrow_of(&app.other_sender, "Juma Otieno (private)");
    let r = app.post(
        &format!("/escrows/{theirs}/deposits"),
        &app.agent,
        &json!({"amountUsd": 40, "reference": "scope-1"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let their_request = app.request(&theirs, "rent", 1_000, "CLINIC-7");

    let escrow_ids = |token: &str| -> Vec<String> {
        let r = app.get("/escrows?limit=200", token);
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["escrowId"].as_str().unwrap().to_string())
            .collect()
    };
    // The given token: the giver's escrow, and nothing of the other sender's, in any view.
    assert_eq!(escrow_ids(&given), vec![mine.clone()]);
    assert_eq!(app.get(&format!("/escrows/{mine}"), &given).status, 200);
    for path in [
        format!("/escrows/{theirs}"),
        format!("/escrows/{theirs}/journal"),
        format!("/payment-requests?escrowId={theirs}"),
        format!("/payment-requests/{their_request}"),
    ] {
        let r = app.get(&path, &given);
        assert_eq!(r.status, 404, "{path}: {}", r.text);
    }
    let listed = app.get("/payment-requests?limit=200", &given);
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert!(!listed.text.contains(&their_request), "{}", listed.text);
    assert!(!listed.text.contains("CLINIC-7"), "{}", listed.text);
    let ask = app.post(
        "/payment-requests",
        &given,
        &json!({"escrowId": theirs, "category": "rent", "amountKes": 100, "merchantName": "Shop",
                "merchantAccount": {"type": "till", "number": "123456"}}),
    );
    assert_eq!(ask.status, 404, "{}", ask.text);
    let cancel = app.post(
        &format!("/payment-requests/{their_request}/cancel"),
        &given,
        &json!({}),
    );
    assert_eq!(cancel.status, 404, "{}", cancel.text);
    // A token an admin issues is the recipient's own: it opens both.
    let r = app.post(
        &format!("/users/{recipient_id}/tokens"),
        &app.admin,
        &json!({}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let own = r.body["token"].as_str().unwrap().to_string();
    let mut both = escrow_ids(&own);
    both.sort();
    let mut expected = vec![mine, theirs.clone()];
    expected.sort();
    assert_eq!(both, expected);
    let r = app.get(&format!("/payment-requests/{their_request}"), &own);
    assert_eq!(r.status, 200, "{}", r.text);
    // Nor through a replay: the same key and body after the recipient's own token made the
    // request is the given token's to refuse, not a stored 201 to hand over.
    let body = json!({"escrowId": theirs, "category": "rent", "amountKes": 120, "merchantName": "Shop",
                      "merchantAccount": {"type": "till", "number": "123456"}});
    let made = app.post_with_key("/payment-requests", &own, &body, "scope-key-1");
    assert_eq!(made.status, 201, "{}", made.text);
    let again = app.post_with_key("/payment-requests", &given, &body, "scope-key-1");
    assert_eq!(again.status, 404, "{}", again.text);
    let replay = app.post_with_key("/payment-requests", &own, &body, "scope-key-1");
    assert_eq!(replay.status, 201, "{}", replay.text);
    assert_eq!(replay.body, made.body);
}

#[test]
fn category_names_are_spelled_as_the_contract_says_and_found_as_people_type_them() {
    let app = spawn_app();
    // API.md: "Names: lowercase `[a-z0-9_]{1,32}`": another spelling is refused, naming the
    // one to send.
    for (typed, field, spelled) in [
        ("School Fees", "categories[0]", "school_fees"),
        ("Rent", "categories[0]", "rent"),
        ("school fees", "categories[0]", "school_fees"),
    ] {
        let r = app.post(
            "/escrows",
            &app.sender,
            &json!({"recipientPhone": "0712345678", "recipientName": "Wanjiru", "totalAmountUsd": 100,
                    "categories": [typed]}),
        );
        assert_eq!(r.status, 400, "{typed}: {}", r.text);
        assert_eq!(r.body["field"], field, "{}", r.text);
        assert!(
            r.body["error"].as_str().unwrap().contains(spelled),
            "{}",
            r.text
        );
    }
    let r = app.post(
        "/escrows",
        &app.sender,
        &json!({"recipientPhone": "0712345678", "recipientName": "Wanjiru", "totalAmountUsd": 100,
                "categories": [{"name": "rent", "amountUsd": 50}, {"name": "Water Bills", "amountUsd": 50}]}),
    );
    assert_eq!(r.status, 400, "{}", r.text);
    let r = app.post(
        "/escrows",
        &app.sender,
        &json!({"recipientPhone": "0712345678", "recipientName": "Wanjiru", "totalAmountUsd": 100,
                "categories": ["school_fees", "rent"]}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let names: Vec<&str> = r.body["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["school_fees", "rent"]);
    let escrow = r.body["escrowId"].as_str().unwrap().to_string();
    app.post(
        &format!("/escrows/{escrow}/deposits"),
        &app.agent,
        &json!({"amountUsd": 100, "reference": "c-cat"}),
    );
    let r = app.post(
        "/payment-requests",
        &app.agent,
        &json!({"escrowId": escrow, "category": "school fees", "amountKes": 1500, "merchantName": "St Mary's",
                "merchantAccount": {"type": "paybill", "number": "888880", "accountReference": "ADM-4411"}}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["category"], "school_fees");
    // The same category twice is refused.
    let r = app.post(
        "/escrows",
        &app.sender,
        &json!({"recipientPhone": "0712345678", "recipientName": "Wanjiru", "totalAmountUsd": 100,
                "categories": ["school_fees", "school_fees"]}),
    );
    assert_eq!(r.status, 400, "{}", r.text);
}

#[test]
fn cursors_query_parameters_and_headers_outside_the_contract_are_refused_clearly() {
    let app = spawn_app();
    for path in [
        "/escrows",
        "/payment-requests",
        "/users",
        "/payouts",
        "/deposits",
    ] {
        let r = app.get(&format!("{path}?cursor=garbage"), &app.admin);
        assert_eq!(
            (r.status, r.body["field"].as_str()),
            (400, Some("cursor")),
            "{path}: {}",
            r.text
        );
        let r = app.get(&format!("{path}?colour=blue"), &app.admin);
        assert_eq!(
            (r.status, r.body["code"].as_str(), r.body["field"].as_str()),
            (400, Some("unknown_field"), Some("colour")),
            "{path}: {}",
            r.text
        );
        let r = app.get(&format!("{path}?limit=2&limit=3"), &app.admin);
        assert_eq!(r.status, 400, "{path}: {}", r.text);
    }
    let escrow = app.pending_escrow(100, &["a"], None);
    // A journal's cursor is a line's number as the audit log's is: `0` and `01` were taken as
    // the start there, where the audit log refused them.
    for cursor in ["abc", "0", "01", "-1", "1e3", "1234567890123456789"] {
        for path in [
            format!("/escrows/{escrow}/journal"),
            format!("/audit?entity={escrow}"),
        ] {
            let sep = if path.contains('?') { '&' } else { '?' };
            let r = app.get(&format!("{path}{sep}cursor={cursor}"), &app.admin);
            assert_eq!(
                (r.status, r.body["field"].as_str()),
                (400, Some("cursor")),
                "{path} {cursor}: {}",
                r.text
            );
        }
    }
    let r = app.get(&format!("/escrows/{escrow}/journal?cursor=1"), &app.admin);
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app.get("/me?verbose=1", &app.admin);
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (400, Some("verbose")),
        "{}",
        r.text
    );
    assert!(r.text.contains("takes none"), "{}", r.text);
    // A token without the word Bearer gets a hint, and is never echoed.
    let r = app.raw("GET", "/me", None, None, &[("Authorization", &app.admin)]);
    assert_eq!(r.status, 401, "{}", r.text);
    assert!(
        r.text.contains("Bearer") && !r.text.contains(&app.admin),
        "{}",
        r.text
    );
    let r = app.raw(
        "GET",
        "/me",
        None,
        None,
        &[("Authorization", &format!("bearer {}", app.admin))],
    );
    assert_eq!(r.status, 200, "the scheme is case-insensitive: {}", r.text);
    // A byte outside ASCII in Idempotency-Key: a 400 naming it, on a connection that answers.
    let addr = crate::support::addr(&app);
    let body = br#"{"amountUsd": 1, "reference": "r-utf8"}"#;
    let mut request = format!(
        "POST /escrows/{escrow}/deposits HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nIdempotency-Key: caf",
        app.agent,
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&[0xC3, 0xA9]);
    request.extend_from_slice(b"\r\n\r\n");
    request.extend_from_slice(body);
    let (answer, _) = exchange(addr, &request);
    assert_eq!(status_of(&answer), 400, "{answer}");
    assert!(answer.contains("Idempotency-Key"), "{answer}");
    assert_eq!(app.escrow(&escrow)["depositedUsdCents"], 0);
}

#[test]
fn a_header_that_names_one_thing_sent_twice_is_refused_whichever_line_is_good() {
    let app = spawn_app();
    let escrow = app.pending_escrow(100, &["a"], None);
    let addr = crate::support::addr(&app);
    let body = r#"{"amountUsd": 1, "reference": "r-twice"}"#;
    let deposit = |lines: &[String]| {
        let mut request = format!("POST /escrows/{escrow}/deposits HTTP/1.1\r\nHost: x\r\n");
        for line in lines {
            request.push_str(line);
            request.push_str("\r\n");
        }
        request.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ));
        exchange(addr, request.as_bytes()).0
    };
    let good = format!("Authorization: Bearer {}", app.agent);
    let bad = "Authorization: Bearer rmt_0000000000000000000000000000000000000000".to_string();
    let json = "Content-Type: application/json".to_string();
    for (name, lines) in [
        (
            "Authorization",
            vec![good.clone(), bad.clone(), json.clone()],
        ),
        ("Authorization", vec![bad, good.clone(), json.clone()]),
        (
            "Content-Type",
            vec![
                good.clone(),
                json.clone(),
                "Content-Type: text/plain".into(),
            ],
        ),
        (
            "Idempotency-Key",
            vec![
                good.clone(),
                json.clone(),
                "Idempotency-Key: k1".into(),
                "Idempotency-Key: k2".into(),
            ],
        ),
        // The request's own `Host: x` and another.
        ("Host", vec![good.clone(), json.clone(), "Host: y".into()]),
    ] {
        let answer = deposit(&lines);
        assert_eq!(status_of(&answer), 400, "{name}: {answer}");
        assert!(
            answer.contains(r#""code":"invalid_header""#)
                && answer.contains(&format!(r#""field":"{name}""#)),
            "{name}: {answer}"
        );
        assert!(!answer.contains(&app.agent), "never echoed: {answer}");
    }
    assert_eq!(app.escrow(&escrow)["depositedUsdCents"], 0, "nothing moved");
    // Once each, the same deposit is taken.
    let answer = deposit(&[good, json]);
    assert_eq!(status_of(&answer), 201, "{answer}");
    assert_eq!(app.escrow(&escrow)["depositedUsdCents"], 100);
}

#[test]
fn names_that_would_read_otherwise_on_a_receipt_are_refused_naming_the_field() {
    let app = spawn_app();
    let escrow = |name: &str| {
        app.post(
            "/escrows",
            &app.sender,
            &json!({"recipientPhone": "0712345678", "recipientName": name,
                "totalAmountUsd": 10, "categories": [{"name": "school_fees", "amountUsd": 10}]}),
        )
    };
    for name in [
        "Kenya\u{202E}rewoP",
        "Wanjiru\u{2028}Paid",
        "\u{2066}Amina\u{2069}",
    ] {
        let r = escrow(name);
        assert_eq!(
            (r.status, r.body["field"].as_str()),
            (400, Some("recipientName")),
            "{name:?}: {}",
            r.text
        );
    }
    // Right-to-left text itself is a name like any other.
    let r = escrow("\u{5e9}\u{5dc}\u{5d5}\u{5dd}");
    assert_eq!(r.status, 201, "{}", r.text);
}

/// An agent reads back the cash they recorded on an escrow, to print a receipt again: their own
/// cash deposits only (not another agent's, not card money), an escrow at a time; every other
/// role but the admin is refused.
#[test]
fn an_agent_reads_the_cash_they_recorded_on_an_escrow_and_no_one_elses() {
    let app = spawn_app();
    let other_agent = app.new_user(remit::service::Role::Agent, "Second kiosk", None);
    let escrow = app.pending_escrow(100, &["a"], None);
    let path = format!("/escrows/{escrow}/deposits");
    let mine = app.post_with_key(
        &path,
        &app.agent,
        &json!({"amountUsd": 20, "reference": "till-1"}),
        "cash-mine",
    );
    assert_eq!(mine.status, 201, "{}", mine.text);
    let theirs = app.post_with_key(
        &path,
        &other_agent,
        &json!({"amountUsd": 30}),
        "cash-theirs",
    );
    assert_eq!(theirs.status, 201, "{}", theirs.text);
    // The same cash typed again is its own agent's repeat (the receipt again, nothing
    // recorded twice); at another kiosk its reference is refused, the first agent's receipt
    // not shown.
    let again = json!({"amountUsd": 20, "reference": "till-1"});
    let repeat = app.post(&path, &app.agent, &again);
    assert_eq!(
        (
            repeat.status,
            &repeat.body["depositId"],
            &repeat.body["duplicate"]
        ),
        (200, &mine.body["depositId"], &json!(true)),
        "{}",
        repeat.text
    );
    let elsewhere = app.post(&path, &other_agent, &again);
    assert_eq!(
        (elsewhere.status, elsewhere.body["field"].as_str()),
        (400, Some("reference")),
        "{}",
        elsewhere.text
    );
    assert!(
        !elsewhere
            .text
            .contains(mine.body["receiptNumber"].as_str().unwrap()),
        "{}",
        elsewhere.text
    );
    // In the same words whatever amount it tries: no probing whether it matches the cash.
    let probed = app.post(
        &path,
        &other_agent,
        &json!({"amountUsd": 21, "reference": "till-1"}),
    );
    assert_eq!(probed.status, 400, "{}", probed.text);
    assert_eq!(
        probed.body["error"], elsewhere.body["error"],
        "{}",
        probed.text
    );
    let card = json!({"id": "evt_card", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_card",
        "amount_received": 1000, "currency": "usd", "metadata": {"escrowId": escrow}}}});
    assert_eq!(app.post_stripe(&card.to_string()).status, 200);

    let list = |token: &str, query: &str| app.get(&format!("/deposits{query}"), token);
    let ids = |r: &Resp| -> Vec<String> {
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["depositId"].as_str().unwrap().to_string())
            .collect()
    };
    let of_escrow = format!("?escrowId={escrow}");
    let r = list(&app.agent, &of_escrow);
    assert_eq!(ids(&r), [mine.body["depositId"].as_str().unwrap()]);
    let d = &r.body["items"][0];
    assert_eq!(d["receiptNumber"], mine.body["receiptNumber"]);
    assert_eq!(d["reference"], "till-1");
    assert_eq!(d["recordedBy"].as_str(), Some(app.agent_id.as_str()));
    assert_eq!(
        ids(&list(&other_agent, &of_escrow)),
        [theirs.body["depositId"].as_str().unwrap()]
    );
    assert_eq!(
        ids(&list(&app.admin, &of_escrow)).len(),
        3,
        "the admin sees all three"
    );
    assert!(ids(&list(&app.agent, &format!("{of_escrow}&status=flagged"))).is_empty());

    // Every deposit at once stays the admins'; other roles never.
    let r = list(&app.agent, "");
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (403, Some("forbidden")),
        "{}",
        r.text
    );
    assert!(r.text.contains("escrowId"), "{}", r.text);
    for token in [&app.sender, &app.recipient] {
        assert_eq!(list(token, &of_escrow).status, 403);
    }
    let unknown = list(&app.agent, "?escrowId=esc_01m8yevggs2eed6vwrxpvfbgpm");
    assert_eq!(unknown.status, 404, "{}", unknown.text);
}
