//! The command line as an operator meets it: `--demo` on a database that already has users,
//! `token issue` and `token revoke` with a whole token, `fx get`, `user list`'s header,
//! errors that name the option typed, `check --key-file` for a backup whose key is elsewhere,
//! and a start that cannot listen leaving nothing behind.

use crate::support::process::*;
use crate::support::TEST_KEY;

/// A new key for rotations (drawn at random: a key typed by hand is refused).
const ROTATED_KEY: &str = "b66c0c565856a0d943d60fd109e7156c2605ca06fcc0509b6032e455128caed2";

fn cli(db: &std::path::Path, args: &[&str]) -> Ran {
    let mut cmd = remit(db.parent().unwrap(), Some(TEST_KEY));
    cmd.args(args).arg("--db").arg(db);
    run(cmd)
}

#[test]
fn demo_data_goes_into_a_database_that_already_has_the_demo_phone_and_again_after_that() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    // The walkthrough's recipient has the number the demo would use.
    user_add(&db, TEST_KEY, "recipient", "Wanjiru", Some("0712345678"));
    let admin = user_add(&db, TEST_KEY, "admin", "Operator", None);
    let mut earlier: Option<String> = None;
    for round in 0..2 {
        let log = dir.path().join(format!("serve-{round}.log"));
        let mut server = Server::start_with(&db, TEST_KEY, &log, &[], &["--demo"]);
        let tokens: Vec<&String> = server
            .stdout
            .iter()
            .filter(|l| {
                l.trim_start().starts_with("sender")
                    || l.trim_start().starts_with("recipient")
                    || l.trim_start().starts_with("agent")
            })
            .collect();
        assert_eq!(tokens.len(), 3, "round {round}: {:?}", server.stdout);
        // Said when the ledger becomes a demo's (it held users of its own), not again.
        let said = server
            .stdout
            .iter()
            .filter(|l| l.contains("is a demo ledger from now on"))
            .count();
        assert_eq!(said, usize::from(round == 0), "{:?}", server.stdout);
        let recipient_token = tokens
            .iter()
            .find(|l| l.trim_start().starts_with("recipient"))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap()
            .to_string();
        let me = server.get("/me", &recipient_token);
        assert_eq!(me.status, 200, "{}", me.text);
        assert_eq!(me.body["name"], "Wanjiru (demo recipient)");
        // The tokens printed at an earlier `--demo` start no longer work.
        if let Some(old) = earlier.replace(recipient_token.clone()) {
            assert_eq!(server.get("/me", &old).status, 401, "round {round}");
        }
        // The walkthrough's recipient kept their number; the demo one got another.
        let users = server.get("/users?limit=100", &admin);
        let phones: Vec<&str> = users.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["role"] == "recipient")
            .map(|u| u["phone"].as_str().unwrap())
            .collect();
        assert_eq!(phones.len(), 2, "{}", users.text);
        assert!(
            phones.contains(&"+254712345678") && phones.iter().any(|p| p.starts_with("+254799000")),
            "{phones:?}"
        );
        let escrows = server.get("/escrows?limit=100", &admin);
        assert_eq!(
            escrows.body["items"].as_array().unwrap().len(),
            3,
            "the demo escrows, once: {}",
            escrows.text
        );
        // Its cash was taken as a kiosk takes it: each deposit has its receipt number (they
        // had none: a reprinted receipt read "Receipt number —").
        let deposits = server.get("/deposits?limit=100", &admin);
        let cash: Vec<&serde_json::Value> = deposits.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["source"] == "cash")
            .collect();
        assert_eq!(cash.len(), 2, "{}", deposits.text);
        for d in cash {
            assert!(d["receiptNumber"].is_string(), "{d}");
        }
        // A demo shows a failed payment: to the phone its start names, unless the simulator's
        // accounts are set (nothing failed by default, and nothing said so).
        assert!(
            server
                .stdout
                .iter()
                .any(|l| l.starts_with("Demo payouts: one to 0722000333 fails")),
            "{:?}",
            server.stdout
        );
        // The admin's token is not printed again: how to get another is.
        assert!(
            server
                .stdout
                .iter()
                .any(|l| l.contains("`remit token issue USER --db")),
            "{:?}",
            server.stdout
        );
        if round == 0 {
            let token_of = |role: &str| {
                tokens
                    .iter()
                    .find(|l| l.trim_start().starts_with(role))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .unwrap()
                    .to_string()
            };
            let active = escrows.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["status"] == "active")
                .unwrap()["escrowId"]
                .as_str()
                .unwrap()
                .to_string();
            let r = server.post(
                "/payment-requests",
                &token_of("agent"),
                &serde_json::json!({"escrowId": active, "category": "electricity", "amountKes": 1000,
                    "merchantName": "Mama Mboga", "merchantAccount": {"type": "phone", "number": "0722 000 333"}}),
            );
            assert_eq!(r.status, 201, "{}", r.text);
            let id = r.body["paymentRequestId"].as_str().unwrap().to_string();
            let approved = server.post(
                &format!("/payment-requests/{id}/approve"),
                &token_of("sender"),
                &serde_json::json!({}),
            );
            assert_eq!(approved.status, 200, "{}", approved.text);
            wait_for_payouts(&server, &admin, std::slice::from_ref(&id));
            let r = server.get(&format!("/payment-requests/{id}"), &admin);
            assert_eq!(r.body["status"], "failed", "{}", r.text);
        }
        // The demo's paid payout moved no money, and says so as the simulator's do.
        let payouts = server.get("/payouts?status=succeeded&limit=100", &admin);
        let paid = payouts.body["items"].as_array().unwrap();
        assert_eq!(paid.len(), 1, "once: {}", payouts.text);
        for payout in paid {
            assert_eq!(payout["simulated"], true, "{payout}");
            assert!(
                payout["mpesaReceipt"].as_str().unwrap().starts_with("SIM"),
                "{payout}"
            );
        }
        server.terminate();
    }
    assert_eq!(check(&db, TEST_KEY).code, Some(0));
}

/// The demo's waiting request waits `REMIT_REQUEST_TTL_H`, as one asked for over HTTP does
/// (it waited the default 72 h whatever the setting).
#[test]
fn demo_requests_wait_as_long_as_the_setting_says() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let admin = user_add(&db, TEST_KEY, "admin", "Operator", None);
    let server = Server::start_with(
        &db,
        TEST_KEY,
        &dir.path().join("serve.log"),
        &[("REMIT_REQUEST_TTL_H", "1")],
        &["--demo"],
    );
    let waiting = server.get("/payment-requests?status=pending_approval", &admin);
    let items = waiting.body["items"].as_array().unwrap();
    assert!(!items.is_empty(), "{}", waiting.text);
    for request in items {
        let at =
            |field: &str| remit::time::parse_rfc3339(request[field].as_str().unwrap()).unwrap();
        assert_eq!(at("expiresAt") - at("createdAt"), 3_600, "{request}");
    }
}

#[test]
fn a_token_revoked_from_the_command_line_beside_a_running_server_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let token = user_add(&db, TEST_KEY, "recipient", "Baraka", Some("0711 222 333"));
    let other = user_add(&db, TEST_KEY, "agent", "Kiosk", None);
    let mut server = Server::start(&db, TEST_KEY, &dir.path().join("serve.log"), &[]);
    // Seen, so remembered by the server.
    for t in [&token, &other, &token] {
        assert_eq!(server.get("/me", t).status, 200);
    }
    let revoked = cli(&db, &["token", "revoke", &token]);
    assert_eq!(revoked.code, Some(0), "{revoked}");
    let me = server.get("/me", &token);
    assert_eq!(
        (me.status, me.body["code"].as_str()),
        (401, Some("unauthenticated")),
        "{}",
        me.text
    );
    // The other tokens it remembered still work (read again).
    assert_eq!(server.get("/me", &other).status, 200);
    server.terminate();
}

/// Idempotency keys are kept under a secret of the ledger (never as a plain digest, which
/// trying every phone undoes), one a key rotation leaves as it was: a retry after a rotation
/// is answered from its key, not run again; the same key with another request is refused.
#[test]
fn an_idempotent_retry_after_a_key_rotation_is_answered_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let sender = user_add(&db, TEST_KEY, "sender", "Amina", None);
    let body = serde_json::json!({"recipientPhone": "0733 987 654", "recipientName": "Zawadi",
        "totalAmountUsd": 40, "categories": ["rent"]});
    let header = "escrow-254733987654";
    let mut server = Server::start(&db, TEST_KEY, &dir.path().join("serve.log"), &[]);
    let made = server.post_with_key("/escrows", &sender, &body, header);
    assert_eq!(made.status, 201, "{}", made.text);
    server.terminate();
    let plain = format!("sha256 {}", sha256_hex(header));
    let file = rusqlite::Connection::open(&db).unwrap();
    let kept: String = file
        .query_row("SELECT key FROM idempotency_keys", [], |r| r.get(0))
        .unwrap();
    assert!(kept.starts_with("hmac ") && kept != plain, "{kept}");
    drop(file);
    let new_key = dir.path().join("new.key");
    std::fs::write(&new_key, format!("{ROTATED_KEY}\n")).unwrap();
    let rotated = rotate_key(dir.path(), Some(TEST_KEY), &new_key, &db);
    assert_eq!(rotated.code, Some(0), "{rotated}");
    let mut server = Server::start(&db, ROTATED_KEY, &dir.path().join("serve2.log"), &[]);
    let again = server.post_with_key("/escrows", &sender, &body, header);
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(
        again.body["escrowId"], made.body["escrowId"],
        "{}",
        again.text
    );
    let other = serde_json::json!({"recipientPhone": "0733 987 654", "recipientName": "Zawadi",
        "totalAmountUsd": 41, "categories": ["rent"]});
    let reused = server.post_with_key("/escrows", &sender, &other, header);
    assert_eq!(reused.status, 422, "{}", reused.text);
    let listed = server.get("/escrows", &sender);
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(1));
    server.terminate();
}

/// The SHA-256 of `text`, in hex.
fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `token revoke` says so beside the ledger before its commit and after it. Killed between the
/// two, its revocation committed and its second word never written, the server had read the
/// token again after the first word and believed it for 10 s more: after the first word it
/// remembers no token until it would have forgotten it anyway. (The killed command is played by
/// hand: the word written, then the token revoked in the file, no second word.)
#[test]
fn a_token_revoked_by_a_command_killed_before_its_last_word_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let token = user_add(&db, TEST_KEY, "recipient", "Baraka", Some("0711 222 333"));
    let mut server = Server::start(&db, TEST_KEY, &dir.path().join("serve.log"), &[]);
    assert_eq!(server.get("/me", &token).status, 200);
    // The command's first word, and the server's next read of the token, not yet revoked.
    {
        use std::io::Write;
        let mut word = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(dir.path().join("remit.db.revoked"))
            .unwrap();
        writeln!(word, "2026-12-07T00:00:00.000Z").unwrap();
    }
    assert_eq!(server.get("/me", &token).status, 200);
    // The revocation committed; the command killed before its second word.
    let file = rusqlite::Connection::open(&db).unwrap();
    file.busy_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    let changed = file
        .execute(
            "UPDATE api_tokens SET revoked_at = '2026-12-07T00:00:00.000Z' WHERE prefix = ?1",
            [&token[..12]],
        )
        .unwrap();
    assert_eq!(changed, 1);
    let me = server.get("/me", &token);
    assert_eq!(me.status, 401, "{}", me.text);
    server.terminate();
}

