//! Configuration of the server: flags override environment variables, which override these
//! defaults. Built once by the command line; everything else receives it explicitly.

mod env;

pub use env::{
    comment_hint, from_env, listen_addr, load_dotenv, warn_if_dotenv_readable,
    warn_of_unknown_settings, workers, Settings,
};

use crate::limits;
use crate::money::{KesCents, UsdCents};
use crate::store::Synchronous;
use std::path::PathBuf;

/// Which M-Pesa gateway pays payouts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GatewayKind {
    /// Answers like Daraja and calls our own result URL back (the default). Moves no money.
    Simulator,
    /// The real M-Pesa Daraja API.
    Daraja(Box<DarajaConfig>),
    /// Payouts stay queued for an operator; nothing is sent anywhere.
    None,
}

impl GatewayKind {
    /// `simulator`, `daraja` or `none`.
    pub fn name(&self) -> &'static str {
        match self {
            GatewayKind::Simulator => "simulator",
            GatewayKind::Daraja(_) => "daraja",
            GatewayKind::None => "none",
        }
    }
}

/// The B2C command a phone payout is sent with.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum B2cCommand {
    /// A normal payout to a registered M-Pesa user (the default).
    BusinessPayment,
    /// A salary.
    SalaryPayment,
    /// A promotion.
    PromotionPayment,
}

impl B2cCommand {
    /// Daraja's `CommandID`.
    pub fn as_str(self) -> &'static str {
        match self {
            B2cCommand::BusinessPayment => "BusinessPayment",
            B2cCommand::SalaryPayment => "SalaryPayment",
            B2cCommand::PromotionPayment => "PromotionPayment",
        }
    }
}

/// How remit reaches Daraja (DESIGN.md, "The Daraja gateway"). `Debug` shows no secret.
#[derive(Clone, PartialEq, Eq)]
pub struct DarajaConfig {
    /// `https://sandbox.safaricom.co.ke` or `https://api.safaricom.co.ke` (http only for a
    /// loopback host).
    pub url: String,
    /// The app's OAuth consumer key.
    pub consumer_key: String,
    /// The app's OAuth consumer secret.
    pub consumer_secret: String,
    /// Our shortcode, `PartyA` of every request.
    pub shortcode: String,
    /// The API operator's user name.
    pub initiator: String,
    /// The operator's password encrypted under M-Pesa's certificate, base64.
    pub security_credential: String,
    /// The B2C command.
    pub b2c_command: B2cCommand,
    /// The address M-Pesa calls back (`https://kiosk.example.org`); `None` only with a
    /// loopback Daraja (a local fake), which calls this server's own address.
    pub public_url: Option<String>,
    /// How long one call may take, connecting included.
    pub timeout: std::time::Duration,
}

impl DarajaConfig {
    /// Where results are posted: the public address, else this server's own (`own`).
    pub fn callback_base<'a>(&'a self, own: &'a str) -> &'a str {
        self.public_url.as_deref().unwrap_or(own)
    }
}

impl std::fmt::Debug for DarajaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DarajaConfig")
            .field("url", &self.url)
            .field("shortcode", &self.shortcode)
            .field("b2c_command", &self.b2c_command)
            .field("public_url", &self.public_url)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Which SMS gateway texts go through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SmsGatewayKind {
    /// Nothing is sent: each message is recorded (sealed) and shown to admins (`GET /sms`).
    Log,
    /// Africa's Talking's bulk SMS HTTP API.
    AfricasTalking(Box<AfricasTalkingConfig>),
}

impl SmsGatewayKind {
    /// `log` or `africastalking`.
    pub fn name(&self) -> &'static str {
        match self {
            SmsGatewayKind::Log => "log",
            SmsGatewayKind::AfricasTalking(_) => "africastalking",
        }
    }

    /// Does it send anything?
    pub fn sends(&self) -> bool {
        !matches!(self, SmsGatewayKind::Log)
    }
}

/// How remit reaches Africa's Talking. `Debug` shows no API key.
#[derive(Clone, PartialEq, Eq)]
pub struct AfricasTalkingConfig {
    /// `https://api.africastalking.com` (`https://api.sandbox.africastalking.com` for the
    /// `sandbox` user); `http` only for a loopback host.
    pub url: String,
    /// The application's user name (`sandbox` in the sandbox).
    pub username: String,
    /// The application's API key.
    pub api_key: String,
    /// A registered sender id or short code (`from`); the account's default when `None`.
    pub sender_id: Option<String>,
    /// How long one call may take, connecting included.
    pub timeout: std::time::Duration,
}

