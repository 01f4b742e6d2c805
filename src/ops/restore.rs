//! `remit restore BACKUP`: a checked backup put in the database's place, the server stopped.
//!
//! A file copied over the database by hand keeps the old database's `-wal` beside it, and the
//! next open would apply that log's pages to the copy: a ledger damaged in the act of being
//! restored. Here the backup is copied beside the database and synced, and the copy (what will
//! be the ledger, not the file it came from) is checked under the database's key. The database
//! it replaces keeps its name until the copy takes it: its log is copied into its file, its
//! file (and any log left) get a second name that says when (hard links; kept until the
//! operator deletes them), its log is then removed from beside it, and one rename gives the
//! copy the database's name.

use crate::error::{Error, Result};
use crate::store;
use rusqlite::OptionalExtension;
use std::path::{Path, PathBuf};

/// What a restore did.
pub struct Restored {
    /// The check of the restored copy, run before anything was moved.
    pub report: crate::integrity::Report,
    /// Where the database it replaced now is (with its `-wal`, if it had one), if there was one.
    pub kept: Option<PathBuf>,
    /// What the replaced ledger knew that the backup does not, for the operator to act on:
    /// tokens revoked since (valid again in the backup), payouts settled since (waiting to be
    /// sent again in the backup).
    pub since: Vec<String>,
    /// The same lines kept in a file beside the replaced database, if there were any: a second
    /// restore before the advice is done would not say them again.
    pub since_file: Option<PathBuf>,
    /// The id of the ledger the backup replaced when it was another ledger (`--other-ledger`):
    /// nothing of it was compared with the backup, nor held back.
    pub replaced_other: Option<String>,
}

/// Puts `backup` in `db`'s place. The caller holds the database's lock (no server runs) and its
/// key lock alone (nothing writes with the key). `key_hex` is the key configured for `db`
/// (`ENCRYPTION_KEY`), else the key file beside `db` is read: a backup under another key would
/// leave a ledger the server cannot open.
pub fn restore(
    db: &Path,
    backup: &Path,
    key_hex: Option<&str>,
    other_ledger: bool,
) -> Result<Restored> {
    if same_file(db, backup) {
        return Err(Error::internal(format!(
            "{} is the database itself: name the backup to restore",
            backup.display()
        )));
    }
    // Over a ledger (damaged or not: that is what restores are for), or where there is
    // nothing: a mistyped --db must not move another program's file aside.
    if holds_a_ledger(db) {
        // A ledger whose first page is damaged cannot be told from another program's file:
        // the operator, who can, moves it aside (and keeps it) for the restore.
        if store::not_sqlite(db) {
            return Err(Error::internal(format!(
                "{} does not begin as an SQLite database does: nothing was restored. If it is the ledger, damaged, move it aside and keep it (`mv {} {}.damaged`), then restore again; otherwise check --db",
                db.display(),
                db.display(),
                db.display()
            )));
        }
        store::existing_database(db)?;
        if store::what_it_holds(db) == store::Holds::SomethingElse {
            return Err(Error::internal(format!(
                "{} is an SQLite database of something else, not a remit ledger: nothing was restored; check --db",
                db.display()
            )));
        }
    }
    a_ledger_file(backup)?;
    no_log_beside_the_backup(backup)?;
    let replaced_other = another_ledger(db, backup, other_ledger)?;
    no_log_beside_an_empty_file(db)?;
    let named = db;
    // Put in the file's place, not the link's: through a link named by --db the copy replaced
    // the link and the ledger it pointed to stayed as it was, for the server to open again.
    let real = super::real_path(db);
    let db = real.as_path();
    let key_hex = match key_hex.filter(|k| !k.trim().is_empty()) {
        Some(hex) => hex.trim().to_string(),
        None => {
            // Beside the name given, as `serve` reads it.
            let path = crate::crypto::key_file_path(named);
            let hex = std::fs::read_to_string(&path)
                .map_err(|e| {
                    Error::internal(format!(
                        "no key for {}: set ENCRYPTION_KEY or put its key file at {} ({e})",
                        named.display(),
                        path.display()
                    ))
                })?
                .trim()
                .to_string();
            if let Ok(key) = crate::crypto::MasterKey::from_hex(&hex) {
                crate::crypto::warn_if_weak(&key, &format!("the key file {}", path.display()));
            }
            hex
        }
    };
    let dir = match db.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = db
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::internal("the database path must end in a UTF-8 file name"))?;
    // A restore killed half-way left its hidden copy, as large as the ledger.
    // (Under the ledger's lock: no other restore of it runs.)
    super::backup::clear_unfinished(
        &dir,
        name,
        "restoring",
        "restore",
        "of this ledger",
        super::backup::Unseen::Dead,
    );
    let copy = dir.join(format!(".{name}.{}.restoring", std::process::id()));
    let unfinished = super::interrupt::Unfinished::new(&copy);
    let placed = copy_synced(backup, &copy)
        .and_then(|()| upgrade_copy(&copy, backup))
        .map_err(|e| on_the_copy(e, &dir))
        .and_then(|upgraded| {
            let mut report = check_copy(&copy, backup, db, &key_hex)?;
            if replaced_other.is_none() && key_check_of(db).is_some_and(|k| Some(k) != key_check_of(&copy)) {
                report.checks.push(format!(
                    "the ledger this restore replaces was under another key than the backup (its key was rotated after the backup was made): the restored ledger is under the backup's key, the one given. If that key was rotated away because it may have leaked, rotate it again now (remit rotate-key --db {}) before the server takes new names and phones under it",
                    named.display()
                ));
            }
            if let Some((from, to)) = upgraded {
                report.checks.insert(
                    0,
                    format!("the backup is at schema version {from}: its copy was upgraded to {to}, as a server's start upgrades a ledger, before this check (the backup itself is as it was)"),
                );
            }
            Ok(report)
        })
        .and_then(|report| {
            // Another ledger's rows are not this one's history: compared by id, each of its
            // escrows, deposits and payouts read as "made since the backup", to make again
            // (another ledger's money recorded into this one), and its hold was passed on.
            let since = match replaced_other {
                Some(_) => Vec::new(),
                None => {
                    let (since, hold, to_settle) = since_the_backup(db, &copy);
                    let hold = hold.then(|| (held_since(backup), to_settle));
                    hold_back(db, &copy, &key_hex, hold).map_err(|e| on_the_copy(e, &dir))?;
                    since
                }
            };
            like_the_database(db, &copy)?;
            let (kept, since_file) = unfinished.naming(|| put_in_place(db, &copy, &dir, &since))?;
            Ok(Restored {
                report,
                kept,
                since,
                since_file,
                replaced_other: replaced_other.clone(),
            })
        });
    if placed.is_err() {
        // With the log and shared memory its writes left (the hold, an upgrade): each was
        // left behind, on a disk that may be the full one.
        super::interrupt::remove_with_companions(&copy);
    }
    placed
}

/// An error writing the copy of the backup, made beside the ledger before anything is
/// replaced: a full disk is that directory's, and said so ("the database or its disk is full"
/// said neither which disk nor that nothing was restored).
fn on_the_copy(e: Error, dir: &Path) -> Error {
    match e {
        Error::Full => Error::internal(format!(
            "the disk of {} is full: the backup's copy could not be made ready beside the ledger, so nothing was restored (the ledger is untouched)",
            dir.display()
        )),
        e => e,
    }
}

/// The key check a ledger file holds (`meta.key_check`), if it can be read: which key it is
/// under, without the key.
fn key_check_of(db: &Path) -> Option<String> {
    let conn = store::read_only_connection(db).ok()?;
    conn.query_row("SELECT value FROM meta WHERE key = 'key_check'", [], |r| {
        r.get(0)
    })
    .ok()
}