/// A command beside a running server leaves the server's log as it is: its last checkpoint
/// cut the log the server had grown before its first write to nothing (and held the server's
/// writer while it copied). Without a server, the command's stop still leaves the file alone
/// holding everything.
#[test]
fn a_command_beside_a_running_server_leaves_its_grown_log_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    user_add(&db, TEST_KEY, "agent", "Kiosk", None);
    let wal = dir.path().join("remit.db-wal");
    let wal_len = || std::fs::metadata(&wal).map_or(0, |m| m.len());
    let mut server = Server::start(&db, TEST_KEY, &dir.path().join("serve.log"), &[]);
    let grown = wal_len();
    assert!(
        grown >= 1 << 20,
        "the server grows its log at start: {grown}"
    );
    for args in [
        &["user", "list"][..],
        &["user", "add", "--role", "agent", "--name", "Second kiosk"],
        &["fx", "get"],
    ] {
        let ran = cli(&db, args);
        assert_eq!(ran.code, Some(0), "{args:?}: {ran}");
        assert_eq!(wal_len(), grown, "{args:?} left the server's log as it was");
    }
    server.terminate();
    assert_eq!(wal_len(), 0, "the server's clean stop empties its log");
    let ran = cli(
        &db,
        &["user", "add", "--role", "agent", "--name", "Third kiosk"],
    );
    assert_eq!(ran.code, Some(0), "{ran}");
    assert_eq!(
        wal_len(),
        0,
        "alone, a command's stop empties the log it wrote"
    );
}

/// A command of a newer remit run while a server of the older one holds the ledger (the new
/// binary installed before the service was restarted, and the nightly backup or a `user add`
/// runs) upgraded the schema under that server, which went on writing by the old one. Refused,
/// saying to stop the server, the file untouched; once no server holds it, the command
/// upgrades it. (The older server is stood in for by its lock, held here, on a file taken back
/// to the schema before.)
#[test]
fn a_command_does_not_upgrade_a_ledger_an_older_server_holds() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    user_add(&db, TEST_KEY, "agent", "Kiosk", None);
    let version = |db: &std::path::Path| -> u32 {
        read_only(db)
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    };
    let latest = remit::store::latest_schema_version();
    assert_eq!(version(&db), latest);
    crate::support::back_to_the_schema_before(&db);
    // A server's lock: an exclusive lock on `remit.db.lock`, as `serve` holds it.
    let server = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.path().join("remit.db.lock"))
        .unwrap();
    server.lock().unwrap();
    for args in [
        &["user", "list"][..],
        &["user", "add", "--role", "agent", "--name", "Second kiosk"],
    ] {
        let ran = cli(&db, args);
        assert_eq!(ran.code, Some(2), "{args:?}: {ran}");
        assert!(
            ran.stderr
                .contains("a server (of the remit before) holds it: stop the server"),
            "{args:?}: {ran}"
        );
        assert_eq!(version(&db), latest - 1, "{args:?} upgraded the file");
    }
    drop(server);
    let ran = cli(&db, &["user", "list"]);
    assert_eq!(ran.code, Some(0), "{ran}");
    assert_eq!(version(&db), latest);
}

#[test]
fn tokens_are_issued_by_id_or_phone_and_revoked_by_prefix_or_whole() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    user_add(&db, TEST_KEY, "recipient", "Baraka", Some("0711 222 333"));
    let list = cli(&db, &["user", "list"]);
    assert_eq!(list.code, Some(0), "{list}");
    let mut lines = list.stdout.lines();
    assert_eq!(
        lines.next(),
        Some("USER\tROLE\tNAME\tPHONE\tTOKENS\tSMS_LANGUAGE"),
        "{list}"
    );
    let row: Vec<&str> = lines
        .find(|l| l.contains("Baraka"))
        .map(|l| l.split('\t').collect())
        .unwrap();
    assert_eq!(
        row[1..4],
        ["recipient", "Baraka", "+254711222333"],
        "{list}"
    );
    assert!(row[4].starts_with("rmt_"), "{list}");
    assert_eq!(row[5], "en", "{list}");
    let user_id = row[0].to_string();
    let by_phone = cli(&db, &["token", "issue", "+254 711 222 333"]);
    assert_eq!(by_phone.code, Some(0), "{by_phone}");
    let token = by_phone.stdout.trim().to_string();
    assert!(token.starts_with("rmt_"), "{by_phone}");
    let by_id = cli(&db, &["token", "issue", &user_id]);
    assert_eq!(by_id.code, Some(0), "{by_id}");
    let unknown = cli(&db, &["token", "issue", "0700 000 000"]);
    assert_ne!(unknown.code, Some(0), "{unknown}");
    // Said without the number (what the CLI writes may be kept in a log).
    assert!(
        unknown
            .stderr
            .contains("no user has that phone number: `remit user list`")
            && !unknown.stderr.contains("0700"),
        "{unknown}"
    );
    // An id as typed is quoted, control characters escaped, not sent to the terminal.
    let odd = cli(&db, &["token", "issue", "usr_\u{1b}[2J\u{7}"]);
    assert_eq!(odd.code, Some(2), "{odd}");
    assert!(
        odd.stderr.contains("no user \"usr_\\u{1b}[2J\\u{7}\"") && !odd.stderr.contains('\u{1b}'),
        "{odd}"
    );
    // Less than a prefix says what a prefix is (it said "token not found").
    let short = cli(&db, &["token", "revoke", &token[..6]]);
    assert_eq!(short.code, Some(2), "{short}");
    assert!(
        short
            .stderr
            .contains("shorter than a token's prefix: give its first 12 characters"),
        "{short}"
    );
    // A whole token with a slip at its end is no token: its first characters are not enough.
    let slipped = cli(&db, &["token", "revoke", &format!("{token}xx")]);
    assert_ne!(slipped.code, Some(0), "{slipped}");
    assert!(slipped.stderr.contains("not found"), "{slipped}");
    // The whole token revokes it.
    let revoked = cli(&db, &["token", "revoke", &token]);
    assert_eq!(revoked.code, Some(0), "{revoked}");
    assert!(
        revoked.stdout.contains(&token[..12]) && !revoked.stdout.contains(&token),
        "{revoked}"
    );
    let list = cli(&db, &["user", "list"]).stdout;
    assert!(
        list.contains(&format!("{} (revoked)", &token[..12])),
        "{list}"
    );
    let again = cli(&db, &["token", "revoke", &token[..12]]);
    assert_eq!(again.code, Some(0), "{again}");
    assert!(again.stdout.contains("already revoked"), "{again}");
}

#[test]
fn fx_get_and_set_take_the_pair_in_any_case() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    user_add(&db, TEST_KEY, "admin", "Operator", None);
    let got = cli(&db, &["fx", "get"]);
    assert_eq!(got.code, Some(0), "{got}");
    assert!(
        got.stdout.contains("USD-KES 150") && got.stdout.contains("default"),
        "{got}"
    );
    let set = cli(&db, &["fx", "set", "usd-kes", "152.25"]);
    assert_eq!(set.code, Some(0), "{set}");
    let got = cli(&db, &["fx", "get", "usd-kes"]);
    assert!(got.stdout.starts_with("USD-KES 152.25 (set "), "{got}");
    let wrong = cli(&db, &["fx", "set", "EUR-KES", "160"]);
    assert_ne!(wrong.code, Some(0));
    assert!(wrong.stderr.contains("USD-KES"), "{wrong}");
}

#[test]
fn a_phone_already_used_is_refused_naming_the_option_typed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    user_add(&db, TEST_KEY, "recipient", "Wanjiru", Some("0712345678"));
    let again = cli(
        &db,
        &[
            "user",
            "add",
            "--role",
            "recipient",
            "--name",
            "Other",
            "--phone",
            "0712 345 678",
        ],
    );
    assert_ne!(again.code, Some(0), "{again}");
    assert!(again.stderr.contains("--phone"), "{again}");
    assert!(!again.stderr.contains("panicked"), "{again}");
}

/// Guards against: `user list` and `fx get`, which only read, opened a backup through the
/// store: its bytes changed (made a ledger with a write-ahead log) and a log, its shared memory
/// and a lock file were left beside it.
#[test]
fn commands_that_only_read_leave_a_backup_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    user_add(&db, TEST_KEY, "agent", "Kiosk One", None);
    let copies = tempfile::tempdir().unwrap();
    let backup = copies.path().join("remit-backup.db");
    let made = cli(&db, &["backup", backup.to_str().unwrap()]);
    assert_eq!(made.code, Some(0), "{made}");
    let bytes = std::fs::read(&backup).unwrap();
    let listed = cli(&backup, &["user", "list"]);
    assert_eq!(listed.code, Some(0), "{listed}");
    assert!(listed.stdout.contains("Kiosk One"), "{listed}");
    let rate = cli(&backup, &["fx", "get"]);
    assert_eq!(rate.code, Some(0), "{rate}");
    assert!(
        std::fs::read(&backup).unwrap() == bytes,
        "the backup's bytes changed"
    );
    let beside: Vec<_> = std::fs::read_dir(copies.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        beside,
        vec![std::ffi::OsString::from("remit-backup.db")],
        "left beside the backup"
    );
    // The ledger itself still goes through the store (and its log stays a ledger's).
    let ledger = cli(&db, &["user", "list"]);
    assert!(ledger.stdout.contains("Kiosk One"), "{ledger}");
}

#[test]
fn a_backup_is_checked_with_its_key_kept_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    user_add(&db, TEST_KEY, "admin", "Operator", None);
    let copy = dir.path().join("offsite").join("copy.db");
    // Into a directory that is not there yet: named plainly, nothing made.
    let refused = cli(&db, &["backup", copy.to_str().unwrap()]);
    assert_ne!(refused.code, Some(0), "{refused}");
    assert!(
        refused.stderr.contains("offsite")
            && refused.stderr.contains("not a directory that exists"),
        "{refused}"
    );
    // A directory not made yet, named as a directory (`offsite/`): said before any copy.
    let as_dir = format!("{}/", copy.parent().unwrap().display());
    let refused = cli(&db, &["backup", &as_dir]);
    assert_eq!(refused.code, Some(2), "{refused}");
    assert!(
        refused
            .stderr
            .contains("names a directory, and it does not exist"),
        "{refused}"
    );
    assert!(!copy.parent().unwrap().exists(), "{refused}");
    // The names of the files kept beside the database, there or not: a backup named as the
    // hot journal was deleted by SQLite (and kept the ledger unreadable until then), one
    // named as the key file left every later command unable to read the key.
    for suffix in ["-journal", ".key", "-wal", ".lock", ".revoked"] {
        let name = format!("{}{suffix}", db.display());
        let refused = cli(&db, &["backup", &name]);
        assert_eq!(refused.code, Some(2), "{suffix}: {refused}");
        assert!(
            refused.stderr.contains("is the name of the database's")
                && refused.stderr.contains("choose another name"),
            "{suffix}: {refused}"
        );
    }
    assert!(!dir.path().join("remit.db-journal").exists());
    // Through a link, the key file is read beside the link's name: that name is refused too.
    #[cfg(unix)]
    {
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(&db, &link).unwrap();
        let key_of_link = format!("{}.key", link.display());
        let refused = cli(&link, &["backup", &key_of_link]);
        assert_eq!(refused.code, Some(2), "{refused}");
        assert!(!std::path::Path::new(&key_of_link).exists(), "{refused}");
    }
    assert!(check(&db, TEST_KEY).code == Some(0));
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    let made = cli(&db, &["backup", copy.to_str().unwrap()]);
    assert_eq!(made.code, Some(0), "{made}");
    assert!(
        made.stdout.contains("apart from the backup")
            && !made.stdout.contains("keep the encryption key with it"),
        "{made}"
    );
    let key_file = dir.path().join("elsewhere.key");
    std::fs::write(&key_file, format!("{TEST_KEY}\n")).unwrap();
    // No ENCRYPTION_KEY, no key file beside the copy: only --key-file can open it.
    let mut cmd = remit(dir.path(), None);
    cmd.args(["check", "--db"])
        .arg(&copy)
        .arg("--key-file")
        .arg(&key_file);
    let ran = run(cmd);
    assert_eq!(ran.code, Some(0), "{ran}");
    let mut cmd = remit(dir.path(), None);
    cmd.args(["check", "--db"]).arg(&copy);
    assert_eq!(run(cmd).code, Some(2), "without its key it cannot be read");
    let bad = dir.path().join("bad.key");
    std::fs::write(&bad, "not a key").unwrap();
    let mut cmd = remit(dir.path(), None);
    cmd.args(["check", "--db"])
        .arg(&copy)
        .arg("--key-file")
        .arg(&bad);
    let ran = run(cmd);
    assert_ne!(ran.code, Some(0));
    assert!(ran.stderr.contains("--key-file"), "{ran}");
    // Served without its key, the copy is refused for the key it lacks, and no new key is made
    // beside it (one would pass for the copy's own).
    let mut cmd = remit(dir.path(), None);
    cmd.args(["serve", "--db"])
        .arg(&copy)
        .args(["--addr", "127.0.0.1:0"]);
    let ran = run(cmd);
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        ran.stderr
            .contains("no encryption key for the existing database"),
        "{ran}"
    );
    assert!(
        !remit::crypto::key_file_path(&copy).exists(),
        "a key file was made beside the copy"
    );
}

