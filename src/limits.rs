//! The limits a client, an operator or a setting meets, named once: sizes, counts and times of
//! the API and of the server's work. A bound that belongs to one module's inner workings (how
//! long a replica's connect may take, a flag reason's length, a hidden copy's age) is a named
//! constant beside its one use.

/// Largest request body the HTTP layer reads (`413 body_too_large` above it).
pub const BODY_BYTES_MAX: usize = 64 * 1024;
/// Default page size of list routes.
pub const PAGE_ROWS_DEFAULT: u32 = 50;
/// Largest page size a client may ask for.
pub const PAGE_ROWS_MAX: u32 = 200;
/// Categories per escrow.
pub const CATEGORIES_PER_ESCROW_MAX: usize = 16;
/// Length of a category name.
pub const CATEGORY_NAME_BYTES_MAX: usize = 32;
/// Default largest escrow total (USD 10,000.00), configurable.
pub const ESCROW_TOTAL_USD_CENTS_MAX_DEFAULT: i64 = 1_000_000;
/// Default largest payment request (KES 1,000,000.00), configurable.
pub const REQUEST_KES_CENTS_MAX_DEFAULT: i64 = 100_000_000;
/// Largest value `REMIT_MAX_ESCROW_USD` and `REMIT_MAX_REQUEST_KES` take, in major units: far
/// above any remittance, and far enough below i64 that no sum or FX product of amounts nears it.
pub const AMOUNT_LIMIT_MAJOR_MAX: i64 = 1_000_000_000;
/// M-Pesa B2C per-transaction floor (KES 10.00).
pub const B2C_KES_CENTS_MIN: i64 = 1_000;
/// M-Pesa B2C per-transaction ceiling (KES 250,000.00).
pub const B2C_KES_CENTS_MAX: i64 = 25_000_000;
/// Largest KES-per-USD rate accepted (× 10⁴): 100,000 KES per USD.
pub const RATE_KES_PER_USD_E4_MAX: i64 = 100_000 * 10_000;
/// Commands the writer takes into one transaction.
pub const WRITER_BATCH_MAX: usize = 256;

/// Most repeatable commands (approvals, decisions, new requests) that share one savepoint in a writer
/// batch. The run's journal holds every page it changed that existed before it, in the
/// build's one piece of 4 MiB (1,023 pages), which it must never pass (`.cargo/config.toml`):
/// an approval on a random escrow of a million changes about five such pages of its own, so
/// 64 of them journal some 350 pages with the pages they share.
pub const WRITER_RUN_MAX: usize = 64;
/// Commands waiting for the writer before callers block.
pub const WRITER_QUEUE_MAX: usize = 4096;
/// SQLite busy timeout on every connection.
pub const BUSY_TIMEOUT_MS: u64 = 5_000;
/// How long a command-line write beside a busy server keeps trying (`OpenOptions::busy_wait`).
pub const CLI_BUSY_WAIT_S: u64 = 120;
/// The pause between two of its attempts.
pub const BUSY_RETRY_PAUSE_MS: u64 = 10;
/// Read connections in the pool when not configured.
pub const READ_POOL_SIZE_DEFAULT: u32 = 8;
/// How long a caller waits for a pooled read connection.
pub const READ_POOL_TIMEOUT_MS: u64 = 5_000;
/// Prepared statements kept per connection.
pub const STATEMENT_CACHE_CAPACITY: usize = 128;
/// Page cache of the writer connection, in KiB (readers keep SQLite's default 2 MiB). At a
/// million escrows the inner pages of `escrows`, `spending_categories` and `users` alone take
/// 25 MiB (rows kept by their key carry whole rows in their inner pages): held, an approval
/// reads from the file only the leaves it changes.
pub const WRITER_CACHE_KIB: i64 = 32 * 1024;
/// How often the background connection checkpoints the WAL.
pub const CHECKPOINT_INTERVAL_MS: u64 = 1_000;
/// The same once the write-ahead log is a quarter of its bound.
pub const CHECKPOINT_BUSY_INTERVAL_MS: u64 = 100;
/// The longest the writer waits, when it empties the write-ahead log at its bound, for the
/// background checkpointer's copy to end and for readers of the log (it tries again after the
/// next batch if they are still there).
pub const WAL_RESET_WAIT_MS: u64 = 100;
/// The write-ahead log's bound when not configured (`REMIT_WAL_MAX_MB`), MiB.
pub const WAL_MAX_MIB_DEFAULT: u64 = 64;
/// Access-log lines of requests refused (status 400 and above) or sent without a token written
/// one by one in a second; past it they are counted and said in one line
/// (`http::server::AccessBudget`).
pub const ACCESS_BUDGET_LINES_PER_S: u32 = 200;
/// Warnings of webhook calls refused before they were verified (a wrong M-Pesa path token, a
/// caller outside `REMIT_CALLBACK_ALLOW_IPS`, a Stripe signature that does not verify) written
/// one by one in a second: anyone can send those, as fast as a connection carries them
/// (135,000 wrong path tokens in 10 s wrote 15 MB of log, past the access log's own budget).
pub const REFUSED_UNVERIFIED_LINES_PER_S: u32 = 20;

