//! The integrity check: recomputes every balance from the journal and compares (and, on the
//! file, runs SQLite's check of its pages and indexes). Used by
//! `remit check`, `GET /admin/integrity`, `remit backup`, `remit restore` and the tests, and on the PostgreSQL
//! replica by `remit check --postgres`: the checks are defined once, as SQL both databases
//! run (`LEDGER_CHECKS`) and the audit chain's verifier, and each back end only reads
//! (`Ledger`).

use crate::audit::{ChainVerifier, StoredLine};
use crate::crypto::Keys;
use crate::error::Result;
use rusqlite::Connection;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// A consistent snapshot of a ledger, as a check reads it: the SQLite file, or its replica in
/// PostgreSQL (`replicate::postgres`).
pub trait Ledger {
    /// The rows of one of `LEDGER_CHECKS`' queries: (what, detail) for the first `keep`
    /// mismatches, and how many there are in all (read row by row, never all held: a fault
    /// of every row of a million-escrow ledger is a million of them).
    fn mismatches(&mut self, sql: &str, keep: usize) -> Result<(Vec<(String, String)>, u64)>;
    /// The audit chain's keys as stored: (`from_seq`, wrapped key), oldest first.
    fn audit_keys(&mut self) -> Result<Vec<(i64, String)>>;
    /// Every audit line, oldest first.
    fn audit_lines(&mut self, each: &mut dyn FnMut(&StoredLine)) -> Result<()>;
    /// The stored record of the chain's newest line (`meta.audit_head`).
    fn audit_head(&mut self) -> Result<Option<String>>;
    /// The newest journal transaction (its id, 0 for none, which that record names; and when it
    /// was written).
    fn newest_journal(&mut self) -> Result<crate::audit::NewestJournal>;
    /// Each table of `APPEND_ONLY` whose guard (what refuses an `UPDATE` or a `DELETE` of its
    /// rows) is missing, disabled or not the one remit made: (what, detail).
    fn unguarded(&mut self) -> Result<Vec<(String, String)>>;
    /// What the database's own check of its storage finds wrong (pages, indexes that do not
    /// hold their table's rows), one sentence each; `None` where the check of a whole file
    /// is not this back end's to make (PostgreSQL keeps its own).
    fn storage_problems(&mut self) -> Result<Option<Vec<String>>> {
        Ok(None)
    }
    /// How many encrypted values do not open under the key, and the first of those (at most `SEALED_PROBLEMS_MAX`), one sentence each; `None` where this back end
    /// does not check.
    fn sealed_problems(&mut self, _keys: &Keys) -> Result<Option<Sealed>> {
        Ok(None)
    }
    /// The schema version of the ledger's tables, where it may be older than this remit's
    /// (a replica until replication makes it again); `None` for the latest (the file: a check
    /// refuses a file of another version).
    fn schema_version(&self) -> Option<u32> {
        None
    }
    /// Whether it holds the file's credentials (`api_tokens`): the file does, a replica not.
    fn holds_credentials(&self) -> bool {
        true
    }
    /// Whether it reads PostgreSQL's SQL (a replica: `POSTGRES_FORMS`).
    fn is_postgres(&self) -> bool {
        false
    }
}

/// The checks of `LEDGER_CHECKS` that need columns a later schema added, with that schema: on
/// a replica of an older one they are not run (and said so), the others are.
const CHECKS_SINCE_SCHEMA: &[(&str, u32)] =
    &[(JOURNAL_CHAIN_CHECK, 18), (JOURNAL_NEWEST_CHECK, 18)];

const JOURNAL_CHAIN_CHECK: &str = "every journal transaction follows its escrow's one before it";
const TOKENS_CHECK: &str =
    "every token is as the audit line that issued it, and stays revoked once revoked";
/// What the file's check of the tokens calls `crypto::token_digest` (a SQL function of the
/// check's connection; a replica holds no tokens).
const TOKEN_DIGEST_FUNCTION: &str = "remit_token_digest";
const ESCROWS_CHECK: &str =
    "every escrow is for the sender, total, recipient and daily limit its audit line made it for";
const REQUESTS_CHECK: &str =
    "every payment request is as its audit line made it, approved by its escrow's sender or an admin";

/// The checks of `LEDGER_CHECKS` a replica cannot run: of tables it does not hold (tokens are
/// credentials, endpoints are not replicated: `replicate::source::LEFT_OUT`). Run on the file
/// only, and said so on a replica (`Ledger::holds_credentials`: a replica holds neither).
const FILE_ONLY_CHECKS: &[&str] = &[TOKENS_CHECK, ENDPOINTS_CHECK];

/// The checks of `LEDGER_CHECKS` PostgreSQL reads in a form of its own (`Ledger::is_postgres`):
/// the categories' list of an escrow's line, which SQLite walks with `json_each` (its places
/// from 0), PostgreSQL with `jsonb_array_elements` (from 1). The rest is the file's SQL, its
/// `json_extract`s translated as every check's. (Until 2026-12-07 this check was not run on a
/// replica: a category renamed there, its money spent as another's, passed.)
pub(crate) const POSTGRES_FORMS: &[(&str, &str)] = &[(
    ALLOCATIONS_CHECK,
    "SELECT 'category ' || c.id, 'of escrow ' || c.escrow_id || ' is ' || c.name || ' with ' || c.allocated_usd_cents
         || ' US cents but audit line ' || a.seq || ' made its place ' || c.position || ' '
         || COALESCE(json_extract(j.value, '$.name') || ' with ' || json_extract(j.value, '$.allocatedUsdCents') || ' US cents', 'nothing')
     FROM spending_categories c JOIN audit_log a ON a.entity = c.escrow_id || '' AND a.action = 'escrow.created'
         LEFT JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof((a.details)::jsonb -> 'categories') = 'array'
                 THEN (a.details)::jsonb -> 'categories' END) WITH ORDINALITY AS j(value, place)
             ON j.place - 1 = c.position
     WHERE j.place IS NULL OR json_extract(j.value, '$.name') <> c.name
         OR CAST(json_extract(j.value, '$.allocatedUsdCents') AS BIGINT) <> c.allocated_usd_cents",
)];
const ALLOCATIONS_CHECK: &str =
    "every category is the name and the allocation its escrow's audit line made it with";
const ENDPOINTS_CHECK: &str =
    "every webhook endpoint posts to the host and for the events its audit line made it for";
const JOURNAL_NEWEST_CHECK: &str = "every escrow names its newest journal transaction";
const DAILY_CHECK: &str =
    "each day's approvals of an escrow are its requests approved that day, under its limit";

/// The schema a check of `LEDGER_CHECKS` needs (0: any).
fn since_schema(check: &str) -> u32 {
    CHECKS_SINCE_SCHEMA
        .iter()
        .find(|(name, _)| *name == check)
        .map_or(0, |(_, version)| *version)
}

/// What became of one query of `LEDGER_CHECKS`.
#[derive(Clone)]
enum Query {
    /// Its first rows, (what, detail) per mismatch, and how many there are in all.
    Ran(Vec<(String, String)>, u64),
    /// Not run: the ledger's tables are of this older schema version.
    Older(u32),
    /// Not run: a replica does not hold the table (`FILE_ONLY_CHECKS`).
    FileOnly,
}

/// At most this many encrypted values that do not open are listed.
const SEALED_PROBLEMS_MAX: usize = 20;

/// At most this many mismatches of one query of `LEDGER_CHECKS` are listed (the check's line
/// counts them all).
const MISMATCHES_LISTED_MAX: usize = 20;

/// What the check of the encrypted values found.
#[derive(Debug, Clone, Default)]
pub struct Sealed {
    /// Values that did not open.
    failed: u64,
    /// The first of them, one sentence each.
    problems: Vec<String>,
}

impl Sealed {
    /// Opens the value of `column` stored in row `row` (`id` in words), and for a phone also
    /// holds its search index (`users.phone_index`, `index`) to it: two users' indexes swapped
    /// in the file made an escrow to one's phone the other's, and an admin's search by phone
    /// found the other.
    pub fn open(
        &mut self,
        keys: &Keys,
        column: crate::crypto::EncryptedColumn,
        (row, id): (&str, &str),
        stored: &str,
        index: Option<&str>,
    ) {
        let (table, name) = (column.table(), column.column());
        match keys.open(column, row, stored) {
            Err(_) => self.note(table, name, id),
            Ok(phone) if column == crate::crypto::EncryptedColumn::UserPhone => {
                if index != Some(keys.blind_index(&phone).as_str()) {
                    self.add(format!(
                        "{table}.phone_index of {id} is not its phone's (a search by that phone finds another user)"
                    ));
                }
            }
            Ok(_) => {}
        }
    }

