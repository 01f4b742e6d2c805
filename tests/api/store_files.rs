//! The file itself: migrations, the key check, and no readable PII in the database or its WAL.

use crate::support::*;
use remit::service::Role;
use remit::store::{self, OpenOptions};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

#[test]
fn a_fresh_database_reaches_the_latest_version_and_reopening_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("remit.db");
    let mut conn = store::open_connection(&path, store::Synchronous::Full).unwrap();
    let applied = store::migrate(&mut conn).unwrap();
    assert_eq!(
        applied.last().copied(),
        Some(store::latest_schema_version())
    );
    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, store::latest_schema_version());
    assert!(
        store::migrate(&mut conn).unwrap().is_empty(),
        "second run applies nothing"
    );
    let strict: i64 = conn
        .query_row("SELECT COUNT(*) FROM pragma_table_list WHERE schema = 'main' AND strict = 0 AND name NOT LIKE 'sqlite_%'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(strict, 0, "every table is STRICT");
}

#[test]
fn the_database_and_its_wal_hold_no_plaintext_pii() {
    let t = TestStore::new();
    let sender = t.user(Role::Sender, "Amina Sender", Some("0733555777"));
    let agent = t.user(Role::Agent, "Kiosk", None);
    let escrow_id = t.active_escrow(&sender, &agent, "0712345678", 10_000, &["a"], None);
    t.request(&agent, &escrow_id, "a", 10_000).unwrap();
    let haystack = ledger_file_text(t.dir.path());
    for needle in [
        "712345678",
        "733555777",
        "Wanjiru",
        "Amina Sender",
        "Kenya Power",
        "12345678",
        "November token",
    ] {
        assert!(
            !haystack.contains(needle),
            "{needle} is readable in the file"
        );
    }
}

#[test]
fn a_wrong_key_is_refused_with_a_clear_message_and_nothing_is_written() {
    let t = TestStore::new();
    t.user(Role::Sender, "S", None);
    let path = t.db_path();
    let store = t.store;
    drop(store);
    let before = std::fs::read(&path).unwrap();
    let mut options = OpenOptions::new(&path);
    options.key_hex = Some("ff".repeat(32));
    let err = match store::open(&options) {
        Ok(_) => panic!("a wrong key must be refused"),
        Err(e) => e,
    };
    assert!(
        err.to_string()
            .contains("encryption key does not match this database"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the refused open wrote nothing"
    );
}

#[test]
fn without_a_key_a_key_file_is_created_beside_the_database_with_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kiosk.db");
    let store = store::open(&OpenOptions::new(&path)).unwrap();
    let key_path = remit::crypto::key_file_path(&path);
    assert_eq!(
        store.key_source(),
        &remit::crypto::KeySource::Created(key_path.clone())
    );
    drop(store);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let again = store::open(&OpenOptions::new(&path)).unwrap();
    assert_eq!(
        again.key_source(),
        &remit::crypto::KeySource::File(key_path)
    );
}

#[test]
fn check_mode_never_creates_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = OpenOptions::new(dir.path().join("missing.db"));
    options.create = false;
    assert!(store::open(&options).is_err());
    assert!(!dir.path().join("missing.db").exists());
}

#[test]
fn the_wal_stays_under_its_bound_under_sustained_writes_with_readers_beside_them() {
    const BOUND: u64 = 256 << 10;
    // As the server opens it: the log's file grown before the first write.
    let ts = TestStore::with(|o| {
        o.wal_max_bytes = BOUND;
        o.grow_wal = true;
    });
    let stats = &ts.store.stats;
    let resets_before = stats.wal_resets.load(Ordering::SeqCst);
    let (writing, stop, approved) = (
        AtomicBool::new(true),
        AtomicBool::new(false),
        AtomicUsize::new(0),
    );
    std::thread::scope(|s| {
        // Readers beside the writes, as the HTTP workers are: each read holds a snapshot (and
        // so the log) for as long as it takes.
        for _ in 0..2 {
            s.spawn(|| {
                let mut seen = 0;
                while writing.load(Ordering::SeqCst) {
                    let n: i64 = ts
                        .store
                        .read(|conn, _| {
                            Ok(conn.query_row(
                                "SELECT COUNT(*) FROM payment_requests WHERE status = 'approved'",
                                [],
                                |r| r.get(0),
                            )?)
                        })
                        .unwrap();
                    // Each snapshot is at least as new as the one before.
                    assert!(n >= seen, "approvals went from {seen} back to {n}");
                    seen = n;
                }
            });
        }
        ts.approve_until(60, &stop, &approved);
        writing.store(false, Ordering::SeqCst);
    });
    assert_eq!(approved.load(Ordering::SeqCst), 240);
    // 480 commands (a request and its approval each time) wrote many times the bound; the log
    // was restarted each time it passed it.
    let resets = stats.wal_resets.load(Ordering::SeqCst) - resets_before;
    let peak = stats.wal_peak_bytes.load(Ordering::SeqCst);
    eprintln!("{resets} restarts, WAL peak {peak} bytes");
    assert!(resets >= 5, "the log was restarted {resets} times");
    // The file is checked after every commit: past the bound by the batch that crossed it, and
    // by what was committed while a reader held the log longer than the writer waits for it
    // (100 ms: a machine running other tests beside this one can deschedule a reader that
    // long). Without the bound it would hold every frame written: several MiB here.
    let slack = 3 * BOUND;
    assert!(
        peak <= BOUND + slack,
        "the WAL reached {peak} bytes for a bound of {BOUND}"
    );
    let wal = std::fs::metadata(ts.dir.path().join("remit.db-wal"))
        .unwrap()
        .len();
    assert!(wal <= BOUND + slack, "the WAL file is {wal} bytes");
    ts.assert_integrity();
}