/// Only `serve` makes a ledger: `rotate-key` on a mistyped path says there is none and leaves
/// nothing behind, with a key or without one.
#[test]
fn rotate_key_on_a_path_without_a_database_makes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("new.key");
    std::fs::write(&key_file, format!("{}\n", ROTATED_KEY)).unwrap();
    for key in [Some(TEST_KEY), None] {
        let mut cmd = remit(dir.path(), key);
        cmd.args(["rotate-key", "--new-key-file"])
            .arg(&key_file)
            .args(["--db"])
            .arg(dir.path().join("nothere.db"));
        let ran = run(cmd);
        assert_eq!(ran.code, Some(2), "{ran}");
        assert!(ran.stderr.contains("no database at"), "{ran}");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.starts_with("nothere"))
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}

/// A database file this user may not write is refused at start in a sentence: SQLite opened it
/// read-only without a word, and the server answered reads and `/health` 200 while every write
/// was a 500. (Run as `nobody` when the tests run as root, whom permissions do not stop.)
#[cfg(unix)]
#[test]
fn a_database_this_user_may_not_write_is_refused_at_start() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    user_add(&db, TEST_KEY, "admin", "Admin", None);
    let root = is_root();
    // Everything beside it (its directory, lock files) may be written: only the file may not.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let mode = if path == db { 0o444 } else { 0o666 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    // Each command as a user other than the file's owner (`nobody` when the tests run as root).
    let as_another = |args: &[&str]| {
        let mut cmd = remit(dir.path(), Some(TEST_KEY));
        cmd.args(args).arg("--db").arg(&db);
        if root {
            cmd.uid(65534).gid(65534);
        }
        run(cmd)
    };
    let ran = as_another(&["serve", "--addr", "127.0.0.1:0"]);
    assert_ne!(ran.code, Some(0), "{ran}");
    assert!(
        ran.stderr.contains("cannot be written by this user") && !ran.stderr.contains("panicked"),
        "{ran}"
    );
    // The commands that only read it read it (they were refused in the same words).
    for (args, says) in [
        (&["user", "list"][..], "Admin"),
        (&["fx", "get"][..], "USD-KES"),
    ] {
        let ran = as_another(args);
        assert_eq!(ran.code, Some(0), "{args:?}: {ran}");
        assert!(ran.stdout.contains(says), "{args:?}: {ran}");
    }
    // One it may not even read is said so, not in SQLite's words of its own URI ("unable to
    // open database file: file:remit.db?immutable=1").
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o000)).unwrap();
    for args in [&["check"][..], &["user", "list"][..]] {
        let ran = as_another(args);
        assert_eq!(ran.code, Some(2), "{args:?}: {ran}");
        assert!(
            ran.stderr.contains("cannot be read by this user") && !ran.stderr.contains("sqlite"),
            "{args:?}: {ran}"
        );
    }
}

/// A command root runs on a ledger the service's user owns (`sudo remit user list`) leaves the
/// lock files it makes to the database's owner, as SQLite leaves its -wal and -shm: before,
/// they were root's (0600), and the service could neither start nor back up ("Permission
/// denied"). Then the service, as that user, starts and backs up. (Only root can give a file
/// away: run as root, as CI does; elsewhere there is nothing to test.)
#[cfg(unix)]
#[test]
fn lock_files_a_root_command_makes_belong_to_the_databases_owner() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::os::unix::process::CommandExt;
    if !is_root() {
        eprintln!("not root: the lock files' owner cannot differ from the database's");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let token = user_add(&db, TEST_KEY, "admin", "Admin", None);
    // The service's files, without the lock files (a fresh install, or a cleaned-up one).
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .extension()
            .is_some_and(|e| e == "lock" || e == "keylock")
        {
            std::fs::remove_file(&path).unwrap();
        } else {
            std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
        }
    }
    std::os::unix::fs::chown(dir.path(), Some(65534), Some(65534)).unwrap();
    let mut cmd = remit(dir.path(), Some(TEST_KEY));
    cmd.args(["user", "list", "--db"]).arg(&db);
    assert_eq!(run(cmd).code, Some(0));
    // And the word a revocation leaves for a running server.
    let mut cmd = remit(dir.path(), Some(TEST_KEY));
    cmd.args(["token", "revoke", &token, "--db"]).arg(&db);
    assert_eq!(run(cmd).code, Some(0));
    for lock in ["remit.db.keylock", "remit.db.lock", "remit.db.revoked"] {
        let path = dir.path().join(lock);
        if let Ok(meta) = std::fs::metadata(&path) {
            assert_eq!((meta.uid(), meta.gid()), (65534, 65534), "{lock}");
        }
    }
    assert!(dir.path().join("remit.db.keylock").exists());
    assert!(dir.path().join("remit.db.revoked").exists());
    let mut cmd = remit(dir.path(), Some(TEST_KEY));
    cmd.arg("backup")
        .arg(dir.path().join("copy.db"))
        .arg("--db")
        .arg(&db)
        .uid(65534)
        .gid(65534);
    let ran = run(cmd);
    assert_eq!(ran.code, Some(0), "the service's backup: {ran}");
    // One that root made before this was mended (root's, 0600) is said with what to do.
    let keylock = dir.path().join("remit.db.keylock");
    std::fs::remove_file(&keylock).unwrap();
    std::fs::write(&keylock, "").unwrap();
    std::fs::set_permissions(&keylock, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut cmd = remit(dir.path(), Some(TEST_KEY));
    cmd.args(["fx", "set", "USD-KES", "140", "--db"])
        .arg(&db)
        .uid(65534)
        .gid(65534);
    let ran = run(cmd);
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        ran.stderr.contains("belongs to another user") && ran.stderr.contains("chown"),
        "{ran}"
    );
}

/// A lock or revocations file that is a symbolic link is refused, never followed: root runs
/// commands in a directory the service's user owns, and a link planted there
/// (`remit.db.keylock` → `/etc/shadow`) had root change the mode of the file it leads to (and,
/// for a moment of this change's history, its owner).
#[cfg(unix)]
#[test]
fn a_lock_file_that_is_a_link_is_refused_and_what_it_leads_to_left_alone() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let token = user_add(&db, TEST_KEY, "admin", "Admin", None);
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("precious");
    std::fs::write(&target, "keep me").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
    for (link, args) in [
        ("remit.db.keylock", vec!["fx", "set", "USD-KES", "140"]),
        ("remit.db.lock", vec!["restore", "nothing.db"]),
        ("remit.db.revoked", vec!["token", "revoke", token.as_str()]),
    ] {
        let path = dir.path().join(link);
        let _ = std::fs::remove_file(&path);
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let mut cmd = remit(dir.path(), Some(TEST_KEY));
        cmd.args(&args).arg("--db").arg(&db);
        let ran = run(cmd);
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "{link}: {ran}");
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            "keep me",
            "{link}"
        );
        if link == "remit.db.revoked" {
            // The revocation is committed; the word for a running server could not be left.
            assert!(ran.stderr.contains("cannot write"), "{link}: {ran}");
        } else {
            assert_eq!(ran.code, Some(2), "{link}: {ran}");
            assert!(
                ran.stderr.contains("is a symbolic link") && ran.stderr.contains("remove it"),
                "{link}: {ran}"
            );
        }
        std::fs::remove_file(&path).unwrap();
    }
}

/// `check` reads a ledger file at a path that is not UTF-8, or holds `%`, `?` or `#`, as every
/// other command opens one: before, it said "the database path is not UTF-8" (exit 2), and
/// a daily check of such a ledger always alerted. It writes nothing beside it.
#[cfg(unix)]
#[test]
fn check_reads_a_ledger_at_any_path() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    user_add(&db, TEST_KEY, "admin", "Admin", None);
    let copy = dir.path().join("copy.db");
    let mut cmd = remit(dir.path(), Some(TEST_KEY));
    cmd.arg("backup").arg(&copy).arg("--db").arg(&db);
    assert_eq!(run(cmd).code, Some(0));
    let odd = dir
        .path()
        .join(std::ffi::OsStr::from_bytes(b"l\xff 100% ?#.db"));
    std::fs::copy(&copy, &odd).unwrap();
    let checked = check(&odd, TEST_KEY);
    assert_eq!(checked.code, Some(0), "{checked}");
    assert!(checked.stdout.contains("ok: the ledger holds"), "{checked}");
    let mut wal = odd.clone().into_os_string();
    wal.push("-wal");
    assert!(!std::path::Path::new(&wal).exists(), "check wrote a log");
}

/// Whether this process runs as root (its files' permissions do not stop it).
#[cfg(unix)]
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    let probe = tempfile::tempdir().unwrap();
    std::fs::metadata(probe.path()).unwrap().uid() == 0
}

/// A rotation read by a reader that went away (`remit rotate-key … | head -1`) still puts the
/// new key in the key file: it printed first, ended at its first line on the closed pipe, and
/// left the ledger under the new key and the key file under the old (the next start refused).
#[cfg(unix)]
#[test]
fn a_rotation_whose_reader_went_away_still_gives_the_key_file_the_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    user_add(&db, TEST_KEY, "admin", "Admin", None);
    let key_file = dir.path().join("remit.db.key");
    std::fs::write(&key_file, format!("{TEST_KEY}\n")).unwrap();
    let new_key = dir.path().join("new.key");
    std::fs::write(&new_key, format!("{ROTATED_KEY}\n")).unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = remit(dir.path(), None)
        .args(["rotate-key", "--new-key-file"])
        .arg(&new_key)
        .arg("--db")
        .arg(&db)
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(141), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(&key_file).unwrap().trim(),
        ROTATED_KEY,
        "the key file holds the old key"
    );
    let checked = check(&db, ROTATED_KEY);
    assert_eq!(checked.code, Some(0), "{checked}");
    let mut cmd = remit(dir.path(), None);
    cmd.arg("check").arg("--db").arg(&db);
    let by_file = run(cmd);
    assert_eq!(by_file.code, Some(0), "{by_file}");
}

