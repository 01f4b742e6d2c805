//! The one error type of remit. Services return it; the HTTP layer maps it to a status and a
//! `code` in exactly one function (`http::reply::error_reply`), the CLI to an exit code.

use crate::money::UsdCents;
use std::fmt;

/// Every way an operation can fail. Expected failures are values; bugs are panics.
#[allow(missing_docs)] // the fields are named for what they hold
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A field failed validation; `field` is its JSON name.
    Validation { field: String, message: String },
    /// A required field is absent.
    MissingField { field: String },
    /// A field or header required only in some case, which `when` says (`when the body has no
    /// reference`) with what to send instead (`missing_field` too).
    MissingFieldWhen {
        field: &'static str,
        when: &'static str,
    },
    /// The body has a field the route does not know; `meant` is the field it looks like a
    /// misspelling of, when the route lacks that one (`ammountKes` for `amountKes`).
    UnknownField {
        field: String,
        meant: Option<String>,
    },
    /// An `Authorization` header that is not `Bearer <token>`.
    AuthScheme,
    /// A header that names one thing sent more than once (`Authorization`, `Content-Type`,
    /// `Idempotency-Key`, `Stripe-Signature`): which one was meant is not for the server to
    /// guess.
    RepeatedHeader { name: &'static str },
    /// A query parameter the route does not read (`allowed` are those it does).
    UnknownQuery {
        name: String,
        allowed: &'static [&'static str],
    },
    /// The body is not JSON, or not the JSON shape of the route.
    InvalidJson { message: String },
    /// No token, an unknown one, or a revoked one; a bad webhook secret or signature.
    Unauthenticated,
    /// A Stripe webhook whose `Stripe-Signature` matches no signature of its body under the
    /// secret, or whose timestamp is outside the tolerance (`401 unauthenticated`).
    BadSignature,
    /// Authenticated, but the role may not do this.
    Forbidden,
    /// Authenticated, and the role may do this, but not to this object; the sentence says who
    /// may (`403 forbidden` too).
    ForbiddenHere(&'static str),
    /// No such object, or one the caller may not see.
    NotFound { what: &'static str },
    /// No such object among those the caller may see, which the sentence names (`404
    /// not_found` too): an escrow's categories, to whom the escrow is visible.
    NotFoundAmong { what: &'static str, known: String },
    /// The escrow's remaining balance does not cover the payment.
    InsufficientBalance {
        available: UsdCents,
        needed: UsdCents,
    },
    /// The category's remaining balance does not cover the payment.
    InsufficientCategoryBalance {
        category: String,
        available: UsdCents,
        needed: UsdCents,
    },
    /// Approving would take the day's approvals past the escrow's daily limit.
    DailyLimitExceeded {
        limit: UsdCents,
        approved: UsdCents,
        needed: UsdCents,
    },
    /// The object is not in a state that allows the transition.
    InvalidState {
        entity: &'static str,
        from: String,
        to: &'static str,
    },
    /// Not possible in the object's present situation, for the reason given (a sentence).
    NotNow(String),
    /// The payment request expired before it was approved (its rate is stale).
    RequestExpired,
    /// The same idempotency key was used for a different request.
    IdempotencyKeyReused,
    /// Route exists, method does not.
    MethodNotAllowed,
    /// Body over `BODY_BYTES_MAX`.
    BodyTooLarge,
    /// A chunked body whose framing is not chunked framing (`400 invalid_header` naming
    /// `Transfer-Encoding`; the connection is closed: where the next request begins is unknown).
    MalformedChunks,
    /// A body that did not arrive whole within `BODY_DEADLINE_MS` of the head (the connection
    /// is closed after the answer: where the next request would begin is unknown).
    BodyTimedOut,
    /// A body that is not `application/json`.
    UnsupportedMediaType,
    /// The database stayed locked past the busy timeout; safe to retry.
    Busy,
    /// Something the request needs is taken by others for now (`503 busy`, safe to retry): the
    /// sentence says what (every read connection in use, an integrity check already running).
    Occupied(&'static str),
    /// The workers a client may hold waiting for slow request bodies are all waiting
    /// (`503 busy` too; safe to retry).
    SlowBodies,
    /// The encryption key does not open this database.
    WrongKey,
    /// SQLite could not write: the disk is full, or a savepoint journal outgrew the build's
    /// piece of 4 MiB (`Writer::run_batch` runs such a batch again with its journals in memory).
    Full,
    /// SQLite found the file damaged, or not a database (its words): said to an operator with
    /// what to do (`logged`), and by a command that read someone else's file (a backup) in
    /// words of its own.
    Damaged(String),
    /// Anything else. The detail is for the log only, never for a client.
    Internal(String),
}

/// Short for `Result<T, remit::Error>`.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A validation error naming its field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Error {
        Error::Validation {
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// The same error naming `to` where it named `from`: a rule of the service that names an
    /// amount by its decimal spelling (`amountKes`), told to a client that sent the other
    /// (`amountKesCents`).
    pub fn naming(self, from: &str, to: &str) -> Error {
        match self {
            Error::Validation { field, message } if field == from => Error::Validation {
                field: to.to_string(),
                message,
            },
            other => other,
        }
    }

    /// An internal error whose detail goes only to the log.
    pub fn internal(detail: impl fmt::Display) -> Error {
        Error::Internal(detail.to_string())
    }

    /// The stable machine-readable code of API.md.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Validation { .. } => "invalid_field",
            Error::MissingField { .. } | Error::MissingFieldWhen { .. } => "missing_field",
            Error::UnknownField { .. } | Error::UnknownQuery { .. } => "unknown_field",
            Error::InvalidJson { .. } => "invalid_json",
            Error::RepeatedHeader { .. } | Error::MalformedChunks => "invalid_header",
            Error::Unauthenticated | Error::AuthScheme | Error::BadSignature => "unauthenticated",
            Error::Forbidden | Error::ForbiddenHere(_) => "forbidden",
            Error::NotFound { .. } | Error::NotFoundAmong { .. } => "not_found",
            Error::InsufficientBalance { .. } => "insufficient_balance",
            Error::InsufficientCategoryBalance { .. } => "insufficient_category_balance",
            Error::DailyLimitExceeded { .. } => "daily_limit_exceeded",
            Error::InvalidState { .. } | Error::NotNow(_) => "invalid_state",
            Error::RequestExpired => "request_expired",
            Error::IdempotencyKeyReused => "idempotency_key_reused",
            Error::MethodNotAllowed => "method_not_allowed",
            Error::BodyTooLarge => "body_too_large",
            Error::BodyTimedOut => "request_timeout",
            Error::UnsupportedMediaType => "unsupported_media_type",
            Error::Busy | Error::SlowBodies | Error::Occupied(_) => "busy",
            Error::WrongKey | Error::Full | Error::Damaged(_) | Error::Internal(_) => "internal",
        }
    }
}

impl Error {
    /// The error as the log tells it: its sentence, and for an internal error the detail a
    /// client never sees (`error!("…: {}", e.logged())`, rather than Rust's debug form).
    pub fn logged(&self) -> Logged<'_> {
        Logged(self)
    }
}

