//! Every route × every role: the rights of API.md, walked as a table. Someone else's object is
//! 404; a role that may not act is 403; no token is 401.

use crate::support::app::*;
use serde_json::{json, Value};

const ROLES: [&str; 6] = [
    "anonymous",
    "sender",
    "other_sender",
    "recipient",
    "agent",
    "admin",
];

struct Case {
    description: &'static str,
    method: &'static str,
    /// Builds a fresh target for one role (destructive routes need one each).
    setup: fn(&TestApp) -> (String, Value),
    /// Expected status per role, in the order of `ROLES`.
    expect: [u16; 6],
}

fn fresh_request(app: &TestApp) -> String {
    let escrow = app.active_escrow(100, &["a"]);
    app.request(&escrow, "a", 150, "ACC1")
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            description: "health",
            method: "GET",
            setup: |_| ("/health".into(), Value::Null),
            expect: [200, 200, 200, 200, 200, 200],
        },
        Case {
            description: "metrics",
            method: "GET",
            setup: |_| ("/metrics".into(), Value::Null),
            expect: [200, 200, 200, 200, 200, 200],
        },
        Case {
            description: "me",
            method: "GET",
            setup: |_| ("/me".into(), Value::Null),
            expect: [401, 200, 200, 200, 200, 200],
        },
        Case {
            description: "create escrow",
            method: "POST",
            setup: |_| {
                (
                    "/escrows".into(),
                    json!({"recipientPhone": RECIPIENT_PHONE, "recipientName": "W", "totalAmountUsd": 10, "categories": ["a"]}),
                )
            },
            expect: [401, 201, 201, 403, 403, 201],
        },
        Case {
            description: "list escrows",
            method: "GET",
            setup: |_| ("/escrows".into(), Value::Null),
            expect: [401, 200, 200, 200, 200, 200],
        },
        Case {
            description: "get escrow",
            method: "GET",
            setup: |app| {
                (
                    format!("/escrows/{}", app.pending_escrow(10, &["a"], None)),
                    Value::Null,
                )
            },
            expect: [401, 200, 404, 200, 200, 200],
        },
        Case {
            description: "escrow journal",
            method: "GET",
            setup: |app| {
                (
                    format!("/escrows/{}/journal", app.active_escrow(10, &["a"])),
                    Value::Null,
                )
            },
            expect: [401, 200, 404, 200, 200, 200],
        },
        Case {
            description: "cash deposit",
            method: "POST",
            setup: |app| {
                let escrow = app.pending_escrow(10, &["a"], None);
                (
                    format!("/escrows/{escrow}/deposits"),
                    json!({"amountUsd": 1, "reference": format!("r-{escrow}")}),
                )
            },
            expect: [401, 403, 403, 403, 201, 201],
        },
        Case {
            description: "cancel escrow",
            method: "POST",
            setup: |app| {
                (
                    format!("/escrows/{}/cancel", app.pending_escrow(10, &["a"], None)),
                    json!({}),
                )
            },
            expect: [401, 200, 404, 403, 403, 200],
        },
        Case {
            description: "create payment request",
            method: "POST",
            setup: |app| {
                let escrow = app.active_escrow(100, &["a"]);
                (
                    "/payment-requests".into(),
                    json!({"escrowId": escrow, "category": "a", "amountKes": 150, "merchantName": "M",
                    "merchantAccount": {"type": "till", "number": "123456"}}),
                )
            },
            expect: [401, 403, 403, 201, 201, 201],
        },
        Case {
            description: "list payment requests",
            method: "GET",
            setup: |_| ("/payment-requests".into(), Value::Null),
            expect: [401, 200, 200, 200, 200, 200],
        },
        Case {
            description: "get payment request",
            method: "GET",
            setup: |app| {
                (
                    format!("/payment-requests/{}", fresh_request(app)),
                    Value::Null,
                )
            },
            expect: [401, 200, 404, 200, 200, 200],
        },
        Case {
            description: "approve",
            method: "POST",
            setup: |app| {
                (
                    format!("/payment-requests/{}/approve", fresh_request(app)),
                    json!({}),
                )
            },
            expect: [401, 200, 404, 403, 403, 200],
        },
        Case {
            description: "reject",
            method: "POST",
            setup: |app| {
                (
                    format!("/payment-requests/{}/reject", fresh_request(app)),
                    json!({"reason": "not now"}),
                )
            },
            expect: [401, 200, 404, 403, 403, 200],
        },
        Case {
            description: "cancel request (asked by the agent)",
            method: "POST",
            setup: |app| {
                (
                    format!("/payment-requests/{}/cancel", fresh_request(app)),
                    json!({}),
                )
            },
            expect: [401, 403, 404, 403, 200, 200],
        },
        Case {
            description: "rates",
            method: "GET",
            setup: |_| ("/fx-rates".into(), Value::Null),
            expect: [401, 200, 200, 200, 200, 200],
        },
        Case {
            description: "set rate",
            method: "PUT",
            setup: |_| ("/fx-rates/USD-KES".into(), json!({"rate": 150})),
            expect: [401, 403, 403, 403, 403, 200],
        },
        Case {
            description: "create user",
            method: "POST",
            setup: |_| ("/users".into(), json!({"role": "agent", "name": "Kiosk 9"})),
            expect: [401, 403, 403, 403, 403, 201],
        },
        Case {
            description: "list users",
            method: "GET",
            setup: |_| ("/users".into(), Value::Null),
            expect: [401, 403, 403, 403, 403, 200],
        },
        Case {
            description: "issue token",
            method: "POST",
            setup: |app| (format!("/users/{}/tokens", app.agent_id), json!({})),
            expect: [401, 403, 403, 403, 403, 201],
        },
        Case {
            description: "revoke token",
            method: "DELETE",
            setup: |app| {
                let r = app.post(
                    &format!("/users/{}/tokens", app.agent_id),
                    &app.admin,
                    &json!({}),
                );
                let token = r.body["token"].as_str().unwrap().to_string();
                (format!("/tokens/{}", &token[..12]), Value::Null)
            },
            expect: [401, 403, 403, 403, 403, 200],
        },
        Case {
            description: "audit of an escrow",
            method: "GET",
            setup: |app| {
                (
                    format!("/audit?entity={}", app.pending_escrow(10, &["a"], None)),
                    Value::Null,
                )
            },
            expect: [401, 200, 404, 403, 403, 200],
        },
        Case {
            description: "integrity",
            method: "GET",
            setup: |_| ("/admin/integrity".into(), Value::Null),
            expect: [401, 403, 403, 403, 403, 200],
        },
        Case {
            description: "stuck payouts",
            method: "GET",
            setup: |_| ("/payouts?status=stuck".into(), Value::Null),
            expect: [401, 403, 403, 403, 403, 200],
        },
        Case {
            description: "resolve a payout stuck in the queue",
            method: "POST",
            setup: |app| {
                let escrow = app.active_escrow(100, &["a"]);
                let request = app.request(&escrow, "a", 150, TIMEOUT_ACCOUNT);
                assert_eq!(app.approve(&request).status, 200);
                app.wait_for_payout_flag(&request);
                let (payout, _, _) = app.payout_ids(&request);
                (
                    format!("/payouts/{payout}/resolve"),
                    json!({"outcome": "paid", "receipt": format!("RCPT{}", &payout[20..])}),
                )
            },
            expect: [401, 403, 403, 403, 403, 200],
        },
    ]
}

