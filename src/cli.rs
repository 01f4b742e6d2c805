//! The command line: `remit [serve]`, `user`, `token`, `fx`, `check`, `backup`, `rotate-key`,
//! `replicate`, `daraja ping`.
//! Flags override environment variables (and a `.env` file in the working directory), which
//! override the defaults.

use crate::config::Config;
use crate::crypto::{KeySource, MasterKey};
use crate::error::{describe, Error, Result};
use crate::money::RateKesPerUsd;
use crate::service::users::NewUser;
use crate::service::{Actor, Role};
use crate::store;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::path::{Path, PathBuf};

/// The settings every command reads (the ledger's own), as `--help` lists them.
macro_rules! ledger_environment {
    () => {
        concat!(
            "  ENCRYPTION_KEY                  64 hex characters (default: the key file <db>.key)\n",
            "  REMIT_DB                        the database file (./remit.db; --db wins)\n",
            "  REMIT_SYNCHRONOUS               full (default) or normal\n",
            "  REMIT_WAL_MAX_MB                the write-ahead log is kept under this size, 4 to 4096 (64)\n",
        )
    };
}

/// And replication's.
macro_rules! replication_environment {
    () => {
        concat!(
            "  REMIT_REPLICATE_TO              postgres://user:password@host/db (replicate --to, check --postgres URL win)\n",
            "  REMIT_REPLICATE_CA_FILE         PEM certificates PostgreSQL's TLS certificate may chain to\n",
        )
    };
}

/// What a command that works on the ledger alone reads (`user`, `token`, `fx`, `backup`,
/// `restore`, `rotate-key`): the server's settings are neither read nor checked there.
const LEDGER_HELP: &str = concat!(
    "Environment (also read from ./.env; the README's Configuration table has the details):\n",
    ledger_environment!(),
    "  RUST_LOG                        log level (info)"
);

/// What `replicate` and `check` read (`check --postgres` replicates' settings).
const REPLICATION_HELP: &str = concat!(
    "Environment (also read from ./.env; the README's Configuration table has the details):\n",
    ledger_environment!(),
    replication_environment!(),
    "  RUST_LOG                        log level (info)"
);

/// The settings read from the environment (or `.env`) by the server (and `daraja ping`, which
/// checks the server's configuration), shown under `--help`.
const ENVIRONMENT_HELP: &str = "\
Environment (also read from ./.env; the README's Configuration table has the details):
  ENCRYPTION_KEY                  64 hex characters (default: the key file <db>.key)
  REMIT_DB                        the database file (./remit.db; --db wins)
  REMIT_ADDR                      the listen address, HOST:PORT (--addr wins)
  PORT                            listen on 127.0.0.1:$PORT (REMIT_ADDR and --addr win)
  REMIT_WORKERS                   HTTP worker threads, 1 to 256 (48; --workers wins)
  REMIT_SYNCHRONOUS               full (default) or normal
  REMIT_MAX_CONNECTIONS           open connections at once, 16 to 16384 (1024)
  REMIT_REQUEST_TTL_H             hours a payment request waits for approval, 1 to 720 (72)
  REMIT_MAX_ESCROW_USD, REMIT_MAX_REQUEST_KES   amount limits (10000, 1000000)
  REMIT_METRICS_PUBLIC            0 puts /metrics behind an admin token (1: open)
  REMIT_STRIPE_WEBHOOK_SECRET     whsec_...; without it Stripe events are refused
  REMIT_STRIPE_LIVEMODE           true: live-mode Stripe events only (false)
  REMIT_MPESA_CALLBACK_TOKEN      the M-Pesa result URL's secret (>= 32 lowercase hex)
  REMIT_GATEWAY                   simulator (default), daraja or none
  REMIT_SIM_DELAY_MS, REMIT_SIM_FAIL_ACCOUNTS, REMIT_SIM_TIMEOUT_ACCOUNTS   the simulator (2000 ms)
  REMIT_PAYOUT_TIMEOUT_S          when an unanswered payout is stuck, 1 to 604800 (600)
  REMIT_DARAJA_URL                Daraja's base URL (the sandbox by default)
  REMIT_DARAJA_CONSUMER_KEY, REMIT_DARAJA_CONSUMER_SECRET   the Daraja app's credentials
  REMIT_DARAJA_SHORTCODE          our shortcode
  REMIT_DARAJA_INITIATOR          the API operator's user name
  REMIT_DARAJA_INITIATOR_PASSWORD, REMIT_DARAJA_CERT   the operator's password, M-Pesa's PEM certificate
  REMIT_DARAJA_SECURITY_CREDENTIAL   or the credential ready-made
  REMIT_DARAJA_B2C_COMMAND        BusinessPayment (default), SalaryPayment or PromotionPayment
  REMIT_DARAJA_TIMEOUT_S          the longest one call to Daraja may take (30)
  REMIT_PUBLIC_URL                https://... where M-Pesa posts results
  REMIT_PAYOUT_STATUS_AFTER_S     ask Transaction Status after this long without a result, 1 to 86400 (120)
  REMIT_FLOAT_CHECK_S, REMIT_FLOAT_ALERT_KES   balance check interval, 60 to 86400 (900), low-float alert (0)
  REMIT_CALLBACK_ALLOW_IPS        addresses or CIDRs that may post M-Pesa results
  REMIT_TRUSTED_PROXY             the proxy whose X-Forwarded-For is believed
  REMIT_UI_IDLE_S                 the web UI signs out after this long without input (300; 0 never)
  REMIT_WAL_MAX_MB                the write-ahead log is kept under this size, 4 to 4096 (64)
  REMIT_WEBHOOK_ALLOW_PRIVATE     true: webhooks may go to private, link-local and unique-local addresses (false)
  REMIT_SMS_GATEWAY               log (default: recorded, nothing sent) or africastalking
  REMIT_SMS_LANGUAGE              en (default) or sw: the texts' language for a recipient made by an escrow
  REMIT_NOTIFICATIONS_KEEP_DAYS   days ended webhook deliveries, texts and their events are kept (30)
  REMIT_AT_USERNAME, REMIT_AT_API_KEY   the Africa's Talking application (sandbox: user sandbox)
  REMIT_AT_SENDER_ID              a registered sender id or short code (the account's default if unset)
  REMIT_AT_URL                    Africa's Talking's base URL (by the user: sandbox or production)
  REMIT_REPLICATE_TO              postgres://user:password@host/db: serve replicates the ledger there
  REMIT_REPLICATE_CA_FILE         PEM certificates PostgreSQL's TLS certificate may chain to
  RUST_LOG                        log level (info)";

/// remit: an escrowed remittance ledger on one SQLite file.
#[derive(Parser, Debug)]
#[command(name = "remit", version, about, long_about = None, after_help = ENVIRONMENT_HELP)]
pub struct Cli {
    /// The database file.
    #[arg(long, global = true, env = "REMIT_DB", default_value = "./remit.db")]
    pub db: PathBuf,
    /// With no command, `remit` serves: these are `remit serve`'s options.
    #[command(flatten)]
    serve: ServeArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server (the default command).
    #[command(after_help = ENVIRONMENT_HELP)]
    Serve(ServeArgs),
    /// Manage users.
    #[command(subcommand, after_help = LEDGER_HELP)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand, after_help = LEDGER_HELP)]
    Token(TokenCommand),
    /// Manage exchange rates.
    #[command(subcommand, after_help = LEDGER_HELP)]
    Fx(FxCommand),
    /// Check the ledger's integrity: exit 0 clean, 1 mismatches, 2 could not run.
    #[command(after_help = REPLICATION_HELP)]
    Check {
        /// A file holding the key as 64 hex characters (a backup whose key is kept elsewhere);
        /// else ENCRYPTION_KEY or the key file beside the database.
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// Check the ledger's replica in this PostgreSQL instead of the file
        /// (postgres://user:password@host/db); `--postgres` alone takes REMIT_REPLICATE_TO, which
        /// keeps a password out of the command line (and of `ps`).
        #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = POSTGRES_FROM_ENV)]
        postgres: Option<String>,
        /// With --postgres: the ledger to check (ldg_…), when it is not the one of --db; give
        /// its key with --key-file.
        #[arg(long, value_name = "ID", requires = "postgres")]
        ledger: Option<String>,
    },
    /// Replicate the ledger continuously into PostgreSQL (until SIGTERM or SIGINT).
    #[command(after_help = REPLICATION_HELP)]
    Replicate {
        /// postgres://user:password@host:port/db (default REMIT_REPLICATE_TO).
        #[arg(long, value_name = "URL")]
        to: Option<String>,
        /// Copy what is committed now, then exit.
        #[arg(long)]
        once: bool,
        /// Drop this ledger's replica (its schema and position) and exit: the next replication
        /// copies it again from scratch.
        #[arg(long, conflicts_with = "once")]
        drop: bool,
        /// With --drop: the ledger whose replica to drop (ldg_…), when it is not the one of
        /// --db (a ledger a restore replaced, a kiosk out of service); no file or key is read.
        #[arg(long, value_name = "ID", requires = "drop")]
        ledger: Option<String>,
    },
    /// Make a consistent online backup (safe while the server runs), then check the copy's
    /// journal, balances and audit chain (its pages and encrypted values are checked by
    /// `remit check` only).
    #[command(after_help = LEDGER_HELP)]
    Backup {
        /// The new backup file (must not exist).
        file: PathBuf,
    },
    /// Put a checked backup in the database's place (stop the server first).
    ///
    /// The backup is checked under the database's key, the database it replaces is kept beside
    /// it with its log (`<db>.before-restore-<time>-<pid>`), and no stale log is left beside the
    /// restored copy.
    #[command(after_help = LEDGER_HELP)]
    Restore {
        /// The backup file to restore (`remit backup` made it).
        #[arg(required_unless_present = "done")]
        backup: Option<PathBuf>,
        /// The restore's lines about money are done (its `.since-the-backup.txt`): let the
        /// server send payouts again. Until then a ledger whose restore named money to settle by
        /// hand starts only with no payout gateway (the gateway setting `none`).
        #[arg(long, conflicts_with = "backup")]
        done: bool,
        /// The backup is of another ledger than the one at --db (another kiosk's, moved here):
        /// restore it in that ledger's place all the same (without it, refused).
        #[arg(long, conflicts_with = "done")]
        other_ledger: bool,
    },
    /// Re-encrypt all PII under a new key (stop the server first).
    ///
    /// When the key is the key file's (`<db>.key`), a copy of the old key is kept beside it
    /// (`<db>.key.before-rotate-<time>`) and the key file takes the new key once the ledger is
    /// under it; when it is ENCRYPTION_KEY's, set the variable to the new key before the next
    /// start. Keep the old key as long as any backup made before the rotation. The file is then
    /// rebuilt without the old key's copies (free disk about the ledger's size): a rebuild that
    /// failed or was stopped is made by the next start or command. A replica in PostgreSQL keeps
    /// the rows' old versions until it rewrites them (README, "Key rotation").
    #[command(after_help = LEDGER_HELP)]
    RotateKey {
        /// A file holding the new key as 64 hex characters.
        #[arg(long)]
        new_key_file: PathBuf,
    },
    /// Check the M-Pesa Daraja configuration (REMIT_GATEWAY=daraja and REMIT_DARAJA_*).
    #[command(subcommand, after_help = ENVIRONMENT_HELP)]
    Daraja(DarajaCommand),
}

#[derive(Subcommand, Debug)]
enum DarajaCommand {
    /// Get a token and ask for the account balance; exit 0 only when both worked.
    #[command(after_help = ENVIRONMENT_HELP)]
    Ping,
}

#[derive(Args, Debug, Default)]
struct ServeArgs {
    /// The server's listen address, HOST:PORT (default 127.0.0.1:3000, or 127.0.0.1:$PORT; the flag wins over REMIT_ADDR, which wins over PORT).
    #[arg(long)]
    addr: Option<String>,
    /// Listen on 127.0.0.1:PORT (loopback; --addr for another host); wins over REMIT_ADDR and PORT.
    #[arg(long, conflicts_with = "addr", value_parser = clap::value_parser!(u16).range(1..))]
    port: Option<u16>,
    /// The server also creates demo users and escrows and prints their tokens (with the simulator only).
    #[arg(long)]
    demo: bool,
    /// The server's HTTP worker threads, 1 to 256 (default 48; the flag wins over REMIT_WORKERS).
    #[arg(
        long,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new()
            .range(1..=crate::limits::HTTP_WORKERS_MAX as u64)
    )]
    workers: Option<usize>,
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Create a user; prints only the new token on stdout.
    #[command(after_help = LEDGER_HELP)]
    Add {
        /// sender, recipient, agent or admin (lowercase).
        #[arg(long)]
        role: String,
        /// Display name: 1 to 200 characters, no control or invisible characters, line
        /// separators or text-direction controls (embeddings, overrides, isolates).
        #[arg(long)]
        name: String,
        /// Kenyan mobile number, as written locally or internationally (0712 345 678,
        /// +254712345678, 254712345678); required for recipients.
        #[arg(long)]
        phone: Option<String>,
        /// The language of their SMS: en (default) or sw.
        #[arg(long)]
        language: Option<String>,
    },
    /// List users and their tokens (by prefix).
    #[command(after_help = LEDGER_HELP)]
    List,
    /// Set the language of a user's SMS (a recipient made by an escrow to their phone starts in
    /// English).
    #[command(after_help = LEDGER_HELP)]
    Language {
        /// The user: their id (`usr_…`, as `user list` shows) or their phone number.
        user: String,
        /// en or sw.
        language: String,
    },
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Give a user a new token (a recipient who cannot sign in yet, a lost token); prints only
    /// the token.
    #[command(after_help = LEDGER_HELP)]
    Issue {
        /// The user: their id (`usr_…`, as `user list` shows) or their phone number.
        user: String,
    },
    /// Revoke a token: its prefix as `user list` shows it (`rmt_…`), or the whole token.
    #[command(after_help = LEDGER_HELP)]
    Revoke {
        /// The token's prefix, or the whole token.
        token: String,
    },
}