impl std::fmt::Debug for AfricasTalkingConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AfricasTalkingConfig")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("sender_id", &self.sender_id)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Outgoing notifications: webhooks and SMS.
#[derive(Clone, Debug)]
pub struct NotifyConfig {
    /// Webhooks may go to private, link-local and unique-local addresses
    /// (`REMIT_WEBHOOK_ALLOW_PRIVATE`).
    pub webhook_allow_private: bool,
    /// The longest one delivery may take (no answer within it: retried).
    pub webhook_timeout: std::time::Duration,
    /// The longest connecting to a receiver may take.
    pub webhook_connect_timeout: std::time::Duration,
    /// The wait before the first retry; each later one doubles, up to `webhook_retry_cap`.
    pub webhook_retry_base: std::time::Duration,
    /// The longest wait between two retries.
    pub webhook_retry_cap: std::time::Duration,
    /// How long a delivery is retried before it is `failed`.
    pub webhook_retry_for: std::time::Duration,
    /// The SMS gateway.
    pub sms: SmsGatewayKind,
    /// The language of the texts to a recipient made by an escrow to their phone, until an
    /// admin sets theirs (`REMIT_SMS_LANGUAGE`, English by default).
    pub recipient_language: crate::domain::Language,
    /// The wait before an SMS the gateway could not take is tried again (doubling).
    pub sms_retry_base: std::time::Duration,
    /// How long an event, its deliveries and its messages are kept once nothing about it is
    /// still to be sent (`REMIT_NOTIFICATIONS_KEEP_DAYS`).
    pub keep_for: std::time::Duration,
}

impl Default for NotifyConfig {
    fn default() -> NotifyConfig {
        use std::time::Duration;
        NotifyConfig {
            webhook_allow_private: false,
            webhook_timeout: Duration::from_millis(limits::WEBHOOK_TIMEOUT_MS),
            webhook_connect_timeout: Duration::from_millis(limits::WEBHOOK_CONNECT_TIMEOUT_MS),
            webhook_retry_base: Duration::from_millis(limits::WEBHOOK_RETRY_BASE_MS),
            webhook_retry_cap: Duration::from_millis(limits::WEBHOOK_RETRY_CAP_MS),
            webhook_retry_for: Duration::from_secs(limits::WEBHOOK_RETRY_FOR_S),
            sms: SmsGatewayKind::Log,
            recipient_language: crate::domain::Language::En,
            sms_retry_base: Duration::from_millis(limits::SMS_RETRY_BASE_MS),
            keep_for: Duration::from_secs(limits::NOTIFICATIONS_KEEP_DAYS_DEFAULT * 86_400),
        }
    }
}

/// Everything the server needs to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// The database file.
    pub db: PathBuf,
    /// Where to listen; loopback unless configured otherwise.
    pub addr: String,
    /// HTTP worker threads.
    pub workers: usize,
    /// Open connections at once.
    pub connections_max: usize,
    /// `ENCRYPTION_KEY`, if given.
    pub key_hex: Option<String>,
    /// Commit durability.
    pub synchronous: Synchronous,
    /// Largest escrow total.
    pub escrow_total_max: UsdCents,
    /// Largest payment request.
    pub request_kes_max: KesCents,
    /// Stripe endpoint secret (`whsec_…`); without it the Stripe webhook refuses.
    pub stripe_webhook_secret: Option<String>,
    /// The secret path token of the M-Pesa result URL; generated at start when not set.
    pub mpesa_callback_token: Option<String>,
    /// The gateway.
    pub gateway: GatewayKind,
    /// Simulator: delay before it posts its result callback.
    pub sim_delay_ms: u64,
    /// Simulator: merchant account numbers or references whose payouts fail.
    pub sim_fail_accounts: Vec<String>,
    /// Simulator: merchant account numbers or references whose payouts time out in the queue.
    pub sim_timeout_accounts: Vec<String>,
    /// Payouts without a result after this long are stuck.
    pub payout_timeout_s: i64,
    /// Serve `/metrics` without authentication (default); else admins only.
    pub metrics_public: bool,
    /// Read connections.
    pub read_pool_size: u32,
    /// How long a payment request waits for approval before it expires, in seconds.
    pub request_ttl_s: i64,
    /// Whether Stripe events must be live-mode ones (`REMIT_STRIPE_LIVEMODE`); others are
    /// refused.
    pub stripe_livemode: bool,
    /// A sent payout with no result after this long gets a Transaction Status query (Daraja).
    pub payout_status_after_s: i64,
    /// How often the M-Pesa account balances are asked for (Daraja), in seconds.
    pub float_check_s: u64,
    /// Below this a float warning is raised (KES; 0: never).
    pub float_alert: KesCents,
    /// When not empty, only these networks may post M-Pesa results.
    pub callback_allow: Vec<ipnet::IpNet>,
    /// The one proxy whose `X-Forwarded-For` is believed.
    pub trusted_proxy: Option<std::net::IpAddr>,
    /// The web UI signs out after this many seconds without input (0: never).
    pub ui_idle_s: u64,
    /// The write-ahead log's bound, MiB.
    pub wal_max_mib: u64,
    /// Outgoing notifications: webhooks and SMS.
    pub notify: NotifyConfig,
    /// Replicate the ledger into this PostgreSQL while serving (`REMIT_REPLICATE_TO`).
    pub replicate_to: Option<crate::replicate::Target>,
    /// Certificates (PEM) that PostgreSQL's TLS certificate may chain to, besides the public
    /// roots (`REMIT_REPLICATE_CA_FILE`).
    pub replicate_ca_file: Option<PathBuf>,
}

