//! The process: SIGTERM drains (every answered approval is in the file, exit 0), the log has a
//! line per request and no PII or secrets, and a bad start says one sentence without a panic.

use crate::support::process::*;
use crate::support::TEST_KEY;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

/// Guards against: a first start on a full disk (here: no file may grow, `prlimit --fsize=0`,
/// its signal caught by remit) left an empty key file beside an empty database, and every start after
/// space was freed refused it ("does not hold 64 hex characters").
#[test]
fn a_first_start_on_a_full_disk_leaves_no_key_file_and_the_next_start_makes_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let mut cmd = std::process::Command::new("/bin/bash");
    cmd.current_dir(dir.path())
        .env_clear()
        .arg("-c")
        // Its words through a pipe: the file they are kept in is no file of remit's.
        .arg(r#"/usr/bin/prlimit --fsize=0 -- "$@" 2>&1 | cat >&2; exit "${PIPESTATUS[0]}""#)
        .arg("remit")
        .arg(env!("CARGO_BIN_EXE_remit"))
        .args(["serve", "--addr", "127.0.0.1:0", "--db"])
        .arg(&db);
    let ran = run(cmd);
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(ran.stderr.contains("cannot write key file"), "{ran}");
    let key_file = dir.path().join("remit.db.key");
    assert!(!key_file.exists(), "no key file left: {ran}");
    // Space back: the start makes the ledger and its key.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_remit"));
    cmd.current_dir(dir.path())
        .env_clear()
        .env("RUST_LOG", "info")
        .args(["serve", "--addr", "127.0.0.1:0", "--db"])
        .arg(&db);
    let mut server = Server::spawn(cmd, &dir.path().join("serve.log"));
    assert_eq!(server.get("/health", "").status, 200);
    assert_eq!(std::fs::read_to_string(&key_file).unwrap().trim().len(), 64);
    // The space left is in /metrics all along.
    let metrics = server.get("/metrics", "").text;
    let free: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("remit_disk_free_bytes "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no remit_disk_free_bytes in {metrics}"));
    assert!(free > 0, "{metrics}");
    assert!(server.terminate().success());
}

#[test]
fn sigterm_during_approvals_exits_0_and_every_answered_approval_is_in_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let sender = user_add(&db, TEST_KEY, "sender", "Amina", None);
    let agent = user_add(&db, TEST_KEY, "agent", "Kiosk", None);
    let mut server = Server::start(&db, TEST_KEY, &dir.path().join("serve.log"), &[]);
    let escrow = funded_escrow(
        &server,
        &sender,
        &agent,
        1_000,
        "0712345678",
        "Wanjiru",
        &["rent"],
    );
    let requests = pending_requests(&server, &agent, &escrow, 400);
    let answered = counter();
    // (request, HTTP status or None when no answer came)
    let outcomes: Mutex<Vec<(String, Option<u16>)>> = Mutex::new(Vec::new());

    // Act: 8 clients approve, each on one kept-alive connection; SIGTERM once some
    // approvals are answered.
    let pid = server.pid();
    std::thread::scope(|s| {
        for chunk in requests.chunks(requests.len().div_ceil(8)) {
            let (server, sender, answered, outcomes) = (&server, &sender, &answered, &outcomes);
            s.spawn(move || {
                for id in chunk {
                    let r = call(
                        &server.http,
                        &server.base,
                        "POST",
                        &format!("/payment-requests/{id}/approve"),
                        Some(sender),
                        Some(&json!({})),
                    );
                    let status = r.ok().map(|a| a.status);
                    outcomes.lock().unwrap().push((id.clone(), status));
                    answered.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        wait_for_count(&answered, 15);
        sigterm(pid);
    });
    let status = server.wait();

    // Assert.
    assert_eq!(status.code(), Some(0), "{}", server.log());
    let log = server.log();
    assert!(log.contains("stopped cleanly"), "{log}");
    let outcomes = outcomes.into_inner().unwrap();
    let ok = outcomes.iter().filter(|(_, s)| *s == Some(200)).count();
    let unanswered = outcomes.iter().filter(|(_, s)| s.is_none()).count();
    eprintln!(
        "{ok} approvals answered 200, {unanswered} unanswered, {} other",
        outcomes.len() - ok - unanswered
    );
    assert!(ok >= 15, "{outcomes:?}");
    let conn = read_only(&db);
    for (id, answer) in &outcomes {
        let status = request_status(&conn, id);
        match answer {
            Some(200) => assert!(
                status == "approved" || status == "paid",
                "{id} was answered 200 but is {status} in the database"
            ),
            // A request read before the stop is answered, never dropped with a 500 (it was,
            // when it reached the queue after the workers had stopped).
            Some(500) => panic!("{id} was answered 500 at the stop:\n{}", server.log()),
            // An approval answered with an error must not have happened.
            Some(code) => assert_eq!(status, "pending_approval", "{id} was answered {code}"),
            // No answer: the server never took it, so it never happened.
            None => assert_eq!(
                status, "pending_approval",
                "{id} was approved but its client never got the answer"
            ),
        }
    }
    drop(conn);
    let ran = check(&db, TEST_KEY);
    assert_eq!(ran.code, Some(0), "{ran}");
}

#[test]
fn the_log_has_a_line_per_request_and_no_phone_name_token_or_merchant_account() {
    const CALLBACK: &str = "9c2e5b1d4f603f7a9c2e5b1d4f603f7a";
    const STRIPE: &str = "whsec_9c2e5b1d4f603f7a";
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let mut server = Server::start(
        &db,
        TEST_KEY,
        &dir.path().join("serve.log"),
        &[
            ("REMIT_MPESA_CALLBACK_TOKEN", CALLBACK),
            ("REMIT_STRIPE_WEBHOOK_SECRET", STRIPE),
        ],
    );
    let admin = server.admin_token();
    let user = |role: &str, name: &str, phone: Option<&str>| -> (String, String) {
        let mut body = json!({"role": role, "name": name});
        if let Some(p) = phone {
            body["phone"] = json!(p);
        }
        let r = server.post("/users", &admin, &body);
        assert_eq!(r.status, 201, "{}", r.text);
        (
            r.body["user"]["userId"].as_str().unwrap().to_string(),
            r.body["token"].as_str().unwrap().to_string(),
        )
    };
    let (_, sender) = user("sender", "Zawadi Achieng", Some("0733 111 222"));
    let (_, agent) = user("agent", "Kiosk Umoja", None);
    let escrow = funded_escrow(
        &server,
        &sender,
        &agent,
        200,
        "0798 765 432",
        "Nyokabi Wairimu",
        &["school_fees", "food"],
    );
    let recipient_id = server.get(&format!("/escrows/{escrow}"), &admin).body["recipient"]
        ["userId"]
        .as_str()
        .unwrap()
        .to_string();
    let r = server.post(&format!("/users/{recipient_id}/tokens"), &admin, &json!({}));
    assert_eq!(r.status, 201, "{}", r.text);
    let recipient = r.body["token"].as_str().unwrap().to_string();
    let request = |account: serde_json::Value, token: &str| -> String {
        let r = server.post(
            "/payment-requests",
            token,
            &json!({"escrowId": escrow, "category": "school_fees", "amountKes": 1200,
                    "merchantName": "Mama Njeri Uniforms", "merchantAccount": account,
                    "note": "for Nyokabi's uniform"}),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        r.body["paymentRequestId"].as_str().unwrap().to_string()
    };
    let paybill = request(
        json!({"type": "paybill", "number": "888880", "accountReference": "ACCT-93817264"}),
        &agent,
    );
    let to_phone = request(
        json!({"type": "phone", "number": "0711 222 333"}),
        &recipient,
    );
    let rejected = request(json!({"type": "till", "number": "5123456"}), &agent);
    for id in [&paybill, &to_phone] {
        let r = server.post(
            &format!("/payment-requests/{id}/approve"),
            &sender,
            &json!({}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
    }
    wait_for_payouts(&server, &admin, &[paybill.clone(), to_phone.clone()]);
    let r = server.post(
        &format!("/payment-requests/{rejected}/reject"),
        &sender,
        &json!({"reason": "Nyokabi has one"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    // Refusals carry PII and secrets in their input too.
    let r = server.post(
        "/escrows",
        &sender,
        &json!({"recipientPhone": "0798765432", "recipientName": "Nyokabi Wairimu", "totalAmountUsd": -5, "categories": ["food"]}),
    );
    assert_eq!(r.status, 400, "{}", r.text);
    let forged = "rmt_forgedtokenvalue0123456789abcdef";
    assert_eq!(server.get("/me", forged).status, 401);
    let r = server.call(
        "POST",
        &format!("/webhooks/mpesa/{CALLBACK}"),
        None,
        Some(&json!({"Body": {"stkCallback": {"MerchantRequestID": "x", "CheckoutRequestID": "y", "ResultCode": 1, "ResultDesc": "0798765432"}}})),
    );
    assert!(r.status < 500, "{}", r.text);
    assert!(server.terminate().success());

    let log = server.log();

    assert!(log.contains("remit::access"), "{log}");
    for line in [
        "POST /escrows 201",
        "POST /payment-requests 201",
        "GET /me 401",
        "/webhooks/mpesa/:token",
    ] {
        assert!(log.contains(line), "no access line with {line:?}:\n{log}");
    }
    for secret in [
        "0798765432",
        "798765432",
        "798 765 432",
        "+254798765432",
        "254798765432",
        "733111222",
        "733 111 222",
        "711222333",
        "711 222 333",
        "Nyokabi",
        "Wairimu",
        "Zawadi",
        "Achieng",
        "Mama Njeri",
        "93817264",
        "uniform",
        &admin,
        &sender,
        &agent,
        &recipient,
        forged,
        CALLBACK,
        STRIPE,
        TEST_KEY,
    ] {
        assert!(!log.contains(secret), "the log holds {secret:?}:\n{log}");
    }
}

#[test]
fn a_bad_start_says_one_sentence_on_stderr_and_no_panic() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let mut holder = Server::start(&db, TEST_KEY, &dir.path().join("serve.log"), &[]);
    let other = dir.path().join("other.db");
    // (what, arguments after `serve`, extra environment, the sentence it begins with)
    type Case<'a> = (&'a str, Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "an address that cannot be bound",
            vec!["--db", other.to_str().unwrap(), "--addr", "999.1.1.1:1"],
            vec![],
            "remit: cannot listen on 999.1.1.1:1",
        ),
        (
            "a database another server holds",
            vec!["--db", db.to_str().unwrap(), "--addr", "127.0.0.1:0"],
            vec![],
            "remit: another remit process (a server, a restore or a key rotation) is using",
        ),
        (
            "a malformed key",
            vec!["--db", other.to_str().unwrap(), "--addr", "127.0.0.1:0"],
            vec![("ENCRYPTION_KEY", "not-a-key")],
            "remit: ENCRYPTION_KEY: must be 64 hex characters",
        ),
        (
            "a short callback token",
            vec!["--db", other.to_str().unwrap(), "--addr", "127.0.0.1:0"],
            vec![("REMIT_MPESA_CALLBACK_TOKEN", "short")],
            "remit: REMIT_MPESA_CALLBACK_TOKEN: must be",
        ),
    ];
    for (what, args, env, sentence) in cases {
        let mut cmd = remit(dir.path(), Some(TEST_KEY));
        cmd.arg("serve").args(&args).env("RUST_BACKTRACE", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }

        let ran = run(cmd);

        assert!(matches!(ran.code, Some(c) if c != 0), "{what}: {ran}");
        let sentences: Vec<&str> = ran
            .stderr
            .lines()
            .filter(|l| l.starts_with("remit:"))
            .collect();
        assert_eq!(sentences.len(), 1, "{what}: one sentence: {ran}");
        assert!(sentences[0].starts_with(sentence), "{what}: {ran}");
        assert_eq!(
            ran.stderr.trim_end().lines().last(),
            Some(sentences[0]),
            "{what}: the sentence comes last: {ran}"
        );
        for bad in ["panicked", "backtrace", "RUST_BACKTRACE", "internal error"] {
            assert!(!ran.stderr.contains(bad), "{what}: {bad}: {ran}");
        }
    }
    assert!(holder.terminate().success());
}

/// Regression: the simulator posts each result from a thread of its own after its delay; a
/// stop before then ended the thread, and the simulator cannot be asked, so the payout stayed
/// `sent` after every restart, its money reserved, until an admin resolved it by hand.
#[test]
fn the_simulator_posts_after_a_restart_the_results_it_owed_at_the_stop() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let (admin, sender, agent) = kiosk_users(&db, TEST_KEY);
    // Results a minute away: none arrives before the stop.
    let slow = [
        ("REMIT_SIM_DELAY_MS", "60000"),
        ("REMIT_SIM_FAIL_ACCOUNTS", "R1"),
    ];
    let mut server = Server::start(&db, TEST_KEY, &dir.path().join("serve-1.log"), &slow);
    let escrow = funded_escrow(
        &server,
        &sender,
        &agent,
        100,
        "0712345678",
        "Wanjiru",
        &["rent"],
    );
    // Two requests, to the references R0 and R1 (the one the simulator fails), approved.
    let mut requests = pending_requests(&server, &agent, &escrow, 2);
    for id in &requests {
        let r = server.post(
            &format!("/payment-requests/{id}/approve"),
            &sender,
            &json!({}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
    }
    requests.sort_by_key(|id| {
        server.get(&format!("/payment-requests/{id}"), &admin).body["merchantAccount"]
            ["accountReference"]
            .to_string()
    });
    let (paid, failed) = (requests[0].clone(), requests[1].clone());
    let sent = |server: &Server| -> usize {
        let r = server.get("/payouts?status=sent", &admin);
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["items"].as_array().unwrap().len()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while sent(&server) < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the payouts were never sent"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(server.terminate().success(), "{}", server.log());

    // Act: start again, results now at once.
    let fast = [
        ("REMIT_SIM_DELAY_MS", "0"),
        ("REMIT_SIM_FAIL_ACCOUNTS", "R1"),
    ];
    let mut server = Server::start(&db, TEST_KEY, &dir.path().join("serve-2.log"), &fast);
    wait_for_payouts(&server, &admin, &[paid.clone(), failed.clone()]);

    // Assert: each settled as the simulator's accounts say; no money left reserved.
    let status =
        |id: &str| server.get(&format!("/payment-requests/{id}"), &admin).body["status"].clone();
    assert_eq!(status(&paid), "paid");
    assert_eq!(status(&failed), "failed");
    assert_eq!(sent(&server), 0);
    let view = server.get(&format!("/escrows/{escrow}"), &admin);
    assert_eq!(view.body["reservedUsdCents"], 0, "{}", view.text);
    assert!(
        server
            .log()
            .contains("posting the results of 2 payout(s) sent before the restart"),
        "{}",
        server.log()
    );
    assert!(server.terminate().success());
    let ran = check(&db, TEST_KEY);
    assert_eq!(ran.code, Some(0), "{ran}");
}

/// SIGHUP (the terminal the server was started from, closed) stops it as SIGTERM does: exit 0,
/// "stopped cleanly", the ledger whole. It was the default's death, exit 129, with no drain.
#[test]
fn a_hangup_stops_the_server_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let log = dir.path().join("remit.log");
    user_add(&db, TEST_KEY, "admin", "Admin", None);
    let mut server = Server::start(&db, TEST_KEY, &log, &[]);
    signal(server.pid(), "-HUP");
    let status = server.wait();
    assert!(status.success(), "{status:?}\n{}", server.log());
    assert!(server.log().contains("stopped cleanly"), "{}", server.log());
    let ran = check(&db, TEST_KEY);
    assert_eq!(ran.code, Some(0), "{ran}");
    // Started as `nohup` starts it (SIGHUP ignored), it outlives the terminal, as asked.
    let mut server = Server::start_ignoring_hangup(&db, TEST_KEY, &log);
    signal(server.pid(), "-HUP");
    assert_eq!(
        server.call("GET", "/health", None, None).status,
        200,
        "{}",
        server.log()
    );
    assert!(server.terminate().success(), "{}", server.log());
}

/// A stop waits for a body still arriving (up to its 10 s deadline); a second SIGTERM (Ctrl-C
/// twice, a second or more after the first) stops at once, exit 130, and the ledger is whole.
#[test]
fn a_second_signal_stops_at_once_and_the_ledger_is_whole() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let admin = user_add(&db, TEST_KEY, "admin", "Admin", None);
    let mut server = Server::start(&db, TEST_KEY, &dir.path().join("serve.log"), &[]);
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        slow,
        "POST /escrows HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    )
    .unwrap();
    slow.flush().unwrap();
    // Signalled only once a worker waits for that body: before, the connection may still be
    // queued, or its head not yet read (an idle connection, which a stop closes at once).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !server
        .get("/metrics", "")
        .text
        .lines()
        .any(|l| l == "remit_http_body_waits 1")
    {
        assert!(std::time::Instant::now() < deadline, "{}", server.log());
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    sigterm(server.pid());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !server.log().contains("stopping (") {
        assert!(std::time::Instant::now() < deadline, "{}", server.log());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The server counts its second from when it took the first signal, which was before its
    // log said so: 1.5 s from here is more than a second after, however slow that was.
    let first = std::time::Instant::now();
    // One Ctrl-C delivered twice at once is one: a second counts from a second after.
    sigterm(server.pid());
    std::thread::sleep(std::time::Duration::from_millis(1_500).saturating_sub(first.elapsed()));
    assert!(
        !server.log().contains("again: stopping at once"),
        "{}",
        server.log()
    );
    let asked = std::time::Instant::now();
    sigterm(server.pid());
    let status = server.wait();
    assert_eq!(status.code(), Some(130), "{}", server.log());
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(5),
        "the second signal waited {:?}",
        asked.elapsed()
    );
    assert!(
        server.log().contains("again: stopping at once"),
        "{}",
        server.log()
    );
    let ran = check(&db, TEST_KEY);
    assert_eq!(ran.code, Some(0), "{ran}");
}

/// When the disk fills (here: the files may not grow past a limit), `/health` says the database
/// does not take writes (503) instead of "ok", the payout worker does not spin on its claim, and
/// the log says so a few times, not thousands; once writes can be made again (a restart with
/// room), nothing acknowledged is lost.
#[test]
fn a_full_disk_is_said_by_health_and_not_shouted_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let (admin, sender, agent) = kiosk_users(&db, TEST_KEY);
    let log = dir.path().join("serve.log");
    let mut server = Server::start(&db, TEST_KEY, &log, &[]);
    let escrow = funded_escrow(
        &server,
        &sender,
        &agent,
        1_000,
        "0712345678",
        "Wanjiru",
        &["rent"],
    );
    let requests = pending_requests(&server, &agent, &escrow, 40);
    assert!(server.terminate().success());
    // No file may be written past 128 KiB: the log fills after a few batches, and the copy of
    // the log into the (larger) database file cannot be made, so the log cannot start over.
    let mut server = Server::start_with_file_size_limit(&db, TEST_KEY, &log, 128 * 1024);
    assert_eq!(server.get("/health", "").status, 200);
    let mut approved = Vec::new();
    let mut refused = 0;
    let mut last_refused = None;
    for id in &requests {
        let r = server.post(
            &format!("/payment-requests/{id}/approve"),
            &sender,
            &json!({}),
        );
        match r.status {
            200 => approved.push(id.clone()),
            500 => {
                refused += 1;
                last_refused = Some(id.clone());
            }
            other => panic!("{other}: {}", r.text),
        }
    }
    assert!(refused > 0, "the limit was never reached");
    // From the refusals on, `/health` says not_writable and keeps saying it while writes fail,
    // though a write that needs no new page (the payout worker's claim of a payout approved
    // before the limit) may commit among them: before, each such commit said the database took
    // writes again, and /health flapped between 200 and 503.
    let refused_id = last_refused.unwrap();
    for _ in 0..10 {
        let r = server.post(
            &format!("/payment-requests/{refused_id}/approve"),
            &sender,
            &json!({}),
        );
        assert_eq!(r.status, 500, "{}", r.text);
        let health = server.get("/health", "");
        assert_eq!(health.status, 503, "{}", health.text);
        assert_eq!(health.body["db"], "not_writable", "{}", health.text);
        assert_eq!(
            health.body["error"], "the database does not take writes",
            "{}",
            health.text
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        !server.log().contains("takes writes again"),
        "{}",
        server.log()
    );
    // Two seconds of a full disk, the payout worker with payouts to claim: its claims and the
    // writer's failures are said a few times, not once per try (before, thousands of lines).
    let before = server.log().len();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let text = server.log()[before..].to_string();
    let lines = text.lines().filter(|l| l.contains("ERROR")).count();
    assert!(
        lines < 20,
        "{lines} error lines in two seconds:\n{}",
        text.lines().rev().take(20).collect::<Vec<_>>().join("\n")
    );
    // A client that keeps asking: its 500s are said once every 10 s, not once each.
    let before = server.log().len();
    let mut asked = 0;
    for id in requests.iter().filter(|id| !approved.contains(id)) {
        let r = server.post(
            &format!("/payment-requests/{id}/approve"),
            &sender,
            &json!({}),
        );
        assert_eq!(r.status, 500, "{}", r.text);
        asked += 1;
    }
    assert!(asked >= 5, "only {asked} requests left to refuse");
    let text = server.log()[before..].to_string();
    let said = text
        .lines()
        .filter(|l| l.contains("remit::http::reply] request "))
        .count();
    assert!(said <= 1, "{said} lines for {asked} refusals:\n{text}");
    server.kill9();

    let server = Server::start(&db, TEST_KEY, &log, &[]);
    assert_eq!(server.get("/health", "").status, 200);
    for id in &approved {
        let r = server.get(&format!("/payment-requests/{id}"), &admin);
        let status = r.body["status"].as_str().unwrap_or_default();
        assert!(status == "approved" || status == "paid", "{id}: {}", r.text);
    }
    drop(server);
    assert_eq!(check(&db, TEST_KEY).code, Some(0));
}

/// The database file moved away (or deleted) while the server runs: every write went on into
/// the file the server still held, each answered 200 and lost with the server, and `/health`
/// said ok. Now each write is refused, `/health` says the file is missing and the log says
/// what to do; moved back, the file takes writes again, and nothing refused was kept.
#[test]
fn a_database_file_moved_away_while_serving_takes_no_writes_until_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let (server, sender, requests) = serving_with_requests(&db, &dir.path().join("serve.log"), 3);
    let away = dir.path().join("moved.db");
    std::fs::rename(&db, &away).unwrap();
    assert_approval_refused_as_missing(&server, &sender, &requests[0]);
    assert!(
        server
            .log()
            .contains("was deleted, moved or replaced while this server runs"),
        "{}",
        server.log()
    );
    std::fs::rename(&away, &db).unwrap();
    assert_eq!(server.get("/health", "").body["db"], "ok");
    let approved = server.post(
        &format!("/payment-requests/{}/approve", requests[1]),
        &sender,
        &json!({}),
    );
    assert_eq!(approved.status, 200, "{}", approved.text);
    assert!(
        server.log().contains("is back at its path"),
        "{}",
        server.log()
    );
    let r = server.get(&format!("/payment-requests/{}", requests[0]), &sender);
    assert_eq!(r.body["status"], "pending_approval", "{}", r.text);
}

/// Guards against: a database file deleted while the server runs (`rm remit.db`) left the
/// ledger's only copy in the process, its newest commits in the log beside the path; the log
/// said to move the file back (there was none) or stop and restore, and the stop folded the log
/// into the deleted file and removed it: every commit since the last backup was lost. The
/// server copies the ledger beside the path, at the first write refused (or at the stop, when
/// none came), and says so; a copy that could not be made (its names taken, as by a full disk)
/// is made at the stop once it can be.
#[test]
fn a_database_file_deleted_while_serving_is_copied_beside_its_path_with_every_commit() {
    for (write_after, blocked) in [(true, false), (false, false), (true, true)] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("remit.db");
        // The temporary directory, the last place tried, a file: no copy can be made there.
        let not_a_dir = dir.path().join("not-a-directory");
        std::fs::write(&not_a_dir, b"").unwrap();
        let env = [("TMPDIR", not_a_dir.to_str().unwrap())];
        let (mut server, admin, sender, requests) =
            serving_with_requests_in(&db, &dir.path().join("serve.log"), 3, &env);
        let approved = server.post(
            &format!("/payment-requests/{}/approve", requests[0]),
            &sender,
            &json!({}),
        );
        assert_eq!(approved.status, 200, "{}", approved.text);
        // Its payout's result written first: the copy holds the approval and its payout.
        crate::support::process::wait_for_payouts(&server, &admin, &requests[..1]);
        // Every name beside it taken for the next minute (files of someone's, left alone),
        // before the deletion: a write of the server's own after it (the tokens' use, flushed
        // every few seconds) tries the copy at once, and raced the test for the names.
        let now = remit::time::now_unix();
        let taken: Vec<std::path::PathBuf> = (now..now + 60)
            .flat_map(|s| {
                ["", "-2", "-3"].map(|n| dir.path().join(format!("remit.db.rescued-{s}{n}")))
            })
            .filter(|_| blocked)
            .collect();
        for path in &taken {
            std::fs::write(path, b"someone's").unwrap();
        }
        std::fs::remove_file(&db).unwrap();
        if write_after {
            assert_approval_refused_as_missing(&server, &sender, &requests[1]);
        }
        if blocked {
            assert!(
                server.log().contains("no copy of it could be made"),
                "{}",
                server.log()
            );
            for path in &taken {
                assert_eq!(std::fs::read(path).unwrap(), b"someone's", "left as it was");
                std::fs::remove_file(path).unwrap();
            }
        }
        assert!(server.terminate().success(), "{}", server.log());
        let text = server.log();
        let rescued: Vec<std::path::PathBuf> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains("remit.db.rescued-"))
            .collect();
        assert_eq!(rescued.len(), 1, "{rescued:?}\n{text}");
        assert!(
            text.contains(
                "was deleted while this server held it: every commit it holds is copied to"
            ),
            "{text}"
        );
        std::fs::rename(&rescued[0], &db).unwrap();
        assert_eq!(
            check(&db, TEST_KEY).code,
            Some(0),
            "write after: {write_after}"
        );
        let server = Server::start(&db, TEST_KEY, &dir.path().join("serve-2.log"), &[]);
        let r = server.get(&format!("/payment-requests/{}", requests[0]), &sender);
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(
            r.body["status"] == "approved" || r.body["status"] == "paid",
            "the approval acknowledged before the deletion is there: {}",
            r.text
        );
        let r = server.get(&format!("/payment-requests/{}", requests[1]), &sender);
        assert_eq!(r.body["status"], "pending_approval", "{}", r.text);
    }
}

/// A database named through a symbolic link, the file moved and the link pointed at its new
/// name while serving: the path still finds the file, but SQLite keeps the log beside the name
/// it opened, and after a crash a new start looks beside the new name: the writes of the
/// meantime were answered 201 and lost. Now they are refused until the file is back.
#[cfg(unix)]
#[test]
fn a_database_file_moved_under_its_link_takes_no_writes() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let file = real.join("v1.db");
    let link = dir.path().join("link.db");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    let (server, sender, requests) = serving_with_requests(&link, &dir.path().join("serve.log"), 2);
    let moved = real.join("v1m.db");
    std::fs::rename(&file, &moved).unwrap();
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(&moved, &link).unwrap();
    assert_approval_refused_as_missing(&server, &sender, &requests[0]);
}

/// A server on a new ledger at `db` with a funded escrow and `n` payment requests waiting for
/// its sender's approval: the server, the sender's token and the requests.
fn serving_with_requests(
    db: &std::path::Path,
    log: &std::path::Path,
    n: usize,
) -> (Server, String, Vec<String>) {
    let (server, _admin, sender, requests) = serving_with_requests_in(db, log, n, &[]);
    (server, sender, requests)
}

/// `serving_with_requests` with these settings for the server; the admin's token too.
fn serving_with_requests_in(
    db: &std::path::Path,
    log: &std::path::Path,
    n: usize,
    env: &[(&str, &str)],
) -> (Server, String, String, Vec<String>) {
    let (admin, sender, agent) = kiosk_users(db, TEST_KEY);
    let server = Server::start(db, TEST_KEY, log, env);
    let escrow = funded_escrow(
        &server,
        &sender,
        &agent,
        500,
        "0712345678",
        "Wanjiru",
        &["rent"],
    );
    let requests = pending_requests(&server, &agent, &escrow, n);
    (server, admin, sender, requests)
}

/// The approval of `request` is refused (500) and `/health` says the file is missing (503).
fn assert_approval_refused_as_missing(server: &Server, sender: &str, request: &str) {
    let refused = server.post(
        &format!("/payment-requests/{request}/approve"),
        sender,
        &json!({}),
    );
    assert_eq!(refused.status, 500, "{}", refused.text);
    let health = server.get("/health", "");
    assert_eq!(health.status, 503, "{}", health.text);
    assert_eq!(health.body["db"], "missing", "{}", health.text);
}

/// Guards against: a server started on a clock set ahead (a kiosk's board without its clock
/// battery, NTP not yet heard) forgot at its start the idempotency keys of the minutes before,
/// as older than their 48 hours by that clock, and a client's retry once NTP had set the clock
/// right made its request a second time. The first pass over the keys waits an hour after the
/// start. (The restart on a clock three days ahead is made here by dating the key three days
/// back, which is what that clock reads of it.)
#[test]
fn a_restart_on_a_clock_set_ahead_forgets_no_idempotency_key_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let (_, sender, _) = kiosk_users(&db, TEST_KEY);
    let log = dir.path().join("serve.log");
    let body = json!({"recipientPhone": "0712345678", "recipientName": "Wanjiru",
        "totalAmountUsd": 20, "categories": ["rent"]});
    let mut server = Server::start(&db, TEST_KEY, &log, &[]);
    let first = server.post_with_key("/escrows", &sender, &body, "the-bill-of-monday");
    assert_eq!(first.status, 201, "{}", first.text);
    assert!(server.terminate().success());
    let three_days_back = remit::time::rfc3339(remit::time::now_unix() - 3 * 86_400);
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute(
            "UPDATE idempotency_keys SET created_at = ?1",
            [&three_days_back],
        )
        .unwrap();
    let server = Server::start(&db, TEST_KEY, &log, &[]);
    // The passes every job but this one makes at the start are done within a moment; a pass
    // over the keys at the start said so in the log.
    let forgot = || forgot_in(&server);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while !forgot() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!forgot(), "{}", server.log());
    let again = server.post_with_key("/escrows", &sender, &body, "the-bill-of-monday");
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(
        again.body["escrowId"], first.body["escrowId"],
        "{}",
        again.text
    );
    drop(server);
    // Guards against: a server restarted more often than hourly never forgot a key. A start
    // whose clock agrees with the newest key kept (written within the hour) passes over the
    // keys at once: the one of three days back is forgotten.
    let mut server = Server::start(&db, TEST_KEY, &log, &[]);
    let today = server.post_with_key("/escrows", &sender, &body, "the-bill-of-today");
    assert_eq!(today.status, 201, "{}", today.text);
    assert!(server.terminate().success());
    let log = dir.path().join("serve-2.log");
    let server = Server::start(&db, TEST_KEY, &log, &[]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !forgot_in(&server) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        server.log().contains("forgot 1 expired idempotency keys"),
        "{}",
        server.log()
    );
    let kept: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT count(*) FROM idempotency_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept, 1);
    // The one kept is today's: its retry is answered from it, Monday's runs again.
    let again = server.post_with_key("/escrows", &sender, &body, "the-bill-of-today");
    assert_eq!(
        again.body["escrowId"], today.body["escrowId"],
        "{}",
        again.text
    );
    let monday = server.post_with_key("/escrows", &sender, &body, "the-bill-of-monday");
    assert_eq!(monday.status, 201, "{}", monday.text);
    assert_ne!(
        monday.body["escrowId"], first.body["escrowId"],
        "{}",
        monday.text
    );
}

fn forgot_in(server: &Server) -> bool {
    server.log().contains("expired idempotency keys")
}

/// Guards against: another process holding the database's write lock (a `sqlite3` shell left
/// in a transaction, a script's connection) made every write `503 busy` while `/health` said
/// `ok`: reads go on under the lock, and the health check only read. It says db `locked` now,
/// and `ok` again once a write commits.
#[test]
fn a_write_lock_held_by_another_process_is_said_by_health() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let server = Server::start(&db, TEST_KEY, &dir.path().join("serve.log"), &[]);
    let admin = server.admin_token();
    let set_rate = |rate: f64| {
        server.call(
            "PUT",
            "/fx-rates/USD-KES",
            Some(&admin),
            Some(&json!({ "rate": rate })),
        )
    };
    assert_eq!(set_rate(130.0).status, 200);
    assert_eq!(server.get("/health", "").status, 200);
    let holder = rusqlite::Connection::open(&db).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let refused = set_rate(131.0);
    assert_eq!(refused.status, 503, "{}", refused.text);
    assert_eq!(refused.body["code"], "busy", "{}", refused.text);
    let health = server.get("/health", "");
    assert_eq!(health.status, 503, "{}", health.text);
    assert_eq!(health.body["status"], "degraded", "{}", health.text);
    assert_eq!(health.body["db"], "locked", "{}", health.text);
    assert!(
        health.body["error"]
            .as_str()
            .unwrap()
            .contains("another process holds the database's write lock"),
        "{}",
        health.text
    );
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    assert_eq!(set_rate(132.0).status, 200);
    let health = server.get("/health", "");
    assert_eq!(health.status, 200, "{}", health.text);
    assert_eq!(health.body["db"], "ok", "{}", health.text);
}