#[derive(Subcommand, Debug)]
enum FxCommand {
    /// Show the rate in use: `remit fx get` (or `remit fx get USD-KES`).
    #[command(after_help = LEDGER_HELP)]
    Get {
        /// The pair; only USD-KES (any case).
        pair: Option<String>,
    },
    /// Set a rate: `remit fx set USD-KES 152.25`. New payment requests, and cash taken in KES,
    /// are priced at it from then on. A rate more than five times away from the one in use (a
    /// decimal point dropped or added: 15225 for 152.25) is refused unless `--force` is given.
    #[command(after_help = LEDGER_HELP)]
    Set {
        /// The pair; only USD-KES (any case).
        pair: String,
        /// KES per USD: 0.0001 to 100000, at most 4 decimals.
        rate: String,
        /// Set a rate more than five times away from the one in use.
        #[arg(long)]
        force: bool,
    },
}

/// How far `rate` is from `before` when it is more than five times away either way ("1000 times
/// lower"), else `None`.
fn far_from(before: RateKesPerUsd, rate: RateKesPerUsd) -> Option<String> {
    let factor = rate.e4() as f64 / before.e4().max(1) as f64;
    let words = |x: f64| {
        if x >= 100.0 {
            format!("{x:.0}")
        } else {
            format!("{x:.1}")
        }
    };
    if factor > 5.0 {
        Some(format!("{} times higher", words(factor)))
    } else if factor < 0.2 {
        Some(format!("{} times lower", words(1.0 / factor)))
    } else {
        None
    }
}

/// The one pair remit knows, typed in any case.
fn usd_kes(pair: &str) -> Result<()> {
    if pair.eq_ignore_ascii_case("USD-KES") {
        Ok(())
    } else {
        Err(Error::invalid("PAIR", "only USD-KES is supported"))
    }
}

/// A validation error of a service, renamed to the command-line option that carried the
/// value (`phone` → `--phone`), so the message names what the operator typed.
fn as_option(error: Error, field: &str, option: &str) -> Error {
    match error {
        Error::Validation { field: f, message } if f == field => Error::Validation {
            field: option.to_string(),
            message,
        },
        other => other,
    }
}

/// What `main` should exit with.
pub type ExitCode = i32;

/// Refuses a path where there is no database: only `serve` creates one.
fn require_db(config: &Config) -> Result<()> {
    store::existing_database(&config.db)
}

fn open_existing(config: &Config) -> Result<(std::fs::File, store::Store)> {
    open_existing_beside(config, true)
}

/// `open_existing`; `beside_server` false for a command that holds the ledger's own lock
/// (`ops::lock`: no server can run), whose lock the store would take for a server's.
fn open_existing_beside(
    config: &Config,
    beside_server: bool,
) -> Result<(std::fs::File, store::Store)> {
    require_db(config)?;
    crate::ops::settle_before_use(&config.db)?;
    let lock = crate::ops::key_lock(&config.db, crate::ops::KeyUse::Shared)?;
    let mut options = config.open_options(false);
    // A server beside it may hold the file's write lock batch after batch.
    options.busy_wait = std::time::Duration::from_secs(crate::limits::CLI_BUSY_WAIT_S);
    options.beside_server = beside_server;
    Ok((lock, store::open(&options)?))
}

/// A read of an existing ledger for a command that only reads (`user list`, `fx get`): through
/// the store, as the other commands open it (migrating an older file, waiting out a key
/// rotation); or, when this user may not write the file (a ledger on a stick set read-only,
/// another user's) or it is a backup (no write-ahead log: `store::keeps_a_log`), on a
/// read-only connection as `remit check` reads, which asks the file to be of this version and
/// writes nothing beside it (the store changed a backup's bytes and left a log, its shared
/// memory and a lock file beside it).
fn read_existing<T>(
    config: &Config,
    read: impl FnOnce(&rusqlite::Connection, &crate::crypto::Keys) -> Result<T>,
) -> Result<T> {
    require_db(config)?;
    // (Nothing is made beside another program's database, the lock file below included.)
    store::a_file_or_nothing(&config.db)?;
    store::not_another_programs(&config.db)?;
    // A ledger (not a backup: nothing is made beside one), writable, whose key lock file can
    // be had (a directory this user may not write has none to make).
    let backup =
        !store::keeps_a_log(&config.db) && store::what_it_holds(&config.db) == store::Holds::Ledger;
    let through_store = !backup
        && std::fs::OpenOptions::new()
            .write(true)
            .open(&config.db)
            .is_ok()
        && crate::ops::open_beside(
            &config.db,
            &crate::ops::beside(&config.db, ".keylock"),
            false,
        )
        .is_ok();
    if through_store || !config.db.exists() {
        let (_key_lock, store) = open_existing(config)?;
        return store.read(read);
    }
    let (conn, keys) = store::open_for_check(&config.db, config.key_hex.as_deref())?;
    let read_at_once = conn.unchecked_transaction()?;
    let value = read(&read_at_once, &keys)?;
    read_at_once.finish()?;
    Ok(value)
}

/// The command that checks a backup `file` with the key the ledger was opened with, as it can
/// be pasted: the key file named (a backup has none beside it), or `ENCRYPTION_KEY` said.
fn check_command(file: &Path, source: &KeySource) -> String {
    let quoted = |p: &Path| {
        let text = p.display().to_string();
        let plain = !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/._-+:@%,".contains(&b));
        if plain {
            text
        } else {
            format!("'{}'", text.replace('\'', "'\\''"))
        }
    };
    match source {
        KeySource::Environment => format!(
            "`remit check --db {}` and ENCRYPTION_KEY set as now (after a key rotation, to the key from before it)",
            quoted(file)
        ),
        KeySource::File(key) | KeySource::Created(key) => format!(
            "`remit check --db {} --key-file {}` (keep that key file: the backup has none beside it; after a key rotation, the key it is under is the copy the rotation keeps, {}.before-rotate-…)",
            quoted(file),
            quoted(key),
            key.display()
        ),
    }
}

