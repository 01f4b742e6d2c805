//! The PostgreSQL side of replication: connecting (TLS when the server offers it), the
//! control table that holds every ledger's position, the ledger's schema (`remit_<ledger id>`,
//! made from the file's own definitions), applying one snapshot's changes in one transaction
//! together with the position they reach, and reading a replica back for the integrity check.

use super::ddl;
use super::source::{self, Cell, ColumnType, Kind, Position, Shape};
use crate::audit::StoredLine;
use crate::error::{Error, Result};
use crate::store::changes::{ChangeLog, ChangedRows};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use postgres::{Client, Transaction};
use rusqlite::Connection;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The schema of the table that holds every ledger's position.
const CONTROL_SCHEMA: &str = "remit_replication";

/// Serialises the first creation of the control schema among kiosks that start together.
const CONTROL_LOCK_KEY: i64 = 0x7265_6d69_7472_6570; // "remitrep"

/// How long connecting may take.
const CONNECT_TIMEOUT_S: u64 = 10;

/// A broken connection is noticed within about a minute even when nothing is sent.
const KEEPALIVE_IDLE_S: u64 = 30;

/// Connections whose start-up never ended in time (a PostgreSQL that accepted and went silent:
/// a stopped postmaster, a listener that is not PostgreSQL): each one's thread waits for it.
/// Past `STUCK_CONNECTS_MAX` of them no new connection is tried, so that a silent server
/// costs a few threads, not one per retry.
static STUCK_CONNECTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
const STUCK_CONNECTS_MAX: usize = 4;

/// Where replication goes: a parsed connection string, never shown with its password.
#[derive(Clone)]
pub struct Target {
    config: postgres::Config,
    ca_file: Option<std::path::PathBuf>,
    /// The roots a server's certificate may chain to: the public ones and `ca_file`'s, read
    /// when the target is parsed (a file that cannot be read, or holds none, stops the start
    /// rather than every connection).
    roots: Arc<rustls::RootCertStore>,
    display: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

impl PartialEq for Target {
    fn eq(&self, other: &Target) -> bool {
        self.display == other.display && self.ca_file == other.ca_file
    }
}

impl Target {
    /// Parses `postgres://user:password@host:port/db?sslmode=…` (or `key=value` words);
    /// `name` is the setting or flag that carried it, for the error.
    pub fn parse(name: &str, url: &str, ca_file: Option<&Path>) -> Result<Target> {
        // The client takes the credentials up to the first `@` anywhere in a URL: a password
        // given as a parameter and holding one (`/db?password=…@…`) made the password's end
        // the host, and what came before it the user, which the log, the admin screen and the
        // check's errors showed (and the host was looked up by DNS). A password in the
        // credentials may hold a `/` or a `?` (a base64 one does): only what reads as the
        // password parameter is refused.
        let credentials = url
            .trim()
            .split_once("://")
            .and_then(|(_, rest)| rest.split_once('@'))
            .map(|(credentials, _)| credentials);
        if credentials.is_some_and(|c| c.contains("?password=") || c.contains("&password=")) {
            return Err(Error::invalid(
                name,
                "holds an '@' in its password parameter (?password=): write it %40",
            ));
        }
        let mut config: postgres::Config = url.trim().parse().map_err(|e| {
            // The parser's message never quotes the string (which may hold a password), and
            // says only "invalid connection string": what is wrong is said beside it.
            let why = why_not_a_connection_string(url.trim())
                .map(|why| format!(" ({why})"))
                .unwrap_or_default();
            Error::invalid(
                name,
                format!("is not a PostgreSQL connection string: {e}{why}"),
            )
        })?;
        if config.get_hosts().is_empty() {
            return Err(Error::invalid(name, "names no host"));
        }
        // The client takes the credentials up to the first `@`: a password holding one
        // unencoded leaves its end in the host, which logs and screens would show.
        let host_with_at = config.get_hosts().iter().any(|h| match h {
            postgres::config::Host::Tcp(h) => h.contains('@'),
            postgres::config::Host::Unix(p) => p.to_string_lossy().contains('@'),
        });
        if host_with_at {
            return Err(Error::invalid(
                name,
                "its host holds an '@': a password (or user) holding '@' must be written %40 in a URL",
            ));
        }
        if config.get_ports().contains(&0) {
            return Err(Error::invalid(
                name,
                "has port 0: a port is a number from 1 to 65535",
            ));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(CONNECT_TIMEOUT_S));
        }
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(KEEPALIVE_IDLE_S))
            .application_name("remit replicate")
            // Notices (`schema … already exists`) are not news to an operator.
            .notice_callback(|notice| log::debug!("PostgreSQL: {}", notice.message()));
        let display = masked(&config);
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(path) = ca_file {
            add_ca_file(&mut roots, path)?;
        }
        Ok(Target {
            config,
            ca_file: ca_file.map(Path::to_path_buf),
            roots: Arc::new(roots),
            display,
        })
    }

    /// `postgres://user@host:port/db`: the target as logs and screens show it (no password).
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Opens a connection: TLS when the server offers it (`sslmode=require` insists,
    /// `sslmode=disable` never asks), the certificate checked against the public roots and
    /// `REMIT_REPLICATE_CA_FILE`.
    ///
    /// The whole start-up (the sockets, TLS, authentication) is bounded by `connect_timeout`
    /// (10 s unless the URL says otherwise) times twice the hosts and once more (`within`):
    /// the client bounds only each socket's opening, and a server that accepts and then says
    /// nothing (a stopped postmaster) held the replicator, and `remit check --postgres`, for
    /// as long as it lasted.
    pub fn connect(&self) -> Result<Client> {
        // Without TLS when it may not be used (`sslmode=disable`) or cannot (a Unix socket,
        // where PostgreSQL offers none): the TLS connector wanted a DNS name of every host, and
        // refused a socket's path even with `sslmode=disable`.
        let sockets_only = self
            .config
            .get_hosts()
            .iter()
            .all(|h| !matches!(h, postgres::config::Host::Tcp(_)));
        let config = self.config.clone();
        let connected = if sockets_only
            || self.config.get_ssl_mode() == postgres::config::SslMode::Disable
        {
            self.within(move || config.connect(postgres::NoTls))
        } else {
            let roots = (*self.roots).clone();
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let tls = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| Error::internal(format!("TLS setup: {e}")))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            self.within(move || config.connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls)))
        };
        connected.map_err(|e| match e {
            Waited::Failed(e) => pg_error_trusting(
                &format!("cannot connect to {}", self.display),
                &e,
                self.ca_file.as_deref(),
            ),
            Waited::Silent(limit) => Error::internal(format!(
                "cannot connect to {}: it accepted the connection but did not answer within {} s (a PostgreSQL stopped, or not PostgreSQL)",
                self.display,
                limit.as_secs()
            )),
            Waited::NoThread(why) => Error::internal(format!(
                "cannot connect to {}: no thread to connect on: {why}",
                self.display
            )),
            Waited::TooManySilent => Error::internal(format!(
                "cannot connect to {}: {STUCK_CONNECTS_MAX} connections it accepted earlier are still waiting for its answer; none more is tried until one ends",
                self.display
            )),
        })
    }

    /// Runs `connect` on a thread of its own and waits for it at most `connect_timeout`.
    fn within(
        &self,
        connect: impl FnOnce() -> std::result::Result<Client, postgres::Error> + Send + 'static,
    ) -> std::result::Result<Client, Waited> {
        use std::sync::atomic::{AtomicU8, Ordering};
        const PENDING: u8 = 0;
        const ANSWERED: u8 = 1;
        const ABANDONED: u8 = 2;
        // The client gives each host, and each address a name resolves to, its own
        // `connect_timeout` for the socket (as libpq does): a host that drops packets before a
        // good one is waited for, then passed over. The whole start-up may take that for two
        // addresses of each host, and once more for TLS and authentication.
        let each = self
            .config
            .get_connect_timeout()
            .copied()
            .unwrap_or(Duration::from_secs(CONNECT_TIMEOUT_S));
        let hosts = self.config.get_hosts().len().max(1) as u32;
        let limit = each * (2 * hosts + 1);
        if STUCK_CONNECTS.load(Ordering::SeqCst) >= STUCK_CONNECTS_MAX {
            return Err(Waited::TooManySilent);
        }
        let state = Arc::new(AtomicU8::new(PENDING));
        let (tx, rx) = std::sync::mpsc::channel();
        let theirs = Arc::clone(&state);
        let spawned = std::thread::Builder::new()
            .name("remit-pg-connect".into())
            .spawn(move || {
                let result = connect();
                match theirs.compare_exchange(PENDING, ANSWERED, Ordering::SeqCst, Ordering::SeqCst)
                {
                    Ok(_) => {
                        let _ = tx.send(result);
                    }
                    // Given up on (counted before it was marked so): the connection, if made,
                    // is closed as it is dropped.
                    Err(_) => {
                        STUCK_CONNECTS.fetch_sub(1, Ordering::SeqCst);
                    }
                }
            });
        if let Err(e) = spawned {
            return Err(Waited::NoThread(e.to_string()));
        }
        match rx.recv_timeout(limit) {
            Ok(result) => result.map_err(Waited::Failed),
            // The thread ended without an answer (it panicked): nothing waits.
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(Waited::NoThread(
                "the connecting thread ended without an answer".into(),
            )),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                // Counted before it is marked abandoned, so that the thread's own count down
                // (once it sees the mark) never comes first.
                STUCK_CONNECTS.fetch_add(1, Ordering::SeqCst);
                match state.compare_exchange(PENDING, ABANDONED, Ordering::SeqCst, Ordering::SeqCst)
                {
                    Ok(_) => Err(Waited::Silent(limit)),
                    // It answered as the wait ended: its answer is in the channel.
                    Err(_) => {
                        STUCK_CONNECTS.fetch_sub(1, Ordering::SeqCst);
                        match rx.recv() {
                            Ok(result) => result.map_err(Waited::Failed),
                            Err(_) => Err(Waited::Silent(limit)),
                        }
                    }
                }
            }
        }
    }
}

