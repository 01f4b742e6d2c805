//! Replication into a real PostgreSQL (a throwaway cluster per test, `support::postgres`):
//! a first copy, changes under the approval load, kill -9 of the replicator and of PostgreSQL
//! mid-stream, two ledgers in one database, a file migrated from the schema before replication
//! and a replica made at an older schema version, a restored backup refused. Each compares
//! every replicated row of the file with the replica and runs the integrity check on both.

use crate::support::app::*;
use crate::support::postgres::{skipped, Postgres, PASSWORD};
use crate::support::process::{self, read_only, remit, run, stop_app, Ran};
use crate::support::{TestStore, TEST_KEY};
use remit::replicate::source::{self, ColumnType};
use remit::service::Role;
use rusqlite::types::ValueRef;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const OTHER_KEY: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

fn replicate_once(db: &Path, key: &str, url: &str) -> Ran {
    let mut cmd = remit(db.parent().unwrap(), Some(key));
    cmd.args(["replicate", "--once", "--to", url])
        .arg("--db")
        .arg(db);
    run(cmd)
}

fn check_replica(db: &Path, key: &str, url: &str, extra: &[&str]) -> Ran {
    let mut cmd = remit(db.parent().unwrap(), Some(key));
    cmd.args(["check", "--postgres", url])
        .arg("--db")
        .arg(db)
        .args(extra);
    run(cmd)
}

fn ledger_id(db: &Path) -> String {
    read_only(db)
        .query_row("SELECT value FROM meta WHERE key = 'ledger_id'", [], |r| {
            r.get(0)
        })
        .unwrap()
}

fn file_counter(db: &Path) -> i64 {
    read_only(db)
        .query_row(
            "SELECT change_seq FROM meta WHERE key = 'change_seq'",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

/// The change number the replica holds (-1 when it holds nothing yet).
fn replica_position(client: &mut postgres::Client, ledger: &str) -> i64 {
    let exists: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = 'remit_replication')",
            &[],
        )
        .unwrap()
        .get(0);
    if !exists {
        return -1;
    }
    client
        .query_opt(
            "SELECT change_seq FROM remit_replication.ledgers WHERE ledger_id = $1",
            &[&ledger],
        )
        .unwrap()
        .map_or(-1, |r| r.get(0))
}

/// Sets its flag when dropped, a panic's unwinding included.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Polls (bounded) until the replica holds change `seq`.
fn wait_for_position(client: &mut postgres::Client, ledger: &str, seq: i64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let at = replica_position(client, ledger);
        if at >= seq {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the replica is at change {at}, not {seq}, after {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn cell_text(
    ty: ColumnType,
    int: Option<i64>,
    text: Option<String>,
    blob: Option<Vec<u8>>,
) -> String {
    match ty {
        ColumnType::Integer => int.map_or("NULL".into(), |v| v.to_string()),
        ColumnType::Text => text.map_or("NULL".into(), |v| format!("{v:?}")),
        ColumnType::Blob => blob.map_or("NULL".into(), |v| remit::crypto::hex(&v)),
    }
}

/// Every replicated row of the file, table by table, each row as one sorted line.
fn file_rows(db: &Path) -> BTreeMap<String, Vec<String>> {
    let conn = read_only(db);
    let mut out = BTreeMap::new();
    for shape in source::shapes(&conn).unwrap() {
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {} FROM {}",
                shape.column_list(),
                shape.table.name
            ))
            .unwrap();
        let mut rows = stmt.query([]).unwrap();
        let mut lines = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            let cells: Vec<String> = shape
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| match row.get_ref(i).unwrap() {
                    ValueRef::Null => "NULL".to_string(),
                    ValueRef::Integer(v) => cell_text(c.ty, Some(v), None, None),
                    ValueRef::Text(t) => cell_text(
                        c.ty,
                        None,
                        Some(String::from_utf8(t.to_vec()).unwrap()),
                        None,
                    ),
                    ValueRef::Blob(b) => cell_text(c.ty, None, None, Some(b.to_vec())),
                    ValueRef::Real(_) => panic!("a real number in {}", shape.table.name),
                })
                .collect();
            lines.push(cells.join(" | "));
        }
        lines.sort();
        out.insert(shape.table.name.to_string(), lines);
    }
    out
}

/// The same, read from the ledger's schema in PostgreSQL.
fn replica_rows(
    db: &Path,
    client: &mut postgres::Client,
    ledger: &str,
) -> BTreeMap<String, Vec<String>> {
    let shapes = source::shapes(&read_only(db)).unwrap();
    let mut out = BTreeMap::new();
    for shape in shapes {
        let rows = client
            .query(
                &format!(
                    "SELECT {} FROM remit_{ledger}.{}",
                    shape.column_list(),
                    shape.table.name
                ),
                &[],
            )
            .unwrap();
        let mut lines: Vec<String> = rows
            .iter()
            .map(|row| {
                shape
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| match c.ty {
                        ColumnType::Integer => cell_text(c.ty, row.get(i), None, None),
                        ColumnType::Text => cell_text(c.ty, None, row.get(i), None),
                        ColumnType::Blob => cell_text(c.ty, None, None, row.get(i)),
                    })
                    .collect::<Vec<_>>()
                    .join(" | ")
            })
            .collect();
        lines.sort();
        out.insert(shape.table.name.to_string(), lines);
    }
    out
}

/// Every replicated table holds exactly the file's rows: none missing, none twice, none
/// different.
fn assert_same_rows(db: &Path, client: &mut postgres::Client, ledger: &str) {
    let file = file_rows(db);
    let replica = replica_rows(db, client, ledger);
    for (table, lines) in &file {
        let theirs = &replica[table];
        if lines != theirs {
            let missing: Vec<&String> = lines
                .iter()
                .filter(|l| !theirs.contains(l))
                .take(3)
                .collect();
            let extra: Vec<&String> = theirs
                .iter()
                .filter(|l| !lines.contains(l))
                .take(3)
                .collect();
            panic!(
                "{table}: the file has {} rows, the replica {}; missing from the replica: {missing:#?}; only in the replica: {extra:#?}",
                lines.len(),
                theirs.len()
            );
        }
    }
    assert!(file["audit_log"].len() > 1 && file["ledger_entries"].len() > 1);
}

/// The check's lines on the file and on the replica are the same words, and both are clean.
fn assert_checks_clean_alike(db: &Path, key: &str, url: &str, extra: &[&str]) {
    let file = process::check(db, key);
    assert_eq!(file.code, Some(0), "check on the file: {file}");
    let replica = check_replica(db, key, url, extra);
    assert_eq!(replica.code, Some(0), "check on the replica: {replica}");
    let mut lines = replica.stdout.lines();
    let head = lines.next().unwrap_or_default();
    assert!(head.starts_with("replica of ledger ldg_"), "{replica}");
    // The same words, but for the file's own check of its pages (PostgreSQL keeps its own),
    // and the comparison with the file (of the ledger of --db), or the word that there is
    // none (of one named by --ledger), and the tokens' check, of a table a replica does not
    // hold (said so in its place). (Until 2026-12-05 the replica's encrypted values were not
    // opened either.)
    let (compared, checked): (Vec<&str>, Vec<&str>) = lines.partition(|l| {
        l.starts_with("the replica's rows against the file's")
            || l.starts_with("(a ledger named by --ledger")
    });
    assert_eq!(compared.len(), 1, "{replica}");
    assert_eq!(
        compared[0].starts_with("the replica's rows against the file's"),
        !extra.contains(&"--ledger"),
        "{replica}"
    );
    // The checks of what a replica does not hold (tokens, webhook endpoints) are said not run
    // there (the categories' list was too until 2026-12-07: PostgreSQL reads it in a form of its
    // own).
    let file_only = [
        "every token is as the audit line that issued it",
        "every webhook endpoint posts to",
    ];
    let not_here = ": not run on a replica (`remit check` on the file runs it)";
    for name in file_only {
        assert!(
            checked
                .iter()
                .any(|l| l.starts_with(name) && l.ends_with(not_here)),
            "{name}: {replica}"
        );
    }
    let is_file_only = |l: &&str| file_only.iter().any(|name| l.starts_with(name));
    assert_eq!(
        checked
            .iter()
            .filter(|l| !is_file_only(l))
            .collect::<Vec<_>>(),
        file.stdout
            .lines()
            .filter(|l| !l.starts_with("the file's pages and indexes are whole") && !is_file_only(l))
            .collect::<Vec<_>>()
            .iter()
            .collect::<Vec<_>>()
    );
    assert!(!replica.stdout.contains(PASSWORD) && !replica.stderr.contains(PASSWORD));
    // `--postgres` alone takes REMIT_REPLICATE_TO: the password need not be in the command line.
    let mut cmd = remit(db.parent().unwrap(), Some(key));
    cmd.env("REMIT_REPLICATE_TO", url)
        .args(["check", "--db"])
        .arg(db)
        .arg("--postgres")
        .args(extra);
    let from_env = run(cmd);
    assert_eq!(from_env.code, Some(0), "{from_env}");
    assert_eq!(from_env.stdout, replica.stdout);
}

/// A PostgreSQL that cannot be reached is named in the refusal (without its password): it was
/// "cannot connect: … Connection refused", which of several URLs the operator could not tell.
#[test]
fn a_postgres_that_cannot_be_reached_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    crate::support::process::user_add(&db, TEST_KEY, "admin", "Admin", None);
    // Port 9 (discard) on loopback: nothing listens there.
    let ran = replicate_once(&db, TEST_KEY, "postgres://remit:s3cret@127.0.0.1:9/ledgers");
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        ran.stderr
            .contains("cannot connect to postgres://remit@127.0.0.1:9/ledgers:")
            && !ran.stderr.contains("s3cret"),
        "{ran}"
    );
}

/// A server that accepts the connection and then says nothing (a stopped postmaster, a listener
/// that is not PostgreSQL) is given up on after `connect_timeout`: the client bounded only the
/// socket's opening, and `replicate` and `check --postgres` waited for as long as it lasted.
#[test]
fn a_postgres_that_accepts_and_never_answers_is_given_up_on_in_its_connect_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    crate::support::process::user_add(&db, TEST_KEY, "admin", "Admin", None);
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    // Accepts every connection and holds it, answering nothing.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().flatten() {
            held.push(stream);
        }
    });
    let url = format!("postgres://remit:s3cret@127.0.0.1:{port}/ledgers?connect_timeout=1");
    let started = std::time::Instant::now();
    let ran = replicate_once(&db, TEST_KEY, &url);
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        ran.stderr.contains("did not answer within 3 s") && !ran.stderr.contains("s3cret"),
        "{ran}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    let mut cmd = remit(db.parent().unwrap(), Some(TEST_KEY));
    cmd.args(["check", "--db"])
        .arg(&db)
        .args(["--postgres", &url]);
    let checked = run(cmd);
    assert_eq!(checked.code, Some(2), "{checked}");
    assert!(
        checked.stderr.contains("did not answer within 3 s"),
        "{checked}"
    );
}