    fn add(&mut self, problem: String) {
        self.failed += 1;
        if self.problems.len() < SEALED_PROBLEMS_MAX {
            self.problems.push(problem);
        }
    }

    /// A value of `table.column` in row `id` did not open under the key.
    fn note(&mut self, table: &str, column: &str, id: &str) {
        self.add(format!(
            "{table}.{column} of {id} does not open under the key (damaged, or written under another)"
        ));
    }
}

/// Whether a check of a file reads its every page (SQLite's `integrity_check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pages {
    /// Yes: a file that has been anywhere (the ledger, a backup brought back from a stick).
    Check,
    /// No: a copy `VACUUM INTO` has just written, every table and index built anew from the
    /// ledger's rows (its pages read back would come from the kernel's cache, not the stick).
    Skip,
}

/// The check's line for the file's own storage (SQLite's `integrity_check`).
const STORAGE_CHECK: &str =
    "the file's pages and indexes are whole (SQLite's integrity check of every table and index)";

/// At most this many of SQLite's findings are listed (a damaged file can have thousands).
const STORAGE_PROBLEMS_MAX: i64 = 20;

/// The tables whose rows are never changed or deleted once written: the journal and the audit
/// log. Each database guards them its own way (SQLite triggers from the migrations, a trigger
/// per table on the replica); the check holds both to it.
pub const APPEND_ONLY: &[&str] = &["ledger_transactions", "ledger_entries", "audit_log"];

/// The check's line for the guards of `APPEND_ONLY`.
const GUARDS_CHECK: &str =
    "the journal and the audit log refuse changes (their append-only guards are in place)";

/// The file's append-only triggers as the migrations make them: (name, table, SQL), made once
/// per process on a database in memory.
fn append_only_triggers() -> Result<&'static [(String, String, String)]> {
    static MADE: std::sync::OnceLock<Vec<(String, String, String)>> = std::sync::OnceLock::new();
    if let Some(made) = MADE.get() {
        return Ok(made);
    }
    let made = triggers_of(&crate::store::migrated_in_memory()?)?;
    Ok(MADE.get_or_init(|| made))
}

/// The triggers on the tables of `APPEND_ONLY` in a SQLite database: (name, table, SQL).
fn triggers_of(conn: &Connection) -> Result<Vec<(String, String, String)>> {
    let mut stmt = conn.prepare(
        "SELECT name, tbl_name, COALESCE(sql, '') FROM sqlite_schema WHERE type = 'trigger' ORDER BY name",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    let all = rows.collect::<rusqlite::Result<Vec<(String, String, String)>>>()?;
    Ok(all
        .into_iter()
        .filter(|(_, table, _)| APPEND_ONLY.contains(&table.as_str()))
        .collect())
}

/// The file, read inside one transaction.
struct Sqlite<'a>(&'a Connection);

/// `sql` with each `json_extract(X, '$.key')` (how the checks read an audit line's details)
/// written as `form(X, key)` says: each back end's own reading of JSON text.
pub(crate) fn json_reads(
    sql: &str,
    form: impl Fn(&str, &str) -> String,
) -> std::borrow::Cow<'_, str> {
    const CALL: &str = "json_extract(";
    if !sql.contains(CALL) {
        return sql.into();
    }
    let mut out = String::with_capacity(sql.len() + 64);
    let mut rest = sql;
    while let Some(at) = rest.find(CALL) {
        out.push_str(&rest[..at]);
        let args = &rest[at + CALL.len()..];
        // The first argument ends at the comma outside any brackets; the path is a literal.
        let mut depth = 0usize;
        let comma = args.char_indices().find_map(|(i, c)| match c {
            '(' => {
                depth += 1;
                None
            }
            ')' => {
                depth = depth.saturating_sub(1);
                None
            }
            ',' if depth == 0 => Some(i),
            _ => None,
        });
        let parsed = comma.and_then(|comma| {
            let path = args[comma + 1..].trim_start().strip_prefix("'$.")?;
            let (key, after) = path.split_once('\'')?;
            let after = after.trim_start().strip_prefix(')')?;
            Some((&args[..comma], key, after))
        });
        let Some((value, key, after)) = parsed else {
            // Not of the form the checks write: left as it is.
            out.push_str(CALL);
            rest = args;
            continue;
        };
        out.push_str(&form(value.trim(), key));
        rest = after;
    }
    out.push_str(rest);
    out.into()
}

impl Ledger for Sqlite<'_> {
    fn mismatches(&mut self, sql: &str, keep: usize) -> Result<(Vec<(String, String)>, u64)> {
        // Details that are not JSON (an edited line, which the chain names) read as nothing
        // here, rather than stopping the check ("malformed JSON").
        let sql = json_reads(sql, |value, key| {
            format!("json_extract(CASE WHEN json_valid({value}) THEN {value} END, '$.{key}')")
        });
        if sql.contains(TOKEN_DIGEST_FUNCTION) {
            self.0.create_scalar_function(
                TOKEN_DIGEST_FUNCTION,
                1,
                rusqlite::functions::FunctionFlags::SQLITE_UTF8
                    | rusqlite::functions::FunctionFlags::SQLITE_DETERMINISTIC,
                |ctx| {
                    Ok(match ctx.get_raw(0) {
                        rusqlite::types::ValueRef::Blob(hash) => {
                            Some(crate::crypto::token_digest(hash))
                        }
                        _ => None,
                    })
                },
            )?;
        }
        let mut stmt = self.0.prepare(&sql)?;
        let mut rows = stmt.query([])?;
        let (mut kept, mut all) = (Vec::new(), 0u64);
        while let Some(r) = rows.next()? {
            all += 1;
            if kept.len() < keep {
                kept.push((r.get::<_, String>(0)?, r.get::<_, String>(1)?));
            }
        }
        Ok((kept, all))
    }

    fn audit_keys(&mut self) -> Result<Vec<(i64, String)>> {
        crate::audit::stored_keys(self.0)
    }

    fn audit_lines(&mut self, each: &mut dyn FnMut(&StoredLine)) -> Result<()> {
        crate::audit::stored_lines(self.0, each)
    }

    fn audit_head(&mut self) -> Result<Option<String>> {
        crate::audit::stored_head(self.0)
    }

    fn newest_journal(&mut self) -> Result<crate::audit::NewestJournal> {
        crate::audit::newest_journal(self.0)
    }

    /// SQLite's `integrity_check`: every page of the file is readable and in place, and every
    /// index holds exactly its table's rows. A bit flipped on a memory stick can leave the
    /// balances whole and an index (the one that keeps a webhook from being applied twice)
    /// without a row: the ledger's own checks read through the indexes and would not see it.
    fn storage_problems(&mut self) -> Result<Option<Vec<String>>> {
        let mut stmt = self
            .0
            .prepare(&format!("PRAGMA integrity_check({STORAGE_PROBLEMS_MAX})"))?;
        let found = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(Some(
            found.into_iter().filter(|line| line != "ok").collect(),
        ))
    }

    /// Every encrypted value (`EncryptedColumn::ALL`, as key rotation walks them) opens under
    /// the key, bound to its row and column: a damaged byte in a name or a phone passes every
    /// other check (SQLite's included: the record is whole, its bytes are not), and is a `500`
    /// the day someone reads it. One value at a time: the memory does not grow with the file.
    fn sealed_problems(&mut self, keys: &Keys) -> Result<Option<Sealed>> {
        use crate::crypto::EncryptedColumn;
        let mut found = Sealed::default();
        for column in EncryptedColumn::ALL {
            let (table, name) = (column.table(), column.column());
            let index = column.index_column().unwrap_or("NULL");
            let sql = if *column == EncryptedColumn::IdempotentResponse {
                format!("SELECT user_id, key, {name}, NULL FROM {table} WHERE {name} IS NOT NULL")
            } else {
                format!("SELECT id, NULL, {name}, {index} FROM {table} WHERE {name} IS NOT NULL")
            };
            let mut stmt = self.0.prepare(&sql)?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let (id, key, stored, index): (String, Option<String>, String, Option<String>) =
                    (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
                let row_name = match &key {
                    Some(key) => crate::store::idempotency::row_of(&id, key),
                    None => id.clone(),
                };
                found.open(keys, *column, (&row_name, &id), &stored, index.as_deref());
            }
        }
        Ok(Some(found))
    }

    /// Every append-only trigger the migrations make is in the file, word for word; none is
    /// missing and none was replaced (a trigger of the same name that lets changes through).
    fn unguarded(&mut self) -> Result<Vec<(String, String)>> {
        let found = triggers_of(self.0)?;
        let mut out = Vec::new();
        for (name, table, sql) in append_only_triggers()? {
            match found.iter().find(|(n, _, _)| n == name) {
                None => out.push((
                    format!("table {table}"),
                    format!("its trigger {name} is missing"),
                )),
                Some((_, t, s)) if t != table || s != sql => out.push((
                    format!("table {table}"),
                    format!("its trigger {name} is not the one remit made"),
                )),
                Some(_) => {}
            }
        }
        Ok(out)
    }
}