/// How a bounded connection attempt ended without a connection.
enum Waited {
    /// The client's own error (refused, TLS, authentication…).
    Failed(postgres::Error),
    /// No answer within the limit.
    Silent(Duration),
    /// Too many earlier attempts still wait (`STUCK_CONNECTS_MAX`).
    TooManySilent,
    /// No thread could be started to connect on.
    NoThread(String),
}

/// Adds the certificates of `REMIT_REPLICATE_CA_FILE` to `roots`: a file that cannot be read,
/// that is not PEM certificates, that holds one rustls refuses, or holds none, is an error of
/// the setting.
fn add_ca_file(roots: &mut rustls::RootCertStore, path: &Path) -> Result<()> {
    use rustls::pki_types::pem::PemObject;
    let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
        .map_err(|e| {
            Error::invalid(
                "REMIT_REPLICATE_CA_FILE",
                format!("cannot read {}: {e}", path.display()),
            )
        })?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| {
            Error::invalid(
                "REMIT_REPLICATE_CA_FILE",
                format!("{} is not PEM certificates: {e}", path.display()),
            )
        })?;
    if certs.is_empty() {
        return Err(Error::invalid(
            "REMIT_REPLICATE_CA_FILE",
            format!(
                "{} holds no certificate (PEM, -----BEGIN CERTIFICATE-----)",
                path.display()
            ),
        ));
    }
    for cert in certs {
        roots.add(cert).map_err(|e| {
            Error::invalid(
                "REMIT_REPLICATE_CA_FILE",
                format!("{} holds a certificate rustls refuses: {e}", path.display()),
            )
        })?;
    }
    Ok(())
}

/// Why the `postgres` crate refused a connection string, when it can be told: a URL of another
/// scheme, a parameter it does not know, a value it does not take. Never quotes a value (a
/// password may be among them).
fn why_not_a_connection_string(text: &str) -> Option<String> {
    let Some((scheme, rest)) = text.split_once("://") else {
        // `key=value` words. A quoted value may hold spaces and `=`, and PostgreSQL takes
        // spaces around `=` (`password= hunter=two2` is the password `hunter=two2`): either
        // would cut a password into what reads as words, so a string is explained only when
        // every word is `key=value` with neither side empty and nothing is quoted.
        if text.contains(['\'', '\\']) {
            return None;
        }
        let words: Option<Vec<(&str, &str)>> = text
            .split_whitespace()
            .map(|word| {
                word.split_once('=')
                    .filter(|(k, v)| !k.is_empty() && !v.is_empty())
            })
            .collect();
        return words?
            .into_iter()
            .find_map(|(key, value)| why_not_a_parameter(key, value));
    };
    if scheme != "postgres" && scheme != "postgresql" {
        return Some(
            "a URL must begin with postgres:// or postgresql://; PostgreSQL is the only database remit replicates to"
                .into(),
        );
    }
    // The parameters follow the host: a password may hold a `?` (or an `@`) itself.
    let after_credentials = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let authority = after_credentials
        .split(['/', '?'])
        .next()
        .unwrap_or(after_credentials);
    for host in authority.split(',') {
        // `host:port`, `[v6]:port`: a port is digits, 1 to 65535.
        let port = host.rsplit_once(']').map_or(host, |(_, after)| after);
        if let Some((_, port)) = port.rsplit_once(':') {
            if port.parse::<u16>().map_or(true, |p| p == 0) {
                return Some("the port must be a number from 1 to 65535".into());
            }
        }
    }
    let query = after_credentials.split_once('?').map(|(_, q)| q)?;
    form_urlencoded::parse(query.as_bytes())
        .find_map(|(key, value)| why_not_a_parameter(&key, &value))
}

/// Why the PostgreSQL client refuses one parameter of a connection string, if it does: never
/// quoting its value.
fn why_not_a_parameter(key: &str, value: &str) -> Option<String> {
    const KNOWN: &[&str] = &[
        "user",
        "password",
        "dbname",
        "options",
        "application_name",
        "sslmode",
        "sslnegotiation",
        "host",
        "hostaddr",
        "port",
        "connect_timeout",
        "tcp_user_timeout",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_retries",
        "target_session_attrs",
        "channel_binding",
        "load_balance_hosts",
    ];
    let known = KNOWN.contains(&key);
    let whole_seconds = |v: &str| v.trim().parse::<u64>().is_ok();
    let why = match key {
            // A name is quoted only when it reads as one (never a piece of a password).
            _ if !known && key.chars().all(|c| c.is_ascii_lowercase() || c == '_') => format!(
                "it names a parameter the PostgreSQL client does not know, {key:?}; it knows {}",
                KNOWN.join(", ")
            ),
            _ if !known => format!(
                "it names a parameter the PostgreSQL client does not know; it knows {}",
                KNOWN.join(", ")
            ),
            "sslmode" if value == "verify-ca" || value == "verify-full" => {
                "sslmode takes disable, prefer or require: the server's certificate is always checked (against the public roots and REMIT_REPLICATE_CA_FILE) whenever TLS is used, so require is verify-full here".into()
            }
            "sslmode" if !["disable", "prefer", "require"].contains(&value) => {
                "sslmode takes disable, prefer or require".into()
            }
            "connect_timeout" | "tcp_user_timeout" | "keepalives_idle" | "port"
                if !whole_seconds(value) =>
            {
                format!("{key} takes a whole number")
            }
            _ => return None,
        };
    Some(why)
}

/// A check's query as PostgreSQL reads it: SQLite's `json_extract(X, '$.key')` (of an audit
/// line's details, JSON text on both sides) is `((X)::jsonb ->> 'key')` there, NULL for a key
/// that is missing or JSON's `null` alike. The rest of the checks' SQL is common to both.
fn json_in_postgres(sql: &str) -> std::borrow::Cow<'_, str> {
    crate::integrity::json_reads(sql, |value, key| format!("(({value})::jsonb ->> '{key}')"))
}

/// The connection string without its password.
fn masked(config: &postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let name = match host {
                // An IPv6 address is bracketed, as a URL writes it (`[::1]:5432`).
                postgres::config::Host::Tcp(name) if name.contains(':') => format!("[{name}]"),
                postgres::config::Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                postgres::config::Host::Unix(path) => path.display().to_string(),
            };
            match config.get_ports().get(i).or(config.get_ports().first()) {
                Some(port) => format!("{name}:{port}"),
                None => name,
            }
        })
        .collect();
    format!(
        "postgres://{}{}/{}",
        config
            .get_user()
            .map(|u| format!("{u}@"))
            .unwrap_or_default(),
        hosts.join(","),
        config.get_dbname().unwrap_or("")
    )
}