/// A rotation of a ledger whose key is its key file keeps the old key beside it (0600) before
/// that file takes the new key: it opens every backup made before, and the key file was its
/// only copy. The key file keeps its mode, and the next command opens the ledger with it.
#[cfg(unix)]
#[test]
fn rotate_key_keeps_the_old_key_file_before_it_is_replaced() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    user_add(&db, TEST_KEY, "admin", "Admin", None);
    let key_file = dir.path().join("remit.db.key");
    std::fs::write(&key_file, format!("{TEST_KEY}\n")).unwrap();
    // Readable by the service's group: the new key file keeps that.
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let new_key = dir.path().join("new.key");
    std::fs::write(&new_key, format!("{}\n", ROTATED_KEY)).unwrap();
    std::fs::set_permissions(&new_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    // A lock file left readable by an older version is made owner-only when next taken.
    let lock = dir.path().join("remit.db.lock");
    std::fs::write(&lock, "").unwrap();
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o644)).unwrap();
    let backup = dir.path().join("before.db");
    let mut cmd = remit(dir.path(), None);
    cmd.arg("backup").arg(&backup).arg("--db").arg(&db);
    let made = run(cmd);
    assert_eq!(made.code, Some(0), "{made}");
    // The command it gives to check the copy later works as given (the copy has no key file
    // beside it: the ledger's is named).
    let given = made
        .stdout
        .split("Check it later with `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .unwrap_or_else(|| panic!("no check command: {made}"));
    let words: Vec<&str> = given.split(' ').collect();
    assert_eq!(words[..2], ["remit", "check"], "{made}");
    let mut cmd = remit(dir.path(), None);
    cmd.args(&words[1..]);
    let checked = run(cmd);
    assert_eq!(checked.code, Some(0), "`{given}`: {checked}");
    let kept_copies = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                name.starts_with("remit.db.key.before-rotate-")
            })
            .collect()
    };
    // The current key as the new one is refused before any copy of it is made.
    let refused = rotate_key(dir.path(), None, &key_file, &db);
    assert_eq!(refused.code, Some(2), "{refused}");
    assert!(
        refused.stderr.contains("the new key is the current key"),
        "{refused}"
    );
    assert!(kept_copies().is_empty(), "{refused}");
    // The names of this second and the next two are taken (a rotation a moment ago): the copy
    // takes the next free one.
    let now = remit::time::now_unix();
    for t in now..now + 3 {
        let stamp = remit::time::rfc3339(t).replace(':', "");
        std::fs::write(
            dir.path()
                .join(format!("remit.db.key.before-rotate-{stamp}")),
            "taken",
        )
        .unwrap();
    }
    let ran = rotate_key(dir.path(), None, &new_key, &db);
    assert_eq!(ran.code, Some(0), "{ran}");
    let kept: Vec<_> = kept_copies()
        .into_iter()
        .filter(|p| std::fs::read_to_string(p).unwrap() != "taken")
        .collect();
    assert_eq!(kept.len(), 1, "{ran}");
    assert!(kept[0].to_string_lossy().ends_with("-2"), "{kept:?}");
    // Its locks are owner-only: another user could lock a file it could open.
    for name in ["remit.db.lock", "remit.db.keylock"] {
        let mode = std::fs::metadata(dir.path().join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}: {mode:o}");
    }
    assert_eq!(
        std::fs::read_to_string(&kept[0]).unwrap().trim(),
        TEST_KEY,
        "the old key is the one kept"
    );
    let mode = std::fs::metadata(&kept[0]).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    assert!(
        ran.stdout.contains(&kept[0].display().to_string())
            && ran.stdout.contains("remit.db.key now holds the new key"),
        "{ran}"
    );
    assert_eq!(
        std::fs::read_to_string(&key_file).unwrap().trim(),
        ROTATED_KEY,
        "the key file holds the new key"
    );
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640, "the key file's mode: {mode:o}");
    assert!(
        !dir.path().join(".remit.db.key.new").exists(),
        "the new key's temporary file was left"
    );
    let mut cmd = remit(dir.path(), None);
    cmd.args(["user", "list", "--db"]).arg(&db);
    let listed = run(cmd);
    assert_eq!(listed.code, Some(0), "{listed}");
    // The old key, kept, still opens what was made before; the ledger takes the new one.
    let mut cmd = remit(dir.path(), None);
    cmd.args(["check", "--db"])
        .arg(&backup)
        .arg("--key-file")
        .arg(&kept[0]);
    let before = run(cmd);
    assert_eq!(before.code, Some(0), "{before}");
    assert_eq!(check(&db, ROTATED_KEY).code, Some(0));
    // Run again with a key file whose key no longer opens the ledger (the old one put back by
    // hand): refused, and the refusal keeps no copy of it (before, a copy more at every try).
    std::fs::write(&key_file, format!("{TEST_KEY}\n")).unwrap();
    let another = dir.path().join("another.key");
    std::fs::write(
        &another,
        format!("{}\n", remit::crypto::MasterKey::generate().to_hex()),
    )
    .unwrap();
    std::fs::set_permissions(&another, std::fs::Permissions::from_mode(0o600)).unwrap();
    let copies = kept_copies().len();
    let refused = rotate_key(dir.path(), None, &another, &db);
    assert_eq!(refused.code, Some(2), "{refused}");
    assert_eq!(kept_copies().len(), copies, "{refused}");
}

/// A key file that is a symbolic link is left as it is (the file it leads to is the operator's):
/// the rotation is done, and says where the new key must go before the next start. A new key
/// that is no file (a pipe, a device) is refused before anything changes: the ledger would be
/// under a key kept nowhere.
#[cfg(unix)]
#[test]
fn rotate_key_leaves_a_linked_key_file_and_says_so() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    user_add(&db, TEST_KEY, "admin", "Admin", None);
    let real = dir.path().join("keys.txt");
    std::fs::write(&real, format!("{TEST_KEY}\n")).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
    let key_file = dir.path().join("remit.db.key");
    let _ = std::fs::remove_file(&key_file);
    std::os::unix::fs::symlink(&real, &key_file).unwrap();
    let piped = rotate_key(dir.path(), None, std::path::Path::new("/dev/null"), &db);
    assert_eq!(piped.code, Some(2), "{piped}");
    assert!(piped.stderr.contains("not a pipe or a device"), "{piped}");
    // One not made yet is said so (it was told not to be a pipe).
    let missing = rotate_key(dir.path(), None, &dir.path().join("nowhere.key"), &db);
    assert_eq!(missing.code, Some(2), "{missing}");
    assert!(
        missing.stderr.contains("nowhere.key does not exist"),
        "{missing}"
    );
    assert_eq!(
        check(&db, TEST_KEY).code,
        Some(0),
        "the ledger kept its key"
    );
    let new_key = dir.path().join("new.key");
    std::fs::write(&new_key, format!("{ROTATED_KEY}\n")).unwrap();
    std::fs::set_permissions(&new_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let ran = rotate_key(dir.path(), None, &new_key, &db);
    assert_eq!(ran.code, Some(0), "{ran}");
    assert!(
        ran.stdout.contains("is a symbolic link or has other names")
            && ran.stdout.contains("Put the new key where it leads"),
        "{ran}"
    );
    assert!(std::fs::symlink_metadata(&key_file)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_to_string(&real).unwrap().trim(), TEST_KEY);
    assert_eq!(check(&db, ROTATED_KEY).code, Some(0));
}

/// Regression: an empty file at `--db` (a `touch`, a copy cut short) was taken as a new
/// database by every command: `fx set` or `user add` made a new ledger in it, readable by
/// every user of the machine. A directory was "no encryption key for the existing database".
#[test]
fn an_empty_file_or_a_directory_at_db_is_no_database_and_serve_makes_an_empty_one_private() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let folder = dir.path().join("folder.db");
    std::fs::create_dir(&folder).unwrap();
    let commands: [&[&str]; 5] = [
        &["fx", "set", "USD-KES", "140"],
        &["user", "add", "--role", "admin", "--name", "Y"],
        &["user", "list"],
        &["check"],
        &["backup", "copy.db"],
    ];
    for args in commands {
        for (path, says) in [
            (&empty, "is an empty file, not a remit database"),
            (&folder, "is a directory, not a database file"),
        ] {
            let mut cmd = remit(dir.path(), Some(TEST_KEY));
            cmd.args(args).arg("--db").arg(path);
            let ran = run(cmd);
            assert_eq!(ran.code, Some(2), "{args:?} {}: {ran}", path.display());
            assert!(ran.stderr.contains(says), "{args:?}: {ran}");
        }
        assert_eq!(
            std::fs::metadata(&empty).unwrap().len(),
            0,
            "{args:?} wrote"
        );
    }
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        left.iter().all(|n| n == "empty.db" || n == "folder.db"),
        "left behind: {left:?}"
    );
    // A `--db` whose directory is a file: said so (it was "the directory … does not exist").
    let mut cmd = remit(dir.path(), Some(TEST_KEY));
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--db"])
        .arg(empty.join("inner.db"));
    let ran = run(cmd);
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(ran.stderr.contains("is a file, not a directory"), "{ran}");
    // `serve` on a directory says so; on an empty file it makes the ledger, owner-only.
    let mut cmd = remit(dir.path(), Some(TEST_KEY));
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--db"])
        .arg(&folder);
    let ran = run(cmd);
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(ran.stderr.contains("is a directory"), "{ran}");
    // Nor does it take a device (it said `sqlite: disk I/O error`, and a fifo would hang it).
    let mut cmd = remit(dir.path(), Some(TEST_KEY));
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--db", "/dev/null"]);
    let ran = run(cmd);
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        ran.stderr
            .contains("/dev/null is not a regular file (a device, a pipe or a socket)"),
        "{ran}"
    );
    for lock in ["/dev/null.lock", "/dev/null.keylock"] {
        assert!(!std::path::Path::new(lock).exists(), "{lock} was made");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut server = Server::start(&empty, TEST_KEY, &dir.path().join("serve.log"), &[]);
        assert!(server.terminate().success(), "{}", server.log());
        for file in [empty.clone(), dir.path().join("empty.db-wal")] {
            if let Ok(meta) = std::fs::metadata(&file) {
                assert_eq!(
                    meta.permissions().mode() & 0o777,
                    0o600,
                    "{}",
                    file.display()
                );
            }
        }
        assert!(std::fs::metadata(&empty).unwrap().len() > 0);
    }
}

#[test]
fn a_start_that_cannot_listen_leaves_no_database_or_key_behind() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let db = dir.path().join("fresh.db");
    let mut cmd = remit(dir.path(), None);
    cmd.args(["serve", "--db"]).arg(&db).args(["--addr", &addr]);
    let ran = run(cmd);
    assert_ne!(ran.code, Some(0), "{ran}");
    assert!(ran.stderr.contains("cannot listen"), "{ran}");
    for leftover in ["fresh.db", "fresh.db.key", "fresh.db-wal", "fresh.db-shm"] {
        assert!(
            !dir.path().join(leftover).exists(),
            "{leftover} was left behind"
        );
    }
    drop(taken);
}

/// A database file missing or emptied beside a ledger's write-ahead log or key file is not made
/// a new ledger: `serve` made one, erased the log (the newest commits of the ledger, after a
/// crash) and printed a new admin token as if nothing had been lost.
#[test]
fn serve_makes_no_new_ledger_where_a_ledgers_log_or_key_file_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let wal = dir.path().join("remit.db-wal");
    let log = dir.path().join("serve.log");
    let mut server = Server::start(&db, TEST_KEY, &log, &[]);
    server.kill9();
    let logged = std::fs::metadata(&wal).unwrap().len();
    assert!(logged > 0, "no log after the crash");
    std::fs::write(&db, b"").unwrap();
    let serve = |key: Option<&str>| {
        let mut cmd = remit(dir.path(), key);
        cmd.args(["serve", "--addr", "127.0.0.1:0", "--db"])
            .arg(&db);
        run(cmd)
    };
    let ran = serve(Some(TEST_KEY));
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        ran.stderr.contains("remit.db is an empty file, but")
            && ran.stderr.contains("remit.db-wal beside it holds")
            && ran.stderr.contains("a new ledger here would erase them"),
        "{ran}"
    );
    assert_eq!(
        std::fs::metadata(&wal).unwrap().len(),
        logged,
        "the log was touched"
    );
    // The file gone and the log moved away, SQLite's shared-memory file left (a stop leaves
    // it), the key from a key file or from ENCRYPTION_KEY: a ledger was here.
    std::fs::remove_file(&db).unwrap();
    std::fs::rename(&wal, dir.path().join("kept-wal")).unwrap();
    std::fs::write(dir.path().join("remit.db.key"), TEST_KEY).unwrap();
    for key in [None, Some(TEST_KEY)] {
        let ran = serve(key);
        assert_eq!(ran.code, Some(2), "{ran}");
        assert!(
            ran.stderr
                .contains("remit.db is not there, but SQLite's files of a ledger are beside it")
                && ran.stderr.contains("remit.db-shm away first")
                && ran.stderr.contains("and its key file"),
            "{ran}"
        );
        assert!(!db.exists(), "a database was made");
    }
    // A key file and lock files alone (a key written to choose it, a start that could not
    // listen) are no ledger: not refused for that.
    std::fs::remove_file(dir.path().join("remit.db-shm")).unwrap();
    assert!(dir.path().join("remit.db.lock").exists());
    let mut server = Server::start(&db, TEST_KEY, &log, &[]);
    assert_eq!(server.get("/health", "").status, 200, "{}", server.log());
    assert!(server.terminate().success(), "{}", server.log());
}