impl Config {
    /// The defaults for a database at `db`: loopback port 3000, full durability, simulator.
    pub fn new(db: impl Into<PathBuf>) -> Config {
        Config {
            db: db.into(),
            addr: "127.0.0.1:3000".into(),
            workers: limits::HTTP_WORKERS_DEFAULT,
            connections_max: limits::CONNECTIONS_MAX_DEFAULT,
            key_hex: None,
            synchronous: Synchronous::Full,
            escrow_total_max: UsdCents::new(limits::ESCROW_TOTAL_USD_CENTS_MAX_DEFAULT)
                .unwrap_or_default(),
            request_kes_max: KesCents::new(limits::REQUEST_KES_CENTS_MAX_DEFAULT)
                .unwrap_or_default(),
            stripe_webhook_secret: None,
            mpesa_callback_token: None,
            gateway: GatewayKind::Simulator,
            sim_delay_ms: limits::SIM_DELAY_MS_DEFAULT,
            sim_fail_accounts: Vec::new(),
            sim_timeout_accounts: Vec::new(),
            payout_timeout_s: limits::PAYOUT_TIMEOUT_S_DEFAULT,
            metrics_public: true,
            read_pool_size: limits::READ_POOL_SIZE_DEFAULT,
            request_ttl_s: limits::REQUEST_TTL_H_DEFAULT * 3600,
            stripe_livemode: false,
            payout_status_after_s: limits::PAYOUT_STATUS_AFTER_S_DEFAULT,
            float_check_s: limits::FLOAT_CHECK_S_DEFAULT,
            float_alert: KesCents::ZERO,
            callback_allow: Vec::new(),
            trusted_proxy: None,
            ui_idle_s: limits::UI_IDLE_S_DEFAULT,
            wal_max_mib: limits::WAL_MAX_MIB_DEFAULT,
            notify: NotifyConfig::default(),
            replicate_to: None,
            replicate_ca_file: None,
        }
    }

    /// The store options this configuration implies.
    pub fn open_options(&self, create: bool) -> crate::store::OpenOptions {
        let mut options = crate::store::OpenOptions::new(&self.db);
        options.key_hex = self.key_hex.clone();
        options.create = create;
        options.synchronous = self.synchronous;
        options.read_pool_size = self.read_pool_size;
        options.wal_max_bytes = self.wal_max_mib << 20;
        options.track_changes = self.replicate_to.is_some();
        options
    }
}

/// `REMIT_*` variables that are no setting of remit's but are set where it runs by its own
/// tools: the tests, CI, the contract fuzzer, the benchmarks and the walkthrough (the unknown-
/// setting warning, `env::warn_of_unknown_settings`, passes them over).
const NOT_SETTINGS: &[&str] = &[
    "REMIT_ADMIN_TOKEN",
    "REMIT_BENCH_KEEP",
    "REMIT_CONTRACT_NETNS",
    "REMIT_CONTRACT_TOKEN",
    "REMIT_DOCS_SCREENSHOTS",
    "REMIT_MODEL_SEED",
    "REMIT_PG_BIN",
    "REMIT_SKIP_BROWSER",
    "REMIT_SKIP_POSTGRES",
    "REMIT_TEST_SEED",
];