#[test]
fn every_route_answers_every_role_as_api_md_says() {
    let app = spawn_app();
    let mut failures = Vec::new();
    for case in cases() {
        for (role, expected) in ROLES.iter().zip(case.expect) {
            let (path, body) = (case.setup)(&app);
            let token = if *role == "anonymous" {
                None
            } else {
                Some(app.token(role))
            };
            let body_bytes = if body.is_null() {
                None
            } else {
                Some(body.to_string())
            };
            let r = app.raw(
                case.method,
                &path,
                token,
                body_bytes
                    .as_deref()
                    .map(|b| ("application/json", b.as_bytes())),
                &[],
            );
            if r.status != expected {
                failures.push(format!(
                    "{} as {role}: expected {expected}, got {} {}",
                    case.description, r.status, r.text
                ));
            }
            if r.status >= 400 && path != "/metrics" {
                assert!(
                    r.body["error"].is_string() && r.body["code"].is_string(),
                    "{}: error shape {}",
                    case.description,
                    r.text
                );
            }
            assert!(
                r.request_id.is_some(),
                "{}: no X-Request-Id",
                case.description
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} role checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    app.assert_integrity();
}

/// Refused a cancel of a request someone else made, the escrow's recipient and sender hear who
/// may cancel it (and the sender that rejecting is theirs), not that their role may not.
#[test]
fn a_refused_cancel_says_who_may_cancel() {
    let app = spawn_app();
    for (token, says) in [
        (
            &app.recipient,
            "only whoever made this request, or a kiosk agent, may cancel it",
        ),
        (&app.sender, "its sender rejects it instead"),
    ] {
        let path = format!("/payment-requests/{}/cancel", fresh_request(&app));
        let r = app.post(&path, token, &json!({}));
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (403, Some("forbidden")),
            "{}",
            r.text
        );
        assert!(
            r.body["error"].as_str().unwrap().contains(says),
            "{}",
            r.text
        );
    }
}

/// A role that may never call a route is `403` before its id or its query is looked at: before,
/// cancelling an escrow as a recipient or an agent answered `404` for an escrow that does not
/// exist and `400` for an unknown query parameter, and so did revoking a token, reading the audit
/// log and deleting a webhook endpoint as a role that never may.
#[test]
fn a_role_that_may_never_call_a_route_is_403_whatever_it_named() {
    let app = spawn_app();
    let escrow = "esc_01m9419caxg8qa5zvftf1tb4xz";
    let endpoint = "we_01m9419caxg8qa5zvftf1tb4xz";
    for (method, path, roles) in [
        (
            "POST",
            format!("/escrows/{escrow}/cancel?zz=1"),
            &["recipient", "agent"][..],
        ),
        (
            "DELETE",
            "/tokens/rmt_00000000?zz=1".to_string(),
            &["sender", "recipient", "agent"],
        ),
        ("GET", "/audit?zz=1".to_string(), &["recipient", "agent"]),
        (
            "DELETE",
            format!("/webhook-endpoints/{endpoint}?zz=1"),
            &["sender", "recipient", "agent"],
        ),
    ] {
        for role in roles {
            let body = (method == "POST").then_some(("application/json", &b"{}"[..]));
            let r = app.raw(method, &path, Some(app.token(role)), body, &[]);
            assert_eq!(
                (r.status, r.body["code"].as_str()),
                (403, Some("forbidden")),
                "{method} {path} as {role}: {}",
                r.text
            );
        }
    }
}

/// A request is authenticated when it arrives and commits in the writer's turn: a token an
/// admin revoked meanwhile acts no more. Approvals in flight when a stolen token was revoked
/// committed after the revocation, as the audit log ordered them (a third of them in a run of
/// forty); the writer now asks again, in the transaction the change commits in.
#[test]
fn a_change_waiting_for_the_writer_when_its_token_is_revoked_is_refused() {
    let app = spawn_app();
    let token = app.new_user(remit::service::Role::Sender, "Second sender", None);
    let me = app.get("/me", &token).body["userId"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app.post(
        "/escrows",
        &token,
        &json!({"recipientPhone": "0722000999", "recipientName": "Atieno", "totalAmountUsd": 1000, "categories": ["a"]}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let escrow = r.body["escrowId"].as_str().unwrap().to_string();
    let r = app.post(
        &format!("/escrows/{escrow}/deposits"),
        &app.agent,
        &json!({"amountUsd": 1000, "reference": "cash-revoked"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let requests: Vec<String> = (0..40)
        .map(|i| app.request(&escrow, "a", 150 + i, "ACC1"))
        .collect();
    let start = std::sync::Barrier::new(requests.len() + 1);
    let answers: Vec<(String, u16)> = std::thread::scope(|s| {
        let approvals: Vec<_> = requests
            .iter()
            .map(|request| {
                let (app, token, start) = (&app, &token, &start);
                s.spawn(move || {
                    start.wait();
                    let r = app.post(
                        &format!("/payment-requests/{request}/approve"),
                        token,
                        &json!({}),
                    );
                    (request.clone(), r.status)
                })
            })
            .collect();
        start.wait();
        let r = app.raw(
            "DELETE",
            &format!("/tokens/{}", &token[..12]),
            Some(&app.admin),
            None,
            &[],
        );
        assert_eq!(r.status, 200, "{}", r.text);
        approvals.into_iter().map(|a| a.join().unwrap()).collect()
    });
    for (request, status) in &answers {
        assert!(matches!(status, 200 | 401), "{request}: {status}");
    }
    let (late, approved): (i64, i64) = app
        .store
        .read(move |conn, _| {
            Ok(conn.query_row(
                "SELECT
                     (SELECT COUNT(*) FROM audit_log WHERE actor = ?1 AND action = 'payment_request.approved'
                         AND seq > (SELECT seq FROM audit_log WHERE action = 'token.revoked' AND entity = ?1)),
                     (SELECT COUNT(*) FROM audit_log WHERE actor = ?1 AND action = 'payment_request.approved')",
                [&me],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)
        })
        .unwrap();
    assert_eq!(late, 0, "approvals committed after their token was revoked");
    let answered = answers.iter().filter(|(_, s)| *s == 200).count() as i64;
    assert_eq!(
        approved, answered,
        "every approval answered 200 is there, and no other"
    );
    app.assert_integrity();
}