/// A first start through a symbolic link to a file not made yet made the database (and its
/// log and shared memory) readable by every user: made owner-only where the link points.
#[cfg(unix)]
#[test]
fn a_first_start_through_a_link_makes_the_files_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("t")).unwrap();
    let link = dir.path().join("link.db");
    std::os::unix::fs::symlink("t/real.db", &link).unwrap();
    let mut server = Server::start(&link, TEST_KEY, &dir.path().join("serve.log"), &[]);
    assert_eq!(server.get("/health", "").status, 200);
    for name in ["real.db", "real.db-wal", "real.db-shm"] {
        let mode = std::fs::metadata(dir.path().join("t").join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
    assert!(server.terminate().success(), "{}", server.log());
}

/// SQLite's shared-memory file left read-only (by a command run while the database was) made
/// every write of the next server fail with "attempt to write a readonly database", naming no
/// file: the start is refused naming it and what to do.
#[cfg(unix)]
#[test]
fn a_read_only_shared_memory_file_is_named_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let log = dir.path().join("serve.log");
    let mut server = Server::start(&db, TEST_KEY, &log, &[]);
    server.kill9();
    let shm = dir.path().join("remit.db-shm");
    std::fs::set_permissions(&shm, std::fs::Permissions::from_mode(0o400)).unwrap();
    let mut cmd = remit(dir.path(), Some(TEST_KEY));
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--db"])
        .arg(&db);
    let ran = run(cmd);
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        ran.stderr
            .contains("remit.db-shm (SQLite's shared memory of")
            && ran.stderr.contains("may not be written (mode 400")
            && ran.stderr.contains("chmod 600"),
        "{ran}"
    );
    std::fs::set_permissions(&shm, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut server = Server::start(&db, TEST_KEY, &log, &[]);
    assert_eq!(server.get("/health", "").status, 200);
    assert!(server.terminate().success(), "{}", server.log());
}

/// A malformed `ENCRYPTION_KEY` at a first start is refused before the database file is made
/// (an empty `remit.db` was left, which `remit check` then called "a copy cut short").
#[test]
fn a_first_start_with_a_malformed_key_leaves_no_database_behind() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fresh.db");
    let mut cmd = remit(dir.path(), Some("abc"));
    cmd.args(["serve", "--db"])
        .arg(&db)
        .args(["--addr", "127.0.0.1:0"]);
    let ran = run(cmd);
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        ran.stderr
            .contains("ENCRYPTION_KEY: must be 64 hex characters"),
        "{ran}"
    );
    for leftover in ["fresh.db", "fresh.db.key", "fresh.db-wal", "fresh.db-shm"] {
        assert!(
            !dir.path().join(leftover).exists(),
            "{leftover} was left behind"
        );
    }
}

/// A script that starts `remit serve` and waits for `/health` to answer 200 finds what the start
/// prints (the first admin's token, the demo users' tokens, the listening line) already
/// written: until then `/health` says `starting` (it answered 200 from the first accepted
/// connection, while the demo users were still being made).
#[test]
fn health_is_ok_only_once_the_start_has_printed_its_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let out_path = dir.path().join("out.txt");
    // The port is chosen here (the server says its own only at the end of its start).
    let port = crate::support::free_port();
    let mut cmd = remit(dir.path(), Some(TEST_KEY));
    cmd.args(["serve", "--demo", "--db"])
        .arg(&db)
        .args(["--addr", &format!("127.0.0.1:{port}")])
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(dir.path().join("log.txt")).unwrap());
    let mut child = cmd.spawn().unwrap();
    let http = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut starting = 0;
    let printed = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no 200 from /health in 30 s"
        );
        assert!(child.try_wait().unwrap().is_none(), "remit serve ended");
        match http.get(&format!("http://127.0.0.1:{port}/health")).call() {
            Ok(answer) if answer.status() == 200 => {
                // Read at once: a line written before the answer is in the file.
                break std::fs::read_to_string(&out_path).unwrap();
            }
            Ok(mut answer) => {
                assert_eq!(answer.status(), 503);
                let body: serde_json::Value = answer.body_mut().read_json().unwrap();
                assert_eq!(body["status"], "starting", "{body}");
                assert_eq!(body["code"], "starting", "{body}");
                assert!(body["error"].is_string(), "{body}");
                starting += 1;
            }
            // Not listening yet.
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(1)),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    for line in [
        "First start: created an admin",
        "Demo users (new tokens, shown only now):",
        "is a demo ledger from now on",
        "remit listening on",
    ] {
        assert!(
            printed.contains(line),
            "/health said 200 ({starting} `starting` before) while stdout held only:\n{printed}"
        );
    }
    assert_eq!(
        printed.matches(" rmt_").count(),
        1 + printed.lines().filter(|l| l.contains("(demo")).count(),
        "{printed}"
    );
}

/// "Every command takes `--db PATH`": before the command as well as after it. The server's own
/// options before another command mean nothing, and are refused with a sentence that says where
/// they go (and nothing is written).
#[test]
fn db_goes_before_or_after_the_command_and_server_options_only_with_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    user_add(&db, TEST_KEY, "admin", "Operator", None);
    let first = run({
        let mut cmd = remit(dir.path(), Some(TEST_KEY));
        cmd.arg("--db")
            .arg(&db)
            .args(["user", "add", "--role", "sender", "--name", "Amina"]);
        cmd
    });
    assert_eq!(first.code, Some(0), "{first}");
    assert_eq!(
        first.stdout.trim().lines().count(),
        1,
        "only the token: {first}"
    );
    let second = cli(&db, &["user", "add", "--role", "agent", "--name", "Kiosk"]);
    assert_eq!(second.code, Some(0), "{second}");
    let listed = run({
        let mut cmd = remit(dir.path(), Some(TEST_KEY));
        cmd.arg("--db").arg(&db).args(["user", "list"]);
        cmd
    });
    assert_eq!(listed.code, Some(0), "{listed}");
    assert!(
        listed.stdout.contains("Amina") && listed.stdout.contains("Kiosk"),
        "both users in the one file: {listed}"
    );
    let checked = run({
        let mut cmd = remit(dir.path(), Some(TEST_KEY));
        cmd.arg("--db").arg(&db).arg("check");
        cmd
    });
    assert_eq!(checked.code, Some(0), "{checked}");

    let misplaced = run({
        let mut cmd = remit(dir.path(), Some(TEST_KEY));
        cmd.args(["--addr", "127.0.0.1:0"])
            .arg("--db")
            .arg(&db)
            .arg("check");
        cmd
    });
    assert_eq!(misplaced.code, Some(2), "{misplaced}");
    assert!(
        misplaced
            .stderr
            .contains("--addr is an option of the server"),
        "{misplaced}"
    );
    let elsewhere = dir.path().join("other.db");
    let demo = run({
        let mut cmd = remit(dir.path(), Some(TEST_KEY));
        cmd.arg("--demo")
            .arg("--db")
            .arg(&elsewhere)
            .args(["user", "list"]);
        cmd
    });
    assert_eq!(demo.code, Some(2), "{demo}");
    assert!(!elsewhere.exists(), "a refused command line writes nothing");
}

/// The ledger, its log and its backups are the owner's only: amounts and the audit log are not
/// encrypted, and SQLite gives a new file the process's default mode (world-readable).
#[cfg(unix)]
#[test]
fn the_ledger_its_log_and_its_backups_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    user_add(&db, TEST_KEY, "admin", "Admin", None);
    let agent = user_add(&db, TEST_KEY, "agent", "Kiosk", None);
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let mut server = Server::start(&db, TEST_KEY, &dir.path().join("serve.log"), &[]);
    let copy = dir.path().join("copy.db");
    let made = cli(&db, &["backup", copy.to_str().unwrap()]);
    assert_eq!(made.code, Some(0), "{made}");
    // The word of a revocation left for the server (it was 0644).
    let revoked = cli(&db, &["token", "revoke", &agent]);
    assert_eq!(revoked.code, Some(0), "{revoked}");
    for file in [
        db.clone(),
        dir.path().join("remit.db-wal"),
        copy,
        dir.path().join("remit.db.revoked"),
    ] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    assert!(server.terminate().success(), "{}", server.log());
}

/// A key file others can read opens the ledger's PII to them: said, though it still works.
#[cfg(unix)]
#[test]
fn a_key_file_other_users_can_read_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let mut server = Server::start(&db, TEST_KEY, &dir.path().join("serve.log"), &[]);
    assert!(server.terminate().success());
    let key_file = remit::crypto::key_file_path(&db);
    std::fs::write(&key_file, format!("{TEST_KEY}\n")).unwrap();
    let checked = |mode: u32| {
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(mode)).unwrap();
        let mut cmd = remit(dir.path(), None);
        cmd.args(["check", "--db"]).arg(&db);
        let ran = run(cmd);
        assert_eq!(ran.code, Some(0), "{ran}");
        ran.stderr.contains("can be read by other users")
    };
    assert!(!checked(0o600));
    assert!(checked(0o644));
    assert!(checked(0o640));
    // A backup's key kept elsewhere, given with --key-file, is said of too.
    let kept = dir.path().join("kept.key");
    std::fs::rename(&key_file, &kept).unwrap();
    let by_option = |mode: u32| {
        std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(mode)).unwrap();
        let mut cmd = remit(dir.path(), None);
        cmd.args(["check", "--db"])
            .arg(&db)
            .arg("--key-file")
            .arg(&kept);
        let ran = run(cmd);
        assert_eq!(ran.code, Some(0), "{ran}");
        ran.stderr.contains("can be read by other users")
    };
    assert!(!by_option(0o600));
    assert!(by_option(0o644));
}

/// A damaged file gets a sentence from every command, not SQLite's words alone ("sqlite:
/// database disk image is malformed" was all `user list`, `backup` and `serve` said).
#[test]
fn a_damaged_database_is_named_as_such_by_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    user_add(&db, TEST_KEY, "admin", "Admin", None);
    for i in 0..50 {
        user_add(&db, TEST_KEY, "agent", &format!("Kiosk {i}"), None);
    }
    let whole = std::fs::read(&db).unwrap();
    let damaged = dir.path().join("damaged.db");
    std::fs::write(&damaged, &whole[..whole.len() / 2]).unwrap();
    for args in [
        &["user", "list"][..],
        &["fx", "set", "USD-KES", "140"],
        &["backup", "copy.db"],
    ] {
        let mut cmd = remit(dir.path(), Some(TEST_KEY));
        cmd.args(args).arg("--db").arg(&damaged);
        let ran = run(cmd);
        assert_eq!(ran.code, Some(2), "{args:?}: {ran}");
        assert!(
            ran.stderr.contains("is damaged or is not a remit database"),
            "{args:?}: {ran}"
        );
    }
    // A file of something else, with no key beside it, is named for what it is (it was "no
    // encryption key for the existing database").
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, [7u8; 4096]).unwrap();
    for args in [
        &["user", "list"][..],
        &["check"],
        &["serve", "--addr", "127.0.0.1:0"],
    ] {
        let mut cmd = remit(dir.path(), None);
        cmd.args(args).arg("--db").arg(&junk);
        let ran = run(cmd);
        assert_eq!(ran.code, Some(2), "{args:?}: {ran}");
        assert!(
            ran.stderr.contains("is not a database file"),
            "{args:?}: {ran}"
        );
        // Nothing is made beside a file that is not a ledger (the server's refusal left its
        // two lock files there).
        for suffix in [".lock", ".keylock", "-wal", "-shm", ".key"] {
            let beside = dir.path().join(format!("junk.db{suffix}"));
            assert!(!beside.exists(), "{args:?} left {}", beside.display());
        }
    }
}