/// A PostgreSQL error as one line: its message and, for a server error, its code and detail
/// (never a parameter value: those are not part of either).
pub fn pg_error(what: &str, e: &postgres::Error) -> Error {
    pg_error_trusting(what, e, None)
}

/// `pg_error` of a connection whose certificate was checked against `ca_file` too, if one is
/// named (a refused certificate's advice then names that file).
fn pg_error_trusting(what: &str, e: &postgres::Error, ca_file: Option<&Path>) -> Error {
    match e.as_db_error() {
        Some(db) => Error::internal(format!(
            "{what}: PostgreSQL says {} ({}){}",
            db.message(),
            db.code().code(),
            db.detail().map(|d| format!(": {d}")).unwrap_or_default()
        )),
        // The cause ("Connection refused", "failed to lookup address information") is the
        // error's source: "error connecting to server" alone cannot tell them apart.
        None => match std::error::Error::source(e) {
            Some(cause) => {
                let cause = cause.to_string();
                Error::internal(format!("{what}: {e}: {cause}{}", tls_hint(&cause, ca_file)))
            }
            None => Error::internal(format!("{what}: {e}")),
        },
    }
}

/// What to do about a certificate TLS refused, in words (rustls names the reason in Rust's
/// own spelling: `UnknownIssuer`, `CaUsedAsEndEntity`…).
fn tls_hint(cause: &str, ca_file: Option<&Path>) -> std::borrow::Cow<'static, str> {
    if cause.contains("UnknownIssuer") {
        match ca_file {
            Some(path) => format!(
                " (the server's certificate is not signed by a root remit trusts, nor by a CA in {} (REMIT_REPLICATE_CA_FILE): put its CA's certificate there, PEM)",
                path.display()
            )
            .into(),
            None => " (the server's certificate is not signed by a root remit trusts: put its CA's certificate, PEM, in the file REMIT_REPLICATE_CA_FILE names)".into(),
        }
    } else if cause.contains("CaUsedAsEndEntity") {
        " (the server presents a CA's certificate as its own: give PostgreSQL a certificate that CA signed, and the CA's in REMIT_REPLICATE_CA_FILE)".into()
    } else if cause.contains("NotValidForName") {
        " (the server's certificate does not name the host the URL gives: connect by a name it holds)".into()
    } else if cause.contains("Expired") {
        " (the server's certificate has expired)".into()
    } else {
        "".into()
    }
}

trait PgResult<T> {
    fn pg(self, what: &str) -> Result<T>;
}

impl<T> PgResult<T> for std::result::Result<T, postgres::Error> {
    fn pg(self, what: &str) -> Result<T> {
        self.map_err(|e| pg_error(what, &e))
    }
}

/// The schema a ledger's rows land in: `remit_ldg_…`. The id is checked first: it becomes an
/// identifier in SQL.
pub fn schema_of(ledger_id: &str) -> Result<String> {
    let ok = ledger_id.strip_prefix("ldg_").is_some_and(|hex| {
        hex.len() == 20 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    });
    if !ok {
        return Err(Error::invalid(
            "--ledger",
            "is not a ledger id (ldg_ and 20 hex characters)",
        ));
    }
    Ok(format!("remit_{ledger_id}"))
}

impl ToSql for Cell {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Cell::Null => Ok(IsNull::Yes),
            Cell::Int(v) => v.to_sql(ty, out),
            Cell::Text(v) => v.to_sql(ty, out),
            Cell::Blob(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::INT8 | Type::TEXT | Type::BYTEA)
    }

    to_sql_checked!();
}

fn pg_type(ty: ColumnType) -> Type {
    match ty {
        ColumnType::Integer => Type::INT8,
        ColumnType::Text => Type::TEXT,
        ColumnType::Blob => Type::BYTEA,
    }
}

/// The control table: one row per ledger, its schema, the file's schema version it mirrors
/// and its position, updated in the same transaction as the rows it covers.
fn bootstrap(client: &mut Client) -> Result<()> {
    let mut tx = client.transaction().pg("cannot begin")?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CONTROL_LOCK_KEY])
        .pg("cannot lock the control schema")?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {CONTROL_SCHEMA};
         CREATE TABLE IF NOT EXISTS {CONTROL_SCHEMA}.ledgers (
             ledger_id              text PRIMARY KEY CHECK (ledger_id ~ '^ldg_[0-9a-f]{{20}}$'),
             schema_name            text NOT NULL UNIQUE,
             schema_version         integer NOT NULL CHECK (schema_version > 0),
             change_seq             bigint NOT NULL CHECK (change_seq >= -1),
             journal_transaction_id bigint NOT NULL CHECK (journal_transaction_id >= 0),
             journal_entry_id       bigint NOT NULL CHECK (journal_entry_id >= 0),
             audit_seq              bigint NOT NULL CHECK (audit_seq >= 0),
             audit_mac              bytea,
             replicated_at          timestamptz NOT NULL DEFAULT now()
         );"
    ))
    .pg("cannot create the control schema")?;
    // Each replica's most recently stamped rows (`source::NewestRow`), a column since
    // 2026-12-05: added to a control table made before, by its owner.
    if !control_has_newest_rows(&mut tx)? {
        tx.batch_execute(&format!(
            "ALTER TABLE {CONTROL_SCHEMA}.ledgers ADD COLUMN IF NOT EXISTS newest_rows text"
        ))
        .pg("cannot add the newest rows to the control table")?;
    }
    tx.commit().pg("cannot commit the control schema")
}

/// Asks PostgreSQL to apply this session's writes as a replica's, as its own logical
/// replication does (`session_replication_role = replica`): no trigger fires for them, so the
/// foreign keys are not checked again row by row at each commit. They were checked when the
/// file committed the rows (SQLite's `foreign_keys` is on) and a cycle writes one committed
/// snapshot whole; the constraints stay declared for every other session, and the `CHECK`
/// constraints (not triggers) hold for this one too. Without the right to set it (a
/// superuser, or `GRANT SET ON PARAMETER session_replication_role` from PostgreSQL 15), the
/// checks run as before, at about twice PostgreSQL's CPU per cycle, and this is said once.
fn apply_as_replica(client: &mut Client) {
    if let Err(e) = client.batch_execute("SET session_replication_role = replica") {
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| {
            log::info!(
                "replication checks every foreign key again in PostgreSQL ({}): grant the replication user SET ON PARAMETER session_replication_role to skip that work (README, \"Replication into PostgreSQL\")",
                e.as_db_error()
                    .map_or_else(|| e.to_string(), |d| d.message().to_string())
            );
        });
    }
}

/// Whether the control table has its `newest_rows` column (since 2026-12-05).
fn control_has_newest_rows(tx: &mut Transaction<'_>) -> Result<bool> {
    Ok(tx
        .query_opt(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = $1
             AND table_name = 'ledgers' AND column_name = 'newest_rows'",
            &[&CONTROL_SCHEMA],
        )
        .pg("cannot read the control table")?
        .is_some())
}

/// A ledger's row of the control table.
struct Recorded {
    position: Position,
    schema_version: i32,
    /// The replica's most recently stamped rows (`source::Newest`), as text.
    newest_rows: Option<String>,
}

/// A ledger's position, schema version and newest rows as the replica records them (`has_newest`:
/// whether the control table has them, as replication's own made sure when it connected;
/// `check --postgres` reads a replica made before 2026-12-05 too, `control_has_newest_rows`).
fn position_of(
    tx: &mut Transaction<'_>,
    ledger_id: &str,
    lock: bool,
    has_newest: bool,
) -> Result<Option<Recorded>> {
    let row = tx
        .query_opt(
            &format!(
                "SELECT change_seq, journal_transaction_id, journal_entry_id, audit_seq, audit_mac,
                 schema_version, {},
                 to_regclass(quote_ident(schema_name) || '.meta') IS NOT NULL
                 FROM {CONTROL_SCHEMA}.ledgers WHERE ledger_id = $1{}",
                if has_newest {
                    "newest_rows"
                } else {
                    "NULL::text"
                },
                if lock { " FOR UPDATE" } else { "" }
            ),
            &[&ledger_id],
        )
        .pg("cannot read the replica's position")?;
    // A replica whose tables are gone (its schema dropped by hand) holds nothing, whatever its
    // position says: it is copied again from scratch, as a replica `--drop` removed is.
    Ok(row.map(|r| Recorded {
        position: Position {
            change_seq: match r.get::<_, bool>(7) {
                true => r.get(0),
                false => -1,
            },
            journal_transaction_id: r.get(1),
            journal_entry_id: r.get(2),
            audit_seq: r.get(3),
            audit_mac: r.get(4),
        },
        schema_version: r.get(5),
        newest_rows: r.get(6),
    }))
}

