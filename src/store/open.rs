//! Opening a database: the pragmas of every connection, the key check (a server started with a
//! key that does not match the file refuses to start), migrations, and the read-only open of
//! `remit check`, which never creates, migrates or writes anything.

use super::migrate::{latest_schema_version, migrate, schema_version};
use super::{OpenOptions, Store, Synchronous};
use crate::crypto::{KeySource, Keys, MasterKey};
use crate::error::{Error, Result};
use crate::limits::{BUSY_TIMEOUT_MS, STATEMENT_CACHE_CAPACITY, WRITER_CACHE_KIB};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::Path;
use std::time::Duration;

/// The pragmas of every remit connection.
pub(super) fn apply_pragmas(conn: &Connection, synchronous: Synchronous) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))?;
    // Every statement of a command path stays prepared; re-parsing SQL showed up in profiles.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", synchronous.pragma())?;
    // Savepoint and statement journals stay in memory up to 4 MiB (`SQLITE_STMTJRNL_SPILL` in
    // `.cargo/config.toml`), in one allocation. Past that SQLite would spill them to a file in
    // one write its unix VFS cannot make, and the transaction would fail ("database or disk
    // is full"): a transaction that may journal more asks for `journals_in_memory` first.
    // `temp_store = MEMORY` keeps them in memory without a bound, but in 1 KiB chunks, a
    // `malloc` each (the C library's allocator was then a fifth of the writer's CPU); it is
    // also the setting of a build made without the spill setting.
    if !built_with_settings(conn)? {
        conn.pragma_update(None, "temp_store", "MEMORY")?;
    }
    Ok(())
}

/// Keeps the connection's savepoint and statement journals in memory however large they grow
/// (`temp_store = MEMORY`), or (`false`) in the build's one piece of 4 MiB, which is faster but
/// fails a transaction whose journal passes it (see `apply_pragmas`). Takes effect from the
/// next transaction; outside one only.
pub fn journals_in_memory(conn: &Connection, unbounded: bool) -> rusqlite::Result<()> {
    let unbounded = unbounded || !built_with_settings(conn)?;
    conn.pragma_update(
        None,
        "temp_store",
        if unbounded { "MEMORY" } else { "DEFAULT" },
    )
}

/// SQLite's compile-time options that `.cargo/config.toml` sets (`LIBSQLITE3_FLAGS`), as
/// `PRAGMA compile_options` names them; the first is the one `temp_store` depends on.
const BUILD_SETTINGS: [&str; 2] = ["STMTJRNL_SPILL=4194304", "DEFAULT_MEMSTATUS=0"];

/// The option `.cargo/config.toml` takes away: one page-cache pool for every connection,
/// behind one process-wide mutex.
const SHARED_PAGE_CACHE: &str = "ENABLE_MEMORY_MANAGEMENT";

/// SQLite's compile-time options, as `PRAGMA compile_options` lists them.
fn compile_options(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    conn.prepare("PRAGMA compile_options")?
        .query_map([], |r| r.get::<_, String>(0))?
        .collect()
}

/// Was the bundled SQLite built with the journal spill of `BUILD_SETTINGS`? Asked once per
/// process, which also says in the log which of the repository's settings the build lacks.
fn built_with_settings(conn: &Connection) -> rusqlite::Result<bool> {
    static BUILT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if let Some(built) = BUILT.get() {
        return Ok(*built);
    }
    let options = compile_options(conn)?;
    let has = |option: &str| options.iter().any(|o| o == option);
    let mut lacking: Vec<String> = BUILD_SETTINGS
        .iter()
        .filter(|setting| !has(setting))
        .map(|setting| format!("SQLITE_{setting}"))
        .collect();
    if has(SHARED_PAGE_CACHE) {
        lacking.push(format!("no SQLITE_{SHARED_PAGE_CACHE}"));
    }
    if !lacking.is_empty() {
        log::warn!(
            "this build's SQLite lacks the repository's settings ({}): each approval costs more CPU; build remit from its own directory, where `.cargo/config.toml` gives them",
            lacking.join(", ")
        );
    }
    Ok(*BUILT.get_or_init(|| has(BUILD_SETTINGS[0])))
}