/// Is there a ledger at `db` to replace (and to read what it knows since the backup)? An
/// empty file with no log beside it is none: one made ready for the restore (`touch`, a new
/// machine's provisioning) is replaced as if the name were free, not read as a damaged ledger
/// whose payouts must be held, nor kept aside. An empty file with a log is a ledger whose
/// commits are all in the log (or what is left of one): read, held and kept as any other.
fn holds_a_ledger(db: &Path) -> bool {
    std::fs::metadata(db).is_ok_and(|m| m.len() > 0)
}

/// Refuses an empty file with a log beside it: the log may hold all of a ledger's commits (a
/// crash before its first copy into the file), and SQLite, opening an empty file, deletes the
/// log it finds beside it as stale. The operator keeps it (and decides) before the restore.
fn no_log_beside_an_empty_file(db: &Path) -> Result<()> {
    let wal = super::beside(db, "-wal");
    match std::fs::metadata(&wal).map(|m| m.len()) {
        Ok(bytes) if bytes > 0 && !holds_a_ledger(db) => Err(Error::internal(format!(
            "{} is empty or missing, but {} beside it holds {bytes} bytes of a ledger's commits, which opening the empty file would delete: move {} somewhere safe (it may be the only copy of those commits), then run the restore again; nothing was restored",
            db.display(),
            wal.display(),
            wal.display()
        ))),
        _ => Ok(()),
    }
}

/// Refuses a "backup" with a log beside it: a file `remit backup` wrote has none, and this one's
/// last commits may be in it (a copy of a ledger taken with its `-wal`, a server's files after
/// a crash, a database restore kept aside). The copy restored is the file alone, which would be
/// the ledger of an earlier moment, checked clean and without a word of what it lost.
fn no_log_beside_the_backup(backup: &Path) -> Result<()> {
    let wal = super::beside(backup, "-wal");
    match std::fs::metadata(&wal).map(|m| m.len()) {
        Ok(bytes) if bytes > 0 => Err(Error::internal(format!(
            "{wal} beside {backup} holds {bytes} bytes of commits that are not in {backup} itself (a file `remit backup` wrote has no log beside it): restoring the file alone would lose them. Make a backup of it first, which reads it through its log (`remit backup --db {backup} <new file>`, under its key), and restore that; nothing was restored",
            wal = wal.display(),
            backup = backup.display(),
        ))),
        _ => Ok(()),
    }
}

/// Refuses a backup of another ledger than the one at `db` (their `ledger_id`s differ): a demo's
/// or another kiosk's backup restored by mistake would put that ledger, its users and its
/// tokens in this one's place. `--other-ledger` says it is meant (a ledger moved to this
/// machine): then the replaced ledger's id. When either id cannot be read (a damaged ledger,
/// one from before schema 8, or no ledger at `db`), nothing can be compared and nothing is
/// refused.
fn another_ledger(db: &Path, backup: &Path, meant: bool) -> Result<Option<String>> {
    let id_of = |path: &Path| -> Option<String> {
        let conn = store::read_only_connection(path).ok()?;
        crate::store::changes::ledger_id(&conn).ok()
    };
    if !holds_a_ledger(db) {
        return Ok(None);
    }
    match (id_of(db), id_of(backup)) {
        (Some(here), Some(there)) if here != there && meant => Ok(Some(here)),
        (Some(here), Some(there)) if here != there => Err(Error::internal(format!(
            "{} is a backup of another ledger ({there}), not of the one at {} ({here}): restoring it would put that ledger, its users and tokens in this one's place. If that is what you mean (a ledger moved here), run the restore again with --other-ledger; nothing was restored",
            backup.display(),
            db.display()
        ))),
        _ => Ok(None),
    }
}

/// Refuses, in words and before anything is copied, a backup that is no ledger's file: a
/// directory, an empty file, random bytes, another program's database (the copy's check said
/// "internal error" of them).
pub fn a_ledger_file(backup: &Path) -> Result<()> {
    let not = |what: &str| {
        Error::internal(format!(
            "{} {what}: nothing was restored; name a file that `remit backup` wrote",
            backup.display()
        ))
    };
    match std::fs::metadata(backup) {
        Err(e) => Err(Error::internal(format!(
            "cannot read {}: {e}",
            backup.display()
        ))),
        Ok(meta) if meta.is_dir() => Err(not("is a directory, not a backup")),
        Ok(meta) if !meta.is_file() => Err(not("is not a regular file")),
        Ok(meta) if meta.len() == 0 => Err(not("is an empty file, not a backup")),
        // A backup this user may not read (one made by root, 0600, restored as the service's
        // user) was called "not a remit backup (… or a damaged one)": an operator in the
        // middle of a restore drill could throw a good backup away.
        Ok(_) if std::fs::File::open(backup)
            .is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied) =>
        {
            Err(Error::internal(format!(
                "{} cannot be read by this user (permission denied): nothing was restored; run the restore as a user who may read it, or give the file to this one (`chown`)",
                backup.display()
            )))
        }
        Ok(_) => match store::what_it_holds(backup) {
            store::Holds::Ledger => Ok(()),
            store::Holds::Nothing => Err(not("is an empty SQLite database, not a backup")),
            store::Holds::SomethingElse => Err(not(
                "is an SQLite database of something else, not a remit backup",
            )),
            store::Holds::Unreadable => Err(not(
                "is not a remit backup (not an SQLite database, or a damaged one)",
            )),
        },
    }
}

/// A backup made before an upgrade of remit is at an older schema: its private copy is brought
/// to this remit's, as a server's first open brings a ledger (its migrations, in the copy's own
/// journal mode: no log is made beside it), before it is checked. Every backup of before an
/// upgrade was refused ("start the server once to migrate it": the server on a backup). The
/// key's own work (what a migration leaves to the first open with the key) is the restored
/// server's, at its start. Returns the versions, when it upgraded.
fn upgrade_copy(copy: &Path, backup: &Path) -> Result<Option<(u32, u32)>> {
    let mut conn = rusqlite::Connection::open_with_flags(
        copy,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| about_the_backup(backup, &e.into()))?;
    let from = store::schema_version(&conn).map_err(|e| about_the_backup(backup, &e))?;
    let latest = store::latest_schema_version();
    // Not a remit database, or a newer one: the check says so in its words.
    if from == 0 || from >= latest {
        return Ok(None);
    }
    conn.pragma_update(None, "foreign_keys", "ON")?;
    store::migrate(&mut conn).map_err(|e| about_the_backup(backup, &e))?;
    Ok(Some((from, latest)))
}

/// The copy, as it will be the ledger, checked under the database's key: the copy alone (a
/// file copied beside a log of its own would have been checked with that log, and restored
/// without it).
fn check_copy(
    copy: &Path,
    backup: &Path,
    db: &Path,
    key_hex: &str,
) -> Result<crate::integrity::Report> {
    let (conn, keys) = store::open_for_check(copy, Some(key_hex)).map_err(|e| match e {
        Error::WrongKey => Error::internal(format!(
            "{} is under another key than {}'s (a backup made before a key rotation?): configure the key it was made under, then restore it",
            backup.display(),
            db.display()
        )),
        other => about_the_backup(backup, &other),
    })?;
    let open_again = || -> Result<rusqlite::Connection> { store::read_only_connection(copy) };
    let report =
        crate::integrity::check_on_two(&conn, open_again, &keys, crate::integrity::Pages::Check)
            .map_err(|e| about_the_backup(backup, &e))?;
    if !report.is_clean() {
        return Err(Error::internal(format!(
            "{} does not pass the integrity check ({}): nothing was restored",
            backup.display(),
            report.mismatches.join("; ")
        )));
    }
    Ok(report)
}

/// An error met reading the backup, said of the backup: SQLite's word that a file is damaged
/// is about the backup here, and restoring another backup is the way on, not this one.
fn about_the_backup(backup: &Path, e: &Error) -> Error {
    let said = match e {
        // The copy's disk, not the backup: said by `on_the_copy`.
        Error::Full => return Error::Full,
        Error::Damaged(sqlite) => {
            format!("is damaged or is not a remit backup (sqlite: {sqlite})")
        }
        other => other.logged().to_string(),
    };
    Error::internal(format!(
        "{}: {said}: nothing was restored; use another backup",
        backup.display()
    ))
}