/// What the check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Each check run, one line each (`journal transactions sum to zero: 1234 checked`).
    pub checks: Vec<String>,
    /// Each mismatch listed, one sentence each. Empty means the ledger holds.
    pub mismatches: Vec<String>,
    /// Mismatches found and counted on their check's line but not listed (past the first 20
    /// of a check).
    pub unlisted: u64,
}

impl Report {
    /// True when nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.mismatches.is_empty()
    }

    /// Every mismatch found, the listed and the unlisted.
    pub fn mismatch_count(&self) -> u64 {
        self.mismatches.len() as u64 + self.unlisted
    }
}

impl serde::Serialize for Report {
    /// `{"ok": …, "checks": […], "mismatches": […]}`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = s.serialize_struct("Report", 3)?;
        out.serialize_field("ok", &self.is_clean())?;
        out.serialize_field("checks", &self.checks)?;
        out.serialize_field("mismatches", &self.mismatches)?;
        out.end()
    }
}

/// Each query returns rows of (label, detail) describing a mismatch, and is named by what
/// it checks. Every query reads one consistent snapshot (the caller's transaction). The SQL is
/// what SQLite and PostgreSQL both run: text concatenated with numbers, no SQLite-only
/// function (a multi-argument `MIN`, say), groups by primary key.
pub const LEDGER_CHECKS: &[(&str, &str)] = &[
    (
        "the counts of escrows and payouts by state match their rows",
        "WITH actual AS (
             SELECT 'escrow' AS entity, status, COUNT(*) AS n FROM escrows GROUP BY status
             UNION ALL SELECT 'payout', status, COUNT(*) FROM payouts GROUP BY status),
         both_sides AS (
             SELECT a.entity, a.status, a.n AS actual, COALESCE(c.n, 0) AS kept FROM actual a
             LEFT JOIN state_counts c ON c.entity = a.entity AND c.status = a.status
             UNION ALL
             SELECT c.entity, c.status, 0, c.n FROM state_counts c
             WHERE NOT EXISTS (SELECT 1 FROM actual a WHERE a.entity = c.entity AND a.status = c.status))
         SELECT entity || 's ' || status, 'counted ' || kept || ', there are ' || actual
         FROM both_sides WHERE actual <> kept",
    ),
    (
        "every journal transaction sums to zero",
        "SELECT 'journal transaction ' || transaction_id, 'its entries sum to ' || SUM(amount_usd_cents)
         FROM ledger_entries GROUP BY transaction_id HAVING SUM(amount_usd_cents) <> 0",
    ),
    (
        "every journal transaction has entries",
        "SELECT 'journal transaction ' || t.id, 'has no entries' FROM ledger_transactions t
         WHERE NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.transaction_id = t.id)",
    ),
    (
        JOURNAL_CHAIN_CHECK,
        "WITH chained AS (
            SELECT id, prev_id, LAG(id) OVER (PARTITION BY escrow_id ORDER BY id) AS before
            FROM ledger_transactions)
         SELECT 'journal transaction ' || id, 'follows ' || COALESCE('transaction ' || prev_id, 'nothing')
             || ' but its escrow''s transaction before it is ' || COALESCE('transaction ' || before, 'none')
         FROM chained WHERE prev_id <> before OR (prev_id IS NULL) <> (before IS NULL)",
    ),
    (
        JOURNAL_NEWEST_CHECK,
        "WITH newest AS (SELECT escrow_id, MAX(id) AS id FROM ledger_transactions GROUP BY escrow_id)
         SELECT 'escrow ' || e.id, 'names ' || COALESCE('transaction ' || e.last_transaction_id, 'none')
             || ' as its newest journal transaction but it is ' || COALESCE('transaction ' || n.id, 'none')
         FROM escrows e LEFT JOIN newest n ON n.escrow_id = e.id
         WHERE e.last_transaction_id <> n.id OR (e.last_transaction_id IS NULL) <> (n.id IS NULL)",
    ),
    (
        "category balances equal their journal accounts",
        "WITH folded AS (
            SELECT category_id,
                SUM(CASE account WHEN 'available' THEN amount_usd_cents ELSE 0 END) AS available,
                SUM(CASE account WHEN 'reserved' THEN amount_usd_cents ELSE 0 END) AS reserved,
                SUM(CASE account WHEN 'spent' THEN amount_usd_cents ELSE 0 END) AS spent,
                SUM(CASE account WHEN 'refunded' THEN amount_usd_cents ELSE 0 END) AS refunded
            FROM ledger_entries WHERE category_id IS NOT NULL GROUP BY category_id)
         SELECT 'category ' || c.id || ' (' || c.name || ' of ' || c.escrow_id || ')',
             'columns remaining/reserved/spent/refunded = ' || c.remaining_usd_cents || '/' || c.reserved_usd_cents
             || '/' || c.spent_usd_cents || '/' || c.refunded_usd_cents || ' but the journal says '
             || COALESCE(f.available, 0) || '/' || COALESCE(f.reserved, 0) || '/' || COALESCE(f.spent, 0)
             || '/' || COALESCE(f.refunded, 0)
         FROM spending_categories c LEFT JOIN folded f ON f.category_id = c.id
         WHERE c.remaining_usd_cents <> COALESCE(f.available, 0) OR c.reserved_usd_cents <> COALESCE(f.reserved, 0)
            OR c.spent_usd_cents <> COALESCE(f.spent, 0) OR c.refunded_usd_cents <> COALESCE(f.refunded, 0)",
    ),
    (
        "escrow balances equal their journal accounts",
        "WITH folded AS (
            SELECT escrow_id,
                -SUM(CASE account WHEN 'world:deposits' THEN amount_usd_cents ELSE 0 END) AS deposited,
                SUM(CASE account WHEN 'escrow:unfunded' THEN amount_usd_cents ELSE 0 END) AS unfunded,
                SUM(CASE account WHEN 'available' THEN amount_usd_cents ELSE 0 END) AS available,
                SUM(CASE account WHEN 'reserved' THEN amount_usd_cents ELSE 0 END) AS reserved,
                SUM(CASE account WHEN 'spent' THEN amount_usd_cents ELSE 0 END) AS spent,
                SUM(CASE account WHEN 'refunded' THEN amount_usd_cents WHEN 'escrow:refunded' THEN amount_usd_cents ELSE 0 END) AS refunded
            FROM ledger_entries GROUP BY escrow_id)
         SELECT 'escrow ' || e.id,
             'columns deposited/remaining/reserved/spent/refunded = ' || e.deposited_usd_cents || '/'
             || e.remaining_usd_cents || '/' || e.reserved_usd_cents || '/' || e.spent_usd_cents || '/'
             || e.refunded_usd_cents || ' but the journal says ' || COALESCE(f.deposited, 0) || '/'
             || COALESCE(f.available, 0) || '/' || COALESCE(f.reserved, 0) || '/' || COALESCE(f.spent, 0) || '/'
             || COALESCE(f.refunded, 0)
         FROM escrows e LEFT JOIN folded f ON f.escrow_id = e.id
         WHERE e.deposited_usd_cents <> COALESCE(f.deposited, 0) OR e.remaining_usd_cents <> COALESCE(f.available, 0)
            OR e.reserved_usd_cents <> COALESCE(f.reserved, 0) OR e.spent_usd_cents <> COALESCE(f.spent, 0)
            OR e.refunded_usd_cents <> COALESCE(f.refunded, 0)
            OR (e.status = 'pending_deposit' AND COALESCE(f.unfunded, 0) <> e.deposited_usd_cents)
            OR (e.status <> 'pending_deposit' AND COALESCE(f.unfunded, 0) <> 0)",
    ),
    (
        "categories sum to their escrow",
        "SELECT 'escrow ' || e.id, 'categories hold remaining/reserved/spent/allocated = '
             || SUM(c.remaining_usd_cents) || '/' || SUM(c.reserved_usd_cents) || '/' || SUM(c.spent_usd_cents)
             || '/' || SUM(c.allocated_usd_cents) || ' but the escrow says ' || e.remaining_usd_cents || '/'
             || e.reserved_usd_cents || '/' || e.spent_usd_cents || '/' || e.total_usd_cents
         FROM escrows e JOIN spending_categories c ON c.escrow_id = e.id GROUP BY e.id
         HAVING SUM(c.remaining_usd_cents) <> e.remaining_usd_cents OR SUM(c.reserved_usd_cents) <> e.reserved_usd_cents
            OR SUM(c.spent_usd_cents) <> e.spent_usd_cents OR SUM(c.allocated_usd_cents) <> e.total_usd_cents",
    ),
    (
        "escrow balances sum to their total",
        "SELECT 'escrow ' || id, 'remaining+reserved+spent+refunded = '
             || (remaining_usd_cents + reserved_usd_cents + spent_usd_cents + refunded_usd_cents)
             || ' but it is ' || status || ' with total ' || total_usd_cents || ' and deposited ' || deposited_usd_cents
         FROM escrows WHERE
            (status IN ('active', 'completed') AND remaining_usd_cents + reserved_usd_cents + spent_usd_cents
                + refunded_usd_cents <> total_usd_cents)
            OR (status = 'cancelled' AND remaining_usd_cents + reserved_usd_cents + spent_usd_cents
                + refunded_usd_cents <> deposited_usd_cents)
            OR (status = 'pending_deposit' AND remaining_usd_cents + reserved_usd_cents + spent_usd_cents
                + refunded_usd_cents <> 0)
            OR remaining_usd_cents < 0 OR reserved_usd_cents < 0 OR spent_usd_cents < 0
            OR refunded_usd_cents < 0",
    ),
    (
        "every paid request has exactly one succeeded payout",
        "SELECT 'payment request ' || r.id, 'is ' || r.status || ' with ' || COUNT(p.id) || ' succeeded payout(s)'
         FROM payment_requests r LEFT JOIN payouts p ON p.payment_request_id = r.id AND p.status = 'succeeded'
         GROUP BY r.id HAVING (r.status = 'paid') <> (COUNT(p.id) = 1) OR COUNT(p.id) > 1",
    ),
    (
        "every succeeded payout belongs to a paid request",
        "SELECT 'payout ' || p.id, 'succeeded but its request ' || r.id || ' is ' || r.status
         FROM payouts p JOIN payment_requests r ON r.id = p.payment_request_id
         WHERE p.status = 'succeeded' AND r.status <> 'paid'",
    ),
    (
        "every request's state is its payout's",
        // Approved while its payout has no result, failed when its payout failed (paid is
        // the check above). A request left approved beside a failed payout passed every
        // check: its balances agree, only the request's word is wrong.
        "SELECT 'payment request ' || r.id, 'is ' || r.status || ' but its payout ' || p.id || ' is ' || p.status
         FROM payment_requests r JOIN payouts p ON p.payment_request_id = r.id
         WHERE (p.status IN ('queued', 'sent')) <> (r.status = 'approved')
            OR (p.status = 'failed') <> (r.status = 'failed')
         UNION ALL
         SELECT 'payment request ' || r.id, 'is ' || r.status || ' but has no payout'
         FROM payment_requests r WHERE r.status IN ('approved', 'paid', 'failed')
             AND NOT EXISTS (SELECT 1 FROM payouts p WHERE p.payment_request_id = r.id)",
    ),
    (
        "reserved money matches the payouts in flight",
        "WITH in_flight AS (
            SELECT escrow_id, SUM(amount_usd_cents) AS reserved FROM payouts
            WHERE status IN ('queued', 'sent') GROUP BY escrow_id)
         SELECT 'escrow ' || e.id, 'reserves ' || e.reserved_usd_cents || ' but its payouts without a result add up to '
             || COALESCE(f.reserved, 0)
         FROM escrows e LEFT JOIN in_flight f ON f.escrow_id = e.id
         WHERE e.reserved_usd_cents <> COALESCE(f.reserved, 0)",
    ),
    (
        "every payout pays what its approved request asked",
        "SELECT 'payout ' || p.id,
             'pays ' || p.amount_usd_cents || ' US cents (' || p.amount_kes_cents || ' KES cents) from escrow '
             || p.escrow_id || ' but its request ' || p.payment_request_id || COALESCE(' is ' || r.status
             || ' for ' || r.amount_usd_cents || ' US cents (' || r.amount_kes_cents || ' KES cents) from escrow '
             || r.escrow_id, ' does not exist')
         FROM payouts p LEFT JOIN payment_requests r ON r.id = p.payment_request_id
         WHERE r.id IS NULL OR p.amount_usd_cents <> r.amount_usd_cents
            OR p.amount_kes_cents <> r.amount_kes_cents OR p.escrow_id <> r.escrow_id
            OR r.status NOT IN ('approved', 'paid', 'failed')
         UNION ALL
         -- The M-Pesa command is the payee's kind's: a paybill's payout sent as a till's paid
         -- another business the same number.
         SELECT 'payout ' || p.id, 'is sent as ' || p.command || ' but its request ' || r.id || ' pays a ' || r.merchant_type
         FROM payouts p JOIN payment_requests r ON r.id = p.payment_request_id
         WHERE p.command <> CASE r.merchant_type WHEN 'phone' THEN 'b2c' WHEN 'paybill' THEN 'b2b_paybill'
             ELSE 'b2b_till' END",
    ),
    (
        DAILY_CHECK,
        // A day's approvals of an escrow with a daily limit (`daily_spend`, whose CHECK is the
        // limit) are the requests approved that day whose payout did not fail (a failure gives
        // the day its money back), under the escrow's own limit. SQLite's integrity check does
        // not see a row's key changed in a table without rowids: a bit flipped there, or a row
        // lost, gave a sender a fresh day's limit.
        // Row by row, each day's requests by the escrow's index: nothing sorted or held.
        "SELECT 'escrow ' || k.escrow_id || ' on ' || k.day, 'approved ' || k.kept || ' US cents under a limit of '
             || k.day_limit || ' but its requests approved that day and not failed add up to '
             || k.approved || COALESCE(' under its limit of ' || k.escrow_limit, CASE WHEN k.escrow IS NULL
                 THEN ' and there is no such escrow' ELSE ' and it has no daily limit' END)
         FROM (SELECT d.escrow_id, d.day, d.approved_usd_cents AS kept, d.limit_usd_cents AS day_limit,
                   e.id AS escrow, e.daily_limit_usd_cents AS escrow_limit,
                   (SELECT COALESCE(SUM(r.amount_usd_cents), 0) FROM payment_requests r
                    WHERE r.escrow_id = d.escrow_id AND r.approved_day = d.day
                        AND r.status IN ('approved', 'paid')) AS approved
               FROM daily_spend d LEFT JOIN escrows e ON e.id = d.escrow_id) k
         WHERE k.kept <> k.approved OR k.escrow_limit IS NULL OR k.day_limit <> k.escrow_limit
         UNION ALL
         SELECT 'escrow ' || r.escrow_id || ' on ' || r.approved_day, 'has no approvals kept for the day but its request '
             || r.id || ' was approved that day for ' || r.amount_usd_cents || ' US cents'
         FROM payment_requests r WHERE r.approved_day IS NOT NULL AND r.status IN ('approved', 'paid')
             AND NOT EXISTS (SELECT 1 FROM daily_spend d WHERE d.escrow_id = r.escrow_id AND d.day = r.approved_day)",
    ),
    (
        "what each escrow spent is its succeeded payouts",
        "WITH paid AS (
            SELECT r.escrow_id, SUM(p.amount_usd_cents) AS spent
            FROM payment_requests r JOIN payouts p ON p.payment_request_id = r.id
            WHERE p.status = 'succeeded' GROUP BY r.escrow_id)
         SELECT 'escrow ' || e.id, 'spent ' || e.spent_usd_cents
             || ' but its succeeded payouts add up to ' || COALESCE(f.spent, 0)
         FROM escrows e LEFT JOIN paid f ON f.escrow_id = e.id
         WHERE e.spent_usd_cents <> COALESCE(f.spent, 0)",
    ),
    (
        "what each escrow was deposited is its applied deposits",
        "WITH applied AS (
            SELECT escrow_id, SUM(amount_usd_cents) AS deposited FROM deposits
            WHERE status = 'applied' GROUP BY escrow_id)
         SELECT 'escrow ' || e.id, 'was deposited ' || e.deposited_usd_cents
             || ' but its applied deposits add up to ' || COALESCE(f.deposited, 0)
         FROM escrows e LEFT JOIN applied f ON f.escrow_id = e.id
         WHERE e.deposited_usd_cents <> COALESCE(f.deposited, 0)",
    ),
    // The rows that say who may act and where the money is, held to the keyed audit lines that
    // made them: the checks above hold the tables to each other, and someone who can edit the
    // file but lacks the key could change them all together (a payout's amount in its request,
    // its journal, its escrow's balances and its day; a user made an admin, or one added with a
    // token) and still pass them. An audit line cannot be changed, added or put back from an
    // earlier copy without the chain or its record of the newest line failing.
    (
        "every user is as the audit line that made it",
        "SELECT 'user ' || u.id, CASE WHEN a.seq IS NULL THEN 'is ' || u.role || ' but no audit line made it'
             ELSE 'is ' || u.role || ' but audit line ' || a.seq || ' made it ' || COALESCE(json_extract(a.details, '$.role'), 'nothing') END
         FROM users u LEFT JOIN audit_log a ON a.entity = u.id AND a.action = 'user.created'
         WHERE a.seq IS NULL OR json_extract(a.details, '$.role') <> u.role",
    ),
    (
        // The token's hash too, where its line records it (`crypto::token_digest`, since
        // 2026-12-07): a hash replaced by one of a token the editor knows gave them the
        // account.
        TOKENS_CHECK,
        "SELECT 'token ' || t.prefix, CASE WHEN a.seq IS NULL THEN 'of user ' || t.user_id || ' opens '
                 || CASE WHEN t.revoked_at IS NULL THEN 'its escrows' ELSE 'nothing (revoked)' END
                 || ' but no audit line issued it'
             WHEN (t.sender_scope IS NULL) <> (json_extract(a.details, '$.escrowId') IS NULL)
             THEN 'opens ' || COALESCE('the escrows of sender ' || t.sender_scope, 'every escrow of user ' || t.user_id)
                 || ' but audit line ' || a.seq || ' issued it '
                 || COALESCE('for escrow ' || json_extract(a.details, '$.escrowId'), 'without a sender''s scope')
             ELSE 'of user ' || t.user_id || ' is not the token audit line ' || a.seq || ' issued (its hash was replaced)' END
         FROM api_tokens t LEFT JOIN audit_log a ON a.entity = t.user_id AND a.action = 'token.issued'
             AND json_extract(a.details, '$.prefix') = t.prefix
         WHERE a.seq IS NULL OR (t.sender_scope IS NULL) <> (json_extract(a.details, '$.escrowId') IS NULL)
             -- A token issued before the digest was recorded has it from its `token.hash_recorded`
             -- line (written at the first start after the upgrade).
             OR COALESCE(json_extract(a.details, '$.hashDigest'), (SELECT json_extract(r.details, '$.hashDigest')
                 FROM audit_log r WHERE r.entity = t.user_id || '' AND r.action = 'token.hash_recorded'
                     AND json_extract(r.details, '$.prefix') = t.prefix)) <> remit_token_digest(t.token_hash)
         UNION ALL
         -- A sender's scope is the sender of the escrow it was given for: pointed at another,
         -- the token opened that sender's escrows.
         SELECT 'token ' || t.prefix, 'opens the escrows of sender ' || t.sender_scope || ' but audit line ' || a.seq
             || ' issued it for escrow ' || e.id || ', of sender ' || e.sender_id
         FROM api_tokens t JOIN audit_log a ON a.entity = t.user_id || '' AND a.action = 'token.issued'
             AND json_extract(a.details, '$.prefix') = t.prefix
             JOIN escrows e ON e.id = json_extract(a.details, '$.escrowId')
         WHERE t.sender_scope <> e.sender_id AND t.sender_scope <> a.actor
         UNION ALL
         SELECT 'token ' || t.prefix, 'of user ' || t.user_id || ' opens again, though an audit line revoked it'
         FROM api_tokens t WHERE t.revoked_at IS NULL AND EXISTS (
             SELECT 1 FROM audit_log a WHERE a.entity = t.user_id AND a.action = 'token.revoked'
                 AND json_extract(a.details, '$.prefix') = t.prefix)",
    ),
    (
        // Its sender too (who approves its requests and sees it), and its daily limit.
        ESCROWS_CHECK,
        "SELECT 'escrow ' || e.id, CASE WHEN a.seq IS NULL THEN 'holds a total of ' || e.total_usd_cents || ' US cents but no audit line made it'
             ELSE 'is ' || e.sender_id || '''s, for ' || e.total_usd_cents || ' US cents to ' || e.recipient_id
                 || ', with the deposit code ' || e.short_ref
                 || COALESCE(', at most ' || e.daily_limit_usd_cents || ' US cents a day', ', without a daily limit')
                 || ', but audit line ' || a.seq || ' made it ' || a.actor || '''s, for '
                 || COALESCE(json_extract(a.details, '$.totalUsdCents'), 'nothing') || ' US cents to '
                 || COALESCE(json_extract(a.details, '$.recipientId'), 'nothing')
                 || COALESCE(', with the deposit code ' || json_extract(a.details, '$.shortRef'), '')
                 || COALESCE(', at most ' || json_extract(a.details, '$.dailyLimitUsdCents') || ' US cents a day', ', without a daily limit') END
         FROM escrows e LEFT JOIN audit_log a ON a.entity = e.id AND a.action = 'escrow.created'
         WHERE a.seq IS NULL OR CAST(json_extract(a.details, '$.totalUsdCents') AS BIGINT) <> e.total_usd_cents
             OR json_extract(a.details, '$.recipientId') <> e.recipient_id OR a.actor <> e.sender_id
             OR COALESCE(CAST(json_extract(a.details, '$.dailyLimitUsdCents') AS BIGINT), -1)
                 <> COALESCE(e.daily_limit_usd_cents, -1)
             -- Its deposit code (recorded since 2026-12-07): two escrows' codes swapped sent an
             -- agent's cash to the other.
             OR json_extract(a.details, '$.shortRef') <> e.short_ref",
    ),
    (
        // A card refund or dispute of an applied deposit flags its escrow (its money may be
        // taken back) until an admin clears it: a flag cleared in the file let its money be
        // paid out. (A refund of a cancelled escrow is not held: it is what the cancel owed,
        // unflagged, unless it exceeds that, which this does not tell.)
        "every escrow a refund or dispute of its deposits flagged stays flagged until an admin clears it",
        "SELECT 'escrow ' || e.id, 'is not flagged, but its deposits were refunded or disputed after any clearing of its flag (the newest such audit line: '
             || MAX(a.seq) || ')'
         FROM deposits d JOIN escrows e ON e.id = d.escrow_id
             JOIN audit_log a ON a.entity = d.id
                 AND (a.action = 'deposit.disputed' OR (a.action = 'deposit.refunded' AND e.status <> 'cancelled'))
         WHERE d.status = 'applied' AND e.flag_reason IS NULL
             AND a.seq > COALESCE((SELECT MAX(c.seq) FROM audit_log c WHERE c.entity = e.id AND c.action = 'escrow.flag_cleared'), 0)
         GROUP BY e.id",
    ),
    (
        // How an escrow's total is split (its line lists its categories in order): moved
        // between two categories with the journal rewritten to match, a category's money was
        // spent as another's. (SQLite's `json_each`; PostgreSQL's form in `POSTGRES_FORMS`.)
        ALLOCATIONS_CHECK,
        "SELECT 'category ' || c.id, 'of escrow ' || c.escrow_id || ' is ' || c.name || ' with ' || c.allocated_usd_cents
             || ' US cents but audit line ' || a.seq || ' made its place ' || c.position || ' '
             || COALESCE(json_extract(j.value, '$.name') || ' with ' || json_extract(j.value, '$.allocatedUsdCents') || ' US cents', 'nothing')
         FROM spending_categories c JOIN audit_log a ON a.entity = c.escrow_id || '' AND a.action = 'escrow.created'
             LEFT JOIN json_each(CASE WHEN json_valid(a.details) THEN a.details END, '$.categories') j
                 ON j.key = c.position
         WHERE j.key IS NULL OR json_extract(j.value, '$.name') <> c.name
             OR CAST(json_extract(j.value, '$.allocatedUsdCents') AS BIGINT) <> c.allocated_usd_cents",
    ),
    (
        // Where the ledger's events go (escrows, amounts): an endpoint's URL pointed at
        // another host in the file (the server sealed it at its next start as its own), or its
        // events widened, passed. Its origin is kept in the clear (its whole URL, before the
        // server first sealed it), its line names the host.
        ENDPOINTS_CHECK,
        "SELECT 'webhook endpoint ' || w.id, 'posts to ' || w.url || ' for ' || w.events || ' but audit line ' || a.seq
             || ' made it for the host ' || json_extract(a.details, '$.host') || ' and ' || json_extract(a.details, '$.events')
         FROM webhook_endpoints w JOIN audit_log a ON a.entity = w.id || '' AND a.action = 'webhook_endpoint.created'
         WHERE NOT (w.url IN ('http://' || json_extract(a.details, '$.host'), 'https://' || json_extract(a.details, '$.host'))
                 OR w.url LIKE 'http://' || json_extract(a.details, '$.host') || ':%' OR w.url LIKE 'https://' || json_extract(a.details, '$.host') || ':%'
                 OR w.url LIKE 'http://' || json_extract(a.details, '$.host') || '/%' OR w.url LIKE 'https://' || json_extract(a.details, '$.host') || '/%'
                 OR w.url LIKE 'http://' || json_extract(a.details, '$.host') || '?%' OR w.url LIKE 'https://' || json_extract(a.details, '$.host') || '?%')
             OR json_extract(a.details, '$.events') <> w.events
             -- Its origin, scheme and port, where the line records it (since 2026-12-07): an
             -- https receiver made http, its events sent in the clear.
             OR (w.url_enc IS NOT NULL AND json_extract(a.details, '$.origin') <> w.url)
             OR (w.url_enc IS NULL AND w.url <> json_extract(a.details, '$.origin')
                 AND w.url NOT LIKE json_extract(a.details, '$.origin') || '/%'
                 AND w.url NOT LIKE json_extract(a.details, '$.origin') || '?%')
             -- Credentials before the host ('https://good.example:x@evil.example' posted to
             -- evil.example): a URL with an '@' is never one remit took (its origin never has one).
             OR instr(w.url, '@') > 0",
    ),
    (
        // What a payout pays is its request's (held above), and the request is the one its
        // line made: amounts, rate, escrow, category, payee's kind and who asked (a field a
        // line of an older remit does not have is not compared); and it was approved by its
        // escrow's sender or an admin.
        REQUESTS_CHECK,
        "SELECT 'payment request ' || r.id, CASE WHEN a.seq IS NULL THEN 'asks ' || r.amount_kes_cents || ' KES cents but no audit line made it'
             ELSE 'asks ' || r.amount_kes_cents || ' KES cents (' || r.amount_usd_cents || ' US cents at ' || r.rate_kes_per_usd_e4
                 || ') of ' || r.escrow_id || '''s ' || COALESCE(c.name, 'missing category') || ' for a ' || r.merchant_type
                 || ', asked by ' || r.requested_by || ', but audit line ' || a.seq || ' made it for '
                 || COALESCE(json_extract(a.details, '$.amountKesCents'), 'nothing') || ' KES cents ('
                 || COALESCE(json_extract(a.details, '$.amountUsdCents'), 'nothing') || ' US cents at '
                 || COALESCE(json_extract(a.details, '$.rateKesPerUsdE4'), json_extract(a.details, '$.rateE4'), 'nothing')
                 || ') of ' || COALESCE(json_extract(a.details, '$.escrowId'), 'nothing') || '''s '
                 || COALESCE(json_extract(a.details, '$.category'), 'nothing') || ' for a '
                 || COALESCE(json_extract(a.details, '$.merchantType'), 'nothing') || ', asked by ' || a.actor END
         FROM payment_requests r LEFT JOIN spending_categories c ON c.id = r.category_id
             LEFT JOIN audit_log a ON a.entity = r.id AND a.action = 'payment_request.created'
         WHERE a.seq IS NULL OR c.id IS NULL OR c.escrow_id <> r.escrow_id OR a.actor <> r.requested_by
             OR CAST(json_extract(a.details, '$.amountKesCents') AS BIGINT) <> r.amount_kes_cents
             OR CAST(json_extract(a.details, '$.amountUsdCents') AS BIGINT) <> r.amount_usd_cents
             OR CAST(COALESCE(json_extract(a.details, '$.rateKesPerUsdE4'), json_extract(a.details, '$.rateE4')) AS BIGINT)
                 <> r.rate_kes_per_usd_e4
             OR json_extract(a.details, '$.escrowId') <> r.escrow_id OR json_extract(a.details, '$.category') <> c.name
             OR json_extract(a.details, '$.merchantType') <> r.merchant_type
         UNION ALL
         -- Its approval: by the escrow's sender or an admin, against the day its line says a
         -- daily limit counted it (recorded since 2026-12-07).
         SELECT 'payment request ' || r.id, CASE WHEN a.actor = e.sender_id OR u.id IS NOT NULL
             THEN 'counts against ' || COALESCE(r.approved_day, 'no day') || ' but audit line ' || a.seq
                 || ' approved it against ' || json_extract(a.details, '$.approvedDay')
             ELSE 'was approved by ' || a.actor || ' (audit line ' || a.seq || '), neither the sender of escrow '
                 || e.id || ' nor an admin' END
         FROM payment_requests r JOIN audit_log a ON a.entity = r.id || '' AND a.action = 'payment_request.approved'
             JOIN escrows e ON e.id = r.escrow_id
             LEFT JOIN users u ON u.id = a.actor AND u.role = 'admin'
         WHERE r.status IN ('approved', 'paid', 'failed')
             AND ((a.actor <> e.sender_id AND u.id IS NULL)
                 OR json_extract(a.details, '$.approvedDay') <> COALESCE(r.approved_day, ''))",
    ),
    (
        "every applied deposit is the one its audit line records",
        "SELECT 'deposit ' || d.id, CASE WHEN a.seq IS NULL THEN 'is applied to escrow ' || d.escrow_id || ' but no audit line records it'
             ELSE 'applied ' || d.amount_usd_cents || ' US cents (' || d.source || ') but audit line ' || a.seq
                 || ' records ' || COALESCE(json_extract(a.details, '$.amountUsdCents'), 'nothing') || ' US cents ('
                 || COALESCE(json_extract(a.details, '$.source'), 'no source') || ')' END
         FROM deposits d LEFT JOIN audit_log a ON a.entity = d.escrow_id AND a.action = 'escrow.deposited'
             AND json_extract(a.details, '$.depositId') = d.id
         WHERE d.status = 'applied'
             AND (a.seq IS NULL OR CAST(json_extract(a.details, '$.amountUsdCents') AS BIGINT) <> d.amount_usd_cents
                 -- Its source too: a card deposit made cash in the file took no flag from its
                 -- refund.
                 OR json_extract(a.details, '$.source') <> d.source)",
    ),
    (
        "every payout is the one its approval's audit line made, with the result its audit line says",
        "SELECT 'payout ' || p.id, CASE WHEN a.seq IS NULL THEN 'pays ' || p.amount_usd_cents || ' US cents but no audit line approved it'
             ELSE 'pays ' || p.amount_usd_cents || ' US cents but audit line ' || a.seq || ' approved '
                 || COALESCE(json_extract(a.details, '$.amountUsdCents'), 'nothing') END
         FROM payouts p LEFT JOIN audit_log a ON a.entity = p.payment_request_id AND a.action = 'payment_request.approved'
             AND json_extract(a.details, '$.payoutId') = p.id
         WHERE a.seq IS NULL OR CAST(json_extract(a.details, '$.amountUsdCents') AS BIGINT) <> p.amount_usd_cents
         UNION ALL
         SELECT 'payout ' || p.id, 'is ' || p.status || ' but no audit line says so'
         FROM payouts p WHERE (p.status = 'succeeded' OR p.status = 'failed') AND NOT EXISTS (
             SELECT 1 FROM audit_log a WHERE a.entity = p.id AND a.action = 'payout.' || p.status)
         UNION ALL
         -- Taken by M-Pesa, then waiting to be sent again: a second payment.
         SELECT 'payout ' || p.id, 'waits to be sent but audit line ' || a.seq || ' says M-Pesa took it'
         FROM payouts p JOIN audit_log a ON a.entity = p.id AND a.action = 'payout.sent'
         WHERE p.status = 'queued' AND p.failure_to_confirm_code IS NULL",
    ),
    (
        // A decision moves no money, but a request set back to wait can be approved again.
        "every decided request's state is its audit line's",
        "SELECT 'payment request ' || r.id, 'is ' || r.status || ' but no audit line says so'
         FROM payment_requests r
         WHERE (r.status = 'rejected' OR r.status = 'cancelled' OR r.status = 'expired')
             AND NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.entity = r.id AND a.action = 'payment_request.' || r.status)
         UNION ALL
         SELECT 'payment request ' || r.id, 'waits for approval but audit line ' || a.seq || ' says it was '
             || substr(a.action, 17)
         FROM payment_requests r JOIN audit_log a ON a.entity = r.id
         WHERE r.status = 'pending_approval' AND (a.action = 'payment_request.rejected'
             OR a.action = 'payment_request.cancelled' OR a.action = 'payment_request.expired'
             OR a.action = 'payment_request.approved')",
    ),
    (
        // The rate prices every payment request in dollars: a rate changed in the file would
        // take more (or fewer) dollars from the escrows for the same shillings. Held to the
        // newest line that set it, by whom (`rateE4` is the key of ledgers made before the
        // details said the rate's unit).
        "the exchange rate is the one its newest audit line set",
        "SELECT 'exchange rate ' || r.pair, CASE WHEN a.seq IS NULL THEN 'is ' || r.rate_kes_per_usd_e4
                 || ' (KES per USD x 10^4) but no audit line set it'
             ELSE 'is ' || r.rate_kes_per_usd_e4 || ' (KES per USD x 10^4), set by ' || r.updated_by
                 || ', but audit line ' || a.seq || ' set it to '
                 || COALESCE(json_extract(a.details, '$.rateKesPerUsdE4'), json_extract(a.details, '$.rateE4'), 'nothing')
                 || ', by ' || a.actor END
         FROM fx_rates r LEFT JOIN audit_log a ON a.seq = (SELECT MAX(l.seq) FROM audit_log l
             WHERE l.entity = r.pair AND l.action = 'fx.rate_set')
         WHERE a.seq IS NULL OR a.actor <> r.updated_by
             OR COALESCE(CAST(json_extract(a.details, '$.rateKesPerUsdE4') AS BIGINT),
                 CAST(json_extract(a.details, '$.rateE4') AS BIGINT), -1) <> r.rate_kes_per_usd_e4",
    ),
    (
        // One pass over the log for both (a large ledger's log is its largest table).
        "every deposit and payout the audit log records is there",
        "SELECT 'audit line ' || a.seq, CASE WHEN a.action = 'escrow.deposited'
             THEN 'records deposit ' || COALESCE(json_extract(a.details, '$.depositId'), 'nothing') || ' of '
                 || COALESCE(json_extract(a.details, '$.amountUsdCents'), 'nothing') || ' US cents to escrow ' || a.entity
                 || ' but it is not applied there'
             ELSE 'approved request ' || a.entity || ' with payout '
                 || COALESCE(json_extract(a.details, '$.payoutId'), 'nothing') || ', which is not there' END
         FROM audit_log a
         WHERE (a.action = 'escrow.deposited' AND NOT EXISTS (
                 SELECT 1 FROM deposits d WHERE d.id = json_extract(a.details, '$.depositId')
                     AND d.escrow_id = a.entity AND d.status = 'applied'))
             OR (a.action = 'payment_request.approved' AND NOT EXISTS (
                 SELECT 1 FROM payouts p WHERE p.id = json_extract(a.details, '$.payoutId')
                     AND p.payment_request_id = a.entity))",
    ),
];