/// Opens a read-write connection with the pragmas of every remit connection.
pub fn open_connection(path: &Path, synchronous: Synchronous) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // SQLite opens a file this user may not write read-only, silently: every write would then
    // fail (a 500 each) while reads and /health answered. Said now, once, instead.
    if conn.is_readonly(rusqlite::MAIN_DB)? {
        return Err(Error::internal(format!(
            "the database {} cannot be written by this user: check that it may write the file, its -wal and -shm files and its directory",
            path.display()
        )));
    }
    apply_pragmas(&conn, synchronous)?;
    super::migrate::register_functions(&conn)?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::internal(format!(
            "could not switch the database to WAL (got {mode})"
        )));
    }
    Ok(conn)
}

/// Is `keys` the key of this database? `Ok(false)` for a database that has no key check yet
/// (new); `WrongKey` for another key.
fn check_key(conn: &Connection, keys: &Keys) -> Result<bool> {
    if schema_version(conn)? == 0 {
        return Ok(false);
    }
    let stored: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'key_check'", [], |r| {
            r.get(0)
        })
        .optional()?;
    match stored {
        Some(check)
            if crate::crypto::constant_time_eq(check.as_bytes(), keys.key_check.as_bytes()) =>
        {
            Ok(true)
        }
        Some(_) => Err(Error::WrongKey),
        None => Ok(false),
    }
}

/// Records the key check of a new database, and refuses a database with data but no key check
/// (not made by remit).
fn record_key_check(conn: &mut Connection, keys: &Keys) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let has_rows: bool = tx.query_row("SELECT EXISTS (SELECT 1 FROM users)", [], |r| r.get(0))?;
    if has_rows {
        return Err(Error::WrongKey);
    }
    let _numbered = super::changes::begin(&tx)?;
    tx.execute(
        "INSERT INTO meta (key, value, change_seq) VALUES ('key_check', ?1, remit_change_seq()),
         ('key_id', ?2, remit_change_seq())
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, change_seq = excluded.change_seq",
        (&keys.key_check, &keys.key_id),
    )?;
    tx.commit()?;
    Ok(())
}

/// Opens (and with `create`, creates) the database: checks the key, migrates, records the key
/// check of a new file, opens the audit chain, then starts the writer and the checkpointer.
pub fn open(options: &OpenOptions) -> Result<Store> {
    one_name(&options.path, true)?;
    if options.create {
        a_file_or_nothing(&options.path)?;
        if std::fs::metadata(&options.path).is_ok_and(|m| m.len() > 0) {
            sqlite_file(&options.path)?;
        } else {
            no_ledger_was_here(&options.path)?;
        }
    } else {
        existing_database(&options.path)?;
    }
    not_someone_elses(options)?;
    shared_memory_writable(&options.path)?;
    let (master, key_source) =
        crate::crypto::load_master_key(&options.path, options.key_hex.as_deref(), options.create)?;
    if options.create {
        create_private(&options.path)?;
    }
    // (ENCRYPTION_KEY's own: a key a command read elsewhere, `restore`'s, is not compared.)
    let environment = key_source == crate::crypto::KeySource::Environment
        && std::env::var("ENCRYPTION_KEY")
            .is_ok_and(|set| Some(set.trim()) == options.key_hex.as_deref().map(str::trim));
    let store = open_with_key(options, &master, key_source)?;
    // Said once the key has opened the ledger: a wrong ENCRYPTION_KEY beside the right key
    // file (after a rotation, the file may be the only copy of the ledger's key) must not be
    // told to remove the file.
    if environment {
        crate::crypto::warn_if_the_key_file_differs(&options.path, &master);
    }
    Ok(store)
}