/// See [`Error::logged`].
pub struct Logged<'a>(&'a Error);

impl fmt::Display for Logged<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Error::Internal(detail) => f.write_str(detail),
            Error::Damaged(sqlite) => write!(
                f,
                "the database file is damaged or is not a remit database (sqlite: {sqlite}): restore the ledger from a backup (`remit restore BACKUP`, the server stopped)"
            ),
            other => write!(f, "{other}"),
        }
    }
}

impl fmt::Display for Error {
    /// The client-facing sentence. `Internal` never shows its detail here.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Validation { field, message } => write!(f, "{field}: {message}"),
            Error::MissingField { field } => write!(f, "{field}: is required"),
            Error::MissingFieldWhen { field, when } => write!(f, "{field}: is required {when}"),
            Error::UnknownField { field, meant: None } => write!(f, "{field}: unknown field"),
            Error::UnknownField {
                field,
                meant: Some(meant),
            } => write!(f, "{field}: unknown field (did you mean {meant}?)"),
            Error::UnknownQuery { name, allowed: [] } => write!(
                f,
                "{name}: unknown query parameter (this route takes none)"
            ),
            Error::UnknownQuery { name, allowed } => write!(
                f,
                "{name}: unknown query parameter (this route takes {})",
                allowed.join(", ")
            ),
            Error::InvalidJson { message } => write!(f, "invalid JSON: {message}"),
            Error::RepeatedHeader { name } => {
                write!(f, "the {name} header must be sent once, not repeated")
            }
            Error::Unauthenticated => write!(f, "missing, unknown or revoked credentials"),
            Error::BadSignature => write!(
                f,
                "the Stripe-Signature matches no signature of this body under the webhook secret, or its timestamp is more than {} s from the server's clock",
                crate::limits::STRIPE_TOLERANCE_S
            ),
            Error::AuthScheme => write!(
                f,
                "send the token as `Authorization: Bearer <token>` (the word Bearer, a space, the token)"
            ),
            Error::Forbidden => write!(f, "your role may not do this"),
            Error::ForbiddenHere(who) => f.write_str(who),
            Error::NotFound { what } => write!(f, "{what} not found"),
            Error::NotFoundAmong { what, known } => write!(f, "{what} not found: {known}"),
            Error::InsufficientBalance { available, needed } => write!(
                f,
                "escrow balance is {}, payment needs {}",
                available.display(),
                needed.display()
            ),
            Error::InsufficientCategoryBalance { category, available, needed } => write!(
                f,
                "category {category} balance is {}, payment needs {}",
                available.display(),
                needed.display()
            ),
            Error::DailyLimitExceeded { limit, approved, needed } => write!(
                f,
                "daily limit is {}, {} already approved today, payment needs {}",
                limit.display(),
                approved.display(),
                needed.display()
            ),
            Error::InvalidState { entity, from, to } if from.as_str() == *to => {
                write!(f, "{entity} is already {to}")
            }
            Error::InvalidState {
                entity,
                from,
                to: "deposited",
            } => write!(f, "{entity} is {from}: it takes no more deposits"),
            Error::InvalidState {
                entity,
                from,
                to: "resolved",
            } => write!(
                f,
                "{entity} status is {from}: only a stuck payout is resolved by hand"
            ),
            Error::InvalidState { entity, from, to } => {
                write!(f, "{entity} is {from} and cannot become {to}")
            }
            Error::NotNow(why) => f.write_str(why),
            Error::RequestExpired => write!(
                f,
                "this payment request expired: its USD price was fixed at an old rate; make a new request at today's rate"
            ),
            Error::IdempotencyKeyReused => {
                write!(
                    f,
                    "this Idempotency-Key was already used for a different request: a new request takes a new key"
                )
            }
            Error::MethodNotAllowed => write!(f, "method not allowed on this route"),
            Error::MalformedChunks => f.write_str(
                "the body is not in chunked framing (hex sizes, each line ended by CRLF, trailer lines NAME: VALUE), as its Transfer-Encoding header says",
            ),
            Error::BodyTooLarge => write!(
                f,
                "request body is larger than {} KiB",
                crate::limits::BODY_BYTES_MAX / 1024
            ),
            Error::BodyTimedOut => write!(
                f,
                "the request body did not arrive within {} s of the head; nothing was done: send the request again",
                crate::limits::BODY_DEADLINE_MS / 1000
            ),
            Error::UnsupportedMediaType => {
                write!(
                    f,
                    "request body must be application/json (UTF-8), without a Content-Encoding"
                )
            }
            Error::Busy => write!(f, "the database is busy; retry the request"),
            Error::Occupied(what) => write!(f, "{what}"),
            Error::SlowBodies => write!(
                f,
                "the server is busy waiting for slow request bodies; retry the request"
            ),
            Error::WrongKey => write!(
                f,
                "the encryption key does not match this database (check ENCRYPTION_KEY or the key file; after `remit rotate-key` the database takes the new key, and after `remit restore` the key the backup was made under)"
            ),
            Error::Full => write!(
                f,
                "the database or its disk is full: free space on the disk that holds it (its write-ahead log takes up to REMIT_WAL_MAX_MB, 64 MiB, beside it)"
            ),
            Error::Damaged(_) | Error::Internal(_) => write!(f, "internal error"),
        }
    }
}