/// Runs every check on `conn` inside one read transaction (a consistent snapshot that does not
/// block the writer in WAL mode).
pub fn check(conn: &Connection, keys: &Keys) -> Result<Report> {
    let tx = conn.unchecked_transaction()?;
    let parts = Parts::new(true, true);
    parts.run(&mut Sqlite(&tx), keys)?;
    tx.finish()?;
    parts.report()
}

/// `check` with each part in a read transaction of its own (the server's `GET
/// /admin/integrity`): a snapshot held for the whole check (seconds at 10,000 escrows, minutes
/// at a million) kept the writer from restarting the log for as long, and the log grew past
/// its bound (`REMIT_WAL_MAX_MB`) under load. Parts may read snapshots commits apart, which
/// none minds (`check_on_two`); the longest snapshot is the file's storage check's.
pub fn check_part_by_part(conn: &Connection, keys: &Keys) -> Result<Report> {
    let parts = Parts::new(true, true);
    loop {
        let tx = conn.unchecked_transaction()?;
        let more = parts.run_next(&mut Sqlite(&tx), keys)?;
        tx.finish()?;
        if !more {
            break;
        }
    }
    parts.report()
}

/// `check` on two connections to the same file at once (`remit check`, `remit backup`): one
/// thread verifies the audit chain while the other runs the SQL checks, and each takes the next
/// part when done, so a large ledger is checked in about half the time on two cores. `second`
/// opens the other connection, like `conn`. Each connection reads inside one read transaction:
/// every check reads one consistent snapshot, as in `check`; two checks may read snapshots a
/// few commits apart if the file is written meanwhile (none compares its figures with
/// another's). The report is the same, in the same order, as `check`'s; with `pages` false
/// (`Pages::Skip`) without the file's storage check, for a copy SQLite has just written whole.
pub fn check_on_two(
    conn: &Connection,
    second: impl FnOnce() -> Result<Connection> + Send,
    keys: &Keys,
    pages: Pages,
) -> Result<Report> {
    let parts = Parts::new(pages == Pages::Check, pages == Pages::Check);
    std::thread::scope(|scope| {
        let helper = scope.spawn(|| -> Result<()> {
            let conn = second()?;
            let tx = conn.unchecked_transaction()?;
            parts.run(&mut Sqlite(&tx), keys)?;
            tx.finish()?;
            Ok(())
        });
        let tx = conn.unchecked_transaction()?;
        let mine = parts.run(&mut Sqlite(&tx), keys);
        tx.finish()?;
        let theirs = helper
            .join()
            .unwrap_or_else(|_| Err(crate::error::Error::internal("the check's thread panicked")));
        mine.and(theirs)
    })?;
    parts.report()
}