/// The listening socket's queue of connections the kernel completed and the server has not
/// accepted yet (Linux caps it at `net.core.somaxconn`, 4,096 by default). Rust's own is 128:
/// a burst of new connections past it (15,000 a second from one attacking client) made the
/// kernel drop honest clients' handshakes, each retried a second later, up to 5 s. The accept
/// thread takes one in about 64 µs at the connection cap, so a full queue waits ~65 ms.
pub const LISTEN_BACKLOG: i32 = 1024;
/// The smallest and largest bound allowed, MiB.
pub const WAL_MAX_MIB_RANGE: (u64, u64) = (4, 4_096);
/// The most the server grows the log's file to before its first write (`WalBound::grow_file`),
/// MiB: a larger bound is reached by the writes themselves, once.
pub const WAL_GROWN_MAX_MIB: u64 = 64;
/// Length of free-text fields (names, merchant names, notes, reasons), in characters (Unicode
/// scalar values, as JSON Schema's `maxLength` counts them): a name in any script has the same
/// room.
pub const TEXT_CHARS_MAX: usize = 200;
/// Length of references: deposit references, receipts, account numbers.
pub const REFERENCE_BYTES_MAX: usize = 64;
/// Length of an `Idempotency-Key` header.
pub const IDEMPOTENCY_KEY_BYTES_MAX: usize = 255;
/// How long an idempotent response is kept (at least 24 h).
pub const IDEMPOTENCY_TTL_S: i64 = 48 * 3600;
/// How long a request whose caller already holds its share of the workers waiting for slow
/// bodies may still take for its own body before it is refused `503 busy` (a body written a
/// moment after its head, as some clients do, arrives well within it).
pub const BODY_GRACE_MS: u64 = 100;
/// When the moments of `BODY_GRACE_MS` are all being given (an eighth of the workers), a
/// request over its share takes its body only if it is at hand, within this long.
pub const BODY_AT_HAND_MS: u64 = 2;
/// How long registering a webhook endpoint waits for its host name's addresses (to refuse a
/// name that resolves only to addresses a delivery may not use) before it lets the name be.
pub const WEBHOOK_LOOKUP_MS: u64 = 2_000;
/// HTTP worker threads when not configured. Clients without a token may hold a quarter of them
/// waiting for slow bodies (`UNAUTHENTICATED_WORKERS_DIVISOR`), any one caller with a token a
/// quarter, all of them half: at least 24 are left for 32 busy keep-alive clients.
pub const HTTP_WORKERS_DEFAULT: usize = 48;
/// A request line and all its headers: at most this many bytes (`431` above)…
pub const HEAD_BYTES_MAX: usize = 16 * 1024;
/// …at most this many header lines (`431` above)…
pub const HEADER_LINES_MAX: usize = 64;
/// …complete within this long of their first byte, however they trickle (else: closed).
pub const HEAD_DEADLINE_MS: u64 = 10_000;
/// How long a connection may wait for the first byte of its next request.
pub const KEEPALIVE_IDLE_MS: u64 = 10_000;
/// A request body must arrive within this long of the end of its head, however it trickles.
pub const BODY_DEADLINE_MS: u64 = 10_000;
/// An answer must be written within this long, or its connection is closed.
pub const WRITE_DEADLINE_MS: u64 = 10_000;
/// Open connections at once when not configured; at the cap the longest idle one is closed.
pub const CONNECTIONS_MAX_DEFAULT: usize = 1_024;
/// The fewest open connections a configuration may allow.
pub const CONNECTIONS_MAX_LEAST: usize = 16;
/// Open files the server keeps beyond its clients' connections (the database's, each pooled
/// connection holding the file and its log; the listening socket; the log; calls to M-Pesa,
/// receivers, the SMS gateway and PostgreSQL): a server idle holds about 23. The connection
/// cap is lowered to fit the process's limit of open files less these.
pub const OPEN_FILES_RESERVED: usize = 128;
/// The HTTP workers that clients without a bearer token (webhooks included) may hold at once
/// waiting for bodies still arriving, as a fraction: one in this many; and so may any one
/// caller with a token (all callers together: half).
pub const UNAUTHENTICATED_WORKERS_DIVISOR: usize = 4;
/// Length of an `X-Request-Id` echoed back.
pub const REQUEST_ID_BYTES_MAX: usize = 64;
/// Stripe signature tolerance: the most a signature's timestamp may be before or after our clock.
pub const STRIPE_TOLERANCE_S: i64 = 300;
/// Payouts with no result after this long are stuck (default, configurable).
pub const PAYOUT_TIMEOUT_S_DEFAULT: i64 = 600;
/// The longest `REMIT_PAYOUT_TIMEOUT_S` allowed (a week).
pub const PAYOUT_TIMEOUT_S_MAX: i64 = 7 * 86_400;
/// Gateway transport attempts before a payout is left for the operator.
pub const PAYOUT_ATTEMPTS_MAX: i64 = 8;
/// Payouts read at start whose results the gateway still owes (the simulator posts them).
pub const RESUMED_PAYOUTS_MAX: u32 = 10_000;
/// Simulator callback delay when not configured.
pub const SIM_DELAY_MS_DEFAULT: u64 = 2_000;
/// The longest `REMIT_SIM_DELAY_MS` allowed (an hour).
pub const SIM_DELAY_MS_MAX: u64 = 3_600_000;
/// Users, tokens or audit lines shown per admin page.
pub const AUDIT_ROWS_MAX: u32 = 1_000;
/// Longest bearer token read from an `Authorization` header.
pub const TOKEN_BYTES_MAX: usize = 128;
/// Longest `cursor` a list accepts.
pub const CURSOR_BYTES_MAX: usize = 40;
/// How often the housekeeping thread looks at the clock (and at the stop flag).
pub const HOUSEKEEPING_TICK_MS: u64 = 100;
/// How often token use (`last_used_at`) is written.
pub const TOKEN_USE_FLUSH_MS: u64 = 5_000;
/// Tokens whose use one writer command records: a row each, on a page each in a large table,
/// well inside the writer's savepoint journal piece of 4 MiB (1,000 pages).
pub const TOKEN_USE_FLUSH_CHUNK: usize = 250;
/// How long an outbox event, its webhook deliveries and text messages are kept once done with,
/// when not configured (`REMIT_NOTIFICATIONS_KEEP_DAYS`).
pub const NOTIFICATIONS_KEEP_DAYS_DEFAULT: u64 = 30;
/// The longest a configuration may keep them (ten years).
pub const NOTIFICATIONS_KEEP_DAYS_MAX: u64 = 3_650;
/// How often old notifications are looked for.
pub const NOTIFICATIONS_FORGET_EVERY_S: u64 = 600;
/// Events one command looks at: a writer command of a few milliseconds.
pub const NOTIFICATIONS_FORGET_BATCH: u32 = 500;
/// A housekeeping job whose command left more to do (old notifications remain) runs again after
/// this wait.
pub const HOUSEKEEPING_AGAIN_MS: u64 = 1_000;
/// How often expired idempotency keys are forgotten.
pub const IDEMPOTENCY_PURGE_EVERY_S: u64 = 3_600;
/// Longest wait between retries of a payout whose gateway could not be reached.
pub const PAYOUT_BACKOFF_S_MAX: i64 = 300;
/// How long the payout worker sleeps when nothing is due (an approval wakes it sooner).
pub const PAYOUT_WORKER_IDLE_MS: u64 = 1_000;
/// The simulator: attempts to post a result to our own result URL (over about 80 s: a disk
/// full for longer than the 3 s five attempts took left its payouts sent until a restart).
pub const SIM_CALLBACK_ATTEMPTS: u32 = 10;
/// The simulator: the first wait between those attempts (doubled each time).
pub const SIM_CALLBACK_BACKOFF_MS: u64 = 200;
/// The simulator: the longest wait between two attempts.
pub const SIM_CALLBACK_BACKOFF_MAX_MS: u64 = 30_000;
/// The simulator: the timeout of one attempt.
pub const SIM_CALLBACK_TIMEOUT_MS: u64 = 10_000;
/// The simulator's calls kept until their result is delivered, so that a payout sent again gets
/// its first answer and result (`payout::simulator`); past this a new call is not remembered.
pub const SIM_CALLS_KEPT: usize = 10_000;
/// Most HTTP worker threads a configuration may ask for.
pub const HTTP_WORKERS_MAX: usize = 256;
/// Random bytes of an API token (160 bits).
pub const TOKEN_RANDOM_BYTES: usize = 20;
/// Random bytes of a generated M-Pesa callback path token (128 bits).
pub const CALLBACK_TOKEN_RANDOM_BYTES: usize = 16;
/// Random bytes of a generated request id.
pub const REQUEST_ID_RANDOM_BYTES: usize = 8;
/// Bytes read from a body at a time.
pub const BODY_CHUNK_BYTES: usize = 16 * 1024;
/// How long a payment request waits for approval before it expires, when not configured.
pub const REQUEST_TTL_H_DEFAULT: i64 = 72;
/// The longest request lifetime a configuration may ask for (30 days).
pub const REQUEST_TTL_H_MAX: i64 = 30 * 24;
/// How often waiting requests past their expiry are marked `expired`.
pub const EXPIRY_SWEEP_EVERY_S: u64 = 60;
/// Requests marked `expired` per sweep command (the next sweep takes the rest).
pub const EXPIRY_SWEEP_ROWS_MAX: u32 = 500;
/// The most open connections a configuration may allow (each holds a thread and a descriptor).
pub const CONNECTIONS_MAX_LIMIT: usize = 16_384;
/// A token found valid is believed this long without reading the database again (a token
/// revoked from the command line while the server runs is forgotten at once all the same:
/// `auth::note_revocation`).
pub const TOKEN_CACHE_TTL_S: u64 = 10;
/// Most tokens remembered at once.
pub const TOKEN_CACHE_ENTRIES_MAX: usize = 4_096;
/// The web UI signs out a shared screen after this long without input.
pub const UI_IDLE_S_DEFAULT: u64 = 300;
/// The longest `REMIT_UI_IDLE_S` allowed (a day).
pub const UI_IDLE_S_MAX: u64 = 86_400;
/// A sent payout with no result after this long gets a Transaction Status query (Daraja).
pub const PAYOUT_STATUS_AFTER_S_DEFAULT: i64 = 120;
/// The longest `REMIT_PAYOUT_STATUS_AFTER_S` allowed (a day). The queries after the first back
/// off from it, doubling, and are never more than `STATUS_QUERY_BACKOFF_S_MAX` apart (so with
/// a first wait longer than that, the later ones come sooner than the first).
pub const PAYOUT_STATUS_AFTER_S_MAX: i64 = 86_400;
/// How often the M-Pesa account balances are asked for, when not configured.
pub const FLOAT_CHECK_S_DEFAULT: u64 = 900;
/// The longest `REMIT_FLOAT_CHECK_S` allowed (a day).
pub const FLOAT_CHECK_S_MAX: u64 = 86_400;
/// Timeout of one whole call to Daraja (connect, send, answer).
pub const DARAJA_CALL_TIMEOUT_S_DEFAULT: u64 = 30;
/// The longest `REMIT_DARAJA_TIMEOUT_S` allowed.
pub const DARAJA_CALL_TIMEOUT_S_MAX: u64 = 120;
/// Timeout of connecting to Daraja.
pub const DARAJA_CONNECT_TIMEOUT_MS: u64 = 10_000;
/// A Daraja access token is renewed this long before it expires.
pub const DARAJA_TOKEN_RENEW_EARLY_S: i64 = 60;
/// Longest a Daraja token is kept, whatever its `expires_in` says (Daraja's last an hour).
pub const DARAJA_TOKEN_KEPT_MAX_S: i64 = 86_400;
/// Longest Daraja answer read.
pub const DARAJA_ANSWER_BYTES_MAX: u64 = 64 * 1024;
/// Longest wait between two Transaction Status queries of one payout.
pub const STATUS_QUERY_BACKOFF_S_MAX: i64 = 600;
/// How often payouts that became stuck by the passing of time are looked for (`payout.stuck`).
pub const STUCK_SWEEP_EVERY_S: u64 = 15;
/// Payouts given their `payout.stuck` event per sweep command.
pub const STUCK_SWEEP_ROWS_MAX: u32 = 500;
/// Webhook endpoints at once (not deleted); each has a delivery thread of its own.
pub const WEBHOOK_ENDPOINTS_MAX: usize = 16;
/// Longest webhook endpoint URL.
pub const WEBHOOK_URL_BYTES_MAX: usize = 2_048;
/// Random bytes of a webhook signing secret (`whsec_` + hex).
pub const WEBHOOK_SECRET_RANDOM_BYTES: usize = 32;
/// A delivery with no answer within this long is retried (API.md: 10 s).
pub const WEBHOOK_TIMEOUT_MS: u64 = 10_000;
/// The longest connecting to a webhook receiver may take.
pub const WEBHOOK_CONNECT_TIMEOUT_MS: u64 = 5_000;
/// The wait before a delivery's first retry (doubled at each retry, with jitter).
pub const WEBHOOK_RETRY_BASE_MS: u64 = 10_000;
/// The longest wait between two retries of a delivery.
pub const WEBHOOK_RETRY_CAP_MS: u64 = 6 * 3_600_000;
/// How long a delivery is retried before it is `failed` (API.md: 3 days).
pub const WEBHOOK_RETRY_FOR_S: u64 = 3 * 86_400;
/// Bytes of a receiver's answer read (and thrown away) so its connection can be reused.
pub const WEBHOOK_ANSWER_BYTES_MAX: u64 = 4_096;
/// Deliveries an endpoint's worker takes from the database at a time.
pub const WEBHOOK_BATCH_MAX: u32 = 64;
/// A worker records its attempts at least this often (one writer command for many).
pub const WEBHOOK_RECORD_EVERY_MS: u64 = 250;
/// Longest error text kept with an attempt.
pub const WEBHOOK_ERROR_BYTES_MAX: usize = 200;
/// How long an idle delivery worker, or the fan-out, sleeps before it looks again (new work
/// wakes them sooner).
pub const NOTIFY_IDLE_MS: u64 = 1_000;
/// Events the fan-out takes per writer command.
pub const FANOUT_EVENTS_MAX: u32 = 1_000;
/// After a fan-out command the fan-out waits this long, so that a busy ledger's events are fanned
/// out a batch at a time rather than one command per commit.
pub const FANOUT_COALESCE_MS: u64 = 50;
/// How often the set of webhook endpoints is read again even if nobody said it changed.
pub const ENDPOINTS_RECHECK_S: u64 = 30;
/// Attempts shown with a delivery in a list (all of them with `GET /webhook-deliveries/:id`,
/// up to `AUDIT_ROWS_MAX`).
pub const ATTEMPTS_IN_LIST_MAX: u32 = 5;
/// The wait before an SMS the gateway could not take is tried again (doubled each time).
pub const SMS_RETRY_BASE_MS: u64 = 30_000;
/// The longest wait between two tries of an SMS.
pub const SMS_RETRY_CAP_MS: u64 = 30 * 60_000;
/// Tries of an SMS before it is `failed`.
pub const SMS_ATTEMPTS_MAX: i64 = 6;
/// SMS the SMS worker takes from the database at a time.
pub const SMS_BATCH_MAX: u32 = 32;
/// Timeout of one whole call to the SMS gateway.
pub const SMS_CALL_TIMEOUT_S: u64 = 15;
/// Longest answer read from the SMS gateway.
pub const SMS_ANSWER_BYTES_MAX: u64 = 64 * 1024;
/// At shutdown, how long the HTTP workers go on answering requests already read, while the
/// connections that carried them end (a connection in the middle of a slow head is not waited
/// for longer).
pub const SHUTDOWN_DRAIN_MS: u64 = 5_000;
/// How often the shutdown looks whether every connection has ended.
pub const SHUTDOWN_DRAIN_POLL_MS: u64 = 5;
/// At shutdown, how long the webhook workers are waited for (one in the middle of a delivery is
/// left to finish it; its attempt is made again after the restart).
pub const NOTIFY_STOP_WAIT_MS: u64 = 2_000;
/// Above this many writer commands a second (the notifier's own not counted) the ledger is busy
/// and notifications yield to it.
pub const LEDGER_BUSY_COMMANDS_PER_S: u64 = 200;
/// Over how long the ledger's rate of commands is measured.
pub const LEDGER_BUSY_WINDOW_MS: u64 = 100;
/// While the ledger is busy, the share of their time the fan-out and each delivery worker work
/// (they rest the rest).
pub const NOTIFY_BUSY_SHARE_PERCENT: u64 = 3;
/// While the ledger is busy, the fan-out takes at most this many events per command (a short
/// command keeps approvals' latency down).
pub const FANOUT_EVENTS_MAX_BUSY: u32 = 100;
/// While the ledger is busy, a delivery worker works in stints of at most this many deliveries.
pub const WEBHOOK_BATCH_MAX_BUSY: u32 = 8;
/// How often replication looks at the file's change counter (cheap: one row of `meta`).
pub const REPLICATION_POLL_MS: u64 = 20;
/// The shortest time between two replication cycles: each reads the changed rows of every
/// replicated table, so under load it gathers this long's changes into one transaction.
pub const REPLICATION_CYCLE_MIN_MS: u64 = 200;
/// The first wait before reconnecting to PostgreSQL after a failure; it doubles up to the next.
pub const REPLICATION_RETRY_MIN_S: u64 = 1;
/// The longest wait between two attempts to reach PostgreSQL.
pub const REPLICATION_RETRY_MAX_S: u64 = 30;
/// While the file changes nothing, replication still checks the replica this often (a cycle
/// that writes nothing): a PostgreSQL down, or a replica dropped, is said within this long, not
/// at the next change.
pub const REPLICATION_IDLE_CHECK_S: u64 = 10;
/// How long after a stop begins its background threads (payouts, notifications, housekeeping)
/// are waited for: long enough for a call to Africa's Talking (15 s) or to a webhook receiver
/// (10 s, and 5 to connect) made as the stop began to be answered; one still in a call past it
/// (to M-Pesa: `REMIT_DARAJA_TIMEOUT_S`, 30 s by default, up to four calls) is left to it, as a
/// crash would (what it was doing is taken up at the next start), so that a stop, with
/// replication's 3 s and the last checkpoint, ends within the service manager's
/// `TimeoutStopSec` (30 s in `examples/remit.service`).
pub const BACKGROUND_STOP_WAIT_MS: u64 = 20_000;
/// How long a stopping server waits for replication's thread to end its cycle before it stops
/// without it.
pub const REPLICATION_STOP_WAIT_MS: u64 = 3_000;
/// A cycle PostgreSQL has not answered for this long (a stopped server, a network that drops
/// packets: the connection stays open) is said in the log, `/metrics` and the admin screen.
pub const REPLICATION_STALL_S: u64 = 30;
/// From this many pending transactions on, a cycle streams rows to PostgreSQL from the file's
/// snapshot instead of reading them all first (memory stays bounded; the snapshot lasts longer).
pub const REPLICATION_STREAM_AFTER_CHANGES: i64 = 20_000;
/// At most this many rows of a stamped table go to PostgreSQL in one upsert (one array per
/// column): a first copy or a long catch-up stays in bounded memory.
pub const REPLICATION_UPSERT_ROWS: usize = 2_000;
/// Rows the change log (`store::changes::ChangeLog`) keeps for replication inside `serve`
/// (40 bytes each, and a `daily_spend` key's text): about 30,000 approvals, ten seconds of full
/// load. A replica further behind
/// than that is found by the scan instead.
pub const CHANGE_LOG_ROWS_MAX: usize = 200_000;
/// Every cycle that uses the change log also checks it against a scan of this many rows of one
/// stamped table, the next slice after the last checked (a rolling check: its cost does not
/// grow with the ledger, and every row comes under it in turn); on any difference replication
/// stops using the log for good.
pub const CHANGE_LOG_CHECK_ROWS: usize = 2_000;
/// Replication cycles whose lag is kept for the benchmark's percentiles.
pub const REPLICATION_LAG_SAMPLES_MAX: usize = 100_000;