/// `remit user list | head -1`: the reader goes away; the command ends quietly (it printed
/// "internal error: failed printing to stdout", or aborted when stderr was gone too).
#[test]
fn a_reader_that_goes_away_ends_a_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    for i in 0..20 {
        user_add(&db, TEST_KEY, "agent", &format!("Kiosk {i}"), None);
    }
    // The reader is gone before the command starts, so its first write finds no reader (a
    // reader closed after the start raced the command's writes into the pipe's buffer). Such
    // a command ends as one killed by SIGPIPE would: 141, nothing said.
    let run_unread = |key: Option<&str>, args: &[&str]| {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        remit(dir.path(), key)
            .args(args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap()
    };
    let db_arg = db.to_str().unwrap();
    let out = run_unread(Some(TEST_KEY), &["user", "list", "--db", db_arg]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty(), "{stderr}");
    assert_eq!(out.status.code(), Some(141), "{:?}", out.status);
    // So does help read by a reader that stopped (`remit token issue --help | head -5`): it
    // said "cannot write to standard output", and failed.
    let out = run_unread(None, &["token", "issue", "--help"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty(), "{stderr}");
    assert_eq!(out.status.code(), Some(141), "{:?}", out.status);
    // A command that prints a new token, shown once, says that it could not, and revokes it
    // (nobody holds it): not quiet, the token is gone.
    let out = run_unread(
        Some(TEST_KEY),
        &[
            "user", "add", "--role", "agent", "--name", "Kiosk X", "--db", db_arg,
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("could not be written to standard output")
            && stderr.contains("so it is revoked"),
        "{stderr}"
    );
    assert_eq!(out.status.code(), Some(2), "{stderr}");
}

/// The one-server lock holds whichever path names the database: through a symbolic link a
/// second server started beside the first, and a key rotation ran under a running server.
#[cfg(unix)]
#[test]
fn a_database_reached_through_a_symbolic_link_is_locked_as_itself() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let mut server = Server::start(&db, TEST_KEY, &dir.path().join("serve.log"), &[]);
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let link = elsewhere.join("remit.db");
    std::os::unix::fs::symlink(&db, &link).unwrap();
    let key_file = dir.path().join("new.key");
    std::fs::write(&key_file, format!("{}\n", ROTATED_KEY)).unwrap();
    let second: [&[&str]; 2] = [
        &["serve", "--addr", "127.0.0.1:0"],
        &["rotate-key", "--new-key-file", key_file.to_str().unwrap()],
    ];
    for args in second {
        let mut cmd = remit(&elsewhere, Some(TEST_KEY));
        cmd.args(args).arg("--db").arg(&link);
        let ran = run(cmd);
        assert_eq!(ran.code, Some(2), "{args:?}: {ran}");
        assert!(
            ran.stderr
                .contains("another remit process (a server, a restore or a key rotation) is using"),
            "{args:?}: {ran}"
        );
    }
    assert_eq!(server.get("/health", "").status, 200);
    assert!(server.terminate().success(), "{}", server.log());
}

/// A rate more than five times off the one in use (a decimal point dropped: 16050 for 160.5)
/// is refused, and changes nothing, unless asked for with `--force`.
#[test]
fn a_rate_far_from_the_one_in_use_is_set_only_with_force() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    user_add(&db, TEST_KEY, "admin", "Admin", None);
    let set = |rate: &str, force: bool| {
        let mut cmd = remit(dir.path(), Some(TEST_KEY));
        cmd.args(["fx", "set", "USD-KES", rate, "--db"]).arg(&db);
        if force {
            cmd.arg("--force");
        }
        run(cmd)
    };
    let get = || {
        let mut cmd = remit(dir.path(), Some(TEST_KEY));
        cmd.args(["fx", "get", "--db"]).arg(&db);
        run(cmd).stdout
    };
    for rate in ["152.25", "160.5"] {
        let ran = set(rate, false);
        assert_eq!(ran.code, Some(0), "{ran}");
        assert_eq!(ran.stdout.trim(), format!("USD-KES {rate}"), "{ran}");
    }
    let far = set("16050.0", false);
    assert_ne!(far.code, Some(0), "{far}");
    assert!(
        far.stderr.contains("100 times higher") && far.stderr.contains("--force"),
        "{far}"
    );
    assert!(get().starts_with("USD-KES 160.5 "), "{}", get());
    let low = set("0.0001", false);
    assert!(low.stderr.contains("1605000 times lower"), "{low}");
    let forced = set("16050.0", true);
    assert_eq!(forced.code, Some(0), "{forced}");
    assert!(forced.stderr.contains("set as asked"), "{forced}");
    assert!(get().starts_with("USD-KES 16050.0 "), "{}", get());
}

#[test]
fn user_add_names_the_flag_a_recipient_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    user_add(&db, TEST_KEY, "admin", "Admin", None);
    let mut cmd = remit(dir.path(), Some(TEST_KEY));
    cmd.args([
        "user",
        "add",
        "--role",
        "recipient",
        "--name",
        "Wanjiru",
        "--db",
    ])
    .arg(&db);
    let ran = run(cmd);
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        ran.stderr.contains("--phone: is required for a recipient"),
        "{ran}"
    );
}

/// Two names of one file (a hard link) are one database: a second server through the other
/// name would keep a log of its own beside the same file, and the two would corrupt it.
#[test]
fn a_database_reached_through_a_hard_link_is_locked_as_itself() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let mut server = Server::start(&db, TEST_KEY, &dir.path().join("serve.log"), &[]);
    let other = dir.path().join("other.db");
    std::fs::hard_link(&db, &other).unwrap();
    let mut cmd = remit(dir.path(), Some(TEST_KEY));
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--db"])
        .arg(&other);
    let ran = run(cmd);
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        ran.stderr.contains("another remit server is using") && ran.stderr.contains("hard link"),
        "{ran}"
    );
    assert!(
        !dir.path().join("other.db-wal").exists(),
        "the second name got a log of its own"
    );
    assert_eq!(server.get("/health", "").status, 200);
    // Nor does a command beside it by that name: its writes went into a log of its own, and
    // were gone after the server's stop (a `user add` answered with a token), and a backup
    // or a check read the ledger without its newest commits.
    for args in [
        &["user", "add", "--role", "agent", "--name", "Kiosk"][..],
        &["token", "revoke", "rmt_00000000"],
        &["backup", "copy.db"],
        &["check"],
        &["user", "list"],
    ] {
        let ran = cli(&other, args);
        assert_eq!(ran.code, Some(2), "{args:?}: {ran}");
        assert!(
            ran.stderr.contains("another remit server is using")
                && ran.stderr.contains("hard link"),
            "{args:?}: {ran}"
        );
    }
    assert!(!dir.path().join("other.db-wal").exists());
    // By the name the server runs under, a command shares its log: let be.
    let added = cli(&db, &["user", "add", "--role", "agent", "--name", "Kiosk"]);
    assert_eq!(added.code, Some(0), "{added}");
    assert_eq!(server.get("/me", added.stdout.trim()).status, 200);
    // Its lock file removed while it runs, a second server is refused for what happened,
    // not for a hard link.
    std::fs::remove_file(&other).unwrap();
    std::fs::remove_file(dir.path().join("remit.db.lock")).unwrap();
    let mut second = remit(dir.path(), Some(TEST_KEY));
    second
        .args(["serve", "--addr", "127.0.0.1:0", "--db"])
        .arg(&db);
    let ran = run(second);
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        ran.stderr.contains("was removed while the server ran")
            && !ran.stderr.contains("hard link"),
        "{ran}"
    );
    std::fs::hard_link(&db, &other).unwrap();
    assert!(server.terminate().success(), "{}", server.log());
    // Stopped, the file still has two names: each would keep a log of its own.
    for name in [&db, &other] {
        let ran = cli(name, &["check"]);
        assert_eq!(ran.code, Some(2), "{ran}");
        assert!(ran.stderr.contains("has 2 names (hard links)"), "{ran}");
        let mut serve = remit(dir.path(), Some(TEST_KEY));
        serve
            .args(["serve", "--addr", "127.0.0.1:0", "--db"])
            .arg(name);
        let ran = run(serve);
        assert_eq!(ran.code, Some(2), "{ran}");
        assert!(ran.stderr.contains("has 2 names (hard links)"), "{ran}");
    }
    std::fs::remove_file(&other).unwrap();
    assert_eq!(cli(&db, &["check"]).code, Some(0));
    // A file not in WAL mode yet (a backup, a ledger just restored from one) with two names is
    // not served either: the server's own locks read as a server beside which it could run.
    let backup = dir.path().join("backup.db");
    let made = cli(&db, &["backup", backup.to_str().unwrap()]);
    assert_eq!(made.code, Some(0), "{made}");
    let twin = dir.path().join("twin.db");
    std::fs::hard_link(&backup, &twin).unwrap();
    let mut serve = remit(dir.path(), Some(TEST_KEY));
    serve
        .args(["serve", "--addr", "127.0.0.1:0", "--db"])
        .arg(&twin);
    let ran = run(serve);
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(ran.stderr.contains("has 2 names (hard links)"), "{ran}");
    assert!(!dir.path().join("twin.db-wal").exists());
}

/// A `--db` that names another program's SQLite database is left byte for byte as it was, by
/// the server and by every command; a file with no ledger yet is made one only by `serve`.
#[test]
fn another_programs_database_is_left_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("inventory.db");
    std::fs::write(dir.path().join("new.key"), format!("{}\n", ROTATED_KEY)).unwrap();
    {
        let conn = rusqlite::Connection::open(&foreign).unwrap();
        conn.execute_batch(
            "CREATE TABLE stock (item TEXT, count INTEGER); INSERT INTO stock VALUES ('soap', 3);",
        )
        .unwrap();
    }
    let before = std::fs::read(&foreign).unwrap();
    for args in [
        &["user", "list"][..],
        &["fx", "get"],
        &["serve", "--addr", "127.0.0.1:0"],
        &["restore", "backup.db"],
        &["rotate-key", "--new-key-file", "new.key"],
        &["check"],
    ] {
        let ran = cli(&foreign, args);
        assert_eq!(ran.code, Some(2), "{args:?}: {ran}");
        assert!(
            ran.stderr.contains("an SQLite database of something else"),
            "{args:?}: {ran}"
        );
        assert_eq!(
            std::fs::read(&foreign).unwrap(),
            before,
            "{args:?} changed the file"
        );
        // Nor is anything made beside it: the lock files were, before the file was looked at.
        let beside: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("inventory.db") && n != "inventory.db")
            .collect();
        assert!(beside.is_empty(), "{args:?} left {beside:?}");
    }
    // An SQLite file with nothing in it (a first start stopped before its schema): only the
    // server makes it a ledger.
    let blank = dir.path().join("blank.db");
    rusqlite::Connection::open(&blank)
        .unwrap()
        .execute_batch("PRAGMA user_version = 0; VACUUM;")
        .unwrap();
    if std::fs::metadata(&blank).unwrap().len() > 0 {
        let ran = cli(&blank, &["user", "list"]);
        assert_eq!(ran.code, Some(2), "{ran}");
        assert!(ran.stderr.contains("holds no ledger yet"), "{ran}");
    }
}