/// SQLite's shared-memory file beside the database takes the database's mode when it is made:
/// a command run while the database was read-only leaves one this user may not write, and
/// every write then failed with "attempt to write a readonly database", which names neither.
fn shared_memory_writable(path: &Path) -> Result<()> {
    let shm = crate::ops::beside(path, "-shm");
    match std::fs::metadata(&shm) {
        Ok(meta) if meta.permissions().readonly() => Err(Error::internal(format!(
            "{} (SQLite's shared memory of {}) may not be written (mode {:o}, left by a command run while the database was read-only): make it writable like the database (chmod 600), or remove it while nothing uses the database",
            shm.display(),
            path.display(),
            {
                use std::os::unix::fs::PermissionsExt;
                meta.permissions().mode() & 0o777
            }
        ))),
        _ => Ok(()),
    }
}

/// A new ledger is made only where no ledger was: a database file missing or empty beside its
/// write-ahead log (the newest commits of a ledger, after a crash) or SQLite's shared-memory
/// file (which a server's stop leaves beside its ledger) is refused, in words that say what to
/// put back. A new ledger there would erase the log, and a new start would print a new admin
/// token as if nothing had been lost. A key file alone (written before a first start, to
/// choose the key) and the lock files (a start that could not listen leaves them) say nothing:
/// a ledger deleted with its SQLite files is not told from a first start.
pub fn no_ledger_was_here(path: &Path) -> Result<()> {
    let what = if path.exists() {
        "is an empty file"
    } else {
        "is not there"
    };
    let wal = crate::ops::beside(path, "-wal");
    if let Some(bytes) = std::fs::metadata(&wal)
        .ok()
        .map(|m| m.len())
        .filter(|n| *n > 0)
    {
        return Err(Error::internal(format!(
            "{} {what}, but {} beside it holds {bytes} bytes of a ledger's newest commits: a new ledger here would erase them. Put the ledger's database file back (or restore a backup: `remit restore`); to start a new ledger here instead, move {} away first",
            path.display(),
            wal.display(),
            wal.display()
        )));
    }
    let left: Vec<String> = ["-wal", "-shm"]
        .iter()
        .map(|suffix| crate::ops::beside(path, suffix))
        .filter(|file| file.exists())
        .map(|file| file.display().to_string())
        .collect();
    if !left.is_empty() {
        let key = crate::crypto::key_file_path(path);
        return Err(Error::internal(format!(
            "{} {what}, but SQLite's files of a ledger are beside it ({}): a ledger was here (deleted, moved, or a copy cut short). Put the ledger's database file back (or restore a backup: `remit restore`); to start a new ledger here instead, move {} away first{}",
            path.display(),
            left.join(", "),
            left.join(" and "),
            if key.exists() {
                format!(
                    ", and its key file {} (it opens that ledger's backups: keep it)",
                    key.display()
                )
            } else {
                String::new()
            }
        )));
    }
    Ok(())
}

/// A file without remit's schema is made a ledger only by `remit serve`, and only when it holds
/// nothing else: an SQLite database of another program (`--db` mistyped) is left as it is,
/// rather than given remit's eighty tables beside its own.
/// (An empty or missing file was dealt with by `open` before.)
fn not_someone_elses(options: &OpenOptions) -> Result<()> {
    if !std::fs::metadata(&options.path).is_ok_and(|m| m.len() > 0) {
        return Ok(());
    }
    match what_it_holds(&options.path) {
        Holds::SomethingElse => Err(someone_elses(&options.path)),
        Holds::Nothing if !options.create => Err(Error::internal(format!(
            "{} holds no ledger yet; only `remit serve` makes one",
            options.path.display()
        ))),
        // Damaged or unreadable: opening it says so in the words of every command.
        _ => Ok(()),
    }
}

fn someone_elses(path: &Path) -> Error {
    Error::internal(format!(
        "{} is an SQLite database of something else, not a remit ledger: remit leaves it as it is (check --db)",
        path.display()
    ))
}

/// Refuses another program's SQLite database before anything is made beside it (the lock
/// files of `ops::lock` and `ops::key_lock`); a damaged ledger is not refused here (a restore
/// replaces one).
pub fn not_another_programs(path: &Path) -> Result<()> {
    if std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() > 0)
        && what_it_holds(path) == Holds::SomethingElse
    {
        return Err(someone_elses(path));
    }
    Ok(())
}