/// The parts of a check (the file's storage, the audit chain, each query of `LEDGER_CHECKS`,
/// the guards), taken in turn by whoever runs them, and what each found.
struct Parts {
    /// The next part to take: 0 is the file's storage (the longest, when it is checked), 1 the
    /// encrypted values (when they are checked), 2 the audit chain, then the queries in order,
    /// then the guards.
    next: AtomicUsize,
    /// Whether the file's storage is checked (the file's check; not a replica's, whose
    /// PostgreSQL keeps its own).
    storage: bool,
    /// Whether the encrypted values are opened (the file's full check and a replica's; not the
    /// backup's check of the copy it has just written from the checked ledger).
    sealed: bool,
    found: Mutex<Found>,
}

#[derive(Default)]
struct Found {
    /// Each query's mismatches, by its place in `LEDGER_CHECKS`.
    queries: Vec<Option<Query>>,
    /// The audit chain's lines and problems.
    audit: Option<(i64, Vec<String>)>,
    /// The tables of `APPEND_ONLY` without their guard.
    unguarded: Option<Vec<(String, String)>>,
    /// What SQLite's check of the file found (`None`: not checked).
    storage: Option<Vec<String>>,
    /// What the check of the encrypted values found (`None`: not checked).
    sealed: Option<Sealed>,
}