/// What the replaced ledger knows that the backup does not, in sentences, each with what to
/// do about it: tokens revoked since the backup (a leaked one would work again); payouts settled
/// or handed to the gateway since (the backup would send them again: M-Pesa refuses a repeated
/// id, but that is not to be leaned on); escrows and deposits recorded since; and payouts made
/// since that the backup has no record of (their money shows as the escrow's to spend).
/// Read-only; each part is read on its own, so one that cannot be read (a replaced ledger of an
/// older schema, say) says so and the others are still said.
///
/// And whether the restored ledger must hold its payouts back (`HOLD_KEY`): when there is money
/// to settle by hand, or what there is cannot be read, in a ledger that is not a demo's.
fn since_the_backup(db: &Path, copy: &Path) -> (Vec<String>, bool, Vec<ToSettle>) {
    if !holds_a_ledger(db) {
        return (Vec::new(), false, Vec::new());
    }
    let conn = match attached(db, copy) {
        Ok(conn) => conn,
        Err(e) => {
            let demo = store::read_only_connection(copy)
                .and_then(|c| is_demo(&c))
                .unwrap_or(false);
            let mut lines = Vec::new();
            if !demo {
                lines.push(NONE_FIRST.to_string());
            }
            lines.push(format!(
                "what changed since the backup could not be read from the replaced ledger ({}): what it paid since the backup is to be read from M-Pesa's statement, and settled by hand",
                why_unread(&e)
            ));
            return (lines, !demo, Vec::new());
        }
    };
    let mut said = Said::default();
    let mut say = |what: &str, part: SincePart| {
        if let Err(e) = part(&conn, &mut said) {
            // What could not be read may be money: said as such.
            said.money.push(format!(
                "{what} since the backup could not be read from the replaced ledger: {}",
                why_unread(&e)
            ));
        }
    };
    say("payouts held back", still_held);
    say("tokens revoked", revoked_since);
    say("payouts settled", settled_since);
    say("escrows cancelled and deposits reversed", changed_since);
    say("escrows, deposits and payouts recorded", recorded_since);
    // Who can sign in moves no money: a part that cannot be read is a note, as the rate's.
    if let Err(e) = users_since(&conn, &mut said) {
        said.notes.push(format!(
            "the users and tokens added since the backup could not be read from the replaced ledger: {}; compare `remit user list` with the staff's tokens",
            why_unread(&e)
        ));
    }
    // The rate moves no money by itself: a part that cannot be read is a note, not a hold.
    if let Err(e) = rate_since(&conn, &mut said) {
        said.notes.push(format!(
            "the exchange rate set since the backup could not be read from the replaced ledger: {}; check it (`remit fx get`) before payment requests are made",
            why_unread(&e)
        ));
    }
    let Said {
        tokens,
        money,
        notes,
        to_settle,
    } = said;
    let mut lines = Vec::new();
    // Money to settle by hand or to record again: first of all, nothing may be sent meanwhile
    // (a request approved again would go out at once). A demo ledger runs only with the
    // simulator, whose payouts are simulated. Then the tokens that work again, to revoke before
    // anything else (a stolen one is live until then); then the money; then what moves no money
    // (an escrow no money came into, a request made again), which holds nothing back.
    let hold = !money.is_empty() && !is_demo(&conn).unwrap_or(false);
    if hold {
        lines.push(NONE_FIRST.into());
    }
    lines.extend(tokens);
    lines.extend(money);
    lines.extend(notes);
    (lines, hold, to_settle)
}

/// A replaced ledger whose payouts an earlier restore held back, its lines maybe not done: the
/// restored one holds them back too (a second restore of the same backup finds nothing new to
/// say, and dropped the hold: a request the first said to approve again would have been sent).
fn still_held(conn: &rusqlite::Connection, said: &mut Said) -> Result<()> {
    if let Some(held) = meta_value(conn, "replaced", HOLD_KEY)? {
        said.money.push(format!(
            "the replaced ledger held its payouts back (it was {held}): the restored one holds them back too, until the earlier restore's lines (its .since-the-backup.txt) and these are done"
        ));
        // And the payments it said to settle by hand stay so (`--done` refuses while one waits).
        said.to_settle.extend(settle_list(conn, "replaced")?);
    }
    Ok(())
}

/// Why a part of the replaced ledger could not be read. Its damage is said without the usual
/// advice to restore it from a backup: that is what is being done.
fn why_unread(e: &Error) -> String {
    match e {
        Error::Damaged(sqlite) => format!("it is damaged (sqlite: {sqlite})"),
        other => other.logged().to_string(),
    }
}

/// The first of the restore's lines when there is money to settle by hand.
const NONE_FIRST: &str = "until every line about money below is done, run the server with REMIT_GATEWAY=none (it refuses to start with another gateway until `remit restore --done`): nothing is sent then, and a payout approved again (or an escrow's payments recorded again) is settled by hand, never sent a second time";

/// The `meta` key of a restored ledger whose payouts are held back: while it is there, the
/// server starts only with `REMIT_GATEWAY=none` (`payouts_held`), until `remit restore --done`
/// (`release_payouts`) takes it away. Its value says when and from which backup.
pub(crate) const HOLD_KEY: &str = "payouts_held_after_restore";

/// The hold's words: when, and which backup.
fn held_since(backup: &Path) -> String {
    format!(
        "restored from {} at {}",
        backup.display(),
        crate::time::rfc3339(crate::time::now_unix())
    )
}

/// Why the server may not send payouts from this ledger yet, if it may not: a restore named
/// money to settle by hand (see `HOLD_KEY`).
pub fn payouts_held(conn: &rusqlite::Connection) -> Result<Option<String>> {
    meta_value(conn, "main", HOLD_KEY)
}

/// A `meta` value of the database `schema` (`main`, or the replaced ledger attached as
/// `replaced`).
fn meta_value(conn: &rusqlite::Connection, schema: &str, key: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            &format!("SELECT value FROM {schema}.meta WHERE key = ?1"),
            [key],
            |r| r.get(0),
        )
        .optional()?)
}

/// The `meta` key of the payments a restore's lines said to approve (again) and settle by
/// hand: a JSON list of `ToSettle`.
const SETTLE_KEY: &str = "payouts_to_settle_after_restore";

/// A payment a restore's lines said to approve (again) and settle by hand: the replaced
/// ledger's payout and its request, what a request made again would be (the same escrow,
/// category and shillings, made after the restore), and the receipt M-Pesa gave it, if known.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToSettle {
    payout: String,
    request: String,
    /// Empty for an escrow made after the backup (made again under another id: any escrow).
    escrow: String,
    category: String,
    kes_cents: i64,
    /// When the restore ran (RFC 3339, as requests' `created_at`).
    after: String,
    receipt: Option<String>,
}