/// What an SQLite file holds, as far as a ledger goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holds {
    /// remit's schema (of some version).
    Ledger,
    /// No table at all (a first start stopped before its schema).
    Nothing,
    /// Tables of another program.
    SomethingElse,
    /// It could not be read (damaged, or not SQLite's).
    Unreadable,
}

/// What the SQLite file at `path` holds, asked on a read-only connection before anything is
/// written (even a switch to WAL is a write).
pub fn what_it_holds(path: &Path) -> Holds {
    let Ok(conn) = read_only_connection(path) else {
        return Holds::Unreadable;
    };
    match schema_version(&conn) {
        Ok(0) => {}
        Ok(_) => return Holds::Ledger,
        Err(_) => return Holds::Unreadable,
    }
    match conn.query_row("SELECT COUNT(*) FROM sqlite_schema", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Ok(0) => Holds::Nothing,
        Ok(_) => Holds::SomethingElse,
        Err(_) => Holds::Unreadable,
    }
}

/// Refuses a path that is a directory, a device, a pipe or a socket, in words (SQLite says
/// "unable to open database file" or "disk I/O error"; `/dev/null` would take a new ledger
/// and keep none of it).
pub fn a_file_or_nothing(path: &Path) -> Result<()> {
    one_name(path, false)?;
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Err(Error::internal(format!(
            "{} is a directory, not a database file",
            path.display()
        ))),
        Ok(meta) if !meta.is_file() => Err(Error::internal(format!(
            "{} is not a regular file (a device, a pipe or a socket), so it cannot hold a ledger: give the path of a file",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// A ledger (a file in SQLite's write-ahead log mode) with more than one name (hard links) is
/// refused by every command and the server: SQLite keeps the log of its newest commits beside
/// the name it is opened by, so through another name a command read an older ledger and wrote
/// into a log of its own (a `user add` beside a server answered with a token, and the user was
/// gone after the server's stop; `backup` copied a ledger without its newest commits; `check`
/// passed it), and a server started by another name after a crash lost what the log held. A
/// backup (no log) may have several names, unless it is opened to be written (`writing`: it
/// would become a ledger with a log). A symbolic link is one name, followed. A command beside
/// a server that runs under this very name shares its log, and is let be.
pub fn one_name(path: &Path, writing: bool) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    if !meta.is_file() || meta.nlink() < 2 || !(writing || keeps_a_log(path)) {
        return Ok(());
    }
    // A server holds the file's own lock (`ops::lock`), and its lock file's beside the name
    // it runs under.
    let serving = std::fs::File::open(path)
        .map(|file| {
            matches!(
                file.try_lock_shared(),
                Err(std::fs::TryLockError::WouldBlock)
            )
        })
        .unwrap_or(false);
    if serving && crate::ops::held_by_another(&crate::ops::lock_file_path(path)) {
        return Ok(());
    }
    let shown = path.display();
    if serving {
        return Err(Error::internal(format!(
            "another remit server is using {shown} under another name (the same file under a hard link): SQLite keeps the newest commits in a log beside the name a program opens, so nothing may use it by this name; run this with the name the server uses"
        )));
    }
    Err(Error::internal(format!(
        "{shown} has {} names (hard links): SQLite keeps the newest commits in a log beside the name a program opens, so by another name a command reads an older ledger and writes a log of its own, and what the log held is lost. Keep one name (find the others with `find / -xdev -samefile {shown}`; a name ending in .before-restore-… is one a stopped `remit restore` made: restore again, which removes it), then run this again; a second name is a symbolic link",
        meta.nlink()
    )))
}

/// What every command but `serve` asks of `--db`: a file that may hold a ledger. Nothing there,
/// a directory, or an empty file (a `touch`, a copy cut short) is refused in words: SQLite
/// would take an empty file as a new database, and the command would make a new ledger there.
pub fn existing_database(path: &Path) -> Result<()> {
    a_file_or_nothing(path)?;
    match std::fs::metadata(path) {
        Err(_) => Err(Error::internal(format!(
            "no database at {} (`remit serve` makes a new ledger at its first start)",
            path.display()
        ))),
        Ok(meta) if meta.len() == 0 => Err(Error::internal(format!(
            "{} is an empty file, not a remit database (a copy cut short?); only `remit serve` makes a new ledger",
            path.display()
        ))),
        Ok(_) => sqlite_file(path),
    }
}

/// Whether the file at `path` can be read and does not begin as every SQLite database does (a
/// damaged ledger's first page, or a file of something else).
pub fn not_sqlite(path: &Path) -> bool {
    begins_as_sqlite(path).is_ok_and(|sqlite| !sqlite)
}

/// Whether the file at `path` begins with SQLite's header (one shorter than it does not).
fn begins_as_sqlite(path: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    let mut head = [0u8; 16];
    match std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)) {
        Ok(()) => Ok(&head == b"SQLite format 3\0"),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// Does the file begin as every SQLite database does? Said before the key is looked for, or a
/// file of something else is "no encryption key for the existing database".
fn sqlite_file(path: &Path) -> Result<()> {
    match begins_as_sqlite(path) {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::internal(format!(
            "{} is not a database file (it does not begin as SQLite's do): check the path, or restore the ledger from a backup",
            path.display()
        ))),
        // SQLite would say "unable to open database file" of its own URI for the file.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            Err(Error::internal(format!(
                "{} cannot be read by this user ({e}): run the command as a user who may read it (the ledger's own user)",
                path.display()
            )))
        }
        // Unreadable otherwise: what opening it says is the better sentence.
        Err(_) => Ok(()),
    }
}