impl Parts {
    fn new(storage: bool, sealed: bool) -> Parts {
        Parts {
            next: AtomicUsize::new(0),
            storage,
            sealed,
            found: Mutex::new(Found {
                queries: vec![None; LEDGER_CHECKS.len()],
                audit: None,
                unguarded: None,
                storage: None,
                sealed: None,
            }),
        }
    }

    /// Takes parts until none is left; a part that cannot run stops this runner.
    fn run(&self, ledger: &mut dyn Ledger, keys: &Keys) -> Result<()> {
        while self.run_next(ledger, keys)? {}
        Ok(())
    }

    /// Takes the next part and runs it; false when none was left.
    fn run_next(&self, ledger: &mut dyn Ledger, keys: &Keys) -> Result<bool> {
        let part = self.next.fetch_add(1, Ordering::Relaxed);
        if part == 0 {
            if self.storage {
                let problems = ledger.storage_problems()?;
                self.found().storage = problems;
            }
        } else if part == 1 {
            if self.sealed {
                let sealed = ledger.sealed_problems(keys)?;
                self.found().sealed = sealed;
            }
        } else if part == 2 {
            let chain = audit_chain(ledger, keys)?;
            self.found().audit = Some(chain);
        } else if let Some((name, sql)) = LEDGER_CHECKS.get(part - 3) {
            let query = match ledger.schema_version() {
                _ if FILE_ONLY_CHECKS.contains(name) && !ledger.holds_credentials() => {
                    Query::FileOnly
                }
                Some(version) if version < since_schema(name) => Query::Older(version),
                _ => {
                    let sql = match POSTGRES_FORMS.iter().find(|(form, _)| form == name) {
                        Some((_, form)) if ledger.is_postgres() => form,
                        _ => sql,
                    };
                    let (kept, all) = ledger.mismatches(sql, MISMATCHES_LISTED_MAX)?;
                    Query::Ran(kept, all)
                }
            };
            self.found().queries[part - 3] = Some(query);
        } else if part == LEDGER_CHECKS.len() + 3 {
            let rows = ledger.unguarded()?;
            self.found().unguarded = Some(rows);
        } else {
            return Ok(false);
        }
        Ok(true)
    }

