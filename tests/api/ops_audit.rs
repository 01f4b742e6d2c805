//! The audit chain and `remit check`: a busy randomized run leaves a chain that verifies and a
//! line for every state change; every edit someone with the file could make (any field of an
//! audit line, a deleted line, a balance column, a journal entry) makes `remit check` exit 1 and
//! name what is wrong. Also `GET /admin/integrity` and `GET /audit`.

use crate::support::app::*;
use crate::support::process::*;
use crate::support::TEST_KEY;
use rusqlite::Connection;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// A busy randomized run, made once and copied by every test that tampers with it.

const PHONES: &[&str] = &[
    RECIPIENT_PHONE,
    "0722000101",
    "+254 722 000 102",
    "254722000103",
];
const CATEGORIES: &[&str] = &["rent", "food", "water", "school_fees", "electricity"];

struct Golden {
    /// The database file after the run and a clean shutdown.
    db: Vec<u8>,
    seed: u64,
}

static GOLDEN: OnceLock<Golden> = OnceLock::new();

struct Escrow {
    id: String,
    total: i64,
    deposited: i64,
    categories: Vec<String>,
}

/// One client of the busy run: its own escrows and requests, random steps.
fn busy_client(app: &TestApp, seed: u64, steps: usize, unexpected: &Mutex<Vec<String>>) {
    let mut rng = Rng::new(seed);
    let mut escrows: Vec<Escrow> = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    let note = |what: &str, r: &Resp, allowed: &[u16]| {
        if !allowed.contains(&r.status) {
            unexpected
                .lock()
                .unwrap()
                .push(format!("{what} -> {} {}", r.status, r.text));
        }
    };
    for step in 0..steps {
        let roll = rng.below(100);
        match roll {
            0..=14 => {
                let mut cats: Vec<String> = Vec::new();
                for _ in 0..=rng.below(3) {
                    let c = rng.pick(CATEGORIES).to_string();
                    if !cats.contains(&c) {
                        cats.push(c);
                    }
                }
                let total = 50 + rng.below(350) as i64;
                let mut body = json!({"recipientPhone": rng.pick(PHONES), "recipientName": "Wanjiru",
                                      "totalAmountUsd": total, "categories": cats});
                if rng.below(5) == 0 {
                    body["dailyLimitUsd"] = json!(total / 2);
                }
                let r = app.post("/escrows", &app.sender, &body);
                note("create escrow", &r, &[201]);
                if r.status == 201 {
                    escrows.push(Escrow {
                        id: r.body["escrowId"].as_str().unwrap().to_string(),
                        total: total * 100,
                        deposited: 0,
                        categories: cats,
                    });
                }
            }
            15..=29 => {
                let open: Vec<usize> = (0..escrows.len())
                    .filter(|&i| escrows[i].deposited < escrows[i].total)
                    .collect();
                if open.is_empty() {
                    continue;
                }
                let e = &mut escrows[*rng.pick(&open)];
                let rest = (e.total - e.deposited) / 100;
                let amount = if rest > 1 && rng.below(3) == 0 {
                    1 + rng.below(rest as u64 - 1) as i64
                } else {
                    rest
                };
                let r = app.post(
                    &format!("/escrows/{}/deposits", e.id),
                    &app.agent,
                    &json!({"amountUsd": amount, "reference": format!("cash-{seed}-{step}")}),
                );
                // 409: the escrow was cancelled meanwhile.
                note("deposit", &r, &[201, 409]);
                if r.status == 201 {
                    e.deposited += amount * 100;
                }
            }
            30..=54 => {
                let active: Vec<&Escrow> =
                    escrows.iter().filter(|e| e.deposited == e.total).collect();
                if active.is_empty() {
                    continue;
                }
                let e = *rng.pick(&active);
                let account = if rng.below(8) == 0 {
                    FAIL_ACCOUNT.to_string()
                } else {
                    format!("ACC{}", rng.below(1_000_000))
                };
                let r = app.post(
                    "/payment-requests",
                    &app.agent,
                    &json!({"escrowId": e.id, "category": rng.pick(&e.categories), "amountKes": 100 + rng.below(6_000),
                            "merchantName": "Kenya Power", "note": "monthly",
                            "merchantAccount": {"type": "paybill", "number": "888880", "accountReference": account}}),
                );
                // 409: the escrow was cancelled or completed meanwhile.
                note("create request", &r, &[201, 409]);
                if r.status == 201 {
                    pending.push(r.body["paymentRequestId"].as_str().unwrap().to_string());
                }
            }
            55..=79 => {
                if pending.is_empty() {
                    continue;
                }
                let id = pending.swap_remove(rng.below(pending.len() as u64) as usize);
                let (what, r) = match rng.below(10) {
                    0..=6 => (
                        "approve",
                        app.post(
                            &format!("/payment-requests/{id}/approve"),
                            &app.sender,
                            &json!({}),
                        ),
                    ),
                    7..=8 => (
                        "reject",
                        app.post(
                            &format!("/payment-requests/{id}/reject"),
                            &app.sender,
                            &json!({"reason": "not this month"}),
                        ),
                    ),
                    _ => (
                        "cancel request",
                        app.post(
                            &format!("/payment-requests/{id}/cancel"),
                            &app.agent,
                            &json!({}),
                        ),
                    ),
                };
                // 409: balance, daily limit, or the escrow was cancelled meanwhile.
                note(what, &r, &[200, 409]);
            }
            80..=83 => {
                if escrows.is_empty() {
                    continue;
                }
                let i = rng.below(escrows.len() as u64) as usize;
                let r = app.post(
                    &format!("/escrows/{}/cancel", escrows[i].id),
                    &app.sender,
                    &json!({}),
                );
                // 409: a payout is in flight, or it is already over.
                note("cancel escrow", &r, &[200, 409]);
                if r.status == 200 {
                    escrows.swap_remove(i);
                }
            }
            84..=88 => {
                // Two decimals exactly (an f64 sum would carry float noise into the JSON).
                let cents = 14_000 + rng.below(2_000);
                let rate: Value =
                    serde_json::from_str(&format!("{}.{:02}", cents / 100, cents % 100)).unwrap();
                let r = app.raw(
                    "PUT",
                    "/fx-rates/USD-KES",
                    Some(&app.admin),
                    Some((
                        "application/json",
                        json!({"rate": rate}).to_string().as_bytes(),
                    )),
                    &[],
                );
                note("set rate", &r, &[200]);
            }
            89..=93 => {
                let role = *rng.pick(&["sender", "agent", "admin"]);
                let r = app.post(
                    "/users",
                    &app.admin,
                    &json!({"role": role, "name": format!("User {seed}-{step}")}),
                );
                note("create user", &r, &[201]);
                if r.status != 201 {
                    continue;
                }
                let user_id = r.body["user"]["userId"].as_str().unwrap().to_string();
                let r = app.post(&format!("/users/{user_id}/tokens"), &app.admin, &json!({}));
                note("issue token", &r, &[201]);
                if r.status == 201 && rng.below(2) == 0 {
                    let token = r.body["token"].as_str().unwrap();
                    let r = app.raw(
                        "DELETE",
                        &format!("/tokens/{}", &token[..12]),
                        Some(&app.admin),
                        None,
                        &[],
                    );
                    note("revoke token", &r, &[200]);
                }
            }
            _ => {
                // The check runs while others write, on one consistent snapshot.
                let r = app.get("/admin/integrity", &app.admin);
                note("integrity", &r, &[200]);
                if r.body["ok"] != json!(true) {
                    unexpected
                        .lock()
                        .unwrap()
                        .push(format!("integrity during the run: {}", r.text));
                }
            }
        }
    }
}