/// The server's store (its log's file grown before the first write) at `dir`, a bound of 4 MiB.
fn grown_store(dir: tempfile::TempDir) -> TestStore {
    let mut options = OpenOptions::new(dir.path().join("remit.db"));
    options.key_hex = Some(TEST_KEY.into());
    options.wal_max_bytes = 4 << 20;
    options.grow_wal = true;
    let store = std::sync::Arc::new(store::open(&options).unwrap());
    TestStore { store, dir }
}

/// What a crash of `t` would leave on the disk now: its file and its log, copied while it runs.
fn crash_copy(t: &TestStore) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["remit.db", "remit.db-wal"] {
        std::fs::copy(t.dir.path().join(name), dir.path().join(name)).unwrap();
    }
    dir
}

/// `crash_copy` opened as the server opens it.
fn after_a_crash(t: &TestStore) -> TestStore {
    grown_store(crash_copy(t))
}

fn users_in(t: &TestStore) -> i64 {
    t.store
        .read(|conn, _| Ok(conn.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?))
        .unwrap()
}

#[test]
fn the_servers_log_is_grown_before_its_first_write_and_keeps_every_commit_through_crashes() {
    // Fifteen sixteenths of the 4 MiB bound: where the writer restarts the log.
    const GROWN: u64 = (4 << 20) - (4 << 20) / 16;
    let first = grown_store(tempfile::tempdir().unwrap());
    first.user(Role::Sender, "One", None);
    let wal_size = |t: &TestStore| {
        std::fs::metadata(t.dir.path().join("remit.db-wal"))
            .unwrap()
            .len()
    };
    assert_eq!(wal_size(&first), GROWN, "grown before the first write");
    let before = users_in(&first);
    // Its commits are frames at the log's start, zeros after them: a crash now keeps every one.
    let second = after_a_crash(&first);
    assert_eq!(users_in(&second), before);
    // The log the crash left held frames; growing it again never touches them, and what the
    // second server commits next lands among the zeros and is read back after its own crash.
    second.user(Role::Agent, "Two", None);
    second.user(Role::Recipient, "Three", Some("0712000111"));
    assert_eq!(wal_size(&second), GROWN);
    let third = after_a_crash(&second);
    assert_eq!(users_in(&third), before + 2);
    third.assert_integrity();
    // A log cut to nothing by a clean stop is grown again at the next start.
    let dir = crash_copy(&third);
    third.store.close();
    drop(third);
    let fourth = grown_store(dir);
    fourth.store.close();
    assert_eq!(wal_size(&fourth), 0, "a clean stop empties the log");
    let fifth = grown_store(fourth.dir);
    fifth.user(Role::Sender, "Four", None);
    assert_eq!(wal_size(&fifth), GROWN);
    assert_eq!(users_in(&fifth), before + 3);
    fifth.assert_integrity();
}

#[test]
fn a_store_opened_through_a_link_grows_the_log_beside_the_file_it_leads_to() {
    let dir = tempfile::tempdir().unwrap();
    let made = grown_store(tempfile::tempdir_in(dir.path()).unwrap());
    made.user(Role::Sender, "One", None);
    made.store.close();
    let link = dir.path().join("link.db");
    std::os::unix::fs::symlink(made.dir.path().join("remit.db"), &link).unwrap();
    let mut options = OpenOptions::new(&link);
    options.key_hex = Some(TEST_KEY.into());
    options.wal_max_bytes = 4 << 20;
    options.grow_wal = true;
    let through = store::open(&options).unwrap();
    through
        .write(|ctx| Ok(ctx.conn.execute_batch("CREATE TABLE scratch (v BLOB)")?))
        .unwrap();
    let wal = std::fs::metadata(made.dir.path().join("remit.db-wal")).unwrap();
    assert_eq!(wal.len(), (4 << 20) - (4 << 20) / 16, "SQLite's log, grown");
    assert!(
        !dir.path().join("link.db-wal").exists(),
        "a log beside the link"
    );
    through.close();
}