/// What one cycle did.
#[derive(Clone, Debug, Default)]
pub struct Applied {
    /// The position the replica now holds.
    pub position: Position,
    /// Rows written.
    pub rows: u64,
    /// Whether the ledger's schema was made (first copy, or a new schema version).
    pub made_schema: bool,
    /// Whether the stamped tables' changes were found by the change log (else by scans).
    pub listed: bool,
}

/// One ledger's replica, on an open connection.
pub struct Replica {
    client: Client,
    ledger_id: String,
    schema: String,
    shapes: Vec<Shape>,
    file_version: i32,
    /// Each stamped table's upsert, prepared once per connection (and again after the
    /// ledger's schema is made).
    upserts: Vec<Option<postgres::Statement>>,
    /// Where the rolling check of the change log goes on: the table (an index into
    /// `shapes`) and the last rowid or key checked there (`None`: from its start).
    check_at: (usize, Option<Vec<rusqlite::types::Value>>),
}

impl Replica {
    /// Connects and makes sure the control table exists. `shapes` and `file_version` describe
    /// the file as it is now.
    pub fn open(
        target: &Target,
        ledger_id: &str,
        shapes: Vec<Shape>,
        file_version: u32,
    ) -> Result<Replica> {
        let schema = schema_of(ledger_id)?;
        let mut client = target.connect()?;
        bootstrap(&mut client)?;
        apply_as_replica(&mut client);
        Ok(Replica {
            client,
            ledger_id: ledger_id.to_string(),
            schema,
            shapes,
            file_version: file_version as i32,
            upserts: Vec::new(),
            check_at: (0, None),
        })
    }

    /// The position the replica holds now, for this file: `None` when it holds nothing yet,
    /// or was made at a schema version whose tables differ from the file's (the next cycle
    /// makes it again).
    pub fn position(&mut self) -> Result<Option<Position>> {
        let mut tx = self.client.transaction().pg("cannot begin")?;
        let found = position_of(&mut tx, &self.ledger_id, false, true)?;
        tx.commit().pg("cannot read the position")?;
        Ok(found
            .filter(|r| {
                r.position.change_seq >= 0
                    && !source::replica_outdated(r.schema_version as u32, self.file_version as u32)
            })
            .map(|r| r.position))
    }

    /// Copies everything the file committed since the replica's position, from one snapshot
    /// read on `reader` (a read-only connection), in one PostgreSQL transaction that also
    /// records the new position: after a crash anywhere, the replica holds exactly the changes
    /// up to its position. A replica of an older schema version is made again from scratch
    /// (unless the migrations since changed only tables left out, `source::MIGRATIONS_LEFT_OUT`).
    /// With `log` (the writer's change log, inside `serve`) the changed rows of the stamped
    /// tables are looked up by the rowids it lists, when it covers the whole range, instead of
    /// found by scanning each table.
    ///
    /// `phase` is told where the cycle is (`Phase`): past its first round trips, and whether
    /// what comes next may take minutes.
    pub fn cycle(
        &mut self,
        reader: &Connection,
        log: Option<&ChangeLog>,
        phase: &dyn Fn(Phase),
    ) -> Result<Applied> {
        let Replica {
            client,
            ledger_id,
            schema,
            shapes,
            file_version,
            upserts,
            check_at,
        } = self;
        let mut tx = client.transaction().pg("cannot begin")?;
        tx.execute(
            &format!(
                "INSERT INTO {CONTROL_SCHEMA}.ledgers (ledger_id, schema_name, schema_version,
                 change_seq, journal_transaction_id, journal_entry_id, audit_seq)
                 VALUES ($1, $2, $3, -1, 0, 0, 0) ON CONFLICT (ledger_id) DO NOTHING"
            ),
            &[&*ledger_id, &*schema, &*file_version],
        )
        .pg("cannot register the ledger")?;
        let Recorded {
            position: mut since,
            schema_version: version,
            newest_rows,
        } = position_of(&mut tx, ledger_id, true, true)?
            .ok_or_else(|| Error::internal("the ledger's row vanished"))?;
        let made_schema =
            since.change_seq < 0 || source::replica_outdated(version as u32, *file_version as u32);
        // The history the replica holds, to be the file's before anything is written: also
        // when it is made again for a new schema version (then its newest rows by their stamps
        // alone: their columns may have changed).
        let held = (since.change_seq >= 0).then(|| since.clone());
        if made_schema {
            if version > *file_version {
                return Err(Error::internal(format!(
                    "the replica is at schema version {version}, newer than this file's {file_version}: upgrade remit"
                )));
            }
            // The first copy, or a file of a newer schema: the ledger's tables are made from
            // the file's definitions and filled from scratch, all in this transaction.
            phase(Phase::Copying);
            refuse_if_used_outside(&mut tx, schema)?;
            tx.batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; SET LOCAL search_path TO {schema}"
            ))
            .pg("cannot make the ledger's schema")?;
            for statement in ddl::create_all(shapes)? {
                tx.batch_execute(&statement).map_err(|e| {
                    pg_error(
                        &format!(
                            "cannot make the replica's tables ({})",
                            first_line(&statement)
                        ),
                        &e,
                    )
                })?;
            }
            since = Position::start();
            upserts.clear();
        }
        if upserts.len() != shapes.len() {
            // All or none: a table without its statement would be skipped by the zips below.
            *upserts = shapes
                .iter()
                .map(|shape| match shape.table.kind {
                    Kind::Stamped => tx
                        .prepare(&upsert_sql(schema, shape))
                        .map(Some)
                        .pg(&format!(
                            "cannot prepare the changes of {}",
                            shape.table.name
                        )),
                    Kind::Appended { .. } => Ok(None),
                })
                .collect::<Result<Vec<_>>>()?;
        }
        phase(Phase::Prepared);

        // One snapshot of the file. Normally its rows are read first and the snapshot let go
        // before PostgreSQL is written (a long reader would hold the WAL back); a first copy
        // or a long catch-up streams instead, so that memory stays bounded.
        let started = std::time::Instant::now();
        let mut read_ms = 0.0;
        let read = reader.unchecked_transaction()?;
        let file = source::snapshot_position(&read)?;
        // The replica's most recently stamped rows, to which this cycle's are added (none for
        // a replica made again: its rows are all new).
        let mut kept_rows = Vec::new();
        if let Some(held) = &held {
            source::same_history(&read, held, &file)?;
            if let Some(newest) = newest_rows.as_deref().and_then(source::Newest::parse) {
                if let Some(how) = source::newest_rows_differ(&read, shapes, &newest, !made_schema)?
                {
                    return Err(source::another_history(&how));
                }
                if !made_schema {
                    kept_rows = newest;
                }
            }
        }
        // The replica's most recently stamped rows after this cycle, for the next one's look.
        let mut newest = source::Newest::from_kept(kept_rows);
        let long = made_schema
            || file.change_seq - since.change_seq > crate::limits::REPLICATION_STREAM_AFTER_CHANGES;
        // What the change log lists of the cycle's rows, when it can (a short cycle of a
        // running server's). Without it the rows are found by their stamps and streamed, table
        // by table, whatever their number: one transaction can stamp every row of a table (a
        // key rotation, a backfill), and read whole into memory before being written, it took
        // 312 MB for a ledger of 24,000 escrows.
        let mut listing = if long {
            None
        } else {
            log.and_then(|l| l.changed(since.change_seq, file.change_seq))
        };
        let stream = long || listing.is_none();
        let mut rows = 0u64;
        let mut listed = false;
        if stream {
            // A long copy is not watched for a PostgreSQL that stopped answering (minutes at a
            // million escrows); a short cycle read by stamps still is (a replicator of its own
            // has no change log: every cycle of it is read so).
            if long {
                phase(Phase::Copying);
            }
            for (shape, upsert) in shapes.iter().zip(upserts.iter()) {
                // Into a table made in this transaction nothing can conflict: copied straight in.
                let upsert = upsert.as_ref().filter(|_| !made_schema);
                rows += write_rows(&mut tx, schema, shape, upsert, |each| {
                    source::changed_rows(&read, shape, &since, None, &mut |row| {
                        newest.see(shape, &row);
                        each(row)
                    })
                    .map(|_| ())
                })?;
            }
            read.finish()?;
        } else {
            // Read with the log's list; if the check finds it wrong, the whole cycle is read
            // again by scans (the other tables' lists are no more to be trusted).
            let changed = loop {
                listed = listing.is_some();
                match read_changes(&read, shapes, &since, listing.as_ref(), check_at)? {
                    Some(changed) => break changed,
                    None => {
                        if let Some(log) = log {
                            log.distrust();
                        }
                        listing = None;
                    }
                }
            };
            read.finish()?;
            read_ms = started.elapsed().as_secs_f64() * 1e3;
            for (shape, table_rows) in shapes.iter().zip(&changed) {
                for row in table_rows {
                    newest.see(shape, row);
                }
            }
            for ((shape, upsert), table_rows) in shapes.iter().zip(upserts.iter()).zip(changed) {
                if table_rows.is_empty() {
                    continue;
                }
                rows += write_rows(&mut tx, schema, shape, upsert.as_ref(), |each| {
                    table_rows.into_iter().try_for_each(each)
                })?;
            }
        }
        tx.execute(
            &format!(
                "UPDATE {CONTROL_SCHEMA}.ledgers SET schema_version = $2, change_seq = $3,
                 journal_transaction_id = $4, journal_entry_id = $5, audit_seq = $6, audit_mac = $7,
                 newest_rows = $8, replicated_at = now() WHERE ledger_id = $1"
            ),
            &[
                &*ledger_id,
                &*file_version,
                &file.change_seq,
                &file.journal_transaction_id,
                &file.journal_entry_id,
                &file.audit_seq,
                &file.audit_mac,
                &newest.text(),
            ],
        )
        .pg("cannot record the position")?;
        tx.commit().pg("cannot commit")?;
        if let Some(log) = log {
            log.forget_through(file.change_seq);
        }
        log::debug!(
            "replicated changes {} to {} ({rows} rows) in {:.1} ms, {read_ms:.1} ms of it reading the file ({})",
            since.change_seq + 1,
            file.change_seq,
            started.elapsed().as_secs_f64() * 1e3,
            if listed { "the rows the change log listed" } else { "scanned" }
        );
        Ok(Applied {
            position: file,
            rows,
            made_schema,
            listed,
        })
    }
}