fn make_golden() -> Golden {
    let seed = std::env::var("REMIT_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("busy run seed {seed} (set REMIT_TEST_SEED to repeat it)");
    let app = spawn_app();
    let unexpected = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let (app, unexpected) = (&app, &unexpected);
            s.spawn(move || busy_client(app, seed.wrapping_add(t * 7919), 100, unexpected));
        }
    });
    let unexpected = unexpected.into_inner().unwrap();
    assert!(
        unexpected.is_empty(),
        "seed {seed}: unexpected answers:\n{}",
        unexpected.join("\n")
    );
    // At least one approval under a daily limit, whatever the run drew (the tests of a day's
    // approvals tamper with one; a fifth of the run's escrows have a limit, and one run of CI
    // drew none approved).
    let limited = app.active_escrow_limited(100, &["rent"], Some(50));
    let request = app.request(&limited, "rent", 1_500, "DAILY-1");
    let r = app.approve(&request);
    assert_eq!(r.status, 200, "{}", r.text);
    // And one payout that fails, whatever the run drew (the test of a failed request set back
    // to approved tampers with one; an eighth of the run's requests fail, and one run of CI
    // had none approved).
    let failing = app.request(&limited, "rent", 1_500, FAIL_ACCOUNT);
    let r = app.approve(&failing);
    assert_eq!(r.status, 200, "{}", r.text);
    // And the rest the audit test counts on, whatever the run drew: a rejection, a rate set,
    // five approvals that pay out (it counts at least five approvals and three payouts).
    let rejected = app.request(&limited, "rent", 1_000, "REJECT-1");
    let r = app.post(
        &format!("/payment-requests/{rejected}/reject"),
        &app.sender,
        &json!({"reason": "not this month"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app.raw(
        "PUT",
        "/fx-rates/USD-KES",
        Some(&app.admin),
        Some(("application/json", br#"{"rate": 150.25}"#)),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let paying = app.active_escrow(300, &["school"]);
    for n in 0..5 {
        let request = app.request(&paying, "school", 1_000, &format!("PAID-{n}"));
        let r = app.approve(&request);
        assert_eq!(r.status, 200, "{}", r.text);
    }
    // Let every payout settle, so the file is at rest.
    let in_flight: Vec<String> = app
        .store
        .read(|c, _| {
            Ok(
                c.prepare("SELECT id FROM payment_requests WHERE status = 'approved'")?
                    .query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?,
            )
        })
        .unwrap();
    for id in in_flight {
        app.wait_for_status(&id, &["paid", "failed"]);
    }
    let dir = stop_app(app);
    let db = std::fs::read(dir.path().join("remit.db")).unwrap();
    Golden { db, seed }
}

/// A fresh copy of the busy run's database in its own directory.
fn golden_copy() -> (tempfile::TempDir, PathBuf, u64) {
    let golden = GOLDEN.get_or_init(make_golden);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    std::fs::write(&db, &golden.db).unwrap();
    (dir, db, golden.seed)
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Applies `tamper` to a fresh copy of the busy run's database, then runs `remit check`.
fn check_after(tamper: impl FnOnce(&Connection)) -> Ran {
    let (_dir, db, _) = golden_copy();
    {
        let conn = Connection::open(&db).unwrap();
        tamper(&conn);
    }
    check(&db, TEST_KEY)
}

fn assert_mismatch(what: &str, ran: &Ran, needles: &[&str]) {
    assert_eq!(ran.code, Some(1), "{what}: remit check must exit 1: {ran}");
    let named = ran
        .stdout
        .lines()
        .any(|l| l.starts_with("MISMATCH ") && needles.iter().all(|n| l.contains(n)));
    assert!(named, "{what}: no MISMATCH line naming {needles:?}: {ran}");
}

/// The lines `remit check` prints for a report, as `print_report` writes them.
fn printed(report: &remit::integrity::Report) -> Vec<String> {
    let mut lines = report.checks.clone();
    lines.extend(report.mismatches.iter().map(|m| format!("MISMATCH {m}")));
    lines
}

/// A line in the middle of the chain: (seq, action, entity).
fn middle_line(conn: &Connection) -> (i64, String, String) {
    conn.query_row(
        "SELECT seq, action, entity FROM audit_log ORDER BY seq
         LIMIT 1 OFFSET (SELECT COUNT(*) / 2 FROM audit_log)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[test]
fn the_audit_chain_verifies_after_a_busy_randomized_run() {
    let (_dir, db, seed) = golden_copy();
    let lines = count(&read_only(&db), "SELECT COUNT(*) FROM audit_log");
    assert!(
        lines > 100,
        "seed {seed}: the run was not busy: {lines} lines"
    );

    let ran = check(&db, TEST_KEY);

    assert_eq!(ran.code, Some(0), "seed {seed}: {ran}");
    assert!(
        ran.stdout.contains(&format!(
            "the audit chain verifies from the first line to the last ({lines} lines): ok"
        )),
        "{ran}"
    );
    assert!(ran.stdout.contains("ok: the ledger holds"), "{ran}");
    assert!(!ran.stdout.contains("MISMATCH"), "{ran}");
}

#[test]
fn every_state_change_of_the_busy_run_left_exactly_one_audit_line_without_pii() {
    let (_dir, db, seed) = golden_copy();
    let conn = read_only(&db);
    let lines = |action: &str| {
        conn.query_row(
            "SELECT COUNT(*) FROM audit_log WHERE action = ?1",
            [action],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
    };
    // (action, how many state changes of that kind the tables show)
    let expected = [
        ("user.created", "SELECT COUNT(*) FROM users"),
        ("escrow.created", "SELECT COUNT(*) FROM escrows"),
        (
            "escrow.deposited",
            "SELECT COUNT(*) FROM deposits WHERE status = 'applied'",
        ),
        (
            "escrow.activated",
            "SELECT COUNT(*) FROM ledger_transactions WHERE kind = 'activation'",
        ),
        (
            "escrow.cancelled",
            "SELECT COUNT(*) FROM escrows WHERE status = 'cancelled'",
        ),
        (
            "escrow.completed",
            "SELECT COUNT(*) FROM escrows WHERE status = 'completed'",
        ),
        (
            "payment_request.created",
            "SELECT COUNT(*) FROM payment_requests",
        ),
        (
            "payment_request.approved",
            "SELECT COUNT(*) FROM ledger_transactions WHERE kind = 'approval'",
        ),
        (
            "payment_request.rejected",
            "SELECT COUNT(*) FROM payment_requests WHERE status = 'rejected'",
        ),
        (
            "payment_request.cancelled",
            "SELECT COUNT(*) FROM payment_requests WHERE status = 'cancelled'",
        ),
        (
            "payout.succeeded",
            "SELECT COUNT(*) FROM payouts WHERE status = 'succeeded'",
        ),
        (
            "payout.failed",
            "SELECT COUNT(*) FROM payouts WHERE status = 'failed'",
        ),
        (
            "token.revoked",
            "SELECT COUNT(*) FROM api_tokens WHERE revoked_at IS NOT NULL",
        ),
        ("token.issued", "SELECT COUNT(*) FROM api_tokens"),
    ];
    let mut wrong = Vec::new();
    for (action, sql) in expected {
        let (have, want) = (lines(action), count(&conn, sql));
        if have != want {
            wrong.push(format!("{action}: {have} audit lines for {want} changes"));
        }
    }
    assert!(wrong.is_empty(), "seed {seed}:\n{}", wrong.join("\n"));
    for (action, at_least) in [
        ("payment_request.approved", 5),
        ("payout.succeeded", 3),
        ("payment_request.rejected", 1),
        ("fx.rate_set", 1),
    ] {
        assert!(
            lines(action) >= at_least,
            "seed {seed}: the run did too little of {action}"
        );
    }
    // Details, actors and entities hold no PII: no phone in any spelling, no name, no merchant.
    let text: String = conn
        .prepare("SELECT actor || ' ' || action || ' ' || entity || ' ' || details FROM audit_log")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect::<Vec<_>>()
        .join("\n");
    for needle in [
        "712345678",
        "722000101",
        "722000102",
        "722000103",
        "Wanjiru",
        "Amina",
        "Kenya Power",
        "monthly",
        "not this month",
    ] {
        assert!(
            !text.contains(needle),
            "seed {seed}: {needle} is in the audit log: {}",
            text.lines()
                .filter(|l| l.contains(needle))
                .take(3)
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    // The run's merchant accounts are `ACC` and digits: as a word of their own, not inside
    // another value's random capitals (a simulated M-Pesa receipt, `SIM` and seven of them,
    // may spell `SIMQACC1X4`).
    let accounts: Vec<&str> = text
        .lines()
        .filter(|line| {
            line.match_indices("ACC").any(|(at, _)| {
                let before = line[..at].chars().next_back();
                let after = line[at + 3..].chars().next();
                !before.is_some_and(|c| c.is_ascii_alphanumeric())
                    && after.is_some_and(|c| c.is_ascii_digit())
            })
        })
        .take(3)
        .collect();
    assert!(
        accounts.is_empty(),
        "seed {seed}: a merchant account is in the audit log: {}",
        accounts.join(" | ")
    );
    // Tokens appear only by their public prefix, never whole.
    for (at, _) in text.match_indices("rmt_") {
        let token: String = text[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        assert!(
            token.len() <= remit::service::users::TOKEN_PREFIX_CHARS,
            "seed {seed}: a whole token is in the audit log: {token}"
        );
    }
}

#[test]
fn editing_any_field_of_an_audit_line_makes_check_exit_1_and_name_the_line() {
    // Someone with the file drops the trigger that guards the table, as they could.
    let edits: &[(&str, &str, &str)] = &[
        ("actor", "actor = 'usr_forged'", "was altered"),
        ("action", "action = action || '_x'", "was altered"),
        ("entity", "entity = 'esc_forged'", "was altered"),
        ("details", "details = '{\"forged\":true}'", "was altered"),
        // Not JSON: the checks that read a line's details read nothing there, and go on.
        ("details", "details = 'not json'", "was altered"),
        ("at", "at = '2001-01-01T00:00:00Z'", "was altered"),
        ("prev_mac", "prev_mac = randomblob(32)", "does not chain"),
        ("mac", "mac = randomblob(32)", "was altered"),
    ];
    for (field, set, complaint) in edits {
        for position in ["first", "middle", "last"] {
            let mut seq = 0;
            let ran = check_after(|conn| {
                conn.execute_batch("DROP TRIGGER audit_log_append_only_update")
                    .unwrap();
                seq = match position {
                    "first" => 1,
                    "middle" => middle_line(conn).0,
                    _ => count(conn, "SELECT MAX(seq) FROM audit_log"),
                };
                let changed = conn
                    .execute(&format!("UPDATE audit_log SET {set} WHERE seq = ?1"), [seq])
                    .unwrap();
                assert_eq!(changed, 1);
            });
            assert_mismatch(
                &format!("{field} of the {position} line"),
                &ran,
                &["audit chain", &format!("audit line {seq} "), complaint],
            );
        }
    }
}

/// A guard of the journal or the audit log dropped, or replaced by a trigger of the same name
/// that lets changes through, is a mismatch of its own, whether or not a row was changed yet.
#[test]
fn a_dropped_or_emptied_append_only_trigger_is_caught() {
    let ran = check_after(|conn| {
        conn.execute_batch("DROP TRIGGER ledger_entries_append_only_delete")
            .unwrap();
    });
    assert_mismatch(
        "dropped",
        &ran,
        &[
            "append-only guards",
            "table ledger_entries: its trigger ledger_entries_append_only_delete is missing",
        ],
    );
    let ran = check_after(|conn| {
        conn.execute_batch(
            "DROP TRIGGER audit_log_append_only_update;
             CREATE TRIGGER audit_log_append_only_update BEFORE UPDATE ON audit_log BEGIN SELECT 1; END;",
        )
        .unwrap();
    });
    assert_mismatch(
        "emptied",
        &ran,
        &["table audit_log: its trigger audit_log_append_only_update is not the one remit made"],
    );
    // Nothing else is said wrong: the rows are as they were.
    assert_eq!(
        ran.stdout
            .lines()
            .filter(|l| l.starts_with("MISMATCH "))
            .count(),
        1,
        "{ran}"
    );
}

#[test]
fn moving_an_audit_line_to_another_sequence_number_is_caught() {
    let mut seq = 0;
    let ran = check_after(|conn| {
        conn.execute_batch("DROP TRIGGER audit_log_append_only_update")
            .unwrap();
        seq = middle_line(conn).0;
        conn.execute(
            "UPDATE audit_log SET seq = (SELECT MAX(seq) + 1 FROM audit_log) WHERE seq = ?1",
            [seq],
        )
        .unwrap();
    });
    assert_mismatch("seq", &ran, &[&format!("audit line {seq} is missing")]);
}

#[test]
fn deleting_an_audit_line_makes_check_exit_1_and_name_the_gap() {
    for position in ["first", "middle"] {
        let mut seq = 0;
        let ran = check_after(|conn| {
            conn.execute_batch("DROP TRIGGER audit_log_append_only_delete")
                .unwrap();
            seq = match position {
                "first" => 1,
                _ => middle_line(conn).0,
            };
            assert_eq!(
                conn.execute("DELETE FROM audit_log WHERE seq = ?1", [seq])
                    .unwrap(),
                1
            );
        });
        assert_mismatch(
            &format!("deleting the {position} line"),
            &ran,
            &[&format!("audit line {seq} is missing")],
        );
    }
}

#[test]
fn deleting_the_newest_audit_lines_makes_check_exit_1() {
    // Regression: a chain alone cannot show that its tail was cut off (the newest lines are
    // the ones a forger wants gone), so the head of the chain is kept under the audit key.
    let cases: &[(&str, &str, &str)] = &[
        (
            "the last line",
            "DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)",
            "lines were deleted",
        ),
        (
            "the last 3 lines",
            "DELETE FROM audit_log WHERE seq > (SELECT MAX(seq) FROM audit_log) - 3",
            "lines were deleted",
        ),
        (
            "every line",
            "DELETE FROM audit_log",
            "the log ends at line 0 but line",
        ),
        (
            "the last line and the record of it",
            "DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log);
             DELETE FROM meta WHERE key = 'audit_head'",
            "the record of its last line is missing",
        ),
        (
            "the last line, its record made to name the line before",
            "DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log);
             UPDATE meta SET value = (SELECT MAX(seq) FROM audit_log) || substr(value, instr(value, '.'))
             WHERE key = 'audit_head'",
            "does not verify",
        ),
    ];
    for (what, sql, complaint) in cases {
        let ran = check_after(|conn| {
            conn.execute_batch("DROP TRIGGER audit_log_append_only_delete")
                .unwrap();
            conn.execute_batch(sql).unwrap();
        });
        assert_mismatch(
            &format!("deleting {what}"),
            &ran,
            &["audit chain", complaint],
        );
    }
}

/// Guards against: the record of the log's newest line, kept from an earlier moment (an older
/// backup, or the file read then: no key is needed to copy it), put back after the lines written
/// since were cut off, verified; `remit check` said "ok" of a ledger whose newest payments had
/// no audit line. The record names the journal as it ended, which has grown since.
#[test]
fn an_older_record_of_the_newest_line_put_back_after_cutting_the_log_makes_check_exit_1() {
    let app = spawn_app();
    let escrow = app.active_escrow(100, &["a"]);
    let read_head = |app: &TestApp| -> (i64, String) {
        app.store
            .read(|c, _| {
                Ok(c.query_row(
                    "SELECT (SELECT MAX(seq) FROM audit_log), value FROM meta WHERE key = 'audit_head'",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?)
            })
            .unwrap()
    };
    let (seq, head) = read_head(&app);
    // Later: a payment asked for and approved, its money reserved in the journal.
    let request = app.request(&escrow, "a", 1_500, "ACC-1");
    assert_eq!(app.approve(&request).status, 200);
    assert!(read_head(&app).0 > seq);
    let dir = stop_app(app);
    let db = dir.path().join("remit.db");
    assert_eq!(check(&db, TEST_KEY).code, Some(0));
    {
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch("DROP TRIGGER audit_log_append_only_delete")
            .unwrap();
        conn.execute("DELETE FROM audit_log WHERE seq > ?1", [seq])
            .unwrap();
        conn.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'audit_head'",
            [&head],
        )
        .unwrap();
    }
    assert_mismatch(
        "an older record put back",
        &check(&db, TEST_KEY),
        &[
            "audit chain",
            "lines written since may have been deleted and an older record put back",
        ],
    );
}

#[test]
fn editing_balance_columns_directly_makes_check_exit_1_and_name_the_escrow() {
    // Edits the CHECK constraints allow: cents moved between columns keep every row's sums.
    let escrow_of = |conn: &Connection| -> (String, String) {
        conn.query_row(
            "SELECT c.escrow_id, c.id FROM spending_categories c JOIN escrows e ON e.id = c.escrow_id
             WHERE e.status = 'active' AND c.remaining_usd_cents > 0 ORDER BY c.id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("the busy run left an active escrow with money in a category")
    };
    // 1. The escrow row alone: its columns disagree with the journal and its categories.
    let mut ids = (String::new(), String::new());
    let ran = check_after(|conn| {
        ids = escrow_of(conn);
        conn.execute(
            "UPDATE escrows SET remaining_usd_cents = remaining_usd_cents - 1,
             refunded_usd_cents = refunded_usd_cents + 1 WHERE id = ?1",
            [&ids.0],
        )
        .unwrap();
    });
    assert_mismatch(
        "escrow remaining -> refunded",
        &ran,
        &["escrow balances equal their journal accounts", &ids.0],
    );
    // 2. A category and its escrow together: every sum holds, only the journal fold disagrees.
    let ran = check_after(|conn| {
        ids = escrow_of(conn);
        conn.execute(
            "UPDATE spending_categories SET remaining_usd_cents = remaining_usd_cents - 1,
             refunded_usd_cents = refunded_usd_cents + 1 WHERE id = ?1",
            [&ids.1],
        )
        .unwrap();
        conn.execute(
            "UPDATE escrows SET remaining_usd_cents = remaining_usd_cents - 1,
             refunded_usd_cents = refunded_usd_cents + 1 WHERE id = ?1",
            [&ids.0],
        )
        .unwrap();
    });
    assert_mismatch(
        "category and escrow together",
        &ran,
        &["category balances equal their journal accounts", &ids.1],
    );
    assert_mismatch(
        "category and escrow together",
        &ran,
        &["escrow balances equal their journal accounts", &ids.0],
    );
    // 3. Spent money made remaining again (category and escrow): what a thief would want.
    let ran = check_after(|conn| {
        let (escrow, category): (String, String) = conn
            .query_row(
                "SELECT escrow_id, id FROM spending_categories WHERE spent_usd_cents > 0 ORDER BY id LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("the busy run paid something");
        for table_id in [("spending_categories", &category), ("escrows", &escrow)] {
            conn.execute(
                &format!(
                    "UPDATE {} SET spent_usd_cents = spent_usd_cents - 1,
                     remaining_usd_cents = remaining_usd_cents + 1 WHERE id = ?1",
                    table_id.0
                ),
                [table_id.1],
            )
            .unwrap();
        }
        ids = (escrow, category);
    });
    assert_mismatch(
        "spent -> remaining",
        &ran,
        &["category balances equal their journal accounts", &ids.1],
    );
}

#[test]
fn an_escrows_journal_chain_edited_makes_check_exit_1_and_name_the_link_and_the_escrow() {
    // A transaction that follows another of its escrow forgets it (the escrow's history before
    // it would vanish from its journal), and the escrow forgets its newest transaction.
    let mut ids = (0i64, String::new());
    let ran = check_after(|conn| {
        ids = conn
            .query_row(
                "SELECT id, escrow_id FROM ledger_transactions WHERE prev_id IS NOT NULL
                 ORDER BY id LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("the busy run chained a second transaction onto an escrow");
        conn.execute_batch("DROP TRIGGER ledger_transactions_append_only_update")
            .unwrap();
        conn.execute(
            "UPDATE ledger_transactions SET prev_id = NULL WHERE id = ?1",
            [ids.0],
        )
        .unwrap();
        conn.execute(
            "UPDATE escrows SET last_transaction_id = NULL WHERE id = ?1",
            [&ids.1],
        )
        .unwrap();
    });
    assert_mismatch(
        "a link cut",
        &ran,
        &[
            "every journal transaction follows its escrow's one before it",
            &format!("journal transaction {}: follows nothing", ids.0),
        ],
    );
    assert_mismatch(
        "the newest forgotten",
        &ran,
        &[
            "every escrow names its newest journal transaction",
            &format!("escrow {}: names none", ids.1),
        ],
    );
}

#[test]
fn payouts_and_deposits_edited_to_disagree_with_the_ledger_are_named() {
    let paid_payout = |conn: &Connection| -> (String, String, String) {
        conn.query_row(
            "SELECT id, payment_request_id, escrow_id FROM payouts WHERE status = 'succeeded'
             ORDER BY id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("the busy run paid something")
    };
    // 1. A paid payout made a cent larger: every balance still agrees with the journal.
    let mut ids = (String::new(), String::new(), String::new());
    let ran = check_after(|conn| {
        ids = paid_payout(conn);
        conn.execute(
            "UPDATE payouts SET amount_usd_cents = amount_usd_cents + 1 WHERE id = ?1",
            [&ids.0],
        )
        .unwrap();
    });
    assert_mismatch(
        "payout amount",
        &ran,
        &[
            "every payout pays what its approved request asked",
            &ids.0,
            &ids.1,
        ],
    );
    assert_mismatch(
        "payout amount",
        &ran,
        &["what each escrow spent is its succeeded payouts", &ids.2],
    );
    // 2. A payment hidden: the payout and its request told as failed, the money left spent.
    let ran = check_after(|conn| {
        ids = paid_payout(conn);
        conn.execute(
            "UPDATE payouts SET status = 'failed', receipt = NULL WHERE id = ?1",
            [&ids.0],
        )
        .unwrap();
        conn.execute(
            "UPDATE payment_requests SET status = 'failed' WHERE id = ?1",
            [&ids.1],
        )
        .unwrap();
    });
    assert_mismatch(
        "payout and request made failed",
        &ran,
        &["what each escrow spent is its succeeded payouts", &ids.2],
    );
    // 3. A deposit moved to another escrow: both escrows' deposits disagree with them.
    let mut escrows = (String::new(), String::new());
    let ran = check_after(|conn| {
        let (deposit, from): (String, String) = conn
            .query_row(
                "SELECT id, escrow_id FROM deposits WHERE status = 'applied' ORDER BY id LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("the busy run deposited");
        let to: String = conn
            .query_row(
                "SELECT id FROM escrows WHERE id <> ?1 ORDER BY id LIMIT 1",
                [&from],
                |r| r.get(0),
            )
            .unwrap();
        conn.execute(
            "UPDATE deposits SET escrow_id = ?2 WHERE id = ?1",
            [&deposit, &to],
        )
        .unwrap();
        escrows = (from, to);
    });
    for escrow in [&escrows.0, &escrows.1] {
        assert_mismatch(
            "deposit moved",
            &ran,
            &[
                "what each escrow was deposited is its applied deposits",
                escrow,
            ],
        );
    }
}

/// Guards against: the tables were held to each other only, so an edit that changed them all
/// together passed the check. A paid payout made USD 1.00 smaller in its payout, its request,
/// its journal (rows replaced: SQLite fires no delete guard for a REPLACE), its category's and
/// its escrow's balances gave the escrow a dollar to spend again; a recipient made an admin, a
/// revoked token opened again and an escrow given to another recipient passed as well. Each
/// row is held to the keyed audit line that made it.
#[test]
fn rows_changed_together_are_held_to_their_audit_lines() {
    // 1. The whole payout rewritten, every table agreeing with every other.
    let mut payout = String::new();
    let ran = check_after(|conn| {
        let (id, request, escrow, category): (String, String, String, String) = conn
            .query_row(
                "SELECT p.id, p.payment_request_id, p.escrow_id, r.category_id FROM payouts p
                 JOIN payment_requests r ON r.id = p.payment_request_id
                 WHERE p.status = 'succeeded'
                   AND NOT EXISTS (SELECT 1 FROM daily_spend d WHERE d.escrow_id = p.escrow_id)
                   AND p.amount_usd_cents > 100
                 ORDER BY p.id LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .expect("the busy run paid from an escrow without a daily limit");
        conn.execute_batch(&format!(
            "UPDATE payouts SET amount_usd_cents = amount_usd_cents - 100 WHERE id = '{id}';
             UPDATE payment_requests SET amount_usd_cents = amount_usd_cents - 100 WHERE id = '{request}';
             UPDATE spending_categories SET spent_usd_cents = spent_usd_cents - 100,
                 remaining_usd_cents = remaining_usd_cents + 100 WHERE id = '{category}';
             UPDATE escrows SET spent_usd_cents = spent_usd_cents - 100,
                 remaining_usd_cents = remaining_usd_cents + 100 WHERE id = '{escrow}';
             INSERT OR REPLACE INTO ledger_entries (id, transaction_id, escrow_id, category_id, account, amount_usd_cents)
                 SELECT e.id, e.transaction_id, e.escrow_id, e.category_id, e.account,
                     e.amount_usd_cents + CASE WHEN e.amount_usd_cents > 0 THEN -100 ELSE 100 END
                 FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id
                 WHERE t.reference IN ('{request}', '{id}');"
        ))
        .unwrap();
        payout = id;
    });
    assert_mismatch(
        "a payout rewritten in every table",
        &ran,
        &[
            "every payout is the one its approval's audit line made",
            &payout,
            "approved",
        ],
    );
    // 2. A recipient made an admin.
    let mut user = String::new();
    let ran = check_after(|conn| {
        user = conn
            .query_row(
                "SELECT id FROM users WHERE role = 'recipient' ORDER BY id LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        conn.execute("UPDATE users SET role = 'admin' WHERE id = ?1", [&user])
            .unwrap();
    });
    assert_mismatch(
        "a recipient made an admin",
        &ran,
        &[
            "every user is as the audit line that made it",
            &user,
            "made it recipient",
        ],
    );
    // 3. A user and a token added without a command.
    let ran = check_after(|conn| {
        conn.execute_batch(
            "INSERT INTO users (id, role, name_enc, created_at) VALUES ('usr_01jd8x2m4k7q9p3r5t6v8w0y2z', 'admin', 'x', '2026-12-06T00:00:00Z');
             INSERT INTO api_tokens (token_hash, prefix, user_id, created_at)
                 VALUES (zeroblob(32), 'rmt_forged00', 'usr_01jd8x2m4k7q9p3r5t6v8w0y2z', '2026-12-06T00:00:00Z');",
        )
        .unwrap();
    });
    assert_mismatch(
        "a user added",
        &ran,
        &["usr_01jd8x2m4k7q9p3r5t6v8w0y2z", "no audit line made it"],
    );
    assert_mismatch(
        "a token added",
        &ran,
        &["rmt_forged00", "no audit line issued it"],
    );
    // 4. A token an admin revoked, opened again.
    let (dir, db, _) = golden_copy();
    let prefix: String = Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT prefix FROM api_tokens WHERE revoked_at IS NULL ORDER BY prefix LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let mut revoke = remit(dir.path(), Some(TEST_KEY));
    revoke.args(["token", "revoke", &prefix, "--db"]).arg(&db);
    let revoked = run(revoke);
    assert_eq!(revoked.code, Some(0), "{revoked}");
    Connection::open(&db)
        .unwrap()
        .execute(
            "UPDATE api_tokens SET revoked_at = NULL WHERE prefix = ?1",
            [&prefix],
        )
        .unwrap();
    assert_mismatch(
        "a revoked token opened again",
        &check(&db, TEST_KEY),
        &[&prefix, "opens again"],
    );
    // 5. An escrow given to another recipient.
    let mut escrow = String::new();
    let ran = check_after(|conn| {
        escrow = conn
            .query_row("SELECT id FROM escrows ORDER BY id LIMIT 1", [], |r| {
                r.get(0)
            })
            .unwrap();
        conn.execute(
            "UPDATE escrows SET recipient_id = (SELECT id FROM users WHERE role = 'agent' LIMIT 1) WHERE id = ?1",
            [&escrow],
        )
        .unwrap();
    });
    assert_mismatch(
        "an escrow given to another recipient",
        &ran,
        &[
            "every escrow is for the sender, total, recipient and daily limit its audit line made it for",
            &escrow,
        ],
    );
    // 7. A rejected request told cancelled, and one set back to wait (to be approved again).
    for (status, says) in [
        ("cancelled", "is cancelled but no audit line says so"),
        ("pending_approval", "says it was rejected"),
    ] {
        let mut request = String::new();
        let ran = check_after(|conn| {
            request = conn
                .query_row(
                    "SELECT id FROM payment_requests WHERE status = 'rejected' ORDER BY id LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .expect("the busy run rejected a request");
            conn.execute(
                "UPDATE payment_requests SET status = ?2,
                     decided_by = CASE WHEN ?2 = 'pending_approval' THEN NULL ELSE decided_by END,
                     decided_at = CASE WHEN ?2 = 'pending_approval' THEN NULL ELSE decided_at END
                 WHERE id = ?1",
                [&request, status],
            )
            .unwrap();
        });
        assert_mismatch(
            status,
            &ran,
            &[
                "every decided request's state is its audit line's",
                &request,
                says,
            ],
        );
    }
    // 6. A deposit gone: the audit line that recorded it names it.
    let mut deposit = String::new();
    let ran = check_after(|conn| {
        deposit = conn
            .query_row(
                "SELECT id FROM deposits WHERE status = 'applied' ORDER BY id LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        conn.execute("DELETE FROM deposits WHERE id = ?1", [&deposit])
            .unwrap();
    });
    assert_mismatch(
        "a deposit deleted",
        &ran,
        &[
            "every deposit and payout the audit log records is there",
            &deposit,
            "not applied there",
        ],
    );
    // 8. The exchange rate halved in the file: twice the dollars for the same shillings.
    let ran = check_after(|conn| {
        conn.execute(
            "UPDATE fx_rates SET rate_kes_per_usd_e4 = rate_kes_per_usd_e4 / 2",
            [],
        )
        .unwrap();
    });
    assert_mismatch(
        "the rate halved",
        &ran,
        &[
            "the exchange rate is the one its newest audit line set",
            "exchange rate USD-KES",
            "but audit line",
        ],
    );
    // 9. A token's hash replaced by that of a token the editor knows: their token opened the
    // account (an admin's, a sender's) and nothing else told.
    let mut prefix = String::new();
    let ran = check_after(|conn| {
        prefix = conn
            .query_row(
                "SELECT prefix FROM api_tokens WHERE revoked_at IS NULL ORDER BY prefix LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let known = remit::crypto::sha256(b"rmt_a_token_the_editor_knows");
        conn.execute(
            "UPDATE api_tokens SET token_hash = ?2 WHERE prefix = ?1",
            rusqlite::params![prefix, known.as_slice()],
        )
        .unwrap();
    });
    assert_mismatch(
        "a token's hash replaced",
        &ran,
        &[
            "every token is as the audit line that issued it",
            &prefix,
            "its hash was replaced",
        ],
    );
    // 10. An escrow given to another sender (who then sees it and approves its requests).
    let mut escrow = String::new();
    let ran = check_after(|conn| {
        escrow = conn
            .query_row(
                "SELECT e.id FROM escrows e WHERE EXISTS (SELECT 1 FROM payment_requests r
                     WHERE r.escrow_id = e.id AND r.status IN ('approved', 'paid', 'failed'))
                 ORDER BY e.id LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        conn.execute(
            "UPDATE escrows SET sender_id = (SELECT id FROM users WHERE role = 'sender'
                 AND id <> escrows.sender_id ORDER BY id LIMIT 1) WHERE id = ?1",
            [&escrow],
        )
        .unwrap();
    });
    assert_mismatch(
        "an escrow given to another sender",
        &ran,
        &[
            "every escrow is for the sender, total, recipient and daily limit",
            &escrow,
            "but audit line",
        ],
    );
    assert_mismatch(
        "its requests approved by a sender not its own",
        &ran,
        &[
            "every payment request is as its audit line made it",
            "neither the sender of escrow",
            &escrow,
        ],
    );
    // 11. An escrow's daily limit taken away, its days' records with it.
    let mut escrow = String::new();
    let ran = check_after(|conn| {
        escrow = conn
            .query_row(
                "SELECT id FROM escrows WHERE daily_limit_usd_cents IS NOT NULL ORDER BY id LIMIT 1",
                [],
                |r| r.get(0),
            )
            .expect("the busy run made an escrow with a daily limit");
        conn.execute_batch(&format!(
            "UPDATE escrows SET daily_limit_usd_cents = NULL WHERE id = '{escrow}';
             DELETE FROM daily_spend WHERE escrow_id = '{escrow}';
             UPDATE payment_requests SET approved_day = NULL WHERE escrow_id = '{escrow}';"
        ))
        .unwrap();
    });
    assert_mismatch(
        "a daily limit taken away",
        &ran,
        &[
            &escrow,
            "without a daily limit, but audit line",
            "US cents a day",
        ],
    );
    // 12. Two hundred times the shillings paid out, the payout and its request agreeing (the
    // dollars, the journal and the balances untouched).
    let mut request = String::new();
    let ran = check_after(|conn| {
        request = conn
            .query_row(
                "SELECT payment_request_id FROM payouts ORDER BY id LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        conn.execute_batch(&format!(
            "UPDATE payouts SET amount_kes_cents = amount_kes_cents * 200 WHERE payment_request_id = '{request}';
             UPDATE payment_requests SET amount_kes_cents = amount_kes_cents * 200 WHERE id = '{request}';"
        ))
        .unwrap();
    });
    assert_mismatch(
        "the shillings of a payout and its request raised",
        &ran,
        &[
            "every payment request is as its audit line made it",
            &request,
            "but audit line",
        ],
    );
    // 13. Two users' phone search indexes swapped: an escrow made to one's phone went to the
    // other, whose phone the sender never typed.
    let mut users = (String::new(), String::new());
    let ran = check_after(|conn| {
        let mut stmt = conn
            .prepare("SELECT id FROM users WHERE phone_index IS NOT NULL ORDER BY id LIMIT 2")
            .unwrap();
        let ids: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        conn.execute_batch(&format!(
            "CREATE TEMP TABLE kept AS SELECT id, phone_index FROM users WHERE id IN ('{a}', '{b}');
             UPDATE users SET phone_index = 'swapping ' || id WHERE id IN ('{a}', '{b}');
             UPDATE users SET phone_index = (SELECT phone_index FROM kept WHERE id = '{b}') WHERE id = '{a}';
             UPDATE users SET phone_index = (SELECT phone_index FROM kept WHERE id = '{a}') WHERE id = '{b}';",
            a = ids[0],
            b = ids[1]
        ))
        .unwrap();
        users = (ids[0].clone(), ids[1].clone());
    });
    for user in [&users.0, &users.1] {
        assert_mismatch(
            "phone indexes swapped",
            &ran,
            &["users.phone_index of", user, "is not its phone's"],
        );
    }
    // 14. A paybill's payout sent as a till's: another business of the same number paid.
    let mut payout = String::new();
    let ran = check_after(|conn| {
        payout = conn
            .query_row(
                "SELECT p.id FROM payouts p JOIN payment_requests r ON r.id = p.payment_request_id
                 WHERE r.merchant_type = 'paybill' ORDER BY p.id LIMIT 1",
                [],
                |r| r.get(0),
            )
            .expect("the busy run paid a paybill");
        conn.execute(
            "UPDATE payouts SET command = 'b2b_till' WHERE id = ?1",
            [&payout],
        )
        .unwrap();
    });
    assert_mismatch(
        "a payout's command changed",
        &ran,
        &[
            &payout,
            "is sent as b2b_till but its request",
            "pays a paybill",
        ],
    );
    // 15. A payout M-Pesa took set back to wait for sending: a second payment.
    let mut payout = String::new();
    let ran = check_after(|conn| {
        payout = conn
            .query_row(
                "SELECT id FROM payouts WHERE status = 'succeeded' ORDER BY id LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        conn.execute(
            "UPDATE payouts SET status = 'queued', conversation_id = NULL, receipt = NULL,
                 result_at = NULL, attempts = 0 WHERE id = ?1",
            [&payout],
        )
        .unwrap();
    });
    assert_mismatch(
        "a payout set back to queued",
        &ran,
        &[
            &payout,
            "waits to be sent but audit line",
            "says M-Pesa took it",
        ],
    );
    // 16. A day's approvals moved to the day before: a fresh limit for the day.
    let mut request = String::new();
    let ran = check_after(|conn| {
        request = conn
            .query_row(
                "SELECT id FROM payment_requests WHERE approved_day IS NOT NULL ORDER BY id LIMIT 1",
                [],
                |r| r.get(0),
            )
            .expect("the busy run approved under a daily limit");
        conn.execute_batch(&format!(
            "UPDATE daily_spend SET day = '2020-01-01' WHERE (escrow_id, day) =
                 (SELECT escrow_id, approved_day FROM payment_requests WHERE id = '{request}');
             UPDATE payment_requests SET approved_day = '2020-01-01' WHERE escrow_id =
                 (SELECT escrow_id FROM payment_requests WHERE id = '{request}') AND approved_day IS NOT NULL;"
        ))
        .unwrap();
    });
    assert_mismatch(
        "a day's approvals moved",
        &ran,
        &[&request, "counts against 2020-01-01 but audit line"],
    );
    // 17. Two escrows' deposit codes swapped: an agent's cash went to the other.
    let mut escrow = String::new();
    let ran = check_after(|conn| {
        let ids: Vec<String> = conn
            .prepare("SELECT id FROM escrows ORDER BY id LIMIT 2")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        conn.execute_batch(&format!(
            "CREATE TEMP TABLE codes AS SELECT id, short_ref FROM escrows WHERE id IN ('{a}', '{b}');
             UPDATE escrows SET short_ref = 'SWAPPING' WHERE id = '{a}';
             UPDATE escrows SET short_ref = (SELECT short_ref FROM codes WHERE id = '{a}') WHERE id = '{b}';
             UPDATE escrows SET short_ref = (SELECT short_ref FROM codes WHERE id = '{b}') WHERE id = '{a}';",
            a = ids[0],
            b = ids[1]
        ))
        .unwrap();
        escrow = ids[0].clone();
    });
    assert_mismatch(
        "deposit codes swapped",
        &ran,
        &[
            "every escrow is for the sender, total, recipient and daily limit",
            &escrow,
            "with the deposit code",
            "but audit line",
        ],
    );
    // 18. A dollar of one category's allocation moved to another of the same escrow.
    let mut category = String::new();
    let ran = check_after(|conn| {
        let (escrow, first): (String, String) = conn
            .query_row(
                "SELECT escrow_id, id FROM spending_categories WHERE position = 0 AND remaining_usd_cents > 100
                     AND escrow_id IN (SELECT escrow_id FROM spending_categories WHERE position = 1)
                 ORDER BY escrow_id LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("the busy run made an escrow of two categories");
        conn.execute_batch(&format!(
            "UPDATE spending_categories SET allocated_usd_cents = allocated_usd_cents - 100,
                 remaining_usd_cents = remaining_usd_cents - 100 WHERE id = '{first}';
             UPDATE spending_categories SET allocated_usd_cents = allocated_usd_cents + 100,
                 remaining_usd_cents = remaining_usd_cents + 100
                 WHERE escrow_id = '{escrow}' AND position = 1;"
        ))
        .unwrap();
        category = first;
    });
    assert_mismatch(
        "an allocation moved between categories",
        &ran,
        &[
            "every category is the name and the allocation its escrow's audit line made it with",
            &category,
        ],
    );
}

/// Guards against: a day's approvals lost (a row's key flipped on a stick, which SQLite's
/// integrity check does not see in a table without rowids, or the row deleted) passed the
/// check, and the restored ledger gave the sender a fresh day's limit.
#[test]
fn a_days_approvals_lost_or_changed_make_check_exit_1_and_name_the_escrow() {
    const DAILY: &str =
        "each day's approvals of an escrow are its requests approved that day, under its limit";
    let busiest = |conn: &Connection| -> (String, String) {
        conn.query_row(
            "SELECT escrow_id, day FROM daily_spend ORDER BY approved_usd_cents DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("the busy run approved under a daily limit")
    };
    let mut row = (String::new(), String::new());
    // The row's key moved to an escrow that does not exist (one character changed: its last,
    // to `z`, or to `y` for an id that ends in `z`, which one run in 32 drew and changed
    // nothing).
    let ran = check_after(|conn| {
        row = busiest(conn);
        conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
        conn.execute(
            "UPDATE daily_spend SET escrow_id = substr(escrow_id, 1, length(escrow_id) - 1)
                 || CASE WHEN substr(escrow_id, -1) = 'z' THEN 'y' ELSE 'z' END
             WHERE escrow_id = ?1 AND day = ?2",
            [&row.0, &row.1],
        )
        .unwrap();
    });
    assert_mismatch(
        "key flipped",
        &ran,
        &[DAILY, &row.0, "has no approvals kept"],
    );
    assert_mismatch("key flipped", &ran, &[DAILY, "there is no such escrow"]);
    // Deleted, and lowered.
    let ran = check_after(|conn| {
        row = busiest(conn);
        conn.execute(
            "DELETE FROM daily_spend WHERE escrow_id = ?1 AND day = ?2",
            [&row.0, &row.1],
        )
        .unwrap();
    });
    assert_mismatch("row deleted", &ran, &[DAILY, &row.0, &row.1]);
    let ran = check_after(|conn| {
        row = busiest(conn);
        conn.execute(
            "UPDATE daily_spend SET approved_usd_cents = 0 WHERE escrow_id = ?1 AND day = ?2",
            [&row.0, &row.1],
        )
        .unwrap();
    });
    assert_mismatch(
        "approvals lowered",
        &ran,
        &[DAILY, &row.0, "approved 0 US cents"],
    );
}

#[test]
fn editing_a_journal_entry_makes_check_exit_1_and_name_the_transaction() {
    let mut transaction = 0i64;
    let ran = check_after(|conn| {
        conn.execute_batch("DROP TRIGGER ledger_entries_append_only_update")
            .unwrap();
        let (entry, tx): (i64, i64) = conn
            .query_row(
                "SELECT id, transaction_id FROM ledger_entries WHERE account = 'available'
                 AND amount_usd_cents > 0 ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        transaction = tx;
        conn.execute(
            "UPDATE ledger_entries SET amount_usd_cents = amount_usd_cents + 1 WHERE id = ?1",
            [entry],
        )
        .unwrap();
    });
    assert_mismatch(
        "journal entry",
        &ran,
        &[
            "every journal transaction sums to zero",
            &format!("journal transaction {transaction}:"),
        ],
    );
}

#[test]
fn a_paid_request_set_back_to_approved_makes_check_exit_1() {
    let mut request = String::new();
    let ran = check_after(|conn| {
        request = conn
            .query_row(
                "SELECT id FROM payment_requests WHERE status = 'paid' ORDER BY id LIMIT 1",
                [],
                |r| r.get(0),
            )
            .expect("the busy run paid something");
        conn.execute(
            "UPDATE payment_requests SET status = 'approved' WHERE id = ?1",
            [&request],
        )
        .unwrap();
    });
    assert_mismatch(
        "paid -> approved",
        &ran,
        &["every succeeded payout belongs to a paid request", &request],
    );
}

/// A fault of every row (here one entry of every journal transaction a cent larger) is counted
/// whole and its first 20 listed: every mismatch was held and printed, millions of lines at a
/// million escrows (and one JSON answer of `GET /admin/integrity` built inside the server).
/// (The journal, not the busy run's paid requests: how many it pays is drawn at random, and
/// was 16 in one run.)
#[test]
fn a_fault_of_every_row_is_counted_and_its_first_twenty_listed() {
    let mut faulty = 0i64;
    let ran = check_after(|conn| {
        conn.execute_batch("DROP TRIGGER ledger_entries_append_only_update")
            .unwrap();
        faulty = conn
            .execute(
                "UPDATE ledger_entries SET amount_usd_cents = amount_usd_cents + 1
                 WHERE id IN (SELECT MIN(id) FROM ledger_entries GROUP BY transaction_id)",
                [],
            )
            .unwrap() as i64;
    });
    assert!(
        faulty > 20,
        "the busy run made only {faulty} journal transactions"
    );
    let check = "every journal transaction sums to zero";
    assert!(
        ran.stdout.contains(&format!(
            "{check}: {faulty} mismatch(es) in all, the first 20 listed"
        )),
        "{ran}"
    );
    let listed = ran
        .stdout
        .lines()
        .filter(|l| l.starts_with(&format!("MISMATCH {check}: ")))
        .count();
    assert_eq!(listed, 20, "{ran}");
    // The summary counts them all, not the lines listed.
    let total: i64 = ran
        .stdout
        .lines()
        .last()
        .and_then(|l| l.strip_suffix(" mismatch(es)"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no summary line: {ran}"));
    assert!(total >= faulty, "{total} < {faulty}: {ran}");
}

/// A request set back to approved while its payout failed: the balances agree (the failure
/// returned the money), only the request's word is wrong, and no check compared the two.
#[test]
fn a_failed_request_set_back_to_approved_makes_check_exit_1() {
    let mut request = String::new();
    let ran = check_after(|conn| {
        request = conn
            .query_row(
                "SELECT payment_request_id FROM payouts WHERE status = 'failed' ORDER BY id LIMIT 1",
                [],
                |r| r.get(0),
            )
            .expect("the busy run failed a payout");
        conn.execute(
            "UPDATE payment_requests SET status = 'approved' WHERE id = ?1",
            [&request],
        )
        .unwrap();
    });
    assert_mismatch(
        "failed -> approved",
        &ran,
        &[
            "every request's state is its payout's",
            &request,
            "is failed",
        ],
    );
}

/// Guards against: a token issued before its `token.issued` line recorded a digest of its hash
/// (2026-12-07) could have its hash replaced in the file by that of a token the editor knows
/// (their token opened the account: an admin's) and `remit check` said the ledger holds. The
/// first start after the upgrade records the digest of each such open token.
#[test]
fn a_token_from_before_the_digest_is_held_to_its_hash_from_the_first_start_on() {
    use remit::service::Role;
    let ts = crate::support::TestStore::new();
    let admin = ts.user(Role::Admin, "Old Admin", None);
    let old_hash = remit::crypto::sha256(b"rmt_oldtoken_as_an_older_remit_issued_it");
    let user = admin.id.clone();
    ts.store
        .write(move |ctx| {
            ctx.conn.execute(
                "INSERT INTO api_tokens (token_hash, prefix, user_id, created_at) VALUES (?1, 'rmt_oldtoken', ?2, '2026-12-01T00:00:00Z')",
                rusqlite::params![old_hash.as_slice(), user],
            )?;
            // As remit wrote it before 2026-12-07: the prefix, no digest.
            ctx.audit("system:cli", "token.issued", &user, &json!({"prefix": "rmt_oldtoken"}))
        })
        .unwrap();
    ts.store.close();
    let db = ts.db_path();
    let replaced = |db: &std::path::Path| {
        let known = remit::crypto::sha256(b"rmt_a_token_the_editor_knows");
        let conn = Connection::open(db).unwrap();
        conn.execute(
            "UPDATE api_tokens SET token_hash = ?1 WHERE prefix = 'rmt_oldtoken'",
            [known.as_slice()],
        )
        .unwrap();
    };
    // Before a start: nothing records the hash (README, "What it guarantees").
    let before = tempfile::tempdir().unwrap();
    let copy = before.path().join("remit.db");
    std::fs::copy(&db, &copy).unwrap();
    replaced(&copy);
    assert_eq!(check(&copy, TEST_KEY).code, Some(0));
    // A start records it, once.
    let log = ts.dir.path().join("serve.log");
    for _ in 0..2 {
        let mut server = Server::start(&db, TEST_KEY, &log, &[]);
        assert!(server.terminate().success());
    }
    let conn = Connection::open(&db).unwrap();
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM audit_log WHERE action = 'token.hash_recorded'"
        ),
        1
    );
    drop(conn);
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("1 open tokens issued before 2026-12-07"),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert_eq!(check(&db, TEST_KEY).code, Some(0));
    replaced(&db);
    assert_mismatch(
        "an old token's hash replaced after the start",
        &check(&db, TEST_KEY),
        &["rmt_oldtoken", "its hash was replaced"],
    );
}

#[test]
fn check_on_a_missing_database_exits_2_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nothing-here.db");

    let ran = check(&db, TEST_KEY);

    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        ran.stderr.contains("could not run") && ran.stderr.contains("no database"),
        "{ran}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "check created {left:?}");
}

#[test]
fn check_with_a_wrong_key_exits_2_and_says_the_key_does_not_match() {
    let (_dir, db, _) = golden_copy();
    let before = std::fs::read(&db).unwrap();

    let ran = check(&db, &"ab".repeat(32));

    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        ran.stderr
            .contains("the encryption key does not match this database"),
        "{ran}"
    );
    assert!(!ran.stdout.contains("ok"), "{ran}");
    assert_eq!(std::fs::read(&db).unwrap(), before, "nothing was written");
}

/// A user's audit line names the token they acted with: an admin may issue a token for any
/// user, and an approval made with one they issued for a sender read as the sender's own, the
/// two told apart by nothing but times (until 2026-12-07). The sender sees the token of their
/// own lines (to match with the tokens they hold), no one else's.
#[test]
fn an_audit_line_names_the_token_its_user_acted_with() {
    let app = spawn_app();
    let escrow = app.active_escrow(100, &["rent"]);
    let sender_id = app.get("/me", &app.sender).body["userId"]
        .as_str()
        .unwrap()
        .to_string();
    let issued = app.post(
        &format!("/users/{sender_id}/tokens"),
        &app.admin,
        &json!({}),
    );
    assert_eq!(issued.status, 201, "{}", issued.text);
    let in_their_name = issued.body["token"].as_str().unwrap().to_string();
    let (mine, theirs) = (
        app.request(&escrow, "rent", 1_000, "12345"),
        app.request(&escrow, "rent", 1_000, "12345"),
    );
    assert_eq!(app.approve(&mine).status, 200);
    let approved = app.post(
        &format!("/payment-requests/{theirs}/approve"),
        &in_their_name,
        &json!({}),
    );
    assert_eq!(approved.status, 200, "{}", approved.text);
    let approval = |entity: &str, token: &str| -> Value {
        let r = app.get(&format!("/audit?entity={entity}"), token);
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["action"] == "payment_request.approved")
            .unwrap_or_else(|| panic!("no approval in {}", r.text))
            .clone()
    };
    for (request, token) in [(&mine, &app.sender), (&theirs, &in_their_name)] {
        let line = approval(request, &app.admin);
        assert_eq!(line["actor"], sender_id.as_str());
        assert_eq!(line["details"]["token"], token[..12], "{line}");
    }
    // The sender's view of the escrow's log: their own lines with their tokens, an agent's
    // (the requests, the cash) with none.
    let r = app.get(&format!("/audit?entity={escrow}"), &app.sender);
    assert_eq!(r.status, 200, "{}", r.text);
    let lines = r.body["items"].as_array().unwrap();
    let tokens: Vec<&str> = lines
        .iter()
        .filter(|l| l["action"] == "payment_request.approved")
        .map(|l| l["details"]["token"].as_str().unwrap())
        .collect();
    assert_eq!(tokens.len(), 2, "{}", r.text);
    assert!(tokens.contains(&&in_their_name[..12]) && tokens.contains(&&app.sender[..12]));
    let by_agent: Vec<&Value> = lines.iter().filter(|l| l["actor"] == "agent").collect();
    assert!(!by_agent.is_empty(), "{}", r.text);
    assert!(
        by_agent.iter().all(|l| l["details"].get("token").is_none()),
        "{}",
        r.text
    );
}

/// A token's last use is the time of that use, not of its record (written in the background,
/// seconds later): a token used, then revoked before the record, read as used after its
/// revocation (until 2026-12-07).
#[test]
fn a_tokens_last_use_is_when_it_was_used() {
    let app = spawn_app();
    let created = app.post(
        "/users",
        &app.admin,
        &json!({"role": "agent", "name": "Late shift"}),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let user_id = created.body["user"]["userId"].as_str().unwrap().to_string();
    let token = created.body["token"].as_str().unwrap().to_string();
    let before = remit::time::now_rfc3339();
    assert_eq!(app.get("/me", &token).status, 200);
    let after = remit::time::now_rfc3339();
    let revoked = app.raw(
        "DELETE",
        &format!("/tokens/{}", &token[..12]),
        Some(&app.admin),
        None,
        &[],
    );
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let view = loop {
        let users = app.get("/users?limit=100", &app.admin);
        let view = users.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["userId"] == user_id.as_str())
            .unwrap()["tokens"][0]
            .clone();
        if !view["lastUsedAt"].is_null() || std::time::Instant::now() > deadline {
            break view;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let used = view["lastUsedAt"].as_str().expect("its use was recorded");
    assert!(
        before.as_str() <= used && used <= after.as_str(),
        "used between {before} and {after}: {view}"
    );
    assert!(used <= view["revokedAt"].as_str().unwrap(), "{view}");
}

/// The check reads the whole ledger: one at a time, the others asked meanwhile `503 busy`
/// (safe to retry). Until 2026-12-07 every call ran its own, each holding a pooled read
/// connection for its length: a script asking it in a loop from a few connections took them
/// all, and the other requests waited 5 s and were answered 500.
#[test]
fn admin_integrity_runs_one_check_at_a_time() {
    let app = spawn_app();
    for _ in 0..30 {
        app.active_escrow(100, &["rent", "food"]);
    }
    let started = std::time::Instant::now();
    assert_eq!(app.get("/admin/integrity", &app.admin).body["ok"], true);
    let one = started.elapsed();
    let askers = 6;
    let gate = std::sync::Barrier::new(askers);
    let answers: Vec<Resp> = std::thread::scope(|s| {
        let asks: Vec<_> = (0..askers)
            .map(|_| {
                s.spawn(|| {
                    gate.wait();
                    app.raw_once("GET", "/admin/integrity", Some(&app.admin), None, &[])
                })
            })
            .collect();
        asks.into_iter().map(|a| a.join().unwrap()).collect()
    });
    let (mut ran, mut refused) = (0, 0);
    for r in &answers {
        match r.status {
            200 => {
                assert_eq!(r.body["ok"], true, "{}", r.text);
                ran += 1;
            }
            503 => {
                assert_eq!(r.body["code"], "busy", "{}", r.text);
                assert!(
                    r.body["error"]
                        .as_str()
                        .unwrap()
                        .starts_with("an integrity check is running already"),
                    "{}",
                    r.text
                );
                assert_eq!(r.header("retry-after"), Some("1"));
                refused += 1;
            }
            _ => panic!("{}", r.text),
        }
    }
    // Asked at once, each check taking this long, they overlap.
    assert!(
        ran >= 1 && refused >= 1,
        "{ran} ran, {refused} refused; one check took {one:?}"
    );
}

#[test]
fn admin_integrity_returns_the_same_report_as_remit_check() {
    let app = spawn_app();
    let escrow = app.active_escrow(100, &["rent", "food"]);
    let request = app.request(&escrow, "rent", 1_500, "12345");
    assert_eq!(app.approve(&request).status, 200);
    app.wait_for_status(&request, &["paid"]);
    let clean = app.get("/admin/integrity", &app.admin);
    assert_eq!(clean.status, 200, "{}", clean.text);
    assert_eq!(clean.body["ok"], true, "{}", clean.text);
    assert_eq!(clean.body["mismatches"], json!([]));
    assert_eq!(app.get("/admin/integrity", &app.sender).status, 403);
    assert_eq!(
        app.raw("GET", "/admin/integrity", None, None, &[]).status,
        401
    );
    // Someone edits the live file.
    {
        let conn = Connection::open(app.dir.path().join("remit.db")).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        conn.execute(
            "UPDATE escrows SET remaining_usd_cents = remaining_usd_cents - 7,
             refunded_usd_cents = refunded_usd_cents + 7 WHERE id = ?1",
            [&escrow],
        )
        .unwrap();
    }

    let report = app.get("/admin/integrity", &app.admin);
    let dir = stop_app(app);
    let ran = check(&dir.path().join("remit.db"), TEST_KEY);

    assert_eq!(report.status, 200, "{}", report.text);
    assert_eq!(report.body["ok"], false, "{}", report.text);
    let field = |name: &str| -> Vec<String> {
        report.body[name]
            .as_array()
            .unwrap_or_else(|| panic!("{name} is not a list: {}", report.text))
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let (checks, mismatches) = (field("checks"), field("mismatches"));
    assert!(
        mismatches.iter().any(|m| m.contains(&escrow)),
        "{mismatches:?}"
    );
    assert_eq!(ran.code, Some(1), "{ran}");
    let printed: Vec<&str> = ran.stdout.lines().collect();
    assert!(
        printed[0].starts_with("the file's pages and indexes are whole")
            && printed[0].ends_with(": ok"),
        "{ran}"
    );
    let printed_checks: Vec<&str> = printed
        .iter()
        .copied()
        .filter(|l| !l.starts_with("MISMATCH ") && l.contains(": "))
        .collect();
    let printed_mismatches: Vec<&str> = printed
        .iter()
        .filter_map(|l| l.strip_prefix("MISMATCH "))
        .collect();
    assert_eq!(printed_checks, checks, "{ran}");
    assert_eq!(printed_mismatches, mismatches, "{ran}");
}

#[test]
fn get_audit_lists_an_escrows_lines_in_chain_order_without_pii() {
    let app = spawn_app();
    let escrow = app.active_escrow(100, &["rent", "food"]);
    let paid = app.request(&escrow, "rent", 1_500, "ACCT-93817264");
    assert_eq!(app.approve(&paid).status, 200);
    app.wait_for_status(&paid, &["paid"]);
    let rejected = app.request(&escrow, "food", 700, "ACCT-93817264");
    let r = app.post(
        &format!("/payment-requests/{rejected}/reject"),
        &app.sender,
        &json!({"reason": "ask Wanjiru first"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let (payout, _, _) = app.payout_ids(&paid);

    let r = app.get(&format!("/audit?entity={escrow}"), &app.admin);

    assert_eq!(r.status, 200, "{}", r.text);
    let items = r.body["items"].as_array().unwrap();
    let actions: Vec<&str> = items
        .iter()
        .map(|i| i["action"].as_str().unwrap())
        .collect();
    for action in [
        "escrow.created",
        "escrow.deposited",
        "escrow.activated",
        "payment_request.created",
        "payment_request.approved",
        "payout.sent",
        "payout.succeeded",
        "payment_request.rejected",
    ] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }
    let seqs: Vec<i64> = items.iter().map(|i| i["seq"].as_i64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "chain order: {seqs:?}"
    );
    for item in items {
        let entity = item["entity"].as_str().unwrap();
        assert!(
            [
                escrow.as_str(),
                paid.as_str(),
                rejected.as_str(),
                payout.as_str()
            ]
            .contains(&entity),
            "a line about something else: {item}"
        );
        let mac = item["mac"].as_str().unwrap();
        assert!(
            mac.len() == 64 && mac.bytes().all(|b| b.is_ascii_hexdigit()),
            "{item}"
        );
        assert!(item["at"].as_str().unwrap().ends_with('Z'), "{item}");
    }
    for needle in ["712345678", "Wanjiru", "Kenya Power", "93817264"] {
        assert!(!r.text.contains(needle), "{needle} in {}", r.text);
    }
    // The escrow's sender may read it too; nobody else but admins.
    let own = app.get(&format!("/audit?entity={escrow}"), &app.sender);
    assert_eq!(own.status, 200, "{}", own.text);
    // The same lines, but for the recipient's user id (whose time would tell the sender
    // whether the phone had an account before), and numbered by their place in the escrow's
    // log rather than the ledger's seq (whose gaps would tell the same).
    // Nor M-Pesa's conversation id of the payout (for admins, as in the payout's view). The
    // kiosk agent who took the cash and asked for payments is named by role.
    // Nor the token another acted with (their own lines name theirs).
    let mut admins = r.body["items"].clone();
    let (mut hidden, mut conversations) = (0, 0);
    for (place, item) in admins.as_array_mut().unwrap().iter_mut().enumerate() {
        if item["actor"] == app.agent_id.as_str() {
            item["actor"] = serde_json::json!("agent");
            let token = item["details"].as_object_mut().unwrap().remove("token");
            assert_eq!(token, Some(json!(&app.agent[..12])), "{item}");
        }
        if let Some(details) = item["details"].as_object_mut() {
            hidden += usize::from(details.remove("recipientId").is_some());
            conversations += usize::from(details.remove("conversationId").is_some());
        }
        item["seq"] = serde_json::json!(place + 1);
    }
    assert_eq!(hidden, 1, "escrow.created names the recipient: {}", r.text);
    assert_eq!(
        conversations, 1,
        "payout.sent names M-Pesa's conversation: {}",
        r.text
    );
    assert_eq!(own.body["items"], admins);
    assert_eq!(
        app.get(&format!("/audit?entity={escrow}"), &app.other_sender)
            .status,
        404
    );
    assert_eq!(
        app.get(&format!("/audit?entity={escrow}"), &app.recipient)
            .status,
        403
    );
    assert_eq!(
        app.get(&format!("/audit?entity={escrow}"), &app.agent)
            .status,
        403
    );
    // Roles that may never read it hear 403 before their query is looked at: for an escrow
    // not theirs, one that does not exist, or none at all (it was 404 for a recipient).
    let elsewhere = app.pending_escrow(10, &["a"], None);
    for query in [
        format!("entity={elsewhere}"),
        "entity=esc_00000000000000000000000000".to_string(),
        String::new(),
    ] {
        for who in [&app.recipient, &app.agent] {
            assert_eq!(
                app.get(&format!("/audit?{query}"), who).status,
                403,
                "{query}"
            );
        }
    }
    assert_eq!(app.get("/audit", &app.admin).status, 400);

    // Pages: the whole story in pages of 3, the last page's null (before, 1,000 lines were all
    // there was, with no sign of more). A sender's cursor is sealed: neither their place nor
    // the ledger's seq reads in it.
    assert_eq!(r.body["nextCursor"], Value::Null, "{}", r.text);
    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = app.get(
            &format!("/audit?entity={escrow}&limit=3&cursor={cursor}"),
            &app.sender,
        );
        assert_eq!(page.status, 200, "{}", page.text);
        let items = page.body["items"].as_array().unwrap();
        assert!(items.len() <= 3, "{}", page.text);
        paged.extend(items.iter().cloned());
        match page.body["nextCursor"].as_str() {
            Some(next) => {
                // As long whatever it holds: its length would tell the seq's digits.
                assert!(next.starts_with("v1.") && next.len() == 102, "{next}");
                cursor = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!(Value::Array(paged), own.body["items"]);
    for bad in [
        "limit=0",
        "limit=1001",
        "cursor=abc",
        "cursor=0",
        "cursor=01",
        "cursor=-5",
    ] {
        let r = app.get(&format!("/audit?entity={escrow}&{bad}"), &app.admin);
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
    }
    // A sender's cursor is theirs, for this escrow: a place alone (as cursors were), an
    // admin's seq, a sealed cursor of another escrow or altered, are refused naming `cursor`.
    let first = app.get(&format!("/audit?entity={escrow}&limit=1"), &app.sender);
    let sealed = first.body["nextCursor"].as_str().unwrap().to_string();
    let other = app.pending_escrow(10, &["a"], None);
    let others = app.get(&format!("/audit?entity={other}&limit=1"), &app.sender);
    assert!(others.body["nextCursor"].is_null(), "{}", others.text);
    let mut altered = sealed.clone().into_bytes();
    let last = altered.len() - 1;
    altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    for (entity, bad) in [
        (escrow.as_str(), "1"),
        (escrow.as_str(), "3"),
        (other.as_str(), sealed.as_str()),
        (escrow.as_str(), altered.as_str()),
    ] {
        let r = app.get(&format!("/audit?entity={entity}&cursor={bad}"), &app.sender);
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
        assert_eq!(r.body["field"], "cursor", "{}", r.text);
    }
    // An admin's cursor is a seq: a sender's sealed one is not one.
    let r = app.get(
        &format!("/audit?entity={escrow}&cursor={sealed}"),
        &app.admin,
    );
    assert_eq!(r.status, 400, "{}", r.text);
}

/// `remit check` runs the audit chain and the SQL checks on two connections at once
/// (`integrity::check_on_two`): its report is the one-connection check's, line for line and in
/// the same order, on a file with a broken balance and a broken chain.
#[test]
fn the_check_on_two_connections_reports_what_the_check_on_one_reports() {
    let (_dir, db, _) = golden_copy();
    {
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch(
            "DROP TRIGGER audit_log_append_only_update;
             UPDATE escrows SET remaining_usd_cents = remaining_usd_cents - 1,
                 refunded_usd_cents = refunded_usd_cents + 1
             WHERE id = (SELECT id FROM escrows WHERE status = 'active' AND remaining_usd_cents > 0 ORDER BY id LIMIT 1);
             UPDATE audit_log SET action = action || 'x'
             WHERE seq = (SELECT COUNT(*) / 2 FROM audit_log);",
        )
        .unwrap();
    }
    let ran = check(&db, TEST_KEY);
    let (conn, keys) = remit::store::open_for_check(&db, Some(TEST_KEY)).unwrap();
    let one = remit::integrity::check(&conn, &keys).unwrap();
    assert!(
        one.mismatches
            .iter()
            .any(|m| m.starts_with("escrow balances"))
            && one.mismatches.iter().any(|m| m.starts_with("audit chain")),
        "the tampering must break a balance and the chain: {one:?}"
    );
    let mut expected = printed(&one);
    expected.push(format!("{} mismatch(es)", one.mismatches.len()));
    let printed_by_cli: Vec<&str> = ran.stdout.lines().collect();
    assert_eq!(ran.code, Some(1), "{ran}");
    assert_eq!(
        printed_by_cli,
        expected.iter().map(String::as_str).collect::<Vec<_>>(),
        "{ran}"
    );
}