/// The payouts waiting to be sent that are payments the restore said to settle by hand (a
/// request the backup had waiting, approved again; or one made again, approved), in words:
/// sent at `--done`, they would pay a second time what M-Pesa may have paid before the restore
/// (until 2026-12-07 `--done` let them go).
fn waiting_to_settle(conn: &rusqlite::Connection) -> Result<Vec<String>> {
    let entries = settle_list(conn, "main")?;
    let mut waiting = Vec::new();
    // Payouts settled by hand that made an entry done: each makes one entry done, never two
    // (two payments of the same shillings; until 2026-12-07 one settled cleared both).
    let mut used: std::collections::HashSet<String> = std::collections::HashSet::new();
    for entry in &entries {
        // The payouts that may be this payment made again: of its request (one the backup had
        // waiting, approved again), or of the same category and shillings asked since the
        // restore, on its escrow (an escrow made after the backup is made again under another
        // id: any escrow then). Settled by hand, one of them is the payment done.
        let found: Vec<(String, String, String)> = store::all_rows(
            conn,
            "SELECT p.id, r.id, p.status FROM payouts p
             JOIN payment_requests r ON r.id = p.payment_request_id
             JOIN spending_categories c ON c.id = r.category_id
             WHERE p.flagged = 0
               AND (r.id = ?1 OR (c.name = ?3 AND r.amount_kes_cents = ?4 AND r.created_at >= ?5
                                  AND (?2 = '' OR r.escrow_id = ?2)))
             ORDER BY p.id",
            rusqlite::params![
                entry.request,
                entry.escrow,
                entry.category,
                entry.kes_cents,
                entry.after,
            ],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        // Done: paid with the receipt M-Pesa gave the replaced ledger's payout (a receipt is
        // one payment's: two entries of one payment, a second restore's and the first's, are
        // both done by it), or, for one whose outcome the replaced ledger did not know, a
        // payout of it settled by hand as paid or failed, not counted for another entry. A
        // payment resolved as failed does not make one with a receipt done (an honest request
        // of the same shillings, never paid, resolved as failed, released the payment made
        // again until 2026-12-07).
        let done = match &entry.receipt {
            Some(receipt) => conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM payouts WHERE receipt = ?1 AND status = 'succeeded')",
                [receipt],
                |r| r.get::<_, bool>(0),
            )?,
            None => match found
                .iter()
                .find(|(payout, _, status)| status != "queued" && !used.contains(payout))
            {
                Some((payout, _, _)) => used.insert(payout.clone()),
                None => false,
            },
        };
        if done {
            continue;
        }
        for (payout, request, _) in found.iter().filter(|(_, _, status)| status == "queued") {
            let said = format!(
                "payout {payout} of payment request {request} waits to be sent and may be the payment of payout {} of the replaced ledger (its request, or the same category and shillings asked since the restore{})",
                entry.payout,
                if entry.escrow.is_empty() { "" } else { " on its escrow" },
            );
            if !waiting.contains(&said) {
                waiting.push(said);
            }
        }
    }
    Ok(waiting)
}

/// The payments to settle by hand that the database `schema` lists in `SETTLE_KEY` (none when
/// it lists none); a list that cannot be read is refused, never read as nothing to settle.
fn settle_list(conn: &rusqlite::Connection, schema: &str) -> Result<Vec<ToSettle>> {
    let Some(listed) = meta_value(conn, schema, SETTLE_KEY)? else {
        return Ok(Vec::new());
    };
    serde_json::from_str(&listed).map_err(|e| {
        Error::internal(format!(
            "the restore's list of payments to settle by hand (meta {SETTLE_KEY}) cannot be read: {e}"
        ))
    })
}

/// `remit restore --done`: the restore's lines are done; payouts may go out again. Audited.
/// `None` when no payouts were held.
pub fn release_payouts(store: &store::Store) -> Result<Option<String>> {
    store.write(|ctx| {
        let Some(held) = payouts_held(ctx.conn)? else {
            return Ok(None);
        };
        let waiting = waiting_to_settle(ctx.conn)?;
        if !waiting.is_empty() {
            return Err(Error::NotNow(format!(
                "payouts stay held: {}. The restore's lines named those payments to settle by hand (M-Pesa may have paid them before the restore): resolve the one that is the payment as paid with M-Pesa's receipt, or as failed once M-Pesa says so (POST /payouts/:id/resolve, the admin's Payouts screen), with the server started with REMIT_GATEWAY=none, then run `remit restore --done` again (a payment settled by hand is done, and another of the same shillings then goes out; one that is not the payment, with none settled yet, waits until the one that is has been settled)",
                waiting.join("; ")
            )));
        }
        ctx.conn
            .prepare_cached("DELETE FROM meta WHERE key IN (?1, ?2)")?
            .execute([HOLD_KEY, SETTLE_KEY])?;
        ctx.audit(
            "system:cli",
            "ledger.payouts_released",
            "ledger",
            &serde_json::json!({"held": held}),
        )?;
        Ok(Some(held))
    })
}

/// What `since_the_backup`'s parts say: tokens that work again (to revoke first), lines about
/// money (settled, recorded or to record again by hand), and the others.
#[derive(Default)]
struct Said {
    tokens: Vec<String>,
    money: Vec<String>,
    notes: Vec<String>,
    /// The payments the lines say to approve (again) and settle by hand (`SETTLE_KEY`).
    to_settle: Vec<ToSettle>,
}

/// A part of `since_the_backup`: adds its sentences.
type SincePart = fn(&rusqlite::Connection, &mut Said) -> Result<()>;

/// A ledger with demo data runs only with the simulator (never with `REMIT_GATEWAY=none`): its
/// payouts are simulated, and nothing real is paid twice.
fn is_demo(conn: &rusqlite::Connection) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM meta WHERE key = 'demo_seeded')",
        [],
        |r| r.get(0),
    )?)
}

fn revoked_since(conn: &rusqlite::Connection, said: &mut Said) -> Result<()> {
    let db = replaced_path(conn)?;
    let revoked: Vec<String> = store::all_rows(
        conn,
        "SELECT b.prefix FROM api_tokens b JOIN replaced.api_tokens r ON r.prefix = b.prefix
             WHERE b.revoked_at IS NULL AND r.revoked_at IS NOT NULL ORDER BY b.prefix",
        [],
        |r| Ok(r.get(0)?),
    )?;
    for prefix in revoked {
        said.tokens.push(format!(
            "token {prefix} was revoked after the backup and works again: `remit token revoke {prefix} --db {db}`"
        ));
    }
    Ok(())
}

/// The path of the replaced ledger (attached as `replaced`), as the lines' commands name it.
fn replaced_path(conn: &rusqlite::Connection) -> Result<String> {
    Ok(conn.query_row(
        "SELECT file FROM pragma_database_list WHERE name = 'replaced'",
        [],
        |r| r.get(0),
    )?)
}

/// The backup (`main`) with the replaced ledger attached as `replaced`, read-only.
fn attached(db: &Path, copy: &Path) -> Result<rusqlite::Connection> {
    let conn = store::read_only_connection(copy)?;
    let path = db
        .to_str()
        .ok_or_else(|| Error::internal("the database path is not UTF-8"))?;
    conn.execute("ATTACH DATABASE ?1 AS replaced", [path])?;
    Ok(conn)
}

/// A payout both ledgers know, settled since the backup or handed to the gateway since (sent,
/// or claimed for a call): the backup would send it again.
struct SettledSince {
    id: String,
    in_backup: String,
    status: String,
    receipt: Option<String>,
    /// The flag an earlier restore gave it in the replaced ledger, kept as it is (what that
    /// restore's replaced ledger said of it: its receipt).
    earlier_flag: Option<String>,
}

impl SettledSince {
    /// What the replaced ledger says of it: `succeeded (receipt QK…)`.
    fn there(&self) -> String {
        format!(
            "{}{}",
            status_said(&self.status),
            receipt_words(self.receipt.as_deref())
        )
    }
}

/// A payout's status as a sentence says it ("is paid", not "is succeeded").
fn status_said(status: &str) -> &str {
    match status {
        "succeeded" => "paid",
        other => other,
    }
}