fn first_line(sql: &str) -> &str {
    sql.trim().lines().next().unwrap_or("")
}

/// Reads the rows of every table changed after `since`: the stamped tables' by the rows
/// `listing` names (when the change log answered; a table it has no list for is scanned), the
/// others by scan. With a listing, the log is checked against the scan it replaces on the
/// next slice of one stamped table the log lists (`check_at`: the table and the last rowid
/// or key checked; it moves on, the tables in turn); `None` when the check found a changed
/// row the log did not list.
fn read_changes(
    read: &Connection,
    shapes: &[Shape],
    since: &Position,
    listing: Option<&ChangedRows>,
    check_at: &mut (usize, Option<Vec<rusqlite::types::Value>>),
) -> Result<Option<Vec<Vec<Vec<Cell>>>>> {
    let listable = |i: &usize| shapes[*i].listable();
    if !listable(&check_at.0) {
        let next = (1..=shapes.len())
            .map(|step| (check_at.0 + step) % shapes.len())
            .find(listable)
            .unwrap_or(0);
        *check_at = (next, None);
    }
    let check_table = check_at.0;
    let mut changed: Vec<Vec<Vec<Cell>>> = Vec::with_capacity(shapes.len());
    for (index, shape) in shapes.iter().enumerate() {
        let name = shape.table.name;
        let listed = listing
            .filter(|_| shape.table.kind == Kind::Stamped)
            .and_then(|l| {
                if shape.rowid {
                    l.rowids.get(name).map(|r| source::Listed::Rowids(r))
                } else {
                    l.keys.get(name).map(|k| source::Listed::Keys(k))
                }
            });
        let mut table_rows = Vec::new();
        source::changed_rows(read, shape, since, listed, &mut |row| {
            table_rows.push(row);
            Ok(())
        })?;
        if let (Some(listed), true) = (listed, index == check_table) {
            let slice = source::unlisted_in_slice(
                read,
                shape,
                since,
                listed,
                check_at.1.as_deref(),
                crate::limits::CHANGE_LOG_CHECK_ROWS,
            )?;
            // The next cycle checks the next slice, or the next table from its start.
            *check_at = match slice.until {
                Some(at) => (index, Some(at)),
                None => ((index + 1) % shapes.len(), None),
            };
            if !slice.unlisted.is_empty() {
                log::error!(
                    "the change log did not list {} changed rows of {} (rowids or keys {:?}…) that a scan finds: replication scans from now on (this cycle's rows included)",
                    slice.unlisted.len(),
                    name,
                    &slice.unlisted[..slice.unlisted.len().min(5)]
                );
                return Ok(None);
            }
        }
        changed.push(table_rows);
    }
    Ok(Some(changed))
}

/// Writes the rows `feed` produces into the replica's table. Appended rows, and every row of
/// a table made in this transaction (`upsert` is `None`), are copied straight in (`COPY`; a key
/// already there is an error, never a silent duplicate). Stamped rows go as one array per
/// column to the table's `upsert` (`upsert_sql`), in statements of at most
/// `REPLICATION_UPSERT_ROWS` rows. Returns the rows written.
fn write_rows(
    tx: &mut Transaction<'_>,
    schema: &str,
    shape: &Shape,
    upsert: Option<&postgres::Statement>,
    feed: impl FnOnce(&mut dyn FnMut(Vec<Cell>) -> Result<()>) -> Result<()>,
) -> Result<u64> {
    let name = shape.table.name;
    let Some(upsert) = upsert else {
        let types: Vec<Type> = shape.columns.iter().map(|c| pg_type(c.ty)).collect();
        let sink = tx
            .copy_in(&format!(
                "COPY {schema}.{name} ({}) FROM STDIN (FORMAT binary)",
                shape.column_list()
            ))
            .pg(&format!("cannot copy into {name}"))?;
        let mut writer = BinaryCopyInWriter::new(sink, &types);
        feed(&mut |row| {
            let values: Vec<&(dyn ToSql + Sync)> =
                row.iter().map(|c| c as &(dyn ToSql + Sync)).collect();
            writer
                .write(&values)
                .map_err(|e| pg_error(&format!("cannot copy into {name}"), &e))
        })?;
        return writer.finish().pg(&format!("cannot copy into {name}"));
    };
    let mut columns = Columns::new(shape);
    let mut rows = 0u64;
    let mut apply = |tx: &mut Transaction<'_>, columns: &mut Columns| -> Result<()> {
        if columns.len == 0 {
            return Ok(());
        }
        let params: Vec<&(dyn ToSql + Sync)> = columns.params();
        tx.execute(upsert, &params)
            .pg(&format!("cannot apply the changes of {name}"))?;
        rows += columns.len as u64;
        columns.clear();
        Ok(())
    };
    feed(&mut |row| {
        columns.push(name, row)?;
        if columns.len >= crate::limits::REPLICATION_UPSERT_ROWS {
            apply(tx, &mut columns)?;
        }
        Ok(())
    })?;
    apply(tx, &mut columns)?;
    Ok(rows)
}

/// Where a cycle is, for the watch of a PostgreSQL that stops answering (`Replica::cycle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Its first round trips are answered (the position read and locked, its statements
    /// prepared); the file is read next.
    Prepared,
    /// It copies the whole ledger (a first copy, a replica made again, a long catch-up): it may
    /// take minutes, its schema's DDL may wait for sessions reading the replica.
    Copying,
}