/// Makes an empty file at `path`, readable by its owner only, unless one is there: SQLite
/// gives a new database the process's default mode (world-readable under the usual umask), and
/// its log and shared-memory files take the database's. Amounts and the audit log are not
/// encrypted; they are not for every user of the machine.
pub fn create_private(path: &Path) -> Result<()> {
    let mut file = std::fs::OpenOptions::new();
    file.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        file.mode(0o600);
    }
    match file.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists
            && std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
            && !path.exists() =>
        {
            // A link to a file not made yet: made where it points, owner-only (SQLite would
            // make it with the process's default mode, readable by every user).
            let target = crate::ops::real_path(path);
            if target == path {
                // A loop of links: SQLite's own words follow.
                return Ok(());
            }
            create_private(&target)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // An empty file made beforehand (a `touch`) becomes the ledger: owner-only too.
            #[cfg(unix)]
            if std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == 0) {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(
                    |e| Error::internal(format!("cannot make {} private: {e}", path.display())),
                )?;
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            Err(Error::internal(format!(
                "this user may not write in {} (to create {}): choose a directory it may write, or run as its owner",
                crate::ops::parent_dir(path).display(),
                path.display()
            )))
        }
        Err(e) => Err(Error::internal(format!(
            "cannot create {}: {e}",
            path.display()
        ))),
    }
}

/// A command of a newer remit (a nightly `remit backup`, a `user add`) run while a server of
/// the older one still holds the ledger would upgrade its schema under that server, which goes
/// on writing by the old one (schema 18's journal chain: the old server's transactions never
/// linked, an escrow's history broken for good in an append-only journal). Refused: the server
/// is stopped first, and the new server upgrades the file when it starts.
fn refuse_to_upgrade_under_a_server(conn: &Connection, options: &OpenOptions) -> Result<()> {
    if !options.beside_server {
        return Ok(());
    }
    let version = schema_version(conn)?;
    let latest = super::latest_schema_version();
    if version == 0 || version >= latest {
        return Ok(());
    }
    if crate::ops::held_by_another(&crate::ops::lock_file_path(&options.path)) {
        return Err(Error::internal(format!(
            "the ledger {} is at schema version {version} and this remit would upgrade it to {latest}, but a server (of the remit before) holds it: stop the server, then start the new one, which upgrades the file as it starts; nothing was changed",
            options.path.display()
        )));
    }
    Ok(())
}