impl std::error::Error for Error {}

thread_local! {
    /// Did this thread meet SQLite's refusal to write (`Error::Full`) since `take_full`?
    static MET_FULL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread met `Error::Full` since the last call, and forgets it. The writer asks
/// after each batch: a command may have turned the error into another (a savepoint that could
/// not be rolled back once SQLite undid the whole transaction), and the batch must still be
/// run again with its journals in memory (`Writer::run_batch`).
pub fn take_full() -> bool {
    MET_FULL.with(|met| met.replace(false))
}

/// Whether this thread met `Error::Full` since `take_full`, remembered still.
pub fn met_full() -> bool {
    MET_FULL.with(|met| met.get())
}

/// How the two storage failures that are not `Error::Full` begin (`Error::is_storage_failure`).
const UNWRITABLE: &str = "the database cannot be written";
const DISK_FAILED: &str = "the database's disk could not be read or written";

impl Error {
    /// Does this say the storage failed (full, not writable, an I/O error) rather than this
    /// request? Such a failure fails every write alike, so it is logged once every few seconds
    /// with a count, not once a request.
    pub fn is_storage_failure(&self) -> bool {
        match self {
            Error::Full => true,
            Error::Internal(detail) => {
                detail.starts_with(UNWRITABLE) || detail.starts_with(DISK_FAILED)
            }
            _ => false,
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        // Text that is not UTF-8 in a STRICT TEXT column: a damaged page (remit writes only
        // UTF-8), said as damage rather than as a decoding error.
        let not_utf8 = match &e {
            rusqlite::Error::Utf8Error(..) => true,
            // What `row.get::<String>` says of the same.
            rusqlite::Error::FromSqlConversionFailure(_, rusqlite::types::Type::Text, inner) => {
                inner.is::<std::str::Utf8Error>()
            }
            _ => false,
        };
        if not_utf8 {
            return Error::Damaged(format!("a text value is not text ({e})"));
        }
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked) => {
                Error::Busy
            }
            Some(rusqlite::ErrorCode::DiskFull) => {
                MET_FULL.with(|met| met.set(true));
                Error::Full
            }
            // Said as the command line says every error: one sentence an operator can act on.
            Some(rusqlite::ErrorCode::DatabaseCorrupt) | Some(rusqlite::ErrorCode::NotADatabase) => {
                Error::Damaged(e.to_string())
            }
            Some(rusqlite::ErrorCode::ReadOnly) => Error::Internal(format!(
                "{UNWRITABLE} (sqlite: {e}): check that this user may write the file, its -wal and -shm files and its directory"
            )),
            Some(rusqlite::ErrorCode::SystemIoFailure) => Error::Internal(format!(
                "{DISK_FAILED} (sqlite: {e}): check the disk, its free space and any limit on the size of files"
            )),
            Some(rusqlite::ErrorCode::CannotOpen) => Error::Internal(format!(
                "the database file cannot be opened (sqlite: {e}): check its path, and that this user may read and write it and its directory"
            )),
            _ => Error::Internal(format!("sqlite: {e}")),
        }
    }
}