/// A stamped table's upsert: its changed rows arrive as one array per column, unnested, and
/// each is inserted or, when its primary key is there, updated in place. No stage table: a
/// temporary table emptied at every commit cost PostgreSQL a truncation (and its TOAST
/// index's rebuild) per table per cycle.
fn upsert_sql(schema: &str, shape: &Shape) -> String {
    let arrays: Vec<String> = shape
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!(
                "${}::{}[]",
                i + 1,
                match c.ty {
                    ColumnType::Integer => "bigint",
                    ColumnType::Text => "text",
                    ColumnType::Blob => "bytea",
                }
            )
        })
        .collect();
    let set: Vec<String> = shape
        .columns
        .iter()
        .filter(|c| c.pk == 0)
        .map(|c| format!("{0} = EXCLUDED.{0}", source::quote(&c.name)))
        .collect();
    let conflict = if set.is_empty() {
        "DO NOTHING".to_string()
    } else {
        format!("DO UPDATE SET {}", set.join(", "))
    };
    format!(
        "INSERT INTO {schema}.{} ({}) SELECT * FROM unnest({}) ON CONFLICT ({}) {conflict}",
        shape.table.name,
        shape.column_list(),
        arrays.join(", "),
        shape
            .key()
            .iter()
            .map(|k| source::quote(k))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Rows of one table as one array per column (the parameters of its upsert).
struct Columns {
    arrays: Vec<Array>,
    len: usize,
}

enum Array {
    Int(Vec<Option<i64>>),
    Text(Vec<Option<String>>),
    Blob(Vec<Option<Vec<u8>>>),
}

impl Columns {
    fn new(shape: &Shape) -> Columns {
        Columns {
            arrays: shape
                .columns
                .iter()
                .map(|c| match c.ty {
                    ColumnType::Integer => Array::Int(Vec::new()),
                    ColumnType::Text => Array::Text(Vec::new()),
                    ColumnType::Blob => Array::Blob(Vec::new()),
                })
                .collect(),
            len: 0,
        }
    }

    fn push(&mut self, table: &str, row: Vec<Cell>) -> Result<()> {
        if row.len() != self.arrays.len() {
            return Err(Error::internal(format!(
                "a row of {table} has {} values for {} columns",
                row.len(),
                self.arrays.len()
            )));
        }
        for (array, cell) in self.arrays.iter_mut().zip(row) {
            match (array, cell) {
                (Array::Int(a), Cell::Int(v)) => a.push(Some(v)),
                (Array::Int(a), Cell::Null) => a.push(None),
                (Array::Text(a), Cell::Text(v)) => a.push(Some(v)),
                (Array::Text(a), Cell::Null) => a.push(None),
                (Array::Blob(a), Cell::Blob(v)) => a.push(Some(v)),
                (Array::Blob(a), Cell::Null) => a.push(None),
                _ => {
                    return Err(Error::internal(format!(
                        "a row of {table} holds a value of another type than its column's"
                    )))
                }
            }
        }
        self.len += 1;
        Ok(())
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.arrays
            .iter()
            .map(|a| match a {
                Array::Int(v) => v as &(dyn ToSql + Sync),
                Array::Text(v) => v as &(dyn ToSql + Sync),
                Array::Blob(v) => v as &(dyn ToSql + Sync),
            })
            .collect()
    }

    fn clear(&mut self) {
        for a in &mut self.arrays {
            match a {
                Array::Int(v) => v.clear(),
                Array::Text(v) => v.clear(),
                Array::Blob(v) => v.clear(),
            }
        }
        self.len = 0;
    }
}

/// Every ledger the database holds: (ledger id, position, when it was last written).
pub fn ledgers(client: &mut Client) -> Result<Vec<(String, i64, String)>> {
    let rows = client
        .query(
            &format!(
                "SELECT ledger_id, change_seq, to_char(replicated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
                 FROM {CONTROL_SCHEMA}.ledgers ORDER BY ledger_id"
            ),
            &[],
        )
        .pg("cannot list the ledgers")?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// A replica read for the integrity check: one repeatable-read snapshot of its schema.
struct ReplicaLedger<'a, 'b> {
    tx: &'a mut Transaction<'b>,
    /// The schema version the replica was made at.
    schema_version: u32,
}

impl crate::integrity::Ledger for ReplicaLedger<'_, '_> {
    fn mismatches(&mut self, sql: &str, keep: usize) -> Result<(Vec<(String, String)>, u64)> {
        use postgres::fallible_iterator::FallibleIterator;
        let sql = json_in_postgres(sql);
        // Each query in a savepoint of its own: one PostgreSQL refuses ends it alone, not
        // the snapshot the other parts of the check read.
        let mut query = self
            .tx
            .savepoint("check_query")
            .pg("a check failed to run")?;
        let ran = (|| {
            let params: [&(dyn ToSql + Sync); 0] = [];
            let mut rows = query.query_raw(sql.as_ref(), params)?;
            let (mut kept, mut all) = (Vec::new(), 0u64);
            while let Some(r) = rows.next()? {
                all += 1;
                if kept.len() < keep {
                    kept.push((r.get(0), r.get(1)));
                }
            }
            Ok::<_, postgres::Error>((kept, all))
        })();
        match ran {
            Ok(found) => {
                query.commit().pg("a check failed to run")?;
                Ok(found)
            }
            // A value the check's SQL cannot read as it must (an amount written `16667.0` in
            // an audit line, details that are not JSON): only an edit on the replica makes
            // one (remit writes whole numbers and JSON). SQLite's casts read such a value
            // without a word and its check goes on; PostgreSQL's refuse: said as a mismatch
            // of this check, and the check goes on (it stopped with no report at all until
            // 2026-12-07). A data exception is SQLSTATE class 22.
            Err(e) if e.code().is_some_and(|c| c.code().starts_with("22")) => {
                let said = e
                    .as_db_error()
                    .map_or_else(|| e.to_string(), |db| db.message().to_string());
                query.rollback().pg("a check failed to run")?;
                Ok((
                    vec![(
                        "a row".to_string(),
                        format!("holds a value this check cannot read, which remit never writes (PostgreSQL says: {said})"),
                    )],
                    1,
                ))
            }
            Err(e) => Err(pg_error("a check failed to run", &e)),
        }
    }

    fn audit_keys(&mut self) -> Result<Vec<(i64, String)>> {
        let rows = self
            .tx
            .query(
                "SELECT from_seq, key_enc FROM audit_keys ORDER BY from_seq",
                &[],
            )
            .pg("cannot read the audit keys")?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn audit_lines(&mut self, each: &mut dyn FnMut(&StoredLine)) -> Result<()> {
        use postgres::fallible_iterator::FallibleIterator;
        let params: [&(dyn ToSql + Sync); 0] = [];
        let mut rows = self
            .tx
            .query_raw(
                "SELECT seq, at, actor, action, entity, details, prev_mac, mac FROM audit_log ORDER BY seq",
                params,
            )
            .pg("cannot read the audit log")?;
        while let Some(r) = rows.next().pg("cannot read the audit log")? {
            each(&StoredLine {
                seq: r.get(0),
                at: r.get(1),
                actor: r.get(2),
                action: r.get(3),
                entity: r.get(4),
                details: r.get(5),
                prev_mac: r.get(6),
                mac: r.get(7),
            });
        }
        Ok(())
    }

    fn audit_head(&mut self) -> Result<Option<String>> {
        let row = self
            .tx
            .query_opt("SELECT value FROM meta WHERE key = 'audit_head'", &[])
            .pg("cannot read the record of the newest audit line")?;
        Ok(row.map(|r| r.get(0)))
    }

    fn newest_journal(&mut self) -> Result<crate::audit::NewestJournal> {
        let row = self
            .tx
            .query_opt(
                "SELECT id::bigint, created_at FROM ledger_transactions ORDER BY id DESC LIMIT 1",
                &[],
            )
            .pg("cannot read the journal")?;
        Ok(
            row.map_or_else(Default::default, |r| crate::audit::NewestJournal {
                id: r.get(0),
                at: Some(r.get(1)),
            }),
        )
    }

    /// Each append-only table has its trigger as `ddl::create_all` made it: enabled, before
    /// every `UPDATE` and `DELETE` of a row, calling `append_only()`, whose body is
    /// `ddl::APPEND_ONLY_BODY`.
    fn unguarded(&mut self) -> Result<Vec<(String, String)>> {
        // tgtype: ROW 1 | BEFORE 2 | DELETE 8 | UPDATE 16.
        const ROW_BEFORE_UPDATE_DELETE: i32 = 1 | 2 | 8 | 16;
        let rows = self
            .tx
            .query(
                // Every row, whatever changes: no `WHEN` condition, no column list; the
                // function as remit made it, word for word (its spacing aside).
                "SELECT c.relname::text, t.tgname::text, t.tgenabled::text IN ('O', 'A'),
                        t.tgtype::int, p.proname::text = 'append_only'
                            AND btrim(regexp_replace(p.prosrc, '\\s+', ' ', 'g')) = $1
                            AND t.tgqual IS NULL AND cardinality(t.tgattr::int2[]) = 0
                 FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_proc p ON p.oid = t.tgfoid
                 WHERE n.nspname = current_schema() AND NOT t.tgisinternal",
                &[&super::ddl::APPEND_ONLY_BODY],
            )
            .pg("cannot read the replica's triggers")?;
        let mut out = Vec::new();
        for table in crate::integrity::APPEND_ONLY {
            let name = format!("{table}_append_only");
            let found = rows
                .iter()
                .find(|r| r.get::<_, String>(0) == *table && r.get::<_, String>(1) == name);
            match found {
                None => out.push((
                    format!("table {table}"),
                    format!("its trigger {name} is missing"),
                )),
                Some(r)
                    if !r.get::<_, bool>(2)
                        || r.get::<_, i32>(3) & ROW_BEFORE_UPDATE_DELETE
                            != ROW_BEFORE_UPDATE_DELETE
                        || !r.get::<_, bool>(4) =>
                {
                    out.push((
                        format!("table {table}"),
                        format!("its trigger {name} is not the one remit made"),
                    ))
                }
                Some(_) => {}
            }
        }
        Ok(out)
    }

    fn schema_version(&self) -> Option<u32> {
        Some(self.schema_version)
    }

    fn holds_credentials(&self) -> bool {
        false
    }

    fn is_postgres(&self) -> bool {
        true
    }

    /// Every encrypted value of a replicated table opens under the key, bound to its row and
    /// column, as in the file (`LEFT_OUT` tables are not in the replica). Rows are streamed:
    /// the memory does not grow with the replica.
    fn sealed_problems(
        &mut self,
        keys: &crate::crypto::Keys,
    ) -> Result<Option<crate::integrity::Sealed>> {
        use postgres::fallible_iterator::FallibleIterator;
        let mut found = crate::integrity::Sealed::default();
        for column in crate::crypto::EncryptedColumn::ALL {
            let (table, name) = (column.table(), column.column());
            // A replica of an older schema may lack a column a later one sealed.
            let present: bool = self
                .tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM information_schema.columns
                     WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2)",
                    &[&table, &name],
                )
                .pg("cannot read the replica's columns")?
                .get(0);
            if source::LEFT_OUT.contains(&table) || !present {
                continue;
            }
            let index = column.index_column().unwrap_or("NULL::text");
            let sql = format!("SELECT id, {name}, {index} FROM {table} WHERE {name} IS NOT NULL");
            let mut rows = self
                .tx
                .query_raw(sql.as_str(), std::iter::empty::<i32>())
                .pg("cannot read the replica's encrypted values")?;
            while let Some(row) = rows
                .next()
                .pg("cannot read the replica's encrypted values")?
            {
                let (id, stored, index): (String, String, Option<String>) =
                    (row.get(0), row.get(1), row.get(2));
                found.open(keys, *column, (&id, &id), &stored, index.as_deref());
            }
        }
        Ok(Some(found))
    }
}

/// What `remit check --postgres` found: the replica's position and the report.
pub struct ReplicaCheck {
    /// The position the replica holds.
    pub position: Position,
    /// When it was last written (RFC 3339).
    pub replicated_at: String,
    /// The same report as the file's check.
    pub report: crate::integrity::Report,
}

/// Runs the integrity check on a ledger's replica, with the ledger's key; with `file` (the
/// ledger's own file, read only), compares the replica's rows with it too
/// (`compare::compare`).
pub fn check(
    target: &Target,
    ledger_id: &str,
    keys: &crate::crypto::Keys,
    file: Option<&Connection>,
) -> Result<ReplicaCheck> {
    let schema = schema_of(ledger_id)?;
    let mut client = target.connect()?;
    let mut tx = client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .pg("cannot begin")?;
    let exists: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            &[&CONTROL_SCHEMA],
        )
        .pg("cannot read the catalog")?
        .get(0);
    let found = if exists {
        let has_newest = control_has_newest_rows(&mut tx)?;
        position_of(&mut tx, ledger_id, false, has_newest)?
    } else {
        None
    };
    let Some(Recorded {
        position,
        schema_version: replica_version,
        ..
    }) = found.filter(|r| r.position.change_seq >= 0)
    else {
        return Err(Error::internal(format!(
            "{} holds no replica of ledger {ledger_id}",
            target.display()
        )));
    };
    let replicated_at: String = tx
        .query_one(
            &format!(
                "SELECT to_char(replicated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
                 FROM {CONTROL_SCHEMA}.ledgers WHERE ledger_id = $1"
            ),
            &[&ledger_id],
        )
        .pg("cannot read the replica's position")?
        .get(0);
    tx.batch_execute(&format!("SET LOCAL search_path TO {schema}"))
        .pg("cannot open the ledger's schema")?;
    let key_check: Option<String> = tx
        .query_opt("SELECT value FROM meta WHERE key = 'key_check'", &[])
        .pg("cannot read the key check")?
        .map(|r| r.get(0));
    if !key_check
        .is_some_and(|k| crate::crypto::constant_time_eq(k.as_bytes(), keys.key_check.as_bytes()))
    {
        return Err(Error::internal(format!(
            "the key is not the one ledger {ledger_id}'s replica holds (give its key with --key-file; after a key rotation, the replica takes the new key once replication has caught up with it)"
        )));
    }
    let mut report = crate::integrity::check_ledger(
        &mut ReplicaLedger {
            tx: &mut tx,
            schema_version: replica_version as u32,
        },
        keys,
    )?;
    if let Some(file) = file {
        let file_version = crate::store::schema_version(file)?;
        if source::replica_outdated(replica_version as u32, file_version) {
            // Its tables are of an older schema until replication makes it again.
            report.checks.push(format!(
                "the replica's rows against the file's: not compared (the replica is of schema version {replica_version}, the file of {file_version}; replication makes it again at its next cycle)"
            ));
        } else {
            let shapes = source::shapes(file)?;
            let compared = super::compare::compare(&mut tx, &schema, file, &shapes, &position)?;
            report.checks.push(compared.check);
            report.mismatches.extend(compared.mismatches);
        }
    }
    tx.commit().pg("cannot end the check")?;
    Ok(ReplicaCheck {
        position,
        replicated_at,
        report,
    })
}