fn settled_payouts(conn: &rusqlite::Connection) -> Result<Vec<SettledSince>> {
    store::all_rows(
        conn,
        "SELECT b.id, b.status,
                 CASE WHEN r.status IN ('queued', 'sent') AND r.flagged = 1 AND r.gateway IS NULL
                     THEN 'flagged (' || r.flag_reason || ')'
                 WHEN r.status IN ('queued', 'sent')
                     THEN 'handed to the gateway (' || r.status || ')' ELSE r.status END, r.receipt,
                 -- Flagged by an earlier restore, whatever its gateway (said by its flag's words:
                 -- a second restore said one sent before the backup \"handed to the gateway
                 -- (sent)\", and its flag lost the receipt the first had named, until 2026-12-07).
                 CASE WHEN r.status IN ('queued', 'sent') AND r.flagged = 1
                         AND instr(r.flag_reason, 'restored from a backup') > 0
                     THEN r.flag_reason END
             FROM payouts b JOIN replaced.payouts r ON r.id = b.id
             WHERE (b.status IN ('queued', 'sent') AND r.status NOT IN ('queued', 'sent'))
                OR (b.status = 'queued' AND b.gateway IS NULL AND r.gateway IS NOT NULL)
                -- Held back by an earlier restore (or flagged since), its advice not yet done:
                -- a second restore of the same backup must not send it.
                OR (b.status IN ('queued', 'sent') AND b.flagged = 0
                    AND r.status IN ('queued', 'sent') AND r.flagged = 1)
             ORDER BY b.id",
        [],
        |r| {
            Ok(SettledSince {
                id: r.get(0)?,
                in_backup: r.get(1)?,
                status: r.get(2)?,
                receipt: r.get(3)?,
                earlier_flag: r.get(4)?,
            })
        },
    )
}

fn settled_since(conn: &rusqlite::Connection, said: &mut Said) -> Result<()> {
    let settled = settled_payouts(conn)?;
    for p in &settled {
        said.money.push(match &p.earlier_flag {
            // Its flag says what the first restore's replaced ledger knew (the receipt).
            Some(flag) => format!(
                "payout {} is flagged by an earlier restore, still to be settled by hand, in the replaced ledger but {} in the backup: it stays flagged in the restored ledger with the earlier flag's words (\"{flag}\")",
                p.id, p.in_backup,
            ),
            None => format!(
                "payout {} is {} in the replaced ledger but {} in the backup: it is flagged in the restored ledger, so that no gateway sends it again",
                p.id,
                p.there(),
                p.in_backup,
            ),
        });
    }
    if !settled.is_empty() {
        said.money.push("each flagged payout waits on the admin screen's Stuck payouts (or POST /payouts/:id/resolve) to be settled by hand as the replaced ledger says, once M-Pesa has confirmed how it ended: paid with its receipt, or failed".into());
    }
    Ok(())
}

/// Flags, in the restored copy, every payout the replaced ledger saw settled or handed to the
/// gateway after the backup: a flagged payout is never sent (whatever `REMIT_GATEWAY` the
/// server starts with), is listed as stuck, and carries what the replaced ledger said of it
/// for the admin who settles it. Before the copy takes the database's name; nothing when the
/// replaced ledger cannot be read (the report says so).
///
/// With `hold`, it also writes the hold (`HOLD_KEY`) into the copy: the server then refuses to
/// start with a gateway that sends until `remit restore --done`, so that a request approved
/// again, or a payout the replaced ledger could not say, is never sent by a start that forgot
/// the advice.
fn hold_back(
    db: &Path,
    copy: &Path,
    key_hex: &str,
    hold: Option<(String, Vec<ToSettle>)>,
) -> Result<()> {
    if !holds_a_ledger(db) {
        return Ok(());
    }
    let settled = attached(db, copy)
        .and_then(|conn| settled_payouts(&conn))
        .unwrap_or_default();
    let flagged = attached(db, copy)
        .and_then(|conn| escrows_flagged_since(&conn))
        .unwrap_or_default();
    if settled.is_empty() && flagged.is_empty() && hold.is_none() {
        return Ok(());
    }
    let mut options = store::OpenOptions::new(copy);
    options.key_hex = Some(key_hex.to_string());
    options.create = false;
    let copy_store = store::open(&options)?;
    copy_store.write(move |ctx| {
        if let Some((held, to_settle)) = &hold {
            // With the backup's own list (a backup taken while an earlier restore's payments
            // were still to settle), which a replaced ledger that cannot be read would drop.
            let mut to_settle = to_settle.clone();
            for entry in settle_list(ctx.conn, "main")? {
                if !to_settle.iter().any(|e| e.payout == entry.payout) {
                    to_settle.push(entry);
                }
            }
            let mut put = ctx.conn.prepare_cached(
                "INSERT INTO meta (key, value, change_seq) VALUES (?1, ?2, remit_change_seq())
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, change_seq = excluded.change_seq",
            )?;
            put.execute(rusqlite::params![HOLD_KEY, held])?;
            let listed = serde_json::to_string(&to_settle).map_err(Error::internal)?;
            put.execute(rusqlite::params![SETTLE_KEY, listed])?;
            ctx.audit(
                "system:cli",
                "ledger.payouts_held",
                "ledger",
                &serde_json::json!({"held": held}),
            )?;
        }
        // An escrow flagged since (a card deposit of it refunded or disputed at Stripe) holds
        // its money in the restored ledger too, as in the replaced one.
        for (id, reason) in &flagged {
            ctx.conn
                .prepare_cached(
                    "UPDATE escrows SET change_seq = remit_change_seq_of('escrows', id), flag_reason = ?2 WHERE id = ?1",
                )?
                .execute(rusqlite::params![
                    id,
                    format!("{reason} (flagged after the backup this ledger was restored from)")
                ])?;
        }
        for p in &settled {
            let id = crate::domain::PayoutId::parse(&p.id)?;
            let reason = match &p.earlier_flag {
                Some(earlier) => earlier.clone(),
                None => format!(
                    "restored from a backup in which it is {}; the replaced ledger has it {}: settle it by hand as that says, once M-Pesa has confirmed how it ended",
                    p.in_backup,
                    p.there()
                ),
            };
            crate::service::payouts::flag(ctx, &id, &reason)?;
        }
        Ok(())
    })?;
    copy_store.close();
    drop(copy_store);
    // The copy must hold every commit in its file before it is renamed (a log left under the
    // copy's name would be left behind): the last connection to close copies the log in and
    // removes it.
    let last = rusqlite::Connection::open(copy)?;
    last.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    last.close().map_err(|(_, e)| e)?;
    let mut wal = copy.as_os_str().to_owned();
    wal.push("-wal");
    if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
        return Err(Error::internal(
            "the restored copy's flags could not be written into its file: nothing was restored",
        ));
    }
    Ok(())
}