fn describe_key(source: &KeySource) -> String {
    match source {
        KeySource::Environment => "from ENCRYPTION_KEY".into(),
        KeySource::File(p) => format!("from key file {}", p.display()),
        KeySource::Created(p) => format!(
            "made just now in the key file {} (back it up: without it the data cannot be read)",
            p.display()
        ),
    }
}

impl Cli {
    /// May the command end quietly when the reader of its output goes away
    /// (`remit user list | head -1`)? Not the server, which must stop as it always does, and
    /// not a command that prints a new token, shown once: its loss must be said.
    pub fn may_end_on_a_closed_pipe(&self) -> bool {
        !matches!(
            self.command,
            None | Some(Command::Serve(_))
                | Some(Command::User(UserCommand::Add { .. }))
                | Some(Command::Token(TokenCommand::Issue { .. }))
        )
    }

    /// The command line of this process. `--db` goes anywhere (`remit --db F check` and
    /// `remit check --db F` alike); the server's own options (`--addr`, `--demo`, `--workers`)
    /// go with no command (`remit --addr …`) or after `serve`, never before a command, where
    /// they would mean nothing.
    pub fn from_command_line() -> Cli {
        let db_env = std::env::var_os("REMIT_DB").map(|v| v.to_string_lossy().into_owned());
        // Every `--db` given, and the last one's value.
        let args: Vec<String> = std::env::args_os()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let (mut db_flags, mut flag_value) = (0, None);
        for (at, arg) in args.iter().enumerate() {
            if arg == "--db" {
                db_flags += 1;
                flag_value = args.get(at + 1).cloned();
            } else if let Some(value) = arg.strip_prefix("--db=") {
                db_flags += 1;
                flag_value = Some(value.to_string());
            }
        }
        let db_flag = db_flags > 0;
        // `--db ./remit.db\r`, the last word of a script saved with Windows' line ends: a file
        // whose name ends in a carriage return would be a new, empty ledger beside the real one.
        if let Some(value) = flag_value.filter(|v| v.chars().any(char::is_control)) {
            Cli::command()
                .error(
                    clap::error::ErrorKind::InvalidValue,
                    format!(
                        "--db {value:?} holds a control character (a carriage return from a script saved with Windows' line ends?): remove it; a file of that name would be a new, empty ledger"
                    ),
                )
                .exit();
        }
        // `remit --db a.db check --db b.db`: clap keeps the last of a global option, and the
        // first ledger named was silently not the one used.
        if db_flags > 1 {
            Cli::command()
                .error(
                    clap::error::ErrorKind::ArgumentConflict,
                    "--db is given more than once: name one database",
                )
                .exit();
        }
        // `REMIT_DB=` (a template's blank, a script's unset variable) is not "no setting": clap
        // would say `--db` lacks a value, and blanks would name a file of blanks. And
        // `REMIT_DB=/var/lib/remit/remit.db  # the ledger` in an environment file names a file
        // with the comment in its name: `serve` would make a new, empty ledger there.
        let blank_db = db_env.as_deref().is_some_and(|v| v.trim().is_empty());
        let refused = match db_env.as_deref() {
            _ if db_flag => None,
            Some(_) if blank_db => Some(
                "REMIT_DB is set but empty: set it to the database file, or unset it (then --db PATH, else ./remit.db)"
                    .to_string(),
            ),
            Some(v) if v.contains(" #") => Some(format!(
                "REMIT_DB holds \" #\"{}",
                crate::config::comment_hint(v)
            )),
            // `REMIT_DB=./remit.db\r` from an environment file written on Windows, or a space
            // after the name: a file of that name would be a new, empty ledger, and the log's
            // `database ./remit.db` would look right.
            Some(v) if v != v.trim() || v.chars().any(char::is_control) => Some(format!(
                "REMIT_DB {v:?} has white space around it or a control character in it (a carriage return from a file written on Windows?): remove it; a file of that name would be a new, empty ledger"
            )),
            _ => None,
        };
        if let Some(why) = refused {
            Cli::command()
                .error(clap::error::ErrorKind::InvalidValue, why)
                .exit();
        }
        if blank_db {
            // `--db` says where the file is; clap would still refuse the blank it does not use.
            // Nothing else runs yet to read the environment meanwhile.
            std::env::remove_var("REMIT_DB");
        }
        let matches = Cli::command()
            .try_get_matches()
            .unwrap_or_else(|e| exit_saying(e));
        if let Some(command) = matches.subcommand_name() {
            let on_the_line = |m: &clap::ArgMatches, id: &str| {
                m.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
            };
            for id in ["addr", "port", "demo", "workers"] {
                if on_the_line(&matches, id) {
                    // `remit --port 3001 serve` is `remit serve --port 3001`, unless `serve`
                    // is given the same (or the address another way) as well.
                    if command == "serve" {
                        let clashes: &[&str] = match id {
                            "addr" | "port" => &["addr", "port"],
                            other => &[other],
                        };
                        let served = matches.subcommand_matches("serve");
                        let twice = clashes
                            .iter()
                            .find(|c| served.is_some_and(|m| on_the_line(m, c)));
                        let Some(other) = twice else { continue };
                        Cli::command()
                            .error(
                                clap::error::ErrorKind::ArgumentConflict,
                                format!(
                                    "--{id} before `serve` and --{other} after it: give it once"
                                ),
                            )
                            .exit();
                    }
                    Cli::command()
                        .error(
                            clap::error::ErrorKind::ArgumentConflict,
                            format!(
                                "--{id} is an option of the server: `remit --{id} …` or `remit serve --{id} …`, not before `{command}`"
                            ),
                        )
                        .exit();
                }
            }
        }
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
}

/// Ends as clap does for `--help`, `--version` or a mistyped command line, except that help
/// or a version that cannot be written (`remit --help > /dev/full`) is a failure (exit 2, as
/// any other output that cannot be written), not a success that printed nothing; and help
/// whose reader stopped reading (a closed pipe) ends quietly (141, as a command's output).
fn exit_saying(e: clap::Error) -> ! {
    use std::io::Write;
    let printed = e.print().and_then(|()| std::io::stdout().flush());
    // Read by a pager or `head` that stopped reading (`remit --help | head`): quiet, as a
    // command whose reader goes away.
    if !e.use_stderr()
        && printed
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    {
        std::process::exit(141);
    }
    if printed.is_err() && !e.use_stderr() {
        eprintln!("remit: cannot write to standard output");
        std::process::exit(2);
    }
    std::process::exit(e.exit_code())
}

/// The user a command line names: their id (`usr_…`) or their phone number.
fn user_named(store: &store::Store, user: &str) -> Result<crate::domain::UserId> {
    match crate::domain::UserId::parse(user) {
        Ok(id) => Ok(id),
        // Begins as an id does but is not one: no such user (rather than "not a phone").
        // Quoted as written (control characters escaped, not sent to the terminal).
        Err(_) if user.trim().starts_with("usr_") => Err(Error::internal(format!(
            "no user {:?}: `remit user list` shows their ids",
            user.trim()
        ))),
        Err(_) => {
            let phone = crate::domain::KenyanPhone::parse("USER", user).map_err(|_| {
                Error::invalid("USER", "is neither a user id (usr_…) nor a phone number")
            })?;
            store
                .read(|conn, keys| crate::service::users::find_by_phone(conn, keys, &phone))
                .map_err(|e| match e {
                    Error::NotFound { .. } => Error::internal(
                        "no user has that phone number: `remit user list` shows who has which",
                    ),
                    e => e,
                })
        }
    }
}

/// Prints a token just issued, the only time it is shown. If it cannot be written (a full
/// disk behind `> file`, a closed pipe), nobody will ever hold it: it is revoked at once and
/// the command fails saying so, rather than leaving a live token no one has.
fn hand_over_token(
    store: &store::Store,
    token: &str,
    user_id: &crate::domain::UserId,
    user_is: &str,
) -> Result<()> {
    hand_over_token_in(store, token, token, user_id, user_is)
}

/// `hand_over_token`, the token printed within `printed` (a line that says what it is).
fn hand_over_token_in(
    store: &store::Store,
    printed: &str,
    token: &str,
    user_id: &crate::domain::UserId,
    user_is: &str,
) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let written = writeln!(out, "{printed}").and_then(|()| out.flush());
    let Err(e) = written else {
        return Ok(());
    };
    drop(out);
    let given = token.to_string();
    let revoked = store
        .write(move |ctx| crate::service::users::revoke_token(ctx, &Actor::system("cli"), &given));
    let token_is = match revoked {
        Ok(_) => "so it is revoked".to_string(),
        Err(r) => format!(
            "and it could not be revoked ({}): revoke it with `remit token revoke` and the prefix `remit user list` shows",
            describe(&r)
        ),
    };
    Err(Error::internal(format!(
        "the user {user_id} {user_is}, but its new token could not be written to standard output ({e}), {token_is}; `remit token issue {user_id}` gives another"
    )))
}

/// Runs the command line; returns the exit code.
pub fn run(cli: Cli) -> Result<ExitCode> {
    use crate::config::Settings;
    let command = match cli.command {
        // The server's options before `serve` are its own (`from_command_line` refused them
        // given on both sides).
        Some(Command::Serve(args)) => Command::Serve(ServeArgs {
            addr: args.addr.or(cli.serve.addr),
            port: args.port.or(cli.serve.port),
            demo: args.demo || cli.serve.demo,
            workers: args.workers.or(cli.serve.workers),
        }),
        Some(command) => command,
        None => Command::Serve(cli.serve),
    };
    let settings = match &command {
        Command::Serve(_) | Command::Daraja(_) => Settings::Server,
        Command::Replicate { .. }
        | Command::Check {
            postgres: Some(_), ..
        } => Settings::Replication,
        _ => Settings::Ledger,
    };
    let config = crate::config::from_env(cli.db.clone(), settings)?;
    let tried = key_source(&config);
    let db = config.db.clone();
    dispatch(command, config).map_err(|e| tried_key(e, &tried, &db))
}