/// Refuses to drop a replica's schema that objects outside it depend on (a reporting view
/// over every kiosk's escrows, a foreign key of another table): `DROP SCHEMA … CASCADE` took
/// them with it without a word. remit drops only what it made; the operator drops (and makes
/// again after) what is theirs.
fn refuse_if_used_outside(tx: &mut postgres::Transaction<'_>, schema: &str) -> Result<()> {
    let rows = tx
        .query(
            "SELECT DISTINCT dn.nspname || '.' || dc.relname || CASE dc.relkind WHEN 'm' THEN ' (a materialized view)' ELSE ' (a view)' END
             FROM pg_depend d
             JOIN pg_class rc ON d.refclassid = 'pg_class'::regclass AND d.refobjid = rc.oid
             JOIN pg_namespace rn ON rn.oid = rc.relnamespace AND rn.nspname = $1
             JOIN pg_rewrite rw ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
             JOIN pg_class dc ON dc.oid = rw.ev_class
             JOIN pg_namespace dn ON dn.oid = dc.relnamespace AND dn.nspname <> $1
             UNION
             SELECT DISTINCT n.nspname || '.' || c.relname || ' (its foreign key ' || con.conname || ')'
             FROM pg_constraint con
             JOIN pg_class rc ON rc.oid = con.confrelid
             JOIN pg_namespace rn ON rn.oid = rc.relnamespace AND rn.nspname = $1
             JOIN pg_class c ON c.oid = con.conrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname <> $1
             WHERE con.contype = 'f'
             ORDER BY 1",
            &[&schema],
        )
        .pg("cannot read what depends on the replica")?;
    if rows.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    Err(Error::internal(format!(
        "the replica's schema {schema} must be made again (a first copy, a new schema version, or --drop), but PostgreSQL says objects outside it depend on it: {}; drop them in PostgreSQL (and make them again once the replica is back): remit drops only what it made",
        names.join(", ")
    )))
}