/// Escrows both ledgers have that the replaced one flagged since the backup, with its flag.
fn escrows_flagged_since(conn: &rusqlite::Connection) -> Result<Vec<(String, String)>> {
    store::all_rows(
        conn,
        "SELECT r.id, r.flag_reason FROM escrows b JOIN replaced.escrows r ON r.id = b.id
             WHERE r.flag_reason IS NOT NULL AND b.flag_reason IS NULL ORDER BY r.id",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// Rows both ledgers have that changed since in a way the backup would undo: an escrow
/// cancelled (its money returned to the sender would be the recipient's to spend again) and a
/// card deposit refunded or disputed (its escrow flagged for the operator).
fn changed_since(conn: &rusqlite::Connection, said: &mut Said) -> Result<()> {
    let cancelled: Vec<(String, i64)> = store::all_rows(
        conn,
        "SELECT r.id, r.refunded_usd_cents FROM escrows b JOIN replaced.escrows r ON r.id = b.id
             WHERE r.status = 'cancelled' AND b.status <> 'cancelled' ORDER BY r.id",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    for (id, refunded) in &cancelled {
        said.money.push(format!(
            "escrow {id} was cancelled after the backup ({} returned to its sender) but is not cancelled in the backup: cancel it again (POST /escrows/{id}/cancel) before its money can be asked for",
            usd(*refunded),
        ));
    }
    #[allow(clippy::type_complexity)]
    let reversed: Vec<(String, String, String, String, bool)> = store::all_rows(
        conn,
        "SELECT r.id, r.escrow_id, r.reversal, r.reference,
                 EXISTS (SELECT 1 FROM replaced.escrows e WHERE e.id = r.escrow_id AND e.flag_reason IS NOT NULL)
             FROM deposits b JOIN replaced.deposits r ON r.id = b.id
             WHERE r.reversal IS NOT NULL AND b.reversal IS NULL ORDER BY r.id",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )?;
    for (id, escrow, reversal, reference, flagged) in &reversed {
        // `hold_back` flags the escrow in the restored copy when the replaced one still had
        // its flag; one an admin had cleared since is not flagged again.
        let escrow_now = if *flagged {
            "its escrow is flagged in the restored ledger as in the replaced one (its money held until an admin clears the flag)"
        } else {
            "its escrow's flag had been cleared in the replaced ledger, and is not set in the restored one"
        };
        said.money.push(format!(
            "deposit {id} on escrow {escrow} was {reversal} after the backup but is not in the backup: {escrow_now}; resend Stripe's event of {reference} from its dashboard, so that the deposit records it too (which flags the escrow again)"
        ));
    }
    Ok(())
}

/// Users and tokens the replaced ledger gave since the backup: gone with it (their tokens answer
/// `401` now), to give again. A user is named by id and role only (a name or a phone is not
/// for the terminal or the lines' file); a recipient comes back with their escrow.
fn users_since(conn: &rusqlite::Connection, said: &mut Said) -> Result<()> {
    let db = replaced_path(conn)?;
    let users: Vec<(String, String, String)> = store::all_rows(
        conn,
        "SELECT r.id, r.role, r.created_at FROM replaced.users r
             WHERE NOT EXISTS (SELECT 1 FROM users b WHERE b.id = r.id) ORDER BY r.created_at, r.id",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    for (id, role, at) in users {
        let again = if role == "recipient" {
            "they come back when their sender makes the escrow naming their phone again, and sign in with a token their sender gives then (`POST /escrows/:id/recipient-token`, the escrow's screen)".to_string()
        } else {
            format!("add them again (`remit user add --role {role} --name NAME [--phone PHONE] --db {db}`) and hand them the token it prints")
        };
        said.notes.push(format!(
            "user {id} ({role}) was added after the backup ({at}) and is not in the restored ledger, nor their tokens: {again}"
        ));
    }
    let tokens: Vec<(String, String, Option<String>)> = store::all_rows(
        conn,
        "SELECT r.prefix, r.user_id, r.sender_scope FROM replaced.api_tokens r
             WHERE r.revoked_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM api_tokens b WHERE b.prefix = r.prefix)
               AND EXISTS (SELECT 1 FROM users b WHERE b.id = r.user_id)
             ORDER BY r.created_at, r.prefix",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    for (prefix, user, sender) in tokens {
        // One a sender gave opened that sender's escrows only; one an admin issues opens all
        // the recipient's: the sender gives it again.
        let again = match sender {
            Some(sender) => format!(
                "their sender ({sender}) gives another from the escrow if it is still wanted (`POST /escrows/:id/recipient-token`, the escrow's screen; a token `remit token issue` makes would open every sender's escrows to them)"
            ),
            None => format!(
                "issue another if it is still wanted (`remit token issue {user} --db {db}`)"
            ),
        };
        said.notes.push(format!(
            "token {prefix} of user {user} was issued after the backup and no longer works: {again}"
        ));
    }
    Ok(())
}

/// The USD-KES rate set since the backup: the restored ledger would price new requests at the
/// backup's (moves no money by itself, so a note, not a hold).
fn rate_since(conn: &rusqlite::Connection, said: &mut Said) -> Result<()> {
    let changed: Vec<(i64, Option<i64>)> = store::all_rows(
        conn,
        "SELECT r.rate_kes_per_usd_e4, b.rate_kes_per_usd_e4
             FROM replaced.fx_rates r LEFT JOIN fx_rates b ON b.pair = r.pair
             WHERE r.pair = 'USD-KES' AND b.rate_kes_per_usd_e4 IS NOT r.rate_kes_per_usd_e4",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    for (rate, before) in changed {
        let rate = crate::money::RateKesPerUsd::from_e4(rate)
            .ok_or_else(|| Error::internal("a rate out of its range"))?;
        let before = before
            .and_then(crate::money::RateKesPerUsd::from_e4)
            .map_or("none set (the default)".to_string(), |b| b.to_string());
        said.notes.push(format!(
            "the USD-KES rate was set to {rate} KES per USD after the backup, which has {before}: set it again (`remit fx set USD-KES {rate}`, or the admin screen) before payment requests are made at the backup's"
        ));
    }
    Ok(())
}

/// Escrows, deposits and payouts the backup has no record of at all.
fn recorded_since(conn: &rusqlite::Connection, said: &mut Said) -> Result<()> {
    let escrows: Vec<(String, i64, i64)> = store::all_rows(
        conn,
        "SELECT r.id, r.deposited_usd_cents, r.spent_usd_cents + r.reserved_usd_cents
             FROM replaced.escrows r WHERE NOT EXISTS (SELECT 1 FROM escrows b WHERE b.id = r.id)
             ORDER BY r.id",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    for (id, deposited, paying) in &escrows {
        // An escrow no money came into or left: made again, it is all there was.
        let lines = if *deposited == 0 && *paying == 0 {
            &mut said.notes
        } else {
            &mut said.money
        };
        lines.push(format!(
            "escrow {id} was made after the backup and is not in it, nor its deposits ({}) and payments ({} paid or on their way): its sender makes it again, and its deposits and payments are recorded again",
            usd(*deposited),
            usd(*paying),
        ));
    }
    // Deposits since: on an escrow the backup has, and on one made since (recorded again once
    // the escrow is made again), each with the receipt number its depositor holds.
    #[allow(clippy::type_complexity)]
    let deposits: Vec<(
        String,
        String,
        String,
        i64,
        String,
        Option<i64>,
        bool,
        Option<String>,
    )> = store::all_rows(
        conn,
        "SELECT r.id, r.escrow_id, r.source, r.amount_usd_cents, r.reference, r.amount_kes_cents,
                 EXISTS (SELECT 1 FROM escrows b WHERE b.id = r.escrow_id), r.receipt_number
             FROM replaced.deposits r
             WHERE r.status = 'applied' AND NOT EXISTS (SELECT 1 FROM deposits b WHERE b.id = r.id)
             ORDER BY r.id",
        [],
        |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        },
    )?;
    for (id, escrow, source, amount, reference, kes, escrow_in_backup, receipt) in &deposits {
        let again = if source == "cash" {
            let counted = match kes.and_then(crate::money::KesCents::new) {
                Some(kes) => format!("{kes} counted"),
                None => usd(*amount),
            };
            format!("record it again at the kiosk: {counted}, reference {reference}")
        } else {
            format!("resend Stripe's event of {reference} from its dashboard")
        };
        let held = receipt
            .as_deref()
            .map_or(String::new(), |r| format!(", the depositor's receipt {r}"));
        let when = if *escrow_in_backup {
            ""
        } else {
            " once the escrow is made again (its new id)"
        };
        said.money.push(format!(
            "deposit {id} ({source}, {}{held}) on escrow {escrow} was recorded after the backup and is not in it: {again}{when} (a new receipt number is printed)",
            usd(*amount),
        ));
    }
    // Requests made since and still waiting: lost with the backup unless made again.
    let waiting: Vec<(String, String, i64, String)> = store::all_rows(
        conn,
        "SELECT r.id, r.escrow_id, r.amount_kes_cents, c.name FROM replaced.payment_requests r
             JOIN replaced.spending_categories c ON c.id = r.category_id
             WHERE r.status = 'pending_approval'
               AND NOT EXISTS (SELECT 1 FROM payment_requests b WHERE b.id = r.id)
             ORDER BY r.id",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    for (id, escrow, kes, category) in &waiting {
        let kes = crate::money::KesCents::new(*kes).unwrap_or_default();
        said.notes.push(format!(
            "payment request {id} ({kes} from {category} of escrow {escrow}) was made after the backup and waits for its sender in the replaced ledger: the recipient or the kiosk makes it again"
        ));
    }
    let demo = is_demo(conn)?;
    let payouts: Vec<PayoutSince> = store::all_rows(
        conn,
        "SELECT r.id, r.payment_request_id, r.escrow_id, r.amount_kes_cents, r.amount_usd_cents,
                 CASE WHEN r.status IN ('queued', 'sent')
                 THEN 'handed to the gateway (' || r.status || ')' ELSE r.status END, r.receipt,
                 c.name,
                 -- A request that waits in the backup, and will still wait an hour from now.
                 CASE WHEN b_r.status = 'pending_approval'
                     AND b_r.expires_at > strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '+1 hour')
                     THEN 'waiting' ELSE b_r.status END,
                 EXISTS (SELECT 1 FROM escrows b WHERE b.id = r.escrow_id)
             FROM replaced.payouts r
             JOIN replaced.payment_requests rr ON rr.id = r.payment_request_id
             JOIN replaced.spending_categories c ON c.id = rr.category_id
             LEFT JOIN payment_requests b_r ON b_r.id = r.payment_request_id
             WHERE NOT EXISTS (SELECT 1 FROM payouts b WHERE b.id = r.id)
               AND (r.status IN ('sent', 'succeeded') OR (r.status = 'queued' AND r.gateway IS NOT NULL))
             ORDER BY r.id",
        [],
        |r| {
            Ok(PayoutSince {
                id: r.get(0)?,
                request: r.get(1)?,
                escrow: r.get(2)?,
                kes: r.get(3)?,
                usd: r.get(4)?,
                status: r.get(5)?,
                receipt: r.get(6)?,
                category: r.get(7)?,
                request_in_backup: r.get(8)?,
                escrow_in_backup: r.get(9)?,
            })
        },
    )?;
    for p in &payouts {
        let kes = crate::money::KesCents::new(p.kes).unwrap_or_default();
        let what = format!(
            "payout {} ({kes}, {} from {}, for payment request {} of escrow {}) is {}{} in the replaced ledger and not in the backup at all",
            p.id,
            usd(p.usd),
            p.category,
            p.request,
            p.escrow,
            status_said(&p.status),
            receipt_words(p.receipt.as_deref()),
        );
        let settle = "before `remit restore --done` (which refuses while that payout waits), settle its payout by hand as paid with the receipt above once M-Pesa has confirmed it (one still handed to the gateway: once M-Pesa says how it ended, as paid with M-Pesa's receipt or as failed)";
        if !demo {
            // An escrow made after the backup is made again under another id: any escrow.
            said.to_settle.push(ToSettle {
                payout: p.id.clone(),
                request: p.request.clone(),
                escrow: match p.escrow_in_backup {
                    true => p.escrow.clone(),
                    false => String::new(),
                },
                category: p.category.clone(),
                kes_cents: p.kes,
                after: crate::time::now_rfc3339(),
                receipt: p.receipt.clone(),
            });
        }
        let todo = if demo {
            "a demo ledger's payouts are simulated: nothing real was paid".to_string()
        } else if !p.escrow_in_backup {
            format!("its escrow was made after the backup (above): once it is made again, with the server started with REMIT_GATEWAY=none, make the payment request again (the same category and shillings), approve it, and {settle}")
        } else if p.request_in_backup.as_deref() == Some("waiting") {
            format!(
                "with the server started with REMIT_GATEWAY=none, approve that request, which waits in the backup (never make it again: the sender would approve both), and {settle}"
            )
        } else {
            // One that waits in the backup but expires within the hour is cancelled first,
            // so that it cannot be approved beside the one made again.
            let first = if p.request_in_backup.as_deref() == Some("pending_approval") {
                format!(
                    "cancel request {} (it waits in the backup, expiring within the hour), then ",
                    p.request
                )
            } else {
                String::new()
            };
            format!(
                "the backup shows that money as the escrow's to spend: with the server started with REMIT_GATEWAY=none, {first}make the payment request again (the same category and shillings; today's rate prices it), approve it, and {settle}"
            )
        };
        said.money.push(format!("{what}: {todo}"));
    }
    Ok(())
}