/// A CA file that cannot work (missing, not certificates) stops the command, naming the
/// setting, rather than every connection failing later as if PostgreSQL were away.
#[test]
fn a_ca_file_that_cannot_work_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    crate::support::process::user_add(&db, TEST_KEY, "admin", "Admin", None);
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "junk\n").unwrap();
    for (ca, says) in [
        (dir.path().join("missing.pem"), "cannot read"),
        (junk, "holds no certificate"),
    ] {
        let mut cmd = remit(db.parent().unwrap(), Some(TEST_KEY));
        cmd.env("REMIT_REPLICATE_CA_FILE", &ca)
            .args(["replicate", "--once", "--db"])
            .arg(&db)
            .args([
                "--to",
                "postgres://remit:s3cret@127.0.0.1:9/ledgers?sslmode=disable",
            ]);
        let ran = run(cmd);
        assert_eq!(ran.code, Some(2), "{ran}");
        assert!(
            ran.stderr.contains("REMIT_REPLICATE_CA_FILE") && ran.stderr.contains(says),
            "{ran}"
        );
        assert!(!ran.stderr.contains("cannot connect"), "{ran}");
    }
}

// A first copy: every row, only ciphertext for PII, amounts queryable, the same constraints
// and the same check in the same words (a tampered replica is caught as the file would be).
#[test]
fn a_first_copy_holds_every_row_with_pii_only_as_ciphertext_and_checks_alike() {
    if skipped("a_first_copy_holds_every_row_with_pii_only_as_ciphertext_and_checks_alike") {
        return;
    }
    let pg = Postgres::start();
    let url = pg.database("pilot");
    let app = spawn_app();
    let escrow = app.active_escrow(300, &["rent", "school_fees"]);
    let paid = app.request(&escrow, "rent", 1500, "ACC1");
    let failed = app.request(&escrow, "rent", 1500, FAIL_ACCOUNT);
    let waiting = app.request(&escrow, "school_fees", 3000, "ACC3");
    for id in [&paid, &failed] {
        assert_eq!(app.approve(id).status, 200);
    }
    app.wait_for_status(&paid, &["paid"]);
    app.wait_for_status(&failed, &["failed"]);
    app.pending_escrow(100, &["water"], None);
    let cancelled = app.active_escrow(50, &["water"]);
    let r = app.post(
        &format!("/escrows/{cancelled}/cancel"),
        &app.sender,
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let rate = json!({"rate": 152.25}).to_string();
    let r = app.raw(
        "PUT",
        "/fx-rates/USD-KES",
        Some(&app.admin),
        Some(("application/json", rate.as_bytes())),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let dir = stop_app(app);
    let db = dir.path().join("remit.db");
    let ledger = ledger_id(&db);

    let first = replicate_once(&db, TEST_KEY, &url);
    assert_eq!(first.code, Some(0), "{first}");
    assert!(
        first
            .stdout
            .contains(&format!("ledger {ledger} replicated")),
        "{first}"
    );
    assert!(
        !format!("{first}").contains(PASSWORD),
        "the password was printed: {first}"
    );
    let mut client = pg.client("pilot");
    assert_same_rows(&db, &mut client, &ledger);
    assert_checks_clean_alike(&db, TEST_KEY, &url, &[]);

    // Nothing twice: a second run finds nothing to send.
    let again = replicate_once(&db, TEST_KEY, &url);
    assert_eq!(again.code, Some(0), "{again}");
    assert!(again.stdout.contains("(0 rows written)"), "{again}");

    // A replica whose schema was dropped by hand is copied again from scratch: it was
    // "relation … does not exist" at every cycle, said as an outage, until `--drop`.
    client
        .batch_execute(&format!("DROP SCHEMA remit_{ledger} CASCADE"))
        .unwrap();
    let rebuilt = replicate_once(&db, TEST_KEY, &url);
    assert_eq!(rebuilt.code, Some(0), "{rebuilt}");
    assert!(!rebuilt.stdout.contains("(0 rows written)"), "{rebuilt}");
    assert_same_rows(&db, &mut client, &ledger);

    // PostgreSQL never sees a name, a phone, a merchant or a note.
    let schema = format!("remit_{ledger}");
    for table in source::TABLES {
        let text: Option<String> = client
            .query_one(
                &format!(
                    "SELECT string_agg(t::text, ' ') FROM {schema}.{} t",
                    table.name
                ),
                &[],
            )
            .unwrap()
            .get(0);
        let text = text.unwrap_or_default();
        for pii in [
            "712345678",
            "733000001",
            "Wanjiru",
            "Amina",
            "Kenya Power",
            "888880",
        ] {
            assert!(!text.contains(pii), "{}: {pii} in the clear", table.name);
        }
    }
    let encrypted: String = client
        .query_one(&format!("SELECT name_enc FROM {schema}.users LIMIT 1"), &[])
        .unwrap()
        .get(0);
    assert!(encrypted.starts_with("v1."), "{encrypted}");
    // …and the amounts stay queryable: the replica adds up as the file does.
    let spent: i64 = client
        .query_one(
            &format!("SELECT SUM(spent_usd_cents)::bigint FROM {schema}.escrows"),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(spent, 1000, "one request of KES 1,500 paid at 150");
    let statuses: Vec<(String, String)> = client
        .query(
            &format!("SELECT id, status FROM {schema}.payment_requests"),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for (id, status) in [
        (&paid, "paid"),
        (&failed, "failed"),
        (&waiting, "pending_approval"),
    ] {
        assert!(
            statuses.contains(&(id.clone(), status.to_string())),
            "{id} {status}: {statuses:?}"
        );
    }

    // The replica's indexes: the unique ones (constraints, a partial one included) and those
    // that find rows by owner or parent; not the file's work queues (partial, or led by a status).
    let indexes: Vec<String> = client
        .query(
            "SELECT indexname FROM pg_indexes WHERE schemaname = $1 ORDER BY indexname",
            &[&schema],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for kept in [
        "escrows_short_ref",
        "deposits_receipt_number",
        "escrows_sender",
        "payment_requests_escrow",
        "ledger_entries_transaction",
        "audit_log_entity",
    ] {
        assert!(indexes.iter().any(|i| i == kept), "{kept}: {indexes:?}");
    }
    for queue in [
        "payment_requests_waiting",
        "payment_requests_waiting_by_id",
        "payouts_status",
        "escrows_status",
        "payouts_flagged",
        "escrows_short_ref_missing",
    ] {
        assert!(!indexes.iter().any(|i| i == queue), "{queue}: {indexes:?}");
    }

    // The replica keeps the file's constraints: no negative balance, an append-only journal.
    let refused = client
        .execute(
            &format!(
                "UPDATE {schema}.escrows SET remaining_usd_cents = -1,
                 spent_usd_cents = spent_usd_cents + remaining_usd_cents + 1 WHERE id = $1"
            ),
            &[&escrow],
        )
        .unwrap_err();
    assert_eq!(
        refused.as_db_error().and_then(|e| e.constraint()),
        Some("escrow_remaining_nonnegative"),
        "{refused}"
    );
    let refused = client
        .execute(&format!("DELETE FROM {schema}.ledger_entries"), &[])
        .unwrap_err();
    assert!(
        refused.to_string().contains("append-only")
            || format!("{refused:?}").contains("append-only"),
        "{refused:?}"
    );

    // A replica changed behind remit's back fails the check, in the file's words.
    client
        .execute(
            &format!(
                "UPDATE {schema}.escrows SET spent_usd_cents = spent_usd_cents + 1,
                 remaining_usd_cents = remaining_usd_cents - 1 WHERE id = $1"
            ),
            &[&escrow],
        )
        .unwrap();
    let tampered = check_replica(&db, TEST_KEY, &url, &[]);
    assert_eq!(tampered.code, Some(1), "{tampered}");
    assert!(
        tampered.stdout.contains(&format!(
            "MISMATCH escrow balances equal their journal accounts: escrow {escrow}: columns"
        )),
        "{tampered}"
    );
    assert!(
        tampered.stdout.contains(&format!(
            "MISMATCH row [\"{escrow}\"] of escrows differs from the file's in"
        )) && tampered.stdout.contains("spent_usd_cents"),
        "{tampered}"
    );

    // Changes the replica's own check cannot see (they break no sum and no chain): found by
    // comparing its rows with the file's (they passed, exit 0, until 2026-12-05).
    client
        .batch_execute(&format!(
            "UPDATE {schema}.users SET role = 'admin' WHERE role = 'agent';
             UPDATE {schema}.deposits SET reference = 'forged-ref' WHERE id = (SELECT min(id) FROM {schema}.deposits)"
        ))
        .unwrap();
    let edited = check_replica(&db, TEST_KEY, &url, &[]);
    assert_eq!(edited.code, Some(1), "{edited}");
    for needle in [
        "of users differs from the file's in role",
        "of deposits differs from the file's in reference",
    ] {
        assert!(edited.stdout.contains(needle), "{needle}: {edited}");
    }

    // A category renamed in the replica (its money then read as another's) is found by the
    // replica's own check, as on the file: by head office too, checking another kiosk's
    // replica with no file to compare it with (it passed there until 2026-12-07).
    client
        .batch_execute(&format!(
            "UPDATE {schema}.spending_categories SET name = 'renamed' WHERE id = (SELECT min(id) FROM {schema}.spending_categories)"
        ))
        .unwrap();
    let renamed = check_replica(&db, TEST_KEY, &url, &["--ledger", &ledger]);
    assert_eq!(renamed.code, Some(1), "{renamed}");
    assert!(
        renamed.stdout.contains(
            "MISMATCH every category is the name and the allocation its escrow's audit line made it with: category cat_"
        ) && renamed.stdout.contains(" is renamed with "),
        "{renamed}"
    );

    // An encrypted value damaged in the replica is said, as on the file.
    client
        .batch_execute(&format!(
            "UPDATE {schema}.users SET name_enc = name_enc || 'x' WHERE id = (SELECT min(id) FROM {schema}.users)"
        ))
        .unwrap();
    let damaged = check_replica(&db, TEST_KEY, &url, &[]);
    assert_eq!(damaged.code, Some(1), "{damaged}");
    assert!(
        damaged
            .stdout
            .contains("does not open under the key (damaged, or written under another)"),
        "{damaged}"
    );

    // A guard dropped or switched off on the replica is said, as on the file.
    client
        .batch_execute(&format!(
            "DROP TRIGGER audit_log_append_only ON {schema}.audit_log;
             ALTER TABLE {schema}.ledger_entries DISABLE TRIGGER ledger_entries_append_only;
             DROP TRIGGER ledger_transactions_append_only ON {schema}.ledger_transactions;
             CREATE TRIGGER ledger_transactions_append_only BEFORE UPDATE OR DELETE ON {schema}.ledger_transactions
                 FOR EACH ROW WHEN (false) EXECUTE FUNCTION {schema}.append_only();"
        ))
        .unwrap();
    let unguarded = check_replica(&db, TEST_KEY, &url, &[]);
    assert_eq!(unguarded.code, Some(1), "{unguarded}");
    for needle in [
        "(their append-only guards are in place): table audit_log: its trigger audit_log_append_only is missing",
        "(their append-only guards are in place): table ledger_entries: its trigger ledger_entries_append_only is not the one remit made",
        "(their append-only guards are in place): table ledger_transactions: its trigger ledger_transactions_append_only is not the one remit made",
    ] {
        assert!(unguarded.stdout.contains(needle), "{needle}: {unguarded}");
    }

    // An audit line's amount rewritten as a number PostgreSQL's casts refuse (`16667.0`
    // for `16667`), and another's details made not JSON: each is said as a mismatch of the
    // checks that read it, and the check goes on to its other parts (it stopped, exit 2 and
    // no report, until 2026-12-07).
    client
        .batch_execute(&format!(
            "UPDATE {schema}.audit_log SET details = regexp_replace(details, '\"amountUsdCents\":([0-9]+)', '\"amountUsdCents\":\\1.0')
                 WHERE seq = (SELECT min(seq) FROM {schema}.audit_log WHERE action = 'escrow.deposited');
             UPDATE {schema}.audit_log SET details = '{{not json'
                 WHERE seq = (SELECT min(seq) FROM {schema}.audit_log WHERE action = 'escrow.created')"
        ))
        .unwrap();
    let unreadable = check_replica(&db, TEST_KEY, &url, &[]);
    assert_eq!(unreadable.code, Some(1), "{unreadable}");
    for needle in [
        "a row: holds a value this check cannot read, which remit never writes (PostgreSQL says: invalid input syntax for type bigint: \"",
        "a row: holds a value this check cannot read, which remit never writes (PostgreSQL says: invalid input syntax for type json",
    ] {
        assert!(unreadable.stdout.contains(needle), "{needle}: {unreadable}");
    }

    // A row of `meta` made up in the replica, and its position moved back by hand (it then
    // holds rows stamped after it): said too (both passed the comparison at first).
    client
        .batch_execute(&format!(
            "INSERT INTO {schema}.meta (key, value, change_seq) VALUES ('zz_fake', '1', 5);
             UPDATE remit_replication.ledgers SET change_seq = 10"
        ))
        .unwrap();
    let moved = check_replica(&db, TEST_KEY, &url, &[]);
    assert_eq!(moved.code, Some(1), "{moved}");
    for needle in [
        "row [\"zz_fake\"] of meta is in the replica but not in the file",
        "in the replica is stamped after the replica's position (change 10)",
    ] {
        assert!(moved.stdout.contains(needle), "{needle}: {moved}");
    }
}

// Replication inside `remit serve` under the approval load (and the payouts it causes): the
// position only moves forward, every snapshot of the replica passes the integrity check while
// the load runs, the oldest change of each cycle waits under a second (p99), and the status
// reaches /metrics and GET /admin/replication without the password.
#[test]
fn changes_under_the_approval_load_reach_postgres_in_commit_order_within_a_second() {
    if skipped("changes_under_the_approval_load_reach_postgres_in_commit_order_within_a_second") {
        return;
    }
    let pg = Postgres::start();
    let url = pg.database("kiosk");
    let target = remit::replicate::Target::parse("test", &url, None).unwrap();
    let app = spawn_app_with(|c| c.replicate_to = Some(target.clone()));
    let db = app.dir.path().join("remit.db");
    let ledger = ledger_id(&db);
    // Half with a daily limit: their approvals write `daily_spend`, which the change log lists
    // by key.
    let escrows: Vec<String> = (0..12)
        .map(|i| app.active_escrow_limited(200, &["rent"], (i % 2 == 0).then_some(200)))
        .collect();
    let ids: Vec<String> = escrows
        .iter()
        .flat_map(|e| {
            (0..15)
                .map(|i| app.request(e, "rent", 150, &format!("R{i}")))
                .collect::<Vec<_>>()
        })
        .collect();

    let done = AtomicBool::new(false);
    let next = AtomicUsize::new(0);
    let keys = remit::crypto::Keys::new(&remit::crypto::MasterKey::from_hex(TEST_KEY).unwrap());
    let (checked, positions) = std::thread::scope(|s| {
        // A failed assertion below still stops the sampler (else the scope waits for it).
        let _stop = StopOnDrop(&done);
        let sampler = s.spawn(|| {
            let mut client = pg.client("kiosk");
            let (mut last, mut checked, mut positions) = (-1i64, 0, 0);
            let mut i = 0;
            while !done.load(Ordering::SeqCst) {
                let at = replica_position(&mut client, &ledger);
                assert!(
                    at >= last,
                    "the replica went back from change {last} to {at}"
                );
                if at > last {
                    positions += 1;
                }
                last = at;
                if at >= 0 && i % 10 == 0 {
                    let found =
                        remit::replicate::postgres::check(&target, &ledger, &keys, None).unwrap();
                    assert!(
                        found.report.is_clean(),
                        "the replica at change {} fails the check: {:?}",
                        found.position.change_seq,
                        found.report.mismatches
                    );
                    checked += 1;
                }
                i += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            (checked, positions)
        });
        for _ in 0..8 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(id) = ids.get(i) else { break };
                assert_eq!(app.approve(id).status, 200);
            });
        }
        // Every payout settles (the simulator pays them), then the replica catches up.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let open: i64 = read_only(&db)
                .query_row(
                    "SELECT COUNT(*) FROM payouts WHERE status IN ('queued', 'sent')",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            let approved: i64 = read_only(&db)
                .query_row("SELECT COUNT(*) FROM payouts", [], |r| r.get(0))
                .unwrap();
            if open == 0 && approved == ids.len() as i64 {
                break;
            }
            assert!(Instant::now() < deadline, "{open} payouts still open");
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut client = pg.client("kiosk");
        wait_for_position(
            &mut client,
            &ledger,
            file_counter(&db),
            Duration::from_secs(10),
        );
        done.store(true, Ordering::SeqCst);
        sampler.join().unwrap()
    });
    assert!(
        checked >= 2,
        "the replica was checked {checked} times during the load"
    );
    assert!(positions >= 3, "the position moved {positions} times");

    let status = app.get("/admin/replication", &app.admin);
    assert_eq!(status.status, 200);
    assert_eq!(status.body["enabled"], true, "{}", status.text);
    assert_eq!(status.body["ledgerId"], ledger.as_str());
    assert_eq!(status.body["connected"], true);
    assert!(!status.text.contains(PASSWORD), "{}", status.text);
    assert!(status.body["target"]
        .as_str()
        .unwrap()
        .starts_with("postgres://remit@127.0.0.1:"));
    let metrics = app.get("/metrics", &app.admin).text;
    assert!(
        metrics.contains("\nremit_replication_lag_seconds "),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nremit_replication_lag_changes "),
        "{metrics}"
    );
    let mut lags = app.replication_lags_ms();
    assert!(lags.len() >= 3, "{lags:?}");
    lags.sort_by(f64::total_cmp);
    let p99 = lags[(lags.len() - 1) * 99 / 100];
    eprintln!(
        "replication lag over {} cycles: p50 {:.0} ms, p99 {p99:.0} ms",
        lags.len(),
        lags[lags.len() / 2]
    );
    // The benchmark measures the release build's lag (README: under a second); this debug
    // build shares two cores with the whole test suite and with PostgreSQL, and over a few
    // dozen cycles the p99 is the slowest one: half of them within 2 s, none over 5 s.
    let p50 = lags[lags.len() / 2];
    assert!(
        p50 < 2000.0 && p99 < 5000.0,
        "replication lag p50 {p50:.0} ms, p99 {p99:.0} ms over {} cycles",
        lags.len()
    );

    // Inside `serve` the writer's change log names the changed rows: after the first copy
    // (and at most the cycle after it, whose range began before the log did) no cycle scans.
    // The rows compared below were found that way.
    let (cycles, listed) = app.replication_cycles_listed();
    assert!(
        listed >= 3 && listed + 2 >= cycles,
        "{listed} of {cycles} cycles used the change log"
    );

    let dir = stop_app(app);
    let db = dir.path().join("remit.db");
    // What the server wrote while stopping (token use, its last batch) follows with --once.
    let tail = replicate_once(&db, TEST_KEY, &url);
    assert_eq!(tail.code, Some(0), "{tail}");
    let mut client = pg.client("kiosk");
    assert_same_rows(&db, &mut client, &ledger);
    assert_checks_clean_alike(&db, TEST_KEY, &url, &[]);
}

fn spawn_replicator(db: &Path, url: &str, log: &Path) -> Child {
    remit(db.parent().unwrap(), Some(TEST_KEY))
        .args(["replicate", "--to", url])
        .arg("--db")
        .arg(db)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap(),
        )
        .spawn()
        .unwrap()
}

/// A replicator in a process of its own, beside a server upgraded meanwhile (its migration at
/// start changed the file's schema version and took a change number, as every migration does;
/// stood in for here by those two alone):
/// it went on with the tables as they were, its position stamped with the old version. It
/// stops with a sentence saying to start it again.
#[test]
fn a_replicator_of_its_own_stops_when_the_ledgers_schema_changes_under_it() {
    if skipped("a_replicator_of_its_own_stops_when_the_ledgers_schema_changes_under_it") {
        return;
    }
    let pg = Postgres::start();
    let url = pg.database("upgraded");
    let ts = closed_ledger_with_an_escrow();
    let db = ts.db_path();
    let ledger = ledger_id(&db);
    let log = ts.dir.path().join("replicate.log");
    let mut replicator = spawn_replicator(&db, &url, &log);
    let mut client = pg.client("upgraded");
    wait_for_position(
        &mut client,
        &ledger,
        file_counter(&db),
        Duration::from_secs(20),
    );
    let version = remit::store::latest_schema_version();
    // In one transaction, as a migration makes them.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(&format!(
            "BEGIN IMMEDIATE;
             UPDATE meta SET change_seq = change_seq + 1, value = CAST(change_seq + 1 AS TEXT)
                 WHERE key = 'change_seq';
             PRAGMA user_version = {};
             COMMIT;",
            version + 1
        ))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = replicator.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the replicator went on");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success());
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains(&format!(
            "the ledger's schema changed from version {version} to {}",
            version + 1
        )) && logged.contains("start `remit replicate` again"),
        "{logged}"
    );
}