/// Drops a ledger's replica (its schema and its position), so that the next replication
/// copies it again from scratch.
pub fn drop_replica(target: &Target, ledger_id: &str) -> Result<bool> {
    let schema = schema_of(ledger_id)?;
    let mut client = target.connect()?;
    bootstrap(&mut client)?;
    let mut tx = client.transaction().pg("cannot begin")?;
    let n = tx
        .execute(
            &format!("DELETE FROM {CONTROL_SCHEMA}.ledgers WHERE ledger_id = $1"),
            &[&ledger_id],
        )
        .pg("cannot drop the ledger's position")?;
    refuse_if_used_outside(&mut tx, &schema)?;
    tx.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .pg("cannot drop the ledger's schema")?;
    tx.commit().pg("cannot commit")?;
    Ok(n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checks_json_reads_as_postgres_reads_it() {
        assert_eq!(
            json_in_postgres(
                "SELECT CAST(json_extract(a.details, '$.amountUsdCents') AS BIGINT), json_extract(coalesce(a.x, 'y'), '$.p') FROM t"
            ),
            "SELECT CAST(((a.details)::jsonb ->> 'amountUsdCents') AS BIGINT), ((coalesce(a.x, 'y'))::jsonb ->> 'p') FROM t"
        );
        assert_eq!(json_in_postgres("SELECT 1"), "SELECT 1");
        // Every check's query, translated, has no json_extract left.
        for (name, sql) in crate::integrity::LEDGER_CHECKS
            .iter()
            .chain(crate::integrity::POSTGRES_FORMS)
        {
            assert!(!json_in_postgres(sql).contains("json_extract"), "{name}");
        }
    }

    /// The `postgres` crate refuses a bad connection string with "invalid connection string"
    /// alone: remit says what is wrong, never quoting a value (a password may be among them).
    #[test]
    fn a_refused_connection_string_is_told_why_without_its_password() {
        for (url, says) in [
            (
                "mysql://u:s3cret@h/db",
                "must begin with postgres:// or postgresql://",
            ),
            (
                "postgres://u:s3cret@h/db?sslmode=bogus",
                "sslmode takes disable, prefer or require",
            ),
            (
                "postgres://u:s3cret@h/db?sslmode=verify-full",
                "so require is verify-full here",
            ),
            ("postgres://u:s3cret@h/db?foo=bar", "does not know, \"foo\""),
            (
                "postgres://u:s3cret@h/db?connect_timeout=x",
                "connect_timeout takes a whole number",
            ),
            // A `?` in the password, and a port mistyped.
            (
                "postgres://u:ab?s3cret@h:54x2/db",
                "the port must be a number",
            ),
            // An `@` in the password, unencoded: its end would be taken for the host.
            ("postgres://u:ab@s3cret@h:5432/db", "must be written %40"),
            // The same in a password given as a parameter: the text before it would have been
            // the user, and its end the host, both shown.
            (
                "postgres://127.0.0.1:5432/pilot?user=u&password=ab@s3cret",
                "in its password parameter (?password=): write it %40",
            ),
            (
                "postgres://h?password=ab@s3cret",
                "in its password parameter (?password=): write it %40",
            ),
            (
                "postgres://u:s3cret@h:563500/db",
                "the port must be a number from 1 to 65535",
            ),
            (
                "postgres://u:s3cret@h:0/db",
                "a port is a number from 1 to 65535",
            ),
        ] {
            let refused = Target::parse("--to", url, None)
                .err()
                .map(|e| e.to_string());
            let text = refused.unwrap_or_default();
            assert!(text.contains(says), "{url}: {text}");
            assert!(!text.contains("s3cret"), "{url}: {text}");
        }
        assert!(Target::parse("--to", "postgres://u:s3cret@h/db?sslmode=require", None).is_ok());
        // A password holding '/' and '=' (base64), as the client has always taken it.
        let base64 = Target::parse("--to", "postgres://u:Zk3/9q+Xw=@h:5432/db", None).unwrap();
        assert_eq!(base64.display(), "postgres://u@h:5432/db");
        // An IPv6 host is shown as a URL writes it.
        let v6 = Target::parse("--to", "postgres://u:s3cret@[::1]:5432/db", None).unwrap();
        assert_eq!(v6.display(), "postgres://u@[::1]:5432/db");
        // PostgreSQL's `key=value` form, with the same rules.
        let words = Target::parse(
            "--to",
            "host=h port=5433 user=u password=s3cret dbname=db",
            None,
        )
        .unwrap();
        assert_eq!(words.display(), "postgres://u@h:5433/db");
        for (words, says) in [
            (
                "host=h user=u password=s3cret sslmode=verify-full",
                "so require is verify-full here",
            ),
            (
                "host=h user=u password=s3cret foo=bar",
                "does not know, \"foo\"",
            ),
            (
                "host=h user=u password=s3cret port=0",
                "a port is a number from 1 to 65535",
            ),
            ("user=u password=s3cret", "names no host"),
            // Spaces around `=` are PostgreSQL's too: a password's piece is never read as a
            // parameter's name, and the string is not explained.
            (
                "host=h user=u password= s3cret=two sslmode=verify-full",
                "is not a PostgreSQL connection string",
            ),
        ] {
            let text = Target::parse("--to", words, None)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(text.contains(says), "{words}: {text}");
            assert!(!text.contains("s3cret"), "{words}: {text}");
        }
    }

    /// A certificate no root vouches for is told what to do; with a CA file named, that the
    /// file does not hold its CA (not to put one in a file that is already there).
    #[test]
    fn a_refused_certificate_is_told_with_the_ca_file_in_view() {
        let cause = "invalid peer certificate: UnknownIssuer";
        assert!(tls_hint(cause, None).contains("in the file REMIT_REPLICATE_CA_FILE names"));
        let named = tls_hint(cause, Some(Path::new("/etc/remit/ca.pem")));
        assert!(
            named.contains("nor by a CA in /etc/remit/ca.pem") && !named.contains("names)"),
            "{named}"
        );
        assert_eq!(tls_hint("Connection refused", None), "");
    }

    #[test]
    fn a_listing_that_lacks_a_changed_row_of_the_checked_table_is_refused_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        crate::store::migrate(&mut Connection::open(&path).unwrap()).unwrap();
        let conn = Connection::open(&path).unwrap();
        let shapes = source::shapes(&conn).unwrap();
        assert_eq!(shapes[0].table.name, "meta");
        // Before the first copy: every row changed after it.
        let since = Position::start();
        let meta: Vec<i64> = conn
            .prepare("SELECT rowid FROM meta ORDER BY rowid")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(meta.len() >= 2, "{meta:?}");
        let listing = |rowids: &[i64]| {
            let mut listed = ChangedRows::default();
            listed.rowids.insert("meta".into(), rowids.to_vec());
            listed
        };
        // Every row listed: read by the list, and the next check goes to the next table.
        let start = |i: usize| (i, None);
        let mut at = start(0);
        let read = read_changes(&conn, &shapes, &since, Some(&listing(&meta)), &mut at)
            .unwrap()
            .expect("the list agrees with the scan");
        assert_eq!(read[0].len(), meta.len());
        assert_eq!(at, start(1));
        // One row left out: the whole cycle's list is refused (the caller scans instead).
        let mut at = start(0);
        let refused = read_changes(&conn, &shapes, &since, Some(&listing(&meta[1..])), &mut at);
        assert!(refused.unwrap().is_none());
        // Checked elsewhere, the same list is not refused here (a slice at a time).
        let mut at = start(2);
        let elsewhere = read_changes(&conn, &shapes, &since, Some(&listing(&meta[1..])), &mut at);
        assert!(elsewhere.unwrap().is_some());

        // A keyed table (`WITHOUT ROWID`) is checked by key: a changed user the list leaves
        // out is found by its slice.
        let users = shapes.iter().position(|s| s.table.name == "users").unwrap();
        assert!(!shapes[users].rowid);
        conn.execute(
            "INSERT INTO users (id, role, name_enc, created_at, change_seq)
             VALUES ('usr_a', 'agent', 'sealed', '2026-12-02T00:00:00Z', 1),
                    ('usr_b', 'agent', 'sealed', '2026-12-02T00:00:00Z', 1)",
            [],
        )
        .unwrap();
        let keyed = |keys: &[&str]| {
            let mut listed = listing(&meta);
            listed
                .keys
                .insert("users".into(), keys.iter().map(|k| k.to_string()).collect());
            listed
        };
        let mut at = start(users);
        let read = read_changes(
            &conn,
            &shapes,
            &since,
            Some(&keyed(&["usr_a", "usr_b"])),
            &mut at,
        )
        .unwrap()
        .expect("the keys agree with the scan");
        assert_eq!(read[users].len(), 2);
        let mut at = start(users);
        let refused = read_changes(&conn, &shapes, &since, Some(&keyed(&["usr_b"])), &mut at);
        assert!(refused.unwrap().is_none());
    }
}