/// What a request is told when every read connection stayed in use for the pool's wait.
pub const READS_OCCUPIED: &str =
    "the server is busy (every read connection is in use); retry the request";

impl From<r2d2::Error> for Error {
    /// The pool's wait ran out: `503 busy`, safe to retry (a `500` until 2026-12-07), unless a
    /// connection could not be opened (r2d2 then adds the last error after a colon): internal.
    fn from(e: r2d2::Error) -> Error {
        let said = e.to_string();
        if said == "timed out waiting for connection" {
            static SAID: Throttle = Throttle::new(std::time::Duration::from_secs(60));
            if let Some(left_out) = SAID.admit() {
                log::warn!(
                    "a request waited {} ms for a read connection, every one in use, and was answered 503 busy ({left_out} more since the last such line): more readers at once than the pool holds, or long reads",
                    crate::limits::READ_POOL_TIMEOUT_MS
                );
            }
            Error::Occupied(READS_OCCUPIED)
        } else {
            Error::Internal(format!("read pool: {said}"))
        }
    }
}

/// The sentence an operator sees for an error: the command line may show the detail of an
/// internal error (it is their machine), unlike the HTTP API.
pub fn describe(e: &Error) -> String {
    match e {
        Error::Internal(_) | Error::Damaged(_) => e.logged().to_string(),
        Error::Busy => format!(
            "the database stayed busy for {} s (another process writing it without pause); nothing was changed, run the command again",
            crate::limits::CLI_BUSY_WAIT_S
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::Error;

    fn sqlite(code: i32) -> Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None).into()
    }

    /// A pool whose every connection stayed in use is `503 busy` (safe to retry), not a
    /// `500`; one whose connections cannot be opened stays internal. (r2d2 says both as "timed
    /// out waiting for connection", the second with its last error after it.)
    #[test]
    fn a_read_pool_in_use_is_busy_and_one_that_cannot_open_is_internal() {
        let dir = tempfile::tempdir().unwrap();
        let pool = |path: std::path::PathBuf| {
            r2d2::Pool::builder()
                .max_size(1)
                .connection_timeout(std::time::Duration::from_millis(50))
                .build_unchecked(r2d2_sqlite::SqliteConnectionManager::file(path))
        };
        let open = pool(dir.path().join("a.db"));
        let _held = open.get().unwrap();
        let busy = Error::from(open.get().unwrap_err());
        assert!(
            matches!(busy, Error::Occupied(super::READS_OCCUPIED)),
            "{busy:?}"
        );
        assert_eq!(busy.code(), "busy");
        let cannot = pool(dir.path().join("absent").join("a.db"));
        let internal = Error::from(cannot.get().unwrap_err());
        assert!(matches!(internal, Error::Internal(_)), "{internal:?}");
    }

    #[test]
    fn a_file_that_cannot_be_read_or_written_is_said_in_a_sentence() {
        let said = |e: Error| match &e {
            Error::Internal(_) | Error::Damaged(_) => e.logged().to_string(),
            other => panic!("{other:?}"),
        };
        assert!(said(sqlite(rusqlite::ffi::SQLITE_READONLY))
            .starts_with("the database cannot be written"));
        assert!(said(sqlite(rusqlite::ffi::SQLITE_CORRUPT))
            .starts_with("the database file is damaged or is not a remit database"));
        assert!(said(sqlite(rusqlite::ffi::SQLITE_NOTADB))
            .starts_with("the database file is damaged or is not a remit database"));
        assert!(said(sqlite(rusqlite::ffi::SQLITE_CANTOPEN))
            .starts_with("the database file cannot be opened"));
        assert!(matches!(sqlite(rusqlite::ffi::SQLITE_BUSY), Error::Busy));
    }

    #[test]
    fn the_log_tells_an_error_in_words_with_the_detail_a_client_never_sees() {
        let internal = Error::internal("disk I/O error");
        assert_eq!(internal.to_string(), "internal error");
        assert_eq!(internal.logged().to_string(), "disk I/O error");
        assert_eq!(
            Error::Busy.logged().to_string(),
            "the database is busy; retry the request"
        );
        let gateway = crate::payout::GatewayError::Transport("OAuth: timed out".into());
        assert_eq!(gateway.to_string(), "no clear answer: OAuth: timed out");
    }

    #[test]
    fn a_refused_transition_reads_as_a_sentence() {
        let refused = |entity, from: &str, to| {
            Error::InvalidState {
                entity,
                from: from.to_string(),
                to,
            }
            .to_string()
        };
        assert_eq!(
            refused("payment request", "approved", "approved"),
            "payment request is already approved"
        );
        assert_eq!(
            refused("escrow", "active", "deposited"),
            "escrow is active: it takes no more deposits"
        );
        assert_eq!(
            refused("payout", "succeeded", "resolved"),
            "payout status is succeeded: only a stuck payout is resolved by hand"
        );
        assert_eq!(
            refused("escrow", "completed", "cancelled"),
            "escrow is completed and cannot become cancelled"
        );
    }
}