    fn found(&self) -> std::sync::MutexGuard<'_, Found> {
        self.found
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The report, once every part has run.
    fn report(self) -> Result<Report> {
        let found = self
            .found
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let unrun = || crate::error::Error::internal("a part of the check did not run");
        let queries = found
            .queries
            .into_iter()
            .map(|q| q.ok_or_else(unrun))
            .collect::<Result<Vec<_>>>()?;
        let (lines, problems) = found.audit.ok_or_else(unrun)?;
        let unguarded = found.unguarded.ok_or_else(unrun)?;
        if self.storage && (found.storage.is_none() || found.sealed.is_none()) {
            return Err(unrun());
        }
        let mut report = Report::default();
        if let Some(storage) = found.storage {
            report.add_problems(STORAGE_CHECK, storage, "the file");
        }
        if let Some(sealed) = found.sealed {
            // No count of the values in the line: two checks of a ledger a server writes to
            // (`remit check` and `GET /admin/integrity`) would differ by the texts written
            // between them.
            let check = if sealed.failed > sealed.problems.len() as u64 {
                format!(
                    "every encrypted value opens under the key ({} do not, the first {} listed)",
                    sealed.failed,
                    sealed.problems.len()
                )
            } else {
                "every encrypted value opens under the key".to_string()
            };
            report.add_problems(&check, sealed.problems, "encrypted values");
        }
        report_of(&mut report, queries, unguarded, lines, problems);
        Ok(report)
    }
}