/// A payout of the replaced ledger that the backup does not have.
struct PayoutSince {
    id: String,
    request: String,
    escrow: String,
    kes: i64,
    usd: i64,
    status: String,
    receipt: Option<String>,
    category: String,
    request_in_backup: Option<String>,
    escrow_in_backup: bool,
}

/// `USD 12.50`.
fn usd(cents: i64) -> String {
    crate::money::UsdCents::new(cents)
        .unwrap_or_default()
        .display()
}

/// ` (receipt QK…)` when the replaced ledger has M-Pesa's receipt of a payout.
fn receipt_words(receipt: Option<&str>) -> String {
    receipt.map_or(String::new(), |r| format!(" (receipt {r})"))
}

/// Do both paths name one file (the same name, or a link to it)?
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Copies `from` into a new file `to`, the owner's only, and syncs it. `to` must not exist,
/// not even as a symbolic link: a restore run as root opened and truncated whatever a link
/// planted at the hidden copy's name pointed to (another user's file, `/etc/shadow`), then
/// wrote the backup into it.
fn copy_synced(from: &Path, to: &Path) -> Result<()> {
    let mut source = std::fs::File::open(from)
        .map_err(|e| Error::internal(format!("cannot read {}: {e}", from.display())))?;
    let mut target = super::create_new_private(to)?;
    std::io::copy(&mut source, &mut target)
        .and_then(|_| target.sync_all())
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::StorageFull => Error::Full,
            _ => Error::internal(format!("cannot copy the backup to {}: {e}", to.display())),
        })
}

/// Gives the copy the owner and mode of the database it replaces: a restore run as root must
/// not leave the service's user a ledger it cannot open.
fn like_the_database(db: &Path, copy: &Path) -> Result<()> {
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(db) {
        use std::os::unix::fs::MetadataExt;
        let said = |e: std::io::Error| {
            Error::internal(format!(
                "cannot give the restored copy {}'s owner and mode: {e}",
                db.display()
            ))
        };
        // Through the copy's own descriptor, opened without following a link: a link put in
        // its place meanwhile is refused, never handed to the service's user.
        let file = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(copy)
                .map_err(said)?
        };
        std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid())).map_err(said)?;
        // An empty file's mode is not a ledger's: the copy keeps its owner-only one.
        if meta.len() > 0 {
            file.set_permissions(meta.permissions()).map_err(said)?;
        }
    }
    Ok(())
}

/// Copies the replaced ledger's log into its file (a `TRUNCATE` checkpoint) before the log is
/// taken from beside it: a restore stopped between the two (a power cut, `kill -9`) then leaves
/// the database's name on the whole replaced ledger, not on its file without its newest
/// commits (which a server started on it would have lost, writing into the kept pair's file as
/// it went). A ledger SQLite cannot open or copy (damaged: what restores are for) keeps its
/// newest commits in the kept pair only, as before; the log says so.
///
/// Returns, when the log was copied whole, how many of its bytes SQLite read as frames (its
/// header and the frames of a `PASSIVE` checkpoint's count, taken first): past them, a log a
/// server grew at its start holds zeros, and a damaged one what SQLite could not read.
fn fold_the_log(db: &Path) -> Option<u64> {
    let folded = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .and_then(|conn| {
        let frames: i64 = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))?;
        let page: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        // The log's header (32 bytes), then each frame's (24) and its page.
        let read = 32 + u64::try_from(frames.max(0) * (24 + page)).unwrap_or(u64::MAX);
        Ok((busy, read))
    });
    match folded {
        Ok((0, read)) => Some(read),
        Ok(_) => {
            log::warn!(
                "the replaced ledger's log could not be copied into its file (busy): its newest commits are in the kept copy's log only"
            );
            None
        }
        Err(e) => {
            log::warn!(
                "the replaced ledger's log could not be copied into its file ({e}): its newest commits are in the kept copy's log only"
            );
            None
        }
    }
}