fn wait_for_approvals(approved: &AtomicUsize, at_least: usize) {
    process::wait_for_count(approved, at_least);
}

// kill -9 of `remit replicate`, then of PostgreSQL, while approvals go on: the replica ends
// with exactly the file's rows (no gap, nothing twice), both checks clean; the replicator says
// when PostgreSQL is gone and when it caught up, and never prints the password.
#[test]
fn killing_the_replicator_or_postgres_mid_stream_loses_and_repeats_nothing() {
    if skipped("killing_the_replicator_or_postgres_mid_stream_loses_and_repeats_nothing") {
        return;
    }
    let mut pg = Postgres::start();
    let url = pg.database("crash");
    let ts = TestStore::new();
    let db = ts.db_path();
    let ledger = ledger_id(&db);
    let log = ts.dir.path().join("replicate.log");
    let stop = AtomicBool::new(false);
    let approved = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let load = s.spawn(|| ts.approve_until(5_000, &stop, &approved));
        let mut client = pg.client("crash");
        let mut replicator = spawn_replicator(&db, &url, &log);
        wait_for_approvals(&approved, 200);
        wait_for_position(&mut client, &ledger, 1, Duration::from_secs(20));
        replicator.kill().unwrap(); // SIGKILL, wherever it is
        replicator.wait().unwrap();
        let reached = replica_position(&mut client, &ledger);
        let mut replicator = spawn_replicator(&db, &url, &log);
        wait_for_position(&mut client, &ledger, reached + 1, Duration::from_secs(20));
        drop(client);
        let before = approved.load(Ordering::SeqCst);
        pg.kill9();
        wait_for_approvals(&approved, before + 300);
        pg.restart();
        let after = approved.load(Ordering::SeqCst);
        wait_for_approvals(&approved, after + 200);
        stop.store(true, Ordering::SeqCst);
        load.join().unwrap();
        // The same replicator, never restarted, reconnects and catches up by itself.
        let mut client = pg.client("crash");
        wait_for_position(
            &mut client,
            &ledger,
            file_counter(&db),
            Duration::from_secs(30),
        );
        process::sigterm(replicator.id());
        assert!(
            replicator.wait().unwrap().success(),
            "remit replicate did not stop cleanly on SIGTERM"
        );
        assert_same_rows(&db, &mut client, &ledger);
    });
    assert_checks_clean_alike(&db, TEST_KEY, &url, &[]);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("is not running"),
        "no line about PostgreSQL gone:\n{logged}"
    );
    assert!(
        logged.contains("resumed after"),
        "no line about catching up:\n{logged}"
    );
    assert!(
        !logged.contains(PASSWORD),
        "the password was logged:\n{logged}"
    );
    assert!(approved.load(Ordering::SeqCst) >= 700);
}