/// Where the key a command tries comes from, as `tried_key` says it.
fn key_source(config: &Config) -> String {
    match &config.key_hex {
        Some(_) => "ENCRYPTION_KEY".to_string(),
        None => format!(
            "the key file {}",
            crate::crypto::key_file_path(&config.db).display()
        ),
    }
}

/// A key that does not match, said with where it came from: after a restore of a backup made
/// under another key, or a rotation, the one the operator must give is not where they look.
///
/// Beside the new key of a rotation stopped before its end (which a start or a command that
/// writes settles, `ops::settle_before_use`; `check` only reads), it says where the new key is.
fn tried_key(e: Error, source: &str, db: &std::path::Path) -> Error {
    match e {
        Error::WrongKey => {
            let rotating = crate::ops::rotating_key_path(db);
            let stopped = if rotating.exists() {
                format!(
                    ". A key rotation was stopped before its end: its new key is in {}; a start, or a command that writes, settles it, and `remit check --key-file {}` reads the ledger under it meanwhile",
                    rotating.display(),
                    rotating.display()
                )
            } else {
                String::new()
            };
            Error::internal(format!("{e}; the key tried was {source}'s{stopped}"))
        }
        e => e,
    }
}

/// Runs one command.
fn dispatch(command: Command, config: Config) -> Result<ExitCode> {
    match command {
        Command::Serve(args) => serve(config, args),
        Command::User(UserCommand::Add {
            role,
            name,
            phone,
            language,
        }) => {
            let language = language
                .map(|l| crate::domain::Language::parse_field("--language", &l))
                .transpose()?;
            let (_key_lock, store) = open_existing(&config)?;
            let user = NewUser {
                role: Role::parse_field("--role", &role)?,
                name: crate::domain::parse_text("--name", &name, true)?.unwrap_or_default(),
                phone: phone
                    .map(|p| crate::domain::KenyanPhone::parse("--phone", &p))
                    .transpose()?,
            };
            let created = store
                .write(move |ctx| {
                    crate::service::users::create_speaking(
                        ctx,
                        &Actor::system("cli"),
                        &user,
                        language,
                    )
                })
                // The service names its field as the API does; here it is a flag.
                .map_err(|e| match e {
                    // Only a recipient needs one: the texts and the kiosk's search reach them.
                    Error::MissingField { field } if field == "phone" => {
                        Error::invalid("--phone", "is required for a recipient")
                    }
                    Error::MissingField { field } => Error::MissingField {
                        field: format!("--{field}"),
                    },
                    other => other,
                })
                .map_err(|e| as_option(e, "phone", "--phone"))?;
            hand_over_token(&store, &created.token, &created.user.user_id, "was made")?;
            Ok(0)
        }
        Command::User(UserCommand::List) => {
            // One read of the list; when a user's name or phone does not open (a damaged
            // value, a row sealed under another key), user by user instead, that one listed with
            // its id, role and tokens, so that its tokens can still be revoked, rather than the
            // whole list refused. Any other error (the database's) stops it.
            let users = read_existing(&config, |conn, keys| {
                let view = |user: crate::service::users::UserView| {
                    let tokens = user
                        .tokens
                        .iter()
                        .map(|t| (t.prefix.clone(), t.revoked_at.is_some()))
                        .collect();
                    (user.user_id.clone(), user.role, Some(user), tokens)
                };
                match crate::service::users::list(conn, keys, u32::MAX - 1, None) {
                    Ok(page) => return Ok(page.items.into_iter().map(view).collect()),
                    Err(e) if !crate::crypto::Keys::is_undecryptable(&e) => return Err(e),
                    Err(_) => {}
                }
                let ids: Vec<(crate::domain::UserId, Role)> =
                    store::all_rows(conn, "SELECT id, role FROM users ORDER BY id", [], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?;
                ids.into_iter()
                    .map(|(id, role)| match crate::service::users::user_view(conn, keys, &id) {
                        Ok(user) => Ok(view(user)),
                        Err(e) if crate::crypto::Keys::is_undecryptable(&e) => {
                            let tokens: Vec<(String, bool)> = store::all_rows(
                                conn,
                                "SELECT prefix, revoked_at IS NOT NULL FROM api_tokens WHERE user_id = ?1 ORDER BY created_at",
                                [&id],
                                |r| Ok((r.get(0)?, r.get(1)?)),
                            )?;
                            Ok((id, role, None, tokens))
                        }
                        Err(e) => Err(e),
                    })
                    .collect::<Result<Vec<_>>>()
            })?;
            // The language of their text messages last: a new column after the ones scripts read.
            println!("USER\tROLE\tNAME\tPHONE\tTOKENS\tSMS_LANGUAGE");
            let mut unreadable = 0;
            for (id, role, view, tokens) in users {
                let tokens: Vec<String> = tokens
                    .into_iter()
                    .map(|(prefix, revoked)| match revoked {
                        false => prefix,
                        true => format!("{prefix} (revoked)"),
                    })
                    .collect();
                let tokens = match tokens.is_empty() {
                    true => "-".to_string(),
                    false => tokens.join(","),
                };
                match view {
                    Some(user) => println!(
                        "{id}\t{role}\t{}\t{}\t{tokens}\t{}",
                        user.name,
                        user.phone.as_deref().unwrap_or("-"),
                        user.language.as_str()
                    ),
                    None => {
                        unreadable += 1;
                        println!("{id}\t{role}\t(cannot be decrypted)\t-\t{tokens}\t-");
                    }
                }
            }
            if unreadable > 0 {
                eprintln!(
                    "remit: {unreadable} user(s) whose name or phone cannot be decrypted (damaged, or sealed under another key): `remit check` names each value"
                );
                return Ok(1);
            }
            Ok(0)
        }
        Command::User(UserCommand::Language { user, language }) => {
            let language = crate::domain::Language::parse_field("LANGUAGE", language.trim())?;
            let (_key_lock, store) = open_existing(&config)?;
            let user_id = user_named(&store, &user)?;
            let view = store.write(move |ctx| {
                crate::service::users::set_language(ctx, &Actor::system("cli"), &user_id, language)
            })?;
            println!(
                "{} ({}) gets SMS in {}",
                view.user_id,
                view.role,
                match view.language {
                    crate::domain::Language::En => "English",
                    crate::domain::Language::Sw => "Swahili",
                }
            );
            Ok(0)
        }
        Command::Token(TokenCommand::Issue { user }) => {
            let (_key_lock, store) = open_existing(&config)?;
            let user_id = user_named(&store, &user)?;
            let issued = store.write(move |ctx| {
                crate::service::users::issue_token(ctx, &Actor::system("cli"), &user_id)
            })?;
            hand_over_token(&store, &issued.token, &issued.user_id, "is there")?;
            Ok(0)
        }
        Command::Token(TokenCommand::Revoke { token }) => {
            // The whole token is accepted as well as its prefix; a shorter text names none.
            let given = token.trim().to_string();
            let prefix_chars = crate::service::users::TOKEN_PREFIX_CHARS;
            if given.chars().count() < prefix_chars {
                return Err(Error::invalid(
                    "token",
                    format!("{given:?} is shorter than a token's prefix: give its first {prefix_chars} characters, as `remit user list` shows them (rmt_ and 8 more), or the whole token"),
                ));
            }
            let (_key_lock, store) = open_existing(&config)?;
            // Said before the commit too: a server that sees it remembers no token until the
            // line after the commit, or for as long as it would have believed one (a command
            // killed between its commit and that line left the token believed for 10 s).
            let _ = crate::auth::note_revocation(store.path());
            let revoked = store.write(move |ctx| {
                crate::service::users::revoke_token(ctx, &Actor::system("cli"), &given)
            })?;
            if revoked.already {
                println!(
                    "{} of {} was already revoked: nothing changed",
                    revoked.prefix, revoked.user_id
                );
                return Ok(0);
            }
            // A server running on this database believes the tokens it has seen for a while
            // without reading them again: this tells it to stop (`auth::note_revocation`).
            if let Err(e) = crate::auth::note_revocation(store.path()) {
                eprintln!(
                    "revoked, but a server running on this database may accept the token for up to {} s more: cannot write {}: {e}",
                    crate::limits::TOKEN_CACHE_TTL_S,
                    crate::auth::revocations_file(store.path()).display()
                );
            }
            println!("revoked {} of {}", revoked.prefix, revoked.user_id);
            Ok(0)
        }
        Command::Fx(FxCommand::Get { pair }) => {
            usd_kes(pair.as_deref().unwrap_or("USD-KES"))?;
            let (rate, set_at) =
                read_existing(&config, |conn, _| crate::service::fx::current(conn))?;
            match set_at {
                Some(at) => println!("USD-KES {rate} (set {at})"),
                None => println!("USD-KES {rate} (the default: no admin has set a rate)"),
            }
            Ok(0)
        }
        Command::Fx(FxCommand::Set { pair, rate, force }) => {
            usd_kes(&pair)?;
            let rate = RateKesPerUsd::parse("RATE", &rate)?;
            let (_key_lock, store) = open_existing(&config)?;
            let (before, _) = store.read(|conn, _| crate::service::fx::current(conn))?;
            // A dropped or added decimal point (15225 for 152.25) prices every new request, and
            // every shilling of cash taken, a hundred times wrong: asked twice, as the admin
            // screen does.
            let far = far_from(before, rate);
            if let (Some(how), false) = (&far, force) {
                return Err(Error::internal(format!(
                    "the rate in use is {before}; {rate} is {how}. New requests and cash taken in KES would be priced at it: if that is meant, run again with --force"
                )));
            }
            store.write(move |ctx| crate::service::fx::set(ctx, &Actor::system("cli"), rate))?;
            println!("USD-KES {rate}");
            if let Some(how) = far {
                eprintln!(
                    "remit: note: the rate was {before}; {rate} is {how}, set as asked (--force)"
                );
            }
            Ok(0)
        }
        Command::Check {
            key_file,
            postgres,
            ledger,
        } => {
            let mut config = config;
            let mut tried = key_source(&config);
            if let Some(path) = key_file {
                tried = format!("--key-file {}", path.display());
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    Error::invalid("--key-file", format!("cannot read {}: {e}", path.display()))
                })?;
                let key = MasterKey::from_hex(&text).map_err(|_| {
                    Error::invalid("--key-file", "must hold the key as 64 hex characters")
                })?;
                crate::crypto::warn_if_weak(&key, &format!("the key file {}", path.display()));
                config.key_hex = Some(text.trim().to_string());
                // Said as for the key file beside a ledger: whoever reads it reads the copy's PII.
                crate::crypto::warn_if_others_can_read(
                    &path,
                    "key file",
                    "anyone who can read it can read the ledger's names and phones",
                );
            }
            match postgres {
                Some(url) => check_replica(&config, &url, ledger.as_deref(), &tried),
                None => check(&config, &tried),
            }
        }
        Command::Replicate {
            to,
            once,
            drop,
            ledger,
        } => match (drop, ledger) {
            (true, Some(ledger)) => drop_replica(&replication_target(&config, to)?, &ledger),
            _ => replicate(config, to, once, drop),
        },
        Command::Backup { file } => {
            crate::ops::interrupt::remove_copies_on_interrupt();
            let (_key_lock, store) = open_existing(&config)?;
            let report = crate::ops::backup(&store, &file)?;
            for line in &report.checks {
                println!("{line}");
            }
            for line in &report.mismatches {
                println!("MISMATCH {line}");
            }
            println!(
                "backup written to {}. The check above is of the copy's journal, balances and audit chain; its pages and encrypted values were not checked (`remit check` checks every page and opens each value: run it on the ledger or on the copy). Its names, phones and merchant details are encrypted under the key ({}): keep a copy of that key somewhere safe and apart from the backup (without it they cannot be read, with it by anyone who holds both). Its amounts, statuses and audit log are not encrypted: keep the backup where only those who may see the ledger can read it. Check it later with {}.",
                file.display(),
                describe_key(store.key_source()),
                check_command(&file, store.key_source())
            );
            Ok(if report.is_clean() { 0 } else { 1 })
        }
        Command::Daraja(DarajaCommand::Ping) => daraja_ping(&config),
        Command::Restore { backup: None, .. } => {
            require_db(&config)?;
            let _lock = crate::ops::lock(&config.db)?;
            let (_key_lock, store) = open_existing_beside(&config, false)?;
            let released = crate::ops::release_payouts(&store);
            store.close();
            match released? {
                Some(held) => println!(
                    "{}: payouts go out again (they were held since it was {held}). Start the server with the gateway it pays with.",
                    config.db.display()
                ),
                None => println!(
                    "{}: no payouts were held; nothing changed.",
                    config.db.display()
                ),
            }
            Ok(0)
        }
        Command::Restore {
            backup: Some(backup),
            other_ledger,
            ..
        } => {
            crate::ops::interrupt::remove_copies_on_interrupt();
            // Where there is no ledger yet, a backup that is not one is refused before anything
            // is made there (the lock files stayed behind the refused restore). Beside a
            // ledger, what is wrong with --db (another program's file, a lock file that is a
            // link) is said first.
            if !config.db.exists() {
                crate::ops::a_backup(&backup)?;
            }
            let _lock = crate::ops::lock_for_restore(&config.db)?;
            let _key_lock = crate::ops::key_lock(&config.db, crate::ops::KeyUse::Exclusive)?;
            // A rotation stopped after its commit is finished first: the ledger this restore
            // replaces is under its new key, which must not be taken for one nothing needs.
            crate::ops::settle_stopped_rotation(&config.db)?;
            let restored =
                crate::ops::restore(&config.db, &backup, config.key_hex.as_deref(), other_ledger)?;
            for line in &restored.report.checks {
                println!("{line}");
            }
            println!(
                "restored {} into {}.",
                backup.display(),
                config.db.display()
            );
            if let Some(other) = &restored.replaced_other {
                println!(
                    "The database it replaced held another ledger ({other}): nothing of it was compared with the backup or carried over; it is kept beside it (below) as it was."
                );
            }
            let ledger_id = store::open_for_check(&config.db, config.key_hex.as_deref())
                .and_then(|(conn, _)| store::changes::ledger_id(&conn))
                .ok();
            for line in &restored.since {
                println!("since the backup: {line}");
            }
            if let Some(file) = &restored.since_file {
                println!(
                    "Those lines are kept in {} (a second restore before they are done would not say them again).",
                    file.display()
                );
            }
            if let Some(kept) = restored.kept {
                println!(
                    "The database it replaced is kept as {} (with its log, if it had one): delete it once the restored ledger is back in service.",
                    kept.display()
                );
                replica_advice(restored.replaced_other.as_deref(), ledger_id.as_deref());
            }
            // Restored under ENCRYPTION_KEY while the key file beside it holds another key:
            // the next command without the variable would be told the key does not match.
            let key_file = crate::crypto::key_file_path(&config.db);
            let filed = std::fs::read_to_string(&key_file)
                .ok()
                .and_then(|text| MasterKey::from_hex(&text).ok());
            let given = config
                .key_hex
                .as_deref()
                .and_then(|hex| MasterKey::from_hex(hex).ok());
            if let (Some(filed), Some(given)) = (filed, given) {
                if filed.to_hex() != given.to_hex() {
                    println!(
                        "The key file {} holds another key than ENCRYPTION_KEY, under which the ledger now is: keep ENCRYPTION_KEY set, or put that key in the file, before the server starts.",
                        key_file.display()
                    );
                }
            }
            Ok(0)
        }
        Command::RotateKey { new_key_file } => {
            require_db(&config)?;
            let _lock = crate::ops::lock(&config.db)?;
            let _key_lock = crate::ops::key_lock(&config.db, crate::ops::KeyUse::Exclusive)?;
            // One stopped before its end is settled first: its copies and its new key's file
            // are this one's names.
            crate::ops::settle_stopped_rotation(&config.db)?;
            // The new key must stay somewhere once the ledger is under it: a file, not a pipe
            // (`<(openssl rand -hex 32)`) whose key would exist nowhere after the command.
            // A file this user may not see (root's `/root/new.key` named by the service's user)
            // is said so, not "does not exist".
            // (Opened only when it is a file: a named pipe's open waits for a writer, the
            // rotation's lock held meanwhile; it is refused below as not a file.)
            let seen = std::fs::metadata(&new_key_file).and_then(|m| match m.is_file() {
                true => std::fs::File::open(&new_key_file).map(|_| ()),
                false => Ok(()),
            });
            if seen.is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied) {
                return Err(Error::invalid(
                    "--new-key-file",
                    format!(
                        "{} cannot be read by this user (permission denied): make it readable to the user running the rotation (`chown`), or run the rotation as its owner",
                        new_key_file.display()
                    ),
                ));
            }
            if !new_key_file.exists() {
                return Err(Error::invalid(
                    "--new-key-file",
                    format!(
                        "{} does not exist: make the new key first, `(umask 077; openssl rand -hex 32 > new.key)`",
                        new_key_file.display()
                    ),
                ));
            }
            if !std::fs::metadata(&new_key_file).is_ok_and(|m| m.is_file()) {
                return Err(Error::invalid(
                    "--new-key-file",
                    "must be a file holding the new key (made first: `(umask 077; openssl rand -hex 32 > new.key)`), not a pipe or a device: the ledger will be under that key, and it must be kept",
                ));
            }
            let text = std::fs::read_to_string(&new_key_file).map_err(|e| match e.kind() {
                // Not text at all (a database, a binary key): not a key file.
                std::io::ErrorKind::InvalidData => Error::invalid(
                    "--new-key-file",
                    "must hold the new key as 64 hex characters",
                ),
                _ => Error::internal(format!("cannot read {}: {e}", new_key_file.display())),
            })?;
            let new_key = MasterKey::from_hex(&text).map_err(|_| {
                Error::invalid(
                    "--new-key-file",
                    "must hold the new key as 64 hex characters",
                )
            })?;
            // Said, not refused: the rotation goes on.
            crate::crypto::warn_if_weak(
                &new_key,
                &format!("the new key in {}", new_key_file.display()),
            );
            crate::crypto::warn_if_others_can_read(
                &new_key_file,
                "new key file",
                "anyone who can read it will read the ledger's names and phones once it is the key",
            );
            // The old key opens every backup made before now: when it is the key file's, a copy
            // of it is kept before the operator is told to replace that file (0600, never
            // overwriting), so replacing it loses nothing.
            let key_file = crate::crypto::key_file_path(&config.db);
            let old_kept = match &config.key_hex {
                Some(_) => None,
                None => {
                    let old = std::fs::read_to_string(&key_file)
                        .ok()
                        .and_then(|text| MasterKey::from_hex(&text).ok());
                    match old {
                        // Refused before a copy is made: a refused rotation left a copy of
                        // the secret behind.
                        Some(old)
                            if crate::crypto::constant_time_eq(
                                old.to_hex().as_bytes(),
                                new_key.to_hex().as_bytes(),
                            ) =>
                        {
                            return Err(Error::internal("the new key is the current key"));
                        }
                        Some(old) => {
                            let stamp =
                                crate::time::rfc3339(crate::time::now_unix()).replace(':', "");
                            // A second rotation within the same second gets the next free name.
                            let kept = (1..1000)
                                .map(|n| {
                                    let mut kept = key_file.as_os_str().to_owned();
                                    kept.push(format!(".before-rotate-{stamp}"));
                                    if n > 1 {
                                        kept.push(format!("-{n}"));
                                    }
                                    std::path::PathBuf::from(kept)
                                })
                                .find(|path| {
                                    std::fs::symlink_metadata(path).is_err()
                                        && std::fs::symlink_metadata(
                                            crate::ops::unfinished_name(path),
                                        )
                                        .is_err()
                                })
                                .ok_or_else(|| {
                                    Error::internal(
                                        "a thousand copies of the key were kept this second: wait a second and rotate again",
                                    )
                                })?;
                            // Under a name of its own until the rotation commits: a rotation
                            // stopped before (kill -9, Ctrl-C) left a "before-rotate" copy of
                            // the key still in use, read as a retired one.
                            let unfinished = crate::ops::unfinished_name(&kept);
                            crate::crypto::write_key_file(&unfinished, &old)?;
                            Some((unfinished, kept))
                        }
                        None => None,
                    }
                }
            };
            // The new key is kept beside the key file before the commit, until the key file
            // holds it: a rotation stopped between the two is finished by the next command or
            // start (`ops::settle_stopped_rotation`); it left the ledger under a key no file
            // beside it held.
            let rotating = crate::ops::rotating_key_path(&config.db);
            let rotating = match &old_kept {
                Some((unfinished, _)) if crate::crypto::replaceable_key_file(&key_file) => {
                    crate::crypto::write_key_file(&rotating, &new_key)
                        .and_then(|()| crate::crypto::owned_like(&rotating, &key_file))
                        .inspect_err(|_| {
                            let _ = std::fs::remove_file(unfinished);
                            let _ = std::fs::remove_file(&rotating);
                        })?;
                    crate::ops::sync_dir_of(&rotating);
                    Some(rotating)
                }
                _ => None,
            };
            // A refused rotation (the key file's key does not open the ledger, another command
            // writes…) keeps no copy of a key: the key file still holds it.
            let count = crate::ops::rotate_key(&config.db, config.key_hex.as_deref(), &new_key)
                .inspect_err(|_| {
                    if let Some((unfinished, _)) = &old_kept {
                        let _ = std::fs::remove_file(unfinished);
                    }
                    if let Some(rotating) = &rotating {
                        let _ = std::fs::remove_file(rotating);
                    }
                })?;
            // Committed: the copy is the old key's now.
            let old_kept = old_kept.map(|(unfinished, kept)| {
                match std::fs::rename(&unfinished, &kept) {
                    Ok(()) => {
                        // The name made durable, as the key file's replacement is.
                        crate::ops::sync_dir_of(&kept);
                        kept
                    }
                    Err(e) => {
                        eprintln!("remit: the copy of the old key could not be named {} ({e}): it is in {}", kept.display(), unfinished.display());
                        unfinished
                    }
                }
            });
            // The key file takes the new key before anything is printed: a reader that went away
            // (`| head -1`) ended the command at its first line, the ledger under the new key
            // and the key file still under the old, so that the next start was refused.
            let replaceable = old_kept.is_some() && crate::crypto::replaceable_key_file(&key_file);
            let replaced =
                replaceable.then(|| crate::crypto::replace_key_file(&key_file, &new_key));
            let values = if count == 1 { "value" } else { "values" };
            println!("re-encrypted {count} {values} under the new key.");
            match &old_kept {
                Some(kept) => println!(
                    "The old key is kept in {}: keep it as long as any backup made before now (those backups are still under it), away from them.",
                    kept.display()
                ),
                None => println!("Keep the old key (ENCRYPTION_KEY's value until now) as long as any backup made before now: those backups are still under it."),
            }
            // The key was the key file's: the file takes the new key, so that the next start
            // opens the ledger as the one before did (the old key is kept, above), unless it
            // is a symbolic link or has other names: the operator's to change (the new key's
            // file holds the key meanwhile).
            if old_kept.is_some() && !replaceable {
                println!(
                    "The key file {} is a symbolic link or has other names (hard links): it is left as it is. Put the new key where it leads (the contents of {}), or set ENCRYPTION_KEY to it, before the next start.",
                    key_file.display(),
                    new_key_file.display()
                );
                return Ok(0);
            }
            if let Some(replaced) = replaced {
                return match replaced {
                    Ok(()) => {
                        if let Some(rotating) = &rotating {
                            let _ = std::fs::remove_file(rotating);
                        }
                        println!(
                            "The key file {} now holds the new key: start remit as before. Keep a copy of the new key away from this machine, as of the old ({} is one until it is moved).",
                            key_file.display(),
                            new_key_file.display()
                        );
                        Ok(0)
                    }
                    // The rotation is done; the next start would be refused: said as a failure.
                    Err(e) => {
                        eprintln!(
                            "remit: the ledger is under the new key, but {}: put the new key in {} (`cp {} {}`), or set ENCRYPTION_KEY to it, before the next start",
                            describe(&e),
                            key_file.display(),
                            new_key_file.display(),
                            key_file.display()
                        );
                        Ok(1)
                    }
                };
            }
            // The key was ENCRYPTION_KEY's, which wins over any key file: replacing the file
            // would change nothing (the next start, still under the old variable, refused).
            println!(
                "From now on start remit with this key: set ENCRYPTION_KEY to the contents of {} wherever it is set (an environment file, the service's settings) before the next start; ENCRYPTION_KEY wins over the key file {}.",
                new_key_file.display(),
                key_file.display()
            );
            Ok(0)
        }
    }
}