/// A line to standard error that never panics. `eprintln!` panics when standard error cannot
/// be written (it is a file on a full disk), and a panic in the panic hook, whose own line
/// failed the same way, aborted the process without a word (exit 134): a command that was to
/// say a sentence and exit 2, or a whole server whose background thread had stopped.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// A warning from this place of the code said at most once every 10 s, with how many like it
/// were left out (`Throttle`): for a failure retried in a loop (a full disk fails it at every
/// turn).
macro_rules! warn_every_10s {
    ($($arg:tt)+) => {{
        static THROTTLE: $crate::error::Throttle =
            $crate::error::Throttle::new(std::time::Duration::from_secs(10));
        THROTTLE.log(module_path!(), log::Level::Warn, format_args!($($arg)+));
    }};
}
pub(crate) use warn_every_10s;

/// Lets a line that can repeat many times a second (every write failing on a full disk) reach
/// the log at most once per period, saying how many like it were left out: the log is read by
/// a person, and on a kiosk it lives on the disk that is full.
pub struct Throttle {
    every: std::time::Duration,
    state: std::sync::Mutex<(Option<std::time::Instant>, u64)>,
}

impl Throttle {
    /// At most one line per `every`.
    pub const fn new(every: std::time::Duration) -> Throttle {
        Throttle {
            every,
            state: std::sync::Mutex::new((None, 0)),
        }
    }