/// `open` with a key already in hand (key rotation and tests).
pub fn open_with_key(
    options: &OpenOptions,
    master: &MasterKey,
    key_source: KeySource,
) -> Result<Store> {
    let keys = Keys::new(master);
    let mut conn = open_connection(&options.path, options.synchronous)?;
    let key_known = check_key(&conn, &keys)?;
    refuse_to_upgrade_under_a_server(&conn, options)?;
    if !migrate(&mut conn)?.is_empty() {
        // A migration may change schema text in place (schema 7 does): a connection keeps the
        // schema it parsed, so the writer starts from a fresh one.
        drop(conn);
        conn = open_connection(&options.path, options.synchronous)?;
    }
    if !key_known {
        record_key_check(&mut conn, &keys)?;
    }
    let audit_key = crate::audit::open_chain(&mut conn, &keys)?;
    let first_key = crate::audit::all_keys(&conn, &keys)?
        .into_iter()
        .next()
        .ok_or_else(|| Error::internal("the audit chain has no key"))?;
    keys.keep_idempotency_secret(super::idempotency::secret_of(&first_key));
    let filled = super::backfill::recipient_names(&mut conn, &keys)?;
    if filled > 0 {
        log::info!("kept the recipient's name with {filled} older escrow(s)");
    }
    let sealed = super::backfill::webhook_urls(&mut conn, &keys)?;
    if sealed > 0 {
        log::info!("sealed the URL of {sealed} webhook endpoint(s) under the key");
    }
    let resolved = super::backfill::resolve_reasons(&mut conn, &keys)?;
    if resolved > 0 {
        log::info!(
            "sealed an admin's words on {resolved} payout(s) resolved by hand before schema 15"
        );
    }
    let hashed = super::backfill::idempotency_keys(&mut conn, &keys)?;
    if hashed > 0 {
        log::info!("kept {hashed} idempotency key(s) by their digest, no longer as sent");
    }
    let coded = super::backfill::short_refs(&mut conn)?;
    if coded > 0 {
        log::info!("gave {coded} older escrow(s) a short reference");
    }
    // Checkpoints run from their own connection, never inside a commit.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    // The writer touches the hot pages of every command; keep them in its own cache.
    conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
    Store::start(conn, keys, audit_key, options, key_source)
}

/// Opens a database read-only for `remit check`: never creates, migrates or writes anything,
/// and refuses a file that is not a remit database of this version or a key that does not
/// match.
pub fn open_for_check(path: &Path, key_hex: Option<&str>) -> Result<(Connection, Keys)> {
    existing_database(path)?;
    // Said before the key is looked for: another program's database has none beside it.
    if what_it_holds(path) == Holds::SomethingElse {
        return Err(Error::internal(format!(
            "{} is an SQLite database of something else, not a remit ledger",
            path.display()
        )));
    }
    let (master, _) = crate::crypto::load_master_key(path, key_hex, false)?;
    let keys = Keys::new(&master);
    let conn = read_only_connection(path)?;
    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| {
            Error::internal(format!(
                "{} cannot be read as a database: {e}",
                path.display()
            ))
        })?;
    let latest = latest_schema_version();
    if version == 0 {
        return Err(Error::internal(format!(
            "{} is not a remit database",
            path.display()
        )));
    }
    if version != latest {
        return Err(Error::internal(format!(
            "{} has schema version {version} and this remit knows {latest}: {}",
            path.display(),
            if version < latest {
                "start the server once to migrate it"
            } else {
                "upgrade remit"
            }
        )));
    }
    if !check_key(&conn, &keys)? {
        return Err(Error::internal(format!(
            "{} is not a remit database (it has no key check)",
            path.display()
        )));
    }
    Ok((conn, keys))
}

/// Whether the file's header says it keeps a write-ahead log (SQLite's file format: its bytes
/// 18 and 19 are 2 in WAL mode, 1 with a rollback journal). A ledger a server has opened does;
/// a backup (`VACUUM INTO`'s copy) does not, and opening it through the store would turn it
/// into one that does, with a log and its lock files beside it.
pub fn keeps_a_log(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 20];
    std::fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut head))
        .is_ok()
        && head[..16] == *b"SQLite format 3\0"
        && head[18] == 2
}