/// `remit check`: 0 clean, 1 mismatches, 2 could not run. Read-only: it never creates,
/// migrates or writes the file it checks.
fn check(config: &Config, tried: &str) -> Result<ExitCode> {
    let report =
        store::open_for_check(&config.db, config.key_hex.as_deref()).and_then(|(conn, keys)| {
            crate::integrity::check_on_two(
                &conn,
                || store::read_only_connection(&config.db),
                &keys,
                crate::integrity::Pages::Check,
            )
        });
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "remit check: could not run: {}",
                describe(&tried_key(e, tried, &config.db))
            );
            return Ok(2);
        }
    };
    print_report(&report)
}

/// `remit check --postgres URL [--ledger ID]`: the same check on a ledger's replica, in the
/// same words; 0 clean, 1 mismatches, 2 could not run.
/// What `--postgres` given alone stands for (no one can type it: a NUL ends an argument), so
/// that an empty value (`--postgres=`, an unset variable) is refused rather than taken for it.
const POSTGRES_FROM_ENV: &str = "\0REMIT_REPLICATE_TO";

fn check_replica(
    config: &Config,
    url: &str,
    ledger: Option<&str>,
    tried: &str,
) -> Result<ExitCode> {
    let run = || -> Result<crate::replicate::postgres::ReplicaCheck> {
        let target = match url {
            POSTGRES_FROM_ENV => config.replicate_to.clone().ok_or_else(|| {
                Error::invalid(
                    "--postgres",
                    "needs a URL, or REMIT_REPLICATE_TO set when given alone",
                )
            })?,
            url => crate::replicate::Target::parse(
                "--postgres",
                url,
                config.replicate_ca_file.as_deref(),
            )?,
        };
        let (master, _) =
            crate::crypto::load_master_key(&config.db, config.key_hex.as_deref(), false)?;
        let keys = crate::crypto::Keys::new(&master);
        // The ledger of --db: its replica is compared with the file too. One named by
        // --ledger (another kiosk's, under its key) has no file here.
        let (ledger_id, file) = match ledger {
            Some(id) => (id.to_string(), None),
            None => {
                let (conn, _) = store::open_for_check(&config.db, config.key_hex.as_deref())?;
                (store::changes::ledger_id(&conn)?, Some(conn))
            }
        };
        let found = crate::replicate::postgres::check(&target, &ledger_id, &keys, file.as_ref())?;
        if file.is_none() {
            println!(
                "(a ledger named by --ledger: its replica is checked, not compared with a file)"
            );
        }
        println!(
            "replica of ledger {ledger_id} in {} (change {}, written {})",
            target.display(),
            found.position.change_seq,
            found.replicated_at
        );
        Ok(found)
    };
    let report = match run() {
        Ok(found) => found.report,
        Err(e) => {
            eprintln!(
                "remit check: could not run: {}",
                describe(&tried_key(e, tried, &config.db))
            );
            return Ok(2);
        }
    };
    print_report(&report)
}