/// Is everything in the file at `path` past its first `offset` bytes a zero (or is it no longer)?
fn zeros_past(path: &Path, offset: u64) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    if file.seek(SeekFrom::Start(offset)).is_err() {
        return false;
    }
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) if buf[..n].iter().all(|&b| b == 0) => continue,
            _ => return false,
        }
    }
}

/// Keeps the database and its log under a second name (together: one database under that
/// name), takes the log from beside the database, and gives the copy the database's name. The
/// database's name is never missing: stopped half-way, it names the replaced ledger (without
/// its newest commits once its log has gone: those are in the kept pair) or the copy.
///
/// `since` (`since_the_backup`'s lines) is written beside the kept ledger before the copy takes
/// the name, so that a restore killed once the copy has it still leaves them (the restored
/// ledger's hold names that file); returns the kept ledger and that file.
fn put_in_place(
    db: &Path,
    copy: &Path,
    dir: &Path,
    since: &[String],
) -> Result<(Option<PathBuf>, Option<PathBuf>)> {
    use super::beside;
    let stamp = crate::time::rfc3339(crate::time::now_unix()).replace(':', "");
    let kept = beside(
        db,
        &format!(".before-restore-{stamp}-{}", std::process::id()),
    );
    let wal = beside(db, "-wal");
    let kept_wal = beside(&kept, "-wal");
    let second_name = |from: &Path, to: &Path| -> Result<()> {
        // A link never replaces a file; where links are not supported, a copy (never a move:
        // the database's name must not go missing).
        match std::fs::hard_link(from, to) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::internal(
                format!("{} already exists: run the restore again", to.display()),
            )),
            Err(_) => copy_synced(from, to),
        }
        .map_err(|e| {
            Error::internal(format!(
                "cannot keep {} as {}: {e}",
                from.display(),
                to.display()
            ))
        })
    };
    let had_database = holds_a_ledger(db);
    if had_database {
        // The log as it was, byte for byte, before SQLite reads it: if the ledger is damaged,
        // SQLite may take only part of it, and its close removes the file it emptied.
        if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
            let as_found = beside(&kept, "-wal.as-found");
            copy_synced(&wal, &as_found).map_err(|e| {
                Error::internal(format!("cannot keep a copy of {}: {e}", wal.display()))
            })?;
            // Folded whole into the file, and nothing but zeros past what SQLite read, the log
            // holds nothing the kept ledger lacks: its copy goes (every restore after an unclean
            // stop left one, the size of the log a server grows at its start, 60 MiB). A log
            // with more past its frames (older frames, or a damaged one) is kept as found.
            if fold_the_log(db).is_some_and(|read| zeros_past(&as_found, read)) {
                let _ = std::fs::remove_file(&as_found);
            }
        }
        second_name(db, &kept)?;
    }
    // Until the copy takes the database's name, a failure leaves the replaced ledger as it was:
    // its log back at its name, and its second names removed (with two names, every command
    // and the server refuse a ledger: `store::open::one_name`).
    let kept_wal_made = std::cell::Cell::new(false);
    let as_it_was = |e: Error| -> Error {
        if kept_wal_made.get() {
            let _ = log_put_back(&kept_wal, &wal);
        }
        if had_database {
            let _ = std::fs::remove_file(&kept);
        }
        e
    };
    if wal.exists() {
        second_name(&wal, &kept_wal).map_err(as_it_was)?;
        kept_wal_made.set(true);
        std::fs::remove_file(&wal).map_err(|e| {
            as_it_was(Error::internal(format!(
                "cannot remove {}: {e}",
                wal.display()
            )))
        })?;
    }
    let shm = beside(db, "-shm");
    if shm.exists() {
        std::fs::remove_file(&shm).map_err(|e| {
            as_it_was(Error::internal(format!(
                "cannot remove {}: {e}",
                shm.display()
            )))
        })?;
    }
    let since_file = had_database
        .then(|| since_the_backup_file(&kept, since))
        .flatten();
    if let Err(e) = std::fs::rename(copy, db) {
        if let Some(file) = &since_file {
            let _ = std::fs::remove_file(file);
        }
        return Err(as_it_was(Error::internal(format!(
            "cannot give the restored copy the name {} (the database is as it was): {e}",
            db.display()
        ))));
    }
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok((had_database.then_some(kept), since_file))
}

/// Puts a ledger's log taken aside (`kept_wal`) back at its name (`wal`), unless a log is there
/// already, then removes the name it was taken under once the log is at its own.
fn log_put_back(kept_wal: &Path, wal: &Path) -> std::io::Result<()> {
    if !wal.exists() {
        std::fs::hard_link(kept_wal, wal)?;
    }
    if wal.exists() {
        let _ = std::fs::remove_file(kept_wal);
    }
    Ok(())
}

/// A restore stopped after it kept the replaced ledger under a second name
/// (`<db>.before-restore-<time>-<pid>`) and before the copy took the database's name left the
/// database with two names, which every command and the server refuse (`store::one_name`), the
/// next restore too: that name, and the log it took, are put back as the stopped restore put
/// them back on a failure (`put_in_place`), the database's name still naming the ledger it
/// replaced. Run under the ledger's lock (`ops::lock`).
pub(super) fn undo_a_stopped_keep(db: &Path) -> Result<()> {
    use super::beside;
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(db) else {
        return Ok(());
    };
    if !meta.is_file() || meta.nlink() < 2 {
        return Ok(());
    }
    let Some(name) = db.file_name().and_then(|n| n.to_str()) else {
        return Ok(());
    };
    let dir = super::parent_dir(db);
    let prefix = format!("{name}.before-restore-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let entry_name = entry.file_name().to_string_lossy().into_owned();
        // Exactly a kept ledger's name: a time and a process id, nothing after them.
        let Some(rest) = entry_name.strip_prefix(&prefix) else {
            continue;
        };
        if !rest
            .bytes()
            .all(|b| b.is_ascii_digit() || b"-TZ".contains(&b))
        {
            continue;
        }
        let kept = dir.join(&entry_name);
        let same = std::fs::symlink_metadata(&kept).is_ok_and(|m| {
            m.file_type().is_file() && m.ino() == meta.ino() && m.dev() == meta.dev()
        });
        if !same {
            continue;
        }
        let (wal, kept_wal) = (beside(db, "-wal"), beside(&kept, "-wal"));
        if kept_wal.exists() {
            log_put_back(&kept_wal, &wal).map_err(|e| {
                Error::internal(format!(
                    "cannot put {} back as {}: {e}",
                    kept_wal.display(),
                    wal.display()
                ))
            })?;
        }
        let mut since = kept.as_os_str().to_owned();
        since.push(".since-the-backup.txt");
        let _ = std::fs::remove_file(PathBuf::from(since));
        std::fs::remove_file(&kept)
            .map_err(|e| Error::internal(format!("cannot remove {}: {e}", kept.display())))?;
        super::sync_dir_of(&kept);
        log::warn!(
            "a restore stopped half-way had kept {} under a second name, {}: that name was removed, the ledger left as it was before that restore",
            db.display(),
            kept.display()
        );
    }
    Ok(())
}

/// Writes `since` beside the `kept` ledger (`<kept>.since-the-backup.txt`), synced; `None` when
/// there is nothing to say or it could not be written.
fn since_the_backup_file(kept: &Path, since: &[String]) -> Option<PathBuf> {
    if since.is_empty() {
        return None;
    }
    let mut file = kept.as_os_str().to_owned();
    file.push(".since-the-backup.txt");
    let file = PathBuf::from(file);
    let mut text = since.join("\n");
    text.push('\n');
    // Amounts, receipts and references: for the ledger's owner only, as the replaced
    // database beside it.
    crate::crypto::write_owner_only(&file, text.as_bytes())
        .ok()
        .map(|()| file)
}