// A replica further behind than a cycle reads at once (more than
// `REPLICATION_STREAM_AFTER_CHANGES` transactions, e.g. after a long outage) is caught up from
// one snapshot whose rows are streamed, the changed rows of a stamped table in several upserts
// of at most `REPLICATION_UPSERT_ROWS` rows: afterwards it holds every row as the file does.
#[test]
fn a_replica_far_behind_catches_up_in_upserts_of_bounded_size() {
    if skipped("a_replica_far_behind_catches_up_in_upserts_of_bounded_size") {
        return;
    }
    let pg = Postgres::start();
    let url = pg.database("behind");
    let ts = TestStore::new();
    let db = ts.db_path();
    let ledger = ledger_id(&db);
    // More waiting requests than one upsert carries, on escrows with a daily limit, copied
    // while they wait; then all approved (their rows updated, `daily_spend` written).
    let sender = ts.user(Role::Sender, "Amina", None);
    let agent = ts.user(Role::Agent, "Kiosk", None);
    let per_escrow = remit::replicate::REPLICATION_UPSERT_ROWS / 4 + 100;
    let waiting: Vec<Vec<String>> = (0..4)
        .map(|i| {
            let escrow = ts.active_escrow(
                &sender,
                &agent,
                &format!("07130000{i:02}"),
                800_000,
                &["rent"],
                Some(100_000),
            );
            (0..per_escrow)
                .map(|_| {
                    ts.request(&agent, &escrow, "rent", 15_000).unwrap()["paymentRequestId"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect()
        })
        .collect();
    let first = replicate_once(&db, TEST_KEY, &url);
    assert_eq!(first.code, Some(0), "{first}");
    std::thread::scope(|s| {
        for ids in &waiting {
            let sender = &sender;
            let ts = &ts;
            s.spawn(move || {
                for id in ids {
                    ts.approve(sender, id).unwrap();
                }
            });
        }
    });
    let spent: i64 = read_only(&db)
        .query_row(
            "SELECT COUNT(DISTINCT escrow_id) FROM daily_spend",
            [],
            |r| r.get(0),
        )
        .unwrap();
    // (Two rows of one escrow if the approvals straddle midnight in Nairobi.)
    assert_eq!(spent, 4, "daily_spend rows of every escrow");
    // And numbers taken elsewhere (as another process would), so that the replica is further
    // behind than a cycle reads before writing.
    let behind = remit::replicate::REPLICATION_STREAM_AFTER_CHANGES + 1;
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute(
            "UPDATE meta SET change_seq = change_seq + ?1, value = CAST(change_seq + ?1 AS TEXT)
             WHERE key = 'change_seq'",
            [behind],
        )
        .unwrap();
    let caught_up = replicate_once(&db, TEST_KEY, &url);
    assert_eq!(caught_up.code, Some(0), "{caught_up}");
    let mut client = pg.client("behind");
    assert_eq!(replica_position(&mut client, &ledger), file_counter(&db));
    let approved_rows: i64 = client
        .query_one(
            &format!(
                "SELECT COUNT(*) FROM {}.payment_requests WHERE status <> 'pending_approval'",
                remit::replicate::postgres::schema_of(&ledger).unwrap()
            ),
            &[],
        )
        .unwrap()
        .get(0);
    assert!(approved_rows > remit::replicate::REPLICATION_UPSERT_ROWS as i64);
    assert_same_rows(&db, &mut client, &ledger);
}

// Two kiosks, two keys, one database: each ledger in its own schema under its own id, each
// replica checked with its own key (and refused with the other's).
#[test]
fn two_ledgers_land_in_one_database_under_their_own_ids() {
    if skipped("two_ledgers_land_in_one_database_under_their_own_ids") {
        return;
    }
    let pg = Postgres::start();
    let url = pg.database("pilot");
    let first = TestStore::new();
    let second_dir = tempfile::tempdir().unwrap();
    let second_db = second_dir.path().join("remit.db");
    let mut options = remit::store::OpenOptions::new(&second_db);
    options.key_hex = Some(OTHER_KEY.into());
    let second = TestStore {
        store: Arc::new(remit::store::open(&options).unwrap()),
        dir: second_dir,
    };
    for (ts, n) in [(&first, 2), (&second, 3)] {
        let sender = ts.user(Role::Sender, "Amina", None);
        let agent = ts.user(Role::Agent, "Kiosk", None);
        for i in 0..n {
            let escrow = ts.active_escrow(
                &sender,
                &agent,
                &format!("07220000{i:02}"),
                10_000,
                &["rent"],
                None,
            );
            let request = ts.request(&agent, &escrow, "rent", 15_000).unwrap();
            ts.approve(&sender, request["paymentRequestId"].as_str().unwrap())
                .unwrap();
        }
        ts.store.close();
    }
    let (db1, db2) = (first.db_path(), second.db_path());
    let (id1, id2) = (ledger_id(&db1), ledger_id(&db2));
    assert_ne!(id1, id2);
    assert_eq!(replicate_once(&db1, TEST_KEY, &url).code, Some(0));
    assert_eq!(replicate_once(&db2, OTHER_KEY, &url).code, Some(0));
    let mut client = pg.client("pilot");
    let ledgers: Vec<String> = client
        .query(
            "SELECT ledger_id FROM remit_replication.ledgers ORDER BY ledger_id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut want = vec![id1.clone(), id2.clone()];
    want.sort();
    assert_eq!(ledgers, want);
    assert_same_rows(&db1, &mut client, &id1);
    assert_same_rows(&db2, &mut client, &id2);
    for (id, n) in [(&id1, 2i64), (&id2, 3)] {
        let escrows: i64 = client
            .query_one(&format!("SELECT COUNT(*) FROM remit_{id}.escrows"), &[])
            .unwrap()
            .get(0);
        assert_eq!(escrows, n, "{id}");
    }
    // The first ledger by default (the one of --db), the second by its id and its key.
    assert_checks_clean_alike(&db1, TEST_KEY, &url, &[]);
    let key_file = first.dir.path().join("other.key");
    std::fs::write(&key_file, OTHER_KEY).unwrap();
    let other = check_replica(
        &db1,
        TEST_KEY,
        &url,
        &["--ledger", &id2, "--key-file", key_file.to_str().unwrap()],
    );
    assert_eq!(other.code, Some(0), "{other}");
    assert!(
        other.stdout.contains(&format!("replica of ledger {id2}"))
            && other.stdout.contains("ok: the ledger holds"),
        "{other}"
    );
    let wrong = check_replica(&db1, TEST_KEY, &url, &["--ledger", &id2]);
    assert_eq!(wrong.code, Some(2), "{wrong}");
    assert!(
        wrong.stderr.contains(&format!(
            "the key is not the one ledger {id2}'s replica holds"
        )),
        "{wrong}"
    );
}

/// The triggers of schemas 6 and 7, as they were before replication.
const STATE_COUNT_TRIGGERS_BEFORE: &str = "
DROP TRIGGER state_counts_escrow_insert; DROP TRIGGER state_counts_escrow_update;
DROP TRIGGER state_counts_payout_insert; DROP TRIGGER state_counts_payout_update;
CREATE TRIGGER state_counts_escrow_insert AFTER INSERT ON escrows BEGIN
    INSERT INTO state_counts (entity, status, n) VALUES ('escrow', NEW.status, 1)
        ON CONFLICT (entity, status) DO UPDATE SET n = n + 1; END;
CREATE TRIGGER state_counts_escrow_update AFTER UPDATE OF status ON escrows WHEN OLD.status <> NEW.status BEGIN
    UPDATE state_counts SET n = n - 1 WHERE entity = 'escrow' AND status = OLD.status;
    INSERT INTO state_counts (entity, status, n) VALUES ('escrow', NEW.status, 1)
        ON CONFLICT (entity, status) DO UPDATE SET n = n + 1; END;
CREATE TRIGGER state_counts_payout_insert AFTER INSERT ON payouts BEGIN
    INSERT INTO state_counts (entity, status, n) VALUES ('payout', NEW.status, 1)
        ON CONFLICT (entity, status) DO UPDATE SET n = n + 1; END;
CREATE TRIGGER state_counts_payout_update AFTER UPDATE OF status ON payouts WHEN OLD.status <> NEW.status BEGIN
    UPDATE state_counts SET n = n - 1 WHERE entity = 'payout' AND status = OLD.status;
    INSERT INTO state_counts (entity, status, n) VALUES ('payout', NEW.status, 1)
        ON CONFLICT (entity, status) DO UPDATE SET n = n + 1; END;";

/// Every table of the file is replicated or left out by decision (`source::LEFT_OUT`, each with
/// its reason): a new table that is neither fails here. Needs no PostgreSQL.
#[test]
fn every_table_is_replicated_or_left_out_on_purpose() {
    let ts = TestStore::new();
    let tables: Vec<String> = ts
        .store
        .read(|conn, _| {
            let mut stmt = conn.prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
            )?;
            let names = stmt
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok(names)
        })
        .unwrap();
    let replicated: Vec<&str> = source::TABLES.iter().map(|t| t.name).collect();
    for table in &tables {
        let named = replicated.contains(&table.as_str()) as u8
            + source::LEFT_OUT.contains(&table.as_str()) as u8;
        assert_eq!(
            named, 1,
            "{table} must be in exactly one of replicate::source::TABLES and LEFT_OUT"
        );
    }
    for name in replicated.iter().chain(source::LEFT_OUT) {
        assert!(
            tables.iter().any(|t| t == name),
            "{name} is named but the file has no such table"
        );
    }
}

/// What schema 9 (notifications) added, taken away again.
const NOTIFICATIONS_UNDONE: &str = "
DROP TABLE sms_messages; DROP TABLE webhook_attempts; DROP TABLE webhook_deliveries;
DROP TABLE webhook_endpoints; DROP TABLE outbox_positions; DROP TABLE outbox_events;
ALTER TABLE users DROP COLUMN language; ALTER TABLE payouts DROP COLUMN stuck_event_at;";

/// Schema 12 undone: `api_tokens` as schema 1 made it (a column that references another table
/// cannot be dropped, so the table is made again).
const TOKEN_SCOPE_UNDONE: &str = "
PRAGMA foreign_keys = OFF;
CREATE TABLE api_tokens_before (
    token_hash   BLOB PRIMARY KEY CHECK (length(token_hash) = 32),
    prefix       TEXT NOT NULL UNIQUE,
    user_id      TEXT NOT NULL REFERENCES users(id),
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
) STRICT;
INSERT INTO api_tokens_before
    SELECT token_hash, prefix, user_id, created_at, last_used_at, revoked_at FROM api_tokens;
DROP TABLE api_tokens;
ALTER TABLE api_tokens_before RENAME TO api_tokens;
CREATE INDEX api_tokens_user ON api_tokens(user_id);";

// A ledger made before replication existed (schema 7) is migrated by remit and then
// replicated whole; and a replica made at an older schema version is made again from the
// file's own definitions when the file's schema has moved on.
#[test]
fn a_ledger_from_before_replication_is_migrated_then_replicated_and_an_older_replica_is_remade() {
    if skipped("a_ledger_from_before_replication_is_migrated_then_replicated_and_an_older_replica_is_remade") {
        return;
    }
    let pg = Postgres::start();
    let url = pg.database("upgrade");
    let ts = TestStore::new();
    let sender = ts.user(Role::Sender, "Amina", Some("0733000001"));
    let agent = ts.user(Role::Agent, "Kiosk", None);
    let escrow = ts.active_escrow(
        &sender,
        &agent,
        "0712345678",
        20_000,
        &["rent", "water"],
        None,
    );
    let request = ts.request(&agent, &escrow, "water", 30_000).unwrap();
    ts.approve(&sender, request["paymentRequestId"].as_str().unwrap())
        .unwrap();
    ts.store.close();
    let db = ts.db_path();
    {
        // Back to schema 7, as an older remit left it: no sealed resolve reasons (schema 15),
        // no token scopes (schema 12), no index of waiting requests by id (schema 10), no
        // notifications (schema 9), no stamps, no counter, no ledger id.
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("ALTER TABLE payouts DROP COLUMN resolve_reason_enc;")
            .unwrap();
        conn.execute_batch(TOKEN_SCOPE_UNDONE).unwrap();
        conn.execute_batch(crate::support::BACK_TO_SCHEMA_17)
            .unwrap();
        conn.execute_batch("DROP INDEX ledger_transactions_escrow;")
            .unwrap();
        conn.execute_batch("DROP INDEX payment_requests_waiting_by_id;")
            .unwrap();
        conn.execute_batch(NOTIFICATIONS_UNDONE).unwrap();
        conn.execute_batch(STATE_COUNT_TRIGGERS_BEFORE).unwrap();
        for table in source::TABLES
            .iter()
            .filter(|t| t.kind == source::Kind::Stamped)
        {
            conn.execute_batch(&format!(
                "ALTER TABLE {} DROP COLUMN change_seq",
                table.name
            ))
            .unwrap();
        }
        conn.execute_batch(
            "DELETE FROM meta WHERE key IN ('change_seq', 'ledger_id'); PRAGMA user_version = 7;",
        )
        .unwrap();
    }
    let mut options = remit::store::OpenOptions::new(&db);
    options.key_hex = Some(TEST_KEY.into());
    options.create = false;
    let store = remit::store::open(&options).unwrap(); // migrates to the latest schema
    let stamped_zero: i64 = store
        .read(|conn, _| {
            Ok(conn.query_row(
                "SELECT COUNT(*) FROM escrows WHERE change_seq = 0",
                [],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(stamped_zero, 1, "rows older than the counter are stamped 0");
    store.close();
    drop(store);
    let ledger = ledger_id(&db);

    let ran = replicate_once(&db, TEST_KEY, &url);
    assert_eq!(ran.code, Some(0), "{ran}");
    let mut client = pg.client("upgrade");
    assert_same_rows(&db, &mut client, &ledger);
    assert_checks_clean_alike(&db, TEST_KEY, &url, &[]);

    // As if an older remit had made the replica: an older version and a table without a column.
    client
        .batch_execute(&format!(
            "UPDATE remit_replication.ledgers SET schema_version = 7;
             ALTER TABLE remit_{ledger}.escrows DROP COLUMN short_ref;"
        ))
        .unwrap();
    let ran = replicate_once(&db, TEST_KEY, &url);
    assert_eq!(ran.code, Some(0), "{ran}");
    assert!(
        !ran.stdout.contains("(0 rows written)"),
        "the replica was not made again: {ran}"
    );
    assert_same_rows(&db, &mut client, &ledger);
    let version: i32 = client
        .query_one("SELECT schema_version FROM remit_replication.ledgers", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, remit::store::latest_schema_version() as i32);
    assert_checks_clean_alike(&db, TEST_KEY, &url, &[]);

    // A replica one schema behind across a migration that changed a replicated table (schema
    // 15, a column of `payouts`) is made again, the column with it. (One behind across a
    // migration that changed only tables replication leaves out, schema 14, is kept:
    // `replicate::source`'s test of `replica_outdated`.)
    client
        .batch_execute(&format!(
            "UPDATE remit_replication.ledgers SET schema_version = 14;
             ALTER TABLE remit_{ledger}.payouts DROP COLUMN resolve_reason_enc;
             ALTER TABLE remit_{ledger}.ledger_transactions DROP COLUMN prev_id;
             ALTER TABLE remit_{ledger}.escrows DROP COLUMN last_transaction_id;
             CREATE TABLE remit_{ledger}.kept_marker (x int);"
        ))
        .unwrap();
    // Checked before replication makes it again, its rows are not compared with the file's
    // (a column the replica lacks failed the whole check), nor are the checks of columns its
    // schema has not got run (schema 18's journal chain).
    let older = check_replica(&db, TEST_KEY, &url, &[]);
    assert_eq!(older.code, Some(0), "{older}");
    assert!(
        older
            .stdout
            .contains("not compared (the replica is of schema version 14, the file of"),
        "{older}"
    );
    assert!(
        older.stdout.contains(
            "every journal transaction follows its escrow's one before it: not run (the replica is of schema version 14, the check needs 18"
        ),
        "{older}"
    );
    let ran = replicate_once(&db, TEST_KEY, &url);
    assert_eq!(ran.code, Some(0), "{ran}");
    assert!(!ran.stdout.contains("(0 rows written)"), "{ran}");
    let kept: bool = client
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&format!("remit_{ledger}.kept_marker")],
        )
        .unwrap()
        .get(0);
    assert!(!kept, "the replica was not made again across schema 15");
    assert_same_rows(&db, &mut client, &ledger);
    let version: i32 = client
        .query_one("SELECT schema_version FROM remit_replication.ledgers", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, remit::store::latest_schema_version() as i32);
}

/// The SQL of docs/replica.md, by its section: (section heading, the query).
fn replica_guide_queries() -> Vec<(String, String)> {
    let guide =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/replica.md")).unwrap();
    let (mut section, mut queries, mut open) = (String::new(), Vec::new(), None::<String>);
    for line in guide.lines() {
        match (&mut open, line) {
            (None, l) if l.starts_with("## ") => section = l[3..].to_string(),
            (None, "```sql") => open = Some(String::new()),
            (Some(sql), "```") => {
                queries.push((section.clone(), std::mem::take(sql)));
                open = None;
            }
            (Some(sql), l) => {
                sql.push_str(l);
                sql.push('\n');
            }
            _ => {}
        }
    }
    queries
}

/// Each cell of each row a query answers, as text.
fn text_rows(client: &mut postgres::Client, sql: &str) -> Vec<Vec<String>> {
    client
        .simple_query(sql)
        .unwrap_or_else(|e| panic!("{e}: {sql}"))
        .into_iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).unwrap_or("").to_string())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

// The guide for head office (docs/replica.md) holds queries: each runs as written on a replica
// of two kiosks' ledgers, and those that sum money add up to the files' own figures.
#[test]
fn the_replica_guides_queries_run_and_add_up() {
    if skipped("the_replica_guides_queries_run_and_add_up") {
        return;
    }
    let pg = Postgres::start();
    let url = pg.database("guide");
    let mut ledgers = Vec::new();
    for (kiosk, payments) in [(0, 1), (1, 2)] {
        let app = spawn_app();
        let escrow = app.active_escrow(100 + kiosk, &["electricity", "water"]);
        for i in 0..payments {
            let request = app.request(&escrow, "electricity", 1_500 + i, "12345");
            assert_eq!(app.approve(&request).status, 200);
            app.wait_for_status(&request, &["paid"]);
        }
        let failing = app.request(&escrow, "water", 700, FAIL_ACCOUNT);
        assert_eq!(app.approve(&failing).status, 200);
        app.wait_for_status(&failing, &["failed"]);
        // An escrow cancelled before all its money came (its deposit never reached a category).
        let partial = app.pending_escrow(50, &["rent"], None);
        let r = app.post(
            &format!("/escrows/{partial}/deposits"),
            &app.agent,
            &json!({"amountUsd": 20, "reference": format!("cash-part-{kiosk}")}),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        let r = app.post(
            &format!("/escrows/{partial}/cancel"),
            &app.sender,
            &json!({}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
        let dir = stop_app(app);
        let db = dir.path().join("remit.db");
        assert_eq!(replicate_once(&db, TEST_KEY, &url).code, Some(0));
        ledgers.push((ledger_id(&db), db, dir));
    }
    let cents =
        |db: &Path, sql: &str| -> i64 { read_only(db).query_row(sql, [], |r| r.get(0)).unwrap() };
    let as_cents = |usd: &str| -> i64 { (usd.parse::<f64>().unwrap() * 100.0).round() as i64 };
    let queries = replica_guide_queries();
    let one_kiosk: Vec<&String> = queries
        .iter()
        .filter(|(section, _)| section == "One kiosk")
        .map(|(_, sql)| sql)
        .collect();
    let pilot: Vec<&String> = queries
        .iter()
        .filter(|(section, _)| section == "The whole pilot")
        .map(|(_, sql)| sql)
        .collect();
    assert_eq!((one_kiosk.len(), pilot.len()), (6, 3), "{queries:?}");
    let mut client = pg.client("guide");
    for (ledger, db, _) in &ledgers {
        let set =
            one_kiosk[0].replace("remit_ldg_0123456789abcdef0123", &format!("remit_{ledger}"));
        assert_ne!(
            &set, one_kiosk[0],
            "the guide's search_path names its example schema"
        );
        client.batch_execute(&set).unwrap();
        let answers: Vec<Vec<Vec<String>>> = one_kiosk[1..]
            .iter()
            .map(|sql| text_rows(&mut client, sql))
            .collect();
        for (sql, rows) in one_kiosk[1..].iter().zip(&answers) {
            assert!(!rows.is_empty(), "no rows: {sql}");
        }
        // Held by category: the file's balances of active escrows.
        let held: i64 = answers[0].iter().map(|r| as_cents(&r[1])).sum();
        assert_eq!(
            held,
            cents(
                db,
                "SELECT SUM(c.remaining_usd_cents) FROM spending_categories c
                 JOIN escrows e ON e.id = c.escrow_id WHERE e.status = 'active'"
            )
        );
        // Payouts by day: one failed, the others succeeded, their KES the file's.
        let failed: i64 = answers[1]
            .iter()
            .filter(|r| r[2] == "failed")
            .map(|r| r[3].parse::<i64>().unwrap())
            .sum();
        assert_eq!(failed, 1, "{:?}", answers[1]);
        // The journal's accounts: `available` is the categories' remaining.
        let available = answers[4]
            .iter()
            .find(|r| r[0] == "available")
            .map(|r| as_cents(&r[1]))
            .unwrap();
        assert_eq!(
            available,
            cents(
                db,
                "SELECT SUM(remaining_usd_cents) FROM spending_categories"
            )
        );
        let account = |name: &str| -> i64 {
            answers[4]
                .iter()
                .filter(|r| r[0] == name)
                .map(|r| as_cents(&r[1]))
                .sum()
        };
        assert_eq!(
            account("spent"),
            cents(db, "SELECT SUM(spent_usd_cents) FROM spending_categories")
        );
        assert_eq!(
            account("refunded") + account("escrow:refunded"),
            cents(db, "SELECT SUM(refunded_usd_cents) FROM escrows")
        );
        let whole: i64 = answers[4].iter().map(|r| as_cents(&r[1])).sum();
        assert_eq!(whole, 0, "the journal sums to zero: {:?}", answers[4]);
    }
    client.batch_execute("RESET search_path").unwrap();
    client.batch_execute(pilot[0]).unwrap();
    let across = text_rows(&mut client, pilot[1]);
    for (ledger, db, _) in &ledgers {
        let theirs: i64 = across
            .iter()
            .filter(|r| &r[0] == ledger)
            .map(|r| as_cents(&r[2]))
            .sum();
        assert_eq!(
            theirs,
            cents(
                db,
                "SELECT SUM(c.remaining_usd_cents) FROM spending_categories c
                 JOIN escrows e ON e.id = c.escrow_id WHERE e.status = 'active'"
            ),
            "{across:?}"
        );
    }
    assert_eq!(text_rows(&mut client, pilot[2]).len(), 2);
    // The function depends on no replica: a replica is still dropped (and copied again).
    let mut cmd = remit(ledgers[0].2.path(), Some(TEST_KEY));
    cmd.args(["replicate", "--drop", "--to", &url])
        .arg("--db")
        .arg(&ledgers[0].1);
    let dropped = run(cmd);
    assert_eq!(dropped.code, Some(0), "{dropped}");
}

// A kiosk's ledger restored over another's (`--other-ledger`): the restore names the replaced
// ledger's replica to drop by its id, and `replicate --drop --ledger` drops that one, reading no
// file. Until 2026-12-07 it advised a bare `--drop`, which dropped the restored ledger's replica,
// another kiosk's, still fed by that kiosk.
#[test]
fn a_restore_over_another_ledger_names_the_replica_to_drop_by_its_id() {
    if skipped("a_restore_over_another_ledger_names_the_replica_to_drop_by_its_id") {
        return;
    }
    let pg = Postgres::start();
    let url = pg.database("pilot");
    let (here, there) = (TestStore::new(), TestStore::new());
    for ts in [&here, &there] {
        let sender = ts.user(Role::Sender, "Amina", None);
        let agent = ts.user(Role::Agent, "Kiosk", None);
        ts.active_escrow(&sender, &agent, "0712345678", 10_000, &["rent"], None);
        ts.store.close();
    }
    let (db, theirs) = (here.db_path(), there.db_path());
    let (replaced, restored) = (ledger_id(&db), ledger_id(&theirs));
    let backup = there.dir.path().join("backup.db");
    let mut cmd = remit(there.dir.path(), Some(TEST_KEY));
    cmd.arg("backup").arg(&backup).arg("--db").arg(&theirs);
    assert_eq!(run(cmd).code, Some(0));
    assert_eq!(replicate_once(&db, TEST_KEY, &url).code, Some(0));
    assert_eq!(replicate_once(&theirs, TEST_KEY, &url).code, Some(0));

    let mut cmd = remit(here.dir.path(), Some(TEST_KEY));
    cmd.arg("restore")
        .arg(&backup)
        .arg("--other-ledger")
        .arg("--db")
        .arg(&db);
    let said = run(cmd);
    assert_eq!(said.code, Some(0), "{said}");
    assert!(
        said.stdout
            .contains(&format!("`remit replicate --drop --ledger {replaced}`"))
            && said.stdout.contains(&format!(
                "If ledger {restored} was replicated from its own machine"
            )),
        "{said}"
    );
    // `--ledger` only with `--drop`; with it, no file is read (this --db names none).
    let drop = |more: &[&str]| {
        let mut cmd = remit(here.dir.path(), None);
        cmd.args(["replicate", "--to", &url, "--ledger", &replaced])
            .args(more)
            .arg("--db")
            .arg(here.dir.path().join("absent.db"));
        run(cmd)
    };
    assert_eq!(drop(&[]).code, Some(2));
    let dropped = drop(&["--drop"]);
    assert_eq!(dropped.code, Some(0), "{dropped}");
    assert!(
        dropped
            .stdout
            .contains(&format!("dropped the replica of ledger {replaced}")),
        "{dropped}"
    );
    let mut client = pg.client("pilot");
    let ledgers: Vec<String> = client
        .query("SELECT ledger_id FROM remit_replication.ledgers", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ledgers, vec![restored.clone()]);
    assert_same_rows(&theirs, &mut client, &restored);
}

// A file put back from an older backup is not the history its replica holds: replication
// refuses it, says why and what to do, and leaves the replica as it was.
#[test]
fn a_file_restored_from_an_older_backup_is_refused_and_the_replica_left_alone() {
    if skipped("a_file_restored_from_an_older_backup_is_refused_and_the_replica_left_alone") {
        return;
    }
    let pg = Postgres::start();
    let url = pg.database("restore");
    let ts = TestStore::new();
    let sender = ts.user(Role::Sender, "Amina", None);
    let agent = ts.user(Role::Agent, "Kiosk", None);
    let escrow = ts.active_escrow(&sender, &agent, "0712345678", 20_000, &["rent"], None);
    let backup = ts.dir.path().join("backup.db");
    rusqlite::Connection::open(ts.db_path())
        .unwrap()
        .execute("VACUUM INTO ?1", [backup.to_str().unwrap()])
        .unwrap();
    for _ in 0..3 {
        let request = ts.request(&agent, &escrow, "rent", 15_000).unwrap();
        ts.approve(&sender, request["paymentRequestId"].as_str().unwrap())
            .unwrap();
    }
    ts.store.close();
    let db = ts.db_path();
    let ledger = ledger_id(&db);
    assert_eq!(ledger_id(&backup), ledger, "a backup is the same ledger");
    assert_eq!(replicate_once(&db, TEST_KEY, &url).code, Some(0));
    let mut client = pg.client("restore");
    let before = replica_position(&mut client, &ledger);

    let refused = refused_as_another_history(&backup, &url);
    assert!(
        refused.stderr.contains("remit replicate --drop")
            && refused.stderr.contains("it holds changes up to"),
        "{refused}"
    );
    assert_eq!(replica_position(&mut client, &ledger), before);
    assert_same_rows(&db, &mut client, &ledger);
    // The replica's own check finds nothing wrong in it; compared with the restored file, it
    // holds rows the file does not (it said "ok: the ledger holds" until 2026-12-05).
    let compared = check_replica(&backup, TEST_KEY, &url, &[]);
    assert_eq!(compared.code, Some(1), "{compared}");
    assert!(
        compared
            .stdout
            .contains("of payment_requests is in the replica but not in the file"),
        "{compared}"
    );
}

// The same, the newest rows of the replica all rows the copy restamped too (an event received
// before the split and sent again in both copies): the rows stamped before them tell the copy.
#[test]
fn a_copy_is_refused_when_its_newest_rows_were_restamped_in_both() {
    if skipped("a_copy_is_refused_when_its_newest_rows_were_restamped_in_both") {
        return;
    }
    let pg = Postgres::start();
    let url = pg.database("restamped");
    let ts = closed_ledger_with_an_escrow();
    let a = ts.db_path();
    ignored_stripe_events(&a, &["evt_zero"]);
    assert_eq!(replicate_once(&a, TEST_KEY, &url).code, Some(0));
    let (_other, b) = copy_of(&a);
    let ledger = ledger_id(&a);

    ignored_stripe_events(&a, &["evt_a1", "evt_a2", "evt_zero"]);
    assert_eq!(replicate_once(&a, TEST_KEY, &url).code, Some(0));
    let mut client = pg.client("restamped");
    let before = replica_position(&mut client, &ledger);
    ignored_stripe_events(
        &b,
        &["evt_b1", "evt_b2", "evt_b3", "evt_b4", "evt_b5", "evt_zero"],
    );
    refused_as_another_history(&b, &url);
    assert_eq!(replica_position(&mut client, &ledger), before);
    assert_same_rows(&a, &mut client, &ledger);
}

/// Guards against: a replica made by a remit before 2026-12-05 (its control table without the
/// newest rows, which replication adds) could not be checked by `check --postgres` ("column
/// newest_rows does not exist", exit 2) until replication had run again.
#[test]
fn a_replica_from_before_the_newest_rows_is_checked_as_it_is() {
    if skipped("a_replica_from_before_the_newest_rows_is_checked_as_it_is") {
        return;
    }
    let pg = Postgres::start();
    let url = pg.database("older");
    let ts = closed_ledger_with_an_escrow();
    let db = ts.db_path();
    assert_eq!(replicate_once(&db, TEST_KEY, &url).code, Some(0));
    let mut client = pg.client("older");
    client
        .batch_execute("ALTER TABLE remit_replication.ledgers DROP COLUMN newest_rows")
        .unwrap();
    let checked = check_replica(&db, TEST_KEY, &url, &[]);
    assert_eq!(checked.code, Some(0), "{checked}");
    // Replication adds the column again, and goes on from the position it holds.
    assert_eq!(replicate_once(&db, TEST_KEY, &url).code, Some(0));
    assert_same_rows(&db, &mut client, &ledger_id(&db));
}

/// Replicates `db` once into `url`, which must refuse it as another history; its run, for
/// what else it should say.
fn refused_as_another_history(db: &Path, url: &str) -> Ran {
    let refused = replicate_once(db, TEST_KEY, url);
    assert_ne!(refused.code, Some(0), "{refused}");
    assert!(
        refused
            .stderr
            .contains("holds a history this file does not"),
        "{refused}"
    );
    refused
}

/// A ledger with a sender, an agent and a funded escrow, its store closed (its file whole).
fn closed_ledger_with_an_escrow() -> TestStore {
    let ts = TestStore::new();
    let sender = ts.user(Role::Sender, "Amina", None);
    let agent = ts.user(Role::Agent, "Kiosk", None);
    ts.active_escrow(&sender, &agent, "0712345678", 20_000, &["rent"], None);
    ts.store.close();
    ts
}

/// A copy of the ledger file `db` in a directory of its own (kept while the value lives).
fn copy_of(db: &Path) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("remit.db");
    std::fs::copy(db, &copy).unwrap();
    (dir, copy)
}

/// Records Stripe events of a type remit ignores in the ledger at `db`: a row of
/// `webhook_events` each, and no audit line.
fn ignored_stripe_events(db: &Path, ids: &[&str]) {
    let mut options = remit::store::OpenOptions::new(db.to_path_buf());
    options.key_hex = Some(TEST_KEY.into());
    let store = remit::store::open(&options).unwrap();
    for id in ids {
        let event = remit::wire::stripe::Event::parse(
            json!({"id": id, "type": "customer.created", "data": {"object": {}}}),
        )
        .unwrap();
        let raw = serde_json::to_vec(&event.body).unwrap();
        store
            .write(move |ctx| remit::service::webhooks::apply_stripe_event(ctx, &event, &raw))
            .unwrap();
    }
    store.close();
}

/// A text holding a NUL is text PostgreSQL refuses: a word an outside caller sent with one (a
/// dispute's reason, M-Pesa's result words or ids: refused or cleaned at the door since, but
/// kept in ledgers from before) made every replication cycle fail on that row, for good, the
/// position never moving again. It reaches the replica with U+FFFD in the NUL's place, the rows
/// after it follow, and the checks of both sides agree. (The NUL is written here straight
/// into a flagged deposit's reason, stamped as remit stamps a change.)
#[test]
fn a_text_holding_a_nul_reaches_the_replica_with_a_replacement_character() {
    if skipped("a_text_holding_a_nul_reaches_the_replica_with_a_replacement_character") {
        return;
    }
    let pg = Postgres::start();
    let url = pg.database("nul");
    let ts = closed_ledger_with_an_escrow();
    let db = ts.db_path();
    let ledger = ledger_id(&db);
    {
        let mut options = remit::store::OpenOptions::new(db.to_path_buf());
        options.key_hex = Some(TEST_KEY.into());
        let store = remit::store::open(&options).unwrap();
        let event = remit::wire::stripe::Event::parse(json!({"id": "evt_nul", "type": "payment_intent.succeeded",
            "data": {"object": {"id": "pi_nul", "object": "payment_intent", "amount": 500, "amount_received": 500,
                "currency": "eur", "status": "succeeded", "metadata": {}}}}))
        .unwrap();
        let raw = serde_json::to_vec(&event.body).unwrap();
        store
            .write(move |ctx| remit::service::webhooks::apply_stripe_event(ctx, &event, &raw))
            .unwrap();
        store
            .write(|ctx| {
                ctx.conn.execute(
                    "UPDATE deposits SET flag_reason = 'the cardholder disputed it (reason: fraud' || char(0) || ')',
                     change_seq = remit_change_seq() WHERE reference = 'pi_nul'",
                    [],
                )?;
                Ok(())
            })
            .unwrap();
        store.close();
    }
    let reason: String = read_only(&db)
        .query_row(
            "SELECT flag_reason FROM deposits WHERE reference = 'pi_nul'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(reason.contains('\0'), "{reason:?}");
    let ran = replicate_once(&db, TEST_KEY, &url);
    assert_eq!(ran.code, Some(0), "{ran}");
    let mut client = pg.client("nul");
    assert_eq!(replica_position(&mut client, &ledger), file_counter(&db));
    let replica: String = client
        .query_one(
            &format!("SELECT flag_reason FROM remit_{ledger}.deposits WHERE reference = 'pi_nul'"),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(replica, reason.replace('\0', "\u{FFFD}"));
    assert_checks_clean_alike(&db, TEST_KEY, &url, &[]);
}

// Two copies of one ledger file that went their own ways with writes that leave no audit line
// (ignored Stripe events, callbacks for unknown payouts): the audit line at the replica's
// position is in both, so the second copy's rows were taken over the first's, its first
// rows never copied. The replica's newest rows tell them apart.
#[test]
fn a_copy_that_went_its_own_way_without_audit_lines_is_refused() {
    if skipped("a_copy_that_went_its_own_way_without_audit_lines_is_refused") {
        return;
    }
    let pg = Postgres::start();
    let url = pg.database("copies");
    let ts = closed_ledger_with_an_escrow();
    let a = ts.db_path();
    let (_other, b) = copy_of(&a);
    let ledger = ledger_id(&a);
    assert_eq!(replicate_once(&a, TEST_KEY, &url).code, Some(0));

    ignored_stripe_events(&b, &["evt_b1", "evt_b2"]);
    let ran = replicate_once(&b, TEST_KEY, &url);
    assert_eq!(ran.code, Some(0), "{ran}");
    let mut client = pg.client("copies");
    let before = replica_position(&mut client, &ledger);
    ignored_stripe_events(&a, &["evt_a1", "evt_a2", "evt_a3"]);
    let refused = refused_as_another_history(&a, &url);
    assert!(
        refused
            .stderr
            .contains("holds a history this file does not (the replica's row [\"whe_")
            && refused.stderr.contains("of webhook_events (change")
            && refused.stderr.contains("the file has no such row"),
        "{refused}"
    );
    assert_eq!(replica_position(&mut client, &ledger), before);
    assert_same_rows(&b, &mut client, &ledger);
    // Nor when the replica is to be made again for a new schema version (its position was
    // reset before the history was looked at, and the copy replaced it whole).
    client
        .batch_execute("UPDATE remit_replication.ledgers SET schema_version = 14")
        .unwrap();
    refused_as_another_history(&a, &url);
    assert_eq!(replica_position(&mut client, &ledger), before);
    client
        .batch_execute(&format!(
            "UPDATE remit_replication.ledgers SET schema_version = {}",
            remit::store::latest_schema_version()
        ))
        .unwrap();
    // The copy the replica follows goes on.
    ignored_stripe_events(&b, &["evt_b3"]);
    let ran = replicate_once(&b, TEST_KEY, &url);
    assert_eq!(ran.code, Some(0), "{ran}");
    assert_same_rows(&b, &mut client, &ledger);
}

// Regression guard: a statement that changes a replicated table without stamping the rows it
// touches would never reach the replica. Every INSERT, UPDATE and upsert of one in src/ names
// `change_seq` (and `remit_change_seq()` refuses to run outside a numbered transaction).
#[test]
fn every_statement_that_writes_a_replicated_table_stamps_its_rows() {
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let stamped: Vec<&str> = source::TABLES
        .iter()
        .filter(|t| t.kind == source::Kind::Stamped)
        .map(|t| t.name)
        .collect();
    let mut files = Vec::new();
    walk(
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src")),
        &mut files,
    );
    let (mut seen, mut keyed_seen) = (0, 0);
    for file in files {
        let whole = std::fs::read_to_string(&file).unwrap();
        // Unit tests' fixtures are not the ledger's statements.
        let text = whole.split("#[cfg(test)]").next().unwrap_or("");
        for keyword in [
            "INSERT INTO ",
            "INSERT OR IGNORE INTO ",
            "INSERT OR REPLACE INTO ",
            "UPDATE ",
        ] {
            for (at, _) in text.match_indices(keyword) {
                let rest = &text[at + keyword.len()..];
                let table: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !stamped.contains(&table.as_str()) {
                    continue;
                }
                // The statement runs to the end of its string literal.
                let statement =
                    &text[at..at + keyword.len() + rest.find('"').unwrap_or(rest.len())];
                let upsert = statement.split("DO UPDATE SET").nth(1);
                assert!(
                    statement.contains("change_seq")
                        && upsert.is_none_or(|u| u.contains("change_seq")),
                    "{}: this statement does not stamp change_seq:\n{statement}",
                    file.display()
                );
                // A WITHOUT ROWID table the change log lists by key: its stamp names the key,
                // the first column of its primary key: by name in an UPDATE, as the first
                // value of an INSERT that lists it first.
                if let Some(key) = remit::store::changes::keyed(&table) {
                    let function = remit::store::changes::KEYED_FUNCTION;
                    let keyed = if keyword == "UPDATE " {
                        format!("{function}('{table}', {key})")
                    } else {
                        let first_value = statement
                            .split_once("VALUES (")
                            .and_then(|(_, values)| values.split(',').next())
                            .unwrap_or("")
                            .trim();
                        assert!(
                            rest.starts_with(&format!("{table} ({key},"))
                                && !first_value.is_empty(),
                            "{}: an INSERT into {table} lists {key} first:\n{statement}",
                            file.display()
                        );
                        format!("{function}('{table}', {first_value})")
                    };
                    assert!(
                        statement.contains(&keyed) && !statement.contains("remit_change_seq()"),
                        "{}: this statement writes {table} without telling the change log its key ({keyed}…):\n{statement}",
                        file.display()
                    );
                    keyed_seen += 1;
                }
                seen += 1;
            }
        }
    }
    assert!(
        seen > 40,
        "only {seen} statements found: the scan is broken"
    );
    assert!(
        keyed_seen >= 20,
        "only {keyed_seen} statements of keyed tables found: the scan is broken"
    );
}

/// Guards against: `--drop` (and a replica made again) dropped the schema with CASCADE, and
/// took with it, without a word, a reporting view over every kiosk's escrows in a schema of
/// the operator's. It is refused, naming what depends on the replica; once that is gone, the
/// drop goes through.
#[test]
fn a_replica_that_objects_outside_it_depend_on_is_not_dropped_with_them() {
    if skipped("a_replica_that_objects_outside_it_depend_on_is_not_dropped_with_them") {
        return;
    }
    let pg = Postgres::start();
    let url = pg.database("reports");
    let app = spawn_app();
    app.active_escrow(100, &["rent"]);
    let dir = stop_app(app);
    let db = dir.path().join("remit.db");
    let ledger = ledger_id(&db);
    let ran = replicate_once(&db, TEST_KEY, &url);
    assert_eq!(ran.code, Some(0), "{ran}");
    let mut client = pg.client("reports");
    client
        .batch_execute(&format!(
            "CREATE SCHEMA reporting;
             CREATE VIEW reporting.pilot_escrows AS SELECT id, total_usd_cents FROM remit_{ledger}.escrows;"
        ))
        .unwrap();
    let drop = || {
        let mut cmd = remit(db.parent().unwrap(), Some(TEST_KEY));
        cmd.args(["replicate", "--drop", "--to", &url])
            .arg("--db")
            .arg(&db);
        run(cmd)
    };
    let refused = drop();
    assert_ne!(refused.code, Some(0), "{refused}");
    assert!(
        refused.stderr.contains("reporting.pilot_escrows (a view)"),
        "{refused}"
    );
    let rows: i64 = client
        .query_one("SELECT count(*) FROM reporting.pilot_escrows", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 1, "the view and the replica are still there");
    client
        .batch_execute("DROP VIEW reporting.pilot_escrows")
        .unwrap();
    let dropped = drop();
    assert_eq!(dropped.code, Some(0), "{dropped}");
    // Guards against: a Unix socket was refused with "TLS handshake: invalid dns name", even
    // with `sslmode=disable`.
    let ran = replicate_once(&db, TEST_KEY, &pg.socket_url("reports"));
    assert_eq!(ran.code, Some(0), "{ran}");
    assert_checks_clean_alike(&db, TEST_KEY, &url, &[]);
}

/// A server whose replication cycle waits on a PostgreSQL that stopped answering (here
/// stopped with SIGSTOP after the connection was made) stops all the same: the stop waited for
/// that cycle, for as long as PostgreSQL said nothing (the service manager killed it, the final
/// checkpoint skipped). It waits a few seconds, then goes on without it; the ledger is whole.
#[test]
fn a_server_stops_while_its_replication_waits_on_a_silent_postgres() {
    if skipped("a_server_stops_while_its_replication_waits_on_a_silent_postgres") {
        return;
    }
    let pg = Postgres::start();
    let url = pg.database("silent");
    let target = remit::replicate::Target::parse("test", &url, None).unwrap();
    let app = spawn_app_with(|c| c.replicate_to = Some(target.clone()));
    app.active_escrow(100, &["rent"]);
    let status = |app: &TestApp| app.get("/admin/replication", &app.admin).body;
    let deadline = Instant::now() + Duration::from_secs(20);
    while status(&app)["lagChanges"] != 0 || status(&app)["connected"] != true {
        assert!(Instant::now() < deadline, "{}", status(&app));
        std::thread::sleep(Duration::from_millis(50));
    }
    let _continued = pg.continued_on_drop();
    pg.signal_all("-STOP");
    // A change for the next cycle, which waits on the stopped PostgreSQL.
    app.active_escrow(100, &["water"]);
    std::thread::sleep(Duration::from_millis(500));
    let (done, stopped) = std::sync::mpsc::channel();
    let began = Instant::now();
    std::thread::spawn(move || {
        let dir = stop_app(app);
        let _ = done.send(dir);
    });
    let dir = stopped
        .recv_timeout(Duration::from_secs(15))
        .expect("the server did not stop while replication waited on PostgreSQL");
    assert!(began.elapsed() < Duration::from_secs(15));
    assert_eq!(
        process::check(&dir.path().join("remit.db"), TEST_KEY).code,
        Some(0)
    );
}

/// Guards against: an idle ledger said "connected, up to date" for as long as nothing changed
/// while PostgreSQL was down, and a PostgreSQL that stopped answering (connections open,
/// nothing coming back) hung replication with no word, `connected` still true. The replica is
/// checked while idle, and a cycle waiting on PostgreSQL is said as not answering.
#[test]
fn an_idle_ledger_says_when_postgres_is_gone_or_stops_answering() {
    if skipped("an_idle_ledger_says_when_postgres_is_gone_or_stops_answering") {
        return;
    }
    let mut pg = Postgres::start();
    let url = pg.database("idle");
    let target = remit::replicate::Target::parse("test", &url, None).unwrap();
    let app = spawn_app_with(|c| c.replicate_to = Some(target.clone()));
    let status = |app: &TestApp| app.get("/admin/replication", &app.admin).body;
    // Which ledger, and where to, from the start (an admin asking before the first cycle read
    // both as "", against the document's shape of a ledger id).
    let first = status(&app);
    assert!(
        first["ledgerId"]
            .as_str()
            .is_some_and(|id| id.starts_with("ldg_"))
            && first["target"]
                .as_str()
                .is_some_and(|t| t.starts_with("postgres://")),
        "{first}"
    );
    app.active_escrow(100, &["rent"]);
    let wait_for = |what: &str, seconds: u64, ok: &dyn Fn(&serde_json::Value) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            let s = status(&app);
            if ok(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "{what}: {s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for("caught up", 20, &|s| {
        s["connected"] == true
            && s["lagChanges"] == 0
            && s["replicatedChangeSeq"].as_i64() > Some(0)
    });
    // Nothing changes from now on.
    pg.kill9();
    let gone = wait_for("PostgreSQL gone said while idle", 25, &|s| {
        s["connected"] == false
    });
    assert!(gone["lastError"].is_string(), "{gone}");
    // Idle and failing, the replica is not being kept: its lag grows (it said 0, and an alert
    // on the lag never fired for an idle kiosk whose PostgreSQL was gone or that was refused).
    wait_for("the lag of a replica not kept grows", 10, &|s| {
        s["lagSeconds"].as_f64().is_some_and(|l| l >= 1.0)
    });
    let cycles = status(&app)["cycles"].as_u64().unwrap();
    pg.restart();
    wait_for("back", 60, &|s| s["connected"] == true);
    // The connection's first cycle done (it checks the replica's history whole, and is not
    // watched once under way: a server stopped in its middle is not said, README): what is
    // stopped now is waited on by a check while idle.
    wait_for("the connection's first cycle", 60, &|s| {
        s["cycles"].as_u64().is_some_and(|n| n > cycles)
    });
    // Stopped: a check while idle waits on it (it was not watched: said as connected, no
    // error, for as long as the server was stopped).
    let _continued = pg.continued_on_drop();
    pg.signal_all("-STOP");
    let stalled = wait_for("not answering", 60, &|s| {
        s["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("has not answered"))
    });
    assert_eq!(stalled["connected"], false, "{stalled}");
    pg.signal_all("-CONT");
    wait_for("answering again", 60, &|s| {
        s["connected"] == true && s["lastError"].is_null()
    });
}