fn print_report(report: &crate::integrity::Report) -> Result<ExitCode> {
    for line in &report.checks {
        println!("{line}");
    }
    for line in &report.mismatches {
        println!("MISMATCH {line}");
    }
    if report.is_clean() {
        println!("ok: the ledger holds");
        Ok(0)
    } else {
        println!("{} mismatch(es)", report.mismatch_count());
        Ok(1)
    }
}

/// What a restore says of the replicas in PostgreSQL. The restored ledger's replica (if it
/// was replicated) holds commits the backup does not, and replication refuses to go on over
/// it until it is dropped. The ledger a restore replaced, when it was another
/// (`--other-ledger`), is dropped by its id: a bare `--drop` would drop the restored ledger's,
/// which may be another kiosk's, still in service (until 2026-12-07 the advice said a bare
/// `--drop` whichever ledger the file had held).
fn replica_advice(replaced_other: Option<&str>, restored: Option<&str>) {
    let this = restored.map_or_else(|| "this ledger".to_string(), |id| format!("ledger {id}"));
    match replaced_other {
        None => println!(
            "If this ledger was replicated into PostgreSQL, its replica holds what the backup does not, and replication refuses to go on over it: drop it (`remit replicate --drop`) so that the ledger is copied again."
        ),
        Some(other) => {
            println!(
                "If the replaced ledger ({other}) was replicated into PostgreSQL, its replica stays there, no longer fed: drop it by its id (`remit replicate --drop --ledger {other}`) when head office no longer needs it."
            );
            println!(
                "If {this} was replicated from its own machine, its replica is that machine's: drop it (`remit replicate --drop`) only once that machine is out of service. Two copies of one ledger must not both run: its replica takes one history, and the copy that replicates after the other has moved on is refused."
            );
        }
    }
}