/// Verifies the audit chain: its lines, and its problems (one sentence each).
fn audit_chain(ledger: &mut dyn Ledger, keys: &Keys) -> Result<(i64, Vec<String>)> {
    let mut verifier = ChainVerifier::new(keys, ledger.audit_keys()?)?;
    ledger.audit_lines(&mut |line| verifier.line(line))?;
    let lines = verifier.lines();
    let head = ledger.audit_head()?;
    Ok((lines, verifier.finish(head, &ledger.newest_journal()?)))
}

/// Runs every check on a snapshot of a ledger, in the same words whatever holds it.
pub fn check_ledger(ledger: &mut dyn Ledger, keys: &Keys) -> Result<Report> {
    let parts = Parts::new(false, true);
    parts.run(ledger, keys)?;
    parts.report()
}

/// Adds to `report` what each query of `LEDGER_CHECKS` found (in its order), the guards and the
/// audit chain.
fn report_of(
    report: &mut Report,
    queries: Vec<Query>,
    unguarded: Vec<(String, String)>,
    lines: i64,
    problems: Vec<String>,
) {
    let named = LEDGER_CHECKS
        .iter()
        .map(|(name, _)| *name)
        .chain([GUARDS_CHECK]);
    let guards = unguarded.len() as u64;
    for (name, found) in named.zip(queries.into_iter().chain([Query::Ran(unguarded, guards)])) {
        let (found, all) = match found {
            Query::Ran(found, all) => (found, all),
            Query::Older(version) => {
                report.checks.push(format!(
                    "{name}: not run (the replica is of schema version {version}, the check needs {}; replication makes it again at its next cycle)",
                    since_schema(name)
                ));
                continue;
            }
            Query::FileOnly => {
                report.checks.push(format!(
                    "{name}: not run on a replica (`remit check` on the file runs it)"
                ));
                continue;
            }
        };
        let found: Vec<String> = found
            .into_iter()
            .map(|(what, detail)| format!("{what}: {detail}"))
            .collect();
        let counted = if all > found.len() as u64 {
            format!("mismatch(es) in all, the first {} listed", found.len())
        } else {
            "mismatch(es)".to_string()
        };
        report.add_counted(name, found, all, name, &counted);
    }
    report.add_problems(
        &format!("the audit chain verifies from the first line to the last ({lines} lines)"),
        problems,
        "audit chain",
    );
}

impl Report {
    /// One check's line (`ok`, or how many problems it found) and each problem, after `what`.
    fn add_problems(&mut self, check: &str, problems: Vec<String>, what: &str) {
        self.add(check, problems, what, "problem(s)");
    }

    /// One check's line (`ok`, or how many it found, in `counted`) and each finding, after
    /// `what`.
    fn add(&mut self, check: &str, found: Vec<String>, what: &str, counted: &str) {
        let all = found.len() as u64;
        self.add_counted(check, found, all, what, counted);
    }

    /// `add`, for findings of which only the first are listed: `all` counts them all.
    fn add_counted(
        &mut self,
        check: &str,
        found: Vec<String>,
        all: u64,
        what: &str,
        counted: &str,
    ) {
        self.unlisted += all.saturating_sub(found.len() as u64);
        self.checks.push(format!(
            "{check}: {}",
            if all == 0 {
                "ok".to_string()
            } else {
                format!("{all} {counted}")
            }
        ));
        self.mismatches
            .extend(found.into_iter().map(|f| format!("{what}: {f}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Escrow a's journal is 1, 3, 4; b's is 2, 5; c has none. Each case edits it (past the
    /// journal's append-only guard) and names what the two chain checks must find.
    #[test]
    fn the_chain_checks_find_every_way_a_chain_can_be_wrong() {
        let cases: &[(&str, &str, usize, usize)] = &[
            ("as written", "", 0, 0),
            (
                "a link cut",
                "UPDATE ledger_transactions SET prev_id = NULL WHERE id = 3",
                1,
                0,
            ),
            (
                "a link into another escrow",
                "UPDATE ledger_transactions SET prev_id = 2 WHERE id = 3",
                1,
                0,
            ),
            (
                "a transaction skipped",
                "UPDATE ledger_transactions SET prev_id = 1 WHERE id = 4",
                1,
                0,
            ),
            (
                "two after the same one",
                "UPDATE ledger_transactions SET prev_id = 1 WHERE id = 4;
              UPDATE ledger_transactions SET prev_id = 1 WHERE id = 3",
                1,
                0,
            ),
            (
                "the newest wrong",
                "UPDATE escrows SET last_transaction_id = 3 WHERE id = 'esc_a'",
                0,
                1,
            ),
            (
                "the newest forgotten",
                "UPDATE escrows SET last_transaction_id = NULL WHERE id = 'esc_b'",
                0,
                1,
            ),
            (
                "a newest without a journal",
                "UPDATE escrows SET last_transaction_id = 5 WHERE id = 'esc_c'",
                0,
                1,
            ),
        ];
        let find = |conn: &Connection, check: &str| -> usize {
            let (_, sql) = LEDGER_CHECKS
                .iter()
                .find(|(name, _)| *name == check)
                .unwrap();
            Sqlite(conn).mismatches(sql, usize::MAX).unwrap().0.len()
        };
        for (what, edit, chain, newest) in cases {
            let conn = crate::store::migrated_in_memory().unwrap();
            conn.execute_batch(
                "INSERT INTO users (id, role, name_enc, created_at) VALUES
                     ('usr_s', 'sender', 'x', 't'), ('usr_r', 'recipient', 'x', 't');
                 INSERT INTO escrows (id, sender_id, recipient_id, status, total_usd_cents, created_at,
                     updated_at, last_transaction_id)
                     VALUES ('esc_a', 'usr_s', 'usr_r', 'pending_deposit', 100, 't', 't', 4),
                            ('esc_b', 'usr_s', 'usr_r', 'pending_deposit', 100, 't', 't', 5),
                            ('esc_c', 'usr_s', 'usr_r', 'pending_deposit', 100, 't', 't', NULL);
                 INSERT INTO ledger_transactions (id, escrow_id, kind, reference, created_at, prev_id) VALUES
                     (1, 'esc_a', 'deposit', 'd1', 't', NULL), (2, 'esc_b', 'deposit', 'd2', 't', NULL),
                     (3, 'esc_a', 'deposit', 'd3', 't', 1), (4, 'esc_a', 'deposit', 'd4', 't', 3),
                     (5, 'esc_b', 'deposit', 'd5', 't', 2);
                 DROP TRIGGER ledger_transactions_append_only_update;",
            )
            .unwrap();
            conn.execute_batch(edit).unwrap();
            assert_eq!(find(&conn, JOURNAL_CHAIN_CHECK), *chain, "{what}");
            assert_eq!(find(&conn, JOURNAL_NEWEST_CHECK), *newest, "{what}");
        }
    }

    /// A replica of a schema before a check's columns is not asked for them.
    #[test]
    fn a_check_is_not_run_on_a_ledger_of_a_schema_before_it() {
        assert_eq!(since_schema(JOURNAL_CHAIN_CHECK), 18);
        assert_eq!(since_schema(JOURNAL_NEWEST_CHECK), 18);
        assert_eq!(since_schema(LEDGER_CHECKS[0].0), 0);
        for (name, _) in CHECKS_SINCE_SCHEMA {
            assert!(
                LEDGER_CHECKS.iter().any(|(check, _)| check == name),
                "{name}"
            );
        }
    }
}