/// A read-only connection to a database file that writes nothing beside it: `open_for_check`'s,
/// and the second connection of a check on two (`integrity::check_on_two`).
pub fn read_only_connection(path: &Path) -> Result<Connection> {
    // With no WAL beside it (a server stopped cleanly, a copied file), even a read-only open
    // would create `-wal` and `-shm`: open it as immutable instead, which writes nothing.
    // SQLite keeps the log beside the file a link points to, not beside the link.
    let mut wal = std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .into_os_string();
    wal.push("-wal");
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = if Path::new(&wal).exists() {
        Connection::open_with_flags(path, flags)?
    } else {
        // Every byte of the path but the plainest written as %HH, as SQLite's URIs take it: a
        // name that is not UTF-8 (which every other command opens) is read too.
        use std::os::unix::ffi::OsStrExt;
        let mut escaped = String::new();
        for &byte in path.as_os_str().as_bytes() {
            match byte {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'/' | b'-' | b'.' | b'_' | b'~' => {
                    escaped.push(char::from(byte))
                }
                _ => escaped.push_str(&format!("%{byte:02X}")),
            }
        }
        Connection::open_with_flags(format!("file:{escaped}?immutable=1"), flags)?
    };
    conn.busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The repository's build settings reach SQLite (`.cargo/config.toml`): without them the
    /// writer's journals and allocations go back to their slower paths.
    #[test]
    fn sqlite_is_built_with_the_repository_settings() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_connection(&dir.path().join("t.db"), Synchronous::Full).unwrap();
        let options = compile_options(&conn).unwrap();
        for setting in BUILD_SETTINGS {
            assert!(
                options.iter().any(|o| o == setting),
                "{setting} missing: {options:?}"
            );
        }
        assert!(
            !options.iter().any(|o| o == SHARED_PAGE_CACHE),
            "one page-cache pool for all connections: {options:?}"
        );
        assert!(built_with_settings(&conn).unwrap());
        // So the journals are held by the spill setting, not by `temp_store`.
        let temp_store: i64 = conn
            .query_row("PRAGMA temp_store", [], |r| r.get(0))
            .unwrap();
        assert_eq!(temp_store, 0);
    }

    /// A savepoint that journals far more than the spill size (2,500 pages, 10 MiB): with
    /// the journal in memory it commits; in the build's piece of 4 MiB it fails, because
    /// SQLite would write the 4 MiB to a temporary file in one call and its unix VFS writes at
    /// most 128 KiB - 1 at once. (If this second half ever passes, SQLite has changed, and the
    /// rule of `journals_in_memory` may be relaxed.)
    #[test]
    fn a_savepoint_that_journals_megabytes_commits_with_its_journal_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_connection(&dir.path().join("t.db"), Synchronous::Normal).unwrap();
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500)
             INSERT INTO t SELECT i, zeroblob(3000) FROM n;",
        )
        .unwrap();
        let rewrite =
            "BEGIN IMMEDIATE; SAVEPOINT s; UPDATE t SET v = randomblob(3000); RELEASE s; COMMIT;";
        let failed = conn.execute_batch(rewrite).unwrap_err();
        assert_eq!(
            failed.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DiskFull),
            "{failed}"
        );
        // (SQLite undid the statement; the transaction is the caller's to roll back.)
        if !conn.is_autocommit() {
            conn.execute_batch("ROLLBACK").unwrap();
        }
        journals_in_memory(&conn, true).unwrap();
        conn.execute_batch(rewrite).unwrap();
        let changed: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM t WHERE v <> zeroblob(3000)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(changed, 2500);
        journals_in_memory(&conn, false).unwrap();
        let temp_store: i64 = conn
            .query_row("PRAGMA temp_store", [], |r| r.get(0))
            .unwrap();
        assert_eq!(temp_store, 0);
    }
}