/// Demo escrows are funded by made-up deposits: `--demo` runs only with the simulator, and a
/// ledger that ever had demo data never starts with a gateway that pays or holds real payouts.
#[test]
fn demo_data_never_meets_a_real_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let serve = |gateway: &str, demo: bool| {
        let mut cmd = remit(dir.path(), Some(TEST_KEY));
        cmd.args(["serve", "--addr", "127.0.0.1:0", "--db"])
            .arg(&db)
            .env("REMIT_GATEWAY", gateway);
        if demo {
            cmd.arg("--demo");
        }
        run(cmd)
    };
    let refused = serve("none", true);
    assert_eq!(refused.code, Some(2), "{refused}");
    assert!(
        refused.stderr.contains("runs only with the simulator"),
        "{refused}"
    );
    assert!(!db.exists(), "a refused --demo made a database");
    let mut server = Server::start_with(
        &db,
        TEST_KEY,
        &dir.path().join("serve.log"),
        &[],
        &["--demo"],
    );
    assert!(server.terminate().success(), "{}", server.log());
    let later = serve("none", false);
    assert_eq!(later.code, Some(2), "{later}");
    assert!(later.stderr.contains("holds demo data"), "{later}");

    // A ledger that already holds escrows of its own is never made a demo's: it would refuse
    // real payouts for good after.
    let real = dir.path().join("real.db");
    let sender = user_add(&real, TEST_KEY, "sender", "Amina", Some("0733000001"));
    let mut server = Server::start(&real, TEST_KEY, &dir.path().join("real.log"), &[]);
    let escrow = server.post(
        "/escrows",
        &sender,
        &serde_json::json!({"recipientPhone": "0712345678", "recipientName": "Wanjiru",
            "totalAmountUsd": 50, "categories": [{"name": "rent", "amountUsd": 50}]}),
    );
    assert_eq!(escrow.status, 201, "{}", escrow.text);
    assert!(server.terminate().success(), "{}", server.log());
    let refused = run({
        let mut cmd = remit(dir.path(), Some(TEST_KEY));
        cmd.args(["serve", "--demo", "--addr", "127.0.0.1:0", "--db"])
            .arg(&real);
        cmd
    });
    assert_eq!(refused.code, Some(2), "{refused}");
    assert!(
        refused.stderr.contains("already holds escrows") && refused.stderr.contains("--db demo.db"),
        "{refused}"
    );
    // Not marked: it still starts with a gateway of real money.
    let mut later = Server::start(
        &real,
        TEST_KEY,
        &dir.path().join("later.log"),
        &[("REMIT_GATEWAY", "none")],
    );
    assert!(later.terminate().success(), "{}", later.log());
}

/// A `.env` holding secrets, or a new key file, that other users of the machine can read is
/// said (without its contents); owner-only, nothing is said.
#[test]
fn secrets_in_files_others_can_read_are_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    user_add(&db, TEST_KEY, "admin", "Admin", None);
    let env = dir.path().join(".env");
    std::fs::write(&env, format!("ENCRYPTION_KEY={TEST_KEY}\n")).unwrap();
    let key_file = dir.path().join("new.key");
    std::fs::write(&key_file, format!("{}\n", ROTATED_KEY)).unwrap();
    for (mode, warned) in [(0o644, true), (0o600, false)] {
        std::fs::set_permissions(&env, std::fs::Permissions::from_mode(mode)).unwrap();
        let mut cmd = remit(dir.path(), None);
        cmd.env_remove("ENCRYPTION_KEY")
            .args(["user", "list", "--db"])
            .arg(&db);
        let ran = run(cmd);
        assert_eq!(ran.code, Some(0), "{ran}");
        assert_eq!(
            ran.stderr
                .contains(".env file .env can be read by other users"),
            warned,
            "{mode:o}: {ran}"
        );
        assert!(!ran.stderr.contains(TEST_KEY), "{ran}");
    }
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let ran = rotate_key(dir.path(), None, &key_file, &db);
    assert_eq!(ran.code, Some(0), "{ran}");
    assert!(
        ran.stderr.contains("new key file") && ran.stderr.contains("can be read by other users"),
        "{ran}"
    );
    assert!(!ran.stderr.contains(ROTATED_KEY), "{ran}");
}

/// Guards against: under systemd the first admin's token was printed into the journal, kept
/// there for anyone who reads it for as long as the journal lasts. There (`JOURNAL_STREAM`
/// set) it goes to a file only the service's user reads, and the journal gets the file's name.
#[test]
fn under_systemd_the_first_admin_token_goes_to_an_owner_only_file_not_the_journal() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let file = dir.path().join("remit.db.first-admin-token");
    // A file left by an earlier first start is replaced, not a reason to print the token.
    std::fs::write(&file, "rmt_stale\n").unwrap();
    // The journal's stream is the service's output: here a file, named by its device and
    // inode as systemd names its socket.
    let out_path = dir.path().join("stdout");
    let out = std::fs::File::create(&out_path).unwrap();
    let meta = out.metadata().unwrap();
    let mut cmd = remit(dir.path(), Some(TEST_KEY));
    // A demo's users' tokens too.
    cmd.args(["serve", "--demo", "--addr", "127.0.0.1:0", "--db"])
        .arg(&db)
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(std::fs::File::create(dir.path().join("serve.log")).unwrap());
    let mut child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let printed = loop {
        let printed = std::fs::read_to_string(&out_path).unwrap();
        if printed.contains("remit listening on") {
            break printed;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never listened: {printed}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(!printed.contains("rmt_"), "{printed}");
    assert!(printed.contains(&file.display().to_string()), "{printed}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
    }
    let token = std::fs::read_to_string(&file).unwrap().trim().to_string();
    assert!(token.starts_with("rmt_") && token != "rmt_stale", "{token}");
    let demo = dir.path().join("remit.db.demo-tokens");
    assert!(printed.contains(&demo.display().to_string()), "{printed}");
    let demo_tokens = std::fs::read_to_string(&demo).unwrap();
    assert_eq!(demo_tokens.matches("rmt_").count(), 3, "{demo_tokens}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&demo).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
    }
    let server = Server::start(&db, TEST_KEY, &dir.path().join("serve-2.log"), &[]);
    let me = server.get("/me", &token);
    assert_eq!(me.body["role"], "admin", "{}", me.text);
    assert!(
        !std::fs::read_to_string(dir.path().join("serve.log"))
            .unwrap()
            .contains(&token),
        "the token is in the log"
    );
}

/// `remit serve --port P` listens on the loopback at P (the flag people type first); with
/// `--addr` it is a conflict, and before another command it is refused as the server's.
#[test]
fn serve_takes_a_port_on_the_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    user_add(&db, TEST_KEY, "admin", "Admin", None);
    let port = crate::support::free_port();
    let mut cmd = remit(dir.path(), Some(TEST_KEY));
    cmd.args(["serve", "--port", &port.to_string(), "--db"])
        .arg(&db);
    let mut server = Server::spawn(cmd, &dir.path().join("log"));
    assert_eq!(server.base, format!("http://127.0.0.1:{port}"));
    assert_eq!(server.get("/health", "").status, 200);
    server.terminate();
    // Before `serve`, the server's options are its own (`remit --db X --port P serve` was
    // refused as if `serve` were another command).
    let port = crate::support::free_port();
    let mut cmd = remit(dir.path(), Some(TEST_KEY));
    cmd.args(["--port", &port.to_string(), "--db"])
        .arg(&db)
        .arg("serve");
    let mut server = Server::spawn(cmd, &dir.path().join("log2"));
    assert_eq!(server.base, format!("http://127.0.0.1:{port}"));
    assert_eq!(server.get("/health", "").status, 200);
    server.terminate();
    for (args, says) in [
        (
            &["serve", "--port", "3001", "--addr", "127.0.0.1:3002"][..],
            "cannot be used with",
        ),
        (
            &["--port", "3001", "serve", "--addr", "127.0.0.1:3002"][..],
            "--port before `serve` and --addr after it",
        ),
        (
            &["--workers", "4", "serve", "--workers", "8"][..],
            "--workers before `serve` and --workers after it",
        ),
        (&["serve", "--port", "0"][..], "--port"),
        (
            &["--port", "3001", "check"][..],
            "--port is an option of the server",
        ),
        // The first of two was not the ledger used, without a word.
        (
            &["--db", "other.db", "user", "list"][..],
            "--db is given more than once",
        ),
        (
            &["user", "list", "--db=other.db"][..],
            "--db is given more than once",
        ),
    ] {
        let mut cmd = remit(dir.path(), Some(TEST_KEY));
        cmd.args(args).arg("--db").arg(&db);
        let ran = run(cmd);
        assert_eq!(ran.code, Some(2), "{args:?}: {ran}");
        assert!(ran.stderr.contains(says), "{args:?}: {ran}");
    }
}

/// A new token printed to an output that cannot take it (`> /dev/full`) would be held by
/// nobody: the command fails saying so and the token is revoked, not left live. Any other
/// failed print is a sentence and exit 2 (it was a panic, exit 101, after the change).
#[test]
fn a_new_token_that_cannot_be_printed_is_revoked_and_said() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    user_add(&db, TEST_KEY, "admin", "Operator", None);
    let to_full = |args: &[&str]| {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let mut cmd = remit(dir.path(), Some(TEST_KEY));
        cmd.arg("--db").arg(&db).args(args).stdout(full);
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let amina = || {
        cli(&db, &["user", "list"])
            .stdout
            .lines()
            .find(|l| l.contains("Amina"))
            .map(str::to_string)
            .expect("Amina was made")
    };
    let (code, stderr) = to_full(&["user", "add", "--role", "sender", "--name", "Amina"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("could not be written to standard output")
            && stderr.contains("so it is revoked")
            && stderr.contains("remit token issue usr_"),
        "{stderr}"
    );
    assert_eq!(amina().matches("(revoked)").count(), 1, "{}", amina());
    let id = amina().split('\t').next().unwrap().to_string();
    let (code, stderr) = to_full(&["token", "issue", &id]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("so it is revoked"), "{stderr}");
    let line = amina();
    assert_eq!(line.matches("(revoked)").count(), 2, "{line}");
    assert_eq!(line.matches("rmt_").count(), 2, "{line}");
    let (code, stderr) = to_full(&["user", "list"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot write to standard output") && !stderr.contains("internal error"),
        "{stderr}"
    );
    // Help and the version too (they ended 0, having printed nothing).
    for args in [&["--help"][..], &["--version"], &["backup", "--help"]] {
        let (code, stderr) = to_full(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("cannot write to standard output"),
            "{args:?}: {stderr}"
        );
    }
    // Both outputs on a full disk: nothing can be said, and the code is still the failure's
    // (the panic hook's own line failed, and the process aborted: 134).
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    for args in [
        &["user", "list"][..],
        &["user", "add", "--role", "agent", "--name", "Kiosk"],
    ] {
        let mut cmd = remit(dir.path(), Some(TEST_KEY));
        cmd.arg("--db")
            .arg(&db)
            .args(args)
            .stdout(full())
            .stderr(full());
        let status = cmd.status().unwrap();
        assert_eq!(status.code(), Some(2), "{args:?}: {status}");
    }
    let checked = cli(&db, &["check"]);
    assert_eq!(checked.code, Some(0), "{checked}");
}

/// Guards against: the first start's admin token printed to an output that could not take it
/// was left live, held by nobody, and the next start printed none: it is revoked, and the
/// command says how to get another.
#[test]
fn a_first_admin_token_that_cannot_be_printed_is_revoked_and_said() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let mut cmd = remit(dir.path(), Some(TEST_KEY));
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--db"])
        .arg(&db)
        .stdout(full);
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("(the first admin) was made")
            && stderr.contains("so it is revoked")
            && stderr.contains("remit token issue usr_"),
        "{stderr}"
    );
    let users = cli(&db, &["user", "list"]);
    let admin = users
        .stdout
        .lines()
        .find(|l| l.contains("Administrator"))
        .unwrap_or_else(|| panic!("{users}"));
    assert_eq!(admin.matches("(revoked)").count(), 1, "{admin}");
}

/// `remit user language`: the language of a user's SMS, for one named by id or phone (a
/// recipient made by an escrow to their phone starts in English, and nothing changed it).
#[test]
fn the_language_of_a_users_sms_is_set_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    user_add(&db, TEST_KEY, "recipient", "Wanjiru", Some("0712345678"));
    let language = |user: &str, to: &str| {
        let mut cmd = remit(dir.path(), Some(TEST_KEY));
        cmd.args(["user", "language", user, to, "--db"]).arg(&db);
        run(cmd)
    };
    let ran = language("0712 345 678", "sw");
    assert_eq!(ran.code, Some(0), "{ran}");
    assert!(ran.stdout.contains("gets SMS in Swahili"), "{ran}");
    let mut list = remit(dir.path(), Some(TEST_KEY));
    list.args(["user", "list", "--db"]).arg(&db);
    let listed = run(list);
    let row = listed
        .stdout
        .lines()
        .find(|l| l.contains("Wanjiru"))
        .unwrap_or_default()
        .to_string();
    assert!(row.ends_with("\tsw"), "{listed}");
    let ran = language("0712345678", "fr");
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(ran.stderr.contains("LANGUAGE"), "{ran}");
    let ran = language("0799999999", "sw");
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        ran.stderr.contains("no user has that phone number"),
        "{ran}"
    );
}