/// `remit replicate --drop --ledger ID`: drops a ledger's replica by its id, reading no file
/// or key (the ledger of --db is not asked).
fn drop_replica(target: &crate::replicate::Target, ledger_id: &str) -> Result<ExitCode> {
    if crate::replicate::postgres::drop_replica(target, ledger_id)? {
        println!(
            "dropped the replica of ledger {ledger_id} in {}",
            target.display()
        );
    } else {
        println!(
            "{} holds no replica of ledger {ledger_id}: nothing to drop",
            target.display()
        );
    }
    Ok(0)
}

/// `--to`, else `REMIT_REPLICATE_TO`.
fn replication_target(config: &Config, to: Option<String>) -> Result<crate::replicate::Target> {
    match to {
        Some(url) => {
            crate::replicate::Target::parse("--to", &url, config.replicate_ca_file.as_deref())
        }
        None => config
            .replicate_to
            .clone()
            .ok_or_else(|| Error::invalid("--to", "is required (or set REMIT_REPLICATE_TO)")),
    }
}

/// `remit replicate`: continuously (until a signal), `--once`, or `--drop`.
fn replicate(config: Config, to: Option<String>, once: bool, drop: bool) -> Result<ExitCode> {
    let target = replication_target(&config, to)?;
    let (_key_lock, store) = open_existing(&config)?;
    let store = std::sync::Arc::new(store);
    if drop {
        let ledger_id = store.read(|conn, _| store::changes::ledger_id(conn))?;
        return drop_replica(&target, &ledger_id);
    }
    let replicator = crate::replicate::Replicator {
        store: std::sync::Arc::clone(&store),
        target,
        status: std::sync::Arc::default(),
    };
    if once {
        let (position, rows, ledger_id) = replicator.once()?;
        println!(
            "ledger {ledger_id} replicated to {} up to change {} ({rows} rows written)",
            replicator.target.display(),
            position.change_seq
        );
        return Ok(0);
    }
    let stopping = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    signal_hook::flag::register(
        signal_hook::consts::SIGTERM,
        std::sync::Arc::clone(&stopping),
    )
    .and_then(|_| {
        signal_hook::flag::register(
            signal_hook::consts::SIGINT,
            std::sync::Arc::clone(&stopping),
        )
    })
    .map_err(|e| Error::internal(format!("cannot listen for signals: {e}")))?;
    replicator.watch(std::sync::Arc::clone(&stopping));
    replicator.run(&stopping)?;
    log::info!("replication stopped");
    Ok(0)
}

/// Whether this process started with SIGHUP ignored (`nohup`): the `SigIgn` mask of
/// `/proc/self/status` (Linux), whose lowest bit is signal 1. Elsewhere, false.
fn hangup_ignored() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("SigIgn:"))
                .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        })
        .is_some_and(|mask| mask & 1 == 1)
}

/// The phone a `--demo` server's simulator fails a payout to (M-Pesa's "cannot be paid"), and
/// the one it leaves unanswered (a queue timeout: a stuck payout), when neither
/// `REMIT_SIM_FAIL_ACCOUNTS` nor `REMIT_SIM_TIMEOUT_ACCOUNTS` is set.
const DEMO_FAIL_PHONE: &str = "0722000333";
const DEMO_TIMEOUT_PHONE: &str = "0722000444";

fn serve(mut config: Config, args: ServeArgs) -> Result<ExitCode> {
    let addr = args
        .addr
        .or_else(|| args.port.map(|port| format!("127.0.0.1:{port}")));
    config.addr = crate::config::listen_addr(addr)?;
    config.workers = crate::config::workers(args.workers)?;
    crate::http::enough_open_files(config.connections_max)?;
    let real_money = !matches!(config.gateway, crate::config::GatewayKind::Simulator);
    if args.demo && real_money {
        return Err(Error::internal(
            "--demo makes escrows funded by made-up deposits, so it runs only with the simulator (REMIT_GATEWAY=simulator, the default), never with a gateway that pays or holds real payouts",
        ));
    }
    // A file that is no database (a wrong --db) is refused before its lock files are made
    // beside it (they stayed behind the refusal). An empty one is a first start's to fill.
    if std::fs::metadata(&config.db).is_ok_and(|m| m.is_file() && m.len() > 0) {
        store::existing_database(&config.db)?;
    }
    // A file with a second name is refused before this server's own locks are taken: held,
    // they read as those of a server beside which a command may run (a restored ledger, not
    // yet in WAL mode, was served through a hard link).
    store::one_name(&config.db, true)?;
    let mut lock = crate::ops::lock(&config.db)?;
    crate::ops::settle_before_use(&config.db)?;
    let _key_lock = crate::ops::key_lock(&config.db, crate::ops::KeyUse::Shared)?;
    // Listen first: a start that cannot (the port is taken) creates no database or key file.
    let listener = crate::runtime::bind(&config.addr)?;
    // A first start makes the file, and locks it, before SQLite writes anything in it.
    if !config.db.exists() {
        // Before the file is made: refused, it leaves no empty file behind.
        store::no_ledger_was_here(&config.db)?;
        store::create_private(&config.db)?;
    }
    lock.hold_the_file(&config.db)?;
    let mut options = config.open_options(true);
    options.grow_wal = true;
    let store = std::sync::Arc::new(store::open(&options)?);
    // A demo marks its ledger for good (it never pays through M-Pesa after): never a ledger that
    // already holds money of its own.
    if args.demo && store.read(|conn, _| crate::ops::holds_money_but_no_demo(conn))? {
        store.close();
        return Err(Error::internal(format!(
            "{} already holds escrows, and --demo would make it a demo ledger for good (funded by made-up deposits, never again paying through M-Pesa): run the demo on a ledger of its own, e.g. `remit --demo --db demo.db`",
            config.db.display()
        )));
    }
    if real_money && store.read(|conn, _| crate::ops::holds_demo_data(conn))? {
        store.close();
        return Err(Error::internal(format!(
            "{} holds demo data (a `--demo` start made escrows funded by made-up deposits): it runs only with the simulator; keep real money in a ledger of its own (a new --db)",
            config.db.display()
        )));
    }
    let sends = !matches!(config.gateway, crate::config::GatewayKind::None);
    if let Some(held) = store.read(|conn, _| crate::ops::payouts_held(conn))? {
        if sends {
            store.close();
            return Err(Error::internal(format!(
                "{} was {held}, and that restore named money to settle by hand (its lines are in the .since-the-backup.txt file beside it): start it with REMIT_GATEWAY=none until every line is done, then run `remit restore --done --db {}` so that payouts go out again",
                config.db.display(),
                config.db.display()
            )));
        }
        log::warn!(
            "payouts are held: this ledger was {held}; once the restore's lines are done, stop the server and run `remit restore --done`"
        );
    }
    log::info!(
        "database {} (schema version {}), key {}",
        config.db.display(),
        store::latest_schema_version(),
        describe_key(store.key_source())
    );
    let recorded = store.write(crate::service::users::record_old_token_digests)?;
    if recorded > 0 {
        log::info!(
            "{recorded} open tokens issued before 2026-12-07 had no digest of their hash in the audit log: recorded now (token.hash_recorded), so that `remit check` finds a hash replaced from now on"
        );
    }
    // A full disk is said at the start, not found at the first write refused (`/health` says
    // `not_writable` then, `remit_disk_free_bytes` in /metrics all along).
    let wal_bound = config.wal_max_mib << 20;
    if let Some(free) = store::disk_free_bytes(&config.db).filter(|free| *free < wal_bound) {
        log::warn!(
            "the disk that holds {} has {} MiB free, less than the write-ahead log may take (REMIT_WAL_MAX_MB, {} MiB): writes are refused once it is full; free space on it",
            config.db.display(),
            free >> 20,
            config.wal_max_mib
        );
    }
    // SIGHUP too (the terminal a kiosk's server was started from, closed): a stop like the
    // others, not the default's death with requests in flight. Unless it was ignored when we
    // started (`nohup`, `trap '' HUP`): that asked for the server to outlive the terminal.
    let mut stop_on = vec![signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT];
    if !hangup_ignored() {
        stop_on.push(signal_hook::consts::SIGHUP);
    }
    let mut signals = signal_hook::iterator::Signals::new(stop_on)
        .map_err(|e| Error::internal(format!("cannot listen for signals: {e}")))?;
    // A demo shows a failed payment (its money back) and a stuck one too: to these phones,
    // unless the simulator's accounts are set (said below with the demo's tokens).
    let demo_accounts =
        args.demo && config.sim_fail_accounts.is_empty() && config.sim_timeout_accounts.is_empty();
    if demo_accounts {
        config.sim_fail_accounts = vec![DEMO_FAIL_PHONE.into()];
        config.sim_timeout_accounts = vec![DEMO_TIMEOUT_PHONE.into()];
    }
    let request_ttl_s = config.request_ttl_s;
    let config_db = config.db.clone();
    // Serving before the first admin is made: a start that fails must not use up its token.
    let running = crate::runtime::start_on(listener, config, std::sync::Arc::clone(&store))?;
    let first_start = crate::ops::bootstrap_admin(&store)?;
    if let Some((admin, token)) = &first_start {
        first_admin_token(&store, &running.app.config.db, admin, token)?;
    }
    if args.demo {
        let was_demo = store.read(|conn, _| crate::ops::holds_demo_data(conn))?;
        let lines: String = crate::ops::seed_demo(&store, request_ttl_s)?
            .iter()
            .map(|user| {
                format!(
                    "  {:<9} {}  ({})\n",
                    user.role.as_str(),
                    user.token,
                    user.name
                )
            })
            .collect();
        // Under systemd, as the first admin's: the journal keeps them for all its readers.
        match kept_from_the_journal(&config_db, ".demo-tokens", &lines) {
            Some(file) => println!(
                "Demo users: their new tokens are in {} (this user's only), not in the journal.",
                file.display()
            ),
            None => print!("Demo users (new tokens, shown only now):\n{lines}"),
        }
        if demo_accounts {
            println!(
                "Demo payouts: one to {DEMO_FAIL_PHONE} fails (M-Pesa cannot pay it: its money comes back); one to {DEMO_TIMEOUT_PHONE} gets no answer from M-Pesa (a stuck payout for the admin). REMIT_SIM_FAIL_ACCOUNTS and REMIT_SIM_TIMEOUT_ACCOUNTS name others."
            );
        }
        if first_start.is_none() {
            // The admin's token is printed once, at the ledger's first start: a presenter who
            // lost it is told how to get another.
            println!(
                "The admin's token was printed at this ledger's first start; another: `remit user list --db {db}` names the admin, `remit token issue USER --db {db}` gives them one.",
                db = config_db.display()
            );
        }
        if !was_demo {
            // Said once, when it happens: a ledger that held users of its own is marked too.
            println!(
                "{} is a demo ledger from now on (escrows funded by made-up deposits): it runs only with the simulator, never paying through M-Pesa; keep real money in a ledger of its own (another --db).",
                config_db.display()
            );
        }
        running.app.payouts_wakeup.notify();
    }
    println!(
        "payouts: {}",
        describe_gateway(&running.app.config.gateway, &running.base_url)
    );
    let bound = running.addr;
    if bound.ip().is_loopback() {
        println!("remit listening on {} (Ctrl-C to stop)", running.base_url);
    } else {
        println!("remit listening on http://{bound} (Ctrl-C to stop)");
        log::warn!(
            "listening on {bound}: not loopback, so other machines can reach this server; put a reverse proxy with a real certificate in front of it (README, \"Going live with M-Pesa\")"
        );
    }
    // What a script waits for: every line above is written before `/health` answers 200.
    running.ready();
    let config = &running.app.config;
    match &config.stripe_webhook_secret {
        None => log::info!(
            "REMIT_STRIPE_WEBHOOK_SECRET is not set: the Stripe webhook refuses every event"
        ),
        // Stripe's endpoint secrets are `whsec_…`; an API key (`sk_…`, `rk_…`) or a publishable
        // key put there by mistake signs nothing Stripe sends, and every event would be refused.
        Some(secret) if !secret.starts_with("whsec_") => log::warn!(
            "REMIT_STRIPE_WEBHOOK_SECRET does not start with whsec_: it is not the signing secret of a Stripe webhook endpoint (Dashboard, Developers, Webhooks, the endpoint, Signing secret), and Stripe's events will be refused as unsigned"
        ),
        Some(_) => {}
    }
    // The simulator posts its results from this machine: an allow-list without loopback (a
    // production env file copied to a training kiosk) refuses every one of them.
    let loopback = [
        std::net::IpAddr::from(std::net::Ipv4Addr::LOCALHOST),
        std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
    ];
    if matches!(config.gateway, crate::config::GatewayKind::Simulator)
        && !config.callback_allow.is_empty()
        && !config
            .callback_allow
            .iter()
            .any(|net| loopback.iter().any(|ip| net.contains(ip)))
    {
        log::warn!(
            "REMIT_CALLBACK_ALLOW_IPS does not include 127.0.0.1: the simulator's results come from this machine and will be refused, leaving its payouts sent with their money reserved"
        );
    }
    if config.mpesa_callback_token.is_none() {
        log::info!("REMIT_MPESA_CALLBACK_TOKEN is not set: a random result-URL token was generated for this run");
    }
    if let Some(signal) = signals.forever().next() {
        log::info!(
            "signal {signal}: stopping (finishing requests in flight, committing the queue; a second Ctrl-C stops at once)"
        );
    }
    // A second signal while the stop waits (a slow client, a payout call): an operator who
    // asks twice means now. What was committed is on disk (every commit is synced); a request
    // cut off unanswered may or may not have been applied, and its client's retry under the
    // same Idempotency-Key applies it at most once. One Ctrl-C that reaches the process twice
    // (a terminal's process group and a wrapper forwarding it) is one: a second signal counts
    // from a second after the first.
    let first = std::time::Instant::now();
    std::thread::spawn(move || {
        for signal in signals.forever() {
            if first.elapsed() < std::time::Duration::from_secs(1) {
                continue;
            }
            log::warn!("signal {signal} again: stopping at once, without waiting for requests in flight (every committed change is kept)");
            std::process::exit(130);
        }
    });
    running.shutdown();
    log::info!("stopped cleanly");
    Ok(0)
}