    /// `Some(left_out)` when a line may be logged now (`left_out` lines like it were not since
    /// the last one), `None` when this one is left out.
    pub fn admit(&self) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        match state.0 {
            Some(at) if now.duration_since(at) < self.every => {
                state.1 += 1;
                None
            }
            _ => {
                let left_out = std::mem::take(&mut state.1);
                state.0 = Some(now);
                Some(left_out)
            }
        }
    }

    /// " (N more like it not logged)" for a line `admit` let through, or "".
    pub fn said(left_out: u64) -> String {
        if left_out == 0 {
            String::new()
        } else {
            format!(" ({left_out} more like it in the meantime, not logged)")
        }
    }

    /// How many lines were left out since the last one let through, counted as said from now
    /// on (for a closing line that says them: the writer's recovery).
    pub fn take_left_out(&self) -> u64 {
        std::mem::take(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()).1)
    }

    /// Logs `line` at `level` under `target` (the caller's `module_path!()`) if `admit` lets it
    /// through, with how many like it were left out since.
    pub fn log(&self, target: &str, level: log::Level, line: std::fmt::Arguments<'_>) {
        if let Some(left_out) = self.admit() {
            log::log!(target: target, level, "{line}{}", Throttle::said(left_out));
        }
    }
}

#[cfg(test)]
mod throttle_tests {
    use super::Throttle;

    #[test]
    fn a_repeated_line_is_let_through_once_per_period_counting_the_others() {
        let throttle = Throttle::new(std::time::Duration::from_millis(200));
        assert_eq!(throttle.admit(), Some(0));
        assert_eq!(throttle.admit(), None);
        assert_eq!(throttle.admit(), None);
        std::thread::sleep(std::time::Duration::from_millis(250));
        assert_eq!(throttle.admit(), Some(2));
        assert_eq!(
            Throttle::said(2),
            " (2 more like it in the meantime, not logged)"
        );
        // Those left out since are taken once, by a line that says them.
        assert_eq!(throttle.admit(), None);
        assert_eq!(throttle.take_left_out(), 1);
        assert_eq!(throttle.take_left_out(), 0);
    }
}