/// A ledger under the key file's key (`TEST_KEY`), with an admin; the key file and a file of a
/// new key (`ROTATED_KEY`) beside it.
fn a_ledger_keyed_by_its_file(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let db = dir.join("remit.db");
    user_add(&db, TEST_KEY, "admin", "Admin", None);
    std::fs::write(dir.join("remit.db.key"), format!("{TEST_KEY}\n")).unwrap();
    let new_key = dir.join("new.key");
    std::fs::write(&new_key, format!("{ROTATED_KEY}\n")).unwrap();
    (db, new_key)
}

/// `remit user add` with the key file's key (no ENCRYPTION_KEY).
fn user_add_by_key_file(db: &std::path::Path) -> Ran {
    let mut cmd = remit(db.parent().unwrap(), None);
    cmd.args(["user", "add", "--role", "agent", "--name", "Kiosk", "--db"])
        .arg(db);
    run(cmd)
}

fn names_in(dir: &std::path::Path, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(prefix))
        .collect();
    names.sort();
    names
}

/// Guards against: a rotation stopped after its commit and before the key file took the new key
/// (kill -9 or Ctrl-C at that moment, a power cut) left the ledger under a key no file beside it
/// held: every start and command refused as under a wrong key, nothing said of where the new key
/// was, and an operator who read the interrupted command as "cancelled" and deleted the new key's
/// file lost the names and phones for good. The new key is kept beside the key file from before
/// the commit until the key file holds it; the next start or writing command finishes the
/// rotation, and `check` says where the key is meanwhile. (The state a stop between the two
/// leaves is made here by hand from a finished rotation: the moment is too short to kill in.)
#[test]
fn a_key_rotation_stopped_after_its_commit_is_finished_by_the_next_command() {
    let dir = tempfile::tempdir().unwrap();
    let (db, new_key) = a_ledger_keyed_by_its_file(dir.path());
    let ran = rotate_key(dir.path(), None, &new_key, &db);
    assert_eq!(ran.code, Some(0), "{ran}");
    assert_eq!(
        names_in(dir.path(), "remit.db.key.rotating"),
        Vec::<String>::new(),
        "{ran}"
    );
    let kept = names_in(dir.path(), "remit.db.key.before-rotate-");
    assert_eq!(kept.len(), 1, "{kept:?}");
    // As the rotation stopped just after its commit left it: the key file still the old key,
    // the old key's copy under its unfinished name, the new key beside the key file.
    let key_file = dir.path().join("remit.db.key");
    std::fs::write(&key_file, format!("{TEST_KEY}\n")).unwrap();
    let unfinished = format!("{}.unfinished", kept[0]);
    std::fs::rename(dir.path().join(&kept[0]), dir.path().join(&unfinished)).unwrap();
    std::fs::write(
        dir.path().join("remit.db.key.rotating"),
        format!("{ROTATED_KEY}\n"),
    )
    .unwrap();
    let mut cmd = remit(dir.path(), None);
    cmd.arg("check").arg("--db").arg(&db);
    let checked = run(cmd);
    assert_eq!(checked.code, Some(2), "{checked}");
    assert!(
        checked
            .stderr
            .contains("A key rotation was stopped before its end: its new key is in")
            && checked.stderr.contains("remit.db.key.rotating"),
        "{checked}"
    );
    // `check` only reads: nothing was settled.
    assert_eq!(std::fs::read_to_string(&key_file).unwrap().trim(), TEST_KEY);
    let added = user_add_by_key_file(&db);
    assert_eq!(added.code, Some(0), "{added}");
    assert!(
        added
            .stderr
            .contains("a key rotation stopped after its commit was finished"),
        "{added}"
    );
    assert_eq!(
        std::fs::read_to_string(&key_file).unwrap().trim(),
        ROTATED_KEY
    );
    assert_eq!(names_in(dir.path(), "remit.db.key.before-rotate-"), kept);
    assert_eq!(
        std::fs::read_to_string(dir.path().join(&kept[0]))
            .unwrap()
            .trim(),
        TEST_KEY
    );
    assert!(!dir.path().join("remit.db.key.rotating").exists());
    let checked = check(&db, ROTATED_KEY);
    assert_eq!(checked.code, Some(0), "{checked}");
}

/// A rotation stopped before its commit changed nothing: the next command opens the ledger with
/// the key file as before, and the copies of that key the rotation made are removed.
#[test]
fn a_key_rotation_stopped_before_its_commit_leaves_no_copy_of_the_key_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = a_ledger_keyed_by_its_file(dir.path());
    std::fs::write(
        dir.path().join("remit.db.key.rotating"),
        format!("{ROTATED_KEY}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path()
            .join("remit.db.key.before-rotate-2026-12-07T051500Z.unfinished"),
        format!("{TEST_KEY}\n"),
    )
    .unwrap();
    let added = user_add_by_key_file(&db);
    assert_eq!(added.code, Some(0), "{added}");
    assert!(
        added
            .stderr
            .contains("a key rotation stopped before its commit changed nothing"),
        "{added}"
    );
    assert_eq!(
        names_in(dir.path(), "remit.db.key."),
        Vec::<String>::new(),
        "{added}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("remit.db.key"))
            .unwrap()
            .trim(),
        TEST_KEY
    );
}

/// A restore after a rotation stopped just after its commit finishes the rotation first: the
/// ledger it replaces is under the rotation's new key, which was taken for one nothing needed
/// (the restored ledger opened under the key file's old key) and deleted at the next start,
/// its only copy beside the replaced ledger kept by the restore.
#[test]
fn a_restore_finishes_a_key_rotation_stopped_after_its_commit_first() {
    let dir = tempfile::tempdir().unwrap();
    let (db, new_key) = a_ledger_keyed_by_its_file(dir.path());
    let backup = dir.path().join("before.db");
    let mut cmd = remit(dir.path(), None);
    cmd.arg("backup").arg(&backup).arg("--db").arg(&db);
    assert_eq!(run(cmd).code, Some(0));
    let ran = rotate_key(dir.path(), None, &new_key, &db);
    assert_eq!(ran.code, Some(0), "{ran}");
    // As the rotation stopped just after its commit left it.
    let key_file = dir.path().join("remit.db.key");
    std::fs::write(&key_file, format!("{TEST_KEY}\n")).unwrap();
    std::fs::write(
        dir.path().join("remit.db.key.rotating"),
        format!("{ROTATED_KEY}\n"),
    )
    .unwrap();
    let mut cmd = remit(dir.path(), None);
    cmd.arg("restore").arg(&backup).arg("--db").arg(&db);
    let restored = run(cmd);
    assert!(
        restored
            .stderr
            .contains("a key rotation stopped after its commit was finished"),
        "{restored}"
    );
    // The key file holds the key of the ledger the restore found, whatever became of it.
    assert_eq!(
        std::fs::read_to_string(&key_file).unwrap().trim(),
        ROTATED_KEY,
        "{restored}"
    );
    assert!(!dir.path().join("remit.db.key.rotating").exists());
    assert_eq!(check(&db, ROTATED_KEY).code, Some(0), "{restored}");
}

/// A rotation stopped before it kept the new key (its copy of the old key made, nothing else)
/// leaves a copy of the key still in use: the next command removes it.
#[test]
fn a_key_rotation_stopped_before_it_kept_the_new_key_leaves_no_copy_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = a_ledger_keyed_by_its_file(dir.path());
    std::fs::write(
        dir.path()
            .join("remit.db.key.before-rotate-2026-12-07T051500Z.unfinished"),
        format!("{TEST_KEY}\n"),
    )
    .unwrap();
    // A new key's file cut short by a power cut, of another stop.
    std::fs::write(dir.path().join("remit.db.key.rotating"), "b66c0c56").unwrap();
    let added = user_add_by_key_file(&db);
    assert_eq!(added.code, Some(0), "{added}");
    assert_eq!(
        names_in(dir.path(), "remit.db.key."),
        Vec::<String>::new(),
        "{added}"
    );
}

/// The service's user runs commands from a directory it may not enter (`runuser` from root's
/// home, cron's jobs from it), on files of root's it may not read: a command read no `.env`
/// there but stopped with ".env cannot be read" (every nightly backup failed), a backup of
/// root's was "not a remit backup (… or a damaged one)", and root's new key file "does not
/// exist". (Only root can make another user meet them: run as root, as CI does.)
#[cfg(unix)]
#[test]
fn a_command_of_the_services_user_from_roots_directory_on_roots_files_says_what_it_may_not_read() {
    use std::os::unix::fs::PermissionsExt;
    if !is_root() {
        eprintln!("not root: no other user to run the commands as");
        return;
    }
    let home = tempfile::tempdir().unwrap();
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let open = tempfile::tempdir().unwrap();
    std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let db = open.path().join("remit.db");
    user_add(&db, TEST_KEY, "admin", "Admin", None);
    let backup = open.path().join("roots-backup.db");
    assert_eq!(
        cli(&db, &["backup", backup.to_str().unwrap()]).code,
        Some(0)
    );
    std::fs::set_permissions(&backup, std::fs::Permissions::from_mode(0o600)).unwrap();
    let new_key = open.path().join("new.key");
    std::fs::write(&new_key, "ab".repeat(32)).unwrap();
    std::fs::set_permissions(&new_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    for entry in std::fs::read_dir(open.path()).unwrap() {
        let path = entry.unwrap().path();
        if path != backup && path != new_key {
            std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
        }
    }
    // `runuser -u nobody` from root's directory: the working directory stays root's.
    let as_the_service_in = |dir: &std::path::Path, args: &[&str]| {
        let mut cmd = std::process::Command::new("/usr/bin/setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_remit"))
            .args(args)
            .arg("--db")
            .arg(&db)
            .current_dir(dir)
            .env_clear()
            .env("RUST_LOG", "info")
            .env("ENCRYPTION_KEY", TEST_KEY);
        run(cmd)
    };
    let as_the_service = |args: &[&str]| as_the_service_in(home.path(), args);
    let ran = as_the_service(&["check"]);
    assert_eq!(ran.code, Some(0), "{ran}");
    let ran = as_the_service(&["restore", backup.to_str().unwrap()]);
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        ran.stderr.contains("cannot be read by this user") && !ran.stderr.contains("damaged"),
        "{ran}"
    );
    let ran = as_the_service(&["rotate-key", "--new-key-file", new_key.to_str().unwrap()]);
    assert_ne!(ran.code, Some(0), "{ran}");
    assert!(
        ran.stderr.contains("cannot be read by this user")
            && !ran.stderr.contains("does not exist"),
        "{ran}"
    );
    // A named pipe given as the new key is refused as not a file, not opened (its open waits
    // for a writer, the rotation's lock held meanwhile).
    let fifo = open.path().join("new-key.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let ran = as_the_service(&["rotate-key", "--new-key-file", fifo.to_str().unwrap()]);
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(ran.stderr.contains("must be a file"), "{ran}");
    // A `.env` it may not read but can see (a link into a directory it may not enter) is still
    // refused: only one it cannot know of is none.
    let seen = tempfile::tempdir().unwrap();
    let private = tempfile::tempdir().unwrap();
    std::fs::set_permissions(seen.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(private.path().join(".env"), "REMIT_SYNCHRONOUS=normal\n").unwrap();
    std::os::unix::fs::symlink(private.path().join(".env"), seen.path().join(".env")).unwrap();
    let ran = as_the_service_in(seen.path(), &["check"]);
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(ran.stderr.contains(".env cannot be read"), "{ran}");
    // Nothing changed: the ledger is as it was, under its key.
    assert_eq!(check(&db, TEST_KEY).code, Some(0));
}