#[test]
fn a_store_closed_while_its_checkpointer_copies_leaves_the_log_empty() {
    // The writer's last checkpoint empties the log; a copy of the background checkpointer
    // running at that moment holds the checkpoint lock, which SQLite does not wait for, and
    // the log was left whole for the next start to copy while it served.
    // (A copy seen running may end before the close begins; the old order then passed too.)
    for attempt in 0..5 {
        let ts = TestStore::new();
        let stats = &ts.store.stats;
        ts.store
            .write(|ctx| {
                ctx.conn.execute_batch("CREATE TABLE scratch (v BLOB)")?;
                for _ in 0..5_000 {
                    ctx.conn
                        .execute("INSERT INTO scratch VALUES (zeroblob(4000))", [])?;
                }
                Ok(())
            })
            .unwrap();
        let wal = ts.dir.path().join("remit.db-wal");
        let size = std::fs::metadata(&wal).unwrap().len();
        assert!(size > 16_000_000, "{size}");
        assert!(stats.checkpointer.get().is_some());
        stats.wake_checkpointer();
        let asked = std::time::Instant::now();
        while !stats.checkpoint_copying.load(Ordering::SeqCst)
            && asked.elapsed() < std::time::Duration::from_secs(2)
        {
            std::thread::yield_now();
        }
        let caught = stats.checkpoint_copying.load(Ordering::SeqCst);
        if !caught && attempt < 4 {
            // The copy began and ended between two looks: try again.
            continue;
        }
        ts.store.close();
        assert_eq!(
            std::fs::metadata(&wal).unwrap().len(),
            0,
            "the log was left"
        );
        let rows: i64 = ts
            .store
            .read(|conn, _| Ok(conn.query_row("SELECT COUNT(*) FROM scratch", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(rows, 5_000);
        return;
    }
}

/// The tables schema 11 keeps in key order, and what their rows look like as text.
const BY_KEY: [&str; 3] = ["users", "escrows", "spending_categories"];

fn rows_as_text(conn: &rusqlite::Connection, table: &str) -> Vec<String> {
    let mut stmt = conn
        .prepare(&format!("SELECT * FROM {table} ORDER BY id"))
        .unwrap();
    let columns = stmt.column_count();
    stmt.query_map([], |r| {
        Ok((0..columns)
            .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
            .collect::<Vec<_>>()
            .join("|"))
    })
    .unwrap()
    .collect::<rusqlite::Result<_>>()
    .unwrap()
}

/// The columns, indexes and triggers of the three tables (not their `CREATE TABLE`, which
/// schema 11 rewrites, nor SQLite's own indexes of their keys).
fn layout_of(conn: &rusqlite::Connection) -> Vec<String> {
    let mut layout = Vec::new();
    for table in BY_KEY {
        let mut columns = conn
            .prepare("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?1)")
            .unwrap();
        let rows = columns
            .query_map([table], |r| {
                Ok(format!(
                    "{table}.{}: {} notnull {} default {:?} pk {}",
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, i64>(4)?
                ))
            })
            .unwrap();
        layout.extend(rows.map(Result::unwrap));
        let mut others = conn
            .prepare(
                "SELECT type || ' ' || name || ': ' || sql FROM sqlite_schema
                 WHERE tbl_name = ?1 AND type <> 'table' AND sql IS NOT NULL ORDER BY name",
            )
            .unwrap();
        let rows = others
            .query_map([table], |r| r.get::<_, String>(0))
            .unwrap();
        layout.extend(rows.map(Result::unwrap));
    }
    layout
}

fn schema_of(conn: &rusqlite::Connection) -> Vec<(String, String, Option<String>)> {
    conn.prepare("SELECT type, name, sql FROM sqlite_schema ORDER BY type, name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

// A ledger at schema 10, made by the migrations 0001 to 0010 themselves (users, escrows and
// categories as rowid tables) and holding a ledger's rows, is migrated to schema 11: the three
// tables keep every row and stamp, and the file's schema is then the very schema of a new file
// (every column, constraint, index and trigger); the ledger checks clean and takes approvals.
#[test]
fn schema_11_keeps_every_row_when_it_orders_three_tables_by_key() {
    // The rows: a ledger of the latest schema.
    let source = TestStore::new();
    let sender = source.user(Role::Sender, "Amina", Some("0733000001"));
    let agent = source.user(Role::Agent, "Kiosk", None);
    let escrow = source.active_escrow(
        &sender,
        &agent,
        "0712345678",
        20_000,
        &["rent", "water"],
        None,
    );
    let request = source.request(&agent, &escrow, "water", 30_000).unwrap();
    source
        .approve(&sender, request["paymentRequestId"].as_str().unwrap())
        .unwrap();
    let waiting = source.request(&agent, &escrow, "rent", 15_000).unwrap();
    source.store.close();
    let latest = rusqlite::Connection::open(source.db_path()).unwrap();
    let before: Vec<Vec<String>> = BY_KEY.iter().map(|t| rows_as_text(&latest, t)).collect();
    assert!(before.iter().all(|rows| !rows.is_empty()));

    // The file: schema 10 from the migration files, then the same rows copied in.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let layout_at_10;
    {
        let mut conn = schema_up_to(&db, "0010_waiting_by_id.sql");
        layout_at_10 = layout_of(&conn);
        assert!(
            layout_at_10.len() > 40,
            "{layout_at_10:#?}: columns, six indexes and two triggers"
        );
        for table in BY_KEY {
            let without_rowid: bool = conn
                .query_row(
                    "SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?1",
                    [table],
                    |r| r.get(0),
                )
                .unwrap();
            assert!(!without_rowid, "{table} at schema 10");
        }
        let tables: Vec<String> = conn
            .prepare(
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        conn.execute(
            "ATTACH DATABASE ?1 AS latest",
            [source.db_path().to_str().unwrap()],
        )
        .unwrap();
        let tx = conn.transaction().unwrap();
        // The migrations' own rows (meta's, the outbox's consumers) give way to the ledger's;
        // the state counts, which triggers kept while rows were copied, are copied last.
        for table in tables.iter().chain(["state_counts".to_string()].iter()) {
            let has_rows: bool = tx
                .query_row(
                    &format!("SELECT EXISTS (SELECT 1 FROM main.{table})"),
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            if has_rows {
                tx.execute_batch(&format!("DELETE FROM main.{table}"))
                    .unwrap();
            }
            // The columns schema 10 has (a later schema may add some).
            let columns: Vec<String> = tx
                .prepare(&format!(
                    "SELECT name FROM pragma_table_info('{table}', 'main')"
                ))
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            let columns = columns.join(", ");
            tx.execute_batch(&format!(
                "INSERT INTO main.{table} ({columns}) SELECT {columns} FROM latest.{table}"
            ))
            .unwrap();
        }
        tx.commit().unwrap();
        conn.execute_batch("DETACH DATABASE latest; PRAGMA user_version = 10;")
            .unwrap();
    }

    let mut options = OpenOptions::new(&db);
    options.key_hex = Some(TEST_KEY.into());
    options.create = false;
    let store = std::sync::Arc::new(store::open(&options).unwrap()); // migrates to 11
    let conn = rusqlite::Connection::open(&db).unwrap();
    let after: Vec<Vec<String>> = BY_KEY.iter().map(|t| rows_as_text(&conn, t)).collect();
    assert_eq!(after, before, "the rows came through schema 11 unchanged");
    // Schema 18 adds a column of its own to `escrows`, schema 22 an index.
    let mut layout = layout_of(&conn);
    layout.retain(|l| {
        !l.starts_with("escrows.last_transaction_id:")
            && !l.starts_with("index escrows_sender_status:")
    });
    assert_eq!(
        layout, layout_at_10,
        "schema 11 kept every column, index and trigger"
    );
    assert_eq!(
        schema_of(&conn),
        schema_of(&latest),
        "the migrated file's schema is a new file's"
    );
    let t = TestStore { store, dir };
    t.assert_integrity();
    t.approve(&sender, waiting["paymentRequestId"].as_str().unwrap())
        .unwrap();
    t.assert_integrity();
}

/// A file made by the migration files up to `last` (its file name) alone, as an older remit
/// left it, with foreign keys off (rows are copied in without their parents' order).
fn schema_up_to(db: &std::path::Path, last: &str) -> rusqlite::Connection {
    let mut conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch("PRAGMA foreign_keys = OFF;").unwrap();
    let schema = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
    let mut files: Vec<_> = std::fs::read_dir(&schema)
        .unwrap()
        .map(|f| f.unwrap().path())
        .collect();
    files.sort();
    let upto = files.iter().position(|f| f.ends_with(last)).unwrap();
    for file in &files[..=upto] {
        let tx = conn.transaction().unwrap();
        tx.execute_batch(&std::fs::read_to_string(file).unwrap())
            .unwrap();
        tx.commit().unwrap();
    }
    conn
}

/// The ids in the tests' table `marks`, in order.
fn marks(t: &TestStore) -> Vec<i64> {
    t.store
        .write(|ctx| {
            let mut stmt = ctx.conn.prepare("SELECT id FROM marks ORDER BY id")?;
            let ids = stmt
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(ids)
        })
        .unwrap()
}

/// A store with a table `filler` of 2,500 rows of 3,000 bytes (a page each), made before the
/// test's commands, so that rewriting them journals 10 MiB; and `more` SQL.
fn with_filler(more: &str) -> TestStore {
    let t = TestStore::new();
    let sql = format!(
        "CREATE TABLE filler (id INTEGER PRIMARY KEY, v BLOB NOT NULL);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500)
         INSERT INTO filler SELECT i, zeroblob(3000) FROM n; {more}"
    );
    t.store
        .write(move |ctx| Ok(ctx.conn.execute_batch(&sql)?))
        .unwrap();
    t
}

// An ordinary command (`Store::write`) that journals more than the build's piece of 4 MiB fails
// in it; the writer rolls its whole batch back and runs it again with its journals in memory, so
// the command commits, once, and so does every command that shared its batch. SQLite fails in
// two ways there, both covered: a statement of many rows is undone alone; one row per statement
// inside a savepoint of the command's own (as a request with an `Idempotency-Key` runs) makes
// SQLite undo the whole transaction, and the savepoint's rollback fails with another error.
#[test]
fn an_ordinary_command_that_outgrows_the_journal_piece_commits_once_with_its_batch() {
    let t = with_filler("CREATE TABLE marks (id INTEGER PRIMARY KEY);");
    let outgrown = || t.store.stats.journals_outgrown.load(Ordering::Relaxed);
    let changed = t
        .store
        .write(|ctx| {
            Ok(ctx
                .conn
                .execute("UPDATE filler SET v = randomblob(3000)", [])?)
        })
        .unwrap();
    assert_eq!((changed, outgrown()), (2500, 1));

    std::thread::scope(|s| {
        let big = s.spawn(|| {
            t.store.write(|ctx| {
                ctx.savepoint(|ctx| {
                    let mut update = ctx
                        .conn
                        .prepare("UPDATE filler SET v = randomblob(3000) WHERE id = ?1")?;
                    let mut changed = 0;
                    for id in 1..=2500i64 {
                        changed += update.execute([id])?;
                    }
                    Ok(changed)
                })
            })
        });
        let small: Vec<_> = (0..32i64)
            .map(|i| {
                let store = &t.store;
                s.spawn(move || {
                    store.write(move |ctx| {
                        Ok(ctx
                            .conn
                            .execute("INSERT INTO marks (id) VALUES (?1)", [i])?)
                    })
                })
            })
            .collect();
        assert_eq!(big.join().unwrap().unwrap(), 2500);
        for inserted in small {
            assert_eq!(inserted.join().unwrap().unwrap(), 1);
        }
    });
    assert_eq!(outgrown(), 2);
    let (marks, distinct): (i64, i64) = t
        .store
        .write(|ctx| {
            Ok(ctx
                .conn
                .query_row("SELECT count(*), count(DISTINCT id) FROM marks", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?)
        })
        .unwrap();
    assert_eq!((marks, distinct), (32, 32), "each small command once");
    let temp_store: i64 = t
        .store
        .write(|ctx| Ok(ctx.conn.query_row("PRAGMA temp_store", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(temp_store, 0, "the next batch is back in the piece");
    t.assert_integrity();
}

// A writer command that journals far more than SQLite's in-memory piece of 4 MiB (a sweep of
// hundreds of expired requests at a million escrows does), submitted as bulk, commits: the
// writer keeps that batch's journals in memory without a bound, and every other batch's in the
// build's piece again. Submitted as an ordinary command it fails in the piece, and its batch
// is rolled back and run again with its journals in memory (below).
#[test]
fn a_writer_command_that_journals_megabytes_commits() {
    let t = with_filler("");
    fn temp_store(ctx: &remit::store::WriteCtx<'_>) -> remit::Result<i64> {
        Ok(ctx.conn.query_row("PRAGMA temp_store", [], |r| r.get(0))?)
    }
    fn rewrite(ctx: &remit::store::WriteCtx<'_>) -> remit::Result<usize> {
        Ok(ctx
            .conn
            .execute("UPDATE filler SET v = randomblob(3000)", [])?)
    }
    // 2,500 pages that existed before the command's savepoint, each journaled: 10 MiB.
    let (changed, unbounded) = t
        .store
        .write_bulk(|ctx| Ok((rewrite(ctx)?, temp_store(ctx)?)))
        .unwrap();
    assert_eq!((changed, unbounded), (2500, 2), "in memory (2)");
    assert_eq!(t.store.write(temp_store).unwrap(), 0);
    assert_eq!(t.store.write_repeatable(temp_store).unwrap(), 0);
    assert_eq!(t.store.write_bulk(temp_store).unwrap(), 2);
    let sender = t.user(Role::Sender, "Amina", Some("0733000001"));
    let agent = t.user(Role::Agent, "Kiosk", None);
    let escrow = t.active_escrow(&sender, &agent, "0712345678", 20_000, &["rent"], None);
    let request = t.request(&agent, &escrow, "rent", 15_000).unwrap();
    t.approve(&sender, request["paymentRequestId"].as_str().unwrap())
        .unwrap();
    t.assert_integrity();
}

// A batch of more repeatable commands than one shared savepoint takes (`WRITER_RUN_MAX`, 64)
// runs them in runs of at most 64. One of them that fails after changing a row undoes its run
// alone: the commands before it run again, it is answered with its own error, and every other
// command's row is committed once. The writer is held by a command of its own until all 150
// wait in its queue, so that one batch takes them.
#[test]
fn a_batch_of_150_repeatable_commands_runs_in_runs_and_a_refusal_undoes_only_its_own() {
    use std::sync::mpsc;
    const COMMANDS: i64 = 150;
    const REFUSED: i64 = 120;
    let t = TestStore::new();
    t.store
        .write(|ctx| {
            Ok(ctx
                .conn
                .execute_batch("CREATE TABLE marks (id INTEGER PRIMARY KEY)")?)
        })
        .unwrap();
    let stats = &t.store.stats;
    let large_batches = || stats.batch_size_buckets[4].load(Ordering::Relaxed);
    let undone = || stats.shared_savepoints_undone.load(Ordering::Relaxed);
    let (large_before, undone_before) = (large_batches(), undone());
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let answers: Vec<(i64, remit::Result<i64>)> = std::thread::scope(|s| {
        let store = &t.store;
        let holder = s.spawn(move || {
            store.write(move |_| {
                let _ = started_tx.send(());
                let _ = release_rx.recv();
                Ok(())
            })
        });
        started_rx.recv().unwrap();
        let queued = |n: usize| {
            // The holder and `n` commands, queued or running (counted before each is sent).
            while stats.queue_depth.load(Ordering::SeqCst) < n + 1 {
                std::thread::yield_now();
            }
        };
        let commands: Vec<_> = (0..COMMANDS)
            .map(|i| {
                let runs = std::sync::Arc::clone(&runs);
                if i == REFUSED {
                    // After the 120 before it, in the batch's second run of 64.
                    queued(REFUSED as usize);
                }
                s.spawn(move || {
                    let answer = store.write_repeatable(move |ctx| {
                        runs.fetch_add(1, Ordering::SeqCst);
                        ctx.conn
                            .execute("INSERT INTO marks (id) VALUES (?1)", [i])?;
                        if i == REFUSED {
                            return Err(remit::Error::invalid("i", "refused after its write"));
                        }
                        Ok(i)
                    });
                    (i, answer)
                })
            })
            .collect();
        queued(COMMANDS as usize);
        release_tx.send(()).unwrap();
        holder.join().unwrap().unwrap();
        commands.into_iter().map(|c| c.join().unwrap()).collect()
    });
    assert_eq!(
        large_batches() - large_before,
        1,
        "one batch of more than 64"
    );
    assert_eq!(
        undone() - undone_before,
        1,
        "the refused command's run, once"
    );
    // Run again: the commands before the refused one in its run, and the refused one alone.
    // Without the runs of 64, all those before it in the batch (about 120) would run again.
    let again = runs.load(Ordering::SeqCst) - COMMANDS as usize;
    assert!((1..=64).contains(&again), "{again} commands ran twice");
    for (i, answer) in answers {
        match answer {
            Ok(got) => assert!(i != REFUSED && got == i, "command {i}: {got}"),
            Err(e) => assert!(i == REFUSED, "command {i}: {e:?}"),
        }
    }
    let ids = marks(&t);
    let expected: Vec<i64> = (0..COMMANDS).filter(|i| *i != REFUSED).collect();
    assert_eq!(ids, expected);
    t.assert_integrity();
}

// When SQLite undoes a batch's whole transaction by itself (here: one row whose old value of
// 5 MB must be journaled, past the piece), nothing a command runs afterwards may commit on its
// own: the writer's connection refuses every commit but the writer's `COMMIT` (a command that
// swallows the error and writes again is refused), and a shared run stops at once. Then the
// batch runs again with its journals in memory and each command commits once.
#[test]
fn after_sqlite_undoes_a_batch_nothing_commits_outside_it() {
    use std::sync::atomic::AtomicBool;
    use std::sync::{mpsc, Arc};
    let t = with_filler(
        "CREATE TABLE big (id INTEGER PRIMARY KEY, v BLOB NOT NULL);
         INSERT INTO big VALUES (1, zeroblob(5000000));
         CREATE TABLE marks (id INTEGER NOT NULL);",
    );
    let outgrown_before = t.store.stats.journals_outgrown.load(Ordering::Relaxed);
    let undone_whole = Arc::new(AtomicBool::new(false));
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let store = &t.store;
    let answers = std::thread::scope(|s| {
        let holder = s.spawn(move || {
            store.write(move |_| {
                let _ = started_tx.send(());
                let _ = release_rx.recv();
                Ok(0)
            })
        });
        started_rx.recv().unwrap();
        let swallowing = {
            let undone_whole = Arc::clone(&undone_whole);
            s.spawn(move || {
                store.write_repeatable(move |ctx| {
                    let rewrite = ctx
                        .conn
                        .execute("UPDATE big SET v = randomblob(5000000) WHERE id = 1", []);
                    if rewrite.is_err() {
                        undone_whole.store(ctx.conn.is_autocommit(), Ordering::SeqCst);
                        // A command that goes on after an error: this must not commit.
                        let _ = ctx.conn.execute("INSERT INTO marks (id) VALUES (99)", []);
                    }
                    rewrite?;
                    Ok(1)
                })
            })
        };
        while store.stats.queue_depth.load(Ordering::SeqCst) < 2 {
            std::thread::yield_now();
        }
        let after = s.spawn(move || {
            store.write_repeatable(|ctx| {
                Ok(ctx.conn.execute("INSERT INTO marks (id) VALUES (3)", [])?)
            })
        });
        while store.stats.queue_depth.load(Ordering::SeqCst) < 3 {
            std::thread::yield_now();
        }
        release_tx.send(()).unwrap();
        holder.join().unwrap().unwrap();
        [swallowing.join().unwrap(), after.join().unwrap()]
    });
    assert!(
        undone_whole.load(Ordering::SeqCst),
        "SQLite undid the transaction"
    );
    assert_eq!(answers.map(|a| a.unwrap()), [1, 1]);
    assert_eq!(
        t.store.stats.journals_outgrown.load(Ordering::Relaxed) - outgrown_before,
        1
    );
    let marks = marks(&t);
    assert_eq!(
        marks,
        vec![3],
        "the second command once, the refused write never"
    );
    t.assert_integrity();
}

/// Schema 12 scopes the tokens senders gave before it from the audit line that gave each:
/// a sender's `token.issued` names the escrow, an admin's does not.
#[test]
fn schema_12_scopes_the_tokens_senders_gave_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let mut conn = schema_up_to(&db, "0011_rows_by_key.sql");
    // Two recipients with a token each: one a sender gave, one an admin issued.
    conn.execute_batch(
        "PRAGMA user_version = 11;
         INSERT INTO users (id, role, name_enc, created_at) VALUES
             ('usr_sender', 'sender', 'x', '2026-12-01T00:00:00Z'),
             ('usr_given', 'recipient', 'x', '2026-12-01T00:00:00Z'),
             ('usr_issued', 'recipient', 'x', '2026-12-01T00:00:00Z');
         INSERT INTO api_tokens (token_hash, prefix, user_id, created_at) VALUES
             (randomblob(32), 'rmt_given000', 'usr_given', '2026-12-01T00:00:00Z'),
             (randomblob(32), 'rmt_issued00', 'usr_issued', '2026-12-01T00:00:00Z');
         INSERT INTO audit_log (seq, at, actor, action, entity, details, prev_mac, mac) VALUES
             (1, '2026-12-01T00:00:00Z', 'usr_sender', 'token.issued', 'usr_given',
              '{\"prefix\":\"rmt_given000\",\"escrowId\":\"esc_1\"}', x'00', x'00'),
             (2, '2026-12-01T00:00:00Z', 'system:cli', 'token.issued', 'usr_issued',
              '{\"prefix\":\"rmt_issued00\"}', x'00', x'00');",
    )
    .unwrap();

    store::migrate(&mut conn).unwrap();

    let scope = |prefix: &str| -> Option<String> {
        conn.query_row(
            "SELECT sender_scope FROM api_tokens WHERE prefix = ?1",
            [prefix],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(scope("rmt_given000").as_deref(), Some("usr_sender"));
    assert_eq!(scope("rmt_issued00"), None);
}

/// Schema 16 hides the payee's name in the M-Pesa words kept before it ("Credit Party ***333 -
/// JANE …"), and masks a phone kept whole (before 2026-12-03), in the rows and in the pages'
/// free space, and leaves other words as they were.
#[test]
fn the_upgrade_to_schema_16_hides_the_payees_names_kept_in_m_pesa_words() {
    let t = TestStore::new();
    let sender = t.user(Role::Sender, "Amina", None);
    let agent = t.user(Role::Agent, "Kiosk", None);
    let escrow = t.active_escrow(&sender, &agent, "0712345678", 20_000, &["a"], None);
    let mut payouts = Vec::new();
    for _ in 0..3 {
        let request = t.request(&agent, &escrow, "a", 1_000).unwrap();
        t.approve(&sender, request["paymentRequestId"].as_str().unwrap())
            .unwrap();
        payouts.push(request["paymentRequestId"].as_str().unwrap().to_string());
    }
    t.store.close();
    let db = t.db_path();
    {
        // As an older remit kept them (each row written once: an older copy of a row left in
        // a page's free space by an earlier write stays there until the page reuses it; a
        // backup, `VACUUM INTO`, copies none).
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "UPDATE payouts SET
                 result_desc = CASE WHEN payment_request_id = (SELECT MIN(payment_request_id) FROM payouts)
                     THEN 'Credit Party 254722000333 - JANE WAMBUI MUTHONI'
                     ELSE 'The receiver ***678 is not registered - retry' END,
                 failure_to_confirm_desc = CASE WHEN payment_request_id = (SELECT MAX(payment_request_id) FROM payouts)
                     THEN 'Credit party - KAMAU OTIENO' END;
             ALTER TABLE webhook_endpoints DROP COLUMN url_enc;
             PRAGMA user_version = 15;",
        )
        .unwrap();
        conn.execute_batch(crate::support::BACK_TO_SCHEMA_17)
            .unwrap();
    }
    let mut options = OpenOptions::new(&db);
    options.key_hex = Some(TEST_KEY.into());
    options.create = false;
    let store = store::open(&options).unwrap();
    let descs: Vec<(Option<String>, Option<String>)> = store
        .read(|conn, _| {
            Ok(conn
                .prepare("SELECT result_desc, failure_to_confirm_desc FROM payouts ORDER BY payment_request_id")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?)
        })
        .unwrap();
    assert_eq!(
        descs,
        [
            (Some("Credit Party ***333 - ***".to_string()), None),
            (
                Some("The receiver ***678 is not registered - retry".to_string()),
                None
            ),
            (
                Some("The receiver ***678 is not registered - retry".to_string()),
                Some("Credit party - ***".to_string())
            ),
        ]
    );
    store.close();
    drop(store);
    let haystack = ledger_file_text(t.dir.path());
    for name in ["WAMBUI", "KAMAU", "254722000333"] {
        assert!(!haystack.contains(name), "{name} is readable in the file");
    }
}

/// Schema 24 hides the name M-Pesa's words kept after a PayBill or Till number before it
/// ("Credit Party 888880 - MAMA MBOGA KIOSK …"), in the rows and in the pages' free space, and
/// stamps each row it changed for the replica; other words stay as they were.
#[test]
fn the_upgrade_to_schema_24_hides_the_names_kept_after_a_short_code() {
    let t = TestStore::new();
    let sender = t.user(Role::Sender, "Amina", None);
    let agent = t.user(Role::Agent, "Kiosk", None);
    let escrow = t.active_escrow(&sender, &agent, "0712345678", 20_000, &["a"], None);
    for _ in 0..2 {
        let request = t.request(&agent, &escrow, "a", 1_000).unwrap();
        t.approve(&sender, request["paymentRequestId"].as_str().unwrap())
            .unwrap();
    }
    t.store.close();
    let db = t.db_path();
    let stamps = |conn: &rusqlite::Connection| -> Vec<i64> {
        conn.prepare("SELECT change_seq FROM payouts ORDER BY payment_request_id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let before = {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "UPDATE payouts SET
                 result_desc = CASE WHEN payment_request_id = (SELECT MIN(payment_request_id) FROM payouts)
                     THEN 'Credit Party 888880 - MAMA MBOGA KIOSK account ACC-77123 is invalid'
                     ELSE 'The receiver ***678 is not registered - retry' END;",
        )
        .unwrap();
        conn.pragma_update(None, "user_version", 23).unwrap();
        stamps(&conn)
    };
    let mut options = OpenOptions::new(&db);
    options.key_hex = Some(TEST_KEY.into());
    options.create = false;
    let store = store::open(&options).unwrap();
    let descs: Vec<Option<String>> = store
        .read(|conn, _| {
            Ok(conn
                .prepare("SELECT result_desc FROM payouts ORDER BY payment_request_id")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?)
        })
        .unwrap();
    assert_eq!(
        descs,
        [
            Some("Credit Party 888880 - ***".to_string()),
            Some("The receiver ***678 is not registered - retry".to_string()),
        ]
    );
    let after = store.read(|conn, _| Ok(stamps(conn))).unwrap();
    assert!(
        after[0] > before[0],
        "the row changed is stamped: {before:?} {after:?}"
    );
    assert_eq!(after[1], before[1], "the row left alone is not");
    store.close();
    drop(store);
    let haystack = ledger_file_text(t.dir.path());
    for name in ["MBOGA", "ACC-77123"] {
        assert!(!haystack.contains(name), "{name} is readable in the file");
    }
}

/// Schema 15 seals an admin's words on a payout resolved as failed by hand; words kept before
/// it stayed in the clear in `result_desc` (read in the file, copied so to a replica). They are
/// sealed at the first open by this version, stamped as a change (so a replica gets the sealed
/// row), and later opens do not look again.
#[test]
fn resolve_reasons_kept_in_the_clear_before_schema_15_are_sealed_at_the_next_open() {
    let t = TestStore::new();
    let sender = t.user(Role::Sender, "Amina", None);
    let agent = t.user(Role::Agent, "Kiosk", None);
    let escrow = t.active_escrow(&sender, &agent, "0712345678", 20_000, &["rent"], None);
    let request = t.request(&agent, &escrow, "rent", 150_000).unwrap();
    let request = request["paymentRequestId"].as_str().unwrap().to_string();
    t.approve(&sender, &request).unwrap();
    let payout = t.payout_id_of(&request);
    t.store.close();
    let db = t.db_path();
    let counter = |conn: &rusqlite::Connection| -> i64 {
        conn.query_row(
            "SELECT change_seq FROM meta WHERE key = 'change_seq'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    // As a ledger of before schema 15 kept a failure resolved by hand.
    let before = {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute(
            "UPDATE payouts SET status = 'failed', result_code = 'manual', result_at = updated_at,
             result_desc = 'the number is WANJIRU''s old line', resolve_reason_enc = NULL WHERE id = ?1",
            [&payout],
        )
        .unwrap();
        conn.execute("DELETE FROM meta WHERE key = 'resolve_reasons_sealed'", [])
            .unwrap();
        counter(&conn)
    };
    let mut options = OpenOptions::new(&db);
    options.key_hex = Some(TEST_KEY.into());
    options.create = false;
    let store = store::open(&options).unwrap();
    let (desc, sealed, seq): (Option<String>, String, i64) = store
        .read(|c, _| {
            Ok(c.query_row(
                "SELECT result_desc, resolve_reason_enc, change_seq FROM payouts WHERE id = ?1",
                [&payout],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?)
        })
        .unwrap();
    assert_eq!(desc, None);
    assert!(seq > before, "not stamped: {seq} after {before}");
    let keys = remit::crypto::Keys::new(&remit::crypto::MasterKey::from_hex(TEST_KEY).unwrap());
    assert_eq!(
        keys.open(
            remit::crypto::EncryptedColumn::ResolveReason,
            &payout,
            &sealed
        )
        .unwrap(),
        "the number is WANJIRU's old line"
    );
    store.close();
    drop(store);
    assert!(!ledger_file_text(t.dir.path()).contains("WANJIRU"));
    // Done once: the next open changes nothing.
    let after = counter(&rusqlite::Connection::open(&db).unwrap());
    let store = store::open(&options).unwrap();
    store.close();
    drop(store);
    assert_eq!(counter(&rusqlite::Connection::open(&db).unwrap()), after);
}

/// Schema 17 seals a webhook endpoint's URL: one kept before, in the clear, is sealed at the
/// first open by this version and its origin alone left in `url`.
#[test]
fn the_upgrade_to_schema_17_seals_the_webhook_urls_kept_before() {
    let t = TestStore::new();
    t.store.close();
    let db = t.db_path();
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "INSERT INTO webhook_endpoints (id, url, events, secret_enc, enabled, created_by, created_at, updated_at)
                 VALUES ('whe_01', 'https://hooks.example.org:8443/in/TOKEN77?key=KEY88', '[\"deposit.recorded\"]',
                         'x', 1, 'usr_a', '2026-12-01T00:00:00Z', '2026-12-01T00:00:00Z');
             ALTER TABLE webhook_endpoints DROP COLUMN url_enc;
             PRAGMA user_version = 16;",
        )
        .unwrap();
        conn.execute_batch(crate::support::BACK_TO_SCHEMA_17)
            .unwrap();
    }
    let mut options = OpenOptions::new(&db);
    options.key_hex = Some(TEST_KEY.into());
    options.create = false;
    let store = store::open(&options).unwrap();
    let (origin, sealed): (String, String) = store
        .read(|c, _| {
            Ok(
                c.query_row("SELECT url, url_enc FROM webhook_endpoints", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?,
            )
        })
        .unwrap();
    assert_eq!(origin, "https://hooks.example.org:8443");
    let keys = remit::crypto::Keys::new(&remit::crypto::MasterKey::from_hex(TEST_KEY).unwrap());
    assert_eq!(
        keys.open(
            remit::crypto::EncryptedColumn::WebhookUrl,
            "whe_01",
            &sealed
        )
        .unwrap(),
        "https://hooks.example.org:8443/in/TOKEN77?key=KEY88"
    );
    store.close();
    drop(store);
    let haystack = ledger_file_text(t.dir.path());
    for secret in ["TOKEN77", "KEY88"] {
        assert!(
            !haystack.contains(secret),
            "{secret} is readable in the file"
        );
    }
}