/// Shows the first admin's token, once. To a terminal or a pipe it is printed; under systemd,
/// whose journal keeps what a service prints (for anyone in its readers' groups, for as long
/// as the journal lasts), it goes to a file only this user can read, beside the database, and
/// only the file's name is printed.
fn first_admin_token(
    store: &store::Store,
    db: &std::path::Path,
    admin: &crate::domain::UserId,
    token: &str,
) -> Result<()> {
    match kept_from_the_journal(db, ".first-admin-token", &format!("{token}\n")) {
        Some(file) => println!(
            "First start: created an admin. Its token is in {} (this user's only), not in the journal: read it, keep it safe, then delete the file.",
            file.display()
        ),
        // Printed, or revoked when it cannot be (stdout a file on a full disk): a token no one
        // holds was left live, and the next start printed none.
        None => hand_over_token_in(
            store,
            &format!("First start: created an admin. Its token is shown only now:\n  admin  {token}"),
            token,
            admin,
            "(the first admin) was made",
        )?,
    }
    Ok(())
}

/// Under systemd (stdout is the journal), `text` written to a file only this user can read,
/// beside the database (its name + `suffix`): the file, or `None` when stdout is not the
/// journal or the file could not be written (then the caller prints it).
fn kept_from_the_journal(
    db: &std::path::Path,
    suffix: &str,
    text: &str,
) -> Option<std::path::PathBuf> {
    if !stdout_is_the_journal(std::env::var("JOURNAL_STREAM").ok().as_deref()) {
        return None;
    }
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    let file = std::path::PathBuf::from(name);
    // One left from an earlier start (its tokens since replaced) names tokens that may no
    // longer exist: it is replaced, not a reason to print the new ones.
    let _ = std::fs::remove_file(&file);
    match crate::crypto::write_owner_only(&file, text.as_bytes()) {
        Ok(()) => Some(file),
        Err(e) => {
            log::warn!(
                "cannot write the new tokens to {} ({e}): they are printed instead",
                file.display()
            );
            None
        }
    }
}

/// Is this process's standard output systemd's journal? `JOURNAL_STREAM` (`DEVICE:INODE`) is
/// inherited by every process a service starts, a shell's included: only an output that is
/// that very stream is the journal (systemd.exec(5)).
fn stdout_is_the_journal(stream: Option<&str>) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(stream) = stream else {
        return false;
    };
    let Some((dev, ino)) = stream.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    std::fs::metadata("/proc/self/fd/1").is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// Which gateway pays, in words an operator reads at start.
fn describe_gateway(gateway: &crate::config::GatewayKind, own: &str) -> String {
    use crate::config::GatewayKind;
    match gateway {
        GatewayKind::Simulator => "SIMULATED by remit's built-in M-Pesa simulator: no real money moves (REMIT_GATEWAY=daraja pays through M-Pesa)".into(),
        GatewayKind::Daraja(d) => format!(
            "M-Pesa Daraja at {} (shortcode {}); results come to {}/webhooks/payouts/…",
            d.url,
            d.shortcode,
            d.callback_base(own)
        ),
        GatewayKind::None => "none: approved payouts stay queued (REMIT_GATEWAY=none)".into(),
    }
}

/// `remit daraja ping`: a token, then an Account Balance query accepted.
fn daraja_ping(config: &Config) -> Result<ExitCode> {
    let crate::config::GatewayKind::Daraja(daraja) = &config.gateway else {
        return Err(Error::invalid(
            "REMIT_GATEWAY",
            "is not daraja: set REMIT_GATEWAY=daraja and the REMIT_DARAJA_* settings first",
        ));
    };
    let token = config.mpesa_callback_token.clone().unwrap_or_default();
    // The server's own address only matters without REMIT_PUBLIC_URL.
    let own = match daraja.public_url {
        Some(_) => String::new(),
        None => format!("http://{}", crate::config::listen_addr(None)?),
    };
    let urls = crate::payout::CallbackUrls::under(daraja.callback_base(&own), &token);
    let (lines, ok) = crate::payout::Daraja::new(daraja.as_ref().clone()).ping(&urls);
    for line in lines {
        println!("{line}");
    }
    Ok(if ok { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    /// Guards against: a shell started by a service inherits `JOURNAL_STREAM`; only an output
    /// that is that stream is the journal.
    #[test]
    fn only_the_stream_journal_stream_names_is_the_journal() {
        use std::os::unix::fs::MetadataExt;
        let own = std::fs::metadata("/proc/self/fd/1").unwrap();
        let stream = format!("{}:{}", own.dev(), own.ino());
        assert!(super::stdout_is_the_journal(Some(&stream)));
        let other = format!("{}:{}", own.dev(), own.ino() + 1);
        for not in [None, Some(other.as_str()), Some("8:12345x"), Some("")] {
            assert!(!super::stdout_is_the_journal(not), "{not:?}");
        }
    }
}
